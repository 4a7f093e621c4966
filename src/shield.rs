//! `asyncio.shield` (SPEC.md SHIELD-*).
//!
//! [`shield`] returns an *outer* future that copies the *inner* one's
//! outcome, and whose cancellation does not reach the inner one: cancelling
//! the outer (or the task that awaits it) leaves the inner work running.
//! Built as asyncio builds it: a done callback on the inner future copies its
//! outcome into the outer one, and a done callback on the outer one removes
//! that callback when the outer one is done first.

use crate::error::{Error, Result};
use crate::future::{DoneCallback, Future};
use crate::profile::Profile;
use std::sync::Arc;

/// asyncio's `shield(aw)` (SHIELD-1…5): `aw` is a coroutine (made a task, as
/// `ensure_future` does: of the running loop, else of
/// [`get_event_loop`](crate::get_event_loop)'s) or a loopspec
/// [`Future`]/[`Task`](crate::Task) (detected at run time, as
/// `ensure_future` does).
///
/// An `aw` already done is returned as it is. Otherwise the result is a new
/// future of the inner one's loop that finishes as the inner one does
/// (cancelled, without a message, when the inner one is cancelled);
/// cancelling it leaves the inner one alone, and the inner one's outcome is
/// then nobody's: an exception it ends with is reported as never retrieved
/// (FUT-7, SHIELD-3).
///
/// ```
/// use loopspec::{ClockKind, Error, EventLoop};
///
/// let lp = EventLoop::with_clock(ClockKind::Virtual);
/// let inner = lp.create_task(async { loopspec::sleep(2.0).await?; Ok(7) }).unwrap();
/// let waiter = {
///     let inner = inner.clone();
///     lp.create_task(async move { loopspec::shield(inner)?.await }).unwrap()
/// };
/// let w = waiter.clone();
/// lp.call_later(1.0, move || { w.cancel(); }).unwrap();
/// assert_eq!(lp.run_until_complete(waiter), Err(Error::Cancelled(None)));
/// assert_eq!(lp.run_until_complete(inner), Ok(7)); // it kept running
/// ```
pub fn shield<T, F>(aw: F) -> Result<Future<T>>
where
    T: Clone + Send + 'static,
    F: std::future::Future<Output = Result<T>> + Send + 'static,
{
    let mut slot = Some(aw);
    let inner = match crate::task::take_future_like::<T, F>(&mut slot) {
        Some(fut) => fut,
        None => {
            let coro = slot.take().ok_or_else(|| Error::Closed)?;
            crate::policy::get_event_loop()?.ensure_future(coro)?
        }
    };
    Ok(shield_future(inner))
}

/// [`shield`] for a coroutine that is not `Send`: it becomes a local task
/// (THREAD-10).
///
/// ```
/// use loopspec::{ClockKind, EventLoop};
/// use std::rc::Rc;
///
/// let lp = EventLoop::with_clock(ClockKind::Virtual);
/// let v = lp.run_until_complete(async {
///     let local = Rc::new(5);
///     loopspec::shield_local(async move { Ok(*local) })?.await
/// });
/// assert_eq!(v, Ok(5));
/// ```
pub fn shield_local<T, F>(aw: F) -> Result<Future<T>>
where
    T: Clone + Send + 'static,
    F: std::future::Future<Output = Result<T>> + 'static,
{
    Ok(shield_future(crate::policy::ensure_future_local(aw)?))
}

/// The body of `shield` once the argument is a future.
fn shield_future<T: Clone + Send + 'static>(inner: Future<T>) -> Future<T> {
    if inner.done() {
        return inner;
    }
    let lp = inner.get_loop();
    let outer = lp.create_future::<T>();
    // 3.10–3.13 read the inner outcome when the outer future was cancelled
    // first but the inner callback still ran (the two finished in one
    // iteration); 3.14+ leave it unread (SHIELD-3).
    let retrieve = lp.profile() < Profile::Py314;
    let out = outer.clone();
    let inner_done: DoneCallback<T> = Arc::new(move |inner: &Future<T>| {
        if out.cancelled() {
            if retrieve && !inner.cancelled() {
                let _ = inner.exception(); // marks it retrieved
            }
            return;
        }
        if inner.cancelled() {
            out.cancel();
            return;
        }
        // A closed loop makes scheduling fail; the outer future is complete.
        let _ = match inner.exception() {
            Ok(Some(e)) => out.set_exception(e),
            _ => match inner.result() {
                Ok(v) => out.set_result(v),
                Err(e) => out.set_exception(e),
            },
        };
    });
    // The inner future keeps its callback, which keeps the outer future; the
    // outer one's callback holds both weakly, so nothing makes a cycle.
    let weak_inner = inner.downgrade();
    let weak_cb = Arc::downgrade(&inner_done);
    let outer_done: DoneCallback<T> = Arc::new(move |_: &Future<T>| {
        if let (Some(inner), Some(cb)) = (weak_inner.upgrade(), weak_cb.upgrade())
            && !inner.done()
        {
            inner.remove_done_callback(&cb);
        }
    });
    // Errors: a closed loop, which cannot hold a pending future's callbacks
    // anyway; the outer future then stays pending, as in CPython.
    let _ = inner.add_done_callback(inner_done);
    let _ = outer.add_done_callback(outer_done);
    outer
}
