//! [`Executor`] and the default [`ThreadPool`]: where `run_in_executor` runs
//! blocking work (SPEC.md EXEC-2, EXEC-4). Nothing here knows about loops:
//! the pool runs jobs; [`run_in_executor`](crate::EventLoop::run_in_executor)
//! (`src/executor.rs`) turns a job's outcome into a loop future.

use crate::error::{Error, Result};
use crate::sync::{Arc, Condvar, Mutex, thread};
use std::collections::VecDeque;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// A job for an executor.
pub type Job = Box<dyn FnOnce() + Send>;

/// Something that runs jobs, usually on other threads: asyncio's executor.
pub trait Executor: Send + Sync {
    /// Queues `job`. Fails once the executor is shut down.
    fn submit(&self, job: Job) -> Result<()>;

    /// Stops accepting jobs. With `wait`, returns once every queued job has
    /// run; without, returns at once (queued jobs still run).
    fn shutdown(&self, wait: bool);
}

/// A pool's state, under its lock.
struct PoolState {
    /// Jobs submitted and not yet taken by a worker, in order.
    queue: VecDeque<Job>,
    /// Workers alive (idle or running a job); never above `max_workers`.
    workers: usize,
    /// Workers waiting for a job.
    idle: usize,
    /// Idle workers already signalled for a queued job, not yet awake: a
    /// submission claims an idle worker here, so two quick submissions never
    /// count on the same one (EXEC-2).
    claimed: usize,
    /// `shutdown` was called: no job is accepted, and workers exit once
    /// the queue is empty. Never cleared.
    shutdown: bool,
    /// Workers ever started: the N of the next worker's name `PREFIX_N`.
    spawned: usize,
    /// The workers' threads, joined by `shutdown(true)`.
    handles: Vec<thread::JoinHandle<()>>,
}

/// What the pool's handles and workers share.
struct PoolShared {
    /// The state, under the pool's lock.
    state: Mutex<PoolState>,
    /// Signalled for a queued job (to one idle worker) and at shutdown (to
    /// all).
    work: Condvar,
    /// Signalled when a worker exits: what [`ThreadPool::shutdown_within`]
    /// waits on.
    exited: Condvar,
    /// The most workers the pool starts (at least 1). Fixed.
    max_workers: usize,
    /// The workers' name prefix. Fixed.
    prefix: String,
}

/// A bounded thread pool, like `concurrent.futures.ThreadPoolExecutor`: a
/// worker is started for a new job only when none is idle and fewer than
/// `max_workers` exist; workers are named `PREFIX_N`.
///
/// ```
/// use loopspec::{Executor, ThreadPool};
/// use std::sync::mpsc;
///
/// let pool = ThreadPool::new(2, "demo");
/// let (tx, rx) = mpsc::channel();
/// pool.submit(Box::new(move || tx.send(std::thread::current().name().map(String::from)).unwrap()))
///     .unwrap();
/// assert_eq!(rx.recv().unwrap().as_deref(), Some("demo_0"));
/// pool.shutdown(true);
/// ```
pub struct ThreadPool {
    /// Shared with the workers.
    shared: Arc<PoolShared>,
}

impl fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.shared.state.lock();
        write!(
            f,
            "<ThreadPool {} workers={} max={} shutdown={}>",
            self.shared.prefix, st.workers, self.shared.max_workers, st.shutdown
        )
    }
}

impl ThreadPool {
    /// A pool of at most `max_workers` (at least 1) threads named `prefix_N`.
    pub fn new(max_workers: usize, prefix: impl Into<String>) -> ThreadPool {
        ThreadPool {
            shared: Arc::new(PoolShared {
                state: Mutex::new(PoolState {
                    queue: VecDeque::new(),
                    workers: 0,
                    idle: 0,
                    claimed: 0,
                    shutdown: false,
                    spawned: 0,
                    handles: Vec::new(),
                }),
                work: Condvar::new(),
                exited: Condvar::new(),
                max_workers: max_workers.max(1),
                prefix: prefix.into(),
            }),
        }
    }

    /// asyncio's default size: `min(32, cpus + 4)`.
    pub fn default_size() -> usize {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        (cpus + 4).min(32)
    }

    /// The most threads this pool starts.
    pub fn max_workers(&self) -> usize {
        self.shared.max_workers
    }

    /// Shuts the pool down and waits, at most `timeout` (`None`: without
    /// limit), until every queued job has run and every worker has exited.
    /// Returns whether they all did; if not, the pool is left shut down
    /// without waiting (its jobs still run). What
    /// [`EventLoop::shutdown_default_executor`](crate::EventLoop::shutdown_default_executor)
    /// does on its joining thread (EXEC-5).
    ///
    /// ```
    /// use loopspec::{Executor, ThreadPool};
    /// use std::time::Duration;
    ///
    /// let pool = ThreadPool::new(1, "demo");
    /// let (tx, rx) = std::sync::mpsc::channel::<()>();
    /// pool.submit(Box::new(move || { let _ = rx.recv(); })).unwrap();
    /// assert!(!pool.shutdown_within(Some(Duration::ZERO))); // the job still waits
    /// drop(tx);
    /// assert!(pool.shutdown_within(None));
    /// ```
    pub fn shutdown_within(&self, timeout: Option<std::time::Duration>) -> bool {
        let deadline = timeout.map(|t| std::time::Instant::now().checked_add(t));
        let mut st = self.shared.state.lock();
        st.shutdown = true;
        self.shared.work.notify_all();
        while st.workers > 0 {
            st = match deadline {
                None | Some(None) => self.shared.exited.wait(st),
                Some(Some(deadline)) => {
                    let now = std::time::Instant::now();
                    if now >= deadline {
                        return false;
                    }
                    self.shared.exited.wait_timeout(st, deadline - now)
                }
            };
        }
        let handles = std::mem::take(&mut st.handles);
        drop(st);
        for h in handles {
            let _ = h.join();
        }
        true
    }
}

fn worker(shared: Arc<PoolShared>) {
    let mut st = shared.state.lock();
    loop {
        if let Some(job) = st.queue.pop_front() {
            drop(st);
            // A panicking job must not take the worker down.
            let _ = catch_unwind(AssertUnwindSafe(job));
            st = shared.state.lock();
            continue;
        }
        if st.shutdown {
            st.workers -= 1;
            drop(st);
            shared.exited.notify_all();
            return;
        }
        st.idle += 1;
        st = shared.work.wait(st);
        st.idle -= 1;
        st.claimed = st.claimed.saturating_sub(1);
    }
}

impl Executor for ThreadPool {
    fn submit(&self, job: Job) -> Result<()> {
        let mut st = self.shared.state.lock();
        if st.shutdown {
            return Err(Error::PoolShutdown);
        }
        st.queue.push_back(job);
        if st.idle > st.claimed {
            st.claimed += 1;
            drop(st);
            self.shared.work.notify_one();
            return Ok(());
        }
        if st.workers < self.shared.max_workers {
            let name = format!("{}_{}", self.shared.prefix, st.spawned);
            let shared = self.shared.clone();
            match thread::Builder::new()
                .name(name)
                .spawn(move || worker(shared))
            {
                Ok(handle) => {
                    st.workers += 1;
                    st.spawned += 1;
                    st.handles.push(handle);
                }
                // No thread could be started: an existing worker (if any)
                // will take the job when it is free.
                Err(_) if st.workers > 0 => {}
                Err(_) => {
                    st.queue.pop_back();
                    return Err(Error::PoolShutdown);
                }
            }
        }
        Ok(())
    }

    fn shutdown(&self, wait: bool) {
        let handles = {
            let mut st = self.shared.state.lock();
            st.shutdown = true;
            if wait {
                std::mem::take(&mut st.handles)
            } else {
                Vec::new()
            }
        };
        self.shared.work.notify_all();
        for h in handles {
            let _ = h.join();
        }
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        self.shutdown(false);
    }
}

/// A loop's default executor: none until `run_in_executor(None, ..)` first
/// needs it (EXEC-1) or `set_default_executor` sets it (EXEC-5), taken out
/// by `close()`.
#[derive(Default)]
pub(crate) struct DefaultPool {
    /// The pool, once started or set; `None` again after `close()` took it.
    pool: Option<Arc<ThreadPool>>,
    /// `shutdown_default_executor` or `close()` was called: the default
    /// executor takes no more jobs, whatever is set later (EXEC-6). Never
    /// cleared.
    shutdown_called: bool,
}

impl DefaultPool {
    /// The pool, started on first use (EXEC-1); refused once its shutdown
    /// was called (EXEC-6).
    pub(crate) fn get(&mut self) -> Result<Arc<ThreadPool>> {
        if self.shutdown_called {
            return Err(Error::ExecutorShutdownCalled);
        }
        Ok(self
            .pool
            .get_or_insert_with(|| Arc::new(ThreadPool::new(ThreadPool::default_size(), "asyncio")))
            .clone())
    }

    /// Replaces the pool (the one it replaces is dropped, not waited for).
    pub(crate) fn set(&mut self, pool: Arc<ThreadPool>) {
        self.pool = Some(pool);
    }

    /// Takes the pool out, leaving the shutdown flag as it is.
    pub(crate) fn take_pool(&mut self) -> Option<Arc<ThreadPool>> {
        self.pool.take()
    }

    /// Marks the shutdown as called and returns the pool to shut down, if
    /// one was ever started or set.
    pub(crate) fn begin_shutdown(&mut self) -> Option<Arc<ThreadPool>> {
        self.shutdown_called = true;
        self.pool.clone()
    }

    /// Takes the pool out, for `close()` to shut it down without waiting.
    pub(crate) fn take(&mut self) -> Option<Arc<ThreadPool>> {
        self.shutdown_called = true;
        self.pool.take()
    }
}
