//! # loopspec-check
//!
//! The machinery that checks the reference loop `loopspec` against SPEC.md;
//! none of it is part of the loop.
//!
//! * [`fuzz`]: the operation interpreters the cargo-fuzz targets of `fuzz/`
//!   run, each checked against a small sequential model.

pub mod fuzz;
