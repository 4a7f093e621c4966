"""loopspec's conformance kit: checks how an asyncio-compatible event loop
behaves across threads, against scenarios whose outcomes were recorded from
CPython.

Modules, one concept each:

* ``corpus``     finding and loading scenarios, versions and filters
* ``values``     outcomes: exceptions and values as JSON
* ``program``    the interpreter of threaded scenarios (format 2), in-process
* ``judge``      observations -> canonical outcome and invariant violations
* ``child``      the per-scenario subprocess: runs a scenario N times
* ``harness``    the parent: subprocesses with timeouts, histograms, verdicts
* ``expectations`` known failures, strict xfail
* ``results``    the JSON results file; ``jsonschema`` validates it
* ``record``, ``report``, ``matrix``  the other commands; ``cli`` parses them
* ``bench``      the cross-thread cost table; ``bench_child`` measures one loop
* ``single``     the single-thread trace runner (format 1)
"""

__version__ = "0.2.0"
FORMAT_VERSION = 2
