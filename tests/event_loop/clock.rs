//! CLOCK rules of SPEC.md: `time()`, virtual time, and when a timer is due.

use common::{Scene, cases, recv_or_hang, spawn_running, vloop};
use loopspec::{ClockKind, EventLoop, sleep};
use std::sync::mpsc;

const DAY: f64 = 86400.0;

/// A timer at `when` that records `name@time` and schedules `then@time`.
fn timer_then(s: &Scene, when: f64, name: &'static str, then: &'static str) {
    let me = s.clone();
    let timer = move || {
        me.cb_time(name)();
        me.call_soon(me.cb_time(then)).unwrap();
    };
    s.call_at(when, timer).unwrap();
}

/// `time()`: the virtual clock starts at 0, moves only when the loop would
/// wait, and is per loop; the real clock is monotonic seconds from the
/// loop's creation; either is readable from any thread.
/// Rules: CLOCK-1
#[test]
fn time_is_per_loop_and_readable_anywhere() {
    cases(&[
        ("the virtual clock starts at 0 and stands still", |s| {
            assert_eq!((s.clock_kind(), s.time()), (ClockKind::Virtual, 0.0));
            s.call_soon(|| ()).unwrap();
            s.call_later(5.0, || ()).unwrap();
            assert_eq!(s.time(), 0.0);
            s.once();
            assert_eq!(s.time(), 0.0);
        }),
        // A loop made later never reads a later time than one made earlier
        // (read afterwards), and successive reads never go back.
        (
            "the real clock is monotonic and counts from creation",
            |_| {
                let old = EventLoop::new();
                assert_eq!(old.clock_kind(), ClockKind::Real);
                let mut last = old.time();
                assert!(last >= 0.0 && last.is_finite());
                for _ in 0..1000 {
                    let t = old.time();
                    assert!(t >= last, "time went back: {t} < {last}");
                    last = t;
                }
                let young_t = EventLoop::with_clock(ClockKind::Real).time();
                let old_t = old.time();
                assert!(young_t >= 0.0);
                assert!(
                    young_t <= old_t,
                    "the origin is per loop: {young_t} > {old_t}"
                );
                // `EventLoop::default()` is a real-clock loop as well.
                assert_eq!(EventLoop::default().clock_kind(), ClockKind::Real);
            },
        ),
        (
            "each virtual loop has its own time, read from any thread",
            |s| {
                let other = vloop();
                s.later_stop(7.0, "a");
                s.forever();
                assert_eq!((s.time(), other.time()), (7.0, 0.0));
                let lp = s.lp.clone();
                let seen = std::thread::spawn(move || lp.time()).join().unwrap();
                assert_eq!(seen, 7.0);
            },
        ),
    ]);
}

/// Virtual time jumps, exactly, to each timer and by each sleep; nothing
/// sleeps. It does not jump while something else is pending — a submission
/// from another thread, or a stop (SCHED-1's cases) — and with nothing at
/// all to wait for it waits like a real loop.
/// Rules: CLOCK-2, SCHED-1
#[test]
fn virtual_time_jumps_instead_of_sleeping() {
    cases(&[
        ("exactly to each timer", |s| {
            s.call_later(1.0, s.cb_time("a")).unwrap();
            s.call_later(2.5, s.cb_time("b")).unwrap();
            s.later(2.5, |s| s.stop());
            assert_eq!(s.forever(), ["a@1", "b@2.5"]);
            assert_eq!(s.time(), 2.5);
        }),
        (
            "by exactly each sleep's delay; a zero sleep does not move it",
            |s| {
                for (delay, then) in [(3.0, 3.0), (0.5, 3.5), (0.0, 3.5)] {
                    s.run_until_complete(async move { sleep(delay).await })
                        .unwrap();
                    assert_eq!(s.time(), then, "after sleep({delay})");
                }
            },
        ),
        ("not with a submission from another thread pending", |s| {
            s.later_log(5.0, "timer");
            let lp = s.lp.clone();
            std::thread::spawn(move || {
                let stopper = lp.clone();
                lp.call_soon_threadsafe(move || stopper.stop()).unwrap();
            })
            .join()
            .unwrap();
            assert!(s.forever().is_empty());
            assert_eq!(s.time(), 0.0);
        }),
        // The run can only end through that submission: a lost wake-up
        // would hang.
        (
            "with no timer it waits for another thread, its clock still",
            |s| {
                let th = spawn_running(s, "virtual-loop");
                let (tx, rx) = mpsc::channel();
                let lp = s.lp.clone();
                s.call_soon_threadsafe(move || {
                    tx.send(lp.time()).unwrap();
                    lp.stop();
                })
                .unwrap();
                th.join().unwrap().unwrap();
                assert_eq!(recv_or_hang(&rx, "the loop's time"), 0.0);
                assert!(!s.is_running() && s.time() == 0.0);
            },
        ),
    ]);
}

/// A timer is due when `when < time() + 1e-9`, not before; at a time so
/// large that 1e-9 is below the float's precision (2^25 s), one at exactly
/// `time()` is still due. (Were it not, the loop would spin there and the
/// test would not end.)
/// Rules: CLOCK-3
#[test]
fn a_timer_is_due_within_the_clock_resolution() {
    cases(&[
        // At 2.0 the timers at 2.0 and 2.0 + 0.5e-9 run in one batch, before
        // what the first one schedules; the one at 2.0 + 2e-9 later.
        ("within 1e-9 of time()", |s| {
            let (near, far) = (2.0 + 0.5e-9, 2.0 + 2e-9);
            assert!(near > 2.0 && far > near);
            timer_then(s, 2.0, "a", "z");
            s.call_at(near, s.cb_time("near")).unwrap();
            let me = s.clone();
            s.call_at(far, move || {
                me.push(format!("far@{}", me.time() == far));
                me.stop();
            })
            .unwrap();
            assert_eq!(s.forever(), ["a@2", "near@2", "z@2", "far@true"]);
            assert_eq!(s.time(), far);
        }),
        ("not before its time, even in a pre-stopped run", |s| {
            s.call_at(1.5, s.cb("later")).unwrap();
            s.call_at(1.0, s.cb_stop("first")).unwrap();
            assert_eq!(s.forever(), ["first"]);
            assert_eq!(s.time(), 1.0);
            assert!(s.once().is_empty());
        }),
        ("at exactly time(), at 2^25 s", |s| {
            let when = 33_554_432.0; // 2^25, about 388 days
            assert_eq!(when + 1e-9, when);
            s.call_at(when, s.cb_stop("large")).unwrap();
            assert_eq!(s.forever(), ["large"]);
            assert_eq!(s.time(), when);
            s.call_at(s.time(), s.cb("now")).unwrap();
            assert_eq!(s.once(), ["now"]);
            assert_eq!(s.time(), when);
        }),
    ]);
}

/// The poll timeout is at most one day: a timer three days away is reached
/// in one-day steps, landing exactly on its deadline, and so are others; the
/// steps are separate iterations, so what a timer at one and a half days
/// schedules runs then, before the timer at three days.
/// Rules: CLOCK-3, SCHED-1
#[test]
fn the_poll_timeout_is_at_most_one_day() {
    for when in [3.0 * DAY, 3.5 * DAY, DAY, 0.5 * DAY] {
        let s = Scene::new();
        s.call_at(when, s.cb_stop("due")).unwrap();
        assert_eq!(s.forever(), ["due"]);
        assert_eq!(s.time(), when);
    }
    let s = Scene::new();
    timer_then(&s, 1.5 * DAY, "mid", "soon");
    s.call_at(3.0 * DAY, s.cb_time("end")).unwrap();
    s.later(3.0 * DAY, |s| s.stop());
    assert_eq!(s.forever(), ["mid@129600", "soon@129600", "end@259200"]);
}
