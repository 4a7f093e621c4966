//! TG rules of SPEC.md across threads: a group's children waiting for
//! another loop's work (TG-12), a group in a coroutine submitted from
//! another thread and cancelled from a third (TG-13), and `create_task` on a
//! group from another thread (TG-14).
//!
//! Deterministic by construction: the loops are on the virtual clock, and
//! whatever waits "for ever" waits on a future nobody completes, not on a
//! sleep; threads hand each other signals (channels, concurrent futures) and
//! are joined before asserting. Nothing races but what a rule allows, and
//! there the test accepts each allowed outcome.

use common::{cf_result, in_thread, recv_or_hang, value_error, vloop};
use loopspec::{
    ConcurrentFuture, Error, EventLoop, Future, LoopThread, TaskGroup, get_running_loop,
    run_coroutine_threadsafe, wrap_future,
};
use std::sync::mpsc;

/// A future of the running loop that nobody completes: awaiting it waits
/// until cancelled.
fn forever() -> Future<()> {
    Future::new(&get_running_loop().unwrap())
}

/// A child may await `wrap_future` of another loop's
/// `run_coroutine_threadsafe` work; the group waits for it. When a sibling
/// fails, that child's cancellation reaches the other loop: the remote task
/// is cancelled and its concurrent future with it, and the group raises only
/// the sibling's exception.
/// Rules: TG-12
#[test]
fn taskgroup_child_awaiting_another_loops_work() {
    let remote = LoopThread::spawn_with(vloop(), "tg-remote").unwrap();
    let rl = remote.event_loop().clone();
    let lp = vloop();

    // The result of the other loop's work comes through.
    let r = rl.clone();
    let (a, t) = lp
        .run_until_complete(TaskGroup::run(move |tg| async move {
            let a = tg.create_task(async move {
                let cf = run_coroutine_threadsafe(
                    async {
                        loopspec::sleep(1.0).await?;
                        Ok("remote")
                    },
                    &r,
                )?;
                wrap_future(&cf, &get_running_loop()?)?.await
            })?;
            Ok((a, get_running_loop()?.time()))
        }))
        .unwrap();
    assert_eq!((a.result(), t), (Ok("remote"), 0.0));

    // A sibling fails while the child waits for the other loop. The group
    // runs on a loop thread of its own, so that a group that waited for
    // ever would fail the test at the hang guard.
    let local = LoopThread::spawn_with(vloop(), "tg-local").unwrap();
    let (log_tx, log_rx) = mpsc::channel();
    let started = ConcurrentFuture::<()>::new();
    let s = started.clone();
    let r = rl.clone();
    let work_cf = ConcurrentFuture::<ConcurrentFuture<()>>::new();
    let w = work_cf.clone();
    let group = run_coroutine_threadsafe(
        TaskGroup::run(move |tg| async move {
            tg.create_task(async move {
                let cf = run_coroutine_threadsafe(
                    async move {
                        s.set_result(())?;
                        let r = forever().await;
                        log_tx.send(format!("remote: {r:?}")).unwrap();
                        r
                    },
                    &r,
                )?;
                w.set_result(cf.clone())?;
                wrap_future(&cf, &get_running_loop()?)?.await
            })?;
            let started = started.clone();
            tg.create_task(async move {
                // Fails once the remote work runs.
                wrap_future(&started, &get_running_loop()?)?.await?;
                Err::<(), _>(value_error("x"))
            })?;
            Ok(())
        }),
        local.event_loop(),
    )
    .unwrap();
    let err = cf_result(&group).unwrap_err();
    assert_eq!(
        format!("{err:?}"),
        "ExceptionGroup('unhandled errors in a TaskGroup', [ValueError('x')])"
    );
    let remote_cf = cf_result(&work_cf).unwrap();
    assert!(remote_cf.cancelled());
    assert_eq!(
        recv_or_hang(&log_rx, "the remote task saw its cancellation"),
        "remote: Err(CancelledError())"
    );
    remote.stop_and_join().unwrap();
    local.stop_and_join().unwrap();
    common::finish(&lp);
}

/// A group inside a coroutine given to `run_coroutine_threadsafe`, whose
/// concurrent future a third thread cancels: the children are cancelled,
/// the group re-raises the cancellation, and the caller sees
/// `CancelledError`.
/// Rules: TG-13
#[test]
fn taskgroup_in_submitted_coroutine_cancelled_from_another_thread() {
    let lt = LoopThread::spawn_with(vloop(), "tg-loop").unwrap();
    let (log_tx, log_rx) = mpsc::channel::<String>();
    let (started_tx, started_rx) = mpsc::channel();
    let cf = run_coroutine_threadsafe(
        async move {
            let tx = log_tx.clone();
            let r = TaskGroup::run(move |tg| async move {
                for n in 1..=2 {
                    let tx = tx.clone();
                    tg.create_task(async move {
                        let r = forever().await;
                        tx.send(format!("child{n}: {r:?}")).unwrap();
                        r
                    })?;
                }
                started_tx.send(()).unwrap();
                forever().await
            })
            .await;
            log_tx.send(format!("group: {r:?}")).unwrap();
            r
        },
        lt.event_loop(),
    )
    .unwrap();
    recv_or_hang(&started_rx, "the group started");
    let c = cf.clone();
    assert!(in_thread("canceller", move || c.cancel()));
    assert_eq!(cf_result(&cf), Err(Error::Cancelled(None)));
    let mut seen: Vec<String> = (0..3)
        .map(|_| recv_or_hang(&log_rx, "the group and its children finished"))
        .collect();
    // The group's line comes last; the children's in creation order.
    assert_eq!(
        seen.pop().unwrap(),
        "group: Err(CancelledError())",
        "{seen:?}"
    );
    assert_eq!(
        seen,
        [
            "child1: Err(CancelledError())",
            "child2: Err(CancelledError())"
        ]
    );
    lt.stop_and_join().unwrap();
}

/// `create_task` on a group from a thread that does not run its loop:
/// refused while another thread runs the loop (THREAD-1), the group
/// unchanged; made as on the loop's thread when the loop is idle
/// (THREAD-9), and the group waits for that child. A group is a
/// `Send + Sync` handle, and a group's future is `Send` when its body is.
/// Rules: TG-14, THREAD-6
#[test]
fn taskgroup_create_task_from_another_thread() {
    fn send_sync<T: Send + Sync + Clone + Default>(_: Option<T>) {}
    fn send<T: Send>(_: &T) {}
    send_sync::<TaskGroup>(None);
    send(&TaskGroup::run(|tg| async move {
        tg.create_task(async { Ok(1) })
    }));

    // The loop runs in another thread.
    let lt = LoopThread::spawn_with(vloop(), "tg-running").unwrap();
    let (tg_tx, tg_rx) = mpsc::channel();
    let release = ConcurrentFuture::<()>::new();
    let rel = release.clone();
    let cf = run_coroutine_threadsafe(
        TaskGroup::run(move |tg| async move {
            tg_tx.send(tg.clone()).unwrap();
            wrap_future(&rel, &get_running_loop()?)?.await?;
            Ok(tg)
        }),
        lt.event_loop(),
    )
    .unwrap();
    let tg: TaskGroup = recv_or_hang(&tg_rx, "the group was entered");
    let err = tg.create_task(async { Ok(1) }).unwrap_err();
    assert_eq!(err, Error::NonThreadSafeCall);
    assert_eq!(format!("{tg:?}"), "<TaskGroup entered>");
    // The right way: a coroutine on the loop makes the child.
    let g = tg.clone();
    let child = run_coroutine_threadsafe(
        async move {
            g.create_task(async {
                loopspec::sleep(1.0).await?;
                Ok(7)
            })
        },
        lt.event_loop(),
    )
    .unwrap();
    let child = cf_result(&child).unwrap();
    release.set_result(()).unwrap();
    cf_result(&cf).unwrap();
    // The group waited for the child made on request.
    assert!(child.done());
    assert_eq!(child.result(), Ok(7));
    lt.stop_and_join().unwrap();

    // The loop is idle: another thread makes a child directly.
    let lp: EventLoop = vloop();
    let release = lp.create_future::<()>();
    let (rel, (tg_tx, tg_rx)) = (release.clone(), mpsc::channel());
    let parent = lp
        .create_task(TaskGroup::run(move |tg| async move {
            tg_tx.send(tg.clone()).unwrap();
            rel.await
        }))
        .unwrap();
    common::run_once(&lp);
    let tg: TaskGroup = tg_rx.recv().unwrap();
    let child = in_thread("tg-idle", move || tg.create_task(async { Ok(8) })).unwrap();
    release.set_result(()).unwrap();
    lp.run_until_complete(parent).unwrap();
    assert_eq!(child.result(), Ok(8));
    lp.close().unwrap();
}
