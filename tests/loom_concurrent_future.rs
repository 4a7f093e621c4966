//! Loom models: `ConcurrentFuture` (SPEC.md CONC-2, CONC-3, CONC-6).
#![cfg(loom)]

use common::loom_models::set_result_in_thread;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loopspec::{CfState, ConcurrentFuture};
use std::sync::{Arc, Mutex};

/// `cancel()` racing with a worker that starts and finishes the future. The
/// done callback runs exactly once, in the thread whose call completed the
/// future. Allowed outcomes: cancel won (worker told not to start) or the
/// worker won (cancel returned false, result set).
/// Catches: `cancel-running`.
/// Rules: CONC-3, CONC-4, CONC-6
#[test]
fn loom_cancel_races_worker_and_callback_runs_once_where_completed() {
    loom::model(|| {
        let cf = ConcurrentFuture::<u32>::new();
        let calls = Arc::new(AtomicUsize::new(0));
        let ran_in = Arc::new(Mutex::new(None));
        let (c, r) = (calls.clone(), ran_in.clone());
        cf.add_done_callback(move |_| {
            c.fetch_add(1, Ordering::SeqCst);
            *r.lock().unwrap() = Some(loom::thread::current().id());
        });
        let worker_cf = cf.clone();
        let worker = loom::thread::spawn(move || {
            let started = worker_cf.set_running_or_notify_cancel().unwrap();
            if started {
                worker_cf.set_result(9).unwrap();
            }
            (started, loom::thread::current().id())
        });
        let cancelled = cf.cancel();
        let me = loom::thread::current().id();
        let (started, worker_id) = worker.join().unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let ran_in = ran_in.lock().unwrap().expect("callback ran");
        match (cancelled, started) {
            (true, false) => {
                assert_eq!(cf.state(), CfState::CancelledAndNotified);
                assert_eq!(ran_in, me);
            }
            (false, true) => {
                assert_eq!(cf.state(), CfState::Finished);
                assert_eq!(cf.result(None).unwrap(), 9);
                assert_eq!(ran_in, worker_id);
            }
            other => panic!("not an allowed outcome: {other:?}"),
        }
    });
}

/// A blocked `result()` always wakes when another thread finishes the future.
/// Catches: `cf-no-notify`.
/// Rules: CONC-2
#[test]
fn loom_blocked_result_always_wakes() {
    loom::model(|| {
        let cf = ConcurrentFuture::<u32>::new();
        let worker = set_result_in_thread(&cf, 3);
        assert_eq!(cf.result(None).unwrap(), 3);
        worker.join().unwrap();
    });
}

/// A callback added while another thread completes the future runs exactly
/// once: in the completing thread, or at once in the adding thread.
/// Catches: `callback-lost`.
/// Rules: CONC-6
#[test]
fn loom_callback_added_during_completion_runs_once() {
    loom::model(|| {
        let cf = ConcurrentFuture::<u32>::new();
        let worker = set_result_in_thread(&cf, 1);
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        cf.add_done_callback(move |_| {
            c.fetch_add(1, Ordering::SeqCst);
        });
        worker.join().unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    });
}
