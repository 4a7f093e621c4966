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
    SetLoop {
        th: u8,
        lp: Option<u8>,
    },
    GetLoop {
        th: u8,
    },
    CallSoon {
        th: u8,
        lp: u8,
        cb: Cb,
    },
    CallLater {
        th: u8,
        lp: u8,
        delay: u8,
        cb: Cb,
    },
    CallSoonThreadsafe {
        th: u8,
        lp: u8,
        cb: Cb,
    },
    CancelHandle {
        th: u8,
        h: u8,
    },
    CreateTask {
        th: u8,
        lp: u8,
        script: Script,
    },
    CancelTask {
        th: u8,
        task: u8,
        msg: bool,
    },
    NewFuture {
        th: u8,
        lp: u8,
    },
    CompleteFuture {
        th: u8,
        f: u8,
        outcome: Outcome,
    },
    CancelFuture {
        th: u8,
        f: u8,
    },
    RunOnce {
        th: u8,
        lp: u8,
    },
    RunUntilComplete {
        th: u8,
        lp: u8,
        target: Target,
    },
    RunForever {
        th: u8,
        lp: u8,
        delay: u8,
    },
    Stop {
        th: u8,
        lp: u8,
    },
    Close {
        th: u8,
        lp: u8,
    },
    RunCoroutineThreadsafe {
        th: u8,
        lp: u8,
        script: Script,
    },
    NewConcurrent,
    SetRunning {
        th: u8,
        cf: u8,
    },
    CompleteConcurrent {
        th: u8,
        cf: u8,
        outcome: Outcome,
    },
    CancelConcurrent {
        th: u8,
        cf: u8,
    },
    WrapFuture {
        th: u8,
        cf: u8,
        lp: u8,
    },
    SetHandler {
        lp: u8,
        panicky: bool,
    },
    RestartThread {
        th: u8,
    },
    // Appended, never inserted, and the corpus rewritten (see
    // `encode_ops`). The scheduling operations above make local work with
    // the `*_local` calls (THREAD-10); these make the loop's own work with
    // the asyncio-named calls, which take `Send` callbacks and coroutines
    // (THREAD-8).
    /// `call_soon` of a `Send` callback.
    CallSoonSend {
        th: u8,
        lp: u8,
        cb: Cb,
    },
    /// `call_later` of a `Send` callback.
    CallLaterSend {
        th: u8,
        lp: u8,
        delay: u8,
        cb: Cb,
    },
    /// `create_task` of a `Send` coroutine.
    CreateTaskSend {
        th: u8,
        lp: u8,
        script: Script,
    },
    /// `run_coroutine_threadsafe` of a `Send` coroutine.
    RunCoroutineThreadsafeSend {
        th: u8,
        lp: u8,
        script: Script,
    },
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
            Op::CreateTask { script, .. }
            | Op::RunCoroutineThreadsafe { script, .. }
            | Op::CreateTaskSend { script, .. }
            | Op::RunCoroutineThreadsafeSend { script, .. } => trim_script(script),
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

/// The program `data` decodes to, written back canonically: bytes that
/// [`run_ops`](crate::fuzz::run_ops) decodes to the same program, in the
/// format of this build's `Op`. This is how the files of `fuzz/corpus/ops`
/// are rewritten when the format changes (see `encode_ops`).
pub fn reencode_ops(data: &[u8]) -> Vec<u8> {
    decode_ops(data).map(|p| encode_ops(&p)).unwrap_or_default()
}

/// A long program from any bytes, for generated tests: a profile, then
/// operations read back to back until the bytes or [`OPS_MAX`] run out
/// (where a program's own decoding reads a "keep going" flag before each
/// operation, so that random bytes make programs of one or two operations),
/// encoded as [`run_ops`](crate::fuzz::run_ops) reads them.
pub fn dense_ops_program(data: &[u8]) -> Vec<u8> {
    let mut u = Unstructured::new(data);
    let profile = u8::arbitrary(&mut u).unwrap_or(0);
    let mut ops = Vec::new();
    while !u.is_empty() && ops.len() < OPS_MAX {
        match Op::arbitrary(&mut u) {
            Ok(op) => ops.push(op),
            Err(_) => break,
        }
    }
    let bytes = encode_ops(&OpsProgram { profile, ops });
    // Trimmed as every program is.
    reencode_ops(&bytes)
}

/// The number of `Op` variants, which `arbitrary` scales its discriminant
/// by.
const OP_VARIANTS: u32 = 29;

/// The inverse of `decode_ops` (arbitrary 1.x's derived formats): bytes
/// that decode to `p`.
///
/// The derived decoding of an enum reads a `u32` and takes variant
/// `(x * count) >> 32`, so appending a variant to `Op` changes what most
/// existing inputs decode to. The corpus is then rewritten: every file
/// decoded with the old `Op` and encoded with the new count, so that it
/// still holds the program it held (its regression, if it is one).
pub(crate) fn encode_ops(p: &OpsProgram) -> Vec<u8> {
    let mut out = Vec::new();
    p.encode(&mut out);
    out
}

/// Writes a value in the format its `Arbitrary` impl reads.
trait Encode {
    fn encode(&self, out: &mut Vec<u8>);
}

/// Variant `index` of an enum of `count` variants: the smallest `x` with
/// `(x * count) >> 32 == index`.
fn variant(out: &mut Vec<u8>, index: u32, count: u32) {
    let x = (u64::from(index) << 32).div_ceil(u64::from(count));
    let x = u32::try_from(x).expect("variant index below its count");
    out.extend_from_slice(&x.to_le_bytes());
}

impl Encode for u8 {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(*self);
    }
}

impl Encode for bool {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
}

impl<T: Encode> Encode for Option<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        self.is_some().encode(out);
        if let Some(v) = self {
            v.encode(out);
        }
    }
}

/// `arbitrary_iter`: "keep going" before each element, then a stop.
impl<T: Encode> Encode for Vec<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        for x in self {
            true.encode(out);
            x.encode(out);
        }
        false.encode(out);
    }
}

/// Encodes each of the listed fields (and values) in order.
macro_rules! encode_all {
    ($out:expr; $($v:expr),* $(,)?) => {{
        $( Encode::encode($v, $out); )*
    }};
}

impl Encode for CbAction {
    fn encode(&self, out: &mut Vec<u8>) {
        const N: u32 = 9;
        match self {
            CbAction::Nothing => variant(out, 0, N),
            CbAction::Panic => variant(out, 1, N),
            CbAction::Stop => variant(out, 2, N),
            CbAction::Cancel(h) => {
                variant(out, 3, N);
                encode_all!(out; h);
            }
            CbAction::Spawn => variant(out, 4, N),
            CbAction::CloseOwn => variant(out, 5, N),
            CbAction::RunOwn => variant(out, 6, N),
            CbAction::RunOther(n) => {
                variant(out, 7, N);
                encode_all!(out; n);
            }
            CbAction::GetLoop => variant(out, 8, N),
        }
    }
}

impl Encode for Cb {
    fn encode(&self, out: &mut Vec<u8>) {
        encode_all!(out; &self.action, &self.panicky_drop);
    }
}

impl Encode for Step {
    fn encode(&self, out: &mut Vec<u8>) {
        const N: u32 = 8;
        match self {
            Step::Yield => variant(out, 0, N),
            Step::Sleep(d) => {
                variant(out, 1, N);
                encode_all!(out; d);
            }
            Step::Await { r, swallow } => {
                variant(out, 2, N);
                encode_all!(out; r, swallow);
            }
            Step::Gather {
                rs,
                return_exceptions,
                swallow,
            } => {
                variant(out, 3, N);
                encode_all!(out; rs, return_exceptions, swallow);
            }
            Step::Wait { rs, timeout, when } => {
                variant(out, 4, N);
                encode_all!(out; rs, timeout, when);
            }
            Step::WaitFor { r, timeout } => {
                variant(out, 5, N);
                encode_all!(out; r, timeout);
            }
            Step::AwaitCf { cf, swallow } => {
                variant(out, 6, N);
                encode_all!(out; cf, swallow);
            }
            Step::CancelSelf => variant(out, 7, N),
        }
    }
}

impl Encode for End {
    fn encode(&self, out: &mut Vec<u8>) {
        const N: u32 = 3;
        match self {
            End::Return(v) => {
                variant(out, 0, N);
                encode_all!(out; v);
            }
            End::Raise(n) => {
                variant(out, 1, N);
                encode_all!(out; n);
            }
            End::Panic => variant(out, 2, N),
        }
    }
}

impl Encode for Script {
    fn encode(&self, out: &mut Vec<u8>) {
        encode_all!(out; &self.steps, &self.end, &self.panicky_drop);
    }
}

impl Encode for Outcome {
    fn encode(&self, out: &mut Vec<u8>) {
        const N: u32 = 2;
        match self {
            Outcome::Ok(v) => {
                variant(out, 0, N);
                encode_all!(out; v);
            }
            Outcome::Err(n) => {
                variant(out, 1, N);
                encode_all!(out; n);
            }
        }
    }
}

impl Encode for Target {
    fn encode(&self, out: &mut Vec<u8>) {
        const N: u32 = 4;
        match self {
            Target::Script(s) => {
                variant(out, 0, N);
                encode_all!(out; s);
            }
            Target::Task(n) => {
                variant(out, 1, N);
                encode_all!(out; n);
            }
            Target::Future(n) => {
                variant(out, 2, N);
                encode_all!(out; n);
            }
            Target::Gather {
                rs,
                return_exceptions,
            } => {
                variant(out, 3, N);
                encode_all!(out; rs, return_exceptions);
            }
        }
    }
}

impl Encode for Op {
    fn encode(&self, out: &mut Vec<u8>) {
        const N: u32 = OP_VARIANTS;
        match self {
            Op::NewLoop => variant(out, 0, N),
            Op::SetLoop { th, lp } => {
                variant(out, 1, N);
                encode_all!(out; th, lp);
            }
            Op::GetLoop { th } => {
                variant(out, 2, N);
                encode_all!(out; th);
            }
            Op::CallSoon { th, lp, cb } => {
                variant(out, 3, N);
                encode_all!(out; th, lp, cb);
            }
            Op::CallLater { th, lp, delay, cb } => {
                variant(out, 4, N);
                encode_all!(out; th, lp, delay, cb);
            }
            Op::CallSoonThreadsafe { th, lp, cb } => {
                variant(out, 5, N);
                encode_all!(out; th, lp, cb);
            }
            Op::CancelHandle { th, h } => {
                variant(out, 6, N);
                encode_all!(out; th, h);
            }
            Op::CreateTask { th, lp, script } => {
                variant(out, 7, N);
                encode_all!(out; th, lp, script);
            }
            Op::CancelTask { th, task, msg } => {
                variant(out, 8, N);
                encode_all!(out; th, task, msg);
            }
            Op::NewFuture { th, lp } => {
                variant(out, 9, N);
                encode_all!(out; th, lp);
            }
            Op::CompleteFuture { th, f, outcome } => {
                variant(out, 10, N);
                encode_all!(out; th, f, outcome);
            }
            Op::CancelFuture { th, f } => {
                variant(out, 11, N);
                encode_all!(out; th, f);
            }
            Op::RunOnce { th, lp } => {
                variant(out, 12, N);
                encode_all!(out; th, lp);
            }
            Op::RunUntilComplete { th, lp, target } => {
                variant(out, 13, N);
                encode_all!(out; th, lp, target);
            }
            Op::RunForever { th, lp, delay } => {
                variant(out, 14, N);
                encode_all!(out; th, lp, delay);
            }
            Op::Stop { th, lp } => {
                variant(out, 15, N);
                encode_all!(out; th, lp);
            }
            Op::Close { th, lp } => {
                variant(out, 16, N);
                encode_all!(out; th, lp);
            }
            Op::RunCoroutineThreadsafe { th, lp, script } => {
                variant(out, 17, N);
                encode_all!(out; th, lp, script);
            }
            Op::NewConcurrent => variant(out, 18, N),
            Op::SetRunning { th, cf } => {
                variant(out, 19, N);
                encode_all!(out; th, cf);
            }
            Op::CompleteConcurrent { th, cf, outcome } => {
                variant(out, 20, N);
                encode_all!(out; th, cf, outcome);
            }
            Op::CancelConcurrent { th, cf } => {
                variant(out, 21, N);
                encode_all!(out; th, cf);
            }
            Op::WrapFuture { th, cf, lp } => {
                variant(out, 22, N);
                encode_all!(out; th, cf, lp);
            }
            Op::SetHandler { lp, panicky } => {
                variant(out, 23, N);
                encode_all!(out; lp, panicky);
            }
            Op::RestartThread { th } => {
                variant(out, 24, N);
                encode_all!(out; th);
            }
            Op::CallSoonSend { th, lp, cb } => {
                variant(out, 25, N);
                encode_all!(out; th, lp, cb);
            }
            Op::CallLaterSend { th, lp, delay, cb } => {
                variant(out, 26, N);
                encode_all!(out; th, lp, delay, cb);
            }
            Op::CreateTaskSend { th, lp, script } => {
                variant(out, 27, N);
                encode_all!(out; th, lp, script);
            }
            Op::RunCoroutineThreadsafeSend { th, lp, script } => {
                variant(out, 28, N);
                encode_all!(out; th, lp, script);
            }
        }
    }
}

impl Encode for OpsProgram {
    fn encode(&self, out: &mut Vec<u8>) {
        encode_all!(out; &self.profile, &self.ops);
    }
}
