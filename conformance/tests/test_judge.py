"""Outcomes, invariants and the allowed-set verdict, on made-up logs."""

import unittest

import support

support.ensure_path()
from loopspec_conformance import harness, judge  # noqa: E402


def entry(**kw):
    base = {"format": 2, "id": "t", "rules": ["XTHREAD-5"], "title": "t",
            "program": {"threads": {"main": []}}}
    base.update(kw)
    return base


def log(*entries):
    return [dict(e, seq=i) for i, e in enumerate(entries)]


ORDER = {"order": {"order": {"a": {"ev": "record", "label": "a"},
                             "b": {"ev": "record", "label": "b"}}}}


class Outcomes(unittest.TestCase):
    def test_default_outcome_groups_by_thread_and_drops_seq(self):
        out = judge.outcome(entry(), log({"thread": "main", "ev": "record", "label": "x"},
                                         {"thread": "T", "ev": "record", "label": "y"},
                                         {"thread": "main", "ev": "flood_count", "tag": "f",
                                          "submitted": 9, "ran": 9}))
        self.assertEqual(out, {"main": [{"ev": "record", "label": "x"}],
                               "T": [{"ev": "record", "label": "y"}]})

    def test_facets(self):
        lg = log({"thread": "T", "ev": "record", "label": "b"},
                 {"thread": "main", "ev": "record", "label": "a"},
                 {"thread": "main", "ev": "ran", "tag": "p", "i": 0})
        sc = entry(outcome=dict(ORDER, n={"count": {"ev": "ran"}}, any={"any": {"ev": "hang"}},
                                first={"first": {"ev": "record"}},
                                labels={"set": {"ev": "record", "thread": {"any": ["main", "T"]}}}))
        out = judge.outcome(sc, lg)
        self.assertEqual(out["order"], ["b", "a"])
        self.assertEqual(out["n"], 1)
        self.assertIs(out["any"], False)
        self.assertEqual(out["first"], {"thread": "T", "ev": "record", "label": "b"})
        self.assertEqual([e["label"] for e in out["labels"]], ["a", "b"])

    def test_unknown_facet_is_a_bad_scenario(self):
        with self.assertRaises(judge.BadScenario):
            judge.outcome(entry(outcome={"x": {"median": {}}}), [])


class Invariants(unittest.TestCase):
    def test_timeouts_and_hangs_always_fail(self):
        bad = judge.violations(entry(), {"log": log({"thread": "T", "ev": "wait_timeout",
                                                     "event": "e"})})
        self.assertEqual(len(bad), 1)

    def test_submissions(self):
        inv = [{"submissions": {"tag": "p", "accepted": "exactly_once", "fifo": True,
                                "refused_with": {"exc": "RuntimeError",
                                                 "args": ["Event loop is closed"]}}}]
        ok = {"ok": None}
        closed = {"exc": "RuntimeError", "args": ["Event loop is closed"]}
        good = log({"thread": "P", "ev": "submit", "tag": "p", "i": 0, "out": ok},
                   {"thread": "P", "ev": "submit", "tag": "p", "i": 1, "out": closed},
                   {"thread": "L", "ev": "ran", "tag": "p", "i": 0})
        self.assertEqual(judge.violations(entry(invariants=inv), {"log": good}), [])
        twice = good + log({"thread": "L", "ev": "ran", "tag": "p", "i": 0})
        self.assertTrue(judge.violations(entry(invariants=inv), {"log": twice}))
        refused_ran = good + log({"thread": "L", "ev": "ran", "tag": "p", "i": 1})
        self.assertTrue(judge.violations(entry(invariants=inv), {"log": refused_ran}))

    def test_none_after_and_before(self):
        lg = log({"thread": "main", "ev": "close", "out": {"ok": None}},
                 {"thread": "L", "ev": "ran", "tag": "p", "i": 3})
        inv = [{"none_after": {"after": {"ev": "close"}, "none": {"ev": "ran"}}}]
        self.assertTrue(judge.violations(entry(invariants=inv), {"log": lg}))
        inv = [{"before": {"first": {"ev": "ran"}, "then": {"ev": "close"}}}]
        self.assertTrue(judge.violations(entry(invariants=inv), {"log": lg}))


class AllowedSets(unittest.TestCase):
    def scenario(self):
        either = [{"order": ["a", "b"]}, {"order": ["b", "a"]}]
        return entry(outcome=ORDER, allowed=[{"python": ["3.14"], "outcomes": either[:1]},
                                             {"outcomes": either}])

    def runs(self, *orders):
        lines = []
        for k, order in enumerate(orders):
            lines.append({"run": k, "log": log(*({"thread": "main", "ev": "record", "label": x}
                                                  for x in order))})
        return lines

    def test_an_outcome_outside_the_set_is_rejected_with_a_diff(self):
        sc = self.scenario()
        allowed, _ = harness.allowed_outcomes(sc, "3.14")
        judged = harness.judge_runs(sc, self.runs("ab", "ab", "ba"))
        failure = harness.first_failure(judged, allowed)
        self.assertEqual(failure["run"], 2)
        self.assertIn('-  "a"', failure["diff"])
        hist = harness.histogram(judged, allowed)
        self.assertEqual([(b["count"], b["allowed"]) for b in hist], [(2, True), (1, False)])

    def test_every_outcome_inside_the_set_passes(self):
        sc = self.scenario()
        allowed, _ = harness.allowed_outcomes(sc, "3.13")
        judged = harness.judge_runs(sc, self.runs("ab", "ba", "ab"))
        self.assertIsNone(harness.first_failure(judged, allowed))

    def test_recorded_outcomes_are_the_set_without_allowed(self):
        sc = entry(expect=[{"python": ["3.13"], "recorded_with": ["3.13.18"], "runs": 2,
                            "observed": [{"outcome": {"x": 1}, "count": 2}]}])
        self.assertEqual(harness.allowed_outcomes(sc, "3.13"), ([{"x": 1}], "3.13"))
        self.assertEqual(harness.allowed_outcomes(sc, "3.12"), (None, None))


if __name__ == "__main__":
    unittest.main()
