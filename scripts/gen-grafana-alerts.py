#!/usr/bin/env python3
"""Grafana-managed alerting for vpc-auditor, generated from dashboards/alerts.yaml.

dashboards/alerts.yaml (Prometheus rules) is the one source of truth. This script turns it
into Grafana's alert-rule provisioning format and checks the provisioning files structurally:

  rules     writes dashboards/grafana-alerting/alert-rules.yaml (or --output) from alerts.yaml
            and the dashboards (for each alert's dashboard panel link)
  schema    writes tests/schemas/grafana-alerting-provisioning.schema.json (or --output): a
            JSON Schema generated from the alerting, expr and prometheus types of Grafana's
            grafana-foundation-sdk, wrapped in the envelope of Grafana's provisioning files
  validate  checks provisioning files (rules, contact points, policies) against that schema
            and names the file and the path of every error
  merge-policies
            adds the vpc-auditor policy of notification-policies.yaml to YOUR exported policy
            tree (a provisioning file, or the JSON of GET /api/v1/provisioning/policies) as the
            first child of its root, keeping everything else; provisioning replaces the whole
            tree, so this is how the example goes next to your own policies

Run it with the venv that scripts/setup-test-env.sh makes (pinned PyYAML, jsonschema and
grafana-foundation-sdk):

  .venv/grafana-tools/bin/python scripts/gen-grafana-alerts.py rules

tests/grafana_alerting.rs fails while the committed files differ from what this prints.
docs/grafana-alerting.md explains every choice made here.
"""

import argparse
import json
import pathlib
import re
import sys

import yaml

REPO = pathlib.Path(__file__).resolve().parent.parent
ALERTS = REPO / "dashboards" / "alerts.yaml"
RULES_OUT = REPO / "dashboards" / "grafana-alerting" / "alert-rules.yaml"
POLICIES = REPO / "dashboards" / "grafana-alerting" / "notification-policies.yaml"
SCHEMA_OUT = REPO / "tests" / "schemas" / "grafana-alerting-provisioning.schema.json"

# The pinned SDK the schema is generated from (scripts/setup-test-env.sh installs it).
SDK_VERSION = "1769699379!11.6.0"

# The Prometheus data source. Grafana's alerting provisioning interpolates environment
# variables in every field except annotations, the query model and a few others (Grafana
# docs, "Use configuration files to provision alerting resources", section "Template variable
# interpolation"), so `datasourceUid` can name the installation's own data source.
DEFAULT_DATASOURCE_UID = "${VPC_AUDITOR_PROMETHEUS_UID}"

# The rule group: the folder is the dashboards' (dashboards/provisioning/*.yaml), and rules
# are evaluated every minute like Prometheus' default evaluation_interval.
ORG_ID = 1
FOLDER = "vpc-auditor"
INTERVAL = "1m"

# The refIds of a rule's four steps.
QUERY, REDUCE, MATH, THRESHOLD = "A", "B", "C", "D"

# Which dashboard panel each alert links to (dashboard file, panel title), or None where no
# panel shows what the alert is about. Every alert of alerts.yaml must be listed: a new alert
# is a decision to make here, not a silent default.
PANELS = {
    "VpcAuditorDown": None,
    "VpcAuditorAbsent": None,
    "VpcAuditorStale": ("vpc-auditor-overview.json", "Since last successful scan"),
    "VpcAuditorScanErrors": ("vpc-auditor-overview.json", "Scan errors by stage and operation"),
    "VpcAuditorCriticalFindings": ("vpc-auditor-overview.json", "Findings by rule"),
    "VpcAuditorHighFindings": ("vpc-auditor-overview.json", "Findings by rule"),
    "VpcAuditorRoleDrift": ("vpc-auditor-overview.json", "Findings by rule"),
    "VpcAuditorSubnetRunningOutOfIps": ("vpc-auditor-overview.json", "Subnet IP capacity"),
    "VpcAuditorConfigReloadFailed": None,
    "VpcAuditorEventQueueUnreadable": ("vpc-auditor-overview.json", "Events queue"),
}

# Functions Grafana's annotation templates offer: Go's text/template built-ins and Grafana's
# own (Grafana docs, "Annotation and label template reference", section "Functions").
GRAFANA_TEMPLATE_FUNCTIONS = {
    # Go text/template
    "and", "call", "html", "index", "slice", "js", "len", "not", "or", "print", "printf",
    "println", "urlquery", "eq", "ne", "lt", "le", "gt", "ge",
    # Grafana
    "humanize", "humanize1024", "humanizeDuration", "humanizePercentage", "humanizeTimestamp",
    "toTime", "title", "toUpper", "toLower", "stripPort", "match", "reReplaceAll", "graphLink",
    "tableLink", "parseDuration", "stripDomain", "args", "safeHtml", "externalURL", "pathPrefix",
}


class InputError(Exception):
    """Bad input: the message names the file and the field."""


# ---------------------------------------------------------------------------------------
# Templates: Prometheus → Grafana
# ---------------------------------------------------------------------------------------

VALUE = re.compile(r"\$value\b")
ACTION = re.compile(r"\{\{-?(.*?)-?\}\}", re.S)
WORD = re.compile(r"(?<![.$\w])([A-Za-z_]\w*)")


def translate_template(text, where):
    """A Prometheus annotation template in Grafana's dialect.

    `$labels.x` means the same in both. Prometheus' `$value` is the sample's float; Grafana's
    `$value` is a string of every step's value, and `$values.<refId>.Value` is the float: the
    reduce step B holds the query's value unchanged. What has no Grafana equivalent
    (`$externalLabels`, `$externalURL`, `.Value`, the `query` function, ...) is refused.
    """
    for action in ACTION.findall(text):
        for var in re.findall(r"\$(\w+)", action):
            if var not in ("labels", "value"):
                raise InputError(f"{where}: ${var} has no Grafana equivalent")
        if re.search(r"(?<![\w$])\.(Value|Labels|ExternalLabels|ExternalURL)\b", action):
            raise InputError(f"{where}: write $value/$labels rather than the dot form")
        stripped = re.sub(r'"(?:[^"\\]|\\.)*"|`[^`]*`', '""', action)
        for word in WORD.findall(stripped):
            if word in ("nil", "true", "false", "if", "else", "end", "range", "with"):
                continue
            if word not in GRAFANA_TEMPLATE_FUNCTIONS:
                raise InputError(f"{where}: template function {word!r} does not exist in Grafana")
    return VALUE.sub("$values." + REDUCE + ".Value", text)


# ---------------------------------------------------------------------------------------
# alerts.yaml and the dashboards
# ---------------------------------------------------------------------------------------

def load_yaml(path):
    try:
        with open(path, encoding="utf-8") as f:
            return yaml.safe_load(f)
    except OSError as e:
        raise InputError(f"{path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise InputError(f"{path}: not valid YAML: {e}") from None


def prometheus_alerts(path):
    """(alert rule, group name) for every alerting rule of a Prometheus rule file."""
    doc = load_yaml(path)
    groups = doc.get("groups") if isinstance(doc, dict) else None
    if not isinstance(groups, list) or not groups:
        raise InputError(f"{path}: `groups` must be a non-empty list")
    out = []
    for i, group in enumerate(groups):
        if not isinstance(group, dict) or not isinstance(group.get("rules"), list):
            raise InputError(f"{path}: groups[{i}].rules must be a list")
        for j, rule in enumerate(group["rules"]):
            where = f"{path}: groups[{i}].rules[{j}]"
            if not isinstance(rule, dict):
                raise InputError(f"{where}: not a mapping")
            if "record" in rule:
                continue
            for field in ("alert", "expr"):
                if not isinstance(rule.get(field), str) or not rule[field].strip():
                    raise InputError(f"{where}.{field}: missing or not a string")
            for field in ("labels", "annotations"):
                value = rule.get(field, {})
                if not isinstance(value, dict) or not all(
                    isinstance(k, str) and isinstance(v, str) for k, v in value.items()
                ):
                    raise InputError(f"{where}.{field}: must map strings to strings")
            if "for" in rule and not isinstance(rule["for"], str):
                raise InputError(f"{where}.for: must be a duration string such as 10m")
            out.append(rule)
    return out


def panels(dashboard):
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def panel_link(alert, dashboards_dir):
    """The (dashboard uid, panel id) an alert links to, or None."""
    if alert not in PANELS:
        raise InputError(
            f"{ALERTS}: alert {alert} has no entry in PANELS of {pathlib.Path(__file__).name}: "
            "name its dashboard panel there, or None"
        )
    if PANELS[alert] is None:
        return None
    file, title = PANELS[alert]
    path = dashboards_dir / file
    try:
        dashboard = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: {e}") from None
    found = [p for p in panels(dashboard) if p.get("title") == title and p.get("type") != "row"]
    if len(found) != 1:
        raise InputError(f"{path}: {len(found)} panels titled {title!r} (for {alert}); need one")
    return dashboard["uid"], found[0]["id"]


def rule_uid(alert):
    """VpcAuditorStale → vpc-auditor-stale (Grafana: at most 40 of [A-Za-z0-9_-])."""
    uid = re.sub(r"(?<!^)(?=[A-Z])", "-", alert).lower()
    if len(uid) > 40:
        raise InputError(f"{ALERTS}: alert {alert}: its uid {uid} is longer than 40 characters")
    return uid


# ---------------------------------------------------------------------------------------
# The Grafana rule
# ---------------------------------------------------------------------------------------

def expr_step(ref, model):
    """A server-side expression step (data source __expr__)."""
    return {
        "refId": ref,
        "datasourceUid": "__expr__",
        "model": {
            "refId": ref,
            "datasource": {"type": "__expr__", "uid": "__expr__"},
            **model,
        },
    }


def grafana_rule(rule, datasource_uid, dashboards_dir):
    alert = rule["alert"]
    where = f"{ALERTS}: alert {alert}"
    annotations = {
        key: translate_template(value, f"{where}: annotations.{key}")
        for key, value in rule.get("annotations", {}).items()
    }
    for key, value in rule.get("labels", {}).items():
        if "$" in value or "{{" in value:
            # Grafana interpolates environment variables in labels: a template would break.
            raise InputError(f"{where}: labels.{key} is templated; Grafana would mangle it")
    link = panel_link(alert, dashboards_dir)
    if link:
        annotations["__dashboardUid__"] = link[0]
        annotations["__panelId__"] = str(link[1])
    return {
        "uid": rule_uid(alert),
        "title": alert,
        "condition": THRESHOLD,
        "data": [
            {
                "refId": QUERY,
                # An instant query: one sample per series, as Prometheus evaluates a rule.
                "relativeTimeRange": {"from": 600, "to": 0},
                "datasourceUid": datasource_uid,
                "model": {
                    "refId": QUERY,
                    "editorMode": "code",
                    "expr": rule["expr"],
                    "instant": True,
                    "range": False,
                },
            },
            # The value of each series, unchanged ($values.B.Value in the annotations).
            expr_step(REDUCE, {"type": "reduce", "expression": QUERY, "reducer": "last"}),
            # Prometheus fires for every series the expression returns, whatever its value
            # (`up == 0` returns 0): 1 for any number, NaN and ±Inf included. Grafana's own
            # converter of Prometheus rules builds the same step.
            expr_step(MATH, {
                "type": "math",
                "expression": f"is_number(${REDUCE}) || is_nan(${REDUCE}) || is_inf(${REDUCE})",
            }),
            expr_step(THRESHOLD, {
                "type": "threshold",
                "expression": MATH,
                "conditions": [{"evaluator": {"type": "gt", "params": [0]}}],
            }),
        ],
        # No series is Prometheus' "not firing"; a failed query fires Grafana's DatasourceError
        # alert with the rule's labels, so a broken evaluation is never silent.
        "noDataState": "OK",
        "execErrState": "Error",
        "for": rule.get("for", "0s"),
        "annotations": annotations,
        "labels": dict(rule.get("labels", {})),
        "isPaused": False,
    }


HEADER = """\
# GENERATED from dashboards/alerts.yaml by scripts/gen-grafana-alerts.py: do not edit.
# After a change to alerts.yaml (or to a dashboard panel an alert links to), regenerate with
#   .venv/grafana-tools/bin/python scripts/gen-grafana-alerts.py rules
# tests/grafana_alerting.rs fails while this file differs from what that command writes.
#
# Grafana-managed alert rules in Grafana's file provisioning format: copy this file into
# Grafana's provisioning/alerting/ folder (e.g. /etc/grafana/provisioning/alerting/).
# Each rule runs the Prometheus expression of alerts.yaml as an instant query (A), keeps each
# series' value (B, shown as $values.B.Value where Prometheus says $value), and fires for
# every series returned (C, D), as Prometheus does.
# Data source: {datasource_note}
# docs/grafana-alerting.md has the details.
"""


class Dumper(yaml.SafeDumper):
    pass


def _str(dumper, value):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


Dumper.add_representer(str, _str)


def dump(doc):
    return yaml.dump(doc, Dumper=Dumper, sort_keys=False, width=1000, allow_unicode=True)


def render_rules(alerts_path, dashboards_dir, datasource_uid):
    rules = [grafana_rule(r, datasource_uid, dashboards_dir) for r in prometheus_alerts(alerts_path)]
    titles = [r["title"] for r in rules]
    duplicates = sorted({t for t in titles if titles.count(t) > 1})
    if duplicates:
        raise InputError(f"{alerts_path}: alerts named twice: {duplicates}")
    doc = {
        "apiVersion": 1,
        "groups": [{
            "orgId": ORG_ID,
            "name": "vpc-auditor",
            "folder": FOLDER,
            "interval": INTERVAL,
            "rules": rules,
        }],
    }
    if datasource_uid == DEFAULT_DATASOURCE_UID:
        note = ("the uid in the environment variable VPC_AUDITOR_PROMETHEUS_UID of the\n"
                "# Grafana server, which Grafana's provisioning interpolates.")
    else:
        note = f"the fixed uid {datasource_uid!r}."
    return HEADER.format(datasource_note=note) + dump(doc)


# ---------------------------------------------------------------------------------------
# JSON Schema from grafana-foundation-sdk
# ---------------------------------------------------------------------------------------

def json_keys(cls):
    """Python attribute → JSON key, read from the SDK class' generated to_json."""
    import inspect

    source = inspect.getsource(cls.to_json)
    pairs = re.findall(r'"([^"]+)"\s*:\s*self\.(\w+)', source)
    pairs += re.findall(r'payload\["([^"]+)"\]\s*=\s*self\.(\w+)', source)
    required = {key for key, _ in re.findall(r'^\s+"([^"]+)"\s*:\s*self\.(\w+),', source, re.M)}
    return {attr: key for key, attr in pairs}, required


class SchemaBuilder:
    """JSON Schema definitions for SDK classes, from their type hints."""

    def __init__(self):
        self.defs = {}

    def ref(self, cls):
        name = f"{cls.__module__.rsplit('.', 1)[-1]}.{cls.__name__}"
        if name not in self.defs:
            self.defs[name] = {}  # placeholder against recursion
            self.defs[name] = self.object_schema(cls)
        return {"$ref": f"#/$defs/{name}"}

    def object_schema(self, cls, drop=()):
        import typing

        hints = typing.get_type_hints(cls)
        keys, always = json_keys(cls)
        props, required = {}, []
        for attr, key in keys.items():
            if key in drop:
                continue
            hint = hints[attr]
            optional = type(None) in typing.get_args(hint)
            props[key] = self.type_schema(hint)
            if key in always and not optional:
                required.append(key)
        schema = {"type": "object", "properties": props, "additionalProperties": False}
        if required:
            schema["required"] = sorted(required)
        if cls.__doc__:
            schema["description"] = " ".join(cls.__doc__.split())
        return schema

    def type_schema(self, hint):
        import enum
        import typing

        origin, args = typing.get_origin(hint), typing.get_args(hint)
        if origin is typing.Union:
            options = [a for a in args if a is not type(None)]
            if len(options) == 1:
                return self.type_schema(options[0])
            return {"anyOf": [self.type_schema(a) for a in options]}
        if origin is typing.Literal:
            return {"enum": list(args)}
        if origin is list:
            return {"type": "array", "items": self.type_schema(args[0]) if args else {}}
        if origin is dict:
            return {"type": "object", "additionalProperties": self.type_schema(args[1])}
        if isinstance(hint, type) and issubclass(hint, enum.Enum):
            return {"enum": [m.value for m in hint]}
        simple = {str: "string", bool: "boolean", int: "integer", float: "number"}
        if hint in simple:
            return {"type": simple[hint]}
        if hint is object or hint is typing.Any:
            return {}
        if isinstance(hint, type) and hint.__name__ == "Dataquery":
            return {}  # a query model: the envelope chooses its type by data source
        if isinstance(hint, type) and hasattr(hint, "to_json"):
            return self.ref(hint)
        raise SystemExit(f"schema: no JSON Schema for the SDK type {hint!r}")


def build_schema():
    import importlib.metadata

    from grafana_foundation_sdk.models import alerting, expr, prometheus

    version = importlib.metadata.version("grafana-foundation-sdk")
    if version != SDK_VERSION:
        raise SystemExit(f"schema: grafana-foundation-sdk is {version}, expected {SDK_VERSION}")
    b = SchemaBuilder()
    defs = b.defs
    # The file format's rule is the API's rule (alerting.Rule) without what the rule group
    # or Grafana itself sets: its group and folder come from the enclosing group.
    rule = b.object_schema(alerting.Rule, drop=(
        "folderUID", "ruleGroup", "orgID", "id", "updated", "provenance", "record",
    ))
    rule["required"] = sorted(set(rule.get("required", [])) | {"uid"})
    rule["properties"]["uid"] = {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,40}$"}
    # Grafana's file format spells the rule's duration as a string such as 10m.
    rule["properties"]["for"] = {"type": "string", "pattern": r"^([0-9]+(ms|s|m|h|d|w|y))+$"}
    query = b.object_schema(alerting.Query)
    query["required"] = ["datasourceUid", "model", "refId"]
    query["properties"]["model"] = {"type": "object"}
    defs["alerting.Rule(file)"] = rule
    defs["alerting.Query(file)"] = query
    rule["properties"]["data"] = {"type": "array", "minItems": 1,
                                  "items": {"$ref": "#/$defs/alerting.Query(file)"}}
    # The query model by data source: Prometheus, or one of the server-side expressions.
    models = {
        "prometheus.Dataquery": prometheus.Dataquery,
        "expr.TypeMath": expr.TypeMath,
        "expr.TypeReduce": expr.TypeReduce,
        "expr.TypeThreshold": expr.TypeThreshold,
        "expr.TypeClassicConditions": expr.TypeClassicConditions,
        "expr.TypeResample": expr.TypeResample,
    }
    for name, cls in models.items():
        b.ref(cls)
    expressions = [{"$ref": f"#/$defs/{n}"} for n in models if n.startswith("expr.")]
    query["allOf"] = [{
        "if": {"properties": {"datasourceUid": {"const": "__expr__"}}},
        "then": {"properties": {"model": {"oneOf": expressions}}},
        "else": {"properties": {"model": {"$ref": "#/$defs/prometheus.Dataquery"}}},
    }]
    receiver = b.object_schema(alerting.ContactPoint, drop=("name", "provenance"))
    receiver["required"] = sorted(set(receiver.get("required", [])) | {"uid"})
    receiver["properties"]["settings"] = {"type": "object"}
    defs["alerting.ContactPoint(receiver)"] = receiver
    policy = b.object_schema(alerting.NotificationPolicy, drop=("provenance",))
    # Files spell matchers as triples ([label, operator, value]); the SDK's ObjectMatcher is
    # a list of strings, its operators those of alerting.MatchType.
    operators = [m.value for m in alerting.MatchType]
    policy["properties"]["object_matchers"] = {"type": "array", "items": {
        "type": "array", "prefixItems": [{"type": "string"}, {"enum": operators},
                                         {"type": "string"}],
        "minItems": 3, "maxItems": 3}}
    policy["properties"]["matchers"] = {"type": "array", "items": {"type": "string"}}
    policy["properties"]["routes"] = {"type": "array",
                                      "items": {"$ref": "#/$defs/alerting.NotificationPolicy(file)"}}
    defs["alerting.NotificationPolicy(file)"] = policy
    defs.pop("alerting.Query", None)  # replaced by its file form above
    defs.pop("alerting.NotificationPolicy", None)
    defs.pop("alerting.Matcher", None)
    org = {"type": "integer", "minimum": 1}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://github.com/vpc-auditor/vpc-auditor/tests/schemas/"
               "grafana-alerting-provisioning.schema.json",
        "title": "Grafana alerting provisioning files (alert rules, contact points, policies)",
        "$comment": (
            "GENERATED by `scripts/gen-grafana-alerts.py schema` from the Python types of "
            f"grafana-foundation-sdk=={SDK_VERSION} (PyPI; Grafana's schemas for Grafana 11.6): "
            "models alerting.Rule, alerting.Query, alerting.RelativeTimeRange, "
            "alerting.ContactPoint, alerting.NotificationPolicy, alerting.MatchType, "
            "alerting.NotificationSettings, expr.Type*, prometheus.Dataquery. The SDK types "
            "are those of Grafana's HTTP API; the file envelope (apiVersion, groups with "
            "orgId/name/folder/interval, contactPoints with receivers, policies) and the "
            "file-only spellings (for as a duration string, matchers as triples) follow "
            "Grafana's docs 'Use configuration files to provision alerting resources'. "
            "Do not edit: tests/grafana_alerting.rs regenerates it and fails on a difference."
        ),
        "type": "object",
        "required": ["apiVersion"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"const": 1},
            "groups": {"type": "array", "items": {
                "type": "object",
                "required": ["orgId", "name", "folder", "interval", "rules"],
                "additionalProperties": False,
                "properties": {
                    "orgId": org,
                    "name": {"type": "string", "minLength": 1},
                    "folder": {"type": "string", "minLength": 1},
                    "interval": {"type": "string", "pattern": r"^([0-9]+(s|m|h))+$"},
                    "rules": {"type": "array", "minItems": 1,
                              "items": {"$ref": "#/$defs/alerting.Rule(file)"}},
                },
            }},
            "contactPoints": {"type": "array", "items": {
                "type": "object",
                "required": ["orgId", "name", "receivers"],
                "additionalProperties": False,
                "properties": {
                    "orgId": org,
                    "name": {"type": "string", "minLength": 1},
                    "receivers": {"type": "array", "minItems": 1,
                                  "items": {"$ref": "#/$defs/alerting.ContactPoint(receiver)"}},
                },
            }},
            "policies": {"type": "array", "items": {
                "allOf": [
                    {"$ref": "#/$defs/alerting.NotificationPolicy(file)"},
                    {"required": ["orgId", "receiver"]},
                ],
            }},
        },
        "$defs": dict(sorted(defs.items())),
    }


def render_schema():
    schema = build_schema()
    # The root policy carries orgId, which the API type has not.
    schema["$defs"]["alerting.NotificationPolicy(file)"]["properties"]["orgId"] = {
        "type": "integer", "minimum": 1}
    return json.dumps(schema, indent=2, sort_keys=False) + "\n"


# ---------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------

def validate(paths, schema_path):
    import jsonschema

    schema = json.loads(pathlib.Path(schema_path).read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    problems = 0
    for path in paths:
        doc = load_yaml(path)
        for error in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path)):
            field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}"
                            for p in error.absolute_path) or "(top level)"
            print(f"{path}: {field}: {error.message}", file=sys.stderr)
            problems += 1
    if problems:
        print(f"validate: {problems} problem(s)", file=sys.stderr)
        return 1
    print(f"validate: {len(paths)} file(s) match {schema_path}")
    return 0


# ---------------------------------------------------------------------------------------
# Merging the example policy into the user's tree
# ---------------------------------------------------------------------------------------

def is_vpc_auditor_policy(policy):
    return ["grafana_folder", "=", FOLDER] in (policy.get("object_matchers") or [])


def merge_policies(tree_path, example_path=POLICIES):
    """The user's tree with the example's vpc-auditor policy first under its root, and the
    output in the input's shape: a provisioning file (YAML), or the API's route (JSON)."""
    example = load_yaml(example_path)
    ours = [p for p in example["policies"][0].get("routes", []) if is_vpc_auditor_policy(p)]
    if len(ours) != 1:
        raise InputError(f"{example_path}: expected one policy matching grafana_folder={FOLDER}")
    doc = load_yaml(tree_path)
    if isinstance(doc, dict) and isinstance(doc.get("policies"), list):
        roots = doc["policies"]
        if len(roots) != 1:
            raise InputError(f"{tree_path}: policies: expected one tree (one organisation), "
                             f"found {len(roots)}; merge each organisation's tree separately")
        root, api = roots[0], False
    elif isinstance(doc, dict) and "receiver" in doc:
        root, api = doc, True
    else:
        raise InputError(f"{tree_path}: neither a policies provisioning file nor the JSON of "
                         "GET /api/v1/provisioning/policies (a route with a receiver)")
    if not isinstance(root.get("receiver"), str):
        raise InputError(f"{tree_path}: the root policy has no receiver")
    routes = root.get("routes") or []
    if not isinstance(routes, list):
        raise InputError(f"{tree_path}: routes must be a list")
    # First, so that no policy of yours stops these alerts before they reach it; replaces an
    # earlier merge, so running it again changes nothing.
    root["routes"] = ours + [p for p in routes if not is_vpc_auditor_policy(p)]
    if api:
        return json.dumps(doc, indent=2) + "\n"
    return dump(doc)


# ---------------------------------------------------------------------------------------

def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rules = sub.add_parser("rules", help="alerts.yaml → Grafana alert-rule provisioning file")
    rules.add_argument("--alerts", default=str(ALERTS))
    rules.add_argument("--dashboards", default=str(REPO / "dashboards"))
    rules.add_argument("--output", default=str(RULES_OUT), help="'-' for stdout")
    rules.add_argument("--datasource-uid", default=DEFAULT_DATASOURCE_UID,
                       help="the Prometheus data source's uid (default: %(default)s, "
                            "interpolated by Grafana from its environment)")
    schema = sub.add_parser("schema", help="JSON Schema from grafana-foundation-sdk")
    schema.add_argument("--output", default=str(SCHEMA_OUT), help="'-' for stdout")
    check = sub.add_parser("validate", help="check provisioning files against the schema")
    check.add_argument("--schema", default=str(SCHEMA_OUT))
    check.add_argument("files", nargs="+")
    merge = sub.add_parser("merge-policies",
                           help="add the vpc-auditor policy to your exported policy tree")
    merge.add_argument("tree", help="your tree: an exported provisioning file (YAML) or the "
                                    "JSON of GET /api/v1/provisioning/policies")
    merge.add_argument("--output", default="-", help="default: stdout")
    args = parser.parse_args(argv)

    try:
        if args.command == "rules":
            text = render_rules(pathlib.Path(args.alerts), pathlib.Path(args.dashboards),
                                args.datasource_uid)
            output = args.output
        elif args.command == "schema":
            text, output = render_schema(), args.output
        elif args.command == "merge-policies":
            text, output = merge_policies(pathlib.Path(args.tree)), args.output
        else:
            return validate(args.files, args.schema)
    except InputError as e:
        print(f"gen-grafana-alerts: {e}", file=sys.stderr)
        return 2
    if output == "-":
        sys.stdout.write(text)
    else:
        pathlib.Path(output).parent.mkdir(parents=True, exist_ok=True)
        pathlib.Path(output).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
