//! What a loop holds of its tasks and futures without knowing their types:
//! the traits [`AnyTask`], [`AnyFuture`] and [`DueCallbacks`], and a task's
//! [`Coroutine`]. The futures
//! and tasks (`src/future/`, `src/task/`) implement them; the loop's home,
//! its core and its iteration only call them, which is why all three sit
//! below futures and tasks in the module tree — and why these traits name
//! no loop type: a task says which loop it belongs to with a [`LoopId`].

use super::LoopId;
use crate::error::{Error, Result};
use std::any::Any;
use std::future::Future as StdFuture;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// A task's coroutine without its result type, so that the loop's table of
/// tasks can own it (one allocation, as a boxed future): the typed step
/// passes an `Option<Poll<Result<T>>>` as `out` and the poll is written
/// there. Implemented for every `Future<Output = Result<T>>`.
pub(crate) trait LocalCoroutine {
    /// Polls the coroutine once and writes the `Poll<Result<T>>` into
    /// `out`, an `Option<Poll<Result<T>>>` (left as it is if `out` has
    /// another type).
    fn poll_into(self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut dyn Any);
}

impl<T: 'static, F: StdFuture<Output = Result<T>>> LocalCoroutine for F {
    fn poll_into(self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut dyn Any) {
        let polled = self.poll(cx);
        if let Some(slot) = out.downcast_mut::<Option<Poll<Result<T>>>>() {
            *slot = Some(polled);
        }
    }
}

/// A coroutine that is `Send`: the coroutine of a task made with
/// `create_task`, which belongs to the loop's [`Work`](super::work::Work).
/// Every `LocalCoroutine` that is `Send` is one.
pub(crate) trait SendCoroutine: LocalCoroutine + Send {}

impl<C: LocalCoroutine + Send> SendCoroutine for C {}

/// A task's coroutine, out of its table for a step: `Send` (kept in the
/// loop's work) or local (kept on the thread that made it, in the
/// [`LocalHome`](super::local::LocalHome)).
pub(crate) enum Coroutine {
    /// Made by `create_task`: kept in the task's entry of the work.
    Send(Pin<Box<dyn SendCoroutine>>),
    /// Made by `create_task_local` (or `run_until_complete`): kept by the
    /// local home.
    Local(Pin<Box<dyn LocalCoroutine>>),
}

impl Coroutine {
    /// Polls the coroutine once; see [`LocalCoroutine::poll_into`].
    pub(crate) fn poll_into(&mut self, cx: &mut Context<'_>, out: &mut dyn Any) {
        match self {
            Coroutine::Send(c) => c.as_mut().poll_into(cx, out),
            Coroutine::Local(c) => c.as_mut().poll_into(cx, out),
        }
    }
}

/// A task without its result type (asyncio's `Task` as the loop and its
/// helpers see it). Implemented by a task's future core.
pub(crate) trait AnyTask: Send + Sync {
    // The loop's view: the iteration, the home, `close()`.

    /// Runs one step of the task (one poll of its coroutine): asyncio's
    /// `Task.__step`. Called only by the iteration, on the thread that runs
    /// the loop.
    fn step(self: Arc<Self>);
    /// The task's id, unique within its loop (the N of `Task-N`).
    fn id(&self) -> u64;
    /// Marks the task as having a step queued. Returns `false` if one was
    /// queued already, or the task is done (the caller then queues nothing).
    fn mark_scheduled(&self) -> bool;
    /// Drops what the task waits on (`close()`, a local home thread's exit; the
    /// caller drops its coroutine, which the table of tasks holds). Returns
    /// whether the task is still pending, and the panic of a destructor, if
    /// any.
    fn destroy(&self) -> (bool, Option<Error>);
    /// The task's repr, e.g. `<Task pending name='Task-1'>`.
    fn repr(&self) -> String;

    // The view of a loopspec awaitable polled inside this task's step.

    /// Takes the exception thrown into the current step, if any: the first
    /// loopspec awaitable polled in the step returns it (that is how the
    /// coroutine "catches" it).
    fn take_throw(&self) -> Option<Error>;
    /// Throws `e` into the task's next step, and queues that step (a task
    /// awaiting itself, or a future of another loop).
    fn throw_next_step(self: Arc<Self>, e: Error);
    /// Records a loopspec future the current step awaits and that is
    /// pending (asyncio's `_fut_waiter`): `cancel()` cancels it.
    fn add_waiting_on(&self, f: Arc<dyn AnyFuture>);
    /// The address of the task's future core: its identity.
    fn core_addr(&self) -> *const ();
    /// The task is local (`create_task_local`): its coroutine is kept by
    /// its loop's local home. Fixed.
    fn is_local(&self) -> bool;
    /// The identity of the task's loop (a future of another loop cannot be
    /// awaited, FUT-8).
    fn loop_id(&self) -> LoopId;

    // The view of `TaskRef` (`current_task`, `all_tasks`, `Runner`).

    /// The task's name (TASK-9).
    fn name(&self) -> String;
    /// Renames the task.
    fn set_name(&self, name: String);
    /// `Task.cancel(msg)` (TASK-4).
    fn cancel(self: Arc<Self>, msg: Option<String>) -> bool;
    /// `Task.cancelling()`.
    fn cancelling(&self) -> u32;
    /// `Task.uncancel()` (TASK-10).
    fn uncancel(&self) -> u32;
    /// Whether the task is done.
    fn done(&self) -> bool;
    /// Whether the task is cancelled.
    fn cancelled(&self) -> bool;
    /// The exception the task ended with, if it ended with one other than
    /// its cancellation; reading it counts as retrieving it (FUT-7).
    fn exception(&self) -> Option<Error>;
    /// Adds a done callback that needs no access to the result.
    fn add_done_hook(self: Arc<Self>, hook: Arc<dyn Fn() + Send + Sync>) -> Result<()>;
}

/// A loopspec future without its result type: what a task waits on, and
/// what it cancels when it is cancelled.
pub(crate) trait AnyFuture: Send + Sync {
    /// `cancel(msg)`, whatever the future's kind.
    fn cancel_erased(self: Arc<Self>, msg: Option<String>) -> bool;
    /// Whether this is a task whose own `cancel()` is running (a cancel that
    /// reaches it again has gone round an await cycle).
    fn in_cancel(&self) -> bool;
}

/// A future whose done callbacks are due: scheduled, waiting in the future
/// itself, one `Ready::DoneCallback` entry in the ready queue per callback.
pub(crate) trait DueCallbacks: Send + Sync {
    /// Runs the first due done callback (FUT-6).
    fn run_next(self: Arc<Self>);
}
