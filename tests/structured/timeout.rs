//! TIMEOUT rules of SPEC.md: `timeout`, `timeout_at` and `Timeout` — the
//! conversion of the timeout's own cancellation into `TimeoutError`, the
//! `uncancel()` rule that lets timeouts nest, `reschedule`, `when`, the
//! repr and its states, and the misuses. The expected values are what
//! CPython 3.11.7, 3.12.1, 3.13.18, 3.14.10 and 3.15.2 gave for the same
//! programs (all five agree on everything here); 3.10 has no
//! `asyncio.timeout`.

use common::{Scene, assert_py_error, cases, value_error};
use loopspec::{Error, Timeout, timeout, timeout_at};
use std::cell::RefCell;
use std::pin::pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// A slot to take a `Timeout` handle out of its body.
type Slot = Rc<RefCell<Option<Timeout>>>;

fn slot() -> Slot {
    Rc::new(RefCell::new(None))
}

fn keep(slot: &Slot, cm: &Timeout) {
    *slot.borrow_mut() = Some(cm.clone());
}

fn repr(slot: &Slot) -> String {
    format!("{:?}", slot.borrow().as_ref().expect("entered"))
}

/// The task's `cancelling()` count, from inside it.
fn cancelling() -> u32 {
    loopspec::current_task().unwrap().unwrap().cancelling()
}

/// At its deadline the timeout cancels the task; the body sees the
/// `CancelledError`, and leaving turns it into `TimeoutError` (empty
/// message), `expired()` true, the task's count back where it was. A body
/// that ends in time gives its value or its exception unchanged, and its
/// timer is gone; `timeout(None)` never expires; `timeout_at` takes loop
/// time. CPython: `TimeoutError()` at 1.0, `<Timeout [expired]> True`;
/// `ValueError('x') <Timeout [finished]>`.
/// Rules: TIMEOUT-1, TIMEOUT-7
#[test]
fn timeout_turns_its_own_expiry_into_timeout_error() {
    cases(&[
        ("expiry: TimeoutError at the deadline", |s| {
            let cm = slot();
            let c = cm.clone();
            let out = s.run_until_complete(async move {
                let r = timeout(Some(1.0), |t| async move {
                    keep(&c, &t);
                    let e = loopspec::sleep(10.0).await.unwrap_err();
                    assert!(e.is_cancelled() && t.expired());
                    assert_eq!(format!("{t:?}"), "<Timeout [expiring]>");
                    Err::<(), _>(e)
                })
                .await;
                Ok((r, cancelling()))
            });
            let (r, count) = out.unwrap();
            let err = r.unwrap_err();
            assert_eq!((&err, count, s.time()), (&Error::Timeout, 0, 1.0));
            assert_py_error(&err, "TimeoutError", "");
            assert_eq!(repr(&cm), "<Timeout [expired]>");
            assert!(cm.borrow().as_ref().unwrap().expired());
        }),
        ("in time: the value, the timer gone", |s| {
            let cm = slot();
            let c = cm.clone();
            let v = s.run_until_complete(timeout(Some(5.0), |t| async move {
                keep(&c, &t);
                loopspec::sleep(1.0).await?;
                Ok("in time")
            }));
            assert_eq!((v, s.time()), (Ok("in time"), 1.0));
            assert_eq!(repr(&cm), "<Timeout [finished]>");
            assert!(!cm.borrow().as_ref().unwrap().expired());
            // The timer was cancelled: the loop has nothing left at 5.0.
            s.later_stop(10.0, "stop");
            assert_eq!(s.forever(), ["stop"]);
        }),
        ("a body that raises: the exception, finished", |s| {
            let cm = slot();
            let c = cm.clone();
            let err = s.run_until_complete(timeout(Some(1.0), |t| async move {
                keep(&c, &t);
                Err::<(), _>(value_error("x"))
            }));
            assert_eq!(err, Err(value_error("x")));
            assert_eq!(repr(&cm), "<Timeout [finished]>");
        }),
        ("timeout(None) never expires", |s| {
            let v = s.run_until_complete(timeout(None, |t| async move {
                assert_eq!(
                    (t.when(), format!("{t:?}")),
                    (None, "<Timeout [active] when=None>".into())
                );
                loopspec::sleep(1000.0).await?;
                Ok(1)
            }));
            assert_eq!((v, s.time()), (Ok(1), 1000.0));
        }),
        ("timeout_at: a deadline in loop time", |s| {
            s.later_log(3.0, "later");
            s.once();
            let err = s.run_until_complete(timeout_at(Some(2.5), |t| async move {
                assert_eq!(t.when(), Some(2.5));
                loopspec::sleep(10.0).await
            }));
            assert_eq!((err, s.time()), (Err(Error::Timeout), 2.5));
        }),
    ]);
}

/// Entering needs a task of the running loop: in a plain callback,
/// `RuntimeError: Timeout should be used inside a task`; `timeout()` with
/// no running loop, and entering a `Timeout::new` there, `RuntimeError: no
/// running event loop` (CPython: `asyncio.timeout(1)` raises it at once,
/// `asyncio.timeout_at(1)` makes a `<Timeout [created]>`).
/// Rules: TIMEOUT-2
#[test]
fn a_timeout_is_entered_in_a_task() {
    let s = Scene::new();
    let seen = Rc::new(RefCell::new(None));
    let out = seen.clone();
    s.soon(move |_| {
        let mut t = pin!(timeout(Some(1.0), |_| async { Ok(5) }));
        *out.borrow_mut() = Some(t.as_mut().poll(&mut Context::from_waker(Waker::noop())));
    });
    s.once();
    let Some(Poll::Ready(Err(err))) = seen.borrow_mut().take() else {
        panic!("entered outside a task");
    };
    assert_eq!(err, Error::TimeoutOutsideTask);
    assert_py_error(&err, "RuntimeError", "Timeout should be used inside a task");
    let mut cx = Context::from_waker(Waker::noop());
    let mut t = pin!(timeout(Some(1.0), |_| async { Ok(5) }));
    assert_eq!(
        t.as_mut().poll(&mut cx),
        Poll::Ready(Err(Error::NoRunningLoop))
    );
    let cm = Timeout::new(Some(1.0));
    assert_eq!(format!("{cm:?}"), "<Timeout [created]>");
    let mut t = pin!(cm.enter(|_| async { Ok(5) }));
    assert_eq!(
        t.as_mut().poll(&mut cx),
        Poll::Ready(Err(Error::NoRunningLoop))
    );
    assert_eq!(format!("{cm:?}"), "<Timeout [created]>");
}

/// Only the timeout's own cancellation becomes `TimeoutError`: leaving an
/// expired timeout takes back its request (`uncancel()`), and converts only
/// if the count is then no higher than at entry and the body ended with a
/// `CancelledError`. Another cancellation in the same iteration wins
/// (CPython: the task ends cancelled with `('ext',)`, the timeout
/// `expired`); a body that swallows the cancellation returns its value; one
/// that raises something else raises it; a task that caught an earlier
/// cancellation (count 1 at entry) still gets `TimeoutError`.
/// Rules: TIMEOUT-3
#[test]
fn only_the_timeouts_own_cancellation_becomes_timeout_error() {
    cases(&[
        ("another cancellation at the same time wins", |s| {
            let cm = slot();
            let c = cm.clone();
            let victim = s.task(|_| async move {
                timeout(Some(1.0), |t| async move {
                    keep(&c, &t);
                    loopspec::sleep(10.0).await
                })
                .await
            });
            let v = victim.clone();
            s.later(1.0, move |_| {
                v.cancel_with(Some("ext".into()));
            });
            let err = s.run_until_complete(victim.clone());
            assert_eq!(err, Err(Error::Cancelled(Some("ext".into()))));
            assert!(victim.cancelled());
            assert_eq!(repr(&cm), "<Timeout [expired]>");
        }),
        ("a swallowed cancellation returns the value", |s| {
            let cm = slot();
            let c = cm.clone();
            let out = s.run_until_complete(async move {
                let v = timeout(Some(1.0), |t| async move {
                    keep(&c, &t);
                    let _ = loopspec::sleep(10.0).await;
                    Ok("swallowed")
                })
                .await;
                Ok((v, cancelling()))
            });
            assert_eq!(out, Ok((Ok("swallowed"), 0)));
            assert_eq!(repr(&cm), "<Timeout [expired]>");
        }),
        ("another exception after expiry passes through", |s| {
            let err = s.run_until_complete(timeout(Some(1.0), |_| async move {
                loopspec::sleep(10.0).await?;
                Ok(())
            }));
            assert_eq!(err, Err(Error::Timeout));
            let err = s.run_until_complete(timeout(Some(1.0), |_| async move {
                match loopspec::sleep(10.0).await {
                    Err(e) if e.is_cancelled() => Err::<(), _>(value_error("v")),
                    other => other,
                }
            }));
            assert_eq!(err, Err(value_error("v")));
        }),
        ("entered with a count of 1", |s| {
            let out = s.run_until_complete(async {
                let me = loopspec::current_task()?.unwrap();
                me.cancel();
                assert!(loopspec::yield_now().await.unwrap_err().is_cancelled());
                assert_eq!(me.cancelling(), 1);
                let r = timeout(Some(1.0), |_| loopspec::sleep(5.0)).await;
                Ok((r, me.cancelling()))
            });
            assert_eq!(out, Ok((Err(Error::Timeout), 1)));
        }),
    ]);
}

/// Timeouts nest: when the outer one expires the inner one sees a plain
/// `CancelledError` (`finished`, count 1) and the outer one reports
/// `TimeoutError`; with equal deadlines both expire, the inner one passes
/// the `CancelledError` on (the outer's request is still counted) and the
/// outer reports `TimeoutError`; an inner expiry alone is the inner one's
/// `TimeoutError`, the outer stays active.
/// Rules: TIMEOUT-4
#[test]
fn nested_timeouts_report_the_expiry_where_it_belongs() {
    type Seen = Rc<RefCell<Vec<String>>>;
    fn nested(s: &Scene, outer: f64, inner: f64) -> (loopspec::Result<()>, Vec<String>) {
        let seen: Seen = Rc::default();
        let log = seen.clone();
        let out = s.run_until_complete(timeout(Some(outer), move |o| async move {
            let l = log.clone();
            let r = timeout(Some(inner), |i| async move {
                let r = loopspec::sleep(10.0).await;
                l.borrow_mut().push(format!("{i:?}"));
                r
            })
            .await;
            let what = match &r {
                Err(Error::Timeout) => "inner TimeoutError",
                Err(e) if e.is_cancelled() => "inner CancelledError",
                _ => "inner other",
            };
            log.borrow_mut()
                .push(format!("{what} {} {o:?}", cancelling()));
            r
        }));
        let v = seen.borrow().clone();
        (out, v)
    }
    let s = Scene::new();
    let (out, seen) = nested(&s, 1.0, 5.0);
    assert_eq!(out, Err(Error::Timeout));
    assert_eq!(
        seen,
        [
            "<Timeout [active] when=5.0>",
            "inner CancelledError 1 <Timeout [expiring]>"
        ]
    );
    let s = Scene::new();
    let (out, seen) = nested(&s, 1.0, 1.0);
    assert_eq!(out, Err(Error::Timeout));
    assert_eq!(seen[1], "inner CancelledError 1 <Timeout [expiring]>");
    let s = Scene::new();
    let (out, seen) = nested(&s, 5.0, 1.0);
    assert_eq!(out, Err(Error::Timeout));
    assert_eq!(seen[1], "inner TimeoutError 0 <Timeout [active] when=5.0>");
}

/// `reschedule` moves the deadline, earlier or later, or removes it; a
/// deadline not in the future expires at the next iteration. Once the
/// timeout expired or was left it refuses: `RuntimeError: Cannot change
/// state of expiring Timeout` (`expired`, `finished`), as CPython does.
/// Rules: TIMEOUT-5
#[test]
fn reschedule_moves_the_deadline_while_the_timeout_is_active() {
    cases(&[
        ("earlier and later", |s| {
            let err = s.run_until_complete(timeout(Some(10.0), |t| async move {
                t.reschedule(Some(2.0))?;
                loopspec::sleep(5.0).await
            }));
            assert_eq!((err, s.time()), (Err(Error::Timeout), 2.0));
            let err = s.run_until_complete(timeout(Some(1.0), |t| async move {
                t.reschedule(Some(4.0))?;
                assert_eq!(format!("{t:?}"), "<Timeout [active] when=4.0>");
                loopspec::sleep(5.0).await
            }));
            assert_eq!((err, s.time()), (Err(Error::Timeout), 4.0));
        }),
        ("to None: no deadline", |s| {
            let v = s.run_until_complete(timeout(Some(1.0), |t| async move {
                t.reschedule(None)?;
                assert_eq!(
                    (t.when(), format!("{t:?}")),
                    (None, "<Timeout [active] when=None>".into())
                );
                loopspec::sleep(5.0).await
            }));
            assert_eq!((v, s.time()), (Ok(()), 5.0));
        }),
        ("to the past: the next iteration", |s| {
            let v = s.run_until_complete(timeout(None, |t| async move {
                t.reschedule(Some(-1.0))?;
                let first = loopspec::yield_now().await;
                Ok(first)
            }));
            assert!(v.unwrap().unwrap_err().is_cancelled());
            assert_eq!(s.time(), 0.0);
        }),
        ("while expiring, after expiry, after exit", |s| {
            let cm = slot();
            let c = cm.clone();
            let out = s.run_until_complete(timeout(Some(1.0), |t| async move {
                keep(&c, &t);
                let _ = loopspec::sleep(10.0).await;
                Ok(t.reschedule(None))
            }));
            let err = out.unwrap().unwrap_err();
            assert_py_error(
                &err,
                "RuntimeError",
                "Cannot change state of expiring Timeout",
            );
            let cm = cm.borrow().clone().unwrap();
            let err = cm.reschedule(Some(5.0)).unwrap_err();
            assert_py_error(
                &err,
                "RuntimeError",
                "Cannot change state of expired Timeout",
            );
            let c = slot();
            let c2 = c.clone();
            s.run_until_complete(timeout(Some(1.0), |t| async move {
                keep(&c2, &t);
                Ok(())
            }))
            .unwrap();
            let err = c.borrow().as_ref().unwrap().reschedule(None).unwrap_err();
            assert_eq!(
                err,
                Error::TimeoutState {
                    state: "finished".into()
                }
            );
            assert_py_error(
                &err,
                "RuntimeError",
                "Cannot change state of finished Timeout",
            );
        }),
    ]);
}

/// `Timeout::new` is `asyncio.Timeout(when)`: `reschedule` before entering
/// is `RuntimeError: Timeout has not been entered`; entering it twice, or
/// again after leaving, `RuntimeError: Timeout has already been entered`
/// (and the first entry goes on unharmed).
/// Rules: TIMEOUT-6
#[test]
fn a_timeout_is_entered_once() {
    let cm = Timeout::new(Some(1.0));
    let err = cm.reschedule(Some(5.0)).unwrap_err();
    assert_eq!(err, Error::TimeoutNotEntered);
    assert_py_error(&err, "RuntimeError", "Timeout has not been entered");
    assert_eq!(cm.when(), Some(1.0));
    let s = Scene::new();
    let c = cm.clone();
    let out = s.run_until_complete(async move {
        let again = c.clone();
        let inner = c
            .enter(|_| async move { Ok(again.enter(|_| async { Ok(1) }).await) })
            .await?;
        let after = c.enter(|_| async { Ok(2) }).await;
        Ok((inner, after))
    });
    let (inner, after) = out.unwrap();
    assert_eq!(inner, Err(Error::TimeoutEntered));
    assert_py_error(
        &inner.unwrap_err(),
        "RuntimeError",
        "Timeout has already been entered",
    );
    assert_eq!(after, Err(Error::TimeoutEntered));
    assert_eq!(format!("{cm:?}"), "<Timeout [finished]>");
}

/// A delay of zero or less (or a deadline already reached) expires at the
/// next iteration: the body runs until its first await, where it is
/// cancelled; a body that does not await finishes unexpired (CPython:
/// `<Timeout [active] when=...>` in the body, then `TimeoutError`; without an
/// await, `<Timeout [finished]> False`). The repr rounds `when` to 3 places.
/// Rules: TIMEOUT-8, TIMEOUT-7
#[test]
fn a_timeout_of_zero_or_less_expires_at_the_first_await() {
    for delay in [0.0, -1.0] {
        let s = Scene::new();
        s.later_stop(0.12345, "t");
        s.forever();
        let ran = Rc::new(RefCell::new(None));
        let r = ran.clone();
        let err = s.run_until_complete(timeout(Some(delay), |t| async move {
            *r.borrow_mut() = Some(format!("{t:?}"));
            loopspec::yield_now().await?;
            Ok("not reached")
        }));
        assert_eq!(err, Err(Error::Timeout), "{delay}");
        let when = if delay == 0.0 { "0.123" } else { "-0.877" };
        assert_eq!(
            ran.borrow().clone().unwrap(),
            format!("<Timeout [active] when={when}>")
        );
    }
    let s = Scene::new();
    let cm = slot();
    let c = cm.clone();
    let v = s.run_until_complete(timeout(Some(0.0), |t| async move {
        keep(&c, &t);
        Ok(1)
    }));
    assert_eq!(v, Ok(1));
    assert_eq!(repr(&cm), "<Timeout [finished]>");
}
