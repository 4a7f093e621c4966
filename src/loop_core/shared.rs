//! The [`EventLoop`] handle and what its clones share ([`Shared`]).
//!
//! This file holds the loop's data only; what the loop does is in `impl
//! EventLoop` blocks in the other files of `src/loop_core/` (its calls for
//! futures and tasks) and of `src/event_loop/` (running it).

use crate::clock::{Clock, ClockKind};
use crate::error::ExceptionContext;
use crate::handle::Submission;
use crate::home::LoopId;
use crate::inbox::{Inbox, InboxStats};
use crate::profile::Profile;
use crate::run_state::{RunState, StopFlag};
use crate::sync::{Arc, AtomicBool, AtomicU64, Condvar, Mutex, MutexGuard, Ordering};
use crate::thread_pool::{DefaultPool, ThreadPool};
use std::fmt;

/// An exception handler: called with the loop and a context describing what
/// went wrong. See [`EventLoop::set_exception_handler`].
pub type ExceptionHandler = std::sync::Arc<dyn Fn(&EventLoop, &ExceptionContext) + Send + Sync>;

/// How the loop makes its tasks: asyncio's task factory
/// (`loop.set_task_factory`), SPEC.md EAGER-1.
///
/// Rust mapping: a CPython factory is any callable that returns a task
/// (often a `Task` subclass, `create_eager_task_factory(custom)`); a
/// loopspec task is always a [`Task`](crate::Task) of its coroutine's
/// output type, which a factory stored in the loop could not be generic
/// over, and there are no subclasses to return. So the factory is the one
/// choice CPython's own factories make — when the first step runs — and
/// what a custom task would add goes into the coroutine before it is given
/// to `create_task` (wrap it).
///
/// ```
/// use loopspec::{ClockKind, EventLoop, TaskFactory};
///
/// let lp = EventLoop::with_clock(ClockKind::Virtual);
/// assert_eq!(lp.get_task_factory(), TaskFactory::Default);
/// lp.set_task_factory(TaskFactory::Eager);
/// assert_eq!(lp.get_task_factory(), TaskFactory::Eager);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TaskFactory {
    /// asyncio's default (`set_task_factory(None)`): the first step is
    /// scheduled with `call_soon` (TASK-1).
    #[default]
    Default,
    /// `asyncio.eager_task_factory` (3.12+): a task created on the thread
    /// running the loop runs its first step inside `create_task` (EAGER-2).
    Eager,
}

/// What every handle of one loop shares; all of it is `Send + Sync`. The
/// loop's work (ready queue, timers, tasks) is in the run state while
/// nobody runs or borrows it, else with the thread that does; local work
/// lives on its local home thread (`src/home/`).
pub(crate) struct Shared {
    /// Who runs the loop, who borrows its work, whether it is closed, where
    /// its work is and which thread is its local home, under the run-state
    /// lock (`src/run_state.rs`).
    run: Mutex<RunState>,
    /// Notified when a borrow of the work ends (paired with the run-state
    /// lock): a claim that finds the work borrowed by another thread waits
    /// here.
    pub(super) handoff: Condvar,
    /// Cross-thread submissions and the wake protocol: where the loop
    /// parks, and what wakes it (`src/inbox/`).
    pub(crate) inbox: Inbox<Submission>,
    /// The stop flag, beside the lock (`src/run_state.rs`): set by `stop()`
    /// from any thread, read after every iteration.
    pub(crate) stopping: StopFlag,
    /// The loop's clock, chosen when it is made. The thread running the loop
    /// moves a virtual clock; any thread reads it.
    pub(crate) clock: Clock,
    /// The Python version the loop follows where versions differ; fixed.
    profile: Profile,
    /// The exception handler (`None`: the default one), set from any thread.
    pub(super) handler: Mutex<Option<ExceptionHandler>>,
    /// Source of task ids (1, 2, ...).
    next_task: AtomicU64,
    /// Source of the N of the `Task-N` default names (1, 2, ...), taken only
    /// by tasks made without a name (TASK-9, TASK-17).
    next_task_number: AtomicU64,
    /// Source of the ids of local values (local callbacks and timers,
    /// stashed values), 1, 2, ...; 0 names none.
    pub(super) next_local: AtomicU64,
    /// The default executor of `run_in_executor`, started on first use and
    /// shut down by `close()`.
    pub(crate) executor: Mutex<DefaultPool>,
    /// The task factory is [`TaskFactory::Eager`] (EAGER-1), set from any
    /// thread; read at each `create_task`, so an atomic, not a lock.
    pub(crate) eager_factory: AtomicBool,
}

/// An event loop: a cheap, cloneable handle that can be sent to other threads.
///
/// The loop's work (callbacks given to [`call_soon`](EventLoop::call_soon),
/// timers, tasks) follows the loop to whichever thread runs it; local work
/// (the `*_local` calls) stays on the thread that scheduled it (SPEC.md
/// THREAD-1); the thread-safe entry points ([`stop`](EventLoop::stop),
/// [`close`](EventLoop::close), [`call_soon_threadsafe`](EventLoop::call_soon_threadsafe),
/// [`is_running`](EventLoop::is_running), [`time`](EventLoop::time), ...) work from
/// anywhere.
///
/// ```
/// use loopspec::{ClockKind, EventLoop};
///
/// let lp = EventLoop::with_clock(ClockKind::Virtual);
/// let t = lp.create_task(async {
///     loopspec::sleep(3.0).await?;
///     Ok("done")
/// }).unwrap();
/// assert_eq!(lp.run_until_complete(t).unwrap(), "done");
/// assert_eq!(lp.time(), 3.0); // virtual time jumped; nothing slept
/// lp.close().unwrap();
/// ```
#[derive(Clone)]
pub struct EventLoop {
    /// Shared by every handle of the loop.
    pub(crate) shared: Arc<Shared>,
}

impl PartialEq for EventLoop {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}

impl Eq for EventLoop {}

impl fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.lock();
        write!(
            f,
            "<EventLoop running={} closed={} clock={:?}>",
            if st.running.is_some() {
                "True"
            } else {
                "False"
            },
            if st.closed { "True" } else { "False" },
            self.shared.clock.kind()
        )
    }
}

impl EventLoop {
    /// A new loop: nothing running, nothing queued, no local home.
    pub(crate) fn from_parts(clock: ClockKind, profile: Profile) -> EventLoop {
        EventLoop {
            shared: Arc::new(Shared {
                run: Mutex::new(RunState::default()),
                handoff: Condvar::new(),
                inbox: Inbox::new(),
                stopping: StopFlag::new(),
                clock: Clock::new(clock),
                profile,
                handler: Mutex::new(None),
                next_task: AtomicU64::new(1),
                next_task_number: AtomicU64::new(1),
                next_local: AtomicU64::new(1),
                executor: Mutex::new(DefaultPool::default()),
                eager_factory: AtomicBool::new(false),
            }),
        }
    }

    /// The loop's identity, shared by its clones: what a task compares
    /// with a future's loop (FUT-8) without holding a handle.
    pub(crate) fn id(&self) -> LoopId {
        LoopId::of(Arc::as_ptr(&self.shared))
    }

    /// The run state, under its lock.
    pub(crate) fn lock(&self) -> MutexGuard<'_, RunState> {
        self.shared.run.lock()
    }

    /// The loop's current time in seconds (CLOCK-1).
    pub fn time(&self) -> f64 {
        self.shared.clock.now()
    }

    /// Which clock the loop uses.
    pub fn clock_kind(&self) -> ClockKind {
        self.shared.clock.kind()
    }

    /// The Python version profile the loop follows.
    pub fn profile(&self) -> Profile {
        self.shared.profile
    }

    /// Whether some thread is inside `run_forever`/`run_until_complete` for
    /// this loop (LIFE-1).
    pub fn is_running(&self) -> bool {
        self.lock().running.is_some()
    }

    /// Whether [`close`](EventLoop::close) has been called.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Counters of the loop's inbox since the loop was made (XTHREAD-4): a
    /// burst of submissions to a busy loop adds submissions but no wake-ups,
    /// and there is at most one wake-up per park.
    ///
    /// ```
    /// use loopspec::{ClockKind, EventLoop};
    ///
    /// let lp = EventLoop::with_clock(ClockKind::Virtual);
    /// let remote = lp.clone();
    /// std::thread::spawn(move || {
    ///     for _ in 0..3 {
    ///         remote.call_soon_threadsafe(|| ()).unwrap();
    ///     }
    /// })
    /// .join()
    /// .unwrap();
    /// let stats = lp.inbox_stats();
    /// assert_eq!((stats.submissions, stats.wakeups, stats.parks, stats.queued), (3, 0, 0, 3));
    /// ```
    pub fn inbox_stats(&self) -> InboxStats {
        self.shared.inbox.stats()
    }

    /// A fresh task id for this loop (1, 2, ...).
    pub(crate) fn next_task_id(&self) -> u64 {
        self.shared.next_task.fetch_add(1, Ordering::Relaxed)
    }

    /// Whether a task made now runs its first step at once: the factory is
    /// eager and the calling thread runs this loop (EAGER-2).
    pub(crate) fn eager_here(&self) -> bool {
        self.eager_factory() && self.runs_here()
    }

    /// Whether the task factory is [`TaskFactory::Eager`] (EAGER-1).
    pub(crate) fn eager_factory(&self) -> bool {
        self.shared.eager_factory.load(Ordering::Relaxed)
    }

    /// Makes the task factory [`TaskFactory::Eager`] or the default.
    pub(crate) fn set_eager_factory(&self, eager: bool) {
        self.shared.eager_factory.store(eager, Ordering::Relaxed);
    }

    /// Whether the calling thread is running this loop.
    pub(crate) fn runs_here(&self) -> bool {
        super::registry::running_loop().as_ref() == Some(self)
    }

    /// The N of a fresh default task name `Task-N` for this loop (1, 2, ...).
    pub(crate) fn next_task_number(&self) -> u64 {
        self.shared.next_task_number.fetch_add(1, Ordering::Relaxed)
    }

    /// The default executor, started on first use; refused once its
    /// shutdown was called (EXEC-6).
    pub(crate) fn default_executor(&self) -> crate::error::Result<Arc<ThreadPool>> {
        self.shared.executor.lock().get()
    }
}
