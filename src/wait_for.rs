//! asyncio's `wait_for` in its two shapes (SPEC.md WAITFOR-*).
//!
//! * 3.12+ (`Profile::Py312` on): `async with timeout(t): return await aw`
//!   — the awaitable runs in the caller's task, inside a [`timeout`]; a
//!   timeout of zero or less cancels the work at once.
//! * 3.10/3.11 (`Profile::Py311`): a waiter future released by a timer or by
//!   the work's done callback, the work made a task; on timeout the work is
//!   cancelled and waited for (`_cancel_and_wait`). `None` is a plain
//!   await. A cancellation of the caller that arrives in the iteration in
//!   which the work completes is lost: the result is returned (GH-86296,
//!   WAITFOR-5).

use crate::error::{Error, Result};
use crate::event_loop::{EventLoop, get_running_loop};
use crate::future::{DoneCallback, Future};
use crate::handle::TimerHandle;
use crate::profile::Profile;
use crate::timeouts::timeout;
use std::sync::Arc;

/// asyncio's `wait_for(fut, timeout)` (WAITFOR-1…5), in the shape of the
/// running loop's profile.
///
/// With a timeout, when it expires the awaited work is cancelled and waited
/// for, then `TimeoutError` is reported — unless the work swallowed the
/// cancellation and returned a value, which is returned. Cancelling the
/// caller cancels the work and reports `CancelledError`. With
/// `timeout <= 0`, a done future's result is returned; anything else is
/// cancelled (a coroutine never starts) and `TimeoutError` reported.
///
/// 3.12+ profiles: built on [`timeout`], so it must run inside a task of the
/// running loop even with `None`, and a cancellation racing with completion
/// is not lost (GH-86296). `Py311`: the 3.10/3.11 shape (module docs);
/// `None` is a plain await.
///
/// ```
/// use loopspec::{ClockKind, Error, EventLoop};
///
/// let lp = EventLoop::with_clock(ClockKind::Virtual);
/// let slow = async { loopspec::sleep(10.0).await?; Ok(()) };
/// let err = lp.run_until_complete(loopspec::wait_for(slow, Some(1.0))).unwrap_err();
/// assert_eq!(err, Error::Timeout);
/// assert_eq!(lp.time(), 1.0);
/// ```
pub async fn wait_for<T, F>(fut: F, timeout_secs: Option<f64>) -> Result<T>
where
    T: Clone + Send + 'static,
    F: std::future::Future<Output = Result<T>> + 'static,
{
    if timeout_secs.is_some_and(f64::is_nan) {
        return Err(Error::NanTime);
    }
    let lp = get_running_loop()?;
    if timeout_secs.is_some_and(|t| t <= 0.0) {
        let fut = lp.ensure_future_local(fut)?;
        if fut.done() {
            return fut.result();
        }
        cancel_and_wait(&lp, &fut).await?;
        return match fut.result() {
            Err(Error::Cancelled(_)) => Err(Error::Timeout),
            other => other,
        };
    }
    if lp.profile() >= Profile::Py312 {
        return timeout(timeout_secs, |_| fut).await;
    }
    match timeout_secs {
        None => fut.await,
        Some(t) => wait_for_311(&lp, fut, t).await,
    }
}

/// 3.10/3.11's `wait_for` with a positive timeout.
async fn wait_for_311<T, F>(lp: &EventLoop, fut: F, timeout: f64) -> Result<T>
where
    T: Clone + Send + 'static,
    F: std::future::Future<Output = Result<T>> + 'static,
{
    let waiter = lp.create_future::<()>();
    let w = waiter.clone();
    // `try: ... finally: timeout_handle.cancel()`.
    let _timer = CancelOnDrop(lp.call_later(timeout, move || release_waiter(&w))?);
    let fut = lp.ensure_future_local(fut)?;
    let w = waiter.clone();
    let cb: DoneCallback<T> = Arc::new(move |_: &Future<T>| release_waiter(&w));
    fut.add_done_callback(cb.clone())?;
    if let Err(e) = waiter.await {
        // The caller was cancelled. A work already done wins: the
        // cancellation is lost (GH-86296).
        if fut.done() {
            return fut.result();
        }
        fut.remove_done_callback(&cb);
        cancel_and_wait(lp, &fut).await?;
        return Err(e);
    }
    if fut.done() {
        return fut.result();
    }
    fut.remove_done_callback(&cb);
    cancel_and_wait(lp, &fut).await?;
    match fut.result() {
        Err(Error::Cancelled(_)) => Err(Error::Timeout),
        other => other,
    }
}

/// Cancels a timer when dropped: the `finally` of 3.11's `wait_for`.
struct CancelOnDrop(TimerHandle);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// `_release_waiter`.
fn release_waiter(waiter: &Future<()>) {
    if !waiter.done() {
        let _ = waiter.set_result(());
    }
}

/// `_cancel_and_wait`: cancels `fut` and waits until it is done.
async fn cancel_and_wait<T: Clone + Send + 'static>(lp: &EventLoop, fut: &Future<T>) -> Result<()> {
    let waiter = lp.create_future::<()>();
    let w = waiter.clone();
    let cb: DoneCallback<T> = Arc::new(move |_: &Future<T>| release_waiter(&w));
    fut.add_done_callback(cb.clone())?;
    fut.cancel();
    let r = waiter.await;
    fut.remove_done_callback(&cb);
    r
}
