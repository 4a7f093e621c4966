//! W1 bursts one at a time, with where and how each thread ran: the driver
//! behind the W1 placement measurements in `docs/performance.md`.
//!
//! ```sh
//! cargo run --release --example w1_placement -- 60            # 60 rounds
//! cargo run --release --example w1_placement -- 60 --csv      # one line per burst
//! cargo run --release --example w1_placement -- 1 --burst 20000 --only "loopspec same"
//! ```
//!
//! Each round runs one burst (200,000 no-op callbacks from one producer
//! thread, as the `W1_burst` bench) in every configuration, in turn, so
//! that the machine's load drifts over all of them alike:
//!
//! * `loopspec` (a loop run by `run_forever`) or `mpsc` (std's channel of
//!   boxed closures to a consumer thread), each
//! * `unpinned`; `split`: the consumer pinned to CPU 0, the producer to
//!   CPU 1 (the `_pinned` benches); `same`: both on CPU 0;
//!   `split-spin` (loopspec only): as `split`, but the loop's thread is
//!   pinned after the loop first waited, so it still spins before parking
//!   (it decides once per thread whether spinning can help).
//!
//! Per burst it reads, from Linux's `/proc` (zero elsewhere), each
//! thread's CPU time, time waiting for a CPU, voluntary context switches
//! (blocking) and migrations, and the loop's inbox counters. A burst ran
//! on "one CPU" when the producer and the consumer ended on the same CPU
//! and neither migrated during it.

use loopspec::EventLoop;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

type Job = Box<dyn FnOnce() + Send>;

/// One thread's scheduler counters (Linux `/proc/self/task/<tid>`).
#[derive(Clone, Copy, Debug, Default)]
struct Sched {
    cpu: i64,
    migrations: i64,
    voluntary: i64,
    run_ms: f64,
    wait_ms: f64,
}

impl Sched {
    fn since(self, before: Sched) -> Sched {
        Sched {
            cpu: self.cpu,
            migrations: self.migrations - before.migrations,
            voluntary: self.voluntary - before.voluntary,
            run_ms: self.run_ms - before.run_ms,
            wait_ms: self.wait_ms - before.wait_ms,
        }
    }
}

/// The calling thread's id, for [`sched`] from another thread.
fn tid() -> String {
    std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| Some(p.file_name()?.to_string_lossy().into_owned()))
        .unwrap_or_default()
}

fn sched(tid: &str) -> Sched {
    let base = format!("/proc/self/task/{tid}");
    let read = |f: &str| std::fs::read_to_string(format!("{base}/{f}")).unwrap_or_default();
    let stat = read("stat");
    // Field 39 of `stat`, counting from 1, is the CPU it last ran on; the
    // fields after the parenthesised name start at field 3.
    let cpu = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().nth(36)?.parse().ok())
        .unwrap_or(-1);
    let sched = read("sched");
    let field = |key: &str| -> f64 {
        sched
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split(':').nth(1)?.trim().parse().ok())
            .unwrap_or(0.0)
    };
    // `schedstat`: time on the CPU, time waiting on a run queue (ns).
    let schedstat = read("schedstat");
    let mut ns = schedstat
        .split_whitespace()
        .map(|x| x.parse::<f64>().unwrap_or(0.0));
    let run_ns = ns.next().unwrap_or(0.0);
    let wait_ns = ns.next().unwrap_or(0.0);
    Sched {
        cpu,
        migrations: field("se.nr_migrations") as i64,
        voluntary: field("nr_voluntary_switches") as i64,
        run_ms: run_ns / 1e6,
        wait_ms: wait_ns / 1e6,
    }
}

fn pin(cpu: Option<usize>) {
    if let Some(id) = cpu {
        core_affinity::set_for_current(core_affinity::CoreId { id });
    }
}

/// One burst's figures.
struct Burst {
    ns_per_item: f64,
    wakeups: u64,
    parks: u64,
    one_cpu: bool,
    consumer: Sched,
    producer: Sched,
}

/// A consumer thread and where its producers run.
struct Config {
    name: String,
    lp: Option<EventLoop>,
    jobs: Option<mpsc::Sender<Job>>,
    consumer_tid: String,
    producer_cpu: Option<usize>,
    join: thread::JoinHandle<()>,
    bursts: Vec<Burst>,
}

impl Config {
    fn new(which: &str, placement: &str) -> Config {
        let (consumer_cpu, producer_cpu, pin_late) = match placement {
            "unpinned" => (None, None, false),
            "split" => (Some(0), Some(1), false),
            "split-spin" => (None, Some(1), true),
            "same" => (Some(0), Some(0), false),
            other => panic!("unknown placement {other}"),
        };
        let name = format!("{which} {placement}");
        let (tid_tx, tid_rx) = mpsc::channel();
        if which == "loopspec" {
            let lp = EventLoop::new();
            let runner = lp.clone();
            let join = thread::spawn(move || {
                pin(consumer_cpu);
                tid_tx.send(tid()).unwrap();
                runner.run_forever().unwrap();
            });
            let consumer_tid = tid_rx.recv().unwrap();
            if pin_late {
                // Once the loop has waited, pin its thread from a callback.
                thread::sleep(Duration::from_millis(20));
                let (tx, rx) = mpsc::channel();
                lp.call_soon_threadsafe(move || {
                    pin(Some(0));
                    tx.send(()).unwrap();
                })
                .unwrap();
                rx.recv().unwrap();
            }
            Config {
                name,
                lp: Some(lp),
                jobs: None,
                consumer_tid,
                producer_cpu,
                join,
                bursts: Vec::new(),
            }
        } else {
            let (jobs, rx) = mpsc::channel::<Job>();
            let join = thread::spawn(move || {
                pin(consumer_cpu);
                tid_tx.send(tid()).unwrap();
                while let Ok(job) = rx.recv() {
                    job();
                }
            });
            Config {
                name,
                lp: None,
                jobs: Some(jobs),
                consumer_tid: tid_rx.recv().unwrap(),
                producer_cpu,
                join,
                bursts: Vec::new(),
            }
        }
    }

    fn burst(&mut self, n: usize) {
        let ran = Arc::new(AtomicUsize::new(0));
        let (done_tx, done_rx) = mpsc::sync_channel::<Instant>(1);
        let stats =
            |lp: &Option<EventLoop>| lp.as_ref().map(|l| l.inbox_stats()).unwrap_or_default();
        let (inbox0, consumer0) = (stats(&self.lp), sched(&self.consumer_tid));
        let (lp, jobs, cpu) = (self.lp.clone(), self.jobs.clone(), self.producer_cpu);
        let producer = thread::spawn(move || {
            pin(cpu);
            let me = tid();
            let before = sched(&me);
            let start = Instant::now();
            for _ in 0..n {
                let (ran, done) = (ran.clone(), done_tx.clone());
                let f = move || {
                    if ran.fetch_add(1, Ordering::Relaxed) + 1 == n {
                        let _ = done.send(Instant::now());
                    }
                };
                match (&lp, &jobs) {
                    (Some(lp), _) => drop(lp.call_soon_threadsafe(f).unwrap()),
                    (None, Some(jobs)) => jobs.send(Box::new(f)).unwrap(),
                    (None, None) => unreachable!(),
                }
            }
            (start, before, sched(&me))
        });
        let (start, producer0, producer1) = producer.join().unwrap();
        let end = done_rx.recv().unwrap();
        let (inbox1, consumer1) = (stats(&self.lp), sched(&self.consumer_tid));
        let (consumer, producer) = (consumer1.since(consumer0), producer1.since(producer0));
        self.bursts.push(Burst {
            ns_per_item: (end - start).as_nanos() as f64 / n as f64,
            wakeups: inbox1.wakeups - inbox0.wakeups,
            parks: inbox1.parks - inbox0.parks,
            one_cpu: consumer.cpu == producer.cpu
                && producer0.cpu == producer1.cpu
                && consumer.migrations == 0
                && producer.migrations == 0,
            consumer,
            producer,
        });
    }

    fn finish(self) {
        if let Some(lp) = &self.lp {
            lp.stop();
        }
        drop(self.jobs);
        self.join.join().unwrap();
        if let Some(lp) = self.lp {
            lp.close().unwrap();
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut rounds = 20;
    let mut burst = 200_000;
    let mut csv = false;
    let mut only: Option<Vec<String>> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--csv" => csv = true,
            "--burst" => burst = it.next().and_then(|n| n.parse().ok()).expect("--burst N"),
            "--only" => {
                only = it
                    .next()
                    .map(|s| s.split(',').map(|c| c.trim().to_string()).collect())
            }
            n => rounds = n.parse().expect("rounds, --burst N, --only a,b, --csv"),
        }
    }
    let mut configs = Vec::new();
    for (which, placement) in [
        ("loopspec", "unpinned"),
        ("loopspec", "split"),
        ("loopspec", "split-spin"),
        ("loopspec", "same"),
        ("mpsc", "unpinned"),
        ("mpsc", "split"),
        ("mpsc", "same"),
    ] {
        let name = format!("{which} {placement}");
        if only.as_ref().is_none_or(|o| o.contains(&name)) {
            configs.push(Config::new(which, placement));
        }
    }
    for _ in 0..rounds {
        for c in configs.iter_mut() {
            c.burst(burst);
        }
    }
    if csv {
        println!(
            "config,ns_per_item,wakeups,parks,one_cpu,consumer_cpu,consumer_migrations,consumer_voluntary,consumer_run_ms,consumer_wait_ms,producer_cpu,producer_migrations,producer_voluntary,producer_run_ms,producer_wait_ms"
        );
    } else {
        println!(
            "{:<20} {:>6} {:>10} | {:>14} {:>14} | {:>9} | {:>8} {:>8} | {:>8}",
            "ns per item",
            "median",
            "min-max",
            "one CPU: n med",
            "two: n med",
            "wake/1000",
            "cons CPU",
            "prod CPU",
            "blocks"
        );
    }
    for c in configs {
        if csv {
            for b in &c.bursts {
                let (s, p) = (b.consumer, b.producer);
                println!(
                    "{},{:.0},{},{},{},{},{},{},{:.2},{:.2},{},{},{},{:.2},{:.2}",
                    c.name,
                    b.ns_per_item,
                    b.wakeups,
                    b.parks,
                    u8::from(b.one_cpu),
                    s.cpu,
                    s.migrations,
                    s.voluntary,
                    s.run_ms,
                    s.wait_ms,
                    p.cpu,
                    p.migrations,
                    p.voluntary,
                    p.run_ms,
                    p.wait_ms
                );
            }
        } else {
            let bs = &c.bursts;
            let ns = |f: &dyn Fn(&Burst) -> bool| -> (usize, f64) {
                let v: Vec<f64> = bs.iter().filter(|b| f(b)).map(|b| b.ns_per_item).collect();
                (v.len(), median(v))
            };
            let all: Vec<f64> = bs.iter().map(|b| b.ns_per_item).collect();
            let (lo, hi) = all
                .iter()
                .fold((f64::MAX, 0.0f64), |(lo, hi), &x| (lo.min(x), hi.max(x)));
            let (n1, m1) = ns(&|b| b.one_cpu);
            let (n2, m2) = ns(&|b| !b.one_cpu);
            let wakeups: u64 = bs.iter().map(|b| b.wakeups).sum();
            let per_item_ms = 1e6 / burst as f64;
            println!(
                "{:<20} {:>6.0} {:>4.0}-{:<5.0} | {:>4} {:>9.0} {:>4} {:>9.0} | {:>9.3} | {:>8.0} {:>8.0} | {:>8.0}",
                c.name,
                median(all.clone()),
                lo,
                hi,
                n1,
                m1,
                n2,
                m2,
                wakeups as f64 * 1000.0 / (bs.len() * burst) as f64,
                median(bs.iter().map(|b| b.consumer.run_ms * per_item_ms).collect()),
                median(bs.iter().map(|b| b.producer.run_ms * per_item_ms).collect()),
                median(bs.iter().map(|b| b.consumer.voluntary as f64).collect()),
            );
        }
        c.finish();
    }
    if !csv {
        println!(
            "\nmedians over the bursts; wake/1000: the loop's wake-ups per 1,000 submissions; cons/prod CPU: each thread's CPU time per item (ns); blocks: the consumer's voluntary context switches per burst"
        );
    }
}
