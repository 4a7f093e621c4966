//! Running a scenario on loopspec, and reporting what it did in the
//! oracle's terms ([`Observed`]), so that it compares with the model's
//! [`Prediction`].

use super::model::{
    Exc, Final, Interrupt, Mode, Out, Outcome, Prediction, Record, Scenario, When, value_of,
};
use loopspec::{
    ClockKind, Error, EventLoop, Future, Gathered, Profile, ReturnWhen, Task, gather, wait,
};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

/// What loopspec did, in the oracle's terms.
#[derive(Debug, PartialEq)]
pub struct Observed {
    /// Each child's final state.
    pub finals: Vec<Final>,
    /// (child, virtual time) in completion order.
    pub completions: Vec<(usize, i64)>,
    /// What the driver saw, and when.
    pub record: Record,
}

fn whole(t: f64) -> i64 {
    assert_eq!(t.fract(), 0.0, "virtual time {t} is not a whole second");
    t as i64
}

fn to_exc(e: &Error) -> Exc {
    match e {
        Error::Cancelled(m) => Exc::Cancelled(m.clone()),
        Error::EmptyWait => Exc::Empty,
        other => Exc::Raised(other.python_type().to_string(), other.to_string()),
    }
}

fn to_out(r: &loopspec::Result<i64>) -> Out {
    r.clone().map_err(|e| to_exc(&e))
}

fn return_when(w: When) -> ReturnWhen {
    match w {
        When::All => ReturnWhen::AllCompleted,
        When::First => ReturnWhen::FirstCompleted,
        When::FirstExc => ReturnWhen::FirstException,
    }
}

fn sleep_whole(secs: u8) -> impl std::future::Future<Output = loopspec::Result<()>> {
    loopspec::sleep(secs as f64)
}

/// Runs `sc` on a virtual-clock loop of its profile, in the order the model
/// assumes: children, cancellers, driver, interrupter; then runs the loop
/// until everything is done.
pub fn observe(sc: &Scenario) -> Observed {
    let profile = if sc.py312 {
        Profile::Py312
    } else {
        Profile::Py311
    };
    let lp = EventLoop::builder()
        .clock(ClockKind::Virtual)
        .profile(profile)
        .build();
    lp.set_exception_handler(Some(Arc::new(|_: &EventLoop, _: &_| {})));
    let log: Rc<RefCell<Vec<(usize, i64)>>> = Rc::default();
    let mut kids: Vec<Task<i64>> = Vec::new();
    for (i, c) in sc.children.iter().enumerate() {
        let dep = c.dep.map(|j| kids[j].clone());
        let (delay, outcome) = (c.delay, c.outcome);
        let t = lp
            .create_task(async move {
                if let Some(d) = dep
                    && let Err(e) = d.await
                    && e.is_cancelled()
                {
                    return Err(e);
                }
                sleep_whole(delay).await?;
                let v = value_of(i);
                match outcome {
                    Outcome::Value | Outcome::CancelledBy(_) => Ok(v),
                    Outcome::Error => Err(Error::raise("ValueError", format!("e{i}"))),
                    Outcome::Panic => std::panic::panic_any(format!("p{i}")),
                    Outcome::SelfCancel => Err(Error::Cancelled(Some(format!("s{i}")))),
                    Outcome::SelfCancelReturn => {
                        let me = loopspec::current_task()?.expect("in a task");
                        me.cancel_with(Some(format!("r{i}")));
                        Ok(v)
                    }
                }
            })
            .unwrap();
        let (log2, lp2) = (log.clone(), lp.clone());
        t.add_done_callback_local(Rc::new(move |_: &Future<i64>| {
            log2.borrow_mut().push((i, whole(lp2.time())))
        }))
        .unwrap();
        kids.push(t);
    }
    let mut others: Vec<Future<i64>> = Vec::new();
    for (i, c) in sc.children.iter().enumerate() {
        if let Outcome::CancelledBy(at) = c.outcome {
            let target = kids[i].clone();
            let t = lp
                .create_task(async move {
                    sleep_whole(at).await?;
                    target.cancel_with(Some(format!("c{i}")));
                    Ok(0)
                })
                .unwrap();
            others.push(t.into_future());
        }
    }
    let record: Rc<RefCell<Option<Record>>> = Rc::default();
    let gslot: Rc<RefCell<Option<Future<Gathered<i64>>>>> = Rc::default();
    let driver = {
        let (kids, record, gslot, lp2) = (kids.clone(), record.clone(), gslot.clone(), lp.clone());
        let args: Vec<Task<i64>> = (0..kids.len())
            .chain(sc.dups.iter().copied())
            .map(|i| kids[i].clone())
            .collect();
        let (mode, start) = (sc.mode, sc.start);
        lp.create_task_local(async move {
            if start > 0
                && let Err(e) = sleep_whole(start).await
            {
                *record.borrow_mut() = Some(Record::CancelledBeforeStart);
                return Err(e);
            }
            let index = |f: &Future<i64>| kids.iter().position(|k| k.as_future() == f).unwrap();
            let rec = match mode {
                Mode::Wait { timeout, when } => {
                    let r = wait(args, timeout.map(f64::from), return_when(when)).await;
                    Record::Wait {
                        time: whole(lp2.time()),
                        result: match r {
                            Ok((done, pending)) => Ok((
                                done.iter().map(index).collect(),
                                pending.iter().map(index).collect(),
                            )),
                            Err(e) => Err(to_exc(&e)),
                        },
                    }
                }
                Mode::Gather { return_exceptions } => {
                    let g = gather(args, return_exceptions)?;
                    *gslot.borrow_mut() = Some(g.clone());
                    let r = g.await;
                    Record::Gather {
                        time: whole(lp2.time()),
                        result: match r {
                            Ok(list) => Ok(list.iter().map(to_out).collect()),
                            Err(e) => Err(to_exc(&e)),
                        },
                    }
                }
            };
            *record.borrow_mut() = Some(rec);
            Ok(0)
        })
        .unwrap()
    };
    others.push(driver.as_future().clone());
    if let Some(int) = sc.interrupt {
        let (driver, gslot) = (driver.clone(), gslot.clone());
        let t = lp
            .create_task_local(async move {
                match int {
                    Interrupt::Driver(at) => {
                        sleep_whole(at).await?;
                        driver.cancel_with(Some("D".into()));
                    }
                    Interrupt::Gather(at) => {
                        sleep_whole(at).await?;
                        let g = gslot.borrow().clone();
                        if let Some(g) = g {
                            g.cancel_with(Some("G".into()));
                        }
                    }
                }
                Ok(0)
            })
            .unwrap();
        others.push(t.into_future());
    }
    let _ = lp.run_until_complete(driver.clone());
    let mut all: Vec<Future<i64>> = kids.iter().map(|k| k.as_future().clone()).collect();
    all.extend(others);
    lp.run_until_complete(wait(all, None, ReturnWhen::AllCompleted))
        .unwrap();
    let finals = kids
        .iter()
        .map(|k| {
            if k.cancelled() {
                Final::Cancelled
            } else {
                match k.result() {
                    Ok(v) => Final::Ok(v),
                    Err(e) => Final::Raised(e.python_type().to_string(), e.to_string()),
                }
            }
        })
        .collect();
    lp.close().unwrap();
    let record = record
        .borrow_mut()
        .take()
        .expect("the driver recorded nothing");
    let completions = log.borrow().clone();
    Observed {
        finals,
        completions,
        record,
    }
}

/// The prediction as `observe` reports it.
pub fn expected(p: &Prediction) -> Observed {
    Observed {
        finals: p.finals.clone(),
        completions: p.completions.clone(),
        record: p.record.clone(),
    }
}
