//! The lock-step threads of `run_ops`: each holds its own tasks and futures
//! (they are not `Send`) and runs one job at a time, handed to it by the
//! coordinator, which waits for it.

use super::body::Ref;
use super::panic_message;
use super::record::{EXITING, WHO};
use loopspec::{Future, Task};
use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::thread;

/// What one thread holds that is not `Send`: its tasks and futures.
#[derive(Default)]
pub(crate) struct Local {
    pub(crate) tasks: Vec<LTask>,
    pub(crate) futs: Vec<LFut>,
}

pub(crate) struct LTask {
    pub(crate) tid: usize,
    pub(crate) lp: usize,
    pub(crate) task: Task<u32>,
    /// Made by `create_task` (the loop's work), not `create_task_local`.
    pub(crate) send: bool,
    /// Once seen done: whether it was cancelled (FUT-1: never changes).
    pub(crate) seen: Option<bool>,
}

pub(crate) struct LFut {
    pub(crate) lp: usize,
    pub(crate) fut: Future<u32>,
    /// The concurrent future it wraps (`wrap_future`), if any.
    pub(crate) wraps: Option<usize>,
    /// Completed or cancelled by an operation (not by its chain).
    pub(crate) touched: bool,
    pub(crate) seen: Option<bool>,
}

impl Local {
    pub(crate) fn refs(&self) -> Vec<Ref> {
        self.tasks
            .iter()
            .map(|t| Ref {
                fut: t.task.as_future().clone(),
                task: Some(t.tid),
            })
            .chain(self.futs.iter().map(|f| Ref {
                fut: f.fut.clone(),
                task: None,
            }))
            .collect()
    }

    /// Future `n` (modulo their number) of this thread, marked as touched by
    /// an operation; `None` if the thread has none.
    pub(crate) fn touch_fut(&mut self, n: u8) -> Option<&mut LFut> {
        let count = self.futs.len();
        let f = self.futs.get_mut(usize::from(n) % count.max(1))?;
        f.touched = true;
        Some(f)
    }

    /// FUT-1: a future leaves pending once and never changes its final
    /// state.
    pub(crate) fn check_stable(&mut self) -> Result<(), String> {
        let states = self
            .tasks
            .iter_mut()
            .map(|t| (&mut t.seen, t.task.as_future().clone()))
            .chain(self.futs.iter_mut().map(|f| (&mut f.seen, f.fut.clone())));
        for (seen, fut) in states {
            match *seen {
                Some(c) if !fut.done() || fut.cancelled() != c => {
                    return Err(format!("FUT-1: {fut:?} left its final state"));
                }
                None if fut.done() => *seen = Some(fut.cancelled()),
                _ => {}
            }
        }
        Ok(())
    }

    /// Pending local tasks of loop `lp`: (model id, name).
    pub(crate) fn pending_tasks(&self, lp: usize) -> Vec<(usize, String)> {
        self.tasks
            .iter()
            .filter(|t| t.lp == lp && !t.send && !t.task.done())
            .map(|t| (t.tid, t.task.get_name()))
            .collect()
    }
}

pub(crate) type Job = Box<dyn FnOnce(&mut Local) -> Box<dyn Any + Send> + Send>;

pub(crate) struct Worker {
    pub(crate) jobs: Option<mpsc::Sender<Job>>,
    pub(crate) done: mpsc::Receiver<thread::Result<Box<dyn Any + Send>>>,
    pub(crate) join: Option<thread::JoinHandle<()>>,
}

impl Worker {
    pub(crate) fn spawn(index: usize) -> Worker {
        let (jobs, job_rx) = mpsc::channel::<Job>();
        let (done_tx, done) = mpsc::channel();
        let join = thread::Builder::new()
            .name(format!("fuzz-t{index}"))
            .spawn(move || {
                WHO.with(|w| w.set(index));
                let mut local = Local::default();
                while let Ok(job) = job_rx.recv() {
                    let r = catch_unwind(AssertUnwindSafe(|| {
                        let out = job(&mut local);
                        if let Err(e) = local.check_stable() {
                            panic!("{e}");
                        }
                        out
                    }));
                    if done_tx.send(r).is_err() {
                        break;
                    }
                }
                drop(local);
                WHO.with(|w| w.set(EXITING));
            })
            .expect("spawn a fuzz thread");
        Worker {
            jobs: Some(jobs),
            done,
            join: Some(join),
        }
    }

    /// Runs `f` on this thread and waits for it.
    pub(crate) fn exec<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Local) -> R + Send + 'static,
    ) -> Result<R, String> {
        let job: Job = Box::new(move |l| Box::new(f(l)) as Box<dyn Any + Send>);
        self.jobs
            .as_ref()
            .ok_or("thread already stopped")?
            .send(job)
            .map_err(|_| "fuzz thread died".to_string())?;
        match self.done.recv() {
            Ok(Ok(b)) => Ok(*b.downcast::<R>().expect("job result type")),
            Ok(Err(p)) => Err(format!("a panic escaped: {}", panic_message(&*p))),
            Err(_) => Err("fuzz thread died".into()),
        }
    }

    /// Ends the thread (its thread-local state is dropped) and joins it.
    pub(crate) fn stop(&mut self) -> Result<(), String> {
        self.jobs = None;
        match self.join.take().map(thread::JoinHandle::join) {
            Some(Err(p)) => Err(format!(
                "a panic escaped at thread exit: {}",
                panic_message(&*p)
            )),
            _ => Ok(()),
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}
