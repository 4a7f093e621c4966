//! RUNNER rules of SPEC.md (`Runner`, `run_with_loop_factory`) and POLICY-14
//! (the deprecated policy API).
//!
//! Every test runs its body on a fresh thread (`common::in_thread`), so no
//! current-loop slot leaks between tests.

use common::{capture_exceptions, in_thread, vloop};
use loopspec::{
    ClockKind, Error, EventLoop, Policy, Profile, Runner, catch_warnings, get_event_loop_policy,
    get_event_loop_with, run_with_loop_factory, set_event_loop_policy, warnings,
};
use std::cell::Cell;
use std::rc::Rc;
use std::sync::Mutex;

/// A policy on the virtual clock (any profile: the runner rules do not
/// change from 3.11 to 3.15).
fn vpolicy() -> Policy {
    Policy::new(Profile::Py315).with_clock(ClockKind::Virtual)
}

/// The calling thread's slot, read without side effects (3.14's rules never
/// create a loop).
fn peek_slot() -> Option<EventLoop> {
    Policy::new(Profile::Py314).get_event_loop().ok()
}

/// Rules: RUNNER-1
#[test]
fn runner_makes_its_loop_at_the_first_get_loop_and_keeps_it() {
    in_thread("r1", || {
        let made = Rc::new(Cell::new(0));
        let m = made.clone();
        let mut runner = Runner::with_policy(vpolicy());
        assert_eq!(peek_slot(), None, "nothing is made before it is needed");
        let lp = runner.get_loop().unwrap();
        assert_eq!(runner.get_loop().unwrap(), lp);
        let ran = runner.run(async move {
            m.set(1);
            Ok(())
        });
        assert_eq!(ran, Ok(()));
        assert_eq!(made.get(), 1);
        assert_eq!(runner.get_loop().unwrap(), lp);
    });
}

/// Rules: RUNNER-1, RUNNER-2, POLICY-2
#[test]
fn runner_without_a_factory_is_the_current_loop_until_close() {
    in_thread("r2", || {
        let policy = vpolicy();
        let mut runner = Runner::with_policy(policy.clone());
        let lp = runner.get_loop().unwrap();
        assert_eq!(peek_slot(), Some(lp.clone()), "made current when made");
        let p = policy.clone();
        let during = runner
            .run(async move { Ok((get_event_loop_with(&p)?, p.get_event_loop()?)) })
            .unwrap();
        assert_eq!(during, (lp.clone(), lp.clone()));
        assert_eq!(get_event_loop_with(&policy).unwrap(), lp, "after run()");
        runner.close();
        assert!(lp.is_closed());
        assert_eq!(peek_slot(), None, "close() clears the slot");
    });
}

/// Rules: RUNNER-1, RUNNER-2
#[test]
fn runner_with_a_factory_never_touches_the_current_loop() {
    in_thread("r2-factory", || {
        let policy = vpolicy();
        let before = policy.new_event_loop();
        policy.set_event_loop(Some(&before));
        let mut runner = Runner::with_loop_factory(|| EventLoop::with_clock(ClockKind::Virtual));
        let lp = runner.get_loop().unwrap();
        assert_ne!(lp, before);
        let p = policy.clone();
        let during = runner
            .run(async move { Ok((get_event_loop_with(&p)?, p.get_event_loop()?)) })
            .unwrap();
        // The running loop wins (POLICY-2); the slot still holds `before`.
        assert_eq!(during, (lp.clone(), before.clone()));
        runner.close();
        assert!(lp.is_closed());
        assert_eq!(peek_slot(), Some(before));
    });
}

/// Rules: RUNNER-3
#[test]
fn runner_runs_twice_on_one_loop_and_tasks_live_on() {
    in_thread("r3-twice", || {
        let mut runner = Runner::with_policy(vpolicy());
        let lp = runner.get_loop().unwrap();
        let steps = Rc::new(Cell::new(0));
        let s = steps.clone();
        let background = runner
            .run(async move {
                loopspec::get_running_loop()?.create_task(async move {
                    loop {
                        loopspec::sleep(1.0).await?;
                        s.set(s.get() + 1);
                    }
                    #[allow(unreachable_code)]
                    Ok(())
                })
            })
            .unwrap();
        assert_eq!(steps.get(), 0, "the first run ended before the task slept");
        runner.run(async { loopspec::sleep(2.5).await }).unwrap();
        assert_eq!(steps.get(), 2, "the task ran during the second run");
        assert_eq!(lp.time(), 2.5);
        assert!(!background.done());
        runner.close();
        assert!(background.cancelled(), "close() cancels it");
    });
}

/// Rules: RUNNER-3
#[test]
fn runner_run_inside_a_running_loop_is_refused_before_anything_else() {
    in_thread("r3-nested", || {
        let outer = vloop();
        let (open, closed) = outer
            .run_until_complete(async {
                let mut open = Runner::with_policy(vpolicy());
                let mut closed = Runner::with_policy(vpolicy());
                closed.get_loop()?;
                closed.close();
                Ok((
                    open.run(async { Ok(()) }).unwrap_err(),
                    closed.run(async { Ok(()) }).unwrap_err(),
                ))
            })
            .unwrap();
        for err in [open, closed] {
            assert_eq!(err, Error::RunnerInRunningLoop);
            assert_eq!(
                err.to_string(),
                "Runner.run() cannot be called from a running event loop"
            );
            assert_eq!(err.python_type(), "RuntimeError");
        }
        assert_eq!(peek_slot(), None, "the refused runner made no loop");
    });
}

/// Rules: RUNNER-3, RUNNER-4
#[test]
fn runner_closed_refuses_run_and_get_loop() {
    in_thread("r4-closed", || {
        let mut runner = Runner::with_policy(vpolicy());
        runner.run(async { Ok(()) }).unwrap();
        runner.close();
        for err in [
            runner.run(async { Ok(()) }).unwrap_err(),
            runner.get_loop().unwrap_err(),
        ] {
            assert_eq!(err, Error::RunnerClosed);
            assert_eq!(err.to_string(), "Runner is closed");
            assert_eq!(err.python_type(), "RuntimeError");
        }
        runner.close(); // a second close does nothing
    });
}

/// Rules: RUNNER-4
#[test]
fn runner_close_of_an_unused_runner_does_nothing_and_it_still_runs() {
    in_thread("r4-unused", || {
        let mut runner = Runner::with_policy(vpolicy());
        runner.close();
        assert_eq!(runner.run(async { Ok(7) }), Ok(7));
    });
}

/// Rules: RUNNER-4, FUT-7
#[test]
fn runner_close_cancels_leftover_tasks_and_reports_what_they_raise() {
    in_thread("r4-leftover", || {
        let mut runner = Runner::with_policy(vpolicy());
        let lp = runner.get_loop().unwrap();
        let seen = capture_exceptions(&lp);
        let (quiet, stubborn) = runner
            .run(async {
                let l = loopspec::get_running_loop()?;
                let quiet = l.create_task(async {
                    loopspec::sleep(10.0).await?;
                    Ok(())
                })?;
                // Catches its cancellation and raises something else.
                let stubborn = l.create_task(async {
                    match loopspec::sleep(10.0).await {
                        Err(Error::Cancelled(_)) => Err(Error::raise("ValueError", "no")),
                        other => other,
                    }
                })?;
                loopspec::sleep(0.0).await?;
                Ok((quiet, stubborn))
            })
            .unwrap();
        runner.close();
        assert!(quiet.cancelled());
        assert_eq!(
            stubborn.exception(),
            Ok(Some(Error::raise("ValueError", "no")))
        );
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(
            seen[0].message,
            "unhandled exception during asyncio.run() shutdown"
        );
        assert_eq!(seen[0].exception, Some(Error::raise("ValueError", "no")));
        assert!(
            seen[0]
                .task
                .as_deref()
                .is_some_and(|t| t.starts_with("<Task finished name='Task-3' exception=")),
            "{:?}",
            seen[0].task
        );
    });
}

/// Rules: RUNNER-4
#[test]
fn runner_dropped_is_closed() {
    in_thread("r4-drop", || {
        let mut runner = Runner::with_policy(vpolicy());
        let lp = runner.get_loop().unwrap();
        drop(runner);
        assert!(lp.is_closed());
        assert_eq!(peek_slot(), None);
    });
}

/// Rules: RUNNER-5
#[test]
fn run_with_loop_factory_runs_on_the_factory_loop_and_closes_it() {
    in_thread("r5", || {
        let made = std::sync::Arc::new(Mutex::new(None));
        let m = made.clone();
        let out = run_with_loop_factory(
            async { loopspec::sleep(3.0).await.map(|()| "done") },
            move || {
                let lp = EventLoop::with_clock(ClockKind::Virtual);
                *m.lock().unwrap() = Some(lp.clone());
                lp
            },
        );
        assert_eq!(out, Ok("done"));
        let lp = made.lock().unwrap().take().unwrap();
        assert!(lp.is_closed());
        assert_eq!(lp.time(), 3.0);
        assert_eq!(peek_slot(), None, "a factory loop is never current");
    });
}

/// Rules: RUNNER-5, POLICY-13
#[test]
fn run_with_loop_factory_inside_a_running_loop_is_refused() {
    in_thread("r5-nested", || {
        let err = vloop()
            .run_until_complete(async {
                Ok(run_with_loop_factory(async { Ok(()) }, || {
                    EventLoop::with_clock(ClockKind::Virtual)
                })
                .unwrap_err())
            })
            .unwrap();
        assert_eq!(err, Error::RunInRunningLoop);
        assert_eq!(
            err.to_string(),
            "asyncio.run() cannot be called from a running event loop"
        );
    });
}

/// The process-wide policy is shared by every test of this binary: the
/// tests that set it run one at a time and restore the default.
static PROCESS_POLICY: Mutex<()> = Mutex::new(());

/// Rules: POLICY-14
#[test]
fn policy_api_warns_under_3_14_and_3_15() {
    let _one = PROCESS_POLICY.lock().unwrap_or_else(|p| p.into_inner());
    for profile in [Profile::Py314, Profile::Py315] {
        let (_, set) = catch_warnings(|| set_event_loop_policy(Some(Policy::new(profile))));
        let (got, get) = catch_warnings(get_event_loop_policy);
        assert_eq!(got.profile(), profile);
        let (_, reset) = catch_warnings(|| set_event_loop_policy(None));
        let texts: Vec<String> = [set, get, reset]
            .concat()
            .iter()
            .map(|w| w.to_string())
            .collect();
        assert_eq!(
            texts,
            [
                "DeprecationWarning: 'asyncio.set_event_loop_policy' is deprecated and slated for removal in Python 3.16",
                "DeprecationWarning: 'asyncio.get_event_loop_policy' is deprecated and slated for removal in Python 3.16",
                "DeprecationWarning: 'asyncio.set_event_loop_policy' is deprecated and slated for removal in Python 3.16",
            ]
        );
    }
}

/// Rules: POLICY-14
#[test]
fn policy_api_is_silent_before_3_14() {
    let _one = PROCESS_POLICY.lock().unwrap_or_else(|p| p.into_inner());
    for profile in [Profile::Py311, Profile::Py312, Profile::Py313] {
        let caught = warnings::catch();
        set_event_loop_policy(Some(Policy::new(profile)));
        assert_eq!(get_event_loop_policy().profile(), profile);
        set_event_loop_policy(None);
        assert_eq!(caught.take(), [], "{profile:?}");
    }
    assert_eq!(
        get_event_loop_policy().profile(),
        Profile::Py311,
        "the default again"
    );
}

/// Rules: POLICY-14, RUNNER-1
#[test]
fn runner_without_a_policy_uses_the_process_wide_one_silently() {
    let _one = PROCESS_POLICY.lock().unwrap_or_else(|p| p.into_inner());
    let _ = catch_warnings(|| set_event_loop_policy(Some(vpolicy())));
    let (profile, warned) = in_thread("r1-process", || {
        catch_warnings(|| {
            let mut runner = Runner::new();
            runner.run(async { Ok(loopspec::get_running_loop()?.profile()) })
        })
    });
    let _ = catch_warnings(|| set_event_loop_policy(None));
    assert_eq!(profile, Ok(Profile::Py315));
    assert_eq!(warned, [], "reading the policy internally does not warn");
}

/// A warning raised outside any scope goes nowhere; scopes nest and belong
/// to their thread.
/// Rules: POLICY-3
#[test]
fn warnings_go_to_the_innermost_scope_of_their_thread() {
    in_thread("w", || {
        let policy = Policy::new(Profile::Py313).with_main_thread(std::thread::current().id());
        let outer = warnings::catch();
        let (_, inner) = catch_warnings(|| policy.get_event_loop().unwrap());
        assert_eq!(inner.len(), 1);
        assert_eq!(outer.take(), [], "the inner scope took it");
        policy.set_event_loop(None);
        let p = policy.clone();
        // The "main thread" of this policy is this one: another thread
        // raises nothing, and this thread's scope would not see it anyway.
        in_thread("w-other", move || assert!(p.get_event_loop().is_err()));
        assert_eq!(outer.take(), []);
    });
}

/// A runner is `Send`: moving it to another thread hands its loop over, on
/// loopspec's condition that the loop holds no loop-bound work (THREAD-3);
/// with a task still pending on the first thread, the second thread's run
/// is refused by THREAD-1 when it makes its main task.
/// Rules: RUNNER-6, THREAD-1, THREAD-3
#[test]
fn runner_moves_between_threads_between_runs() {
    fn assert_send<T: Send>(_: &T) {}
    let mut runner = Runner::with_loop_factory(|| EventLoop::with_clock(ClockKind::Virtual));
    assert_send(&runner);
    let first = std::thread::current().name().map(str::to_string);
    assert_eq!(runner.run(async { Ok(1) }), Ok(1));
    let (mut runner, there) = in_thread("r6-second", move || {
        let there = runner.run(async { Ok(std::thread::current().name().map(str::to_string)) });
        (runner, there)
    });
    assert_eq!(there, Ok(Some("r6-second".to_string())));
    assert_ne!(there.unwrap(), first);
    // Leave a task pending here: the loop is bound to this thread now.
    runner
        .run(async {
            loopspec::get_running_loop()?.create_task(async { loopspec::sleep(5.0).await })?;
            Ok(())
        })
        .unwrap();
    let (runner, refused) = in_thread("r6-third", move || {
        let refused = runner.run(async { Ok(()) });
        (runner, refused)
    });
    assert_eq!(refused, Err(Error::NonThreadSafeCall));
    drop(runner); // closes it here, where the pending task lives
}
