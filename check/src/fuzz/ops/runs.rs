//! Runs: one iteration, `run_forever`, `run_until_complete`, and `stop`.

use super::model::thread_name;
use super::{Ops, WATCHDOG, is_subsequence};
use crate::fuzz::INTENTIONAL_DROP_PANIC;
use crate::fuzz::body::{check_entry, guarded, make_body, pick};
use crate::fuzz::judge::check_task_outcome;
use crate::fuzz::program::{Target, delay_of};
use crate::fuzz::record::{lock, violation};
use loopspec::{Error, EventLoop, Future, Gathered};

impl Ops {
    /// One iteration (`stop(); run_forever()`) of loop `lp` by thread `th`:
    /// exactly the callbacks the model predicts, and no time passes (SCHED-1,
    /// STOP-2).
    pub(crate) fn run_once(&mut self, th: usize, lp: u8) -> Result<(), String> {
        let Some(l) = self.lp(lp) else { return Ok(()) };
        let lpv = self.loops[l].lp.clone();
        let now = lpv.time();
        let predicted = self.predict_batch(l, now);
        let (got, pending, after) = self.exec(th, move |local| {
            lpv.stop();
            let r = lpv.run_forever();
            (r, local.pending_tasks(l), lpv.time())
        })?;
        let ran = self.run_checks(l, th, &got)?;
        if ran {
            ensure!(
                after == now,
                "STOP-2: one iteration after stop() moved the clock from {now} to {after}"
            );
            self.after_run(l, th, &pending);
        }
        let actual = self.after_op(th, ran.then_some(l))?;
        if ran {
            ensure!(
                actual == predicted,
                "SCHED-1/STOP-2: one iteration ran {actual:?}, the model says {predicted:?}"
            );
        }
        Ok(())
    }

    /// `run_forever` of loop `lp` by thread `th`, stopped by a timer after
    /// `delay`: its first iteration runs what the model predicts (SCHED-1).
    pub(crate) fn run_forever(&mut self, th: usize, lp: u8, delay: u8) -> Result<(), String> {
        let Some(l) = self.lp(lp) else { return Ok(()) };
        let lpv = self.loops[l].lp.clone();
        let d = delay_of(delay);
        let d = if d.is_nan() { 0.0 } else { d };
        let predicted = self.predict_batch(l, lpv.time());
        let (stopper, got, pending) = self.exec(th, move |local| {
            let stopper_lp = lpv.clone();
            let stopper = lpv.call_later_local(d, move || stopper_lp.stop());
            let r = match &stopper {
                Ok(_) => Some(lpv.run_forever()),
                Err(_) => None,
            };
            if let Ok(h) = &stopper {
                h.cancel();
            }
            (stopper.map(drop), r, local.pending_tasks(l))
        })?;
        self.bound_call(l, th, &stopper)?;
        let mut ran = false;
        if let Some(got) = got {
            ran = self.run_checks(l, th, &got)?;
            ensure!(
                ran,
                "run_forever refused after a loop-bound call succeeded: {got:?}"
            );
            self.after_run(l, th, &pending);
        } else if stopper == Err(Error::Closed) {
            self.discarded(l, th)?;
        }
        self.after_run_op(l, th, ran, &predicted)
    }

    /// The end of a run operation: the common checks after any operation,
    /// and if the loop ran, that its first iteration ran the callbacks
    /// `predicted` (SCHED-1).
    fn after_run_op(
        &mut self,
        l: usize,
        th: usize,
        ran: bool,
        predicted: &[usize],
    ) -> Result<(), String> {
        let actual = self.after_op(th, ran.then_some(l))?;
        ensure!(
            !ran || is_subsequence(predicted, &actual),
            "SCHED-1: the first iteration did not run {predicted:?} (ran {actual:?})"
        );
        Ok(())
    }

    /// `stop()` of loop `lp` by thread `th` (STOP-1).
    pub(crate) fn stop(&mut self, th: usize, lp: u8) -> Result<(), String> {
        let Some(l) = self.lp(lp) else { return Ok(()) };
        let lpv = self.loops[l].lp.clone();
        self.exec(th, move |_| lpv.stop())?;
        self.after_op(th, None)?;
        Ok(())
    }

    /// `run_until_complete` of a script, a task, a future or a gather by
    /// thread `th` on loop `lp` (LIFE-2, LIFE-4, STOP-7, GATHER-1..3).
    pub(crate) fn run_until_complete(
        &mut self,
        th: usize,
        lp: u8,
        target: Target,
    ) -> Result<(), String> {
        let Some(l) = self.lp(lp) else { return Ok(()) };
        let lpv = self.loops[l].lp.clone();
        let predicted = self.predict_batch(l, lpv.time());
        let tid = match &target {
            Target::Script(s) => Some(self.new_task(th, l, s, None, false)),
            _ => None,
        };
        let (log, cfs) = (self.log.clone(), self.cf_handles());
        /// What the job saw.
        struct Seen {
            watchdog: loopspec::Result<()>,
            run: Option<loopspec::Result<u32>>,
            gathered: Option<(usize, loopspec::Result<Gathered<u32>>, Vec<bool>)>,
            target_loop: Option<usize>,
            target_after: Option<(bool, bool, Option<loopspec::Result<u32>>)>,
            gather_call: Option<loopspec::Result<usize>>,
            /// A child of the gather holds `Event loop is closed`.
            gather_child_closed: bool,
            pending: Vec<(usize, String)>,
        }
        let loops: Vec<EventLoop> = self.loops.iter().map(|m| m.lp.clone()).collect();
        let mut seen = self.exec(th, move |local| {
            let stopper = lpv.clone();
            let watchdog = lpv.call_later_local(WATCHDOG, move || stopper.stop());
            let mut seen = Seen {
                watchdog: watchdog.as_ref().map(drop).map_err(Clone::clone),
                run: None,
                gathered: None,
                target_loop: None,
                target_after: None,
                gather_call: None,
                gather_child_closed: false,
                pending: Vec::new(),
            };
            let refs = local.refs();
            match target {
                Target::Script(s) => {
                    let tid = tid.expect("script task");
                    let body = make_body(&log, tid, &s, refs, cfs);
                    seen.run = Some(guarded(|| lpv.run_until_complete(body)));
                }
                Target::Task(n) | Target::Future(n) => {
                    let pick = match target {
                        Target::Task(_) if !local.tasks.is_empty() => {
                            let t = &local.tasks[n as usize % local.tasks.len()];
                            Some((t.lp, t.task.as_future().clone()))
                        }
                        Target::Future(_) if !local.futs.is_empty() => {
                            let f = &local.futs[n as usize % local.futs.len()];
                            Some((f.lp, f.fut.clone()))
                        }
                        _ => None,
                    };
                    if let Some((tl, fut)) = pick {
                        seen.target_loop = Some(tl);
                        seen.run = Some(lpv.run_until_complete(fut.clone()));
                        let outcome = fut.done().then(|| fut.result());
                        seen.target_after = Some((fut.done(), fut.cancelled(), outcome));
                    }
                }
                Target::Gather {
                    rs,
                    return_exceptions,
                } => {
                    let children: Vec<Future<u32>> = rs
                        .iter()
                        .filter_map(|r| pick(&refs, *r))
                        .map(|r| r.fut)
                        .collect();
                    match loopspec::gather(children.clone(), return_exceptions) {
                        Ok(g) => {
                            let gl = loops
                                .iter()
                                .position(|x| *x == g.get_loop())
                                .unwrap_or(usize::MAX);
                            seen.gather_call = Some(Ok(gl));
                            let r = lpv.run_until_complete(g.clone());
                            let done: Vec<bool> = children.iter().map(|c| c.done()).collect();
                            seen.gather_child_closed = children.iter().any(|c| {
                                c.done() && !c.cancelled() && c.result() == Err(Error::Closed)
                            });
                            if let Ok(list) = &r {
                                for (c, e) in children.iter().zip(list) {
                                    check_entry(&log, c, e);
                                }
                                if list.len() != children.len() {
                                    violation(&log, "GATHER-1: wrong number of entries".into());
                                }
                            }
                            if r == Err(Error::StoppedBeforeComplete) && g.done() {
                                violation(
                                    &log,
                                    "STOP-7: StoppedBeforeComplete for a done gather".into(),
                                );
                            }
                            seen.gathered = Some((gl, r, done));
                        }
                        Err(e) => seen.gather_call = Some(Err(e)),
                    }
                }
            }
            if let Ok(h) = &watchdog {
                h.cancel();
            }
            seen.pending = local.pending_tasks(l);
            seen
        })?;
        self.bound_call(l, th, &seen.watchdog)?;
        let as_unit = |r: &loopspec::Result<u32>| match r {
            Err(e @ (Error::Closed | Error::BoundToThread { .. } | Error::NonThreadSafeCall)) => {
                Err(e.clone())
            }
            _ => Ok(()),
        };
        if let Some(Err(Error::Panic(m))) = &seen.run
            && m == INTENTIONAL_DROP_PANIC
        {
            let e = if self.loops[l].closed {
                Error::Closed
            } else {
                match self.loops[l].home.others(th).first() {
                    Some(u) => Error::BoundToThread {
                        thread: thread_name(*u),
                    },
                    None => {
                        return Err(
                            "run_until_complete dropped its coroutine but did not refuse it".into(),
                        );
                    }
                }
            };
            seen.run = Some(Err(e));
        }
        let mut ran = false;
        if let Some(run) = &seen.run {
            if let Some(tl) = seen.target_loop.filter(|tl| *tl != l) {
                // Closed and home checks come before the argument (LIFE-2).
                if !self.loops[l].closed && seen.watchdog.is_ok() {
                    ensure!(
                        *run == Err(Error::DifferentLoop),
                        "LIFE-2: run_until_complete of a future of loop {tl} on loop {l} gave {run:?}"
                    );
                } else {
                    ensure!(
                        !self.run_checks(l, th, &as_unit(run))?,
                        "LIFE-2: a refused run ran"
                    );
                }
            } else {
                // `Event loop is closed` from an open loop is not a refused
                // run but an exception the run returned: the target future
                // holds it (an rcts task destroyed with its home thread fails
                // its concurrent future so, XTHREAD-6), or a script's
                // coroutine that started met it in what it awaited.
                let script_started = tid.is_some_and(|tid| lock(&self.log).tasks[tid].armed);
                let own_exception = !self.loops[l].closed
                    && *run == Err(Error::Closed)
                    && (script_started
                        || matches!(
                            &seen.target_after,
                            Some((true, false, Some(Err(Error::Closed))))
                        ));
                let unit = if own_exception { Ok(()) } else { as_unit(run) };
                ran = self.run_checks(l, th, &unit)?;
                if ran {
                    self.check_run_result(th, l, tid, run, seen.target_after.as_ref())?;
                }
            }
        }
        if let Some(gc) = &seen.gather_call {
            match gc {
                Ok(gl) => {
                    if *gl < self.loops.len() {
                        self.maybe_claim(*gl, th);
                    }
                }
                Err(Error::NoCurrentLoop { thread }) => ensure!(
                    *thread == thread_name(th) && self.slots[th].current.is_none(),
                    "GATHER-2: gather() of nothing gave NoCurrentLoop({thread})"
                ),
                Err(Error::DifferentLoop | Error::Closed | Error::NonThreadSafeCall) => {}
                Err(e) => return Err(format!("GATHER-3: gather() gave {e:?}")),
            }
        }
        if let Some((gl, r, _)) = &seen.gathered {
            let unit = match r {
                // A child's own exception (see the future case above).
                Err(Error::Closed) if !self.loops[l].closed && seen.gather_child_closed => Ok(()),
                Err(e @ (Error::Closed | Error::BoundToThread { .. })) => Err(e.clone()),
                _ => Ok(()),
            };
            if *gl != l && !self.loops[l].closed && seen.watchdog.is_ok() {
                ensure!(
                    *r == Err(Error::DifferentLoop),
                    "LIFE-2: run_until_complete of another loop's gather gave {r:?}"
                );
            } else {
                ran = self.run_checks(l, th, &unit)?;
            }
        }
        if let (Some(tid), Some(run)) = (tid, &seen.run) {
            let o = lock(&self.log).tasks[tid].clone();
            if !ran {
                ensure!(
                    o.steps.is_empty() && o.coro_dropped == 1,
                    "LIFE-8: a coroutine refused by run_until_complete was polled or kept"
                );
            } else {
                let script = self.tasks[tid].script.clone();
                match run {
                    Err(Error::StoppedBeforeComplete) => {}
                    Err(Error::Cancelled(_)) => ensure!(
                        self.tasks[tid].may_cancel || o.propagated,
                        "TASK-4: run_until_complete's task was cancelled by nobody"
                    ),
                    r => check_task_outcome(tid, &script, &o, false, r, false)?,
                }
            }
        }
        if ran {
            self.after_run(l, th, &seen.pending);
        }
        self.after_run_op(l, th, ran, &predicted)
    }

    /// LIFE-2, LIFE-4, STOP-7: what run_until_complete of a future returns.
    pub(crate) fn check_run_result(
        &self,
        _th: usize,
        _l: usize,
        tid: Option<usize>,
        run: &loopspec::Result<u32>,
        after: Option<&(bool, bool, Option<loopspec::Result<u32>>)>,
    ) -> Result<(), String> {
        if tid.is_some() {
            return Ok(());
        }
        let Some((done, cancelled, outcome)) = after else {
            return Ok(());
        };
        if !done {
            ensure!(
                *run == Err(Error::StoppedBeforeComplete),
                "STOP-7: run_until_complete of a pending future gave {run:?}"
            );
            return Ok(());
        }
        let same = match (run, outcome) {
            (Err(Error::Cancelled(_)), Some(Err(Error::Cancelled(_)))) => true,
            (Err(Error::Cancelled(_)), _) => *cancelled,
            (r, Some(o)) => r == o,
            _ => false,
        };
        ensure!(
            same,
            "LIFE-2/LIFE-4: run_until_complete gave {run:?}, the future holds {outcome:?}"
        );
        Ok(())
    }
}
