//! The sync shim: the one place that chooses between `std` and `loom`.
//!
//! Every piece of state that more than one thread can touch — the loop's
//! [`run state`](crate::run_state), its inbox of cross-thread submissions (an
//! `mpsc` channel and an atomic word), the parking condvar, counters — is
//! built from the types re-exported here. Under
//! `RUSTFLAGS="--cfg loom"` they are loom's model-checked doubles, so loom
//! explores the crate's real code, not a copy of it. Nothing in the crate
//! imports `std::sync` or `std::thread` for shared state directly.
//!
//! The two sides expose the same call shapes: [`Mutex::lock`] returns the
//! guard directly (a poisoned lock is recovered, since the crate never holds a
//! lock while user code runs), and [`Condvar::wait`] / [`Condvar::wait_timeout`]
//! take and return guards. Under loom, `wait_timeout` never times out (loom has
//! no time), so models must make progress through notifications only.
//!
//! The one exception is [`Global`], a process-wide setting (the policy the
//! free functions use), which loom cannot model and no model races.
//!
//! Thread-local state (the per-thread current-loop slot, the running loop and
//! the loop-bound halves of loops) uses [`thread_local!`](crate::sync::thread_local),
//! which is loom's mock under loom so that each modelled thread gets its own
//! slot.

#[cfg(not(loom))]
mod imp {
    pub(crate) use std::sync::Arc;
    pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
    pub(crate) use std::sync::mpsc;
    pub(crate) use std::thread;
    pub(crate) use std::thread_local;

    /// A mutex whose `lock` returns the guard directly.
    #[derive(Debug, Default)]
    pub(crate) struct Mutex<T>(std::sync::Mutex<T>);

    pub(crate) type MutexGuard<'a, T> = std::sync::MutexGuard<'a, T>;

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Mutex(std::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        }
    }

    /// A condition variable over [`Mutex`].
    #[derive(Debug, Default)]
    pub(crate) struct Condvar(std::sync::Condvar);

    impl Condvar {
        pub(crate) fn new() -> Self {
            Condvar(std::sync::Condvar::new())
        }

        pub(crate) fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
            self.0
                .wait(guard)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        }

        pub(crate) fn wait_timeout<'a, T>(
            &self,
            guard: MutexGuard<'a, T>,
            timeout: std::time::Duration,
        ) -> MutexGuard<'a, T> {
            match self.0.wait_timeout(guard, timeout) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            }
        }

        pub(crate) fn notify_one(&self) {
            self.0.notify_one();
        }

        pub(crate) fn notify_all(&self) {
            self.0.notify_all();
        }
    }
}

#[cfg(loom)]
mod imp {
    pub(crate) use loom::sync::Arc;
    pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
    pub(crate) use loom::sync::mpsc;
    pub(crate) use loom::thread;
    pub(crate) use loom::thread_local;

    /// A mutex whose `lock` returns the guard directly.
    #[derive(Debug)]
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    pub(crate) type MutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Mutex(loom::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        }
    }

    /// A condition variable over [`Mutex`].
    #[derive(Debug)]
    pub(crate) struct Condvar(loom::sync::Condvar);

    impl Condvar {
        pub(crate) fn new() -> Self {
            Condvar(loom::sync::Condvar::new())
        }

        pub(crate) fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
            self.0
                .wait(guard)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        }

        /// loom has no time: this waits like [`Condvar::wait`].
        pub(crate) fn wait_timeout<'a, T>(
            &self,
            guard: MutexGuard<'a, T>,
            timeout: std::time::Duration,
        ) -> MutexGuard<'a, T> {
            match self.0.wait_timeout(guard, timeout) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            }
        }

        pub(crate) fn notify_one(&self) {
            self.0.notify_one();
        }

        pub(crate) fn notify_all(&self) {
            self.0.notify_all();
        }
    }
}

pub(crate) use imp::*;

/// A process-wide setting behind a lock: the policy that the free functions
/// use (`set_event_loop_policy`). It is std's mutex in both builds: loom
/// cannot model a `static`, and no model exercises process-wide settings —
/// they are set before threads start, not raced.
#[derive(Debug)]
pub(crate) struct Global<T>(std::sync::Mutex<Option<T>>);

impl<T> Global<T> {
    pub(crate) const fn new() -> Self {
        Global(std::sync::Mutex::new(None))
    }

    /// Runs `f` on the setting (`None`: never set).
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut Option<T>) -> R) -> R {
        f(&mut self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}
