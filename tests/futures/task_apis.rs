//! The small task APIs of SPEC.md's TASK family: `create_task(name=)`,
//! `current_task(loop)` and `all_tasks(loop)` as loop methods, and
//! `sleep(delay, result)`. Where a case quotes CPython, it is what CPython
//! 3.10–3.15 gave for the same program.

use common::{Scene, assert_py_error, capture_exceptions, vloop};
use loopspec::{Error, sleep, sleep_with_result};

/// `create_task_named(coro, name)` names the task before anything sees it;
/// it takes no number from the counter of default names (CPython, in
/// `run()`: the main task `Task-1`, a task named "named", then an unnamed
/// one is `Task-2`).
/// Rules: TASK-17, TASK-9
#[test]
fn create_task_named_names_the_task() {
    let s = Scene::new();
    let l = s.lp.clone();
    let named =
        s.lp.create_task_named(
            async move { Ok(l.current_task().unwrap().get_name()) },
            "named",
        )
        .unwrap();
    assert_eq!(named.get_name(), "named");
    assert_eq!(format!("{named:?}"), "<Task pending name='named'>");
    let unnamed = s.lp.create_task(async { Ok(String::new()) }).unwrap();
    assert_eq!(unnamed.get_name(), "Task-1");
    assert_eq!(s.run_until_complete(named), Ok("named".to_string()));
    s.run_until_complete(unnamed).unwrap();
    s.close().unwrap();
    let closed = vloop();
    closed.close().unwrap();
    let err = closed.create_task_named(async { Ok(()) }, "x").unwrap_err();
    assert_eq!(err, Error::Closed);
}

/// `lp.current_task()` is the task of this loop whose step runs on this
/// thread: `None` outside a step, in a plain callback, on a loop that is not
/// running, and for another loop's step; it never fails (CPython's
/// `current_task(loop)` with a loop given does not either).
/// `lp.all_tasks()` lists the unfinished tasks of the loop, running or not,
/// in creation order; none once they are done or the loop is closed.
/// Rules: TASK-18, TASK-13
#[test]
fn loop_current_task_and_all_tasks() {
    let s = Scene::new();
    let other = vloop();
    assert!(s.lp.current_task().is_none(), "not running");
    let (l, o) = (s.lp.clone(), other.clone());
    let probe =
        s.lp.create_task_named(
            async move {
                let me = l.current_task().map(|t| t.get_name());
                let theirs = o.current_task().map(|t| t.get_name());
                let all: Vec<String> = l.all_tasks()?.iter().map(|t| t.get_name()).collect();
                Ok((me, theirs, all))
            },
            "probe",
        )
        .unwrap();
    let nap = s.lp.create_task_named(sleep(5.0), "nap").unwrap();
    let names: Vec<String> =
        s.lp.all_tasks()
            .unwrap()
            .iter()
            .map(|t| t.get_name())
            .collect();
    assert_eq!(names, ["probe", "nap"], "an idle loop's tasks");
    let l = s.lp.clone();
    s.lp.call_soon(move || assert!(l.current_task().is_none(), "in a plain callback"))
        .unwrap();
    let got = s.run_until_complete(probe).unwrap();
    assert_eq!(
        got,
        (
            Some("probe".into()),
            None,
            vec!["probe".into(), "nap".into()]
        )
    );
    s.run_until_complete(nap).unwrap();
    assert!(s.lp.all_tasks().unwrap().is_empty());
    let reports = capture_exceptions(&s);
    let left = s.lp.create_task(sleep(1.0)).unwrap();
    s.close().unwrap();
    assert!(!left.done());
    assert_eq!(
        reports.messages(),
        ["Task was destroyed but it is pending!"]
    );
    assert!(s.lp.all_tasks().unwrap().is_empty(), "closed: dropped");
    other.close().unwrap();
}

/// `sleep_with_result(delay, result)` returns `result` after the sleep, a
/// zero delay included (CPython: `await sleep(0, "zero")` is `"zero"`);
/// cancelled, it raises `CancelledError`; with no running loop, a positive
/// delay fails as `sleep` does.
/// Rules: TASK-19, TASK-12
#[test]
fn sleep_with_result_returns_the_result() {
    let s = Scene::new();
    assert_eq!(
        s.run_until_complete(sleep_with_result(0.0, "zero")),
        Ok("zero")
    );
    assert_eq!(
        s.run_until_complete(sleep_with_result(2.0, vec![1])),
        Ok(vec![1])
    );
    assert_eq!(s.lp.time(), 2.0);
    let t = s.lp.create_task(sleep_with_result(9.0, 7)).unwrap();
    s.once();
    t.cancel();
    let err = s.run_until_complete(t).unwrap_err();
    assert_py_error(&err, "CancelledError", "");
    s.close().unwrap();
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let mut outside = Box::pin(sleep_with_result(1.0, 1));
    match std::future::Future::poll(outside.as_mut(), &mut cx) {
        std::task::Poll::Ready(Err(e)) => {
            assert_py_error(&e, "RuntimeError", "no running event loop")
        }
        other => panic!("outside a loop: {other:?}"),
    }
}
