#!/usr/bin/env python3
"""Records the expected traces of the corpus from CPython.

    python3 conformance/python/record.py [conformance/scenarios/X.json ...]

Runs every scenario (all of conformance/scenarios/ by default) on each
CPython 3.10-3.13 found (see common.find_pythons; LOOPSPEC_PYTHONS overrides),
on the virtual-clock runner, and rewrites each file's "expect": one entry per
group of versions that give the same trace, with the interpreter that
recorded it, and "realtime" (whether real-time loops can run it). Versions
older than the entry's "min_python" are skipped. Versions not installed keep
the traces recorded before.
"""

import argparse
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import common


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="*")
    args = ap.parse_args(argv)
    pythons = common.find_pythons()
    if not pythons:
        print("no CPython 3.10-3.13 found", file=sys.stderr)
        return 1
    print("CPython found: " + ", ".join(v for _, v in pythons.values()), file=sys.stderr)
    corpus = common.load_corpus(args.files)
    traces = {}  # minor -> list of traces (None where not applicable)
    for minor, (exe, _) in pythons.items():
        todo = [e for _, e in corpus if common.applies(e, minor)]
        got = iter(common.run_lines([exe, common.RUNNER], todo))
        traces[minor] = [next(got) if common.applies(e, minor) else None for _, e in corpus]
    bad = 0
    for i, (path, entry) in enumerate(corpus):
        groups = []  # [key, [minors], recorded_with, trace]
        for minor, (_, full) in pythons.items():
            t = traces[minor][i]
            if t is None:
                continue
            if "runner_error" in t:
                print("%s on %s: %s" % (path, full, t["runner_error"]), file=sys.stderr)
                bad += 1
                continue
            key = common.trace_key(t)
            for g in groups:
                if g[0] == key:
                    g[1].append(minor)
                    if minor == "3.11":
                        g[2], g[3] = full, t
                    break
            else:
                groups.append([key, [minor], full, t])
        # Keep what older recordings say about versions not installed here.
        kept = [x for x in entry.get("expect", [])
                if not any(m in pythons for m in x["python"])]
        expect = kept + [{"python": g[1], "recorded_with": g[2], "events": g[3]["events"],
                          "final": g[3]["final"]} for g in groups]
        expect.sort(key=lambda x: common.version_tuple(x["python"][0]))
        entry["expect"] = expect
        ref = traces.get("3.11", [None] * len(corpus))[i] or next(
            (traces[m][i] for m in traces if traces[m][i]), None)
        if ref and "meta" in ref:
            entry["realtime"] = bool(ref["meta"].get("realtime_safe"))
        common.write_entry(path, entry)
        if len(groups) > 1:
            print("%s: versions differ: %s" % (entry["id"], " | ".join(
                ",".join(g[1]) for g in groups)), file=sys.stderr)
    print("recorded %d scenarios" % len(corpus), file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
