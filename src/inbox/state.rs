//! The inbox's state, bit by bit and field by field: what it means, who
//! changes it, what stays true. The operations that change it — each one
//! atomic step, `Word`'s methods — and the invariants they keep together
//! are in the [parent module](super); nothing outside the inbox touches
//! this state.
//!
//! Two parts:
//!
//! * The word: one atomic word that producers and the loop change with
//!   read-modify-writes and no lock. Every decision that must not miss a
//!   producer — to park or not, to accept or refuse — is a single
//!   read-modify-write of it, so it is totally ordered with every
//!   producer's announce.
//! * [`Locked`]: what the inbox lock guards — whether a wake-up is pending,
//!   the counters.
//!
//! # The word
//!
//! ```text
//!  usize::BITS-1                  3     2          1         0
//! +--------------------------------+---------+----------+----------+
//! |  count (signed)                | (unused)|  PARKED  |  CLOSED  |
//! +--------------------------------+---------+----------+----------+
//! ```
//!
//! | bits | name | meaning | set by | cleared by |
//! |---|---|---|---|---|
//! | 0 | [`CLOSED`] | sends are refused | `close`, under the lock | never |
//! | 1 | [`PARKED`] | the loop waits, or is about to, on the condvar | the loop in `park`, under the lock (its last look at the word) | the loop in `park`, under the lock, when it stops waiting or decides not to |
//! | 2 | — | unused (always 0) | — | — |
//! | 3.. | count | submissions announced and not yet taken | `+1` by a producer before its send | `-1` by a refused producer; `-n` by the drain that took `n` |
//!
//! Invariants:
//!
//! * **W1.** The count is never below what the channel holds: a producer
//!   announces before it sends, a drain subtracts only what it took. It can
//!   be above (a send in flight after its announce, a refused producer
//!   between its announce and its retract). "Pending" means a positive
//!   count.
//! * **W2.** `PARKED` and `CLOSED` change only under the
//!   inbox lock, so a read under the lock sees them exactly; producers'
//!   read-modify-writes change only the count (multiples of
//!   [`ONE_SUBMISSION`], which never carry into the flag bits).
//! * **W3.** `CLOSED` is never cleared: once set, no announce is accepted.
//!
//! # The locked part
//!
//! See [`Locked`]'s fields.

/// Bit 0: the inbox is closed; every announce from now on is refused.
///
/// * Set by `close`, under the lock, with a read-modify-write (so every
///   announce is ordered before it — accepted — or after it — refused).
/// * Never cleared (W3).
pub(super) const CLOSED: usize = 1;

/// Bit 1: the loop is parked on the condvar, or about to park (it holds the
/// lock from setting this bit until it waits).
///
/// * Set by the loop in `park`, under the lock, in the same
///   read-modify-write that takes its last look at the count: a producer's
///   announce either comes before it (and the loop does not wait) or sees
///   it (and wakes the loop; invariant 1).
/// * Cleared by the loop in `park`, under the lock, when it stops waiting
///   or decides not to. Only the loop's thread changes it.
/// * While it is set, `Locked::notified` says whether this park's one
///   wake-up was issued (invariant 2).
pub(super) const PARKED: usize = 2;

/// One submission in the count (bits 3 and up).
///
/// * Added by a producer before its send (the announce).
/// * Subtracted by a refused producer (its announce taken back) and by
///   the drain or `close` that took submissions.
/// * Never below what the channel holds (W1).
pub(super) const ONE_SUBMISSION: usize = 8;

/// A value on a cache line of its own (false sharing with the channel's
/// indices would make every send invalidate what a spinning loop reads).
#[derive(Debug)]
#[repr(align(128))]
pub(super) struct CachePadded<T>(pub(super) T);

/// The part of the inbox under its lock.
#[derive(Debug, Default)]
pub(super) struct Locked {
    /// A wake-up was issued for the current park and the loop has not
    /// consumed it yet.
    ///
    /// * Set by `wake` — a send that saw [`PARKED`], `stop()` —
    ///   only while `PARKED` is set and it is clear: one condvar signal per
    ///   park, however many wakers come (invariant 2).
    /// * Cleared by the loop in `park`, when it stops waiting (with
    ///   `PARKED`).
    /// * The loop waits until it is set (or its timeout ends), so a spurious
    ///   condvar wake-up does not end a park.
    pub(super) notified: bool,
    /// Condvar signals issued since the inbox was made (statistics).
    pub(super) wakeups: u64,
    /// Times the loop parked (waited on the condvar) since the inbox was
    /// made (statistics).
    pub(super) parks: u64,
}
