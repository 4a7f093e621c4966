//! Loops and threads: SPEC.md's POLICY (which loop a thread sees), RUNNER
//! (`Runner`, `run_with_loop_factory`), THREAD (loop-bound work and its home
//! thread), XTHREAD (handing work to a loop from other threads), CONC
//! (`ConcurrentFuture`), CHAIN (`wrap_future`), EXEC (`run_in_executor`),
//! TIMEOUT and SHIELD (another loop's work, `reschedule` off the loop)
//! rules, and interoperation with tokio.

mod chain;
mod concurrent_future;
mod default_executor;
mod eager;
mod executor;
mod handoff;
mod interop;
mod policy;
mod runner;
mod task_queries;
mod thread_affinity;
mod timeouts;
mod xthread;
