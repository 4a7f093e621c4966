//! SCHED rules of SPEC.md: the iteration, callbacks and timers.
//!
//! The observations reproduce section 4 (C-n) of the CPython catalogue, and the
//! iteration anatomy of S-2. Everything runs on the virtual clock, so "the
//! loop did not wait" is checked through `lp.time()`.

use common::{Log, capture_exceptions, run_once, vloop};
use loopspec::{DoneCallback, Error, EventLoop, ExceptionContext, ExceptionHandler, Future, sleep};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A callback that stops `lp` after logging `s`.
fn log_and_stop(lp: &EventLoop, log: &Log, s: &'static str) -> impl FnOnce() + 'static {
    let lp = lp.clone();
    let log = log.clone();
    move || {
        log.push(s);
        lp.stop();
    }
}

/// A callback that logs `s` with the loop time at which it ran.
fn log_time(lp: &EventLoop, log: &Log, s: &'static str) -> impl FnOnce() + 'static {
    let lp = lp.clone();
    let log = log.clone();
    move || log.push(format!("{s}@{}", lp.time()))
}

/// Brings a virtual loop's clock to `t` (a timer that stops the run).
fn advance_to(lp: &EventLoop, t: f64) {
    let lp2 = lp.clone();
    lp.call_at(t, move || lp2.stop()).unwrap();
    lp.run_forever().unwrap();
    assert_eq!(lp.time(), t);
}

// ---------------------------------------------------------------------------
// SCHED-1
// ---------------------------------------------------------------------------

/// Step 1: a ready callback makes the poll timeout 0 — the clock does not
/// jump to the timer 5 s away in that iteration.
/// Rules: SCHED-1
#[test]
fn iteration_timeout_is_zero_when_callback_ready() {
    let lp = vloop();
    let log = Log::new();
    lp.call_later(5.0, log_and_stop(&lp, &log, "timer"))
        .unwrap();
    lp.call_soon(log_and_stop(&lp, &log, "ready")).unwrap();
    lp.run_forever().unwrap();
    assert_eq!(log.take(), ["ready"]);
    assert_eq!(lp.time(), 0.0);
    lp.run_forever().unwrap();
    assert_eq!(log.take(), ["timer"]);
    assert_eq!(lp.time(), 5.0);
}

/// Step 1: a requested stop makes the poll timeout 0.
/// Rules: SCHED-1, STOP-2
#[test]
fn iteration_timeout_is_zero_when_stop_requested() {
    let lp = vloop();
    let log = Log::new();
    lp.call_later(5.0, log.cb("timer")).unwrap();
    lp.stop();
    lp.run_forever().unwrap();
    assert!(log.get().is_empty());
    assert_eq!(lp.time(), 0.0);
}

/// Step 1: with nothing ready, the timeout is the time until the earliest
/// timer, whatever the scheduling order.
/// Rules: SCHED-1, CLOCK-2
#[test]
fn iteration_waits_until_earliest_timer() {
    let lp = vloop();
    let log = Log::new();
    lp.call_later(2.5, log_time(&lp, &log, "late")).unwrap();
    lp.call_later(1.0, log_time(&lp, &log, "early")).unwrap();
    lp.call_later(4.0, log_and_stop(&lp, &log, "end")).unwrap();
    lp.run_forever().unwrap();
    assert_eq!(log.take(), ["early@1", "late@2.5", "end"]);
    assert_eq!(lp.time(), 4.0);
}

/// Step 1: the timeout is clamped to one day; a timer three and a half days
/// away is still reached, exactly.
/// Rules: SCHED-1, CLOCK-3
#[test]
fn iteration_timeout_is_clamped_but_far_timer_is_reached() {
    let lp = vloop();
    let log = Log::new();
    let when = 3.5 * 86400.0;
    let t = lp.call_later(when, log_and_stop(&lp, &log, "far")).unwrap();
    assert_eq!(t.when(), when);
    lp.run_forever().unwrap();
    assert_eq!(log.take(), ["far"]);
    assert_eq!(lp.time(), when);
}

/// Steps 2 then 3: what arrived from another thread joins the ready queue
/// before the due timers (CPython 3.11 ran `['a', 'x', 't']`).
/// Rules: SCHED-1
#[test]
fn iteration_appends_arrivals_before_due_timers() {
    let lp = vloop();
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let l = log.clone();
    lp.call_later(0.0, move || l.lock().unwrap().push("t".into()))
        .unwrap();
    let l = log.clone();
    lp.call_soon(move || l.lock().unwrap().push("a".into()))
        .unwrap();
    let lp2 = lp.clone();
    let l = log.clone();
    std::thread::spawn(move || {
        lp2.call_soon_threadsafe(move || l.lock().unwrap().push("x".into()))
            .unwrap();
    })
    .join()
    .unwrap();
    run_once(&lp);
    assert_eq!(*log.lock().unwrap(), ["a", "x", "t"]);
}

/// Step 3: due timers go to the end of the ready queue, after callbacks that
/// were ready, in deadline order.
/// Rules: SCHED-1, SCHED-4
#[test]
fn iteration_appends_due_timers_after_ready_callbacks() {
    let lp = vloop();
    let log = Log::new();
    lp.call_later(-1.0, log.cb("timer-1")).unwrap();
    lp.call_later(-3.0, log.cb("timer-3")).unwrap();
    lp.call_soon(log.cb("soon1")).unwrap();
    lp.call_soon(log.cb("soon2")).unwrap();
    run_once(&lp);
    assert_eq!(log.take(), ["soon1", "soon2", "timer-3", "timer-1"]);
}

/// Step 4: callbacks scheduled by the batch wait for the next iteration.
/// Rules: SCHED-1
#[test]
fn callbacks_scheduled_during_batch_wait_for_next_iteration() {
    let lp = vloop();
    let log = Log::new();
    let lp2 = lp.clone();
    let log2 = log.clone();
    lp.call_soon(move || {
        log2.push("a");
        lp2.call_soon(log2.cb("b")).unwrap();
    })
    .unwrap();
    lp.call_soon(log.cb("a2")).unwrap();
    run_once(&lp);
    assert_eq!(log.take(), ["a", "a2"]);
    run_once(&lp);
    assert_eq!(log.take(), ["b"]);
}

/// Step 4: done callbacks of a future completed in the batch wait too
/// (CPython: `['set', 'after']`, then `['done']`).
/// Rules: SCHED-1
#[test]
fn done_callbacks_from_batch_wait_for_next_iteration() {
    let lp = vloop();
    let log = Log::new();
    let fut: Future<i32> = lp.create_future();
    let log2 = log.clone();
    let cb: DoneCallback<i32> = Rc::new(move |_f: &Future<i32>| log2.push("done"));
    fut.add_done_callback(cb).unwrap();
    let f2 = fut.clone();
    let log2 = log.clone();
    lp.call_soon(move || {
        f2.set_result(1).unwrap();
        log2.push("set");
    })
    .unwrap();
    lp.call_soon(log.cb("after")).unwrap();
    run_once(&lp);
    assert_eq!(log.take(), ["set", "after"]);
    run_once(&lp);
    assert_eq!(log.take(), ["done"]);
}

/// Step 4: `call_soon_threadsafe` from the loop's own thread, during the
/// batch, waits for the next iteration.
/// Rules: SCHED-1
#[test]
fn call_soon_threadsafe_on_loop_thread_waits_for_next_iteration() {
    let lp = vloop();
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let lp2 = lp.clone();
    let l = log.clone();
    lp.call_soon(move || {
        l.lock().unwrap().push("a".into());
        let l2 = l.clone();
        lp2.call_soon_threadsafe(move || l2.lock().unwrap().push("ts".into()))
            .unwrap();
    })
    .unwrap();
    let l = log.clone();
    lp.call_soon(move || l.lock().unwrap().push("a2".into()))
        .unwrap();
    run_once(&lp);
    assert_eq!(std::mem::take(&mut *log.lock().unwrap()), ["a", "a2"]);
    run_once(&lp);
    assert_eq!(std::mem::take(&mut *log.lock().unwrap()), ["ts"]);
}

/// Step 4: a submission from another thread that arrives while the batch
/// runs waits for the next iteration, and keeps its place before work the
/// loop thread queued after it (CPython: `['a', 'a2']`, then `['x', 'y']`).
/// Rules: SCHED-1
#[test]
fn submissions_from_other_thread_during_batch_wait_for_next_iteration() {
    let lp = vloop();
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let lp2 = lp.clone();
    let l = log.clone();
    lp.call_soon(move || {
        let lp3 = lp2.clone();
        let l2 = l.clone();
        std::thread::spawn(move || {
            lp3.call_soon_threadsafe(move || l2.lock().unwrap().push("x".into()))
                .unwrap();
        })
        .join()
        .unwrap();
        let l2 = l.clone();
        lp2.call_soon(move || l2.lock().unwrap().push("y".into()))
            .unwrap();
        l.lock().unwrap().push("a".into());
    })
    .unwrap();
    let l = log.clone();
    lp.call_soon(move || l.lock().unwrap().push("a2".into()))
        .unwrap();
    run_once(&lp);
    assert_eq!(std::mem::take(&mut *log.lock().unwrap()), ["a", "a2"]);
    run_once(&lp);
    assert_eq!(std::mem::take(&mut *log.lock().unwrap()), ["x", "y"]);
}

/// Step 3 happens before the batch: a zero-delay timer scheduled by a
/// callback of the batch waits for the next iteration (CPython:
/// `['a', 'due']`, then `['t']`).
/// Rules: SCHED-1, SCHED-4
#[test]
fn timers_scheduled_during_batch_wait_for_next_iteration() {
    let lp = vloop();
    let log = Log::new();
    let lp2 = lp.clone();
    let log2 = log.clone();
    lp.call_soon(move || {
        log2.push("a");
        lp2.call_later(0.0, log2.cb("t")).unwrap();
    })
    .unwrap();
    lp.call_later(-1.0, log.cb("due")).unwrap();
    run_once(&lp);
    assert_eq!(log.take(), ["a", "due"]);
    run_once(&lp);
    assert_eq!(log.take(), ["t"]);
}

/// Step 4: the batch is counted at its start; entries cancelled by earlier
/// entries of the batch are skipped, and what the batch adds is not run.
/// Rules: SCHED-1, SCHED-3
#[test]
fn batch_skips_cancelled_entries_and_runs_only_counted_ones() {
    let lp = vloop();
    let log = Log::new();
    let victim = Rc::new(std::cell::RefCell::new(None::<loopspec::Handle>));
    let v2 = victim.clone();
    let lp2 = lp.clone();
    let log2 = log.clone();
    lp.call_soon(move || {
        log2.push("a");
        v2.borrow().as_ref().unwrap().cancel();
        lp2.call_soon(log2.cb("d")).unwrap();
    })
    .unwrap();
    *victim.borrow_mut() = Some(lp.call_soon(log.cb("victim")).unwrap());
    lp.call_soon(log.cb("c")).unwrap();
    run_once(&lp);
    assert_eq!(log.take(), ["a", "c"]);
    run_once(&lp);
    assert_eq!(log.take(), ["d"]);
}

// ---------------------------------------------------------------------------
// SCHED-2
// ---------------------------------------------------------------------------

/// Catalogue C-1: `call_soon(cb) x5` runs `[0, 1, 2, 3, 4]`.
/// Rules: SCHED-2
#[test]
fn call_soon_runs_in_fifo_order() {
    let lp = vloop();
    let log = Log::new();
    let handles: Vec<_> = (0..5)
        .map(|i| lp.call_soon(log.cb(i.to_string())).unwrap())
        .collect();
    assert!(handles.iter().all(|h| !h.cancelled()));
    assert!(log.get().is_empty(), "call_soon never runs inline");
    run_once(&lp);
    assert_eq!(log.take(), ["0", "1", "2", "3", "4"]);
}

/// Callbacks scheduled by callbacks keep their scheduling order too.
/// Rules: SCHED-2
#[test]
fn call_soon_fifo_across_iterations() {
    let lp = vloop();
    let log = Log::new();
    for name in ["a", "b"] {
        let lp2 = lp.clone();
        let log2 = log.clone();
        lp.call_soon(move || {
            log2.push(name);
            lp2.call_soon(log2.cb(format!("{name}1"))).unwrap();
            lp2.call_soon(log2.cb(format!("{name}2"))).unwrap();
        })
        .unwrap();
    }
    run_once(&lp);
    run_once(&lp);
    assert_eq!(log.take(), ["a", "b", "a1", "a2", "b1", "b2"]);
}

// ---------------------------------------------------------------------------
// SCHED-3
// ---------------------------------------------------------------------------

/// Rules: SCHED-3
#[test]
fn handle_cancel_before_run_prevents_it() {
    let lp = vloop();
    let log = Log::new();
    let h = lp.call_soon(log.cb("cancelled")).unwrap();
    lp.call_soon(log.cb("kept")).unwrap();
    assert!(!h.cancelled());
    h.cancel();
    assert!(h.cancelled());
    run_once(&lp);
    assert_eq!(log.take(), ["kept"]);
    run_once(&lp);
    assert!(log.get().is_empty());
}

/// Catalogue C-2: a cancel from an earlier callback of the same batch
/// prevents the run.
/// Rules: SCHED-3
#[test]
fn handle_cancel_from_earlier_callback_in_same_batch() {
    let lp = vloop();
    let log = Log::new();
    let slot = Rc::new(std::cell::RefCell::new(None::<loopspec::Handle>));
    let s2 = slot.clone();
    let log2 = log.clone();
    lp.call_soon(move || {
        log2.push("first");
        s2.borrow().as_ref().unwrap().cancel();
    })
    .unwrap();
    let h = lp.call_soon(log.cb("second")).unwrap();
    *slot.borrow_mut() = Some(h.clone());
    lp.call_soon(log.cb("third")).unwrap();
    run_once(&lp);
    assert_eq!(log.take(), ["first", "third"]);
    assert!(h.cancelled());
}

/// Catalogue C-2: cancelling after the run does nothing and raises nothing;
/// `cancelled()` is then true anyway.
/// Rules: SCHED-3
#[test]
fn handle_cancel_after_run_is_noop() {
    let lp = vloop();
    let log = Log::new();
    let h = lp.call_soon(log.cb("ran")).unwrap();
    run_once(&lp);
    assert_eq!(log.take(), ["ran"]);
    h.cancel();
    h.cancel();
    assert!(h.cancelled());
    run_once(&lp);
    assert!(log.get().is_empty());

    let t = lp.call_later(0.0, log.cb("timer")).unwrap();
    run_once(&lp);
    assert_eq!(log.take(), ["timer"]);
    t.cancel();
    assert!(t.cancelled());
}

/// A timer cancelled before it is due never runs; the loop no longer waits
/// for it either.
/// Rules: SCHED-3
#[test]
fn timer_handle_cancel_before_due_prevents_it() {
    let lp = vloop();
    let log = Log::new();
    let t = lp.call_later(1.0, log.cb("timer")).unwrap();
    t.cancel();
    assert!(t.cancelled());
    lp.call_later(2.0, log_and_stop(&lp, &log, "end")).unwrap();
    lp.run_forever().unwrap();
    assert_eq!(log.take(), ["end"]);
    assert_eq!(lp.time(), 2.0);
}

/// A due timer already moved into the batch is still skipped when an earlier
/// callback of the batch cancels it.
/// Rules: SCHED-3
#[test]
fn timer_handle_cancel_from_earlier_callback_in_same_batch() {
    let lp = vloop();
    let log = Log::new();
    let slot = Rc::new(std::cell::RefCell::new(None::<loopspec::TimerHandle>));
    let s2 = slot.clone();
    let log2 = log.clone();
    lp.call_soon(move || {
        log2.push("canceller");
        s2.borrow().as_ref().unwrap().cancel();
    })
    .unwrap();
    *slot.borrow_mut() = Some(lp.call_later(0.0, log.cb("timer")).unwrap());
    lp.call_later(0.0, log.cb("other")).unwrap();
    run_once(&lp);
    assert_eq!(log.take(), ["canceller", "other"]);
}

/// Handles are `Send`: a cancel from another thread, before the run, works.
/// Rules: SCHED-3
#[test]
fn handle_cancel_from_other_thread() {
    let lp = vloop();
    let log = Log::new();
    let h = lp.call_soon(log.cb("cancelled")).unwrap();
    let t = lp.call_later(0.0, log.cb("timer")).unwrap();
    std::thread::spawn(move || {
        h.cancel();
        t.cancel();
    })
    .join()
    .unwrap();
    lp.call_soon(log.cb("kept")).unwrap();
    run_once(&lp);
    assert_eq!(log.take(), ["kept"]);
}

// ---------------------------------------------------------------------------
// SCHED-4
// ---------------------------------------------------------------------------

/// `when()` is the absolute loop time.
/// Rules: SCHED-4
#[test]
fn timer_when_is_absolute_loop_time() {
    let lp = vloop();
    assert_eq!(lp.call_later(2.5, || ()).unwrap().when(), 2.5);
    assert_eq!(lp.call_at(7.0, || ()).unwrap().when(), 7.0);
    advance_to(&lp, 10.0);
    assert_eq!(lp.call_later(1.0, || ()).unwrap().when(), 11.0);
    assert_eq!(lp.call_later(0.0, || ()).unwrap().when(), 10.0);
    assert_eq!(lp.call_later(-5.0, || ()).unwrap().when(), 5.0);
    assert_eq!(lp.call_at(3.0, || ()).unwrap().when(), 3.0);
}

/// Zero and negative delays and past deadlines are allowed: the timer is due
/// at once and runs in the next iteration, not inline.
/// Rules: SCHED-4
#[test]
fn zero_and_negative_delays_run_in_next_iteration() {
    let lp = vloop();
    let log = Log::new();
    advance_to(&lp, 100.0);
    lp.call_later(0.0, log.cb("zero")).unwrap();
    lp.call_later(-5.0, log.cb("negative")).unwrap();
    lp.call_at(50.0, log.cb("past")).unwrap();
    assert!(log.get().is_empty());
    run_once(&lp);
    assert_eq!(log.take(), ["past", "negative", "zero"]);
    assert_eq!(lp.time(), 100.0);
}

/// Catalogue C-4: `call_later(0, later0); call_soon(soon);
/// call_at(t-10, at_past); call_later(-5, later_neg); call_soon(soon2)` ran
/// `['soon', 'soon2', 'at-past', 'later-neg', 'later0']`.
/// Rules: SCHED-4, SCHED-1
#[test]
fn due_timers_run_after_ready_callbacks_in_deadline_order() {
    for start in [0.0, 1000.0] {
        let lp = vloop();
        if start > 0.0 {
            advance_to(&lp, start);
        }
        let log = Log::new();
        let t = lp.time();
        lp.call_later(0.0, log.cb("later0")).unwrap();
        lp.call_soon(log.cb("soon")).unwrap();
        lp.call_at(t - 10.0, log.cb("at-past")).unwrap();
        lp.call_later(-5.0, log.cb("later-neg")).unwrap();
        lp.call_soon(log.cb("soon2")).unwrap();
        run_once(&lp);
        assert_eq!(
            log.take(),
            ["soon", "soon2", "at-past", "later-neg", "later0"]
        );
    }
}

/// Catalogue C-4: `call_later(-1, a); call_later(-2, b)` runs `b, a`.
/// Rules: SCHED-4
#[test]
fn negative_delays_run_in_deadline_order() {
    let lp = vloop();
    let log = Log::new();
    lp.call_later(-1.0, log.cb("a")).unwrap();
    lp.call_later(-2.0, log.cb("b")).unwrap();
    run_once(&lp);
    assert_eq!(log.take(), ["b", "a"]);
}

/// Future timers run in deadline order, each when the clock reaches it.
/// Rules: SCHED-4
#[test]
fn timers_run_in_deadline_order_not_scheduling_order() {
    let lp = vloop();
    let log = Log::new();
    lp.call_later(3.0, log_time(&lp, &log, "c")).unwrap();
    lp.call_at(1.0, log_time(&lp, &log, "a")).unwrap();
    lp.call_later(2.0, log_time(&lp, &log, "b")).unwrap();
    lp.call_later(3.5, log_and_stop(&lp, &log, "end")).unwrap();
    lp.run_forever().unwrap();
    assert_eq!(log.take(), ["a@1", "b@2", "c@3", "end"]);
}

// ---------------------------------------------------------------------------
// SCHED-5
// ---------------------------------------------------------------------------

/// loopspec's refinement: equal deadlines run in scheduling order (CPython's
/// heap ran 10 such timers as `[0, 2, 6, 5, 9, 8, 7, 1, 3, 4]`).
/// Rules: SCHED-5
#[test]
fn equal_deadline_timers_run_in_scheduling_order() {
    let lp = vloop();
    let log = Log::new();
    for i in 0..10 {
        if i % 2 == 0 {
            lp.call_at(1.0, log.cb(i.to_string())).unwrap();
        } else {
            lp.call_later(1.0, log.cb(i.to_string())).unwrap();
        }
    }
    let expected: Vec<String> = (0..10).map(|i| i.to_string()).collect();
    lp.call_later(2.0, {
        let lp = lp.clone();
        move || lp.stop()
    })
    .unwrap();
    lp.run_forever().unwrap();
    assert_eq!(log.take(), expected);
}

/// The same for timers that are already due, and with a cancelled one among
/// them.
/// Rules: SCHED-5
#[test]
fn equal_deadline_due_timers_run_in_scheduling_order() {
    let lp = vloop();
    let log = Log::new();
    let handles: Vec<_> = (0..3)
        .map(|i| lp.call_later(-1.0, log.cb(i.to_string())).unwrap())
        .collect();
    lp.call_at(-1.0, log.cb("3")).unwrap();
    handles[1].cancel();
    run_once(&lp);
    assert_eq!(log.take(), ["0", "2", "3"]);
}

// ---------------------------------------------------------------------------
// SCHED-6
// ---------------------------------------------------------------------------

fn assert_nan_error(err: Error) {
    assert_eq!(err, Error::NanTime);
    assert_eq!(err.to_string(), "delay must not be NaN");
    assert_eq!(err.python_type(), "ValueError");
}

/// Rules: SCHED-6
#[test]
fn call_later_nan_is_refused() {
    let lp = vloop();
    let log = Log::new();
    assert_nan_error(lp.call_later(f64::NAN, log.cb("nan")).unwrap_err());
    assert_nan_error(lp.call_later(-f64::NAN, log.cb("nan")).unwrap_err());
    // Nothing was scheduled: the next timer is reached normally.
    lp.call_later(1.0, log_and_stop(&lp, &log, "ok")).unwrap();
    lp.run_forever().unwrap();
    assert_eq!(log.take(), ["ok"]);
    assert_eq!(lp.time(), 1.0);
}

/// Rules: SCHED-6
#[test]
fn call_at_nan_is_refused() {
    let lp = vloop();
    let log = Log::new();
    assert_nan_error(lp.call_at(f64::NAN, log.cb("nan")).unwrap_err());
    lp.call_at(0.5, log_and_stop(&lp, &log, "ok")).unwrap();
    lp.run_forever().unwrap();
    assert_eq!(log.take(), ["ok"]);
    assert_eq!(lp.time(), 0.5);
}

/// Rules: SCHED-6
#[test]
fn sleep_nan_is_refused() {
    let lp = vloop();
    let err = lp
        .run_until_complete(async { sleep(f64::NAN).await })
        .unwrap_err();
    assert_nan_error(err);
    assert_eq!(lp.time(), 0.0);
}

// ---------------------------------------------------------------------------
// SCHED-7
// ---------------------------------------------------------------------------

/// Catalogue C-8: a failing callback is reported with
/// `Exception in callback <handle repr>`, the panic as the exception, and the
/// loop goes on with the next callback (`['after-bad']`).
/// Rules: SCHED-7
#[test]
fn panicking_callback_is_reported_and_loop_continues() {
    let lp = vloop();
    let log = Log::new();
    let seen = capture_exceptions(&lp);
    let h = lp.call_soon(|| panic!("boom")).unwrap();
    lp.call_soon(log.cb("after-bad")).unwrap();
    run_once(&lp);
    assert_eq!(log.take(), ["after-bad"]);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    let ctx = &seen[0];
    assert!(ctx.message.starts_with("Exception in callback "), "{ctx:?}");
    assert_eq!(ctx.message, format!("Exception in callback {h:?}"));
    assert_eq!(ctx.handle, Some(format!("{h:?}")));
    assert_eq!(ctx.exception, Some(Error::Panic("boom".into())));
    assert_eq!(ctx.exception.as_ref().unwrap().to_string(), "boom");
}

/// A formatted panic message is carried as it is.
/// Rules: SCHED-7
#[test]
fn panicking_callback_with_formatted_message() {
    let lp = vloop();
    let seen = capture_exceptions(&lp);
    let n = 42;
    lp.call_soon(move || panic!("bad {n}")).unwrap();
    run_once(&lp);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].exception, Some(Error::Panic("bad 42".into())));
}

/// A panic does not end `run_forever`: later iterations and timers go on.
/// Rules: SCHED-7
#[test]
fn panicking_callbacks_do_not_end_the_run() {
    let lp = vloop();
    let log = Log::new();
    let seen = capture_exceptions(&lp);
    lp.call_soon(|| panic!("first")).unwrap();
    lp.call_later(1.0, || panic!("timer")).unwrap();
    lp.call_later(2.0, log_and_stop(&lp, &log, "end")).unwrap();
    lp.run_forever().unwrap();
    assert_eq!(log.take(), ["end"]);
    assert_eq!(lp.time(), 2.0);
    assert!(!lp.is_running());
    let seen = seen.lock().unwrap();
    let excs: Vec<_> = seen.iter().map(|c| c.exception.clone()).collect();
    assert_eq!(
        excs,
        [
            Some(Error::Panic("first".into())),
            Some(Error::Panic("timer".into()))
        ]
    );
    assert!(
        seen.iter()
            .all(|c| c.message.starts_with("Exception in callback "))
    );
}

/// A failing done callback is reported the same way and the others still run.
/// Rules: SCHED-7
#[test]
fn panicking_done_callback_is_reported_and_others_run() {
    let lp = vloop();
    let log = Log::new();
    let seen = capture_exceptions(&lp);
    let fut: Future<u8> = lp.create_future();
    let bad: DoneCallback<u8> = Rc::new(|_f: &Future<u8>| panic!("done-boom"));
    let log2 = log.clone();
    let good: DoneCallback<u8> = Rc::new(move |_f: &Future<u8>| log2.push("good"));
    fut.add_done_callback(bad).unwrap();
    fut.add_done_callback(good).unwrap();
    fut.set_result(1).unwrap();
    run_once(&lp);
    assert_eq!(log.take(), ["good"]);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].message.starts_with("Exception in callback "));
    assert_eq!(seen[0].exception, Some(Error::Panic("done-boom".into())));
}

/// With the default handler (one line on stderr) the loop goes on as well,
/// and nothing panics out of the run.
/// Rules: SCHED-7
#[test]
fn panicking_callback_with_default_handler_does_not_stop_loop() {
    let lp = vloop();
    let log = Log::new();
    assert!(lp.get_exception_handler().is_none());
    lp.call_soon(|| panic!("default-handler")).unwrap();
    lp.call_soon(log.cb("after-bad")).unwrap();
    run_once(&lp);
    assert_eq!(log.take(), ["after-bad"]);
}

// ---------------------------------------------------------------------------
// SCHED-8
// ---------------------------------------------------------------------------

/// `set_exception_handler(h)` installs `h(loop, context)`.
/// Rules: SCHED-8
#[test]
fn custom_handler_receives_loop_and_context() {
    let lp = vloop();
    let got = Arc::new(Mutex::new(Vec::<(EventLoop, ExceptionContext)>::new()));
    let g = got.clone();
    let handler: ExceptionHandler = Arc::new(move |l: &EventLoop, c: &ExceptionContext| {
        g.lock().unwrap().push((l.clone(), c.clone()));
    });
    lp.set_exception_handler(Some(handler.clone()));
    let installed = lp.get_exception_handler().expect("handler installed");
    assert!(Arc::ptr_eq(&installed, &handler));
    lp.call_soon(|| panic!("x")).unwrap();
    run_once(&lp);
    lp.call_exception_handler(&ExceptionContext::new("direct"));
    let got = got.lock().unwrap();
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|(l, _)| *l == lp));
    assert!(got[0].1.message.starts_with("Exception in callback "));
    assert_eq!(got[0].1.exception, Some(Error::Panic("x".into())));
    assert_eq!(got[1].1, ExceptionContext::new("direct"));
    // The handler kept the loop it was given: break that cycle.
    drop(got);
    lp.set_exception_handler(None);
}

/// `set_exception_handler(None)` restores the default handler.
/// Rules: SCHED-8
#[test]
fn set_exception_handler_none_restores_default() {
    let lp = vloop();
    let log = Log::new();
    assert!(lp.get_exception_handler().is_none());
    let seen = capture_exceptions(&lp);
    assert!(lp.get_exception_handler().is_some());
    lp.set_exception_handler(None);
    assert!(lp.get_exception_handler().is_none());
    lp.call_soon(|| panic!("to default")).unwrap();
    lp.call_soon(log.cb("after")).unwrap();
    run_once(&lp);
    assert_eq!(log.take(), ["after"]);
    assert!(seen.lock().unwrap().is_empty(), "old handler not called");
}

/// Catalogue C-9: a handler that itself raises (panics) leads to the default
/// handler (`Unhandled error in exception handler`) and the loop goes on;
/// the custom handler stays installed and is called again next time.
/// Rules: SCHED-8
#[test]
fn panicking_handler_falls_back_to_default_and_loop_goes_on() {
    let lp = vloop();
    let log = Log::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    lp.set_exception_handler(Some(Arc::new(
        move |_l: &EventLoop, _c: &ExceptionContext| {
            c.fetch_add(1, Ordering::SeqCst);
            panic!("handler broken");
        },
    )));
    lp.call_soon(|| panic!("first")).unwrap();
    lp.call_soon(log.cb("between")).unwrap();
    lp.call_soon(|| panic!("second")).unwrap();
    lp.call_soon(log.cb("after")).unwrap();
    run_once(&lp);
    assert_eq!(log.take(), ["between", "after"]);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert!(lp.get_exception_handler().is_some());
    // A direct call with a broken handler does not panic out either.
    lp.call_exception_handler(&ExceptionContext::new("direct"));
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    // The loop still runs normally.
    lp.call_later(1.0, log_and_stop(&lp, &log, "end")).unwrap();
    lp.run_forever().unwrap();
    assert_eq!(log.take(), ["end"]);
}
