//! The combinators: SPEC.md's GATHER, WAIT, WAITFOR and ASCOMP rules
//! (`gather`, `wait`, `wait_for`, `as_completed`).

mod as_completed;
mod gather;
mod wait;
mod wait_for;
