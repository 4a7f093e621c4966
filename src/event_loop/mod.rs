//! Running an [`EventLoop`]: one iteration, the runs, `stop` and `close`,
//! making futures and tasks, making loops — file by file, each an `impl
//! EventLoop` block with one job:
//!
//! | file | what | SPEC.md |
//! |---|---|---|
//! | `iteration.rs` | **one iteration**: `run_once` and its `poll` — the heart of the loop, asyncio's `_run_once` | SCHED-1, CLOCK-2 |
//! | `lifecycle.rs` | `run_forever`, `run_until_complete`, `stop`, `close` | LIFE-*, STOP-* |
//! | `tasks.rs` | `create_future`, `create_task`, `ensure_future`, [`all_tasks`] | FUT-1, TASK-1, TASK-2, TASK-13 |
//! | `builder.rs` | making a loop: `new`, `with_clock`, [`Builder`] | |
//!
//! The handle itself, the scheduling calls, how a call reaches the loop's
//! work, the registry of local homes and the exception handler are the loop's core (`src/loop_core/`), below
//! futures and tasks: they are what futures and tasks call (asyncio's
//! futures call `loop.call_soon` and `loop.call_exception_handler`). This
//! module sits above them: a run waits on a future, `create_task` makes a
//! task, and the iteration steps tasks through the traits of
//! `src/home/erased.rs`.

mod builder;
mod iteration;
mod lifecycle;
mod tasks;

pub use self::builder::Builder;
pub use self::tasks::all_tasks;
pub use crate::error::ExceptionContext;
pub use crate::loop_core::{
    EventLoop, ExceptionHandler, TaskFactory, default_exception_handler, get_running_loop,
};
