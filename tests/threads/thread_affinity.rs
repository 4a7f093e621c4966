//! THREAD rules of SPEC.md for local work (the `*_local` calls): it lives on
//! the loop's local home thread, which a loop with local work cannot run
//! away from; what happens when the local home exits or another thread
//! closes the loop; what is `Send`; task wakers. How the loop's own work
//! follows it between threads is in `handoff.rs`.
//!
//! Threads are joined before asserting. Where a thread must stay alive while
//! another checks something (a home thread), the check runs in a nested
//! thread that is joined inside it. The few tests that need a parked loop to
//! be woken from another thread use a real-clock loop whose run can only end
//! through that wake-up, so they terminate exactly when the rule holds.
// A loopspec future passed to create_task as it is would be refused (TASK-2):
// the async blocks that only await one future are the coroutines under test.
#![allow(clippy::redundant_async_block)]

use common::{
    DropCount, DropWhere, Log, Scene, assert_py_error, count, counter, drop_counter, in_thread,
    recv_or_hang, run_once, spawn_running, stop_running, thread_cases, unnamed_thread_name, vloop,
};
use loopspec::{
    ConcurrentFuture, Error, EventLoop, Future, Handle, LocalDoneCallback, Task, TaskRef,
    TimerHandle,
};
use std::marker::PhantomData;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, mpsc};
use std::task::{Context, Poll, Waker};
use std::thread;

type Counter = Arc<AtomicUsize>;

#[track_caller]
fn assert_non_thread_safe(err: &Error) {
    assert_eq!(*err, Error::NonThreadSafeCall);
    let msg = "Non-thread-safe operation invoked on an event loop other than the current one";
    assert_py_error(err, "RuntimeError", msg);
}

#[track_caller]
fn assert_bound_to(err: &Error, home: &str) {
    assert_eq!(
        *err,
        Error::BoundToThread {
            thread: home.into()
        }
    );
    let msg = format!(
        "Event loop is bound to thread '{home}', which holds its local callbacks, timers \
         or tasks"
    );
    assert_py_error(err, "RuntimeError", &msg);
}

/// Every local scheduling call, each handed data holding a drop counter;
/// returns the errors (one per call).
fn local_calls(lp: &EventLoop, dropped: &Counter) -> Vec<Error> {
    let guard = || DropCount(dropped.clone());
    let (a, b, c, d, e) = (guard(), guard(), guard(), guard(), guard());
    let local: LocalDoneCallback<i32> = Rc::new(move |_: &Future<i32>| {
        let _ = &e;
    });
    let errs = vec![
        lp.call_soon_local(move || drop(a)).map(drop),
        lp.call_later_local(1.0, move || drop(b)).map(drop),
        lp.call_at_local(1.0, move || drop(c)).map(drop),
        lp.create_task_local(async move {
            drop(d);
            Ok(())
        })
        .map(drop),
        lp.create_future::<i32>().add_done_callback_local(local),
    ];
    errs.into_iter().map(Result::unwrap_err).collect()
}

/// `lp`'s work, run from a new thread called `name`: the outcome of one
/// pre-stopped `run_forever()` there.
fn run_from(lp: &EventLoop, name: &str) -> loopspec::Result<()> {
    let lp = lp.clone();
    in_thread(name, move || {
        lp.stop();
        lp.run_forever()
    })
}

/// The error of `run_forever()` from a new thread called `name`, which must
/// be refused (no stop is requested: a refused run would leave it set).
fn refused_from(lp: &EventLoop, name: &str) -> Error {
    let lp = lp.clone();
    in_thread(name, move || lp.run_forever().unwrap_err())
}

/// A callback that adds one to `ran`, with data that counts its drop.
fn watched(ran: &Counter, dropped: &Counter) -> impl FnOnce() + Send + 'static {
    let (r, d) = (ran.clone(), DropCount(dropped.clone()));
    move || {
        let _d = d;
        r.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The first local call makes its thread the loop's local home: from then
/// on local calls from other threads fail with `Non-thread-safe operation
/// invoked on an event loop other than the current one`, dropping what they
/// were given — also while the loop runs or is parked elsewhere.
/// `call_soon_threadsafe` works from any thread.
/// Rules: THREAD-10, THREAD-1
#[test]
fn local_calls_belong_to_the_local_home() {
    thread_cases(&[
        ("home", "from another thread: refused, dropped", || {
            let s = Scene::new();
            s.soon_local_log("home"); // this thread is now the home
            let lp = s.lp.clone();
            let (errs, dropped) = thread::spawn(move || {
                let dropped = counter();
                let errs = local_calls(&lp, &dropped);
                let threadsafe = lp.call_soon_threadsafe(|| ());
                (errs, (count(&dropped), threadsafe.is_ok()))
            })
            .join()
            .unwrap();
            errs.iter().for_each(assert_non_thread_safe);
            assert_eq!(dropped, (5, true), "dropped, not run; threadsafe works");
            assert_eq!(s.once(), ["home"], "the home's work is untouched");
        }),
        ("home", "while the loop runs here", || {
            let s = Scene::new();
            s.soon(|s| {
                let lp = s.lp.clone();
                let errs = thread::spawn(move || local_calls(&lp, &counter()));
                errs.join().unwrap().iter().for_each(assert_non_thread_safe);
                s.push("checked");
            });
            assert_eq!(s.once(), ["checked"]);
        }),
    ]);
    // Whichever local call comes first makes its thread the local home.
    for kind in 0..4 {
        let lp = vloop();
        in_thread("first", move || {
            match kind {
                0 => drop(lp.call_soon_local(|| ()).unwrap()),
                1 => drop(lp.call_later_local(5.0, || ()).unwrap()),
                2 => drop(lp.call_at_local(5.0, || ()).unwrap()),
                _ => drop(lp.create_task_local(async { Ok(()) }).unwrap()),
            }
            let l2 = lp.clone();
            let errs = in_thread("second", move || local_calls(&l2, &counter()));
            errs.iter().for_each(assert_non_thread_safe);
            // The home itself can go on scheduling.
            lp.call_soon_local(|| ()).unwrap();
        });
    }
    let lp = EventLoop::new();
    let runner = spawn_running(&lp, "loop-a");
    let dropped = counter();
    local_calls(&lp, &dropped)
        .iter()
        .for_each(assert_non_thread_safe);
    assert_eq!(count(&dropped), 5);
    stop_running(&lp, runner);
}

/// A run from a thread other than the local home is refused with `Event
/// loop is bound to thread 'HOME', ...` — the home named as POLICY-9 names threads
/// (`Thread-N`, `MainThread` for Rust's `main`) — changing nothing and
/// polling nothing; but a closed, running or other running loop is reported
/// first (LIFE-8, LIFE-5).
/// Rules: THREAD-2, POLICY-9, LIFE-5, LIFE-8
#[test]
fn a_run_from_another_thread_names_the_local_home() {
    // The loop runs in its home: another thread gets LIFE-5's message.
    let lp = EventLoop::new();
    let runner = spawn_running(&lp, "loop-a");
    assert_eq!(lp.run_forever(), Err(Error::AlreadyRunning));
    stop_running(&lp, runner);
    thread_cases(&[
        ("home-a", "the home's name; nothing changed", || {
            let s = Scene::new();
            s.soon_local_log("queued by home");
            let lp = s.lp.clone();
            let (e1, e2, polled) = in_thread("intruder", move || {
                let (polled, dropped) = (counter(), counter());
                let e1 = lp.run_forever();
                let step = watched(&polled, &dropped);
                let e2 = lp.run_until_complete(async move {
                    step();
                    Ok(())
                });
                (e1, e2, (count(&polled), count(&dropped)))
            });
            assert_bound_to(&e1.unwrap_err(), "home-a");
            assert_bound_to(&e2.unwrap_err(), "home-a");
            assert_eq!(polled, (0, 1), "the refused coroutine was dropped unpolled");
            assert!(!s.is_running());
            assert_eq!(s.once(), ["queued by home"]);
        }),
        ("main", "Rust's main is MainThread", || {
            let lp = vloop();
            lp.call_soon_local(|| ()).unwrap();
            assert_bound_to(&refused_from(&lp, "intruder"), "MainThread");
        }),
        ("home", "a closed loop first", || {
            let lp = vloop();
            lp.call_soon_local(|| ()).unwrap();
            let l2 = lp.clone();
            let err = in_thread("closer", move || {
                l2.close().unwrap();
                l2.run_forever()
            });
            assert_eq!(err, Err(Error::Closed));
        }),
        ("home", "another running loop first", || {
            let lp = vloop();
            lp.call_soon_local(|| ()).unwrap();
            let err = in_thread("other-runner", move || {
                let s = Scene::new();
                s.soon(move |s| {
                    s.push(format!(
                        "{:?}",
                        lp.run_forever() == Err(Error::AnotherLoopRunning)
                    ))
                });
                s.once()
            });
            assert_eq!(err, ["true"]);
        }),
    ]);
    let (err, home) = thread::spawn(|| {
        let lp = vloop();
        lp.call_later_local(1.0, || ()).unwrap();
        (refused_from(&lp, "intruder"), unnamed_thread_name())
    })
    .join()
    .unwrap();
    assert!(home.starts_with("Thread-"));
    assert_bound_to(&err, &home);
}

/// A loop whose run ends with no local work left — no local callback, no
/// live local timer, no unfinished local task — has no local home, so
/// another thread can use and run it, even while its old home is alive;
/// until then the home is kept. A loop that only ever had work handed over
/// thread-safely runs in any thread (made here, run there), and calls that
/// are not local claim nothing.
/// Rules: THREAD-10, THREAD-3, THREAD-2
#[test]
fn a_loop_without_local_work_has_no_home() {
    thread_cases(&[
        ("home", "released after an empty run, home alive", || {
            let s = Scene::new();
            s.soon_local_log("a");
            assert_eq!(s.once(), ["a"]);
            let lp = s.lp.clone();
            let ran = in_thread("next", move || {
                let n = Scene::on(lp);
                n.soon_local_log("b");
                n.once()
            });
            assert_eq!(ran, ["b"]);
        }),
        ("home", "a pending timer keeps it, until cancelled", || {
            let lp = vloop();
            let timer = lp.call_later_local(100.0, || ()).unwrap();
            run_once(&lp);
            assert_bound_to(&refused_from(&lp, "other"), "home");
            // A cancelled timer is not pending work: the next empty run releases.
            timer.cancel();
            run_once(&lp);
            assert_eq!(run_from(&lp, "other"), Ok(()));
        }),
        ("home", "an unfinished task keeps it, until done", || {
            let lp = vloop();
            let gate = lp.create_future::<u8>();
            let g = gate.clone();
            let task = lp.create_task_local(async move { g.await }).unwrap();
            run_once(&lp);
            assert_bound_to(&refused_from(&lp, "other"), "home");
            gate.set_result(7).unwrap();
            assert_eq!(lp.run_until_complete(task), Ok(7));
            let l2 = lp.clone();
            assert_eq!(
                in_thread("other", move || l2.run_until_complete(async { Ok(8) })),
                Ok(8)
            );
        }),
        ("home", "ready callbacks left by a stop keep it", || {
            let s = Scene::new();
            s.soon(|s| {
                s.push("a");
                s.soon_local_log("b");
            });
            s.once();
            assert_bound_to(&refused_from(&s, "other"), "home");
            assert_eq!(s.once(), ["b"]);
            assert_eq!(run_from(&s, "other"), Ok(()));
        }),
        // create_future, time, stop, is_running and call_soon_threadsafe
        // claim no home.
        ("creator", "what is not loop-bound claims nothing", || {
            let lp = vloop();
            let _fut = lp.create_future::<i32>();
            let _ = (lp.time(), lp.is_running());
            lp.call_soon_threadsafe(|| ()).unwrap();
            let l = lp.clone();
            let ok = in_thread("claimer", move || {
                l.call_soon_local(|| ()).unwrap();
                l.stop();
                l.run_forever()
            });
            assert_eq!(ok, Ok(()));
        }),
    ]);
    // Sleeping runs in turn on three threads, each with work of its own.
    let lp = vloop();
    let l = lp.clone();
    let v = in_thread("first-runner", move || {
        l.run_until_complete(loopspec::sleep(1.0))
    });
    assert_eq!(v, Ok(()));
    let s = Scene::on(lp.clone());
    s.soon_local_log("second home");
    assert_eq!(s.run_until_complete(loopspec::sleep(1.0)), Ok(()));
    assert_eq!(s.take(), ["second home"]);
    let l = lp.clone();
    let v = in_thread("third", move || {
        l.call_later_local(1.0, || ()).unwrap();
        l.run_until_complete(loopspec::sleep(2.0))
    });
    assert_eq!((v, lp.time()), (Ok(()), 4.0));
    // Made in one thread, fed thread-safely, run in another, then here.
    let lp = EventLoop::new();
    let log = Log::new();
    let l = log.clone();
    lp.call_soon_threadsafe(move || {
        l.push(format!("first on {}", thread::current().name().unwrap()))
    })
    .unwrap();
    let l = lp.clone();
    let runner = thread::Builder::new().name("runner".into()).spawn(move || {
        loopspec::set_event_loop(Some(&l));
        l.run_forever()
    });
    lp.call_soon_threadsafe(log.cb("second")).unwrap();
    let stopper = lp.clone();
    lp.call_soon_threadsafe(move || stopper.stop()).unwrap();
    runner.unwrap().join().unwrap().unwrap();
    assert_eq!(log.take(), ["first on runner", "second"]);
    let s = Scene::on(lp);
    s.soon_local_log("here");
    assert_eq!(s.once(), ["here"]);
}

/// When its local home thread exits, the loop drops the local work held
/// there — callbacks, timers (which then never fire) and the futures of
/// pending local tasks, on that thread — and has no local home: another
/// thread can use and run it. Cross-thread submissions the exiting thread
/// had taken in are kept, in order (a `run_coroutine_threadsafe` one too),
/// in the loop's work, unless the loop was closed meanwhile: then they are
/// dropped, failing their futures.
/// Rules: THREAD-4, THREAD-5, XTHREAD-1, XTHREAD-6
#[test]
fn the_local_homes_exit_drops_its_local_work_and_releases_the_loop() {
    let s = Scene::new();
    let (ran, dropped) = (counter(), counter());
    let (lp, r, d) = (s.lp.clone(), ran.clone(), dropped.clone());
    let drops_where = Arc::new(Mutex::new(Vec::new()));
    let w = drops_where.clone();
    in_thread("short-lived", move || {
        lp.call_soon_local(watched(&r, &d)).unwrap();
        lp.call_later_local(5.0, watched(&r, &d)).unwrap();
        lp.call_at_local(7.0, watched(&r, &d)).unwrap();
        let (never, g) = (lp.create_future::<()>(), DropWhere(w));
        let _task = lp
            .create_task_local(async move {
                let _g = g;
                never.await
            })
            .unwrap();
        run_once(&lp); // the task suspends
        assert_eq!(count(&d), 1, "the first callback ran");
    });
    // The thread is gone and its work with it.
    assert_eq!((count(&dropped), count(&ran)), (3, 1));
    assert_eq!(*drops_where.lock().unwrap(), ["short-lived"]);
    assert!(!s.is_closed());
    // No home: this thread can use and run it; the old timers do not fire.
    s.soon_local_log("new home");
    s.later_stop(10.0, "stop");
    assert_eq!(s.forever(), ["new home", "stop"]);
    assert_eq!((s.time(), count(&ran)), (10.0, 1));
    let lp = vloop();
    let l = lp.clone();
    thread::spawn(move || drop(l.call_later_local(1.0, || ()).unwrap()))
        .join()
        .unwrap();
    let l = lp.clone();
    assert_eq!(
        in_thread("successor", move || l
            .run_until_complete(loopspec::sleep(0.5))),
        Ok(())
    );
    // Submissions the exiting half had taken in.
    let s = Scene::new();
    s.call_soon_threadsafe(s.cb("first")).unwrap();
    let (lp, (dropped, g)) = (s.lp.clone(), drop_counter());
    // A loop-bound call takes the inbox into this thread's half, ahead of
    // the callback it queues; then the thread exits without running.
    in_thread("home-then-gone", move || {
        drop(lp.call_soon_local(move || drop(g)).unwrap())
    });
    s.call_soon_threadsafe(s.cb("second")).unwrap();
    assert_eq!(
        count(&dropped),
        1,
        "the loop-bound callback went with its thread"
    );
    assert_eq!(s.once(), ["first", "second"]);
    let lp = vloop();
    let cf = loopspec::run_coroutine_threadsafe(async { Ok(7) }, &lp).unwrap();
    let (l, source) = (lp.clone(), cf.clone());
    // wrap_future makes this thread the home and takes in the submission.
    in_thread("wrapper-home", move || {
        drop(loopspec::wrap_future(&source, &l).unwrap())
    });
    let l = lp.clone();
    let wrapped = in_thread("successor", move || {
        l.run_until_complete(loopspec::wrap_future(&cf, &l).unwrap())
    });
    assert_eq!(wrapped, Ok(7));
    let lp = vloop();
    let cf = loopspec::run_coroutine_threadsafe(async { Ok(7) }, &lp).unwrap();
    let (l, closer) = (lp.clone(), lp.clone());
    in_thread("home", move || {
        l.call_soon_local(|| ()).unwrap(); // takes the submission in
        in_thread("closer", move || closer.close().unwrap());
    });
    // Done by the time the home thread has been joined: no wait needed.
    assert_eq!(
        cf.result(Some(std::time::Duration::ZERO)),
        Err(Error::Closed)
    );
}

/// `close()` from another thread drops the pending cross-thread
/// submissions at once, there, and refuses later ones; the local work of the
/// local home is dropped on the local home, at its next call on the loop — a
/// refused run counts (THREAD-1) — or when it exits.
/// Rules: THREAD-5, LIFE-8
#[test]
fn close_from_another_thread() {
    thread_cases(&[
        (
            "home",
            "submissions at once, home work on its next call",
            || {
                let lp = vloop();
                let (local, local_where) = (counter(), Arc::new(Mutex::new(Vec::new())));
                let guards = || (DropCount(local.clone()), DropWhere(local_where.clone()));
                let (g1, g2, g3) = (guards(), guards(), guards());
                lp.call_soon_local(move || drop(g1)).unwrap();
                lp.call_soon_local(move || drop(g2)).unwrap();
                lp.call_later_local(3.0, move || drop(g3)).unwrap();
                // Submissions from a producer thread, not yet taken by the loop.
                let (inbox_ran, inbox_dropped) = (counter(), counter());
                let (l2, r, d) = (lp.clone(), inbox_ran.clone(), inbox_dropped.clone());
                in_thread("producer", move || {
                    (0..3).for_each(|_| drop(l2.call_soon_threadsafe(watched(&r, &d)).unwrap()));
                });
                let (l2, d, ld) = (lp.clone(), inbox_dropped.clone(), local.clone());
                let at_close = in_thread("closer", move || {
                    l2.close().unwrap();
                    (count(&d), count(&ld))
                });
                assert_eq!(at_close, (3, 0), "submissions at once, not the home's work");
                assert_eq!(count(&inbox_ran), 0);
                let (extra, g) = drop_counter();
                assert_eq!(
                    lp.call_soon_local(move || drop(g)).unwrap_err(),
                    Error::Closed
                );
                assert_eq!((count(&extra), count(&local)), (1, 3));
                assert_eq!(*local_where.lock().unwrap(), ["home", "home", "home"]);
            },
        ),
        ("home", "home work on a refused run", || {
            let lp = vloop();
            let (dropped, g) = drop_counter();
            lp.call_soon_local(move || drop(g)).unwrap();
            let l2 = lp.clone();
            in_thread("closer", move || l2.close().unwrap());
            assert_eq!(lp.run_forever(), Err(Error::Closed));
            assert_eq!(count(&dropped), 1);
        }),
    ]);
    let lp = vloop();
    let (l, (local, g)) = (lp.clone(), drop_counter());
    let g2 = DropCount(local.clone());
    in_thread("home", move || {
        l.call_soon_local(move || drop(g)).unwrap();
        let never = l.create_future::<()>();
        l.create_task_local(async move {
            let _g = g2;
            never.await
        })
        .unwrap();
        let l2 = l.clone();
        in_thread("closer", move || l2.close().unwrap());
        // The home exits without touching the loop again.
    });
    assert!(count(&local) == 2 && lp.is_closed());
    let lp = vloop();
    lp.call_soon_local(|| ()).unwrap();
    let l = lp.clone();
    let (closed, err) = thread::spawn(move || {
        l.close().unwrap();
        (l.is_closed(), l.call_soon_threadsafe(|| ()).unwrap_err())
    })
    .join()
    .unwrap();
    assert!(closed && lp.is_closed() && err == Error::Closed);
    assert_eq!(lp.run_forever(), Err(Error::Closed));
}

fn assert_send_sync<T: Send + Sync>() {}

/// Whether a type is `Send`/`Sync`, decided at compile time for a concrete
/// type: the inherent constant applies only when the bound holds, otherwise
/// the blanket trait's `false` is used.
struct Probe<T: ?Sized>(PhantomData<T>);

trait NotSend {
    const IS_SEND: bool = false;
}
impl<T: ?Sized> NotSend for T {}

impl<T: ?Sized + Send> Probe<T> {
    const IS_SEND: bool = true;
}

macro_rules! is_send {
    ($t:ty) => {
        <Probe<$t>>::IS_SEND
    };
}

/// `EventLoop`, the handles, futures and tasks are `Send + Sync` (checked at
/// compile time; the probe can be seen to say no); the thread-safe entry
/// points — cancelling handles, `call_soon_threadsafe`, `stop`, the
/// questions, `close` — work from any thread.
/// Rules: THREAD-6
#[test]
fn what_is_send_and_what_works_from_any_thread() {
    assert_send_sync::<EventLoop>();
    assert_send_sync::<Handle>();
    assert_send_sync::<TimerHandle>();
    assert_send_sync::<Future<i32>>();
    assert_send_sync::<Task<i32>>();
    assert_send_sync::<TaskRef>();
    assert_send_sync::<ConcurrentFuture<i32>>();
    const { assert!(is_send!(i32) && is_send!(EventLoop) && !is_send!(Rc<i32>)) };
    const { assert!(is_send!(Future<Arc<AtomicUsize>>) && is_send!(Task<i32>)) };
    let s = Scene::new();
    s.soon_local_log("kept");
    let h = s.soon_local_log("cancelled");
    let t = s.later_local_log(1.0, "cancelled timer");
    let (lp, ran) = (s.lp.clone(), counter());
    let (handles, r) = ((h.clone(), t.clone()), ran.clone());
    let seen = thread::spawn(move || {
        let (h, t) = handles;
        h.cancel();
        t.cancel();
        assert!(h.cancelled() && t.cancelled() && t.when() == 1.0);
        let cloned = lp.clone();
        cloned
            .call_soon_threadsafe(watched(&r, &counter()))
            .unwrap();
        cloned.stop();
        (cloned.is_running(), cloned.is_closed(), cloned.time())
    });
    assert_eq!(seen.join().unwrap(), (false, false, 0.0));
    assert!(h.cancelled());
    // The stop requested from the other thread makes this one iteration.
    assert_eq!(s.forever(), ["kept"]);
    assert_eq!(count(&ran), 1);
    let lp = s.lp.clone();
    thread::spawn(move || lp.close().unwrap()).join().unwrap();
    assert!(s.is_closed());
}

/// Polls `inner`; the first time it is pending, sends on `tx` (so another
/// thread knows the task is now waiting on it).
struct SignalOnPending<F> {
    inner: Pin<Box<F>>,
    tx: Option<mpsc::Sender<()>>,
}

impl<F: std::future::Future> std::future::Future for SignalOnPending<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let r = self.inner.as_mut().poll(cx);
        if r.is_pending() {
            self.tx
                .take()
                .into_iter()
                .for_each(|tx| tx.send(()).unwrap());
        }
        r
    }
}

/// A future completed from another thread: the task's waker crosses threads.
#[derive(Default)]
struct Shared {
    value: Option<u32>,
    waker: Option<Waker>,
}

struct CrossThread(Arc<Mutex<Shared>>, Option<mpsc::Sender<Waker>>);

impl std::future::Future for CrossThread {
    type Output = u32;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
        let mut s = self.0.lock().unwrap();
        if let Some(v) = s.value {
            return Poll::Ready(v);
        }
        s.waker = Some(cx.waker().clone());
        drop(s);
        if let Some(tx) = self.1.take() {
            tx.send(cx.waker().clone()).unwrap();
        }
        Poll::Pending
    }
}

/// A future that wakes its own waker once (on the loop's thread) and then
/// completes.
struct WakeSelfOnce(bool);

impl std::future::Future for WakeSelfOnce {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// A task's waker is `Send + Sync` and wakes the task from any thread: a
/// parked real-clock loop — with no timer, so only that wake-up can end
/// the run — through its inbox, whether the task awaits a tokio oneshot or
/// a hand-made future; a loop running other work in another thread. On the
/// loop's own thread a wake queues the next step like `call_soon` (no inbox
/// traffic); after the loop closed it is harmless.
/// Rules: THREAD-7
#[test]
fn a_task_waker_wakes_the_task_from_any_thread() {
    let lp = EventLoop::new();
    let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
    let (waiting_tx, waiting_rx) = mpsc::channel();
    let sender = thread::spawn(move || {
        recv_or_hang(&waiting_rx, "the task is waiting");
        tx.send(42).unwrap();
    });
    let signalled = SignalOnPending {
        inner: Box::pin(rx),
        tx: Some(waiting_tx),
    };
    let v = lp.run_until_complete(async move { signalled.await.map_err(Error::from_error) });
    sender.join().unwrap();
    assert_eq!(v, Ok(42));
    assert_eq!(
        lp.inbox_stats().submissions,
        1,
        "the wake-up came through the inbox"
    );
    let lp = EventLoop::new();
    let shared = Arc::new(Mutex::new(Shared::default()));
    let (waker_tx, waker_rx) = mpsc::channel::<Waker>();
    let s = shared.clone();
    let completer = thread::spawn(move || {
        let waker = recv_or_hang(&waker_rx, "the task's waker");
        s.lock().unwrap().value = Some(7);
        waker.wake();
    });
    let fut = CrossThread(shared, Some(waker_tx));
    assert_eq!(lp.run_until_complete(async move { Ok(fut.await) }), Ok(7));
    completer.join().unwrap();
    // A loop running in another thread; this thread creates nothing
    // loop-bound, it only wakes a task through its waker.
    let lp = EventLoop::new();
    let runner = spawn_running(&lp, "loop-a");
    let (waker_tx, waker_rx) = mpsc::channel::<Waker>();
    let (done_tx, done_rx) = mpsc::channel::<u32>();
    let shared = Arc::new(Mutex::new(Shared::default()));
    let (l, s) = (lp.clone(), shared.clone());
    lp.call_soon_threadsafe(move || {
        let fut = CrossThread(s, Some(waker_tx));
        let task = l.create_task_local(async move { Ok(fut.await) }).unwrap();
        let cb = Rc::new(move |t: &Future<u32>| done_tx.send(t.result().unwrap()).unwrap());
        task.add_done_callback_local(cb).unwrap();
    })
    .unwrap();
    let waker = recv_or_hang(&waker_rx, "the task's waker");
    shared.lock().unwrap().value = Some(11);
    waker.wake_by_ref();
    assert_eq!(recv_or_hang(&done_rx, "the task finished"), 11);
    stop_running(&lp, runner);
    // Virtual clock, no timers: if the wake on the loop's thread did not
    // queue a step, the loop would park forever.
    let s = Scene::new();
    let task = s.task(|s| async move {
        s.push("t1");
        WakeSelfOnce(false).await;
        s.push("t2");
        Ok(())
    });
    s.soon(|s| {
        s.push("c1");
        s.soon_local_log("c2");
    });
    s.run_until_complete(task).unwrap();
    // The step is queued like call_soon at the wake: before c2, which c1
    // queued later in the same iteration.
    assert_eq!(s.take(), ["t1", "c1", "t2", "c2"]);
    assert_eq!(s.inbox_stats().submissions, 0, "no inbox traffic");
    let (waker_tx, waker_rx) = mpsc::channel::<Waker>();
    let fut = CrossThread(Arc::default(), Some(waker_tx));
    let task = s.task(|_| async move { Ok(fut.await) });
    s.once();
    assert!(!task.done());
    let waker = recv_or_hang(&waker_rx, "the task's waker");
    drop(task);
    s.close().unwrap();
    let before = s.inbox_stats().submissions;
    thread::spawn(move || {
        waker.wake_by_ref();
        waker.wake();
    })
    .join()
    .unwrap();
    assert_eq!(
        s.inbox_stats().submissions,
        before,
        "a closed loop takes no wake-up"
    );
}
