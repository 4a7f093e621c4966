"""Known failures of an implementation (`expectations/<loop>.json`), and the
strict-xfail verdict.

An entry names a scenario and optionally the Python minors and loop versions
it holds for, the rules, the reason, the upstream `link`, and a `status`:

* ``FAIL`` (default): the scenario fails; it passing is an XPASS.
* ``TIMEOUT``: it hangs (kept as a failure; XPASS if it passes).
* ``CRASH``: not run at all (it would take the runner down).
* ``FLAKY``: it may pass or fail (a race the loop loses only sometimes);
  never an XPASS.
"""

import json
import os

from . import corpus

STATUSES = ("FAIL", "TIMEOUT", "CRASH", "FLAKY")


def load(name, directory=None):
    """{scenario id: [entries]} of `expectations/<name>.json` ({} if none)."""
    path = os.path.join(directory or corpus.data_path("expectations"), name + ".json")
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    out = {}
    for item in data.get("failures", []):
        out.setdefault(item["scenario"], []).append(item)
    return out


def lookup(expectations, scenario_id, minor, loop_version=None):
    """The entry that covers this scenario on this Python minor and loop
    version, or None."""
    for item in expectations.get(scenario_id, []):
        if item.get("python") and minor not in item["python"]:
            continue
        if item.get("loop_versions") and loop_version not in item["loop_versions"]:
            continue
        return item
    return None


def verdict(passed, item, strict=True):
    """pass / fail / xfail / xpass / flaky-pass for a result and its entry."""
    if item is None:
        return "pass" if passed else "fail"
    status = item.get("status", "FAIL")
    if status == "FLAKY":
        return "xfail" if not passed else "pass"
    if passed:
        return "xpass" if strict else "pass"
    return "xfail"
