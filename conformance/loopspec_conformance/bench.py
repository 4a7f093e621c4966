"""`loopspec-conformance bench`: what cross-thread submission costs in
asyncio-compatible loops, loopspec and tokio, measured in one run.

    loopspec-conformance bench --python PY3.13 --python PY3.15 \\
        --runner-cmd target/release/xloop_bench --json bench.json
    loopspec-conformance bench --smoke            # tiny sizes: does it run?

Two workloads (the W1 and W2 of `benches/cross_thread.rs`):

* W1: a loop runs forever in a thread of its own; one other thread submits
  N (default 200,000) counting callbacks with `call_soon_threadsafe`; the
  time from the first submit until the loop ran the last, per callback.
* W2: R (default 2,000) sequential
  `asyncio.run_coroutine_threadsafe(coro(), loop).result()` round trips from
  another thread, per round trip.

Each (interpreter, loop) pair runs in a child process of its own
(`bench_child`), with a timeout (the kit's rule: a tool that runs other
people's loops bounds everything); loopspec and tokio run in the Rust binary
given with `--runner-cmd` (`cargo build --release -p loopspec-check --bin
xloop_bench`), which prints the same JSON line. Every workload is measured
`--samples` times (default 5) after `--warmup` unmeasured runs (default 1);
a row shows the median with the lowest and highest sample, the spread
((max - min) / median), and the ratio of its median to loopspec's from the
same run. The children run one after another, never at once.

A loop that is not installed, or whose factory fails, is a row "not
available: <reason>"; a child that fails, hangs past `--timeout` or breaks a
bounded wait is a row "error: ..." and makes the exit status 1.

Output: the markdown table on stdout; `--json FILE` writes every sample.
"""

import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time

from . import harness, loops

# The Python loops the bench runs by default, by their loops.json names.
DEFAULT_LOOPS = ("asyncio", "uvloop", "rloop", "zuvloop")
# The loops of the Rust binary (--runner-cmd).
RUST_LOOPS = ("loopspec", "tokio")
SMOKE = {"n": 2_000, "r": 50, "samples": 1, "warmup": 0}


def add_arguments(ap):
    ap.add_argument("--python", action="append", default=[], metavar="PATH",
                    help="an interpreter to run the Python loops on, e.g. a venv's python "
                         "that has uvloop, rloop, zuvloop (repeatable; default: this one)")
    ap.add_argument("--loops", metavar="NAMES", default=",".join(DEFAULT_LOOPS),
                    help="comma-separated loops.json names (default: %s; an empty value: "
                         "none)" % ",".join(DEFAULT_LOOPS))
    ap.add_argument("--loop", action="append", default=[], metavar="[NAME=]MODULE:FACTORY",
                    help="another loop, by its factory (repeatable)")
    ap.add_argument("--runner-cmd", metavar="CMD",
                    help="the Rust binary xloop_bench: adds the loopspec and tokio rows")
    ap.add_argument("--n", type=int, default=200_000, help="W1: callbacks per sample "
                                                           "(default 200000)")
    ap.add_argument("--r", type=int, default=2_000, help="W2: round trips per sample "
                                                         "(default 2000)")
    ap.add_argument("--samples", type=int, default=5, help="measured runs of each workload "
                                                           "(default 5)")
    ap.add_argument("--warmup", type=int, default=1, help="unmeasured runs first (default 1)")
    ap.add_argument("--smoke", action="store_true",
                    help="N=2,000, R=50, one sample, no warm-up: checks that it runs")
    ap.add_argument("--timeout", type=float, default=300.0,
                    help="seconds per child process before it is killed (default 300)")
    ap.add_argument("--wait-timeout", type=float, default=120.0,
                    help="bound of each wait inside a child, in seconds (default 120)")
    ap.add_argument("--json", metavar="OUT", help="write every sample here")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress lines")


def python_loops(args):
    """[(name, factory)] of --loops and --loop."""
    chosen = []
    for name in [n.strip() for n in (args.loops or "").split(",") if n.strip()]:
        entry = loops.find(name)
        if not entry.get("factory"):
            raise SystemExit("bench: loop %r has no factory in loops.json" % name)
        chosen.append((entry["name"], entry["factory"]))
    for spec in args.loop:
        name, sep, factory = spec.partition("=")
        if not sep:
            name, factory = loops.name_for_factory(spec), spec
        chosen.append((name, factory))
    return chosen


def sizes(args):
    if args.smoke:
        return dict(SMOKE)
    return {"n": args.n, "r": args.r, "samples": args.samples, "warmup": args.warmup}


def size_arguments(s, wait_timeout):
    return ["--n", str(s["n"]), "--r", str(s["r"]), "--samples", str(s["samples"]),
            "--warmup", str(s["warmup"]), "--wait-timeout", str(wait_timeout)]


def run_child(cmd, timeout, row):
    """Runs one child; returns its JSON line, or `row` with an `error`."""
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                             env=harness.child_env(), stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return dict(row, error="killed at the timeout (%gs)" % timeout)
    except OSError as e:
        return dict(row, error="cannot start %s: %s" % (cmd[0], e))
    lines = [ln for ln in out.stdout.splitlines() if ln.strip().startswith("{")]
    try:
        line = json.loads(lines[-1])
    except (IndexError, ValueError):
        tail = (out.stderr or out.stdout).strip()[-500:]
        return dict(row, error="exit status %d, no result line%s"
                    % (out.returncode, ": " + tail if tail else ""))
    if out.returncode != 0 and "error" not in line:
        line["error"] = "exit status %d: %s" % (out.returncode, out.stderr.strip()[-500:])
    return line


def summarize(w):
    """Adds median, min, max and spread to a workload's samples."""
    s = w["samples"]
    med = statistics.median(s)
    w.update(median=med, min=min(s), max=max(s),
             spread=(max(s) - min(s)) / med if med else None)
    return w


def add_ratios(rows):
    base = next((r for r in rows if r["loop"] == "loopspec" and "w1" in r), None)
    for r in rows:
        for key in ("w1", "w2"):
            if key in r:
                b = base[key]["median"] if base else None
                r[key]["ratio_to_loopspec"] = r[key]["median"] / b if b else None


def cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def machine():
    return {"cpu": cpu_model(), "cpus": os.cpu_count(), "system": platform.platform(),
            "kit_python": "%d.%d.%d" % sys.version_info[:3]}


# ------------------------------------------------------------- the table ----

def fmt_ns(x):
    return "{:,.0f}".format(x)


def fmt_us(x):
    return "%.2f" % x if x < 10 else ("%.1f" % x if x < 100 else "{:,.0f}".format(x))


def cell(w, fmt):
    return "%s (%s–%s)" % (fmt(w["median"]), fmt(w["min"]), fmt(w["max"]))


def spread(w):
    return "–" if w.get("spread") is None else "%.0f%%" % (100 * w["spread"])


def ratio(w):
    r = w.get("ratio_to_loopspec")
    return "–" if r is None else ("%.2f" % r if r < 10 else "%.1f" % r)


def table(rows, s):
    out = ["| Loop | Version | Python | W1 ns per call, median (min–max) | W1 spread "
           "| W1 / loopspec | W2 µs per round trip, median (min–max) | W2 spread "
           "| W2 / loopspec |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        python = r.get("python") or r.get("implementation") or "–"
        head = "| %s | %s | %s |" % (r["loop"], r.get("loop_version") or "–", python)
        if r.get("error"):
            out.append(head + " error: %s | | | | | |" % one_line(r["error"]))
        elif not r.get("available"):
            out.append(head + " not available: %s | | | | | |" % one_line(r.get("reason")))
        else:
            w1, w2 = r["w1"], r["w2"]
            out.append(head + " %s | %s | %s | %s | %s | %s |" % (
                cell(w1, fmt_ns), spread(w1), ratio(w1), cell(w2, fmt_us), spread(w2),
                ratio(w2)))
    out.append("")
    out.append("W1: {:,} `call_soon_threadsafe` from one thread to a loop running in "
               "another, time per call until the loop ran the last. W2: {:,} sequential "
               "`run_coroutine_threadsafe(...).result()` round trips. Median of {} "
               "sample{} after {} warm-up run{} (lowest–highest); spread = (max − min) / "
               "median; ratios to loopspec's median in this run."
               .format(s["n"], s["r"], s["samples"], "" if s["samples"] == 1 else "s",
                       s["warmup"], "" if s["warmup"] == 1 else "s"))
    return "\n".join(out)


def one_line(text):
    return " ".join(str(text).split()).replace("|", "\\|")


# ------------------------------------------------------------------ main ----

def main(args):
    s = sizes(args)
    wait = min(args.wait_timeout, args.timeout)
    todo = []
    if args.runner_cmd:
        for name in RUST_LOOPS:
            cmd = shlex.split(args.runner_cmd) + ["--loop", name] + size_arguments(s, wait)
            todo.append((cmd, {"loop": name, "python": None, "implementation": "Rust"}))
    chosen = python_loops(args)
    for python in args.python or [sys.executable]:
        for name, factory in chosen:
            cmd = [python, "-m", "loopspec_conformance.bench_child", "--loop", name,
                   "--factory", factory] + size_arguments(s, wait)
            todo.append((cmd, {"loop": name, "python": python}))
    if not todo:
        print("bench: nothing to run (no loops and no --runner-cmd)", file=sys.stderr)
        return 2
    rows = []
    for cmd, row in todo:
        started = time.monotonic()
        r = run_child(cmd, args.timeout, row)
        for key in ("w1", "w2"):
            if key in r and r[key].get("samples"):
                summarize(r[key])
        rows.append(r)
        if not args.quiet:
            what = ("error: " + one_line(r["error"])[:200] if r.get("error") else
                    "not available" if not r.get("available") else "done")
            print("bench: %s on %s: %s (%.1fs)" % (r["loop"], r.get("python") or "Rust", what,
                                                  time.monotonic() - started),
                  file=sys.stderr, flush=True)
    add_ratios(rows)
    print(table(rows, s))
    if args.json:
        doc = {"bench": "cross-thread submission (W1, W2)",
               "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "machine": machine(), "sizes": s, "rows": rows}
        if os.path.dirname(args.json):
            os.makedirs(os.path.dirname(args.json), exist_ok=True)
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
    return 1 if any(r.get("error") for r in rows) else 0
