//! The loop's run state: who runs it, whether a stop was requested, whether it
//! is closed, and which thread holds its loop-bound work.
//!
//! `RunState` lives in the loop's shared state, under the same mutex as the
//! [inbox](crate::inbox), so that "closed" is checked atomically with every
//! cross-thread enqueue. Each field's invariants are written next to it;
//! SPEC.md rules cite them (LIFE-*, STOP-*, THREAD-*).
//!
//! # The stop flag
//!
//! `stopping` is an atomic next to the lock (`StopFlag`), so the loop can
//! check it after every iteration without locking:
//!
//! * Set by `stop()` from any thread, which then takes the lock to wake a
//!   parked loop: a loop that decided to park before the flag was set is
//!   woken by that lock-and-notify, one that looks after it sees the flag.
//!   So a stop is never missed (STOP-5).
//! * Read at the end of each iteration (`run_forever` returns when it is set,
//!   STOP-1) and when computing the poll timeout (set means timeout 0).
//! * Cleared on every exit from `run_forever`, whatever the cause (STOP-1).
//! * Not cleared by `close()` and not an error on a stopped or closed loop: a
//!   stop requested while the loop is not running makes the next run do
//!   exactly one iteration (STOP-2).

use crate::sync::thread::ThreadId;
use crate::sync::{AtomicBool, Ordering};

/// The loop's stop flag; see the [module docs](self).
#[derive(Debug, Default)]
pub(crate) struct StopFlag(AtomicBool);

impl StopFlag {
    pub(crate) fn new() -> StopFlag {
        StopFlag(AtomicBool::new(false))
    }

    /// Requests a stop.
    pub(crate) fn set(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether a stop is requested.
    pub(crate) fn get(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// Clears the request (every exit from `run_forever`).
    pub(crate) fn clear(&self) {
        self.0.store(false, Ordering::SeqCst);
    }

    /// Seeded bug (loom mutant check): consumes the request.
    #[cfg(loopspec_mutant = "clear-stop-early")]
    pub(crate) fn take(&self) -> bool {
        self.0.swap(false, Ordering::SeqCst)
    }
}

/// The thread that holds a loop's loop-bound (non-`Send`) work.
#[derive(Debug, Clone)]
pub(crate) struct Home {
    /// The home thread.
    pub(crate) thread: ThreadId,
    /// Its name as SPEC.md POLICY-9 maps it, for error messages.
    pub(crate) name: String,
}

/// Run state of one loop. See the field docs for the invariants.
#[derive(Debug, Default)]
pub(crate) struct RunState {
    /// `Some(t)` exactly while thread `t` is inside `run_forever` (or
    /// `run_until_complete`) for this loop; `is_running()` reads it.
    ///
    /// * Set only after every run check passed (closed, already running,
    ///   another loop running in this thread, home thread), in that order, so a
    ///   refused run changes nothing (LIFE-6).
    /// * Cleared by the run guard on every exit, normal or not.
    /// * At most one thread at a time: the check and the set happen under one
    ///   lock, so two threads racing to run the same loop cannot both pass.
    pub(crate) running: Option<ThreadId>,

    /// Set once by `close()`, never cleared.
    ///
    /// * Only set while `running` is `None` (`close()` on a running loop is
    ///   refused with "Cannot close a running event loop").
    /// * Once set, no submission is accepted: `close()` also sets the inbox
    ///   word's `CLOSED` bit, which every cross-thread submission's announce
    ///   reads in the same atomic step, and then empties the inbox (see
    ///   `inbox`; XTHREAD rules build on this).
    pub(crate) closed: bool,

    /// The thread whose loop-bound half (ready queue, timers, tasks) currently
    /// exists, if any.
    ///
    /// * Claimed by the first loop-bound call made while it is `None`: the
    ///   scheduling calls, `create_task`, a run, `wrap_future`, completing a
    ///   future with callbacks (everything that goes through `with_half`).
    /// * While `running` is `Some(t)`, `home` is `Some(t)`.
    /// * Released when a run ends and the half is empty (no ready callbacks,
    ///   no pending timers, no unfinished tasks, no held values), by
    ///   `close()`, and when the home thread exits (its loop-bound work is
    ///   dropped with it; its taken-in submissions go back to the inbox).
    pub(crate) home: Option<Home>,

    /// Incremented on every claim of `home`, so a thread can tell its own
    /// loop-bound half from a stale one left over from an earlier claim.
    pub(crate) epoch: u64,
}
