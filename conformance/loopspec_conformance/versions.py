"""Versions for the kit's result lines: the interpreter's, and a loop's from
its installed distribution. Standard library only, so that the children that
measure a loop (`bench_child`) import nothing else of the kit."""

import sys


def distribution_version(module_name):
    """The version of the installed distribution that provides a module."""
    import importlib.metadata as md
    top = module_name.split(".")[0]
    try:
        dists = md.packages_distributions().get(top, [top])
    except Exception:  # noqa: BLE001
        dists = [top]
    for d in dists:
        try:
            return md.version(d)
        except md.PackageNotFoundError:
            continue
    return None


def python_version():
    return "%d.%d.%d" % sys.version_info[:3]
