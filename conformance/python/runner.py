#!/usr/bin/env python3
"""Conformance runner for single-thread scenarios (FORMAT.md, format 1).

Reads scenarios as JSON lines on stdin and writes one trace per line on
stdout (the contract `check/tests/differential.rs` and `python/record.py` use):

    python3 conformance/python/runner.py                  # CPython asyncio, virtual clock
    python3 conformance/python/runner.py --loop asyncio   # stock asyncio loop, real time
    python3 conformance/python/runner.py --loop pkg.mod:fn  # any loop factory, real time

The runner itself is `loopspec_conformance.single`; this file keeps the path
working without installing the kit.
"""

import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from loopspec_conformance.single import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
