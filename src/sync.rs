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
//! In debug builds (not under loom, which reports such a deadlock itself),
//! [`Mutex::lock`] panics when the calling thread already holds the lock:
//! where a `RefCell` borrowed twice panics, a mutex locked twice by one thread
//! would deadlock. The guard records the holder's thread in an atomic next to
//! the lock and clears it on release, including while a [`Condvar`] waits.
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
    pub(crate) use std::sync::atomic::{
        AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering,
    };
    pub(crate) use std::sync::mpsc;
    pub(crate) use std::thread;
    pub(crate) use std::thread_local;

    #[cfg(not(debug_assertions))]
    pub(crate) use release::{Condvar, Mutex, MutexGuard};

    #[cfg(debug_assertions)]
    pub(crate) use checked::{Condvar, Mutex, MutexGuard};

    /// The release build: std's mutex and condvar, with `lock` recovering
    /// from poisoning.
    #[cfg(not(debug_assertions))]
    mod release {
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

    /// The debug build: the same mutex, which also records the thread that
    /// holds it, so that a thread locking it a second time panics instead of
    /// deadlocking (where a `RefCell` borrowed twice would have panicked).
    #[cfg(debug_assertions)]
    mod checked {
        use std::ops::{Deref, DerefMut};
        use std::sync::atomic::{AtomicU64, Ordering};

        /// This thread's number for [`Mutex`]'s owner field: never 0 (the
        /// field's "nobody" value), never shared by two threads.
        fn thread_number() -> u64 {
            static NEXT: AtomicU64 = AtomicU64::new(1);
            std::thread_local! {
                static NUMBER: u64 = NEXT.fetch_add(1, Ordering::Relaxed);
            }
            NUMBER.with(|n| *n)
        }

        /// A mutex whose `lock` returns the guard directly, and panics if
        /// the calling thread already holds it.
        #[derive(Debug, Default)]
        pub(crate) struct Mutex<T> {
            lock: std::sync::Mutex<T>,
            /// The [`thread_number`] of the thread holding the lock, 0 if
            /// none. Written only by the holder (set after locking, cleared
            /// before unlocking), so a thread reads its own number here
            /// exactly when it holds the lock: `Relaxed` is enough.
            owner: AtomicU64,
        }

        /// The guard of [`Mutex`]: clears the owner when dropped.
        pub(crate) struct MutexGuard<'a, T> {
            /// `None` only while [`Condvar`] waits with the lock released.
            guard: Option<std::sync::MutexGuard<'a, T>>,
            owner: &'a AtomicU64,
        }

        impl<T> Mutex<T> {
            pub(crate) fn new(value: T) -> Self {
                Mutex {
                    lock: std::sync::Mutex::new(value),
                    owner: AtomicU64::new(0),
                }
            }

            pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
                let me = thread_number();
                assert!(
                    self.owner.load(Ordering::Relaxed) != me,
                    "sync::Mutex locked again by the thread that holds it \
                     (a lock is held while code that takes it again runs)"
                );
                let guard = self
                    .lock
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                self.owner.store(me, Ordering::Relaxed);
                MutexGuard {
                    guard: Some(guard),
                    owner: &self.owner,
                }
            }
        }

        impl<'a, T> MutexGuard<'a, T> {
            /// Releases the ownership record and hands out std's guard (for
            /// a condvar wait, which releases the lock).
            fn release(mut self) -> (std::sync::MutexGuard<'a, T>, &'a AtomicU64) {
                let guard = self.guard.take().expect("guard held");
                self.owner.store(0, Ordering::Relaxed);
                (guard, self.owner)
            }

            /// Records the owner again for std's guard, reacquired.
            fn reacquire(guard: std::sync::MutexGuard<'a, T>, owner: &'a AtomicU64) -> Self {
                owner.store(thread_number(), Ordering::Relaxed);
                MutexGuard {
                    guard: Some(guard),
                    owner,
                }
            }
        }

        impl<T> Deref for MutexGuard<'_, T> {
            type Target = T;

            fn deref(&self) -> &T {
                self.guard.as_ref().expect("guard held")
            }
        }

        impl<T> DerefMut for MutexGuard<'_, T> {
            fn deref_mut(&mut self) -> &mut T {
                self.guard.as_mut().expect("guard held")
            }
        }

        impl<T> Drop for MutexGuard<'_, T> {
            fn drop(&mut self) {
                if self.guard.is_some() {
                    // Cleared before the field drops and unlocks.
                    self.owner.store(0, Ordering::Relaxed);
                }
            }
        }

        impl<T: std::fmt::Debug> std::fmt::Debug for MutexGuard<'_, T> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Debug::fmt(&**self, f)
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
                let (guard, owner) = guard.release();
                let guard = self
                    .0
                    .wait(guard)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                MutexGuard::reacquire(guard, owner)
            }

            pub(crate) fn wait_timeout<'a, T>(
                &self,
                guard: MutexGuard<'a, T>,
                timeout: std::time::Duration,
            ) -> MutexGuard<'a, T> {
                let (guard, owner) = guard.release();
                let guard = match self.0.wait_timeout(guard, timeout) {
                    Ok((guard, _)) => guard,
                    Err(poisoned) => poisoned.into_inner().0,
                };
                MutexGuard::reacquire(guard, owner)
            }

            pub(crate) fn notify_one(&self) {
                self.0.notify_one();
            }

            pub(crate) fn notify_all(&self) {
                self.0.notify_all();
            }
        }

        #[cfg(test)]
        mod tests {
            use crate::sync::{Condvar, Mutex};
            use std::time::Duration;

            #[test]
            #[should_panic(expected = "locked again by the thread that holds it")]
            fn a_second_lock_by_the_holder_panics() {
                let m = Mutex::new(0);
                let _held = m.lock();
                let _again = m.lock();
            }

            #[test]
            fn a_lock_released_or_waited_on_can_be_taken_again() {
                let m = Mutex::new(0);
                *m.lock() += 1;
                let cv = Condvar::new();
                let g = cv.wait_timeout(m.lock(), Duration::from_millis(1));
                drop(g);
                let other = std::thread::scope(|s| s.spawn(|| *m.lock() + 1).join().unwrap());
                assert_eq!(other, 2);
                assert_eq!(*m.lock(), 1);
            }
        }
    }
}

#[cfg(loom)]
mod imp {
    pub(crate) use loom::sync::Arc;
    pub(crate) use loom::sync::atomic::{
        AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering,
    };
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
