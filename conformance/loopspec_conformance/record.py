"""`loopspec-conformance record`: re-records what CPython does.

Threaded and fresh-process scenarios (format 2): each scenario runs N times
(default 200; fresh-process ones `--fresh-repeat` times, each in a new
process) on `asyncio.new_event_loop()` of every CPython given. The outcomes
each version showed become the scenario's `expect` groups, versions with the
same outcome set sharing a group. A run that breaks an invariant, or an
outcome outside the scenario's hand-written `allowed` set, is an error: the
file is not rewritten. Versions not run keep what was recorded before.

Single-thread scenarios (format 1, `--corpus trace`): the traces of CPython
3.10-3.15 on the virtual clock (loopspec replays each group with the profile
of its versions).

Interpreters: `--python PATH` (repeatable), else LOOPSPEC_PYTHONS (a
path-separated list), else the paths the repository's `.ci/pythons` prints,
else `python3.X` on PATH.
"""

import concurrent.futures
import os
import shutil
import subprocess
import sys

from . import corpus, harness
from .values import canonical

MINORS = ["3.10", "3.11", "3.12", "3.13", "3.14", "3.15"]


def add_arguments(ap):
    ap.add_argument("files", nargs="*", help="scenario files (default: the whole corpus)")
    ap.add_argument("--python", action="append", default=[], metavar="PATH",
                    help="a CPython to record with (repeatable)")
    ap.add_argument("--corpus", choices=["threaded", "trace", "all"], default="threaded")
    ap.add_argument("-k", dest="keywords", metavar="WORDS")
    ap.add_argument("--repeat", type=int, default=200)
    ap.add_argument("--fresh-repeat", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=180.0)
    ap.add_argument("--wait-timeout", type=float, default=5.0)
    ap.add_argument("-j", "--jobs", type=int, default=2)


def interpreter_version(exe):
    try:
        out = subprocess.run([exe, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                             capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    v = out.stdout.strip()
    return v if out.returncode == 0 and v.count(".") == 2 else None


def candidates(given):
    if given:
        return given
    env = os.environ.get("LOOPSPEC_PYTHONS")
    if env:
        return [p for p in env.split(os.pathsep) if p]
    script = os.path.join(os.path.dirname(harness.KIT_ROOT), ".ci", "pythons")
    if os.path.exists(script):
        out = subprocess.run(["bash", script], capture_output=True, text=True)
        found = [line.strip() for line in out.stdout.splitlines() if line.strip()]
        if found:
            return found
    return [p for p in (shutil.which("python" + m) for m in MINORS) if p]


def find_pythons(given=(), minors=MINORS):
    """{minor: (executable, full version)}, one per minor, in version order."""
    found = {}
    for exe in candidates(list(given)):
        v = interpreter_version(exe)
        if v and corpus.minor_of(v) in minors and corpus.minor_of(v) not in found:
            found[corpus.minor_of(v)] = (exe, v)
    return dict(sorted(found.items(), key=lambda kv: corpus.version_tuple(kv[0])))


def observe(entry, exe, args):
    """{canonical outcome: [outcome, count]} and the violations of CPython
    `exe` running `entry`; a problem (timeout, error) as a string."""
    fresh = corpus.kind_of(entry) == "fresh"
    rounds, repeat = (args.fresh_repeat, 1) if fresh else (1, args.repeat)
    seen, bad = {}, []
    for _ in range(rounds):
        request = {"scenario": entry, "repeat": int(entry.get("repeat", repeat)),
                   "wait_timeout": args.wait_timeout}
        lines, problem, stderr = harness.spawn(harness.child_command(exe), request, args.timeout)
        if problem:
            return seen, bad, "%s\n%s" % (problem, stderr[-2000:])
        for run, outcome, violations, _ in harness.judge_runs(entry, [x for x in lines
                                                                       if "run" in x]):
            k = canonical(outcome)
            seen.setdefault(k, [outcome, 0])[1] += 1
            bad += ["run %d: %s" % (run, v) for v in violations]
    return seen, bad, None


def record_entry(path, entry, pythons, args):
    """Records one format-2 scenario; returns a list of error messages."""
    errors, per_minor = [], {}
    for minor, (exe, full) in pythons.items():
        if not corpus.applies(entry, minor):
            continue
        seen, bad, problem = observe(entry, exe, args)
        if problem:
            errors.append("%s on %s: %s" % (entry["id"], full, problem))
            continue
        if bad:
            errors.append("%s on %s breaks its invariants: %s" % (entry["id"], full, bad[:3]))
            continue
        allowed = corpus.group_for(entry.get("allowed"), minor)
        if allowed is not None:
            keys = {canonical(o) for o in allowed["outcomes"]}
            extra = [v[0] for k, v in seen.items() if k not in keys]
            if extra:
                errors.append("%s on %s shows an outcome outside `allowed`: %s"
                              % (entry["id"], full, canonical(extra[0])[:600]))
                continue
        per_minor[minor] = (full, seen)
    if errors:
        return errors
    groups = []
    for minor, (full, seen) in per_minor.items():
        key = sorted(seen)
        for g in groups:
            if g["key"] == key:
                g["python"].append(minor)
                g["recorded_with"].append(full)
                for k, (o, n) in seen.items():
                    g["seen"][k][1] += n
                break
        else:
            groups.append({"key": key, "python": [minor], "recorded_with": [full],
                           "seen": {k: [o, n] for k, (o, n) in seen.items()}})
    kept = [g for g in entry.get("expect", []) if not any(m in per_minor for m in g["python"])]
    new = []
    for g in groups:
        observed = sorted(g["seen"].values(), key=lambda x: (-x[1], canonical(x[0])))
        new.append({"python": g["python"], "recorded_with": g["recorded_with"],
                    "runs": sum(n for _, n in observed),
                    "observed": [{"outcome": o, "count": n} for o, n in observed]})
    entry["expect"] = sorted(kept + new, key=lambda g: corpus.version_tuple(g["python"][0]))
    corpus.write_entry(path, entry)
    if len(new) > 1:
        print("%s: versions differ: %s" % (entry["id"], " | ".join(
            ",".join(g["python"]) for g in new)), file=sys.stderr)
    return []


def record_threaded(args, pythons):
    paths = args.files or None
    entries = corpus.select(corpus.load(("threaded",), paths), args.keywords,
                            ("threaded", "fresh"))
    errors = []
    with concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as pool:
        futs = {pool.submit(record_entry, p, e, pythons, args): e["id"] for p, e in entries}
        for i, fut in enumerate(concurrent.futures.as_completed(futs), 1):
            errs = fut.result()
            errors += errs
            print("[%d/%d] %s %s" % (i, len(futs), futs[fut], "ERROR" if errs else "recorded"),
                  file=sys.stderr, flush=True)
    for e in errors:
        print(e, file=sys.stderr)
    print("recorded %d scenarios, %d errors" % (len(entries), len(errors)), file=sys.stderr)
    return 1 if errors else 0


def record_traces(files, pythons):
    """The single-thread corpus: one trace per group of CPython 3.10-3.13
    versions that agree, from the virtual-clock runner."""
    from . import single_record
    return single_record.record(files, pythons)


def main(args):
    pythons = find_pythons(args.python)
    if not pythons:
        print("no CPython found (give --python PATH)", file=sys.stderr)
        return 1
    print("CPython found: " + ", ".join(v for _, v in pythons.values()), file=sys.stderr)
    rc = 0
    if args.corpus in ("trace", "all"):
        rc |= record_traces([f for f in args.files if f], pythons)
    if args.corpus in ("threaded", "all"):
        rc |= record_threaded(args, pythons)
    return rc
