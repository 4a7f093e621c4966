//! [`Handle`] and [`TimerHandle`]: what `call_soon`, `call_later`,
//! `call_at` and `call_soon_threadsafe` return (and their `_local`
//! variants), and how a scheduled callback is cancelled.
//!
//! A handle shares its callback's cancellation state with the loop's queue
//! entry, so it is `Send + Sync` and can be cancelled from any thread. The
//! loop reads that state immediately before it would run the callback: a
//! cancel that happens before that point — including from an earlier
//! callback of the same batch — prevents the run (SCHED-3, XTHREAD-5).
//! Cancelling after the run does nothing and raises nothing, and
//! `cancelled()` reports `true` in both cases.
//!
//! There are two kinds of handle, by what the callback is:
//!
//! * A `Send` callback (`call_soon`, `call_later`, `call_at`,
//!   `call_soon_threadsafe`) travels with its cancellation state in one
//!   allocation, a `CallbackNode`, which both the handle and the queue
//!   entry point to; cancelling it drops the callback at once, as asyncio's
//!   `Handle.cancel()` drops its references. That queue entry is a
//!   `Submission`: what the ready queue, a timer and the inbox carry — a
//!   `Send` callback or a step request (a task's waker called off the
//!   loop's thread, asking for a step of its task).
//! * A local callback (`call_soon_local`, `call_later_local`,
//!   `call_at_local`) stays in the loop's local home under an id; its
//!   handle shares a `LocalFlag` — the cancellation flag, with that id —
//!   with the queue entry, a `LocalCall`. The flag is all the handle
//!   shares: a cancelled callback is dropped by the loop's thread, when the
//!   loop reaches its entry or its timer leaves the heap.
//!
//! Either way a queue entry is one pointer to the shared part (16 bytes).
//! The shared part is behind a `std::sync::Arc` (loom's `Arc` cannot become
//! a trait object); everything it shares between threads is a shim type, so
//! loom still sees every access.

use crate::sync::{AtomicBool, Mutex, Ordering};
use std::fmt;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

/// The shared part of a handle.
pub(crate) trait HandleCore: Send + Sync {
    /// Sets the cancellation flag. Never cleared.
    fn cancel(&self);
    /// Whether the flag is set.
    fn cancelled(&self) -> bool;
    /// The callback's Rust type name, for reprs and exception reports.
    fn name(&self) -> &'static str;
}

/// The shared part of a local callback's handle: its cancellation flag and
/// the id its value has in the loop's local home.
struct LocalFlag<F> {
    /// The callback's id in the local home.
    id: u64,
    /// Set by `cancel`, never cleared.
    cancelled: AtomicBool,
    /// The callback's type, for its name.
    _callback: PhantomData<fn() -> F>,
}

impl<F> HandleCore for LocalFlag<F> {
    fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
    }
    fn cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }
    fn name(&self) -> &'static str {
        std::any::type_name::<F>()
    }
}

/// What a [`LocalCall`] points to.
trait LocalCore: HandleCore {
    /// The callback's id in the local home.
    fn id(&self) -> u64;
}

impl<F> LocalCore for LocalFlag<F> {
    fn id(&self) -> u64 {
        self.id
    }
}

/// The queue side of a local callback (a ready entry, a timer): the
/// [`LocalFlag`] its handle shares, which holds the id of the callback's
/// value in the local home (16 bytes).
pub(crate) struct LocalCall(Arc<dyn LocalCore>);

impl LocalCall {
    /// The entry of a local callback of type `F` kept under `id`, with the
    /// handle that can cancel it: both point to one [`LocalFlag`].
    pub(crate) fn new<F: 'static>(id: u64) -> (LocalCall, Handle) {
        let flag = Arc::new(LocalFlag::<F> {
            id,
            cancelled: AtomicBool::new(false),
            _callback: PhantomData,
        });
        let core: Arc<dyn HandleCore> = flag.clone();
        (LocalCall(flag), Handle { core })
    }

    /// The callback's id in the local home.
    pub(crate) fn id(&self) -> u64 {
        self.0.id()
    }

    /// Whether the callback's handle was cancelled.
    pub(crate) fn cancelled(&self) -> bool {
        self.0.cancelled()
    }

    /// The callback's handle (for a report of its panic).
    pub(crate) fn into_handle(self) -> Handle {
        Handle { core: self.0 }
    }
}

impl fmt::Debug for LocalCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LocalCall({}, {})", self.id(), self.0.name())
    }
}

/// What a [`Submission`] points to: a `Send` callback with its
/// cancellation state ([`CallbackNode`]), or a task waker (whose step
/// request steps its task instead of running anything).
pub(crate) trait Submittable: HandleCore {
    /// Runs the callback unless it was cancelled (or already taken). Called
    /// once, by the loop's thread.
    fn run(&self);
    /// Drops the callback without running it (at `close()`).
    fn discard(&self);
    /// For a step request: the task's key (the loop steps the task instead
    /// of running anything).
    fn task_to_step(&self) -> Option<TaskKey> {
        None
    }
}

/// Names a task in its loop's table of unfinished tasks (`src/home/tasks.rs`):
/// the slot it was given and its id, unique within the loop and never
/// reused, so that a key kept after its task finished — a step request
/// still in the inbox, a forwarded cancellation — finds nothing rather than
/// the slot's next task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TaskKey {
    /// The task's slot in the table.
    pub(crate) slot: usize,
    /// The task's id (the N of its default name).
    pub(crate) id: u64,
}

/// The state of a `Send` callback. One lock guards the callback and its
/// cancellation, so `cancel()` releases the callback at once, as asyncio's
/// `Handle.cancel()` drops its references.
enum CallbackState<F> {
    /// Queued; the callback is here.
    Pending(F),
    /// Run, dropped by `close()`, or cancelled before it ran.
    Done { cancelled: bool },
}

/// A `Send` callback (`call_soon`, `call_later`, `call_at`,
/// `call_soon_threadsafe`) with its cancellation state, shared by its
/// [`Handle`] and its [`Submission`]: one allocation per callback.
struct CallbackNode<F> {
    /// The callback while it waits, then how it ended.
    state: Mutex<CallbackState<F>>,
}

impl<F: FnOnce() + Send> HandleCore for CallbackNode<F> {
    fn cancel(&self) {
        let old = std::mem::replace(
            &mut *self.state.lock(),
            CallbackState::Done { cancelled: true },
        );
        // The callback, if it had not run: dropped outside the lock, and a
        // panic of its destructor stays here (the handle knows no loop to
        // report to, and cancel() must not fail), said on stderr.
        if let Err(panic) = catch_unwind(AssertUnwindSafe(move || drop(old))) {
            eprintln!(
                "Exception while dropping a cancelled callback: {:?}",
                crate::Error::from_panic(panic)
            );
        }
    }
    fn cancelled(&self) -> bool {
        matches!(*self.state.lock(), CallbackState::Done { cancelled: true })
    }
    fn name(&self) -> &'static str {
        std::any::type_name::<F>()
    }
}

impl<F: FnOnce() + Send> CallbackNode<F> {
    /// Takes the callback if it is still pending; it is then done (not
    /// cancelled), whatever the caller does with it.
    fn take_pending(&self) -> Option<F> {
        let mut state = self.state.lock();
        match std::mem::replace(&mut *state, CallbackState::Done { cancelled: false }) {
            CallbackState::Pending(f) => Some(f),
            done => {
                *state = done;
                None
            }
        }
    }
}

impl<F: FnOnce() + Send> Submittable for CallbackNode<F> {
    fn run(&self) {
        if let Some(f) = self.take_pending() {
            f();
        }
    }

    fn discard(&self) {
        drop(self.take_pending());
    }
}

/// One piece of `Send` work queued for a loop (16 bytes): a callback of
/// `call_soon`, `call_later`, `call_at` or `call_soon_threadsafe`, or a
/// task waker's step request. The inbox carries these, timers keep them,
/// and the ready queue holds the callbacks until they run. Dropping one
/// without running it (a queue emptied by `close()`) drops the callback at
/// once, even while its handle lives on.
pub(crate) struct Submission(Option<Arc<dyn Submittable>>);

impl Submission {
    /// `f` as a submission, with the handle that can cancel it: both point
    /// to one [`CallbackNode`].
    pub(crate) fn callback<F: FnOnce() + Send + 'static>(f: F) -> (Submission, Handle) {
        let node: Arc<dyn Submittable> = Arc::new(CallbackNode {
            state: Mutex::new(CallbackState::Pending(f)),
        });
        let core: Arc<dyn HandleCore> = node.clone();
        (Submission(Some(node)), Handle { core })
    }

    /// A task waker's step request: `waker` itself is the submission, so a
    /// request allocates nothing.
    pub(crate) fn step_request(waker: Arc<dyn Submittable>) -> Submission {
        Submission(Some(waker))
    }

    /// For a step request, the task's key.
    pub(crate) fn task_to_step(&self) -> Option<TaskKey> {
        self.0.as_ref().and_then(|c| c.task_to_step())
    }

    /// Takes the submission off its queue to run it: its drop then discards
    /// nothing.
    pub(crate) fn start(mut self) -> Option<Started> {
        self.0.take().map(Started)
    }

    /// The callback's name, for reports.
    pub(crate) fn name(&self) -> &'static str {
        self.0.as_ref().map_or("?", |c| c.name())
    }
}

/// A [`Submission`] taken off the ready queue: [`run`](Started::run) once,
/// then, should it have panicked, named by its [handle](Started::into_handle).
pub(crate) struct Started(Arc<dyn Submittable>);

impl Started {
    /// Runs the callback unless it was cancelled.
    pub(crate) fn run(&self) {
        self.0.run();
    }

    /// The callback's handle (for a report of its panic).
    pub(crate) fn into_handle(self) -> Handle {
        Handle { core: self.0 }
    }
}

impl fmt::Debug for Submission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.task_to_step() {
            Some(key) => write!(f, "StepRequest({})", key.id),
            None => write!(f, "Call({})", self.name()),
        }
    }
}

impl Drop for Submission {
    fn drop(&mut self) {
        if let Some(call) = self.0.take() {
            call.discard();
        }
    }
}

/// A scheduled callback, returned by [`EventLoop::call_soon`](crate::EventLoop::call_soon)
/// and [`EventLoop::call_soon_threadsafe`](crate::EventLoop::call_soon_threadsafe).
/// Clones share one cancellation state.
///
/// ```
/// use loopspec::{ClockKind, EventLoop};
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicBool, Ordering};
///
/// let lp = EventLoop::with_clock(ClockKind::Virtual);
/// let ran = Arc::new(AtomicBool::new(false));
/// let r = ran.clone();
/// let h = lp.call_soon(move || r.store(true, Ordering::Relaxed)).unwrap();
/// h.cancel();
/// lp.stop();
/// lp.run_forever().unwrap();
/// assert!(h.cancelled());
/// assert!(!ran.load(Ordering::Relaxed));
/// ```
#[derive(Clone)]
pub struct Handle {
    /// Shared with the queue entry (and every clone).
    core: Arc<dyn HandleCore>,
}

impl Handle {
    /// Cancels the callback: if it has not run yet, it never will.
    pub fn cancel(&self) {
        self.core.cancel();
    }

    /// Whether [`cancel`](Handle::cancel) has been called.
    pub fn cancelled(&self) -> bool {
        self.core.cancelled()
    }

    /// The name shown in reprs: the callback's Rust type name.
    pub(crate) fn name(&self) -> &'static str {
        self.core.name()
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.cancelled() {
            write!(f, "<Handle cancelled {}>", self.name())
        } else {
            write!(f, "<Handle {}>", self.name())
        }
    }
}

/// A callback scheduled at a point in time, returned by
/// [`EventLoop::call_later`](crate::EventLoop::call_later) and
/// [`EventLoop::call_at`](crate::EventLoop::call_at).
///
/// ```
/// use loopspec::{ClockKind, EventLoop};
///
/// let lp = EventLoop::with_clock(ClockKind::Virtual);
/// let t = lp.call_later(2.5, || ()).unwrap();
/// assert_eq!(t.when(), 2.5);
/// t.cancel();
/// assert!(t.cancelled());
/// ```
#[derive(Clone)]
pub struct TimerHandle {
    /// The timer's cancellation flag and name.
    handle: Handle,
    /// The deadline in loop time. Fixed.
    when: f64,
}

impl TimerHandle {
    pub(crate) fn new(handle: Handle, when: f64) -> TimerHandle {
        TimerHandle { handle, when }
    }

    /// The absolute deadline, in the loop's [`time`](crate::EventLoop::time).
    pub fn when(&self) -> f64 {
        self.when
    }

    /// Cancels the timer: if its callback has not run yet, it never will.
    pub fn cancel(&self) {
        self.handle.cancel();
    }

    /// Whether [`cancel`](TimerHandle::cancel) has been called.
    pub fn cancelled(&self) -> bool {
        self.handle.cancelled()
    }

    /// The plain handle of this timer.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }
}

impl fmt::Debug for TimerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = if self.cancelled() { "cancelled " } else { "" };
        write!(
            f,
            "<TimerHandle {state}when={} {}>",
            self.when,
            self.handle.name()
        )
    }
}
