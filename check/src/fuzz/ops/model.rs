//! The model of `run_ops`: which thread may be each loop's local home (its
//! local work's thread), where each callback waits (`Loc`: a thread's local
//! work, or the loop's own), the model's record of every callback, task and
//! concurrent future, and its answers to what a call, a run or a close must
//! have done.

use super::{Ops, THREADS};
use crate::fuzz::program::CbAction;
use crate::fuzz::program::Script;
use crate::fuzz::record::lock;
use loopspec::{CfState, ConcurrentFuture, Error, EventLoop};

/// Where a loop's local work may live, its local home: a set of
/// possibilities, bit 0 for "no home" and bit 1 + t for "thread t"
/// (THREAD-10, THREAD-1, THREAD-2). The loop's own work never changes it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct HomeSet(pub(crate) u8);

pub(crate) const FREE: HomeSet = HomeSet(1);

impl HomeSet {
    pub(crate) fn at(t: usize) -> HomeSet {
        HomeSet(2 << t)
    }
    pub(crate) fn has(self, o: HomeSet) -> bool {
        self.0 & o.0 != 0
    }
    pub(crate) fn may_be_free_or(self, t: usize) -> bool {
        self.has(FREE) || self.has(HomeSet::at(t))
    }
    /// Fails unless `what`, which thread `t` did and which succeeded, may
    /// have: the loop-bound work must be free or on `t` (THREAD-1, THREAD-2).
    pub(crate) fn allows(self, t: usize, what: &str) -> Result<(), String> {
        ensure!(
            self.may_be_free_or(t),
            "{what} from thread {t} succeeded while the work lives on {self:?}"
        );
        Ok(())
    }
    /// Homes other than `t` it may be.
    pub(crate) fn others(self, t: usize) -> Vec<usize> {
        (0..THREADS)
            .filter(|&u| u != t && self.has(HomeSet::at(u)))
            .collect()
    }
    /// What is left once "no home" and `t` are ruled out.
    pub(crate) fn other_homes(self, t: usize) -> HomeSet {
        HomeSet(self.0 & !(FREE.0 | HomeSet::at(t).0))
    }
    pub(crate) fn only_free_or(self, t: usize) -> bool {
        self.other_homes(t).0 == 0
    }
    pub(crate) fn union(self, o: HomeSet) -> HomeSet {
        HomeSet(self.0 | o.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Kind {
    Soon,
    Threadsafe,
    Timer(f64),
}

/// Where an accepted callback waits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Loc {
    /// A `call_soon_threadsafe` submission not yet taken in.
    Inbox,
    /// The loop's own work (THREAD-8): a `Send` callback, or a submission
    /// taken in. It waits for whichever thread runs the loop next; `close()`
    /// drops it, on any thread, and no thread's exit does (THREAD-4, THREAD-5).
    Work,
    /// Local work of thread t, the loop's local home (THREAD-10).
    Half(usize),
    /// Dropped with the local home it lived in.
    Unknown,
}

impl Loc {
    /// The loop's, not a thread's: in the inbox or in the work, which are
    /// alike for every check (both go with `close()`, neither with an exit).
    pub(crate) fn is_loops(self) -> bool {
        matches!(self, Loc::Inbox | Loc::Work)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct CbM {
    pub(crate) lp: usize,
    pub(crate) kind: Kind,
    pub(crate) loc: Loc,
    pub(crate) action: CbAction,
    pub(crate) accepted: bool,
    pub(crate) cancelled: bool,
    pub(crate) handle: Option<usize>,
    /// Its drop was already seen by `after_op`.
    pub(crate) drop_seen: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct TaskM {
    pub(crate) th: usize,
    /// Made by `create_task` or `run_coroutine_threadsafe` of a `Send`
    /// coroutine: the loop's work, not a thread's (THREAD-8).
    pub(crate) send: bool,
    /// Polls of its coroutine already checked by `after_op`.
    pub(crate) polls_seen: usize,
    /// The drop of its coroutine was already seen by `after_op`.
    pub(crate) coro_drop_seen: bool,
    pub(crate) script: Script,
    pub(crate) may_cancel: bool,
    pub(crate) cancelled_before_start: bool,
    /// Its body exists (the task was made, or offered to `create_task`).
    pub(crate) built: bool,
    pub(crate) rcts: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum CfKind {
    Plain { wrapped: bool },
    Rcts { lp: usize, tid: usize },
}

pub(crate) struct CfM {
    pub(crate) cf: ConcurrentFuture<u32>,
    pub(crate) kind: CfKind,
    pub(crate) state: CfState,
    pub(crate) cancel_called: bool,
    /// For plain futures: what they were finished with.
    pub(crate) outcome: Option<loopspec::Result<u32>>,
}

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SlotM {
    pub(crate) current: Option<usize>,
    pub(crate) set_called: bool,
}

pub(crate) struct LoopM {
    pub(crate) lp: EventLoop,
    pub(crate) closed: bool,
    pub(crate) home: HomeSet,
}

pub(crate) fn thread_name(t: usize) -> String {
    format!("fuzz-t{t}")
}

pub(crate) fn is_due(when: f64, now: f64) -> bool {
    when <= now || when < now + 1e-9
}

impl Ops {
    /// The model's answer for a loop-bound call by `th` on loop `l` that
    /// returned `got` (THREAD-1, LIFE-8). Updates the home.
    pub(crate) fn bound_call(
        &mut self,
        l: usize,
        th: usize,
        got: &loopspec::Result<()>,
    ) -> Result<(), String> {
        let m = &mut self.loops[l];
        if m.closed {
            ensure!(
                *got == Err(Error::Closed),
                "LIFE-8: loop-bound call on a closed loop gave {got:?}"
            );
            return Ok(());
        }
        match got {
            Ok(()) => {
                m.home.allows(th, "THREAD-1: a loop-bound call")?;
                m.home = HomeSet::at(th);
                self.take_in(l);
            }
            Err(Error::NonThreadSafeCall) => {
                let others = m.home.others(th);
                ensure!(
                    !others.is_empty(),
                    "THREAD-1: NonThreadSafeCall for thread {th} though the work may live there ({:?})",
                    m.home
                );
                m.home = m.home.other_homes(th);
            }
            Err(e) => return Err(format!("loop-bound call gave {e:?}")),
        }
        Ok(())
    }

    /// The model's answer for an asyncio-named (`Send`) scheduling call by
    /// `th` on loop `l` that returned `got` (THREAD-8, THREAD-9, LIFE-8).
    /// No thread runs the loop during an operation, so any thread's call is
    /// accepted unless the loop is closed, whatever the local home; it
    /// borrowed the loop's work (moving the inbox into it) and leaves the
    /// local home as it was.
    pub(crate) fn send_call(
        &mut self,
        l: usize,
        th: usize,
        got: &loopspec::Result<()>,
    ) -> Result<(), String> {
        if self.loops[l].closed {
            ensure!(
                *got == Err(Error::Closed),
                "LIFE-8: a Send call on a closed loop gave {got:?}"
            );
            // It found the loop closed: this thread's local work of it is
            // dropped (THREAD-5).
            return self.discarded(l, th);
        }
        ensure!(
            *got == Ok(()),
            "THREAD-8/THREAD-9: a Send call by thread {th} on idle loop {l} (local home {:?}) gave {got:?}",
            self.loops[l].home
        );
        self.take_in(l);
        Ok(())
    }

    /// The error a refused call must have had (it dropped the user's data
    /// inside the call, so the error itself was not seen). `any_thread`:
    /// the call is one any thread may make (threadsafe, or `Send` on a loop
    /// no thread runs).
    pub(crate) fn refusal(
        &self,
        l: usize,
        th: usize,
        nan: bool,
        any_thread: bool,
    ) -> Result<Error, String> {
        let m = &self.loops[l];
        if nan {
            Ok(Error::NanTime)
        } else if m.closed {
            Ok(Error::Closed)
        } else if !any_thread && !m.home.others(th).is_empty() {
            Ok(Error::NonThreadSafeCall)
        } else {
            Err("a call that should accept its callback dropped it".into())
        }
    }

    /// A call on an idle loop moved the inbox into the loop's work.
    pub(crate) fn take_in(&mut self, l: usize) {
        for cb in self
            .cbs
            .iter_mut()
            .filter(|c| c.lp == l && c.loc == Loc::Inbox)
        {
            cb.loc = Loc::Work;
        }
    }

    /// A call that schedules work only if a future has waiters: it may
    /// claim a free loop. (It may move the inbox into the loop's work too,
    /// which changes no check: see [`Loc::is_loops`].)
    pub(crate) fn maybe_claim(&mut self, l: usize, th: usize) {
        let m = &mut self.loops[l];
        if m.closed || !m.home.may_be_free_or(th) {
            return;
        }
        if m.home.has(FREE) {
            m.home = m.home.union(HomeSet::at(th));
        }
    }

    /// The model's answer for a run by `th` of loop `l` that returned
    /// `got` (LIFE-8, LIFE-5, THREAD-2). Returns whether the run happened.
    pub(crate) fn run_checks(
        &mut self,
        l: usize,
        th: usize,
        got: &loopspec::Result<()>,
    ) -> Result<bool, String> {
        let m = &self.loops[l];
        if m.closed {
            ensure!(
                *got == Err(Error::Closed),
                "LIFE-8: run of a closed loop gave {got:?}"
            );
            self.discarded(l, th)?;
            return Ok(false);
        }
        match got {
            Ok(()) => {
                m.home.allows(th, "THREAD-2: a run")?;
                Ok(true)
            }
            Err(Error::BoundToThread { thread }) => {
                let u = m
                    .home
                    .others(th)
                    .into_iter()
                    .find(|u| thread_name(*u) == *thread);
                match u {
                    Some(u) => {
                        self.loops[l].home = HomeSet::at(u);
                        Ok(false)
                    }
                    None => Err(format!(
                        "THREAD-2: BoundToThread({thread}) but the work may live on {:?}",
                        m.home
                    )),
                }
            }
            Err(e) => Err(format!("run gave {e:?}")),
        }
    }

    /// After a run that happened on `th`: where the local work lives now.
    /// Only pending local work (`pending_tasks` are `th`'s local tasks of
    /// the loop) keeps `th` the local home; the loop's own work binds no
    /// thread (THREAD-2, THREAD-8).
    pub(crate) fn after_run(&mut self, l: usize, th: usize, pending_tasks: &[(usize, String)]) {
        let log = lock(&self.log);
        let mut busy = !pending_tasks.is_empty();
        for (i, cb) in self.cbs.iter_mut().enumerate() {
            if cb.lp != l || !cb.accepted {
                continue;
            }
            if cb.loc == Loc::Inbox {
                cb.loc = Loc::Work;
            }
            let local = matches!(cb.loc, Loc::Half(_));
            if local && log.cbs[i].ran == 0 && log.cbs[i].dropped == 0 && !cb.cancelled {
                busy = true;
            }
        }
        drop(log);
        self.loops[l].home = if busy {
            HomeSet::at(th)
        } else {
            FREE.union(HomeSet::at(th))
        };
    }

    /// THREAD-5: thread `th` found loop `l` closed and must have dropped
    /// the work it held for it.
    pub(crate) fn discarded(&mut self, l: usize, th: usize) -> Result<(), String> {
        let log = lock(&self.log);
        for (i, cb) in self.cbs.iter().enumerate() {
            if cb.lp == l && cb.accepted && cb.loc == Loc::Half(th) {
                ensure!(
                    log.cbs[i].dropped == 1,
                    "THREAD-5/LIFE-7: callback {i} of closed loop {l} still held by thread {th}"
                );
            }
        }
        Ok(())
    }

    /// The callbacks one iteration of loop `l` runs, by the model (SCHED-1..4):
    /// the ready ones in FIFO order, then the timers due at `now` in deadline
    /// order, skipping those cancelled before their turn.
    pub(crate) fn predict_batch(&self, l: usize, now: f64) -> Vec<usize> {
        let log = lock(&self.log);
        let live = |i: usize| log.cbs[i].ran == 0 && log.cbs[i].dropped == 0;
        let mut batch: Vec<usize> = (0..self.cbs.len())
            .filter(|&i| {
                let c = &self.cbs[i];
                c.lp == l && c.accepted && !matches!(c.kind, Kind::Timer(_)) && live(i)
            })
            .collect();
        let mut timers: Vec<(f64, usize)> = (0..self.cbs.len())
            .filter_map(|i| match self.cbs[i].kind {
                Kind::Timer(w)
                    if self.cbs[i].lp == l
                        && self.cbs[i].accepted
                        && !self.cbs[i].cancelled
                        && live(i)
                        && is_due(w, now) =>
                {
                    Some((w, i))
                }
                _ => None,
            })
            .collect();
        timers.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        batch.extend(timers.into_iter().map(|(_, i)| i));
        let mut cancelled: Vec<bool> = self.cbs.iter().map(|c| c.cancelled).collect();
        let mut out = Vec::new();
        for i in batch {
            if cancelled[i] {
                continue;
            }
            out.push(i);
            if let CbAction::Cancel(h) = self.cbs[i].action
                && !log.handle_cb.is_empty()
            {
                cancelled[log.handle_cb[h as usize % log.handle_cb.len()]] = true;
            }
        }
        out
    }
}
