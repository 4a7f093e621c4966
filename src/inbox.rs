//! The inbox: work handed to a loop from any thread, and the wake state that
//! decides when the loop must be woken.
//!
//! The inbox holds `Send` submissions: callbacks from `call_soon_threadsafe`
//! and task wake-ups from wakers called off the loop's thread. It lives in the
//! loop's shared state under one mutex with the [run state](crate::run_state),
//! and the loop parks on a condvar paired with that mutex.
//!
//! # Wake state
//!
//! Two flags, both guarded by the mutex:
//!
//! * `parked` — the loop thread is waiting (or about to wait) on the condvar.
//!   Set by the loop only after it found, under the lock, that the inbox is
//!   empty and no stop is requested. Cleared by the loop when it returns from
//!   the wait.
//! * `notified` — a wake-up was issued for the current park and not consumed
//!   yet. Set by the first producer (or `stop()`) that finds `parked && !notified`;
//!   cleared with `parked`.
//!
//! Invariants:
//!
//! 1. **No lost wake-up.** The loop decides to park and checks the inbox in
//!    one critical section; a producer pushes and reads `parked` in one
//!    critical section. So either the loop sees the item before parking, or
//!    the producer sees `parked` and notifies. There is no window between.
//! 2. **Coalescing.** A producer signals the condvar only on the transition
//!    `parked && !notified` → `notified`: one signal per park, however many
//!    items arrive. A loop that is busy (not parked) receives no signal at
//!    all, so a burst of submissions to a busy loop costs no condvar calls.
//! 3. The loop waits in a loop on `!notified` (spurious wake-ups are
//!    absorbed) and, with a timeout, until the deadline passes.
//!
//! The inbox counts submissions, signals and parks ([`InboxStats`]), so tests
//! and benchmarks can show the coalescing.

use crate::handle::QueuedCall;
use std::collections::VecDeque;
use std::fmt;

/// One piece of work handed to the loop from any thread: a
/// `call_soon_threadsafe` callback, or a task waker's wake-up (16 bytes).
pub(crate) type Submission = QueuedCall;

impl fmt::Debug for QueuedCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.task_wake() {
            Some(id) => write!(f, "Wake({id})"),
            None => write!(f, "Call({})", self.name()),
        }
    }
}

/// The queue of submissions and the wake state; see the [module docs](self).
#[derive(Debug, Default)]
pub(crate) struct Inbox {
    /// Submissions in arrival order.
    pub(crate) queue: VecDeque<Submission>,
    /// The loop thread is waiting, or about to wait, on the condvar.
    pub(crate) parked: bool,
    /// A wake-up was issued for the current park and not consumed yet.
    pub(crate) notified: bool,
    /// Submissions accepted since the loop was made.
    pub(crate) pushed: u64,
    /// Condvar signals issued since the loop was made.
    pub(crate) wakeups: u64,
    /// Times the loop parked (waited on the condvar) since it was made.
    pub(crate) parks: u64,
}

/// Counters of a loop's inbox, from [`EventLoop::inbox_stats`](crate::EventLoop::inbox_stats).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InboxStats {
    /// Submissions accepted from other threads.
    pub submissions: u64,
    /// Condvar signals issued to wake the parked loop.
    pub wakeups: u64,
    /// Times the loop parked waiting for submissions or a timeout.
    pub parks: u64,
    /// Submissions waiting in the inbox now.
    pub queued: usize,
}

impl Inbox {
    /// Appends `s`. Returns whether the caller must signal the condvar (after
    /// releasing the lock): true exactly on `parked && !notified`.
    pub(crate) fn push(&mut self, s: Submission) -> bool {
        self.queue.push_back(s);
        self.pushed += 1;
        self.wake()
    }

    /// Puts `earlier` — submissions accepted before everything queued now —
    /// back at the front of the queue, in their order (a home thread that
    /// exits hands back the ones its half had taken in, THREAD-4). They are
    /// not counted again. Returns whether the caller must signal the condvar.
    pub(crate) fn push_front_all(&mut self, mut earlier: VecDeque<Submission>) -> bool {
        earlier.append(&mut self.queue);
        self.queue = earlier;
        self.wake()
    }

    /// Requests a wake-up of a parked loop (a push or a stop). Returns whether
    /// the caller must signal the condvar.
    pub(crate) fn wake(&mut self) -> bool {
        // Seeded bug (loom mutant check): signal on every push to a parked
        // loop, not once per park.
        #[cfg(feature = "mutant-wake-every-push")]
        let already = false;
        #[cfg(not(feature = "mutant-wake-every-push"))]
        let already = self.notified;
        if self.parked && !already {
            self.notified = true;
            self.wakeups += 1;
            true
        } else {
            false
        }
    }
}
