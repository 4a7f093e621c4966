//! The second classic program: a thread inside a thread makes its own loop
//! with `new_event_loop` + `set_event_loop`, runs four tasks to completion with
//! `wait`, and prints the results and the time taken (about the largest delay).
//!
//! `cargo run --example nested_threads -- --seed 7`
//! `cargo run --example nested_threads -- --seed 7 --no-set-event-loop` shows
//! the error a thread gets without `set_event_loop` (POLICY-4).

mod common;

use common::{delays_from_args, do_some_work, thread_name};
use loopspec::ReturnWhen;
use std::time::Instant;

fn innermost(delays: Vec<u64>, set_loop: bool) -> loopspec::Result<()> {
    println!("innermost thread: {}", thread_name());
    let lp = loopspec::new_event_loop();
    if set_loop {
        loopspec::set_event_loop(Some(&lp));
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (i, &d) in delays.iter().enumerate() {
        // ensure_future without a loop finds this thread's current loop (POLICY-11).
        tasks.push(loopspec::ensure_future(do_some_work(i, d, false))?);
    }
    let (done, pending) =
        lp.run_until_complete(loopspec::wait(tasks, None, ReturnWhen::AllCompleted))?;
    println!(
        "run_until_complete returned tuple of 2 -> set {} set {}",
        done.len(),
        pending.len()
    );
    for t in &done {
        println!("Task ret: {}", t.result()?);
    }
    let max = delays.iter().max().copied().unwrap_or(0);
    println!(
        "cost {:.2}s (delays {delays:?}, max {max})",
        start.elapsed().as_secs_f64()
    );
    lp.close()
}

fn main() {
    let (seed, delays) = delays_from_args();
    let set_loop = !std::env::args().any(|a| a == "--no-set-event-loop");
    println!("seed: {seed} (repeat with --seed {seed})");
    println!("delays: {delays:?}");
    println!("main thread: {}", thread_name());
    let middle = std::thread::Builder::new()
        .name("Thread-1 (middle)".into())
        .spawn(move || {
            println!("middle thread: {}", thread_name());
            let inner = std::thread::Builder::new()
                .name("Thread-2 (innermost)".into())
                .spawn(move || innermost(delays, set_loop))
                .expect("spawn innermost");
            let result = inner.join().expect("innermost thread");
            println!(
                "middle thread {} joined Thread-2 (innermost)",
                thread_name()
            );
            result
        })
        .expect("spawn middle");
    match middle.join().expect("middle thread") {
        Ok(()) => println!("main thread {} joined Thread-1 (middle)", thread_name()),
        Err(e) => println!("{}: {e}", e.python_type()),
    }
}
