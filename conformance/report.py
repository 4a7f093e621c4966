#!/usr/bin/env python3
"""Runs the conformance corpus on every implementation and writes REPORT.md.

    python3 conformance/report.py            # everything found, writes conformance/REPORT.md
    python3 conformance/report.py --check    # also exit 1 on an unexpected result

Implementations:

* asyncio 3.10-3.13: CPython's asyncio on the virtual clock
  (conformance/python/runner.py), one column per interpreter found;
* asyncio (real time): the stock asyncio loop of the first 3.11 found, in
  real time, on the scenarios marked "realtime";
* uvloop, rloop: in real time, pip-installed into a virtual environment
  (--venv, default target/conformance-venv; never committed);
* loopspec: `cargo run --example conformance`, profiles 3.11, 3.12, 3.13.

Each column compares an implementation with the trace CPython recorded for
its Python version. conformance/expectations/<implementation>.json lists its
known divergences: they show as "xfail" (a known failure is recorded, not
deleted, as in web-platform-tests); a listed divergence that passes shows as
"XPASS", an unlisted one as "FAIL".
"""

import argparse
import json
import os
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "python"))
import common  # noqa: E402

AREAS = ["STOP", "SCHED", "CLOCK", "XTHREAD", "FUT", "TASK", "GATHER", "WAIT", "WAITFOR", "ASCOMP"]


def load_expectations(name):
    path = os.path.join(HERE, "expectations", name + ".json")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        data = json.load(f)
    out = {}
    for item in data.get("failures", []):
        out[item["scenario"]] = item
    return out


def known(expectations, scenario_id, minor):
    item = expectations.get(scenario_id)
    if item and (not item.get("python") or minor in item["python"]):
        return item
    return None


def expectation_for(entry, minor):
    for x in entry.get("expect", []):
        if minor in x["python"]:
            return x
    return None


class Impl:
    """A column of the report."""

    def __init__(self, key, label, expectations, minor, cmd, realtime=False, version=""):
        self.key = key
        self.label = label
        self.expectations = load_expectations(expectations)
        self.exp_name = expectations
        self.minor = minor
        self.cmd = cmd
        self.realtime = realtime
        self.version = version
        self.results = {}
        self.retried = []

    def run(self, corpus, retries=0):
        todo = []
        for _, e in corpus:
            if not common.applies(e, self.minor) or expectation_for(e, self.minor) is None:
                self.results[e["id"]] = ("n/a", "no trace recorded for %s" % self.minor)
            elif self.realtime and not e.get("realtime"):
                self.results[e["id"]] = ("n/a", "events not well separated in time")
            else:
                k = known(self.expectations, e["id"], self.minor)
                if k and k.get("status") == "CRASH":
                    self.results[e["id"]] = ("crash", k.get("reason", ""))
                else:
                    todo.append(e)
        if not todo:
            return
        if self.realtime:
            todo = [shorten_horizon(e, self.minor) for e in todo]
        traces = common.run_lines(self.cmd, todo)
        for e, t in zip(todo, traces):
            ok = common.matches(expectation_for(e, self.minor), t)
            k = known(self.expectations, e["id"], self.minor)
            # A real clock under load can blur time units: an unexpected
            # failure in real time is run again before it counts.
            for _ in range(retries if self.realtime and not ok and not k else 0):
                t = common.run_lines(self.cmd, [e])[0]
                ok = common.matches(expectation_for(e, self.minor), t)
                if ok:
                    self.retried.append(e["id"])
                    break
            if ok:
                self.results[e["id"]] = ("XPASS", "listed as a known failure") if k else ("pass", "")
            else:
                why = t.get("runner_error", "trace differs")[-300:]
                self.results[e["id"]] = ("xfail", k.get("reason", "")) if k else ("FAIL", why)

    def counts(self):
        c = {}
        for status, _ in self.results.values():
            c[status] = c.get(status, 0) + 1
        return c


def shorten_horizon(entry, minor):
    """For real time: a horizon the expected trace never reaches is moved to
    5 units after its last event, so a loop that hangs costs seconds, not
    the default 100 units."""
    exp = expectation_for(entry, minor)
    sc = dict(entry["scenario"])
    if sc.get("horizon", 100) is not None and not any(e["ev"] == "horizon" for e in exp["events"]):
        last = max([e["t"] for e in exp["events"]] + [0])
        sc["horizon"] = min(sc.get("horizon", 100), int(last) + 5)
    return dict(entry, scenario=sc)


def ensure_venv(path, python):
    """A virtual environment with uvloop and rloop; returns its python."""
    exe = os.path.join(path, "bin", "python")
    if not os.path.exists(exe):
        print("creating %s" % path, file=sys.stderr)
        subprocess.run([python, "-m", "venv", path], check=True)
    for pkg in ("uvloop", "rloop"):
        probe = subprocess.run([exe, "-c", "import %s" % pkg], capture_output=True)
        if probe.returncode != 0:
            print("installing %s into %s" % (pkg, path), file=sys.stderr)
            subprocess.run([exe, "-m", "pip", "install", "-q", pkg], check=False)
    return exe


def package_version(exe, pkg):
    out = subprocess.run([exe, "-c", "import importlib.metadata as m; print(m.version(%r))" % pkg],
                         capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else None


def cell(status):
    return {"pass": "pass", "FAIL": "**FAIL**", "xfail": "xfail", "XPASS": "**XPASS**",
            "crash": "crash", "n/a": "–"}[status]


def rule_key(rule):
    area, _, n = rule.partition("-")
    return (AREAS.index(area) if area in AREAS else len(AREAS), area, int(n) if n.isdigit() else 0)


def write_report(path, corpus, impls, pythons):
    lines = []
    w = lines.append
    w("# Conformance report")
    w("")
    w("Generated by `python3 conformance/report.py` from the corpus in "
      "[`scenarios/`](scenarios/) (%d scenarios); do not edit by hand. "
      "How to read it and how to add an implementation: [README.md](README.md); "
      "the format: [FORMAT.md](FORMAT.md)." % len(corpus))
    w("")
    w("Each column runs the scenarios on one implementation and compares the trace with the one "
      "CPython recorded for the same Python version. `pass`: the same trace. `xfail`: a known "
      "divergence, listed with its reason in `expectations/<implementation>.json`. **FAIL**: an "
      "unexpected divergence. **XPASS**: listed as a divergence but passes (remove the entry). "
      "`crash`: a known crash, not run. `–`: not run (no trace recorded for that version, or, for "
      "real-time loops, events not well separated in time).")
    w("")
    w("## Summary")
    w("")
    w("| Implementation | Version | Clock | Compared with | pass | xfail | FAIL | XPASS | crash | not run |")
    w("|---|---|---|---|---|---|---|---|---|---|")
    for im in impls:
        c = im.counts()
        w("| %s | %s | %s | CPython %s traces | %d | %d | %d | %d | %d | %d |" % (
            im.label, im.version, "real time" if im.realtime else "virtual", im.minor,
            c.get("pass", 0), c.get("xfail", 0), c.get("FAIL", 0), c.get("XPASS", 0),
            c.get("crash", 0), c.get("n/a", 0)))
    w("")
    w("CPython interpreters found: %s." % ", ".join(v for _, v in pythons.values()))
    retried = ["%s: %s" % (im.label, ", ".join("`%s`" % r for r in im.retried))
               for im in impls if im.retried]
    if retried:
        w("")
        w("Real-time scenarios that passed only when run again (time units blurred by load): "
          + "; ".join(retried) + ".")
    w("")
    w("## Results by rule")
    w("")
    w("| Rule | Scenario | " + " | ".join(im.label for im in impls) + " |")
    w("|---|---|" + "---|" * len(impls))
    rows = []
    for _, e in corpus:
        for r in e["rules"]:
            rows.append((rule_key(r), r, e["id"]))
    for _, r, sid in sorted(rows):
        w("| %s | [%s](scenarios/%s.json) | %s |" % (
            r, sid, sid, " | ".join(cell(im.results[sid][0]) for im in impls)))
    w("")
    w("## Divergences")
    w("")
    any_div = False
    for im in impls:
        div = [(sid, st, why) for sid, (st, why) in sorted(im.results.items())
               if st in ("xfail", "FAIL", "XPASS", "crash")]
        if not div:
            continue
        any_div = True
        w("### %s" % im.label)
        w("")
        for sid, st, why in div:
            w("* `%s` — %s: %s" % (sid, st, " ".join(why.split())))
        w("")
    if not any_div:
        w("None.")
        w("")
    with open(path, "w") as f:
        f.write("\n".join(lines))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(HERE, "REPORT.md"))
    ap.add_argument("--venv", default=os.path.join(common.ROOT, "target", "conformance-venv"),
                    help="virtual environment for uvloop and rloop")
    ap.add_argument("--no-install", action="store_true",
                    help="do not create the venv or pip-install; skip what is missing")
    ap.add_argument("--no-loopspec", action="store_true", help="skip the loopspec columns")
    ap.add_argument("--scale", type=float, default=0.2, help="seconds per time unit in real time")
    ap.add_argument("--retries", type=int, default=2,
                    help="runs again of a real-time scenario that fails unexpectedly (default 2)")
    ap.add_argument("--check", action="store_true",
                    help="exit 1 if any result is unexpected (FAIL or XPASS)")
    args = ap.parse_args(argv)

    corpus = common.load_corpus()
    pythons = common.find_pythons()
    if not pythons:
        print("no CPython 3.10-3.13 found", file=sys.stderr)
        return 1
    impls = []
    for minor, (exe, full) in pythons.items():
        impls.append(Impl("asyncio-" + minor, "asyncio %s" % minor, "asyncio", minor,
                          [exe, common.RUNNER], version=full))
    base_minor = "3.11" if "3.11" in pythons else list(pythons)[0]
    base_exe, base_full = pythons[base_minor]
    rt = ["--loop", None, "--scale", str(args.scale)]
    impls.append(Impl("asyncio-rt", "asyncio (real time)", "asyncio", base_minor,
                      [base_exe, common.RUNNER] + ["--loop", "asyncio", "--scale", str(args.scale)],
                      realtime=True, version=base_full))
    vexe = None
    if not args.no_install:
        try:
            vexe = ensure_venv(args.venv, base_exe)
        except (OSError, subprocess.CalledProcessError) as e:
            print("no venv for uvloop/rloop: %s" % e, file=sys.stderr)
    elif os.path.exists(os.path.join(args.venv, "bin", "python")):
        vexe = os.path.join(args.venv, "bin", "python")
    for pkg in ("uvloop", "rloop"):
        ver = package_version(vexe, pkg) if vexe else None
        if not ver:
            print("%s not available: skipped" % pkg, file=sys.stderr)
            continue
        cmd = [vexe, common.RUNNER] + [rt[0], pkg] + rt[2:]
        impls.append(Impl(pkg, pkg, pkg, base_minor, cmd, realtime=True, version=ver))
    if not args.no_loopspec:
        subprocess.run(["cargo", "build", "-q", "--example", "conformance"], cwd=common.ROOT,
                       check=True)
        for minor in ("3.11", "3.12", "3.13"):
            cmd = ["cargo", "run", "-q", "--example", "conformance", "--", "--profile", minor]
            impls.append(Impl("loopspec-" + minor, "loopspec %s" % minor, "loopspec", minor,
                              cmd, version="profile Py%s" % minor.replace(".", "")))
    cwd = os.getcwd()
    os.chdir(common.ROOT)
    try:
        for im in impls:
            print("running %s" % im.label, file=sys.stderr)
            im.run(corpus, args.retries)
    finally:
        os.chdir(cwd)
    write_report(args.out, corpus, impls, pythons)
    print("wrote %s" % args.out, file=sys.stderr)
    bad = [(im.label, sid, st) for im in impls for sid, (st, _) in im.results.items()
           if st in ("FAIL", "XPASS")]
    for label, sid, st in bad:
        print("%s: %s %s" % (st, label, sid), file=sys.stderr)
    return 1 if (args.check and bad) else 0


if __name__ == "__main__":
    sys.exit(main())
