//! CLOCK rules of SPEC.md: `time()`, virtual time, when a timer is due.

use common::{Log, recv_or_hang, run_once, vloop};
use loopspec::{ClockKind, EventLoop, sleep};
use std::sync::mpsc;

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
    move || log.push(format!("{s}@{:?}", lp.time()))
}

const DAY: f64 = 86400.0;

// ---------------------------------------------------------------------------
// CLOCK-1
// ---------------------------------------------------------------------------

/// The virtual clock starts at 0 and moves only when the loop would wait.
/// Rules: CLOCK-1
#[test]
fn virtual_clock_starts_at_zero_and_stands_still() {
    let lp = vloop();
    assert_eq!(lp.clock_kind(), ClockKind::Virtual);
    assert_eq!(lp.time(), 0.0);
    assert_eq!(lp.time(), 0.0);
    lp.call_soon(|| ()).unwrap();
    lp.call_later(5.0, || ()).unwrap();
    assert_eq!(lp.time(), 0.0);
    run_once(&lp);
    assert_eq!(lp.time(), 0.0);
}

/// The real clock is monotonic seconds counted from the loop's creation: a
/// loop made later never reads a later time than one made earlier (read
/// afterwards), and successive reads never go back.
/// Rules: CLOCK-1
#[test]
fn real_clock_is_monotonic_and_counts_from_creation() {
    let old = EventLoop::new();
    assert_eq!(old.clock_kind(), ClockKind::Real);
    let mut last = old.time();
    assert!(last >= 0.0 && last.is_finite());
    for _ in 0..1000 {
        let t = old.time();
        assert!(t >= last, "time went back: {t} < {last}");
        last = t;
    }
    let young = EventLoop::with_clock(ClockKind::Real);
    let young_t = young.time();
    let old_t = old.time();
    assert!(young_t >= 0.0);
    assert!(
        young_t <= old_t,
        "the origin is per loop: {young_t} > {old_t}"
    );
    // `EventLoop::default()` is a real-clock loop as well.
    assert_eq!(EventLoop::default().clock_kind(), ClockKind::Real);
}

/// Each virtual loop has its own time.
/// Rules: CLOCK-1
#[test]
fn virtual_clocks_are_per_loop() {
    let a = vloop();
    let b = vloop();
    let log = Log::new();
    a.call_later(7.0, log_and_stop(&a, &log, "a")).unwrap();
    a.run_forever().unwrap();
    assert_eq!(a.time(), 7.0);
    assert_eq!(b.time(), 0.0);
}

/// `time()` is thread-safe: another thread reads the same virtual time.
/// Rules: CLOCK-1
#[test]
fn time_is_readable_from_other_threads() {
    let lp = vloop();
    let log = Log::new();
    lp.call_later(2.5, log_and_stop(&lp, &log, "t")).unwrap();
    lp.run_forever().unwrap();
    let lp2 = lp.clone();
    let seen = std::thread::spawn(move || lp2.time()).join().unwrap();
    assert_eq!(seen, 2.5);
}

// ---------------------------------------------------------------------------
// CLOCK-2
// ---------------------------------------------------------------------------

/// Timers at 1.0 and 2.5: virtual time is exactly 1.0, then exactly 2.5, when
/// each runs; nothing slept.
/// Rules: CLOCK-2
#[test]
fn virtual_time_jumps_exactly_to_each_timer() {
    let lp = vloop();
    let log = Log::new();
    lp.call_later(1.0, log_time(&lp, &log, "a")).unwrap();
    let lp2 = lp.clone();
    let log2 = log.clone();
    lp.call_later(2.5, move || {
        log2.push(format!("b@{:?}", lp2.time()));
        lp2.stop();
    })
    .unwrap();
    lp.run_forever().unwrap();
    assert_eq!(log.take(), ["a@1.0", "b@2.5"]);
    assert_eq!(lp.time(), 2.5);
}

/// `sleep` moves virtual time by exactly its delay, from wherever it is.
/// Rules: CLOCK-2
#[test]
fn virtual_time_advances_by_sleep() {
    let lp = vloop();
    lp.run_until_complete(async { sleep(3.0).await }).unwrap();
    assert_eq!(lp.time(), 3.0);
    lp.run_until_complete(async { sleep(0.5).await }).unwrap();
    assert_eq!(lp.time(), 3.5);
    // A zero sleep yields an iteration without moving the clock.
    lp.run_until_complete(async { sleep(0.0).await }).unwrap();
    assert_eq!(lp.time(), 3.5);
}

/// A pending cross-thread submission makes the timeout 0: the clock does not
/// jump to the timer.
/// Rules: CLOCK-2, SCHED-1
#[test]
fn virtual_clock_does_not_jump_with_submission_pending() {
    let lp = vloop();
    let log = Log::new();
    lp.call_later(5.0, log.cb("timer")).unwrap();
    let lp2 = lp.clone();
    std::thread::spawn(move || {
        let lp3 = lp2.clone();
        lp2.call_soon_threadsafe(move || lp3.stop()).unwrap();
    })
    .join()
    .unwrap();
    lp.run_forever().unwrap();
    assert!(log.get().is_empty());
    assert_eq!(lp.time(), 0.0);
}

/// A pending stop makes the timeout 0: the clock does not jump.
/// Rules: CLOCK-2
#[test]
fn virtual_clock_does_not_jump_with_stop_pending() {
    let lp = vloop();
    let log = Log::new();
    lp.call_later(5.0, log.cb("timer")).unwrap();
    lp.stop();
    lp.run_forever().unwrap();
    assert!(log.get().is_empty());
    assert_eq!(lp.time(), 0.0);
}

/// With no timer at all, a virtual loop waits like a real one for a
/// submission from another thread; its clock does not move meanwhile. (The
/// run can only end through that submission: a lost wake-up would hang.)
/// Rules: CLOCK-2
#[test]
fn virtual_loop_without_timers_waits_for_other_thread() {
    let lp = vloop();
    let (tx, rx) = mpsc::channel();
    let lp_t = lp.clone();
    let th = std::thread::spawn(move || {
        lp_t.call_soon(move || tx.send(()).unwrap()).unwrap();
        lp_t.run_forever()
    });
    recv_or_hang(&rx, "the loop thread started its run");
    let (ttx, trx) = mpsc::channel();
    let lp2 = lp.clone();
    lp.call_soon_threadsafe(move || {
        ttx.send(lp2.time()).unwrap();
        lp2.stop();
    })
    .unwrap();
    th.join().unwrap().unwrap();
    assert_eq!(recv_or_hang(&trx, "the loop's time"), 0.0);
    assert_eq!(lp.time(), 0.0);
    assert!(!lp.is_running());
}

// ---------------------------------------------------------------------------
// CLOCK-3
// ---------------------------------------------------------------------------

/// A timer is due when `when < time() + 1e-9`: at 2.0 the timers at 2.0 and
/// at 2.0 + 0.5e-9 both run (in the same batch, before what the first one
/// schedules), the one at 2.0 + 2e-9 later, when the clock reaches it.
/// Rules: CLOCK-3
#[test]
fn timer_is_due_within_clock_resolution() {
    let lp = vloop();
    let log = Log::new();
    let near = 2.0 + 0.5e-9;
    let far = 2.0 + 2e-9;
    assert!(near > 2.0 && far > near);
    let lp2 = lp.clone();
    let log2 = log.clone();
    lp.call_at(2.0, move || {
        log2.push(format!("a@{:?}", lp2.time()));
        let lp3 = lp2.clone();
        lp2.call_soon(log_time(&lp3, &log2, "z")).unwrap();
    })
    .unwrap();
    lp.call_at(near, log_time(&lp, &log, "near")).unwrap();
    let lp2 = lp.clone();
    let log2 = log.clone();
    lp.call_at(far, move || {
        log2.push(format!("far@{}", lp2.time() == far));
        lp2.stop();
    })
    .unwrap();
    lp.run_forever().unwrap();
    assert_eq!(log.take(), ["a@2.0", "near@2.0", "z@2.0", "far@true"]);
    assert_eq!(lp.time(), far);
}

/// A timer is not due before its time: at 1.0 a timer at 1.5 does not run.
/// Rules: CLOCK-3
#[test]
fn timer_is_not_due_before_its_time() {
    let lp = vloop();
    let log = Log::new();
    lp.call_at(1.5, log.cb("later")).unwrap();
    lp.call_at(1.0, log_and_stop(&lp, &log, "first")).unwrap();
    lp.run_forever().unwrap();
    assert_eq!(log.take(), ["first"]);
    assert_eq!(lp.time(), 1.0);
    // A pre-stopped run at 1.0 does not find it due either.
    run_once(&lp);
    assert!(log.get().is_empty());
}

/// A timer at exactly `time()` is due even where 1e-9 is below the float's
/// precision (around 2^25 s, `time() + 1e-9 == time()`). (If that were not
/// so, the loop would spin at that time and the test would not end.)
/// Rules: CLOCK-3
#[test]
fn timer_at_current_time_is_due_at_large_times() {
    let lp = vloop();
    let log = Log::new();
    let when = 33_554_432.0; // 2^25, about 388 days
    assert_eq!(when + 1e-9, when);
    lp.call_at(when, log_and_stop(&lp, &log, "large")).unwrap();
    lp.run_forever().unwrap();
    assert_eq!(log.take(), ["large"]);
    assert_eq!(lp.time(), when);
    // And a timer at the current time is due in a pre-stopped run.
    lp.call_at(lp.time(), log.cb("now")).unwrap();
    run_once(&lp);
    assert_eq!(log.take(), ["now"]);
    assert_eq!(lp.time(), when);
}

/// The poll timeout is at most one day: a timer three days away is reached
/// in one-day steps, landing exactly on its deadline; so is one at three and
/// a half days.
/// Rules: CLOCK-3
#[test]
fn poll_timeout_is_at_most_one_day() {
    for when in [3.0 * DAY, 3.5 * DAY, DAY, 0.5 * DAY] {
        let lp = vloop();
        let log = Log::new();
        lp.call_at(when, log_and_stop(&lp, &log, "due")).unwrap();
        lp.run_forever().unwrap();
        assert_eq!(log.take(), ["due"]);
        assert_eq!(lp.time(), when);
    }
}

/// The one-day steps are separate iterations: a callback that a timer at one
/// day schedules runs (at one day) before the timer at three days.
/// Rules: CLOCK-3, SCHED-1
#[test]
fn far_timers_are_reached_through_intermediate_timers() {
    let lp = vloop();
    let log = Log::new();
    let lp2 = lp.clone();
    let log2 = log.clone();
    lp.call_at(1.5 * DAY, move || {
        log2.push(format!("mid@{:?}", lp2.time()));
        let lp3 = lp2.clone();
        lp2.call_soon(log_time(&lp3, &log2, "soon")).unwrap();
    })
    .unwrap();
    let lp2 = lp.clone();
    let log2 = log.clone();
    lp.call_at(3.0 * DAY, move || {
        log2.push(format!("end@{:?}", lp2.time()));
        lp2.stop();
    })
    .unwrap();
    lp.run_forever().unwrap();
    assert_eq!(
        log.take(),
        ["mid@129600.0", "soon@129600.0", "end@259200.0"]
    );
}
