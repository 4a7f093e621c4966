"""loops.json: the loops the matrix knows, one entry each.

An entry has a `name`, and either a `factory` (MODULE:FACTORY) or an
`adapter` (a file, or a built-in adapter's name), the distributions to
install (`packages`) and the CPython minors to run it on (`pythons`); or only
`results`, the results file an external runner writes (loopspec's Rust
runner). Adding a loop is adding one line here.
"""

import json

from . import corpus


def load(path=None):
    with open(path or corpus.data_path("loops.json"), encoding="utf-8") as f:
        return json.load(f)["loops"]


def find(name, path=None):
    for entry in load(path):
        if entry["name"] == name:
            return entry
    raise SystemExit("no loop %r in loops.json (known: %s)"
                     % (name, ", ".join(e["name"] for e in load(path))))


def name_for_factory(factory, path=None):
    """The loops.json name of a factory, else its top-level module's name."""
    for entry in load(path):
        if entry.get("factory") == factory:
            return entry["name"]
    return factory.split(":")[0].split(".")[0].replace("_", "-")
