//! GATHER rules of SPEC.md: `gather(children, return_exceptions)` — result
//! order, no children, one loop and duplicates, the first failure, failures
//! as entries, cancelling the gather or the task awaiting it, and when a
//! gather of done children completes in the 3.11 and 3.12 profiles.
//! Observations follow catalogue section 8 (G-1..G-11); the expected values
//! were checked on CPython 3.11.7 and 3.12.1 on a virtual-clock loop.
// A loopspec future passed to create_task as it is would be refused (TASK-2):
// the async blocks that only await one future are the coroutines under test.
#![allow(clippy::redundant_async_block)]

use common::{capture_exceptions, failer, finish, in_thread, run_once, sleeper, vloop};
use loopspec::{ClockKind, Error, EventLoop, Future, Profile, Task, gather};
use std::cell::Cell;
use std::rc::Rc;

fn value_error(msg: &str) -> Error {
    Error::raise("ValueError", msg)
}

fn key_error(msg: &str) -> Error {
    Error::raise("KeyError", msg)
}

fn loop_with(profile: Profile) -> EventLoop {
    EventLoop::builder()
        .clock(ClockKind::Virtual)
        .profile(profile)
        .build()
}

// ---------------------------------------------------------------------------
// GATHER-1: results in argument order
// ---------------------------------------------------------------------------

/// Rules: GATHER-1
#[test]
fn gather_results_come_in_argument_order() {
    // Catalogue G-1: completion b, c, a -> ['a', 'b', 'c'].
    let lp = vloop();
    let a = sleeper(&lp, 3.0, 'a');
    let b = sleeper(&lp, 1.0, 'b');
    let c = sleeper(&lp, 2.0, 'c');
    let all = gather([a, b, c], false).unwrap();
    let out = lp.run_until_complete(all).unwrap();
    let out: Vec<char> = out.into_iter().map(Result::unwrap).collect();
    assert_eq!(out, ['a', 'b', 'c']);
    assert_eq!(lp.time(), 3.0);
}

/// Rules: GATHER-1
#[test]
fn gather_of_plain_futures_completed_in_reverse_keeps_argument_order() {
    let lp = vloop();
    let futs: Vec<Future<i32>> = (0..4).map(|_| lp.create_future()).collect();
    let all = gather(futs.clone(), true).unwrap();
    for (i, f) in futs.iter().enumerate().rev() {
        f.set_result(i as i32).unwrap();
        run_once(&lp);
    }
    run_once(&lp);
    let out: Vec<i32> = all
        .result()
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(out, [0, 1, 2, 3]);
}

// ---------------------------------------------------------------------------
// GATHER-2: no children
// ---------------------------------------------------------------------------

/// Rules: GATHER-2
#[test]
fn gather_of_nothing_is_already_done_with_an_empty_list() {
    let lp = vloop();
    let lp2 = lp.clone();
    lp.run_until_complete(async move {
        let g = gather(Vec::<Future<i32>>::new(), false)?;
        assert!(g.done());
        assert!(g.result()?.is_empty());
        // the loop get_event_loop() finds: the running one (POLICY-2)
        assert_eq!(g.get_loop(), lp2);
        Ok(())
    })
    .unwrap();
}

/// Rules: GATHER-2
#[test]
fn gather_of_nothing_outside_a_loop_uses_the_current_loop() {
    in_thread("gather-current", || {
        let lp = vloop();
        loopspec::set_event_loop(Some(&lp));
        let g = gather(Vec::<Future<i32>>::new(), true).unwrap();
        assert!(g.done());
        assert!(g.result().unwrap().is_empty());
        assert_eq!(g.get_loop(), lp);
        loopspec::set_event_loop(None);
    });
}

/// Rules: GATHER-2
#[test]
fn gather_of_nothing_without_a_current_loop_fails_like_get_event_loop() {
    // POLICY-4: not the main thread, nothing set.
    let err = in_thread("gather-no-loop", || {
        gather(Vec::<Future<i32>>::new(), false).unwrap_err()
    });
    assert_eq!(
        err.to_string(),
        "There is no current event loop in thread 'gather-no-loop'."
    );
    assert_eq!(err.python_type(), "RuntimeError");
}

// ---------------------------------------------------------------------------
// GATHER-3: one loop; duplicates are one child
// ---------------------------------------------------------------------------

/// Rules: GATHER-3
#[test]
fn gather_refuses_children_of_two_loops() {
    let a = vloop();
    let b = vloop();
    let fa = a.create_future::<i32>();
    let fb = b.create_future::<i32>();
    let err = gather([fa, fb], false).unwrap_err();
    assert_eq!(
        err.to_string(),
        "The future belongs to a different loop than the one specified as the loop argument"
    );
    assert_eq!(err.python_type(), "ValueError");
}

/// Rules: GATHER-3
#[test]
fn gather_same_future_three_times_reports_it_three_times() {
    // Catalogue G-4: gather(fut, fut, fut) -> ['F', 'F', 'F'].
    let lp = vloop();
    let f = lp.create_future::<&str>();
    let all = gather([f.clone(), f.clone(), f.clone()], false).unwrap();
    f.set_result("F").unwrap();
    let out = lp.run_until_complete(all).unwrap();
    let out: Vec<&str> = out.into_iter().map(Result::unwrap).collect();
    assert_eq!(out, ["F", "F", "F"]);
}

/// Rules: GATHER-3
#[test]
fn gather_duplicate_task_runs_once_and_repeats_its_result() {
    // Catalogue G-4: ['dup', 'dup'], and the coroutine ran once.
    let lp = vloop();
    let runs = Rc::new(Cell::new(0));
    let r = runs.clone();
    let t = lp
        .create_task(async move {
            r.set(r.get() + 1);
            loopspec::yield_now().await?;
            Ok("dup")
        })
        .unwrap();
    let all = gather([t.clone(), t], false).unwrap();
    let out = lp.run_until_complete(all).unwrap();
    assert_eq!(out, [Ok("dup"), Ok("dup")]);
    assert_eq!(runs.get(), 1);
}

/// Rules: GATHER-3, GATHER-6
#[test]
fn gather_cancel_cancels_a_duplicate_child_once_per_position() {
    // CPython 3.11.7/3.12.1 keep the duplicates in `_children` and cancel
    // the child once per position: gather(t, t).cancel() leaves
    // t.cancelling() == 2 (SPEC.md GATHER-6).
    let lp = vloop();
    let t = sleeper(&lp, 10.0, 1);
    run_once(&lp);
    let all = gather([t.clone(), t.clone()], false).unwrap();
    assert!(all.cancel());
    assert_eq!(t.cancelling(), 2);
    let err = lp.run_until_complete(all).unwrap_err();
    assert_eq!(err, Error::Cancelled(None));
    assert!(t.cancelled());
}

/// Rules: GATHER-3, GATHER-5
#[test]
fn gather_duplicate_failing_child_is_one_entry_per_position() {
    let lp = vloop();
    let bad = failer(&lp, 1.0, value_error("x"));
    let good = sleeper(&lp, 2.0, 7);
    let all = gather([bad.clone(), good, bad], true).unwrap();
    let out = lp.run_until_complete(all).unwrap();
    assert_eq!(out, [Err(value_error("x")), Ok(7), Err(value_error("x"))]);
}

// ---------------------------------------------------------------------------
// GATHER-4: without return_exceptions, the first failure wins
// ---------------------------------------------------------------------------

/// Rules: GATHER-4
#[test]
fn gather_first_exception_finishes_it_and_others_keep_running() {
    // Catalogue G-5: the outer raised ValueError('E1') while KeyError('E2')
    // and `slow` went on to finish.
    let lp = vloop();
    let seen = capture_exceptions(&lp);
    let e1 = failer(&lp, 1.0, value_error("E1"));
    let e2 = failer(&lp, 2.0, key_error("E2"));
    let slow = sleeper(&lp, 3.0, 3);
    let all = gather([e1.clone(), e2.clone(), slow.clone()], false).unwrap();
    let err = lp.run_until_complete(all.clone()).unwrap_err();
    assert_eq!(err, value_error("E1"));
    assert_eq!(err.python_type(), "ValueError");
    assert_eq!(lp.time(), 1.0);
    assert!(!e2.done() && !slow.done());
    // nothing was cancelled: the others finish on their own
    lp.run_until_complete(slow.clone()).unwrap();
    assert_eq!(lp.time(), 3.0);
    assert!(!e2.cancelled() && !slow.cancelled());
    assert_eq!(slow.result().unwrap(), 3);
    assert_eq!(all.exception().unwrap(), Some(value_error("E1")));
    // E2, which nobody read, counts as retrieved: no report when dropped
    drop((e1, e2, slow, all));
    lp.close().unwrap();
    let msgs: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|c| c.message.clone())
        .collect();
    assert!(
        !msgs.iter().any(|m| m.contains("never retrieved")),
        "unexpected reports: {msgs:?}"
    );
}

/// Rules: GATHER-4
#[test]
fn gather_first_failure_is_by_completion_not_argument_order() {
    let lp = vloop();
    let late = failer(&lp, 2.0, value_error("late"));
    let early = failer(&lp, 1.0, key_error("early"));
    let all = gather([late, early], false).unwrap();
    let err = lp.run_until_complete(all).unwrap_err();
    assert_eq!(err, key_error("early"));
    assert_eq!(err.python_type(), "KeyError");
    finish(&lp);
}

/// Rules: GATHER-4
#[test]
fn gather_of_children_that_already_failed_reports_the_first_argument() {
    // CPython 3.11.7 / 3.12.1: a fails at t=2, b at t=1, gather(a, b) made
    // at t=3 raises a's exception: children already done are counted in
    // argument order, not in the order they completed.
    for profile in [Profile::Py311, Profile::Py312] {
        let lp = loop_with(profile);
        let a = failer(&lp, 2.0, value_error("a"));
        let b = failer(&lp, 1.0, value_error("b"));
        let err = lp
            .run_until_complete(async move {
                loopspec::sleep(3.0).await?;
                gather([a, b], false)?.await
            })
            .unwrap_err();
        assert_eq!(err, value_error("a"), "{profile:?}");
    }
}

/// Rules: GATHER-4
#[test]
fn gather_cancelled_child_makes_a_cancelled_error_exception() {
    // Catalogue G-6: the outer future finishes *with* a CancelledError; it is
    // not cancelled itself.
    let lp = vloop();
    let a = lp.create_future::<i32>();
    let b = lp.create_future::<i32>();
    let all = gather([a.clone(), b.clone()], false).unwrap();
    a.cancel_with(Some("stop a".into()));
    run_once(&lp);
    assert!(all.done());
    assert!(!all.cancelled());
    let exc = all.exception().unwrap().unwrap();
    assert_eq!(exc, Error::Cancelled(Some("stop a".into())));
    assert_eq!(exc.python_type(), "CancelledError");
    assert_eq!(exc.to_string(), "stop a");
    // the other child is untouched
    assert!(!b.done());
}

/// Rules: GATHER-4
#[test]
fn gather_panicking_child_is_its_first_failure() {
    let lp = vloop();
    let boom = lp
        .create_task(async {
            loopspec::sleep(1.0).await?;
            if true {
                panic!("boom");
            }
            Ok(0)
        })
        .unwrap();
    let fine = sleeper(&lp, 2.0, 2);
    let all = gather([fine.clone(), boom], false).unwrap();
    let err = lp.run_until_complete(all).unwrap_err();
    assert_eq!(err, Error::Panic("boom".into()));
    assert_eq!(err.python_type(), "Panic");
    assert!(!fine.done());
    finish(&lp);
}

// ---------------------------------------------------------------------------
// GATHER-5: with return_exceptions, failures are entries
// ---------------------------------------------------------------------------

/// Rules: GATHER-5
#[test]
fn gather_return_exceptions_lists_results_errors_and_cancellations() {
    // Catalogue G-7: [1, ValueError('x'), CancelledError('')].
    let lp = vloop();
    let one = lp.create_future::<i32>();
    let bad = lp.create_future::<i32>();
    let gone = lp.create_future::<i32>();
    let all = gather([one.clone(), bad.clone(), gone.clone()], true).unwrap();
    one.set_result(1).unwrap();
    bad.set_exception(value_error("x")).unwrap();
    gone.cancel();
    let out = lp.run_until_complete(all.clone()).unwrap();
    assert_eq!(
        out,
        [
            Ok(1),
            Err(value_error("x")),
            Err(Error::Cancelled(Some(String::new())))
        ]
    );
    assert_eq!(out[2].as_ref().unwrap_err().python_type(), "CancelledError");
    assert!(!all.cancelled());
}

/// Rules: GATHER-5
#[test]
fn gather_return_exceptions_entry_carries_a_futures_cancel_message() {
    let lp = vloop();
    let f = lp.create_future::<i32>();
    let all = gather([f.clone()], true).unwrap();
    f.cancel_with(Some("bye".into()));
    let out = lp.run_until_complete(all).unwrap();
    assert_eq!(out, [Err(Error::Cancelled(Some("bye".into())))]);
}

/// Rules: GATHER-5
#[test]
fn gather_return_exceptions_task_that_propagated_cancellation_has_empty_message() {
    // A task cancelled with a message ends by propagating the CancelledError,
    // so its own cancel message is None and the entry is CancelledError('').
    let lp = vloop();
    let t = sleeper(&lp, 10.0, 1);
    let t2 = t.clone();
    lp.call_later(1.0, move || {
        t2.cancel_with(Some("msg".into()));
    })
    .unwrap();
    let all = gather([t.clone()], true).unwrap();
    let out = lp.run_until_complete(all).unwrap();
    assert_eq!(out, [Err(Error::Cancelled(Some(String::new())))]);
    assert!(t.cancelled());
}

/// Rules: GATHER-5
#[test]
fn gather_return_exceptions_task_cancelled_at_its_return_keeps_message() {
    // TASK-5: a task that cancels itself and returns in the same step is
    // cancelled with its message, which the entry carries.
    let lp = vloop();
    let t = lp
        .create_task(async {
            loopspec::current_task()?
                .unwrap()
                .cancel_with(Some("self".into()));
            Ok(1)
        })
        .unwrap();
    let out = lp.run_until_complete(gather([t], true).unwrap()).unwrap();
    assert_eq!(out, [Err(Error::Cancelled(Some("self".into())))]);
}

/// Rules: GATHER-5
#[test]
fn gather_return_exceptions_waits_for_every_child() {
    let lp = vloop();
    let bad = failer(&lp, 1.0, value_error("x"));
    let slow = sleeper(&lp, 4.0, 4);
    let all = gather([bad, slow], true).unwrap();
    let out = lp.run_until_complete(all).unwrap();
    assert_eq!(lp.time(), 4.0);
    assert_eq!(out, [Err(value_error("x")), Ok(4)]);
}

// ---------------------------------------------------------------------------
// GATHER-6: cancelling the gather
// ---------------------------------------------------------------------------

/// Rules: GATHER-6
#[test]
fn gather_cancel_cancels_children_and_finishes_with_cancelled_error() {
    // Catalogue G-8: CancelledError('M'); outer.cancelled() stays False.
    let lp = vloop();
    let a = sleeper(&lp, 10.0, 1);
    let b = sleeper(&lp, 10.0, 2);
    let all = gather([a.clone(), b.clone()], false).unwrap();
    run_once(&lp); // the children start and sleep
    assert!(all.cancel_with(Some("M".into())));
    let err = lp.run_until_complete(all.clone()).unwrap_err();
    assert_eq!(err, Error::Cancelled(Some("M".into())));
    assert_eq!(err.python_type(), "CancelledError");
    assert!(all.done());
    assert!(!all.cancelled());
    assert!(a.cancelled() && b.cancelled());
    assert_eq!(lp.time(), 0.0);
}

/// Rules: GATHER-6
#[test]
fn gather_cancel_with_return_exceptions_still_raises() {
    // Catalogue G-8 ("G6 plain"): even with return_exceptions the awaiting
    // side gets CancelledError('M'), once every child is done.
    let lp = vloop();
    let a = sleeper(&lp, 10.0, 1);
    let b = sleeper(&lp, 10.0, 2);
    let all = gather([a, b], true).unwrap();
    run_once(&lp);
    assert!(all.cancel_with(Some("M".into())));
    let err = lp.run_until_complete(all.clone()).unwrap_err();
    assert_eq!(err, Error::Cancelled(Some("M".into())));
    assert!(!all.cancelled());
}

/// Rules: GATHER-6
#[test]
fn gather_cancel_of_done_gather_returns_false() {
    let lp = vloop();
    let a = sleeper(&lp, 1.0, 1);
    let all = gather([a.clone()], false).unwrap();
    lp.run_until_complete(all.clone()).unwrap();
    assert!(!all.cancel());
    assert!(!a.cancelled());
    assert_eq!(all.result().unwrap(), [Ok(1)]);
}

/// Rules: GATHER-6
#[test]
fn gather_cancel_returns_whether_any_child_cancel_did() {
    // One child done, one pending: the pending one's cancel() is true.
    let lp = vloop();
    let done = lp.create_future::<i32>();
    let pending = lp.create_future::<i32>();
    let all = gather([done.clone(), pending.clone()], true).unwrap();
    done.set_result(1).unwrap();
    run_once(&lp);
    assert!(all.cancel());
    assert!(pending.cancelled());
    assert!(!done.cancelled());
    run_once(&lp);
    assert_eq!(all.exception().unwrap(), Some(Error::Cancelled(None)));
}

/// Rules: GATHER-6
#[test]
fn gather_cancel_swallowed_by_child_still_raises() {
    // CPython ("G6 fut_waiter swallow"): a child that catches the
    // cancellation and returns a value; the gather still finishes with
    // CancelledError (no message: the child's cancel went to its sleep).
    let lp = vloop();
    let a = lp
        .create_task(async {
            match loopspec::sleep(10.0).await {
                Err(e) if e.is_cancelled() => Ok("swallowed"),
                other => other.map(|_| "slept"),
            }
        })
        .unwrap();
    let all = gather([a.clone()], false).unwrap();
    run_once(&lp);
    assert!(all.cancel_with(Some("M".into())));
    let err = lp.run_until_complete(all.clone()).unwrap_err();
    assert_eq!(err, Error::Cancelled(None));
    assert!(!all.cancelled());
    assert_eq!(a.result().unwrap(), "swallowed");
}

/// Rules: GATHER-6
#[test]
fn gather_cancel_swallowed_by_child_not_waiting_keeps_message() {
    // CPython 3.11.7/3.12.1 ("G6 must_cancel swallow"): the child is
    // suspended in sleep(0), so Task.cancel('M') stores 'M' as its cancel
    // message; it catches the CancelledError and returns. The gather then
    // finishes with CancelledError('M') (`_make_cancelled_error()` of a task
    // that is not cancelled uses its `_cancel_message`).
    let lp = vloop();
    let a = lp
        .create_task(async {
            match loopspec::yield_now().await {
                Err(e) if e.is_cancelled() => Ok("swallowed"),
                other => other.map(|_| "not cancelled"),
            }
        })
        .unwrap();
    run_once(&lp); // a is now suspended in yield_now
    let all = gather([a.clone()], true).unwrap();
    assert!(all.cancel_with(Some("M".into())));
    let err = lp.run_until_complete(all).unwrap_err();
    assert_eq!(a.result().unwrap(), "swallowed");
    assert_eq!(err, Error::Cancelled(Some("M".into())));
}

/// Rules: GATHER-6
#[test]
fn gather_cancel_message_is_the_last_childs_in_argument_order() {
    // Children catch the cancellation, sleep, and raise their own
    // CancelledError: a (last to finish) "own-a", b "own-b". CPython
    // 3.11.7/3.12.1/3.13.0 report the last child *in argument order*
    // (gather's callback reuses its `fut` variable in the loop building the
    // results), so gather(a, b) gives 'own-b' and gather(b, a) gives 'own-a'
    // (SPEC.md GATHER-6).
    fn own_cancel(lp: &EventLoop, name: &'static str, d: f64) -> Task<i32> {
        lp.create_task(async move {
            match loopspec::sleep(10.0).await {
                Err(e) if e.is_cancelled() => {
                    loopspec::sleep(d).await?;
                    Err(Error::Cancelled(Some(name.into())))
                }
                other => other.map(|_| 0),
            }
        })
        .unwrap()
    }
    for a_first in [true, false] {
        let lp = vloop();
        let a = own_cancel(&lp, "own-a", 2.0);
        let b = own_cancel(&lp, "own-b", 1.0);
        let kids = if a_first { [a, b] } else { [b, a] };
        let all = gather(kids, true).unwrap();
        run_once(&lp);
        assert!(all.cancel_with(Some("M".into())));
        let err = lp.run_until_complete(all.clone()).unwrap_err();
        let last_in_order = if a_first { "own-b" } else { "own-a" };
        assert_eq!(
            err,
            Error::Cancelled(Some(last_in_order.into())),
            "a first: {a_first}"
        );
        assert!(!all.cancelled());
        assert_eq!(lp.time(), 2.0);
    }
}

/// Rules: GATHER-6, GATHER-4
#[test]
fn gather_cancel_without_return_exceptions_finishes_at_first_cancelled_child() {
    // CPython ("G6 ret_exc=False"): the first child to end cancelled
    // finishes the gather (GATHER-4) before the others are done.
    let lp = vloop();
    let slow_to_die = lp
        .create_task(async {
            match loopspec::sleep(10.0).await {
                Err(e) if e.is_cancelled() => {
                    loopspec::sleep(2.0).await?;
                    Err(e)
                }
                other => other.map(|_| 0),
            }
        })
        .unwrap();
    let quick = sleeper(&lp, 10.0, 1);
    let all = gather([slow_to_die.clone(), quick.clone()], false).unwrap();
    run_once(&lp);
    assert!(all.cancel_with(Some("M".into())));
    let err = lp.run_until_complete(all).unwrap_err();
    assert_eq!(err, Error::Cancelled(Some("M".into())));
    assert_eq!(lp.time(), 0.0);
    assert!(quick.cancelled());
    assert!(!slow_to_die.done());
    finish(&lp);
}

// ---------------------------------------------------------------------------
// GATHER-7: a gather whose children are done cannot be cancelled
// ---------------------------------------------------------------------------

/// Rules: GATHER-7
#[test]
fn gather_cancel_after_children_done_returns_false_and_keeps_result() {
    // Catalogue G-9 (test_cancel_gather_1): the result [1] is kept.
    let lp = vloop(); // 3.11 profile: the gather completes a callback later
    let f = lp.create_future::<i32>();
    let all = gather([f.clone()], false).unwrap();
    f.set_result(1).unwrap();
    assert!(!all.done());
    assert!(!all.cancel_with(Some("late".into())));
    run_once(&lp);
    assert!(all.done());
    assert_eq!(all.result().unwrap(), [Ok(1)]);
}

/// Rules: GATHER-7
#[test]
fn gather_cancel_after_task_children_finished_returns_false() {
    let lp = vloop();
    let t = lp.create_task(async { Ok(5) }).unwrap();
    let all = gather([t.clone()], true).unwrap();
    run_once(&lp); // t finishes; the gather's callback is queued
    assert!(t.done());
    assert!(!all.done());
    assert!(!all.cancel());
    run_once(&lp);
    assert_eq!(all.result().unwrap(), [Ok(5)]);
}

// ---------------------------------------------------------------------------
// GATHER-8: when a gather of done children completes
// ---------------------------------------------------------------------------

/// Rules: GATHER-8
#[test]
fn gather_of_done_children_311_completes_an_iteration_later() {
    // Catalogue G-10: 3.11 done right after gather() -> False.
    let lp = loop_with(Profile::Py311);
    let f = lp.create_future::<i32>();
    f.set_result(1).unwrap();
    let all = gather([f], false).unwrap();
    assert!(!all.done());
    run_once(&lp);
    assert!(all.done());
    assert_eq!(all.result().unwrap(), [Ok(1)]);
}

/// Rules: GATHER-8
#[test]
fn gather_of_done_children_312_is_done_at_once() {
    for profile in [
        Profile::Py312,
        Profile::Py313,
        Profile::Py314,
        Profile::Py315,
    ] {
        let lp = loop_with(profile);
        let f = lp.create_future::<i32>();
        f.set_result(1).unwrap();
        let g = lp.create_future::<i32>();
        g.set_result(2).unwrap();
        let all = gather([f, g], false).unwrap();
        assert!(all.done(), "{profile:?}");
        assert_eq!(all.result().unwrap(), [Ok(1), Ok(2)]);
    }
}

/// Rules: GATHER-8
#[test]
fn gather_312_with_one_pending_child_waits_for_its_callback() {
    // CPython 3.12.1 ("G8 mixed"): not done at once; done an iteration
    // after the pending child completes.
    let lp = loop_with(Profile::Py312);
    let done = lp.create_future::<i32>();
    done.set_result(1).unwrap();
    let pending = lp.create_future::<i32>();
    let all = gather([done, pending.clone()], false).unwrap();
    pending.set_result(2).unwrap();
    assert!(!all.done());
    run_once(&lp);
    assert_eq!(all.result().unwrap(), [Ok(1), Ok(2)]);
}

/// Rules: GATHER-8, GATHER-4
#[test]
fn gather_312_of_an_already_failed_child_fails_at_once() {
    // CPython 3.12.1 ("G8 failed done child"): done at once with the error,
    // even though another child is pending; 3.11 needs an iteration.
    for (profile, at_once) in [(Profile::Py311, false), (Profile::Py312, true)] {
        let lp = loop_with(profile);
        let bad = lp.create_future::<i32>();
        bad.set_exception(value_error("x")).unwrap();
        let all = gather([bad, lp.create_future()], false).unwrap();
        assert_eq!(all.done(), at_once, "{profile:?}");
        run_once(&lp);
        assert_eq!(all.exception().unwrap(), Some(value_error("x")));
    }
}

/// Rules: GATHER-8
#[test]
fn gather_of_done_children_awaited_in_a_task_costs_iterations_only_in_311() {
    // Awaiting the gather of a done future from a task: 3.12 does not
    // suspend at all; 3.11 waits for the gather's callback and then for the
    // wake-up (two iterations).
    for (profile, steps) in [(Profile::Py311, 2), (Profile::Py312, 0)] {
        let lp = loop_with(profile);
        let f = lp.create_future::<i32>();
        f.set_result(1).unwrap();
        let task = lp
            .create_task(async move { gather([f], false)?.await })
            .unwrap();
        run_once(&lp); // the task's first step
        let mut n = 0;
        while !task.done() && n <= steps {
            run_once(&lp);
            n += 1;
        }
        assert_eq!(n, steps, "{profile:?}");
        assert_eq!(task.result(), Ok(vec![Ok(1)]), "{profile:?}");
    }
}

// ---------------------------------------------------------------------------
// GATHER-9: cancelling the awaiting task cancels the gather
// ---------------------------------------------------------------------------

/// Rules: GATHER-9
#[test]
#[allow(clippy::redundant_async_block)] // create_task refuses a Future (TASK-2)
fn cancelling_task_awaiting_gather_cancels_every_child() {
    // Catalogue G-11 (test_cancellation_broadcast).
    let lp = vloop();
    let a = sleeper(&lp, 10.0, 1);
    let b = sleeper(&lp, 10.0, 2);
    let all = gather([a.clone(), b.clone()], false).unwrap();
    let all2 = all.clone();
    let waiter = lp.create_task(async move { all2.await }).unwrap();
    let w = waiter.clone();
    lp.call_later(1.0, move || {
        assert!(w.cancel_with(Some("stop".into())));
    })
    .unwrap();
    let err = lp.run_until_complete(waiter.clone()).unwrap_err();
    assert_eq!(err, Error::Cancelled(Some("stop".into())));
    assert!(a.cancelled() && b.cancelled());
    assert!(all.done() && !all.cancelled());
    assert!(waiter.cancelled());
    assert_eq!(lp.time(), 1.0);
}

/// Rules: GATHER-9
#[test]
#[allow(clippy::redundant_async_block)] // create_task refuses a Future (TASK-2)
fn cancelling_task_awaiting_gather_of_finished_children_cancels_the_task_only() {
    // 3.11 profile: the child is done but the gather's callback is still
    // queued; gather.cancel() returns false, so the task's cancellation is
    // delivered when it wakes, and the gather keeps its result.
    let lp = vloop();
    let f = lp.create_future::<i32>();
    let all = gather([f.clone()], false).unwrap();
    let all2 = all.clone();
    let waiter = lp.create_task(async move { all2.await }).unwrap();
    run_once(&lp); // the waiter now awaits the gather
    f.set_result(1).unwrap();
    assert!(waiter.cancel_with(Some("late".into())));
    let err = lp.run_until_complete(waiter.clone()).unwrap_err();
    assert_eq!(err, Error::Cancelled(Some("late".into())));
    assert_eq!(all.result().unwrap(), [Ok(1)]);
}

/// Rules: GATHER-9, FUT-9
#[test]
fn task_cancel_after_awaited_future_cancelled_keeps_futures_message() {
    // CPython 3.11.7/3.12.1/3.13.0: a child sleeping is cancelled with 'c0'
    // (its sleep future is cancelled, its wake-up queued) and, in the same
    // iteration, the task awaiting gather(child) is cancelled with 'D'
    // (gather.cancel('D') -> child.cancel('D') finds the sleep future done and
    // sets a pending cancel). When the child wakes, the CancelledError('c0')
    // of the future it awaited is what it raises (Task.__step keeps an
    // exception that already is a CancelledError), so the gather, and the
    // task awaiting it, see CancelledError('c0').
    let lp = vloop();
    let child = sleeper(&lp, 10.0, 1);
    run_once(&lp); // the child sleeps
    let all = gather([child.clone()], true).unwrap();
    let all2 = all.clone();
    let driver = lp
        .create_task(async move {
            match all2.await {
                Ok(_) => Ok(None),
                Err(e) => Ok(Some(e)),
            }
        })
        .unwrap();
    run_once(&lp); // the driver awaits the gather
    assert!(child.cancel_with(Some("c0".into())));
    assert!(driver.cancel_with(Some("D".into())));
    let seen = lp.run_until_complete(driver).unwrap();
    assert!(child.cancelled());
    assert_eq!(seen, Some(Error::Cancelled(Some("c0".into()))));
}

/// Rules: FUT-9, TASK-4
#[test]
fn awaiting_a_task_cancelled_twice_raises_the_first_cancel_message() {
    // CPython 3.11.7/3.12.1/3.13.0: t.cancel('c0') cancels t's sleep future;
    // a second t.cancel('D') before t wakes returns True (cancelling() == 2)
    // but t still raises the sleep future's CancelledError('c0').
    let lp = vloop();
    let t = sleeper(&lp, 10.0, 1);
    run_once(&lp);
    assert!(t.cancel_with(Some("c0".into())));
    assert!(t.cancel_with(Some("D".into())));
    assert_eq!(t.cancelling(), 2);
    let err = lp.run_until_complete(t.clone()).unwrap_err();
    assert_eq!(err, Error::Cancelled(Some("c0".into())));
}

/// A gather that nobody refers to any more still reads its children when
/// one is done, as CPython's (its callback keeps it alive): a cancelled
/// child's message goes to that first reader, and later readers get none
/// (found by the differential test; the corpus scenario
/// `task-11-an-abandoned-gather-still-reads-its-child`).
/// Rules: TASK-11, GATHER-4
#[test]
fn gather_abandoned_still_reads_a_cancelled_child_first() {
    let lp = vloop();
    let t0 = lp.create_task(async { Ok(0) }).unwrap();
    t0.cancel_with(Some("m0".into()));
    drop(gather(vec![t0.clone()], false).unwrap());
    lp.stop();
    lp.run_forever().unwrap(); // t0's step: cancelled with "m0"
    run_once(&lp); // the gather's callback reads t0 first
    assert_eq!(t0.result(), Err(Error::Cancelled(None)));
}

/// A gather that is already done — its first child was cancelled — and that
/// nobody refers to any more does not read a child that finishes later, as
/// CPython's callback sees the gather done: that child keeps its message for
/// its own first reader (the corpus scenario
/// `task-11-a-done-gather-leaves-its-later-children-alone`).
/// Rules: TASK-11, GATHER-4
#[test]
fn gather_done_and_abandoned_leaves_a_later_child_alone() {
    let lp = loopspec::EventLoop::builder()
        .clock(ClockKind::Virtual)
        .profile(Profile::Py312)
        .build();
    let f0: Future<i32> = lp.create_future();
    let w = f0.clone();
    let t0 = lp.create_task(async move { w.await }).unwrap();
    f0.cancel_with(Some("m0".into()));
    let g = gather(vec![Future::from(t0.clone()), f0.clone()], false).unwrap();
    assert!(
        g.done(),
        "3.12+: f0 was done already, so the gather is done at once"
    );
    drop(g);
    for _ in 0..3 {
        run_once(&lp);
    }
    assert!(t0.cancelled());
    assert_eq!(t0.result(), Err(Error::Cancelled(Some("m0".into()))));
}
