//! The loop as its futures and tasks see it: the [`EventLoop`] handle and
//! its shared state, where work is scheduled, how a call reaches the loop's
//! work and which thread holds its local work, and where errors nobody can
//! receive are reported.
//!
//! asyncio's futures and tasks reach their loop through a few calls —
//! `call_soon`, `call_later`, `call_exception_handler`, the running loop —
//! and never run it. This module is those calls; running the loop (one
//! iteration, `run_forever`, `close`, making tasks) is
//! [`event_loop`](crate::event_loop), which sits above futures and tasks.
//!
//! | file | what | SPEC.md |
//! |---|---|---|
//! | `shared.rs` | the `EventLoop` handle and what its clones share; `time`, `is_running`, `is_closed`, `inbox_stats` | LIFE-1, CLOCK-1 |
//! | `scheduling.rs` | `call_soon`, `call_soon_threadsafe`, `call_later`, `call_at`; a task's step requested from any thread; values kept for chains and stashed for local callbacks | SCHED-2…6, XTHREAD-1, XTHREAD-2 |
//! | `registry.rs` | the per-thread registry: the loop a thread runs, the work it borrows, its local homes (claiming, releasing, its exit), the running task step, [`get_running_loop`] | THREAD-*, POLICY-10 |
//! | `borrow.rs` | how a call reaches the loop's work: the fast path, the borrow on an idle loop, the inbox route while another thread runs it | THREAD-1, THREAD-8, THREAD-9 |
//! | `exceptions.rs` | the exception handler, and what the loop reports to it | SCHED-7, SCHED-8 |

mod borrow;
mod exceptions;
mod registry;
mod scheduling;
mod shared;

pub use self::exceptions::default_exception_handler;
pub use self::registry::get_running_loop;
pub(crate) use self::registry::{
    Running, current_task, current_thread_id, running_loop, set_current_task, set_running,
};
pub use self::shared::{EventLoop, ExceptionHandler, TaskFactory};
