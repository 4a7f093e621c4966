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

/// How W4 combines its tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum W4 {
    /// `gather(tasks)`.
    Gather,
    /// `wait(tasks, ALL_COMPLETED)`.
    Wait,
}

/// W4 inside the run: one coroutine on `lp` makes `n` trivial tasks and
/// awaits `how` of them, as tokio's peer ([`w4_tokio`]) spawns inside
/// `block_on`. Returns how many the combinator gave back (`n`).
pub fn w4_in_run(lp: &loopspec::EventLoop, n: usize, how: W4) -> loopspec::Result<usize> {
    lp.run_until_complete(async move {
        let tasks: Vec<_> = (0..n)
            .map(|i| loopspec::create_task(async move { Ok(i) }))
            .collect::<loopspec::Result<_>>()?;
        Ok(match how {
            W4::Gather => loopspec::gather(tasks, false)?.await?.len(),
            W4::Wait => {
                let all = loopspec::ReturnWhen::AllCompleted;
                loopspec::wait(tasks, None, all).await?.0.len()
            }
        })
    })
}

/// W4's peer: `n` `tokio::spawn`s inside `rt`'s `block_on`, each
/// `JoinHandle` awaited in turn. Returns how many joined (`n`).
pub fn w4_tokio(rt: &tokio::runtime::Runtime, n: usize) -> usize {
    rt.block_on(async {
        let handles: Vec<_> = (0..n).map(|i| tokio::spawn(async move { i })).collect();
        let mut joined = 0;
        for h in handles {
            if h.await.is_ok() {
                joined += 1;
            }
        }
        joined
    })
}
