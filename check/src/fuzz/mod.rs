//! Operation interpreters for fuzzing: the cargo-fuzz targets of `fuzz/` run
//! them, and `check/tests/fuzz_replay.rs` replays their corpora on stable.
//!
//! Two entry points decode bytes with `arbitrary` into a program, run it on
//! the reference loop and check the result against a small sequential model.
//! A violated invariant is a panic with the program and the reason; any other
//! panic that escapes is a failure too.
//!
//! * [`run_ops`]: up to [`OPS_MAX`] operations over three threads and a few
//!   virtual-clock loops — new/set/get loop, `call_soon`, `call_later`
//!   (local and `Send`), `call_soon_threadsafe`, cancelling handles, tasks
//!   (local and `Send`, with scripted bodies that yield, sleep, await,
//!   gather, wait and `wait_for`), plain futures, runs (one iteration,
//!   `run_until_complete`, `run_forever` + stop), stop, close,
//!   `run_coroutine_threadsafe` (local and `Send`), `wrap_future`,
//!   concurrent futures,
//!   exception handlers, panics in callbacks, tasks, handlers and `Drop`
//!   impls, and helper threads that exit. The threads run in lock-step: the
//!   coordinator hands one operation at a time to the thread that performs
//!   it and waits for it, so every program is deterministic and the model is
//!   exact where SPEC.md is (which call fails with which error, which
//!   callbacks one iteration runs, what `close()` drops, where a loop's
//!   local work lives, that the loop's own work runs on whichever thread
//!   runs the loop and goes with no thread) and checks allowed outcome sets
//!   elsewhere.
//! * [`run_chain`]: cross-thread chains under real concurrency — a loop
//!   running on its own thread, `run_coroutine_threadsafe` onto it,
//!   `wrap_future` of the results onto a second loop, workers completing
//!   concurrent futures, cancels of either side and closes racing with
//!   completions. Interleavings vary, so it checks outcome sets: each future
//!   reaches one final state consistent with its source (CHAIN-2, CHAIN-7),
//!   nothing is scheduled onto a closed loop (CHAIN-6), every concurrent
//!   future of `run_coroutine_threadsafe` is done once its loop is closed
//!   (XTHREAD-6), and every accepted callback ran at most once and was
//!   dropped exactly once (XTHREAD-3).
//!
//! Both check, at the end, after every loop is closed and every thread has
//! exited: every callback accepted ran at most once and was dropped exactly
//! once (LIFE-7, THREAD-4/5, XTHREAD-3); every task's future was dropped; the
//! exception handler only saw the reports SPEC.md describes, with our own
//! intentional panics. Every program terminates: operations, script steps and
//! spawned callbacks are bounded, every run has a stop timer, and every
//! thread is stopped and joined.
//!
//! # Bugs found
//!
//! Each has a regression test (`regression_*` in loopspec's panic-safety tests),
//! and the interpreters no longer step around them:
//!
//! 1. `close()` emptied the loop-bound half in one `catch_unwind`: the first
//!    panicking `Drop` stopped the rest (pending tasks were neither destroyed
//!    nor reported, TASK-8), a second aborted the process, and a destroyed
//!    task whose future panicked in `Drop` kept what it awaited (its
//!    `run_coroutine_threadsafe` future stayed pending). Now every item is
//!    dropped on its own and each panic is reported
//!    (`Exception while dropping ...`).
//! 2. A home thread's exit dropped its loop-bound work in a thread-local
//!    destructor without catching panics: a panicking `Drop` aborted.
//! 3. `Handle::cancel()` of a `call_soon_threadsafe` callback let the
//!    callback's `Drop` panic out of `cancel()`.
//! 4. Cancelled timers were dropped outside any `catch_unwind`, so a
//!    panicking `Drop` came out of `run_forever` mid-iteration; so did the
//!    drop of a released half at the end of a run.
//!
//! Intentional panics carry the prefix of [`INTENTIONAL_PANIC`];
//! [`install_panic_hook`] keeps them quiet (and keeps libFuzzer's hook from
//! aborting on them) while any other panic reaches the previous hook.
//!
//! # Modules
//!
//! * `program`: the programs of `run_ops`, how bytes decode to them, and
//!   how a program is encoded back (to rewrite the corpus when `Op` grows).
//! * `record`: what user code records — the log shared by callbacks, task
//!   bodies and the guards in their data.
//! * `callback`, `body`: the callbacks and task bodies programs schedule.
//! * `judge`: what a finished task or an exception handler's report may be.
//! * `worker`: the lock-step threads of `run_ops`.
//! * `ops`: `run_ops`, its model and one method per operation.
//! * `chain`: `run_chain`, its program and one method per operation.

/// `Err(format!(...))` out of the enclosing function unless `$cond` holds.
/// Defined before the modules, so every one of them sees it.
macro_rules! ensure {
    ($cond:expr, $($msg:tt)*) => {{
        let holds: bool = $cond;
        if !holds {
            return Err(format!($($msg)*));
        }
    }};
}

mod body;
mod callback;
mod chain;
mod judge;
mod ops;
mod program;
mod record;
mod worker;

pub use chain::{describe_chain, run_chain};
pub use ops::run_ops;
pub use program::{OPS_MAX, dense_ops_program, describe_ops, reencode_ops};

use loopspec::Error;
use std::any::Any;
use std::sync::Once;

/// The payload of the panics the programs raise on purpose.
pub const INTENTIONAL_PANIC: &str = "loopspec-fuzz: intentional panic";
/// The payload of the panics raised on purpose by `Drop` impls.
pub const INTENTIONAL_DROP_PANIC: &str = "loopspec-fuzz: intentional panic in Drop";

/// Whether a panic payload is one of the interpreter's own.
pub fn is_intentional(payload: &(dyn Any + Send)) -> bool {
    let s = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
    s.is_some_and(|s| s.starts_with("loopspec-fuzz: intentional"))
}

pub(crate) fn is_intentional_error(e: &Error) -> bool {
    matches!(e, Error::Panic(m) if m.starts_with("loopspec-fuzz: intentional"))
}

/// Installs (once) a panic hook that is silent for the interpreter's
/// intentional panics and hands every other panic to the hook that was
/// installed before (libFuzzer's, which aborts, or the default one).
pub fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !is_intentional(info.payload()) {
                previous(info);
            }
        }));
    });
}

pub(crate) fn panic_message(p: &(dyn Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "<non-string panic>".into())
}
