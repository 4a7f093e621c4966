"""The interpreter of threaded scenarios (FORMAT.md, format 2), in-process.

`Program(scenario, factory).run()` runs one scenario once in the calling
thread, which plays the scenario's `main` thread, and returns its
*observation*: the log of everything the scenario recorded, in the order it
was recorded, each entry with the scenario thread that recorded it. The log
is all a runner produces; `judge` turns it into an outcome and checks the
invariants, for any runner.

Guarantees:

* Every wait is bounded. A wait, barrier or join that times out records
  `wait_timeout` / `barrier_timeout` / `join_timeout` and ends the script
  that waited (the run has failed; the other threads go on).
* Threads synchronise only through the scenario's named events and barriers;
  nothing sleeps.
* After the main script, every thread is joined (bounded). A thread still
  alive is recorded as `hang`; the program then tries to unstick it (sets
  every event, stops every running loop) and reports whether that worked in
  `poisoned`: a poisoned process must not run another scenario.
* Loops the run made or saw and did not close are closed afterwards, and the
  main thread's current loop is cleared, so runs in one process do not leak
  into each other (except process-wide state: those scenarios run in a fresh
  process, `"process": "fresh"`).
"""

import asyncio
import concurrent.futures
import functools
import threading
import warnings

from .values import exc_out, make_exc, num, ok

# Steps that suspend a coroutine script.
AWAITING = {"await", "sleep", "yield", "task_group", "timeout", "shield", "to_thread",
            "shutdown_default_executor"}
# What a script catches: exceptions and cancellations, never the kit's Abort.
CAUGHT = (Exception, asyncio.CancelledError)
DEFAULT_WAIT = 10.0


class Abort(BaseException):
    """A bounded wait timed out: the script that waited stops."""


class ScenarioError(Exception):
    """The scenario is malformed (an unknown name or operation)."""


class NotCreated(Exception):
    """The operation that should have made this object failed (its failure
    is already recorded); an operation on it records this instead."""


def op_of(op):
    """(kind, argument) of an operation: its one key besides the modifiers."""
    keys = [k for k in op if k not in ("catch", "label")]
    if len(keys) != 1:
        raise ScenarioError("an operation has exactly one key besides catch and label: %r" % (op,))
    return keys[0], op[keys[0]]


def field(arg, key, default=None):
    """`arg[key]` when `arg` is an object; a string argument is the first field."""
    if isinstance(arg, dict):
        return arg.get(key, default)
    return default


class Program:
    """One run of one threaded scenario (see the module docstring)."""

    def __init__(self, scenario, factory, wait_timeout=DEFAULT_WAIT, record_warnings=None):
        prog = scenario["program"]
        self.callbacks = prog.get("callbacks", {})
        self.coroutines = prog.get("coroutines", {})
        self.scripts = prog["threads"]
        if "main" not in self.scripts:
            raise ScenarioError("no main thread script")
        self.factory = factory
        self.wait_timeout = float(scenario.get("wait_timeout", wait_timeout))
        self.events = {n: threading.Event() for n in prog.get("events", [])}
        self.barriers = {n: threading.Barrier(k) for n, k in prog.get("barriers", {}).items()}
        self.warn_categories = set(record_warnings if record_warnings is not None
                                   else scenario.get("warnings", ["DeprecationWarning"]))
        self.log = []
        self.lock = threading.Lock()
        self.seq = 0
        self.objs = {}          # name -> (kind, object)
        self.loop_ids = {}      # id(loop) -> name
        self.task_names = {}    # id(task) -> name
        self.handles = {}
        self.threads = {}       # scenario name -> threading.Thread
        self.thread_of = {}     # thread ident -> scenario name
        self.floods = {}        # tag -> [submitted, ran list]
        self.cb_cache = {}
        self.poisoned = False
        self.bad = None
        self.failed = set()     # names whose making operation failed

    # -- recording ------------------------------------------------------------

    def who(self):
        return self.thread_of.get(threading.get_ident(), "other")

    def rec(self, ev, **fields):
        entry = {"seq": 0, "thread": self.who(), "ev": ev}
        entry.update(fields)
        with self.lock:
            entry["seq"] = self.seq
            self.seq += 1
            self.log.append(entry)

    def _showwarning(self, message, category, filename, lineno, file=None, line=None):
        if category.__name__ in self.warn_categories:
            self.rec("warning", category=category.__name__, message=str(message))

    # -- names ----------------------------------------------------------------

    def loop_name(self, lp):
        """The scenario name of a loop; a loop the scenario did not name gets
        `loop#1`, `loop#2`... in the order the run first saw it."""
        if lp is None:
            return None
        name = self.loop_ids.get(id(lp))
        if name is None:
            name = "loop#%d" % (sum(1 for n in self.loop_ids.values() if n.startswith("loop#")) + 1)
            self.register(name, "loop", lp)
        return name

    def register(self, name, kind, obj):
        self.objs[name] = (kind, obj)
        if kind == "loop":
            self.loop_ids[id(obj)] = name
            try:
                obj.set_exception_handler(functools.partial(self._handler, name))
            except Exception:  # noqa: BLE001 - a loop without handlers still runs
                pass
        elif kind == "task":
            self.task_names[id(obj)] = name

    def bind(self, name, kind, obj):
        """Registers what an operation made, or notes that it made nothing."""
        if obj is None:
            self.failed.add(name)
        else:
            self.register(name, kind, obj)

    def get(self, name, *kinds):
        if name in self.failed and name not in self.objs:
            raise NotCreated(name)
        if name not in self.objs:
            raise ScenarioError("unknown name %r" % (name,))
        kind, obj = self.objs[name]
        if kinds and kind not in kinds:
            raise ScenarioError("%r is a %s, not a %s" % (name, kind, "/".join(kinds)))
        return obj

    def loop(self, arg):
        return self.get(arg if isinstance(arg, str) else arg["loop"], "loop")

    def _handler(self, loop_name, loop, context):
        exc = context.get("exception")
        if exc is not None:
            self.rec("reported", loop=loop_name, out=exc_out(exc))
        else:
            self.rec("reported", loop=loop_name, message=str(context.get("message")))

    # -- callables ------------------------------------------------------------

    def callback(self, name):
        """The callable of callback script `name` (the same object each time)."""
        if name not in self.callbacks:
            raise ScenarioError("unknown callback %r" % (name,))
        if name not in self.cb_cache:
            def cb(*_args):
                self.rec("cb", cb=name)
                try:
                    return self.exec_ops(self.callbacks[name])
                except Abort:
                    return None
            self.cb_cache[name] = cb
        return self.cb_cache[name]

    def coro(self, name):
        if name not in self.coroutines:
            raise ScenarioError("unknown coroutine %r" % (name,))
        return self.run_coro(name)

    def _tick(self, tag, i):
        self.rec("ran", tag=tag, i=i)

    # -- scripts --------------------------------------------------------------

    def exec_ops(self, ops):
        """Runs synchronous operations in order; returns the value of a
        `return` step (executor jobs), else None."""
        for op in ops:
            kind, arg = op_of(op)
            if kind == "return":
                return arg
            self.exec_op(op)
        return None

    def exec_op(self, op):
        kind, arg = op_of(op)
        if kind in AWAITING:
            raise ScenarioError("%r is only allowed in a coroutine" % (kind,))
        if kind == "raise":
            raise make_exc(arg)
        fn = getattr(self, "op_" + kind, None)
        if fn is None:
            raise ScenarioError("unknown operation %r" % (kind,))
        try:
            fn(arg, op)
        except NotCreated as e:
            self.rec(kind, out=exc_out(e))

    def call(self, kind, op, fn, always=False, conv=None, **fields):
        """Runs `fn`; records `{ev: kind, **fields, out}` when `always`, when
        the operation has a `label`, or when it raised. Returns fn's value."""
        try:
            value = fn()
            out = ok(conv(value) if conv else None)
        except (Abort, ScenarioError):
            raise
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as e:  # noqa: BLE001 - every failure is an outcome
            value, out = None, exc_out(e)
        if always or "label" in op or "exc" in out:
            if "label" in op:
                fields["label"] = op["label"]
            self.rec(kind, out=out, **fields)
        return value

    async def run_coro(self, name):
        self.rec("start", coro=name)
        try:
            t = asyncio.current_task()
        except RuntimeError:
            t = None
        if t is not None and id(t) not in self.task_names:
            self.task_names[id(t)] = name
        for i, step in enumerate(self.coroutines[name]):
            kind, arg = op_of(step)
            if kind == "return":
                return arg
            if kind not in AWAITING:
                self.exec_op(step)
                continue
            try:
                val = await self.awaiting(kind, arg)
            except CAUGHT as e:
                self.rec("resume", coro=name, step=i, op=kind, out=exc_out(e))
                if step.get("catch"):
                    continue
                raise
            self.rec("resume", coro=name, step=i, op=kind, out=ok(val))
        return None

    async def awaiting(self, kind, arg):
        if kind == "sleep":
            await asyncio.sleep(num(arg))
            return None
        if kind == "yield":
            await asyncio.sleep(0)
            return None
        if kind == "task_group":
            # async with TaskGroup() as tg: one child task per coroutine name.
            async with asyncio.TaskGroup() as tg:
                children = [tg.create_task(self.coro(c)) for c in arg]
            return [self.value_of(t.result()) for t in children]
        if kind == "timeout":
            # async with timeout(delay): await the coroutine, in this task.
            async with asyncio.timeout(num(arg["delay"]) if arg.get("delay") is not None else None):
                return self.value_of(await self.coro(arg["coro"]))
        if kind == "shield":
            return self.value_of(await asyncio.shield(self.get(arg, "future", "task")))
        if kind == "shutdown_default_executor":
            await self.loop(arg).shutdown_default_executor()
            return None
        if kind == "to_thread":
            return self.value_of(await asyncio.to_thread(self.callback(arg)))
        return self.value_of(await self.get(arg, "future", "task"))

    def value_of(self, v):
        """A result as JSON: loops by name, JSON values as they are."""
        if isinstance(v, asyncio.AbstractEventLoop):
            return self.loop_name(v)
        if v is None or isinstance(v, (bool, int, float, str, list, dict)):
            return v
        return repr(type(v).__name__)

    # -- threads and synchronisation ------------------------------------------

    def _thread_body(self, name):
        self.thread_of[threading.get_ident()] = name
        self.exec_script(name)

    def exec_script(self, name):
        try:
            self.exec_ops(self.scripts[name])
        except Abort:
            if name == "main":
                # The run has failed: let every other thread finish.
                for ev in self.events.values():
                    ev.set()
                for b in self.barriers.values():
                    b.abort()
        except ScenarioError as e:
            self.bad = self.bad or str(e)
            self.rec("runner_error", message=str(e))
        except BaseException as e:  # noqa: BLE001 - a raise at thread level
            self.rec("thread_raised", out=exc_out(e))

    def op_start(self, arg, op):
        if arg not in self.scripts or arg == "main":
            raise ScenarioError("unknown thread %r" % (arg,))
        th = threading.Thread(target=self._thread_body, args=(arg,), name=arg, daemon=True)
        self.threads[arg] = th
        th.start()

    def op_join(self, arg, op):
        th = self.threads.get(arg)
        if th is None:
            raise ScenarioError("thread %r was not started" % (arg,))
        th.join(self._timeout(op, arg))
        if th.is_alive():
            self.rec("join_timeout", target=arg)
            raise Abort()

    def _timeout(self, op, arg):
        t = field(arg, "timeout")
        return float(t) if t is not None else self.wait_timeout

    def _event(self, arg):
        name = arg if isinstance(arg, str) else arg["event"]
        if name not in self.events:
            raise ScenarioError("unknown event %r" % (name,))
        return name, self.events[name]

    def op_set(self, arg, op):
        self._event(arg)[1].set()

    def op_clear(self, arg, op):
        self._event(arg)[1].clear()

    def op_wait(self, arg, op):
        name, ev = self._event(arg)
        if not ev.wait(self._timeout(op, arg)):
            self.rec("wait_timeout", event=name)
            raise Abort()

    def op_arrive(self, arg, op):
        if arg not in self.barriers:
            raise ScenarioError("unknown barrier %r" % (arg,))
        try:
            self.barriers[arg].wait(self.wait_timeout)
        except threading.BrokenBarrierError:
            self.rec("barrier_timeout", barrier=arg)
            raise Abort()

    def op_repeat(self, arg, op):
        for _ in range(int(arg["n"])):
            self.exec_ops(arg["ops"])

    def op_record(self, arg, op):
        self.rec("record", label=arg)

    def op_thread_name(self, arg, op):
        self.rec("thread_name", name=threading.current_thread().name)

    # -- loops and the policy -------------------------------------------------

    def op_make_loop(self, arg, op):
        self.bind(arg, "loop", self.call("make_loop", op, self.factory))

    def op_new_event_loop(self, arg, op):
        self.bind(arg, "loop", self.call("new_event_loop", op, asyncio.new_event_loop))

    def op_set_event_loop(self, arg, op):
        lp = None if arg is None else self.loop(arg)
        self.call("set_event_loop", op, lambda: asyncio.set_event_loop(lp))

    def op_get_event_loop(self, arg, op):
        self.call("get_event_loop", op, asyncio.get_event_loop, always=True, conv=self.loop_name)

    def op_get_running_loop(self, arg, op):
        self.call("get_running_loop", op, asyncio.get_running_loop, always=True,
                  conv=self.loop_name)

    def op_loop_state(self, arg, op):
        lp = self.loop(arg)
        self.rec("loop_state", loop=arg, running=lp.is_running(), closed=lp.is_closed())

    def op_run_forever(self, arg, op):
        lp = self.loop(arg)
        self.call("run_forever", op, lp.run_forever, always=True, loop=arg)

    def op_run_until_complete(self, arg, op):
        lp = self.loop(arg)
        if "coro" in arg:
            target = self.coro(arg["coro"])
        else:
            target = self.get(arg["future"], "future", "task")

        self.call("run_until_complete", op, lambda: lp.run_until_complete(target), always=True,
                  conv=self.value_of, loop=arg["loop"])

    def op_stop(self, arg, op):
        self.call("stop", op, self.loop(arg).stop, loop=arg)

    def op_close(self, arg, op):
        self.call("close", op, self.loop(arg).close, always=True, loop=arg)

    def op_set_task_factory(self, arg, op):
        lp = self.loop(arg)
        factory = arg.get("factory")

        def setf():
            lp.set_task_factory(None if factory is None else getattr(asyncio, factory))
        self.call("set_task_factory", op, setf)

    # -- callbacks --------------------------------------------------------------

    def _schedule(self, kind, arg, op, make):
        lp = self.loop(arg)
        cb = self.callback(arg["cb"])
        h = self.call(kind, op, lambda: make(lp, cb), loop=arg["loop"], cb=arg["cb"])
        if arg.get("handle"):
            if h is None:
                self.failed.add(arg["handle"])  # refused, or no handle returned
            else:
                self.handles[arg["handle"]] = h

    def op_call_soon(self, arg, op):
        self._schedule("call_soon", arg, op, lambda lp, cb: lp.call_soon(cb))

    def op_call_soon_threadsafe(self, arg, op):
        self._schedule("call_soon_threadsafe", arg, op, lambda lp, cb: lp.call_soon_threadsafe(cb))

    def op_call_later(self, arg, op):
        d = num(arg.get("delay", 0))
        self._schedule("call_later", arg, op, lambda lp, cb: lp.call_later(d, cb))

    def op_stop_threadsafe(self, arg, op):
        """`loop.call_soon_threadsafe(loop.stop)`: the portable cross-thread stop."""
        lp = self.loop(arg)
        self.call("stop_threadsafe", op, lambda: lp.call_soon_threadsafe(lp.stop), loop=arg)

    def op_cancel_handle(self, arg, op):
        if arg in self.failed and arg not in self.handles:
            raise NotCreated(arg)
        if arg not in self.handles:
            raise ScenarioError("unknown handle %r" % (arg,))
        self.call("cancel_handle", op, self.handles[arg].cancel, handle=arg)

    def op_burst(self, arg, op):
        """n submissions of a built-in callback that records `ran` (tag, i);
        each submission records `submit` with its outcome."""
        lp, tag = self.loop(arg), arg["tag"]
        via = arg.get("via", "call_soon_threadsafe")
        submit = getattr(lp, via)
        for i in range(int(arg["n"])):
            closed_before = lp.is_closed()
            try:
                submit(functools.partial(self._tick, tag, i))
                out = ok(None)
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as e:  # noqa: BLE001
                out = exc_out(e)
            self.rec("submit", tag=tag, i=i, closed_before=closed_before, out=out)

    def op_flood(self, arg, op):
        """Submits no-op callbacks without pause until event `until` is set,
        `max` were submitted, or one is refused; sets event `signal` after
        the first `signal_after` submissions. The counts go to `flood_count`
        at the end of the run (they are not an outcome: they vary)."""
        lp, tag = self.loop(arg), arg["tag"]
        _, until = self._event(arg["until"])
        signal = self._event(arg["signal"])[1] if arg.get("signal") else None
        signal_after = int(arg.get("signal_after", 1))
        limit = int(arg.get("max", 1_000_000))
        counts = self.floods.setdefault(tag, [0, []])
        ran = counts[1]
        tick = functools.partial(ran.append, None)
        ended, out = "max", ok(None)
        n = 0
        while n < limit:
            if n % 64 == 0 and until.is_set():
                ended = "until"
                break
            try:
                lp.call_soon_threadsafe(tick)
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as e:  # noqa: BLE001
                ended, out = "refused", exc_out(e)
                break
            n += 1
            counts[0] += 1
            if signal is not None and n == signal_after:
                signal.set()
        self.rec("flood", tag=tag, ended=ended, out=out)

    # -- futures, tasks, concurrent futures -----------------------------------

    def op_create_future(self, arg, op):
        lp = self.loop(arg)
        self.bind(arg["as"], "future", self.call("create_future", op, lp.create_future))

    def op_create_task(self, arg, op):
        lp = self.loop(arg)
        name = arg.get("as", arg["coro"])
        coro = self.coro(arg["coro"])

        def make():
            try:
                t = lp.create_task(coro)
            except BaseException:
                coro.close()
                raise
            self.task_names[id(t)] = name
            try:
                t.set_name(name)
            except Exception:  # noqa: BLE001 - a task without names
                pass
            return t
        self.bind(name, "task", self.call("create_task", op, make, coro=arg["coro"]))

    def op_run_coroutine_threadsafe(self, arg, op):
        lp = self.loop(arg)
        coro = self.coro(arg["coro"])

        def submit():
            try:
                return asyncio.run_coroutine_threadsafe(coro, lp)
            except BaseException:
                coro.close()
                raise
        self.bind(arg["as"], "cf", self.call("run_coroutine_threadsafe", op, submit,
                                             loop=arg["loop"], coro=arg["coro"]))

    def op_wrap_future(self, arg, op):
        src = self.get(arg["cf"], "cf", "future", "task")
        lp = self.loop(arg)
        fut = self.call("wrap_future", op, lambda: asyncio.wrap_future(src, loop=lp))
        self.bind(arg["as"], "future", fut)
        if fut is not None:
            same = fut is src
            if "label" in op or arg.get("check_identity"):
                self.rec("wrap_future", target=arg["as"], same_object=same)

    def op_cf_new(self, arg, op):
        self.register(arg, "cf", concurrent.futures.Future())

    def op_set_running(self, arg, op):
        cf = self.get(arg, "cf")
        self.call("set_running", op, cf.set_running_or_notify_cancel, always=True,
                  conv=lambda v: v, target=arg)

    def op_set_result(self, arg, op):
        f = self.get(arg["target"], "cf", "future", "task")
        self.call("set_result", op, lambda: f.set_result(arg.get("value")), target=arg["target"])

    def op_set_exception(self, arg, op):
        f = self.get(arg["target"], "cf", "future", "task")
        self.call("set_exception", op, lambda: f.set_exception(make_exc(arg["exc"])),
                  target=arg["target"])

    def op_cancel(self, arg, op):
        target = arg if isinstance(arg, str) else arg["target"]
        msg = field(arg, "msg")
        f = self.get(target, "cf", "future", "task")
        self.call("cancel", op, (lambda: f.cancel()) if msg is None else (lambda: f.cancel(msg)),
                  always=True, conv=lambda v: v, target=target)

    def op_state(self, arg, op):
        """Records a future's state without waiting: pending, running (a
        concurrent future), cancelled, or finished with its outcome."""
        self.get(arg)
        kind, f = self.objs[arg]
        if f.cancelled():
            self.rec("state", target=arg, state="cancelled")
        elif f.done():
            e = f.exception() if kind == "cf" else f.exception()
            out = exc_out(e) if e is not None else ok(self.value_of(f.result()))
            self.rec("state", target=arg, state="finished", out=out)
        elif kind == "cf" and f.running():
            self.rec("state", target=arg, state="running")
        else:
            self.rec("state", target=arg, state="pending")

    def op_result(self, arg, op):
        """`f.result(timeout)`; a concurrent future waits at most `timeout`
        seconds (a bounded wait whose TimeoutError is an outcome)."""
        target = arg if isinstance(arg, str) else arg["target"]
        self.get(target)
        kind, f = self.objs[target]
        if kind == "cf":
            t = field(arg, "timeout")
            timeout = self.wait_timeout if t is None else float(t)
            fn = functools.partial(f.result, timeout)
        else:
            fn = f.result
        self.call("result", op, fn, always=True, conv=self.value_of, target=target)

    def op_add_done_callback(self, arg, op):
        f = self.get(arg["target"], "cf", "future", "task")
        cb = self.callback(arg["cb"])
        self.call("add_done_callback", op, lambda: f.add_done_callback(cb), target=arg["target"])

    def op_current_task(self, arg, op):
        def current():
            t = asyncio.current_task()
            return None if t is None else self.task_names.get(id(t), "other")
        self.call("current_task", op, current, always=True, conv=lambda v: v)

    # -- executors --------------------------------------------------------------

    def op_executor_new(self, arg, op):
        ex = concurrent.futures.ThreadPoolExecutor(max_workers=arg.get("workers"),
                                                   thread_name_prefix=arg["as"])
        self.register(arg["as"], "executor", ex)

    def op_set_default_executor(self, arg, op):
        lp, ex = self.loop(arg["loop"]), self.get(arg["executor"], "executor")
        self.call("set_default_executor", op, lambda: lp.set_default_executor(ex))

    def op_executor_submit(self, arg, op):
        ex = self.get(arg["executor"], "executor")
        job = self.callback(arg["job"])
        self.bind(arg["as"], "cf", self.call("executor_submit", op, lambda: ex.submit(job),
                                             executor=arg["executor"]))

    def op_executor_shutdown(self, arg, op):
        ex = self.get(arg["executor"], "executor")
        self.call("executor_shutdown", op,
                  lambda: ex.shutdown(wait=bool(arg.get("wait", False))), executor=arg["executor"])

    def op_run_in_executor(self, arg, op):
        lp = self.loop(arg)
        ex = None if arg.get("executor") is None else self.get(arg["executor"], "executor")
        job = self.callback(arg["job"])
        self.bind(arg["as"], "future", self.call("run_in_executor", op,
                                                 lambda: lp.run_in_executor(ex, job),
                                                 loop=arg["loop"], job=arg["job"]))

    # -- asyncio.run and asyncio.Runner ---------------------------------------

    def _factory_kw(self, arg):
        return {"loop_factory": self.factory} if field(arg, "loop_factory") else {}

    def op_asyncio_run(self, arg, op):
        coro = self.coro(arg["coro"])

        self.call("asyncio_run", op, lambda: asyncio.run(coro, **self._factory_kw(arg)),
                  always=True, conv=self.value_of)

    def op_runner_new(self, arg, op):
        self.bind(arg["as"], "runner",
                  self.call("runner_new", op, lambda: asyncio.Runner(**self._factory_kw(arg))))

    def op_runner_run(self, arg, op):
        r = self.get(arg["runner"], "runner")
        coro = self.coro(arg["coro"])

        self.call("runner_run", op, lambda: r.run(coro), always=True, conv=self.value_of,
                  runner=arg["runner"])

    def op_runner_get_loop(self, arg, op):
        r = self.get(arg["runner"], "runner")

        def get():
            lp = r.get_loop()
            if id(lp) not in self.loop_ids and arg.get("as"):
                self.register(arg["as"], "loop", lp)
            return lp
        self.call("runner_get_loop", op, get, always=True, conv=self.loop_name,
                  runner=arg["runner"])

    def op_runner_close(self, arg, op):
        self.call("runner_close", op, self.get(arg, "runner").close, always=True, runner=arg)

    def op_runner_enter(self, arg, op):
        r = self.get(arg, "runner")
        self.call("runner_enter", op, r.__enter__, always=True, conv=lambda v: v is r, runner=arg)

    def op_runner_exit(self, arg, op):
        r = self.get(arg, "runner")
        self.call("runner_exit", op, lambda: r.__exit__(None, None, None), always=True, runner=arg)

    # -- functions that find the loop themselves (POLICY-11) --------------------

    def op_future_without_loop(self, arg, op):
        self.call("future_without_loop", op, lambda: asyncio.Future().get_loop(), always=True,
                  conv=self.loop_name)

    def op_ensure_future_without_loop(self, arg, op):
        coro = self.coro(arg)

        def ensure():
            try:
                t = asyncio.ensure_future(coro)
            except BaseException:
                coro.close()
                raise
            return t.get_loop()
        self.call("ensure_future_without_loop", op, ensure, always=True, conv=self.loop_name)

    def op_gather_without_loop(self, arg, op):
        self.call("gather_without_loop", op, lambda: asyncio.gather().get_loop(), always=True,
                  conv=self.loop_name)

    def op_policy_api(self, arg, op):
        """Touches one name of the policy API (POLICY-14):
        `get_event_loop_policy` and `set_event_loop_policy` are called (the
        latter with None), the class names are read."""
        def touch():
            if arg == "get_event_loop_policy":
                asyncio.get_event_loop_policy()
            elif arg == "set_event_loop_policy":
                asyncio.set_event_loop_policy(None)
            elif arg in ("DefaultEventLoopPolicy", "AbstractEventLoopPolicy"):
                getattr(asyncio, arg)
            else:
                raise ScenarioError("unknown policy API name %r" % (arg,))
        self.call("policy_api", op, touch, always=True, name=arg)

    # -- the run ----------------------------------------------------------------

    def run(self):
        """Runs the scenario once; returns its observation."""
        self.thread_of[threading.get_ident()] = "main"
        old_show = warnings.showwarning
        warnings.showwarning = self._showwarning
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("always")
                warnings.showwarning = self._showwarning
                self.exec_script("main")
                self._finish_threads()
        finally:
            warnings.showwarning = old_show
        for tag in sorted(self.floods):
            submitted, ran = self.floods[tag]
            self.rec("flood_count", tag=tag, submitted=submitted, ran=len(ran))
        log = list(self.log)
        self._cleanup()
        obs = {"log": log, "poisoned": self.poisoned}
        if self.bad:
            obs["runner_error"] = self.bad
        return obs

    def _finish_threads(self):
        for name, th in self.threads.items():
            th.join(self.wait_timeout)
            if th.is_alive():
                self.rec("hang", target=name)
        stuck = [th for th in self.threads.values() if th.is_alive()]
        if not stuck:
            return
        for ev in self.events.values():
            ev.set()
        for kind, obj in list(self.objs.values()):
            if kind == "loop" and obj.is_running():
                try:
                    obj.call_soon_threadsafe(obj.stop)
                except Exception:  # noqa: BLE001
                    pass
        for th in stuck:
            th.join(2.0)
        self.poisoned = any(th.is_alive() for th in stuck)

    def _cleanup(self):
        for kind, obj in list(self.objs.values()):
            try:
                if kind == "loop" and not obj.is_running() and not obj.is_closed():
                    obj.close()
                elif kind == "executor":
                    obj.shutdown(wait=False)
                elif kind == "runner":
                    obj.close()
            except Exception:  # noqa: BLE001 - cleanup is best effort
                pass
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                asyncio.set_event_loop(None)
        except Exception:  # noqa: BLE001
            pass
