//! Misuse: every way the public API can be used wrongly, with the error it
//! gets — Python class (`python_type()`) and exact message (`Display`) — and
//! the SPEC.md rule it falls under. One test per row of the misuse table
//! (`misuse_table.md`, to be merged into SPEC.md); the test names follow the
//! rows.

use common::{Log, recv_or_hang, run_once, vloop};
use loopspec::{
    ConcurrentFuture, Error, EventLoop, Executor, Future, Policy, Profile, Task, ThreadPool,
};
use std::cell::RefCell;
use std::future::Future as _;
use std::pin::pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::thread;

fn assert_error(err: &Error, python_type: &str, message: &str) {
    assert_eq!(err.python_type(), python_type, "class of {err:?}");
    assert_eq!(err.to_string(), message, "message of {err:?}");
}

const CLOSED: &str = "Event loop is closed";
const NOT_THREAD_SAFE: &str =
    "Non-thread-safe operation invoked on an event loop other than the current one";
const DIFFERENT_LOOP: &str =
    "The future belongs to a different loop than the one specified as the loop argument";

fn closed_loop() -> EventLoop {
    let lp = vloop();
    lp.close().unwrap();
    lp
}

/// A loop whose loop-bound work lives on another thread (which stays
/// alive until `release` is dropped).
fn loop_homed_elsewhere(
    name: &str,
) -> (
    EventLoop,
    std::sync::mpsc::Sender<()>,
    thread::JoinHandle<()>,
) {
    let lp = vloop();
    let remote = lp.clone();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (release, wait) = std::sync::mpsc::channel::<()>();
    let h = thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            remote.call_later(100.0, || ()).unwrap();
            ready_tx.send(()).unwrap();
            let _ = wait.recv();
        })
        .unwrap();
    recv_or_hang(&ready_rx, "the other thread bound the loop");
    (lp, release, h)
}

// --- Closed loop ---------------------------------------------------------

/// Rules: LIFE-8
#[test]
fn misuse_call_soon_on_a_closed_loop() {
    assert_error(
        &closed_loop().call_soon(|| ()).unwrap_err(),
        "RuntimeError",
        CLOSED,
    );
}

/// Rules: LIFE-8
#[test]
fn misuse_call_later_and_call_at_on_a_closed_loop() {
    let lp = closed_loop();
    assert_error(
        &lp.call_later(1.0, || ()).unwrap_err(),
        "RuntimeError",
        CLOSED,
    );
    assert_error(&lp.call_at(1.0, || ()).unwrap_err(), "RuntimeError", CLOSED);
}

/// Rules: XTHREAD-1, LIFE-8
#[test]
fn misuse_call_soon_threadsafe_on_a_closed_loop() {
    let lp = closed_loop();
    let err = thread::spawn(move || lp.call_soon_threadsafe(|| ()).unwrap_err())
        .join()
        .unwrap();
    assert_error(&err, "RuntimeError", CLOSED);
}

/// Rules: LIFE-8
#[test]
fn misuse_create_task_on_a_closed_loop_drops_the_coroutine_unpolled() {
    let lp = closed_loop();
    let polled = Rc::new(RefCell::new(false));
    let p = polled.clone();
    let err = lp
        .create_task(async move {
            *p.borrow_mut() = true;
            Ok(1)
        })
        .unwrap_err();
    assert_error(&err, "RuntimeError", CLOSED);
    assert!(!*polled.borrow());
    assert_error(
        &lp.ensure_future(async { Ok(1) }).unwrap_err(),
        "RuntimeError",
        CLOSED,
    );
}

/// Rules: LIFE-8
#[test]
fn misuse_run_forever_on_a_closed_loop() {
    assert_error(
        &closed_loop().run_forever().unwrap_err(),
        "RuntimeError",
        CLOSED,
    );
}

/// Rules: LIFE-8, LIFE-2
#[test]
fn misuse_run_until_complete_on_a_closed_loop_before_the_argument() {
    let lp = closed_loop();
    let other = vloop();
    // Even a future of another loop gets the closed error first.
    let err = lp
        .run_until_complete(other.create_future::<i32>())
        .unwrap_err();
    assert_error(&err, "RuntimeError", CLOSED);
}

/// Rules: XTHREAD-6
#[test]
fn misuse_run_coroutine_threadsafe_on_a_closed_loop() {
    let lp = closed_loop();
    let err = loopspec::run_coroutine_threadsafe(|| async { Ok(1) }, &lp).unwrap_err();
    assert_error(&err, "RuntimeError", CLOSED);
}

/// Rules: EXEC-1
#[test]
fn misuse_run_in_executor_on_a_closed_loop() {
    let err = closed_loop().run_in_executor(None, || Ok(1)).unwrap_err();
    assert_error(&err, "RuntimeError", CLOSED);
}

/// Rules: LIFE-9
#[test]
fn misuse_completing_a_future_with_callbacks_on_a_closed_loop() {
    let lp = vloop();
    let fut: Future<i32> = lp.create_future();
    fut.add_done_callback(Rc::new(|_: &Future<i32>| ()))
        .unwrap();
    lp.close().unwrap();
    assert_error(&fut.set_result(1).unwrap_err(), "RuntimeError", CLOSED);
    assert_eq!(fut.result(), Ok(1), "done all the same");
}

// --- Running loops -------------------------------------------------------

/// Rules: LIFE-7
#[test]
fn misuse_close_of_a_running_loop() {
    let lp = vloop();
    let seen = Rc::new(RefCell::new(None));
    let (l2, s) = (lp.clone(), seen.clone());
    lp.call_soon(move || *s.borrow_mut() = Some(l2.close()))
        .unwrap();
    run_once(&lp);
    let err = seen.borrow_mut().take().unwrap().unwrap_err();
    assert_error(&err, "RuntimeError", "Cannot close a running event loop");
    assert!(!lp.is_closed());
}

/// Rules: LIFE-5
#[test]
fn misuse_running_a_loop_that_is_already_running() {
    let lp = vloop();
    let seen = Rc::new(RefCell::new(None));
    let (l2, s) = (lp.clone(), seen.clone());
    lp.call_soon(move || *s.borrow_mut() = Some(l2.run_forever()))
        .unwrap();
    run_once(&lp);
    let err = seen.borrow_mut().take().unwrap().unwrap_err();
    assert_error(&err, "RuntimeError", "This event loop is already running");
}

/// Rules: LIFE-5
#[test]
fn misuse_running_another_loop_inside_a_running_loop() {
    let lp = vloop();
    let other = vloop();
    let seen = Rc::new(RefCell::new(None));
    let s = seen.clone();
    lp.call_soon(move || *s.borrow_mut() = Some(other.run_until_complete(async { Ok(1) })))
        .unwrap();
    run_once(&lp);
    let err = seen.borrow_mut().take().unwrap().unwrap_err();
    assert_error(
        &err,
        "RuntimeError",
        "Cannot run the event loop while another loop is running",
    );
}

/// Rules: POLICY-13
#[test]
fn misuse_run_inside_a_running_loop() {
    let lp = vloop();
    let err = lp
        .run_until_complete(async { Ok(loopspec::run(async { Ok(1) })) })
        .unwrap()
        .unwrap_err();
    assert_error(
        &err,
        "RuntimeError",
        "asyncio.run() cannot be called from a running event loop",
    );
}

/// Rules: STOP-7
#[test]
fn misuse_stopping_before_the_future_is_done() {
    let lp = vloop();
    let fut: Future<i32> = lp.create_future();
    lp.stop();
    let err = lp.run_until_complete(fut.clone()).unwrap_err();
    assert_error(
        &err,
        "RuntimeError",
        "Event loop stopped before Future completed.",
    );
    assert!(!fut.done());
}

// --- Wrong loop ----------------------------------------------------------

/// Rules: LIFE-2
#[test]
fn misuse_run_until_complete_of_a_future_of_another_loop() {
    let lp = vloop();
    let other = vloop();
    let err = lp
        .run_until_complete(other.create_future::<i32>())
        .unwrap_err();
    assert_error(&err, "ValueError", DIFFERENT_LOOP);
}

/// Rules: TASK-2
#[test]
fn misuse_ensure_future_of_a_future_of_another_loop() {
    let lp = vloop();
    let other = vloop();
    let err = lp.ensure_future(other.create_future::<i32>()).unwrap_err();
    assert_error(&err, "ValueError", DIFFERENT_LOOP);
}

/// Rules: GATHER-3
#[test]
fn misuse_gather_of_futures_of_two_loops() {
    let (a, b) = (vloop(), vloop());
    let err =
        loopspec::gather([a.create_future::<i32>(), b.create_future::<i32>()], false).unwrap_err();
    assert_error(&err, "ValueError", DIFFERENT_LOOP);
}

/// Rules: FUT-8
#[test]
fn misuse_awaiting_a_future_of_another_loop() {
    let lp = vloop();
    let other = vloop();
    let foreign = other.create_future::<i32>();
    let t = lp
        .create_task(async move {
            let v = foreign.await?;
            Ok(v)
        })
        .unwrap();
    let err = lp.run_until_complete(t).unwrap_err();
    assert_error(
        &err,
        "RuntimeError",
        "Task <Task pending name='Task-1'> got Future <Future pending> attached to a different loop",
    );
}

// --- Wrong thread --------------------------------------------------------

/// Rules: THREAD-1
#[test]
fn misuse_loop_bound_calls_from_a_thread_that_is_not_the_home() {
    let (lp, release, h) = loop_homed_elsewhere("home-a");
    assert_error(
        &lp.call_soon(|| ()).unwrap_err(),
        "RuntimeError",
        NOT_THREAD_SAFE,
    );
    assert_error(
        &lp.call_later(1.0, || ()).unwrap_err(),
        "RuntimeError",
        NOT_THREAD_SAFE,
    );
    assert_error(
        &lp.create_task(async { Ok(1) }).unwrap_err(),
        "RuntimeError",
        NOT_THREAD_SAFE,
    );
    drop(release);
    h.join().unwrap();
    lp.close().unwrap();
}

/// Rules: THREAD-1, CHAIN-1, EXEC-1
#[test]
fn misuse_wrap_future_and_run_in_executor_off_the_home_thread() {
    let (lp, release, h) = loop_homed_elsewhere("home-b");
    let cf: ConcurrentFuture<i32> = ConcurrentFuture::new();
    assert_error(
        &loopspec::wrap_future(&cf, &lp).unwrap_err(),
        "RuntimeError",
        NOT_THREAD_SAFE,
    );
    assert_error(
        &lp.run_in_executor(None, || Ok(1)).unwrap_err(),
        "RuntimeError",
        NOT_THREAD_SAFE,
    );
    drop(release);
    h.join().unwrap();
    lp.close().unwrap();
}

/// Rules: THREAD-1
#[test]
fn misuse_completing_a_future_with_callbacks_off_the_home_thread() {
    let lp = vloop();
    lp.call_later(100.0, || ()).unwrap(); // this thread is the home
    let remote = lp.clone();
    // A future is not Send: make one on the other thread, for this loop.
    let (err, done) = thread::spawn(move || {
        let f: Future<i32> = remote.create_future();
        f.add_done_callback(Rc::new(|_: &Future<i32>| ())).unwrap();
        (f.set_result(1).unwrap_err(), f.done())
    })
    .join()
    .unwrap();
    assert_error(&err, "RuntimeError", NOT_THREAD_SAFE);
    assert!(done, "the future is done all the same");
    lp.close().unwrap();
}

/// Rules: THREAD-2
#[test]
fn misuse_running_a_loop_away_from_its_work() {
    let (lp, release, h) = loop_homed_elsewhere("home-c");
    let msg = "Event loop is bound to thread 'home-c', which holds its loop-bound callbacks, timers or tasks";
    assert_error(&lp.run_forever().unwrap_err(), "RuntimeError", msg);
    assert_error(
        &lp.run_until_complete(async { Ok(1) }).unwrap_err(),
        "RuntimeError",
        msg,
    );
    drop(release);
    h.join().unwrap();
    lp.close().unwrap();
}

/// Rules: XTHREAD-9
#[test]
fn misuse_blocking_result_on_the_loops_own_thread() {
    let lp = vloop();
    let cf = loopspec::run_coroutine_threadsafe(|| async { Ok(1) }, &lp).unwrap();
    let c = cf.clone();
    let err = lp
        .run_until_complete(async move { Ok(c.result(None)) })
        .unwrap()
        .unwrap_err();
    assert_error(
        &err,
        "RuntimeError",
        "ConcurrentFuture.result() called from the thread of the loop that completes it would deadlock",
    );
    lp.close().unwrap();
}

// --- Futures in the wrong state ------------------------------------------

/// Rules: FUT-3
#[test]
fn misuse_completing_a_done_future() {
    let lp = vloop();
    let fut: Future<i32> = lp.create_future();
    fut.set_result(1).unwrap();
    assert_error(
        &fut.set_result(2).unwrap_err(),
        "InvalidStateError",
        "invalid state",
    );
    assert_error(
        &fut.set_exception(Error::raise("ValueError", "x"))
            .unwrap_err(),
        "InvalidStateError",
        "invalid state",
    );
    let cancelled: Future<i32> = lp.create_future();
    cancelled.cancel();
    assert_error(
        &cancelled.set_result(1).unwrap_err(),
        "InvalidStateError",
        "invalid state",
    );
    assert_eq!(fut.result(), Ok(1));
}

/// Rules: FUT-2
#[test]
fn misuse_reading_a_pending_future() {
    let lp = vloop();
    let fut: Future<i32> = lp.create_future();
    assert_error(
        &fut.result().unwrap_err(),
        "InvalidStateError",
        "Result is not set.",
    );
    assert_error(
        &fut.exception().unwrap_err(),
        "InvalidStateError",
        "Exception is not set.",
    );
}

/// Rules: TASK-3
#[test]
fn misuse_completing_a_task_by_hand() {
    let lp = vloop();
    let t: Task<i32> = lp.create_task(async { Ok(1) }).unwrap();
    assert_error(
        &t.set_result(2).unwrap_err(),
        "RuntimeError",
        "Task does not support set_result operation",
    );
    assert_error(
        &t.set_exception(Error::raise("ValueError", "x"))
            .unwrap_err(),
        "RuntimeError",
        "Task does not support set_exception operation",
    );
    assert_eq!(lp.run_until_complete(t).unwrap(), 1);
}

/// Rules: TASK-2
#[test]
fn misuse_create_task_of_a_future() {
    let lp = vloop();
    let err = lp.create_task(lp.create_future::<i32>()).unwrap_err();
    assert_error(
        &err,
        "TypeError",
        "a coroutine was expected, got <Future pending>",
    );
}

/// Rules: TASK-7
#[test]
fn misuse_a_task_awaiting_itself() {
    let lp = vloop();
    let slot: Rc<RefCell<Option<Task<i32>>>> = Rc::new(RefCell::new(None));
    let s = slot.clone();
    let t = lp
        .create_task(async move {
            let me = s.borrow_mut().take().unwrap();
            me.await
        })
        .unwrap();
    *slot.borrow_mut() = Some(t.clone());
    let err = lp.run_until_complete(t).unwrap_err();
    assert_error(
        &err,
        "RuntimeError",
        "Task cannot await on itself: <Task pending name='Task-1'>",
    );
}

/// Rules: CONC-5
#[test]
fn misuse_completing_a_done_concurrent_future() {
    let cf: ConcurrentFuture<i32> = ConcurrentFuture::new();
    cf.set_result(1).unwrap();
    let err = cf.set_result(2).unwrap_err();
    assert_eq!(err.python_type(), "InvalidStateError");
    let msg = err.to_string();
    assert!(
        msg.starts_with("FINISHED: <Future at 0x")
            && msg.ends_with(" state=finished returned i32>"),
        "{msg}"
    );
    let cancelled: ConcurrentFuture<i32> = ConcurrentFuture::new();
    cancelled.cancel();
    let msg = cancelled
        .set_exception(Error::raise("ValueError", "x"))
        .unwrap_err()
        .to_string();
    assert!(
        msg.starts_with("CANCELLED: <Future at 0x") && msg.ends_with(" state=cancelled>"),
        "{msg}"
    );
}

/// Rules: CONC-4
#[test]
fn misuse_starting_a_concurrent_future_twice() {
    let cf: ConcurrentFuture<i32> = ConcurrentFuture::new();
    assert_eq!(cf.set_running_or_notify_cancel(), Ok(true));
    assert_error(
        &cf.set_running_or_notify_cancel().unwrap_err(),
        "RuntimeError",
        "Future in unexpected state",
    );
}

/// Rules: EXEC-4
#[test]
fn misuse_submitting_to_a_thread_pool_after_shutdown() {
    let pool = ThreadPool::new(1, "misuse");
    pool.shutdown(true);
    let err = pool.submit(Box::new(|| ())).unwrap_err();
    assert_error(
        &err,
        "RuntimeError",
        "cannot schedule new futures after shutdown",
    );
    let lp = vloop();
    let err = lp.run_in_executor(Some(&pool), || Ok(1)).unwrap_err();
    assert_error(
        &err,
        "RuntimeError",
        "cannot schedule new futures after shutdown",
    );
    lp.close().unwrap();
}

// --- No loop -------------------------------------------------------------

/// Rules: POLICY-4, POLICY-9
#[test]
fn misuse_get_event_loop_in_a_thread_without_one() {
    let err = thread::Builder::new()
        .name("no-loop".into())
        .spawn(|| loopspec::get_event_loop().unwrap_err())
        .unwrap()
        .join()
        .unwrap();
    assert_error(
        &err,
        "RuntimeError",
        "There is no current event loop in thread 'no-loop'.",
    );
}

/// Rules: POLICY-5
#[test]
fn misuse_get_event_loop_in_the_main_thread_after_set_event_loop_none() {
    let err = common::in_thread("pretend-main", || {
        let policy = Policy::new(Profile::Py311).with_main_thread(thread::current().id());
        policy.set_event_loop(None);
        policy.get_event_loop().unwrap_err()
    });
    assert_error(
        &err,
        "RuntimeError",
        "There is no current event loop in thread 'MainThread'.",
    );
}

/// Rules: POLICY-3
#[test]
fn misuse_get_event_loop_in_the_main_thread_with_the_314_profile() {
    let err = common::in_thread("pretend-main", || {
        let policy = Policy::new(Profile::Py314).with_main_thread(thread::current().id());
        policy.get_event_loop().unwrap_err()
    });
    assert_error(
        &err,
        "RuntimeError",
        "There is no current event loop in thread 'MainThread'.",
    );
}

/// Rules: POLICY-10, POLICY-11, TASK-13
#[test]
fn misuse_running_loop_functions_without_a_running_loop() {
    let msg = "no running event loop";
    assert_error(
        &loopspec::get_running_loop().unwrap_err(),
        "RuntimeError",
        msg,
    );
    assert_error(
        &loopspec::create_task(async { Ok(1) }).unwrap_err(),
        "RuntimeError",
        msg,
    );
    assert_error(&loopspec::current_task().unwrap_err(), "RuntimeError", msg);
    assert_error(&loopspec::all_tasks().unwrap_err(), "RuntimeError", msg);
}

/// Rules: TASK-12
#[test]
fn misuse_sleep_outside_a_running_loop() {
    let mut s = pin!(loopspec::sleep(1.0));
    let mut cx = Context::from_waker(Waker::noop());
    match s.as_mut().poll(&mut cx) {
        Poll::Ready(r) => assert_error(&r.unwrap_err(), "RuntimeError", "no running event loop"),
        Poll::Pending => panic!("sleep outside a loop is pending"),
    }
}

/// Rules: GATHER-2, POLICY-11
#[test]
fn misuse_gather_of_nothing_without_a_current_loop() {
    let err = thread::Builder::new()
        .name("no-loop-gather".into())
        .spawn(|| loopspec::gather(Vec::<Future<i32>>::new(), false).unwrap_err())
        .unwrap()
        .join()
        .unwrap();
    assert_error(
        &err,
        "RuntimeError",
        "There is no current event loop in thread 'no-loop-gather'.",
    );
}

// --- Bad arguments -------------------------------------------------------

/// Rules: SCHED-6
#[test]
fn misuse_nan_delays_and_deadlines() {
    let lp = vloop();
    let msg = "delay must not be NaN";
    assert_error(
        &lp.call_later(f64::NAN, || ()).unwrap_err(),
        "ValueError",
        msg,
    );
    assert_error(&lp.call_at(f64::NAN, || ()).unwrap_err(), "ValueError", msg);
    let err = lp
        .run_until_complete(loopspec::sleep(f64::NAN))
        .unwrap_err();
    assert_error(&err, "ValueError", msg);
}

/// Rules: WAIT-1
#[test]
fn misuse_wait_of_nothing() {
    let lp = vloop();
    let err = lp
        .run_until_complete(async {
            loopspec::wait(Vec::<Future<i32>>::new(), None, Default::default())
                .await
                .map(drop)
        })
        .unwrap_err();
    assert_error(&err, "ValueError", "Set of Tasks/Futures is empty.");
}

/// Rules: WAITFOR-1
#[test]
fn misuse_wait_for_outside_a_task() {
    let lp = vloop();
    let seen = Rc::new(RefCell::new(None));
    let s = seen.clone();
    lp.call_soon(move || {
        let mut w = pin!(loopspec::wait_for(async { Ok(5) }, Some(1.0)));
        let mut cx = Context::from_waker(Waker::noop());
        if let Poll::Ready(r) = w.as_mut().poll(&mut cx) {
            *s.borrow_mut() = Some(r);
        }
    })
    .unwrap();
    run_once(&lp);
    let err = seen.borrow_mut().take().unwrap().unwrap_err();
    assert_error(&err, "RuntimeError", "Timeout should be used inside a task");
}

// --- Misuses that are not errors -----------------------------------------

/// Rules: STOP-1, LIFE-7, SCHED-3, FUT-4
#[test]
fn misuse_that_is_allowed_stop_close_and_cancel_twice() {
    let lp = vloop();
    let log = Log::new();
    let h = lp.call_soon(log.cb("ran")).unwrap();
    run_once(&lp);
    h.cancel(); // after the run: nothing happens, nothing raised
    assert!(h.cancelled());
    lp.stop();
    lp.stop();
    lp.close().unwrap();
    lp.close().unwrap();
    lp.stop(); // on a closed loop: not an error
    assert_eq!(log.take(), ["ran"]);
    let fut: Future<i32> = vloop().create_future();
    assert!(fut.cancel());
    assert!(!fut.cancel(), "FUT-4: a second cancel returns false");
}

/// Rules: RUNNER-3
#[test]
fn misuse_runner_run_inside_a_running_loop() {
    let lp = vloop();
    let err = lp
        .run_until_complete(async {
            let mut runner = loopspec::Runner::with_loop_factory(vloop);
            Ok(runner.run(async { Ok(1) }))
        })
        .unwrap()
        .unwrap_err();
    assert_error(
        &err,
        "RuntimeError",
        "Runner.run() cannot be called from a running event loop",
    );
}

/// Rules: RUNNER-3, RUNNER-4
#[test]
fn misuse_using_a_closed_runner() {
    let mut runner = loopspec::Runner::with_loop_factory(vloop);
    runner.get_loop().unwrap();
    runner.close();
    assert_error(
        &runner.run(async { Ok(1) }).unwrap_err(),
        "RuntimeError",
        "Runner is closed",
    );
    assert_error(
        &runner.get_loop().unwrap_err(),
        "RuntimeError",
        "Runner is closed",
    );
}
