//! [`Runner`]: asyncio's `Runner` (3.11+), the way 3.14 and later put a loop
//! on a thread — one runner per thread, a loop made lazily, the leftover
//! tasks cancelled and the loop closed at the end (SPEC.md RUNNER).
//!
//! ```
//! use loopspec::{ClockKind, EventLoop, Runner};
//!
//! // The 3.14 way: no policy calls; the factory says which loop to run.
//! let mut runner = Runner::with_loop_factory(|| EventLoop::with_clock(ClockKind::Virtual));
//! let lp = runner.get_loop().unwrap();
//! assert_eq!(runner.run(async { loopspec::sleep(2.0).await?; Ok("one") }).unwrap(), "one");
//! assert_eq!(runner.run(async { Ok("two") }).unwrap(), "two"); // the same loop again
//! assert_eq!(lp.time(), 2.0);
//! runner.close();
//! assert!(lp.is_closed());
//! assert_eq!(runner.run(async { Ok(()) }).unwrap_err().to_string(), "Runner is closed");
//! ```
//!
//! The code is in `src/policy/runner.rs`: a runner and a policy depend on
//! each other (see [`policy`](crate::policy)).

pub use crate::policy::runner::{Runner, run_with_loop_factory};
