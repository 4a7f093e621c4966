//! LIFE rules of SPEC.md: running and closing a loop (`run_forever`,
//! `run_until_complete`, `close`, `is_running`, `is_closed`) and what a closed
//! loop refuses.
//!
//! The cross-thread tests run a real-clock loop in a second thread whose run
//! is ended only by the test thread's `stop()`; a channel tells the test
//! thread that the loop is running. No sleeps, no timing assertions.

use common::{
    DropCount, Scene, assert_closed, assert_py_error, capture_exceptions, cases, count, counter,
    in_thread, key_error, recv_or_hang, run_once, spawn_running, stop_running, value_error, vloop,
};
use loopspec::{
    Error, EventLoop, LocalDoneCallback, all_tasks, current_task, get_running_loop, set_event_loop,
};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;

type Counter = Arc<AtomicUsize>;

/// A callback that counts its runs in `ran`, and whose data counts its drop
/// in `dropped`.
fn watched(ran: &Counter, dropped: &Counter) -> impl FnOnce() + Send + 'static {
    let (r, g) = (ran.clone(), DropCount(dropped.clone()));
    move || {
        let _g = g;
        r.fetch_add(1, Ordering::SeqCst);
    }
}

/// A coroutine that counts its polls in `polled`, and whose data counts its
/// drop in `dropped`.
fn watched_coro(
    polled: &Counter,
    dropped: &Counter,
) -> impl std::future::Future<Output = loopspec::Result<()>> + 'static {
    let step = watched(polled, dropped);
    async move {
        step();
        Ok(())
    }
}

/// Runs `run` on a new loop, closes it, and asserts that its exception
/// handler received nothing.
fn reports_nothing(run: impl FnOnce(&EventLoop)) {
    let lp = vloop();
    let seen = capture_exceptions(&lp);
    run(&lp);
    lp.close().unwrap();
    assert!(seen.messages().is_empty(), "{:?}", seen.messages());
}

/// `is_running()` and `is_closed()`.
/// Rules: LIFE-1
#[test]
fn running_and_closed_flags() {
    for lp in [EventLoop::new(), vloop(), loopspec::new_event_loop()] {
        assert!(!lp.is_running() && !lp.is_closed(), "a new loop");
    }
    let s = Scene::new();
    s.soon(|s| s.push(format!("callback: {}", s.is_running())));
    assert_eq!(s.once(), ["callback: true"]);
    assert!(!s.is_running());
    let me = s.clone();
    s.run_until_complete(async move {
        me.push(format!("task: {}", me.is_running()));
        Ok(())
    })
    .unwrap();
    assert_eq!(s.take(), ["task: true"]);
    let failed = s.run_until_complete(async { Err::<(), _>(value_error("x")) });
    assert_eq!(failed, Err(value_error("x")));
    assert!(!s.is_running(), "after a failed run");
    s.close().unwrap();
    assert!(s.is_closed() && !s.is_running());
}

/// A loop running in another thread, seen from here: running, not closed;
/// running it is refused (and the coroutine never polled), closing it too,
/// and neither changes it — its thread still sees it as its running loop.
/// Rules: LIFE-1, LIFE-5, LIFE-6, LIFE-7
#[test]
fn running_loop_seen_from_another_thread() {
    let lp = EventLoop::new();
    let runner = spawn_running(&lp, "loop-a");
    assert!(lp.is_running() && !lp.is_closed());
    assert_eq!(lp.run_forever(), Err(Error::AlreadyRunning));
    let (polled, dropped) = (counter(), counter());
    let err = lp.run_until_complete(watched_coro(&polled, &dropped));
    assert_eq!(err, Err(Error::AlreadyRunning));
    let err = lp.close().unwrap_err();
    assert_py_error(&err, "RuntimeError", "Cannot close a running event loop");
    assert!(!lp.is_closed() && lp.is_running());
    let (tx, rx) = mpsc::channel();
    let l = lp.clone();
    lp.call_soon_threadsafe(move || {
        let same = get_running_loop().ok() == Some(l.clone());
        let name = thread::current().name().map(String::from);
        tx.send((same, l.is_running(), name)).unwrap();
    })
    .unwrap();
    let (same, running, name) = recv_or_hang(&rx, "the callback ran on the loop thread");
    assert!(
        same,
        "the running-loop slot of the loop's thread is unchanged"
    );
    assert!(running);
    assert_eq!(name.as_deref(), Some("loop-a"));
    stop_running(&lp, runner);
    assert!(!lp.is_running());
    assert_eq!((count(&polled), count(&dropped)), (0, 1), "never polled");
    lp.close().unwrap();
    assert!(lp.is_closed());
}

/// `run_until_complete` accepts a future or task of this loop, or a
/// coroutine, which it wraps in a new task, and returns its result or
/// exception; a future of another loop is refused before anything runs.
/// Rules: LIFE-2, LIFE-4
#[test]
fn run_until_complete_accepts_futures_tasks_and_coroutines() {
    cases(&[
        ("a future of this loop", |s| {
            let fut = s.create_future::<i32>();
            let f = fut.clone();
            s.later(2.0, move |_| f.set_result(5).unwrap());
            assert_eq!(s.run_until_complete(fut.clone()), Ok(5));
            assert!(fut.done());
            assert_eq!(s.time(), 2.0);
        }),
        ("a task of this loop", |s| {
            let task = common::sleeper(s, 1.0, "done");
            assert_eq!(s.run_until_complete(task.clone()), Ok("done"));
            assert_eq!(task.result(), Ok("done"));
        }),
        ("a coroutine, in a new task finished after the run", |s| {
            let (name, listed) = s
                .run_until_complete(async {
                    let me = current_task()?.expect("a coroutine runs as a task");
                    Ok((me.get_name(), all_tasks()?.contains(&me)))
                })
                .unwrap();
            assert_eq!((name.as_str(), listed), ("Task-1", true));
            let left = s.run_until_complete(async { Ok(all_tasks()?.len()) });
            assert_eq!(left, Ok(1), "only the second run's own task");
        }),
        (
            "a future of another loop is refused; the loop did not run",
            |s| {
                let other = vloop();
                s.soon_log("queued");
                let err = s
                    .run_until_complete(other.create_future::<i32>())
                    .unwrap_err();
                assert_eq!(err, Error::DifferentLoop);
                let msg = "The future belongs to a different loop than the one specified as the loop argument";
                assert_py_error(&err, "ValueError", msg);
                let task = other.create_task(async { Ok(1) }).unwrap();
                let err = s.run_until_complete(task.clone()).unwrap_err();
                assert_eq!(err, Error::DifferentLoop);
                assert!(s.log.get().is_empty() && !task.done());
                assert_eq!(other.run_until_complete(task), Ok(1));
            },
        ),
        ("the exception of a future", |s| {
            let fut = s.create_future::<i32>();
            let f = fut.clone();
            s.soon(move |_| f.set_exception(key_error("k")).unwrap());
            let err = s.run_until_complete(fut).unwrap_err();
            assert_eq!(err, key_error("k"));
            assert_py_error(&err, "KeyError", "k");
        }),
        ("the exception of a coroutine", |s| {
            let err = s.run_until_complete(async {
                loopspec::sleep(1.0).await?;
                Err::<u8, _>(value_error("bad value"))
            });
            assert_eq!(err, Err(value_error("bad value")));
        }),
    ]);
}

/// `run_until_complete` checks that the loop is open, then that it is not
/// running, before it looks at its argument.
/// Rules: LIFE-2, LIFE-5, LIFE-8
#[test]
fn run_until_complete_checks_the_loop_before_the_argument() {
    let s = Scene::new();
    let other = vloop();
    let out = Rc::new(RefCell::new(None));
    let (o, ofut) = (out.clone(), other.create_future::<i32>());
    s.soon(move |s| *o.borrow_mut() = Some(s.run_until_complete(ofut)));
    s.once();
    assert_eq!(out.borrow_mut().take(), Some(Err(Error::AlreadyRunning)));
    s.close().unwrap();
    assert_closed(
        &s.run_until_complete(other.create_future::<i32>())
            .unwrap_err(),
    );
}

/// An already-done future or task still costs one iteration, which does not
/// wait for timers (CPython 3.11: `3 ['a']`, then a later run shows `['a',
/// 'b']`).
/// Rules: LIFE-3
#[test]
fn run_until_complete_of_a_done_future_runs_one_iteration() {
    cases(&[
        ("a done future", |s| {
            let fut = s.create_future::<i32>();
            fut.set_result(3).unwrap();
            s.soon(|s| {
                s.push("a");
                s.soon_log("b");
            });
            assert_eq!(s.run_until_complete(fut), Ok(3));
            assert_eq!(s.take(), ["a"]);
            assert_eq!(s.once(), ["b"]);
        }),
        (
            "a future done with an exception: timers are not waited for",
            |s| {
                let fut = s.create_future::<i32>();
                fut.set_exception(value_error("v")).unwrap();
                s.later_log(5.0, "timer");
                s.soon_log("soon");
                assert_eq!(s.run_until_complete(fut), Err(value_error("v")));
                assert_eq!((s.take(), s.time()), (vec!["soon".into()], 0.0));
            },
        ),
        ("a done task", |s| {
            let task = s.task(|_| async { Ok(9) });
            assert_eq!(s.run_until_complete(task.clone()), Ok(9));
            s.soon(|s| {
                s.push("a");
                s.soon_log("b");
            });
            assert_eq!(s.run_until_complete(task), Ok(9));
            assert_eq!(s.take(), ["a"]);
        }),
    ]);
}

/// The exception — or panic — `run_until_complete` returns counts as
/// retrieved: nothing is reported when its future is dropped; the same
/// exception in a task nobody awaits is.
/// Rules: LIFE-4
#[test]
fn run_until_complete_exceptions_count_as_retrieved() {
    reports_nothing(|lp| {
        let err = lp.run_until_complete(async { Err::<(), _>(value_error("boom")) });
        assert_eq!(err, Err(value_error("boom")));
    });
    reports_nothing(|lp| {
        let t = lp
            .create_task(async {
                loopspec::yield_now().await?;
                Err::<(), _>(Error::raise("OSError", "disk"))
            })
            .unwrap();
        let err = lp.run_until_complete(t.clone());
        assert_eq!(err, Err(Error::raise("OSError", "disk")));
    });
    reports_nothing(|lp| {
        let fut = lp.create_future::<()>();
        let f = fut.clone();
        lp.call_soon(move || f.set_exception(value_error("f")).unwrap())
            .unwrap();
        assert_eq!(lp.run_until_complete(fut), Err(value_error("f")));
    });
    reports_nothing(|lp| {
        let err = lp.run_until_complete(async {
            if true {
                panic!("kaboom");
            }
            Ok(())
        });
        assert_eq!(err, Err(Error::Panic("kaboom".into())));
    });
    // Control: the same exception in a task nobody awaits is reported.
    let lp = vloop();
    let seen = capture_exceptions(&lp);
    let t = lp
        .create_task(async { Err::<(), _>(value_error("boom")) })
        .unwrap();
    run_once(&lp);
    assert!(t.done());
    drop(t);
    lp.close().unwrap();
    assert_eq!(seen.messages(), ["Task exception was never retrieved"]);
}

/// A loop cannot run inside its own run (`This event loop is already
/// running`), nor a second loop inside a thread's running one (`Cannot run
/// the event loop while another loop is running`); the first check wins.
/// Rules: LIFE-5
#[test]
fn nested_and_concurrent_runs_are_refused() {
    let another = |err: &Error| {
        assert_eq!(*err, Error::AnotherLoopRunning);
        let msg = "Cannot run the event loop while another loop is running";
        assert_py_error(err, "RuntimeError", msg);
    };
    let s = Scene::new();
    let other = vloop();
    let errs = Rc::new(RefCell::new(Vec::new()));
    let (e, o) = (errs.clone(), other.clone());
    s.soon(move |s| {
        let mut e = e.borrow_mut();
        e.push(s.run_forever().unwrap_err());
        e.push(s.run_until_complete(async { Ok(()) }).unwrap_err());
        e.push(o.run_forever().unwrap_err());
        e.push(o.run_until_complete(async { Ok(()) }).unwrap_err());
    });
    s.once();
    let errs = errs.borrow();
    assert_eq!(errs[..2], [Error::AlreadyRunning, Error::AlreadyRunning]);
    assert_py_error(
        &errs[0],
        "RuntimeError",
        "This event loop is already running",
    );
    errs[2..].iter().for_each(another);
    let (me, o) = (s.lp.clone(), other.clone());
    let from_task = s
        .run_until_complete(async move {
            let mine = me.run_forever().unwrap_err();
            let coro = me.run_until_complete(async { Ok(1) }).unwrap_err();
            Ok((
                mine,
                coro,
                o.run_until_complete(async { Ok(()) }).unwrap_err(),
            ))
        })
        .unwrap();
    assert_eq!(
        (from_task.0, from_task.1),
        (Error::AlreadyRunning, Error::AlreadyRunning)
    );
    another(&from_task.2);
    assert!(!other.is_running());
}

/// Loop L1 runs in thread t1; thread t2 runs L2, and L2's callback tries to
/// run L1: both conditions hold, the first message wins.
/// Rules: LIFE-5
#[test]
fn already_running_is_checked_before_another_loop_running() {
    let l1 = vloop();
    let out = Arc::new(std::sync::Mutex::new(None));
    let (o, a) = (out.clone(), l1.clone());
    in_thread("t1", move || {
        let a2 = a.clone();
        a.call_soon(move || {
            in_thread("t2", move || {
                let l2 = vloop();
                l2.call_soon(move || *o.lock().unwrap() = Some(a2.run_forever()))
                    .unwrap();
                run_once(&l2);
            });
        })
        .unwrap();
        run_once(&a);
    });
    let err = out.lock().unwrap().take().expect("the nested attempt ran");
    assert_eq!(err, Err(Error::AlreadyRunning));
}

/// A refused run changes nothing: the loop keeps running, its thread's slot
/// keeps it, no task wraps the refused coroutine, which is never polled, and
/// a refused other loop is not claimed. (The 3.13.0 regression, gh-130145,
/// cleared the running state here, and a second nested run_until_complete
/// then ran re-entrantly.)
/// Rules: LIFE-6
#[test]
fn a_refused_run_changes_nothing() {
    let s = Scene::new();
    s.soon(|s| {
        assert_eq!(s.run_forever(), Err(Error::AlreadyRunning));
        let slot = get_running_loop().ok() == Some(s.lp.clone());
        s.push(format!(
            "after refusal: running={} slot={slot}",
            s.is_running()
        ));
        let second = s.run_until_complete(async { Ok(42) });
        s.push(format!(
            "second nested: {:?}",
            second.map_err(|e| e.to_string())
        ));
        s.soon(|s| {
            s.push(format!("next iteration: running={}", s.is_running()));
            s.stop();
        });
    });
    s.soon_log("rest of the batch");
    assert_eq!(
        s.forever(),
        [
            "after refusal: running=true slot=true",
            "second nested: Err(\"This event loop is already running\")",
            "rest of the batch",
            "next iteration: running=true",
        ]
    );
    assert!(!s.is_running());
    let other = vloop();
    let (me, o) = (s.lp.clone(), other.clone());
    let polled = Rc::new(Cell::new(0));
    let p = polled.clone();
    let seen = s
        .run_until_complete(async move {
            let before = all_tasks()?.len();
            let coro = |p: Rc<Cell<i32>>| async move {
                p.set(p.get() + 1);
                Ok(())
            };
            let mine = me.run_until_complete(coro(p.clone()));
            let theirs = o.run_until_complete(coro(p));
            loopspec::yield_now().await?;
            let here = get_running_loop()? == me && me.is_running() && !o.is_running();
            Ok((mine, theirs, here, before, all_tasks()?.len()))
        })
        .unwrap();
    let refused = (Err(Error::AlreadyRunning), Err(Error::AnotherLoopRunning));
    assert_eq!((seen.0, seen.1), refused);
    assert_eq!((seen.2, seen.3, seen.4, polled.get()), (true, 1, 1, 0));
    // The refused loop runs normally later, from another thread too.
    let v = in_thread("later", move || other.run_until_complete(async { Ok(5) }));
    assert_eq!(v, Ok(5));
}

/// `close()` is refused on a running loop — from a callback or a task, and
/// the loop goes on — and is idempotent.
/// Rules: LIFE-7
#[test]
fn close_is_refused_while_running_and_idempotent() {
    let s = Scene::new();
    s.soon(|s| {
        assert_eq!(s.close(), Err(Error::CloseRunning));
        s.push(format!("closed={}", s.is_closed()));
    });
    s.later(1.0, |s| {
        s.push(format!("timer running={}", s.is_running()));
        s.stop();
    });
    assert_eq!(s.forever(), ["closed=false", "timer running=true"]);
    let me = s.lp.clone();
    let err = s.run_until_complete(async move { Ok(me.close()) });
    assert_eq!(err, Ok(Err(Error::CloseRunning)));
    assert!(!s.is_closed());
    for _ in 0..2 {
        s.close().unwrap();
        assert!(s.is_closed() && !s.is_running());
    }
}

/// `close()` drops, without running them, the queued callbacks and timers,
/// those a stopped run left, the cross-thread submissions not taken yet, and
/// the futures of unfinished tasks (each reported as destroyed pending); a
/// second close has nothing left to drop.
/// Rules: LIFE-7
#[test]
fn close_drops_what_is_queued_without_running_it() {
    cases(&[
        ("callbacks and timers", |s| {
            let (ran, dropped) = (counter(), counter());
            for _ in 0..3 {
                s.call_soon(watched(&ran, &dropped)).unwrap();
            }
            for delay in [0.0, 1.0, 100.0] {
                s.call_later(delay, watched(&ran, &dropped)).unwrap();
            }
            s.call_at(50.0, watched(&ran, &dropped)).unwrap();
            assert_eq!(count(&dropped), 0);
            s.close().unwrap();
            assert_eq!((count(&dropped), count(&ran)), (7, 0));
            s.close().unwrap();
            assert_eq!(count(&dropped), 7);
        }),
        ("what a stopped run left", |s| {
            let (ran, dropped) = (counter(), counter());
            let second = watched(&ran, &dropped);
            s.soon(move |s| {
                s.push("first");
                s.call_soon(second).unwrap();
            });
            assert_eq!(s.once(), ["first"]);
            s.close().unwrap();
            assert_eq!((count(&dropped), count(&ran)), (1, 0));
        }),
        ("submissions from another thread not taken yet", |s| {
            let (ran, dropped) = (counter(), counter());
            let (lp, r, d) = (s.lp.clone(), ran.clone(), dropped.clone());
            thread::spawn(move || {
                for _ in 0..4 {
                    lp.call_soon_threadsafe(watched(&r, &d)).unwrap();
                }
            })
            .join()
            .unwrap();
            assert_eq!(count(&dropped), 0);
            s.close().unwrap();
            assert_eq!((count(&dropped), count(&ran)), (4, 0));
        }),
        // One task never started, one suspended on a future.
        ("the futures of unfinished tasks", |s| {
            let seen = capture_exceptions(s);
            let (polled, dropped) = (counter(), counter());
            let unstarted = s.create_task(watched_coro(&polled, &dropped)).unwrap();
            let (f, g) = (s.create_future::<()>(), DropCount(dropped.clone()));
            let suspended = s.task(|_| async move {
                let _g = g;
                f.await
            });
            s.once(); // both step once; `unstarted` finishes
            assert!(unstarted.done());
            assert_eq!(count(&dropped), 1);
            let fresh = s.create_task(watched_coro(&polled, &dropped)).unwrap();
            s.close().unwrap();
            assert_eq!(count(&dropped), 3, "the futures of unfinished tasks");
            assert!(!suspended.done() && !fresh.done());
            let pending = "Task was destroyed but it is pending!";
            assert_eq!(seen.messages(), [pending, pending]);
        }),
    ]);
}

/// `close()` runs the destructors of what it drops after the loop is marked
/// closed: a destructor that looks at the loop sees it closed, and
/// scheduling from it is refused rather than resurrecting work.
/// Rules: LIFE-7
#[test]
fn close_runs_destructors_after_the_loop_is_marked_closed() {
    type Seen = Rc<RefCell<Option<(bool, Option<Error>)>>>;
    struct OnDrop(EventLoop, Seen);
    impl Drop for OnDrop {
        fn drop(&mut self) {
            let closed = self.0.is_closed();
            let err = self.0.call_soon(|| ()).err();
            *self.1.borrow_mut() = Some((closed, err));
        }
    }
    let lp = vloop();
    let out = Rc::new(RefCell::new(None));
    let guard = OnDrop(lp.clone(), out.clone());
    lp.call_soon_local(move || drop(guard)).unwrap();
    lp.close().unwrap();
    let seen = out.borrow_mut().take().expect("the callback was dropped");
    assert_eq!(seen, (true, Some(Error::Closed)));
}

/// A closed loop refuses new work — callbacks, timers, submissions from any
/// thread, runs, tasks — with `Event loop is closed`, dropping what it was
/// given unrun and unpolled.
/// Rules: LIFE-8
#[test]
fn a_closed_loop_refuses_work_and_drops_it() {
    let s = Scene::new();
    s.close().unwrap();
    let (ran, dropped) = (counter(), counter());
    assert_closed(&s.call_soon(watched(&ran, &dropped)).unwrap_err());
    assert_closed(&s.call_later(1.0, watched(&ran, &dropped)).unwrap_err());
    assert_closed(&s.call_at(1.0, watched(&ran, &dropped)).unwrap_err());
    let err = s.call_soon_threadsafe(watched(&ran, &dropped)).unwrap_err();
    assert_closed(&err);
    let lp = s.lp.clone();
    let err = thread::spawn(move || lp.call_soon_threadsafe(|| ()).unwrap_err());
    assert_closed(&err.join().unwrap());
    assert_eq!((count(&dropped), count(&ran)), (4, 0));
    assert_closed(&s.run_forever().unwrap_err());
    let err = s
        .run_until_complete(watched_coro(&ran, &dropped))
        .unwrap_err();
    assert_closed(&err);
    let err = s.run_until_complete(s.create_future::<u8>()).unwrap_err();
    assert_closed(&err);
    assert_closed(&s.create_task(watched_coro(&ran, &dropped)).unwrap_err());
    assert_closed(&s.ensure_future(watched_coro(&ran, &dropped)).unwrap_err());
    // The free ensure_future finds the closed loop as the current loop.
    let (lp, r, d) = (s.lp.clone(), ran.clone(), dropped.clone());
    let err = in_thread("closed-current", move || {
        set_event_loop(Some(&lp));
        loopspec::ensure_future(watched_coro(&r, &d)).unwrap_err()
    });
    assert_closed(&err);
    assert_eq!((count(&dropped), count(&ran)), (8, 0));
    assert!(!s.is_running());
}

/// A closed loop answers questions, from any thread: `close()` and `stop()`
/// do nothing, the flags and the time are as they were, and a future of it
/// can still be made.
/// Rules: LIFE-8
#[test]
fn a_closed_loop_answers_questions() {
    let s = Scene::new();
    s.later(3.0, |s| s.stop());
    s.forever();
    s.close().unwrap();
    s.close().unwrap();
    s.stop();
    assert!(!s.is_running() && s.is_closed());
    assert_eq!(s.time(), 3.0);
    let fut = s.create_future::<i32>();
    assert!(!fut.done());
    assert_eq!(fut.get_loop(), s.lp);
    let lp = s.lp.clone();
    let seen = thread::spawn(move || {
        lp.stop();
        lp.close().unwrap();
        (lp.is_closed(), lp.is_running(), lp.time())
    });
    assert_eq!(seen.join().unwrap(), (true, false, 3.0));
}

/// Completing a future of a closed loop that has done callbacks fails with
/// `Event loop is closed` but finishes the future (the callbacks never
/// run); `cancel()` returns true and cancels; without callbacks each
/// succeeds.
/// Rules: LIFE-9
#[test]
fn completing_a_future_of_a_closed_loop() {
    let s = Scene::new();
    let with_cb = |ran: Option<&Rc<Cell<bool>>>| {
        let fut = s.create_future::<i32>();
        let r = ran.cloned();
        let cb: LocalDoneCallback<i32> = Rc::new(move |_| r.iter().for_each(|r| r.set(true)));
        fut.add_done_callback_local(cb).unwrap();
        fut
    };
    let ran = Rc::new(Cell::new(false));
    let (a, b, c) = (with_cb(Some(&ran)), with_cb(None), with_cb(None));
    s.close().unwrap();
    assert_closed(&a.set_result(1).unwrap_err());
    assert!(a.done() && !a.cancelled() && !ran.get());
    assert_eq!(a.result(), Ok(1));
    // Done: a second completion is the usual InvalidStateError.
    assert_eq!(a.set_result(2), Err(Error::InvalidState));
    assert_closed(&b.set_exception(value_error("late")).unwrap_err());
    assert_eq!(b.exception(), Ok(Some(value_error("late"))));
    assert!(c.cancel() && c.cancelled() && !c.cancel());
    assert_eq!(c.result(), Err(Error::Cancelled(None)));
    // Without callbacks.
    let a = s.create_future::<i32>();
    a.set_result(4).unwrap();
    assert_eq!(a.result(), Ok(4));
    let b = s.create_future::<i32>();
    b.set_exception(value_error("v")).unwrap();
    assert_eq!(b.exception(), Ok(Some(value_error("v"))));
    let c = s.create_future::<i32>();
    assert!(c.cancel_with(Some("bye".into())));
    assert_eq!(c.result(), Err(Error::Cancelled(Some("bye".into()))));
}
