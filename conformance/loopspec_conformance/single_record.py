"""Recording the single-thread corpus (format 1): one expected trace per group
of CPython versions that agree, from the virtual-clock runner."""

import json
import subprocess
import sys

from . import corpus, harness
from .values import canonical


def run_lines(cmd, lines, timeout=None):
    """Runs a JSON-lines trace runner over `lines`; returns its traces."""
    data = "".join(json.dumps(x) + "\n" for x in lines)
    out = subprocess.run(cmd, input=data, capture_output=True, text=True, timeout=timeout,
                         env=harness.child_env())
    if out.returncode != 0:
        raise RuntimeError("%s failed:\n%s" % (" ".join(cmd), out.stderr[-4000:]))
    traces = [json.loads(x) for x in out.stdout.splitlines() if x.strip()]
    if len(traces) != len(lines):
        raise RuntimeError("%s: %d traces for %d scenarios" % (" ".join(cmd), len(traces),
                                                                len(lines)))
    return traces


def trace_key(trace):
    return canonical({"events": trace.get("events"), "final": trace.get("final")})


def record(files, pythons):
    """Rewrites each file's `expect` (and `realtime`); returns 0, or 1 if a
    scenario gave a runner error somewhere."""
    entries = corpus.load(("trace",), files or None)
    traces = {}
    for minor, (exe, _) in pythons.items():
        todo = [e for _, e in entries if corpus.applies(e, minor)]
        got = iter(run_lines([exe, "-m", "loopspec_conformance.single"], todo))
        traces[minor] = [next(got) if corpus.applies(e, minor) else None for _, e in entries]
    bad = 0
    for i, (path, entry) in enumerate(entries):
        groups = []  # [key, [minors], recorded_with, trace]
        for minor, (_, full) in pythons.items():
            t = traces[minor][i]
            if t is None:
                continue
            if "runner_error" in t:
                print("%s on %s: %s" % (path, full, t["runner_error"]), file=sys.stderr)
                bad += 1
                continue
            key = trace_key(t)
            for g in groups:
                if g[0] == key:
                    g[1].append(minor)
                    if minor == "3.11":
                        g[2], g[3] = full, t
                    break
            else:
                groups.append([key, [minor], full, t])
        kept = [x for x in entry.get("expect", []) if not any(m in pythons for m in x["python"])]
        expect = kept + [{"python": g[1], "recorded_with": g[2], "events": g[3]["events"],
                          "final": g[3]["final"]} for g in groups]
        expect.sort(key=lambda x: corpus.version_tuple(x["python"][0]))
        entry["expect"] = expect
        ref = traces.get("3.11", [None] * len(entries))[i] or next(
            (traces[m][i] for m in traces if traces[m][i]), None)
        if ref and "meta" in ref:
            entry["realtime"] = bool(ref["meta"].get("realtime_safe"))
        corpus.write_entry(path, entry)
        if len(groups) > 1:
            print("%s: versions differ: %s" % (entry["id"], " | ".join(
                ",".join(g[1]) for g in groups)), file=sys.stderr)
    print("recorded %d scenarios" % len(entries), file=sys.stderr)
    return 1 if bad else 0
