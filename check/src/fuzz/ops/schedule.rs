//! Scheduling callbacks and cancelling their handles.

use super::Ops;
use super::model::{Kind, Loc};
use crate::fuzz::INTENTIONAL_DROP_PANIC;
use crate::fuzz::body::guarded;
use crate::fuzz::callback::make_cb;
use crate::fuzz::program::Cb;
use crate::fuzz::record::lock;
use loopspec::{Error, Handle};

impl Ops {
    /// `call_soon`, `call_soon_threadsafe` or `call_later` (`kind`, with
    /// `delay`) of callback `cb` on loop `lp` by thread `th` — with the
    /// `*_local` calls, or if `send`, with the asyncio-named ones, whose
    /// callback is the loop's work: accepted, or refused with the error the
    /// model expects and the callback dropped at once (SCHED-2, SCHED-6,
    /// XTHREAD-1, XTHREAD-3, THREAD-1, THREAD-8, THREAD-9, LIFE-8).
    pub(crate) fn schedule(
        &mut self,
        th: usize,
        lp: u8,
        kind: Kind,
        delay: f64,
        cb: Cb,
        send: bool,
    ) -> Result<(), String> {
        let Some(l) = self.lp(lp) else { return Ok(()) };
        let id = self.new_cb(l, kind, cb, send);
        let (log, policy, lpv) = (
            self.log.clone(),
            self.policy.clone(),
            self.loops[l].lp.clone(),
        );
        let (got, running) = self.exec(th, move |_| {
            let f = make_cb(&log, &policy, id, l, cb, send);
            // Operations run one at a time: no thread runs the loop now.
            let running = lpv.is_running();
            let r = guarded(|| match kind {
                Kind::Soon if send => lpv.call_soon(f).map(|h| (h, None)),
                Kind::Soon => lpv.call_soon_local(f).map(|h| (h, None)),
                Kind::Threadsafe => lpv.call_soon_threadsafe(f).map(|h| (h, None)),
                Kind::Timer(_) if send => lpv
                    .call_later(delay, f)
                    .map(|t| (t.handle().clone(), Some(t.when()))),
                Kind::Timer(_) => lpv
                    .call_later_local(delay, f)
                    .map(|t| (t.handle().clone(), Some(t.when()))),
            });
            let r = r.map(|(h, when)| {
                let mut l = lock(&log);
                l.handles.push(h);
                l.handle_cb.push(id);
                (l.handles.len() - 1, when)
            });
            (r, running)
        })?;
        ensure!(
            !running,
            "interpreter: loop {l} was running when thread {th} scheduled on it"
        );
        let got = match got {
            Err(Error::Panic(m)) if m == INTENTIONAL_DROP_PANIC => {
                let nan = kind == Kind::Timer(0.0) && delay.is_nan();
                Err(self.refusal(l, th, nan, send || kind == Kind::Threadsafe)?)
            }
            r => r,
        };
        let unit = got.as_ref().map(drop).map_err(Clone::clone);
        if kind == Kind::Timer(0.0) && delay.is_nan() {
            ensure!(
                unit == Err(Error::NanTime),
                "SCHED-6: NaN delay gave {unit:?}"
            );
        } else if kind == Kind::Threadsafe {
            let want = if self.loops[l].closed {
                Err(Error::Closed)
            } else {
                Ok(())
            };
            ensure!(
                unit == want,
                "XTHREAD-1/3: call_soon_threadsafe gave {unit:?}, want {want:?}"
            );
        } else if send {
            self.send_call(l, th, &unit)?;
        } else {
            self.bound_call(l, th, &unit)?;
            if unit == Err(Error::Closed) {
                self.discarded(l, th)?;
            }
        }
        match got {
            Ok((h, when)) => {
                let c = &mut self.cbs[id];
                c.accepted = true;
                c.handle = Some(h);
                c.loc = if kind == Kind::Threadsafe {
                    Loc::Inbox
                } else if send {
                    Loc::Work
                } else {
                    Loc::Half(th)
                };
                if let Some(w) = when {
                    c.kind = Kind::Timer(w);
                }
            }
            Err(_) => {
                let o = lock(&self.log).cbs[id].clone();
                ensure!(
                    o.dropped == 1 && o.ran == 0,
                    "LIFE-8: a refused callback was not dropped at once"
                );
            }
        }
        self.after_op(th, None)?;
        Ok(())
    }

    /// `Handle::cancel` of handle `h` by thread `th` (SCHED-3, XTHREAD-5).
    pub(crate) fn cancel_handle(&mut self, th: usize, h: u8) -> Result<(), String> {
        let n = lock(&self.log).handles.len();
        if n == 0 {
            return Ok(());
        }
        let i = h as usize % n;
        let log = self.log.clone();
        self.exec(th, move |_| {
            let h = lock(&log).handles[i].clone();
            Handle::cancel(&h);
            h.cancelled()
        })?;
        let cb = lock(&self.log).handle_cb[i];
        self.cbs[cb].cancelled = true;
        self.after_op(th, None)?;
        Ok(())
    }
}
