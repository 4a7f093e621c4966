//! Operation interpreters for fuzzing: compiled only with `cfg(fuzzing)`
//! (cargo-fuzz sets it) or the `fuzzing` feature, never in the default build.
//!
//! Two entry points decode bytes with `arbitrary` into a program, run it on
//! the reference loop and check the result against a small sequential model.
//! A violated invariant is a panic with the program and the reason; any other
//! panic that escapes is a failure too.
//!
//! * [`run_ops`]: up to [`OPS_MAX`] operations over three threads and a few
//!   virtual-clock loops — new/set/get loop, `call_soon`, `call_later`,
//!   `call_soon_threadsafe`, cancelling handles, tasks (with scripted bodies
//!   that yield, sleep, await, gather, wait and `wait_for`), plain futures,
//!   runs (one iteration, `run_until_complete`, `run_forever` + stop), stop,
//!   close, `run_coroutine_threadsafe`, `wrap_future`, concurrent futures,
//!   exception handlers, panics in callbacks, tasks, handlers and `Drop`
//!   impls, and helper threads that exit. The threads run in lock-step: the
//!   coordinator hands one operation at a time to the thread that performs
//!   it and waits for it, so every program is deterministic and the model is
//!   exact where SPEC.md is (which call fails with which error, which
//!   callbacks one iteration runs, what `close()` drops, where a loop's work
//!   lives) and checks allowed outcome sets elsewhere.
//! * [`run_chain`]: cross-thread chains under real concurrency — a loop
//!   running on its own thread, `run_coroutine_threadsafe` onto it,
//!   `wrap_future` of the results onto a second loop, workers completing
//!   concurrent futures, cancels of either side and closes racing with
//!   completions. Interleavings vary, so it checks outcome sets: each future
//!   reaches one final state consistent with its source (CHAIN-2, CHAIN-7),
//!   nothing is scheduled onto a closed loop (CHAIN-6), every concurrent
//!   future of `run_coroutine_threadsafe` is done once its loop is closed
//!   (XTHREAD-6), and every accepted callback ran at most once and was
//!   dropped exactly once (XTHREAD-3).
//!
//! Both check, at the end, after every loop is closed and every thread has
//! exited: every callback accepted ran at most once and was dropped exactly
//! once (LIFE-7, THREAD-4/5, XTHREAD-3); every task's future was dropped; the
//! exception handler only saw the reports SPEC.md describes, with our own
//! intentional panics. Every program terminates: operations, script steps and
//! spawned callbacks are bounded, every run has a stop timer, and every
//! thread is stopped and joined.
//!
//! # Bugs found
//!
//! Each has a regression test (`regression_*` in `tests/fuzz_replay.rs`),
//! and the interpreters no longer step around them:
//!
//! 1. `close()` emptied the loop-bound half in one `catch_unwind`: the first
//!    panicking `Drop` stopped the rest (pending tasks were neither destroyed
//!    nor reported, TASK-8), a second aborted the process, and a destroyed
//!    task whose future panicked in `Drop` kept what it awaited (its
//!    `run_coroutine_threadsafe` future stayed pending). Now every item is
//!    dropped on its own and each panic is reported
//!    (`Exception while dropping ...`).
//! 2. A home thread's exit dropped its loop-bound work in a thread-local
//!    destructor without catching panics: a panicking `Drop` aborted.
//! 3. `Handle::cancel()` of a `call_soon_threadsafe` callback let the
//!    callback's `Drop` panic out of `cancel()`.
//! 4. Cancelled timers were dropped outside any `catch_unwind`, so a
//!    panicking `Drop` came out of `run_forever` mid-iteration; so did the
//!    drop of a released half at the end of a run.
//!
//! Intentional panics carry the prefix of [`INTENTIONAL_PANIC`];
//! [`install_panic_hook`] keeps them quiet (and keeps libFuzzer's hook from
//! aborting on them) while any other panic reaches the previous hook.

use crate::{
    CfState, ClockKind, ConcurrentFuture, Error, EventLoop, ExceptionContext, Future, Gathered,
    Handle, Policy, Profile, ReturnWhen, Task,
};
use arbitrary::{Arbitrary, Unstructured};
use std::any::Any;
use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, Once, mpsc};
use std::task::{Context, Poll};
use std::thread;
use std::time::Duration;

/// The payload of the panics the programs raise on purpose.
pub const INTENTIONAL_PANIC: &str = "loopspec-fuzz: intentional panic";
/// The payload of the panics raised on purpose by `Drop` impls.
pub const INTENTIONAL_DROP_PANIC: &str = "loopspec-fuzz: intentional panic in Drop";

/// Most operations a program runs.
pub const OPS_MAX: usize = 40;
const STEPS_MAX: usize = 4;
const LOOPS_MAX: usize = 4;
const THREADS: usize = 3;
/// Virtual seconds after which a run started by the interpreter is stopped.
const WATCHDOG: f64 = 1.0e4;

/// Whether a panic payload is one of the interpreter's own.
pub fn is_intentional(payload: &(dyn Any + Send)) -> bool {
    let s = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
    s.is_some_and(|s| s.starts_with("loopspec-fuzz: intentional"))
}

fn is_intentional_error(e: &Error) -> bool {
    matches!(e, Error::Panic(m) if m.starts_with("loopspec-fuzz: intentional"))
}

/// Installs (once) a panic hook that is silent for the interpreter's
/// intentional panics and hands every other panic to the hook that was
/// installed before (libFuzzer's, which aborts, or the default one).
pub fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !is_intentional(info.payload()) {
                previous(info);
            }
        }));
    });
}

fn panic_message(p: &(dyn Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "<non-string panic>".into())
}

// ----------------------------------------------------------------------
// Programs
// ----------------------------------------------------------------------

/// What a callback does when it runs.
#[derive(Arbitrary, Debug, Clone, Copy, PartialEq)]
enum CbAction {
    Nothing,
    Panic,
    Stop,
    /// Cancels handle `n` (mod the number of handles).
    Cancel(u8),
    /// Schedules one more (plain) callback with `call_soon`.
    Spawn,
    /// `close()` on its own running loop: must be refused (LIFE-7).
    CloseOwn,
    /// `run_forever()` on its own running loop: refused (LIFE-5, LIFE-6).
    RunOwn,
    /// `run_forever()` on loop `n`: refused (LIFE-5, LIFE-8).
    RunOther(u8),
    /// `get_event_loop()` / `get_running_loop()` give its loop (POLICY-2/10).
    GetLoop,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
struct Cb {
    action: CbAction,
    /// The callback's captured data panics when dropped.
    panicky_drop: bool,
}

/// One step of a task's body.
#[derive(Arbitrary, Debug, Clone)]
enum Step {
    Yield,
    Sleep(u8),
    /// Awaits future or task `r` of the creating thread.
    Await {
        r: u8,
        swallow: bool,
    },
    Gather {
        rs: Vec<u8>,
        return_exceptions: bool,
        swallow: bool,
    },
    Wait {
        rs: Vec<u8>,
        timeout: Option<u8>,
        when: u8,
    },
    WaitFor {
        r: u8,
        timeout: u8,
    },
    /// Awaits concurrent future `cf`.
    AwaitCf {
        cf: u8,
        swallow: bool,
    },
    /// `current_task().cancel()`.
    CancelSelf,
}

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq)]
enum End {
    Return(u8),
    Raise(u8),
    Panic,
}

#[derive(Arbitrary, Debug, Clone)]
struct Script {
    steps: Vec<Step>,
    end: End,
    /// The task's future holds data whose `Drop` panics.
    panicky_drop: bool,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Outcome {
    Ok(u8),
    Err(u8),
}

#[derive(Arbitrary, Debug, Clone)]
enum Target {
    /// A coroutine: `run_until_complete` wraps it in a task.
    Script(Script),
    /// Task `n` of the running thread.
    Task(u8),
    /// Future `n` of the running thread.
    Future(u8),
    /// `gather` of futures/tasks of the running thread.
    Gather {
        rs: Vec<u8>,
        return_exceptions: bool,
    },
}

#[derive(Arbitrary, Debug, Clone)]
enum Op {
    NewLoop,
    SetLoop { th: u8, lp: Option<u8> },
    GetLoop { th: u8 },
    CallSoon { th: u8, lp: u8, cb: Cb },
    CallLater { th: u8, lp: u8, delay: u8, cb: Cb },
    CallSoonThreadsafe { th: u8, lp: u8, cb: Cb },
    CancelHandle { th: u8, h: u8 },
    CreateTask { th: u8, lp: u8, script: Script },
    CancelTask { th: u8, task: u8, msg: bool },
    NewFuture { th: u8, lp: u8 },
    CompleteFuture { th: u8, f: u8, outcome: Outcome },
    CancelFuture { th: u8, f: u8 },
    RunOnce { th: u8, lp: u8 },
    RunUntilComplete { th: u8, lp: u8, target: Target },
    RunForever { th: u8, lp: u8, delay: u8 },
    Stop { th: u8, lp: u8 },
    Close { th: u8, lp: u8 },
    RunCoroutineThreadsafe { th: u8, lp: u8, script: Script },
    NewConcurrent,
    SetRunning { th: u8, cf: u8 },
    CompleteConcurrent { th: u8, cf: u8, outcome: Outcome },
    CancelConcurrent { th: u8, cf: u8 },
    WrapFuture { th: u8, cf: u8, lp: u8 },
    SetHandler { lp: u8, panicky: bool },
    RestartThread { th: u8 },
}

#[derive(Arbitrary, Debug, Clone)]
struct OpsProgram {
    profile: u8,
    ops: Vec<Op>,
}

const DELAYS: [f64; 8] = [0.0, 0.5, 1.0, 2.0, 5.0, -1.0, f64::NAN, 1e-10];

fn delay_of(d: u8) -> f64 {
    DELAYS[d as usize % DELAYS.len()]
}

fn trim_script(s: &mut Script) {
    s.steps.truncate(STEPS_MAX);
    for st in &mut s.steps {
        match st {
            Step::Gather { rs, .. } | Step::Wait { rs, .. } => rs.truncate(3),
            _ => {}
        }
    }
}

fn decode_ops(data: &[u8]) -> Option<OpsProgram> {
    let mut u = Unstructured::new(data);
    let mut p = OpsProgram::arbitrary(&mut u).ok()?;
    p.ops.truncate(OPS_MAX);
    for op in &mut p.ops {
        match op {
            Op::CreateTask { script, .. } | Op::RunCoroutineThreadsafe { script, .. } => {
                trim_script(script)
            }
            Op::RunUntilComplete { target, .. } => match target {
                Target::Script(s) => trim_script(s),
                Target::Gather { rs, .. } => rs.truncate(3),
                _ => {}
            },
            _ => {}
        }
    }
    Some(p)
}

/// The program `data` decodes to for [`run_ops`], for reports.
pub fn describe_ops(data: &[u8]) -> String {
    format!("{:#?}", decode_ops(data))
}

// ----------------------------------------------------------------------
// What user code records: the log shared by callbacks, bodies and guards
// ----------------------------------------------------------------------

thread_local! {
    /// The interpreter's index of this thread (usize::MAX: not one of ours).
    static WHO: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// `WHO` of a thread that is exiting (its thread-locals are being dropped).
const EXITING: usize = usize::MAX - 1;

fn who() -> usize {
    WHO.with(Cell::get)
}

#[derive(Debug, Clone, Default)]
struct CbObs {
    lp: usize,
    ran: u32,
    dropped: u32,
    ran_thread: usize,
    ran_time: f64,
    ran_at: usize,
    /// Its data's `Drop` panicked.
    drop_panicked: bool,
}

#[derive(Debug, Clone, Default)]
struct TaskObs {
    steps: Vec<usize>,
    ended: bool,
    propagated: bool,
    coro_dropped: u32,
    /// The task exists: its future's data may panic in `Drop` from now on.
    /// (A coroutine refused by a call is dropped inside that call, and a
    /// panic there would leak the call's return value: a Rust limitation,
    /// rust-lang/rust#47949, not the loop's.)
    armed: bool,
    /// Its loop's index.
    lp: usize,
}

#[derive(Default)]
struct Log {
    cbs: Vec<CbObs>,
    /// Callback ids in the order they ran.
    ran_order: Vec<usize>,
    /// Handles of accepted callbacks, for `Cancel` actions and ops.
    handles: Vec<Handle>,
    handle_cb: Vec<usize>,
    loops: Vec<EventLoop>,
    tasks: Vec<TaskObs>,
    /// Exception handler calls: (loop index, context).
    exceptions: Vec<(usize, ExceptionContext)>,
    violations: Vec<String>,
    /// Tasks that a `wait_for` or a gather may have cancelled.
    cancel_touched: Vec<usize>,
}

type Shared = Arc<Mutex<Log>>;

fn lock(s: &Shared) -> MutexGuard<'_, Log> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

fn violation(s: &Shared, msg: String) {
    lock(s).violations.push(msg);
}

enum GuardOf {
    Cb(usize),
    Coro(usize),
}

/// User data captured by a callback or a task's future: records its drop,
/// and panics in `Drop` when asked to (not while already panicking).
struct Guard {
    log: Shared,
    of: GuardOf,
    panicky: bool,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let (armed, lp) = {
            let mut l = lock(&self.log);
            let (armed, lp) = match self.of {
                GuardOf::Cb(i) => {
                    l.cbs[i].dropped += 1;
                    (true, l.cbs[i].lp)
                }
                GuardOf::Coro(i) => {
                    l.tasks[i].coro_dropped += 1;
                    (l.tasks[i].armed, l.tasks[i].lp)
                }
            };
            (armed, l.loops.get(lp).cloned())
        };
        // A panic while another unwinds would abort the process (Rust's
        // rule, not the loop's), so the data does not panic then.
        let _ = lp;
        if self.panicky && !thread::panicking() && armed {
            if let GuardOf::Cb(i) = self.of {
                lock(&self.log).cbs[i].drop_panicked = true;
            }
            std::panic::panic_any(INTENTIONAL_DROP_PANIC);
        }
    }
}

fn install_handler(log: &Shared, lp: &EventLoop, index: usize, panicky: bool) {
    let log = log.clone();
    lp.set_exception_handler(Some(std::sync::Arc::new(
        move |_lp: &EventLoop, ctx: &ExceptionContext| {
            lock(&log).exceptions.push((index, ctx.clone()));
            if panicky {
                std::panic::panic_any(INTENTIONAL_PANIC);
            }
        },
    )));
}

/// A callback for `call_soon` & co.: records that it ran (once), checks what
/// it can see from inside, and does its action.
fn make_cb(
    log: &Shared,
    policy: &Policy,
    id: usize,
    lp: usize,
    cb: Cb,
) -> Box<dyn FnOnce() + Send> {
    let guard = Guard {
        log: log.clone(),
        of: GuardOf::Cb(id),
        panicky: cb.panicky_drop,
    };
    let log = log.clone();
    let policy = policy.clone();
    Box::new(move || {
        let _guard = guard;
        let (me, loops) = {
            let l = lock(&log);
            (l.loops[lp].clone(), l.loops.clone())
        };
        let now = me.time();
        {
            let mut l = lock(&log);
            let at = l.ran_order.len();
            l.ran_order.push(id);
            let o = &mut l.cbs[id];
            o.ran += 1;
            o.ran_thread = who();
            o.ran_time = now;
            o.ran_at = at;
        }
        if crate::get_running_loop().ok().as_ref() != Some(&me) {
            violation(
                &log,
                format!("POLICY-10: callback {id} does not see its loop as running"),
            );
        }
        match cb.action {
            CbAction::Nothing => {}
            CbAction::Panic => std::panic::panic_any(INTENTIONAL_PANIC),
            CbAction::Stop => me.stop(),
            CbAction::Cancel(h) => {
                let h = {
                    let l = lock(&log);
                    (!l.handles.is_empty()).then(|| l.handles[h as usize % l.handles.len()].clone())
                };
                if let Some(h) = h {
                    Handle::cancel(&h);
                }
            }
            CbAction::Spawn => {
                let child = {
                    let mut l = lock(&log);
                    l.cbs.push(CbObs {
                        lp,
                        ..CbObs::default()
                    });
                    l.cbs.len() - 1
                };
                let f = make_cb(
                    &log,
                    &policy,
                    child,
                    lp,
                    Cb {
                        action: CbAction::Nothing,
                        panicky_drop: false,
                    },
                );
                if let Err(e) = me.call_soon(f) {
                    violation(
                        &log,
                        format!("SCHED-2: call_soon from a running callback failed: {e:?}"),
                    );
                }
            }
            CbAction::CloseOwn => {
                let r = me.close();
                if r != Err(Error::CloseRunning) || !me.is_running() || me.is_closed() {
                    violation(
                        &log,
                        format!("LIFE-7: close() of the running loop gave {r:?}"),
                    );
                }
            }
            CbAction::RunOwn => {
                let r = me.run_forever();
                let still = crate::get_running_loop().ok();
                if r != Err(Error::AlreadyRunning)
                    || !me.is_running()
                    || still.as_ref() != Some(&me)
                {
                    violation(
                        &log,
                        format!("LIFE-5/LIFE-6: nested run_forever gave {r:?}"),
                    );
                }
            }
            CbAction::RunOther(k) => {
                let other = loops[k as usize % loops.len()].clone();
                let closed = other.is_closed();
                let r = other.run_forever();
                let want = if other == me {
                    Error::AlreadyRunning
                } else if closed {
                    Error::Closed
                } else if other.is_running() {
                    Error::AlreadyRunning
                } else {
                    Error::AnotherLoopRunning
                };
                let still = crate::get_running_loop().ok();
                if r != Err(want.clone()) || still.as_ref() != Some(&me) {
                    violation(
                        &log,
                        format!(
                            "LIFE-5/LIFE-6: run_forever of another loop inside a callback gave {r:?}, want {want:?}"
                        ),
                    );
                }
            }
            CbAction::GetLoop => {
                let got = crate::get_event_loop_with(&policy).ok();
                if got.as_ref() != Some(&me) {
                    violation(
                        &log,
                        "POLICY-2: get_event_loop() in a callback is not the running loop".into(),
                    );
                }
            }
        }
    })
}

// ----------------------------------------------------------------------
// Task bodies
// ----------------------------------------------------------------------

/// A task's future with user data beside it: the data is dropped when the
/// future is (after completion, or when the loop destroys the task).
struct WithGuard<F> {
    fut: Pin<Box<F>>,
    _guard: Guard,
}

impl<F: std::future::Future> std::future::Future for WithGuard<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.fut.as_mut().poll(cx)
    }
}

/// A future a body can await: a plain future or a task (by model id).
#[derive(Clone)]
struct Ref {
    fut: Future<u32>,
    task: Option<usize>,
}

fn pick(refs: &[Ref], r: u8) -> Option<Ref> {
    (!refs.is_empty()).then(|| refs[r as usize % refs.len()].clone())
}

fn pick_cf(cfs: &[ConcurrentFuture<u32>], r: u8) -> Option<ConcurrentFuture<u32>> {
    (!cfs.is_empty()).then(|| cfs[r as usize % cfs.len()].clone())
}

/// Runs a call that takes user data by value: when the call refuses it, the
/// data is dropped inside the call, and a panicking `Drop` comes out of it.
/// That panic becomes the marker `Err(Panic(INTENTIONAL_DROP_PANIC))`, which
/// the model replaces with the refusal it expects.
fn guarded<R>(f: impl FnOnce() -> crate::Result<R>) -> crate::Result<R> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) if panic_message(&*p) == INTENTIONAL_DROP_PANIC => {
            Err(Error::Panic(INTENTIONAL_DROP_PANIC.into()))
        }
        Err(p) => std::panic::resume_unwind(p),
    }
}

fn raised(n: u8) -> Error {
    Error::raise("ValueError", format!("raised {n}"))
}

fn cf_error(n: u8) -> Error {
    Error::raise("KeyError", format!("cf {n}"))
}

/// Checks a child's state against what `gather` reported for it.
fn check_entry(log: &Shared, child: &Future<u32>, entry: &crate::Result<u32>) {
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

async fn gather_step(
    log: &Shared,
    children: Vec<Ref>,
    return_exceptions: bool,
) -> crate::Result<()> {
    if children.is_empty() {
        return crate::yield_now().await;
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
    let g = crate::gather(futs.clone(), return_exceptions)?;
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

async fn wait_step(
    log: &Shared,
    children: Vec<Ref>,
    timeout: Option<u8>,
    when: u8,
) -> crate::Result<()> {
    let futs: Vec<Future<u32>> = children.iter().map(|c| c.fut.clone()).collect();
    let return_when = match when % 3 {
        0 => ReturnWhen::AllCompleted,
        1 => ReturnWhen::FirstCompleted,
        _ => ReturnWhen::FirstException,
    };
    let timeout = timeout.map(delay_of);
    let r = crate::wait(futs.clone(), timeout, return_when).await;
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

async fn wait_for_step(log: &Shared, child: Ref, timeout: u8) -> crate::Result<()> {
    if let Some(t) = child.task {
        lock(log).cancel_touched.push(t);
    }
    let r = crate::wait_for(child.fut.clone(), Some(delay_of(timeout))).await;
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
fn make_body(
    log: &Shared,
    tid: usize,
    script: &Script,
    refs: Vec<Ref>,
    cfs: Vec<ConcurrentFuture<u32>>,
) -> WithGuard<impl std::future::Future<Output = crate::Result<u32>> + 'static + use<>> {
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
            let (r, swallow): (crate::Result<()>, bool) = match step {
                Step::Yield => (crate::yield_now().await, false),
                Step::Sleep(d) => (crate::sleep(delay_of(d)).await, false),
                Step::Await { r, swallow } => match pick(&refs, r) {
                    Some(f) => (f.fut.await.map(drop), swallow),
                    None => (crate::yield_now().await, swallow),
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
                    None => (crate::yield_now().await, false),
                },
                Step::AwaitCf { cf, swallow } => match pick_cf(&cfs, cf) {
                    Some(cf) => (cf.await.map(drop), swallow),
                    None => (crate::yield_now().await, swallow),
                },
                Step::CancelSelf => {
                    match crate::current_task() {
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
        _guard: guard,
    }
}

/// Checks a finished task's outcome against its script (TASK-4, TASK-14).
fn check_task_outcome(
    tid: usize,
    script: &Script,
    obs: &TaskObs,
    may_cancel: bool,
    outcome: &crate::Result<u32>,
    cancelled: bool,
) -> Result<(), String> {
    if obs.steps.iter().enumerate().any(|(i, s)| i != *s) || obs.steps.len() > script.steps.len() {
        return Err(format!(
            "task {tid}: steps ran out of order or twice: {:?}",
            obs.steps
        ));
    }
    if obs.ended && obs.steps.len() != script.steps.len() {
        return Err(format!("task {tid}: ended without running every step"));
    }
    if cancelled {
        if !may_cancel && !obs.propagated {
            return Err(format!(
                "TASK-4: task {tid} ended cancelled though nobody cancelled it"
            ));
        }
        return Ok(());
    }
    let fine = match outcome {
        Ok(v) => obs.ended && script.end == End::Return(*v as u8) && u32::from(*v as u8) == *v,
        Err(Error::Panic(m)) if m == INTENTIONAL_PANIC => obs.ended && script.end == End::Panic,
        Err(e @ Error::Exception(_)) => {
            obs.ended && matches!(script.end, End::Raise(n) if raised(n) == *e)
        }
        Err(_) => false,
    };
    if fine {
        Ok(())
    } else {
        Err(format!(
            "task {tid}: outcome {outcome:?} does not follow its script (ended={}, end={:?})",
            obs.ended, script.end
        ))
    }
}

/// Checks the exception handler's reports are ones SPEC.md describes.
fn check_context(ctx: &ExceptionContext) -> Result<(), String> {
    let m = ctx.message.as_str();
    let exc_ok = |intentional_only: bool| match &ctx.exception {
        Some(e @ Error::Panic(_)) => is_intentional_error(e),
        Some(_) => !intentional_only,
        None => false,
    };
    let ok = if m.starts_with("Exception in callback ") {
        exc_ok(true)
    } else if m == "Task was destroyed but it is pending!" {
        ctx.task.is_some()
    } else if m == "Task exception was never retrieved"
        || m == "Future exception was never retrieved"
    {
        exc_ok(false)
    } else if m == "unhandled exception during asyncio.run() shutdown" {
        // RUNNER-4: a `LoopThread` is a runner; closing it reports a task
        // that ended with an exception instead of its cancellation.
        ctx.task.is_some() && exc_ok(false)
    } else if m.starts_with("Exception while dropping ") {
        matches!(&ctx.exception, Some(Error::Panic(p)) if p == INTENTIONAL_DROP_PANIC)
    } else {
        false
    };
    if ok {
        Ok(())
    } else {
        Err(format!("unexpected exception handler call: {ctx:?}"))
    }
}

// ----------------------------------------------------------------------
// Lock-step threads
// ----------------------------------------------------------------------

/// What one thread holds that is not `Send`: its tasks and futures.
#[derive(Default)]
struct Local {
    tasks: Vec<LTask>,
    futs: Vec<LFut>,
}

struct LTask {
    tid: usize,
    lp: usize,
    task: Task<u32>,
    /// Once seen done: whether it was cancelled (FUT-1: never changes).
    seen: Option<bool>,
}

struct LFut {
    lp: usize,
    fut: Future<u32>,
    /// The concurrent future it wraps (`wrap_future`), if any.
    wraps: Option<usize>,
    /// Completed or cancelled by an operation (not by its chain).
    touched: bool,
    seen: Option<bool>,
}

impl Local {
    fn refs(&self) -> Vec<Ref> {
        self.tasks
            .iter()
            .map(|t| Ref {
                fut: t.task.as_future().clone(),
                task: Some(t.tid),
            })
            .chain(self.futs.iter().map(|f| Ref {
                fut: f.fut.clone(),
                task: None,
            }))
            .collect()
    }

    /// FUT-1: a future leaves pending once and never changes its final
    /// state.
    fn check_stable(&mut self) -> Result<(), String> {
        let states = self
            .tasks
            .iter_mut()
            .map(|t| (&mut t.seen, t.task.as_future().clone()))
            .chain(self.futs.iter_mut().map(|f| (&mut f.seen, f.fut.clone())));
        for (seen, fut) in states {
            match *seen {
                Some(c) if !fut.done() || fut.cancelled() != c => {
                    return Err(format!("FUT-1: {fut:?} left its final state"));
                }
                None if fut.done() => *seen = Some(fut.cancelled()),
                _ => {}
            }
        }
        Ok(())
    }

    /// Pending tasks of loop `lp`: (model id, name).
    fn pending_tasks(&self, lp: usize) -> Vec<(usize, String)> {
        self.tasks
            .iter()
            .filter(|t| t.lp == lp && !t.task.done())
            .map(|t| (t.tid, t.task.get_name()))
            .collect()
    }
}

type Job = Box<dyn FnOnce(&mut Local) -> Box<dyn Any + Send> + Send>;

struct Worker {
    jobs: Option<mpsc::Sender<Job>>,
    done: mpsc::Receiver<thread::Result<Box<dyn Any + Send>>>,
    join: Option<thread::JoinHandle<()>>,
}

impl Worker {
    fn spawn(index: usize) -> Worker {
        let (jobs, job_rx) = mpsc::channel::<Job>();
        let (done_tx, done) = mpsc::channel();
        let join = thread::Builder::new()
            .name(format!("fuzz-t{index}"))
            .spawn(move || {
                WHO.with(|w| w.set(index));
                let mut local = Local::default();
                while let Ok(job) = job_rx.recv() {
                    let r = catch_unwind(AssertUnwindSafe(|| {
                        let out = job(&mut local);
                        if let Err(e) = local.check_stable() {
                            panic!("{e}");
                        }
                        out
                    }));
                    if done_tx.send(r).is_err() {
                        break;
                    }
                }
                drop(local);
                WHO.with(|w| w.set(EXITING));
            })
            .expect("spawn a fuzz thread");
        Worker {
            jobs: Some(jobs),
            done,
            join: Some(join),
        }
    }

    /// Runs `f` on this thread and waits for it.
    fn exec<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Local) -> R + Send + 'static,
    ) -> Result<R, String> {
        let job: Job = Box::new(move |l| Box::new(f(l)) as Box<dyn Any + Send>);
        self.jobs
            .as_ref()
            .ok_or("thread already stopped")?
            .send(job)
            .map_err(|_| "fuzz thread died".to_string())?;
        match self.done.recv() {
            Ok(Ok(b)) => Ok(*b.downcast::<R>().expect("job result type")),
            Ok(Err(p)) => Err(format!("a panic escaped: {}", panic_message(&*p))),
            Err(_) => Err("fuzz thread died".into()),
        }
    }

    /// Ends the thread (its thread-local state is dropped) and joins it.
    fn stop(&mut self) -> Result<(), String> {
        self.jobs = None;
        match self.join.take().map(thread::JoinHandle::join) {
            Some(Err(p)) => Err(format!(
                "a panic escaped at thread exit: {}",
                panic_message(&*p)
            )),
            _ => Ok(()),
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

// ----------------------------------------------------------------------
// The model of run_ops
// ----------------------------------------------------------------------

/// Where a loop's loop-bound work may live: a set of possibilities, bit 0
/// for "no home" and bit 1 + t for "thread t" (THREAD-1, THREAD-3).
#[derive(Debug, Clone, Copy, PartialEq)]
struct HomeSet(u8);

const FREE: HomeSet = HomeSet(1);

impl HomeSet {
    fn at(t: usize) -> HomeSet {
        HomeSet(2 << t)
    }
    fn has(self, o: HomeSet) -> bool {
        self.0 & o.0 != 0
    }
    fn may_be_free_or(self, t: usize) -> bool {
        self.has(FREE) || self.has(HomeSet::at(t))
    }
    /// Homes other than `t` it may be.
    fn others(self, t: usize) -> Vec<usize> {
        (0..THREADS)
            .filter(|&u| u != t && self.has(HomeSet::at(u)))
            .collect()
    }
    /// What is left once "no home" and `t` are ruled out.
    fn other_homes(self, t: usize) -> HomeSet {
        HomeSet(self.0 & !(FREE.0 | HomeSet::at(t).0))
    }
    fn only_free_or(self, t: usize) -> bool {
        self.other_homes(t).0 == 0
    }
    fn union(self, o: HomeSet) -> HomeSet {
        HomeSet(self.0 | o.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Soon,
    Threadsafe,
    Timer(f64),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Loc {
    Inbox,
    Half(usize),
    Unknown,
}

#[derive(Debug, Clone)]
struct CbM {
    lp: usize,
    kind: Kind,
    loc: Loc,
    action: CbAction,
    accepted: bool,
    cancelled: bool,
    handle: Option<usize>,
    /// Its drop was already seen by `after_op`.
    drop_seen: bool,
}

#[derive(Debug, Clone)]
struct TaskM {
    th: usize,
    script: Script,
    may_cancel: bool,
    cancelled_before_start: bool,
    /// Its body exists (the task was made, or offered to `create_task`).
    built: bool,
    rcts: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum CfKind {
    Plain { wrapped: bool },
    Rcts { lp: usize, tid: usize },
}

struct CfM {
    cf: ConcurrentFuture<u32>,
    kind: CfKind,
    state: CfState,
    cancel_called: bool,
    /// For plain futures: what they were finished with.
    outcome: Option<crate::Result<u32>>,
}

#[derive(Debug, Clone, Copy, Default)]
struct SlotM {
    current: Option<usize>,
    set_called: bool,
}

struct LoopM {
    lp: EventLoop,
    closed: bool,
    home: HomeSet,
}

fn thread_name(t: usize) -> String {
    format!("fuzz-t{t}")
}

fn is_due(when: f64, now: f64) -> bool {
    when <= now || when < now + 1e-9
}

struct Ops {
    prog: OpsProgram,
    log: Shared,
    workers: Vec<Worker>,
    policy: Policy,
    profile: Profile,
    loops: Vec<LoopM>,
    cbs: Vec<CbM>,
    tasks: Vec<TaskM>,
    cfs: Vec<CfM>,
    slots: [SlotM; THREADS],
    op: usize,
    exceptions_seen: usize,
    ran_seen: usize,
    /// Per loop: the last plain (non-timer) callback that ran (SCHED-2).
    fifo_last: Vec<Option<usize>>,
}

macro_rules! ensure {
    ($cond:expr, $($msg:tt)*) => {{
        let holds: bool = $cond;
        if !holds {
            return Err(format!($($msg)*));
        }
    }};
}

impl Ops {
    fn new(prog: OpsProgram) -> Result<Ops, String> {
        let workers: Vec<Worker> = (0..THREADS).map(Worker::spawn).collect();
        let main = workers[0].exec(|_| thread::current().id())?;
        let profile = Profile::ALL[prog.profile as usize % Profile::ALL.len()];
        let policy = Policy::new(profile)
            .with_main_thread(main)
            .with_clock(ClockKind::Virtual);
        Ok(Ops {
            prog,
            log: Shared::default(),
            workers,
            policy,
            profile,
            loops: Vec::new(),
            cbs: Vec::new(),
            tasks: Vec::new(),
            cfs: Vec::new(),
            slots: [SlotM::default(); THREADS],
            op: 0,
            exceptions_seen: 0,
            ran_seen: 0,
            fifo_last: Vec::new(),
        })
    }

    fn exec<R: Send + 'static>(
        &self,
        th: usize,
        f: impl FnOnce(&mut Local) -> R + Send + 'static,
    ) -> Result<R, String> {
        self.workers[th].exec(f)
    }

    fn add_loop(&mut self, lp: EventLoop) -> usize {
        let i = self.loops.len();
        install_handler(&self.log, &lp, i, false);
        lock(&self.log).loops.push(lp.clone());
        self.loops.push(LoopM {
            lp,
            closed: false,
            home: FREE,
        });
        self.fifo_last.push(None);
        i
    }

    fn lp(&self, l: u8) -> Option<usize> {
        (!self.loops.is_empty()).then(|| l as usize % self.loops.len())
    }

    fn new_cb(&mut self, lp: usize, kind: Kind, cb: Cb) -> usize {
        lock(&self.log).cbs.push(CbObs {
            lp,
            ..CbObs::default()
        });
        self.cbs.push(CbM {
            lp,
            kind,
            loc: Loc::Unknown,
            action: cb.action,
            accepted: false,
            cancelled: false,
            handle: None,
            drop_seen: false,
        });
        self.cbs.len() - 1
    }

    fn new_task(&mut self, th: usize, lp: usize, script: &Script, rcts: Option<usize>) -> usize {
        lock(&self.log).tasks.push(TaskObs {
            lp,
            ..TaskObs::default()
        });
        let may_cancel = script.steps.iter().any(|s| matches!(s, Step::CancelSelf));
        self.tasks.push(TaskM {
            th,
            script: script.clone(),
            may_cancel,
            cancelled_before_start: false,
            built: rcts.is_none(),
            rcts,
        });
        self.tasks.len() - 1
    }

    fn cf_handles(&self) -> Vec<ConcurrentFuture<u32>> {
        self.cfs.iter().map(|c| c.cf.clone()).collect()
    }

    /// The model's answer for a loop-bound call by `th` on loop `l` that
    /// returned `got` (THREAD-1, LIFE-8). Updates the home.
    fn bound_call(&mut self, l: usize, th: usize, got: &crate::Result<()>) -> Result<(), String> {
        let m = &mut self.loops[l];
        if m.closed {
            ensure!(
                *got == Err(Error::Closed),
                "LIFE-8: loop-bound call on a closed loop gave {got:?}"
            );
            return Ok(());
        }
        match got {
            Ok(()) => {
                ensure!(
                    m.home.may_be_free_or(th),
                    "THREAD-1: loop-bound call from thread {th} succeeded while the work lives on {:?}",
                    m.home
                );
                m.home = HomeSet::at(th);
                for cb in self
                    .cbs
                    .iter_mut()
                    .filter(|c| c.lp == l && c.loc == Loc::Inbox)
                {
                    cb.loc = Loc::Half(th);
                }
            }
            Err(Error::NonThreadSafeCall) => {
                let others = m.home.others(th);
                ensure!(
                    !others.is_empty(),
                    "THREAD-1: NonThreadSafeCall for thread {th} though the work may live there ({:?})",
                    m.home
                );
                m.home = m.home.other_homes(th);
            }
            Err(e) => return Err(format!("loop-bound call gave {e:?}")),
        }
        Ok(())
    }

    /// The error a refused loop-bound call must have had (it dropped the
    /// user's data inside the call, so the error itself was not seen).
    fn refusal(&self, l: usize, th: usize, nan: bool, threadsafe: bool) -> Result<Error, String> {
        let m = &self.loops[l];
        if nan {
            Ok(Error::NanTime)
        } else if m.closed {
            Ok(Error::Closed)
        } else if !threadsafe && !m.home.others(th).is_empty() {
            Ok(Error::NonThreadSafeCall)
        } else {
            Err("a call that should accept its callback dropped it".into())
        }
    }

    /// A call that schedules work only if a future has waiters: it may
    /// claim a free loop, and (by `th` as the home) it may move the inbox
    /// into `th`'s half.
    fn maybe_claim(&mut self, l: usize, th: usize) {
        let m = &mut self.loops[l];
        if m.closed || !m.home.may_be_free_or(th) {
            return;
        }
        if m.home.has(FREE) {
            m.home = m.home.union(HomeSet::at(th));
        }
        for cb in self
            .cbs
            .iter_mut()
            .filter(|c| c.lp == l && c.loc == Loc::Inbox)
        {
            cb.loc = Loc::Unknown;
        }
    }

    /// The model's answer for a run by `th` of loop `l` that returned
    /// `got` (LIFE-8, LIFE-5, THREAD-2). Returns whether the run happened.
    fn run_checks(&mut self, l: usize, th: usize, got: &crate::Result<()>) -> Result<bool, String> {
        let m = &self.loops[l];
        if m.closed {
            ensure!(
                *got == Err(Error::Closed),
                "LIFE-8: run of a closed loop gave {got:?}"
            );
            self.discarded(l, th)?;
            return Ok(false);
        }
        match got {
            Ok(()) => {
                ensure!(
                    m.home.may_be_free_or(th),
                    "THREAD-2: run from thread {th} succeeded while the work lives on {:?}",
                    m.home
                );
                Ok(true)
            }
            Err(Error::BoundToThread { thread }) => {
                let u = m
                    .home
                    .others(th)
                    .into_iter()
                    .find(|u| thread_name(*u) == *thread);
                match u {
                    Some(u) => {
                        self.loops[l].home = HomeSet::at(u);
                        Ok(false)
                    }
                    None => Err(format!(
                        "THREAD-2: BoundToThread({thread}) but the work may live on {:?}",
                        m.home
                    )),
                }
            }
            Err(e) => Err(format!("run gave {e:?}")),
        }
    }

    /// After a run that happened on `th`: where the work lives now.
    fn after_run(&mut self, l: usize, th: usize, pending_tasks: &[(usize, String)]) {
        let log = lock(&self.log);
        let mut busy = !pending_tasks.is_empty();
        for (i, cb) in self.cbs.iter_mut().enumerate() {
            if cb.lp != l || !cb.accepted {
                continue;
            }
            if matches!(cb.loc, Loc::Inbox | Loc::Unknown) && log.cbs[i].dropped == 0 {
                cb.loc = Loc::Half(th);
            }
            if log.cbs[i].ran == 0 && log.cbs[i].dropped == 0 && !cb.cancelled {
                busy = true;
            }
        }
        drop(log);
        self.loops[l].home = if busy {
            HomeSet::at(th)
        } else {
            FREE.union(HomeSet::at(th))
        };
    }

    /// THREAD-5: thread `th` found loop `l` closed and must have dropped
    /// the work it held for it.
    fn discarded(&mut self, l: usize, th: usize) -> Result<(), String> {
        let log = lock(&self.log);
        for (i, cb) in self.cbs.iter().enumerate() {
            if cb.lp == l && cb.accepted && cb.loc == Loc::Half(th) {
                ensure!(
                    log.cbs[i].dropped == 1,
                    "THREAD-5/LIFE-7: callback {i} of closed loop {l} still held by thread {th}"
                );
            }
        }
        Ok(())
    }

    /// The callbacks one iteration of loop `l` runs, by the model (SCHED-1..4):
    /// the ready ones in FIFO order, then the timers due at `now` in deadline
    /// order, skipping those cancelled before their turn.
    fn predict_batch(&self, l: usize, now: f64) -> Vec<usize> {
        let log = lock(&self.log);
        let live = |i: usize| log.cbs[i].ran == 0 && log.cbs[i].dropped == 0;
        let mut batch: Vec<usize> = (0..self.cbs.len())
            .filter(|&i| {
                let c = &self.cbs[i];
                c.lp == l && c.accepted && !matches!(c.kind, Kind::Timer(_)) && live(i)
            })
            .collect();
        let mut timers: Vec<(f64, usize)> = (0..self.cbs.len())
            .filter_map(|i| match self.cbs[i].kind {
                Kind::Timer(w)
                    if self.cbs[i].lp == l
                        && self.cbs[i].accepted
                        && !self.cbs[i].cancelled
                        && live(i)
                        && is_due(w, now) =>
                {
                    Some((w, i))
                }
                _ => None,
            })
            .collect();
        timers.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        batch.extend(timers.into_iter().map(|(_, i)| i));
        let mut cancelled: Vec<bool> = self.cbs.iter().map(|c| c.cancelled).collect();
        let mut out = Vec::new();
        for i in batch {
            if cancelled[i] {
                continue;
            }
            out.push(i);
            if let CbAction::Cancel(h) = self.cbs[i].action
                && !log.handle_cb.is_empty()
            {
                cancelled[log.handle_cb[h as usize % log.handle_cb.len()]] = true;
            }
        }
        out
    }

    /// Checks after every operation; `run` is the loop run by `th` in it.
    fn after_op(&mut self, th: usize, run: Option<usize>) -> Result<Vec<usize>, String> {
        let mut log = lock(&self.log);
        if let Some(v) = log.violations.first() {
            return Err(v.clone());
        }
        // Callbacks spawned by callbacks.
        while self.cbs.len() < log.cbs.len() {
            let i = self.cbs.len();
            self.cbs.push(CbM {
                lp: log.cbs[i].lp,
                kind: Kind::Soon,
                loc: Loc::Half(th),
                action: CbAction::Nothing,
                accepted: true,
                cancelled: false,
                handle: None,
                drop_seen: false,
            });
        }
        // What ran in this operation.
        let ran: Vec<usize> = log.ran_order[self.ran_seen..].to_vec();
        self.ran_seen = log.ran_order.len();
        let mut want_panics = 0;
        let mut want_drop_panics = 0;
        for &i in &ran {
            let (c, o) = (&self.cbs[i], &log.cbs[i]);
            ensure!(c.accepted, "callback {i} ran but was refused");
            ensure!(
                run == Some(c.lp),
                "callback {i} of loop {} ran outside a run of its loop",
                c.lp
            );
            ensure!(
                o.ran_thread == th,
                "callback {i} ran on thread {} instead of {th}",
                o.ran_thread
            );
            ensure!(
                !c.cancelled,
                "SCHED-3: callback {i} ran after its handle was cancelled"
            );
            ensure!(
                !self.loops[c.lp].closed,
                "LIFE-7: callback {i} ran on a closed loop"
            );
            match c.kind {
                Kind::Timer(w) => ensure!(
                    o.ran_time >= w - 1e-9,
                    "SCHED-4/CLOCK-3: timer {i} due at {w} ran at {}",
                    o.ran_time
                ),
                _ => {
                    if let Some(last) = self.fifo_last[c.lp] {
                        ensure!(
                            last < i,
                            "SCHED-2/XTHREAD-2: callback {i} ran after the later callback {last}"
                        );
                    }
                    self.fifo_last[c.lp] = Some(i);
                }
            }
            match c.action {
                CbAction::Panic => want_panics += 1,
                _ if o.drop_panicked => want_drop_panics += 1,
                _ => {}
            }
        }
        // Cancels done by the callbacks that ran.
        for &i in &ran {
            if let CbAction::Cancel(h) = self.cbs[i].action
                && !log.handle_cb.is_empty()
            {
                let target = log.handle_cb[h as usize % log.handle_cb.len()];
                self.cbs[target].cancelled = true;
            }
        }
        // A cancelled `call_soon_threadsafe` callback is dropped where it
        // would have run, inside the run's catch: a panicking `Drop` there is
        // reported like a failing callback.
        let mut skipped_sent = 0;
        for (i, o) in log.cbs.iter().enumerate() {
            let c = &mut self.cbs[i];
            if o.dropped == 1 && !c.drop_seen {
                c.drop_seen = true;
                if o.ran == 0 && o.drop_panicked && c.kind == Kind::Threadsafe && run.is_some() {
                    skipped_sent += 1;
                }
            }
        }
        for (i, o) in log.cbs.iter().enumerate() {
            ensure!(
                o.ran <= 1 && o.dropped <= 1,
                "callback {i} ran {} times, dropped {} times",
                o.ran,
                o.dropped
            );
            ensure!(
                o.ran == 0 || o.dropped == 1,
                "callback {i} ran but its data was not dropped"
            );
            ensure!(
                self.cbs[i].accepted || (o.ran == 0 && o.dropped == 1),
                "refused callback {i} ran or was kept"
            );
        }
        // Exception handler reports.
        let mut panics = 0;
        let mut drop_panics = 0;
        for (_, ctx) in &log.exceptions[self.exceptions_seen..] {
            check_context(ctx)?;
            if ctx.message.starts_with("Exception in callback ") {
                match &ctx.exception {
                    Some(Error::Panic(m)) if m == INTENTIONAL_PANIC => panics += 1,
                    _ => drop_panics += 1,
                }
            }
        }
        self.exceptions_seen = log.exceptions.len();
        ensure!(
            panics == want_panics
                && drop_panics >= want_drop_panics
                && drop_panics <= want_drop_panics + skipped_sent,
            "SCHED-7: {panics}+{drop_panics} callback failures reported, {want_panics}+{want_drop_panics} expected"
        );
        for t in std::mem::take(&mut log.cancel_touched) {
            self.tasks[t].may_cancel = true;
        }
        drop(log);
        self.reconcile_cfs()?;
        Ok(ran)
    }

    /// Concurrent futures change state during runs (CHAIN-4 cancels a
    /// wrapped source; a task completes its `run_coroutine_threadsafe`
    /// future): check each change is allowed.
    fn reconcile_cfs(&mut self) -> Result<(), String> {
        for (i, c) in self.cfs.iter_mut().enumerate() {
            let now = c.cf.state();
            if now == c.state {
                continue;
            }
            let ok = matches!(
                (c.kind, c.state, now),
                (_, CfState::Cancelled, CfState::CancelledAndNotified)
                    | (
                        CfKind::Plain { wrapped: true },
                        CfState::Pending,
                        CfState::Cancelled
                    )
                    | (
                        CfKind::Rcts { .. },
                        CfState::Pending,
                        CfState::Finished | CfState::Cancelled | CfState::CancelledAndNotified,
                    )
            );
            ensure!(
                ok,
                "CONC-1: concurrent future {i} went from {:?} to {now:?}",
                c.state
            );
            c.state = now;
        }
        Ok(())
    }
}

impl Ops {
    fn step(&mut self, op: Op) -> Result<(), String> {
        let th_of = |t: u8| t as usize % THREADS;
        match op {
            Op::NewLoop => {
                if self.loops.len() < LOOPS_MAX {
                    let lp = self.policy.new_event_loop();
                    ensure!(
                        lp.clock_kind() == ClockKind::Virtual && lp.profile() == self.profile,
                        "POLICY-8: the policy's loop has the wrong clock or profile"
                    );
                    ensure!(
                        !lp.is_running() && !lp.is_closed(),
                        "LIFE-1: a new loop is running or closed"
                    );
                    self.add_loop(lp);
                }
                self.after_op(0, None)?;
            }
            Op::SetLoop { th, lp } => {
                let th = th_of(th);
                let target = lp.and_then(|l| self.lp(l));
                let lpv = target.map(|i| self.loops[i].lp.clone());
                let policy = self.policy.clone();
                self.exec(th, move |_| policy.set_event_loop(lpv.as_ref()))?;
                self.slots[th] = SlotM {
                    current: target,
                    set_called: true,
                };
                self.after_op(th, None)?;
            }
            Op::GetLoop { th } => {
                let th = th_of(th);
                let policy = self.policy.clone();
                let (got, warnings) = self.exec(th, move |_| {
                    let (got, warnings) =
                        crate::catch_warnings(|| crate::get_event_loop_with(&policy));
                    (got, warnings.len())
                })?;
                let slot = self.slots[th];
                match slot.current {
                    Some(i) => {
                        ensure!(
                            got.as_ref() == Ok(&self.loops[i].lp) && warnings == 0,
                            "POLICY-1: get_event_loop() on thread {th} gave {got:?}, want loop {i}"
                        );
                    }
                    None if th == 0 && !slot.set_called && self.profile < Profile::Py314 => {
                        let lp = got.map_err(|e| {
                            format!("POLICY-3: no implicit loop in the main thread: {e:?}")
                        })?;
                        ensure!(
                            self.loops.iter().all(|m| m.lp != lp),
                            "POLICY-3: the implicit loop is not new"
                        );
                        let warns = matches!(self.profile, Profile::Py312 | Profile::Py313);
                        ensure!(
                            warnings == usize::from(warns),
                            "POLICY-3: {warnings} warnings for profile {:?}",
                            self.profile
                        );
                        let i = self.add_loop(lp);
                        self.slots[0] = SlotM {
                            current: Some(i),
                            set_called: true,
                        };
                    }
                    None => {
                        let name = if th == 0 {
                            "MainThread".to_string()
                        } else {
                            thread_name(th)
                        };
                        ensure!(
                            got == Err(Error::NoCurrentLoop { thread: name }),
                            "POLICY-4/5: get_event_loop() on thread {th} gave {got:?}"
                        );
                    }
                }
                self.after_op(th, None)?;
            }
            Op::CallSoon { th, lp, cb }
            | Op::CallSoonThreadsafe { th, lp, cb }
            | Op::CallLater { th, lp, cb, .. } => {
                let Some(l) = self.lp(lp) else { return Ok(()) };
                let th = th_of(th);
                let (kind, delay) = match op {
                    Op::CallSoon { .. } => (Kind::Soon, 0.0),
                    Op::CallSoonThreadsafe { .. } => (Kind::Threadsafe, 0.0),
                    Op::CallLater { delay, .. } => (Kind::Timer(0.0), delay_of(delay)),
                    _ => unreachable!(),
                };
                let id = self.new_cb(l, kind, cb);
                let (log, policy, lpv) = (
                    self.log.clone(),
                    self.policy.clone(),
                    self.loops[l].lp.clone(),
                );
                let got = self.exec(th, move |_| {
                    let f = make_cb(&log, &policy, id, l, cb);
                    let r = guarded(|| match kind {
                        Kind::Soon => lpv.call_soon(f).map(|h| (h, None)),
                        Kind::Threadsafe => lpv.call_soon_threadsafe(f).map(|h| (h, None)),
                        Kind::Timer(_) => lpv
                            .call_later(delay, f)
                            .map(|t| (t.handle().clone(), Some(t.when()))),
                    });
                    r.map(|(h, when)| {
                        let mut l = lock(&log);
                        l.handles.push(h);
                        l.handle_cb.push(id);
                        (l.handles.len() - 1, when)
                    })
                })?;
                let got = match got {
                    Err(Error::Panic(m)) if m == INTENTIONAL_DROP_PANIC => {
                        let nan = kind == Kind::Timer(0.0) && delay.is_nan();
                        Err(self.refusal(l, th, nan, kind == Kind::Threadsafe)?)
                    }
                    r => r,
                };
                let unit = got.as_ref().map(drop).map_err(Clone::clone);
                if kind == Kind::Timer(0.0) && delay.is_nan() {
                    ensure!(
                        unit == Err(Error::NanTime),
                        "SCHED-6: NaN delay gave {unit:?}"
                    );
                } else if kind == Kind::Threadsafe {
                    let want = if self.loops[l].closed {
                        Err(Error::Closed)
                    } else {
                        Ok(())
                    };
                    ensure!(
                        unit == want,
                        "XTHREAD-1/3: call_soon_threadsafe gave {unit:?}, want {want:?}"
                    );
                } else {
                    self.bound_call(l, th, &unit)?;
                    if unit == Err(Error::Closed) {
                        self.discarded(l, th)?;
                    }
                }
                match got {
                    Ok((h, when)) => {
                        let c = &mut self.cbs[id];
                        c.accepted = true;
                        c.handle = Some(h);
                        c.loc = if kind == Kind::Threadsafe {
                            Loc::Inbox
                        } else {
                            Loc::Half(th)
                        };
                        if let Some(w) = when {
                            c.kind = Kind::Timer(w);
                        }
                    }
                    Err(_) => {
                        let o = lock(&self.log).cbs[id].clone();
                        ensure!(
                            o.dropped == 1 && o.ran == 0,
                            "LIFE-8: a refused callback was not dropped at once"
                        );
                    }
                }
                self.after_op(th, None)?;
            }
            Op::CancelHandle { th, h } => {
                let th = th_of(th);
                let n = lock(&self.log).handles.len();
                if n == 0 {
                    return Ok(());
                }
                let i = h as usize % n;
                let log = self.log.clone();
                self.exec(th, move |_| {
                    let h = lock(&log).handles[i].clone();
                    Handle::cancel(&h);
                    h.cancelled()
                })?;
                let cb = lock(&self.log).handle_cb[i];
                self.cbs[cb].cancelled = true;
                self.after_op(th, None)?;
            }
            Op::CreateTask { th, lp, script } => {
                let Some(l) = self.lp(lp) else { return Ok(()) };
                let th = th_of(th);
                let tid = self.new_task(th, l, &script, None);
                let (log, lpv, cfs) = (
                    self.log.clone(),
                    self.loops[l].lp.clone(),
                    self.cf_handles(),
                );
                let (got, touched) = self.exec(th, move |local| {
                    let refs = local.refs();
                    let touched: Vec<usize> = refs.iter().filter_map(|r| r.task).collect();
                    let body = make_body(&log, tid, &script, refs, cfs);
                    let r = guarded(|| lpv.create_task(body)).map(|task| {
                        lock(&log).tasks[tid].armed = true;
                        local.tasks.push(LTask {
                            tid,
                            lp: l,
                            task,
                            seen: None,
                        });
                    });
                    (r, touched)
                })?;
                let got = match got {
                    Err(Error::Panic(m)) if m == INTENTIONAL_DROP_PANIC => {
                        Err(self.refusal(l, th, false, false)?)
                    }
                    r => r,
                };
                for t in touched {
                    self.tasks[t].may_cancel = true;
                }
                if self.loops[l].closed {
                    ensure!(
                        got == Err(Error::Closed),
                        "LIFE-8: create_task on a closed loop gave {got:?}"
                    );
                    self.discarded(l, th)?;
                } else {
                    self.bound_call(l, th, &got)?;
                }
                if got.is_err() {
                    let o = lock(&self.log).tasks[tid].clone();
                    ensure!(
                        o.steps.is_empty() && o.coro_dropped == 1,
                        "LIFE-8: a refused coroutine was polled or kept"
                    );
                }
                self.after_op(th, None)?;
            }
            Op::CancelTask { th, task, msg } => {
                let th = th_of(th);
                let log = self.log.clone();
                let got = self.exec(th, move |local| {
                    if local.tasks.is_empty() {
                        return None;
                    }
                    let t = &local.tasks[task as usize % local.tasks.len()];
                    let started = !lock(&log).tasks[t.tid].steps.is_empty();
                    let done = t.task.done();
                    let r = t.task.cancel_with(msg.then(|| "fuzz".to_string()));
                    Some((t.tid, t.lp, done, started, r))
                })?;
                if let Some((tid, l, done, started, r)) = got {
                    ensure!(
                        r != done,
                        "TASK-4: cancel() of a task (done={done}) returned {r}"
                    );
                    if r {
                        self.tasks[tid].may_cancel = true;
                        if !started {
                            self.tasks[tid].cancelled_before_start = true;
                        }
                        // Scheduling the step that delivers it is loop-bound.
                        self.maybe_claim(l, th);
                    }
                }
                self.after_op(th, None)?;
            }
            Op::NewFuture { th, lp } => {
                let Some(l) = self.lp(lp) else { return Ok(()) };
                let th = th_of(th);
                let lpv = self.loops[l].lp.clone();
                let pending = self.exec(th, move |local| {
                    let fut = lpv.create_future::<u32>();
                    let pending = !fut.done();
                    local.futs.push(LFut {
                        lp: l,
                        fut,
                        wraps: None,
                        touched: false,
                        seen: None,
                    });
                    pending
                })?;
                ensure!(pending, "FUT-1: a new future is not pending");
                self.after_op(th, None)?;
            }
            Op::CompleteFuture { th, f, outcome } => {
                let th = th_of(th);
                let got = self.exec(th, move |local| {
                    if local.futs.is_empty() {
                        return None;
                    }
                    let n = local.futs.len();
                    let f = &mut local.futs[f as usize % n];
                    f.touched = true;
                    let before = f.fut.done();
                    let r = match outcome {
                        Outcome::Ok(v) => f.fut.set_result(u32::from(v)),
                        Outcome::Err(n) => f.fut.set_exception(raised(n)),
                    };
                    Some((f.lp, before, r, f.fut.done()))
                })?;
                if let Some((l, before, r, after)) = got {
                    if before {
                        ensure!(
                            r == Err(Error::InvalidState),
                            "FUT-3: completing a done future gave {r:?}"
                        );
                    } else {
                        ensure!(
                            after,
                            "LIFE-9: the future is not done after set_result/set_exception"
                        );
                        let m = &self.loops[l];
                        let ok = match &r {
                            Ok(()) => true,
                            Err(Error::Closed) => m.closed,
                            Err(Error::NonThreadSafeCall) => {
                                !m.closed && !m.home.others(th).is_empty()
                            }
                            Err(_) => false,
                        };
                        ensure!(
                            ok,
                            "LIFE-9/THREAD-1: completing a pending future gave {r:?}"
                        );
                        match r {
                            Ok(()) => self.maybe_claim(l, th),
                            Err(Error::NonThreadSafeCall) => {
                                self.loops[l].home = self.loops[l].home.other_homes(th);
                            }
                            _ => {}
                        }
                    }
                }
                self.after_op(th, None)?;
            }
            Op::CancelFuture { th, f } => {
                let th = th_of(th);
                let got = self.exec(th, move |local| {
                    if local.futs.is_empty() {
                        return None;
                    }
                    let n = local.futs.len();
                    let f = &mut local.futs[f as usize % n];
                    f.touched = true;
                    let before = f.fut.done();
                    let r = f.fut.cancel();
                    Some((f.lp, f.wraps, before, r, f.fut.cancelled()))
                })?;
                if let Some((l, wraps, before, r, cancelled)) = got {
                    ensure!(
                        r != before,
                        "FUT-4: cancel() of a future (done={before}) returned {r}"
                    );
                    ensure!(
                        before || cancelled,
                        "FUT-4: a cancelled future is not cancelled"
                    );
                    if r {
                        self.maybe_claim(l, th);
                        // A cancelled wrapper cancels its source (CHAIN-4),
                        // a run_coroutine_threadsafe future included.
                        if let Some(i) = wraps {
                            self.cfs[i].cancel_called = true;
                        }
                    }
                }
                self.after_op(th, None)?;
            }
            Op::RunOnce { th, lp } => {
                let Some(l) = self.lp(lp) else { return Ok(()) };
                let th = th_of(th);
                let lpv = self.loops[l].lp.clone();
                let now = lpv.time();
                let predicted = self.predict_batch(l, now);
                let (got, pending, after) = self.exec(th, move |local| {
                    lpv.stop();
                    let r = lpv.run_forever();
                    (r, local.pending_tasks(l), lpv.time())
                })?;
                let ran = self.run_checks(l, th, &got)?;
                if ran {
                    ensure!(
                        after == now,
                        "STOP-2: one iteration after stop() moved the clock from {now} to {after}"
                    );
                    self.after_run(l, th, &pending);
                }
                let actual = self.after_op(th, ran.then_some(l))?;
                if ran {
                    ensure!(
                        actual == predicted,
                        "SCHED-1/STOP-2: one iteration ran {actual:?}, the model says {predicted:?}"
                    );
                }
            }
            Op::RunForever { th, lp, delay } => {
                let Some(l) = self.lp(lp) else { return Ok(()) };
                let th = th_of(th);
                let lpv = self.loops[l].lp.clone();
                let d = delay_of(delay);
                let d = if d.is_nan() { 0.0 } else { d };
                let predicted = self.predict_batch(l, lpv.time());
                let (stopper, got, pending) = self.exec(th, move |local| {
                    let stopper_lp = lpv.clone();
                    let stopper = lpv.call_later(d, move || stopper_lp.stop());
                    let r = match &stopper {
                        Ok(_) => Some(lpv.run_forever()),
                        Err(_) => None,
                    };
                    if let Ok(h) = &stopper {
                        h.cancel();
                    }
                    (stopper.map(drop), r, local.pending_tasks(l))
                })?;
                self.bound_call(l, th, &stopper)?;
                let mut ran = false;
                if let Some(got) = got {
                    ran = self.run_checks(l, th, &got)?;
                    ensure!(
                        ran,
                        "run_forever refused after a loop-bound call succeeded: {got:?}"
                    );
                    self.after_run(l, th, &pending);
                } else if stopper == Err(Error::Closed) {
                    self.discarded(l, th)?;
                }
                let actual = self.after_op(th, ran.then_some(l))?;
                if ran {
                    ensure!(
                        is_subsequence(&predicted, &actual),
                        "SCHED-1: the first iteration did not run {predicted:?} (ran {actual:?})"
                    );
                }
            }
            Op::RunUntilComplete { th, lp, target } => {
                self.run_until_complete(th_of(th), lp, target)?
            }
            Op::Stop { th, lp } => {
                let Some(l) = self.lp(lp) else { return Ok(()) };
                let th = th_of(th);
                let lpv = self.loops[l].lp.clone();
                self.exec(th, move |_| lpv.stop())?;
                self.after_op(th, None)?;
            }
            Op::Close { th, lp } => {
                let Some(l) = self.lp(lp) else { return Ok(()) };
                self.close(th_of(th), l)?;
            }
            Op::RunCoroutineThreadsafe { th, lp, script } => {
                let Some(l) = self.lp(lp) else { return Ok(()) };
                let th = th_of(th);
                let tid = self.new_task(usize::MAX, l, &script, Some(self.cfs.len()));
                let (log, lpv, cfs) = (
                    self.log.clone(),
                    self.loops[l].lp.clone(),
                    self.cf_handles(),
                );
                let got = self.exec(th, move |_| {
                    let make = move || {
                        lock(&log).tasks[tid].steps.clear();
                        make_body(&log, tid, &script, Vec::new(), cfs)
                    };
                    crate::run_coroutine_threadsafe(make, &lpv)
                })?;
                let closed = self.loops[l].closed;
                match got {
                    Ok(cf) => {
                        ensure!(
                            !closed,
                            "XTHREAD-6: run_coroutine_threadsafe accepted work for a closed loop"
                        );
                        let state = cf.state();
                        ensure!(
                            state == CfState::Pending,
                            "XTHREAD-6: the concurrent future is {state:?} at once"
                        );
                        self.cfs.push(CfM {
                            cf,
                            kind: CfKind::Rcts { lp: l, tid },
                            state,
                            cancel_called: false,
                            outcome: None,
                        });
                    }
                    Err(e) => {
                        ensure!(
                            closed && e == Error::Closed,
                            "XTHREAD-6: run_coroutine_threadsafe gave {e:?}"
                        );
                        self.tasks[tid].rcts = None;
                    }
                }
                self.after_op(th, None)?;
            }
            Op::NewConcurrent => {
                self.cfs.push(CfM {
                    cf: ConcurrentFuture::new(),
                    kind: CfKind::Plain { wrapped: false },
                    state: CfState::Pending,
                    cancel_called: false,
                    outcome: None,
                });
            }
            Op::SetRunning { th, cf } | Op::CompleteConcurrent { th, cf, .. } => {
                let plain: Vec<usize> = (0..self.cfs.len())
                    .filter(|&i| matches!(self.cfs[i].kind, CfKind::Plain { .. }))
                    .collect();
                if plain.is_empty() {
                    return Ok(());
                }
                let i = plain[cf as usize % plain.len()];
                let th = th_of(th);
                let c = self.cfs[i].cf.clone();
                let before = self.cfs[i].state;
                match op {
                    Op::SetRunning { .. } => {
                        let got = self.exec(th, move |_| c.set_running_or_notify_cancel())?;
                        let (want, next) = match before {
                            CfState::Pending => (Ok(true), CfState::Running),
                            CfState::Cancelled => (Ok(false), CfState::CancelledAndNotified),
                            s => (Err(Error::UnexpectedState), s),
                        };
                        ensure!(
                            got == want,
                            "CONC-4: set_running_or_notify_cancel() in {before:?} gave {got:?}"
                        );
                        self.cfs[i].state = next;
                    }
                    Op::CompleteConcurrent { outcome, .. } => {
                        let value = match outcome {
                            Outcome::Ok(v) => Ok(u32::from(v)),
                            Outcome::Err(n) => Err(cf_error(n)),
                        };
                        let v2 = value.clone();
                        let got = self.exec(th, move |_| match v2 {
                            Ok(v) => c.set_result(v),
                            Err(e) => c.set_exception(e),
                        })?;
                        match before {
                            CfState::Pending | CfState::Running => {
                                ensure!(
                                    got == Ok(()),
                                    "CONC-5: completing a {before:?} future gave {got:?}"
                                );
                                self.cfs[i].state = CfState::Finished;
                                self.cfs[i].outcome = Some(value);
                            }
                            s => {
                                let ok = matches!(&got, Err(Error::ConcurrentInvalidState { message }) if message.starts_with(&format!("{}: <Future at ", s.name())));
                                ensure!(ok, "CONC-5: completing a {s:?} future gave {got:?}");
                            }
                        }
                    }
                    _ => unreachable!(),
                }
                self.after_op(th, None)?;
            }
            Op::CancelConcurrent { th, cf } => {
                if self.cfs.is_empty() {
                    return Ok(());
                }
                let i = cf as usize % self.cfs.len();
                let th = th_of(th);
                let c = self.cfs[i].cf.clone();
                let before = self.cfs[i].state;
                let got = self.exec(th, move |_| c.cancel())?;
                let want = !matches!(before, CfState::Running | CfState::Finished);
                ensure!(
                    got == want,
                    "CONC-3: cancel() of a {before:?} future returned {got}"
                );
                self.cfs[i].cancel_called = true;
                if before == CfState::Pending {
                    self.cfs[i].state = CfState::Cancelled;
                }
                let now = self.cfs[i].cf.state();
                ensure!(
                    !want || now.name().starts_with("CANCELLED"),
                    "CONC-3: a cancelled future is {now:?}"
                );
                self.cfs[i].state = now;
                self.after_op(th, None)?;
            }
            Op::WrapFuture { th, cf, lp } => {
                let Some(l) = self.lp(lp) else { return Ok(()) };
                if self.cfs.is_empty() {
                    return Ok(());
                }
                let i = cf as usize % self.cfs.len();
                let th = th_of(th);
                let (c, lpv) = (self.cfs[i].cf.clone(), self.loops[l].lp.clone());
                let got = self.exec(th, move |local| {
                    let r = crate::wrap_future(&c, &lpv);
                    r.map(|dest| {
                        let done = dest.done();
                        local.futs.push(LFut {
                            lp: l,
                            fut: dest,
                            wraps: Some(i),
                            touched: false,
                            seen: None,
                        });
                        done
                    })
                })?;
                if self.loops[l].closed {
                    ensure!(
                        got == Ok(false),
                        "CHAIN-6: wrap_future on a closed loop gave {got:?}"
                    );
                } else {
                    let unit = got.as_ref().map(drop).map_err(Clone::clone);
                    self.bound_call(l, th, &unit)?;
                    ensure!(
                        got.is_err() || got == Ok(false),
                        "CHAIN-3: wrap_future's future is done at once"
                    );
                }
                if let CfKind::Plain { wrapped } = &mut self.cfs[i].kind {
                    *wrapped = true;
                }
                self.after_op(th, None)?;
            }
            Op::SetHandler { lp, panicky } => {
                let Some(l) = self.lp(lp) else { return Ok(()) };
                install_handler(&self.log, &self.loops[l].lp, l, panicky);
            }
            Op::RestartThread { th } => {
                let th = th_of(th);
                if th != 0 {
                    self.retire_thread(th)?;
                    self.workers[th] = Worker::spawn(th);
                    self.slots[th] = SlotM::default();
                }
            }
        }
        Ok(())
    }

    fn run_until_complete(&mut self, th: usize, lp: u8, target: Target) -> Result<(), String> {
        let Some(l) = self.lp(lp) else { return Ok(()) };
        let lpv = self.loops[l].lp.clone();
        let predicted = self.predict_batch(l, lpv.time());
        let tid = match &target {
            Target::Script(s) => Some(self.new_task(th, l, s, None)),
            _ => None,
        };
        let (log, cfs) = (self.log.clone(), self.cf_handles());
        /// What the job saw.
        struct Seen {
            watchdog: crate::Result<()>,
            run: Option<crate::Result<u32>>,
            gathered: Option<(usize, crate::Result<Gathered<u32>>, Vec<bool>)>,
            target_loop: Option<usize>,
            target_after: Option<(bool, bool, Option<crate::Result<u32>>)>,
            gather_call: Option<crate::Result<usize>>,
            /// A child of the gather holds `Event loop is closed`.
            gather_child_closed: bool,
            pending: Vec<(usize, String)>,
        }
        let loops: Vec<EventLoop> = self.loops.iter().map(|m| m.lp.clone()).collect();
        let mut seen = self.exec(th, move |local| {
            let stopper = lpv.clone();
            let watchdog = lpv.call_later(WATCHDOG, move || stopper.stop());
            let mut seen = Seen {
                watchdog: watchdog.as_ref().map(drop).map_err(Clone::clone),
                run: None,
                gathered: None,
                target_loop: None,
                target_after: None,
                gather_call: None,
                gather_child_closed: false,
                pending: Vec::new(),
            };
            let refs = local.refs();
            match target {
                Target::Script(s) => {
                    let tid = tid.expect("script task");
                    let body = make_body(&log, tid, &s, refs, cfs);
                    seen.run = Some(guarded(|| lpv.run_until_complete(body)));
                }
                Target::Task(n) | Target::Future(n) => {
                    let pick = match target {
                        Target::Task(_) if !local.tasks.is_empty() => {
                            let t = &local.tasks[n as usize % local.tasks.len()];
                            Some((t.lp, t.task.as_future().clone()))
                        }
                        Target::Future(_) if !local.futs.is_empty() => {
                            let f = &local.futs[n as usize % local.futs.len()];
                            Some((f.lp, f.fut.clone()))
                        }
                        _ => None,
                    };
                    if let Some((tl, fut)) = pick {
                        seen.target_loop = Some(tl);
                        seen.run = Some(lpv.run_until_complete(fut.clone()));
                        let outcome = fut.done().then(|| fut.result());
                        seen.target_after = Some((fut.done(), fut.cancelled(), outcome));
                    }
                }
                Target::Gather {
                    rs,
                    return_exceptions,
                } => {
                    let children: Vec<Future<u32>> = rs
                        .iter()
                        .filter_map(|r| pick(&refs, *r))
                        .map(|r| r.fut)
                        .collect();
                    match crate::gather(children.clone(), return_exceptions) {
                        Ok(g) => {
                            let gl = loops
                                .iter()
                                .position(|x| *x == g.get_loop())
                                .unwrap_or(usize::MAX);
                            seen.gather_call = Some(Ok(gl));
                            let r = lpv.run_until_complete(g.clone());
                            let done: Vec<bool> = children.iter().map(|c| c.done()).collect();
                            seen.gather_child_closed = children.iter().any(|c| {
                                c.done() && !c.cancelled() && c.result() == Err(Error::Closed)
                            });
                            if let Ok(list) = &r {
                                for (c, e) in children.iter().zip(list) {
                                    check_entry(&log, c, e);
                                }
                                if list.len() != children.len() {
                                    violation(&log, "GATHER-1: wrong number of entries".into());
                                }
                            }
                            if r == Err(Error::StoppedBeforeComplete) && g.done() {
                                violation(
                                    &log,
                                    "STOP-7: StoppedBeforeComplete for a done gather".into(),
                                );
                            }
                            seen.gathered = Some((gl, r, done));
                        }
                        Err(e) => seen.gather_call = Some(Err(e)),
                    }
                }
            }
            if let Ok(h) = &watchdog {
                h.cancel();
            }
            seen.pending = local.pending_tasks(l);
            seen
        })?;
        self.bound_call(l, th, &seen.watchdog)?;
        let as_unit = |r: &crate::Result<u32>| match r {
            Err(e @ (Error::Closed | Error::BoundToThread { .. } | Error::NonThreadSafeCall)) => {
                Err(e.clone())
            }
            _ => Ok(()),
        };
        if let Some(Err(Error::Panic(m))) = &seen.run
            && m == INTENTIONAL_DROP_PANIC
        {
            let e = if self.loops[l].closed {
                Error::Closed
            } else {
                match self.loops[l].home.others(th).first() {
                    Some(u) => Error::BoundToThread {
                        thread: thread_name(*u),
                    },
                    None => {
                        return Err(
                            "run_until_complete dropped its coroutine but did not refuse it".into(),
                        );
                    }
                }
            };
            seen.run = Some(Err(e));
        }
        let mut ran = false;
        if let Some(run) = &seen.run {
            if let Some(tl) = seen.target_loop.filter(|tl| *tl != l) {
                // Closed and home checks come before the argument (LIFE-2).
                if !self.loops[l].closed && seen.watchdog.is_ok() {
                    ensure!(
                        *run == Err(Error::DifferentLoop),
                        "LIFE-2: run_until_complete of a future of loop {tl} on loop {l} gave {run:?}"
                    );
                } else {
                    ensure!(
                        !self.run_checks(l, th, &as_unit(run))?,
                        "LIFE-2: a refused run ran"
                    );
                }
            } else {
                // `Event loop is closed` from an open loop is not a refused
                // run but an exception the run returned: the target future
                // holds it (an rcts task destroyed with its home thread fails
                // its concurrent future so, XTHREAD-6), or a script's
                // coroutine that started met it in what it awaited.
                let script_started = tid.is_some_and(|tid| lock(&self.log).tasks[tid].armed);
                let own_exception = !self.loops[l].closed
                    && *run == Err(Error::Closed)
                    && (script_started
                        || matches!(
                            &seen.target_after,
                            Some((true, false, Some(Err(Error::Closed))))
                        ));
                let unit = if own_exception { Ok(()) } else { as_unit(run) };
                ran = self.run_checks(l, th, &unit)?;
                if ran {
                    self.check_run_result(th, l, tid, run, seen.target_after.as_ref())?;
                }
            }
        }
        if let Some(gc) = &seen.gather_call {
            match gc {
                Ok(gl) => {
                    if *gl < self.loops.len() {
                        self.maybe_claim(*gl, th);
                    }
                }
                Err(Error::NoCurrentLoop { thread }) => ensure!(
                    *thread == thread_name(th) && self.slots[th].current.is_none(),
                    "GATHER-2: gather() of nothing gave NoCurrentLoop({thread})"
                ),
                Err(Error::DifferentLoop | Error::Closed | Error::NonThreadSafeCall) => {}
                Err(e) => return Err(format!("GATHER-3: gather() gave {e:?}")),
            }
        }
        if let Some((gl, r, _)) = &seen.gathered {
            let unit = match r {
                // A child's own exception (see the future case above).
                Err(Error::Closed) if !self.loops[l].closed && seen.gather_child_closed => Ok(()),
                Err(e @ (Error::Closed | Error::BoundToThread { .. })) => Err(e.clone()),
                _ => Ok(()),
            };
            if *gl != l && !self.loops[l].closed && seen.watchdog.is_ok() {
                ensure!(
                    *r == Err(Error::DifferentLoop),
                    "LIFE-2: run_until_complete of another loop's gather gave {r:?}"
                );
            } else {
                ran = self.run_checks(l, th, &unit)?;
            }
        }
        if let (Some(tid), Some(run)) = (tid, &seen.run) {
            let o = lock(&self.log).tasks[tid].clone();
            if !ran {
                ensure!(
                    o.steps.is_empty() && o.coro_dropped == 1,
                    "LIFE-8: a coroutine refused by run_until_complete was polled or kept"
                );
            } else {
                let script = self.tasks[tid].script.clone();
                match run {
                    Err(Error::StoppedBeforeComplete) => {}
                    Err(Error::Cancelled(_)) => ensure!(
                        self.tasks[tid].may_cancel || o.propagated,
                        "TASK-4: run_until_complete's task was cancelled by nobody"
                    ),
                    r => check_task_outcome(tid, &script, &o, false, r, false)?,
                }
            }
        }
        if ran {
            self.after_run(l, th, &seen.pending);
        }
        let actual = self.after_op(th, ran.then_some(l))?;
        if ran {
            ensure!(
                is_subsequence(&predicted, &actual),
                "SCHED-1: the first iteration did not run {predicted:?} (ran {actual:?})"
            );
        }
        Ok(())
    }

    /// LIFE-2, LIFE-4, STOP-7: what run_until_complete of a future returns.
    fn check_run_result(
        &self,
        _th: usize,
        _l: usize,
        tid: Option<usize>,
        run: &crate::Result<u32>,
        after: Option<&(bool, bool, Option<crate::Result<u32>>)>,
    ) -> Result<(), String> {
        if tid.is_some() {
            return Ok(());
        }
        let Some((done, cancelled, outcome)) = after else {
            return Ok(());
        };
        if !done {
            ensure!(
                *run == Err(Error::StoppedBeforeComplete),
                "STOP-7: run_until_complete of a pending future gave {run:?}"
            );
            return Ok(());
        }
        let same = match (run, outcome) {
            (Err(Error::Cancelled(_)), Some(Err(Error::Cancelled(_)))) => true,
            (Err(Error::Cancelled(_)), _) => *cancelled,
            (r, Some(o)) => r == o,
            _ => false,
        };
        ensure!(
            same,
            "LIFE-2/LIFE-4: run_until_complete gave {run:?}, the future holds {outcome:?}"
        );
        Ok(())
    }

    /// `close()` by `th` (LIFE-7, THREAD-5, TASK-8).
    fn close(&mut self, th: usize, l: usize) -> Result<(), String> {
        let lpv = self.loops[l].lp.clone();
        let (got, pending) = self.exec(th, move |local| {
            let pending = local.pending_tasks(l);
            (lpv.close(), pending)
        })?;
        ensure!(
            got == Ok(()),
            "LIFE-7: close() of a loop that is not running gave {got:?}"
        );
        let was_closed = self.loops[l].closed;
        let home = self.loops[l].home;
        self.loops[l].closed = true;
        let log = lock(&self.log).cbs.clone();
        for (i, cb) in self.cbs.iter().enumerate() {
            if cb.lp != l || !cb.accepted {
                continue;
            }
            let dropped_now = match cb.loc {
                Loc::Inbox => !was_closed,
                Loc::Half(t) => t == th && (was_closed || home.only_free_or(th)),
                Loc::Unknown => false,
            };
            if dropped_now {
                ensure!(
                    log[i].dropped == 1,
                    "LIFE-7/XTHREAD-3/THREAD-5: close() by thread {th} left callback {i} ({:?}) undropped",
                    cb.loc
                );
            }
        }
        if !was_closed && home.only_free_or(th) {
            self.loops[l].home = FREE;
        }
        if home.only_free_or(th) || was_closed {
            let tl = lock(&self.log).tasks.clone();
            for (tid, _name) in &pending {
                ensure!(
                    tl[*tid].coro_dropped == 1,
                    "LIFE-7/TASK-8: close() kept the future of pending task {tid}"
                );
            }
        }
        self.after_op(th, None)?;
        if !was_closed && home.only_free_or(th) {
            let reports: Vec<String> = lock(&self.log)
                .exceptions
                .iter()
                .filter(|(li, c)| *li == l && c.message == "Task was destroyed but it is pending!")
                .filter_map(|(_, c)| c.task.clone())
                .collect();
            for (tid, name) in &pending {
                let needle = format!("name='{name}'");
                let n = reports.iter().filter(|r| r.contains(&needle)).count();
                ensure!(
                    n == 1,
                    "TASK-8: pending task {tid} ({name}) reported {n} times at close()"
                );
            }
        }
        Ok(())
    }

    /// Observes and checks thread `th`'s tasks and futures, then ends the
    /// thread: what it held is dropped with it (THREAD-4).
    fn retire_thread(&mut self, th: usize) -> Result<(), String> {
        let log = self.log.clone();
        let (tasks, futs) = self.exec(th, move |local| {
            let _ = log;
            let tasks: Vec<(usize, bool, bool, Option<crate::Result<u32>>)> = local
                .tasks
                .iter()
                .map(|t| {
                    let f = t.task.as_future();
                    (t.tid, f.done(), f.cancelled(), f.done().then(|| f.result()))
                })
                .collect();
            let futs: Vec<FutSeen> = local
                .futs
                .iter()
                .map(|f| {
                    (
                        f.wraps.filter(|_| !f.touched),
                        f.fut.done(),
                        f.fut.cancelled(),
                        f.fut.done().then(|| f.fut.result()),
                    )
                })
                .collect();
            (tasks, futs)
        })?;
        let obs = lock(&self.log).tasks.clone();
        for (tid, done, cancelled, outcome) in &tasks {
            let m = &self.tasks[*tid];
            if m.cancelled_before_start {
                ensure!(
                    obs[*tid].steps.is_empty(),
                    "TASK-4: task {tid} was cancelled before it started but its body ran"
                );
            }
            if *done {
                let out = outcome.clone().unwrap_or(Err(Error::InvalidState));
                check_task_outcome(*tid, &m.script, &obs[*tid], m.may_cancel, &out, *cancelled)?;
            }
        }
        for (wraps, done, cancelled, outcome) in futs {
            let (Some(ci), true) = (wraps, done) else {
                continue;
            };
            let c = &self.cfs[ci];
            let src = c.cf.state();
            if cancelled {
                continue; // cancelled directly, or its source was
            }
            let src_outcome = match c.kind {
                CfKind::Plain { .. } => c.outcome.clone(),
                CfKind::Rcts { .. } => c.cf.result(Some(Duration::ZERO)).ok().map(Ok),
            };
            ensure!(
                src == CfState::Finished,
                "CHAIN-2: wrap_future's future finished but its source is {src:?}"
            );
            if let (Some(o), Some(s)) = (&outcome, &src_outcome) {
                ensure!(
                    o == s,
                    "CHAIN-2: wrap_future's future holds {o:?}, its source {s:?}"
                );
            }
        }
        // End the thread.
        let before = lock(&self.log).cbs.clone();
        let dropped = self.exec(th, |local| {
            let l = std::mem::take(local);
            catch_unwind(AssertUnwindSafe(move || drop(l)))
                .err()
                .map(|p| panic_message(&*p))
        })?;
        if let Some(p) = dropped {
            return Err(format!(
                "LIFE-7/THREAD-4: dropping thread {th}'s handles dropped live task data: {p}"
            ));
        }
        self.workers[th].stop()?;
        for l in 0..self.loops.len() {
            let m = &mut self.loops[l];
            if m.home.has(HomeSet::at(th)) {
                m.home = HomeSet((m.home.0 & !HomeSet::at(th).0) | FREE.0);
            }
        }
        let cbl = lock(&self.log).cbs.clone();
        for (i, cb) in self.cbs.iter_mut().enumerate() {
            if !cb.accepted || cb.loc != Loc::Half(th) {
                continue;
            }
            if cb.kind == Kind::Threadsafe && !self.loops[cb.lp].closed && before[i].dropped == 0 {
                // A cross-thread submission the half had taken in, and not
                // run yet, goes back to the inbox, undropped.
                ensure!(
                    cbl[i].dropped == 0,
                    "THREAD-4: threadsafe callback {i} was dropped with its home thread {th}"
                );
                cb.loc = Loc::Inbox;
            } else {
                ensure!(
                    cbl[i].dropped == 1,
                    "THREAD-4: callback {i} outlived its home thread {th}"
                );
                cb.loc = Loc::Unknown;
            }
        }
        let tl = lock(&self.log).tasks.clone();
        for (tid, m) in self.tasks.iter().enumerate() {
            if m.th == th && m.rcts.is_none() && m.built {
                ensure!(
                    tl[tid].coro_dropped == 1,
                    "THREAD-4: task {tid}'s future outlived its thread {th}"
                );
            }
        }
        self.after_op(th, None)?;
        Ok(())
    }

    /// The end: close every loop from every thread, retire the threads, and
    /// check that everything accepted was run or dropped exactly once.
    fn finish(&mut self) -> Result<(), String> {
        for l in 0..self.loops.len() {
            self.close(0, l)?;
        }
        for th in 0..THREADS {
            for l in 0..self.loops.len() {
                self.close(th, l)?;
            }
        }
        for th in 0..THREADS {
            self.retire_thread(th)?;
        }
        let log = lock(&self.log);
        for (i, o) in log.cbs.iter().enumerate() {
            ensure!(
                o.dropped == 1 && o.ran <= 1,
                "LIFE-7: callback {i} ran {} times and was dropped {} times by the end",
                o.ran,
                o.dropped
            );
        }
        for (tid, o) in log.tasks.iter().enumerate() {
            let m = &self.tasks[tid];
            let built = m.built || !o.steps.is_empty() || o.coro_dropped > 0;
            ensure!(
                !built || o.coro_dropped == 1,
                "LIFE-7: the future of task {tid} was dropped {} times",
                o.coro_dropped
            );
        }
        drop(log);
        for (i, c) in self.cfs.iter().enumerate() {
            let CfKind::Rcts { tid, .. } = c.kind else {
                continue;
            };
            let state = c.cf.state();
            ensure!(
                state != CfState::Pending && state != CfState::Running,
                "XTHREAD-6: run_coroutine_threadsafe future {i} is {state:?} after its loop closed"
            );
            if state == CfState::Finished {
                let o = lock(&self.log).tasks[tid].clone();
                let r = c.cf.result(Some(Duration::ZERO));
                match &r {
                    Err(Error::Closed) => {}
                    r => check_task_outcome(tid, &self.tasks[tid].script, &o, false, r, false)?,
                }
            } else {
                let o = lock(&self.log).tasks[tid].clone();
                ensure!(
                    c.cancel_called || self.tasks[tid].may_cancel || o.propagated,
                    "XTHREAD-7: run_coroutine_threadsafe future {i} cancelled by nobody"
                );
            }
        }
        Ok(())
    }
}

/// What `retire_thread` sees of a future: the concurrent future it wraps
/// (unless an operation completed it), done, cancelled, outcome.
type FutSeen = (Option<usize>, bool, bool, Option<crate::Result<u32>>);

fn is_subsequence(small: &[usize], big: &[usize]) -> bool {
    let mut it = big.iter();
    small.iter().all(|x| it.any(|y| y == x))
}

/// Decodes `data` into a program of operations over three threads and a few
/// virtual-clock loops, runs it in lock-step and checks it against the
/// model; panics on a violated invariant. See the [module docs](self).
pub fn run_ops(data: &[u8]) {
    install_panic_hook();
    let Some(prog) = decode_ops(data) else { return };
    let mut ops = match Ops::new(prog.clone()) {
        Ok(o) => o,
        Err(e) => panic!("run_ops: set-up failed: {e}"),
    };
    let mut result = Ok(());
    for (i, op) in prog.ops.iter().enumerate() {
        ops.op = i;
        if let Err(e) = ops.step(op.clone()) {
            result = Err(format!("op {i} {op:?}: {e}"));
            break;
        }
    }
    if result.is_ok() {
        result = ops.finish().map_err(|e| format!("at the end: {e}"));
    }
    if let Err(e) = result {
        panic!("run_ops: invariant violated: {e}\nprogram: {:#?}", ops.prog);
    }
    ops.teardown();
}

impl Ops {
    /// Breaks the interpreter's own reference cycles (log → loop → handler
    /// → log), so leak checkers see only the loop's.
    fn teardown(&mut self) {
        for m in &self.loops {
            m.lp.set_exception_handler(None);
        }
        let mut log = lock(&self.log);
        log.loops.clear();
        log.handles.clear();
    }
}

// ----------------------------------------------------------------------
// run_chain: cross-thread chains under real concurrency
// ----------------------------------------------------------------------

#[derive(Arbitrary, Debug, Clone)]
enum ChainOp {
    /// `run_coroutine_threadsafe` onto loop A (running on its own thread)
    /// or loop B (driven by this thread).
    Submit {
        on_b: bool,
        script: Script,
    },
    /// A plain concurrent future.
    NewCf,
    /// A worker thread that starts and completes plain future `cf`.
    Worker {
        cf: u8,
        outcome: Outcome,
        spin: u8,
    },
    /// Completes plain future `cf` from this thread.
    Complete {
        cf: u8,
        outcome: Outcome,
    },
    CancelCf {
        cf: u8,
    },
    /// `wrap_future(cf, B)` on this thread.
    Wrap {
        cf: u8,
    },
    /// A task on A that awaits `wrap_future(cf, A)`.
    WrapOnA {
        cf: u8,
    },
    CancelDest {
        d: u8,
    },
    /// One iteration of B.
    RunB,
    Threadsafe {
        on_b: bool,
        cb: Cb,
    },
    CancelHandle {
        h: u8,
    },
    StopA,
    CloseA,
    ShutdownA,
    CloseB,
    ResultWait {
        cf: u8,
        micros: u8,
    },
}

#[derive(Arbitrary, Debug, Clone)]
struct ChainProgram {
    ops: Vec<ChainOp>,
}

const CHAIN_OPS_MAX: usize = 32;
/// How many iterations B runs, at most, while A's runner shuts down.
const B_ITERATIONS_WHILE_A_SHUTS_DOWN: usize = 64;
/// `WHO` of the thread that drives a chain program (and loop B).
const DRIVER: usize = 7;

fn decode_chain(data: &[u8]) -> Option<ChainProgram> {
    let mut u = Unstructured::new(data);
    let mut p = ChainProgram::arbitrary(&mut u).ok()?;
    p.ops.truncate(CHAIN_OPS_MAX);
    for op in &mut p.ops {
        if let ChainOp::Submit { script, .. } = op {
            trim_script(script);
            // A callback on A may not block A.
            script.steps.retain(|s| !matches!(s, Step::Await { .. }));
        }
        if let ChainOp::Threadsafe { cb, .. } = op {
            // Only what a callback may do on a loop it does not own.
            if !matches!(
                cb.action,
                CbAction::Nothing | CbAction::Panic | CbAction::GetLoop
            ) {
                cb.action = CbAction::Nothing;
            }
        }
    }
    Some(p)
}

/// The program `data` decodes to for [`run_chain`], for reports.
pub fn describe_chain(data: &[u8]) -> String {
    format!("{:#?}", decode_chain(data))
}

enum ChainCfKind {
    Plain,
    /// `run_coroutine_threadsafe` of task `tid`.
    Rcts {
        tid: usize,
    },
    /// A task on A awaiting `wrap_future` of concurrent future `src`.
    WrapOnA {
        src: usize,
    },
}

struct ChainCf {
    cf: ConcurrentFuture<u32>,
    kind: ChainCfKind,
    cancel_called: bool,
    /// Results seen by bounded waits: checked against the final state.
    waits: Vec<crate::Result<u32>>,
}

struct Dest {
    fut: Future<u32>,
    src: usize,
    cancelled_by_us: bool,
    /// Pending when B closed (and not cancelled by us since): must stay so.
    frozen: bool,
}

struct Chain {
    log: Shared,
    policy: Policy,
    a: Option<crate::LoopThread>,
    lp_a: EventLoop,
    lp_b: EventLoop,
    a_closed: bool,
    b_closed: bool,
    cfs: Vec<ChainCf>,
    dests: Vec<Dest>,
    scripts: Vec<Script>,
    workers: Vec<thread::JoinHandle<()>>,
    /// Callbacks: (id, on B, accepted).
    cbs: Vec<(usize, bool, bool)>,
}

fn cf_outcome(cf: &ConcurrentFuture<u32>) -> Option<crate::Result<u32>> {
    match cf.state() {
        CfState::Finished => Some(cf.result(Some(Duration::ZERO))),
        CfState::Cancelled | CfState::CancelledAndNotified => Some(Err(Error::Cancelled(None))),
        _ => None,
    }
}

impl Chain {
    fn new() -> Chain {
        let log = Shared::default();
        let lp_a = EventLoop::with_clock(ClockKind::Virtual);
        let lp_b = EventLoop::with_clock(ClockKind::Virtual);
        install_handler(&log, &lp_a, 0, false);
        install_handler(&log, &lp_b, 1, false);
        lock(&log).loops = vec![lp_a.clone(), lp_b.clone()];
        let a = crate::LoopThread::spawn_with(lp_a.clone(), "fuzz-a").expect("spawn loop A");
        Chain {
            log,
            policy: Policy::default(),
            a: Some(a),
            lp_a,
            lp_b,
            a_closed: false,
            b_closed: false,
            cfs: Vec::new(),
            dests: Vec::new(),
            scripts: Vec::new(),
            workers: Vec::new(),
            cbs: Vec::new(),
        }
    }

    fn pick_cf(&self, n: u8, plain_only: bool) -> Option<usize> {
        let c: Vec<usize> = (0..self.cfs.len())
            .filter(|&i| !plain_only || matches!(self.cfs[i].kind, ChainCfKind::Plain))
            .collect();
        (!c.is_empty()).then(|| c[n as usize % c.len()])
    }

    fn new_tid(&mut self, script: &Script, on_b: bool) -> usize {
        lock(&self.log).tasks.push(TaskObs {
            lp: usize::from(on_b),
            ..TaskObs::default()
        });
        self.scripts.push(script.clone());
        self.scripts.len() - 1
    }

    fn step(&mut self, op: ChainOp) -> Result<(), String> {
        match op {
            ChainOp::Submit { on_b, script } => {
                let tid = self.new_tid(&script, on_b);
                let (log, cfs) = (
                    self.log.clone(),
                    self.cfs.iter().map(|c| c.cf.clone()).collect::<Vec<_>>(),
                );
                let make = move || make_body(&log, tid, &script, Vec::new(), cfs);
                let (lp, closed) = if on_b {
                    (&self.lp_b, self.b_closed)
                } else {
                    (&self.lp_a, self.a_closed)
                };
                match crate::run_coroutine_threadsafe(make, lp) {
                    Ok(cf) => {
                        ensure!(
                            !closed,
                            "XTHREAD-6: a closed loop accepted run_coroutine_threadsafe"
                        );
                        self.cfs.push(ChainCf {
                            cf,
                            kind: ChainCfKind::Rcts { tid },
                            cancel_called: false,
                            waits: Vec::new(),
                        });
                    }
                    Err(e) => ensure!(
                        closed && e == Error::Closed,
                        "XTHREAD-6: run_coroutine_threadsafe gave {e:?}"
                    ),
                }
            }
            ChainOp::NewCf => self.cfs.push(ChainCf {
                cf: ConcurrentFuture::new(),
                kind: ChainCfKind::Plain,
                cancel_called: false,
                waits: Vec::new(),
            }),
            ChainOp::Worker { cf, outcome, spin } => {
                let Some(i) = self.pick_cf(cf, true) else {
                    return Ok(());
                };
                let (c, log) = (self.cfs[i].cf.clone(), self.log.clone());
                let w = thread::Builder::new()
                    .name("fuzz-worker".into())
                    .spawn(move || {
                        for _ in 0..spin % 8 {
                            thread::yield_now();
                        }
                        match c.set_running_or_notify_cancel() {
                            Ok(true) => {
                                let r = match outcome {
                                    Outcome::Ok(v) => c.set_result(u32::from(v)),
                                    Outcome::Err(n) => c.set_exception(cf_error(n)),
                                };
                                if !matches!(r, Ok(()) | Err(Error::ConcurrentInvalidState { .. }))
                                {
                                    violation(
                                        &log,
                                        format!("CONC-5: a worker's completion gave {r:?}"),
                                    );
                                }
                            }
                            Ok(false) | Err(Error::UnexpectedState) => {}
                            Err(e) => violation(
                                &log,
                                format!("CONC-4: set_running_or_notify_cancel gave {e:?}"),
                            ),
                        }
                    })
                    .expect("spawn a worker");
                self.workers.push(w);
            }
            ChainOp::Complete { cf, outcome } => {
                let Some(i) = self.pick_cf(cf, true) else {
                    return Ok(());
                };
                let c = &self.cfs[i].cf;
                let r = match outcome {
                    Outcome::Ok(v) => c.set_result(u32::from(v)),
                    Outcome::Err(n) => c.set_exception(cf_error(n)),
                };
                ensure!(
                    matches!(r, Ok(()) | Err(Error::ConcurrentInvalidState { .. })),
                    "CONC-5: completing gave {r:?}"
                );
            }
            ChainOp::CancelCf { cf } => {
                let Some(i) = self.pick_cf(cf, false) else {
                    return Ok(());
                };
                let r = self.cfs[i].cf.cancel();
                if r {
                    self.cfs[i].cancel_called = true;
                    let st = self.cfs[i].cf.state();
                    ensure!(
                        st.name().starts_with("CANCELLED"),
                        "CONC-3: cancel() returned true but the future is {st:?}"
                    );
                }
            }
            ChainOp::Wrap { cf } => {
                let Some(i) = self.pick_cf(cf, false) else {
                    return Ok(());
                };
                let r = guarded(|| crate::wrap_future(&self.cfs[i].cf, &self.lp_b));
                let fut =
                    r.map_err(|e| format!("CHAIN-1: wrap_future on the home thread gave {e:?}"))?;
                ensure!(!fut.done(), "CHAIN-3: wrap_future's future is done at once");
                self.dests.push(Dest {
                    fut,
                    src: i,
                    cancelled_by_us: false,
                    frozen: self.b_closed,
                });
            }
            ChainOp::WrapOnA { cf } => {
                let Some(i) = self.pick_cf(cf, false) else {
                    return Ok(());
                };
                let src = self.cfs[i].cf.clone();
                let make = move || async move {
                    let lp = crate::get_running_loop()?;
                    crate::wrap_future(&src, &lp)?.await
                };
                match crate::run_coroutine_threadsafe(make, &self.lp_a) {
                    Ok(cf) => {
                        ensure!(
                            !self.a_closed,
                            "XTHREAD-6: a closed loop accepted run_coroutine_threadsafe"
                        );
                        self.cfs.push(ChainCf {
                            cf,
                            kind: ChainCfKind::WrapOnA { src: i },
                            cancel_called: false,
                            waits: Vec::new(),
                        });
                    }
                    Err(e) => ensure!(
                        self.a_closed && e == Error::Closed,
                        "XTHREAD-6: run_coroutine_threadsafe gave {e:?}"
                    ),
                }
            }
            ChainOp::CancelDest { d } => {
                if self.dests.is_empty() {
                    return Ok(());
                }
                let n = self.dests.len();
                let d = &mut self.dests[d as usize % n];
                let before = d.fut.done();
                let r = d.fut.cancel();
                ensure!(
                    r != before,
                    "FUT-4: cancel() of a wrapper (done={before}) returned {r}"
                );
                if r {
                    d.cancelled_by_us = true;
                }
            }
            ChainOp::RunB => {
                self.lp_b.stop();
                let r = self.lp_b.run_forever();
                let want = if self.b_closed {
                    Err(Error::Closed)
                } else {
                    Ok(())
                };
                ensure!(r == want, "LIFE-8: one iteration of B gave {r:?}");
            }
            ChainOp::Threadsafe { on_b, cb } => {
                let id = {
                    let mut l = lock(&self.log);
                    l.cbs.push(CbObs {
                        lp: usize::from(on_b),
                        ..CbObs::default()
                    });
                    l.cbs.len() - 1
                };
                let f = make_cb(&self.log, &self.policy, id, usize::from(on_b), cb);
                let (lp, closed) = if on_b {
                    (&self.lp_b, self.b_closed)
                } else {
                    (&self.lp_a, self.a_closed)
                };
                let r = guarded(|| lp.call_soon_threadsafe(f));
                match r {
                    Ok(h) => {
                        ensure!(!closed, "XTHREAD-3: a closed loop accepted a callback");
                        let mut l = lock(&self.log);
                        l.handles.push(h);
                        l.handle_cb.push(id);
                    }
                    Err(e) => {
                        ensure!(
                            closed && matches!(e, Error::Closed | Error::Panic(_)),
                            "XTHREAD-1: call_soon_threadsafe gave {e:?}"
                        );
                    }
                }
                self.cbs.push((id, on_b, !closed));
            }
            ChainOp::CancelHandle { h } => {
                let h = {
                    let l = lock(&self.log);
                    (!l.handles.is_empty()).then(|| l.handles[h as usize % l.handles.len()].clone())
                };
                if let Some(h) = h {
                    Handle::cancel(&h);
                }
            }
            ChainOp::StopA => self.lp_a.stop(),
            ChainOp::CloseA => {
                let r = self.lp_a.close();
                match r {
                    Ok(()) => self.a_closed = true,
                    Err(Error::CloseRunning) => {
                        ensure!(!self.a_closed, "LIFE-7: a closed loop is running")
                    }
                    Err(e) => return Err(format!("LIFE-7: close() gave {e:?}")),
                }
            }
            ChainOp::ShutdownA => self.shutdown_a()?,
            ChainOp::CloseB => {
                let r = self.lp_b.close();
                ensure!(r == Ok(()), "LIFE-7: close() of B gave {r:?}");
                self.b_closed = true;
                for d in &mut self.dests {
                    if !d.fut.done() {
                        d.frozen = true;
                    }
                }
            }
            ChainOp::ResultWait { cf, micros } => {
                let Some(i) = self.pick_cf(cf, false) else {
                    return Ok(());
                };
                let c = self.cfs[i].cf.clone();
                let before = c.done();
                let r = c.result(Some(Duration::from_micros(u64::from(micros % 50))));
                ensure!(
                    !(before && r == Err(Error::Timeout)),
                    "CONC-2: result() of a done future timed out"
                );
                ensure!(
                    r != Err(Error::ResultFromLoopThread),
                    "XTHREAD-9: refused a bounded wait off the loop thread"
                );
                if r != Err(Error::Timeout) {
                    self.cfs[i].waits.push(r);
                }
            }
        }
        if let Some(v) = lock(&self.log).violations.first() {
            return Err(v.clone());
        }
        Ok(())
    }

    fn shutdown_a(&mut self) -> Result<(), String> {
        if let Some(a) = self.a.take() {
            // A's runner waits for the tasks it cancels (RUNNER-4), and one
            // of them may wait for work of B, which only this thread runs: B
            // keeps running while A shuts down, and is closed if A has not
            // finished after a bounded number of iterations (B's close fails
            // what it leaves, XTHREAD-6), so the wait always ends.
            let closer = std::thread::spawn(move || a.stop_and_join());
            let mut iterations = 0;
            while !closer.is_finished() && !self.b_closed {
                if iterations == B_ITERATIONS_WHILE_A_SHUTS_DOWN {
                    self.step(ChainOp::CloseB)?;
                } else {
                    self.step(ChainOp::RunB)?;
                    iterations += 1;
                }
            }
            let r = closer
                .join()
                .map_err(|_| "stop_and_join of A panicked".to_string())?;
            let ok = r == Ok(()) || (self.a_closed && r == Err(Error::Closed));
            ensure!(ok, "XTHREAD-10: stop_and_join gave {r:?}");
            self.a_closed = true;
            ensure!(
                self.lp_a.is_closed() && !self.lp_a.is_running(),
                "XTHREAD-10: A is not closed after stop_and_join"
            );
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), String> {
        self.shutdown_a()?;
        for w in self.workers.drain(..) {
            w.join().map_err(|_| "a worker panicked".to_string())?;
        }
        if !self.b_closed {
            for _ in 0..2 {
                self.step(ChainOp::RunB)?;
            }
            self.step(ChainOp::CloseB)?;
        }
        // Wrappers: one final state, copied from the source (CHAIN-2, 6, 7).
        for (di, d) in self.dests.iter().enumerate() {
            let src = &self.cfs[d.src];
            let so = cf_outcome(&src.cf);
            if d.frozen && !d.cancelled_by_us {
                ensure!(
                    !d.fut.done(),
                    "CHAIN-6: wrapper {di} completed after its loop closed"
                );
            }
            if !d.fut.done() {
                continue;
            }
            if d.fut.cancelled() {
                ensure!(
                    d.cancelled_by_us || src.cf.cancelled(),
                    "CHAIN-2: wrapper {di} cancelled by nobody"
                );
                continue;
            }
            let mine = d.fut.result();
            ensure!(
                so.as_ref() == Some(&mine) && src.cf.state() == CfState::Finished,
                "CHAIN-2/CHAIN-7: wrapper {di} holds {mine:?}, its source {so:?}"
            );
        }
        // Sources a cancelled wrapper may have cancelled (CHAIN-4).
        let mut chained: Vec<bool> = self.cfs.iter().map(|c| c.cancel_called).collect();
        for d in &self.dests {
            if d.cancelled_by_us || d.fut.cancelled() {
                chained[d.src] = true;
            }
        }
        for c in &self.cfs {
            // A's runner cancels a task still pending at its shutdown
            // (RUNNER-4); when the loop closes before that task's end reaches
            // its future, the future holds `Closed` (XTHREAD-6), yet the
            // cancellation has already reached the source (CHAIN-4).
            let interrupted = matches!(cf_outcome(&c.cf), Some(Err(Error::Closed)));
            if let ChainCfKind::WrapOnA { src } = c.kind
                && (c.cancel_called || c.cf.cancelled() || interrupted)
            {
                chained[src] = true;
            }
        }
        drop(std::mem::take(&mut self.dests));
        // Concurrent futures.
        let tasks = lock(&self.log).tasks.clone();
        for (i, c) in self.cfs.iter().enumerate() {
            let out = cf_outcome(&c.cf);
            for w in &c.waits {
                let same = match (w, &out) {
                    (Err(Error::Cancelled(_)), Some(Err(Error::Cancelled(_)))) => true,
                    (w, Some(o)) => w == o,
                    _ => false,
                };
                ensure!(same, "CONC-2: result() gave {w:?}, the future ends {out:?}");
            }
            match c.kind {
                ChainCfKind::Plain => {}
                ChainCfKind::Rcts { tid } => {
                    let out = out.ok_or(format!("XTHREAD-6: run_coroutine_threadsafe future {i} is {:?} after its loop closed", c.cf.state()))?;
                    let script = &self.scripts[tid];
                    let o = &tasks[tid];
                    match &out {
                        Err(Error::Closed) => {}
                        Err(Error::Cancelled(_)) => {
                            // RUNNER-4: A is a `LoopThread`, a runner; its
                            // shutdown cancels the tasks still pending.
                            let may = chained[i]
                                || o.propagated
                                || (o.lp == 0 && !o.ended)
                                || script.steps.iter().any(|s| matches!(s, Step::CancelSelf));
                            ensure!(
                                may,
                                "XTHREAD-7/8: run_coroutine_threadsafe future {i} cancelled by nobody"
                            );
                        }
                        r => check_task_outcome(tid, script, o, false, r, false)?,
                    }
                }
                ChainCfKind::WrapOnA { src } => {
                    let out = out.ok_or(format!("XTHREAD-6: run_coroutine_threadsafe future {i} is {:?} after its loop closed", c.cf.state()))?;
                    let so = cf_outcome(&self.cfs[src].cf);
                    match &out {
                        Err(Error::Closed | Error::Cancelled(_)) => {}
                        r => ensure!(
                            so.as_ref() == Some(r),
                            "CHAIN-2: a wrapper on A gave {r:?}, its source {so:?}"
                        ),
                    }
                }
            }
        }
        // Callbacks: ran at most once, on their loop's thread; all dropped.
        let log = lock(&self.log);
        for &(id, on_b, accepted) in &self.cbs {
            let o = &log.cbs[id];
            ensure!(
                o.dropped == 1 && o.ran <= 1,
                "XTHREAD-3/LIFE-7: callback {id} ran {} times, dropped {} times",
                o.ran,
                o.dropped
            );
            ensure!(accepted || o.ran == 0, "XTHREAD-3: a refused callback ran");
            if o.ran == 1 {
                let want = if on_b { DRIVER } else { usize::MAX };
                ensure!(
                    o.ran_thread == want,
                    "XTHREAD-1: callback {id} ran on the wrong thread"
                );
            }
        }
        for (tid, o) in log.tasks.iter().enumerate() {
            let built = !o.steps.is_empty() || o.coro_dropped > 0;
            ensure!(
                !built || o.coro_dropped == 1,
                "LIFE-7: task {tid}'s future dropped {} times",
                o.coro_dropped
            );
        }
        for (_, ctx) in &log.exceptions {
            check_context(ctx)?;
        }
        if let Some(v) = log.violations.first() {
            return Err(v.clone());
        }
        Ok(())
    }

    fn teardown(&mut self) {
        self.lp_a.set_exception_handler(None);
        self.lp_b.set_exception_handler(None);
        let mut log = lock(&self.log);
        log.loops.clear();
        log.handles.clear();
    }
}

/// Decodes `data` into a program of cross-thread chain operations, runs it
/// with loop A on its own thread and loop B on a driver thread, and checks
/// the outcome sets; panics on a violated invariant. See the
/// [module docs](self).
pub fn run_chain(data: &[u8]) {
    install_panic_hook();
    let Some(prog) = decode_chain(data) else {
        return;
    };
    let shown = prog.clone();
    let driver = thread::Builder::new()
        .name("fuzz-d".into())
        .spawn(move || {
            WHO.with(|w| w.set(DRIVER));
            let mut chain = Chain::new();
            let mut result = Ok(());
            for (i, op) in prog.ops.into_iter().enumerate() {
                let shown = format!("{op:?}");
                if let Err(e) = chain.step(op) {
                    result = Err(format!("op {i} {shown}: {e}"));
                    break;
                }
            }
            if result.is_ok() {
                result = chain.finish().map_err(|e| format!("at the end: {e}"));
            }
            chain.teardown();
            drop(chain);
            WHO.with(|w| w.set(EXITING));
            result
        })
        .expect("spawn the driver");
    let result = match driver.join() {
        Ok(r) => r,
        Err(p) => Err(format!("a panic escaped: {}", panic_message(&*p))),
    };
    if let Err(e) = result {
        panic!("run_chain: invariant violated: {e}\nprogram: {shown:#?}");
    }
}
