//! Loom models: wake-ups are never lost and are coalesced (SPEC.md XTHREAD-4).
#![cfg(loom)]

use loopspec::{ClockKind, EventLoop};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Submissions racing with the loop going to sleep all run: the last one
/// stops the loop, so a lost wake-up would leave it parked (loom reports the
/// deadlock).
/// Catches: `lost-wakeup`.
/// Rules: XTHREAD-1, XTHREAD-4
#[test]
fn loom_submission_racing_with_park_is_never_lost() {
    loom::model(|| {
        let lp = EventLoop::with_clock(ClockKind::Real);
        let ran = Arc::new(AtomicUsize::new(0));
        let (remote, r) = (lp.clone(), ran.clone());
        let other = loom::thread::spawn(move || {
            remote
                .call_soon_threadsafe(move || {
                    r.fetch_add(1, Ordering::Relaxed);
                })
                .unwrap();
            let stopper = remote.clone();
            remote.call_soon_threadsafe(move || stopper.stop()).unwrap();
        });
        lp.run_forever().unwrap();
        other.join().unwrap();
        assert_eq!(ran.load(Ordering::Relaxed), 1);
    });
}

/// A burst of submissions costs at most one wake-up per park: never more
/// condvar signals than times the loop parked.
/// Catches: `wake-every-push`.
/// Rules: XTHREAD-4
#[test]
fn loom_burst_issues_at_most_one_wakeup_per_park() {
    loom::model(|| {
        let lp = EventLoop::with_clock(ClockKind::Real);
        let remote = lp.clone();
        let other = loom::thread::spawn(move || {
            remote.call_soon_threadsafe(|| ()).unwrap();
            remote.call_soon_threadsafe(|| ()).unwrap();
            let stopper = remote.clone();
            remote.call_soon_threadsafe(move || stopper.stop()).unwrap();
        });
        lp.run_forever().unwrap();
        other.join().unwrap();
        let stats = lp.inbox_stats();
        assert_eq!(stats.submissions, 3);
        assert!(
            stats.wakeups <= stats.parks,
            "{} wake-ups for {} parks",
            stats.wakeups,
            stats.parks
        );
    });
}
