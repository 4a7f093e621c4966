//! The checks after every operation: what ran (SCHED-1..4, SCHED-7), what
//! was dropped, and how concurrent futures moved (CONC-1).

use super::Ops;
use super::model::{CbM, CfKind, Kind, Loc};
use crate::fuzz::INTENTIONAL_PANIC;
use crate::fuzz::judge::check_context;
use crate::fuzz::program::CbAction;
use crate::fuzz::record::lock;
use loopspec::{CfState, Error};

impl Ops {
    /// Checks after every operation; `run` is the loop run by `th` in it.
    pub(crate) fn after_op(&mut self, th: usize, run: Option<usize>) -> Result<Vec<usize>, String> {
        let mut log = lock(&self.log);
        if let Some(v) = log.violations.first() {
            return Err(v.clone());
        }
        // Callbacks spawned by callbacks: local work of the running thread,
        // or the loop's work if their parent was.
        while self.cbs.len() < log.cbs.len() {
            let i = self.cbs.len();
            self.cbs.push(CbM {
                lp: log.cbs[i].lp,
                kind: Kind::Soon,
                loc: if log.cbs[i].send {
                    Loc::Work
                } else {
                    Loc::Half(th)
                },
                action: CbAction::Nothing,
                accepted: true,
                cancelled: false,
                handle: None,
                drop_seen: false,
            });
        }
        // What ran in this operation.
        let ran: Vec<usize> = log.ran_order[self.ran_seen..].to_vec();
        self.ran_seen = log.ran_order.len();
        let mut want_panics = 0;
        let mut want_drop_panics = 0;
        for &i in &ran {
            let (c, o) = (&self.cbs[i], &log.cbs[i]);
            ensure!(c.accepted, "callback {i} ran but was refused");
            ensure!(
                run == Some(c.lp),
                "callback {i} of loop {} ran outside a run of its loop",
                c.lp
            );
            ensure!(
                o.ran_thread == th,
                "callback {i} ran on thread {} instead of {th}",
                o.ran_thread
            );
            ensure!(
                !c.cancelled,
                "SCHED-3: callback {i} ran after its handle was cancelled"
            );
            ensure!(
                !self.loops[c.lp].closed,
                "LIFE-7: callback {i} ran on a closed loop"
            );
            match c.kind {
                Kind::Timer(w) => ensure!(
                    o.ran_time >= w - 1e-9,
                    "SCHED-4/CLOCK-3: timer {i} due at {w} ran at {}",
                    o.ran_time
                ),
                _ => {
                    if let Some(last) = self.fifo_last[c.lp] {
                        ensure!(
                            last < i,
                            "SCHED-2/XTHREAD-2: callback {i} ran after the later callback {last}"
                        );
                    }
                    self.fifo_last[c.lp] = Some(i);
                }
            }
            match c.action {
                CbAction::Panic => want_panics += 1,
                _ if o.drop_panicked => want_drop_panics += 1,
                _ => {}
            }
        }
        // Task steps: every poll of a task's coroutine happens in a run of
        // its loop, on the thread that runs it, whichever thread made the
        // task (THREAD-3, THREAD-8).
        for (tid, o) in log.tasks.iter().enumerate() {
            let m = &mut self.tasks[tid];
            for &t in &o.polls[m.polls_seen..] {
                ensure!(
                    run == Some(o.lp) && t == th,
                    "THREAD-8: task {tid} of loop {} (send={}) was polled on thread {t}, in an operation of thread {th} that ran {run:?}",
                    o.lp,
                    m.send
                );
            }
            m.polls_seen = o.polls.len();
        }
        // A `create_task` task's coroutine goes when the task is done or
        // with close(), not with a thread or a refused run (THREAD-8).
        for t in &self.send_tasks {
            let m = &mut self.tasks[t.tid];
            if log.tasks[t.tid].coro_dropped > 0 && !m.coro_drop_seen {
                m.coro_drop_seen = true;
                ensure!(
                    t.task.done() || self.loops[t.lp].closed,
                    "THREAD-8: Send task {} of open loop {} lost its coroutine while pending, in an operation of thread {th}",
                    t.tid,
                    t.lp
                );
            }
        }
        // Cancels done by the callbacks that ran.
        for &i in &ran {
            if let CbAction::Cancel(h) = self.cbs[i].action
                && !log.handle_cb.is_empty()
            {
                let target = log.handle_cb[h as usize % log.handle_cb.len()];
                self.cbs[target].cancelled = true;
            }
        }
        // A cancelled `call_soon_threadsafe` callback is dropped where it
        // would have run, inside the run's catch: a panicking `Drop` there is
        // reported like a failing callback.
        let mut skipped_sent = 0;
        for (i, o) in log.cbs.iter().enumerate() {
            let c = &mut self.cbs[i];
            if o.dropped == 1 && !c.drop_seen {
                c.drop_seen = true;
                // The loop's work goes only by running, by a cancelled
                // handle or with close(): not with a thread's exit, nor with
                // a run refused elsewhere (THREAD-4, THREAD-8).
                ensure!(
                    !c.accepted
                        || !c.loc.is_loops()
                        || o.ran == 1
                        || c.cancelled
                        || self.loops[c.lp].closed,
                    "THREAD-8: callback {i} ({:?}), the loop's work, was dropped unrun on open loop {} in an operation of thread {th}",
                    c.loc,
                    c.lp
                );
                if o.ran == 0 && o.drop_panicked && c.kind == Kind::Threadsafe && run.is_some() {
                    skipped_sent += 1;
                }
            }
        }
        for (i, o) in log.cbs.iter().enumerate() {
            ensure!(
                o.ran <= 1 && o.dropped <= 1,
                "callback {i} ran {} times, dropped {} times",
                o.ran,
                o.dropped
            );
            ensure!(
                o.ran == 0 || o.dropped == 1,
                "callback {i} ran but its data was not dropped"
            );
            ensure!(
                self.cbs[i].accepted || (o.ran == 0 && o.dropped == 1),
                "refused callback {i} ran or was kept"
            );
        }
        // Exception handler reports.
        let mut panics = 0;
        let mut drop_panics = 0;
        for (_, ctx) in &log.exceptions[self.exceptions_seen..] {
            check_context(ctx)?;
            if ctx.message.starts_with("Exception in callback ") {
                match &ctx.exception {
                    Some(Error::Panic(m)) if m == INTENTIONAL_PANIC => panics += 1,
                    _ => drop_panics += 1,
                }
            }
        }
        self.exceptions_seen = log.exceptions.len();
        ensure!(
            panics == want_panics
                && drop_panics >= want_drop_panics
                && drop_panics <= want_drop_panics + skipped_sent,
            "SCHED-7: {panics}+{drop_panics} callback failures reported, {want_panics}+{want_drop_panics} expected"
        );
        for t in std::mem::take(&mut log.cancel_touched) {
            self.tasks[t].may_cancel = true;
        }
        drop(log);
        self.reconcile_cfs()?;
        Ok(ran)
    }

    /// Concurrent futures change state during runs (CHAIN-4 cancels a
    /// wrapped source; a task completes its `run_coroutine_threadsafe`
    /// future): check each change is allowed.
    pub(crate) fn reconcile_cfs(&mut self) -> Result<(), String> {
        for (i, c) in self.cfs.iter_mut().enumerate() {
            let now = c.cf.state();
            if now == c.state {
                continue;
            }
            let ok = matches!(
                (c.kind, c.state, now),
                (_, CfState::Cancelled, CfState::CancelledAndNotified)
                    | (
                        CfKind::Plain { wrapped: true },
                        CfState::Pending,
                        CfState::Cancelled
                    )
                    | (
                        CfKind::Rcts { .. },
                        CfState::Pending,
                        CfState::Finished | CfState::Cancelled | CfState::CancelledAndNotified,
                    )
            );
            ensure!(
                ok,
                "CONC-1: concurrent future {i} went from {:?} to {now:?}",
                c.state
            );
            c.state = now;
        }
        Ok(())
    }
}
