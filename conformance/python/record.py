#!/usr/bin/env python3
"""Records the expected traces of the single-thread corpus from CPython.

    python3 conformance/python/record.py [conformance/scenarios/X.json ...]

Kept for this path; the same as `loopspec-conformance record --corpus trace`:
every scenario (all of conformance/scenarios/ by default) runs on each CPython
3.10-3.13 found, on the virtual-clock runner, and each file's "expect" gets
one entry per group of versions with the same trace.
"""

import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from loopspec_conformance import cli  # noqa: E402

if __name__ == "__main__":
    sys.exit(cli.main(["record", "--corpus", "trace"] + sys.argv[1:]))
