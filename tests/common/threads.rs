//! Threads, and waits that fail instead of hanging.

use loopspec::{ConcurrentFuture, Error, EventLoop};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

/// The longest a test waits for what it checks (a message, a concurrent
/// future's outcome) before it fails instead of hanging. A bound only a
/// regression reaches, never a timing assertion: a passing run gets what it
/// waits for long before this, and no assertion depends on how long a wait
/// took.
pub const HANG_GUARD: Duration = Duration::from_secs(120);

/// Receives from `rx` like `rx.recv().unwrap()`, but fails the test, naming
/// `what`, if nothing arrives within [`HANG_GUARD`] (or every sender is gone).
#[track_caller]
pub fn recv_or_hang<T>(rx: &Receiver<T>, what: &str) -> T {
    match rx.recv_timeout(HANG_GUARD) {
        Ok(v) => v,
        Err(RecvTimeoutError::Timeout) => {
            panic!("hang guard: {what}: nothing received in {HANG_GUARD:?}")
        }
        Err(RecvTimeoutError::Disconnected) => {
            panic!("{what}: every sender was dropped before sending")
        }
    }
}

/// Waits (on the loop's own counter, not on time) until `lp` has parked at
/// least `n` times; fails the test if that takes the whole [`HANG_GUARD`].
/// The loop counts a park under its lock and releases the lock only by
/// starting to wait, so once this returns the loop is parked unless something
/// has woken it since.
#[track_caller]
pub fn wait_parked(lp: &EventLoop, n: u64) {
    let deadline = Instant::now() + HANG_GUARD;
    while lp.inbox_stats().parks < n {
        assert!(
            Instant::now() < deadline,
            "hang guard: the loop did not park {n} times: {:?}",
            lp.inbox_stats()
        );
        std::thread::yield_now();
    }
}

/// `cf.result(None)` from a thread that is not running the loop completing
/// `cf`, but failing the test if `cf` is not done within [`HANG_GUARD`]. A
/// `TimeoutError` that is `cf`'s own outcome is returned as such. (On the
/// loop's own thread `result(None)` fails at once, XTHREAD-9, and a timeout
/// would wait instead: tests of that keep `result(None)`.)
#[track_caller]
pub fn cf_result<T: Clone + Send + 'static>(cf: &ConcurrentFuture<T>) -> loopspec::Result<T> {
    match cf.result(Some(HANG_GUARD)) {
        Err(Error::Timeout) => {
            assert!(
                cf.done(),
                "hang guard: {cf:?} is still not done after {HANG_GUARD:?}"
            );
            // Done: the TimeoutError is its outcome (or it finished just
            // after the guard); read the outcome without waiting.
            cf.result(Some(Duration::ZERO))
        }
        r => r,
    }
}

/// `cf.exception(None)`, bounded like [`cf_result`]. (A `TimeoutError`
/// outcome reads as `Ok(Some(Timeout))`: `Err(Timeout)` is only the wait's.)
#[track_caller]
pub fn cf_exception<T: Send + 'static>(
    cf: &ConcurrentFuture<T>,
) -> loopspec::Result<Option<Error>> {
    let r = cf.exception(Some(HANG_GUARD));
    assert!(
        r != Err(Error::Timeout),
        "hang guard: {cf:?} is still not done after {HANG_GUARD:?}"
    );
    r
}

/// Runs `f` on a fresh thread called `name` (fresh thread-local state),
/// propagating its panic.
pub fn in_thread<R: Send + 'static>(name: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
    thread::Builder::new()
        .name(name.to_string())
        .spawn(f)
        .expect("spawn")
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// Runs `lp.run_forever()` on a new thread called `name`, and returns once
/// the run has started (its first callback ran).
pub fn spawn_running(lp: &EventLoop, name: &str) -> thread::JoinHandle<loopspec::Result<()>> {
    let (tx, rx) = mpsc::channel();
    let l = lp.clone();
    let h = thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            l.call_soon(move || tx.send(()).unwrap()).unwrap();
            l.run_forever()
        })
        .unwrap();
    recv_or_hang(&rx, "the loop thread started its run");
    h
}

/// Stops `lp`, which `runner` (see [`spawn_running`]) runs, and joins the
/// runner, whose run must have ended well.
#[track_caller]
pub fn stop_running(lp: &EventLoop, runner: thread::JoinHandle<loopspec::Result<()>>) {
    lp.stop();
    assert_eq!(runner.join().unwrap(), Ok(()));
}

/// The `Thread-N` name POLICY-9 gives the calling thread when it has no
/// name (N from its `ThreadId`).
pub fn unnamed_thread_name() -> String {
    let id = format!("{:?}", thread::current().id());
    let n: String = id.chars().filter(char::is_ascii_digit).collect();
    format!("Thread-{n}")
}

/// A case of [`thread_cases`]: the name of the fresh thread it runs on,
/// what it checks, and its body.
pub type ThreadCase = (&'static str, &'static str, fn());

/// Runs each case on a fresh thread named as the case says, so that no
/// per-thread state (a thread's current loop, its home claims) leaks from
/// one to another: every case runs, even after one failed, and the test
/// fails naming each case that did, with its panic.
#[track_caller]
pub fn thread_cases(table: &[ThreadCase]) {
    let failed: Vec<String> = table
        .iter()
        .filter_map(|&(thread_name, what, case)| {
            let ran = thread::Builder::new().name(thread_name.into()).spawn(case);
            let p = ran.expect("spawn").join().err()?;
            let text = crate::panic_text(&*p);
            Some(format!("{what} (in thread {thread_name:?}): {text}"))
        })
        .collect();
    crate::assert_no_failed_case(&failed, table.len());
}
