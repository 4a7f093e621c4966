//! [`LoopThread`]: a loop running forever on a thread of its own, stopped and
//! joined on request — the helper every asyncio bridge writes by hand
//! (SPEC.md XTHREAD-10).

use crate::error::{Error, Result};
use crate::event_loop::EventLoop;
use crate::sync::{Arc, AtomicBool, Ordering, thread};
use std::fmt;

/// A loop running `run_forever` on its own thread.
///
/// Hand it work with the thread-safe calls
/// ([`call_soon_threadsafe`](EventLoop::call_soon_threadsafe),
/// [`run_coroutine_threadsafe`](crate::run_coroutine_threadsafe)).
/// [`stop_and_join`](LoopThread::stop_and_join) ends the run, closes the loop
/// on its thread (so its loop-bound work is dropped there) and joins; dropping
/// the `LoopThread` does the same. A `stop()` from anyone else does not end
/// the thread: it runs `run_forever` again.
///
/// ```
/// use loopspec::LoopThread;
///
/// let lt = LoopThread::spawn("io-loop").unwrap();
/// let cf = loopspec::run_coroutine_threadsafe(
///     || async { Ok(std::thread::current().name().unwrap().to_string()) },
///     lt.event_loop(),
/// )
/// .unwrap();
/// assert_eq!(cf.result(None).unwrap(), "io-loop");
/// lt.stop_and_join().unwrap();
/// ```
pub struct LoopThread {
    lp: EventLoop,
    shutdown: Arc<AtomicBool>,
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

    /// Starts a thread called `name` running `lp`. `lp` must not have
    /// loop-bound work on another thread (THREAD-2), or the run fails and
    /// [`stop_and_join`](LoopThread::stop_and_join) reports it.
    pub fn spawn_with(lp: EventLoop, name: impl Into<String>) -> std::io::Result<LoopThread> {
        let shutdown = Arc::new(AtomicBool::new(false));
        let (run_lp, run_shutdown) = (lp.clone(), shutdown.clone());
        let join = thread::Builder::new().name(name.into()).spawn(move || {
            let result = loop {
                if let Err(e) = run_lp.run_forever() {
                    break Err(e);
                }
                if run_shutdown.load(Ordering::Acquire) {
                    break Ok(());
                }
            };
            let closed = run_lp.close();
            result.and(closed)
        })?;
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

    /// Stops the loop, lets its thread close it, and joins the thread.
    /// Returns the run's error if it failed, or [`Error::Panic`] if the
    /// thread panicked.
    pub fn stop_and_join(mut self) -> Result<()> {
        self.finish()
    }

    fn finish(&mut self) -> Result<()> {
        let Some(join) = self.join.take() else {
            return Ok(());
        };
        self.shutdown.store(true, Ordering::Release);
        self.lp.stop();
        join.join().unwrap_or_else(|p| Err(Error::from_panic(p)))
    }
}

impl Drop for LoopThread {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}
