//! A task's own state, field by field: [`TaskState`], and in its
//! [`StepState`] what its next step throws into the coroutine.
//!
//! **What the next step throws** is decided between steps (asyncio keeps it
//! in `_must_cancel` and in the exception argument of the step it queues)
//! and taken at the start of each step: two independent facts, so every
//! combination is valid —
//!
//! * a cancellation ([`StepState::must_cancel`]): a `cancel()` that no
//!   awaited future could deliver; thrown as a `CancelledError` with the
//!   task's `cancel_msg`;
//! * an exception (`throw_next`, kept with the rare fields): the task
//!   awaited itself or a future of another loop (TASK-7, FUT-8).
//!
//! When both are set, the next step throws the cancellation and the step
//! after it the exception. (asyncio's next step would throw the
//! cancellation instead of the exception, and lose the exception.)
//!
//! It is the data of the `Task` kind of a future's core
//! ([`Kind::Task`](super::state::Kind)), so it lives with the future, below
//! the task module: what a task does with it — its steps, its `cancel()` —
//! is in `src/task/step.rs`.

use crate::error::Error;
use crate::handle::TaskKey;
use crate::home::erased::AnyFuture;
use crate::sync::{AtomicU8, AtomicU32, AtomicUsize, Mutex, Ordering};
use std::sync::Arc;

/// The state only a task has; see the [module docs](self). Every field is
/// touched by the thread that holds the loop's work, except the cancel count,
/// the reads of `cancelling()` and the name (read and set from any thread),
/// through types of `src/sync.rs`: flags
/// and the cancel count are atomics (each read or written on its own), and
/// what a step reads and writes together is one [`StepState`] under one
/// lock, never held while user code runs.
pub(crate) struct TaskState {
    /// The task's id within its loop, in creation order: with the slot, its
    /// [`TaskKey`]. Fixed at creation.
    pub(crate) id: u64,
    /// The task's slot in its loop's table of unfinished tasks: set once,
    /// by `Task::spawn`, when the task enters the table, before any step.
    slot: AtomicUsize,
    /// The N of the default name `Task-N`: taken from the loop's counter
    /// only by tasks created without a name (TASK-17); 0 for a named one.
    number: u64,
    /// The task is local (`create_task_local`): its coroutine is kept by its
    /// loop's local home, not in the loop's table of tasks. Fixed.
    pub(crate) local: bool,
    /// The task's flags, one bit each; see [`Flag`]. Written only by the
    /// thread that holds the loop's work.
    pub(crate) flags: Flags,
    /// `cancelling()`: `cancel()` adds one, `uncancel()` removes one.
    pub(crate) num_cancels: AtomicU32,
    /// What steps and `cancel()` read and write together.
    pub(crate) step: Mutex<StepState>,
}

/// A task's flags: each is set and cleared only by the thread that holds
/// the loop's work, so a flag is read and written with a plain load and
/// store of the byte that holds them all (no read-modify-write: nobody
/// else writes it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Flag {
    /// The coroutine has been polled once. Set by the first step that polls
    /// it, never cleared. A task cancelled before that is never polled: its
    /// body never runs (TASK-4).
    Started = 1,
    /// The coroutine is being polled right now: set and cleared by the step
    /// around its poll. A `cancel()` from inside the step queues no step
    /// (the step itself delivers it).
    Stepping = 2,
    /// A step of this task is in the ready queue: set when one is queued
    /// (`mark_scheduled`), cleared when it starts. At most one step is
    /// queued at a time.
    Scheduled = 4,
    /// Inside this task's own `cancel()`, while it cancels what it waits on:
    /// a cancel that reaches the task again has gone round an await cycle
    /// (TASK-4).
    CancellingNow = 8,
}

/// The byte of a task's [`Flag`]s.
#[derive(Default)]
pub(crate) struct Flags(AtomicU8);

impl Flags {
    /// Whether `flag` is set.
    #[inline]
    pub(crate) fn get(&self, flag: Flag) -> bool {
        self.0.load(Ordering::Relaxed) & flag as u8 != 0
    }

    /// Sets or clears `flag`.
    #[inline]
    pub(crate) fn set(&self, flag: Flag, on: bool) {
        let bits = self.0.load(Ordering::Relaxed);
        let bits = if on {
            bits | flag as u8
        } else {
            bits & !(flag as u8)
        };
        self.0.store(bits, Ordering::Relaxed);
    }
}

/// The part of a [`TaskState`] that steps and `cancel()` change, under one
/// lock.
#[derive(Default)]
pub(crate) struct StepState {
    /// The next step throws a cancellation (asyncio's `_must_cancel`; see
    /// the [module docs](self)). Set by `cancel()` when no awaited future
    /// could take the cancellation; cleared by the step that throws it, by
    /// a delivery through an awaited future or a returning step (TASK-5),
    /// and by `uncancel()` reaching zero (3.13+, TASK-10).
    must_cancel: bool,
    /// The task's name and the messages of its cancellations; see
    /// [`Rare`]. `None` until one of them is set, so a task that is never
    /// named nor cancelled carries one pointer for them.
    rare: Option<Box<Rare>>,
    /// The loopspec futures the last step awaited and that were pending
    /// then (asyncio's `_fut_waiter`); `cancel()` cancels them. Added to by
    /// those futures' polls, cleared at the start of each step (and dropped
    /// after the lock is released: dropping one may run user code). The
    /// first is held inline: a step awaits one future, as a rule.
    pub(crate) waiting_on: AwaitedFutures,
    /// The exception being thrown into the coroutine during the current
    /// step (what the step started with). The first loopspec awaitable
    /// polled in the step takes it and returns it as its output: that is how
    /// the coroutine "catches" it. If nothing takes it, the coroutine could
    /// not observe it (it was suspended on a foreign awaitable, or
    /// completed): the step drops the coroutine and the task ends with that
    /// exception — cancelled, for a cancellation (TASK-15; cancellation is
    /// drop). Boxed: an `Error` inline would add its size to every task.
    pub(crate) throw: Option<Box<Error>>,
}

/// What a task's step awaits (see [`StepState::waiting_on`]).
pub(crate) type AwaitedFutures = smallvec::SmallVec<[Arc<dyn AnyFuture>; 1]>;

/// A task's name and the messages of its cancellations, boxed in its
/// [`StepState`]: most tasks are never named nor cancelled.
#[derive(Default)]
struct Rare {
    /// Set by `set_name` or at creation; `None` reads as `Task-{number}`
    /// (made on demand, so a task nobody names costs no string; TASK-9).
    name: Option<String>,
    /// The message of the last `cancel(msg)` that the next step had to
    /// deliver (asyncio's `_cancel_message`). Written by `cancel()` when no
    /// awaited future could take the cancellation; kept after delivery (a
    /// task that swallowed its cancellation still reports it).
    cancel_msg: Option<String>,
    /// The message of the cancellation that ended the task, handed out to
    /// the first reader only (TASK-11, a CPython 3.11+ quirk): set when a
    /// step ends the task with a `CancelledError`, taken by the first read.
    first_cancel_msg: Option<Option<String>>,
    /// The exception the next step throws, after the cancellation if
    /// [`StepState::must_cancel`] is set too (see the [module
    /// docs](self)). Set by an await of the task itself or of another
    /// loop's future; taken by the step that throws it.
    throw_next: Option<Error>,
}

impl StepState {
    /// The rare part, made on first write.
    fn rare_mut(&mut self) -> &mut Rare {
        self.rare.get_or_insert_with(Default::default)
    }

    /// asyncio's `_cancel_message`: see [`Rare::cancel_msg`].
    pub(crate) fn cancel_msg(&self) -> Option<String> {
        self.rare.as_ref().and_then(|m| m.cancel_msg.clone())
    }

    /// Sets `_cancel_message` (no box is made for `None` when there is none).
    pub(crate) fn set_cancel_msg(&mut self, msg: Option<String>) {
        if msg.is_some() || self.rare.is_some() {
            self.rare_mut().cancel_msg = msg;
        }
    }

    /// Records the message of the cancellation that ended the task, for its
    /// first reader (TASK-11).
    pub(crate) fn set_first_cancel_msg(&mut self, msg: Option<String>) {
        self.rare_mut().first_cancel_msg = Some(msg);
    }

    /// The name given at creation or by `set_name`, if any.
    fn name(&self) -> Option<String> {
        self.rare.as_ref().and_then(|r| r.name.clone())
    }

    /// Sets the task's name.
    pub(crate) fn set_name(&mut self, name: String) {
        self.rare_mut().name = Some(name);
    }

    /// Takes the message recorded by
    /// [`set_first_cancel_msg`](Self::set_first_cancel_msg), if still there.
    pub(crate) fn take_first_cancel_msg(&mut self) -> Option<Option<String>> {
        self.rare.as_mut()?.first_cancel_msg.take()
    }
}

impl TaskState {
    /// A task that has not started, with id `id` (its coroutine is in the
    /// loop's table of tasks, or in its local home if `local`), named
    /// `Task-{number}` unless `name` is given.
    pub(crate) fn new(id: u64, number: u64, name: Option<String>, local: bool) -> TaskState {
        TaskState {
            id,
            slot: AtomicUsize::new(0),
            number,
            local,
            flags: Flags::default(),
            num_cancels: AtomicU32::new(0),
            step: Mutex::new(StepState {
                rare: name.map(|name| {
                    Box::new(Rare {
                        name: Some(name),
                        ..Rare::default()
                    })
                }),
                ..StepState::default()
            }),
        }
    }

    /// Names the task in its loop's table of unfinished tasks.
    pub(crate) fn key(&self) -> TaskKey {
        TaskKey {
            slot: self.slot.load(Ordering::Relaxed),
            id: self.id,
        }
    }

    /// Records the slot the task was given in its loop's table.
    pub(crate) fn set_slot(&self, slot: usize) {
        self.slot.store(slot, Ordering::Relaxed);
    }

    /// The task's name (TASK-9).
    pub(crate) fn name(&self) -> String {
        match self.step.lock().name() {
            Some(name) => name,
            None => format!("Task-{}", self.number),
        }
    }

    /// The message of the last `cancel(msg)` the task had to deliver at a
    /// step (asyncio's `Task._cancel_message`).
    pub(crate) fn pending_cancel_message(&self) -> Option<String> {
        self.step.lock().cancel_msg()
    }

    /// Whether this task's own `cancel()` is running.
    pub(crate) fn in_cancel(&self) -> bool {
        self.flags.get(Flag::CancellingNow)
    }

    /// `cancel()` could not deliver the cancellation: the next step throws
    /// it with `msg` (`_must_cancel = True`, `_cancel_message = msg`).
    pub(crate) fn cancel_at_next_step(&self, msg: Option<String>) {
        let mut step = self.step.lock();
        step.must_cancel = true;
        step.set_cancel_msg(msg);
    }

    /// Whether the next step throws a cancellation.
    pub(crate) fn cancel_pending(&self) -> bool {
        self.step.lock().must_cancel
    }

    /// Withdraws the cancellation the next step would throw, if any, and
    /// says whether there was one: it was delivered otherwise (through an
    /// awaited future, or by ending a step that returned, TASK-5), or
    /// `uncancel()` reached zero (3.13+, TASK-10). An exception waiting for
    /// the next step stays.
    pub(crate) fn withdraw_cancel(&self) -> bool {
        std::mem::take(&mut self.step.lock().must_cancel)
    }

    /// The next step throws `e` (after a pending cancellation, if any),
    /// instead of an exception set before.
    pub(crate) fn throw_at_next_step(&self, e: Error) {
        self.step.lock().rare_mut().throw_next = Some(e);
    }

    /// The start of a step: what it throws into the coroutine, if anything
    /// — the cancellation first; an exception waits for the step after it.
    pub(crate) fn start_step(&self) -> Option<Error> {
        let mut step = self.step.lock();
        if std::mem::take(&mut step.must_cancel) {
            return Some(Error::Cancelled(step.cancel_msg()));
        }
        step.rare.as_mut()?.throw_next.take()
    }
}
