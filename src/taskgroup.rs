//! [`TaskGroup`]: asyncio's `TaskGroup` (3.11+), structured concurrency
//! (SPEC.md TG-*).
//!
//! A group is entered in a task, its *parent*; it makes child tasks on the
//! parent's loop and, on exit, waits for all of them. The first child that
//! fails cancels the other children and the parent (whose body sees a
//! `CancelledError` at its next await); on exit the failures come out as one
//! [`ExceptionGroup`], `unhandled errors in a
//! TaskGroup`, unless a `KeyboardInterrupt` or `SystemExit` came first, which
//! comes out alone. The parent's cancellation that a child's failure
//! requested is withdrawn again (`uncancel`), so a cancellation from outside
//! the group still comes through as a `CancelledError` — when, differs
//! between 3.11/3.12 and 3.13+ (TG-8, TG-9).
//!
//! The state is asyncio's, field by field, behind one mutex: a group is a
//! cheap `Clone` handle and `Send + Sync`, so the children can hold it and
//! make more children. Its methods run on the parent's loop; a child made
//! from another thread follows the loop's own `create_task` (THREAD-1,
//! TG-14).

use crate::error::{Error, ExceptionContext, ExceptionGroup, Result};
use crate::event_loop::{EventLoop, get_running_loop};
use crate::future::Future;
use crate::profile::Profile;
use crate::sync::Mutex;
use crate::task::{Task, TaskRef, current_task};
use std::fmt;
use std::future::Future as StdFuture;
use std::sync::Arc;

/// The message of the [`ExceptionGroup`] a task group raises.
const MESSAGE: &str = "unhandled errors in a TaskGroup";

/// asyncio's `TaskGroup`; see the [module docs](self). A cheap `Clone`
/// handle (the clones are one group) and `Send + Sync`, so that `Send` child
/// coroutines can capture it.
///
/// [`run`](TaskGroup::run) is `async with TaskGroup() as tg: <body>`:
///
/// ```
/// use loopspec::{ClockKind, Error, EventLoop, TaskGroup};
///
/// let lp = EventLoop::with_clock(ClockKind::Virtual);
/// let (a, b) = lp
///     .run_until_complete(TaskGroup::run(|tg| async move {
///         let a = tg.create_task(async { loopspec::sleep(1.0).await?; Ok("a") })?;
///         let b = tg.create_task(async { loopspec::sleep(2.0).await?; Ok("b") })?;
///         Ok((a, b))
///     }))
///     .unwrap();
/// // The group waited for both children.
/// assert_eq!((a.result().unwrap(), b.result().unwrap(), lp.time()), ("a", "b", 2.0));
///
/// // A failing child cancels its siblings; the failures come out together.
/// let err = lp
///     .run_until_complete(TaskGroup::run(|tg| async move {
///         tg.create_task(async { loopspec::sleep(1.0).await?; Err::<(), _>(Error::raise("ValueError", "x")) })?;
///         tg.create_task(async { loopspec::sleep(9.0).await })?;
///         loopspec::sleep(9.0).await
///     }))
///     .unwrap_err();
/// assert_eq!(err.python_type(), "ExceptionGroup");
/// assert_eq!(err.to_string(), "unhandled errors in a TaskGroup (1 sub-exception)");
/// assert_eq!(format!("{err:?}"), "ExceptionGroup('unhandled errors in a TaskGroup', [ValueError('x')])");
/// assert_eq!(lp.time(), 3.0);
/// lp.close().unwrap();
/// ```
#[derive(Clone)]
pub struct TaskGroup {
    /// The group's state, shared with the children's done callbacks.
    state: Arc<Mutex<State>>,
}

impl Default for TaskGroup {
    fn default() -> Self {
        TaskGroup::new()
    }
}

/// A group's state: asyncio's `TaskGroup` attributes.
#[derive(Default)]
struct State {
    /// `__aenter__` succeeded.
    entered: bool,
    /// `__aexit__` started.
    exiting: bool,
    /// The children are being cancelled (`_aborting`).
    aborting: bool,
    /// The parent task's loop, from the first `enter`.
    lp: Option<EventLoop>,
    /// The task that entered the group.
    parent: Option<TaskRef>,
    /// A child's failure cancelled the parent: `exit` must `uncancel` it.
    parent_cancel_requested: bool,
    /// The unfinished children, by identity, in creation order.
    tasks: Vec<(usize, TaskRef)>,
    /// The children's exceptions, in completion order.
    errors: Vec<Error>,
    /// The first `KeyboardInterrupt` or `SystemExit`, of a child or the body.
    base_error: Option<Error>,
    /// What `exit` waits on while children run.
    on_completed: Option<Future<()>>,
}

/// `KeyboardInterrupt` and `SystemExit`: what a group raises alone (TG-4).
fn is_base_error(e: &Error) -> bool {
    matches!(e.python_type(), "KeyboardInterrupt" | "SystemExit")
}

impl State {
    /// The group's repr: `<TaskGroup tasks=N errors=N cancelling>`, each
    /// part only when it applies, `entered` when not cancelling (TG-5).
    fn repr(&self) -> String {
        let mut out = String::from("<TaskGroup");
        if !self.tasks.is_empty() {
            out.push_str(&format!(" tasks={}", self.tasks.len()));
        }
        if !self.errors.is_empty() {
            out.push_str(&format!(" errors={}", self.errors.len()));
        }
        if self.aborting {
            out.push_str(" cancelling");
        } else if self.entered {
            out.push_str(" entered");
        }
        out.push('>');
        out
    }

    /// `_abort()`: marks the group aborting and returns the children to
    /// cancel (the caller cancels them with the lock released).
    fn abort(&mut self) -> Vec<TaskRef> {
        self.aborting = true;
        self.tasks
            .iter()
            .filter(|(_, t)| !t.done())
            .map(|(_, t)| t.clone())
            .collect()
    }

    /// The loop's profile (the default before the first `enter`).
    fn profile(&self) -> Profile {
        self.lp.as_ref().map(EventLoop::profile).unwrap_or_default()
    }
}

/// Cancels `tasks`, each once.
fn cancel_all(tasks: Vec<TaskRef>) {
    for t in tasks {
        t.cancel();
    }
}

impl fmt::Debug for TaskGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.state.lock().repr())
    }
}

impl TaskGroup {
    /// A group not yet entered: `TaskGroup()`.
    pub fn new() -> TaskGroup {
        TaskGroup {
            state: Arc::new(Mutex::new(State::default())),
        }
    }

    /// `async with TaskGroup() as tg: <body>`: enters, runs
    /// `body(tg.clone())`, and exits with the body's outcome (see
    /// [`exit`](TaskGroup::exit)). Must run in a task (TG-6).
    pub async fn run<T, F, Fut>(body: F) -> Result<T>
    where
        F: FnOnce(TaskGroup) -> Fut,
        Fut: StdFuture<Output = Result<T>>,
    {
        let tg = TaskGroup::new();
        tg.enter().await?;
        let outcome = body(tg.clone()).await;
        tg.exit(outcome).await
    }

    /// `__aenter__`: binds the group to the running loop and the current
    /// task, its parent. Errors: [`Error::NoRunningLoop`] without a running
    /// loop; [`Error::TaskGroupNoParent`] outside a task;
    /// [`Error::TaskGroupEntered`] the second time (TG-6).
    pub async fn enter(&self) -> Result<()> {
        let mut st = self.state.lock();
        if st.entered {
            return Err(Error::TaskGroupEntered { group: st.repr() });
        }
        if st.lp.is_none() {
            st.lp = Some(get_running_loop()?);
        }
        match current_task()? {
            Some(parent) => st.parent = Some(parent),
            None => return Err(Error::TaskGroupNoParent { group: st.repr() }),
        }
        st.entered = true;
        Ok(())
    }

    /// `__aexit__` with the body's outcome: cancels the children if the
    /// body failed, waits until every child is done, then returns the
    /// outcome the group's rules give (TG-1…TG-10): a `KeyboardInterrupt` or
    /// `SystemExit` alone; a cancellation from outside; an
    /// [`Error::ExceptionGroup`] of the children's exceptions and the body's
    /// own; or the body's outcome.
    pub async fn exit<T>(&self, body: Result<T>) -> Result<T> {
        let out = self.aexit(body).await;
        // Every child is done: the group needs its parent and loop no more.
        // Holding them would make a cycle of a parent whose result holds
        // the group (CPython 3.13+ also lets go of its parent here).
        let mut st = self.state.lock();
        st.parent = None;
        st.lp = None;
        out
    }

    /// The body of [`exit`](TaskGroup::exit): asyncio's `_aexit`.
    async fn aexit<T>(&self, body: Result<T>) -> Result<T> {
        let (lp, parent, profile) = {
            let mut st = self.state.lock();
            st.exiting = true;
            let (Some(lp), Some(parent)) = (st.lp.clone(), st.parent.clone()) else {
                // Never entered: there is nothing to wait for.
                return body;
            };
            (lp, parent, st.profile())
        };
        let mut propagate_cancel = None;
        {
            let mut st = self.state.lock();
            if let Err(e) = &body {
                if is_base_error(e) && st.base_error.is_none() {
                    st.base_error = Some(e.clone());
                }
                if e.is_cancelled() {
                    propagate_cancel = Some(e.clone());
                }
            }
            if profile < Profile::Py313 && st.parent_cancel_requested && parent.uncancel() == 0 {
                propagate_cancel = None;
            }
            let to_cancel = if body.is_err() && !st.aborting {
                st.abort()
            } else {
                Vec::new()
            };
            drop(st);
            cancel_all(to_cancel);
        }
        let mut pending_cancel = None;
        loop {
            let waiter = {
                let mut st = self.state.lock();
                if st.tasks.is_empty() {
                    break;
                }
                st.on_completed
                    .get_or_insert_with(|| lp.create_future())
                    .clone()
            };
            if let Err(e) = waiter.await
                && e.is_cancelled()
            {
                let mut st = self.state.lock();
                pending_cancel = Some(e.clone());
                if !st.aborting {
                    propagate_cancel = Some(e);
                    let to_cancel = st.abort();
                    drop(st);
                    cancel_all(to_cancel);
                }
            }
            self.state.lock().on_completed = None;
        }
        let mut st = self.state.lock();
        if let Some(e) = st.base_error.clone() {
            return Err(e);
        }
        if profile >= Profile::Py313 && st.parent_cancel_requested {
            if parent.uncancel() == 0 {
                propagate_cancel = None;
            } else if profile >= Profile::Py315 && propagate_cancel.is_none() {
                // A cancellation from outside that the exit's wait absorbed
                // is not dropped (3.15). With every cancellation of the group
                // caused by a child's failure, the ExceptionGroup below wins
                // all the same; 3.15's `TaskGroup.cancel()`, not modelled,
                // is what makes it visible.
                propagate_cancel = pending_cancel;
            }
        }
        if let Some(e) = propagate_cancel
            && st.errors.is_empty()
        {
            return Err(e);
        }
        let generator_exit = matches!(&body, Err(e) if e.python_type() == "GeneratorExit");
        if let Err(e) = &body
            && !e.is_cancelled()
        {
            st.errors.push(e.clone());
        }
        if !st.errors.is_empty() {
            let errors = std::mem::take(&mut st.errors);
            drop(st);
            if profile >= Profile::Py313 && parent.cancelling() > 0 {
                // A cancellation from outside stays requested.
                parent.uncancel();
                parent.cancel();
            }
            if let [only] = errors.as_slice()
                && profile >= Profile::Py315
                && generator_exit
            {
                // The body's own GeneratorExit, alone, stays itself (TG-15).
                return Err(only.clone());
            }
            return Err(Error::ExceptionGroup(ExceptionGroup::new(MESSAGE, errors)));
        }
        drop(st);
        body
    }

    /// `tg.create_task(coro)`: a child task on the group's loop. Errors:
    /// [`Error::TaskGroupNotEntered`] before `enter`;
    /// [`Error::TaskGroupFinished`] once `exit` found no child left;
    /// [`Error::TaskGroupShuttingDown`] while the children are being
    /// cancelled (TG-7); then the loop's own `create_task` errors
    /// (THREAD-1, TG-14). The coroutine is dropped unpolled when refused.
    pub fn create_task<T, F>(&self, coro: F) -> Result<Task<T>>
    where
        T: Send + 'static,
        F: StdFuture<Output = Result<T>> + Send + 'static,
    {
        let lp = self.check_open()?;
        self.adopt(lp.create_task(coro)?)
    }

    /// [`create_task`](TaskGroup::create_task) for a coroutine that is not
    /// `Send`: a local child task (THREAD-10).
    pub fn create_task_local<T, F>(&self, coro: F) -> Result<Task<T>>
    where
        T: Send + 'static,
        F: StdFuture<Output = Result<T>> + 'static,
    {
        let lp = self.check_open()?;
        self.adopt(lp.create_task_local(coro)?)
    }

    /// The loop to make a child on, if the group takes children now.
    fn check_open(&self) -> Result<EventLoop> {
        let st = self.state.lock();
        let group = || st.repr();
        if !st.entered {
            return Err(Error::TaskGroupNotEntered { group: group() });
        }
        if st.exiting && st.tasks.is_empty() {
            return Err(Error::TaskGroupFinished { group: group() });
        }
        if st.aborting {
            return Err(Error::TaskGroupShuttingDown { group: group() });
        }
        st.lp.clone().ok_or(Error::NoRunningLoop)
    }

    /// Makes `task` a child: counted, and watched by a done callback. In
    /// the 3.12 profile a child already done (an eager task that finished
    /// in its first step, EAGER-2) is seen at once and never counted; 3.11
    /// and 3.13+ (gh-128550) watch it as any other (TG-16).
    fn adopt<T: Send + 'static>(&self, task: Task<T>) -> Result<Task<T>> {
        let child = task.task_ref();
        let key = task.as_future().identity();
        // A cancelled child is not read: reading takes its message (TASK-11).
        let outcome = |f: &Future<T>| {
            if f.cancelled() {
                Ok(None)
            } else {
                f.exception()
            }
        };
        if task.done() && self.state.lock().profile() == Profile::Py312 {
            self.on_task_done(key, &child, outcome(task.as_future()));
            return Ok(task);
        }
        self.state.lock().tasks.push((key, child.clone()));
        let group = self.clone();
        task.add_done_callback(Arc::new(move |f: &Future<T>| {
            group.on_task_done(key, &child, outcome(f));
        }))?;
        Ok(task)
    }

    /// `_on_task_done`: a child finished with `outcome` (`Ok(None)`: a
    /// result; `Ok(Some(e))`: an exception; `Err(_)`: cancelled).
    fn on_task_done(&self, key: usize, task: &TaskRef, outcome: Result<Option<Error>>) {
        let mut st = self.state.lock();
        st.tasks.retain(|(k, _)| *k != key);
        if st.tasks.is_empty()
            && let Some(w) = &st.on_completed
            && !w.done()
        {
            let _ = w.set_result(());
        }
        let Ok(Some(exc)) = outcome else {
            return;
        };
        st.errors.push(exc.clone());
        if is_base_error(&exc) && st.base_error.is_none() {
            st.base_error = Some(exc.clone());
        }
        let Some(parent) = st.parent.clone() else {
            return;
        };
        if parent.done() {
            let lp = st.lp.clone();
            drop(st);
            if let Some(lp) = lp {
                lp.call_exception_handler(&ExceptionContext {
                    message: format!(
                        "Task {task:?} has errored out but its parent task {parent:?} is already completed"
                    ),
                    exception: Some(exc),
                    task: Some(format!("{task:?}")),
                    ..ExceptionContext::default()
                });
            }
            return;
        }
        if !st.aborting && !st.parent_cancel_requested {
            let to_cancel = st.abort();
            st.parent_cancel_requested = true;
            drop(st);
            cancel_all(to_cancel);
            parent.cancel();
        }
    }
}
