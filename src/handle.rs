//! [`Handle`] and [`TimerHandle`]: what `call_soon`, `call_later` and `call_at`
//! return, and how a scheduled callback is cancelled.
//!
//! A handle is only a cancellation flag shared between the caller and the
//! loop's queue entry, so it is `Send + Sync` and can be cancelled from any
//! thread (the callback itself stays on the loop's thread). The loop reads the
//! flag immediately before it would run the callback: a cancel that happens
//! before that point — including from an earlier callback of the same batch —
//! prevents the run (SCHED-3). Cancelling after the run does nothing and raises
//! nothing, and `cancelled()` reports `true` in both cases.

use crate::sync::{Arc, AtomicBool, Ordering};
use std::fmt;

/// A scheduled callback, returned by [`EventLoop::call_soon`](crate::EventLoop::call_soon).
///
/// ```
/// use loopspec::{ClockKind, EventLoop};
/// use std::cell::Cell;
/// use std::rc::Rc;
///
/// let lp = EventLoop::with_clock(ClockKind::Virtual);
/// let ran = Rc::new(Cell::new(false));
/// let r = ran.clone();
/// let h = lp.call_soon(move || r.set(true)).unwrap();
/// h.cancel();
/// lp.stop();
/// lp.run_forever().unwrap();
/// assert!(h.cancelled());
/// assert!(!ran.get());
/// ```
#[derive(Clone)]
pub struct Handle {
    inner: Arc<HandleState>,
}

struct HandleState {
    /// Set by [`Handle::cancel`]; read by the loop right before the callback
    /// would run. Never cleared.
    cancelled: AtomicBool,
    /// The callback's type name, for reprs and exception reports.
    name: &'static str,
}

impl Handle {
    pub(crate) fn new(name: &'static str) -> Handle {
        Handle {
            inner: Arc::new(HandleState {
                cancelled: AtomicBool::new(false),
                name,
            }),
        }
    }

    /// Cancels the callback: if it has not run yet, it never will.
    pub fn cancel(&self) {
        self.inner.cancelled.store(true, Ordering::Release);
    }

    /// Whether [`cancel`](Handle::cancel) has been called.
    pub fn cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::Acquire)
    }

    /// The name shown in reprs: the callback's Rust type name.
    pub(crate) fn name(&self) -> &'static str {
        self.inner.name
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.cancelled() {
            write!(f, "<Handle cancelled {}>", self.inner.name)
        } else {
            write!(f, "<Handle {}>", self.inner.name)
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
    handle: Handle,
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
