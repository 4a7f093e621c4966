//! The inbox's state, bit by bit and field by field. The operations that
//! change it, and the invariants they keep together, are in the
//! [parent module](super); nothing outside the inbox touches this state.
//!
//! Two parts:
//!
//! * [`Word`]: one atomic word that producers and the loop change with
//!   read-modify-writes and no lock. Every decision that must not miss a
//!   producer — to park or not, to accept or refuse — is a single
//!   read-modify-write of it, so it is totally ordered with every
//!   producer's announce.
//! * [`Locked`]: what the inbox lock guards — whether a wake-up is pending,
//!   the handed-back queue, the counters.
//!
//! # The word
//!
//! ```text
//!  usize::BITS-1                  3     2              1         0
//! +--------------------------------+-------------+----------+----------+
//! |  count (signed)                | HANDED_BACK |  PARKED  |  CLOSED  |
//! +--------------------------------+-------------+----------+----------+
//! ```
//!
//! | bits | name | meaning | set by | cleared by |
//! |---|---|---|---|---|
//! | 0 | [`CLOSED`] | sends are refused | `close`, under the lock | never |
//! | 1 | [`PARKED`] | the loop waits, or is about to, on the condvar | the loop in `park`, under the lock (its last look at the word) | the loop in `park`, under the lock, when it stops waiting or decides not to |
//! | 2 | [`HANDED_BACK`] | the handed-back queue is not empty | `hand_back`, under the lock | the drain (or `close`) that takes that queue, under the lock |
//! | 3.. | count | submissions announced or handed back and not yet taken | `+1` by a producer before its send; `+n` by `hand_back` | `-1` by a refused producer; `-n` by the drain that took `n` |
//!
//! Invariants:
//!
//! * **W1.** The count is never below what the channel and the handed-back
//!   queue hold: a producer announces before it sends, a drain subtracts
//!   only what it took. It can be above (a send in flight after its
//!   announce, a refused producer between its announce and its retract).
//!   "Pending" means a positive count or `HANDED_BACK`.
//! * **W2.** `PARKED`, `CLOSED` and `HANDED_BACK` change only under the
//!   inbox lock, so a read under the lock sees them exactly; producers'
//!   read-modify-writes change only the count (multiples of
//!   [`ONE_SUBMISSION`], which never carry into the flag bits).
//! * **W3.** `CLOSED` is never cleared: once set, no announce is accepted.
//!
//! # The locked part
//!
//! See [`Locked`]'s fields.

use crate::sync::{AtomicUsize, Ordering};
use std::collections::VecDeque;

/// Bit 0: the inbox is closed; every announce from now on is refused.
pub(super) const CLOSED: usize = 1;
/// Bit 1: the loop is parked on the condvar, or about to park (it holds the
/// lock from setting this bit until it waits).
pub(super) const PARKED: usize = 2;
/// Bit 2: the handed-back queue holds submissions (take it under the lock).
pub(super) const HANDED_BACK: usize = 4;
/// One submission in the count (bits 3 and up).
pub(super) const ONE_SUBMISSION: usize = 8;

/// The signed count of a word value.
pub(super) fn count(word: usize) -> isize {
    (word as isize) >> 3
}

/// Whether a word value says work is waiting: a positive count or a
/// handed-back queue.
pub(super) fn pending(word: usize) -> bool {
    count(word) > 0 || word & HANDED_BACK != 0
}

/// Whether a word value has [`CLOSED`].
pub(super) fn is_closed(word: usize) -> bool {
    word & CLOSED != 0
}

/// Whether a word value has [`PARKED`].
pub(super) fn is_parked(word: usize) -> bool {
    word & PARKED != 0
}

/// Whether a word value has [`HANDED_BACK`].
pub(super) fn has_handed_back(word: usize) -> bool {
    word & HANDED_BACK != 0
}

/// A value on a cache line of its own (false sharing with the channel's
/// indices would make every send invalidate what a spinning loop reads).
#[derive(Debug)]
#[repr(align(128))]
struct CachePadded<T>(T);

/// The inbox's atomic word; see the [module docs](self). Each method is one
/// atomic step.
#[derive(Debug)]
pub(super) struct Word(CachePadded<AtomicUsize>);

impl Word {
    pub(super) fn new() -> Word {
        Word(CachePadded(AtomicUsize::new(0)))
    }

    fn atomic(&self) -> &AtomicUsize {
        &self.0.0
    }

    /// A producer announces one submission before it sends it: count `+1`.
    /// Returns the word before, whose [`CLOSED`] decides acceptance and
    /// whose [`PARKED`] says whether the loop must be woken.
    pub(super) fn announce(&self) -> usize {
        self.atomic().fetch_add(ONE_SUBMISSION, Ordering::AcqRel)
    }

    /// A refused producer takes its announce back: count `-1`.
    pub(super) fn retract(&self) {
        self.atomic().fetch_sub(ONE_SUBMISSION, Ordering::AcqRel);
    }

    /// A drain took `n` submissions off the channel: count `-n`.
    pub(super) fn took(&self, n: usize) {
        self.atomic()
            .fetch_sub(n * ONE_SUBMISSION, Ordering::AcqRel);
    }

    /// `n` submissions were handed back: count `+n`, and [`HANDED_BACK`]
    /// if the queue was empty (`first`). Under the lock.
    pub(super) fn handed_back(&self, n: usize, first: bool) {
        let flag = if first { HANDED_BACK } else { 0 };
        self.atomic()
            .fetch_add(n * ONE_SUBMISSION + flag, Ordering::AcqRel);
    }

    /// The `n` handed-back submissions were taken: count `-n`, and
    /// [`HANDED_BACK`] cleared. Under the lock.
    pub(super) fn took_handed_back(&self, n: usize) {
        self.atomic()
            .fetch_sub(n * ONE_SUBMISSION + HANDED_BACK, Ordering::AcqRel);
    }

    /// The word, read by the loop as a hint: a drain now, or at the next
    /// look. A load; under loom, a read-modify-write that changes nothing:
    /// loom's scheduler explores a producer's announce on either side of a
    /// read-modify-write but not of a load, and the models must see an
    /// announce land just before a drain. (What a load can return beyond
    /// that — an older value — only delays a drain to the next look: every
    /// decision that must not miss an announce is a read-modify-write in
    /// both builds (parking; closing, whose later reads come after its own
    /// `fetch_or` and so, by coherence, see every announce before it); and
    /// [`HANDED_BACK`] is set before the exiting home releases the loop, so
    /// the next home, which claims the loop after that, cannot read it
    /// stale.)
    pub(super) fn hint(&self) -> usize {
        #[cfg(loom)]
        return self.atomic().fetch_add(0, Ordering::AcqRel);
        #[cfg(not(loom))]
        self.atomic().load(Ordering::Acquire)
    }

    /// The word, read under the inbox lock, where its flags are exact (W2),
    /// or for the counters.
    pub(super) fn load(&self) -> usize {
        self.atomic().load(Ordering::Acquire)
    }

    /// The loop's decision to park, under the lock: sets [`PARKED`] and
    /// returns whether it may wait — false if work is pending, and then
    /// `PARKED` is cleared again. One read-modify-write, so a producer's
    /// announce is either seen here or sees `PARKED` (invariant 1).
    pub(super) fn try_park(&self) -> bool {
        // Seeded bug (`lost-wakeup`): decide from a plain read before
        // setting the flag, as rloop does — a submission announced between
        // the read and the set is never noticed.
        #[cfg(loopspec_mutant = "lost-wakeup")]
        let before = {
            let seen = self.atomic().load(Ordering::Acquire);
            self.atomic().fetch_or(PARKED, Ordering::AcqRel);
            seen
        };
        #[cfg(not(loopspec_mutant = "lost-wakeup"))]
        let before = self.atomic().fetch_or(PARKED, Ordering::AcqRel);
        if pending(before) {
            self.unpark();
            return false;
        }
        true
    }

    /// Clears [`PARKED`] (the loop stopped waiting, or chose not to). Under
    /// the lock.
    pub(super) fn unpark(&self) {
        self.atomic().fetch_and(!PARKED, Ordering::AcqRel);
    }

    /// Sets [`CLOSED`]. Under the lock.
    pub(super) fn close(&self) {
        self.atomic().fetch_or(CLOSED, Ordering::AcqRel);
    }
}

/// The part of the inbox under its lock.
#[derive(Debug)]
pub(super) struct Locked<T> {
    /// A wake-up was issued for the current park and the loop has not
    /// consumed it yet.
    ///
    /// * Set by `wake` — a send that saw [`PARKED`], `stop()`, a hand-back —
    ///   only while `PARKED` is set and it is clear: one condvar signal per
    ///   park, however many wakers come (invariant 2).
    /// * Cleared by the loop in `park`, when it stops waiting (with
    ///   `PARKED`).
    /// * The loop waits until it is set (or its timeout ends), so a spurious
    ///   condvar wake-up does not end a park.
    pub(super) notified: bool,
    /// Submissions a home thread had taken in and handed back at its exit
    /// (THREAD-4), in their order: older than anything in the channel, so
    /// a drain takes them first. Non-empty exactly when the word has
    /// [`HANDED_BACK`].
    pub(super) handed_back: VecDeque<T>,
    /// Condvar signals issued since the inbox was made (statistics).
    pub(super) wakeups: u64,
    /// Times the loop parked (waited on the condvar) since the inbox was
    /// made (statistics).
    pub(super) parks: u64,
}

impl<T> Default for Locked<T> {
    fn default() -> Self {
        Locked {
            notified: false,
            handed_back: VecDeque::new(),
            wakeups: 0,
            parks: 0,
        }
    }
}
