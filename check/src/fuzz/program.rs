//! The programs `run_ops` runs, and how bytes decode to them (`arbitrary`).
//! Every list is trimmed, so a program is bounded whatever the input.

use arbitrary::{Arbitrary, Unstructured};

/// Most operations a program runs.
pub const OPS_MAX: usize = 40;
/// Most steps in a task's script.
pub(crate) const STEPS_MAX: usize = 4;

/// What a callback does when it runs.
#[derive(Arbitrary, Debug, Clone, Copy, PartialEq)]
pub(crate) enum CbAction {
    Nothing,
    Panic,
    Stop,
    /// Cancels handle `n` (mod the number of handles).
    Cancel(u8),
    /// Schedules one more (plain) callback with `call_soon`.
    Spawn,
    /// `close()` on its own running loop: must be refused (LIFE-7).
    CloseOwn,
    /// `run_forever()` on its own running loop: refused (LIFE-5, LIFE-6).
    RunOwn,
    /// `run_forever()` on loop `n`: refused (LIFE-5, LIFE-8).
    RunOther(u8),
    /// `get_event_loop()` / `get_running_loop()` give its loop (POLICY-2/10).
    GetLoop,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub(crate) struct Cb {
    pub(crate) action: CbAction,
    /// The callback's captured data panics when dropped.
    pub(crate) panicky_drop: bool,
}

/// One step of a task's body.
#[derive(Arbitrary, Debug, Clone)]
pub(crate) enum Step {
    Yield,
    Sleep(u8),
    /// Awaits future or task `r` of the creating thread.
    Await {
        r: u8,
        swallow: bool,
    },
    Gather {
        rs: Vec<u8>,
        return_exceptions: bool,
        swallow: bool,
    },
    Wait {
        rs: Vec<u8>,
        timeout: Option<u8>,
        when: u8,
    },
    WaitFor {
        r: u8,
        timeout: u8,
    },
    /// Awaits concurrent future `cf`.
    AwaitCf {
        cf: u8,
        swallow: bool,
    },
    /// `current_task().cancel()`.
    CancelSelf,
}

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq)]
pub(crate) enum End {
    Return(u8),
    Raise(u8),
    Panic,
}

#[derive(Arbitrary, Debug, Clone)]
pub(crate) struct Script {
    pub(crate) steps: Vec<Step>,
    pub(crate) end: End,
    /// The task's future holds data whose `Drop` panics.
    pub(crate) panicky_drop: bool,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub(crate) enum Outcome {
    Ok(u8),
    Err(u8),
}

#[derive(Arbitrary, Debug, Clone)]
pub(crate) enum Target {
    /// A coroutine: `run_until_complete` wraps it in a task.
    Script(Script),
    /// Task `n` of the running thread.
    Task(u8),
    /// Future `n` of the running thread.
    Future(u8),
    /// `gather` of futures/tasks of the running thread.
    Gather {
        rs: Vec<u8>,
        return_exceptions: bool,
    },
}

#[derive(Arbitrary, Debug, Clone)]
pub(crate) enum Op {
    NewLoop,
    SetLoop { th: u8, lp: Option<u8> },
    GetLoop { th: u8 },
    CallSoon { th: u8, lp: u8, cb: Cb },
    CallLater { th: u8, lp: u8, delay: u8, cb: Cb },
    CallSoonThreadsafe { th: u8, lp: u8, cb: Cb },
    CancelHandle { th: u8, h: u8 },
    CreateTask { th: u8, lp: u8, script: Script },
    CancelTask { th: u8, task: u8, msg: bool },
    NewFuture { th: u8, lp: u8 },
    CompleteFuture { th: u8, f: u8, outcome: Outcome },
    CancelFuture { th: u8, f: u8 },
    RunOnce { th: u8, lp: u8 },
    RunUntilComplete { th: u8, lp: u8, target: Target },
    RunForever { th: u8, lp: u8, delay: u8 },
    Stop { th: u8, lp: u8 },
    Close { th: u8, lp: u8 },
    RunCoroutineThreadsafe { th: u8, lp: u8, script: Script },
    NewConcurrent,
    SetRunning { th: u8, cf: u8 },
    CompleteConcurrent { th: u8, cf: u8, outcome: Outcome },
    CancelConcurrent { th: u8, cf: u8 },
    WrapFuture { th: u8, cf: u8, lp: u8 },
    SetHandler { lp: u8, panicky: bool },
    RestartThread { th: u8 },
}

#[derive(Arbitrary, Debug, Clone)]
pub(crate) struct OpsProgram {
    pub(crate) profile: u8,
    pub(crate) ops: Vec<Op>,
}

pub(crate) const DELAYS: [f64; 8] = [0.0, 0.5, 1.0, 2.0, 5.0, -1.0, f64::NAN, 1e-10];

pub(crate) fn delay_of(d: u8) -> f64 {
    DELAYS[d as usize % DELAYS.len()]
}

pub(crate) fn trim_script(s: &mut Script) {
    s.steps.truncate(STEPS_MAX);
    for st in &mut s.steps {
        match st {
            Step::Gather { rs, .. } | Step::Wait { rs, .. } => rs.truncate(3),
            _ => {}
        }
    }
}

pub(crate) fn decode_ops(data: &[u8]) -> Option<OpsProgram> {
    let mut u = Unstructured::new(data);
    let mut p = OpsProgram::arbitrary(&mut u).ok()?;
    p.ops.truncate(OPS_MAX);
    for op in &mut p.ops {
        match op {
            Op::CreateTask { script, .. } | Op::RunCoroutineThreadsafe { script, .. } => {
                trim_script(script)
            }
            Op::RunUntilComplete { target, .. } => match target {
                Target::Script(s) => trim_script(s),
                Target::Gather { rs, .. } => rs.truncate(3),
                _ => {}
            },
            _ => {}
        }
    }
    Some(p)
}

/// The program `data` decodes to for [`run_ops`](crate::fuzz::run_ops), for reports.
pub fn describe_ops(data: &[u8]) -> String {
    format!("{:#?}", decode_ops(data))
}
