//! A loop's work follows the loop from thread to thread (SPEC.md THREAD-3,
//! THREAD-8, THREAD-9, THREAD-5): CPython's five patterns, with CPython's
//! outcomes, and what makes them hold — a call on an idle loop acts as on the
//! loop's own thread, and a run that starts right after another finds its
//! work.
//!
//! Each thread is joined before its effects are asserted; threads are named
//! as in the CPython recordings. The patterns run under every profile: their
//! outcomes are the same on CPython 3.10 to 3.15.

use common::{
    Log, capture_exceptions, cf_result, in_thread, profile_loop, recv_or_hang, spawn_running,
    stop_running,
};
use loopspec::{
    Error, EventLoop, Profile, run_coroutine_threadsafe, run_coroutine_threadsafe_local,
};
use std::sync::{Arc, mpsc};
use std::thread;

/// The calling thread's name, as the recordings log it.
fn me() -> String {
    thread::current().name().unwrap_or("?").to_string()
}

/// One iteration of `lp` on this thread: `call_soon(stop)`, `run_forever`.
fn one_iteration(lp: &EventLoop) {
    let l = lp.clone();
    lp.call_soon(move || l.stop()).unwrap();
    lp.run_forever().unwrap();
}

/// `call_soon(cb)`, `create_task(coro)` and `call_soon(stop)` in the main
/// thread, `run_forever` in a worker: the callback and the task run there.
/// Rules: THREAD-8, THREAD-3
#[test]
fn work_scheduled_in_one_thread_runs_in_a_worker() {
    for profile in Profile::ALL {
        let (lp, log) = (profile_loop(profile), Log::new());
        lp.call_soon(log.cb("cb")).unwrap();
        let l = log.clone();
        let task = lp
            .create_task(async move {
                l.push("task");
                Ok(42)
            })
            .unwrap();
        let stopper = lp.clone();
        lp.call_soon(move || stopper.stop()).unwrap();
        let runner = lp.clone();
        in_thread("worker", move || runner.run_forever()).unwrap();
        assert_eq!(log.take(), ["cb", "task"]);
        assert_eq!(task.result(), Ok(42));
        lp.close().unwrap();
    }
}

/// A task made in the main thread, `run_until_complete(task)` in a worker.
/// Rules: THREAD-8
#[test]
fn run_until_complete_in_a_worker_of_a_task_made_elsewhere() {
    for profile in Profile::ALL {
        let lp = profile_loop(profile);
        let task = lp
            .create_task(async {
                loopspec::yield_now().await?;
                Ok("done")
            })
            .unwrap();
        let runner = lp.clone();
        let got = in_thread("worker", move || runner.run_until_complete(task));
        assert_eq!(got, Ok("done"));
        lp.close().unwrap();
    }
}

/// One iteration in thread A, one in thread B, the rest in thread A2: the
/// task's steps and the timer run wherever the loop runs.
/// Rules: THREAD-3, THREAD-8
#[test]
fn a_loop_run_in_turn_by_three_threads_carries_its_tasks_and_timers() {
    for profile in Profile::ALL {
        let (lp, log) = (profile_loop(profile), Log::new());
        let l = log.clone();
        let task = lp
            .create_task(async move {
                for i in 0..3 {
                    l.push(format!("tick {i} {}", me()));
                    loopspec::yield_now().await?;
                }
                Ok("ticked")
            })
            .unwrap();
        let l = log.clone();
        lp.call_later(0.0, move || l.push(format!("timer {}", me())))
            .unwrap();
        for name in ["A", "B"] {
            let runner = lp.clone();
            in_thread(name, move || one_iteration(&runner));
        }
        let runner = lp.clone();
        let got = in_thread("A2", move || runner.run_until_complete(task));
        assert_eq!(got, Ok("ticked"));
        assert_eq!(log.take(), ["tick 0 A", "timer A", "tick 1 B", "tick 2 A2"]);
        lp.close().unwrap();
    }
}

/// The thread that made a task and ran the loop exits; the task, resumed by
/// a future set from the main thread while no thread runs the loop, finishes
/// in a third thread.
/// Rules: THREAD-8, THREAD-9
#[test]
fn a_thread_that_exits_takes_no_work_with_it() {
    for profile in Profile::ALL {
        let (lp, log) = (profile_loop(profile), Log::new());
        let (runner, l) = (lp.clone(), log.clone());
        let (task, fut) = in_thread("first", move || {
            let fut = runner.create_future::<i32>();
            let (f, l2) = (fut.clone(), l.clone());
            let task = runner
                .create_task(async move {
                    let v = f.await?;
                    l2.push(format!("got {v} {}", me()));
                    Ok(v)
                })
                .unwrap();
            one_iteration(&runner);
            l.push(format!("first exits {}", task.done()));
            (task, fut)
        });
        fut.set_result(7).unwrap();
        let runner = lp.clone();
        let got = in_thread("second", move || runner.run_until_complete(task));
        assert_eq!(got, Ok(7));
        assert_eq!(log.take(), ["first exits false", "got 7 second"]);
        lp.close().unwrap();
    }
}

/// `run_coroutine_threadsafe`'s task is the loop's work: made in the run of a
/// thread that then exits, it finishes in the next run on another thread.
/// The `_local` form's task is local work, and goes with that thread.
/// Rules: THREAD-8, XTHREAD-6, THREAD-4
#[test]
fn run_coroutine_threadsafe_task_follows_the_loop() {
    for profile in Profile::ALL {
        let lp = profile_loop(profile);
        let fut = lp.create_future::<i32>();
        // A future is not a coroutine (create_task's TypeError): each awaits it.
        let f = fut.clone();
        let follows = run_coroutine_threadsafe(async move { Ok(f.await? + 1) }, &lp).unwrap();
        let f = fut.clone();
        let local =
            run_coroutine_threadsafe_local(move || async move { Ok(f.await? + 1) }, &lp).unwrap();
        let runner = lp.clone();
        in_thread("first", move || one_iteration(&runner));
        assert_eq!(cf_result(&local), Err(Error::Closed));
        assert!(!follows.done());
        fut.set_result(7).unwrap();
        let running = spawn_running(&lp, "second");
        assert_eq!(cf_result(&follows), Ok(8));
        stop_running(&lp, running);
        lp.close().unwrap();
    }
}

/// After a run in the main thread, another thread cancels a task and reads a
/// future; the main thread's next run delivers the cancellation.
/// Rules: THREAD-9, TASK-4
#[test]
fn another_thread_cancels_a_task_and_reads_a_future() {
    for profile in Profile::ALL {
        let lp = profile_loop(profile);
        let task = lp
            .create_task(async {
                loopspec::sleep(3600.0).await?;
                Ok(())
            })
            .unwrap();
        let fut = lp.create_future::<&'static str>();
        let f = fut.clone();
        lp.call_soon(move || f.set_result("value").unwrap())
            .unwrap();
        one_iteration(&lp);
        let (t, f) = (task.clone(), fut.clone());
        let (cancelled, read) = in_thread("other", move || (t.cancel(), f.result()));
        assert!(cancelled);
        assert_eq!(read, Ok("value"));
        assert_eq!(
            lp.run_until_complete(task.clone()),
            Err(Error::Cancelled(None))
        );
        assert!(task.cancelled());
        lp.close().unwrap();
    }
}

/// Another thread closes a loop with a pending task, a callback and a
/// timer: nothing runs, and the task is reported destroyed there.
/// Rules: THREAD-5, TASK-8, LIFE-7
#[test]
fn close_from_another_thread_drops_pending_work() {
    for profile in Profile::ALL {
        let (lp, log) = (profile_loop(profile), Log::new());
        let seen = capture_exceptions(&lp);
        let _task = lp
            .create_task(async {
                loopspec::sleep(3600.0).await?;
                Ok(())
            })
            .unwrap();
        lp.call_soon(log.cb("callback")).unwrap();
        lp.call_later(10.0, log.cb("timer")).unwrap();
        let closer = lp.clone();
        in_thread("closer", move || closer.close()).unwrap();
        assert!(lp.is_closed());
        assert!(log.take().is_empty());
        assert_eq!(seen.messages(), ["Task was destroyed but it is pending!"]);
    }
}

/// On an idle loop, another thread's `call_soon`, `Task::cancel` and
/// `set_result` put their entries in the ready queue in call order, as they
/// would on the loop's own thread; a later `call_soon` runs after them.
/// Rules: THREAD-9, SCHED-2
#[test]
fn calls_on_an_idle_loop_act_as_on_its_thread() {
    for profile in Profile::ALL {
        let (lp, log) = (profile_loop(profile), Log::new());
        let l = log.clone();
        let sleeper = lp
            .create_task(async move {
                let r = loopspec::sleep(3600.0).await;
                l.push(format!("sleeper {}", r.is_err()));
                r
            })
            .unwrap();
        let fut = lp.create_future::<i32>();
        let l = log.clone();
        fut.add_done_callback(std::sync::Arc::new(move |f: &loopspec::Future<i32>| {
            l.push(format!("fut {:?}", f.result()))
        }))
        .unwrap();
        one_iteration(&lp);
        let (other, l) = (lp.clone(), log.clone());
        in_thread("other", move || {
            other.call_soon(l.cb("first")).unwrap();
            assert!(sleeper.cancel());
            fut.set_result(5).unwrap();
            other.call_soon(l.cb("last")).unwrap();
        });
        one_iteration(&lp);
        assert_eq!(log.take(), ["first", "sleeper true", "fut Ok(5)", "last"]);
        lp.close().unwrap();
    }
}

/// Two threads alternate 100 runs of one iteration each, handing over with
/// a channel; each leaves a callback for the other's next run: every one
/// runs exactly once, in order, in the run that follows it.
/// Rules: THREAD-3, THREAD-8
#[test]
fn a_run_right_after_another_finds_the_work() {
    for profile in Profile::ALL {
        const RUNS: usize = 100;
        let (lp, log) = (profile_loop(profile), Log::new());
        let (to_b, from_a) = mpsc::channel::<()>();
        let (to_a, from_b) = mpsc::channel::<()>();
        let spawn = |name: &str, mine: usize, rx: mpsc::Receiver<()>, tx: mpsc::Sender<()>| {
            let (lp, log) = (lp.clone(), log.clone());
            thread::Builder::new()
                .name(name.into())
                .spawn(move || {
                    for i in (mine..RUNS).step_by(2) {
                        if i > 0 {
                            rx.recv().unwrap();
                        }
                        // Runs what the other thread scheduled before handing
                        // over, then leaves one for the other thread's run.
                        one_iteration(&lp);
                        let l = log.clone();
                        lp.call_soon(move || l.push(format!("cb {i} ran in {}", me())))
                            .unwrap();
                        let _ = tx.send(());
                    }
                })
                .unwrap()
        };
        let a = spawn("A", 0, from_b, to_b);
        let b = spawn("B", 1, from_a, to_a);
        a.join().unwrap();
        b.join().unwrap();
        one_iteration(&lp);
        let ran_in = |i: usize| match i {
            _ if i + 1 == RUNS => thread::current().name().unwrap_or("?").to_string(),
            _ if i.is_multiple_of(2) => "B".into(),
            _ => "A".into(),
        };
        let expected: Vec<String> = (0..RUNS)
            .map(|i| format!("cb {i} ran in {}", ran_in(i)))
            .collect();
        assert_eq!(log.take(), expected);
        lp.close().unwrap();
    }
}

/// While another thread runs the loop: the scheduling calls are refused
/// before anything changes; completing, cancelling and adding a done
/// callback to a done future are safe — the state changes at the call, and
/// what must run reaches the loop through its inbox and runs there, in
/// order.
/// Rules: THREAD-1, THREAD-9, TASK-4
#[test]
fn calls_from_another_thread_while_the_loop_runs_there() {
    let lp = EventLoop::new();
    let (tx, rx) = mpsc::channel::<String>();
    let on_loop = |what: &'static str| {
        let tx = tx.clone();
        Arc::new(move |_: &loopspec::Future<i32>| {
            let _ = tx.send(format!("{what} {}", me()));
        }) as loopspec::DoneCallback<i32>
    };
    let (a, b, c) = (
        lp.create_future::<i32>(),
        lp.create_future::<i32>(),
        lp.create_future::<i32>(),
    );
    a.add_done_callback(on_loop("a")).unwrap();
    b.add_done_callback(on_loop("b")).unwrap();
    c.add_done_callback(on_loop("c")).unwrap();
    let gate = lp.create_future::<i32>();
    let (g, t2) = (gate.clone(), tx.clone());
    let task = lp
        .create_task(async move {
            let r = g.await;
            let _ = t2.send(format!("task {} {}", r.is_err(), me()));
            r
        })
        .unwrap();
    let runner = spawn_running(&lp, "worker");
    // Refused: the scheduling calls.
    assert_eq!(lp.call_soon(|| ()).unwrap_err(), Error::NonThreadSafeCall);
    assert_eq!(
        lp.create_task(async { Ok(1) }).unwrap_err(),
        Error::NonThreadSafeCall
    );
    // Safe: completions, a cancellation, a callback on a done future.
    assert_eq!(a.set_result(1), Ok(()));
    assert_eq!(b.set_exception(Error::raise("ValueError", "v")), Ok(()));
    assert!(c.cancel());
    assert_eq!((a.done(), b.done(), c.cancelled()), (true, true, true));
    assert!(task.cancel());
    assert_eq!(task.cancelling(), 1);
    a.add_done_callback(on_loop("late")).unwrap();
    let got: Vec<String> = (0..5)
        .map(|_| recv_or_hang(&rx, "the loop ran what the calls handed over"))
        .collect();
    assert_eq!(
        got,
        [
            "a worker",
            "b worker",
            "c worker",
            "task true worker",
            "late worker"
        ]
    );
    stop_running(&lp, runner);
    assert!(task.cancelled());
    assert!(
        gate.cancelled(),
        "the cancellation reached what the task awaited"
    );
    lp.close().unwrap();
}
