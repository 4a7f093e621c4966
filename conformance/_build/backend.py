"""A PEP 517 / PEP 660 build backend for the conformance kit, standard library only.

`pip install ./conformance` (or `pip wheel`, `pip install -e`) calls these
hooks. They need nothing beyond the interpreter, so an offline install in a
fresh virtual environment works on every supported Python: no setuptools,
no wheel package, no download.

The wheel holds the package `loopspec_conformance` and, under
`loopspec_conformance/data/`, the corpus the package runs: `scenarios/`
(single-thread), `threaded/`, `expectations/` and `loops.json`, copied from
the kit's directory. An editable install instead points a `.pth` file at the
kit's directory, where the package finds the corpus beside itself.

The project metadata below must agree with pyproject.toml; the kit's tests
check that it does.
"""

import base64
import hashlib
import io
import os
import re
import tarfile
import time
import zipfile

KIT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "loopspec_conformance"
NAME = "loopspec-conformance"
DIST = "loopspec_conformance"
SUMMARY = ("Checks how an asyncio-compatible event loop behaves across threads, "
           "against scenarios recorded from CPython")
REQUIRES_PYTHON = ">=3.10"
LICENSE = "MIT OR Apache-2.0"
SCRIPTS = {"loopspec-conformance": "loopspec_conformance.cli:main"}
# Corpus directories and files copied into the wheel under PACKAGE/data/.
DATA = ["scenarios", "threaded", "expectations", "loops.json"]
TAG = "py3-none-any"


def version():
    """The kit's version, read from loopspec_conformance/__init__.py."""
    with open(os.path.join(KIT, PACKAGE, "__init__.py"), encoding="utf-8") as f:
        m = re.search(r'^__version__ = "([^"]+)"', f.read(), re.M)
    if not m:
        raise RuntimeError("no __version__ in %s/__init__.py" % PACKAGE)
    return m.group(1)


def _metadata():
    lines = [
        "Metadata-Version: 2.1",
        "Name: " + NAME,
        "Version: " + version(),
        "Summary: " + SUMMARY,
        "License: " + LICENSE,
        "Requires-Python: " + REQUIRES_PYTHON,
        "Description-Content-Type: text/markdown",
        "",
    ]
    readme = os.path.join(KIT, "README.md")
    body = ""
    if os.path.exists(readme):
        with open(readme, encoding="utf-8") as f:
            body = f.read()
    return "\n".join(lines) + "\n" + body


def _dist_info_files():
    ver = version()
    info = "%s-%s.dist-info" % (DIST, ver)
    entry = "[console_scripts]\n" + "".join(
        "%s = %s\n" % (k, v) for k, v in sorted(SCRIPTS.items()))
    wheel = ("Wheel-Version: 1.0\nGenerator: loopspec-conformance backend\n"
             "Root-Is-Purelib: true\nTag: %s\n" % TAG)
    return info, {
        info + "/METADATA": _metadata(),
        info + "/WHEEL": wheel,
        info + "/entry_points.txt": entry,
        info + "/top_level.txt": PACKAGE + "\n",
    }


def _package_files():
    """(archive name, source path) of every file the wheel ships."""
    out = []
    pkg = os.path.join(KIT, PACKAGE)
    for root, dirs, files in os.walk(pkg):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for f in sorted(files):
            if f.endswith((".pyc", ".pyo")):
                continue
            src = os.path.join(root, f)
            out.append((os.path.relpath(src, KIT).replace(os.sep, "/"), src))
    for item in DATA:
        src = os.path.join(KIT, item)
        if os.path.isfile(src):
            out.append(("%s/data/%s" % (PACKAGE, item), src))
        elif os.path.isdir(src):
            for f in sorted(os.listdir(src)):
                if f.endswith(".json"):
                    out.append(("%s/data/%s/%s" % (PACKAGE, item, f), os.path.join(src, f)))
    return out


def _hash(data):
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _write_wheel(directory, entries):
    """Writes a wheel of `entries` ({archive name: bytes}) plus dist-info."""
    info, meta = _dist_info_files()
    name = "%s-%s-%s.whl" % (DIST, version(), TAG)
    files = dict(entries)
    files.update({k: v.encode("utf-8") for k, v in meta.items()})
    record = info + "/RECORD"
    rows = ["%s,%s,%d" % (k, _hash(v), len(v)) for k, v in sorted(files.items())]
    rows.append(record + ",,")
    files[record] = ("\n".join(rows) + "\n").encode("utf-8")
    path = os.path.join(directory, name)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for k in sorted(files):
            zi = zipfile.ZipInfo(k, date_time=(2020, 1, 1, 0, 0, 0))
            zi.external_attr = 0o644 << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(zi, files[k])
    return name


def _read(path):
    with open(path, "rb") as f:
        return f.read()


# -- PEP 517 hooks ------------------------------------------------------------


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    info, meta = _dist_info_files()
    for k, v in meta.items():
        path = os.path.join(metadata_directory, k)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(v)
    return info


prepare_metadata_for_build_editable = prepare_metadata_for_build_wheel


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    return _write_wheel(wheel_directory, {k: _read(src) for k, src in _package_files()})


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    """A wheel whose only content is a .pth file naming the kit's directory."""
    pth = (KIT + "\n").encode("utf-8")
    return _write_wheel(wheel_directory, {"__editable__.%s.pth" % DIST: pth})


def build_sdist(sdist_directory, config_settings=None):
    base = "%s-%s" % (DIST, version())
    name = base + ".tar.gz"
    members = ["pyproject.toml", "README.md", "_build/backend.py"]
    members += [k for k, _ in _package_files() if not k.startswith(PACKAGE + "/data/")]
    for item in DATA:
        src = os.path.join(KIT, item)
        if os.path.isfile(src):
            members.append(item)
        elif os.path.isdir(src):
            members += ["%s/%s" % (item, f) for f in sorted(os.listdir(src)) if f.endswith(".json")]
    path = os.path.join(sdist_directory, name)
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        pkg_info = _metadata().encode("utf-8")
        ti = tarfile.TarInfo(base + "/PKG-INFO")
        ti.size, ti.mtime, ti.mode = len(pkg_info), int(time.time()), 0o644
        tar.addfile(ti, io.BytesIO(pkg_info))
        for m in members:
            src = os.path.join(KIT, m)
            if os.path.exists(src):
                tar.add(src, arcname=base + "/" + m, recursive=False)
    return name
