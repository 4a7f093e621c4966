//! Eager tasks and threads (SPEC.md EAGER-4). Determinism: the other thread
//! is joined, or its callback's effect awaited, before asserting.

use common::{Log, profile_loop};
use loopspec::{Error, Profile, TaskFactory, get_running_loop};
use std::thread;

/// An eager task created by a `call_soon_threadsafe` callback that another
/// thread submitted runs its first step at once, on the loop's thread;
/// `create_task` called directly from another thread while the loop runs is
/// refused (THREAD-1; CPython 3.14+ refuses too, 3.12 and 3.13 ran the first
/// step in the calling thread) and the coroutine is dropped unpolled.
/// Rules: EAGER-4, THREAD-1
#[test]
fn eager_tasks_from_other_threads() {
    let lp = profile_loop(Profile::Py314);
    lp.set_task_factory(TaskFactory::Eager);
    let log = Log::new();
    let l = log.clone();
    let out = lp.run_until_complete(async move {
        let lp = get_running_loop()?;
        let done = lp.create_future::<bool>();
        let (remote, d, l2) = (lp.clone(), done.clone(), l.clone());
        thread::Builder::new()
            .name("other".into())
            .spawn(move || {
                let target = remote.clone();
                remote
                    .call_soon_threadsafe(move || {
                        let l3 = l2.clone();
                        let t = target
                            .create_task(async move {
                                let me = thread::current().name().unwrap_or("?").to_string();
                                l3.push(format!("body on {me}"));
                                Ok(())
                            })
                            .unwrap();
                        let _ = d.set_result(t.done());
                    })
                    .unwrap();
            })
            .unwrap()
            .join()
            .unwrap();
        let eager_done = done.await?;
        l.push(format!("done in the callback: {eager_done}"));

        let (remote, l2) = (lp.clone(), l.clone());
        let refused = thread::spawn(move || {
            remote
                .create_task(async move {
                    l2.push("must not run");
                    Ok(())
                })
                .map(|_| ())
        })
        .join()
        .unwrap();
        l.push(format!("direct: {refused:?}"));
        loopspec::yield_now().await?;
        Ok(())
    });
    assert_eq!(out, Ok(()));
    let loop_thread = thread::current().name().unwrap_or("?").to_string();
    assert_eq!(
        log.take(),
        [
            format!("body on {loop_thread}"),
            "done in the callback: true".to_string(),
            format!("direct: {:?}", Err::<(), _>(Error::NonThreadSafeCall)),
        ]
    );
    lp.close().unwrap();
}
