//! XTHREAD rules of SPEC.md: handing work to a loop from other threads
//! (`call_soon_threadsafe`, the inbox and its wake-ups,
//! `run_coroutine_threadsafe`, `LoopThread`).
//!
//! Most tests drive a virtual-clock loop one iteration at a time on the test
//! thread and join every other thread before asserting. The few that need a
//! parked loop woken from another thread run a real-clock loop whose run can
//! only end through that wake-up: if it were lost the test would hang (or
//! fail at tests/common's hang guard), never pass by luck. "Wait until the
//! loop parked" is a wait on the loop's own counter (`inbox_stats().parks`),
//! not on time.

use common::{
    DropCount, DropWhere, Log, Scene, assert_closed, assert_py_error, capture_exceptions, cases,
    cf_exception, cf_result, count, counter, in_thread, recv_or_hang, value_error, wait_parked,
};
use loopspec::{
    CfState, ConcurrentFuture, Error, EventLoop, Handle, LoopThread, Profile,
    run_coroutine_threadsafe, run_coroutine_threadsafe_local,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::Duration;

type Counter = Arc<AtomicUsize>;

fn assert_cancelled(err: &Error) {
    assert_eq!(*err, Error::Cancelled(None));
    assert_eq!(err.python_type(), "CancelledError");
}

/// `call_soon_threadsafe(cb)` from a new thread, joined before returning:
/// the join orders the submission before what follows.
fn submit_from_another_thread(lp: &EventLoop, cb: impl FnOnce() + Send + 'static) -> Handle {
    let lp = lp.clone();
    thread::spawn(move || lp.call_soon_threadsafe(cb).unwrap())
        .join()
        .unwrap()
}

/// A callback that adds one to `ran`, with data that counts its drop in
/// `dropped`.
fn watched(ran: &Counter, dropped: &Counter) -> impl FnOnce() + Send + 'static {
    let (r, d) = (ran.clone(), DropCount(dropped.clone()));
    move || {
        let _d = d;
        r.fetch_add(1, Ordering::SeqCst);
    }
}

/// Runs iterations until `done()` holds, at most `max`.
fn drive(s: &Scene, max: usize, done: impl Fn() -> bool) {
    for _ in 0..max {
        if done() {
            return;
        }
        s.once();
    }
    assert!(done(), "condition not reached in {max} iterations");
}

/// Runs the loop until `cf` is done (`run_until_complete(wrap_future(cf))`,
/// so virtual time advances to the next timer) and returns its outcome.
fn complete<T: Clone + Send + 'static>(s: &Scene, cf: &ConcurrentFuture<T>) -> loopspec::Result<T> {
    s.run_until_complete(loopspec::wrap_future(cf, s).unwrap())
}

/// Starts `lp.run_forever()` on a new thread.
fn spawn_run(lp: &EventLoop, name: &str) -> thread::JoinHandle<loopspec::Result<()>> {
    let l = lp.clone();
    thread::Builder::new()
        .name(name.into())
        .spawn(move || l.run_forever())
        .unwrap()
}

/// `run_coroutine_threadsafe` of a coroutine that sleeps `delay` and
/// returns `value`.
fn sleeping_work<T: Clone + Send + 'static>(
    lp: &EventLoop,
    delay: f64,
    value: T,
) -> ConcurrentFuture<T> {
    let work = move || async move {
        loopspec::sleep(delay).await?;
        Ok(value)
    };
    run_coroutine_threadsafe_local(work, lp).unwrap()
}

/// `call_soon_threadsafe` from other threads queues the callback, which
/// runs when the loop next runs, on the loop's thread — a parked loop is
/// woken; on the loop's own running thread it waits for the next
/// iteration; a closed loop refuses it (`Event loop is closed`), dropping
/// the closure.
/// Rules: XTHREAD-1, XTHREAD-4, LIFE-8
#[test]
fn call_soon_threadsafe_runs_on_the_loops_thread() {
    cases(&[
        ("from other threads: when the loop next runs", |s| {
            for i in 0..3 {
                let h = submit_from_another_thread(s, s.cb(format!("t{i}")));
                assert!(!h.cancelled());
            }
            assert!(s.log.get().is_empty(), "nothing runs before the loop runs");
            assert_eq!(s.once(), ["t0", "t1", "t2"]);
        }),
        ("on the running loop's thread: the next iteration", |s| {
            s.soon(|s| {
                s.push("cb");
                s.call_soon_threadsafe(s.cb("threadsafe")).unwrap();
            });
            assert_eq!(s.once(), ["cb"]);
            assert_eq!(s.once(), ["threadsafe"]);
        }),
        ("a closed loop refuses it, dropping the closure", |s| {
            s.close().unwrap();
            let (ran, dropped) = (counter(), counter());
            assert_closed(&s.call_soon_threadsafe(watched(&ran, &dropped)).unwrap_err());
            assert_eq!((count(&dropped), count(&ran)), (1, 0));
            let lp = s.lp.clone();
            let err = thread::spawn(move || lp.call_soon_threadsafe(|| ()).unwrap_err());
            assert_closed(&err.join().unwrap());
            assert_eq!(s.inbox_stats().submissions, 0);
        }),
    ]);
    let (loop_thread, ran_on) = in_thread("xt-loop", || {
        let s = Scene::new();
        let me = thread::current().name().map(String::from);
        let log = s.log.clone();
        submit_from_another_thread(&s, move || log.push(thread::current().name().unwrap()));
        let ran = s.once();
        s.close().unwrap();
        (me, ran)
    });
    assert_eq!(
        (loop_thread.as_deref(), ran_on),
        (Some("xt-loop"), vec!["xt-loop".into()])
    );
    // A real-clock loop with nothing to do waits forever; only the
    // submission can end its run.
    let lp = EventLoop::new();
    let runner = spawn_run(&lp, "parked-loop");
    wait_parked(&lp, 1);
    let (ran_on, stopper) = (Log::new(), lp.clone());
    let r = ran_on.clone();
    submit_from_another_thread(&lp, move || {
        r.push(thread::current().name().unwrap());
        stopper.stop();
    });
    assert_eq!(runner.join().unwrap(), Ok(()));
    assert_eq!(ran_on.take(), ["parked-loop"]);
    let stats = lp.inbox_stats();
    assert!(
        stats.wakeups >= 1 && stats.wakeups <= stats.parks,
        "{stats:?}"
    );
    lp.close().unwrap();
}

/// Submissions keep the order in which they happen, among themselves and
/// with `call_soon` on the home thread, idle or running (CPython's
/// `test_call_soon_threadsafe_same_thread`): one that happens before a
/// `call_soon` runs before it, one after runs after.
/// Rules: XTHREAD-2
#[test]
fn submissions_keep_their_order() {
    cases(&[
        ("with call_soon on the running thread", |s| {
            s.soon(|s| {
                s.call_soon_threadsafe(s.cb("a")).unwrap();
                s.soon_log("b");
                s.call_soon_threadsafe(s.cb("c")).unwrap();
                s.soon_log("d");
            });
            s.once();
            assert_eq!(s.once(), ["a", "b", "c", "d"]);
        }),
        ("with call_soon on the idle home thread", |s| {
            for (i, name) in ["a", "b", "c", "d", "e"].into_iter().enumerate() {
                if i % 2 == 0 {
                    s.call_soon_threadsafe(s.cb(name)).unwrap();
                } else {
                    s.soon_log(name);
                }
            }
            assert_eq!(s.once(), ["a", "b", "c", "d", "e"]);
        }),
        ("from another thread, before or after a call_soon", |s| {
            s.soon_log("first"); // claims the home
            submit_from_another_thread(s, s.cb("remote"));
            s.soon_log("local");
            assert_eq!(s.once(), ["first", "remote", "local"]);
        }),
        ("while the loop runs, in causal order", |s| {
            s.soon(|s| {
                // remote-1 happens before local-1, which happens before
                // remote-2, which happens before local-2.
                submit_from_another_thread(s, s.cb("remote-1"));
                s.soon_log("local-1");
                submit_from_another_thread(s, s.cb("remote-2"));
                s.soon_log("local-2");
            });
            s.once();
            assert_eq!(s.once(), ["remote-1", "local-1", "remote-2", "local-2"]);
        }),
        ("from one thread, in its order", |s| {
            let (lp, log) = (s.lp.clone(), s.log.clone());
            thread::spawn(move || {
                for i in 0..100 {
                    lp.call_soon_threadsafe(log.cb(i.to_string())).unwrap();
                }
            })
            .join()
            .unwrap();
            let want: Vec<String> = (0..100).map(|i| i.to_string()).collect();
            assert_eq!(s.once(), want);
        }),
    ]);
}

/// `close()` drops the submissions it accepted — at once, without running
/// them, on the closing thread (THREAD-5) — and refuses every later one,
/// from any thread, including `run_coroutine_threadsafe`.
/// Rules: XTHREAD-3, LIFE-7, THREAD-5
#[test]
fn close_drops_accepted_submissions_and_refuses_later_ones() {
    let s = Scene::new();
    let (ran, dropped) = (counter(), counter());
    for _ in 0..3 {
        submit_from_another_thread(&s, watched(&ran, &dropped));
    }
    assert_eq!(count(&dropped), 0);
    s.close().unwrap();
    assert_eq!(
        (count(&dropped), count(&ran)),
        (3, 0),
        "dropped by close() itself"
    );
    let refused = counter();
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (lp, r, d) = (s.lp.clone(), refused.clone(), dropped.clone());
            thread::spawn(move || {
                for _ in 0..50 {
                    let guard = DropCount(d.clone());
                    let err = lp.call_soon_threadsafe(move || drop(guard)).unwrap_err();
                    assert_closed(&err);
                    r.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    workers.into_iter().for_each(|w| w.join().unwrap());
    assert_eq!((count(&refused), count(&dropped)), (200, 203));
    assert_eq!(s.inbox_stats().submissions, 3, "only those before close()");
    assert_closed(&run_coroutine_threadsafe(async { Ok(1) }, &s).unwrap_err());
    let s = Scene::new();
    let drops = Arc::new(Mutex::new(Vec::new()));
    let d = DropWhere(drops.clone());
    s.call_soon_threadsafe(move || drop(d)).unwrap();
    let lp = s.lp.clone();
    let closer = thread::Builder::new().name("closer".into());
    closer
        .spawn(move || lp.close().unwrap())
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(*drops.lock().unwrap(), ["closer"]);
}

/// Submissions racing with `close()` each have one of three outcomes (a
/// small version of tests/robustness/stress.rs): ran, refused (the refused
/// closure dropped), or accepted and then dropped by close; once refused,
/// always refused.
/// Rules: XTHREAD-3, XTHREAD-1
#[test]
fn submissions_racing_with_close_have_one_of_three_outcomes() {
    const N: usize = 500;
    let s = Scene::new();
    let ran: Vec<Counter> = (0..N).map(|_| counter()).collect();
    let dropped: Vec<Counter> = (0..N).map(|_| counter()).collect();
    let (lp, r, d) = (s.lp.clone(), ran.clone(), dropped.clone());
    let (early_tx, early_rx) = mpsc::channel();
    let (closed_tx, closed_rx) = mpsc::channel::<()>();
    let producer = thread::spawn(move || {
        let mut refused = vec![false; N];
        for (i, slot) in refused.iter_mut().enumerate() {
            if i == 100 {
                early_tx.send(()).unwrap();
            }
            if i == 300 {
                recv_or_hang(&closed_rx, "the close() signal"); // from here on, after close()
            }
            // A run drops the closure too: ran, then dropped, is a run.
            if let Err(e) = lp.call_soon_threadsafe(watched(&r[i], &d[i])) {
                assert_closed(&e);
                *slot = true;
            }
        }
        refused
    });
    // Once 100 are in, run a few iterations while the producer goes on
    // submitting, then close.
    recv_or_hang(&early_rx, "the first 100 submissions");
    for _ in 0..5 {
        s.once();
    }
    s.close().unwrap();
    closed_tx.send(()).unwrap();
    let refused = producer.join().unwrap();
    let (mut n_ran, mut n_refused, mut n_dropped) = (0, 0, 0);
    let mut seen_refusal = false;
    for i in 0..N {
        match (count(&ran[i]), count(&dropped[i]), refused[i]) {
            (1, 1, false) => n_ran += 1,
            (0, 1, true) => n_refused += 1,
            (0, 1, false) => n_dropped += 1,
            other => panic!("submission {i}: outcome not allowed: {other:?}"),
        }
        assert!(
            refused[i] || !seen_refusal,
            "submission {i} accepted after a refusal"
        );
        seen_refusal |= refused[i];
    }
    assert_eq!(n_ran + n_refused + n_dropped, N);
    assert!(
        n_ran >= 100,
        "the first 100 were queued before the first run"
    );
    assert!(
        refused[300..].iter().all(|r| *r),
        "those after close() are refused"
    );
}

/// Wake-ups: submissions to a loop that is not running, or busy, cost none;
/// a burst to a parked loop costs one; a loop woken again and again gets at
/// most one per park.
/// Rules: XTHREAD-4, STOP-5
#[test]
fn a_submission_wakes_only_a_parked_loop() {
    let s = Scene::new();
    let lp = s.lp.clone();
    thread::spawn(move || (0..3).for_each(|_| drop(lp.call_soon_threadsafe(|| ()).unwrap())))
        .join()
        .unwrap();
    let st = s.inbox_stats();
    assert_eq!((st.submissions, st.wakeups, st.parks), (3, 0, 0));
    const N: usize = 1000;
    let ran = counter();
    let r = ran.clone();
    s.soon(move |s| {
        // The loop is busy running this callback, not parked.
        let before = s.inbox_stats();
        let lp = s.lp.clone();
        thread::spawn(move || {
            (0..N).for_each(|_| drop(lp.call_soon_threadsafe(watched(&r, &counter()))))
        })
        .join()
        .unwrap();
        let after = s.inbox_stats();
        let cost = (
            after.submissions - before.submissions,
            after.wakeups - before.wakeups,
        );
        s.push(format!("{cost:?} {}", after.parks - before.parks));
    });
    assert_eq!(
        s.once(),
        [format!("({N}, 0) 0")],
        "no wake-up for a busy loop"
    );
    s.once();
    assert_eq!(count(&ran), N);
    let lp = EventLoop::new();
    let runner = spawn_run(&lp, "burst-loop");
    wait_parked(&lp, 1);
    let st = lp.inbox_stats();
    assert_eq!((st.submissions, st.wakeups, st.parks), (0, 0, 1));
    // The first submission wakes the loop and holds it busy until the whole
    // burst is in, so the burst meets a loop that is parked-and-notified or
    // busy: never a second park.
    let (go_tx, go_rx) = mpsc::channel::<()>();
    lp.call_soon_threadsafe(move || recv_or_hang(&go_rx, "the end of the burst"))
        .unwrap();
    let ran = counter();
    for _ in 0..500 {
        lp.call_soon_threadsafe(watched(&ran, &counter())).unwrap();
    }
    let stopper = lp.clone();
    lp.call_soon_threadsafe(move || stopper.stop()).unwrap();
    go_tx.send(()).unwrap();
    assert_eq!(runner.join().unwrap(), Ok(()));
    let st = lp.inbox_stats();
    assert_eq!((count(&ran), st.submissions, st.parks), (500, 502, 1));
    assert_eq!(
        st.wakeups, 1,
        "one wake-up per park, however many submissions"
    );
    lp.close().unwrap();
    let lp = EventLoop::new();
    let runner = spawn_run(&lp, "repark-loop");
    for round in 1..=5u64 {
        wait_parked(&lp, round);
        // Each round: one submission to a parked loop, and we wait until the
        // loop ran it (it then parks again).
        let (tx, rx) = mpsc::channel();
        lp.call_soon_threadsafe(move || tx.send(()).unwrap())
            .unwrap();
        recv_or_hang(&rx, "the submission to the parked loop ran");
    }
    lp.stop();
    assert_eq!(runner.join().unwrap(), Ok(()));
    let st = lp.inbox_stats();
    assert_eq!(st.submissions, 5);
    assert!(
        st.wakeups >= 5,
        "every submission to a parked loop woke it: {st:?}"
    );
    assert!(st.wakeups <= st.parks, "at most one per park: {st:?}");
    lp.close().unwrap();
}

/// A handle — of a submission or of `call_soon` — cancelled from any other
/// thread before its callback runs prevents it, even from a callback of the
/// same batch (CPython: a cancelled one was skipped, giving `[0, 1, 3, 4]`);
/// a cancel after the run changes nothing.
/// Rules: XTHREAD-5, XTHREAD-1, SCHED-3
#[test]
fn a_handle_cancelled_from_another_thread_never_runs() {
    cases(&[
        ("a submission's, by yet another thread", |s| {
            let (lp, log) = (s.lp.clone(), s.log.clone());
            let handle = thread::spawn(move || {
                lp.call_soon_threadsafe(log.cb("cancelled")).unwrap();
                lp.call_soon_threadsafe(log.cb("kept")).unwrap()
            });
            let handle = handle.join().unwrap();
            let victim = submit_from_another_thread(s, s.cb("victim"));
            let v = victim.clone();
            thread::spawn(move || v.cancel()).join().unwrap();
            assert!(victim.cancelled() && !handle.cancelled());
            assert_eq!(s.once(), ["cancelled", "kept"]);
        }),
        ("a call_soon handle", |s| {
            let handles: Vec<Handle> = (0..5).map(|i| s.soon_log(i.to_string())).collect();
            let h = handles[2].clone();
            thread::spawn(move || h.cancel()).join().unwrap();
            assert_eq!(s.once(), ["0", "1", "3", "4"]);
        }),
        // The cancelling callback runs first in the batch and has another
        // thread cancel a submission queued behind it.
        ("during the batch", |s| {
            let slot: Arc<Mutex<Option<Handle>>> = Arc::default();
            let sl = slot.clone();
            s.soon(move |s| {
                let h = sl.lock().unwrap().clone().unwrap();
                thread::spawn(move || h.cancel()).join().unwrap();
                s.push("canceller");
            });
            let victim = submit_from_another_thread(s, s.cb("victim"));
            *slot.lock().unwrap() = Some(victim.clone());
            assert_eq!(s.once(), ["canceller"]);
            assert!(victim.cancelled());
            assert!(s.once().is_empty());
        }),
        ("after the run: nothing changes", |s| {
            let h = s.call_soon_threadsafe(s.cb("ran")).unwrap();
            assert_eq!(s.once(), ["ran"]);
            let h2 = h.clone();
            thread::spawn(move || h2.cancel()).join().unwrap();
            assert!(h.cancelled() && s.once().is_empty());
        }),
    ]);
}

/// A cancel racing with the start of the run, 300 times: the callback did
/// not run, or ran once — never twice, never an error.
/// Rules: XTHREAD-5
#[test]
fn cancel_racing_with_the_run_runs_at_most_once() {
    const N: usize = 300;
    let lt = LoopThread::spawn("race-loop").unwrap();
    let runs: Vec<Counter> = (0..N).map(|_| counter()).collect();
    let (tx, rx) = mpsc::channel();
    let (lp, r) = (lt.event_loop().clone(), runs.clone());
    let submitter = thread::spawn(move || {
        for run in &r {
            tx.send(lp.call_soon_threadsafe(watched(run, &counter())).unwrap())
                .unwrap();
        }
    });
    let canceller = thread::spawn(move || rx.iter().map(|h: Handle| h.cancel()).count());
    submitter.join().unwrap();
    assert_eq!(canceller.join().unwrap(), N);
    // A marker submitted last runs after every earlier submission.
    let (done_tx, done_rx) = mpsc::channel();
    lt.event_loop()
        .call_soon_threadsafe(move || done_tx.send(()).unwrap())
        .unwrap();
    recv_or_hang(&done_rx, "the marker submitted last ran");
    lt.stop_and_join().unwrap();
    for (i, r) in runs.iter().enumerate() {
        assert!(count(r) <= 1, "submission {i} ran {} times", count(r));
    }
}

/// `run_coroutine_threadsafe` returns a pending concurrent future at once;
/// the coroutine is made, as a task, on the loop's thread when the loop next
/// runs — one submission (CPython: `result(0.1)` raised TimeoutError while
/// the loop did not run, and the result arrived once it ran in a thread). A
/// closed loop refuses it at the call; a submission that `close()` drops —
/// from any thread — fails the future with `Event loop is closed` (CPython's
/// would never complete), as does a task `close()` destroys (TASK-8), and a
/// cancelled one stays cancelled.
/// Rules: XTHREAD-6, XTHREAD-3, XTHREAD-8, XTHREAD-10, LIFE-8, TASK-8
#[test]
fn run_coroutine_threadsafe_hands_the_coroutine_to_the_loop() {
    cases(&[
        ("pending at once; made when the loop runs", |s| {
            let made = counter();
            let (m, lp) = (made.clone(), s.lp.clone());
            let cf = thread::spawn(move || {
                let work = move || {
                    m.fetch_add(1, Ordering::SeqCst);
                    async { Ok(6 * 7) }
                };
                run_coroutine_threadsafe_local(work, &lp).unwrap()
            });
            let cf = cf.join().unwrap();
            assert_eq!(cf.state(), CfState::Pending);
            assert_eq!(cf.result(Some(Duration::ZERO)), Err(Error::Timeout));
            assert_eq!(count(&made), 0, "the coroutine is made by the loop");
            assert_eq!(s.inbox_stats().submissions, 1, "one call_soon_threadsafe");
            drive(s, 10, || cf.done());
            assert_eq!((count(&made), cf_result(&cf)), (1, Ok(42)));
        }),
        ("a closed loop refuses it at the call", |s| {
            s.close().unwrap();
            let made = counter();
            let m = made.clone();
            let work = move || {
                m.fetch_add(1, Ordering::SeqCst);
                async { Ok(()) }
            };
            assert_closed(&run_coroutine_threadsafe_local(work, s).unwrap_err());
            assert_eq!(count(&made), 0);
        }),
        ("dropped by close(): Event loop is closed", |s| {
            let made = counter();
            let m = made.clone();
            let work = move || {
                m.fetch_add(1, Ordering::SeqCst);
                async { Ok(1) }
            };
            let cf = run_coroutine_threadsafe_local(work, s).unwrap();
            let there = run_coroutine_threadsafe(async { Ok(1) }, s).unwrap();
            let w = there.clone();
            let waiter = thread::spawn(move || cf_result(&w));
            let cancelled = run_coroutine_threadsafe(async { Ok(1) }, s).unwrap();
            assert!(cancelled.cancel());
            let lp = s.lp.clone();
            thread::spawn(move || lp.close().unwrap()).join().unwrap();
            assert!(cf.done() && cf.state() == CfState::Finished);
            assert_closed(&cf_result(&cf).unwrap_err());
            assert_eq!(cf_exception(&cf), Ok(Some(Error::Closed)));
            assert_eq!(count(&made), 0, "the task was never made");
            assert_closed(&waiter.join().unwrap().unwrap_err());
            assert!(cancelled.cancelled());
            assert_cancelled(&cf_result(&cancelled).unwrap_err());
        }),
        ("a task destroyed by close(): Event loop is closed", |s| {
            let cf = sleeping_work(s, 100.0, 1);
            s.once(); // the loop takes the submission and makes the task
            s.once(); // the task's first step: it sleeps
            assert!(!cf.done());
            let _reports = capture_exceptions(s);
            s.close().unwrap();
            assert_eq!(cf.result(Some(Duration::ZERO)), Err(Error::Closed));
        }),
    ]);
    let (loop_thread, made_on) = in_thread("rct-loop", || {
        let s = Scene::new();
        let made_on = Log::new();
        let (log, lp) = (made_on.clone(), s.lp.clone());
        let cf = thread::spawn(move || {
            let work = move || {
                log.push(thread::current().name().unwrap());
                async { Ok(loopspec::current_task()?.expect("inside a task").get_name()) }
            };
            run_coroutine_threadsafe_local(work, &lp).unwrap()
        });
        let cf = cf.join().unwrap();
        drive(&s, 10, || cf.done());
        assert_eq!(cf_result(&cf), Ok("Task-1".to_string()));
        s.close().unwrap();
        (thread::current().name().map(String::from), made_on.take())
    });
    assert_eq!(made_on, [loop_thread.unwrap()]);
    let lp = EventLoop::new();
    let cf = run_coroutine_threadsafe(async { Ok("late") }, &lp).unwrap();
    assert_eq!(cf.result(Some(Duration::ZERO)), Err(Error::Timeout));
    let lt = LoopThread::spawn_with(lp, "late-loop").unwrap();
    assert_eq!(cf_result(&cf), Ok("late"));
    lt.stop_and_join().unwrap();
}

/// The task's outcome reaches the caller through the concurrent future: its
/// result, its exception (a TimeoutError stays one; retrieved, so not
/// reported), its panic, its cancellation on the loop's side; the future's
/// done callbacks run on the loop's thread.
/// Rules: XTHREAD-7, TASK-14, CONC-6
#[test]
fn the_tasks_outcome_reaches_the_caller() {
    let lt = LoopThread::spawn("result-loop").unwrap();
    let work = || async {
        loopspec::yield_now().await?;
        Ok(vec![1, 2, 3])
    };
    let cf = run_coroutine_threadsafe_local(work, lt.event_loop()).unwrap();
    let w = cf.clone();
    assert_eq!(
        thread::spawn(move || cf_result(&w)).join().unwrap(),
        Ok(vec![1, 2, 3])
    );
    assert_eq!(
        (cf_exception(&cf), cf.state()),
        (Ok(None), CfState::Finished)
    );
    lt.stop_and_join().unwrap();
    cases(&[
        ("an exception, a TimeoutError: retrieved", |s| {
            let errors = capture_exceptions(s);
            let failing = || async {
                loopspec::yield_now().await?;
                Err::<i32, _>(value_error("remote failure"))
            };
            let cf = run_coroutine_threadsafe_local(failing, s).unwrap();
            let timeout = run_coroutine_threadsafe(async { Err::<i32, _>(Error::Timeout) }, s);
            let timeout = timeout.unwrap();
            drive(s, 10, || cf.done() && timeout.done());
            let err = cf_result(&cf).unwrap_err();
            assert_py_error(&err, "ValueError", "remote failure");
            assert_eq!(cf_exception(&cf), Ok(Some(err)));
            assert_eq!(cf_result(&timeout), Err(Error::Timeout));
            for _ in 0..3 {
                s.once();
            }
            assert!(errors.messages().is_empty(), "{:?}", errors.messages());
        }),
        ("a panic", |s| {
            let boom = || async {
                loopspec::yield_now().await?;
                if true {
                    panic!("boom in the loop");
                }
                Ok(0)
            };
            let cf = run_coroutine_threadsafe_local(boom, s).unwrap();
            drive(s, 10, || cf.done());
            let err = cf_result(&cf).unwrap_err();
            assert_eq!(err, Error::Panic("boom in the loop".into()));
            assert_py_error(&err, "Panic", "boom in the loop");
        }),
        ("a cancellation on the loop's side", |s| {
            let cf = sleeping_work(s, 100.0, 1);
            s.once(); // makes the task
            s.once(); // the task sleeps
            assert_eq!(cf.state(), CfState::Pending);
            s.soon(|_| {
                loopspec::all_tasks()
                    .unwrap()
                    .iter()
                    .for_each(|t| assert!(t.cancel()))
            });
            drive(s, 10, || cf.done());
            assert!(cf.cancelled());
            assert_cancelled(&cf_result(&cf).unwrap_err());
            assert_cancelled(&cf_exception(&cf).unwrap_err());
            assert_eq!(s.time(), 0.0, "cancelled before the sleep ended");
        }),
    ]);
    let (loop_thread, seen) = in_thread("cb-loop", || {
        let s = Scene::new();
        let cf = sleeping_work(&s, 1.0, 5);
        // Added from another thread, before completion.
        let (c, log) = (cf.clone(), s.log.clone());
        thread::spawn(move || {
            c.add_done_callback(move |f| {
                let name = thread::current().name().map(String::from);
                log.push(format!("{name:?} {:?}", f.result(None)));
            })
        })
        .join()
        .unwrap();
        complete(&s, &cf).unwrap();
        s.close().unwrap();
        (thread::current().name().map(String::from), s.take())
    });
    assert_eq!(seen, [format!("{loop_thread:?} Ok(5)")]);
}

/// The concurrent future stays pending (not running) while the task runs.
/// Cancelling it cancels the task — suspended, on a loop in a thread, or
/// before the loop took the submission: then the task is made anyway, and
/// up to 3.12 its first step runs to its end or first suspension (CPython
/// 3.11.7: `ran == True`), from 3.13 it is cancelled before it (3.13.18,
/// 3.14.10, 3.15.2: `ran == False`).
/// Rules: XTHREAD-8
#[test]
fn cancelling_the_concurrent_future_cancels_the_task() {
    let s = Scene::new();
    let two_steps = || async {
        loopspec::sleep(1.0).await?;
        loopspec::sleep(1.0).await?;
        Ok(2)
    };
    let cf = run_coroutine_threadsafe_local(two_steps, &s).unwrap();
    for _ in 0..3 {
        s.once();
        assert!(
            cf.state() == CfState::Pending && !cf.running(),
            "not running()"
        );
    }
    assert_eq!((complete(&s, &cf), cf_result(&cf)), (Ok(2), Ok(2)));
    assert!(!cf.cancel(), "finished: cancel() fails");
    let log = Log::new();
    let (seen, start) = (log.clone(), s.time());
    let cf = run_coroutine_threadsafe(
        async move {
            log.push("started");
            let r = loopspec::sleep(100.0).await;
            log.push(format!("woke with {r:?}"));
            r.map(|()| 1)
        },
        &s,
    )
    .unwrap();
    s.once();
    s.once();
    assert_eq!(seen.take(), ["started"]);
    let c = cf.clone();
    assert!(thread::spawn(move || c.cancel()).join().unwrap());
    assert!(cf.cancelled(), "cancelled at once");
    // The cancellation travels to the task with call_soon_threadsafe.
    assert!(s.inbox_stats().submissions >= 2);
    drive(&s, 10, || !seen.get().is_empty());
    assert_eq!(seen.take(), ["woke with Err(CancelledError())"]);
    assert_eq!(s.time(), start);
    s.once();
    assert_eq!(cf.state(), CfState::CancelledAndNotified);
    assert_cancelled(&cf_result(&cf).unwrap_err());
    let lt = LoopThread::spawn("cancel-loop").unwrap();
    let (started_tx, started_rx) = mpsc::channel();
    let (seen_tx, seen_rx) = mpsc::channel();
    let work = move || async move {
        started_tx.send(()).unwrap();
        // Never completes by itself (an hour on the real clock).
        let r = loopspec::sleep(3600.0).await;
        seen_tx.send(r.clone()).unwrap();
        r.map(|()| 0)
    };
    let cf = run_coroutine_threadsafe_local(work, lt.event_loop()).unwrap();
    recv_or_hang(&started_rx, "the coroutine started");
    assert!(cf.cancel());
    let seen = recv_or_hang(&seen_rx, "the coroutine saw its cancellation");
    assert_eq!(seen, Err(Error::Cancelled(None)));
    assert_cancelled(&cf_result(&cf).unwrap_err());
    lt.stop_and_join().unwrap();
}

/// The early cancels of [`cancelling_the_concurrent_future_cancels_the_task`]
/// in each profile: a one-step coroutine, and one that suspends once,
/// cancelled from another thread.
/// Rules: XTHREAD-8
#[test]
fn early_cancel_by_profile() {
    for profile in Profile::ALL {
        let before_313 = profile < Profile::Py313;
        let s = Scene::with_profile(profile);
        let (made, log) = (counter(), Log::new());
        let (m, l) = (made.clone(), log.clone());
        let one_step = move || {
            m.fetch_add(1, Ordering::SeqCst);
            async move {
                l.push("one step ran");
                Ok(1)
            }
        };
        let one = run_coroutine_threadsafe_local(one_step, &s).unwrap();
        assert!(one.cancel() && one.cancelled());
        let multi_log = log.clone();
        let multi_step = move || async move {
            let log = multi_log;
            log.push("started");
            let r = loopspec::yield_now().await;
            log.push(if r.is_ok() { "resumed" } else { "cancelled" });
            r.map(|()| 1)
        };
        let multi = run_coroutine_threadsafe_local(multi_step, &s).unwrap();
        let c = multi.clone();
        assert!(thread::spawn(move || c.cancel()).join().unwrap());
        for _ in 0..6 {
            s.once();
        }
        let want: &[&str] = if before_313 {
            &["one step ran", "started", "cancelled"]
        } else {
            &[]
        };
        assert_eq!(log.get(), want, "{profile:?}");
        assert_eq!(count(&made), 1, "{profile:?}: the task is still made");
        for cf in [&one, &multi] {
            assert_eq!(cf.state(), CfState::CancelledAndNotified, "{profile:?}");
            assert_cancelled(&cf_result(cf).unwrap_err());
        }
        assert_eq!(s.time(), 0.0);
        s.close().unwrap();
    }
}

/// `ConcurrentFuture.result()` or `.exception()` without a timeout, from
/// the thread of the loop that completes it — a task or a plain callback —
/// would deadlock: it fails at once, and the future completes normally. A
/// zero timeout is no wait (`TimeoutError`, CONC-2; CPython 3.11.7 too), a
/// done future is returned, and from another thread it waits normally.
/// Rules: XTHREAD-9, CONC-2
#[test]
fn result_on_the_loops_thread_fails_at_once() {
    let deadlock = |err: &Error| {
        assert_eq!(*err, Error::ResultFromLoopThread);
        let msg = "ConcurrentFuture.result() called from the thread of the loop that completes \
                   it would deadlock";
        assert_py_error(err, "RuntimeError", msg);
    };
    let s = Scene::new();
    let cf = sleeping_work(&s, 1.0, 3);
    let c = cf.clone();
    let (r, e) = s
        .run_until_complete(async move { Ok((c.result(None), c.exception(None))) })
        .unwrap();
    deadlock(&r.unwrap_err());
    deadlock(&e.unwrap_err());
    let c = cf.clone();
    let zero = Some(Duration::ZERO);
    let timeouts = s.run_until_complete(async move { Ok((c.result(zero), c.exception(zero))) });
    assert_eq!(timeouts, Ok((Err(Error::Timeout), Err(Error::Timeout))));
    let got = Arc::new(Mutex::new(None));
    let (c, g) = (cf.clone(), got.clone());
    s.call_soon(move || *g.lock().unwrap() = Some(c.result(None)))
        .unwrap();
    s.once();
    deadlock(&got.lock().unwrap().clone().unwrap().unwrap_err());
    assert_eq!((complete(&s, &cf), cf_result(&cf)), (Ok(3), Ok(3)));
    let c = cf.clone();
    assert_eq!(
        s.run_until_complete(async move { Ok(c.result(None)) }),
        Ok(Ok(3))
    );
    let lt = LoopThread::spawn("xt9-loop").unwrap();
    let work = || async {
        loopspec::yield_now().await?;
        Ok(9)
    };
    let cf = run_coroutine_threadsafe_local(work, lt.event_loop()).unwrap();
    assert_eq!(cf.result(None), Ok(9));
    lt.stop_and_join().unwrap();
}

/// `LoopThread` is a runner on a thread of its own with the given name: the
/// work runs there; a plain `stop()` does not end it (it goes back to
/// `run_forever`); `stop_and_join()` — or dropping it — stops, closes and
/// joins, its runner cancelling pending tasks on its own thread (RUNNER-4),
/// and a parked one is woken by a submission; a loop already bound
/// elsewhere makes its first step fail, reported by `stop_and_join()`.
/// Rules: XTHREAD-10, XTHREAD-1, STOP-5, RUNNER-4, THREAD-1, THREAD-5
#[test]
fn a_loop_thread_runs_a_loop_on_its_own_thread() {
    let lt = LoopThread::spawn("io-loop").unwrap();
    let work = || async {
        let lp = loopspec::get_running_loop()?;
        Ok((thread::current().name().map(String::from), lp.is_running()))
    };
    let cf = run_coroutine_threadsafe_local(work, lt.event_loop()).unwrap();
    assert_eq!(cf_result(&cf), Ok((Some("io-loop".to_string()), true)));
    let lp = lt.event_loop().clone();
    assert_eq!(lt.stop_and_join(), Ok(()));
    assert!(lp.is_closed() && !lp.is_running(), "closed by its thread");
    assert_closed(&lp.call_soon_threadsafe(|| ()).unwrap_err());
    let lt = LoopThread::spawn("sturdy-loop").unwrap();
    let lp = lt.event_loop().clone();
    for i in 0..3 {
        lp.stop();
        let cf = run_coroutine_threadsafe(async move { Ok(i) }, &lp).unwrap();
        assert_eq!(cf_result(&cf), Ok(i));
        let (tx, rx) = mpsc::channel();
        lp.call_soon_threadsafe(move || {
            tx.send(thread::current().name().map(String::from)).unwrap()
        })
        .unwrap();
        assert_eq!(
            recv_or_hang(&rx, "the callback ran").as_deref(),
            Some("sturdy-loop")
        );
    }
    assert!(!lp.is_closed());
    wait_parked(&lp, 1);
    let (tx, rx) = mpsc::channel();
    submit_from_another_thread(&lp, move || tx.send(7).unwrap());
    assert_eq!(recv_or_hang(&rx, "the woken loop ran the callback"), 7);
    drop(lt);
    assert!(
        lp.is_closed() && !lp.is_running(),
        "dropped: stopped, closed, joined"
    );
    let lt = LoopThread::spawn("owner-loop").unwrap();
    let lp = lt.event_loop().clone();
    let drops = Arc::new(Mutex::new(Vec::new()));
    let d = drops.clone();
    let (started_tx, started_rx) = mpsc::channel();
    let work = move || {
        let guard = DropWhere(d);
        async move {
            let _g = guard;
            started_tx.send(()).unwrap();
            loopspec::sleep(3600.0).await
        }
    };
    let cf = run_coroutine_threadsafe_local(work, &lp).unwrap();
    recv_or_hang(&started_rx, "the coroutine started");
    let errors = capture_exceptions(&lp);
    assert_eq!(lt.stop_and_join(), Ok(()));
    // Its runner's close() cancelled the task and waited for it, on the
    // loop's thread, before closing the loop (RUNNER-4), as CPython's does.
    assert_eq!(*drops.lock().unwrap(), ["owner-loop"]);
    assert!(lp.is_closed());
    assert_eq!(cf.result(Some(Duration::ZERO)), Err(Error::Cancelled(None)));
    assert!(errors.messages().is_empty(), "nothing destroyed pending");
    in_thread("bound-home", || {
        let lp = EventLoop::new();
        lp.call_soon_local(|| ()).unwrap(); // local work on this thread
        let lt = LoopThread::spawn_with(lp.clone(), "refused-loop").unwrap();
        // Its runner's first step, making the main task (a local task), is
        // a local call away from the local home.
        assert_eq!(lt.stop_and_join(), Err(Error::NonThreadSafeCall));
        assert!(lp.is_closed(), "its thread closed the loop");
    });
}
