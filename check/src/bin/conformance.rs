//! The conformance runner as a command: reads scenarios (conformance/FORMAT.md)
//! as JSON lines on stdin, runs each on loopspec's virtual clock, and prints
//! one trace per line on stdout.
//!
//! ```sh
//! cargo run -p loopspec-check --bin conformance -- --profile 3.12 < scenarios.jsonl
//! ```
//!
//! A line may also be a corpus file's object (conformance/scenarios/*.json,
//! one per line): its `scenario` runs under its `id`. `--profile` names the
//! Python version whose rules the loop follows (3.11, the default, 3.12,
//! 3.13, 3.14 or 3.15).

use loopspec_check::conformance::single as conformance;
use std::io::{BufRead, Write};

fn main() {
    let mut profile = loopspec::Profile::Py311;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--profile" => {
                let v = args.next().unwrap_or_default();
                profile = conformance::profile_for(&v).unwrap_or_else(|| {
                    eprintln!("unknown profile {v:?}: use 3.11, 3.12, 3.13, 3.14 or 3.15");
                    std::process::exit(2);
                });
            }
            "-h" | "--help" => {
                println!(
                    "usage: conformance [--profile 3.11|3.12|3.13|3.14|3.15] < scenarios.jsonl"
                );
                return;
            }
            other => {
                eprintln!("unknown argument {other:?}");
                std::process::exit(2);
            }
        }
    }
    // Scenario callbacks that raise report to the loop's handler; the
    // default handler of a scenario that asks for it writes to stderr.
    let stdin = std::io::stdin();
    let mut out = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let line = line.expect("read stdin");
        if line.trim().is_empty() {
            continue;
        }
        let trace = match conformance::parse_line(&line) {
            Ok(sc) => conformance::run(&sc, profile),
            Err(e) => serde_json::json!({"id": null, "runner_error": e}),
        };
        writeln!(out, "{trace}").expect("write stdout");
        out.flush().expect("flush stdout");
    }
}
