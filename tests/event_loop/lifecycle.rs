//! LIFE rules of SPEC.md: running and closing a loop (`run_forever`,
//! `run_until_complete`, `close`, `is_running`, `is_closed`) and what a closed
//! loop refuses.
//!
//! The cross-thread tests run a real-clock loop in a second thread whose run
//! is ended only by the test thread's `stop()`; a channel tells the test
//! thread that the loop is running. No sleeps, no timing assertions.

use common::{
    DropCount, Log, capture_exceptions, count, counter, in_thread, recv_or_hang, run_once, vloop,
};
use loopspec::{
    DoneCallback, Error, EventLoop, Future, all_tasks, current_task, get_running_loop,
    set_event_loop,
};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;

/// A future that never completes on its own (a loop future nobody sets).
fn never(lp: &EventLoop) -> Future<()> {
    lp.create_future::<()>()
}

/// Starts `lp.run_forever()` (real clock) in a thread named `loop-a` and
/// returns once the loop is known to be running (its first callback ran).
/// The run ends only when someone calls `lp.stop()`.
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

fn assert_already_running(err: &Error) {
    assert_eq!(*err, Error::AlreadyRunning);
    assert_eq!(err.to_string(), "This event loop is already running");
    assert_eq!(err.python_type(), "RuntimeError");
}

fn assert_another_loop_running(err: &Error) {
    assert_eq!(*err, Error::AnotherLoopRunning);
    assert_eq!(
        err.to_string(),
        "Cannot run the event loop while another loop is running"
    );
    assert_eq!(err.python_type(), "RuntimeError");
}

fn assert_closed(err: &Error) {
    assert_eq!(*err, Error::Closed);
    assert_eq!(err.to_string(), "Event loop is closed");
    assert_eq!(err.python_type(), "RuntimeError");
}

fn assert_close_running(err: &Error) {
    assert_eq!(*err, Error::CloseRunning);
    assert_eq!(err.to_string(), "Cannot close a running event loop");
    assert_eq!(err.python_type(), "RuntimeError");
}

// ---------------------------------------------------------------------------
// LIFE-1
// ---------------------------------------------------------------------------

/// Rules: LIFE-1
#[test]
fn new_loop_is_neither_running_nor_closed() {
    for lp in [EventLoop::new(), vloop(), loopspec::new_event_loop()] {
        assert!(!lp.is_running());
        assert!(!lp.is_closed());
    }
}

/// Rules: LIFE-1
#[test]
fn is_running_is_true_exactly_during_a_run() {
    let lp = vloop();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let (s, l) = (seen.clone(), lp.clone());
    lp.call_soon(move || s.borrow_mut().push(("callback", l.is_running())))
        .unwrap();
    run_once(&lp);
    assert!(!lp.is_running());
    let (s, l) = (seen.clone(), lp.clone());
    lp.run_until_complete(async move {
        s.borrow_mut().push(("task", l.is_running()));
        Ok(())
    })
    .unwrap();
    assert!(!lp.is_running());
    assert_eq!(*seen.borrow(), [("callback", true), ("task", true)]);
}

/// Rules: LIFE-1
#[test]
fn is_running_is_false_after_a_failed_run_and_after_close() {
    let lp = vloop();
    let err = lp
        .run_until_complete(async { Err::<(), _>(Error::raise("ValueError", "x")) })
        .unwrap_err();
    assert_eq!(err.python_type(), "ValueError");
    assert!(!lp.is_running());
    lp.close().unwrap();
    assert!(lp.is_closed());
    assert!(!lp.is_running());
}

/// Rules: LIFE-1, LIFE-5, LIFE-6, LIFE-7
#[test]
fn running_loop_seen_from_another_thread() {
    let lp = EventLoop::new();
    let runner = spawn_running(&lp);

    // LIFE-1: running, not closed, seen from here too.
    assert!(lp.is_running());
    assert!(!lp.is_closed());
    // LIFE-5: running it from here is refused with the first message.
    assert_already_running(&lp.run_forever().unwrap_err());
    let polled = Arc::new(AtomicUsize::new(0));
    let p = polled.clone();
    let err = lp
        .run_until_complete(async move {
            p.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
        .unwrap_err();
    assert_already_running(&err);
    // LIFE-7: closing it from here is refused and does not stop it.
    assert_close_running(&lp.close().unwrap_err());
    assert!(!lp.is_closed());
    // LIFE-6: the loop is untouched — still running, and its thread still
    // sees it as the running loop.
    assert!(lp.is_running());
    let (tx, rx) = mpsc::channel();
    let l = lp.clone();
    lp.call_soon_threadsafe(move || {
        let same = get_running_loop().ok() == Some(l.clone());
        tx.send((
            same,
            l.is_running(),
            thread::current().name().map(String::from),
        ))
        .unwrap();
    })
    .unwrap();
    let (same, running, name) = recv_or_hang(&rx, "the callback ran on the loop thread");
    assert!(
        same,
        "the running-loop slot of the loop's thread is unchanged"
    );
    assert!(running);
    assert_eq!(name.as_deref(), Some("loop-a"));

    lp.stop();
    runner.join().unwrap().unwrap();
    assert!(!lp.is_running());
    assert_eq!(count(&polled), 0, "the refused coroutine was never polled");
    lp.close().unwrap();
    assert!(lp.is_closed());
}

// ---------------------------------------------------------------------------
// LIFE-2
// ---------------------------------------------------------------------------

/// Rules: LIFE-2
#[test]
fn run_until_complete_accepts_a_future_of_this_loop() {
    let lp = vloop();
    let fut = lp.create_future::<i32>();
    let f = fut.clone();
    lp.call_later(2.0, move || f.set_result(5).unwrap())
        .unwrap();
    assert_eq!(lp.run_until_complete(fut.clone()).unwrap(), 5);
    assert!(fut.done());
    assert_eq!(lp.time(), 2.0);
}

/// Rules: LIFE-2
#[test]
fn run_until_complete_accepts_a_task_of_this_loop() {
    let lp = vloop();
    let task = lp
        .create_task(async {
            loopspec::sleep(1.0).await?;
            Ok("done")
        })
        .unwrap();
    assert_eq!(lp.run_until_complete(task.clone()).unwrap(), "done");
    assert!(task.done());
    assert_eq!(task.result().unwrap(), "done");
}

/// Rules: LIFE-2
#[test]
fn run_until_complete_wraps_a_coroutine_in_a_new_task() {
    let lp = vloop();
    let (name, is_listed) = lp
        .run_until_complete(async {
            let me = current_task()?.expect("a coroutine runs as a task");
            let listed = all_tasks()?.contains(&me);
            Ok((me.get_name(), listed))
        })
        .unwrap();
    assert_eq!(name, "Task-1");
    assert!(is_listed);
    // The wrapping task is finished after the run.
    let left = lp
        .run_until_complete(async { Ok(all_tasks()?.len()) })
        .unwrap();
    assert_eq!(left, 1, "only the second run's own task");
}

/// Rules: LIFE-2
#[test]
fn run_until_complete_refuses_a_future_of_another_loop() {
    let lp = vloop();
    let other = vloop();
    let log = Log::new();
    lp.call_soon(log.cb("queued")).unwrap();

    let fut = other.create_future::<i32>();
    let err = lp.run_until_complete(fut).unwrap_err();
    assert_eq!(err, Error::DifferentLoop);
    assert_eq!(
        err.to_string(),
        "The future belongs to a different loop than the one specified as the loop argument"
    );
    assert_eq!(err.python_type(), "ValueError");

    let task = other.create_task(async { Ok(1) }).unwrap();
    let err = lp.run_until_complete(task.clone()).unwrap_err();
    assert_eq!(err, Error::DifferentLoop);
    // The loop did not run.
    assert!(log.get().is_empty());
    assert!(!task.done());
    assert_eq!(other.run_until_complete(task).unwrap(), 1);
}

/// Rules: LIFE-2
#[test]
fn run_until_complete_returns_the_exception_of_a_future() {
    let lp = vloop();
    let fut = lp.create_future::<i32>();
    let f = fut.clone();
    lp.call_soon(move || {
        f.set_exception(Error::raise("KeyError", "k")).unwrap();
    })
    .unwrap();
    let err = lp.run_until_complete(fut).unwrap_err();
    assert_eq!(err, Error::raise("KeyError", "k"));
    assert_eq!(err.python_type(), "KeyError");
    assert_eq!(err.to_string(), "k");
}

/// Rules: LIFE-2, LIFE-4
#[test]
fn run_until_complete_returns_the_exception_of_a_coroutine() {
    let lp = vloop();
    let err = lp
        .run_until_complete(async {
            loopspec::sleep(1.0).await?;
            Err::<u8, _>(Error::raise("ValueError", "bad value"))
        })
        .unwrap_err();
    assert_eq!(err, Error::raise("ValueError", "bad value"));
    assert_eq!(err.python_type(), "ValueError");
}

/// Rules: LIFE-2, LIFE-8
#[test]
fn run_until_complete_checks_closed_before_the_argument() {
    let lp = vloop();
    let other = vloop();
    lp.close().unwrap();
    let err = lp
        .run_until_complete(other.create_future::<i32>())
        .unwrap_err();
    assert_closed(&err);
}

/// Rules: LIFE-2, LIFE-5
#[test]
fn run_until_complete_checks_running_before_the_argument() {
    let lp = vloop();
    let other = vloop();
    let out = Rc::new(RefCell::new(None));
    let (o, l, ofut) = (out.clone(), lp.clone(), other.create_future::<i32>());
    lp.call_soon(move || *o.borrow_mut() = Some(l.run_until_complete(ofut).unwrap_err()))
        .unwrap();
    run_once(&lp);
    assert_already_running(&out.borrow_mut().take().unwrap());
}

// ---------------------------------------------------------------------------
// LIFE-3
// ---------------------------------------------------------------------------

/// Rules: LIFE-3
#[test]
fn run_until_complete_of_a_done_future_runs_one_iteration() {
    // CPython 3.11: `3 ['a']`, then a later run shows `['a', 'b']`.
    let lp = vloop();
    let fut = lp.create_future::<i32>();
    fut.set_result(3).unwrap();
    let log = Log::new();
    let (l, lg) = (lp.clone(), log.clone());
    lp.call_soon(move || {
        lg.push("a");
        l.call_soon(lg.cb("b")).unwrap();
    })
    .unwrap();
    assert_eq!(lp.run_until_complete(fut).unwrap(), 3);
    assert_eq!(log.get(), ["a"]);
    run_once(&lp);
    assert_eq!(log.get(), ["a", "b"]);
}

/// Rules: LIFE-3
#[test]
fn run_until_complete_of_a_done_future_does_not_wait_for_timers() {
    let lp = vloop();
    let fut = lp.create_future::<i32>();
    fut.set_exception(Error::raise("ValueError", "v")).unwrap();
    let log = Log::new();
    lp.call_later(5.0, log.cb("timer")).unwrap();
    lp.call_soon(log.cb("soon")).unwrap();
    let err = lp.run_until_complete(fut).unwrap_err();
    assert_eq!(err, Error::raise("ValueError", "v"));
    assert_eq!(log.get(), ["soon"]);
    assert_eq!(lp.time(), 0.0);
}

/// Rules: LIFE-3
#[test]
fn run_until_complete_of_a_done_task_runs_one_iteration() {
    let lp = vloop();
    let task = lp.create_task(async { Ok(9) }).unwrap();
    assert_eq!(lp.run_until_complete(task.clone()).unwrap(), 9);
    let log = Log::new();
    let (l, lg) = (lp.clone(), log.clone());
    lp.call_soon(move || {
        lg.push("a");
        l.call_soon(lg.cb("b")).unwrap();
    })
    .unwrap();
    assert_eq!(lp.run_until_complete(task).unwrap(), 9);
    assert_eq!(log.get(), ["a"]);
}

// ---------------------------------------------------------------------------
// LIFE-4
// ---------------------------------------------------------------------------

/// Rules: LIFE-4
#[test]
fn run_until_complete_exception_of_a_coroutine_counts_as_retrieved() {
    let lp = vloop();
    let seen = capture_exceptions(&lp);
    let err = lp
        .run_until_complete(async { Err::<(), _>(Error::raise("ValueError", "boom")) })
        .unwrap_err();
    assert_eq!(err, Error::raise("ValueError", "boom"));
    lp.close().unwrap();
    assert!(
        seen.lock().unwrap().is_empty(),
        "{:?}",
        seen.lock().unwrap()
    );

    // Control: the same exception in a task nobody awaits is reported.
    let lp = vloop();
    let seen = capture_exceptions(&lp);
    let t = lp
        .create_task(async { Err::<(), _>(Error::raise("ValueError", "boom")) })
        .unwrap();
    run_once(&lp);
    assert!(t.done());
    drop(t);
    lp.close().unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].message, "Task exception was never retrieved");
}

/// Rules: LIFE-4
#[test]
fn run_until_complete_exception_of_a_task_counts_as_retrieved() {
    let lp = vloop();
    let seen = capture_exceptions(&lp);
    let t = lp
        .create_task(async {
            loopspec::yield_now().await?;
            Err::<(), _>(Error::raise("OSError", "disk"))
        })
        .unwrap();
    let err = lp.run_until_complete(t.clone()).unwrap_err();
    assert_eq!(err, Error::raise("OSError", "disk"));
    drop(t);
    lp.close().unwrap();
    assert!(
        seen.lock().unwrap().is_empty(),
        "{:?}",
        seen.lock().unwrap()
    );
}

/// Rules: LIFE-4
#[test]
fn run_until_complete_exception_of_a_future_counts_as_retrieved() {
    let lp = vloop();
    let seen = capture_exceptions(&lp);
    let fut = lp.create_future::<()>();
    let f = fut.clone();
    lp.call_soon(move || f.set_exception(Error::raise("ValueError", "f")).unwrap())
        .unwrap();
    let err = lp.run_until_complete(fut.clone()).unwrap_err();
    assert_eq!(err, Error::raise("ValueError", "f"));
    drop(fut);
    lp.close().unwrap();
    assert!(
        seen.lock().unwrap().is_empty(),
        "{:?}",
        seen.lock().unwrap()
    );
}

/// Rules: LIFE-4
#[test]
fn run_until_complete_panic_of_a_coroutine_propagates() {
    let lp = vloop();
    let seen = capture_exceptions(&lp);
    let err = lp
        .run_until_complete(async {
            if true {
                panic!("kaboom");
            }
            Ok(())
        })
        .unwrap_err();
    assert_eq!(err, Error::Panic("kaboom".into()));
    lp.close().unwrap();
    assert!(
        seen.lock().unwrap().is_empty(),
        "{:?}",
        seen.lock().unwrap()
    );
}

// ---------------------------------------------------------------------------
// LIFE-5
// ---------------------------------------------------------------------------

/// Rules: LIFE-5
#[test]
fn run_forever_inside_its_own_callback_is_refused() {
    let lp = vloop();
    let errs = Rc::new(RefCell::new(Vec::new()));
    let (e, l) = (errs.clone(), lp.clone());
    lp.call_soon(move || {
        e.borrow_mut().push(l.run_forever().unwrap_err());
        e.borrow_mut()
            .push(l.run_until_complete(async { Ok(()) }).unwrap_err());
    })
    .unwrap();
    run_once(&lp);
    let errs = errs.borrow();
    assert_eq!(errs.len(), 2);
    for err in errs.iter() {
        assert_already_running(err);
    }
}

/// Rules: LIFE-5
#[test]
fn run_until_complete_inside_its_own_task_is_refused() {
    let lp = vloop();
    let l = lp.clone();
    let (e1, e2) = lp
        .run_until_complete(async move {
            let e1 = l.run_forever().unwrap_err();
            let e2 = l.run_until_complete(async { Ok(1) }).unwrap_err();
            Ok((e1, e2))
        })
        .unwrap();
    assert_already_running(&e1);
    assert_already_running(&e2);
}

/// Rules: LIFE-5
#[test]
fn running_another_loop_in_the_same_thread_is_refused() {
    let lp = vloop();
    let other = vloop();
    let errs = Rc::new(RefCell::new(Vec::new()));
    let (e, o) = (errs.clone(), other.clone());
    lp.call_soon(move || {
        e.borrow_mut().push(o.run_forever().unwrap_err());
        e.borrow_mut()
            .push(o.run_until_complete(async { Ok(()) }).unwrap_err());
    })
    .unwrap();
    let o = other.clone();
    let from_task = lp
        .run_until_complete(async move { Ok(o.run_until_complete(async { Ok(()) }).unwrap_err()) })
        .unwrap();
    let errs = errs.borrow();
    assert_eq!(errs.len(), 2);
    for err in errs.iter() {
        assert_another_loop_running(err);
    }
    assert_another_loop_running(&from_task);
    assert!(!other.is_running());
}

/// Rules: LIFE-5
#[test]
fn already_running_is_checked_before_another_loop_running() {
    // Loop L1 runs in thread t1; thread t2 runs L2, and L2's callback tries
    // to run L1: both conditions hold, the first message wins.
    let l1 = vloop();
    let out = Arc::new(std::sync::Mutex::new(None));
    let (o, a) = (out.clone(), l1.clone());
    in_thread("t1", move || {
        let a2 = a.clone();
        a.call_soon(move || {
            let a3 = a2.clone();
            let o2 = o.clone();
            in_thread("t2", move || {
                let l2 = vloop();
                let (a4, o3) = (a3.clone(), o2.clone());
                l2.call_soon(move || {
                    *o3.lock().unwrap() = Some(a4.run_forever().unwrap_err());
                })
                .unwrap();
                run_once(&l2);
            });
        })
        .unwrap();
        run_once(&a);
    });
    let err = out.lock().unwrap().take().expect("the nested attempt ran");
    assert_already_running(&err);
}

// ---------------------------------------------------------------------------
// LIFE-6
// ---------------------------------------------------------------------------

/// Rules: LIFE-6
#[test]
fn refused_nested_run_leaves_the_loop_running() {
    // The 3.13.0 regression (gh-130145) cleared the running state here, and a
    // second nested run_until_complete then ran re-entrantly.
    let lp = vloop();
    let log = Log::new();
    let (l, lg) = (lp.clone(), log.clone());
    lp.call_soon(move || {
        assert_already_running(&l.run_forever().unwrap_err());
        lg.push(format!(
            "after refusal: running={} slot={}",
            l.is_running(),
            get_running_loop().ok() == Some(l.clone())
        ));
        let second = l
            .run_until_complete(async { Ok(42) })
            .map_err(|e| e.to_string());
        lg.push(format!("second nested: {second:?}"));
        let l2 = l.clone();
        let lg2 = lg.clone();
        l.call_soon(move || {
            lg2.push(format!("next iteration: running={}", l2.is_running()));
            l2.stop();
        })
        .unwrap();
    })
    .unwrap();
    lp.call_soon(log.cb("rest of the batch")).unwrap();
    lp.run_forever().unwrap();
    assert_eq!(
        log.get(),
        [
            "after refusal: running=true slot=true",
            "second nested: Err(\"This event loop is already running\")",
            "rest of the batch",
            "next iteration: running=true",
        ]
    );
    assert!(!lp.is_running());
}

/// Rules: LIFE-6
#[test]
fn refused_run_of_another_loop_changes_nothing() {
    let lp = vloop();
    let other = vloop();
    let ok = lp
        .run_until_complete({
            let (l, o) = (lp.clone(), other.clone());
            async move {
                let polled = Rc::new(Cell::new(false));
                let p = polled.clone();
                let err = o
                    .run_until_complete(async move {
                        p.set(true);
                        Ok(())
                    })
                    .unwrap_err();
                assert_another_loop_running(&err);
                let tasks_here = all_tasks()?.len();
                Ok((
                    get_running_loop()? == l,
                    l.is_running(),
                    !o.is_running(),
                    !polled.get(),
                    tasks_here,
                ))
            }
        })
        .unwrap();
    assert_eq!(ok, (true, true, true, true, 1));
    // The refused loop was not claimed or changed: it runs normally later,
    // from another thread too.
    let o = other.clone();
    let v = in_thread("later", move || o.run_until_complete(async { Ok(5) })).unwrap();
    assert_eq!(v, 5);
}

/// Rules: LIFE-6
#[test]
fn refused_run_until_complete_does_not_wrap_the_coroutine() {
    let lp = vloop();
    let l = lp.clone();
    let (n_before, n_after, polled) = lp
        .run_until_complete(async move {
            let before = all_tasks()?.len();
            let polled = Rc::new(Cell::new(false));
            let p = polled.clone();
            let err = l
                .run_until_complete(async move {
                    p.set(true);
                    Ok(())
                })
                .unwrap_err();
            assert_already_running(&err);
            loopspec::yield_now().await?;
            Ok((before, all_tasks()?.len(), polled.get()))
        })
        .unwrap();
    assert_eq!(n_before, 1);
    assert_eq!(n_after, 1);
    assert!(!polled);
}

// ---------------------------------------------------------------------------
// LIFE-7
// ---------------------------------------------------------------------------

/// Rules: LIFE-7
#[test]
fn close_from_a_callback_is_refused_and_the_loop_keeps_running() {
    let lp = vloop();
    let log = Log::new();
    let (l, lg) = (lp.clone(), log.clone());
    lp.call_soon(move || {
        assert_close_running(&l.close().unwrap_err());
        lg.push(format!("closed={}", l.is_closed()));
    })
    .unwrap();
    let (l, lg) = (lp.clone(), log.clone());
    lp.call_later(1.0, move || {
        lg.push(format!("timer running={}", l.is_running()));
        l.stop();
    })
    .unwrap();
    lp.run_forever().unwrap();
    assert_eq!(log.get(), ["closed=false", "timer running=true"]);
    assert!(!lp.is_closed());
    lp.close().unwrap();
    assert!(lp.is_closed());
}

/// Rules: LIFE-7
#[test]
fn close_from_a_task_is_refused() {
    let lp = vloop();
    let l = lp.clone();
    let err = lp
        .run_until_complete(async move { Ok(l.close().unwrap_err()) })
        .unwrap();
    assert_close_running(&err);
    assert!(!lp.is_closed());
}

/// Rules: LIFE-7
#[test]
fn close_twice_is_a_no_op() {
    let lp = vloop();
    lp.close().unwrap();
    assert!(lp.is_closed());
    lp.close().unwrap();
    assert!(lp.is_closed());
    assert!(!lp.is_running());
}

/// Rules: LIFE-7
#[test]
fn close_drops_queued_callbacks_and_timers_without_running_them() {
    let lp = vloop();
    let dropped = counter();
    let ran = Rc::new(Cell::new(0));
    for _ in 0..3 {
        let (g, r) = (DropCount(dropped.clone()), ran.clone());
        lp.call_soon(move || {
            let _g = g;
            r.set(r.get() + 1);
        })
        .unwrap();
    }
    for delay in [0.0, 1.0, 100.0] {
        let (g, r) = (DropCount(dropped.clone()), ran.clone());
        lp.call_later(delay, move || {
            let _g = g;
            r.set(r.get() + 1);
        })
        .unwrap();
    }
    let (g, r) = (DropCount(dropped.clone()), ran.clone());
    lp.call_at(50.0, move || {
        let _g = g;
        r.set(r.get() + 1);
    })
    .unwrap();
    assert_eq!(count(&dropped), 0);
    lp.close().unwrap();
    assert_eq!(
        count(&dropped),
        7,
        "every queued callback and timer dropped"
    );
    assert_eq!(ran.get(), 0);
    // The second close has nothing left to drop.
    lp.close().unwrap();
    assert_eq!(count(&dropped), 7);
}

/// Rules: LIFE-7
#[test]
fn close_drops_callbacks_left_by_a_stopped_run() {
    let lp = vloop();
    let dropped = counter();
    let log = Log::new();
    let (l, lg, d) = (lp.clone(), log.clone(), dropped.clone());
    lp.call_soon(move || {
        lg.push("first");
        let g = DropCount(d);
        let lg2 = lg.clone();
        l.call_soon(move || {
            let _g = g;
            lg2.push("second");
        })
        .unwrap();
    })
    .unwrap();
    run_once(&lp);
    assert_eq!(log.get(), ["first"]);
    lp.close().unwrap();
    assert_eq!(count(&dropped), 1);
    assert_eq!(log.get(), ["first"]);
}

/// Rules: LIFE-7
#[test]
fn close_drops_pending_cross_thread_submissions() {
    let lp = vloop();
    let dropped = counter();
    let ran = Arc::new(AtomicUsize::new(0));
    // Submissions from another thread the loop has not taken yet.
    let (l, d, r) = (lp.clone(), dropped.clone(), ran.clone());
    thread::spawn(move || {
        for _ in 0..4 {
            let (g, r) = (DropCount(d.clone()), r.clone());
            l.call_soon_threadsafe(move || {
                let _g = g;
                r.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        }
    })
    .join()
    .unwrap();
    assert_eq!(count(&dropped), 0);
    lp.close().unwrap();
    assert_eq!(count(&dropped), 4);
    assert_eq!(count(&ran), 0);
}

/// Rules: LIFE-7
#[test]
fn close_drops_the_futures_of_unfinished_tasks() {
    let lp = vloop();
    let seen = capture_exceptions(&lp);
    let dropped = counter();
    // One task never started, one suspended on a future.
    let g = DropCount(dropped.clone());
    let unstarted = lp
        .create_task(async move {
            let _g = g;
            Ok(())
        })
        .unwrap();
    let g = DropCount(dropped.clone());
    let f = never(&lp);
    let suspended = lp
        .create_task(async move {
            let _g = g;
            f.await
        })
        .unwrap();
    lp.stop();
    lp.run_forever().unwrap(); // both step once; `unstarted` finishes
    assert!(unstarted.done());
    assert_eq!(count(&dropped), 1);
    let g = DropCount(dropped.clone());
    let fresh = lp
        .create_task(async move {
            let _g = g;
            Ok(())
        })
        .unwrap();
    lp.close().unwrap();
    assert_eq!(
        count(&dropped),
        3,
        "the futures of unfinished tasks dropped"
    );
    assert!(!suspended.done());
    assert!(!fresh.done());
    let seen = seen.lock().unwrap();
    let msgs: Vec<_> = seen.iter().map(|c| c.message.as_str()).collect();
    assert_eq!(
        msgs,
        [
            "Task was destroyed but it is pending!",
            "Task was destroyed but it is pending!"
        ]
    );
}

/// Rules: LIFE-7
#[test]
fn close_runs_destructors_after_the_loop_is_marked_closed() {
    // A destructor that looks at the loop sees it closed, and scheduling from
    // it is refused rather than resurrecting work.
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
    lp.call_soon(move || drop(guard)).unwrap();
    lp.close().unwrap();
    let (closed, err) = out.borrow_mut().take().expect("the callback was dropped");
    assert!(closed);
    assert_eq!(err, Some(Error::Closed));
}

// ---------------------------------------------------------------------------
// LIFE-8
// ---------------------------------------------------------------------------

/// Rules: LIFE-8
#[test]
fn closed_loop_refuses_scheduling_and_drops_the_callbacks() {
    let lp = vloop();
    lp.close().unwrap();
    let dropped = counter();
    let ran = Arc::new(AtomicUsize::new(0));
    let g = DropCount(dropped.clone());
    let r = ran.clone();
    assert_closed(
        &lp.call_soon(move || {
            let _g = g;
            r.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap_err(),
    );
    let g = DropCount(dropped.clone());
    let r = ran.clone();
    assert_closed(
        &lp.call_later(1.0, move || {
            let _g = g;
            r.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap_err(),
    );
    let g = DropCount(dropped.clone());
    let r = ran.clone();
    assert_closed(
        &lp.call_at(1.0, move || {
            let _g = g;
            r.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap_err(),
    );
    let g = DropCount(dropped.clone());
    let r = ran.clone();
    assert_closed(
        &lp.call_soon_threadsafe(move || {
            let _g = g;
            r.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap_err(),
    );
    assert_eq!(count(&dropped), 4);
    assert_eq!(count(&ran), 0);
}

/// Rules: LIFE-8
#[test]
fn closed_loop_refuses_call_soon_threadsafe_from_another_thread() {
    let lp = vloop();
    lp.close().unwrap();
    let l = lp.clone();
    let err = thread::spawn(move || l.call_soon_threadsafe(|| ()).unwrap_err())
        .join()
        .unwrap();
    assert_closed(&err);
}

/// Rules: LIFE-8
#[test]
fn closed_loop_refuses_to_run() {
    let lp = vloop();
    lp.close().unwrap();
    assert_closed(&lp.run_forever().unwrap_err());
    let polled = Rc::new(Cell::new(false));
    let dropped = counter();
    let (p, g) = (polled.clone(), DropCount(dropped.clone()));
    let err = lp
        .run_until_complete(async move {
            let _g = g;
            p.set(true);
            Ok(())
        })
        .unwrap_err();
    assert_closed(&err);
    assert!(!polled.get());
    assert_eq!(count(&dropped), 1);
    // A future of this loop is refused the same way.
    assert_closed(&lp.run_until_complete(lp.create_future::<u8>()).unwrap_err());
    assert!(!lp.is_running());
}

/// Rules: LIFE-8
#[test]
fn closed_loop_refuses_tasks_and_drops_the_coroutine_unpolled() {
    let lp = vloop();
    lp.close().unwrap();
    let polled = counter();
    let dropped = counter();

    let (p, g) = (polled.clone(), DropCount(dropped.clone()));
    let err = lp
        .create_task(async move {
            let _g = g;
            p.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
        .unwrap_err();
    assert_closed(&err);
    assert_eq!(count(&dropped), 1);

    let (p, g) = (polled.clone(), DropCount(dropped.clone()));
    let err = lp
        .ensure_future(async move {
            let _g = g;
            p.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
        .unwrap_err();
    assert_closed(&err);
    assert_eq!(count(&dropped), 2);

    // The free ensure_future finds the closed loop as the current loop.
    let (p, d, l) = (polled.clone(), dropped.clone(), lp.clone());
    let err = in_thread("closed-current", move || {
        set_event_loop(Some(&l));
        let g = DropCount(d);
        loopspec::ensure_future(async move {
            let _g = g;
            p.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
        .unwrap_err()
    });
    assert_closed(&err);
    assert_eq!(count(&polled), 0);
    assert_eq!(count(&dropped), 3);
}

/// Rules: LIFE-8
#[test]
fn closed_loop_answers_questions() {
    let lp = vloop();
    let l = lp.clone();
    lp.call_later(3.0, move || l.stop()).unwrap();
    lp.run_forever().unwrap();
    lp.close().unwrap();
    // None of these fail.
    lp.close().unwrap();
    lp.stop();
    assert!(!lp.is_running());
    assert!(lp.is_closed());
    assert_eq!(lp.time(), 3.0);
    let fut = lp.create_future::<i32>();
    assert!(!fut.done());
    assert_eq!(fut.get_loop(), lp);
    // From another thread as well.
    let l = lp.clone();
    let (closed, running, t) = thread::spawn(move || {
        l.stop();
        l.close().unwrap();
        (l.is_closed(), l.is_running(), l.time())
    })
    .join()
    .unwrap();
    assert!(closed);
    assert!(!running);
    assert_eq!(t, 3.0);
}

// ---------------------------------------------------------------------------
// LIFE-9
// ---------------------------------------------------------------------------

fn noop_callback<T: 'static>() -> DoneCallback<T> {
    Rc::new(|_: &Future<T>| ())
}

/// Rules: LIFE-9
#[test]
fn set_result_on_a_closed_loop_with_callbacks_fails_but_finishes() {
    let lp = vloop();
    let fut = lp.create_future::<i32>();
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    fut.add_done_callback(Rc::new(move |_: &Future<i32>| r.set(true)))
        .unwrap();
    lp.close().unwrap();
    let err = fut.set_result(1).unwrap_err();
    assert_closed(&err);
    assert!(fut.done());
    assert!(!fut.cancelled());
    assert_eq!(fut.result().unwrap(), 1);
    assert!(!ran.get());
    // Done: a second completion is the usual InvalidStateError.
    assert_eq!(fut.set_result(2).unwrap_err(), Error::InvalidState);
}

/// Rules: LIFE-9
#[test]
fn set_exception_on_a_closed_loop_with_callbacks_fails_but_finishes() {
    let lp = vloop();
    let fut = lp.create_future::<i32>();
    fut.add_done_callback(noop_callback()).unwrap();
    lp.close().unwrap();
    let err = fut
        .set_exception(Error::raise("ValueError", "late"))
        .unwrap_err();
    assert_closed(&err);
    assert!(fut.done());
    assert_eq!(
        fut.exception().unwrap(),
        Some(Error::raise("ValueError", "late"))
    );
}

/// Rules: LIFE-9
#[test]
fn cancel_on_a_closed_loop_with_callbacks_returns_true_and_cancels() {
    let lp = vloop();
    let fut = lp.create_future::<i32>();
    fut.add_done_callback(noop_callback()).unwrap();
    lp.close().unwrap();
    assert!(fut.cancel());
    assert!(fut.done());
    assert!(fut.cancelled());
    assert!(!fut.cancel());
    assert_eq!(fut.result().unwrap_err(), Error::Cancelled(None));
}

/// Rules: LIFE-9
#[test]
fn completing_a_future_of_a_closed_loop_without_callbacks_succeeds() {
    let lp = vloop();
    lp.close().unwrap();
    let a = lp.create_future::<i32>();
    a.set_result(4).unwrap();
    assert_eq!(a.result().unwrap(), 4);
    let b = lp.create_future::<i32>();
    b.set_exception(Error::raise("ValueError", "v")).unwrap();
    assert!(b.done());
    assert_eq!(
        b.exception().unwrap(),
        Some(Error::raise("ValueError", "v"))
    );
    let c = lp.create_future::<i32>();
    assert!(c.cancel_with(Some("bye".into())));
    assert_eq!(
        c.result().unwrap_err(),
        Error::Cancelled(Some("bye".into()))
    );
}
