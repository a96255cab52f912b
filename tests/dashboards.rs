//! The monitoring artefacts under dashboards/: two Grafana dashboards with their provisioning
//! files, the Prometheus alert rules, their unit tests, and the runbook the alerts link to.
//!
//! - PromQL is parsed by Prometheus' own parser: `promtool check rules` on alerts.yaml, and on
//!   a temporary rule file holding every dashboard query as a recording rule (Grafana's
//!   variables substituted first). `promtool test rules` runs alerts.test.yaml, which must
//!   show every alert both firing and staying silent.
//! - Every metric and label that a dashboard, an alert or an alert test names is compared
//!   with a real scrape of the daemon: `--demo`, plus a snapshot whose region starts failing,
//!   so the error and API-call counters exist too.
//! - A real Prometheus scrapes that daemon and runs every dashboard query, with the
//!   dashboard's own variable queries choosing the account, region and VPC: each must return
//!   data, and each legend may only name labels the result has.
//! - Dashboard conventions (the `datasource` variable on every panel and target, titles,
//!   descriptions, units, fixed unique uids, instant table queries), the provisioning files,
//!   and the runbook headings behind every `runbook_url` are checked structurally.
//!
//! promtool and prometheus come from scripts/setup-test-env.sh. Everything listens on
//! 127.0.0.1 and every process started is killed when its guard drops.

mod common;
mod daemon_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};

use daemon_support::{both_logs, failing_daemon, scraped_failing_daemon, Daemon};

/// The dashboards that must exist; any other `dashboards/*.json` is held to the same rules.
const DASHBOARDS: [&str; 2] = ["vpc-auditor-overview.json", "vpc-auditor-vpc-detail.json"];
/// The runbook page: `## Runbook`, then one `### <Alert>` heading per alert.
const RUNBOOK_PAGE: &str = "docs/alerts-runbook.md";
/// Where every `runbook_url` points: the runbook page, one heading per alert.
const RUNBOOK_BASE: &str =
    "https://github.com/vpc-auditor/vpc-auditor/blob/main/docs/alerts-runbook.md#";
/// The job name the alerts select (`up{job="vpc-auditor"}`); the ServiceMonitor and the
/// static scrape config in the docs use it.
const JOB: &str = "vpc-auditor";
/// Labels Prometheus adds to every scraped series: `job` and `instance` always, the rest with
/// Kubernetes service discovery (the ServiceMonitor).
const TARGET_LABELS: [&str; 7] = [
    "job",
    "instance",
    "namespace",
    "pod",
    "service",
    "endpoint",
    "container",
];
/// Metrics that Prometheus makes itself rather than scraping them from the daemon.
const PROMETHEUS_METRICS: [&str; 1] = ["up"];
/// Labels whose values are closed sets the daemon defines: an equality matcher on one of
/// them must name a value seen in the scrape (catches `severity="crit"`).
const CLOSED_LABELS: [&str; 5] = ["rule_id", "severity", "stage", "resource_type", "service"];
/// Alertmanager severities an alert may carry.
const ALERT_SEVERITIES: [&str; 3] = ["critical", "warning", "info"];

// ---------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn dashboards_dir() -> PathBuf {
    repo().join("dashboards")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn yaml_file(path: &Path) -> Json {
    serde_yaml_ng::from_str(&read(path))
        .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()))
}

fn alerts_file() -> PathBuf {
    dashboards_dir().join("alerts.yaml")
}

fn alerts_test_file() -> PathBuf {
    dashboards_dir().join("alerts.test.yaml")
}

/// One rule of alerts.yaml.
struct Rule {
    group: String,
    json: Json,
}

impl Rule {
    fn alert(&self) -> Option<&str> {
        self.json["alert"].as_str()
    }

    fn name(&self) -> String {
        self.alert()
            .or(self.json["record"].as_str())
            .unwrap_or("<unnamed>")
            .to_string()
    }

    fn expr(&self) -> &str {
        self.json["expr"]
            .as_str()
            .unwrap_or_else(|| panic!("rule {} has no string expr", self.name()))
    }
}

fn alert_rules() -> Vec<Rule> {
    let file = yaml_file(&alerts_file());
    let groups = file["groups"]
        .as_array()
        .filter(|g| !g.is_empty())
        .expect("dashboards/alerts.yaml: `groups` must be a non-empty list");
    let mut rules = Vec::new();
    for group in groups {
        let name = group["name"].as_str().expect("every group has a name");
        let list = group["rules"]
            .as_array()
            .unwrap_or_else(|| panic!("group {name} has no `rules` list"));
        for rule in list {
            rules.push(Rule {
                group: name.to_string(),
                json: rule.clone(),
            });
        }
    }
    assert!(!rules.is_empty(), "dashboards/alerts.yaml has no rules");
    rules
}

/// A dashboard file and its JSON model.
struct Dashboard {
    file: String,
    json: Json,
}

/// Every `dashboards/*.json`; the expected ones must be among them.
fn dashboards() -> Vec<Dashboard> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dashboards_dir())
        .expect("dashboards/ exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let found: Vec<Dashboard> = files
        .iter()
        .map(|path| Dashboard {
            file: path.file_name().unwrap().to_string_lossy().into_owned(),
            json: serde_json::from_str(&read(path))
                .unwrap_or_else(|e| panic!("{} is not valid JSON: {e}", path.display())),
        })
        .collect();
    for expected in DASHBOARDS {
        assert!(
            found.iter().any(|d| d.file == expected),
            "dashboards/{expected} is missing"
        );
    }
    found
}

/// Every panel, including those nested in collapsed rows.
fn panels(dashboard: &Json) -> Vec<&Json> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        out.push(panel);
        for nested in panel["panels"].as_array().into_iter().flatten() {
            out.push(nested);
        }
    }
    out
}

fn is_layout_panel(panel: &Json) -> bool {
    matches!(panel["type"].as_str(), Some("row" | "text"))
}

fn panel_name(file: &str, panel: &Json) -> String {
    format!(
        "{file} panel {} {:?}",
        panel["id"],
        panel["title"].as_str().unwrap_or("")
    )
}

fn datasource_ref() -> Json {
    json!({"type": "prometheus", "uid": "${datasource}"})
}

/// One PromQL expression of a dashboard: a panel target's `expr`, or the series selector of
/// a `label_values(selector, label)` variable query.
#[derive(Debug, Clone)]
struct Query {
    origin: String,
    expr: String,
    legend: Option<String>,
    /// For a variable: its name and the label whose values it lists.
    variable: Option<(String, String)>,
}

/// The text of a variable's query, which Grafana stores as a string or as an object.
fn variable_query_text(var: &Json) -> Option<&str> {
    var["query"]
        .as_str()
        .or_else(|| var["query"]["query"].as_str())
}

/// Splits `label_values(selector, label)` into its selector and label.
fn parse_label_values(text: &str) -> Result<(String, String), String> {
    let inner = text
        .trim()
        .strip_prefix("label_values(")
        .and_then(|t| t.strip_suffix(')'))
        .ok_or_else(|| format!("expected label_values(selector, label), found {text:?}"))?;
    let (selector, label) = inner.rsplit_once(',').ok_or_else(|| {
        format!("label_values({inner}) must name a metric: label_values(metric{{...}}, label)")
    })?;
    let (selector, label) = (selector.trim(), label.trim());
    if selector.is_empty() || label.is_empty() || label.contains(['{', '}', '"', ' ']) {
        return Err(format!("cannot read label_values({inner})"));
    }
    Ok((selector.to_string(), label.to_string()))
}

fn queries(dashboard: &Dashboard) -> Vec<Query> {
    let mut out = Vec::new();
    for var in dashboard.json["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if var["type"] != "query" {
            continue;
        }
        let name = var["name"].as_str().unwrap_or("").to_string();
        let origin = format!("{} variable ${name}", dashboard.file);
        let text = variable_query_text(var)
            .unwrap_or_else(|| panic!("{origin}: no query text"))
            .to_string();
        let (selector, label) =
            parse_label_values(&text).unwrap_or_else(|e| panic!("{origin}: {e}"));
        out.push(Query {
            origin,
            expr: selector,
            legend: None,
            variable: Some((name, label)),
        });
    }
    for panel in panels(&dashboard.json) {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let origin = format!(
                "{} target {}",
                panel_name(&dashboard.file, panel),
                target["refId"].as_str().unwrap_or("?")
            );
            let expr = target["expr"]
                .as_str()
                .unwrap_or_else(|| panic!("{origin}: no expr"));
            out.push(Query {
                origin,
                expr: expr.to_string(),
                legend: target["legendFormat"].as_str().map(str::to_string),
                variable: None,
            });
        }
    }
    out
}

/// Grafana's built-in interval variables, with values as Grafana would give them.
fn grafana_globals(rate_interval: &str) -> BTreeMap<String, String> {
    [
        ("__rate_interval", rate_interval),
        ("__interval", "1m"),
        ("__interval_ms", "60000"),
        ("__range", "1d"),
        ("__range_s", "86400"),
        ("__range_ms", "86400000"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The dashboard's own variable names, each with a placeholder value for parsing.
fn placeholder_values(dashboard: &Json) -> BTreeMap<String, String> {
    let mut values = grafana_globals("5m");
    for var in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(name) = var["name"].as_str() {
            values.insert(name.to_string(), format!("placeholder-{name}"));
        }
    }
    values
}

/// Replaces Grafana variables (`$name`, `${name}`, `${name:format}`, `[[name]]`) with
/// `values`. A variable that is neither a dashboard variable nor a Grafana global is an
/// error; `$1` (a regex group in `label_replace`) is left alone.
fn substitute(expr: &str, values: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = expr;
    while let Some(pos) = rest.find(['$', '[']) {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        let (name, len) = if let Some(body) = tail.strip_prefix("${") {
            let end = body
                .find('}')
                .ok_or_else(|| format!("unclosed ${{ in {expr:?}"))?;
            (body[..end].split(':').next().unwrap_or(""), end + 3)
        } else if let Some(body) = tail.strip_prefix("[[") {
            let end = body
                .find("]]")
                .ok_or_else(|| format!("unclosed [[ in {expr:?}"))?;
            (body[..end].split(':').next().unwrap_or(""), end + 4)
        } else if let Some(body) = tail.strip_prefix('$') {
            let n = body
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(body.len());
            (&body[..n], n + 1)
        } else {
            out.push('[');
            rest = &tail[1..];
            continue;
        };
        if name.is_empty() || name.chars().all(|c| c.is_ascii_digit()) {
            out.push_str(&tail[..len]);
        } else {
            let value = values.get(name).ok_or_else(|| {
                format!(
                    "uses ${name}, which is neither a variable of the dashboard nor a Grafana \
                     interval variable"
                )
            })?;
            out.push_str(value);
        }
        rest = &tail[len..];
    }
    out.push_str(rest);
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// promtool
// ---------------------------------------------------------------------------------------

/// promtool, or a clear failure: the tests need it and never skip.
fn promtool() -> PathBuf {
    let path = std::env::var_os("PROMTOOL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("promtool"));
    match Command::new(&path).arg("--version").output() {
        Ok(out) if out.status.success() => path,
        Ok(out) => panic!(
            "`{} --version` failed ({}): run scripts/setup-test-env.sh, which installs Debian's \
             prometheus package (/usr/bin/promtool)\n{}",
            path.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!(
            "promtool is missing ({}: {e}): run scripts/setup-test-env.sh, which installs Debian's \
             prometheus package (/usr/bin/promtool), or set PROMTOOL to its path",
            path.display()
        ),
    }
}

fn run_promtool(args: &[&str]) -> Output {
    Command::new(promtool())
        .args(args)
        .output()
        .expect("run promtool")
}

fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

// ---------------------------------------------------------------------------------------
// Names in PromQL
// ---------------------------------------------------------------------------------------

/// A metric selector: the metric name and its label matchers (label, operator, value).
#[derive(Debug, Default, Clone, PartialEq)]
struct Selector {
    metric: String,
    matchers: Vec<(String, String, String)>,
}

/// The selectors of an expression and the labels named in its `by`, `without`, `on`,
/// `ignoring`, `group_left` and `group_right` lists.
#[derive(Debug, Default)]
struct Names {
    selectors: Vec<Selector>,
    grouping: BTreeSet<String>,
}

impl Names {
    fn metrics(&self) -> BTreeSet<&str> {
        self.selectors.iter().map(|s| s.metric.as_str()).collect()
    }
}

const AGGREGATIONS: [&str; 14] = [
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];
const GROUPING_KEYWORDS: [&str; 6] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];
const KEYWORDS: [&str; 8] = [
    "and", "or", "unless", "bool", "offset", "atan2", "inf", "nan",
];

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

fn skip_spaces(s: &[char], i: &mut usize) {
    while *i < s.len() && s[*i].is_whitespace() {
        *i += 1;
    }
}

/// Reads a quoted string at `s[*i]` and returns its content (escapes resolved simply).
fn read_string(s: &[char], i: &mut usize) -> Result<String, String> {
    let quote = s[*i];
    *i += 1;
    let mut out = String::new();
    while *i < s.len() && s[*i] != quote {
        if s[*i] == '\\' && quote != '`' && *i + 1 < s.len() {
            *i += 1;
        }
        out.push(s[*i]);
        *i += 1;
    }
    if *i >= s.len() {
        return Err("unterminated string".into());
    }
    *i += 1;
    Ok(out)
}

fn read_ident(s: &[char], i: &mut usize) -> String {
    let start = *i;
    while *i < s.len() && is_ident_char(s[*i]) {
        *i += 1;
    }
    s[start..*i].iter().collect()
}

/// Reads `{label op "value", ...}` at `s[*i] == '{'`.
fn read_matchers(s: &[char], i: &mut usize) -> Result<Vec<(String, String, String)>, String> {
    *i += 1;
    let mut out = Vec::new();
    loop {
        skip_spaces(s, i);
        if *i >= s.len() {
            return Err("unclosed {".into());
        }
        if s[*i] == '}' {
            *i += 1;
            return Ok(out);
        }
        if !is_ident_start(s[*i]) {
            return Err(format!("expected a label name at {:?}", s[*i]));
        }
        let label = read_ident(s, i);
        skip_spaces(s, i);
        let op: String = ["=~", "!~", "!=", "="]
            .into_iter()
            .find(|op| s[*i..].iter().take(op.len()).copied().eq(op.chars()))
            .ok_or_else(|| format!("expected a matcher operator after {label}"))?
            .to_string();
        *i += op.len();
        skip_spaces(s, i);
        if *i >= s.len() || !matches!(s[*i], '"' | '\'' | '`') {
            return Err(format!("expected a quoted value after {label}{op}"));
        }
        let value = read_string(s, i)?;
        out.push((label, op, value));
        skip_spaces(s, i);
        if *i < s.len() && s[*i] == ',' {
            *i += 1;
        }
    }
}

/// The metric names and label names an expression uses. A small lexer: it skips strings,
/// numbers and durations, `[...]` ranges, function and aggregation names, keywords, and reads
/// label lists and matchers. It is not a parser: promtool checks that the expression parses.
fn promql_names(expr: &str) -> Result<Names, String> {
    let s: Vec<char> = expr.chars().collect();
    let mut i = 0;
    let mut out = Names::default();
    while i < s.len() {
        let c = s[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '#' {
            while i < s.len() && s[i] != '\n' {
                i += 1;
            }
        } else if matches!(c, '"' | '\'' | '`') {
            read_string(&s, &mut i)?;
        } else if c == '[' {
            while i < s.len() && s[i] != ']' {
                i += 1;
            }
            if i >= s.len() {
                return Err("unclosed [".into());
            }
            i += 1;
        } else if c == '{' {
            return Err(
                "a selector without a metric name ({...}): name the metric so it can be checked"
                    .into(),
            );
        } else if c.is_ascii_digit() || (c == '.' && s.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            while i < s.len() && (s[i].is_ascii_alphanumeric() || s[i] == '.') {
                i += 1;
            }
        } else if is_ident_start(c) {
            let word = read_ident(&s, &mut i);
            let lower = word.to_ascii_lowercase();
            let mut j = i;
            skip_spaces(&s, &mut j);
            let next = s.get(j).copied();
            if GROUPING_KEYWORDS.contains(&lower.as_str()) {
                if next == Some('(') {
                    i = j + 1;
                    loop {
                        skip_spaces(&s, &mut i);
                        match s.get(i) {
                            None => return Err(format!("unclosed {word} (...)")),
                            Some(')') => {
                                i += 1;
                                break;
                            }
                            Some(',') => i += 1,
                            Some(&c) if is_ident_start(c) => {
                                out.grouping.insert(read_ident(&s, &mut i));
                            }
                            Some(c) => return Err(format!("unexpected {c:?} in {word} (...)")),
                        }
                    }
                }
            } else if AGGREGATIONS.contains(&lower.as_str())
                || KEYWORDS.contains(&lower.as_str())
                || next == Some('(')
            {
                // An operator, a keyword or a function call.
            } else {
                let mut selector = Selector {
                    metric: word,
                    matchers: Vec::new(),
                };
                if next == Some('{') {
                    i = j;
                    selector.matchers = read_matchers(&s, &mut i)?;
                }
                if selector.matchers.iter().any(|(l, _, _)| l == "__name__") {
                    return Err("__name__ matchers hide the metric name; name it directly".into());
                }
                out.selectors.push(selector);
            }
        } else {
            i += 1;
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// What the daemon exports
// ---------------------------------------------------------------------------------------

/// Series names (with their label names) and label values seen in scrapes.
#[derive(Debug, Default)]
struct Exported {
    /// Family name → type, from `# TYPE`.
    families: BTreeMap<String, String>,
    /// Series name → label names.
    series: BTreeMap<String, BTreeSet<String>>,
    /// Label name → values.
    values: BTreeMap<String, BTreeSet<String>>,
}

impl Exported {
    fn add_scrape(&mut self, text: &str) {
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                if let Some((name, kind)) = rest.split_once(' ') {
                    self.families
                        .insert(name.to_string(), kind.trim().to_string());
                }
                continue;
            }
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let name_end = line.find(['{', ' ']).unwrap_or(line.len());
            let name = &line[..name_end];
            let labels = self.series.entry(name.to_string()).or_default();
            if line[name_end..].starts_with('{') {
                let s: Vec<char> = line[name_end..].chars().collect();
                let mut i = 0;
                // The exposition format's label set reads like a PromQL matcher list.
                let matchers = read_matchers(&s, &mut i)
                    .unwrap_or_else(|e| panic!("cannot read scraped line {line:?}: {e}"));
                for (label, _, value) in matchers {
                    labels.insert(label.clone());
                    self.values.entry(label).or_default().insert(value);
                }
            }
        }
        // Histogram and summary samples carry suffixes; a family declared without samples
        // still names its series.
        for (family, kind) in &self.families {
            let names: Vec<String> = match kind.as_str() {
                "histogram" => ["_bucket", "_sum", "_count"]
                    .iter()
                    .map(|s| format!("{family}{s}"))
                    .collect(),
                "summary" => ["", "_sum", "_count"]
                    .iter()
                    .map(|s| format!("{family}{s}"))
                    .collect(),
                _ => vec![family.clone()],
            };
            for name in names {
                self.series.entry(name).or_default();
            }
        }
    }

    /// The label names a series may carry once scraped, or None if nobody exports it.
    fn labels_of(&self, metric: &str) -> Option<BTreeSet<String>> {
        let mut labels: BTreeSet<String> = TARGET_LABELS.iter().map(|l| l.to_string()).collect();
        if PROMETHEUS_METRICS.contains(&metric) {
            return Some(labels);
        }
        labels.extend(self.series.get(metric)?.iter().cloned());
        Some(labels)
    }
}

/// Checks that `expr` names only exported metrics, labels they carry, and known values of
/// the daemon's closed label sets. Appends what is wrong to `problems`.
fn check_names(origin: &str, expr: &str, exported: &Exported, problems: &mut Vec<String>) {
    let names = match promql_names(expr) {
        Ok(names) => names,
        Err(e) => {
            problems.push(format!("{origin}: {e}: {expr}"));
            return;
        }
    };
    if names.selectors.is_empty() {
        problems.push(format!("{origin}: names no metric: {expr}"));
    }
    let mut all_labels: BTreeSet<String> = TARGET_LABELS.iter().map(|l| l.to_string()).collect();
    for selector in &names.selectors {
        let Some(labels) = exported.labels_of(&selector.metric) else {
            problems.push(format!(
                "{origin}: {} is not exported by the daemon (nor made by Prometheus): {expr}",
                selector.metric
            ));
            continue;
        };
        for (label, op, value) in &selector.matchers {
            if !labels.contains(label) {
                problems.push(format!(
                    "{origin}: {} has no label {label} (it has {labels:?})",
                    selector.metric
                ));
            } else if op == "="
                && CLOSED_LABELS.contains(&label.as_str())
                && !exported
                    .values
                    .get(label)
                    .is_some_and(|v| v.contains(value))
            {
                problems.push(format!(
                    "{origin}: {label}=\"{value}\" never occurs in the scrape (seen: {:?})",
                    exported.values.get(label)
                ));
            }
        }
        all_labels.extend(labels);
    }
    for label in &names.grouping {
        if !all_labels.contains(label) {
            problems.push(format!(
                "{origin}: groups by {label}, which none of {:?} carries",
                names.metrics()
            ));
        }
    }
}

fn scrape(daemon: &Daemon) -> String {
    let (status, body) = daemon.get("/metrics");
    assert_eq!(status, 200, "GET /metrics: {body}");
    body
}

// ---------------------------------------------------------------------------------------
// Markdown
// ---------------------------------------------------------------------------------------

/// GitHub's anchor for a heading: lower case, punctuation other than `-` and `_` dropped,
/// spaces turned into `-`.
fn github_slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// (level, text) of every ATX heading outside fenced code blocks.
fn headings(markdown: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut fenced = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let level = line.chars().take_while(|c| *c == '#').count();
        if (1..=6).contains(&level) && line[level..].starts_with(' ') {
            out.push((level, line[level..].trim().to_string()));
        }
    }
    out
}

/// The anchors GitHub gives a document's headings (duplicates get `-1`, `-2`, …).
fn anchors(markdown: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = BTreeSet::new();
    for (_, text) in headings(markdown) {
        let slug = github_slug(&text);
        let n = seen.entry(slug.clone()).or_default();
        out.insert(if *n == 0 {
            slug.clone()
        } else {
            format!("{slug}-{n}")
        });
        *n += 1;
    }
    out
}

/// The level-3 headings under `## Runbook`.
fn runbook_headings(markdown: &str) -> Vec<String> {
    let mut inside = false;
    let mut out = Vec::new();
    for (level, text) in headings(markdown) {
        if level <= 2 {
            inside = level == 2 && text == "Runbook";
        } else if inside && level == 3 {
            out.push(text);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Alert rules
// ---------------------------------------------------------------------------------------

#[test]
fn promtool_check_rules_accepts_the_alert_rules() {
    let out = run_promtool(&["check", "rules", alerts_file().to_str().unwrap()]);
    assert!(
        out.status.success(),
        "promtool check rules dashboards/alerts.yaml failed:\n{}",
        output_text(&out)
    );
}

#[test]
fn alert_unit_tests_pass_and_show_every_alert_firing_and_silent() {
    let out = run_promtool(&["test", "rules", alerts_test_file().to_str().unwrap()]);
    assert!(
        out.status.success(),
        "promtool test rules dashboards/alerts.test.yaml failed:\n{}",
        output_text(&out)
    );

    let tests = yaml_file(&alerts_test_file());
    let files: Vec<&str> = tests["rule_files"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Json::as_str)
        .collect();
    assert_eq!(
        files,
        ["alerts.yaml"],
        "alerts.test.yaml must test dashboards/alerts.yaml"
    );
    let mut fires: BTreeSet<String> = BTreeSet::new();
    let mut silent: BTreeSet<String> = BTreeSet::new();
    for case in tests["tests"].as_array().expect("alerts.test.yaml: tests") {
        for check in case["alert_rule_test"].as_array().into_iter().flatten() {
            let name = check["alertname"].as_str().expect("alertname").to_string();
            match check["exp_alerts"].as_array() {
                Some(alerts) if !alerts.is_empty() => fires.insert(name),
                _ => silent.insert(name),
            };
        }
    }
    let alerts: BTreeSet<String> = alert_rules()
        .iter()
        .filter_map(|r| r.alert().map(str::to_string))
        .collect();
    let never_fires: Vec<_> = alerts.difference(&fires).collect();
    let never_silent: Vec<_> = alerts.difference(&silent).collect();
    assert!(
        never_fires.is_empty() && never_silent.is_empty(),
        "every alert needs a unit test where it fires and one where it stays silent: \
         never fires in alerts.test.yaml: {never_fires:?}; never checked silent: {never_silent:?}"
    );
    let unknown: Vec<_> = fires
        .union(&silent)
        .filter(|a| !alerts.contains(*a))
        .collect();
    assert!(
        unknown.is_empty(),
        "alerts.test.yaml tests alerts that alerts.yaml lacks: {unknown:?}"
    );
}

fn duration_seconds(text: &str) -> Option<u64> {
    let mut total = 0;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
        } else {
            let n: u64 = number.parse().ok()?;
            number.clear();
            total += n * match c {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86400,
                _ => return None,
            };
        }
    }
    number.is_empty().then_some(total)
}

#[test]
fn alerts_follow_the_mixin_conventions() {
    let mut problems = Vec::new();
    let mut names = BTreeSet::new();
    for rule in alert_rules() {
        let Some(name) = rule.alert() else {
            problems.push(format!(
                "group {}: {} is a recording rule; alerts.yaml holds alerts only",
                rule.group,
                rule.name()
            ));
            continue;
        };
        if !names.insert(name.to_string()) {
            problems.push(format!("{name}: defined twice"));
        }
        let camel = name.strip_prefix("VpcAuditor").is_some_and(|rest| {
            rest.starts_with(|c: char| c.is_ascii_uppercase())
                && rest.chars().all(|c| c.is_ascii_alphanumeric())
        });
        if !camel {
            problems.push(format!("{name}: not CamelCase with the prefix VpcAuditor"));
        }
        let severity = rule.json["labels"]["severity"].as_str().unwrap_or("");
        if !ALERT_SEVERITIES.contains(&severity) {
            problems.push(format!(
                "{name}: labels.severity is {severity:?}, expected one of {ALERT_SEVERITIES:?}"
            ));
        }
        for key in ["summary", "description", "runbook_url"] {
            if rule.json["annotations"][key]
                .as_str()
                .is_none_or(|v| v.trim().is_empty())
            {
                problems.push(format!("{name}: annotations.{key} is missing"));
            }
        }
        let expr = rule.expr();
        let for_seconds = rule.json["for"]
            .as_str()
            .map(|f| duration_seconds(f).unwrap_or_else(|| panic!("{name}: cannot read for: {f}")));
        // Findings change only once per scan (every 5 minutes by default): an alert on them
        // waits for two scans so a finding that comes and goes does not page.
        if expr.contains("vpc_auditor_finding") && for_seconds.unwrap_or(0) < 600 {
            problems.push(format!(
                "{name}: alerts on findings need `for:` of at least 10m (two scans), found {:?}",
                rule.json["for"]
            ));
        }
        // The job label convention: the ServiceMonitor and the docs' scrape config name
        // the job vpc-auditor.
        if let Ok(names) = promql_names(expr) {
            for selector in names.selectors.iter().filter(|s| s.metric == "up") {
                let job = selector
                    .matchers
                    .iter()
                    .find(|(l, _, _)| l == "job")
                    .map(|(_, op, v)| (op.as_str(), v.as_str()));
                if job != Some(("=", JOB)) {
                    problems.push(format!(
                        "{name}: selects up with {job:?}; the convention is job=\"{JOB}\""
                    ));
                }
            }
        }
    }
    for required in [
        "VpcAuditorDown",
        "VpcAuditorAbsent",
        "VpcAuditorStale",
        "VpcAuditorScanErrors",
        "VpcAuditorCriticalFindings",
        "VpcAuditorHighFindings",
        "VpcAuditorRoleDrift",
        "VpcAuditorSubnetRunningOutOfIps",
    ] {
        if !names.contains(required) {
            problems.push(format!("{required}: missing from alerts.yaml"));
        }
    }
    assert!(
        problems.is_empty(),
        "dashboards/alerts.yaml:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn every_runbook_url_points_at_its_alerts_heading_in_the_runbook() {
    // The runbook is the "Runbook" section of the alerts page: that is where the links point.
    let documents = vec![(RUNBOOK_PAGE, read(&repo().join(RUNBOOK_PAGE)))];
    let alerts: Vec<String> = alert_rules()
        .iter()
        .filter_map(|r| r.alert().map(str::to_string))
        .collect();
    let mut problems = Vec::new();
    for (name, text) in &documents {
        if !headings(text)
            .iter()
            .any(|(level, t)| *level == 1 && t == "Dashboards and alerts")
        {
            problems.push(format!("{name}: no \"# Dashboards and alerts\" heading"));
        }
        let runbook: BTreeSet<String> = runbook_headings(text).into_iter().collect();
        let anchors = anchors(text);
        for rule in alert_rules() {
            let Some(alert) = rule.alert() else { continue };
            if !runbook.contains(alert) {
                problems.push(format!(
                    "{name}: no \"### {alert}\" heading under \"## Runbook\""
                ));
            }
            let url = rule.json["annotations"]["runbook_url"]
                .as_str()
                .unwrap_or("");
            match url.strip_prefix(RUNBOOK_BASE) {
                None => problems.push(format!(
                    "{alert}: runbook_url {url:?} does not start with {RUNBOOK_BASE}"
                )),
                Some(anchor) => {
                    if anchor != alert.to_lowercase() {
                        problems.push(format!(
                            "{alert}: runbook_url anchor #{anchor} is not the alert's own \
                             (#{})",
                            alert.to_lowercase()
                        ));
                    }
                    if !anchors.contains(anchor) {
                        problems.push(format!(
                            "{alert}: runbook_url anchor #{anchor} is no heading of {name}"
                        ));
                    }
                }
            }
        }
        for heading in &runbook {
            if !alerts.contains(heading) {
                problems.push(format!(
                    "{name}: runbook entry \"{heading}\" is for no alert in alerts.yaml"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "runbook:\n  {}", problems.join("\n  "));
}

// ---------------------------------------------------------------------------------------
// Dashboards
// ---------------------------------------------------------------------------------------

#[test]
fn every_dashboard_query_parses_as_promql() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut groups = Vec::new();
    let mut problems = Vec::new();
    let mut count = 0;
    for dashboard in dashboards() {
        let values = placeholder_values(&dashboard.json);
        for query in queries(&dashboard) {
            match substitute(&query.expr, &values) {
                Ok(expr) => {
                    count += 1;
                    groups.push(json!({
                        "name": query.origin,
                        "rules": [{"record": "dashboard_query", "expr": expr}],
                    }));
                }
                Err(e) => problems.push(format!("{}: {e}", query.origin)),
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(count >= 20, "only {count} dashboard queries found");
    let file = dir.path().join("dashboard-queries.yaml");
    std::fs::write(
        &file,
        serde_yaml_ng::to_string(&json!({ "groups": groups })).unwrap(),
    )
    .unwrap();
    let out = run_promtool(&["check", "rules", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "promtool could not parse some dashboard queries (each group is named after its \
         panel or variable):\n{}",
        output_text(&out)
    );
}

#[test]
fn dashboards_follow_the_conventions() {
    let dashboards = dashboards();
    let mut problems = Vec::new();
    let mut uids = BTreeMap::new();
    let mut titles = BTreeSet::new();
    for d in &dashboards {
        let file = &d.file;
        let json = &d.json;
        let uid = json["uid"].as_str().unwrap_or("");
        let uid_ok = !uid.is_empty()
            && uid.len() <= 40
            && uid
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !uid_ok {
            problems.push(format!(
                "{file}: uid {uid:?} must be fixed: 1-40 of [a-z0-9-]"
            ));
        }
        if let Some(other) = uids.insert(uid.to_string(), file.clone()) {
            problems.push(format!("{file}: uid {uid} is also {other}'s"));
        }
        let title = json["title"].as_str().unwrap_or("");
        if title.is_empty() || !titles.insert(title.to_string()) {
            problems.push(format!("{file}: title {title:?} is empty or not unique"));
        }
        if json["description"].as_str().is_none_or(str::is_empty) {
            problems.push(format!("{file}: no description"));
        }
        if !json["id"].is_null() {
            problems.push(format!(
                "{file}: id must be null, so an import creates the dashboard"
            ));
        }
        let schema = json["schemaVersion"].as_u64().unwrap_or(0);
        if schema < 36 {
            problems.push(format!(
                "{file}: schemaVersion {schema} is old; use a recent one (39)"
            ));
        }

        let variables = json["templating"]["list"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let datasource = variables.iter().find(|v| v["name"] == "datasource");
        match datasource {
            Some(v) if v["type"] == "datasource" && v["query"] == "prometheus" => {}
            other => problems.push(format!(
                "{file}: needs a `datasource` variable of type datasource, query prometheus; \
                 found {other:?}"
            )),
        }
        for var in &variables {
            if var["type"] != "query" {
                continue;
            }
            if var["datasource"] != datasource_ref() {
                problems.push(format!(
                    "{file}: variable ${} must use the datasource variable {}",
                    var["name"].as_str().unwrap_or("?"),
                    datasource_ref()
                ));
            }
            // Grafana shows `definition` and runs `query`: they must not tell different stories.
            if let Some(definition) = var["definition"].as_str() {
                if Some(definition) != variable_query_text(var) {
                    problems.push(format!(
                        "{file}: variable ${}: definition {definition:?} differs from its query {:?}",
                        var["name"].as_str().unwrap_or("?"),
                        variable_query_text(var)
                    ));
                }
            }
        }

        let mut ids = BTreeSet::new();
        let mut boxes: Vec<(String, [i64; 4])> = Vec::new();
        for panel in panels(json) {
            let name = panel_name(file, panel);
            if !ids.insert(panel["id"].to_string()) || !panel["id"].is_u64() {
                problems.push(format!("{name}: id missing or not unique"));
            }
            if panel["title"].as_str().is_none_or(|t| t.trim().is_empty()) {
                problems.push(format!("{name}: no title"));
            }
            let pos = &panel["gridPos"];
            let rect = ["x", "y", "w", "h"].map(|k| pos[k].as_i64().unwrap_or(-1));
            if rect.iter().any(|v| *v < 0) || rect[2] == 0 || rect[0] + rect[2] > 24 {
                problems.push(format!("{name}: bad gridPos {pos}"));
            }
            if panel.get("gridPos").is_some() && !panel["collapsed"].as_bool().unwrap_or(false) {
                for (other, r) in &boxes {
                    let overlap = rect[0] < r[0] + r[2]
                        && r[0] < rect[0] + rect[2]
                        && rect[1] < r[1] + r[3]
                        && r[1] < rect[1] + rect[3];
                    if overlap {
                        problems.push(format!("{name}: overlaps {other}"));
                    }
                }
                boxes.push((name.clone(), rect));
            }
            if is_layout_panel(panel) {
                continue;
            }
            if panel["description"]
                .as_str()
                .is_none_or(|t| t.trim().is_empty())
            {
                problems.push(format!("{name}: no description"));
            }
            if panel["fieldConfig"]["defaults"]["unit"]
                .as_str()
                .is_none_or(str::is_empty)
            {
                problems.push(format!("{name}: no unit (fieldConfig.defaults.unit)"));
            }
            if panel["datasource"] != datasource_ref() {
                problems.push(format!(
                    "{name}: datasource is {}, expected {}",
                    panel["datasource"],
                    datasource_ref()
                ));
            }
            let targets = panel["targets"].as_array().cloned().unwrap_or_default();
            if targets.is_empty() {
                problems.push(format!("{name}: no targets"));
            }
            let mut refs = BTreeSet::new();
            for target in &targets {
                let ref_id = target["refId"].as_str().unwrap_or("");
                if ref_id.is_empty() || !refs.insert(ref_id.to_string()) {
                    problems.push(format!("{name}: refId {ref_id:?} missing or repeated"));
                }
                if target["datasource"] != datasource_ref() {
                    problems.push(format!(
                        "{name} target {ref_id}: datasource is {}, expected {}",
                        target["datasource"],
                        datasource_ref()
                    ));
                }
                if target["expr"].as_str().is_none_or(|e| e.trim().is_empty()) {
                    problems.push(format!("{name} target {ref_id}: no expr"));
                }
                // A table shows the current state: one instant query, labels as columns.
                if panel["type"] == "table"
                    && (target["format"] != "table" || target["instant"] != true)
                {
                    problems.push(format!(
                        "{name} target {ref_id}: a table's query must be instant with format table"
                    ));
                }
            }
        }
    }
    // Links between dashboards name a uid that exists.
    for d in &dashboards {
        let text = d.json.to_string();
        for (i, _) in text.match_indices("/d/") {
            let uid: String = text[i + 3..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect();
            if !uids.contains_key(&uid) {
                problems.push(format!(
                    "{}: links to /d/{uid}, which no dashboard has",
                    d.file
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "dashboard conventions:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn provisioning_files_point_at_the_dashboards() {
    let dir = dashboards_dir().join("provisioning");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no provisioning files in {}",
        dir.display()
    );
    let dashboards: BTreeSet<String> = dashboards().into_iter().map(|d| d.file).collect();
    let mut provided: BTreeMap<String, String> = BTreeMap::new();
    let mut providers = BTreeSet::new();
    let mut problems = Vec::new();
    for path in &files {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let yaml = yaml_file(path);
        if yaml["apiVersion"] != 1 {
            problems.push(format!("{file}: apiVersion must be 1"));
        }
        let list = yaml["providers"].as_array().cloned().unwrap_or_default();
        if list.is_empty() {
            problems.push(format!("{file}: no providers"));
        }
        for provider in list {
            let name = provider["name"].as_str().unwrap_or("");
            if name.is_empty() || !providers.insert(name.to_string()) {
                problems.push(format!(
                    "{file}: provider name {name:?} is empty or used twice"
                ));
            }
            if !provider["type"].is_null() && provider["type"] != "file" {
                problems.push(format!("{file}: provider {name} must be of type file"));
            }
            let target = provider["options"]["path"].as_str().unwrap_or("");
            let base = target.rsplit('/').next().unwrap_or("");
            if !dashboards.contains(base) {
                problems.push(format!(
                    "{file}: provider {name} points at {target:?}, which is none of the \
                     dashboards {dashboards:?}"
                ));
            } else if let Some(other) = provided.insert(base.to_string(), file.clone()) {
                problems.push(format!("{file}: {base} is provisioned by {other} too"));
            }
        }
    }
    for dashboard in &dashboards {
        if !provided.contains_key(dashboard) {
            problems.push(format!("{dashboard}: no provisioning file points at it"));
        }
    }
    assert!(
        problems.is_empty(),
        "dashboards/provisioning:\n  {}",
        problems.join("\n  ")
    );
}

// ---------------------------------------------------------------------------------------
// Against the real daemon and a real Prometheus
// ---------------------------------------------------------------------------------------

#[test]
fn dashboards_alerts_and_alert_tests_name_only_what_the_daemon_exports() {
    let demo = Daemon::start(&["--demo"]);
    demo.wait_ready();
    let dir = tempfile::tempdir().expect("temp dir");
    let failing = failing_daemon(dir.path());
    let mut exported = Exported::default();
    exported.add_scrape(&scrape(&demo));
    exported.add_scrape(&scrape(&failing));
    for must in [
        "vpc_auditor_finding",
        "vpc_auditor_scan_errors_total",
        "vpc_auditor_aws_api_calls_total",
    ] {
        assert!(
            exported.series.contains_key(must),
            "the scrapes lack {must}, so this test would check too little"
        );
    }

    let mut problems = Vec::new();
    let mut used = BTreeSet::new();
    for rule in alert_rules() {
        let origin = format!("alerts.yaml {}", rule.name());
        check_names(&origin, rule.expr(), &exported, &mut problems);
        if let Ok(names) = promql_names(rule.expr()) {
            used.extend(names.selectors.into_iter().map(|s| s.metric));
        }
    }
    for dashboard in dashboards() {
        let values = placeholder_values(&dashboard.json);
        for query in queries(&dashboard) {
            let expr = match substitute(&query.expr, &values) {
                Ok(expr) => expr,
                Err(e) => {
                    problems.push(format!("{}: {e}", query.origin));
                    continue;
                }
            };
            check_names(&query.origin, &expr, &exported, &mut problems);
            if let Some((name, label)) = &query.variable {
                let names = promql_names(&expr).unwrap_or_default();
                for selector in &names.selectors {
                    let has = exported
                        .labels_of(&selector.metric)
                        .is_some_and(|l| l.contains(label));
                    if !has {
                        problems.push(format!(
                            "{}: ${name} lists label {label}, which {} lacks",
                            query.origin, selector.metric
                        ));
                    }
                }
            }
            if let Ok(names) = promql_names(&expr) {
                used.extend(names.selectors.into_iter().map(|s| s.metric));
            }
        }
    }

    // The alert tests' input series must look like real ones: an exported metric with
    // exactly its labels, plus target labels.
    let tests = yaml_file(&alerts_test_file());
    for case in tests["tests"].as_array().into_iter().flatten() {
        for input in case["input_series"].as_array().into_iter().flatten() {
            let series = input["series"].as_str().unwrap_or("");
            let origin = format!(
                "alerts.test.yaml test {:?} series {series}",
                case["name"].as_str().unwrap_or("")
            );
            let names = match promql_names(series) {
                Ok(names) if names.selectors.len() == 1 => names,
                other => {
                    problems.push(format!("{origin}: cannot read ({other:?})"));
                    continue;
                }
            };
            let selector = &names.selectors[0];
            let labels: BTreeSet<&str> = selector
                .matchers
                .iter()
                .filter(|(l, _, _)| !TARGET_LABELS.contains(&l.as_str()))
                .map(|(l, _, _)| l.as_str())
                .collect();
            if PROMETHEUS_METRICS.contains(&selector.metric.as_str()) {
                if !labels.is_empty() {
                    problems.push(format!("{origin}: Prometheus adds no labels {labels:?}"));
                }
                continue;
            }
            match exported.series.get(&selector.metric) {
                None => problems.push(format!("{origin}: the daemon does not export it")),
                Some(real) => {
                    let real: BTreeSet<&str> = real.iter().map(String::as_str).collect();
                    if labels != real {
                        problems.push(format!(
                            "{origin}: labels {labels:?} differ from the daemon's {real:?}"
                        ));
                    }
                }
            }
            check_names(&origin, series, &exported, &mut problems);
        }
    }

    assert!(
        used.len() >= 10,
        "only {} metrics found in dashboards and alerts: {used:?}",
        used.len()
    );
    assert!(
        problems.is_empty(),
        "names that the daemon does not export (exported: {:?}):\n  {}",
        exported.series.keys().collect::<Vec<_>>(),
        problems.join("\n  ")
    );
}

/// Labels a legend format names: `{{label}}`.
fn legend_labels(legend: &str) -> Vec<String> {
    legend
        .split("{{")
        .skip(1)
        .filter_map(|part| part.split_once("}}"))
        .map(|(label, _)| label.trim().to_string())
        .collect()
}

#[test]
fn every_dashboard_query_returns_data_from_a_real_prometheus() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (daemon, prometheus) = scraped_failing_daemon(dir.path());
    let logs = || both_logs(&daemon, &prometheus);

    let mut problems = Vec::new();
    let mut checked = 0;
    for dashboard in dashboards() {
        // Choose each variable's value as a person would: from the variable's own query,
        // preferring the value with the most findings.
        let mut values = grafana_globals("1m");
        let mut chosen: Vec<(String, String)> = Vec::new();
        let all = queries(&dashboard);
        for query in all.iter().filter(|q| q.variable.is_some()) {
            let (name, label) = query.variable.clone().unwrap();
            let selector = substitute(&query.expr, &values)
                .unwrap_or_else(|e| panic!("{}: {e}", query.origin));
            let options: Vec<String> = prometheus
                .query(&format!("group by ({label}) ({selector})"))
                .into_iter()
                .filter_map(|s| s.labels.get(&label).cloned())
                .collect();
            if options.is_empty() {
                problems.push(format!(
                    "{}: label_values({selector}, {label}) offers nothing",
                    query.origin
                ));
                values.insert(name, "none".into());
                continue;
            }
            let filter: Vec<String> = chosen.iter().map(|(l, v)| format!("{l}=\"{v}\"")).collect();
            let counts = prometheus.query(&format!(
                "count by ({label}) (vpc_auditor_finding{{{}}})",
                filter.join(",")
            ));
            let best = options
                .iter()
                .max_by_key(|o| {
                    counts
                        .iter()
                        .find(|s| s.labels.get(&label) == Some(o))
                        .map(|s| s.value as i64)
                        .unwrap_or(0)
                })
                .unwrap()
                .clone();
            chosen.push((label, best.clone()));
            values.insert(name, best);
        }

        let mut pending: Vec<(Query, String)> = all
            .into_iter()
            .filter(|q| q.variable.is_none())
            .map(|q| {
                let expr =
                    substitute(&q.expr, &values).unwrap_or_else(|e| panic!("{}: {e}", q.origin));
                (q, expr)
            })
            .collect();
        checked += pending.len();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            pending.retain(|(query, expr)| {
                let samples = prometheus.query(expr);
                if samples.is_empty() {
                    return true;
                }
                for label in legend_labels(query.legend.as_deref().unwrap_or("")) {
                    if samples.iter().any(|s| !s.labels.contains_key(&label)) {
                        problems.push(format!(
                            "{}: legend names {{{{{label}}}}}, which the result lacks: {:?}",
                            query.origin, samples[0].labels
                        ));
                    }
                }
                false
            });
            if pending.is_empty() || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        for (query, expr) in pending {
            problems.push(format!(
                "{} (variables {chosen:?}): no data for {expr}",
                query.origin
            ));
        }
    }
    assert!(checked >= 20, "only {checked} queries checked");
    assert!(
        problems.is_empty(),
        "dashboard queries against a real Prometheus scraping the daemon:\n  {}\n{}",
        problems.join("\n  "),
        logs()
    );
}

// ---------------------------------------------------------------------------------------
// The test helpers themselves
// ---------------------------------------------------------------------------------------

#[test]
fn promql_names_finds_metrics_and_labels_and_skips_everything_else() {
    let names = promql_names(
        r#"max by (rule_id) (vpc_auditor_findings{severity="critical", rule_id!~"iam[.].*"}) > 0"#,
    )
    .unwrap();
    assert_eq!(
        names.selectors,
        [Selector {
            metric: "vpc_auditor_findings".into(),
            matchers: vec![
                ("severity".into(), "=".into(), "critical".into()),
                ("rule_id".into(), "!~".into(), "iam[.].*".into()),
            ],
        }]
    );
    assert_eq!(names.grouping, BTreeSet::from(["rule_id".to_string()]));

    let names = promql_names(
        "histogram_quantile(0.9, sum by (le) (rate(a_bucket[5m] offset 1h)))\n\
         / on (job) group_left (version) b @ start()\n\
         and bool Inf > -1.5e3 # a comment naming not_a_metric\n\
         or label_replace(c{x='{not_a_metric}'}, \"dst\", \"$1\", \"src\", \"(d_metric).*\")\n\
         unless SUM WITHOUT (instance) (e[10m:1m]) or count_values(\"v\", f) or topk(3, g)",
    )
    .unwrap();
    assert_eq!(
        names.metrics(),
        BTreeSet::from(["a_bucket", "b", "c", "e", "f", "g"])
    );
    assert_eq!(
        names.grouping,
        ["le", "job", "version", "instance"]
            .into_iter()
            .map(String::from)
            .collect()
    );

    assert_eq!(
        promql_names("time() - max(vpc_auditor_last_successful_scan_timestamp_seconds)")
            .unwrap()
            .metrics(),
        BTreeSet::from(["vpc_auditor_last_successful_scan_timestamp_seconds"])
    );
    assert!(promql_names(r#"{__name__="x"}"#).is_err());
    assert!(promql_names(r#"x{__name__="y"}"#).is_err());
    assert!(promql_names(r#"x{a="unterminated}"#).is_err());
}

#[test]
fn grafana_variables_are_substituted_and_unknown_ones_rejected() {
    let values: BTreeMap<String, String> = grafana_globals("5m")
        .into_iter()
        .chain([("vpc".to_string(), "vpc-1".to_string())])
        .collect();
    assert_eq!(
        substitute(
            r#"rate(m{vpc_id="$vpc", a="${vpc}", b="${vpc:raw}", c="[[vpc]]"}[$__rate_interval])"#,
            &values
        )
        .unwrap(),
        r#"rate(m{vpc_id="vpc-1", a="vpc-1", b="vpc-1", c="vpc-1"}[5m])"#
    );
    assert_eq!(
        substitute(r#"label_replace(m, "d", "$1", "s", "(.*)$")"#, &values).unwrap(),
        r#"label_replace(m, "d", "$1", "s", "(.*)$")"#
    );
    let err = substitute(r#"m{a="$acount"}"#, &values).unwrap_err();
    assert!(err.contains("$acount"), "{err}");
    assert_eq!(
        parse_label_values(r#"label_values(m{a="$x", b="y"}, vpc_id)"#).unwrap(),
        (r#"m{a="$x", b="y"}"#.to_string(), "vpc_id".to_string())
    );
    assert!(parse_label_values("label_values(vpc_id)").is_err());
}

#[test]
fn runbook_helpers_compute_github_anchors() {
    assert_eq!(
        github_slug("VpcAuditorCriticalFindings"),
        "vpcauditorcriticalfindings"
    );
    assert_eq!(
        github_slug("Dashboards and alerts"),
        "dashboards-and-alerts"
    );
    assert_eq!(github_slug("What `--once` does?"), "what---once-does");
    let doc = "## A\n```\n# not a heading\n```\n## Runbook\n### X\n### Y\n## A\n### Z\n";
    assert_eq!(runbook_headings(doc), ["X", "Y"]);
    assert_eq!(
        anchors(doc),
        ["a", "a-1", "runbook", "x", "y", "z"]
            .into_iter()
            .map(String::from)
            .collect()
    );
    assert_eq!(duration_seconds("1h30m"), Some(5400));
    assert_eq!(duration_seconds("10m"), Some(600));
    assert_eq!(duration_seconds("10"), None);
}
