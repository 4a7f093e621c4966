//! Rule coverage: every SPEC.md rule is named by at least one test, every
//! rule a test names exists, and the rule → test table at the end of SPEC.md
//! is current.
//!
//! A test names the rules it checks in a doc line directly above it (with its
//! other attributes): `/// Rules: STOP-2, STOP-1`. The line counts only on a
//! function marked `#[test]` (or `#[tokio::test]`). The tests are those of
//! both packages: loopspec's (`tests/`, `src/`) and loopspec-check's
//! (`check/`); the table names each by its test target and module path, the
//! way `cargo test --test TARGET PATH` selects it, with `check/` before the
//! targets of loopspec-check: `loop::stop::run_forever_...`,
//! `check/differential::random_scenarios_match_cpython`.
//!
//! `LOOPSPEC_BLESS=1 cargo test --test spec_coverage` rewrites the table.

use common::spec::{is_rule_id, rule_heading};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

const TABLE_BEGIN: &str = "<!-- BEGIN RULE TABLE -->";
const TABLE_END: &str = "<!-- END RULE TABLE -->";

/// A rule heading of SPEC.md: `### ID: title`.
#[derive(Debug, Clone, PartialEq)]
struct Rule {
    id: String,
    title: String,
}

/// A test that names rules.
#[derive(Debug, Clone, PartialEq)]
struct Marker {
    /// `file::function`
    test: String,
    ids: Vec<String>,
    /// Whether the function carries a test attribute.
    is_test: bool,
}

fn parse_rules(spec: &str) -> Vec<Rule> {
    spec.lines()
        .filter_map(rule_heading)
        .map(|(id, title)| Rule {
            id: id.to_string(),
            title: title.to_string(),
        })
        .collect()
}

/// Finds `/// Rules:` markers in one source file.
fn parse_markers(file_label: &str, source: &str) -> Vec<Marker> {
    let mut out = Vec::new();
    let mut block: Vec<&str> = Vec::new();
    for line in source.lines() {
        let t = line.trim();
        if t.starts_with("#[") || t.starts_with("///") || t.starts_with("//") {
            block.push(t);
            continue;
        }
        if let Some(name) = fn_name(t) {
            let ids: Vec<String> = block
                .iter()
                .filter_map(|l| l.strip_prefix("///"))
                .filter_map(|l| l.trim().strip_prefix("Rules:"))
                .flat_map(|ids| {
                    ids.split([',', ' '])
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect::<Vec<_>>()
                })
                .collect();
            if !ids.is_empty() {
                let is_test = block
                    .iter()
                    .any(|l| *l == "#[test]" || l.starts_with("#[tokio::test"));
                out.push(Marker {
                    test: format!("{file_label}::{name}"),
                    ids,
                    is_test,
                });
            }
        }
        block.clear();
    }
    out
}

fn fn_name(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("pub ").unwrap_or(line);
    let rest = rest.strip_prefix("async ").unwrap_or(rest);
    let rest = rest.strip_prefix("fn ")?;
    let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_'))?;
    Some(&rest[..end])
}

/// Every problem: rules without tests, unknown rules, markers not on tests.
fn check(rules: &[Rule], markers: &[Marker]) -> Vec<String> {
    let known: BTreeSet<&str> = rules.iter().map(|r| r.id.as_str()).collect();
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for r in rules {
        if !seen.insert(r.id.as_str()) {
            problems.push(format!("rule {} appears twice in SPEC.md", r.id));
        }
    }
    let mut covered = BTreeSet::new();
    for m in markers {
        if !m.is_test {
            problems.push(format!(
                "{} names rules but is not a #[test] function",
                m.test
            ));
            continue;
        }
        for id in &m.ids {
            if !is_rule_id(id) {
                problems.push(format!("{} names `{id}`, which is not a rule ID", m.test));
            } else if !known.contains(id.as_str()) {
                problems.push(format!(
                    "{} names {id}, which SPEC.md does not have",
                    m.test
                ));
            } else {
                covered.insert(id.as_str());
            }
        }
    }
    for r in rules {
        if !covered.contains(r.id.as_str()) {
            problems.push(format!("rule {} has no test naming it", r.id));
        }
    }
    problems
}

fn render_table(rules: &[Rule], markers: &[Marker]) -> String {
    let mut by_rule: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for m in markers.iter().filter(|m| m.is_test) {
        for id in &m.ids {
            by_rule
                .entry(id.as_str())
                .or_default()
                .push(m.test.as_str());
        }
    }
    let mut out = String::from("| Rule | Title | Tests |\n|---|---|---|\n");
    for r in rules {
        let mut tests = by_rule.get(r.id.as_str()).cloned().unwrap_or_default();
        tests.sort();
        tests.dedup();
        let tests: Vec<String> = tests.iter().map(|t| format!("`{t}`")).collect();
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            r.id,
            r.title.replace('|', "\\|"),
            tests.join("<br>")
        ));
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// How the table names the tests of the file at `rel` (relative to the
/// repository): an integration test's target and module path (`tests/loop/
/// stop.rs` is `loop::stop`, `tests/interop.rs` is `interop`, and
/// `check/tests/conformance/corpus.rs` is `check/conformance::corpus`), or
/// the path of any other file.
fn label(rel: &Path) -> String {
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let (prefix, rest) = match parts.as_slice() {
        [t, rest @ ..] if t == "tests" => ("", rest),
        [c, t, rest @ ..] if c == "check" && t == "tests" => ("check/", rest),
        _ => return rel.to_string_lossy().into_owned(),
    };
    let mut path: Vec<&str> = rest
        .iter()
        .map(|p| p.strip_suffix(".rs").unwrap_or(p))
        .collect();
    if path.len() > 1 && matches!(path.last(), Some(&"main" | &"mod")) {
        path.pop();
    }
    format!("{prefix}{}", path.join("::"))
}

fn all_markers() -> Vec<Marker> {
    let root = root();
    let mut files = Vec::new();
    for dir in ["tests", "src", "check", "fuzz", "conformance"] {
        rust_files(&root.join(dir), &mut files);
    }
    let mut markers = Vec::new();
    for f in files {
        if f.ends_with("spec_coverage.rs") {
            continue; // this file's own fixtures are not tests of the spec
        }
        let rel = f.strip_prefix(&root).unwrap_or(&f);
        let label = label(rel);
        let src = fs::read_to_string(&f).expect("read source");
        markers.extend(parse_markers(&label, &src));
    }
    markers
}

#[test]
fn spec_every_rule_has_a_test_and_every_test_names_a_rule() {
    let spec = common::spec::text();
    let rules = parse_rules(&spec);
    assert!(
        rules.len() > 50,
        "SPEC.md parsed to only {} rules",
        rules.len()
    );
    let problems = check(&rules, &all_markers());
    assert!(
        problems.is_empty(),
        "rule coverage problems:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn spec_rule_table_is_current() {
    let spec = common::spec::text();
    let rules = parse_rules(&spec);
    let table = render_table(&rules, &all_markers());
    let (before, rest) = spec.split_once(TABLE_BEGIN).expect("table begin marker");
    let (_, after) = rest.split_once(TABLE_END).expect("table end marker");
    let wanted = format!("{before}{TABLE_BEGIN}\n{table}{TABLE_END}{after}");
    if wanted == spec {
        return;
    }
    if std::env::var_os("LOOPSPEC_BLESS").is_some() {
        fs::write(root().join("SPEC.md"), wanted).expect("write SPEC.md");
    } else {
        panic!(
            "the rule → test table in SPEC.md is stale; run \
             `LOOPSPEC_BLESS=1 cargo test --test spec_coverage` and commit SPEC.md"
        );
    }
}

// The checker itself must be able to fail: these feed it mistakes made on
// purpose.

const FIXTURE_SPEC: &str = "\
### AREA-1: first rule
text
### AREA-2: second rule
";

/// Each kind of problem: (SPEC.md, a test file, the problems the checker
/// reports).
const MISTAKES: &[(&str, &str, &[&str])] = &[
    (
        FIXTURE_SPEC,
        "/// Rules: AREA-1\n#[test]\nfn a_test() {}\n",
        &["rule AREA-2 has no test naming it"],
    ),
    (
        FIXTURE_SPEC,
        "#[test]\n/// Rules: AREA-1, AREA-2, AREA-9\nfn a_test() {}\n",
        &["t::a_test names AREA-9, which SPEC.md does not have"],
    ),
    (
        FIXTURE_SPEC,
        "/// Rules: AREA-1, AREA-2\nfn helper() {}\n",
        &[
            "t::helper names rules but is not a #[test] function",
            "rule AREA-1 has no test naming it",
            "rule AREA-2 has no test naming it",
        ],
    ),
    (
        "### AREA-1: a\n### AREA-1: b\n",
        "/// Rules: AREA-1\n#[test]\nfn t1() {}\n",
        &["rule AREA-1 appears twice in SPEC.md"],
    ),
];

#[test]
fn checker_reports_each_kind_of_mistake() {
    for (spec, source, want) in MISTAKES {
        let problems = check(&parse_rules(spec), &parse_markers("t", source));
        assert_eq!(problems, *want, "{source:?}");
    }
}

#[test]
fn checker_labels_tests_by_target_and_module() {
    for (path, want) in [
        ("tests/interop.rs", "interop"),
        ("tests/loop/main.rs", "loop"),
        ("tests/loop/stop.rs", "loop::stop"),
        ("check/tests/differential.rs", "check/differential"),
        (
            "check/tests/conformance/corpus.rs",
            "check/conformance::corpus",
        ),
        ("src/inbox.rs", "src/inbox.rs"),
    ] {
        assert_eq!(label(Path::new(path)), want, "{path}");
    }
}

#[test]
fn checker_table_lists_tests_per_rule() {
    let rules = parse_rules(FIXTURE_SPEC);
    let markers = parse_markers(
        "t",
        "/// Rules: AREA-2\n#[test]\nfn b() {}\n/// Rules: AREA-2, AREA-1\n#[test]\nfn a() {}\n",
    );
    let table = render_table(&rules, &markers);
    assert!(table.contains("| AREA-1 | first rule | `t::a` |"));
    assert!(table.contains("| AREA-2 | second rule | `t::a`<br>`t::b` |"));
}
