//! # loopspec-check
//!
//! The machinery that checks the reference loop `loopspec` against SPEC.md;
//! none of it is part of the loop, and it uses only the loop's public API.
//!
//! * [`fuzz`]: the operation interpreters the cargo-fuzz targets of `fuzz/`
//!   run, each checked against a small sequential model.
//! * [`oracle`]: the independent model of asyncio's iterations that the
//!   wait/gather properties compare loopspec with, and the runner of their
//!   scenarios on loopspec.
//! * [`conformance`]: the runners of the conformance kit's scenarios on
//!   loopspec — single-thread traces on the virtual clock, and threaded
//!   scenarios with real threads and the kit's judge — which the binaries
//!   `conformance` and `conformance_threaded` serve to the kit.
//!
//! The binary `xloop_bench` times the cross-thread workloads W1 and W2 on
//! loopspec and tokio for the kit's `bench` command.
//!
//! Its tests (`check/tests/`) run the conformance corpus, the differential
//! comparison with CPython, the fuzz corpus replay and the wait/gather
//! properties.

pub mod conformance;
pub mod fuzz;
pub mod oracle;

use std::path::{Path, PathBuf};

/// The repository's root (the loopspec package's directory): where
/// `SPEC.md`, `conformance/` and `fuzz/` are.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("check/ is inside the repository")
        .to_path_buf()
}

#[cfg(test)]
mod tests {
    /// The threaded runner reports its own package version as loopspec's
    /// (`loop_version` in its `hello` line): the two must stay equal.
    #[test]
    fn version_is_loopspecs() {
        let manifest = std::fs::read_to_string(super::repo_root().join("Cargo.toml"))
            .expect("read the root Cargo.toml");
        let package = manifest
            .split("[package]")
            .nth(1)
            .expect("a [package] section");
        let version = package
            .lines()
            .find_map(|l| l.strip_prefix("version = "))
            .expect("a version line")
            .trim_matches('"');
        assert_eq!(version, env!("CARGO_PKG_VERSION"));
    }
}
