//! What user code records: the log shared by callbacks, task bodies and the
//! guards in their data, which the model reads after every operation.

use super::INTENTIONAL_DROP_PANIC;
use super::INTENTIONAL_PANIC;
use loopspec::{EventLoop, ExceptionContext, Handle};
use std::cell::Cell;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;

thread_local! {
    /// The interpreter's index of this thread (usize::MAX: not one of ours).
    pub(crate) static WHO: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// `WHO` of a thread that is exiting (its thread-locals are being dropped).
pub(crate) const EXITING: usize = usize::MAX - 1;

pub(crate) fn who() -> usize {
    WHO.with(Cell::get)
}

#[derive(Debug, Clone, Default)]
pub(crate) struct CbObs {
    pub(crate) lp: usize,
    pub(crate) ran: u32,
    pub(crate) dropped: u32,
    pub(crate) ran_thread: usize,
    pub(crate) ran_time: f64,
    pub(crate) ran_at: usize,
    /// Its data's `Drop` panicked.
    pub(crate) drop_panicked: bool,
    /// Scheduled with an asyncio-named call (`Send`, the loop's work), not
    /// a `*_local` one: what its `Spawn` action uses too.
    pub(crate) send: bool,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct TaskObs {
    pub(crate) steps: Vec<usize>,
    pub(crate) ended: bool,
    pub(crate) propagated: bool,
    pub(crate) coro_dropped: u32,
    /// The task exists: its future's data may panic in `Drop` from now on.
    /// (A coroutine refused by a call is dropped inside that call, and a
    /// panic there would leak the call's return value: a Rust limitation,
    /// rust-lang/rust#47949, not the loop's.)
    pub(crate) armed: bool,
    /// Its loop's index.
    pub(crate) lp: usize,
    /// The thread (`who()`) of every poll of its coroutine, in order.
    pub(crate) polls: Vec<usize>,
}

#[derive(Default)]
pub(crate) struct Log {
    pub(crate) cbs: Vec<CbObs>,
    /// Callback ids in the order they ran.
    pub(crate) ran_order: Vec<usize>,
    /// Handles of accepted callbacks, for `Cancel` actions and ops.
    pub(crate) handles: Vec<Handle>,
    pub(crate) handle_cb: Vec<usize>,
    pub(crate) loops: Vec<EventLoop>,
    pub(crate) tasks: Vec<TaskObs>,
    /// Exception handler calls: (loop index, context).
    pub(crate) exceptions: Vec<(usize, ExceptionContext)>,
    pub(crate) violations: Vec<String>,
    /// Tasks that a `wait_for` or a gather may have cancelled.
    pub(crate) cancel_touched: Vec<usize>,
}

pub(crate) type Shared = Arc<Mutex<Log>>;

pub(crate) fn lock(s: &Shared) -> MutexGuard<'_, Log> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn violation(s: &Shared, msg: String) {
    lock(s).violations.push(msg);
}

pub(crate) enum GuardOf {
    Cb(usize),
    Coro(usize),
}

/// User data captured by a callback or a task's future: records its drop,
/// and panics in `Drop` when asked to (not while already panicking).
pub(crate) struct Guard {
    pub(crate) log: Shared,
    pub(crate) of: GuardOf,
    pub(crate) panicky: bool,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let (armed, lp) = {
            let mut l = lock(&self.log);
            let (armed, lp) = match self.of {
                GuardOf::Cb(i) => {
                    l.cbs[i].dropped += 1;
                    (true, l.cbs[i].lp)
                }
                GuardOf::Coro(i) => {
                    l.tasks[i].coro_dropped += 1;
                    (l.tasks[i].armed, l.tasks[i].lp)
                }
            };
            (armed, l.loops.get(lp).cloned())
        };
        // A panic while another unwinds would abort the process (Rust's
        // rule, not the loop's), so the data does not panic then.
        let _ = lp;
        if self.panicky && !thread::panicking() && armed {
            if let GuardOf::Cb(i) = self.of {
                lock(&self.log).cbs[i].drop_panicked = true;
            }
            std::panic::panic_any(INTENTIONAL_DROP_PANIC);
        }
    }
}

pub(crate) fn install_handler(log: &Shared, lp: &EventLoop, index: usize, panicky: bool) {
    let log = log.clone();
    lp.set_exception_handler(Some(std::sync::Arc::new(
        move |_lp: &EventLoop, ctx: &ExceptionContext| {
            lock(&log).exceptions.push((index, ctx.clone()));
            if panicky {
                std::panic::panic_any(INTENTIONAL_PANIC);
            }
        },
    )));
}
