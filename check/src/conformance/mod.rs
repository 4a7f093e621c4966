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

use serde::de::DeserializeOwned;
use serde_json::Value;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::path::Path;

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

/// Reads every `.json` file of `dir` as a `T`, sorted by file name: (file
/// name, value).
pub fn read_json_dir<T: DeserializeOwned>(dir: &Path) -> Vec<(String, T)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let parse = |p: std::path::PathBuf| {
        let text = std::fs::read_to_string(&p).expect("read a corpus file");
        let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        (p.file_name().unwrap().to_string_lossy().into_owned(), v)
    };
    files.into_iter().map(parse).collect()
}

/// Every number as a float, recursively, so that `1` and `1.0` compare
/// equal (the kit's `normalize`).
pub fn normalize(v: &Value) -> Value {
    match v {
        Value::Number(n) => n
            .as_f64()
            .and_then(serde_json::Number::from_f64)
            .map_or_else(|| v.clone(), Value::Number),
        Value::Array(a) => Value::Array(a.iter().map(normalize).collect()),
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, x)| (k.clone(), normalize(x))).collect())
        }
        other => other.clone(),
    }
}

thread_local! {
    /// Set while a scenario raises on purpose, so the panic hook stays quiet.
    static PLANNED: Cell<bool> = const { Cell::new(false) };
}

/// Panics with `payload` on purpose (a scenario's `raise` in a callback: an
/// exception there is a panic in loopspec), without the panic hook's report.
pub(crate) fn planned_panic(payload: String) -> ! {
    install_quiet_hook();
    PLANNED.with(|p| p.set(true));
    std::panic::panic_any(payload)
}

/// Installs (once) a panic hook that is silent for [`planned_panic`]s and
/// hands any other panic to the hook installed before.
pub(crate) fn install_quiet_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !PLANNED.with(|p| p.replace(false)) {
                default(info);
            }
        }));
    });
}
