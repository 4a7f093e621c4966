//! Linking futures across threads: [`wrap_future`] and
//! [`run_coroutine_threadsafe`], both built on asyncio's `_chain_future`
//! rules (SPEC.md CHAIN-*, XTHREAD-6…9).
//!
//! A chain has a *source* and a *destination*. When the source completes, its
//! state is copied to the destination; when the destination is cancelled, the
//! source is cancelled. Each side is touched only from the thread it belongs
//! to:
//!
//! * a loop future is completed on its loop's thread: copies into it travel
//!   through `call_soon_threadsafe` as `Send` closures that name it by the id
//!   the loop keeps it under with its work (THREAD-8), which also keeps it
//!   alive until then;
//! * a task is cancelled from another thread the same way, by task id;
//! * a [`ConcurrentFuture`] is touched from any thread.
//!
//! Each future reaches exactly one final state whatever the interleaving: a
//! copy into a destination that is already cancelled is ignored, and nothing is
//! scheduled onto a closed loop.

use crate::concurrent::ConcurrentFuture;
use crate::error::{Error, Result};
use crate::event_loop::EventLoop;
use crate::future::{DoneCallback, Future};
use crate::loop_core::running_loop;
use crate::profile::Profile;
use crate::sync::Mutex;
use crate::task::Task;
use std::sync::Arc;

/// Whether a chain's callback, running on this thread, may touch `lp`'s side
/// at once: from 3.13 (3.13.18 measured; 3.13.0 still went through
/// `call_soon_threadsafe`), `_chain_future` acts directly when `lp` is the
/// loop running in the calling thread (CHAIN-3, XTHREAD-8).
fn acts_directly_on(lp: &EventLoop) -> bool {
    lp.profile() >= Profile::Py313 && running_loop().as_ref() == Some(lp)
}

/// What a finished source hands to its destination.
enum Copied<T> {
    /// The source was cancelled: the destination is cancelled.
    Cancelled,
    /// The source finished with this result or exception.
    Done(Result<T>),
}

/// asyncio's `wrap_future(cf, loop=lp)`: a future of `lp` that mirrors `cf`
/// (CHAIN-1).
///
/// The wrapper completes in an iteration of `lp` after `cf` completes, even
/// if `cf` is already done — unless (3.13+ profiles) `cf` completes on a
/// thread where `lp` is running, which completes the wrapper at once
/// (CHAIN-3). Cancelling the
/// wrapper cancels `cf` (CHAIN-4); if `cf` is already running, it carries on
/// and its result is dropped (CHAIN-5). On a closed loop nothing is scheduled
/// and the wrapper stays pending (CHAIN-6).
///
/// The destination is the loop's work: any thread may call this, whether
/// `lp` runs or not and wherever it runs (THREAD-1, THREAD-8).
///
/// ```
/// use loopspec::{ClockKind, ConcurrentFuture, EventLoop};
///
/// let lp = EventLoop::with_clock(ClockKind::Virtual);
/// let cf = ConcurrentFuture::new();
/// let wrapper = loopspec::wrap_future(&cf, &lp).unwrap();
/// let worker = cf.clone();
/// std::thread::spawn(move || worker.set_result("from a thread").unwrap());
/// assert_eq!(lp.run_until_complete(wrapper).unwrap(), "from a thread");
/// ```
pub fn wrap_future<T>(cf: &ConcurrentFuture<T>, lp: &EventLoop) -> Result<Future<T>>
where
    T: Send + Clone + 'static,
{
    let dest = lp.create_future::<T>();
    // The loop keeps the destination until the copy lands or it is done;
    // `close()` drops it. On a closed loop nothing will ever be scheduled
    // for it (CHAIN-6).
    let id = match lp.keep(Box::new(dest.clone())) {
        Err(Error::Closed) => return Ok(dest),
        kept => kept?,
    };

    // Destination done: take the kept handle back; if cancelled, cancel the
    // source (a concurrent future is cancelled directly).
    let source = cf.clone();
    let on_dest_done: DoneCallback<T> = Arc::new(move |dest: &Future<T>| {
        drop(dest.get_loop().take_kept(id));
        if dest.cancelled() {
            source.cancel();
        }
    });
    dest.add_done_callback(on_dest_done)?;

    // Source done (in whichever thread finished it): copy into the
    // destination on its loop, unless that loop is closed.
    let dest_loop = lp.clone();
    cf.add_done_callback(move |source| {
        let copied = if source.cancelled() {
            Copied::Cancelled
        } else {
            match source.outcome() {
                Some(outcome) => Copied::Done(outcome),
                None => return,
            }
        };
        if acts_directly_on(&dest_loop) {
            copy_into_kept::<T>(&dest_loop, id, copied);
            return;
        }
        let lp = dest_loop.clone();
        // A closed loop refuses the closure: nothing is scheduled (CHAIN-6).
        let _ = dest_loop.call_soon_threadsafe(move || copy_into_kept::<T>(&lp, id, copied));
    });
    Ok(dest)
}

/// On the loop thread: copies a source's state into the kept destination,
/// unless the destination is already done (asyncio's `_copy_future_state`).
fn copy_into_kept<T: Clone + Send + 'static>(lp: &EventLoop, id: u64, copied: Copied<T>) {
    let Some(kept) = lp.take_kept(id) else {
        return; // the destination was done first, and let go
    };
    let Ok(dest) = kept.downcast::<Future<T>>() else {
        return;
    };
    #[cfg(not(loopspec_mutant = "complete-cancelled"))]
    if dest.done() {
        return;
    }
    let _ = match copied {
        Copied::Cancelled => {
            dest.cancel();
            Ok(())
        }
        Copied::Done(Ok(v)) => dest.set_result(v),
        Copied::Done(Err(e)) => dest.set_exception(e),
    };
}

/// Drops into a `ConcurrentFuture` the fact that the work it stands for was
/// dropped without finishing (a submission discarded by `close()`, a task
/// destroyed by it): the future fails with `Event loop is closed` instead of
/// staying pending forever.
struct FailIfDropped<T: Send + 'static> {
    /// The future to fail.
    cf: ConcurrentFuture<T>,
    /// Whether dropping the guard fails `cf`: true until [`disarm`](Self::disarm).
    armed: bool,
}

impl<T: Send + 'static> FailIfDropped<T> {
    fn new(cf: ConcurrentFuture<T>) -> Self {
        FailIfDropped { cf, armed: true }
    }

    /// The work is under way: the future is the caller's to complete.
    fn disarm(mut self) -> ConcurrentFuture<T> {
        self.armed = false;
        self.cf.clone()
    }
}

impl<T: Send + 'static> Drop for FailIfDropped<T> {
    fn drop(&mut self) {
        if self.armed && self.cf.set_running_or_notify_cancel() == Ok(true) {
            let _ = self.cf.set_exception(Error::Closed);
        }
    }
}

/// asyncio's `run_coroutine_threadsafe(coro, loop)`: runs a coroutine as a
/// task on `lp` and returns a [`ConcurrentFuture`] for its outcome
/// (XTHREAD-6).
///
/// Callable from any thread. The task is made on the loop's thread when the
/// loop takes the submission ([`EventLoop::create_task`]): it is the loop's
/// work and follows the loop from thread to thread (THREAD-8). If `lp` is not
/// running yet, the work waits. The task's result, exception or panic reaches
/// the returned future (XTHREAD-7); cancelling the returned future cancels the
/// task (XTHREAD-8). A closed loop is an error at the call.
///
/// A coroutine that is not `Send` goes through
/// [`run_coroutine_threadsafe_local`].
///
/// ```
/// use loopspec::{ClockKind, EventLoop};
///
/// let lp = EventLoop::with_clock(ClockKind::Virtual);
/// let cf = loopspec::run_coroutine_threadsafe(
///     async {
///         loopspec::sleep(1.0).await?;
///         Ok(3 * 14)
///     },
///     &lp,
/// )
/// .unwrap();
/// let runner = lp.clone();
/// let t = std::thread::spawn(move || runner.run_forever());
/// assert_eq!(cf.result(None).unwrap(), 42);
/// lp.stop();
/// t.join().unwrap().unwrap();
/// ```
pub fn run_coroutine_threadsafe<T, F>(coro: F, lp: &EventLoop) -> Result<ConcurrentFuture<T>>
where
    T: Send + Clone + 'static,
    F: std::future::Future<Output = Result<T>> + Send + 'static,
{
    submit(lp, move |target| target.create_task(coro))
}

/// [`run_coroutine_threadsafe`] for a coroutine that need not be `Send`: the
/// caller passes a `Send` closure `make`, and the loop calls it on its own
/// thread when it takes the submission (like tokio's `spawn_pinned`). The
/// coroutine runs there as a local task ([`EventLoop::create_task_local`]),
/// with local work's rules (THREAD-10, THREAD-4).
///
/// ```
/// use loopspec::{ClockKind, EventLoop};
/// use std::rc::Rc;
///
/// let lp = EventLoop::with_clock(ClockKind::Virtual);
/// let cf = loopspec::run_coroutine_threadsafe_local(
///     || async {
///         let here = Rc::new(21); // not `Send`: made on the loop's thread
///         loopspec::sleep(1.0).await?;
///         Ok(*here * 2)
///     },
///     &lp,
/// )
/// .unwrap();
/// let runner = lp.clone();
/// let t = std::thread::spawn(move || runner.run_forever());
/// assert_eq!(cf.result(None).unwrap(), 42);
/// lp.stop();
/// t.join().unwrap().unwrap();
/// ```
pub fn run_coroutine_threadsafe_local<T, M, F>(
    make: M,
    lp: &EventLoop,
) -> Result<ConcurrentFuture<T>>
where
    T: Send + Clone + 'static,
    M: FnOnce() -> F + Send + 'static,
    F: std::future::Future<Output = Result<T>> + 'static,
{
    submit(lp, move |target| target.create_task_local(make()))
}

/// Both forms: hands `make_task` to the loop with `call_soon_threadsafe` and
/// chains the task it makes to the returned future.
fn submit<T, M>(lp: &EventLoop, make_task: M) -> Result<ConcurrentFuture<T>>
where
    T: Send + Clone + 'static,
    M: FnOnce(&EventLoop) -> Result<Task<T>> + Send + 'static,
{
    let cf = ConcurrentFuture::new();
    cf.set_completing_loop(lp);
    let guard = FailIfDropped::new(cf.clone());
    let target = lp.clone();
    lp.call_soon_threadsafe(move || {
        let dest = guard.disarm();
        match make_task(&target) {
            Ok(task) => chain_task_to_concurrent(&target, task, dest),
            Err(e) => {
                if dest.set_running_or_notify_cancel() == Ok(true) {
                    let _ = dest.set_exception(e);
                }
            }
        }
    })?;
    Ok(cf)
}

/// `_chain_future(task, cf)`: the task's outcome goes to `cf`; a cancelled
/// `cf` cancels the task through the loop's thread-safe path.
fn chain_task_to_concurrent<T>(lp: &EventLoop, task: Task<T>, cf: ConcurrentFuture<T>)
where
    T: Send + Clone + 'static,
{
    let task_key = task.key();
    let source_loop = lp.clone();
    let dest = cf.clone();
    dest.add_done_callback(move |cf| {
        // Seeded bug (loom mutant check): the cancel is not forwarded.
        #[cfg(loopspec_mutant = "cancel-not-forwarded")]
        let forward = false;
        #[cfg(not(loopspec_mutant = "cancel-not-forwarded"))]
        let forward = cf.cancelled();
        if forward {
            // Cancelled where the loop runs (3.13+): cancel the task now,
            // so a concurrent future cancelled before the loop took the
            // submission cancels the task before its first step.
            if acts_directly_on(&source_loop) {
                source_loop.cancel_task(task_key);
                return;
            }
            let lp = source_loop.clone();
            let _ = source_loop.call_soon_threadsafe(move || {
                lp.cancel_task(task_key);
            });
        }
    });
    // If the task is destroyed without finishing (its loop closed, or its
    // home thread exited), the guard fails `cf` instead of leaving its
    // waiters blocked for ever (XTHREAD-6).
    let guard = Mutex::new(Some(FailIfDropped::new(cf)));
    let on_task_done: DoneCallback<T> = Arc::new(move |task: &Future<T>| {
        let taken = guard.lock().take();
        let Some(cf) = taken.map(FailIfDropped::disarm) else {
            return;
        };
        if task.cancelled() {
            cf.cancel();
        }
        if cf.set_running_or_notify_cancel() != Ok(true) {
            return;
        }
        let _ = cf.finish(task.result());
    });
    let _ = task.add_done_callback(on_task_done);
}
