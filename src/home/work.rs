//! The loop's [`Work`]: its ready queue, its timers and its table of
//! unfinished tasks. Everything in it is `Send` — a local callback, timer or
//! coroutine is here only as a token (an id) whose value the
//! [`LocalHome`](super::local::LocalHome) keeps — so that the work can
//! belong to the loop rather than to a thread.
//!
//! No `RefCell` borrow here is ever held while user code runs: entries are
//! popped first and run after the borrow ends, and user values are dropped
//! only after they have been moved out of the cells.

use super::erased::AnyTask;
use super::tasks::{TaskEntry, TaskTable};
use super::{IdMap, Ready, Timer, TimerCall};
use crate::clock;
use crate::handle::{Handle, Submission, TaskKey};
use crate::inbox::Inbox;
use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Arc;

/// The loop's work; see the [module docs](self).
#[derive(Default)]
pub(crate) struct Work {
    /// The ready queue, in order. Pushed by the scheduling calls, due
    /// timers, completed futures (done callbacks, task steps) and the inbox
    /// drain; popped only by the iteration, which runs exactly the entries
    /// present when it starts running them (SCHED-1).
    ready: RefCell<VecDeque<Ready>>,
    /// Timers, earliest deadline first (SCHED-4, SCHED-5). A cancelled
    /// timer stays until it reaches the head or falls due, and is dropped
    /// then, as in asyncio.
    timers: RefCell<BinaryHeap<Timer>>,
    /// The scheduling order of the next timer: ties between equal deadlines
    /// go to the earlier one.
    timer_seq: Cell<u64>,
    /// Unfinished tasks by id. A task enters when it is made and leaves when
    /// it finishes; `close()` destroys the rest, and a local task also goes
    /// with its local home's exit (TASK-8).
    pub(crate) tasks: RefCell<TaskTable>,
    /// The buffer an inbox drain fills, reused so that a drain does not
    /// allocate. Empty except inside [`drain`](Work::drain).
    intake: RefCell<VecDeque<Submission>>,
    /// Values the loop keeps alive for a chain by id — a `wrap_future`
    /// destination, which a copy from another thread names. Put by
    /// `EventLoop::keep`, taken by `EventLoop::take_kept` when the copy
    /// lands or the destination is done; `close()` drops the rest.
    kept: RefCell<IdMap<Box<dyn Any + Send>>>,
}

impl Work {
    pub(crate) fn push_ready(&self, entry: Ready) {
        self.ready.borrow_mut().push_back(entry);
    }

    pub(crate) fn pop_ready(&self) -> Option<Ready> {
        self.ready.borrow_mut().pop_front()
    }

    pub(crate) fn ready_len(&self) -> usize {
        self.ready.borrow().len()
    }

    pub(crate) fn push_timer(&self, when: f64, call: TimerCall, handle: Handle) {
        let seq = self.timer_seq.get();
        self.timer_seq.set(seq + 1);
        self.timers.borrow_mut().push(Timer {
            when,
            seq,
            call,
            handle,
        });
    }

    /// Queues a step of `task` unless one is queued already.
    pub(crate) fn schedule_step(&self, task: Arc<dyn AnyTask>) {
        if task.mark_scheduled() {
            self.push_ready(Ready::TaskStep(task));
        }
    }

    /// Moves what `inbox` has for the loop to the end of the ready queue, in
    /// order (see [`Inbox::drain_into`]): a `call_soon_threadsafe` callback
    /// becomes a ready entry, a step request a step of that task.
    pub(crate) fn drain(&self, inbox: &Inbox<Submission>) {
        let mut intake = std::mem::take(&mut *self.intake.borrow_mut());
        inbox.drain_into(&mut intake);
        for s in intake.drain(..) {
            match s.task_to_step() {
                None => self.push_ready(Ready::Submission(s)),
                Some(key) => self.schedule_step_of(key),
            }
        }
        // Give the (empty) buffer back for the next drain.
        *self.intake.borrow_mut() = intake;
    }

    /// Queues a step of the task `key` names, if it is still unfinished.
    pub(crate) fn schedule_step_of(&self, key: TaskKey) {
        let task = self.tasks.borrow().get(key).map(|e| e.task.clone());
        if let Some(task) = task {
            self.schedule_step(task);
        }
    }

    /// Whether any timer (cancelled or not) is scheduled.
    pub(crate) fn has_timers(&self) -> bool {
        !self.timers.borrow().is_empty()
    }

    /// The poll timeout the timers ask for: `None` with no timer, else the
    /// time until the earliest one (at least 0, at most one day). Cancelled
    /// timers at the head are taken off first, as asyncio does, into
    /// `dropped` (for the caller to drop).
    pub(crate) fn timer_timeout(&self, now: f64, dropped: &mut Vec<Timer>) -> Option<f64> {
        let mut timers = self.timers.borrow_mut();
        while timers.peek().is_some_and(|t| t.handle.cancelled()) {
            dropped.extend(timers.pop());
        }
        let when = timers.peek()?.when;
        Some((when - now).clamp(0.0, clock::MAXIMUM_SELECT_TIMEOUT))
    }

    /// Moves every due timer to the end of the ready queue, in deadline order
    /// (SCHED-4). Cancelled timers are taken off on the way, into `dropped`.
    pub(crate) fn move_due_timers(&self, now: f64, dropped: &mut Vec<Timer>) {
        let mut timers = self.timers.borrow_mut();
        let mut ready = self.ready.borrow_mut();
        while timers.peek().is_some_and(|t| clock::is_due(t.when, now)) {
            let Some(t) = timers.pop() else { break };
            if t.handle.cancelled() {
                dropped.push(t);
                continue;
            }
            ready.push_back(match t.call {
                TimerCall::Send(s) => Ready::Submission(s),
                TimerCall::Local(call) => Ready::Local(call),
            });
        }
    }

    /// Unfinished tasks in id order, for `all_tasks` and `Runner::close`.
    pub(crate) fn tasks(&self) -> Vec<Arc<dyn AnyTask>> {
        let mut v: Vec<_> = self
            .tasks
            .borrow()
            .entries()
            .map(|e| e.task.clone())
            .collect();
        v.sort_by_key(|t| t.id());
        v
    }

    /// Moves everything out (at `close()`), for the caller to drop each value
    /// on its own.
    pub(crate) fn take_all(&self) -> Taken {
        Taken {
            ready: std::mem::take(&mut *self.ready.borrow_mut()),
            timers: std::mem::take(&mut *self.timers.borrow_mut()),
            tasks: self.tasks.borrow_mut().take_all(),
            intake: std::mem::take(&mut *self.intake.borrow_mut()),
            kept: std::mem::take(&mut *self.kept.borrow_mut()),
        }
    }

    /// Keeps `value` under `id` (see [`kept`](Work::kept)).
    pub(crate) fn keep(&self, id: u64, value: Box<dyn Any + Send>) {
        self.kept.borrow_mut().insert(id, value);
    }

    /// Takes back the value kept under `id`, if it is still there.
    pub(crate) fn take_kept(&self, id: u64) -> Option<Box<dyn Any + Send>> {
        self.kept.borrow_mut().remove(&id)
    }
}

impl Work {
    /// Moves the contents into a new `Work`, leaving this one empty: the
    /// end of a run or a borrow, when the thread-local registry and the
    /// guard may both still hold the `Rc` this one is in. Moves values
    /// only; drops nothing.
    pub(crate) fn take(&self) -> Work {
        Work {
            ready: RefCell::new(std::mem::take(&mut *self.ready.borrow_mut())),
            timers: RefCell::new(std::mem::take(&mut *self.timers.borrow_mut())),
            timer_seq: Cell::new(self.timer_seq.get()),
            tasks: RefCell::new(std::mem::take(&mut *self.tasks.borrow_mut())),
            intake: RefCell::new(std::mem::take(&mut *self.intake.borrow_mut())),
            kept: RefCell::new(std::mem::take(&mut *self.kept.borrow_mut())),
        }
    }

    /// Takes the cancelled local timers off the heap (a local home about to
    /// be released drops them with their values).
    pub(crate) fn take_cancelled_local_timers(&self) -> Vec<Timer> {
        let mut timers = self.timers.borrow_mut();
        let (cancelled, kept): (Vec<Timer>, Vec<Timer>) = std::mem::take(&mut *timers)
            .into_iter()
            .partition(|t| t.handle.cancelled() && matches!(t.call, TimerCall::Local(_)));
        *timers = kept.into();
        cancelled
    }

    /// Whether the work holds any local token: a local ready entry or
    /// timer, or a task whose coroutine is local. (A check of H6 in debug
    /// builds: an empty local home leaves no token behind.)
    pub(crate) fn has_local_tokens(&self) -> bool {
        self.ready
            .borrow()
            .iter()
            .any(|r| matches!(r, Ready::Local(_)))
            || self
                .timers
                .borrow()
                .iter()
                .any(|t| matches!(t.call, TimerCall::Local(_)))
            || self.tasks.borrow().entries().any(TaskEntry::is_local)
    }

    /// Takes every local token out (H6: a local home that is released takes
    /// its tokens with it): local ready entries, local timers, and the
    /// entries of tasks whose coroutine is local. Moves values only; the
    /// caller drops them once it holds no lock.
    pub(crate) fn purge_local(&self) -> Purged {
        let mut purged = Purged::default();
        {
            let mut ready = self.ready.borrow_mut();
            for entry in std::mem::take(&mut *ready) {
                match entry {
                    Ready::Local(_) => purged.ready.push(entry),
                    // Seeded bug (`exit-purges-send-entries`): the loop's own
                    // entries (submissions taken in, `Send` callbacks) go
                    // with the exiting thread too.
                    #[cfg(loopspec_mutant = "exit-purges-send-entries")]
                    other => purged.ready.push(other),
                    #[cfg(not(loopspec_mutant = "exit-purges-send-entries"))]
                    other => ready.push_back(other),
                }
            }
        }
        {
            let mut timers = self.timers.borrow_mut();
            let (local, kept): (Vec<Timer>, Vec<Timer>) = std::mem::take(&mut *timers)
                .into_iter()
                .partition(|t| matches!(t.call, TimerCall::Local(_)));
            *timers = kept.into();
            purged.timers = local;
        }
        purged.tasks = self.tasks.borrow_mut().remove_where(TaskEntry::is_local);
        purged
    }
}

/// What [`Work::purge_local`] took out.
#[derive(Default)]
pub(crate) struct Purged {
    pub(crate) ready: Vec<Ready>,
    pub(crate) timers: Vec<Timer>,
    pub(crate) tasks: Vec<TaskEntry>,
}

/// What [`Work::take_all`] took out.
pub(crate) struct Taken {
    pub(crate) ready: VecDeque<Ready>,
    pub(crate) timers: BinaryHeap<Timer>,
    pub(crate) tasks: Vec<TaskEntry>,
    pub(crate) intake: VecDeque<Submission>,
    pub(crate) kept: IdMap<Box<dyn Any + Send>>,
}

/// The work is `Send`: it can belong to the loop rather than to a thread.
const _: fn() = || {
    fn is_send<T: Send>() {}
    is_send::<Work>();
};
