//! [`EventLoop`]: scheduling, the iteration, `run_forever`, `run_until_complete`,
//! `stop` and `close`.
//!
//! The heart is `EventLoop::run_once`: one call is one iteration, as in
//! CPython's `BaseEventLoop._run_once` (SPEC.md SCHED-1):
//!
//! 1. compute the poll timeout: 0 if a callback is ready or a stop is
//!    requested, else the time until the earliest timer, else infinite;
//! 2. poll: wait for cross-thread submissions up to that timeout (a virtual
//!    clock jumps forward instead of waiting), then move them to the ready
//!    queue;
//! 3. move due timers to the end of the ready queue, in deadline order;
//! 4. run exactly the entries that were ready at this point, skipping
//!    cancelled ones. Anything queued while they run waits for the next
//!    iteration.
//!
//! `run_forever` repeats that until a stop was requested at the end of an
//! iteration; `run_until_complete` is `run_forever` plus a done callback on the
//! future that requests the stop.

use crate::clock::{self, Clock, ClockKind};
pub use crate::error::ExceptionContext;
use crate::error::{Error, Result};
use crate::future::{DoneCallback, Future};
use crate::handle::{Handle, Submission, TimerHandle};
use crate::inbox::{Inbox, InboxStats};
use crate::local::{self, LocalHalf, Ready};
use crate::profile::Profile;
use crate::run_state::{Home, RunState, StopFlag};
use crate::sync::{Arc, AtomicU64, Mutex, MutexGuard, Ordering, thread};
use crate::task::{self, Task};
use crate::thread_name;
use std::any::Any;
use std::collections::VecDeque;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;

/// An exception handler: called with the loop and a context describing what
/// went wrong. See [`EventLoop::set_exception_handler`].
pub type ExceptionHandler = std::sync::Arc<dyn Fn(&EventLoop, &ExceptionContext) + Send + Sync>;

/// State shared by every handle of one loop.
struct Shared {
    /// Who runs the loop, whether it is closed, which thread is its home
    /// (see `run_state`).
    run: Mutex<RunState>,
    /// Cross-thread submissions and the wake protocol: where the loop
    /// parks, and what wakes it (see `inbox`).
    inbox: Inbox<Submission>,
    clock: Clock,
    profile: Profile,
    handler: Mutex<Option<ExceptionHandler>>,
    /// The stop flag: an atomic beside the lock (see `run_state`).
    stopping: StopFlag,
    /// Source of task ids and of the `Task-N` default names.
    next_task: AtomicU64,
    /// Source of ids for values held in the loop-bound half.
    next_held: AtomicU64,
    /// The default executor of `run_in_executor`, started on first use.
    executor: Mutex<crate::thread_pool::DefaultPool>,
}

/// An event loop: a cheap, cloneable handle that can be sent to other threads.
///
/// Loop-bound work (callbacks given to [`call_soon`](EventLoop::call_soon),
/// timers, futures, tasks) is not `Send` and lives on the loop's home thread
/// (SPEC.md THREAD-1); the thread-safe entry points ([`stop`](EventLoop::stop),
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
    shared: Arc<Shared>,
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

impl Default for EventLoop {
    fn default() -> Self {
        EventLoop::new()
    }
}

/// Builds an [`EventLoop`] with a chosen clock and profile.
///
/// ```
/// use loopspec::{ClockKind, EventLoop, Profile};
///
/// let lp = EventLoop::builder().clock(ClockKind::Virtual).profile(Profile::Py313).build();
/// assert_eq!(lp.profile(), Profile::Py313);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Builder {
    clock: ClockKind,
    profile: Profile,
}

impl Builder {
    /// The clock the loop uses.
    pub fn clock(mut self, clock: ClockKind) -> Builder {
        self.clock = clock;
        self
    }

    /// The Python version whose behaviour the loop follows where versions
    /// differ.
    pub fn profile(mut self, profile: Profile) -> Builder {
        self.profile = profile;
        self
    }

    /// Makes the loop.
    pub fn build(self) -> EventLoop {
        EventLoop {
            shared: Arc::new(Shared {
                run: Mutex::new(RunState::default()),
                inbox: Inbox::new(),
                clock: Clock::new(self.clock),
                profile: self.profile,
                handler: Mutex::new(None),
                stopping: StopFlag::new(),
                next_task: AtomicU64::new(1),
                next_held: AtomicU64::new(1),
                executor: Mutex::new(Default::default()),
            }),
        }
    }
}

/// Clears the running state when a run ends, however it ends.
struct RunGuard<'a> {
    lp: &'a EventLoop,
    half: Rc<LocalHalf>,
}

impl Drop for RunGuard<'_> {
    fn drop(&mut self) {
        local::set_running(None);
        let empty = self.half.is_empty();
        let released = {
            let mut st = self.lp.lock();
            st.running = None;
            // Seeded bug (loom mutant check): a stop outlives the run.
            #[cfg(not(loopspec_mutant = "stop-survives-run"))]
            self.lp.shared.stopping.clear();
            if empty && !st.closed {
                st.home = None;
                true
            } else {
                false
            }
        };
        if released {
            // Empty but for cancelled timers, whose destructors run here.
            self.lp.discard_own_half();
        }
    }
}

impl EventLoop {
    /// A new loop on the real clock, following the default profile
    /// ([`Profile::Py311`]). Like asyncio's `new_event_loop()`, it does not
    /// become any thread's current loop.
    pub fn new() -> EventLoop {
        Builder::default().build()
    }

    /// A new loop on the given clock.
    pub fn with_clock(clock: ClockKind) -> EventLoop {
        Builder::default().clock(clock).build()
    }

    /// A builder for a loop with a chosen clock and profile.
    pub fn builder() -> Builder {
        Builder::default()
    }

    fn lock(&self) -> MutexGuard<'_, RunState> {
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

    // ------------------------------------------------------------------
    // Scheduling
    // ------------------------------------------------------------------

    /// Runs `f` with this thread's half of the loop, claiming the loop for
    /// this thread if it has no home (THREAD-1). The fast path — this thread
    /// runs the loop — takes no lock. Every push first moves pending inbox
    /// submissions to the ready queue, so work handed over from other threads
    /// keeps its place before later local work (XTHREAD FIFO).
    pub(crate) fn with_half<R>(&self, f: impl FnOnce(&LocalHalf) -> R) -> Result<R> {
        if let Some(half) = self.running_here() {
            return Ok(f(&half));
        }
        let me = local::current_thread_id();
        let mut stale = None;
        let result = {
            let mut st = self.lock();
            if st.closed {
                Err(Error::Closed)
            } else if st.running.is_some_and(|t| t != me) {
                Err(Error::NonThreadSafeCall)
            } else {
                match self.half_for(&mut st, me, &mut stale) {
                    Ok(half) => {
                        self.take_inbox(&half);
                        half.accept_spare();
                        Ok(f(&half))
                    }
                    Err(_) => Err(Error::NonThreadSafeCall),
                }
            }
        };
        if let Some(half) = stale {
            self.destroy_half(&half);
        }
        if matches!(result, Err(Error::Closed)) {
            self.discard_own_half();
        }
        result
    }

    /// The half, if this thread runs the loop (the fast path of every
    /// scheduling call), after moving pending inbox submissions ahead of
    /// whatever the caller is about to queue.
    fn running_here(&self) -> Option<Rc<LocalHalf>> {
        let half = local::running_half(self)?;
        if self.shared.inbox.pending() {
            self.take_inbox(&half);
            half.accept_spare();
        }
        Some(half)
    }

    /// This thread's half, claiming the home if the loop has none. Fails with
    /// `BoundToThread` when another thread is home. Runs under the state lock;
    /// a stale half found on the way goes to `stale`, to be dropped unlocked.
    fn half_for(
        &self,
        st: &mut RunState,
        me: thread::ThreadId,
        stale: &mut Option<Rc<LocalHalf>>,
    ) -> Result<Rc<LocalHalf>> {
        match &st.home {
            Some(home) if home.thread == me => {
                local::bound_half(self, st.epoch).ok_or_else(|| Error::BoundToThread {
                    thread: home.name.clone(),
                })
            }
            #[cfg(not(loopspec_mutant = "double-run"))]
            Some(home) => Err(Error::BoundToThread {
                thread: home.name.clone(),
            }),
            _ => {
                st.epoch += 1;
                st.home = Some(Home {
                    thread: me,
                    name: thread_name::current(None),
                });
                let half = Rc::new(LocalHalf::default());
                *stale = local::insert_bound(self, st.epoch, half.clone());
                Ok(half)
            }
        }
    }

    /// Takes the inbox's submissions into `half`'s spare buffer, in order: a
    /// home's hand-back first, then what the channel announced (see
    /// `inbox`). The caller converts them with [`LocalHalf::accept_spare`]
    /// before it queues anything else, so they keep their place.
    fn take_inbox(&self, half: &LocalHalf) {
        self.shared.inbox.drain_into(&mut half.spare.borrow_mut());
    }

    /// Hands a `Send` submission to the loop from any thread, without the
    /// loop's lock (see `inbox`). A closed loop refuses it, and it is dropped
    /// here, never run; the announce that decides this is atomic with
    /// `close()`'s.
    pub(crate) fn submit(&self, s: Submission) -> Result<()> {
        self.shared.inbox.send(s).map_err(|_| Error::Closed)
    }

    /// Schedules `f` to run in the next iteration (SCHED-2). Callbacks run in
    /// the order they were scheduled.
    ///
    /// Must be called from the loop's home thread (THREAD-1): from any other
    /// thread it fails with [`Error::NonThreadSafeCall`]; use
    /// [`call_soon_threadsafe`](EventLoop::call_soon_threadsafe) there.
    ///
    /// ```
    /// use loopspec::{ClockKind, EventLoop};
    /// use std::{cell::RefCell, rc::Rc};
    ///
    /// let lp = EventLoop::with_clock(ClockKind::Virtual);
    /// let log = Rc::new(RefCell::new(Vec::new()));
    /// for i in 0..3 {
    ///     let log = log.clone();
    ///     lp.call_soon(move || log.borrow_mut().push(i)).unwrap();
    /// }
    /// lp.stop();
    /// lp.run_forever().unwrap();
    /// assert_eq!(*log.borrow(), [0, 1, 2]);
    /// ```
    pub fn call_soon<F: FnOnce() + 'static>(&self, f: F) -> Result<Handle> {
        let handle = Handle::for_callback::<F>();
        let h = handle.clone();
        self.with_half(move |half| {
            half.push_ready(Ready::Call {
                f: Box::new(f),
                name: h.name(),
                handle: Some(h),
            })
        })?;
        Ok(handle)
    }

    /// Schedules `f` from any thread. On the thread running the loop it is
    /// the same as [`call_soon`](EventLoop::call_soon); from elsewhere it goes
    /// through the inbox and wakes the loop if it is parked. Returns
    /// [`Error::Closed`] on a closed loop.
    ///
    /// ```
    /// use loopspec::{ClockKind, EventLoop};
    ///
    /// let lp = EventLoop::with_clock(ClockKind::Virtual);
    /// let lp2 = lp.clone();
    /// std::thread::spawn(move || lp2.call_soon_threadsafe(move || ()).unwrap())
    ///     .join()
    ///     .unwrap();
    /// lp.stop();
    /// lp.run_forever().unwrap();
    /// ```
    pub fn call_soon_threadsafe<F: FnOnce() + Send + 'static>(&self, f: F) -> Result<Handle> {
        let (call, handle) = Submission::callback(f);
        if let Some(half) = self.running_here() {
            half.push_ready(Ready::Sent(call));
        } else {
            self.submit(call)?;
        }
        Ok(handle)
    }

    /// Schedules `f` to run `delay` seconds from now (SCHED-4). Zero and
    /// negative delays are allowed: the timer is due at once. A NaN delay is
    /// refused with [`Error::NanTime`] (SCHED-6).
    ///
    /// ```
    /// use loopspec::{ClockKind, EventLoop};
    ///
    /// let lp = EventLoop::with_clock(ClockKind::Virtual);
    /// let lp2 = lp.clone();
    /// lp.call_later(1.5, move || lp2.stop()).unwrap();
    /// lp.run_forever().unwrap();
    /// assert_eq!(lp.time(), 1.5);
    /// ```
    pub fn call_later<F: FnOnce() + 'static>(&self, delay: f64, f: F) -> Result<TimerHandle> {
        if delay.is_nan() {
            return Err(Error::NanTime);
        }
        self.call_at(self.time() + delay, f)
    }

    /// Schedules `f` to run at loop time `when` (SCHED-4).
    pub fn call_at<F: FnOnce() + 'static>(&self, when: f64, f: F) -> Result<TimerHandle> {
        if when.is_nan() {
            return Err(Error::NanTime);
        }
        let handle = Handle::for_callback::<F>();
        let h = handle.clone();
        self.with_half(move |half| half.push_timer(when, Box::new(f), h))?;
        Ok(TimerHandle::new(handle, when))
    }

    // ------------------------------------------------------------------
    // Futures and tasks
    // ------------------------------------------------------------------

    /// A new pending future bound to this loop (FUT-1). Never fails, even on
    /// a closed loop, as in asyncio.
    pub fn create_future<T: 'static>(&self) -> Future<T> {
        Future::new(self)
    }

    /// Wraps a Rust future (the coroutine of the Rust mapping) in a
    /// [`Task`] and schedules its first step with `call_soon` (TASK-1).
    ///
    /// Passing a loopspec [`Future`] or [`Task`] fails with asyncio's
    /// `TypeError` (`a coroutine was expected, got <Future pending>`); a closed
    /// loop fails with [`Error::Closed`] and drops `coro` without polling it.
    pub fn create_task<T, F>(&self, coro: F) -> Result<Task<T>>
    where
        T: 'static,
        F: std::future::Future<Output = Result<T>> + 'static,
    {
        let mut slot = Some(coro);
        if let Some(got) = future_like_repr::<T, F>(&mut slot) {
            // asyncio checks for a closed loop first.
            if self.is_closed() {
                return Err(Error::Closed);
            }
            return Err(Error::CoroutineExpected { got });
        }
        let coro = slot.take().ok_or(Error::Closed)?;
        // Spawning fails with `Closed` on a closed loop (the scheduling call
        // checks it), dropping `coro` unpolled.
        Task::spawn(self, coro)
    }

    /// asyncio's `ensure_future(x, loop=self)`: a loopspec [`Future`] or
    /// [`Task`] of this loop is returned as it is (one of another loop is a
    /// `ValueError`); any other Rust future is wrapped in a new task.
    pub fn ensure_future<T, F>(&self, f: F) -> Result<Future<T>>
    where
        T: 'static,
        F: std::future::Future<Output = Result<T>> + 'static,
    {
        Ok(self.ensure_future_inner(f)?.0)
    }

    /// `ensure_future`, also saying whether a task was made for it.
    fn ensure_future_inner<T, F>(&self, f: F) -> Result<(Future<T>, bool)>
    where
        T: 'static,
        F: std::future::Future<Output = Result<T>> + 'static,
    {
        let mut slot = Some(f);
        match take_future_like(&mut slot) {
            Some(fut) if fut.get_loop() != *self => Err(Error::DifferentLoop),
            Some(fut) => Ok((fut, false)),
            None => {
                let coro = slot.take().ok_or(Error::Closed)?;
                Ok((self.create_task(coro)?.into_future(), true))
            }
        }
    }

    // ------------------------------------------------------------------
    // Running
    // ------------------------------------------------------------------

    /// The run checks, in asyncio's order: closed, already running, another
    /// loop running in this thread (LIFE-5), then the home thread (THREAD-2).
    /// Changes nothing when one fails (LIFE-6).
    fn check_can_run(&self, st: &RunState) -> Result<()> {
        if st.closed {
            return Err(Error::Closed);
        }
        // Seeded bug: let a second thread past the running and home checks.
        #[cfg(not(loopspec_mutant = "double-run"))]
        if st.running.is_some() {
            return Err(Error::AlreadyRunning);
        }
        #[cfg(not(loopspec_mutant = "double-run"))]
        if local::running_loop().is_some() {
            return Err(Error::AnotherLoopRunning);
        }
        match &st.home {
            #[cfg(not(loopspec_mutant = "double-run"))]
            Some(home) if home.thread != local::current_thread_id() => Err(Error::BoundToThread {
                thread: home.name.clone(),
            }),
            _ => Ok(()),
        }
    }

    fn enter_run(&self) -> Result<RunGuard<'_>> {
        let me = local::current_thread_id();
        let mut stale = None;
        let half = {
            let mut st = self.lock();
            if let Err(e) = self.check_can_run(&st) {
                drop(st);
                if e == Error::Closed {
                    self.discard_own_half();
                }
                return Err(e);
            }
            let half = self.half_for(&mut st, me, &mut stale)?;
            st.running = Some(me);
            half
        };
        if let Some(half) = stale {
            self.destroy_half(&half);
        }
        local::set_running(Some((self.clone(), half.clone())));
        Ok(RunGuard { lp: self, half })
    }

    /// Runs iterations until [`stop`](EventLoop::stop) is requested; returns
    /// after the iteration in which the stop was seen (STOP-1). A stop
    /// requested before the call makes exactly one iteration, with poll
    /// timeout 0 (STOP-2). The stop flag is cleared on every return.
    ///
    /// Errors, checked in this order before anything changes: [`Error::Closed`],
    /// [`Error::AlreadyRunning`] (from its own callbacks or from another thread),
    /// [`Error::AnotherLoopRunning`], [`Error::BoundToThread`].
    ///
    /// ```
    /// use loopspec::{ClockKind, EventLoop};
    ///
    /// let lp = EventLoop::with_clock(ClockKind::Virtual);
    /// let lp2 = lp.clone();
    /// lp.call_later(10.0, move || lp2.stop()).unwrap();
    /// lp.run_forever().unwrap();
    /// assert_eq!(lp.time(), 10.0);
    /// assert!(!lp.is_running());
    /// ```
    pub fn run_forever(&self) -> Result<()> {
        let run = self.enter_run()?;
        loop {
            self.run_once(&run.half);
            if self.shared.stopping.get() {
                break;
            }
        }
        drop(run);
        Ok(())
    }

    /// Runs the loop until `f` is done and returns its result (LIFE-2).
    ///
    /// `f` is a loopspec [`Future`] or [`Task`] of this loop, or any Rust
    /// future, which is wrapped in a new task. The loop stops one iteration
    /// after the future completes (STOP-6). If the loop stops first, this
    /// returns [`Error::StoppedBeforeComplete`] and the future stays pending
    /// (STOP-7).
    ///
    /// ```
    /// use loopspec::{ClockKind, EventLoop};
    ///
    /// let lp = EventLoop::with_clock(ClockKind::Virtual);
    /// assert_eq!(lp.run_until_complete(async { Ok(6 * 7) }).unwrap(), 42);
    /// ```
    pub fn run_until_complete<T, F>(&self, f: F) -> Result<T>
    where
        T: Clone + 'static,
        F: std::future::Future<Output = Result<T>> + 'static,
    {
        let checked = self.check_can_run(&self.lock());
        if let Err(e) = checked {
            if e == Error::Closed {
                self.discard_own_half();
            }
            return Err(e);
        }
        let (fut, new_task) = self.ensure_future_inner(f)?;
        let stop_when_done: DoneCallback<T> = Rc::new(|fut: &Future<T>| {
            if !fut.cancelled() {
                // Reading the exception marks it retrieved (LIFE-4).
                let _ = fut.exception();
            }
            fut.get_loop().stop();
        });
        fut.add_done_callback(stop_when_done.clone())?;
        let run = self.run_forever();
        fut.remove_done_callback(&stop_when_done);
        if let Err(e) = run {
            if new_task && fut.done() && !fut.cancelled() {
                let _ = fut.exception();
            }
            return Err(e);
        }
        if !fut.done() {
            return Err(Error::StoppedBeforeComplete);
        }
        fut.result()
    }

    /// One iteration of the loop. See the [module docs](self) and SPEC.md
    /// SCHED-1.
    fn run_once(&self, half: &LocalHalf) {
        // Seeded bug (loom mutant check): consume a stop requested before the
        // iteration, so the end-of-iteration check never sees it.
        #[cfg(loopspec_mutant = "clear-stop-early")]
        self.shared.stopping.take();
        // 1. Poll timeout: 0 if anything is ready (a requested stop is checked
        //    under the lock in `poll`), else until the earliest timer.
        let mut panics = Vec::new();
        let timeout = if half.ready_len() > 0 {
            Some(0.0)
        } else if half.has_timers() {
            half.timer_timeout(self.time(), &mut panics)
        } else {
            None
        };
        // 2. Poll for cross-thread submissions.
        self.poll(half, timeout);
        // 3. Due timers join the end of the ready queue (the clock is read
        //    only when there are timers).
        if half.has_timers() {
            half.move_due_timers(self.time(), &mut panics);
        }
        self.report_drop_panics("a cancelled timer", panics);
        // 4. Run exactly what is ready now.
        let ntodo = half.ready_len();
        for _ in 0..ntodo {
            let Some(entry) = half.pop_ready() else { break };
            self.run_ready(entry);
        }
    }

    /// Step 2 of an iteration: wait for submissions up to `timeout` seconds
    /// (`None`: no limit), then move them to the ready queue. A virtual clock
    /// advances by the timeout instead of waiting (CLOCK-2).
    fn poll(&self, half: &LocalHalf, timeout: Option<f64>) {
        let inbox = &self.shared.inbox;
        if timeout == Some(0.0) && !inbox.pending() {
            // Work is ready and, as far as the inbox says, nothing is
            // waiting in it. A submission racing with this look is taken in
            // the next iteration.
            return;
        }
        let jumps = timeout.is_some() && self.shared.clock.kind() == ClockKind::Virtual;
        if timeout != Some(0.0) && !jumps {
            // About to park (a virtual clock jumps to the deadline instead).
            self.spin_for_work();
        }
        match timeout {
            Some(t) if t <= 0.0 => {}
            Some(t) if jumps => {
                if !self.shared.stopping.get() && !inbox.pending() {
                    self.shared.clock.advance(t);
                }
            }
            // Parks unless a send is pending or a stop requested (the inbox
            // reads both under its lock: no lost wake-up, no lost stop).
            _ => inbox.park(timeout.map(clock::timeout_duration), || {
                self.shared.stopping.get()
            }),
        }
        self.take_inbox(half);
        half.accept_spare();
    }

    /// Before parking, spin briefly for a submission or a stop: a producer in
    /// the middle of a burst usually delivers within a microsecond, which is
    /// far cheaper than a park and a wake-up. Only the unlocked hints are
    /// read; the decision to park is still taken under the lock. Loom models
    /// skip it (spinning only multiplies their interleavings), and so does a
    /// thread that may run on one CPU only: nobody can deliver while it spins
    /// there (the rule of adaptive mutexes and of Go's scheduler).
    fn spin_for_work(&self) {
        #[cfg(not(loom))]
        if !spinning_can_help() {
            return;
        }
        #[cfg(not(loom))]
        for i in 0..SPIN_ROUNDS {
            if self.shared.inbox.pending() || self.shared.stopping.get() {
                return;
            }
            if i < SPIN_ROUNDS - YIELD_ROUNDS {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }

    /// Runs one ready entry, reporting a panic to the exception handler.
    fn run_ready(&self, entry: Ready) {
        // The handle's repr is made only if the callback panics.
        let (outcome, handle, name) = match entry {
            Ready::Call { f, handle, name } => {
                if handle.as_ref().is_some_and(Handle::cancelled) {
                    let mut panics = Vec::new();
                    local::drop_each([f], &mut panics);
                    self.report_drop_panics("a cancelled callback", panics);
                    return;
                }
                (catch_unwind(AssertUnwindSafe(f)), handle, name)
            }
            Ready::Sent(call) => {
                let name = call.name();
                (catch_unwind(AssertUnwindSafe(|| call.run())), None, name)
            }
            Ready::Fire(fut) => (
                catch_unwind(AssertUnwindSafe(|| fut.fire_next())),
                None,
                "Future done callback",
            ),
            Ready::Step(task) => return task.step(),
        };
        if let Err(panic) = outcome {
            let repr = match &handle {
                Some(h) => format!("{h:?}"),
                None => format!("<Handle {name}>"),
            };
            self.call_exception_handler(&ExceptionContext {
                message: format!("Exception in callback {repr}"),
                exception: Some(Error::from_panic(panic)),
                handle: Some(repr),
                ..ExceptionContext::default()
            });
        }
    }

    /// Requests a stop: `run_forever` returns after the current (or next)
    /// complete iteration (STOP-1). Callable from any thread; never an error,
    /// even on a stopped or closed loop. A parked loop is woken (STOP-5).
    pub fn stop(&self) {
        self.shared.stopping.set();
        // Seeded bug (`stop-no-wake`): a stop does not wake a parked loop.
        #[cfg(not(loopspec_mutant = "stop-no-wake"))]
        self.shared.inbox.wake();
    }

    /// Closes the loop (LIFE-7): refused on a running loop; idempotent; drops
    /// every queued callback, timer and cross-thread submission without
    /// running it, and the futures of unfinished tasks (each reported as
    /// `Task was destroyed but it is pending!`).
    ///
    /// Loop-bound work lives on the loop's home thread: closing from another
    /// thread drops it there, at that thread's next call on the loop or when
    /// it exits (THREAD-5).
    pub fn close(&self) -> Result<()> {
        let me = local::current_thread_id();
        let home_is_me = {
            let mut st = self.lock();
            if st.running.is_some() {
                return Err(Error::CloseRunning);
            }
            if st.closed {
                drop(st);
                self.discard_own_half();
                return Ok(());
            }
            st.closed = true;
            let home_is_me = st.home.as_ref().is_some_and(|h| h.thread == me);
            if home_is_me {
                st.home = None;
            }
            home_is_me
        };
        // Sends accepted before the inbox closed are returned, to be dropped
        // here; later ones are refused (`inbox`).
        let inbox = self.shared.inbox.close();
        let mut panics = Vec::new();
        local::drop_each(inbox, &mut panics);
        self.report_drop_panics("a queued cross-thread callback", panics);
        // The default executor is shut down without waiting (LIFE-7, EXEC-2).
        if let Some(pool) = self.shared.executor.lock().take() {
            crate::thread_pool::Executor::shutdown(&*pool, false);
        }
        if home_is_me {
            self.discard_own_half();
        }
        Ok(())
    }

    /// Drops the loop-bound work this thread holds for the loop, if any: the
    /// loop was closed (here, or by another thread, THREAD-5) or released
    /// after a run (THREAD-3).
    fn discard_own_half(&self) {
        if let Some(half) = local::remove_bound(self) {
            self.destroy_half(&half);
        }
    }

    /// Empties a half at close, reporting pending tasks (TASK-8).
    fn destroy_half(&self, half: &LocalHalf) {
        self.report_cleared(half.clear());
    }

    /// Reports what emptying a half found: each destructor panic, then each
    /// task destroyed while pending.
    pub(crate) fn report_cleared(&self, cleared: local::Cleared) {
        self.report_drop_panics("queued work", cleared.panics);
        for task in cleared.pending {
            self.call_exception_handler(&ExceptionContext {
                message: "Task was destroyed but it is pending!".into(),
                task: Some(task),
                ..ExceptionContext::default()
            });
        }
    }

    /// Reports panics raised by destructors of user values the loop dropped.
    pub(crate) fn report_drop_panics(&self, what: &str, panics: Vec<Error>) {
        for panic in panics {
            self.call_exception_handler(
                &ExceptionContext::new(format!("Exception while dropping {what}"))
                    .with_exception(panic),
            );
        }
    }

    /// Called by a home thread's exit: releases the home if it still is
    /// this claim, and puts `sent` — the cross-thread submissions the exiting
    /// half had taken in — back at the front of the inbox, unless the loop is
    /// closed (THREAD-4). Returns what a closed loop refused, to be dropped
    /// by the caller outside the lock (THREAD-5).
    pub(crate) fn release_home_on_exit(
        &self,
        epoch: u64,
        sent: VecDeque<Submission>,
    ) -> VecDeque<Submission> {
        // Handed back while this thread is still the home: the next home
        // claims the loop after the release below, so it finds them.
        // Seeded bug (`exit-drops-submissions`): they are dropped instead.
        #[cfg(not(loopspec_mutant = "exit-drops-submissions"))]
        let refused = self.shared.inbox.hand_back(sent).err().unwrap_or_default();
        #[cfg(loopspec_mutant = "exit-drops-submissions")]
        let refused = sent;
        let mut st = self.lock();
        if st.epoch == epoch && st.home.is_some() {
            st.home = None;
        }
        refused
    }

    // ------------------------------------------------------------------
    // Exceptions
    // ------------------------------------------------------------------

    /// Installs `handler` as the loop's exception handler; `None` restores
    /// the default one, which writes one line to stderr (SCHED-8).
    pub fn set_exception_handler(&self, handler: Option<ExceptionHandler>) {
        *self.shared.handler.lock() = handler;
    }

    /// The installed exception handler, if any.
    pub fn get_exception_handler(&self) -> Option<ExceptionHandler> {
        self.shared.handler.lock().clone()
    }

    /// Reports `context` to the exception handler. If a custom handler
    /// panics, the default handler reports `Unhandled error in exception
    /// handler` and the loop goes on (SCHED-8).
    pub fn call_exception_handler(&self, context: &ExceptionContext) {
        let handler = self.shared.handler.lock().clone();
        match handler {
            None => default_exception_handler(context),
            Some(h) => {
                if let Err(panic) = catch_unwind(AssertUnwindSafe(|| h(self, context))) {
                    default_exception_handler(
                        &ExceptionContext::new(format!(
                            "Unhandled error in exception handler; context: {context}"
                        ))
                        .with_exception(Error::from_panic(panic)),
                    );
                }
            }
        }
    }

    /// A fresh task id for this loop (1, 2, ...).
    pub(crate) fn next_task_id(&self) -> u64 {
        self.shared.next_task.fetch_add(1, Ordering::Relaxed)
    }

    /// The thread-safe wake path of a task waker: step task `id` soon.
    pub(crate) fn wake_task(&self, id: u64, wake_up: impl FnOnce() -> Submission) {
        if let Some(half) = self.running_here() {
            half.wake_task(id);
        } else {
            // A closed loop refuses it: the task can never run again anyway.
            let _ = self.submit(wake_up());
        }
    }

    /// The default executor, started on first use.
    pub(crate) fn default_executor(&self) -> Arc<crate::thread_pool::ThreadPool> {
        self.shared.executor.lock().get()
    }

    /// Keeps a loop-bound value in this thread's half under a fresh id, so a
    /// `Send` closure can refer to it (THREAD-1 applies).
    pub(crate) fn hold(&self, value: Box<dyn Any>) -> Result<u64> {
        let id = self.shared.next_held.fetch_add(1, Ordering::Relaxed);
        self.with_half(|half| {
            half.held.borrow_mut().insert(id, value);
        })?;
        Ok(id)
    }

    /// Takes back a value kept with [`hold`](Self::hold), on its home thread.
    pub(crate) fn take_held(&self, id: u64) -> Option<Box<dyn Any>> {
        self.with_half(|half| half.held.borrow_mut().remove(&id))
            .ok()
            .flatten()
    }

    /// Cancels task `id` of this loop, if it is unfinished (the loop-thread
    /// end of a cancellation forwarded from another thread).
    pub(crate) fn cancel_task_by_id(&self, id: u64) -> bool {
        let task = self
            .with_half(|half| half.tasks.borrow().get(&id).cloned())
            .ok()
            .flatten();
        task.is_some_and(|t| t.cancel_dyn(None))
    }

    /// Unfinished tasks of this loop, if this thread is its home.
    pub(crate) fn local_tasks(&self) -> Vec<Rc<dyn task::TaskDyn>> {
        local::running_half(self)
            .or_else(|| {
                let st = self.lock();
                local::bound_half(self, st.epoch)
            })
            .map(|h| h.tasks())
            .unwrap_or_default()
    }
}

/// How long the loop spins before parking: `SPIN_ROUNDS` checks of the inbox
/// hint, the last `YIELD_ROUNDS` of them yielding the CPU.
#[cfg(not(loom))]
const SPIN_ROUNDS: u32 = 32;
#[cfg(not(loom))]
const YIELD_ROUNDS: u32 = 8;

/// Whether the calling thread may run on more than one CPU, so that a
/// producer can deliver while the loop spins. Read once per thread (the
/// affinity mask a thread has when its loop first waits).
#[cfg(not(loom))]
fn spinning_can_help() -> bool {
    std::thread_local! {
        static MULTI_CPU: bool =
            std::thread::available_parallelism().is_ok_and(|n| n.get() > 1);
    }
    MULTI_CPU.with(|m| *m)
}

/// The default exception handler: one line on stderr.
pub fn default_exception_handler(context: &ExceptionContext) {
    eprintln!("{context}");
}

/// If `slot` holds a loopspec `Future<T>` or `Task<T>`, takes it out: the
/// runtime `isfuture()` check of asyncio's `ensure_future`.
pub(crate) fn take_future_like<T: 'static, F: 'static>(slot: &mut Option<F>) -> Option<Future<T>> {
    let any: &mut dyn Any = slot;
    if let Some(fut) = any.downcast_mut::<Option<Future<T>>>() {
        return fut.take();
    }
    if let Some(task) = any.downcast_mut::<Option<Task<T>>>() {
        return task.take().map(Task::into_future);
    }
    None
}

/// If `slot` holds a loopspec `Future<T>` or `Task<T>`, its repr.
fn future_like_repr<T: 'static, F: 'static>(slot: &mut Option<F>) -> Option<String> {
    let any: &mut dyn Any = slot;
    if let Some(Some(f)) = any.downcast_mut::<Option<Future<T>>>() {
        return Some(format!("{f:?}"));
    }
    if let Some(Some(t)) = any.downcast_mut::<Option<Task<T>>>() {
        return Some(format!("{t:?}"));
    }
    None
}

/// The loop running in this thread: asyncio's `get_running_loop()` (POLICY-10).
///
/// ```
/// use loopspec::{ClockKind, Error, EventLoop};
///
/// assert_eq!(loopspec::get_running_loop().unwrap_err(), Error::NoRunningLoop);
/// let lp = EventLoop::with_clock(ClockKind::Virtual);
/// let found = lp.run_until_complete(async { loopspec::get_running_loop() }).unwrap();
/// assert_eq!(found, lp);
/// ```
pub fn get_running_loop() -> Result<EventLoop> {
    local::running_loop().ok_or(Error::NoRunningLoop)
}

/// Unfinished tasks of the running loop: asyncio's `all_tasks()`.
pub fn all_tasks() -> Result<Vec<task::TaskRef>> {
    let lp = get_running_loop()?;
    Ok(lp
        .local_tasks()
        .into_iter()
        .map(task::TaskRef::from_dyn)
        .collect())
}
