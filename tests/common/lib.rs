//! Helpers shared by loopspec's integration tests (and by loopspec-check's,
//! for SPEC.md). Deterministic by construction: virtual clocks, no sleeps,
//! threads joined before asserting.
//!
//! * [`Scene`]: a virtual-clock loop and a log — the setup of most tests —
//!   with the callbacks, timers and tasks they schedule on it.
//! * Loops and their ends: [`vloop`], [`profile_loop`], [`run_once`],
//!   [`finish`], [`assert_holds_no_work`], [`capture_exceptions`].
//! * Errors: [`value_error`], [`key_error`], [`assert_py_error`],
//!   [`assert_closed`], [`assert_cancelled`].
//! * Threads and bounded waits: [`in_thread`], [`spawn_running`],
//!   [`recv_or_hang`], [`wait_parked`], [`cf_result`], [`cf_exception`].
//! * User data that records what happens to it: [`DropCount`],
//!   [`DropWhere`], [`PanicOnDrop`], [`Holding`], [`quiet_panics`].
//! * [`criterion_dir`]: where the benchmarks and their summary keep their
//!   figures; [`w4_in_run`] and [`w4_tokio`]: W4's workload and its peer,
//!   for the benchmark and `examples/task_cost.rs`.
//! * [`spec`]: SPEC.md's rules; `loom_models` (built with `--cfg loom`): the loom
//!   models' helpers.

mod bench;
mod data;
mod errors;
#[cfg(loom)]
pub mod loom_models;
mod scene;
pub mod spec;
mod threads;

pub use bench::*;
pub use data::*;
pub use errors::*;
pub use scene::*;
pub use threads::*;

/// The message of a panic's payload.
fn panic_text(p: &(dyn std::any::Any + Send)) -> &str {
    p.downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| p.downcast_ref::<&str>().copied())
        .unwrap_or("a panic")
}

/// Fails listing `failed`, the failures of a table of `total` cases.
#[track_caller]
fn assert_no_failed_case(failed: &[String], total: usize) {
    assert!(
        failed.is_empty(),
        "{} of {total} cases failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
}
