//! Structured concurrency, one loop at a time on the virtual clock: SPEC.md's
//! TG (`TaskGroup`), TIMEOUT and SHIELD rules. Their cross-thread rules are
//! in `tests/threads/` (`taskgroup.rs`, `timeouts.rs`).

mod shield;
mod taskgroup;
mod timeout;
