//! [`EventLoop`], file by file. The struct and what its clones share are in
//! `shared.rs`; each other file is one `impl EventLoop` block with one job:
//!
//! | file | what | SPEC.md |
//! |---|---|---|
//! | `shared.rs` | the `EventLoop` handle and its shared state; `time`, `is_running`, `is_closed`, `inbox_stats` | LIFE-1, CLOCK-1 |
//! | `builder.rs` | making a loop: `new`, `with_clock`, [`Builder`] | |
//! | `exceptions.rs` | the exception handler, and what the loop reports to it | SCHED-7, SCHED-8 |
//! | `home_thread.rs` | which thread holds the loop-bound work: the per-thread registry, claiming and releasing a home, [`get_running_loop`] | THREAD-*, POLICY-10 |
//! | `scheduling.rs` | `call_soon`, `call_soon_threadsafe`, `call_later`, `call_at`; task wake-ups; the stash | SCHED-2…6, XTHREAD-1, XTHREAD-2 |
//! | `iteration.rs` | **one iteration**: `run_once` and its `poll` — the heart of the loop | SCHED-1, CLOCK-2 |
//! | `lifecycle.rs` | `run_forever`, `run_until_complete`, `stop`, `close` | LIFE-*, STOP-* |
//! | `tasks.rs` | `create_future`, `create_task`, `ensure_future`, [`all_tasks`] | FUT-1, TASK-1, TASK-2, TASK-13 |
//!
//! The first five sit below futures and tasks in the module tree (futures
//! schedule their callbacks and report to the exception handler); the last
//! three above them (a run waits on a future; `create_task` makes a task),
//! and the iteration knows tasks and futures only through the traits of
//! `src/home/erased.rs`.

pub(crate) mod builder;
pub(crate) mod exceptions;
pub(crate) mod home_thread;
pub(crate) mod iteration;
pub(crate) mod lifecycle;
pub(crate) mod scheduling;
pub(crate) mod shared;
pub(crate) mod tasks;

pub use self::builder::Builder;
pub use self::exceptions::default_exception_handler;
pub use self::home_thread::get_running_loop;
pub use self::shared::{EventLoop, ExceptionHandler};
pub use self::tasks::all_tasks;
pub use crate::error::ExceptionContext;
