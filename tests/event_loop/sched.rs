//! SCHED rules of SPEC.md: the iteration, callbacks and timers.
//!
//! The expected orders are CPython's (3.11, unless a case says otherwise;
//! SPEC.md's SCHED-1 lays out the iteration). Everything runs on the virtual
//! clock, so "the loop did not wait" is checked through `time()`.

use common::{Scene, assert_py_error, capture_exceptions, cases, count, counter};
use loopspec::{
    Error, EventLoop, ExceptionContext, ExceptionHandler, Future, Handle, LocalDoneCallback,
    TimerHandle, sleep,
};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

/// Brings a virtual loop's clock to `t` (a timer that stops the run).
fn advance_to(s: &Scene, t: f64) {
    s.call_at(t, s.cb_stop("advanced")).unwrap();
    assert_eq!(s.forever(), ["advanced"]);
    assert_eq!(s.time(), t);
}

/// `call_soon_threadsafe(cb)` from a new thread, joined before returning.
fn from_another_thread(lp: &EventLoop, cb: impl FnOnce() + Send + 'static) {
    let lp = lp.clone();
    std::thread::spawn(move || lp.call_soon_threadsafe(cb).map(drop))
        .join()
        .unwrap()
        .unwrap();
}

/// Schedules a callback that records `name` and calls `cancel` with the
/// scene and the handle `later` then schedules behind it, in the same batch; returns that
/// handle.
fn cancelled_by_earlier<H: Clone + 'static>(
    s: &Scene,
    name: &'static str,
    later: impl FnOnce(&Scene) -> H,
    cancel: impl FnOnce(&Scene, &H) + 'static,
) -> H {
    let slot: Rc<RefCell<Option<H>>> = Rc::default();
    let s2 = slot.clone();
    s.soon(move |s| {
        s.push(name);
        cancel(s, s2.borrow().as_ref().unwrap());
    });
    let h = later(s);
    *slot.borrow_mut() = Some(h.clone());
    h
}

/// The loop's iteration, step by step (SCHED-1): the poll timeout, the
/// arrivals from other threads, the due timers, then the batch counted at
/// its start.
/// Rules: SCHED-1, SCHED-4, CLOCK-2, CLOCK-3, STOP-2
#[test]
fn one_iteration_step_by_step() {
    cases(&[
        // Step 1: the clock does not jump to the timer 5 s away.
        ("a ready callback makes the poll timeout 0", |s| {
            s.later_stop(5.0, "timer");
            s.call_soon(s.cb_stop("ready")).unwrap();
            assert_eq!((s.forever(), s.time()), (vec!["ready".into()], 0.0));
            assert_eq!((s.forever(), s.time()), (vec!["timer".into()], 5.0));
        }),
        ("a requested stop makes the poll timeout 0", |s| {
            s.later_log(5.0, "timer");
            s.stop();
            assert!(s.forever().is_empty());
            assert_eq!(s.time(), 0.0);
        }),
        (
            "with nothing ready, it waits until the earliest timer",
            |s| {
                s.call_later(2.5, s.cb_time("late")).unwrap();
                s.call_later(1.0, s.cb_time("early")).unwrap();
                s.later_stop(4.0, "end");
                assert_eq!(s.forever(), ["early@1", "late@2.5", "end"]);
                assert_eq!(s.time(), 4.0);
            },
        ),
        // The timeout is clamped to one day, a timer 3.5 days away is still
        // reached, exactly.
        ("a far timer is reached exactly", |s| {
            let when = 3.5 * 86400.0;
            assert_eq!(s.later_stop(when, "far").when(), when);
            assert_eq!((s.forever(), s.time()), (vec!["far".into()], when));
        }),
        // Steps 2 then 3 (CPython 3.11 ran ['a', 'x', 't']).
        ("arrivals join the ready queue before the due timers", |s| {
            s.later_log(0.0, "t");
            s.soon_log("a");
            from_another_thread(s, s.cb("x"));
            assert_eq!(s.once(), ["a", "x", "t"]);
        }),
        // Step 3: in deadline order.
        ("due timers follow the ready callbacks", |s| {
            s.later_log(-1.0, "timer-1");
            s.later_log(-3.0, "timer-3");
            s.soon_log("soon1");
            s.soon_log("soon2");
            assert_eq!(s.once(), ["soon1", "soon2", "timer-3", "timer-1"]);
        }),
    ]);
}

/// Step 4: what the batch schedules, by any means, waits for the next
/// iteration; the batch is counted at its start.
/// Rules: SCHED-1, SCHED-3, SCHED-4
#[test]
fn what_the_batch_schedules_waits_for_the_next_iteration() {
    cases(&[
        ("callbacks", |s| {
            s.soon(|s| {
                s.push("a");
                s.soon_log("b");
            });
            s.soon_log("a2");
            assert_eq!(s.once(), ["a", "a2"]);
            assert_eq!(s.once(), ["b"]);
        }),
        // CPython: ['set', 'after'], then ['done'].
        ("done callbacks of a future completed in the batch", |s| {
            let fut: Future<i32> = s.create_future();
            let log = s.log.clone();
            let cb: LocalDoneCallback<i32> = Rc::new(move |_: &Future<i32>| log.push("done"));
            fut.add_done_callback_local(cb).unwrap();
            s.soon(move |s| {
                fut.set_result(1).unwrap();
                s.push("set");
            });
            s.soon_log("after");
            assert_eq!(s.once(), ["set", "after"]);
            assert_eq!(s.once(), ["done"]);
        }),
        ("call_soon_threadsafe from the loop's own thread", |s| {
            s.soon(|s| {
                s.push("a");
                s.call_soon_threadsafe(s.cb("ts")).unwrap();
            });
            s.soon_log("a2");
            assert_eq!(s.once(), ["a", "a2"]);
            assert_eq!(s.once(), ["ts"]);
        }),
        // It keeps its place before work the loop thread queued after it
        // (CPython: ['a', 'a2'], then ['x', 'y']).
        ("a submission from another thread arriving meanwhile", |s| {
            s.soon(|s| {
                from_another_thread(s, s.cb("x"));
                s.soon_log("y");
                s.push("a");
            });
            s.soon_log("a2");
            assert_eq!(s.once(), ["a", "a2"]);
            assert_eq!(s.once(), ["x", "y"]);
        }),
        // Step 3 is before the batch (CPython: ['a', 'due'], then ['t']).
        ("a zero-delay timer", |s| {
            s.soon(|s| {
                s.push("a");
                s.later_log(0.0, "t");
            });
            s.later_log(-1.0, "due");
            assert_eq!(s.once(), ["a", "due"]);
            assert_eq!(s.once(), ["t"]);
        }),
        ("entries cancelled by earlier ones are skipped", |s| {
            cancelled_by_earlier(
                s,
                "a",
                |s| s.soon_log("victim"),
                |s, h| {
                    h.cancel();
                    s.soon_log("d");
                },
            );
            s.soon_log("c");
            assert_eq!(s.once(), ["a", "c"]);
            assert_eq!(s.once(), ["d"]);
        }),
    ]);
}

/// `call_soon` is FIFO, within an iteration and across iterations
/// (CPython: `call_soon(cb) x5` runs `[0, 1, 2, 3, 4]`), and never runs
/// inline.
/// Rules: SCHED-2
#[test]
fn call_soon_runs_in_fifo_order() {
    let s = Scene::new();
    let handles: Vec<Handle> = (0..5).map(|i| s.soon_log(i.to_string())).collect();
    assert!(handles.iter().all(|h| !h.cancelled()));
    assert!(s.log.get().is_empty(), "call_soon never runs inline");
    assert_eq!(s.once(), ["0", "1", "2", "3", "4"]);
    for name in ["a", "b"] {
        s.soon(move |s| {
            s.push(name);
            s.soon_log(format!("{name}1"));
            s.soon_log(format!("{name}2"));
        });
    }
    assert_eq!(s.once(), ["a", "b"]);
    assert_eq!(s.once(), ["a1", "a2", "b1", "b2"]);
}

/// Cancelling a handle or a timer before it runs prevents it, even from an
/// earlier callback of the same batch, or from another thread; after the run
/// it does nothing.
/// Rules: SCHED-3
#[test]
fn cancelling_a_handle() {
    cases(&[
        ("before the run", |s| {
            let h = s.soon_log("cancelled");
            s.soon_log("kept");
            assert!(!h.cancelled());
            h.cancel();
            assert!(h.cancelled());
            assert_eq!(s.once(), ["kept"]);
            assert!(s.once().is_empty());
        }),
        ("from an earlier callback of the same batch", |s| {
            let h = cancelled_by_earlier(s, "first", |s| s.soon_log("second"), |_, h| h.cancel());
            s.soon_log("third");
            assert_eq!(s.once(), ["first", "third"]);
            assert!(h.cancelled());
        }),
        // It raises nothing; `cancelled()` is then true anyway.
        ("after the run it does nothing", |s| {
            let h = s.soon_log("ran");
            assert_eq!(s.once(), ["ran"]);
            h.cancel();
            h.cancel();
            assert!(h.cancelled());
            assert!(s.once().is_empty());
            let t = s.later_log(0.0, "timer");
            assert_eq!(s.once(), ["timer"]);
            t.cancel();
            assert!(t.cancelled());
        }),
        (
            "a timer before it is due: the loop no longer waits for it",
            |s| {
                let t = s.later_log(1.0, "timer");
                t.cancel();
                assert!(t.cancelled());
                s.later_stop(2.0, "end");
                assert_eq!((s.forever(), s.time()), (vec!["end".into()], 2.0));
            },
        ),
        ("a due timer already in the batch", |s| {
            let later = |s: &Scene| s.later_log(0.0, "timer");
            cancelled_by_earlier(s, "canceller", later, |_, h| h.cancel());
            s.later_log(0.0, "other");
            assert_eq!(s.once(), ["canceller", "other"]);
        }),
        // Handles are `Send`.
        ("from another thread, before the run", |s| {
            let h = s.soon_log("cancelled");
            let t = s.later_log(0.0, "timer");
            std::thread::spawn(move || {
                h.cancel();
                t.cancel();
            })
            .join()
            .unwrap();
            s.soon_log("kept");
            assert_eq!(s.once(), ["kept"]);
        }),
    ]);
}

/// Timers: `when()` is the absolute loop time; zero and negative delays and
/// past deadlines are due at once and run in the next iteration, after the
/// ready callbacks, in deadline order; later ones each when the clock
/// reaches them.
/// Rules: SCHED-4, SCHED-1
#[test]
fn timers_run_in_deadline_order() {
    cases(&[
        ("when() is the absolute loop time", |s| {
            assert_eq!(s.call_later(2.5, || ()).unwrap().when(), 2.5);
            assert_eq!(s.call_at(7.0, || ()).unwrap().when(), 7.0);
            advance_to(s, 10.0);
            for (delay, when) in [(1.0, 11.0), (0.0, 10.0), (-5.0, 5.0)] {
                assert_eq!(s.call_later(delay, || ()).unwrap().when(), when);
            }
            assert_eq!(s.call_at(3.0, || ()).unwrap().when(), 3.0);
        }),
        ("zero, negative and past ones run next, not inline", |s| {
            advance_to(s, 100.0);
            s.later_log(0.0, "zero");
            s.later_log(-5.0, "negative");
            s.call_at(50.0, s.cb("past")).unwrap();
            assert!(s.log.get().is_empty());
            assert_eq!(s.once(), ["past", "negative", "zero"]);
            assert_eq!(s.time(), 100.0);
        }),
        ("call_later(-1, a); call_later(-2, b) runs b, a", |s| {
            s.later_log(-1.0, "a");
            s.later_log(-2.0, "b");
            assert_eq!(s.once(), ["b", "a"]);
        }),
        ("future ones in deadline order, not scheduling order", |s| {
            s.call_later(3.0, s.cb_time("c")).unwrap();
            s.call_at(1.0, s.cb_time("a")).unwrap();
            s.call_later(2.0, s.cb_time("b")).unwrap();
            s.later_stop(3.5, "end");
            assert_eq!(s.forever(), ["a@1", "b@2", "c@3", "end"]);
        }),
    ]);
}

/// CPython ran `call_later(0, later0); call_soon(soon); call_at(t-10,
/// at_past); call_later(-5, later_neg); call_soon(soon2)` as `['soon',
/// 'soon2', 'at-past', 'later-neg', 'later0']`, at any loop time.
/// Rules: SCHED-4, SCHED-1
#[test]
fn due_timers_run_after_ready_callbacks_in_deadline_order() {
    for start in [0.0, 1000.0] {
        let s = Scene::new();
        if start > 0.0 {
            advance_to(&s, start);
        }
        let t = s.time();
        s.later_log(0.0, "later0");
        s.soon_log("soon");
        s.call_at(t - 10.0, s.cb("at-past")).unwrap();
        s.later_log(-5.0, "later-neg");
        s.soon_log("soon2");
        let want = ["soon", "soon2", "at-past", "later-neg", "later0"];
        assert_eq!(s.once(), want, "from {start}");
    }
}

/// loopspec's refinement: equal deadlines run in scheduling order (CPython's
/// heap ran 10 such timers as `[0, 2, 6, 5, 9, 8, 7, 1, 3, 4]`), due ones
/// too, with a cancelled one among them.
/// Rules: SCHED-5
#[test]
fn equal_deadline_timers_run_in_scheduling_order() {
    let s = Scene::new();
    for i in 0..10 {
        if i % 2 == 0 {
            s.call_at(1.0, s.cb(i.to_string())).unwrap();
        } else {
            s.later_log(1.0, i.to_string());
        }
    }
    s.later(2.0, |s| s.stop());
    let expected: Vec<String> = (0..10).map(|i| i.to_string()).collect();
    assert_eq!(s.forever(), expected);
    let due: Vec<TimerHandle> = (0..3).map(|i| s.later_log(-1.0, i.to_string())).collect();
    s.call_at(s.time() - 1.0, s.cb("3")).unwrap();
    due[1].cancel();
    assert_eq!(s.once(), ["0", "2", "3"]);
}

/// NaN delays and deadlines are refused with `ValueError('delay must not be
/// NaN')`, and nothing is scheduled: the next timer is reached normally.
/// Rules: SCHED-6
#[test]
fn nan_times_are_refused() {
    let nan = |err: Error| {
        assert_eq!(err, Error::NanTime);
        assert_py_error(&err, "ValueError", "delay must not be NaN");
    };
    let s = Scene::new();
    nan(s.call_later(f64::NAN, s.cb("nan")).unwrap_err());
    nan(s.call_later(-f64::NAN, s.cb("nan")).unwrap_err());
    nan(s.call_at(f64::NAN, s.cb("nan")).unwrap_err());
    s.call_at(0.5, s.cb("ok")).unwrap();
    s.later_stop(1.0, "ok");
    assert_eq!(s.forever(), ["ok", "ok"]);
    assert_eq!(s.time(), 1.0);
    nan(s
        .run_until_complete(async { sleep(f64::NAN).await })
        .unwrap_err());
    assert_eq!(s.time(), 1.0);
}

/// A failing (panicking) callback is reported as `Exception in callback
/// <handle repr>` with the panic as the exception — a formatted message as
/// it is — and the loop goes on with the next callback, later iterations and
/// timers (CPython: `['after-bad']`).
/// Rules: SCHED-7
#[test]
fn a_panicking_callback_is_reported_and_the_loop_goes_on() {
    let s = Scene::new();
    let seen = capture_exceptions(&s);
    let h = s.call_soon(|| panic!("boom")).unwrap();
    s.soon_log("after-bad");
    let n = 42;
    s.call_soon(move || panic!("bad {n}")).unwrap();
    s.call_later(1.0, || panic!("timer")).unwrap();
    s.later_stop(2.0, "end");
    assert_eq!(s.forever(), ["after-bad", "end"]);
    assert_eq!(s.time(), 2.0);
    assert!(!s.is_running());
    let seen = seen.lock().unwrap();
    let excs: Vec<_> = seen.iter().map(|c| c.exception.clone()).collect();
    let panic = |m: &str| Some(Error::Panic(m.into()));
    assert_eq!(excs, [panic("boom"), panic("bad 42"), panic("timer")]);
    assert_eq!(seen[0].message, format!("Exception in callback {h:?}"));
    assert_eq!(seen[0].handle, Some(format!("{h:?}")));
    assert_eq!(excs[0].as_ref().unwrap().to_string(), "boom");
    let prefix = "Exception in callback ";
    assert!(seen.iter().all(|c| c.message.starts_with(prefix)));
}

/// A failing done callback is reported the same way and the others still
/// run; with the default handler (one line on stderr) the loop goes on as
/// well, and nothing panics out of the run.
/// Rules: SCHED-7
#[test]
fn a_panicking_done_callback_or_default_handler_changes_nothing_else() {
    let s = Scene::new();
    let seen = capture_exceptions(&s);
    let fut: Future<u8> = s.create_future();
    let bad: LocalDoneCallback<u8> = Rc::new(|_: &Future<u8>| panic!("done-boom"));
    let log = s.log.clone();
    let good: LocalDoneCallback<u8> = Rc::new(move |_: &Future<u8>| log.push("good"));
    fut.add_done_callback_local(bad).unwrap();
    fut.add_done_callback_local(good).unwrap();
    fut.set_result(1).unwrap();
    assert_eq!(s.once(), ["good"]);
    assert_eq!(seen.messages().len(), 1);
    assert!(seen.messages()[0].starts_with("Exception in callback "));
    let exc = seen.lock().unwrap()[0].exception.clone();
    assert_eq!(exc, Some(Error::Panic("done-boom".into())));
    s.set_exception_handler(None);
    s.call_soon(|| panic!("default-handler")).unwrap();
    s.soon_log("after-bad");
    assert_eq!(s.once(), ["after-bad"]);
}

/// `set_exception_handler(h)` installs `h(loop, context)`, which
/// `call_exception_handler` calls too; `None` restores the default.
/// Rules: SCHED-8
#[test]
fn a_custom_handler_receives_the_loop_and_the_context() {
    let s = Scene::new();
    let got = Arc::new(Mutex::new(Vec::<(EventLoop, ExceptionContext)>::new()));
    let g = got.clone();
    let handler: ExceptionHandler = Arc::new(move |l: &EventLoop, c: &ExceptionContext| {
        g.lock().unwrap().push((l.clone(), c.clone()));
    });
    assert!(s.get_exception_handler().is_none());
    s.set_exception_handler(Some(handler.clone()));
    let installed = s.get_exception_handler().expect("handler installed");
    assert!(Arc::ptr_eq(&installed, &handler));
    s.call_soon(|| panic!("x")).unwrap();
    s.once();
    s.call_exception_handler(&ExceptionContext::new("direct"));
    // Restored: the old handler is not called any more.
    s.set_exception_handler(None);
    assert!(s.get_exception_handler().is_none());
    s.call_soon(|| panic!("to default")).unwrap();
    s.soon_log("after");
    assert_eq!(s.once(), ["after"]);
    let got = got.lock().unwrap();
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|(l, _)| *l == s.lp));
    assert!(got[0].1.message.starts_with("Exception in callback "));
    assert_eq!(got[0].1.exception, Some(Error::Panic("x".into())));
    assert_eq!(got[1].1, ExceptionContext::new("direct"));
}

/// A handler that itself raises (panics) leads to the default handler
/// (`Unhandled error in exception handler`) and the loop goes on; the custom
/// handler stays installed and is called again next time, and a direct call
/// does not panic out either.
/// Rules: SCHED-8
#[test]
fn a_panicking_handler_falls_back_to_the_default_and_the_loop_goes_on() {
    let s = Scene::new();
    let calls = counter();
    let c = calls.clone();
    s.set_exception_handler(Some(Arc::new(
        move |_: &EventLoop, _: &ExceptionContext| {
            c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            panic!("handler broken");
        },
    )));
    s.call_soon(|| panic!("first")).unwrap();
    s.soon_log("between");
    s.call_soon(|| panic!("second")).unwrap();
    s.soon_log("after");
    assert_eq!(s.once(), ["between", "after"]);
    assert_eq!(count(&calls), 2);
    assert!(s.get_exception_handler().is_some());
    s.call_exception_handler(&ExceptionContext::new("direct"));
    assert_eq!(count(&calls), 3);
    s.later_stop(1.0, "end");
    assert_eq!(s.forever(), ["end"]);
}
