//! WAITFOR rules of SPEC.md: `wait_for(aw, timeout)` as CPython 3.12+
//! builds it on `asyncio.timeout`, and as 3.10/3.11 build it with a waiter
//! future (the `Py311` profile, the default of these tests' scenes) —
//! plain await without a timeout, cancel
//! then wait then `TimeoutError`, timeouts of zero or less, a swallowed
//! cancellation, cancelling the caller, and the GH-86296 race. The expected
//! values are CPython's, 3.11.7 and 3.12.1 on a virtual-clock loop.

use common::{Scene, assert_holds_no_work, assert_py_error, cases, sleeper, value_error};
use loopspec::{Error, Profile, Task, wait_for};
use std::cell::RefCell;
use std::pin::pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// A coroutine that sleeps `delay` and returns `value`; if cancelled, it
/// records `cancelled`, and after `cleanup` more seconds of sleep returns
/// `swallowed` if that is `Some`, or raises the `CancelledError` again.
async fn work<T>(
    s: Scene,
    delay: f64,
    value: T,
    cleanup: f64,
    swallowed: Option<T>,
) -> loopspec::Result<T> {
    match loopspec::sleep(delay).await {
        Err(e) if e.is_cancelled() => {
            s.push("cancelled");
            if cleanup > 0.0 {
                loopspec::sleep(cleanup).await?;
            }
            swallowed.ok_or(e)
        }
        other => other.map(|()| value),
    }
}

/// `wait_for(task, timeout)`, awaited by a new task on `s`'s loop.
fn wait_for_task<T: Clone + Send + 'static>(s: &Scene, task: &Task<T>, timeout: f64) -> Task<T> {
    let t = task.clone();
    s.task(move |_| async move { wait_for(t, Some(timeout)).await })
}

/// Without a timeout `wait_for` is a plain await (which still needs a
/// running loop, as CPython 3.12+'s `async with timeout(None)` looks for
/// the current task); before the timeout the result or the exception comes
/// through and the timeout's timer is gone.
/// Rules: WAITFOR-1
#[test]
fn wait_for_before_its_timeout_is_a_plain_await() {
    let s = Scene::new();
    let v = s.run_until_complete(wait_for(work(s.clone(), 1000.0, 7, 0.0, None), None));
    assert_eq!((v, s.time()), (Ok(7), 1000.0));
    let err = s.run_until_complete(wait_for(async { Err::<i32, _>(value_error("x")) }, None));
    assert_eq!(err, Err(value_error("x")));
    let mut w = pin!(wait_for(async { Ok(5) }, None));
    let mut cx = Context::from_waker(Waker::noop());
    assert_eq!(
        w.as_mut().poll(&mut cx),
        Poll::Ready(Err(Error::NoRunningLoop))
    );
    let s = Scene::new();
    let v = s.run_until_complete(wait_for(
        work(s.clone(), 1.0, "in time", 0.0, None),
        Some(5.0),
    ));
    assert_eq!((v, s.time()), (Ok("in time"), 1.0));
    assert_holds_no_work(&s);
    let early = async {
        loopspec::sleep(1.0).await?;
        Err::<(), _>(value_error("early"))
    };
    let err = s.run_until_complete(wait_for(early, Some(5.0)));
    assert_eq!((err, s.time()), (Err(value_error("early")), 2.0));
}

/// At its timeout `wait_for` cancels the work — a coroutine or an awaited
/// task — waits until the cancellation has finished (CPython: "TimeoutError
/// after 3.0" for work that takes 2 s to handle it), then raises
/// `TimeoutError`; the caller keeps no cancellation of its own. Outside a
/// task a positive timeout is refused (CPython 3.12.1: `RuntimeError:
/// Timeout should be used inside a task`, driven by hand from a plain
/// callback of the running loop).
/// Rules: WAITFOR-1
#[test]
fn wait_for_at_its_timeout_cancels_waits_and_raises() {
    cases(&[
        ("TimeoutError, with an empty message", |s| {
            let err =
                s.run_until_complete(wait_for(work(s.clone(), 10.0, (), 0.0, None), Some(1.0)));
            let err = err.unwrap_err();
            assert_eq!(err, Error::Timeout);
            assert_py_error(&err, "TimeoutError", "");
            assert_eq!((s.take(), s.time()), (vec!["cancelled".into()], 1.0));
        }),
        ("after the cancellation has finished", |s| {
            let err =
                s.run_until_complete(wait_for(work(s.clone(), 10.0, (), 2.0, None), Some(1.0)));
            assert_eq!(
                (err, s.take()),
                (Err(Error::Timeout), vec!["cancelled".into()])
            );
            assert_eq!(s.time(), 3.0);
        }),
        ("an awaited task is cancelled", |s| {
            let task = sleeper(s, 10.0, 1);
            let err = s.run_until_complete(wait_for_task(s, &task, 2.0));
            assert_eq!(
                (err, task.cancelled(), s.time()),
                (Err(Error::Timeout), true, 2.0)
            );
        }),
        // The caller goes on after the TimeoutError, its cancelling() count
        // back to zero.
        ("the caller keeps no cancellation", |s| {
            let me = s.clone();
            let out = s.run_until_complete(async move {
                let r = wait_for(work(me, 10.0, (), 0.0, None), Some(1.0)).await;
                assert_eq!(r, Err(Error::Timeout));
                assert_eq!(loopspec::current_task()?.unwrap().cancelling(), 0);
                loopspec::sleep(1.0).await?;
                Ok("went on")
            });
            assert_eq!((out, s.time()), (Ok("went on"), 2.0));
        }),
        (
            "outside a task a positive timeout is refused (3.12+)",
            |_| {
                for (profile, refused) in [(Profile::Py311, false), (Profile::Py312, true)] {
                    let s = Scene::with_profile(profile);
                    let seen = Rc::new(RefCell::new(None));
                    let out = seen.clone();
                    s.soon(move |_| {
                        let mut w = pin!(wait_for(async { Ok(5) }, Some(1.0)));
                        let mut cx = Context::from_waker(Waker::noop());
                        *out.borrow_mut() = Some(w.as_mut().poll(&mut cx));
                    });
                    s.once();
                    let seen = seen.borrow_mut().take();
                    if !refused {
                        // 3.11 waits on its waiter future: nothing refuses it.
                        assert_eq!(seen, Some(Poll::Pending), "{profile:?}");
                        continue;
                    }
                    let Some(Poll::Ready(Err(err))) = seen else {
                        panic!("not refused");
                    };
                    assert_eq!(err, Error::TimeoutOutsideTask);
                    assert_py_error(&err, "RuntimeError", "Timeout should be used inside a task");
                }
            },
        ),
    ]);
}

/// A timeout of zero or less gives a done future's outcome, never starts a
/// coroutine (CPython: "coroutine timeout 0 -> TimeoutError, started []"),
/// and cancels a pending task and waits for it — whose swallowed
/// cancellation gives its value (CPython: "pending swallowing task, timeout
/// -1 -> swallowed").
/// Rules: WAITFOR-2
#[test]
fn wait_for_with_a_timeout_of_zero_or_less() {
    cases(&[
        ("a done future: its result or exception", |s| {
            for timeout in [0.0, -1.0] {
                let f = s.create_future::<i32>();
                f.set_result(3).unwrap();
                assert_eq!(s.run_until_complete(wait_for(f, Some(timeout))), Ok(3));
            }
            let f = s.create_future::<i32>();
            f.set_exception(value_error("done badly")).unwrap();
            let err = s.run_until_complete(wait_for(f, Some(0.0)));
            assert_eq!(err, Err(value_error("done badly")));
        }),
        ("a coroutine never starts", |s| {
            for timeout in [0.0, -2.0] {
                let me = s.clone();
                let started = async move {
                    me.push("started");
                    Ok(1)
                };
                let err = s.run_until_complete(wait_for(started, Some(timeout)));
                assert_eq!((err, s.take()), (Err(Error::Timeout), vec![]));
            }
        }),
        ("a pending task is cancelled and waited for", |s| {
            let task = s.task(|s| work(s, 10.0, 0, 1.0, None));
            s.once(); // it sleeps
            let err = s.run_until_complete(wait_for_task(s, &task, 0.0));
            assert_eq!(
                (err, task.cancelled(), s.time()),
                (Err(Error::Timeout), true, 1.0)
            );
        }),
        ("a task that swallows it gives its value", |s| {
            let task = s.task(|s| work(s, 10.0, "slept", 0.0, Some("swallowed")));
            s.once();
            assert_eq!(
                s.run_until_complete(wait_for_task(s, &task, -1.0)),
                Ok("swallowed")
            );
        }),
    ]);
}

/// A swallowed cancellation returns the value, from a coroutine or a task
/// (CPython 3.12.1: "swallowed at 1.0"; 3.11.7 gives the same, and loopspec
/// uses the 3.12 mechanism in every profile).
/// Rules: WAITFOR-3
#[test]
fn wait_for_of_work_that_swallows_the_timeout_returns_its_value() {
    for profile in [Profile::Py311, Profile::Py312] {
        let s = Scene::with_profile(profile);
        let coro = work(s.clone(), 10.0, "slept", 0.0, Some("swallowed"));
        let v = s.run_until_complete(wait_for(coro, Some(1.0)));
        assert_eq!((v, s.time()), (Ok("swallowed"), 1.0), "{profile:?}");
        let task = s.task(|s| work(s, 10.0, 0, 1.0, Some(42)));
        let v = s.run_until_complete(wait_for_task(&s, &task, 2.0));
        assert_eq!(
            (v, s.time(), task.cancelled()),
            (Ok(42), 4.0, false),
            "{profile:?}"
        );
    }
}

/// Cancelling the caller of `wait_for` cancels the work — a task, or what a
/// coroutine awaits — and the caller gets the `CancelledError` (CPython:
/// "caller sees CancelledError ('bye',)"), not a `TimeoutError`.
/// Rules: WAITFOR-4
#[test]
fn cancelling_wait_for_cancels_the_work() {
    let s = Scene::new();
    let task = sleeper(&s, 10.0, 1);
    let caller = wait_for_task(&s, &task, 5.0);
    let c = caller.clone();
    s.later(1.0, move |_| {
        c.cancel_with(Some("bye".into()));
    });
    let err = s.run_until_complete(caller.clone()).unwrap_err();
    assert_eq!(err, Error::Cancelled(Some("bye".into())));
    assert_py_error(&err, "CancelledError", "bye");
    assert!(task.cancelled() && caller.cancelled());
    assert_eq!(s.time(), 1.0);
    let caller = s.task(|s| async move { wait_for(work(s, 10.0, (), 0.0, None), Some(5.0)).await });
    let c = caller.clone();
    s.later(2.0, move |_| {
        c.cancel();
    });
    let err = s.run_until_complete(caller).unwrap_err();
    assert!(err.is_cancelled() && err != Error::Timeout);
    assert_eq!((s.take(), s.time()), (vec!["cancelled".into()], 3.0));
}

/// A cancellation of the caller in the iteration where the work completes is
/// not lost in 3.12+: the caller ends cancelled and does not run on (CPython
/// 3.12.1: "outer cancelled ('m',) []"); 3.10/3.11 lose it — 3.11.7: "outer
/// not cancelled ['done', 'end']" — and so does the `Py311` profile. Also
/// when the work is a task done in one step (CPython's
/// `test_wait_for_issue86296`, [gh-86296](https://github.com/python/cpython/issues/86296)).
/// Rules: WAITFOR-5
#[test]
fn a_cancellation_racing_with_completion_is_not_lost() {
    for profile in [Profile::Py311, Profile::Py312] {
        let s = Scene::with_profile(profile);
        let inner = s.create_future::<&str>();
        let i = inner.clone();
        let outer = s.task(|s| async move {
            wait_for(i, Some(100.0)).await?;
            s.push("reached");
            loopspec::sleep(1.0).await
        });
        let lost = profile == Profile::Py311;
        s.once(); // outer waits on inner
        let (i, o) = (inner.clone(), outer.clone());
        s.soon(move |_| {
            i.set_result("done").unwrap();
            o.cancel_with(Some("m".into()));
        });
        let out = s.run_until_complete(outer.clone());
        if lost {
            assert_eq!((out, s.take()), (Ok(()), vec!["reached".into()]));
        } else {
            assert_eq!(out, Err(Error::Cancelled(Some("m".into()))), "{profile:?}");
            assert!(outer.cancelled() && s.take().is_empty());
        }
        assert_eq!(inner.result(), Ok("done"));
    }
    let s = Scene::with_profile(Profile::Py312);
    let inner = s.task(|_| async { Ok("done") });
    let i = inner.clone();
    let task = s.task(|s| async move {
        wait_for(i, Some(100.0)).await?;
        loopspec::sleep(1.0).await?;
        s.push("reached");
        Ok(())
    });
    s.once();
    assert!(task.cancel());
    assert!(
        s.run_until_complete(task.clone())
            .unwrap_err()
            .is_cancelled()
    );
    assert_eq!((inner.result(), s.take()), (Ok("done"), vec![]));
}
