//! A loop's home: its state on the thread that holds it — the loop's
//! [`Work`](work::Work) (ready queue, timers, unfinished tasks; all `Send`)
//! and the [`LocalHome`](local::LocalHome) (the values of local work, by
//! id) — on the one thread that may touch it, the loop's home thread
//! (SPEC.md THREAD-1).
//!
//! Each thread keeps the homes it holds in a thread-local registry
//! (`src/loop_core/registry.rs`, which also says how a thread becomes a
//! loop's home and stops being it). The thread running a loop is always its
//! home, and keeps an `Rc` to it for the run: that is the fast path of every
//! scheduling call on the loop's own thread.
//!
//! No `RefCell` borrow here is ever held while user code runs: entries are
//! popped first and run after the borrow ends, and user values are dropped
//! only after they have been moved out of the cells.

pub(crate) mod erased;
pub(crate) mod local;
pub(crate) mod work;

use self::erased::{AnyTask, Coroutine, DueCallbacks};
use self::local::LocalHome;
use self::work::{TaskEntry, Work};
use crate::error::{Error, drop_each};
use crate::handle::{Handle, Submission};
use std::cmp::Ordering as CmpOrdering;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

/// One entry of the ready queue (asyncio's `_ready`, a deque of handles):
/// what an iteration runs.
pub(crate) enum Ready {
    /// A callback: `call_soon`, a due timer, a foreign awaiter's waker.
    Callback {
        f: Box<dyn FnOnce() + Send>,
        /// The user's handle, checked for cancellation right before running.
        handle: Option<Handle>,
        /// What to call it in an "Exception in callback" report.
        name: &'static str,
    },
    /// A local callback (`call_soon_local`, a due local timer): its value is
    /// in the [`LocalHome`] under `id`.
    Local {
        id: u64,
        /// The user's handle, checked for cancellation right before running.
        handle: Handle,
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
    call: TimerCall,
    /// Its handle: cancellation flag and name.
    handle: Handle,
}

/// What a timer calls.
pub(crate) enum TimerCall {
    /// A callback of `call_later` / `call_at`.
    Send(Box<dyn FnOnce() + Send>),
    /// A local callback (`call_later_local`, `call_at_local`), kept in the
    /// [`LocalHome`] under this id.
    Local(u64),
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

/// Hashes the loop's sequential ids (task and local ids) with one
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
pub(crate) type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

/// A loop's home: its work and its local values on this thread; see the
/// [module docs](self).
#[derive(Default)]
pub(crate) struct Home {
    /// The ready queue, the timers, the unfinished tasks.
    pub(crate) work: Work,
    /// The values of local work, by id.
    pub(crate) local: LocalHome,
}

impl Home {
    /// Drops timers taken off the heap (cancelled ones), with the local
    /// callbacks they name; destructor panics go to `panics`.
    pub(crate) fn drop_timers(&self, timers: Vec<Timer>, panics: &mut Vec<Error>) {
        for t in timers {
            if let TimerCall::Local(id) = t.call {
                drop_each(self.local.take_callback(id), panics);
            }
            drop_each([t], panics);
        }
    }

    /// Takes a task's coroutine out for a step: from its entry in the work,
    /// or from the local home (`None`: destroyed, or being stepped).
    pub(crate) fn take_coroutine(&self, id: u64) -> Option<Coroutine> {
        let sent = self
            .work
            .tasks
            .borrow_mut()
            .get_mut(&id)
            .and_then(|e| e.coro.take());
        match sent {
            Some(c) => Some(Coroutine::Send(c)),
            None => self.local.take_coroutine(id).map(Coroutine::Local),
        }
    }

    /// Puts a coroutine back after a step that left its task pending;
    /// returns it if the task has left the table.
    pub(crate) fn put_coroutine(&self, id: u64, coro: Coroutine) -> Option<Coroutine> {
        let mut tasks = self.work.tasks.borrow_mut();
        let Some(entry) = tasks.get_mut(&id) else {
            return Some(coro);
        };
        match coro {
            Coroutine::Send(c) => entry.coro.replace(c).map(Coroutine::Send),
            Coroutine::Local(c) => {
                drop(tasks);
                self.local.put_coroutine(id, c);
                None
            }
        }
    }

    /// Whether the home holds no work: nothing in the work, nothing local.
    /// An empty home can be released (THREAD-3).
    pub(crate) fn is_empty(&self) -> bool {
        self.work.is_empty() && self.local.is_empty()
    }

    /// Empties the home (at `close()` or when the home thread exits): drops
    /// queued callbacks and timers, and the coroutines of unfinished tasks,
    /// each on its own, so a panicking destructor stops nothing.
    pub(crate) fn clear(&self) -> Cleared {
        let taken = self.work.take_all();
        let mut local = self.local.take_all();
        let mut cleared = Cleared::default();
        drop_each(local.stash.into_values(), &mut cleared.panics);
        drop_each(taken.ready, &mut cleared.panics);
        drop_each(taken.timers, &mut cleared.panics);
        drop_each(taken.intake, &mut cleared.panics);
        drop_each(local.callbacks.into_values(), &mut cleared.panics);
        let mut tasks: Vec<_> = taken.tasks.into_values().collect();
        tasks.sort_by_key(|e| e.task.id());
        for TaskEntry { task, coro } in tasks {
            let coro = match coro {
                Some(c) => Some(Coroutine::Send(c)),
                None => local.coroutines.remove(&task.id()).map(Coroutine::Local),
            };
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
        drop_each(local.coroutines.into_values(), &mut cleared.panics);
        cleared
    }
}

/// What [`Home::clear`] dropped, for the loop to report.
#[derive(Default)]
pub(crate) struct Cleared {
    /// Reprs of the tasks that were still pending (TASK-8).
    pub(crate) pending: Vec<String>,
    /// Panics raised by destructors on the way.
    pub(crate) panics: Vec<Error>,
}
