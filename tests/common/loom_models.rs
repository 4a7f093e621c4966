//! Helpers of the loom models (`tests/loom_*.rs`, built with `--cfg loom`).

use loopspec::{ClockKind, ConcurrentFuture, EventLoop};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A loop on the real clock: with nothing to do and no timer it parks
/// without limit, so a lost wake-up is a deadlock, which loom reports.
pub fn real_loop() -> EventLoop {
    EventLoop::with_clock(ClockKind::Real)
}

/// `call_soon_threadsafe(lp.stop)`, the thread-safe stop (STOP-5).
pub fn stop_threadsafe(lp: &EventLoop) {
    let stopper = lp.clone();
    lp.call_soon_threadsafe(move || stopper.stop()).unwrap();
}

/// `lp.run_forever()` on a new loom thread.
pub fn run_in_thread(lp: &EventLoop) -> loom::thread::JoinHandle<loopspec::Result<()>> {
    let runner = lp.clone();
    loom::thread::spawn(move || runner.run_forever())
}

/// Runs `lp` on this thread until it is stopped while a new loom thread
/// does `f` with a clone of it; then joins that thread.
pub fn run_while<R: Send + 'static>(
    lp: &EventLoop,
    f: impl FnOnce(EventLoop) -> R + Send + 'static,
) -> R {
    let remote = lp.clone();
    let other = loom::thread::spawn(move || f(remote));
    lp.run_forever().unwrap();
    other.join().unwrap()
}

/// `cf.set_result(value)` on a new loom thread.
pub fn set_result_in_thread<T: Send + 'static>(
    cf: &ConcurrentFuture<T>,
    value: T,
) -> loom::thread::JoinHandle<()> {
    let cf = cf.clone();
    loom::thread::spawn(move || cf.set_result(value).unwrap())
}

/// A callback that adds one to `count`.
pub fn bump(count: &Arc<AtomicUsize>) -> impl FnOnce() + Send + 'static {
    let count = count.clone();
    move || {
        count.fetch_add(1, Ordering::Relaxed);
    }
}

/// Runs `lp` for one iteration once a joined thread has let go of it as the
/// loop's local home. Loom's `join` returns before the thread's
/// thread-locals are dropped (std's does not): until then a run may still
/// meet THREAD-2's error, and yields.
pub fn run_once_after_the_local_home_exits(lp: &EventLoop) {
    loop {
        lp.stop();
        match lp.run_forever() {
            Ok(()) => return,
            Err(loopspec::Error::BoundToThread { .. }) => loom::thread::yield_now(),
            Err(e) => panic!("{e}"),
        }
    }
}
