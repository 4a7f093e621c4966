#!/usr/bin/env python3
"""Writes conformance/REPORT.md from the results files of a matrix run.

    python3 conformance/report.py [RESULTS.json ...]

Kept for this path; the same as `loopspec-conformance report --out
conformance/REPORT.md` (default input: target/conformance/results/*.json,
which `loopspec-conformance matrix` writes). It runs nothing itself.
"""

import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from loopspec_conformance import cli  # noqa: E402

if __name__ == "__main__":
    sys.exit(cli.main(["report", "--out", os.path.join(HERE, "REPORT.md")] + sys.argv[1:]))
