"""The corpus itself: every threaded scenario is valid, uses only what the
format defines, names rules that exist, and has recordings; COVERAGE.md
accounts for every rule of the cross-thread families."""

import json
import os
import re
import unittest

from support import KIT, REPO
from loopspec_conformance import corpus, jsonschema, judge, program

FAMILIES = ("POLICY", "LIFE", "RUNNER", "THREAD", "XTHREAD", "CONC", "CHAIN", "EXEC")


def threaded():
    return corpus.load(("threaded",))


def operations(ops):
    for op in ops:
        yield op
        kind, arg = program.op_of(op)
        if kind == "repeat":
            yield from operations(arg["ops"])


def spec_rules():
    path = os.path.join(REPO, "SPEC.md")
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return set(re.findall(r"^### ([A-Z]+-[0-9]+):", f.read(), re.M))


class Corpus(unittest.TestCase):
    def test_every_scenario_matches_the_schema(self):
        schema = jsonschema.load_schema("scenario.schema.json")
        for path, e in threaded():
            self.assertEqual(jsonschema.validate(e, schema), [], path)
            self.assertEqual(os.path.basename(path), e["id"] + ".json")

    def test_every_operation_facet_and_invariant_is_defined(self):
        known = {n[3:] for n in dir(program.Program) if n.startswith("op_")}
        known |= program.AWAITING | {"return", "raise"}
        for path, e in threaded():
            scripts = list(e["program"]["threads"].values())
            scripts += list(e["program"].get("callbacks", {}).values())
            scripts += list(e["program"].get("coroutines", {}).values())
            for script in scripts:
                for op in operations(script):
                    self.assertIn(program.op_of(op)[0], known, path)
            judge.outcome(e, [])
            judge.violations(e, {"log": []})

    def test_every_scenario_is_recorded_for_the_versions_it_applies_to(self):
        for path, e in threaded():
            recorded = {m for g in e.get("expect", []) for m in g["python"]}
            for m in ("3.10", "3.11", "3.12", "3.13", "3.14", "3.15"):
                if corpus.applies(e, m):
                    self.assertIn(m, recorded, "%s: nothing recorded for %s" % (path, m))

    def test_rules_exist_in_the_spec(self):
        rules = spec_rules()
        if rules is None:
            self.skipTest("no SPEC.md beside the kit")
        for path, e in threaded():
            for r in e["rules"]:
                self.assertIn(r, rules, path)

    def test_coverage_accounts_for_every_cross_thread_rule(self):
        rules = spec_rules()
        if rules is None:
            self.skipTest("no SPEC.md beside the kit")
        covered = {r for _, e in threaded() for r in e["rules"]}
        with open(os.path.join(KIT, "COVERAGE.md"), encoding="utf-8") as f:
            text = f.read()
        not_observable = set(re.findall(r"^\| ([A-Z]+-[0-9]+) \| not observable", text, re.M))
        for r in sorted(rules):
            if r.split("-")[0] in FAMILIES:
                self.assertTrue(r in covered or r in not_observable,
                                "%s: no scenario and not listed as not observable" % r)


class Packaging(unittest.TestCase):
    def test_backend_metadata_agrees_with_pyproject(self):
        try:
            import tomllib
        except ImportError:
            self.skipTest("tomllib needs Python 3.11")
        import sys
        sys.path.insert(0, os.path.join(KIT, "_build"))
        import backend
        with open(os.path.join(KIT, "pyproject.toml"), "rb") as f:
            meta = tomllib.load(f)
        self.assertEqual(meta["project"]["name"], backend.NAME)
        self.assertEqual(meta["project"]["requires-python"], backend.REQUIRES_PYTHON)
        self.assertEqual(meta["project"]["scripts"], backend.SCRIPTS)
        self.assertEqual(meta["project"]["dependencies"], [])
        self.assertEqual(meta["build-system"]["requires"], [])

    def test_the_wheel_holds_the_package_and_the_corpus(self):
        import sys
        import tempfile
        import zipfile
        sys.path.insert(0, os.path.join(KIT, "_build"))
        import backend
        with tempfile.TemporaryDirectory() as d:
            name = backend.build_wheel(d)
            names = zipfile.ZipFile(os.path.join(d, name)).namelist()
        self.assertIn("loopspec_conformance/cli.py", names)
        self.assertIn("loopspec_conformance/bench_child.py", names)
        self.assertIn("loopspec_conformance/data/loops.json", names)
        self.assertTrue(any(n.startswith("loopspec_conformance/data/threaded/") for n in names))
        self.assertTrue(any(n.startswith("loopspec_conformance/data/scenarios/") for n in names))
        self.assertTrue(any(n.endswith(".dist-info/entry_points.txt") for n in names))

    def test_the_single_thread_runner_path_keeps_its_contract(self):
        import subprocess
        import sys
        line = json.dumps({"id": "x", "tasks": {"a": [{"sleep": 1}, {"return": 3}]},
                           "main": [{"run_until_complete": {"task": "a"}}]})
        out = subprocess.run([sys.executable, os.path.join(KIT, "python", "runner.py")],
                             input=line + "\n", capture_output=True, text=True, timeout=60)
        trace = json.loads(out.stdout)
        self.assertEqual(trace["final"]["a"], {"state": "finished", "out": {"ok": 3}})


if __name__ == "__main__":
    unittest.main()
