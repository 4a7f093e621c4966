//! Helpers shared by loopspec's integration tests. Deterministic by
//! construction: virtual clocks, no sleeps, threads joined before asserting.

use loopspec::{ClockKind, ConcurrentFuture, Error, EventLoop, ExceptionContext, Task};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
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

/// A new loop on the virtual clock.
pub fn vloop() -> EventLoop {
    EventLoop::with_clock(ClockKind::Virtual)
}

/// An ordered record of events, shared by the callbacks of one test.
#[derive(Clone, Default)]
pub struct Log(Rc<RefCell<Vec<String>>>);

impl Log {
    pub fn new() -> Log {
        Log::default()
    }

    pub fn push(&self, s: impl Into<String>) {
        self.0.borrow_mut().push(s.into());
    }

    /// A callback that records `s` when it runs.
    pub fn cb(&self, s: impl Into<String>) -> impl FnOnce() + 'static {
        let log = self.clone();
        let s = s.into();
        move || log.push(s)
    }

    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.borrow_mut())
    }

    pub fn get(&self) -> Vec<String> {
        self.0.borrow().clone()
    }
}

/// Runs exactly one iteration with the `stop(); run_forever()` idiom.
pub fn run_once(lp: &EventLoop) {
    lp.stop();
    lp.run_forever().expect("run_forever");
}

/// Ends a test's loop the way a runner closes one (RUNNER-4): cancels every
/// task still pending, runs the loop until each is done, and closes it. For a
/// test whose point is elsewhere, so that no task is destroyed pending
/// (TASK-8), which the default exception handler would report on stderr.
pub fn finish(lp: &EventLoop) {
    let tasks = Rc::new(RefCell::new(Vec::new()));
    let t = tasks.clone();
    lp.call_soon(move || {
        let all = loopspec::all_tasks().expect("all_tasks in a callback");
        for task in &all {
            task.cancel();
        }
        *t.borrow_mut() = all;
    })
    .expect("finish: call_soon");
    run_once(lp);
    let mut rounds = 0;
    while tasks.borrow().iter().any(|t| !t.done()) {
        rounds += 1;
        assert!(rounds < 1000, "finish: tasks still pending: {tasks:?}");
        run_once(lp);
    }
    lp.close().expect("finish: close");
}

/// Asserts that `lp` holds no loop-bound work any more (no uncancelled timer,
/// no ready callback, no unfinished task): then it has no home, and another
/// thread can run it (THREAD-3); live work would keep it bound here
/// (THREAD-2).
pub fn assert_holds_no_work(lp: &EventLoop) {
    let l = lp.clone();
    let r = in_thread("holds-no-work", move || {
        l.stop();
        l.run_forever()
    });
    assert_eq!(r, Ok(()), "the loop still holds work");
}

/// Installs an exception handler that records every context it receives.
pub fn capture_exceptions(lp: &EventLoop) -> Arc<Mutex<Vec<ExceptionContext>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    lp.set_exception_handler(Some(Arc::new(
        move |_lp: &EventLoop, ctx: &ExceptionContext| {
            s.lock().unwrap().push(ctx.clone());
        },
    )));
    seen
}

/// Runs `f` on a fresh thread called `name` (fresh thread-local state),
/// propagating its panic.
pub fn in_thread<R: Send + 'static>(name: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(f)
        .expect("spawn")
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// Counts its drops.
pub struct DropCount(pub Arc<AtomicUsize>);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Records the name of the thread it is dropped on.
pub struct DropWhere(pub Arc<Mutex<Vec<String>>>);

impl Drop for DropWhere {
    fn drop(&mut self) {
        let name = std::thread::current().name().unwrap_or("?").to_string();
        self.0.lock().unwrap().push(name);
    }
}

/// A shared counter.
pub fn counter() -> Arc<AtomicUsize> {
    Arc::new(AtomicUsize::new(0))
}

/// Its value.
pub fn count(c: &Arc<AtomicUsize>) -> usize {
    c.load(Ordering::SeqCst)
}

/// A task that sleeps `delay` seconds and then returns `value`.
pub fn sleeper<T: Clone + 'static>(lp: &EventLoop, delay: f64, value: T) -> Task<T> {
    lp.create_task(async move {
        loopspec::sleep(delay).await?;
        Ok(value)
    })
    .unwrap()
}

/// A task that sleeps `delay` seconds and then raises `err`.
pub fn failer(lp: &EventLoop, delay: f64, err: Error) -> Task<i32> {
    lp.create_task(async move {
        loopspec::sleep(delay).await?;
        Err(err)
    })
    .unwrap()
}

/// The start of every panic message a test raises on purpose: the hook of
/// [`quiet_panics`] drops those, so a passing run prints nothing for them.
pub const INTENTIONAL: &str = "intentional panic";

/// Installs (once per process) a panic hook that is silent for panics whose
/// message starts with [`INTENTIONAL`] and hands every other panic to the
/// hook that was installed before (the default one, which prints it).
pub fn quiet_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let p = info.payload();
            let msg = p
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| p.downcast_ref::<String>().map(String::as_str));
            if !msg.is_some_and(|m| m.starts_with(INTENTIONAL)) {
                previous(info);
            }
        }));
    });
}

/// User data whose `Drop` panics (unless a panic is already unwinding).
pub struct PanicOnDrop(pub &'static str);

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("{}", self.0);
        }
    }
}

/// A future with user data beside it: the data is dropped with the future,
/// not when the future completes.
pub struct Holding<F, D> {
    pub fut: std::pin::Pin<Box<F>>,
    pub _data: D,
}

impl<F: std::future::Future, D> Unpin for Holding<F, D> {}

impl<F: std::future::Future, D> std::future::Future for Holding<F, D> {
    type Output = F::Output;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        self.fut.as_mut().poll(cx)
    }
}

/// SPEC.md, as the tests that check it against the code read it.
pub mod spec {
    use std::path::PathBuf;

    /// The repository's root, where SPEC.md is.
    pub fn repo_root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    /// SPEC.md's text.
    pub fn text() -> String {
        std::fs::read_to_string(repo_root().join("SPEC.md")).expect("read SPEC.md")
    }

    /// Whether `s` is a rule ID: `AREA-n`, the area in capitals.
    pub fn is_rule_id(s: &str) -> bool {
        let Some((area, n)) = s.split_once('-') else {
            return false;
        };
        !area.is_empty()
            && area.chars().all(|c| c.is_ascii_uppercase())
            && !n.is_empty()
            && n.chars().all(|c| c.is_ascii_digit())
    }

    /// The rule of a heading line `### ID: title`: (ID, title).
    pub fn rule_heading(line: &str) -> Option<(&str, &str)> {
        let (id, title) = line.strip_prefix("### ")?.split_once(':')?;
        is_rule_id(id.trim()).then(|| (id.trim(), title.trim()))
    }

    /// The IDs of every rule of `spec`, in order.
    pub fn rule_ids(spec: &str) -> Vec<String> {
        spec.lines()
            .filter_map(rule_heading)
            .map(|(id, _)| id.to_string())
            .collect()
    }
}
