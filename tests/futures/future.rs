//! FUT rules of SPEC.md: `Future<T>` states, reading, completing, cancelling,
//! done callbacks, unretrieved exceptions, other-loop awaits and awaiting from
//! loopspec tasks and from foreign executors.
// A loopspec future passed to create_task as it is would be refused (TASK-2):
// the async blocks that only await one future are the coroutines under test.
#![allow(clippy::redundant_async_block)]

use common::{Log, capture_exceptions, run_once, vloop};
use loopspec::{DoneCallback, Error, EventLoop, Future};
use std::cell::{Cell, RefCell};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};

/// A waker for hand-polling (a "foreign executor") that counts its wake-ups.
#[derive(Default)]
struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn counting_waker() -> (Arc<CountingWaker>, Waker) {
    let c = Arc::new(CountingWaker::default());
    (c.clone(), Waker::from(c))
}

/// Polls `f` once with `waker`, outside any loopspec task.
fn poll_once<F: std::future::Future + Unpin>(f: &mut F, waker: &Waker) -> Poll<F::Output> {
    Pin::new(f).poll(&mut Context::from_waker(waker))
}

fn value_error(msg: &str) -> Error {
    Error::raise("ValueError", msg)
}

/// A done callback that records `tag` and the future's result in `log`.
fn recording_cb(log: &Log, tag: &str) -> DoneCallback<i32> {
    let log = log.clone();
    let tag = tag.to_string();
    Rc::new(move |f: &Future<i32>| log.push(format!("{tag}:{:?}", f.result())))
}

// ---------------------------------------------------------------------------
// FUT-1: states
// ---------------------------------------------------------------------------

/// Rules: FUT-1
#[test]
fn future_starts_pending() {
    let lp = vloop();
    let fut = lp.create_future::<i32>();
    assert!(!fut.done());
    assert!(!fut.cancelled());
    assert_eq!(format!("{fut:?}"), "<Future pending>");
    assert_eq!(fut.get_loop(), lp);
}

/// Rules: FUT-1
#[test]
fn future_finished_with_result_is_done_not_cancelled() {
    let lp = vloop();
    let fut = lp.create_future::<i32>();
    fut.set_result(3).unwrap();
    assert!(fut.done());
    assert!(!fut.cancelled());
    assert_eq!(fut.result().unwrap(), 3);
    assert_eq!(fut.exception().unwrap(), None);
}

/// Rules: FUT-1
#[test]
fn future_finished_with_exception_is_done_not_cancelled() {
    let lp = vloop();
    let fut = lp.create_future::<i32>();
    fut.set_exception(value_error("x")).unwrap();
    assert!(fut.done());
    assert!(!fut.cancelled());
    assert_eq!(fut.result().unwrap_err(), value_error("x"));
    assert_eq!(fut.exception().unwrap(), Some(value_error("x")));
}

/// Rules: FUT-1, FUT-4
#[test]
fn future_cancelled_is_done_and_cancelled() {
    let lp = vloop();
    let fut = lp.create_future::<i32>();
    assert!(fut.cancel());
    assert!(fut.done());
    assert!(fut.cancelled());
}

/// Rules: FUT-1, FUT-3, FUT-4
#[test]
fn future_leaves_pending_only_once() {
    let lp = vloop();
    let fut = lp.create_future::<i32>();
    fut.set_result(1).unwrap();
    assert!(!fut.cancel());
    assert_eq!(fut.set_result(2).unwrap_err(), Error::InvalidState);
    assert_eq!(
        fut.set_exception(value_error("late")).unwrap_err(),
        Error::InvalidState
    );
    assert!(fut.done());
    assert!(!fut.cancelled());
    assert_eq!(fut.result().unwrap(), 1);
}

/// Rules: FUT-1
#[test]
fn future_repr_shows_the_state_in_asyncio_shape() {
    // SPEC.md, Rust mapping: reprs follow asyncio's shape, e.g.
    // `<Future finished exception=ValueError('x')>`.
    let lp = vloop();
    let pending = lp.create_future::<i32>();
    assert_eq!(format!("{pending:?}"), "<Future pending>");
    let done = lp.create_future::<i32>();
    done.set_result(1).unwrap();
    assert_eq!(format!("{done:?}"), "<Future finished>");
    let cancelled = lp.create_future::<i32>();
    cancelled.cancel();
    assert_eq!(format!("{cancelled:?}"), "<Future cancelled>");
    let failed = lp.create_future::<i32>();
    failed.set_exception(value_error("x")).unwrap();
    assert_eq!(
        format!("{failed:?}"),
        "<Future finished exception=ValueError('x')>"
    );
    let _ = failed.exception();
}

// ---------------------------------------------------------------------------
// FUT-2: reading a pending future
// ---------------------------------------------------------------------------

/// Rules: FUT-2, ERR-1
#[test]
fn future_result_of_pending_is_invalid_state() {
    let lp = vloop();
    let fut = lp.create_future::<i32>();
    let err = fut.result().unwrap_err();
    assert_eq!(err, Error::ResultNotSet);
    assert_eq!(err.to_string(), "Result is not set.");
    assert_eq!(err.python_type(), "InvalidStateError");
    assert!(!fut.done());
}

/// Rules: FUT-2, ERR-1
#[test]
fn future_exception_of_pending_is_invalid_state() {
    let lp = vloop();
    let fut = lp.create_future::<i32>();
    let err = fut.exception().unwrap_err();
    assert_eq!(err, Error::ExceptionNotSet);
    assert_eq!(err.to_string(), "Exception is not set.");
    assert_eq!(err.python_type(), "InvalidStateError");
    assert!(!fut.done());
}

// ---------------------------------------------------------------------------
// FUT-3: completing a done future
// ---------------------------------------------------------------------------

/// Rules: FUT-3, ERR-1
#[test]
fn future_set_result_twice_is_invalid_state() {
    let lp = vloop();
    let fut = lp.create_future::<i32>();
    fut.set_result(1).unwrap();
    let err = fut.set_result(2).unwrap_err();
    assert_eq!(err, Error::InvalidState);
    assert_eq!(err.to_string(), "invalid state");
    assert_eq!(err.python_type(), "InvalidStateError");
    assert_eq!(fut.result().unwrap(), 1);
}

/// Rules: FUT-3
#[test]
fn future_set_exception_after_exception_changes_nothing() {
    let lp = vloop();
    let fut = lp.create_future::<i32>();
    fut.set_exception(value_error("first")).unwrap();
    let err = fut.set_exception(value_error("second")).unwrap_err();
    assert_eq!(err.to_string(), "invalid state");
    assert_eq!(err.python_type(), "InvalidStateError");
    assert_eq!(fut.set_result(5).unwrap_err(), Error::InvalidState);
    assert_eq!(fut.exception().unwrap(), Some(value_error("first")));
}

/// Rules: FUT-3
#[test]
fn future_completing_a_cancelled_future_fails_and_stays_cancelled() {
    let lp = vloop();
    let fut = lp.create_future::<i32>();
    fut.cancel_with(Some("stop".into()));
    assert_eq!(fut.set_result(1).unwrap_err(), Error::InvalidState);
    assert_eq!(
        fut.set_exception(value_error("x")).unwrap_err(),
        Error::InvalidState
    );
    assert!(fut.cancelled());
    assert_eq!(
        fut.result().unwrap_err(),
        Error::Cancelled(Some("stop".into()))
    );
}

/// Rules: FUT-3, FUT-6
#[test]
fn future_failed_completion_schedules_no_callbacks() {
    let lp = vloop();
    let log = Log::new();
    let fut = lp.create_future::<i32>();
    fut.add_done_callback(recording_cb(&log, "cb")).unwrap();
    fut.set_result(1).unwrap();
    let _ = fut.set_result(2);
    let _ = fut.set_exception(value_error("x"));
    fut.cancel();
    run_once(&lp);
    assert_eq!(log.take(), ["cb:Ok(1)"]);
    run_once(&lp);
    assert!(log.get().is_empty());
}

// ---------------------------------------------------------------------------
// FUT-4: cancel(msg)
// ---------------------------------------------------------------------------

/// Rules: FUT-4, ERR-1
#[test]
fn future_cancel_without_message_raises_empty_cancelled_error() {
    let lp = vloop();
    let fut = lp.create_future::<i32>();
    assert!(fut.cancel());
    let err = fut.result().unwrap_err();
    assert_eq!(err, Error::Cancelled(None));
    assert_eq!(err.to_string(), "");
    assert_eq!(err.python_type(), "CancelledError");
    assert!(err.is_cancelled());
    assert_eq!(fut.exception().unwrap_err(), Error::Cancelled(None));
}

/// Rules: FUT-4
#[test]
fn future_cancel_with_message_every_reader_gets_it() {
    let lp = vloop();
    let fut = lp.create_future::<i32>();
    assert!(fut.cancel_with(Some("why".into())));
    for _ in 0..3 {
        let err = fut.result().unwrap_err();
        assert_eq!(err, Error::Cancelled(Some("why".into())));
        assert_eq!(err.to_string(), "why");
        assert_eq!(err.python_type(), "CancelledError");
        assert_eq!(
            fut.exception().unwrap_err(),
            Error::Cancelled(Some("why".into()))
        );
    }
}

/// Rules: FUT-4
#[test]
fn future_cancel_on_done_future_returns_false() {
    let lp = vloop();
    let fut = lp.create_future::<i32>();
    assert!(fut.cancel_with(Some("a".into())));
    assert!(!fut.cancel());
    assert!(!fut.cancel_with(Some("b".into())));
    assert_eq!(
        fut.result().unwrap_err(),
        Error::Cancelled(Some("a".into()))
    );

    let finished = lp.create_future::<i32>();
    finished.set_result(1).unwrap();
    assert!(!finished.cancel());
    assert!(!finished.cancelled());
    assert_eq!(finished.result().unwrap(), 1);

    let failed = lp.create_future::<i32>();
    failed.set_exception(value_error("x")).unwrap();
    assert!(!failed.cancel());
    assert!(!failed.cancelled());
    assert_eq!(failed.exception().unwrap(), Some(value_error("x")));
}

/// Rules: FUT-4, FUT-6
#[test]
fn future_cancel_schedules_done_callbacks() {
    let lp = vloop();
    let log = Log::new();
    let fut = lp.create_future::<i32>();
    fut.add_done_callback(recording_cb(&log, "cb")).unwrap();
    assert!(fut.cancel_with(Some("m".into())));
    assert!(log.get().is_empty());
    run_once(&lp);
    assert_eq!(log.take(), [r#"cb:Err(CancelledError('m'))"#]);
}

// ---------------------------------------------------------------------------
// FUT-5: finishing with a CancelledError
// ---------------------------------------------------------------------------

/// Rules: FUT-5
#[test]
fn future_set_exception_cancelled_error_is_not_cancelled() {
    let lp = vloop();
    let fut = lp.create_future::<i32>();
    fut.set_exception(Error::Cancelled(Some("x".into())))
        .unwrap();
    assert!(fut.done());
    assert!(!fut.cancelled());
    assert_eq!(
        fut.result().unwrap_err(),
        Error::Cancelled(Some("x".into()))
    );
    assert_eq!(
        fut.exception().unwrap(),
        Some(Error::Cancelled(Some("x".into())))
    );
    // Finished, so a later cancel() is refused.
    assert!(!fut.cancel());
    assert!(!fut.cancelled());
}

/// Rules: FUT-5
#[test]
fn future_set_exception_cancelled_error_awaiter_gets_it() {
    let lp = vloop();
    let fut = lp.create_future::<i32>();
    let f2 = fut.clone();
    let t = lp.create_task(async move { f2.await }).unwrap();
    run_once(&lp);
    fut.set_exception(Error::Cancelled(None)).unwrap();
    let out = lp.run_until_complete(t.clone());
    assert_eq!(out.unwrap_err(), Error::Cancelled(None));
    assert!(!fut.cancelled());
}

// ---------------------------------------------------------------------------
// FUT-6: done callbacks
// ---------------------------------------------------------------------------

/// Rules: FUT-6
#[test]
fn future_done_callbacks_not_run_inside_set_result() {
    let lp = vloop();
    let log = Log::new();
    let fut = lp.create_future::<i32>();
    fut.add_done_callback(recording_cb(&log, "a")).unwrap();
    fut.set_result(7).unwrap();
    assert!(log.get().is_empty());
    run_once(&lp);
    assert_eq!(log.take(), ["a:Ok(7)"]);
}

/// Rules: FUT-6
#[test]
fn future_done_callbacks_not_run_inside_set_exception() {
    let lp = vloop();
    let log = Log::new();
    let fut = lp.create_future::<i32>();
    fut.add_done_callback(recording_cb(&log, "a")).unwrap();
    fut.set_exception(value_error("x")).unwrap();
    assert!(log.get().is_empty());
    run_once(&lp);
    assert_eq!(log.take(), [r#"a:Err(ValueError('x'))"#]);
}

/// Rules: FUT-6
#[test]
fn future_done_callbacks_run_in_registration_order_via_call_soon() {
    let lp = vloop();
    let log = Log::new();
    let fut = lp.create_future::<i32>();
    fut.add_done_callback(recording_cb(&log, "first")).unwrap();
    fut.add_done_callback(recording_cb(&log, "second")).unwrap();
    fut.add_done_callback(recording_cb(&log, "third")).unwrap();
    // Completion appends the callbacks to the ready queue, between what was
    // queued before and what is queued after.
    lp.call_soon(log.cb("before")).unwrap();
    fut.set_result(1).unwrap();
    lp.call_soon(log.cb("after")).unwrap();
    run_once(&lp);
    assert_eq!(
        log.take(),
        [
            "before",
            "first:Ok(1)",
            "second:Ok(1)",
            "third:Ok(1)",
            "after"
        ]
    );
}

/// Rules: FUT-6
#[test]
fn future_add_done_callback_on_done_future_schedules_it() {
    let lp = vloop();
    let log = Log::new();
    let fut = lp.create_future::<i32>();
    fut.set_result(4).unwrap();
    lp.call_soon(log.cb("queued-first")).unwrap();
    fut.add_done_callback(recording_cb(&log, "late")).unwrap();
    // Not run inline.
    assert_eq!(log.get(), Vec::<String>::new());
    run_once(&lp);
    assert_eq!(log.take(), ["queued-first", "late:Ok(4)"]);
    // Scheduled once only.
    run_once(&lp);
    assert!(log.get().is_empty());
}

/// Rules: FUT-6
#[test]
fn future_add_done_callback_on_cancelled_future_schedules_it() {
    let lp = vloop();
    let log = Log::new();
    let fut = lp.create_future::<i32>();
    fut.cancel();
    fut.add_done_callback(recording_cb(&log, "late")).unwrap();
    assert!(log.get().is_empty());
    run_once(&lp);
    assert_eq!(log.take(), ["late:Err(CancelledError())"]);
}

/// Rules: FUT-6
#[test]
fn future_done_callback_added_during_callbacks_runs_next_iteration() {
    let lp = vloop();
    let log = Log::new();
    let fut = lp.create_future::<i32>();
    let late = recording_cb(&log, "late");
    let log2 = log.clone();
    fut.add_done_callback(Rc::new(move |f: &Future<i32>| {
        log2.push("early");
        f.add_done_callback(late.clone()).unwrap();
    }))
    .unwrap();
    fut.set_result(1).unwrap();
    run_once(&lp);
    assert_eq!(log.take(), ["early"]);
    run_once(&lp);
    assert_eq!(log.take(), ["late:Ok(1)"]);
}

/// Rules: FUT-6
#[test]
fn future_remove_done_callback_counts_every_registration() {
    let lp = vloop();
    let log = Log::new();
    let fut = lp.create_future::<i32>();
    let cb = recording_cb(&log, "dup");
    let other = recording_cb(&log, "other");
    fut.add_done_callback(cb.clone()).unwrap();
    fut.add_done_callback(other.clone()).unwrap();
    fut.add_done_callback(cb.clone()).unwrap();
    assert_eq!(fut.remove_done_callback(&cb), 2);
    assert_eq!(fut.remove_done_callback(&cb), 0);
    fut.set_result(1).unwrap();
    run_once(&lp);
    assert_eq!(log.take(), ["other:Ok(1)"]);
}

/// Rules: FUT-6
#[test]
fn future_remove_done_callback_compares_by_identity() {
    let lp = vloop();
    let log = Log::new();
    let fut = lp.create_future::<i32>();
    // Two callbacks with identical behaviour are still different callbacks.
    let a = recording_cb(&log, "same");
    let b = recording_cb(&log, "same");
    fut.add_done_callback(a.clone()).unwrap();
    assert_eq!(fut.remove_done_callback(&b), 0);
    assert_eq!(fut.remove_done_callback(&a), 1);
    fut.set_result(1).unwrap();
    run_once(&lp);
    assert!(log.get().is_empty());
}

/// Rules: FUT-6, SCHED-7
#[test]
fn future_failing_done_callback_is_reported_and_others_run() {
    let lp = vloop();
    let seen = capture_exceptions(&lp);
    let log = Log::new();
    let fut = lp.create_future::<i32>();
    fut.add_done_callback(recording_cb(&log, "a")).unwrap();
    fut.add_done_callback(Rc::new(|_f: &Future<i32>| panic!("cb failed")))
        .unwrap();
    fut.add_done_callback(recording_cb(&log, "c")).unwrap();
    fut.set_result(1).unwrap();
    run_once(&lp);
    assert_eq!(log.take(), ["a:Ok(1)", "c:Ok(1)"]);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert!(
        seen[0].message.starts_with("Exception in callback "),
        "{}",
        seen[0].message
    );
    assert_eq!(seen[0].exception, Some(Error::Panic("cb failed".into())));
}

// ---------------------------------------------------------------------------
// FUT-7: unretrieved exceptions
// ---------------------------------------------------------------------------

/// Rules: FUT-7
#[test]
fn future_unretrieved_exception_reported_on_drop() {
    let lp = vloop();
    let seen = capture_exceptions(&lp);
    let fut = lp.create_future::<i32>();
    fut.set_exception(value_error("x")).unwrap();
    let clone = fut.clone();
    drop(fut);
    // Not destroyed yet: a handle remains.
    assert!(seen.lock().unwrap().is_empty());
    drop(clone);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].message, "Future exception was never retrieved");
    assert_eq!(seen[0].exception, Some(value_error("x")));
    assert!(seen[0].future.is_some());
}

/// Rules: FUT-7
#[test]
fn future_exception_read_by_result_is_not_reported() {
    let lp = vloop();
    let seen = capture_exceptions(&lp);
    let fut = lp.create_future::<i32>();
    fut.set_exception(value_error("x")).unwrap();
    assert_eq!(fut.result().unwrap_err(), value_error("x"));
    drop(fut);
    assert!(seen.lock().unwrap().is_empty());
}

/// Rules: FUT-7
#[test]
fn future_exception_read_by_exception_is_not_reported() {
    let lp = vloop();
    let seen = capture_exceptions(&lp);
    let fut = lp.create_future::<i32>();
    fut.set_exception(value_error("x")).unwrap();
    assert_eq!(fut.exception().unwrap(), Some(value_error("x")));
    drop(fut);
    assert!(seen.lock().unwrap().is_empty());
}

/// Rules: FUT-7
#[test]
fn future_exception_read_by_await_is_not_reported() {
    let lp = vloop();
    let seen = capture_exceptions(&lp);
    let fut = lp.create_future::<i32>();
    let f2 = fut.clone();
    let t = lp
        .create_task(async move {
            match f2.await {
                Err(e) => Ok(e.to_string()),
                Ok(_) => Ok("no error".to_string()),
            }
        })
        .unwrap();
    run_once(&lp);
    fut.set_exception(value_error("x")).unwrap();
    drop(fut);
    assert_eq!(lp.run_until_complete(t).unwrap(), "x");
    assert!(seen.lock().unwrap().is_empty());
}

/// Rules: FUT-7, FUT-9
#[test]
fn future_exception_read_by_foreign_await_is_not_reported() {
    let lp = vloop();
    let seen = capture_exceptions(&lp);
    let mut fut = lp.create_future::<i32>();
    fut.set_exception(value_error("x")).unwrap();
    let (_count, waker) = counting_waker();
    assert_eq!(
        poll_once(&mut fut, &waker),
        Poll::Ready(Err(value_error("x")))
    );
    drop(fut);
    assert!(seen.lock().unwrap().is_empty());
}

/// Rules: FUT-7
#[test]
fn future_with_result_or_cancelled_is_not_reported() {
    let lp = vloop();
    let seen = capture_exceptions(&lp);
    let a = lp.create_future::<i32>();
    a.set_result(1).unwrap();
    let b = lp.create_future::<i32>();
    b.cancel_with(Some("m".into()));
    let c = lp.create_future::<i32>();
    drop((a, b, c));
    assert!(seen.lock().unwrap().is_empty());
}

/// Rules: FUT-7
#[test]
fn task_unretrieved_exception_reported_on_drop() {
    let lp = vloop();
    let seen = capture_exceptions(&lp);
    let t = lp
        .create_task(async { Err::<i32, _>(value_error("y")) })
        .unwrap();
    run_once(&lp);
    assert!(t.done());
    assert!(seen.lock().unwrap().is_empty());
    drop(t);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].message, "Task exception was never retrieved");
    assert_eq!(seen[0].exception, Some(value_error("y")));
    // CPython puts the task under the 'future' key; loopspec's context may use
    // either field, but it must name the task.
    let repr = seen[0].task.clone().or(seen[0].future.clone()).unwrap();
    assert!(repr.starts_with("<Task finished"), "{repr}");
    assert!(repr.contains("name='Task-1'"), "{repr}");
}

/// Rules: FUT-7
#[test]
fn task_exception_awaited_by_another_task_is_not_reported() {
    let lp = vloop();
    let seen = capture_exceptions(&lp);
    let failing = lp
        .create_task(async { Err::<i32, _>(value_error("y")) })
        .unwrap();
    let f2 = failing.clone();
    let waiter = lp
        .create_task(async move { Ok(f2.await.unwrap_err().to_string()) })
        .unwrap();
    drop(failing);
    assert_eq!(lp.run_until_complete(waiter).unwrap(), "y");
    assert!(seen.lock().unwrap().is_empty());
}

// ---------------------------------------------------------------------------
// FUT-8: awaiting a future of another loop
// ---------------------------------------------------------------------------

/// Rules: FUT-8, ERR-1
#[test]
fn future_of_other_loop_error_thrown_at_next_step() {
    let lp = vloop();
    let other = vloop();
    let foreign = other.create_future::<i32>();
    let log = Log::new();
    let l2 = log.clone();
    let t = lp
        .create_task(async move {
            l2.push("before");
            match foreign.await {
                Err(e) => {
                    l2.push(format!("{}: {e}", e.python_type()));
                    Ok("caught")
                }
                Ok(_) => Ok("no error"),
            }
        })
        .unwrap();
    run_once(&lp);
    assert_eq!(log.take(), ["before"]);
    assert!(!t.done());
    run_once(&lp);
    assert_eq!(
        log.take(),
        [
            "RuntimeError: Task <Task pending name='Task-1'> got Future <Future pending> \
          attached to a different loop"
        ]
    );
    assert!(t.done());
    assert_eq!(t.result().unwrap(), "caught");
}

/// Rules: FUT-8
#[test]
fn future_of_other_loop_uncaught_error_ends_task() {
    let lp = vloop();
    let other = vloop();
    let foreign = other.create_future::<i32>();
    let keep = foreign.clone();
    let t = lp.create_task(async move { foreign.await }).unwrap();
    let err = lp.run_until_complete(t.clone()).unwrap_err();
    assert_eq!(err.python_type(), "RuntimeError");
    assert_eq!(
        err.to_string(),
        "Task <Task pending name='Task-1'> got Future <Future pending> attached to a different loop"
    );
    assert!(matches!(err, Error::FutureOfOtherLoop { .. }));
    assert!(!t.cancelled());
    assert_eq!(t.exception().unwrap(), Some(err));
    // The foreign future is untouched.
    assert!(!keep.done());
}

/// Rules: FUT-8
#[test]
fn future_of_other_loop_already_done_is_returned() {
    // CPython checks the loop in Task.__step when the coroutine yields the
    // future: a done future is not yielded, so awaiting it just returns.
    let lp = vloop();
    let other = vloop();
    let foreign = other.create_future::<i32>();
    foreign.set_result(9).unwrap();
    let t = lp.create_task(async move { foreign.await }).unwrap();
    assert_eq!(lp.run_until_complete(t).unwrap(), 9);
}

// ---------------------------------------------------------------------------
// FUT-9: awaiting a done future again; foreign executors
// ---------------------------------------------------------------------------

/// Rules: FUT-9
#[test]
fn future_awaited_twice_yields_same_result() {
    let lp = vloop();
    let fut = lp.create_future::<String>();
    let f2 = fut.clone();
    let t = lp
        .create_task(async move {
            let a = f2.clone().await?;
            let b = f2.clone().await?;
            let c = f2.await?;
            Ok((a, b, c))
        })
        .unwrap();
    run_once(&lp);
    fut.set_result("v".to_string()).unwrap();
    let (a, b, c) = lp.run_until_complete(t).unwrap();
    assert_eq!((a.as_str(), b.as_str(), c.as_str()), ("v", "v", "v"));
    assert_eq!(fut.result().unwrap(), "v");
}

/// Rules: FUT-9
#[test]
fn future_awaited_twice_raises_same_exception() {
    let lp = vloop();
    let fut = lp.create_future::<i32>();
    fut.set_exception(value_error("x")).unwrap();
    let f2 = fut.clone();
    let t = lp
        .create_task(async move {
            let a = f2.clone().await.unwrap_err();
            let b = f2.await.unwrap_err();
            Ok((a, b))
        })
        .unwrap();
    let (a, b) = lp.run_until_complete(t).unwrap();
    assert_eq!(a, value_error("x"));
    assert_eq!(b, value_error("x"));
}

/// Rules: FUT-9
#[test]
fn future_awaited_by_several_tasks_all_get_the_result() {
    let lp = vloop();
    let fut = lp.create_future::<i32>();
    let tasks: Vec<_> = (0..3)
        .map(|_| {
            let f = fut.clone();
            lp.create_task(async move { f.await }).unwrap()
        })
        .collect();
    run_once(&lp);
    fut.set_result(11).unwrap();
    run_once(&lp);
    for t in tasks {
        assert!(t.done());
        assert_eq!(t.result().unwrap(), 11);
    }
}

/// Rules: FUT-9
#[test]
fn future_foreign_executor_is_woken_from_a_loop_callback() {
    let lp = vloop();
    let mut fut = lp.create_future::<i32>();
    let (count, waker) = counting_waker();
    assert_eq!(poll_once(&mut fut, &waker), Poll::Pending);
    assert_eq!(count.0.load(Ordering::SeqCst), 0);
    fut.set_result(5).unwrap();
    // Not woken inside set_result: the wake-up is a scheduled callback.
    assert_eq!(count.0.load(Ordering::SeqCst), 0);
    run_once(&lp);
    assert_eq!(count.0.load(Ordering::SeqCst), 1);
    assert_eq!(poll_once(&mut fut, &waker), Poll::Ready(Ok(5)));
    // Awaiting again gives the same outcome.
    assert_eq!(poll_once(&mut fut, &waker), Poll::Ready(Ok(5)));
}

/// Rules: FUT-9, FUT-6
#[test]
fn future_foreign_waker_scheduled_after_earlier_callbacks() {
    let lp = vloop();
    let log = Log::new();
    let mut fut = lp.create_future::<i32>();
    let (count, waker) = counting_waker();
    lp.call_soon(log.cb("earlier")).unwrap();
    assert_eq!(poll_once(&mut fut, &waker), Poll::Pending);
    fut.add_done_callback(recording_cb(&log, "cb")).unwrap();
    let c2 = count.clone();
    let l2 = log.clone();
    fut.set_exception(value_error("x")).unwrap();
    lp.call_soon(move || l2.push(format!("later woken={}", c2.0.load(Ordering::SeqCst))))
        .unwrap();
    run_once(&lp);
    assert_eq!(
        log.take(),
        ["earlier", r#"cb:Err(ValueError('x'))"#, "later woken=1"]
    );
    assert_eq!(
        poll_once(&mut fut, &waker),
        Poll::Ready(Err(value_error("x")))
    );
}

/// Rules: FUT-9, FUT-4
#[test]
fn future_foreign_executor_sees_cancellation() {
    let lp = vloop();
    let mut fut = lp.create_future::<i32>();
    let (count, waker) = counting_waker();
    assert_eq!(poll_once(&mut fut, &waker), Poll::Pending);
    fut.cancel_with(Some("bye".into()));
    run_once(&lp);
    assert_eq!(count.0.load(Ordering::SeqCst), 1);
    assert_eq!(
        poll_once(&mut fut, &waker),
        Poll::Ready(Err(Error::Cancelled(Some("bye".into()))))
    );
}

/// Rules: FUT-9
#[test]
fn future_foreign_executor_done_future_is_ready_at_once() {
    let lp = vloop();
    let mut fut = lp.create_future::<i32>();
    fut.set_result(3).unwrap();
    let (count, waker) = counting_waker();
    assert_eq!(poll_once(&mut fut, &waker), Poll::Ready(Ok(3)));
    assert_eq!(poll_once(&mut fut, &waker), Poll::Ready(Ok(3)));
    assert_eq!(count.0.load(Ordering::SeqCst), 0);
}

/// Rules: FUT-9, TASK-1
#[test]
fn future_task_resumes_one_iteration_after_completion() {
    let lp = vloop();
    let log = Log::new();
    let fut = lp.create_future::<i32>();
    let f2 = fut.clone();
    let l2 = log.clone();
    let _t = lp
        .create_task(async move {
            l2.push("waiting");
            let v = f2.await?;
            l2.push(format!("got {v}"));
            Ok(())
        })
        .unwrap();
    let f3 = fut.clone();
    let l3 = log.clone();
    let seen_done = Rc::new(Cell::new(false));
    let sd = seen_done.clone();
    lp.call_soon(move || {
        f3.set_result(1).unwrap();
        l3.push("set");
        sd.set(true);
    })
    .unwrap();
    run_once(&lp);
    assert_eq!(log.take(), ["waiting", "set"]);
    assert!(seen_done.get());
    run_once(&lp);
    assert_eq!(log.take(), ["got 1"]);
}

/// Rules: FUT-6
#[test]
fn future_done_callback_receives_the_future_itself() {
    let lp = vloop();
    let fut = lp.create_future::<i32>();
    let got: Rc<RefCell<Option<Future<i32>>>> = Rc::new(RefCell::new(None));
    let g = got.clone();
    fut.add_done_callback(Rc::new(move |f: &Future<i32>| {
        *g.borrow_mut() = Some(f.clone());
    }))
    .unwrap();
    fut.set_result(1).unwrap();
    run_once(&lp);
    assert_eq!(got.borrow().as_ref(), Some(&fut));
}

/// Rules: FUT-1
#[test]
fn future_new_is_create_future() {
    let lp: EventLoop = vloop();
    let a = Future::<i32>::new(&lp);
    assert_eq!(a.get_loop(), lp);
    assert!(!a.done());
}
