//! What cross-thread submission costs: loopspec next to tokio and the limits
//! of plain std, workload by workload, in the same criterion groups.
//!
//! * W1 burst: one producer submits N no-op callbacks to a loop running on
//!   another thread; from the first submit until the loop ran all N.
//!   Peers: tokio `Handle::spawn` into a current_thread runtime driven on its
//!   own thread; std `mpsc` to a consumer thread. Idle and busy variants.
//!   `W1_burst`: threads unpinned; `W1_burst_pinned`: the consumer (the
//!   loop's thread, tokio's runtime thread, the std consumer) pinned to the
//!   first core and the producer to the second (skipped with one core).
//! * W2 round trip: a foreign thread runs `run_coroutine_threadsafe(..).result()`
//!   (`loopspec`: the `_local` closure form; `loopspec_send`: a `Send` coroutine)
//!   in sequence. Peers: tokio spawn + wait on the JoinHandle; std
//!   park/unpark ping-pong. Also with both threads pinned to one CPU.
//! * W3 fan-in: two producers, N/2 each; `W3_fan_in_pinned` as W1's, both
//!   producers on the second core.
//! * W4 gather/wait: 100,000 trivial tasks on one loop, made inside the run
//!   (`run_until_complete` of a coroutine that makes them with
//!   `create_task` and awaits `gather` or `wait`). Peer: tokio spawn + await
//!   every JoinHandle inside `block_on` on a current_thread runtime. Also
//!   `gather_made_idle`: the tasks made on the loop before it runs (each
//!   `create_task` then borrows the idle loop's work, THREAD-9).
//!
//! Times are per element (`Throughput::Elements`). W1 and W3 also write the
//! loop's inbox counters (wake-ups, parks) over the measured samples to
//! `inbox_stats.json` beside criterion's figures. `cargo bench --bench
//! cross_thread`; `examples/bench_summary.rs` prints the ratios afterwards.

use common::{W4, criterion_dir, w4_in_run, w4_tokio};
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group};
use loopspec::{EventLoop, InboxStats};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, mpsc};
use std::thread;
use std::time::{Duration, Instant};

const BURST: usize = 200_000;
const ROUND_TRIPS: usize = 2_000;
const TASKS: usize = 100_000;

// ---------------------------------------------------------------------------
// Placement
// ---------------------------------------------------------------------------

/// Where a workload's threads run. `consumer`: the loop's thread, the std
/// consumer, tokio's runtime thread; `producers`: the submitting threads.
/// `None`: wherever the scheduler puts them.
#[derive(Clone, Copy)]
struct Placement {
    consumer: Option<core_affinity::CoreId>,
    producers: Option<core_affinity::CoreId>,
}

impl Placement {
    const UNPINNED: Placement = Placement {
        consumer: None,
        producers: None,
    };

    /// The consumer on the first core, the producers on the second; `None`
    /// with fewer than two cores available.
    fn split() -> Option<Placement> {
        let ids = core_affinity::get_core_ids()?;
        match ids[..] {
            [consumer, producers, ..] => Some(Placement {
                consumer: Some(consumer),
                producers: Some(producers),
            }),
            _ => None,
        }
    }
}

fn pin_to(core: Option<core_affinity::CoreId>) {
    if let Some(core) = core {
        core_affinity::set_for_current(core);
    }
}

// ---------------------------------------------------------------------------
// W1 burst and W3 fan-in
// ---------------------------------------------------------------------------

/// A loop run by `run_forever` on a thread of its own (pinned if asked,
/// before the loop first runs), plus a counter its callbacks bump.
struct Counted {
    lp: EventLoop,
    ran: Arc<AtomicUsize>,
    keep_busy: Arc<AtomicBool>,
    join: Option<thread::JoinHandle<()>>,
}

impl Counted {
    fn new(busy: bool, core: Option<core_affinity::CoreId>) -> Counted {
        let lp = EventLoop::new();
        let runner = lp.clone();
        let join = thread::spawn(move || {
            pin_to(core);
            runner.run_forever().unwrap();
        });
        let keep_busy = Arc::new(AtomicBool::new(busy));
        if busy {
            // Keep the loop from parking: a callback that reschedules itself.
            let (lp2, keep) = (lp.clone(), keep_busy.clone());
            lp.call_soon_threadsafe(move || spin(lp2, keep)).unwrap();
        }
        // Make sure the loop thread is running before timing starts.
        let (tx, rx) = mpsc::channel();
        lp.call_soon_threadsafe(move || tx.send(()).unwrap())
            .unwrap();
        rx.recv().unwrap();
        Counted {
            lp,
            ran: Arc::new(AtomicUsize::new(0)),
            keep_busy,
            join: Some(join),
        }
    }

    fn lp(&self) -> &EventLoop {
        &self.lp
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.keep_busy.store(false, Ordering::Relaxed);
        self.lp.stop();
        if let Some(join) = self.join.take() {
            join.join().unwrap();
        }
        self.lp.close().unwrap();
    }
}

fn spin(lp: EventLoop, keep: Arc<AtomicBool>) {
    if keep.load(Ordering::Relaxed) {
        let lp2 = lp.clone();
        let _ = lp.call_soon(move || spin(lp2, keep));
    }
}

/// Starts `producers` threads (pinned to `core` if given), each running
/// `produce` once after a common start line, and returns the time from the
/// start line until `done` reports the last callback ran.
fn timed_burst(
    producers: usize,
    core: Option<core_affinity::CoreId>,
    produce: impl Fn() -> Box<dyn FnOnce() + Send> + Send,
    done: mpsc::Receiver<Instant>,
) -> Duration {
    let start_line = Arc::new(Barrier::new(producers + 1));
    let handles: Vec<_> = (0..producers)
        .map(|_| {
            let (line, work) = (start_line.clone(), produce());
            thread::spawn(move || {
                pin_to(core);
                line.wait();
                work();
            })
        })
        .collect();
    start_line.wait();
    let start = Instant::now();
    let end = done.recv().unwrap();
    for h in handles {
        h.join().unwrap();
    }
    end - start
}

/// Submits `n` counting callbacks from `producers` threads and returns the
/// time from the first submit until the loop ran the last one.
fn loopspec_burst(
    c: &Counted,
    n: usize,
    producers: usize,
    core: Option<core_affinity::CoreId>,
) -> Duration {
    c.ran.store(0, Ordering::SeqCst);
    let (done_tx, done_rx) = mpsc::sync_channel::<Instant>(1);
    let per = n / producers;
    let produce = || -> Box<dyn FnOnce() + Send> {
        let (lp, ran, done) = (c.lp().clone(), c.ran.clone(), done_tx.clone());
        Box::new(move || {
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
    };
    timed_burst(producers, core, produce, done_rx)
}

/// tokio's current_thread runtime driven on a thread of its own (pinned if
/// asked): its handle, the signal that ends it, and the thread.
fn tokio_runtime_thread(
    core: Option<core_affinity::CoreId>,
) -> (
    tokio::runtime::Handle,
    Arc<tokio::sync::Notify>,
    thread::JoinHandle<()>,
) {
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
    (rx.recv().unwrap(), quit, join)
}

fn tokio_burst(
    handle: &tokio::runtime::Handle,
    n: usize,
    producers: usize,
    core: Option<core_affinity::CoreId>,
) -> Duration {
    let ran = Arc::new(AtomicUsize::new(0));
    let (done_tx, done_rx) = mpsc::sync_channel::<Instant>(1);
    let per = n / producers;
    let produce = || -> Box<dyn FnOnce() + Send> {
        let (h, ran, done) = (handle.clone(), ran.clone(), done_tx.clone());
        Box::new(move || {
            for _ in 0..per {
                let (ran, done) = (ran.clone(), done.clone());
                h.spawn(async move {
                    if ran.fetch_add(1, Ordering::Relaxed) + 1 == n {
                        let _ = done.send(Instant::now());
                    }
                });
            }
        })
    };
    timed_burst(producers, core, produce, done_rx)
}

/// The std floor: closures through `mpsc` to a consumer thread that runs them.
fn mpsc_burst(n: usize, producers: usize, place: Placement) -> Duration {
    type Job = Box<dyn FnOnce() + Send>;
    let (tx, rx) = mpsc::channel::<Job>();
    let consumer = thread::spawn(move || {
        pin_to(place.consumer);
        while let Ok(job) = rx.recv() {
            job();
        }
    });
    let ran = Arc::new(AtomicUsize::new(0));
    let (done_tx, done_rx) = mpsc::sync_channel::<Instant>(1);
    let per = n / producers;
    let produce = || -> Box<dyn FnOnce() + Send> {
        let (tx, ran, done) = (tx.clone(), ran.clone(), done_tx.clone());
        Box::new(move || {
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
    };
    let elapsed = timed_burst(producers, place.producers, produce, done_rx);
    drop(tx);
    consumer.join().unwrap();
    elapsed
}

/// The inbox counters over one call of a benchmark's routine (one
/// criterion sample, or one warm-up step).
#[derive(Clone, Copy)]
struct InboxDelta {
    iters: u64,
    submissions: u64,
    wakeups: u64,
    parks: u64,
}

/// The inbox counters once the loop is parked (or after 100 ms). A park
/// ends with exactly one wake-up (the inbox coalesces them; no timeout is
/// set here), so the loop is parked when it has parked more often than it
/// was woken.
fn wait_until_parked(lp: &EventLoop) -> InboxStats {
    let deadline = Instant::now() + Duration::from_millis(100);
    loop {
        let stats = lp.inbox_stats();
        if stats.parks > stats.wakeups || Instant::now() > deadline {
            return stats;
        }
        thread::sleep(Duration::from_micros(50));
    }
}

/// Writes the inbox counters of a benchmark's measured samples to
/// `<criterion>/<group>/<bench>/inbox_stats.json`, next to criterion's
/// figures, for `examples/bench_summary.rs`. Criterion calls the routine
/// for each warm-up step and then once per sample, so the measured samples
/// are the last `samples` calls; a run with fewer calls (`--test`) writes
/// nothing.
fn write_inbox_stats(group: &str, bench: &str, calls: &[InboxDelta], samples: usize) {
    if calls.len() <= samples {
        return;
    }
    let measured = &calls[calls.len() - samples..];
    let sum = |f: fn(&InboxDelta) -> u64| measured.iter().map(f).sum::<u64>();
    let json = serde_json::json!({
        "submissions": sum(|d| d.submissions),
        "wakeups": sum(|d| d.wakeups),
        "parks": sum(|d| d.parks),
        "samples": measured
            .iter()
            .map(|d| serde_json::json!({
                "iters": d.iters,
                "submissions": d.submissions,
                "wakeups": d.wakeups,
                "parks": d.parks,
            }))
            .collect::<Vec<_>>(),
    });
    let dir = criterion_dir().join(group).join(bench);
    let written = std::fs::create_dir_all(&dir).and_then(|()| {
        std::fs::write(
            dir.join("inbox_stats.json"),
            serde_json::to_string_pretty(&json).unwrap(),
        )
    });
    if let Err(e) = written {
        eprintln!("{group}/{bench}: inbox_stats.json not written: {e}");
    }
}

const BURST_SAMPLES: usize = 10;

fn burst_group(c: &mut Criterion, name: &str, producers: usize, place: Placement) {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(BURST as u64));
    g.sample_size(BURST_SAMPLES);
    // The same number of bursts in every sample, so that the samples'
    // spread compares like with like, and fewer bursts in all.
    g.sampling_mode(SamplingMode::Flat);
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(2));
    for busy in [false, true] {
        let label = if busy {
            "loopspec_busy"
        } else {
            "loopspec_idle"
        };
        let mut calls = Vec::new();
        g.bench_function(label, |b| {
            let counted = Counted::new(busy, place.consumer);
            // An idle loop's counters are read while it is parked, before
            // and after the bursts, so that every wake-up counted ends a
            // park counted.
            let settled = || {
                if busy {
                    counted.lp().inbox_stats()
                } else {
                    wait_until_parked(counted.lp())
                }
            };
            let before = settled();
            let mut iters_run = 0;
            b.iter_custom(|iters| {
                iters_run = iters;
                (0..iters)
                    .map(|_| loopspec_burst(&counted, BURST, producers, place.producers))
                    .sum()
            });
            let after = settled();
            calls.push(InboxDelta {
                iters: iters_run,
                submissions: after.submissions - before.submissions,
                wakeups: after.wakeups - before.wakeups,
                parks: after.parks - before.parks,
            });
        });
        if let Some(last) = calls.last() {
            eprintln!(
                "{name}/{label}: last sample: {} submissions, {} wake-ups, {} parks",
                last.submissions, last.wakeups, last.parks
            );
        }
        write_inbox_stats(name, label, &calls, BURST_SAMPLES);
    }
    g.bench_function("tokio_spawn", |b| {
        let (handle, quit, join) = tokio_runtime_thread(place.consumer);
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| tokio_burst(&handle, BURST, producers, place.producers))
                .sum()
        });
        quit.notify_one();
        join.join().unwrap();
    });
    g.bench_function("std_mpsc", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| mpsc_burst(BURST, producers, place))
                .sum()
        });
    });
    g.finish();
}

fn w1_burst(c: &mut Criterion) {
    burst_group(c, "W1_burst", 1, Placement::UNPINNED);
    if let Some(split) = Placement::split() {
        burst_group(c, "W1_burst_pinned", 1, split);
    }
}

fn w3_fan_in(c: &mut Criterion) {
    burst_group(c, "W3_fan_in", 2, Placement::UNPINNED);
    if let Some(split) = Placement::split() {
        burst_group(c, "W3_fan_in_pinned", 2, split);
    }
}

// ---------------------------------------------------------------------------
// W2 round trip
// ---------------------------------------------------------------------------

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

/// `iters` runs of [`common::w4_in_run`] on a fresh loop: one coroutine
/// makes `TASKS` trivial tasks and awaits `how` of them — as tokio's peer
/// spawns inside `block_on`. Times the whole run.
fn w4_loopspec_in_run(iters: u64, how: W4) -> Duration {
    (0..iters)
        .map(|_| {
            let lp = EventLoop::new();
            let start = Instant::now();
            let got = w4_in_run(&lp, TASKS, how).unwrap();
            let elapsed = start.elapsed();
            assert_eq!(got, TASKS);
            lp.close().unwrap();
            elapsed
        })
        .sum()
}

/// `iters` runs of: make `TASKS` trivial tasks on a fresh loop that no
/// thread runs yet and hand them to `combine`, which runs the loop until
/// they are combined and returns how many it got. Times from the first task
/// made to the combined result.
fn w4_loopspec_made_idle(
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
        b.iter_custom(|iters| w4_loopspec_in_run(iters, W4::Gather));
    });
    g.bench_function(BenchmarkId::new("loopspec", "wait"), |b| {
        b.iter_custom(|iters| w4_loopspec_in_run(iters, W4::Wait));
    });
    g.bench_function(BenchmarkId::new("loopspec", "gather_made_idle"), |b| {
        b.iter_custom(|iters| {
            w4_loopspec_made_idle(iters, |lp, tasks| {
                let all = loopspec::gather(tasks, false).unwrap();
                lp.run_until_complete(all).unwrap().len()
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
                    let n = w4_tokio(&rt, TASKS);
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

/// glibc's settings for the measured process: fixed thresholds for `mmap`
/// and for giving memory back, where glibc otherwise raises both as large
/// blocks are freed. With the dynamic thresholds one benchmark's frees
/// decided where the next one's large buffers came from: after tokio's
/// unpinned W1, a burst's growing queues came from the heap (copied as
/// they grew, given back and faulted in again) rather than from `mmap`, and
/// loopspec's pinned W1 took 316 ns per callback instead of 174 (medians of
/// 10 samples, same binary, only the benchmark before it changed). Fixed,
/// it took 168–188 ns in either order.
const ALLOCATOR_SETTINGS: &str =
    "glibc.malloc.mmap_threshold=131072:glibc.malloc.trim_threshold=131072";

/// criterion's `main`, run in a child process with [`ALLOCATOR_SETTINGS`]
/// unless the caller set `GLIBC_TUNABLES` itself (then as it is).
fn main() {
    if cfg!(all(target_os = "linux", target_env = "gnu"))
        && std::env::var_os("GLIBC_TUNABLES").is_none()
    {
        let status = std::env::current_exe().and_then(|exe| {
            std::process::Command::new(exe)
                .args(std::env::args_os().skip(1))
                .env("GLIBC_TUNABLES", ALLOCATOR_SETTINGS)
                .status()
        });
        match status {
            Ok(status) => std::process::exit(status.code().unwrap_or(1)),
            Err(e) => eprintln!("running with glibc's default thresholds: {e}"),
        }
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
