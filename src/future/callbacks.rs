//! Who waits for a future, and what its completion schedules: done
//! callbacks (`Send` and local), awaiting tasks and foreign wakers, kept in
//! the core's one list of waiters (see `Inner::waiters` in `state.rs`), and
//! their scheduling, in registration order, with `call_soon` (FUT-6).

use super::state::{Core, Waiter, Waiters};
use super::{DoneCallback, Future, LocalDoneCallback};
use crate::error::{Error, Result};
use crate::home::Ready;
use crate::home::erased::{AnyTask, DueCallbacks};
use crate::home::work::Work;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Waker;

impl<T: Send + 'static> DueCallbacks for Core<T> {
    fn run_next(self: Arc<Self>) {
        // The next due callback is the list's last (see `Inner::waiters`).
        let cb = self.lock().waiters.pop();
        match cb {
            Some(Waiter::Callback(cb)) => cb(&Future { core: self }),
            Some(Waiter::Local { id, .. }) => {
                let cb = self.lp.unstash(id);
                if let Some(Ok(cb)) = cb.map(|b| b.downcast::<LocalDoneCallback<T>>()) {
                    cb(&Future { core: self });
                }
            }
            // Only callbacks are ever due.
            Some(Waiter::Task(_) | Waiter::Waker(_)) | None => {}
        }
    }
}

impl<T: Send + 'static> Future<T> {
    /// Schedules `waiters`, taken from the core of a done future: on the
    /// loop's work here (this thread runs the loop, or borrows its work on
    /// an idle loop); through the inbox, in one submission that keeps their
    /// order and wakes the loop, while another thread runs it (THREAD-1's
    /// safe calls). Fails with `Closed` on a closed loop.
    pub(super) fn schedule_waiters(&self, waiters: Waiters<T>) -> Result<()> {
        if waiters.is_empty() {
            return Ok(());
        }
        let slot = std::cell::Cell::new(Some(waiters));
        self.core.lp.with_work_or_send(
            |work| {
                if let Some(waiters) = slot.take() {
                    push_waiters(&self.core, work, waiters);
                }
                Ok(())
            },
            || {
                let (core, waiters) = (self.core.clone(), slot.take());
                let lp = self.core.lp.clone();
                lp.call_soon_threadsafe(move || {
                    let Some(waiters) = waiters else { return };
                    let l = core.lp.clone();
                    // On the loop's thread now (or, if its run ended, the
                    // next holder of its work).
                    let _ = l.with_work(|work| push_waiters(&core, work, waiters));
                })
                .map(drop)
            },
        )?
    }

    /// Adds a done callback (FUT-6). It is scheduled with `call_soon` when the
    /// future completes — or at once, if it is done already. Never run inline.
    /// The callback is `Send + Sync`: it runs on whichever thread runs the
    /// loop then. For one that is not, see
    /// [`add_done_callback_local`](Self::add_done_callback_local).
    ///
    /// ```
    /// use loopspec::{ClockKind, EventLoop, DoneCallback, Future};
    /// use std::sync::{Arc, atomic::{AtomicU8, Ordering}};
    ///
    /// let lp = EventLoop::with_clock(ClockKind::Virtual);
    /// let fut = lp.create_future::<u8>();
    /// let seen = Arc::new(AtomicU8::new(0));
    /// let s = seen.clone();
    /// let cb: DoneCallback<u8> =
    ///     Arc::new(move |f: &Future<u8>| s.store(f.result().unwrap(), Ordering::Relaxed));
    /// fut.add_done_callback(cb).unwrap();
    /// fut.set_result(5).unwrap();
    /// assert_eq!(seen.load(Ordering::Relaxed), 0); // scheduled, not run inline
    /// lp.stop();
    /// lp.run_forever().unwrap();
    /// assert_eq!(seen.load(Ordering::Relaxed), 5);
    /// ```
    pub fn add_done_callback(&self, cb: DoneCallback<T>) -> Result<()> {
        self.add_waiter(Waiter::Callback(cb))
    }

    /// Adds a done callback that is not `Send` (FUT-6, THREAD-10): it is kept
    /// on the calling thread, which must be the loop's local home thread (or
    /// becomes it), and runs there. Fails when another thread is the local
    /// home (`Error::NonThreadSafeCall`, THREAD-10). On a closed loop the
    /// callback is accepted and dropped: it could never run.
    ///
    /// ```
    /// use loopspec::{ClockKind, EventLoop, Future, LocalDoneCallback};
    /// use std::{cell::Cell, rc::Rc};
    ///
    /// let lp = EventLoop::with_clock(ClockKind::Virtual);
    /// let fut = lp.create_future::<u8>();
    /// let seen = Rc::new(Cell::new(0));
    /// let s = seen.clone();
    /// let cb: LocalDoneCallback<u8> = Rc::new(move |f: &Future<u8>| s.set(f.result().unwrap()));
    /// fut.add_done_callback_local(cb).unwrap();
    /// fut.set_result(5).unwrap();
    /// lp.stop();
    /// lp.run_forever().unwrap();
    /// assert_eq!(seen.get(), 5);
    /// ```
    pub fn add_done_callback_local(&self, cb: LocalDoneCallback<T>) -> Result<()> {
        let addr = Rc::as_ptr(&cb) as *const () as usize;
        let id = match self.core.lp.stash(Box::new(cb)) {
            Ok(id) => id,
            Err(Error::Closed) => 0,
            Err(e) => return Err(e),
        };
        self.add_waiter(Waiter::Local { id, addr })
    }

    /// Adds `waiter`, scheduling it at once if the future is done.
    fn add_waiter(&self, waiter: Waiter<T>) -> Result<()> {
        {
            let mut inner = self.core.lock();
            if inner.pending() {
                inner.waiters.push(waiter);
                return Ok(());
            }
        }
        self.schedule_waiters(smallvec::smallvec![waiter])
    }

    /// Removes every registration of `cb` (compared by identity) and returns
    /// how many there were.
    pub fn remove_done_callback(&self, cb: &DoneCallback<T>) -> usize {
        let mut inner = self.core.lock();
        if !inner.pending() {
            return 0; // its callbacks are scheduled: none can be removed
        }
        let waiters = &mut inner.waiters;
        let before = waiters.len();
        waiters.retain(|w| match w {
            Waiter::Callback(c) => !std::ptr::addr_eq(Arc::as_ptr(c), Arc::as_ptr(cb)),
            _ => true,
        });
        before - waiters.len()
    }

    /// Removes every registration of the local callback `cb` (compared by
    /// identity) and returns how many there were.
    pub fn remove_done_callback_local(&self, cb: &LocalDoneCallback<T>) -> usize {
        let addr = Rc::as_ptr(cb) as *const () as usize;
        let mut removed = Vec::new();
        let mut inner = self.core.lock();
        if !inner.pending() {
            return 0; // its callbacks are scheduled: none can be removed
        }
        inner.waiters.retain(|w| match w {
            Waiter::Local { id, addr: a } if *a == addr => {
                removed.push(*id);
                false
            }
            _ => true,
        });
        drop(inner);
        self.core.lp.forget_local_callbacks(&removed);
        removed.len()
    }

    /// Registers `task` to be stepped when this future completes; once per
    /// task. Returns false, registering nothing, if it is done by now:
    /// another thread may have completed it since the caller looked.
    pub(crate) fn add_task_waiter(&self, task: Arc<dyn AnyTask>) -> bool {
        let mut inner = self.core.lock();
        if !inner.pending() {
            return false;
        }
        let waiters = &mut inner.waiters;
        let id = task.id();
        if !waiters
            .iter()
            .any(|w| matches!(w, Waiter::Task(t) if t.id() == id))
        {
            waiters.push(Waiter::Task(task));
        }
        true
    }

    /// Registers `waker` to be woken when this future completes; false, as
    /// [`add_task_waiter`](Self::add_task_waiter), if it is done by now.
    pub(super) fn add_waker(&self, waker: &Waker) -> bool {
        let mut inner = self.core.lock();
        if !inner.pending() {
            return false;
        }
        let waiters = &mut inner.waiters;
        if !waiters
            .iter()
            .any(|w| matches!(w, Waiter::Waker(k) if k.will_wake(waker)))
        {
            waiters.push(Waiter::Waker(waker.clone()));
        }
        true
    }
}

/// Puts the entries of `waiters` of the done future `core` in the loop's
/// ready queue, in registration order (FUT-6).
fn push_waiters<T: Send + 'static>(core: &Arc<Core<T>>, work: &Work, waiters: Waiters<T>) {
    // The callbacks wait in the future itself, the next to run last; each
    // queue entry only says "run the next one" (no allocation).
    let mut due = Waiters::new();
    for w in waiters {
        match w {
            Waiter::Callback(_) | Waiter::Local { .. } => {
                due.push(w);
                work.push_ready(Ready::DoneCallback(core.clone()));
            }
            Waiter::Task(t) => work.schedule_step(t),
            Waiter::Waker(w) => work.push_ready(Ready::Wake(w)),
        }
    }
    if !due.is_empty() {
        due.reverse();
        let mut inner = core.lock();
        if inner.waiters.is_empty() {
            inner.waiters = due;
        } else {
            // Behind the callbacks already due (pushed before, so run
            // before).
            inner.waiters.insert_many(0, due);
        }
    }
}
