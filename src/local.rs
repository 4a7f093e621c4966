//! The loop-bound half of a loop: its ready queue, its timers and its tasks.
//!
//! These hold non-`Send` closures and futures, so they cannot live in the
//! loop's shared (`Send + Sync`) state. They live in a thread-local registry of
//! the loop's *home thread* instead (SPEC.md THREAD-1), found again by the loop
//! handle's identity. The thread running a loop is always its home, and
//! keeps a direct reference to the half for the duration of the run: that is
//! the fast path every loop-bound call on the loop's own thread takes.
//!
//! No `RefCell` borrow here is ever held while user code runs: entries are
//! popped first and run after the borrow ends, and user values are dropped only
//! after they have been moved out of the cells.

use crate::clock;
use crate::error::Error;
use crate::event_loop::EventLoop;
use crate::future::FireCallback;
use crate::handle::{Handle, Submission};
use crate::sync::thread_local;
use crate::task::TaskDyn;
use std::cell::{Cell, RefCell};
use std::cmp::Ordering as CmpOrdering;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;

/// A task as the loop sees it: something it can step, identified by id.
pub(crate) trait Runnable {
    /// Runs one step of the task (one poll of its future). Called only from
    /// the loop's iteration, on the home thread.
    fn step(self: Rc<Self>);
    /// The task's id, unique within its loop.
    fn id(&self) -> u64;
    /// Marks the task as having a step queued. Returns `false` if one was
    /// already queued (the caller then queues nothing).
    fn mark_scheduled(&self) -> bool;
    /// Drops the task's future without running it further (at `close()`).
    /// Returns whether the task was still pending, and the panic of the
    /// future's destructor, if any.
    fn destroy(&self) -> (bool, Option<Error>);
    /// The task's repr, e.g. `<Task pending name='Task-1'>`.
    fn repr(&self) -> String;
}

/// One entry of the ready queue.
pub(crate) enum Ready {
    /// A callback: `call_soon`, a due timer, a future's done callback...
    Call {
        f: Box<dyn FnOnce()>,
        /// The user's handle, checked for cancellation right before running.
        handle: Option<Handle>,
        /// What to call it in an "Exception in callback" report.
        name: &'static str,
    },
    /// A `call_soon_threadsafe` callback, with its cancellation flag.
    Sent(Submission),
    /// The next scheduled done callback of a future.
    Fire(Rc<dyn FireCallback>),
    /// One step of a task.
    Step(Rc<dyn Runnable>),
}

/// A scheduled timer. Ordered by deadline, then by scheduling order.
pub(crate) struct Timer {
    pub(crate) when: f64,
    pub(crate) seq: u64,
    pub(crate) f: Box<dyn FnOnce()>,
    pub(crate) handle: Handle,
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

/// Hashes the loop's sequential ids (task and held-value ids) with one
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

/// The loop-bound half; see the [module docs](self).
#[derive(Default)]
pub(crate) struct LocalHalf {
    pub(crate) ready: RefCell<VecDeque<Ready>>,
    timers: RefCell<BinaryHeap<Timer>>,
    timer_seq: Cell<u64>,
    /// Unfinished tasks by id; a task leaves when it finishes.
    pub(crate) tasks: RefCell<HashMap<u64, Rc<dyn TaskDyn>, BuildHasherDefault<IdHasher>>>,
    /// Loop-bound values that `Send` closures refer to by id (the destination
    /// of a `wrap_future`, whose completion arrives from another thread).
    pub(crate) held: RefCell<HashMap<u64, Box<dyn std::any::Any>, BuildHasherDefault<IdHasher>>>,
    /// The buffer an inbox drain fills (reused, so a drain does not
    /// allocate). Empty except between a drain and
    /// [`accept_spare`](LocalHalf::accept_spare).
    pub(crate) spare: RefCell<VecDeque<Submission>>,
}

impl LocalHalf {
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
    pub(crate) fn schedule_step(&self, task: Rc<dyn Runnable>) {
        if task.mark_scheduled() {
            self.push_ready(Ready::Step(task));
        }
    }

    /// Turns one inbox submission into ready work.
    pub(crate) fn accept(&self, s: Submission) {
        match s.task_wake() {
            None => self.push_ready(Ready::Sent(s)),
            Some(id) => self.wake_task(id),
        }
    }

    /// Accepts the submissions a drain put in the spare buffer, in order.
    pub(crate) fn accept_spare(&self) {
        let mut spare = std::mem::take(&mut *self.spare.borrow_mut());
        for s in spare.drain(..) {
            self.accept(s);
        }
        // Give the (empty) buffer back for the next drain.
        *self.spare.borrow_mut() = spare;
    }

    /// Queues a step of task `id`, if it is still unfinished.
    pub(crate) fn wake_task(&self, id: u64) {
        let task = self.tasks.borrow().get(&id).cloned();
        if let Some(task) = task {
            self.schedule_step(task as Rc<dyn Runnable>);
        }
    }

    /// Takes the cross-thread submissions out of the ready queue, in order,
    /// leaving the loop-bound entries. No user value is dropped here.
    pub(crate) fn take_sent(&self) -> VecDeque<Submission> {
        let mut ready = self.ready.borrow_mut();
        let mut sent = VecDeque::new();
        for entry in std::mem::take(&mut *ready) {
            match entry {
                Ready::Sent(s) => sent.push_back(s),
                other => ready.push_back(other),
            }
        }
        sent
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
                ready.push_back(Ready::Call {
                    f: t.f,
                    handle: Some(t.handle),
                    name,
                });
            }
        }
        drop_each(dropped, panics);
    }

    /// Whether the half holds no work: no ready entry, no uncancelled timer,
    /// no unfinished task, no held value. An empty half can be released
    /// (THREAD-3).
    pub(crate) fn is_empty(&self) -> bool {
        self.ready.borrow().is_empty()
            && self.tasks.borrow().is_empty()
            && self.held.borrow().is_empty()
            && self.timers.borrow().iter().all(|t| t.handle.cancelled())
    }

    /// Unfinished tasks, for `all_tasks` and `run`.
    pub(crate) fn tasks(&self) -> Vec<Rc<dyn TaskDyn>> {
        let mut v: Vec<_> = self.tasks.borrow().values().cloned().collect();
        v.sort_by_key(|t| t.id());
        v
    }

    /// Empties the half (at `close()` or when the home thread exits): drops
    /// queued callbacks and timers, and the futures of unfinished tasks, each
    /// on its own, so a panicking destructor stops nothing.
    pub(crate) fn clear(&self) -> Cleared {
        let ready = std::mem::take(&mut *self.ready.borrow_mut());
        let timers = std::mem::take(&mut *self.timers.borrow_mut());
        let tasks = std::mem::take(&mut *self.tasks.borrow_mut());
        let spare = std::mem::take(&mut *self.spare.borrow_mut());
        let held = std::mem::take(&mut *self.held.borrow_mut());
        let mut cleared = Cleared::default();
        drop_each(held.into_values(), &mut cleared.panics);
        drop_each(ready, &mut cleared.panics);
        drop_each(timers, &mut cleared.panics);
        drop_each(spare, &mut cleared.panics);
        let mut tasks: Vec<_> = tasks.into_values().collect();
        tasks.sort_by_key(|t| t.id());
        for t in tasks {
            let repr = t.repr();
            let (was_pending, panic) = t.destroy();
            if was_pending {
                cleared.pending.push(repr);
            }
            cleared.panics.extend(panic);
            drop_each([t], &mut cleared.panics);
        }
        cleared
    }
}

/// What [`LocalHalf::clear`] dropped.
#[derive(Default)]
pub(crate) struct Cleared {
    /// Reprs of the tasks that were still pending.
    pub(crate) pending: Vec<String>,
    /// Panics raised by destructors on the way.
    pub(crate) panics: Vec<Error>,
}

/// Drops each item in its own `catch_unwind`, collecting the panics: user
/// destructors run here, and one that panics must not stop the others.
pub(crate) fn drop_each<T>(items: impl IntoIterator<Item = T>, panics: &mut Vec<Error>) {
    for item in items {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(move || drop(item))) {
            panics.push(Error::from_panic(panic));
        }
    }
}

/// What a thread knows about the loops it runs and is home to.
#[derive(Default)]
struct ThreadLoops {
    /// The loop this thread is running, with its half (at most one: a thread
    /// cannot run two loops at once, LIFE-5).
    running: Option<(EventLoop, Rc<LocalHalf>)>,
    /// Loops whose home is (or was) this thread, with the claim's epoch.
    bound: Vec<(EventLoop, u64, Rc<LocalHalf>)>,
}

impl Drop for ThreadLoops {
    /// The thread is exiting: release every loop it is home to. Their queued
    /// loop-bound work is dropped with the thread; the cross-thread
    /// submissions their halves had taken in go back to the inbox, to run
    /// wherever the loop runs next (THREAD-4).
    fn drop(&mut self) {
        // A loom model that failed unwinds its threads; touching loom objects
        // then aborts the process. Nothing needs releasing in a failed model.
        #[cfg(loom)]
        if std::thread::panicking() {
            std::mem::forget(std::mem::take(&mut self.bound));
            std::mem::forget(self.running.take());
            return;
        }
        self.running = None;
        for (lp, epoch, half) in std::mem::take(&mut self.bound) {
            let refused = lp.release_home_on_exit(epoch, half.take_sent());
            let mut cleared = half.clear();
            drop_each(refused, &mut cleared.panics);
            lp.report_cleared(cleared);
        }
    }
}

thread_local! {
    static LOOPS: RefCell<ThreadLoops> = RefCell::new(ThreadLoops::default());
    /// This thread's id, looked up once (`thread::current()` clones an `Arc`).
    static THREAD_ID: crate::sync::thread::ThreadId = crate::sync::thread::current().id();
}

/// The calling thread's id.
pub(crate) fn current_thread_id() -> crate::sync::thread::ThreadId {
    THREAD_ID
        .try_with(|id| *id)
        .unwrap_or_else(|_| crate::sync::thread::current().id())
}

/// The half of `lp` if this thread is running it.
pub(crate) fn running_half(lp: &EventLoop) -> Option<Rc<LocalHalf>> {
    LOOPS
        .try_with(|l| match &l.borrow().running {
            Some((r, half)) if r == lp => Some(half.clone()),
            _ => None,
        })
        .ok()
        .flatten()
}

/// The loop this thread is running, if any.
pub(crate) fn running_loop() -> Option<EventLoop> {
    LOOPS
        .try_with(|l| l.borrow().running.as_ref().map(|(lp, _)| lp.clone()))
        .ok()
        .flatten()
}

/// Records (or clears) the loop this thread runs.
pub(crate) fn set_running(running: Option<(EventLoop, Rc<LocalHalf>)>) {
    let old = LOOPS
        .try_with(|l| std::mem::replace(&mut l.borrow_mut().running, running))
        .ok()
        .flatten();
    drop(old);
}

/// This thread's half of `lp` for the claim `epoch`, if it has it.
pub(crate) fn bound_half(lp: &EventLoop, epoch: u64) -> Option<Rc<LocalHalf>> {
    LOOPS
        .try_with(|l| {
            l.borrow()
                .bound
                .iter()
                .find(|(b, e, _)| b == lp && *e == epoch)
                .map(|(_, _, h)| h.clone())
        })
        .ok()
        .flatten()
}

/// Records a new half of `lp` for the claim `epoch`. Returns any stale half of
/// the same loop, for the caller to drop once it holds no lock.
pub(crate) fn insert_bound(
    lp: &EventLoop,
    epoch: u64,
    half: Rc<LocalHalf>,
) -> Option<Rc<LocalHalf>> {
    LOOPS
        .try_with(|l| {
            let mut l = l.borrow_mut();
            let stale = l
                .bound
                .iter()
                .position(|(b, _, _)| b == lp)
                .map(|i| l.bound.swap_remove(i).2);
            l.bound.push((lp.clone(), epoch, half));
            stale
        })
        .ok()
        .flatten()
}

/// Removes this thread's half of `lp`, if any, and returns it.
pub(crate) fn remove_bound(lp: &EventLoop) -> Option<Rc<LocalHalf>> {
    LOOPS
        .try_with(|l| {
            let mut l = l.borrow_mut();
            l.bound
                .iter()
                .position(|(b, _, _)| b == lp)
                .map(|i| l.bound.swap_remove(i).2)
        })
        .ok()
        .flatten()
}
