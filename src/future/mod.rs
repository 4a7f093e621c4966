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

pub(crate) mod state;
pub(crate) mod task_state;

use self::state::{Core, DueCallback, FutureState, GatherCancel, Kind, Waiter, Waiters};
pub use self::state::{DoneCallback, Future, LocalDoneCallback};
use self::task_state::TaskState;
use crate::error::{Error, Result};
use crate::home::Ready;
use crate::home::erased::{AnyFuture, AnyTask, DueCallbacks};
use crate::home::work::Work;
use crate::loop_core::{EventLoop, current_task};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

impl<T> From<&Future<T>> for Future<T> {
    fn from(fut: &Future<T>) -> Future<T> {
        fut.clone()
    }
}

impl<T: Send + 'static> DueCallbacks for Core<T> {
    fn run_next(self: Arc<Self>) {
        let cb = self.lock().due.pop_front();
        match cb {
            Some(DueCallback::Send(cb)) => cb(&Future { core: self }),
            Some(DueCallback::Local(id)) => {
                let cb = self.lp.unstash(id);
                if let Some(Ok(cb)) = cb.map(|b| b.downcast::<LocalDoneCallback<T>>()) {
                    cb(&Future { core: self });
                }
            }
            None => {}
        }
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

    /// The message a cancelled future was cancelled with (asyncio's
    /// `_cancel_message`): `None` for a task that ended by propagating a
    /// `CancelledError`, and for futures that are not cancelled.
    pub(crate) fn cancel_message(&self) -> Option<String> {
        match &self.core.lock().state {
            FutureState::Cancelled(msg) => msg.clone(),
            _ => None,
        }
    }

    /// asyncio's `_make_cancelled_error()`: the `CancelledError` a reader of
    /// this future would get; `CancelledError()` if it is not cancelled.
    pub(crate) fn make_cancelled_error(&self) -> Error {
        let cancelled = match &self.core.lock().state {
            FutureState::Cancelled(msg) => Some(msg.clone()),
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
            FutureState::Cancelled(msg) => msg.clone(),
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
                let msg = msg.clone();
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
        let _ = self.complete(FutureState::Cancelled(msg));
        true
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

    /// Schedules `waiters`, taken from the core of a done future: on the
    /// loop's work here (this thread runs the loop, or borrows its work on
    /// an idle loop); through the inbox, in one submission that keeps their
    /// order and wakes the loop, while another thread runs it (THREAD-1's
    /// safe calls). Fails with `Closed` on a closed loop.
    fn schedule_waiters(&self, waiters: Waiters<T>) -> Result<()> {
        if waiters.is_empty() {
            return Ok(());
        }
        let slot = std::cell::Cell::new(Some(waiters));
        self.core.lp.with_work_or_send(
            |work| {
                if let Some(waiters) = slot.take() {
                    push_waiters(&self.core, work, waiters);
                }
                Ok(())
            },
            || {
                let (core, waiters) = (self.core.clone(), slot.take());
                let lp = self.core.lp.clone();
                lp.call_soon_threadsafe(move || {
                    let Some(waiters) = waiters else { return };
                    let l = core.lp.clone();
                    // On the loop's thread now (or, if its run ended, the
                    // next holder of its work).
                    let _ = l.with_work(|work| push_waiters(&core, work, waiters));
                })
                .map(drop)
            },
        )?
    }

    /// Adds a done callback (FUT-6). It is scheduled with `call_soon` when the
    /// future completes — or at once, if it is done already. Never run inline.
    /// The callback is `Send + Sync`: it runs on whichever thread runs the
    /// loop then. For one that is not, see
    /// [`add_done_callback_local`](Self::add_done_callback_local).
    ///
    /// ```
    /// use loopspec::{ClockKind, EventLoop, DoneCallback, Future};
    /// use std::sync::{Arc, atomic::{AtomicU8, Ordering}};
    ///
    /// let lp = EventLoop::with_clock(ClockKind::Virtual);
    /// let fut = lp.create_future::<u8>();
    /// let seen = Arc::new(AtomicU8::new(0));
    /// let s = seen.clone();
    /// let cb: DoneCallback<u8> =
    ///     Arc::new(move |f: &Future<u8>| s.store(f.result().unwrap(), Ordering::Relaxed));
    /// fut.add_done_callback(cb).unwrap();
    /// fut.set_result(5).unwrap();
    /// assert_eq!(seen.load(Ordering::Relaxed), 0); // scheduled, not run inline
    /// lp.stop();
    /// lp.run_forever().unwrap();
    /// assert_eq!(seen.load(Ordering::Relaxed), 5);
    /// ```
    pub fn add_done_callback(&self, cb: DoneCallback<T>) -> Result<()> {
        self.add_waiter(Waiter::Callback(cb))
    }

    /// Adds a done callback that is not `Send` (FUT-6, THREAD-10): it is kept
    /// on the calling thread, which must be the loop's local home thread (or
    /// becomes it), and runs there. Fails when another thread is the local
    /// home (`Error::NonThreadSafeCall`, THREAD-10). On a closed loop the
    /// callback is accepted and dropped: it could never run.
    ///
    /// ```
    /// use loopspec::{ClockKind, EventLoop, Future, LocalDoneCallback};
    /// use std::{cell::Cell, rc::Rc};
    ///
    /// let lp = EventLoop::with_clock(ClockKind::Virtual);
    /// let fut = lp.create_future::<u8>();
    /// let seen = Rc::new(Cell::new(0));
    /// let s = seen.clone();
    /// let cb: LocalDoneCallback<u8> = Rc::new(move |f: &Future<u8>| s.set(f.result().unwrap()));
    /// fut.add_done_callback_local(cb).unwrap();
    /// fut.set_result(5).unwrap();
    /// lp.stop();
    /// lp.run_forever().unwrap();
    /// assert_eq!(seen.get(), 5);
    /// ```
    pub fn add_done_callback_local(&self, cb: LocalDoneCallback<T>) -> Result<()> {
        let addr = Rc::as_ptr(&cb) as *const () as usize;
        let id = match self.core.lp.stash(Box::new(cb)) {
            Ok(id) => id,
            Err(Error::Closed) => 0,
            Err(e) => return Err(e),
        };
        self.add_waiter(Waiter::Local { id, addr })
    }

    /// Adds `waiter`, scheduling it at once if the future is done.
    fn add_waiter(&self, waiter: Waiter<T>) -> Result<()> {
        let due = {
            let mut inner = self.core.lock();
            inner.waiters.push(waiter);
            if inner.pending() {
                return Ok(());
            }
            std::mem::take(&mut inner.waiters)
        };
        self.schedule_waiters(due)
    }

    /// Removes every registration of `cb` (compared by identity) and returns
    /// how many there were.
    pub fn remove_done_callback(&self, cb: &DoneCallback<T>) -> usize {
        let mut inner = self.core.lock();
        let waiters = &mut inner.waiters;
        let before = waiters.len();
        waiters.retain(|w| match w {
            Waiter::Callback(c) => !std::ptr::addr_eq(Arc::as_ptr(c), Arc::as_ptr(cb)),
            _ => true,
        });
        before - waiters.len()
    }

    /// Removes every registration of the local callback `cb` (compared by
    /// identity) and returns how many there were.
    pub fn remove_done_callback_local(&self, cb: &LocalDoneCallback<T>) -> usize {
        let addr = Rc::as_ptr(cb) as *const () as usize;
        let mut removed = Vec::new();
        self.core.lock().waiters.retain(|w| match w {
            Waiter::Local { id, addr: a } if *a == addr => {
                removed.push(*id);
                false
            }
            _ => true,
        });
        self.core.lp.forget_local_callbacks(&removed);
        removed.len()
    }

    /// Registers `task` to be stepped when this future completes; once per
    /// task. Returns false, registering nothing, if it is done by now:
    /// another thread may have completed it since the caller looked.
    pub(crate) fn add_task_waiter(&self, task: Arc<dyn AnyTask>) -> bool {
        let mut inner = self.core.lock();
        if !inner.pending() {
            return false;
        }
        let waiters = &mut inner.waiters;
        let id = task.id();
        if !waiters
            .iter()
            .any(|w| matches!(w, Waiter::Task(t) if t.id() == id))
        {
            waiters.push(Waiter::Task(task));
        }
        true
    }

    /// Registers `waker` to be woken when this future completes; false, as
    /// [`add_task_waiter`](Self::add_task_waiter), if it is done by now.
    fn add_waker(&self, waker: &Waker) -> bool {
        let mut inner = self.core.lock();
        if !inner.pending() {
            return false;
        }
        let waiters = &mut inner.waiters;
        if !waiters
            .iter()
            .any(|w| matches!(w, Waiter::Waker(k) if k.will_wake(waker)))
        {
            waiters.push(Waiter::Waker(waker.clone()));
        }
        true
    }
}

/// Puts the entries of `waiters` of the done future `core` in the loop's
/// ready queue, in registration order (FUT-6).
fn push_waiters<T: Send + 'static>(core: &Arc<Core<T>>, work: &Work, waiters: Waiters<T>) {
    for w in waiters {
        match w {
            Waiter::Callback(cb) => {
                // The callback waits in the future itself; the queue entry
                // only says "fire the next one" (no allocation).
                core.lock().due.push_back(DueCallback::Send(cb));
                work.push_ready(Ready::DoneCallback(core.clone()));
            }
            Waiter::Local { id, .. } => {
                core.lock().due.push_back(DueCallback::Local(id));
                work.push_ready(Ready::DoneCallback(core.clone()));
            }
            Waiter::Task(t) => work.schedule_step(t),
            Waiter::Waker(w) => work.push_ready(Ready::Wake(w)),
        }
    }
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
