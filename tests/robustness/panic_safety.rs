//! Panic safety: a panic in a callback, a done callback, a task, an
//! exception handler, a `ConcurrentFuture` callback or the `Drop` of user
//! data is caught where Python would catch an exception, is reported, and
//! leaves the loop usable with its invariants intact (SPEC.md's Rust mapping:
//! "a panic is an exception").
//!
//! Each test makes one thing panic, checks the report, then checks that the
//! loop still schedules, runs, stops and closes as the rules say. The bugs
//! the fuzzer found in this area have regression tests at the end.

use common::{
    DropCount, Holding, INTENTIONAL, Log, PanicOnDrop, capture_exceptions, cf_result, quiet_panics,
    run_once, vloop,
};
use loopspec::{ConcurrentFuture, DoneCallback, Error, EventLoop, Future};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

/// The loop still works: callbacks run in order, a task completes, the loop
/// stops and closes.
fn assert_usable(lp: &EventLoop) {
    assert!(!lp.is_running());
    let log = Log::new();
    lp.call_soon(log.cb("after-1")).unwrap();
    lp.call_soon(log.cb("after-2")).unwrap();
    run_once(lp);
    assert_eq!(log.take(), ["after-1", "after-2"]);
    let t = lp
        .create_task(async {
            loopspec::sleep(1.0).await?;
            Ok(7)
        })
        .unwrap();
    assert_eq!(lp.run_until_complete(t).unwrap(), 7);
    assert!(!lp.is_running());
}

fn panics_of(seen: &common::Reports) -> Vec<(String, Error)> {
    seen.lock()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c.message.clone(),
                c.exception.clone().unwrap_or(Error::Closed),
            )
        })
        .collect()
}

/// Rules: SCHED-7
#[test]
fn panicking_callback_is_reported_and_the_rest_of_the_batch_runs() {
    let lp = vloop();
    let seen = capture_exceptions(&lp);
    let log = Log::new();
    lp.call_soon(log.cb("a")).unwrap();
    let h = lp.call_soon(|| panic!("boom in a callback")).unwrap();
    lp.call_soon(log.cb("b")).unwrap();
    run_once(&lp);
    assert_eq!(log.take(), ["a", "b"]);
    let reports = panics_of(&seen);
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].0, format!("Exception in callback {h:?}"));
    assert_eq!(reports[0].1, Error::Panic("boom in a callback".into()));
    assert_eq!(reports[0].1.python_type(), "Panic");
    assert_usable(&lp);
    lp.close().unwrap();
}

/// Rules: SCHED-7, STOP-1
#[test]
fn panicking_callback_inside_run_until_complete_does_not_end_the_run() {
    let lp = vloop();
    let seen = capture_exceptions(&lp);
    lp.call_soon(|| panic!("boom")).unwrap();
    let r = lp.run_until_complete(async {
        loopspec::yield_now().await?;
        loopspec::yield_now().await?;
        Ok("finished")
    });
    assert_eq!(r.unwrap(), "finished");
    assert_eq!(seen.lock().unwrap().len(), 1);
    assert_usable(&lp);
    lp.close().unwrap();
}

/// Rules: FUT-6, SCHED-7
#[test]
fn panicking_done_callback_is_reported_and_the_others_still_run() {
    let lp = vloop();
    let seen = capture_exceptions(&lp);
    let log = Log::new();
    let fut: Future<i32> = lp.create_future();
    let (l1, l3) = (log.clone(), log.clone());
    let first: DoneCallback<i32> =
        Rc::new(move |f: &Future<i32>| l1.push(format!("first {:?}", f.result())));
    let bad: DoneCallback<i32> = Rc::new(|_: &Future<i32>| panic!("boom in a done callback"));
    let third: DoneCallback<i32> = Rc::new(move |_: &Future<i32>| l3.push("third"));
    for cb in [first, bad, third] {
        fut.add_done_callback(cb).unwrap();
    }
    fut.set_result(5).unwrap();
    assert!(log.get().is_empty(), "done callbacks never run inline");
    run_once(&lp);
    assert_eq!(log.take(), ["first Ok(5)", "third"]);
    let reports = panics_of(&seen);
    assert_eq!(reports.len(), 1);
    assert!(
        reports[0].0.starts_with("Exception in callback "),
        "{}",
        reports[0].0
    );
    assert_eq!(reports[0].1, Error::Panic("boom in a done callback".into()));
    assert_eq!(
        fut.result().unwrap(),
        5,
        "the future keeps its one final state"
    );
    assert_usable(&lp);
    lp.close().unwrap();
}

/// Rules: TASK-14
#[test]
fn panicking_task_ends_with_a_panic_exception_and_other_tasks_go_on() {
    let lp = vloop();
    let seen = capture_exceptions(&lp);
    let other = lp
        .create_task(async {
            loopspec::sleep(2.0).await?;
            Ok(1)
        })
        .unwrap();
    let bad = lp
        .create_task(async {
            loopspec::sleep(1.0).await?;
            if true {
                panic!("boom in a task");
            }
            Ok(0)
        })
        .unwrap();
    let err = lp.run_until_complete(bad.clone()).unwrap_err();
    assert_eq!(err, Error::Panic("boom in a task".into()));
    assert_eq!(err.python_type(), "Panic");
    assert!(bad.done() && !bad.cancelled());
    assert_eq!(
        bad.exception().unwrap(),
        Some(Error::Panic("boom in a task".into()))
    );
    assert!(!other.done());
    assert_eq!(lp.run_until_complete(other).unwrap(), 1);
    assert!(
        seen.lock().unwrap().is_empty(),
        "a task's panic is its exception, not a report"
    );
    assert_usable(&lp);
    lp.close().unwrap();
}

/// Rules: TASK-14, TASK-6
#[test]
fn awaiting_a_panicked_task_gets_its_panic_exception() {
    let lp = vloop();
    let bad = lp
        .create_task(async {
            if true {
                panic!("inner boom");
            }
            Ok(0)
        })
        .unwrap();
    let r = lp.run_until_complete(async move {
        match bad.await {
            Err(Error::Panic(m)) => Ok(m),
            other => Ok(format!("unexpected {other:?}")),
        }
    });
    assert_eq!(r.unwrap(), "inner boom");
    assert_usable(&lp);
    lp.close().unwrap();
}

/// Rules: SCHED-8, SCHED-7
#[test]
fn panicking_exception_handler_falls_back_and_stays_installed() {
    let lp = vloop();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    lp.set_exception_handler(Some(Arc::new(
        move |_: &EventLoop, _: &loopspec::ExceptionContext| {
            c.fetch_add(1, Ordering::SeqCst);
            panic!("boom in the handler");
        },
    )));
    let log = Log::new();
    lp.call_soon(|| panic!("first failure")).unwrap();
    lp.call_soon(log.cb("between")).unwrap();
    lp.call_soon(|| panic!("second failure")).unwrap();
    run_once(&lp);
    assert_eq!(log.take(), ["between"]);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "the handler is called for each failure"
    );
    assert!(
        lp.get_exception_handler().is_some(),
        "a failing handler stays installed"
    );
    // Called directly, a panicking handler does not panic the caller either.
    lp.call_exception_handler(&loopspec::ExceptionContext::new("direct"));
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_usable(&lp);
    lp.close().unwrap();
}

/// Rules: CONC-6
#[test]
fn panicking_concurrent_future_callback_is_contained_and_the_others_run() {
    let cf: ConcurrentFuture<i32> = ConcurrentFuture::new();
    let ran = Arc::new(Mutex::new(Vec::new()));
    let (r1, r3) = (ran.clone(), ran.clone());
    cf.add_done_callback(move |f| r1.lock().unwrap().push(format!("first {:?}", cf_result(f))));
    cf.add_done_callback(|_| panic!("boom in a concurrent callback"));
    cf.add_done_callback(move |_| r3.lock().unwrap().push("third".to_string()));
    let worker = cf.clone();
    let set = thread::spawn(move || worker.set_result(3)).join().unwrap();
    assert_eq!(
        set,
        Ok(()),
        "set_result does not report the callback's panic"
    );
    assert_eq!(*ran.lock().unwrap(), ["first Ok(3)", "third"]);
    assert_eq!(cf_result(&cf), Ok(3));
    // Added after completion: runs at once in this thread, still contained.
    cf.add_done_callback(|_| panic!("boom added late"));
    let r4 = ran.clone();
    cf.add_done_callback(move |_| r4.lock().unwrap().push("late".to_string()));
    assert_eq!(ran.lock().unwrap().last().map(String::as_str), Some("late"));
    // A loop awaiting it is unaffected.
    let lp = vloop();
    assert_eq!(
        lp.run_until_complete(loopspec::wrap_future(&cf, &lp).unwrap())
            .unwrap(),
        3
    );
    assert_usable(&lp);
    lp.close().unwrap();
}

/// Rules: SCHED-7, LIFE-7
#[test]
fn panicking_drop_of_a_callbacks_data_after_it_ran_is_reported() {
    let lp = vloop();
    let seen = capture_exceptions(&lp);
    let log = Log::new();
    let data = PanicOnDrop("boom in drop after run");
    let l = log.clone();
    lp.call_soon(move || {
        let _d = data;
        l.push("ran");
    })
    .unwrap();
    lp.call_soon(log.cb("next")).unwrap();
    run_once(&lp);
    assert_eq!(log.take(), ["ran", "next"]);
    let reports = panics_of(&seen);
    assert_eq!(reports.len(), 1);
    assert!(reports[0].0.starts_with("Exception in callback "));
    assert_eq!(reports[0].1, Error::Panic("boom in drop after run".into()));
    assert_usable(&lp);
    lp.close().unwrap();
}

/// Rules: SCHED-3, LIFE-7
#[test]
fn panicking_drop_of_a_cancelled_callback_is_contained() {
    let lp = vloop();
    let log = Log::new();
    let data = PanicOnDrop("boom in drop of a cancelled callback");
    let h = lp
        .call_soon(move || {
            let _d = &data;
            unreachable!("cancelled");
        })
        .unwrap();
    lp.call_soon(log.cb("kept")).unwrap();
    h.cancel();
    run_once(&lp);
    assert_eq!(log.take(), ["kept"]);
    assert_usable(&lp);
    lp.close().unwrap();
}

/// Rules: LIFE-7
#[test]
fn panicking_drop_of_queued_work_at_close_is_reported_and_the_loop_is_closed() {
    let lp = vloop();
    let seen = capture_exceptions(&lp);
    let data = PanicOnDrop("boom in drop at close");
    lp.call_soon(move || {
        let _d = &data;
    })
    .unwrap();
    assert_eq!(lp.close(), Ok(()));
    assert!(lp.is_closed() && !lp.is_running());
    let reports = panics_of(&seen);
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].0, "Exception while dropping queued work");
    assert_eq!(reports[0].1, Error::Panic("boom in drop at close".into()));
    // Closed means closed: still refuses work, still answers questions.
    assert_eq!(lp.call_soon(|| ()).unwrap_err(), Error::Closed);
    assert_eq!(lp.close(), Ok(()));
}

/// Rules: TASK-14, LIFE-7
#[test]
fn panicking_drop_of_a_finished_tasks_future_is_reported_and_the_result_kept() {
    let lp = vloop();
    let seen = capture_exceptions(&lp);
    let t = lp
        .create_task(Holding {
            fut: Box::pin(async {
                loopspec::yield_now().await?;
                Ok(11)
            }),
            _data: PanicOnDrop("boom in drop of a task's future"),
        })
        .unwrap();
    assert_eq!(lp.run_until_complete(t.clone()).unwrap(), 11);
    assert_eq!(
        t.result().unwrap(),
        11,
        "the task finished before its future was dropped"
    );
    let reports = panics_of(&seen);
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].0, "Exception while dropping a task's future");
    assert_usable(&lp);
    lp.close().unwrap();
}

/// Rules: XTHREAD-1, SCHED-7
#[test]
fn panicking_threadsafe_callback_from_another_thread_is_reported() {
    let lp = vloop();
    let seen = capture_exceptions(&lp);
    let remote = lp.clone();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    thread::spawn(move || {
        remote
            .call_soon_threadsafe(|| panic!("boom from afar"))
            .unwrap();
        remote
            .call_soon_threadsafe(move || {
                c.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
    })
    .join()
    .unwrap();
    run_once(&lp);
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert_eq!(panics_of(&seen)[0].1, Error::Panic("boom from afar".into()));
    assert_usable(&lp);
    lp.close().unwrap();
}

/// Rules: XTHREAD-7, TASK-14
#[test]
fn panicking_run_coroutine_threadsafe_task_reaches_the_caller_as_its_exception() {
    let lt = loopspec::LoopThread::spawn("panicky-loop").unwrap();
    let cf = loopspec::run_coroutine_threadsafe(
        || async {
            if true {
                panic!("boom on the loop thread");
            }
            Ok(0)
        },
        lt.event_loop(),
    )
    .unwrap();
    assert_eq!(
        cf_result(&cf),
        Err(Error::Panic("boom on the loop thread".into()))
    );
    // The loop thread goes on serving.
    let ok = loopspec::run_coroutine_threadsafe(|| async { Ok(2) }, lt.event_loop()).unwrap();
    assert_eq!(cf_result(&ok), Ok(2));
    lt.stop_and_join().unwrap();
}

// ---------------------------------------------------------------------------
// Regressions: bugs the fuzzer (or probing for it) found, now fixed (see
// "Bugs found" in `check/src/fuzz/mod.rs`). Each asserts the specified behaviour.
// ---------------------------------------------------------------------------

/// User data whose `Drop` panics, even while a panic unwinds (the worst a
/// user type can do).
struct AlwaysPanicOnDrop(&'static str);

impl Drop for AlwaysPanicOnDrop {
    fn drop(&mut self) {
        panic!("{}", self.0);
    }
}

/// Runs `scenario` in a child process (this test binary, filtered to
/// `name`) when it could abort the process, and fails if the child died.
fn survives_in_a_child(name: &str, scenario: fn()) {
    if std::env::var("LOOPSPEC_CHILD").as_deref() == Ok(name) {
        quiet_panics();
        scenario();
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--test-threads=1", "--nocapture"])
        .env("LOOPSPEC_CHILD", name)
        .output()
        .expect("run the child");
    assert!(
        out.status.success(),
        "the process died ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(
                |l| !l.trim_start().starts_with(|c: char| c.is_ascii_digit())
                    && !l.trim_start().starts_with("at ")
            )
            .take(12)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Bug 1, fixed (found by `run_ops`): a panicking `Drop` of one queued
/// callback at `close()` stops the rest of the clean-up: the pending task is
/// neither destroyed nor reported.
/// Rules: LIFE-7, TASK-8
#[test]
fn regression_close_with_a_panicking_drop_still_destroys_and_reports_pending_tasks() {
    quiet_panics();
    let lp = vloop();
    let seen = capture_exceptions(&lp);
    let dropped = Arc::new(AtomicUsize::new(0));
    let task = lp
        .create_task(Holding {
            fut: Box::pin(async {
                loopspec::sleep(100.0).await?;
                Ok(1)
            }),
            _data: DropCount(dropped.clone()),
        })
        .unwrap();
    run_once(&lp);
    let data = PanicOnDrop(INTENTIONAL);
    lp.call_soon(move || {
        let _d = &data;
    })
    .unwrap();
    lp.close().unwrap();
    let messages: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|c| c.message.clone())
        .collect();
    assert!(
        messages
            .iter()
            .any(|m| m == "Exception while dropping queued work"),
        "{messages:?}"
    );
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        1,
        "LIFE-7: close() dropped the pending task's future"
    );
    assert!(
        messages
            .iter()
            .any(|m| m == "Task was destroyed but it is pending!"),
        "TASK-8: the pending task is reported: {messages:?}"
    );
    drop(task);
}

/// Bug 1, fixed (found by `run_chain`): when a destroyed task's future
/// panics in `Drop`, the task keeps the futures it awaited (a reference
/// cycle), so the concurrent future of `run_coroutine_threadsafe` never
/// completes.
/// Rules: XTHREAD-6, LIFE-7
#[test]
fn regression_close_of_a_task_whose_future_panics_in_drop_still_fails_its_concurrent_future() {
    quiet_panics();
    let lp = vloop();
    let _seen = capture_exceptions(&lp);
    let cf = loopspec::run_coroutine_threadsafe(
        || Holding {
            fut: Box::pin(async {
                loopspec::sleep(100.0).await?;
                Ok(1)
            }),
            _data: PanicOnDrop(INTENTIONAL),
        },
        &lp,
    )
    .unwrap();
    run_once(&lp);
    run_once(&lp);
    lp.close().unwrap();
    assert_eq!(
        cf.result(Some(std::time::Duration::ZERO)),
        Err(Error::Closed),
        "XTHREAD-6: the task was destroyed, its concurrent future must fail"
    );
}

/// Bug 1, fixed (probing): two queued callbacks whose `Drop` panics make
/// `close()` panic while unwinding, which aborts the process.
/// Rules: LIFE-7
#[test]
fn regression_close_with_two_panicking_drops_does_not_abort() {
    survives_in_a_child(
        "regression_close_with_two_panicking_drops_does_not_abort",
        || {
            let lp = vloop();
            let _seen = capture_exceptions(&lp);
            let (a, b) = (AlwaysPanicOnDrop("first"), AlwaysPanicOnDrop("second"));
            lp.call_soon(move || {
                let _a = &a;
            })
            .unwrap();
            lp.call_soon(move || {
                let _b = &b;
            })
            .unwrap();
            assert_eq!(lp.close(), Ok(()));
        },
    );
}

/// Bug 2, fixed (probing for `run_ops`'s thread exits): a home thread that
/// exits drops its loop-bound work in a thread-local destructor; a
/// panicking `Drop` there aborts the process.
/// Rules: THREAD-4
#[test]
fn regression_home_thread_exit_with_a_panicking_drop_does_not_abort() {
    survives_in_a_child(
        "regression_home_thread_exit_with_a_panicking_drop_does_not_abort",
        || {
            let lp = vloop();
            let _seen = capture_exceptions(&lp);
            let remote = lp.clone();
            let joined = std::thread::spawn(move || {
                let data = PanicOnDrop("boom at thread exit");
                remote
                    .call_soon(move || {
                        let _d = &data;
                    })
                    .unwrap();
            })
            .join();
            assert!(joined.is_ok());
            lp.close().unwrap();
        },
    );
}

/// Bug 3, fixed (found by `run_ops` and `run_chain`): cancelling a
/// `call_soon_threadsafe` handle drops the callback inside `cancel()`, so
/// its panicking `Drop` comes out of `cancel()` — in whichever thread
/// cancels.
/// Rules: XTHREAD-5, SCHED-3
#[test]
fn regression_cancel_of_a_threadsafe_handle_does_not_raise_the_callbacks_drop_panic() {
    quiet_panics();
    let lp = vloop();
    let data = PanicOnDrop(INTENTIONAL);
    let h = lp
        .call_soon_threadsafe(move || {
            let _d = &data;
        })
        .unwrap();
    let cancelled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| h.cancel()));
    assert!(cancelled.is_ok(), "Handle::cancel() panicked");
    assert!(h.cancelled());
    run_once(&lp);
    lp.close().unwrap();
}

/// Bug 4, fixed (found by `run_ops`): the iteration drops cancelled timers
/// outside any catch, so a panicking `Drop` of a cancelled timer's callback
/// comes out of `run_forever` in the middle of an iteration.
/// Rules: SCHED-3, SCHED-4, SCHED-7
#[test]
fn regression_cancelled_timer_with_a_panicking_drop_does_not_break_the_run() {
    quiet_panics();
    let lp = vloop();
    let _seen = capture_exceptions(&lp);
    let data = PanicOnDrop(INTENTIONAL);
    let t = lp
        .call_later(2.0, move || {
            let _d = &data;
        })
        .unwrap();
    t.cancel();
    let ran = Arc::new(AtomicUsize::new(0));
    let (r, stopper) = (ran.clone(), lp.clone());
    lp.call_later(5.0, move || {
        r.fetch_add(1, Ordering::SeqCst);
        stopper.stop();
    })
    .unwrap();
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| lp.run_forever()));
    assert!(
        matches!(run, Ok(Ok(()))),
        "run_forever did not return normally"
    );
    assert_eq!(ran.load(Ordering::SeqCst), 1);
    assert_eq!(lp.time(), 5.0);
    lp.close().unwrap();
}
