//! One screen of ratios from the last `cargo bench --bench cross_thread`:
//! loopspec against its peers, measured in the same run, next to the
//! targets of the benchmark issue.
//!
//! `cargo bench --bench cross_thread && cargo run --example bench_summary`
//! (reads `$CARGO_TARGET_DIR/criterion`, default `target/criterion`).

use std::path::{Path, PathBuf};

/// Median time per element, in nanoseconds, of one criterion benchmark.
fn per_element(root: &Path, group: &str, bench: &str) -> Option<f64> {
    let dir = root.join(group).join(bench).join("new");
    let estimates: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("estimates.json")).ok()?).ok()?;
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("benchmark.json")).ok()?).ok()?;
    let median = estimates["median"]["point_estimate"].as_f64()?;
    let elements = meta["throughput"]["Elements"].as_f64().unwrap_or(1.0);
    Some(median / elements)
}

struct Row {
    what: &'static str,
    group: &'static str,
    ours: &'static str,
    peer: &'static str,
    target: Option<f64>,
}

fn main() {
    let root = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"))
        .join("criterion");
    let rows = [
        Row {
            what: "W1 burst, idle loop vs std mpsc",
            group: "W1_burst",
            ours: "loopspec_idle",
            peer: "std_mpsc",
            target: Some(1.2),
        },
        Row {
            what: "W1 burst, idle loop vs tokio spawn",
            group: "W1_burst",
            ours: "loopspec_idle",
            peer: "tokio_spawn",
            target: Some(0.3),
        },
        Row {
            what: "W1 burst, busy loop vs std mpsc",
            group: "W1_burst",
            ours: "loopspec_busy",
            peer: "std_mpsc",
            target: None,
        },
        Row {
            what: "W2 round trip, pinned, vs park/unpark",
            group: "W2_round_trip_pinned",
            ours: "loopspec",
            peer: "std_park_unpark",
            target: Some(1.3),
        },
        Row {
            what: "W2 round trip, pinned, vs tokio",
            group: "W2_round_trip_pinned",
            ours: "loopspec",
            peer: "tokio_spawn",
            target: Some(1.0),
        },
        Row {
            what: "W2 pinned, Send coroutine vs closure form",
            group: "W2_round_trip_pinned",
            ours: "loopspec_send",
            peer: "loopspec",
            target: None,
        },
        Row {
            what: "W2 round trip, unpinned, vs park/unpark",
            group: "W2_round_trip",
            ours: "loopspec",
            peer: "std_park_unpark",
            target: None,
        },
        Row {
            what: "W3 fan-in (2 producers) vs std mpsc",
            group: "W3_fan_in",
            ours: "loopspec_idle",
            peer: "std_mpsc",
            target: Some(1.5),
        },
        Row {
            what: "W4 gather of 100k tasks vs tokio",
            group: "W4_gather_wait",
            ours: "loopspec/gather",
            peer: "tokio/join_all",
            target: Some(0.7),
        },
        Row {
            what: "W4 wait on 100k tasks vs tokio",
            group: "W4_gather_wait",
            ours: "loopspec/wait",
            peer: "tokio/join_all",
            target: Some(0.7),
        },
    ];
    println!(
        "{:<42} {:>12} {:>12} {:>7} {:>8}",
        "workload", "loopspec", "peer", "ratio", "target"
    );
    let mut missing = false;
    for r in rows {
        let ours = per_element(&root, r.group, r.ours);
        let peer = per_element(&root, r.group, r.peer);
        let (Some(ours), Some(peer)) = (ours, peer) else {
            println!("{:<42} (not measured)", r.what);
            missing = true;
            continue;
        };
        let ratio = ours / peer;
        let target = match r.target {
            Some(t) if ratio <= t => format!("<= {t} ok"),
            Some(t) => format!("<= {t} MISS"),
            None => String::new(),
        };
        println!(
            "{:<42} {:>9.0} ns {:>9.0} ns {:>7.2} {:>8}",
            r.what, ours, peer, ratio, target
        );
    }
    if missing {
        println!("\nrun `cargo bench --bench cross_thread` first");
    }
}
