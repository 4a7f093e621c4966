//! CONC rules of SPEC.md: `ConcurrentFuture`, the counterpart of
//! `concurrent.futures.Future` (catalogue 9.4, CF-1..CF-6).
//!
//! Deterministic: timeouts are only used as `Duration::ZERO` to observe
//! "not done yet"; other threads are joined before asserting, and a thread
//! blocked in `result()` can only return once the test completes the future.
//! Waits that only read an outcome or a message are bounded by tests/common's
//! hang guard (`cf_result`, `recv_or_hang`); the CONC-2 tests of
//! `result(None)` itself keep calling it.

use common::{cf_exception, cf_result, recv_or_hang, vloop};
use loopspec::{CfState, ConcurrentFuture, Error};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::Duration;

/// A shared, thread-safe event log.
#[derive(Clone, Default)]
struct SyncLog(Arc<Mutex<Vec<String>>>);

impl SyncLog {
    fn push(&self, s: impl Into<String>) {
        self.0.lock().unwrap().push(s.into());
    }
    fn get(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

fn assert_states(
    cf: &ConcurrentFuture<i32>,
    state: CfState,
    done: bool,
    running: bool,
    cancelled: bool,
) {
    assert_eq!(cf.state(), state);
    assert_eq!(cf.done(), done, "done() in {state:?}");
    assert_eq!(cf.running(), running, "running() in {state:?}");
    assert_eq!(cf.cancelled(), cancelled, "cancelled() in {state:?}");
}

fn assert_timeout(err: &Error) {
    assert_eq!(*err, Error::Timeout);
    assert_eq!(err.python_type(), "TimeoutError");
    assert_eq!(err.to_string(), "");
}

fn assert_cancelled(err: &Error) {
    assert_eq!(*err, Error::Cancelled(None));
    assert_eq!(err.python_type(), "CancelledError");
    assert_eq!(err.to_string(), "");
}

/// Asserts an `InvalidStateError: STATE: <Future at 0x... REST>`.
fn assert_invalid_state(err: &Error, state: &str, rest: &str) {
    assert!(
        matches!(err, Error::ConcurrentInvalidState { .. }),
        "expected ConcurrentInvalidState, got {err:?}"
    );
    assert_eq!(err.python_type(), "InvalidStateError");
    let msg = err.to_string();
    let prefix = format!("{state}: <Future at 0x");
    assert!(
        msg.starts_with(&prefix),
        "{msg:?} should start with {prefix:?}"
    );
    assert!(msg.ends_with(rest), "{msg:?} should end with {rest:?}");
    // The address is hexadecimal.
    let addr = &msg[prefix.len()..msg.len() - rest.len()];
    assert!(
        !addr.is_empty() && addr.chars().all(|c| c.is_ascii_hexdigit()),
        "address part {addr:?} of {msg:?}"
    );
}

fn assert_unexpected_state(err: &Error) {
    assert_eq!(*err, Error::UnexpectedState);
    assert_eq!(err.to_string(), "Future in unexpected state");
    assert_eq!(err.python_type(), "RuntimeError");
}

// ---------------------------------------------------------------------------
// CONC-1
// ---------------------------------------------------------------------------

/// Rules: CONC-1
#[test]
fn concurrent_future_new_is_pending() {
    let cf = ConcurrentFuture::<i32>::new();
    assert_states(&cf, CfState::Pending, false, false, false);
    let dflt: ConcurrentFuture<i32> = ConcurrentFuture::default();
    assert_states(&dflt, CfState::Pending, false, false, false);
}

/// Rules: CONC-1
#[test]
fn concurrent_future_state_flags_in_every_state() {
    let running = ConcurrentFuture::<i32>::new();
    assert_eq!(running.set_running_or_notify_cancel(), Ok(true));
    assert_states(&running, CfState::Running, false, true, false);

    let cancelled = ConcurrentFuture::<i32>::new();
    assert!(cancelled.cancel());
    assert_states(&cancelled, CfState::Cancelled, true, false, true);

    assert_eq!(cancelled.set_running_or_notify_cancel(), Ok(false));
    assert_states(&cancelled, CfState::CancelledAndNotified, true, false, true);

    let finished = ConcurrentFuture::<i32>::new();
    finished.set_result(1).unwrap();
    assert_states(&finished, CfState::Finished, true, false, false);

    let failed = ConcurrentFuture::<i32>::new();
    failed
        .set_exception(Error::raise("ValueError", "x"))
        .unwrap();
    assert_states(&failed, CfState::Finished, true, false, false);

    let run_then_finish = ConcurrentFuture::<i32>::new();
    assert_eq!(run_then_finish.set_running_or_notify_cancel(), Ok(true));
    run_then_finish.set_result(2).unwrap();
    assert_states(&run_then_finish, CfState::Finished, true, false, false);
}

/// Rules: CONC-1
#[test]
fn concurrent_future_state_names_are_pythons() {
    assert_eq!(CfState::Pending.name(), "PENDING");
    assert_eq!(CfState::Running.name(), "RUNNING");
    assert_eq!(CfState::Cancelled.name(), "CANCELLED");
    assert_eq!(
        CfState::CancelledAndNotified.name(),
        "CANCELLED_AND_NOTIFIED"
    );
    assert_eq!(CfState::Finished.name(), "FINISHED");
}

/// Rules: CONC-1
#[test]
fn concurrent_future_clones_share_one_state() {
    let cf = ConcurrentFuture::<i32>::new();
    let other = cf.clone();
    assert_eq!(cf, other);
    assert_ne!(cf, ConcurrentFuture::new());
    other.set_result(3).unwrap();
    assert_eq!(cf.state(), CfState::Finished);
    assert_eq!(cf_result(&cf), Ok(3));
}

// ---------------------------------------------------------------------------
// CONC-2
// ---------------------------------------------------------------------------

/// Rules: CONC-2
#[test]
fn concurrent_future_result_of_pending_times_out() {
    let cf = ConcurrentFuture::<i32>::new();
    assert_timeout(&cf.result(Some(Duration::ZERO)).unwrap_err());
    assert_timeout(&cf.exception(Some(Duration::ZERO)).unwrap_err());
    // Still pending, and a timeout changes nothing.
    assert_eq!(cf.state(), CfState::Pending);
    assert_eq!(cf.set_running_or_notify_cancel(), Ok(true));
    assert_timeout(&cf.result(Some(Duration::ZERO)).unwrap_err());
    assert_eq!(cf.state(), CfState::Running);
}

/// A positive timeout really waits (the timed wait, not the zero-timeout
/// shortcut) and then gives up. Only the outcome is asserted, not how long
/// it took.
/// Rules: CONC-2
#[test]
fn concurrent_future_result_with_a_positive_timeout_on_a_pending_future_times_out() {
    let cf = ConcurrentFuture::<i32>::new();
    let short = Duration::from_millis(5);
    assert_timeout(&cf.result(Some(short)).unwrap_err());
    assert_timeout(&cf.exception(Some(short)).unwrap_err());
    let other = cf.clone();
    let from_another_thread = thread::spawn(move || other.result(Some(short)))
        .join()
        .unwrap();
    assert_timeout(&from_another_thread.unwrap_err());
    assert_eq!(cf.state(), CfState::Pending);
}

/// Rules: CONC-2
#[test]
fn concurrent_future_result_and_exception_of_finished() {
    let ok = ConcurrentFuture::<i32>::new();
    ok.set_result(42).unwrap();
    assert_eq!(ok.result(None), Ok(42));
    assert_eq!(ok.result(Some(Duration::ZERO)), Ok(42));
    assert_eq!(ok.exception(None), Ok(None));
    assert_eq!(ok.exception(Some(Duration::ZERO)), Ok(None));
    // Reading twice gives the same outcome.
    assert_eq!(ok.result(None), Ok(42));

    let failed = ConcurrentFuture::<i32>::new();
    let e = Error::raise("ValueError", "remote failure");
    failed.set_exception(e.clone()).unwrap();
    let got = failed.result(None).unwrap_err();
    assert_eq!(got, e);
    assert_eq!(got.python_type(), "ValueError");
    assert_eq!(got.to_string(), "remote failure");
    assert_eq!(failed.exception(None), Ok(Some(e.clone())));
    assert_eq!(failed.exception(Some(Duration::ZERO)), Ok(Some(e)));

    // A TimeoutError stored as the exception stays a TimeoutError.
    let timed = ConcurrentFuture::<i32>::new();
    timed.set_exception(Error::Timeout).unwrap();
    assert_timeout(&timed.result(None).unwrap_err());
    assert_eq!(timed.exception(None), Ok(Some(Error::Timeout)));
}

/// Rules: CONC-2
#[test]
fn concurrent_future_result_of_cancelled_raises_cancelled() {
    let cf = ConcurrentFuture::<i32>::new();
    assert!(cf.cancel());
    assert_cancelled(&cf.result(None).unwrap_err());
    assert_cancelled(&cf.result(Some(Duration::ZERO)).unwrap_err());
    assert_cancelled(&cf.exception(None).unwrap_err());
    assert_eq!(cf.set_running_or_notify_cancel(), Ok(false));
    assert_cancelled(&cf.result(None).unwrap_err());
    assert_cancelled(&cf.exception(Some(Duration::ZERO)).unwrap_err());
}

/// Rules: CONC-2
#[test]
fn concurrent_future_result_blocks_until_another_thread_completes_it() {
    let cf = ConcurrentFuture::<String>::new();
    let (tx, rx) = mpsc::channel();
    let waiters: Vec<_> = (0..3)
        .map(|i| {
            let cf = cf.clone();
            let tx = tx.clone();
            thread::spawn(move || {
                tx.send(()).unwrap();
                match i {
                    0 => cf.result(None).map(|v| v.len()),
                    1 => cf.exception(None).map(|e| usize::from(e.is_none())),
                    // A long timeout that never passes in a passing run.
                    _ => cf.result(Some(Duration::from_secs(3600))).map(|v| v.len()),
                }
            })
        })
        .collect();
    for _ in 0..3 {
        recv_or_hang(&rx, "a waiter started");
    }
    cf.set_result("hello".to_string()).unwrap();
    let got: Vec<_> = waiters.into_iter().map(|w| w.join().unwrap()).collect();
    assert_eq!(got, vec![Ok(5), Ok(1), Ok(5)]);
}

/// Rules: CONC-2, CONC-3
#[test]
fn concurrent_future_blocked_waiter_is_woken_by_cancel() {
    let cf = ConcurrentFuture::<i32>::new();
    let (tx, rx) = mpsc::channel();
    let w = cf.clone();
    let waiter = thread::spawn(move || {
        tx.send(()).unwrap();
        (w.result(None), w.exception(None))
    });
    recv_or_hang(&rx, "the waiter started");
    assert!(cf.cancel());
    let (r, e) = waiter.join().unwrap();
    assert_cancelled(&r.unwrap_err());
    assert_cancelled(&e.unwrap_err());
}

/// Rules: CONC-2
#[test]
fn concurrent_future_blocked_waiter_gets_exception_set_from_another_thread() {
    let cf = ConcurrentFuture::<i32>::new();
    let w = cf.clone();
    let waiter = thread::spawn(move || w.result(None));
    let c = cf.clone();
    thread::spawn(move || c.set_exception(Error::raise("KeyError", "k")))
        .join()
        .unwrap()
        .unwrap();
    let err = waiter.join().unwrap().unwrap_err();
    assert_eq!(err, Error::raise("KeyError", "k"));
    assert_eq!(err.python_type(), "KeyError");
}

// ---------------------------------------------------------------------------
// CONC-3
// ---------------------------------------------------------------------------

/// Rules: CONC-3
#[test]
fn concurrent_future_cancel_pending_returns_true() {
    let cf = ConcurrentFuture::<i32>::new();
    assert!(cf.cancel());
    assert_eq!(cf.state(), CfState::Cancelled);
}

/// Rules: CONC-3
#[test]
fn concurrent_future_cancel_again_returns_true_again() {
    let cf = ConcurrentFuture::<i32>::new();
    assert!(cf.cancel());
    assert!(
        cf.cancel(),
        "already cancelled: true again (unlike asyncio)"
    );
    assert_eq!(cf.state(), CfState::Cancelled);
    assert_eq!(cf.set_running_or_notify_cancel(), Ok(false));
    assert!(cf.cancel(), "cancelled and notified: still true");
    assert_eq!(cf.state(), CfState::CancelledAndNotified);

    // The asyncio future, by contrast, says false the second time.
    let lp = vloop();
    let fut = lp.create_future::<i32>();
    assert!(fut.cancel());
    assert!(!fut.cancel());
}

/// Rules: CONC-3
#[test]
fn concurrent_future_cancel_running_or_finished_returns_false() {
    let running = ConcurrentFuture::<i32>::new();
    assert_eq!(running.set_running_or_notify_cancel(), Ok(true));
    assert!(!running.cancel());
    assert_eq!(running.state(), CfState::Running);
    // The work can still finish.
    running.set_result(9).unwrap();
    assert_eq!(cf_result(&running), Ok(9));

    let finished = ConcurrentFuture::<i32>::new();
    finished.set_result(1).unwrap();
    assert!(!finished.cancel());
    assert_eq!(finished.state(), CfState::Finished);
    assert_eq!(cf_result(&finished), Ok(1));

    let failed = ConcurrentFuture::<i32>::new();
    failed
        .set_exception(Error::raise("ValueError", "v"))
        .unwrap();
    assert!(!failed.cancel());
    assert_eq!(failed.state(), CfState::Finished);
}

/// Rules: CONC-3, CONC-6
#[test]
fn concurrent_future_cancel_runs_callbacks_once() {
    let cf = ConcurrentFuture::<i32>::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    cf.add_done_callback(move |f| {
        assert!(f.cancelled());
        c.fetch_add(1, Ordering::SeqCst);
    });
    assert!(cf.cancel());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // A second cancel returns true but does not run the callbacks again.
    assert!(cf.cancel());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    cf.set_running_or_notify_cancel().unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// Rules: CONC-3
#[test]
fn concurrent_future_cancel_failing_on_running_runs_no_callbacks() {
    let cf = ConcurrentFuture::<i32>::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    cf.add_done_callback(move |_| {
        c.fetch_add(1, Ordering::SeqCst);
    });
    cf.set_running_or_notify_cancel().unwrap();
    assert!(!cf.cancel());
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    cf.set_result(1).unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

// ---------------------------------------------------------------------------
// CONC-4
// ---------------------------------------------------------------------------

/// Rules: CONC-4
#[test]
fn set_running_or_notify_cancel_pending_becomes_running() {
    let cf = ConcurrentFuture::<i32>::new();
    assert_eq!(cf.set_running_or_notify_cancel(), Ok(true));
    assert_eq!(cf.state(), CfState::Running);
}

/// Rules: CONC-4
#[test]
fn set_running_or_notify_cancel_cancelled_reports_false() {
    let cf = ConcurrentFuture::<i32>::new();
    cf.cancel();
    assert_eq!(cf.set_running_or_notify_cancel(), Ok(false));
    assert_eq!(cf.state(), CfState::CancelledAndNotified);
    assert!(cf.cancelled());
}

/// Rules: CONC-4
#[test]
fn set_running_or_notify_cancel_other_states_fail() {
    // RUNNING
    let running = ConcurrentFuture::<i32>::new();
    running.set_running_or_notify_cancel().unwrap();
    assert_unexpected_state(&running.set_running_or_notify_cancel().unwrap_err());
    assert_eq!(running.state(), CfState::Running);

    // FINISHED (from PENDING, never started)
    let finished = ConcurrentFuture::<i32>::new();
    finished.set_result(1).unwrap();
    assert_unexpected_state(&finished.set_running_or_notify_cancel().unwrap_err());
    assert_eq!(finished.state(), CfState::Finished);

    // CANCELLED_AND_NOTIFIED (CPython: RuntimeError too, checked on 3.11.7)
    let notified = ConcurrentFuture::<i32>::new();
    notified.cancel();
    assert_eq!(notified.set_running_or_notify_cancel(), Ok(false));
    assert_unexpected_state(&notified.set_running_or_notify_cancel().unwrap_err());
    assert_eq!(notified.state(), CfState::CancelledAndNotified);
}

// ---------------------------------------------------------------------------
// CONC-5
// ---------------------------------------------------------------------------

/// Rules: CONC-5
#[test]
fn concurrent_future_completes_from_pending_and_running() {
    let from_pending = ConcurrentFuture::<i32>::new();
    assert_eq!(from_pending.set_result(1), Ok(()));
    assert_eq!(cf_result(&from_pending), Ok(1));

    let from_running = ConcurrentFuture::<i32>::new();
    from_running.set_running_or_notify_cancel().unwrap();
    assert_eq!(from_running.set_result(2), Ok(()));
    assert_eq!(cf_result(&from_running), Ok(2));

    let exc_pending = ConcurrentFuture::<i32>::new();
    assert_eq!(
        exc_pending.set_exception(Error::raise("ValueError", "a")),
        Ok(())
    );
    let exc_running = ConcurrentFuture::<i32>::new();
    exc_running.set_running_or_notify_cancel().unwrap();
    assert_eq!(
        exc_running.set_exception(Error::raise("ValueError", "b")),
        Ok(())
    );
    assert_eq!(
        cf_exception(&exc_running),
        Ok(Some(Error::raise("ValueError", "b")))
    );
}

/// Rules: CONC-5, ERR-1
#[test]
fn concurrent_future_completing_finished_fails_with_state_and_repr() {
    let cf = ConcurrentFuture::<i32>::new();
    cf.set_result(1).unwrap();
    assert_invalid_state(
        &cf.set_result(2).unwrap_err(),
        "FINISHED",
        " state=finished returned i32>",
    );
    assert_invalid_state(
        &cf.set_exception(Error::raise("ValueError", "x"))
            .unwrap_err(),
        "FINISHED",
        " state=finished returned i32>",
    );
    // The first outcome is kept.
    assert_eq!(cf_result(&cf), Ok(1));

    let failed = ConcurrentFuture::<i32>::new();
    failed
        .set_exception(Error::raise("ValueError", "x"))
        .unwrap();
    assert_invalid_state(
        &failed.set_result(2).unwrap_err(),
        "FINISHED",
        " state=finished raised ValueError>",
    );
    assert_eq!(
        cf_exception(&failed),
        Ok(Some(Error::raise("ValueError", "x")))
    );
}

/// Rules: CONC-5
#[test]
fn concurrent_future_completing_cancelled_fails_with_state_and_repr() {
    let cf = ConcurrentFuture::<i32>::new();
    cf.cancel();
    assert_invalid_state(
        &cf.set_result(1).unwrap_err(),
        "CANCELLED",
        " state=cancelled>",
    );
    cf.set_running_or_notify_cancel().unwrap();
    assert_invalid_state(
        &cf.set_exception(Error::raise("ValueError", "v"))
            .unwrap_err(),
        "CANCELLED_AND_NOTIFIED",
        " state=cancelled>",
    );
    assert!(cf.cancelled());
    assert_cancelled(&cf_result(&cf).unwrap_err());
}

/// Rules: CONC-5
#[test]
fn concurrent_future_repr_names_the_state() {
    let cf = ConcurrentFuture::<i32>::new();
    let pending = format!("{cf:?}");
    assert!(pending.starts_with("<Future at 0x"), "{pending}");
    assert!(pending.ends_with(" state=pending>"), "{pending}");
    cf.set_running_or_notify_cancel().unwrap();
    assert!(format!("{cf:?}").ends_with(" state=running>"));
    cf.set_result(3).unwrap();
    assert!(format!("{cf:?}").ends_with(" state=finished returned i32>"));
    // The same address in every repr of one future.
    let addr = |s: &str| s.split(' ').nth(2).unwrap().to_string();
    assert_eq!(addr(&pending), addr(&format!("{cf:?}")));
}

// ---------------------------------------------------------------------------
// CONC-6
// ---------------------------------------------------------------------------

/// Rules: CONC-6
#[test]
fn concurrent_future_callback_runs_in_the_completing_thread() {
    let cf = ConcurrentFuture::<i32>::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    for _ in 0..2 {
        let s = seen.clone();
        cf.add_done_callback(move |f| {
            s.lock()
                .unwrap()
                .push((thread::current().id(), f.result(Some(Duration::ZERO))));
        });
    }
    assert!(seen.lock().unwrap().is_empty(), "not run before completion");
    let c = cf.clone();
    let completer = thread::spawn(move || {
        c.set_result(7).unwrap();
        thread::current().id()
    });
    let completer_id = completer.join().unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen, vec![(completer_id, Ok(7)), (completer_id, Ok(7))]);
    assert_ne!(completer_id, thread::current().id());
}

/// Rules: CONC-6
#[test]
fn concurrent_future_callback_runs_inside_the_completing_call() {
    // Ran before set_exception returned: visible right after, same thread.
    let cf = ConcurrentFuture::<i32>::new();
    let ran_in = Arc::new(Mutex::new(None));
    let r = ran_in.clone();
    cf.add_done_callback(move |_| *r.lock().unwrap() = Some(thread::current().id()));
    cf.set_exception(Error::raise("ValueError", "v")).unwrap();
    assert_eq!(*ran_in.lock().unwrap(), Some(thread::current().id()));
}

/// Rules: CONC-6, CONC-3
#[test]
fn concurrent_future_callback_runs_in_the_cancelling_thread() {
    let cf = ConcurrentFuture::<i32>::new();
    let ran_in = Arc::new(Mutex::new(None));
    let r = ran_in.clone();
    cf.add_done_callback(move |f| {
        *r.lock().unwrap() = Some((thread::current().id(), f.cancelled()))
    });
    let c = cf.clone();
    let canceller = thread::spawn(move || {
        assert!(c.cancel());
        thread::current().id()
    });
    let id = canceller.join().unwrap();
    assert_eq!(*ran_in.lock().unwrap(), Some((id, true)));
}

/// Rules: CONC-6
#[test]
fn concurrent_future_callback_added_when_done_runs_at_once_in_the_adding_thread() {
    let cf = ConcurrentFuture::<i32>::new();
    let c = cf.clone();
    thread::spawn(move || c.set_result(5).unwrap())
        .join()
        .unwrap();

    let ran_in = Arc::new(Mutex::new(None));
    let r = ran_in.clone();
    cf.add_done_callback(move |f| {
        *r.lock().unwrap() = Some((thread::current().id(), cf_result(f)))
    });
    // Already ran, before add_done_callback returned, in this thread.
    assert_eq!(
        *ran_in.lock().unwrap(),
        Some((thread::current().id(), Ok(5)))
    );

    // The same from another thread.
    let r2 = Arc::new(Mutex::new(None));
    let (c, rr) = (cf.clone(), r2.clone());
    let adder = thread::spawn(move || {
        c.add_done_callback(move |_| *rr.lock().unwrap() = Some(thread::current().id()));
        thread::current().id()
    });
    let adder_id = adder.join().unwrap();
    assert_eq!(*r2.lock().unwrap(), Some(adder_id));

    // And on a cancelled future.
    let cancelled = ConcurrentFuture::<i32>::new();
    cancelled.cancel();
    let hit = Arc::new(AtomicUsize::new(0));
    let h = hit.clone();
    cancelled.add_done_callback(move |f| {
        assert!(f.cancelled());
        h.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(hit.load(Ordering::SeqCst), 1);
}

/// Rules: CONC-6
#[test]
fn concurrent_future_callbacks_run_in_registration_order() {
    let cf = ConcurrentFuture::<i32>::new();
    let log = SyncLog::default();
    for name in ["a", "b", "c"] {
        let log = log.clone();
        cf.add_done_callback(move |_| log.push(name));
    }
    cf.set_result(0).unwrap();
    assert_eq!(log.get(), ["a", "b", "c"]);
}

/// Rules: CONC-6
#[test]
fn concurrent_future_panicking_callback_does_not_stop_the_others() {
    let cf = ConcurrentFuture::<i32>::new();
    let log = SyncLog::default();
    let l = log.clone();
    cf.add_done_callback(move |_| l.push("first"));
    cf.add_done_callback(|_| panic!("callback failed"));
    let l = log.clone();
    cf.add_done_callback(move |_| l.push("third"));
    // The completion succeeds and the panic does not escape.
    assert_eq!(cf.set_result(1), Ok(()));
    assert_eq!(log.get(), ["first", "third"]);
    assert_eq!(cf_result(&cf), Ok(1));

    // Also for a callback added to a done future.
    cf.add_done_callback(|_| panic!("late callback failed"));
    let l = log.clone();
    cf.add_done_callback(move |_| l.push("late"));
    assert_eq!(log.get(), ["first", "third", "late"]);
}

/// Rules: CONC-6
#[test]
fn concurrent_future_panicking_callback_on_cancel_does_not_stop_the_others() {
    let cf = ConcurrentFuture::<i32>::new();
    let log = SyncLog::default();
    cf.add_done_callback(|_| panic!("callback failed"));
    let l = log.clone();
    cf.add_done_callback(move |f| l.push(format!("cancelled={}", f.cancelled())));
    assert!(cf.cancel());
    assert_eq!(log.get(), ["cancelled=true"]);
}

// ---------------------------------------------------------------------------
// CONC-7
// ---------------------------------------------------------------------------

/// Rules: CONC-7
#[test]
fn concurrent_future_awaited_by_tokio_block_on() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    // Completed by another thread while the runtime waits.
    let cf = ConcurrentFuture::<i32>::new();
    let c = cf.clone();
    let (tx, rx) = mpsc::channel::<()>();
    let completer = thread::spawn(move || {
        recv_or_hang(&rx, "the runtime is waiting");
        c.set_result(11).unwrap();
    });
    let got = rt.block_on(async move {
        tx.send(()).unwrap();
        cf.await
    });
    completer.join().unwrap();
    assert_eq!(got, Ok(11));

    // Errors and cancellation arrive as CONC-2 says.
    let failed = ConcurrentFuture::<i32>::new();
    let f = failed.clone();
    thread::spawn(move || f.set_exception(Error::raise("ValueError", "bad")).unwrap())
        .join()
        .unwrap();
    assert_eq!(rt.block_on(failed), Err(Error::raise("ValueError", "bad")));
    let cancelled = ConcurrentFuture::<i32>::new();
    let c = cancelled.clone();
    let canceller = thread::spawn(move || assert!(c.cancel()));
    let got = rt.block_on(cancelled);
    canceller.join().unwrap();
    assert_cancelled(&got.unwrap_err());
}

/// Rules: CONC-7
#[test]
fn concurrent_future_awaited_by_a_loopspec_task() {
    let lp = vloop();
    let cf = ConcurrentFuture::<String>::new();
    let c = cf.clone();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let completer = thread::spawn(move || {
        recv_or_hang(&go_rx, "the task is waiting");
        c.set_result("from a thread".into()).unwrap();
    });
    let got = lp
        .run_until_complete(async move {
            // The completion can only happen after this task waits.
            go_tx.send(()).unwrap();
            cf.await
        })
        .unwrap();
    completer.join().unwrap();
    assert_eq!(got, "from a thread");
    lp.close().unwrap();
}

/// Rules: CONC-7, CONC-2
#[test]
fn concurrent_future_awaited_by_a_loopspec_task_gets_cancellation() {
    let lp = vloop();
    let cf = ConcurrentFuture::<i32>::new();
    let c = cf.clone();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let canceller = thread::spawn(move || {
        recv_or_hang(&go_rx, "the task is waiting");
        assert!(c.cancel());
    });
    let got = lp.run_until_complete(async move {
        go_tx.send(()).unwrap();
        Ok(cf.await)
    });
    canceller.join().unwrap();
    assert_cancelled(&got.unwrap().unwrap_err());
    lp.close().unwrap();
}

/// Rules: CONC-7
#[test]
fn concurrent_future_already_done_is_ready_at_once() {
    let cf = ConcurrentFuture::<i32>::new();
    cf.set_result(4).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    assert_eq!(rt.block_on(cf.clone()), Ok(4));
    // Awaiting again gives the same outcome.
    assert_eq!(rt.block_on(cf.clone()), Ok(4));
    let lp = vloop();
    assert_eq!(lp.run_until_complete(cf), Ok(4));
    lp.close().unwrap();
}
