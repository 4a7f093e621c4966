//! The loop's futures and tasks: [`create_future`](EventLoop::create_future),
//! [`create_task`](EventLoop::create_task),
//! [`ensure_future`](EventLoop::ensure_future) and their `_local` forms (SPEC.md FUT-1, TASK-1,
//! TASK-2), [`all_tasks`], and cancelling a task by id (the loop-thread end
//! of a cancellation forwarded from another thread).

use crate::error::{Error, Result};
use crate::future::Future;
use crate::handle::TaskKey;
use crate::loop_core::{
    EventLoop, TaskFactory, current_task as stepping_task, get_running_loop, running_loop,
};
use crate::task::{Start, Task, TaskRef, take_future_like};

impl EventLoop {
    /// A new pending future bound to this loop (FUT-1). Never fails, even on
    /// a closed loop, as in asyncio.
    pub fn create_future<T: Send + 'static>(&self) -> Future<T> {
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
        T: Send + 'static,
        F: std::future::Future<Output = Result<T>> + Send + 'static,
    {
        Task::create(self, coro)
    }

    /// [`create_task`](EventLoop::create_task) with a name: asyncio's
    /// `create_task(coro, name=name)` (TASK-17). The task is named before
    /// anything can see it, and takes no number from the counter of the
    /// default names `Task-N` (TASK-9).
    ///
    /// ```
    /// use loopspec::{ClockKind, EventLoop};
    ///
    /// let lp = EventLoop::with_clock(ClockKind::Virtual);
    /// let t = lp.create_task_named(async { Ok(1) }, "fetch").unwrap();
    /// assert_eq!(t.get_name(), "fetch");
    /// assert_eq!(lp.run_until_complete(t).unwrap(), 1);
    /// lp.close().unwrap();
    /// ```
    pub fn create_task_named<T, F>(&self, coro: F, name: impl Into<String>) -> Result<Task<T>>
    where
        T: Send + 'static,
        F: std::future::Future<Output = Result<T>> + Send + 'static,
    {
        Task::create_named(self, coro, Some(name.into()), Start::Factory)
    }

    /// A task that starts eagerly whatever the task factory: asyncio's
    /// `Task(coro, loop=loop, eager_start=True)` (3.12+; also
    /// `loop.create_task(coro, eager_start=True)` from 3.13). Called on the
    /// thread that runs the loop, the first step runs inside this call, as
    /// under [`TaskFactory::Eager`] (EAGER-2); anywhere else it is an
    /// ordinary task (TASK-1).
    ///
    /// ```
    /// use loopspec::{ClockKind, EventLoop};
    ///
    /// let lp = EventLoop::with_clock(ClockKind::Virtual);
    /// let done_at_once = lp
    ///     .run_until_complete(async {
    ///         let lp = loopspec::get_running_loop()?;
    ///         Ok(lp.create_task_eager(async { Ok(5) })?.done())
    ///     })
    ///     .unwrap();
    /// assert!(done_at_once);
    /// lp.close().unwrap();
    /// ```
    pub fn create_task_eager<T, F>(&self, coro: F) -> Result<Task<T>>
    where
        T: Send + 'static,
        F: std::future::Future<Output = Result<T>> + Send + 'static,
    {
        Task::create_named(self, coro, None, Start::Eager)
    }

    /// asyncio's `current_task(loop)` (TASK-18): the task of this loop
    /// whose step the calling thread is running, if any — `None` in a plain
    /// callback, on a loop that is not running, and on any thread but the
    /// one running the loop. Never fails.
    ///
    /// CPython answers from another thread too, with the task stepping on
    /// the loop's thread at that moment (a race: the step may be over when
    /// the caller looks); loopspec keeps the stepping task per thread and
    /// answers `None` there.
    ///
    /// ```
    /// use loopspec::{ClockKind, EventLoop};
    ///
    /// let lp = EventLoop::with_clock(ClockKind::Virtual);
    /// assert!(lp.current_task().is_none());
    /// let l = lp.clone();
    /// let t = lp.create_task_named(async move { Ok(l.current_task().unwrap().get_name()) }, "me")
    ///     .unwrap();
    /// assert_eq!(lp.run_until_complete(t).unwrap(), "me");
    /// lp.close().unwrap();
    /// ```
    pub fn current_task(&self) -> Option<TaskRef> {
        if running_loop().as_ref() != Some(self) {
            return None;
        }
        stepping_task().map(|t| TaskRef::new(t, self))
    }

    /// asyncio's `all_tasks(loop)` (TASK-18): the loop's unfinished tasks,
    /// in creation order, whether or not it runs; none on a closed loop (its
    /// tasks were dropped, TASK-8). From a thread other than the one running
    /// the loop it fails with THREAD-1's `NonThreadSafeCall`: the tasks are
    /// the running thread's work (CPython reads them racily from any
    /// thread).
    ///
    /// ```
    /// use loopspec::{ClockKind, EventLoop};
    ///
    /// let lp = EventLoop::with_clock(ClockKind::Virtual);
    /// let t = lp.create_task_named(loopspec::sleep(1.0), "nap").unwrap();
    /// let names: Vec<_> = lp.all_tasks().unwrap().iter().map(|t| t.get_name()).collect();
    /// assert_eq!(names, ["nap"]);
    /// lp.run_until_complete(t).unwrap();
    /// assert!(lp.all_tasks().unwrap().is_empty());
    /// lp.close().unwrap();
    /// ```
    pub fn all_tasks(&self) -> Result<Vec<TaskRef>> {
        match self.with_work(|work| work.tasks()) {
            Ok(tasks) => Ok(tasks.into_iter().map(|t| TaskRef::new(t, self)).collect()),
            Err(Error::Closed) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Sets how the loop makes its tasks: asyncio's `set_task_factory`
    /// (EAGER-1); [`TaskFactory::Eager`] is `set_task_factory(eager_task_factory)`,
    /// [`TaskFactory::Default`] `set_task_factory(None)`. Any thread may set
    /// it; it applies to tasks created afterwards.
    ///
    /// ```
    /// use loopspec::{ClockKind, EventLoop, TaskFactory};
    ///
    /// let lp = EventLoop::with_clock(ClockKind::Virtual);
    /// lp.set_task_factory(TaskFactory::Eager);
    /// let out = lp.run_until_complete(async {
    ///     let lp = loopspec::get_running_loop()?;
    ///     let t = lp.create_task(async { Ok(7) })?;
    ///     Ok(t.result()) // done already: its one step ran in create_task
    /// });
    /// assert_eq!(out.unwrap(), Ok(7));
    /// lp.close().unwrap();
    /// ```
    pub fn set_task_factory(&self, factory: TaskFactory) {
        self.set_eager_factory(factory == TaskFactory::Eager);
    }

    /// How the loop makes its tasks: asyncio's `get_task_factory()`
    /// ([`TaskFactory::Default`] for its `None`).
    pub fn get_task_factory(&self) -> TaskFactory {
        if self.eager_factory() {
            TaskFactory::Eager
        } else {
            TaskFactory::Default
        }
    }

    /// [`create_task`](EventLoop::create_task) for a coroutine that is not
    /// `Send`: a local task, whose coroutine stays on the thread that makes
    /// it — the loop's local home thread, or the thread that becomes it
    /// (THREAD-10). Its `Task` handle is `Send` all the same.
    pub fn create_task_local<T, F>(&self, coro: F) -> Result<Task<T>>
    where
        T: Send + 'static,
        F: std::future::Future<Output = Result<T>> + 'static,
    {
        Task::create_local(self, coro)
    }

    /// asyncio's `ensure_future(x, loop=self)`: a loopspec [`Future`] or
    /// [`Task`] of this loop is returned as it is (one of another loop is a
    /// `ValueError`); any other Rust future is wrapped in a new task.
    pub fn ensure_future<T, F>(&self, f: F) -> Result<Future<T>>
    where
        T: Send + 'static,
        F: std::future::Future<Output = Result<T>> + Send + 'static,
    {
        Ok(self.ensure_future_inner(f)?.0)
    }

    /// [`ensure_future`](EventLoop::ensure_future) for a future that is not
    /// `Send`: a coroutine becomes a local task
    /// ([`create_task_local`](EventLoop::create_task_local)).
    pub fn ensure_future_local<T, F>(&self, f: F) -> Result<Future<T>>
    where
        T: Send + 'static,
        F: std::future::Future<Output = Result<T>> + 'static,
    {
        Ok(self.ensure_future_inner(f)?.0)
    }

    /// `ensure_future`, also saying whether a task was made for it.
    pub(super) fn ensure_future_inner<T, F>(&self, f: F) -> Result<(Future<T>, bool)>
    where
        T: Send + 'static,
        F: std::future::Future<Output = Result<T>> + 'static,
    {
        let mut slot = Some(f);
        match take_future_like(&mut slot) {
            Some(fut) if fut.get_loop() != *self => Err(Error::DifferentLoop),
            Some(fut) => Ok((fut, false)),
            None => {
                let coro = slot.take().ok_or_else(|| Error::Closed)?;
                Ok((self.create_task_local(coro)?.into_future(), true))
            }
        }
    }

    /// Cancels the task `key` names on this loop, if it is unfinished (the
    /// loop-thread end of a cancellation forwarded from another thread,
    /// XTHREAD-8).
    pub(crate) fn cancel_task(&self, key: Option<TaskKey>) -> bool {
        let Some(key) = key else { return false };
        let task = self
            .with_work(|work| work.tasks.borrow().get(key).map(|e| e.task.clone()))
            .ok()
            .flatten();
        task.is_some_and(|t| t.cancel(None))
    }
}

/// Unfinished tasks of the running loop: asyncio's `all_tasks()`.
pub fn all_tasks() -> Result<Vec<TaskRef>> {
    let lp = get_running_loop()?;
    Ok(lp
        .unfinished_tasks()
        .into_iter()
        .map(|t| TaskRef::new(t, &lp))
        .collect())
}
