//! `run_ops`: programs of operations over three threads and a few
//! virtual-clock loops, run in lock-step (one operation at a time, by the
//! thread it names) and checked against a sequential model after every
//! operation.
//!
//! * `model`: the model's state and its answers to what a call, a run or a
//!   close must have done; `after`: the checks after every operation.
//! * One module per kind of operation: `policy` (new, set and get the
//!   loop, exception handlers, thread restarts), `schedule` (callbacks and
//!   their handles), `futures` (tasks and plain futures), `runs` (one
//!   iteration, `run_forever`, `run_until_complete`, `stop`), `concurrent`
//!   (concurrent futures, `run_coroutine_threadsafe`, `wrap_future`) and
//!   `close` (closing loops, retiring threads, the final checks).
//!
//! Two kinds of work. `CallSoon`, `CallLater`, `CreateTask` and
//! `RunCoroutineThreadsafe` make local work with the `*_local` calls: it
//! lives on its thread, the loop's local home, which alone may run the loop
//! or add local work while it has some, and it goes with that thread's exit
//! (THREAD-10, THREAD-1, THREAD-2, THREAD-4); the model follows the local
//! home as a set of possibilities (`HomeSet`). `CallSoonSend`,
//! `CallLaterSend`, `CreateTaskSend` and `RunCoroutineThreadsafeSend` make
//! the loop's own work with the asyncio-named calls (`Send` callbacks and
//! coroutines), as do `call_soon_threadsafe` submissions once taken in
//! (THREAD-8). The model checks that:
//!
//! * any thread's call on an open loop is accepted (no thread runs the loop
//!   during an operation; the interpreter checks it), a closed loop's is
//!   refused with `Event loop is closed` and the callback or coroutine
//!   dropped at once, and neither changes the local home (THREAD-9, LIFE-8);
//! * a run is never refused because of it: only local work binds
//!   (THREAD-2, THREAD-3);
//! * each callback runs once, in a run of its loop, on the thread that runs
//!   it, in FIFO order with the local callbacks (SCHED-2), or is dropped
//!   once by `close()` on any thread (THREAD-5); nothing else drops it — no
//!   thread's exit, no refused run (THREAD-4, THREAD-8);
//! * every poll of a task's coroutine happens in a run of its loop, on the
//!   thread running it; a `Send` task's coroutine goes only when the task is
//!   done or with `close()`, which reports the task as destroyed pending
//!   (TASK-8); a done task's outcome follows its script, whichever threads
//!   ran its steps.

mod after;
mod close;
mod concurrent;
mod futures;
mod model;
mod policy;
mod runs;
mod schedule;

use super::install_panic_hook;
use super::program::{Cb, Op, OpsProgram, Script, Step, decode_ops, delay_of};
use super::record::{CbObs, Shared, TaskObs, install_handler, lock};
use super::worker::{Local, Worker};
use loopspec::{ClockKind, ConcurrentFuture, EventLoop, Policy, Profile, Task};
use model::{CbM, CfM, FREE, Kind, Loc, LoopM, SlotM, TaskM};
use std::thread;

/// Most loops a program makes.
pub(crate) const LOOPS_MAX: usize = 4;
/// The lock-step threads; thread 0 is the policy's main thread.
pub(crate) const THREADS: usize = 3;
/// Virtual seconds after which a run started by the interpreter is stopped.
pub(crate) const WATCHDOG: f64 = 1.0e4;

/// The thread an operation names.
fn th_of(t: u8) -> usize {
    t as usize % THREADS
}

/// The interpreter of one program: its threads, the loops it made, and the
/// model's record of everything it scheduled.
pub(crate) struct Ops {
    pub(crate) prog: OpsProgram,
    pub(crate) log: Shared,
    pub(crate) workers: Vec<Worker>,
    pub(crate) policy: Policy,
    pub(crate) profile: Profile,
    pub(crate) loops: Vec<LoopM>,
    pub(crate) cbs: Vec<CbM>,
    pub(crate) tasks: Vec<TaskM>,
    pub(crate) cfs: Vec<CfM>,
    pub(crate) slots: [SlotM; THREADS],
    pub(crate) op: usize,
    pub(crate) exceptions_seen: usize,
    pub(crate) ran_seen: usize,
    /// Per loop: the last plain (non-timer) callback that ran (SCHED-2).
    pub(crate) fifo_last: Vec<Option<usize>>,
    /// The handles of the tasks `create_task` made (the loop's work): the
    /// coordinator keeps them, since they outlive the thread that made
    /// them (THREAD-8).
    pub(crate) send_tasks: Vec<SendTask>,
}

/// A task made by `create_task`: its model id, its loop, its handle.
pub(crate) struct SendTask {
    pub(crate) tid: usize,
    pub(crate) lp: usize,
    pub(crate) task: Task<u32>,
}

impl Ops {
    pub(crate) fn new(prog: OpsProgram) -> Result<Ops, String> {
        let workers: Vec<Worker> = (0..THREADS).map(Worker::spawn).collect();
        let main = workers[0].exec(|_| thread::current().id())?;
        let profile = Profile::ALL[prog.profile as usize % Profile::ALL.len()];
        let policy = Policy::new(profile)
            .with_main_thread(main)
            .with_clock(ClockKind::Virtual);
        Ok(Ops {
            prog,
            log: Shared::default(),
            workers,
            policy,
            profile,
            loops: Vec::new(),
            cbs: Vec::new(),
            tasks: Vec::new(),
            cfs: Vec::new(),
            slots: [SlotM::default(); THREADS],
            op: 0,
            exceptions_seen: 0,
            ran_seen: 0,
            fifo_last: Vec::new(),
            send_tasks: Vec::new(),
        })
    }

    pub(crate) fn exec<R: Send + 'static>(
        &self,
        th: usize,
        f: impl FnOnce(&mut Local) -> R + Send + 'static,
    ) -> Result<R, String> {
        self.workers[th].exec(f)
    }

    pub(crate) fn add_loop(&mut self, lp: EventLoop) -> usize {
        let i = self.loops.len();
        install_handler(&self.log, &lp, i, false);
        lock(&self.log).loops.push(lp.clone());
        self.loops.push(LoopM {
            lp,
            closed: false,
            home: FREE,
        });
        self.fifo_last.push(None);
        i
    }

    pub(crate) fn lp(&self, l: u8) -> Option<usize> {
        (!self.loops.is_empty()).then(|| l as usize % self.loops.len())
    }

    pub(crate) fn new_cb(&mut self, lp: usize, kind: Kind, cb: Cb, send: bool) -> usize {
        lock(&self.log).cbs.push(CbObs {
            lp,
            send,
            ..CbObs::default()
        });
        self.cbs.push(CbM {
            lp,
            kind,
            loc: Loc::Unknown,
            action: cb.action,
            accepted: false,
            cancelled: false,
            handle: None,
            drop_seen: false,
        });
        self.cbs.len() - 1
    }

    /// A task of `th` (`usize::MAX` for `run_coroutine_threadsafe`'s) on
    /// loop `lp`; `send`: its coroutine is `Send`, the loop's work.
    pub(crate) fn new_task(
        &mut self,
        th: usize,
        lp: usize,
        script: &Script,
        rcts: Option<usize>,
        send: bool,
    ) -> usize {
        lock(&self.log).tasks.push(TaskObs {
            lp,
            ..TaskObs::default()
        });
        let may_cancel = script.steps.iter().any(|s| matches!(s, Step::CancelSelf));
        self.tasks.push(TaskM {
            th,
            send,
            polls_seen: 0,
            coro_drop_seen: false,
            script: script.clone(),
            may_cancel,
            cancelled_before_start: false,
            // A `Send` coroutine is made by the calling thread.
            built: rcts.is_none() || send,
            rcts,
        });
        self.tasks.len() - 1
    }

    pub(crate) fn cf_handles(&self) -> Vec<ConcurrentFuture<u32>> {
        self.cfs.iter().map(|c| c.cf.clone()).collect()
    }
}

impl Ops {
    /// Runs one operation: each is a method of its own, in the module of
    /// its kind.
    pub(crate) fn step(&mut self, op: Op) -> Result<(), String> {
        match op {
            Op::NewLoop => self.new_loop(),
            Op::SetLoop { th, lp } => self.set_loop(th_of(th), lp),
            Op::GetLoop { th } => self.get_loop(th_of(th)),
            Op::CallSoon { th, lp, cb } => self.schedule(th_of(th), lp, Kind::Soon, 0.0, cb, false),
            Op::CallSoonThreadsafe { th, lp, cb } => {
                self.schedule(th_of(th), lp, Kind::Threadsafe, 0.0, cb, false)
            }
            Op::CallLater { th, lp, delay, cb } => {
                self.schedule(th_of(th), lp, Kind::Timer(0.0), delay_of(delay), cb, false)
            }
            Op::CancelHandle { th, h } => self.cancel_handle(th_of(th), h),
            Op::CreateTask { th, lp, script } => self.create_task(th_of(th), lp, script, false),
            Op::CancelTask { th, task, msg } => self.cancel_task(th_of(th), task, msg),
            Op::NewFuture { th, lp } => self.new_future(th_of(th), lp),
            Op::CompleteFuture { th, f, outcome } => self.complete_future(th_of(th), f, outcome),
            Op::CancelFuture { th, f } => self.cancel_future(th_of(th), f),
            Op::RunOnce { th, lp } => self.run_once(th_of(th), lp),
            Op::RunForever { th, lp, delay } => self.run_forever(th_of(th), lp, delay),
            Op::RunUntilComplete { th, lp, target } => {
                self.run_until_complete(th_of(th), lp, target)
            }
            Op::Stop { th, lp } => self.stop(th_of(th), lp),
            Op::Close { th, lp } => match self.lp(lp) {
                Some(l) => self.close(th_of(th), l),
                None => Ok(()),
            },
            Op::RunCoroutineThreadsafe { th, lp, script } => {
                self.run_coroutine_threadsafe(th_of(th), lp, script, false)
            }
            Op::NewConcurrent => {
                self.new_concurrent();
                Ok(())
            }
            Op::SetRunning { th, cf } => self.set_running(th_of(th), cf),
            Op::CompleteConcurrent { th, cf, outcome } => {
                self.complete_concurrent(th_of(th), cf, outcome)
            }
            Op::CancelConcurrent { th, cf } => self.cancel_concurrent(th_of(th), cf),
            Op::WrapFuture { th, cf, lp } => self.wrap_future(th_of(th), cf, lp),
            Op::SetHandler { lp, panicky } => {
                self.set_handler(lp, panicky);
                Ok(())
            }
            Op::RestartThread { th } => self.restart_thread(th_of(th)),
            Op::CallSoonSend { th, lp, cb } => {
                self.schedule(th_of(th), lp, Kind::Soon, 0.0, cb, true)
            }
            Op::CallLaterSend { th, lp, delay, cb } => {
                self.schedule(th_of(th), lp, Kind::Timer(0.0), delay_of(delay), cb, true)
            }
            Op::CreateTaskSend { th, lp, script } => self.create_task(th_of(th), lp, script, true),
            Op::RunCoroutineThreadsafeSend { th, lp, script } => {
                self.run_coroutine_threadsafe(th_of(th), lp, script, true)
            }
        }
    }
}

/// What `retire_thread` sees of a future: the concurrent future it wraps
/// (unless an operation completed it), done, cancelled, outcome.
pub(crate) type FutSeen = (Option<usize>, bool, bool, Option<loopspec::Result<u32>>);

pub(crate) fn is_subsequence(small: &[usize], big: &[usize]) -> bool {
    let mut it = big.iter();
    small.iter().all(|x| it.any(|y| y == x))
}

/// Decodes `data` into a program of operations over three threads and a few
/// virtual-clock loops, runs it in lock-step and checks it against the
/// model; panics on a violated invariant. See the [module docs](crate::fuzz).
pub fn run_ops(data: &[u8]) {
    install_panic_hook();
    let Some(prog) = decode_ops(data) else { return };
    let mut ops = match Ops::new(prog.clone()) {
        Ok(o) => o,
        Err(e) => panic!("run_ops: set-up failed: {e}"),
    };
    let mut result = Ok(());
    for (i, op) in prog.ops.iter().enumerate() {
        ops.op = i;
        if let Err(e) = ops.step(op.clone()) {
            result = Err(format!("op {i} {op:?}: {e}"));
            break;
        }
    }
    if result.is_ok() {
        result = ops.finish().map_err(|e| format!("at the end: {e}"));
    }
    if let Err(e) = result {
        panic!("run_ops: invariant violated: {e}\nprogram: {:#?}", ops.prog);
    }
    ops.teardown();
}

impl Ops {
    /// Breaks the interpreter's own reference cycles (log → loop → handler
    /// → log), so leak checkers see only the loop's.
    pub(crate) fn teardown(&mut self) {
        for m in &self.loops {
            m.lp.set_exception_handler(None);
        }
        let mut log = lock(&self.log);
        log.loops.clear();
        log.handles.clear();
    }
}
