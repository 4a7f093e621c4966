//! `asyncio.timeout`, `asyncio.timeout_at` and their context manager,
//! [`Timeout`] (SPEC.md TIMEOUT-*).
//!
//! `async with asyncio.timeout(d) as cm: <body>` is
//! `timeout(Some(d), |cm| async move { <body> }).await`: the body is a
//! closure that gets the [`Timeout`] handle and makes the coroutine the
//! context manager wraps. Entering needs a task of the running loop
//! (TIMEOUT-2); entering schedules `_on_timeout` at the deadline, which
//! cancels the task; leaving cancels that timer, and if the timeout expired
//! and the body ended with the `CancelledError` it caused — no other
//! cancellation request arrived since entering (`uncancel()` is back to the
//! count at entry) — the outcome is [`Error::Timeout`] (TIMEOUT-3,
//! TIMEOUT-4).
//!
//! How the `TimeoutError` chains the `CancelledError` (`__cause__`,
//! 3.12's `_insert_timeout_error`) has no counterpart: a Rust `Error`
//! carries no context (SPEC.md, Rust mapping).

use crate::error::{Error, Result};
use crate::event_loop::{EventLoop, get_running_loop};
use crate::handle::Handle;
use crate::sync::Mutex;
use crate::task::{TaskRef, current_task};
use std::fmt;
use std::sync::Arc;

/// Where a [`Timeout`] is in its life: asyncio's `_State`, whose values are
/// the words of the repr (the same in 3.11–3.15).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Made, not entered: `created`.
    Created,
    /// Entered, the deadline not reached: `active`.
    Entered,
    /// The deadline cancelled the task; the body has not ended: `expiring`.
    Expiring,
    /// Left after expiring: `expired`.
    Expired,
    /// Left without expiring: `finished`.
    Exited,
}

impl State {
    /// The word asyncio's repr and messages use.
    fn word(self) -> &'static str {
        match self {
            State::Created => "created",
            State::Entered => "active",
            State::Expiring => "expiring",
            State::Expired => "expired",
            State::Exited => "finished",
        }
    }
}

/// The state a [`Timeout`]'s clones and its timer callback share.
struct Inner {
    /// The life stage.
    state: State,
    /// The deadline in loop time; `None`: none.
    when: Option<f64>,
    /// The timer of `_on_timeout`, while one is scheduled.
    handler: Option<Handle>,
    /// The task that entered, and its loop.
    task: Option<(TaskRef, EventLoop)>,
    /// The task's `cancelling()` at entry.
    cancelling: u32,
}

/// The `cm` of `async with asyncio.timeout(d) as cm`: a `Clone` handle,
/// `Send + Sync` (TIMEOUT-1…8).
///
/// [`timeout`] and [`timeout_at`] make one and enter it around their body;
/// [`Timeout::new`] and [`Timeout::enter`] are `asyncio.Timeout(when)` and
/// `async with cm:` for the misuse cases (entering twice, rescheduling
/// before entering). Its `Debug` is asyncio's repr:
/// `<Timeout [active] when=12.5>`, `<Timeout [expired]>`.
///
/// ```
/// use loopspec::{ClockKind, Error, EventLoop};
///
/// let lp = EventLoop::with_clock(ClockKind::Virtual);
/// let out = lp.run_until_complete(loopspec::timeout(Some(1.0), |cm| async move {
///     assert_eq!(format!("{cm:?}"), "<Timeout [active] when=1.0>");
///     loopspec::sleep(5.0).await?;
///     Ok(())
/// }));
/// assert_eq!(out, Err(Error::Timeout));
/// assert_eq!(lp.time(), 1.0);
/// ```
#[derive(Clone)]
pub struct Timeout {
    /// Shared with the clones and the timer callback.
    inner: Arc<Mutex<Inner>>,
}

impl fmt::Debug for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.inner.lock();
        write!(f, "<Timeout [{}]", inner.state.word())?;
        if inner.state == State::Entered {
            match inner.when {
                Some(when) => write!(f, " when={}", py_round3(when))?,
                None => f.write_str(" when=None")?,
            }
        }
        f.write_str(">")
    }
}

/// Python's `repr(round(x, 3))` for the values a loop clock takes.
fn py_round3(x: f64) -> String {
    let r = (x * 1000.0).round() / 1000.0;
    let s = format!("{r}");
    if s.contains(['.', 'e', 'i', 'N']) {
        s
    } else {
        format!("{s}.0")
    }
}

impl Timeout {
    /// `asyncio.Timeout(when)`: a timeout not yet entered, with the
    /// deadline `when` in loop time (`None`: none).
    ///
    /// ```
    /// let cm = loopspec::Timeout::new(Some(3.0));
    /// assert_eq!(format!("{cm:?}"), "<Timeout [created]>");
    /// assert_eq!(cm.when(), Some(3.0));
    /// ```
    pub fn new(when: Option<f64>) -> Timeout {
        Timeout {
            inner: Arc::new(Mutex::new(Inner {
                state: State::Created,
                when,
                handler: None,
                task: None,
                cancelling: 0,
            })),
        }
    }

    /// The deadline in loop time, `None` if there is none.
    ///
    /// ```
    /// assert_eq!(loopspec::Timeout::new(None).when(), None);
    /// ```
    pub fn when(&self) -> Option<f64> {
        self.inner.lock().when
    }

    /// Moves the deadline (`None`: removes it); a deadline not in the future
    /// expires at the next iteration (TIMEOUT-5). Only an entered timeout
    /// that has not expired can move: `Timeout has not been entered`, or
    /// `Cannot change state of expiring Timeout` (`expired`, `finished`).
    /// From a thread other than the one running the loop it is refused as
    /// `call_at` is (THREAD-1), and nothing changes (TIMEOUT-8).
    ///
    /// ```
    /// let cm = loopspec::Timeout::new(Some(1.0));
    /// let err = cm.reschedule(Some(2.0)).unwrap_err();
    /// assert_eq!(err.to_string(), "Timeout has not been entered");
    /// ```
    pub fn reschedule(&self, when: Option<f64>) -> Result<()> {
        let mut inner = self.inner.lock();
        match inner.state {
            State::Entered => {}
            State::Created => return Err(Error::TimeoutNotEntered),
            state => {
                return Err(Error::TimeoutState {
                    state: state.word().into(),
                });
            }
        }
        let lp = match &inner.task {
            Some((_, lp)) => lp.clone(),
            None => return Err(Error::TimeoutNotEntered),
        };
        let handler = self.schedule(&lp, when)?;
        if let Some(old) = inner.handler.take() {
            old.cancel();
        }
        inner.when = when;
        inner.handler = handler;
        Ok(())
    }

    /// Schedules `_on_timeout` at `when` on `lp` (`call_soon` for a
    /// deadline already reached); `None` for no deadline.
    fn schedule(&self, lp: &EventLoop, when: Option<f64>) -> Result<Option<Handle>> {
        let Some(when) = when else { return Ok(None) };
        let weak = Arc::downgrade(&self.inner);
        let on_timeout = move || {
            if let Some(inner) = weak.upgrade() {
                Timeout { inner }.on_timeout();
            }
        };
        if when.is_nan() {
            return Err(Error::NanTime);
        }
        if when <= lp.time() {
            lp.call_soon(on_timeout).map(Some)
        } else {
            lp.call_at(when, on_timeout)
                .map(|t| Some(t.handle().clone()))
        }
    }

    /// asyncio's `_on_timeout`: cancels the task, the timeout is expiring.
    fn on_timeout(&self) {
        let task = {
            let mut inner = self.inner.lock();
            if inner.state != State::Entered {
                return;
            }
            inner.state = State::Expiring;
            inner.handler = None;
            inner.task.as_ref().map(|(t, _)| t.clone())
        };
        if let Some(task) = task {
            task.cancel();
        }
    }

    /// Whether the deadline was reached (`expiring` or `expired`).
    ///
    /// ```
    /// assert!(!loopspec::Timeout::new(Some(0.0)).expired());
    /// ```
    pub fn expired(&self) -> bool {
        matches!(self.inner.lock().state, State::Expiring | State::Expired)
    }

    /// `async with cm: <body>` (TIMEOUT-1): enters (in a task of the
    /// running loop, once: `Timeout has already been entered`), runs
    /// `body(cm)`, and leaves, converting the timeout's own cancellation
    /// into [`Error::Timeout`].
    ///
    /// ```
    /// use loopspec::{ClockKind, EventLoop, Timeout};
    ///
    /// let lp = EventLoop::with_clock(ClockKind::Virtual);
    /// let v = lp.run_until_complete(async {
    ///     let cm = Timeout::new(None);
    ///     cm.enter(|_| async { Ok(7) }).await
    /// });
    /// assert_eq!(v, Ok(7));
    /// ```
    pub async fn enter<T, F, Fut>(&self, body: F) -> Result<T>
    where
        F: FnOnce(Timeout) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        self.aenter()?;
        let guard = ExitGuard(self.clone());
        let outcome = body(self.clone()).await;
        let outcome = self.aexit(outcome);
        drop(guard); // left already: nothing to do
        outcome
    }

    /// `__aenter__`.
    fn aenter(&self) -> Result<()> {
        let mut inner = self.inner.lock();
        if inner.state != State::Created {
            return Err(Error::TimeoutEntered);
        }
        let lp = get_running_loop()?;
        let task = current_task()?.ok_or(Error::TimeoutOutsideTask)?;
        let when = inner.when;
        let handler = self.schedule(&lp, when)?;
        inner.cancelling = task.cancelling();
        inner.task = Some((task, lp));
        inner.state = State::Entered;
        inner.handler = handler;
        Ok(())
    }

    /// `__aexit__` with the body's outcome.
    fn aexit<T>(&self, outcome: Result<T>) -> Result<T> {
        let (expiring, task, cancelling) = {
            let mut inner = self.inner.lock();
            if let Some(h) = inner.handler.take() {
                h.cancel();
            }
            let expiring = inner.state == State::Expiring;
            inner.state = if expiring {
                State::Expired
            } else {
                State::Exited
            };
            let task = inner.task.as_ref().map(|(t, _)| t.clone());
            (expiring, task, inner.cancelling)
        };
        if expiring
            && let Some(task) = task
            && task.uncancel() <= cancelling
            && let Err(Error::Cancelled(_)) = outcome
        {
            return Err(Error::Timeout);
        }
        outcome
    }
}

/// Leaves the timeout if its body is dropped before it ends (the task was
/// destroyed, or dropped by TASK-15): the timer must not fire later.
struct ExitGuard(Timeout);

impl Drop for ExitGuard {
    fn drop(&mut self) {
        let mut inner = self.0.inner.lock();
        if let Some(h) = inner.handler.take() {
            h.cancel();
        }
        if inner.state == State::Expiring {
            inner.state = State::Expired;
        } else if inner.state == State::Entered {
            inner.state = State::Exited;
        }
    }
}

/// `async with asyncio.timeout(delay) as cm: <body>` (TIMEOUT-1…8; 3.11+,
/// 3.10 has no `asyncio.timeout`). `delay` is relative to the running
/// loop's time; `None`: no deadline. Needs a running loop, and a task to
/// enter in (TIMEOUT-2).
///
/// ```
/// use loopspec::{ClockKind, EventLoop};
///
/// let lp = EventLoop::with_clock(ClockKind::Virtual);
/// let v = lp.run_until_complete(loopspec::timeout(Some(5.0), |_cm| async {
///     loopspec::sleep(1.0).await?;
///     Ok("in time")
/// }));
/// assert_eq!(v, Ok("in time"));
/// ```
pub async fn timeout<T, F, Fut>(delay: Option<f64>, body: F) -> Result<T>
where
    F: FnOnce(Timeout) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let lp = get_running_loop()?;
    let when = delay.map(|d| lp.time() + d);
    Timeout::new(when).enter(body).await
}

/// `async with asyncio.timeout_at(when) as cm: <body>`: [`timeout`] with an
/// absolute deadline in loop time.
///
/// ```
/// use loopspec::{ClockKind, Error, EventLoop};
///
/// let lp = EventLoop::with_clock(ClockKind::Virtual);
/// let out = lp.run_until_complete(loopspec::timeout_at(Some(2.0), |_| async {
///     loopspec::sleep(3.0).await
/// }));
/// assert_eq!(out, Err(Error::Timeout));
/// assert_eq!(lp.time(), 2.0);
/// ```
pub async fn timeout_at<T, F, Fut>(when: Option<f64>, body: F) -> Result<T>
where
    F: FnOnce(Timeout) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    Timeout::new(when).enter(body).await
}
