//! # loopspec
//!
//! A reference implementation and executable specification of the threading
//! model of Python's asyncio event loop: one current loop per thread, loops
//! that run until stopped or until a future is done, futures and tasks — with
//! asyncio's exact rules and error messages, in Rust.
//!
//! ```
//! use loopspec::{ClockKind, EventLoop};
//!
//! let lp = EventLoop::with_clock(ClockKind::Virtual);
//! let slow = lp.create_task(async { loopspec::sleep(3.0).await?; Ok("slow") }).unwrap();
//! let fast = lp.create_task(async { loopspec::sleep(1.0).await?; Ok("fast") }).unwrap();
//! let both = async move { Ok((slow.await?, fast.await?)) };
//! assert_eq!(lp.run_until_complete(both).unwrap(), ("slow", "fast"));
//! assert_eq!(lp.time(), 3.0);
//! lp.close().unwrap();
//! ```
//!
//! As in CPython, any thread may hold a loop and run it, one at a time; the
//! work of the asyncio-named calls (`Send` closures and coroutines) waits for
//! whichever thread runs the loop next (SPEC.md THREAD-8). Built here, run
//! there:
//!
//! ```
//! use loopspec::{ClockKind, EventLoop};
//! use std::sync::{Arc, Mutex};
//!
//! # fn main() -> loopspec::Result<()> {
//! let lp = EventLoop::with_clock(ClockKind::Virtual);
//! let log = Arc::new(Mutex::new(Vec::new()));
//! let l = log.clone();
//! lp.call_soon(move || l.lock().unwrap().push("cb"))?;
//! let l = log.clone();
//! let task = lp.create_task(async move {
//!     l.lock().unwrap().push("task");
//!     Ok(42)
//! })?;
//! let stopper = lp.clone();
//! lp.call_soon(move || stopper.stop())?;
//!
//! let worker = lp.clone();
//! std::thread::spawn(move || worker.run_forever()).join().unwrap()?;
//!
//! assert_eq!(*log.lock().unwrap(), ["cb", "task"]);
//! assert_eq!(task.result()?, 42);
//! lp.close()?;
//! # Ok(())
//! # }
//! ```
//!
//! Each rule lives in `SPEC.md` with a stable ID (POLICY-3, STOP-2, ...);
//! the module docs name the rules they implement and the tests name the
//! rules they check.
//!
//! * [`policy`]: the per-thread current loop (`get_event_loop`, ...), and
//!   [`runner`]: [`Runner`], the 3.11+ way to put a loop on a thread.
//! * [`warnings`]: the `DeprecationWarning`s asyncio raises, caught with
//!   [`catch_warnings`].
//! * [`event_loop`]: [`EventLoop`], its iteration ([`EventLoop::run_forever`]
//!   is a loop over one function, `run_once`), `stop` and `close`.
//! * [`inbox`] and [`run_state`]: the loop's cross-thread state, documented
//!   bit by bit and field by field.
//! * [`handle`], [`future`], [`task`]: what scheduling returns, and the
//!   loop-bound futures and tasks.
//! * [`taskgroup`]: [`TaskGroup`], asyncio's structured concurrency, whose
//!   failures come out as an [`ExceptionGroup`].
//! * [`clock`]: real and virtual time.
//! * [`combinators`], [`timeouts`] and [`shield`](mod@shield): `gather`,
//!   `wait`, `wait_for`, `as_completed`; `asyncio.timeout` ([`timeout`],
//!   [`Timeout`]); `asyncio.shield`.
//! * `sync`: the one module that switches between `std` and `loom`.
//!
//! The modules form layers, each using only those below it; the layers and
//! the module dependency list are in `docs/architecture.md`, which
//! `tests/architecture.rs` checks against the source.

pub mod chain;
pub mod clock;
pub mod combinators;
pub mod concurrent;
pub mod error;
pub mod event_loop;
pub mod executor;
pub mod future;
pub mod handle;
mod home;
pub mod inbox;
mod loop_core;
pub mod loop_thread;
pub mod policy;
pub mod profile;
pub mod run_state;
pub mod runner;
pub mod shield;
mod sync;
pub mod task;
pub mod taskgroup;
mod thread_name;
pub mod thread_pool;
pub mod timeouts;
mod wait_for;
pub mod warnings;

pub use chain::{run_coroutine_threadsafe, run_coroutine_threadsafe_local, wrap_future};
pub use clock::ClockKind;
pub use combinators::{AsCompleted, Gathered, ReturnWhen, as_completed, gather, wait, wait_for};
pub use concurrent::{CfState, ConcurrentFuture};
pub use error::{Error, Exception, ExceptionContext, ExceptionGroup, Result};
pub use event_loop::{
    Builder, EventLoop, ExceptionHandler, TaskFactory, all_tasks, default_exception_handler,
    get_running_loop,
};
pub use executor::{THREAD_JOIN_TIMEOUT, to_thread};
pub use future::{DoneCallback, Future, LocalDoneCallback};
pub use handle::{Handle, TimerHandle};
pub use inbox::InboxStats;
pub use loop_thread::LoopThread;
pub use policy::{
    Policy, ensure_future, ensure_future_local, get_event_loop, get_event_loop_policy,
    get_event_loop_with, new_event_loop, run, set_event_loop, set_event_loop_policy,
};
pub use profile::Profile;
pub use runner::{Runner, run_with_loop_factory};
pub use shield::{shield, shield_local};
pub use task::{
    Task, TaskRef, YieldNow, create_task, create_task_local, current_task, sleep,
    sleep_with_result, yield_now,
};
pub use taskgroup::TaskGroup;
pub use thread_pool::{Executor, Job, ThreadPool};
pub use timeouts::{Timeout, timeout, timeout_at};
pub use warnings::{Warning, catch_warnings};
