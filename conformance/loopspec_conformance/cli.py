"""The `loopspec-conformance` command.

    loopspec-conformance run --loop uvloop:new_event_loop --json out.json
    loopspec-conformance run --adapter trio_asyncio -k XTHREAD --repeat 50
    loopspec-conformance record [--python PATH ...]
    loopspec-conformance report RESULTS.json ... [--out REPORT.md]
    loopspec-conformance matrix --python PATH ... --out DIR
    loopspec-conformance bench --python PATH ... --runner-cmd target/release/xloop_bench
    loopspec-conformance validate FILE.json ...
    loopspec-conformance list [-k WORDS]

Exit status of `run`: 0 when every scenario passed or failed as expected
(xfail); 1 on a failure, or on an XPASS unless --no-strict; 2 on bad usage.
"""

import argparse
import concurrent.futures
import json
import os
import shlex
import sys
import time

from . import __version__, corpus, harness, loops, results
from . import expectations as expect_mod


def add_run_arguments(ap):
    what = ap.add_argument_group("the loop under test (one of)")
    what.add_argument("--loop", metavar="MODULE:FACTORY",
                      help="an importable loop factory (default asyncio:new_event_loop)")
    what.add_argument("--adapter", metavar="FILE.py|NAME",
                      help="an adapter file defining new_event_loop(), or a built-in adapter")
    what.add_argument("--loop-name", metavar="NAME",
                      help="a loop of loops.json (its factory or adapter)")
    what.add_argument("--runner-cmd", metavar="CMD",
                      help="an external runner for threaded scenarios (FORMAT.md, Runner protocol)")
    what.add_argument("--trace-cmd", metavar="CMD",
                      help="an external runner for single-thread scenarios "
                           "(JSON lines in, traces out)")
    ap.add_argument("--name", metavar="NAME",
                    help="the loop's name in the results (default: from loops.json or the "
                         "factory; `external` with --runner-cmd)")
    ap.add_argument("--python", metavar="PATH",
                    help="the interpreter that runs the scenarios (default: this one)")
    ap.add_argument("--loop-version", metavar="V",
                    help="the loop's version, for a runner that does not report one")
    ap.add_argument("--python-minor", metavar="X.Y",
                    help="compare with this Python's recordings (default: the runner's own)")
    ap.add_argument("--expectations", metavar="NAME",
                    help="expectations/NAME.json (default: the loop's name)")
    ap.add_argument("--corpus", choices=["threaded", "trace", "all"], default="threaded",
                    help="threaded (default: threaded and fresh-process scenarios), trace "
                         "(single-thread), or all")
    ap.add_argument("-k", dest="keywords", metavar="WORDS",
                    help="only scenarios whose id or rules contain one of these "
                         "comma-separated words")
    ap.add_argument("--repeat", type=int, default=200,
                    help="runs per threaded scenario (default 200)")
    ap.add_argument("--fresh-repeat", type=int, default=1,
                    help="runs (each a new process) per fresh-process scenario (default 1)")
    ap.add_argument("--timeout", type=float, default=120.0,
                    help="seconds per scenario subprocess before it is killed (default 120)")
    ap.add_argument("--wait-timeout", type=float, default=5.0,
                    help="bound of each wait inside a run, in seconds (default 5)")
    ap.add_argument("--scale", type=float, default=0.2,
                    help="seconds per time unit of single-thread scenarios (default 0.2)")
    ap.add_argument("-j", "--jobs", type=int, default=1, help="scenarios run at once (default 1)")
    ap.add_argument("--no-strict", action="store_true",
                    help="an XPASS (a listed failure that passes) does not fail the run")
    ap.add_argument("--json", metavar="OUT", help="write the results here (SCHEMA.md)")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress lines")


def python_info(python):
    """Version, minor and implementation of the interpreter at `python`."""
    import subprocess
    code = ("import sys, platform; print('%d.%d.%d' % sys.version_info[:3]); "
            "print(platform.python_implementation())")
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise SystemExit("cannot run %s: %s" % (python, out.stderr.strip()[-500:]))
    version, impl = out.stdout.split()
    return {"version": version, "minor": corpus.minor_of(version), "implementation": impl,
            "executable": None}


def resolve_loop(args):
    """(name, factory, adapter) from --loop / --adapter / --loop-name."""
    if args.loop_name:
        entry = loops.find(args.loop_name)
        return entry["name"], entry.get("factory"), entry.get("adapter")
    if args.adapter:
        name = os.path.splitext(os.path.basename(args.adapter))[0].replace("_", "-")
        return name, None, args.adapter
    factory = args.loop or "asyncio:new_event_loop"
    return loops.name_for_factory(factory), factory, None


def status_line(i, n, r):
    extra = ""
    if r["status"] in ("fail", "xpass", "xfail"):
        extra = " (%s)" % r.get("reason", "passes")
    return "[%d/%d] %-62s %-5s %4d runs %6.2fs%s" % (i, n, r["id"], r["status"], r["runs"],
                                                    r["duration"], extra)


def describe_failure(r):
    """The human report of a failed scenario: why, the histogram, the diff."""
    lines = ["", "=== %s: %s (%s)" % (r["id"], r["status"].upper(), r.get("reason", "")),
             "rules: %s; compared with CPython %s" % (", ".join(r["rules"]),
                                                      r.get("compared_with"))]
    if r.get("problem"):
        lines.append("problem: " + r["problem"])
    if r.get("expectation"):
        lines.append("listed as: %s" % json.dumps(r["expectation"]))
    for b in r["histogram"][:6]:
        mark = "allowed" if b["allowed"] else "NOT ALLOWED"
        lines.append("  %4d x %s%s" % (b["count"], mark,
                                       "; broke: " + "; ".join(b["violations"][:2])
                                       if b.get("violations") else ""))
    f = r.get("failure")
    if f:
        lines.append("first offending run: #%d" % f["run"])
        for v in f["violations"][:5]:
            lines.append("  violation: " + v)
        if f["diff"]:
            lines.append(f["diff"])
    if r.get("stderr"):
        lines.append("stderr (tail):\n" + r["stderr"][-1500:])
    return "\n".join(lines)


def cmd_run(args):
    name, factory, adapter = resolve_loop(args)
    if getattr(args, "name", None):
        name = args.name
    elif args.runner_cmd and not args.loop_name:
        name = "external"
    if args.runner_cmd and not args.python_minor:
        print("--runner-cmd needs --python-minor: the CPython version whose recordings "
              "the runner's loop is compared with", file=sys.stderr)
        return 2
    kinds = {"threaded": ("threaded", "fresh"), "trace": ("trace",),
             "all": ("threaded", "fresh", "trace")}[args.corpus]
    corpora = ("threaded", "trace") if args.corpus == "all" else (
        ("trace",) if args.corpus == "trace" else ("threaded",))
    entries = corpus.select(corpus.load(corpora), args.keywords, kinds)
    python = args.python or sys.executable
    info = python_info(python)
    minor = args.python_minor or info["minor"]
    if args.runner_cmd or (args.trace_cmd and args.python_minor):
        # An external runner models the minor it is told (the request's
        # python_minor, or the trace runner's profile): the results are about
        # that version, not about the interpreter that runs the kit.
        info = {"version": minor, "minor": minor, "implementation": "modelled by the runner",
                "executable": None}
    known = expect_mod.load(args.expectations or name)
    cmd = harness.child_command(python, factory, adapter)
    todo, done = [], []
    for path, e in entries:
        if not corpus.applies(e, minor):
            continue
        item = expect_mod.lookup(known, e["id"], minor)
        if item is not None and item.get("status") == "CRASH":
            done.append(harness.crash_result(e, minor, item))
        elif (corpus.kind_of(e) == "trace" and not e.get("realtime") and not args.trace_cmd
              and factory != "virtual"):
            done.append(harness.skip_result(e, minor, "events not well separated in time "
                                                      "(a real clock cannot reproduce the trace)"))
        else:
            todo.append(e)

    def one(e):
        kind = corpus.kind_of(e)
        c = cmd
        if kind == "trace" and args.trace_cmd:
            return trace_via_external(e, args, minor, known)
        if kind != "trace" and args.runner_cmd:
            c = shlex.split(args.runner_cmd)
        repeat = args.fresh_repeat if kind == "fresh" else args.repeat
        if kind == "fresh":
            return run_fresh(e, c, minor, repeat, args, known)
        if kind == "trace":
            e = shorten_horizon(e, minor)
        return harness.run_scenario(e, c, minor, repeat=repeat, timeout=args.timeout,
                                    wait_timeout=args.wait_timeout, scale=args.scale,
                                    known=known, strict=not args.no_strict)

    started = time.monotonic()
    n = len(todo)
    with concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as pool:
        futures = [pool.submit(one, e) for e in todo]
        for i, fut in enumerate(concurrent.futures.as_completed(futures), 1):
            r = fut.result()
            done.append(r)
            if not args.quiet:
                print(status_line(i, n, r), file=sys.stderr, flush=True)
    order = {e["id"]: i for i, (_, e) in enumerate(entries)}
    done.sort(key=lambda r: order.get(r["id"], 0))
    for r in done:
        if r["status"] in ("fail", "xpass"):
            print(describe_failure(r), file=sys.stderr)
    loop_info = {"name": name, "factory": factory, "adapter": adapter,
                 "runner": args.runner_cmd or args.trace_cmd,
                 "version": loop_version(done, name, info) or args.loop_version}
    info["executable"] = None
    options = {"repeat": args.repeat, "fresh_repeat": args.fresh_repeat, "corpus": args.corpus,
               "keywords": args.keywords, "timeout": args.timeout,
               "wait_timeout": args.wait_timeout, "strict": not args.no_strict,
               "python_minor": minor}
    doc = results.document(loop_info, info, done, options)
    s = doc["summary"]
    print("%s on Python %s: %d passed, %d failed, %d xfail, %d xpass, %d skipped in %.1fs"
          % (name, info["version"], s["pass"], s["fail"], s["xfail"], s["xpass"], s["skip"],
             time.monotonic() - started), file=sys.stderr)
    if args.json:
        results.write(args.json, doc)
    return 1 if results.failed(doc, not args.no_strict) else 0


def loop_version(done, name, info):
    """The loop's version as the runners reported it (asyncio: Python's)."""
    for r in done:
        if r.get("loop_version"):
            return r["loop_version"]
    return info["version"] if name == "asyncio" else None


def run_fresh(entry, cmd, minor, repeat, args, known):
    """A fresh-process scenario: `repeat` children of one run each, merged."""
    merged = None
    for _ in range(max(1, repeat)):
        r = harness.run_scenario(entry, cmd, minor, repeat=1, timeout=min(args.timeout, 60.0),
                                 wait_timeout=args.wait_timeout, known=known,
                                 strict=not args.no_strict)
        if merged is None:
            merged = r
            continue
        merged["duration"] = round(merged["duration"] + r["duration"], 3)
        merged["runs"] += r["runs"]
        merged["requested"] += r["requested"]
        for b in r["histogram"]:
            same = next((m for m in merged["histogram"]
                         if json.dumps(m["outcome"], sort_keys=True)
                         == json.dumps(b["outcome"], sort_keys=True)), None)
            if same:
                same["count"] += b["count"]
            else:
                merged["histogram"].append(dict(b, first_run=merged["runs"] - 1))
        if r["status"] in ("fail", "xpass") and merged["status"] not in ("fail", "xpass"):
            hist = merged["histogram"]
            merged.update(r)
            merged["histogram"] = hist
    return merged


def shorten_horizon(entry, minor):
    """Real time: a horizon the expected trace never reaches is moved to 5
    units after its last event, so a loop that hangs costs seconds."""
    g, _ = corpus.nearest_group(entry.get("expect"), minor)
    sc = dict(entry["scenario"])
    if g and sc.get("horizon", 100) is not None and not any(
            e["ev"] == "horizon" for e in g["events"]):
        last = max([e["t"] for e in g["events"]] + [0])
        sc["horizon"] = min(sc.get("horizon", 100), int(last) + 5)
    return dict(entry, scenario=sc)


def trace_via_external(entry, args, minor, known):
    """A single-thread scenario through an external trace runner (format 1
    contract: scenario lines in, trace lines out), one process each."""
    import subprocess
    started = time.monotonic()
    line = json.dumps(dict(entry["scenario"], id=entry["id"])) + "\n"
    try:
        out = subprocess.run(shlex.split(args.trace_cmd), input=line, capture_output=True,
                             text=True, timeout=args.timeout)
        text = out.stdout.strip().splitlines()
        trace = json.loads(text[0]) if text else {"runner_error": out.stderr[-2000:]}
    except subprocess.TimeoutExpired:
        trace = {"runner_error": "timeout"}
    lines = [{"run": 0, "trace": trace}]
    allowed, compared = harness.allowed_outcomes(entry, minor)
    judged = harness.judge_runs(entry, lines)
    r = {"id": entry["id"], "kind": "trace", "rules": entry.get("rules", []),
         "title": entry.get("title", ""), "python_minor": minor, "requested": 1,
         "runs": 1, "duration": round(time.monotonic() - started, 3),
         "compared_with": compared, "histogram": harness.histogram(judged, allowed)}
    if allowed is None:
        r.update(status="skip", passed=None, reason="nothing recorded for Python %s" % minor)
        return r
    failure = harness.first_failure(judged, allowed)
    r["failure"] = failure
    r["passed"] = failure is None
    if failure:
        r["reason"] = "error" if failure["violations"] else "outcome"
    item = expect_mod.lookup(known, entry["id"], minor)
    r["status"] = expect_mod.verdict(r["passed"], item, not args.no_strict)
    if item:
        r["expectation"] = {k: item[k] for k in ("status", "reason", "link") if k in item}
    return r


def cmd_validate(args):
    from . import jsonschema
    bad = 0
    for path in args.files:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        schema = "scenario.schema.json" if "program" in doc else "results.schema.json"
        errors = jsonschema.validate(doc, jsonschema.load_schema(schema))
        for e in errors:
            print("%s: %s" % (path, e))
        bad += bool(errors)
        if not errors:
            print("%s: valid (%s)" % (path, schema))
    return 1 if bad else 0


def cmd_list(args):
    for path, e in corpus.select(corpus.load(("threaded", "trace")), args.keywords):
        print("%-8s %-62s %s" % (corpus.kind_of(e), e["id"], ",".join(e.get("rules", []))))
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(prog="loopspec-conformance",
                                 description="Checks how an asyncio-compatible event loop "
                                             "behaves across threads.")
    ap.add_argument("--version", action="version", version="%(prog)s " + __version__)
    sub = ap.add_subparsers(dest="command", required=True)
    add_run_arguments(sub.add_parser("run", help="run the corpus on one loop"))
    from . import bench, coverage, matrix, record, report
    record.add_arguments(sub.add_parser("record", help="record expectations from CPythons"))
    report.add_arguments(sub.add_parser("report", help="write REPORT.md from results files"))
    matrix.add_arguments(sub.add_parser("matrix", help="run every loop of loops.json on "
                                                        "every Python given"))
    coverage.add_arguments(sub.add_parser("coverage", help="write COVERAGE.md from SPEC.md "
                                                            "and the corpus"))
    bench.add_arguments(sub.add_parser("bench", help="time cross-thread submission (W1, W2) "
                                                     "on Python's loops, loopspec and tokio"))
    v = sub.add_parser("validate", help="check results or scenario files against their schema")
    v.add_argument("files", nargs="+")
    ls = sub.add_parser("list", help="list the scenarios")
    ls.add_argument("-k", dest="keywords")
    args = ap.parse_args(argv)
    handlers = {"run": cmd_run, "record": record.main, "report": report.main,
                "matrix": matrix.main, "coverage": coverage.main, "validate": cmd_validate,
                "list": cmd_list, "bench": bench.main}
    return handlers[args.command](args)
