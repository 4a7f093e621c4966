//! The callbacks programs schedule (`call_soon`, `call_later`,
//! `call_soon_threadsafe`): each records that it ran, checks what it sees
//! from inside its loop, and does its action.

use super::INTENTIONAL_PANIC;
use super::program::{Cb, CbAction};
use super::record::{CbObs, Guard, GuardOf, Shared, lock, violation, who};
use loopspec::{Error, Handle, Policy};

/// A callback for `call_soon` & co.: records that it ran (once), checks what
/// it can see from inside, and does its action. A `send` one (the loop's
/// work) spawns with `call_soon`, a local one with `call_soon_local`.
pub(crate) fn make_cb(
    log: &Shared,
    policy: &Policy,
    id: usize,
    lp: usize,
    cb: Cb,
    send: bool,
) -> Box<dyn FnOnce() + Send> {
    let guard = Guard {
        log: log.clone(),
        of: GuardOf::Cb(id),
        panicky: cb.panicky_drop,
    };
    let log = log.clone();
    let policy = policy.clone();
    Box::new(move || {
        let _guard = guard;
        let (me, loops) = {
            let l = lock(&log);
            (l.loops[lp].clone(), l.loops.clone())
        };
        let now = me.time();
        {
            let mut l = lock(&log);
            let at = l.ran_order.len();
            l.ran_order.push(id);
            let o = &mut l.cbs[id];
            o.ran += 1;
            o.ran_thread = who();
            o.ran_time = now;
            o.ran_at = at;
        }
        if loopspec::get_running_loop().ok().as_ref() != Some(&me) {
            violation(
                &log,
                format!("POLICY-10: callback {id} does not see its loop as running"),
            );
        }
        match cb.action {
            CbAction::Nothing => {}
            CbAction::Panic => std::panic::panic_any(INTENTIONAL_PANIC),
            CbAction::Stop => me.stop(),
            CbAction::Cancel(h) => {
                let h = {
                    let l = lock(&log);
                    (!l.handles.is_empty()).then(|| l.handles[h as usize % l.handles.len()].clone())
                };
                if let Some(h) = h {
                    Handle::cancel(&h);
                }
            }
            CbAction::Spawn => {
                let child = {
                    let mut l = lock(&log);
                    l.cbs.push(CbObs {
                        lp,
                        send,
                        ..CbObs::default()
                    });
                    l.cbs.len() - 1
                };
                let f = make_cb(
                    &log,
                    &policy,
                    child,
                    lp,
                    Cb {
                        action: CbAction::Nothing,
                        panicky_drop: false,
                    },
                    send,
                );
                let r = if send {
                    me.call_soon(f)
                } else {
                    me.call_soon_local(f)
                };
                if let Err(e) = r {
                    violation(
                        &log,
                        format!("SCHED-2: call_soon from a running callback failed: {e:?}"),
                    );
                }
            }
            CbAction::CloseOwn => {
                let r = me.close();
                if r != Err(Error::CloseRunning) || !me.is_running() || me.is_closed() {
                    violation(
                        &log,
                        format!("LIFE-7: close() of the running loop gave {r:?}"),
                    );
                }
            }
            CbAction::RunOwn => {
                let r = me.run_forever();
                let still = loopspec::get_running_loop().ok();
                if r != Err(Error::AlreadyRunning)
                    || !me.is_running()
                    || still.as_ref() != Some(&me)
                {
                    violation(
                        &log,
                        format!("LIFE-5/LIFE-6: nested run_forever gave {r:?}"),
                    );
                }
            }
            CbAction::RunOther(k) => {
                let other = loops[k as usize % loops.len()].clone();
                let closed = other.is_closed();
                let r = other.run_forever();
                let want = if other == me {
                    Error::AlreadyRunning
                } else if closed {
                    Error::Closed
                } else if other.is_running() {
                    Error::AlreadyRunning
                } else {
                    Error::AnotherLoopRunning
                };
                let still = loopspec::get_running_loop().ok();
                if r != Err(want.clone()) || still.as_ref() != Some(&me) {
                    violation(
                        &log,
                        format!(
                            "LIFE-5/LIFE-6: run_forever of another loop inside a callback gave {r:?}, want {want:?}"
                        ),
                    );
                }
            }
            CbAction::GetLoop => {
                let got = loopspec::get_event_loop_with(&policy).ok();
                if got.as_ref() != Some(&me) {
                    violation(
                        &log,
                        "POLICY-2: get_event_loop() in a callback is not the running loop".into(),
                    );
                }
            }
        }
    })
}
