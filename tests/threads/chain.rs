//! CHAIN rules of SPEC.md: `wrap_future`, asyncio's `_chain_future` between
//! a concurrent source and a loop-future destination (catalogue X-7..X-10).
//!
//! Virtual-clock loops driven one iteration at a time with `run_once`; any
//! other thread is joined before asserting. The racing test of CHAIN-7
//! asserts only that the observed outcome is one of the allowed ones.
// A loopspec future passed to create_task as it is would be refused (TASK-2):
// the async blocks that only await one future are the coroutines under test.
#![allow(clippy::redundant_async_block)]

use common::{
    capture_exceptions, cf_exception, cf_result, in_thread, recv_or_hang, run_once, vloop,
};
use loopspec::{CfState, ConcurrentFuture, DoneCallback, Error, Future, Profile, wrap_future};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::mpsc;
use std::thread;

/// What `record_done` saw: the outcome's text and the thread, per call.
type DoneRecord = Rc<RefCell<Vec<(Option<String>, thread::ThreadId)>>>;

/// Records, in a loop-bound cell, where and with what the future completed.
fn record_done<T: Clone + std::fmt::Debug + 'static>(fut: &Future<T>) -> DoneRecord {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = seen.clone();
    let cb: DoneCallback<T> = Rc::new(move |_f: &Future<T>| {
        let t = thread::current();
        s.borrow_mut().push((t.name().map(String::from), t.id()));
    });
    fut.add_done_callback(cb).unwrap();
    seen
}

fn assert_cancelled(err: &Error) {
    assert!(err.is_cancelled(), "expected CancelledError, got {err:?}");
    assert_eq!(err.python_type(), "CancelledError");
}

// ---------------------------------------------------------------------------
// CHAIN-1
// ---------------------------------------------------------------------------

/// Rules: CHAIN-1
#[test]
fn wrap_future_makes_a_pending_future_of_the_loop() {
    let lp = vloop();
    let cf = ConcurrentFuture::<i32>::new();
    let w = wrap_future(&cf, &lp).unwrap();
    assert_eq!(w.get_loop(), lp);
    assert!(!w.done());
    assert!(!w.cancelled());
    // Wrapping does not touch the source.
    assert_eq!(cf.state(), CfState::Pending);
    run_once(&lp);
    assert!(!w.done());
    cf.set_result(8).unwrap();
    run_once(&lp);
    assert_eq!(w.result(), Ok(8));
    lp.close().unwrap();
}

/// Rules: CHAIN-1
#[test]
fn wrap_future_twice_gives_two_futures_fed_by_one_source() {
    let lp = vloop();
    let cf = ConcurrentFuture::<&'static str>::new();
    let a = wrap_future(&cf, &lp).unwrap();
    let b = wrap_future(&cf, &lp).unwrap();
    assert!(a != b, "two distinct destinations");
    let c = cf.clone();
    thread::spawn(move || c.set_result("x").unwrap())
        .join()
        .unwrap();
    run_once(&lp);
    assert_eq!(a.result(), Ok("x"));
    assert_eq!(b.result(), Ok("x"));
    lp.close().unwrap();
}

/// Rules: CHAIN-1, EXEC-1
#[test]
fn wrap_future_result_is_awaitable_by_run_until_complete() {
    let lp = vloop();
    let cf = ConcurrentFuture::<u64>::new();
    let w = wrap_future(&cf, &lp).unwrap();
    let worker = cf.clone();
    let t = thread::spawn(move || {
        if worker.set_running_or_notify_cancel().unwrap() {
            worker.set_result(99).unwrap();
        }
    });
    assert_eq!(lp.run_until_complete(w), Ok(99));
    t.join().unwrap();
    lp.close().unwrap();
}

/// Rules: CHAIN-1, THREAD-1
#[test]
fn wrap_future_off_the_home_thread_fails() {
    let lp = vloop();
    lp.call_soon(|| ()).unwrap(); // this thread is the home now
    let (l, cf) = (lp.clone(), ConcurrentFuture::<i32>::new());
    let c = cf.clone();
    let err = thread::spawn(move || wrap_future(&c, &l).map(|_| ()).unwrap_err())
        .join()
        .unwrap();
    assert_eq!(err, Error::NonThreadSafeCall);
    lp.close().unwrap();
}

// ---------------------------------------------------------------------------
// CHAIN-2
// ---------------------------------------------------------------------------

/// Rules: CHAIN-2
#[test]
fn wrap_future_copies_the_result() {
    let lp = vloop();
    let cf = ConcurrentFuture::<String>::new();
    let w = wrap_future(&cf, &lp).unwrap();
    cf.set_result("value".into()).unwrap();
    run_once(&lp);
    assert!(w.done());
    assert!(!w.cancelled());
    assert_eq!(w.result(), Ok("value".to_string()));
    lp.close().unwrap();
}

/// Rules: CHAIN-2
#[test]
fn wrap_future_copies_the_exception() {
    let lp = vloop();
    let cf = ConcurrentFuture::<i32>::new();
    let w = wrap_future(&cf, &lp).unwrap();
    let e = Error::raise("ValueError", "remote failure");
    cf.set_exception(e.clone()).unwrap();
    run_once(&lp);
    assert!(w.done());
    assert!(!w.cancelled());
    assert_eq!(w.exception(), Ok(Some(e.clone())));
    assert_eq!(w.result(), Err(e));

    // A TimeoutError stays a TimeoutError.
    let cf = ConcurrentFuture::<i32>::new();
    let w = wrap_future(&cf, &lp).unwrap();
    cf.set_exception(Error::Timeout).unwrap();
    run_once(&lp);
    assert_eq!(w.exception(), Ok(Some(Error::Timeout)));
    lp.close().unwrap();
}

/// Rules: CHAIN-2
#[test]
fn wrap_future_cancelled_source_cancels_the_destination() {
    let lp = vloop();
    let cf = ConcurrentFuture::<i32>::new();
    let w = wrap_future(&cf, &lp).unwrap();
    assert!(cf.cancel());
    assert!(!w.done(), "copied in an iteration, not synchronously");
    run_once(&lp);
    assert!(w.cancelled());
    assert_cancelled(&w.result().unwrap_err());
    // The source stays cancelled.
    assert_eq!(cf.state(), CfState::Cancelled);
    lp.close().unwrap();
}

/// Rules: CHAIN-2, FUT-5
#[test]
fn wrap_future_cancelled_error_exception_finishes_the_destination() {
    let lp = vloop();
    let cf = ConcurrentFuture::<i32>::new();
    let w = wrap_future(&cf, &lp).unwrap();
    cf.set_exception(Error::Cancelled(Some("cf-cancel".into())))
        .unwrap();
    run_once(&lp);
    assert!(w.done());
    assert!(
        !w.cancelled(),
        "finished with a CancelledError, not cancelled"
    );
    let exc = w.exception().unwrap().unwrap();
    assert_eq!(exc, Error::Cancelled(Some("cf-cancel".into())));
    assert_eq!(exc.to_string(), "cf-cancel");
    assert_eq!(format!("{exc:?}"), "CancelledError('cf-cancel')");
    lp.close().unwrap();
}

/// Rules: CHAIN-2
#[test]
fn wrap_future_copies_a_panic_exception() {
    let lp = vloop();
    let cf = ConcurrentFuture::<i32>::new();
    let w = wrap_future(&cf, &lp).unwrap();
    cf.set_exception(Error::Panic("boom".into())).unwrap();
    run_once(&lp);
    let e = w.exception().unwrap().unwrap();
    assert_eq!(e.python_type(), "Panic");
    assert_eq!(e.to_string(), "boom");
    lp.close().unwrap();
}

// ---------------------------------------------------------------------------
// CHAIN-3
// ---------------------------------------------------------------------------

/// Rules: CHAIN-3
#[test]
fn wrap_future_of_a_done_source_is_done_only_after_one_iteration() {
    let lp = vloop();
    let cf = ConcurrentFuture::<i32>::new();
    cf.set_result(3).unwrap();
    let w = wrap_future(&cf, &lp).unwrap();
    assert!(!w.done(), "never synchronously, even for a done source");
    run_once(&lp);
    assert_eq!(w.result(), Ok(3));

    // Same for a source that is already cancelled.
    let cf = ConcurrentFuture::<i32>::new();
    cf.cancel();
    let w = wrap_future(&cf, &lp).unwrap();
    assert!(!w.done());
    run_once(&lp);
    assert!(w.cancelled());
    lp.close().unwrap();
}

/// Rules: CHAIN-3
#[test]
fn wrap_future_completed_on_the_idle_loops_own_thread_is_not_done_synchronously() {
    let lp = vloop();
    let cf = ConcurrentFuture::<i32>::new();
    let w = wrap_future(&cf, &lp).unwrap();
    cf.set_result(1).unwrap(); // this thread is the loop's home, the loop idle
    assert!(!w.done());
    run_once(&lp);
    assert!(w.done());
    lp.close().unwrap();
}

/// Rules: CHAIN-3
#[test]
fn wrap_future_completed_from_another_thread_is_done_in_the_next_iteration() {
    let lp = vloop();
    let cf = ConcurrentFuture::<i32>::new();
    let w = wrap_future(&cf, &lp).unwrap();
    let c = cf.clone();
    thread::spawn(move || c.set_result(5).unwrap())
        .join()
        .unwrap();
    assert!(!w.done());
    run_once(&lp);
    assert_eq!(w.result(), Ok(5));
    lp.close().unwrap();
}

/// A source completed by a callback of the running destination loop: up to
/// 3.12 (and 3.13.0) the copy still waits an iteration; from 3.13 (3.13.18)
/// it is made at once, so the next callback of the same iteration sees the
/// wrapper done.
/// Rules: CHAIN-3
#[test]
fn wrap_future_completed_inside_a_callback_by_profile() {
    for profile in Profile::ALL {
        let lp = vloop_of(profile);
        let cf = ConcurrentFuture::<i32>::new();
        let w = wrap_future(&cf, &lp).unwrap();
        let seen_in_same_iteration = Rc::new(RefCell::new(Vec::new()));
        let (c, w1, s1) = (cf.clone(), w.clone(), seen_in_same_iteration.clone());
        lp.call_soon(move || c.set_result(2).unwrap()).unwrap();
        lp.call_soon(move || s1.borrow_mut().push(w1.done()))
            .unwrap();
        run_once(&lp);
        let at_once = profile >= Profile::Py313;
        assert_eq!(*seen_in_same_iteration.borrow(), [at_once], "{profile:?}");
        assert_eq!(w.done(), at_once, "{profile:?}");
        run_once(&lp);
        assert_eq!(w.result(), Ok(2));
        lp.close().unwrap();
    }
}

/// `wrap_future` of a done source called from a task of the running loop:
/// from 3.13 the wrapper is done when `wrap_future` returns.
/// Rules: CHAIN-3
#[test]
fn wrap_future_of_a_done_source_inside_the_running_loop_by_profile() {
    for profile in Profile::ALL {
        let lp = vloop_of(profile);
        let l = lp.clone();
        let done_at_once = lp
            .run_until_complete(async move {
                let cf = ConcurrentFuture::<i32>::new();
                cf.set_result(4).unwrap();
                let w = wrap_future(&cf, &l)?;
                let at_once = w.done();
                assert_eq!(w.await, Ok(4));
                Ok(at_once)
            })
            .unwrap();
        assert_eq!(done_at_once, profile >= Profile::Py313, "{profile:?}");
        lp.close().unwrap();
    }
}

/// A loop on the virtual clock following `profile`.
fn vloop_of(profile: Profile) -> loopspec::EventLoop {
    loopspec::EventLoop::builder()
        .clock(loopspec::ClockKind::Virtual)
        .profile(profile)
        .build()
}

/// Rules: CHAIN-3
#[test]
fn wrap_future_done_callbacks_run_on_the_loops_thread() {
    let (loop_thread, seen) = in_thread("chain-loop", || {
        let lp = vloop();
        let cf = ConcurrentFuture::<i32>::new();
        let w = wrap_future(&cf, &lp).unwrap();
        let seen = record_done(&w);
        let c = cf.clone();
        let completer = thread::Builder::new()
            .name("completer".into())
            .spawn(move || c.set_result(1).unwrap())
            .unwrap();
        completer.join().unwrap();
        run_once(&lp); // copies the state
        assert!(
            seen.borrow().is_empty(),
            "callbacks are scheduled, not run inline"
        );
        run_once(&lp); // runs the done callbacks
        lp.close().unwrap();
        let seen = seen.borrow().clone();
        (thread::current().id(), seen)
    });
    assert_eq!(seen, vec![(Some("chain-loop".to_string()), loop_thread)]);
}

/// Rules: CHAIN-3, THREAD-7
#[test]
fn wrap_future_completed_from_another_thread_wakes_a_parked_loop() {
    // The loop waits with nothing to do; only the completion's submission
    // can end the run (run_until_complete stops when the wrapper is done).
    let lp = vloop();
    let cf = ConcurrentFuture::<i32>::new();
    let w = wrap_future(&cf, &lp).unwrap();
    let (tx, rx) = mpsc::channel::<()>();
    let c = cf.clone();
    let completer = thread::spawn(move || {
        recv_or_hang(&rx, "the loop is running");
        c.set_result(12).unwrap();
    });
    lp.call_soon(move || tx.send(()).unwrap()).unwrap();
    assert_eq!(lp.run_until_complete(w), Ok(12));
    completer.join().unwrap();
    lp.close().unwrap();
}

// ---------------------------------------------------------------------------
// CHAIN-4
// ---------------------------------------------------------------------------

/// Rules: CHAIN-4
#[test]
fn cancelling_the_wrapper_cancels_the_source_one_iteration_later() {
    let lp = vloop();
    let cf = ConcurrentFuture::<i32>::new();
    let w = wrap_future(&cf, &lp).unwrap();
    assert!(w.cancel());
    assert!(w.cancelled());
    assert_eq!(cf.state(), CfState::Pending, "not synchronously");
    run_once(&lp);
    assert_eq!(cf.state(), CfState::Cancelled);
    // A worker that checks before starting does not start.
    assert_eq!(cf.set_running_or_notify_cancel(), Ok(false));
    lp.close().unwrap();
}

/// Rules: CHAIN-4
#[test]
fn cancelling_the_wrapper_right_after_wrapping_cancels_the_source_later() {
    // X-8: "source not cancelled right after chaining, cancelled after one
    // iteration" (CPython 3.11.7).
    let lp = vloop();
    let cf = ConcurrentFuture::<i32>::new();
    let w = wrap_future(&cf, &lp).unwrap();
    w.cancel_with(Some("stop".into()));
    assert!(!cf.cancelled());
    run_once(&lp);
    assert!(cf.cancelled());
    assert_eq!(w.result(), Err(Error::Cancelled(Some("stop".into()))));
    lp.close().unwrap();
}

/// Rules: CHAIN-4
#[test]
fn cancelling_the_wrapper_from_a_task_cancels_the_source() {
    let lp = vloop();
    let cf = ConcurrentFuture::<i32>::new();
    let w = wrap_future(&cf, &lp).unwrap();
    let waiter = w.clone();
    let task = lp.create_task(async move { waiter.await }).unwrap();
    run_once(&lp); // the task waits on the wrapper
    assert!(task.cancel()); // cancels the wrapper it waits on
    for _ in 0..3 {
        run_once(&lp);
    }
    assert!(task.cancelled());
    assert!(w.cancelled());
    assert!(cf.cancelled());
    lp.close().unwrap();
}

// ---------------------------------------------------------------------------
// CHAIN-5
// ---------------------------------------------------------------------------

/// Rules: CHAIN-5
#[test]
fn cancelling_the_wrapper_of_a_running_source_leaves_the_source_running() {
    let lp = vloop();
    let errors = capture_exceptions(&lp);
    let cf = ConcurrentFuture::<i32>::new();
    assert_eq!(cf.set_running_or_notify_cancel(), Ok(true));
    let w = wrap_future(&cf, &lp).unwrap();
    assert!(w.cancel());
    run_once(&lp);
    assert_eq!(
        cf.state(),
        CfState::Running,
        "cancel() of a running source fails"
    );
    // The source carries on and finishes; its result is dropped.
    assert_eq!(cf.set_result(5), Ok(()));
    run_once(&lp);
    run_once(&lp);
    assert!(w.cancelled(), "the wrapper stays cancelled");
    assert_eq!(cf.state(), CfState::Finished);
    assert_eq!(cf_result(&cf), Ok(5));
    assert!(
        errors.lock().unwrap().is_empty(),
        "{:?}",
        errors.lock().unwrap()
    );
    lp.close().unwrap();
}

/// Rules: CHAIN-5
#[test]
fn wrapper_of_a_running_source_finished_by_another_thread_stays_cancelled() {
    let lp = vloop();
    let errors = capture_exceptions(&lp);
    let cf = ConcurrentFuture::<i32>::new();
    let w = wrap_future(&cf, &lp).unwrap();
    let (started_tx, started_rx) = mpsc::channel();
    let (finish_tx, finish_rx) = mpsc::channel::<()>();
    let worker_cf = cf.clone();
    let worker = thread::spawn(move || {
        assert!(worker_cf.set_running_or_notify_cancel().unwrap());
        started_tx.send(()).unwrap();
        recv_or_hang(&finish_rx, "the go-ahead to finish");
        worker_cf.set_exception(Error::raise("ValueError", "late"))
    });
    recv_or_hang(&started_rx, "the worker started");
    w.cancel();
    run_once(&lp);
    finish_tx.send(()).unwrap();
    assert_eq!(worker.join().unwrap(), Ok(()));
    run_once(&lp);
    assert!(w.cancelled());
    assert_cancelled(&w.result().unwrap_err());
    assert_eq!(
        cf_exception(&cf),
        Ok(Some(Error::raise("ValueError", "late")))
    );
    assert!(errors.lock().unwrap().is_empty());
    lp.close().unwrap();
}

// ---------------------------------------------------------------------------
// CHAIN-6
// ---------------------------------------------------------------------------

/// Rules: CHAIN-6
#[test]
fn wrapper_on_a_closed_loop_stays_pending_when_the_source_completes() {
    let lp = vloop();
    let errors = capture_exceptions(&lp);
    let cf = ConcurrentFuture::<i32>::new();
    let w = wrap_future(&cf, &lp).unwrap();
    lp.close().unwrap();
    // Nothing raised at the completion, in this thread or another.
    assert_eq!(cf.set_result(1), Ok(()));
    assert!(!w.done());
    assert!(errors.lock().unwrap().is_empty());
    assert_eq!(lp.inbox_stats().submissions, 0, "nothing scheduled");

    let cf2 = ConcurrentFuture::<i32>::new();
    let lp2 = vloop();
    let w2 = wrap_future(&cf2, &lp2).unwrap();
    lp2.close().unwrap();
    let c = cf2.clone();
    thread::spawn(move || c.set_exception(Error::raise("ValueError", "v")))
        .join()
        .unwrap()
        .unwrap();
    assert!(!w2.done());
}

/// Rules: CHAIN-6
#[test]
fn wrap_future_on_an_already_closed_loop_gives_a_pending_future() {
    let lp = vloop();
    lp.close().unwrap();
    let cf = ConcurrentFuture::<i32>::new();
    let w = wrap_future(&cf, &lp).unwrap();
    assert!(!w.done());
    assert_eq!(w.get_loop(), lp);
    cf.set_result(1).unwrap();
    assert!(!w.done());
    assert_eq!(cf.state(), CfState::Finished);
    assert_eq!(lp.inbox_stats().submissions, 0);
}

/// Rules: CHAIN-6
#[test]
fn wrapper_whose_copy_was_queued_before_close_stays_pending() {
    let lp = vloop();
    let errors = capture_exceptions(&lp);
    let cf = ConcurrentFuture::<i32>::new();
    let w = wrap_future(&cf, &lp).unwrap();
    cf.set_result(1).unwrap(); // the copy is queued
    lp.close().unwrap(); // and dropped
    assert!(!w.done());
    assert!(errors.lock().unwrap().is_empty());
}

// ---------------------------------------------------------------------------
// CHAIN-7
// ---------------------------------------------------------------------------

/// Rules: CHAIN-7
#[test]
fn source_completes_then_destination_cancelled_before_the_copy() {
    let lp = vloop();
    let errors = capture_exceptions(&lp);
    let cf = ConcurrentFuture::<i32>::new();
    let w = wrap_future(&cf, &lp).unwrap();
    cf.set_result(1).unwrap(); // copy queued
    assert!(w.cancel()); // the destination is cancelled first
    for _ in 0..3 {
        run_once(&lp);
    }
    assert!(w.cancelled(), "the queued copy is ignored");
    assert_eq!(cf.state(), CfState::Finished);
    assert_eq!(cf_result(&cf), Ok(1));
    assert!(errors.lock().unwrap().is_empty());
    lp.close().unwrap();
}

/// Rules: CHAIN-7
#[test]
fn destination_cancelled_then_source_completes_before_the_iteration() {
    let lp = vloop();
    let errors = capture_exceptions(&lp);
    let cf = ConcurrentFuture::<i32>::new();
    let w = wrap_future(&cf, &lp).unwrap();
    assert!(w.cancel());
    let c = cf.clone();
    thread::spawn(move || c.set_result(1).unwrap())
        .join()
        .unwrap();
    for _ in 0..3 {
        run_once(&lp);
    }
    assert!(w.cancelled());
    assert_eq!(
        cf.state(),
        CfState::Finished,
        "a finished source is not cancelled"
    );
    assert!(errors.lock().unwrap().is_empty());
    lp.close().unwrap();
}

/// Rules: CHAIN-7
#[test]
fn destination_cancelled_then_source_cancelled_then_worker_refuses() {
    let lp = vloop();
    let errors = capture_exceptions(&lp);
    let cf = ConcurrentFuture::<i32>::new();
    let w = wrap_future(&cf, &lp).unwrap();
    assert!(w.cancel());
    run_once(&lp);
    assert_eq!(cf.state(), CfState::Cancelled);
    // The source's cancellation copies back into the cancelled wrapper: ignored.
    run_once(&lp);
    run_once(&lp);
    assert!(w.cancelled());
    assert_eq!(cf.set_running_or_notify_cancel(), Ok(false));
    assert!(errors.lock().unwrap().is_empty());
    lp.close().unwrap();
}

/// Rules: CHAIN-7
#[test]
fn destination_cancel_racing_with_source_completion_has_an_allowed_outcome() {
    let mut finished = 0;
    let mut cancelled = 0;
    for i in 0..200 {
        let lp = vloop();
        let errors = capture_exceptions(&lp);
        let cf = ConcurrentFuture::<i32>::new();
        let w = wrap_future(&cf, &lp).unwrap();
        let c = cf.clone();
        let (ready_tx, ready_rx) = mpsc::channel();
        let worker = thread::spawn(move || {
            ready_tx.send(()).unwrap();
            if c.set_running_or_notify_cancel().unwrap() {
                c.set_result(i).map(|_| true)
            } else {
                Ok(false)
            }
        });
        recv_or_hang(&ready_rx, "the worker is ready");
        assert!(w.cancel());
        run_once(&lp); // races with the worker
        let worked = worker.join().unwrap();
        run_once(&lp);
        run_once(&lp);
        assert!(w.cancelled(), "run {i}: the destination ends cancelled");
        match (cf.state(), worked) {
            (CfState::Finished, Ok(true)) => {
                assert_eq!(cf_result(&cf), Ok(i));
                finished += 1;
            }
            (CfState::CancelledAndNotified, Ok(false)) => cancelled += 1,
            other => panic!("run {i}: outcome not allowed: {other:?}"),
        }
        assert!(errors.lock().unwrap().is_empty(), "run {i}");
        lp.close().unwrap();
    }
    assert_eq!(finished + cancelled, 200);
}

/// Rules: CHAIN-7, CHAIN-6
#[test]
fn source_completion_racing_with_close_leaves_one_state_each() {
    for i in 0..200 {
        let lp = vloop();
        let errors = capture_exceptions(&lp);
        let cf = ConcurrentFuture::<i32>::new();
        let w = wrap_future(&cf, &lp).unwrap();
        let c = cf.clone();
        let worker = thread::spawn(move || c.set_result(i));
        lp.close().unwrap();
        assert_eq!(worker.join().unwrap(), Ok(()), "run {i}");
        assert_eq!(cf.state(), CfState::Finished);
        assert!(
            !w.done(),
            "run {i}: never copied into a closed loop's future"
        );
        assert!(errors.lock().unwrap().is_empty());
    }
}
