//! RUNNER rules of SPEC.md (`Runner`, `run_with_loop_factory`) and POLICY-14
//! (the deprecated policy API).
//!
//! Every case runs on a fresh thread (`common::thread_cases`,
//! `common::in_thread`), so no current-loop slot leaks between cases.

use common::{assert_py_error, capture_exceptions, in_thread, thread_cases, value_error, vloop};
use loopspec::{
    ClockKind, Error, EventLoop, Policy, Profile, Runner, catch_warnings, get_event_loop_policy,
    get_event_loop_with, run_with_loop_factory, set_event_loop_policy, warnings,
};
use std::sync::{Arc, Mutex};

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

/// A runner whose loops come from a factory of virtual-clock loops.
fn factory_runner() -> Runner {
    Runner::with_loop_factory(vloop)
}

/// A runner makes its loop at the first use and keeps it; without a factory
/// the loop is the thread's current loop from then until `close()`, which
/// clears the slot; with one it never touches the current loop (the running
/// loop still wins, POLICY-2).
/// Rules: RUNNER-1, RUNNER-2, POLICY-2
#[test]
fn a_runner_makes_its_loop_at_the_first_use() {
    thread_cases(&[
        ("r1", "made at the first get_loop, kept", || {
            let mut runner = Runner::with_policy(vpolicy());
            assert_eq!(peek_slot(), None, "nothing is made before it is needed");
            let lp = runner.get_loop().unwrap();
            assert_eq!(runner.get_loop().unwrap(), lp);
            assert_eq!(runner.run(async { Ok(1) }), Ok(1));
            assert_eq!(runner.get_loop().unwrap(), lp);
        }),
        ("r2", "current until close, without a factory", || {
            let policy = vpolicy();
            let mut runner = Runner::with_policy(policy.clone());
            let lp = runner.get_loop().unwrap();
            assert_eq!(peek_slot(), Some(lp.clone()), "made current when made");
            let p = policy.clone();
            let during =
                runner.run(async move { Ok((get_event_loop_with(&p)?, p.get_event_loop()?)) });
            assert_eq!(during, Ok((lp.clone(), lp.clone())));
            assert_eq!(get_event_loop_with(&policy).unwrap(), lp, "after run()");
            runner.close();
            assert!(lp.is_closed());
            assert_eq!(peek_slot(), None, "close() clears the slot");
        }),
        ("r2-factory", "never current, with a factory", || {
            let policy = vpolicy();
            let before = policy.new_event_loop();
            policy.set_event_loop(Some(&before));
            let mut runner = factory_runner();
            let lp = runner.get_loop().unwrap();
            assert_ne!(lp, before);
            let p = policy.clone();
            let during =
                runner.run(async move { Ok((get_event_loop_with(&p)?, p.get_event_loop()?)) });
            assert_eq!(during, Ok((lp.clone(), before.clone())));
            runner.close();
            assert!(lp.is_closed());
            assert_eq!(peek_slot(), Some(before));
        }),
    ]);
}

/// `run(main)` runs on the runner's one loop, again and again — tasks live
/// on between runs, and `close()` cancels them — but is refused inside a
/// running loop (`Runner.run() cannot be called from a running event
/// loop`), before anything else, and on a closed runner (`Runner is
/// closed`), as is `get_loop()`. Closing twice, or an unused runner, does
/// nothing (an unused one still runs).
/// Rules: RUNNER-3, RUNNER-4
#[test]
fn run_runs_main_on_the_runners_one_loop() {
    thread_cases(&[
        ("r3-twice", "twice on one loop; tasks live on", || {
            let mut runner = Runner::with_policy(vpolicy());
            let lp = runner.get_loop().unwrap();
            let steps = Arc::new(Mutex::new(0));
            let s = steps.clone();
            let background: loopspec::Task<()> = runner
                .run(async move {
                    loopspec::create_task(async move {
                        loop {
                            loopspec::sleep(1.0).await?;
                            *s.lock().unwrap() += 1;
                        }
                    })
                })
                .unwrap();
            assert_eq!(
                *steps.lock().unwrap(),
                0,
                "the first run ended before the task slept"
            );
            runner.run(async { loopspec::sleep(2.5).await }).unwrap();
            assert_eq!(
                *steps.lock().unwrap(),
                2,
                "the task ran during the second run"
            );
            assert!(lp.time() == 2.5 && !background.done());
            runner.close();
            assert!(background.cancelled(), "close() cancels it");
        }),
        (
            "r3-nested",
            "refused in a running loop, first of all",
            || {
                let refusals = vloop().run_until_complete(async {
                    let mut open = Runner::with_policy(vpolicy());
                    let mut closed = Runner::with_policy(vpolicy());
                    closed.get_loop()?;
                    closed.close();
                    Ok([open.run(async { Ok(()) }), closed.run(async { Ok(()) })])
                });
                for err in refusals.unwrap() {
                    let err = err.unwrap_err();
                    assert_eq!(err, Error::RunnerInRunningLoop);
                    let msg = "Runner.run() cannot be called from a running event loop";
                    assert_py_error(&err, "RuntimeError", msg);
                }
                assert_eq!(peek_slot(), None, "the refused runner made no loop");
            },
        ),
        ("r4-closed", "refused when closed, as get_loop", || {
            let mut runner = Runner::with_policy(vpolicy());
            runner.run(async { Ok(()) }).unwrap();
            runner.close();
            let refused = [runner.run(async { Ok(()) }), runner.get_loop().map(drop)];
            for err in refused {
                assert_py_error(&err.unwrap_err(), "RuntimeError", "Runner is closed");
            }
            runner.close(); // a second close does nothing
        }),
        ("r4-unused", "closing an unused runner does nothing", || {
            let mut runner = Runner::with_policy(vpolicy());
            runner.close();
            assert_eq!(runner.run(async { Ok(7) }), Ok(7));
        }),
    ]);
}

/// `close()` — or dropping the runner — cancels the tasks left over and
/// waits for them; what one raises instead of its cancellation is reported
/// (`unhandled exception during asyncio.run() shutdown`, with the task),
/// then the loop is closed and the slot cleared.
/// Rules: RUNNER-4, FUT-7
#[test]
fn close_cancels_leftover_tasks_and_reports_what_they_raise() {
    in_thread("r4-leftover", || {
        let mut runner = Runner::with_policy(vpolicy());
        let lp = runner.get_loop().unwrap();
        let seen = capture_exceptions(&lp);
        let (quiet, stubborn) = runner
            .run(async {
                let quiet = loopspec::create_task(loopspec::sleep(10.0))?;
                // Catches its cancellation and raises something else.
                let stubborn = loopspec::create_task(async {
                    match loopspec::sleep(10.0).await {
                        Err(Error::Cancelled(_)) => Err(value_error("no")),
                        other => other,
                    }
                })?;
                loopspec::sleep(0.0).await?;
                Ok((quiet, stubborn))
            })
            .unwrap();
        runner.close();
        assert!(quiet.cancelled());
        assert_eq!(stubborn.exception(), Ok(Some(value_error("no"))));
        let message = "unhandled exception during asyncio.run() shutdown";
        assert_eq!(seen.messages(), [message]);
        let seen = seen.lock().unwrap();
        assert_eq!(seen[0].exception, Some(value_error("no")));
        let task = seen[0].task.as_deref().unwrap_or_default();
        assert!(
            task.starts_with("<Task finished name='Task-3' exception="),
            "{task}"
        );
    });
    in_thread("r4-drop", || {
        let mut runner = Runner::with_policy(vpolicy());
        let lp = runner.get_loop().unwrap();
        drop(runner);
        assert!(lp.is_closed());
        assert_eq!(peek_slot(), None);
    });
}

/// `run_with_loop_factory(main, factory)` runs main on a loop of the
/// factory — never current — and closes it; inside a running loop it is
/// refused as `run()` is (POLICY-13).
/// Rules: RUNNER-5, POLICY-13
#[test]
fn run_with_loop_factory_runs_on_the_factorys_loop() {
    in_thread("r5", || {
        let made = Arc::new(Mutex::new(None));
        let m = made.clone();
        let factory = move || {
            let lp = vloop();
            *m.lock().unwrap() = Some(lp.clone());
            lp
        };
        let out = run_with_loop_factory(
            async { loopspec::sleep(3.0).await.map(|()| "done") },
            factory,
        );
        assert_eq!(out, Ok("done"));
        let lp = made.lock().unwrap().take().unwrap();
        assert!(lp.is_closed() && lp.time() == 3.0);
        assert_eq!(peek_slot(), None, "a factory loop is never current");
        let err = vloop()
            .run_until_complete(async { Ok(run_with_loop_factory(async { Ok(()) }, vloop)) })
            .unwrap()
            .unwrap_err();
        assert_eq!(err, Error::RunInRunningLoop);
        let msg = "asyncio.run() cannot be called from a running event loop";
        assert_py_error(&err, "RuntimeError", msg);
    });
}

/// The process-wide policy is shared by every test of this binary: the
/// tests that set it run one at a time and restore the default.
static PROCESS_POLICY: Mutex<()> = Mutex::new(());

/// The policy API: `set_event_loop_policy` and `get_event_loop_policy` warn
/// under 3.14 and 3.15 (`DeprecationWarning: 'asyncio.…' is deprecated and
/// slated for removal in Python 3.16`) and are silent before; a runner
/// without a policy reads the process-wide one without a warning.
/// Rules: POLICY-14, RUNNER-1
#[test]
fn the_policy_api_is_deprecated_from_3_14() {
    let _one = PROCESS_POLICY.lock().unwrap_or_else(|p| p.into_inner());
    for profile in Profile::ALL {
        let (_, set) = catch_warnings(|| set_event_loop_policy(Some(Policy::new(profile))));
        let (got, get) = catch_warnings(get_event_loop_policy);
        assert_eq!(got.profile(), profile);
        let (_, reset) = catch_warnings(|| set_event_loop_policy(None));
        let texts: Vec<String> = [set, get, reset]
            .concat()
            .iter()
            .map(|w| w.to_string())
            .collect();
        let deprecated = |f: &str| {
            format!(
                "DeprecationWarning: 'asyncio.{f}' is deprecated and slated for removal in \
                 Python 3.16"
            )
        };
        let want = if profile >= Profile::Py314 {
            [
                "set_event_loop_policy",
                "get_event_loop_policy",
                "set_event_loop_policy",
            ]
            .map(deprecated)
            .to_vec()
        } else {
            vec![]
        };
        assert_eq!(texts, want, "{profile:?}");
    }
    assert_eq!(
        get_event_loop_policy().profile(),
        Profile::Py311,
        "the default again"
    );
    let _ = catch_warnings(|| set_event_loop_policy(Some(vpolicy())));
    let (profile, warned) = in_thread("r1-process", || {
        catch_warnings(|| Runner::new().run(async { Ok(loopspec::get_running_loop()?.profile()) }))
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
/// Rules: RUNNER-6, THREAD-1, THREAD-3, THREAD-8
#[test]
fn runner_moves_between_threads_between_runs() {
    fn assert_send<T: Send>(_: &T) {}
    let mut runner = factory_runner();
    assert_send(&runner);
    let first = std::thread::current().name().map(str::to_string);
    assert_eq!(runner.run(async { Ok(1) }), Ok(1));
    let (mut runner, there) = in_thread("r6-second", move || {
        let there = runner.run(async { Ok(std::thread::current().name().map(str::to_string)) });
        (runner, there)
    });
    assert_eq!(there, Ok(Some("r6-second".to_string())));
    assert_ne!(there.unwrap(), first);
    // A task left pending here follows the loop to the next thread's run.
    runner
        .run(async { loopspec::create_task(loopspec::sleep(5.0)).map(drop) })
        .unwrap();
    let (mut runner, moved) = in_thread("r6-third", move || {
        let moved = runner.run(async { Ok(loopspec::all_tasks()?.len()) });
        (runner, moved)
    });
    assert_eq!(moved, Ok(2), "the main task and the one left pending");
    // A local task left pending binds the loop to this thread.
    runner
        .run(async { loopspec::create_task_local(loopspec::sleep(5.0)).map(drop) })
        .unwrap();
    let (runner, refused) = in_thread("r6-fourth", move || {
        let refused = runner.run(async { Ok(()) });
        (runner, refused)
    });
    assert_eq!(refused, Err(Error::NonThreadSafeCall));
    drop(runner); // closes it here, where the local task lives
}
