//! The two classic programs written with `TaskGroup` and `timeout` (SPEC.md
//! TG, TIMEOUT), a `Runner` on each thread that runs a loop.
//!
//! 1. The main thread's runner gathers, in a `TaskGroup` under a `timeout`,
//!    four jobs it submits with `run_coroutine_threadsafe` to the runner of
//!    a sub-thread; then a fifth job outlives its `timeout`, and the other
//!    loop's task is cancelled through the chain (CHAIN-4, XTHREAD-8).
//! 2. A thread inside a thread runs four tasks in a `TaskGroup`; one fails,
//!    the group cancels the one still running and raises an
//!    `ExceptionGroup`.
//!
//! Its output is CPython's, line for line (3.11 to 3.15):
//! `diff <(cargo run -q --example structured_per_thread) <(python3 examples/structured_per_thread.py)`
//! is empty. The delays are fixed, so that the output is too.

mod common;

use common::{py_bool, py_list, thread_name};
use loopspec::{ConcurrentFuture, Error, EventLoop, Result, Runner, TaskGroup};
use std::sync::mpsc;

/// The four jobs' delays, in seconds.
const DELAYS: [f64; 4] = [0.3, 0.1, 0.2, 0.4];

/// ` in THREAD` when `show_thread`.
fn place(show_thread: bool) -> String {
    if show_thread {
        format!(" in {}", thread_name())
    } else {
        String::new()
    }
}

/// Prints, sleeps `x` seconds, prints again and returns `"haha"`; says so
/// when it is cancelled.
async fn do_some_work(i: usize, x: f64, show_thread: bool) -> Result<String> {
    println!("Waiting {i} {x}{}", place(show_thread));
    if let Err(e) = loopspec::sleep(x).await {
        if e.is_cancelled() {
            println!("job {i} cancelled{}", place(show_thread));
        }
        return Err(e);
    }
    println!("Done {i} after {x}s");
    Ok("haha".to_string())
}

/// Awaits `cf` on the running loop (`await asyncio.wrap_future(cf)`).
async fn wrapped<T: Clone + Send + 'static>(cf: ConcurrentFuture<T>) -> Result<T> {
    loopspec::wrap_future(&cf, &loopspec::get_running_loop()?)?.await
}

/// A job that would sleep 100 s: says when it is cancelled, and completes
/// `cancel_seen` then.
async fn slow_job(cancel_seen: ConcurrentFuture<()>) -> Result<String> {
    println!("Waiting 4 100 in {}", thread_name());
    if let Err(e) = loopspec::sleep(100.0).await {
        if e.is_cancelled() {
            println!("job 4 cancelled in {}", thread_name());
            let _ = cancel_seen.set_result(());
        }
        return Err(e);
    }
    Ok("haha".to_string())
}

/// Sleeps `x` seconds, then raises `ValueError`.
async fn failing_work(i: usize, x: f64) -> Result<String> {
    println!("Waiting {i} {x}");
    loopspec::sleep(x).await?;
    println!("job {i} fails after {x}s");
    Err(Error::raise("ValueError", format!("job {i} failed")))
}

/// Part 1: the main thread's runner gathers, with a `TaskGroup` and a
/// `timeout`, four jobs it submits to the runner of a sub-thread.
fn main_and_sub_loop() -> Result<()> {
    let finish = ConcurrentFuture::<()>::new();
    let (handed_over, sub_loop) = mpsc::channel();
    let until = finish.clone();
    let sub = std::thread::Builder::new()
        .name("Thread-1 (sub)".into())
        .spawn(move || {
            let mut runner = Runner::with_loop_factory(EventLoop::new);
            let _ = handed_over.send(runner.get_loop()?);
            runner.run(wrapped(until)) // the runner closes its loop when dropped
        })
        .expect("spawn the sub-loop thread");
    let sub_loop: EventLoop = sub_loop.recv().expect("the sub-thread's loop");

    let mut main_runner = Runner::with_loop_factory(EventLoop::new);
    let to = sub_loop.clone();
    let results = main_runner.run(async move {
        loopspec::timeout(Some(10.0), |_| async move {
            let tasks = TaskGroup::run(|tg| async move {
                DELAYS
                    .iter()
                    .enumerate()
                    .map(|(i, &d)| {
                        let job =
                            loopspec::run_coroutine_threadsafe(do_some_work(i, d, true), &to)?;
                        tg.create_task(wrapped(job))
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .await?;
            tasks
                .iter()
                .map(|t| t.result())
                .collect::<Result<Vec<String>>>()
        })
        .await
    })?;
    println!("results: {}", py_list(&results));

    let to = sub_loop.clone();
    main_runner.run(async move {
        let cancel_seen = ConcurrentFuture::<()>::new();
        let job = loopspec::run_coroutine_threadsafe(slow_job(cancel_seen.clone()), &to)?;
        let waited = job.clone();
        match loopspec::timeout(Some(0.5), |_| wrapped(waited)).await {
            Err(Error::Timeout) => {
                wrapped(cancel_seen).await?;
                println!(
                    "job 4: TimeoutError after 0.5s; its future is cancelled: {}",
                    py_bool(job.cancelled())
                );
                Ok(())
            }
            other => other.map(drop),
        }
    })?;
    drop(main_runner);

    let _ = finish.set_result(());
    sub.join().expect("sub-loop thread")?;
    println!(
        "{} joined Thread-1 (sub); its loop is closed: {}",
        thread_name(),
        py_bool(sub_loop.is_closed())
    );
    Ok(())
}

/// Part 2: a thread inside a thread runs four tasks in a `TaskGroup`; one
/// fails, the group cancels the other one still running and raises an
/// `ExceptionGroup`.
fn nested_threads() -> Result<()> {
    let innermost = || -> Result<()> {
        let mut runner = Runner::with_loop_factory(EventLoop::new);
        let outcome = runner.run(TaskGroup::run(|tg| async move {
            for (i, &d) in DELAYS.iter().enumerate() {
                if i == 0 {
                    tg.create_task(failing_work(i, d))?;
                } else {
                    tg.create_task(do_some_work(i, d, false))?;
                }
            }
            Ok(())
        }));
        match outcome {
            Err(e @ Error::ExceptionGroup(_)) => {
                println!("{}: {e}", e.python_type());
                if let Error::ExceptionGroup(eg) = &e {
                    println!("  {:?}", eg.exceptions);
                }
                Ok(())
            }
            other => other,
        }
    };
    let middle = std::thread::Builder::new()
        .name("Thread-2 (middle)".into())
        .spawn(move || {
            std::thread::Builder::new()
                .name("Thread-3 (innermost)".into())
                .spawn(innermost)
                .expect("spawn innermost")
                .join()
                .expect("innermost thread")
        })
        .expect("spawn middle");
    middle.join().expect("middle thread")
}

fn main() -> Result<()> {
    println!("delays: {DELAYS:?}");
    println!("-- main thread and a sub-thread, a runner each, a TaskGroup and a timeout");
    main_and_sub_loop()?;
    println!("-- a thread inside a thread, a TaskGroup whose child fails");
    nested_threads()
}
