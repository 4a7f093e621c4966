//! XTHREAD rules of SPEC.md: handing work to a loop from other threads
//! (`call_soon_threadsafe`, the inbox and its wake-ups,
//! `run_coroutine_threadsafe`, `LoopThread`); catalogue 9.1–9.2 (X-1..X-6).
//!
//! Most tests drive a virtual-clock loop one iteration at a time on the test
//! thread and join every other thread before asserting. The few that need a
//! parked loop woken from another thread run a real-clock loop whose run can
//! only end through that wake-up: if it were lost the test would hang (or
//! fail at tests/common's hang guard), never pass by luck. "Wait until the
//! loop parked" is a wait on the loop's own counter (`inbox_stats().parks`),
//! not on time.

use common::{
    DropCount, DropWhere, Log, capture_exceptions, cf_exception, cf_result, count, counter,
    in_thread, recv_or_hang, run_once, vloop, wait_parked,
};
use loopspec::{
    CfState, ClockKind, ConcurrentFuture, Error, EventLoop, LoopThread, Profile,
    run_coroutine_threadsafe,
};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::Duration;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A thread-safe event log, for callbacks that must be `Send`.
#[derive(Clone, Default)]
struct SyncLog(Arc<Mutex<Vec<String>>>);

impl SyncLog {
    fn push(&self, s: impl Into<String>) {
        self.0.lock().unwrap().push(s.into());
    }
    fn cb(&self, s: impl Into<String>) -> impl FnOnce() + Send + 'static {
        let log = self.clone();
        let s = s.into();
        move || log.push(s)
    }
    fn get(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

fn assert_closed(err: &Error) {
    assert_eq!(*err, Error::Closed);
    assert_eq!(err.to_string(), "Event loop is closed");
    assert_eq!(err.python_type(), "RuntimeError");
}

fn assert_cancelled(err: &Error) {
    assert_eq!(*err, Error::Cancelled(None));
    assert_eq!(err.python_type(), "CancelledError");
}

/// Runs iterations until `done()` holds, at most `max`.
fn drive(lp: &EventLoop, max: usize, done: impl Fn() -> bool) {
    for _ in 0..max {
        if done() {
            return;
        }
        run_once(lp);
    }
    assert!(done(), "condition not reached in {max} iterations");
}

/// Runs the loop until `cf` is done (`run_until_complete(wrap_future(cf))`,
/// so virtual time advances to the next timer) and returns its outcome.
fn complete<T: Clone + Send + 'static>(
    lp: &EventLoop,
    cf: &ConcurrentFuture<T>,
) -> loopspec::Result<T> {
    lp.run_until_complete(loopspec::wrap_future(cf, lp).unwrap())
}

/// Starts `lp.run_forever()` on a new thread.
fn spawn_run(lp: &EventLoop, name: &str) -> thread::JoinHandle<loopspec::Result<()>> {
    let l = lp.clone();
    thread::Builder::new()
        .name(name.into())
        .spawn(move || l.run_forever())
        .unwrap()
}

// ---------------------------------------------------------------------------
// XTHREAD-1
// ---------------------------------------------------------------------------

/// Rules: XTHREAD-1
#[test]
fn call_soon_threadsafe_from_other_threads_runs_when_the_loop_next_runs() {
    let lp = vloop();
    let log = SyncLog::default();
    for i in 0..3 {
        let (l, cb) = (lp.clone(), log.cb(format!("t{i}")));
        let h = thread::spawn(move || l.call_soon_threadsafe(cb).unwrap())
            .join()
            .unwrap();
        assert!(!h.cancelled());
    }
    assert!(log.get().is_empty(), "nothing runs before the loop runs");
    run_once(&lp);
    assert_eq!(log.get(), ["t0", "t1", "t2"]);
    lp.close().unwrap();
}

/// Rules: XTHREAD-1
#[test]
fn call_soon_threadsafe_callback_runs_on_the_loops_thread() {
    let (loop_id, ran_on) = in_thread("xt-loop", || {
        let lp = vloop();
        let ran_on = Arc::new(Mutex::new(Vec::new()));
        let (l, r) = (lp.clone(), ran_on.clone());
        thread::spawn(move || {
            l.call_soon_threadsafe(move || {
                let t = thread::current();
                r.lock().unwrap().push((t.id(), t.name().map(String::from)));
            })
            .unwrap();
        })
        .join()
        .unwrap();
        run_once(&lp);
        lp.close().unwrap();
        let got = ran_on.lock().unwrap().clone();
        (thread::current().id(), got)
    });
    assert_eq!(ran_on, vec![(loop_id, Some("xt-loop".to_string()))]);
}

/// Rules: XTHREAD-1, LIFE-8
#[test]
fn call_soon_threadsafe_on_a_closed_loop_fails() {
    let lp = vloop();
    lp.close().unwrap();
    let drops = counter();
    let ran = counter();
    let (d, r) = (DropCount(drops.clone()), ran.clone());
    let err = lp
        .call_soon_threadsafe(move || {
            let _d = d;
            r.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap_err();
    assert_closed(&err);
    assert_eq!(count(&drops), 1, "the refused closure is dropped");
    assert_eq!(count(&ran), 0);

    let l = lp.clone();
    let err = thread::spawn(move || l.call_soon_threadsafe(|| ()).unwrap_err())
        .join()
        .unwrap();
    assert_closed(&err);
    assert_eq!(lp.inbox_stats().submissions, 0);
}

/// Rules: XTHREAD-1, XTHREAD-4
#[test]
fn call_soon_threadsafe_wakes_a_parked_loop() {
    // A real-clock loop with nothing to do waits forever; only the
    // submission can end its run.
    let lp = EventLoop::new();
    let runner = spawn_run(&lp, "parked-loop");
    wait_parked(&lp, 1);
    let ran_on = Arc::new(Mutex::new(None));
    let (l, r) = (lp.clone(), ran_on.clone());
    thread::spawn(move || {
        let stopper = l.clone();
        l.call_soon_threadsafe(move || {
            *r.lock().unwrap() = thread::current().name().map(String::from);
            stopper.stop();
        })
        .unwrap();
    })
    .join()
    .unwrap();
    assert_eq!(runner.join().unwrap(), Ok(()));
    assert_eq!(ran_on.lock().unwrap().as_deref(), Some("parked-loop"));
    let stats = lp.inbox_stats();
    assert!(
        stats.wakeups >= 1 && stats.wakeups <= stats.parks,
        "{stats:?}"
    );
    lp.close().unwrap();
}

/// Rules: XTHREAD-1
#[test]
fn call_soon_threadsafe_on_the_running_loops_thread_runs_next_iteration() {
    let lp = vloop();
    let log = SyncLog::default();
    let (l, log2) = (lp.clone(), log.clone());
    lp.call_soon(move || {
        log2.push("cb");
        l.call_soon_threadsafe(log2.cb("threadsafe")).unwrap();
    })
    .unwrap();
    run_once(&lp);
    assert_eq!(log.get(), ["cb"]);
    run_once(&lp);
    assert_eq!(log.get(), ["cb", "threadsafe"]);
    lp.close().unwrap();
}

// ---------------------------------------------------------------------------
// XTHREAD-2
// ---------------------------------------------------------------------------

/// Rules: XTHREAD-2
#[test]
fn call_soon_threadsafe_is_fifo_with_call_soon_on_the_running_thread() {
    let lp = vloop();
    let log = SyncLog::default();
    let (l, lg) = (lp.clone(), log.clone());
    lp.call_soon(move || {
        l.call_soon_threadsafe(lg.cb("a")).unwrap();
        l.call_soon(lg.cb("b")).unwrap();
        l.call_soon_threadsafe(lg.cb("c")).unwrap();
        l.call_soon(lg.cb("d")).unwrap();
    })
    .unwrap();
    run_once(&lp);
    run_once(&lp);
    assert_eq!(log.get(), ["a", "b", "c", "d"]);
    lp.close().unwrap();
}

/// Rules: XTHREAD-2
#[test]
fn call_soon_threadsafe_is_fifo_with_call_soon_on_the_idle_home_thread() {
    // X-1 / test_call_soon_threadsafe_same_thread: the loop is not running.
    let lp = vloop();
    let log = SyncLog::default();
    lp.call_soon_threadsafe(log.cb("a")).unwrap();
    lp.call_soon(log.cb("b")).unwrap();
    lp.call_soon_threadsafe(log.cb("c")).unwrap();
    lp.call_soon(log.cb("d")).unwrap();
    lp.call_soon_threadsafe(log.cb("e")).unwrap();
    run_once(&lp);
    assert_eq!(log.get(), ["a", "b", "c", "d", "e"]);
    lp.close().unwrap();
}

/// Rules: XTHREAD-2
#[test]
fn submission_that_happens_before_call_soon_runs_before_it() {
    let lp = vloop();
    let log = SyncLog::default();
    lp.call_soon(log.cb("first")).unwrap(); // claims the home
    let (l, cb) = (lp.clone(), log.cb("remote"));
    thread::spawn(move || l.call_soon_threadsafe(cb).unwrap())
        .join()
        .unwrap(); // the join orders the submission before what follows
    lp.call_soon(log.cb("local")).unwrap();
    run_once(&lp);
    assert_eq!(log.get(), ["first", "remote", "local"]);
    lp.close().unwrap();
}

/// Rules: XTHREAD-2
#[test]
fn submission_that_happens_after_call_soon_runs_after_it() {
    let lp = vloop();
    let log = SyncLog::default();
    lp.call_soon(log.cb("local")).unwrap();
    let (l, cb) = (lp.clone(), log.cb("remote"));
    thread::spawn(move || l.call_soon_threadsafe(cb).unwrap())
        .join()
        .unwrap();
    run_once(&lp);
    assert_eq!(log.get(), ["local", "remote"]);
    lp.close().unwrap();
}

/// Rules: XTHREAD-2
#[test]
fn causally_ordered_submissions_keep_their_place_while_the_loop_runs() {
    let lp = vloop();
    let log = SyncLog::default();
    let (l, lg) = (lp.clone(), log.clone());
    lp.call_soon(move || {
        // remote-1 happens before local-1 ...
        let (l2, cb) = (l.clone(), lg.cb("remote-1"));
        thread::spawn(move || l2.call_soon_threadsafe(cb).unwrap())
            .join()
            .unwrap();
        l.call_soon(lg.cb("local-1")).unwrap();
        // ... and after local-1, before remote-2 ...
        let (l2, cb) = (l.clone(), lg.cb("remote-2"));
        thread::spawn(move || l2.call_soon_threadsafe(cb).unwrap())
            .join()
            .unwrap();
        // ... which happens before local-2.
        l.call_soon(lg.cb("local-2")).unwrap();
    })
    .unwrap();
    run_once(&lp);
    run_once(&lp);
    assert_eq!(log.get(), ["remote-1", "local-1", "remote-2", "local-2"]);
    lp.close().unwrap();
}

/// Rules: XTHREAD-2
#[test]
fn submissions_from_one_thread_keep_their_order() {
    let lp = vloop();
    let log = SyncLog::default();
    let (l, lg) = (lp.clone(), log.clone());
    thread::spawn(move || {
        for i in 0..100 {
            l.call_soon_threadsafe(lg.cb(i.to_string())).unwrap();
        }
    })
    .join()
    .unwrap();
    run_once(&lp);
    let want: Vec<String> = (0..100).map(|i| i.to_string()).collect();
    assert_eq!(log.get(), want);
    lp.close().unwrap();
}

// ---------------------------------------------------------------------------
// XTHREAD-3
// ---------------------------------------------------------------------------

/// Rules: XTHREAD-3, LIFE-7
#[test]
fn close_drops_accepted_submissions_at_once_without_running_them() {
    let lp = vloop();
    let drops = counter();
    let ran = counter();
    for _ in 0..3 {
        let (l, d, r) = (lp.clone(), DropCount(drops.clone()), ran.clone());
        thread::spawn(move || {
            l.call_soon_threadsafe(move || {
                let _d = d;
                r.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap()
        })
        .join()
        .unwrap();
    }
    assert_eq!(count(&drops), 0);
    lp.close().unwrap();
    assert_eq!(count(&drops), 3, "dropped by close() itself");
    assert_eq!(count(&ran), 0);
    assert_eq!(lp.inbox_stats().submissions, 3);
}

/// Rules: XTHREAD-3, THREAD-5
#[test]
fn close_from_another_thread_drops_accepted_submissions_there() {
    let lp = vloop();
    let drops = Arc::new(Mutex::new(Vec::new()));
    let d = DropWhere(drops.clone());
    lp.call_soon_threadsafe(move || drop(d)).unwrap();
    let l = lp.clone();
    thread::Builder::new()
        .name("closer".into())
        .spawn(move || l.close().unwrap())
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(*drops.lock().unwrap(), ["closer"]);
}

/// Rules: XTHREAD-3
#[test]
fn nothing_is_accepted_after_close() {
    let lp = vloop();
    lp.call_soon_threadsafe(|| ()).unwrap();
    lp.close().unwrap();
    let refused = counter();
    let dropped = counter();
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (l, r, d) = (lp.clone(), refused.clone(), dropped.clone());
            thread::spawn(move || {
                for _ in 0..50 {
                    let guard = DropCount(d.clone());
                    let err = l.call_soon_threadsafe(move || drop(guard)).unwrap_err();
                    assert_closed(&err);
                    r.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(count(&refused), 200);
    assert_eq!(count(&dropped), 200);
    assert_eq!(
        lp.inbox_stats().submissions,
        1,
        "only the one before close()"
    );
    assert_closed(&run_coroutine_threadsafe(|| async { Ok(1) }, &lp).unwrap_err());
}

/// Rules: XTHREAD-3, XTHREAD-1
#[test]
fn submissions_racing_with_close_have_one_of_three_outcomes() {
    // Small version of tests/robustness/stress.rs: each submission ran, was refused, or
    // was accepted and then dropped by close.
    const N: usize = 500;
    let lp = vloop();
    let ran = Arc::new((0..N).map(|_| AtomicUsize::new(0)).collect::<Vec<_>>());
    let dropped = Arc::new((0..N).map(|_| AtomicUsize::new(0)).collect::<Vec<_>>());
    struct Guard(Arc<Vec<AtomicUsize>>, usize, bool);
    impl Drop for Guard {
        fn drop(&mut self) {
            if !self.2 {
                self.0[self.1].fetch_add(1, Ordering::SeqCst);
            }
        }
    }
    let (l, r, d) = (lp.clone(), ran.clone(), dropped.clone());
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
            let g = Guard(d.clone(), i, false);
            let r = r.clone();
            match l.call_soon_threadsafe(move || {
                let mut g = g; // the whole guard moves into the closure
                g.2 = true;
                r[i].fetch_add(1, Ordering::SeqCst);
            }) {
                Ok(_) => {}
                Err(e) => {
                    assert_closed(&e);
                    *slot = true;
                }
            }
        }
        refused
    });
    // Once 100 are in, run a few iterations while the producer goes on
    // submitting, then close.
    recv_or_hang(&early_rx, "the first 100 submissions");
    for _ in 0..5 {
        run_once(&lp);
    }
    lp.close().unwrap();
    closed_tx.send(()).unwrap();
    let refused = producer.join().unwrap();
    let (mut n_ran, mut n_refused, mut n_dropped) = (0, 0, 0);
    let mut seen_refusal = false;
    for i in 0..N {
        let (r, d) = (
            ran[i].load(Ordering::SeqCst),
            dropped[i].load(Ordering::SeqCst),
        );
        match (r, d, refused[i]) {
            (1, 0, false) => n_ran += 1,
            (0, 1, true) => n_refused += 1, // the refused closure is dropped
            (0, 1, false) => n_dropped += 1,
            other => panic!("submission {i}: outcome not allowed: {other:?}"),
        }
        // Submissions are sequential: once refused, always refused.
        if refused[i] {
            seen_refusal = true;
        } else {
            assert!(!seen_refusal, "submission {i} accepted after a refusal");
        }
    }
    assert_eq!(n_ran + n_refused + n_dropped, N);
    assert!(
        n_ran >= 100,
        "the first 100 were queued before the first run"
    );
    assert!(
        n_refused >= N - 300,
        "those submitted after close() are refused"
    );
    assert!(refused[300..].iter().all(|r| *r));
    println!("close race: ran={n_ran} refused={n_refused} dropped={n_dropped}");
}

// ---------------------------------------------------------------------------
// XTHREAD-4
// ---------------------------------------------------------------------------

/// Rules: XTHREAD-4
#[test]
fn submissions_to_a_loop_that_is_not_running_cost_no_wakeup() {
    let lp = vloop();
    let l = lp.clone();
    thread::spawn(move || {
        for _ in 0..3 {
            l.call_soon_threadsafe(|| ()).unwrap();
        }
    })
    .join()
    .unwrap();
    let s = lp.inbox_stats();
    assert_eq!((s.submissions, s.wakeups, s.parks), (3, 0, 0));
    lp.close().unwrap();
}

/// Rules: XTHREAD-4
#[test]
fn burst_to_a_busy_loop_costs_no_wakeup() {
    const N: u64 = 1000;
    let lp = vloop();
    let ran = counter();
    let stats = Arc::new(Mutex::new(None));
    let (l, r, st) = (lp.clone(), ran.clone(), stats.clone());
    lp.call_soon(move || {
        // The loop is busy running this callback, not parked.
        let before = l.inbox_stats();
        let (l2, r2) = (l.clone(), r.clone());
        thread::spawn(move || {
            for _ in 0..N {
                let r3 = r2.clone();
                l2.call_soon_threadsafe(move || {
                    r3.fetch_add(1, Ordering::SeqCst);
                })
                .unwrap();
            }
        })
        .join()
        .unwrap();
        *st.lock().unwrap() = Some((before, l.inbox_stats()));
    })
    .unwrap();
    run_once(&lp);
    let (before, after) = stats.lock().unwrap().unwrap();
    assert_eq!(after.submissions - before.submissions, N);
    assert_eq!(
        after.wakeups - before.wakeups,
        0,
        "no wake-up for a busy loop"
    );
    assert_eq!(after.parks, before.parks);
    run_once(&lp);
    assert_eq!(count(&ran), N as usize);
    lp.close().unwrap();
}

/// Rules: XTHREAD-4
#[test]
fn burst_to_a_parked_loop_costs_one_wakeup() {
    const N: usize = 500;
    let lp = EventLoop::new();
    let runner = spawn_run(&lp, "burst-loop");
    wait_parked(&lp, 1);
    let before = lp.inbox_stats();
    assert_eq!(
        (before.submissions, before.wakeups, before.parks),
        (0, 0, 1)
    );
    // The first submission wakes the loop and holds it busy until the whole
    // burst is in, so the burst meets a loop that is parked-and-notified or
    // busy: never a second park.
    let (go_tx, go_rx) = mpsc::channel::<()>();
    lp.call_soon_threadsafe(move || recv_or_hang(&go_rx, "the end of the burst"))
        .unwrap();
    let ran = counter();
    for _ in 0..N {
        let r = ran.clone();
        lp.call_soon_threadsafe(move || {
            r.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    }
    let stopper = lp.clone();
    lp.call_soon_threadsafe(move || stopper.stop()).unwrap();
    go_tx.send(()).unwrap();
    assert_eq!(runner.join().unwrap(), Ok(()));
    assert_eq!(count(&ran), N);
    let s = lp.inbox_stats();
    assert_eq!(s.submissions, N as u64 + 2);
    assert_eq!(s.parks, 1);
    assert_eq!(
        s.wakeups, 1,
        "one wake-up per park, however many submissions"
    );
    lp.close().unwrap();
}

/// Rules: XTHREAD-4, STOP-5
#[test]
fn parked_loop_woken_repeatedly_gets_at_most_one_wakeup_per_park() {
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
    let s = lp.inbox_stats();
    assert_eq!(s.submissions, 5);
    assert!(
        s.wakeups >= 5,
        "every submission to a parked loop woke it: {s:?}"
    );
    assert!(s.wakeups <= s.parks, "at most one per park: {s:?}");
    lp.close().unwrap();
}

// ---------------------------------------------------------------------------
// XTHREAD-5
// ---------------------------------------------------------------------------

/// Rules: XTHREAD-5, XTHREAD-1
#[test]
fn handle_of_a_submission_cancelled_from_another_thread_never_runs() {
    let lp = vloop();
    let log = SyncLog::default();
    let (l, lg) = (lp.clone(), log.clone());
    let handle = thread::spawn(move || {
        l.call_soon_threadsafe(lg.cb("cancelled")).unwrap();
        l.call_soon_threadsafe(lg.cb("kept")).unwrap()
    })
    .join()
    .unwrap();
    let (l, lg) = (lp.clone(), log.clone());
    let victim = thread::spawn(move || l.call_soon_threadsafe(lg.cb("victim")).unwrap())
        .join()
        .unwrap();
    // Cancelled by yet another thread.
    let v = victim.clone();
    thread::spawn(move || v.cancel()).join().unwrap();
    assert!(victim.cancelled());
    assert!(!handle.cancelled());
    run_once(&lp);
    assert_eq!(log.get(), ["cancelled", "kept"]);
    lp.close().unwrap();
}

/// Rules: XTHREAD-5, SCHED-3
#[test]
fn call_soon_handle_cancelled_from_another_thread_never_runs() {
    // a cancelled one was skipped, giving [0, 1, 3, 4].
    let lp = vloop();
    let log = Log::new();
    let handles: Vec<_> = (0..5)
        .map(|i| lp.call_soon(log.cb(i.to_string())).unwrap())
        .collect();
    let h = handles[2].clone();
    thread::spawn(move || h.cancel()).join().unwrap();
    run_once(&lp);
    assert_eq!(log.get(), ["0", "1", "3", "4"]);
    lp.close().unwrap();
}

/// Rules: XTHREAD-5
#[test]
fn cancel_from_another_thread_during_the_batch_prevents_a_later_callback() {
    // The cancelling callback runs first in the batch and has another thread
    // cancel a submission queued behind it in the same batch.
    let lp = vloop();
    let log = SyncLog::default();
    let slot: Arc<Mutex<Option<loopspec::Handle>>> = Arc::new(Mutex::new(None));
    let (s, lg) = (slot.clone(), log.clone());
    lp.call_soon(move || {
        let h = s.lock().unwrap().clone().unwrap();
        thread::spawn(move || h.cancel()).join().unwrap();
        lg.push("canceller");
    })
    .unwrap();
    let (l, cb) = (lp.clone(), log.cb("victim"));
    let victim = thread::spawn(move || l.call_soon_threadsafe(cb).unwrap())
        .join()
        .unwrap();
    *slot.lock().unwrap() = Some(victim.clone());
    run_once(&lp);
    assert_eq!(log.get(), ["canceller"]);
    assert!(victim.cancelled());
    run_once(&lp);
    assert_eq!(log.get(), ["canceller"]);
    lp.close().unwrap();
}

/// Rules: XTHREAD-5
#[test]
fn cancel_after_the_run_changes_nothing() {
    let lp = vloop();
    let ran = counter();
    let r = ran.clone();
    let h = lp
        .call_soon_threadsafe(move || {
            r.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    run_once(&lp);
    let h2 = h.clone();
    thread::spawn(move || h2.cancel()).join().unwrap();
    assert!(h.cancelled());
    run_once(&lp);
    assert_eq!(count(&ran), 1);
    lp.close().unwrap();
}

/// Rules: XTHREAD-5
#[test]
fn cancel_racing_with_the_run_runs_at_most_once() {
    // Allowed outcomes for a cancel racing with the start of the run: the
    // callback did not run, or it ran once. Never twice, never an error.
    const N: usize = 300;
    let lt = LoopThread::spawn("race-loop").unwrap();
    let runs = Arc::new((0..N).map(|_| AtomicUsize::new(0)).collect::<Vec<_>>());
    let (tx, rx) = mpsc::channel();
    let lp = lt.event_loop().clone();
    let r = runs.clone();
    let submitter = thread::spawn(move || {
        for i in 0..N {
            let r = r.clone();
            let h = lp
                .call_soon_threadsafe(move || {
                    r[i].fetch_add(1, Ordering::SeqCst);
                })
                .unwrap();
            tx.send(h).unwrap();
        }
    });
    let canceller = thread::spawn(move || {
        let mut n = 0;
        while let Ok(h) = rx.recv() {
            h.cancel();
            n += 1;
        }
        n
    });
    submitter.join().unwrap();
    assert_eq!(canceller.join().unwrap(), N);
    // A marker submitted last runs after every earlier submission.
    let (done_tx, done_rx) = mpsc::channel();
    lt.event_loop()
        .call_soon_threadsafe(move || done_tx.send(()).unwrap())
        .unwrap();
    recv_or_hang(&done_rx, "the marker submitted last ran");
    lt.stop_and_join().unwrap();
    let total: usize = runs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let n = r.load(Ordering::SeqCst);
            assert!(n <= 1, "submission {i} ran {n} times");
            n
        })
        .sum();
    println!("cancel race: {total} of {N} ran before their cancel");
}

// ---------------------------------------------------------------------------
// XTHREAD-6
// ---------------------------------------------------------------------------

/// Rules: XTHREAD-6
#[test]
fn run_coroutine_threadsafe_returns_at_once_and_the_work_waits_for_the_loop() {
    let lp = vloop();
    let made = Arc::new(AtomicBool::new(false));
    let m = made.clone();
    let l = lp.clone();
    let cf = thread::spawn(move || {
        run_coroutine_threadsafe(
            move || {
                m.store(true, Ordering::SeqCst);
                async { Ok(6 * 7) }
            },
            &l,
        )
        .unwrap()
    })
    .join()
    .unwrap();
    // result(0.1) raised TimeoutError while the loop did not run.
    assert_eq!(cf.state(), CfState::Pending);
    assert_eq!(cf.result(Some(Duration::ZERO)), Err(Error::Timeout));
    assert!(
        !made.load(Ordering::SeqCst),
        "the coroutine is made by the loop"
    );
    assert_eq!(lp.inbox_stats().submissions, 1, "one call_soon_threadsafe");
    drive(&lp, 10, || cf.done());
    assert!(made.load(Ordering::SeqCst));
    assert_eq!(cf_result(&cf), Ok(42));
    lp.close().unwrap();
}

/// Rules: XTHREAD-6, XTHREAD-10
#[test]
fn run_coroutine_threadsafe_result_arrives_once_the_loop_runs_in_a_thread() {
    // "after run_forever started in a thread the result arrived".
    let lp = EventLoop::new();
    let cf = run_coroutine_threadsafe(|| async { Ok("late") }, &lp).unwrap();
    assert_eq!(cf.result(Some(Duration::ZERO)), Err(Error::Timeout));
    let lt = LoopThread::spawn_with(lp, "late-loop").unwrap();
    assert_eq!(cf_result(&cf), Ok("late"));
    lt.stop_and_join().unwrap();
}

/// Rules: XTHREAD-6
#[test]
fn run_coroutine_threadsafe_makes_the_task_on_the_loops_thread() {
    let (loop_id, made_on) = in_thread("rct-loop", || {
        let lp = vloop();
        let made_on = Arc::new(Mutex::new(None));
        let (m, l) = (made_on.clone(), lp.clone());
        let cf = thread::spawn(move || {
            run_coroutine_threadsafe(
                move || {
                    *m.lock().unwrap() = Some(thread::current().id());
                    async {
                        let t = loopspec::current_task()?.expect("inside a task");
                        Ok(t.get_name())
                    }
                },
                &l,
            )
            .unwrap()
        })
        .join()
        .unwrap();
        drive(&lp, 10, || cf.done());
        assert_eq!(cf_result(&cf), Ok("Task-1".to_string()));
        lp.close().unwrap();
        let got = *made_on.lock().unwrap();
        (thread::current().id(), got)
    });
    assert_eq!(made_on, Some(loop_id));
}

/// Rules: XTHREAD-6, LIFE-8
#[test]
fn run_coroutine_threadsafe_on_a_closed_loop_fails_at_the_call() {
    let lp = vloop();
    lp.close().unwrap();
    let made = Arc::new(AtomicBool::new(false));
    let m = made.clone();
    let err = run_coroutine_threadsafe(
        move || {
            m.store(true, Ordering::SeqCst);
            async { Ok(()) }
        },
        &lp,
    )
    .unwrap_err();
    assert_closed(&err);
    assert!(!made.load(Ordering::SeqCst));
}

/// Rules: XTHREAD-6, XTHREAD-3
#[test]
fn run_coroutine_threadsafe_submission_dropped_by_close_fails_the_future() {
    let lp = vloop();
    let made = Arc::new(AtomicBool::new(false));
    let m = made.clone();
    let cf = run_coroutine_threadsafe(
        move || {
            m.store(true, Ordering::SeqCst);
            async { Ok(1) }
        },
        &lp,
    )
    .unwrap();
    lp.close().unwrap();
    // CPython's future would never complete; loopspec's fails at close.
    assert!(cf.done());
    assert_eq!(cf.state(), CfState::Finished);
    let err = cf_result(&cf).unwrap_err();
    assert_closed(&err);
    assert_eq!(cf_exception(&cf), Ok(Some(Error::Closed)));
    assert!(!made.load(Ordering::SeqCst), "the task was never made");
}

/// Rules: XTHREAD-6
#[test]
fn run_coroutine_threadsafe_submission_dropped_by_close_from_another_thread() {
    let lp = vloop();
    let cf = run_coroutine_threadsafe(|| async { Ok(1) }, &lp).unwrap();
    let w = cf.clone();
    let waiter = thread::spawn(move || cf_result(&w));
    let l = lp.clone();
    thread::spawn(move || l.close().unwrap()).join().unwrap();
    assert_closed(&waiter.join().unwrap().unwrap_err());
}

/// Rules: XTHREAD-6, XTHREAD-8
#[test]
fn run_coroutine_threadsafe_cancelled_then_dropped_by_close_stays_cancelled() {
    let lp = vloop();
    let cf = run_coroutine_threadsafe(|| async { Ok(1) }, &lp).unwrap();
    assert!(cf.cancel());
    lp.close().unwrap();
    assert!(cf.cancelled());
    assert_cancelled(&cf_result(&cf).unwrap_err());
}

// ---------------------------------------------------------------------------
// XTHREAD-7
// ---------------------------------------------------------------------------

/// Rules: XTHREAD-7
#[test]
fn run_coroutine_threadsafe_result_reaches_a_waiting_thread() {
    let lt = LoopThread::spawn("result-loop").unwrap();
    let cf = run_coroutine_threadsafe(
        || async {
            loopspec::yield_now().await?;
            Ok(vec![1, 2, 3])
        },
        lt.event_loop(),
    )
    .unwrap();
    let w = cf.clone();
    let got = thread::spawn(move || cf_result(&w)).join().unwrap();
    assert_eq!(got, Ok(vec![1, 2, 3]));
    assert_eq!(cf_exception(&cf), Ok(None));
    assert_eq!(cf.state(), CfState::Finished);
    lt.stop_and_join().unwrap();
}

/// Rules: XTHREAD-7
#[test]
fn run_coroutine_threadsafe_exception_reaches_the_caller() {
    let lp = vloop();
    let errors = capture_exceptions(&lp);
    let cf = run_coroutine_threadsafe(
        || async {
            loopspec::yield_now().await?;
            Err::<i32, _>(Error::raise("ValueError", "remote failure"))
        },
        &lp,
    )
    .unwrap();
    let timeout =
        run_coroutine_threadsafe(|| async { Err::<i32, _>(Error::Timeout) }, &lp).unwrap();
    drive(&lp, 10, || cf.done() && timeout.done());
    let err = cf_result(&cf).unwrap_err();
    assert_eq!(err, Error::raise("ValueError", "remote failure"));
    assert_eq!(err.python_type(), "ValueError");
    assert_eq!(err.to_string(), "remote failure");
    assert_eq!(cf_exception(&cf), Ok(Some(err)));
    // a TimeoutError raised inside stays a TimeoutError.
    assert_eq!(cf_result(&timeout), Err(Error::Timeout));
    // The task's exception was retrieved: nothing reported.
    for _ in 0..3 {
        run_once(&lp);
    }
    assert!(
        errors.lock().unwrap().is_empty(),
        "{:?}",
        errors.lock().unwrap()
    );
    lp.close().unwrap();
}

/// Rules: XTHREAD-7, TASK-14
#[test]
fn run_coroutine_threadsafe_panic_reaches_the_caller() {
    let lp = vloop();
    let cf = run_coroutine_threadsafe(
        || async {
            loopspec::yield_now().await?;
            if true {
                panic!("boom in the loop");
            }
            Ok(0)
        },
        &lp,
    )
    .unwrap();
    drive(&lp, 10, || cf.done());
    let err = cf_result(&cf).unwrap_err();
    assert_eq!(err, Error::Panic("boom in the loop".into()));
    assert_eq!(err.python_type(), "Panic");
    assert_eq!(err.to_string(), "boom in the loop");
    lp.close().unwrap();
}

/// Rules: XTHREAD-7
#[test]
fn task_cancelled_on_the_loop_side_cancels_the_concurrent_future() {
    let lp = vloop();
    let cf = run_coroutine_threadsafe(
        || async {
            loopspec::sleep(100.0).await?;
            Ok(1)
        },
        &lp,
    )
    .unwrap();
    run_once(&lp); // makes the task
    run_once(&lp); // the task sleeps
    assert_eq!(cf.state(), CfState::Pending);
    lp.call_soon(|| {
        for t in loopspec::all_tasks().unwrap() {
            assert!(t.cancel());
        }
    })
    .unwrap();
    drive(&lp, 10, || cf.done());
    assert!(cf.cancelled());
    // result() raises the (concurrent) CancelledError.
    assert_cancelled(&cf_result(&cf).unwrap_err());
    assert_cancelled(&cf_exception(&cf).unwrap_err());
    assert_eq!(lp.time(), 0.0, "cancelled before the sleep ended");
    lp.close().unwrap();
}

/// Rules: XTHREAD-7, CONC-6
#[test]
fn run_coroutine_threadsafe_done_callbacks_run_on_the_loops_thread() {
    let (loop_id, seen) = in_thread("cb-loop", || {
        let lp = vloop();
        let cf = run_coroutine_threadsafe(
            || async {
                loopspec::sleep(1.0).await?;
                Ok(5)
            },
            &lp,
        )
        .unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        // Added from another thread, before completion.
        let (c, s) = (cf.clone(), seen.clone());
        thread::spawn(move || {
            c.add_done_callback(move |f| {
                let t = thread::current();
                s.lock()
                    .unwrap()
                    .push((t.id(), t.name().map(String::from), f.result(None)));
            })
        })
        .join()
        .unwrap();
        complete(&lp, &cf).unwrap();
        lp.close().unwrap();
        let got = seen.lock().unwrap().clone();
        (thread::current().id(), got)
    });
    assert_eq!(seen, vec![(loop_id, Some("cb-loop".to_string()), Ok(5))]);
}

// ---------------------------------------------------------------------------
// XTHREAD-8
// ---------------------------------------------------------------------------

/// Rules: XTHREAD-8
#[test]
fn concurrent_future_stays_pending_while_the_task_runs() {
    let lp = vloop();
    let cf = run_coroutine_threadsafe(
        || async {
            loopspec::sleep(1.0).await?;
            loopspec::sleep(1.0).await?;
            Ok(2)
        },
        &lp,
    )
    .unwrap();
    for _ in 0..3 {
        run_once(&lp);
        assert_eq!(cf.state(), CfState::Pending);
        assert!(!cf.running(), "running() stays false while the task runs");
    }
    assert_eq!(complete(&lp, &cf), Ok(2));
    assert_eq!(cf_result(&cf), Ok(2));
    assert!(!cf.cancel(), "finished: cancel() fails");
    lp.close().unwrap();
}

/// Rules: XTHREAD-8
#[test]
fn cancelling_the_concurrent_future_cancels_the_suspended_task() {
    let lp = vloop();
    let log = SyncLog::default();
    let lg = log.clone();
    let cf = run_coroutine_threadsafe(
        move || async move {
            lg.push("started");
            match loopspec::sleep(100.0).await {
                Ok(()) => {
                    lg.push("slept");
                    Ok(1)
                }
                Err(e) => {
                    lg.push(format!("caught {e:?}"));
                    Err(e)
                }
            }
        },
        &lp,
    )
    .unwrap();
    run_once(&lp);
    run_once(&lp);
    assert_eq!(log.get(), ["started"]);
    let c = cf.clone();
    assert!(thread::spawn(move || c.cancel()).join().unwrap());
    assert!(cf.cancelled(), "cancelled at once");
    // The cancellation travels to the task with call_soon_threadsafe.
    assert!(lp.inbox_stats().submissions >= 2);
    drive(&lp, 10, || log.get().len() == 2);
    assert_eq!(log.get(), ["started", "caught CancelledError()"]);
    assert_eq!(lp.time(), 0.0);
    run_once(&lp);
    assert!(cf.cancelled());
    assert_eq!(cf.state(), CfState::CancelledAndNotified);
    assert_cancelled(&cf_result(&cf).unwrap_err());
    lp.close().unwrap();
}

/// A loop on the virtual clock following `profile`.
fn vloop_of(profile: Profile) -> EventLoop {
    EventLoop::builder()
        .clock(ClockKind::Virtual)
        .profile(profile)
        .build()
}

/// cf.cancel() before the loop took the submission: the task is made
/// either way; up to 3.12 its one step still runs to completion (CPython
/// 3.11.7 observed `ran == True`), from 3.13 it is cancelled before it
/// (3.13.18, 3.14.10, 3.15.2: `ran == False`). The future reports cancelled.
/// Rules: XTHREAD-8
#[test]
fn early_cancel_of_a_one_step_coroutine_by_profile() {
    for profile in Profile::ALL {
        let lp = vloop_of(profile);
        let ran = Arc::new(AtomicBool::new(false));
        let made = Arc::new(AtomicBool::new(false));
        let (r, m) = (ran.clone(), made.clone());
        let cf = run_coroutine_threadsafe(
            move || {
                m.store(true, Ordering::SeqCst);
                async move {
                    r.store(true, Ordering::SeqCst);
                    Ok(1)
                }
            },
            &lp,
        )
        .unwrap();
        assert!(cf.cancel());
        assert!(cf.cancelled());
        for _ in 0..5 {
            run_once(&lp);
        }
        assert!(made.load(Ordering::SeqCst), "the task is still made");
        assert_eq!(
            ran.load(Ordering::SeqCst),
            profile < Profile::Py313,
            "{profile:?}: whether its first step ran"
        );
        assert!(cf.cancelled(), "the concurrent future reports cancelled");
        assert_eq!(cf.state(), CfState::CancelledAndNotified);
        assert_cancelled(&cf_result(&cf).unwrap_err());
        lp.close().unwrap();
    }
}

/// The same with a coroutine that suspends once, cancelled from another
/// thread: up to 3.12 it runs to its first suspension and is cancelled
/// there; from 3.13 it never starts.
/// Rules: XTHREAD-8
#[test]
fn early_cancel_of_a_multi_step_coroutine_by_profile() {
    for profile in Profile::ALL {
        let lp = vloop_of(profile);
        let log = SyncLog::default();
        let lg = log.clone();
        let cf = run_coroutine_threadsafe(
            move || async move {
                lg.push("started");
                match loopspec::yield_now().await {
                    Ok(()) => {
                        lg.push("resumed");
                        Ok(1)
                    }
                    Err(e) => {
                        lg.push("cancelled");
                        Err(e)
                    }
                }
            },
            &lp,
        )
        .unwrap();
        let c = cf.clone();
        assert!(thread::spawn(move || c.cancel()).join().unwrap());
        for _ in 0..6 {
            run_once(&lp);
        }
        let expected: &[&str] = if profile < Profile::Py313 {
            &["started", "cancelled"]
        } else {
            &[]
        };
        assert_eq!(log.get(), expected, "{profile:?}");
        assert!(cf.cancelled());
        assert_eq!(cf.state(), CfState::CancelledAndNotified);
        assert_eq!(lp.time(), 0.0);
        lp.close().unwrap();
    }
}

/// Rules: XTHREAD-8
#[test]
fn cancelling_the_concurrent_future_from_another_thread_reaches_a_loop_thread() {
    let lt = LoopThread::spawn("cancel-loop").unwrap();
    let (started_tx, started_rx) = mpsc::channel();
    let (seen_tx, seen_rx) = mpsc::channel();
    let cf = run_coroutine_threadsafe(
        move || async move {
            started_tx.send(()).unwrap();
            // Never completes by itself (an hour on the real clock).
            let r = loopspec::sleep(3600.0).await;
            seen_tx.send(r.clone()).unwrap();
            r.map(|()| 0)
        },
        lt.event_loop(),
    )
    .unwrap();
    recv_or_hang(&started_rx, "the coroutine started");
    assert!(cf.cancel());
    assert_eq!(
        recv_or_hang(&seen_rx, "the coroutine saw its cancellation"),
        Err(Error::Cancelled(None))
    );
    assert_cancelled(&cf_result(&cf).unwrap_err());
    lt.stop_and_join().unwrap();
}

// ---------------------------------------------------------------------------
// XTHREAD-9
// ---------------------------------------------------------------------------

fn assert_result_from_loop_thread(err: &Error) {
    assert_eq!(*err, Error::ResultFromLoopThread);
    assert_eq!(
        err.to_string(),
        "ConcurrentFuture.result() called from the thread of the loop that completes it would deadlock"
    );
    assert_eq!(err.python_type(), "RuntimeError");
}

/// Rules: XTHREAD-9
#[test]
fn result_from_a_task_on_the_loops_thread_fails_at_once() {
    let lp = vloop();
    let cf = run_coroutine_threadsafe(
        || async {
            loopspec::sleep(1.0).await?;
            Ok(3)
        },
        &lp,
    )
    .unwrap();
    let c = cf.clone();
    let (r, e) = lp
        .run_until_complete(async move { Ok((c.result(None), c.exception(None))) })
        .unwrap();
    assert_result_from_loop_thread(&r.unwrap_err());
    assert_result_from_loop_thread(&e.unwrap_err());
    // The future itself is unaffected and completes normally.
    assert_eq!(complete(&lp, &cf), Ok(3));
    assert_eq!(cf_result(&cf), Ok(3));
    lp.close().unwrap();
}

/// Rules: XTHREAD-9
#[test]
fn result_from_a_callback_on_the_loops_thread_fails_at_once() {
    let lp = vloop();
    let cf = run_coroutine_threadsafe(
        || async {
            loopspec::sleep(1.0).await?;
            Ok(3)
        },
        &lp,
    )
    .unwrap();
    let got = Arc::new(Mutex::new(None));
    let (c, g) = (cf.clone(), got.clone());
    lp.call_soon(move || *g.lock().unwrap() = Some(c.result(None)))
        .unwrap();
    run_once(&lp);
    let got = got.lock().unwrap().clone().unwrap();
    assert_result_from_loop_thread(&got.unwrap_err());
    lp.close().unwrap();
}

/// Rules: XTHREAD-9, CONC-2
#[test]
fn result_with_a_zero_timeout_on_the_loops_thread_times_out() {
    // Not a blocking wait: CPython 3.11.7 raises TimeoutError for
    // `fut.result(timeout=0)` / `fut.exception(timeout=0)` in the loop's
    // thread, and CONC-2 says so for any thread. XTHREAD-9 is about the
    // wait that can never return.
    let lp = vloop();
    let cf = run_coroutine_threadsafe(
        || async {
            loopspec::sleep(1.0).await?;
            Ok(3)
        },
        &lp,
    )
    .unwrap();
    let c = cf.clone();
    let (r, e) = lp
        .run_until_complete(async move {
            Ok((
                c.result(Some(Duration::ZERO)),
                c.exception(Some(Duration::ZERO)),
            ))
        })
        .unwrap();
    assert_eq!(r, Err(Error::Timeout));
    assert_eq!(e, Err(Error::Timeout));
    assert_eq!(complete(&lp, &cf), Ok(3));
    lp.close().unwrap();
}

/// Rules: XTHREAD-9
#[test]
fn result_of_a_done_future_on_the_loops_thread_is_returned() {
    let lp = vloop();
    let cf = run_coroutine_threadsafe(|| async { Ok(4) }, &lp).unwrap();
    drive(&lp, 10, || cf.done());
    let c = cf.clone();
    let got = lp
        .run_until_complete(async move { Ok(c.result(None)) })
        .unwrap();
    assert_eq!(got, Ok(4));
    lp.close().unwrap();
}

/// Rules: XTHREAD-9
#[test]
fn result_from_another_thread_waits_normally() {
    let lt = LoopThread::spawn("xt9-loop").unwrap();
    let cf = run_coroutine_threadsafe(
        || async {
            loopspec::yield_now().await?;
            Ok(9)
        },
        lt.event_loop(),
    )
    .unwrap();
    assert_eq!(cf.result(None), Ok(9));
    lt.stop_and_join().unwrap();
}

// ---------------------------------------------------------------------------
// XTHREAD-10
// ---------------------------------------------------------------------------

/// Rules: XTHREAD-10
#[test]
fn loop_thread_runs_work_on_a_thread_with_its_name() {
    let lt = LoopThread::spawn("io-loop").unwrap();
    let cf = run_coroutine_threadsafe(
        || async {
            let lp = loopspec::get_running_loop()?;
            Ok((thread::current().name().map(String::from), lp.is_running()))
        },
        lt.event_loop(),
    )
    .unwrap();
    assert_eq!(cf_result(&cf), Ok((Some("io-loop".to_string()), true)));
    let lp = lt.event_loop().clone();
    assert_eq!(lt.stop_and_join(), Ok(()));
    assert!(lp.is_closed(), "closed by its thread");
    assert!(!lp.is_running());
    assert_closed(&lp.call_soon_threadsafe(|| ()).unwrap_err());
}

/// Rules: XTHREAD-10, STOP-5
#[test]
fn loop_thread_survives_a_plain_stop() {
    let lt = LoopThread::spawn("sturdy-loop").unwrap();
    let lp = lt.event_loop().clone();
    for i in 0..3 {
        lp.stop();
        // Work submitted after the stop still runs: the thread went back to
        // run_forever.
        let cf = run_coroutine_threadsafe(move || async move { Ok(i) }, &lp).unwrap();
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
    assert_eq!(lt.stop_and_join(), Ok(()));
    assert!(lp.is_closed());
}

/// Rules: XTHREAD-10
#[test]
fn loop_thread_dropped_stops_closes_and_joins() {
    let lt = LoopThread::spawn("dropped-loop").unwrap();
    let lp = lt.event_loop().clone();
    let cf = run_coroutine_threadsafe(|| async { Ok(()) }, &lp).unwrap();
    cf_result(&cf).unwrap();
    drop(lt);
    assert!(lp.is_closed());
    assert!(!lp.is_running());
}

/// Rules: XTHREAD-10, RUNNER-4, THREAD-5
#[test]
fn loop_thread_cancels_pending_tasks_on_its_own_thread() {
    let lt = LoopThread::spawn("owner-loop").unwrap();
    let lp = lt.event_loop().clone();
    let drops = Arc::new(Mutex::new(Vec::new()));
    let d = drops.clone();
    let (started_tx, started_rx) = mpsc::channel();
    let cf = run_coroutine_threadsafe(
        move || {
            let guard = DropWhere(d);
            async move {
                let _g = guard;
                started_tx.send(()).unwrap();
                loopspec::sleep(3600.0).await?;
                Ok(())
            }
        },
        &lp,
    )
    .unwrap();
    recv_or_hang(&started_rx, "the coroutine started");
    let errors = capture_exceptions(&lp);
    assert_eq!(lt.stop_and_join(), Ok(()));
    // Its runner's close() cancelled the task and waited for it, on the
    // loop's thread, before closing the loop (RUNNER-4), as CPython's does.
    assert_eq!(*drops.lock().unwrap(), ["owner-loop"]);
    assert!(lp.is_closed());
    assert_eq!(cf.result(Some(Duration::ZERO)), Err(Error::Cancelled(None)));
    assert!(
        errors.lock().unwrap().is_empty(),
        "nothing destroyed pending"
    );
}

/// Rules: XTHREAD-10, THREAD-1
#[test]
fn loop_thread_with_a_loop_bound_elsewhere_reports_the_run_error() {
    in_thread("bound-home", || {
        let lp = EventLoop::new();
        lp.call_soon(|| ()).unwrap(); // loop-bound work on this thread
        let lt = LoopThread::spawn_with(lp.clone(), "refused-loop").unwrap();
        // Its runner's first step, making the main task, is a loop-bound
        // call from another thread.
        let err = lt.stop_and_join().unwrap_err();
        assert_eq!(err, Error::NonThreadSafeCall);
        assert!(lp.is_closed(), "its thread closed the loop");
    });
}

/// Rules: XTHREAD-10, XTHREAD-1
#[test]
fn loop_thread_is_woken_by_call_soon_threadsafe() {
    let lt = LoopThread::spawn("woken-loop").unwrap();
    let lp = lt.event_loop().clone();
    wait_parked(&lp, 1);
    let (tx, rx) = mpsc::channel();
    let l = lp.clone();
    thread::spawn(move || l.call_soon_threadsafe(move || tx.send(7).unwrap()).unwrap())
        .join()
        .unwrap();
    assert_eq!(recv_or_hang(&rx, "the woken loop ran the callback"), 7);
    lt.stop_and_join().unwrap();
}

/// A task made by `run_coroutine_threadsafe` and destroyed by `close()`
/// before it finished fails the concurrent future with the closed error,
/// so a waiter does not hang.
/// Rules: XTHREAD-6, TASK-8
#[test]
fn run_coroutine_threadsafe_task_destroyed_by_close_fails_the_future() {
    let lp = common::vloop();
    let cf = loopspec::run_coroutine_threadsafe(
        || async {
            loopspec::sleep(100.0).await?;
            Ok(1)
        },
        &lp,
    )
    .unwrap();
    common::run_once(&lp); // the loop takes the submission and makes the task
    common::run_once(&lp); // the task's first step: it sleeps
    assert!(!cf.done());
    let _reports = common::capture_exceptions(&lp);
    lp.close().unwrap();
    assert_eq!(
        cf.result(Some(std::time::Duration::ZERO)),
        Err(loopspec::Error::Closed)
    );
}
