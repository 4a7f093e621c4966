//! FUT rules of SPEC.md: `Future<T>` states, reading, completing, cancelling,
//! done callbacks, unretrieved exceptions, other-loop awaits and awaiting from
//! loopspec tasks and from foreign executors.
// A loopspec future passed to create_task as it is would be refused (TASK-2):
// the async blocks that only await one future are the coroutines under test.
#![allow(clippy::redundant_async_block)]

use common::{Scene, assert_py_error, capture_exceptions, cases, value_error, vloop};
use loopspec::{Error, EventLoop, Future, LocalDoneCallback};
use std::cell::RefCell;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};

/// A waker for hand-polling (a "foreign executor") that counts its wake-ups.
#[derive(Default)]
struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl CountingWaker {
    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

fn counting_waker() -> (Arc<CountingWaker>, Waker) {
    let c = Arc::new(CountingWaker::default());
    (c.clone(), Waker::from(c))
}

/// Polls `f` once with `waker`, outside any loopspec task.
fn poll_once<F: std::future::Future + Unpin>(f: &mut F, waker: &Waker) -> Poll<F::Output> {
    Pin::new(f).poll(&mut Context::from_waker(waker))
}

/// A done callback that records `tag` and the future's result.
fn recorder(s: &Scene, tag: &str) -> LocalDoneCallback<i32> {
    let (log, tag) = (s.log.clone(), tag.to_string());
    Rc::new(move |f: &Future<i32>| log.push(format!("{tag}:{:?}", f.result())))
}

/// A new future of `s`'s loop with `recorder(s, tag)` as its done callback.
fn recorded(s: &Scene, tag: &str) -> Future<i32> {
    let fut = s.create_future::<i32>();
    fut.add_done_callback_local(recorder(s, tag)).unwrap();
    fut
}

/// A future is pending, then done once — with a result, an exception or
/// cancelled — and never changes again; its repr shows the state in
/// asyncio's shape.
/// Rules: FUT-1, FUT-3, FUT-4
#[test]
fn a_future_leaves_pending_once() {
    let s = Scene::new();
    let fut = s.create_future::<i32>();
    assert!(!fut.done() && !fut.cancelled());
    assert_eq!(format!("{fut:?}"), "<Future pending>");
    assert_eq!(fut.get_loop(), s.lp);
    let lp: EventLoop = vloop();
    let made = Future::<i32>::new(&lp);
    assert!(
        made.get_loop() == lp && !made.done(),
        "Future::new is create_future"
    );
    fut.set_result(1).unwrap();
    assert!(fut.done() && !fut.cancelled() && !fut.cancel());
    assert_eq!((fut.result(), fut.exception()), (Ok(1), Ok(None)));
    assert_eq!(fut.set_result(2), Err(Error::InvalidState));
    assert_eq!(
        fut.set_exception(value_error("late")),
        Err(Error::InvalidState)
    );
    assert_eq!(format!("{fut:?}"), "<Future finished>");
    let failed = s.create_future::<i32>();
    failed.set_exception(value_error("x")).unwrap();
    assert!(failed.done() && !failed.cancelled());
    assert_eq!(failed.result(), Err(value_error("x")));
    assert_eq!(failed.exception(), Ok(Some(value_error("x"))));
    let repr = "<Future finished exception=ValueError('x')>";
    assert_eq!(format!("{failed:?}"), repr);
    let cancelled = s.create_future::<i32>();
    assert!(cancelled.cancel() && cancelled.done() && cancelled.cancelled());
    assert_eq!(format!("{cancelled:?}"), "<Future cancelled>");
}

/// Reading a pending future: `InvalidStateError` — `Result is not set.`,
/// `Exception is not set.` — and it stays pending.
/// Rules: FUT-2, ERR-1
#[test]
fn reading_a_pending_future_is_invalid_state() {
    let s = Scene::new();
    let fut = s.create_future::<i32>();
    let err = fut.result().unwrap_err();
    assert_eq!(err, Error::ResultNotSet);
    assert_py_error(&err, "InvalidStateError", "Result is not set.");
    let err = fut.exception().unwrap_err();
    assert_eq!(err, Error::ExceptionNotSet);
    assert_py_error(&err, "InvalidStateError", "Exception is not set.");
    assert!(!fut.done());
}

/// Completing a done future — finished, failed or cancelled — fails with
/// `InvalidStateError('invalid state')`, changes nothing and schedules no
/// callback.
/// Rules: FUT-3, FUT-6, ERR-1
#[test]
fn completing_a_done_future_is_invalid_state() {
    let s = Scene::new();
    let fut = recorded(&s, "cb");
    fut.set_result(1).unwrap();
    let err = fut.set_result(2).unwrap_err();
    assert_eq!(err, Error::InvalidState);
    assert_py_error(&err, "InvalidStateError", "invalid state");
    let _ = fut.set_exception(value_error("x"));
    fut.cancel();
    assert_eq!(s.once(), ["cb:Ok(1)"]);
    assert!(s.once().is_empty());
    let failed = s.create_future::<i32>();
    failed.set_exception(value_error("first")).unwrap();
    let err = failed.set_exception(value_error("second")).unwrap_err();
    assert_py_error(&err, "InvalidStateError", "invalid state");
    assert_eq!(failed.set_result(5), Err(Error::InvalidState));
    assert_eq!(failed.exception(), Ok(Some(value_error("first"))));
    let cancelled = s.create_future::<i32>();
    cancelled.cancel_with(Some("stop".into()));
    assert_eq!(cancelled.set_result(1), Err(Error::InvalidState));
    assert_eq!(
        cancelled.set_exception(value_error("x")),
        Err(Error::InvalidState)
    );
    assert!(cancelled.cancelled());
    assert_eq!(
        cancelled.result(),
        Err(Error::Cancelled(Some("stop".into())))
    );
}

/// `cancel(msg)`: every reader gets `CancelledError(msg)` (empty without a
/// message); a done future is not cancelled again; the done callbacks are
/// scheduled.
/// Rules: FUT-4, FUT-6, ERR-1
#[test]
fn cancel_with_a_message() {
    let s = Scene::new();
    let plain = s.create_future::<i32>();
    assert!(plain.cancel());
    let err = plain.result().unwrap_err();
    assert_eq!(err, Error::Cancelled(None));
    assert_py_error(&err, "CancelledError", "");
    assert!(err.is_cancelled());
    assert_eq!(plain.exception(), Err(Error::Cancelled(None)));
    let why = recorded(&s, "cb");
    assert!(why.cancel_with(Some("why".into())));
    for _ in 0..3 {
        let err = why.result().unwrap_err();
        assert_eq!(err, Error::Cancelled(Some("why".into())));
        assert_py_error(&err, "CancelledError", "why");
        assert_eq!(why.exception(), Err(err));
    }
    assert!(!why.cancel() && !why.cancel_with(Some("b".into())));
    assert_eq!(why.result(), Err(Error::Cancelled(Some("why".into()))));
    assert!(s.log.get().is_empty());
    assert_eq!(s.once(), [r#"cb:Err(CancelledError('why'))"#]);
    let finished = s.create_future::<i32>();
    finished.set_result(1).unwrap();
    let failed = s.create_future::<i32>();
    failed.set_exception(value_error("x")).unwrap();
    for done in [&finished, &failed] {
        assert!(!done.cancel() && !done.cancelled(), "{done:?}");
    }
    let outcomes = (finished.result(), failed.exception());
    assert_eq!(outcomes, (Ok(1), Ok(Some(value_error("x")))));
}

/// Finishing with a `CancelledError` exception is not being cancelled: the
/// awaiter gets it, and a later `cancel()` is refused.
/// Rules: FUT-5
#[test]
fn finishing_with_a_cancelled_error_is_not_being_cancelled() {
    let s = Scene::new();
    let fut = s.create_future::<i32>();
    fut.set_exception(Error::Cancelled(Some("x".into())))
        .unwrap();
    assert!(fut.done() && !fut.cancelled());
    assert_eq!(fut.result(), Err(Error::Cancelled(Some("x".into()))));
    assert_eq!(
        fut.exception(),
        Ok(Some(Error::Cancelled(Some("x".into()))))
    );
    assert!(!fut.cancel() && !fut.cancelled());
    let fut = s.create_future::<i32>();
    let f2 = fut.clone();
    let t = s.task(|_| async move { f2.await });
    s.once();
    fut.set_exception(Error::Cancelled(None)).unwrap();
    assert_eq!(s.run_until_complete(t), Err(Error::Cancelled(None)));
    assert!(!fut.cancelled());
}

/// Done callbacks are always scheduled with `call_soon`, in registration
/// order, never run inline — also when added to a done future (behind the
/// callbacks still due, which can no longer be removed), or during the
/// callbacks — and each gets the future itself.
/// Rules: FUT-6
#[test]
fn done_callbacks_are_always_scheduled() {
    cases(&[
        ("not inside set_result or set_exception", |s| {
            let (a, b) = (recorded(s, "a"), recorded(s, "b"));
            a.set_result(7).unwrap();
            b.set_exception(value_error("x")).unwrap();
            assert!(s.log.get().is_empty());
            assert_eq!(s.once(), ["a:Ok(7)", r#"b:Err(ValueError('x'))"#]);
        }),
        // Completion appends the callbacks to the ready queue, between what
        // was queued before and what is queued after.
        ("in registration order, through call_soon", |s| {
            let fut = recorded(s, "first");
            fut.add_done_callback_local(recorder(s, "second")).unwrap();
            fut.add_done_callback_local(recorder(s, "third")).unwrap();
            s.soon_log("before");
            fut.set_result(1).unwrap();
            s.soon_log("after");
            let want = [
                "before",
                "first:Ok(1)",
                "second:Ok(1)",
                "third:Ok(1)",
                "after",
            ];
            assert_eq!(s.once(), want);
        }),
        ("added to a done future: scheduled once, not inline", |s| {
            let fut = s.create_future::<i32>();
            fut.set_result(4).unwrap();
            s.soon_log("queued-first");
            fut.add_done_callback_local(recorder(s, "late")).unwrap();
            let cancelled = s.create_future::<i32>();
            cancelled.cancel();
            cancelled
                .add_done_callback_local(recorder(s, "gone"))
                .unwrap();
            assert!(s.log.get().is_empty());
            let want = ["queued-first", "late:Ok(4)", "gone:Err(CancelledError())"];
            assert_eq!(s.once(), want);
            assert!(s.once().is_empty());
        }),
        // A done future's callbacks are scheduled: a later one queues behind
        // them, and none of them can be removed any more (asyncio empties
        // its list when it schedules them).
        ("added while the others are due: after them", |s| {
            let fut = recorded(s, "first");
            let second = recorder(s, "second");
            fut.add_done_callback_local(second.clone()).unwrap();
            fut.set_result(2).unwrap();
            fut.add_done_callback_local(recorder(s, "late")).unwrap();
            assert_eq!(fut.remove_done_callback_local(&second), 0);
            let want = ["first:Ok(2)", "second:Ok(2)", "late:Ok(2)"];
            assert_eq!(s.once(), want);
        }),
        ("added during the callbacks: the next iteration", |s| {
            let fut = s.create_future::<i32>();
            let (late, log) = (recorder(s, "late"), s.log.clone());
            fut.add_done_callback_local(Rc::new(move |f: &Future<i32>| {
                log.push("early");
                f.add_done_callback_local(late.clone()).unwrap();
            }))
            .unwrap();
            fut.set_result(1).unwrap();
            assert_eq!(s.once(), ["early"]);
            assert_eq!(s.once(), ["late:Ok(1)"]);
        }),
        ("each gets the future itself", |s| {
            let fut = s.create_future::<i32>();
            let got: Rc<RefCell<Option<Future<i32>>>> = Rc::default();
            let g = got.clone();
            let cb: LocalDoneCallback<i32> = Rc::new(move |f| *g.borrow_mut() = Some(f.clone()));
            fut.add_done_callback_local(cb).unwrap();
            fut.set_result(1).unwrap();
            s.once();
            assert_eq!(got.borrow().as_ref(), Some(&fut));
        }),
    ]);
}

/// `remove_done_callback` removes every registration of that very callback
/// (by identity, not behaviour) and says how many; a failing callback is
/// reported and the others still run.
/// Rules: FUT-6, SCHED-7
#[test]
fn removing_and_failing_done_callbacks() {
    let s = Scene::new();
    let fut = s.create_future::<i32>();
    let (dup, other) = (recorder(&s, "dup"), recorder(&s, "other"));
    // Two callbacks with identical behaviour are still different callbacks.
    let twin = recorder(&s, "dup");
    fut.add_done_callback_local(dup.clone()).unwrap();
    fut.add_done_callback_local(other.clone()).unwrap();
    fut.add_done_callback_local(dup.clone()).unwrap();
    assert_eq!(fut.remove_done_callback_local(&twin), 0);
    assert_eq!(fut.remove_done_callback_local(&dup), 2);
    assert_eq!(fut.remove_done_callback_local(&dup), 0);
    fut.add_done_callback_local(Rc::new(|_: &Future<i32>| panic!("cb failed")))
        .unwrap();
    fut.add_done_callback_local(recorder(&s, "last")).unwrap();
    let seen = capture_exceptions(&s);
    fut.set_result(1).unwrap();
    assert_eq!(s.once(), ["other:Ok(1)", "last:Ok(1)"]);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].message.starts_with("Exception in callback "));
    assert_eq!(seen[0].exception, Some(Error::Panic("cb failed".into())));
}

/// An exception nobody read is reported when the last handle to its future
/// or task is dropped (`Future exception was never retrieved`, `Task
/// exception was never retrieved` with the task's repr); one read by
/// `result()`, `exception()`, an await — from a task or a foreign executor —
/// is not, nor a result, a cancellation or a pending future.
/// Rules: FUT-7, FUT-9
#[test]
fn unretrieved_exceptions_are_reported_when_dropped() {
    cases(&[
        ("a future's, on its last drop", |s| {
            let seen = capture_exceptions(s);
            let fut = s.create_future::<i32>();
            fut.set_exception(value_error("x")).unwrap();
            let clone = fut.clone();
            drop(fut);
            assert!(seen.messages().is_empty(), "a handle remains");
            drop(clone);
            assert_eq!(seen.messages(), ["Future exception was never retrieved"]);
            let seen = seen.lock().unwrap();
            let ctx = &seen[0];
            assert_eq!(ctx.exception, Some(value_error("x")));
            assert!(ctx.future.is_some());
        }),
        ("a task's, named by its repr", |s| {
            let seen = capture_exceptions(s);
            let t = s.task(|_| async { Err::<i32, _>(value_error("y")) });
            s.once();
            assert!(t.done() && seen.messages().is_empty());
            drop(t);
            assert_eq!(seen.messages(), ["Task exception was never retrieved"]);
            let seen = seen.lock().unwrap();
            let ctx = &seen[0];
            assert_eq!(ctx.exception, Some(value_error("y")));
            // CPython puts the task under the 'future' key; loopspec's
            // context may use either field, but it must name the task.
            let repr = ctx.task.clone().or(ctx.future.clone()).unwrap();
            assert!(repr.starts_with("<Task finished"), "{repr}");
            assert!(repr.contains("name='Task-1'"), "{repr}");
        }),
        (
            "not once read by result(), exception() or a foreign await",
            |s| {
                let seen = capture_exceptions(s);
                let failed = || {
                    let fut = s.create_future::<i32>();
                    fut.set_exception(value_error("x")).unwrap();
                    fut
                };
                assert_eq!(failed().result(), Err(value_error("x")));
                assert_eq!(failed().exception(), Ok(Some(value_error("x"))));
                let (_count, waker) = counting_waker();
                let ready = poll_once(&mut failed(), &waker);
                assert_eq!(ready, Poll::Ready(Err(value_error("x"))));
                assert!(seen.messages().is_empty());
            },
        ),
        ("not once awaited by a task", |s| {
            let seen = capture_exceptions(s);
            let fut = s.create_future::<i32>();
            let f2 = fut.clone();
            let t = s.task(|_| async move { Ok(f2.await.unwrap_err().to_string()) });
            s.once();
            fut.set_exception(value_error("x")).unwrap();
            drop(fut);
            assert_eq!(s.run_until_complete(t), Ok("x".into()));
            let failing = s.task(|_| async { Err::<i32, _>(value_error("y")) });
            let f2 = failing.clone();
            let waiter = s.task(|_| async move { Ok(f2.await.unwrap_err().to_string()) });
            drop(failing);
            assert_eq!(s.run_until_complete(waiter), Ok("y".into()));
            assert!(seen.messages().is_empty());
        }),
        ("not a result, a cancellation or a pending future", |s| {
            let seen = capture_exceptions(s);
            let a = s.create_future::<i32>();
            a.set_result(1).unwrap();
            let b = s.create_future::<i32>();
            b.cancel_with(Some("m".into()));
            drop((a, b, s.create_future::<i32>()));
            assert!(seen.messages().is_empty());
        }),
    ]);
}

/// A task awaiting a pending future of another loop gets, at its next step,
/// `RuntimeError: Task <...> got Future <...> attached to a different
/// loop`, which it may catch; the future is untouched. An already-done
/// future of another loop is just returned (CPython checks the loop in
/// `Task.__step` when the coroutine yields the future, and a done future is
/// not yielded).
/// Rules: FUT-8, ERR-1
#[test]
fn awaiting_a_future_of_another_loop() {
    let msg = "Task <Task pending name='Task-1'> got Future <Future pending> attached to a \
               different loop";
    let s = Scene::new();
    let other = vloop();
    let foreign = other.create_future::<i32>();
    let t = s.task(|s| async move {
        s.push("before");
        let e = foreign.await.unwrap_err();
        s.push(format!("{}: {e}", e.python_type()));
        Ok("caught")
    });
    assert_eq!(s.once(), ["before"]);
    assert!(!t.done());
    assert_eq!(s.once(), [format!("RuntimeError: {msg}")]);
    assert_eq!(t.result(), Ok("caught"));
    let s = Scene::new();
    let foreign = other.create_future::<i32>();
    let keep = foreign.clone();
    let t = s.task(|_| async move { foreign.await });
    let err = s.run_until_complete(t.clone()).unwrap_err();
    assert_py_error(&err, "RuntimeError", msg);
    assert!(matches!(err, Error::FutureOfOtherLoop { .. }));
    assert!(!t.cancelled() && !keep.done());
    assert_eq!(t.exception(), Ok(Some(err)));
    let done = other.create_future::<i32>();
    done.set_result(9).unwrap();
    let t = s.task(|_| async move { done.await });
    assert_eq!(s.run_until_complete(t), Ok(9));
}

/// Awaiting a done future again gives the same outcome, to every awaiter —
/// tasks, several of them, or a foreign executor, which a loop callback
/// wakes (not `set_result` itself), after the callbacks scheduled before it.
/// Rules: FUT-9, FUT-4, FUT-6, TASK-1
#[test]
fn awaiting_a_done_future_again() {
    cases(&[
        (
            "a task awaiting three times gets the result each time",
            |s| {
                let fut = s.create_future::<String>();
                let f2 = fut.clone();
                let t = s.task(|_| async move {
                    let a = f2.clone().await?;
                    let b = f2.clone().await?;
                    Ok((a, b, f2.await?))
                });
                s.once();
                fut.set_result("v".to_string()).unwrap();
                let (a, b, c) = s.run_until_complete(t).unwrap();
                assert_eq!([a, b, c, fut.result().unwrap()], ["v", "v", "v", "v"]);
            },
        ),
        ("or the exception each time", |s| {
            let fut = s.create_future::<i32>();
            fut.set_exception(value_error("x")).unwrap();
            let f2 = fut.clone();
            let t = s.task(|_| async move { Ok((f2.clone().await, f2.await)) });
            let both = (Err(value_error("x")), Err(value_error("x")));
            assert_eq!(s.run_until_complete(t), Ok(both));
        }),
        ("several tasks all get the result", |s| {
            let fut = s.create_future::<i32>();
            let tasks: Vec<_> = (0..3)
                .map(|_| {
                    let f = fut.clone();
                    s.task(|_| async move { f.await })
                })
                .collect();
            s.once();
            fut.set_result(11).unwrap();
            s.once();
            assert!(tasks.iter().all(|t| t.result() == Ok(11)));
        }),
        // Not woken inside set_result: the wake-up is a scheduled callback.
        ("a foreign executor is woken from a loop callback", |s| {
            let mut fut = s.create_future::<i32>();
            let (count, waker) = counting_waker();
            assert_eq!(poll_once(&mut fut, &waker), Poll::Pending);
            fut.set_result(5).unwrap();
            assert_eq!(count.count(), 0);
            s.once();
            assert_eq!(count.count(), 1);
            assert_eq!(poll_once(&mut fut, &waker), Poll::Ready(Ok(5)));
            assert_eq!(poll_once(&mut fut, &waker), Poll::Ready(Ok(5)));
        }),
        ("its waker is scheduled after earlier callbacks", |s| {
            let mut fut = s.create_future::<i32>();
            let (count, waker) = counting_waker();
            s.soon_log("earlier");
            assert_eq!(poll_once(&mut fut, &waker), Poll::Pending);
            fut.add_done_callback_local(recorder(s, "cb")).unwrap();
            fut.set_exception(value_error("x")).unwrap();
            s.soon(move |s| s.push(format!("later woken={}", count.count())));
            let want = ["earlier", r#"cb:Err(ValueError('x'))"#, "later woken=1"];
            assert_eq!(s.once(), want);
            let ready = poll_once(&mut fut, &waker);
            assert_eq!(ready, Poll::Ready(Err(value_error("x"))));
        }),
        ("it sees a cancellation", |s| {
            let mut fut = s.create_future::<i32>();
            let (count, waker) = counting_waker();
            assert_eq!(poll_once(&mut fut, &waker), Poll::Pending);
            fut.cancel_with(Some("bye".into()));
            s.once();
            assert_eq!(count.count(), 1);
            let bye = Err(Error::Cancelled(Some("bye".into())));
            assert_eq!(poll_once(&mut fut, &waker), Poll::Ready(bye));
        }),
        ("a done future is ready at once, without a wake-up", |s| {
            let mut fut = s.create_future::<i32>();
            fut.set_result(3).unwrap();
            let (count, waker) = counting_waker();
            assert_eq!(poll_once(&mut fut, &waker), Poll::Ready(Ok(3)));
            assert_eq!(poll_once(&mut fut, &waker), Poll::Ready(Ok(3)));
            assert_eq!(count.count(), 0);
        }),
        ("a task resumes one iteration after the completion", |s| {
            let fut = s.create_future::<i32>();
            let f2 = fut.clone();
            s.task(|s| async move {
                s.push("waiting");
                let v = f2.await?;
                s.push(format!("got {v}"));
                Ok(())
            });
            s.soon(move |s| {
                fut.set_result(1).unwrap();
                s.push("set");
            });
            assert_eq!(s.once(), ["waiting", "set"]);
            assert_eq!(s.once(), ["got 1"]);
        }),
    ]);
}

/// `cancel()` on a future or task already done with an exception returns
/// false and counts as retrieving it: nothing is reported when it is
/// dropped (CPython 3.10.13, 3.11.7, 3.12.1, 3.13.18, 3.14.10, 3.15.2: no
/// "exception was never retrieved" for either; without the `cancel()`, the
/// report). A gather's `cancel()` does not: its own report stays
/// (`_GatheringFuture exception was never retrieved` in every version).
/// Rules: FUT-10, FUT-7
#[test]
fn cancel_of_a_done_future_counts_as_retrieving_its_exception() {
    cases(&[
        ("a future", |s| {
            let seen = capture_exceptions(s);
            let fut = s.create_future::<i32>();
            fut.set_exception(value_error("f")).unwrap();
            assert!(!fut.cancel());
            drop(fut);
            assert!(seen.messages().is_empty(), "{:?}", seen.messages());
        }),
        ("a task, cancelled from another task", |s| {
            let seen = capture_exceptions(s);
            let t = s.task(|_| async { Err::<i32, _>(value_error("t")) });
            s.once();
            let t2 = t.clone();
            let r = s.run_until_complete(async move { Ok(t2.cancel()) });
            assert_eq!(r, Ok(false));
            drop(t);
            assert!(seen.messages().is_empty(), "{:?}", seen.messages());
        }),
        ("without cancel(), the report", |s| {
            let seen = capture_exceptions(s);
            let fut = s.create_future::<i32>();
            fut.set_exception(value_error("c")).unwrap();
            drop(fut);
            assert_eq!(seen.messages(), ["Future exception was never retrieved"]);
        }),
        (
            "a pending future's cancel() is not a read of a later exception",
            |s| {
                let seen = capture_exceptions(s);
                let fut = s.create_future::<i32>();
                assert!(fut.cancel());
                assert_eq!(
                    fut.set_exception(value_error("x")),
                    Err(Error::InvalidState)
                );
                drop(fut);
                assert!(seen.messages().is_empty());
            },
        ),
    ]);
}
