//! Loom models: linked-future completion across threads (SPEC.md CHAIN-*,
//! XTHREAD-7, XTHREAD-8).
#![cfg(loom)]

use common::loom_models::{real_loop, run_in_thread, set_result_in_thread, stop_threadsafe};
use common::{run_once, vloop};
use loom::sync::atomic::{AtomicBool, Ordering};
use loopspec::{CfState, ConcurrentFuture, Error, EventLoop, Future};
use std::sync::Arc;

/// A loop on the virtual clock, a concurrent future and its wrapper on the
/// loop (`wrap_future`).
fn wrapped_source() -> (EventLoop, ConcurrentFuture<u32>, Future<u32>) {
    let lp = vloop();
    let cf = ConcurrentFuture::new();
    let wrapper = loopspec::wrap_future(&cf, &lp).unwrap();
    (lp, cf, wrapper)
}

/// `run_coroutine_threadsafe` to a loop on another thread, with a third
/// thread cancelling the concurrent future. Allowed outcomes: the result (the
/// cancel came too late), or cancelled — and then the task may still have
/// finished, if its last step was queued before the forwarded cancel
/// (XTHREAD-8, as in CPython). The blocked `result()` always wakes; the future
/// has one final state.
/// Rules: XTHREAD-7, XTHREAD-8, CONC-2
#[test]
fn loom_run_coroutine_threadsafe_with_racing_cancel() {
    loom::model(|| {
        let src = real_loop();
        let loop_thread = run_in_thread(&src);
        let cf = loopspec::run_coroutine_threadsafe_local(
            || async {
                loopspec::yield_now().await?;
                Ok(1)
            },
            &src,
        )
        .unwrap();
        let c2 = cf.clone();
        let canceller = loom::thread::spawn(move || c2.cancel());
        let outcome = cf.result(None);
        let cancelled = canceller.join().unwrap();
        match (&outcome, cancelled) {
            (Ok(1), false) => assert_eq!(cf.state(), CfState::Finished),
            (Err(Error::Cancelled(None)), true) => assert!(cf.cancelled()),
            other => panic!("not an allowed outcome: {other:?}"),
        }
        stop_threadsafe(&src);
        loop_thread.join().unwrap().unwrap();
        // A forwarded cancel may still be queued: only close() releases it
        // (and the loop it refers to), see SPEC.md's Rust mapping.
        src.close().unwrap();
    });
}

/// Cancelling the concurrent future really cancels a task that cannot finish
/// by itself, whenever the cancel comes (before or after the loop took the
/// submission).
/// Catches: `cancel-not-forwarded`.
/// Rules: XTHREAD-8
#[test]
fn loom_cancelling_concurrent_future_cancels_the_task() {
    loom::model(|| {
        let src = real_loop();
        let loop_thread = run_in_thread(&src);
        let saw_cancel = Arc::new(AtomicBool::new(false));
        let saw = saw_cancel.clone();
        let cf = loopspec::run_coroutine_threadsafe_local(
            move || async move {
                let lp = loopspec::get_running_loop()?;
                let never = lp.create_future::<u32>();
                let r = never.await;
                if matches!(r, Err(Error::Cancelled(_))) {
                    saw.store(true, Ordering::SeqCst);
                    // Only a delivered cancellation ends the run: without it
                    // the loop parks for ever and loom reports the deadlock.
                    lp.stop();
                }
                r
            },
            &src,
        )
        .unwrap();
        let c2 = cf.clone();
        let canceller = loom::thread::spawn(move || assert!(c2.cancel()));
        canceller.join().unwrap();
        assert!(matches!(cf.result(None), Err(Error::Cancelled(None))));
        loop_thread.join().unwrap().unwrap();
        assert!(
            saw_cancel.load(Ordering::SeqCst),
            "the task was not cancelled"
        );
        // The loop's work refers to the loop: only close() releases it (see
        // SPEC.md's Rust mapping).
        src.close().unwrap();
    });
}

/// A wrapper cancelled on its loop while a worker thread completes the
/// source. The wrapper stays cancelled whatever the interleaving; the source
/// is cancelled (the worker saw it and did not start) or finished (it was
/// already running: its result is dropped).
/// Catches: `complete-cancelled`.
/// Rules: CHAIN-4, CHAIN-5, CHAIN-7
#[test]
fn loom_cancelled_wrapper_stays_cancelled_while_source_completes() {
    loom::model(|| {
        let (lp, cf, wrapper) = wrapped_source();
        let worker_cf = cf.clone();
        let worker = loom::thread::spawn(move || {
            if worker_cf.set_running_or_notify_cancel().unwrap() {
                worker_cf.set_result(5).unwrap();
            }
        });
        assert!(wrapper.cancel());
        run_once(&lp); // the wrapper's done callback cancels the source
        worker.join().unwrap();
        run_once(&lp); // a copy from the source, if any, arrives here
        assert!(wrapper.cancelled());
        assert!(
            matches!(
                cf.state(),
                CfState::CancelledAndNotified | CfState::Finished
            ),
            "{:?}",
            cf.state()
        );
    });
}

/// A source completed in another thread while the wrapper's loop is closed:
/// nothing is queued on the closed loop, nothing panics, the wrapper stays
/// pending.
/// Catches: `schedule-on-closed`.
/// Rules: CHAIN-6, XTHREAD-3
#[test]
fn loom_closed_destination_loop_gets_nothing() {
    loom::model(|| {
        let (lp, cf, wrapper) = wrapped_source();
        let worker = set_result_in_thread(&cf, 5);
        lp.close().unwrap();
        worker.join().unwrap();
        assert!(!wrapper.done());
        assert_eq!(lp.inbox_stats().queued, 0, "work queued on a closed loop");
        assert_eq!(lp.call_soon(|| ()).unwrap_err(), Error::Closed);
    });
}
