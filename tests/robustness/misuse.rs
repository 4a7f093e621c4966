//! Misuse: every way the public API can be used wrongly, with the error it
//! gets. SPEC.md's misuse table states, row by row, the Python class
//! (`python_type()`) and the exact message (`Display`); the test below
//! reads that table and runs each row's misuse here, so each error is
//! written down once, in SPEC.md.

use common::{in_thread, profile_loop, recv_or_hang, spec, vloop};
use loopspec::{
    ConcurrentFuture, Error, EventLoop, Executor, Future, Policy, Profile, Task, ThreadPool,
    Timeout,
};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future as _;
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::thread;

fn closed_loop() -> EventLoop {
    let lp = vloop();
    lp.close().unwrap();
    lp
}

/// Runs `misuse` with a loop whose local work lives on another thread
/// called `home`, alive until `misuse` returns; closes the loop after.
fn with_loop_homed_in(home: &str, misuse: impl FnOnce(&EventLoop) -> Vec<Error>) -> Vec<Error> {
    let lp = vloop();
    let remote = lp.clone();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (release, wait) = std::sync::mpsc::channel::<()>();
    let h = thread::Builder::new()
        .name(home.into())
        .spawn(move || {
            remote.call_later_local(100.0, || ()).unwrap();
            ready_tx.send(()).unwrap();
            let _ = wait.recv();
        })
        .unwrap();
    recv_or_hang(&ready_rx, "the other thread bound the loop");
    let errs = misuse(&lp);
    drop(release);
    h.join().unwrap();
    lp.close().unwrap();
    errs
}

/// Runs `misuse` while another thread runs the loop (parked); stops and
/// closes it after.
fn with_loop_running_elsewhere(misuse: impl FnOnce(&EventLoop) -> Vec<Error>) -> Vec<Error> {
    let lp = EventLoop::new();
    let runner = common::spawn_running(&lp, "runner");
    let errs = misuse(&lp);
    common::stop_running(&lp, runner);
    lp.close().unwrap();
    errs
}

/// What a plain callback of a running loop gets from `call`.
fn from_a_callback<T: Send + 'static>(
    call: impl FnOnce(&EventLoop) -> loopspec::Result<T> + 'static,
) -> Error {
    from_a_callback_of(&vloop(), call)
}

/// What a plain callback of `lp`, running, gets from `call`.
fn from_a_callback_of<T: Send + 'static>(
    lp: &EventLoop,
    call: impl FnOnce(&EventLoop) -> loopspec::Result<T> + 'static,
) -> Error {
    let seen = Rc::new(RefCell::new(None));
    let (l2, s) = (lp.clone(), seen.clone());
    lp.call_soon_local(move || *s.borrow_mut() = Some(call(&l2).err()))
        .unwrap();
    common::run_once(lp);
    let err = seen.borrow_mut().take().expect("the callback ran");
    err.expect("refused")
}

/// What a task of a running loop gets from `call`.
fn from_a_task<T: Send + 'static>(
    call: impl std::future::Future<Output = loopspec::Result<T>> + 'static,
) -> Error {
    let r = vloop().run_until_complete(async move { Ok(call.await.err()) });
    r.unwrap().expect("refused")
}

/// A future of `lp` with a done callback.
fn with_a_callback(lp: &EventLoop) -> Future<i32> {
    let fut = lp.create_future();
    fut.add_done_callback(Arc::new(|_: &Future<i32>| ()))
        .unwrap();
    fut
}

/// A row's number and its misuse, which returns the errors the API gave.
type Misuse = (u32, fn() -> Vec<Error>);

/// Each row's misuse, by the row's number.
fn misuses() -> Vec<Misuse> {
    vec![
        // Closed loop.
        (1, || vec![closed_loop().call_soon(|| ()).unwrap_err()]),
        (2, || {
            let lp = closed_loop();
            vec![
                lp.call_later(1.0, || ()).unwrap_err(),
                lp.call_at(1.0, || ()).unwrap_err(),
            ]
        }),
        (3, || {
            let lp = closed_loop();
            vec![
                thread::spawn(move || lp.call_soon_threadsafe(|| ()).unwrap_err())
                    .join()
                    .unwrap(),
            ]
        }),
        (4, || {
            let lp = closed_loop();
            let polled = Rc::new(RefCell::new(false));
            let p = polled.clone();
            let err = lp
                .create_task_local(async move {
                    *p.borrow_mut() = true;
                    Ok(())
                })
                .unwrap_err();
            assert!(!*polled.borrow(), "the coroutine is dropped unpolled");
            vec![err, lp.ensure_future(async { Ok(1) }).unwrap_err()]
        }),
        (5, || vec![closed_loop().run_forever().unwrap_err()]),
        // Even a future of another loop gets the closed error first.
        (6, || {
            vec![
                closed_loop()
                    .run_until_complete(vloop().create_future::<i32>())
                    .unwrap_err(),
            ]
        }),
        (7, || {
            vec![loopspec::run_coroutine_threadsafe(async { Ok(1) }, &closed_loop()).unwrap_err()]
        }),
        (8, || {
            vec![closed_loop().run_in_executor(None, || Ok(1)).unwrap_err()]
        }),
        (9, || {
            let lp = vloop();
            let fut = with_a_callback(&lp);
            lp.close().unwrap();
            let err = fut.set_result(1).unwrap_err();
            assert_eq!(fut.result(), Ok(1), "done all the same");
            vec![err]
        }),
        // Running loops.
        (10, || {
            let lp = vloop();
            let err = from_a_callback_of(&lp, |lp| lp.close());
            assert!(!lp.is_closed());
            vec![err]
        }),
        (11, || vec![from_a_callback(|lp| lp.run_forever())]),
        (12, || {
            vec![from_a_callback(|_| {
                vloop().run_until_complete(async { Ok(1) })
            })]
        }),
        (13, || {
            vec![from_a_task(async { loopspec::run(async { Ok(1) }) })]
        }),
        (14, || {
            let lp = vloop();
            let fut: Future<i32> = lp.create_future();
            lp.stop();
            let err = lp.run_until_complete(fut.clone()).unwrap_err();
            assert!(!fut.done());
            vec![err]
        }),
        // Wrong loop.
        (15, || {
            vec![
                vloop()
                    .run_until_complete(vloop().create_future::<i32>())
                    .unwrap_err(),
            ]
        }),
        (16, || {
            vec![
                vloop()
                    .ensure_future(vloop().create_future::<i32>())
                    .unwrap_err(),
            ]
        }),
        (17, || {
            vec![
                loopspec::gather(
                    [vloop().create_future::<i32>(), vloop().create_future()],
                    false,
                )
                .unwrap_err(),
            ]
        }),
        (18, || {
            let lp = vloop();
            let foreign = vloop().create_future::<i32>();
            // A coroutine awaiting it: the bare future would be refused (row 27).
            #[allow(clippy::redundant_async_block)]
            let awaits = async move { foreign.await };
            let t = lp.create_task(awaits).unwrap();
            vec![lp.run_until_complete(t).unwrap_err()]
        }),
        // Wrong thread.
        (19, || {
            with_loop_running_elsewhere(|lp| {
                let calls = [
                    lp.call_soon(|| ()).map(drop),
                    lp.call_later(1.0, || ()).map(drop),
                    lp.call_at(1.0, || ()).map(drop),
                    lp.create_task(async { Ok(1) }).map(drop),
                ];
                calls.into_iter().map(Result::unwrap_err).collect()
            })
        }),
        (20, || {
            with_loop_homed_in("home-b", |lp| {
                let calls = [
                    lp.call_soon_local(|| ()).map(drop),
                    lp.call_later_local(1.0, || ()).map(drop),
                    lp.call_at_local(1.0, || ()).map(drop),
                    lp.create_task_local(async { Ok(1) }).map(drop),
                ];
                calls.into_iter().map(Result::unwrap_err).collect()
            })
        }),
        (21, || {
            // Allowed: completing, cancelling and reading a future of a loop
            // that another thread runs; its callbacks reach the loop.
            let lp = EventLoop::new();
            let f = with_a_callback(&lp);
            let (g, c) = (lp.create_future::<i32>(), lp.create_future::<i32>());
            let runner = common::spawn_running(&lp, "runner");
            assert_eq!(f.set_result(1), Ok(()));
            assert_eq!(g.set_exception(Error::raise("ValueError", "v")), Ok(()));
            assert!(c.cancel());
            assert_eq!(f.result(), Ok(1));
            // wrap_future and run_in_executor: their futures are the loop's
            // work, kept through the inbox.
            let cf: ConcurrentFuture<i32> = ConcurrentFuture::new();
            let wrapped = loopspec::wrap_future(&cf, &lp).unwrap();
            let job = lp.run_in_executor(None, || Ok(3)).unwrap();
            cf.set_result(2).unwrap();
            let (tx, rx) = std::sync::mpsc::channel();
            for w in [wrapped, job] {
                let tx = tx.clone();
                w.add_done_callback(Arc::new(move |w: &Future<i32>| {
                    let _ = tx.send(w.result());
                }))
                .unwrap();
            }
            let mut got = [recv_or_hang(&rx, "a result"), recv_or_hang(&rx, "a result")];
            got.sort_by_key(|r| r.clone().unwrap_or(0));
            assert_eq!(got, [Ok(2), Ok(3)]);
            common::stop_running(&lp, runner);
            lp.close().unwrap();
            vec![]
        }),
        (22, || {
            with_loop_homed_in("NAME", |lp| {
                vec![
                    lp.run_forever().unwrap_err(),
                    lp.run_until_complete(async { Ok(1) }).unwrap_err(),
                ]
            })
        }),
        (23, || {
            let lp = vloop();
            let cf = loopspec::run_coroutine_threadsafe(async { Ok(1) }, &lp).unwrap();
            let c = cf.clone();
            let got = lp.run_until_complete(async move {
                Ok([c.result(None).map(drop), c.exception(None).map(drop)])
            });
            lp.close().unwrap();
            got.unwrap().into_iter().map(Result::unwrap_err).collect()
        }),
        // Futures in the wrong state.
        (24, || {
            let lp = vloop();
            let fut: Future<i32> = lp.create_future();
            fut.set_result(1).unwrap();
            let cancelled: Future<i32> = lp.create_future();
            cancelled.cancel();
            let errs = vec![
                fut.set_result(2).unwrap_err(),
                fut.set_exception(Error::raise("ValueError", "x"))
                    .unwrap_err(),
                cancelled.set_result(1).unwrap_err(),
            ];
            assert_eq!(fut.result(), Ok(1));
            errs
        }),
        (25, || {
            let fut: Future<i32> = vloop().create_future();
            vec![fut.result().unwrap_err(), fut.exception().unwrap_err()]
        }),
        (26, || {
            let lp = vloop();
            let t: Task<i32> = lp.create_task(async { Ok(1) }).unwrap();
            let errs = vec![
                t.set_result(2).unwrap_err(),
                t.set_exception(Error::raise("ValueError", "x"))
                    .unwrap_err(),
            ];
            assert_eq!(lp.run_until_complete(t), Ok(1));
            errs
        }),
        (27, || {
            let lp = vloop();
            vec![lp.create_task(lp.create_future::<i32>()).unwrap_err()]
        }),
        (28, || {
            let lp = vloop();
            let slot: Rc<RefCell<Option<Task<i32>>>> = Rc::default();
            let s = slot.clone();
            let t = lp
                .create_task_local(async move {
                    let me = s.borrow_mut().take().unwrap();
                    me.await
                })
                .unwrap();
            *slot.borrow_mut() = Some(t.clone());
            vec![lp.run_until_complete(t).unwrap_err()]
        }),
        (29, || {
            let done: ConcurrentFuture<i32> = ConcurrentFuture::new();
            done.set_result(1).unwrap();
            let cancelled: ConcurrentFuture<i32> = ConcurrentFuture::new();
            cancelled.cancel();
            let first = cancelled
                .set_exception(Error::raise("ValueError", "x"))
                .unwrap_err();
            cancelled.set_running_or_notify_cancel().unwrap();
            let notified = cancelled.set_result(1).unwrap_err();
            vec![done.set_result(2).unwrap_err(), first, notified]
        }),
        (30, || {
            let cf: ConcurrentFuture<i32> = ConcurrentFuture::new();
            assert_eq!(cf.set_running_or_notify_cancel(), Ok(true));
            vec![cf.set_running_or_notify_cancel().unwrap_err()]
        }),
        (31, || {
            let pool = ThreadPool::new(1, "misuse");
            pool.shutdown(true);
            let lp = vloop();
            let errs = vec![
                pool.submit(Box::new(|| ())).unwrap_err(),
                lp.run_in_executor(Some(&pool), || Ok(1)).unwrap_err(),
            ];
            lp.close().unwrap();
            errs
        }),
        // No loop.
        (32, || {
            vec![in_thread("NAME", || {
                loopspec::get_event_loop().unwrap_err()
            })]
        }),
        (33, || {
            vec![in_thread("pretend-main", || {
                let policy = Policy::new(Profile::Py311).with_main_thread(thread::current().id());
                policy.set_event_loop(None);
                policy.get_event_loop().unwrap_err()
            })]
        }),
        (34, || {
            vec![in_thread("pretend-main", || {
                let policy = Policy::new(Profile::Py314).with_main_thread(thread::current().id());
                policy.get_event_loop().unwrap_err()
            })]
        }),
        (35, || {
            vec![
                loopspec::get_running_loop().unwrap_err(),
                loopspec::create_task(async { Ok(1) }).unwrap_err(),
                loopspec::current_task().unwrap_err(),
                loopspec::all_tasks().unwrap_err(),
            ]
        }),
        (36, || {
            let mut s = pin!(loopspec::sleep(1.0));
            match s.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
                Poll::Ready(r) => vec![r.unwrap_err()],
                Poll::Pending => panic!("sleep outside a loop is pending"),
            }
        }),
        (37, || {
            vec![in_thread("NAME", || {
                loopspec::gather(Vec::<Future<i32>>::new(), false).unwrap_err()
            })]
        }),
        // Bad arguments.
        (38, || {
            let lp = vloop();
            vec![
                lp.call_later(f64::NAN, || ()).unwrap_err(),
                lp.call_at(f64::NAN, || ()).unwrap_err(),
                lp.run_until_complete(loopspec::sleep(f64::NAN))
                    .unwrap_err(),
            ]
        }),
        (39, || {
            let empty = loopspec::wait(Vec::<Future<i32>>::new(), None, Default::default());
            vec![
                vloop()
                    .run_until_complete(async { empty.await.map(drop) })
                    .unwrap_err(),
            ]
        }),
        (40, || {
            vec![from_a_callback_of(&profile_loop(Profile::Py312), |_| {
                let mut w = pin!(loopspec::wait_for(async { Ok(5) }, Some(1.0)));
                match w.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
                    Poll::Ready(r) => r,
                    Poll::Pending => Ok(-1),
                }
            })]
        }),
        // Misuses that are not errors.
        (41, || {
            let lp = vloop();
            let ran = Rc::new(RefCell::new(0));
            let r = ran.clone();
            let h = lp.call_soon_local(move || *r.borrow_mut() += 1).unwrap();
            common::run_once(&lp);
            h.cancel(); // after the run: nothing happens, nothing raised
            assert!(h.cancelled());
            lp.stop();
            lp.stop();
            lp.close().unwrap();
            lp.close().unwrap();
            lp.stop(); // on a closed loop: not an error
            assert_eq!(*ran.borrow(), 1);
            let fut: Future<i32> = vloop().create_future();
            assert!(
                fut.cancel() && !fut.cancel(),
                "FUT-4: a second cancel returns false"
            );
            vec![]
        }),
        (42, || {
            vec![from_a_task(async {
                let mut open = loopspec::Runner::with_loop_factory(vloop);
                let mut closed = loopspec::Runner::with_loop_factory(vloop);
                closed.close();
                open.run(async { Ok(1) }).and(closed.run(async { Ok(1) }))
            })]
        }),
        (43, || {
            let mut runner = loopspec::Runner::with_loop_factory(vloop);
            runner.get_loop().unwrap();
            runner.close();
            vec![
                runner.run(async { Ok(1) }).unwrap_err(),
                runner.get_loop().unwrap_err(),
            ]
        }),
        (44, || {
            vec![Timeout::new(Some(1.0)).reschedule(None).unwrap_err()]
        }),
        (45, || {
            let cm = Timeout::new(None);
            let c = cm.clone();
            let (during, after) = vloop()
                .run_until_complete(async move {
                    let again = c.clone();
                    let during = c
                        .enter(|_| async move { Ok(again.enter(|_| async { Ok(()) }).await) })
                        .await?;
                    let after = c.enter(|_| async { Ok(()) }).await;
                    Ok((during, after))
                })
                .unwrap();
            vec![during.unwrap_err(), after.unwrap_err()]
        }),
        (46, || {
            let lp = vloop();
            let expiring = lp
                .run_until_complete(loopspec::timeout(Some(1.0), |cm| async move {
                    let _ = loopspec::sleep(5.0).await;
                    Ok(cm.reschedule(None).unwrap_err())
                }))
                .unwrap();
            let (expired, finished) = (Timeout::new(Some(2.0)), Timeout::new(None));
            let (e, f) = (expired.clone(), finished.clone());
            let _ = lp.run_until_complete(async move {
                let _ = e.enter(|_| loopspec::sleep(5.0)).await;
                f.enter(|_| async { Ok(()) }).await
            });
            vec![
                expiring,
                expired.reschedule(None).unwrap_err(),
                finished.reschedule(Some(9.0)).unwrap_err(),
            ]
        }),
        (47, || {
            let by_hand = |fut: &mut std::pin::Pin<
                &mut dyn std::future::Future<Output = loopspec::Result<()>>,
            >| {
                match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
                    Poll::Ready(r) => r,
                    Poll::Pending => Ok(()),
                }
            };
            vec![
                from_a_callback(move |_| {
                    let mut a = pin!(loopspec::timeout(Some(1.0), |_| async { Ok(()) }));
                    by_hand(&mut (a.as_mut() as _))
                }),
                from_a_callback(move |_| {
                    let mut b = pin!(loopspec::timeout_at(None, |_| async { Ok(()) }));
                    by_hand(&mut (b.as_mut() as _))
                }),
            ]
        }),
        (48, || {
            let lp = loopspec::EventLoop::with_clock(loopspec::ClockKind::Real);
            let (tx, rx) = std::sync::mpsc::channel::<Timeout>();
            let gate = lp.create_future::<()>();
            let g = gate.clone();
            let task = lp
                .create_task(async move {
                    loopspec::timeout(Some(600.0), |cm| async move {
                        tx.send(cm).unwrap();
                        g.await
                    })
                    .await
                })
                .unwrap();
            let runner = common::spawn_running(&lp, "runner");
            let cm = recv_or_hang(&rx, "entered");
            let err = cm.reschedule(Some(1.0)).unwrap_err();
            gate.set_result(()).unwrap();
            common::stop_running(&lp, runner);
            lp.run_until_complete(task).unwrap();
            lp.close().unwrap();
            vec![err]
        }),
        (49, || {
            let lp = vloop();
            lp.run_until_complete(lp.shutdown_default_executor(None))
                .unwrap();
            let errs = vec![
                lp.run_in_executor(None, || Ok(1)).unwrap_err(),
                lp.run_until_complete(loopspec::to_thread(|| Ok(1)))
                    .unwrap_err(),
            ];
            lp.close().unwrap();
            errs
        }),
    ]
}

/// A row of SPEC.md's misuse table: the Python class its errors have
/// (`none` for allowed misuses) and the messages they may have.
#[derive(Debug)]
struct Expected {
    class: String,
    messages: Vec<String>,
}

/// SPEC.md's misuse table, by row number.
fn misuse_table() -> BTreeMap<u32, Expected> {
    let spec = spec::text();
    let table = spec
        .split("\n## Misuse\n")
        .nth(1)
        .expect("SPEC.md has a Misuse section");
    let rows = table.lines().skip_while(|l| !l.starts_with("| 1 |"));
    let rows = rows.take_while(|l| l.starts_with('|'));
    rows.map(|row| {
        let cells: Vec<&str> = row.split(" | ").collect();
        let number = cells[0]
            .trim_start_matches("| ")
            .parse()
            .expect("a row number");
        let error = cells[3];
        let class = error.split(':').next().unwrap_or(error).trim().to_string();
        // The messages are the `quoted` parts.
        let messages = error
            .split('`')
            .skip(1)
            .step_by(2)
            .map(String::from)
            .collect();
        (number, Expected { class, messages })
    })
    .collect()
}

/// Whether `message` matches `pattern`, in which `NAME` stands for a thread
/// name and `…` for any text.
fn matches(pattern: &str, message: &str) -> bool {
    let parts: Vec<&str> = pattern.split("NAME").flat_map(|p| p.split('…')).collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if parts.len() == 1 {
        return message == pattern;
    }
    let mut rest = match message.strip_prefix(first) {
        Some(r) => r,
        None => return false,
    };
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// Every misuse gets the error SPEC.md's misuse table gives it — class and
/// message — and no misuse panics, hangs or loses work silently; the table
/// and the misuses here have the same rows.
/// Rules: LIFE-2, LIFE-5, LIFE-7, LIFE-8, LIFE-9, STOP-1, STOP-7, SCHED-3, SCHED-6, FUT-2, FUT-3
/// Rules: FUT-4, FUT-8, TASK-2, TASK-3, TASK-7, TASK-12, TASK-13, THREAD-1, THREAD-2, XTHREAD-1
/// Rules: XTHREAD-6, XTHREAD-9, CONC-4, CONC-5, CHAIN-1, EXEC-1, EXEC-4, POLICY-3, POLICY-4
/// Rules: POLICY-5, POLICY-9, POLICY-10, POLICY-11, POLICY-13, GATHER-2, GATHER-3, WAIT-1
/// Rules: WAITFOR-1, RUNNER-3, RUNNER-4, TIMEOUT-2, TIMEOUT-5, TIMEOUT-6, TIMEOUT-9, EXEC-6
#[test]
fn every_misuse_gets_the_error_spec_md_gives_it() {
    let table = misuse_table();
    let misuses = misuses();
    let numbers: Vec<u32> = misuses.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        numbers,
        table.keys().copied().collect::<Vec<_>>(),
        "the rows"
    );
    let mut failed = Vec::new();
    for (n, misuse) in misuses {
        let want = &table[&n];
        let errs = misuse();
        if want.class == "none" {
            if !errs.is_empty() {
                failed.push(format!("row {n}: allowed, yet {errs:?}"));
            }
            continue;
        }
        if errs.is_empty() {
            failed.push(format!("row {n}: no error"));
        }
        for err in errs {
            let message = err.to_string();
            let known = want.messages.iter().any(|p| matches(p, &message));
            if err.python_type() != want.class || !known {
                failed.push(format!(
                    "row {n}: {}: {message:?}, not {want:?}",
                    err.python_type()
                ));
            }
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

/// The matcher of the table's messages can fail.
#[test]
fn misuse_messages_match_only_their_pattern() {
    let pattern = "There is no current event loop in thread 'NAME'.";
    assert!(matches(
        pattern,
        "There is no current event loop in thread 'x-1'."
    ));
    assert!(!matches(
        pattern,
        "There is no current event loop in thread 'x-1'"
    ));
    assert!(matches(
        "FINISHED: <Future at 0x… state=finished returned i32>",
        "FINISHED: <Future at 0x7f00 state=finished returned i32>"
    ));
    assert!(!matches("CANCELLED: …", "FINISHED: x"));
    assert!(matches("invalid state", "invalid state") && !matches("invalid state", "invalid"));
}
