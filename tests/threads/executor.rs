//! EXEC rules of SPEC.md: `run_in_executor`, the default thread pool, custom
//! executors and cancellation before a job starts.
//!
//! Determinism: jobs that must not start yet are held by a custom executor
//! that queues them until the test releases them, or block on a channel the
//! test controls; threads are joined (or a job's completion received) before
//! asserting. One test checks that a pool thread exits after `close()`; it
//! waits for a message sent from that thread's exit, with a long hang guard
//! that fails the test instead of hanging it.

use common::{
    HANG_GUARD, Scene, assert_closed, assert_py_error, capture_exceptions, cases, count, counter,
    recv_or_hang, value_error,
};
use loopspec::{Error, Executor, Job, ThreadPool};
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;

/// Queues jobs until the test runs them with `run_all_in`.
#[derive(Default)]
struct HeldExecutor {
    jobs: Mutex<Vec<Job>>,
    submitted: AtomicUsize,
    shutdown: AtomicBool,
}

impl Executor for HeldExecutor {
    fn submit(&self, job: Job) -> loopspec::Result<()> {
        if self.shutdown.load(Ordering::SeqCst) {
            return Err(Error::PoolShutdown);
        }
        self.submitted.fetch_add(1, Ordering::SeqCst);
        self.jobs.lock().unwrap().push(job);
        Ok(())
    }

    fn shutdown(&self, _wait: bool) {
        self.shutdown.store(true, Ordering::SeqCst);
    }
}

impl HeldExecutor {
    fn queued(&self) -> usize {
        self.jobs.lock().unwrap().len()
    }

    /// Runs every queued job on a new thread called `name`, and joins it.
    fn run_all_in(&self, name: &str) {
        let jobs = std::mem::take(&mut *self.jobs.lock().unwrap());
        let worker = thread::Builder::new().name(name.into());
        let handle = worker.spawn(move || jobs.into_iter().for_each(|job| job()));
        handle.unwrap().join().unwrap();
    }
}

/// Runs each job at once, inside `submit`, on the submitting thread.
#[derive(Default)]
struct InlineExecutor {
    runs: AtomicUsize,
}

impl Executor for InlineExecutor {
    fn submit(&self, job: Job) -> loopspec::Result<()> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        job();
        Ok(())
    }

    fn shutdown(&self, _wait: bool) {}
}

/// Runs each job on a new thread and reports when the job has returned.
struct SignallingExecutor {
    returned: Mutex<mpsc::Sender<()>>,
}

impl Executor for SignallingExecutor {
    fn submit(&self, job: Job) -> loopspec::Result<()> {
        let tx = self.returned.lock().unwrap().clone();
        thread::spawn(move || {
            job();
            tx.send(()).unwrap();
        });
        Ok(())
    }

    fn shutdown(&self, _wait: bool) {}
}

/// Refuses every job.
struct RefusingExecutor;

impl Executor for RefusingExecutor {
    fn submit(&self, _job: Job) -> loopspec::Result<()> {
        Err(Error::raise("OSError", "no threads left"))
    }

    fn shutdown(&self, _wait: bool) {}
}

fn assert_pool_shutdown(err: &Error) {
    assert_eq!(*err, Error::PoolShutdown);
    let msg = "cannot schedule new futures after shutdown";
    assert_py_error(err, "RuntimeError", msg);
}

fn thread_name() -> String {
    thread::current().name().unwrap_or("?").to_string()
}

/// A job that counts its runs in `ran` and returns `value`.
fn counted<T: Send + 'static>(
    ran: &Arc<AtomicUsize>,
    value: T,
) -> impl FnOnce() -> loopspec::Result<T> + Send + 'static {
    let ran = ran.clone();
    move || {
        ran.fetch_add(1, Ordering::SeqCst);
        Ok(value)
    }
}

/// `run_in_executor(executor, f)` runs `f` there — the loop's default pool
/// if `None` — and gives a future of the loop with its outcome: its result,
/// its error (a wrapped Rust error too), its panic (the pool survives), one
/// iteration after the job returned. Refused on a closed loop (nothing
/// submitted); the future is the loop's work, which any thread may make.
/// Rules: EXEC-1, EXEC-2, CHAIN-3, TASK-14, LIFE-8, THREAD-9
#[test]
fn run_in_executor_gives_a_future_of_the_jobs_outcome() {
    cases(&[
        ("the default pool's result", |s| {
            let fut = s.run_in_executor(None, || Ok(6 * 7)).unwrap();
            assert!(fut.get_loop() == s.lp && !fut.done());
            assert_eq!(s.run_until_complete(fut), Ok(42));
        }),
        ("an iteration after the job returned", |s| {
            let ex = InlineExecutor::default();
            let fut = s.run_in_executor(Some(&ex), || Ok("inline")).unwrap();
            // The job already ran (inline), yet the loop future is not done.
            assert_eq!(ex.runs.load(Ordering::SeqCst), 1);
            assert!(!fut.done());
            s.once();
            assert_eq!(fut.result(), Ok("inline"));
        }),
        ("an error, a Rust error, a panic", |s| {
            let errors = capture_exceptions(s);
            let fut = s.run_in_executor(None, || Err::<i32, _>(value_error("bad job")));
            let fut = fut.unwrap();
            assert_eq!(
                s.run_until_complete(fut.clone()),
                Err(value_error("bad job"))
            );
            assert_eq!(fut.exception(), Ok(Some(value_error("bad job"))));
            let rust = || "x".parse::<i32>().map_err(Error::from_error);
            let err = s.run_until_complete(s.run_in_executor(None, rust).unwrap());
            assert_py_error(
                &err.unwrap_err(),
                "Exception",
                "invalid digit found in string",
            );
            let boom = || -> loopspec::Result<i32> { panic!("job panicked") };
            let err = s.run_until_complete(s.run_in_executor(None, boom).unwrap());
            assert_eq!(err, Err(Error::Panic("job panicked".into())));
            let fut = s.run_in_executor(None, || Ok(1)).unwrap();
            assert_eq!(s.run_until_complete(fut), Ok(1), "the pool survives");
            assert!(errors.messages().is_empty());
        }),
        ("awaited by a task", |s| {
            let got = s.run_until_complete(async {
                let lp = loopspec::get_running_loop()?;
                let a = lp.run_in_executor(None, || Ok(2))?;
                let b = lp.run_in_executor(None, || Ok(3))?;
                Ok(a.await? * b.await?)
            });
            assert_eq!(got, Ok(6));
        }),
        ("refused on a closed loop", |s| {
            s.close().unwrap();
            let (ex, ran) = (HeldExecutor::default(), counter());
            assert_closed(&s.run_in_executor(Some(&ex), counted(&ran, ())).unwrap_err());
            assert_eq!(ex.submitted.load(Ordering::SeqCst), 0, "nothing submitted");
            assert_closed(&s.run_in_executor(None, counted(&ran, ())).unwrap_err());
            assert_eq!(count(&ran), 0);
        }),
        (
            "the loop's work: from another thread, whatever thread is the local home",
            |s| {
                s.call_soon_local(|| ()).unwrap();
                let lp = s.lp.clone();
                let fut = thread::spawn(move || lp.run_in_executor(None, || Ok(4)).unwrap());
                let fut = fut.join().unwrap();
                assert_eq!(s.run_until_complete(fut), Ok(4));
            },
        ),
    ]);
}

/// Two jobs for `submit` that can only finish if they run at the same time:
/// the first waits (up to the hang guard) for the second to start. Each
/// returns `(saw_the_other, thread name)`.
type RendezvousJob = Box<dyn FnOnce() -> loopspec::Result<(bool, String)> + Send>;

fn rendezvous_pair() -> (RendezvousJob, RendezvousJob) {
    let (b_started_tx, b_started_rx) = mpsc::channel::<()>();
    let (a_done_tx, a_done_rx) = mpsc::channel::<()>();
    let a = move || {
        let saw_b = b_started_rx.recv_timeout(HANG_GUARD).is_ok();
        let _ = a_done_tx.send(());
        Ok((saw_b, thread_name()))
    };
    let b = move || {
        let _ = b_started_tx.send(());
        let saw_a = a_done_rx.recv_timeout(HANG_GUARD).is_ok();
        Ok((saw_a, thread_name()))
    };
    (Box::new(a), Box::new(b))
}

/// Runs a rendezvous pair on `s`'s default pool: the two outcomes.
fn rendezvous(s: &Scene) -> [(bool, String); 2] {
    let (a, b) = rendezvous_pair();
    let fa = s.run_in_executor(None, a).unwrap();
    let fb = s.run_in_executor(None, b).unwrap();
    [fa, fb].map(|f| s.run_until_complete(f).unwrap())
}

/// The default executor is a pool per loop, made on first use, of at most
/// `min(32, cpus + 4)` threads named `asyncio_N`; a new thread is started
/// only when no thread is idle, and an idle thread is claimed by one job
/// only (CPython's ThreadPoolExecutor, 3.11.7 and 3.13.0: with one idle
/// thread a second job submitted right after a first starts a new thread,
/// as `_idle_semaphore.acquire(timeout=0)` claims the idle one).
/// Rules: EXEC-2
#[test]
fn the_default_executor_is_a_pool_per_loop() {
    let cpus = thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(ThreadPool::default_size(), (cpus + 4).min(32));
    // Each loop numbers its own pool's threads from 0.
    for _ in 0..2 {
        let s = Scene::new();
        let fut = s.run_in_executor(None, || Ok(thread_name())).unwrap();
        assert_eq!(s.run_until_complete(fut), Ok("asyncio_0".to_string()));
        s.close().unwrap();
    }
    // Two jobs that can only finish together run on two threads of a fresh
    // pool: asyncio_0 and asyncio_1.
    let s = Scene::new();
    let [a, b] = rendezvous(&s);
    assert!(a.0 && b.0, "the two jobs ran at the same time");
    let names = BTreeSet::from([a.1, b.1]);
    assert_eq!(
        names,
        BTreeSet::from(["asyncio_0".into(), "asyncio_1".into()])
    );
    s.close().unwrap();
    // With one idle thread, the second job starts while the first runs.
    let s = Scene::new();
    s.run_until_complete(s.run_in_executor(None, || Ok(())).unwrap())
        .unwrap(); // asyncio_0 goes idle
    let [a, b] = rendezvous(&s);
    assert!(
        a.0,
        "the second job did not start while the first ran: {a:?} {b:?}"
    );
    assert_ne!(a.1, b.1);
    s.close().unwrap();
}

/// A `ThreadPool` starts at most `max_workers` threads (at least one): a
/// third job waits for one of the two busy workers.
/// Rules: EXEC-2
#[test]
fn thread_pool_starts_at_most_max_workers_threads() {
    let pool = ThreadPool::new(2, "capped");
    assert_eq!(pool.max_workers(), 2);
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release_rx = Arc::new(Mutex::new(release_rx));
    let (name_tx, name_rx) = mpsc::channel();
    let (started_tx, started_rx) = mpsc::channel();
    for _ in 0..2 {
        let (r, n, s) = (release_rx.clone(), name_tx.clone(), started_tx.clone());
        let job = move || {
            s.send(()).unwrap();
            r.lock().unwrap().recv().unwrap();
            n.send(thread_name()).unwrap();
        };
        pool.submit(Box::new(job)).unwrap();
    }
    for _ in 0..2 {
        recv_or_hang(&started_rx, "both workers busy");
    }
    let n = name_tx.clone();
    let third = move || n.send(format!("third on {}", thread_name())).unwrap();
    pool.submit(Box::new(third)).unwrap();
    release_tx.send(()).unwrap();
    release_tx.send(()).unwrap();
    let names: BTreeSet<String> = (0..3)
        .map(|_| recv_or_hang(&name_rx, "a job ran"))
        .collect();
    let firsts: Vec<&String> = names.iter().filter(|n| !n.starts_with("third")).collect();
    assert_eq!(firsts, ["capped_0", "capped_1"]);
    let third = names.iter().find(|n| n.starts_with("third")).unwrap();
    assert!(
        third == "third on capped_0" || third == "third on capped_1",
        "{third}"
    );
    pool.shutdown(true);
    assert_eq!(
        ThreadPool::new(0, "zero").max_workers(),
        1,
        "at least one worker"
    );
}

thread_local! {
    /// Set by a job in a pool thread; its drop reports the thread's exit.
    static EXIT_SIGNAL: RefCell<Option<ExitSignal>> = const { RefCell::new(None) };
}

struct ExitSignal(mpsc::Sender<String>, String);

impl Drop for ExitSignal {
    fn drop(&mut self) {
        let _ = self.0.send(self.1.clone());
    }
}

/// `close()` shuts the default pool down without waiting: a running job —
/// and every job queued before — still runs, its result dropped (the loop
/// is closed, CHAIN-6), and the worker exits once its queue is empty.
/// Rules: EXEC-2, LIFE-7, CHAIN-6
#[test]
fn close_shuts_the_default_pool_down_without_waiting() {
    let s = Scene::new();
    let errors = capture_exceptions(&s);
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release_rx = Arc::new(Mutex::new(release_rx));
    let (started_tx, started_rx) = mpsc::channel();
    let (exit_tx, exit_rx) = mpsc::channel();
    let (ran_tx, ran_rx) = mpsc::channel();
    let futs: Vec<_> = (0..3)
        .map(|i| {
            let (r, go, d) = (release_rx.clone(), started_tx.clone(), ran_tx.clone());
            let e = exit_tx.clone();
            let job = move || {
                let me = ExitSignal(e, thread_name());
                EXIT_SIGNAL.with(|x| *x.borrow_mut() = Some(me));
                go.send(()).unwrap();
                r.lock().unwrap().recv().unwrap();
                d.send(i).unwrap();
                Ok(i)
            };
            s.run_in_executor(None, job).unwrap()
        })
        .collect();
    drop(exit_tx);
    // At least the first job is running when the loop closes.
    recv_or_hang(&started_rx, "a job started");
    s.close().unwrap();
    assert!(s.is_closed(), "close() returned while a job is blocked");
    for _ in 0..3 {
        release_tx.send(()).unwrap();
    }
    let mut ran: Vec<i32> = (0..3).map(|_| recv_or_hang(&ran_rx, "a job ran")).collect();
    ran.sort();
    assert_eq!(ran, [0, 1, 2], "every job submitted before close() ran");
    // Each worker that ran a job exits once the queue is empty (the channel
    // disconnects when the last one has): the pool was shut down.
    let mut exited = BTreeSet::new();
    loop {
        match exit_rx.recv_timeout(HANG_GUARD) {
            Ok(name) => exited.insert(name),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("hang guard: a pool thread lives on"),
        };
    }
    // Which worker takes which job is the machine's choice: a worker that
    // starts late may find the queue already emptied by the others.
    assert!(
        !exited.is_empty() && exited.iter().all(|n| n.starts_with("asyncio_")),
        "{exited:?}"
    );
    assert!(futs.iter().all(|f| !f.done()), "their results were dropped");
    assert!(errors.messages().is_empty());
    assert_closed(&s.run_in_executor(None, || Ok(())).unwrap_err());
}

/// Cancelling the future of a job that has not started — directly, or
/// through the task awaiting it — prevents the job: the worker finds its
/// concurrent future cancelled (CANCELLED_AND_NOTIFIED, CONC-4) and does not
/// run it. A job already running is not stopped: it finishes, and its
/// result is dropped (CHAIN-5).
/// Rules: EXEC-3, CHAIN-4, CHAIN-5, CONC-4
#[test]
fn cancelling_before_the_job_starts_prevents_it() {
    cases(&[
        ("the future; its sibling still runs", |s| {
            let (ex, ran) = (HeldExecutor::default(), counter());
            let fut = s.run_in_executor(Some(&ex), counted(&ran, 1)).unwrap();
            let other = s.run_in_executor(Some(&ex), counted(&ran, 2)).unwrap();
            assert_eq!(ex.queued(), 2);
            assert!(fut.cancel());
            s.once(); // the cancellation reaches the concurrent future
            ex.run_all_in("worker"); // the worker finds it cancelled
            assert_eq!(count(&ran), 1, "only the uncancelled job ran");
            s.once();
            s.once();
            assert!(fut.cancelled() && other.result() == Ok(2));
            assert!(s.run_until_complete(fut).unwrap_err().is_cancelled());
        }),
        ("the awaiting task", |s| {
            let (ex, ran) = (Arc::new(HeldExecutor::default()), counter());
            let (e, job) = (ex.clone(), counted(&ran, 1));
            let task = s.task(|_| async move {
                let lp = loopspec::get_running_loop()?;
                lp.run_in_executor(Some(&*e), job)?.await
            });
            s.once(); // the task submitted the job and waits
            assert_eq!(ex.queued(), 1);
            assert!(task.cancel());
            for _ in 0..3 {
                s.once();
            }
            ex.run_all_in("worker");
            assert_eq!(count(&ran), 0);
            assert!(task.cancelled());
        }),
        ("a running job finishes, its result dropped", |s| {
            let errors = capture_exceptions(s);
            let (returned_tx, returned_rx) = mpsc::channel();
            let ex = SignallingExecutor {
                returned: Mutex::new(returned_tx),
            };
            let (started_tx, started_rx) = mpsc::channel();
            let (release_tx, release_rx) = mpsc::channel::<()>();
            let finished = counter();
            let f = counted(&finished, 5);
            let fut = s
                .run_in_executor(Some(&ex), move || {
                    started_tx.send(()).unwrap();
                    release_rx.recv().unwrap();
                    f()
                })
                .unwrap();
            recv_or_hang(&started_rx, "the job runs");
            assert!(fut.cancel());
            s.once(); // cancel() on the running concurrent future fails
            assert_eq!(count(&finished), 0);
            release_tx.send(()).unwrap();
            recv_or_hang(&returned_rx, "the job returned");
            assert_eq!(count(&finished), 1, "the running job finished");
            for _ in 0..3 {
                s.once(); // the copy arrives and is ignored
            }
            assert!(fut.cancelled(), "stays cancelled");
            assert!(s.run_until_complete(fut).unwrap_err().is_cancelled());
            assert!(errors.messages().is_empty());
        }),
    ]);
}

/// A custom executor is used as given — the job waits for it, and runs on
/// its thread — and its refusal is `run_in_executor`'s error; a
/// `ThreadPool` refuses new jobs after `shutdown()` (`cannot schedule new
/// futures after shutdown`), which with `wait` first runs those queued; a
/// loop does not shut down a pool it does not own.
/// Rules: EXEC-4, EXEC-1
#[test]
fn custom_executors_and_thread_pools() {
    let s = Scene::new();
    let ex = HeldExecutor::default();
    let fut = s.run_in_executor(Some(&ex), || Ok(thread_name())).unwrap();
    assert_eq!(ex.submitted.load(Ordering::SeqCst), 1);
    s.once();
    assert!(!fut.done(), "the job waits for the executor");
    ex.run_all_in("custom-worker");
    s.once();
    assert_eq!(fut.result(), Ok("custom-worker".to_string()));
    let err = s.run_in_executor(Some(&RefusingExecutor), || Ok(1));
    assert_eq!(err.unwrap_err(), Error::raise("OSError", "no threads left"));
    ex.shutdown(false);
    assert_pool_shutdown(&s.run_in_executor(Some(&ex), || Ok(1)).unwrap_err());
    let pool = ThreadPool::new(3, "mine");
    let fut = s
        .run_in_executor(Some(&pool), || Ok(thread_name()))
        .unwrap();
    assert_eq!(s.run_until_complete(fut), Ok("mine_0".to_string()));
    s.close().unwrap();
    // Closing the loop does not shut a pool it does not own.
    let (tx, rx) = mpsc::channel();
    pool.submit(Box::new(move || tx.send(thread_name()).unwrap()))
        .unwrap();
    assert!(recv_or_hang(&rx, "the job ran").starts_with("mine_"));
    pool.shutdown(true);
    let (ran, job) = (counter(), counted(&counter(), ()));
    assert_pool_shutdown(&pool.submit(Box::new(move || drop(job()))).unwrap_err());
    let err = Scene::new().run_in_executor(Some(&pool), counted(&ran, ()));
    assert_pool_shutdown(&err.unwrap_err());
    assert_eq!(count(&ran), 0);
    let waiter = ThreadPool::new(1, "waiter");
    let ran = counter();
    for _ in 0..10 {
        let job = counted(&ran, ());
        waiter.submit(Box::new(move || drop(job()))).unwrap();
    }
    waiter.shutdown(true);
    assert_eq!(count(&ran), 10);
    assert_pool_shutdown(&waiter.submit(Box::new(|| ())).unwrap_err());
}
