//! GATHER rules of SPEC.md: `gather(children, return_exceptions)` — result
//! order, no children, one loop and duplicates, the first failure, failures
//! as entries, cancelling the gather or the task awaiting it, and when a
//! gather of done children completes in the 3.11 and 3.12 profiles. The
//! expected values were checked on CPython 3.11.7 and 3.12.1 (3.13.0 where a
//! case says so) on a virtual-clock loop; where a case names a CPython test,
//! it is the one of that name in CPython's
//! [`test_tasks.py`](https://github.com/python/cpython/blob/v3.12.1/Lib/test/test_asyncio/test_tasks.py).
// A loopspec future passed to create_task as it is would be refused (TASK-2):
// the async blocks that only await one future are the coroutines under test.
#![allow(clippy::redundant_async_block)]

use common::{
    Scene, assert_py_error, capture_exceptions, cases, failer, in_thread, key_error, sleeper,
    value_error, vloop,
};
use loopspec::{Error, Future, Gathered, Profile, Task, gather};

/// What a child sleeping 10 s does when that sleep is cancelled.
#[derive(Clone, Copy)]
enum OnCancel {
    /// Returns this value.
    Swallow(i32),
    /// Sleeps that long, then raises the `CancelledError` again.
    Reraise(f64),
    /// Sleeps that long, then raises a `CancelledError` with this message.
    Raise(&'static str, f64),
}

/// A child that sleeps 10 s (then returns 0) and handles its cancellation
/// as `on` says.
fn catcher(s: &Scene, on: OnCancel) -> Task<i32> {
    s.task(move |_| async move {
        let e = match loopspec::sleep(10.0).await {
            Err(e) if e.is_cancelled() => e,
            other => return other.map(|()| 0),
        };
        match on {
            OnCancel::Swallow(v) => Ok(v),
            OnCancel::Reraise(d) => loopspec::sleep(d).await.and(Err(e)),
            OnCancel::Raise(m, d) => loopspec::sleep(d).await.and(Err(cancelled(m))),
        }
    })
}

fn cancelled(msg: &str) -> Error {
    Error::Cancelled(Some(msg.into()))
}

/// The results of a gather that holds no failure.
fn values<T>(out: Gathered<T>) -> Vec<T> {
    out.into_iter().map(Result::unwrap).collect()
}

/// A task that awaits `all` (the async block is the coroutine).
fn awaiting<T: Clone + Send + 'static>(s: &Scene, all: &Future<Gathered<T>>) -> Task<Gathered<T>> {
    let all = all.clone();
    s.task(|_| async move { all.await })
}

/// A gather's results are in argument order, whatever the completion order
/// (CPython: completion b, c, a gives `['a', 'b', 'c']`).
/// Rules: GATHER-1
#[test]
fn gather_results_come_in_argument_order() {
    let s = Scene::new();
    let kids = [(3.0, 'a'), (1.0, 'b'), (2.0, 'c')].map(|(d, v)| sleeper(&s, d, v));
    let out = s.run_until_complete(gather(kids, false).unwrap()).unwrap();
    assert_eq!((values(out), s.time()), (vec!['a', 'b', 'c'], 3.0));
    let futs: Vec<Future<i32>> = (0..4).map(|_| s.create_future()).collect();
    let all = gather(futs.clone(), true).unwrap();
    for (i, f) in futs.iter().enumerate().rev() {
        f.set_result(i as i32).unwrap();
        s.once();
    }
    s.once();
    assert_eq!(values(all.result().unwrap()), [0, 1, 2, 3]);
}

/// A gather of nothing is done at once with an empty list, on the loop
/// `get_event_loop()` finds: the running one, or the thread's current loop;
/// with neither it fails as `get_event_loop()` does (POLICY-4).
/// Rules: GATHER-2
#[test]
fn gather_of_nothing_is_already_done() {
    let nothing = || gather(Vec::<Future<i32>>::new(), false);
    let s = Scene::new();
    let me = s.lp.clone();
    s.run_until_complete(async move {
        let g = nothing()?;
        assert!(g.done() && g.result()?.is_empty());
        assert_eq!(g.get_loop(), me);
        Ok(())
    })
    .unwrap();
    in_thread("gather-current", move || {
        let lp = vloop();
        loopspec::set_event_loop(Some(&lp));
        let g = nothing().unwrap();
        assert!(g.done() && g.result().unwrap().is_empty());
        assert_eq!(g.get_loop(), lp);
        loopspec::set_event_loop(None);
    });
    let err = in_thread("gather-no-loop", move || nothing().unwrap_err());
    let msg = "There is no current event loop in thread 'gather-no-loop'.";
    assert_py_error(&err, "RuntimeError", msg);
}

/// A gather takes children of one loop; a child given several times is one
/// child with several positions: it runs once, its outcome fills each
/// position (CPython: `gather(fut, fut, fut)` gives `['F', 'F', 'F']`, a
/// coroutine's task `['dup', 'dup']` and runs once), and cancelling the
/// gather cancels it once per position (CPython 3.11.7/3.12.1 keep the
/// duplicates in `_children`: `t.cancelling() == 2`).
/// Rules: GATHER-3, GATHER-5, GATHER-6
#[test]
fn gather_takes_one_loop_and_collapses_duplicates() {
    cases(&[
        ("children of two loops are refused", |s| {
            let other = vloop();
            let err = gather([s.create_future::<i32>(), other.create_future()], false);
            let msg = "The future belongs to a different loop than the one specified as the loop argument";
            assert_py_error(&err.unwrap_err(), "ValueError", msg);
        }),
        ("the same future three times", |s| {
            let f = s.create_future::<&str>();
            let all = gather([f.clone(), f.clone(), f.clone()], false).unwrap();
            f.set_result("F").unwrap();
            assert_eq!(values(s.run_until_complete(all).unwrap()), ["F", "F", "F"]);
        }),
        ("a task twice runs once", |s| {
            let t = s.task(|s| async move {
                s.push("ran");
                loopspec::yield_now().await?;
                Ok("dup")
            });
            let all = gather([t.clone(), t], false).unwrap();
            assert_eq!(s.run_until_complete(all), Ok(vec![Ok("dup"), Ok("dup")]));
            assert_eq!(s.take(), ["ran"]);
        }),
        ("a failing child twice is an entry per position", |s| {
            let bad = failer(s, 1.0, value_error("x"));
            let all = gather([bad.clone(), sleeper(s, 2.0, 7), bad], true).unwrap();
            let want = vec![Err(value_error("x")), Ok(7), Err(value_error("x"))];
            assert_eq!(s.run_until_complete(all), Ok(want));
        }),
        ("cancelled once per position", |s| {
            let t = sleeper(s, 10.0, 1);
            s.once();
            let all = gather([t.clone(), t.clone()], false).unwrap();
            assert!(all.cancel());
            assert_eq!(t.cancelling(), 2);
            assert_eq!(s.run_until_complete(all), Err(Error::Cancelled(None)));
            assert!(t.cancelled());
        }),
    ]);
}

/// Without `return_exceptions` the first failure in completion order —
/// children already done count in argument order — finishes the gather with
/// that exception; a cancelled child's is a `CancelledError` exception (the
/// gather itself is not cancelled), a panic's a `Panic`. Nothing is
/// cancelled: the others finish on their own, and an exception nobody read
/// counts as retrieved (CPython: the outer raised `ValueError('E1')` while
/// `KeyError('E2')` and `slow` went on to finish).
/// Rules: GATHER-4
#[test]
fn gather_without_return_exceptions_fails_at_the_first_failure() {
    cases(&[
        ("the first failure; the others go on", |s| {
            let seen = capture_exceptions(s);
            let e1 = failer(s, 1.0, value_error("E1"));
            let e2 = failer(s, 2.0, key_error("E2"));
            let slow = sleeper(s, 3.0, 3);
            let all = gather([e1.clone(), e2.clone(), slow.clone()], false).unwrap();
            let err = s.run_until_complete(all.clone()).unwrap_err();
            assert_eq!((err, s.time()), (value_error("E1"), 1.0));
            assert!(!e2.done() && !slow.done());
            assert_eq!(s.run_until_complete(slow.clone()), Ok(3));
            assert!(!e2.cancelled() && !slow.cancelled() && s.time() == 3.0);
            assert_eq!(all.exception(), Ok(Some(value_error("E1"))));
            drop((e1, e2, slow, all));
            s.close().unwrap();
            let never = |m: &String| m.contains("never retrieved");
            assert!(!seen.messages().iter().any(never), "{:?}", seen.messages());
        }),
        ("by completion, not argument order", |s| {
            let late = failer(s, 2.0, value_error("late"));
            let early = failer(s, 1.0, key_error("early"));
            let err = s.run_until_complete(gather([late, early], false).unwrap());
            assert_eq!(err.unwrap_err(), key_error("early"));
        }),
        // a fails at t=2, b at t=1, gather(a, b) made at t=3 raises a's.
        ("children already failed: by argument order", |_| {
            for profile in [Profile::Py311, Profile::Py312] {
                let s = Scene::with_profile(profile);
                let a = failer(&s, 2.0, value_error("a"));
                let b = failer(&s, 1.0, value_error("b"));
                let err = s.run_until_complete(async move {
                    loopspec::sleep(3.0).await?;
                    gather([a, b], false)?.await
                });
                assert_eq!(err, Err(value_error("a")), "{profile:?}");
            }
        }),
        ("a cancelled child: a CancelledError exception", |s| {
            let (a, b) = (s.create_future::<i32>(), s.create_future::<i32>());
            let all = gather([a.clone(), b.clone()], false).unwrap();
            a.cancel_with(Some("stop a".into()));
            s.once();
            assert!(all.done() && !all.cancelled() && !b.done());
            let exc = all.exception().unwrap().unwrap();
            assert_eq!(exc, cancelled("stop a"));
            assert_py_error(&exc, "CancelledError", "stop a");
        }),
        ("a panicking child", |s| {
            let boom = s.task(|_| async {
                loopspec::sleep(1.0).await?;
                if true {
                    panic!("boom");
                }
                Ok(0)
            });
            let fine = sleeper(s, 2.0, 2);
            let err = s.run_until_complete(gather([fine.clone(), boom], false).unwrap());
            let err = err.unwrap_err();
            assert_eq!(err, Error::Panic("boom".into()));
            assert_py_error(&err, "Panic", "boom");
            assert!(!fine.done());
        }),
    ]);
}

/// With `return_exceptions` failures are entries and the gather waits for
/// every child (CPython: `[1, ValueError('x'), CancelledError('')]`). A
/// cancelled future's entry carries its message; a task that propagated its
/// cancellation has no message of its own (`CancelledError('')`); one that
/// cancelled itself and returned in the same step (TASK-5) keeps it.
/// Rules: GATHER-5
#[test]
fn gather_with_return_exceptions_lists_failures() {
    let s = Scene::new();
    let (one, bad, gone) = (s.create_future(), s.create_future(), s.create_future());
    let all = gather([one.clone(), bad.clone(), gone.clone()], true).unwrap();
    one.set_result(1).unwrap();
    bad.set_exception(value_error("x")).unwrap();
    gone.cancel();
    let out = s.run_until_complete(all.clone()).unwrap();
    assert_eq!(out, [Ok(1), Err(value_error("x")), Err(cancelled(""))]);
    assert_eq!(out[2].as_ref().unwrap_err().python_type(), "CancelledError");
    assert!(!all.cancelled());
    let f = s.create_future::<i32>();
    let all = gather([f.clone()], true).unwrap();
    f.cancel_with(Some("bye".into()));
    assert_eq!(s.run_until_complete(all), Ok(vec![Err(cancelled("bye"))]));
    let t = sleeper(&s, 10.0, 1);
    let t2 = t.clone();
    s.later(1.0, move |_| {
        t2.cancel_with(Some("msg".into()));
    });
    let own = s.task(|_| async {
        let me = loopspec::current_task()?.unwrap();
        me.cancel_with(Some("self".into()));
        Ok(1)
    });
    let all = gather([t.clone(), own], true).unwrap();
    let out = s.run_until_complete(all);
    assert_eq!(out, Ok(vec![Err(cancelled("")), Err(cancelled("self"))]));
    assert!(t.cancelled());
    let start = s.time();
    let all = gather(
        [failer(&s, 1.0, value_error("x")), sleeper(&s, 4.0, 4)],
        true,
    );
    let out = s.run_until_complete(all.unwrap());
    assert_eq!(
        (out, s.time() - start),
        (Ok(vec![Err(value_error("x")), Ok(4)]), 4.0)
    );
}

/// Cancelling a gather cancels each pending child and returns whether any
/// child's cancel did; the gather then finishes — once every child is done
/// with `return_exceptions`, at the first cancelled one without — with a
/// `CancelledError` (CPython: `CancelledError('M')`, and `cancelled()`
/// stays false). Its message is that of the last child in argument order
/// (3.11.7/3.12.1/3.13.0: gather's callback reuses its `fut` variable in the
/// loop building the results); a child that swallows the cancellation in a
/// sleep leaves none, one suspended in `sleep(0)` keeps the gather's (its
/// `_cancel_message`). A done gather is not cancelled.
/// Rules: GATHER-6, GATHER-4
#[test]
fn cancelling_a_gather_cancels_its_children() {
    cases(&[
        ("CancelledError('M'), the gather not cancelled", |s| {
            for return_exceptions in [false, true] {
                let (a, b) = (sleeper(s, 10.0, 1), sleeper(s, 10.0, 2));
                let all = gather([a.clone(), b.clone()], return_exceptions).unwrap();
                s.once(); // the children start and sleep
                assert!(all.cancel_with(Some("M".into())));
                let err = s.run_until_complete(all.clone()).unwrap_err();
                assert_eq!(err, cancelled("M"));
                assert_eq!(err.python_type(), "CancelledError");
                assert!(all.done() && !all.cancelled());
                assert!(a.cancelled() && b.cancelled() && s.time() == 0.0);
            }
        }),
        ("a done gather is not cancelled", |s| {
            let a = sleeper(s, 1.0, 1);
            let all = gather([a.clone()], false).unwrap();
            s.run_until_complete(all.clone()).unwrap();
            assert!(!all.cancel() && !a.cancelled());
            assert_eq!(all.result(), Ok(vec![Ok(1)]));
        }),
        ("true if a pending child's cancel was", |s| {
            let (done, pending) = (s.create_future::<i32>(), s.create_future::<i32>());
            let all = gather([done.clone(), pending.clone()], true).unwrap();
            done.set_result(1).unwrap();
            s.once();
            assert!(all.cancel() && pending.cancelled() && !done.cancelled());
            s.once();
            assert_eq!(all.exception(), Ok(Some(Error::Cancelled(None))));
        }),
        // CPython ("G6 fut_waiter swallow"): the child's cancel went to its
        // sleep.
        ("a child swallowing it in a sleep: no message", |s| {
            let a = catcher(s, OnCancel::Swallow(5));
            let all = gather([a.clone()], false).unwrap();
            s.once();
            assert!(all.cancel_with(Some("M".into())));
            let err = s.run_until_complete(all.clone());
            assert_eq!((err, all.cancelled()), (Err(Error::Cancelled(None)), false));
            assert_eq!(a.result(), Ok(5));
        }),
        // CPython 3.11.7/3.12.1 ("G6 must_cancel swallow"): Task.cancel('M')
        // stores 'M' as the child's cancel message; `_make_cancelled_error()`
        // of a task that is not cancelled uses it.
        (
            "a child swallowing it in sleep(0): the gather's message",
            |s| {
                let a = s.task(|_| async {
                    match loopspec::yield_now().await {
                        Err(e) if e.is_cancelled() => Ok(5),
                        other => other.map(|()| 0),
                    }
                });
                s.once(); // a is now suspended in yield_now
                let all = gather([a.clone()], true).unwrap();
                assert!(all.cancel_with(Some("M".into())));
                assert_eq!(s.run_until_complete(all), Err(cancelled("M")));
                assert_eq!(a.result(), Ok(5));
            },
        ),
        // a (last to finish) raises "own-a", b "own-b".
        ("the message is the last child's in argument order", |s| {
            for a_first in [true, false] {
                let a = catcher(s, OnCancel::Raise("own-a", 2.0));
                let b = catcher(s, OnCancel::Raise("own-b", 1.0));
                let kids = if a_first { [a, b] } else { [b, a] };
                let all = gather(kids, true).unwrap();
                s.once();
                let start = s.time();
                assert!(all.cancel_with(Some("M".into())));
                let err = s.run_until_complete(all.clone()).unwrap_err();
                let last = if a_first { "own-b" } else { "own-a" };
                assert_eq!(err, cancelled(last), "a first: {a_first}");
                assert!(!all.cancelled() && s.time() - start == 2.0);
            }
        }),
        // CPython ("G6 ret_exc=False"): the first child to end cancelled
        // finishes the gather (GATHER-4) before the others are done.
        (
            "without return_exceptions, at the first cancelled child",
            |s| {
                let slow_to_die = catcher(s, OnCancel::Reraise(2.0));
                let quick = sleeper(s, 10.0, 1);
                let all = gather([slow_to_die.clone(), quick.clone()], false).unwrap();
                s.once();
                assert!(all.cancel_with(Some("M".into())));
                assert_eq!(s.run_until_complete(all), Err(cancelled("M")));
                assert!(s.time() == 0.0 && quick.cancelled() && !slow_to_die.done());
            },
        ),
    ]);
}

/// Once its children are done, a gather cannot be cancelled: `cancel()`
/// returns false and the result is kept (CPython `test_cancel_gather_1`:
/// `[1]`) — also while, in the 3.11 profile, its callback is still queued.
/// Rules: GATHER-7
#[test]
fn a_gather_of_done_children_cannot_be_cancelled() {
    let s = Scene::new(); // 3.11: the gather completes a callback later
    let f = s.create_future::<i32>();
    let all = gather([f.clone()], false).unwrap();
    f.set_result(1).unwrap();
    assert!(!all.done() && !all.cancel_with(Some("late".into())));
    s.once();
    assert_eq!(all.result(), Ok(vec![Ok(1)]));
    let t = s.task(|_| async { Ok(5) });
    let all = gather([t.clone()], true).unwrap();
    s.once(); // t finishes; the gather's callback is queued
    assert!(t.done() && !all.done() && !all.cancel());
    s.once();
    assert_eq!(all.result(), Ok(vec![Ok(5)]));
}

/// When a gather of done children completes: in 3.11 an iteration later
/// (CPython: `done()` right after `gather()` is false), from 3.12 at once —
/// also with an already failed child among pending ones (3.12.1: "failed
/// done child"), but with a pending child, an iteration after it completes
/// (3.12.1: "mixed"). Awaited from a task, 3.12 does not suspend at all;
/// 3.11 waits for the gather's callback, then for the wake-up.
/// Rules: GATHER-8, GATHER-4
#[test]
fn when_a_gather_of_done_children_completes() {
    for profile in Profile::ALL {
        let at_once = profile >= Profile::Py312;
        let s = Scene::with_profile(profile);
        let done = |v: i32| {
            let f = s.create_future::<i32>();
            f.set_result(v).unwrap();
            f
        };
        let all = gather([done(1), done(2)], false).unwrap();
        assert_eq!(all.done(), at_once, "{profile:?}");
        s.once();
        assert_eq!(all.result(), Ok(vec![Ok(1), Ok(2)]));
        let bad = s.create_future::<i32>();
        bad.set_exception(value_error("x")).unwrap();
        let all = gather([bad, s.create_future()], false).unwrap();
        assert_eq!(all.done(), at_once, "{profile:?}");
        s.once();
        assert_eq!(all.exception(), Ok(Some(value_error("x"))));
        let pending = s.create_future::<i32>();
        let all = gather([done(1), pending.clone()], false).unwrap();
        pending.set_result(2).unwrap();
        assert!(!all.done(), "{profile:?}");
        s.once();
        assert_eq!(all.result(), Ok(vec![Ok(1), Ok(2)]));
        let f = done(1);
        let task = s.task(|_| async move { gather([f], false)?.await });
        s.once(); // the task's first step
        let steps = if at_once { 0 } else { 2 };
        let mut n = 0;
        while !task.done() && n <= steps {
            s.once();
            n += 1;
        }
        assert_eq!((n, task.result()), (steps, Ok(vec![Ok(1)])), "{profile:?}");
    }
}

/// Cancelling the task awaiting a gather cancels the gather, so every child
/// (CPython `test_cancellation_broadcast`), and the task gets its
/// `CancelledError`. If the children are done but the gather's callback is
/// still queued (3.11), the gather keeps its result and the task's
/// cancellation is delivered when it wakes. A child's own cancel message,
/// from a future cancelled in the same iteration, is what the gather and the
/// task see (3.11.7/3.12.1/3.13.0: `Task.__step` keeps an exception that
/// already is a `CancelledError`).
/// Rules: GATHER-9, FUT-9
#[test]
fn cancelling_the_task_awaiting_a_gather() {
    cases(&[
        ("every child is cancelled", |s| {
            let (a, b) = (sleeper(s, 10.0, 1), sleeper(s, 10.0, 2));
            let all = gather([a.clone(), b.clone()], false).unwrap();
            let waiter = awaiting(s, &all);
            let w = waiter.clone();
            s.later(1.0, move |_| assert!(w.cancel_with(Some("stop".into()))));
            let err = s.run_until_complete(waiter.clone());
            assert_eq!((err, s.time()), (Err(cancelled("stop")), 1.0));
            assert!(a.cancelled() && b.cancelled() && waiter.cancelled());
            assert!(all.done() && !all.cancelled());
        }),
        ("children done, callback queued: the task only", |s| {
            let f = s.create_future::<i32>();
            let all = gather([f.clone()], false).unwrap();
            let waiter = awaiting(s, &all);
            s.once(); // the waiter now awaits the gather
            f.set_result(1).unwrap();
            assert!(waiter.cancel_with(Some("late".into())));
            assert_eq!(s.run_until_complete(waiter), Err(cancelled("late")));
            assert_eq!(all.result(), Ok(vec![Ok(1)]));
        }),
        // The child sleeping is cancelled with 'c0' (its sleep future is
        // cancelled, its wake-up queued), and the task awaiting
        // gather(child) with 'D' (gather.cancel('D') -> child.cancel('D')
        // finds the sleep future done and sets a pending cancel).
        ("the child's own message wins", |s| {
            let child = sleeper(s, 10.0, 1);
            s.once(); // the child sleeps
            let all = gather([child.clone()], true).unwrap();
            let driver = s.task(|_| async move { Ok(all.await.err()) });
            s.once(); // the driver awaits the gather
            assert!(child.cancel_with(Some("c0".into())));
            assert!(driver.cancel_with(Some("D".into())));
            assert_eq!(s.run_until_complete(driver), Ok(Some(cancelled("c0"))));
            assert!(child.cancelled());
        }),
    ]);
}

/// CPython 3.11.7/3.12.1/3.13.0: `t.cancel('c0')` cancels t's sleep future;
/// a second `t.cancel('D')` before t wakes returns true (`cancelling() ==
/// 2`) but t still raises the sleep future's `CancelledError('c0')`.
/// Rules: FUT-9, TASK-4
#[test]
fn awaiting_a_task_cancelled_twice_raises_the_first_cancel_message() {
    let s = Scene::new();
    let t = sleeper(&s, 10.0, 1);
    s.once();
    assert!(t.cancel_with(Some("c0".into())) && t.cancel_with(Some("D".into())));
    assert_eq!(t.cancelling(), 2);
    assert_eq!(s.run_until_complete(t), Err(cancelled("c0")));
}

/// A gather that nobody refers to any more still reads its children when
/// one is done, as CPython's (its callback keeps it alive): a cancelled
/// child's message goes to that first reader, and later readers get none
/// (found by the differential test; the corpus scenario
/// `task-11-an-abandoned-gather-still-reads-its-child`). One that is already
/// done — its first child was cancelled — does not read a child that
/// finishes later, as CPython's callback sees the gather done: that child
/// keeps its message for its own first reader (the corpus scenario
/// `task-11-a-done-gather-leaves-its-later-children-alone`).
/// Rules: TASK-11, GATHER-4
#[test]
fn an_abandoned_gather_reads_its_children_until_it_is_done() {
    let s = Scene::new();
    let t0 = s.task(|_| async { Ok(0) });
    t0.cancel_with(Some("m0".into()));
    drop(gather(vec![t0.clone()], false).unwrap());
    s.once(); // t0's step: cancelled with "m0"
    s.once(); // the gather's callback reads t0 first
    assert_eq!(t0.result(), Err(Error::Cancelled(None)));
    let s = Scene::with_profile(Profile::Py312);
    let f0: Future<i32> = s.create_future();
    let w = f0.clone();
    // A coroutine that awaits the future, as asyncio's `create_task(coro())`:
    // create_task refuses the future itself (TASK-2).
    #[allow(clippy::redundant_async_block)]
    let t0 = s.task(|_| async move { w.await });
    f0.cancel_with(Some("m0".into()));
    let g = gather(vec![Future::from(t0.clone()), f0.clone()], false).unwrap();
    assert!(
        g.done(),
        "3.12+: f0 was done already, so the gather is done at once"
    );
    drop(g);
    for _ in 0..3 {
        s.once();
    }
    assert!(t0.cancelled());
    assert_eq!(t0.result(), Err(cancelled("m0")));
}
