//! Loom models: one loop per thread (SPEC.md POLICY-1, POLICY-4, LIFE-5).
//!
//! Built only with `--cfg loom`; see `.ci/loom`. Each model names the rules it
//! checks and the planted bug it catches (a `loopspec_mutant` value; see `.ci/loom`).
#![cfg(loom)]

use common::vloop;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loopspec::{Error, EventLoop, Policy, Profile};
use std::sync::Arc as StdArc;

/// Two threads set their own loops and each sees only its own.
/// Catches: `shared-slot`.
/// Rules: POLICY-1
#[test]
fn loom_each_thread_sees_its_own_loop() {
    loom::model(|| {
        let policy = Policy::new(Profile::Py311);
        let p2 = policy.clone();
        let other = loom::thread::spawn(move || {
            let mine = vloop();
            p2.set_event_loop(Some(&mine));
            assert_eq!(p2.get_event_loop().unwrap(), mine);
        });
        let mine = vloop();
        policy.set_event_loop(Some(&mine));
        assert_eq!(policy.get_event_loop().unwrap(), mine);
        other.join().unwrap();
    });
}

/// Only the main thread gets a loop implicitly, whatever the interleaving.
/// Catches: `shared-slot`.
/// Rules: POLICY-3, POLICY-4
#[test]
fn loom_implicit_loop_only_in_main_thread() {
    loom::model(|| {
        let policy = Policy::new(Profile::Py311).with_main_thread(loom::thread::current().id());
        let p2 = policy.clone();
        let other = loom::thread::spawn(move || {
            let err = p2.get_event_loop().unwrap_err();
            assert!(matches!(err, Error::NoCurrentLoop { .. }), "{err:?}");
        });
        assert!(policy.get_event_loop().is_ok());
        other.join().unwrap();
    });
}

/// The same loop started from two threads at once: never two runs at the
/// same time. Allowed outcomes (SPEC.md LIFE-5): one runs and the other gets
/// "This event loop is already running" or, if it came before the run while
/// the first thread held the loop's work, THREAD-2's error; or both run, one
/// after the other.
/// Catches: `double-run`.
/// Rules: LIFE-5, THREAD-2
#[test]
fn loom_same_loop_from_two_threads_runs_once_at_a_time() {
    loom::model(|| {
        let lp = vloop();
        let inside = StdArc::new(AtomicUsize::new(0));
        let attempt = |lp: EventLoop, inside: StdArc<AtomicUsize>| {
            lp.run_until_complete(async move {
                assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two runs at once");
                loopspec::yield_now().await?;
                inside.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            })
        };
        let (lp2, inside2) = (lp.clone(), inside.clone());
        let other = loom::thread::spawn(move || attempt(lp2, inside2));
        let here = attempt(lp.clone(), inside);
        let there = other.join().unwrap();
        for r in [&here, &there] {
            assert!(
                matches!(
                    r,
                    Ok(())
                        | Err(Error::AlreadyRunning)
                        | Err(Error::NonThreadSafeCall)
                        | Err(Error::BoundToThread { .. })
                ),
                "{r:?}"
            );
        }
        assert!(here.is_ok() || there.is_ok(), "{here:?} {there:?}");
        assert!(!lp.is_running());
    });
}

/// A thread running one loop cannot run another.
/// Catches: `double-run` (which also skips this check).
/// Rules: LIFE-5
#[test]
fn loom_thread_running_a_loop_cannot_run_another() {
    loom::model(|| {
        let outer = vloop();
        let inner = vloop();
        let nested = outer
            .run_until_complete(async move { Ok(inner.run_forever()) })
            .unwrap();
        assert_eq!(nested, Err(Error::AnotherLoopRunning));
    });
}
