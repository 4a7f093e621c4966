"""`loopspec-conformance matrix`: every loop of loops.json on every Python
given, one results file each, then REPORT.md.

    loopspec-conformance matrix --python /path/python3.13 --python /path/python3.15 \\
        --venvs target/conformance/venvs --out target/conformance/results \\
        [--find-links DIR] [--no-install] [--report conformance/REPORT.md]

For a loop that needs packages, a virtual environment per Python minor
(`VENVS/loops-X.Y`) gets them with pip: from `--find-links DIR` only (no
index) when given, else from the index pip is configured for. `--no-install`
uses what the environments have. The kit itself is not installed there: the
runner imports it from this checkout. Loops whose package cannot be had on a
Python are skipped with a message.
"""

import os
import subprocess
import sys
import types

from . import cli, loops, record, report


def add_arguments(ap):
    ap.add_argument("--python", action="append", default=[], metavar="PATH",
                    help="a CPython to run on (repeatable; default: as `record` finds them)")
    ap.add_argument("--venvs", default=os.path.join("target", "conformance", "venvs"))
    ap.add_argument("--out", default=os.path.join("target", "conformance", "results"))
    ap.add_argument("--find-links", metavar="DIR", action="append", default=[],
                    help="install packages from this directory only (repeatable)")
    ap.add_argument("--no-install", action="store_true")
    ap.add_argument("--loops", metavar="NAMES", help="comma-separated loop names (default: all)")
    ap.add_argument("--minors", metavar="X.Y,...", help="only these Python minors")
    ap.add_argument("--corpus", choices=["threaded", "trace", "all"], default="all")
    ap.add_argument("--repeat", type=int, default=200)
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("-j", "--jobs", type=int, default=1)
    ap.add_argument("--report", metavar="REPORT.md", help="write the report here afterwards")


def ensure_venv(python, minor, packages, args):
    """The python of VENVS/loops-MINOR with `packages` importable, or None."""
    path = os.path.abspath(os.path.join(args.venvs, "loops-" + minor))
    exe = os.path.join(path, "bin", "python")
    if not os.path.exists(exe):
        if args.no_install:
            return None
        subprocess.run([python, "-m", "venv", path], check=True)
    if not args.no_install:
        pip = [exe, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        if args.find_links:
            pip.append("--no-index")
            for d in args.find_links:
                pip += ["--find-links", d]
        done = subprocess.run(pip + list(packages), capture_output=True, text=True)
        if done.returncode != 0:
            print("pip could not install %s for %s:\n%s" % (" ".join(packages), minor,
                                                           done.stderr[-1500:]), file=sys.stderr)
            return None
    return exe


def run_args(entry, python, minor, args, out):
    """The arguments of `run` for one matrix cell."""
    return types.SimpleNamespace(
        loop=entry.get("factory"), adapter=entry.get("adapter"), loop_name=None, name=entry["name"],
        runner_cmd=None, trace_cmd=None, python=python, python_minor=minor,
        expectations=entry["name"], corpus=args.corpus, keywords=None, repeat=args.repeat,
        fresh_repeat=1, timeout=args.timeout, wait_timeout=5.0, scale=0.2, jobs=args.jobs,
        no_strict=False, json=out, quiet=False)


def main(args):
    pythons = record.find_pythons(args.python)
    wanted = set(args.loops.split(",")) if args.loops else None
    os.makedirs(args.out, exist_ok=True)
    rc = 0
    for entry in loops.load():
        if entry.get("results") or (wanted and entry["name"] not in wanted):
            continue
        for minor in entry.get("pythons", []):
            if args.minors and minor not in args.minors.split(","):
                continue
            if minor not in pythons:
                print("%s: no Python %s given; skipped" % (entry["name"], minor), file=sys.stderr)
                continue
            python = pythons[minor][0]
            if entry.get("packages"):
                python = ensure_venv(python, minor, entry["packages"], args)
                if python is None:
                    continue
            suffix = "" if args.corpus == "threaded" else "-" + args.corpus
            out = os.path.join(args.out, "%s-%s%s.json" % (entry["name"], minor, suffix))
            print("== %s on %s" % (entry["name"], minor), file=sys.stderr, flush=True)
            rc |= cli.cmd_run(run_args(entry, python, minor, args, out))
    if args.report:
        report.main(types.SimpleNamespace(files=[], results_dir=args.out, out=args.report))
    return rc

