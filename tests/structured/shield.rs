//! SHIELD rules of SPEC.md: `shield(aw)` — the outer future copies the
//! inner one's outcome, its cancellation does not reach the inner one, and
//! what becomes of an inner exception nobody awaits any more. The expected
//! values are what CPython 3.10.13, 3.11.7, 3.12.1, 3.13.18, 3.14.10 and
//! 3.15.2 gave for the same programs.
// A loopspec future passed to create_task as it is would be refused (TASK-2):
// the async blocks that only await one future are the coroutines under test.
#![allow(clippy::redundant_async_block)]

use common::{Scene, capture_exceptions, cases, sleeper, value_error};
use loopspec::{Error, Future, Profile, shield};

/// The outer future finishes as the inner one does: its result, its
/// exception, or cancelled — without the inner one's message (CPython:
/// `CancelledError()` for an inner `cancel("im")`). A coroutine becomes a
/// task of the running loop; an argument already done is returned as it is
/// (`shield(f) is f`), cancelled or not.
/// Rules: SHIELD-1
#[test]
fn shield_copies_the_inner_outcome() {
    cases(&[
        ("a result, from a coroutine", |s| {
            let v = s.run_until_complete(async {
                let outer = shield(async {
                    loopspec::sleep(1.0).await?;
                    Ok(5)
                })?;
                assert!(!outer.done());
                outer.await
            });
            assert_eq!((v, s.time()), (Ok(5), 1.0));
        }),
        ("an exception", |s| {
            let err = s.run_until_complete(async {
                shield(async { Err::<i32, _>(value_error("z")) })?.await
            });
            assert_eq!(err, Err(value_error("z")));
        }),
        ("a cancelled inner: cancelled, no message", |s| {
            let inner = sleeper(s, 10.0, 7);
            let outer = shield(inner.clone()).unwrap();
            s.once();
            inner.cancel_with(Some("im".into()));
            let err = s.run_until_complete(outer.clone());
            assert_eq!(err, Err(Error::Cancelled(None)));
            assert!(outer.cancelled());
        }),
        ("done arguments are returned as they are", |s| {
            let f = s.create_future::<i32>();
            f.set_result(1).unwrap();
            assert!(shield(f.clone()).unwrap() == f);
            let c = s.create_future::<i32>();
            c.cancel();
            assert!(shield(c.clone()).unwrap() == c);
            let p = s.create_future::<i32>();
            assert!(shield(p.clone()).unwrap() != p);
        }),
    ]);
}

/// Cancelling the outer future, or the task that awaits it, leaves the inner
/// work running to its end: the waiter ends cancelled with its own message
/// (`('m',)`; 3.10 `()`, it does not propagate messages), the outer future
/// is cancelled, and the inner task later gives its result (CPython:
/// "inner result 7").
/// Rules: SHIELD-2
#[test]
fn cancelling_the_shield_leaves_the_inner_work_running() {
    let s = Scene::new();
    let inner = sleeper(&s, 1.0, 7);
    let outer = shield(inner.clone()).unwrap();
    let o = outer.clone();
    let waiter = s.task(|_| async move { o.await });
    s.once();
    assert!(waiter.cancel_with(Some("m".into())));
    let err = s.run_until_complete(waiter.clone());
    assert_eq!(err, Err(Error::Cancelled(Some("m".into()))));
    assert!(outer.cancelled() && !inner.done());
    assert_eq!(s.run_until_complete(inner.clone()), Ok(7));
    assert_eq!(s.time(), 1.0);
    // Cancelling the outer future itself: the same.
    let inner = sleeper(&s, 1.0, 8);
    let outer = shield(inner.clone()).unwrap();
    s.once();
    assert!(outer.cancel());
    assert_eq!(s.run_until_complete(inner), Ok(8));
}

/// Once the outer future is cancelled, an exception the inner work ends
/// with is nobody's: it is reported as never retrieved (every version). If
/// the two finish in the same iteration, the inner future's callback still
/// runs: 3.10–3.13 read the exception there (no report), 3.14+ do not
/// (CPython 3.14.10/3.15.2: `Future exception was never retrieved`).
/// Rules: SHIELD-3, FUT-7
#[test]
fn an_inner_exception_after_the_outer_is_cancelled_is_reported() {
    for profile in [
        Profile::Py311,
        Profile::Py313,
        Profile::Py314,
        Profile::Py315,
    ] {
        let s = Scene::with_profile(profile);
        let seen = capture_exceptions(&s);
        let inner = s.task(|_| async {
            loopspec::sleep(1.0).await?;
            Err::<i32, _>(value_error("x"))
        });
        let outer = shield(inner.clone()).unwrap();
        s.once();
        outer.cancel();
        s.run_until_complete(async { loopspec::sleep(2.0).await })
            .unwrap();
        assert!(inner.done() && outer.cancelled());
        drop((inner, outer));
        assert_eq!(
            seen.messages(),
            ["Task exception was never retrieved"],
            "{profile:?}"
        );

        for inner_first in [true, false] {
            let seen = capture_exceptions(&s);
            let fut: Future<i32> = s.create_future();
            let outer = shield(fut.clone()).unwrap();
            if inner_first {
                fut.set_exception(value_error("same")).unwrap();
                outer.cancel();
            } else {
                outer.cancel();
                fut.set_exception(value_error("same")).unwrap();
            }
            s.once();
            s.once();
            drop((fut, outer));
            let expected: &[&str] = if profile >= Profile::Py314 {
                &["Future exception was never retrieved"]
            } else {
                &[]
            };
            assert_eq!(seen.messages(), expected, "{profile:?} {inner_first}");
        }
    }
}
