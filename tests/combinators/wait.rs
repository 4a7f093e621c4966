//! WAIT rules of SPEC.md: `wait(fs, timeout, return_when)` — argument
//! checks, `(done, pending)`, `ALL_COMPLETED` / `FIRST_COMPLETED` /
//! `FIRST_EXCEPTION`, timeouts and their boundary, and cancelling the waiting
//! task. The expected splits and iteration counts are CPython's (3.11.7,
//! 3.12.1 and 3.13.0, on a virtual-clock loop, counting its `_run_once`
//! calls).

use common::{
    Scene, assert_holds_no_work, assert_py_error, capture_exceptions, cases, value_error,
};
use loopspec::ReturnWhen::{self, AllCompleted as All, FirstCompleted as First, FirstException};
use loopspec::{Error, Future, Task, wait};
use std::cell::RefCell;
use std::pin::pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

type Split<T> = (Vec<Future<T>>, Vec<Future<T>>);

/// Where a [`waiting_task`] stores what `wait` returned.
type Slot = Rc<RefCell<Option<loopspec::Result<Split<i32>>>>>;

/// A child of a wait in [`wait_splits_its_children`]'s table.
#[derive(Clone, Copy, Debug)]
enum Kid {
    /// Sleeps that long, then returns its index.
    Ok(f64),
    /// Sleeps that long, then raises `ValueError`.
    Fails(f64),
    /// Sleeps that long, then panics.
    Panics(f64),
    /// Would sleep as long as the second value; cancelled at the first.
    CancelledAt(f64, f64),
    /// Yields once, then sleeps that long: its timer is made after the
    /// wait's.
    YieldsFirst(f64),
    /// The same future as child `i` (`wait` takes a set).
    Same(usize),
}

/// The children `kids` on `s`'s loop.
fn children(s: &Scene, kids: &[Kid]) -> Vec<Future<i32>> {
    let mut out: Vec<Future<i32>> = Vec::new();
    for (i, kid) in kids.iter().enumerate() {
        let v = i as i32;
        let task = |d: f64, end: fn(i32) -> loopspec::Result<i32>, first: bool| {
            s.task(move |_| async move {
                if first {
                    loopspec::yield_now().await?;
                }
                loopspec::sleep(d).await?;
                end(v)
            })
        };
        let t = match *kid {
            Kid::Ok(d) | Kid::CancelledAt(_, d) => task(d, Ok, false),
            Kid::YieldsFirst(d) => task(d, Ok, true),
            Kid::Fails(d) => task(d, |_| Err(value_error("bad")), false),
            Kid::Panics(d) => task(d, |_| panic!("boom"), false),
            Kid::Same(j) => {
                out.push(out[j].clone());
                continue;
            }
        };
        if let Kid::CancelledAt(at, _) = *kid {
            let victim = t.clone();
            s.later(at, move |_| {
                victim.cancel();
            });
        }
        out.push(t.into_future());
    }
    out
}

/// The position in `fs` of each of `got`.
fn positions(fs: &[Future<i32>], got: &[Future<i32>]) -> Vec<usize> {
    let at = |f: &Future<i32>| fs.iter().position(|x| x == f).expect("one of fs");
    got.iter().map(at).collect()
}

/// A task that runs `wait(fs, ...)` and stores what it returned.
fn waiting_task(
    s: &Scene,
    fs: Vec<Future<i32>>,
    timeout: Option<f64>,
    rw: ReturnWhen,
) -> (Task<()>, Slot) {
    let out: Slot = Rc::default();
    let o = out.clone();
    let t = s.task(|_| async move {
        let r = wait(fs, timeout, rw).await;
        *o.borrow_mut() = Some(r);
        Ok(())
    });
    (t, out)
}

/// Runs single iterations until `t` is done; returns how many it took.
fn iterations_until_done<T: Send + 'static>(s: &Scene, t: &Task<T>) -> usize {
    let mut n = 0;
    while !t.done() {
        s.once();
        n += 1;
        assert!(n < 100, "never finished");
    }
    n
}

/// Calling `wait()` checks nothing; awaiting it fails for an empty set
/// (`ValueError: Set of Tasks/Futures is empty.`) before it looks for a
/// running loop (CPython: `wait([]).send(None)` outside a loop is a
/// ValueError, `wait([fut])` a RuntimeError: no running event loop).
/// Rules: WAIT-1
#[test]
fn wait_checks_its_arguments_when_awaited() {
    drop(wait(Vec::<Future<i32>>::new(), Some(1.0), First));
    let s = Scene::new();
    let err = s
        .run_until_complete(wait(Vec::<Future<i32>>::new(), None, All))
        .unwrap_err();
    assert_eq!(err, Error::EmptyWait);
    assert_py_error(&err, "ValueError", "Set of Tasks/Futures is empty.");
    let mut cx = Context::from_waker(Waker::noop());
    let mut empty = pin!(wait(Vec::<Future<i32>>::new(), None, All));
    let Poll::Ready(Err(err)) = empty.as_mut().poll(&mut cx) else {
        panic!("an empty wait is not refused at once");
    };
    assert_eq!(err, Error::EmptyWait);
    let mut one = pin!(wait([s.create_future::<i32>()], None, All));
    let Poll::Ready(Err(err)) = one.as_mut().poll(&mut cx) else {
        panic!("a wait outside a loop is not refused at once");
    };
    assert_py_error(&err, "RuntimeError", "no running event loop");
}

/// `wait(fs, timeout, return_when)` returns `(done, pending)` as sets in
/// first-argument order — duplicates collapse (CPython: `[t, t, t]` gives
/// one done) — when its condition holds: `ALL_COMPLETED`, the last child;
/// `FIRST_COMPLETED`, the first, with every child done by then;
/// `FIRST_EXCEPTION`, the first failure (a panic counts, a cancellation
/// does not; CPython: done `{bad, ok}`, pending `{slow}`, and with a
/// cancelled child done `{c0, c1}`); or its timeout, whichever is first. A
/// child's timer made before the timeout's, at an equal deadline, fires
/// first. It never raises a child's exception, never cancels a child, and
/// its timer does not outlive it: each child ends as it would have, and
/// then the loop holds nothing.
/// Rules: WAIT-2, WAIT-3, WAIT-4
#[test]
fn wait_splits_its_children() {
    use Kid::*;
    type Row = (
        &'static str,
        &'static [Kid],
        Option<f64>,
        ReturnWhen,
        f64,
        &'static [usize],
        &'static [usize],
    );
    #[rustfmt::skip]
    let table: &[Row] = &[
        ("duplicates collapse",    &[Ok(1.0), Same(0), Same(0)],                None,      All,            1.0, &[0],       &[]),
        ("first-argument order",   &[Ok(5.0), Ok(3.0), Ok(2.0), Same(0), Ok(1.0)], Some(3.5), All,          3.5, &[1, 2, 4], &[0]),
        ("no raise, no cancel",    &[Fails(1.0), Ok(5.0)],                      None,      First,          1.0, &[0],       &[1]),
        ("all: the last",          &[Ok(1.0), Ok(4.0)],                         None,      All,            4.0, &[0, 1],    &[]),
        ("first: the first",       &[Ok(3.0), Ok(2.0)],                         None,      First,          2.0, &[1],       &[0]),
        ("first: all done by then", &[Ok(3.0), Ok(2.0), Ok(2.0)],               None,      First,          2.0, &[1, 2],    &[0]),
        ("exception: the first",   &[Fails(2.0), Ok(1.0), Ok(5.0)],             None,      FirstException, 2.0, &[0, 1],    &[2]),
        ("exception: not a cancel", &[CancelledAt(1.0, 5.0), Ok(3.0)],          None,      FirstException, 3.0, &[0, 1],    &[]),
        ("exception: a panic",     &[Ok(5.0), Panics(1.0)],                     None,      FirstException, 1.0, &[1],       &[0]),
        ("exception: none, all",   &[Ok(1.0), Ok(2.0)],                         None,      FirstException, 2.0, &[0, 1],    &[]),
        ("timeout: the split",     &[Ok(1.0), Ok(5.0)],                         Some(2.0), All,            2.0, &[0],       &[1]),
        ("timeout after the end",  &[Ok(1.0)],                                  Some(100.0), All,          1.0, &[0],       &[]),
        ("timeout after a child",  &[Ok(2.0)],                                  Some(2.0), All,            2.0, &[0],       &[]),
        ("timeout before a child", &[YieldsFirst(2.0)],                         Some(2.0), All,            2.0, &[],        &[0]),
        ("timeout: none done",     &[Ok(5.0)],                                  Some(3.0), First,          3.0, &[],        &[0]),
        ("timeout: first earlier", &[Ok(5.0), Ok(1.0)],                         Some(3.0), First,          1.0, &[1],       &[0]),
    ];
    for &(name, kids, timeout, when, at, done, pending) in table {
        let s = Scene::new();
        let fs = children(&s, kids);
        let (d, p) = s
            .run_until_complete(wait(fs.clone(), timeout, when))
            .unwrap_or_else(|e| panic!("{name}: wait raised {e:?}"));
        let got = (s.time(), positions(&fs, &d), positions(&fs, &p));
        assert_eq!(got, (at, done.to_vec(), pending.to_vec()), "{name}");
        for (i, (f, kid)) in fs.iter().zip(kids).enumerate() {
            let ended = s.run_until_complete(f.clone());
            let want = match *kid {
                Ok(_) | YieldsFirst(_) => Result::Ok(i as i32),
                Fails(_) => Err(value_error("bad")),
                Panics(_) => Err(Error::Panic("boom".into())),
                CancelledAt(..) => Err(Error::Cancelled(None)),
                Same(j) => Result::Ok(j as i32),
            };
            assert_eq!(ended, want, "{name}: child {i}");
        }
        assert_holds_no_work(&s);
    }
}

/// What `wait` returns are the very futures it was given, and it does not
/// read their exceptions: a failed child nobody reads is still reported
/// (CPython 3.11.7/3.12.1: wait's callback reads `f.exception()` only for
/// `FIRST_EXCEPTION`, and only while its counter is not yet zero).
/// Rules: WAIT-2, FUT-7
#[test]
fn wait_returns_the_original_futures_unread() {
    let s = Scene::new();
    let seen = capture_exceptions(&s);
    let (f, g) = (s.create_future::<i32>(), s.create_future::<i32>());
    f.set_result(1).unwrap();
    let (done, pending) = s
        .run_until_complete(wait([f.clone(), g.clone()], Some(0.0), All))
        .unwrap();
    assert!(done[0] == f && pending[0] == g);
    let t = common::failer(&s, 1.0, value_error("x"));
    s.run_until_complete(wait([t.clone()], None, All)).unwrap();
    drop(t);
    s.close().unwrap();
    assert_eq!(seen.messages(), ["Task exception was never retrieved"]);
}

/// When `wait` returns, in iterations: the satisfying completion in
/// iteration k, wait's callback in k+1 releases the waiter, the task
/// resumes in k+2 — also for a child already done (FIRST_COMPLETED) or
/// already failed (FIRST_EXCEPTION), and for a timeout of zero or less,
/// whose timer fires in the next iteration (one more than `sleep(0)`).
/// CPython 3.11.7/3.12.1/3.13.0: "resumed after 2 iterations".
/// Rules: WAIT-3, WAIT-4
#[test]
fn wait_returns_two_iterations_after_its_condition() {
    cases(&[
        ("a completion, as from a callback", |s| {
            let f = s.create_future::<i32>();
            let (t, out) = waiting_task(s, vec![f.clone()], None, First);
            s.once(); // the task starts waiting
            s.once();
            f.set_result(1).unwrap();
            assert_eq!(iterations_until_done(s, &t), 2);
            assert_eq!(out.borrow_mut().take().unwrap().unwrap().0, [f]);
        }),
        ("FIRST_COMPLETED with a done child", |s| {
            let done_f = s.create_future::<i32>();
            done_f.set_result(1).unwrap();
            let pending_f = s.create_future::<i32>();
            let fs = vec![pending_f.clone(), done_f.clone()];
            let (t, out) = waiting_task(s, fs, None, First);
            s.once(); // the task's first step calls wait()
            assert_eq!(iterations_until_done(s, &t), 2);
            let got = out.borrow_mut().take().unwrap().unwrap();
            assert_eq!(got, (vec![done_f], vec![pending_f]));
        }),
        ("FIRST_EXCEPTION with a failed child", |s| {
            let bad = s.create_future::<i32>();
            bad.set_exception(value_error("early")).unwrap();
            let other = s.create_future::<i32>();
            let fs = vec![other.clone(), bad.clone()];
            let (t, out) = waiting_task(s, fs, None, FirstException);
            s.once();
            assert_eq!(iterations_until_done(s, &t), 2);
            let got = out.borrow_mut().take().unwrap().unwrap();
            assert_eq!(got, (vec![bad], vec![other]));
        }),
        ("a timeout of 0, -1 or -0.5", |s| {
            for timeout in [0.0, -1.0, -0.5] {
                let done_f = s.create_future::<i32>();
                done_f.set_result(1).unwrap();
                let pending_f = s.create_future::<i32>();
                let fs = vec![pending_f.clone(), done_f.clone()];
                let (t, out) = waiting_task(s, fs, Some(timeout), All);
                s.once(); // the task calls wait()
                assert_eq!(iterations_until_done(s, &t), 2, "timeout {timeout}");
                let got = out.borrow_mut().take().unwrap().unwrap();
                assert_eq!(got, (vec![done_f], vec![pending_f.clone()]));
                assert!(!pending_f.done() && s.time() == 0.0);
            }
            let t = s.task(|_| async { loopspec::sleep(0.0).await });
            s.once();
            assert_eq!(iterations_until_done(s, &t), 1, "sleep(0), for scale");
        }),
        // CPython 3.11.7/3.12.1 ("f2 completed in timer's iteration: done
        // 1"): its completion callback runs after the timer fired, yet it is
        // done, because the sets are taken when the waiting task resumes.
        ("what is done when the task resumes counts", |s| {
            let f = s.create_future::<i32>();
            let (f2, f3) = (f.clone(), f.clone());
            let t = s.task(|s| async move {
                // The next iteration queues the completion for the one after.
                s.soon(move |s| {
                    s.soon(move |_| f2.set_result(2).unwrap());
                });
                wait([f3], Some(0.0), All).await
            });
            assert_eq!(s.run_until_complete(t), Ok((vec![f], vec![])));
        }),
    ]);
}

/// Cancelling the waiting task raises its `CancelledError` there and leaves
/// the futures alone: they go on to their own outcomes, and a later
/// completion changes nothing for the cancelled wait.
/// Rules: WAIT-5
#[test]
fn cancelling_the_waiting_task_leaves_the_futures_alone() {
    let s = Scene::new();
    let fs = children(&s, &[Kid::Ok(5.0), Kid::Ok(6.0)]);
    let (t, out) = waiting_task(&s, fs.clone(), None, All);
    let t2 = t.clone();
    s.later(1.0, move |_| {
        t2.cancel_with(Some("stop".into()));
    });
    s.run_until_complete(t).unwrap();
    let r = out.borrow_mut().take().unwrap();
    assert_eq!(r.err(), Some(Error::Cancelled(Some("stop".into()))));
    assert_eq!(s.time(), 1.0);
    assert!(fs.iter().all(|f| !f.done()));
    assert_eq!(s.run_until_complete(fs[1].clone()), Ok(1));
    assert!(fs.iter().all(|f| !f.cancelled()));
    assert_eq!(fs[0].result(), Ok(0));
    let f = s.create_future::<i32>();
    let f2 = f.clone();
    let t = s.task(|s| async move {
        s.push("waits");
        wait([f2], None, All).await?;
        s.push("resumed");
        Ok(())
    });
    assert_eq!(s.once(), ["waits"]);
    assert!(t.cancel());
    assert!(s.run_until_complete(t.clone()).unwrap_err().is_cancelled());
    assert!(t.cancelled());
    f.set_result(1).unwrap();
    assert!(s.once().is_empty(), "the cancelled wait did not resume");
    assert!(!f.cancelled());
}
