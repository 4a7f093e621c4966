//! The conformance corpus (`conformance/scenarios/*.json`) against loopspec.
//!
//! Each corpus file is a scenario (conformance/FORMAT.md) with the traces
//! CPython gave for it, per group of Python versions. For every recorded
//! version loopspec models (3.11, 3.12, 3.13: profiles `Py311`, `Py312`,
//! `Py313`), the scenario runs on loopspec's virtual clock in that profile and
//! its trace must equal CPython's — events, times and final states. No Python
//! is needed: the traces are in the files (`conformance/python/record.py`
//! re-records them).
//!
//! `conformance/expectations/loopspec.json` lists the known divergences
//! (scenario and versions, with the reason): those must still differ, so a
//! fixed divergence is noticed and its entry removed, as web-platform-tests
//! do with expectation files.
//!
//! One test per rule area; its `Rules:` line lists the rules of the area the
//! corpus has scenarios for, and the test checks each one has a scenario.

use super::{assert_checked, rules_line_of, spec_rule_ids};
use loopspec_check::conformance::known_divergences;
use loopspec_check::conformance::single::{
    CorpusEntry, compare, expected_trace, load_corpus, profile_for, run,
};
use loopspec_check::repo_root as root;
use std::collections::{BTreeMap, BTreeSet};

/// (scenario, version) pairs loopspec is known to get wrong, and whether
/// running it crashes the process (status `CRASH`: not run).
fn known_failures() -> BTreeMap<(String, String), bool> {
    known_divergences()
        .into_iter()
        .map(|(k, status)| (k, status == "CRASH"))
        .collect()
}

/// Runs every corpus entry that names a rule of `area` (e.g. `"STOP"`),
/// after checking that the rules of `area` those entries name are the
/// test's Rules line.
fn check_area(area: &str) {
    let corpus = load_corpus(&root().join("conformance/scenarios"));
    let known = known_failures();
    let prefix = format!("{area}-");
    let entries: Vec<&(String, CorpusEntry)> = corpus
        .iter()
        .filter(|(_, e)| e.rules.iter().any(|r| r.starts_with(&prefix)))
        .collect();
    let covered: BTreeSet<&str> = entries
        .iter()
        .flat_map(|(_, e)| e.rules.iter().map(String::as_str))
        .filter(|r| r.starts_with(&prefix))
        .collect();
    let listed = rules_line_of(include_str!("corpus.rs"), &format!("check_area({area:?})"));
    let listed: BTreeSet<&str> = listed.iter().map(String::as_str).collect();
    assert_eq!(
        covered, listed,
        "the rules of {area} the corpus covers differ from the test's Rules line"
    );
    let mut failures = Vec::new();
    let mut checked = 0;
    for (file, entry) in entries {
        assert!(!entry.expect.is_empty(), "{file}: no recorded trace");
        for exp in &entry.expect {
            for version in &exp.python {
                let Some(profile) = profile_for(version) else {
                    continue; // 3.10: not modelled
                };
                let known = known.get(&(entry.id.clone(), version.clone()));
                if known == Some(&true) {
                    continue; // a known crash
                }
                let is_known = known.is_some();
                let trace = run(&entry.scenario, profile);
                let diff = compare(&expected_trace(exp), &trace);
                checked += 1;
                match (diff, is_known) {
                    (None, false) | (Some(_), true) => {}
                    (Some(d), false) => failures.push(format!(
                        "{file} ({}) on the {version} profile differs from CPython {}:\n{d}",
                        entry.rules.join(", "),
                        exp.recorded_with
                    )),
                    (None, true) => failures.push(format!(
                        "{file} on the {version} profile now matches CPython: remove it \
                         from conformance/expectations/loopspec.json"
                    )),
                }
            }
        }
    }
    assert_checked(area, checked, &failures);
}

/// Rules: STOP-1, STOP-2, STOP-3, STOP-4, STOP-5, STOP-6, STOP-7, STOP-8
#[test]
fn corpus_stop_scenarios_match_cpython() {
    check_area("STOP");
}

/// Rules: SCHED-1, SCHED-2, SCHED-3, SCHED-4, SCHED-5, SCHED-6, SCHED-7, SCHED-8
#[test]
fn corpus_sched_scenarios_match_cpython() {
    check_area("SCHED");
}

/// Rules: WAIT-1, WAIT-2, WAIT-3, WAIT-4, WAIT-5
#[test]
fn corpus_wait_scenarios_match_cpython() {
    check_area("WAIT");
}

/// Rules: GATHER-1, GATHER-2, GATHER-3, GATHER-4, GATHER-5, GATHER-6, GATHER-7, GATHER-8, GATHER-9
#[test]
fn corpus_gather_scenarios_match_cpython() {
    check_area("GATHER");
}

/// Rules: FUT-1, FUT-2, FUT-3, FUT-4, FUT-5, FUT-6, FUT-9
#[test]
fn corpus_future_scenarios_match_cpython() {
    check_area("FUT");
}

/// Rules: TASK-1, TASK-3, TASK-4, TASK-5, TASK-6, TASK-7, TASK-10, TASK-11, TASK-12
#[test]
fn corpus_task_scenarios_match_cpython() {
    check_area("TASK");
}

/// Rules: WAITFOR-1, WAITFOR-2, WAITFOR-3, WAITFOR-4, WAITFOR-5
#[test]
fn corpus_wait_for_scenarios_match_cpython() {
    check_area("WAITFOR");
}

/// Rules: ASCOMP-1, ASCOMP-2, ASCOMP-3
#[test]
fn corpus_as_completed_scenarios_match_cpython() {
    check_area("ASCOMP");
}

/// Rules: TIMEOUT-1, TIMEOUT-3, TIMEOUT-4, TIMEOUT-5, TIMEOUT-7, TIMEOUT-8
#[test]
fn corpus_timeout_scenarios_match_cpython() {
    check_area("TIMEOUT");
}

/// Rules: TG-1, TG-2, TG-3, TG-5, TG-7, TG-8, TG-9, TG-10
#[test]
fn corpus_taskgroup_scenarios_match_cpython() {
    check_area("TG");
}

/// Rules: SHIELD-1, SHIELD-2
#[test]
fn corpus_shield_scenarios_match_cpython() {
    check_area("SHIELD");
}

/// Rules: CLOCK-2
#[test]
fn corpus_clock_scenarios_match_cpython() {
    check_area("CLOCK");
}

/// Rules: XTHREAD-1
#[test]
fn corpus_xthread_scenarios_match_cpython() {
    check_area("XTHREAD");
}

/// Every corpus file names existing SPEC.md rules, has a recorded trace for
/// CPython 3.11, and its file name is its id.
#[test]
fn corpus_files_are_well_formed() {
    let rules = spec_rule_ids();
    let corpus = load_corpus(&root().join("conformance/scenarios"));
    assert!(!corpus.is_empty());
    for (file, e) in &corpus {
        assert_eq!(file, &format!("{}.json", e.id), "file name and id differ");
        assert!(!e.rules.is_empty(), "{file}: no rules");
        for r in &e.rules {
            assert!(rules.contains(r), "{file}: unknown rule {r}");
        }
        let has_311 = e
            .expect
            .iter()
            .any(|x| x.python.iter().any(|v| v == "3.11"));
        assert!(has_311, "{file}: no trace recorded for CPython 3.11");
        for x in &e.expect {
            assert!(
                !x.recorded_with.is_empty(),
                "{file}: recorded_with is empty"
            );
        }
    }
}
