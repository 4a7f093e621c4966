//! [`ConcurrentFuture<T>`]: a thread-safe result slot, like
//! `concurrent.futures.Future`.
//!
//! # States
//!
//! * `Pending` — initial. `cancel()` moves it to `Cancelled`;
//!   `set_running_or_notify_cancel()` to `Running`; `set_result` /
//!   `set_exception` to `Finished`.
//! * `Running` — the work has started. It can no longer be cancelled
//!   (`cancel()` returns false); it can finish.
//! * `Cancelled` — cancelled; waiters were woken and callbacks ran.
//!   `set_running_or_notify_cancel()` moves it to `CancelledAndNotified` and
//!   returns false, telling the worker not to start.
//! * `CancelledAndNotified` — cancelled, and the worker knows.
//! * `Finished` — holds the result or the exception.
//!
//! Invariants: the outcome is held by `Finished` itself (`Status`), so it is
//! present exactly there; `Cancelled*` and `Finished` are terminal; every done callback runs exactly once —
//! in the thread that completes or cancels the future, or at once in the
//! registering thread if the future is already done (CONC-6); blocked
//! `result()` callers are woken on every transition to a done state.
//!
//! All state sits under one mutex from the sync shim (`src/sync.rs`) with a
//! condvar for blocking waiters, so loom can model it.

use crate::error::{Error, Result};
use crate::loop_core::{EventLoop, current_task, running_loop};
use crate::sync::{Arc, Condvar, Mutex};
use smallvec::SmallVec;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// The state of a [`ConcurrentFuture`]; see the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CfState {
    /// Not started, not cancelled.
    Pending,
    /// Started; can no longer be cancelled.
    Running,
    /// Cancelled; the worker has not been told yet.
    Cancelled,
    /// Cancelled, and `set_running_or_notify_cancel()` reported it.
    CancelledAndNotified,
    /// Done with a result or an exception.
    Finished,
}

impl CfState {
    /// The name Python prints: `PENDING`, `RUNNING`, `CANCELLED`, ...
    pub fn name(self) -> &'static str {
        match self {
            CfState::Pending => "PENDING",
            CfState::Running => "RUNNING",
            CfState::Cancelled => "CANCELLED",
            CfState::CancelledAndNotified => "CANCELLED_AND_NOTIFIED",
            CfState::Finished => "FINISHED",
        }
    }

    fn is_cancelled(self) -> bool {
        matches!(self, CfState::Cancelled | CfState::CancelledAndNotified)
    }

    fn is_done(self) -> bool {
        self.is_cancelled() || self == CfState::Finished
    }
}

/// Where a [`ConcurrentFuture`] is, with what only that state has: the
/// outcome lives in `Finished`. [`CfState`] is its public name.
enum Status<T> {
    /// Not started, not cancelled. Left by `cancel`, by
    /// `set_running_or_notify_cancel` and by a completion.
    Pending,
    /// Started by `set_running_or_notify_cancel`: `cancel` now fails.
    Running,
    /// Cancelled from `Pending`; the worker has not been told yet. Left
    /// only for `CancelledAndNotified`.
    Cancelled,
    /// Cancelled, and `set_running_or_notify_cancel` told the worker.
    /// Terminal.
    CancelledAndNotified,
    /// Completed by `set_result` / `set_exception` from `Pending` or
    /// `Running`, with that outcome. Terminal.
    Finished(Result<T>),
}

impl<T> Status<T> {
    /// Whether the future is cancelled or finished.
    fn is_done(&self) -> bool {
        !matches!(self, Status::Pending | Status::Running)
    }

    /// The public name of this state.
    fn public(&self) -> CfState {
        match self {
            Status::Pending => CfState::Pending,
            Status::Running => CfState::Running,
            Status::Cancelled => CfState::Cancelled,
            Status::CancelledAndNotified => CfState::CancelledAndNotified,
            Status::Finished(_) => CfState::Finished,
        }
    }
}

/// A done callback.
type Callback<T> = Box<dyn FnOnce(&ConcurrentFuture<T>) + Send>;

/// What the future's lock guards.
struct Inner<T> {
    /// Where the future is, and its outcome once finished. Changed only
    /// under the lock, by the transitions of the [module docs](self).
    status: Status<T>,
    /// Done callbacks in registration order, the first held inline (a
    /// bridged future has one). Taken, all at once, by the transition to a
    /// done state; never added to in a done state (they run at once then).
    callbacks: SmallVec<[Callback<T>; 1]>,
    /// Wakers of the executors awaiting the future, taken like `callbacks`.
    wakers: SmallVec<[Waker; 1]>,
    /// The loop whose thread completes this future, when known (set by
    /// `run_coroutine_threadsafe`): a blocking `result()` from that loop's
    /// running thread would deadlock, and is refused instead (XTHREAD-9).
    completing_loop: Option<EventLoop>,
}

/// What every handle of one future shares.
struct Shared<T> {
    /// The state, under the future's one lock.
    inner: Mutex<Inner<T>>,
    /// Signalled (to all) on every transition to a done state: blocked
    /// `result()` and `exception()` callers wait here.
    done: Condvar,
}

/// A thread-safe future, like `concurrent.futures.Future`; see the
/// [module docs](self). Cloning gives another handle to the same future.
///
/// It implements [`std::future::Future`], so any executor — tokio included —
/// can await it.
///
/// ```
/// use loopspec::ConcurrentFuture;
///
/// let cf = ConcurrentFuture::new();
/// let worker = cf.clone();
/// std::thread::spawn(move || {
///     if worker.set_running_or_notify_cancel().unwrap() {
///         worker.set_result(42).unwrap();
///     }
/// });
/// assert_eq!(cf.result(None).unwrap(), 42);
/// ```
pub struct ConcurrentFuture<T> {
    /// Shared by every handle.
    shared: Arc<Shared<T>>,
}

impl<T> Clone for ConcurrentFuture<T> {
    fn clone(&self) -> Self {
        ConcurrentFuture {
            shared: self.shared.clone(),
        }
    }
}

impl<T> PartialEq for ConcurrentFuture<T> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}

impl<T> fmt::Debug for ConcurrentFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.shared.inner.lock();
        f.write_str(&repr(self, &inner))
    }
}

/// Python's repr, e.g. `<Future at 0x7f.. state=finished returned i32>`.
fn repr<T>(cf: &ConcurrentFuture<T>, inner: &Inner<T>) -> String {
    let addr = Arc::as_ptr(&cf.shared) as *const ();
    match &inner.status {
        Status::Finished(Ok(_)) => format!(
            "<Future at {addr:p} state=finished returned {}>",
            short_type_name::<T>()
        ),
        Status::Finished(Err(e)) => format!(
            "<Future at {addr:p} state=finished raised {}>",
            e.python_type()
        ),
        Status::Cancelled | Status::CancelledAndNotified => {
            format!("<Future at {addr:p} state=cancelled>")
        }
        s => format!(
            "<Future at {addr:p} state={}>",
            s.public().name().to_lowercase()
        ),
    }
}

fn short_type_name<T>() -> &'static str {
    let full = std::any::type_name::<T>();
    full.rsplit("::").next().unwrap_or(full)
}

impl<T: Send + 'static> Default for ConcurrentFuture<T> {
    fn default() -> Self {
        ConcurrentFuture::new()
    }
}

impl<T: Send + 'static> ConcurrentFuture<T> {
    /// A new pending future.
    pub fn new() -> ConcurrentFuture<T> {
        ConcurrentFuture {
            shared: Arc::new(Shared {
                inner: Mutex::new(Inner {
                    status: Status::Pending,
                    callbacks: SmallVec::new(),
                    wakers: SmallVec::new(),
                    completing_loop: None,
                }),
                done: Condvar::new(),
            }),
        }
    }

    pub(crate) fn set_completing_loop(&self, lp: &EventLoop) {
        self.shared.inner.lock().completing_loop = Some(lp.clone());
    }

    /// The current state.
    pub fn state(&self) -> CfState {
        self.shared.inner.lock().status.public()
    }

    /// Whether it is cancelled (with or without notification).
    pub fn cancelled(&self) -> bool {
        self.state().is_cancelled()
    }

    /// Whether the work is running.
    pub fn running(&self) -> bool {
        self.state() == CfState::Running
    }

    /// Whether it is cancelled or finished.
    pub fn done(&self) -> bool {
        self.state().is_done()
    }

    /// Cancels the future (CONC-3): false if it is running or finished; true
    /// if it was pending (waiters are woken, callbacks run in this thread) or
    /// already cancelled.
    pub fn cancel(&self) -> bool {
        let (callbacks, wakers) = {
            let mut inner = self.shared.inner.lock();
            match inner.status {
                // Seeded bug (loom mutant check): a running future can be
                // cancelled under its worker's feet.
                #[cfg(not(loopspec_mutant = "cancel-running"))]
                Status::Running => return false,
                Status::Finished(_) => return false,
                Status::Cancelled | Status::CancelledAndNotified => return true,
                _ => {}
            }
            inner.status = Status::Cancelled;
            (
                std::mem::take(&mut inner.callbacks),
                std::mem::take(&mut inner.wakers),
            )
        };
        self.shared.done.notify_all();
        self.invoke(callbacks, wakers);
        true
    }

    /// Called by the worker before it starts (CONC-4): `Ok(true)` moves a
    /// pending future to running; `Ok(false)` means it was cancelled (now
    /// `CancelledAndNotified`) and the work must not start; any other state is
    /// `RuntimeError: Future in unexpected state`.
    pub fn set_running_or_notify_cancel(&self) -> Result<bool> {
        let mut inner = self.shared.inner.lock();
        match inner.status {
            Status::Pending => {
                inner.status = Status::Running;
                Ok(true)
            }
            Status::Cancelled => {
                inner.status = Status::CancelledAndNotified;
                Ok(false)
            }
            ref other => {
                let state = other.public();
                let r = repr(self, &inner);
                drop(inner);
                eprintln!("Future {r} in unexpected state: {}", state.name());
                Err(Error::UnexpectedState)
            }
        }
    }

    /// Finishes with `value` (CONC-5), from pending or running. A cancelled or
    /// finished future refuses: `InvalidStateError: STATE: <Future ...>`.
    pub fn set_result(&self, value: T) -> Result<()> {
        self.finish(Ok(value))
    }

    /// Finishes with the exception `e`; see [`set_result`](Self::set_result).
    pub fn set_exception(&self, e: Error) -> Result<()> {
        self.finish(Err(e))
    }

    /// Finishes with `outcome` (a result or an exception), as `set_result`
    /// or `set_exception` would.
    pub(crate) fn finish(&self, outcome: Result<T>) -> Result<()> {
        let (callbacks, wakers) = {
            let mut inner = self.shared.inner.lock();
            if inner.status.is_done() {
                return Err(Error::ConcurrentInvalidState {
                    message: format!("{}: {}", inner.status.public().name(), repr(self, &inner)),
                });
            }
            inner.status = Status::Finished(outcome);
            (
                std::mem::take(&mut inner.callbacks),
                std::mem::take(&mut inner.wakers),
            )
        };
        // Seeded bug (loom mutant check): blocked waiters are not woken.
        #[cfg(not(loopspec_mutant = "cf-no-notify"))]
        self.shared.done.notify_all();
        self.invoke(callbacks, wakers);
        Ok(())
    }

    /// Runs done callbacks in this thread; a panicking one is reported and
    /// the rest still run (CONC-6).
    fn invoke(&self, callbacks: SmallVec<[Callback<T>; 1]>, wakers: SmallVec<[Waker; 1]>) {
        for cb in callbacks {
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| cb(self))) {
                eprintln!(
                    "exception calling callback for {self:?}: {:?}",
                    Error::from_panic(panic)
                );
            }
        }
        for w in wakers {
            w.wake();
        }
    }

    /// Adds a done callback: it runs in the thread that completes or cancels
    /// the future, or at once in this thread if the future is done (CONC-6).
    pub fn add_done_callback(&self, cb: impl FnOnce(&ConcurrentFuture<T>) + Send + 'static) {
        // Seeded bug (loom mutant check): check "done" and register in two
        // critical sections, so a completion in between loses the callback.
        #[cfg(loopspec_mutant = "callback-lost")]
        {
            let done = self.shared.inner.lock().status.is_done();
            if !done {
                self.shared.inner.lock().callbacks.push(Box::new(cb));
                return;
            }
        }
        #[cfg(not(loopspec_mutant = "callback-lost"))]
        {
            let mut inner = self.shared.inner.lock();
            if !inner.status.is_done() {
                inner.callbacks.push(Box::new(cb));
                return;
            }
        }
        self.invoke(
            smallvec::smallvec![Box::new(cb) as Callback<T>],
            SmallVec::new(),
        );
    }

    /// Blocks until the future is done or `timeout` passes (`None`: no
    /// limit), then reads the done state with `read`.
    fn wait_then<R>(
        &self,
        timeout: Option<Duration>,
        read: impl FnOnce(&Inner<T>) -> R,
    ) -> Result<R> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut inner = self.shared.inner.lock();
        loop {
            if inner.status.is_done() {
                return Ok(read(&inner));
            }
            if deadline.is_none()
                && let Some(lp) = &inner.completing_loop
                && running_loop().as_ref() == Some(lp)
            {
                return Err(Error::ResultFromLoopThread);
            }
            match deadline {
                None => inner = self.shared.done.wait(inner),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Err(Error::Timeout);
                    }
                    inner = self.shared.done.wait_timeout(inner, d - now);
                }
            }
        }
    }

    /// The result, waiting up to `timeout` (CONC-2): `Err(Timeout)` when it
    /// passes, `Err(Cancelled(None))` for a cancelled future, the exception
    /// for one finished with an exception. Without a timeout, called from
    /// the thread running the loop that would complete it, it fails at once
    /// with [`Error::ResultFromLoopThread`] instead of deadlocking (XTHREAD-9).
    pub fn result(&self, timeout: Option<Duration>) -> Result<T>
    where
        T: Clone,
    {
        self.wait_then(timeout, |inner| {
            read(inner).unwrap_or(Err(Error::Cancelled(None)))
        })?
    }

    /// The exception, waiting up to `timeout`: `Ok(None)` after a result;
    /// errors as [`result`](Self::result).
    pub fn exception(&self, timeout: Option<Duration>) -> Result<Option<Error>> {
        self.wait_then(timeout, |inner| match &inner.status {
            Status::Finished(Ok(_)) => Ok(None),
            Status::Finished(Err(e)) => Ok(Some(e.clone())),
            _ => Err(Error::Cancelled(None)),
        })?
    }

    /// The outcome: `Some` exactly when the future is done (a cancelled one
    /// reads as `Err(Cancelled(None))`).
    pub(crate) fn outcome(&self) -> Option<Result<T>>
    where
        T: Clone,
    {
        read(&self.shared.inner.lock())
    }
}

/// What a reader of the future gets, `None` until it is done.
fn read<T: Clone>(inner: &Inner<T>) -> Option<Result<T>> {
    match &inner.status {
        Status::Pending | Status::Running => None,
        Status::Cancelled | Status::CancelledAndNotified => Some(Err(Error::Cancelled(None))),
        Status::Finished(outcome) => Some(outcome.clone()),
    }
}

impl<T: Clone + Send + 'static> std::future::Future for ConcurrentFuture<T> {
    type Output = Result<T>;

    /// Ready once done; otherwise the waker is called by whichever thread
    /// completes or cancels the future. Inside a loopspec task, a pending
    /// cancellation of the task is delivered here (TASK-15).
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        if let Some(exc) = current_task().and_then(|t| t.take_throw()) {
            return Poll::Ready(Err(exc));
        }
        let mut inner = self.shared.inner.lock();
        if let Some(outcome) = read(&inner) {
            return Poll::Ready(outcome);
        }
        if !inner.wakers.iter().any(|w| w.will_wake(cx.waker())) {
            inner.wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}
