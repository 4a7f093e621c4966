//! Leaks: closing (and dropping) a loop with pending tasks, timers, chained
//! futures and queued cross-thread work frees all of it — the reference
//! cycles between tasks and the futures they await (or that await them) are
//! broken.
//!
//! Every piece of user data here carries a counting guard; a test ends by
//! dropping every handle it holds and asserting that every guard it made was
//! dropped exactly once. A guard kept alive by a reference cycle shows up as
//! "made N, dropped N - k".

use common::{capture_exceptions, run_once, vloop};
use loopspec::{ConcurrentFuture, DoneCallback, Error, Future, ReturnWhen};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

/// Counts guards made and dropped.
#[derive(Clone, Default)]
struct Counter {
    made: Arc<AtomicUsize>,
    dropped: Arc<AtomicUsize>,
}

struct Guard(Counter);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

impl Counter {
    fn guard(&self) -> Guard {
        self.made.fetch_add(1, Ordering::SeqCst);
        Guard(self.clone())
    }
    fn made(&self) -> usize {
        self.made.load(Ordering::SeqCst)
    }
    fn dropped(&self) -> usize {
        self.dropped.load(Ordering::SeqCst)
    }
    fn assert_all_dropped(&self, what: &str) {
        assert!(self.made() > 0, "{what}: no guard was made");
        assert_eq!(
            self.dropped(),
            self.made(),
            "{what}: {} of {} guards still alive",
            self.made() - self.dropped(),
            self.made()
        );
    }
}

/// A future that never completes on its own, holding a guard.
async fn hold_until_cancelled(g: Guard, f: Future<i32>) -> loopspec::Result<i32> {
    let _g = g;
    f.await
}

/// A done callback holding a guard: alive as long as the future it is
/// registered on is.
fn guarded_callback<T: 'static>(c: &Counter) -> DoneCallback<T> {
    let g = c.guard();
    Rc::new(move |_: &Future<T>| {
        let _ = &g;
    })
}

/// Rules: LIFE-7
#[test]
fn close_frees_queued_callbacks_and_timers() {
    let c = Counter::default();
    let lp = vloop();
    for _ in 0..3 {
        let g = c.guard();
        lp.call_soon(move || drop(g)).unwrap();
    }
    let mut timers = Vec::new();
    for d in [1.0, 5.0, 50.0] {
        let g = c.guard();
        timers.push(lp.call_later(d, move || drop(g)).unwrap());
    }
    timers[1].cancel();
    assert_eq!(c.dropped(), 0);
    lp.close().unwrap();
    c.assert_all_dropped("callbacks and timers at close()");
    drop(timers);
    drop(lp);
}

/// Rules: LIFE-7, TASK-8
#[test]
fn close_frees_pending_tasks_and_what_they_await() {
    let c = Counter::default();
    let lp = vloop();
    let seen = capture_exceptions(&lp);
    let never: Future<i32> = lp.create_future();
    never.add_done_callback(guarded_callback(&c)).unwrap();
    // A task awaiting a future nobody completes.
    let t1 = lp
        .create_task(hold_until_cancelled(c.guard(), never.clone()))
        .unwrap();
    t1.add_done_callback(guarded_callback(&c)).unwrap();
    // A task awaiting that task.
    let t1b = t1.clone();
    let g = c.guard();
    let t2 = lp
        .create_task(async move {
            let _g = g;
            t1b.await
        })
        .unwrap();
    t2.add_done_callback(guarded_callback(&c)).unwrap();
    // A task sleeping on a timer, and one never started.
    let g = c.guard();
    let t3 = lp
        .create_task(async move {
            let _g = g;
            loopspec::sleep(100.0).await?;
            Ok(3)
        })
        .unwrap();
    run_once(&lp);
    let g = c.guard();
    let t4 = lp
        .create_task(async move {
            let _g = g;
            Ok(4)
        })
        .unwrap();
    lp.close().unwrap();
    let destroyed = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|x| x.message == "Task was destroyed but it is pending!")
        .count();
    assert_eq!(destroyed, 4, "TASK-8: one report per pending task");
    // close() drops the tasks' futures even while their handles live on.
    assert_eq!(
        c.dropped(),
        4,
        "the four task futures are dropped by close()"
    );
    assert!(!t1.done() && !t2.done() && !t3.done() && !t4.done());
    drop((t1, t2, t3, t4, never));
    c.assert_all_dropped("tasks, awaited futures and done callbacks");
    drop(lp);
}

/// Rules: LIFE-7, WAIT-5
#[test]
fn close_frees_a_task_blocked_in_wait_and_wait_for() {
    let c = Counter::default();
    let lp = vloop();
    let a: Future<i32> = lp.create_future();
    let b: Future<i32> = lp.create_future();
    a.add_done_callback(guarded_callback(&c)).unwrap();
    let (a2, b2) = (a.clone(), b.clone());
    let g = c.guard();
    let waiter = lp
        .create_task(async move {
            let _g = g;
            let _ = loopspec::wait([a2, b2], Some(1000.0), ReturnWhen::AllCompleted).await?;
            Ok(0)
        })
        .unwrap();
    let b3 = b.clone();
    let g = c.guard();
    let timed = lp
        .create_task(async move {
            let _g = g;
            loopspec::wait_for(b3, Some(1000.0)).await
        })
        .unwrap();
    run_once(&lp);
    run_once(&lp);
    lp.close().unwrap();
    drop((waiter, timed, a, b));
    c.assert_all_dropped("wait and wait_for");
    drop(lp);
}

/// Rules: LIFE-7, CHAIN-6
#[test]
fn close_frees_chained_futures_whose_source_never_completes() {
    let c = Counter::default();
    let lp = vloop();
    let cf: ConcurrentFuture<i32> = ConcurrentFuture::new();
    let g = c.guard();
    cf.add_done_callback(move |_| drop(g));
    let dest = loopspec::wrap_future(&cf, &lp).unwrap();
    dest.add_done_callback(guarded_callback(&c)).unwrap();
    let d2 = dest.clone();
    let g = c.guard();
    let t = lp
        .create_task(async move {
            let _g = g;
            d2.await
        })
        .unwrap();
    run_once(&lp);
    lp.close().unwrap();
    drop((t, dest));
    // The source completes after close: nothing is scheduled (CHAIN-6), and
    // nothing is kept.
    cf.set_result(1).unwrap();
    drop(cf);
    c.assert_all_dropped("wrap_future chain");
    drop(lp);
}

/// Rules: LIFE-7, XTHREAD-3, XTHREAD-6, THREAD-5
#[test]
fn close_from_another_thread_frees_queued_cross_thread_work() {
    let c = Counter::default();
    let lp = vloop();
    let remote = lp.clone();
    let c2 = c.clone();
    let cfs = thread::spawn(move || {
        for _ in 0..3 {
            let g = c2.guard();
            remote.call_soon_threadsafe(move || drop(g)).unwrap();
        }
        (0..2)
            .map(|_| {
                let g = c2.guard();
                loopspec::run_coroutine_threadsafe(
                    move || async move {
                        let _g = g;
                        Ok(1)
                    },
                    &remote,
                )
                .unwrap()
            })
            .collect::<Vec<_>>()
    })
    .join()
    .unwrap();
    let closer = lp.clone();
    thread::spawn(move || closer.close().unwrap())
        .join()
        .unwrap();
    c.assert_all_dropped("queued cross-thread submissions");
    for cf in &cfs {
        // Already failed by close(): reading it must not wait.
        assert_eq!(
            cf.result(Some(Duration::ZERO)),
            Err(Error::Closed),
            "XTHREAD-6: no waiter hangs"
        );
    }
    drop(lp);
}

/// Rules: LIFE-7, XTHREAD-6, TASK-8
#[test]
fn close_frees_a_started_run_coroutine_threadsafe_task() {
    let c = Counter::default();
    let lp = vloop();
    let g = c.guard();
    let cf = loopspec::run_coroutine_threadsafe(
        move || async move {
            let _g = g;
            loopspec::sleep(100.0).await?;
            Ok(1)
        },
        &lp,
    )
    .unwrap();
    run_once(&lp);
    run_once(&lp);
    lp.close().unwrap();
    c.assert_all_dropped("a run_coroutine_threadsafe task");
    assert_eq!(cf.result(Some(Duration::ZERO)), Err(Error::Closed));
    drop(lp);
}

/// Rules: THREAD-4, LIFE-7
#[test]
fn home_thread_exit_frees_its_loop_bound_work() {
    let c = Counter::default();
    let lp = vloop();
    let (remote, c2) = (lp.clone(), c.clone());
    thread::spawn(move || {
        let g = c2.guard();
        remote.call_soon(move || drop(g)).unwrap();
        let g = c2.guard();
        remote.call_later(10.0, move || drop(g)).unwrap();
        let g = c2.guard();
        remote
            .create_task(async move {
                let _g = g;
                Ok(0)
            })
            .unwrap();
    })
    .join()
    .unwrap();
    c.assert_all_dropped("work of a home thread that exited");
    // The loop lost its home and can be used here.
    run_once(&lp);
    lp.close().unwrap();
}

/// A cross-thread submission that refers to its own loop, handed back to the
/// inbox by a home thread that exited, is freed by `close()` (SPEC.md's Rust
/// mapping: closing is the release).
/// Rules: THREAD-4, LIFE-7
#[test]
fn close_frees_submissions_handed_back_by_an_exited_home() {
    let c = Counter::default();
    let lp = vloop();
    let (l, g) = (lp.clone(), c.guard());
    lp.call_soon_threadsafe(move || {
        let _g = g;
        drop(l); // the submission holds its loop
    })
    .unwrap();
    let remote = lp.clone();
    thread::spawn(move || remote.call_soon(|| ()).unwrap()) // takes it in, exits
        .join()
        .unwrap();
    assert_eq!(lp.inbox_stats().queued, 1, "handed back, not dropped");
    lp.close().unwrap();
    c.assert_all_dropped("a handed-back submission after close");
}

/// Rules: LIFE-7, GATHER-6
#[test]
fn close_frees_a_gather_of_pending_tasks() {
    let c = Counter::default();
    let lp = vloop();
    let never: Future<i32> = lp.create_future();
    let g1 = c.guard();
    let t1 = lp
        .create_task(hold_until_cancelled(g1, never.clone()))
        .unwrap();
    let g2 = c.guard();
    let t2 = lp
        .create_task(hold_until_cancelled(g2, never.clone()))
        .unwrap();
    let gathered = loopspec::gather([t1.clone(), t2.clone()], false).unwrap();
    gathered.add_done_callback(guarded_callback(&c)).unwrap();
    run_once(&lp);
    lp.close().unwrap();
    drop((t1, t2, never, gathered));
    c.assert_all_dropped("a gather of tasks destroyed by close()");
    drop(lp);
}

/// Rules: GATHER-1
#[test]
fn dropping_a_gather_of_futures_that_never_complete_frees_it() {
    let c = Counter::default();
    let lp = vloop();
    let a: Future<i32> = lp.create_future();
    let b: Future<i32> = lp.create_future();
    let gathered = loopspec::gather([a.clone(), b.clone()], true).unwrap();
    gathered.add_done_callback(guarded_callback(&c)).unwrap();
    drop((a, b, gathered));
    c.assert_all_dropped("an abandoned gather");
    lp.close().unwrap();
}

/// Rules: LIFE-7, GATHER-1
#[test]
fn finished_gather_and_tasks_are_freed() {
    let c = Counter::default();
    let lp = vloop();
    let g1 = c.guard();
    let t1 = lp
        .create_task(async move {
            let _g = g1;
            loopspec::sleep(1.0).await?;
            Ok(1)
        })
        .unwrap();
    let t2 = lp.create_task(async { Ok(2) }).unwrap();
    let gathered = loopspec::gather([t1, t2], false).unwrap();
    gathered.add_done_callback(guarded_callback(&c)).unwrap();
    let out = lp.run_until_complete(gathered.clone()).unwrap();
    assert_eq!(out, vec![Ok(1), Ok(2)]);
    run_once(&lp);
    drop(gathered);
    c.assert_all_dropped("a finished gather");
    lp.close().unwrap();
}
