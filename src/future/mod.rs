//! [`Future<T>`]: a loop-bound result slot, like `asyncio.Future`; its
//! data is in `state.rs`.
//!
//! # States
//!
//! A future is in exactly one `FutureState`:
//!
//! * `Pending` — the initial state. The only state with transitions out.
//! * `Cancelled(msg)` — entered by `cancel(msg)` from `Pending`. Terminal.
//! * `Finished(Ok(v))` / `Finished(Err(e))` — entered by `set_result` /
//!   `set_exception` from `Pending`. Terminal. `Finished(Err(Cancelled))` is a
//!   future that *finished with* a `CancelledError` exception: `cancelled()` is
//!   false (FUT-5; gather relies on this).
//!
//! Invariants: a terminal state is never left (a second completion is
//! `InvalidStateError: invalid state`, a second `cancel()` returns false);
//! `done()` is true exactly in the terminal states; the done callbacks
//! registered before completion are scheduled exactly once, with `call_soon`,
//! in registration order, never run inline (FUT-6).
//!
//! A future is bound to the loop that made it. It is `Send + Sync` (for a
//! `Send` result) and its questions work anywhere; what schedules work on
//! its loop follows THREAD-1 (SPEC.md THREAD-6). It is one
//! of three kinds (`Kind`): a plain future; a [`Task`](crate::Task), whose
//! result comes from driving a Rust future on the loop (`src/task/`); or the
//! future `gather` returns, whose `cancel()` cancels its children.

mod callbacks;
pub(crate) mod state;
pub(crate) mod task_state;

use self::state::{Core, FutureState, GatherCancel, Kind};
pub use self::state::{DoneCallback, Future, LocalDoneCallback};
use self::task_state::TaskState;
use crate::error::{Error, Result};
use crate::home::erased::{AnyFuture, AnyTask};
use crate::loop_core::{EventLoop, current_task};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

impl<T> From<&Future<T>> for Future<T> {
    fn from(fut: &Future<T>) -> Future<T> {
        fut.clone()
    }
}

impl<T: Send + 'static> Future<T> {
    /// A new pending future bound to `lp`; the same as
    /// [`EventLoop::create_future`].
    pub fn new(lp: &EventLoop) -> Future<T> {
        Future::with_kind(lp, Kind::Plain)
    }

    /// A new pending future of kind `kind` (a task's, or a gather's).
    pub(crate) fn with_kind(lp: &EventLoop, kind: Kind) -> Future<T> {
        Future {
            core: Arc::new(Core::new(lp, kind)),
        }
    }

    /// The future `gather` returns: `cancel_children` cancels its children.
    pub(crate) fn new_gathering(
        lp: &EventLoop,
        cancel_children: Box<dyn Fn(Option<String>) -> bool + Send + Sync>,
    ) -> Future<T> {
        Future::with_kind(lp, Kind::Gather(GatherCancel::new(cancel_children)))
    }

    /// Whether a `cancel()` of this gathering future reached a child.
    pub(crate) fn gather_cancel_requested(&self) -> bool {
        match &self.core.kind {
            Kind::Gather(g) => g.cancel_requested(),
            _ => false,
        }
    }

    /// asyncio's `_make_cancelled_error()`: the `CancelledError` a reader of
    /// this future would get; `CancelledError()` if it is not cancelled.
    pub(crate) fn make_cancelled_error(&self) -> Error {
        let cancelled = match &self.core.lock().state {
            FutureState::Cancelled(msg) => Some(msg.as_deref().cloned()),
            _ => None,
        };
        match cancelled {
            Some(msg) => self.cancelled_error(&msg),
            // A task that swallowed a cancellation still has the message of
            // a cancel() that had to be delivered at its next step.
            _ => Error::Cancelled(
                self.core
                    .kind
                    .task()
                    .and_then(TaskState::pending_cancel_message),
            ),
        }
    }

    /// A handle that does not keep the future alive.
    pub(crate) fn downgrade(&self) -> WeakFuture<T> {
        WeakFuture(Arc::downgrade(&self.core))
    }

    /// The future's identity (shared by its clones), for sets of futures.
    pub(crate) fn identity(&self) -> usize {
        Arc::as_ptr(&self.core) as *const () as usize
    }

    /// The loop this future is bound to.
    pub fn get_loop(&self) -> EventLoop {
        self.core.lp.clone()
    }

    /// Whether the future is bound to `lp` ([`get_loop`](Self::get_loop)
    /// without a clone).
    pub(crate) fn belongs_to(&self, lp: &EventLoop) -> bool {
        self.core.lp == *lp
    }

    /// Whether the future is cancelled or finished.
    pub fn done(&self) -> bool {
        self.core.done()
    }

    /// Whether the future is cancelled (not merely finished with a
    /// `CancelledError` exception).
    pub fn cancelled(&self) -> bool {
        self.core.cancelled()
    }

    /// The result: `Err(ResultNotSet)` while pending, `Err(Cancelled(msg))`
    /// when cancelled, the exception when finished with one (FUT-2).
    pub fn result(&self) -> Result<T>
    where
        T: Clone,
    {
        let mut inner = self.core.lock();
        let cancelled = match &inner.state {
            FutureState::Pending => return Err(Error::ResultNotSet),
            FutureState::Cancelled(msg) => msg.as_deref().cloned(),
            FutureState::Finished(r) => {
                // `T::clone` runs under the lock, as it ran under the
                // `RefCell` borrow (§3.1 of docs/send-work.md).
                let out = match r {
                    Ok(v) => Ok(v.clone()),
                    Err(e) => Err(Error::clone(e)),
                };
                inner.retrieved = true;
                return out;
            }
        };
        drop(inner);
        Err(self.cancelled_error(&cancelled))
    }

    /// The exception: `Err(ExceptionNotSet)` while pending,
    /// `Err(Cancelled(msg))` when cancelled, `Ok(None)` after a result.
    pub fn exception(&self) -> Result<Option<Error>> {
        let mut inner = self.core.lock();
        let out = match &inner.state {
            FutureState::Pending => return Err(Error::ExceptionNotSet),
            FutureState::Cancelled(msg) => {
                let msg = msg.as_deref().cloned();
                drop(inner);
                return Err(self.cancelled_error(&msg));
            }
            FutureState::Finished(Ok(_)) => None,
            FutureState::Finished(Err(e)) => Some(Error::clone(e)),
        };
        inner.retrieved = true;
        Ok(out)
    }

    /// The `CancelledError` a reader of a cancelled future gets. A task that
    /// ended because its future returned `Err(Cancelled(msg))` hands that
    /// message to its first reader only (TASK-11).
    fn cancelled_error(&self, msg: &Option<String>) -> Error {
        let first = self
            .core
            .kind
            .task()
            .and_then(|t| t.step.lock().take_first_cancel_msg());
        Error::Cancelled(first.unwrap_or_else(|| msg.clone()))
    }

    /// Completes the future with `value` and schedules its done callbacks.
    ///
    /// Errors: `InvalidState` if it is done already; on a task,
    /// `TaskSetResult`; `Closed` when the loop is closed and a callback had to
    /// be scheduled — the future is finished all the same (LIFE-9).
    pub fn set_result(&self, value: T) -> Result<()> {
        if let Kind::Task(_) = self.core.kind {
            return Err(Error::TaskSetResult);
        }
        self.complete(FutureState::finished(Ok(value)))
    }

    /// Completes the future with the exception `e`; see
    /// [`set_result`](Future::set_result).
    pub fn set_exception(&self, e: Error) -> Result<()> {
        if let Kind::Task(_) = self.core.kind {
            return Err(Error::TaskSetException);
        }
        self.complete(FutureState::finished(Err(e)))
    }

    /// Cancels the future: `true` if it was pending (it is now cancelled and
    /// its callbacks are scheduled), `false` if it was done (FUT-4). On a task
    /// this requests the task's cancellation (TASK-4).
    pub fn cancel(&self) -> bool {
        self.cancel_with(None)
    }

    /// [`cancel`](Future::cancel) with a message, which awaiters see in
    /// `Error::Cancelled(Some(msg))`.
    pub fn cancel_with(&self, msg: Option<String>) -> bool {
        match &self.core.kind {
            Kind::Plain => self.cancel_future(msg),
            Kind::Task(_) => {
                // The task's cancel (TASK-4) lives with the task's steps.
                let task: Arc<dyn AnyTask> = self.core.clone();
                task.cancel(msg)
            }
            Kind::Gather(g) => g.cancel(self.done(), msg),
        }
    }

    /// `Future.cancel` proper, also used by tasks once their coroutine ended
    /// in a cancellation.
    pub(crate) fn cancel_future(&self, msg: Option<String>) -> bool {
        if self.done_and_retrieved() {
            return false;
        }
        // A closed loop makes scheduling fail, but the future is cancelled.
        let _ = self.complete(FutureState::Cancelled(msg.map(Box::new)));
        true
    }

    /// What a combinator's done callback reads first of a done future,
    /// under one lock: asyncio's `fut.cancelled()`, then — if not —
    /// `fut.exception()`, which counts the exception as retrieved.
    pub(crate) fn failure(&self) -> Option<Failure> {
        let mut inner = self.core.lock();
        let failure = match &inner.state {
            FutureState::Pending => return None,
            FutureState::Cancelled(_) => return Some(Failure::Cancelled),
            FutureState::Finished(Ok(_)) => None,
            FutureState::Finished(Err(e)) => Some(Failure::Raised(Error::clone(e))),
        };
        inner.retrieved = true;
        failure
    }

    /// A done future's outcome as `gather` collects it, under one lock:
    /// `Err(CancelledError(msg or ''))` when cancelled (not the first-reader
    /// message of TASK-11: `gather` reads `_cancel_message`), otherwise what
    /// [`result`](Self::result) returns, counted as retrieved.
    pub(crate) fn gathered(&self) -> Result<T>
    where
        T: Clone,
    {
        let mut inner = self.core.lock();
        let out = match &inner.state {
            FutureState::Pending => return Err(Error::ResultNotSet),
            FutureState::Cancelled(msg) => {
                return Err(Error::Cancelled(Some(
                    msg.as_deref().cloned().unwrap_or_default(),
                )));
            }
            FutureState::Finished(Ok(v)) => Ok(v.clone()),
            FutureState::Finished(Err(e)) => Err(Error::clone(e)),
        };
        inner.retrieved = true;
        out
    }

    /// Whether the future is done; if so, its exception counts as retrieved
    /// from now on: `cancel()` on a done future or task silences its
    /// "exception was never retrieved" report, as CPython's does (FUT-10).
    pub(crate) fn done_and_retrieved(&self) -> bool {
        let mut inner = self.core.lock();
        if matches!(inner.state, FutureState::Pending) {
            return false;
        }
        inner.retrieved = true;
        true
    }

    /// Moves a pending future to a terminal state and schedules its waiters.
    pub(crate) fn complete(&self, state: FutureState<T>) -> Result<()> {
        let waiters = {
            let mut inner = self.core.lock();
            // Seeded bug (`complete-cancelled`): a cancelled future can be
            // completed again.
            #[cfg(loopspec_mutant = "complete-cancelled")]
            let terminal = matches!(inner.state, FutureState::Finished(_));
            #[cfg(not(loopspec_mutant = "complete-cancelled"))]
            let terminal = !inner.pending();
            if terminal {
                return Err(Error::InvalidState);
            }
            inner.state = state;
            // Taken with the state change, under one lock: a waiter is
            // either here or added to a done future (and scheduled by its
            // adder), never neither.
            std::mem::take(&mut inner.waiters)
        };
        self.schedule_waiters(waiters)
    }
}

/// How a done future failed, as [`Future::failure`] reads it.
pub(crate) enum Failure {
    /// It is cancelled.
    Cancelled,
    /// It finished with this exception.
    Raised(Error),
}

/// A future handle that does not keep the future alive (for state that the
/// future itself keeps alive, such as gather's, to avoid a cycle).
pub(crate) struct WeakFuture<T>(std::sync::Weak<Core<T>>);

impl<T> WeakFuture<T> {
    pub(crate) fn upgrade(&self) -> Option<Future<T>> {
        self.0.upgrade().map(|core| Future { core })
    }
}

/// A future's core is what a task records as awaited (asyncio's
/// `_fut_waiter`): the `Arc` the handles share, so recording it allocates
/// nothing.
impl<T: Send + 'static> AnyFuture for Core<T> {
    fn cancel_erased(self: Arc<Self>, msg: Option<String>) -> bool {
        Future { core: self }.cancel_with(msg)
    }

    fn in_cancel(&self) -> bool {
        self.kind.task().is_some_and(TaskState::in_cancel)
    }
}

impl<T: Clone + Send + 'static> std::future::Future for Future<T> {
    type Output = Result<T>;

    /// Awaiting from a loopspec task registers the task as a waiter (it is
    /// stepped in the iteration after completion, as asyncio's `__wakeup`);
    /// from any other executor, registers the waker.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let this = &*self;
        match current_task() {
            Some(task) => {
                if let Some(exc) = task.take_throw() {
                    // asyncio's `__wakeup` hands the awaited future's own
                    // CancelledError to the step in preference to the task's
                    // pending cancellation.
                    if exc.is_cancelled() && this.done() {
                        let own = this.result();
                        if matches!(own, Err(Error::Cancelled(_))) {
                            return Poll::Ready(own);
                        }
                    }
                    return Poll::Ready(Err(exc));
                }
                if this.done() {
                    return Poll::Ready(this.result());
                }
                if task.core_addr() as usize == this.identity() {
                    let repr = task.repr();
                    task.throw_next_step(Error::TaskAwaitsItself { task: repr });
                    return Poll::Pending;
                }
                if task.loop_id() != this.core.lp.id() {
                    let err = Error::FutureOfOtherLoop {
                        task: task.repr(),
                        future: format!("{this:?}"),
                    };
                    task.throw_next_step(err);
                    return Poll::Pending;
                }
                // Completed from another thread since the look above: its
                // waiters were scheduled without this one.
                if !this.add_task_waiter(task.clone()) {
                    return Poll::Ready(this.result());
                }
                task.add_waiting_on(this.core.clone());
                Poll::Pending
            }
            None => {
                if this.done() {
                    return Poll::Ready(this.result());
                }
                if !this.add_waker(cx.waker()) {
                    return Poll::Ready(this.result());
                }
                Poll::Pending
            }
        }
    }
}
