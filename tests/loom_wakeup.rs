//! Loom models: wake-ups are never lost and are coalesced (SPEC.md XTHREAD-4).
#![cfg(loom)]

use common::loom_models::{bump, real_loop, run_while, stop_threadsafe};
use common::{count, counter};

/// Submissions racing with the loop going to sleep all run: the last one
/// stops the loop, so a lost wake-up would leave it parked (loom reports the
/// deadlock).
/// Catches: `lost-wakeup`.
/// Rules: XTHREAD-1, XTHREAD-4
#[test]
fn loom_submission_racing_with_park_is_never_lost() {
    loom::model(|| {
        let lp = real_loop();
        let ran = counter();
        let tick = bump(&ran);
        run_while(&lp, move |remote| {
            remote.call_soon_threadsafe(tick).unwrap();
            stop_threadsafe(&remote);
        });
        assert_eq!(count(&ran), 1);
    });
}

/// A burst of submissions costs at most one wake-up per park: never more
/// condvar signals than times the loop parked.
/// Catches: `wake-every-push`.
/// Rules: XTHREAD-4
#[test]
fn loom_burst_issues_at_most_one_wakeup_per_park() {
    loom::model(|| {
        let lp = real_loop();
        run_while(&lp, |remote| {
            remote.call_soon_threadsafe(|| ()).unwrap();
            remote.call_soon_threadsafe(|| ()).unwrap();
            stop_threadsafe(&remote);
        });
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
