//! Grafana-managed alerting under dashboards/grafana-alerting/: the alert rules generated from
//! dashboards/alerts.yaml, the routing example (contact points and a notification policy
//! tree), and the JSON Schema they are validated with.
//!
//! - One source of truth: scripts/gen-grafana-alerts.py regenerates alert-rules.yaml (and the
//!   schema, from the pinned grafana-foundation-sdk) into a temp dir; any difference from the
//!   committed file fails. Independently of the script, every alert of alerts.yaml must have
//!   exactly one Grafana rule with the same title, expression, `for`, labels and annotations
//!   (Prometheus' `$value` read as Grafana's `$values.B.Value`), and there is no other rule.
//! - Structure without a Grafana server: the three provisioning files validate against the
//!   schema generated from Grafana's published types, and broken copies do not.
//! - Every rule's query parses (promtool) and runs against a real Prometheus scraping a real
//!   daemon: what each alert compares returns series, and exactly the alerts the scenario
//!   should fire return series.
//! - The routing example pages for critical alerts and high-severity findings and sends the
//!   rest to the channel, checked by routing every alert through the policy tree.
//!
//! The venv .venv/grafana-tools and promtool/prometheus come from scripts/setup-test-env.sh.

mod common;
mod daemon_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};

use daemon_support::{both_logs, scraped_failing_daemon};

/// The refIds of a generated rule: the query, its value, "any series", the condition.
const QUERY: &str = "A";
const REDUCE: &str = "B";
const MATH: &str = "C";
const THRESHOLD: &str = "D";
/// The folder the rules live in; the routing example matches on it.
const FOLDER: &str = "vpc-auditor";
/// Functions Grafana's annotation templates offer: Go's text/template built-ins and those of
/// Grafana's docs, "Annotation and label template reference", section "Functions".
const GRAFANA_FUNCTIONS: [&str; 39] = [
    "and",
    "call",
    "html",
    "index",
    "slice",
    "js",
    "len",
    "not",
    "or",
    "print",
    "printf",
    "println",
    "urlquery",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "humanize",
    "humanize1024",
    "humanizeDuration",
    "humanizePercentage",
    "humanizeTimestamp",
    "toTime",
    "title",
    "toUpper",
    "toLower",
    "stripPort",
    "match",
    "reReplaceAll",
    "graphLink",
    "tableLink",
    "parseDuration",
    "stripDomain",
    "args",
    "safeHtml",
    "externalURL",
    "pathPrefix",
];

// ---------------------------------------------------------------------------------------
// Files and the script
// ---------------------------------------------------------------------------------------

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn alerting_dir() -> PathBuf {
    repo().join("dashboards/grafana-alerting")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn yaml_file(path: &Path) -> Json {
    serde_yaml_ng::from_str(&read(path))
        .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()))
}

fn provisioning_files() -> [PathBuf; 3] {
    [
        "alert-rules.yaml",
        "contact-points.yaml",
        "notification-policies.yaml",
    ]
    .map(|f| alerting_dir().join(f))
}

/// The venv's python (scripts/setup-test-env.sh), or a clear failure: the tests never skip.
fn python() -> PathBuf {
    let path = std::env::var_os("GRAFANA_TOOLS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv/grafana-tools/bin/python"));
    assert!(
        path.exists(),
        "{} is missing: run scripts/setup-test-env.sh, which makes the venv .venv/grafana-tools \
         (PyYAML, jsonschema, grafana-foundation-sdk), or set GRAFANA_TOOLS_PYTHON",
        path.display()
    );
    path
}

fn script(args: &[&str]) -> Output {
    Command::new(python())
        .arg(repo().join("scripts/gen-grafana-alerts.py"))
        .args(args)
        .output()
        .expect("run scripts/gen-grafana-alerts.py")
}

fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Fails with the first differing line when `generated` differs from the committed file.
fn assert_same_file(committed: &Path, generated: &Path, command: &str) {
    let (want, have) = (read(generated), read(committed));
    if want == have {
        return;
    }
    let line = want
        .lines()
        .zip(have.lines())
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| want.lines().count().min(have.lines().count()));
    panic!(
        "{} is not what `{command}` generates: first difference at line {}:\n  committed: {:?}\n  \
         generated: {:?}\nRun `.venv/grafana-tools/bin/python scripts/gen-grafana-alerts.py {command}` \
         and commit the result.",
        committed.display(),
        line + 1,
        have.lines().nth(line).unwrap_or("<end of file>"),
        want.lines().nth(line).unwrap_or("<end of file>"),
    );
}

// ---------------------------------------------------------------------------------------
// The rules
// ---------------------------------------------------------------------------------------

/// Every alerting rule of alerts.yaml.
fn prometheus_alerts() -> Vec<Json> {
    let file = yaml_file(&repo().join("dashboards/alerts.yaml"));
    let alerts: Vec<Json> = file["groups"]
        .as_array()
        .expect("alerts.yaml has groups")
        .iter()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        .filter(|r| r["alert"].is_string())
        .collect();
    assert!(
        alerts.len() >= 9,
        "only {} alerts in alerts.yaml",
        alerts.len()
    );
    alerts
}

/// (group, rule) for every rule of alert-rules.yaml.
fn grafana_rules() -> Vec<(Json, Json)> {
    let file = yaml_file(&alerting_dir().join("alert-rules.yaml"));
    assert_eq!(file["apiVersion"], 1, "alert-rules.yaml: apiVersion");
    let mut out = Vec::new();
    for group in file["groups"]
        .as_array()
        .expect("alert-rules.yaml has groups")
    {
        for rule in group["rules"].as_array().expect("every group has rules") {
            out.push((group.clone(), rule.clone()));
        }
    }
    out
}

fn step<'a>(rule: &'a Json, ref_id: &str) -> Option<&'a Json> {
    rule["data"]
        .as_array()?
        .iter()
        .find(|d| d["refId"] == ref_id)
}

fn grafana_expr(rule: &Json) -> &str {
    step(rule, QUERY)
        .and_then(|q| q["model"]["expr"].as_str())
        .unwrap_or_else(|| panic!("rule {}: no query {QUERY} with an expr", rule["title"]))
}

/// `10m` → 600; None when unreadable.
fn duration_seconds(text: &str) -> Option<u64> {
    let mut total = 0;
    let mut number = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = if c == 'm' && chars.peek() == Some(&'s') {
            chars.next();
            return None; // milliseconds: not used here
        } else {
            match c {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86400,
                'w' => 604800,
                _ => return None,
            }
        };
        total += number.parse::<u64>().ok()? * unit;
        number.clear();
    }
    number.is_empty().then_some(total)
}

/// Prometheus' `$value` (the sample's float) in Grafana's dialect: `$values.B.Value`, the
/// reduce step that holds the query's value. `$values` and `$labels` stay as they are.
fn to_grafana_template(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(pos) = rest.find("$value") {
        let after = &rest[pos + "$value".len()..];
        out.push_str(&rest[..pos]);
        if after.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
            out.push_str("$value");
        } else {
            out.push_str(&format!("$values.{REDUCE}.Value"));
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// The functions a Go template calls in its `{{ ... }}` actions (words that are neither
/// variables, fields, keywords nor strings).
fn template_functions(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for action in text.split("{{").skip(1) {
        let action = action.split("}}").next().unwrap_or("");
        let mut in_string = None;
        let mut word = String::new();
        let mut prev = ' ';
        for c in action.chars().chain([' ']) {
            if let Some(q) = in_string {
                if c == q {
                    in_string = None;
                }
                prev = c;
                continue;
            }
            if c == '"' || c == '`' {
                in_string = Some(c);
            } else if c.is_ascii_alphanumeric() || c == '_' {
                if word.is_empty() && (prev == '$' || prev == '.') {
                    word.push('\0'); // a variable or a field, not a function
                }
                word.push(c);
            } else {
                if !word.is_empty()
                    && !word.starts_with('\0')
                    && !word.starts_with(|c: char| c.is_ascii_digit())
                {
                    out.insert(word.clone());
                }
                word.clear();
            }
            prev = c;
        }
    }
    for keyword in ["if", "else", "end", "range", "with", "nil", "true", "false"] {
        out.remove(keyword);
    }
    out
}

/// Metric names an expression mentions (enough to compare a rule with a panel).
fn metric_names(expr: &str) -> BTreeSet<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|w| w.starts_with("vpc_auditor_") || *w == "up")
        .map(str::to_string)
        .collect()
}

#[test]
fn alert_rules_file_is_generated_from_alerts_yaml() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out_path = dir.path().join("alert-rules.yaml");
    let out = script(&["rules", "--output", out_path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", output_text(&out));
    assert_same_file(&alerting_dir().join("alert-rules.yaml"), &out_path, "rules");
}

#[test]
fn the_generator_refuses_what_grafana_cannot_template_and_names_the_alert() {
    let dir = tempfile::tempdir().expect("temp dir");
    let alerts = dir.path().join("alerts.yaml");
    for (annotation, complaint) in [
        ("'{{ $externalLabels.cluster }} is down'", "$externalLabels"),
        ("'{{ query \"up\" | first | value }}'", "'query'"),
        ("'{{ .Value }}'", "dot form"),
    ] {
        std::fs::write(
            &alerts,
            format!(
                "groups:\n  - name: g\n    rules:\n      - alert: VpcAuditorDown\n        \
                 expr: up == 0\n        annotations:\n          summary: {annotation}\n"
            ),
        )
        .unwrap();
        let out = script(&[
            "rules",
            "--alerts",
            alerts.to_str().unwrap(),
            "--output",
            "-",
        ]);
        let text = output_text(&out);
        assert_eq!(out.status.code(), Some(2), "{annotation}: {text}");
        assert!(
            text.contains("VpcAuditorDown")
                && text.contains("annotations.summary")
                && text.contains(complaint),
            "{annotation}: the error must name the alert, the field and the problem: {text}"
        );
        assert!(!text.contains("Traceback"), "{text}");
    }
    std::fs::write(&alerts, "groups: [{name: g, rules: [{alert: X}]}]\n").unwrap();
    let out = script(&[
        "rules",
        "--alerts",
        alerts.to_str().unwrap(),
        "--output",
        "-",
    ]);
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("groups[0].rules[0].expr"), "{text}");
}

#[test]
fn grafana_rules_match_alerts_yaml_one_to_one() {
    let alerts = prometheus_alerts();
    let rules = grafana_rules();
    let mut problems = Vec::new();
    let mut uids = BTreeSet::new();
    for (group, rule) in &rules {
        let title = rule["title"].as_str().unwrap_or("<untitled>");
        if group["folder"] != FOLDER || group["orgId"] != 1 {
            problems.push(format!("{title}: group must be orgId 1, folder {FOLDER}"));
        }
        if group["interval"]
            .as_str()
            .and_then(duration_seconds)
            .is_none()
        {
            problems.push(format!("{title}: group interval {:?}", group["interval"]));
        }
        let uid = rule["uid"].as_str().unwrap_or("");
        if !uids.insert(uid.to_string()) {
            problems.push(format!("{title}: uid {uid:?} used twice"));
        }
        if !alerts.iter().any(|a| a["alert"] == rule["title"]) {
            problems.push(format!("{title}: no alert of that name in alerts.yaml"));
        }
    }
    for alert in &alerts {
        let name = alert["alert"].as_str().unwrap();
        let matching: Vec<&Json> = rules
            .iter()
            .map(|(_, r)| r)
            .filter(|r| r["title"] == name)
            .collect();
        let [rule] = matching[..] else {
            problems.push(format!(
                "{name}: {} Grafana rules, expected one",
                matching.len()
            ));
            continue;
        };
        // The query is the alert's expression, evaluated as Prometheus does: instant.
        let query = step(rule, QUERY).cloned().unwrap_or_default();
        if query["model"]["expr"] != alert["expr"] {
            problems.push(format!(
                "{name}: expr {:?} differs from alerts.yaml's {:?}",
                query["model"]["expr"], alert["expr"]
            ));
        }
        if query["model"]["instant"] != true || query["model"]["range"] != false {
            problems.push(format!("{name}: query {QUERY} must be instant, not range"));
        }
        if query["datasourceUid"]
            .as_str()
            .is_none_or(|u| u.is_empty() || u == "__expr__")
        {
            problems.push(format!(
                "{name}: query {QUERY} has no Prometheus data source"
            ));
        }
        // Prometheus fires for every series returned, whatever its value: B keeps the value,
        // C is 1 for any number, D > 0 is the condition.
        let expected_steps = [
            (
                REDUCE,
                json!({"type": "reduce", "expression": QUERY, "reducer": "last"}),
            ),
            (
                MATH,
                json!({"type": "math",
                       "expression": format!("is_number(${REDUCE}) || is_nan(${REDUCE}) || is_inf(${REDUCE})")}),
            ),
            (
                THRESHOLD,
                json!({"type": "threshold", "expression": MATH,
                       "conditions": [{"evaluator": {"type": "gt", "params": [0]}}]}),
            ),
        ];
        for (ref_id, want) in expected_steps {
            let have = step(rule, ref_id).cloned().unwrap_or_default();
            if have["datasourceUid"] != "__expr__" {
                problems.push(format!(
                    "{name}: step {ref_id} must be a server-side expression"
                ));
            }
            for (key, value) in want.as_object().unwrap() {
                if &have["model"][key] != value {
                    problems.push(format!(
                        "{name}: step {ref_id} {key} is {}, expected {value}",
                        have["model"][key]
                    ));
                }
            }
            if have["model"]["settings"] != Json::Null {
                problems.push(format!(
                    "{name}: step {ref_id} must not replace or drop values"
                ));
            }
        }
        if rule["data"].as_array().map(Vec::len) != Some(4) || rule["condition"] != THRESHOLD {
            problems.push(format!(
                "{name}: expected steps A-D with condition {THRESHOLD}"
            ));
        }
        // No series is "not firing"; a failed evaluation must not pass as fine.
        if rule["noDataState"] != "OK" || rule["execErrState"] != "Error" {
            problems.push(format!(
                "{name}: noDataState {} / execErrState {}, expected OK / Error",
                rule["noDataState"], rule["execErrState"]
            ));
        }
        let want_for = alert["for"].as_str().unwrap_or("0s");
        if rule["for"].as_str().and_then(duration_seconds) != duration_seconds(want_for) {
            problems.push(format!(
                "{name}: for {} differs from {want_for}",
                rule["for"]
            ));
        }
        if rule["labels"] != alert["labels"] {
            problems.push(format!(
                "{name}: labels {} differ from alerts.yaml's {}",
                rule["labels"], alert["labels"]
            ));
        }
        let want: BTreeMap<String, String> =
            serde_json::from_value(alert["annotations"].clone()).unwrap_or_default();
        let have: BTreeMap<String, String> =
            serde_json::from_value(rule["annotations"].clone()).unwrap_or_default();
        for key in ["summary", "description", "runbook_url"] {
            if !want.contains_key(key) {
                problems.push(format!("{name}: alerts.yaml has no annotation {key}"));
            }
        }
        for (key, value) in &want {
            let translated = to_grafana_template(value);
            if have.get(key) != Some(&translated) {
                problems.push(format!(
                    "{name}: annotation {key} is {:?}, expected {translated:?}",
                    have.get(key)
                ));
            }
        }
        for key in have.keys() {
            if !want.contains_key(key) && key != "__dashboardUid__" && key != "__panelId__" {
                problems.push(format!("{name}: extra annotation {key}"));
            }
        }
    }
    assert_eq!(
        rules.len(),
        alerts.len(),
        "rules and alerts differ in number"
    );
    assert!(
        problems.is_empty(),
        "alert-rules.yaml against alerts.yaml:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn annotation_templates_use_only_what_grafana_offers() {
    // The translation itself.
    assert_eq!(
        to_grafana_template(r#"{{ $value | humanize }} of {{ $labels.x }}, {{$value}}"#),
        "{{ $values.B.Value | humanize }} of {{ $labels.x }}, {{$values.B.Value}}"
    );
    assert_eq!(
        to_grafana_template("{{ $values.A.Value }}"),
        "{{ $values.A.Value }}"
    );
    assert_eq!(
        template_functions(
            r#"{{ $value | printf "%.0f" }} {{ humanize .X }} {{ $labels.rule_id }}"#
        ),
        BTreeSet::from(["printf".to_string(), "humanize".to_string()])
    );

    let mut problems = Vec::new();
    let mut used = BTreeSet::new();
    for (_, rule) in grafana_rules() {
        let name = rule["title"].as_str().unwrap_or("?").to_string();
        let refs: BTreeSet<&str> = rule["data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| d["refId"].as_str())
            .collect();
        for (key, value) in rule["annotations"].as_object().into_iter().flatten() {
            let text = value.as_str().unwrap_or("");
            if to_grafana_template(text) != text {
                problems.push(format!(
                    "{name}: {key} still uses Prometheus' $value: {text}"
                ));
            }
            for part in text.split("$values.").skip(1) {
                let ref_id: String = part
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric())
                    .collect();
                if ref_id != REDUCE
                    || !refs.contains(ref_id.as_str())
                    || !part[ref_id.len()..].starts_with(".Value")
                {
                    problems.push(format!(
                        "{name}: {key} reads $values.{ref_id}, not the query's value $values.{REDUCE}.Value"
                    ));
                }
            }
            for var in text.split('$').skip(1) {
                let var: String = var
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric())
                    .collect();
                if var != "labels" && var != "values" {
                    problems.push(format!(
                        "{name}: {key} uses ${var}, which Grafana's templates lack"
                    ));
                }
            }
            for function in template_functions(text) {
                if !GRAFANA_FUNCTIONS.contains(&function.as_str()) {
                    problems.push(format!(
                        "{name}: {key} calls {function}, which Grafana lacks"
                    ));
                }
                used.insert(function);
            }
        }
    }
    assert!(
        used.contains("humanize"),
        "the annotations' functions were not found: {used:?}"
    );
    assert!(
        problems.is_empty(),
        "annotation templates:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn dashboard_links_point_at_a_panel_that_shows_the_alerts_metrics() {
    let dashboards: Vec<Json> = std::fs::read_dir(repo().join("dashboards"))
        .expect("dashboards/")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| serde_json::from_str(&read(&p)).expect("dashboard JSON"))
        .collect();
    // (dashboard uid, panel id, metrics of its queries) for every non-row panel.
    let mut panels: Vec<(String, u64, BTreeSet<String>)> = Vec::new();
    for d in &dashboards {
        let uid = d["uid"].as_str().unwrap_or("").to_string();
        let mut list: Vec<&Json> = Vec::new();
        for p in d["panels"].as_array().into_iter().flatten() {
            list.push(p);
            list.extend(p["panels"].as_array().into_iter().flatten());
        }
        for p in list.into_iter().filter(|p| p["type"] != "row") {
            let metrics = p["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|t| metric_names(t["expr"].as_str().unwrap_or("")))
                .collect();
            panels.push((uid.clone(), p["id"].as_u64().unwrap_or(0), metrics));
        }
    }
    let mut problems = Vec::new();
    let mut linked = 0;
    for (_, rule) in grafana_rules() {
        let name = rule["title"].as_str().unwrap_or("?");
        let metrics = metric_names(grafana_expr(&rule));
        let showing: Vec<String> = panels
            .iter()
            .filter(|(_, _, m)| !m.is_disjoint(&metrics))
            .map(|(d, id, _)| format!("{d}/{id}"))
            .collect();
        let annotations = &rule["annotations"];
        match (
            annotations["__dashboardUid__"].as_str(),
            annotations["__panelId__"].as_str(),
        ) {
            (None, None) => {
                if !showing.is_empty() {
                    problems.push(format!(
                        "{name}: links to no panel, yet panels {showing:?} show its metrics {metrics:?}"
                    ));
                }
            }
            (Some(uid), Some(id)) => {
                linked += 1;
                let panel = panels
                    .iter()
                    .find(|(d, p, _)| d == uid && id.parse() == Ok(*p));
                match panel {
                    None => problems.push(format!("{name}: no panel {id} in a dashboard {uid}")),
                    Some((_, _, m)) if m.is_disjoint(&metrics) => problems.push(format!(
                        "{name}: panel {uid}/{id} shows {m:?}, none of the alert's {metrics:?}"
                    )),
                    Some(_) => {}
                }
            }
            // Grafana rejects one without the other.
            other => problems.push(format!(
                "{name}: __dashboardUid__ and __panelId__ go together: {other:?}"
            )),
        }
    }
    assert!(linked >= 5, "only {linked} rules link to a panel");
    assert!(
        problems.is_empty(),
        "dashboard links:\n  {}",
        problems.join("\n  ")
    );
}

// ---------------------------------------------------------------------------------------
// Structure: Grafana's types
// ---------------------------------------------------------------------------------------

#[test]
fn schema_is_generated_from_the_pinned_grafana_sdk() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out_path = dir.path().join("schema.json");
    let out = script(&["schema", "--output", out_path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", output_text(&out));
    assert_same_file(
        &repo().join("tests/schemas/grafana-alerting-provisioning.schema.json"),
        &out_path,
        "schema",
    );
}

#[test]
fn provisioning_files_validate_against_grafanas_types_and_broken_ones_do_not() {
    let files = provisioning_files();
    let args: Vec<&str> = ["validate"]
        .into_iter()
        .chain(files.iter().map(|f| f.to_str().unwrap()))
        .collect();
    let out = script(&args);
    assert!(out.status.success(), "{}", output_text(&out));

    // The same files with one mistake each, where Grafana would refuse them.
    let dir = tempfile::tempdir().expect("temp dir");
    let mut broken = Vec::new();
    for (file, from, to, path) in [
        (
            "alert-rules.yaml",
            "noDataState: OK",
            "noDataState: Fine",
            ".noDataState",
        ),
        (
            "alert-rules.yaml",
            "reducer: last",
            "reducer: latest",
            ".data[1].model",
        ),
        (
            "alert-rules.yaml",
            "condition: D",
            "conditions: D",
            "'condition' is a required",
        ),
        (
            "alert-rules.yaml",
            "instant: true",
            "instant: 'yes'",
            ".data[0].model.instant",
        ),
        (
            "contact-points.yaml",
            "type: pagerduty",
            "type: pager-duty",
            ".receivers[0].type",
        ),
        (
            "notification-policies.yaml",
            "'=', 'critical'",
            "'==', 'critical'",
            ".object_matchers[0][1]",
        ),
    ] {
        let text = read(&alerting_dir().join(file));
        assert!(text.contains(from), "{file} lacks {from:?}");
        let path_out = dir.path().join(format!("{}-{file}", broken.len()));
        std::fs::write(&path_out, text.replacen(from, to, 1)).unwrap();
        broken.push((path_out, path));
    }
    for (file, path) in &broken {
        let out = script(&["validate", file.to_str().unwrap()]);
        let text = output_text(&out);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{} must be rejected: {text}",
            file.display()
        );
        assert!(
            text.contains(&file.display().to_string()) && text.contains(path),
            "the error must name the file and {path}: {text}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Routing
// ---------------------------------------------------------------------------------------

/// Whether a policy's matchers all match `labels` (a missing label is the empty string).
fn policy_matches(policy: &Json, labels: &BTreeMap<String, String>) -> bool {
    policy["object_matchers"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|m| {
            let (name, op, value) = (
                m[0].as_str().unwrap_or(""),
                m[1].as_str().unwrap_or(""),
                m[2].as_str().unwrap_or(""),
            );
            let have = labels.get(name).map(String::as_str).unwrap_or("");
            match op {
                "=" => have == value,
                "!=" => have != value,
                _ => panic!("the example uses only = and != matchers, found {op}"),
            }
        })
}

/// The receivers an alert reaches: Alertmanager's routing (depth first, the first matching
/// child wins unless it has `continue`; no matching child means the policy's own receiver,
/// which children inherit).
fn route(policy: &Json, labels: &BTreeMap<String, String>, inherited: &str) -> Vec<String> {
    let receiver = policy["receiver"].as_str().unwrap_or(inherited);
    let mut out = Vec::new();
    for child in policy["routes"].as_array().into_iter().flatten() {
        if policy_matches(child, labels) {
            out.extend(route(child, labels, receiver));
            if child["continue"] != true {
                return out;
            }
        }
    }
    if out.is_empty() {
        out.push(receiver.to_string());
    }
    out
}

#[test]
fn routing_example_pages_for_critical_and_high_and_sends_the_rest_to_the_channel() {
    let policies = yaml_file(&alerting_dir().join("notification-policies.yaml"));
    let contacts = yaml_file(&alerting_dir().join("contact-points.yaml"));
    let tree = &policies["policies"][0];
    let root = tree["receiver"].as_str().expect("the root has a receiver");
    let names: BTreeSet<&str> = contacts["contactPoints"]
        .as_array()
        .expect("contactPoints")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(
        names,
        BTreeSet::from(["vpc-auditor-channel", "vpc-auditor-page"])
    );
    // Keys come from the environment, never from the file.
    for point in contacts["contactPoints"].as_array().unwrap() {
        for receiver in point["receivers"].as_array().unwrap() {
            for (key, value) in receiver["settings"].as_object().unwrap() {
                let value = value.as_str().unwrap_or("");
                assert!(
                    value.starts_with("$VPC_AUDITOR_"),
                    "{} {key}: {value:?} must be an environment variable",
                    point["name"]
                );
            }
        }
    }

    let mut problems = Vec::new();
    let mut paged = BTreeSet::new();
    for alert in prometheus_alerts() {
        let name = alert["alert"].as_str().unwrap().to_string();
        let severity = alert["labels"]["severity"]
            .as_str()
            .unwrap_or("")
            .to_string();
        // Critical alerts page, and so do high-severity findings (whose Alertmanager severity
        // is warning); the rest go to the channel.
        let page = severity == "critical" || name == "VpcAuditorHighFindings";
        let want = if page {
            "vpc-auditor-page"
        } else {
            "vpc-auditor-channel"
        };
        let mut labels: BTreeMap<String, String> =
            serde_json::from_value(alert["labels"].clone()).unwrap();
        labels.insert("grafana_folder".into(), FOLDER.into());
        for alertname in [name.as_str(), "DatasourceError"] {
            labels.insert("alertname".into(), alertname.into());
            let got = route(tree, &labels, root);
            // A failed evaluation (DatasourceError, with the rule's labels) goes where the
            // rule's severity sends it, except that "high findings" is known by name only.
            let want = if alertname == "DatasourceError" && name == "VpcAuditorHighFindings" {
                "vpc-auditor-channel"
            } else {
                want
            };
            if got != [want] {
                problems.push(format!(
                    "{alertname} ({name}, {severity}) reaches {got:?}, expected {want}"
                ));
            }
        }
        if page {
            paged.insert(name.clone());
        }
        for receiver in route(tree, &labels, root) {
            if !names.contains(receiver.as_str()) {
                problems.push(format!(
                    "{name} reaches {receiver}, which is no contact point of the example"
                ));
            }
        }
    }
    assert!(paged.len() >= 3, "only {paged:?} page");
    // Someone else's alerts keep their routing, critical or not.
    let other = BTreeMap::from([
        ("alertname".to_string(), "DiskFull".to_string()),
        ("severity".to_string(), "critical".to_string()),
        ("grafana_folder".to_string(), "infra".to_string()),
    ]);
    assert_eq!(route(tree, &other, root), [root.to_string()]);
    assert!(problems.is_empty(), "routing:\n  {}", problems.join("\n  "));
}

// ---------------------------------------------------------------------------------------
// The queries, parsed by promtool and run by a real Prometheus
// ---------------------------------------------------------------------------------------

fn promtool() -> PathBuf {
    let path = std::env::var_os("PROMTOOL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("promtool"));
    match Command::new(&path).arg("--version").output() {
        Ok(out) if out.status.success() => path,
        _ => panic!(
            "promtool is missing: run scripts/setup-test-env.sh (Debian's prometheus package), \
             or set PROMTOOL"
        ),
    }
}

#[test]
fn every_grafana_rule_query_parses_with_promtool() {
    let rules: Vec<Json> = grafana_rules()
        .iter()
        .map(|(_, r)| json!({"alert": r["title"], "expr": grafana_expr(r)}))
        .collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("grafana-queries.yaml");
    let doc = json!({"groups": [{"name": "grafana-alert-rules", "rules": rules}]});
    std::fs::write(&file, serde_yaml_ng::to_string(&doc).unwrap()).unwrap();
    let out = Command::new(promtool())
        .args(["check", "rules", file.to_str().unwrap()])
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool check rules:\n{}",
        output_text(&out)
    );
    assert!(
        output_text(&out).contains(&format!("{} rules found", rules.len())),
        "{}",
        output_text(&out)
    );
}

/// What an alert compares: the expression without its final `<op> <number>`, or the
/// argument of `absent(...)`. It must return series from a live daemon.
fn compared_value(expr: &str) -> Option<String> {
    let expr = expr.trim();
    if let Some(inner) = expr
        .strip_prefix("absent(")
        .and_then(|e| e.strip_suffix(')'))
    {
        return Some(inner.to_string());
    }
    let (rest, number) = expr.rsplit_once(char::is_whitespace)?;
    number.parse::<f64>().ok()?;
    let rest = rest.trim_end();
    ["==", "!=", ">=", "<=", ">", "<"]
        .into_iter()
        .find_map(|op| rest.strip_suffix(op))
        .map(|e| e.trim_end().to_string())
}

#[test]
fn compared_value_strips_the_comparison() {
    assert_eq!(
        compared_value("up{a=\"b\"} == 0").as_deref(),
        Some("up{a=\"b\"}")
    );
    assert_eq!(compared_value("absent(up)").as_deref(), Some("up"));
    assert_eq!(
        compared_value("a\n  /\nb\n  < 0.1").as_deref(),
        Some("a\n  /\nb")
    );
    assert_eq!(compared_value("rate(x[5m])"), None);
}

/// The alerts the failing daemon must fire: high-severity findings and a drifted IAM role in
/// the demo data, and the scan errors of its failing region. Everything else stays silent:
/// the target is up and scraped, scans are fresh, no subnet is nearly full, the config loaded,
/// and the demo has no critical non-IAM finding. Its events queue is on a port nobody
/// listens on, so the queue alert fires too.
const FIRING: [&str; 4] = [
    "VpcAuditorEventQueueUnreadable",
    "VpcAuditorHighFindings",
    "VpcAuditorRoleDrift",
    "VpcAuditorScanErrors",
];

#[test]
fn every_grafana_rule_query_runs_against_a_real_prometheus() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (daemon, prometheus) = scraped_failing_daemon(dir.path());
    let logs = || both_logs(&daemon, &prometheus);

    let rules: Vec<(String, String)> = grafana_rules()
        .iter()
        .map(|(_, r)| {
            (
                r["title"].as_str().unwrap().to_string(),
                grafana_expr(r).to_string(),
            )
        })
        .collect();
    let mut problems = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut pending: Vec<(String, String)> = Vec::new();
    for (name, expr) in &rules {
        match compared_value(expr) {
            Some(input) => pending.push((name.clone(), input)),
            None => problems.push(format!("{name}: cannot tell what {expr:?} compares")),
        }
        if FIRING.contains(&name.as_str()) {
            pending.push((name.clone(), expr.clone()));
        }
    }
    loop {
        pending.retain(|(_, expr)| prometheus.query(expr).is_empty());
        if pending.is_empty() || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    for (name, expr) in &pending {
        problems.push(format!("{name}: no series for {expr}"));
    }
    // The silent ones are silent: a rule that fires on the healthy parts would page for nothing.
    let firing: BTreeSet<&str> = rules
        .iter()
        .filter(|(_, expr)| !prometheus.query(expr).is_empty())
        .map(|(name, _)| name.as_str())
        .collect();
    if firing != BTreeSet::from(FIRING) {
        problems.push(format!("firing: {firing:?}, expected {FIRING:?}"));
    }
    assert!(rules.len() >= 9, "only {} rules", rules.len());
    assert!(
        problems.is_empty(),
        "Grafana rule queries against a real Prometheus scraping the daemon:\n  {}\n{}",
        problems.join("\n  "),
        logs()
    );
}

#[test]
fn merge_policies_puts_the_example_first_in_your_tree_and_keeps_the_rest() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Your tree, as Grafana exports it: a default receiver and a policy that would catch
    // every critical alert before the vpc-auditor one, were that not first.
    let mine = dir.path().join("mine.yaml");
    std::fs::write(
        &mine,
        "apiVersion: 1\npolicies:\n  - orgId: 1\n    receiver: ops-email\n    \
         group_by: ['grafana_folder', 'alertname']\n    routes:\n      - receiver: ops-pager\n        \
         object_matchers:\n          - ['severity', '=', 'critical']\n",
    )
    .unwrap();
    let merged_path = dir.path().join("merged.yaml");
    let out = script(&[
        "merge-policies",
        mine.to_str().unwrap(),
        "--output",
        merged_path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", output_text(&out));
    let merged = yaml_file(&merged_path);
    let tree = &merged["policies"][0];
    assert_eq!(tree["receiver"], "ops-email", "your default receiver stays");
    let example = yaml_file(&alerting_dir().join("notification-policies.yaml"));
    assert_eq!(
        tree["routes"][0], example["policies"][0]["routes"][0],
        "the example comes first"
    );
    assert_eq!(
        tree["routes"][1]["receiver"], "ops-pager",
        "your policy stays"
    );
    assert_eq!(tree["routes"].as_array().map(Vec::len), Some(2));

    // Routing through the merged tree: vpc-auditor's alerts as in the example, yours as before.
    let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let route_of = |l: &[(&str, &str)]| route(tree, &labels(l), "ops-email");
    assert_eq!(
        route_of(&[
            ("alertname", "VpcAuditorRoleDrift"),
            ("severity", "critical"),
            ("grafana_folder", FOLDER)
        ]),
        ["vpc-auditor-page"]
    );
    assert_eq!(
        route_of(&[
            ("alertname", "VpcAuditorStale"),
            ("severity", "warning"),
            ("grafana_folder", FOLDER)
        ]),
        ["vpc-auditor-channel"]
    );
    assert_eq!(
        route_of(&[
            ("alertname", "DiskFull"),
            ("severity", "critical"),
            ("grafana_folder", "infra")
        ]),
        ["ops-pager"]
    );
    assert_eq!(route_of(&[("alertname", "Other")]), ["ops-email"]);

    // Merging again changes nothing, and the result is a valid provisioning file.
    let again = script(&["merge-policies", merged_path.to_str().unwrap()]);
    assert!(again.status.success(), "{}", output_text(&again));
    assert_eq!(String::from_utf8_lossy(&again.stdout), read(&merged_path));
    let out = script(&["validate", merged_path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", output_text(&out));

    // The API's JSON (GET /api/v1/provisioning/policies) comes back as JSON for the PUT.
    let api = dir.path().join("tree.json");
    std::fs::write(
        &api,
        r#"{"receiver": "ops", "routes": [{"receiver": "x"}]}"#,
    )
    .unwrap();
    let out = script(&["merge-policies", api.to_str().unwrap()]);
    assert!(out.status.success(), "{}", output_text(&out));
    let tree: Json = serde_json::from_slice(&out.stdout).expect("JSON out for JSON in");
    assert_eq!(tree["routes"][0]["receiver"], "vpc-auditor-channel");
    assert_eq!(tree["routes"][1]["receiver"], "x");

    // Anything else is refused with the file named.
    std::fs::write(&api, "foo: 1\n").unwrap();
    let out = script(&["merge-policies", api.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", output_text(&out));
    assert!(
        output_text(&out).contains("tree.json"),
        "{}",
        output_text(&out)
    );
}
