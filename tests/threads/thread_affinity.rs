//! THREAD rules of SPEC.md: loop-bound work lives on the loop's home thread,
//! how a loop moves between threads, what happens when the home exits or
//! another thread closes the loop, what is `Send`, and task wakers.
//!
//! Threads are joined before asserting. Where a thread must stay alive while
//! another checks something (a home thread), the check runs in a nested
//! thread that is joined inside it. The few tests that need a parked loop to
//! be woken from another thread use a real-clock loop whose run can only end
//! through that wake-up, so they terminate exactly when the rule holds.
// A loopspec future passed to create_task as it is would be refused (TASK-2):
// the async blocks that only await one future are the coroutines under test.
#![allow(clippy::redundant_async_block)]

use common::{DropCount, DropWhere, Log, count, counter, in_thread, recv_or_hang, run_once, vloop};
use loopspec::{Error, EventLoop, Future, Handle, Task, TaskRef, TimerHandle};
use std::cell::Cell;
use std::marker::PhantomData;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::task::{Context, Poll, Waker};
use std::thread;

fn assert_non_thread_safe(err: &Error) {
    assert_eq!(*err, Error::NonThreadSafeCall);
    assert_eq!(
        err.to_string(),
        "Non-thread-safe operation invoked on an event loop other than the current one"
    );
    assert_eq!(err.python_type(), "RuntimeError");
}

fn assert_bound_to(err: &Error, home: &str) {
    assert_eq!(
        *err,
        Error::BoundToThread {
            thread: home.to_string()
        }
    );
    assert_eq!(
        err.to_string(),
        format!(
            "Event loop is bound to thread '{home}', which holds its loop-bound callbacks, \
             timers or tasks"
        )
    );
    assert_eq!(err.python_type(), "RuntimeError");
}

/// The `Thread-N` name POLICY-9 gives the calling (unnamed) thread.
fn unnamed_thread_name() -> String {
    let id = format!("{:?}", thread::current().id());
    let n: String = id.chars().filter(char::is_ascii_digit).collect();
    format!("Thread-{n}")
}

/// Every loop-bound scheduling call, each handed a closure holding a drop
/// counter; returns the errors (one per call).
fn loop_bound_calls(lp: &EventLoop, dropped: &Arc<AtomicUsize>) -> Vec<Error> {
    let mut errs = Vec::new();
    let g = DropCount(dropped.clone());
    errs.push(lp.call_soon(move || drop(g)).unwrap_err());
    let g = DropCount(dropped.clone());
    errs.push(lp.call_later(1.0, move || drop(g)).unwrap_err());
    let g = DropCount(dropped.clone());
    errs.push(lp.call_at(1.0, move || drop(g)).unwrap_err());
    let g = DropCount(dropped.clone());
    errs.push(
        lp.create_task(async move {
            drop(g);
            Ok(())
        })
        .unwrap_err(),
    );
    errs
}

/// Starts `lp.run_forever()` in a thread named `loop-a` and returns once the
/// loop is running. The run ends only when someone stops the loop.
fn spawn_running(lp: &EventLoop) -> thread::JoinHandle<loopspec::Result<()>> {
    let (tx, rx) = mpsc::channel();
    let l = lp.clone();
    let h = thread::Builder::new()
        .name("loop-a".into())
        .spawn(move || {
            l.call_soon(move || tx.send(()).unwrap()).unwrap();
            l.run_forever()
        })
        .unwrap();
    recv_or_hang(&rx, "the loop thread started its run");
    h
}

// ---------------------------------------------------------------------------
// THREAD-1
// ---------------------------------------------------------------------------

/// Rules: THREAD-1
#[test]
fn loop_bound_calls_from_a_non_home_thread_fail() {
    let lp = vloop();
    let log = Log::new();
    lp.call_soon(log.cb("home")).unwrap(); // this thread is now the home
    let l = lp.clone();
    let (errs, dropped) = thread::spawn(move || {
        let dropped = counter();
        let errs = loop_bound_calls(&l, &dropped);
        // The refused closures and coroutines are dropped, not run.
        (errs, count(&dropped))
    })
    .join()
    .unwrap();
    assert_eq!(errs.len(), 4);
    for err in &errs {
        assert_non_thread_safe(err);
    }
    assert_eq!(dropped, 4);
    // The home's work is untouched.
    run_once(&lp);
    assert_eq!(log.get(), ["home"]);
}

/// Rules: THREAD-1
#[test]
fn first_loop_bound_call_claims_the_home() {
    // Whichever loop-bound call comes first makes its thread the home.
    for kind in 0..4 {
        let lp = vloop();
        let l = lp.clone();
        in_thread("first", move || {
            match kind {
                0 => drop(l.call_soon(|| ()).unwrap()),
                1 => drop(l.call_later(5.0, || ()).unwrap()),
                2 => drop(l.call_at(5.0, || ()).unwrap()),
                _ => drop(l.create_task(async { Ok(()) }).unwrap()),
            }
            let l2 = l.clone();
            let errs = in_thread("second", move || loop_bound_calls(&l2, &counter()));
            for err in &errs {
                assert_non_thread_safe(err);
            }
            // The home itself can go on scheduling.
            l.call_soon(|| ()).unwrap();
        });
    }
}

/// Rules: THREAD-1
#[test]
fn call_soon_threadsafe_works_from_any_thread() {
    let lp = vloop();
    let log = Log::new();
    lp.call_soon(log.cb("home")).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (l, s) = (lp.clone(), seen.clone());
    thread::spawn(move || {
        let s2 = s.clone();
        l.call_soon_threadsafe(move || s2.lock().unwrap().push("from other thread"))
            .unwrap();
    })
    .join()
    .unwrap();
    run_once(&lp);
    assert_eq!(log.get(), ["home"]);
    assert_eq!(*seen.lock().unwrap(), ["from other thread"]);
}

/// Rules: THREAD-1
#[test]
fn completing_a_future_with_callbacks_off_the_home_fails_but_finishes() {
    let lp = vloop();
    let l = lp.clone();
    in_thread("home", move || {
        l.call_soon(|| ()).unwrap();
        let l2 = l.clone();
        in_thread("other", move || {
            // create_future is not loop-bound; scheduling its callbacks is.
            let with_cb = l2.create_future::<i32>();
            with_cb
                .add_done_callback(Rc::new(|_: &Future<i32>| ()))
                .unwrap();
            assert_non_thread_safe(&with_cb.set_result(1).unwrap_err());
            assert!(with_cb.done());
            assert_eq!(with_cb.result().unwrap(), 1);

            let exc = l2.create_future::<i32>();
            exc.add_done_callback(Rc::new(|_: &Future<i32>| ()))
                .unwrap();
            assert_non_thread_safe(
                &exc.set_exception(Error::raise("ValueError", "v"))
                    .unwrap_err(),
            );
            assert!(exc.done());

            let cancelled = l2.create_future::<i32>();
            cancelled
                .add_done_callback(Rc::new(|_: &Future<i32>| ()))
                .unwrap();
            assert!(cancelled.cancel());
            assert!(cancelled.cancelled());

            // No callbacks: nothing to schedule, no error.
            let plain = l2.create_future::<i32>();
            plain.set_result(2).unwrap();
            assert_eq!(plain.result().unwrap(), 2);
        });
    });
}

/// Rules: THREAD-1
#[test]
fn loop_bound_calls_fail_while_the_loop_runs_elsewhere() {
    // The run claims the home; while it runs, other threads are refused
    // (where CPython's debug mode raises the same error).
    let lp = vloop();
    let out = Rc::new(std::cell::RefCell::new(None));
    let (o, l) = (out.clone(), lp.clone());
    lp.call_soon(move || {
        let l2 = l.clone();
        let errs = thread::spawn(move || {
            let dropped = counter();
            let errs = loop_bound_calls(&l2, &dropped);
            let threadsafe = l2.call_soon_threadsafe(|| ()).is_ok();
            (errs, threadsafe)
        })
        .join()
        .unwrap();
        *o.borrow_mut() = Some(errs);
    })
    .unwrap();
    run_once(&lp);
    let (errs, threadsafe) = out.borrow_mut().take().unwrap();
    assert_eq!(errs.len(), 4);
    for err in &errs {
        assert_non_thread_safe(err);
    }
    assert!(threadsafe);
}

/// Rules: THREAD-1
#[test]
fn loop_bound_calls_fail_while_a_real_loop_is_parked_elsewhere() {
    let lp = EventLoop::new();
    let runner = spawn_running(&lp);
    let dropped = counter();
    for err in loop_bound_calls(&lp, &dropped) {
        assert_non_thread_safe(&err);
    }
    assert_eq!(count(&dropped), 4);
    lp.stop();
    runner.join().unwrap().unwrap();
}

// ---------------------------------------------------------------------------
// THREAD-2
// ---------------------------------------------------------------------------

/// Rules: THREAD-2
#[test]
fn run_from_a_non_home_thread_names_the_home() {
    let lp = vloop();
    let l = lp.clone();
    in_thread("home-a", move || {
        let log = Log::new();
        l.call_soon(log.cb("queued by home")).unwrap();
        let l2 = l.clone();
        let (e1, e2, polled) = in_thread("intruder", move || {
            let polled = Arc::new(AtomicUsize::new(0));
            let p = polled.clone();
            let e1 = l2.run_forever().unwrap_err();
            let e2 = l2
                .run_until_complete(async move {
                    p.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                })
                .unwrap_err();
            (e1, e2, count(&polled))
        });
        assert_bound_to(&e1, "home-a");
        assert_bound_to(&e2, "home-a");
        assert_eq!(polled, 0);
        // The refused run changed nothing: the home runs its work.
        assert!(!l.is_running());
        run_once(&l);
        assert_eq!(log.get(), ["queued by home"]);
    });
}

/// Rules: THREAD-2, POLICY-9
#[test]
fn bound_to_thread_names_an_unnamed_home_thread_n() {
    let lp = vloop();
    let l = lp.clone();
    let (err, home) = thread::spawn(move || {
        l.call_later(1.0, || ()).unwrap();
        let home = unnamed_thread_name();
        let l2 = l.clone();
        let err = in_thread("intruder", move || l2.run_forever().unwrap_err());
        (err, home)
    })
    .join()
    .unwrap();
    assert!(home.starts_with("Thread-"));
    assert_bound_to(&err, &home);
}

/// Rules: THREAD-2, POLICY-9
#[test]
fn bound_to_thread_names_rusts_main_thread_mainthread() {
    let lp = vloop();
    let l = lp.clone();
    let err = in_thread("main", move || {
        l.call_soon(|| ()).unwrap();
        let l2 = l.clone();
        in_thread("intruder", move || l2.run_forever().unwrap_err())
    });
    assert_bound_to(&err, "MainThread");
}

/// Rules: THREAD-2, LIFE-8
#[test]
fn run_from_a_non_home_thread_checks_closed_first() {
    let lp = vloop();
    let l = lp.clone();
    in_thread("home", move || {
        l.call_soon(|| ()).unwrap();
        let l2 = l.clone();
        let err = in_thread("closer", move || {
            l2.close().unwrap();
            l2.run_forever().unwrap_err()
        });
        assert_eq!(err, Error::Closed);
    });
}

/// Rules: THREAD-2, LIFE-5
#[test]
fn run_from_a_non_home_thread_checks_running_first() {
    // The loop runs in its home; another thread is refused with LIFE-5's
    // message, not THREAD-2's.
    let lp = EventLoop::new();
    let runner = spawn_running(&lp);
    let err = lp.run_forever().unwrap_err();
    assert_eq!(err, Error::AlreadyRunning);
    lp.stop();
    runner.join().unwrap().unwrap();
}

/// Rules: THREAD-2, LIFE-5
#[test]
fn run_from_a_non_home_thread_checks_another_loop_running_first() {
    let l1 = vloop();
    let l = l1.clone();
    in_thread("home", move || {
        l.call_soon(|| ()).unwrap();
        let la = l.clone();
        let err = in_thread("other-runner", move || {
            let l2 = vloop();
            let out = Rc::new(std::cell::RefCell::new(None));
            let (o, la2) = (out.clone(), la.clone());
            l2.call_soon(move || *o.borrow_mut() = Some(la2.run_forever().unwrap_err()))
                .unwrap();
            run_once(&l2);
            out.borrow_mut().take().unwrap()
        });
        assert_eq!(err, Error::AnotherLoopRunning);
    });
}

// ---------------------------------------------------------------------------
// THREAD-3
// ---------------------------------------------------------------------------

/// Rules: THREAD-3
#[test]
fn loop_made_here_and_fed_threadsafe_runs_in_another_thread() {
    // The seed's pattern: make the loop in one thread, run it in another,
    // hand work over only with call_soon_threadsafe.
    let lp = EventLoop::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    lp.call_soon_threadsafe(move || {
        let name = thread::current().name().unwrap_or("?").to_string();
        s.lock().unwrap().push(format!("first on {name}"));
    })
    .unwrap();
    let l = lp.clone();
    let runner = thread::Builder::new()
        .name("runner".into())
        .spawn(move || {
            loopspec::set_event_loop(Some(&l));
            l.run_forever()
        })
        .unwrap();
    let s = seen.clone();
    lp.call_soon_threadsafe(move || s.lock().unwrap().push("second".into()))
        .unwrap();
    let l = lp.clone();
    lp.call_soon_threadsafe(move || l.stop()).unwrap();
    runner.join().unwrap().unwrap();
    assert_eq!(*seen.lock().unwrap(), ["first on runner", "second"]);
    // Its run ended empty: this thread can now use and run it.
    let log = Log::new();
    lp.call_soon(log.cb("here")).unwrap();
    run_once(&lp);
    assert_eq!(log.get(), ["here"]);
}

/// Rules: THREAD-3
#[test]
fn loop_released_after_an_empty_run_moves_to_another_thread() {
    let lp = vloop();
    let l = lp.clone();
    let v = in_thread("first-runner", move || {
        l.run_until_complete(async {
            loopspec::sleep(1.0).await?;
            Ok(1)
        })
    })
    .unwrap();
    assert_eq!(v, 1);
    // This thread now runs it, with loop-bound work of its own.
    let log = Log::new();
    lp.call_soon(log.cb("second home")).unwrap();
    let v = lp
        .run_until_complete(async {
            loopspec::sleep(1.0).await?;
            Ok(2)
        })
        .unwrap();
    assert_eq!(v, 2);
    assert_eq!(log.get(), ["second home"]);
    // And after that empty run, yet another thread.
    let l = lp.clone();
    let v = in_thread("third", move || {
        l.call_later(1.0, || ()).unwrap();
        l.run_until_complete(async {
            loopspec::sleep(2.0).await?;
            Ok(3)
        })
    })
    .unwrap();
    assert_eq!(v, 3);
    assert_eq!(lp.time(), 4.0);
}

/// Rules: THREAD-3
#[test]
fn loop_bound_call_released_while_home_alive_after_an_empty_run() {
    // The home thread is still alive; the release comes from the empty run.
    let lp = vloop();
    let l = lp.clone();
    in_thread("home", move || {
        let log = Log::new();
        l.call_soon(log.cb("a")).unwrap();
        run_once(&l);
        assert_eq!(log.get(), ["a"]);
        let l2 = l.clone();
        let ok = in_thread("next", move || {
            let seen = Rc::new(Cell::new(false));
            let s = seen.clone();
            l2.call_soon(move || s.set(true)).unwrap();
            run_once(&l2);
            seen.get()
        });
        assert!(ok);
    });
}

/// Rules: THREAD-3, THREAD-2
#[test]
fn pending_timer_keeps_the_home_until_cancelled() {
    let lp = vloop();
    let l = lp.clone();
    in_thread("home", move || {
        let timer = l.call_later(100.0, || ()).unwrap();
        run_once(&l);
        let l2 = l.clone();
        let err = in_thread("other", move || l2.run_forever().unwrap_err());
        assert_bound_to(&err, "home");
        // A cancelled timer is not pending work: the next empty run releases.
        timer.cancel();
        run_once(&l);
        let l2 = l.clone();
        let r = in_thread("other", move || {
            l2.stop();
            l2.run_forever()
        });
        assert!(r.is_ok());
    });
}

/// Rules: THREAD-3, THREAD-2
#[test]
fn unfinished_task_keeps_the_home_until_done() {
    let lp = vloop();
    let l = lp.clone();
    in_thread("home", move || {
        let gate = l.create_future::<u8>();
        let g = gate.clone();
        let task = l.create_task(async move { g.await }).unwrap();
        run_once(&l);
        assert!(!task.done());
        let l2 = l.clone();
        let err = in_thread("other", move || l2.run_forever().unwrap_err());
        assert_bound_to(&err, "home");
        gate.set_result(7).unwrap();
        assert_eq!(l.run_until_complete(task).unwrap(), 7);
        let l2 = l.clone();
        let v = in_thread("other", move || l2.run_until_complete(async { Ok(8) }));
        assert_eq!(v.unwrap(), 8);
    });
}

/// Rules: THREAD-3, THREAD-2
#[test]
fn ready_callbacks_left_by_a_stop_keep_the_home() {
    let lp = vloop();
    let l = lp.clone();
    in_thread("home", move || {
        let log = Log::new();
        let (l1, lg) = (l.clone(), log.clone());
        l.call_soon(move || {
            lg.push("a");
            l1.call_soon(lg.cb("b")).unwrap();
        })
        .unwrap();
        run_once(&l);
        let l2 = l.clone();
        let err = in_thread("other", move || l2.run_forever().unwrap_err());
        assert_bound_to(&err, "home");
        run_once(&l);
        assert_eq!(log.get(), ["a", "b"]);
        let l2 = l.clone();
        assert!(
            in_thread("other", move || {
                l2.stop();
                l2.run_forever()
            })
            .is_ok()
        );
    });
}

/// Rules: THREAD-3
#[test]
fn loop_without_loop_bound_work_has_no_home() {
    // create_future, time, stop, is_running and call_soon_threadsafe do not
    // claim a home: another thread can then claim it.
    let lp = vloop();
    let _fut = lp.create_future::<i32>();
    let _ = lp.time();
    let _ = lp.is_running();
    lp.call_soon_threadsafe(|| ()).unwrap();
    let l = lp.clone();
    let ok = in_thread("claimer", move || {
        l.call_soon(|| ()).unwrap();
        l.stop();
        l.run_forever().is_ok()
    });
    assert!(ok);
}

// ---------------------------------------------------------------------------
// THREAD-4
// ---------------------------------------------------------------------------

/// Rules: THREAD-4
#[test]
fn home_thread_exit_drops_its_work_and_releases_the_loop() {
    let lp = vloop();
    let dropped = counter();
    let ran = counter();
    let (l, d, r) = (lp.clone(), dropped.clone(), ran.clone());
    in_thread("short-lived", move || {
        let (g, r1) = (DropCount(d.clone()), r.clone());
        l.call_soon(move || {
            let _g = g;
            r1.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
        let (g, r1) = (DropCount(d.clone()), r.clone());
        l.call_later(5.0, move || {
            let _g = g;
            r1.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
        let (g, r1) = (DropCount(d.clone()), r.clone());
        l.call_at(7.0, move || {
            let _g = g;
            r1.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
        let never = l.create_future::<()>();
        let g = DropCount(d.clone());
        let _task = l
            .create_task(async move {
                let _g = g;
                never.await
            })
            .unwrap();
        assert_eq!(count(&d), 0);
    });
    // The thread is gone and its work with it.
    assert_eq!(count(&dropped), 4);
    assert_eq!(count(&ran), 0);
    assert!(!lp.is_closed());
    // The loop has no home: this thread can use and run it; the old timers
    // do not fire.
    let log = Log::new();
    lp.call_soon(log.cb("new home")).unwrap();
    let l = lp.clone();
    let lg = log.clone();
    lp.call_later(10.0, move || {
        lg.push("stop");
        l.stop();
    })
    .unwrap();
    lp.run_forever().unwrap();
    assert_eq!(log.get(), ["new home", "stop"]);
    assert_eq!(lp.time(), 10.0);
    assert_eq!(count(&ran), 0);
}

/// Rules: THREAD-4
#[test]
fn home_thread_exit_lets_another_thread_run_the_loop() {
    let lp = vloop();
    let l = lp.clone();
    thread::spawn(move || {
        l.call_later(1.0, || ()).unwrap();
    })
    .join()
    .unwrap();
    let l = lp.clone();
    let v = in_thread("successor", move || {
        l.run_until_complete(async {
            loopspec::sleep(0.5).await?;
            Ok(9)
        })
    });
    assert_eq!(v.unwrap(), 9);
}

/// Rules: THREAD-4
#[test]
fn home_thread_exit_drops_a_pending_task_future_on_that_thread() {
    let lp = vloop();
    let dropped_in = Arc::new(Mutex::new(Vec::new()));
    let (l, d) = (lp.clone(), dropped_in.clone());
    let task_was_pending = in_thread("task-home", move || {
        let gate = l.create_future::<()>();
        let g = DropWhere(d);
        let task = l
            .create_task(async move {
                let _g = g;
                gate.await
            })
            .unwrap();
        run_once(&l); // the task starts and suspends
        !task.done()
    });
    assert!(task_was_pending);
    assert_eq!(*dropped_in.lock().unwrap(), ["task-home"]);
    assert!(lp.run_until_complete(async { Ok(()) }).is_ok());
}

/// Rules: THREAD-4, XTHREAD-1
#[test]
fn home_thread_exit_keeps_cross_thread_submissions_it_had_taken_in() {
    let lp = vloop();
    let log = Arc::new(Mutex::new(Vec::new()));
    let submit = |what: &'static str| {
        let log = log.clone();
        lp.call_soon_threadsafe(move || log.lock().unwrap().push(what))
            .unwrap();
    };
    submit("first");
    let dropped = counter();
    let (l, d) = (lp.clone(), dropped.clone());
    in_thread("home-then-gone", move || {
        // A loop-bound call takes the inbox into this thread's half, ahead
        // of the callback it queues; then the thread exits without running.
        let g = DropCount(d);
        l.call_soon(move || drop(g)).unwrap();
    });
    submit("second");
    assert_eq!(
        count(&dropped),
        1,
        "the loop-bound callback went with its thread"
    );
    run_once(&lp);
    assert_eq!(*log.lock().unwrap(), ["first", "second"]);
}

/// Rules: THREAD-4, XTHREAD-6
#[test]
fn home_thread_exit_keeps_a_run_coroutine_threadsafe_submission() {
    let lp = vloop();
    let cf = loopspec::run_coroutine_threadsafe(|| async { Ok(7) }, &lp).unwrap();
    let l = lp.clone();
    let source = cf.clone();
    in_thread("wrapper-home", move || {
        // wrap_future makes this thread the home and takes in the submission.
        let _wrapper = loopspec::wrap_future(&source, &l).unwrap();
    });
    let l = lp.clone();
    let wrapped = in_thread("successor", move || {
        let f = loopspec::wrap_future(&cf, &l).unwrap();
        l.run_until_complete(f)
    });
    assert_eq!(wrapped, Ok(7));
}

/// Rules: THREAD-4, THREAD-5, XTHREAD-6
#[test]
fn home_thread_exit_after_close_drops_the_submissions_it_had_taken_in() {
    let lp = vloop();
    let cf = loopspec::run_coroutine_threadsafe(|| async { Ok(7) }, &lp).unwrap();
    let (l, closer) = (lp.clone(), lp.clone());
    in_thread("home", move || {
        l.call_soon(|| ()).unwrap(); // takes the submission in
        in_thread("closer", move || closer.close().unwrap());
    });
    // Done by the time the home thread has been joined: no wait needed.
    assert_eq!(
        cf.result(Some(std::time::Duration::ZERO)),
        Err(Error::Closed)
    );
}

// ---------------------------------------------------------------------------
// THREAD-5
// ---------------------------------------------------------------------------

/// Rules: THREAD-5
#[test]
fn close_from_another_thread_drops_submissions_at_once_and_home_work_on_next_call() {
    let lp = vloop();
    let l = lp.clone();
    in_thread("home", move || {
        let local_dropped = counter();
        let local_where = Arc::new(Mutex::new(Vec::new()));
        for _ in 0..2 {
            let (g, w) = (
                DropCount(local_dropped.clone()),
                DropWhere(local_where.clone()),
            );
            l.call_soon(move || drop((g, w))).unwrap();
        }
        let (g, w) = (
            DropCount(local_dropped.clone()),
            DropWhere(local_where.clone()),
        );
        l.call_later(3.0, move || drop((g, w))).unwrap();

        // Submissions from a producer thread, not yet taken by the loop.
        let inbox_dropped = counter();
        let inbox_ran = counter();
        let (l2, d, r) = (l.clone(), inbox_dropped.clone(), inbox_ran.clone());
        in_thread("producer", move || {
            for _ in 0..3 {
                let (g, r) = (DropCount(d.clone()), r.clone());
                l2.call_soon_threadsafe(move || {
                    let _g = g;
                    r.fetch_add(1, Ordering::SeqCst);
                })
                .unwrap();
            }
        });
        assert_eq!(count(&inbox_dropped), 0);

        let (l2, d, ld) = (l.clone(), inbox_dropped.clone(), local_dropped.clone());
        let (inbox_at_close, local_at_close) = in_thread("closer", move || {
            l2.close().unwrap();
            (count(&d), count(&ld))
        });
        assert_eq!(inbox_at_close, 3, "submissions dropped at once");
        assert_eq!(
            local_at_close, 0,
            "loop-bound work is not dropped off its home"
        );
        assert_eq!(count(&inbox_ran), 0);

        // The home's next call on the loop drops its work, on this thread.
        let extra = counter();
        let g = DropCount(extra.clone());
        assert_eq!(l.call_soon(move || drop(g)).unwrap_err(), Error::Closed);
        assert_eq!(count(&extra), 1);
        assert_eq!(count(&local_dropped), 3);
        assert_eq!(*local_where.lock().unwrap(), ["home", "home", "home"]);
    });
}

/// Rules: THREAD-5
#[test]
fn close_from_another_thread_drops_home_work_when_the_home_exits() {
    let lp = vloop();
    let local_dropped = counter();
    let (l, ld) = (lp.clone(), local_dropped.clone());
    in_thread("home", move || {
        let g = DropCount(ld.clone());
        l.call_soon(move || drop(g)).unwrap();
        let never = l.create_future::<()>();
        let g = DropCount(ld.clone());
        l.create_task(async move {
            let _g = g;
            never.await
        })
        .unwrap();
        let (l2, ld2) = (l.clone(), ld.clone());
        let at_close = in_thread("closer", move || {
            l2.close().unwrap();
            count(&ld2)
        });
        assert_eq!(at_close, 0);
        // The home exits without touching the loop again.
    });
    assert_eq!(count(&local_dropped), 2);
    assert!(lp.is_closed());
}

/// Rules: THREAD-5, LIFE-8
#[test]
fn close_from_another_thread_refuses_later_submissions() {
    let lp = vloop();
    lp.call_soon(|| ()).unwrap();
    let l = lp.clone();
    let (closed, err) = thread::spawn(move || {
        l.close().unwrap();
        (l.is_closed(), l.call_soon_threadsafe(|| ()).unwrap_err())
    })
    .join()
    .unwrap();
    assert!(closed);
    assert_eq!(err, Error::Closed);
    assert!(lp.is_closed());
    assert_eq!(lp.run_forever().unwrap_err(), Error::Closed);
}

/// Rules: THREAD-5
#[test]
fn close_from_another_thread_then_home_run_drops_home_work() {
    // A run is a loop-bound call (THREAD-1): the home's refused run is its
    // next call on the loop, so the work goes then.
    let lp = vloop();
    let l = lp.clone();
    in_thread("home", move || {
        let dropped = counter();
        let g = DropCount(dropped.clone());
        l.call_soon(move || drop(g)).unwrap();
        let l2 = l.clone();
        in_thread("closer", move || l2.close().unwrap());
        assert_eq!(l.run_forever().unwrap_err(), Error::Closed);
        assert_eq!(count(&dropped), 1);
    });
}

// ---------------------------------------------------------------------------
// THREAD-6
// ---------------------------------------------------------------------------

fn assert_send_sync<T: Send + Sync>() {}

/// Whether a type is `Send`/`Sync`, decided at compile time for a concrete
/// type: the inherent constant applies only when the bound holds, otherwise
/// the blanket trait's `false` is used.
struct Probe<T: ?Sized>(PhantomData<T>);

trait NotSend {
    const IS_SEND: bool = false;
}
impl<T: ?Sized> NotSend for T {}

impl<T: ?Sized + Send> Probe<T> {
    const IS_SEND: bool = true;
}

macro_rules! is_send {
    ($t:ty) => {
        <Probe<$t>>::IS_SEND
    };
}

/// Rules: THREAD-6
#[test]
fn event_loop_and_handles_are_send_and_sync() {
    assert_send_sync::<EventLoop>();
    assert_send_sync::<Handle>();
    assert_send_sync::<TimerHandle>();
}

/// Rules: THREAD-6
#[test]
fn futures_and_tasks_are_not_send() {
    // Checked at compile time. The probe itself works:
    const { assert!(is_send!(i32)) };
    const { assert!(is_send!(EventLoop)) };
    const { assert!(!is_send!(Rc<i32>)) };
    // The loop-bound types.
    const { assert!(!is_send!(Future<i32>)) };
    const { assert!(!is_send!(Task<i32>)) };
    const { assert!(!is_send!(Future<Arc<AtomicUsize>>)) };
    const { assert!(!is_send!(TaskRef)) };
}

/// Rules: THREAD-6
#[test]
fn thread_safe_entry_points_work_from_any_thread() {
    let lp = vloop();
    let log = Log::new();
    lp.call_soon(log.cb("kept")).unwrap();
    let cancelled_handle = lp.call_soon(log.cb("cancelled")).unwrap();
    let cancelled_timer = lp.call_later(1.0, log.cb("cancelled timer")).unwrap();
    let l = lp.clone();
    let (h, t) = (cancelled_handle.clone(), cancelled_timer.clone());
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    let (running, closed, time) = thread::spawn(move || {
        let l2 = l.clone();
        let cloned = l2.clone();
        h.cancel();
        t.cancel();
        assert!(h.cancelled());
        assert!(t.cancelled());
        assert_eq!(t.when(), 1.0);
        cloned
            .call_soon_threadsafe(move || {
                r.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        cloned.stop();
        (cloned.is_running(), cloned.is_closed(), cloned.time())
    })
    .join()
    .unwrap();
    assert!(!running);
    assert!(!closed);
    assert_eq!(time, 0.0);
    assert!(cancelled_handle.cancelled());
    // The stop requested from the other thread makes this one iteration.
    lp.run_forever().unwrap();
    assert_eq!(log.get(), ["kept"]);
    assert_eq!(count(&ran), 1);
    // close from another thread too.
    let l = lp.clone();
    thread::spawn(move || l.close().unwrap()).join().unwrap();
    assert!(lp.is_closed());
}

// ---------------------------------------------------------------------------
// THREAD-7
// ---------------------------------------------------------------------------

/// Polls `inner`; the first time it is pending, sends on `tx` (so another
/// thread knows the task is now waiting on it).
struct SignalOnPending<F> {
    inner: Pin<Box<F>>,
    tx: Option<mpsc::Sender<()>>,
}

impl<F: std::future::Future> std::future::Future for SignalOnPending<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        match self.inner.as_mut().poll(cx) {
            Poll::Ready(v) => Poll::Ready(v),
            Poll::Pending => {
                if let Some(tx) = self.tx.take() {
                    tx.send(()).unwrap();
                }
                Poll::Pending
            }
        }
    }
}

/// Rules: THREAD-7
#[test]
fn task_awaiting_a_tokio_oneshot_is_woken_from_another_thread() {
    // Real clock, no timers: the loop parks with no limit once the task is
    // waiting, and only the waker called from the sender thread can end it.
    let lp = EventLoop::new();
    let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
    let (waiting_tx, waiting_rx) = mpsc::channel();
    let sender = thread::spawn(move || {
        recv_or_hang(&waiting_rx, "the task is waiting");
        tx.send(42).unwrap();
    });
    let v = lp
        .run_until_complete(async move {
            let got = SignalOnPending {
                inner: Box::pin(rx),
                tx: Some(waiting_tx),
            }
            .await
            .map_err(Error::from_error)?;
            Ok(got)
        })
        .unwrap();
    sender.join().unwrap();
    assert_eq!(v, 42);
    // The wake-up came through the inbox.
    assert_eq!(lp.inbox_stats().submissions, 1);
}

/// A future completed from another thread: the task's waker crosses threads.
struct Shared {
    value: Option<u32>,
    waker: Option<Waker>,
}

struct CrossThread(Arc<Mutex<Shared>>, Option<mpsc::Sender<Waker>>);

impl std::future::Future for CrossThread {
    type Output = u32;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
        let mut s = self.0.lock().unwrap();
        if let Some(v) = s.value {
            return Poll::Ready(v);
        }
        s.waker = Some(cx.waker().clone());
        drop(s);
        if let Some(tx) = self.1.take() {
            tx.send(cx.waker().clone()).unwrap();
        }
        Poll::Pending
    }
}

/// Rules: THREAD-7
#[test]
fn task_waker_sent_to_another_thread_wakes_the_parked_loop() {
    let lp = EventLoop::new();
    let shared = Arc::new(Mutex::new(Shared {
        value: None,
        waker: None,
    }));
    let (waker_tx, waker_rx) = mpsc::channel::<Waker>();
    let s = shared.clone();
    let completer = thread::spawn(move || {
        // The waker itself is Send + Sync: it was sent here.
        let waker = recv_or_hang(&waker_rx, "the task's waker");
        s.lock().unwrap().value = Some(7);
        waker.wake();
    });
    let fut = CrossThread(shared.clone(), Some(waker_tx));
    let v = lp.run_until_complete(async move { Ok(fut.await) }).unwrap();
    completer.join().unwrap();
    assert_eq!(v, 7);
}

/// Rules: THREAD-7
#[test]
fn task_woken_from_another_thread_while_a_real_loop_runs_other_work() {
    // A loop running in another thread; this thread creates nothing
    // loop-bound, it only wakes a task through its waker.
    let lp = EventLoop::new();
    let runner = spawn_running(&lp);
    let (waker_tx, waker_rx) = mpsc::channel::<Waker>();
    let (done_tx, done_rx) = mpsc::channel::<u32>();
    let shared = Arc::new(Mutex::new(Shared {
        value: None,
        waker: None,
    }));
    let (l, s) = (lp.clone(), shared.clone());
    lp.call_soon_threadsafe(move || {
        // On the loop's thread: start a task that waits on `shared`.
        let fut = CrossThread(s, Some(waker_tx));
        let task = l.create_task(async move { Ok(fut.await) }).unwrap();
        let cb = Rc::new(move |t: &Future<u32>| {
            done_tx.send(t.result().unwrap()).unwrap();
        });
        task.add_done_callback(cb).unwrap();
    })
    .unwrap();
    let waker = recv_or_hang(&waker_rx, "the task's waker");
    shared.lock().unwrap().value = Some(11);
    waker.wake_by_ref();
    assert_eq!(recv_or_hang(&done_rx, "the task finished"), 11);
    lp.stop();
    runner.join().unwrap().unwrap();
    drop(waker);
}

/// A future that wakes its own waker once (on the loop's thread) and then
/// completes.
struct WakeSelfOnce(bool);

impl std::future::Future for WakeSelfOnce {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Rules: THREAD-7
#[test]
fn task_waker_on_the_loop_thread_queues_the_next_step() {
    // Virtual clock, no timers: if the wake on the loop's thread did not
    // queue a step, the loop would park forever.
    let lp = vloop();
    let log = Log::new();
    let lg = log.clone();
    let task = lp
        .create_task(async move {
            lg.push("t1");
            WakeSelfOnce(false).await;
            lg.push("t2");
            Ok(())
        })
        .unwrap();
    let (l, lg) = (lp.clone(), log.clone());
    lp.call_soon(move || {
        lg.push("c1");
        l.call_soon(lg.cb("c2")).unwrap();
    })
    .unwrap();
    lp.run_until_complete(task).unwrap();
    // The step is queued like call_soon at the wake: before c2, which c1
    // queued later in the same iteration.
    assert_eq!(log.get(), ["t1", "c1", "t2", "c2"]);
    // No inbox traffic for a same-thread wake.
    assert_eq!(lp.inbox_stats().submissions, 0);
}

/// Rules: THREAD-7
#[test]
fn task_waker_called_after_the_loop_closed_is_harmless() {
    let lp = vloop();
    let (waker_tx, waker_rx) = mpsc::channel::<Waker>();
    let shared = Arc::new(Mutex::new(Shared {
        value: None,
        waker: None,
    }));
    let fut = CrossThread(shared.clone(), Some(waker_tx));
    let task = lp.create_task(async move { Ok(fut.await) }).unwrap();
    run_once(&lp);
    assert!(!task.done());
    let waker = recv_or_hang(&waker_rx, "the task's waker");
    drop(task);
    lp.close().unwrap();
    let before = lp.inbox_stats().submissions;
    thread::spawn(move || {
        waker.wake_by_ref();
        waker.wake();
    })
    .join()
    .unwrap();
    assert_eq!(
        lp.inbox_stats().submissions,
        before,
        "a closed loop takes no wake-up"
    );
}
