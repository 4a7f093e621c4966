//! Structured concurrency: SPEC.md's TG (`TaskGroup`), TIMEOUT and SHIELD
//! rules, one loop at a time on the virtual clock. The cross-thread rules
//! are in `tests/threads/` (`taskgroup.rs`, `timeouts.rs`).

mod shield;
mod taskgroup;
mod timeout;
