//! The operations of `run_chain`, one method each.

use super::{Chain, ChainCf, ChainCfKind, Dest};
use crate::fuzz::body::{cf_error, guarded, make_body};
use crate::fuzz::callback::make_cb;
use crate::fuzz::program::{Cb, Outcome, Script};
use crate::fuzz::record::{CbObs, lock, violation};
use loopspec::{ConcurrentFuture, Error, Handle};
use std::thread;
use std::time::Duration;

impl Chain {
    /// `run_coroutine_threadsafe` of `script` onto A or B: a pending
    /// concurrent future, or `Event loop is closed` (XTHREAD-6).
    pub(crate) fn submit(&mut self, on_b: bool, script: Script) -> Result<(), String> {
        let tid = self.new_tid(&script, on_b);
        let (log, cfs) = (
            self.log.clone(),
            self.cfs.iter().map(|c| c.cf.clone()).collect::<Vec<_>>(),
        );
        let make = move || make_body(&log, tid, &script, Vec::new(), cfs);
        let (lp, closed) = if on_b {
            (&self.lp_b, self.b_closed)
        } else {
            (&self.lp_a, self.a_closed)
        };
        match loopspec::run_coroutine_threadsafe_local(make, lp) {
            Ok(cf) => {
                ensure!(
                    !closed,
                    "XTHREAD-6: a closed loop accepted run_coroutine_threadsafe"
                );
                self.cfs.push(ChainCf {
                    cf,
                    kind: ChainCfKind::Rcts { tid },
                    cancel_called: false,
                    waits: Vec::new(),
                });
            }
            Err(e) => ensure!(
                closed && e == Error::Closed,
                "XTHREAD-6: run_coroutine_threadsafe gave {e:?}"
            ),
        }
        Ok(())
    }

    /// A plain concurrent future.
    pub(crate) fn new_cf(&mut self) {
        self.cfs.push(ChainCf {
            cf: ConcurrentFuture::new(),
            kind: ChainCfKind::Plain,
            cancel_called: false,
            waits: Vec::new(),
        });
    }

    /// A worker thread that starts and completes plain future `cf` after
    /// yielding `spin` times (CONC-4, CONC-5).
    pub(crate) fn spawn_worker(&mut self, cf: u8, outcome: Outcome, spin: u8) {
        let Some(i) = self.pick_cf(cf, true) else {
            return;
        };
        let (c, log) = (self.cfs[i].cf.clone(), self.log.clone());
        let w = thread::Builder::new()
            .name("fuzz-worker".into())
            .spawn(move || {
                for _ in 0..spin % 8 {
                    thread::yield_now();
                }
                match c.set_running_or_notify_cancel() {
                    Ok(true) => {
                        let r = match outcome {
                            Outcome::Ok(v) => c.set_result(u32::from(v)),
                            Outcome::Err(n) => c.set_exception(cf_error(n)),
                        };
                        if !matches!(r, Ok(()) | Err(Error::ConcurrentInvalidState { .. })) {
                            violation(&log, format!("CONC-5: a worker's completion gave {r:?}"));
                        }
                    }
                    Ok(false) | Err(Error::UnexpectedState) => {}
                    Err(e) => violation(
                        &log,
                        format!("CONC-4: set_running_or_notify_cancel gave {e:?}"),
                    ),
                }
            })
            .expect("spawn a worker");
        self.workers.push(w);
    }

    /// Completes plain future `cf` from the driver (CONC-5).
    pub(crate) fn complete(&mut self, cf: u8, outcome: Outcome) -> Result<(), String> {
        let Some(i) = self.pick_cf(cf, true) else {
            return Ok(());
        };
        let c = &self.cfs[i].cf;
        let r = match outcome {
            Outcome::Ok(v) => c.set_result(u32::from(v)),
            Outcome::Err(n) => c.set_exception(cf_error(n)),
        };
        ensure!(
            matches!(r, Ok(()) | Err(Error::ConcurrentInvalidState { .. })),
            "CONC-5: completing gave {r:?}"
        );
        Ok(())
    }

    /// `cancel()` of concurrent future `cf` (CONC-3).
    pub(crate) fn cancel_cf(&mut self, cf: u8) -> Result<(), String> {
        match self.pick_cf(cf, false) {
            Some(i) => self.cancel_cf_at(i),
            None => Ok(()),
        }
    }

    /// `cancel()` of concurrent future `i` from the driver (CONC-3).
    pub(crate) fn cancel_cf_at(&mut self, i: usize) -> Result<(), String> {
        let r = self.cfs[i].cf.cancel();
        if r {
            self.cfs[i].cancel_called = true;
            let st = self.cfs[i].cf.state();
            ensure!(
                st.name().starts_with("CANCELLED"),
                "CONC-3: cancel() returned true but the future is {st:?}"
            );
        }
        Ok(())
    }

    /// `wrap_future(cf, B)` on B's thread (CHAIN-1, CHAIN-3).
    pub(crate) fn wrap(&mut self, cf: u8) -> Result<(), String> {
        let Some(i) = self.pick_cf(cf, false) else {
            return Ok(());
        };
        let r = guarded(|| loopspec::wrap_future(&self.cfs[i].cf, &self.lp_b));
        let fut = r.map_err(|e| format!("CHAIN-1: wrap_future on the home thread gave {e:?}"))?;
        ensure!(!fut.done(), "CHAIN-3: wrap_future's future is done at once");
        self.dests.push(Dest {
            fut,
            src: i,
            cancelled_by_us: false,
            frozen: self.b_closed,
        });
        Ok(())
    }

    /// A task on A that awaits `wrap_future(cf, A)` (XTHREAD-6).
    pub(crate) fn wrap_on_a(&mut self, cf: u8) -> Result<(), String> {
        let Some(i) = self.pick_cf(cf, false) else {
            return Ok(());
        };
        let src = self.cfs[i].cf.clone();
        let make = move || async move {
            let lp = loopspec::get_running_loop()?;
            loopspec::wrap_future(&src, &lp)?.await
        };
        match loopspec::run_coroutine_threadsafe_local(make, &self.lp_a) {
            Ok(cf) => {
                ensure!(
                    !self.a_closed,
                    "XTHREAD-6: a closed loop accepted run_coroutine_threadsafe"
                );
                self.cfs.push(ChainCf {
                    cf,
                    kind: ChainCfKind::WrapOnA { src: i },
                    cancel_called: false,
                    waits: Vec::new(),
                });
            }
            Err(e) => ensure!(
                self.a_closed && e == Error::Closed,
                "XTHREAD-6: run_coroutine_threadsafe gave {e:?}"
            ),
        }
        Ok(())
    }

    /// `cancel()` of wrapper `d` (FUT-4).
    pub(crate) fn cancel_dest(&mut self, d: u8) -> Result<(), String> {
        if self.dests.is_empty() {
            return Ok(());
        }
        let n = self.dests.len();
        let d = &mut self.dests[d as usize % n];
        let before = d.fut.done();
        let r = d.fut.cancel();
        ensure!(
            r != before,
            "FUT-4: cancel() of a wrapper (done={before}) returned {r}"
        );
        if r {
            d.cancelled_by_us = true;
        }
        Ok(())
    }

    /// One iteration of B (LIFE-8 once B is closed).
    pub(crate) fn run_b(&mut self) -> Result<(), String> {
        self.lp_b.stop();
        let r = self.lp_b.run_forever();
        let want = if self.b_closed {
            Err(Error::Closed)
        } else {
            Ok(())
        };
        ensure!(r == want, "LIFE-8: one iteration of B gave {r:?}");
        Ok(())
    }

    /// `call_soon_threadsafe` of callback `cb` onto A or B (XTHREAD-1,
    /// XTHREAD-3).
    pub(crate) fn threadsafe(&mut self, on_b: bool, cb: Cb) -> Result<(), String> {
        let id = {
            let mut l = lock(&self.log);
            l.cbs.push(CbObs {
                lp: usize::from(on_b),
                ..CbObs::default()
            });
            l.cbs.len() - 1
        };
        let f = make_cb(&self.log, &self.policy, id, usize::from(on_b), cb, false);
        let (lp, closed) = if on_b {
            (&self.lp_b, self.b_closed)
        } else {
            (&self.lp_a, self.a_closed)
        };
        let r = guarded(|| lp.call_soon_threadsafe(f));
        match r {
            Ok(h) => {
                ensure!(!closed, "XTHREAD-3: a closed loop accepted a callback");
                let mut l = lock(&self.log);
                l.handles.push(h);
                l.handle_cb.push(id);
            }
            Err(e) => {
                ensure!(
                    closed && matches!(e, Error::Closed | Error::Panic(_)),
                    "XTHREAD-1: call_soon_threadsafe gave {e:?}"
                );
            }
        }
        self.cbs.push((id, on_b, !closed));
        Ok(())
    }

    /// `Handle::cancel` of handle `h`, from the driver (XTHREAD-5).
    pub(crate) fn cancel_handle(&mut self, h: u8) {
        let h = {
            let l = lock(&self.log);
            (!l.handles.is_empty()).then(|| l.handles[h as usize % l.handles.len()].clone())
        };
        if let Some(h) = h {
            Handle::cancel(&h);
        }
    }

    /// `close()` of A from the driver: refused while A runs (LIFE-7).
    pub(crate) fn close_a(&mut self) -> Result<(), String> {
        let r = self.lp_a.close();
        match r {
            Ok(()) => self.a_closed = true,
            Err(Error::CloseRunning) => {
                ensure!(!self.a_closed, "LIFE-7: a closed loop is running")
            }
            Err(e) => return Err(format!("LIFE-7: close() gave {e:?}")),
        }
        Ok(())
    }

    /// `close()` of B: wrappers still pending stay so (CHAIN-6).
    pub(crate) fn close_b(&mut self) -> Result<(), String> {
        let r = self.lp_b.close();
        ensure!(r == Ok(()), "LIFE-7: close() of B gave {r:?}");
        self.b_closed = true;
        for d in &mut self.dests {
            if !d.fut.done() {
                d.frozen = true;
            }
        }
        Ok(())
    }

    /// A bounded `result()` wait on concurrent future `cf` (CONC-2,
    /// XTHREAD-9).
    pub(crate) fn result_wait(&mut self, cf: u8, micros: u8) -> Result<(), String> {
        let Some(i) = self.pick_cf(cf, false) else {
            return Ok(());
        };
        let c = self.cfs[i].cf.clone();
        let before = c.done();
        let r = c.result(Some(Duration::from_micros(u64::from(micros % 50))));
        ensure!(
            !(before && r == Err(Error::Timeout)),
            "CONC-2: result() of a done future timed out"
        );
        ensure!(
            r != Err(Error::ResultFromLoopThread),
            "XTHREAD-9: refused a bounded wait off the loop thread"
        );
        if r != Err(Error::Timeout) {
            self.cfs[i].waits.push(r);
        }
        Ok(())
    }
}
