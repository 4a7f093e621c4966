"""The stdlib JSON Schema validator and the schemas the kit ships."""

import copy
import os
import tempfile
import unittest

import support

support.ensure_path()
from loopspec_conformance import jsonschema, results  # noqa: E402


def a_results_doc():
    scenario = {"id": "x-1-y", "kind": "threaded", "rules": ["XTHREAD-1"], "title": "t",
                "python_minor": "3.13", "status": "pass", "passed": True, "runs": 2,
                "requested": 2, "duration": 0.5, "compared_with": "3.13",
                "histogram": [{"outcome": {"main": []}, "count": 2, "allowed": True,
                               "violations": [], "first_run": 0}], "failure": None}
    return results.document({"name": "asyncio", "factory": "asyncio:new_event_loop",
                             "adapter": None, "runner": None, "version": "3.13.18"},
                            {"version": "3.13.18", "minor": "3.13",
                             "implementation": "CPython", "executable": None},
                            [scenario], {"repeat": 2})


class ResultsSchema(unittest.TestCase):
    def setUp(self):
        self.schema = jsonschema.load_schema("results.schema.json")

    def test_a_document_the_kit_makes_is_valid(self):
        self.assertEqual(jsonschema.validate(a_results_doc(), self.schema), [])

    def test_a_missing_field_is_an_error(self):
        doc = a_results_doc()
        del doc["scenarios"][0]["status"]
        errors = jsonschema.validate(doc, self.schema)
        self.assertTrue(any("missing 'status'" in e for e in errors), errors)

    def test_a_wrong_type_and_an_unknown_status_are_errors(self):
        doc = a_results_doc()
        doc["scenarios"][0]["runs"] = "two"
        doc["scenarios"][0]["status"] = "passed"
        errors = jsonschema.validate(doc, self.schema)
        self.assertTrue(any("runs" in e and "expected integer" in e for e in errors), errors)
        self.assertTrue(any("status" in e and "not one of" in e for e in errors), errors)

    def test_an_unexpected_property_is_an_error(self):
        doc = a_results_doc()
        doc["surprise"] = 1
        self.assertTrue(jsonschema.validate(doc, self.schema))

    def test_a_failure_object_or_null(self):
        doc = a_results_doc()
        doc["scenarios"][0]["failure"] = {"run": 3, "violations": [], "diff": "-a\n+b"}
        self.assertEqual(jsonschema.validate(doc, self.schema), [])
        doc["scenarios"][0]["failure"] = {"run": -1, "violations": [], "diff": ""}
        self.assertTrue(jsonschema.validate(doc, self.schema))

    def test_write_makes_the_missing_directories(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "results", "asyncio-3.13.json")
            results.write(path, a_results_doc())
            self.assertEqual(results.read(path)["scenarios"][0]["id"], "x-1-y")

    def test_write_refuses_an_invalid_document(self):
        doc = a_results_doc()
        doc["summary"]["pass"] = -1
        with self.assertRaises(results.InvalidResults):
            results.check(doc)


class Validator(unittest.TestCase):
    def test_unsupported_keywords_are_refused(self):
        with self.assertRaises(jsonschema.SchemaError):
            jsonschema.validate(1, {"type": "integer", "multipleOf": 2})

    def test_any_of_one_of_and_refs(self):
        schema = {"$defs": {"n": {"type": "integer", "minimum": 0}},
                  "oneOf": [{"$ref": "#/$defs/n"}, {"type": "string"}]}
        self.assertEqual(jsonschema.validate(3, schema), [])
        self.assertEqual(jsonschema.validate("x", schema), [])
        self.assertTrue(jsonschema.validate(-3, schema))
        self.assertTrue(jsonschema.validate(copy.copy([]), schema))


if __name__ == "__main__":
    unittest.main()
