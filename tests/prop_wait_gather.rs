//! Properties of `wait` and `gather` (SPEC.md WAIT-*, GATHER-*), checked
//! against an oracle: a model of asyncio's loop that shares no code with
//! loopspec (module `model` below). A scenario is up to 32 child tasks, each
//! with a small virtual delay (so that deadlines tie), an outcome (a value, an
//! error, a panic, a cancellation by itself or by another task) and maybe an
//! earlier child it awaits first; plus the combinator, its timeout and
//! `return_when`, and maybe a cancellation of the gather or of the task
//! awaiting it. Each scenario runs on the virtual clock; the properties
//! compare what loopspec does with what the model predicts, down to the
//! order in which children complete within an iteration.
//!
//! The model was checked against CPython, once, outside this repository:
//! 20,000 random scenarios run on CPython 3.11.7, 3.12.1 and 3.13.0 (each on
//! the version of its profile) with a virtual-clock loop whose equal-deadline
//! timers fire in creation order (loopspec's SCHED-5 choice) gave exactly the
//! model's children outcomes, completion order and times, and wait/gather
//! results. The properties expect exactly the model's prediction.
//!
//! Runs `LOOPSPEC_PROPTEST_CASES` cases per property (default 1000) from a
//! fixed seed per property; failures are saved to
//! `tests/prop_wait_gather.proptest-regressions` and replayed first.

mod common;

use loopspec::{
    ClockKind, Error, EventLoop, Future, Gathered, Profile, ReturnWhen, Task, gather, wait,
};
use model::{
    Child, Exc, Final, Interrupt, Mode, Out, Outcome, Prediction, Record, Scenario, When, predict,
    value_of,
};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, FileFailurePersistence, RngSeed, TestCaseError, TestRunner};
use std::cell::RefCell;
use std::fmt::Debug;
use std::rc::Rc;
use std::sync::{Arc, Once};

// ---------------------------------------------------------------------------
// Running a property
// ---------------------------------------------------------------------------

fn config(seed: u64) -> Config {
    let cases = std::env::var("LOOPSPEC_PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        source_file: Some(file!()),
        ..Config::default()
    }
}

/// Children panic with `p<N>` on purpose: keep those off stderr.
fn quiet_scenario_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let msg = info.payload().downcast_ref::<String>();
            let planned = msg.is_some_and(|m| {
                m.len() > 1 && m.starts_with('p') && m[1..].chars().all(|c| c.is_ascii_digit())
            });
            if !planned {
                default(info);
            }
        }));
    });
}

fn check<S>(seed: u64, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy,
    S::Value: Debug,
{
    quiet_scenario_panics();
    let mut runner = TestRunner::new(config(seed));
    if let Err(e) = runner.run(&strategy, test) {
        panic!("{e}");
    }
}

// ---------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------

fn outcome() -> impl Strategy<Value = Outcome> + Clone {
    prop_oneof![
        3 => Just(Outcome::Value),
        1 => Just(Outcome::Error),
        1 => Just(Outcome::Panic),
        1 => Just(Outcome::SelfCancel),
        1 => Just(Outcome::SelfCancelReturn),
        1 => (0u8..=6).prop_map(Outcome::CancelledBy),
    ]
}

fn children() -> impl Strategy<Value = Vec<Child>> {
    let one = (
        0u8..=5,
        outcome(),
        prop::option::weighted(0.3, any::<Index>()),
    );
    let n = prop_oneof![0usize..=4, 0usize..=32];
    n.prop_flat_map(move |n| prop::collection::vec(one.clone(), n))
        .prop_map(|raw| {
            raw.into_iter()
                .enumerate()
                .map(|(i, (delay, outcome, dep))| Child {
                    delay,
                    outcome,
                    dep: if i == 0 {
                        None
                    } else {
                        dep.map(|ix| ix.index(i))
                    },
                })
                .collect()
        })
}

fn when() -> impl Strategy<Value = When> {
    prop_oneof![Just(When::All), Just(When::First), Just(When::FirstExc)]
}

/// A scenario with the given combinator and interruption strategies.
fn scenario(
    mode: impl Strategy<Value = Mode>,
    interrupt: impl Strategy<Value = Option<Interrupt>>,
) -> impl Strategy<Value = Scenario> {
    (
        children(),
        prop::collection::vec(any::<Index>(), 0..=2),
        mode,
        0u8..=3,
        interrupt,
        any::<bool>(),
    )
        .prop_map(|(children, dups, mode, start, interrupt, py312)| {
            let n = children.len();
            let dups = if n == 0 {
                Vec::new()
            } else {
                dups.into_iter().map(|ix| ix.index(n)).collect()
            };
            let interrupt = match (interrupt, mode) {
                (Some(Interrupt::Gather(at)), Mode::Wait { .. }) => Some(Interrupt::Driver(at)),
                (other, _) => other,
            };
            Scenario {
                children,
                dups,
                mode,
                start,
                interrupt,
                py312,
            }
        })
}

// ---------------------------------------------------------------------------
// Running a scenario on loopspec
// ---------------------------------------------------------------------------

/// What loopspec did, in the oracle's terms.
#[derive(Debug, PartialEq)]
struct Observed {
    finals: Vec<Final>,
    completions: Vec<(usize, i64)>,
    record: Record,
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
fn observe(sc: &Scenario) -> Observed {
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
        t.add_done_callback(Rc::new(move |_: &Future<i64>| {
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
        lp.create_task(async move {
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
            .create_task(async move {
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
fn expected(p: &Prediction) -> Observed {
    Observed {
        finals: p.finals.clone(),
        completions: p.completions.clone(),
        record: p.record.clone(),
    }
}

/// The argument list as child indices.
fn args_of(sc: &Scenario) -> Vec<usize> {
    (0..sc.children.len())
        .chain(sc.dups.iter().copied())
        .collect()
}

fn failed(f: &Final) -> bool {
    !matches!(f, Final::Ok(_))
}

/// Runs `sc` and checks that loopspec does exactly what the model (and so
/// CPython) does.
fn run_and_compare(sc: &Scenario) -> Result<(Observed, Prediction), TestCaseError> {
    let p = predict(sc);
    let obs = observe(sc);
    let want = expected(&p);
    prop_assert_eq!(&obs.finals, &want.finals, "children's final states");
    prop_assert_eq!(
        &obs.completions,
        &want.completions,
        "completion order and times"
    );
    prop_assert_eq!(&obs.record, &want.record, "what the driver saw, and when");
    Ok((obs, p))
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

/// Completion time of each child, from the completion log.
fn completion_times(obs: &Observed) -> Vec<i64> {
    let mut t = vec![i64::MIN; obs.finals.len()];
    for &(i, at) in &obs.completions {
        t[i] = at;
    }
    t
}

fn same_outcome(entry: &Out, fin: &Final) -> bool {
    match (entry, fin) {
        (Ok(v), Final::Ok(w)) => v == w,
        (Err(Exc::Raised(a, b)), Final::Raised(c, d)) => a == c && b == d,
        (Err(Exc::Cancelled(Some(_))), Final::Cancelled) => true,
        _ => false,
    }
}

/// `gather(return_exceptions=True)` lists every child's outcome in argument
/// order (duplicates repeated), and `wait(ALL_COMPLETED)` of the same
/// children reports them all done with the same outcomes; both return when
/// the last child completes. No children: `[]` at once, and `wait` refuses.
/// Rules: GATHER-1, GATHER-2, GATHER-3, GATHER-5, GATHER-8, WAIT-1, WAIT-2, WAIT-3
#[test]
fn gather_return_exceptions_equals_outcomes_and_wait_all_completed() {
    let s = scenario(
        Just(Mode::Gather {
            return_exceptions: true,
        }),
        Just(None),
    );
    check(0x5eed_0001, s, |sc| {
        let (g, _) = run_and_compare(&sc)?;
        let mut wsc = sc.clone();
        wsc.mode = Mode::Wait {
            timeout: None,
            when: When::All,
        };
        let (w, _) = run_and_compare(&wsc)?;
        let n = sc.children.len();
        let last = g
            .completions
            .iter()
            .map(|c| c.1)
            .max()
            .unwrap_or(0)
            .max(sc.start as i64);
        let Record::Gather {
            time,
            result: Ok(list),
            ..
        } = &g.record
        else {
            return Err(TestCaseError::fail(format!("gather gave {:?}", g.record)));
        };
        prop_assert_eq!(*time, last);
        let args = args_of(&sc);
        prop_assert_eq!(list.len(), args.len());
        for (k, &i) in args.iter().enumerate() {
            prop_assert!(
                same_outcome(&list[k], &g.finals[i]),
                "entry {} is {:?} but child {} ended {:?}",
                k,
                list[k],
                i,
                g.finals[i]
            );
        }
        if n == 0 {
            prop_assert_eq!(
                &w.record,
                &Record::Wait {
                    time: sc.start as i64,
                    result: Err(Exc::Empty)
                }
            );
        } else {
            let all: Vec<usize> = (0..n).collect();
            prop_assert_eq!(
                &w.record,
                &Record::Wait {
                    time: last,
                    result: Ok((all, Vec::new()))
                }
            );
        }
        prop_assert_eq!(&w.finals, &g.finals);
        Ok(())
    });
}

/// `wait` with a timeout returns when the timer fires, without raising or
/// cancelling: `done` holds exactly the children finished by the time the
/// waiting task resumes, `pending` the rest, and the pending ones go on to
/// their own outcomes.
/// Rules: WAIT-4, WAIT-2, WAIT-3
#[test]
fn wait_timeout_splits_done_and_pending() {
    let mode = (-1i8..=7).prop_map(|t| Mode::Wait {
        timeout: Some(t),
        when: When::All,
    });
    check(0x5eed_0002, scenario(mode, Just(None)), |sc| {
        let (obs, _) = run_and_compare(&sc)?;
        let Mode::Wait {
            timeout: Some(to), ..
        } = sc.mode
        else {
            unreachable!()
        };
        let mut untimed = sc.clone();
        untimed.mode = Mode::Wait {
            timeout: None,
            when: When::All,
        };
        let free = observe(&untimed);
        prop_assert_eq!(&obs.finals, &free.finals, "the timeout changed an outcome");
        prop_assert_eq!(
            &obs.completions,
            &free.completions,
            "the timeout changed a completion"
        );
        let Record::Wait { time, result } = &obs.record else {
            unreachable!()
        };
        if sc.children.is_empty() {
            prop_assert_eq!(result, &Err(Exc::Empty));
            return Ok(());
        }
        let Ok((done, pending)) = result else {
            return Err(TestCaseError::fail(format!("wait raised {result:?}")));
        };
        let fire = sc.start as i64 + (to as i64).max(0);
        let times = completion_times(&obs);
        prop_assert!(
            *time <= fire,
            "returned at {} after the timeout at {}",
            time,
            fire
        );
        if !pending.is_empty() {
            prop_assert_eq!(*time, fire);
        }
        let mut all: Vec<usize> = done.iter().chain(pending).copied().collect();
        all.sort();
        prop_assert_eq!(all, (0..sc.children.len()).collect::<Vec<_>>());
        for &i in done {
            prop_assert!(
                times[i] <= *time,
                "child {} done at {} but finished at {}",
                i,
                time,
                times[i]
            );
        }
        for &i in pending {
            prop_assert!(
                times[i] >= *time,
                "child {} pending at {} but finished at {}",
                i,
                time,
                times[i]
            );
        }
        for (i, &at) in times.iter().enumerate() {
            if at < *time {
                prop_assert!(
                    done.contains(&i),
                    "child {} finished at {} < {} but is pending",
                    i,
                    at,
                    time
                );
            }
        }
        Ok(())
    });
}

/// `FIRST_COMPLETED` returns when one child is done and `FIRST_EXCEPTION`
/// when one fails (a cancellation does not count) or all are done; `done` is
/// every child finished by then, including others that completed in the same
/// iterations.
/// Rules: WAIT-3, WAIT-2, WAIT-4
#[test]
fn wait_first_completed_and_first_exception() {
    let mode = (
        prop_oneof![Just(When::First), Just(When::FirstExc)],
        prop::option::of(-1i8..=7),
    )
        .prop_map(|(when, timeout)| Mode::Wait { timeout, when });
    check(0x5eed_0003, scenario(mode, Just(None)), |sc| {
        let (obs, _) = run_and_compare(&sc)?;
        let Mode::Wait { timeout, when } = sc.mode else {
            unreachable!()
        };
        if sc.children.is_empty() || timeout.is_some() {
            return Ok(()); // the model comparison covers these
        }
        let Record::Wait {
            time,
            result: Ok((done, pending)),
        } = &obs.record
        else {
            return Err(TestCaseError::fail(format!("wait gave {:?}", obs.record)));
        };
        let start = sc.start as i64;
        let times = completion_times(&obs);
        let first = *times.iter().min().unwrap();
        let last = *times.iter().max().unwrap();
        let first_exc = (0..times.len())
            .filter(|&i| matches!(obs.finals[i], Final::Raised(..)))
            .map(|i| times[i])
            .min();
        let expect_time = match (when, first_exc) {
            (When::First, _) => first.max(start),
            (When::FirstExc, Some(t)) => t.max(start),
            (When::FirstExc, None) => last.max(start),
            (When::All, _) => unreachable!(),
        };
        prop_assert_eq!(*time, expect_time);
        prop_assert!(!done.is_empty());
        if when == When::FirstExc {
            let failed_done = done
                .iter()
                .any(|&i| matches!(obs.finals[i], Final::Raised(..)));
            prop_assert!(failed_done || pending.is_empty());
        }
        for &i in done {
            prop_assert!(times[i] <= *time);
        }
        Ok(())
    });
}

/// Without `return_exceptions`, the gather fails with the exception of the
/// first child to fail in completion order (a cancelled child as a
/// `CancelledError` exception), and the other children finish exactly as they
/// would have without the gather.
/// Rules: GATHER-4, GATHER-1
#[test]
fn gather_without_return_exceptions_fails_with_first_failure() {
    let mode = Just(Mode::Gather {
        return_exceptions: false,
    });
    check(0x5eed_0004, scenario(mode, Just(None)), |sc| {
        let (obs, _) = run_and_compare(&sc)?;
        let mut plain = sc.clone();
        plain.mode = Mode::Wait {
            timeout: None,
            when: When::All,
        };
        let free = observe(&plain);
        prop_assert_eq!(&obs.finals, &free.finals, "the gather changed an outcome");
        prop_assert_eq!(
            &obs.completions,
            &free.completions,
            "the gather changed a completion"
        );
        let Record::Gather { time, result, .. } = &obs.record else {
            unreachable!()
        };
        if sc.start != 0 {
            return Ok(()); // children done before gather() count in argument order
        }
        let first_failure = obs.completions.iter().find(|c| failed(&obs.finals[c.0]));
        match first_failure {
            Some(&(i, at)) => {
                prop_assert_eq!(*time, at);
                match (&obs.finals[i], result) {
                    (Final::Raised(k, m), Err(Exc::Raised(k2, m2))) => {
                        prop_assert_eq!((k, m), (k2, m2));
                    }
                    (Final::Cancelled, Err(Exc::Cancelled(_))) => {}
                    (f, r) => {
                        return Err(TestCaseError::fail(format!(
                            "first failure: child {i} {f:?}, gather gave {r:?}"
                        )));
                    }
                }
            }
            None => {
                let want: Vec<Out> = args_of(&sc).iter().map(|&i| Ok(value_of(i))).collect();
                prop_assert_eq!(result, &Ok(want));
            }
        }
        Ok(())
    });
}

/// Cancelling the gather, or the task awaiting `wait`/`gather`, midway:
/// each child ends as the model predicts (a gather passes the cancellation
/// to every child; a cancelled `wait` leaves them alone), and the awaiting
/// task sees the gather's `CancelledError` exception.
/// Rules: GATHER-6, GATHER-7, GATHER-9, WAIT-5
#[test]
fn cancelling_gather_or_waiter_midway() {
    let mode = prop_oneof![
        any::<bool>().prop_map(|r| Mode::Gather {
            return_exceptions: r
        }),
        (prop::option::of(-1i8..=7), when())
            .prop_map(|(timeout, when)| Mode::Wait { timeout, when }),
    ];
    let interrupt = prop_oneof![
        (0u8..=7).prop_map(|at| Some(Interrupt::Driver(at))),
        (0u8..=7).prop_map(|at| Some(Interrupt::Gather(at))),
    ];
    check(0x5eed_0005, scenario(mode, interrupt), |sc| {
        let (obs, _) = run_and_compare(&sc)?;
        if let Mode::Wait { .. } = sc.mode {
            let mut calm = sc.clone();
            calm.interrupt = None;
            let free = observe(&calm);
            prop_assert_eq!(
                &obs.finals,
                &free.finals,
                "cancelling the waiter touched a child"
            );
        }
        Ok(())
    });
}

/// Any scenario — either combinator, any timeout and `return_when`, with or
/// without an interruption, either profile — runs exactly as the model of
/// asyncio's iterations predicts: children's outcomes, the order and virtual
/// time of their completions, and what the driver saw.
/// Rules: WAIT-3, WAIT-4, GATHER-4, GATHER-8
#[test]
fn any_scenario_runs_as_modelled() {
    let mode = prop_oneof![
        any::<bool>().prop_map(|r| Mode::Gather {
            return_exceptions: r
        }),
        (prop::option::of(-1i8..=7), when())
            .prop_map(|(timeout, when)| Mode::Wait { timeout, when }),
    ];
    let interrupt = prop::option::of(prop_oneof![
        (0u8..=7).prop_map(Interrupt::Driver),
        (0u8..=7).prop_map(Interrupt::Gather),
    ]);
    check(0x5eed_0006, scenario(mode, interrupt), |sc| {
        run_and_compare(&sc)?;
        Ok(())
    });
}

// ---------------------------------------------------------------------------
// The oracle
// ---------------------------------------------------------------------------

// BEGIN ORACLE
/// The scenarios the properties run, and the oracle that predicts them.
///
/// Nothing here uses loopspec: the oracle is a small model of asyncio's loop
/// written from SPEC.md (SCHED-1 iterations, TASK-1/TASK-4 steps and
/// cancellation, FUT-6 callbacks, WAIT-3/WAIT-4, GATHER-4..8) and from
/// CPython's `tasks.py`: a ready queue, timers in (deadline, creation) order,
/// futures with done callbacks and tasks as explicit state machines.
mod model {
    use std::collections::VecDeque;

    /// How a child ends.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Outcome {
        /// Returns `100 + i`.
        Value,
        /// Raises `ValueError("e{i}")`.
        Error,
        /// Panics with `"p{i}"`.
        Panic,
        /// Raises `CancelledError("s{i}")` itself.
        SelfCancel,
        /// Calls `current_task().cancel("r{i}")` and returns in the same step
        /// (TASK-5).
        SelfCancelReturn,
        /// Returns `100 + i`, but a canceller task cancels it with `"c{i}"`
        /// at this virtual time (0: after one iteration).
        CancelledBy(u8),
    }

    #[derive(Clone, Debug)]
    pub struct Child {
        /// The child sleeps this long (0: `sleep(0)`, one iteration) before
        /// its outcome.
        pub delay: u8,
        pub outcome: Outcome,
        /// An earlier child it awaits first; it propagates that child's
        /// cancellation and ignores its other outcomes.
        pub dep: Option<usize>,
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum When {
        All,
        First,
        FirstExc,
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Mode {
        Wait { timeout: Option<i8>, when: When },
        Gather { return_exceptions: bool },
    }

    /// A cancellation from outside, by a task that sleeps until `at`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Interrupt {
        /// Cancel the driver task (the one awaiting wait/gather) with "D".
        Driver(u8),
        /// Cancel the gather's future with "G" (nothing if not made yet).
        Gather(u8),
    }

    /// Tasks are made in this order before the loop runs: the children, the
    /// cancellers of `CancelledBy` children (by child index), the driver,
    /// the interrupter. The driver sleeps `start` (if > 0), then calls wait
    /// or gather with the children in index order followed by `dups`.
    #[derive(Clone, Debug)]
    pub struct Scenario {
        pub children: Vec<Child>,
        pub dups: Vec<usize>,
        pub mode: Mode,
        pub start: u8,
        pub interrupt: Option<Interrupt>,
        pub py312: bool,
    }

    #[derive(Clone, Debug, PartialEq)]
    pub enum Exc {
        /// An exception: Python class (`Panic` for a panic) and message.
        Raised(String, String),
        /// `CancelledError`, with its message if it has one.
        Cancelled(Option<String>),
        /// `ValueError: Set of Tasks/Futures is empty.`
        Empty,
    }

    pub type Out = Result<i64, Exc>;

    /// A child's final state (cancellation messages depend on who reads
    /// first, so they are not part of it).
    #[derive(Clone, Debug, PartialEq)]
    pub enum Final {
        Ok(i64),
        Raised(String, String),
        Cancelled,
    }

    #[derive(Clone, Debug, PartialEq)]
    pub enum Record {
        /// The driver was cancelled in its start sleep.
        CancelledBeforeStart,
        /// What `wait` returned (done, pending as child indices) or raised,
        /// and the virtual time the driver resumed.
        Wait {
            time: i64,
            result: Result<(Vec<usize>, Vec<usize>), Exc>,
        },
        /// What awaiting the gather gave, and when.
        Gather {
            time: i64,
            result: Result<Vec<Out>, Exc>,
        },
    }

    #[derive(Clone, Debug, PartialEq)]
    pub struct Prediction {
        pub finals: Vec<Final>,
        /// (child, virtual time) in completion order.
        pub completions: Vec<(usize, i64)>,
        pub record: Record,
    }

    pub fn value_of(i: usize) -> i64 {
        100 + i as i64
    }

    // ------------------------------------------------------------------
    // The model
    // ------------------------------------------------------------------

    #[derive(Clone, Debug)]
    enum Val {
        Int(i64),
        List(Vec<Out>),
    }

    #[derive(Clone, Debug)]
    enum St {
        Pending,
        Fin(Result<Val, Exc>),
        Cancelled,
    }

    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Cb {
        Wakeup(usize),
        Gather,
        Wait,
        Log(usize),
    }

    struct Fut {
        st: St,
        waiters: Vec<Cb>,
        task: Option<usize>,
        gather: bool,
        /// asyncio's `_cancel_message`.
        cancel_message: Option<String>,
        /// asyncio's `_cancelled_exc`: the error that ended a task, handed
        /// to the first reader only (TASK-11).
        cancelled_exc: Option<Option<String>>,
    }

    enum Ready {
        Step(usize),
        Call(Cb, usize),
        Timer(usize),
    }

    enum TimerAct {
        Sleep(usize),
        WaitTimeout,
    }

    struct Timer {
        when: i64,
        act: TimerAct,
        cancelled: bool,
        fired: bool,
    }

    #[derive(Clone, Copy)]
    enum Prog {
        Child(usize),
        Canceller(usize),
        Interrupter(Interrupt),
        Driver,
    }

    struct Task {
        fut: usize,
        prog: Prog,
        pc: u8,
        fut_waiter: Option<usize>,
        must_cancel: bool,
        sleep_timer: Option<usize>,
    }

    enum Yield {
        Return(Val),
        Raise(Exc),
        Await(usize),
        Yield0,
    }

    struct GatherSt {
        outer: usize,
        children: Vec<usize>,
        unique: Vec<usize>,
        nfinished: usize,
        return_exceptions: bool,
        cancel_requested: bool,
        last_finished: Option<usize>,
    }

    struct WaitSt {
        waiter: usize,
        timer: Option<usize>,
        counter: i64,
        when: When,
        unique: Vec<usize>,
    }

    struct Sim<'a> {
        sc: &'a Scenario,
        now: i64,
        futs: Vec<Fut>,
        tasks: Vec<Task>,
        timers: Vec<Timer>,
        ready: VecDeque<Ready>,
        gather: Option<GatherSt>,
        wait: Option<WaitSt>,
        child_task: Vec<usize>,
        driver: usize,
        completions: Vec<(usize, i64)>,
        record: Option<Record>,
    }

    /// Runs the scenario on the model and returns what CPython does.
    pub fn predict(sc: &Scenario) -> Prediction {
        let mut sim = Sim {
            sc,
            now: 0,
            futs: Vec::new(),
            tasks: Vec::new(),
            timers: Vec::new(),
            ready: VecDeque::new(),
            gather: None,
            wait: None,
            child_task: Vec::new(),
            driver: 0,
            completions: Vec::new(),
            record: None,
        };
        for i in 0..sc.children.len() {
            let t = sim.spawn(Prog::Child(i));
            sim.child_task.push(t);
            let f = sim.tasks[t].fut;
            sim.futs[f].waiters.push(Cb::Log(i));
        }
        for (i, c) in sc.children.iter().enumerate() {
            if let Outcome::CancelledBy(_) = c.outcome {
                sim.spawn(Prog::Canceller(i));
            }
        }
        sim.driver = sim.spawn(Prog::Driver);
        if let Some(int) = sc.interrupt {
            sim.spawn(Prog::Interrupter(int));
        }
        while sim.run_once() {}
        let finals = (0..sc.children.len())
            .map(|i| {
                let f = sim.tasks[sim.child_task[i]].fut;
                match &sim.futs[f].st {
                    St::Fin(Ok(Val::Int(v))) => Final::Ok(*v),
                    St::Fin(Err(Exc::Raised(k, m))) => Final::Raised(k.clone(), m.clone()),
                    St::Cancelled => Final::Cancelled,
                    other => panic!("child {i} ended in {other:?}"),
                }
            })
            .collect();
        Prediction {
            finals,
            completions: sim.completions,
            record: sim.record.expect("the driver never finished"),
        }
    }

    impl Sim<'_> {
        fn new_fut(&mut self, task: Option<usize>, gather: bool) -> usize {
            self.futs.push(Fut {
                st: St::Pending,
                waiters: Vec::new(),
                task,
                gather,
                cancel_message: None,
                cancelled_exc: None,
            });
            self.futs.len() - 1
        }

        fn spawn(&mut self, prog: Prog) -> usize {
            let t = self.tasks.len();
            let fut = self.new_fut(Some(t), false);
            self.tasks.push(Task {
                fut,
                prog,
                pc: 0,
                fut_waiter: None,
                must_cancel: false,
                sleep_timer: None,
            });
            self.ready.push_back(Ready::Step(t));
            t
        }

        fn add_timer(&mut self, when: i64, act: TimerAct) -> usize {
            self.timers.push(Timer {
                when,
                act,
                cancelled: false,
                fired: false,
            });
            self.timers.len() - 1
        }

        fn done(&self, f: usize) -> bool {
            !matches!(self.futs[f].st, St::Pending)
        }

        fn cancelled(&self, f: usize) -> bool {
            matches!(self.futs[f].st, St::Cancelled)
        }

        /// Moves a pending future to `st` and schedules its callbacks (FUT-6).
        fn complete(&mut self, f: usize, st: St) {
            assert!(!self.done(f));
            self.futs[f].st = st;
            for cb in std::mem::take(&mut self.futs[f].waiters) {
                self.ready.push_back(Ready::Call(cb, f));
            }
        }

        fn add_done_callback(&mut self, f: usize, cb: Cb) {
            if self.done(f) {
                self.ready.push_back(Ready::Call(cb, f));
            } else {
                self.futs[f].waiters.push(cb);
            }
        }

        /// `_make_cancelled_error()`: consumes the first-reader error.
        fn make_cancelled_error(&mut self, f: usize) -> Option<String> {
            match self.futs[f].cancelled_exc.take() {
                Some(m) => m,
                None => self.futs[f].cancel_message.clone(),
            }
        }

        /// `result()`.
        fn read(&mut self, f: usize) -> Result<Val, Exc> {
            match &self.futs[f].st {
                St::Fin(r) => r.clone(),
                St::Cancelled => Err(Exc::Cancelled(self.make_cancelled_error(f))),
                St::Pending => panic!("read of a pending future"),
            }
        }

        /// `Future.cancel(msg)`.
        fn future_cancel(&mut self, f: usize, msg: Option<String>) -> bool {
            if self.done(f) {
                return false;
            }
            self.futs[f].cancel_message = msg;
            self.complete(f, St::Cancelled);
            true
        }

        /// `fut.cancel(msg)` for whatever `fut` is.
        fn cancel_any(&mut self, f: usize, msg: Option<String>) -> bool {
            if let Some(t) = self.futs[f].task {
                self.task_cancel(t, msg)
            } else if self.futs[f].gather {
                self.gather_cancel(msg)
            } else {
                self.future_cancel(f, msg)
            }
        }

        /// `Task.cancel(msg)` (TASK-4).
        fn task_cancel(&mut self, t: usize, msg: Option<String>) -> bool {
            let f = self.tasks[t].fut;
            if self.done(f) {
                return false;
            }
            if let Some(w) = self.tasks[t].fut_waiter
                && self.cancel_any(w, msg.clone())
            {
                return true;
            }
            self.tasks[t].must_cancel = true;
            self.futs[f].cancel_message = msg;
            true
        }

        /// `_GatheringFuture.cancel(msg)` (GATHER-6): every argument's
        /// child, duplicates included, as CPython does.
        fn gather_cancel(&mut self, msg: Option<String>) -> bool {
            let g = self.gather.as_ref().expect("gather");
            if self.done(g.outer) {
                return false;
            }
            let children = g.children.clone();
            let mut any = false;
            for c in children {
                any |= self.cancel_any(c, msg.clone());
            }
            if any {
                self.gather.as_mut().unwrap().cancel_requested = true;
            }
            any
        }

        /// One iteration (SCHED-1). False when nothing is left to do.
        fn run_once(&mut self) -> bool {
            let next_timer = self
                .timers
                .iter()
                .filter(|t| !t.cancelled && !t.fired)
                .map(|t| t.when)
                .min();
            if self.ready.is_empty() {
                match next_timer {
                    None => return false,
                    Some(w) => self.now = self.now.max(w),
                }
            }
            let mut due: Vec<usize> = (0..self.timers.len())
                .filter(|&i| !self.timers[i].fired && self.timers[i].when <= self.now)
                .collect();
            due.sort_by_key(|&i| (self.timers[i].when, i));
            for i in due {
                self.timers[i].fired = true;
                self.ready.push_back(Ready::Timer(i));
            }
            let n = self.ready.len();
            for _ in 0..n {
                let r = self.ready.pop_front().unwrap();
                match r {
                    Ready::Step(t) => self.step(t, None),
                    Ready::Call(cb, f) => self.run_cb(cb, f),
                    Ready::Timer(i) => {
                        if self.timers[i].cancelled {
                            continue;
                        }
                        match self.timers[i].act {
                            TimerAct::Sleep(f) => {
                                if !self.done(f) {
                                    self.complete(f, St::Fin(Ok(Val::Int(0))));
                                }
                            }
                            TimerAct::WaitTimeout => {
                                let w = self.wait.as_ref().unwrap().waiter;
                                if !self.done(w) {
                                    self.complete(w, St::Fin(Ok(Val::Int(0))));
                                }
                            }
                        }
                    }
                }
            }
            true
        }

        fn run_cb(&mut self, cb: Cb, f: usize) {
            match cb {
                Cb::Log(i) => self.completions.push((i, self.now)),
                Cb::Wakeup(t) => {
                    // Task.__wakeup: reads the result, throws its error in.
                    let exc = self.read(f).err();
                    self.step(t, exc);
                }
                Cb::Gather => self.gather_cb(f),
                Cb::Wait => self.wait_cb(f),
            }
        }

        /// `Task.__step`.
        fn step(&mut self, t: usize, exc: Option<Exc>) {
            let f = self.tasks[t].fut;
            if self.done(f) {
                return;
            }
            let mut exc = exc;
            if self.tasks[t].must_cancel {
                if !matches!(exc, Some(Exc::Cancelled(_))) {
                    exc = Some(Exc::Cancelled(self.make_cancelled_error(f)));
                }
                self.tasks[t].must_cancel = false;
            }
            self.tasks[t].fut_waiter = None;
            match self.resume(t, exc) {
                Yield::Return(v) => {
                    if self.tasks[t].must_cancel {
                        self.tasks[t].must_cancel = false;
                        let msg = self.futs[f].cancel_message.clone();
                        self.future_cancel(f, msg);
                    } else {
                        self.complete(f, St::Fin(Ok(v)));
                    }
                }
                Yield::Raise(Exc::Cancelled(m)) => {
                    self.futs[f].cancelled_exc = Some(m);
                    self.future_cancel(f, None);
                }
                Yield::Raise(e) => self.complete(f, St::Fin(Err(e))),
                Yield::Await(w) => {
                    self.futs[w].waiters.push(Cb::Wakeup(t));
                    self.tasks[t].fut_waiter = Some(w);
                    if self.tasks[t].must_cancel {
                        let msg = self.futs[f].cancel_message.clone();
                        if self.cancel_any(w, msg) {
                            self.tasks[t].must_cancel = false;
                        }
                    }
                }
                Yield::Yield0 => self.ready.push_back(Ready::Step(t)),
            }
        }

        /// `await sleep(d)` up to its first suspension; pc `then` resumes.
        fn sleep(&mut self, t: usize, d: i64, then: u8) -> Yield {
            self.tasks[t].pc = then;
            if d <= 0 {
                return Yield::Yield0;
            }
            let f = self.new_fut(None, false);
            let h = self.add_timer(self.now + d, TimerAct::Sleep(f));
            self.tasks[t].sleep_timer = Some(h);
            Yield::Await(f)
        }

        /// `sleep`'s `finally: h.cancel()`.
        fn end_sleep(&mut self, t: usize) {
            if let Some(h) = self.tasks[t].sleep_timer.take() {
                self.timers[h].cancelled = true;
            }
        }

        /// Runs task `t`'s program from its pc until it suspends or ends.
        fn resume(&mut self, t: usize, exc: Option<Exc>) -> Yield {
            match self.tasks[t].prog {
                Prog::Child(i) => self.resume_child(t, i, exc),
                Prog::Canceller(i) => {
                    if self.tasks[t].pc == 0 {
                        if let Some(e) = exc {
                            return Yield::Raise(e);
                        }
                        let Outcome::CancelledBy(at) = self.sc.children[i].outcome else {
                            unreachable!()
                        };
                        return self.sleep(t, at as i64, 1);
                    }
                    self.end_sleep(t);
                    if let Some(e) = exc {
                        return Yield::Raise(e);
                    }
                    let target = self.child_task[i];
                    self.task_cancel(target, Some(format!("c{i}")));
                    Yield::Return(Val::Int(0))
                }
                Prog::Interrupter(int) => {
                    let at = match int {
                        Interrupt::Driver(at) | Interrupt::Gather(at) => at,
                    };
                    if self.tasks[t].pc == 0 {
                        if let Some(e) = exc {
                            return Yield::Raise(e);
                        }
                        return self.sleep(t, at as i64, 1);
                    }
                    self.end_sleep(t);
                    if let Some(e) = exc {
                        return Yield::Raise(e);
                    }
                    match int {
                        Interrupt::Driver(_) => {
                            self.task_cancel(self.driver, Some("D".into()));
                        }
                        Interrupt::Gather(_) => {
                            if let Some(g) = &self.gather {
                                let outer = g.outer;
                                self.cancel_any(outer, Some("G".into()));
                            }
                        }
                    }
                    Yield::Return(Val::Int(0))
                }
                Prog::Driver => self.resume_driver(t, exc),
            }
        }

        fn resume_child(&mut self, t: usize, i: usize, exc: Option<Exc>) -> Yield {
            let c = self.sc.children[i].clone();
            let mut exc = exc;
            let mut pc = self.tasks[t].pc;
            loop {
                match pc {
                    // start: await the dependency, if any
                    0 => {
                        if let Some(e) = exc.take() {
                            return Yield::Raise(e); // never started: body never runs
                        }
                        match c.dep {
                            Some(j) => {
                                let d = self.tasks[self.child_task[j]].fut;
                                if self.done(d) {
                                    if let Err(Exc::Cancelled(m)) = self.read(d) {
                                        return Yield::Raise(Exc::Cancelled(m));
                                    }
                                    pc = 10;
                                } else {
                                    self.tasks[t].pc = 1;
                                    return Yield::Await(d);
                                }
                            }
                            None => pc = 10,
                        }
                    }
                    // after the dependency
                    1 => {
                        if let Some(Exc::Cancelled(m)) = exc.take() {
                            return Yield::Raise(Exc::Cancelled(m));
                        }
                        pc = 10;
                    }
                    10 => return self.sleep(t, c.delay as i64, 11),
                    // after the sleep
                    11 => {
                        self.end_sleep(t);
                        if let Some(e) = exc.take() {
                            return Yield::Raise(e);
                        }
                        let v = Val::Int(value_of(i));
                        return match c.outcome {
                            Outcome::Value | Outcome::CancelledBy(_) => Yield::Return(v),
                            Outcome::Error => {
                                Yield::Raise(Exc::Raised("ValueError".into(), format!("e{i}")))
                            }
                            Outcome::Panic => {
                                Yield::Raise(Exc::Raised("Panic".into(), format!("p{i}")))
                            }
                            Outcome::SelfCancel => {
                                Yield::Raise(Exc::Cancelled(Some(format!("s{i}"))))
                            }
                            Outcome::SelfCancelReturn => {
                                self.task_cancel(t, Some(format!("r{i}")));
                                Yield::Return(v)
                            }
                        };
                    }
                    _ => unreachable!(),
                }
            }
        }

        fn resume_driver(&mut self, t: usize, exc: Option<Exc>) -> Yield {
            let sc = self.sc;
            match self.tasks[t].pc {
                0 => {
                    if let Some(e) = exc {
                        return Yield::Raise(e);
                    }
                    if sc.start > 0 {
                        return self.sleep(t, sc.start as i64, 1);
                    }
                }
                1 => {
                    self.end_sleep(t);
                    if let Some(e) = exc {
                        self.record = Some(Record::CancelledBeforeStart);
                        return Yield::Raise(e);
                    }
                }
                2 => return self.after_wait(exc),
                3 => {
                    let result = match exc {
                        Some(e) => Err(e),
                        None => {
                            let outer = self.gather.as_ref().unwrap().outer;
                            self.read(outer).map(|v| match v {
                                Val::List(l) => l,
                                Val::Int(_) => unreachable!(),
                            })
                        }
                    };
                    self.record_gather(result);
                    return Yield::Return(Val::Int(0));
                }
                _ => unreachable!(),
            }
            // main part
            let n = sc.children.len();
            let args: Vec<usize> = (0..n)
                .chain(sc.dups.iter().copied())
                .map(|i| self.tasks[self.child_task[i]].fut)
                .collect();
            let mut unique = Vec::new();
            for &a in &args {
                if !unique.contains(&a) {
                    unique.push(a);
                }
            }
            match sc.mode {
                Mode::Wait { timeout, when } => {
                    if n == 0 {
                        self.record = Some(Record::Wait {
                            time: self.now,
                            result: Err(Exc::Empty),
                        });
                        return Yield::Return(Val::Int(0));
                    }
                    let waiter = self.new_fut(None, false);
                    let timer = timeout
                        .map(|to| self.add_timer(self.now + to as i64, TimerAct::WaitTimeout));
                    self.wait = Some(WaitSt {
                        waiter,
                        timer,
                        counter: unique.len() as i64,
                        when,
                        unique: unique.clone(),
                    });
                    for &u in &unique {
                        self.add_done_callback(u, Cb::Wait);
                    }
                    self.tasks[t].pc = 2;
                    Yield::Await(waiter)
                }
                Mode::Gather { return_exceptions } => {
                    if n == 0 {
                        self.record = Some(Record::Gather {
                            time: self.now,
                            result: Ok(Vec::new()),
                        });
                        return Yield::Return(Val::Int(0));
                    }
                    let outer = self.new_fut(None, true);
                    self.gather = Some(GatherSt {
                        outer,
                        children: args,
                        unique: unique.clone(),
                        nfinished: 0,
                        return_exceptions,
                        cancel_requested: false,
                        last_finished: None,
                    });
                    let mut done_now = Vec::new();
                    for &u in &unique {
                        if sc.py312 && self.done(u) {
                            done_now.push(u);
                        } else {
                            self.add_done_callback(u, Cb::Gather);
                        }
                    }
                    for u in done_now {
                        self.gather_cb(u);
                    }
                    if self.done(outer) {
                        // awaiting a done future does not suspend
                        let result = self.read(outer).map(|v| match v {
                            Val::List(l) => l,
                            Val::Int(_) => unreachable!(),
                        });
                        self.record_gather(result);
                        return Yield::Return(Val::Int(0));
                    }
                    self.tasks[t].pc = 3;
                    Yield::Await(outer)
                }
            }
        }

        fn record_gather(&mut self, result: Result<Vec<Out>, Exc>) {
            self.record = Some(Record::Gather {
                time: self.now,
                result,
            });
        }

        fn after_wait(&mut self, exc: Option<Exc>) -> Yield {
            let w = self.wait.as_ref().unwrap();
            if let Some(h) = w.timer {
                self.timers[h].cancelled = true;
            }
            let unique = w.unique.clone();
            for &u in &unique {
                self.futs[u].waiters.retain(|cb| *cb != Cb::Wait);
            }
            let result = match exc {
                Some(e) => Err(e),
                None => {
                    let idx = |s: &Self, f: usize| {
                        (0..s.sc.children.len())
                            .find(|&i| s.tasks[s.child_task[i]].fut == f)
                            .unwrap()
                    };
                    let done = unique
                        .iter()
                        .filter(|&&u| self.done(u))
                        .map(|&u| idx(self, u));
                    let pending = unique
                        .iter()
                        .filter(|&&u| !self.done(u))
                        .map(|&u| idx(self, u));
                    Ok((done.collect(), pending.collect()))
                }
            };
            self.record = Some(Record::Wait {
                time: self.now,
                result,
            });
            Yield::Return(Val::Int(0))
        }

        /// `wait`'s `_on_completion`.
        fn wait_cb(&mut self, f: usize) {
            let failed = !self.cancelled(f) && matches!(self.futs[f].st, St::Fin(Err(_)));
            let w = self.wait.as_mut().unwrap();
            w.counter -= 1;
            if w.counter <= 0 || w.when == When::First || (w.when == When::FirstExc && failed) {
                let (timer, waiter) = (w.timer, w.waiter);
                if let Some(h) = timer {
                    self.timers[h].cancelled = true;
                }
                if !self.done(waiter) {
                    self.complete(waiter, St::Fin(Ok(Val::Int(0))));
                }
            }
        }

        /// `gather`'s `_done_callback`.
        fn gather_cb(&mut self, f: usize) {
            let g = self.gather.as_mut().unwrap();
            g.nfinished += 1;
            g.last_finished = Some(f);
            let (outer, ret) = (g.outer, g.return_exceptions);
            if self.done(outer) {
                return;
            }
            if !ret {
                if self.cancelled(f) {
                    let m = self.make_cancelled_error(f);
                    self.complete(outer, St::Fin(Err(Exc::Cancelled(m))));
                    return;
                }
                if let St::Fin(Err(e)) = &self.futs[f].st {
                    let e = e.clone();
                    self.complete(outer, St::Fin(Err(e)));
                    return;
                }
            }
            let g = self.gather.as_ref().unwrap();
            if g.nfinished == g.unique.len() {
                let children = g.children.clone();
                let results: Vec<Out> = children
                    .iter()
                    .map(|&c| match &self.futs[c].st {
                        St::Cancelled => Err(Exc::Cancelled(Some(
                            self.futs[c].cancel_message.clone().unwrap_or_default(),
                        ))),
                        St::Fin(Ok(Val::Int(v))) => Ok(*v),
                        St::Fin(Err(e)) => Err(e.clone()),
                        _ => unreachable!(),
                    })
                    .collect();
                if g.cancel_requested {
                    // The last child in argument order (CPython's loop
                    // variable), GATHER-6.
                    let last = *children.last().unwrap();
                    let m = self.make_cancelled_error(last);
                    self.complete(outer, St::Fin(Err(Exc::Cancelled(m))));
                } else {
                    self.complete(outer, St::Fin(Ok(Val::List(results))));
                }
            }
        }
    }
}
// END ORACLE
