//! A loop future's state, field by field: the [`Future`] handle, its shared
//! [`Core`], the [`FutureState`] it is in and the [`Kind`] of future it is.
//! The operations that change them are in the [parent module](super) (and,
//! for tasks, in `src/task/`).

use super::task_state::TaskState;
use crate::error::{Error, ExceptionContext, Result, py_str_repr};
use crate::home::erased::AnyTask;
use crate::loop_core::EventLoop;
use crate::sync::{AtomicBool, Mutex, MutexGuard, Ordering};
use std::fmt;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Waker;

/// A done callback: it may run on whichever thread runs the loop, so it is
/// `Send + Sync`. Callbacks are compared by identity (`Arc::ptr_eq`) for
/// [`Future::remove_done_callback`], the Rust mapping of Python's equality of
/// function objects.
pub type DoneCallback<T> = Arc<dyn Fn(&Future<T>) + Send + Sync>;

/// A done callback that is not `Send`, added with
/// [`Future::add_done_callback_local`]: it stays on the thread that added it
/// (the loop's local home thread, THREAD-10) and the future holds only its id.
/// Compared by identity (`Rc::ptr_eq`) for
/// [`Future::remove_done_callback_local`].
pub type LocalDoneCallback<T> = Rc<dyn Fn(&Future<T>)>;

/// The state of a future (FUT-1): exactly one of these.
pub(crate) enum FutureState<T> {
    /// The initial state; the only one with transitions out.
    Pending,
    /// Cancelled by `cancel(msg)` from `Pending`. Terminal. The message is
    /// boxed (most cancellations have none): a `String` inline would make
    /// every future's state a word longer.
    #[allow(clippy::box_collection)]
    Cancelled(Option<Box<String>>),
    /// Finished by `set_result` / `set_exception` (or a task's coroutine)
    /// from `Pending`. Terminal. `Finished(Err(Cancelled(_)))` is a future
    /// that finished *with* a `CancelledError` exception: it is not
    /// cancelled (FUT-5; gather relies on this). The exception is boxed:
    /// an `Error` inline would add its 64 bytes to every future's state,
    /// and most futures finish with a result.
    Finished(std::result::Result<T, Box<Error>>),
}

impl<T> FutureState<T> {
    /// The state of a future finished with `outcome`.
    pub(crate) fn finished(outcome: Result<T>) -> FutureState<T> {
        FutureState::Finished(outcome.map_err(Box::new))
    }
}

/// What kind of future a core is, with the state only that kind has. Fixed
/// when the future is made.
pub(crate) enum Kind {
    /// A plain future (`create_future`): completed by hand.
    Plain,
    /// A task: completed by driving its coroutine (`src/task/`); refuses
    /// `set_result`/`set_exception` (TASK-3); its `cancel()` requests a
    /// cancellation (TASK-4).
    Task(TaskState),
    /// The future `gather` returns (asyncio's `_GatheringFuture`): its
    /// `cancel()` cancels the children.
    Gather(GatherCancel),
}

impl Kind {
    /// The task's state, if this is a task.
    pub(crate) fn task(&self) -> Option<&TaskState> {
        match self {
            Kind::Task(t) => Some(t),
            _ => None,
        }
    }
}

/// The cancellation part of a gathering future (asyncio's
/// `_GatheringFuture`): cancelling it cancels its children.
pub(crate) struct GatherCancel {
    /// Cancels every child position with a message; true if any cancel did.
    /// Set by `gather`.
    cancel_children: Box<dyn Fn(Option<String>) -> bool + Send + Sync>,
    /// A `cancel()` cancelled at least one child: the gather then finishes
    /// with a `CancelledError` exception (GATHER-6). Set by `cancel`, read by
    /// gather's done callback; never cleared.
    cancel_requested: AtomicBool,
}

impl GatherCancel {
    pub(crate) fn new(
        cancel_children: Box<dyn Fn(Option<String>) -> bool + Send + Sync>,
    ) -> GatherCancel {
        GatherCancel {
            cancel_children,
            cancel_requested: AtomicBool::new(false),
        }
    }

    /// `_GatheringFuture.cancel`: false if the gather is done; otherwise
    /// cancels every child and returns whether any child's cancel returned
    /// true.
    pub(crate) fn cancel(&self, done: bool, msg: Option<String>) -> bool {
        if done {
            return false;
        }
        let any = (self.cancel_children)(msg);
        if any {
            self.cancel_requested.store(true, Ordering::Relaxed);
        }
        any
    }

    /// Whether a `cancel()` reached a child.
    pub(crate) fn cancel_requested(&self) -> bool {
        self.cancel_requested.load(Ordering::Relaxed)
    }
}

/// Who waits for a future: what completion schedules.
pub(crate) enum Waiter<T> {
    /// A done callback added with `add_done_callback`.
    Callback(DoneCallback<T>),
    /// A done callback added with `add_done_callback_local`: the callback is
    /// kept on its thread under `id` (in the loop's home); `addr` is its
    /// `Rc`'s address, for `remove_done_callback_local`. Id 0 names no
    /// callback: one added while the loop was closed, which can never run.
    Local { id: u64, addr: usize },
    /// A loopspec task awaiting the future: its next step is queued (asyncio's
    /// `Task.__wakeup`).
    Task(Arc<dyn AnyTask>),
    /// Any other executor awaiting the future: its waker is called from a
    /// queued callback.
    Waker(Waker),
}

/// A future's waiters, in registration order. The first is held inline:
/// most futures have exactly one (the task or combinator awaiting them).
pub(crate) type Waiters<T> = smallvec::SmallVec<[Waiter<T>; 1]>;

/// What every handle of one future shares, on any thread: its changing part
/// is behind one lock of `src/sync.rs`, taken once per operation and never
/// held while user code runs (except `T::clone` in `result()`).
pub(crate) struct Core<T> {
    /// The loop the future is bound to. Fixed.
    pub(crate) lp: EventLoop,
    /// State, waiters, the read flag and the due callbacks.
    inner: Mutex<Inner<T>>,
    /// Plain, task or gather. Fixed.
    pub(crate) kind: Kind,
}

/// The part of a [`Core`] that changes, under its lock.
pub(crate) struct Inner<T> {
    /// Where the future is (FUT-1). Moves once, from `Pending`, by
    /// `complete`; a terminal state is never left.
    pub(crate) state: FutureState<T>,
    /// One list in two roles, one per phase of the future (a future is
    /// pending or done, never both, so one list serves both and a future
    /// carries one inline entry, not two):
    ///
    /// * **pending**: who waits, in registration order. Added to by
    ///   `add_done_callback` and by awaits; taken — scheduled, all at once —
    ///   by `complete` (FUT-6), or dropped by the destruction of a task still
    ///   pending (TASK-8), which will never complete.
    /// * **done**: the done callbacks that are due — scheduled, not run yet —
    ///   the next to run *last* (`Waiter::Callback` and `Waiter::Local`
    ///   only). Filled by the scheduling of waiters (`push_waiters`, which
    ///   puts a later batch in front of an earlier one); each
    ///   `Ready::DoneCallback` entry in the ready queue pops and runs one.
    ///   A waiter added to a done future is scheduled at once and never
    ///   enters the list as a waiter.
    pub(crate) waiters: Waiters<T>,
    /// The result or exception was read. Set by readers, never cleared; an
    /// exception never read is reported when the core is dropped (FUT-7).
    pub(crate) retrieved: bool,
}

impl<T> Inner<T> {
    /// Whether the future is still pending.
    pub(crate) fn pending(&self) -> bool {
        matches!(self.state, FutureState::Pending)
    }
}

impl<T> Core<T> {
    /// A pending future of kind `kind` bound to `lp`.
    pub(crate) fn new(lp: &EventLoop, kind: Kind) -> Core<T> {
        Core {
            lp: lp.clone(),
            inner: Mutex::new(Inner {
                state: FutureState::Pending,
                waiters: Waiters::new(),
                retrieved: false,
            }),
            kind,
        }
    }

    /// Locks the changing part. Never held while user code runs (§3.1 of
    /// docs/send-work.md), except `T::clone` in `result()`.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner<T>> {
        self.inner.lock()
    }

    /// Whether the future is cancelled or finished.
    pub(crate) fn done(&self) -> bool {
        !self.lock().pending()
    }

    /// Whether the future is cancelled.
    pub(crate) fn cancelled(&self) -> bool {
        matches!(self.lock().state, FutureState::Cancelled(_))
    }
}

impl<T> Drop for Core<T> {
    /// An exception nobody read is reported (FUT-7).
    fn drop(&mut self) {
        let (unread, locals) = {
            let inner = self.lock();
            let unread = match &inner.state {
                FutureState::Finished(Err(e)) if !inner.retrieved => Some(Error::clone(e)),
                _ => None,
            };
            // Waiting or due: both are in the list.
            let locals: Vec<u64> = (inner.waiters.iter())
                .filter_map(|w| match w {
                    Waiter::Local { id, .. } => Some(*id),
                    _ => None,
                })
                .collect();
            (unread, locals)
        };
        // Local callbacks that can no longer run leave the home with the
        // future (when this thread holds the home; elsewhere they stay until
        // the loop closes or its local home thread exits).
        self.lp.forget_local_callbacks(&locals);
        if let Some(e) = unread {
            let kind = match self.kind {
                Kind::Task(_) => "Task",
                _ => "Future",
            };
            let repr = repr_of(self);
            let mut ctx = ExceptionContext::new(format!("{kind} exception was never retrieved"))
                .with_exception(e);
            // asyncio puts tasks, too, under the context's `future` key.
            ctx.future = Some(repr);
            self.lp.call_exception_handler(&ctx);
        }
    }
}

/// A loop-bound future, like `asyncio.Future`; its operations are in
/// [`src/future/`](crate::future).
///
/// Cloning gives another handle to the same future. Awaiting it (it implements
/// [`std::future::Future`]) yields `Ok(result)`, `Err(exception)`, or
/// `Err(Error::Cancelled(msg))`.
///
/// ```
/// use loopspec::{ClockKind, Error, EventLoop};
///
/// let lp = EventLoop::with_clock(ClockKind::Virtual);
/// let fut = lp.create_future::<i32>();
/// assert_eq!(fut.result().unwrap_err(), Error::ResultNotSet);
/// fut.set_result(7).unwrap();
/// assert!(fut.done());
/// assert_eq!(fut.result().unwrap(), 7);
/// assert_eq!(fut.set_result(8).unwrap_err(), Error::InvalidState);
/// ```
pub struct Future<T> {
    /// Shared by every handle of the future.
    pub(crate) core: Arc<Core<T>>,
}

impl<T> Clone for Future<T> {
    fn clone(&self) -> Self {
        Future {
            core: self.core.clone(),
        }
    }
}

impl<T> PartialEq for Future<T> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.core, &other.core)
    }
}

impl<T> Eq for Future<T> {}

impl<T> fmt::Debug for Future<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&repr_of(&self.core))
    }
}

/// asyncio-style repr: `<Future pending>`, `<Task finished name='Task-1'>`,
/// `<Task cancelling name='Task-1'>`...
pub(crate) fn repr_of<T>(core: &Core<T>) -> String {
    let (state, exception) = match &core.lock().state {
        FutureState::Pending => ("pending", String::new()),
        FutureState::Cancelled(_) => ("cancelled", String::new()),
        FutureState::Finished(Ok(_)) => ("finished", String::new()),
        FutureState::Finished(Err(e)) => ("finished", format!(" exception={e:?}")),
    };
    match &core.kind {
        Kind::Task(t) => {
            // 3.11+: a pending task with cancellation requests counted
            // (TASK-16).
            let state = if state == "pending" && t.num_cancels.load(Ordering::Relaxed) > 0 {
                "cancelling"
            } else {
                state
            };
            format!("<Task {state} name={}{exception}>", py_str_repr(&t.name()))
        }
        Kind::Gather(_) => format!("<_GatheringFuture {state}{exception}>"),
        Kind::Plain => format!("<Future {state}{exception}>"),
    }
}
