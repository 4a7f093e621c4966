"""`loopspec-conformance report`: REPORT.md from results files.

    loopspec-conformance report target/conformance/results/*.json --out conformance/REPORT.md

A thin consumer of the JSON results (SCHEMA.md): it runs nothing. Each file
is one loop on one Python. The report has the matrix (loop x rule family,
cell = scenarios passed / scenarios run), one row per scenario, and the
findings: every scenario that did not pass, with what was observed against
what was allowed, and the upstream issue where the expectations file links
one. The loops of loops.json that only have a `results` file (loopspec's
Rust runner) show "pending" until that file exists.
"""

import glob
import json
import os
import sys

from . import corpus, loops, results
from . import expectations as expect_mod

FAMILIES = ["POLICY", "LIFE", "RUNNER", "STOP", "SCHED", "CLOCK", "THREAD", "XTHREAD", "CONC",
            "CHAIN", "EXEC", "FUT", "TASK", "GATHER", "WAIT", "WAITFOR", "ASCOMP"]
CELL = {"pass": "pass", "fail": "**FAIL**", "xfail": "xfail", "xpass": "**XPASS**", "skip": "–"}


def add_arguments(ap):
    ap.add_argument("files", nargs="*", help="results files (default: --results-dir/*.json)")
    ap.add_argument("--results-dir", default=None,
                    help="directory of results files (default: target/conformance/results)")
    ap.add_argument("--out", default=None, help="REPORT.md to write (default: stdout)")


def label(doc):
    loop, py = doc["loop"], doc["python"]
    if loop["name"] == "asyncio":
        return "asyncio %s" % py["minor"]
    return "%s %s / %s" % (loop["name"], loop.get("version") or "?", py["minor"])


def sort_key(doc):
    names = [e["name"] for e in loops.load()]
    n = doc["loop"]["name"]
    return (names.index(n) if n in names else len(names), n,
            corpus.version_tuple(doc["python"]["minor"]))


def family(rule):
    return rule.split("-")[0]


def matrix_cell(doc, fam):
    ran = [r for r in doc["scenarios"] if r["status"] != "skip"
           and any(family(x) == fam for x in r["rules"])]
    if not ran:
        return "–"
    ok = sum(1 for r in ran if r["status"] == "pass")
    mark = ""
    if any(r["status"] in ("fail", "xpass") for r in ran):
        mark = " ⚠"
    return "%d/%d%s" % (ok, len(ran), mark)


def short(v, width=400):
    text = json.dumps(v, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= width else text[:width] + "…"


def finding_lines(doc, r):
    """How one unexpected result looked: observed vs allowed, the diff."""
    out = []
    head = "* `%s` (%s) — **%s**" % (r["id"], ", ".join(r["rules"]), r["status"])
    if r.get("reason"):
        head += ", %s" % r["reason"]
    out.append(head)
    if r.get("problem"):
        out.append("  * %s" % r["problem"][:300].replace("\n", " "))
    bad = [b for b in r["histogram"] if not b["allowed"] or b.get("violations")]
    for b in bad[:2]:
        what = "; ".join(b.get("violations", [])[:2])
        if what:
            out.append("  * %d/%d runs broke: %s" % (b["count"], r["runs"],
                                                   short_text(what, 300)))
        elif r["kind"] != "trace":
            out.append("  * %d/%d runs observed: `%s`" % (b["count"], r["runs"],
                                                        short(b["outcome"], 300)))
    diff = (r.get("failure") or {}).get("diff") or ""
    changed = [" ".join(line.split()) for line in diff.splitlines()
               if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    if changed:
        out.append("  * first differences from the closest allowed outcome "
                   "(- allowed, + observed): `%s`" % short_text(" ".join(changed[:14]), 400))
    if r["status"] == "xpass":
        out.append("  * listed as a known failure but passed all %d runs" % r["runs"])
    return out


def short_text(text, width):
    text = text.replace("`", "'")
    return text if len(text) <= width else text[:width] + "…"


def known_lines(scenarios):
    """Known failures (xfail), one line per reason with the scenarios it covers."""
    by_reason = {}
    for r in scenarios:
        exp = r.get("expectation") or {}
        key = (" ".join(exp.get("reason", "").split()), exp.get("link", ""))
        by_reason.setdefault(key, []).append(r["id"])
    out = []
    for (reason, link), ids in by_reason.items():
        out.append("* %s%s — %s" % (reason or "(no reason given)",
                                    (" Upstream: " + link + ".") if link else "",
                                    ", ".join("`%s`" % i for i in ids)))
    return out


def cpython_changes():
    """Threaded scenarios whose CPython outcome sets differ between versions."""
    out = []
    for path, e in corpus.load(("threaded",)):
        groups = e.get("expect", [])
        if len(groups) > 1:
            out.append("* `%s` (%s): %s — %s" % (
                e["id"], ", ".join(e["rules"]),
                " vs ".join("/".join(g["python"]) for g in groups), e.get("title", "")))
    return out


def merge(docs):
    """One document per loop, loop version and Python: the scenarios of
    several runs (say, the threaded corpus and the single-thread one)
    together, a scenario run twice counted once (the later file wins)."""
    out = {}
    for d in docs:
        key = (d["loop"]["name"], d["loop"].get("version"), d["python"]["version"])
        if key not in out:
            out[key] = d
            continue
        into = out[key]
        seen = {r["id"]: i for i, r in enumerate(into["scenarios"])}
        for r in d["scenarios"]:
            if r["id"] in seen:
                into["scenarios"][seen[r["id"]]] = r
            else:
                into["scenarios"].append(r)
        if d.get("options", {}).get("corpus") != "trace":
            into["options"] = d.get("options", {})
    return list(out.values())


def refresh(doc):
    """A results file seen with today's corpus and expectations: each
    scenario's rules from its file, and its status from its raw result and
    the loop's current expectations (so a new expectation needs no re-run)."""
    rules = {e["id"]: e.get("rules", []) for _, e in corpus.load(("threaded", "trace"))}
    known = expect_mod.load(doc["loop"]["name"])
    strict = doc.get("options", {}).get("strict", True)
    for r in doc["scenarios"]:
        r["rules"] = rules.get(r["id"], r["rules"])
        if r.get("passed") is not None and r.get("reason") != "crash":
            item = expect_mod.lookup(known, r["id"], r["python_minor"], r.get("loop_version"))
            r["status"] = expect_mod.verdict(r["passed"], item, strict)
            r.pop("expectation", None)
            if item is not None:
                r["expectation"] = {k: item[k] for k in ("status", "reason", "link") if k in item}
    doc["summary"] = results.summary(doc["scenarios"])
    return doc


def render(docs, pending):
    docs = sorted(docs, key=sort_key)
    labels = [label(d) for d in docs]
    lines = []
    w = lines.append
    w("# Conformance report")
    w("")
    w("Generated by `loopspec-conformance report` from results files (SCHEMA.md); do not edit "
      "by hand. How the kit works: [README.md](README.md); the scenario format: "
      "[FORMAT.md](FORMAT.md); rule coverage: [COVERAGE.md](COVERAGE.md).")
    w("")
    w("Each threaded scenario ran N times per loop; it passes when every run's outcome is one "
      "the scenario allows for that Python version (recorded from CPython, or stated by hand "
      "where the rules allow several) and no run broke an invariant. Single-thread scenarios "
      "(format 1) ran once against the trace CPython recorded for that version, in real time "
      "(loopspec: on its virtual clock). `xfail`: a known failure listed in "
      "`expectations/<loop>.json`.")
    w("")
    w("## Runs")
    w("")
    w("| Loop | Version | Python | Runs per threaded scenario "
      "| pass | fail | xfail | xpass | skip |")
    w("|---|---|---|---|---|---|---|---|---|")
    for d in docs:
        s = d["summary"]
        w("| %s | %s | %s | %s | %d | %d | %d | %d | %d |" % (
            d["loop"]["name"], d["loop"].get("version") or "?", d["python"]["version"],
            d.get("options", {}).get("repeat", "?"), s["pass"], s["fail"], s["xfail"],
            s["xpass"], s["skip"]))
    for name in pending:
        w("| %s | pending | – | – | – | – | – | – | – |" % name)
    w("")
    w("## Matrix: scenarios passed / run, by rule family")
    w("")
    fams = [f for f in FAMILIES if any(family(x) == f for d in docs for r in d["scenarios"]
                                       for x in r["rules"])]
    w("| Loop / Python | " + " | ".join(fams) + " |")
    w("|---|" + "---|" * len(fams))
    for d, lab in zip(docs, labels):
        w("| %s | %s |" % (lab, " | ".join(matrix_cell(d, f) for f in fams)))
    for name in pending:
        w("| %s | %s |" % (name, " | ".join("pending" for _ in fams)))
    w("")
    w("⚠: an unexpected failure or XPASS in that cell (see Findings). A scenario counts in "
      "every family it names.")
    w("")
    w("## Findings")
    w("")
    any_finding = False
    for d, lab in zip(docs, labels):
        bad = [r for r in d["scenarios"] if r["status"] in ("fail", "xpass")]
        known = [r for r in d["scenarios"] if r["status"] == "xfail"]
        if not bad and not known:
            continue
        any_finding = True
        w("### %s" % lab)
        w("")
        if bad:
            w("Unexpected (not in `expectations/%s.json`; not analysed yet):" % d["loop"]["name"])
            w("")
            for r in bad:
                for line in finding_lines(d, r):
                    w(line)
            w("")
        if known:
            w("Known (`expectations/%s.json`), by reason:" % d["loop"]["name"])
            w("")
            lines.extend(known_lines(known))
            w("")
    if not any_finding:
        w("None.")
        w("")
    changes = cpython_changes()
    if changes:
        w("### CPython, between versions")
        w("")
        w("Threaded scenarios whose recorded outcomes differ between CPython versions:")
        w("")
        lines.extend(changes)
        w("")
    w("## Results by scenario")
    w("")
    w("| Scenario | Rules | " + " | ".join(labels) + " |")
    w("|---|---|" + "---|" * len(labels))
    ids = []
    for d in docs:
        for r in d["scenarios"]:
            if r["id"] not in ids:
                ids.append(r["id"])
    by = [{r["id"]: r for r in d["scenarios"]} for d in docs]
    for sid in sorted(ids, key=lambda i: (i.split("-")[0], i)):
        rules = next(m[sid]["rules"] for m in by if sid in m)
        w("| `%s` | %s | %s |" % (sid, ", ".join(rules), " | ".join(
            CELL[m[sid]["status"]] if sid in m else "–" for m in by)))
    w("")
    return "\n".join(lines)


def main(args):
    files = list(args.files)
    rdir = args.results_dir or os.path.join(os.path.dirname(corpus.PACKAGE_DIR), "..",
                                            "target", "conformance", "results")
    if not files:
        files = sorted(glob.glob(os.path.join(rdir, "*.json")))
    docs = []
    for f in files:
        try:
            docs.append(results.read(f))
        except (OSError, ValueError, results.InvalidResults) as e:
            print("skipping %s: %s" % (f, e), file=sys.stderr)
    docs = [refresh(d) for d in merge(docs)]
    have = {d["loop"]["name"] for d in docs}
    pending = [e["name"] for e in loops.load() if e.get("results") and e["name"] not in have]
    text = render(docs, pending)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)
        print("wrote %s (%d results files)" % (args.out, len(docs)), file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0

