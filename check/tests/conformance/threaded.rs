//! The threaded conformance corpus (`conformance/threaded/*.json`, format 2)
//! on loopspec, with real threads and without Python.
//!
//! Each scenario runs on loopspec's threaded runner
//! (`loopspec_check::conformance::threaded`, the interpreter
//! `loopspec-conformance run --runner-cmd` drives through the
//! `conformance_threaded` binary) in
//! the profiles of CPython 3.11, 3.13 and 3.15, and every run is judged as
//! the kit judges it (the same module ports `judge.py`): its outcome must be
//! one of the outcomes allowed for that Python minor — the scenario's
//! hand-written `allowed` group, else the outcomes CPython showed when the
//! scenario was recorded — and it must break none of the scenario's
//! invariants (no timed-out wait, no hang, no runner error among them).
//! Verdicts depend on allowed-outcome sets, never on timings.
//!
//! `conformance/expectations/loopspec.json` lists the known divergences
//! (scenario and Python minors, with the SPEC.md rule and the reason). A
//! scenario not listed must pass every run ([`RUNS`] per threaded scenario,
//! [`FRESH_RUNS`] per fresh-process one, [`FLOOD_RUNS`] per scenario that
//! floods the loop). One listed `FAIL` must still fail ([`KNOWN_RUNS`]
//! run), so a fixed divergence is noticed and its entry removed; one listed
//! `FLAKY` (a race loopspec loses only sometimes) runs once, and only a
//! runner error fails it.
//!
//! One test per scenario family (the id's first word); its `Rules:` line
//! lists every rule its scenarios name, and the test checks that the two
//! agree.

use super::{assert_checked, rules_line_of, spec_rule_ids};
use loopspec_check::conformance::known_divergences as known;
use loopspec_check::conformance::read_json_dir;
use loopspec_check::conformance::threaded::{
    DEFAULT_WAIT_TIMEOUT, Options, allowed_outcomes, applies, judge, run_once,
};
use loopspec_check::repo_root as root;
use serde_json::Value;
use std::collections::BTreeSet;

/// The CPython minors modelled here (profiles Py311, Py313, Py315).
const MINORS: [&str; 3] = ["3.11", "3.13", "3.15"];
/// Runs per threaded scenario that must pass.
const RUNS: usize = 20;
/// Runs per fresh-process scenario (each on a fresh main thread).
const FRESH_RUNS: usize = 2;
/// Runs per scenario with a `flood` (up to 900,000 submissions a run: about
/// a second and a half each in a debug build).
const FLOOD_RUNS: usize = 2;
/// Runs of a listed `FAIL` scenario, which must fail (a divergence is
/// structural: it shows in every run).
const KNOWN_RUNS: usize = 1;
/// The bound of each wait in those runs, in seconds: their waits may be the
/// ones that time out.
const KNOWN_WAIT_TIMEOUT: f64 = 2.0;

/// The threaded corpus: (file name, scenario), sorted by file name.
fn corpus() -> Vec<(String, Value)> {
    read_json_dir(&root().join("conformance/threaded"))
}

/// Runs `scenario` on `minor` up to `n` times; the first failing run's
/// description, if any (a run that ends the scenario stops the loop).
fn first_failure(
    file: &str,
    scenario: &Value,
    minor: &str,
    n: usize,
    wait_timeout: f64,
) -> Option<String> {
    let opts = Options::for_minor(minor, wait_timeout).expect("a modelled minor");
    let allowed = allowed_outcomes(scenario, minor).unwrap_or_default();
    for k in 0..n {
        let obs = run_once(scenario, &opts);
        let v = judge(scenario, &obs, &allowed).unwrap_or_else(|e| panic!("{file}: {e}"));
        if !v.passed() {
            let mut log: Vec<String> = obs.log.iter().take(60).map(Value::to_string).collect();
            if obs.log.len() > 60 {
                log.push(format!("... {} entries in all", obs.log.len()));
            }
            return Some(format!(
                "{file} on {minor}, run {k}: outcome {}allowed; violations: {:?}\n  outcome: {}\n  log:\n    {}",
                if v.allowed { "" } else { "NOT " },
                v.violations,
                v.outcome,
                log.join("\n    ")
            ));
        }
        if obs.ends_the_scenario() {
            break;
        }
    }
    None
}

/// Runs every scenario of family `family` (`"xthread"` for
/// `xthread-*.json`) on each modelled minor, after checking that the rules
/// those scenarios name are the test's Rules line.
fn check_family(family: &str) {
    let prefix = format!("{family}-");
    let scenarios: Vec<(String, Value)> = corpus()
        .into_iter()
        .filter(|(f, _)| f.starts_with(&prefix))
        .collect();
    assert!(!scenarios.is_empty(), "no {family} scenarios");
    let named: BTreeSet<&str> = scenarios
        .iter()
        .flat_map(|(_, s)| s["rules"].as_array().expect("rules").iter())
        .filter_map(Value::as_str)
        .collect();
    let source = include_str!("threaded.rs");
    let listed = rules_line_of(source, &format!("check_family({family:?})"));
    let listed: BTreeSet<&str> = listed.iter().map(String::as_str).collect();
    assert_eq!(
        named, listed,
        "the rules the {family} scenarios name differ from the test's Rules line"
    );
    let known = known();
    let mut problems = Vec::new();
    let mut checked = 0;
    for (file, sc) in &scenarios {
        let id = sc["id"].as_str().expect("id");
        assert_eq!(file, &format!("{id}.json"), "file name and id differ");
        let fresh = sc["process"].as_str() == Some("fresh");
        let floods = sc["program"].to_string().contains("\"flood\"");
        for minor in MINORS {
            if !applies(sc, minor) {
                continue;
            }
            let started = std::time::Instant::now();
            assert!(
                allowed_outcomes(sc, minor).is_some(),
                "{file}: nothing recorded or allowed for {minor}"
            );
            checked += 1;
            match known
                .get(&(id.to_string(), minor.to_string()))
                .map(String::as_str)
            {
                None => {
                    let n = if fresh {
                        FRESH_RUNS
                    } else if floods {
                        FLOOD_RUNS
                    } else {
                        RUNS
                    };
                    let wait = DEFAULT_WAIT_TIMEOUT;
                    if let Some(f) = first_failure(file, sc, minor, n, wait) {
                        problems.push(f);
                    }
                }
                Some("FLAKY") => {
                    let opts = Options::for_minor(minor, DEFAULT_WAIT_TIMEOUT).unwrap();
                    let obs = run_once(sc, &opts);
                    if let Some(e) = obs.runner_error {
                        problems.push(format!("{file} on {minor} (FLAKY): runner error: {e}"));
                    }
                }
                Some("CRASH") => {}
                Some(_) => {
                    if first_failure(file, sc, minor, KNOWN_RUNS, KNOWN_WAIT_TIMEOUT).is_none() {
                        problems.push(format!(
                            "{file} on {minor} passes: remove it from \
                             conformance/expectations/loopspec.json"
                        ));
                    }
                }
            }
            if std::env::var_os("LOOPSPEC_THREADED_TIMES").is_some() {
                eprintln!("{file} on {minor}: {:?}", started.elapsed());
            }
        }
    }
    assert_checked(family, checked, &problems);
}

/// Rules: CHAIN-1, CHAIN-2, CHAIN-3, CHAIN-4, CHAIN-5, CHAIN-6, CHAIN-7, EXEC-3, LIFE-9
#[test]
fn threaded_chain_scenarios_match_cpython() {
    check_family("chain");
}

/// Rules: CONC-1, CONC-2, CONC-3, CONC-4, CONC-5, CONC-6, FUT-4
#[test]
fn threaded_conc_scenarios_match_cpython() {
    check_family("conc");
}

/// Rules: CHAIN-2, CHAIN-3, CHAIN-4, EXEC-1, EXEC-2, EXEC-3, EXEC-4, EXEC-5, EXEC-6, EXEC-8,
/// Rules: LIFE-8
#[test]
fn threaded_exec_scenarios_match_cpython() {
    check_family("exec");
}

/// Rules: LIFE-1, LIFE-2, LIFE-3, LIFE-4, LIFE-5, LIFE-6, LIFE-7, LIFE-8, LIFE-9
#[test]
fn threaded_life_scenarios_match_cpython() {
    check_family("life");
}

/// Rules: POLICY-1, POLICY-2, POLICY-3, POLICY-4, POLICY-5, POLICY-6, POLICY-7, POLICY-8,
/// Rules: POLICY-9, POLICY-10, POLICY-11, POLICY-12, POLICY-13, POLICY-14
#[test]
fn threaded_policy_scenarios_match_cpython() {
    check_family("policy");
}

/// Rules: LIFE-5, POLICY-2, POLICY-6, POLICY-13, RUNNER-1, RUNNER-2, RUNNER-3, RUNNER-4,
/// Rules: RUNNER-5, RUNNER-6, THREAD-3, EXEC-7
#[test]
fn threaded_runner_scenarios_match_cpython() {
    check_family("runner");
}

/// Rules: SHIELD-2, SHIELD-4, CHAIN-4
#[test]
fn threaded_shield_scenarios_match_cpython() {
    check_family("shield");
}

/// Rules: TG-12, TG-13, CHAIN-3, XTHREAD-6, XTHREAD-8
#[test]
fn threaded_tg_scenarios_match_cpython() {
    check_family("tg");
}

/// Rules: TIMEOUT-10, CHAIN-4, XTHREAD-8
#[test]
fn threaded_timeout_scenarios_match_cpython() {
    check_family("timeout");
}

/// Rules: LIFE-5, LIFE-7, LIFE-8, POLICY-2, POLICY-12, THREAD-1, THREAD-3, THREAD-5, THREAD-7,
/// Rules: THREAD-8, THREAD-9, XTHREAD-1
#[test]
fn threaded_thread_scenarios_match_cpython() {
    check_family("thread");
}

/// Rules: CHAIN-3, CONC-6, LIFE-7, LIFE-8, POLICY-1, STOP-5, THREAD-1, XTHREAD-1, XTHREAD-2,
/// Rules: XTHREAD-3, XTHREAD-4, XTHREAD-5, XTHREAD-6, XTHREAD-7, XTHREAD-8, XTHREAD-9,
/// Rules: XTHREAD-10, XTHREAD-11
#[test]
fn threaded_xthread_scenarios_match_cpython() {
    check_family("xthread");
}

/// Every threaded corpus file names existing SPEC.md rules, is format 2,
/// and has something to compare with for each modelled minor it applies
/// to; every listed divergence names a scenario of the corpus (threaded or
/// single-thread), a modelled minor, a known status and existing rules.
#[test]
fn threaded_corpus_and_expectations_are_well_formed() {
    let rules = spec_rule_ids();
    let mut ids = BTreeSet::new();
    for (file, sc) in corpus() {
        assert_eq!(sc["format"].as_u64(), Some(2), "{file}: not format 2");
        for r in sc["rules"].as_array().expect("rules") {
            let r = r.as_str().expect("a rule id");
            assert!(rules.contains(r), "{file}: unknown rule {r}");
        }
        ids.insert(sc["id"].as_str().expect("id").to_string());
    }
    let single = root().join("conformance/scenarios");
    for e in std::fs::read_dir(single).expect("read scenarios").flatten() {
        if let Some(stem) = e.path().file_stem() {
            ids.insert(stem.to_string_lossy().into_owned());
        }
    }
    let path = root().join("conformance/expectations/loopspec.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for f in v["failures"].as_array().expect("failures") {
        let id = f["scenario"].as_str().expect("scenario");
        assert!(
            ids.contains(id),
            "loopspec.json lists {id}, which is not in the corpus"
        );
        let status = f["status"].as_str().unwrap_or("FAIL");
        assert!(
            ["FAIL", "TIMEOUT", "CRASH", "FLAKY"].contains(&status),
            "{id}: status {status}"
        );
        for m in f["python"].as_array().expect("python") {
            let m = m.as_str().expect("minor");
            assert!(
                Options::for_minor(m, 1.0).is_ok(),
                "{id}: minor {m} is not modelled"
            );
        }
        for r in f["rules"].as_array().expect("rules") {
            let r = r.as_str().expect("rule");
            assert!(rules.contains(r), "{id}: unknown rule {r}");
        }
        assert!(
            f["reason"].as_str().is_some_and(|r| r.len() > 20),
            "{id}: no reason"
        );
    }
}
