"""The bench command: its child measures asyncio on this interpreter and
prints the documented line; a loop that cannot be loaded is a row "not
available"; a hanging child is killed at its timeout; the table's figures
and ratios come from the samples."""

import contextlib
import io
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
import unittest

from support import KIT, run_cli
from loopspec_conformance import bench, harness

TINY = ("--n", "300", "--r", "20", "--samples", "2", "--warmup", "0")

# A stand-in for the Rust binary: prints the line xloop_bench prints, with
# fixed samples, for the loop it is asked for.
FAKE_RUNNER = r"""
import json, sys
name = sys.argv[sys.argv.index("--loop") + 1]
w1 = [100.0, 200.0, 300.0] if name == "loopspec" else [400.0, 400.0, 400.0]
print(json.dumps({"loop": name, "loop_version": "9.9", "python": None,
                  "implementation": "Rust", "available": True,
                  "w1": {"n": 3, "unit": "ns per call", "samples": w1},
                  "w2": {"n": 3, "unit": "us per round trip", "samples": [5.0, 5.0, 5.0]}}))
"""


def run_bench(*argv):
    """(exit status, stdout, the --json document) of `bench ARGV`."""
    out = io.StringIO()
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "bench.json")
        with contextlib.redirect_stdout(out):
            rc, _ = run_cli("bench", "-q", "--json", path, *argv)
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    return rc, out.getvalue(), doc


class Child(unittest.TestCase):
    def test_the_child_measures_asyncio_and_prints_the_documented_line(self):
        cmd = [sys.executable, "-m", "loopspec_conformance.bench_child", "--loop", "asyncio",
               "--factory", "asyncio:new_event_loop"] + list(TINY)
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                             env=harness.child_env())
        self.assertEqual(out.returncode, 0, out.stderr)
        line = json.loads(out.stdout)
        here = "%d.%d.%d" % sys.version_info[:3]
        self.assertEqual((line["loop"], line["loop_version"], line["python"], line["available"]),
                         ("asyncio", here, here, True))
        self.assertEqual((line["w1"]["n"], line["w1"]["unit"]), (300, "ns per call"))
        self.assertEqual((line["w2"]["n"], line["w2"]["unit"]), (20, "us per round trip"))
        for key in ("w1", "w2"):
            self.assertEqual(len(line[key]["samples"]), 2)
            self.assertTrue(all(s > 0 for s in line[key]["samples"]), line[key])


class Command(unittest.TestCase):
    def test_asyncio_on_this_interpreter_gives_a_row_with_its_figures(self):
        rc, table, doc = run_bench("--loops", "asyncio", *TINY)
        self.assertEqual(rc, 0, table)
        (row,) = doc["rows"]
        self.assertEqual((row["loop"], row["available"]), ("asyncio", True))
        for key in ("w1", "w2"):
            w = row[key]
            self.assertLessEqual(w["min"], w["median"])
            self.assertLessEqual(w["median"], w["max"])
            self.assertIsNone(w["ratio_to_loopspec"])  # no --runner-cmd: no loopspec row
        self.assertEqual(doc["sizes"], {"n": 300, "r": 20, "samples": 2, "warmup": 0})
        self.assertIn("cpus", doc["machine"])
        self.assertIn("| Loop | Version | Python | W1 ns per call", table)
        self.assertIn("| asyncio | %d.%d.%d |" % sys.version_info[:3], table)

    def test_smoke_sizes(self):
        rc, _, doc = run_bench("--smoke", "--loops", "asyncio")
        self.assertEqual(rc, 0)
        self.assertEqual(doc["sizes"], {"n": 2000, "r": 50, "samples": 1, "warmup": 0})
        self.assertEqual(len(doc["rows"][0]["w1"]["samples"]), 1)

    def test_a_loop_that_is_not_installed_is_not_available(self):
        rc, table, doc = run_bench("--loops", "", "--loop",
                                   "absent=no_such_loop_module:new_event_loop", *TINY)
        self.assertEqual(rc, 0)
        (row,) = doc["rows"]
        self.assertFalse(row["available"])
        self.assertIn("No module named 'no_such_loop_module'", row["reason"])
        self.assertIn("| absent | – |", table)
        self.assertIn("not available: ModuleNotFoundError", table)

    def test_a_hanging_child_is_killed_at_the_timeout_and_fails_the_run(self):
        hang = "%s -c %s" % (shlex.quote(sys.executable),
                             shlex.quote("import time; time.sleep(60)"))
        started = time.monotonic()
        rc, table, doc = run_bench("--loops", "", "--runner-cmd", hang, "--timeout", "2", *TINY)
        self.assertLess(time.monotonic() - started, 30)
        self.assertEqual(rc, 1)
        self.assertEqual([r["loop"] for r in doc["rows"]], ["loopspec", "tokio"])
        self.assertIn("killed at the timeout", doc["rows"][0]["error"])
        self.assertIn("error: killed at the timeout", table)

    def test_ratios_and_cells_come_from_the_samples(self):
        fake = "%s -c %s" % (shlex.quote(sys.executable), shlex.quote(FAKE_RUNNER))
        rc, table, doc = run_bench("--loops", "", "--runner-cmd", fake)
        self.assertEqual(rc, 0, table)
        loopspec, tokio = doc["rows"]
        self.assertEqual((loopspec["w1"]["median"], loopspec["w1"]["spread"]), (200.0, 1.0))
        self.assertEqual(tokio["w1"]["ratio_to_loopspec"], 2.0)
        self.assertEqual(tokio["w2"]["ratio_to_loopspec"], 1.0)
        self.assertIn("| loopspec | 9.9 | Rust | 200 (100–300) | 100% | 1.00 | "
                      "5.00 (5.00–5.00) | 0% | 1.00 |", table)
        self.assertIn("| tokio | 9.9 | Rust | 400 (400–400) | 0% | 2.00 |", table)


class Names(unittest.TestCase):
    def test_the_default_loops_have_factories_in_loops_json(self):
        import types
        args = types.SimpleNamespace(loops=",".join(bench.DEFAULT_LOOPS), loop=[])
        self.assertEqual([name for name, _ in bench.python_loops(args)],
                         list(bench.DEFAULT_LOOPS))
        self.assertTrue(os.path.exists(os.path.join(KIT, "loopspec_conformance",
                                                    "bench_child.py")))


if __name__ == "__main__":
    unittest.main()
