//! WAIT rules of SPEC.md: `wait(fs, timeout, return_when)` — argument
//! checks, `(done, pending)`, `ALL_COMPLETED` / `FIRST_COMPLETED` /
//! `FIRST_EXCEPTION`, timeouts and their boundary, and cancelling the waiting
//! task. Observations follow catalogue section 7 (W-1..W-5); iteration counts
//! were measured on CPython 3.11.7, 3.12.1 and 3.13.0 on a virtual-clock loop
//! (the loop's own `_run_once` counter).

use common::{assert_holds_no_work, capture_exceptions, failer, finish, run_once, sleeper, vloop};
use loopspec::{Error, EventLoop, Future, ReturnWhen, Task, wait};
use std::cell::{Cell, RefCell};
use std::pin::pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

type Split<T> = (Vec<Future<T>>, Vec<Future<T>>);

/// Where a [`waiting_task`] stores what `wait` returned.
type Slot = Rc<RefCell<Option<loopspec::Result<Split<i32>>>>>;

fn value_error(msg: &str) -> Error {
    Error::raise("ValueError", msg)
}

fn fut(f: &Task<i32>) -> Future<i32> {
    f.as_future().clone()
}

/// A task that runs `wait(fs, ...)` and stores what it returned.
fn waiting_task(
    lp: &EventLoop,
    fs: Vec<Future<i32>>,
    timeout: Option<f64>,
    rw: ReturnWhen,
) -> (Task<()>, Slot) {
    let out = Rc::new(RefCell::new(None));
    let o = out.clone();
    let t = lp
        .create_task(async move {
            let r = wait(fs, timeout, rw).await;
            *o.borrow_mut() = Some(r);
            Ok(())
        })
        .unwrap();
    (t, out)
}

/// Runs single iterations until `t` is done; returns how many it took.
fn iterations_until_done<T: 'static>(lp: &EventLoop, t: &Task<T>) -> usize {
    let mut n = 0;
    while !t.done() {
        run_once(lp);
        n += 1;
        assert!(n < 100, "never finished");
    }
    n
}

// ---------------------------------------------------------------------------
// WAIT-1: arguments
// ---------------------------------------------------------------------------

/// Rules: WAIT-1
#[test]
fn wait_of_nothing_fails_when_awaited() {
    let lp = vloop();
    let err = lp
        .run_until_complete(wait(
            Vec::<Future<i32>>::new(),
            None,
            ReturnWhen::AllCompleted,
        ))
        .unwrap_err();
    assert_eq!(err, Error::EmptyWait);
    assert_eq!(err.to_string(), "Set of Tasks/Futures is empty.");
    assert_eq!(err.python_type(), "ValueError");
}

/// Rules: WAIT-1
#[test]
fn wait_of_nothing_does_not_fail_when_called() {
    // Calling wait() makes a coroutine; nothing is checked until it runs.
    let w = wait(
        Vec::<Future<i32>>::new(),
        Some(1.0),
        ReturnWhen::FirstCompleted,
    );
    drop(w);
}

/// Rules: WAIT-1
#[test]
fn wait_checks_emptiness_before_looking_for_a_running_loop() {
    // CPython: wait([]).send(None) outside a loop -> ValueError; wait([fut])
    // -> RuntimeError: no running event loop.
    let waker = Waker::noop();
    let mut cx = Context::from_waker(waker);
    let mut empty = pin!(wait(
        Vec::<Future<i32>>::new(),
        None,
        ReturnWhen::AllCompleted
    ));
    match empty.as_mut().poll(&mut cx) {
        Poll::Ready(Err(e)) => assert_eq!(e, Error::EmptyWait),
        other => panic!("{:?}", other.map(|r| r.map(|_| ()))),
    }
    let lp = vloop();
    let f = lp.create_future::<i32>();
    let mut one = pin!(wait([f], None, ReturnWhen::AllCompleted));
    match one.as_mut().poll(&mut cx) {
        Poll::Ready(Err(e)) => {
            assert_eq!(e.to_string(), "no running event loop");
            assert_eq!(e.python_type(), "RuntimeError");
        }
        other => panic!("{:?}", other.map(|r| r.map(|_| ()))),
    }
}

// ---------------------------------------------------------------------------
// WAIT-2: (done, pending), with set semantics
// ---------------------------------------------------------------------------

/// Rules: WAIT-2
#[test]
fn wait_duplicates_collapse() {
    // Catalogue W-2: [t, t, t] gives len(done) == 1.
    let lp = vloop();
    let t = sleeper(&lp, 1.0, 1);
    let (done, pending) = lp
        .run_until_complete(wait(
            [t.clone(), t.clone(), t.clone()],
            None,
            ReturnWhen::AllCompleted,
        ))
        .unwrap();
    assert_eq!(done, [fut(&t)]);
    assert!(pending.is_empty());
}

/// Rules: WAIT-2
#[test]
fn wait_sets_are_in_first_argument_order() {
    let lp = vloop();
    let a = sleeper(&lp, 3.0, 0);
    let b = sleeper(&lp, 1.0, 1);
    let c = sleeper(&lp, 5.0, 2);
    let d = sleeper(&lp, 2.0, 3);
    let fs = vec![fut(&c), fut(&a), fut(&d), fut(&c), fut(&b)];
    let (done, pending) = lp
        .run_until_complete(wait(fs, Some(3.5), ReturnWhen::AllCompleted))
        .unwrap();
    assert_eq!(done, [fut(&a), fut(&d), fut(&b)]);
    assert_eq!(pending, [fut(&c)]);
    finish(&lp);
}

/// Rules: WAIT-2
#[test]
fn wait_never_raises_a_childs_exception_nor_cancels() {
    let lp = vloop();
    let bad = failer(&lp, 1.0, value_error("x"));
    let slow = sleeper(&lp, 5.0, 5);
    let (done, pending) = lp
        .run_until_complete(wait(
            [bad.clone(), slow.clone()],
            None,
            ReturnWhen::FirstCompleted,
        ))
        .unwrap();
    assert_eq!(done, [fut(&bad)]);
    assert_eq!(pending, [fut(&slow)]);
    assert!(!slow.cancelled());
    assert_eq!(lp.run_until_complete(slow).unwrap(), 5);
    assert_eq!(bad.exception().unwrap(), Some(value_error("x")));
}

/// Rules: WAIT-2
#[test]
fn wait_returns_the_original_futures() {
    let lp = vloop();
    let f = lp.create_future::<i32>();
    let g = lp.create_future::<i32>();
    f.set_result(1).unwrap();
    let (done, pending) = lp
        .run_until_complete(wait(
            [f.clone(), g.clone()],
            Some(0.0),
            ReturnWhen::AllCompleted,
        ))
        .unwrap();
    assert!(done[0] == f && pending[0] == g);
}

/// Rules: WAIT-2, FUT-7
#[test]
fn wait_all_completed_does_not_mark_exceptions_retrieved() {
    // CPython 3.11.7/3.12.1: wait([t]) of a failing task, then dropping the
    // task without reading it, reports "Task exception was never retrieved"
    // (wait's callback reads f.exception() only for FIRST_EXCEPTION, and
    // only while the counter is not yet zero).
    let lp = vloop();
    let seen = capture_exceptions(&lp);
    let t = failer(&lp, 1.0, value_error("x"));
    lp.run_until_complete(wait([t.clone()], None, ReturnWhen::AllCompleted))
        .unwrap();
    drop(t);
    lp.close().unwrap();
    let msgs: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|c| c.message.clone())
        .collect();
    assert_eq!(msgs, ["Task exception was never retrieved"]);
}

// ---------------------------------------------------------------------------
// WAIT-3: return_when
// ---------------------------------------------------------------------------

/// Rules: WAIT-3
#[test]
fn wait_all_completed_returns_when_the_last_is_done() {
    let lp = vloop();
    let a = sleeper(&lp, 1.0, 1);
    let b = sleeper(&lp, 4.0, 4);
    let (done, pending) = lp
        .run_until_complete(wait([a.clone(), b.clone()], None, ReturnWhen::AllCompleted))
        .unwrap();
    assert_eq!(lp.time(), 4.0);
    assert_eq!(done, [fut(&a), fut(&b)]);
    assert!(pending.is_empty());
}

/// Rules: WAIT-3
#[test]
fn wait_first_completed_returns_when_one_is_done() {
    let lp = vloop();
    let a = sleeper(&lp, 3.0, 1);
    let b = sleeper(&lp, 2.0, 2);
    let (done, pending) = lp
        .run_until_complete(wait(
            [a.clone(), b.clone()],
            None,
            ReturnWhen::FirstCompleted,
        ))
        .unwrap();
    assert_eq!(lp.time(), 2.0);
    assert_eq!(done, [fut(&b)]);
    assert_eq!(pending, [fut(&a)]);
    finish(&lp);
}

/// Rules: WAIT-3
#[test]
fn wait_returns_two_iterations_after_the_satisfying_completion() {
    // The future completes in iteration k; wait's callback runs in k+1 and
    // releases the waiter; the waiting task resumes in k+2.
    let lp = vloop();
    let f = lp.create_future::<i32>();
    let (t, out) = waiting_task(&lp, vec![f.clone()], None, ReturnWhen::FirstCompleted);
    run_once(&lp); // the task starts waiting
    run_once(&lp);
    f.set_result(1).unwrap(); // completes "in" this gap, as from a callback
    assert_eq!(iterations_until_done(&lp, &t), 2);
    let (done, _) = out.borrow_mut().take().unwrap().unwrap();
    assert_eq!(done, [f]);
}

/// Rules: WAIT-3
#[test]
fn wait_first_completed_with_a_done_future_resumes_after_two_iterations() {
    // CPython ("FIRST_COMPLETED with done child: after 2"): the done
    // future's callback is scheduled at once and releases the waiter.
    let lp = vloop();
    let done_f = lp.create_future::<i32>();
    done_f.set_result(1).unwrap();
    let pending_f = lp.create_future::<i32>();
    let (t, out) = waiting_task(
        &lp,
        vec![pending_f.clone(), done_f.clone()],
        None,
        ReturnWhen::FirstCompleted,
    );
    run_once(&lp); // the task's first step calls wait()
    assert_eq!(iterations_until_done(&lp, &t), 2);
    let (done, pending) = out.borrow_mut().take().unwrap().unwrap();
    assert_eq!(done, [done_f]);
    assert_eq!(pending, [pending_f]);
}

/// Rules: WAIT-3
#[test]
fn wait_done_holds_every_future_done_when_it_returns() {
    // Two futures complete in the same iteration: FIRST_COMPLETED reports both.
    let lp = vloop();
    let a = sleeper(&lp, 2.0, 1);
    let b = sleeper(&lp, 2.0, 2);
    let c = sleeper(&lp, 3.0, 3);
    let (done, pending) = lp
        .run_until_complete(wait(
            [c.clone(), a.clone(), b.clone()],
            None,
            ReturnWhen::FirstCompleted,
        ))
        .unwrap();
    assert_eq!(done, [fut(&a), fut(&b)]);
    assert_eq!(pending, [fut(&c)]);
    finish(&lp);
}

/// Rules: WAIT-3
#[test]
fn wait_first_exception_returns_on_the_first_failure() {
    // Catalogue W-3: done {bad, ok}, pending {slow}.
    let lp = vloop();
    let ok = sleeper(&lp, 1.0, 1);
    let bad = failer(&lp, 2.0, value_error("bad"));
    let slow = sleeper(&lp, 5.0, 5);
    let (done, pending) = lp
        .run_until_complete(wait(
            [bad.clone(), ok.clone(), slow.clone()],
            None,
            ReturnWhen::FirstException,
        ))
        .unwrap();
    assert_eq!(lp.time(), 2.0);
    assert_eq!(done, [fut(&bad), fut(&ok)]);
    assert_eq!(pending, [fut(&slow)]);
    finish(&lp);
}

/// Rules: WAIT-3
#[test]
fn wait_first_exception_does_not_count_a_cancellation() {
    // Catalogue W-3: with a cancelled child, done {c0, c1}, pending {}.
    let lp = vloop();
    let c0 = sleeper(&lp, 5.0, 0);
    let c1 = sleeper(&lp, 3.0, 1);
    let c0b = c0.clone();
    lp.call_later(1.0, move || {
        c0b.cancel();
    })
    .unwrap();
    let (done, pending) = lp
        .run_until_complete(wait(
            [c0.clone(), c1.clone()],
            None,
            ReturnWhen::FirstException,
        ))
        .unwrap();
    assert!(c0.cancelled());
    assert_eq!(lp.time(), 3.0);
    assert_eq!(done, [fut(&c0), fut(&c1)]);
    assert!(pending.is_empty());
}

/// Rules: WAIT-3
#[test]
fn wait_first_exception_counts_a_panic() {
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
    let slow = sleeper(&lp, 5.0, 5);
    let (done, pending) = lp
        .run_until_complete(wait(
            [slow.clone(), boom.clone()],
            None,
            ReturnWhen::FirstException,
        ))
        .unwrap();
    assert_eq!(lp.time(), 1.0);
    assert_eq!(done, [fut(&boom)]);
    assert_eq!(pending, [fut(&slow)]);
    finish(&lp);
}

/// Rules: WAIT-3
#[test]
fn wait_first_exception_with_an_already_failed_future_returns_at_once() {
    let lp = vloop();
    let bad = lp.create_future::<i32>();
    bad.set_exception(value_error("early")).unwrap();
    let other = lp.create_future::<i32>();
    let (t, out) = waiting_task(
        &lp,
        vec![other.clone(), bad.clone()],
        None,
        ReturnWhen::FirstException,
    );
    run_once(&lp);
    assert_eq!(iterations_until_done(&lp, &t), 2);
    let (done, pending) = out.borrow_mut().take().unwrap().unwrap();
    assert_eq!(done, [bad]);
    assert_eq!(pending, [other]);
}

/// Rules: WAIT-3
#[test]
fn wait_first_exception_without_failures_waits_for_all() {
    let lp = vloop();
    let a = sleeper(&lp, 1.0, 1);
    let b = sleeper(&lp, 2.0, 2);
    let (done, pending) = lp
        .run_until_complete(wait([a, b], None, ReturnWhen::FirstException))
        .unwrap();
    assert_eq!(lp.time(), 2.0);
    assert_eq!(done.len(), 2);
    assert!(pending.is_empty());
}

// ---------------------------------------------------------------------------
// WAIT-4: timeouts
// ---------------------------------------------------------------------------

/// Rules: WAIT-4
#[test]
fn wait_timeout_returns_the_split_without_cancelling() {
    let lp = vloop();
    let fast = sleeper(&lp, 1.0, 1);
    let slow = sleeper(&lp, 5.0, 5);
    let (done, pending) = lp
        .run_until_complete(wait(
            [fast.clone(), slow.clone()],
            Some(2.0),
            ReturnWhen::AllCompleted,
        ))
        .unwrap();
    assert_eq!(lp.time(), 2.0);
    assert_eq!(done, [fut(&fast)]);
    assert_eq!(pending, [fut(&slow)]);
    assert!(!slow.done() && !slow.cancelled());
    // the pending future completes normally later
    assert_eq!(lp.run_until_complete(slow).unwrap(), 5);
    assert_eq!(lp.time(), 5.0);
}

/// Rules: WAIT-4
#[test]
fn wait_timeout_is_cancelled_when_wait_returns_first() {
    // The timer does not outlive the wait: the loop has nothing left to do.
    let lp = vloop();
    let a = sleeper(&lp, 1.0, 1);
    lp.run_until_complete(wait([a], Some(100.0), ReturnWhen::AllCompleted))
        .unwrap();
    assert_eq!(lp.time(), 1.0);
    assert_holds_no_work(&lp);
}

/// Rules: WAIT-4
#[test]
fn wait_timeout_zero_or_negative_resumes_two_iterations_later() {
    // CPython 3.11.7/3.12.1/3.13.0 ("timeout 0/-1 ... resumed after 2
    // iterations"): the timer fires in the next iteration and the task
    // resumes in the one after. Futures already done are in `done`, the
    // others pending.
    for timeout in [0.0, -1.0, -0.5] {
        let lp = vloop();
        let done_f = lp.create_future::<i32>();
        done_f.set_result(1).unwrap();
        let pending_f = lp.create_future::<i32>();
        let (t, out) = waiting_task(
            &lp,
            vec![pending_f.clone(), done_f.clone()],
            Some(timeout),
            ReturnWhen::AllCompleted,
        );
        run_once(&lp); // the task calls wait()
        assert_eq!(iterations_until_done(&lp, &t), 2, "timeout {timeout}");
        let (done, pending) = out.borrow_mut().take().unwrap().unwrap();
        assert_eq!(done, [done_f]);
        assert_eq!(pending, std::slice::from_ref(&pending_f));
        assert!(!pending_f.done());
        assert_eq!(lp.time(), 0.0);
    }
}

/// Rules: WAIT-4
#[test]
fn wait_timeout_zero_takes_one_iteration_more_than_sleep_zero() {
    // For scale: sleep(0) resumes in the next iteration (TASK-1).
    let lp = vloop();
    let t = lp
        .create_task(async {
            loopspec::sleep(0.0).await?;
            Ok(())
        })
        .unwrap();
    run_once(&lp);
    assert_eq!(iterations_until_done(&lp, &t), 1);
}

/// Rules: WAIT-4
#[test]
fn wait_timeout_counts_what_is_done_when_the_task_resumes() {
    // CPython 3.11.7/3.12.1 ("f2 completed in timer's iteration: done 1"): a
    // future completed by a callback that runs in the timer's iteration —
    // its completion callback runs after the timer fired — is in `done`,
    // because the sets are taken when the waiting task resumes.
    let lp = vloop();
    let f = lp.create_future::<i32>();
    let (t, out) = {
        let (f2, lp2) = (f.clone(), lp.clone());
        let out = Rc::new(RefCell::new(None));
        let o = out.clone();
        let t = lp
            .create_task(async move {
                let f3 = f2.clone();
                lp2.call_soon(move || {
                    // next iteration: queue the completion for the one after
                    let f4 = f3.clone();
                    f3.get_loop()
                        .call_soon(move || f4.set_result(2).unwrap())
                        .unwrap();
                })?;
                *o.borrow_mut() = Some(wait([f2], Some(0.0), ReturnWhen::AllCompleted).await);
                Ok(())
            })
            .unwrap();
        (t, out)
    };
    lp.run_until_complete(t).unwrap();
    let (done, pending) = out.borrow_mut().take().unwrap().unwrap();
    assert_eq!(done, [f]);
    assert!(pending.is_empty());
}

/// Rules: WAIT-4
#[test]
fn wait_timeout_equal_deadline_child_timer_made_before_counts() {
    // The child's sleep(2) timer is made (in its first step) before the
    // wait's timeout timer (the waiting task runs after it): with equal
    // deadlines the child's fires first, so the child finishes first.
    let lp = vloop();
    let child = sleeper(&lp, 2.0, 2);
    let (done, pending) = lp
        .run_until_complete(wait([child.clone()], Some(2.0), ReturnWhen::AllCompleted))
        .unwrap();
    assert_eq!(lp.time(), 2.0);
    assert_eq!(done, [fut(&child)]);
    assert!(pending.is_empty());
}

/// Rules: WAIT-4
#[test]
fn wait_timeout_equal_deadline_child_timer_made_after_is_pending() {
    // The child starts sleeping only after the wait began (it first yields
    // once): its timer fires after the timeout, and it is pending.
    let lp = vloop();
    let child = lp
        .create_task(async {
            loopspec::yield_now().await?;
            loopspec::sleep(2.0).await?;
            Ok(2)
        })
        .unwrap();
    let (done, pending) = lp
        .run_until_complete(wait([child.clone()], Some(2.0), ReturnWhen::AllCompleted))
        .unwrap();
    assert_eq!(lp.time(), 2.0);
    assert!(done.is_empty());
    assert_eq!(pending, [fut(&child)]);
    assert_eq!(lp.run_until_complete(child).unwrap(), 2);
}

/// Rules: WAIT-4, WAIT-3
#[test]
fn wait_timeout_with_first_completed_returns_at_the_earlier() {
    let lp = vloop();
    let a = sleeper(&lp, 5.0, 1);
    let (done, pending) = lp
        .run_until_complete(wait([a.clone()], Some(3.0), ReturnWhen::FirstCompleted))
        .unwrap();
    assert_eq!(lp.time(), 3.0);
    assert!(done.is_empty());
    assert_eq!(pending, [fut(&a)]);
    let b = sleeper(&lp, 1.0, 2);
    let (done, _) = lp
        .run_until_complete(wait(
            [a.clone(), b.clone()],
            Some(3.0),
            ReturnWhen::FirstCompleted,
        ))
        .unwrap();
    assert_eq!(lp.time(), 4.0);
    assert_eq!(done, [fut(&b)]);
    finish(&lp);
}

// ---------------------------------------------------------------------------
// WAIT-5: cancelling the waiting task leaves the futures alone
// ---------------------------------------------------------------------------

/// Rules: WAIT-5
#[test]
fn cancelling_task_in_wait_leaves_futures_alone() {
    let lp = vloop();
    let a = sleeper(&lp, 5.0, 1);
    let b = sleeper(&lp, 6.0, 2);
    let (t, out) = waiting_task(&lp, vec![fut(&a), fut(&b)], None, ReturnWhen::AllCompleted);
    let t2 = t.clone();
    lp.call_later(1.0, move || {
        t2.cancel_with(Some("stop".into()));
    })
    .unwrap();
    lp.run_until_complete(t.clone()).unwrap();
    let r = out.borrow_mut().take().unwrap();
    assert_eq!(r.err(), Some(Error::Cancelled(Some("stop".into()))));
    assert_eq!(lp.time(), 1.0);
    assert!(!a.done() && !b.done());
    assert_eq!(lp.run_until_complete(b.clone()).unwrap(), 2);
    assert!(!a.cancelled() && !b.cancelled());
    assert_eq!(a.result().unwrap(), 1);
}

/// Rules: WAIT-5
#[test]
fn cancelled_wait_stops_watching_its_futures() {
    // After the waiting task is cancelled, a later completion changes
    // nothing for it: the task ends cancelled, and the future completes.
    let lp = vloop();
    let f = lp.create_future::<i32>();
    let steps = Rc::new(Cell::new(0));
    let s = steps.clone();
    let f2 = f.clone();
    let t = lp
        .create_task(async move {
            s.set(s.get() + 1);
            wait([f2], None, ReturnWhen::AllCompleted).await?;
            s.set(s.get() + 1);
            Ok(())
        })
        .unwrap();
    run_once(&lp);
    assert!(t.cancel());
    let err = lp.run_until_complete(t.clone()).unwrap_err();
    assert!(err.is_cancelled());
    assert!(t.cancelled());
    f.set_result(1).unwrap();
    run_once(&lp);
    assert_eq!(steps.get(), 1);
    assert!(!f.cancelled());
}
