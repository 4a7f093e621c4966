//! A loop's life: [`run_forever`](EventLoop::run_forever),
//! [`run_until_complete`](EventLoop::run_until_complete),
//! [`stop`](EventLoop::stop) and [`close`](EventLoop::close) (SPEC.md
//! LIFE-*, STOP-*).
//!
//! A run takes the loop's work for the calling thread under the run-state
//! lock —
//! after every check passed, so that a refused run changes nothing (LIFE-6)
//! — then repeats one iteration (`iteration.rs`) until a stop was
//! requested at the end of one; its guard puts the work back and clears the
//! running state however it ends, and releases the local home if it is
//! empty (THREAD-3).

use crate::error::{Error, Result, drop_each};
use crate::future::{DoneCallback, Future};
use crate::home::drop_timers;
use crate::home::work::Work;
use crate::loop_core::{EventLoop, Running, current_thread_id, running_loop, set_running};
use crate::run_state::RunState;
use std::rc::Rc;
use std::sync::Arc;

/// Ends a run, however it ends: puts the work back and clears the running
/// state in one critical section (H3), releasing the local home if it is
/// empty (THREAD-3).
struct RunGuard<'a> {
    /// The loop being run.
    lp: &'a EventLoop,
    /// Its work, taken from the run state for the run.
    work: Rc<Work>,
}

impl Drop for RunGuard<'_> {
    fn drop(&mut self) {
        let local = set_running(None).and_then(|r| r.local);
        // A local home that is empty but for cancelled timers drops them now.
        let mut cancelled = Vec::new();
        if let Some(l) = &local {
            let timers = self.work.take_cancelled_local_timers();
            if !timers.is_empty() {
                drop_timers(Some(l), timers, &mut cancelled);
            }
        }
        let work = self.work.take();
        let released = {
            let mut st = self.lp.lock();
            let release = local.as_ref().is_some_and(|l| l.is_empty()) && !st.closed;
            if release {
                // Every local token's value is in the local home until the
                // token leaves the work: an empty home leaves none (H6).
                debug_assert!(
                    !work.has_local_tokens(),
                    "local tokens outlive their values"
                );
                st.local = None;
            }
            // Planted bug (`release-before-put-back`): the run is over for
            // other threads one critical section before its work is back.
            #[cfg(loopspec_mutant = "release-before-put-back")]
            {
                st.running = None;
                drop(st);
                st = self.lp.lock();
            }
            st.work = Some(work);
            st.running = None;
            // Seeded bug (`stop-survives-run`): a stop outlives the run.
            #[cfg(not(loopspec_mutant = "stop-survives-run"))]
            self.lp.shared.stopping.clear();
            release
        };
        self.lp.report_drop_panics("a cancelled timer", cancelled);
        if released {
            self.lp.drop_own_local();
        }
    }
}

impl EventLoop {
    /// The run checks, in asyncio's order: closed, already running, another
    /// loop running in this thread (LIFE-5), then the local home (THREAD-2).
    /// Changes nothing when one fails (LIFE-6).
    fn check_can_run(&self, st: &RunState) -> Result<()> {
        if st.closed {
            return Err(Error::Closed);
        }
        // Seeded bug (`double-run`): let a second thread past the running
        // and local home checks.
        #[cfg(not(loopspec_mutant = "double-run"))]
        if st.running.is_some() {
            return Err(Error::AlreadyRunning);
        }
        #[cfg(not(loopspec_mutant = "double-run"))]
        if running_loop().is_some() {
            return Err(Error::AnotherLoopRunning);
        }
        match &st.local {
            #[cfg(not(loopspec_mutant = "double-run"))]
            Some(home) if home.thread != current_thread_id() => Err(Error::BoundToThread {
                thread: home.name.clone(),
            }),
            _ => Ok(()),
        }
    }

    /// Starts a run on this thread: the checks, then the claim of the work,
    /// under one lock (H2), after any borrow by another thread ended.
    fn enter_run(&self) -> Result<RunGuard<'_>> {
        let work = {
            let st = self.lock();
            let mut st = self.wait_out_borrow(st);
            if let Err(e) = self.check_can_run(&st) {
                drop(st);
                if e == Error::Closed {
                    self.drop_own_local();
                }
                return Err(e);
            }
            // Planted bug (`claim-unlocked`): the claim in a critical section
            // of its own, after the checks' — two threads can pass them both.
            #[cfg(loopspec_mutant = "claim-unlocked")]
            let mut st = {
                drop(st);
                self.lock()
            };
            // H1: the work is here, since nobody runs or borrows the loop.
            let work = st.work.take();
            #[cfg(not(loopspec_mutant = "double-run"))]
            debug_assert!(work.is_some(), "H1: an idle loop's work is not in its slot");
            #[cfg(not(loopspec_mutant = "double-run"))]
            let Some(work) = work else {
                return Err(Error::AlreadyRunning);
            };
            // Seeded bug (`double-run`): a second run goes ahead without it.
            #[cfg(loopspec_mutant = "double-run")]
            let work = work.unwrap_or_default();
            st.running = Some(current_thread_id());
            // Planted bug (`stop-cleared-at-claim`): "a new run starts fresh" —
            // a stop requested before the run is lost (STOP-2).
            #[cfg(loopspec_mutant = "stop-cleared-at-claim")]
            self.shared.stopping.clear();
            work
        };
        let work = Rc::new(work);
        let local = self.own_local();
        set_running(Some(Running {
            lp: self.clone(),
            work: work.clone(),
            local,
        }));
        Ok(RunGuard { lp: self, work })
    }

    /// Runs iterations until [`stop`](EventLoop::stop) is requested; returns
    /// after the iteration in which the stop was seen (STOP-1). A stop
    /// requested before the call makes exactly one iteration, with poll
    /// timeout 0 (STOP-2). The stop flag is cleared on every return.
    ///
    /// Errors, checked in this order before anything changes: [`Error::Closed`],
    /// [`Error::AlreadyRunning`] (from its own callbacks or from another thread),
    /// [`Error::AnotherLoopRunning`], [`Error::BoundToThread`].
    ///
    /// ```
    /// use loopspec::{ClockKind, EventLoop};
    ///
    /// let lp = EventLoop::with_clock(ClockKind::Virtual);
    /// let lp2 = lp.clone();
    /// lp.call_later(10.0, move || lp2.stop()).unwrap();
    /// lp.run_forever().unwrap();
    /// assert_eq!(lp.time(), 10.0);
    /// assert!(!lp.is_running());
    /// ```
    pub fn run_forever(&self) -> Result<()> {
        let run = self.enter_run()?;
        loop {
            self.run_once(&run.work);
            if self.shared.stopping.get() {
                break;
            }
        }
        drop(run);
        Ok(())
    }

    /// Runs the loop until `f` is done and returns its result (LIFE-2).
    ///
    /// `f` is a loopspec [`Future`] or [`Task`](crate::Task) of this loop, or
    /// any Rust future, which is wrapped in a new task. The loop stops one
    /// iteration after the future completes (STOP-6). If the loop stops
    /// first, this returns [`Error::StoppedBeforeComplete`] and the future
    /// stays pending (STOP-7).
    ///
    /// ```
    /// use loopspec::{ClockKind, EventLoop};
    ///
    /// let lp = EventLoop::with_clock(ClockKind::Virtual);
    /// assert_eq!(lp.run_until_complete(async { Ok(6 * 7) }).unwrap(), 42);
    /// ```
    pub fn run_until_complete<T, F>(&self, f: F) -> Result<T>
    where
        T: Clone + Send + 'static,
        F: std::future::Future<Output = Result<T>> + 'static,
    {
        let checked = self.check_can_run(&self.lock());
        if let Err(e) = checked {
            if e == Error::Closed {
                self.drop_own_local();
            }
            return Err(e);
        }
        let (fut, new_task) = self.ensure_future_inner(f)?;
        let stop_when_done: DoneCallback<T> = Arc::new(|fut: &Future<T>| {
            if !fut.cancelled() {
                // Reading the exception marks it retrieved (LIFE-4).
                let _ = fut.exception();
            }
            fut.get_loop().stop();
        });
        fut.add_done_callback(stop_when_done.clone())?;
        let run = self.run_forever();
        fut.remove_done_callback(&stop_when_done);
        if let Err(e) = run {
            if new_task && fut.done() && !fut.cancelled() {
                let _ = fut.exception();
            }
            return Err(e);
        }
        if !fut.done() {
            return Err(Error::StoppedBeforeComplete);
        }
        fut.result()
    }

    /// Requests a stop: `run_forever` returns after the current (or next)
    /// complete iteration (STOP-1). Callable from any thread; never an error,
    /// even on a stopped or closed loop. A parked loop is woken (STOP-5): the
    /// flag is set before the inbox's wake, and a parking loop reads it under
    /// the inbox lock, so the stop is never slept through.
    pub fn stop(&self) {
        self.shared.stopping.set();
        // Seeded bug (`stop-no-wake`): a stop does not wake a parked loop.
        #[cfg(not(loopspec_mutant = "stop-no-wake"))]
        self.shared.inbox.wake();
    }

    /// Closes the loop (LIFE-7): refused on a running loop; idempotent; drops
    /// every queued callback, timer and cross-thread submission without
    /// running it, and the futures of unfinished tasks (each reported as
    /// `Task was destroyed but it is pending!`), on the calling thread,
    /// whichever it is.
    ///
    /// Local work lives on the loop's local home thread: closing from
    /// another thread drops it there, at that thread's next call on the loop
    /// or when it exits (THREAD-5).
    pub fn close(&self) -> Result<()> {
        let me = current_thread_id();
        let (accepted, work, local_is_me) = {
            let st = self.lock();
            let mut st = self.wait_out_borrow(st);
            if st.running.is_some() {
                return Err(Error::CloseRunning);
            }
            if st.closed {
                drop(st);
                self.drop_own_local();
                return Ok(());
            }
            st.closed = true;
            // The inbox closes under the same lock, so that a thread that
            // sees `is_closed()` has its later sends refused (XTHREAD-3).
            // Sends accepted before come back, to be dropped below.
            // Seeded bug (`close-inbox-late`): the inbox closes after the
            // lock is released, leaving a window where the loop says closed
            // and still accepts.
            #[cfg(not(loopspec_mutant = "close-inbox-late"))]
            let accepted = self.shared.inbox.close();
            #[cfg(loopspec_mutant = "close-inbox-late")]
            let accepted = std::collections::VecDeque::new();
            // H1: a closed loop holds no work.
            let work = st.work.take();
            let local_is_me = st.local.as_ref().is_some_and(|h| h.thread == me);
            if local_is_me {
                st.local = None;
            }
            (accepted, work, local_is_me)
        };
        #[cfg(loopspec_mutant = "close-inbox-late")]
        let accepted = {
            let mut all = accepted;
            all.append(&mut self.shared.inbox.close());
            all
        };
        let mut panics = Vec::new();
        drop_each(accepted, &mut panics);
        self.report_drop_panics("a queued cross-thread callback", panics);
        let local = if local_is_me {
            self.take_own_local()
        } else {
            None
        };
        if let Some(work) = work {
            self.clear_work(&work, local.as_deref());
        }
        if let Some(local) = local {
            // What the work did not name (stashed values, say).
            self.clear_work(&Work::default(), Some(&local));
        }
        // The default executor is shut down without waiting (LIFE-7, EXEC-2).
        if let Some(pool) = self.shared.executor.lock().take() {
            crate::thread_pool::Executor::shutdown(&*pool, false);
        }
        Ok(())
    }
}
