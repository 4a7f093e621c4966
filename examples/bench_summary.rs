//! One screen of figures from the last `cargo bench --bench cross_thread`
//! and `cargo bench --bench memory`: loopspec against its peers, every
//! ratio from figures of the same run, next to the performance targets.
//!
//! ```sh
//! cargo bench --bench cross_thread && cargo bench --bench memory
//! cargo run --release --example bench_summary
//! ```
//!
//! It reads criterion's directory (`$CRITERION_HOME`,
//! `$CARGO_TARGET_DIR/criterion`, or `target/criterion`): for each
//! benchmark, the samples of its last run (`new/sample.json`), the loop's
//! inbox counters the W1 and W3 benches write beside them
//! (`inbox_stats.json`), and the memory bench's `memory.json`.
//!
//! * **Median**: the median over the samples of a sample's time per element
//!   (its time divided by its iterations and by the elements per
//!   iteration), the same figure as criterion's median estimate.
//! * **Spread**: (slowest sample − fastest sample) / median, over the same
//!   per-element times (criterion takes 10 samples). Over 20 % is flagged
//!   with `!`: the samples of that benchmark disagree, and its ratio from
//!   one run is not to be relied on.
//! * **Verdict**: `meets` when the ratio (or bytes) is within the target,
//!   otherwise `over by N %`, N = (ratio / target − 1) × 100.

use common::criterion_dir;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// Spread above which a benchmark is flagged.
const SPREAD_FLAG: f64 = 0.20;

/// The samples of a benchmark's last run, per element.
struct Samples {
    median: f64,
    spread: f64,
    written: Option<SystemTime>,
}

fn read_json(path: &Path) -> Option<serde_json::Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

fn samples(root: &Path, group: &str, bench: &str) -> Option<Samples> {
    let dir = root.join(group).join(bench).join("new");
    let sample = read_json(&dir.join("sample.json"))?;
    let meta = read_json(&dir.join("benchmark.json"))?;
    let elements = meta["throughput"]["Elements"].as_f64().unwrap_or(1.0);
    let iters = sample["iters"].as_array()?;
    let times = sample["times"].as_array()?;
    let mut per: Vec<f64> = iters
        .iter()
        .zip(times)
        .filter_map(|(i, t)| Some(t.as_f64()? / i.as_f64()? / elements))
        .collect();
    if per.is_empty() {
        return None;
    }
    per.sort_by(f64::total_cmp);
    let n = per.len();
    let median = if n % 2 == 1 {
        per[n / 2]
    } else {
        (per[n / 2 - 1] + per[n / 2]) / 2.0
    };
    let written = std::fs::metadata(dir.join("sample.json"))
        .and_then(|m| m.modified())
        .ok();
    Some(Samples {
        median,
        spread: (per[n - 1] - per[0]) / median,
        written,
    })
}

/// A bound: `ratio <= value`, or `ratio < value` when `strict`.
#[derive(Clone, Copy)]
struct Target {
    value: f64,
    strict: bool,
}

const fn at_most(value: f64) -> Option<Target> {
    Some(Target {
        value,
        strict: false,
    })
}

const fn below(value: f64) -> Option<Target> {
    Some(Target {
        value,
        strict: true,
    })
}

impl Target {
    fn show(self) -> String {
        let op = if self.strict { "<" } else { "<=" };
        format!("{op} {}", self.value)
    }

    fn met(self, x: f64) -> bool {
        if self.strict {
            x < self.value
        } else {
            x <= self.value
        }
    }

    fn verdict(self, x: f64) -> String {
        if self.met(x) {
            "meets".into()
        } else {
            format!("over by {:.0} %", (x / self.value - 1.0) * 100.0)
        }
    }
}

/// The targets met and not met, and the rows that had no figures.
#[derive(Default)]
struct Tally {
    met: usize,
    not_met: usize,
    unmeasured: usize,
}

impl Tally {
    fn count(&mut self, target: Option<Target>, x: f64) -> String {
        let Some(t) = target else {
            return String::new();
        };
        if t.met(x) {
            self.met += 1;
        } else {
            self.not_met += 1;
        }
        t.verdict(x)
    }
}

/// A time per element, in the unit that keeps three figures.
fn time(ns: f64) -> String {
    if ns >= 10_000.0 {
        format!("{:.1} µs", ns / 1000.0)
    } else {
        format!("{ns:.0} ns")
    }
}

fn spread(s: &Samples) -> String {
    let flag = if s.spread > SPREAD_FLAG { "!" } else { " " };
    format!("{:>3.0} %{flag}", s.spread * 100.0)
}

struct Row {
    what: &'static str,
    group: &'static str,
    ours: &'static str,
    peer: &'static str,
    target: Option<Target>,
}

const fn row(
    what: &'static str,
    group: &'static str,
    ours: &'static str,
    peer: &'static str,
    target: Option<Target>,
) -> Row {
    Row {
        what,
        group,
        ours,
        peer,
        target,
    }
}

#[rustfmt::skip]
const ROWS: &[Row] = &[
    row("W1 pinned, idle loop / std mpsc", "W1_burst_pinned", "loopspec_idle", "std_mpsc", at_most(1.0)),
    row("W1 pinned, idle loop / tokio spawn", "W1_burst_pinned", "loopspec_idle", "tokio_spawn", None),
    row("W1 pinned, busy loop / std mpsc", "W1_burst_pinned", "loopspec_busy", "std_mpsc", None),
    row("W1 unpinned, idle loop / std mpsc", "W1_burst", "loopspec_idle", "std_mpsc", None),
    row("W1 unpinned, idle loop / tokio", "W1_burst", "loopspec_idle", "tokio_spawn", None),
    row("W1 unpinned, busy loop / std mpsc", "W1_burst", "loopspec_busy", "std_mpsc", None),
    row("W3 pinned, 2 producers / std mpsc", "W3_fan_in_pinned", "loopspec_idle", "std_mpsc", at_most(1.3)),
    row("W3 pinned, busy loop / std mpsc", "W3_fan_in_pinned", "loopspec_busy", "std_mpsc", None),
    row("W3 unpinned, 2 producers / std mpsc", "W3_fan_in", "loopspec_idle", "std_mpsc", None),
    row("W2 pinned / park-unpark", "W2_round_trip_pinned", "loopspec_send", "std_park_unpark", at_most(1.1)),
    row("W2 pinned / tokio", "W2_round_trip_pinned", "loopspec_send", "tokio_spawn", below(1.0)),
    row("W2 pinned, closure form / Send coroutine", "W2_round_trip_pinned", "loopspec", "loopspec_send", None),
    row("W2 unpinned / park-unpark", "W2_round_trip", "loopspec_send", "std_park_unpark", None),
    row("W4 gather of 100k tasks / tokio", "W4_gather_wait", "loopspec/gather", "tokio/join_all", at_most(1.0)),
    row("W4 wait on 100k tasks / tokio", "W4_gather_wait", "loopspec/wait", "tokio/join_all", at_most(1.0)),
    row("W4 gather, tasks made idle / tokio", "W4_gather_wait", "loopspec/gather_made_idle", "tokio/join_all", None),
];

/// The W1 and W3 loop benchmarks whose inbox counters are reported, and
/// whether the wake-up target applies (a busy loop never parks).
const WAKEUP_ROWS: &[(&str, &str, &str, bool)] = &[
    (
        "W1 pinned, idle loop",
        "W1_burst_pinned",
        "loopspec_idle",
        true,
    ),
    (
        "W1 pinned, busy loop",
        "W1_burst_pinned",
        "loopspec_busy",
        false,
    ),
    ("W1 unpinned, idle loop", "W1_burst", "loopspec_idle", true),
    (
        "W3 pinned, idle loop",
        "W3_fan_in_pinned",
        "loopspec_idle",
        true,
    ),
    ("W3 unpinned, idle loop", "W3_fan_in", "loopspec_idle", true),
];

/// At most one wake-up per park (the inbox coalesces the wake-ups of a
/// burst).
const WAKEUPS_PER_PARK: Option<Target> = at_most(1.0);

/// Bytes per queued submission beyond the closure, and per pending task.
const SUBMISSION_BYTES: Option<Target> = at_most(32.0);
const TASK_BYTES: Option<Target> = at_most(256.0);

fn main() {
    let root = criterion_dir();
    let mut tally = Tally::default();
    let mut written: Vec<SystemTime> = Vec::new();

    println!(
        "{:<36} {:>9} {:>9} {:>6} {:>7}  {:<13} {:>6} {:>6}",
        "time per element", "loopspec", "peer", "ratio", "target", "verdict", "spread", "(peer)"
    );
    for r in ROWS {
        let (Some(ours), Some(peer)) = (
            samples(&root, r.group, r.ours),
            samples(&root, r.group, r.peer),
        ) else {
            println!("{:<36} not measured", r.what);
            tally.unmeasured += usize::from(r.target.is_some());
            continue;
        };
        written.extend(ours.written.into_iter().chain(peer.written));
        let ratio = ours.median / peer.median;
        let verdict = tally.count(r.target, ratio);
        println!(
            "{:<36} {:>9} {:>9} {:>6.2} {:>7}  {:<13} {:>6} {:>6}",
            r.what,
            time(ours.median),
            time(peer.median),
            ratio,
            r.target.map(Target::show).unwrap_or_default(),
            verdict,
            spread(&ours),
            spread(&peer),
        );
    }

    println!(
        "\n{:<36} {:>9} {:>9} {:>6} {:>7}  {:<13}",
        "inbox wake-ups (measured samples)", "/1000 sub", "parks", "/park", "target", "verdict"
    );
    for &(what, group, bench, targeted) in WAKEUP_ROWS {
        let Some(stats) = read_json(&root.join(group).join(bench).join("inbox_stats.json")) else {
            println!("{what:<36} not measured");
            tally.unmeasured += 1;
            continue;
        };
        let get = |k: &str| stats[k].as_f64().unwrap_or(0.0);
        let (subs, wakeups, parks) = (get("submissions"), get("wakeups"), get("parks"));
        let target = WAKEUPS_PER_PARK.filter(|_| targeted);
        let (per_park, verdict) = if parks > 0.0 {
            let per_park = wakeups / parks;
            (format!("{per_park:.2}"), tally.count(target, per_park))
        } else {
            ("-".to_string(), String::new())
        };
        println!(
            "{what:<36} {:>9.3} {:>9} {:>6} {:>7}  {verdict:<13}",
            wakeups * 1000.0 / subs.max(1.0),
            parks,
            per_park,
            target.map(Target::show).unwrap_or_default(),
        );
    }

    println!(
        "\n{:<56} {:>7} {:>7}  {:<13}",
        "memory (cargo bench --bench memory)", "bytes", "target", "verdict"
    );
    let memory = read_json(&root.join("memory.json"));
    let closure = memory.as_ref().and_then(|m| m["closure_bytes"].as_f64());
    let memory_rows = [
        (
            "queued call_soon_threadsafe, no-op closure".to_string(),
            "submission_noop_closure",
            SUBMISSION_BYTES,
        ),
        (
            format!(
                "queued call_soon_threadsafe, beyond its {} B closure",
                closure.unwrap_or(0.0)
            ),
            "submission_beyond_closure",
            SUBMISSION_BYTES,
        ),
        (
            "pending task (create_task)".to_string(),
            "pending_task",
            TASK_BYTES,
        ),
        (
            "pending local task (create_task_local)".to_string(),
            "pending_local_task",
            TASK_BYTES,
        ),
    ];
    for (what, key, target) in memory_rows {
        let Some(bytes) = memory.as_ref().and_then(|m| m[key].as_f64()) else {
            println!("{what:<56} not measured");
            tally.unmeasured += 1;
            continue;
        };
        let verdict = tally.count(target, bytes);
        println!(
            "{what:<56} {bytes:>7.1} {:>7}  {verdict:<13}",
            target.map(Target::show).unwrap_or_default()
        );
    }

    let (first, last) = (written.iter().min(), written.iter().max());
    let span = match (first, last) {
        (Some(a), Some(b)) => b.duration_since(*a).unwrap_or(Duration::ZERO),
        _ => Duration::ZERO,
    };
    println!(
        "\nspread: (slowest − fastest sample) / median; ! over {:.0} %. Criterion figures written within {} s of each other{}.",
        SPREAD_FLAG * 100.0,
        span.as_secs(),
        if span > Duration::from_secs(600) {
            " (more than one run: rerun `cargo bench --bench cross_thread`)"
        } else {
            ""
        }
    );
    println!(
        "targets met: {} of {}{}",
        tally.met,
        tally.met + tally.not_met,
        if tally.unmeasured > 0 {
            format!(
                " ({} not measured: run `cargo bench --bench cross_thread` and `cargo bench --bench memory`)",
                tally.unmeasured
            )
        } else {
            String::new()
        }
    );
}
