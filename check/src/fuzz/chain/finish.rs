//! The end of a `run_chain` program: A shut down, workers joined, B run
//! and closed, then every final state checked against its source.

use super::{Chain, ChainCfKind, ChainOp, DRIVER, TURNS_WHILE_A_SHUTS_DOWN, cf_outcome};
use crate::fuzz::judge::{check_context, check_task_outcome};
use crate::fuzz::program::Step;
use crate::fuzz::record::lock;
use loopspec::{CfState, Error};

impl Chain {
    pub(crate) fn shutdown_a(&mut self) -> Result<(), String> {
        if let Some(a) = self.a.take() {
            // A's runner waits for the tasks it cancels (RUNNER-4), and one
            // of them may swallow its cancellation and wait again — for work
            // of B, which only this thread runs, or for a concurrent future
            // only this thread would complete. So B keeps running while A
            // shuts down (or, once B is closed, this thread yields), for a
            // bounded number of turns; if A has not finished by then, the
            // driver cancels every concurrent future still pending (CONC-3)
            // and closes B (B's close fails what it leaves, XTHREAD-6). A
            // task's script is finite, so after that the wait always ends.
            let closer = std::thread::spawn(move || a.stop_and_join());
            let mut turns = 0;
            while !closer.is_finished() {
                if turns == TURNS_WHILE_A_SHUTS_DOWN {
                    for i in 0..self.cfs.len() {
                        self.cancel_cf_at(i)?;
                    }
                    if !self.b_closed {
                        self.step(ChainOp::CloseB)?;
                    }
                    break;
                }
                if self.b_closed {
                    std::thread::yield_now();
                } else {
                    self.step(ChainOp::RunB)?;
                }
                turns += 1;
            }
            let r = closer
                .join()
                .map_err(|_| "stop_and_join of A panicked".to_string())?;
            let ok = r == Ok(()) || (self.a_closed && r == Err(Error::Closed));
            ensure!(ok, "XTHREAD-10: stop_and_join gave {r:?}");
            self.a_closed = true;
            ensure!(
                self.lp_a.is_closed() && !self.lp_a.is_running(),
                "XTHREAD-10: A is not closed after stop_and_join"
            );
        }
        Ok(())
    }

    pub(crate) fn finish(&mut self) -> Result<(), String> {
        self.shutdown_a()?;
        for w in self.workers.drain(..) {
            w.join().map_err(|_| "a worker panicked".to_string())?;
        }
        if !self.b_closed {
            for _ in 0..2 {
                self.step(ChainOp::RunB)?;
            }
            self.step(ChainOp::CloseB)?;
        }
        // Wrappers: one final state, copied from the source (CHAIN-2, 6, 7).
        for (di, d) in self.dests.iter().enumerate() {
            let src = &self.cfs[d.src];
            let so = cf_outcome(&src.cf);
            if d.frozen && !d.cancelled_by_us {
                ensure!(
                    !d.fut.done(),
                    "CHAIN-6: wrapper {di} completed after its loop closed"
                );
            }
            if !d.fut.done() {
                continue;
            }
            if d.fut.cancelled() {
                ensure!(
                    d.cancelled_by_us || src.cf.cancelled(),
                    "CHAIN-2: wrapper {di} cancelled by nobody"
                );
                continue;
            }
            let mine = d.fut.result();
            ensure!(
                so.as_ref() == Some(&mine) && src.cf.state() == CfState::Finished,
                "CHAIN-2/CHAIN-7: wrapper {di} holds {mine:?}, its source {so:?}"
            );
        }
        // Sources a cancelled wrapper may have cancelled (CHAIN-4).
        let mut chained: Vec<bool> = self.cfs.iter().map(|c| c.cancel_called).collect();
        for d in &self.dests {
            if d.cancelled_by_us || d.fut.cancelled() {
                chained[d.src] = true;
            }
        }
        for c in &self.cfs {
            // A's runner cancels a task still pending at its shutdown
            // (RUNNER-4); when the loop closes before that task's end reaches
            // its future, the future holds `Closed` (XTHREAD-6), yet the
            // cancellation has already reached the source (CHAIN-4).
            let interrupted = matches!(cf_outcome(&c.cf), Some(Err(Error::Closed)));
            if let ChainCfKind::WrapOnA { src } = c.kind
                && (c.cancel_called || c.cf.cancelled() || interrupted)
            {
                chained[src] = true;
            }
        }
        drop(std::mem::take(&mut self.dests));
        // Concurrent futures.
        let tasks = lock(&self.log).tasks.clone();
        for (i, c) in self.cfs.iter().enumerate() {
            let out = cf_outcome(&c.cf);
            for w in &c.waits {
                let same = match (w, &out) {
                    (Err(Error::Cancelled(_)), Some(Err(Error::Cancelled(_)))) => true,
                    (w, Some(o)) => w == o,
                    _ => false,
                };
                ensure!(same, "CONC-2: result() gave {w:?}, the future ends {out:?}");
            }
            match c.kind {
                ChainCfKind::Plain => {}
                ChainCfKind::Rcts { tid } => {
                    let out = out.ok_or(format!("XTHREAD-6: run_coroutine_threadsafe future {i} is {:?} after its loop closed", c.cf.state()))?;
                    let script = &self.scripts[tid];
                    let o = &tasks[tid];
                    match &out {
                        Err(Error::Closed) => {}
                        Err(Error::Cancelled(_)) => {
                            // A's runner cancels the tasks still pending
                            // when it shuts down (XTHREAD-10, RUNNER-4).
                            let shut_down = o.lp == 0 && !o.ended;
                            let may = chained[i]
                                || o.propagated
                                || shut_down
                                || script.steps.iter().any(|s| matches!(s, Step::CancelSelf));
                            ensure!(
                                may,
                                "XTHREAD-7/8: run_coroutine_threadsafe future {i} cancelled by nobody"
                            );
                        }
                        r => check_task_outcome(tid, script, o, false, r, false)?,
                    }
                }
                ChainCfKind::WrapOnA { src } => {
                    let out = out.ok_or(format!("XTHREAD-6: run_coroutine_threadsafe future {i} is {:?} after its loop closed", c.cf.state()))?;
                    let so = cf_outcome(&self.cfs[src].cf);
                    match &out {
                        Err(Error::Closed | Error::Cancelled(_)) => {}
                        r => ensure!(
                            so.as_ref() == Some(r),
                            "CHAIN-2: a wrapper on A gave {r:?}, its source {so:?}"
                        ),
                    }
                }
            }
        }
        // Callbacks: ran at most once, on their loop's thread; all dropped.
        let log = lock(&self.log);
        for &(id, on_b, accepted) in &self.cbs {
            let o = &log.cbs[id];
            ensure!(
                o.dropped == 1 && o.ran <= 1,
                "XTHREAD-3/LIFE-7: callback {id} ran {} times, dropped {} times",
                o.ran,
                o.dropped
            );
            ensure!(accepted || o.ran == 0, "XTHREAD-3: a refused callback ran");
            if o.ran == 1 {
                let want = if on_b { DRIVER } else { usize::MAX };
                ensure!(
                    o.ran_thread == want,
                    "XTHREAD-1: callback {id} ran on the wrong thread"
                );
            }
        }
        for (tid, o) in log.tasks.iter().enumerate() {
            let built = !o.steps.is_empty() || o.coro_dropped > 0;
            ensure!(
                !built || o.coro_dropped == 1,
                "LIFE-7: task {tid}'s future dropped {} times",
                o.coro_dropped
            );
        }
        for (_, ctx) in &log.exceptions {
            check_context(ctx)?;
        }
        if let Some(v) = log.violations.first() {
            return Err(v.clone());
        }
        Ok(())
    }

    pub(crate) fn teardown(&mut self) {
        self.lp_a.set_exception_handler(None);
        self.lp_b.set_exception_handler(None);
        let mut log = lock(&self.log);
        log.loops.clear();
        log.handles.clear();
    }
}
