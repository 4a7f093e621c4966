//! TASK rules of SPEC.md: scheduling of steps, `create_task`/`ensure_future`,
//! cancellation (counting, delivery, propagation, `uncancel`, the first-reader
//! message quirk), self-awaits, destroyed pending tasks, names, `sleep`,
//! `current_task`/`all_tasks`, panics and futures that cannot observe a
//! cancellation. Where a case quotes CPython, it is what CPython 3.11-3.13
//! gave for the same program.
// A loopspec future passed to create_task as it is would be refused (TASK-2):
// the async blocks that only await one future are the coroutines under test.
#![allow(clippy::redundant_async_block)]

use common::{
    DropCount, Scene, assert_py_error, capture_exceptions, cases, count, counter, drop_counter,
    sleeper, value_error, vloop,
};
use loopspec::{Error, Profile, Task, TaskRef};
use std::cell::RefCell;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

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

/// A task that records `name` when it starts, yields once, records
/// `name end` and returns `value`.
fn two_steps(s: &Scene, name: &'static str, value: i32) -> Task<i32> {
    s.task(move |s| async move {
        s.push(name);
        loopspec::yield_now().await?;
        s.push(format!("{name} end"));
        Ok(value)
    })
}

/// A task that, at its first step, takes the task `slot` holds by then,
/// awaits it and records `name: outcome` (so tasks can await each other, or
/// themselves: the slots are filled after the tasks are made).
fn awaiting_the_task_in<T: Clone + std::fmt::Debug + Send + 'static>(
    s: &Scene,
    slot: &Rc<RefCell<Option<Task<T>>>>,
    name: &'static str,
) -> Task<T> {
    let slot = slot.clone();
    s.task(move |s| async move {
        let other = slot.borrow_mut().take().unwrap();
        let r = other.await;
        s.push(format!("{name}: {r:?}"));
        r
    })
}

/// A task suspended in a 10 s sleep after one iteration.
fn sleeping(s: &Scene) -> Task<()> {
    let t = sleeper(s, 10.0, ());
    s.once();
    t
}

/// Tasks never start synchronously: the first step is queued with
/// `call_soon`, each `await` of something pending gives up the iteration,
/// and a task resumes one iteration after what it awaits completes (CPython:
/// `[]`, `['start1']`, `['start1', 'end1']` and done).
/// Rules: TASK-1, TASK-12
#[test]
fn tasks_never_start_synchronously() {
    cases(&[
        ("create_task runs nothing until the next iteration", |s| {
            let t = two_steps(s, "start1", 1);
            assert!(s.log.get().is_empty() && !t.done());
            assert_eq!(s.once(), ["start1"]);
            assert!(!t.done());
            assert_eq!(s.once(), ["start1 end"]);
            assert_eq!(t.result(), Ok(1));
        }),
        ("the first step is queued with call_soon", |s| {
            s.soon_log("before");
            s.task(|s| async move {
                s.push("step");
                Ok(())
            });
            s.soon_log("after");
            assert_eq!(s.once(), ["before", "step", "after"]);
        }),
        ("nor does ensure_future of a coroutine", |s| {
            let f = s.ensure_future(async { Ok(1) }).unwrap();
            assert!(!f.done());
            s.once();
            assert_eq!(f.result(), Ok(1));
        }),
        ("yield_now gives up exactly one iteration", |s| {
            s.task(|s| async move {
                for i in 0..3 {
                    s.push(format!("t{i}"));
                    loopspec::yield_now().await?;
                }
                Ok(())
            });
            for i in 0..3 {
                assert_eq!(s.once(), [format!("t{i}")]);
            }
        }),
        (
            "awaiting a future: resumed the iteration after completion",
            |s| {
                let fut = s.create_future::<i32>();
                let f = fut.clone();
                let t = s.task(|s| async move {
                    s.push("await");
                    let v = f.await?;
                    s.push(format!("resumed {v}"));
                    Ok(v)
                });
                assert_eq!(s.once(), ["await"]);
                assert!(s.once().is_empty(), "nothing completes it yet");
                s.soon(move |s| {
                    fut.set_result(4).unwrap();
                    s.push("completed");
                });
                assert_eq!(s.once(), ["completed"]);
                assert!(!t.done());
                assert_eq!(s.once(), ["resumed 4"]);
                assert_eq!(t.result(), Ok(4));
            },
        ),
        ("awaiting a task: woken one iteration after it ends", |s| {
            let inner = two_steps(s, "inner", 5);
            let outer = s.task(|s| async move {
                s.push("outer awaits");
                let v = inner.await?;
                s.push(format!("outer got {v}"));
                Ok(v)
            });
            assert_eq!(s.once(), ["inner", "outer awaits"]);
            assert_eq!(s.once(), ["inner end"]);
            assert!(!outer.done());
            assert_eq!(s.once(), ["outer got 5"]);
            assert_eq!(outer.result(), Ok(5));
        }),
        // inner finished earlier in the same iteration.
        ("awaiting a done task does not suspend", |s| {
            let inner = s.task(|s| async move {
                s.push("inner");
                Ok(5)
            });
            let outer = s.task(|s| async move {
                s.push("outer awaits");
                let v = inner.await?;
                s.push(format!("outer got {v}"));
                Ok(v)
            });
            assert_eq!(s.once(), ["inner", "outer awaits", "outer got 5"]);
            assert!(outer.done());
        }),
    ]);
}

/// `create_task` takes coroutines only (`TypeError: a coroutine was
/// expected, got <...>`), using no task number when it refuses;
/// `ensure_future` returns a future or task of its loop unchanged, refuses
/// one of another loop and wraps a coroutine in a new task.
/// Rules: TASK-2, LIFE-2, ERR-1
#[test]
fn what_create_task_and_ensure_future_accept() {
    let s = Scene::new();
    let fut = s.create_future::<i32>();
    let err = s.create_task(fut.clone()).unwrap_err();
    assert!(matches!(err, Error::CoroutineExpected { .. }));
    let msg = "a coroutine was expected, got <Future pending>";
    assert_py_error(&err, "TypeError", msg);
    let t = s.task(|_| async { Ok(1) });
    assert_eq!(t.get_name(), "Task-1", "no task number was used");
    let err = s.create_task(t.clone()).unwrap_err();
    let msg = "a coroutine was expected, got <Task pending name='Task-1'>";
    assert_py_error(&err, "TypeError", msg);
    let same = s.ensure_future(t.clone()).unwrap();
    assert_eq!(&same, t.as_future());
    let same = s.ensure_future(fut.clone()).unwrap();
    assert_eq!(same, fut);
    // Not wrapped: completing the original completes what was returned.
    fut.set_result(2).unwrap();
    assert_eq!(same.result(), Ok(2));
    let err = s.ensure_future(vloop().create_future::<i32>()).unwrap_err();
    assert_eq!(err, Error::DifferentLoop);
    let f = s.ensure_future(async { Ok("v") }).unwrap();
    assert_eq!(format!("{f:?}"), "<Task pending name='Task-2'>");
    assert_eq!(f.get_loop(), s.lp);
    assert_eq!(s.run_until_complete(f), Ok("v"));
}

/// Tasks refuse `set_result` and `set_exception`, pending or done, and run
/// on unchanged.
/// Rules: TASK-3, ERR-1
#[test]
fn tasks_refuse_set_result_and_set_exception() {
    let s = Scene::new();
    let t = s.task(|_| async { Ok(1) });
    for _ in 0..2 {
        let err = t.set_result(2).unwrap_err();
        assert_eq!(err, Error::TaskSetResult);
        let msg = "Task does not support set_result operation";
        assert_py_error(&err, "RuntimeError", msg);
        let err = t.set_exception(value_error("x")).unwrap_err();
        assert_eq!(err, Error::TaskSetException);
        let msg = "Task does not support set_exception operation";
        assert_py_error(&err, "RuntimeError", msg);
        assert_eq!(s.run_until_complete(t.clone()), Ok(1));
    }
}

/// `Task.cancel(msg)` returns true on each call to an unfinished task and
/// counts (`cancelling()`); it cancels what the task awaits, at once, with
/// the message, or is delivered at the task's next step; the task may catch
/// it and go on; a done task is not cancelled.
/// Rules: TASK-4, TASK-11
#[test]
fn task_cancel_counts_and_is_delivered() {
    cases(&[
        ("true each time, counted, until done", |s| {
            let t = sleeping(s);
            assert_eq!(t.cancelling(), 0);
            assert!(t.cancel());
            assert!(t.cancel_with(Some("again".into())));
            assert_eq!(t.cancelling(), 2);
            assert!(s.run_until_complete(t.clone()).unwrap_err().is_cancelled());
            assert!(t.cancelled() && !t.cancel());
            assert_eq!(t.cancelling(), 2);
            let done = s.task(|_| async { Ok(1) });
            assert_eq!(s.run_until_complete(done.clone()), Ok(1));
            assert!(!done.cancel() && !done.cancelled());
            assert_eq!((done.cancelling(), done.result()), (0, Ok(1)));
        }),
        (
            "the awaited future is cancelled at once, with the message",
            |s| {
                let fut = s.create_future::<i32>();
                let f = fut.clone();
                let t = s.task(|_| async move { f.await });
                s.once();
                assert!(t.cancel_with(Some("m1".into())));
                assert!(fut.cancelled());
                assert_eq!(fut.result(), Err(Error::Cancelled(Some("m1".into()))));
                assert!(!t.done());
                s.once();
                assert!(t.cancelled());
            },
        ),
        // yield_now waits on no loopspec future.
        ("not waiting: delivered at the next step", |s| {
            let t = s.task(|s| async move {
                s.push("start");
                let r = loopspec::yield_now().await;
                s.push(format!("caught {r:?}"));
                Ok(())
            });
            assert_eq!(s.once(), ["start"]);
            assert!(t.cancel_with(Some("now".into())));
            assert_eq!(s.once(), [r#"caught Err(CancelledError('now'))"#]);
            assert!(t.done() && !t.cancelled());
        }),
        ("before the first step: the body never runs", |s| {
            let (ran, dropped) = (counter(), counter());
            let (r, g) = (ran.clone(), DropCount(dropped.clone()));
            let t = s.task_with(g, |_| async move {
                r.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok(1)
            });
            assert!(t.cancel());
            assert_eq!(t.cancelling(), 1);
            s.once();
            assert_eq!((count(&ran), count(&dropped)), (0, 1));
            assert!(t.cancelled());
            assert_eq!(t.result(), Err(Error::Cancelled(None)));
        }),
        // CPython: result 'swallowed', cancelled() False, cancelling() 1; the
        // 10 s sleep did not run out.
        ("a task that catches it finishes normally", |s| {
            let t = s.task(|_| async {
                match loopspec::sleep(10.0).await {
                    Err(e) if e.is_cancelled() => Ok("swallowed"),
                    other => other.map(|()| "slept"),
                }
            });
            s.once();
            assert!(t.cancel());
            assert_eq!(s.run_until_complete(t.clone()), Ok("swallowed"));
            assert!(!t.cancelled());
            assert_eq!((t.cancelling(), s.time()), (1, 0.0));
        }),
        ("or can keep awaiting", |s| {
            let t = s.task(|_| async {
                let first = loopspec::sleep(10.0).await;
                loopspec::sleep(1.0).await?;
                Ok(first.unwrap_err().is_cancelled())
            });
            s.once();
            t.cancel();
            assert_eq!(s.run_until_complete(t), Ok(true));
            assert_eq!(s.time(), 1.0);
        }),
        (
            "propagated, it ends the task cancelled with the message",
            |s| {
                let t = sleeping(s);
                t.cancel_with(Some("msgX".into()));
                s.once();
                assert!(t.done() && t.cancelled());
                assert_eq!(t.exception(), Err(Error::Cancelled(Some("msgX".into()))));
            },
        ),
    ]);
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
    let s = Scene::new();
    let m_slot = Rc::new(RefCell::new(None));
    let t0 = awaiting_the_task_in(&s, &m_slot, "t0");
    let g = loopspec::gather([t0.clone()], false).unwrap();
    let gm = g.clone();
    let m = s.task(|s| async move {
        let r = gm.await;
        s.push(format!("m: {r:?}"));
        r.map(|v| v.len())
    });
    *m_slot.borrow_mut() = Some(m.clone());
    // One iteration: t0 awaits m, m awaits the gather of t0.
    assert!(s.once().is_empty());
    assert!(!t0.done() && !m.done() && !g.done());
    assert!(m.cancel_with(Some("cycle".into())));
    // Once round the cycle, not again: one cancel each.
    assert_eq!((m.cancelling(), t0.cancelling()), (1, 1));
    assert!(!t0.done() && !m.done() && !g.done());
    // t0's next step delivers the cancellation; it is t0 that ends first.
    assert_eq!(s.once(), [r#"t0: Err(CancelledError('cycle'))"#]);
    assert!(t0.cancelled() && !m.done());
    // Running on: the gather finishes with the CancelledError as its
    // exception, and m ends cancelled with the message, all at time 0.
    let err = s.run_until_complete(m.clone()).unwrap_err();
    assert_eq!(err, Error::Cancelled(Some("cycle".into())));
    assert_eq!(s.take(), [r#"m: Err(CancelledError('cycle'))"#]);
    assert!(m.cancelled() && g.done() && !g.cancelled());
    assert!(g.exception().unwrap().is_some_and(|e| e.is_cancelled()));
    assert_eq!((m.cancelling(), t0.cancelling(), s.time()), (1, 1, 0.0));
    // Done tasks: cancelling again does nothing.
    assert!(!m.cancel() && !t0.cancel());
}

/// The shortest await cycle: task `a` awaits task `b`, and `b` awaits `a`.
/// `a.cancel()` cancels `b`, whose cancel finds `a`'s `cancel()` already
/// running and stops; `b` is stepped with the `CancelledError` and ends
/// cancelled, and `a`, woken by `b`, ends cancelled with the message.
/// Rules: TASK-4
#[test]
fn task_cancel_of_an_await_cycle_of_two_tasks_cancels_each_once() {
    let s = Scene::new();
    let a_slot: Rc<RefCell<Option<Task<i32>>>> = Rc::default();
    let b_slot = Rc::default();
    let a = awaiting_the_task_in(&s, &b_slot, "a");
    let b = awaiting_the_task_in(&s, &a_slot, "b");
    *a_slot.borrow_mut() = Some(a.clone());
    *b_slot.borrow_mut() = Some(b.clone());
    s.once();
    assert!(a.cancel_with(Some("ab".into())));
    assert_eq!((a.cancelling(), b.cancelling()), (1, 1));
    assert!(!a.done() && !b.done());
    assert_eq!(s.once(), [r#"b: Err(CancelledError('ab'))"#]);
    assert!(b.cancelled() && !a.done());
    let err = s.run_until_complete(a.clone()).unwrap_err();
    assert_eq!(err, Error::Cancelled(Some("ab".into())));
    assert_eq!(s.take(), [r#"a: Err(CancelledError('ab'))"#]);
    assert!(a.cancelled() && b.cancelled());
    assert_eq!((a.cancelling(), b.cancelling(), s.time()), (1, 1, 0.0));
}

/// A value whose `Drop` cancels a task (user code running inside the step
/// that drops it).
#[derive(Clone)]
struct CancelsOnDrop(Arc<Mutex<Option<TaskRef>>>);

impl Drop for CancelsOnDrop {
    fn drop(&mut self) {
        let taken = self.0.lock().unwrap().take();
        if let Some(t) = taken {
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
    let s = Scene::new();
    let me: Arc<Mutex<Option<TaskRef>>> = Arc::default();
    let m = me.clone();
    let task = s.task(|s| async move {
        *m.lock().unwrap() = loopspec::current_task()?;
        let tmp: loopspec::Future<CancelsOnDrop> = s.create_future();
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
    });
    let r = s.run_until_complete(task.clone());
    assert!(matches!(r, Err(Error::Cancelled(_))), "{r:?}");
    assert!(task.cancelled());
    drop(me);
}

/// A task cancelled in the step that returns ends cancelled — its value
/// dropped, the message kept for every reader (CPython: `('selfmsg',)`
/// twice); one that cancels itself and then awaits gets the cancellation
/// there.
/// Rules: TASK-5, TASK-11
#[test]
fn cancelled_in_the_step_that_returns() {
    let s = Scene::new();
    let (dropped, g) = drop_counter();
    let t = s.task_with(g, |_| async move {
        assert!(loopspec::current_task()?.unwrap().cancel());
        Ok(42)
    });
    let msg = s.task(|_| async {
        let me = loopspec::current_task()?.unwrap();
        me.cancel_with(Some("selfmsg".into()));
        Ok(5)
    });
    let seen = s.task(|_| async {
        loopspec::current_task()?.unwrap().cancel();
        match loopspec::yield_now().await {
            Err(e) if e.is_cancelled() => Ok("seen"),
            _ => Ok("missed"),
        }
    });
    s.once();
    assert!(t.cancelled() && count(&dropped) == 1);
    assert_eq!(
        (t.result(), t.cancelling()),
        (Err(Error::Cancelled(None)), 1)
    );
    for _ in 0..3 {
        assert_eq!(msg.result(), Err(Error::Cancelled(Some("selfmsg".into()))));
    }
    assert_eq!(
        msg.exception(),
        Err(Error::Cancelled(Some("selfmsg".into())))
    );
    assert_eq!(s.run_until_complete(seen.clone()), Ok("seen"));
    assert!(!seen.cancelled());
}

/// A task awaiting a cancelled task gets its message, as its first reader
/// (CPython: the waiter gets `('msgY',)`, a later `result()` `()`);
/// cancelling the awaiting task cancels the awaited one (pending until its
/// next step, as in CPython).
/// Rules: TASK-6, TASK-11
#[test]
fn cancellation_and_awaiting_tasks() {
    let s = Scene::new();
    let inner = sleeping(&s);
    inner.cancel_with(Some("msgY".into()));
    let i2 = inner.clone();
    let waiter = s.task(|_| async move { Ok(i2.await.unwrap_err()) });
    let got = s.run_until_complete(waiter);
    assert_eq!(got, Ok(Error::Cancelled(Some("msgY".into()))));
    assert_eq!(inner.result(), Err(Error::Cancelled(None)));
    let inner = sleeper(&s, 10.0, 1);
    let i2 = inner.clone();
    let outer = s.task(|s| async move {
        let r = i2.await;
        s.push(format!("outer got {r:?}"));
        r
    });
    s.once();
    s.once();
    assert!(outer.cancel_with(Some("m".into())));
    assert!(!inner.done());
    assert_eq!((inner.cancelling(), outer.cancelling()), (1, 1));
    let err = s.run_until_complete(outer.clone()).unwrap_err();
    assert_eq!(err, Error::Cancelled(Some("m".into())));
    assert_eq!(s.take(), [r#"outer got Err(CancelledError('m'))"#]);
    assert!(inner.cancelled() && outer.cancelled());
}

/// A task awaiting itself gets, at its next step, `RuntimeError: Task
/// cannot await on itself: <...>`, which it may catch or which ends it.
/// Rules: TASK-7, ERR-1
#[test]
fn a_task_cannot_await_itself() {
    let s = Scene::new();
    let slot: Rc<RefCell<Option<Task<i32>>>> = Rc::default();
    let t = s.task(|s| {
        let slot = slot.clone();
        async move {
            let me = slot.borrow_mut().take().unwrap();
            s.push("awaiting self");
            let e = me.await.unwrap_err();
            s.push(format!("{}: {e}", e.python_type()));
            Ok(1)
        }
    });
    *slot.borrow_mut() = Some(t.clone());
    assert_eq!(s.once(), ["awaiting self"]);
    assert!(!t.done());
    let msg = "Task cannot await on itself: <Task pending name='Task-1'>";
    assert_eq!(s.once(), [format!("RuntimeError: {msg}")]);
    assert_eq!(t.result(), Ok(1));
    let uncaught = awaiting_the_task_in(&s, &slot, "t");
    *slot.borrow_mut() = Some(uncaught.clone());
    let err = s.run_until_complete(uncaught.clone()).unwrap_err();
    assert!(matches!(err, Error::TaskAwaitsItself { .. }));
    let msg = "Task cannot await on itself: <Task pending name='Task-2'>";
    assert_py_error(&err, "RuntimeError", msg);
    assert!(!uncaught.cancelled());
}

/// A task that cancels itself and then awaits itself in one step gets both,
/// one step apart: the cancellation first, the `RuntimeError` at the step
/// after. (CPython 3.10–3.15 throw the cancellation instead of the
/// `RuntimeError`, which is lost; SPEC.md TASK-7.)
/// Rules: TASK-7, TASK-4
#[test]
fn a_task_cancelled_and_awaiting_itself_gets_both_in_order() {
    let s = Scene::new();
    let slot: Rc<RefCell<Option<Task<i32>>>> = Rc::default();
    let t = s.task(|s| {
        let slot = slot.clone();
        async move {
            let me = slot.borrow_mut().take().unwrap();
            me.cancel();
            let first = me.await.unwrap_err();
            s.push(format!("1: {}", first.python_type()));
            let second = loopspec::yield_now().await.unwrap_err();
            s.push(format!("2: {}", second.python_type()));
            Ok(1)
        }
    });
    *slot.borrow_mut() = Some(t.clone());
    assert!(s.once().is_empty());
    assert_eq!(s.once(), ["1: CancelledError"]);
    assert_eq!(s.once(), ["2: RuntimeError"]);
    assert_eq!(t.result(), Ok(1));
}

/// Closing a loop with pending tasks — suspended or never started — drops
/// their futures and reports each as `Task was destroyed but it is
/// pending!`, with its repr; done tasks are not reported.
/// Rules: TASK-8, LIFE-7
#[test]
fn destroying_a_pending_task_is_reported() {
    let s = Scene::new();
    let seen = capture_exceptions(&s);
    let (dropped, g) = drop_counter();
    let suspended = s.task_with(g, |_| async move { loopspec::sleep(10.0).await });
    let done = s.task(|_| async { Ok(()) });
    s.once();
    let g = DropCount(dropped.clone());
    let unstarted = s.task_with(g, |_| async move { Ok(()) });
    assert!(seen.messages().is_empty() && done.done());
    s.close().unwrap();
    assert_eq!(count(&dropped), 2);
    assert!(!suspended.done() && !unstarted.done());
    let pending = "Task was destroyed but it is pending!";
    assert_eq!(seen.messages(), [pending, pending]);
    let reprs = seen.each(|c| c.task.clone());
    let repr = |n: u32| Some(format!("<Task pending name='Task-{n}'>"));
    assert_eq!(reprs, [repr(1), repr(3)]);
}

/// Task names count per loop (`Task-N`, also for the coroutine of
/// `run_until_complete`); `set_name` renames — from outside or through
/// `current_task()` — without touching the counter; the repr follows
/// asyncio's shape in every state, without CPython's `coro=<...>` part
/// (SPEC.md, Rust mapping: Reprs).
/// Rules: TASK-9, TASK-13
#[test]
fn task_names_and_reprs() {
    let (a, b) = (Scene::new(), Scene::new());
    let tasks = [&a, &a, &b, &a].map(|s| s.task(|_| async { Ok(()) }));
    let names = tasks.each_ref().map(|t| t.get_name());
    assert_eq!(names, ["Task-1", "Task-2", "Task-1", "Task-3"]);
    assert_eq!(format!("{:?}", tasks[1]), "<Task pending name='Task-2'>");
    let t = a.task(|_| async { Ok(loopspec::current_task()?.unwrap().get_name()) });
    t.set_name("worker");
    assert_eq!(format!("{t:?}"), "<Task pending name='worker'>");
    assert_eq!(a.run_until_complete(t.clone()), Ok("worker".into()));
    let coro = async { Ok(loopspec::current_task()?.unwrap().get_name()) };
    assert_eq!(a.run_until_complete(coro), Ok("Task-5".into()));
    let renamed = a.task(|_| async {
        loopspec::current_task()?.unwrap().set_name("renamed");
        Ok(())
    });
    a.run_until_complete(renamed.clone()).unwrap();
    assert_eq!(renamed.get_name(), "renamed");
    let s = Scene::new();
    let ok = s.task(|_| async { Ok(1) });
    let failed = s.task(|_| async { Err::<i32, _>(value_error("y")) });
    let cancelled = s.task(|_| async { Ok(1) });
    cancelled.cancel();
    s.once();
    assert_eq!(format!("{ok:?}"), "<Task finished name='Task-1'>");
    assert_eq!(format!("{cancelled:?}"), "<Task cancelled name='Task-3'>");
    let repr = "<Task finished name='Task-2' exception=ValueError('y')>";
    assert_eq!(format!("{failed:?}"), repr);
    let _ = failed.exception();
    b.once();
}

/// `uncancel()` to zero before the first step (or between steps, the task
/// yielding with `sleep(0)`) withdraws the pending cancel in 3.13+ (CPython:
/// carries on) but not in 3.11/3.12 (ends cancelled; the default profile is
/// 3.11); one that does not reach zero keeps it in every profile; at zero
/// it stays zero.
/// Rules: TASK-10
#[test]
fn uncancel_reaching_zero() {
    for profile in Profile::ALL {
        let withdraws = profile >= Profile::Py313;
        let s = Scene::with_profile(profile);
        let unstarted = s.task(|s| async move {
            s.push("ran");
            Ok("ok")
        });
        assert!(unstarted.cancel());
        assert_eq!((unstarted.uncancel(), unstarted.cancelling()), (0, 0));
        let started = s.task(|_| async {
            for _ in 0..3 {
                loopspec::yield_now().await?;
            }
            Ok("y")
        });
        let twice = s.task(|_| async { Ok(1) });
        assert!(twice.cancel() && twice.cancel());
        assert_eq!(twice.uncancel(), 1);
        let ran = s.once() == ["ran"];
        started.cancel();
        assert_eq!(started.uncancel(), 0);
        for _ in 0..4 {
            s.once();
        }
        assert_eq!(
            (ran, unstarted.cancelled()),
            (withdraws, !withdraws),
            "{profile:?}"
        );
        assert_eq!(started.cancelled(), !withdraws, "{profile:?}");
        if withdraws {
            assert_eq!((unstarted.result(), started.result()), (Ok("ok"), Ok("y")));
        }
        assert!(twice.cancelled(), "{profile:?}");
    }
    let s = Scene::new();
    assert_eq!(s.profile(), Profile::Py311);
    let t = s.task(|_| async { Ok(1) });
    assert_eq!((t.uncancel(), t.cancelling()), (0, 0));
    assert_eq!(s.run_until_complete(t), Ok(1));
}

/// The first reader of a cancelled task's outcome — `result()`,
/// `exception()`, `run_until_complete` — gets the cancel message, later ones
/// an empty `CancelledError` (CPython: `('msgX',)` then `()`, `()`), whether
/// it was cancelled while waiting, before its first step (`('early',)`), or
/// ended by raising a `CancelledError` itself.
/// Rules: TASK-11, TASK-4
#[test]
fn the_first_reader_gets_the_message() {
    let cancelled = |m: Option<&str>| Error::Cancelled(m.map(String::from));
    let s = Scene::new();
    let (a, b, c) = (sleeping(&s), sleeping(&s), sleeping(&s));
    a.cancel_with(Some("msgX".into()));
    b.cancel_with(Some("m".into()));
    c.cancel_with(Some("run".into()));
    let early = s.task(|_| async { Ok(()) });
    early.cancel_with(Some("early".into()));
    let own = s.task(|_| async { Err::<(), _>(Error::Cancelled(Some("own".into()))) });
    let got = s.run_until_complete(c.clone()).unwrap_err();
    assert_eq!(got, cancelled(Some("run")));
    assert!(a.cancelled() && early.cancelled() && own.cancelled());
    assert_eq!(own.cancelling(), 0);
    let first = a.result().unwrap_err();
    assert_eq!(
        (first.to_string().as_str(), first),
        ("msgX", cancelled(Some("msgX")))
    );
    assert_eq!(a.result().unwrap_err(), cancelled(None));
    assert_eq!(a.exception().unwrap_err(), cancelled(None));
    assert_eq!(b.exception().unwrap_err(), cancelled(Some("m")));
    assert_eq!(b.result().unwrap_err(), cancelled(None));
    assert_eq!(c.result().unwrap_err(), cancelled(None));
    for (t, m) in [(&early, "early"), (&own, "own")] {
        assert_eq!(t.result().unwrap_err(), cancelled(Some(m)));
        assert_eq!(t.result().unwrap_err(), cancelled(None));
    }
}

/// `sleep(delay)` completes after `delay` on the loop's clock, not before;
/// zero and negative delays yield one iteration; outside a running loop it
/// fails; cancelled, it raises `CancelledError(msg)` and cancels its timer,
/// which then holds the loop no more (THREAD-3).
/// Rules: TASK-12, TASK-1, TASK-4, THREAD-3, ERR-1
#[test]
fn sleep_on_the_loop_clock() {
    cases(&[
        ("after its delay, on the loop's clock", |s| {
            let t = s.task(|s| async move {
                let start = s.time();
                loopspec::sleep(2.5).await?;
                let mid = s.time();
                loopspec::sleep(1.0).await?;
                Ok((start, mid, s.time()))
            });
            assert_eq!(s.run_until_complete(t), Ok((0.0, 2.5, 3.5)));
        }),
        ("not before", |s| {
            let t = sleeper(s, 5.0, ());
            s.later(4.5, |s| s.stop());
            s.forever();
            assert!(!t.done());
            assert_eq!(s.time(), 4.5);
            s.run_until_complete(t).unwrap();
            assert_eq!(s.time(), 5.0);
        }),
        ("zero and negative delays yield one iteration", |s| {
            for delay in [0.0, -1.0] {
                let t = s.task(move |s| async move {
                    s.push("a");
                    loopspec::sleep(delay).await?;
                    s.push("b");
                    loopspec::sleep(delay).await?;
                    s.push("c");
                    Ok(())
                });
                for step in ["a", "b", "c"] {
                    assert_eq!(s.once(), [step], "delay {delay}");
                }
                assert!(t.done() && s.time() == 0.0);
            }
        }),
        ("outside a running loop it fails", |_| {
            let mut fut = Box::pin(loopspec::sleep(1.0));
            let out = fut.as_mut().poll(&mut Context::from_waker(Waker::noop()));
            let Poll::Ready(Err(e)) = out else {
                panic!("expected NoRunningLoop, got {out:?}")
            };
            assert_eq!(e, Error::NoRunningLoop);
            assert_py_error(&e, "RuntimeError", "no running event loop");
        }),
        ("cancelled, it raises the message", |s| {
            let t = s.task(|_| async { Ok(loopspec::sleep(100.0).await.unwrap_err()) });
            s.once();
            t.cancel_with(Some("wake".into()));
            let got = s.run_until_complete(t);
            assert_eq!(
                (got, s.time()),
                (Ok(Error::Cancelled(Some("wake".into()))), 0.0)
            );
        }),
        // A live 100 s timer would keep the loop bound here.
        ("cancelled, its timer is cancelled too", |s| {
            let t = sleeper(s, 100.0, ());
            let t2 = t.clone();
            s.later(1.0, move |_| {
                t2.cancel();
            });
            assert!(s.run_until_complete(t.clone()).unwrap_err().is_cancelled());
            assert!(t.cancelled());
            common::assert_holds_no_work(s);
            // And the clock never jumped to the cancelled deadline.
            assert_eq!(s.time(), 1.0);
        }),
    ]);
}

/// `current_task()` is the task whose step runs — the same in each of its
/// steps — `None` in a plain callback, and fails without a running loop;
/// `all_tasks()` lists the unfinished tasks of the running loop, in a task
/// or a callback.
/// Rules: TASK-13, ERR-1
#[test]
fn current_task_and_all_tasks() {
    let err = loopspec::current_task().unwrap_err();
    assert_eq!(err, Error::NoRunningLoop);
    assert_py_error(&err, "RuntimeError", "no running event loop");
    assert_eq!(loopspec::all_tasks().unwrap_err(), Error::NoRunningLoop);
    let s = Scene::new();
    let other = Scene::new();
    sleeper(&other, 1.0, ());
    let quick = s.task(|_| async { Ok(()) });
    let slow = sleeper(&s, 5.0, ());
    // A loop that exists but does not run does not count.
    assert_eq!(loopspec::current_task().unwrap_err(), Error::NoRunningLoop);
    let slot: Rc<RefCell<Option<Task<()>>>> = Rc::default();
    let (q, sl, sl2) = (quick.clone(), slow.clone(), slot.clone());
    let main = s.task(|s| async move {
        let me = loopspec::current_task()?.unwrap();
        let same = me.is(&sl2.borrow_mut().take().unwrap());
        loopspec::yield_now().await?;
        let all = loopspec::all_tasks()?;
        let has = |t: &Task<()>| all.iter().any(|r| r.is(t));
        let again = loopspec::current_task()?.unwrap() == me && me.get_name() == "Task-3";
        s.push(format!(
            "{} {} {} {} {same} {again}",
            all.len(),
            has(&q),
            has(&sl),
            all.contains(&me)
        ));
        Ok(())
    });
    *slot.borrow_mut() = Some(main.clone());
    s.soon(|s| {
        let current = loopspec::current_task().map(|t| t.is_none());
        let all = loopspec::all_tasks().unwrap().len();
        s.push(format!(
            "callback: no current task: {current:?}, {all} tasks"
        ));
    });
    s.run_until_complete(main).unwrap();
    let callback = "callback: no current task: Ok(true), 2 tasks";
    assert_eq!(s.take(), [callback, "2 false true true true true"]);
    assert!(quick.done());
    common::finish(&s);
    common::finish(&other);
}

/// A panic in a task is an exception, `Panic('boom')`: it ends that task
/// (its future dropped), reaches whoever awaits it, and leaves the loop and
/// its other work running.
/// Rules: TASK-14, LIFE-4
#[test]
fn a_panic_is_an_exception() {
    let s = Scene::new();
    let (dropped, g) = drop_counter();
    let bad = s.task_with(g, |s| async move {
        s.push("bad");
        loopspec::yield_now().await?;
        if true {
            panic!("later {}", 7);
        }
        Ok(())
    });
    let good = s.task(|s| async move {
        for i in 0..3 {
            s.push(format!("good{i}"));
            loopspec::yield_now().await?;
        }
        Ok("fine")
    });
    assert_eq!(s.run_until_complete(good), Ok("fine"));
    assert_eq!(s.take(), ["bad", "good0", "good1", "good2"]);
    assert!(count(&dropped) == 1 && bad.done() && !bad.cancelled());
    let err = bad.exception().unwrap().unwrap();
    assert_eq!(err, Error::Panic("later 7".into()));
    assert_py_error(&err, "Panic", "later 7");
    let err = s.run_until_complete(async {
        let inner = loopspec::create_task(async {
            loopspec::yield_now().await?;
            if true {
                panic!("inner panic");
            }
            Ok(0)
        })?;
        inner.await
    });
    assert_eq!(err, Err(Error::Panic("inner panic".into())));
    assert_eq!(s.run_until_complete(async { Ok(3) }), Ok(3));
    assert!(!s.is_running());
}

/// Cancelling a task suspended on a future that cannot observe it (not a
/// loopspec awaitable): `cancel()` returns true and counts; at the next
/// step the future is dropped and the task ends cancelled — also when the
/// future, polled then, completes without a loopspec await — unless the
/// coroutine reaches a loopspec await, which observes the cancellation.
/// Rules: TASK-15, TASK-4
#[test]
fn cancelling_a_task_that_cannot_observe_it() {
    cases(&[
        ("suspended on a foreign future: dropped", |s| {
            let (dropped, g) = drop_counter();
            let t = s.task_with(g, |_| async move {
                std::future::pending::<()>().await;
                Ok(1)
            });
            s.once();
            s.once();
            assert!(!t.done() && count(&dropped) == 0);
            assert!(t.cancel_with(Some("drop it".into())));
            s.once();
            assert_eq!(count(&dropped), 1);
            assert!(t.cancelled());
            assert_eq!(t.result(), Err(Error::Cancelled(Some("drop it".into()))));
        }),
        ("run_until_complete of it returns", |s| {
            let t = s.task(|_| async {
                std::future::pending::<()>().await;
                Ok(())
            });
            let t2 = t.clone();
            s.later(3.0, move |_| {
                assert!(t2.cancel() && t2.cancel());
                assert_eq!(t2.cancelling(), 2);
            });
            let got = s.run_until_complete(t.clone());
            assert_eq!((got, s.time()), (Err(Error::Cancelled(None)), 3.0));
            assert!(t.cancelled() && !t.cancel());
        }),
        // The value is dropped with the future.
        (
            "the future completes without observing: ends cancelled",
            |s| {
                let (dropped, g) = drop_counter();
                let t = s.task_with(g, |s| async move {
                    ReadyOnSecondPoll { polled: false }.await;
                    s.push("reached the end");
                    Ok(5)
                });
                s.once();
                assert!(t.cancel());
                assert_eq!(s.once(), ["reached the end"]);
                assert_eq!(count(&dropped), 1);
                assert_eq!(t.result(), Err(Error::Cancelled(None)));
            },
        ),
        ("the next loopspec await observes it", |s| {
            let t = s.task(|_| async {
                ReadyOnSecondPoll { polled: false }.await;
                Ok(format!("observed {:?}", loopspec::yield_now().await))
            });
            s.once();
            t.cancel_with(Some("c".into()));
            let got = s.run_until_complete(t.clone());
            assert_eq!(got, Ok(r#"observed Err(CancelledError('c'))"#.into()));
            assert!(!t.cancelled());
        }),
    ]);
}

/// A pending task with cancellation requests counted shows `cancelling` in
/// its repr — after `cancel()` before its next step, while it waits on the
/// future the cancel cancelled, and after it caught the `CancelledError`
/// until `uncancel()` brings the count to zero; done, it shows `cancelled`
/// or `finished`. CPython 3.11.7, 3.12.1, 3.13.18, 3.14.10, 3.15.2 print
/// `<Task cancelling name='Task-4' coro=...>` in each of these states (3.10
/// shows it only while `_must_cancel` is set: before the first step, not
/// while waiting on a cancelled future).
/// Rules: TASK-16, TASK-4
#[test]
fn a_task_with_cancellation_requests_shows_cancelling_in_its_repr() {
    let s = Scene::new();
    let t = sleeper(&s, 10.0, 1);
    assert_eq!(format!("{t:?}"), "<Task pending name='Task-1'>");
    t.cancel();
    assert_eq!(format!("{t:?}"), "<Task cancelling name='Task-1'>");
    s.once();
    assert_eq!(format!("{t:?}"), "<Task cancelled name='Task-1'>");

    let waiting = sleeper(&s, 10.0, 1);
    s.once();
    waiting.cancel();
    assert_eq!(format!("{waiting:?}"), "<Task cancelling name='Task-2'>");
    s.once();
    assert_eq!(format!("{waiting:?}"), "<Task cancelled name='Task-2'>");

    let catcher = s.task(|_| async {
        let _ = loopspec::sleep(10.0).await;
        loopspec::sleep(10.0).await?;
        Ok(())
    });
    s.once();
    catcher.cancel();
    s.once();
    s.once();
    assert!(!catcher.done());
    assert_eq!(format!("{catcher:?}"), "<Task cancelling name='Task-3'>");
    assert_eq!(catcher.uncancel(), 0);
    assert_eq!(format!("{catcher:?}"), "<Task pending name='Task-3'>");
    catcher.cancel();
    s.once();
    assert_eq!(format!("{catcher:?}"), "<Task cancelled name='Task-3'>");

    let swallows = s.task(|_| async {
        let _ = loopspec::sleep(10.0).await;
        Ok(5)
    });
    s.once();
    swallows.cancel();
    s.once();
    assert_eq!((swallows.result(), swallows.cancelling()), (Ok(5), 1));
    assert_eq!(format!("{swallows:?}"), "<Task finished name='Task-4'>");
}
