//! The loop itself: SPEC.md's SCHED (the iteration, callbacks and timers),
//! STOP (when `run_forever` returns), LIFE (running and closing), CLOCK
//! (`time()`, virtual time, when a timer is due) and ERR (one error type
//! with asyncio's messages) rules.

mod clock;
mod errors;
mod lifecycle;
mod sched;
mod stop;
