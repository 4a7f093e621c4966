//! POLICY rules of SPEC.md: which loop a thread sees (`get_event_loop`,
//! `set_event_loop`, `new_event_loop`, `get_running_loop`, `run`, and the
//! functions that find the loop for you).
//!
//! Every case that touches the per-thread slot runs on a fresh thread
//! (`common::thread_cases`, `common::in_thread`), so no slot state leaks
//! between cases; the "main thread" rules use `Policy::with_main_thread` on
//! that fresh thread, or a thread named `main` for the default policy.

use common::{
    Scene, assert_py_error, in_thread, thread_cases, unnamed_thread_name, value_error, vloop,
};
use loopspec::{
    ClockKind, Error, EventLoop, Policy, Profile, TaskRef, Warning, all_tasks, create_task,
    create_task_local, current_task, ensure_future, ensure_future_local, get_event_loop,
    get_event_loop_with, get_running_loop, new_event_loop, run, set_event_loop, warnings,
};
use std::cell::RefCell;
use std::rc::Rc;
use std::thread;

/// A policy whose main thread is the calling thread, on the virtual clock.
fn main_policy(profile: Profile) -> Policy {
    Policy::new(profile)
        .with_main_thread(thread::current().id())
        .with_clock(ClockKind::Virtual)
}

/// Reads the calling thread's slot without side effects: the 3.14 rules
/// never create a loop, so this returns the slot's loop or `None`.
fn peek_slot() -> Option<EventLoop> {
    Policy::new(Profile::Py314).get_event_loop().ok()
}

/// The warning the 3.12 and 3.13 profiles report on implicit creation.
fn no_current_loop_warning() -> Warning {
    Warning {
        category: "DeprecationWarning",
        message: "There is no current event loop".into(),
    }
}

/// Asserts `err` is `There is no current event loop in thread 'NAME'.`.
#[track_caller]
fn assert_no_current_loop(err: &Error, name: &str) {
    assert_eq!(
        *err,
        Error::NoCurrentLoop {
            thread: name.into()
        }
    );
    let msg = format!("There is no current event loop in thread '{name}'.");
    assert_py_error(err, "RuntimeError", &msg);
}

/// Asserts `err` is `RuntimeError: no running event loop`.
#[track_caller]
fn assert_no_running_loop(err: &Error) {
    assert_eq!(*err, Error::NoRunningLoop);
    assert_py_error(err, "RuntimeError", "no running event loop");
}

/// The no-current-loop error of `get_event_loop`, by the policy and by the
/// free function with it, each twice (neither changes anything).
#[track_caller]
fn both_refuse(policy: &Policy, name: &str) {
    for _ in 0..2 {
        assert_no_current_loop(&policy.get_event_loop().unwrap_err(), name);
        assert_no_current_loop(&get_event_loop_with(policy).unwrap_err(), name);
    }
}

/// Runs `check` once per profile, each on a fresh thread called `name`,
/// with a policy of that profile whose main thread it is, and the scope
/// catching the warnings raised there.
fn in_each_profile(name: &'static str, check: fn(Profile, &Policy, &warnings::Caught)) {
    for profile in Profile::ALL {
        in_thread(name, move || {
            check(profile, &main_policy(profile), &warnings::catch())
        });
    }
}

/// Each thread has its own current-loop slot, also under a policy with a
/// main thread: a loop set in one is not seen in another, and a set
/// replaces the previous loop of that thread only.
/// Rules: POLICY-1
#[test]
fn each_thread_has_its_own_current_loop() {
    thread_cases(&[
        ("owner", "a set loop is seen in its thread only", || {
            let lp = new_event_loop();
            set_event_loop(Some(&lp));
            assert_eq!(get_event_loop().unwrap(), lp);
            let other = lp.clone();
            let seen_elsewhere = in_thread("other", move || {
                let err = get_event_loop().unwrap_err();
                // Setting a loop here does not touch the owner's slot either.
                let mine = new_event_loop();
                set_event_loop(Some(&mine));
                assert!(get_event_loop().unwrap() == mine && mine != other);
                err
            });
            assert_no_current_loop(&seen_elsewhere, "other");
            assert_eq!(get_event_loop().unwrap(), lp);
            let b = new_event_loop();
            set_event_loop(Some(&b));
            assert_eq!(get_event_loop().unwrap(), b, "replaced");
        }),
        ("main-ish", "the main thread's slot too", || {
            let policy = main_policy(Profile::Py311);
            let lp = policy.new_event_loop();
            policy.set_event_loop(Some(&lp));
            let p2 = policy.clone();
            let err = in_thread("worker-1", move || p2.get_event_loop().unwrap_err());
            assert_no_current_loop(&err, "worker-1");
            assert_eq!(policy.get_event_loop().unwrap(), lp);
        }),
    ]);
}

/// The running loop wins: inside a task or a plain callback of a running
/// loop, `get_event_loop()` (free, or with a policy) returns it — not the
/// thread's current loop, which the policy's own `get_event_loop` still
/// returns — and nothing is created or warned about in the main thread.
/// Rules: POLICY-2, POLICY-3
#[test]
fn the_running_loop_wins() {
    thread_cases(&[
        ("p2-task", "inside a task", || {
            let current = vloop();
            Policy::new(Profile::Py311).set_event_loop(Some(&current));
            let running = vloop();
            let (free, with, own) = running
                .run_until_complete(async move {
                    let p = Policy::new(Profile::Py311);
                    Ok((
                        get_event_loop()?,
                        get_event_loop_with(&p)?,
                        p.get_event_loop()?,
                    ))
                })
                .unwrap();
            assert_eq!(
                (free, with, own),
                (running.clone(), running, current.clone())
            );
            // Outside the run the thread's current loop is back in view.
            assert_eq!(get_event_loop().unwrap(), current);
        }),
        ("p2-callback", "inside a plain callback", || {
            let current = vloop();
            set_event_loop(Some(&current));
            let running = Scene::new();
            let seen: Rc<RefCell<Vec<EventLoop>>> = Rc::default();
            let s = seen.clone();
            running.soon(move |_| {
                let p = Policy::default();
                let found = [
                    get_event_loop(),
                    get_event_loop_with(&p),
                    p.get_event_loop(),
                ];
                s.borrow_mut().extend(found.map(Result::unwrap));
            });
            running.once();
            assert_eq!(
                *seen.borrow(),
                [running.lp.clone(), running.lp.clone(), current]
            );
        }),
        (
            "p2-main",
            "without implicit creation in the main thread",
            || {
                let policy = main_policy(Profile::Py312);
                let caught = warnings::catch();
                let running = vloop();
                let got = running.run_until_complete(async move { get_event_loop_with(&policy) });
                assert_eq!(got, Ok(running));
                assert!(caught.take().is_empty());
                assert_eq!(peek_slot(), None);
            },
        ),
    ]);
}

/// Implicit creation in the main thread, by version: 3.11 creates a loop
/// silently, 3.12 and 3.13 create one and warn once (`DeprecationWarning:
/// There is no current event loop`), 3.14+ create nothing but return a set
/// loop; the created loop is current, returned by later calls, silently.
/// The default policy's main thread is the thread named `main`.
/// Rules: POLICY-3
#[test]
fn implicit_creation_in_the_main_thread_by_version() {
    in_each_profile("p3-all", |profile, policy, caught| {
        assert_eq!(peek_slot(), None);
        let first = policy.get_event_loop();
        let warned = caught.take();
        match (profile, &first) {
            (Profile::Py314 | Profile::Py315, Err(err)) => {
                assert_no_current_loop(err, "MainThread");
                assert!(warned.is_empty());
                both_refuse(policy, "MainThread");
                assert_eq!(peek_slot(), None);
            }
            (_, Ok(lp)) => {
                assert!(!lp.is_running() && !lp.is_closed());
                assert_eq!(lp.profile(), profile);
                let warning = (profile != Profile::Py311).then(no_current_loop_warning);
                assert_eq!(warned, Vec::from_iter(warning), "{profile:?}");
                assert_eq!(peek_slot().as_ref(), Some(lp));
                assert_eq!(get_event_loop_with(policy).as_ref(), Ok(lp));
            }
            other => panic!("{profile:?}: {other:?}"),
        }
        // The second call agrees with the first, silently.
        assert_eq!(policy.get_event_loop(), first);
        assert!(caught.take().is_empty(), "{profile:?}");
    });
    let text = no_current_loop_warning().to_string();
    assert_eq!(text, "DeprecationWarning: There is no current event loop");
    thread_cases(&[
        ("p3-314-set", "3.14 returns a set loop", || {
            let policy = main_policy(Profile::Py314);
            let lp = policy.new_event_loop();
            policy.set_event_loop(Some(&lp));
            assert_eq!(policy.get_event_loop().unwrap(), lp);
        }),
        (
            "main",
            "the default policy creates in the thread named main",
            || {
                let lp = get_event_loop().unwrap();
                assert_eq!(get_event_loop().unwrap(), lp);
                assert_eq!(peek_slot(), Some(lp.clone()));
                assert_eq!(lp.profile(), Profile::Py311);
            },
        ),
    ]);
}

/// No implicit creation outside the main thread, in any profile: the error
/// names the thread — its name, or `Thread-N` if it has none (POLICY-9) —
/// and nothing is created or warned about.
/// Rules: POLICY-4, POLICY-9
#[test]
fn no_implicit_creation_outside_the_main_thread() {
    let err = in_thread("worker", || get_event_loop().unwrap_err());
    assert_no_current_loop(&err, "worker");
    for profile in Profile::ALL {
        in_thread("home", move || {
            let policy = main_policy(profile);
            let caught = warnings::catch();
            in_thread("not-main", move || {
                let caught_here = warnings::catch();
                both_refuse(&policy, "not-main");
                assert_eq!(peek_slot(), None);
                assert!(caught_here.take().is_empty(), "{profile:?}");
            });
            assert!(caught.take().is_empty());
        });
    }
    let (err, expected) = thread::spawn(|| (get_event_loop().unwrap_err(), unnamed_thread_name()))
        .join()
        .unwrap();
    assert_no_current_loop(&err, &expected);
}

/// `set_event_loop(None)` counts as set: implicit creation is off from then
/// on in the main thread — in any profile, after a loop was set, or made
/// implicitly and cleared; with the free function in the thread named
/// `main` too.
/// Rules: POLICY-5, POLICY-3
#[test]
fn set_event_loop_none_counts_as_set() {
    in_each_profile("p5", |profile, policy, caught| {
        policy.set_event_loop(None);
        both_refuse(policy, "MainThread");
        assert!(caught.take().is_empty(), "{profile:?}");
    });
    thread_cases(&[
        // "set_event_loop was never called there": a set then replaced by
        // another set keeps implicit creation off, but a set loop is returned.
        ("p3-set", "after a loop was set", || {
            let policy = main_policy(Profile::Py312);
            let caught = warnings::catch();
            let lp = policy.new_event_loop();
            policy.set_event_loop(Some(&lp));
            assert_eq!(policy.get_event_loop().unwrap(), lp);
            policy.set_event_loop(None);
            assert_no_current_loop(&policy.get_event_loop().unwrap_err(), "MainThread");
            assert!(caught.take().is_empty());
        }),
        ("p5-clear", "after the implicit loop was cleared", || {
            let policy = main_policy(Profile::Py311);
            let lp = policy.get_event_loop().unwrap();
            assert_eq!(policy.get_event_loop().unwrap(), lp);
            policy.set_event_loop(None);
            assert_no_current_loop(&policy.get_event_loop().unwrap_err(), "MainThread");
            assert_eq!(peek_slot(), None);
        }),
        ("main", "with the free function", || {
            set_event_loop(None);
            assert_no_current_loop(&get_event_loop().unwrap_err(), "MainThread");
        }),
    ]);
}

/// After `run()`, the main thread's slot is empty, in every profile, also
/// when main raised: `run()` made its own loop current and closed it,
/// after cancelling the pending tasks and awaiting them the way a gather
/// would (a task that sleeps after its cancellation lets the virtual clock
/// move, and finishes before the loop is closed).
/// Rules: POLICY-6
#[test]
fn after_run_the_main_threads_slot_is_empty() {
    in_each_profile("p6", |profile, policy, caught| {
        assert_eq!(policy.run(async { Ok(7) }), Ok(7));
        assert_no_current_loop(&policy.get_event_loop().unwrap_err(), "MainThread");
        assert!(caught.take().is_empty(), "{profile:?}");
        assert_eq!(peek_slot(), None);
    });
    thread_cases(&[
        ("p6-loop", "its own loop, current, then closed", || {
            let policy = main_policy(Profile::Py311);
            let before = policy.new_event_loop();
            policy.set_event_loop(Some(&before));
            let p = policy.clone();
            let (running, current) = policy
                .run(async move { Ok((get_running_loop()?, p.get_event_loop()?)) })
                .unwrap();
            assert!(
                running != before && current == running,
                "run() makes its loop current"
            );
            assert!(running.is_closed() && !running.is_running() && !before.is_closed());
            assert_eq!(peek_slot(), None);
        }),
        ("p6-cancel", "pending tasks cancelled and awaited", || {
            let policy = main_policy(Profile::Py311);
            let holder: Rc<RefCell<Option<TaskRef>>> = Rc::default();
            let cleaned = Rc::new(RefCell::new(false));
            let (h, c) = (holder.clone(), cleaned.clone());
            let out = policy.run(async move {
                let never = get_running_loop()?.create_future::<()>();
                let task = create_task_local(async move {
                    let r = never.await;
                    // The cancellation is delivered, and the task can clean up.
                    *c.borrow_mut() = matches!(r, Err(Error::Cancelled(_)));
                    r
                })?;
                // Let the task start and suspend on the future.
                loopspec::yield_now().await?;
                *h.borrow_mut() = all_tasks()?.into_iter().find(|t| t.is(&task));
                Ok("main done")
            });
            assert_eq!(out, Ok("main done"));
            let task = holder.borrow_mut().take().expect("listed by all_tasks");
            assert!(task.cancelled() && *cleaned.borrow() && task.get_loop().is_closed());
        }),
        (
            "p6-sleepy",
            "a task sleeping after its cancellation",
            || {
                let policy = main_policy(Profile::Py311);
                let finished_at: Rc<RefCell<Option<f64>>> = Rc::default();
                let f = finished_at.clone();
                let out = policy.run(async move {
                    create_task_local(async move {
                        let caught = loopspec::sleep(100.0).await;
                        assert!(matches!(caught, Err(Error::Cancelled(_))));
                        loopspec::sleep(1.0).await?;
                        *f.borrow_mut() = Some(get_running_loop()?.time());
                        Ok(())
                    })?;
                    loopspec::yield_now().await?;
                    Ok("main done")
                });
                assert_eq!(out, Ok("main done"));
                let at = finished_at.borrow_mut().take();
                assert!(at.is_some_and(|t| t >= 1.0), "the task finished at {at:?}");
            },
        ),
        ("p6-exc", "main raised", || {
            let policy = main_policy(Profile::Py311);
            let err = policy.run(async { Err::<(), _>(value_error("boom")) });
            assert_eq!(err, Err(value_error("boom")));
            assert_no_current_loop(&policy.get_event_loop().unwrap_err(), "MainThread");
        }),
        ("main", "the free run in the thread named main", || {
            assert_eq!(run(async { Ok(1) }), Ok(1));
            assert_no_current_loop(&get_event_loop().unwrap_err(), "MainThread");
        }),
    ]);
}

/// A closed loop stays current — set, or made implicitly in the main thread
/// (3.11-3.13), where it is not replaced.
/// Rules: POLICY-7
#[test]
fn a_closed_loop_stays_current() {
    in_thread("p7", || {
        let lp = new_event_loop();
        set_event_loop(Some(&lp));
        lp.close().unwrap();
        let again = get_event_loop().unwrap();
        assert!(again == lp && again.is_closed());
    });
    for profile in [Profile::Py311, Profile::Py312, Profile::Py313] {
        in_thread("p7-main", move || {
            let policy = main_policy(profile);
            let caught = warnings::catch();
            let lp = policy.get_event_loop().unwrap();
            caught.take();
            lp.close().unwrap();
            let again = policy.get_event_loop().unwrap();
            assert!(again == lp && again.is_closed());
            assert!(caught.take().is_empty());
        });
    }
}

/// `new_event_loop()` makes a distinct loop (of the policy's profile) that
/// is not current: it neither becomes nor displaces the current loop, and
/// leaves implicit creation on in the main thread.
/// Rules: POLICY-8
#[test]
fn new_event_loop_makes_a_distinct_loop_that_is_not_current() {
    let (a, b) = (new_event_loop(), new_event_loop());
    let policy = Policy::new(Profile::Py313);
    let (c, d) = (policy.new_event_loop(), policy.new_event_loop());
    assert!(a != b && c != d && a != c);
    assert_eq!(c.profile(), Profile::Py313);
    // Clones are the same loop, not new ones.
    assert_eq!(a.clone(), a);
    thread_cases(&[
        ("p8", "not current, nor displacing the current one", || {
            let lp = new_event_loop();
            assert_eq!(peek_slot(), None);
            assert_no_current_loop(&get_event_loop().unwrap_err(), "p8");
            set_event_loop(Some(&lp));
            let other = new_event_loop();
            assert!(other != lp && get_event_loop().unwrap() == lp);
        }),
        ("p8-main", "implicit creation stays on", || {
            let policy = main_policy(Profile::Py311);
            let made = policy.new_event_loop();
            assert_eq!(peek_slot(), None);
            assert_ne!(policy.get_event_loop().unwrap(), made);
        }),
    ]);
}

/// Thread names in messages: the policy's main thread is `MainThread`
/// whatever its Rust name; another thread is called by its name — `main`
/// too, under a policy with another main thread — or `Thread-N` (N from its
/// `ThreadId`) if it has none.
/// Rules: POLICY-9
#[test]
fn thread_names_in_messages() {
    in_thread("some-name", || {
        let policy = main_policy(Profile::Py314);
        assert!(policy.is_main_thread());
        assert_no_current_loop(&policy.get_event_loop().unwrap_err(), "MainThread");
    });
    let policy = Policy::new(Profile::Py311);
    let p = policy.clone();
    let err = in_thread("my worker #3", move || p.get_event_loop().unwrap_err());
    assert_no_current_loop(&err, "my worker #3");
    let (err, expected, id) = thread::spawn(move || {
        let id = format!("{:?}", thread::current().id());
        (
            policy.get_event_loop().unwrap_err(),
            unnamed_thread_name(),
            id,
        )
    })
    .join()
    .unwrap();
    assert_eq!(id, format!("ThreadId({})", &expected["Thread-".len()..]));
    assert_no_current_loop(&err, &expected);
    // Rust's `main` is the default policy's main thread ...
    let err = in_thread("main", || {
        set_event_loop(None);
        get_event_loop().unwrap_err()
    });
    assert_no_current_loop(&err, "MainThread");
    // ... but a policy with another main thread calls it by its name.
    let policy = Policy::new(Profile::Py314).with_main_thread(thread::current().id());
    let err = in_thread("main", move || policy.get_event_loop().unwrap_err());
    assert_no_current_loop(&err, "main");
    in_thread("p9-main", || {
        let policy = main_policy(Profile::Py311);
        let p = policy.clone();
        let err = in_thread("helper", move || p.get_event_loop().unwrap_err());
        assert_no_current_loop(&err, "helper");
    });
}

/// `get_running_loop()` is per thread: the loop running in this thread, in
/// a task or a callback; otherwise `no running event loop` — with a current
/// loop, after a run, or while another thread runs a loop, where the
/// functions that need a running loop fail the same way (POLICY-11).
/// Rules: POLICY-10, POLICY-11
#[test]
fn get_running_loop_is_per_thread() {
    in_thread("p10", || {
        assert_no_running_loop(&get_running_loop().unwrap_err());
        // A current loop is not a running loop, nor one whose run ended.
        let lp = vloop();
        set_event_loop(Some(&lp));
        assert_no_running_loop(&get_running_loop().unwrap_err());
        lp.run_until_complete(async { Ok(()) }).unwrap();
        assert_no_running_loop(&get_running_loop().unwrap_err());
    });
    let s = Scene::new();
    s.soon(|s| {
        assert!(get_running_loop().unwrap() == s.lp && s.is_running());
        let found = thread::spawn(|| {
            [
                get_running_loop().map(drop),
                current_task().map(drop),
                all_tasks().map(drop),
                create_task(async { Ok(()) }).map(drop),
            ]
        });
        for r in found.join().unwrap() {
            assert_no_running_loop(&r.unwrap_err());
        }
        s.push("checked");
    });
    assert_eq!(s.once(), ["checked"]);
    assert_eq!(
        s.run_until_complete(async { get_running_loop() }),
        Ok(s.lp.clone())
    );
}

/// The functions that find the loop for you: `ensure_future` of a
/// coroutine uses the running loop, or the current one (made implicitly in
/// the main thread), or fails like `get_event_loop` without polling it; of
/// a future it needs no loop. `create_task`, `current_task` and
/// `all_tasks` use the running loop only — from a callback too — and create
/// nothing.
/// Rules: POLICY-11, POLICY-2
#[test]
fn functions_that_find_the_loop_for_you() {
    thread_cases(&[
        (
            "main",
            "ensure_future creates the loop in the main thread",
            || {
                let fut = ensure_future(async { Ok(5) }).unwrap();
                let lp = get_event_loop().unwrap();
                assert_eq!(fut.get_loop(), lp);
                assert_eq!(lp.run_until_complete(fut), Ok(5));
                lp.close().unwrap();
            },
        ),
        (
            "ef-worker",
            "ensure_future fails elsewhere, unpolled",
            || {
                let polled = Rc::new(RefCell::new(false));
                let p = polled.clone();
                let err = ensure_future_local(async move {
                    *p.borrow_mut() = true;
                    Ok(1)
                });
                assert_no_current_loop(&err.unwrap_err(), "ef-worker");
                assert!(!*polled.borrow());
            },
        ),
        ("ef-current", "ensure_future uses the current loop", || {
            let current = vloop();
            set_event_loop(Some(&current));
            let fut = ensure_future(async { Ok("x") }).unwrap();
            assert_eq!(fut.get_loop(), current);
            assert_eq!(current.run_until_complete(fut), Ok("x"));
            let running = vloop();
            let inner_loop = running.run_until_complete(async {
                let f = ensure_future(async { Ok(3) })?;
                let l = f.get_loop();
                assert_eq!(f.await?, 3);
                Ok(l)
            });
            assert_eq!(inner_loop, Ok(running), "the running loop first");
        }),
        // No current loop, no running loop: a future needs no loop lookup.
        ("ef-future", "ensure_future of a future", || {
            let fut = vloop().create_future::<u8>();
            assert_eq!(ensure_future(fut.clone()).unwrap(), fut);
        }),
        (
            "main",
            "create_task and co. need a running loop, even in main",
            || {
                let lp = vloop();
                set_event_loop(Some(&lp));
                assert_no_running_loop(&create_task(async { Ok(()) }).unwrap_err());
                assert_no_running_loop(&current_task().unwrap_err());
                assert_no_running_loop(&all_tasks().unwrap_err());
                set_event_loop(None);
                assert_no_running_loop(&create_task(async { Ok(()) }).unwrap_err());
                assert_eq!(peek_slot(), None, "nothing created");
            },
        ),
        (
            "ct-worker",
            "create_task and co. need a running loop",
            || {
                set_event_loop(Some(&vloop()));
                assert_no_running_loop(&create_task(async { Ok(()) }).unwrap_err());
                assert_no_running_loop(&current_task().unwrap_err());
                assert_no_running_loop(&all_tasks().unwrap_err());
            },
        ),
        ("ct-callback", "create_task from a callback", || {
            set_event_loop(Some(&vloop()));
            let running = Scene::new();
            running.soon(|s| {
                let t = create_task(async { Ok(1) }).unwrap();
                s.push(format!(
                    "{} {}",
                    t.get_loop() == s.lp,
                    current_task().unwrap().is_none()
                ));
            });
            assert_eq!(running.once(), ["true true"]);
        }),
    ]);
}

/// One loop may be current in several threads, made in one and run in
/// another — but it runs in one at a time (LIFE-5): a second thread that
/// has it as its current loop cannot run it while it runs.
/// Rules: POLICY-12, LIFE-5
#[test]
fn one_loop_may_be_current_in_several_threads() {
    let lp = new_event_loop();
    let handles: Vec<_> = ["t-a", "t-b", "t-c"]
        .into_iter()
        .map(|name| {
            let l = lp.clone();
            let seer = thread::Builder::new().name(name.into());
            seer.spawn(move || {
                set_event_loop(Some(&l));
                get_event_loop().unwrap() == l
            })
            .unwrap()
        })
        .collect();
    assert!(handles.into_iter().all(|h| h.join().unwrap()));
    let l2 = lp.clone();
    let v = in_thread("other-runner", move || {
        set_event_loop(Some(&l2));
        l2.run_until_complete(async { get_running_loop() })
    });
    assert!(v == Ok(lp.clone()) && !lp.is_running());
    let l2 = lp.clone();
    let (err, running) = in_thread("runner", move || {
        set_event_loop(Some(&l2));
        let s = Scene::on(l2);
        s.soon(|s| {
            // While the loop runs here, a second thread that also has it as
            // its current loop tries to run it.
            let l4 = s.lp.clone();
            let r = in_thread("second", move || {
                set_event_loop(Some(&l4));
                assert_eq!(get_event_loop().unwrap(), l4);
                (l4.run_forever().unwrap_err(), l4.is_running())
            });
            s.push(format!("{}|{}", r.0, r.1));
        });
        let seen = s.once();
        let (err, running) = seen[0].split_once('|').unwrap();
        (err.to_string(), running == "true")
    });
    assert_eq!(
        (err.as_str(), running),
        ("This event loop is already running", true)
    );
    assert!(!lp.is_running());
}

/// `run()` refuses to nest — in a task or a callback of a running loop —
/// with `asyncio.run() cannot be called from a running event loop`, before
/// polling its coroutine, leaving the running loop and the thread's slot
/// alone.
/// Rules: POLICY-13
#[test]
fn run_refuses_to_nest() {
    thread_cases(&[
        ("p13-task", "in a task", || {
            let lp = vloop();
            let (err, polled) = lp
                .run_until_complete(async {
                    let polled = Rc::new(RefCell::new(false));
                    let p = polled.clone();
                    let err = run(async move {
                        *p.borrow_mut() = true;
                        Ok(())
                    });
                    // The running loop is untouched.
                    assert_eq!(get_running_loop()?, get_event_loop()?);
                    let polled = *polled.borrow();
                    Ok((err.unwrap_err(), polled))
                })
                .unwrap();
            assert_eq!(err, Error::RunInRunningLoop);
            let msg = "asyncio.run() cannot be called from a running event loop";
            assert_py_error(&err, "RuntimeError", msg);
            assert!(!polled);
        }),
        // Recorded in the callback and checked here: a panic in a callback
        // is caught by the loop and would not fail the test.
        ("p13-callback", "in a callback", || {
            let policy = main_policy(Profile::Py311);
            let current = policy.new_event_loop();
            policy.set_event_loop(Some(&current));
            let running = Scene::new();
            let p = policy.clone();
            running.soon(move |s| {
                let err = p.run(async { Ok(()) }).unwrap_err();
                let still = s.is_running() && get_running_loop().ok() == Some(s.lp.clone());
                s.push(format!("{} {still}", err == Error::RunInRunningLoop));
            });
            assert_eq!(running.once(), ["true true"]);
            assert!(policy.get_event_loop().unwrap() == current && !current.is_closed());
        }),
    ]);
}
