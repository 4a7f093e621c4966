//! What the benchmarks and their summary share.

use std::path::PathBuf;

/// Where criterion writes a `cargo bench` run's figures: `$CRITERION_HOME`,
/// else `$CARGO_TARGET_DIR/criterion`, else `target/criterion`. The
/// benchmarks write their own figures (inbox counters, bytes) beside
/// criterion's, and `examples/bench_summary.rs` reads them all from there.
pub fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"))
        .join("criterion")
}
