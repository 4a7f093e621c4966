"""The single-thread trace runner (FORMAT.md, format 1).

Reads scenarios (conformance/FORMAT.md) as JSON lines on stdin and writes one
trace per line on stdout. One process runs any number of scenarios.

    python3 conformance/python/runner.py              # CPython asyncio, virtual clock
    python3 conformance/python/runner.py --loop asyncio  # stock asyncio loop, real time
    python3 conformance/python/runner.py --loop pkg.mod:fn  # any loop factory, real time

(`python/runner.py` is a shim for this module; `loopspec-conformance run
--corpus trace` runs the same scenarios one subprocess each.)

The virtual clock (the default) is a BaseEventLoop subclass whose time only
moves when the loop would wait: it then jumps by exactly the poll timeout, as
CPython's own test ``TestLoop`` does. Timers with equal deadlines run in the
order they were made (loopspec's SCHED-5 refinement; CPython's heap does not
promise it), and a TaskGroup cancels its children in the order they were
made (CPython iterates a set of them: by address).

In real time (``--loop``), one scenario time unit is ``--scale`` seconds
(default 0.2) and event times are rounded to whole units, so only scenarios
whose events are well separated in time give meaningful traces (the corpus
marks them ``"realtime": true``).

An input line is either a scenario object or a corpus file object (one with a
``scenario`` key, whose ``id`` is used). Output: ``{"id", "events", "final",
"meta"}`` or ``{"id", "runner_error"}``.
"""

import argparse
import asyncio
import heapq
import importlib
import itertools
import json
import logging
import math
import re
import sys
import threading
import traceback
import warnings

AWAITING = {"sleep", "yield", "await", "gather", "wait", "wait_for", "as_completed"}
# Blocks: `async with` statements whose body is a list of task steps. They
# are awaiting steps (tasks only): entering and leaving them suspends.
BLOCKS = {"task_group", "timeout", "timeout_at"}
AWAITING |= BLOCKS
RETURN_WHEN = {
    "ALL_COMPLETED": asyncio.ALL_COMPLETED,
    "FIRST_COMPLETED": asyncio.FIRST_COMPLETED,
    "FIRST_EXCEPTION": asyncio.FIRST_EXCEPTION,
}
_EXC_CLASSES = {}
# What a script catches: exceptions and cancellations, never GeneratorExit
# (a coroutine being closed), KeyboardInterrupt or SystemExit.
CAUGHT = (Exception, asyncio.CancelledError)
# More events than this means a scenario that never settles: a runner error.
MAX_EVENTS = 20000


class _OrderedSet:
    """A set that iterates in insertion order (the parts of `set` that
    asyncio.TaskGroup uses for its children)."""

    def __init__(self):
        self._d = {}

    def add(self, x):
        self._d[x] = None

    def discard(self, x):
        self._d.pop(x, None)

    def __contains__(self, x):
        return x in self._d

    def __iter__(self):
        return iter(list(self._d))

    def __len__(self):
        return len(self._d)


if hasattr(asyncio, "TaskGroup"):

    class _TaskGroup(asyncio.TaskGroup):
        """asyncio.TaskGroup whose children are cancelled in creation order.

        CPython keeps a group's children in a set, so when the group aborts
        it cancels them in set order — by object address, which no program
        controls — and that order shows in the trace (the children wake in
        it). loopspec cancels them in creation order; the runner does the
        same, as it makes equal-deadline timers FIFO."""

        def __init__(self):
            super().__init__()
            self._tasks = _OrderedSet()


class RunnerError(Exception):
    """The scenario cannot be run (bad input, or the loop would block forever)."""


def num(x):
    """A time value of the format: a number, or the string "nan"."""
    if x is None:
        return None
    if isinstance(x, str):
        if x.lower() == "nan":
            return math.nan
        raise RunnerError("bad number %r" % (x,))
    return float(x)


def exc_class(name):
    if name == "CancelledError":
        return asyncio.CancelledError
    if name == "TimeoutError":
        return TimeoutError
    cls = getattr(__import__("builtins"), name, None)
    if isinstance(cls, type) and issubclass(cls, BaseException):
        return cls
    if name not in _EXC_CLASSES:
        _EXC_CLASSES[name] = type(name, (Exception,), {})
    return _EXC_CLASSES[name]


def make_exc(spec):
    cls = exc_class(spec["type"])
    if spec.get("msg") is None:
        return cls()
    return cls(spec["msg"])


def _strip_repr(body):
    """Keeps the state, name and exception of a Task/Future repr body."""
    kind, _, rest = body.partition(" ")
    state = rest.split(" ", 1)[0] if rest else ""
    out = kind + (" " + state if state else "")
    m = re.search(r" name=('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")", rest)
    if m:
        out += " name=" + m.group(1)
    m = re.search(r" exception=(.*)$", rest)
    if m:
        out += " exception=" + m.group(1)
    return out


def normalize_reprs(text):
    """Rewrites CPython's Task/Future reprs to loopspec's shape: state, name
    and exception only (no coro=, wait_for=, cb= parts)."""
    out, i = [], 0
    pat = re.compile(r"<(Task|Future|_GatheringFuture) ")
    while True:
        m = pat.search(text, i)
        if not m:
            out.append(text[i:])
            return "".join(out)
        out.append(text[i:m.start()])
        depth, j = 0, m.start()
        while j < len(text):
            if text[j] == "<":
                depth += 1
            elif text[j] == ">":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        body = text[m.start() + 1:j]
        out.append("<" + _strip_repr(body) + ">")
        i = j + 1


_GROUP = getattr(__import__("builtins"), "BaseExceptionGroup", None)


def exc_out(e):
    if _GROUP is not None and isinstance(e, _GROUP):
        # ExceptionGroup(message, [sub-exceptions]): the message as its one
        # argument, the sub-exceptions (in order, recursively) apart.
        return {"exc": type(e).__name__, "args": [normalize_reprs(str(e.message))],
                "exceptions": [exc_out(x) for x in e.exceptions]}
    return {"exc": type(e).__name__, "args": [normalize_reprs(str(a)) for a in e.args]}


# ---------------------------------------------------------------------------
# The virtual-clock loop
# ---------------------------------------------------------------------------


class _FifoTimerHandle(asyncio.TimerHandle):
    """A timer ordered by (deadline, creation): equal deadlines run FIFO."""

    __slots__ = ("_seq",)

    def __lt__(self, other):
        return (self._when, self._seq) < (other._when, other._seq)

    def __le__(self, other):
        return (self._when, self._seq) <= (other._when, other._seq)

    def __gt__(self, other):
        return (self._when, self._seq) > (other._when, other._seq)

    def __ge__(self, other):
        return (self._when, self._seq) >= (other._when, other._seq)

    __hash__ = asyncio.TimerHandle.__hash__


class _VirtualSelector:
    """The poll step of the virtual loop: jumps the clock by the timeout."""

    def __init__(self, loop):
        self._loop = loop

    def select(self, timeout=None):
        lp = self._loop
        with lp._cond:
            if lp._woken:
                # A cross-thread submission is pending: do not wait.
                lp._woken = False
                return []
            if timeout is None:
                if not lp._external_pending:
                    raise RunnerError("the loop would block forever (no timer, nothing ready)")
                lp.parks += 1
                lp._cond.notify_all()
                while not lp._woken:
                    lp._cond.wait()
                lp._woken = False
                return []
        if timeout > 0:
            lp._vtime += timeout
        return []

    def close(self):
        pass


class VirtualLoop(asyncio.BaseEventLoop):
    """asyncio's BaseEventLoop on a virtual clock (CPython's TestLoop idea)."""

    def __init__(self):
        super().__init__()
        self._vtime = 0.0
        self._timer_seq = itertools.count()
        self._selector = _VirtualSelector(self)
        self._cond = threading.Condition()
        self._woken = False
        self._external_pending = False
        self.parks = 0
        # (when, time made) of every timer: tells whether a scenario's events
        # are well separated in time.
        self.timers = []

    def time(self):
        return self._vtime

    def call_at(self, when, callback, *args, context=None):
        if when is None:
            raise TypeError("when cannot be None")
        self._check_closed()
        timer = _FifoTimerHandle(when, callback, args, self, context)
        timer._seq = next(self._timer_seq)
        self.timers.append((when, self._vtime))
        heapq.heappush(self._scheduled, timer)
        timer._scheduled = True
        return timer

    def _process_events(self, event_list):
        pass

    def _write_to_self(self):
        with self._cond:
            self._woken = True
            self._cond.notify_all()


# ---------------------------------------------------------------------------
# Running a scenario
# ---------------------------------------------------------------------------


class _Handler:
    """The recording exception handler."""

    def __init__(self, runner):
        self.r = runner

    def __call__(self, loop, context):
        msg = context.get("message", "")
        if msg.startswith("Exception in callback"):
            exc = context.get("exception")
            args = [normalize_reprs(str(a)) for a in exc.args] if exc is not None else []
            self.r.ev(ev="reported", kind="callback", args=args)


def _raising_handler(loop, context):
    raise RuntimeError("exception handler failed")


class Runner:
    def __init__(self, sc, loop, scale=None):
        self.sc = sc
        self.loop = loop
        self.scale = scale
        self.events = []
        self.reg = {}  # name -> (kind, object); kind: task | future | gather
        self.handles = {}
        self.groups = {}  # task_group name -> asyncio.TaskGroup
        self.cms = {}  # timeout name -> asyncio.Timeout
        self.cb_funcs = {}
        self.t0 = loop.time()
        self.tasks = sc.get("tasks", {})
        self.callbacks = sc.get("callbacks", {})
        self.bad = None
        # Set once the trace is taken: coroutines closed when the loop is
        # closed (and collected) must not add events to it.
        self.finished = False

    def fail(self, msg):
        """A bad scenario: remembered (the run's runner_error) and raised."""
        if self.bad is None:
            self.bad = msg
        raise RunnerError(msg)

    # -- helpers ----------------------------------------------------------

    def now(self):
        t = self.loop.time() - self.t0
        if self.scale:
            return float(round(t / self.scale))
        return t

    def ev(self, **kw):
        if self.finished:
            return
        if len(self.events) >= MAX_EVENTS:
            if self.bad is None:
                self.bad = "more than %d events: the scenario never settles" % MAX_EVENTS
            self.loop.stop()
            return
        e = {"t": self.now()}
        e.update(kw)
        self.events.append(e)

    def rel(self, when):
        """A loop time as scenario time (as `now` gives event times)."""
        t = when - self.t0
        if self.scale:
            return float(round(t / self.scale))
        return t

    def secs(self, units):
        units = num(units)
        return units * self.scale if self.scale else units

    def obj(self, name):
        if name not in self.reg:
            self.fail("unknown future or task %r" % (name,))
        return self.reg[name][1]

    def conv(self, kind, value):
        """A result of a future of this kind as trace JSON."""
        if kind == "gather":
            return [exc_out(v) if isinstance(v, BaseException) else {"ok": v} for v in value]
        return value

    def outcome_of(self, kind, fut):
        try:
            return {"ok": self.conv(kind, fut.result())}
        except CAUGHT as e:
            return exc_out(e)

    def cb_func(self, name):
        """One function object per callback name, so remove_done_callback
        finds what add_done_callback added."""
        if name not in self.cb_funcs:
            if name not in self.callbacks:
                self.fail("unknown callback %r" % (name,))

            def run(*_args, _name=name):
                self.run_callback(_name)

            self.cb_funcs[name] = run
        return self.cb_funcs[name]

    def run_callback(self, name):
        self.ev(ev="cb", cb=name)
        for op in self.callbacks[name]:
            key, arg = op_of(op)
            if key in AWAITING or key == "return":
                self.fail("callback %r: %r is only allowed in a task" % (name, key))
            self.action(name, key, arg)

    def names_of(self, arg):
        return list(arg["of"])

    def children(self, names):
        out = []
        for n in names:
            kind, o = self.reg.get(n, (None, None))
            if kind not in ("task", "future"):
                self.fail("%r is not a task or a plain future" % (n,))
            out.append(o)
        return out

    def make_gather(self, arg):
        g = asyncio.gather(*self.children(self.names_of(arg)),
                           return_exceptions=bool(arg.get("return_exceptions", False)))
        if arg.get("as"):
            self.reg[arg["as"]] = ("gather", g)
        return g

    def create_task(self, name, group=None, label=None):
        label = label or name
        if name not in self.tasks:
            self.fail("unknown task %r" % (name,))
        if label in self.reg:
            self.fail("task %r created twice" % (label,))
        coro = self.script(name, label)
        try:
            if group is None:
                t = self.loop.create_task(coro)
            else:
                t = group.create_task(coro)
        except BaseException:
            coro.close()
            raise
        t.set_name(label)
        self.reg[label] = ("task", t)
        return t

    def group(self, name):
        if name not in self.groups:
            self.fail("unknown task group %r" % (name,))
        return self.groups[name]

    def cm(self, name):
        if name not in self.cms:
            self.fail("unknown timeout %r" % (name,))
        return self.cms[name]

    # -- synchronous actions ------------------------------------------------

    def action(self, by, key, arg):
        try:
            self._action(by, key, arg)
        except RunnerError:
            raise
        except CAUGHT as e:
            if key == "raise":
                raise
            self.ev(ev="error", by=by, op=key, out=exc_out(e))

    def _action(self, by, key, arg):
        lp = self.loop
        if key == "raise":
            raise make_exc(arg)
        if key == "cancel":
            target, msg = (arg, None) if isinstance(arg, str) else (arg["target"], arg.get("msg"))
            o = self.obj(target)
            ret = o.cancel() if msg is None else o.cancel(msg)
            self.ev(ev="cancel", by=by, target=target, ret=ret)
        elif key == "set_result":
            self.obj(arg["target"]).set_result(arg.get("value"))
        elif key == "set_exception":
            self.obj(arg["target"]).set_exception(make_exc(arg["exc"]))
        elif key == "result":
            self.obj(arg)
            kind, o = self.reg[arg]
            self.ev(ev="result", by=by, target=arg, out=self.outcome_of(kind, o))
        elif key == "add_done_callback":
            self.obj(arg["target"]).add_done_callback(self.cb_func(arg["cb"]))
        elif key == "remove_done_callback":
            n = self.obj(arg["target"]).remove_done_callback(self.cb_func(arg["cb"]))
            self.ev(ev="removed", by=by, target=arg["target"], cb=arg["cb"], ret=n)
        elif key in ("call_soon", "call_soon_threadsafe"):
            cb, handle = (arg, None) if isinstance(arg, str) else (arg["cb"], arg.get("handle"))
            h = getattr(lp, key)(self.cb_func(cb))
            if handle:
                self.handles[handle] = h
        elif key == "call_later":
            h = lp.call_later(self.secs(arg["delay"]), self.cb_func(arg["cb"]))
            if arg.get("handle"):
                self.handles[arg["handle"]] = h
        elif key == "call_at":
            h = lp.call_at(self.t0 + self.secs(arg["when"]), self.cb_func(arg["cb"]))
            if arg.get("handle"):
                self.handles[arg["handle"]] = h
        elif key == "cancel_handle":
            if arg in self.handles:  # a label not bound (yet) does nothing
                self.handles[arg].cancel()
        elif key == "stop":
            lp.stop()
        elif key == "create_task":
            self.create_task(arg)
        elif key == "tg_create_task":
            g = self.group(arg["group"])
            self.create_task(arg["coro"], g, arg.get("name"))
        elif key == "reschedule":
            cm = self.cm(arg["cm"])
            if arg.get("when") is not None:
                when = self.t0 + self.secs(arg["when"])
            elif arg.get("delay") is not None:
                when = lp.time() + self.secs(arg["delay"])
            else:
                when = None
            cm.reschedule(when)
        elif key == "expired":
            self.ev(ev="expired", by=by, cm=arg, ret=self.cm(arg).expired())
        elif key == "cm_when":
            w = self.cm(arg).when()
            self.ev(ev="cm_when", by=by, cm=arg, ret=None if w is None else self.rel(w))
        elif key == "shield":
            o = self.obj(arg["target"])
            if arg["name"] in self.reg:
                self.fail("%r named twice" % (arg["name"],))
            self.reg[arg["name"]] = ("future", asyncio.shield(o))
        elif key == "make_gather":
            if not arg.get("as"):
                self.fail("make_gather needs 'as'")
            self.make_gather(arg)
        elif key == "check":
            o = self.obj(arg)
            state = "cancelled" if o.cancelled() else "done" if o.done() else "pending"
            self.ev(ev="check", by=by, target=arg, state=state)
        elif key in ("cancelling", "uncancel"):
            ret = getattr(self.obj(arg), key)()
            self.ev(ev=key, by=by, target=arg, ret=ret)
        elif key == "record":
            self.ev(ev="record", by=by, label=arg)
        elif key == "set_handler":
            if arg == "record":
                lp.set_exception_handler(_Handler(self))
            elif arg == "raise":
                lp.set_exception_handler(_raising_handler)
            elif arg == "default":
                lp.set_exception_handler(None)
            else:
                self.fail("bad set_handler %r" % (arg,))
        else:
            self.fail("unknown operation %r" % (key,))

    # -- task scripts ---------------------------------------------------------

    async def script(self, name, label=None):
        label = label or name
        self.ev(ev="start", task=label)
        returned, value = await self.steps(label, self.tasks[name], None)
        return value if returned else None

    async def steps(self, name, steps, block):
        """Runs task steps; `block` names the enclosing block (None: the
        script itself). Returns (returned, value): whether a `return` step
        ended the script, and its value."""
        for i, step in enumerate(steps):
            key, arg = op_of(step)
            where = {} if block is None else {"block": block}
            if key in AWAITING:
                ret = None
                try:
                    if key in BLOCKS:
                        ret = await self.block(name, key, arg)
                        val = None
                    else:
                        val = await self.awaiting(name, key, arg)
                except CAUGHT as e:
                    self.ev(ev="resume", task=name, step=i, op=key, out=exc_out(e), **where)
                    if step.get("catch"):
                        continue
                    raise
                self.ev(ev="resume", task=name, step=i, op=key, out={"ok": val}, **where)
                if ret is not None:
                    return ret
            elif key == "return":
                return True, arg
            else:
                self.action(name, key, arg)
        return False, None

    async def block(self, name, key, arg):
        """An `async with` block; returns (True, value) when a `return` in
        its body ended the script, else None."""
        body = arg.get("body", [])
        if key == "task_group":
            cm = _TaskGroup()
            self.groups[arg["name"]] = cm
        elif key == "timeout":
            d = arg.get("delay")
            cm = asyncio.timeout(None if d is None else self.secs(d))
        else:
            w = arg.get("when")
            cm = asyncio.timeout_at(None if w is None else self.t0 + self.secs(w))
        if key != "task_group" and arg.get("name"):
            self.cms[arg["name"]] = cm
        label = arg.get("name") or key
        async with cm:
            returned, value = await self.steps(name, body, label)
            if returned:
                return True, value
        return None

    async def awaiting(self, name, key, arg):
        if key == "sleep":
            await asyncio.sleep(self.secs(arg))
            return None
        if key == "yield":
            await asyncio.sleep(0)
            return None
        if key == "await":
            self.obj(arg)
            kind, o = self.reg[arg]
            return self.conv(kind, await o)
        if key == "gather":
            return self.conv("gather", await self.make_gather(arg))
        if key == "wait":
            names = self.names_of(arg)
            objs = self.children(names)
            done, pending = await asyncio.wait(
                objs, timeout=None if arg.get("timeout") is None else self.secs(arg["timeout"]),
                return_when=RETURN_WHEN[arg.get("return_when", "ALL_COMPLETED")])
            order = []
            for n in names:
                if n not in order:
                    order.append(n)
            return {"done": [n for n in order if self.obj(n) in done],
                    "pending": [n for n in order if self.obj(n) in pending]}
        if key == "wait_for":
            target = arg["target"]
            timeout = None if arg.get("timeout") is None else self.secs(arg["timeout"])
            if isinstance(target, dict):
                coro_name = target["coro"]
                if coro_name not in self.tasks:
                    self.fail("unknown task %r" % (coro_name,))
                return await asyncio.wait_for(self.script(coro_name), timeout)
            self.obj(target)
            kind, o = self.reg[target]
            return self.conv(kind, await asyncio.wait_for(o, timeout))
        if key == "as_completed":
            objs = self.children(self.names_of(arg))
            timeout = None if arg.get("timeout") is None else self.secs(arg["timeout"])
            for f in asyncio.as_completed(objs, timeout=timeout):
                try:
                    out = {"ok": await f}
                except CAUGHT as e:
                    if self.loop.is_closed():
                        # The scenario is over and this task is being
                        # finalized: from 3.14 an interrupted wait gives its
                        # item back (SPEC ASCOMP-3), so going on would wait
                        # again and fail again, for ever.
                        raise
                    out = exc_out(e)
                self.ev(ev="yielded", task=name, out=out)
            return None
        self.fail("unknown operation %r" % (key,))

    # -- the main program ---------------------------------------------------

    def horizon(self):
        self.ev(ev="horizon")
        self.loop.stop()
        self.loop.call_later(self.secs(self.sc["horizon"]), self.horizon)

    def run_forever(self, arg):
        lp = self.loop
        names = (arg or {}).get("from_thread", [])
        for n in names:
            self.cb_func(n)
        if not names:
            return lp.run_forever()
        state = {"done": False}
        if isinstance(lp, VirtualLoop):
            lp._external_pending = True

            seen0 = lp.parks

            def external():
                seen = seen0
                for n in names:
                    with lp._cond:
                        while lp.parks <= seen and not state["done"]:
                            lp._cond.wait()
                        if state["done"]:
                            return
                        seen = lp.parks
                    lp.call_soon_threadsafe(self.cb_funcs[n])
        else:
            raise RunnerError("from_thread needs the virtual clock")
        th = threading.Thread(target=external, name="external")
        th.start()
        try:
            return lp.run_forever()
        finally:
            with lp._cond:
                state["done"] = True
                lp._cond.notify_all()
            th.join()
            lp._external_pending = False

    def run(self):
        lp = self.loop
        asyncio.set_event_loop(lp)
        lp.set_exception_handler(_Handler(self))
        if self.sc.get("eager_tasks"):
            lp.set_task_factory(asyncio.eager_task_factory)
        for f in self.sc.get("futures", []):
            self.reg[f] = ("future", lp.create_future())
        if self.sc.get("horizon", 100) is not None:
            self.sc.setdefault("horizon", 100)
            lp.call_at(self.t0 + self.secs(self.sc["horizon"]), self.horizon)
        for op in self.sc.get("main", []):
            if self.bad is not None:
                break
            key, arg = op_of(op)
            if key == "run_until_complete":
                try:
                    if "task" in arg:
                        kind = "task"
                        if arg["task"] not in self.reg:
                            self.create_task(arg["task"])
                        target = self.obj(arg["task"])
                    elif "future" in arg:
                        kind = self.reg[arg["future"]][0]
                        target = self.obj(arg["future"])
                    elif "gather" in arg:
                        kind = "gather"
                        target = self.make_gather(arg["gather"])
                    else:
                        self.fail("bad run_until_complete %r" % (arg,))
                    out = {"ok": self.conv(kind, lp.run_until_complete(target))}
                except RunnerError:
                    raise
                except CAUGHT as e:
                    out = exc_out(e)
                self.ev(ev="run_until_complete", out=out)
            elif key == "run_forever":
                try:
                    self.run_forever(arg)
                    out = {"ok": None}
                except RunnerError:
                    raise
                except CAUGHT as e:
                    out = exc_out(e)
                self.ev(ev="run_forever", out=out)
            elif key in AWAITING or key == "return":
                self.fail("%r is only allowed in a task" % (key,))
            else:
                self.action("main", key, arg)
        if self.bad is not None:
            raise RunnerError(self.bad)
        final = {}
        for name in sorted(self.reg):
            kind, o = self.reg[name]
            if not o.done():
                final[name] = {"state": "pending"}
            elif o.cancelled():
                final[name] = {"state": "cancelled", "args": self.outcome_of(kind, o)["args"]}
            else:
                final[name] = {"state": "finished", "out": self.outcome_of(kind, o)}
        return final


def op_of(op):
    keys = [k for k in op if k != "catch"]
    if len(keys) != 1:
        raise RunnerError("an operation has exactly one key besides 'catch': %r" % (op,))
    return keys[0], op[keys[0]]


def version():
    return "%d.%d.%d" % sys.version_info[:3]


def realtime_safe(loop, events, horizon):
    """Whether real-time loops can reproduce the trace: event times are whole
    units, no two timers with a positive delay share a deadline, and the run
    is short."""
    if any(float(e["t"]) != int(e["t"]) for e in events):
        return False
    if any(e["ev"] == "horizon" for e in events) and (horizon or 0) > 30:
        return False
    seen = set()
    for when, made in loop.timers:
        if when != when:  # NaN
            return False
        if when > made:
            if when in seen:
                return False
            seen.add(when)
    return True


def run_one(sc, loop_name="virtual", factory=None, scale=0.2):
    virtual = loop_name == "virtual"
    loop = VirtualLoop() if virtual else factory()
    runner = Runner(sc, loop, None if virtual else scale)
    trace = {"id": sc.get("id")}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            final = runner.run()
        runner.finished = True
        trace["events"] = list(runner.events)
        trace["final"] = final
        meta = {"python": version(), "loop": loop_name}
        if virtual:
            meta["realtime_safe"] = realtime_safe(loop, runner.events, sc.get("horizon", 100)) \
                and not any("from_thread" in (op.get("run_forever") or {})
                            for op in sc.get("main", []) if "run_forever" in op)
        trace["meta"] = meta
    except RunnerError as e:
        runner.finished = True
        trace = {"id": sc.get("id"), "runner_error": runner.bad or str(e)}
    except Exception:  # noqa: B902
        runner.finished = True
        trace = {"id": sc.get("id"), "runner_error": runner.bad or traceback.format_exc(limit=8)}
    finally:
        try:
            if loop.is_running():
                loop.stop()
            if not loop.is_closed():
                loop.close()
        except Exception:  # noqa: B902
            pass
        asyncio.set_event_loop(None)
    return trace


def loop_factory(name):
    if name == "asyncio":
        return asyncio.new_event_loop
    if name == "uvloop":
        import uvloop
        return uvloop.new_event_loop
    if name == "rloop":
        import rloop
        return rloop.new_event_loop
    mod, _, attr = name.partition(":")
    return getattr(importlib.import_module(mod), attr or "new_event_loop")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--loop", default="virtual",
                    help="virtual (default), asyncio, uvloop, rloop or module:factory")
    ap.add_argument("--scale", type=float, default=0.2,
                    help="seconds per time unit in real time (default 0.2)")
    ap.add_argument("--version", action="store_true", help="print the Python version and exit")
    args = ap.parse_args(argv)
    if args.version:
        print(version())
        return 0
    logging.getLogger("asyncio").setLevel(logging.CRITICAL + 1)
    # Coroutines of tasks that never started are collected after the run.
    warnings.filterwarnings("ignore", message="coroutine .* was never awaited")
    factory = None if args.loop == "virtual" else loop_factory(args.loop)
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except ValueError as e:
            print(json.dumps({"id": None, "runner_error": "bad JSON: %s" % e}), flush=True)
            continue
        sc = obj["scenario"] if "scenario" in obj else obj
        if "id" in obj and "scenario" in obj:
            sc = dict(sc, id=obj["id"])
        trace = run_one(sc, args.loop, factory, args.scale)
        sys.stdout.write(json.dumps(trace) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
