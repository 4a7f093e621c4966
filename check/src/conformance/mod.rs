//! loopspec's runners of the conformance kit's scenarios
//! (`conformance/FORMAT.md`).
//!
//! * [`single`]: format 1, single-thread programs for one loop, run on the
//!   virtual clock; their traces must equal CPython's.
//! * [`threaded`]: format 2, threaded and fresh-process programs, run with
//!   real threads; the kit's judge (ported) decides whether a run's
//!   outcome is allowed.
//! * [`known_divergences`]: what `conformance/expectations/loopspec.json`
//!   lists as loopspec's known divergences, for both.

pub mod single;
pub mod threaded;

use serde_json::Value;
use std::collections::BTreeMap;

/// The known divergences of `conformance/expectations/loopspec.json`: the
/// status (`FAIL`, the default, `FLAKY` or `CRASH`) of each listed
/// (scenario id, Python version).
pub fn known_divergences() -> BTreeMap<(String, String), String> {
    let path = crate::repo_root().join("conformance/expectations/loopspec.json");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let v: Value = serde_json::from_str(&text).expect("parse loopspec.json");
    let mut out = BTreeMap::new();
    for f in v["failures"].as_array().expect("failures") {
        let id = f["scenario"].as_str().expect("scenario").to_string();
        let status = f["status"].as_str().unwrap_or("FAIL").to_string();
        for p in f["python"].as_array().expect("python") {
            out.insert(
                (id.clone(), p.as_str().expect("version").to_string()),
                status.clone(),
            );
        }
    }
    out
}
