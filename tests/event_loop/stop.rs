//! STOP rules of SPEC.md: when `run_forever` returns.
//!
//! The observations reproduce section 3 (S-n) of the CPython catalogue. The
//! virtual clock makes "does not wait for a timer" a statement about
//! `lp.time()` and the log, never about wall time.

use common::{Log, recv_or_hang, run_once, vloop, wait_parked};
use loopspec::{DoneCallback, Error, EventLoop, Future, get_running_loop, yield_now};
use std::cell::Cell;
use std::rc::Rc;
use std::sync::mpsc;

/// Schedules a chain of callbacks `name1..=nameN`, one per iteration: each
/// logs itself and schedules the next. `at` is called with the tick number
/// inside each tick (after it logged).
fn chain(lp: &EventLoop, log: &Log, name: &'static str, n: usize, at: Rc<dyn Fn(usize)>) {
    fn tick(
        lp: EventLoop,
        log: Log,
        name: &'static str,
        i: usize,
        n: usize,
        at: Rc<dyn Fn(usize)>,
    ) {
        if i > n {
            return;
        }
        let lp2 = lp.clone();
        lp.call_soon(move || {
            log.push(format!("{name}{i}"));
            at(i);
            tick(lp2, log, name, i + 1, n, at);
        })
        .unwrap();
    }
    tick(lp.clone(), log.clone(), name, 1, n, at);
}

/// A callback that stops `lp` after logging `s`.
fn log_and_stop(lp: &EventLoop, log: &Log, s: &'static str) -> impl FnOnce() + 'static {
    let lp = lp.clone();
    let log = log.clone();
    move || {
        log.push(s);
        lp.stop();
    }
}

/// Sets a flag when dropped.
struct DropFlag(Rc<Cell<bool>>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

// ---------------------------------------------------------------------------
// STOP-1
// ---------------------------------------------------------------------------

/// Rules: STOP-1
#[test]
fn stop_on_idle_or_closed_loop_is_not_an_error() {
    let lp = vloop();
    // Not running: just a flag.
    lp.stop();
    lp.stop();
    assert!(!lp.is_running());
    assert!(!lp.is_closed());
    lp.close().unwrap();
    // Closed: still no error, nothing changes.
    lp.stop();
    assert!(lp.is_closed());
    assert!(!lp.is_running());
}

/// Rules: STOP-1
#[test]
fn stop_from_callback_returns_after_that_iteration() {
    let lp = vloop();
    let log = Log::new();
    let lp2 = lp.clone();
    // One tick per iteration; tick 3 requests the stop.
    chain(
        &lp,
        &log,
        "t",
        10,
        Rc::new(move |i| {
            if i == 3 {
                lp2.stop();
            }
        }),
    );
    lp.run_forever().unwrap();
    assert_eq!(log.take(), ["t1", "t2", "t3"]);
    assert!(!lp.is_running());
    // Tick 4 was scheduled by tick 3 and is still queued.
    run_once(&lp);
    assert_eq!(log.take(), ["t4"]);
}

/// Rules: STOP-1, STOP-4
#[test]
fn run_forever_return_clears_stop_flag() {
    let lp = vloop();
    let log = Log::new();
    lp.call_soon(log_and_stop(&lp, &log, "stopper")).unwrap();
    lp.run_forever().unwrap();
    assert_eq!(log.take(), ["stopper"]);
    // The flag is gone: this run waits for the timer 4 s away.
    lp.call_later(4.0, log_and_stop(&lp, &log, "timer"))
        .unwrap();
    lp.run_forever().unwrap();
    assert_eq!(log.take(), ["timer"]);
    assert_eq!(lp.time(), 4.0);
}

/// Rules: STOP-1
#[test]
fn stop_called_twice_in_one_iteration_stops_once() {
    let lp = vloop();
    let log = Log::new();
    let lp2 = lp.clone();
    lp.call_soon(move || {
        lp2.stop();
        lp2.stop();
    })
    .unwrap();
    lp.run_forever().unwrap();
    lp.call_later(1.5, log_and_stop(&lp, &log, "timer"))
        .unwrap();
    lp.run_forever().unwrap();
    assert_eq!(log.take(), ["timer"]);
    assert_eq!(lp.time(), 1.5);
}

/// A refused nested run is not a return from `run_forever`: it leaves the
/// stop flag alone (CPython clears the flag only in `run_forever`'s `finally`,
/// which a refused call never enters; checked on 3.11).
/// Rules: STOP-1
#[test]
fn refused_nested_run_keeps_stop_flag() {
    let lp = vloop();
    let log = Log::new();
    let lp2 = lp.clone();
    let log2 = log.clone();
    lp.call_soon(move || {
        lp2.stop();
        let err = lp2.run_forever().unwrap_err();
        log2.push(err.to_string());
        lp2.call_soon(log2.cb("next")).unwrap();
    })
    .unwrap();
    lp.run_forever().unwrap();
    assert_eq!(log.take(), ["This event loop is already running"]);
    run_once(&lp);
    assert_eq!(log.take(), ["next"]);
}

// ---------------------------------------------------------------------------
// STOP-2
// ---------------------------------------------------------------------------

/// Catalogue S-3: `call_soon(a)` where `a` schedules `b`; `stop()`;
/// `run_forever()` runs only `a`; the next run runs `b`.
/// Rules: STOP-2
#[test]
fn run_forever_pre_stopped_runs_exactly_one_iteration() {
    let lp = vloop();
    let log = Log::new();
    let lp2 = lp.clone();
    let log2 = log.clone();
    lp.call_soon(move || {
        log2.push("a");
        lp2.call_soon(log2.cb("b")).unwrap();
    })
    .unwrap();
    lp.stop();
    lp.run_forever().unwrap();
    assert_eq!(log.take(), ["a"]);
    assert!(!lp.is_running());
    lp.stop();
    lp.run_forever().unwrap();
    assert_eq!(log.take(), ["b"]);
}

/// Catalogue S-3: a timer 0.5 s away does not fire in a pre-stopped run, and
/// the clock does not move (poll timeout 0).
/// Rules: STOP-2, SCHED-1
#[test]
fn run_forever_pre_stopped_does_not_wait_for_timers() {
    let lp = vloop();
    let log = Log::new();
    let t = lp
        .call_later(0.5, log_and_stop(&lp, &log, "timer"))
        .unwrap();
    lp.stop();
    lp.run_forever().unwrap();
    assert_eq!(log.get(), Vec::<String>::new());
    assert_eq!(lp.time(), 0.0);
    assert!(!t.cancelled());
    // The timer is still there: a normal run waits for it.
    lp.run_forever().unwrap();
    assert_eq!(log.take(), ["timer"]);
    assert_eq!(lp.time(), 0.5);
}

/// A pre-stopped run of a loop with no work at all returns instead of waiting
/// for a submission (poll timeout 0).
/// Rules: STOP-2
#[test]
fn run_forever_pre_stopped_empty_loop_returns() {
    let lp = vloop();
    lp.stop();
    lp.run_forever().unwrap();
    assert_eq!(lp.time(), 0.0);
    assert!(!lp.is_running());
}

/// The single iteration still moves timers that are already due.
/// Rules: STOP-2
#[test]
fn run_forever_pre_stopped_runs_due_timers() {
    let lp = vloop();
    let log = Log::new();
    lp.call_later(0.5, log.cb("future")).unwrap();
    lp.call_later(0.0, log.cb("zero")).unwrap();
    lp.call_later(-1.0, log.cb("negative")).unwrap();
    lp.call_soon(log.cb("soon")).unwrap();
    lp.stop();
    lp.run_forever().unwrap();
    assert_eq!(log.take(), ["soon", "negative", "zero"]);
    assert_eq!(lp.time(), 0.0);
}

/// Catalogue S-3: calling `stop()` twice before the run behaves like once:
/// one iteration, and the next run is a normal one.
/// Rules: STOP-2
#[test]
fn stop_twice_before_run_is_same_as_once() {
    let lp = vloop();
    let log = Log::new();
    let lp2 = lp.clone();
    let log2 = log.clone();
    lp.call_soon(move || {
        log2.push("a");
        lp2.call_soon(log2.cb("b")).unwrap();
    })
    .unwrap();
    lp.stop();
    lp.stop();
    lp.run_forever().unwrap();
    assert_eq!(log.take(), ["a"]);
    // No second stop is left over: this run runs `b`, then waits for the timer.
    lp.call_later(2.0, log_and_stop(&lp, &log, "timer"))
        .unwrap();
    lp.run_forever().unwrap();
    assert_eq!(log.take(), ["b", "timer"]);
    assert_eq!(lp.time(), 2.0);
}

// ---------------------------------------------------------------------------
// STOP-3
// ---------------------------------------------------------------------------

/// Catalogue S-4: queue `[1, s, 3]` where `s` calls `stop()` then
/// `call_soon(x)`: the run executes `1, s, 3`; `x` runs in the next run.
/// Rules: STOP-3
#[test]
fn stop_from_callback_lets_batch_finish() {
    let lp = vloop();
    let log = Log::new();
    lp.call_soon(log.cb("1")).unwrap();
    let lp2 = lp.clone();
    let log2 = log.clone();
    lp.call_soon(move || {
        log2.push("s");
        lp2.stop();
        lp2.call_soon(log2.cb("x")).unwrap();
    })
    .unwrap();
    lp.call_soon(log.cb("3")).unwrap();
    lp.run_forever().unwrap();
    assert_eq!(log.take(), ["1", "s", "3"]);
    run_once(&lp);
    assert_eq!(log.take(), ["x"]);
}

/// Due timers are part of the batch: they still run after the stop, and what
/// the rest of the batch schedules waits for a later run.
/// Rules: STOP-3
#[test]
fn stop_from_callback_batch_includes_due_timers() {
    let lp = vloop();
    let log = Log::new();
    lp.call_soon(log_and_stop(&lp, &log, "s")).unwrap();
    let lp2 = lp.clone();
    let log2 = log.clone();
    lp.call_later(0.0, move || {
        log2.push("timer");
        lp2.call_soon(log2.cb("later")).unwrap();
    })
    .unwrap();
    lp.run_forever().unwrap();
    assert_eq!(log.take(), ["s", "timer"]);
    run_once(&lp);
    assert_eq!(log.take(), ["later"]);
}

/// A stop from a later iteration: everything queued before that iteration
/// began runs in it, nothing scheduled during it does.
/// Rules: STOP-3
#[test]
fn stop_in_later_iteration_defers_callbacks_scheduled_in_it() {
    let lp = vloop();
    let log = Log::new();
    let lp2 = lp.clone();
    let log2 = log.clone();
    lp.call_soon(move || {
        log2.push("a");
        let lp3 = lp2.clone();
        let log3 = log2.clone();
        lp2.call_soon(move || {
            log3.push("s");
            lp3.stop();
            lp3.call_soon(log3.cb("x")).unwrap();
        })
        .unwrap();
        lp2.call_soon(log2.cb("c")).unwrap();
    })
    .unwrap();
    lp.run_forever().unwrap();
    assert_eq!(log.take(), ["a", "s", "c"]);
    run_once(&lp);
    assert_eq!(log.take(), ["x"]);
}

/// A task that calls `stop()` in its step: the rest of the batch runs; the
/// task's next step waits for a later run.
/// Rules: STOP-3
#[test]
fn stop_from_task_lets_batch_finish() {
    let lp = vloop();
    let log = Log::new();
    let log2 = log.clone();
    let task = lp
        .create_task(async move {
            log2.push("step1");
            get_running_loop()?.stop();
            yield_now().await?;
            log2.push("step2");
            Ok(())
        })
        .unwrap();
    lp.call_soon(log.cb("after")).unwrap();
    lp.run_forever().unwrap();
    assert_eq!(log.take(), ["step1", "after"]);
    assert!(!task.done());
    run_once(&lp);
    assert_eq!(log.take(), ["step2"]);
    assert!(task.done());
}

// ---------------------------------------------------------------------------
// STOP-4
// ---------------------------------------------------------------------------

/// Catalogue S-5: after a run that a stop ended, a new `run_forever()` runs
/// until the next `stop()`, waiting for timers.
/// Rules: STOP-4
#[test]
fn run_forever_after_stopped_run_waits_for_timers() {
    let lp = vloop();
    let log = Log::new();
    lp.call_soon(log_and_stop(&lp, &log, "first")).unwrap();
    lp.run_forever().unwrap();
    assert_eq!(log.take(), ["first"]);

    lp.call_later(1.0, log.cb("t1")).unwrap();
    lp.call_later(3.0, log_and_stop(&lp, &log, "t3")).unwrap();
    lp.run_forever().unwrap();
    assert_eq!(log.take(), ["t1", "t3"]);
    assert_eq!(lp.time(), 3.0);
}

/// The same after a pre-stopped run.
/// Rules: STOP-4, STOP-2
#[test]
fn run_forever_after_pre_stopped_run_waits_for_timers() {
    let lp = vloop();
    let log = Log::new();
    lp.call_later(0.05, log_and_stop(&lp, &log, "t")).unwrap();
    lp.stop();
    lp.run_forever().unwrap();
    assert!(log.get().is_empty());
    lp.run_forever().unwrap();
    assert_eq!(log.take(), ["t"]);
    assert_eq!(lp.time(), 0.05);
}

/// Several iterations happen in the run after a stopped one.
/// Rules: STOP-4
#[test]
fn run_forever_after_stopped_run_runs_many_iterations() {
    let lp = vloop();
    let log = Log::new();
    run_once(&lp);
    let lp2 = lp.clone();
    chain(
        &lp,
        &log,
        "t",
        5,
        Rc::new(move |i| {
            if i == 5 {
                lp2.stop();
            }
        }),
    );
    lp.run_forever().unwrap();
    assert_eq!(log.take(), ["t1", "t2", "t3", "t4", "t5"]);
}

// ---------------------------------------------------------------------------
// STOP-5
// ---------------------------------------------------------------------------

/// Spawns a thread that makes `lp` its home, signals from inside the running
/// loop, and runs `run_forever` until something else stops it. Returns the
/// join handle; `rx` receives once the loop runs.
fn run_in_thread(
    lp: &EventLoop,
    setup: impl FnOnce(&EventLoop) + Send + 'static,
) -> (
    std::thread::JoinHandle<loopspec::Result<()>>,
    mpsc::Receiver<()>,
) {
    let (tx, rx) = mpsc::channel();
    let lp_t = lp.clone();
    let th = std::thread::Builder::new()
        .name("loop-thread".into())
        .spawn(move || {
            setup(&lp_t);
            lp_t.call_soon(move || tx.send(()).unwrap()).unwrap();
            lp_t.run_forever()
        })
        .unwrap();
    (th, rx)
}

/// loopspec's `stop()` is thread-safe and wakes a parked loop: the test waits
/// until a real-clock loop with nothing to do has parked with no timeout (on
/// the loop's own `inbox_stats().parks` counter, not on time), stops it from
/// this thread, and the run returns. (If the wake-up were lost this test would
/// hang; nothing else can end the run.)
/// Rules: STOP-5
#[test]
fn stop_from_other_thread_wakes_parked_loop() {
    let lp = EventLoop::new();
    let (th, rx) = run_in_thread(&lp, |_| {});
    recv_or_hang(&rx, "the loop thread started its run");
    wait_parked(&lp, 1);
    assert_eq!(lp.inbox_stats().wakeups, 0);
    lp.stop();
    th.join().unwrap().unwrap();
    assert!(!lp.is_running());
    // The one park was ended by the one wake-up this thread's call issued.
    let stats = lp.inbox_stats();
    assert_eq!((stats.parks, stats.wakeups), (1, 1), "{stats:?}");
    lp.close().unwrap();
}

/// The portable form: `call_soon_threadsafe(stop)` from another thread ends
/// the blocked `run_forever`. The submission is made only once the loop has
/// parked (waited for on its `inbox_stats().parks` counter, not on time), so
/// it has to wake the parked loop.
/// Rules: STOP-5
#[test]
fn call_soon_threadsafe_stop_ends_parked_loop() {
    let lp = EventLoop::new();
    let (th, rx) = run_in_thread(&lp, |_| {});
    recv_or_hang(&rx, "the loop thread started its run");
    wait_parked(&lp, 1);
    assert_eq!(lp.inbox_stats().wakeups, 0);
    let lp2 = lp.clone();
    lp.call_soon_threadsafe(move || lp2.stop()).unwrap();
    th.join().unwrap().unwrap();
    assert!(!lp.is_running());
    // The one park was ended by the one wake-up this thread's call issued.
    let stats = lp.inbox_stats();
    assert_eq!((stats.parks, stats.wakeups), (1, 1), "{stats:?}");
    lp.close().unwrap();
}

/// A plain `stop()` from another thread does not wait for the next timer: a
/// real-clock loop whose only timer is three days away, stopped once it has
/// parked until that timer (waited for on its `inbox_stats().parks` counter,
/// not on time), returns at once.
/// Rules: STOP-5
#[test]
fn stop_from_other_thread_does_not_wait_for_far_timer() {
    let lp = EventLoop::new();
    let fired = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let f = fired.clone();
    let (th, rx) = run_in_thread(&lp, move |lp| {
        lp.call_later(3.0 * 86400.0, move || {
            f.store(true, std::sync::atomic::Ordering::SeqCst)
        })
        .unwrap();
    });
    recv_or_hang(&rx, "the loop thread started its run");
    wait_parked(&lp, 1);
    assert_eq!(lp.inbox_stats().wakeups, 0);
    lp.stop();
    th.join().unwrap().unwrap();
    assert!(!lp.is_running());
    // The one park was ended by the one wake-up this thread's call issued.
    let stats = lp.inbox_stats();
    assert_eq!((stats.parks, stats.wakeups), (1, 1), "{stats:?}");
    assert!(!fired.load(std::sync::atomic::Ordering::SeqCst));
    lp.close().unwrap();
}

// ---------------------------------------------------------------------------
// STOP-6
// ---------------------------------------------------------------------------

/// Catalogue S-7: the coroutine queues `lvl1`, which queues `lvl2`. The run
/// ends with the iteration that holds the stop callback and `lvl1`; `lvl2`
/// never runs before `close()`, which drops it.
/// Rules: STOP-6
#[test]
fn run_until_complete_leaves_last_iteration_callbacks_queued() {
    let lp = vloop();
    let log = Log::new();
    let dropped = Rc::new(Cell::new(false));
    let log2 = log.clone();
    let d2 = dropped.clone();
    let result = lp
        .run_until_complete(async move {
            let lp = get_running_loop()?;
            let lp2 = lp.clone();
            lp.call_soon(move || {
                log2.push("lvl1");
                let guard = DropFlag(d2);
                let log3 = log2.clone();
                lp2.call_soon(move || {
                    let _g = &guard;
                    log3.push("lvl2");
                })
                .unwrap();
            })?;
            Ok("done")
        })
        .unwrap();
    assert_eq!(result, "done");
    assert_eq!(log.get(), ["lvl1"]);
    assert!(!dropped.get());
    lp.close().unwrap();
    assert_eq!(log.get(), ["lvl1"]);
    assert!(dropped.get());
}

/// The last iteration runs everything queued before it ended — including
/// what the completing callback queued after `set_result` — and nothing
/// queued during it.
/// Rules: STOP-6
#[test]
fn run_until_complete_runs_one_more_iteration_after_done() {
    let lp = vloop();
    let log = Log::new();
    let fut: Future<i32> = lp.create_future();
    let f2 = fut.clone();
    let lp2 = lp.clone();
    let log2 = log.clone();
    lp.call_soon(move || {
        f2.set_result(1).unwrap();
        let lp3 = lp2.clone();
        let log3 = log2.clone();
        lp2.call_soon(move || {
            log3.push("b");
            lp3.call_soon(log3.cb("c")).unwrap();
        })
        .unwrap();
    })
    .unwrap();
    assert_eq!(lp.run_until_complete(fut).unwrap(), 1);
    assert_eq!(log.take(), ["b"]);
    run_once(&lp);
    assert_eq!(log.take(), ["c"]);
}

/// Counting iterations with one tick per iteration: the future completes in
/// tick 2, the stop callback runs in iteration 3, and the run returns.
/// Rules: STOP-6
#[test]
fn run_until_complete_returns_one_iteration_after_completion() {
    let lp = vloop();
    let log = Log::new();
    let fut: Future<&'static str> = lp.create_future();
    let f2 = fut.clone();
    chain(
        &lp,
        &log,
        "t",
        100,
        Rc::new(move |i| {
            if i == 2 {
                f2.set_result("v").unwrap();
            }
        }),
    );
    assert_eq!(lp.run_until_complete(fut).unwrap(), "v");
    assert_eq!(log.take(), ["t1", "t2", "t3"]);
    run_once(&lp);
    assert_eq!(log.take(), ["t4"]);
}

/// The stop callback is removed when the run ends: completing the future
/// later does not stop an unrelated run (verified on CPython 3.11).
/// Rules: STOP-6, STOP-7
#[test]
fn run_until_complete_removes_its_stop_callback() {
    let lp = vloop();
    let log = Log::new();
    let fut: Future<i32> = lp.create_future();
    lp.stop();
    assert_eq!(
        lp.run_until_complete(fut.clone()).unwrap_err(),
        Error::StoppedBeforeComplete
    );
    let f2 = fut.clone();
    lp.call_soon(move || f2.set_result(5).unwrap()).unwrap();
    lp.call_later(0.1, log.cb("t0.1")).unwrap();
    lp.call_later(0.3, log_and_stop(&lp, &log, "t0.3")).unwrap();
    lp.run_forever().unwrap();
    assert_eq!(log.take(), ["t0.1", "t0.3"]);
    assert_eq!(lp.time(), 0.3);
    assert_eq!(fut.result().unwrap(), 5);
}

/// Other done callbacks of the future are kept: only the stop callback is
/// removed.
/// Rules: STOP-6
#[test]
fn run_until_complete_keeps_other_done_callbacks() {
    let lp = vloop();
    let log = Log::new();
    let fut: Future<i32> = lp.create_future();
    let log2 = log.clone();
    let cb: DoneCallback<i32> = Rc::new(move |f: &Future<i32>| {
        log2.push(format!("done {}", f.result().unwrap()));
    });
    fut.add_done_callback(cb).unwrap();
    let f2 = fut.clone();
    lp.call_later(1.0, move || f2.set_result(3).unwrap())
        .unwrap();
    assert_eq!(lp.run_until_complete(fut).unwrap(), 3);
    // Registered before the stop callback, it ran in the same last iteration.
    assert_eq!(log.take(), ["done 3"]);
    assert_eq!(lp.time(), 1.0);
}

// ---------------------------------------------------------------------------
// STOP-7
// ---------------------------------------------------------------------------

/// Catalogue S-8: `stop(); run_until_complete(task needing 2 steps)` fails
/// with `RuntimeError: Event loop stopped before Future completed.`; the task
/// stays pending and a second `run_until_complete(task)` returns its value.
/// Rules: STOP-7
#[test]
fn run_until_complete_after_stop_fails_and_task_can_finish_later() {
    let lp = vloop();
    let task = lp
        .create_task(async {
            yield_now().await?;
            Ok("two")
        })
        .unwrap();
    lp.stop();
    let err = lp.run_until_complete(task.clone()).unwrap_err();
    assert_eq!(err, Error::StoppedBeforeComplete);
    assert_eq!(
        err.to_string(),
        "Event loop stopped before Future completed."
    );
    assert_eq!(err.python_type(), "RuntimeError");
    assert!(!task.done());
    assert!(!task.cancelled());
    assert!(!lp.is_running());
    assert_eq!(lp.run_until_complete(task.clone()).unwrap(), "two");
    assert!(task.done());
}

/// The coroutine itself calls `stop()` before it is done.
/// Rules: STOP-7
#[test]
fn run_until_complete_fails_when_coroutine_stops_loop() {
    let lp = vloop();
    let task = lp
        .create_task(async {
            get_running_loop()?.stop();
            yield_now().await?;
            Ok(7)
        })
        .unwrap();
    let err = lp.run_until_complete(task.clone()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Event loop stopped before Future completed."
    );
    assert_eq!(err.python_type(), "RuntimeError");
    assert!(!task.done());
    assert_eq!(lp.run_until_complete(task).unwrap(), 7);
}

/// The same with a coroutine passed directly and with a plain future.
/// Rules: STOP-7
#[test]
fn run_until_complete_stopped_before_future_done() {
    let lp = vloop();
    let err = lp
        .run_until_complete(async {
            get_running_loop()?.stop();
            yield_now().await?;
            Ok(())
        })
        .unwrap_err();
    assert_eq!(err, Error::StoppedBeforeComplete);

    let fut: Future<u8> = lp.create_future();
    lp.stop();
    let err = lp.run_until_complete(fut.clone()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Event loop stopped before Future completed."
    );
    assert!(!fut.done());
    assert!(!fut.cancelled());
    // It can still be completed and awaited by a later run.
    let f2 = fut.clone();
    lp.call_soon(move || f2.set_result(9).unwrap()).unwrap();
    assert_eq!(lp.run_until_complete(fut).unwrap(), 9);
}

/// A stop from an unrelated callback during `run_until_complete` also ends it
/// early.
/// Rules: STOP-7
#[test]
fn run_until_complete_stopped_by_callback_before_timer_completes_future() {
    let lp = vloop();
    let fut: Future<u8> = lp.create_future();
    let f2 = fut.clone();
    lp.call_later(5.0, move || f2.set_result(1).unwrap())
        .unwrap();
    let lp2 = lp.clone();
    lp.call_later(2.0, move || lp2.stop()).unwrap();
    let err = lp.run_until_complete(fut.clone()).unwrap_err();
    assert_eq!(err, Error::StoppedBeforeComplete);
    assert_eq!(lp.time(), 2.0);
    assert!(!fut.done());
    assert_eq!(lp.run_until_complete(fut).unwrap(), 1);
    assert_eq!(lp.time(), 5.0);
}

// ---------------------------------------------------------------------------
// STOP-8
// ---------------------------------------------------------------------------

/// Catalogue S-9: `stop(); run_until_complete(coro)` with a one-step coroutine
/// returns the result; the stop callback stays queued, so the next
/// `run_forever()` returns after one iteration and a timer 0.2 s away does not
/// fire.
/// Rules: STOP-8
#[test]
fn stale_stop_ends_next_run_after_one_iteration() {
    let lp = vloop();
    let log = Log::new();
    lp.stop();
    assert_eq!(lp.run_until_complete(async { Ok(42) }).unwrap(), 42);
    assert!(!lp.is_running());

    lp.call_later(0.2, log_and_stop(&lp, &log, "timer"))
        .unwrap();
    let lp2 = lp.clone();
    let log2 = log.clone();
    lp.call_soon(move || {
        log2.push("a");
        lp2.call_soon(log2.cb("b")).unwrap();
    })
    .unwrap();
    // Not pre-stopped, yet it returns after one iteration.
    lp.run_forever().unwrap();
    assert_eq!(log.take(), ["a"]);
    assert_eq!(lp.time(), 0.0);

    // The stale stop is used up: the next run is normal.
    lp.run_forever().unwrap();
    assert_eq!(log.take(), ["b", "timer"]);
    assert_eq!(lp.time(), 0.2);
}

/// The same with a task that finishes in its first step.
/// Rules: STOP-8
#[test]
fn stale_stop_after_one_step_task() {
    let lp = vloop();
    let log = Log::new();
    let task = lp.create_task(async { Ok("one") }).unwrap();
    lp.stop();
    assert_eq!(lp.run_until_complete(task.clone()).unwrap(), "one");
    assert!(task.done());
    lp.call_later(0.2, log_and_stop(&lp, &log, "timer"))
        .unwrap();
    lp.run_forever().unwrap();
    assert!(log.get().is_empty());
    assert_eq!(lp.time(), 0.0);
    lp.run_forever().unwrap();
    assert_eq!(log.take(), ["timer"]);
}
