//! Loom model: a local home thread that exits takes only its local work
//! with it; the loop's own work — a cross-thread submission it took in, a
//! `Send` callback it scheduled — stays (SPEC.md THREAD-4, THREAD-8).
#![cfg(loom)]

use common::loom_models::{bump, run_once_after_the_local_home_exits};
use common::{count, counter, vloop};

/// A submission races with another thread that schedules a `Send` callback
/// and a local one (which makes it the loop's local home; its calls take
/// the inbox into the loop's work) and exits. Whichever happens first, the
/// submission and the `Send` callback run exactly once when the loop next
/// runs, and the local callback never.
/// Catches: `exit-purges-send-entries`.
/// Rules: THREAD-4, THREAD-8, XTHREAD-1
#[test]
fn loom_local_home_exit_racing_a_submission_loses_nothing() {
    loom::model(|| {
        let lp = vloop();
        let (ran, sent, local) = (counter(), counter(), counter());
        let (remote, tick) = (lp.clone(), bump(&ran));
        let producer = loom::thread::spawn(move || {
            remote.call_soon_threadsafe(tick).unwrap();
        });
        let (home, s, l) = (lp.clone(), bump(&sent), bump(&local));
        let short_lived_home = loom::thread::spawn(move || {
            home.call_soon(s).unwrap();
            home.call_soon_local(l).unwrap();
        });
        producer.join().unwrap();
        short_lived_home.join().unwrap();
        run_once_after_the_local_home_exits(&lp);
        assert_eq!((count(&ran), count(&sent), count(&local)), (1, 1, 0));
    });
}
