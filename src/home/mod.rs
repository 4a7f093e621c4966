//! A loop's home: its loop-bound state — the ready queue, the timers, the
//! unfinished tasks, the stash — on the one thread that may touch it, the
//! loop's home thread (SPEC.md THREAD-1).
//!
//! All of it holds non-`Send` closures and futures, so it cannot live in the
//! loop's shared (`Send + Sync`) state: each thread keeps the homes it holds
//! in a thread-local registry (`src/loop_core/registry.rs`, which also says
//! how a thread becomes a loop's home and stops being it). The thread
//! running a loop is always its home, and keeps an `Rc` to it for the run:
//! that is the fast path of every loop-bound call on the loop's own thread.
//!
//! No `RefCell` borrow here is ever held while user code runs: entries are
//! popped first and run after the borrow ends, and user values are dropped
//! only after they have been moved out of the cells.

pub(crate) mod erased;

use self::erased::{AnyTask, DueCallbacks, LocalCoroutine};
use crate::clock;
use crate::error::{Error, drop_each};
use crate::handle::{Handle, Submission};
use crate::inbox::Inbox;
use std::any::Any;
use std::cell::{Cell, RefCell};
use std::cmp::Ordering as CmpOrdering;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::pin::Pin;

use std::sync::Arc;

/// One entry of the ready queue (asyncio's `_ready`, a deque of handles):
/// what an iteration runs.
pub(crate) enum Ready {
    /// A loop-bound callback: `call_soon`, a due timer, a foreign awaiter's
    /// waker.
    Callback {
        f: Box<dyn FnOnce()>,
        /// The user's handle, checked for cancellation right before running.
        handle: Option<Handle>,
        /// What to call it in an "Exception in callback" report.
        name: &'static str,
    },
    /// A `call_soon_threadsafe` callback, with its cancellation state.
    Submission(Submission),
    /// The next due done callback of a future (the callback waits in the
    /// future; the entry says "run the next one", so queueing it allocates
    /// nothing).
    DoneCallback(Arc<dyn DueCallbacks>),
    /// One step of a task.
    TaskStep(Arc<dyn AnyTask>),
}

/// A scheduled timer. Ordered by deadline, then by scheduling order.
pub(crate) struct Timer {
    /// The deadline in loop time.
    when: f64,
    /// The scheduling order: among equal deadlines the earlier runs first.
    seq: u64,
    /// The callback.
    f: Box<dyn FnOnce()>,
    /// Its handle: cancellation flag and name.
    handle: Handle,
}

impl PartialEq for Timer {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == CmpOrdering::Equal
    }
}
impl Eq for Timer {}
impl PartialOrd for Timer {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl Ord for Timer {
    /// Reversed, so that `BinaryHeap` (a max-heap) pops the earliest deadline,
    /// and among equal deadlines the earliest scheduled (SCHED-5).
    fn cmp(&self, other: &Self) -> CmpOrdering {
        other
            .when
            .total_cmp(&self.when)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

/// Hashes the loop's sequential ids (task and stash ids) with one
/// multiplication (Fibonacci hashing): they need no protection against
/// chosen keys, and SipHash showed in the profile of a loop of many tasks.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// A loop's identity: the address of the state its handles share. Equal
/// for two handles exactly when they are clones of one loop (while either
/// lives). Lets the home and the traits of [`erased`] name a loop without
/// its handle type, which sits above them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LoopId(usize);

impl LoopId {
    /// The identity of the loop whose shared state is at `shared`.
    pub(crate) fn of<T>(shared: *const T) -> LoopId {
        LoopId(shared as usize)
    }
}

/// A map keyed by the loop's sequential ids.
type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

/// A loop's loop-bound state; see the [module docs](self). Every field is
/// touched only on the home thread.
#[derive(Default)]
pub(crate) struct Home {
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
    /// it finishes; `close()` or the home thread's exit destroys the rest
    /// (TASK-8).
    pub(crate) tasks: RefCell<IdMap<TaskEntry>>,
    /// Loop-bound values that `Send` values name by id
    /// ([`EventLoop::stash`](crate::EventLoop)): the destination of a
    /// `wrap_future`, whose completion arrives from another thread; a
    /// future's local done callbacks. Put by `stash`, taken by `unstash` on
    /// the home thread (or by a future dropped there).
    pub(crate) stash: RefCell<IdMap<Box<dyn Any>>>,
    /// The buffer an inbox drain fills, reused so that a drain does not
    /// allocate. Empty except inside [`drain`](Home::drain).
    intake: RefCell<VecDeque<Submission>>,
}

impl Home {
    pub(crate) fn push_ready(&self, entry: Ready) {
        self.ready.borrow_mut().push_back(entry);
    }

    pub(crate) fn pop_ready(&self) -> Option<Ready> {
        self.ready.borrow_mut().pop_front()
    }

    pub(crate) fn ready_len(&self) -> usize {
        self.ready.borrow().len()
    }

    pub(crate) fn push_timer(&self, when: f64, f: Box<dyn FnOnce()>, handle: Handle) {
        let seq = self.timer_seq.get();
        self.timer_seq.set(seq + 1);
        self.timers.borrow_mut().push(Timer {
            when,
            seq,
            f,
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
                Some(id) => self.schedule_step_of(id),
            }
        }
        // Give the (empty) buffer back for the next drain.
        *self.intake.borrow_mut() = intake;
    }

    /// Queues a step of task `id`, if it is still unfinished.
    pub(crate) fn schedule_step_of(&self, id: u64) {
        let task = self.tasks.borrow().get(&id).map(|e| e.task.clone());
        if let Some(task) = task {
            self.schedule_step(task);
        }
    }

    /// Takes the cross-thread submissions out of the ready queue, in order,
    /// leaving the loop-bound entries. No user value is dropped here.
    pub(crate) fn take_submissions(&self) -> VecDeque<Submission> {
        let mut ready = self.ready.borrow_mut();
        let mut taken = VecDeque::new();
        for entry in std::mem::take(&mut *ready) {
            match entry {
                Ready::Submission(s) => taken.push_back(s),
                other => ready.push_back(other),
            }
        }
        taken
    }

    /// Whether any timer (cancelled or not) is scheduled.
    pub(crate) fn has_timers(&self) -> bool {
        !self.timers.borrow().is_empty()
    }

    /// The poll timeout the timers ask for: `None` with no timer, else the
    /// time until the earliest one (at least 0, at most one day). Cancelled
    /// timers at the head are dropped first, as asyncio does; panics from
    /// their destructors go to `panics`.
    pub(crate) fn timer_timeout(&self, now: f64, panics: &mut Vec<Error>) -> Option<f64> {
        let dropped = self.drop_cancelled_head();
        drop_each(dropped, panics);
        let timers = self.timers.borrow();
        let when = timers.peek()?.when;
        Some((when - now).clamp(0.0, clock::MAXIMUM_SELECT_TIMEOUT))
    }

    fn drop_cancelled_head(&self) -> Vec<Timer> {
        let mut dropped = Vec::new();
        let mut timers = self.timers.borrow_mut();
        while timers.peek().is_some_and(|t| t.handle.cancelled()) {
            dropped.extend(timers.pop());
        }
        dropped
    }

    /// Moves every due timer to the end of the ready queue, in deadline order
    /// (SCHED-4). Cancelled timers are dropped on the way (destructor panics
    /// go to `panics`).
    pub(crate) fn move_due_timers(&self, now: f64, panics: &mut Vec<Error>) {
        let mut dropped = Vec::new();
        {
            let mut timers = self.timers.borrow_mut();
            let mut ready = self.ready.borrow_mut();
            while timers.peek().is_some_and(|t| clock::is_due(t.when, now)) {
                let Some(t) = timers.pop() else { break };
                if t.handle.cancelled() {
                    dropped.push(t);
                    continue;
                }
                let name = t.handle.name();
                ready.push_back(Ready::Callback {
                    f: t.f,
                    handle: Some(t.handle),
                    name,
                });
            }
        }
        drop_each(dropped, panics);
    }

    /// Whether the home holds no work: no ready entry, no uncancelled timer,
    /// no unfinished task, nothing stashed. An empty home can be released
    /// (THREAD-3).
    pub(crate) fn is_empty(&self) -> bool {
        self.ready.borrow().is_empty()
            && self.tasks.borrow().is_empty()
            && self.stash.borrow().is_empty()
            && self.timers.borrow().iter().all(|t| t.handle.cancelled())
    }

    /// Unfinished tasks in id order, for `all_tasks` and `Runner::close`.
    pub(crate) fn tasks(&self) -> Vec<Arc<dyn AnyTask>> {
        let mut v: Vec<_> = self
            .tasks
            .borrow()
            .values()
            .map(|e| e.task.clone())
            .collect();
        v.sort_by_key(|t| t.id());
        v
    }

    /// Empties the home (at `close()` or when the home thread exits): drops
    /// queued callbacks and timers, and the coroutines of unfinished tasks,
    /// each on its own, so a panicking destructor stops nothing.
    pub(crate) fn clear(&self) -> Cleared {
        let ready = std::mem::take(&mut *self.ready.borrow_mut());
        let timers = std::mem::take(&mut *self.timers.borrow_mut());
        let tasks = std::mem::take(&mut *self.tasks.borrow_mut());
        let intake = std::mem::take(&mut *self.intake.borrow_mut());
        let stash = std::mem::take(&mut *self.stash.borrow_mut());
        let mut cleared = Cleared::default();
        drop_each(stash.into_values(), &mut cleared.panics);
        drop_each(ready, &mut cleared.panics);
        drop_each(timers, &mut cleared.panics);
        drop_each(intake, &mut cleared.panics);
        let mut tasks: Vec<_> = tasks.into_values().collect();
        tasks.sort_by_key(|e| e.task.id());
        for TaskEntry { task, coro } in tasks {
            let repr = task.repr();
            // What it waits on first, then its coroutine: a cycle through
            // them must not outlive a future whose destructor panics.
            let (pending, panic) = task.destroy();
            if pending && coro.is_some() {
                cleared.pending.push(repr);
            }
            cleared.panics.extend(panic);
            drop_each(coro, &mut cleared.panics);
            drop_each([task], &mut cleared.panics);
        }
        cleared
    }
}

/// An unfinished task in its loop's table.
pub(crate) struct TaskEntry {
    /// The task.
    pub(crate) task: Arc<dyn AnyTask>,
    /// Its coroutine: `Some` from creation until it returns or fails,
    /// except while a step polls it (the step takes it out and puts it back
    /// if it is still pending).
    pub(crate) coro: Option<Pin<Box<dyn LocalCoroutine>>>,
}

/// What [`Home::clear`] dropped, for the loop to report.
#[derive(Default)]
pub(crate) struct Cleared {
    /// Reprs of the tasks that were still pending (TASK-8).
    pub(crate) pending: Vec<String>,
    /// Panics raised by destructors on the way.
    pub(crate) panics: Vec<Error>,
}
