//! Structured concurrency: SPEC.md's TG rules (`TaskGroup`), one loop at a
//! time on the virtual clock. The cross-thread TaskGroup rules are in
//! `tests/threads/taskgroup.rs`.

mod taskgroup;
