"""The JSON results file of a run (SCHEMA.md; `schemas/results.schema.json`).

`document(...)` assembles it, `write(...)` validates it against the schema
before writing — a results file the kit writes is always valid — and
`read(...)` loads and validates one, from this kit or from another runner.
"""

import datetime
import json
import os

from . import FORMAT_VERSION, __version__, jsonschema

SCHEMA_ID = "loopspec-conformance-results/1"
STATUSES = ("pass", "fail", "xfail", "xpass", "skip")


class InvalidResults(Exception):
    """A results file that does not match the schema."""


def summary(scenarios):
    out = {s: 0 for s in STATUSES}
    for r in scenarios:
        out[r["status"]] += 1
    return out


def document(loop, python, scenarios, options):
    """The results document. `loop`: name, factory or adapter, version;
    `python`: version and implementation; `options`: how it was run."""
    return {
        "schema": SCHEMA_ID,
        "kit_version": __version__,
        "format_version": FORMAT_VERSION,
        "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "loop": loop,
        "python": python,
        "options": options,
        "summary": summary(scenarios),
        "scenarios": scenarios,
    }


def check(doc):
    errors = jsonschema.validate(doc, jsonschema.load_schema("results.schema.json"))
    if errors:
        raise InvalidResults("\n".join(errors[:20]))


def write(path, doc):
    check(doc)
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False)
        f.write("\n")


def read(path):
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    check(doc)
    return doc


def failed(doc, strict=True):
    """Whether the run failed: a fail, or (strictly) an xpass."""
    bad = ("fail", "xpass") if strict else ("fail",)
    return any(r["status"] in bad for r in doc["scenarios"])
