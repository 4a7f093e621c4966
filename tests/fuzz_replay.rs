//! Replays the fuzz corpora (`fuzz/corpus/ops`, `fuzz/corpus/chain`) and a
//! few fixed and generated programs through the interpreters of
//! `loopspec::fuzz`, on the stable toolchain, so that a regression the fuzzer
//! once found fails `cargo test` without nightly.
//!
//! Needs the `fuzzing` feature:
//! `cargo test --features fuzzing --test fuzz_replay`.
//! To replay one input (e.g. a crash from `fuzz/artifacts/`):
//! `LOOPSPEC_FUZZ_INPUT=path/to/input cargo test --features fuzzing --test fuzz_replay replay_input_from_env -- --nocapture`
//! (the target is guessed from the path: `chain` if it contains "chain").
#![cfg(feature = "fuzzing")]

mod common;

use common::{DropCount, Holding, PanicOnDrop, capture_exceptions, run_once, vloop};
use loopspec::Error;
use loopspec::fuzz::{run_chain, run_ops};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
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
    loopspec::fuzz::install_panic_hook();
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
    loopspec::fuzz::install_panic_hook();
    for data in programs(0x5eed_0001, 400, 160) {
        run_ops(&data);
    }
}

/// Rules: CHAIN-7, XTHREAD-6
#[test]
fn fuzz_generated_chain_programs_hold_their_invariants() {
    loopspec::fuzz::install_panic_hook();
    for data in programs(0x5eed_0002, 150, 120) {
        run_chain(&data);
    }
}

/// Rules: LIFE-1
#[test]
fn fuzz_empty_and_tiny_inputs_do_nothing_wrong() {
    loopspec::fuzz::install_panic_hook();
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
    loopspec::fuzz::install_panic_hook();
    let data = fs::read(&path).expect("read LOOPSPEC_FUZZ_INPUT");
    let p = PathBuf::from(path);
    if p.to_string_lossy().contains("chain") {
        println!("{}", loopspec::fuzz::describe_chain(&data));
        run_chain(&data);
    } else {
        println!("{}", loopspec::fuzz::describe_ops(&data));
        run_ops(&data);
    }
}

// ---------------------------------------------------------------------------
// Regressions: bugs the fuzzer (or probing for it) found, now fixed (see
// "Bugs found" in `src/fuzz.rs`). Each asserts the specified behaviour.
// ---------------------------------------------------------------------------

/// User data whose `Drop` panics, even while a panic unwinds (the worst a
/// user type can do).
struct AlwaysPanicOnDrop(&'static str);

impl Drop for AlwaysPanicOnDrop {
    fn drop(&mut self) {
        panic!("{}", self.0);
    }
}

/// Runs `scenario` in a child process (this test binary, filtered to
/// `name`) when it could abort the process, and fails if the child died.
fn survives_in_a_child(name: &str, scenario: fn()) {
    if std::env::var("LOOPSPEC_CHILD").as_deref() == Ok(name) {
        loopspec::fuzz::install_panic_hook();
        scenario();
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--test-threads=1", "--nocapture"])
        .env("LOOPSPEC_CHILD", name)
        .output()
        .expect("run the child");
    assert!(
        out.status.success(),
        "the process died ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(
                |l| !l.trim_start().starts_with(|c: char| c.is_ascii_digit())
                    && !l.trim_start().starts_with("at ")
            )
            .take(12)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Bug 1, fixed (found by `run_ops`): a panicking `Drop` of one queued
/// callback at `close()` stops the rest of the clean-up: the pending task is
/// neither destroyed nor reported.
/// Rules: LIFE-7, TASK-8
#[test]
fn regression_close_with_a_panicking_drop_still_destroys_and_reports_pending_tasks() {
    loopspec::fuzz::install_panic_hook();
    let lp = vloop();
    let seen = capture_exceptions(&lp);
    let dropped = Arc::new(AtomicUsize::new(0));
    let task = lp
        .create_task(Holding {
            fut: Box::pin(async {
                loopspec::sleep(100.0).await?;
                Ok(1)
            }),
            _data: DropCount(dropped.clone()),
        })
        .unwrap();
    run_once(&lp);
    let data = PanicOnDrop(loopspec::fuzz::INTENTIONAL_DROP_PANIC);
    lp.call_soon(move || {
        let _d = &data;
    })
    .unwrap();
    lp.close().unwrap();
    let messages: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|c| c.message.clone())
        .collect();
    assert!(
        messages
            .iter()
            .any(|m| m == "Exception while dropping queued work"),
        "{messages:?}"
    );
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        1,
        "LIFE-7: close() dropped the pending task's future"
    );
    assert!(
        messages
            .iter()
            .any(|m| m == "Task was destroyed but it is pending!"),
        "TASK-8: the pending task is reported: {messages:?}"
    );
    drop(task);
}

/// Bug 1, fixed (found by `run_chain`): when a destroyed task's future
/// panics in `Drop`, the task keeps the futures it awaited (a reference
/// cycle), so the concurrent future of `run_coroutine_threadsafe` never
/// completes.
/// Rules: XTHREAD-6, LIFE-7
#[test]
fn regression_close_of_a_task_whose_future_panics_in_drop_still_fails_its_concurrent_future() {
    loopspec::fuzz::install_panic_hook();
    let lp = vloop();
    let _seen = capture_exceptions(&lp);
    let cf = loopspec::run_coroutine_threadsafe(
        || Holding {
            fut: Box::pin(async {
                loopspec::sleep(100.0).await?;
                Ok(1)
            }),
            _data: PanicOnDrop(loopspec::fuzz::INTENTIONAL_DROP_PANIC),
        },
        &lp,
    )
    .unwrap();
    run_once(&lp);
    run_once(&lp);
    lp.close().unwrap();
    assert_eq!(
        cf.result(Some(std::time::Duration::ZERO)),
        Err(Error::Closed),
        "XTHREAD-6: the task was destroyed, its concurrent future must fail"
    );
}

/// Bug 1, fixed (probing): two queued callbacks whose `Drop` panics make
/// `close()` panic while unwinding, which aborts the process.
/// Rules: LIFE-7
#[test]
fn regression_close_with_two_panicking_drops_does_not_abort() {
    survives_in_a_child(
        "regression_close_with_two_panicking_drops_does_not_abort",
        || {
            let lp = vloop();
            let _seen = capture_exceptions(&lp);
            let (a, b) = (AlwaysPanicOnDrop("first"), AlwaysPanicOnDrop("second"));
            lp.call_soon(move || {
                let _a = &a;
            })
            .unwrap();
            lp.call_soon(move || {
                let _b = &b;
            })
            .unwrap();
            assert_eq!(lp.close(), Ok(()));
        },
    );
}

/// Bug 2, fixed (probing for `run_ops`'s thread exits): a home thread that
/// exits drops its loop-bound work in a thread-local destructor; a
/// panicking `Drop` there aborts the process.
/// Rules: THREAD-4
#[test]
fn regression_home_thread_exit_with_a_panicking_drop_does_not_abort() {
    survives_in_a_child(
        "regression_home_thread_exit_with_a_panicking_drop_does_not_abort",
        || {
            let lp = vloop();
            let _seen = capture_exceptions(&lp);
            let remote = lp.clone();
            let joined = std::thread::spawn(move || {
                let data = PanicOnDrop("boom at thread exit");
                remote
                    .call_soon(move || {
                        let _d = &data;
                    })
                    .unwrap();
            })
            .join();
            assert!(joined.is_ok());
            lp.close().unwrap();
        },
    );
}

/// Bug 3, fixed (found by `run_ops` and `run_chain`): cancelling a
/// `call_soon_threadsafe` handle drops the callback inside `cancel()`, so
/// its panicking `Drop` comes out of `cancel()` — in whichever thread
/// cancels.
/// Rules: XTHREAD-5, SCHED-3
#[test]
fn regression_cancel_of_a_threadsafe_handle_does_not_raise_the_callbacks_drop_panic() {
    loopspec::fuzz::install_panic_hook();
    let lp = vloop();
    let data = PanicOnDrop(loopspec::fuzz::INTENTIONAL_DROP_PANIC);
    let h = lp
        .call_soon_threadsafe(move || {
            let _d = &data;
        })
        .unwrap();
    let cancelled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| h.cancel()));
    assert!(cancelled.is_ok(), "Handle::cancel() panicked");
    assert!(h.cancelled());
    run_once(&lp);
    lp.close().unwrap();
}

/// Bug 4, fixed (found by `run_ops`): the iteration drops cancelled timers
/// outside any catch, so a panicking `Drop` of a cancelled timer's callback
/// comes out of `run_forever` in the middle of an iteration.
/// Rules: SCHED-3, SCHED-4, SCHED-7
#[test]
fn regression_cancelled_timer_with_a_panicking_drop_does_not_break_the_run() {
    loopspec::fuzz::install_panic_hook();
    let lp = vloop();
    let _seen = capture_exceptions(&lp);
    let data = PanicOnDrop(loopspec::fuzz::INTENTIONAL_DROP_PANIC);
    let t = lp
        .call_later(2.0, move || {
            let _d = &data;
        })
        .unwrap();
    t.cancel();
    let ran = Arc::new(AtomicUsize::new(0));
    let (r, stopper) = (ran.clone(), lp.clone());
    lp.call_later(5.0, move || {
        r.fetch_add(1, Ordering::SeqCst);
        stopper.stop();
    })
    .unwrap();
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| lp.run_forever()));
    assert!(
        matches!(run, Ok(Ok(()))),
        "run_forever did not return normally"
    );
    assert_eq!(ran.load(Ordering::SeqCst), 1);
    assert_eq!(lp.time(), 5.0);
    lp.close().unwrap();
}
