//! EAGER rules of SPEC.md: the task factory and eager tasks. The expected
//! logs are what CPython 3.14 and 3.15 gave for the same program (3.12 and
//! 3.13 differ only in names, EAGER-2).

use common::{Log, Scene, assert_py_error, value_error};
use loopspec::{TaskFactory, get_running_loop};

fn current_name() -> String {
    loopspec::current_task()
        .unwrap()
        .map_or("none".into(), |t| t.get_name())
}

/// `set_task_factory` / `get_task_factory`: `Default` (asyncio's `None`)
/// until set; `Eager` is `eager_task_factory`; setting `Default` again
/// restores TASK-1.
/// Rules: EAGER-1
#[test]
fn task_factory_is_default_until_set() {
    let s = Scene::new();
    assert_eq!(s.lp.get_task_factory(), TaskFactory::Default);
    s.lp.set_task_factory(TaskFactory::Eager);
    assert_eq!(s.lp.get_task_factory(), TaskFactory::Eager);
    s.lp.set_task_factory(TaskFactory::Default);
    let log = s.log.clone();
    let out = s.run_until_complete(async move {
        let lp = get_running_loop()?;
        let l = log.clone();
        let t = lp.create_task(async move {
            l.push("body");
            Ok(1)
        })?;
        log.push("created");
        assert!(!t.done());
        t.await
    });
    assert_eq!(out, Ok(1));
    assert_eq!(s.take(), ["created", "body"], "TASK-1 again");
    s.close().unwrap();
}

/// With the eager factory, `create_task` on the thread running the loop runs
/// the task's first step before it returns, as the current task: a task
/// that finishes there is done at once, never scheduled and not in
/// `all_tasks`; one that suspends is an ordinary task from then on, after
/// callbacks queued before it; an error in the eager step is the task's
/// exception. The caller is the current task again afterwards.
/// Rules: EAGER-2
#[test]
fn eager_task_runs_its_first_step_inside_create_task() {
    let s = Scene::new();
    s.lp.set_task_factory(TaskFactory::Eager);
    let log = s.log.clone();
    let out = s.run_until_complete(async move {
        let lp = get_running_loop()?;
        let l = log.clone();
        lp.call_soon(move || l.push("earlier callback"))?;
        let l = log.clone();
        let quick = lp.create_task_named(
            async move {
                l.push(format!("q body current={}", current_name()));
                Ok("q")
            },
            "qq",
        )?;
        let in_all = lp.all_tasks()?.iter().any(|t| t.is(&quick));
        log.push(format!("q done={} in_all={in_all}", quick.done()));
        assert_eq!(quick.result(), Ok("q"));
        let l = log.clone();
        let slow = lp.create_task(async move {
            l.push(format!("s step1 current={}", current_name()));
            loopspec::yield_now().await?;
            l.push("s step2");
            Ok("s")
        })?;
        let in_all = lp.all_tasks()?.iter().any(|t| t.is(&slow));
        log.push(format!(
            "s done={} in_all={in_all} current={}",
            slow.done(),
            current_name()
        ));
        let l = log.clone();
        let boom = lp.create_task(async move {
            l.push("boom body");
            Err::<(), _>(value_error("eager boom"))
        })?;
        log.push(format!("boom done={}", boom.done()));
        assert_eq!(boom.exception(), Ok(Some(value_error("eager boom"))));
        slow.await
    });
    assert_eq!(out, Ok("s"));
    assert_eq!(
        s.take(),
        [
            "q body current=qq",
            "q done=true in_all=false",
            "s step1 current=Task-2",
            "s done=false in_all=true current=Task-1",
            "boom body",
            "boom done=true",
            "earlier callback",
            "s step2",
        ]
    );
    s.close().unwrap();
}

/// A task created with the eager factory on a loop that is not running is
/// not eager: its first step waits for the loop's next iteration (TASK-1),
/// as CPython checks `loop.is_running()`. A closed loop refuses it as
/// always, without polling it.
/// Rules: EAGER-2, LIFE-8
#[test]
fn eager_factory_on_a_loop_that_is_not_running_schedules() {
    let s = Scene::new();
    s.lp.set_task_factory(TaskFactory::Eager);
    let log = Log::new();
    let l = log.clone();
    let t =
        s.lp.create_task(async move {
            l.push("body");
            Ok(3)
        })
        .unwrap();
    assert!(!t.done());
    assert!(log.take().is_empty());
    assert_eq!(s.run_until_complete(t), Ok(3));
    assert_eq!(log.take(), ["body"]);
    s.close().unwrap();
    let err = s.lp.create_task(async { Ok(()) }).unwrap_err();
    assert_py_error(&err, "RuntimeError", "Event loop is closed");
}

/// An eager step may create an eager task in turn: the inner task's first
/// step runs inside the outer one's, each the current task during its own
/// step, all before a callback queued earlier (CPython 3.14/3.15: this log;
/// 3.12/3.13 show `Task-N` names, EAGER-2).
/// Rules: EAGER-3
#[test]
fn an_eager_step_can_start_another_eager_task() {
    let s = Scene::new();
    s.lp.set_task_factory(TaskFactory::Eager);
    let log = s.log.clone();
    s.run_until_complete(async move {
        let lp = get_running_loop()?;
        let l = log.clone();
        lp.call_soon(move || l.push("queued before"))?;
        let (l, lp2) = (log.clone(), lp.clone());
        let outer = lp.create_task_named(
            async move {
                l.push("outer start");
                let l2 = l.clone();
                let inner = lp2.create_task_named(
                    async move {
                        l2.push(format!("inner {}", current_name()));
                        Ok(1)
                    },
                    "in",
                )?;
                l.push(format!(
                    "outer after: inner done={} current={}",
                    inner.done(),
                    current_name()
                ));
                Ok(2)
            },
            "out",
        )?;
        log.push(format!("main: outer done={}", outer.done()));
        loopspec::yield_now().await
    })
    .unwrap();
    assert_eq!(
        s.take(),
        [
            "outer start",
            "inner in",
            "outer after: inner done=true current=out",
            "main: outer done=true",
            "queued before",
        ]
    );
    s.close().unwrap();
}

/// `create_task_eager` (`Task(coro, loop=loop, eager_start=True)`): eager
/// under the default factory when the calling thread runs the loop — a task
/// that finishes there is done at once and not in `all_tasks`, one that
/// suspends is listed and goes on — and an ordinary task on a loop that is
/// not running (what CPython 3.12–3.15 gave for the same program).
/// Rules: EAGER-1, EAGER-2
#[test]
fn create_task_eager_starts_eagerly_whatever_the_factory() {
    let s = Scene::new();
    assert_eq!(s.lp.get_task_factory(), TaskFactory::Default);
    let l = s.log.clone();
    let idle =
        s.lp.create_task_eager(async move {
            l.push(format!("start idle current={}", current_name()));
            loopspec::yield_now().await?;
            Ok(0)
        })
        .unwrap();
    s.log.push(format!("idle loop: done={}", idle.done()));
    let log = s.log.clone();
    let out = s.run_until_complete(async move {
        let lp = get_running_loop()?;
        let l = log.clone();
        let t = lp.create_task_eager(async move {
            l.push(format!("start a current={}", current_name()));
            loopspec::yield_now().await?;
            l.push("end a");
            Ok(1)
        })?;
        let listed = |t: &loopspec::Task<i32>| {
            lp.all_tasks()
                .map(|all| all.iter().any(|r| r.is(t)))
                .unwrap_or(false)
        };
        log.push(format!(
            "after create done={} in_all={}",
            t.done(),
            listed(&t)
        ));
        let q = lp.create_task_eager(async { Ok(5) })?;
        log.push(format!("quick done={} in_all={}", q.done(), listed(&q)));
        t.await
    });
    assert_eq!(out, Ok(1));
    assert_eq!(s.run_until_complete(idle), Ok(0));
    assert_eq!(
        s.take(),
        [
            "idle loop: done=false",
            "start idle current=Task-1",
            "start a current=Task-3",
            "after create done=false in_all=true",
            "quick done=true in_all=false",
            "end a",
        ]
    );
    s.close().unwrap();
}
