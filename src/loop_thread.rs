//! [`LoopThread`]: a loop running forever on a thread of its own, stopped and
//! joined on request — the helper every asyncio bridge writes by hand
//! (SPEC.md XTHREAD-10).

use crate::concurrent::ConcurrentFuture;
use crate::error::{Error, Result};
use crate::event_loop::EventLoop;
use crate::runner::Runner;
use crate::sync::thread;
use std::fmt;

/// A loop running on its own thread until asked to stop, with a [`Runner`].
///
/// Hand it work with the thread-safe calls
/// ([`call_soon_threadsafe`](EventLoop::call_soon_threadsafe),
/// [`run_coroutine_threadsafe`](crate::run_coroutine_threadsafe)).
/// [`stop_and_join`](LoopThread::stop_and_join) ends the run and joins; on
/// its way out the thread closes its runner, which cancels the tasks still
/// pending, waits for them and closes the loop there (RUNNER-4). Dropping
/// the `LoopThread` does the same. A `stop()` from anyone else does not end
/// the thread: it runs the loop again.
///
/// ```
/// use loopspec::LoopThread;
///
/// let lt = LoopThread::spawn("io-loop").unwrap();
/// let cf = loopspec::run_coroutine_threadsafe(
///     async { Ok(std::thread::current().name().unwrap().to_string()) },
///     lt.event_loop(),
/// )
/// .unwrap();
/// assert_eq!(cf.result(None).unwrap(), "io-loop");
/// lt.stop_and_join().unwrap();
/// ```
pub struct LoopThread {
    /// The loop the thread runs.
    lp: EventLoop,
    /// Done when the thread is asked to finish: its runner's main task
    /// awaits it.
    shutdown: ConcurrentFuture<()>,
    /// The thread, until it is joined (`None` after: joining twice is a
    /// no-op).
    join: Option<thread::JoinHandle<Result<()>>>,
}

impl fmt::Debug for LoopThread {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<LoopThread {:?}>", self.lp)
    }
}

impl LoopThread {
    /// Starts a thread called `name` running a new real-clock loop.
    pub fn spawn(name: impl Into<String>) -> std::io::Result<LoopThread> {
        LoopThread::spawn_with(EventLoop::new(), name)
    }

    /// Starts a thread called `name` running `lp` (the runner's loop
    /// factory returns it). `lp` must not have loop-bound work on another
    /// thread (THREAD-2), or the run fails and
    /// [`stop_and_join`](LoopThread::stop_and_join) reports it.
    pub fn spawn_with(lp: EventLoop, name: impl Into<String>) -> std::io::Result<LoopThread> {
        let shutdown = ConcurrentFuture::new();
        let (factory_lp, done) = (lp.clone(), shutdown.clone());
        let join = thread::Builder::new()
            .name(name.into())
            .spawn(move || serve(Runner::with_loop_factory(move || factory_lp.clone()), done))?;
        Ok(LoopThread {
            lp,
            shutdown,
            join: Some(join),
        })
    }

    /// The loop.
    pub fn event_loop(&self) -> &EventLoop {
        &self.lp
    }

    /// Asks the thread to finish, and joins it. Returns the run's error if
    /// it failed, or [`Error::Panic`] if the thread panicked.
    pub fn stop_and_join(mut self) -> Result<()> {
        self.finish()
    }

    fn finish(&mut self) -> Result<()> {
        let Some(join) = self.join.take() else {
            return Ok(());
        };
        let _ = self.shutdown.set_result(());
        join.join().unwrap_or_else(|p| Err(Error::from_panic(p)))
    }
}

/// The thread's body: runs the runner's loop until `shutdown` is done, then
/// closes the runner. A `stop()` from elsewhere ends one run only (its
/// wrapper task stays pending until `shutdown` completes it too).
fn serve(mut runner: Runner, shutdown: ConcurrentFuture<()>) -> Result<()> {
    let result = loop {
        match runner.run(shutdown.clone()) {
            Err(Error::StoppedBeforeComplete) => continue,
            other => break other,
        }
    };
    runner.close();
    result
}

impl Drop for LoopThread {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}
