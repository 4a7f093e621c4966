//! Tasks and plain futures: made, cancelled, completed.

use super::{Ops, SendTask};
use crate::fuzz::INTENTIONAL_DROP_PANIC;
use crate::fuzz::body::{guarded, make_body, raised};
use crate::fuzz::program::{Outcome, Script};
use crate::fuzz::record::lock;
use crate::fuzz::worker::{LFut, LTask};
use loopspec::Error;

impl Ops {
    /// `create_task_local` of `script` on loop `lp` by thread `th` — or if
    /// `send`, `create_task` of it as a `Send` coroutine, the loop's work: a
    /// task, or a refusal that dropped the coroutine unpolled (THREAD-1,
    /// THREAD-8, THREAD-9, LIFE-8).
    pub(crate) fn create_task(
        &mut self,
        th: usize,
        lp: u8,
        script: Script,
        send: bool,
    ) -> Result<(), String> {
        let Some(l) = self.lp(lp) else { return Ok(()) };
        let tid = self.new_task(th, l, &script, None, send);
        let (log, lpv, cfs) = (
            self.log.clone(),
            self.loops[l].lp.clone(),
            self.cf_handles(),
        );
        let (got, touched, running) = self.exec(th, move |local| {
            let refs = local.refs();
            let touched: Vec<usize> = refs.iter().filter_map(|r| r.task).collect();
            let body = make_body(&log, tid, &script, refs, cfs);
            // Operations run one at a time: no thread runs the loop now.
            let running = lpv.is_running();
            let made = if send {
                guarded(|| lpv.create_task(body))
            } else {
                guarded(|| lpv.create_task_local(body))
            };
            let r = made.inspect(|task| {
                lock(&log).tasks[tid].armed = true;
                local.tasks.push(LTask {
                    tid,
                    lp: l,
                    task: task.clone(),
                    send,
                    seen: None,
                });
            });
            (r, touched, running)
        })?;
        ensure!(
            !running,
            "interpreter: loop {l} was running when thread {th} made a task on it"
        );
        let got = match got {
            Ok(task) => {
                if send {
                    self.send_tasks.push(SendTask { tid, lp: l, task });
                }
                Ok(())
            }
            Err(Error::Panic(m)) if m == INTENTIONAL_DROP_PANIC => {
                Err(self.refusal(l, th, false, send)?)
            }
            Err(e) => Err(e),
        };
        for t in touched {
            self.tasks[t].may_cancel = true;
        }
        if send {
            self.send_call(l, th, &got)?;
        } else if self.loops[l].closed {
            ensure!(
                got == Err(Error::Closed),
                "LIFE-8: create_task on a closed loop gave {got:?}"
            );
            self.discarded(l, th)?;
        } else {
            self.bound_call(l, th, &got)?;
        }
        if got.is_err() {
            let o = lock(&self.log).tasks[tid].clone();
            ensure!(
                o.steps.is_empty() && o.coro_dropped == 1,
                "LIFE-8: a refused coroutine was polled or kept"
            );
        }
        self.after_op(th, None)?;
        Ok(())
    }

    /// `cancel()` of one of thread `th`'s tasks, maybe with a message
    /// (TASK-4).
    pub(crate) fn cancel_task(&mut self, th: usize, task: u8, msg: bool) -> Result<(), String> {
        let log = self.log.clone();
        let got = self.exec(th, move |local| {
            if local.tasks.is_empty() {
                return None;
            }
            let t = &local.tasks[task as usize % local.tasks.len()];
            let started = !lock(&log).tasks[t.tid].steps.is_empty();
            let done = t.task.done();
            let r = t.task.cancel_with(msg.then(|| "fuzz".to_string()));
            Some((t.tid, t.lp, done, started, r))
        })?;
        if let Some((tid, l, done, started, r)) = got {
            let send = self.tasks[tid].send;
            ensure!(
                r != done,
                "TASK-4: cancel() of a task (done={done}) returned {r}"
            );
            if r {
                self.tasks[tid].may_cancel = true;
                if !started {
                    self.tasks[tid].cancelled_before_start = true;
                }
                // Scheduling the step that delivers it may be local work;
                // a `Send` task's is the loop's (THREAD-8).
                if !send {
                    self.maybe_claim(l, th);
                }
            }
        }
        self.after_op(th, None)?;
        Ok(())
    }

    /// `create_future` on loop `lp` by thread `th`: pending (FUT-1).
    pub(crate) fn new_future(&mut self, th: usize, lp: u8) -> Result<(), String> {
        let Some(l) = self.lp(lp) else { return Ok(()) };
        let lpv = self.loops[l].lp.clone();
        let pending = self.exec(th, move |local| {
            let fut = lpv.create_future::<u32>();
            let pending = !fut.done();
            local.futs.push(LFut {
                lp: l,
                fut,
                wraps: None,
                touched: false,
                seen: None,
            });
            pending
        })?;
        ensure!(pending, "FUT-1: a new future is not pending");
        self.after_op(th, None)?;
        Ok(())
    }

    /// `set_result` / `set_exception` of one of thread `th`'s futures
    /// (FUT-3, LIFE-9, THREAD-1).
    pub(crate) fn complete_future(
        &mut self,
        th: usize,
        f: u8,
        outcome: Outcome,
    ) -> Result<(), String> {
        let got = self.exec(th, move |local| {
            let f = local.touch_fut(f)?;
            let before = f.fut.done();
            let r = match outcome {
                Outcome::Ok(v) => f.fut.set_result(u32::from(v)),
                Outcome::Err(n) => f.fut.set_exception(raised(n)),
            };
            Some((f.lp, before, r, f.fut.done()))
        })?;
        if let Some((l, before, r, after)) = got {
            if before {
                ensure!(
                    r == Err(Error::InvalidState),
                    "FUT-3: completing a done future gave {r:?}"
                );
            } else {
                ensure!(
                    after,
                    "LIFE-9: the future is not done after set_result/set_exception"
                );
                let m = &self.loops[l];
                let ok = match &r {
                    Ok(()) => true,
                    Err(Error::Closed) => m.closed,
                    Err(Error::NonThreadSafeCall) => !m.closed && !m.home.others(th).is_empty(),
                    Err(_) => false,
                };
                ensure!(
                    ok,
                    "LIFE-9/THREAD-1: completing a pending future gave {r:?}"
                );
                match r {
                    Ok(()) => self.maybe_claim(l, th),
                    Err(Error::NonThreadSafeCall) => {
                        self.loops[l].home = self.loops[l].home.other_homes(th);
                    }
                    _ => {}
                }
            }
        }
        self.after_op(th, None)?;
        Ok(())
    }

    /// `cancel()` of one of thread `th`'s futures (FUT-4; a wrapper cancels
    /// its source, CHAIN-4).
    pub(crate) fn cancel_future(&mut self, th: usize, f: u8) -> Result<(), String> {
        let got = self.exec(th, move |local| {
            let f = local.touch_fut(f)?;
            let before = f.fut.done();
            let r = f.fut.cancel();
            Some((f.lp, f.wraps, before, r, f.fut.cancelled()))
        })?;
        if let Some((l, wraps, before, r, cancelled)) = got {
            ensure!(
                r != before,
                "FUT-4: cancel() of a future (done={before}) returned {r}"
            );
            ensure!(
                before || cancelled,
                "FUT-4: a cancelled future is not cancelled"
            );
            if r {
                self.maybe_claim(l, th);
                // A cancelled wrapper cancels its source (CHAIN-4),
                // a run_coroutine_threadsafe future included.
                if let Some(i) = wraps {
                    self.cfs[i].cancel_called = true;
                }
            }
        }
        self.after_op(th, None)?;
        Ok(())
    }
}
