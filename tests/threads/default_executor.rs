//! EXEC rules of SPEC.md about the default executor's life:
//! `set_default_executor`, `shutdown_default_executor`, the runner's wait for
//! the executor's jobs at close, and `to_thread`.
//!
//! Determinism: a job that must still be running blocks on a channel that the
//! test (or a task the test controls) releases; nothing sleeps and nothing
//! measures time. A timeout that must run out is zero, with the job blocked
//! until after the wait returned.

use common::{Log, Scene, assert_py_error, profile_loop, recv_or_hang};
use loopspec::{
    Error, EventLoop, Profile, Runner, ThreadPool, catch_warnings, get_running_loop,
    run_with_loop_factory, sleep, to_thread,
};
use std::future::Future;
use std::sync::{Arc, mpsc};
use std::thread;

fn thread_name() -> String {
    thread::current().name().unwrap_or("?").to_string()
}

fn assert_shutdown_called(err: &Error) {
    assert_eq!(*err, Error::ExecutorShutdownCalled);
    assert_py_error(err, "RuntimeError", "Executor shutdown has been called");
}

/// A job that waits for a message on a channel, then logs `done`: the
/// sender releases it.
fn held_job(
    log: &Log,
    done: &'static str,
) -> (
    mpsc::Sender<()>,
    impl FnOnce() -> loopspec::Result<()> + Send + 'static,
) {
    let (tx, rx) = mpsc::channel::<()>();
    let log = log.clone();
    let job = move || {
        recv_or_hang(&rx, "the test releases the job");
        log.push(done);
        Ok(())
    };
    (tx, job)
}

/// `set_default_executor(pool)` makes `pool` the executor of
/// `run_in_executor(None, ..)`, on an open or a closed loop; the type is
/// CPython's `ThreadPoolExecutor` check.
/// Rules: EXEC-5, EXEC-1
#[test]
fn set_default_executor_is_what_run_in_executor_none_uses() {
    let s = Scene::new();
    let name = s.run_in_executor(None, || Ok(thread_name())).unwrap();
    assert_eq!(s.run_until_complete(name), Ok("asyncio_0".to_string()));
    s.lp.set_default_executor(Arc::new(ThreadPool::new(2, "mine")));
    let name = s.run_in_executor(None, || Ok(thread_name())).unwrap();
    assert_eq!(s.run_until_complete(name), Ok("mine_0".to_string()));
    s.close().unwrap();
    // Allowed on a closed loop, as in CPython; nothing can use it.
    s.lp.set_default_executor(Arc::new(ThreadPool::new(1, "late")));
}

/// `shutdown_default_executor()` waits for the jobs still running, lets the
/// loop run meanwhile, and from then on the default executor refuses work —
/// even a pool set afterwards — while explicit executors still take it. A
/// second call, or one on a loop that never started its pool, returns at
/// once.
/// Rules: EXEC-6
#[test]
fn shutdown_default_executor_waits_for_the_jobs_then_refuses_the_default() {
    let s = Scene::new();
    let (release, job) = held_job(&s.log, "job done");
    drop(s.run_in_executor(None, job).unwrap());
    let log = s.log.clone();
    let sde = s.lp.shutdown_default_executor(None);
    let shutdown = s
        .create_task(async move {
            sde.await?;
            log.push("shutdown returned");
            Ok(())
        })
        .unwrap();
    s.lp.call_soon(s.cb("the loop runs meanwhile")).unwrap();
    assert_eq!(s.once(), ["the loop runs meanwhile"]);
    assert!(!shutdown.done(), "a job still runs");
    assert_shutdown_called(&s.run_in_executor(None, || Ok(1)).unwrap_err());
    release.send(()).unwrap();
    assert_eq!(s.run_until_complete(shutdown), Ok(()));
    assert_eq!(s.take(), ["job done", "shutdown returned"]);

    s.lp.set_default_executor(Arc::new(ThreadPool::new(1, "mine")));
    assert_shutdown_called(&s.run_in_executor(None, || Ok(1)).unwrap_err());
    let pool = ThreadPool::new(1, "explicit");
    let fut = s.run_in_executor(Some(&pool), || Ok(2)).unwrap();
    assert_eq!(s.run_until_complete(fut), Ok(2));
    assert_eq!(
        s.run_until_complete(s.lp.shutdown_default_executor(None)),
        Ok(())
    );
    s.close().unwrap();

    let unused = Scene::new();
    let sde = unused.lp.shutdown_default_executor(Some(1.0));
    assert_eq!(unused.run_until_complete(sde), Ok(()));
    assert_shutdown_called(&unused.run_in_executor(None, || Ok(1)).unwrap_err());
    unused.close().unwrap();
}

/// From 3.13 a timeout that runs out while a job runs ends the wait with a
/// `RuntimeWarning` (the job still runs); 3.11 and 3.12 wait for the job
/// whatever the timeout.
/// Rules: EXEC-6
#[test]
fn shutdown_default_executor_timeout_warns_from_3_13() {
    for profile in Profile::ALL {
        let s = Scene::on(profile_loop(profile));
        let (release, job) = held_job(&s.log, "job done");
        drop(s.run_in_executor(None, job).unwrap());
        if profile >= Profile::Py313 {
            let sde = s.lp.shutdown_default_executor(Some(0.0));
            let (out, warned) = catch_warnings(|| s.run_until_complete(sde));
            assert_eq!(out, Ok(()), "{profile:?}");
            let warned: Vec<String> = warned.iter().map(|w| w.to_string()).collect();
            assert_eq!(
                warned,
                [
                    "RuntimeWarning: The executor did not finishing joining its threads within 0 seconds."
                ],
                "{profile:?}"
            );
            assert!(s.take().is_empty(), "the job still waits");
            release.send(()).unwrap();
        } else {
            let sde = s.lp.shutdown_default_executor(Some(0.0));
            let shutdown = s.create_task(sde).unwrap();
            s.once();
            assert!(
                !shutdown.done(),
                "{profile:?}: the timeout does not end the wait"
            );
            release.send(()).unwrap();
            let (out, warned) = catch_warnings(|| s.run_until_complete(shutdown));
            assert_eq!(out, Ok(()), "{profile:?}");
            assert!(warned.is_empty(), "{profile:?}");
            assert_eq!(s.take(), ["job done"]);
        }
        s.close().unwrap();
    }
}

/// A runner's close — `run()`'s end — cancels the pending tasks, then waits
/// for the default executor's jobs, then closes the loop: a job that is
/// still running when `main` returns finishes before `run()` returns. Here
/// the job waits until the pending task sees its cancellation.
/// Rules: EXEC-7, RUNNER-4
#[test]
fn run_waits_for_the_default_executors_running_jobs() {
    for profile in Profile::ALL {
        let log = Log::new();
        let (release, job) = {
            let (tx, rx) = mpsc::channel::<()>();
            let log = log.clone();
            let job = move || {
                recv_or_hang(&rx, "the cancelled task releases the job");
                log.push("job done");
                Ok(())
            };
            (tx, job)
        };
        let l = log.clone();
        let main = async move {
            let lp = get_running_loop()?;
            drop(lp.run_in_executor(None, job)?);
            let l2 = l.clone();
            lp.create_task(async move {
                let slept = sleep(10.0).await;
                l2.push("task cancelled");
                release.send(()).unwrap();
                slept
            })?;
            l.push("main returns");
            Ok(())
        };
        let lp_seen = Arc::new(std::sync::Mutex::new(None::<EventLoop>));
        let seen = lp_seen.clone();
        let out = run_with_loop_factory(main, move || {
            let lp = profile_loop(profile);
            *seen.lock().unwrap() = Some(lp.clone());
            lp
        });
        log.push("run returned");
        assert_eq!(out, Ok(()), "{profile:?}");
        assert_eq!(
            log.take(),
            ["main returns", "task cancelled", "job done", "run returned"],
            "{profile:?}"
        );
        assert!(lp_seen.lock().unwrap().as_ref().unwrap().is_closed());
    }
}

/// `to_thread(f)` runs `f` on the running loop's default executor (threads
/// `asyncio_N`) and gives its outcome; outside a running loop it fails when
/// awaited; after `shutdown_default_executor` it is refused. A `to_thread`
/// job still running when `run()` ends is waited for.
/// Rules: EXEC-8, EXEC-2, EXEC-7
#[test]
fn to_thread_runs_on_the_default_executor() {
    let s = Scene::new();
    let got = s.run_until_complete(async {
        let a = to_thread(|| Ok(thread_name())).await?;
        let b = to_thread(|| Err::<i32, _>(Error::raise("ValueError", "bad"))).await;
        Ok((a, b))
    });
    let (a, b) = got.unwrap();
    assert_eq!(a, "asyncio_0");
    assert_py_error(&b.unwrap_err(), "ValueError", "bad");
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let mut outside = Box::pin(to_thread(|| Ok(1)));
    match outside.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(Err(e)) => {
            assert_py_error(&e, "RuntimeError", "no running event loop")
        }
        other => panic!("outside a loop: {other:?}"),
    }
    s.run_until_complete(s.lp.shutdown_default_executor(None))
        .unwrap();
    let refused = s.run_until_complete(to_thread(|| Ok(1)));
    assert_shutdown_called(&refused.unwrap_err());
    s.close().unwrap();

    let log = Log::new();
    let (started_tx, started) = mpsc::channel::<()>();
    let (release, held) = mpsc::channel::<()>();
    let l = log.clone();
    let job = move || {
        started_tx.send(()).unwrap();
        recv_or_hang(&held, "the cancelled task releases the job");
        l.push("to_thread job done");
        Ok(())
    };
    let l = log.clone();
    let mut runner = Runner::with_loop_factory(|| profile_loop(Profile::Py313));
    let out = runner.run(async move {
        let lp = get_running_loop()?;
        drop(lp.create_task(to_thread(job))?);
        let l2 = l.clone();
        lp.create_task(async move {
            let slept = sleep(10.0).await;
            release.send(()).unwrap();
            slept
        })?;
        loopspec::yield_now().await?;
        // Started, so the close's cancellation cannot keep it from running.
        recv_or_hang(&started, "the job starts");
        l2.push("main returns");
        Ok(())
    });
    assert_eq!(out, Ok(()));
    runner.close();
    log.push("runner closed");
    assert_eq!(
        log.take(),
        ["main returns", "to_thread job done", "runner closed"]
    );
}
