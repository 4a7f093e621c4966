"""From one run's observation to a verdict: its canonical outcome and the
invariants it breaks.

This is the only place where observations are interpreted, so a runner in any
language only has to produce observations (FORMAT.md, "Observations"). Both
functions are pure.

* `outcome(scenario, log)`: the scenario's `outcome` facets evaluated on the
  log (FORMAT.md, "Outcome"); without facets, every entry grouped by thread.
* `violations(scenario, observation)`: the scenario's `invariants`, plus the
  implicit ones — no bounded wait timed out, no thread hung, no runner error.
"""

from .values import normalize

# Entries whose presence fails a run whatever the scenario says.
FAILURE_EVENTS = ("wait_timeout", "barrier_timeout", "join_timeout", "hang", "runner_error")
# Entries that are never part of a default outcome (their values vary by run).
VOLATILE_EVENTS = ("flood_count",)


class BadScenario(Exception):
    """An outcome facet or invariant the format does not define."""


def matches(entry, pattern):
    """Whether `entry` has every field of `pattern`. A pattern value
    `{"any": [a, b]}` matches any of the listed values; numbers compare as
    numbers."""
    for k, want in pattern.items():
        if k not in entry:
            return False
        got = normalize(entry[k])
        if isinstance(want, dict) and set(want) == {"any"}:
            if got not in [normalize(x) for x in want["any"]]:
                return False
        elif got != normalize(want):
            return False
    return True


def strip(entry, *drop):
    return {k: v for k, v in entry.items() if k != "seq" and k not in drop}


def select(log, pattern):
    return [e for e in log if matches(e, pattern)]


# -- outcome ---------------------------------------------------------------------


def default_outcome(log):
    """Every entry but the volatile ones, grouped by the thread that recorded
    it, each group in recording order."""
    out = {}
    for e in log:
        if e["ev"] in VOLATILE_EVENTS:
            continue
        out.setdefault(e["thread"], []).append(strip(e, "thread"))
    return out


def facet(log, spec):
    if not isinstance(spec, dict) or len(spec) != 1:
        raise BadScenario("a facet is an object with one key: %r" % (spec,))
    (kind, arg), = spec.items()
    if kind == "thread":
        return [strip(e, "thread") for e in log
                if e["thread"] == arg and e["ev"] not in VOLATILE_EVENTS]
    if kind == "entries":
        drop = ("thread",) if "thread" in arg else ()
        return [strip(e, *drop) for e in select(log, arg)]
    if kind == "set":
        drop = ("thread",) if "thread" in arg else ()
        items = {json_key(strip(e, *drop)): strip(e, *drop) for e in select(log, arg)}
        return [items[k] for k in sorted(items)]
    if kind == "count":
        return len(select(log, arg))
    if kind == "any":
        return bool(select(log, arg))
    if kind == "first":
        found = select(log, arg)
        return strip(found[0]) if found else None
    if kind == "order":
        firsts = []
        for name, pattern in arg.items():
            found = select(log, pattern)
            if found:
                firsts.append((found[0]["seq"], name))
        return [name for _, name in sorted(firsts)]
    raise BadScenario("unknown outcome facet %r" % (kind,))


def json_key(v):
    import json
    return json.dumps(normalize(v), sort_keys=True)


def outcome(scenario, log):
    """The canonical outcome of one run (see the module docstring)."""
    spec = scenario.get("outcome")
    if spec is None:
        return default_outcome(log)
    return {name: facet(log, f) for name, f in spec.items()}


# -- invariants ----------------------------------------------------------------


def _count(log, arg):
    n = len(select(log, arg["of"]))
    bad = []
    if "eq" in arg and n != arg["eq"]:
        bad.append("expected %s of %s, saw %d" % (arg["eq"], arg["of"], n))
    if "min" in arg and n < arg["min"]:
        bad.append("expected at least %s of %s, saw %d" % (arg["min"], arg["of"], n))
    if "max" in arg and n > arg["max"]:
        bad.append("expected at most %s of %s, saw %d" % (arg["max"], arg["of"], n))
    return bad


def _none(log, pattern):
    found = select(log, pattern)
    return ["expected no %s, saw %d (first: %s)" % (pattern, len(found), strip(found[0]))] \
        if found else []


def _before(log, arg):
    a, b = select(log, arg["first"]), select(log, arg["then"])
    if a and b and a[-1]["seq"] > b[0]["seq"]:
        return ["%s came after %s" % (strip(a[-1]), strip(b[0]))]
    return []


def _none_after(log, arg):
    a = select(log, arg["after"])
    if not a:
        return []
    late = [e for e in select(log, arg["none"]) if e["seq"] > a[0]["seq"]]
    if late:
        return ["%d of %s after %s (first: %s)" % (len(late), arg["none"], strip(a[0]),
                                                  strip(late[0]))]
    return []


def _submissions(log, arg):
    """A burst's submissions (FORMAT.md, `burst`): refused ones never ran and
    were refused with the stated outcome; accepted ones ran once, or at most
    once; with `fifo`, they ran in submission order."""
    tag = arg["tag"]
    subs = select(log, {"ev": "submit", "tag": tag})
    ran = [e["i"] for e in select(log, {"ev": "ran", "tag": tag})]
    times = {}
    for i in ran:
        times[i] = times.get(i, 0) + 1
    bad = []
    accepted = arg.get("accepted", "exactly_once")
    for s in subs:
        n = times.get(s["i"], 0)
        if "exc" in s["out"]:
            if n:
                bad.append("submission %s#%d was refused but ran %d time(s)" % (tag, s["i"], n))
            want = arg.get("refused_with")
            if want is not None and normalize(s["out"]) != normalize(want):
                bad.append("submission %s#%d refused with %s, expected %s"
                           % (tag, s["i"], s["out"], want))
        elif accepted == "exactly_once" and n != 1:
            bad.append("submission %s#%d was accepted and ran %d time(s)" % (tag, s["i"], n))
        elif n > 1:
            bad.append("submission %s#%d ran %d times" % (tag, s["i"], n))
    known = {s["i"] for s in subs}
    for i in times:
        if i not in known:
            bad.append("%s#%d ran but was never submitted" % (tag, i))
    if arg.get("fifo") and ran != sorted(ran):
        bad.append("submissions %s ran out of order: %s" % (tag, ran[:20]))
    return bad[:10]


def _flood(log, arg):
    bad = []
    for e in select(log, {"ev": "flood_count", "tag": arg["tag"]}):
        if e["ran"] > e["submitted"]:
            bad.append("flood %s: %d ran of %d submitted" % (arg["tag"], e["ran"], e["submitted"]))
        if e["ran"] < arg.get("min_ran", 0):
            bad.append("flood %s: only %d ran" % (arg["tag"], e["ran"]))
    return bad


INVARIANTS = {
    "count": _count,
    "none": _none,
    "before": _before,
    "none_after": _none_after,
    "submissions": _submissions,
    "flood": _flood,
}


def violations(scenario, observation):
    """Every broken invariant of one run, as messages (empty: none)."""
    log = observation.get("log", [])
    bad = []
    if observation.get("runner_error"):
        bad.append("runner error: %s" % observation["runner_error"])
    for e in log:
        if e["ev"] in FAILURE_EVENTS:
            bad.append("%s: %s" % (e["ev"], strip(e)))
    for inv in scenario.get("invariants", []):
        if not isinstance(inv, dict) or len(inv) != 1:
            raise BadScenario("an invariant is an object with one key: %r" % (inv,))
        (kind, arg), = inv.items()
        if kind not in INVARIANTS:
            raise BadScenario("unknown invariant %r" % (kind,))
        bad += INVARIANTS[kind](log, arg)
    return bad


def judge(scenario, observation):
    """`{"outcome": ..., "violations": [...]}` of one run."""
    return {"outcome": outcome(scenario, observation.get("log", [])),
            "violations": violations(scenario, observation)}
