//! Closing loops, retiring threads, and the checks at the end of a program:
//! everything accepted ran at most once and was dropped exactly once.

use super::model::{CfKind, FREE, HomeSet, Loc};
use super::{FutSeen, Ops, THREADS};
use crate::fuzz::judge::check_task_outcome;
use crate::fuzz::panic_message;
use crate::fuzz::record::lock;
use loopspec::{CfState, Error};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

impl Ops {
    /// `close()` by `th` (LIFE-7, THREAD-5, TASK-8).
    pub(crate) fn close(&mut self, th: usize, l: usize) -> Result<(), String> {
        let lpv = self.loops[l].lp.clone();
        // The loop's pending tasks, whichever thread made them.
        let pending_send: Vec<(usize, String)> = self
            .send_tasks
            .iter()
            .filter(|t| t.lp == l && !t.task.done())
            .map(|t| (t.tid, t.task.get_name()))
            .collect();
        let (got, pending) = self.exec(th, move |local| {
            let pending = local.pending_tasks(l);
            (lpv.close(), pending)
        })?;
        ensure!(
            got == Ok(()),
            "LIFE-7: close() of a loop that is not running gave {got:?}"
        );
        let was_closed = self.loops[l].closed;
        let home = self.loops[l].home;
        self.loops[l].closed = true;
        let log = lock(&self.log).cbs.clone();
        for (i, cb) in self.cbs.iter().enumerate() {
            if cb.lp != l || !cb.accepted {
                continue;
            }
            let dropped_now = match cb.loc {
                Loc::Inbox | Loc::Work => !was_closed,
                Loc::Half(t) => t == th && (was_closed || home.only_free_or(th)),
                Loc::Unknown => false,
            };
            if dropped_now {
                ensure!(
                    log[i].dropped == 1,
                    "LIFE-7/XTHREAD-3/THREAD-5: close() by thread {th} left callback {i} ({:?}) undropped",
                    cb.loc
                );
            }
        }
        if !was_closed && home.only_free_or(th) {
            self.loops[l].home = FREE;
        }
        if home.only_free_or(th) || was_closed {
            let tl = lock(&self.log).tasks.clone();
            for (tid, _name) in &pending {
                ensure!(
                    tl[*tid].coro_dropped == 1,
                    "LIFE-7/TASK-8: close() kept the future of pending task {tid}"
                );
            }
        }
        if !was_closed {
            // The loop's work goes with close() on any thread: every `Send`
            // coroutine of the loop is gone, finished before or destroyed now
            // (THREAD-5, TASK-8).
            let tl = lock(&self.log).tasks.clone();
            for (tid, m) in self.tasks.iter().enumerate() {
                if m.send && tl[tid].lp == l {
                    ensure!(
                        tl[tid].coro_dropped == 1,
                        "THREAD-5/TASK-8: close() by thread {th} kept the coroutine of Send task {tid} (dropped {} times)",
                        tl[tid].coro_dropped
                    );
                }
            }
        }
        self.after_op(th, None)?;
        if !was_closed {
            let reports: Vec<String> = lock(&self.log)
                .exceptions
                .iter()
                .filter(|(li, c)| *li == l && c.message == "Task was destroyed but it is pending!")
                .filter_map(|(_, c)| c.task.clone())
                .collect();
            let local = if home.only_free_or(th) {
                &pending[..]
            } else {
                &[]
            };
            for (tid, name) in local.iter().chain(&pending_send) {
                let needle = format!("name='{name}'");
                let n = reports.iter().filter(|r| r.contains(&needle)).count();
                ensure!(
                    n == 1,
                    "TASK-8: pending task {tid} ({name}) reported {n} times at close()"
                );
            }
        }
        Ok(())
    }

    /// Observes and checks thread `th`'s tasks and futures, then ends the
    /// thread: what it held is dropped with it (THREAD-4).
    pub(crate) fn retire_thread(&mut self, th: usize) -> Result<(), String> {
        let log = self.log.clone();
        let (tasks, futs) = self.exec(th, move |local| {
            let _ = log;
            let tasks: Vec<(usize, bool, bool, Option<loopspec::Result<u32>>)> = local
                .tasks
                .iter()
                .map(|t| {
                    let f = t.task.as_future();
                    (t.tid, f.done(), f.cancelled(), f.done().then(|| f.result()))
                })
                .collect();
            let futs: Vec<FutSeen> = local
                .futs
                .iter()
                .map(|f| {
                    (
                        f.wraps.filter(|_| !f.touched),
                        f.fut.done(),
                        f.fut.cancelled(),
                        f.fut.done().then(|| f.fut.result()),
                    )
                })
                .collect();
            (tasks, futs)
        })?;
        let obs = lock(&self.log).tasks.clone();
        for (tid, done, cancelled, outcome) in &tasks {
            let m = &self.tasks[*tid];
            if m.cancelled_before_start {
                ensure!(
                    obs[*tid].steps.is_empty(),
                    "TASK-4: task {tid} was cancelled before it started but its body ran"
                );
            }
            if *done {
                let out = outcome.clone().unwrap_or(Err(Error::InvalidState));
                check_task_outcome(*tid, &m.script, &obs[*tid], m.may_cancel, &out, *cancelled)?;
            }
        }
        for (wraps, done, cancelled, outcome) in futs {
            let (Some(ci), true) = (wraps, done) else {
                continue;
            };
            let c = &self.cfs[ci];
            let src = c.cf.state();
            if cancelled {
                continue; // cancelled directly, or its source was
            }
            let src_outcome = match c.kind {
                CfKind::Plain { .. } => c.outcome.clone(),
                CfKind::Rcts { .. } => c.cf.result(Some(Duration::ZERO)).ok().map(Ok),
            };
            ensure!(
                src == CfState::Finished,
                "CHAIN-2: wrap_future's future finished but its source is {src:?}"
            );
            if let (Some(o), Some(s)) = (&outcome, &src_outcome) {
                ensure!(
                    o == s,
                    "CHAIN-2: wrap_future's future holds {o:?}, its source {s:?}"
                );
            }
        }
        // End the thread.
        let before = lock(&self.log).cbs.clone();
        let tasks_before = lock(&self.log).tasks.clone();
        let dropped = self.exec(th, |local| {
            let l = std::mem::take(local);
            catch_unwind(AssertUnwindSafe(move || drop(l)))
                .err()
                .map(|p| panic_message(&*p))
        })?;
        if let Some(p) = dropped {
            return Err(format!(
                "LIFE-7/THREAD-4: dropping thread {th}'s handles dropped live task data: {p}"
            ));
        }
        self.workers[th].stop()?;
        for l in 0..self.loops.len() {
            let m = &mut self.loops[l];
            if m.home.has(HomeSet::at(th)) {
                m.home = HomeSet((m.home.0 & !HomeSet::at(th).0) | FREE.0);
            }
        }
        let cbl = lock(&self.log).cbs.clone();
        for (i, cb) in self.cbs.iter_mut().enumerate() {
            if !cb.accepted {
                continue;
            }
            if cb.loc.is_loops() {
                // The loop's work, the cross-thread submissions it took in
                // included, stays with the loop (THREAD-4, THREAD-8).
                ensure!(
                    cbl[i].dropped == before[i].dropped,
                    "THREAD-8: callback {i} ({:?}), the loop's work, was dropped by thread {th}'s exit",
                    cb.loc
                );
            } else if cb.loc == Loc::Half(th) {
                ensure!(
                    cbl[i].dropped == 1,
                    "THREAD-4: callback {i} outlived its home thread {th}"
                );
                cb.loc = Loc::Unknown;
            }
        }
        let tl = lock(&self.log).tasks.clone();
        for (tid, m) in self.tasks.iter().enumerate() {
            if m.send {
                // The loop's task, whichever thread made it (THREAD-8).
                ensure!(
                    tl[tid].coro_dropped == tasks_before[tid].coro_dropped,
                    "THREAD-8: Send task {tid}'s coroutine was dropped by thread {th}'s exit"
                );
            } else if m.th == th && m.rcts.is_none() && m.built {
                ensure!(
                    tl[tid].coro_dropped == 1,
                    "THREAD-4: task {tid}'s future outlived its thread {th}"
                );
            }
        }
        self.after_op(th, None)?;
        Ok(())
    }

    /// The end: close every loop from every thread, retire the threads, and
    /// check that everything accepted was run or dropped exactly once.
    pub(crate) fn finish(&mut self) -> Result<(), String> {
        for l in 0..self.loops.len() {
            self.close(0, l)?;
        }
        for th in 0..THREADS {
            for l in 0..self.loops.len() {
                self.close(th, l)?;
            }
        }
        for th in 0..THREADS {
            self.retire_thread(th)?;
        }
        let log = lock(&self.log);
        for (i, o) in log.cbs.iter().enumerate() {
            ensure!(
                o.dropped == 1 && o.ran <= 1,
                "LIFE-7: callback {i} ran {} times and was dropped {} times by the end",
                o.ran,
                o.dropped
            );
        }
        for (tid, o) in log.tasks.iter().enumerate() {
            let m = &self.tasks[tid];
            let built = m.built || !o.steps.is_empty() || o.coro_dropped > 0;
            ensure!(
                !built || o.coro_dropped == 1,
                "LIFE-7: the future of task {tid} was dropped {} times",
                o.coro_dropped
            );
        }
        drop(log);
        // `create_task`'s tasks finished wherever the loop ran (THREAD-8).
        let obs = lock(&self.log).tasks.clone();
        for t in &self.send_tasks {
            let f = t.task.as_future();
            if f.done() {
                let m = &self.tasks[t.tid];
                let out = f.result();
                check_task_outcome(
                    t.tid,
                    &m.script,
                    &obs[t.tid],
                    m.may_cancel,
                    &out,
                    f.cancelled(),
                )?;
            }
        }
        for (i, c) in self.cfs.iter().enumerate() {
            let CfKind::Rcts { tid, .. } = c.kind else {
                continue;
            };
            let state = c.cf.state();
            ensure!(
                state != CfState::Pending && state != CfState::Running,
                "XTHREAD-6: run_coroutine_threadsafe future {i} is {state:?} after its loop closed"
            );
            if state == CfState::Finished {
                let o = lock(&self.log).tasks[tid].clone();
                let r = c.cf.result(Some(Duration::ZERO));
                match &r {
                    Err(Error::Closed) => {}
                    r => check_task_outcome(tid, &self.tasks[tid].script, &o, false, r, false)?,
                }
            } else {
                let o = lock(&self.log).tasks[tid].clone();
                ensure!(
                    c.cancel_called || self.tasks[tid].may_cancel || o.propagated,
                    "XTHREAD-7: run_coroutine_threadsafe future {i} cancelled by nobody"
                );
            }
        }
        Ok(())
    }
}
