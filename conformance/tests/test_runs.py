"""The run command end to end, through real subprocesses: a hanging loop is
killed at its timeout while the run goes on; seeded bugs are caught; strict
xfail flags a listed failure that passes."""

import json
import os
import tempfile
import time
import unittest

from support import KIT, fixture_env, run_cli
from loopspec_conformance import corpus, harness, results

fixture_env()
HANG = os.path.join(KIT, "tests", "fixtures", "hanging_adapter.py")


def scenario(sid):
    path = os.path.join(corpus.data_path("threaded"), sid + ".json")
    return corpus.load_file(path)


class Timeouts(unittest.TestCase):
    def test_a_hanging_loop_is_reported_and_the_run_goes_on(self):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "r.json")
            started = time.monotonic()
            rc, err = run_cli("run", "--adapter", HANG, "--expectations", "none",
                              "-k", "xthread-1-wakes-a-loop,conc-2-waiting", "--repeat", "3",
                              "--timeout", "3", "--json", out)
            elapsed = time.monotonic() - started
            doc = results.read(out)
        by = {r["id"]: r for r in doc["scenarios"]}
        hung = by["xthread-1-wakes-a-loop-waiting-for-events"]
        self.assertEqual((hung["status"], hung["reason"]), ("fail", "timeout"))
        self.assertLess(hung["duration"], 3 + 5)  # killed at the timeout, not later
        self.assertEqual(by["conc-2-waiting-with-a-timeout"]["status"], "pass")
        self.assertEqual(rc, 1)
        self.assertIn("timeout", err)
        self.assertLess(elapsed, 60)


class SeededBugs(unittest.TestCase):
    def run_broken(self, factory, keywords):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "r.json")
            rc, err = run_cli("run", "--loop", "tests.fixtures.broken_loops:" + factory,
                              "--expectations", "none", "-k", keywords, "--repeat", "5",
                              "--wait-timeout", "1", "--timeout", "30", "--json", out)
            return rc, err, {r["id"]: r for r in results.read(out)["scenarios"]}

    def test_a_lost_wakeup_fails_the_wakeup_scenarios(self):
        rc, err, by = self.run_broken("lost_wakeup", "xthread-4-ping-pong,xthread-10-a-loop")
        self.assertEqual(rc, 1)
        for sid in ("xthread-4-ping-pong-never-loses-a-wakeup",
                    "xthread-10-a-loop-on-its-own-thread"):
            self.assertEqual(by[sid]["status"], "fail", sid)
        self.assertIn("wait_timeout", json.dumps(by["xthread-4-ping-pong-never-loses-a-wakeup"]))

    def test_accepting_after_close_fails_the_close_scenarios(self):
        rc, err, by = self.run_broken("accepts_after_close",
                                      "xthread-1-closed-loop,xthread-3-submissions-racing-close")
        self.assertEqual(rc, 1)
        refused = by["xthread-1-closed-loop-refuses-call-soon-threadsafe"]
        self.assertEqual((refused["status"], refused["reason"]), ("fail", "outcome"))
        self.assertIn("Event loop is closed", refused["failure"]["diff"])
        racing = by["xthread-3-submissions-racing-close-of-an-idle-loop"]
        self.assertEqual((racing["status"], racing["reason"]), ("fail", "invariant"))

    def test_an_object_the_loop_did_not_make_is_an_outcome_not_a_runner_error(self):
        rc, err, by = self.run_broken("no_handle", "xthread-5-cancel-before-the-loop-takes")
        r = by["xthread-5-cancel-before-the-loop-takes-the-callback"]
        self.assertEqual((r["status"], r["reason"]), ("fail", "outcome"))
        self.assertIn("NotCreated", r["failure"]["diff"])

    def test_the_same_scenarios_pass_on_the_stock_loop(self):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "r.json")
            rc, err = run_cli("run", "-k", "xthread-4-ping-pong,xthread-1-closed-loop",
                              "--repeat", "5", "--json", out)
        self.assertEqual(rc, 0, err)


class StrictXfail(unittest.TestCase):
    def test_a_listed_failure_that_passes_is_an_xpass(self):
        sc = scenario("conc-2-waiting-with-a-timeout")
        known = {sc["id"]: [{"scenario": sc["id"], "reason": "pretend it fails"}]}
        r = harness.run_scenario(sc, harness.child_command(), repeat=2, known=known, strict=True)
        self.assertEqual(r["status"], "xpass")
        doc = {"scenarios": [r]}
        self.assertTrue(results.failed(doc, strict=True))
        r = harness.run_scenario(sc, harness.child_command(), repeat=2, known=known, strict=False)
        self.assertEqual(r["status"], "pass")

    def test_a_listed_failure_that_fails_is_an_xfail(self):
        sc = scenario("xthread-1-closed-loop-refuses-call-soon-threadsafe")
        known = {sc["id"]: [{"scenario": sc["id"], "python": [corpus.this_minor()]}]}
        cmd = harness.child_command(loop="tests.fixtures.broken_loops:accepts_after_close")
        r = harness.run_scenario(sc, cmd, repeat=2, known=known)
        self.assertEqual(r["status"], "xfail")
        self.assertFalse(results.failed({"scenarios": [r]}))

    def test_flaky_is_never_an_xpass(self):
        from loopspec_conformance import expectations
        self.assertEqual(expectations.verdict(True, {"status": "FLAKY"}), "pass")
        self.assertEqual(expectations.verdict(False, {"status": "FLAKY"}), "xfail")


if __name__ == "__main__":
    unittest.main()
