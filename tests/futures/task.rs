//! TASK rules of SPEC.md: scheduling of steps, `create_task`/`ensure_future`,
//! cancellation (counting, delivery, propagation, `uncancel`, the first-reader
//! message quirk), self-awaits, destroyed pending tasks, names, `sleep`,
//! `current_task`/`all_tasks`, panics and futures that cannot observe a
//! cancellation. Observations follow catalogue section 6 (T-1..T-10).

use common::{Log, capture_exceptions, finish, run_once, vloop};
use loopspec::{ClockKind, Error, EventLoop, Profile, Task};
use std::cell::{Cell, RefCell};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// Sets its flag when dropped: shows that a task's future was dropped.
struct DropFlag(Rc<Cell<bool>>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

fn drop_flag() -> (Rc<Cell<bool>>, DropFlag) {
    let f = Rc::new(Cell::new(false));
    (f.clone(), DropFlag(f))
}

fn value_error(msg: &str) -> Error {
    Error::raise("ValueError", msg)
}

fn profile_loop(profile: Profile) -> EventLoop {
    EventLoop::builder()
        .clock(ClockKind::Virtual)
        .profile(profile)
        .build()
}

/// A foreign future: pending on its first poll, ready on every later one.
/// It never touches loopspec, so it cannot observe a cancellation.
struct ReadyOnSecondPoll {
    polled: bool,
}

impl std::future::Future for ReadyOnSecondPoll {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        if self.polled {
            Poll::Ready(())
        } else {
            self.polled = true;
            Poll::Pending
        }
    }
}

// ---------------------------------------------------------------------------
// TASK-1: tasks never start synchronously
// ---------------------------------------------------------------------------

/// Rules: TASK-1
#[test]
fn create_task_runs_nothing_until_next_iteration() {
    // Catalogue T-1: [] / ['start1'] / ['start1', 'end1'] and done.
    let lp = vloop();
    let log = Log::new();
    let l = log.clone();
    let t = lp
        .create_task(async move {
            l.push("start1");
            loopspec::yield_now().await?;
            l.push("end1");
            Ok(())
        })
        .unwrap();
    assert!(log.get().is_empty());
    assert!(!t.done());
    run_once(&lp);
    assert_eq!(log.get(), ["start1"]);
    assert!(!t.done());
    run_once(&lp);
    assert_eq!(log.get(), ["start1", "end1"]);
    assert!(t.done());
    assert_eq!(t.result(), Ok(()));
}

/// Rules: TASK-1
#[test]
fn create_task_first_step_is_queued_with_call_soon() {
    let lp = vloop();
    let log = Log::new();
    lp.call_soon(log.cb("before")).unwrap();
    let l = log.clone();
    let _t = lp
        .create_task(async move {
            l.push("step");
            Ok(())
        })
        .unwrap();
    lp.call_soon(log.cb("after")).unwrap();
    run_once(&lp);
    assert_eq!(log.take(), ["before", "step", "after"]);
}

/// Rules: TASK-1
#[test]
fn ensure_future_of_coroutine_does_not_start_it() {
    let lp = vloop();
    let log = Log::new();
    let l = log.clone();
    let f = lp
        .ensure_future(async move {
            l.push("ran");
            Ok(1)
        })
        .unwrap();
    assert!(log.get().is_empty());
    assert!(!f.done());
    run_once(&lp);
    assert_eq!(log.get(), ["ran"]);
    assert_eq!(f.result().unwrap(), 1);
}

/// Rules: TASK-1, TASK-12
#[test]
fn yield_now_gives_up_exactly_one_iteration() {
    let lp = vloop();
    let log = Log::new();
    let l = log.clone();
    let _t = lp
        .create_task(async move {
            for i in 0..3 {
                l.push(format!("t{i}"));
                loopspec::yield_now().await?;
            }
            Ok(())
        })
        .unwrap();
    for i in 0..3 {
        run_once(&lp);
        assert_eq!(log.take(), [format!("t{i}")]);
    }
    finish(&lp);
}

/// Rules: TASK-1
#[test]
fn task_awaiting_future_resumes_the_iteration_after_completion() {
    let lp = vloop();
    let log = Log::new();
    let fut = lp.create_future::<i32>();
    let (f, l) = (fut.clone(), log.clone());
    let t = lp
        .create_task(async move {
            l.push("await");
            let v = f.await?;
            l.push(format!("resumed {v}"));
            Ok(v)
        })
        .unwrap();
    run_once(&lp);
    assert_eq!(log.take(), ["await"]);
    // Nothing completes it: the task stays suspended.
    run_once(&lp);
    assert!(log.get().is_empty());
    let (f, l) = (fut.clone(), log.clone());
    lp.call_soon(move || {
        f.set_result(4).unwrap();
        l.push("completed");
    })
    .unwrap();
    run_once(&lp);
    assert_eq!(log.take(), ["completed"]);
    assert!(!t.done());
    run_once(&lp);
    assert_eq!(log.take(), ["resumed 4"]);
    assert_eq!(t.result().unwrap(), 4);
}

/// Rules: TASK-1
#[test]
fn task_completion_wakes_awaiting_task_one_iteration_later() {
    let lp = vloop();
    let log = Log::new();
    let l = log.clone();
    let inner = lp
        .create_task(async move {
            l.push("inner start");
            loopspec::yield_now().await?;
            l.push("inner end");
            Ok(5)
        })
        .unwrap();
    let l = log.clone();
    let outer = lp
        .create_task(async move {
            l.push("outer awaits");
            let v = inner.await?;
            l.push(format!("outer got {v}"));
            Ok(v)
        })
        .unwrap();
    run_once(&lp);
    assert_eq!(log.take(), ["inner start", "outer awaits"]);
    run_once(&lp);
    assert_eq!(log.take(), ["inner end"]);
    assert!(!outer.done());
    run_once(&lp);
    assert_eq!(log.take(), ["outer got 5"]);
    assert_eq!(outer.result().unwrap(), 5);
}

/// Rules: TASK-1
#[test]
fn task_awaiting_done_task_continues_in_same_step() {
    let lp = vloop();
    let log = Log::new();
    let l = log.clone();
    let inner = lp
        .create_task(async move {
            l.push("inner");
            Ok(5)
        })
        .unwrap();
    let l = log.clone();
    let outer = lp
        .create_task(async move {
            l.push("outer awaits");
            let v = inner.await?;
            l.push(format!("outer got {v}"));
            Ok(v)
        })
        .unwrap();
    run_once(&lp);
    // inner finished earlier in the same iteration: awaiting a done task
    // does not suspend.
    assert_eq!(log.take(), ["inner", "outer awaits", "outer got 5"]);
    assert!(outer.done());
}

// ---------------------------------------------------------------------------
// TASK-2: what create_task and ensure_future accept
// ---------------------------------------------------------------------------

/// Rules: TASK-2, ERR-1
#[test]
fn create_task_refuses_a_future() {
    let lp = vloop();
    let fut = lp.create_future::<i32>();
    let err = lp.create_task(fut.clone()).unwrap_err();
    assert_eq!(err.python_type(), "TypeError");
    assert_eq!(
        err.to_string(),
        "a coroutine was expected, got <Future pending>"
    );
    assert!(matches!(err, Error::CoroutineExpected { .. }));
    // Nothing was scheduled and no task number was used.
    let t = lp.create_task(async { Ok(1) }).unwrap();
    assert_eq!(t.get_name(), "Task-1");
    finish(&lp);
}

/// Rules: TASK-2
#[test]
fn create_task_refuses_a_task() {
    let lp = vloop();
    let t = lp.create_task(async { Ok(1) }).unwrap();
    let err = lp.create_task(t.clone()).unwrap_err();
    assert_eq!(err.python_type(), "TypeError");
    assert_eq!(
        err.to_string(),
        "a coroutine was expected, got <Task pending name='Task-1'>"
    );
    finish(&lp);
}

/// Rules: TASK-2
#[test]
fn ensure_future_returns_a_future_unchanged() {
    let lp = vloop();
    let fut = lp.create_future::<i32>();
    let same = lp.ensure_future(fut.clone()).unwrap();
    assert_eq!(same, fut);
    // Not wrapped: completing the original completes what was returned.
    fut.set_result(2).unwrap();
    assert_eq!(same.result().unwrap(), 2);
}

/// Rules: TASK-2
#[test]
fn ensure_future_returns_a_task_unchanged() {
    let lp = vloop();
    let t = lp.create_task(async { Ok(1) }).unwrap();
    let same = lp.ensure_future(t.clone()).unwrap();
    assert_eq!(&same, t.as_future());
    assert_eq!(format!("{same:?}"), "<Task pending name='Task-1'>");
    finish(&lp);
}

/// Rules: TASK-2, LIFE-2
#[test]
fn ensure_future_refuses_future_of_other_loop() {
    let lp = vloop();
    let other = vloop();
    let fut = other.create_future::<i32>();
    let err = lp.ensure_future(fut).unwrap_err();
    assert_eq!(err, Error::DifferentLoop);
    assert_eq!(err.python_type(), "ValueError");
    assert_eq!(
        err.to_string(),
        "The future belongs to a different loop than the one specified as the loop argument"
    );
}

/// Rules: TASK-2
#[test]
fn ensure_future_wraps_a_coroutine_in_a_new_task() {
    let lp = vloop();
    let f = lp.ensure_future(async { Ok("v") }).unwrap();
    assert_eq!(format!("{f:?}"), "<Task pending name='Task-1'>");
    assert_eq!(f.get_loop(), lp);
    assert_eq!(lp.run_until_complete(f).unwrap(), "v");
}

// ---------------------------------------------------------------------------
// TASK-3: tasks refuse set_result / set_exception
// ---------------------------------------------------------------------------

/// Rules: TASK-3, ERR-1
#[test]
fn task_set_result_is_refused() {
    let lp = vloop();
    let t = lp.create_task(async { Ok(1) }).unwrap();
    let err = t.set_result(2).unwrap_err();
    assert_eq!(err, Error::TaskSetResult);
    assert_eq!(err.python_type(), "RuntimeError");
    assert_eq!(
        err.to_string(),
        "Task does not support set_result operation"
    );
    assert!(!t.done());
    assert_eq!(lp.run_until_complete(t).unwrap(), 1);
}

/// Rules: TASK-3, ERR-1
#[test]
fn task_set_exception_is_refused() {
    let lp = vloop();
    let t = lp.create_task(async { Ok(1) }).unwrap();
    let err = t.set_exception(value_error("x")).unwrap_err();
    assert_eq!(err, Error::TaskSetException);
    assert_eq!(err.python_type(), "RuntimeError");
    assert_eq!(
        err.to_string(),
        "Task does not support set_exception operation"
    );
    assert!(!t.done());
    assert_eq!(lp.run_until_complete(t).unwrap(), 1);
}

/// Rules: TASK-3
#[test]
fn task_set_result_refused_even_when_done() {
    let lp = vloop();
    let t = lp.create_task(async { Ok(1) }).unwrap();
    lp.run_until_complete(t.clone()).unwrap();
    assert_eq!(t.set_result(2).unwrap_err(), Error::TaskSetResult);
    assert_eq!(
        t.set_exception(value_error("x")).unwrap_err(),
        Error::TaskSetException
    );
    assert_eq!(t.result().unwrap(), 1);
}

// ---------------------------------------------------------------------------
// TASK-4: Task.cancel(msg)
// ---------------------------------------------------------------------------

/// Rules: TASK-4
#[test]
fn task_cancel_returns_true_each_time_and_counts() {
    let lp = vloop();
    let t = lp
        .create_task(async {
            loopspec::sleep(10.0).await?;
            Ok(())
        })
        .unwrap();
    run_once(&lp);
    assert_eq!(t.cancelling(), 0);
    assert!(t.cancel());
    assert_eq!(t.cancelling(), 1);
    assert!(t.cancel_with(Some("again".into())));
    assert_eq!(t.cancelling(), 2);
    let err = lp.run_until_complete(t.clone()).unwrap_err();
    assert!(err.is_cancelled());
    assert!(t.cancelled());
}

/// Rules: TASK-4
#[test]
fn task_cancel_on_done_task_returns_false() {
    let lp = vloop();
    let t = lp.create_task(async { Ok(1) }).unwrap();
    lp.run_until_complete(t.clone()).unwrap();
    assert!(!t.cancel());
    assert_eq!(t.cancelling(), 0);
    assert!(!t.cancelled());
    assert_eq!(t.result().unwrap(), 1);

    let c = lp
        .create_task(async {
            loopspec::sleep(1.0).await?;
            Ok(2)
        })
        .unwrap();
    c.cancel();
    let _ = lp.run_until_complete(c.clone());
    assert!(c.cancelled());
    assert!(!c.cancel());
    assert_eq!(c.cancelling(), 1);
}

/// Rules: TASK-4
#[test]
fn task_cancel_cancels_the_awaited_future_with_message() {
    let lp = vloop();
    let fut = lp.create_future::<i32>();
    let f = fut.clone();
    // The async block is the coroutine: create_task(f) would be refused
    // (TASK-2), so clippy's "redundant" async block is needed here.
    #[allow(clippy::redundant_async_block)]
    let t = lp.create_task(async move { f.await }).unwrap();
    run_once(&lp);
    assert!(t.cancel_with(Some("m1".into())));
    // The awaited future is cancelled at once, with the message.
    assert!(fut.cancelled());
    assert_eq!(
        fut.result().unwrap_err(),
        Error::Cancelled(Some("m1".into()))
    );
    assert!(!t.done());
    run_once(&lp);
    assert!(t.done());
    assert!(t.cancelled());
}

/// Rules: TASK-4
#[test]
fn task_cancel_not_waiting_is_delivered_at_next_step() {
    let lp = vloop();
    let log = Log::new();
    let l = log.clone();
    let t = lp
        .create_task(async move {
            l.push("start");
            // yield_now waits on no loopspec future: the cancellation is
            // delivered when the task is next stepped.
            match loopspec::yield_now().await {
                Err(e) => l.push(format!("caught {e:?}")),
                Ok(()) => l.push("no cancel"),
            }
            Ok(())
        })
        .unwrap();
    run_once(&lp);
    assert!(t.cancel_with(Some("now".into())));
    run_once(&lp);
    assert_eq!(log.take(), ["start", r#"caught CancelledError('now')"#]);
    assert!(t.done());
    assert!(!t.cancelled());
}

/// Rules: TASK-4
#[test]
fn task_cancelled_before_first_step_never_runs_body() {
    let lp = vloop();
    let ran = Rc::new(Cell::new(false));
    let (dropped, guard) = drop_flag();
    let r = ran.clone();
    let t = lp
        .create_task(async move {
            let _guard = guard;
            r.set(true);
            Ok(1)
        })
        .unwrap();
    assert!(t.cancel());
    assert_eq!(t.cancelling(), 1);
    run_once(&lp);
    assert!(!ran.get());
    assert!(dropped.get());
    assert!(t.done());
    assert!(t.cancelled());
    assert_eq!(t.result().unwrap_err(), Error::Cancelled(None));
}

/// Rules: TASK-4
#[test]
fn task_that_catches_cancel_finishes_normally() {
    // Catalogue T-4: result 'swallowed', cancelled() False, cancelling() 1.
    let lp = vloop();
    let t = lp
        .create_task(async {
            match loopspec::sleep(10.0).await {
                Err(e) if e.is_cancelled() => Ok("swallowed"),
                Err(e) => Err(e),
                Ok(()) => Ok("slept"),
            }
        })
        .unwrap();
    run_once(&lp);
    assert!(t.cancel());
    assert_eq!(lp.run_until_complete(t.clone()).unwrap(), "swallowed");
    assert!(!t.cancelled());
    assert_eq!(t.cancelling(), 1);
    assert_eq!(t.result().unwrap(), "swallowed");
    // Cancelled at time 0: the 10 s sleep did not run out.
    assert_eq!(lp.time(), 0.0);
}

/// Rules: TASK-4
#[test]
fn task_that_catches_cancel_can_keep_awaiting() {
    let lp = vloop();
    let t = lp
        .create_task(async {
            let first = loopspec::sleep(10.0).await;
            loopspec::sleep(1.0).await?;
            Ok(first.unwrap_err().is_cancelled())
        })
        .unwrap();
    run_once(&lp);
    t.cancel();
    assert!(lp.run_until_complete(t.clone()).unwrap());
    assert_eq!(lp.time(), 1.0);
}

/// Rules: TASK-4, TASK-11
#[test]
fn task_cancel_propagated_ends_cancelled_with_message() {
    let lp = vloop();
    let t = lp
        .create_task(async {
            loopspec::sleep(10.0).await?;
            Ok(())
        })
        .unwrap();
    run_once(&lp);
    t.cancel_with(Some("msgX".into()));
    run_once(&lp);
    assert!(t.done());
    assert!(t.cancelled());
    assert_eq!(
        t.exception().unwrap_err(),
        Error::Cancelled(Some("msgX".into()))
    );
}

/// A task that, at its first step, takes the task `slot` holds by then,
/// awaits it and logs `name: outcome` (so two such tasks can await each
/// other: the slots are filled after both are made).
fn awaiting_the_task_in<T: Clone + std::fmt::Debug + 'static>(
    lp: &EventLoop,
    slot: &Rc<RefCell<Option<Task<T>>>>,
    log: &Log,
    name: &'static str,
) -> Task<T> {
    let (slot, log) = (slot.clone(), log.clone());
    lp.create_task(async move {
        let other = slot.borrow_mut().take().unwrap();
        let r = other.await;
        log.push(format!("{name}: {r:?}"));
        r
    })
    .unwrap()
}

/// The await cycle of TASK-4: `m` awaits a gather of `t0`, and `t0` awaits
/// `m`. CPython's `m.cancel()` goes round the cycle (m → gather → t0 → m → …)
/// until `RecursionError` (conformance scenario `task-6-cancel-await-cycle`,
/// a recorded divergence); loopspec's cancel reaches `t0`, finds that `t0`
/// awaits `m`, whose `cancel()` is already running, and stops there: each task
/// is cancelled exactly once, both calls return true, nothing is done yet, and
/// the stack does not overflow (conformance/README.md records that it once
/// did). `t0` has no cancelled future to wake it, so it gets a step of its
/// own, where the `CancelledError` (with the message) comes out of its
/// `m.await`; it ends cancelled, the gather then finishes with that
/// `CancelledError` as its exception (GATHER-6), and `m`, woken by the
/// gather, ends cancelled with the message too.
/// Rules: TASK-4
#[test]
fn task_cancel_of_an_await_cycle_stops_at_the_task_being_cancelled() {
    let lp = vloop();
    let log = Log::new();
    let m_slot = Rc::new(RefCell::new(None));
    let t0 = awaiting_the_task_in(&lp, &m_slot, &log, "t0");
    let g = loopspec::gather([t0.clone()], false).unwrap();
    let (gm, l) = (g.clone(), log.clone());
    let m = lp
        .create_task(async move {
            let r = gm.await;
            l.push(format!("m: {r:?}"));
            r.map(|v| v.len())
        })
        .unwrap();
    *m_slot.borrow_mut() = Some(m.clone());
    // One iteration: t0 awaits m, m awaits the gather of t0.
    run_once(&lp);
    assert!(log.take().is_empty());
    assert!(!t0.done() && !m.done() && !g.done());

    assert!(m.cancel_with(Some("cycle".into())));
    // Once round the cycle, not again: one cancel each.
    assert_eq!((m.cancelling(), t0.cancelling()), (1, 1));
    assert!(!t0.done() && !m.done() && !g.done());

    // t0's next step delivers the cancellation; it is t0 that ends first.
    run_once(&lp);
    assert_eq!(log.take(), [r#"t0: Err(CancelledError('cycle'))"#]);
    assert!(t0.done() && t0.cancelled());
    assert!(!m.done());

    // Running on: the gather finishes with the CancelledError as its
    // exception, and m ends cancelled with the message, all at time 0.
    let err = lp.run_until_complete(m.clone()).unwrap_err();
    assert_eq!(err, Error::Cancelled(Some("cycle".into())));
    assert_eq!(log.take(), [r#"m: Err(CancelledError('cycle'))"#]);
    assert!(m.cancelled());
    assert!(g.done() && !g.cancelled());
    assert!(g.exception().unwrap().is_some_and(|e| e.is_cancelled()));
    assert!(t0.cancelled());
    assert_eq!((m.cancelling(), t0.cancelling()), (1, 1));
    assert_eq!(lp.time(), 0.0);
    // Done tasks: cancelling again does nothing.
    assert!(!m.cancel());
    assert!(!t0.cancel());
}

/// The shortest await cycle: task `a` awaits task `b`, and `b` awaits `a`.
/// `a.cancel()` cancels `b`, whose cancel finds `a`'s `cancel()` already
/// running and stops; `b` is stepped with the `CancelledError` and ends
/// cancelled, and `a`, woken by `b`, ends cancelled with the message.
/// Rules: TASK-4
#[test]
fn task_cancel_of_an_await_cycle_of_two_tasks_cancels_each_once() {
    let lp = vloop();
    let log = Log::new();
    let a_slot: Rc<RefCell<Option<Task<i32>>>> = Rc::new(RefCell::new(None));
    let b_slot = Rc::new(RefCell::new(None));
    let a = awaiting_the_task_in(&lp, &b_slot, &log, "a");
    let b = awaiting_the_task_in(&lp, &a_slot, &log, "b");
    *a_slot.borrow_mut() = Some(a.clone());
    *b_slot.borrow_mut() = Some(b.clone());
    run_once(&lp);
    assert!(!a.done() && !b.done());

    assert!(a.cancel_with(Some("ab".into())));
    assert_eq!((a.cancelling(), b.cancelling()), (1, 1));
    assert!(!a.done() && !b.done());

    run_once(&lp);
    assert_eq!(log.take(), [r#"b: Err(CancelledError('ab'))"#]);
    assert!(b.cancelled());
    assert!(!a.done());

    let err = lp.run_until_complete(a.clone()).unwrap_err();
    assert_eq!(err, Error::Cancelled(Some("ab".into())));
    assert_eq!(log.take(), [r#"a: Err(CancelledError('ab'))"#]);
    assert!(a.cancelled() && b.cancelled());
    assert_eq!((a.cancelling(), b.cancelling()), (1, 1));
    assert_eq!(lp.time(), 0.0);
}

// ---------------------------------------------------------------------------
// TASK-5: cancelled in the step that returns
// ---------------------------------------------------------------------------

/// Rules: TASK-5
#[test]
fn task_self_cancel_then_return_ends_cancelled() {
    let lp = vloop();
    let (dropped, guard) = drop_flag();
    let t = lp
        .create_task(async move {
            let _g = guard;
            let me = loopspec::current_task()?.unwrap();
            assert!(me.cancel());
            Ok(42)
        })
        .unwrap();
    run_once(&lp);
    assert!(t.done());
    assert!(t.cancelled());
    assert!(dropped.get());
    assert_eq!(t.result().unwrap_err(), Error::Cancelled(None));
    assert_eq!(t.cancelling(), 1);
}

/// Rules: TASK-5, TASK-11
#[test]
fn task_self_cancel_keeps_message_for_every_reader() {
    // Python: t3 result ('selfmsg',) twice.
    let lp = vloop();
    let t = lp
        .create_task(async {
            loopspec::current_task()?
                .unwrap()
                .cancel_with(Some("selfmsg".into()));
            Ok(5)
        })
        .unwrap();
    run_once(&lp);
    assert!(t.cancelled());
    for _ in 0..3 {
        assert_eq!(
            t.result().unwrap_err(),
            Error::Cancelled(Some("selfmsg".into()))
        );
    }
    assert_eq!(
        t.exception().unwrap_err(),
        Error::Cancelled(Some("selfmsg".into()))
    );
}

/// Rules: TASK-5
#[test]
fn task_self_cancel_then_await_delivers_it() {
    let lp = vloop();
    let t = lp
        .create_task(async {
            loopspec::current_task()?.unwrap().cancel();
            match loopspec::yield_now().await {
                Err(e) if e.is_cancelled() => Ok("seen"),
                _ => Ok("missed"),
            }
        })
        .unwrap();
    assert_eq!(lp.run_until_complete(t.clone()).unwrap(), "seen");
    assert!(!t.cancelled());
}

// ---------------------------------------------------------------------------
// TASK-6: cancellation and awaiting tasks
// ---------------------------------------------------------------------------

/// Rules: TASK-6
#[test]
fn task_awaiting_cancelled_task_gets_its_message() {
    let lp = vloop();
    let inner = lp
        .create_task(async {
            loopspec::sleep(10.0).await?;
            Ok(1)
        })
        .unwrap();
    let i2 = inner.clone();
    let outer = lp
        .create_task(async move {
            match i2.await {
                Err(e) => Ok(format!("{e:?}")),
                Ok(v) => Ok(format!("value {v}")),
            }
        })
        .unwrap();
    run_once(&lp);
    inner.cancel_with(Some("msgX".into()));
    assert_eq!(
        lp.run_until_complete(outer).unwrap(),
        r#"CancelledError('msgX')"#
    );
    assert!(inner.cancelled());
}

/// Rules: TASK-6
#[test]
fn task_cancelling_awaiting_task_cancels_awaited_task() {
    let lp = vloop();
    let inner = lp
        .create_task(async {
            loopspec::sleep(10.0).await?;
            Ok(1)
        })
        .unwrap();
    let i2 = inner.clone();
    let log = Log::new();
    let l = log.clone();
    let outer = lp
        .create_task(async move {
            match i2.await {
                Err(e) => {
                    l.push(format!("outer got {e:?}"));
                    Err(e)
                }
                Ok(v) => Ok(v),
            }
        })
        .unwrap();
    run_once(&lp);
    run_once(&lp);
    assert!(outer.cancel_with(Some("m".into())));
    // Python: inner is not cancelled yet (its cancellation is pending).
    assert!(!inner.done());
    assert_eq!(inner.cancelling(), 1);
    assert_eq!(outer.cancelling(), 1);
    let err = lp.run_until_complete(outer.clone()).unwrap_err();
    assert_eq!(err, Error::Cancelled(Some("m".into())));
    assert_eq!(log.take(), [r#"outer got CancelledError('m')"#]);
    assert!(inner.cancelled());
    assert!(outer.cancelled());
}

/// Rules: TASK-6, TASK-11
#[test]
fn task_awaiter_is_first_reader_of_cancelled_task() {
    // Python: waiter gets ('msgY',); a later t2.result() gets ().
    let lp = vloop();
    let inner = lp
        .create_task(async {
            loopspec::sleep(10.0).await?;
            Ok(1)
        })
        .unwrap();
    run_once(&lp);
    inner.cancel_with(Some("msgY".into()));
    let i2 = inner.clone();
    let waiter = lp
        .create_task(async move { Ok(i2.await.unwrap_err()) })
        .unwrap();
    assert_eq!(
        lp.run_until_complete(waiter).unwrap(),
        Error::Cancelled(Some("msgY".into()))
    );
    assert_eq!(inner.result().unwrap_err(), Error::Cancelled(None));
}

// ---------------------------------------------------------------------------
// TASK-7: a task cannot await itself
// ---------------------------------------------------------------------------

/// Rules: TASK-7, ERR-1
#[test]
fn task_awaiting_itself_gets_runtime_error_next_step() {
    let lp = vloop();
    let holder: Rc<RefCell<Option<Task<i32>>>> = Rc::new(RefCell::new(None));
    let log = Log::new();
    let (h, l) = (holder.clone(), log.clone());
    let t = lp
        .create_task(async move {
            let me = h.borrow_mut().take().unwrap();
            l.push("awaiting self");
            match me.await {
                Err(e) => {
                    l.push(format!("{}: {e}", e.python_type()));
                    Ok(1)
                }
                Ok(v) => Ok(v + 100),
            }
        })
        .unwrap();
    *holder.borrow_mut() = Some(t.clone());
    run_once(&lp);
    assert_eq!(log.take(), ["awaiting self"]);
    assert!(!t.done());
    run_once(&lp);
    assert_eq!(
        log.take(),
        ["RuntimeError: Task cannot await on itself: <Task pending name='Task-1'>"]
    );
    assert_eq!(t.result().unwrap(), 1);
}

/// Rules: TASK-7
#[test]
fn task_awaiting_itself_uncaught_ends_with_error() {
    let lp = vloop();
    let _first = lp.create_task(async { Ok(0) }).unwrap();
    let holder: Rc<RefCell<Option<Task<i32>>>> = Rc::new(RefCell::new(None));
    let h = holder.clone();
    let t = lp
        .create_task(async move {
            let me = h.borrow_mut().take().unwrap();
            me.await
        })
        .unwrap();
    *holder.borrow_mut() = Some(t.clone());
    let err = lp.run_until_complete(t.clone()).unwrap_err();
    assert!(matches!(err, Error::TaskAwaitsItself { .. }));
    assert_eq!(err.python_type(), "RuntimeError");
    assert_eq!(
        err.to_string(),
        "Task cannot await on itself: <Task pending name='Task-2'>"
    );
    assert!(!t.cancelled());
}

// ---------------------------------------------------------------------------
// TASK-8: destroying a pending task
// ---------------------------------------------------------------------------

/// Rules: TASK-8, LIFE-7
#[test]
fn close_with_pending_task_reports_destroyed_task() {
    let lp = vloop();
    let seen = capture_exceptions(&lp);
    let (dropped, guard) = drop_flag();
    let t = lp
        .create_task(async move {
            let _g = guard;
            loopspec::sleep(10.0).await?;
            Ok(())
        })
        .unwrap();
    run_once(&lp);
    assert!(seen.lock().unwrap().is_empty());
    lp.close().unwrap();
    assert!(dropped.get());
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].message, "Task was destroyed but it is pending!");
    assert_eq!(
        seen[0].task.as_deref(),
        Some("<Task pending name='Task-1'>")
    );
    assert!(!t.done());
}

/// Rules: TASK-8
#[test]
fn close_with_never_started_task_reports_it() {
    let lp = vloop();
    let seen = capture_exceptions(&lp);
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let _t = lp
        .create_task(async move {
            r.set(true);
            Ok(())
        })
        .unwrap();
    lp.close().unwrap();
    assert!(!ran.get());
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].message, "Task was destroyed but it is pending!");
}

/// Rules: TASK-8
#[test]
fn close_reports_only_pending_tasks() {
    let lp = vloop();
    let seen = capture_exceptions(&lp);
    let done = lp.create_task(async { Ok(1) }).unwrap();
    let _pending = lp
        .create_task(async {
            loopspec::sleep(5.0).await?;
            Ok(2)
        })
        .unwrap();
    run_once(&lp);
    assert!(done.done());
    lp.close().unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].message, "Task was destroyed but it is pending!");
    assert_eq!(
        seen[0].task.as_deref(),
        Some("<Task pending name='Task-2'>")
    );
}

// ---------------------------------------------------------------------------
// TASK-9: task names
// ---------------------------------------------------------------------------

/// Rules: TASK-9
#[test]
fn task_names_count_per_loop() {
    let a = vloop();
    let b = vloop();
    let a1 = a.create_task(async { Ok(()) }).unwrap();
    let a2 = a.create_task(async { Ok(()) }).unwrap();
    let b1 = b.create_task(async { Ok(()) }).unwrap();
    let a3 = a.create_task(async { Ok(()) }).unwrap();
    assert_eq!(a1.get_name(), "Task-1");
    assert_eq!(a2.get_name(), "Task-2");
    assert_eq!(a3.get_name(), "Task-3");
    assert_eq!(b1.get_name(), "Task-1");
    assert_eq!(format!("{a2:?}"), "<Task pending name='Task-2'>");
    finish(&a);
    finish(&b);
}

/// Rules: TASK-9
#[test]
fn task_set_name_renames() {
    let lp = vloop();
    let t = lp
        .create_task(async { Ok(loopspec::current_task()?.unwrap().get_name()) })
        .unwrap();
    t.set_name("worker");
    assert_eq!(t.get_name(), "worker");
    assert_eq!(format!("{t:?}"), "<Task pending name='worker'>");
    assert_eq!(lp.run_until_complete(t.clone()).unwrap(), "worker");
    // The counter is not affected by renaming.
    let u = lp.create_task(async { Ok(String::new()) }).unwrap();
    assert_eq!(u.get_name(), "Task-2");
    finish(&lp);
}

/// Rules: TASK-9
#[test]
fn task_repr_follows_asyncio_shape_in_every_state() {
    // CPython: <Task finished name='Task-1' coro=<...> exception=ValueError('y')>;
    // loopspec drops the coro part (SPEC.md, Rust mapping: Reprs).
    let lp = vloop();
    let ok = lp.create_task(async { Ok(1) }).unwrap();
    let failed = lp
        .create_task(async { Err::<i32, _>(value_error("y")) })
        .unwrap();
    let cancelled = lp.create_task(async { Ok(1) }).unwrap();
    cancelled.cancel();
    run_once(&lp);
    assert_eq!(format!("{ok:?}"), "<Task finished name='Task-1'>");
    assert_eq!(format!("{cancelled:?}"), "<Task cancelled name='Task-3'>");
    let repr = format!("{failed:?}");
    let _ = failed.exception();
    assert_eq!(
        repr,
        "<Task finished name='Task-2' exception=ValueError('y')>"
    );
}

/// Rules: TASK-9, TASK-13
#[test]
fn task_set_name_through_current_task() {
    let lp = vloop();
    let t = lp
        .create_task(async {
            loopspec::current_task()?.unwrap().set_name("renamed");
            Ok(())
        })
        .unwrap();
    lp.run_until_complete(t.clone()).unwrap();
    assert_eq!(t.get_name(), "renamed");
}

/// Rules: TASK-9
#[test]
fn run_until_complete_coroutine_gets_next_name() {
    let lp = vloop();
    let _t = lp.create_task(async { Ok(()) }).unwrap();
    let name = lp
        .run_until_complete(async { Ok(loopspec::current_task()?.unwrap().get_name()) })
        .unwrap();
    assert_eq!(name, "Task-2");
}

// ---------------------------------------------------------------------------
// TASK-10: uncancel() reaching zero
// ---------------------------------------------------------------------------

fn uncancel_before_first_step(profile: Profile) -> (Task<&'static str>, bool) {
    let lp = profile_loop(profile);
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let t = lp
        .create_task(async move {
            r.set(true);
            Ok("ok")
        })
        .unwrap();
    assert!(t.cancel());
    assert_eq!(t.uncancel(), 0);
    assert_eq!(t.cancelling(), 0);
    run_once(&lp);
    run_once(&lp);
    assert!(t.done());
    (t, ran.get())
}

/// Rules: TASK-10
#[test]
fn uncancel_to_zero_withdraws_pending_cancel_py313() {
    for profile in [Profile::Py313, Profile::Py314, Profile::Py315] {
        let (t, ran) = uncancel_before_first_step(profile);
        assert!(ran, "{profile:?}");
        assert!(!t.cancelled(), "{profile:?}");
        assert_eq!(t.result().unwrap(), "ok");
    }
}

/// Rules: TASK-10
#[test]
fn uncancel_to_zero_keeps_pending_cancel_py311() {
    for profile in [Profile::Py311, Profile::Py312] {
        let (t, ran) = uncancel_before_first_step(profile);
        assert!(!ran, "{profile:?}");
        assert!(t.cancelled(), "{profile:?}");
    }
}

/// Rules: TASK-10
#[test]
fn uncancel_default_profile_is_py311() {
    let lp = vloop();
    assert_eq!(lp.profile(), Profile::Py311);
    let t = lp.create_task(async { Ok(1) }).unwrap();
    t.cancel();
    t.uncancel();
    run_once(&lp);
    assert!(t.cancelled());
}

/// Rules: TASK-10
#[test]
fn uncancel_not_reaching_zero_keeps_cancel_in_every_profile() {
    for profile in Profile::ALL {
        let lp = profile_loop(profile);
        let t = lp.create_task(async { Ok(1) }).unwrap();
        assert!(t.cancel());
        assert!(t.cancel());
        assert_eq!(t.uncancel(), 1);
        run_once(&lp);
        assert!(t.cancelled(), "{profile:?}");
    }
}

/// Rules: TASK-10
#[test]
fn uncancel_on_started_task_between_steps() {
    // Python (f case): a task yielding with sleep(0), cancelled then
    // uncancelled: 3.11/3.12 end cancelled, 3.13 carries on.
    for profile in Profile::ALL {
        let lp = profile_loop(profile);
        let t = lp
            .create_task(async {
                for _ in 0..3 {
                    loopspec::yield_now().await?;
                }
                Ok("y")
            })
            .unwrap();
        run_once(&lp);
        t.cancel();
        assert_eq!(t.uncancel(), 0);
        for _ in 0..4 {
            run_once(&lp);
        }
        assert!(t.done(), "{profile:?}");
        let withdraws = profile >= Profile::Py313;
        assert_eq!(t.cancelled(), !withdraws, "{profile:?}");
        if withdraws {
            assert_eq!(t.result().unwrap(), "y");
        }
    }
}

/// Rules: TASK-10
#[test]
fn uncancel_at_zero_stays_zero() {
    let lp = vloop();
    let t = lp.create_task(async { Ok(1) }).unwrap();
    assert_eq!(t.uncancel(), 0);
    assert_eq!(t.cancelling(), 0);
    assert_eq!(lp.run_until_complete(t).unwrap(), 1);
}

// ---------------------------------------------------------------------------
// TASK-11: the first reader gets the message
// ---------------------------------------------------------------------------

/// Rules: TASK-11
#[test]
fn task_first_result_read_gets_message_later_reads_do_not() {
    // Python 3.11/3.12/3.13: ('msgX',) then () () and exception() ().
    let lp = vloop();
    let t = lp
        .create_task(async {
            loopspec::sleep(10.0).await?;
            Ok(())
        })
        .unwrap();
    run_once(&lp);
    t.cancel_with(Some("msgX".into()));
    run_once(&lp);
    assert!(t.cancelled());
    let first = t.result().unwrap_err();
    assert_eq!(first, Error::Cancelled(Some("msgX".into())));
    assert_eq!(first.to_string(), "msgX");
    assert_eq!(t.result().unwrap_err(), Error::Cancelled(None));
    assert_eq!(t.result().unwrap_err(), Error::Cancelled(None));
    assert_eq!(t.exception().unwrap_err(), Error::Cancelled(None));
}

/// Rules: TASK-11
#[test]
fn task_first_exception_read_gets_message() {
    let lp = vloop();
    let t = lp
        .create_task(async {
            loopspec::sleep(10.0).await?;
            Ok(())
        })
        .unwrap();
    run_once(&lp);
    t.cancel_with(Some("m".into()));
    run_once(&lp);
    assert_eq!(
        t.exception().unwrap_err(),
        Error::Cancelled(Some("m".into()))
    );
    assert_eq!(t.result().unwrap_err(), Error::Cancelled(None));
}

/// Rules: TASK-11, TASK-4
#[test]
fn task_cancelled_before_first_step_first_reader_gets_message() {
    // Python: t4 result ('early',) then ().
    let lp = vloop();
    let t = lp.create_task(async { Ok(1) }).unwrap();
    t.cancel_with(Some("early".into()));
    run_once(&lp);
    assert!(t.cancelled());
    assert_eq!(
        t.result().unwrap_err(),
        Error::Cancelled(Some("early".into()))
    );
    assert_eq!(t.result().unwrap_err(), Error::Cancelled(None));
}

/// Rules: TASK-11
#[test]
fn task_raising_cancelled_itself_first_reader_gets_message() {
    // The coroutine returns Err(Cancelled(msg)) on its own: the task ends
    // cancelled and hands msg to the first reader only.
    let lp = vloop();
    let t = lp
        .create_task(async { Err::<i32, _>(Error::Cancelled(Some("own".into()))) })
        .unwrap();
    run_once(&lp);
    assert!(t.cancelled());
    assert_eq!(t.cancelling(), 0);
    assert_eq!(
        t.result().unwrap_err(),
        Error::Cancelled(Some("own".into()))
    );
    assert_eq!(t.result().unwrap_err(), Error::Cancelled(None));
}

/// Rules: TASK-11
#[test]
fn task_run_until_complete_is_the_first_reader() {
    let lp = vloop();
    let t = lp
        .create_task(async {
            loopspec::sleep(10.0).await?;
            Ok(())
        })
        .unwrap();
    run_once(&lp);
    t.cancel_with(Some("msgX".into()));
    assert_eq!(
        lp.run_until_complete(t.clone()).unwrap_err(),
        Error::Cancelled(Some("msgX".into()))
    );
    assert_eq!(t.result().unwrap_err(), Error::Cancelled(None));
}

// ---------------------------------------------------------------------------
// TASK-12: sleep
// ---------------------------------------------------------------------------

/// Rules: TASK-12
#[test]
fn sleep_completes_after_delay_on_loop_clock() {
    let lp = vloop();
    let t = lp
        .create_task(async {
            let lp = loopspec::get_running_loop()?;
            let start = lp.time();
            loopspec::sleep(2.5).await?;
            let mid = lp.time();
            loopspec::sleep(1.0).await?;
            Ok((start, mid, lp.time()))
        })
        .unwrap();
    assert_eq!(lp.run_until_complete(t).unwrap(), (0.0, 2.5, 3.5));
}

/// Rules: TASK-12
#[test]
fn sleep_not_done_before_delay() {
    let lp = vloop();
    let t = lp
        .create_task(async {
            loopspec::sleep(5.0).await?;
            Ok(())
        })
        .unwrap();
    let lp2 = lp.clone();
    lp.call_later(4.5, move || lp2.stop()).unwrap();
    lp.run_forever().unwrap();
    assert!(!t.done());
    assert_eq!(lp.time(), 4.5);
    lp.run_until_complete(t.clone()).unwrap();
    assert_eq!(lp.time(), 5.0);
}

/// Rules: TASK-12, TASK-1
#[test]
fn sleep_zero_and_negative_yield_one_iteration() {
    for delay in [0.0, -1.0] {
        let lp = vloop();
        let log = Log::new();
        let l = log.clone();
        let t = lp
            .create_task(async move {
                l.push("a");
                loopspec::sleep(delay).await?;
                l.push("b");
                loopspec::sleep(delay).await?;
                l.push("c");
                Ok(())
            })
            .unwrap();
        run_once(&lp);
        assert_eq!(log.take(), ["a"], "delay {delay}");
        run_once(&lp);
        assert_eq!(log.take(), ["b"], "delay {delay}");
        run_once(&lp);
        assert_eq!(log.take(), ["c"], "delay {delay}");
        assert!(t.done());
        assert_eq!(lp.time(), 0.0);
    }
}

/// Rules: TASK-12, ERR-1
#[test]
fn sleep_outside_running_loop_fails() {
    let mut fut = Box::pin(loopspec::sleep(1.0));
    let out = fut.as_mut().poll(&mut Context::from_waker(Waker::noop()));
    match out {
        Poll::Ready(Err(e)) => {
            assert_eq!(e, Error::NoRunningLoop);
            assert_eq!(e.to_string(), "no running event loop");
            assert_eq!(e.python_type(), "RuntimeError");
        }
        other => panic!("expected NoRunningLoop, got {other:?}"),
    }
}

/// Rules: TASK-12, THREAD-3
#[test]
fn sleep_cancelled_task_cancels_its_timer() {
    // The cancelled sleep's timer is cancelled: once the task ends the loop
    // holds no live timer, so it is released from this thread (THREAD-3) and
    // can run on another. A live 100 s timer would keep it bound here.
    let lp = vloop();
    let t = lp
        .create_task(async {
            loopspec::sleep(100.0).await?;
            Ok(())
        })
        .unwrap();
    let t2 = t.clone();
    lp.call_later(1.0, move || {
        t2.cancel();
    })
    .unwrap();
    let err = lp.run_until_complete(t.clone()).unwrap_err();
    assert!(err.is_cancelled());
    assert!(t.cancelled());
    assert_eq!(lp.time(), 1.0);
    let lp2 = lp.clone();
    let other = std::thread::spawn(move || {
        lp2.stop();
        lp2.run_forever()
    })
    .join()
    .unwrap();
    assert_eq!(other, Ok(()));
    // And the clock never jumped to the cancelled deadline.
    assert_eq!(lp.time(), 1.0);
}

/// Rules: TASK-12, TASK-4
#[test]
fn sleep_cancelled_raises_cancelled_with_message() {
    let lp = vloop();
    let t = lp
        .create_task(async { Ok(loopspec::sleep(100.0).await.unwrap_err()) })
        .unwrap();
    run_once(&lp);
    t.cancel_with(Some("wake".into()));
    assert_eq!(
        lp.run_until_complete(t).unwrap(),
        Error::Cancelled(Some("wake".into()))
    );
    assert_eq!(lp.time(), 0.0);
}

// ---------------------------------------------------------------------------
// TASK-13: current_task and all_tasks
// ---------------------------------------------------------------------------

/// Rules: TASK-13
#[test]
fn current_task_in_a_step_is_that_task() {
    let lp = vloop();
    let holder: Rc<RefCell<Option<Task<bool>>>> = Rc::new(RefCell::new(None));
    let h = holder.clone();
    let t = lp
        .create_task(async move {
            let me = loopspec::current_task()?.unwrap();
            let handle = h.borrow_mut().take().unwrap();
            let before = me.is(&handle);
            loopspec::yield_now().await?;
            // Still the same task in a later step.
            let again = loopspec::current_task()?.unwrap();
            Ok(before && again == me && again.get_name() == "Task-1")
        })
        .unwrap();
    *holder.borrow_mut() = Some(t.clone());
    assert!(lp.run_until_complete(t).unwrap());
}

/// Rules: TASK-13
#[test]
fn current_task_in_plain_callback_is_none() {
    let lp = vloop();
    let seen = Rc::new(RefCell::new(None));
    let s = seen.clone();
    let _t = lp.create_task(async { Ok(()) }).unwrap();
    lp.call_soon(move || {
        *s.borrow_mut() = Some(loopspec::current_task().map(|t| t.is_none()));
    })
    .unwrap();
    run_once(&lp);
    assert_eq!(*seen.borrow(), Some(Ok(true)));
}

/// Rules: TASK-13, ERR-1
#[test]
fn current_task_without_running_loop_fails() {
    let err = loopspec::current_task().unwrap_err();
    assert_eq!(err, Error::NoRunningLoop);
    assert_eq!(err.to_string(), "no running event loop");
    assert_eq!(err.python_type(), "RuntimeError");
    // A loop that exists but does not run does not count.
    let lp = vloop();
    let _t = lp.create_task(async { Ok(()) }).unwrap();
    assert_eq!(loopspec::current_task().unwrap_err(), Error::NoRunningLoop);
    finish(&lp);
}

/// Rules: TASK-13
#[test]
fn all_tasks_lists_unfinished_tasks_of_running_loop() {
    let lp = vloop();
    let other = vloop();
    let _foreign = other
        .create_task(async {
            loopspec::sleep(1.0).await?;
            Ok(())
        })
        .unwrap();
    let quick = lp.create_task(async { Ok(()) }).unwrap();
    let slow = lp
        .create_task(async {
            loopspec::sleep(5.0).await?;
            Ok(())
        })
        .unwrap();
    let (q, s) = (quick.clone(), slow.clone());
    let main = lp
        .create_task(async move {
            loopspec::yield_now().await?;
            let all = loopspec::all_tasks()?;
            let me = loopspec::current_task()?.unwrap();
            let has = |t: &Task<()>| all.iter().any(|r| r.is(t));
            Ok((all.len(), has(&q), has(&s), all.contains(&me)))
        })
        .unwrap();
    let (n, has_quick, has_slow, has_me) = lp.run_until_complete(main).unwrap();
    assert!(quick.done());
    assert!(!has_quick);
    assert!(has_slow);
    assert!(has_me);
    assert_eq!(n, 2);
    finish(&lp);
    finish(&other);
}

/// Rules: TASK-13
#[test]
fn all_tasks_in_plain_callback_and_outside_loop() {
    let lp = vloop();
    let _t = lp
        .create_task(async {
            loopspec::sleep(1.0).await?;
            Ok(())
        })
        .unwrap();
    let seen = Rc::new(Cell::new(usize::MAX));
    let s = seen.clone();
    lp.call_soon(move || s.set(loopspec::all_tasks().unwrap().len()))
        .unwrap();
    run_once(&lp);
    assert_eq!(seen.get(), 1);
    let err = loopspec::all_tasks().unwrap_err();
    assert_eq!(err, Error::NoRunningLoop);
    assert_eq!(err.to_string(), "no running event loop");
    finish(&lp);
}

// ---------------------------------------------------------------------------
// TASK-14: a panic is an exception
// ---------------------------------------------------------------------------

/// Rules: TASK-14
#[test]
fn task_panic_ends_task_with_panic_error() {
    let lp = vloop();
    let t = lp
        .create_task(async {
            if lp_is_virtual() {
                panic!("boom");
            }
            Ok(1)
        })
        .unwrap();
    run_once(&lp);
    assert!(t.done());
    assert!(!t.cancelled());
    let err = t.result().unwrap_err();
    assert_eq!(err, Error::Panic("boom".into()));
    assert_eq!(err.to_string(), "boom");
    assert_eq!(err.python_type(), "Panic");
}

fn lp_is_virtual() -> bool {
    loopspec::get_running_loop().is_ok_and(|l| l.clock_kind() == ClockKind::Virtual)
}

/// Rules: TASK-14
#[test]
fn task_panic_leaves_loop_running_other_work() {
    let lp = vloop();
    let log = Log::new();
    let (dropped, guard) = drop_flag();
    let l = log.clone();
    let bad = lp
        .create_task(async move {
            let _g = guard;
            l.push("bad");
            loopspec::yield_now().await?;
            if lp_is_virtual() {
                panic!("later {}", 7);
            }
            Ok(())
        })
        .unwrap();
    let l = log.clone();
    let good = lp
        .create_task(async move {
            for i in 0..3 {
                l.push(format!("good{i}"));
                loopspec::yield_now().await?;
            }
            Ok("fine")
        })
        .unwrap();
    assert_eq!(lp.run_until_complete(good).unwrap(), "fine");
    assert_eq!(log.take(), ["bad", "good0", "good1", "good2"]);
    assert!(dropped.get());
    assert_eq!(
        bad.exception().unwrap(),
        Some(Error::Panic("later 7".into()))
    );
    // The loop still works.
    assert_eq!(lp.run_until_complete(async { Ok(3) }).unwrap(), 3);
    assert!(!lp.is_running());
}

/// Rules: TASK-14, LIFE-4
#[test]
fn task_panic_propagates_to_awaiter() {
    let lp = vloop();
    let err = lp
        .run_until_complete(async {
            let inner = loopspec::create_task(async {
                loopspec::yield_now().await?;
                if lp_is_virtual() {
                    panic!("inner panic");
                }
                Ok(0)
            })?;
            inner.await
        })
        .unwrap_err();
    assert_eq!(err, Error::Panic("inner panic".into()));
}

// ---------------------------------------------------------------------------
// TASK-15: cancelling a task that cannot observe it
// ---------------------------------------------------------------------------

/// Rules: TASK-15
#[test]
fn cancel_task_suspended_on_foreign_future_drops_it() {
    let lp = vloop();
    let (dropped, guard) = drop_flag();
    let t = lp
        .create_task(async move {
            let _g = guard;
            std::future::pending::<()>().await;
            Ok(1)
        })
        .unwrap();
    run_once(&lp);
    run_once(&lp);
    assert!(!t.done());
    assert!(!dropped.get());
    assert!(t.cancel_with(Some("drop it".into())));
    run_once(&lp);
    assert!(dropped.get());
    assert!(t.done());
    assert!(t.cancelled());
    assert_eq!(
        t.result().unwrap_err(),
        Error::Cancelled(Some("drop it".into()))
    );
}

/// Rules: TASK-15
#[test]
fn cancel_task_on_foreign_future_run_until_complete_returns() {
    let lp = vloop();
    let (dropped, guard) = drop_flag();
    let t = lp
        .create_task(async move {
            let _g = guard;
            std::future::pending::<()>().await;
            Ok(())
        })
        .unwrap();
    let t2 = t.clone();
    lp.call_later(3.0, move || {
        t2.cancel();
    })
    .unwrap();
    let err = lp.run_until_complete(t.clone()).unwrap_err();
    assert_eq!(err, Error::Cancelled(None));
    assert!(dropped.get());
    assert!(t.cancelled());
    assert_eq!(lp.time(), 3.0);
}

/// Rules: TASK-15
#[test]
fn cancel_task_whose_future_completes_without_observing_ends_cancelled() {
    // When polled to deliver the cancellation the future completes without
    // awaiting a loopspec awaitable: the value is dropped, the task ends
    // cancelled.
    let lp = vloop();
    let (dropped, guard) = drop_flag();
    let reached_end = Rc::new(Cell::new(false));
    let r = reached_end.clone();
    let t = lp
        .create_task(async move {
            let _g = guard;
            ReadyOnSecondPoll { polled: false }.await;
            r.set(true);
            Ok(5)
        })
        .unwrap();
    run_once(&lp);
    assert!(t.cancel());
    run_once(&lp);
    // The body ran to its end; its value was dropped with the future.
    assert!(reached_end.get());
    assert!(dropped.get());
    assert!(t.done());
    assert!(t.cancelled());
    assert_eq!(t.result().unwrap_err(), Error::Cancelled(None));
}

/// Rules: TASK-15
#[test]
fn cancel_observed_at_next_loopspec_await_after_foreign_future() {
    // The foreign future finishes when the cancellation is delivered, and the
    // coroutine then awaits a loopspec awaitable: that await observes it.
    let lp = vloop();
    let t = lp
        .create_task(async {
            ReadyOnSecondPoll { polled: false }.await;
            match loopspec::yield_now().await {
                Err(e) if e.is_cancelled() => Ok(format!("observed {e:?}")),
                Err(e) => Err(e),
                Ok(()) => Ok("missed".to_string()),
            }
        })
        .unwrap();
    run_once(&lp);
    t.cancel_with(Some("c".into()));
    assert_eq!(
        lp.run_until_complete(t.clone()).unwrap(),
        r#"observed CancelledError('c')"#
    );
    assert!(!t.cancelled());
}

/// Rules: TASK-15, TASK-4
#[test]
fn cancel_task_on_foreign_future_counts_and_returns_true() {
    let lp = vloop();
    let t = lp
        .create_task(async {
            std::future::pending::<()>().await;
            Ok(())
        })
        .unwrap();
    run_once(&lp);
    assert!(t.cancel());
    assert!(t.cancel());
    assert_eq!(t.cancelling(), 2);
    run_once(&lp);
    assert!(t.cancelled());
    assert!(!t.cancel());
}

/// A value whose `Drop` cancels a task (user code running inside the step
/// that drops it).
#[derive(Clone)]
struct CancelsOnDrop(Rc<RefCell<Option<loopspec::TaskRef>>>);

impl Drop for CancelsOnDrop {
    fn drop(&mut self) {
        if let Some(t) = self.0.borrow_mut().take() {
            t.cancel();
        }
    }
}

/// A task's step lets go of what it awaited before running the coroutine;
/// if that drops the last reference to a result whose `Drop` cancels the
/// task, the cancel is an ordinary one, not a re-entrancy panic escaping the
/// loop.
/// Rules: TASK-4
#[test]
fn task_cancelled_by_the_drop_of_what_it_awaited() {
    let lp = vloop();
    let me: Rc<RefCell<Option<loopspec::TaskRef>>> = Rc::default();
    let m = me.clone();
    let l = lp.clone();
    let task = lp
        .create_task(async move {
            *m.borrow_mut() = loopspec::current_task()?;
            let tmp: loopspec::Future<CancelsOnDrop> = l.create_future();
            let mut polled = tmp.clone();
            // Poll it once, so the task records it as awaited, and move on.
            std::future::poll_fn(|cx| {
                let _ = Pin::new(&mut polled).poll(cx);
                Poll::Ready(())
            })
            .await;
            drop(polled);
            tmp.set_result(CancelsOnDrop(m.clone()))?;
            drop(tmp);
            loopspec::yield_now().await?;
            loopspec::yield_now().await?;
            Ok(())
        })
        .unwrap();
    let r = lp.run_until_complete(task.clone());
    assert!(matches!(r, Err(Error::Cancelled(_))), "{r:?}");
    assert!(task.cancelled());
    drop(me);
}
