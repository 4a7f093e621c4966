//! Tells `xloop_bench` (src/bin/xloop_bench.rs) which tokio it was built
//! with, for its JSON line: the version Cargo.lock resolved, as
//! `LOOPSPEC_CHECK_TOKIO_VERSION` ("unknown" without a lock file).

use std::path::Path;

fn main() {
    let lock = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());
    let text = std::fs::read_to_string(&lock).unwrap_or_default();
    let version = text
        .split("[[package]]")
        .find(|p| p.lines().any(|l| l.trim() == "name = \"tokio\""))
        .and_then(|p| p.lines().find_map(|l| l.trim().strip_prefix("version = ")))
        .map_or("unknown", |v| v.trim_matches('"'));
    println!("cargo:rustc-env=LOOPSPEC_CHECK_TOKIO_VERSION={version}");
}
