//! ASCOMP rules of SPEC.md: `as_completed(fs, timeout)` yields the distinct
//! futures in completion order, and after its timeout a `TimeoutError` for
//! each one not yet completed, cancelling nothing. Expected values were
//! checked on CPython 3.11.7 and 3.12.1 on a virtual-clock loop.

use common::{assert_holds_no_work, sleeper, vloop};
use loopspec::{Error, EventLoop, Future, Task, as_completed};

fn value_error(msg: &str) -> Error {
    Error::raise("ValueError", msg)
}

/// Drains `as_completed(fs, timeout)` in a task: each yielded future's
/// result (or error), with the virtual time it was yielded at.
fn drain(
    lp: &EventLoop,
    fs: Vec<Future<i32>>,
    timeout: Option<f64>,
) -> Vec<(loopspec::Result<i32>, f64)> {
    let lp2 = lp.clone();
    lp.run_until_complete(async move {
        let mut it = as_completed(fs, timeout)?;
        let mut out = Vec::new();
        while let Some(next) = it.next().await {
            let r = next.and_then(|f| f.result());
            out.push((r, lp2.time()));
        }
        Ok(out)
    })
    .unwrap()
}

// ---------------------------------------------------------------------------
// ASCOMP-1: completion order
// ---------------------------------------------------------------------------

/// Rules: ASCOMP-1
#[test]
fn as_completed_yields_in_completion_order() {
    let lp = vloop();
    let fs: Vec<Future<i32>> = [3.0, 1.0, 2.0]
        .iter()
        .map(|&d| sleeper(&lp, d, d as i32).into_future())
        .collect();
    let out = drain(&lp, fs, None);
    assert_eq!(out, [(Ok(1), 1.0), (Ok(2), 2.0), (Ok(3), 3.0)]);
}

/// Rules: ASCOMP-1
#[test]
fn as_completed_yields_the_futures_themselves() {
    let lp = vloop();
    let a = sleeper(&lp, 2.0, 1);
    let b = sleeper(&lp, 1.0, 2);
    let (a2, b2) = (a.clone(), b.clone());
    let order = lp
        .run_until_complete(async move {
            let mut it = as_completed([a2.clone(), b2.clone()], None)?;
            let first = it.next().await.unwrap()?;
            let second = it.next().await.unwrap()?;
            Ok((first == *b2.as_future(), second == *a2.as_future()))
        })
        .unwrap();
    assert_eq!(order, (true, true));
}

/// Rules: ASCOMP-1
#[test]
fn as_completed_yields_each_distinct_future_once() {
    let lp = vloop();
    let a = sleeper(&lp, 1.0, 1);
    let b = sleeper(&lp, 2.0, 2);
    let fs = vec![
        a.as_future().clone(),
        b.as_future().clone(),
        a.as_future().clone(),
        a.as_future().clone(),
    ];
    let it = as_completed(fs.clone(), None).unwrap();
    assert_eq!(it.remaining(), 2);
    drop(it);
    let out = drain(&lp, fs, None);
    assert_eq!(out, [(Ok(1), 1.0), (Ok(2), 2.0)]);
}

/// Rules: ASCOMP-1
#[test]
fn as_completed_yields_failed_and_cancelled_futures_too() {
    let lp = vloop();
    let bad = lp.create_future::<i32>();
    let gone = lp.create_future::<i32>();
    let good = lp.create_future::<i32>();
    let (b, g, o) = (bad.clone(), gone.clone(), good.clone());
    lp.call_later(1.0, move || b.set_exception(value_error("x")).unwrap())
        .unwrap();
    lp.call_later(2.0, move || {
        g.cancel_with(Some("c".into()));
    })
    .unwrap();
    lp.call_later(3.0, move || o.set_result(3).unwrap())
        .unwrap();
    let out = drain(&lp, vec![good, gone, bad], None);
    assert_eq!(
        out,
        [
            (Err(value_error("x")), 1.0),
            (Err(Error::Cancelled(Some("c".into()))), 2.0),
            (Ok(3), 3.0)
        ]
    );
}

/// Rules: ASCOMP-1
#[test]
fn as_completed_of_done_futures_yields_them_all() {
    let lp = vloop();
    let fs: Vec<Future<i32>> = (0..3)
        .map(|i| {
            let f = lp.create_future();
            f.set_result(i).unwrap();
            f
        })
        .collect();
    let mut got: Vec<i32> = drain(&lp, fs, None)
        .into_iter()
        .map(|(r, _)| r.unwrap())
        .collect();
    got.sort();
    assert_eq!(got, [0, 1, 2]);
}

/// Rules: ASCOMP-1
#[test]
fn as_completed_is_exhausted_after_every_future() {
    let lp = vloop();
    let a = sleeper(&lp, 1.0, 1);
    let ends = lp
        .run_until_complete(async move {
            let mut it = as_completed([a], None)?;
            assert_eq!(it.remaining(), 1);
            it.next().await.unwrap()?;
            assert_eq!(it.remaining(), 0);
            Ok((it.next().await.is_none(), it.next().await.is_none()))
        })
        .unwrap();
    assert_eq!(ends, (true, true));
}

/// Rules: ASCOMP-1
#[test]
fn as_completed_of_nothing_yields_nothing() {
    let lp = vloop();
    let none = lp
        .run_until_complete(async {
            let mut it = as_completed(Vec::<Future<i32>>::new(), Some(1.0))?;
            Ok(it.next().await.is_none())
        })
        .unwrap();
    assert!(none);
    assert_eq!(lp.time(), 0.0);
}

// ---------------------------------------------------------------------------
// ASCOMP-2: timeout
// ---------------------------------------------------------------------------

/// Rules: ASCOMP-2
#[test]
fn as_completed_timeout_fails_the_rest_without_cancelling() {
    // CPython: delays 3, 1, 2 with timeout 2.5 -> [1, 2, TimeoutError]; no
    // task is cancelled and later they all finish ([3, 1, 2]).
    let lp = vloop();
    let ts: Vec<Task<i32>> = [3.0, 1.0, 2.0]
        .iter()
        .map(|&d| sleeper(&lp, d, d as i32))
        .collect();
    let fs: Vec<Future<i32>> = ts.iter().map(|t| t.as_future().clone()).collect();
    let out = drain(&lp, fs, Some(2.5));
    assert_eq!(
        out,
        [(Ok(1), 1.0), (Ok(2), 2.0), (Err(Error::Timeout), 2.5)]
    );
    let err = out[2].0.clone().unwrap_err();
    assert_eq!(err.python_type(), "TimeoutError");
    assert!(ts.iter().all(|t| !t.cancelled()));
    assert!(!ts[0].done());
    assert_eq!(lp.run_until_complete(ts[0].clone()).unwrap(), 3);
}

/// Rules: ASCOMP-2
#[test]
fn as_completed_timeout_gives_one_timeout_error_per_pending_future() {
    let lp = vloop();
    let a = lp.create_future::<i32>();
    let b = lp.create_future::<i32>();
    let out = drain(&lp, vec![a.clone(), b.clone()], Some(1.0));
    assert_eq!(
        out,
        [(Err(Error::Timeout), 1.0), (Err(Error::Timeout), 1.0)]
    );
    assert!(!a.done() && !b.done());
}

/// Rules: ASCOMP-2
#[test]
fn as_completed_completion_after_the_timeout_is_not_yielded() {
    let lp = vloop();
    let slow = sleeper(&lp, 2.0, 2);
    let s = slow.clone();
    let out = lp
        .run_until_complete(async move {
            let mut it = as_completed([s.clone()], Some(1.0))?;
            loopspec::sleep(3.0).await?; // the timeout passes, then s completes
            let first = it.next().await;
            let second = it.next().await;
            Ok((first.map(|r| r.map(|_| ())), second.is_none()))
        })
        .unwrap();
    assert_eq!(out, (Some(Err(Error::Timeout)), true));
    assert_eq!(slow.result().unwrap(), 2);
}

/// Rules: ASCOMP-2
#[test]
fn as_completed_timeout_after_everything_completed_changes_nothing() {
    let lp = vloop();
    let a = sleeper(&lp, 1.0, 1);
    let out = drain(&lp, vec![a.into_future()], Some(5.0));
    assert_eq!(out, [(Ok(1), 1.0)]);
    // the timer was cancelled: nothing keeps the loop busy until 5.0
    assert_holds_no_work(&lp);
}

/// A task cancels itself, then drains `as_completed` over one task, catching
/// every error: the cancelled wait uses up the only item up to 3.13, and
/// gives it back from 3.14, so the task still gets the future (the corpus
/// scenario `ascomp-3-interrupted-wait-gives-the-item-back`).
/// Rules: ASCOMP-3
#[test]
fn as_completed_interrupted_wait_gives_its_item_back_from_3_14() {
    for profile in loopspec::Profile::ALL {
        let lp = EventLoop::builder()
            .clock(loopspec::ClockKind::Virtual)
            .profile(profile)
            .build();
        let l = lp.clone();
        let items = lp
            .run_until_complete(async move {
                loopspec::current_task()?.expect("in a task").cancel();
                let s0 = l.create_task(async { Ok(1) })?;
                let mut it = as_completed([s0], None)?;
                let mut items = Vec::new();
                while let Some(next) = it.next().await {
                    items.push(next.and_then(|f| f.result()));
                }
                Ok(items)
            })
            .unwrap();
        let expected = if profile >= loopspec::Profile::Py314 {
            vec![Err(Error::Cancelled(None)), Ok(1)]
        } else {
            vec![Err(Error::Cancelled(None))]
        };
        assert_eq!(items, expected, "{profile:?}");
    }
}
