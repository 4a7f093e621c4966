//! Conformance coverage of the cross-thread rule families: every rule of
//! POLICY, LIFE, RUNNER, THREAD, XTHREAD, CONC, CHAIN and EXEC has a
//! conformance scenario — a threaded or fresh-process one
//! (`conformance/threaded/*.json`) or a single-thread one
//! (`conformance/scenarios/*.json`) naming it in its `rules` — or SPEC.md
//! says, under the rule's heading, why no Python program can observe it,
//! with exactly this line:
//!
//! ```text
//! - Conformance: not observable from Python (REASON)
//! ```
//!
//! A rule with that mark must have no scenario (the mark would be wrong), a
//! line that starts like the mark but is not exactly it is an error, and a
//! scenario must name only rules SPEC.md has. The checker is fed fixtures
//! below, so it can be seen to fail.

use common::spec::rule_heading;
use loopspec_check::conformance::read_json_dir;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The families whose rules the conformance kit must cover (the kit's
/// `coverage.FAMILIES`).
const FAMILIES: [&str; 8] = [
    "POLICY", "LIFE", "RUNNER", "THREAD", "XTHREAD", "CONC", "CHAIN", "EXEC",
];

const MARK_PREFIX: &str = "- Conformance:";
const MARK_START: &str = "- Conformance: not observable from Python (";

/// A rule of SPEC.md and its "not observable" mark, if any: `Ok(reason)`,
/// or `Err(line)` for a line that starts like a mark but is malformed.
#[derive(Debug, Clone, PartialEq)]
struct Rule {
    id: String,
    mark: Option<Result<String, String>>,
}

/// The rules of SPEC.md (`### ID: title`), each with the mark found
/// between its heading and the next heading.
fn parse_rules(spec: &str) -> Vec<Rule> {
    let mut rules: Vec<Rule> = Vec::new();
    let mut in_rule = false;
    for line in spec.lines() {
        if line.starts_with('#') {
            in_rule = false;
            if let Some((id, _)) = rule_heading(line) {
                rules.push(Rule {
                    id: id.to_string(),
                    mark: None,
                });
                in_rule = true;
            }
            continue;
        }
        if !in_rule || !line.starts_with(MARK_PREFIX) {
            continue;
        }
        let parsed = line
            .strip_prefix(MARK_START)
            .and_then(|rest| rest.strip_suffix(')'))
            .map(str::trim)
            .filter(|reason| !reason.is_empty())
            .map(String::from)
            .ok_or_else(|| line.to_string());
        if let Some(rule) = rules.last_mut() {
            // Two marks: the second one is an error.
            rule.mark = match &rule.mark {
                None => Some(parsed),
                Some(_) => Some(Err(format!("a second mark: {line}"))),
            };
        }
    }
    rules
}

/// Every problem: uncovered rules, wrong or malformed marks, scenarios
/// naming rules SPEC.md does not have. `scenarios` maps a scenario id to
/// the rules it names.
fn check(rules: &[Rule], scenarios: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    let known: BTreeSet<&str> = rules.iter().map(|r| r.id.as_str()).collect();
    let mut by_rule: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut problems = Vec::new();
    for (id, named) in scenarios {
        for r in named {
            if known.contains(r.as_str()) {
                by_rule.entry(r.as_str()).or_default().push(id.as_str());
            } else {
                problems.push(format!(
                    "scenario {id} names {r}, which SPEC.md does not have"
                ));
            }
        }
    }
    for rule in rules {
        let family = rule.id.split('-').next().unwrap_or("");
        let covered = by_rule.get(rule.id.as_str());
        match (&rule.mark, covered) {
            (Some(Err(line)), _) => problems.push(format!(
                "{}: malformed mark (expected `{MARK_START}REASON)`): {line}",
                rule.id
            )),
            (Some(Ok(_)), Some(ids)) => problems.push(format!(
                "{} is marked not observable from Python, but scenario {} names it",
                rule.id, ids[0]
            )),
            (None, None) if FAMILIES.contains(&family) => problems.push(format!(
                "{} has no conformance scenario and SPEC.md does not mark it \
                 `{MARK_START}REASON)`",
                rule.id
            )),
            _ => {}
        }
    }
    problems
}

/// Every corpus scenario's id and rules, threaded and single-thread.
fn corpus_rules(root: &Path) -> BTreeMap<String, Vec<String>> {
    let dirs = ["conformance/threaded", "conformance/scenarios"];
    let files = dirs
        .iter()
        .flat_map(|d| read_json_dir::<Value>(&root.join(d)));
    let strings = |v: &Value| -> Vec<String> {
        let all = v.as_array().expect("rules").iter();
        all.filter_map(Value::as_str).map(String::from).collect()
    };
    files
        .map(|(_, v)| {
            (
                v["id"].as_str().expect("id").to_string(),
                strings(&v["rules"]),
            )
        })
        .collect()
}

#[test]
fn every_cross_thread_rule_has_a_scenario_or_is_marked_not_observable() {
    let root = loopspec_check::repo_root();
    let rules = parse_rules(&common::spec::text());
    assert!(
        rules.len() > 50,
        "SPEC.md parsed to only {} rules",
        rules.len()
    );
    for family in FAMILIES {
        assert!(
            rules
                .iter()
                .any(|r| r.id.starts_with(&format!("{family}-"))),
            "SPEC.md has no {family} rule"
        );
    }
    let problems = check(&rules, &corpus_rules(&root));
    assert!(
        problems.is_empty(),
        "conformance coverage problems:\n  {}",
        problems.join("\n  ")
    );
}

// The checker must be able to fail: these feed it seeded mistakes.

const FIXTURE_SPEC: &str = "\
## CHAIN — linking
### CHAIN-1: covered
- Python: 3.11+
### CHAIN-2: marked
- Python: loopspec only
- Conformance: not observable from Python (a compile-time property)
### CHAIN-3: neither
text
### STOP-1: another family
text
## Rust mapping
- Conformance: not observable from Python (outside any rule)
";

fn scenarios(pairs: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
    pairs
        .iter()
        .map(|(id, rules)| {
            (
                id.to_string(),
                rules.iter().map(|r| r.to_string()).collect(),
            )
        })
        .collect()
}

#[test]
fn checker_reads_the_mark_under_its_rule_only() {
    let rules = parse_rules(FIXTURE_SPEC);
    let ids: Vec<&str> = rules.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["CHAIN-1", "CHAIN-2", "CHAIN-3", "STOP-1"]);
    assert_eq!(rules[0].mark, None);
    assert_eq!(rules[1].mark, Some(Ok("a compile-time property".into())));
    assert_eq!(rules[2].mark, None);
    assert_eq!(
        rules[3].mark, None,
        "a mark after a non-rule heading belongs to no rule"
    );
}

#[test]
fn checker_reports_a_rule_without_scenario_or_mark() {
    let rules = parse_rules(FIXTURE_SPEC);
    let problems = check(&rules, &scenarios(&[("chain-1-x", &["CHAIN-1"])]));
    assert_eq!(
        problems,
        [
            "CHAIN-3 has no conformance scenario and SPEC.md does not mark it \
          `- Conformance: not observable from Python (REASON)`"
        ],
        "STOP-1 is outside the families the kit must cover"
    );
    let covered = check(&rules, &scenarios(&[("c", &["CHAIN-1", "CHAIN-3"])]));
    assert!(covered.is_empty(), "{covered:?}");
}

#[test]
fn checker_reports_a_malformed_or_repeated_mark() {
    for bad in [
        "- Conformance: not observable from Python",
        "- Conformance: not observable from Python ()",
        "- Conformance: not observable (no reason given)",
        "- Conformance: not observable from Python (x) and more",
    ] {
        let spec = format!("### CHAIN-1: one\n{bad}\n");
        let problems = check(&parse_rules(&spec), &BTreeMap::new());
        assert_eq!(problems.len(), 1, "{bad}: {problems:?}");
        assert!(
            problems[0].starts_with("CHAIN-1: malformed mark"),
            "{problems:?}"
        );
    }
    let twice = "### CHAIN-1: one\n- Conformance: not observable from Python (a)\n\
                 - Conformance: not observable from Python (b)\n";
    let problems = check(&parse_rules(twice), &BTreeMap::new());
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("a second mark"), "{problems:?}");
}

#[test]
fn checker_reports_a_covered_mark_and_an_unknown_rule() {
    let rules = parse_rules(FIXTURE_SPEC);
    for (named, want) in [
        (
            ["CHAIN-1", "CHAIN-2", "CHAIN-3"],
            "CHAIN-2 is marked not observable from Python, but scenario c names it",
        ),
        (
            ["CHAIN-1", "CHAIN-3", "CHAIN-9"],
            "scenario c names CHAIN-9, which SPEC.md does not have",
        ),
    ] {
        assert_eq!(check(&rules, &scenarios(&[("c", &named)])), [want]);
    }
}
