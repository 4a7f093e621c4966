//! Leaks: closing (and dropping) a loop with pending tasks, timers, chained
//! futures and queued cross-thread work frees all of it — the reference
//! cycles between tasks and the futures they await (or that await them) are
//! broken.
//!
//! Every piece of user data here carries a counting guard; a test ends by
//! dropping every handle it holds and asserting that every guard it made was
//! dropped exactly once. A guard kept alive by a reference cycle shows up as
//! "made N, dropped N - k".

use common::{Scene, capture_exceptions, run_once};
use loopspec::{
    ConcurrentFuture, DoneCallback, Error, Future, LocalDoneCallback, ReturnWhen, Task,
};
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

    /// A callback holding a guard, dropped with the callback.
    fn callback(&self) -> impl FnOnce() + Send + 'static {
        let g = self.guard();
        move || drop(g)
    }

    /// A done callback holding a guard: alive as long as the future it is
    /// registered on is.
    fn done_callback<T: Send + 'static>(&self) -> DoneCallback<T> {
        let g = self.guard();
        Arc::new(move |_: &Future<T>| {
            let _ = &g;
        })
    }

    /// A task of `s` running `fut`, its future holding a guard.
    fn task<T: Send + 'static>(
        &self,
        s: &Scene,
        fut: impl std::future::Future<Output = loopspec::Result<T>> + 'static,
    ) -> Task<T> {
        s.task_with(self.guard(), |_| fut)
    }

    fn dropped(&self) -> usize {
        self.dropped.load(Ordering::SeqCst)
    }

    fn assert_all_dropped(&self, what: &str) {
        let made = self.made.load(Ordering::SeqCst);
        assert!(made > 0, "{what}: no guard was made");
        let alive = made - self.dropped();
        assert_eq!(alive, 0, "{what}: {alive} of {made} guards still alive");
    }
}

/// Rules: LIFE-7
#[test]
fn close_frees_queued_callbacks_and_timers() {
    let (c, s) = (Counter::default(), Scene::new());
    for _ in 0..3 {
        s.call_soon(c.callback()).unwrap();
    }
    let timers: Vec<_> = [1.0, 5.0, 50.0]
        .map(|d| s.call_later(d, c.callback()).unwrap())
        .into();
    assert_eq!(c.dropped(), 0);
    // Cancelling drops the callback at once, as asyncio's Handle.cancel()
    // clears its callback; the rest wait for close().
    timers[1].cancel();
    assert_eq!(c.dropped(), 1);
    s.close().unwrap();
    c.assert_all_dropped("callbacks and timers at close()");
}

/// A local done callback is kept by the loop's home thread, not by its
/// future: `close()` drops it, while the future lives on; dropping a pending
/// future on the home thread drops its local callbacks at once.
/// Rules: THREAD-6, LIFE-7
#[test]
fn close_frees_local_done_callbacks_of_futures_still_held() {
    let (c, s) = (Counter::default(), Scene::new());
    let kept: Future<i32> = s.create_future();
    let g = c.guard();
    let local: LocalDoneCallback<i32> = Rc::new(move |_: &Future<i32>| {
        let _ = &g;
    });
    kept.add_done_callback_local(local).unwrap();
    let dropped: Future<i32> = s.create_future();
    let g = c.guard();
    dropped
        .add_done_callback_local(Rc::new(move |_: &Future<i32>| {
            let _ = &g;
        }))
        .unwrap();
    drop(dropped);
    assert_eq!(c.dropped(), 1, "the dropped future's local callback");
    s.close().unwrap();
    c.assert_all_dropped("local done callbacks");
    assert!(!kept.done());
}

/// Rules: LIFE-7, TASK-8
#[test]
fn close_frees_pending_tasks_and_what_they_await() {
    let (c, s) = (Counter::default(), Scene::new());
    let seen = capture_exceptions(&s);
    let never: Future<i32> = s.create_future();
    never.add_done_callback(c.done_callback()).unwrap();
    // A task awaiting a future nobody completes, and a task awaiting that task.
    let t1 = c.task(&s, never.clone());
    t1.add_done_callback(c.done_callback()).unwrap();
    let t2 = c.task(&s, t1.clone());
    t2.add_done_callback(c.done_callback()).unwrap();
    // A task sleeping on a timer, and one never started.
    let t3 = c.task(&s, loopspec::sleep(100.0));
    run_once(&s);
    let t4 = c.task(&s, async { Ok(4) });
    s.close().unwrap();
    let destroyed = seen
        .messages()
        .into_iter()
        .filter(|m| m == "Task was destroyed but it is pending!");
    assert_eq!(destroyed.count(), 4, "TASK-8: one report per pending task");
    // close() drops the tasks' futures, and the done callbacks of t1 and t2
    // (they can never run), even while their handles live on.
    assert_eq!(
        c.dropped(),
        6,
        "the four task futures and two done callbacks are dropped by close()"
    );
    assert!(!t1.done() && !t2.done() && !t3.done() && !t4.done());
    drop((t1, t2, t3, t4, never));
    c.assert_all_dropped("tasks, awaited futures and done callbacks");
}

/// Rules: LIFE-7, WAIT-5
#[test]
fn close_frees_a_task_blocked_in_wait_and_wait_for() {
    let (c, s) = (Counter::default(), Scene::new());
    let seen = capture_exceptions(&s);
    let (a, b): (Future<i32>, Future<i32>) = (s.create_future(), s.create_future());
    a.add_done_callback(c.done_callback()).unwrap();
    let waiter = c.task(
        &s,
        loopspec::wait(
            [a.clone(), b.clone()],
            Some(1000.0),
            ReturnWhen::AllCompleted,
        ),
    );
    let timed = c.task(&s, loopspec::wait_for(b.clone(), Some(1000.0)));
    run_once(&s);
    run_once(&s);
    s.close().unwrap();
    assert_eq!(
        seen.messages(),
        ["Task was destroyed but it is pending!"; 2]
    );
    drop((waiter, timed, a, b));
    c.assert_all_dropped("wait and wait_for");
}

/// Rules: LIFE-7, CHAIN-6
#[test]
fn close_frees_chained_futures_whose_source_never_completes() {
    let (c, s) = (Counter::default(), Scene::new());
    let seen = capture_exceptions(&s);
    let cf: ConcurrentFuture<i32> = ConcurrentFuture::new();
    let g = c.guard();
    cf.add_done_callback(move |_| drop(g));
    let dest = loopspec::wrap_future(&cf, &s).unwrap();
    dest.add_done_callback(c.done_callback()).unwrap();
    let t = c.task(&s, dest.clone());
    run_once(&s);
    s.close().unwrap();
    assert_eq!(seen.messages(), ["Task was destroyed but it is pending!"]);
    drop((t, dest));
    // The source completes after close: nothing is scheduled (CHAIN-6), and
    // nothing is kept.
    cf.set_result(1).unwrap();
    drop(cf);
    c.assert_all_dropped("wrap_future chain");
}

/// Rules: LIFE-7, XTHREAD-3, XTHREAD-6, THREAD-5
#[test]
fn close_from_another_thread_frees_queued_cross_thread_work() {
    let (c, s) = (Counter::default(), Scene::new());
    let (remote, c2) = (s.lp.clone(), c.clone());
    let cfs = thread::spawn(move || {
        for _ in 0..3 {
            remote.call_soon_threadsafe(c2.callback()).unwrap();
        }
        let submit = |g: Guard| {
            loopspec::run_coroutine_threadsafe_local(
                move || common::Holding {
                    fut: Box::pin(async { Ok(1) }),
                    _data: g,
                },
                &remote,
            )
        };
        [c2.guard(), c2.guard()].map(|g| submit(g).unwrap())
    })
    .join()
    .unwrap();
    let closer = s.lp.clone();
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
}

/// Rules: LIFE-7, XTHREAD-6, TASK-8
#[test]
fn close_frees_a_started_run_coroutine_threadsafe_task() {
    let (c, s) = (Counter::default(), Scene::new());
    let seen = capture_exceptions(&s);
    let g = c.guard();
    let coro = move || common::Holding {
        fut: Box::pin(loopspec::sleep(100.0)),
        _data: g,
    };
    let cf = loopspec::run_coroutine_threadsafe_local(coro, &s).unwrap();
    run_once(&s);
    run_once(&s);
    s.close().unwrap();
    assert_eq!(seen.messages(), ["Task was destroyed but it is pending!"]);
    c.assert_all_dropped("a run_coroutine_threadsafe task");
    assert_eq!(cf.result(Some(Duration::ZERO)), Err(Error::Closed));
}

/// Rules: THREAD-4, LIFE-7
#[test]
fn local_home_exit_frees_its_local_work() {
    let (c, s) = (Counter::default(), Scene::new());
    let seen = capture_exceptions(&s);
    let (remote, c2) = (Scene::on(s.lp.clone()), c.clone());
    thread::spawn(move || {
        remote.call_soon_local(c2.callback()).unwrap();
        remote.call_later_local(10.0, c2.callback()).unwrap();
        c2.task(&remote, async { Ok(0) });
    })
    .join()
    .unwrap();
    c.assert_all_dropped("local work of a local home that exited");
    assert_eq!(seen.messages(), ["Task was destroyed but it is pending!"]);
    // The loop lost its home and can be used here.
    run_once(&s);
    s.close().unwrap();
}

/// A cross-thread submission that refers to its own loop, taken into the
/// loop's work by a call from a thread that then exited, stays with the loop
/// (the thread takes nothing with it) and is freed by `close()` (SPEC.md's
/// Rust mapping: closing is the release).
/// Rules: THREAD-4, THREAD-8, LIFE-7
#[test]
fn close_frees_submissions_a_thread_took_in_before_it_exited() {
    let (c, s) = (Counter::default(), Scene::new());
    let (l, g) = (s.lp.clone(), c.guard());
    s.call_soon_threadsafe(move || {
        let _g = g;
        drop(l); // the submission holds its loop
    })
    .unwrap();
    let remote = s.lp.clone();
    thread::spawn(move || remote.call_soon(|| ()).unwrap()) // takes it in, exits
        .join()
        .unwrap();
    assert_eq!(s.inbox_stats().queued, 0, "taken into the loop's work");
    assert_eq!(c.dropped(), 0, "kept, not dropped");
    s.close().unwrap();
    c.assert_all_dropped("a submission in the loop's work after close");
}

/// Rules: LIFE-7, GATHER-6
#[test]
fn close_frees_a_gather_of_pending_tasks() {
    let (c, s) = (Counter::default(), Scene::new());
    let seen = capture_exceptions(&s);
    let never: Future<i32> = s.create_future();
    let tasks = [c.task(&s, never.clone()), c.task(&s, never.clone())];
    let gathered = loopspec::gather(tasks.clone(), false).unwrap();
    gathered.add_done_callback(c.done_callback()).unwrap();
    run_once(&s);
    s.close().unwrap();
    assert_eq!(
        seen.messages(),
        ["Task was destroyed but it is pending!"; 2]
    );
    drop((tasks, never, gathered));
    c.assert_all_dropped("a gather of tasks destroyed by close()");
}

/// Rules: GATHER-1
#[test]
fn dropping_a_gather_of_futures_that_never_complete_frees_it() {
    let (c, s) = (Counter::default(), Scene::new());
    let (a, b): (Future<i32>, Future<i32>) = (s.create_future(), s.create_future());
    let gathered = loopspec::gather([a.clone(), b.clone()], true).unwrap();
    gathered.add_done_callback(c.done_callback()).unwrap();
    drop((a, b, gathered));
    c.assert_all_dropped("an abandoned gather");
    s.close().unwrap();
}

/// Rules: LIFE-7, GATHER-1
#[test]
fn finished_gather_and_tasks_are_freed() {
    let (c, s) = (Counter::default(), Scene::new());
    let sleeps = async {
        loopspec::sleep(1.0).await?;
        Ok(1)
    };
    let tasks = [c.task(&s, sleeps), s.task(|_| async { Ok(2) })];
    let gathered = loopspec::gather(tasks, false).unwrap();
    gathered.add_done_callback(c.done_callback()).unwrap();
    assert_eq!(
        s.run_until_complete(gathered.clone()),
        Ok(vec![Ok(1), Ok(2)])
    );
    run_once(&s);
    drop(gathered);
    c.assert_all_dropped("a finished gather");
    s.close().unwrap();
}
