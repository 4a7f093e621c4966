//! What cross-thread submission costs: loopspec next to tokio and the limits
//! of plain std, workload by workload, in the same criterion groups.
//!
//! * W1 burst: one producer submits N no-op callbacks to a loop running on
//!   another thread; from the first submit until the loop ran all N.
//!   Peers: tokio `Handle::spawn` into a current_thread runtime driven on its
//!   own thread; std `mpsc` to a consumer thread. Idle and busy variants.
//! * W2 round trip: a foreign thread runs `run_coroutine_threadsafe(..).result()`
//!   (`loopspec`: the `_local` closure form; `loopspec_send`: a `Send` coroutine)
//!   in sequence. Peers: tokio spawn + wait on the JoinHandle; std
//!   park/unpark ping-pong. Also with both threads pinned to one CPU.
//! * W3 fan-in: two producers, N/2 each.
//! * W4 gather/wait: 100,000 trivial tasks on one loop. Peer: tokio spawn +
//!   await every JoinHandle on a current_thread runtime.
//!
//! Times are per element (`Throughput::Elements`). `cargo bench --bench
//! cross_thread`; `examples/bench_summary.rs` prints the ratios afterwards.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use loopspec::{EventLoop, LoopThread, ReturnWhen};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, mpsc};
use std::thread;
use std::time::{Duration, Instant};

const BURST: usize = 200_000;
const ROUND_TRIPS: usize = 2_000;
const TASKS: usize = 100_000;

// ---------------------------------------------------------------------------
// Loop side helpers
// ---------------------------------------------------------------------------

/// A loop on its own thread, plus a counter its callbacks bump and a channel
/// the callback that reaches `target` signals on.
struct Counted {
    lt: LoopThread,
    ran: Arc<AtomicUsize>,
}

impl Counted {
    fn new(busy: bool) -> Counted {
        let lt = LoopThread::spawn("bench-loop").unwrap();
        let ran = Arc::new(AtomicUsize::new(0));
        if busy {
            // Keep the loop from parking: a callback that reschedules itself.
            let lp = lt.event_loop().clone();
            let keep = Arc::new(AtomicBool::new(true));
            lt.event_loop()
                .call_soon_threadsafe(move || spin(lp, keep))
                .unwrap();
        }
        // Make sure the loop thread is running before timing starts.
        let (tx, rx) = mpsc::channel();
        lt.event_loop()
            .call_soon_threadsafe(move || tx.send(()).unwrap())
            .unwrap();
        rx.recv().unwrap();
        Counted { lt, ran }
    }

    fn lp(&self) -> &EventLoop {
        self.lt.event_loop()
    }
}

fn spin(lp: EventLoop, keep: Arc<AtomicBool>) {
    if keep.load(Ordering::Relaxed) {
        let lp2 = lp.clone();
        let _ = lp.call_soon(move || spin(lp2, keep));
    }
}

/// Submits `n` counting callbacks from `producers` threads and returns the
/// time from the first submit until the loop ran the last one.
fn loopspec_burst(c: &Counted, n: usize, producers: usize) -> Duration {
    c.ran.store(0, Ordering::SeqCst);
    let (done_tx, done_rx) = mpsc::sync_channel::<Instant>(1);
    let start_line = Arc::new(Barrier::new(producers + 1));
    let per = n / producers;
    let handles: Vec<_> = (0..producers)
        .map(|_| {
            let (lp, ran, done, line) = (
                c.lp().clone(),
                c.ran.clone(),
                done_tx.clone(),
                start_line.clone(),
            );
            thread::spawn(move || {
                line.wait();
                for _ in 0..per {
                    let (ran, done) = (ran.clone(), done.clone());
                    lp.call_soon_threadsafe(move || {
                        if ran.fetch_add(1, Ordering::Relaxed) + 1 == n {
                            let _ = done.send(Instant::now());
                        }
                    })
                    .unwrap();
                }
            })
        })
        .collect();
    start_line.wait();
    let start = Instant::now();
    let end = done_rx.recv().unwrap();
    for h in handles {
        h.join().unwrap();
    }
    end - start
}

fn tokio_runtime_thread() -> (
    tokio::runtime::Handle,
    Arc<tokio::sync::Notify>,
    thread::JoinHandle<()>,
) {
    let (tx, rx) = mpsc::channel();
    let quit = Arc::new(tokio::sync::Notify::new());
    let q = quit.clone();
    let join = thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        tx.send(rt.handle().clone()).unwrap();
        rt.block_on(q.notified());
    });
    (rx.recv().unwrap(), quit, join)
}

fn tokio_burst(handle: &tokio::runtime::Handle, n: usize, producers: usize) -> Duration {
    let ran = Arc::new(AtomicUsize::new(0));
    let (done_tx, done_rx) = mpsc::sync_channel::<Instant>(1);
    let start_line = Arc::new(Barrier::new(producers + 1));
    let per = n / producers;
    let handles: Vec<_> = (0..producers)
        .map(|_| {
            let (h, ran, done, line) = (
                handle.clone(),
                ran.clone(),
                done_tx.clone(),
                start_line.clone(),
            );
            thread::spawn(move || {
                line.wait();
                for _ in 0..per {
                    let (ran, done) = (ran.clone(), done.clone());
                    h.spawn(async move {
                        if ran.fetch_add(1, Ordering::Relaxed) + 1 == n {
                            let _ = done.send(Instant::now());
                        }
                    });
                }
            })
        })
        .collect();
    start_line.wait();
    let start = Instant::now();
    let end = done_rx.recv().unwrap();
    for h in handles {
        h.join().unwrap();
    }
    end - start
}

/// The std floor: closures through `mpsc` to a consumer thread that runs them.
fn mpsc_burst(n: usize, producers: usize) -> Duration {
    type Job = Box<dyn FnOnce() + Send>;
    let (tx, rx) = mpsc::channel::<Job>();
    let consumer = thread::spawn(move || {
        while let Ok(job) = rx.recv() {
            job();
        }
    });
    let ran = Arc::new(AtomicUsize::new(0));
    let (done_tx, done_rx) = mpsc::sync_channel::<Instant>(1);
    let start_line = Arc::new(Barrier::new(producers + 1));
    let per = n / producers;
    let handles: Vec<_> = (0..producers)
        .map(|_| {
            let (tx, ran, done, line) =
                (tx.clone(), ran.clone(), done_tx.clone(), start_line.clone());
            thread::spawn(move || {
                line.wait();
                for _ in 0..per {
                    let (ran, done) = (ran.clone(), done.clone());
                    tx.send(Box::new(move || {
                        if ran.fetch_add(1, Ordering::Relaxed) + 1 == n {
                            let _ = done.send(Instant::now());
                        }
                    }))
                    .unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    start_line.wait();
    let start = Instant::now();
    let end = done_rx.recv().unwrap();
    for h in handles {
        h.join().unwrap();
    }
    consumer.join().unwrap();
    end - start
}

fn burst_group(c: &mut Criterion, name: &str, producers: usize) {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(BURST as u64));
    g.sample_size(10);
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(3));
    for busy in [false, true] {
        let label = if busy {
            "loopspec_busy"
        } else {
            "loopspec_idle"
        };
        g.bench_function(label, |b| {
            let counted = Counted::new(busy);
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| loopspec_burst(&counted, BURST, producers))
                    .sum()
            });
            let stats = counted.lp().inbox_stats();
            eprintln!(
                "{name}/{label}: {} submissions, {} wake-ups, {} parks",
                stats.submissions, stats.wakeups, stats.parks
            );
            counted.lt.stop_and_join().unwrap();
        });
    }
    g.bench_function("tokio_spawn", |b| {
        let (handle, quit, join) = tokio_runtime_thread();
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| tokio_burst(&handle, BURST, producers))
                .sum()
        });
        quit.notify_one();
        join.join().unwrap();
    });
    g.bench_function("std_mpsc", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| mpsc_burst(BURST, producers)).sum());
    });
    g.finish();
}

fn w1_burst(c: &mut Criterion) {
    burst_group(c, "W1_burst", 1);
}

fn w3_fan_in(c: &mut Criterion) {
    burst_group(c, "W3_fan_in", 2);
}

// ---------------------------------------------------------------------------
// W2 round trip
// ---------------------------------------------------------------------------

fn pin_to(core: Option<core_affinity::CoreId>) {
    if let Some(core) = core {
        core_affinity::set_for_current(core);
    }
}

fn first_core(pinned: bool) -> Option<core_affinity::CoreId> {
    if !pinned {
        return None;
    }
    core_affinity::get_core_ids().and_then(|ids| ids.into_iter().next())
}

fn w2_round_trip(c: &mut Criterion) {
    for pinned in [false, true] {
        let name = if pinned {
            "W2_round_trip_pinned"
        } else {
            "W2_round_trip"
        };
        let core = first_core(pinned);
        let mut g = c.benchmark_group(name);
        g.throughput(Throughput::Elements(ROUND_TRIPS as u64));
        g.sample_size(10);
        g.warm_up_time(Duration::from_millis(500));
        g.measurement_time(Duration::from_secs(3));

        // `loopspec`: the closure form (a local task, as before `Send`
        // coroutines); `loopspec_send`: the asyncio form, a `Send` coroutine
        // whose task is the loop's work.
        for (label, send) in [("loopspec", false), ("loopspec_send", true)] {
            g.bench_function(label, |b| {
                let lp = EventLoop::new();
                let runner = lp.clone();
                let join = thread::spawn(move || {
                    pin_to(core);
                    runner.run_forever().unwrap();
                });
                b.iter_custom(|iters| {
                    let lp = lp.clone();
                    thread::spawn(move || {
                        pin_to(core);
                        let start = Instant::now();
                        for _ in 0..iters {
                            for i in 0..ROUND_TRIPS {
                                let cf = if send {
                                    loopspec::run_coroutine_threadsafe(async move { Ok(i) }, &lp)
                                } else {
                                    loopspec::run_coroutine_threadsafe_local(
                                        move || async move { Ok(i) },
                                        &lp,
                                    )
                                };
                                assert_eq!(cf.unwrap().result(None).unwrap(), i);
                            }
                        }
                        start.elapsed()
                    })
                    .join()
                    .unwrap()
                });
                lp.stop();
                join.join().unwrap();
                lp.close().unwrap();
            });
        }

        g.bench_function("tokio_spawn", |b| {
            let (tx, rx) = mpsc::channel();
            let quit = Arc::new(tokio::sync::Notify::new());
            let q = quit.clone();
            let join = thread::spawn(move || {
                pin_to(core);
                let rt = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                tx.send(rt.handle().clone()).unwrap();
                rt.block_on(q.notified());
            });
            let handle: tokio::runtime::Handle = rx.recv().unwrap();
            b.iter_custom(|iters| {
                let handle = handle.clone();
                thread::spawn(move || {
                    pin_to(core);
                    let start = Instant::now();
                    for _ in 0..iters {
                        for i in 0..ROUND_TRIPS {
                            let jh = handle.spawn(async move { i });
                            assert_eq!(futures_block_on(jh).unwrap(), i);
                        }
                    }
                    start.elapsed()
                })
                .join()
                .unwrap()
            });
            quit.notify_one();
            join.join().unwrap();
        });

        g.bench_function("std_park_unpark", |b| {
            b.iter_custom(|iters| {
                let total = ROUND_TRIPS * iters as usize;
                thread::spawn(move || {
                    pin_to(core);
                    let turn = Arc::new(AtomicUsize::new(0));
                    let me = thread::current();
                    let t2 = turn.clone();
                    let echo = thread::spawn(move || {
                        pin_to(core);
                        for i in 0..total {
                            while t2.load(Ordering::Acquire) != 2 * i + 1 {
                                thread::park();
                            }
                            t2.store(2 * i + 2, Ordering::Release);
                            me.unpark();
                        }
                    });
                    let echo_thread = echo.thread().clone();
                    let start = Instant::now();
                    for i in 0..total {
                        turn.store(2 * i + 1, Ordering::Release);
                        echo_thread.unpark();
                        while turn.load(Ordering::Acquire) != 2 * i + 2 {
                            thread::park();
                        }
                    }
                    let elapsed = start.elapsed();
                    echo.join().unwrap();
                    elapsed
                })
                .join()
                .unwrap()
            });
        });
        g.finish();
    }
}

/// Blocks the calling (non-runtime) thread on a future, with a thread waker.
fn futures_block_on<F: std::future::Future>(fut: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    struct ThreadWaker(thread::Thread);
    impl Wake for ThreadWaker {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        match fut.as_mut().poll(&mut cx) {
            Poll::Ready(v) => return v,
            Poll::Pending => thread::park(),
        }
    }
}

// ---------------------------------------------------------------------------
// W4 gather / wait
// ---------------------------------------------------------------------------

/// `iters` runs of: make `TASKS` trivial tasks on a fresh loop and hand them
/// to `combine`, which runs the loop until they are combined and returns how
/// many it got. Times from the first task made to the combined result.
fn w4_loopspec(
    iters: u64,
    combine: impl Fn(&EventLoop, Vec<loopspec::Task<usize>>) -> usize,
) -> Duration {
    (0..iters)
        .map(|_| {
            let lp = EventLoop::new();
            let start = Instant::now();
            let tasks: Vec<_> = (0..TASKS)
                .map(|i| lp.create_task(async move { Ok(i) }).unwrap())
                .collect();
            let got = combine(&lp, tasks);
            let elapsed = start.elapsed();
            assert_eq!(got, TASKS);
            lp.close().unwrap();
            elapsed
        })
        .sum()
}

fn w4_gather_wait(c: &mut Criterion) {
    let mut g = c.benchmark_group("W4_gather_wait");
    g.throughput(Throughput::Elements(TASKS as u64));
    g.sample_size(10);
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(3));
    g.bench_function(BenchmarkId::new("loopspec", "gather"), |b| {
        b.iter_custom(|iters| {
            w4_loopspec(iters, |lp, tasks| {
                let all = loopspec::gather(tasks, false).unwrap();
                lp.run_until_complete(all).unwrap().len()
            })
        });
    });
    g.bench_function(BenchmarkId::new("loopspec", "wait"), |b| {
        b.iter_custom(|iters| {
            w4_loopspec(iters, |lp, tasks| {
                let waiting = loopspec::wait(tasks, None, ReturnWhen::AllCompleted);
                lp.run_until_complete(waiting).unwrap().0.len()
            })
        });
    });
    g.bench_function(BenchmarkId::new("tokio", "join_all"), |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .build()
                        .unwrap();
                    let start = Instant::now();
                    let n = rt.block_on(async {
                        let handles: Vec<_> =
                            (0..TASKS).map(|i| tokio::spawn(async move { i })).collect();
                        let mut n = 0;
                        for h in handles {
                            h.await.unwrap();
                            n += 1;
                        }
                        n
                    });
                    let elapsed = start.elapsed();
                    assert_eq!(n, TASKS);
                    elapsed
                })
                .sum()
        });
    });
    g.finish();
}

criterion_group!(benches, w1_burst, w3_fan_in, w2_round_trip, w4_gather_wait);
criterion_main!(benches);
