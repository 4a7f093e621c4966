//! Loom models: `close()` racing with cross-thread submissions (SPEC.md
//! XTHREAD-3).
#![cfg(loom)]

use common::loom_models::bump;
use common::{DropCount, count, counter, vloop};
use loopspec::{Error, EventLoop};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

/// Spawns a thread that submits one callback to `lp`, returning whether it
/// was accepted (a refusal must be `Event loop is closed`), with counters of
/// the callback's runs and of its closure's drops.
fn submit_from_another_thread(
    lp: &EventLoop,
) -> (
    loom::thread::JoinHandle<bool>,
    Arc<AtomicUsize>,
    Arc<AtomicUsize>,
) {
    let (ran, drops) = (counter(), counter());
    let (remote, tick, d) = (lp.clone(), bump(&ran), drops.clone());
    let producer = loom::thread::spawn(move || {
        // Stands for the submitted closure's captures.
        let guard = DropCount(d);
        let outcome = remote.call_soon_threadsafe(move || {
            let _guard = &guard;
            tick();
        });
        match outcome {
            Ok(_) => true,
            Err(e) => {
                assert_eq!(e, Error::Closed);
                false
            }
        }
    });
    (producer, ran, drops)
}

/// A submission racing with `close()` from another thread is accepted (and
/// then dropped by `close()`) or refused with `Event loop is closed`; either
/// way it never runs, its closure is dropped exactly once by the time both
/// calls have returned, and nothing is left in the closed loop's inbox.
/// Catches: `close-skips-drain`, `schedule-on-closed`.
/// Rules: XTHREAD-3
#[test]
fn loom_submission_racing_close_is_refused_or_dropped_never_left_behind() {
    loom::model(|| {
        let lp = vloop();
        let (producer, ran, drops) = submit_from_another_thread(&lp);
        lp.close().unwrap();
        let accepted = producer.join().unwrap();
        assert_eq!(count(&ran), 0, "ran on a closed loop");
        assert_eq!(count(&drops), 1, "closure not dropped once");
        let stats = lp.inbox_stats();
        assert_eq!(stats.queued, 0, "left in a closed loop's inbox");
        assert_eq!(stats.submissions, u64::from(accepted));
    });
}

/// A thread that sees the loop closed and then submits is refused: `close()`
/// closes the inbox under the lock that `is_closed()` reads, so there is no
/// moment when the loop says it is closed and still accepts work.
/// Catches: `close-inbox-late`.
/// Rules: XTHREAD-3
#[test]
fn loom_submission_after_is_closed_is_refused() {
    loom::model(|| {
        let lp = vloop();
        let remote = lp.clone();
        let producer = loom::thread::spawn(move || {
            let seen_closed = remote.is_closed();
            let outcome = remote.call_soon_threadsafe(|| {});
            if seen_closed {
                assert_eq!(
                    outcome.err(),
                    Some(Error::Closed),
                    "accepted after is_closed()"
                );
            }
        });
        lp.close().unwrap();
        producer.join().unwrap();
    });
}

/// The same race with the loop running one iteration before `close()`: the
/// submission runs (then the call returned `Ok`), is dropped by `close()`
/// (`Ok`), or is refused (`Event loop is closed`, never run). A call that
/// reports the loop closed never has its callback run.
/// Catches: `refuse-after-send` (sending before the announce, the bug
/// `tests/threads/xthread.rs`'s racing-close test found in this inbox's first
/// version), `close-skips-drain`.
/// Rules: XTHREAD-3
#[test]
fn loom_submission_racing_a_run_then_close_runs_only_if_accepted() {
    loom::model(|| {
        let lp = vloop();
        let (producer, ran, drops) = submit_from_another_thread(&lp);
        lp.stop();
        lp.run_forever().unwrap();
        lp.close().unwrap();
        let accepted = producer.join().unwrap();
        let ran = count(&ran);
        assert!(ran == 0 || accepted, "refused, yet it ran");
        assert_eq!(count(&drops), 1, "closure not dropped once");
        let stats = lp.inbox_stats();
        assert_eq!(stats.queued, 0, "left in a closed loop's inbox");
        assert_eq!(stats.submissions, u64::from(accepted));
    });
}
