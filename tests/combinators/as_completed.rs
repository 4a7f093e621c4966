//! ASCOMP rules of SPEC.md: `as_completed(fs, timeout)` yields the distinct
//! futures in completion order, and after its timeout a `TimeoutError` for
//! each one not yet completed, cancelling nothing. Expected values were
//! checked on CPython 3.11.7 and 3.12.1 on a virtual-clock loop.

use common::{Scene, assert_holds_no_work, assert_py_error, sleeper, value_error};
use loopspec::{Error, Future, Profile, Task, as_completed};

/// Drains `as_completed(fs, timeout)` in a task: each yielded future's
/// result (or error), with the virtual time it was yielded at.
fn drain(
    s: &Scene,
    fs: Vec<Future<i32>>,
    timeout: Option<f64>,
) -> Vec<(loopspec::Result<i32>, f64)> {
    let me = s.clone();
    s.run_until_complete(async move {
        let mut it = as_completed(fs, timeout)?;
        let mut out = Vec::new();
        while let Some(next) = it.next().await {
            out.push((next.and_then(|f| f.result()), me.time()));
        }
        Ok(out)
    })
    .unwrap()
}

/// Tasks sleeping each delay and returning it.
fn sleepers(s: &Scene, delays: &[f64]) -> Vec<Task<i32>> {
    delays.iter().map(|&d| sleeper(s, d, d as i32)).collect()
}

fn futures(tasks: &[Task<i32>]) -> Vec<Future<i32>> {
    tasks.iter().map(|t| t.as_future().clone()).collect()
}

/// `as_completed` yields the futures themselves, each distinct one once, in
/// completion order — failed and cancelled ones too, done ones at once — and
/// is then exhausted; of nothing it yields nothing.
/// Rules: ASCOMP-1
#[test]
fn as_completed_yields_in_completion_order() {
    let s = Scene::new();
    let ts = sleepers(&s, &[3.0, 1.0, 2.0]);
    let out = drain(&s, futures(&ts), None);
    assert_eq!(out, [(Ok(1), 1.0), (Ok(2), 2.0), (Ok(3), 3.0)]);
    let s = Scene::new();
    let (a, b) = (sleeper(&s, 2.0, 1), sleeper(&s, 1.0, 2));
    let fs = futures(&[a.clone(), b.clone(), a.clone(), a.clone()]);
    assert_eq!(as_completed(fs.clone(), None).unwrap().remaining(), 2);
    let order = s.run_until_complete(async move {
        let mut it = as_completed(fs, None)?;
        let first = it.next().await.unwrap()?;
        let second = it.next().await.unwrap()?;
        assert_eq!(it.remaining(), 0);
        let ends = (it.next().await.is_none(), it.next().await.is_none());
        Ok((first == *b.as_future(), second == *a.as_future(), ends))
    });
    assert_eq!(order, Ok((true, true, (true, true))));
    let (bad, gone, good) = (s.create_future(), s.create_future(), s.create_future());
    let (b, g, o) = (bad.clone(), gone.clone(), good.clone());
    s.later(1.0, move |_| b.set_exception(value_error("x")).unwrap());
    s.later(2.0, move |_| {
        g.cancel_with(Some("c".into()));
    });
    s.later(3.0, move |_| o.set_result(3).unwrap());
    let out = drain(&s, vec![good, gone, bad], None);
    let cancelled = Err(Error::Cancelled(Some("c".into())));
    assert_eq!(
        out,
        [(Err(value_error("x")), 3.0), (cancelled, 4.0), (Ok(3), 5.0)]
    );
    let done: Vec<Future<i32>> = (0..3)
        .map(|i| {
            let f = s.create_future();
            f.set_result(i).unwrap();
            f
        })
        .collect();
    let mut got: Vec<i32> = drain(&s, done, None)
        .into_iter()
        .map(|(r, _)| r.unwrap())
        .collect();
    got.sort();
    assert_eq!(got, [0, 1, 2]);
    let t = s.time();
    assert!(drain(&s, vec![], Some(1.0)).is_empty());
    assert_eq!(s.time(), t);
}

/// After its timeout `as_completed` yields a `TimeoutError` for each future
/// not yet completed, cancelling none (CPython: delays 3, 1, 2 with timeout
/// 2.5 give `[1, 2, TimeoutError]`, and later they all finish), and nothing
/// for one that completes later; a timeout after everything completed
/// changes nothing, and its timer is gone.
/// Rules: ASCOMP-2
#[test]
fn as_completed_timeout_fails_the_rest_without_cancelling() {
    let s = Scene::new();
    let ts = sleepers(&s, &[3.0, 1.0, 2.0]);
    let out = drain(&s, futures(&ts), Some(2.5));
    assert_eq!(
        out,
        [(Ok(1), 1.0), (Ok(2), 2.0), (Err(Error::Timeout), 2.5)]
    );
    assert_py_error(out[2].0.as_ref().unwrap_err(), "TimeoutError", "");
    assert!(ts.iter().all(|t| !t.cancelled()) && !ts[0].done());
    assert_eq!(s.run_until_complete(ts[0].clone()), Ok(3));
    let (a, b) = (s.create_future::<i32>(), s.create_future::<i32>());
    let out = drain(&s, vec![a.clone(), b.clone()], Some(1.0));
    assert_eq!(
        out,
        [(Err(Error::Timeout), 4.0), (Err(Error::Timeout), 4.0)]
    );
    assert!(!a.done() && !b.done());
    let slow = sleeper(&s, 2.0, 2);
    let sl = slow.clone();
    let out = s.run_until_complete(async move {
        let mut it = as_completed([sl], Some(1.0))?;
        loopspec::sleep(3.0).await?; // the timeout passes, then it completes
        let first = it.next().await.map(|r| r.map(drop));
        Ok((first, it.next().await.is_none()))
    });
    assert_eq!(out, Ok((Some(Err(Error::Timeout)), true)));
    assert_eq!(slow.result(), Ok(2));
    let s = Scene::new();
    let out = drain(&s, futures(&sleepers(&s, &[1.0])), Some(5.0));
    assert_eq!(out, [(Ok(1), 1.0)]);
    assert_holds_no_work(&s);
}

/// A task cancels itself, then drains `as_completed` over one task, catching
/// every error: the cancelled wait uses up the only item up to 3.13, and
/// gives it back from 3.14, so the task still gets the future (the corpus
/// scenario `ascomp-3-interrupted-wait-gives-the-item-back`).
/// Rules: ASCOMP-3
#[test]
fn as_completed_interrupted_wait_gives_its_item_back_from_3_14() {
    for profile in Profile::ALL {
        let s = Scene::with_profile(profile);
        let me = s.clone();
        let items = s
            .run_until_complete(async move {
                loopspec::current_task()?.expect("in a task").cancel();
                let s0 = me.create_task(async { Ok(1) })?;
                let mut it = as_completed([s0], None)?;
                let mut items = Vec::new();
                while let Some(next) = it.next().await {
                    items.push(next.and_then(|f| f.result()));
                }
                Ok(items)
            })
            .unwrap();
        let mut expected = vec![Err(Error::Cancelled(None))];
        if profile >= Profile::Py314 {
            expected.push(Ok(1));
        }
        assert_eq!(items, expected, "{profile:?}");
    }
}
