//! CHAIN rules of SPEC.md: `wrap_future`, asyncio's `_chain_future` between
//! a concurrent source and a loop-future destination.
//!
//! Virtual-clock loops driven one iteration at a time; any other thread is
//! joined before asserting. The racing cases of CHAIN-7 assert only that the
//! observed outcome is one of the allowed ones. Each case also checks that
//! nothing was reported to the loop's exception handler.
// A loopspec future passed to create_task as it is would be refused (TASK-2):
// the async blocks that only await one future are the coroutines under test.
#![allow(clippy::redundant_async_block)]

use common::{
    Scene, assert_cancelled, capture_exceptions, cases, cf_exception, cf_result, in_thread,
    recv_or_hang, value_error,
};
use loopspec::{CfState, ConcurrentFuture, Error, Future, LocalDoneCallback, Profile, wrap_future};
use std::sync::mpsc;
use std::thread;

/// A pending concurrent future and its wrapper on `s`'s loop.
fn wrapped<T: Clone + Send + 'static>(s: &Scene) -> (ConcurrentFuture<T>, Future<T>) {
    let cf = ConcurrentFuture::new();
    let w = wrap_future(&cf, s).unwrap();
    (cf, w)
}

/// Runs `f` with a clone of `cf` on a new thread and joins it.
fn on_another_thread<T: Send + 'static, R: Send + 'static>(
    cf: &ConcurrentFuture<T>,
    f: impl FnOnce(ConcurrentFuture<T>) -> R + Send + 'static,
) -> R {
    let cf = cf.clone();
    thread::spawn(move || f(cf)).join().unwrap()
}

/// Runs `body` on a new scene with a capturing exception handler, asserts
/// that the handler received nothing, and closes the loop.
fn quietly(body: impl FnOnce(&Scene)) {
    let s = Scene::new();
    let errors = capture_exceptions(&s);
    body(&s);
    assert!(errors.messages().is_empty(), "{:?}", errors.messages());
    s.close().unwrap();
}

/// `wrap_future(cf, loop)` makes a pending future of the loop — a new one
/// each time, all fed by the source — without touching the source; the
/// future is the loop's work, which any thread may make.
/// Rules: CHAIN-1, EXEC-1, THREAD-9
#[test]
fn wrap_future_makes_a_pending_future_of_the_loop() {
    cases(&[
        ("pending, of the loop; the source untouched", |s| {
            let (cf, w) = wrapped::<i32>(s);
            assert_eq!(w.get_loop(), s.lp);
            assert!(!w.done() && !w.cancelled());
            assert_eq!(cf.state(), CfState::Pending);
            s.once();
            assert!(!w.done());
            cf.set_result(8).unwrap();
            s.once();
            assert_eq!(w.result(), Ok(8));
        }),
        ("twice: two futures fed by one source", |s| {
            let (cf, a) = wrapped::<&str>(s);
            let b = wrap_future(&cf, s).unwrap();
            assert!(a != b, "two distinct destinations");
            on_another_thread(&cf, |c| c.set_result("x").unwrap());
            s.once();
            assert_eq!((a.result(), b.result()), (Ok("x"), Ok("x")));
        }),
        ("awaitable by run_until_complete, fed by a worker", |s| {
            let (cf, w) = wrapped::<u64>(s);
            let worker = cf.clone();
            let t = thread::spawn(move || {
                if worker.set_running_or_notify_cancel().unwrap() {
                    worker.set_result(99).unwrap();
                }
            });
            assert_eq!(s.run_until_complete(w), Ok(99));
            t.join().unwrap();
        }),
        (
            "the loop's work: made on another thread, whatever thread is the local home",
            |s| {
                s.call_soon_local(|| ()).unwrap(); // this thread is the local home now
                let lp = s.lp.clone();
                let w = on_another_thread(&ConcurrentFuture::<i32>::new(), move |c| {
                    let w = wrap_future(&c, &lp).unwrap();
                    c.set_result(5).unwrap();
                    w
                });
                s.once();
                assert_eq!(w.result(), Ok(5));
            },
        ),
    ]);
}

/// The wrapper gets the source's final state: its result, its exception (a
/// `TimeoutError` stays one, a panic's `Panic` too), its cancellation — the
/// source staying cancelled — and a `CancelledError` exception finishes it
/// without cancelling it (FUT-5).
/// Rules: CHAIN-2, FUT-5
#[test]
fn the_wrapper_copies_the_sources_state() {
    let s = Scene::new();
    let (cf, w) = wrapped::<String>(&s);
    cf.set_result("value".into()).unwrap();
    s.once();
    assert!(w.done() && !w.cancelled());
    assert_eq!(w.result(), Ok("value".to_string()));
    for e in [
        value_error("remote failure"),
        Error::Timeout,
        Error::Panic("boom".into()),
    ] {
        let (cf, w) = wrapped::<i32>(&s);
        cf.set_exception(e.clone()).unwrap();
        s.once();
        assert!(w.done() && !w.cancelled(), "{e:?}");
        assert_eq!((w.exception(), w.result()), (Ok(Some(e.clone())), Err(e)));
    }
    let (cf, w) = wrapped::<i32>(&s);
    assert!(cf.cancel());
    assert!(!w.done(), "copied in an iteration, not synchronously");
    s.once();
    assert!(w.cancelled());
    assert_cancelled(&w.result().unwrap_err());
    assert_eq!(cf.state(), CfState::Cancelled);
    let (cf, w) = wrapped::<i32>(&s);
    cf.set_exception(Error::Cancelled(Some("cf-cancel".into())))
        .unwrap();
    s.once();
    assert!(w.done() && !w.cancelled(), "finished with a CancelledError");
    let exc = w.exception().unwrap().unwrap();
    assert_eq!(exc, Error::Cancelled(Some("cf-cancel".into())));
    assert_eq!(
        format!("{exc} {exc:?}"),
        "cf-cancel CancelledError('cf-cancel')"
    );
}

/// The copy is made in an iteration, never synchronously — for a source
/// done or cancelled already, completed from this idle loop's thread or
/// from another — on the loop's thread, where the wrapper's done callbacks
/// then run; a completion from another thread wakes a parked loop.
/// Rules: CHAIN-3, THREAD-7
#[test]
fn the_copy_is_made_in_an_iteration() {
    cases(&[
        ("a source done or cancelled already", |s| {
            let cf = ConcurrentFuture::<i32>::new();
            cf.set_result(3).unwrap();
            let w = wrap_future(&cf, s).unwrap();
            let cancelled = ConcurrentFuture::<i32>::new();
            cancelled.cancel();
            let wc = wrap_future(&cancelled, s).unwrap();
            assert!(!w.done() && !wc.done(), "never synchronously");
            s.once();
            assert!(w.result() == Ok(3) && wc.cancelled());
        }),
        (
            "completed from the idle loop's own thread, or another",
            |s| {
                let (here, w1) = wrapped::<i32>(s);
                let (there, w2) = wrapped::<i32>(s);
                here.set_result(1).unwrap();
                on_another_thread(&there, |c| c.set_result(5).unwrap());
                assert!(!w1.done() && !w2.done());
                s.once();
                assert_eq!((w1.result(), w2.result()), (Ok(1), Ok(5)));
            },
        ),
        // Only the completion's submission can end the run.
        (
            "a completion from another thread wakes a parked loop",
            |s| {
                let (cf, w) = wrapped::<i32>(s);
                let (tx, rx) = mpsc::channel::<()>();
                let c = cf.clone();
                let completer = thread::spawn(move || {
                    recv_or_hang(&rx, "the loop is running");
                    c.set_result(12).unwrap();
                });
                s.call_soon(move || tx.send(()).unwrap()).unwrap();
                assert_eq!(s.run_until_complete(w), Ok(12));
                completer.join().unwrap();
            },
        ),
    ]);
    let (loop_thread, seen) = in_thread("chain-loop", || {
        let s = Scene::new();
        let (cf, w) = wrapped::<i32>(&s);
        let log = s.log.clone();
        let cb: LocalDoneCallback<i32> =
            std::rc::Rc::new(move |_| log.push(thread::current().name().unwrap_or("?")));
        w.add_done_callback_local(cb).unwrap();
        let completer = thread::Builder::new().name("completer".into());
        completer
            .spawn(move || cf.set_result(1))
            .unwrap()
            .join()
            .unwrap()
            .unwrap();
        assert!(s.once().is_empty(), "the copy; callbacks are scheduled");
        let ran = s.once(); // runs the done callbacks
        s.close().unwrap();
        (thread::current().name().map(String::from), ran)
    });
    assert_eq!(
        (loop_thread.as_deref(), seen),
        (Some("chain-loop"), vec!["chain-loop".into()])
    );
}

/// A source completed by a callback of the running destination loop: up to
/// 3.12 (and 3.13.0) the copy still waits an iteration; from 3.13 (3.13.18)
/// it is made at once, so the next callback of the same iteration sees the
/// wrapper done — and `wrap_future` of a done source, called from a task of
/// the running loop, returns it done.
/// Rules: CHAIN-3
#[test]
fn the_copy_inside_the_running_loop_by_profile() {
    for profile in Profile::ALL {
        let at_once = profile >= Profile::Py313;
        let s = Scene::with_profile(profile);
        let (cf, w) = wrapped::<i32>(&s);
        let w1 = w.clone();
        s.call_soon(move || cf.set_result(2).unwrap()).unwrap();
        s.soon(move |s| s.push(format!("done: {}", w1.done())));
        assert_eq!(s.once(), [format!("done: {at_once}")], "{profile:?}");
        assert_eq!(w.done(), at_once, "{profile:?}");
        s.once();
        assert_eq!(w.result(), Ok(2));
        let me = s.lp.clone();
        let done_at_once = s.run_until_complete(async move {
            let cf = ConcurrentFuture::<i32>::new();
            cf.set_result(4).unwrap();
            let w = wrap_future(&cf, &me)?;
            let at_once = w.done();
            assert_eq!(w.await, Ok(4));
            Ok(at_once)
        });
        assert_eq!(done_at_once, Ok(at_once), "{profile:?}");
        s.close().unwrap();
    }
}

/// Cancelling the wrapper — right after wrapping, or through a task
/// awaiting it — cancels the source one iteration later (CPython 3.11.7:
/// "source not cancelled right after chaining, cancelled after one
/// iteration"), and a worker that checks before starting does not start.
/// Rules: CHAIN-4
#[test]
fn cancelling_the_wrapper_cancels_the_source_one_iteration_later() {
    let s = Scene::new();
    let (cf, w) = wrapped::<i32>(&s);
    assert!(w.cancel_with(Some("stop".into())) && w.cancelled());
    assert_eq!(cf.state(), CfState::Pending, "not synchronously");
    s.once();
    assert_eq!(cf.state(), CfState::Cancelled);
    assert_eq!(cf.set_running_or_notify_cancel(), Ok(false));
    assert_eq!(w.result(), Err(Error::Cancelled(Some("stop".into()))));
    let (cf, w) = wrapped::<i32>(&s);
    let waiter = w.clone();
    let task = s.task(|_| async move { waiter.await });
    s.once(); // the task waits on the wrapper
    assert!(task.cancel()); // cancels the wrapper it waits on
    for _ in 0..3 {
        s.once();
    }
    assert!(task.cancelled() && w.cancelled() && cf.cancelled());
}

/// A cancelled wrapper of a source that is running leaves the source
/// running (its `cancel()` fails); the source finishes — from here or from
/// its worker thread — its outcome dropped, and the wrapper stays
/// cancelled.
/// Rules: CHAIN-5
#[test]
fn cancelling_the_wrapper_of_a_running_source_leaves_it_running() {
    quietly(|s| {
        let cf = ConcurrentFuture::<i32>::new();
        assert_eq!(cf.set_running_or_notify_cancel(), Ok(true));
        let w = wrap_future(&cf, s).unwrap();
        assert!(w.cancel());
        s.once();
        assert_eq!(
            cf.state(),
            CfState::Running,
            "cancel() of a running source fails"
        );
        assert_eq!(cf.set_result(5), Ok(()));
        s.once();
        s.once();
        assert!(w.cancelled(), "the wrapper stays cancelled");
        assert_eq!((cf.state(), cf_result(&cf)), (CfState::Finished, Ok(5)));
    });
    quietly(|s| {
        let (cf, w) = wrapped::<i32>(s);
        let (started_tx, started_rx) = mpsc::channel();
        let (finish_tx, finish_rx) = mpsc::channel::<()>();
        let worker_cf = cf.clone();
        let worker = thread::spawn(move || {
            assert!(worker_cf.set_running_or_notify_cancel().unwrap());
            started_tx.send(()).unwrap();
            recv_or_hang(&finish_rx, "the go-ahead to finish");
            worker_cf.set_exception(value_error("late"))
        });
        recv_or_hang(&started_rx, "the worker started");
        w.cancel();
        s.once();
        finish_tx.send(()).unwrap();
        assert_eq!(worker.join().unwrap(), Ok(()));
        s.once();
        assert_cancelled(&w.result().unwrap_err());
        assert_eq!(cf_exception(&cf), Ok(Some(value_error("late"))));
    });
}

/// A wrapper on a closed loop stays pending when its source completes —
/// from any thread, whether the loop was closed before or after the
/// wrapping, or after the copy was queued — and nothing is scheduled or
/// reported.
/// Rules: CHAIN-6
#[test]
fn a_wrapper_on_a_closed_loop_stays_pending() {
    quietly(|s| {
        let (cf, w) = wrapped::<i32>(s);
        let (there, w2) = wrapped::<i32>(s);
        let (queued, w3) = wrapped::<i32>(s);
        queued.set_result(1).unwrap(); // the copy is queued
        s.close().unwrap(); // and dropped
        let before = s.inbox_stats().submissions;
        assert_eq!(cf.set_result(1), Ok(()));
        let r = on_another_thread(&there, |c| c.set_exception(value_error("v")));
        assert_eq!(r, Ok(()));
        assert!(!w.done() && !w2.done() && !w3.done());
        assert_eq!(s.inbox_stats().submissions, before, "nothing scheduled");
        let late = ConcurrentFuture::<i32>::new();
        let w = wrap_future(&late, s).unwrap();
        assert!(!w.done() && w.get_loop() == s.lp);
        late.set_result(1).unwrap();
        assert!(!w.done() && late.state() == CfState::Finished);
        assert_eq!(s.inbox_stats().submissions, before);
    });
}

/// The destination cancelled and the source completing, in any order: the
/// destination ends cancelled and the source keeps its own state — finished
/// if it was (a queued copy is ignored), cancelled if the destination's
/// cancel reached it first (its worker then refuses to start), never both.
/// Rules: CHAIN-7
#[test]
fn destination_cancel_and_source_completion_in_any_order() {
    quietly(|s| {
        let (cf, w) = wrapped::<i32>(s);
        cf.set_result(1).unwrap(); // copy queued
        assert!(w.cancel()); // the destination is cancelled first
        for _ in 0..3 {
            s.once();
        }
        assert!(w.cancelled(), "the queued copy is ignored");
        assert_eq!((cf.state(), cf_result(&cf)), (CfState::Finished, Ok(1)));
    });
    quietly(|s| {
        let (cf, w) = wrapped::<i32>(s);
        assert!(w.cancel());
        on_another_thread(&cf, |c| c.set_result(1).unwrap());
        for _ in 0..3 {
            s.once();
        }
        assert!(w.cancelled());
        assert_eq!(
            cf.state(),
            CfState::Finished,
            "a finished source is not cancelled"
        );
    });
    quietly(|s| {
        let (cf, w) = wrapped::<i32>(s);
        assert!(w.cancel());
        s.once();
        assert_eq!(cf.state(), CfState::Cancelled);
        // The source's cancellation copies back into the cancelled wrapper.
        s.once();
        s.once();
        assert!(w.cancelled());
        assert_eq!(cf.set_running_or_notify_cancel(), Ok(false));
    });
}

/// The destination's cancel racing with a worker completing the source,
/// 200 times: the destination ends cancelled, and the source either
/// finished (the worker started) or was cancelled (it did not).
/// Rules: CHAIN-7
#[test]
fn destination_cancel_racing_with_source_completion_has_an_allowed_outcome() {
    for i in 0..200 {
        quietly(|s| {
            let (cf, w) = wrapped::<i32>(s);
            let c = cf.clone();
            let (ready_tx, ready_rx) = mpsc::channel();
            let worker = thread::spawn(move || {
                ready_tx.send(()).unwrap();
                let started = c.set_running_or_notify_cancel().unwrap();
                started
                    .then(|| c.set_result(i))
                    .transpose()
                    .map(|r| r.is_some())
            });
            recv_or_hang(&ready_rx, "the worker is ready");
            assert!(w.cancel());
            s.once(); // races with the worker
            let worked = worker.join().unwrap();
            s.once();
            s.once();
            assert!(w.cancelled(), "run {i}: the destination ends cancelled");
            match (cf.state(), worked) {
                (CfState::Finished, Ok(true)) => assert_eq!(cf_result(&cf), Ok(i)),
                (CfState::CancelledAndNotified, Ok(false)) => {}
                other => panic!("run {i}: outcome not allowed: {other:?}"),
            }
        });
    }
}

/// A source completing in another thread while its wrapper's loop closes,
/// 200 times: the source finishes, the wrapper is never completed.
/// Rules: CHAIN-7, CHAIN-6
#[test]
fn source_completion_racing_with_close_leaves_one_state_each() {
    for i in 0..200 {
        let s = Scene::new();
        let errors = capture_exceptions(&s);
        let (cf, w) = wrapped::<i32>(&s);
        let c = cf.clone();
        let worker = thread::spawn(move || c.set_result(i));
        s.close().unwrap();
        assert_eq!(worker.join().unwrap(), Ok(()), "run {i}");
        assert_eq!(cf.state(), CfState::Finished);
        assert!(
            !w.done(),
            "run {i}: never copied into a closed loop's future"
        );
        assert!(errors.messages().is_empty());
    }
}
