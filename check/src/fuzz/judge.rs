//! What a finished task's outcome and an exception handler's report may be
//! (TASK-4, TASK-14, SCHED-7, TASK-8, RUNNER-4).

use super::body::raised;
use super::program::{End, Script};
use super::record::TaskObs;
use super::{INTENTIONAL_DROP_PANIC, INTENTIONAL_PANIC, is_intentional_error};
use loopspec::{Error, ExceptionContext};

/// Checks a finished task's outcome against its script (TASK-4, TASK-14).
pub(crate) fn check_task_outcome(
    tid: usize,
    script: &Script,
    obs: &TaskObs,
    may_cancel: bool,
    outcome: &loopspec::Result<u32>,
    cancelled: bool,
) -> Result<(), String> {
    if obs.steps.iter().enumerate().any(|(i, s)| i != *s) || obs.steps.len() > script.steps.len() {
        return Err(format!(
            "task {tid}: steps ran out of order or twice: {:?}",
            obs.steps
        ));
    }
    if obs.ended && obs.steps.len() != script.steps.len() {
        return Err(format!("task {tid}: ended without running every step"));
    }
    if cancelled {
        if !may_cancel && !obs.propagated {
            return Err(format!(
                "TASK-4: task {tid} ended cancelled though nobody cancelled it"
            ));
        }
        return Ok(());
    }
    let fine = match outcome {
        Ok(v) => obs.ended && script.end == End::Return(*v as u8) && u32::from(*v as u8) == *v,
        Err(Error::Panic(m)) if m == INTENTIONAL_PANIC => obs.ended && script.end == End::Panic,
        Err(e @ Error::Exception(_)) => {
            obs.ended && matches!(script.end, End::Raise(n) if raised(n) == *e)
        }
        Err(_) => false,
    };
    if fine {
        Ok(())
    } else {
        Err(format!(
            "task {tid}: outcome {outcome:?} does not follow its script (ended={}, end={:?})",
            obs.ended, script.end
        ))
    }
}

/// Checks the exception handler's reports are ones SPEC.md describes.
pub(crate) fn check_context(ctx: &ExceptionContext) -> Result<(), String> {
    let m = ctx.message.as_str();
    let exc_ok = |intentional_only: bool| match &ctx.exception {
        Some(e @ Error::Panic(_)) => is_intentional_error(e),
        Some(_) => !intentional_only,
        None => false,
    };
    let ok = if m.starts_with("Exception in callback ") {
        exc_ok(true)
    } else if m == "Task was destroyed but it is pending!" {
        ctx.task.is_some()
    } else if m == "Task exception was never retrieved"
        || m == "Future exception was never retrieved"
    {
        exc_ok(false)
    } else if m == "unhandled exception during asyncio.run() shutdown" {
        // RUNNER-4: a `LoopThread` is a runner; closing it reports a task
        // that ended with an exception instead of its cancellation.
        ctx.task.is_some() && exc_ok(false)
    } else if m.starts_with("Exception while dropping ") {
        matches!(&ctx.exception, Some(Error::Panic(p)) if p == INTENTIONAL_DROP_PANIC)
    } else {
        false
    };
    if ok {
        Ok(())
    } else {
        Err(format!("unexpected exception handler call: {ctx:?}"))
    }
}
