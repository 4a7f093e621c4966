//! CONC rules of SPEC.md: `ConcurrentFuture`, the counterpart of
//! `concurrent.futures.Future`.
//!
//! Deterministic: timeouts are only used as `Duration::ZERO` to observe
//! "not done yet"; other threads are joined before asserting, and a thread
//! blocked in `result()` can only return once the test completes the future.
//! Waits that only read an outcome or a message are bounded by tests/common's
//! hang guard (`cf_result`, `recv_or_hang`); the CONC-2 tests of
//! `result(None)` itself keep calling it.

use common::{
    Log, Scene, assert_py_error, cases, cf_exception, cf_result, key_error, recv_or_hang,
    value_error,
};
use loopspec::{CfState, ConcurrentFuture, Error};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::Duration;

type Cf = ConcurrentFuture<i32>;

/// A concurrent future in `state`: a finished one holds 1, a failed one
/// `ValueError('x')`.
fn cf_in(state: &str) -> Cf {
    let cf = Cf::new();
    match state {
        "pending" => {}
        "running" => assert_eq!(cf.set_running_or_notify_cancel(), Ok(true)),
        "cancelled" => assert!(cf.cancel()),
        "notified" => {
            assert!(cf.cancel());
            assert_eq!(cf.set_running_or_notify_cancel(), Ok(false));
        }
        "finished" => cf.set_result(1).unwrap(),
        "failed" => cf.set_exception(value_error("x")).unwrap(),
        other => panic!("no state {other}"),
    }
    cf
}

/// Runs `f` with a clone of `cf` on a new thread; joins it and returns what
/// it returned with that thread's id.
fn on_another_thread<R: Send + 'static>(
    cf: &Cf,
    f: impl FnOnce(Cf) -> R + Send + 'static,
) -> (R, thread::ThreadId) {
    let cf = cf.clone();
    thread::spawn(move || (f(cf), thread::current().id()))
        .join()
        .unwrap()
}

fn assert_timeout(err: &Error) {
    assert_eq!(*err, Error::Timeout);
    assert_py_error(err, "TimeoutError", "");
}

fn assert_cancelled(err: &Error) {
    assert_eq!(*err, Error::Cancelled(None));
    assert_py_error(err, "CancelledError", "");
}

/// Asserts an `InvalidStateError: STATE: <Future at 0x... REST>`.
fn assert_invalid_state(err: &Error, state: &str, rest: &str) {
    assert!(
        matches!(err, Error::ConcurrentInvalidState { .. }),
        "{err:?}"
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
        "{msg:?}"
    );
}

/// The states, their Python names and flags (`done`, `running`,
/// `cancelled`), in every way of reaching them; clones share one state.
/// Rules: CONC-1
#[test]
fn concurrent_future_states() {
    #[rustfmt::skip]
    let table = [
        ("pending",   CfState::Pending,              "PENDING",                (false, false, false)),
        ("running",   CfState::Running,              "RUNNING",                (false, true, false)),
        ("cancelled", CfState::Cancelled,            "CANCELLED",              (true, false, true)),
        ("notified",  CfState::CancelledAndNotified, "CANCELLED_AND_NOTIFIED", (true, false, true)),
        ("finished",  CfState::Finished,             "FINISHED",               (true, false, false)),
        ("failed",    CfState::Finished,             "FINISHED",               (true, false, false)),
    ];
    for (made, state, name, flags) in table {
        let cf = cf_in(made);
        assert_eq!((cf.state(), cf.state().name()), (state, name), "{made}");
        assert_eq!((cf.done(), cf.running(), cf.cancelled()), flags, "{made}");
    }
    let dflt: Cf = ConcurrentFuture::default();
    assert_eq!(dflt.state(), CfState::Pending);
    let run_then_finish = cf_in("running");
    run_then_finish.set_result(2).unwrap();
    assert_eq!(run_then_finish.state(), CfState::Finished);
    let cf = Cf::new();
    let other = cf.clone();
    assert!(cf == other && cf != Cf::new());
    other.set_result(3).unwrap();
    assert_eq!((cf.state(), cf_result(&cf)), (CfState::Finished, Ok(3)));
}

/// `result(timeout)` and `exception(timeout)`: a pending or running future
/// times out, without changing (a positive timeout really waits, from any
/// thread; only the outcome is asserted, not how long it took); a finished
/// one gives its outcome, each time — a stored `TimeoutError` stays one; a
/// cancelled one raises `CancelledError`.
/// Rules: CONC-2
#[test]
fn result_and_exception_read_the_outcome() {
    cases(&[
        ("pending or running: a timeout, nothing changed", |_| {
            let short = Duration::from_millis(5);
            for (made, state) in [("pending", CfState::Pending), ("running", CfState::Running)] {
                let cf = cf_in(made);
                for timeout in [Duration::ZERO, short] {
                    assert_timeout(&cf.result(Some(timeout)).unwrap_err());
                    assert_timeout(&cf.exception(Some(timeout)).unwrap_err());
                }
                let (r, _) = on_another_thread(&cf, move |c| c.result(Some(short)));
                assert_timeout(&r.unwrap_err());
                assert_eq!(cf.state(), state);
            }
        }),
        ("finished: its outcome, each time", |_| {
            let ok = cf_in("finished");
            for timeout in [None, Some(Duration::ZERO), None] {
                assert_eq!(
                    (ok.result(timeout), ok.exception(timeout)),
                    (Ok(1), Ok(None))
                );
            }
            let failed = cf_in("failed");
            let got = failed.result(None).unwrap_err();
            assert_eq!(got, value_error("x"));
            assert_py_error(&got, "ValueError", "x");
            for timeout in [None, Some(Duration::ZERO)] {
                assert_eq!(failed.exception(timeout), Ok(Some(value_error("x"))));
            }
            let timed = Cf::new();
            timed.set_exception(Error::Timeout).unwrap();
            assert_timeout(&timed.result(None).unwrap_err());
            assert_eq!(timed.exception(None), Ok(Some(Error::Timeout)));
        }),
        ("cancelled: CancelledError", |_| {
            for made in ["cancelled", "notified"] {
                let cf = cf_in(made);
                for timeout in [None, Some(Duration::ZERO)] {
                    assert_cancelled(&cf.result(timeout).unwrap_err());
                    assert_cancelled(&cf.exception(timeout).unwrap_err());
                }
            }
        }),
    ]);
}

/// A `result()` or `exception()` blocked in other threads returns when the
/// future is completed — with a result or an exception, from any thread —
/// or cancelled.
/// Rules: CONC-2, CONC-3
#[test]
fn a_blocked_wait_returns_when_the_future_is_done() {
    let cf = ConcurrentFuture::<String>::new();
    let (tx, rx) = mpsc::channel();
    let waiters: Vec<_> = (0..3)
        .map(|i| {
            let (cf, tx) = (cf.clone(), tx.clone());
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
    assert_eq!(got, [Ok(5), Ok(1), Ok(5)]);
    let cf = Cf::new();
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
    let cf = Cf::new();
    let w = cf.clone();
    let waiter = thread::spawn(move || w.result(None));
    let (set, _) = on_another_thread(&cf, |c| c.set_exception(key_error("k")));
    assert_eq!(set, Ok(()));
    assert_eq!(waiter.join().unwrap(), Err(key_error("k")));
}

/// `cancel()` is true for a pending or cancelled future (again and again,
/// unlike asyncio's), false for a running or finished one, which it leaves
/// as it is; the done callbacks run once, when it first succeeds.
/// Rules: CONC-3, CONC-6
#[test]
fn cancel_is_true_unless_running_or_finished() {
    for (made, cancels) in [
        ("pending", true),
        ("cancelled", true),
        ("notified", true),
        ("running", false),
        ("finished", false),
        ("failed", false),
    ] {
        let cf = cf_in(made);
        let before = cf.state();
        assert_eq!(cf.cancel(), cancels, "{made}");
        let after = if made == "pending" {
            CfState::Cancelled
        } else {
            before
        };
        assert_eq!(cf.state(), after, "{made}");
    }
    let running = cf_in("running");
    assert!(!running.cancel());
    running.set_result(9).unwrap();
    assert_eq!(cf_result(&running), Ok(9), "the work can still finish");
    // The asyncio future, by contrast, says false the second time.
    let s = Scene::new();
    let fut = s.create_future::<i32>();
    assert!(fut.cancel() && !fut.cancel());
    let log = Log::new();
    let cf = Cf::new();
    let l = log.clone();
    cf.add_done_callback(move |f| l.push(format!("cancelled={}", f.cancelled())));
    assert!(cf.cancel() && cf.cancel());
    cf.set_running_or_notify_cancel().unwrap();
    assert_eq!(log.take(), ["cancelled=true"], "run once");
    let cf = cf_in("running");
    let l = log.clone();
    cf.add_done_callback(move |_| l.push("done"));
    assert!(!cf.cancel());
    assert!(log.get().is_empty(), "a failed cancel runs no callback");
    cf.set_result(1).unwrap();
    assert_eq!(log.take(), ["done"]);
}

/// `set_running_or_notify_cancel()`: pending becomes running (true),
/// cancelled becomes cancelled-and-notified (false); any other state is
/// `RuntimeError: Future in unexpected state` (CPython too for
/// CANCELLED_AND_NOTIFIED, checked on 3.11.7), changing nothing.
/// Rules: CONC-4
#[test]
fn set_running_or_notify_cancel() {
    let cf = cf_in("pending");
    assert_eq!(cf.set_running_or_notify_cancel(), Ok(true));
    assert_eq!(cf.state(), CfState::Running);
    let cf = cf_in("cancelled");
    assert_eq!(cf.set_running_or_notify_cancel(), Ok(false));
    assert!(cf.state() == CfState::CancelledAndNotified && cf.cancelled());
    for made in ["running", "finished", "notified"] {
        let cf = cf_in(made);
        let before = cf.state();
        let err = cf.set_running_or_notify_cancel().unwrap_err();
        assert_eq!(err, Error::UnexpectedState, "{made}");
        assert_py_error(&err, "RuntimeError", "Future in unexpected state");
        assert_eq!(cf.state(), before, "{made}");
    }
}

/// A future completes — with a result or an exception — from pending or
/// running; completing a finished or cancelled one fails with
/// `InvalidStateError: STATE: <Future at 0x... state=...>` and keeps the
/// first outcome; the repr names the state, at the same address throughout.
/// Rules: CONC-5, ERR-1
#[test]
fn completing_a_concurrent_future() {
    for made in ["pending", "running"] {
        let cf = cf_in(made);
        assert_eq!(cf.set_result(2), Ok(()));
        assert_eq!(cf_result(&cf), Ok(2));
        let cf = cf_in(made);
        assert_eq!(cf.set_exception(value_error("b")), Ok(()));
        assert_eq!(cf_exception(&cf), Ok(Some(value_error("b"))));
    }
    let returned = " state=finished returned i32>";
    let cf = cf_in("finished");
    assert_invalid_state(&cf.set_result(2).unwrap_err(), "FINISHED", returned);
    let err = cf.set_exception(value_error("y")).unwrap_err();
    assert_invalid_state(&err, "FINISHED", returned);
    assert_eq!(cf_result(&cf), Ok(1));
    let failed = cf_in("failed");
    let raised = " state=finished raised ValueError>";
    assert_invalid_state(&failed.set_result(2).unwrap_err(), "FINISHED", raised);
    assert_eq!(cf_exception(&failed), Ok(Some(value_error("x"))));
    let cf = cf_in("cancelled");
    assert_invalid_state(
        &cf.set_result(1).unwrap_err(),
        "CANCELLED",
        " state=cancelled>",
    );
    cf.set_running_or_notify_cancel().unwrap();
    let err = cf.set_exception(value_error("v")).unwrap_err();
    assert_invalid_state(&err, "CANCELLED_AND_NOTIFIED", " state=cancelled>");
    assert_cancelled(&cf_result(&cf).unwrap_err());
    let cf = Cf::new();
    let pending = format!("{cf:?}");
    assert!(pending.starts_with("<Future at 0x"), "{pending}");
    assert!(pending.ends_with(" state=pending>"), "{pending}");
    cf.set_running_or_notify_cancel().unwrap();
    assert!(format!("{cf:?}").ends_with(" state=running>"));
    cf.set_result(3).unwrap();
    assert!(format!("{cf:?}").ends_with(returned));
    let addr = |s: &str| s.split(' ').nth(2).unwrap().to_string();
    assert_eq!(addr(&pending), addr(&format!("{cf:?}")));
}

/// Done callbacks run inside the call that completes or cancels the future,
/// in that call's thread, in registration order — at once, in the adding
/// thread, for one added to a done future — and a panicking one does not
/// stop the others or escape.
/// Rules: CONC-6, CONC-3
#[test]
fn done_callbacks_run_where_the_future_is_done() {
    cases(&[
        ("in the completing thread, inside the call", |_| {
            let cf = Cf::new();
            let seen = Arc::new(Mutex::new(Vec::new()));
            for _ in 0..2 {
                let s = seen.clone();
                cf.add_done_callback(move |f| {
                    let outcome = f.result(Some(Duration::ZERO));
                    s.lock().unwrap().push((thread::current().id(), outcome));
                });
            }
            assert!(seen.lock().unwrap().is_empty(), "not run before completion");
            let ((), completer) = on_another_thread(&cf, |c| c.set_result(7).unwrap());
            let seen = seen.lock().unwrap().clone();
            assert_eq!(seen, [(completer, Ok(7)), (completer, Ok(7))]);
            assert_ne!(completer, thread::current().id());
            let cf = Cf::new();
            let here = Arc::new(Mutex::new(None));
            let r = here.clone();
            cf.add_done_callback(move |_| *r.lock().unwrap() = Some(thread::current().id()));
            cf.set_exception(value_error("v")).unwrap();
            assert_eq!(*here.lock().unwrap(), Some(thread::current().id()));
        }),
        ("in the cancelling thread", |_| {
            let cf = Cf::new();
            let ran_in = Arc::new(Mutex::new(None));
            let r = ran_in.clone();
            cf.add_done_callback(move |f| {
                *r.lock().unwrap() = Some((thread::current().id(), f.cancelled()))
            });
            let (cancelled, id) = on_another_thread(&cf, |c| c.cancel());
            assert!(cancelled);
            assert_eq!(*ran_in.lock().unwrap(), Some((id, true)));
        }),
        ("added when done: at once, in the adding thread", |_| {
            let cf = Cf::new();
            on_another_thread(&cf, |c| c.set_result(5).unwrap());
            let ran_in = Arc::new(Mutex::new(None));
            let r = ran_in.clone();
            cf.add_done_callback(move |f| {
                *r.lock().unwrap() = Some((thread::current().id(), cf_result(f)))
            });
            let me = thread::current().id();
            assert_eq!(*ran_in.lock().unwrap(), Some((me, Ok(5))));
            let r2 = Arc::new(Mutex::new(None));
            let rr = r2.clone();
            let ((), adder) = on_another_thread(&cf, move |c| {
                c.add_done_callback(move |_| *rr.lock().unwrap() = Some(thread::current().id()));
            });
            assert_eq!(*r2.lock().unwrap(), Some(adder));
            let log = Log::new();
            let l = log.clone();
            cf_in("cancelled").add_done_callback(move |f| l.push(format!("{}", f.cancelled())));
            assert_eq!(log.take(), ["true"]);
        }),
        ("in registration order; a panic stops no other", |_| {
            let cf = Cf::new();
            let log = Log::new();
            for name in ["a", "b"] {
                let log = log.clone();
                cf.add_done_callback(move |_| log.push(name));
            }
            cf.add_done_callback(|_| panic!("callback failed"));
            let l = log.clone();
            cf.add_done_callback(move |_| l.push("c"));
            // The completion succeeds and the panic does not escape.
            assert_eq!(cf.set_result(1), Ok(()));
            assert_eq!(log.take(), ["a", "b", "c"]);
            assert_eq!(cf_result(&cf), Ok(1));
            cf.add_done_callback(|_| panic!("late callback failed"));
            let l = log.clone();
            cf.add_done_callback(move |_| l.push("late"));
            assert_eq!(log.take(), ["late"]);
            let cancelled = Cf::new();
            cancelled.add_done_callback(|_| panic!("callback failed"));
            let l = log.clone();
            cancelled.add_done_callback(move |f| l.push(format!("cancelled={}", f.cancelled())));
            assert!(cancelled.cancel());
            assert_eq!(log.take(), ["cancelled=true"]);
        }),
    ]);
}

/// A concurrent future is awaitable by any executor — tokio's `block_on` or
/// a loopspec task — completed or cancelled from another thread while it
/// waits, or done already (again and again), with the outcomes of CONC-2.
/// Rules: CONC-7, CONC-2
#[test]
fn a_concurrent_future_is_awaitable_by_any_executor() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let cf = Cf::new();
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
    let failed = Cf::new();
    on_another_thread(&failed, |f| f.set_exception(value_error("bad")).unwrap());
    assert_eq!(rt.block_on(failed), Err(value_error("bad")));
    let cancelled = Cf::new();
    let c = cancelled.clone();
    let canceller = thread::spawn(move || assert!(c.cancel()));
    let got = rt.block_on(cancelled);
    canceller.join().unwrap();
    assert_cancelled(&got.unwrap_err());
    let done = cf_in("finished");
    assert_eq!(
        (rt.block_on(done.clone()), rt.block_on(done.clone())),
        (Ok(1), Ok(1))
    );
    let s = Scene::new();
    assert_eq!(s.run_until_complete(done), Ok(1));
    for cancel in [false, true] {
        let cf = ConcurrentFuture::<String>::new();
        let c = cf.clone();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let other = thread::spawn(move || {
            recv_or_hang(&go_rx, "the task is waiting");
            if cancel {
                assert!(c.cancel());
            } else {
                c.set_result("from a thread".into()).unwrap();
            }
        });
        let got = s.run_until_complete(async move {
            // The completion can only happen after this task waits.
            go_tx.send(()).unwrap();
            Ok(cf.await)
        });
        other.join().unwrap();
        match got.unwrap() {
            Err(e) => assert!(cancel && e == Error::Cancelled(None), "{e:?}"),
            Ok(v) => assert!(!cancel && v == "from a thread"),
        }
    }
    s.close().unwrap();
}
