//! [`EventLoop::run_in_executor`]: blocking work off the loop (SPEC.md
//! EXEC-*).
//!
//! As in asyncio, `run_in_executor` submits the function to an
//! [`Executor`] — the loop's default [`ThreadPool`] unless one is given —
//! which completes a [`ConcurrentFuture`] in one of its threads, and returns
//! [`wrap_future`] of it: the loop future completes in the iteration after the
//! work finishes. The pool itself is in `src/thread_pool.rs`.

use crate::chain::wrap_future;
use crate::concurrent::ConcurrentFuture;
use crate::error::{Error, Result};
use crate::event_loop::EventLoop;
use crate::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};

pub use crate::thread_pool::{Executor, Job, ThreadPool};

impl EventLoop {
    /// Runs `f` on `executor` (the loop's default [`ThreadPool`] when `None`)
    /// and returns a loop future for its outcome (EXEC-1): asyncio's
    /// `run_in_executor`. `Err` returned by `f`, or a panic in it, becomes the
    /// future's exception. Cancelling the future before the job starts keeps
    /// it from running (EXEC-3).
    ///
    /// Fails on a closed loop. The future is the loop's work: any thread may
    /// call this (THREAD-1, THREAD-8).
    ///
    /// ```
    /// use loopspec::{ClockKind, EventLoop};
    ///
    /// let lp = EventLoop::with_clock(ClockKind::Virtual);
    /// let fut = lp.run_in_executor(None, || Ok(std::thread::current().name().unwrap().to_string()))
    ///     .unwrap();
    /// assert_eq!(lp.run_until_complete(fut).unwrap(), "asyncio_0");
    /// lp.close().unwrap();
    /// ```
    pub fn run_in_executor<T, F>(&self, executor: Option<&dyn Executor>, f: F) -> Result<Future<T>>
    where
        T: Send + Clone + 'static,
        F: FnOnce() -> Result<T> + Send + 'static,
    {
        if self.is_closed() {
            return Err(Error::Closed);
        }
        let cf = ConcurrentFuture::new();
        let dest = wrap_future(&cf, self)?;
        let job_cf = cf.clone();
        let job: Job = Box::new(move || {
            if job_cf.set_running_or_notify_cancel() != Ok(true) {
                return;
            }
            let outcome = match catch_unwind(AssertUnwindSafe(f)) {
                Ok(outcome) => outcome,
                Err(panic) => Err(Error::from_panic(panic)),
            };
            let _ = job_cf.finish(outcome);
        });
        let submitted = match executor {
            Some(e) => e.submit(job),
            None => self.default_executor().submit(job),
        };
        if let Err(e) = submitted {
            dest.cancel();
            return Err(e);
        }
        Ok(dest)
    }
}
