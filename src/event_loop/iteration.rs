//! One iteration of the loop: `run_once`, the heart of loopspec, as
//! `BaseEventLoop._run_once` is CPython's (SPEC.md SCHED-1).
//!
//! 1. Compute the poll timeout: 0 if a callback is ready or a stop is
//!    requested, else the time until the earliest timer, else none.
//! 2. Poll: wait for cross-thread submissions up to that timeout — park on
//!    the inbox; a virtual clock jumps forward instead (CLOCK-2) — then move
//!    them to the end of the ready queue.
//! 3. Move due timers to the end of the ready queue, in deadline order.
//! 4. Run exactly the entries that were ready at this point, skipping
//!    cancelled ones. Anything queued while they run waits for the next
//!    iteration.
//!
//! `run_forever` (`lifecycle.rs`) repeats this until a stop was requested at
//! the end of an iteration. The state an iteration works on is the loop's
//! [`Work`], taken for the run, and for local entries this thread's local
//! home of the loop; what wakes a parked loop is the inbox's business
//! (`src/inbox/`).

use crate::clock::{self, ClockKind};
use crate::error::{Error, ExceptionContext, drop_each};
use crate::handle::Handle;
use crate::home::work::Work;
use crate::home::{Ready, WAKER_CALLBACK, drop_timers};
use crate::loop_core::EventLoop;
use std::panic::{AssertUnwindSafe, catch_unwind};

impl EventLoop {
    /// One iteration of the loop; see the [module docs](self).
    pub(super) fn run_once(&self, work: &Work) {
        // Seeded bug (`clear-stop-early`): consume a stop requested before
        // the iteration, so the end-of-iteration check never sees it.
        #[cfg(loopspec_mutant = "clear-stop-early")]
        self.shared.stopping.take();
        // 1. Poll timeout: 0 if anything is ready (a requested stop is read
        //    in `poll`), else until the earliest timer.
        let mut cancelled = Vec::new();
        let timeout = if work.ready_len() > 0 {
            Some(0.0)
        } else if work.has_timers() {
            work.timer_timeout(self.time(), &mut cancelled)
        } else {
            None
        };
        // 2. Poll for cross-thread submissions.
        self.poll(work, timeout);
        // 3. Due timers join the end of the ready queue (the clock is read
        //    only when there are timers).
        if work.has_timers() {
            work.move_due_timers(self.time(), &mut cancelled);
        }
        if !cancelled.is_empty() {
            let mut panics = Vec::new();
            drop_timers(self.own_local().as_deref(), cancelled, &mut panics);
            self.report_drop_panics("a cancelled timer", panics);
        }
        // 4. Run exactly what is ready now.
        let ntodo = work.ready_len();
        for _ in 0..ntodo {
            let Some(entry) = work.pop_ready() else { break };
            self.run_ready(entry);
        }
    }

    /// Step 2 of an iteration: wait for submissions up to `timeout` seconds
    /// (`None`: no limit), then move them to the ready queue. A virtual clock
    /// advances by the timeout instead of waiting (CLOCK-2).
    fn poll(&self, work: &Work, timeout: Option<f64>) {
        let inbox = &self.shared.inbox;
        if timeout == Some(0.0) && !inbox.pending() {
            // Work is ready and, as far as the inbox says, nothing is
            // waiting in it. A submission racing with this look is taken in
            // the next iteration.
            return;
        }
        let jumps = timeout.is_some() && self.shared.clock.kind() == ClockKind::Virtual;
        if timeout != Some(0.0) && !jumps {
            // About to park (a virtual clock jumps to the deadline instead).
            self.spin_for_work();
        }
        match timeout {
            Some(t) if t <= 0.0 => {}
            Some(t) if jumps => {
                if !self.shared.stopping.get() && !inbox.pending() {
                    self.shared.clock.advance(t);
                }
            }
            // Parks unless a send is pending or a stop is requested (the
            // inbox reads both under its lock: no lost wake-up, no lost stop).
            _ => inbox.park(timeout.map(clock::timeout_duration), || {
                self.shared.stopping.get()
            }),
        }
        work.drain(inbox);
    }

    /// Before parking, spin briefly for a submission or a stop: a producer in
    /// the middle of a burst usually delivers within a microsecond, which is
    /// far cheaper than a park and a wake-up. Only the unlocked hints are
    /// read; the decision to park is still taken under the inbox lock. Loom
    /// models skip it (spinning only multiplies their interleavings), and so
    /// does a thread that may run on one CPU only: nobody can deliver while
    /// it spins there (the rule of adaptive mutexes and of Go's scheduler).
    fn spin_for_work(&self) {
        #[cfg(not(loom))]
        if !spinning_can_help() {
            return;
        }
        #[cfg(not(loom))]
        for i in 0..SPIN_ROUNDS {
            if self.shared.inbox.pending() || self.shared.stopping.get() {
                return;
            }
            if i < SPIN_ROUNDS - YIELD_ROUNDS {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }

    /// Runs one ready entry (step 4), reporting a panic to the exception
    /// handler (SCHED-7).
    fn run_ready(&self, entry: Ready) {
        // The handle's repr is made only if the callback panics.
        let (outcome, reported_as) = match entry {
            Ready::Submission(submission) => {
                // The node runs the callback unless it was cancelled (then
                // `cancel()` dropped it already), deciding under its lock.
                let Some(call) = submission.start() else {
                    return;
                };
                (
                    catch_unwind(AssertUnwindSafe(|| call.run())),
                    ReportedAs::Handle(call.into_handle()),
                )
            }
            Ready::Local(call) => {
                // The loop runs on its local home while it has local work (H5).
                let f = self.own_local().and_then(|l| l.take_callback(call.id()));
                if call.cancelled() {
                    let mut panics = Vec::new();
                    drop_each(f, &mut panics);
                    self.report_drop_panics("a cancelled callback", panics);
                    return;
                }
                // A local token's value is in the local home until the token
                // leaves the work (H6), and only that thread runs the loop.
                debug_assert!(f.is_some(), "a local token without its value (H6)");
                let Some(f) = f else { return };
                (
                    catch_unwind(AssertUnwindSafe(f)),
                    ReportedAs::Handle(call.into_handle()),
                )
            }
            Ready::Wake(waker) => (
                catch_unwind(AssertUnwindSafe(|| waker.wake())),
                ReportedAs::Named(WAKER_CALLBACK),
            ),
            Ready::DoneCallback(fut) => (
                catch_unwind(AssertUnwindSafe(|| fut.run_next())),
                ReportedAs::Named("Future done callback"),
            ),
            Ready::TaskStep(task) => return task.step(),
        };
        if let Err(panic) = outcome {
            let repr = match reported_as {
                ReportedAs::Handle(h) => format!("{h:?}"),
                ReportedAs::Named(name) => format!("<Handle {name}>"),
            };
            self.call_exception_handler(&ExceptionContext {
                message: format!("Exception in callback {repr}"),
                exception: Some(Error::from_panic(panic)),
                handle: Some(repr),
                ..ExceptionContext::default()
            });
        }
    }
}

/// What an "Exception in callback" report calls a ready entry that
/// panicked.
enum ReportedAs {
    /// The user's handle: its repr.
    Handle(Handle),
    /// An entry without a handle: `<Handle NAME>`.
    Named(&'static str),
}

/// How long the loop spins before parking: `SPIN_ROUNDS` checks of the inbox
/// hint, the last `YIELD_ROUNDS` of them yielding the CPU.
#[cfg(not(loom))]
const SPIN_ROUNDS: u32 = 32;
#[cfg(not(loom))]
const YIELD_ROUNDS: u32 = 8;

/// Whether the calling thread may run on more than one CPU, so that a
/// producer can deliver while the loop spins. Read once per thread (the
/// affinity mask a thread has when its loop first waits).
#[cfg(not(loom))]
fn spinning_can_help() -> bool {
    std::thread_local! {
        static MULTI_CPU: bool =
            std::thread::available_parallelism().is_ok_and(|n| n.get() > 1);
    }
    MULTI_CPU.with(|m| *m)
}
