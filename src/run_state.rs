//! The loop's run state: who runs it, who borrows its work, whether a stop
//! was requested, whether it is closed, where its work is and which thread
//! holds its local work.
//!
//! `RunState` lives in the loop's shared state under its own lock, the
//! run-state lock: every run check, every claim of the loop's work and
//! every claim of its local home is made under it (`src/event_loop/lifecycle.rs`, `src/loop_core/registry.rs`). Each
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

use crate::home::work::Work;
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

/// The thread that holds a loop's local (non-`Send`) work: its local home
/// (the values themselves are in that thread's
/// [`LocalHome`](crate::home::local::LocalHome)).
#[derive(Debug, Clone)]
pub(crate) struct HomeThread {
    /// The local home thread.
    pub(crate) thread: ThreadId,
    /// Its name as SPEC.md POLICY-9 maps it, for error messages.
    pub(crate) name: String,
}

/// Run state of one loop. See the field docs for the invariants; the
/// hand-off of the work (H1–H6) is in `docs/send-work.md` §4.
pub(crate) struct RunState {
    /// `Some(t)` exactly while thread `t` is inside `run_forever` (or
    /// `run_until_complete`) for this loop; `is_running()` reads it.
    ///
    /// * Set only after every run check passed (closed, already running,
    ///   another loop running in this thread, local home), in that order, so
    ///   a refused run changes nothing (LIFE-6), and in the same critical
    ///   section that takes the work out of `work` (H2).
    /// * Cleared by the run guard on every exit, normal or not, in the same
    ///   critical section that puts the work back (H3).
    /// * At most one thread at a time: the check and the set happen under one
    ///   lock, so two threads racing to run the same loop cannot both pass.
    pub(crate) running: Option<ThreadId>,

    /// `Some(t)` while thread `t`, which does not run the loop, works on the
    /// loop's work for one call (a borrow: a scheduling call, a completion,
    /// a cancellation on an idle loop). Set with the work's take, cleared
    /// with its put-back, after which `handoff` is notified if a thread
    /// waits there (`handoff_waiters`). A borrow runs
    /// no user code (H4); every other claim of the work waits it out.
    pub(crate) borrowed: Option<ThreadId>,

    /// Set once by `close()`, never cleared.
    ///
    /// * Only set while `running` and `borrowed` are `None` (`close()` on a
    ///   running loop is refused with "Cannot close a running event loop";
    ///   it waits out a borrow).
    /// * Set before `close()` closes the inbox, whose `CLOSED` bit is what
    ///   refuses cross-thread submissions: every announce reads it in the
    ///   same atomic step, and the inbox's close returns what was accepted
    ///   before (XTHREAD-3, `src/inbox/`). This flag is what the scheduling
    ///   calls and runs check, under this lock (LIFE-8).
    pub(crate) closed: bool,

    /// The loop's work while nobody runs or borrows it (H1): `Some` exactly
    /// when `running` and `borrowed` are both `None` and the loop is not
    /// closed. Taken by a run or a borrow, put back at its end; taken for
    /// good by `close()`.
    pub(crate) work: Option<Work>,

    /// The thread whose [`LocalHome`](crate::home::local::LocalHome) holds
    /// the loop's local work, if any (H5: while it is `Some(h)`, only `h` may
    /// run the loop or schedule local work on it).
    ///
    /// * Claimed by the first local call made while it is `None`
    ///   (`call_soon_local`, `create_task_local`, `add_done_callback_local`,
    ///   a run of a coroutine, ...).
    /// * Released when a run on `h` ends with its local home empty, by
    ///   `close()` on `h`, and when `h` exits (its local work is dropped with
    ///   it, and its tokens are purged from the work in the same critical
    ///   section, H6).
    pub(crate) local: Option<HomeThread>,

    /// Incremented on every claim of `local`, so a thread can tell its own
    /// local home of the loop from a stale one left over from an earlier
    /// claim.
    pub(crate) epoch: u64,

    /// How many threads wait in `handoff` for a borrow to end. Incremented
    /// before each wait and decremented after it, under this lock; a
    /// borrow's put-back notifies `handoff` only when it is not zero (a
    /// notification is a system call, and almost every borrow has no one
    /// waiting).
    pub(crate) handoff_waiters: u32,
}

impl Default for RunState {
    fn default() -> RunState {
        RunState {
            running: None,
            borrowed: None,
            closed: false,
            work: Some(Work::default()),
            local: None,
            epoch: 0,
            handoff_waiters: 0,
        }
    }
}
