//! The oracle of the wait/gather properties: an independent model of
//! asyncio's iterations ([`model`]), which shares no code with loopspec, and
//! the runner of the same scenarios on loopspec ([`observe`]).
//!
//! A scenario is up to 32 child tasks, each with a small virtual delay (so
//! that deadlines tie), an outcome (a value, an error, a panic, a
//! cancellation by itself or by another task) and maybe an earlier child it
//! awaits first; plus the combinator, its timeout and `return_when`, and
//! maybe a cancellation of the gather or of the task awaiting it.
//! [`model::predict`] says what asyncio does with it, down to the order in
//! which children complete within an iteration; [`observe::observe`] runs
//! it on a virtual-clock loop.
//!
//! The model was checked against CPython, once, outside this repository:
//! 20,000 random scenarios run on CPython 3.11.7, 3.12.1 and 3.13.0 (each on
//! the version of its profile) with a virtual-clock loop whose
//! equal-deadline timers fire in creation order (loopspec's SCHED-5 choice)
//! gave exactly the model's children outcomes, completion order and times,
//! and wait/gather results.

pub mod model;
pub mod observe;
