"""Outcomes as JSON: how results and exceptions are written down.

An outcome is ``{"ok": value}`` or ``{"exc": "ClassName", "args": [...]}``
(the exception's arguments as strings). Reprs inside messages are reduced to
what every implementation can print: task and future reprs keep their state,
name and exception; addresses become ``0x…``; event loop reprs lose their class
name. These functions are pure and shared by both runners.
"""

import math
import re

# The exception classes a scenario may raise by name besides the builtins.
_USER_CLASSES = {}


def _strip_task_repr(body):
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


_ASYNC_REPR = re.compile(r"<(Task|Future|_GatheringFuture) ")
_LOOP_REPR = re.compile(r"<[\w.]+ running=(True|False) closed=(True|False) debug=(True|False)>")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")


def normalize_reprs(text):
    """Rewrites reprs inside a message so that it does not depend on the
    implementation or the run (see the module docstring)."""
    text = _LOOP_REPR.sub(lambda m: "<loop running=%s closed=%s debug=%s>" % m.groups(), text)
    out, i = [], 0
    while True:
        m = _ASYNC_REPR.search(text, i)
        if not m:
            out.append(text[i:])
            break
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
        # concurrent.futures reprs (<Future at 0x... state=...>) keep their shape.
        out.append("<" + (body if body.startswith("Future at ") else _strip_task_repr(body)) + ">")
        i = j + 1
    return _ADDRESS.sub("0x…", "".join(out))


def exc_out(e):
    """The outcome of an exception: its class name and its arguments as strings."""
    return {"exc": type(e).__name__, "args": [normalize_reprs(str(a)) for a in e.args]}


def ok(value):
    return {"ok": value}


def exc_class(name):
    """The class a scenario names: asyncio's CancelledError, a builtin, or an
    Exception subclass made once per name."""
    import asyncio
    if name == "CancelledError":
        return asyncio.CancelledError
    builtin = getattr(__import__("builtins"), name, None)
    if isinstance(builtin, type) and issubclass(builtin, BaseException):
        return builtin
    if name not in _USER_CLASSES:
        _USER_CLASSES[name] = type(name, (Exception,), {})
    return _USER_CLASSES[name]


def make_exc(spec):
    """An exception from ``{"type": "ValueError", "msg": "x"}`` (no msg: no argument)."""
    cls = exc_class(spec["type"])
    return cls() if spec.get("msg") is None else cls(spec["msg"])


def num(x):
    """A time value: a number, or the string "nan"."""
    if isinstance(x, str) and x.lower() == "nan":
        return math.nan
    return float(x)


def normalize(v):
    """Numbers as floats, recursively, so that 1 and 1.0 compare equal."""
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, list):
        return [normalize(x) for x in v]
    return {k: normalize(x) for k, x in v.items()}


def canonical(v):
    """One string per value: equal values (numbers as numbers, keys in any
    order) give equal strings. Used as a histogram key."""
    import json
    return json.dumps(normalize(v), sort_keys=True, ensure_ascii=False)
