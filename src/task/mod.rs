//! [`Task<T>`]: a Rust future driven by the loop, like `asyncio.Task`.
//!
//! A task is a [`Future<T>`] of the `Task` kind whose result comes from
//! polling a Rust future — the coroutine of the Rust mapping — one *step* at
//! a time. Steps are queued with `call_soon`, so a task never starts
//! synchronously (TASK-1).
//!
//! * `src/future/task_state.rs`: the task's own state, field by field, and
//!   what the next step throws into the coroutine (the data of
//!   a future of the `Task` kind, so it lives with the future).
//! * `step.rs`: a step (asyncio's `Task.__step`) and `cancel()` (TASK-4).
//! * here: the [`Task`] and [`TaskRef`] handles, the task's waker, and the
//!   free functions ([`create_task`], [`current_task`], [`sleep`],
//!   [`yield_now`]).
//!
//! Waking: awaiting a loopspec future registers the task itself as a waiter,
//! and completion queues the task's next step — one iteration after the
//! completion, as asyncio's `__wakeup` callback. Any other awaitable gets the
//! task's [`Waker`](std::task::Waker) — the task's own core, so making it
//! allocates nothing — which is `Send + Sync`: called on the loop's thread
//! it queues a step, called from another thread it goes through the loop's
//! inbox and wakes a parked loop (THREAD-7).

mod step;

use crate::error::{Error, Result};
use crate::future::Future;
use crate::future::state::{Core, Kind};
use crate::future::task_state::TaskState;
use crate::handle::{HandleCore, Submission, Submittable, TaskKey, TimerHandle};
use crate::home::erased::{AnyTask, Coroutine};
use crate::home::tasks::TaskEntry;
use crate::home::work::Work;
use crate::loop_core::{EventLoop, current_task as stepping_task, get_running_loop};
use std::any::Any;
use std::fmt;
use std::future::Future as StdFuture;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake};

/// The task's core is its own waker, handed to foreign awaitables: `Send +
/// Sync`, safe from any thread, and made for each step from the core's
/// `Arc` (a reference count, no allocation). Woken on the loop's thread it
/// queues a step; from another thread the core itself is the inbox
/// submission (THREAD-7), so a wake-up allocates nothing either. A waker a
/// foreign awaitable keeps keeps the task's core alive, as in tokio.
impl<T: Send + 'static> Wake for Core<T> {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let Some(key) = self.kind.task().map(TaskState::key) else {
            return;
        };
        self.lp.request_step(key, || {
            Submission::step_request(self.clone() as Arc<dyn Submittable>)
        });
    }
}

impl<T: Send + 'static> HandleCore for Core<T> {
    fn cancel(&self) {}
    fn cancelled(&self) -> bool {
        false
    }
    fn name(&self) -> &'static str {
        "task step request"
    }
}

impl<T: Send + 'static> Submittable for Core<T> {
    fn run(&self) {}
    fn discard(&self) {}
    fn task_to_step(&self) -> Option<TaskKey> {
        self.kind.task().map(TaskState::key)
    }
}

/// A task: a Rust future driven by the loop; see the [module docs](self).
///
/// A `Task<T>` is a [`Future<T>`] (it derefs to one) whose `set_result` and
/// `set_exception` are refused, whose `cancel` requests a cancellation, and
/// which adds names and cancellation counting.
///
/// ```
/// use loopspec::{ClockKind, Error, EventLoop};
///
/// let lp = EventLoop::with_clock(ClockKind::Virtual);
/// let t = lp.create_task(async {
///     loopspec::sleep(10.0).await?;
///     Ok(1)
/// }).unwrap();
/// assert_eq!(t.get_name(), "Task-1");
/// let t2 = t.clone();
/// lp.call_later(1.0, move || { t2.cancel_with(Some("enough".into())); }).unwrap();
/// let err = lp.run_until_complete(t.clone()).unwrap_err();
/// assert_eq!(err, Error::Cancelled(Some("enough".into())));
/// assert!(t.cancelled());
/// ```
pub struct Task<T> {
    /// A future of the `Task` kind (only `Task::spawn` makes a `Task`).
    fut: Future<T>,
}

impl<T> Clone for Task<T> {
    fn clone(&self) -> Self {
        Task {
            fut: self.fut.clone(),
        }
    }
}

impl<T> PartialEq for Task<T> {
    fn eq(&self, other: &Self) -> bool {
        self.fut == other.fut
    }
}

impl<T> Eq for Task<T> {}

impl<T> fmt::Debug for Task<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.fut, f)
    }
}

impl<T> Deref for Task<T> {
    type Target = Future<T>;

    fn deref(&self) -> &Future<T> {
        &self.fut
    }
}

impl<T> From<Task<T>> for Future<T> {
    fn from(task: Task<T>) -> Future<T> {
        task.into_future()
    }
}

impl<T> From<&Task<T>> for Future<T> {
    fn from(task: &Task<T>) -> Future<T> {
        task.as_future().clone()
    }
}

impl<T: Send + 'static> Task<T> {
    /// asyncio's `loop.create_task(coro)`: refuses a loopspec future or
    /// task (`TypeError`, after the closed check, as asyncio), then
    /// [`spawn`](Task::spawn)s with the coroutine in the loop's work.
    pub(crate) fn create<F>(lp: &EventLoop, coro: F) -> Result<Task<T>>
    where
        F: StdFuture<Output = Result<T>> + Send + 'static,
    {
        Self::create_named(lp, coro, None, Start::Factory)
    }

    /// [`create`](Task::create) with the task's name, if given (TASK-17),
    /// starting as `start` says (EAGER-1).
    pub(crate) fn create_named<F>(
        lp: &EventLoop,
        coro: F,
        name: Option<String>,
        start: Start,
    ) -> Result<Task<T>>
    where
        F: StdFuture<Output = Result<T>> + Send + 'static,
    {
        let coro = Self::coroutine_expected(lp, coro)?;
        Task::spawn(lp, Coroutine::Send(Box::pin(coro)), name, start)
    }

    /// [`create`](Task::create) for a local task: the coroutine is kept by
    /// this thread's local home.
    pub(crate) fn create_local<F>(lp: &EventLoop, coro: F) -> Result<Task<T>>
    where
        F: StdFuture<Output = Result<T>> + 'static,
    {
        let coro = Self::coroutine_expected(lp, coro)?;
        Task::spawn(lp, Coroutine::Local(Box::pin(coro)), None, Start::Factory)
    }

    /// `coro` itself, unless it is a loopspec future or task.
    fn coroutine_expected<F>(lp: &EventLoop, coro: F) -> Result<F>
    where
        F: StdFuture<Output = Result<T>> + 'static,
    {
        let mut slot = Some(coro);
        if let Some(got) = future_like_repr::<T, F>(&mut slot) {
            if lp.is_closed() {
                return Err(Error::Closed);
            }
            return Err(Error::CoroutineExpected { got });
        }
        slot.take().ok_or_else(|| Error::Closed)
    }

    /// Makes the task, named `name` or `Task-N`, and queues its first step.
    /// Fails with `Closed` on a closed loop (the scheduling call checks it),
    /// dropping `coro` unpolled.
    pub(crate) fn spawn(
        lp: &EventLoop,
        coro: Coroutine,
        name: Option<String>,
        start: Start,
    ) -> Result<Task<T>> {
        let id = lp.next_task_id();
        let number = if name.is_some() {
            0
        } else {
            lp.next_task_number()
        };
        let local = matches!(coro, Coroutine::Local(_));
        let state = TaskState::new(id, number, name, local);
        let fut = Future::with_kind(lp, Kind::Task(state));
        let task: Arc<dyn AnyTask> = fut.core.clone();
        // The task enters its loop's table, and learns its slot there.
        let enter = |work: &Work, coro| {
            let slot = work.tasks.borrow_mut().insert(TaskEntry {
                task: task.clone(),
                coro,
            });
            if let Some(t) = fut.core.kind.task() {
                t.set_slot(slot);
            }
        };
        // An eager task's first step runs below, inside this call (EAGER-2);
        // only on the thread that runs the loop.
        let eager = match start {
            Start::Factory => lp.eager_here(),
            Start::Eager => lp.runs_here(),
        };
        match coro {
            Coroutine::Send(c) => lp.with_work(|work| {
                enter(work, Some(c));
                if !eager {
                    work.schedule_step(task.clone());
                }
            })?,
            Coroutine::Local(c) => lp.with_local(|work, local| {
                local.put_coroutine(id, c);
                enter(work, None);
                if !eager {
                    work.schedule_step(task.clone());
                }
            })?,
        }
        if eager {
            task.step();
        }
        Ok(Task { fut })
    }

    /// Names the task in its loop's table of unfinished tasks.
    pub(crate) fn key(&self) -> Option<TaskKey> {
        self.state().map(TaskState::key)
    }

    /// The task's name: `Task-N` unless set (TASK-9).
    pub fn get_name(&self) -> String {
        self.state().map(TaskState::name).unwrap_or_default()
    }

    /// Renames the task.
    pub fn set_name(&self, name: impl Into<String>) {
        self.fut.core.set_name(name.into());
    }

    /// The number of pending cancellation requests (TASK-4).
    pub fn cancelling(&self) -> u32 {
        self.fut.core.cancelling()
    }

    /// Removes one cancellation request and returns how many remain. In the
    /// 3.13+ profiles, reaching zero also withdraws a cancellation not yet
    /// delivered (TASK-10).
    pub fn uncancel(&self) -> u32 {
        self.fut.core.uncancel()
    }
}

impl<T> Task<T> {
    /// The task's own state. `Task::spawn`, the only maker of a `Task`, gives
    /// it a core of the `Task` kind.
    fn state(&self) -> Option<&TaskState> {
        self.fut.core.kind.task()
    }

    /// The task as a plain [`Future`] handle.
    pub fn as_future(&self) -> &Future<T> {
        &self.fut
    }

    /// Converts into the [`Future`] handle.
    pub fn into_future(self) -> Future<T> {
        self.fut
    }
}

impl<T: Send + 'static> Task<T> {
    /// The task without its result type.
    pub(crate) fn task_ref(&self) -> TaskRef {
        TaskRef::new(self.fut.core.clone(), &self.fut.core.lp)
    }
}

impl<T: Clone + Send + 'static> StdFuture for Task<T> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        Pin::new(&mut self.fut).poll(cx)
    }
}

/// How a new task's first step starts (EAGER-1, EAGER-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    /// As the loop's task factory says: scheduled with `call_soon`
    /// (TASK-1), or eagerly under [`TaskFactory::Eager`](crate::TaskFactory).
    Factory,
    /// Eagerly whatever the factory: asyncio's `eager_start=True`.
    Eager,
}

/// A task without its result type: what [`current_task`] and
/// [`all_tasks`](crate::all_tasks) return.
///
/// ```
/// use loopspec::{ClockKind, EventLoop};
///
/// let lp = EventLoop::with_clock(ClockKind::Virtual);
/// let name = lp
///     .run_until_complete(async { Ok(loopspec::current_task()?.unwrap().get_name()) })
///     .unwrap();
/// assert_eq!(name, "Task-1");
/// ```
#[derive(Clone)]
pub struct TaskRef {
    /// The task.
    inner: Arc<dyn AnyTask>,
    /// Its loop (a task knows its loop only by [`LoopId`](crate::home::LoopId)).
    lp: EventLoop,
}

impl fmt::Debug for TaskRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.inner.repr())
    }
}

impl PartialEq for TaskRef {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::addr_eq(self.inner.core_addr(), other.inner.core_addr())
    }
}

impl TaskRef {
    /// `inner`, a task of `lp`.
    pub(crate) fn new(inner: Arc<dyn AnyTask>, lp: &EventLoop) -> TaskRef {
        TaskRef {
            inner,
            lp: lp.clone(),
        }
    }

    /// The task's name.
    pub fn get_name(&self) -> String {
        self.inner.name()
    }

    /// Renames the task.
    pub fn set_name(&self, name: impl Into<String>) {
        self.inner.set_name(name.into());
    }

    /// Requests cancellation; see [`Future::cancel`].
    pub fn cancel(&self) -> bool {
        self.inner.clone().cancel(None)
    }

    /// Requests cancellation with a message.
    pub fn cancel_with(&self, msg: Option<String>) -> bool {
        self.inner.clone().cancel(msg)
    }

    /// The number of pending cancellation requests.
    pub fn cancelling(&self) -> u32 {
        self.inner.cancelling()
    }

    /// See [`Task::uncancel`].
    pub fn uncancel(&self) -> u32 {
        self.inner.uncancel()
    }

    /// Whether the task is done.
    pub fn done(&self) -> bool {
        self.inner.done()
    }

    /// Whether the task is cancelled.
    pub fn cancelled(&self) -> bool {
        self.inner.cancelled()
    }

    /// The exception the task ended with, if it is done and ended with one
    /// (not cancelled); like `Task.exception()`, reading it counts as
    /// retrieving it.
    pub fn exception(&self) -> Option<Error> {
        self.inner.exception()
    }

    /// The loop the task belongs to.
    pub fn get_loop(&self) -> EventLoop {
        self.lp.clone()
    }

    /// Whether this is the task `task`.
    pub fn is<T>(&self, task: &Task<T>) -> bool {
        std::ptr::addr_eq(self.inner.core_addr(), Arc::as_ptr(&task.fut.core))
    }
}

/// The task whose step is running on this thread: asyncio's `current_task()`.
/// `Ok(None)` in a plain callback; [`Error::NoRunningLoop`] when no loop runs
/// in this thread (TASK-13).
pub fn current_task() -> Result<Option<TaskRef>> {
    // The task whose step runs here belongs to the loop running here.
    let lp = get_running_loop()?;
    Ok(stepping_task().map(|t| TaskRef::new(t, &lp)))
}

/// asyncio's `create_task(coro)`: a task on the loop running in this thread
/// ([`Error::NoRunningLoop`] if none, POLICY-11).
pub fn create_task<T, F>(coro: F) -> Result<Task<T>>
where
    T: Send + 'static,
    F: StdFuture<Output = Result<T>> + Send + 'static,
{
    Task::create(&get_running_loop()?, coro)
}

/// [`create_task`] for a coroutine that is not `Send`: a local task of the
/// loop running in this thread (see [`EventLoop::create_task_local`]).
pub fn create_task_local<T, F>(coro: F) -> Result<Task<T>>
where
    T: Send + 'static,
    F: StdFuture<Output = Result<T>> + 'static,
{
    Task::create_local(&get_running_loop()?, coro)
}

/// Gives up exactly one iteration of the loop (`await asyncio.sleep(0)`,
/// TASK-1). Also where a pending cancellation is delivered.
///
/// ```
/// use loopspec::{ClockKind, EventLoop};
///
/// let lp = EventLoop::with_clock(ClockKind::Virtual);
/// lp.run_until_complete(async {
///     loopspec::yield_now().await?;
///     Ok(())
/// }).unwrap();
/// ```
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

/// The future returned by [`yield_now`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct YieldNow {
    /// Polled once already: the next poll is ready.
    yielded: bool,
}

impl StdFuture for YieldNow {
    type Output = Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        if let Some(exc) = stepping_task().and_then(|t| t.take_throw()) {
            return Poll::Ready(Err(exc));
        }
        if self.yielded {
            return Poll::Ready(Ok(()));
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Cancels a timer when dropped (`sleep`'s `finally: h.cancel()`).
struct CancelOnDrop(TimerHandle);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// Sleeps `delay` seconds on the running loop's clock: asyncio's `sleep`.
/// `sleep(0)` (or less) yields exactly one iteration (TASK-12). Fails with
/// [`Error::NoRunningLoop`] outside a running loop, and with
/// [`Error::NanTime`] for NaN.
///
/// ```
/// use loopspec::{ClockKind, EventLoop};
///
/// let lp = EventLoop::with_clock(ClockKind::Virtual);
/// lp.run_until_complete(async { loopspec::sleep(2.0).await }).unwrap();
/// assert_eq!(lp.time(), 2.0);
/// ```
pub async fn sleep(delay: f64) -> Result<()> {
    if delay.is_nan() {
        return Err(Error::NanTime);
    }
    if delay <= 0.0 {
        return yield_now().await;
    }
    let lp = get_running_loop()?;
    let fut = Future::<()>::new(&lp);
    let waiter = fut.clone();
    let timer = lp.call_later(delay, move || {
        if !waiter.cancelled() {
            let _ = waiter.set_result(());
        }
    })?;
    let _cancel = CancelOnDrop(timer);
    fut.await
}

/// Sleeps `delay` seconds, then returns `result`: asyncio's
/// `sleep(delay, result)` (TASK-19). Fails as [`sleep`] does; a cancelled
/// sleep returns the `CancelledError`, and `result` is dropped.
///
/// ```
/// use loopspec::{ClockKind, EventLoop};
///
/// let lp = EventLoop::with_clock(ClockKind::Virtual);
/// let got = lp.run_until_complete(loopspec::sleep_with_result(1.5, "awake"));
/// assert_eq!((got.unwrap(), lp.time()), ("awake", 1.5));
/// ```
pub async fn sleep_with_result<T>(delay: f64, result: T) -> Result<T> {
    sleep(delay).await.map(|()| result)
}

/// If `slot` holds a loopspec `Future<T>` or `Task<T>`, takes it out: the
/// runtime `isfuture()` check of asyncio's `ensure_future`.
pub(crate) fn take_future_like<T: Send + 'static, F: 'static>(
    slot: &mut Option<F>,
) -> Option<Future<T>> {
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
fn future_like_repr<T: Send + 'static, F: 'static>(slot: &mut Option<F>) -> Option<String> {
    let any: &mut dyn Any = slot;
    if let Some(Some(f)) = any.downcast_mut::<Option<Future<T>>>() {
        return Some(format!("{f:?}"));
    }
    if let Some(Some(t)) = any.downcast_mut::<Option<Task<T>>>() {
        return Some(format!("{t:?}"));
    }
    None
}
