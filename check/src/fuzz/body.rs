//! Task bodies: a script's steps (yield, sleep, await, gather, wait,
//! `wait_for`, a concurrent future, a self-cancel) as a Rust future, each
//! step logged before it runs, with the checks a body can make of what it
//! awaited.

use super::program::{End, Script, Step, delay_of};
use super::record::{Guard, GuardOf, Shared, lock, violation, who};
use super::{INTENTIONAL_DROP_PANIC, INTENTIONAL_PANIC, panic_message};
use loopspec::{ConcurrentFuture, Error, Future, ReturnWhen};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

/// A task's future with user data beside it: the data is dropped when the
/// future is (after completion, or when the loop destroys the task). Each
/// poll records the thread it happens on.
pub(crate) struct WithGuard<F> {
    pub(crate) fut: Pin<Box<F>>,
    pub(crate) guard: Guard,
}

impl<F: std::future::Future> std::future::Future for WithGuard<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        if let GuardOf::Coro(tid) = self.guard.of {
            lock(&self.guard.log).tasks[tid].polls.push(who());
        }
        self.fut.as_mut().poll(cx)
    }
}

/// A future a body can await: a plain future or a task (by model id).
#[derive(Clone)]
pub(crate) struct Ref {
    pub(crate) fut: Future<u32>,
    pub(crate) task: Option<usize>,
}

pub(crate) fn pick(refs: &[Ref], r: u8) -> Option<Ref> {
    (!refs.is_empty()).then(|| refs[r as usize % refs.len()].clone())
}

pub(crate) fn pick_cf(cfs: &[ConcurrentFuture<u32>], r: u8) -> Option<ConcurrentFuture<u32>> {
    (!cfs.is_empty()).then(|| cfs[r as usize % cfs.len()].clone())
}

/// Runs a call that takes user data by value: when the call refuses it, the
/// data is dropped inside the call, and a panicking `Drop` comes out of it.
/// That panic becomes the marker `Err(Panic(INTENTIONAL_DROP_PANIC))`, which
/// the model replaces with the refusal it expects.
pub(crate) fn guarded<R>(f: impl FnOnce() -> loopspec::Result<R>) -> loopspec::Result<R> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) if panic_message(&*p) == INTENTIONAL_DROP_PANIC => {
            Err(Error::Panic(INTENTIONAL_DROP_PANIC.into()))
        }
        Err(p) => std::panic::resume_unwind(p),
    }
}

pub(crate) fn raised(n: u8) -> Error {
    Error::raise("ValueError", format!("raised {n}"))
}

pub(crate) fn cf_error(n: u8) -> Error {
    Error::raise("KeyError", format!("cf {n}"))
}

/// Checks a child's state against what `gather` reported for it.
pub(crate) fn check_entry(log: &Shared, child: &Future<u32>, entry: &loopspec::Result<u32>) {
    if !child.done() {
        violation(log, "GATHER-1: gather finished with a child pending".into());
        return;
    }
    let ok = match entry {
        Ok(v) => !child.cancelled() && child.result() == Ok(*v),
        Err(Error::Cancelled(_)) => {
            child.cancelled() || matches!(child.exception(), Ok(Some(Error::Cancelled(_))))
        }
        Err(e) => !child.cancelled() && child.exception() == Ok(Some(e.clone())),
    };
    if !ok {
        violation(
            log,
            format!("GATHER-1/5: gather entry {entry:?} does not match child {child:?}"),
        );
    }
}

pub(crate) async fn gather_step(
    log: &Shared,
    children: Vec<Ref>,
    return_exceptions: bool,
) -> loopspec::Result<()> {
    if children.is_empty() {
        return loopspec::yield_now().await;
    }
    {
        let mut l = lock(log);
        for c in &children {
            if let Some(t) = c.task {
                l.cancel_touched.push(t);
            }
        }
    }
    let futs: Vec<Future<u32>> = children.iter().map(|c| c.fut.clone()).collect();
    let g = loopspec::gather(futs.clone(), return_exceptions)?;
    let out = g.await?;
    if out.len() != futs.len() {
        violation(
            log,
            format!(
                "GATHER-1: {} entries for {} children",
                out.len(),
                futs.len()
            ),
        );
    }
    for (child, entry) in futs.iter().zip(&out) {
        if !return_exceptions && entry.is_err() {
            violation(
                log,
                "GATHER-4: a gather without return_exceptions listed an error".into(),
            );
        }
        check_entry(log, child, entry);
    }
    Ok(())
}

pub(crate) async fn wait_step(
    log: &Shared,
    children: Vec<Ref>,
    timeout: Option<u8>,
    when: u8,
) -> loopspec::Result<()> {
    let futs: Vec<Future<u32>> = children.iter().map(|c| c.fut.clone()).collect();
    let return_when = match when % 3 {
        0 => ReturnWhen::AllCompleted,
        1 => ReturnWhen::FirstCompleted,
        _ => ReturnWhen::FirstException,
    };
    let timeout = timeout.map(delay_of);
    let r = loopspec::wait(futs.clone(), timeout, return_when).await;
    let (done, pending) = match r {
        Err(Error::EmptyWait) if futs.is_empty() => return Ok(()),
        Err(e) => return Err(e),
        Ok(x) => x,
    };
    let mut distinct: Vec<Future<u32>> = Vec::new();
    for f in futs {
        if !distinct.contains(&f) {
            distinct.push(f);
        }
    }
    if done.len() + pending.len() != distinct.len()
        || done.iter().chain(&pending).any(|f| !distinct.contains(f))
    {
        violation(
            log,
            "WAIT-2: done + pending is not the set of futures passed".into(),
        );
    }
    if done.iter().any(|f| !f.done()) || pending.iter().any(|f| f.done()) {
        violation(log, "WAIT-2: a future is in the wrong set".into());
    }
    if timeout.is_none() {
        let satisfied = match return_when {
            ReturnWhen::AllCompleted => pending.is_empty(),
            ReturnWhen::FirstCompleted => !done.is_empty(),
            ReturnWhen::FirstException => {
                pending.is_empty()
                    || done
                        .iter()
                        .any(|f| !f.cancelled() && matches!(f.exception(), Ok(Some(_))))
            }
        };
        if !satisfied {
            violation(log, format!("WAIT-3: wait({return_when:?}) returned early"));
        }
    }
    Ok(())
}

pub(crate) async fn wait_for_step(log: &Shared, child: Ref, timeout: u8) -> loopspec::Result<()> {
    if let Some(t) = child.task {
        lock(log).cancel_touched.push(t);
    }
    let r = loopspec::wait_for(child.fut.clone(), Some(delay_of(timeout))).await;
    match &r {
        Err(Error::Timeout) if !child.fut.done() => violation(
            log,
            "WAITFOR-1: TimeoutError before the awaited work finished".into(),
        ),
        Ok(v) if child.fut.done() && child.fut.result() != Ok(*v) => {
            violation(log, "WAITFOR-1: wait_for returned another value".into())
        }
        _ => {}
    }
    r.map(drop)
}

/// The body of task `tid`: each step is logged before it runs; a
/// `CancelledError` propagates unless the step swallows it; other errors of
/// awaited work are ignored.
pub(crate) fn make_body(
    log: &Shared,
    tid: usize,
    script: &Script,
    refs: Vec<Ref>,
    cfs: Vec<ConcurrentFuture<u32>>,
) -> WithGuard<impl std::future::Future<Output = loopspec::Result<u32>> + 'static + use<>> {
    let guard = Guard {
        log: log.clone(),
        of: GuardOf::Coro(tid),
        panicky: script.panicky_drop,
    };
    let log = log.clone();
    let steps = script.steps.clone();
    let end = script.end;
    let body = async move {
        lock(&log).tasks[tid].armed = true;
        for (i, step) in steps.into_iter().enumerate() {
            lock(&log).tasks[tid].steps.push(i);
            let (r, swallow): (loopspec::Result<()>, bool) = match step {
                Step::Yield => (loopspec::yield_now().await, false),
                Step::Sleep(d) => (loopspec::sleep(delay_of(d)).await, false),
                Step::Await { r, swallow } => match pick(&refs, r) {
                    Some(f) => (f.fut.await.map(drop), swallow),
                    None => (loopspec::yield_now().await, swallow),
                },
                Step::Gather {
                    rs,
                    return_exceptions,
                    swallow,
                } => {
                    let children = rs.iter().filter_map(|r| pick(&refs, *r)).collect();
                    (
                        gather_step(&log, children, return_exceptions).await,
                        swallow,
                    )
                }
                Step::Wait { rs, timeout, when } => {
                    let children = rs.iter().filter_map(|r| pick(&refs, *r)).collect();
                    (wait_step(&log, children, timeout, when).await, false)
                }
                Step::WaitFor { r, timeout } => match pick(&refs, r) {
                    Some(f) => (wait_for_step(&log, f, timeout).await, false),
                    None => (loopspec::yield_now().await, false),
                },
                Step::AwaitCf { cf, swallow } => match pick_cf(&cfs, cf) {
                    Some(cf) => (cf.await.map(drop), swallow),
                    None => (loopspec::yield_now().await, swallow),
                },
                Step::CancelSelf => {
                    match loopspec::current_task() {
                        Ok(Some(t)) => {
                            if !t.cancel() {
                                violation(
                                    &log,
                                    "TASK-4: cancel() of the running task returned false".into(),
                                );
                            }
                        }
                        other => violation(
                            &log,
                            format!("TASK-13: current_task() in a task gave {other:?}"),
                        ),
                    }
                    (Ok(()), false)
                }
            };
            if let Err(Error::Cancelled(m)) = r
                && !swallow
            {
                lock(&log).tasks[tid].propagated = true;
                return Err(Error::Cancelled(m));
            }
        }
        lock(&log).tasks[tid].ended = true;
        match end {
            End::Return(v) => Ok(u32::from(v)),
            End::Raise(n) => Err(raised(n)),
            End::Panic => std::panic::panic_any(INTENTIONAL_PANIC),
        }
    };
    WithGuard {
        fut: Box::pin(body),
        guard,
    }
}
