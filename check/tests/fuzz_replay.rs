//! Replays the fuzz corpora (`fuzz/corpus/ops`, `fuzz/corpus/chain`) and a
//! few fixed and generated programs through the interpreters of
//! `loopspec_check::fuzz`, on the stable toolchain, so that a regression the
//! fuzzer once found fails `cargo test` without nightly:
//! `cargo test -p loopspec-check --test fuzz_replay`.
//!
//! To replay one input (e.g. a crash from `fuzz/artifacts/`):
//! `LOOPSPEC_FUZZ_INPUT=path/to/input cargo test -p loopspec-check --test fuzz_replay replay_input_from_env -- --nocapture`
//! (the target is guessed from the path: `chain` if it contains "chain").
//! The bugs the fuzzer found have regression tests of their own, beside the
//! loop's other panic-safety tests (`tests/robustness/`).

use loopspec_check::fuzz::{self, run_chain, run_ops};
use std::fs;
use std::path::{Path, PathBuf};

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz")
        .join("corpus")
        .join(target);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs every file of a corpus, naming the file that fails.
fn replay(target: &str, run: fn(&[u8])) {
    fuzz::install_panic_hook();
    let files = corpus(target);
    assert!(!files.is_empty(), "the {target} corpus is empty");
    for f in files {
        let data = fs::read(&f).expect("read corpus file");
        if let Err(p) = std::panic::catch_unwind(|| run(&data)) {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("{} fails:\n{msg}", f.display());
        }
    }
}

/// A small deterministic generator (xorshift), so the generated programs
/// are the same on every run.
fn programs(seed: u64, count: usize, max_len: usize) -> impl Iterator<Item = Vec<u8>> {
    let mut x = seed | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..count).map(move |_| {
        let len = (next() as usize) % max_len;
        (0..len).map(|_| next() as u8).collect()
    })
}

/// Rules: LIFE-7, LIFE-8, SCHED-1, SCHED-2, SCHED-3, SCHED-4, SCHED-7, STOP-2, THREAD-1, THREAD-4, THREAD-5, XTHREAD-3, FUT-1
#[test]
fn fuzz_corpus_ops_replays_clean() {
    replay("ops", run_ops);
}

/// Rules: CHAIN-2, CHAIN-6, CHAIN-7, XTHREAD-3, XTHREAD-6, XTHREAD-7
#[test]
fn fuzz_corpus_chain_replays_clean() {
    replay("chain", run_chain);
}

/// Rules: LIFE-7, SCHED-1, THREAD-1, FUT-1, TASK-4
#[test]
fn fuzz_generated_ops_programs_hold_their_invariants() {
    fuzz::install_panic_hook();
    for data in programs(0x5eed_0001, 400, 160) {
        run_ops(&data);
    }
}

/// Programs of up to `OPS_MAX` operations each, where random bytes alone
/// make programs of one or two: runs, thread exits and closes after work
/// of every kind, the loop's own (`Send`) work included.
#[test]
fn fuzz_generated_long_ops_programs_hold_their_invariants() {
    fuzz::install_panic_hook();
    for data in programs(0x5eed_0004, 300, 400) {
        let program = fuzz::dense_ops_program(&data);
        if let Err(p) = std::panic::catch_unwind(|| run_ops(&program)) {
            let msg = p.downcast_ref::<String>().cloned().unwrap_or_default();
            panic!("generated program {program:?} fails:\n{msg}");
        }
    }
}

/// Rules: CHAIN-7, XTHREAD-6
#[test]
fn fuzz_generated_chain_programs_hold_their_invariants() {
    fuzz::install_panic_hook();
    for data in programs(0x5eed_0002, 150, 120) {
        run_chain(&data);
    }
}

/// The corpus is rewritten when the program format changes (a new `Op`
/// rescales arbitrary's discriminant): the encoder must give back bytes that
/// decode to the same program, for every kind of operation.
#[test]
fn fuzz_ops_programs_reencode_to_themselves() {
    let corpus = corpus("ops")
        .into_iter()
        .map(|f| fs::read(f).expect("read corpus file"));
    for data in corpus.chain(programs(0x5eed_0003, 2000, 400)) {
        let bytes = fuzz::reencode_ops(&data);
        assert_eq!(
            fuzz::describe_ops(&bytes),
            fuzz::describe_ops(&data),
            "a program and its encoding differ"
        );
        assert_eq!(
            fuzz::reencode_ops(&bytes),
            bytes,
            "the encoding is not canonical"
        );
    }
}

/// Rules: LIFE-1
#[test]
fn fuzz_empty_and_tiny_inputs_do_nothing_wrong() {
    fuzz::install_panic_hook();
    for data in [&[][..], &[0], &[0, 0], &[255; 3], &[1, 2, 3, 4, 5]] {
        run_ops(data);
        run_chain(data);
    }
}

#[test]
fn replay_input_from_env() {
    let Some(path) = std::env::var_os("LOOPSPEC_FUZZ_INPUT") else {
        return;
    };
    fuzz::install_panic_hook();
    let data = fs::read(&path).expect("read LOOPSPEC_FUZZ_INPUT");
    let p = PathBuf::from(path);
    if p.to_string_lossy().contains("chain") {
        println!("{}", fuzz::describe_chain(&data));
        run_chain(&data);
    } else {
        println!("{}", fuzz::describe_ops(&data));
        run_ops(&data);
    }
}
