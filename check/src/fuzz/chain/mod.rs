//! `run_chain`: cross-thread chains under real concurrency. Loop A runs on
//! its own thread (a `LoopThread`), loop B is driven one iteration at a time
//! by the driver thread; the program submits work to both, wraps concurrent
//! futures onto them, completes, cancels and closes, and the checks are on
//! outcome sets (CHAIN-2, CHAIN-6, CHAIN-7, XTHREAD-3, XTHREAD-6).
//!
//! `ops`: one method per operation; `finish`: the end of a program and its
//! checks.

mod finish;
mod ops;

use super::program::{Cb, CbAction, Outcome, Script, Step, trim_script};
use super::record::install_handler;
use super::record::{EXITING, Shared, TaskObs, WHO, lock};
use super::{install_panic_hook, panic_message};
use arbitrary::{Arbitrary, Unstructured};
use loopspec::{CfState, ClockKind, ConcurrentFuture, Error, EventLoop, Future, Policy};
use std::thread;
use std::time::Duration;

#[derive(Arbitrary, Debug, Clone)]
pub(crate) enum ChainOp {
    /// `run_coroutine_threadsafe` onto loop A (running on its own thread)
    /// or loop B (driven by this thread).
    Submit {
        on_b: bool,
        script: Script,
    },
    /// A plain concurrent future.
    NewCf,
    /// A worker thread that starts and completes plain future `cf`.
    Worker {
        cf: u8,
        outcome: Outcome,
        spin: u8,
    },
    /// Completes plain future `cf` from this thread.
    Complete {
        cf: u8,
        outcome: Outcome,
    },
    CancelCf {
        cf: u8,
    },
    /// `wrap_future(cf, B)` on this thread.
    Wrap {
        cf: u8,
    },
    /// A task on A that awaits `wrap_future(cf, A)`.
    WrapOnA {
        cf: u8,
    },
    CancelDest {
        d: u8,
    },
    /// One iteration of B.
    RunB,
    Threadsafe {
        on_b: bool,
        cb: Cb,
    },
    CancelHandle {
        h: u8,
    },
    StopA,
    CloseA,
    ShutdownA,
    CloseB,
    ResultWait {
        cf: u8,
        micros: u8,
    },
}

#[derive(Arbitrary, Debug, Clone)]
pub(crate) struct ChainProgram {
    pub(crate) ops: Vec<ChainOp>,
}

pub(crate) const CHAIN_OPS_MAX: usize = 32;
/// How many turns the driver gives A's runner to shut down (an iteration of
/// B each, or a yield once B is closed) before it cancels every pending
/// concurrent future and closes B.
pub(crate) const TURNS_WHILE_A_SHUTS_DOWN: usize = 64;
/// `WHO` of the thread that drives a chain program (and loop B).
pub(crate) const DRIVER: usize = 7;

pub(crate) fn decode_chain(data: &[u8]) -> Option<ChainProgram> {
    let mut u = Unstructured::new(data);
    let mut p = ChainProgram::arbitrary(&mut u).ok()?;
    p.ops.truncate(CHAIN_OPS_MAX);
    for op in &mut p.ops {
        if let ChainOp::Submit { script, .. } = op {
            trim_script(script);
            // A callback on A may not block A.
            script.steps.retain(|s| !matches!(s, Step::Await { .. }));
        }
        if let ChainOp::Threadsafe { cb, .. } = op {
            // Only what a callback may do on a loop it does not own.
            if !matches!(
                cb.action,
                CbAction::Nothing | CbAction::Panic | CbAction::GetLoop
            ) {
                cb.action = CbAction::Nothing;
            }
        }
    }
    Some(p)
}

/// The program `data` decodes to for [`run_chain`], for reports.
pub fn describe_chain(data: &[u8]) -> String {
    format!("{:#?}", decode_chain(data))
}

pub(crate) enum ChainCfKind {
    Plain,
    /// `run_coroutine_threadsafe` of task `tid`.
    Rcts {
        tid: usize,
    },
    /// A task on A awaiting `wrap_future` of concurrent future `src`.
    WrapOnA {
        src: usize,
    },
}

pub(crate) struct ChainCf {
    pub(crate) cf: ConcurrentFuture<u32>,
    pub(crate) kind: ChainCfKind,
    pub(crate) cancel_called: bool,
    /// Results seen by bounded waits: checked against the final state.
    pub(crate) waits: Vec<loopspec::Result<u32>>,
}

pub(crate) struct Dest {
    pub(crate) fut: Future<u32>,
    pub(crate) src: usize,
    pub(crate) cancelled_by_us: bool,
    /// Pending when B closed (and not cancelled by us since): must stay so.
    pub(crate) frozen: bool,
}

pub(crate) struct Chain {
    pub(crate) log: Shared,
    pub(crate) policy: Policy,
    pub(crate) a: Option<loopspec::LoopThread>,
    pub(crate) lp_a: EventLoop,
    pub(crate) lp_b: EventLoop,
    pub(crate) a_closed: bool,
    pub(crate) b_closed: bool,
    pub(crate) cfs: Vec<ChainCf>,
    pub(crate) dests: Vec<Dest>,
    pub(crate) scripts: Vec<Script>,
    pub(crate) workers: Vec<thread::JoinHandle<()>>,
    /// Callbacks: (id, on B, accepted).
    pub(crate) cbs: Vec<(usize, bool, bool)>,
}

pub(crate) fn cf_outcome(cf: &ConcurrentFuture<u32>) -> Option<loopspec::Result<u32>> {
    match cf.state() {
        CfState::Finished => Some(cf.result(Some(Duration::ZERO))),
        CfState::Cancelled | CfState::CancelledAndNotified => Some(Err(Error::Cancelled(None))),
        _ => None,
    }
}

impl Chain {
    pub(crate) fn new() -> Chain {
        let log = Shared::default();
        let lp_a = EventLoop::with_clock(ClockKind::Virtual);
        let lp_b = EventLoop::with_clock(ClockKind::Virtual);
        install_handler(&log, &lp_a, 0, false);
        install_handler(&log, &lp_b, 1, false);
        lock(&log).loops = vec![lp_a.clone(), lp_b.clone()];
        let a = loopspec::LoopThread::spawn_with(lp_a.clone(), "fuzz-a").expect("spawn loop A");
        Chain {
            log,
            policy: Policy::default(),
            a: Some(a),
            lp_a,
            lp_b,
            a_closed: false,
            b_closed: false,
            cfs: Vec::new(),
            dests: Vec::new(),
            scripts: Vec::new(),
            workers: Vec::new(),
            cbs: Vec::new(),
        }
    }

    pub(crate) fn pick_cf(&self, n: u8, plain_only: bool) -> Option<usize> {
        let c: Vec<usize> = (0..self.cfs.len())
            .filter(|&i| !plain_only || matches!(self.cfs[i].kind, ChainCfKind::Plain))
            .collect();
        (!c.is_empty()).then(|| c[n as usize % c.len()])
    }

    pub(crate) fn new_tid(&mut self, script: &Script, on_b: bool) -> usize {
        lock(&self.log).tasks.push(TaskObs {
            lp: usize::from(on_b),
            ..TaskObs::default()
        });
        self.scripts.push(script.clone());
        self.scripts.len() - 1
    }
}

impl Chain {
    /// Runs one operation, then fails on any violation user code recorded.
    pub(crate) fn step(&mut self, op: ChainOp) -> Result<(), String> {
        match op {
            ChainOp::Submit { on_b, script } => self.submit(on_b, script)?,
            ChainOp::NewCf => self.new_cf(),
            ChainOp::Worker { cf, outcome, spin } => self.spawn_worker(cf, outcome, spin),
            ChainOp::Complete { cf, outcome } => self.complete(cf, outcome)?,
            ChainOp::CancelCf { cf } => self.cancel_cf(cf)?,
            ChainOp::Wrap { cf } => self.wrap(cf)?,
            ChainOp::WrapOnA { cf } => self.wrap_on_a(cf)?,
            ChainOp::CancelDest { d } => self.cancel_dest(d)?,
            ChainOp::RunB => self.run_b()?,
            ChainOp::Threadsafe { on_b, cb } => self.threadsafe(on_b, cb)?,
            ChainOp::CancelHandle { h } => self.cancel_handle(h),
            ChainOp::StopA => self.lp_a.stop(),
            ChainOp::CloseA => self.close_a()?,
            ChainOp::ShutdownA => self.shutdown_a()?,
            ChainOp::CloseB => self.close_b()?,
            ChainOp::ResultWait { cf, micros } => self.result_wait(cf, micros)?,
        }
        if let Some(v) = lock(&self.log).violations.first() {
            return Err(v.clone());
        }
        Ok(())
    }
}

/// Decodes `data` into a program of cross-thread chain operations, runs it
/// with loop A on its own thread and loop B on a driver thread, and checks
/// the outcome sets; panics on a violated invariant. See the
/// [module docs](crate::fuzz).
pub fn run_chain(data: &[u8]) {
    install_panic_hook();
    let Some(prog) = decode_chain(data) else {
        return;
    };
    let shown = prog.clone();
    let driver = thread::Builder::new()
        .name("fuzz-d".into())
        .spawn(move || {
            WHO.with(|w| w.set(DRIVER));
            let mut chain = Chain::new();
            let mut result = Ok(());
            for (i, op) in prog.ops.into_iter().enumerate() {
                let shown = format!("{op:?}");
                if let Err(e) = chain.step(op) {
                    result = Err(format!("op {i} {shown}: {e}"));
                    break;
                }
            }
            if result.is_ok() {
                result = chain.finish().map_err(|e| format!("at the end: {e}"));
            }
            chain.teardown();
            drop(chain);
            WHO.with(|w| w.set(EXITING));
            result
        })
        .expect("spawn the driver");
    let result = match driver.join() {
        Ok(r) => r,
        Err(p) => Err(format!("a panic escaped: {}", panic_message(&*p))),
    };
    if let Err(e) = result {
        panic!("run_chain: invariant violated: {e}\nprogram: {shown:#?}");
    }
}
