//! loopspec's runner of threaded conformance scenarios (format 2 of
//! `conformance/FORMAT.md`), speaking the kit's runner protocol: one process
//! per scenario reads one request line on stdin and writes a `hello` line,
//! one `{"run": k, "log": [...], "poisoned": ...}` line per run, and
//! `{"end": true}`.
//!
//! ```sh
//! cargo build --release -p loopspec-check --bin conformance_threaded
//! PYTHONPATH=conformance python3 -m loopspec_conformance run \
//!     --runner-cmd target/release/conformance_threaded \
//!     --python-minor 3.13 --name loopspec --timeout 600 \
//!     --json target/conformance/results/loopspec-3.13.json
//! ```
//!
//! (`--timeout 600`: 200 runs of `xthread-11-zero-delay-timer-runs-under-a-flood`
//! take about 100 s, over the kit's default of 120 s per scenario on a busy
//! 2-core machine: loopspec's flooders make their 900,000 submissions a run.)
//!
//! The Python minor to model comes from the request's `python_minor` (the
//! kit sends the `--python-minor` it was given), else from `--python X.Y`
//! on this command line; its profile is `Profile::for_python`. Without
//! either, every run is a runner error. The interpreter is
//! `loopspec_check::conformance::threaded`.

use loopspec_check::conformance::threaded;
use serde_json::{Value, json};
use std::io::{BufRead, Write};

/// Writes one JSON line and flushes; a closed stdout (the kit killed us)
/// ends the process quietly.
fn emit(v: &Value) {
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{v}").and_then(|()| out.flush()).is_err() {
        std::process::exit(0);
    }
}

fn usage() -> ! {
    eprintln!(
        "usage: conformance_threaded [--python 3.11|3.12|3.13|3.14|3.15] < request.json\n\
         (one request line: {{\"scenario\": ..., \"repeat\": N, \"wait_timeout\": s, \
         \"python_minor\": \"3.13\"}})"
    );
    std::process::exit(2)
}

fn main() {
    let mut cli_minor: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--python" | "--python-minor" => {
                cli_minor = Some(args.next().unwrap_or_else(|| usage()))
            }
            "-h" | "--help" => usage(),
            _ => usage(),
        }
    }
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    let request: Result<Value, String> = match read {
        Ok(0) => Err("no request line on stdin".into()),
        Ok(_) => serde_json::from_str(&line).map_err(|e| format!("the request is not JSON: {e}")),
        Err(e) => Err(format!("cannot read the request: {e}")),
    };
    let minor = request
        .as_ref()
        .ok()
        .and_then(|r| r.get("python_minor"))
        .and_then(Value::as_str)
        .map(String::from)
        .or(cli_minor);
    let wait_timeout = request
        .as_ref()
        .ok()
        .and_then(|r| r.get("wait_timeout"))
        .and_then(Value::as_f64)
        .unwrap_or(threaded::DEFAULT_WAIT_TIMEOUT);
    let opts = match &minor {
        Some(m) => threaded::Options::for_minor(m, wait_timeout),
        None => Err(
            "no Python minor to model: the request has no python_minor and no \
                     --python X.Y was given"
                .into(),
        ),
    };
    emit(&json!({"hello": {
        "python": opts.as_ref().map_or_else(|_| minor.clone().unwrap_or_default(), |o| o.minor.clone()),
        "loop": "loopspec",
        "loop_version": env!("CARGO_PKG_VERSION"),
        "profile": opts.as_ref().map_or(Value::Null, |o| json!(format!("{:?}", o.profile))),
        "pid": std::process::id(),
    }}));
    let problem = match (&request, &opts) {
        (Err(e), _) | (_, Err(e)) => Some(e.clone()),
        (Ok(r), Ok(_)) => match r.get("scenario") {
            Some(s) if s.get("format").and_then(Value::as_u64) == Some(2) => None,
            Some(_) => Some("this runner runs format-2 (threaded) scenarios only".into()),
            None => Some("the request has no scenario".into()),
        },
    };
    if let Some(e) = problem {
        let mut obs = threaded::Observation::error(e).to_json();
        obs["run"] = json!(0);
        emit(&obs);
        emit(&json!({"end": true, "poisoned": false}));
        std::process::exit(0);
    }
    let (Ok(request), Ok(opts)) = (request, opts) else {
        unreachable!("checked above")
    };
    let repeat = request
        .get("repeat")
        .and_then(Value::as_u64)
        .unwrap_or(1)
        .max(1) as usize;
    let poisoned = threaded::run_repeatedly(&request["scenario"], &opts, repeat, |k, obs| {
        let mut line = obs.to_json();
        line["run"] = json!(k);
        emit(&line);
    });
    emit(&json!({"end": true, "poisoned": poisoned}));
    // Threads a poisoned run left behind must not keep the process alive.
    std::process::exit(0);
}
