"""Reads vpc-auditor's SARIF and JUnit reports the way their consumers do, and prints
what they saw as one JSON object for tests/report_formats.rs to compare with the JSON
report of the same run.

    check_reports.py SCHEMA.json REPORT.sarif REPORT.junit.xml

The SARIF log is validated against the SARIF 2.1.0 JSON schema (jsonschema, Draft 7, the
schema's own dialect); any violation is printed and the exit code is 1. The JUnit file is
parsed by junitparser, the library CI plug-ins use to read JUnit XML.
"""

import json
import sys

import jsonschema
from junitparser import Error, Failure, JUnitXml, Skipped


def check_sarif(schema_path, sarif_path):
    with open(schema_path, encoding="utf-8") as f:
        schema = json.load(f)
    with open(sarif_path, encoding="utf-8") as f:
        log = json.load(f)
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(log), key=lambda e: list(e.absolute_path))
    run = log["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    results = []
    for r in run.get("results", []):
        locations = r.get("locations", [{}])[0].get("logicalLocations", [])
        results.append(
            {
                "rule_id": r.get("ruleId"),
                "rule_at_index": rules[r["ruleIndex"]]["id"] if "ruleIndex" in r else None,
                "resource_id": locations[0]["name"] if locations else None,
                "level": r.get("level"),
                "suppressed": bool(r.get("suppressions")),
                "baseline_state": r.get("baselineState"),
                "has_remediation": "remediation" in r.get("properties", {}),
            }
        )
    return {
        "schema_errors": [
            "/".join(str(p) for p in e.absolute_path) + ": " + e.message for e in errors
        ],
        "rules": [
            {
                "id": rule["id"],
                "has_description": bool(rule.get("shortDescription", {}).get("text")),
                "has_help": bool(rule.get("help", {}).get("text")),
            }
            for rule in rules
        ],
        "results": results,
        "execution_successful": run["invocations"][0]["executionSuccessful"],
    }


def check_junit(junit_path):
    xml = JUnitXml.fromfile(junit_path)
    suites = {}
    for suite in xml:
        cases = []
        for case in suite:
            outcome = "passed"
            message = None
            for result in case.result:
                if isinstance(result, Failure):
                    outcome, message = "failure", result.message
                elif isinstance(result, Error):
                    outcome, message = "error", result.message
                elif isinstance(result, Skipped):
                    outcome, message = "skipped", result.message
            cases.append(
                {
                    "name": case.name,
                    "classname": case.classname,
                    "outcome": outcome,
                    "message": message,
                }
            )
        suites[suite.name] = {
            "tests": suite.tests,
            "failures": suite.failures,
            "errors": suite.errors,
            "skipped": suite.skipped,
            "cases": cases,
        }
    return {"suites": suites}


def main():
    schema_path, sarif_path, junit_path = sys.argv[1:4]
    out = {"sarif": check_sarif(schema_path, sarif_path), "junit": check_junit(junit_path)}
    json.dump(out, sys.stdout, indent=1)
    return 1 if out["sarif"]["schema_errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
