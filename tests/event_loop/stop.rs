//! STOP rules of SPEC.md: when `run_forever` returns.
//!
//! The expected logs are what CPython 3.11 does with the same calls (SPEC.md
//! states each rule with its evidence). The virtual clock makes "does not
//! wait for a timer" a statement about `time()` and the log, never about wall
//! time.

use common::{DropCount, Scene, assert_py_error, cases, count, counter, recv_or_hang, wait_parked};
use loopspec::{Error, EventLoop, Future, LocalDoneCallback, get_running_loop, yield_now};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};

/// Schedules `t1..=tN`, one per iteration: each records itself, calls `at`
/// with its number, then schedules the next.
fn ticks(s: &Scene, n: usize, at: impl Fn(&Scene, usize) + 'static) {
    type At = Rc<dyn Fn(&Scene, usize)>;
    fn tick(s: &Scene, i: usize, n: usize, at: At) {
        if i <= n {
            s.soon(move |s| {
                s.push(format!("t{i}"));
                at(s, i);
                tick(s, i + 1, n, at);
            });
        }
    }
    tick(s, 1, n, Rc::new(at));
}

/// `a`, which schedules `b` when it runs.
fn a_then_b(s: &Scene) {
    s.soon(|s| {
        s.push("a");
        s.soon_log("b");
    });
}

/// `stop()` only requests: the iteration finishes, the run returns, and the
/// flag is cleared by that return.
/// Rules: STOP-1, STOP-4
#[test]
fn stop_ends_the_run_after_the_current_iteration() {
    cases(&[
        ("on an idle or closed loop, it is not an error", |s| {
            s.stop();
            s.stop();
            assert!(!s.is_running() && !s.is_closed());
            s.close().unwrap();
            s.stop();
            assert!(s.is_closed() && !s.is_running());
        }),
        (
            "from a callback, the run returns after that iteration",
            |s| {
                ticks(s, 10, |s, i| {
                    if i == 3 {
                        s.stop();
                    }
                });
                assert_eq!(s.forever(), ["t1", "t2", "t3"]);
                assert!(!s.is_running());
                // Tick 4 was scheduled by tick 3 and is still queued.
                assert_eq!(s.once(), ["t4"]);
            },
        ),
        ("the return clears the flag, even after two stops", |s| {
            s.call_soon(s.cb_stop("stopper")).unwrap();
            assert_eq!(s.forever(), ["stopper"]);
            s.later_stop(4.0, "timer");
            assert_eq!(s.forever(), ["timer"]);
            s.soon(|s| {
                s.stop();
                s.stop();
            });
            assert!(s.forever().is_empty());
            s.later_stop(1.5, "timer");
            assert_eq!(s.forever(), ["timer"]);
            assert_eq!(s.time(), 5.5);
        }),
        // CPython clears the flag only in `run_forever`'s `finally`, which a
        // refused call never enters (checked on 3.11).
        (
            "a refused nested run is no return and keeps the flag",
            |s| {
                s.soon(|s| {
                    s.stop();
                    s.push(s.run_forever().unwrap_err().to_string());
                    s.soon_log("next");
                });
                assert_eq!(s.forever(), ["This event loop is already running"]);
                assert_eq!(s.once(), ["next"]);
            },
        ),
    ]);
}

/// A stop before the run gives exactly one iteration, which does not wait
/// for timers (poll timeout 0) but runs those already due.
/// Rules: STOP-2, SCHED-1
#[test]
fn a_stop_before_the_run_gives_one_iteration() {
    cases(&[
        ("one stop: only `a` runs, `b` in the next run", |s| {
            a_then_b(s);
            s.stop();
            assert_eq!(s.forever(), ["a"]);
            assert!(!s.is_running());
            s.stop();
            assert_eq!(s.forever(), ["b"]);
        }),
        (
            "two stops count as one: the next run is a normal one",
            |s| {
                a_then_b(s);
                s.stop();
                s.stop();
                assert_eq!(s.forever(), ["a"]);
                s.later_stop(2.0, "timer");
                assert_eq!(s.forever(), ["b", "timer"]);
            },
        ),
        (
            "a timer 0.5 s away does not fire and the clock stays",
            |s| {
                s.stop();
                assert!(s.forever().is_empty(), "a loop with no work returns");
                let t = s.later_stop(0.5, "timer");
                s.stop();
                assert!(s.forever().is_empty());
                assert_eq!((s.time(), t.cancelled()), (0.0, false));
                // The timer is still there: a normal run waits for it.
                assert_eq!(s.forever(), ["timer"]);
                assert_eq!(s.time(), 0.5);
            },
        ),
        ("timers already due run in the one iteration", |s| {
            s.later_log(0.5, "future");
            s.later_log(0.0, "zero");
            s.later_log(-1.0, "negative");
            s.soon_log("soon");
            s.stop();
            assert_eq!(s.forever(), ["soon", "negative", "zero"]);
            assert_eq!(s.time(), 0.0);
        }),
    ]);
}

/// A stop from a callback lets the batch finish — later callbacks and due
/// timers; what the batch schedules waits for a later run.
/// Rules: STOP-3
#[test]
fn a_stop_from_a_callback_lets_the_batch_finish() {
    cases(&[
        ("queue [1, s, 3] and a due timer, `s` stopping", |s| {
            s.soon_log("1");
            s.soon(|s| {
                s.push("s");
                s.stop();
                s.soon_log("x");
            });
            s.soon_log("3");
            s.later(0.0, |s| {
                s.push("timer");
                s.soon_log("later");
            });
            assert_eq!(s.forever(), ["1", "s", "3", "timer"]);
            assert_eq!(s.once(), ["x", "later"]);
        }),
        ("a stop from a later iteration", |s| {
            s.soon(|s| {
                s.push("a");
                s.soon(|s| {
                    s.push("s");
                    s.stop();
                    s.soon_log("x");
                });
                s.soon_log("c");
            });
            assert_eq!(s.forever(), ["a", "s", "c"]);
            assert_eq!(s.once(), ["x"]);
        }),
        ("a task that stops: its next step waits", |s| {
            let task = s.task(|s| async move {
                s.push("step1");
                get_running_loop()?.stop();
                yield_now().await?;
                s.push("step2");
                Ok(())
            });
            s.soon_log("after");
            assert_eq!(s.forever(), ["step1", "after"]);
            assert!(!task.done());
            assert_eq!(s.once(), ["step2"]);
            assert!(task.done());
        }),
    ]);
}

/// After a run that a stop ended, or a pre-stopped one, a new
/// `run_forever()` runs many iterations, until the next `stop()`, waiting
/// for timers.
/// Rules: STOP-4, STOP-2
#[test]
fn the_next_run_goes_on_until_its_own_stop() {
    for pre_stopped in [false, true] {
        let s = Scene::new();
        if pre_stopped {
            s.stop();
        } else {
            s.soon(|s| s.stop());
        }
        s.forever();
        s.later_log(1.0, "t1");
        s.later_stop(3.0, "t3");
        assert_eq!(s.forever(), ["t1", "t3"], "pre-stopped: {pre_stopped}");
        assert_eq!(s.time(), 3.0);
        ticks(&s, 5, |s, i| {
            if i == 5 {
                s.stop();
            }
        });
        assert_eq!(s.forever(), ["t1", "t2", "t3", "t4", "t5"]);
    }
}

/// loopspec's `stop()` is thread-safe and wakes a parked loop, like the
/// portable `call_soon_threadsafe(stop)`, and neither waits for the next
/// timer. Each case runs a real-clock loop in a thread, waits until it has
/// parked with nothing to do but a timer three days away, if any (on the
/// loop's own `inbox_stats().parks` counter, not on time), stops it from
/// this thread, and the run returns: the one park was ended by the one
/// wake-up this thread's call issued. (Were the wake-up lost, the test
/// would hang: nothing else can end the run.)
/// Rules: STOP-5
#[test]
fn stop_from_other_thread_wakes_parked_loop() {
    for (threadsafe, far_timer) in [(false, false), (true, false), (false, true)] {
        let case = format!("call_soon_threadsafe: {threadsafe}, far timer: {far_timer}");
        let lp = EventLoop::new();
        let fired = Arc::new(AtomicBool::new(false));
        let (l, f, (tx, rx)) = (lp.clone(), fired.clone(), mpsc::channel());
        let th = std::thread::Builder::new()
            .name("loop-thread".into())
            .spawn(move || {
                if far_timer {
                    let fire = move || f.store(true, Ordering::SeqCst);
                    l.call_later(3.0 * 86400.0, fire).unwrap();
                }
                l.call_soon(move || tx.send(()).unwrap()).unwrap();
                l.run_forever()
            })
            .unwrap();
        recv_or_hang(&rx, "the loop thread started its run");
        wait_parked(&lp, 1);
        assert_eq!(lp.inbox_stats().wakeups, 0, "{case}");
        if threadsafe {
            let stopper = lp.clone();
            lp.call_soon_threadsafe(move || stopper.stop()).unwrap();
        } else {
            lp.stop();
        }
        th.join().unwrap().unwrap();
        assert!(!lp.is_running(), "{case}");
        let stats = lp.inbox_stats();
        assert_eq!((stats.parks, stats.wakeups), (1, 1), "{case}: {stats:?}");
        assert!(!fired.load(Ordering::SeqCst), "{case}");
        lp.close().unwrap();
    }
}

/// `run_until_complete` is `run_forever` plus a stop callback on the future:
/// the run ends with the iteration after the one that completed it, and only
/// that callback is removed.
/// Rules: STOP-6, STOP-7
#[test]
fn run_until_complete_stops_one_iteration_after_the_future() {
    cases(&[
        // `lvl2` never runs before `close()`, which drops it.
        (
            "the last iteration leaves what it queued: lvl1, not lvl2",
            |s| {
                let dropped = counter();
                let guard = DropCount(dropped.clone());
                let main = s.task(|s| async move {
                    s.soon(move |s| {
                        s.push("lvl1");
                        s.soon(move |s| {
                            let _g = &guard;
                            s.push("lvl2");
                        });
                    });
                    Ok("done")
                });
                assert_eq!(s.run_until_complete(main).unwrap(), "done");
                assert_eq!((s.log.get(), count(&dropped)), (vec!["lvl1".into()], 0));
                s.close().unwrap();
                assert_eq!((s.take(), count(&dropped)), (vec!["lvl1".into()], 1));
            },
        ),
        ("it runs what the completing callback queued", |s| {
            let fut: Future<i32> = s.create_future();
            let f2 = fut.clone();
            s.soon(move |s| {
                f2.set_result(1).unwrap();
                a_then_b(s);
            });
            assert_eq!(s.run_until_complete(fut).unwrap(), 1);
            assert_eq!(s.take(), ["a"]);
            assert_eq!(s.once(), ["b"]);
        }),
        ("done in tick 2, the run returns after tick 3", |s| {
            let fut: Future<&'static str> = s.create_future();
            let f2 = fut.clone();
            ticks(s, 100, move |_, i| {
                if i == 2 {
                    f2.set_result("v").unwrap();
                }
            });
            assert_eq!(s.run_until_complete(fut).unwrap(), "v");
            assert_eq!(s.take(), ["t1", "t2", "t3"]);
            assert_eq!(s.once(), ["t4"]);
        }),
        // Verified on CPython 3.11.
        (
            "its stop callback is removed: a later completion stops nothing",
            |s| {
                let fut: Future<i32> = s.create_future();
                s.stop();
                let err = s.run_until_complete(fut.clone()).unwrap_err();
                assert_eq!(err, Error::StoppedBeforeComplete);
                let f2 = fut.clone();
                s.soon(move |_| f2.set_result(5).unwrap());
                s.later_log(0.1, "t0.1");
                s.later_stop(0.3, "t0.3");
                assert_eq!(s.forever(), ["t0.1", "t0.3"]);
                assert_eq!((s.time(), fut.result()), (0.3, Ok(5)));
            },
        ),
        ("the future's other done callbacks are kept", |s| {
            let fut: Future<i32> = s.create_future();
            let log = s.log.clone();
            let cb: LocalDoneCallback<i32> = Rc::new(move |f: &Future<i32>| {
                log.push(format!("done {}", f.result().unwrap()));
            });
            fut.add_done_callback_local(cb).unwrap();
            let f2 = fut.clone();
            s.later(1.0, move |_| f2.set_result(3).unwrap());
            assert_eq!(s.run_until_complete(fut).unwrap(), 3);
            // Added before the stop callback: it ran in the last iteration.
            assert_eq!((s.take(), s.time()), (vec!["done 3".into()], 1.0));
        }),
    ]);
}

/// A stop before the future is done fails the run with `RuntimeError: Event
/// loop stopped before Future completed.`; the future stays pending, and a
/// later run can finish it.
/// Rules: STOP-7
#[test]
fn a_run_stopped_before_the_future_is_done_fails() {
    cases(&[
        ("stop(), then a task needing two steps", |s| {
            let task = s.task(|_| async {
                yield_now().await?;
                Ok("two")
            });
            s.stop();
            let err = s.run_until_complete(task.clone()).unwrap_err();
            assert_eq!(err, Error::StoppedBeforeComplete);
            let msg = "Event loop stopped before Future completed.";
            assert_py_error(&err, "RuntimeError", msg);
            assert!(!task.done() && !task.cancelled() && !s.is_running());
            assert_eq!(s.run_until_complete(task.clone()).unwrap(), "two");
        }),
        ("the task, or a coroutine, stops the loop itself", |s| {
            let task = s.task(|_| async {
                get_running_loop()?.stop();
                yield_now().await?;
                Ok(7)
            });
            let err = s.run_until_complete(task.clone()).unwrap_err();
            assert_eq!((err, task.done()), (Error::StoppedBeforeComplete, false));
            assert_eq!(s.run_until_complete(task).unwrap(), 7);
            let coro = async {
                get_running_loop()?.stop();
                yield_now().await
            };
            let err = s.run_until_complete(coro).unwrap_err();
            assert_eq!(err, Error::StoppedBeforeComplete);
        }),
        ("a plain future, stopped before, completed later", |s| {
            let fut: Future<u8> = s.create_future();
            s.stop();
            let err = s.run_until_complete(fut.clone()).unwrap_err();
            assert_eq!(err, Error::StoppedBeforeComplete);
            assert!(!fut.done() && !fut.cancelled());
            let f2 = fut.clone();
            s.soon(move |_| f2.set_result(9).unwrap());
            assert_eq!(s.run_until_complete(fut).unwrap(), 9);
        }),
        (
            "an unrelated callback stops before a timer completes it",
            |s| {
                let fut: Future<u8> = s.create_future();
                let f2 = fut.clone();
                s.later(5.0, move |_| f2.set_result(1).unwrap());
                s.later(2.0, |s| s.stop());
                let err = s.run_until_complete(fut.clone()).unwrap_err();
                let got = (err, s.time(), fut.done());
                assert_eq!(got, (Error::StoppedBeforeComplete, 2.0, false));
                assert_eq!(s.run_until_complete(fut).unwrap(), 1);
                assert_eq!(s.time(), 5.0);
            },
        ),
    ]);
}

/// `stop(); run_until_complete(x)` where `x` — a coroutine or a task — is
/// done in one step returns the result; the stop callback stays queued, so
/// the next `run_forever()` returns after one iteration and a timer 0.2 s
/// away does not fire. The stale stop is then used up.
/// Rules: STOP-8
#[test]
fn stale_stop_ends_next_run_after_one_iteration() {
    for as_task in [false, true] {
        let s = Scene::new();
        s.stop();
        let got = if as_task {
            let task = s.task(|_| async { Ok(42) });
            s.run_until_complete(task.clone())
                .inspect(|_| assert!(task.done()))
        } else {
            s.run_until_complete(async { Ok(42) })
        };
        assert_eq!(got, Ok(42));
        assert!(!s.is_running());
        s.later_stop(0.2, "timer");
        a_then_b(&s);
        // Not pre-stopped, yet it returns after one iteration.
        assert_eq!(s.forever(), ["a"], "task: {as_task}");
        assert_eq!(s.time(), 0.0);
        // The stale stop is used up: the next run is normal.
        assert_eq!(s.forever(), ["b", "timer"], "task: {as_task}");
        assert_eq!(s.time(), 0.2);
    }
}
