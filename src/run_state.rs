//! The loop's run state: who runs it, whether a stop was requested, whether it
//! is closed, and which thread holds its loop-bound work.
//!
//! `RunState` lives in the loop's shared state under its own lock, the
//! run-state lock: every run check and every claim of the loop's home is
//! made under it (`src/event_loop/lifecycle.rs`, `src/loop_core/registry.rs`). Each
//! field's invariants are written next to it; SPEC.md rules cite them
//! (LIFE-*, STOP-*, THREAD-*). Whether the loop is woken, and whether a
//! cross-thread submission is accepted, is the inbox's state, not this
//! (`src/inbox/`).
//!
//! # The stop flag
//!
//! `stopping` is an atomic next to the lock (`StopFlag`), so the loop can
//! check it after every iteration without locking:
//!
//! * Set by `stop()` from any thread, which then calls the inbox's `wake`
//!   (under the inbox lock): a loop that decided to park before the flag was
//!   set is woken by it; one that looks after it sees the flag, which the
//!   inbox's `park` reads under that lock. So a stop is never missed
//!   (STOP-5).
//! * Read at the end of each iteration (`run_forever` returns when it is set,
//!   STOP-1) and before parking (set means timeout 0).
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

    /// Seeded bug (`clear-stop-early`): consumes the request.
    #[cfg(loopspec_mutant = "clear-stop-early")]
    pub(crate) fn take(&self) -> bool {
        self.0.swap(false, Ordering::SeqCst)
    }
}

/// The thread that holds a loop's loop-bound (non-`Send`) work: its home
/// thread (the work itself is its [`Home`](crate::home::Home)).
#[derive(Debug, Clone)]
pub(crate) struct HomeThread {
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
    /// * Set before `close()` closes the inbox, whose `CLOSED` bit is what
    ///   refuses cross-thread submissions: every announce reads it in the
    ///   same atomic step, and the inbox's close returns what was accepted
    ///   before (XTHREAD-3, `src/inbox/`). This flag is what loop-bound calls
    ///   and runs check, under this lock (LIFE-8).
    pub(crate) closed: bool,

    /// The thread whose [`Home`](crate::home::Home) (ready queue, timers,
    /// tasks) currently exists, if any.
    ///
    /// * Claimed by the first loop-bound call made while it is `None`: the
    ///   scheduling calls, `create_task`, a run, `wrap_future`, completing a
    ///   future with callbacks (everything that goes through `with_home`).
    /// * While `running` is `Some(t)`, `home` is `Some(t)`.
    /// * Released when a run ends and the home is empty (no ready callbacks,
    ///   no pending timers, no unfinished tasks, nothing stashed), by
    ///   `close()` on the home thread, and when the home thread exits (its
    ///   loop-bound work is dropped with it; the submissions it had taken in
    ///   are handed back to the inbox first).
    pub(crate) home: Option<HomeThread>,

    /// Incremented on every claim of `home`, so a thread can tell its own
    /// home of the loop from a stale one left over from an earlier claim.
    pub(crate) epoch: u64,
}
