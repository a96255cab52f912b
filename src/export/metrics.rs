//! Prometheus metrics: every metric name the daemon exports, registered once in one
//! [`Metrics`] struct; the rest of the code calls its methods and never names a metric.
//!
//! The gauges are set from the merged last good result ([`Latest`]) once per completed scan,
//! and the text is rendered then, into a cached string that every scrape returns as it is.
//! So a scrape is cheap, never recomputes anything, and never sees a half-updated scan.
//! Label values are identifiers only (rule ids, AWS ids, AWS operation names): messages
//! never become labels, so the number of series stays bounded by what the account holds.

use std::sync::{Arc, Mutex, RwLock};

use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::export::latest::{Latest, ScanError, ScanRecord};
use crate::export::report::REPORT_SCHEMA_VERSION;
use crate::finding::Severity;
use crate::rules::catalogue::CATALOGUE;
use crate::shard::Shard;

/// The content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

const FINDING_LABELS: [&str; 7] = [
    "rule_id",
    "severity",
    "aws_account_id",
    "aws_region",
    "vpc_id",
    "resource_type",
    "resource_id",
];
const SUBNET_LABELS: [&str; 5] = [
    "aws_account_id",
    "aws_region",
    "vpc_id",
    "subnet_id",
    "availability_zone",
];
const REGION_LABELS: [&str; 2] = ["aws_account_id", "aws_region"];

/// Every metric the daemon exports.
pub struct Metrics {
    registry: Registry,
    per_resource_series: bool,
    finding: IntGaugeVec,
    findings: IntGaugeVec,
    suppressed_finding: IntGaugeVec,
    resources_evaluated: IntGaugeVec,
    subnet_available_ips: IntGaugeVec,
    subnet_pod_capacity: IntGaugeVec,
    last_scan_duration: Gauge,
    last_scan_success: IntGauge,
    last_scan_timestamp: Gauge,
    last_success_timestamp: Gauge,
    region_scan_success: IntGaugeVec,
    region_last_success_timestamp: GaugeVec,
    scans: IntCounter,
    scans_skipped: IntCounter,
    scan_errors: IntCounterVec,
    aws_api_calls: IntCounterVec,
    config_reloads: IntCounterVec,
    config_last_reload_successful: IntGauge,
    config_last_reload_success_timestamp: Gauge,
    shard_info: IntGaugeVec,
    accounts_audited: IntGauge,
    events_received: IntCounterVec,
    event_rescans: IntCounter,
    event_to_findings: Histogram,
    event_queue_errors: IntCounterVec,
    event_queue_up: IntGaugeVec,
    /// Held while metrics change and render: a gauge vector's reset and refill are not
    /// atomic, and a render in between would show findings missing.
    updating: Mutex<()>,
    /// The rendered text: the per-resource families (rendered once per scan, their gauges
    /// then emptied, so the series are held once, as text) and the rest.
    rendered: RwLock<Rendered>,
}

/// The exposition text, in two parts: the per-resource families (`vpc_auditor_finding`,
/// `vpc_auditor_suppressed_finding`, `vpc_auditor_subnet_*`), which can be hundreds of
/// thousands of series and change only with a scan, and every other family.
#[derive(Clone)]
struct Rendered {
    resources: Arc<str>,
    rest: Arc<str>,
}

/// The families [`Rendered::resources`] holds.
const RESOURCE_FAMILIES: [&str; 4] = [
    "vpc_auditor_finding",
    "vpc_auditor_suppressed_finding",
    "vpc_auditor_subnet_available_ips",
    "vpc_auditor_subnet_pod_capacity",
];

/// A load of the daemon's config, as [`Metrics::config_loaded`] counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigLoad {
    /// The config the daemon started with (not counted as a reload).
    AtStart,
    /// A reload that took effect.
    Reloaded,
    /// A reload that was rejected; the previous config still runs.
    Rejected,
}

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(format!("vpc_auditor_{name}"), help)
}

impl Metrics {
    /// Registers every metric. `per_resource_series: false` leaves out the per-finding and
    /// per-subnet series, whose number grows with the account.
    pub fn new(per_resource_series: bool) -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        macro_rules! register {
            ($metric:expr) => {{
                let metric = $metric;
                registry.register(Box::new(metric.clone()))?;
                metric
            }};
        }
        let build_info = register!(IntGaugeVec::new(
            opts(
                "build_info",
                "Always 1; the labels say which vpc-auditor is running."
            ),
            &["version", "report_schema_version"],
        )?);
        build_info
            .with_label_values(&[
                env!("CARGO_PKG_VERSION"),
                &REPORT_SCHEMA_VERSION.to_string(),
            ])
            .set(1);
        let metrics = Metrics {
            per_resource_series,
            finding: register!(IntGaugeVec::new(
                opts(
                    "finding",
                    "1 for each open finding: a rule that a resource fails, as of the last good scan of its region."
                ),
                &FINDING_LABELS,
            )?),
            suppressed_finding: register!(IntGaugeVec::new(
                opts(
                    "suppressed_finding",
                    "1 for each finding a suppression covers; such a finding is left out of vpc_auditor_finding and vpc_auditor_findings."
                ),
                &FINDING_LABELS,
            )?),
            findings: register!(IntGaugeVec::new(
                opts(
                    "findings",
                    "Open findings per account, rule and severity; every catalogued rule and every severity is exported for each audited account, 0 when none."
                ),
                &["rule_id", "severity", "aws_account_id"],
            )?),
            resources_evaluated: register!(IntGaugeVec::new(
                opts(
                    "resources_evaluated",
                    "Resources each rule evaluated in the account in the last scan; 0 findings with 0 evaluated means nothing was checked."
                ),
                &["rule_id", "aws_account_id"],
            )?),
            subnet_available_ips: register!(IntGaugeVec::new(
                opts(
                    "subnet_available_ips",
                    "Free IPv4 addresses in the subnet (AWS AvailableIpAddressCount), as of the last good scan of its region."
                ),
                &SUBNET_LABELS,
            )?),
            subnet_pod_capacity: register!(IntGaugeVec::new(
                opts(
                    "subnet_pod_capacity",
                    "Usable IPv4 addresses in the subnet (its size less AWS's 5 reserved), i.e. pods at one IP per pod."
                ),
                &SUBNET_LABELS,
            )?),
            last_scan_duration: register!(Gauge::with_opts(opts(
                "last_scan_duration_seconds",
                "Wall time of the last completed scan, collection and evaluation."
            ))?),
            last_scan_success: register!(IntGauge::with_opts(opts(
                "last_scan_success",
                "1 when the last scan collected every region, 0 when any region or the whole scan failed."
            ))?),
            last_scan_timestamp: register!(Gauge::with_opts(opts(
                "last_scan_timestamp_seconds",
                "Unix time the last scan completed, successful or not."
            ))?),
            last_success_timestamp: register!(Gauge::with_opts(opts(
                "last_successful_scan_timestamp_seconds",
                "Unix time of the last scan that collected every region; 0 if none has."
            ))?),
            region_scan_success: register!(IntGaugeVec::new(
                opts(
                    "region_scan_success",
                    "1 when the last scan collected this account and region, 0 when it failed (its findings are then those of its last good scan)."
                ),
                &REGION_LABELS,
            )?),
            region_last_success_timestamp: register!(GaugeVec::new(
                opts(
                    "region_last_successful_scan_timestamp_seconds",
                    "Unix time this account and region was last collected; 0 if never."
                ),
                &REGION_LABELS,
            )?),
            scans: register!(IntCounter::with_opts(opts(
                "scans_total",
                "Scans completed, successful or not."
            ))?),
            scans_skipped: register!(IntCounter::with_opts(opts(
                "scans_skipped_total",
                "Scheduled scans skipped because the previous scan was still running."
            ))?),
            scan_errors: register!(IntCounterVec::new(
                opts(
                    "scan_errors_total",
                    "Scan failures by stage and AWS operation: one per failed region, or one for a scan that failed as a whole."
                ),
                &["stage", "operation", "aws_account_id", "aws_region"],
            )?),
            aws_api_calls: register!(IntCounterVec::new(
                opts(
                    "aws_api_calls_total",
                    "AWS API calls made by scans, by service, operation and account (a page is one call)."
                ),
                &["service", "operation", "aws_account_id"],
            )?),
            config_reloads: register!(IntCounterVec::new(
                opts(
                    "config_reloads_total",
                    "Config reloads (SIGHUP) by result: success, or failure (the previous config kept running)."
                ),
                &["result"],
            )?),
            config_last_reload_successful: register!(IntGauge::with_opts(opts(
                "config_last_reload_successful",
                "1 when the last config load (at start or on SIGHUP) succeeded, 0 when the last reload was rejected."
            ))?),
            config_last_reload_success_timestamp: register!(Gauge::with_opts(opts(
                "config_last_reload_success_timestamp_seconds",
                "Unix time of the last successful config load, at start or on SIGHUP."
            ))?),
            shard_info: register!(IntGaugeVec::new(
                opts(
                    "shard_info",
                    "Always 1; the labels say which shard of the accounts this replica audits (shard 0 of 1: all of them)."
                ),
                &["shard", "total_shards"],
            )?),
            accounts_audited: register!(IntGauge::with_opts(opts(
                "accounts_audited",
                "Accounts this replica audits (its shard), as of the last scan."
            ))?),
            events_received: register!(IntCounterVec::new(
                opts(
                    "events_received_total",
                    "Change events read from the events queue, by source, event name (a known one or other) and what became of them."
                ),
                &["source", "event_name", "outcome"],
            )?),
            event_rescans: register!(IntCounter::with_opts(opts(
                "event_rescans_total",
                "Scans started because change events came (not the scheduled ones)."
            ))?),
            event_to_findings: register!(Histogram::with_opts(
                HistogramOpts::new(
                    "vpc_auditor_event_to_findings_seconds",
                    "Seconds from a change event's time to the published findings of the scan that covered it."
                )
                .buckets(vec![
                    1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0
                ])
            )?),
            event_queue_errors: register!(IntCounterVec::new(
                opts(
                    "event_queue_errors_total",
                    "Failed calls to the events queue, by SQS operation."
                ),
                &["operation"],
            )?),
            event_queue_up: register!(IntGaugeVec::new(
                opts(
                    "event_queue_up",
                    "1 when the last read of the events queue succeeded, 0 when it failed; only with events configured."
                ),
                &["queue"],
            )?),
            registry,
            updating: Mutex::new(()),
            rendered: RwLock::new(Rendered {
                resources: Arc::from(""),
                rest: Arc::from(""),
            }),
        };
        for result in ["success", "failure"] {
            metrics.config_reloads.with_label_values(&[result]);
        }
        metrics.shard_info.with_label_values(&["0", "1"]).set(1);
        metrics.render();
        Ok(metrics)
    }

    /// Records a load of the daemon's config: at start, or a reload that took effect or
    /// was rejected.
    pub fn config_loaded(&self, load: ConfigLoad) {
        let _guard = self.updating.lock().unwrap_or_else(|e| e.into_inner());
        match load {
            ConfigLoad::AtStart | ConfigLoad::Reloaded => {
                if load == ConfigLoad::Reloaded {
                    self.config_reloads.with_label_values(&["success"]).inc();
                }
                self.config_last_reload_successful.set(1);
                self.config_last_reload_success_timestamp
                    .set(unix_seconds(chrono::Utc::now()));
            }
            ConfigLoad::Rejected => {
                self.config_reloads.with_label_values(&["failure"]).inc();
                self.config_last_reload_successful.set(0);
            }
        }
        self.render();
    }

    /// The exposition text as of the last update; what every scrape returns.
    pub fn text(&self) -> String {
        let rendered = match self.rendered.read() {
            Ok(text) => text.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        let mut text = String::with_capacity(rendered.rest.len() + rendered.resources.len());
        text.push_str(&rendered.rest);
        text.push_str(&rendered.resources);
        text
    }

    /// Counts a scheduled scan that was skipped because the previous one still ran.
    pub fn scan_skipped(&self) {
        let _guard = self.updating.lock().unwrap_or_else(|e| e.into_inner());
        self.scans_skipped.inc();
        self.render();
    }

    /// Sets every gauge from the merged result after a scan, counts the scan's errors and
    /// API calls, and renders the text that scrapes return until the next scan.
    /// Exports the events series from the start, at 0, once `events:` is configured: the
    /// outcomes that need no known event name, and the read errors.
    pub fn events_configured(&self) {
        let _guard = self.updating.lock().unwrap_or_else(|e| e.into_inner());
        for (source, outcome) in [
            ("other", "malformed"),
            ("other", "unknown_event"),
            ("aws.ec2", "unknown_event"),
            ("aws.iam", "unknown_event"),
        ] {
            self.events_received
                .with_label_values(&[source, "other", outcome]);
        }
        self.event_queue_errors
            .with_label_values(&["ReceiveMessage"]);
        self.render();
    }

    /// Counts a change event by what became of it. `event_name` is a known name or
    /// `other`, so the number of series stays bounded.
    pub fn event_received(&self, source: &str, event_name: &str, outcome: &str) {
        let _guard = self.updating.lock().unwrap_or_else(|e| e.into_inner());
        self.events_received
            .with_label_values(&[source, event_name, outcome])
            .inc();
        self.render();
    }

    /// Counts a scan started for change events.
    pub fn event_rescan(&self) {
        let _guard = self.updating.lock().unwrap_or_else(|e| e.into_inner());
        self.event_rescans.inc();
        self.render();
    }

    /// Records, per message a published scan covered, the seconds from the event's time to
    /// now, and counts it as `rescanned`.
    pub fn events_refreshed(&self, refreshed: &[(&str, &str, Option<f64>)]) {
        let _guard = self.updating.lock().unwrap_or_else(|e| e.into_inner());
        for (source, event_name, seconds) in refreshed {
            self.events_received
                .with_label_values(&[source, event_name, "rescanned"])
                .inc();
            if let Some(seconds) = seconds {
                self.event_to_findings.observe(seconds.max(0.0));
            }
        }
        self.render();
    }

    /// Records a call to the events queue: `error` names the failed SQS operation; a good
    /// read of `queue` sets it up.
    pub fn event_queue(&self, queue: &str, failed: Option<&str>) {
        let _guard = self.updating.lock().unwrap_or_else(|e| e.into_inner());
        match failed {
            Some(operation) => {
                self.event_queue_errors
                    .with_label_values(&[operation])
                    .inc();
                if operation == "ReceiveMessage" {
                    self.event_queue_up.with_label_values(&[queue]).set(0);
                }
            }
            None => self.event_queue_up.with_label_values(&[queue]).set(1),
        }
        self.render();
    }

    /// Sets the shard this replica audits (at start and when a reload changes it).
    pub fn set_shard(&self, shard: Shard) {
        let _guard = self.updating.lock().unwrap_or_else(|e| e.into_inner());
        self.shard_info.reset();
        self.shard_info
            .with_label_values(&[&shard.index.to_string(), &shard.total.to_string()])
            .set(1);
        self.render();
    }

    pub fn record_scan(&self, latest: &Latest, record: &ScanRecord) {
        let _guard = self.updating.lock().unwrap_or_else(|e| e.into_inner());
        self.scans.inc();
        for error in &record.errors {
            self.count_error(error);
        }
        for ((account, key), n) in &record.api_calls {
            let (service, operation) = split_operation(key).unwrap_or(("other", "other"));
            self.aws_api_calls
                .with_label_values(&[service, operation, account.as_str()])
                .inc_by(*n);
        }
        self.set_findings(latest);
        self.set_subnets(latest);
        self.set_scan_status(latest);
        self.render_resources();
        self.render();
    }

    fn count_error(&self, error: &ScanError) {
        let operation = match error.operation() {
            "none" => "none",
            op if split_operation(op).is_some() => op,
            _ => "other",
        };
        self.scan_errors
            .with_label_values(&[error.stage(), operation, error.account_id(), error.region()])
            .inc();
    }

    fn set_findings(&self, latest: &Latest) {
        self.finding.reset();
        self.suppressed_finding.reset();
        self.findings.reset();
        let accounts = latest.accounts();
        self.accounts_audited
            .set(i64::try_from(accounts.len()).unwrap_or(i64::MAX));
        for account in &accounts {
            for rule in CATALOGUE {
                for severity in Severity::ALL {
                    self.findings
                        .with_label_values(&[rule.id, severity.as_str(), account])
                        .set(0);
                }
            }
        }
        for finding in latest.findings() {
            // A suppressed finding leaves the counts and the open-finding series.
            let series = if finding.suppressed.is_some() {
                &self.suppressed_finding
            } else {
                self.findings
                    .with_label_values(&[
                        finding.rule_id.as_str(),
                        finding.severity.as_str(),
                        finding.account_id.as_str(),
                    ])
                    .inc();
                &self.finding
            };
            if self.per_resource_series {
                series
                    .with_label_values(&[
                        finding.rule_id.as_str(),
                        finding.severity.as_str(),
                        finding.account_id.as_str(),
                        finding.region.as_str(),
                        finding.vpc_id.as_deref().unwrap_or(""),
                        finding.resource_type.as_str(),
                        finding.resource_id.as_str(),
                    ])
                    .set(1);
            }
        }
        self.resources_evaluated.reset();
        for account in &accounts {
            for rule in CATALOGUE {
                self.resources_evaluated
                    .with_label_values(&[rule.id, account])
                    .set(0);
            }
        }
        if let Some(last) = latest.last_scan() {
            for (account, rules) in &last.evaluated_by_account {
                for (rule, n) in rules {
                    self.resources_evaluated
                        .with_label_values(&[rule.as_str(), account.as_str()])
                        .set(clamp(*n));
                }
            }
        }
    }

    fn set_subnets(&self, latest: &Latest) {
        self.subnet_available_ips.reset();
        self.subnet_pod_capacity.reset();
        if !self.per_resource_series {
            return;
        }
        for region in latest.regions() {
            for subnet in &region.subnets {
                let labels = [
                    region.account_id.as_str(),
                    region.region.as_str(),
                    subnet.vpc_id.as_str(),
                    subnet.subnet_id.as_str(),
                    subnet.availability_zone.as_str(),
                ];
                if let Some(free) = subnet.available_ips {
                    self.subnet_available_ips
                        .with_label_values(&labels)
                        .set(clamp(free));
                }
                if let Some(capacity) = subnet.pod_capacity {
                    self.subnet_pod_capacity
                        .with_label_values(&labels)
                        .set(clamp(capacity));
                }
            }
        }
    }

    fn set_scan_status(&self, latest: &Latest) {
        if let Some(last) = latest.last_scan() {
            self.last_scan_duration.set(last.duration.as_secs_f64());
            self.last_scan_success.set(i64::from(last.complete));
            self.last_scan_timestamp.set(unix_seconds(last.at));
        }
        self.last_success_timestamp
            .set(latest.last_success_at().map(unix_seconds).unwrap_or(0.0));
        self.region_scan_success.reset();
        self.region_last_success_timestamp.reset();
        for region in latest.regions() {
            let labels = [region.account_id.as_str(), region.region.as_str()];
            self.region_scan_success
                .with_label_values(&labels)
                .set(i64::from(!region.is_stale()));
            self.region_last_success_timestamp
                .with_label_values(&labels)
                .set(region.last_success_at.map(unix_seconds).unwrap_or(0.0));
        }
    }

    /// Renders the per-resource families, then empties their gauges: until the next scan
    /// they live only as text, one copy instead of a gauge per series plus its text.
    fn render_resources(&self) {
        let families: Vec<_> = self
            .registry
            .gather()
            .into_iter()
            .filter(|f| RESOURCE_FAMILIES.contains(&f.name()))
            .collect();
        let mut buf = Vec::new();
        match TextEncoder::new().encode(&families, &mut buf) {
            Ok(()) => {
                let text: Arc<str> = Arc::from(String::from_utf8_lossy(&buf).as_ref());
                match self.rendered.write() {
                    Ok(mut slot) => slot.resources = text,
                    Err(poisoned) => poisoned.into_inner().resources = text,
                }
            }
            Err(err) => tracing::error!(error = %err, "cannot render metrics"),
        }
        self.finding.reset();
        self.suppressed_finding.reset();
        self.subnet_available_ips.reset();
        self.subnet_pod_capacity.reset();
    }

    fn render(&self) {
        let families: Vec<_> = self
            .registry
            .gather()
            .into_iter()
            .filter(|f| !RESOURCE_FAMILIES.contains(&f.name()))
            .collect();
        let mut buf = Vec::new();
        match TextEncoder::new().encode(&families, &mut buf) {
            Ok(()) => {
                let text: Arc<str> = Arc::from(String::from_utf8_lossy(&buf).as_ref());
                match self.rendered.write() {
                    Ok(mut slot) => slot.rest = text,
                    Err(poisoned) => poisoned.into_inner().rest = text,
                }
            }
            // The previous text stays served; better old numbers than none.
            Err(err) => tracing::error!(error = %err, "cannot render metrics"),
        }
    }
}

fn unix_seconds(at: chrono::DateTime<chrono::Utc>) -> f64 {
    at.timestamp_millis() as f64 / 1000.0
}

fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Splits `ec2:DescribeSubnets` into service and operation, when it has that shape. Keys
/// come from snapshot files too, so anything else is not trusted as a label value.
fn split_operation(key: &str) -> Option<(&str, &str)> {
    let (service, operation) = key.split_once(':')?;
    let service_ok = !service.is_empty()
        && service.len() <= 32
        && service
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    let operation_ok = !operation.is_empty()
        && operation.len() <= 64
        && operation.chars().all(|c| c.is_ascii_alphanumeric());
    (service_ok && operation_ok).then_some((service, operation))
}

/// The value of the series `name{labels}` (labels in sorted order, as rendered) in the
/// exposition text: a test helper that reads the format without a parser.
#[cfg(test)]
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::latest::tests::{failed, output_of, region, snapshot};
    use std::collections::BTreeMap;
    use std::time::Duration;

    fn t(minute: u32) -> chrono::DateTime<chrono::Utc> {
        format!("2026-01-01T00:{minute:02}:00Z").parse().unwrap()
    }

    fn scrape_after(scans: &[crate::scan::ScanOutput], per_resource: bool) -> String {
        let metrics = Metrics::new(per_resource).unwrap();
        let mut latest = Latest::default();
        for (i, out) in scans.iter().enumerate() {
            let record = latest.record(Ok(out), t(i as u32 * 5), Duration::from_millis(1500));
            metrics.record_scan(&latest, &record);
        }
        metrics.text().to_string()
    }

    fn finding_series(account: &str, region: &str) -> String {
        format!(
            "vpc_auditor_finding{{aws_account_id=\"{account}\",aws_region=\"{region}\",resource_id=\"vpc-good\",resource_type=\"vpc\",rule_id=\"vpc.cidr_size\",severity=\"medium\",vpc_id=\"vpc-good\"}}"
        )
    }

    const ACCOUNT: &str = crate::snapshot::builder::ACCOUNT;

    /// The per-account summary series of `rule` at `severity` in the test account.
    fn findings_series(rule: &str, severity: &str) -> String {
        format!("vpc_auditor_findings{{aws_account_id=\"{ACCOUNT}\",rule_id=\"{rule}\",severity=\"{severity}\"}}")
    }

    #[test]
    fn a_finding_is_a_series_with_its_identifying_labels_and_summaries_count_it() {
        let text = scrape_after(
            &[output_of(snapshot(vec![region("us-east-1", true)]))],
            true,
        );
        assert_eq!(
            sample(&text, &finding_series(ACCOUNT, "us-east-1")),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, &findings_series("vpc.cidr_size", "medium")),
            Some(1.0)
        );
        // Every catalogued rule at every severity is there, 0 when it has no finding, so
        // `vpc_auditor_findings{severity="critical"} > 0` is a plain comparison.
        let summaries = text
            .lines()
            .filter(|l| l.starts_with("vpc_auditor_findings{"))
            .count();
        assert_eq!(summaries, CATALOGUE.len() * 5);
        assert_eq!(
            sample(
                &text,
                &findings_series("iam.trust_policy_drift", "critical")
            ),
            Some(0.0)
        );
        assert!(text.contains("# TYPE vpc_auditor_finding gauge"));
        assert_eq!(sample(&text, "vpc_auditor_last_scan_success"), Some(1.0));
        assert_eq!(
            sample(&text, "vpc_auditor_last_scan_duration_seconds"),
            Some(1.5)
        );
        assert_eq!(
            sample(&text, "vpc_auditor_last_successful_scan_timestamp_seconds"),
            Some(t(0).timestamp() as f64)
        );
        assert_eq!(
            sample(
                &text,
                &format!("vpc_auditor_aws_api_calls_total{{aws_account_id=\"{ACCOUNT}\",operation=\"DescribeSubnets\",service=\"ec2\"}}")
            ),
            Some(1.0)
        );
        assert_eq!(sample(&text, "vpc_auditor_scans_total"), Some(1.0));
        assert_eq!(sample(&text, "vpc_auditor_scans_skipped_total"), Some(0.0));
        let build = format!(
            "vpc_auditor_build_info{{report_schema_version=\"1\",version=\"{}\"}}",
            env!("CARGO_PKG_VERSION")
        );
        assert_eq!(sample(&text, &build), Some(1.0));
    }

    #[test]
    fn evaluated_counts_and_subnet_capacity_are_exported() {
        let out = output_of(snapshot(vec![region("us-east-1", false)]));
        let text = scrape_after(std::slice::from_ref(&out), true);
        let evaluated = out.report.summary.evaluated["subnet.ip_capacity"];
        assert!(evaluated > 0);
        assert_eq!(
            sample(
                &text,
                &format!("vpc_auditor_resources_evaluated{{aws_account_id=\"{ACCOUNT}\",rule_id=\"subnet.ip_capacity\"}}")
            ),
            Some(evaluated as f64)
        );
        assert_eq!(
            sample(
                &text,
                &format!("vpc_auditor_resources_evaluated{{aws_account_id=\"{ACCOUNT}\",rule_id=\"iam.role_missing\"}}")
            ),
            Some(0.0)
        );
        let subnet = &out.snapshot.regions[0].subnets[0];
        let labels = format!(
            "{{availability_zone=\"{}\",aws_account_id=\"{ACCOUNT}\",aws_region=\"us-east-1\",subnet_id=\"{}\",vpc_id=\"{}\"}}",
            subnet.availability_zone, subnet.id, subnet.vpc_id
        );
        let net: ipnetwork::Ipv4Network = subnet.cidr_block.as_deref().unwrap().parse().unwrap();
        assert_eq!(
            sample(&text, &format!("vpc_auditor_subnet_pod_capacity{labels}")),
            Some(f64::from(net.size()) - 5.0)
        );
        assert_eq!(
            sample(&text, &format!("vpc_auditor_subnet_available_ips{labels}")),
            subnet.available_ip_address_count.map(|n| n as f64)
        );
    }

    #[test]
    fn a_fixed_finding_disappears_from_the_next_scrape() {
        let text = scrape_after(
            &[
                output_of(snapshot(vec![region("us-east-1", true)])),
                output_of(snapshot(vec![region("us-east-1", false)])),
            ],
            true,
        );
        assert!(!text.contains("vpc_auditor_finding{"), "{text}");
        assert_eq!(
            sample(&text, &findings_series("vpc.cidr_size", "medium")),
            Some(0.0)
        );
        assert_eq!(sample(&text, "vpc_auditor_scans_total"), Some(2.0));
    }

    #[test]
    fn a_failed_region_keeps_its_findings_and_reports_zero_success_and_an_error() {
        let text = scrape_after(
            &[
                output_of(snapshot(vec![
                    region("us-east-1", true),
                    region("eu-west-1", true),
                ])),
                output_of(snapshot(vec![
                    region("us-east-1", true),
                    failed(ACCOUNT, "eu-west-1", "ec2:DescribeSubnets"),
                ])),
            ],
            true,
        );
        assert_eq!(
            sample(&text, &finding_series(ACCOUNT, "eu-west-1")),
            Some(1.0)
        );
        assert_eq!(sample(&text, "vpc_auditor_last_scan_success"), Some(0.0));
        assert_eq!(
            sample(
                &text,
                &format!("vpc_auditor_region_scan_success{{aws_account_id=\"{ACCOUNT}\",aws_region=\"eu-west-1\"}}")
            ),
            Some(0.0)
        );
        assert_eq!(
            sample(
                &text,
                &format!("vpc_auditor_region_scan_success{{aws_account_id=\"{ACCOUNT}\",aws_region=\"us-east-1\"}}")
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                &format!("vpc_auditor_region_last_successful_scan_timestamp_seconds{{aws_account_id=\"{ACCOUNT}\",aws_region=\"eu-west-1\"}}")
            ),
            Some(t(0).timestamp() as f64)
        );
        assert_eq!(
            sample(
                &text,
                &format!("vpc_auditor_scan_errors_total{{aws_account_id=\"{ACCOUNT}\",aws_region=\"eu-west-1\",operation=\"ec2:DescribeSubnets\",stage=\"collect\"}}")
            ),
            Some(1.0)
        );
        // The whole scan last succeeded at the first scan.
        assert_eq!(
            sample(&text, "vpc_auditor_last_successful_scan_timestamp_seconds"),
            Some(t(0).timestamp() as f64)
        );
        assert!(
            !text.contains("AccessDenied"),
            "messages never become labels"
        );
    }

    #[test]
    fn per_resource_series_can_be_switched_off() {
        let text = scrape_after(
            &[output_of(snapshot(vec![region("us-east-1", true)]))],
            false,
        );
        assert!(!text.contains("vpc_auditor_finding{"));
        assert!(!text.contains("vpc_auditor_subnet_"));
        assert_eq!(
            sample(&text, &findings_series("vpc.cidr_size", "medium")),
            Some(1.0)
        );
    }

    #[test]
    fn untrusted_operation_names_do_not_become_labels() {
        assert_eq!(
            split_operation("ec2:DescribeSubnets"),
            Some(("ec2", "DescribeSubnets"))
        );
        assert_eq!(split_operation("ec2:Describe Subnets; rm"), None);
        assert_eq!(split_operation("no-colon"), None);
        let metrics = Metrics::new(true).unwrap();
        let record = ScanRecord {
            errors: vec![ScanError::Region {
                account_id: ACCOUNT.into(),
                region: "us-east-1".into(),
                operation: Some("free text\nwith a newline".into()),
                message: "boom".into(),
            }],
            api_calls: BTreeMap::from([((ACCOUNT.to_string(), "weird key".to_string()), 2)]),
        };
        metrics.record_scan(&Latest::default(), &record);
        let text = metrics.text();
        assert!(text.contains("operation=\"other\""), "{text}");
        assert!(!text.contains("free text"));
        assert_eq!(
            sample(
                &text,
                &format!("vpc_auditor_aws_api_calls_total{{aws_account_id=\"{ACCOUNT}\",operation=\"other\",service=\"other\"}}")
            ),
            Some(2.0)
        );
    }

    #[test]
    fn skipped_scans_show_up_without_waiting_for_the_next_scan() {
        let metrics = Metrics::new(true).unwrap();
        assert_eq!(
            sample(&metrics.text(), "vpc_auditor_scans_skipped_total"),
            Some(0.0)
        );
        metrics.scan_skipped();
        metrics.scan_skipped();
        assert_eq!(
            sample(&metrics.text(), "vpc_auditor_scans_skipped_total"),
            Some(2.0)
        );
    }

    #[test]
    fn before_the_first_scan_nothing_reads_as_compliant() {
        let text = Metrics::new(true).unwrap().text();
        assert!(text.contains("vpc_auditor_build_info{"));
        assert_eq!(sample(&text, "vpc_auditor_last_scan_success"), Some(0.0));
        assert_eq!(
            sample(&text, "vpc_auditor_last_successful_scan_timestamp_seconds"),
            Some(0.0)
        );
        // No zero summaries yet: "0 findings" would claim a scan that has not happened.
        assert!(!text.contains("vpc_auditor_findings{"));
    }

    fn suppressed_by() -> crate::suppress::SuppressedBy {
        crate::suppress::SuppressedBy {
            reason: "accepted".into(),
            expires: chrono::NaiveDate::from_ymd_opt(2026, 6, 30).unwrap(),
        }
    }

    #[test]
    fn a_suppressed_finding_leaves_the_open_series_and_counts_for_its_own_series() {
        let metrics = Metrics::new(true).unwrap();
        let mut latest = Latest::default();
        let mut out = output_of(snapshot(vec![region("us-east-1", true)]));
        for f in &mut out.report.findings {
            f.suppressed = Some(suppressed_by());
        }
        let record = latest.record(Ok(&out), t(0), Duration::from_secs(1));
        metrics.record_scan(&latest, &record);
        let text = metrics.text();
        let open = finding_series(ACCOUNT, "us-east-1");
        assert_eq!(sample(&text, &open), None, "{text}");
        let suppressed = open.replace("vpc_auditor_finding{", "vpc_auditor_suppressed_finding{");
        assert_eq!(sample(&text, &suppressed), Some(1.0), "{text}");
        assert_eq!(
            sample(&text, &findings_series("vpc.cidr_size", "medium")),
            Some(0.0)
        );
    }

    #[test]
    fn config_loads_set_the_reload_metrics() {
        let metrics = Metrics::new(true).unwrap();
        let successes = "vpc_auditor_config_reloads_total{result=\"success\"}";
        let failures = "vpc_auditor_config_reloads_total{result=\"failure\"}";
        let ok = "vpc_auditor_config_last_reload_successful";
        let at = "vpc_auditor_config_last_reload_success_timestamp_seconds";
        metrics.config_loaded(ConfigLoad::AtStart);
        let text = metrics.text();
        assert_eq!(sample(&text, successes), Some(0.0), "{text}");
        assert_eq!(sample(&text, failures), Some(0.0));
        assert_eq!(sample(&text, ok), Some(1.0));
        let started = sample(&text, at).unwrap();
        assert!(started > 1.7e9, "{started}");
        metrics.config_loaded(ConfigLoad::Rejected);
        let text = metrics.text();
        assert_eq!(sample(&text, failures), Some(1.0));
        assert_eq!(sample(&text, ok), Some(0.0));
        assert_eq!(sample(&text, at), Some(started), "a failure keeps the time");
        metrics.config_loaded(ConfigLoad::Reloaded);
        let text = metrics.text();
        assert_eq!(sample(&text, successes), Some(1.0));
        assert_eq!(sample(&text, failures), Some(1.0));
        assert_eq!(sample(&text, ok), Some(1.0));
    }

    #[test]
    fn docs_document_every_metric_with_its_type_and_labels() {
        // A scrape with every kind of series: findings, subnets, errors and API calls.
        let metrics = Metrics::new(true).unwrap();
        let mut latest = Latest::default();
        let mut out = output_of(snapshot(vec![
            region("us-east-1", true),
            failed(ACCOUNT, "eu-west-1", "ec2:DescribeVpcs"),
        ]));
        // A suppressed copy of a finding, so its series shows up too.
        let mut copy = out.report.findings[0].clone();
        copy.resource_id = "vpc-suppressed".into();
        copy.suppressed = Some(suppressed_by());
        out.report.findings.push(copy);
        let record = latest.record(Ok(&out), t(0), Duration::from_secs(1));
        metrics.record_scan(&latest, &record);
        metrics.scan_skipped();
        metrics.config_loaded(ConfigLoad::AtStart);
        metrics.event_received("aws.ec2", "other", "unknown_event");
        metrics.event_rescan();
        metrics.events_refreshed(&[("aws.ec2", "CreateRoute", Some(3.0))]);
        metrics.event_queue("vpc-auditor-events", Some("ReceiveMessage"));
        let text = metrics.text();

        let mut exported: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                exported.insert(name.to_string(), (kind.to_string(), Vec::new()));
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                // A histogram's series are its name plus _bucket, _sum and _count.
                let name = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|suffix| {
                        name.strip_suffix(suffix)
                            .filter(|base| exported.get(*base).is_some_and(|e| e.0 == "histogram"))
                    })
                    .unwrap_or(name);
                let labels: Vec<String> = line
                    .split_once('{')
                    .map(|(_, rest)| {
                        rest.split("\",")
                            .filter_map(|kv| kv.split_once('=').map(|(k, _)| k.to_string()))
                            .filter(|k| k != "le")
                            .collect()
                    })
                    .unwrap_or_default();
                let entry = exported.get_mut(name).unwrap();
                if entry.1.is_empty() {
                    entry.1 = labels;
                }
            }
        }

        // The metric table of docs/daemon.md, "Metrics".
        let page = include_str!("../../docs/daemon.md");
        let mut documented: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
        for row in page.lines().filter(|l| l.starts_with("| `vpc_auditor_")) {
            let cells: Vec<&str> = row.split('|').skip(1).map(str::trim).collect();
            let name = cells[0].trim_matches('`');
            let labels = if cells[2] == "as above" {
                documented
                    .values()
                    .last()
                    .map(|(_, l)| l.clone())
                    .unwrap_or_default()
            } else {
                cells[2]
                    .split(", ")
                    .map(|l| l.trim().trim_matches('`').to_string())
                    .filter(|l| !l.is_empty())
                    .collect()
            };
            documented.insert(name.to_string(), (cells[1].to_string(), labels));
        }
        assert_eq!(
            documented.keys().collect::<Vec<_>>(),
            exported.keys().collect::<Vec<_>>(),
            "docs/daemon.md's metric table and /metrics disagree"
        );
        for (name, (kind, mut labels)) in documented {
            let (exported_kind, mut exported_labels) = exported[&name].clone();
            assert_eq!(kind, exported_kind, "{name}");
            labels.sort();
            exported_labels.sort();
            assert_eq!(labels, exported_labels, "{name}");
        }
    }
}
