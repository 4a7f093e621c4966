//! POLICY rules of SPEC.md: which loop a thread sees (`get_event_loop`,
//! `set_event_loop`, `new_event_loop`, `get_running_loop`, `run`, and the
//! functions that find the loop for you).
//!
//! Every test that touches the per-thread slot runs its body on a fresh
//! thread (`common::in_thread`), so no slot state leaks between tests; the
//! "main thread" rules use `Policy::with_main_thread` on that fresh thread,
//! or a thread named `main` for the default policy.

use common::{in_thread, run_once, vloop};
use loopspec::{
    ClockKind, Error, EventLoop, Policy, Profile, Warning, all_tasks, create_task, current_task,
    ensure_future, get_event_loop, get_event_loop_with, get_running_loop, new_event_loop, run,
    set_event_loop,
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
fn assert_no_current_loop(err: &Error, name: &str) {
    assert_eq!(
        *err,
        Error::NoCurrentLoop {
            thread: name.to_string()
        }
    );
    assert_eq!(
        err.to_string(),
        format!("There is no current event loop in thread '{name}'.")
    );
    assert_eq!(err.python_type(), "RuntimeError");
}

/// Asserts `err` is `RuntimeError: no running event loop`.
fn assert_no_running_loop(err: &Error) {
    assert_eq!(*err, Error::NoRunningLoop);
    assert_eq!(err.to_string(), "no running event loop");
    assert_eq!(err.python_type(), "RuntimeError");
}

/// The `Thread-N` name POLICY-9 gives the calling (unnamed) thread.
fn unnamed_thread_name() -> String {
    let id = format!("{:?}", thread::current().id());
    let n: String = id.chars().filter(char::is_ascii_digit).collect();
    assert!(!n.is_empty(), "ThreadId debug has a number: {id}");
    format!("Thread-{n}")
}

// ---------------------------------------------------------------------------
// POLICY-1
// ---------------------------------------------------------------------------

/// Rules: POLICY-1
#[test]
fn set_event_loop_is_visible_only_in_the_calling_thread() {
    in_thread("owner", || {
        let lp = new_event_loop();
        set_event_loop(Some(&lp));
        assert_eq!(get_event_loop().unwrap(), lp);

        let other = lp.clone();
        let seen_elsewhere = in_thread("other", move || {
            let err = get_event_loop().unwrap_err();
            // Setting a loop here does not touch the owner's slot either.
            let mine = new_event_loop();
            set_event_loop(Some(&mine));
            assert_eq!(get_event_loop().unwrap(), mine);
            assert_ne!(mine, other);
            err
        });
        assert_no_current_loop(&seen_elsewhere, "other");
        assert_eq!(get_event_loop().unwrap(), lp);
    });
}

/// Rules: POLICY-1
#[test]
fn policy_slots_are_per_thread_for_the_main_thread_too() {
    in_thread("main-ish", || {
        let policy = main_policy(Profile::Py311);
        let lp = policy.new_event_loop();
        policy.set_event_loop(Some(&lp));
        let p2 = policy.clone();
        let err = in_thread("worker-1", move || p2.get_event_loop().unwrap_err());
        assert_no_current_loop(&err, "worker-1");
        assert_eq!(policy.get_event_loop().unwrap(), lp);
    });
}

/// Rules: POLICY-1
#[test]
fn set_event_loop_replaces_the_previous_loop_of_the_thread() {
    in_thread("replacer", || {
        let a = new_event_loop();
        let b = new_event_loop();
        set_event_loop(Some(&a));
        assert_eq!(get_event_loop().unwrap(), a);
        set_event_loop(Some(&b));
        assert_eq!(get_event_loop().unwrap(), b);
    });
}

// ---------------------------------------------------------------------------
// POLICY-2
// ---------------------------------------------------------------------------

/// Rules: POLICY-2
#[test]
fn get_event_loop_returns_the_running_loop_inside_a_task() {
    in_thread("p2-task", || {
        let policy = Policy::new(Profile::Py311);
        let current = vloop();
        policy.set_event_loop(Some(&current));
        let running = vloop();
        let (from_free, from_with, from_policy) = running
            .run_until_complete(async move {
                let p = Policy::new(Profile::Py311);
                Ok((
                    get_event_loop()?,
                    get_event_loop_with(&p)?,
                    p.get_event_loop()?,
                ))
            })
            .unwrap();
        assert_eq!(from_free, running);
        assert_eq!(from_with, running);
        // The policy's own get_event_loop does not look at the running loop.
        assert_eq!(from_policy, current);
        // Outside the run the thread's current loop is back in view.
        assert_eq!(get_event_loop().unwrap(), current);
    });
}

/// Rules: POLICY-2
#[test]
fn get_event_loop_returns_the_running_loop_inside_a_plain_callback() {
    in_thread("p2-callback", || {
        let current = vloop();
        set_event_loop(Some(&current));
        let running = vloop();
        let seen: Rc<RefCell<Vec<EventLoop>>> = Rc::default();
        let s = seen.clone();
        running
            .call_soon(move || {
                let p = Policy::default();
                s.borrow_mut().push(get_event_loop().unwrap());
                s.borrow_mut().push(get_event_loop_with(&p).unwrap());
                s.borrow_mut().push(p.get_event_loop().unwrap());
            })
            .unwrap();
        run_once(&running);
        let seen = seen.borrow();
        assert_eq!(seen[0], running);
        assert_eq!(seen[1], running);
        assert_eq!(seen[2], current);
    });
}

/// Rules: POLICY-2, POLICY-3
#[test]
fn running_loop_wins_without_implicit_creation_in_the_main_thread() {
    // In the main thread with an empty slot, a running loop is returned and
    // nothing is created (or warned about) through the policy.
    in_thread("p2-main", || {
        let policy = main_policy(Profile::Py312);
        let caught = loopspec::warnings::catch();
        let running = vloop();
        let p = policy.clone();
        let got = running
            .run_until_complete(async move { get_event_loop_with(&p) })
            .unwrap();
        assert_eq!(got, running);
        assert!(caught.take().is_empty());
        assert_eq!(peek_slot(), None);
    });
}

// ---------------------------------------------------------------------------
// POLICY-3
// ---------------------------------------------------------------------------

/// Rules: POLICY-3
#[test]
fn get_event_loop_creates_a_loop_silently_in_the_main_thread_py311() {
    in_thread("p3-311", || {
        let policy = main_policy(Profile::Py311);
        let caught = loopspec::warnings::catch();
        assert_eq!(peek_slot(), None);
        let lp = policy.get_event_loop().unwrap();
        assert!(!lp.is_running());
        assert!(!lp.is_closed());
        assert_eq!(lp.profile(), Profile::Py311);
        // It is now the current loop; later calls return the same loop.
        assert_eq!(peek_slot(), Some(lp.clone()));
        assert_eq!(policy.get_event_loop().unwrap(), lp);
        assert_eq!(get_event_loop_with(&policy).unwrap(), lp);
        assert!(caught.take().is_empty());
    });
}

/// Rules: POLICY-3
#[test]
fn get_event_loop_creates_a_loop_and_warns_once_py312_py313() {
    for profile in [Profile::Py312, Profile::Py313] {
        in_thread("p3-312-313", move || {
            let policy = main_policy(profile);
            let caught = loopspec::warnings::catch();
            let lp = policy.get_event_loop().unwrap();
            assert_eq!(lp.profile(), profile);
            assert_eq!(caught.take(), vec![no_current_loop_warning()]);
            assert_eq!(
                no_current_loop_warning().to_string(),
                "DeprecationWarning: There is no current event loop"
            );
            // Only the creating call warns.
            assert_eq!(policy.get_event_loop().unwrap(), lp);
            assert_eq!(get_event_loop_with(&policy).unwrap(), lp);
            assert!(caught.take().is_empty(), "{profile:?}");
        });
    }
}

/// Rules: POLICY-3
#[test]
fn get_event_loop_creates_nothing_in_the_main_thread_py314() {
    in_thread("p3-314", || {
        let policy = main_policy(Profile::Py314);
        let caught = loopspec::warnings::catch();
        for _ in 0..2 {
            let err = policy.get_event_loop().unwrap_err();
            assert_no_current_loop(&err, "MainThread");
            let err = get_event_loop_with(&policy).unwrap_err();
            assert_no_current_loop(&err, "MainThread");
        }
        assert!(caught.take().is_empty());
        assert_eq!(peek_slot(), None);
    });
}

/// Rules: POLICY-3
#[test]
fn get_event_loop_py314_returns_a_set_loop_in_the_main_thread() {
    in_thread("p3-314-set", || {
        let policy = main_policy(Profile::Py314);
        let lp = policy.new_event_loop();
        policy.set_event_loop(Some(&lp));
        assert_eq!(policy.get_event_loop().unwrap(), lp);
    });
}

/// Rules: POLICY-3
#[test]
fn get_event_loop_per_profile_in_the_main_thread() {
    for profile in Profile::ALL {
        in_thread("p3-all", move || {
            let policy = main_policy(profile);
            let caught = loopspec::warnings::catch();
            let first = policy.get_event_loop();
            let warnings = caught.take();
            match profile {
                Profile::Py311 => {
                    assert!(first.is_ok());
                    assert!(warnings.is_empty());
                }
                Profile::Py312 | Profile::Py313 => {
                    assert!(first.is_ok());
                    assert_eq!(warnings, vec![no_current_loop_warning()]);
                }
                Profile::Py314 | Profile::Py315 => {
                    assert_no_current_loop(first.as_ref().unwrap_err(), "MainThread");
                    assert!(warnings.is_empty());
                }
            }
            // The second call agrees with the first, silently.
            let second = policy.get_event_loop();
            assert_eq!(second, first);
            assert!(caught.take().is_empty());
        });
    }
}

/// Rules: POLICY-3
#[test]
fn default_policy_creates_implicitly_in_the_thread_named_main() {
    in_thread("main", || {
        let lp = get_event_loop().unwrap();
        assert_eq!(get_event_loop().unwrap(), lp);
        assert_eq!(peek_slot(), Some(lp.clone()));
        assert_eq!(lp.profile(), Profile::Py311);
    });
}

/// Rules: POLICY-3, POLICY-5
#[test]
fn get_event_loop_does_not_create_after_set_event_loop_was_called() {
    // "set_event_loop was never called there": a set then replaced by
    // another set keeps implicit creation off, but a set loop is returned.
    in_thread("p3-set", || {
        let policy = main_policy(Profile::Py312);
        let caught = loopspec::warnings::catch();
        let lp = policy.new_event_loop();
        policy.set_event_loop(Some(&lp));
        assert_eq!(policy.get_event_loop().unwrap(), lp);
        assert!(caught.take().is_empty());
        policy.set_event_loop(None);
        let err = policy.get_event_loop().unwrap_err();
        assert_no_current_loop(&err, "MainThread");
        assert!(caught.take().is_empty());
    });
}

// ---------------------------------------------------------------------------
// POLICY-4
// ---------------------------------------------------------------------------

/// Rules: POLICY-4
#[test]
fn get_event_loop_fails_in_a_named_non_main_thread() {
    let err = in_thread("worker", || get_event_loop().unwrap_err());
    assert_no_current_loop(&err, "worker");
}

/// Rules: POLICY-4
#[test]
fn get_event_loop_never_creates_outside_the_main_thread_any_profile() {
    for profile in Profile::ALL {
        in_thread("home", move || {
            let policy = main_policy(profile);
            let caught = loopspec::warnings::catch();
            let p = policy.clone();
            in_thread("not-main", move || {
                let caught_here = loopspec::warnings::catch();
                for _ in 0..2 {
                    let err = p.get_event_loop().unwrap_err();
                    assert_no_current_loop(&err, "not-main");
                    let err = get_event_loop_with(&p).unwrap_err();
                    assert_no_current_loop(&err, "not-main");
                }
                assert_eq!(peek_slot(), None);
                assert!(caught_here.take().is_empty(), "{profile:?}");
            });
            assert!(caught.take().is_empty());
        });
    }
}

/// Rules: POLICY-4, POLICY-9
#[test]
fn get_event_loop_error_in_an_unnamed_thread_names_thread_n() {
    let (err, expected) = thread::spawn(|| (get_event_loop().unwrap_err(), unnamed_thread_name()))
        .join()
        .unwrap();
    assert_no_current_loop(&err, &expected);
    assert!(err.to_string().ends_with("'."));
}

// ---------------------------------------------------------------------------
// POLICY-5
// ---------------------------------------------------------------------------

/// Rules: POLICY-5
#[test]
fn set_event_loop_none_turns_off_implicit_creation() {
    for profile in Profile::ALL {
        in_thread("p5", move || {
            let policy = main_policy(profile);
            let caught = loopspec::warnings::catch();
            policy.set_event_loop(None);
            for _ in 0..2 {
                let err = policy.get_event_loop().unwrap_err();
                assert_no_current_loop(&err, "MainThread");
            }
            assert!(caught.take().is_empty(), "{profile:?}");
        });
    }
}

/// Rules: POLICY-5
#[test]
fn clearing_an_implicitly_created_loop_ends_implicit_creation() {
    in_thread("p5-clear", || {
        let policy = main_policy(Profile::Py311);
        let lp = policy.get_event_loop().unwrap();
        assert_eq!(policy.get_event_loop().unwrap(), lp);
        policy.set_event_loop(None);
        let err = policy.get_event_loop().unwrap_err();
        assert_no_current_loop(&err, "MainThread");
        assert_eq!(peek_slot(), None);
    });
}

/// Rules: POLICY-5
#[test]
fn free_set_event_loop_none_counts_as_set_in_the_thread_named_main() {
    in_thread("main", || {
        set_event_loop(None);
        let err = get_event_loop().unwrap_err();
        assert_no_current_loop(&err, "MainThread");
    });
}

// ---------------------------------------------------------------------------
// POLICY-6
// ---------------------------------------------------------------------------

/// Rules: POLICY-6
#[test]
fn run_leaves_the_main_thread_slot_empty() {
    for profile in Profile::ALL {
        in_thread("p6", move || {
            let policy = main_policy(profile);
            let caught = loopspec::warnings::catch();
            assert_eq!(policy.run(async { Ok(7) }).unwrap(), 7);
            let err = policy.get_event_loop().unwrap_err();
            assert_no_current_loop(&err, "MainThread");
            assert!(caught.take().is_empty(), "{profile:?}");
            assert_eq!(peek_slot(), None);
        });
    }
}

/// Rules: POLICY-6
#[test]
fn run_makes_a_new_current_loop_and_closes_it() {
    in_thread("p6-loop", || {
        let policy = main_policy(Profile::Py311);
        let before = policy.new_event_loop();
        policy.set_event_loop(Some(&before));
        let p = policy.clone();
        let (running, current) = policy
            .run(async move { Ok((get_running_loop()?, p.get_event_loop()?)) })
            .unwrap();
        assert_ne!(running, before);
        assert_eq!(current, running, "run() makes its loop current");
        assert!(running.is_closed());
        assert!(!running.is_running());
        assert!(!before.is_closed());
        assert_eq!(peek_slot(), None);
    });
}

/// Rules: POLICY-6
#[test]
fn run_cancels_and_awaits_pending_tasks_before_closing() {
    in_thread("p6-cancel", || {
        let policy = main_policy(Profile::Py311);
        let holder: Rc<RefCell<Option<loopspec::TaskRef>>> = Rc::default();
        let cleaned = Rc::new(RefCell::new(false));
        let h = holder.clone();
        let c = cleaned.clone();
        let out = policy.run(async move {
            let lp = get_running_loop()?;
            let never = lp.create_future::<()>();
            let task = create_task(async move {
                let r = never.await;
                // The cancellation is delivered, and the task can clean up.
                *c.borrow_mut() = matches!(r, Err(Error::Cancelled(_)));
                r
            })?;
            // Let the task start and suspend on the future.
            loopspec::yield_now().await?;
            let all = all_tasks()?;
            assert!(all.iter().any(|t| t.is(&task)));
            *h.borrow_mut() = all.into_iter().find(|t| t.is(&task));
            Ok("main done")
        });
        assert_eq!(out.unwrap(), "main done");
        let task = holder.borrow_mut().take().unwrap();
        assert!(task.done());
        assert!(task.cancelled());
        assert!(*cleaned.borrow());
        assert!(task.get_loop().is_closed());
    });
}

/// The cleanup waits for the cancelled tasks the way a gather would: a task
/// that catches the cancellation and then sleeps lets the (virtual) clock
/// move, and finishes before the loop is closed.
/// Rules: POLICY-6
#[test]
fn run_awaits_a_cancelled_task_that_sleeps_after_the_cancellation() {
    in_thread("p6-sleepy", || {
        let policy = main_policy(Profile::Py311);
        let finished_at: Rc<RefCell<Option<f64>>> = Rc::default();
        let f = finished_at.clone();
        let out = policy.run(async move {
            create_task(async move {
                let caught = loopspec::sleep(100.0).await;
                assert!(matches!(caught, Err(Error::Cancelled(_))));
                loopspec::sleep(1.0).await?;
                *f.borrow_mut() = Some(get_running_loop()?.time());
                Ok(())
            })?;
            loopspec::yield_now().await?;
            Ok("main done")
        });
        assert_eq!(out.unwrap(), "main done");
        let at = finished_at.borrow_mut().take();
        assert!(at.is_some_and(|t| t >= 1.0), "the task finished at {at:?}");
    });
}

/// Rules: POLICY-6
#[test]
fn run_returns_the_exception_of_main_and_still_clears_the_slot() {
    in_thread("p6-exc", || {
        let policy = main_policy(Profile::Py311);
        let err = policy
            .run(async { Err::<(), _>(Error::raise("ValueError", "boom")) })
            .unwrap_err();
        assert_eq!(err, Error::raise("ValueError", "boom"));
        assert_eq!(err.python_type(), "ValueError");
        assert_no_current_loop(&policy.get_event_loop().unwrap_err(), "MainThread");
    });
}

/// Rules: POLICY-6
#[test]
fn free_run_in_the_thread_named_main_leaves_the_slot_empty() {
    in_thread("main", || {
        assert_eq!(run(async { Ok(1) }).unwrap(), 1);
        let err = get_event_loop().unwrap_err();
        assert_no_current_loop(&err, "MainThread");
    });
}

// ---------------------------------------------------------------------------
// POLICY-7
// ---------------------------------------------------------------------------

/// Rules: POLICY-7
#[test]
fn closed_current_loop_stays_current() {
    in_thread("p7", || {
        let lp = new_event_loop();
        set_event_loop(Some(&lp));
        lp.close().unwrap();
        let again = get_event_loop().unwrap();
        assert_eq!(again, lp);
        assert!(again.is_closed());
    });
}

/// Rules: POLICY-7
#[test]
fn closed_implicit_loop_is_not_replaced_in_the_main_thread() {
    for profile in [Profile::Py311, Profile::Py312, Profile::Py313] {
        in_thread("p7-main", move || {
            let policy = main_policy(profile);
            let caught = loopspec::warnings::catch();
            let lp = policy.get_event_loop().unwrap();
            caught.take();
            lp.close().unwrap();
            let again = policy.get_event_loop().unwrap();
            assert_eq!(again, lp);
            assert!(again.is_closed());
            assert!(caught.take().is_empty());
        });
    }
}

// ---------------------------------------------------------------------------
// POLICY-8
// ---------------------------------------------------------------------------

/// Rules: POLICY-8
#[test]
fn new_event_loop_returns_distinct_loops() {
    let a = new_event_loop();
    let b = new_event_loop();
    assert_ne!(a, b);
    let policy = Policy::new(Profile::Py313);
    let c = policy.new_event_loop();
    let d = policy.new_event_loop();
    assert_ne!(c, d);
    assert_eq!(c.profile(), Profile::Py313);
    assert_ne!(a, c);
    // Clones are the same loop, not new ones.
    assert_eq!(a.clone(), a);
}

/// Rules: POLICY-8
#[test]
fn new_event_loop_does_not_become_current() {
    in_thread("p8", || {
        let lp = new_event_loop();
        assert_eq!(peek_slot(), None);
        assert_no_current_loop(&get_event_loop().unwrap_err(), "p8");
        set_event_loop(Some(&lp));
        assert_eq!(get_event_loop().unwrap(), lp);
        // A further new loop does not displace it.
        let other = new_event_loop();
        assert_ne!(other, lp);
        assert_eq!(get_event_loop().unwrap(), lp);
    });
}

/// Rules: POLICY-8
#[test]
fn new_event_loop_in_the_main_thread_leaves_implicit_creation_on() {
    in_thread("p8-main", || {
        let policy = main_policy(Profile::Py311);
        let made = policy.new_event_loop();
        assert_eq!(peek_slot(), None);
        let implicit = policy.get_event_loop().unwrap();
        assert_ne!(implicit, made);
    });
}

// ---------------------------------------------------------------------------
// POLICY-9
// ---------------------------------------------------------------------------

/// Rules: POLICY-9
#[test]
fn thread_name_of_the_policy_main_thread_is_mainthread() {
    // The policy's main thread is MainThread whatever its Rust name.
    in_thread("some-name", || {
        let policy = main_policy(Profile::Py314);
        assert!(policy.is_main_thread());
        assert_no_current_loop(&policy.get_event_loop().unwrap_err(), "MainThread");
    });
}

/// Rules: POLICY-9
#[test]
fn thread_name_of_a_named_thread_is_its_name() {
    let policy = Policy::new(Profile::Py311);
    let err = in_thread("my worker #3", move || policy.get_event_loop().unwrap_err());
    assert_no_current_loop(&err, "my worker #3");
}

/// Rules: POLICY-9
#[test]
fn thread_name_of_an_unnamed_thread_is_thread_n() {
    let policy = Policy::new(Profile::Py311);
    let (err, expected, id) = thread::spawn(move || {
        (
            policy.get_event_loop().unwrap_err(),
            unnamed_thread_name(),
            format!("{:?}", thread::current().id()),
        )
    })
    .join()
    .unwrap();
    assert_eq!(id, format!("ThreadId({})", &expected["Thread-".len()..]));
    assert_no_current_loop(&err, &expected);
}

/// Rules: POLICY-9
#[test]
fn thread_name_main_is_mainthread_for_the_default_policy_only() {
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
}

/// Rules: POLICY-9
#[test]
fn thread_name_of_another_thread_is_not_mainthread_under_a_main_policy() {
    in_thread("p9-main", || {
        let policy = main_policy(Profile::Py311);
        let p = policy.clone();
        let err = in_thread("helper", move || p.get_event_loop().unwrap_err());
        assert_no_current_loop(&err, "helper");
        let p = policy.clone();
        let (err, expected) =
            thread::spawn(move || (p.get_event_loop().unwrap_err(), unnamed_thread_name()))
                .join()
                .unwrap();
        assert_no_current_loop(&err, &expected);
    });
}

// ---------------------------------------------------------------------------
// POLICY-10
// ---------------------------------------------------------------------------

/// Rules: POLICY-10
#[test]
fn get_running_loop_fails_with_no_running_loop() {
    in_thread("p10", || {
        assert_no_running_loop(&get_running_loop().unwrap_err());
        // A current loop is not a running loop.
        let lp = vloop();
        set_event_loop(Some(&lp));
        assert_no_running_loop(&get_running_loop().unwrap_err());
        // Nor is a loop after its run ended.
        lp.run_until_complete(async { Ok(()) }).unwrap();
        assert_no_running_loop(&get_running_loop().unwrap_err());
    });
}

/// Rules: POLICY-10
#[test]
fn get_running_loop_works_in_tasks_and_callbacks() {
    let lp = vloop();
    let seen: Rc<RefCell<Option<EventLoop>>> = Rc::default();
    let s = seen.clone();
    lp.call_soon(move || *s.borrow_mut() = Some(get_running_loop().unwrap()))
        .unwrap();
    let from_task = lp.run_until_complete(async { get_running_loop() }).unwrap();
    assert_eq!(from_task, lp);
    assert_eq!(seen.borrow().clone(), Some(lp.clone()));
}

/// Rules: POLICY-10, POLICY-11
#[test]
fn get_running_loop_fails_in_a_thread_while_another_thread_runs_a_loop() {
    let lp = vloop();
    let errs: Rc<RefCell<Vec<Error>>> = Rc::default();
    let e = errs.clone();
    let l2 = lp.clone();
    lp.call_soon(move || {
        // The loop runs in this thread while the other thread checks.
        assert!(l2.is_running());
        let found = thread::spawn(|| {
            vec![
                get_running_loop().unwrap_err(),
                current_task().unwrap_err(),
                all_tasks().unwrap_err(),
                create_task(async { Ok(()) }).unwrap_err(),
            ]
        })
        .join()
        .unwrap();
        e.borrow_mut().extend(found);
    })
    .unwrap();
    run_once(&lp);
    let errs = errs.borrow();
    assert_eq!(errs.len(), 4);
    for err in errs.iter() {
        assert_no_running_loop(err);
    }
}

// ---------------------------------------------------------------------------
// POLICY-11
// ---------------------------------------------------------------------------

/// Rules: POLICY-11
#[test]
fn ensure_future_creates_the_loop_implicitly_in_the_main_thread() {
    in_thread("main", || {
        let fut = ensure_future(async { Ok(5) }).unwrap();
        let lp = get_event_loop().unwrap();
        assert_eq!(fut.get_loop(), lp);
        assert_eq!(lp.run_until_complete(fut).unwrap(), 5);
        lp.close().unwrap();
    });
}

/// Rules: POLICY-11
#[test]
fn ensure_future_fails_outside_the_main_thread_with_no_current_loop() {
    let (err, polled) = in_thread("ef-worker", || {
        let polled = Rc::new(RefCell::new(false));
        let p = polled.clone();
        let err = ensure_future(async move {
            *p.borrow_mut() = true;
            Ok(1)
        })
        .unwrap_err();
        let polled = *polled.borrow();
        (err, polled)
    });
    assert_no_current_loop(&err, "ef-worker");
    assert!(!polled);
}

/// Rules: POLICY-11
#[test]
fn ensure_future_uses_the_current_loop_without_a_running_one() {
    in_thread("ef-current", || {
        let lp = vloop();
        set_event_loop(Some(&lp));
        let fut = ensure_future(async { Ok("x") }).unwrap();
        assert_eq!(fut.get_loop(), lp);
        assert_eq!(lp.run_until_complete(fut).unwrap(), "x");
    });
}

/// Rules: POLICY-11, POLICY-2
#[test]
fn ensure_future_prefers_the_running_loop_over_the_current_one() {
    in_thread("ef-running", || {
        let current = vloop();
        set_event_loop(Some(&current));
        let running = vloop();
        let inner_loop = running
            .run_until_complete(async {
                let f = ensure_future(async { Ok(3) })?;
                let l = f.get_loop();
                assert_eq!(f.await?, 3);
                Ok(l)
            })
            .unwrap();
        assert_eq!(inner_loop, running);
    });
}

/// Rules: POLICY-11
#[test]
fn ensure_future_returns_a_future_unchanged_without_finding_a_loop() {
    in_thread("ef-future", || {
        let lp = vloop();
        let fut = lp.create_future::<u8>();
        // No current loop, no running loop: a future needs no loop lookup.
        let same = ensure_future(fut.clone()).unwrap();
        assert_eq!(same, fut);
    });
}

/// Rules: POLICY-11
#[test]
fn create_task_current_task_all_tasks_need_a_running_loop() {
    for name in ["main", "ct-worker"] {
        in_thread(name, || {
            // Even with a current loop set, these use the running loop only.
            let lp = vloop();
            set_event_loop(Some(&lp));
            assert_no_running_loop(&create_task(async { Ok(()) }).unwrap_err());
            assert_no_running_loop(&current_task().unwrap_err());
            assert_no_running_loop(&all_tasks().unwrap_err());
        });
    }
}

/// Rules: POLICY-11
#[test]
fn create_task_in_the_main_thread_does_not_create_a_loop() {
    in_thread("main", || {
        assert_no_running_loop(&create_task(async { Ok(()) }).unwrap_err());
        assert_no_running_loop(&current_task().unwrap_err());
        assert_no_running_loop(&all_tasks().unwrap_err());
        assert_eq!(peek_slot(), None);
    });
}

/// Rules: POLICY-11
#[test]
fn create_task_uses_the_running_loop_from_a_callback() {
    in_thread("ct-callback", || {
        let current = vloop();
        set_event_loop(Some(&current));
        let running = vloop();
        let out: Rc<RefCell<Option<(EventLoop, bool)>>> = Rc::default();
        let o = out.clone();
        running
            .call_soon(move || {
                let t = create_task(async { Ok(1) }).unwrap();
                let none_in_callback = current_task().unwrap().is_none();
                *o.borrow_mut() = Some((t.get_loop(), none_in_callback));
            })
            .unwrap();
        run_once(&running);
        let (task_loop, none_in_callback) = out.borrow_mut().take().unwrap();
        assert_eq!(task_loop, running);
        assert!(none_in_callback);
    });
}

// ---------------------------------------------------------------------------
// POLICY-12
// ---------------------------------------------------------------------------

/// Rules: POLICY-12
#[test]
fn one_loop_can_be_current_in_several_threads() {
    let lp = new_event_loop();
    let mut handles = Vec::new();
    for name in ["t-a", "t-b", "t-c"] {
        let l = lp.clone();
        handles.push(
            thread::Builder::new()
                .name(name.into())
                .spawn(move || {
                    set_event_loop(Some(&l));
                    get_event_loop().unwrap() == l
                })
                .unwrap(),
        );
    }
    for h in handles {
        assert!(h.join().unwrap());
    }
}

/// Rules: POLICY-12, LIFE-5
#[test]
fn loop_current_in_two_threads_cannot_run_in_both_at_once() {
    let lp = vloop();
    let l2 = lp.clone();
    let (err, running) = in_thread("runner", move || {
        set_event_loop(Some(&l2));
        let out: Rc<RefCell<Option<(Error, bool)>>> = Rc::default();
        let o = out.clone();
        let l3 = l2.clone();
        l2.call_soon(move || {
            // While the loop runs here, a second thread that also has it as
            // its current loop tries to run it.
            let l4 = l3.clone();
            let r = in_thread("second", move || {
                set_event_loop(Some(&l4));
                assert_eq!(get_event_loop().unwrap(), l4);
                (l4.run_forever().unwrap_err(), l4.is_running())
            });
            *o.borrow_mut() = Some(r);
        })
        .unwrap();
        run_once(&l2);
        let r = out.borrow_mut().take();
        r.unwrap()
    });
    assert_eq!(err, Error::AlreadyRunning);
    assert_eq!(err.to_string(), "This event loop is already running");
    assert!(running);
    assert!(!lp.is_running());
}

/// Rules: POLICY-12
#[test]
fn loop_made_in_one_thread_runs_in_another() {
    let lp = new_event_loop();
    let l2 = lp.clone();
    let v = in_thread("other-runner", move || {
        set_event_loop(Some(&l2));
        l2.run_until_complete(async { get_running_loop() })
    })
    .unwrap();
    assert_eq!(v, lp);
    assert!(!lp.is_running());
}

// ---------------------------------------------------------------------------
// POLICY-13
// ---------------------------------------------------------------------------

/// Rules: POLICY-13
#[test]
fn run_refuses_to_nest_inside_a_task() {
    in_thread("p13-task", || {
        let lp = vloop();
        let (err, polled) = lp
            .run_until_complete(async {
                let polled = Rc::new(RefCell::new(false));
                let p = polled.clone();
                let err = run(async move {
                    *p.borrow_mut() = true;
                    Ok(())
                })
                .unwrap_err();
                // The running loop is untouched.
                assert_eq!(get_running_loop()?, get_event_loop()?);
                let polled = *polled.borrow();
                Ok((err, polled))
            })
            .unwrap();
        assert_eq!(err, Error::RunInRunningLoop);
        assert_eq!(
            err.to_string(),
            "asyncio.run() cannot be called from a running event loop"
        );
        assert_eq!(err.python_type(), "RuntimeError");
        assert!(!polled);
    });
}

/// Rules: POLICY-13
#[test]
fn run_refuses_to_nest_inside_a_callback_and_leaves_the_slot_alone() {
    in_thread("p13-callback", || {
        let policy = main_policy(Profile::Py311);
        let current = policy.new_event_loop();
        policy.set_event_loop(Some(&current));
        let running = vloop();
        // Recorded in the callback and checked here: a panic in a callback is
        // caught by the loop and would not fail the test.
        type Seen = (Error, bool, Option<EventLoop>);
        let out: Rc<RefCell<Option<Seen>>> = Rc::default();
        let o = out.clone();
        let p = policy.clone();
        let r2 = running.clone();
        running
            .call_soon(move || {
                let err = p.run(async { Ok(()) }).unwrap_err();
                *o.borrow_mut() = Some((err, r2.is_running(), get_running_loop().ok()));
            })
            .unwrap();
        run_once(&running);
        let (err, still_running, seen) = out.borrow_mut().take().expect("the callback ran");
        assert_eq!(err, Error::RunInRunningLoop);
        assert!(still_running);
        assert_eq!(seen, Some(running.clone()));
        assert_eq!(policy.get_event_loop().unwrap(), current);
        assert!(!current.is_closed());
    });
}
