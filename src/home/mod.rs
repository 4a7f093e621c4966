//! A loop's state, in two parts: the loop's [`Work`](work::Work) (ready
//! queue, timers, unfinished tasks; all `Send`), which follows the loop to
//! whichever thread runs or borrows it (SPEC.md THREAD-8), and the
//! [`LocalHome`](local::LocalHome) (the values of local work, by id), which
//! stays on the loop's local home thread (THREAD-10).
//!
//! The thread that runs a loop, or borrows its work for one call, keeps an
//! `Rc` to the work in its thread-local registry
//! (`src/loop_core/registry.rs`, which also says how a thread becomes a
//! loop's local home and stops being it): that is the fast path of every
//! scheduling call on the loop's own thread.
//!
//! No `RefCell` borrow here is ever held while user code runs: entries are
//! popped first and run after the borrow ends, and user values are dropped
//! only after they have been moved out of the cells.

pub(crate) mod erased;
pub(crate) mod local;
pub(crate) mod tasks;
pub(crate) mod work;

use self::erased::{AnyTask, Coroutine, DueCallbacks};
use self::local::LocalHome;
use self::tasks::TaskEntry;
use self::work::Work;
use crate::error::{Error, drop_each};
use crate::handle::{Handle, LocalCall, Submission};
use std::cmp::Ordering as CmpOrdering;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::task::Waker;

/// One entry of the ready queue (asyncio's `_ready`, a deque of handles):
/// what an iteration runs. 24 bytes: each payload is one pointer (16 bytes
/// at most), and the queue holds one entry per pending task (its first
/// step) and per callback.
pub(crate) enum Ready {
    /// A `Send` callback — `call_soon`, a due timer, `call_soon_threadsafe`
    /// — whose node also holds its cancellation state, shared with its
    /// handle: checked right before running, and the callback's name in an
    /// "Exception in callback" report.
    Submission(Submission),
    /// A local callback (`call_soon_local`, a due local timer): its value is
    /// in the [`LocalHome`] under the id its handle's shared part holds.
    Local(LocalCall),
    /// A foreign awaiter's waker, woken when the future it awaits is done
    /// (reported as [`WAKER_CALLBACK`] if it panics).
    Wake(Waker),
    /// The next due done callback of a future (the callback waits in the
    /// future; the entry says "run the next one", so queueing it allocates
    /// nothing).
    DoneCallback(Arc<dyn DueCallbacks>),
    /// One step of a task.
    TaskStep(Arc<dyn AnyTask>),
}

/// The queue holds one entry per pending task: it stays one pointer and a
/// tag.
#[cfg(test)]
#[test]
fn a_ready_entry_is_at_most_24_bytes() {
    let size = std::mem::size_of::<Ready>();
    assert!(size <= 24, "a ready entry is {size} bytes");
}

/// The name a foreign awaiter's waker ([`Ready::Wake`]) has in an
/// "Exception in callback" report.
pub(crate) const WAKER_CALLBACK: &str = "Waker::wake";

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

/// What a timer calls: the queue side of its callback, moved to the ready
/// queue as it is when the timer is due.
pub(crate) enum TimerCall {
    /// A callback of `call_later` / `call_at`.
    Send(Submission),
    /// A local callback (`call_later_local`, `call_at_local`), kept in the
    /// [`LocalHome`] under the id this names.
    Local(LocalCall),
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

/// Hashes the loop's sequential ids (task and local ids) and futures'
/// identities with one multiplication (Fibonacci hashing): they need no
/// protection against chosen keys, and SipHash showed in the profile of a
/// loop of many tasks (and of `gather`'s set of distinct children).
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

    /// An address (a future's identity): its low bits are alignment zeros,
    /// which the multiplication would keep low, so the product is rotated
    /// to bring its mixed high bits down to where the table picks buckets.
    fn write_usize(&mut self, addr: usize) {
        self.0 = (addr as u64)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_right(32);
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

/// Drops timers taken off the heap (cancelled ones), with the local
/// callbacks they name (kept by `local`, this thread's local home of the
/// loop, if it is one); destructor panics go to `panics`.
pub(crate) fn drop_timers(local: Option<&LocalHome>, timers: Vec<Timer>, panics: &mut Vec<Error>) {
    for t in timers {
        if let (TimerCall::Local(call), Some(local)) = (&t.call, local) {
            drop_each(local.take_callback(call.id()), panics);
        }
        drop_each([t], panics);
    }
}

/// Empties the loop's work (at `close()`): drops queued callbacks and
/// timers, and the unfinished tasks with their coroutines — the local ones
/// from `local`, if this thread holds them — each on its own, so a
/// panicking destructor stops nothing.
pub(crate) fn clear_work(work: &Work, local: Option<&LocalHome>) -> Cleared {
    let taken = work.take_all();
    let mut cleared = Cleared::default();
    drop_each(taken.ready, &mut cleared.panics);
    drop_each(taken.timers, &mut cleared.panics);
    drop_each(taken.intake, &mut cleared.panics);
    drop_each(taken.kept.into_values(), &mut cleared.panics);
    let tasks = taken.tasks;
    match local {
        Some(local) => clear_local(local, tasks, &mut cleared),
        None => destroy_tasks(tasks, None, &mut cleared),
    }
    cleared
}

/// Empties a local home (at `close()` on its thread, at its thread's exit,
/// or when it is found stale): its callbacks and stashed values, and the
/// coroutines of its tasks, destroying `tasks` (their entries, taken out of
/// the loop's work) on the way.
pub(crate) fn clear_local(local: &LocalHome, tasks: Vec<TaskEntry>, cleared: &mut Cleared) {
    let mut values = local.take_all();
    drop_each(values.stash.into_values(), &mut cleared.panics);
    drop_each(values.callbacks.into_values(), &mut cleared.panics);
    destroy_tasks(tasks, Some(&mut values.coroutines), cleared);
    drop_each(values.coroutines.into_values(), &mut cleared.panics);
}

/// Destroys unfinished tasks in id order, each with its coroutine (a local
/// one from `local_coros`, if given): what it waits on first, then its
/// coroutine, so that a cycle through them does not outlive a future whose
/// destructor panics. A task still pending is reported (TASK-8).
fn destroy_tasks(
    mut tasks: Vec<TaskEntry>,
    mut local_coros: Option<&mut IdMap<std::pin::Pin<Box<dyn erased::LocalCoroutine>>>>,
    cleared: &mut Cleared,
) {
    tasks.sort_by_key(|e| e.task.id());
    for TaskEntry { task, coro } in tasks {
        let local = task.is_local();
        let coro = match coro {
            Some(c) => Some(Coroutine::Send(c)),
            None => local_coros
                .as_deref_mut()
                .and_then(|m| m.remove(&task.id()))
                .map(Coroutine::Local),
        };
        let repr = task.repr();
        let (pending, panic) = task.destroy();
        // A local task's coroutine may be on another thread (closed from
        // there): it is pending all the same.
        if pending && (coro.is_some() || local) {
            cleared.pending.push(repr);
        }
        cleared.panics.extend(panic);
        drop_each(coro, &mut cleared.panics);
        drop_each([task], &mut cleared.panics);
    }
}

/// What [`clear_work`] and [`clear_local`] dropped, for the loop to report.
#[derive(Default)]
pub(crate) struct Cleared {
    /// Reprs of the tasks that were still pending (TASK-8).
    pub(crate) pending: Vec<String>,
    /// Panics raised by destructors on the way.
    pub(crate) panics: Vec<Error>,
}
