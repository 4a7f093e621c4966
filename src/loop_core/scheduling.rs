//! Scheduling: [`call_soon`](EventLoop::call_soon),
//! [`call_soon_threadsafe`](EventLoop::call_soon_threadsafe),
//! [`call_later`](EventLoop::call_later), [`call_at`](EventLoop::call_at)
//! (SPEC.md SCHED-2…6, XTHREAD-1, XTHREAD-2), and the two other ways work
//! reaches a loop: a task waker's step request, and values kept for `Send`
//! closures to name (with the loop's work: `keep`; in the local home:
//! `stash`).
//!
//! A scheduling call goes to the loop's work (`with_work`, or `with_local`
//! for local work; `borrow.rs`); a thread-safe call from a thread that does
//! not run the loop goes through the inbox (`submit`), whose
//! [`send`](crate::inbox::Inbox::send) wakes a parked loop.

use super::shared::EventLoop;
use crate::error::{Error, Result, drop_each};
use crate::handle::{Handle, LocalCall, Submission, TaskKey, TimerHandle};
use crate::home::{Ready, TimerCall};
use crate::sync::Ordering;
use std::any::Any;

impl EventLoop {
    /// Schedules `f` to run in the next iteration (SCHED-2). Callbacks run in
    /// the order they were scheduled.
    ///
    /// Any thread may call it while no thread runs the loop (THREAD-9): the
    /// callback runs in the next run, wherever that is (THREAD-8). While
    /// another thread runs the loop it fails with
    /// [`Error::NonThreadSafeCall`] (THREAD-1); use
    /// [`call_soon_threadsafe`](EventLoop::call_soon_threadsafe) there.
    ///
    /// ```
    /// use loopspec::{ClockKind, EventLoop};
    /// use std::sync::{Arc, Mutex};
    ///
    /// let lp = EventLoop::with_clock(ClockKind::Virtual);
    /// let log = Arc::new(Mutex::new(Vec::new()));
    /// for i in 0..3 {
    ///     let log = log.clone();
    ///     lp.call_soon(move || log.lock().unwrap().push(i)).unwrap();
    /// }
    /// lp.stop();
    /// lp.run_forever().unwrap();
    /// assert_eq!(*log.lock().unwrap(), [0, 1, 2]);
    /// ```
    pub fn call_soon<F: FnOnce() + Send + 'static>(&self, f: F) -> Result<Handle> {
        // The callback and its cancellation state: one allocation, which
        // the queue entry and the handle share.
        let (submission, handle) = Submission::callback(f);
        self.with_work(move |work| work.push_ready(Ready::Submission(submission)))?;
        Ok(handle)
    }

    /// [`call_soon`](EventLoop::call_soon) for a closure that is not `Send`:
    /// local work, which stays on the thread that schedules it — the loop's
    /// local home thread, or the thread that becomes it (THREAD-10).
    ///
    /// ```
    /// use loopspec::{ClockKind, EventLoop};
    /// use std::{cell::RefCell, rc::Rc};
    ///
    /// let lp = EventLoop::with_clock(ClockKind::Virtual);
    /// let log = Rc::new(RefCell::new(Vec::new()));
    /// let l = log.clone();
    /// lp.call_soon_local(move || l.borrow_mut().push("ran")).unwrap();
    /// lp.stop();
    /// lp.run_forever().unwrap();
    /// assert_eq!(*log.borrow(), ["ran"]);
    /// ```
    pub fn call_soon_local<F: FnOnce() + 'static>(&self, f: F) -> Result<Handle> {
        let id = self.next_local_id();
        let (call, handle) = LocalCall::new::<F>(id);
        self.with_local(move |work, local| {
            local.put_callback(id, Box::new(f));
            work.push_ready(Ready::Local(call))
        })?;
        Ok(handle)
    }

    /// Schedules `f` from any thread. On the thread running the loop it is
    /// the same as [`call_soon`](EventLoop::call_soon); from elsewhere it goes
    /// through the inbox and wakes the loop if it is parked. Returns
    /// [`Error::Closed`] on a closed loop.
    ///
    /// ```
    /// use loopspec::{ClockKind, EventLoop};
    ///
    /// let lp = EventLoop::with_clock(ClockKind::Virtual);
    /// let lp2 = lp.clone();
    /// std::thread::spawn(move || lp2.call_soon_threadsafe(move || ()).unwrap())
    ///     .join()
    ///     .unwrap();
    /// lp.stop();
    /// lp.run_forever().unwrap();
    /// ```
    pub fn call_soon_threadsafe<F: FnOnce() + Send + 'static>(&self, f: F) -> Result<Handle> {
        let (submission, handle) = Submission::callback(f);
        if let Some(work) = self.work_if_running_here() {
            work.push_ready(Ready::Submission(submission));
        } else {
            self.submit(submission)?;
        }
        Ok(handle)
    }

    /// Schedules `f` to run `delay` seconds from now (SCHED-4). Zero and
    /// negative delays are allowed: the timer is due at once. A NaN delay is
    /// refused with [`Error::NanTime`] (SCHED-6).
    ///
    /// ```
    /// use loopspec::{ClockKind, EventLoop};
    ///
    /// let lp = EventLoop::with_clock(ClockKind::Virtual);
    /// let lp2 = lp.clone();
    /// lp.call_later(1.5, move || lp2.stop()).unwrap();
    /// lp.run_forever().unwrap();
    /// assert_eq!(lp.time(), 1.5);
    /// ```
    pub fn call_later<F: FnOnce() + Send + 'static>(
        &self,
        delay: f64,
        f: F,
    ) -> Result<TimerHandle> {
        if delay.is_nan() {
            return Err(Error::NanTime);
        }
        self.call_at(self.time() + delay, f)
    }

    /// [`call_later`](EventLoop::call_later) for a closure that is not
    /// `Send`: local work, as [`call_soon_local`](EventLoop::call_soon_local).
    pub fn call_later_local<F: FnOnce() + 'static>(&self, delay: f64, f: F) -> Result<TimerHandle> {
        if delay.is_nan() {
            return Err(Error::NanTime);
        }
        self.call_at_local(self.time() + delay, f)
    }

    /// Schedules `f` to run at loop time `when` (SCHED-4).
    pub fn call_at<F: FnOnce() + Send + 'static>(&self, when: f64, f: F) -> Result<TimerHandle> {
        if when.is_nan() {
            return Err(Error::NanTime);
        }
        let (submission, handle) = Submission::callback(f);
        let h = handle.clone();
        self.with_work(move |work| work.push_timer(when, TimerCall::Send(submission), h))?;
        Ok(TimerHandle::new(handle, when))
    }

    /// [`call_at`](EventLoop::call_at) for a closure that is not `Send`:
    /// local work, as [`call_soon_local`](EventLoop::call_soon_local).
    pub fn call_at_local<F: FnOnce() + 'static>(&self, when: f64, f: F) -> Result<TimerHandle> {
        if when.is_nan() {
            return Err(Error::NanTime);
        }
        let id = self.next_local_id();
        let (call, handle) = LocalCall::new::<F>(id);
        let h = handle.clone();
        self.with_local(move |work, local| {
            local.put_callback(id, Box::new(f));
            work.push_timer(when, TimerCall::Local(call), h);
        })?;
        Ok(TimerHandle::new(handle, when))
    }

    /// A fresh id for a local callback or a kept or stashed value.
    pub(crate) fn next_local_id(&self) -> u64 {
        self.shared.next_local.fetch_add(1, Ordering::Relaxed)
    }

    /// Hands a submission to the loop from any thread, through the inbox,
    /// without the loop's locks. A closed loop refuses it: it is dropped,
    /// never run, and the caller gets `Event loop is closed` (XTHREAD-3).
    pub(super) fn submit(&self, s: Submission) -> Result<()> {
        self.shared.inbox.send(s).map_err(|_| Error::Closed)
    }

    /// The thread-safe wake path of a task waker: step the task `key` names
    /// soon. `step_request` makes the submission, only when the call comes
    /// from a thread that does not run the loop.
    pub(crate) fn request_step(&self, key: TaskKey, step_request: impl FnOnce() -> Submission) {
        if let Some(work) = self.work_if_running_here() {
            work.schedule_step_of(key);
        } else {
            // A closed loop refuses it: the task can never run again anyway.
            let _ = self.submit(step_request());
        }
    }

    /// Keeps a `Send` value with the loop's work under a fresh id, for a
    /// chain to name from any thread: the destination of a `wrap_future`.
    /// While another thread runs the loop, the value reaches the work
    /// through the inbox, ahead of anything the caller submits after (a
    /// copy into it). Fails with `Closed` on a closed loop (the value is
    /// dropped).
    pub(crate) fn keep(&self, value: Box<dyn Any + Send>) -> Result<u64> {
        let id = self.next_local_id();
        let value = std::cell::Cell::new(Some(value));
        self.with_work_or_send(
            |work| {
                work.keep(id, value.take().expect("kept once"));
                Ok(())
            },
            || {
                let value = value.take().expect("kept once");
                let lp = self.clone();
                self.call_soon_threadsafe(move || {
                    // On the loop's thread, which holds the work.
                    let _ = lp.with_work(|work| work.keep(id, value));
                })
                .map(drop)
            },
        )??;
        Ok(id)
    }

    /// Takes back a value kept with [`keep`](Self::keep): on the thread that
    /// runs the loop or, while none does, on any (`None` if it is gone, or
    /// while another thread runs the loop).
    pub(crate) fn take_kept(&self, id: u64) -> Option<Box<dyn Any + Send>> {
        self.with_work(|work| work.take_kept(id)).ok().flatten()
    }

    /// Keeps a local value in this thread's local home of the loop under a
    /// fresh id, so that a `Send` value can name it (THREAD-1 applies: this
    /// thread is, or becomes, the local home): a local done callback, named
    /// by its future.
    pub(crate) fn stash(&self, value: Box<dyn Any>) -> Result<u64> {
        let id = self.next_local_id();
        self.with_local(|_, local| {
            local.stash.borrow_mut().insert(id, value);
        })?;
        Ok(id)
    }

    /// Takes back a value kept with [`stash`](Self::stash), on the loop's
    /// local home thread (`None` elsewhere).
    pub(crate) fn unstash(&self, id: u64) -> Option<Box<dyn Any>> {
        let local = self.own_local()?;
        local.stash.borrow_mut().remove(&id)
    }

    /// Drops the values stashed under `ids` (0 names none), if this thread
    /// is the loop's local home; claims nothing. A panic of their destructors
    /// is reported, not raised.
    pub(crate) fn forget_local_callbacks(&self, ids: &[u64]) {
        if ids.iter().all(|&id| id == 0) {
            return;
        }
        let Some(local) = self.own_local() else {
            return;
        };
        let removed: Vec<Box<dyn Any>> = {
            let mut stash = local.stash.borrow_mut();
            ids.iter().filter_map(|id| stash.remove(id)).collect()
        };
        let mut panics = Vec::new();
        drop_each(removed, &mut panics);
        self.report_drop_panics("a done callback", panics);
    }
}
