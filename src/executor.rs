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
use crate::profile::Profile;
use crate::sync::Arc;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

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
        // The default pool is fetched before anything is made, so that a
        // shut-down default executor (EXEC-6) makes no future.
        let default_pool;
        let executor: &dyn Executor = match executor {
            Some(e) => e,
            None => {
                default_pool = self.default_executor()?;
                &*default_pool
            }
        };
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
        if let Err(e) = executor.submit(job) {
            dest.cancel();
            return Err(e);
        }
        Ok(dest)
    }
}

/// How long asyncio's runner lets the default executor finish its jobs at
/// close, from 3.12 (`asyncio.constants.THREAD_JOIN_TIMEOUT`), in seconds.
pub const THREAD_JOIN_TIMEOUT: f64 = 300.0;

impl EventLoop {
    /// Makes `pool` the loop's default executor, the one
    /// [`run_in_executor(None, ..)`](EventLoop::run_in_executor) and
    /// [`to_thread`] use (EXEC-5): asyncio's `set_default_executor`. The
    /// pool it replaces is dropped, not waited for. Allowed on a closed loop,
    /// as in CPython (nothing will use it).
    ///
    /// Rust mapping: CPython 3.11+ refuses anything but a
    /// `ThreadPoolExecutor` (`TypeError: executor must be ThreadPoolExecutor
    /// instance`; 3.10 warned); here the type is the check.
    ///
    /// ```
    /// use loopspec::{ClockKind, EventLoop, ThreadPool};
    /// use std::sync::Arc;
    ///
    /// let lp = EventLoop::with_clock(ClockKind::Virtual);
    /// lp.set_default_executor(Arc::new(ThreadPool::new(1, "mine")));
    /// let fut = lp.run_in_executor(None, || Ok(std::thread::current().name().unwrap().to_string()))
    ///     .unwrap();
    /// assert_eq!(lp.run_until_complete(fut).unwrap(), "mine_0");
    /// lp.close().unwrap();
    /// ```
    pub fn set_default_executor(&self, pool: Arc<ThreadPool>) {
        let old = {
            let mut default = self.shared.executor.lock();
            let old = default.take_pool();
            default.set(pool);
            old
        };
        drop(old); // outside the lock: the last handle's drop shuts it down
    }

    /// asyncio's `shutdown_default_executor(timeout)`, as a coroutine
    /// (EXEC-6): from now on `run_in_executor(None, ..)` and [`to_thread`]
    /// fail with `Executor shutdown has been called`, whatever default
    /// executor is set later; the default executor (if one was ever started
    /// or set) is shut down, and the coroutine returns once its queued and
    /// running jobs are done and its threads have exited. The loop keeps
    /// running meanwhile: the waiting is done by a thread of its own.
    ///
    /// `timeout` bounds the wait from 3.13 (profiles `Py313` and later):
    /// when it runs out, the `RuntimeWarning` `The executor did not finishing
    /// joining its threads within {timeout} seconds.` is raised (see
    /// [`warnings`](crate::warnings)) and the coroutine returns; the jobs
    /// still run. Under `Py311` (3.11 has no `timeout`) and `Py312`
    /// (3.12 only bounds the join after the jobs are done, so it never
    /// warns) it waits without limit. loopspec measures the timeout in real
    /// time whatever the loop's clock: a virtual clock would otherwise jump
    /// past it while a job runs. A negative timeout counts as zero.
    ///
    /// ```
    /// use loopspec::{ClockKind, EventLoop, Error};
    ///
    /// let lp = EventLoop::with_clock(ClockKind::Virtual);
    /// let job = lp.run_in_executor(None, || Ok(1)).unwrap();
    /// assert_eq!(lp.run_until_complete(job).unwrap(), 1);
    /// lp.run_until_complete(lp.shutdown_default_executor(None)).unwrap();
    /// let err = lp.run_in_executor(None, || Ok(2)).unwrap_err();
    /// assert_eq!(err.to_string(), "Executor shutdown has been called");
    /// lp.close().unwrap();
    /// ```
    pub fn shutdown_default_executor(
        &self,
        timeout: Option<f64>,
    ) -> impl std::future::Future<Output = Result<()>> + Send + 'static {
        let lp = self.clone();
        async move {
            let Some(pool) = lp.shared.executor.lock().begin_shutdown() else {
                return Ok(());
            };
            let limit = match lp.profile() {
                Profile::Py311 | Profile::Py312 => None,
                _ => timeout,
            };
            let joined: Future<bool> = lp.create_future();
            let (done, home) = (joined.clone(), lp.clone());
            let waiting = pool.clone();
            let spawned = crate::sync::thread::Builder::new()
                .name("asyncio_shutdown".into())
                .spawn(move || {
                    let all =
                        waiting.shutdown_within(limit.map(|t| {
                            Duration::try_from_secs_f64(t.max(0.0)).unwrap_or(Duration::MAX)
                        }));
                    // A closed loop, or a cancelled wait: nobody to tell.
                    let _ = home.call_soon_threadsafe(move || {
                        let _ = done.set_result(all);
                    });
                });
            if spawned.is_err() {
                pool.shutdown(false);
                return Ok(());
            }
            if !joined.await? {
                crate::warnings::warn(
                    "RuntimeWarning",
                    format!(
                        "The executor did not finishing joining its threads within {} seconds.",
                        limit.unwrap_or_default()
                    ),
                );
            }
            Ok(())
        }
    }
}

/// asyncio's `to_thread(f)` (3.9+): runs `f` on the running loop's default
/// executor and returns its outcome (EXEC-8) — `run_in_executor(None, f)`
/// of the loop running the calling task. Fails with `no running event loop`
/// when polled outside a running loop, and with `Executor shutdown has been
/// called` after [`EventLoop::shutdown_default_executor`].
///
/// Cancelling the awaiting task cancels the job if it has not started
/// (EXEC-3); a job already running finishes, and a runner's close waits for
/// it (EXEC-7).
///
/// Rust mapping: CPython runs `f` in a copy of the caller's `contextvars`
/// context; Rust has no context variables, so nothing is copied — pass what
/// `f` needs by moving it into the closure.
///
/// ```
/// use loopspec::{ClockKind, EventLoop};
///
/// let lp = EventLoop::with_clock(ClockKind::Virtual);
/// let name = lp.run_until_complete(loopspec::to_thread(|| {
///     Ok(std::thread::current().name().unwrap().to_string())
/// }));
/// assert_eq!(name.unwrap(), "asyncio_0");
/// lp.close().unwrap();
/// ```
pub async fn to_thread<T, F>(f: F) -> Result<T>
where
    T: Send + Clone + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    let lp = crate::event_loop::get_running_loop()?;
    lp.run_in_executor(None, f)?.await
}
