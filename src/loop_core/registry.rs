//! Where a loop's work is, and which thread holds its local work: the
//! per-thread registry, and the THREAD rules of SPEC.md.
//!
//! * The loop's [`Work`] (ready queue, timers, tasks; `Send`) is in the run
//!   state while nobody runs or borrows it; a run takes it for the run, and
//!   a call on an idle loop borrows it for the call
//!   ([`with_work`](EventLoop::with_work)). Either way it is back in the run
//!   state, whole, before anyone else can take it, so a run on any thread
//!   finds every callback, timer and task scheduled before it (THREAD-8).
//! * A call made while another thread runs the loop is refused
//!   (`NonThreadSafeCall`, THREAD-1); `call_soon_threadsafe` and the other
//!   thread-safe calls go through the inbox instead.
//! * Local work (the `*_local` calls, [`with_local`](EventLoop::with_local))
//!   makes the calling thread the loop's local home, recorded in the run
//!   state ([`RunState::local`]) and, for the values, in this thread's
//!   [`LocalHome`]. While it exists only that thread may run the loop
//!   (THREAD-2) or schedule local work on it (THREAD-1).
//! * A run that ends with its local home empty releases it (THREAD-3; in
//!   `src/event_loop/lifecycle.rs`), and so does `close()` on that thread.
//! * A local home thread that exits drops its local work and takes its
//!   tokens out of the loop's work (THREAD-4); the loop's own work stays.
//! * A loop closed from another thread drops its local work here at the
//!   local home's next call on it, or at its exit (THREAD-5).
//!
//! The registry also records the loop each thread is running, for
//! [`get_running_loop`] and the fast path of every scheduling call, and the
//! task whose step the thread is running ([`current_task`]), which loopspec
//! awaitables consult to deliver what a step throws.

use super::shared::EventLoop;
use crate::error::{Error, Result, drop_each};
use crate::handle::TaskKey;
use crate::home::erased::{AnyTask, Coroutine};
use crate::home::local::LocalHome;
use crate::home::work::Work;
use crate::home::{Cleared, clear_local, clear_work};
use crate::run_state::{HomeThread, RunState};
use crate::sync::thread::{self, ThreadId};
use crate::sync::thread_local;
use crate::thread_name;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

/// The loop a thread runs, with what the run holds.
pub(crate) struct Running {
    /// The loop.
    pub(crate) lp: EventLoop,
    /// Its work, taken from the run state for the run.
    pub(crate) work: Rc<Work>,
    /// This thread's local home of the loop, if it is the loop's local home
    /// (set by the run, or by a local call made during it).
    pub(crate) local: Option<Rc<LocalHome>>,
}

/// What a thread knows about the loops it runs, borrows and is local home
/// to.
#[derive(Default)]
struct ThreadLoops {
    /// The loop this thread is running (at most one: a thread cannot run two
    /// loops at once, LIFE-5). Set and cleared by the run.
    running: Option<Running>,
    /// Loops whose work this thread borrows for one call, innermost last.
    borrowed: Vec<(EventLoop, Rc<Work>)>,
    /// Loops whose local home is (or was) this thread, with the claim's
    /// epoch ([`RunState::epoch`]). An entry whose epoch is not the loop's
    /// current one is stale: the local home was released and claimed again
    /// since.
    locals: Vec<(EventLoop, u64, Rc<LocalHome>)>,
}

impl Drop for ThreadLoops {
    /// The thread is exiting: it stops being local home to every loop it
    /// holds (THREAD-4).
    fn drop(&mut self) {
        // A loom model that failed unwinds its threads; touching loom objects
        // then aborts the process. Nothing needs releasing in a failed model.
        #[cfg(loom)]
        if std::thread::panicking() {
            std::mem::forget(std::mem::take(&mut self.locals));
            std::mem::forget(std::mem::take(&mut self.borrowed));
            std::mem::forget(self.running.take());
            return;
        }
        self.running = None;
        self.borrowed.clear();
        for (lp, epoch, local) in std::mem::take(&mut self.locals) {
            lp.local_home_exits(epoch, &local);
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

/// The work of `lp` if this thread runs it or borrows it.
pub(super) fn work_here(lp: &EventLoop) -> Option<Rc<Work>> {
    LOOPS
        .try_with(|l| {
            let l = l.borrow();
            match &l.running {
                Some(r) if r.lp == *lp => Some(r.work.clone()),
                _ => l
                    .borrowed
                    .iter()
                    .rev()
                    .find(|(b, _)| b == lp)
                    .map(|(_, w)| w.clone()),
            }
        })
        .ok()
        .flatten()
}

/// Whether this thread runs `lp`.
fn runs_here(lp: &EventLoop) -> bool {
    LOOPS
        .try_with(|l| l.borrow().running.as_ref().is_some_and(|r| r.lp == *lp))
        .unwrap_or(false)
}

/// Records that this thread borrows `lp`'s work (innermost last).
pub(super) fn push_borrowed(lp: &EventLoop, work: Rc<Work>) {
    let _ = LOOPS.try_with(|l| l.borrow_mut().borrowed.push((lp.clone(), work)));
}

/// Forgets this thread's innermost borrow of `lp`'s work.
pub(super) fn pop_borrowed(lp: &EventLoop) {
    let _ = LOOPS.try_with(|l| {
        let mut l = l.borrow_mut();
        if let Some(i) = l.borrowed.iter().rposition(|(b, _)| b == lp) {
            l.borrowed.remove(i);
        }
    });
}

/// The loop this thread is running, if any.
pub(crate) fn running_loop() -> Option<EventLoop> {
    LOOPS
        .try_with(|l| l.borrow().running.as_ref().map(|r| r.lp.clone()))
        .ok()
        .flatten()
}

/// Records (or, with `None`, clears) the loop this thread runs; returns
/// what was recorded before.
pub(crate) fn set_running(running: Option<Running>) -> Option<Running> {
    LOOPS
        .try_with(|l| std::mem::replace(&mut l.borrow_mut().running, running))
        .ok()
        .flatten()
}

/// Records `local` as this thread's local home of the loop it runs.
fn set_running_local(lp: &EventLoop, local: &Rc<LocalHome>) {
    let _ = LOOPS.try_with(|l| {
        if let Some(r) = l.borrow_mut().running.as_mut().filter(|r| r.lp == *lp) {
            r.local = Some(local.clone());
        }
    });
}

/// This thread's local home of `lp` for the claim `epoch`, if it has it.
fn local_for_claim(lp: &EventLoop, epoch: u64) -> Option<Rc<LocalHome>> {
    LOOPS
        .try_with(|l| {
            l.borrow()
                .locals
                .iter()
                .find(|(b, e, _)| b == lp && *e == epoch)
                .map(|(_, _, h)| h.clone())
        })
        .ok()
        .flatten()
}

/// Records a new local home of `lp` for the claim `epoch`. Returns any stale
/// one of the same loop, for the caller to clear once it holds no lock.
fn insert_local(lp: &EventLoop, epoch: u64, local: Rc<LocalHome>) -> Option<Rc<LocalHome>> {
    LOOPS
        .try_with(|l| {
            let mut l = l.borrow_mut();
            let stale = l
                .locals
                .iter()
                .position(|(b, _, _)| b == lp)
                .map(|i| l.locals.swap_remove(i).2);
            l.locals.push((lp.clone(), epoch, local));
            stale
        })
        .ok()
        .flatten()
}

/// Removes this thread's local home of `lp`, if any, and returns it.
fn remove_local(lp: &EventLoop) -> Option<Rc<LocalHome>> {
    LOOPS
        .try_with(|l| {
            let mut l = l.borrow_mut();
            l.locals
                .iter()
                .position(|(b, _, _)| b == lp)
                .map(|i| l.locals.swap_remove(i).2)
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
    running_loop().ok_or_else(|| Error::NoRunningLoop)
}

impl EventLoop {
    /// This thread's local home of the loop, during its run here or a
    /// borrow, claiming it if the loop has none.
    pub(super) fn local_here_claiming(&self) -> Result<Rc<LocalHome>> {
        if let Some(local) = self.own_local() {
            return Ok(local);
        }
        let me = current_thread_id();
        let mut stale = None;
        let claimed = {
            let mut st = self.lock();
            self.claim_local(&mut st, me, &mut stale)
                .map_err(|_| Error::NonThreadSafeCall)
        };
        if let Some(stale) = stale {
            self.clear_local_home(&stale);
        }
        let local = claimed?;
        if runs_here(self) {
            set_running_local(self, &local);
        }
        Ok(local)
    }

    /// This thread's local home of the loop, if it is the loop's local
    /// home; claims nothing.
    pub(crate) fn own_local(&self) -> Option<Rc<LocalHome>> {
        let from_run = LOOPS
            .try_with(|l| {
                l.borrow()
                    .running
                    .as_ref()
                    .filter(|r| r.lp == *self)
                    .and_then(|r| r.local.clone())
            })
            .ok()
            .flatten();
        if from_run.is_some() {
            return from_run;
        }
        let me = current_thread_id();
        let epoch = {
            let st = self.lock();
            match &st.local {
                Some(home) if home.thread == me => st.epoch,
                _ => return None,
            }
        };
        local_for_claim(self, epoch)
    }

    /// This thread's local home of the loop, making it the local home if the
    /// loop has none. Fails with `BoundToThread` when another thread is.
    /// Runs under the run-state lock; a stale local home found on the way
    /// goes to `stale`, to be cleared unlocked.
    pub(crate) fn claim_local(
        &self,
        st: &mut RunState,
        me: ThreadId,
        stale: &mut Option<Rc<LocalHome>>,
    ) -> Result<Rc<LocalHome>> {
        match &st.local {
            Some(home) if home.thread == me => {
                local_for_claim(self, st.epoch).ok_or_else(|| Error::BoundToThread {
                    thread: home.name.clone(),
                })
            }
            // Seeded bug (`double-run`): a second thread gets past the local
            // home check too.
            #[cfg(not(loopspec_mutant = "double-run"))]
            Some(home) => Err(Error::BoundToThread {
                thread: home.name.clone(),
            }),
            _ => {
                st.epoch += 1;
                st.local = Some(HomeThread {
                    thread: me,
                    name: thread_name::current(None),
                });
                let local = Rc::new(LocalHome::default());
                *stale = insert_local(self, st.epoch, local.clone());
                Ok(local)
            }
        }
    }

    /// The local home this thread holds for the loop, if any, taken out of
    /// the registry (the loop was closed, here or by another thread,
    /// THREAD-5; or the local home was released after a run, THREAD-3) and
    /// its values dropped here.
    pub(crate) fn drop_own_local(&self) {
        if let Some(local) = remove_local(self) {
            self.clear_local_home(&local);
        }
    }

    /// This thread's local home of the loop, taken out of the registry
    /// (`close()` on the local home thread).
    pub(crate) fn take_own_local(&self) -> Option<Rc<LocalHome>> {
        remove_local(self)
    }

    /// Empties a local home, reporting its pending local tasks (TASK-8).
    pub(super) fn clear_local_home(&self, local: &LocalHome) {
        let mut cleared = Cleared::default();
        clear_local(local, Vec::new(), &mut cleared);
        self.report_cleared(cleared);
    }

    /// Empties the loop's work (`close()`), with this thread's local home of
    /// it if it is the local home, reporting pending tasks (TASK-8).
    pub(crate) fn clear_work(&self, work: &Work, local: Option<&LocalHome>) {
        self.report_cleared(clear_work(work, local));
    }

    /// The local home thread exits (THREAD-4): if it still is the loop's
    /// local home, its tokens leave the loop's work in the same critical
    /// section that releases it (H6); its local values are dropped here.
    /// The loop's own work stays where it is.
    fn local_home_exits(&self, epoch: u64, local: &LocalHome) {
        #[cfg(loopspec_mutant = "exit-drops-send-work")]
        let mut gone = None;
        let purged = {
            // The exiting thread borrows nothing, and cannot ask for its id
            // any more (its thread-locals are being destroyed): any borrow is
            // another thread's.
            let mut st = self.lock();
            while st.borrowed.is_some() {
                st = self.wait_for_handoff(st);
            }
            if st.epoch == epoch && st.local.is_some() {
                st.local = None;
                // Planted bug (`release-local-before-purge`): the purge in a
                // critical section of its own, after the release — a run
                // that starts in between takes the tokens with the work.
                #[cfg(loopspec_mutant = "release-local-before-purge")]
                {
                    drop(st);
                    st = self.lock();
                }
                // Planted bug (`exit-drops-send-work`): the loop's own work
                // goes with the exiting thread too, as when all of it was
                // its home thread's.
                #[cfg(loopspec_mutant = "exit-drops-send-work")]
                {
                    gone = st.work.as_ref().map(Work::take);
                }
                st.work.as_ref().map(Work::purge_local)
            } else {
                None
            }
        };
        #[cfg(loopspec_mutant = "exit-drops-send-work")]
        if let Some(gone) = gone {
            self.clear_work(&gone, None);
        }
        let mut cleared = Cleared::default();
        let mut tasks = Vec::new();
        if let Some(purged) = purged {
            drop_each(purged.ready, &mut cleared.panics);
            drop_each(purged.timers, &mut cleared.panics);
            tasks = purged.tasks;
        }
        clear_local(local, tasks, &mut cleared);
        self.report_cleared(cleared);
    }

    /// Removes a finished task from the loop's table of unfinished tasks. A
    /// task finishes in one of its steps, so this thread runs the loop.
    pub(crate) fn forget_task(&self, key: TaskKey) {
        if let Some(work) = work_here(self) {
            let removed = work.tasks.borrow_mut().remove(key);
            drop(removed);
        }
    }

    /// Takes task `id`'s coroutine out for a step (`None`: destroyed, or
    /// this thread does not run the loop). A task steps in an iteration, so
    /// this thread runs the loop.
    pub(crate) fn take_coroutine(&self, key: TaskKey) -> Option<Coroutine> {
        let work = work_here(self)?;
        let sent = work
            .tasks
            .borrow_mut()
            .get_mut(key)
            .and_then(|e| e.coro.take());
        match sent {
            Some(c) => Some(Coroutine::Send(c)),
            None => self
                .own_local()?
                .take_coroutine(key.id)
                .map(Coroutine::Local),
        }
    }

    /// Puts task `id`'s coroutine back after a step that left it pending.
    pub(crate) fn put_coroutine(&self, key: TaskKey, coro: Coroutine) {
        let rest = match coro {
            Coroutine::Send(c) => match work_here(self) {
                Some(work) => match work.tasks.borrow_mut().get_mut(key) {
                    Some(e) => e.coro.replace(c).map(Coroutine::Send),
                    None => Some(Coroutine::Send(c)),
                },
                None => Some(Coroutine::Send(c)),
            },
            Coroutine::Local(c) => {
                let known = work_here(self).is_some_and(|w| w.tasks.borrow().get(key).is_some());
                match self.own_local() {
                    Some(local) if known => {
                        local.put_coroutine(key.id, c);
                        None
                    }
                    _ => Some(Coroutine::Local(c)),
                }
            }
        };
        // Not expected: the entry leaves only when the task finishes.
        drop(rest);
    }

    /// The loop's unfinished tasks, in id order (through a borrow of the
    /// work on an idle loop; none while another thread runs it).
    pub(crate) fn unfinished_tasks(&self) -> Vec<Arc<dyn AnyTask>> {
        self.with_work(Work::tasks).unwrap_or_default()
    }
}
