"""Unified diffs of expected against observed outcomes, for failure reports."""

import difflib
import json

from .values import normalize


def pretty(v):
    """Stable, line-oriented JSON: one line per list item or object field."""
    return json.dumps(normalize(v), indent=1, sort_keys=True, ensure_ascii=False).splitlines()


def closest(allowed, observed):
    """The allowed outcome most like the observed one (for the diff)."""
    obs = pretty(observed)
    best, score = None, -1.0
    for a in allowed:
        s = difflib.SequenceMatcher(None, pretty(a), obs).ratio()
        if s > score:
            best, score = a, s
    return best


def unified(expected, observed, label="outcome"):
    """A unified diff, `expected` then `observed`; empty when equal."""
    lines = difflib.unified_diff(pretty(expected), pretty(observed),
                                 fromfile="expected " + label, tofile="observed " + label,
                                 lineterm="", n=3)
    return "\n".join(lines)
