"""Shared by record.py and report.py: finding CPython interpreters, running
the runners as JSON-lines subprocesses, comparing and writing traces."""

import glob
import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
RUNNER = os.path.join(HERE, "runner.py")
SCENARIOS = os.path.join(ROOT, "conformance", "scenarios")
MINORS = ["3.10", "3.11", "3.12", "3.13"]


def interpreter_version(exe):
    try:
        out = subprocess.run([exe, RUNNER, "--version"], capture_output=True, text=True,
                             timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    v = out.stdout.strip()
    return v if out.returncode == 0 and v.count(".") == 2 else None


def find_pythons(minors=MINORS):
    """{minor: (executable, full version)} for each CPython found: python3.X
    on PATH, pyenv's versions, python3 itself. LOOPSPEC_PYTHONS (a
    os.pathsep-separated list of executables) replaces the search."""
    found = {}
    env = os.environ.get("LOOPSPEC_PYTHONS")
    if env:
        candidates = [p for p in env.split(os.pathsep) if p]
    else:
        candidates = []
        for m in minors:
            exe = shutil.which("python" + m)
            if exe:
                candidates.append(exe)
        roots = []
        try:
            roots.append(subprocess.run(["pyenv", "root"], capture_output=True, text=True,
                                        timeout=30).stdout.strip())
        except (OSError, subprocess.TimeoutExpired):
            pass
        roots.append(os.path.expanduser("~/.pyenv"))
        for r in roots:
            if r:
                for m in minors:
                    candidates += sorted(glob.glob(os.path.join(r, "versions", m + ".*", "bin",
                                                                "python3")))
        for name in ("python3", sys.executable):
            exe = shutil.which(name) or name
            if exe:
                candidates.append(exe)
    for exe in candidates:
        v = interpreter_version(exe)
        if not v:
            continue
        minor = ".".join(v.split(".")[:2])
        if minor in minors and minor not in found:
            found[minor] = (exe, v)
    return dict(sorted(found.items(), key=lambda kv: [int(x) for x in kv[0].split(".")]))


def version_tuple(v):
    return tuple(int(x) for x in v.split(".")[:2])


def applies(entry, minor):
    mp = entry.get("min_python")
    return not mp or version_tuple(minor) >= version_tuple(mp)


def run_lines(cmd, lines, timeout=None):
    """Runs a JSON-lines runner over `lines` (dicts); returns its traces."""
    data = "".join(json.dumps(x) + "\n" for x in lines)
    out = subprocess.run(cmd, input=data, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError("%s failed:\n%s" % (" ".join(cmd), out.stderr[-4000:]))
    traces = [json.loads(l) for l in out.stdout.splitlines() if l.strip()]
    if len(traces) != len(lines):
        raise RuntimeError("%s: %d traces for %d scenarios\n%s"
                           % (" ".join(cmd), len(traces), len(lines), out.stderr[-4000:]))
    return traces


def normalize(v):
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, list):
        return [normalize(x) for x in v]
    return {k: normalize(x) for k, x in v.items()}


def trace_key(trace):
    return json.dumps(normalize({"events": trace.get("events"), "final": trace.get("final")}),
                      sort_keys=True)


def matches(expect, trace):
    return "runner_error" not in trace and trace_key(expect) == trace_key(trace)


def load_corpus(paths=None):
    if not paths:
        paths = sorted(glob.glob(os.path.join(SCENARIOS, "*.json")))
    out = []
    for p in paths:
        with open(p) as f:
            out.append((p, json.load(f)))
    return out


def dumps(v, indent=0, width=100):
    """JSON with short values on one line and long ones broken up."""
    flat = json.dumps(v, ensure_ascii=False)
    if len(flat) + indent <= width or not isinstance(v, (list, dict)) or not v:
        return flat
    pad = " " * (indent + 2)
    if isinstance(v, list):
        items = [pad + dumps(x, indent + 2, width) for x in v]
        return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"
    items = []
    for k, x in v.items():
        key = json.dumps(k, ensure_ascii=False) + ": "
        inner = dumps(x, indent + 2, width)
        if "\n" not in inner and len(pad + key + inner) > width + 20 and isinstance(x, (list, dict)):
            inner = dumps(x, indent + 2, 0)
        items.append(pad + key + inner)
    return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"


def write_entry(path, entry):
    with open(path, "w") as f:
        f.write(dumps(entry) + "\n")
