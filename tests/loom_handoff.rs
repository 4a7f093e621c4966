//! Loom models: the hand-off of a loop's work between threads (SPEC.md
//! THREAD-3, THREAD-8, THREAD-9; H1–H6 of `docs/send-work.md` §4). Any
//! thread may run the loop next, and a call on an idle loop borrows its
//! work; whichever thread holds the work, nothing is lost, run twice or run
//! by two threads at once.
//!
//! Built only with `--cfg loom`; see `.ci/loom`. Each model names the rules it
//! checks and the planted bug it catches (a `loopspec_mutant` value). Some of
//! those bugs show as a failed debug assertion of H1 (a run that finds no
//! work in the slot of a loop nobody holds) or of H6 (a local token without
//! its value); `.ci/loom` builds with debug assertions.
#![cfg(loom)]
// A loopspec future passed to create_task as it is would be refused (TASK-2):
// the async blocks that only await one future are the tasks' coroutines.
#![allow(clippy::redundant_async_block)]

use common::loom_models::{bump, real_loop, run_in_thread, run_once_after_the_local_home_exits};
use common::{DropCount, count, counter, vloop};
use loopspec::{Error, EventLoop};
use std::sync::atomic::Ordering;

/// `run_until_complete(fut)` on this thread until it returns the result;
/// in between it may meet another thread's run (LIFE-5), a stop meant for
/// that run (STOP-7), or that thread's local work (THREAD-2).
///
/// The other thread's run is asked to stop, at each meeting and once at
/// the end: the stop it requested for itself may have been taken by one of
/// this thread's runs, whose end clears the flag (STOP-1), and then nothing
/// else ends it.
fn run_until_complete_retrying<F>(lp: &EventLoop, fut: F) -> i32
where
    F: std::future::Future<Output = loopspec::Result<i32>> + Clone + 'static,
{
    loop {
        match lp.run_until_complete(fut.clone()) {
            Ok(v) => {
                lp.stop();
                return v;
            }
            Err(Error::AlreadyRunning) => {
                lp.stop();
                loom::thread::yield_now();
            }
            Err(Error::StoppedBeforeComplete | Error::BoundToThread { .. }) => {
                loom::thread::yield_now();
            }
            Err(e) => panic!("not an allowed outcome: {e:?}"),
        }
    }
}

/// `stop()` racing with `run_forever()` starting in another thread, on a
/// real-clock loop with a `Send` callback queued. Allowed outcomes: the
/// stop lands before the run's claim (STOP-2: exactly one iteration, which
/// runs the callback), or during the run (the run ends after the current
/// iteration, or the stop wakes the parked loop, STOP-5). Either way the
/// run returns `Ok`, the callback ran once and the loop is not running.
/// Catches: `stop-cleared-at-claim`.
/// Rules: STOP-2, STOP-5, THREAD-3
#[test]
fn loom_stop_racing_run_forever_in_another_thread() {
    loom::model(|| {
        let lp = real_loop();
        let ran = counter();
        lp.call_soon(bump(&ran)).unwrap();
        let worker = run_in_thread(&lp);
        lp.stop();
        assert_eq!(worker.join().unwrap(), Ok(()));
        assert_eq!(count(&ran), 1);
        assert!(!lp.is_running());
    });
}

/// A thread's run ends (it stopped itself first) while this thread starts
/// one: `run_until_complete` of a `Send` task that yields once. Allowed
/// outcomes: either run may come first; the other gets "This event loop is
/// already running" (LIFE-5) or runs after it, and this thread's run may be
/// stopped by the other's stop (STOP-7) and is tried again (this thread
/// then stops the other's run itself, see `run_until_complete_retrying`).
/// Either way the task's two steps each run exactly once, on whichever
/// thread holds the work then (THREAD-8), this thread gets its result, the
/// other thread's `run_forever` returns `Ok` or "already running", and the
/// loop is not running afterwards.
/// Catches: `release-before-put-back`, `claim-unlocked`.
/// Rules: LIFE-5, THREAD-3, THREAD-8
#[test]
fn loom_run_starting_while_the_previous_runner_returns() {
    loom::model(|| {
        let lp = vloop();
        let steps = counter();
        let s = steps.clone();
        let task = lp
            .create_task(async move {
                s.fetch_add(1, Ordering::SeqCst);
                loopspec::yield_now().await?;
                s.fetch_add(1, Ordering::SeqCst);
                Ok(7)
            })
            .unwrap();
        let remote = lp.clone();
        let other = loom::thread::spawn(move || {
            remote.stop();
            remote.run_forever()
        });
        let got = run_until_complete_retrying(&lp, task);
        let there = other.join().unwrap();
        assert!(
            matches!(there, Ok(()) | Err(Error::AlreadyRunning)),
            "{there:?}"
        );
        assert_eq!(got, 7);
        assert_eq!(count(&steps), 2);
        assert!(!lp.is_running());
        // A done callback may still be queued, and it refers to the loop:
        // only close() releases them (see SPEC.md's Rust mapping).
        lp.close().unwrap();
    });
}

/// A thread runs the loop, then schedules local work (making it the loop's
/// local home) and exits, while this thread completes the future a `Send`
/// task awaits and runs the task. The completion may race with the task's
/// first step in the other thread's run: the step finds the future done,
/// or the task is woken by it (THREAD-9). Allowed outcomes: this thread's
/// run is refused while the other one runs (LIFE-5) or is the local home
/// (THREAD-2), or stopped by the other's stop (STOP-7), and is tried
/// again; the local call is refused if this
/// thread runs the loop at that moment (THREAD-1; the closure is dropped by
/// the call). Either way this thread gets the task's result (the task is
/// the loop's, and stays when the local home exits, THREAD-8), the local
/// closure never runs and is dropped exactly once (THREAD-4), and the loop
/// is not running afterwards.
/// Catches: `exit-drops-send-work`, `release-local-before-purge`.
/// Rules: THREAD-4, THREAD-8, THREAD-2
#[test]
fn loom_thread_exiting_while_another_starts_a_run() {
    loom::model(|| {
        let lp = vloop();
        let fut = lp.create_future::<i32>();
        let awaited = fut.clone();
        let task = lp.create_task(async move { awaited.await }).unwrap();
        let (ran, dropped) = (counter(), counter());
        let (remote, r, d) = (lp.clone(), ran.clone(), DropCount(dropped.clone()));
        let short_lived_home = loom::thread::spawn(move || {
            remote.stop();
            let run = remote.run_forever();
            assert!(
                matches!(run, Ok(()) | Err(Error::AlreadyRunning)),
                "{run:?}"
            );
            let local = remote.call_soon_local(move || {
                let _held = &d;
                r.fetch_add(1, Ordering::SeqCst);
            });
            assert!(
                matches!(local, Ok(_) | Err(Error::NonThreadSafeCall)),
                "{local:?}"
            );
        });
        fut.set_result(7).unwrap();
        let got = run_until_complete_retrying(&lp, task);
        short_lived_home.join().unwrap();
        run_once_after_the_local_home_exits(&lp);
        assert_eq!(got, 7);
        assert_eq!((count(&ran), count(&dropped)), (0, 1));
        assert!(!lp.is_running());
        lp.close().unwrap();
    });
}

/// `Task::cancel()` from this thread racing with another thread's
/// `run_until_complete` of the task, which awaits a future that nothing
/// else completes (its first step ran on this thread before). Allowed
/// outcomes: the cancel borrows the idle loop before the run claims it and
/// is delivered at once (TASK-4), or it reaches the run through the inbox
/// as a request (THREAD-1). Either way `cancel()` is true, the run returns
/// `CancelledError` with the task cancelled, and the loop is not running.
/// Catches: `borrow-unflagged`, `handoff-uncounted` (a run that waits out
/// the cancel's borrow and is never woken).
/// Rules: THREAD-9, THREAD-1
#[test]
fn loom_call_on_an_idle_loop_racing_a_run() {
    loom::model(|| {
        let lp = vloop();
        let never = lp.create_future::<i32>();
        let task = lp.create_task(async move { never.await }).unwrap();
        lp.stop();
        lp.run_forever().unwrap();
        assert!(!task.done());
        let (remote, t) = (lp.clone(), task.clone());
        let runner = loom::thread::spawn(move || remote.run_until_complete(t));
        assert!(task.cancel());
        let there = runner.join().unwrap();
        assert!(matches!(there, Err(Error::Cancelled(_))), "{there:?}");
        assert!(task.cancelled());
        assert!(!lp.is_running());
    });
}
