//! Which thread holds a loop's loop-bound work: the per-thread registry of
//! homes, and the THREAD rules of SPEC.md.
//!
//! * A thread becomes a loop's home with its first loop-bound call (a
//!   scheduling call, `create_task`, a run, `wrap_future`, completing a
//!   future with callbacks — everything that goes through
//!   [`with_home`](EventLoop::with_home)) while the loop has none
//!   (THREAD-1); the claim is recorded in the run state
//!   ([`RunState::home`](crate::run_state::RunState)) and the [`Home`] in
//!   this thread's registry.
//! * A loop-bound call from another thread fails; a run from another
//!   thread fails with THREAD-2's error.
//! * A run that ends with an empty home releases it (THREAD-3; in
//!   `src/event_loop/lifecycle.rs`), and so does `close()` on the home
//!   thread.
//! * A home thread that exits drops its loop-bound work and hands the
//!   cross-thread submissions it had taken in back to the inbox (THREAD-4).
//! * A loop closed from another thread is dropped here at the home thread's
//!   next call on it, or at its exit (THREAD-5).
//!
//! The registry also records the loop each thread is running, for
//! [`get_running_loop`] and the fast path of every loop-bound call, and the
//! task whose step the thread is running ([`current_task`]), which loopspec
//! awaitables consult to deliver what a step throws.

use super::shared::EventLoop;
use crate::error::{Error, Result, drop_each};
use crate::home::Home;
use crate::home::erased::{AnyTask, Coroutine};
use crate::run_state::{HomeThread, RunState};
use crate::sync::thread::{self, ThreadId};
use crate::sync::thread_local;
use crate::thread_name;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

/// What a thread knows about the loops it runs and is home to.
#[derive(Default)]
struct ThreadLoops {
    /// The loop this thread is running, with its home (at most one: a thread
    /// cannot run two loops at once, LIFE-5). Set and cleared by the run.
    running: Option<(EventLoop, Rc<Home>)>,
    /// Loops whose home is (or was) this thread, with the claim's epoch
    /// ([`RunState::epoch`]). An entry whose epoch is not the loop's current
    /// one is stale: the loop was released and claimed again since.
    homes: Vec<(EventLoop, u64, Rc<Home>)>,
}

impl Drop for ThreadLoops {
    /// The thread is exiting: it stops being home to every loop it holds
    /// (THREAD-4).
    fn drop(&mut self) {
        // A loom model that failed unwinds its threads; touching loom objects
        // then aborts the process. Nothing needs releasing in a failed model.
        #[cfg(loom)]
        if std::thread::panicking() {
            std::mem::forget(std::mem::take(&mut self.homes));
            std::mem::forget(self.running.take());
            return;
        }
        self.running = None;
        for (lp, epoch, home) in std::mem::take(&mut self.homes) {
            lp.home_thread_exits(epoch, &home);
        }
    }
}

thread_local! {
    static LOOPS: RefCell<ThreadLoops> = RefCell::new(ThreadLoops::default());
    /// This thread's id, looked up once (`thread::current()` clones an `Arc`).
    static THREAD_ID: ThreadId = thread::current().id();
    /// The task whose step is running on this thread (set by the step).
    static CURRENT_TASK: RefCell<Option<Arc<dyn AnyTask>>> = RefCell::new(None);
}

/// The task whose step is running on this thread, if any (asyncio's
/// `current_task()`, without the running-loop check).
pub(crate) fn current_task() -> Option<Arc<dyn AnyTask>> {
    CURRENT_TASK.try_with(|c| c.borrow().clone()).ok().flatten()
}

/// Records the task whose step this thread runs (asyncio's `_enter_task`,
/// and with the previous one, `_leave_task`); returns the previous one.
pub(crate) fn set_current_task(task: Option<Arc<dyn AnyTask>>) -> Option<Arc<dyn AnyTask>> {
    CURRENT_TASK
        .try_with(|c| std::mem::replace(&mut *c.borrow_mut(), task))
        .ok()
        .flatten()
}

/// The calling thread's id.
pub(crate) fn current_thread_id() -> ThreadId {
    THREAD_ID
        .try_with(|id| *id)
        .unwrap_or_else(|_| thread::current().id())
}

/// The home of `lp` if this thread is running it.
fn running_home(lp: &EventLoop) -> Option<Rc<Home>> {
    LOOPS
        .try_with(|l| match &l.borrow().running {
            Some((r, home)) if r == lp => Some(home.clone()),
            _ => None,
        })
        .ok()
        .flatten()
}

/// The loop this thread is running, if any.
pub(crate) fn running_loop() -> Option<EventLoop> {
    LOOPS
        .try_with(|l| l.borrow().running.as_ref().map(|(lp, _)| lp.clone()))
        .ok()
        .flatten()
}

/// Records (or, with `None`, clears) the loop this thread runs.
pub(crate) fn set_running(running: Option<(EventLoop, Rc<Home>)>) {
    let old = LOOPS
        .try_with(|l| std::mem::replace(&mut l.borrow_mut().running, running))
        .ok()
        .flatten();
    drop(old);
}

/// This thread's home of `lp` for the claim `epoch`, if it has it.
fn home_for_claim(lp: &EventLoop, epoch: u64) -> Option<Rc<Home>> {
    LOOPS
        .try_with(|l| {
            l.borrow()
                .homes
                .iter()
                .find(|(b, e, _)| b == lp && *e == epoch)
                .map(|(_, _, h)| h.clone())
        })
        .ok()
        .flatten()
}

/// Records a new home of `lp` for the claim `epoch`. Returns any stale home
/// of the same loop, for the caller to drop once it holds no lock.
fn insert_home(lp: &EventLoop, epoch: u64, home: Rc<Home>) -> Option<Rc<Home>> {
    LOOPS
        .try_with(|l| {
            let mut l = l.borrow_mut();
            let stale = l
                .homes
                .iter()
                .position(|(b, _, _)| b == lp)
                .map(|i| l.homes.swap_remove(i).2);
            l.homes.push((lp.clone(), epoch, home));
            stale
        })
        .ok()
        .flatten()
}

/// Removes this thread's home of `lp`, if any, and returns it.
fn remove_home(lp: &EventLoop) -> Option<Rc<Home>> {
    LOOPS
        .try_with(|l| {
            let mut l = l.borrow_mut();
            l.homes
                .iter()
                .position(|(b, _, _)| b == lp)
                .map(|i| l.homes.swap_remove(i).2)
        })
        .ok()
        .flatten()
}

/// The loop running in this thread: asyncio's `get_running_loop()` (POLICY-10).
///
/// ```
/// use loopspec::{ClockKind, Error, EventLoop};
///
/// assert_eq!(loopspec::get_running_loop().unwrap_err(), Error::NoRunningLoop);
/// let lp = EventLoop::with_clock(ClockKind::Virtual);
/// let found = lp.run_until_complete(async { loopspec::get_running_loop() }).unwrap();
/// assert_eq!(found, lp);
/// ```
pub fn get_running_loop() -> Result<EventLoop> {
    running_loop().ok_or(Error::NoRunningLoop)
}

impl EventLoop {
    /// Runs `f` with the loop's home on this thread, claiming the loop for
    /// this thread if it has no home (THREAD-1). The fast path — this thread
    /// runs the loop — takes no lock. Every call first moves what the inbox
    /// holds to the ready queue, so work handed over from other threads
    /// keeps its place before later local work (XTHREAD-2).
    pub(crate) fn with_home<R>(&self, f: impl FnOnce(&Home) -> R) -> Result<R> {
        if let Some(home) = self.home_if_running_here() {
            return Ok(f(&home));
        }
        let me = current_thread_id();
        let mut stale = None;
        let result = {
            let mut st = self.lock();
            if st.closed {
                Err(Error::Closed)
            } else if st.running.is_some_and(|t| t != me) {
                Err(Error::NonThreadSafeCall)
            } else {
                match self.claim_home(&mut st, me, &mut stale) {
                    Ok(home) => {
                        home.work.drain(&self.shared.inbox);
                        Ok(f(&home))
                    }
                    Err(_) => Err(Error::NonThreadSafeCall),
                }
            }
        };
        if let Some(home) = stale {
            self.clear_home(&home);
        }
        if matches!(result, Err(Error::Closed)) {
            self.drop_own_home();
        }
        result
    }

    /// The loop's home, if this thread runs the loop (the fast path of every
    /// scheduling call), after moving pending inbox submissions ahead of
    /// whatever the caller is about to queue.
    pub(super) fn home_if_running_here(&self) -> Option<Rc<Home>> {
        let home = running_home(self)?;
        if self.shared.inbox.pending() {
            home.work.drain(&self.shared.inbox);
        }
        Some(home)
    }

    /// This thread's home of the loop, if it holds it; claims nothing.
    pub(crate) fn own_home(&self) -> Option<Rc<Home>> {
        if let Some(home) = running_home(self) {
            return Some(home);
        }
        let me = current_thread_id();
        let epoch = {
            let st = self.lock();
            match &st.home {
                Some(home) if home.thread == me => st.epoch,
                _ => return None,
            }
        };
        home_for_claim(self, epoch)
    }

    /// This thread's home of the loop, claiming the loop if it has no home.
    /// Fails with `BoundToThread` when another thread is home. Runs under the
    /// run-state lock; a stale home found on the way goes to `stale`, to be
    /// cleared unlocked.
    pub(crate) fn claim_home(
        &self,
        st: &mut RunState,
        me: ThreadId,
        stale: &mut Option<Rc<Home>>,
    ) -> Result<Rc<Home>> {
        match &st.home {
            Some(home) if home.thread == me => {
                home_for_claim(self, st.epoch).ok_or_else(|| Error::BoundToThread {
                    thread: home.name.clone(),
                })
            }
            // Seeded bug (`double-run`): a second thread gets past the home
            // check too.
            #[cfg(not(loopspec_mutant = "double-run"))]
            Some(home) => Err(Error::BoundToThread {
                thread: home.name.clone(),
            }),
            _ => {
                st.epoch += 1;
                st.home = Some(HomeThread {
                    thread: me,
                    name: thread_name::current(None),
                });
                let home = Rc::new(Home::default());
                *stale = insert_home(self, st.epoch, home.clone());
                Ok(home)
            }
        }
    }

    /// Drops the loop-bound work this thread holds for the loop, if any: the
    /// loop was closed (here, or by another thread, THREAD-5) or released
    /// after a run (THREAD-3).
    pub(crate) fn drop_own_home(&self) {
        if let Some(home) = remove_home(self) {
            self.clear_home(&home);
        }
    }

    /// Empties a home, reporting pending tasks (TASK-8).
    pub(crate) fn clear_home(&self, home: &Home) {
        self.report_cleared(home.clear());
    }

    /// The home thread exits (THREAD-4): the cross-thread submissions its
    /// home had taken in go back to the front of the inbox, unless the loop
    /// is closed (then they are dropped here, THREAD-5); the home is released
    /// if it still is this claim; its loop-bound work is dropped here.
    fn home_thread_exits(&self, epoch: u64, home: &Home) {
        let taken = home.work.take_submissions();
        // Handed back while this thread is still the home: the next home
        // claims the loop after the release below, so it finds them.
        // Seeded bug (`exit-drops-submissions`): they are dropped instead.
        #[cfg(not(loopspec_mutant = "exit-drops-submissions"))]
        let refused = self.shared.inbox.hand_back(taken).err();
        #[cfg(loopspec_mutant = "exit-drops-submissions")]
        let refused = Some(taken);
        {
            let mut st = self.lock();
            if st.epoch == epoch && st.home.is_some() {
                st.home = None;
            }
        }
        let mut cleared = home.clear();
        drop_each(refused.into_iter().flatten(), &mut cleared.panics);
        self.report_cleared(cleared);
    }

    /// Removes a finished task from the loop's table of unfinished tasks. A
    /// task finishes in one of its steps, so this thread runs the loop.
    pub(crate) fn forget_task(&self, id: u64) {
        if let Some(home) = running_home(self) {
            let removed = home.work.tasks.borrow_mut().remove(&id);
            drop(removed);
        }
    }

    /// Takes task `id`'s coroutine out of the table for a step (`None`:
    /// destroyed, or this thread does not run the loop). A task steps in
    /// an iteration, so this thread runs the loop.
    pub(crate) fn take_coroutine(&self, id: u64) -> Option<Coroutine> {
        running_home(self)?.take_coroutine(id)
    }

    /// Puts task `id`'s coroutine back after a step that left it pending.
    pub(crate) fn put_coroutine(&self, id: u64, coro: Coroutine) {
        let rest = match running_home(self) {
            Some(home) => home.put_coroutine(id, coro),
            None => Some(coro),
        };
        // Not expected: the entry leaves only when the task finishes.
        drop(rest);
    }

    /// Unfinished tasks of this loop, if this thread is its home.
    pub(crate) fn local_tasks(&self) -> Vec<Arc<dyn AnyTask>> {
        running_home(self)
            .or_else(|| {
                let st = self.lock();
                home_for_claim(self, st.epoch)
            })
            .map(|h| h.work.tasks())
            .unwrap_or_default()
    }
}
