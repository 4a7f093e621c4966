"""The per-scenario subprocess of the Python runner (FORMAT.md, "Runner
protocol").

    python -m loopspec_conformance.child --loop MODULE:FACTORY   (or --adapter FILE)

Reads one request line on stdin, `{"scenario": <corpus entry>, "repeat": N,
"wait_timeout": s, "scale": s}`, and writes JSON lines on stdout: a `hello`
line (Python and loop versions), one line per run (`{"run": k, "log": [...]}`
for format 2, `{"run": 0, "trace": {...}}` for format 1), and `{"end": true}`.
A run whose threads could not be unstuck (`poisoned`), or that hit a bounded
wait's timeout, ends the process early: that run has failed, and repeating it
would only cost timeouts.
"""

import argparse
import faulthandler
import importlib
import importlib.util
import json
import logging
import os
import select
import sys
import warnings

from . import corpus, single
from .versions import distribution_version, python_version
from .program import Program

# A run with one of these has failed by a bounded wait: the child stops there.
TIMEOUT_EVENTS = ("wait_timeout", "barrier_timeout", "join_timeout", "hang")
ADAPTERS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "adapters")


class LoopSpec:
    """What the loop under test is: its factory, name and version."""

    def __init__(self, factory, name, version):
        self.factory, self.name, self.version = factory, name, version



def load_adapter(spec):
    """An adapter module from a file path, or a built-in adapter by name
    (`adapters/<name>.py`)."""
    path = spec
    if not os.path.exists(path):
        path = os.path.join(ADAPTERS_DIR, spec.replace("-", "_") + ".py")
    if not os.path.exists(path):
        raise SystemExit("no adapter %r (a file, or one of %s)" % (
            spec, ", ".join(sorted(f[:-3] for f in os.listdir(ADAPTERS_DIR) if f.endswith(".py")
                                   and not f.startswith("_")))))
    mod_spec = importlib.util.spec_from_file_location("loopspec_adapter", path)
    mod = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(mod)
    return mod


def resolve(loop=None, adapter=None):
    """The LoopSpec of `--loop MODULE:FACTORY` (or `virtual`) or `--adapter`."""
    if adapter:
        mod = load_adapter(adapter)
        name = getattr(mod, "NAME", os.path.splitext(os.path.basename(adapter))[0])
        pkg = getattr(mod, "PACKAGE", None)
        version = distribution_version(pkg) if pkg else getattr(mod, "VERSION", None)
        return LoopSpec(mod.new_event_loop, name, version)
    loop = loop or "asyncio:new_event_loop"
    if loop == "virtual":
        return LoopSpec(single.VirtualLoop, "virtual", python_version())
    mod_name, _, attr = loop.partition(":")
    mod = importlib.import_module(mod_name)
    factory = getattr(mod, attr or "new_event_loop")
    if mod_name.split(".")[0] == "asyncio":
        version = python_version()
    else:
        version = distribution_version(mod_name)
    return LoopSpec(factory, mod_name.split(".")[0], version)


def emit(obj):
    """Writes one JSON line to file descriptor 1 with os.write, the whole of
    it: a loop under test may leave stdout non-blocking or write to it from
    its own threads, and a partial line would corrupt the protocol."""
    data = (json.dumps(obj) + "\n").encode()
    while data:
        try:
            n = os.write(1, data)
        except BlockingIOError:
            select.select([], [1], [], 1.0)
            continue
        data = data[n:]


def run_trace(entry, spec, scale):
    """One run of a single-thread scenario on the loop under test (real
    time) or on the virtual clock."""
    sc = dict(entry["scenario"], id=entry["id"])
    if spec.name == "virtual":
        return single.run_one(sc)
    return single.run_one(sc, spec.name, spec.factory, scale)


def main(argv=None):
    faulthandler.enable()  # a crash of the loop under test leaves its traceback on stderr
    ap = argparse.ArgumentParser(description="runs one scenario N times (JSON lines out)")
    ap.add_argument("--loop", default=None)
    ap.add_argument("--adapter", default=None)
    args = ap.parse_args(argv)
    logging.getLogger("asyncio").setLevel(logging.CRITICAL + 1)
    warnings.filterwarnings("ignore", message="coroutine .* was never awaited")
    request = json.loads(sys.stdin.readline())
    entry = request["scenario"]
    spec = resolve(args.loop, args.adapter)
    emit({"hello": {"python": python_version(), "loop": spec.name, "loop_version": spec.version,
                    "pid": os.getpid()}})
    if corpus.kind_of(entry) == "trace":
        emit({"run": 0, "trace": run_trace(entry, spec, float(request.get("scale", 0.2)))})
        emit({"end": True})
        return 0
    poisoned = False
    for k in range(int(request.get("repeat", 1))):
        obs = Program(entry, spec.factory,
                      wait_timeout=float(request.get("wait_timeout", 5.0))).run()
        emit(dict(obs, run=k))
        if obs.get("poisoned"):
            poisoned = True
            break
        if any(e["ev"] in TIMEOUT_EVENTS for e in obs["log"]):
            break  # a run that timed out has failed; more would only cost time
    emit({"end": True, "poisoned": poisoned})
    # Threads a poisoned run left behind must not keep the process alive.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
