//! How a task runs: one step at a time ([`step`], asyncio's `Task.__step`),
//! and how it is cancelled ([`cancel_task`], `Task.cancel`, TASK-4). Also
//! the task's side of [`AnyTask`], through which the loop, awaitables and
//! [`TaskRef`](crate::TaskRef) reach a task without its type.
//!
//! A step: the task's step state says what to throw into the coroutine
//! (`src/future/task_state.rs`); the step polls the coroutine once, with the thrown
//! exception offered to the first loopspec awaitable it polls; then the
//! task is done (returned, failed, panicked, or could not observe what was
//! thrown) or it waits — woken by a loopspec future it awaits (which queues
//! its next step one iteration after completing, as asyncio's `__wakeup`),
//! or by its waker.

use crate::error::{Error, Result, drop_each};
use crate::future::Future;
use crate::future::state::{Core, FutureState, Kind, repr_of};
use crate::future::task_state::{Flag, TaskState};
use crate::home::LoopId;
use crate::home::erased::{AnyFuture, AnyTask, Coroutine};
use crate::loop_core::{EventLoop, set_current_task};
use crate::profile::Profile;
use crate::sync::Ordering;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

/// A task's core seen as a task. Every method is a no-op (or reads as a task
/// that has none of it) on a core of another kind: only `Task::spawn` makes
/// a core the loop sees as a task.
impl<T: Send + 'static> AnyTask for Core<T> {
    fn step(self: Arc<Self>) {
        let fut = Future { core: self };
        if let Kind::Task(t) = &fut.core.kind {
            step(&fut, t);
        }
    }

    fn id(&self) -> u64 {
        self.kind.task().map_or(0, |t| t.id)
    }

    fn mark_scheduled(&self) -> bool {
        let Some(t) = self.kind.task() else {
            return false;
        };
        if t.flags.get(Flag::Scheduled) || self.done() {
            return false;
        }
        t.flags.set(Flag::Scheduled, true);
        true
    }

    fn destroy(&self) -> (bool, Option<Error>) {
        let Some(t) = self.kind.task() else {
            return (false, None);
        };
        // What it waits on first: a cycle through them must not outlive a
        // future whose destructor panics.
        let waiting = std::mem::take(&mut t.step.lock().waiting_on);
        // A task destroyed pending never completes: its done callbacks can
        // never run, and go now, not with the last handle (a chain's guard
        // among them fails its concurrent future, XTHREAD-6).
        let (pending, waiters) = {
            let mut inner = self.lock();
            let pending = inner.pending();
            let waiters = if pending {
                std::mem::take(&mut inner.waiters)
            } else {
                Default::default()
            };
            (pending, waiters)
        };
        let mut panics = Vec::new();
        drop_each(waiting, &mut panics);
        drop_each(waiters, &mut panics);
        (pending, panics.into_iter().next())
    }

    fn repr(&self) -> String {
        repr_of(self)
    }

    fn take_throw(&self) -> Option<Error> {
        self.kind.task()?.step.lock().throw.take().map(|e| *e)
    }

    fn throw_next_step(self: Arc<Self>, e: Error) {
        let fut = Future { core: self };
        if let Kind::Task(t) = &fut.core.kind {
            t.throw_at_next_step(e);
            schedule_step(&fut);
        }
    }

    fn add_waiting_on(&self, f: Arc<dyn AnyFuture>) {
        if let Some(t) = self.kind.task() {
            t.step.lock().waiting_on.push(f);
        }
    }

    fn core_addr(&self) -> *const () {
        self as *const Self as *const ()
    }

    fn is_local(&self) -> bool {
        self.kind.task().is_some_and(|t| t.local)
    }

    fn loop_id(&self) -> LoopId {
        self.lp.id()
    }

    fn name(&self) -> String {
        self.kind.task().map(TaskState::name).unwrap_or_default()
    }

    fn set_name(&self, name: String) {
        if let Some(t) = self.kind.task() {
            t.step.lock().set_name(name);
        }
    }

    fn cancel(self: Arc<Self>, msg: Option<String>) -> bool {
        let fut = Future { core: self };
        let Kind::Task(t) = &fut.core.kind else {
            return false;
        };
        // One atomic call on the loop's work (this thread runs it, or
        // borrows it on an idle loop); a request through the inbox while
        // another thread runs it (THREAD-1); on a closed loop, the state
        // part alone (its scheduling fails and is ignored, as before).
        let lp = fut.core.lp.clone();
        let (here, elsewhere) = (msg.clone(), msg.clone());
        lp.with_work_or_send(
            |_| cancel_task(&fut, t, here),
            || request_cancel(&fut, t, elsewhere),
        )
        .unwrap_or_else(|_| cancel_task(&fut, t, msg))
    }

    fn cancelling(&self) -> u32 {
        self.kind
            .task()
            .map_or(0, |t| t.num_cancels.load(Ordering::Relaxed))
    }

    fn uncancel(&self) -> u32 {
        let Some(t) = self.kind.task() else { return 0 };
        let n = t.num_cancels.load(Ordering::Relaxed);
        if n > 0 {
            t.num_cancels.store(n - 1, Ordering::Relaxed);
            if n == 1 && self.lp.profile() >= Profile::Py313 {
                t.withdraw_cancel();
            }
        }
        t.num_cancels.load(Ordering::Relaxed)
    }

    fn done(&self) -> bool {
        Core::done(self)
    }

    fn cancelled(&self) -> bool {
        Core::cancelled(self)
    }

    fn exception(&self) -> Option<Error> {
        let mut inner = self.lock();
        let FutureState::Finished(Err(e)) = &inner.state else {
            return None;
        };
        let e = Error::clone(e);
        inner.retrieved = true;
        Some(e)
    }

    fn add_done_hook(self: Arc<Self>, hook: Arc<dyn Fn() + Send + Sync>) -> Result<()> {
        Future { core: self }.add_done_callback(Arc::new(move |_: &Future<T>| hook()))
    }
}

/// Drops a task's coroutine, reporting a panic from its `Drop` to the loop.
fn drop_coro(lp: &EventLoop, coro: Coroutine) {
    if let Err(panic) = catch_unwind(AssertUnwindSafe(move || drop(coro))) {
        lp.report_drop_panics("a task's future", vec![Error::from_panic(panic)]);
    }
}

/// Ends the task: cancelled for a `CancelledError`, else with the outcome.
fn finish<T: Send + 'static>(fut: &Future<T>, t: &TaskState, outcome: Result<T>) {
    match outcome {
        Err(Error::Cancelled(msg)) => {
            // asyncio hands the CancelledError that ended the task to the
            // first reader only; later readers get one without a message.
            t.step.lock().set_first_cancel_msg(msg);
            fut.cancel_future(None);
        }
        other => {
            let _ = fut.complete(FutureState::finished(other));
        }
    }
    fut.core.lp.forget_task(t.key());
}

/// One step of a task: asyncio's `Task.__step`.
fn step<T: Send + 'static>(fut: &Future<T>, t: &TaskState) {
    t.flags.set(Flag::Scheduled, false);
    if fut.done() {
        return;
    }
    // Dropped after the borrow ends: the last reference to an awaited
    // future may run user code that touches this task.
    let awaited = std::mem::take(&mut t.step.lock().waiting_on);
    drop(awaited);
    let throw = t.start_step();
    let lp = fut.core.lp.clone();
    let Some(mut coro) = lp.take_coroutine(t.key()) else {
        return; // destroyed by close()
    };
    if let Some(exc) = throw.clone().filter(|_| !t.flags.get(Flag::Started)) {
        // Thrown into a coroutine that never started: its body never runs.
        drop_coro(&lp, coro);
        finish(fut, t, Err(exc));
        return;
    }
    t.flags.set(Flag::Started, true);
    t.step.lock().throw = throw.map(Box::new);
    t.flags.set(Flag::Stepping, true);
    let prev = set_current_task(Some(fut.core.clone()));
    let polled = catch_unwind(AssertUnwindSafe(|| {
        let mut out: Option<Poll<Result<T>>> = None;
        let waker = Waker::from(fut.core.clone());
        coro.poll_into(&mut Context::from_waker(&waker), &mut out);
        out.unwrap_or(Poll::Pending)
    }));
    set_current_task(prev);
    t.flags.set(Flag::Stepping, false);
    let unobserved = t.step.lock().throw.take();
    match polled {
        Err(panic) => {
            drop_coro(&lp, coro);
            finish(fut, t, Err(Error::from_panic(panic)));
        }
        Ok(Poll::Ready(outcome)) => {
            drop_coro(&lp, coro);
            let outcome = match unobserved {
                Some(exc) => Err(*exc),
                None => outcome,
            };
            if outcome.is_ok() && t.withdraw_cancel() {
                // Cancelled during the step that returned (TASK-5).
                let msg = t.pending_cancel_message();
                fut.cancel_future(msg);
                lp.forget_task(t.key());
            } else {
                finish(fut, t, outcome);
            }
        }
        Ok(Poll::Pending) => {
            if let Some(exc) = unobserved {
                // The coroutine could not observe the exception: drop it.
                drop_coro(&lp, coro);
                finish(fut, t, Err(*exc));
                return;
            }
            lp.put_coroutine(t.key(), coro);
            if t.cancel_pending() {
                // cancel() was called during this step: cancel what the task
                // now waits on, or deliver the cancellation at a later step.
                let msg = t.pending_cancel_message();
                match cancel_waiters(t, msg) {
                    Delivery::Delivered => {
                        t.withdraw_cancel();
                    }
                    Delivery::AtWakeUp => {}
                    Delivery::NeedsStep => schedule_step(fut),
                }
            }
        }
    }
}

/// `Task.cancel(msg)` (TASK-4), on the thread that holds the loop's work.
fn cancel_task<T: Send + 'static>(fut: &Future<T>, t: &TaskState, msg: Option<String>) -> bool {
    if fut.done_and_retrieved() {
        return false;
    }
    t.num_cancels.fetch_add(1, Ordering::Relaxed);
    deliver_cancel(fut, t, msg);
    true
}

/// `Task.cancel(msg)` from a thread while another runs the loop (THREAD-1):
/// counts the request at once (`cancelling()`), and hands its delivery to
/// the loop's thread through the inbox. A task that finishes first keeps
/// its outcome.
fn request_cancel<T: Send + 'static>(fut: &Future<T>, t: &TaskState, msg: Option<String>) -> bool {
    if fut.done_and_retrieved() {
        return false;
    }
    t.num_cancels.fetch_add(1, Ordering::Relaxed);
    let core = fut.core.clone();
    let _ = fut.core.lp.call_soon_threadsafe(move || {
        let fut = Future { core };
        if let Kind::Task(t) = &fut.core.kind {
            deliver_cancel(&fut, t, msg);
        }
    });
    true
}

/// The delivery part of a cancellation (TASK-4): cancels what the task
/// awaits, or marks its next step; nothing if it is done by now.
fn deliver_cancel<T: Send + 'static>(fut: &Future<T>, t: &TaskState, msg: Option<String>) {
    if fut.done() {
        return;
    }
    let delivery = cancel_waiters(t, msg.clone());
    if delivery == Delivery::Delivered {
        return;
    }
    t.cancel_at_next_step(msg);
    if delivery == Delivery::NeedsStep && !t.flags.get(Flag::Stepping) {
        schedule_step(fut);
    }
}

/// How a task's cancellation will reach it.
#[derive(Debug, PartialEq, Eq)]
enum Delivery {
    /// A loopspec future it awaits was cancelled: its wake-up delivers it.
    Delivered,
    /// No awaited future could be cancelled, but one will wake the task
    /// (it is done already, or is a gather of done children): the
    /// cancellation is delivered at that step, as in asyncio.
    AtWakeUp,
    /// Nothing will wake the task for it: it awaits no loopspec future (a
    /// foreign awaitable — asyncio always has a step queued there), or an
    /// await cycle led back to a task being cancelled (CPython recurses
    /// until `RecursionError`). A step must be queued.
    NeedsStep,
}

/// Cancels the loopspec futures the task awaits (asyncio's `_fut_waiter`).
fn cancel_waiters(t: &TaskState, msg: Option<String>) -> Delivery {
    let waiting = t.step.lock().waiting_on.clone();
    if waiting.is_empty() {
        return Delivery::NeedsStep;
    }
    t.flags.set(Flag::CancellingNow, true);
    let mut delivered = false;
    let mut cycle = false;
    for w in waiting {
        if w.in_cancel() {
            cycle = true; // do not go round the cycle again
        } else {
            delivered |= w.cancel_erased(msg.clone());
        }
    }
    t.flags.set(Flag::CancellingNow, false);
    match (delivered, cycle) {
        (true, _) => Delivery::Delivered,
        (false, true) => Delivery::NeedsStep,
        (false, false) => Delivery::AtWakeUp,
    }
}

/// Queues a step of the task (a no-op if one is queued).
fn schedule_step<T: Send + 'static>(fut: &Future<T>) {
    let me: Arc<dyn AnyTask> = fut.core.clone();
    let _ = fut.core.lp.with_work(|work| work.schedule_step(me));
}
