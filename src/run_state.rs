//! The loop's run state: who runs it, whether a stop was requested, whether it
//! is closed, and which thread holds its loop-bound work.
//!
//! [`RunState`] lives in the loop's shared state, under the same mutex as the
//! [inbox](crate::inbox), so that "closed" is checked atomically with every
//! cross-thread enqueue and "stop requested" atomically with the decision to
//! park. Each field's invariants are written next to it; SPEC.md rules cite
//! them (LIFE-*, STOP-*, THREAD-*).

use crate::sync::thread::ThreadId;

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

    /// Set by `stop()` from any thread; read at the end of each iteration
    /// (`run_forever` breaks when it is set) and when computing the poll
    /// timeout (a set flag means timeout 0).
    ///
    /// * Cleared on every exit from `run_forever`, whatever the cause (STOP-1).
    /// * Not cleared by `close()` and not an error on a stopped or closed loop:
    ///   a stop requested while the loop is not running makes the next run do
    ///   exactly one iteration (STOP-2).
    pub(crate) stopping: bool,

    /// Set once by `close()`, never cleared.
    ///
    /// * Only set while `running` is `None` (`close()` on a running loop is
    ///   refused with "Cannot close a running event loop").
    /// * Once set, no submission is accepted: every enqueue checks it under
    ///   the same lock, and `close()` empties the inbox in the same critical
    ///   section that sets it (XTHREAD rules build on this).
    pub(crate) closed: bool,

    /// The thread whose loop-bound half (ready queue, timers, tasks) currently
    /// exists, if any.
    ///
    /// * Claimed by the first loop-bound call (`call_soon`, `call_later`,
    ///   `call_at`, `create_task`, a run) made while it is `None`.
    /// * While `running` is `Some(t)`, `home` is `Some(t)`.
    /// * Released when a run ends and the half is empty (no ready callbacks,
    ///   no pending timers, no unfinished tasks), by `close()`, and when the
    ///   home thread exits (its queued work is dropped with it).
    pub(crate) home: Option<Home>,

    /// Incremented on every claim of `home`, so a thread can tell its own
    /// loop-bound half from a stale one left over from an earlier claim.
    pub(crate) epoch: u64,
}
