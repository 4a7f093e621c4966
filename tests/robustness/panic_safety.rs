//! Panic safety: a panic in a callback, a done callback, a task, an
//! exception handler, a `ConcurrentFuture` callback or the `Drop` of user
//! data is caught where Python would catch an exception, is reported, and
//! leaves the loop usable with its invariants intact (SPEC.md's Rust mapping:
//! "a panic is an exception").
//!
//! Each test makes one thing panic on a [`Scene`] (through [`panicking`]),
//! checks the report, and then [`panicking`] checks that the loop still
//! schedules, runs, stops and closes as the rules say. The bugs the fuzzer
//! found in this area have regression tests at the end.

use common::{
    DropCount, INTENTIONAL, PanicOnDrop, Reports, Scene, capture_exceptions, cf_result, count,
    counter, quiet_panics, run_once, vloop,
};
use loopspec::{ConcurrentFuture, Error, EventLoop, Future, LocalDoneCallback};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread;

/// The loop still works: callbacks run in order, a task completes, the loop
/// stops and closes.
fn assert_usable(lp: &EventLoop) {
    assert!(!lp.is_running());
    let s = Scene::on(lp.clone());
    s.soon_log("after-1");
    s.soon_log("after-2");
    assert_eq!(s.once(), ["after-1", "after-2"]);
    assert_eq!(lp.run_until_complete(common::sleeper(lp, 1.0, 7)), Ok(7));
    assert!(!lp.is_running());
}

/// Runs `test` on a new scene whose reports are captured, then asserts the
/// loop is [usable](assert_usable) and closes it.
fn panicking(test: impl FnOnce(&Scene, &Reports)) {
    let s = Scene::new();
    let seen = capture_exceptions(&s);
    test(&s, &seen);
    assert_usable(&s);
    s.close().unwrap();
}

/// The one report of `seen`: its message and the exception it carries.
#[track_caller]
fn the_report(seen: &Reports) -> (String, Error) {
    let reports = seen.each(|c| (c.message.clone(), c.exception.clone()));
    assert_eq!(reports.len(), 1, "{reports:?}");
    let (message, exception) = reports.into_iter().next().unwrap();
    (message, exception.expect("the report carries the panic"))
}

/// A callback that holds `data` and does nothing: its data is dropped
/// when the callback is.
fn holds<D: Send + 'static>(data: D) -> impl FnOnce() + Send + 'static {
    move || {
        let _d = &data;
    }
}

/// A coroutine that panics with `msg` once polled.
async fn panics(msg: &'static str) -> loopspec::Result<i32> {
    if true {
        panic!("{msg}");
    }
    Ok(0)
}

/// A coroutine that sleeps long: a task of it stays pending.
async fn sleeps_long() -> loopspec::Result<i32> {
    loopspec::sleep(100.0).await?;
    Ok(1)
}

/// Rules: SCHED-7
#[test]
fn panicking_callback_is_reported_and_the_rest_of_the_batch_runs() {
    panicking(|s, seen| {
        s.soon_log("a");
        let h = s.call_soon(|| panic!("boom in a callback")).unwrap();
        s.soon_log("b");
        assert_eq!(s.once(), ["a", "b"]);
        let (message, panic) = the_report(seen);
        assert_eq!(message, format!("Exception in callback {h:?}"));
        assert_eq!(panic, Error::Panic("boom in a callback".into()));
        assert_eq!(panic.python_type(), "Panic");
    });
}

/// Rules: SCHED-7, STOP-1
#[test]
fn panicking_callback_inside_run_until_complete_does_not_end_the_run() {
    panicking(|s, seen| {
        s.call_soon(|| panic!("boom")).unwrap();
        let r = s.run_until_complete(async {
            loopspec::yield_now().await?;
            loopspec::yield_now().await?;
            Ok("finished")
        });
        assert_eq!(r, Ok("finished"));
        the_report(seen);
    });
}

/// Rules: FUT-6, SCHED-7
#[test]
fn panicking_done_callback_is_reported_and_the_others_still_run() {
    panicking(|s, seen| {
        let fut: Future<i32> = s.create_future();
        let (l1, l3) = (s.log.clone(), s.log.clone());
        let first: LocalDoneCallback<i32> =
            Rc::new(move |f: &Future<i32>| l1.push(format!("first {:?}", f.result())));
        let bad: LocalDoneCallback<i32> =
            Rc::new(|_: &Future<i32>| panic!("boom in a done callback"));
        let third: LocalDoneCallback<i32> = Rc::new(move |_: &Future<i32>| l3.push("third"));
        for cb in [first, bad, third] {
            fut.add_done_callback_local(cb).unwrap();
        }
        fut.set_result(5).unwrap();
        assert!(s.log.get().is_empty(), "done callbacks never run inline");
        assert_eq!(s.once(), ["first Ok(5)", "third"]);
        let (message, panic) = the_report(seen);
        assert!(message.starts_with("Exception in callback "), "{message}");
        assert_eq!(panic, Error::Panic("boom in a done callback".into()));
        assert_eq!(fut.result(), Ok(5), "the future keeps its one final state");
    });
}

/// Rules: TASK-14
#[test]
fn panicking_task_ends_with_a_panic_exception_and_other_tasks_go_on() {
    panicking(|s, seen| {
        let other = common::sleeper(s, 2.0, 1);
        let bad = s.task(|_| async {
            loopspec::sleep(1.0).await?;
            panics("boom in a task").await
        });
        let err = s.run_until_complete(bad.clone()).unwrap_err();
        assert_eq!(err, Error::Panic("boom in a task".into()));
        assert_eq!(err.python_type(), "Panic");
        assert!(bad.done() && !bad.cancelled());
        assert_eq!(bad.exception(), Ok(Some(err)));
        assert!(!other.done());
        assert_eq!(s.run_until_complete(other), Ok(1));
        assert!(
            seen.messages().is_empty(),
            "a task's panic is its exception, not a report"
        );
    });
}

/// Rules: TASK-14, TASK-6
#[test]
fn awaiting_a_panicked_task_gets_its_panic_exception() {
    panicking(|s, _| {
        let bad = s.task(|_| panics("inner boom"));
        let r = s.run_until_complete(async move {
            match bad.await {
                Err(Error::Panic(m)) => Ok(m),
                other => Ok(format!("unexpected {other:?}")),
            }
        });
        assert_eq!(r.unwrap(), "inner boom");
    });
}

/// Rules: SCHED-8, SCHED-7
#[test]
fn panicking_exception_handler_falls_back_and_stays_installed() {
    panicking(|s, _| {
        let calls = counter();
        let c = calls.clone();
        s.set_exception_handler(Some(Arc::new(
            move |_: &EventLoop, _: &loopspec::ExceptionContext| {
                c.fetch_add(1, Ordering::SeqCst);
                panic!("boom in the handler");
            },
        )));
        s.call_soon(|| panic!("first failure")).unwrap();
        s.soon_log("between");
        s.call_soon(|| panic!("second failure")).unwrap();
        assert_eq!(s.once(), ["between"]);
        assert_eq!(count(&calls), 2, "the handler is called for each failure");
        assert!(
            s.get_exception_handler().is_some(),
            "a failing handler stays installed"
        );
        // Called directly, a panicking handler does not panic the caller either.
        s.call_exception_handler(&loopspec::ExceptionContext::new("direct"));
        assert_eq!(count(&calls), 3);
    });
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
    panicking(|s, _| {
        assert_eq!(
            s.run_until_complete(loopspec::wrap_future(&cf, s).unwrap()),
            Ok(3)
        )
    });
}

/// Rules: SCHED-7, LIFE-7
#[test]
fn panicking_drop_of_a_callbacks_data_after_it_ran_is_reported() {
    panicking(|s, seen| {
        let (data, log) = (PanicOnDrop("boom in drop after run"), s.log.clone());
        s.call_soon(move || {
            let _d = data;
            log.push("ran");
        })
        .unwrap();
        s.soon_log("next");
        assert_eq!(s.once(), ["ran", "next"]);
        let (message, panic) = the_report(seen);
        assert!(message.starts_with("Exception in callback "), "{message}");
        assert_eq!(panic, Error::Panic("boom in drop after run".into()));
    });
}

/// Rules: SCHED-3, LIFE-7
#[test]
fn panicking_drop_of_a_cancelled_callback_is_contained() {
    panicking(|s, _| {
        let h = s
            .call_soon(holds(PanicOnDrop("boom in drop of a cancelled callback")))
            .unwrap();
        s.soon_log("kept");
        h.cancel();
        assert_eq!(s.once(), ["kept"]);
    });
}

/// Rules: LIFE-7
#[test]
fn panicking_drop_of_queued_work_at_close_is_reported_and_the_loop_is_closed() {
    let lp = vloop();
    let seen = capture_exceptions(&lp);
    lp.call_soon(holds(PanicOnDrop("boom in drop at close")))
        .unwrap();
    assert_eq!(lp.close(), Ok(()));
    assert!(lp.is_closed() && !lp.is_running());
    let (message, panic) = the_report(&seen);
    assert_eq!(message, "Exception while dropping queued work");
    assert_eq!(panic, Error::Panic("boom in drop at close".into()));
    // Closed means closed: still refuses work, still answers questions.
    assert_eq!(lp.call_soon(|| ()).unwrap_err(), Error::Closed);
    assert_eq!(lp.close(), Ok(()));
}

/// Rules: TASK-14, LIFE-7
#[test]
fn panicking_drop_of_a_finished_tasks_future_is_reported_and_the_result_kept() {
    panicking(|s, seen| {
        let t = s.task_with(PanicOnDrop("boom in drop of a task's future"), |_| async {
            loopspec::yield_now().await?;
            Ok(11)
        });
        assert_eq!(s.run_until_complete(t.clone()), Ok(11));
        assert_eq!(
            t.result(),
            Ok(11),
            "the task finished before its future was dropped"
        );
        assert_eq!(
            the_report(seen).0,
            "Exception while dropping a task's future"
        );
    });
}

/// Rules: XTHREAD-1, SCHED-7
#[test]
fn panicking_threadsafe_callback_from_another_thread_is_reported() {
    panicking(|s, seen| {
        let (remote, log) = (s.lp.clone(), s.log.clone());
        thread::spawn(move || {
            remote
                .call_soon_threadsafe(|| panic!("boom from afar"))
                .unwrap();
            remote.call_soon_threadsafe(log.cb("after")).unwrap();
        })
        .join()
        .unwrap();
        assert_eq!(s.once(), ["after"]);
        assert_eq!(the_report(seen).1, Error::Panic("boom from afar".into()));
    });
}

/// Rules: XTHREAD-7, TASK-14
#[test]
fn panicking_run_coroutine_threadsafe_task_reaches_the_caller_as_its_exception() {
    let lt = loopspec::LoopThread::spawn("panicky-loop").unwrap();
    let cf = loopspec::run_coroutine_threadsafe_local(
        || panics("boom on the loop thread"),
        lt.event_loop(),
    )
    .unwrap();
    assert_eq!(
        cf_result(&cf),
        Err(Error::Panic("boom on the loop thread".into()))
    );
    // The loop thread goes on serving.
    let ok = loopspec::run_coroutine_threadsafe(async { Ok(2) }, lt.event_loop()).unwrap();
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

/// Runs `scenario`, on a new loop whose reports are captured, in a child
/// process (this test binary, filtered to `name`) when it could abort the
/// process, and fails if the child died.
fn survives_in_a_child(name: &str, scenario: fn(&EventLoop)) {
    if std::env::var("LOOPSPEC_CHILD").as_deref() == Ok(name) {
        quiet_panics();
        let lp = vloop();
        let _seen = capture_exceptions(&lp);
        scenario(&lp);
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--test-threads=1", "--nocapture"])
        .env("LOOPSPEC_CHILD", name)
        .output()
        .expect("run the child");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let trace = |l: &&str| {
        l.trim_start().starts_with(|c: char| c.is_ascii_digit())
            || l.trim_start().starts_with("at ")
    };
    let shown: Vec<&str> = stderr.lines().filter(|l| !trace(l)).take(12).collect();
    assert!(
        out.status.success(),
        "the process died ({}):\n{}",
        out.status,
        shown.join("\n")
    );
}

/// Bug 1, fixed (found by `run_ops`): a panicking `Drop` of one queued
/// callback at `close()` stops the rest of the clean-up: the pending task is
/// neither destroyed nor reported.
/// Rules: LIFE-7, TASK-8
#[test]
fn regression_close_with_a_panicking_drop_still_destroys_and_reports_pending_tasks() {
    quiet_panics();
    let s = Scene::new();
    let seen = capture_exceptions(&s);
    let dropped = counter();
    let _task = s.task_with(DropCount(dropped.clone()), |_| sleeps_long());
    run_once(&s);
    s.call_soon(holds(PanicOnDrop(INTENTIONAL))).unwrap();
    s.close().unwrap();
    let messages = seen.messages();
    assert!(
        messages
            .iter()
            .any(|m| m == "Exception while dropping queued work"),
        "{messages:?}"
    );
    assert_eq!(
        count(&dropped),
        1,
        "LIFE-7: close() dropped the pending task's future"
    );
    assert!(
        messages
            .iter()
            .any(|m| m == "Task was destroyed but it is pending!"),
        "TASK-8: the pending task is reported: {messages:?}"
    );
}

/// Bug 1, fixed (found by `run_chain`): when a destroyed task's future
/// panics in `Drop`, the task keeps the futures it awaited (a reference
/// cycle), so the concurrent future of `run_coroutine_threadsafe` never
/// completes.
/// Rules: XTHREAD-6, LIFE-7
#[test]
fn regression_close_of_a_task_whose_future_panics_in_drop_still_fails_its_concurrent_future() {
    quiet_panics();
    let s = Scene::new();
    let _seen = capture_exceptions(&s);
    let fut = || common::Holding {
        fut: Box::pin(sleeps_long()),
        _data: PanicOnDrop(INTENTIONAL),
    };
    let cf = loopspec::run_coroutine_threadsafe_local(fut, &s).unwrap();
    run_once(&s);
    run_once(&s);
    s.close().unwrap();
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
        |lp| {
            lp.call_soon(holds(AlwaysPanicOnDrop("first"))).unwrap();
            lp.call_soon(holds(AlwaysPanicOnDrop("second"))).unwrap();
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
        |lp| {
            let remote = lp.clone();
            let joined = thread::spawn(move || {
                remote
                    .call_soon(holds(PanicOnDrop("boom at thread exit")))
                    .map(drop)
            })
            .join();
            assert!(matches!(joined, Ok(Ok(()))));
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
    let h = lp
        .call_soon_threadsafe(holds(PanicOnDrop(INTENTIONAL)))
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
    let s = Scene::new();
    let _seen = capture_exceptions(&s);
    s.call_later(2.0, holds(PanicOnDrop(INTENTIONAL)))
        .unwrap()
        .cancel();
    s.later_stop(5.0, "ran");
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| s.run_forever()));
    assert!(
        matches!(run, Ok(Ok(()))),
        "run_forever did not return normally"
    );
    assert_eq!(s.take(), ["ran"]);
    assert_eq!(s.time(), 5.0);
    s.close().unwrap();
}
