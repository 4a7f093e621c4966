//! Shared by the examples: their random delays (repeatable with `--seed`),
//! the coroutine they run, and Python-style printing.
#![allow(dead_code)]

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// The delays: four whole seconds in 0..=4, drawn from `--seed N` (or a seed
/// taken from the clock, printed so the run can be repeated).
pub fn delays_from_args() -> (u64, Vec<u64>) {
    let mut args = std::env::args().skip(1);
    let mut seed = None;
    while let Some(a) = args.next() {
        if a == "--seed" {
            seed = args.next().and_then(|s| s.parse().ok());
        }
    }
    let seed = seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    let mut rng = StdRng::seed_from_u64(seed);
    (seed, (0..4).map(|_| rng.random_range(0..=4)).collect())
}

/// `do_some_work(i, x)`: prints, sleeps `x` seconds on the running loop,
/// prints again, returns `'haha'`.
pub async fn do_some_work(i: usize, x: u64, show_thread: bool) -> loopspec::Result<String> {
    if show_thread {
        println!("Waiting {i} {x} in {}", thread_name());
    } else {
        println!("Waiting {i} {x}");
    }
    loopspec::sleep(x as f64).await?;
    println!("Done {i} after {x}s");
    Ok("haha".to_string())
}

/// The current thread's name, `MainThread` for Rust's main thread.
pub fn thread_name() -> String {
    match std::thread::current().name() {
        Some("main") | None => "MainThread".to_string(),
        Some(n) => n.to_string(),
    }
}

/// `True` / `False`, as Python prints booleans.
pub fn py_bool(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

/// A list of strings as Python prints it: `['a', 'b']`.
pub fn py_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("'{s}'")).collect();
    format!("[{}]", quoted.join(", "))
}
