//! Concurrent futures: plain ones completed by the program, those of
//! `run_coroutine_threadsafe`, and `wrap_future` onto a loop.

use super::Ops;
use super::model::{CfKind, CfM};
use crate::fuzz::body::{cf_error, make_body};
use crate::fuzz::program::{Outcome, Script};
use crate::fuzz::record::lock;
use crate::fuzz::worker::LFut;
use loopspec::{CfState, ConcurrentFuture, Error};

impl Ops {
    /// `run_coroutine_threadsafe_local` of `script` onto loop `lp` by
    /// thread `th` (the coroutine is made on the loop's thread, a local
    /// task) — or if `send`, `run_coroutine_threadsafe` of it as a `Send`
    /// coroutine made here, whose task is the loop's work: a pending
    /// concurrent future, or `Event loop is closed` (XTHREAD-6, THREAD-8).
    pub(crate) fn run_coroutine_threadsafe(
        &mut self,
        th: usize,
        lp: u8,
        script: Script,
        send: bool,
    ) -> Result<(), String> {
        let Some(l) = self.lp(lp) else { return Ok(()) };
        let tid = self.new_task(usize::MAX, l, &script, Some(self.cfs.len()), send);
        let (log, lpv, cfs) = (
            self.log.clone(),
            self.loops[l].lp.clone(),
            self.cf_handles(),
        );
        let got = self.exec(th, move |_| {
            if send {
                let body = make_body(&log, tid, &script, Vec::new(), cfs);
                return loopspec::run_coroutine_threadsafe(body, &lpv);
            }
            let make = move || {
                lock(&log).tasks[tid].steps.clear();
                make_body(&log, tid, &script, Vec::new(), cfs)
            };
            loopspec::run_coroutine_threadsafe_local(make, &lpv)
        })?;
        let closed = self.loops[l].closed;
        match got {
            Ok(cf) => {
                ensure!(
                    !closed,
                    "XTHREAD-6: run_coroutine_threadsafe accepted work for a closed loop"
                );
                let state = cf.state();
                ensure!(
                    state == CfState::Pending,
                    "XTHREAD-6: the concurrent future is {state:?} at once"
                );
                self.cfs.push(CfM {
                    cf,
                    kind: CfKind::Rcts { lp: l, tid },
                    state,
                    cancel_called: false,
                    outcome: None,
                });
            }
            Err(e) => {
                ensure!(
                    closed && e == Error::Closed,
                    "XTHREAD-6: run_coroutine_threadsafe gave {e:?}"
                );
                self.tasks[tid].rcts = None;
                let o = lock(&self.log).tasks[tid].clone();
                ensure!(
                    o.polls.is_empty() && o.coro_dropped == u32::from(send),
                    "XTHREAD-6: a refused coroutine was polled or kept ({} drops)",
                    o.coro_dropped
                );
            }
        }
        self.after_op(th, None)?;
        Ok(())
    }

    /// A plain concurrent future, pending (CONC-1).
    pub(crate) fn new_concurrent(&mut self) {
        self.cfs.push(CfM {
            cf: ConcurrentFuture::new(),
            kind: CfKind::Plain { wrapped: false },
            state: CfState::Pending,
            cancel_called: false,
            outcome: None,
        });
    }

    /// Plain concurrent future `cf` (of those not from
    /// `run_coroutine_threadsafe`), if there is one: its index, its handle
    /// and its state before the operation.
    fn plain_cf(&self, cf: u8) -> Option<(usize, ConcurrentFuture<u32>, CfState)> {
        let plain: Vec<usize> = (0..self.cfs.len())
            .filter(|&i| matches!(self.cfs[i].kind, CfKind::Plain { .. }))
            .collect();
        if plain.is_empty() {
            return None;
        }
        let i = plain[cf as usize % plain.len()];
        Some((i, self.cfs[i].cf.clone(), self.cfs[i].state))
    }

    /// `set_running_or_notify_cancel()` of plain concurrent future `cf` by
    /// thread `th` (CONC-4).
    pub(crate) fn set_running(&mut self, th: usize, cf: u8) -> Result<(), String> {
        let Some((i, c, before)) = self.plain_cf(cf) else {
            return Ok(());
        };
        let got = self.exec(th, move |_| c.set_running_or_notify_cancel())?;
        let (want, next) = match before {
            CfState::Pending => (Ok(true), CfState::Running),
            CfState::Cancelled => (Ok(false), CfState::CancelledAndNotified),
            s => (Err(Error::UnexpectedState), s),
        };
        ensure!(
            got == want,
            "CONC-4: set_running_or_notify_cancel() in {before:?} gave {got:?}"
        );
        self.cfs[i].state = next;
        self.after_op(th, None)?;
        Ok(())
    }

    /// `set_result` / `set_exception` of plain concurrent future `cf` by
    /// thread `th` (CONC-5).
    pub(crate) fn complete_concurrent(
        &mut self,
        th: usize,
        cf: u8,
        outcome: Outcome,
    ) -> Result<(), String> {
        let Some((i, c, before)) = self.plain_cf(cf) else {
            return Ok(());
        };
        let value = match outcome {
            Outcome::Ok(v) => Ok(u32::from(v)),
            Outcome::Err(n) => Err(cf_error(n)),
        };
        let v2 = value.clone();
        let got = self.exec(th, move |_| match v2 {
            Ok(v) => c.set_result(v),
            Err(e) => c.set_exception(e),
        })?;
        match before {
            CfState::Pending | CfState::Running => {
                ensure!(
                    got == Ok(()),
                    "CONC-5: completing a {before:?} future gave {got:?}"
                );
                self.cfs[i].state = CfState::Finished;
                self.cfs[i].outcome = Some(value);
            }
            s => {
                let ok = matches!(&got, Err(Error::ConcurrentInvalidState { message }) if message.starts_with(&format!("{}: <Future at ", s.name())));
                ensure!(ok, "CONC-5: completing a {s:?} future gave {got:?}");
            }
        }
        self.after_op(th, None)?;
        Ok(())
    }

    /// `cancel()` of concurrent future `cf` by thread `th` (CONC-3).
    pub(crate) fn cancel_concurrent(&mut self, th: usize, cf: u8) -> Result<(), String> {
        if self.cfs.is_empty() {
            return Ok(());
        }
        let i = cf as usize % self.cfs.len();
        let c = self.cfs[i].cf.clone();
        let before = self.cfs[i].state;
        let got = self.exec(th, move |_| c.cancel())?;
        let want = !matches!(before, CfState::Running | CfState::Finished);
        ensure!(
            got == want,
            "CONC-3: cancel() of a {before:?} future returned {got}"
        );
        self.cfs[i].cancel_called = true;
        if before == CfState::Pending {
            self.cfs[i].state = CfState::Cancelled;
        }
        let now = self.cfs[i].cf.state();
        ensure!(
            !want || now.name().starts_with("CANCELLED"),
            "CONC-3: a cancelled future is {now:?}"
        );
        self.cfs[i].state = now;
        self.after_op(th, None)?;
        Ok(())
    }

    /// `wrap_future` of concurrent future `cf` onto loop `lp` by thread `th`
    /// (CHAIN-1, CHAIN-3, CHAIN-6, THREAD-9).
    pub(crate) fn wrap_future(&mut self, th: usize, cf: u8, lp: u8) -> Result<(), String> {
        let Some(l) = self.lp(lp) else { return Ok(()) };
        if self.cfs.is_empty() {
            return Ok(());
        }
        let i = cf as usize % self.cfs.len();
        let (c, lpv) = (self.cfs[i].cf.clone(), self.loops[l].lp.clone());
        let got = self.exec(th, move |local| {
            let r = loopspec::wrap_future(&c, &lpv);
            r.map(|dest| {
                let done = dest.done();
                local.futs.push(LFut {
                    lp: l,
                    fut: dest,
                    wraps: Some(i),
                    touched: false,
                    seen: None,
                });
                done
            })
        })?;
        if self.loops[l].closed {
            ensure!(
                got == Ok(false),
                "CHAIN-6: wrap_future on a closed loop gave {got:?}"
            );
        } else {
            // The destination is the loop's work: any thread may make it
            // while no thread runs the loop, and it binds no thread (the
            // call borrows the work, as a Send scheduling call does).
            let unit = got.as_ref().map(drop).map_err(Clone::clone);
            self.send_call(l, th, &unit)?;
            ensure!(
                got == Ok(false),
                "CHAIN-3: wrap_future's future is done at once"
            );
        }
        if let CfKind::Plain { wrapped } = &mut self.cfs[i].kind {
            *wrapped = true;
        }
        self.after_op(th, None)?;
        Ok(())
    }
}
