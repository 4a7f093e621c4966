//! The first classic program: the main thread's loop waits, with `wait`, on
//! work submitted to a loop running in a sub-thread — through
//! `run_coroutine_threadsafe` + `wrap_future` — then stops that loop
//! thread-safely and joins the thread.
//!
//! `cargo run --example main_and_sub_loop -- --seed 7`
//!
//! The total time is about the largest delay: the four jobs sleep at the same
//! time on the sub-thread's loop.

mod common;

use common::{delays_from_args, do_some_work, py_bool, py_list, thread_name};
use loopspec::{Future, ReturnWhen};
use std::time::Instant;

fn main() -> loopspec::Result<()> {
    let (seed, delays) = delays_from_args();
    println!("seed: {seed} (repeat with --seed {seed})");
    println!("main thread: {}", thread_name());

    let main_loop = loopspec::get_event_loop()?; // implicit in the main thread (POLICY-3)
    let sub_loop = loopspec::new_event_loop();
    println!("main_loop is sub_loop: {}", py_bool(main_loop == sub_loop));
    println!("delays: {delays:?}");

    // Submitted before the sub-loop runs: the work waits (XTHREAD-6).
    let mut tasks: Vec<Future<String>> = Vec::new();
    for (i, &d) in delays.iter().enumerate() {
        let cf = loopspec::run_coroutine_threadsafe(do_some_work(i, d, true), &sub_loop)?;
        tasks.push(loopspec::wrap_future(&cf, &main_loop)?);
    }
    let bound = tasks.iter().all(|t| t.get_loop() == main_loop);
    println!(
        "wrapped futures bound to main_loop: {} Future",
        py_bool(bound)
    );

    let start = Instant::now();
    let runner = sub_loop.clone();
    let th = std::thread::Builder::new()
        .name("Thread-1 (run_forever)".into())
        .spawn(move || {
            // A thread other than the main one gets no loop implicitly (POLICY-4).
            if let Err(e) = loopspec::get_event_loop() {
                println!(
                    "in {}: get_event_loop() -> {}: {e}",
                    thread_name(),
                    e.python_type()
                );
            }
            runner.run_forever()
        })
        .expect("spawn the sub-loop thread");

    let (done, pending) = main_loop.run_until_complete(loopspec::wait(
        tasks.clone(),
        None,
        ReturnWhen::AllCompleted,
    ))?;
    println!(
        "wait returned tuple of set set len done {} len pending {}",
        done.len(),
        pending.len()
    );
    let results: Vec<String> = tasks.iter().map(|t| t.result()).collect::<Result<_, _>>()?;
    println!("results: {}", py_list(&results));

    // Stop the sub-loop from this thread (STOP-5) and join.
    let stopper = sub_loop.clone();
    sub_loop.call_soon_threadsafe(move || stopper.stop())?;
    th.join().expect("sub-loop thread")?;
    println!(
        "sub_loop running after join: {}",
        py_bool(sub_loop.is_running())
    );
    println!(
        "threads: main {} waited; Thread-1 (run_forever) ran the work and has exited",
        thread_name()
    );
    let max = delays.iter().max().copied().unwrap_or(0);
    println!(
        "cost {:.2}s (max delay {max})",
        start.elapsed().as_secs_f64()
    );
    sub_loop.close()?;
    main_loop.close()?;
    Ok(())
}
