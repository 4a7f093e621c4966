//! EXEC rules of SPEC.md: `run_in_executor`, the default thread pool, custom
//! executors and cancellation before a job starts.
//!
//! Determinism: jobs that must not start yet are held by a custom executor
//! that queues them until the test releases them, or block on a channel the
//! test controls; threads are joined (or a job's completion received) before
//! asserting. One test checks that a pool thread exits after `close()`; it
//! waits for a message sent from that thread's exit, with a long hang guard
//! that fails the test instead of hanging it.

use common::{HANG_GUARD, capture_exceptions, recv_or_hang, run_once, vloop};
use loopspec::{Error, Executor, Job, ThreadPool};
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;

/// Queues jobs until the test runs them with `run_all`.
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

    /// Runs every queued job on a new thread, and joins it.
    fn run_all_in_a_thread(&self) {
        let jobs = std::mem::take(&mut *self.jobs.lock().unwrap());
        thread::spawn(move || {
            for job in jobs {
                job();
            }
        })
        .join()
        .unwrap();
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

fn assert_closed(err: &Error) {
    assert_eq!(*err, Error::Closed);
    assert_eq!(err.to_string(), "Event loop is closed");
    assert_eq!(err.python_type(), "RuntimeError");
}

fn assert_pool_shutdown(err: &Error) {
    assert_eq!(*err, Error::PoolShutdown);
    assert_eq!(
        err.to_string(),
        "cannot schedule new futures after shutdown"
    );
    assert_eq!(err.python_type(), "RuntimeError");
}

fn thread_name() -> String {
    thread::current().name().unwrap_or("?").to_string()
}

// ---------------------------------------------------------------------------
// EXEC-1
// ---------------------------------------------------------------------------

/// Rules: EXEC-1, EXEC-2
#[test]
fn run_in_executor_default_pool_returns_the_result() {
    let lp = vloop();
    let fut = lp.run_in_executor(None, || Ok(6 * 7)).unwrap();
    assert_eq!(fut.get_loop(), lp);
    assert!(!fut.done());
    assert_eq!(lp.run_until_complete(fut), Ok(42));
    lp.close().unwrap();
}

/// Rules: EXEC-1, CHAIN-3
#[test]
fn run_in_executor_result_arrives_in_an_iteration_after_the_job_returned() {
    let lp = vloop();
    let ex = InlineExecutor::default();
    let fut = lp.run_in_executor(Some(&ex), || Ok("inline")).unwrap();
    // The job already ran (inline), yet the loop future is not done.
    assert_eq!(ex.runs.load(Ordering::SeqCst), 1);
    assert!(!fut.done());
    run_once(&lp);
    assert_eq!(fut.result(), Ok("inline"));
    lp.close().unwrap();
}

/// Rules: EXEC-1
#[test]
fn run_in_executor_error_becomes_the_exception() {
    let lp = vloop();
    let errors = capture_exceptions(&lp);
    let fut = lp
        .run_in_executor(None, || {
            Err::<i32, _>(Error::raise("ValueError", "bad job"))
        })
        .unwrap();
    let err = lp.run_until_complete(fut.clone()).unwrap_err();
    assert_eq!(err, Error::raise("ValueError", "bad job"));
    assert_eq!(err.python_type(), "ValueError");
    assert_eq!(
        fut.exception(),
        Ok(Some(Error::raise("ValueError", "bad job")))
    );
    assert!(errors.lock().unwrap().is_empty());

    // A Rust error, wrapped.
    let fut = lp
        .run_in_executor(None, || "x".parse::<i32>().map_err(Error::from_error))
        .unwrap();
    let err = lp.run_until_complete(fut).unwrap_err();
    assert_eq!(err.python_type(), "Exception");
    assert_eq!(err.to_string(), "invalid digit found in string");
    lp.close().unwrap();
}

/// Rules: EXEC-1, TASK-14
#[test]
fn run_in_executor_panic_becomes_the_exception() {
    let lp = vloop();
    let fut = lp
        .run_in_executor(None, || -> loopspec::Result<i32> { panic!("job panicked") })
        .unwrap();
    let err = lp.run_until_complete(fut).unwrap_err();
    assert_eq!(err, Error::Panic("job panicked".into()));
    assert_eq!(err.python_type(), "Panic");
    // The pool survives the panic.
    let fut = lp.run_in_executor(None, || Ok(1)).unwrap();
    assert_eq!(lp.run_until_complete(fut), Ok(1));
    lp.close().unwrap();
}

/// Rules: EXEC-1, LIFE-8
#[test]
fn run_in_executor_on_a_closed_loop_fails_at_the_call() {
    let lp = vloop();
    lp.close().unwrap();
    let ex = HeldExecutor::default();
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    let err = lp
        .run_in_executor(Some(&ex), move || {
            r.store(true, Ordering::SeqCst);
            Ok(())
        })
        .unwrap_err();
    assert_closed(&err);
    assert_eq!(ex.submitted.load(Ordering::SeqCst), 0, "nothing submitted");
    assert_closed(&lp.run_in_executor(None, || Ok(())).unwrap_err());
    assert!(!ran.load(Ordering::SeqCst));
}

/// Rules: EXEC-1, THREAD-1
#[test]
fn run_in_executor_off_the_home_thread_fails() {
    let lp = vloop();
    lp.call_soon(|| ()).unwrap();
    let l = lp.clone();
    let err = thread::spawn(move || {
        let ex = HeldExecutor::default();
        let e = l.run_in_executor(Some(&ex), || Ok(())).unwrap_err();
        assert_eq!(ex.submitted.load(Ordering::SeqCst), 0);
        e
    })
    .join()
    .unwrap();
    assert_eq!(err, Error::NonThreadSafeCall);
    lp.close().unwrap();
}

/// Rules: EXEC-1
#[test]
fn run_in_executor_awaited_by_a_task() {
    let lp = vloop();
    let got = lp
        .run_until_complete(async {
            let lp = loopspec::get_running_loop()?;
            let a = lp.run_in_executor(None, || Ok(2))?;
            let b = lp.run_in_executor(None, || Ok(3))?;
            Ok(a.await? * b.await?)
        })
        .unwrap();
    assert_eq!(got, 6);
    lp.close().unwrap();
}

// ---------------------------------------------------------------------------
// EXEC-2
// ---------------------------------------------------------------------------

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

/// Rules: EXEC-2
#[test]
fn default_executor_threads_are_named_asyncio_n() {
    let lp = vloop();
    let fut = lp.run_in_executor(None, || Ok(thread_name())).unwrap();
    assert_eq!(lp.run_until_complete(fut), Ok("asyncio_0".to_string()));
    lp.close().unwrap();

    // Two jobs that can only finish together run on two threads of a fresh
    // pool: asyncio_0 and asyncio_1.
    let lp = vloop();
    let (a, b) = rendezvous_pair();
    let fa = lp.run_in_executor(None, a).unwrap();
    let fb = lp.run_in_executor(None, b).unwrap();
    let (ra, rb) = (
        lp.run_until_complete(fa).unwrap(),
        lp.run_until_complete(fb).unwrap(),
    );
    assert!(ra.0 && rb.0, "the two jobs ran at the same time");
    let names = BTreeSet::from([ra.1, rb.1]);
    assert_eq!(
        names,
        BTreeSet::from(["asyncio_0".to_string(), "asyncio_1".to_string()])
    );
    lp.close().unwrap();
}

/// Rules: EXEC-2
#[test]
fn default_executor_idle_thread_is_claimed_by_one_job_only() {
    // CPython's ThreadPoolExecutor (3.11.7, 3.13.0): with one idle thread, a
    // second job submitted right after a first starts a new thread
    // (`_idle_semaphore.acquire(timeout=0)` claims the idle one). Checked
    // with a job A that waits for a job B to start: B ran on p_1 while A ran
    // on p_0. "A new thread is started only when no thread is idle": the one
    // idle thread stops being idle once a job is handed to it.
    let lp = vloop();
    let fut = lp.run_in_executor(None, || Ok(())).unwrap();
    lp.run_until_complete(fut).unwrap(); // asyncio_0 goes idle
    let (a, b) = rendezvous_pair();
    let fa = lp.run_in_executor(None, a).unwrap();
    let fb = lp.run_in_executor(None, b).unwrap();
    let ra = lp.run_until_complete(fa).unwrap();
    let rb = lp.run_until_complete(fb).unwrap();
    assert!(
        ra.0,
        "the second job did not start while the first ran: {ra:?} {rb:?}"
    );
    assert_ne!(ra.1, rb.1);
    lp.close().unwrap();
}

/// Rules: EXEC-2
#[test]
fn default_executor_size_is_min_32_cpus_plus_4() {
    let cpus = thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(ThreadPool::default_size(), (cpus + 4).min(32));
}

/// Rules: EXEC-2
#[test]
fn default_executor_is_per_loop_and_made_on_first_use() {
    // Each loop numbers its own pool's threads from 0.
    for _ in 0..2 {
        let lp = vloop();
        let fut = lp.run_in_executor(None, || Ok(thread_name())).unwrap();
        assert_eq!(lp.run_until_complete(fut), Ok("asyncio_0".to_string()));
        lp.close().unwrap();
    }
}

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
        pool.submit(Box::new(move || {
            s.send(()).unwrap();
            r.lock().unwrap().recv().unwrap();
            n.send(thread_name()).unwrap();
        }))
        .unwrap();
    }
    started_rx.recv_timeout(HANG_GUARD).unwrap();
    started_rx.recv_timeout(HANG_GUARD).unwrap(); // both workers busy
    let n = name_tx.clone();
    pool.submit(Box::new(move || {
        n.send(format!("third on {}", thread_name())).unwrap()
    }))
    .unwrap();
    release_tx.send(()).unwrap();
    release_tx.send(()).unwrap();
    let names: Vec<String> = (0..3)
        .map(|_| name_rx.recv_timeout(HANG_GUARD).unwrap())
        .collect();
    let firsts: BTreeSet<_> = names
        .iter()
        .filter(|n| !n.starts_with("third"))
        .cloned()
        .collect();
    assert_eq!(
        firsts,
        BTreeSet::from(["capped_0".to_string(), "capped_1".to_string()])
    );
    let third = names.iter().find(|n| n.starts_with("third")).unwrap();
    assert!(
        third == "third on capped_0" || third == "third on capped_1",
        "no third thread: {third}"
    );
    pool.shutdown(true);
    let max = ThreadPool::new(0, "zero");
    assert_eq!(max.max_workers(), 1, "at least one worker");
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

/// Rules: EXEC-2, LIFE-7, CHAIN-6
#[test]
fn close_shuts_the_default_pool_down_without_waiting() {
    let lp = vloop();
    let errors = capture_exceptions(&lp);
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let (started_tx, started_rx) = mpsc::channel();
    let (exit_tx, exit_rx) = mpsc::channel();
    let (ran_tx, ran_rx) = mpsc::channel();
    let busy = {
        let ran = ran_tx.clone();
        lp.run_in_executor(None, move || {
            EXIT_SIGNAL.with(|s| *s.borrow_mut() = Some(ExitSignal(exit_tx, thread_name())));
            started_tx.send(()).unwrap();
            release_rx.recv().unwrap();
            ran.send("busy").unwrap();
            Ok(1)
        })
        .unwrap()
    };
    started_rx.recv_timeout(HANG_GUARD).unwrap();
    // close() returns while the job is still blocked: it does not wait.
    lp.close().unwrap();
    assert!(lp.is_closed());
    release_tx.send(()).unwrap();
    assert_eq!(
        ran_rx.recv_timeout(HANG_GUARD),
        Ok("busy"),
        "the running job finishes"
    );
    // The worker exits once its queue is empty: the pool was shut down.
    let exited = exit_rx
        .recv_timeout(HANG_GUARD)
        .expect("the pool thread exits after close()");
    assert_eq!(exited, "asyncio_0");
    // The result is dropped: the loop is closed (CHAIN-6).
    assert!(!busy.done());
    assert!(errors.lock().unwrap().is_empty());
    assert_closed(&lp.run_in_executor(None, || Ok(())).unwrap_err());
}

/// Rules: EXEC-2, LIFE-7
#[test]
fn close_lets_already_queued_jobs_run() {
    let lp = vloop();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release_rx = Arc::new(Mutex::new(release_rx));
    let (started_tx, started_rx) = mpsc::channel();
    let (ran_tx, ran_rx) = mpsc::channel();
    let futs: Vec<_> = (0..3)
        .map(|i| {
            let (r, s, d) = (release_rx.clone(), started_tx.clone(), ran_tx.clone());
            lp.run_in_executor(None, move || {
                s.send(()).unwrap();
                r.lock().unwrap().recv().unwrap();
                d.send(i).unwrap();
                Ok(i)
            })
            .unwrap()
        })
        .collect();
    // At least the first job is running when the loop closes.
    started_rx.recv_timeout(HANG_GUARD).unwrap();
    lp.close().unwrap();
    for _ in 0..3 {
        release_tx.send(()).unwrap();
    }
    let mut ran: Vec<i32> = (0..3)
        .map(|_| ran_rx.recv_timeout(HANG_GUARD).unwrap())
        .collect();
    ran.sort();
    assert_eq!(ran, [0, 1, 2], "every job submitted before close() ran");
    assert!(futs.iter().all(|f| !f.done()), "their results were dropped");
}

// ---------------------------------------------------------------------------
// EXEC-3
// ---------------------------------------------------------------------------

/// Rules: EXEC-3, CHAIN-4
#[test]
fn cancelling_before_the_job_starts_prevents_it() {
    let lp = vloop();
    let ex = HeldExecutor::default();
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    let fut = lp
        .run_in_executor(Some(&ex), move || {
            r.store(true, Ordering::SeqCst);
            Ok(1)
        })
        .unwrap();
    assert_eq!(ex.queued(), 1);
    assert!(fut.cancel());
    run_once(&lp); // the cancellation reaches the concurrent future
    ex.run_all_in_a_thread(); // the worker finds it cancelled
    assert!(!ran.load(Ordering::SeqCst), "the job never ran");
    for _ in 0..2 {
        run_once(&lp);
    }
    assert!(fut.cancelled());
    assert!(lp.run_until_complete(fut).unwrap_err().is_cancelled());
    lp.close().unwrap();
}

/// Rules: EXEC-3
#[test]
fn cancelling_the_awaiting_task_before_the_job_starts_prevents_it() {
    let lp = vloop();
    let ex = Arc::new(HeldExecutor::default());
    let ran = Arc::new(AtomicBool::new(false));
    let (e, r) = (ex.clone(), ran.clone());
    let task = lp
        .create_task(async move {
            let lp = loopspec::get_running_loop()?;
            let fut = lp.run_in_executor(Some(&*e), move || {
                r.store(true, Ordering::SeqCst);
                Ok(1)
            })?;
            fut.await
        })
        .unwrap();
    run_once(&lp); // the task submitted the job and waits
    assert_eq!(ex.queued(), 1);
    assert!(task.cancel());
    for _ in 0..3 {
        run_once(&lp);
    }
    ex.run_all_in_a_thread();
    assert!(!ran.load(Ordering::SeqCst));
    assert!(task.cancelled());
    lp.close().unwrap();
}

/// Rules: EXEC-3, CHAIN-5
#[test]
fn cancelling_a_running_job_lets_it_finish_and_drops_the_result() {
    let lp = vloop();
    let errors = capture_exceptions(&lp);
    let (returned_tx, returned_rx) = mpsc::channel();
    let ex = SignallingExecutor {
        returned: Mutex::new(returned_tx),
    };
    let (started_tx, started_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let finished = Arc::new(AtomicBool::new(false));
    let f = finished.clone();
    let fut = lp
        .run_in_executor(Some(&ex), move || {
            started_tx.send(()).unwrap();
            release_rx.recv().unwrap();
            f.store(true, Ordering::SeqCst);
            Ok(5)
        })
        .unwrap();
    started_rx.recv_timeout(HANG_GUARD).unwrap(); // running
    assert!(fut.cancel());
    run_once(&lp); // cancel() on the running concurrent future fails
    assert!(!finished.load(Ordering::SeqCst));
    release_tx.send(()).unwrap();
    recv_or_hang(&returned_rx, "the job returned"); // the job set its result and returned
    assert!(finished.load(Ordering::SeqCst), "the running job finished");
    for _ in 0..3 {
        run_once(&lp); // the copy arrives and is ignored
    }
    assert!(fut.cancelled(), "stays cancelled");
    assert!(lp.run_until_complete(fut).unwrap_err().is_cancelled());
    assert!(errors.lock().unwrap().is_empty());
    lp.close().unwrap();
}

/// Rules: EXEC-3, CONC-4
#[test]
fn cancelled_job_leaves_its_concurrent_future_cancelled_and_notified() {
    // Observed through a custom executor that inspects the job's effect:
    // the job of a cancelled future returns without running `f`.
    let lp = vloop();
    let ex = HeldExecutor::default();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let a = lp
        .run_in_executor(Some(&ex), move || {
            c.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
        .unwrap();
    let c = calls.clone();
    let b = lp
        .run_in_executor(Some(&ex), move || {
            c.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
        .unwrap();
    a.cancel();
    run_once(&lp);
    ex.run_all_in_a_thread();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "only the uncancelled job ran"
    );
    run_once(&lp);
    assert!(a.cancelled());
    assert_eq!(b.result(), Ok(()));
    lp.close().unwrap();
}

// ---------------------------------------------------------------------------
// EXEC-4
// ---------------------------------------------------------------------------

/// Rules: EXEC-4
#[test]
fn run_in_executor_uses_a_custom_executor() {
    let lp = vloop();
    let ex = HeldExecutor::default();
    let fut = lp.run_in_executor(Some(&ex), || Ok(thread_name())).unwrap();
    assert_eq!(ex.submitted.load(Ordering::SeqCst), 1);
    assert!(!fut.done());
    run_once(&lp);
    assert!(!fut.done(), "the job waits for the executor");
    thread::Builder::new()
        .name("custom-worker".into())
        .spawn({
            let jobs = std::mem::take(&mut *ex.jobs.lock().unwrap());
            move || jobs.into_iter().for_each(|j| j())
        })
        .unwrap()
        .join()
        .unwrap();
    run_once(&lp);
    assert_eq!(fut.result(), Ok("custom-worker".to_string()));
    lp.close().unwrap();
}

/// Rules: EXEC-4
#[test]
fn custom_executor_refusal_is_returned_by_run_in_executor() {
    let lp = vloop();
    let err = lp
        .run_in_executor(Some(&RefusingExecutor), || Ok(1))
        .unwrap_err();
    assert_eq!(err, Error::raise("OSError", "no threads left"));

    let ex = HeldExecutor::default();
    ex.shutdown(false);
    assert_pool_shutdown(&lp.run_in_executor(Some(&ex), || Ok(1)).unwrap_err());
    lp.close().unwrap();
}

/// Rules: EXEC-4
#[test]
fn thread_pool_after_shutdown_refuses_new_jobs() {
    let pool = ThreadPool::new(2, "pool");
    let (tx, rx) = mpsc::channel();
    pool.submit(Box::new(move || tx.send(thread_name()).unwrap()))
        .unwrap();
    assert_eq!(recv_or_hang(&rx, "the job ran"), "pool_0");
    pool.shutdown(true);
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    let err = pool
        .submit(Box::new(move || r.store(true, Ordering::SeqCst)))
        .unwrap_err();
    assert_pool_shutdown(&err);
    // Also through run_in_executor.
    let lp = vloop();
    let err = lp.run_in_executor(Some(&pool), || Ok(())).unwrap_err();
    assert_pool_shutdown(&err);
    assert!(!ran.load(Ordering::SeqCst));
    lp.close().unwrap();
}

/// Rules: EXEC-4
#[test]
fn thread_pool_shutdown_wait_runs_queued_jobs_first() {
    let pool = ThreadPool::new(1, "waiter");
    let ran = Arc::new(AtomicUsize::new(0));
    for _ in 0..10 {
        let r = ran.clone();
        pool.submit(Box::new(move || {
            r.fetch_add(1, Ordering::SeqCst);
        }))
        .unwrap();
    }
    pool.shutdown(true);
    assert_eq!(ran.load(Ordering::SeqCst), 10);
    assert_pool_shutdown(&pool.submit(Box::new(|| ())).unwrap_err());
}

/// Rules: EXEC-4, EXEC-1
#[test]
fn thread_pool_as_the_executor_of_a_loop() {
    let lp = vloop();
    let pool = ThreadPool::new(3, "mine");
    let fut = lp
        .run_in_executor(Some(&pool), || Ok(thread_name()))
        .unwrap();
    assert_eq!(lp.run_until_complete(fut), Ok("mine_0".to_string()));
    lp.close().unwrap();
    // Closing the loop does not shut a pool it does not own.
    let (tx, rx) = mpsc::channel();
    pool.submit(Box::new(move || tx.send(()).unwrap())).unwrap();
    rx.recv_timeout(HANG_GUARD).unwrap();
    pool.shutdown(true);
}
