//! A task's own state, field by field: [`TaskState`] and [`NextStep`], what
//! its next step throws into the coroutine.
//!
//! It is the data of the `Task` kind of a future's core
//! ([`Kind::Task`](super::state::Kind)), so it lives with the future, below
//! the task module: what a task does with it — its steps, its `cancel()` —
//! is in `src/task/step.rs`.

use crate::error::{Error, Result};
use crate::home::erased::AnyFuture;
use std::cell::{Cell, RefCell};
use std::future::Future as StdFuture;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Waker;

/// A task's coroutine: the Rust future it drives (the Rust mapping of a
/// coroutine).
pub(crate) type Coroutine<T> = Pin<Box<dyn StdFuture<Output = Result<T>>>>;

/// What a task's next step throws into its coroutine, decided between steps
/// (asyncio keeps it in `_must_cancel` and in the exception argument of the
/// step it queues). Read and reset at the start of each step.
#[derive(Debug, Default)]
pub(crate) enum NextStep {
    /// Poll the coroutine as it is.
    #[default]
    Resume,
    /// Throw a `CancelledError` with the task's `cancel_msg`: a `cancel()`
    /// that no awaited future could deliver (asyncio's `_must_cancel`).
    Cancel,
    /// Throw this exception: the task awaited itself or a future of another
    /// loop (TASK-7, FUT-8). Boxed: rare, and an `Error` inline would add its
    /// size to every task.
    Throw(Box<Error>),
    /// Both came before the next step: it throws the cancellation, and the
    /// step after it throws the exception. (asyncio's next step would throw
    /// the cancellation instead of the exception, and lose the exception.)
    CancelThenThrow(Box<Error>),
}

/// The state only a task has; see the [module docs](self). Every field is
/// touched on the task's home thread only.
pub(crate) struct TaskState<T> {
    /// The task's id within its loop, the N of `Task-N`. Fixed at creation.
    pub(crate) id: u64,
    /// Set by `set_name`; `None` reads as `Task-{id}` (made on demand, so a
    /// task nobody names costs no string; TASK-9).
    pub(crate) name: RefCell<Option<String>>,
    /// The coroutine. `Some` from creation until it returns, fails or is
    /// destroyed (`close()`, its home thread's exit), except while a step
    /// polls it: the step takes it out of the cell for the poll and puts it
    /// back if the coroutine is still pending.
    pub(crate) coro: RefCell<Option<Coroutine<T>>>,
    /// The waker handed to foreign awaitables; `Send + Sync`: woken on the
    /// loop's thread it queues a step, from another thread it goes through
    /// the inbox (THREAD-7). Fixed.
    pub(crate) waker: Waker,
    /// The coroutine has been polled once. Set by the first step that polls
    /// it, never cleared. A task cancelled before that is never polled: its
    /// body never runs (TASK-4).
    pub(crate) started: Cell<bool>,
    /// The coroutine is being polled right now: set and cleared by the step
    /// around its poll. A `cancel()` from inside the step queues no step
    /// (the step itself delivers it).
    pub(crate) stepping: Cell<bool>,
    /// A step of this task is in the ready queue: set when one is queued
    /// (`mark_scheduled`), cleared when it starts. At most one step is
    /// queued at a time.
    pub(crate) scheduled: Cell<bool>,
    /// What the next step throws; see [`NextStep`]. Written by `cancel()`
    /// (when no awaited future could take the cancellation), by
    /// `uncancel()` (3.13+, at zero, TASK-10) and by an await of the task
    /// itself or of another loop's future; reset by each step.
    pub(crate) next_step: Cell<NextStep>,
    /// The message of the last `cancel(msg)` that the next step had to
    /// deliver (asyncio's `_cancel_message`). Written by `cancel()` when no
    /// awaited future could take the cancellation; kept after delivery (a
    /// task that swallowed its cancellation still reports it).
    pub(crate) cancel_msg: RefCell<Option<String>>,
    /// Inside this task's own `cancel()`, while it cancels what it waits on:
    /// a cancel that reaches the task again has gone round an await cycle
    /// (TASK-4).
    pub(crate) cancelling_now: Cell<bool>,
    /// `cancelling()`: `cancel()` adds one, `uncancel()` removes one.
    pub(crate) num_cancels: Cell<u32>,
    /// The loopspec futures the last step awaited and that were pending
    /// then (asyncio's `_fut_waiter`); `cancel()` cancels them. Added to by
    /// those futures' polls, cleared at the start of each step.
    pub(crate) waiting_on: RefCell<Vec<Rc<dyn AnyFuture>>>,
    /// The exception being thrown into the coroutine during the current
    /// step (from [`NextStep`]). The first loopspec awaitable polled in the
    /// step takes it and returns it as its output: that is how the coroutine
    /// "catches" it. If nothing takes it, the coroutine could not observe it
    /// (it was suspended on a foreign awaitable, or completed): the step
    /// drops the coroutine and the task ends with that exception —
    /// cancelled, for a cancellation (TASK-15; cancellation is drop). Boxed,
    /// like [`NextStep::Throw`].
    pub(crate) throw: RefCell<Option<Box<Error>>>,
    /// The message of the cancellation that ended the task, handed out to
    /// the first reader only (TASK-11, a CPython 3.11+ quirk): set when a
    /// step ends the task with a `CancelledError`, taken by the first read.
    pub(crate) first_cancel_msg: RefCell<Option<Option<String>>>,
}

impl<T> TaskState<T> {
    /// A task that has not started, with id `id`, driving `coro`.
    pub(crate) fn new(id: u64, coro: Coroutine<T>, waker: Waker) -> TaskState<T> {
        TaskState {
            id,
            name: RefCell::new(None),
            coro: RefCell::new(Some(coro)),
            waker,
            started: Cell::new(false),
            stepping: Cell::new(false),
            scheduled: Cell::new(false),
            next_step: Cell::new(NextStep::Resume),
            cancel_msg: RefCell::new(None),
            cancelling_now: Cell::new(false),
            num_cancels: Cell::new(0),
            waiting_on: RefCell::new(Vec::new()),
            throw: RefCell::new(None),
            first_cancel_msg: RefCell::new(None),
        }
    }

    /// The task's name (TASK-9).
    pub(crate) fn name(&self) -> String {
        match &*self.name.borrow() {
            Some(name) => name.clone(),
            None => format!("Task-{}", self.id),
        }
    }

    /// The message of the last `cancel(msg)` the task had to deliver at a
    /// step (asyncio's `Task._cancel_message`).
    pub(crate) fn pending_cancel_message(&self) -> Option<String> {
        self.cancel_msg.borrow().clone()
    }

    /// Whether this task's own `cancel()` is running.
    pub(crate) fn in_cancel(&self) -> bool {
        self.cancelling_now.get()
    }

    /// `cancel()` could not deliver the cancellation: the next step throws
    /// it (`_must_cancel = True`).
    pub(crate) fn cancel_at_next_step(&self) {
        let next = match self.next_step.take() {
            NextStep::Resume | NextStep::Cancel => NextStep::Cancel,
            NextStep::Throw(e) | NextStep::CancelThenThrow(e) => NextStep::CancelThenThrow(e),
        };
        self.next_step.set(next);
    }

    /// Whether the next step throws a cancellation.
    pub(crate) fn cancel_pending(&self) -> bool {
        let next = self.next_step.take();
        let pending = matches!(next, NextStep::Cancel | NextStep::CancelThenThrow(_));
        self.next_step.set(next);
        pending
    }

    /// Withdraws the cancellation the next step would throw, if any, and
    /// says whether there was one: it was delivered otherwise (through an
    /// awaited future, or by ending a step that returned, TASK-5), or
    /// `uncancel()` reached zero (3.13+, TASK-10).
    pub(crate) fn withdraw_cancel(&self) -> bool {
        let (next, had) = match self.next_step.take() {
            NextStep::Cancel => (NextStep::Resume, true),
            NextStep::CancelThenThrow(e) => (NextStep::Throw(e), true),
            other => (other, false),
        };
        self.next_step.set(next);
        had
    }

    /// The next step throws `e` (after a pending cancellation, if any).
    pub(crate) fn throw_at_next_step(&self, e: Error) {
        let next = match self.next_step.take() {
            NextStep::Resume | NextStep::Throw(_) => NextStep::Throw(Box::new(e)),
            NextStep::Cancel | NextStep::CancelThenThrow(_) => {
                NextStep::CancelThenThrow(Box::new(e))
            }
        };
        self.next_step.set(next);
    }

    /// The start of a step: what it throws into the coroutine, if anything;
    /// what is left waits for the step after.
    pub(crate) fn start_step(&self) -> Option<Error> {
        let cancelled = || Error::Cancelled(self.cancel_msg.borrow().clone());
        let (next, throw) = match self.next_step.take() {
            NextStep::Resume => (NextStep::Resume, None),
            NextStep::Cancel => (NextStep::Resume, Some(cancelled())),
            NextStep::CancelThenThrow(e) => (NextStep::Throw(e), Some(cancelled())),
            NextStep::Throw(e) => (NextStep::Resume, Some(*e)),
        };
        self.next_step.set(next);
        throw
    }
}
