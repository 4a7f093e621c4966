//! Memory per queued cross-thread submission and per pending task, counted
//! by a counting global allocator (dhat's, in testing mode).
//!
//! `cargo bench --bench memory` prints bytes per item and writes them to
//! `memory.json` in criterion's directory (`$CRITERION_HOME`,
//! `$CARGO_TARGET_DIR/criterion` or `target/criterion`), where
//! `examples/bench_summary.rs` reads them. "Beyond the closure" subtracts
//! the closure's own size: a submission's overhead is its queue slot plus
//! the state its handle shares with the queue.

use common::criterion_dir;
use loopspec::{ClockKind, EventLoop};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// A power of two, so the queues' capacity equals the count.
const N: usize = 1 << 16;

fn live_bytes() -> usize {
    dhat::HeapStats::get().curr_bytes
}

/// Bytes per submission queued on a loop that is not running, from another
/// thread, with a closure capturing `capture` bytes.
fn per_submission(lp: &EventLoop, capture: Option<Arc<AtomicUsize>>) -> f64 {
    let before = live_bytes();
    let remote = lp.clone();
    std::thread::spawn(move || {
        for _ in 0..N {
            match &capture {
                None => drop(remote.call_soon_threadsafe(|| ()).unwrap()),
                Some(c) => {
                    let c = c.clone();
                    drop(
                        remote
                            .call_soon_threadsafe(move || {
                                c.fetch_add(1, Ordering::Relaxed);
                            })
                            .unwrap(),
                    );
                }
            }
        }
    })
    .join()
    .unwrap();
    (live_bytes() - before) as f64 / N as f64
}

/// Bytes per pending task made by `make` (its handle not counted), on a
/// loop of its own that is closed afterwards.
fn per_pending_task(
    make: impl Fn(&EventLoop, usize) -> loopspec::Result<loopspec::Task<usize>>,
) -> f64 {
    let lp = EventLoop::with_clock(ClockKind::Virtual);
    let before = live_bytes();
    let tasks: Vec<_> = (0..N).map(|i| make(&lp, i).unwrap()).collect();
    let after = live_bytes();
    let handles = std::mem::size_of_val(&tasks[..]) as f64;
    drop(tasks);
    quiet_close(&lp);
    (after - before) as f64 / N as f64 - handles / N as f64
}

/// Closes `lp` without reporting its pending tasks (TASK-8): they are the
/// measurement's, not a bug.
fn quiet_close(lp: &EventLoop) {
    lp.set_exception_handler(Some(Arc::new(|_, _| ())));
    lp.close().unwrap();
}

fn main() {
    let _profiler = dhat::Profiler::builder().testing().build();

    let lp = EventLoop::with_clock(ClockKind::Virtual);
    let zst = per_submission(&lp, None);
    lp.close().unwrap();
    let lp = EventLoop::with_clock(ClockKind::Virtual);
    let counter = Arc::new(AtomicUsize::new(0));
    let captured = per_submission(&lp, Some(counter));
    lp.close().unwrap();
    let capture_size = std::mem::size_of::<Arc<AtomicUsize>>() as f64;
    println!("queued call_soon_threadsafe, no-op closure: {zst:.1} bytes per submission");
    println!(
        "queued call_soon_threadsafe, closure of {capture_size} bytes: {:.1} bytes beyond the closure",
        captured - capture_size
    );

    // Pending tasks: made, not yet run (their first step is queued).
    let per_task = per_pending_task(|lp, i| lp.create_task(async move { Ok(i) }));
    let coroutine_size = std::mem::size_of_val(&async move { Ok::<usize, loopspec::Error>(0) });
    println!(
        "pending task (coroutine of {coroutine_size} bytes): {per_task:.1} bytes per task, the coroutine included"
    );
    // The same, as local tasks (the coroutine is kept in the loop's local
    // home).
    let per_local_task = per_pending_task(|lp, i| lp.create_task_local(async move { Ok(i) }));
    println!("pending local task: {per_local_task:.1} bytes per task, the coroutine included");

    let json = serde_json::json!({
        "submission_noop_closure": zst,
        "submission_beyond_closure": captured - capture_size,
        "closure_bytes": capture_size,
        "pending_task": per_task,
        "pending_local_task": per_local_task,
        "coroutine_bytes": coroutine_size,
    });
    let dir = criterion_dir();
    let written = std::fs::create_dir_all(&dir).and_then(|()| {
        std::fs::write(
            dir.join("memory.json"),
            serde_json::to_string_pretty(&json).unwrap(),
        )
    });
    match written {
        Ok(()) => println!("written to {}", dir.join("memory.json").display()),
        Err(e) => eprintln!("memory.json not written: {e}"),
    }
}
