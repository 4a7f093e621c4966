"""A small JSON Schema validator, standard library only.

It understands the subset of JSON Schema (2020-12) that the kit's own
schemas use: `type` (one or a list), `properties`, `required`,
`additionalProperties` (false or a schema), `items`, `enum`, `const`,
`minimum`, `minItems`, `pattern`, `anyOf`, `oneOf`, and `$ref` to
`#/$defs/...`. Anything else in a schema is an error, so a schema cannot
silently ask for more than is checked.
"""

import json
import os
import re

SCHEMAS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schemas")
KNOWN = {"$schema", "$id", "$defs", "$ref", "title", "description", "type", "properties",
         "required", "additionalProperties", "items", "enum", "const", "minimum", "minItems",
         "pattern", "anyOf", "oneOf", "default", "examples"}
TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


class SchemaError(Exception):
    """The schema itself uses something this validator does not check."""


def load_schema(name):
    with open(os.path.join(SCHEMAS_DIR, name), encoding="utf-8") as f:
        return json.load(f)


def validate(instance, schema):
    """Every error as "path: message" (an empty list: valid)."""
    errors = []
    _check(instance, schema, schema, "$", errors)
    return errors


def _resolve(root, ref):
    if not ref.startswith("#/$defs/"):
        raise SchemaError("only #/$defs/ references are supported: %s" % ref)
    return root["$defs"][ref[len("#/$defs/"):]]


def _check(v, s, root, path, errors):
    unknown = set(s) - KNOWN
    if unknown:
        raise SchemaError("%s: unsupported keywords %s" % (path, sorted(unknown)))
    if "$ref" in s:
        _check(v, _resolve(root, s["$ref"]), root, path, errors)
    if "type" in s:
        types = s["type"] if isinstance(s["type"], list) else [s["type"]]
        if not any(TYPES[t](v) for t in types):
            errors.append("%s: expected %s, got %s" % (path, "/".join(types), type(v).__name__))
            return
    if "enum" in s and v not in s["enum"]:
        errors.append("%s: %r is not one of %r" % (path, v, s["enum"]))
    if "const" in s and v != s["const"]:
        errors.append("%s: expected %r" % (path, s["const"]))
    if "minimum" in s and isinstance(v, (int, float)) and v < s["minimum"]:
        errors.append("%s: %r is less than %r" % (path, v, s["minimum"]))
    if "pattern" in s and isinstance(v, str) and not re.search(s["pattern"], v):
        errors.append("%s: %r does not match %r" % (path, v, s["pattern"]))
    if isinstance(v, dict):
        for k in s.get("required", []):
            if k not in v:
                errors.append("%s: missing %r" % (path, k))
        props = s.get("properties", {})
        for k, x in v.items():
            if k in props:
                _check(x, props[k], root, "%s.%s" % (path, k), errors)
            elif s.get("additionalProperties") is False:
                errors.append("%s: unexpected property %r" % (path, k))
            elif isinstance(s.get("additionalProperties"), dict):
                _check(x, s["additionalProperties"], root, "%s.%s" % (path, k), errors)
    if isinstance(v, list):
        if "minItems" in s and len(v) < s["minItems"]:
            errors.append("%s: fewer than %d items" % (path, s["minItems"]))
        if "items" in s:
            for i, x in enumerate(v):
                _check(x, s["items"], root, "%s[%d]" % (path, i), errors)
    for key in ("anyOf", "oneOf"):
        if key in s:
            ok = [not validate_sub(v, sub, root) for sub in s[key]]
            n = sum(ok)
            if (key == "anyOf" and n == 0) or (key == "oneOf" and n != 1):
                errors.append("%s: matches %d of the %s alternatives" % (path, n, key))


def validate_sub(v, sub, root):
    errors = []
    _check(v, sub, root, "$", errors)
    return errors
