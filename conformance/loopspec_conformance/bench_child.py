"""The subprocess of `loopspec-conformance bench`: measures the cross-thread
workloads W1 and W2 on one asyncio-compatible loop, on the interpreter that
runs it, and prints one JSON line.

    python -m loopspec_conformance.bench_child --loop NAME --factory MODULE:FACTORY \\
        [--n 200000] [--r 2000] [--samples 5] [--warmup 1] [--wait-timeout 120]

* W1: the loop runs forever in a thread of its own; this (the main) thread
  submits N counting callbacks with `loop.call_soon_threadsafe`; a sample is
  the time from the first submit until the loop ran the last one (that
  callback reads the clock), in ns per callback.
* W2: the loop runs forever in a thread of its own; this thread makes R
  sequential `asyncio.run_coroutine_threadsafe(coro(), loop).result()` calls
  of a coroutine that returns at once; a sample is their time, in µs per
  round trip.

Each workload runs `--warmup` times unmeasured, then `--samples` times. The
line: `{"loop", "loop_version", "python", "implementation", "available":
true, "w1": {"n", "unit", "samples"}, "w2": {...}}`; a loop whose factory
cannot be imported or called gives `"available": false` and a `reason`
(exit status 0), and a run that fails or passes a bounded wait gives an
`error` (exit status 1). loopspec's and tokio's line comes from the Rust
binary `xloop_bench`, in the same shape.

Standard library only, and nothing of the kit is imported: the child runs
on any interpreter the bench is given.
"""

import argparse
import asyncio
import importlib
import json
import platform
import sys
import threading
import time

from .versions import distribution_version, python_version


def load_factory(spec):
    """(factory, version) of MODULE:FACTORY; raises when it cannot be had."""
    module_name, _, attr = spec.partition(":")
    module = importlib.import_module(module_name)
    factory = getattr(module, attr or "new_event_loop")
    if module_name == "asyncio":
        version = python_version()
    else:
        version = getattr(module, "__version__", None) or distribution_version(module_name)
    return factory, version


class LoopThread:
    """A loop from `factory` running forever on a thread of its own."""

    def __init__(self, factory, wait):
        self.loop = factory()
        self.wait = wait
        self.failure = None
        self.thread = threading.Thread(target=self._run, name="bench-loop", daemon=True)
        self.thread.start()
        started = threading.Event()
        self.loop.call_soon_threadsafe(started.set)
        if not started.wait(wait):
            raise RuntimeError("the loop did not start running within %ss" % wait)

    def _run(self):
        try:
            self.loop.run_forever()
        except BaseException as e:  # noqa: BLE001 - reported by stop()
            self.failure = e

    def stop(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(self.wait)
        if self.thread.is_alive():
            raise RuntimeError("the loop did not stop within %ss" % self.wait)
        if self.failure is not None:
            raise self.failure
        self.loop.close()


def measure(warmup, samples, one):
    for _ in range(warmup):
        one()
    return [one() for _ in range(samples)]


def w1(factory, n, warmup, samples, wait):
    """W1: ns per `call_soon_threadsafe`, from the first submit until the
    loop ran the last callback."""
    lt = LoopThread(factory, wait)
    submit = lt.loop.call_soon_threadsafe
    clock = time.perf_counter_ns

    def one():
        count = [0]
        end = [0]
        done = threading.Event()

        def callback():
            count[0] += 1
            if count[0] == n:
                end[0] = clock()
                done.set()

        start = clock()
        for _ in range(n):
            submit(callback)
        if not done.wait(wait):
            raise RuntimeError("W1: %d of %d callbacks ran within %ss" % (count[0], n, wait))
        return (end[0] - start) / n

    try:
        return measure(warmup, samples, one)
    finally:
        lt.stop()


async def trivial(i):
    return i


def w2(factory, r, warmup, samples, wait):
    """W2: µs per sequential `run_coroutine_threadsafe(...).result()`."""
    lt = LoopThread(factory, wait)
    loop = lt.loop
    run = asyncio.run_coroutine_threadsafe
    clock = time.perf_counter_ns

    def one():
        start = clock()
        for i in range(r):
            if run(trivial(i), loop).result(wait) != i:
                raise RuntimeError("W2: a round trip returned the wrong value")
        return (clock() - start) / 1000.0 / r

    try:
        return measure(warmup, samples, one)
    finally:
        lt.stop()


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m loopspec_conformance.bench_child")
    ap.add_argument("--loop", required=True, help="the loop's name in the output")
    ap.add_argument("--factory", default="asyncio:new_event_loop", metavar="MODULE:FACTORY")
    ap.add_argument("--n", type=int, default=200_000, help="W1: callbacks per sample")
    ap.add_argument("--r", type=int, default=2_000, help="W2: round trips per sample")
    ap.add_argument("--samples", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--wait-timeout", type=float, default=120.0,
                    help="bound of each wait, in seconds")
    args = ap.parse_args(argv)
    line = {"loop": args.loop, "loop_version": None, "python": python_version(),
            "implementation": platform.python_implementation()}
    try:
        factory, line["loop_version"] = load_factory(args.factory)
        factory().close()
    except Exception as e:  # noqa: BLE001 - any failure to load is "not available"
        line.update(available=False, reason="%s: %s" % (type(e).__name__, e))
        print(json.dumps(line), flush=True)
        return 0
    line["available"] = True
    n, r = max(1, args.n), max(1, args.r)
    samples, warmup = max(1, args.samples), max(0, args.warmup)
    try:
        line["w1"] = {"n": n, "unit": "ns per call",
                      "samples": w1(factory, n, warmup, samples, args.wait_timeout)}
        line["w2"] = {"n": r, "unit": "us per round trip",
                      "samples": w2(factory, r, warmup, samples, args.wait_timeout)}
    except Exception as e:  # noqa: BLE001 - reported, and the exit status says it
        line.pop("w1", None)
        line["error"] = "%s: %s" % (type(e).__name__, e)
        print(json.dumps(line), flush=True)
        return 1
    print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
