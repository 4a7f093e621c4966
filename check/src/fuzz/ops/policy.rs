//! Operations on the policy and the threads: new, set and get the current
//! loop, exception handlers, thread restarts.

use super::model::{SlotM, thread_name};
use super::{LOOPS_MAX, Ops};
use crate::fuzz::record::install_handler;
use crate::fuzz::worker::Worker;
use loopspec::{ClockKind, Error, Profile};

impl Ops {
    /// POLICY-8, LIFE-1: the policy makes a new virtual-clock loop of its
    /// profile, neither running nor closed.
    pub(crate) fn new_loop(&mut self) -> Result<(), String> {
        if self.loops.len() < LOOPS_MAX {
            let lp = self.policy.new_event_loop();
            ensure!(
                lp.clock_kind() == ClockKind::Virtual && lp.profile() == self.profile,
                "POLICY-8: the policy's loop has the wrong clock or profile"
            );
            ensure!(
                !lp.is_running() && !lp.is_closed(),
                "LIFE-1: a new loop is running or closed"
            );
            self.add_loop(lp);
        }
        self.after_op(0, None)?;
        Ok(())
    }

    /// `set_event_loop` on thread `th` (POLICY-1).
    pub(crate) fn set_loop(&mut self, th: usize, lp: Option<u8>) -> Result<(), String> {
        let target = lp.and_then(|l| self.lp(l));
        let lpv = target.map(|i| self.loops[i].lp.clone());
        let policy = self.policy.clone();
        self.exec(th, move |_| policy.set_event_loop(lpv.as_ref()))?;
        self.slots[th] = SlotM {
            current: target,
            set_called: true,
        };
        self.after_op(th, None)?;
        Ok(())
    }

    /// `get_event_loop` on thread `th`: the thread's loop, the main thread's
    /// implicit one before 3.14 (with its warning in 3.12 and 3.13), or the
    /// error (POLICY-1, POLICY-3, POLICY-4, POLICY-5).
    pub(crate) fn get_loop(&mut self, th: usize) -> Result<(), String> {
        let policy = self.policy.clone();
        let (got, warnings) = self.exec(th, move |_| {
            let (got, warnings) =
                loopspec::catch_warnings(|| loopspec::get_event_loop_with(&policy));
            (got, warnings.len())
        })?;
        let slot = self.slots[th];
        match slot.current {
            Some(i) => {
                ensure!(
                    got.as_ref() == Ok(&self.loops[i].lp) && warnings == 0,
                    "POLICY-1: get_event_loop() on thread {th} gave {got:?}, want loop {i}"
                );
            }
            None if th == 0 && !slot.set_called && self.profile < Profile::Py314 => {
                let lp = got
                    .map_err(|e| format!("POLICY-3: no implicit loop in the main thread: {e:?}"))?;
                ensure!(
                    self.loops.iter().all(|m| m.lp != lp),
                    "POLICY-3: the implicit loop is not new"
                );
                let warns = matches!(self.profile, Profile::Py312 | Profile::Py313);
                ensure!(
                    warnings == usize::from(warns),
                    "POLICY-3: {warnings} warnings for profile {:?}",
                    self.profile
                );
                let i = self.add_loop(lp);
                self.slots[0] = SlotM {
                    current: Some(i),
                    set_called: true,
                };
            }
            None => {
                let name = if th == 0 {
                    "MainThread".to_string()
                } else {
                    thread_name(th)
                };
                ensure!(
                    got == Err(Error::NoCurrentLoop { thread: name }),
                    "POLICY-4/5: get_event_loop() on thread {th} gave {got:?}"
                );
            }
        }
        self.after_op(th, None)?;
        Ok(())
    }

    /// A recording exception handler on loop `lp`, maybe one that panics.
    pub(crate) fn set_handler(&mut self, lp: u8, panicky: bool) {
        let Some(l) = self.lp(lp) else { return };
        install_handler(&self.log, &self.loops[l].lp, l, panicky);
    }

    /// Ends thread `th` (not the main one) and starts a fresh one in its
    /// place: what the old one held goes with it (THREAD-4).
    pub(crate) fn restart_thread(&mut self, th: usize) -> Result<(), String> {
        if th != 0 {
            self.retire_thread(th)?;
            self.workers[th] = Worker::spawn(th);
            self.slots[th] = SlotM::default();
        }
        Ok(())
    }
}
