//! Interoperation with tokio in both directions: a loopspec task awaiting
//! futures completed on tokio's threads (THREAD-7: the task's waker is
//! thread-safe and wakes a parked loop through its inbox), and tokio tasks
//! awaiting the `ConcurrentFuture` of `run_coroutine_threadsafe` (CONC-7).
//!
//! Each cross-thread completion is made to happen after the waiting side
//! has started waiting (the completing side waits for a "go" that a loopspec
//! task sends only after the waiting task has polled what it awaits), so the
//! wake-up really crosses threads. Runtimes are shut down and loop
//! threads joined before the test ends.

use common::{recv_or_hang, vloop};
use loopspec::{ConcurrentFuture, Error, EventLoop, LoopThread, run_coroutine_threadsafe};
use std::thread;

fn multi_thread_runtime(threads: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name("tokio-worker")
        .build()
        .unwrap()
}

/// A tokio runtime with two worker threads, and a virtual-clock loop.
fn runtime_and_loop() -> (tokio::runtime::Runtime, EventLoop) {
    (multi_thread_runtime(2), vloop())
}

/// Closes `lp` and shuts `rt` down.
fn shut_down(rt: tokio::runtime::Runtime, lp: &EventLoop) {
    lp.close().unwrap();
    rt.shutdown_background();
}

fn join_error(e: tokio::task::JoinError) -> Error {
    Error::from_error(e)
}

/// A loopspec task (of the running loop) that sends `value` on `go` in its
/// first step: made by a task before it awaits something, it steps after
/// that task has polled what it awaits (pending, waker stored), so what
/// `go` releases on a tokio thread must wake that task from there.
fn send_go<T: Send + 'static>(
    go: tokio::sync::oneshot::Sender<T>,
    value: T,
) -> loopspec::Result<loopspec::Task<()>> {
    loopspec::create_task(async move {
        go.send(value)
            .map_err(|_| Error::raise("RuntimeError", "the receiver is gone"))
    })
}

/// Rules: THREAD-7
#[test]
fn loopspec_task_awaits_a_tokio_join_handle() {
    let (rt, lp) = runtime_and_loop();
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let handle = rt.spawn(async move {
        go_rx.await.unwrap();
        (thread::current().name().map(String::from), 6 * 7)
    });
    let before = lp.inbox_stats().submissions;
    let (name, value) = lp
        .run_until_complete(async move {
            let sender = send_go(go_tx, ())?;
            let out = handle.await.map_err(join_error);
            sender.await?;
            out
        })
        .unwrap();
    assert_eq!(value, 42);
    assert_eq!(name.as_deref(), Some("tokio-worker"));
    // The wake-up came from a tokio thread, through the inbox.
    assert!(lp.inbox_stats().submissions > before);
    shut_down(rt, &lp);
}

/// Rules: THREAD-7
#[test]
fn loopspec_task_awaits_a_oneshot_sent_from_a_tokio_task() {
    let (rt, lp) = runtime_and_loop();
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<u32>();
    let (tx, rx) = tokio::sync::oneshot::channel::<String>();
    rt.spawn(async move {
        let n = go_rx.await.unwrap();
        tx.send(format!("{n} from tokio")).unwrap();
    });
    let got = lp
        .run_until_complete(async move {
            let sender = send_go(go_tx, 7)?;
            let got = rx.await.map_err(Error::from_error);
            sender.await?;
            got
        })
        .unwrap();
    assert_eq!(got, "7 from tokio");
    shut_down(rt, &lp);
}

/// Rules: THREAD-7
#[test]
fn loopspec_task_receives_a_stream_of_messages_from_tokio_tasks() {
    let (rt, lp) = runtime_and_loop();
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<u32>(4);
    rt.spawn(async move {
        go_rx.await.unwrap();
        let mut senders = Vec::new();
        for p in 0..4u32 {
            let tx = tx.clone();
            senders.push(tokio::spawn(async move {
                for i in 0..50 {
                    tx.send(p * 1000 + i).await.unwrap();
                }
            }));
        }
        for s in senders {
            s.await.unwrap();
        }
    });
    let got = lp
        .run_until_complete(async move {
            let sender = send_go(go_tx, ())?;
            let mut got = Vec::new();
            while let Some(v) = rx.recv().await {
                got.push(v);
            }
            sender.await?;
            Ok(got)
        })
        .unwrap();
    assert_eq!(got.len(), 200);
    // Per sender, in order.
    for p in 0..4u32 {
        let mine: Vec<u32> = got.iter().copied().filter(|v| v / 1000 == p).collect();
        assert_eq!(mine, (0..50).map(|i| p * 1000 + i).collect::<Vec<_>>());
    }
    let s = lp.inbox_stats();
    assert!(s.wakeups <= s.parks, "{s:?}");
    shut_down(rt, &lp);
}

/// Rules: CONC-7, XTHREAD-7
#[test]
fn tokio_task_awaits_run_coroutine_threadsafe() {
    let rt = multi_thread_runtime(2);
    let lt = LoopThread::spawn("loopspec-loop").unwrap();
    let lp = lt.event_loop().clone();
    let got = rt
        .block_on(async move {
            let cf = run_coroutine_threadsafe(
                async {
                    loopspec::yield_now().await?;
                    Ok(thread::current().name().map(String::from))
                },
                &lp,
            )?;
            // Awaited inside a tokio task on a worker thread.
            tokio::spawn(cf).await.map_err(join_error)?
        })
        .unwrap();
    assert_eq!(got.as_deref(), Some("loopspec-loop"));
    lt.stop_and_join().unwrap();
    rt.shutdown_background();
}

/// Rules: CONC-7, XTHREAD-7
#[test]
fn tokio_current_thread_block_on_awaits_run_coroutine_threadsafe() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let lt = LoopThread::spawn("loopspec-loop-2").unwrap();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let cf = run_coroutine_threadsafe(
        async move {
            // The loop thread waits for tokio to be waiting first.
            recv_or_hang(&go_rx, "tokio is waiting");
            Ok(5)
        },
        lt.event_loop(),
    )
    .unwrap();
    let got = rt.block_on(async move {
        go_tx.send(()).unwrap();
        cf.await
    });
    assert_eq!(got, Ok(5));
    lt.stop_and_join().unwrap();
}

/// Rules: CONC-7, XTHREAD-7
#[test]
fn tokio_task_sees_the_loop_tasks_exception_and_cancellation() {
    let rt = multi_thread_runtime(1);
    let lt = LoopThread::spawn("loopspec-loop-3").unwrap();
    let failed = run_coroutine_threadsafe(
        async { Err::<i32, _>(Error::raise("ValueError", "remote failure")) },
        lt.event_loop(),
    )
    .unwrap();
    let got = rt.block_on(async move { tokio::spawn(failed).await.unwrap() });
    assert_eq!(got, Err(Error::raise("ValueError", "remote failure")));

    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let endless = run_coroutine_threadsafe(
        async move {
            started_tx.send(()).unwrap();
            loopspec::sleep(3600.0).await?;
            Ok(0)
        },
        lt.event_loop(),
    )
    .unwrap();
    recv_or_hang(&started_rx, "the coroutine started");
    let waiter = endless.clone();
    let got = rt.block_on(async move {
        let h = tokio::spawn(waiter);
        assert!(endless.cancel());
        h.await.unwrap()
    });
    assert_eq!(got, Err(Error::Cancelled(None)));
    lt.stop_and_join().unwrap();
    rt.shutdown_background();
}

/// Rules: THREAD-7, CONC-7
#[test]
fn round_trip_loopspec_to_tokio_and_back() {
    // A tokio task asks the loop thread for work; the loop task delegates
    // part of it to tokio and awaits that; the answer goes back to tokio.
    let rt = multi_thread_runtime(2);
    let handle = rt.handle().clone();
    let lt = LoopThread::spawn("loopspec-loop-4").unwrap();
    let lp = lt.event_loop().clone();
    let got = rt
        .block_on(async move {
            let cf: ConcurrentFuture<u64> = run_coroutine_threadsafe(
                async move {
                    let sub = handle.spawn(async { (1..=10u64).sum::<u64>() });
                    let part = sub.await.map_err(join_error)?;
                    loopspec::yield_now().await?;
                    Ok(part * 2)
                },
                &lp,
            )?;
            cf.await
        })
        .unwrap();
    assert_eq!(got, 110);
    lt.stop_and_join().unwrap();
    rt.shutdown_background();
}
