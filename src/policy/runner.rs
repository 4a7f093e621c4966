//! [`Runner`]: asyncio's `Runner`; the module's docs are at its public
//! path, [`loopspec::runner`](crate::runner).

use super::{Policy, process_policy};
use crate::error::{Error, ExceptionContext, Result};
use crate::event_loop::EventLoop;
use crate::executor::THREAD_JOIN_TIMEOUT;
use crate::future::Future;
use crate::loop_core::running_loop;
use crate::profile::Profile;
use crate::sync::{AtomicUsize, Ordering};
use crate::task::TaskRef;
use std::fmt;
use std::sync::Arc;

/// Makes the runner's loop.
type LoopFactory = Box<dyn FnMut() -> EventLoop + Send>;

/// Where a [`Runner`] is in its life (CPython's `_State`).
enum State {
    /// Made; no loop yet. `close()` leaves it here: it can still run.
    Initialized,
    /// The loop exists. `set_current`: the runner made it the thread's
    /// current loop (no factory), so `close()` clears the slot again.
    Open { lp: EventLoop, set_current: bool },
    /// Closed: every call but `close()` fails with `Runner is closed`.
    Closed,
}

/// asyncio's `Runner`: runs futures to completion on one loop of its own,
/// made at the first [`get_loop`](Runner::get_loop) or [`run`](Runner::run),
/// and closes it at [`close`](Runner::close) (or when dropped, like leaving
/// `with Runner() as r:`).
///
/// Without a factory the loop comes from the runner's [`Policy`] and becomes
/// the thread's current loop until `close()` (RUNNER-2); with a factory
/// ([`Runner::with_loop_factory`], the 3.12+ `loop_factory`) the thread's
/// current loop is never touched.
///
/// Rust mapping: `run` takes `&mut self`, so one runner cannot run twice at
/// once (CPython: `This event loop is already running`); it installs no
/// SIGINT handler (CPython's, in the main thread, cancels the main task on
/// Ctrl-C); there is no `debug` flag (loopspec has no debug mode).
pub struct Runner {
    /// Where the loop comes from without a factory (`None`: the
    /// process-wide policy, read when the loop is made).
    policy: Option<Policy>,
    /// The loop factory (asyncio's `loop_factory`); with one, the thread's
    /// current loop is never touched.
    factory: Option<LoopFactory>,
    /// Where the runner is in its life.
    state: State,
}

impl fmt::Debug for Runner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Initialized => "initialized".to_string(),
            State::Open { lp, .. } => format!("{lp:?}"),
            State::Closed => "closed".to_string(),
        };
        write!(f, "<Runner {state}>")
    }
}

impl Default for Runner {
    fn default() -> Self {
        Runner::new()
    }
}

impl Runner {
    /// A runner whose loop comes from the process-wide policy
    /// ([`get_event_loop_policy`](crate::get_event_loop_policy)), read when
    /// the loop is made.
    pub fn new() -> Runner {
        Runner {
            policy: None,
            factory: None,
            state: State::Initialized,
        }
    }

    /// A runner whose loop comes from `policy` (and becomes current in its
    /// slot, as without a factory).
    pub fn with_policy(policy: Policy) -> Runner {
        Runner {
            policy: Some(policy),
            factory: None,
            state: State::Initialized,
        }
    }

    /// A runner whose loop is `factory()` (asyncio's `loop_factory`, 3.12+):
    /// it never becomes the thread's current loop.
    pub fn with_loop_factory(factory: impl FnMut() -> EventLoop + Send + 'static) -> Runner {
        Runner {
            policy: None,
            factory: Some(Box::new(factory)),
            state: State::Initialized,
        }
    }

    /// The runner's loop, made now if this is the first call (RUNNER-1).
    /// Fails with `Runner is closed` after [`close`](Runner::close).
    pub fn get_loop(&mut self) -> Result<EventLoop> {
        match &self.state {
            State::Open { lp, .. } => return Ok(lp.clone()),
            State::Closed => return Err(Error::RunnerClosed),
            State::Initialized => {}
        }
        let (lp, set_current) = match &mut self.factory {
            Some(factory) => (factory(), false),
            None => {
                let policy = self.policy.clone().unwrap_or_else(process_policy);
                let lp = policy.new_event_loop();
                policy.set_event_loop(Some(&lp));
                (lp, true)
            }
        };
        self.state = State::Open {
            lp: lp.clone(),
            set_current,
        };
        Ok(lp)
    }

    /// Runs `main` as a task on the runner's loop until it is done and
    /// returns its outcome (RUNNER-3). Tasks it started and did not wait for
    /// stay pending until the next `run` or `close`.
    ///
    /// Fails, without running anything, with `Runner.run() cannot be called
    /// from a running event loop` inside a running loop, then with `Runner
    /// is closed` after `close`.
    pub fn run<T, F>(&mut self, main: F) -> Result<T>
    where
        T: Clone + Send + 'static,
        F: std::future::Future<Output = Result<T>> + 'static,
    {
        if running_loop().is_some() {
            return Err(Error::RunnerInRunningLoop);
        }
        let lp = self.get_loop()?;
        let task = lp.create_task_local(main)?;
        lp.run_until_complete(task)
    }

    /// Closes the runner (RUNNER-4): cancels the loop's unfinished tasks and
    /// runs the loop until they are done — an exception one of them raises
    /// instead of ending cancelled goes to the exception handler as
    /// `unhandled exception during asyncio.run() shutdown` — then shuts the
    /// default executor down and runs the loop until its jobs are done
    /// ([`EventLoop::shutdown_default_executor`], with a timeout of
    /// [`THREAD_JOIN_TIMEOUT`] from the `Py312` profile; EXEC-7), then clears
    /// the thread's current loop if the runner set it, and closes the loop.
    /// Closing a runner that never made its loop does nothing (it can still
    /// run); closing twice does nothing.
    pub fn close(&mut self) {
        let state = std::mem::replace(&mut self.state, State::Closed);
        let State::Open { lp, set_current } = state else {
            self.state = state; // never opened, or closed already: unchanged
            return;
        };
        cancel_all_tasks(&lp);
        // No async generators to shut down; then the default executor, whose
        // jobs are waited for (3.12+: at most THREAD_JOIN_TIMEOUT) — EXEC-7.
        let timeout = (lp.profile() >= Profile::Py312).then_some(THREAD_JOIN_TIMEOUT);
        #[cfg(not(loopspec_mutant = "close-skips-executor"))]
        let _ = lp.run_until_complete(lp.shutdown_default_executor(timeout));
        #[cfg(loopspec_mutant = "close-skips-executor")]
        let _ = timeout;
        if set_current {
            let policy = self.policy.clone().unwrap_or_else(process_policy);
            policy.set_event_loop(None);
        }
        let _ = lp.close();
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        self.close();
    }
}

/// Cancels every unfinished task of `lp` and runs the loop until they are
/// done, as asyncio's runner does at close (by gathering them): the loop
/// waits on their done callbacks, so it can park and a virtual clock can
/// move while a cancelled task still sleeps. A task that ends with an
/// exception other than its cancellation is reported (RUNNER-4).
fn cancel_all_tasks(lp: &EventLoop) {
    let tasks = lp.unfinished_tasks();
    if tasks.is_empty() {
        return;
    }
    let all_done: Future<()> = lp.create_future();
    let left = Arc::new(AtomicUsize::new(tasks.len()));
    for t in &tasks {
        let (left, all_done) = (left.clone(), all_done.clone());
        let hook: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
            if left.fetch_sub(1, Ordering::Relaxed) == 1 {
                let _ = all_done.set_result(());
            }
        });
        if t.clone().add_done_hook(hook).is_err() {
            return; // the loop is closed: nothing can run any more
        }
    }
    let tasks: Vec<TaskRef> = tasks.into_iter().map(|t| TaskRef::new(t, lp)).collect();
    for t in &tasks {
        t.cancel();
    }
    let _ = lp.run_until_complete(all_done);
    for t in &tasks {
        if let Some(exception) = t.exception() {
            lp.call_exception_handler(&ExceptionContext {
                message: "unhandled exception during asyncio.run() shutdown".into(),
                exception: Some(exception),
                task: Some(format!("{t:?}")),
                ..ExceptionContext::default()
            });
        }
    }
}

/// asyncio's `run(main, loop_factory=factory)` (3.12+): refuses to run
/// inside a running loop (`asyncio.run() cannot be called from a running
/// event loop`); otherwise runs `main` with a
/// [`Runner::with_loop_factory`] and closes it (RUNNER-5). The factory's
/// loop never becomes the thread's current loop.
///
/// ```
/// use loopspec::{ClockKind, EventLoop};
///
/// let out = loopspec::run_with_loop_factory(
///     async { loopspec::sleep(1.0).await.map(|()| 42) },
///     || EventLoop::with_clock(ClockKind::Virtual),
/// );
/// assert_eq!(out.unwrap(), 42);
/// ```
pub fn run_with_loop_factory<T, F>(
    main: F,
    factory: impl FnMut() -> EventLoop + Send + 'static,
) -> Result<T>
where
    T: Clone + Send + 'static,
    F: std::future::Future<Output = Result<T>> + 'static,
{
    if running_loop().is_some() {
        return Err(Error::RunInRunningLoop);
    }
    let mut runner = Runner::with_loop_factory(factory);
    let result = runner.run(main);
    runner.close();
    result
}
