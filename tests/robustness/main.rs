//! Robustness: misuse of the public API and the error each use gets, panic
//! safety (a panic is an exception, and the loop stays usable), leaks
//! (closing frees everything, cycles included), and the cross-thread inbox
//! under stress and under a flood of submissions.

mod flood;
mod leaks;
mod misuse;
mod panic_safety;
mod stress;
