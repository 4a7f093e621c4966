//! The loop's futures and tasks: [`create_future`](EventLoop::create_future),
//! [`create_task`](EventLoop::create_task),
//! [`ensure_future`](EventLoop::ensure_future) (SPEC.md FUT-1, TASK-1,
//! TASK-2), [`all_tasks`], and cancelling a task by id (the loop-thread end
//! of a cancellation forwarded from another thread).

use super::home_thread::get_running_loop;
use super::shared::EventLoop;
use crate::error::{Error, Result};
use crate::future::Future;
use crate::task::{Task, TaskRef};
use std::any::Any;

impl EventLoop {
    /// A new pending future bound to this loop (FUT-1). Never fails, even on
    /// a closed loop, as in asyncio.
    pub fn create_future<T: 'static>(&self) -> Future<T> {
        Future::new(self)
    }

    /// Wraps a Rust future (the coroutine of the Rust mapping) in a
    /// [`Task`] and schedules its first step with `call_soon` (TASK-1).
    ///
    /// Passing a loopspec [`Future`] or [`Task`] fails with asyncio's
    /// `TypeError` (`a coroutine was expected, got <Future pending>`); a closed
    /// loop fails with [`Error::Closed`] and drops `coro` without polling it.
    pub fn create_task<T, F>(&self, coro: F) -> Result<Task<T>>
    where
        T: 'static,
        F: std::future::Future<Output = Result<T>> + 'static,
    {
        let mut slot = Some(coro);
        if let Some(got) = future_like_repr::<T, F>(&mut slot) {
            // asyncio checks for a closed loop first.
            if self.is_closed() {
                return Err(Error::Closed);
            }
            return Err(Error::CoroutineExpected { got });
        }
        let coro = slot.take().ok_or(Error::Closed)?;
        // Spawning fails with `Closed` on a closed loop (the scheduling call
        // checks it), dropping `coro` unpolled.
        Task::spawn(self, coro)
    }

    /// asyncio's `ensure_future(x, loop=self)`: a loopspec [`Future`] or
    /// [`Task`] of this loop is returned as it is (one of another loop is a
    /// `ValueError`); any other Rust future is wrapped in a new task.
    pub fn ensure_future<T, F>(&self, f: F) -> Result<Future<T>>
    where
        T: 'static,
        F: std::future::Future<Output = Result<T>> + 'static,
    {
        Ok(self.ensure_future_inner(f)?.0)
    }

    /// `ensure_future`, also saying whether a task was made for it.
    pub(super) fn ensure_future_inner<T, F>(&self, f: F) -> Result<(Future<T>, bool)>
    where
        T: 'static,
        F: std::future::Future<Output = Result<T>> + 'static,
    {
        let mut slot = Some(f);
        match take_future_like(&mut slot) {
            Some(fut) if fut.get_loop() != *self => Err(Error::DifferentLoop),
            Some(fut) => Ok((fut, false)),
            None => {
                let coro = slot.take().ok_or(Error::Closed)?;
                Ok((self.create_task(coro)?.into_future(), true))
            }
        }
    }

    /// Cancels task `id` of this loop, if it is unfinished (the loop-thread
    /// end of a cancellation forwarded from another thread, XTHREAD-8).
    pub(crate) fn cancel_task_by_id(&self, id: u64) -> bool {
        let task = self
            .with_home(|home| home.tasks.borrow().get(&id).cloned())
            .ok()
            .flatten();
        task.is_some_and(|t| t.cancel(None))
    }
}

/// If `slot` holds a loopspec `Future<T>` or `Task<T>`, takes it out: the
/// runtime `isfuture()` check of asyncio's `ensure_future`.
pub(crate) fn take_future_like<T: 'static, F: 'static>(slot: &mut Option<F>) -> Option<Future<T>> {
    let any: &mut dyn Any = slot;
    if let Some(fut) = any.downcast_mut::<Option<Future<T>>>() {
        return fut.take();
    }
    if let Some(task) = any.downcast_mut::<Option<Task<T>>>() {
        return task.take().map(Task::into_future);
    }
    None
}

/// If `slot` holds a loopspec `Future<T>` or `Task<T>`, its repr.
fn future_like_repr<T: 'static, F: 'static>(slot: &mut Option<F>) -> Option<String> {
    let any: &mut dyn Any = slot;
    if let Some(Some(f)) = any.downcast_mut::<Option<Future<T>>>() {
        return Some(format!("{f:?}"));
    }
    if let Some(Some(t)) = any.downcast_mut::<Option<Task<T>>>() {
        return Some(format!("{t:?}"));
    }
    None
}

/// Unfinished tasks of the running loop: asyncio's `all_tasks()`.
pub fn all_tasks() -> Result<Vec<TaskRef>> {
    let lp = get_running_loop()?;
    Ok(lp
        .local_tasks()
        .into_iter()
        .map(TaskRef::from_dyn)
        .collect())
}
