//! TIMEOUT and SHIELD rules of SPEC.md across threads: a `timeout` around
//! another loop's work, a `shield` of it, and `Timeout::reschedule` from a
//! thread that does not run the timeout's loop.
//!
//! Real threads; every wait between them is a channel or a join, never a
//! sleep, and every outcome asserted is the only one the rules allow: each
//! case waits until the other loop's coroutine has started before it acts.
// A loopspec future passed to create_task as it is would be refused (TASK-2):
// the async blocks that only await one future are the coroutines under test.
#![allow(clippy::redundant_async_block)]

use common::{recv_or_hang, spawn_running, stop_running, vloop};
use loopspec::{
    ClockKind, Error, EventLoop, LoopThread, Timeout, run_coroutine_threadsafe, shield, timeout,
    wrap_future,
};
use std::sync::mpsc;

/// A coroutine for another loop: says it started, then waits on a future of
/// its loop that nobody completes, and reports what the wait gave.
async fn parked(
    started: mpsc::Sender<()>,
    seen: mpsc::Sender<loopspec::Result<()>>,
) -> loopspec::Result<&'static str> {
    let gate = loopspec::get_running_loop()?.create_future::<()>();
    started.send(()).unwrap();
    let r = gate.await;
    seen.send(r.clone()).unwrap();
    r.map(|()| "opened")
}

/// A `timeout` around `wrap_future(run_coroutine_threadsafe(coro, other))`:
/// at the deadline the caller's task is cancelled, which cancels the wrapped
/// future, which cancels the concurrent future (CHAIN-4), which cancels the
/// other loop's task (XTHREAD-8). The caller sees `TimeoutError`; the other
/// loop's coroutine sees a `CancelledError` without a message and its task
/// ends cancelled (CPython 3.11.7, 3.13.18, 3.15.2: "caller: TimeoutError",
/// "other task cancelled ()", the concurrent future cancelled).
/// Rules: TIMEOUT-10, CHAIN-4, XTHREAD-8
#[test]
fn a_timeout_around_another_loops_work_cancels_that_work() {
    let other = LoopThread::spawn("other").unwrap();
    let (started_tx, started) = mpsc::channel();
    let (seen_tx, seen) = mpsc::channel();
    let cf = run_coroutine_threadsafe(parked(started_tx, seen_tx), other.event_loop()).unwrap();
    recv_or_hang(&started, "the other loop's coroutine started");
    let lp = vloop();
    let c = cf.clone();
    let out = lp.run_until_complete(async move {
        let w = wrap_future(&c, &loopspec::get_running_loop()?)?;
        let w2 = w.clone();
        let r = timeout(Some(1.0), |_| w2).await;
        Ok((r, w.cancelled()))
    });
    assert_eq!(out, Ok((Err(Error::Timeout), true)));
    assert_eq!(lp.time(), 1.0);
    let r = recv_or_hang(&seen, "the other loop's coroutine saw the cancellation");
    assert_eq!(r, Err(Error::Cancelled(None)));
    other.stop_and_join().unwrap();
    assert!(cf.cancelled());
    lp.close().unwrap();
}

/// `shield(wrap_future(cf))` of another loop's work: cancelling the task
/// that awaits the shield cancels the outer future only; the wrapped
/// future, the concurrent future and the other loop's task go on, and the
/// work's result arrives (CPython: "waiter cancelled, outer cancelled
/// True", "cf result done").
/// Rules: SHIELD-4, SHIELD-2
#[test]
fn a_shield_keeps_another_loops_work_running() {
    let other = LoopThread::spawn("other").unwrap();
    let (started_tx, started) = mpsc::channel();
    let (gate_tx, gate_rx) = mpsc::channel();
    let cf = run_coroutine_threadsafe(
        async move {
            let gate = loopspec::get_running_loop()?.create_future::<&'static str>();
            gate_tx.send(gate.clone()).unwrap();
            started_tx.send(()).unwrap();
            gate.await
        },
        other.event_loop(),
    )
    .unwrap();
    recv_or_hang(&started, "the other loop's coroutine started");
    let gate = recv_or_hang(&gate_rx, "the gate");
    let lp = vloop();
    let w = wrap_future(&cf, &lp).unwrap();
    let outer = shield(w.clone()).unwrap();
    let o = outer.clone();
    let waiter = lp.create_task(async move { o.await }).unwrap();
    let w2 = waiter.clone();
    lp.call_soon(move || {
        w2.cancel();
    })
    .unwrap();
    let err = lp.run_until_complete(waiter);
    assert_eq!(err, Err(Error::Cancelled(None)));
    assert!(outer.cancelled() && !w.done() && !cf.done());
    gate.set_result("done").unwrap(); // from this thread: THREAD-1
    assert_eq!(lp.run_until_complete(w), Ok("done"));
    assert_eq!(cf.result(None), Ok("done"));
    other.stop_and_join().unwrap();
    lp.close().unwrap();
}

/// `Timeout` is `Send`: from a thread other than the one running its loop,
/// `reschedule` to a new deadline is refused as `call_at` is (THREAD-1:
/// `RuntimeError: Non-thread-safe operation invoked on an event loop other
/// than the current one`) and changes nothing; `reschedule(None)` only
/// cancels the timer, which any thread may do (XTHREAD-5). (CPython raises
/// `RuntimeError: no running event loop` there, after it has already
/// cancelled the old timer.) While no thread runs the loop, a new deadline
/// is made (THREAD-9).
/// Rules: TIMEOUT-9, THREAD-1
#[test]
fn reschedule_from_another_thread_follows_thread_1() {
    let lp = EventLoop::with_clock(ClockKind::Real);
    let (cm_tx, cm_rx) = mpsc::channel::<Timeout>();
    let gate = lp.create_future::<()>();
    let g = gate.clone();
    let task = lp
        .create_task(async move {
            let when = loopspec::get_running_loop()?.time() + 600.0;
            loopspec::timeout_at(Some(when), |cm| async move {
                cm_tx.send(cm).unwrap();
                g.await
            })
            .await
        })
        .unwrap();
    let runner = spawn_running(&lp, "runner");
    let cm = recv_or_hang(&cm_rx, "the timeout was entered");
    let when = cm.when();
    let err = cm.reschedule(Some(0.0)).unwrap_err();
    assert_eq!(err, Error::NonThreadSafeCall);
    assert_eq!(err.python_type(), "RuntimeError");
    assert_eq!(cm.when(), when);
    assert!(format!("{cm:?}").starts_with("<Timeout [active] when="));
    assert_eq!(cm.reschedule(None), Ok(()));
    assert_eq!(cm.when(), None);
    stop_running(&lp, runner);
    // Idle: this thread may schedule the new deadline.
    assert_eq!(cm.reschedule(Some(lp.time() + 500.0)), Ok(()));
    gate.set_result(()).unwrap();
    assert_eq!(lp.run_until_complete(task), Ok(()));
    assert_eq!(format!("{cm:?}"), "<Timeout [finished]>");
    lp.close().unwrap();
}

/// `Timeout` is `Send + Sync`, and a `timeout` around a `Send` body is a
/// `Send` coroutine: it can be handed to another loop, whose task it then
/// runs in (expiring there, on that loop's clock).
/// Rules: TIMEOUT-9, TIMEOUT-1
#[test]
fn a_timeout_is_send_and_runs_in_another_loops_task() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    send_sync(&Timeout::new(None));
    let other = LoopThread::spawn_with(vloop(), "other").unwrap();
    let cf = run_coroutine_threadsafe(
        timeout(Some(2.0), |cm| async move {
            send_sync(&cm);
            loopspec::sleep(10.0).await?;
            Ok(())
        }),
        other.event_loop(),
    )
    .unwrap();
    assert_eq!(cf.result(None), Err(Error::Timeout));
    assert_eq!(other.event_loop().time(), 2.0);
    other.stop_and_join().unwrap();
}
