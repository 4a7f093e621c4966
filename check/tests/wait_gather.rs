//! Properties of `wait` and `gather` (SPEC.md WAIT-*, GATHER-*), checked
//! against the oracle of `loopspec_check::oracle`: a model of asyncio's loop
//! that shares no code with loopspec. Random scenarios (child tasks with
//! delays, outcomes and dependencies; the combinator, its timeout and
//! `return_when`; maybe a cancellation) run on the virtual clock, and the
//! properties compare what loopspec does with what the model predicts, down
//! to the order in which children complete within an iteration. The
//! properties expect exactly the model's prediction.
//!
//! Runs `LOOPSPEC_PROPTEST_CASES` cases per property (default 1000) from a
//! fixed seed per property; failures are saved to
//! `check/tests/wait_gather.proptest-regressions` and replayed first.

use loopspec_check::oracle::model::{
    Child, Exc, Final, Interrupt, Mode, Out, Outcome, Prediction, Record, Scenario, When, predict,
    value_of,
};
use loopspec_check::oracle::observe::{Observed, expected, observe};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, FileFailurePersistence, RngSeed, TestCaseError, TestRunner};
use std::fmt::Debug;
use std::sync::Once;

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
    same_children(&obs, &want, "loopspec against the model")?;
    prop_assert_eq!(&obs.record, &want.record, "what the driver saw, and when");
    Ok((obs, p))
}

/// Fails unless the children ended, in the same order and at the same
/// times, in `obs` as in `other` (`what` names the comparison).
fn same_children(obs: &Observed, other: &Observed, what: &str) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        &obs.finals,
        &other.finals,
        "{}: children's final states",
        what
    );
    let (mine, theirs) = (&obs.completions, &other.completions);
    prop_assert_eq!(mine, theirs, "{}: completion order and times", what);
    Ok(())
}

/// `sc` run as a plain `wait` (no timeout, `ALL_COMPLETED`), which leaves
/// its children alone.
fn as_plain_wait(sc: &Scenario) -> Observed {
    let mut plain = sc.clone();
    plain.mode = Mode::Wait {
        timeout: None,
        when: When::All,
    };
    observe(&plain)
}

/// Either combinator, any timeout and `return_when`.
fn any_mode() -> impl Strategy<Value = Mode> {
    prop_oneof![
        any::<bool>().prop_map(|r| Mode::Gather {
            return_exceptions: r
        }),
        (prop::option::of(-1i8..=7), when())
            .prop_map(|(timeout, when)| Mode::Wait { timeout, when }),
    ]
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
        same_children(&obs, &as_plain_wait(&sc), "with the timeout against none")?;
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
        same_children(&obs, &as_plain_wait(&sc), "the gather against a plain wait")?;
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
    let mode = any_mode();
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
    let mode = any_mode();
    let interrupt = prop::option::of(prop_oneof![
        (0u8..=7).prop_map(Interrupt::Driver),
        (0u8..=7).prop_map(Interrupt::Gather),
    ]);
    check(0x5eed_0006, scenario(mode, interrupt), |sc| {
        run_and_compare(&sc)?;
        Ok(())
    });
}
