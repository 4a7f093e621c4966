//! WAITFOR rules of SPEC.md: `wait_for(aw, timeout)` as CPython 3.12+
//! builds it on `asyncio.timeout` — plain await without a timeout, cancel
//! then wait then `TimeoutError`, timeouts of zero or less, a swallowed
//! cancellation, cancelling the caller, and the GH-86296 race.
//! Observations follow catalogue section 7 (WF-1..WF-5), re-checked on
//! CPython 3.11.7 and 3.12.1 on a virtual-clock loop.

use common::{assert_holds_no_work, run_once, sleeper, vloop};
use loopspec::{ClockKind, Error, EventLoop, Profile, wait_for};
use std::cell::{Cell, RefCell};
use std::pin::pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

fn value_error(msg: &str) -> Error {
    Error::raise("ValueError", msg)
}

fn loop_with(profile: Profile) -> EventLoop {
    EventLoop::builder()
        .clock(ClockKind::Virtual)
        .profile(profile)
        .build()
}

// ---------------------------------------------------------------------------
// WAITFOR-1: timeout cancels, waits, then raises
// ---------------------------------------------------------------------------

/// Rules: WAITFOR-1
#[test]
fn wait_for_without_timeout_is_a_plain_await() {
    let lp = vloop();
    let v = lp
        .run_until_complete(wait_for(
            async {
                loopspec::sleep(1000.0).await?;
                Ok(7)
            },
            None,
        ))
        .unwrap();
    assert_eq!(v, 7);
    assert_eq!(lp.time(), 1000.0);
    let err = lp
        .run_until_complete(wait_for(async { Err::<i32, _>(value_error("x")) }, None))
        .unwrap_err();
    assert_eq!(err, value_error("x"));
}

/// Rules: WAITFOR-1
#[test]
fn wait_for_without_timeout_still_needs_a_running_loop() {
    // As in CPython 3.12+, whose `async with timeout(None)` looks for the
    // current task even without a timeout: outside a loop that fails.
    let mut w = pin!(wait_for(async { Ok(5) }, None));
    let mut cx = Context::from_waker(Waker::noop());
    assert!(matches!(
        w.as_mut().poll(&mut cx),
        Poll::Ready(Err(Error::NoRunningLoop))
    ));
}

/// Rules: WAITFOR-1
#[test]
fn wait_for_result_before_the_timeout_is_returned() {
    let lp = vloop();
    let v = lp
        .run_until_complete(wait_for(
            async {
                loopspec::sleep(1.0).await?;
                Ok("in time")
            },
            Some(5.0),
        ))
        .unwrap();
    assert_eq!(v, "in time");
    assert_eq!(lp.time(), 1.0);
    // the timeout's timer is gone: nothing else is scheduled
    assert_holds_no_work(&lp);
}

/// Rules: WAITFOR-1
#[test]
fn wait_for_error_before_the_timeout_propagates() {
    let lp = vloop();
    let err = lp
        .run_until_complete(wait_for(
            async {
                loopspec::sleep(1.0).await?;
                Err::<(), _>(value_error("early"))
            },
            Some(5.0),
        ))
        .unwrap_err();
    assert_eq!(err, value_error("early"));
    assert_eq!(lp.time(), 1.0);
}

/// Rules: WAITFOR-1
#[test]
fn wait_for_timeout_raises_timeout_error() {
    let lp = vloop();
    let err = lp
        .run_until_complete(wait_for(
            async {
                loopspec::sleep(10.0).await?;
                Ok(())
            },
            Some(1.0),
        ))
        .unwrap_err();
    assert_eq!(err, Error::Timeout);
    assert_eq!(err.python_type(), "TimeoutError");
    assert_eq!(err.to_string(), "");
    assert_eq!(lp.time(), 1.0);
}

/// Rules: WAITFOR-1
#[test]
fn wait_for_timeout_waits_until_the_cancellation_has_finished() {
    // CPython ("WF1 TimeoutError after 3.0"): the work takes 2 more seconds
    // to handle its cancellation; TimeoutError comes after that.
    let lp = vloop();
    let cleaned = Rc::new(Cell::new(false));
    let c = cleaned.clone();
    let err = lp
        .run_until_complete(wait_for(
            async move {
                match loopspec::sleep(10.0).await {
                    Err(e) if e.is_cancelled() => {
                        loopspec::sleep(2.0).await?;
                        c.set(true);
                        Err(e)
                    }
                    other => other,
                }
            },
            Some(1.0),
        ))
        .unwrap_err();
    assert_eq!(err, Error::Timeout);
    assert!(cleaned.get());
    assert_eq!(lp.time(), 3.0);
}

/// Rules: WAITFOR-1
#[test]
fn wait_for_timeout_cancels_an_awaited_task() {
    let lp = vloop();
    let work = sleeper(&lp, 10.0, 1);
    let w = work.clone();
    let err = lp
        .run_until_complete(async move { wait_for(w, Some(2.0)).await })
        .unwrap_err();
    assert_eq!(err, Error::Timeout);
    assert!(work.cancelled());
    assert_eq!(lp.time(), 2.0);
}

/// Rules: WAITFOR-1
#[test]
fn wait_for_positive_timeout_outside_a_task_fails() {
    // CPython 3.12.1: RuntimeError: Timeout should be used inside a task
    // (driven by hand from a plain callback of the running loop).
    let lp = vloop();
    let seen = Rc::new(RefCell::new(None));
    let s = seen.clone();
    lp.call_soon(move || {
        let mut w = pin!(wait_for(async { Ok(5) }, Some(1.0)));
        let mut cx = Context::from_waker(Waker::noop());
        *s.borrow_mut() = Some(match w.as_mut().poll(&mut cx) {
            Poll::Ready(r) => r,
            Poll::Pending => Ok(-1),
        });
    })
    .unwrap();
    run_once(&lp);
    let err = seen.borrow_mut().take().unwrap().unwrap_err();
    assert_eq!(err, Error::TimeoutOutsideTask);
    assert_eq!(err.to_string(), "Timeout should be used inside a task");
    assert_eq!(err.python_type(), "RuntimeError");
}

/// Rules: WAITFOR-1
#[test]
fn wait_for_timeout_counts_only_its_own_cancellation() {
    // The caller is not left with a pending cancellation: it goes on after
    // the TimeoutError, and its cancelling() count is back to zero.
    let lp = vloop();
    let out = lp
        .run_until_complete(async {
            let r = wait_for(
                async {
                    loopspec::sleep(10.0).await?;
                    Ok(())
                },
                Some(1.0),
            )
            .await;
            assert_eq!(r, Err(Error::Timeout));
            let me = loopspec::current_task()?.unwrap();
            assert_eq!(me.cancelling(), 0);
            loopspec::sleep(1.0).await?;
            Ok("went on")
        })
        .unwrap();
    assert_eq!(out, "went on");
    assert_eq!(lp.time(), 2.0);
}

// ---------------------------------------------------------------------------
// WAITFOR-2: a timeout of zero or less
// ---------------------------------------------------------------------------

/// Rules: WAITFOR-2
#[test]
fn wait_for_zero_timeout_of_a_done_future_gives_its_result() {
    for timeout in [0.0, -1.0] {
        let lp = vloop();
        let f = lp.create_future::<i32>();
        f.set_result(3).unwrap();
        let v = lp.run_until_complete(wait_for(f, Some(timeout))).unwrap();
        assert_eq!(v, 3);
    }
}

/// Rules: WAITFOR-2
#[test]
fn wait_for_zero_timeout_of_a_failed_future_raises_its_exception() {
    let lp = vloop();
    let f = lp.create_future::<i32>();
    f.set_exception(value_error("done badly")).unwrap();
    let err = lp.run_until_complete(wait_for(f, Some(0.0))).unwrap_err();
    assert_eq!(err, value_error("done badly"));
}

/// Rules: WAITFOR-2
#[test]
fn wait_for_zero_timeout_never_starts_a_coroutine() {
    // CPython ("WF2 coroutine timeout 0 -> TimeoutError, started []").
    for timeout in [0.0, -2.0] {
        let lp = vloop();
        let started = Rc::new(Cell::new(false));
        let s = started.clone();
        let err = lp
            .run_until_complete(wait_for(
                async move {
                    s.set(true);
                    Ok(1)
                },
                Some(timeout),
            ))
            .unwrap_err();
        assert_eq!(err, Error::Timeout);
        assert_eq!(err.python_type(), "TimeoutError");
        assert!(!started.get());
    }
}

/// Rules: WAITFOR-2
#[test]
fn wait_for_zero_timeout_cancels_a_pending_task_and_waits_for_it() {
    let lp = vloop();
    let work = lp
        .create_task(async {
            match loopspec::sleep(10.0).await {
                Err(e) if e.is_cancelled() => {
                    loopspec::sleep(1.0).await?;
                    Err(e)
                }
                other => other.map(|_| 0),
            }
        })
        .unwrap();
    run_once(&lp); // it sleeps
    let w = work.clone();
    let err = lp
        .run_until_complete(async move { wait_for(w, Some(0.0)).await })
        .unwrap_err();
    assert_eq!(err, Error::Timeout);
    assert!(work.cancelled());
    assert_eq!(lp.time(), 1.0);
}

/// Rules: WAITFOR-2
#[test]
fn wait_for_zero_timeout_of_a_task_that_swallows_returns_its_value() {
    // CPython ("WF2 pending swallowing task, timeout -1 -> swallowed").
    let lp = vloop();
    let work = lp
        .create_task(async {
            match loopspec::sleep(10.0).await {
                Err(e) if e.is_cancelled() => Ok("swallowed"),
                other => other.map(|_| "slept"),
            }
        })
        .unwrap();
    run_once(&lp);
    let v = lp
        .run_until_complete(async move { wait_for(work, Some(-1.0)).await })
        .unwrap();
    assert_eq!(v, "swallowed");
}

// ---------------------------------------------------------------------------
// WAITFOR-3: swallowed cancellation returns the value
// ---------------------------------------------------------------------------

/// Rules: WAITFOR-3
#[test]
fn wait_for_swallowed_cancellation_returns_the_value() {
    // CPython 3.12.1 ("WF3 swallowed -> swallowed at 1.0"); 3.11.7 gives the
    // same, and loopspec uses the 3.12 mechanism in every profile.
    for profile in [Profile::Py311, Profile::Py312] {
        let lp = loop_with(profile);
        let v = lp
            .run_until_complete(wait_for(
                async {
                    match loopspec::sleep(10.0).await {
                        Err(e) if e.is_cancelled() => Ok("swallowed"),
                        other => other.map(|_| "slept"),
                    }
                },
                Some(1.0),
            ))
            .unwrap();
        assert_eq!(v, "swallowed", "{profile:?}");
        assert_eq!(lp.time(), 1.0);
    }
}

/// Rules: WAITFOR-3
#[test]
fn wait_for_task_that_swallows_the_timeout_returns_its_value() {
    let lp = loop_with(Profile::Py312);
    let work = lp
        .create_task(async {
            match loopspec::sleep(10.0).await {
                Err(e) if e.is_cancelled() => {
                    loopspec::sleep(1.0).await?;
                    Ok(42)
                }
                other => other.map(|_| 0),
            }
        })
        .unwrap();
    let w = work.clone();
    let v = lp
        .run_until_complete(async move { wait_for(w, Some(2.0)).await })
        .unwrap();
    assert_eq!(v, 42);
    assert_eq!(lp.time(), 3.0);
    assert!(!work.cancelled());
}

// ---------------------------------------------------------------------------
// WAITFOR-4: cancelling wait_for cancels the work
// ---------------------------------------------------------------------------

/// Rules: WAITFOR-4
#[test]
fn cancelling_wait_for_cancels_the_work_and_raises_cancelled_error() {
    // CPython ("WF4: caller sees CancelledError ('bye',)"), not TimeoutError.
    let lp = vloop();
    let work = sleeper(&lp, 10.0, 1);
    let w = work.clone();
    let caller = lp
        .create_task(async move { wait_for(w, Some(5.0)).await })
        .unwrap();
    let c = caller.clone();
    lp.call_later(1.0, move || {
        c.cancel_with(Some("bye".into()));
    })
    .unwrap();
    let err = lp.run_until_complete(caller.clone()).unwrap_err();
    assert_eq!(err, Error::Cancelled(Some("bye".into())));
    assert_eq!(err.python_type(), "CancelledError");
    assert!(work.cancelled());
    assert!(caller.cancelled());
    assert_eq!(lp.time(), 1.0);
}

/// Rules: WAITFOR-4
#[test]
fn cancelling_wait_for_of_a_coroutine_cancels_what_it_awaits() {
    let lp = vloop();
    let inner_saw = Rc::new(RefCell::new(None));
    let s = inner_saw.clone();
    let caller = lp
        .create_task(async move {
            wait_for(
                async move {
                    let r = loopspec::sleep(10.0).await;
                    *s.borrow_mut() = Some(r.clone());
                    r
                },
                Some(5.0),
            )
            .await
        })
        .unwrap();
    let c = caller.clone();
    lp.call_later(2.0, move || {
        c.cancel();
    })
    .unwrap();
    let err = lp.run_until_complete(caller).unwrap_err();
    assert!(err.is_cancelled());
    assert_ne!(err, Error::Timeout);
    assert!(
        inner_saw
            .borrow()
            .as_ref()
            .unwrap()
            .as_ref()
            .unwrap_err()
            .is_cancelled()
    );
    assert_eq!(lp.time(), 2.0);
}

// ---------------------------------------------------------------------------
// WAITFOR-5: a cancellation racing with completion is not lost
// ---------------------------------------------------------------------------

/// Rules: WAITFOR-5
#[test]
fn wait_for_cancellation_in_the_completing_iteration_is_not_lost() {
    // CPython 3.12.1: "outer cancelled ('m',) []"; 3.11.7 loses it and the
    // task goes on ("outer not cancelled ['done', 'end']"). loopspec follows
    // 3.12+ in every profile.
    for profile in [Profile::Py311, Profile::Py312] {
        let lp = loop_with(profile);
        let inner = lp.create_future::<&str>();
        let reached = Rc::new(Cell::new(false));
        let (i, r) = (inner.clone(), reached.clone());
        let outer = lp
            .create_task(async move {
                wait_for(i, Some(100.0)).await?;
                r.set(true);
                loopspec::sleep(1.0).await?;
                Ok(())
            })
            .unwrap();
        run_once(&lp); // outer waits on inner
        let (i, o) = (inner.clone(), outer.clone());
        lp.call_soon(move || {
            i.set_result("done").unwrap();
            o.cancel_with(Some("m".into()));
        })
        .unwrap();
        let err = lp.run_until_complete(outer.clone()).unwrap_err();
        assert_eq!(err, Error::Cancelled(Some("m".into())), "{profile:?}");
        assert!(outer.cancelled());
        assert!(!reached.get());
        assert_eq!(inner.result().unwrap(), "done");
    }
}

/// Rules: WAITFOR-5
#[test]
fn wait_for_issue86296_inner_task_done_in_one_step() {
    // CPython's test_wait_for_issue86296: the task is cancelled and does not
    // run to its end.
    let lp = loop_with(Profile::Py312);
    let inner = lp.create_task(async { Ok("done") }).unwrap();
    let reached = Rc::new(Cell::new(false));
    let (i, r) = (inner.clone(), reached.clone());
    let task = lp
        .create_task(async move {
            wait_for(i, Some(100.0)).await?;
            loopspec::sleep(1.0).await?;
            r.set(true);
            Ok(())
        })
        .unwrap();
    run_once(&lp);
    assert!(task.cancel());
    assert!(
        lp.run_until_complete(task.clone())
            .unwrap_err()
            .is_cancelled()
    );
    assert!(inner.done());
    assert_eq!(inner.result().unwrap(), "done");
    assert!(!reached.get());
}
