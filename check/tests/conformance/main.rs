//! The conformance kit's corpora on loopspec, without Python: the
//! single-thread traces CPython recorded (`corpus`), the threaded and
//! fresh-process scenarios judged as the kit judges them (`threaded`), and
//! the coverage of the cross-thread rule families by scenarios
//! (`coverage`).

mod corpus;
mod coverage;
mod threaded;

use std::collections::BTreeSet;

/// The rule IDs of SPEC.md (its `### ID: title` headings).
fn spec_rule_ids() -> BTreeSet<String> {
    common::spec::rule_ids(&common::spec::text())
        .into_iter()
        .collect()
}

/// The rules that the `/// Rules:` lines above the test containing `call`
/// name, in `source` (that test's file). A corpus test checks that these —
/// what `tests/spec_coverage.rs` reads — are exactly the rules its
/// scenarios name, so the list is written once, in the Rules line.
fn rules_line_of(source: &str, call: &str) -> BTreeSet<String> {
    let lines: Vec<&str> = source.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.trim() == format!("{call};"))
        .unwrap_or_else(|| panic!("no test calls {call}"));
    lines[..at]
        .iter()
        .rev()
        .skip_while(|l| !l.trim().starts_with("///"))
        .take_while(|l| l.trim().starts_with("///"))
        .filter_map(|l| l.trim().strip_prefix("/// Rules:"))
        .flat_map(|ids| ids.split(',').map(|id| id.trim().to_string()))
        .filter(|id| !id.is_empty())
        .collect()
}

/// Fails listing every problem, or if no scenario of `what` was checked.
fn assert_checked(what: &str, checked: usize, problems: &[String]) {
    assert!(checked > 0, "no scenario of {what} was checked");
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}
