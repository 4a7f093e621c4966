//! How a call reaches the loop's work (SPEC.md THREAD-1, THREAD-8,
//! THREAD-9; H1–H4 of `docs/send-work.md`): the fast path on the thread
//! that runs the loop; on an idle loop, a borrow of the work for the
//! duration of the call, from any thread; while another thread runs the
//! loop, a refusal — or, for the calls that can be made safe, the inbox.

use super::registry::{current_thread_id, pop_borrowed, push_borrowed, work_here};
use super::shared::EventLoop;
use crate::error::{Error, Result};
use crate::home::local::LocalHome;
use crate::home::work::Work;
use crate::run_state::RunState;
use crate::sync::MutexGuard;
use std::rc::Rc;

/// What [`EventLoop::claim_idle_work`] found. Returned once and taken
/// apart at once: boxing the work would cost an allocation per call on an
/// idle loop.
#[allow(clippy::large_enum_variant)]
enum Claim {
    /// The work, taken for a borrow, with this thread's local home of the
    /// loop when one was asked for.
    Borrowed(Work, Option<Rc<LocalHome>>),
    /// Another thread runs the loop: nothing was taken.
    RunningElsewhere,
}

/// A borrow of a loop's work for one call (H2–H4 of `docs/send-work.md`):
/// registered in this thread's registry, so that the nested calls of the
/// call find it; put back whole into the run state, and `handoff`
/// notified, however the call ends.
struct BorrowGuard<'a> {
    lp: &'a EventLoop,
    work: Rc<Work>,
}

impl<'a> BorrowGuard<'a> {
    fn new(lp: &'a EventLoop, work: Work) -> BorrowGuard<'a> {
        let work = Rc::new(work);
        let w = work.clone();
        push_borrowed(lp, w);
        BorrowGuard { lp, work }
    }
}

impl Drop for BorrowGuard<'_> {
    fn drop(&mut self) {
        pop_borrowed(self.lp);
        let work = self.work.take();
        let mut st = self.lp.lock();
        st.work = Some(work);
        st.borrowed = None;
        let waiting = st.handoff_waiters > 0;
        drop(st);
        if waiting {
            self.lp.shared.handoff.notify_all();
        }
    }
}

impl EventLoop {
    /// Waits while another thread borrows the work (a borrow is short and
    /// runs no user code, H4).
    pub(crate) fn wait_out_borrow<'a>(
        &'a self,
        mut st: MutexGuard<'a, RunState>,
    ) -> MutexGuard<'a, RunState> {
        let me = current_thread_id();
        while st.borrowed.is_some_and(|t| t != me) {
            st = self.wait_for_handoff(st);
        }
        st
    }

    /// Waits once on `handoff`, counted in `handoff_waiters` so that the
    /// borrow ending wakes it.
    pub(crate) fn wait_for_handoff<'a>(
        &'a self,
        mut st: MutexGuard<'a, RunState>,
    ) -> MutexGuard<'a, RunState> {
        // Planted bug (loom mutant check): the wait is not counted, so the
        // borrow's end does not wake it.
        #[cfg(not(loopspec_mutant = "handoff-uncounted"))]
        {
            st.handoff_waiters += 1;
        }
        let mut st = self.shared.handoff.wait(st);
        #[cfg(not(loopspec_mutant = "handoff-uncounted"))]
        {
            st.handoff_waiters -= 1;
        }
        st
    }

    /// Runs `f` on the loop's work (THREAD-1, THREAD-8). The fast path — this
    /// thread runs the loop, or borrows its work already — takes no lock.
    /// On an idle loop the work is borrowed for the call, from any thread.
    /// Fails with `Closed` on a closed loop, and with `NonThreadSafeCall`
    /// while another thread runs it. Every call first moves what the inbox
    /// holds to the ready queue, so work handed over from other threads
    /// keeps its place before later work (XTHREAD-2).
    pub(crate) fn with_work<R>(&self, f: impl FnOnce(&Work) -> R) -> Result<R> {
        self.with_parts(false, |work, _| f(work))
    }

    /// Runs `f` on the loop's work and this thread's local home of it,
    /// making this thread the loop's local home if it has none (THREAD-1,
    /// THREAD-10). Fails as [`with_work`](Self::with_work), and with
    /// `NonThreadSafeCall` when another thread is the local home.
    pub(crate) fn with_local<R>(&self, f: impl FnOnce(&Work, &LocalHome) -> R) -> Result<R> {
        // `with_parts` claims the local home when asked: `None` cannot come.
        self.with_parts(true, |work, local| local.map(|local| f(work, local)))?
            .ok_or_else(|| Error::NonThreadSafeCall)
    }

    /// Runs `here` on the loop's work as [`with_work`](Self::with_work)
    /// does — or, while another thread runs the loop, runs `elsewhere`
    /// instead of refusing (the caller hands its effect to the loop through
    /// the inbox: THREAD-1's safe calls). Fails with `Closed` on a closed
    /// loop.
    pub(crate) fn with_work_or_send<R>(
        &self,
        here: impl FnOnce(&Work) -> R,
        elsewhere: impl FnOnce() -> R,
    ) -> Result<R> {
        if let Some(work) = self.work_if_running_here() {
            return Ok(here(&work));
        }
        match self.claim_idle_work(false)? {
            Claim::RunningElsewhere => Ok(elsewhere()),
            Claim::Borrowed(work, _) => Ok(self.borrow_for(work, here)),
        }
    }

    fn with_parts<R>(
        &self,
        local: bool,
        f: impl FnOnce(&Work, Option<&LocalHome>) -> R,
    ) -> Result<R> {
        if let Some(work) = self.work_if_running_here() {
            let home = if local {
                Some(self.local_here_claiming()?)
            } else {
                None
            };
            return Ok(f(&work, home.as_deref()));
        }
        match self.claim_idle_work(local)? {
            Claim::RunningElsewhere => Err(Error::NonThreadSafeCall),
            Claim::Borrowed(work, home) => Ok(self.borrow_for(work, |w| f(w, home.as_deref()))),
        }
    }

    /// Takes the work of a loop that no thread runs, for a borrow by this
    /// thread (H2), after any other thread's borrow ended — with this
    /// thread's local home of the loop if `local`, claiming it if the loop
    /// has none (`NonThreadSafeCall` when another thread is the local home).
    /// Says so, and takes nothing, while another thread runs the loop.
    /// Fails with `Closed` on a closed loop.
    fn claim_idle_work(&self, local: bool) -> Result<Claim> {
        let me = current_thread_id();
        let mut stale = None;
        let claimed = {
            let st = self.lock();
            let mut st = self.wait_out_borrow(st);
            if st.closed {
                Err(Error::Closed)
            } else if st.running.is_some() {
                Ok(Claim::RunningElsewhere)
            } else {
                let home = if local {
                    self.claim_local(&mut st, me, &mut stale)
                        .map(Some)
                        .map_err(|_| Error::NonThreadSafeCall)
                } else {
                    Ok(None)
                };
                home.and_then(|home| match st.work.take() {
                    Some(work) => {
                        // Planted bug (`borrow-unflagged`): the work leaves
                        // its slot unannounced, so a run that starts during
                        // the borrow finds the slot empty (H2).
                        #[cfg(not(loopspec_mutant = "borrow-unflagged"))]
                        {
                            st.borrowed = Some(me);
                        }
                        Ok(Claim::Borrowed(work, home))
                    }
                    None => Err(Error::Closed),
                })
            }
        };
        if let Some(stale) = stale {
            self.clear_local_home(&stale);
        }
        if matches!(claimed, Err(Error::Closed)) {
            self.drop_own_local();
        }
        claimed
    }

    /// Runs `f` on `work`, borrowed by this thread (see [`BorrowGuard`]),
    /// after moving what the inbox holds into it (XTHREAD-2).
    fn borrow_for<R>(&self, work: Work, f: impl FnOnce(&Work) -> R) -> R {
        let guard = BorrowGuard::new(self, work);
        guard.work.drain(&self.shared.inbox);
        f(&guard.work)
    }

    /// The loop's work, if this thread runs or borrows it (the fast path of
    /// every scheduling call), after moving pending inbox submissions ahead
    /// of whatever the caller is about to queue.
    pub(crate) fn work_if_running_here(&self) -> Option<Rc<Work>> {
        let work = work_here(self)?;
        if self.shared.inbox.pending() {
            work.drain(&self.shared.inbox);
        }
        Some(work)
    }
}
