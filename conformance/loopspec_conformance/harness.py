"""The parent side of a run: one subprocess per scenario, with a timeout, and
the verdict from what it printed.

`run_scenario` never raises for a misbehaving runner: a hang is killed at the
timeout and reported (`timeout`), a crash or a malformed line is reported
(`error`), and the caller goes on with the next scenario. The verdict of a
scenario on Python minor V:

* every run is judged (`judge.judge`): its outcome must be in the allowed set
  for V — the scenario's hand-written `allowed` group for V if it has one,
  else the outcomes CPython showed when the scenario was recorded (`expect`)
  — and it must break no invariant;
* all requested runs must have happened (a poisoned or killed child fails);
* the expectations file turns fail into xfail and, strictly, pass into xpass.
"""

import json
import os
import queue
import subprocess
import sys
import threading
import time

from . import corpus, diffs, judge
from . import expectations as expect_mod
from .values import canonical

KIT_ROOT = os.path.dirname(corpus.PACKAGE_DIR)


def child_command(python=None, loop=None, adapter=None):
    """The command line of the Python runner for one scenario."""
    cmd = [python or sys.executable, "-m", "loopspec_conformance.child"]
    if adapter:
        cmd += ["--adapter", adapter]
    else:
        cmd += ["--loop", loop or "asyncio:new_event_loop"]
    return cmd


def child_env():
    """The child's environment: the kit importable, asyncio's debug mode,
    dev mode and warning options of the caller left out."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONASYNCIODEBUG", "PYTHONDEVMODE", "PYTHONWARNINGS", "PYTHONHOME")}
    env["PYTHONPATH"] = KIT_ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _reader(stream, q):
    for line in stream:
        q.put(line)
    q.put(None)


def spawn(cmd, request, timeout, env=None):
    """Runs `cmd`, writes the request line, reads JSON lines until `end`, EOF
    or the timeout. Returns (lines, problem, stderr tail); problem is None,
    "timeout" or an error message."""
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env or child_env())
    except OSError as e:
        return [], "cannot start %s: %s" % (cmd[0], e), ""
    q = queue.Queue()
    err = []
    readers = [threading.Thread(target=_reader, args=(proc.stdout, q), daemon=True),
               threading.Thread(target=lambda: err.append(proc.stderr.read()), daemon=True)]
    for r in readers:
        r.start()
    try:
        proc.stdin.write(json.dumps(request) + "\n")
        proc.stdin.close()
    except OSError:
        pass
    deadline = time.monotonic() + timeout
    lines, problem = [], None
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            problem = "timeout"
            break
        try:
            raw = q.get(timeout=left)
        except queue.Empty:
            problem = "timeout"
            break
        if raw is None:
            break
        raw = raw.strip()
        if not raw:
            continue
        try:
            obj = json.loads(raw)
        except ValueError:
            problem = "malformed line from the runner: %r" % raw[:200]
            break
        lines.append(obj)
        if obj.get("end"):
            break
    if problem == "timeout":
        proc.kill()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    for r in readers:
        r.join(5)
    for stream in (proc.stdout, proc.stderr):
        if not any(r.is_alive() for r in readers):
            stream.close()
    tail = (err[0] if err else "")[-3000:]
    if problem is None and not any(x.get("end") for x in lines):
        problem = "the runner ended without `end` (exit code %s)" % proc.returncode
    elif problem is not None and problem != "timeout":
        problem += " (exit code %s)" % proc.returncode
    return lines, problem, tail


def allowed_outcomes(entry, minor):
    """(outcomes, the minor they were recorded or stated for) allowed on
    `minor`, or (None, None) when nothing is recorded for it."""
    if corpus.kind_of(entry) == "trace":
        g, m = corpus.nearest_group(entry.get("expect"), minor)
        if g is None:
            return None, None
        return [{"events": g["events"], "final": g["final"]}], m
    g = corpus.group_for(entry.get("allowed"), minor)
    if g is not None:
        return g["outcomes"], minor
    g = corpus.group_for(entry.get("expect"), minor)
    if g is None:
        return None, None
    return [h["outcome"] for h in g["observed"]], minor


def judge_runs(entry, run_lines):
    """[(run index, outcome, violations, log)] of the runner's run lines."""
    out = []
    for line in run_lines:
        if "trace" in line:
            t = line["trace"]
            if "runner_error" in t:
                out.append((line["run"], None, ["runner error: %s" % t["runner_error"][-500:]], []))
            else:
                out.append((line["run"], {"events": t["events"], "final": t["final"]}, [], []))
            continue
        verdict = judge.judge(entry, line)
        out.append((line["run"], verdict["outcome"], verdict["violations"], line.get("log", [])))
    return out


def histogram(judged, allowed):
    """Outcomes with their counts, most frequent first; each says whether it
    is allowed and which invariants its runs broke."""
    keys = {canonical(a) for a in allowed or []}
    bins = {}
    for run, outcome, bad, _ in judged:
        k = canonical(outcome)
        b = bins.setdefault(k, {"outcome": outcome, "count": 0, "allowed": k in keys,
                                "violations": [], "first_run": run})
        b["count"] += 1
        for v in bad:
            if v not in b["violations"] and len(b["violations"]) < 5:
                b["violations"].append(v)
    return sorted(bins.values(), key=lambda b: (-b["count"], b["first_run"]))


def first_failure(judged, allowed):
    """The first offending run: its index, outcome, violations, log and the
    unified diff against the closest allowed outcome."""
    keys = {canonical(a) for a in allowed or []}
    for run, outcome, bad, log in judged:
        if bad or canonical(outcome) not in keys:
            diff = ""
            if canonical(outcome) not in keys and allowed:
                diff = diffs.unified(diffs.closest(allowed, outcome), outcome)
            return {"run": run, "outcome": outcome, "violations": bad, "diff": diff,
                    "log": log[:300]}
    return None


def run_scenario(entry, cmd, minor=None, repeat=200, timeout=120.0, wait_timeout=5.0,
                 scale=0.2, known=None, strict=True, env=None):
    """Runs one scenario through `cmd` and returns its result object (the
    `scenarios` item of the results file, SCHEMA.md)."""
    kind = corpus.kind_of(entry)
    n = 1 if kind == "trace" else int(entry.get("repeat", repeat))
    request = {"scenario": entry, "repeat": n, "wait_timeout": wait_timeout, "scale": scale}
    if minor:
        # The version a runner that models several (an external runner, run
        # with --python-minor) must model; the Python runner ignores it.
        request["python_minor"] = minor
    started = time.monotonic()
    lines, problem, stderr = spawn(cmd, request, timeout, env)
    duration = round(time.monotonic() - started, 3)
    hello = next((x["hello"] for x in lines if "hello" in x), {})
    minor = minor or corpus.minor_of(hello.get("python", corpus.this_minor()))
    result = {"id": entry["id"], "kind": kind, "rules": entry.get("rules", []),
              "title": entry.get("title", ""), "python_minor": minor, "requested": n,
              "duration": duration}
    if hello.get("loop_version"):
        result["loop_version"] = hello["loop_version"]
    allowed, compared_with = allowed_outcomes(entry, minor)
    result["compared_with"] = compared_with
    runs = [x for x in lines if "run" in x]
    try:
        judged = judge_runs(entry, runs)
    except judge.BadScenario as e:
        judged, problem = [], "bad scenario: %s" % e
    result["runs"] = len(judged)
    result["histogram"] = histogram(judged, allowed)
    failure = first_failure(judged, allowed) if allowed is not None else None
    stopped_by_a_failed_run = bool(judged) and bool(judged[-1][2])
    if problem is None and len(judged) < n and not stopped_by_a_failed_run:
        problem = "only %d of %d runs completed (a run left threads that could not be " \
                  "unstuck)" % (len(judged), n)
    if allowed is None and problem is None:
        result.update(status="skip", passed=None,
                      reason="nothing recorded for Python %s" % minor)
        return result
    passed = problem is None and failure is None
    if problem is not None:
        result["reason"] = "timeout" if problem == "timeout" else "error"
        result["problem"] = ("no result within %ss" % timeout) if problem == "timeout" else problem
        if stderr.strip():
            result["stderr"] = stderr
    elif failure is not None:
        result["reason"] = "invariant" if failure["violations"] else "outcome"
    result["failure"] = failure
    result["passed"] = passed
    item = expect_mod.lookup(known or {}, entry["id"], minor, hello.get("loop_version"))
    result["status"] = expect_mod.verdict(passed, item, strict)
    if item is not None:
        result["expectation"] = {k: item[k] for k in ("status", "reason", "link") if k in item}
    return result


def skip_result(entry, minor, reason):
    """The result of a scenario not run here, and why."""
    return {"id": entry["id"], "kind": corpus.kind_of(entry), "rules": entry.get("rules", []),
            "title": entry.get("title", ""), "python_minor": minor, "requested": 0, "runs": 0,
            "duration": 0.0, "histogram": [], "status": "skip", "passed": None,
            "reason": reason, "compared_with": None, "failure": None}


def crash_result(entry, minor, item):
    """The result of a scenario listed as CRASH: not run."""
    return {"id": entry["id"], "kind": corpus.kind_of(entry), "rules": entry.get("rules", []),
            "title": entry.get("title", ""), "python_minor": minor, "requested": 0, "runs": 0,
            "duration": 0.0, "histogram": [], "status": "xfail", "passed": False,
            "reason": "crash", "compared_with": None, "failure": None,
            "expectation": {k: item[k] for k in ("status", "reason", "link") if k in item}}
