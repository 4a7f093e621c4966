//! SPEC.md, as the tests that check it against the code read it.

use std::path::PathBuf;

/// The repository's root, where SPEC.md is.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// SPEC.md's text.
pub fn text() -> String {
    std::fs::read_to_string(repo_root().join("SPEC.md")).expect("read SPEC.md")
}

/// Whether `s` is a rule ID: `AREA-n`, the area in capitals.
pub fn is_rule_id(s: &str) -> bool {
    let Some((area, n)) = s.split_once('-') else {
        return false;
    };
    !area.is_empty()
        && area.chars().all(|c| c.is_ascii_uppercase())
        && !n.is_empty()
        && n.chars().all(|c| c.is_ascii_digit())
}

/// The rule of a heading line `### ID: title`: (ID, title).
pub fn rule_heading(line: &str) -> Option<(&str, &str)> {
    let (id, title) = line.strip_prefix("### ")?.split_once(':')?;
    is_rule_id(id.trim()).then(|| (id.trim(), title.trim()))
}

/// The IDs of every rule of `spec`, in order.
pub fn rule_ids(spec: &str) -> Vec<String> {
    spec.lines()
        .filter_map(rule_heading)
        .map(|(id, _)| id.to_string())
        .collect()
}
