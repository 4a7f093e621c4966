//! Structured concurrency: SPEC.md's TIMEOUT and SHIELD rules.

mod shield;
mod timeout;
