//! The two classic programs written the 3.14 way: a `Runner` on each thread
//! that runs a loop, no `get_event_loop`, `set_event_loop` or policy calls
//! (SPEC.md RUNNER, POLICY-14).
//!
//! 1. The main thread's runner waits, with `wait`, on four jobs submitted
//!    with `run_coroutine_threadsafe` to the runner of a sub-thread, whose
//!    loop it wraps with `wrap_future`; then it tells the sub-thread to
//!    finish and joins it.
//! 2. A thread inside a thread runs four tasks with its own runner.
//!
//! `cargo run --example runner_per_thread -- --seed 7`
//!
//! Each part takes about the largest delay: the jobs sleep at the same time.

mod common;

use common::{delays_from_args, do_some_work, py_bool, py_list, thread_name};
use loopspec::{ConcurrentFuture, EventLoop, ReturnWhen, Runner};
use std::sync::mpsc;
use std::time::Instant;

/// Part 1: the main thread's runner waits on a sub-thread's runner.
fn main_and_sub_loop(delays: &[u64]) -> loopspec::Result<()> {
    let mut main_runner = Runner::with_loop_factory(EventLoop::new);
    // The sub-thread makes its loop, hands it over, and runs until told.
    let finish = ConcurrentFuture::<()>::new();
    let (loop_tx, loop_rx) = mpsc::channel();
    let f = finish.clone();
    let sub = std::thread::Builder::new()
        .name("Thread-1 (sub)".into())
        .spawn(move || {
            let mut runner = Runner::with_loop_factory(EventLoop::new);
            let lp = runner.get_loop()?;
            let _ = loop_tx.send(lp);
            runner.run(f) // closed when dropped: RUNNER-4
        })
        .expect("spawn the sub-loop thread");
    let sub_loop = loop_rx.recv().expect("the sub-thread's loop");

    let start = Instant::now();
    let jobs: Vec<_> = delays
        .iter()
        .enumerate()
        .map(|(i, &d)| loopspec::run_coroutine_threadsafe(do_some_work(i, d, true), &sub_loop))
        .collect::<loopspec::Result<_>>()?;
    let results = main_runner.run(async move {
        let lp = loopspec::get_running_loop()?;
        let tasks = jobs
            .iter()
            .map(|cf| loopspec::wrap_future(cf, &lp))
            .collect::<loopspec::Result<Vec<_>>>()?;
        let (done, pending) = loopspec::wait(tasks.clone(), None, ReturnWhen::AllCompleted).await?;
        println!("wait: {} done, {} pending", done.len(), pending.len());
        tasks
            .iter()
            .map(|t| t.result())
            .collect::<loopspec::Result<Vec<String>>>()
    })?;
    println!("results: {}", py_list(&results));

    let _ = finish.set_result(());
    sub.join().expect("sub-loop thread")?;
    println!(
        "{} joined Thread-1 (sub); its loop is closed: {}",
        thread_name(),
        py_bool(sub_loop.is_closed())
    );
    let max = delays.iter().max().copied().unwrap_or(0);
    println!(
        "cost {:.2}s (max delay {max})",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Part 2: a thread inside a thread runs four tasks with its own runner.
fn nested_threads(delays: Vec<u64>) -> loopspec::Result<()> {
    let middle = std::thread::Builder::new()
        .name("Thread-2 (middle)".into())
        .spawn(move || {
            let inner = std::thread::Builder::new()
                .name("Thread-3 (innermost)".into())
                .spawn(move || {
                    let start = Instant::now();
                    let mut runner = Runner::with_loop_factory(EventLoop::new);
                    let done = runner.run(async move {
                        let lp = loopspec::get_running_loop()?;
                        let tasks = delays
                            .iter()
                            .enumerate()
                            .map(|(i, &d)| lp.create_task(do_some_work(i, d, false)))
                            .collect::<loopspec::Result<Vec<_>>>()?;
                        let (done, _) =
                            loopspec::wait(tasks, None, ReturnWhen::AllCompleted).await?;
                        Ok(done)
                    })?;
                    for t in &done {
                        println!("Task ret: {}", t.result()?);
                    }
                    println!(
                        "{}: cost {:.2}s",
                        thread_name(),
                        start.elapsed().as_secs_f64()
                    );
                    Ok(())
                })
                .expect("spawn innermost");
            inner.join().expect("innermost thread")
        })
        .expect("spawn middle");
    middle.join().expect("middle thread")
}

fn main() -> loopspec::Result<()> {
    let (seed, delays) = delays_from_args();
    println!("seed: {seed} (repeat with --seed {seed})");
    println!("delays: {delays:?}");
    println!("-- main thread and a sub-thread, a runner each");
    main_and_sub_loop(&delays)?;
    println!("-- a thread inside a thread, with its own runner");
    nested_threads(delays)
}
