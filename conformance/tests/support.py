"""Shared by the kit's tests: paths, and running the CLI in-process."""

import contextlib
import io
import os
import sys

TESTS = os.path.dirname(os.path.abspath(__file__))
KIT = os.path.dirname(TESTS)
REPO = os.path.dirname(KIT)
if KIT not in sys.path:
    sys.path.insert(0, KIT)

from loopspec_conformance import cli  # noqa: E402


def ensure_path():
    """The kit is importable (importing this module already did it)."""
    return KIT


def run_cli(*argv):
    """(exit status, stderr text) of `loopspec-conformance ARGV`."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = cli.main(list(argv))
    return rc, err.getvalue()


def fixture_env():
    """The child processes can import the fixtures (tests.fixtures.*)."""
    old = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = KIT + (os.pathsep + old if old else "")
