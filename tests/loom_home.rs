//! Loom model: a home thread that exits keeps no cross-thread submission
//! (SPEC.md THREAD-4).
#![cfg(loom)]

use common::loom_models::bump;
use common::{count, counter, vloop};
use loopspec::Error;

/// A submission races with another thread claiming the loop (a loop-bound
/// call takes the inbox into that thread's half) and exiting. Whichever
/// happens first, the submission runs exactly once when the loop next runs.
/// Catches: `exit-drops-submissions`.
/// Rules: THREAD-4, XTHREAD-1
#[test]
fn loom_home_exit_racing_a_submission_loses_nothing() {
    loom::model(|| {
        let lp = vloop();
        let ran = counter();
        let (remote, tick) = (lp.clone(), bump(&ran));
        let producer = loom::thread::spawn(move || {
            remote.call_soon_threadsafe(tick).unwrap();
        });
        let home = lp.clone();
        let short_lived_home = loom::thread::spawn(move || {
            home.call_soon(|| ()).unwrap();
        });
        producer.join().unwrap();
        short_lived_home.join().unwrap();
        // Loom's join returns before the thread's thread-locals are dropped
        // (std's does not): until then the loop is still bound to it.
        loop {
            lp.stop();
            match lp.run_forever() {
                Ok(()) => break,
                Err(Error::BoundToThread { .. }) => loom::thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(count(&ran), 1);
    });
}
