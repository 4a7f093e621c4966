//! The Rust side of `loopspec-conformance bench`: the cross-thread workloads
//! W1 and W2 on loopspec and on tokio, measured the way the kit's Python
//! child (`loopspec_conformance/bench_child.py`) measures asyncio-compatible
//! loops, printing the same JSON line.
//!
//! ```sh
//! cargo build --release -p loopspec-check --bin xloop_bench
//! target/release/xloop_bench --loop loopspec --n 200000 --r 2000 --samples 5
//! PYTHONPATH=conformance python3 -m loopspec_conformance bench \
//!     --runner-cmd target/release/xloop_bench
//! ```
//!
//! * W1: a loop runs on its own thread; this (the main) thread submits `n`
//!   counting callbacks; a sample is the time from the first submit until
//!   the loop ran the last one (that callback reads the clock), per
//!   callback. loopspec: `LoopThread` and `call_soon_threadsafe`; tokio: a
//!   current_thread runtime driven on its own thread and `Handle::spawn`.
//! * W2: `r` sequential round trips from this thread to the loop's and back.
//!   loopspec: `run_coroutine_threadsafe(async move { Ok(i) }, &lp)?.result(None)`
//!   (the asyncio form, a `Send` coroutine); tokio: `Handle::spawn` and
//!   blocking on the `JoinHandle`.
//!
//! Each workload runs `--warmup` times (default 1) unmeasured, then
//! `--samples` times (default 5). `benches/cross_thread.rs` is the criterion
//! version of the same workloads, with std peers.
//!
//! Output, one line: `{"loop", "loop_version", "python": null,
//! "implementation": "Rust", "available": true, "w1": {"n", "unit",
//! "samples"}, "w2": {...}}`, or with `"error"` when a wait passed
//! `--wait-timeout` seconds (then the exit status is 1).

use loopspec::LoopThread;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

/// The tokio version this binary was built with (from Cargo.lock, by
/// `check/build.rs`).
const TOKIO_VERSION: &str = env!("LOOPSPEC_CHECK_TOKIO_VERSION");

struct Options {
    lp: String,
    n: usize,
    r: usize,
    samples: usize,
    warmup: usize,
    wait: Duration,
}

fn usage() -> ! {
    eprintln!(
        "usage: xloop_bench --loop loopspec|tokio [--n CALLBACKS] [--r ROUND_TRIPS] \
         [--samples K] [--warmup K] [--wait-timeout SECONDS]"
    );
    std::process::exit(2)
}

fn parse() -> Options {
    let mut o = Options {
        lp: String::new(),
        n: 200_000,
        r: 2_000,
        samples: 5,
        warmup: 1,
        wait: Duration::from_secs(120),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        let mut count = || value().parse::<usize>().unwrap_or_else(|_| usage());
        match a.as_str() {
            "--loop" => o.lp = value(),
            "--n" => o.n = count().max(1),
            "--r" => o.r = count().max(1),
            "--samples" => o.samples = count().max(1),
            "--warmup" => o.warmup = count(),
            "--wait-timeout" => {
                let s: f64 = value().parse().unwrap_or_else(|_| usage());
                o.wait = Duration::from_secs_f64(s.max(0.001));
            }
            _ => usage(),
        }
    }
    if o.lp != "loopspec" && o.lp != "tokio" {
        usage()
    }
    o
}

/// A workload's measured samples, each already divided per item.
type Samples = Result<Vec<f64>, String>;

/// Runs `one` `warmup + samples` times and keeps the last `samples`.
fn measure(o: &Options, mut one: impl FnMut() -> Result<f64, String>) -> Samples {
    for _ in 0..o.warmup {
        one()?;
    }
    (0..o.samples).map(|_| one()).collect()
}

fn wait_for_end(rx: &mpsc::Receiver<Instant>, o: &Options, what: &str) -> Result<Instant, String> {
    rx.recv_timeout(o.wait)
        .map_err(|_| format!("{what}: the last callback did not run within {:?}", o.wait))
}

/// One W1 callback: counts itself and, as the `n`th, sends the time.
struct Counted {
    ran: Arc<AtomicUsize>,
    done: mpsc::SyncSender<Instant>,
    n: usize,
}

impl Counted {
    fn run(self) {
        if self.ran.fetch_add(1, Ordering::Relaxed) + 1 == self.n {
            let _ = self.done.send(Instant::now());
        }
    }
}

/// W1's samples: each submits `o.n` counted callbacks through `submit` and
/// times them until the last one ran, in ns per callback.
fn burst(o: &Options, submit: impl Fn(Counted) -> Result<(), String>) -> Samples {
    let ran = Arc::new(AtomicUsize::new(0));
    let n = o.n;
    measure(o, || {
        ran.store(0, Ordering::SeqCst);
        let (done_tx, done_rx) = mpsc::sync_channel::<Instant>(1);
        let start = Instant::now();
        for _ in 0..n {
            submit(Counted {
                ran: ran.clone(),
                done: done_tx.clone(),
                n,
            })?;
        }
        let end = wait_for_end(&done_rx, o, "W1")?;
        Ok((end - start).as_nanos() as f64 / n as f64)
    })
}

// ------------------------------------------------------------- loopspec ----

fn loopspec_w1(o: &Options) -> Samples {
    let lt = LoopThread::spawn("bench-loop").map_err(|e| e.to_string())?;
    let lp = lt.event_loop().clone();
    let result = burst(o, |job| {
        lp.call_soon_threadsafe(move || job.run())
            .map(drop)
            .map_err(|e| e.to_string())
    });
    lt.stop_and_join().map_err(|e| e.to_string())?;
    result
}

fn loopspec_w2(o: &Options) -> Samples {
    let lt = LoopThread::spawn("bench-loop").map_err(|e| e.to_string())?;
    let lp = lt.event_loop().clone();
    let wait = Some(o.wait);
    let result = measure(o, || {
        let start = Instant::now();
        for i in 0..o.r {
            let cf = loopspec::run_coroutine_threadsafe(async move { Ok(i) }, &lp)
                .map_err(|e| e.to_string())?;
            let got = cf.result(wait).map_err(|e| format!("W2: {e}"))?;
            assert_eq!(got, i);
        }
        Ok(start.elapsed().as_nanos() as f64 / 1_000.0 / o.r as f64)
    });
    lt.stop_and_join().map_err(|e| e.to_string())?;
    result
}

// ---------------------------------------------------------------- tokio ----

/// A current_thread runtime driven on its own thread until `quit` is sent.
struct TokioThread {
    handle: tokio::runtime::Handle,
    quit: tokio::sync::oneshot::Sender<()>,
    join: thread::JoinHandle<()>,
}

impl TokioThread {
    fn spawn() -> Result<TokioThread, String> {
        let (tx, rx) = mpsc::channel();
        let (quit, quit_rx) = tokio::sync::oneshot::channel::<()>();
        let join = thread::Builder::new()
            .name("bench-runtime".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .expect("a current_thread runtime");
                tx.send(rt.handle().clone()).expect("the main thread waits");
                let _ = rt.block_on(quit_rx);
            })
            .map_err(|e| e.to_string())?;
        let handle = rx.recv().map_err(|e| e.to_string())?;
        Ok(TokioThread { handle, quit, join })
    }

    fn stop(self) {
        let _ = self.quit.send(());
        let _ = self.join.join();
    }
}

fn tokio_w1(o: &Options) -> Samples {
    let rt = TokioThread::spawn()?;
    let result = burst(o, |job| {
        rt.handle.spawn(async move { job.run() });
        Ok(())
    });
    rt.stop();
    result
}

fn tokio_w2(o: &Options) -> Samples {
    let rt = TokioThread::spawn()?;
    let result = measure(o, || {
        let start = Instant::now();
        for i in 0..o.r {
            let jh = rt.handle.spawn(async move { i });
            let got = block_on(jh, o.wait)
                .ok_or_else(|| format!("W2: no answer within {:?}", o.wait))?
                .map_err(|e| e.to_string())?;
            assert_eq!(got, i);
        }
        Ok(start.elapsed().as_nanos() as f64 / 1_000.0 / o.r as f64)
    });
    rt.stop();
    result
}

/// Blocks this (non-runtime) thread on a future with a thread waker; `None`
/// when `limit` passes first.
fn block_on<F: std::future::Future>(fut: F, limit: Duration) -> Option<F::Output> {
    use std::task::{Context, Poll, Wake, Waker};
    struct ThreadWaker(thread::Thread);
    impl Wake for ThreadWaker {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let deadline = Instant::now() + limit;
    let waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        match fut.as_mut().poll(&mut cx) {
            Poll::Ready(v) => return Some(v),
            Poll::Pending => {
                let now = Instant::now();
                if now >= deadline {
                    return None;
                }
                thread::park_timeout(deadline - now);
            }
        }
    }
}

// ----------------------------------------------------------------- main ----

fn workload(n: usize, unit: &str, samples: Vec<f64>) -> Value {
    json!({"n": n, "unit": unit, "samples": samples})
}

fn main() {
    let o = parse();
    let (w1, w2, version) = if o.lp == "loopspec" {
        (loopspec_w1(&o), loopspec_w2(&o), env!("CARGO_PKG_VERSION"))
    } else {
        (tokio_w1(&o), tokio_w2(&o), TOKIO_VERSION)
    };
    let mut line = json!({
        "loop": o.lp,
        "loop_version": version,
        "python": null,
        "implementation": "Rust",
        "available": true,
    });
    let mut failed = false;
    match (w1, w2) {
        (Ok(w1), Ok(w2)) => {
            line["w1"] = workload(o.n, "ns per call", w1);
            line["w2"] = workload(o.r, "us per round trip", w2);
        }
        (Err(e), _) | (_, Err(e)) => {
            line["error"] = json!(e);
            failed = true;
        }
    }
    println!("{line}");
    std::process::exit(i32::from(failed));
}
