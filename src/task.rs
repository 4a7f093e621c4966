//! [`Task<T>`]: a Rust future driven by the loop, like `asyncio.Task`.
//!
//! A task is a [`Future<T>`] whose result comes from polling a Rust future —
//! the coroutine of the Rust mapping — one *step* at a time. Steps are queued
//! with `call_soon`, so a task never starts synchronously (TASK-1).
//!
//! # Task fields and their invariants
//!
//! * `scheduled` — a step of this task is in the ready queue. Set when one is
//!   queued, cleared when it starts. At most one step is queued at a time.
//! * `stepping` — the task's future is being polled right now.
//! * `started` — the future has been polled once. A task cancelled before its
//!   first step is never polled: its body never runs (TASK-4).
//! * `must_cancel` / `cancel_msg` — a cancellation requested while the task
//!   was not waiting on a loopspec future (or that future was already done).
//!   The next step delivers it.
//! * `waiting_on` — the loopspec futures the task's future awaited in its
//!   last step and that were pending then (asyncio's `_fut_waiter`). Cleared
//!   at the start of each step. `cancel()` cancels them.
//! * `throw` — the exception delivered in the current step (a cancellation,
//!   or an error asyncio would throw into the coroutine). The first loopspec
//!   awaitable polled in the step takes it and returns it as its output: that
//!   is how the coroutine "catches" it. If nothing takes it, the future could
//!   not observe it (it was suspended on a foreign awaitable, or completed):
//!   the future is dropped and the task ends with that exception — cancelled,
//!   for a cancellation (the Rust mapping: cancellation is drop).
//! * `num_cancels` — `cancelling()`; `cancel()` adds one, `uncancel()`
//!   removes one (and, in the 3.13+ profiles, clears `must_cancel` at zero).
//!
//! Waking: awaiting a loopspec future registers the task itself as a waiter,
//! and completion queues the task's next step — one iteration after the
//! completion, as asyncio's `__wakeup` callback. Any other awaitable gets the
//! task's [`Waker`], which is `Send + Sync`: called on the loop's thread it
//! queues a step, called from another thread it goes through the loop's inbox
//! and wakes a parked loop.

use crate::error::drop_each;
use crate::error::{Error, Result};
use crate::event_loop::{EventLoop, get_running_loop};
use crate::future::{Future, FutureState, repr_of};
use crate::handle::{HandleCore, Submission, Submittable};
use crate::home::erased::{AnyFuture, AnyTask};
use crate::profile::Profile;
use crate::sync::thread_local;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future as StdFuture;
use std::ops::Deref;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Wake, Waker};

type Coroutine<T> = Pin<Box<dyn StdFuture<Output = Result<T>>>>;

/// The task part of a future's core; see the [module docs](self).
pub(crate) struct TaskFields<T> {
    pub(crate) id: u64,
    /// Set by `set_name`; `Task-{id}` until then (made on demand, so a task
    /// nobody names costs no string).
    pub(crate) name: RefCell<Option<String>>,
    coro: RefCell<Option<Coroutine<T>>>,
    waker: Waker,
    started: Cell<bool>,
    stepping: Cell<bool>,
    scheduled: Cell<bool>,
    must_cancel: Cell<bool>,
    /// Inside this task's `cancel()` (cancelling what it waits on).
    cancelling_now: Cell<bool>,
    cancel_msg: RefCell<Option<String>>,
    num_cancels: Cell<u32>,
    waiting_on: RefCell<Vec<Rc<dyn AnyFuture>>>,
    /// An exception to deliver at the next step (self-await, other loop).
    /// Rare, so boxed: an `Error` inline would add its size to every task.
    pending_exc: RefCell<Option<Box<Error>>>,
    /// The exception being thrown into the coroutine during a step (boxed,
    /// like `pending_exc`).
    throw: RefCell<Option<Box<Error>>>,
    /// The message of the cancellation that ended the task, handed out to the
    /// first reader only (TASK-11, a CPython 3.11+ quirk).
    pub(crate) first_cancel_msg: RefCell<Option<Option<String>>>,
}

impl<T> TaskFields<T> {
    /// The task's name (TASK-9).
    pub(crate) fn name(&self) -> String {
        match &*self.name.borrow() {
            Some(name) => name.clone(),
            None => format!("Task-{}", self.id),
        }
    }
}

thread_local! {
    /// The task whose step is running on this thread.
    static CURRENT: RefCell<Option<Rc<dyn AnyTask>>> = RefCell::new(None);
}

/// The task being stepped on this thread, if any.
pub(crate) fn current() -> Option<Rc<dyn AnyTask>> {
    CURRENT.try_with(|c| c.borrow().clone()).ok().flatten()
}

fn set_current(task: Option<Rc<dyn AnyTask>>) -> Option<Rc<dyn AnyTask>> {
    CURRENT
        .try_with(|c| std::mem::replace(&mut *c.borrow_mut(), task))
        .ok()
        .flatten()
}

fn fields<T>(fut: &Future<T>) -> &TaskFields<T> {
    fut.core
        .task
        .as_ref()
        .expect("task operation on a plain future")
}

/// The waker handed to foreign awaitables: `Send + Sync`, safe from any thread.
struct TaskWaker {
    lp: EventLoop,
    id: u64,
}

impl Wake for TaskWaker {
    fn wake(self: std::sync::Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        // Off the loop's thread the waker itself is the inbox submission: no
        // allocation per wake-up.
        self.lp.wake_task(self.id, || {
            Submission::wake_up(self.clone() as std::sync::Arc<dyn Submittable>)
        });
    }
}

impl HandleCore for TaskWaker {
    fn cancel(&self) {}
    fn cancelled(&self) -> bool {
        false
    }
    fn name(&self) -> &'static str {
        "task wake-up"
    }
}

impl Submittable for TaskWaker {
    fn run(&self) {}
    fn discard(&self) {}
    fn task_wake(&self) -> Option<u64> {
        Some(self.id)
    }
}

impl<T: 'static> AnyTask for crate::future::Core<T> {
    fn step(self: Rc<Self>) {
        step(Future { core: self });
    }

    fn id(&self) -> u64 {
        self.task.as_ref().map_or(0, |t| t.id)
    }

    fn mark_scheduled(&self) -> bool {
        let Some(t) = &self.task else { return false };
        if t.scheduled.get() || !matches!(*self.state.borrow(), FutureState::Pending) {
            return false;
        }
        t.scheduled.set(true);
        true
    }

    fn destroy(&self) -> (bool, Option<Error>) {
        let Some(t) = &self.task else {
            return (false, None);
        };
        // What it waits on first: a cycle through them must not outlive a
        // future whose destructor panics.
        let waiting = std::mem::take(&mut *t.waiting_on.borrow_mut());
        let coro = t.coro.borrow_mut().take();
        let pending = coro.is_some() && matches!(*self.state.borrow(), FutureState::Pending);
        let mut panics = Vec::new();
        drop_each(waiting, &mut panics);
        drop_each(coro, &mut panics);
        (pending, panics.into_iter().next())
    }

    fn repr(&self) -> String {
        repr_of(self)
    }

    fn take_throw(&self) -> Option<Error> {
        self.task.as_ref()?.throw.borrow_mut().take().map(|e| *e)
    }

    fn throw_next_step(self: Rc<Self>, e: Error) {
        let Some(t) = &self.task else { return };
        *t.pending_exc.borrow_mut() = Some(Box::new(e));
        schedule_self(&Future { core: self });
    }

    fn add_waiting_on(&self, f: Rc<dyn AnyFuture>) {
        if let Some(t) = &self.task {
            t.waiting_on.borrow_mut().push(f);
        }
    }

    fn core_addr(&self) -> *const () {
        self as *const Self as *const ()
    }

    fn event_loop(&self) -> EventLoop {
        self.lp.clone()
    }

    fn name(&self) -> String {
        self.task.as_ref().map(TaskFields::name).unwrap_or_default()
    }

    fn set_name(&self, name: String) {
        if let Some(t) = &self.task {
            *t.name.borrow_mut() = Some(name);
        }
    }

    fn cancel(self: Rc<Self>, msg: Option<String>) -> bool {
        cancel_task(&Future { core: self }, msg)
    }

    fn cancelling(&self) -> u32 {
        self.task.as_ref().map_or(0, |t| t.num_cancels.get())
    }

    fn uncancel(&self) -> u32 {
        let Some(t) = &self.task else { return 0 };
        let n = t.num_cancels.get();
        if n > 0 {
            t.num_cancels.set(n - 1);
            if n == 1 && self.lp.profile() >= Profile::Py313 {
                t.must_cancel.set(false);
            }
        }
        t.num_cancels.get()
    }

    fn done(&self) -> bool {
        !matches!(*self.state.borrow(), FutureState::Pending)
    }

    fn cancelled(&self) -> bool {
        matches!(*self.state.borrow(), FutureState::Cancelled(_))
    }

    fn exception(&self) -> Option<Error> {
        let FutureState::Finished(Err(e)) = &*self.state.borrow() else {
            return None;
        };
        self.retrieved.set(true);
        Some(e.clone())
    }

    fn add_done_hook(self: Rc<Self>, hook: Rc<dyn Fn()>) -> Result<()> {
        Future { core: self }.add_done_callback(Rc::new(move |_: &Future<T>| hook()))
    }
}

/// The message of the last `cancel(msg)` that had to be delivered at the
/// task's next step (asyncio's `Task._cancel_message`).
pub(crate) fn pending_cancel_message<T>(t: &TaskFields<T>) -> Option<String> {
    t.cancel_msg.borrow().clone()
}

/// Drops a task's future, reporting a panic from its `Drop` to the loop.
fn drop_coro<T>(lp: &EventLoop, coro: Coroutine<T>) {
    let mut panics = Vec::new();
    drop_each([coro], &mut panics);
    lp.report_drop_panics("a task's future", panics);
}

/// Ends the task: cancelled for a `CancelledError`, else with the outcome.
fn finish<T: 'static>(fut: &Future<T>, outcome: Result<T>) {
    let t = fields(fut);
    match outcome {
        Err(Error::Cancelled(msg)) => {
            // asyncio hands the CancelledError that ended the task to the
            // first reader only; later readers get one without a message.
            *t.first_cancel_msg.borrow_mut() = Some(msg);
            fut.cancel_future(None);
        }
        other => {
            let _ = fut.complete(FutureState::Finished(other));
        }
    }
    forget(fut);
}

/// Removes a finished task from its loop's table of unfinished tasks.
fn forget<T: 'static>(fut: &Future<T>) {
    fut.core.lp.forget_task(fields(fut).id);
}

/// One step of a task: asyncio's `Task.__step`.
fn step<T: 'static>(fut: Future<T>) {
    let t = fields(&fut);
    t.scheduled.set(false);
    if fut.done() {
        return;
    }
    // Dropped after the borrow ends: the last reference to an awaited
    // future may run user code that touches this task.
    let awaited = std::mem::take(&mut *t.waiting_on.borrow_mut());
    drop(awaited);
    let throw = if t.must_cancel.replace(false) {
        Some(Error::Cancelled(t.cancel_msg.borrow().clone()))
    } else {
        t.pending_exc.borrow_mut().take().map(|e| *e)
    };
    let Some(mut coro) = t.coro.borrow_mut().take() else {
        return; // destroyed by close()
    };
    let lp = fut.core.lp.clone();
    if let Some(exc) = throw.clone().filter(|_| !t.started.get()) {
        // Thrown into a coroutine that never started: its body never runs.
        drop_coro(&lp, coro);
        finish(&fut, Err(exc));
        return;
    }
    t.started.set(true);
    *t.throw.borrow_mut() = throw.map(Box::new);
    t.stepping.set(true);
    let prev = set_current(Some(fut.core.clone()));
    let polled = catch_unwind(AssertUnwindSafe(|| {
        coro.as_mut().poll(&mut Context::from_waker(&t.waker))
    }));
    set_current(prev);
    t.stepping.set(false);
    let unobserved = t.throw.borrow_mut().take();
    match polled {
        Err(panic) => {
            drop_coro(&lp, coro);
            finish(&fut, Err(Error::from_panic(panic)));
        }
        Ok(Poll::Ready(outcome)) => {
            drop_coro(&lp, coro);
            let outcome = match unobserved {
                Some(exc) => Err(*exc),
                None => outcome,
            };
            if outcome.is_ok() && t.must_cancel.replace(false) {
                // Cancelled during the step that returned (TASK-5).
                let msg = t.cancel_msg.borrow().clone();
                fut.cancel_future(msg);
                forget(&fut);
            } else {
                finish(&fut, outcome);
            }
        }
        Ok(Poll::Pending) => {
            if let Some(exc) = unobserved {
                // The future could not observe the exception: drop it.
                drop_coro(&lp, coro);
                finish(&fut, Err(*exc));
                return;
            }
            *t.coro.borrow_mut() = Some(coro);
            if t.must_cancel.get() {
                // cancel() was called during this step: cancel what the task
                // now waits on, or deliver the cancellation at a later step.
                let msg = t.cancel_msg.borrow().clone();
                match cancel_waiters(t, msg) {
                    Delivery::Delivered => t.must_cancel.set(false),
                    Delivery::AtWakeUp => {}
                    Delivery::NeedsStep => schedule_self(&fut),
                }
            }
        }
    }
}

/// `Task.cancel(msg)` (TASK-4).
pub(crate) fn cancel_task<T: 'static>(fut: &Future<T>, msg: Option<String>) -> bool {
    let t = fields(fut);
    if fut.done() {
        return false;
    }
    t.num_cancels.set(t.num_cancels.get() + 1);
    let delivery = cancel_waiters(t, msg.clone());
    if delivery == Delivery::Delivered {
        return true;
    }
    t.must_cancel.set(true);
    *t.cancel_msg.borrow_mut() = msg;
    if delivery == Delivery::NeedsStep && !t.stepping.get() {
        schedule_self(fut);
    }
    true
}

/// How a task's cancellation will reach it.
#[derive(Debug, PartialEq, Eq)]
enum Delivery {
    /// A loopspec future it awaits was cancelled: its wake-up delivers it.
    Delivered,
    /// No awaited future could be cancelled, but one will wake the task
    /// (it is done already, or is a gather of done children): the
    /// cancellation is delivered at that step, as in asyncio.
    AtWakeUp,
    /// Nothing will wake the task for it: it awaits no loopspec future (a
    /// foreign awaitable — asyncio always has a step queued there), or an
    /// await cycle led back to a task being cancelled (CPython recurses
    /// until `RecursionError`). A step must be queued.
    NeedsStep,
}

/// Cancels the loopspec futures the task awaits (asyncio's `_fut_waiter`).
fn cancel_waiters<T>(t: &TaskFields<T>, msg: Option<String>) -> Delivery {
    let waiting = t.waiting_on.borrow().clone();
    if waiting.is_empty() {
        return Delivery::NeedsStep;
    }
    t.cancelling_now.set(true);
    let mut delivered = false;
    let mut cycle = false;
    for w in waiting {
        if w.in_cancel() {
            cycle = true; // do not go round the cycle again
        } else {
            delivered |= w.cancel_erased(msg.clone());
        }
    }
    t.cancelling_now.set(false);
    match (delivered, cycle) {
        (true, _) => Delivery::Delivered,
        (false, true) => Delivery::NeedsStep,
        (false, false) => Delivery::AtWakeUp,
    }
}

/// Whether the task's own `cancel()` is running.
pub(crate) fn in_cancel<T>(t: &TaskFields<T>) -> bool {
    t.cancelling_now.get()
}

/// Queues a step of the task (a no-op if one is queued).
fn schedule_self<T: 'static>(fut: &Future<T>) {
    let me: Rc<dyn AnyTask> = fut.core.clone();
    let _ = fut.core.lp.with_home(|home| home.schedule_step(me));
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

impl<T: 'static> Task<T> {
    /// Makes the task and queues its first step.
    pub(crate) fn spawn<F>(lp: &EventLoop, coro: F) -> Result<Task<T>>
    where
        F: StdFuture<Output = Result<T>> + 'static,
    {
        let id = lp.next_task_id();
        let fields = TaskFields {
            id,
            name: RefCell::new(None),
            coro: RefCell::new(Some(Box::pin(coro))),
            waker: Waker::from(std::sync::Arc::new(TaskWaker { lp: lp.clone(), id })),
            started: Cell::new(false),
            stepping: Cell::new(false),
            scheduled: Cell::new(false),
            must_cancel: Cell::new(false),
            cancelling_now: Cell::new(false),
            cancel_msg: RefCell::new(None),
            num_cancels: Cell::new(0),
            waiting_on: RefCell::new(Vec::new()),
            pending_exc: RefCell::new(None),
            throw: RefCell::new(None),
            first_cancel_msg: RefCell::new(None),
        };
        let fut = Future::from_core(lp, Some(fields));
        let task: Rc<dyn AnyTask> = fut.core.clone();
        lp.with_home(|home| {
            home.tasks.borrow_mut().insert(id, task.clone());
            home.schedule_step(task);
        })?;
        Ok(Task { fut })
    }

    /// The task's id within its loop (the N of its default name).
    pub(crate) fn id(&self) -> u64 {
        fields(&self.fut).id
    }

    /// The task's name: `Task-N` unless set (TASK-9).
    pub fn get_name(&self) -> String {
        fields(&self.fut).name()
    }

    /// Renames the task.
    pub fn set_name(&self, name: impl Into<String>) {
        *fields(&self.fut).name.borrow_mut() = Some(name.into());
    }

    /// The number of pending cancellation requests (TASK-4).
    pub fn cancelling(&self) -> u32 {
        fields(&self.fut).num_cancels.get()
    }

    /// Removes one cancellation request and returns how many remain. In the
    /// 3.13+ profiles, reaching zero also withdraws a cancellation not yet
    /// delivered (TASK-10).
    pub fn uncancel(&self) -> u32 {
        self.fut.core.uncancel()
    }
}

impl<T> Task<T> {
    /// The task as a plain [`Future`] handle.
    pub fn as_future(&self) -> &Future<T> {
        &self.fut
    }

    /// Converts into the [`Future`] handle.
    pub fn into_future(self) -> Future<T> {
        self.fut
    }
}

impl<T: Clone + 'static> StdFuture for Task<T> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        Pin::new(&mut self.fut).poll(cx)
    }
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
    inner: Rc<dyn AnyTask>,
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
    pub(crate) fn from_dyn(inner: Rc<dyn AnyTask>) -> TaskRef {
        TaskRef { inner }
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
        self.inner.event_loop()
    }

    /// Whether this is the task `task`.
    pub fn is<T>(&self, task: &Task<T>) -> bool {
        std::ptr::addr_eq(self.inner.core_addr(), Rc::as_ptr(&task.fut.core))
    }
}

/// The task whose step is running on this thread: asyncio's `current_task()`.
/// `Ok(None)` in a plain callback; [`Error::NoRunningLoop`] when no loop runs
/// in this thread (TASK-13).
pub fn current_task() -> Result<Option<TaskRef>> {
    get_running_loop()?;
    Ok(current().map(TaskRef::from_dyn))
}

/// asyncio's `create_task(coro)`: a task on the loop running in this thread
/// ([`Error::NoRunningLoop`] if none, POLICY-11).
pub fn create_task<T, F>(coro: F) -> Result<Task<T>>
where
    T: 'static,
    F: StdFuture<Output = Result<T>> + 'static,
{
    get_running_loop()?.create_task(coro)
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
    yielded: bool,
}

impl StdFuture for YieldNow {
    type Output = Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        if let Some(exc) = current().and_then(|t| t.take_throw()) {
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
struct CancelOnDrop(crate::TimerHandle);

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
    let fut = lp.create_future::<()>();
    let waiter = fut.clone();
    let timer = lp.call_later(delay, move || {
        if !waiter.cancelled() {
            let _ = waiter.set_result(());
        }
    })?;
    let _cancel = CancelOnDrop(timer);
    fut.await
}
