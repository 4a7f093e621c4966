//! Loom models: stop semantics (SPEC.md STOP-1, STOP-2, STOP-5, STOP-7).
#![cfg(loom)]

use common::loom_models::{real_loop, run_while, stop_threadsafe};
use common::vloop;
use loopspec::Error;
use std::cell::RefCell;
use std::rc::Rc;

/// `call_soon_threadsafe(stop)` from another thread always ends a parked
/// `run_forever` (a real-clock loop with no timer parks without limit).
/// Catches: `lost-wakeup`.
/// Rules: STOP-5, XTHREAD-4
#[test]
fn loom_threadsafe_stop_ends_parked_run() {
    loom::model(|| {
        let lp = real_loop();
        run_while(&lp, |remote| stop_threadsafe(&remote));
        assert!(!lp.is_running());
    });
}

/// A plain `stop()` from another thread also ends a parked run (loopspec's
/// stop wakes the loop).
/// Catches: `stop-no-wake`.
/// Rules: STOP-5
#[test]
fn loom_plain_stop_from_other_thread_ends_parked_run() {
    loom::model(|| run_while(&real_loop(), |remote| remote.stop()));
}

/// A stop before the run gives exactly one iteration, and the flag is
/// cleared when the run returns: the next run goes on until its own stop,
/// which comes from another thread.
/// Catches: `clear-stop-early`.
/// Rules: STOP-1, STOP-2, STOP-4
#[test]
fn loom_stop_before_run_gives_one_iteration_then_flag_is_clear() {
    loom::model(|| {
        let lp = real_loop();
        let log = Rc::new(RefCell::new(Vec::new()));
        let (l1, lp1) = (log.clone(), lp.clone());
        lp.call_soon_local(move || {
            l1.borrow_mut().push("a");
            let l2 = l1.clone();
            lp1.call_soon_local(move || l2.borrow_mut().push("b"))
                .unwrap();
        })
        .unwrap();
        lp.stop();
        lp.run_forever().unwrap();
        assert_eq!(*log.borrow(), ["a"]);
        run_while(&lp, |remote| stop_threadsafe(&remote));
        assert_eq!(*log.borrow(), ["a", "b"]);
    });
}

/// A stop from another thread racing with the natural end of
/// `run_until_complete`. Allowed outcomes (SPEC.md STOP-7): the result, or
/// "Event loop stopped before Future completed." with the task still pending
/// and finished by a second `run_until_complete` (which a stop left over from
/// the first run would break). Either way the loop is not running afterwards.
/// Catches: `stop-survives-run`.
/// Rules: STOP-1, STOP-6, STOP-7
#[test]
fn loom_stop_racing_with_run_until_complete_end() {
    loom::model(|| {
        let lp = vloop();
        let task = lp
            .create_task(async {
                loopspec::yield_now().await?;
                loopspec::yield_now().await?;
                Ok(7)
            })
            .unwrap();
        let remote = lp.clone();
        let other = loom::thread::spawn(move || remote.stop());
        let first = lp.run_until_complete(task.clone());
        other.join().unwrap();
        assert!(!lp.is_running());
        match first {
            Ok(v) => assert_eq!(v, 7),
            Err(Error::StoppedBeforeComplete) => {
                assert!(!task.done());
                assert_eq!(lp.run_until_complete(task.clone()).unwrap(), 7);
            }
            Err(e) => panic!("not an allowed outcome: {e:?}"),
        }
        // A done callback may still be queued, and it refers to the loop:
        // only close() releases them (see SPEC.md's Rust mapping).
        lp.close().unwrap();
    });
}
