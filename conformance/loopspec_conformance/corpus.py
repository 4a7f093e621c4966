"""Finding and loading the corpus, and the version arithmetic around it.

The corpus lives beside the package in the source tree (`conformance/
scenarios/`, `conformance/threaded/`, ...) and under the package's `data/`
directory in an installed wheel; `data_path` finds either. Three kinds of
scenario share the corpus:

* ``trace``    format 1, single thread (`scenarios/`): one run, a trace compared
               with the one CPython recorded;
* ``threaded`` format 2 (`threaded/`): N runs in one subprocess per scenario;
* ``fresh``    format 2 with ``"process": "fresh"``: each run in a new process
               (policy and lifecycle scenarios: process-wide state).
"""

import glob
import json
import os
import sys

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
CORPUS_DIRS = {"trace": "scenarios", "threaded": "threaded"}


def data_path(name):
    """The path of a corpus directory or file (`threaded`, `loops.json`...):
    the installed copy under the package's data/, else the source tree's."""
    for cand in (os.path.join(PACKAGE_DIR, "data", name),
                 os.path.join(os.path.dirname(PACKAGE_DIR), name)):
        if os.path.exists(cand):
            return cand
    return os.path.join(os.path.dirname(PACKAGE_DIR), name)


def kind_of(entry):
    if entry.get("format", 1) < 2:
        return "trace"
    return "fresh" if entry.get("process") == "fresh" else "threaded"


def load_file(path):
    with open(path, encoding="utf-8") as f:
        entry = json.load(f)
    entry.setdefault("id", os.path.splitext(os.path.basename(path))[0])
    return entry


def load(corpora=("threaded",), paths=None):
    """[(path, entry)] of the named corpora (`trace`, `threaded`), sorted by
    file name within each, or of the given files."""
    if paths:
        return [(p, load_file(p)) for p in paths]
    out = []
    for c in corpora:
        for p in sorted(glob.glob(os.path.join(data_path(CORPUS_DIRS[c]), "*.json"))):
            out.append((p, load_file(p)))
    return out


def select(corpus, keywords=None, kinds=None):
    """Entries whose id or one of whose rules contains one of the
    comma-separated keywords (case-insensitive), of the given kinds."""
    words = [w.strip().lower() for w in (keywords or "").split(",") if w.strip()]
    out = []
    for path, e in corpus:
        if kinds and kind_of(e) not in kinds:
            continue
        hay = [e["id"].lower()] + [r.lower() for r in e.get("rules", [])]
        if words and not any(w in h for w in words for h in hay):
            continue
        out.append((path, e))
    return out


def version_tuple(v):
    return tuple(int(x) for x in str(v).split(".")[:2])


def minor_of(version):
    return ".".join(str(version).split(".")[:2])


def this_minor():
    return "%d.%d" % sys.version_info[:2]


def applies(entry, minor):
    """Whether the scenario means anything on Python `minor`."""
    lo, hi = entry.get("min_python"), entry.get("max_python")
    v = version_tuple(minor)
    return (not lo or v >= version_tuple(lo)) and (not hi or v <= version_tuple(hi))


def group_for(groups, minor):
    """The entry of `groups` (`expect` or `allowed`) whose `python` lists
    `minor`; a group without `python` applies to every version."""
    for g in groups or []:
        if "python" not in g or minor in g["python"]:
            return g
    return None


def nearest_group(groups, minor):
    """The group for `minor`, else the one of the newest older version (a
    single-thread trace recorded up to 3.13 stands in for 3.14): (group,
    the minor it was recorded for)."""
    g = group_for(groups, minor)
    if g is not None:
        return g, minor
    best = None
    for g in groups or []:
        for m in g.get("python", []):
            if version_tuple(m) < version_tuple(minor) and (
                    best is None or version_tuple(m) > version_tuple(best[1])):
                best = (g, m)
    return best if best else (None, None)


def dumps(v, indent=0, width=100):
    """JSON with short values on one line and long ones broken up (the
    corpus files' layout)."""
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
        too_long = len(pad + key + inner) > width + 20
        if "\n" not in inner and too_long and isinstance(x, (list, dict)):
            inner = dumps(x, indent + 2, 0)
        items.append(pad + key + inner)
    return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"


def write_entry(path, entry):
    with open(path, "w", encoding="utf-8") as f:
        f.write(dumps(entry) + "\n")
