//! `current_task` and `all_tasks` of a loop that another thread runs
//! (SPEC.md TASK-18). Determinism: the loop's thread is held inside a task's
//! step on a channel while the test asks; nothing sleeps.

use common::{profile_loop, recv_or_hang};
use loopspec::{Error, Profile};
use std::sync::mpsc;
use std::thread;

/// While another thread runs the loop — even inside a task's step there —
/// `lp.current_task()` is `None` on this thread (CPython would race to the
/// stepping task) and `lp.all_tasks()` is refused with THREAD-1's error
/// (CPython reads the tasks racily); once the run is over, both answer.
/// Rules: TASK-18, THREAD-1
#[test]
fn current_task_and_all_tasks_from_a_thread_that_does_not_run_the_loop() {
    let lp = profile_loop(Profile::Py313);
    let (in_step, stepping) = mpsc::channel::<()>();
    let (release, held) = mpsc::channel::<()>();
    let task = lp
        .create_task_named(
            async move {
                in_step.send(()).unwrap();
                recv_or_hang(&held, "the test releases the step");
                Ok(1)
            },
            "held",
        )
        .unwrap();
    let pending = lp
        .create_task_named(loopspec::sleep(100.0), "pending")
        .unwrap();
    let runner = lp.clone();
    let t = task.clone();
    let run = thread::spawn(move || runner.run_until_complete(t));
    recv_or_hang(&stepping, "the task's step starts");
    assert!(lp.is_running());
    assert!(lp.current_task().is_none());
    let err = lp.all_tasks().unwrap_err();
    assert_eq!(err, Error::NonThreadSafeCall);
    release.send(()).unwrap();
    assert_eq!(run.join().unwrap(), Ok(1));
    assert!(lp.current_task().is_none());
    let names: Vec<String> = lp
        .all_tasks()
        .unwrap()
        .iter()
        .map(|t| t.get_name())
        .collect();
    assert_eq!(names, ["pending"]);
    pending.cancel();
    let _ = lp.run_until_complete(pending);
    lp.close().unwrap();
}
