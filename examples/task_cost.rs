//! One workload, once, for counting what it costs: the driver behind the
//! instruction counts per task and per round trip in `docs/performance.md`.
//!
//! ```sh
//! cargo build --release --example task_cost
//! valgrind --tool=callgrind target/release/examples/task_cost gather 10000
//! valgrind --tool=callgrind target/release/examples/task_cost gather 20000
//! ```
//!
//! The difference between the two counts, divided by 10,000, is the cost of
//! one task: the loop's set-up and shutdown cancel out. Workloads:
//!
//! * `gather N` / `wait N`: W4 as the benchmark runs it
//!   (`common::w4_in_run`) — N trivial tasks made inside one run of the
//!   loop, then `gather` (or `wait`, all completed) on them;
//! * `tokio N`: W4's peer (`common::w4_tokio`) — N `tokio::spawn`s inside
//!   `block_on`, each `JoinHandle` awaited in turn;
//! * `round-trip N`: W2 — N `run_coroutine_threadsafe(...).result()` round
//!   trips to a loop running on another thread (its threads park
//!   differently from run to run, so its counts vary by a few per cent);
//! * `time N WORKLOAD...`: each workload 15 times in this process, with
//!   the median, fastest and slowest time per task.

use common::{W4, w4_in_run, w4_tokio};
use loopspec::EventLoop;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: task_cost (gather|wait|tokio|round-trip) N | task_cost time N WORKLOAD...";
    let count = |s: Option<&String>| s.and_then(|s| s.parse::<usize>().ok());
    match args.first().map(String::as_str) {
        Some("time") => {
            let Some(n) = count(args.get(1)) else {
                return eprintln!("{usage}");
            };
            for workload in &args[2..] {
                let mut per_task: Vec<f64> = (0..15)
                    .map(|_| {
                        let start = Instant::now();
                        run(workload, n);
                        start.elapsed().as_nanos() as f64 / n as f64
                    })
                    .collect();
                per_task.sort_by(f64::total_cmp);
                println!(
                    "{workload}: median {:.0} ns per task (fastest {:.0}, slowest {:.0})",
                    per_task[7], per_task[0], per_task[14]
                );
            }
        }
        Some(workload) => match count(args.get(1)) {
            Some(n) => run(workload, n),
            None => eprintln!("{usage}"),
        },
        None => eprintln!("{usage}"),
    }
}

/// Runs `workload` on `n` tasks (or round trips).
fn run(workload: &str, n: usize) {
    match workload {
        "gather" | "wait" => {
            let lp = EventLoop::new();
            let how = if workload == "wait" {
                W4::Wait
            } else {
                W4::Gather
            };
            let finished = w4_in_run(&lp, n, how).expect("the tasks finish");
            assert_eq!(finished, n);
            lp.close().expect("the loop closes");
        }
        "tokio" => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("a runtime");
            assert_eq!(w4_tokio(&rt, n), n);
        }
        "round-trip" => {
            let lp = EventLoop::new();
            let runner = lp.clone();
            let thread = std::thread::spawn(move || runner.run_forever());
            for i in 0..n {
                let cf = loopspec::run_coroutine_threadsafe(async move { Ok(i) }, &lp)
                    .expect("the loop takes it");
                assert_eq!(cf.result(None), Ok(i));
            }
            lp.stop();
            thread
                .join()
                .expect("the loop's thread ends")
                .expect("the loop ran");
            lp.close().expect("the loop closes");
        }
        other => eprintln!("unknown workload {other}"),
    }
}
