//! The last good result: what the daemon serves between scans, kept per (account, region),
//! and the `/findings` document built from it.
//!
//! Each scan merges in. A region collected successfully replaces that region's findings,
//! VPCs, subnet capacity and network (for the status page's VPC pictures). A region whose collection failed keeps the findings of its last
//! good scan and is marked stale, with the time of that scan; a region that never
//! succeeded is stale with no data. A scan that failed as a whole (no snapshot at all)
//! marks every region stale. So a failure can never read as "no findings": it reads as
//! "these findings, as of then". `/metrics`, `/findings` and the status page all read the
//! same [`Latest`].
//!
//! The merge takes the scan's time as an argument and reads no clock, so it is tested on
//! hand-built reports.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::finding::Finding;
use crate::rules::subnet::usable_ips;
use crate::rules::{AuditedVpc, Evaluation, SkippedVpc};
use crate::snapshot::{CollectionError, RegionSnapshot, Snapshot};

use super::report::{Report, ScanOutcome, ScanOutput, ScanStatus};

/// Why a scan, or one region of it, failed. Each variant has a short, stable `stage` and
/// `operation` for `vpc_auditor_scan_errors_total`; the message goes to the logs and to
/// `/findings`, never into a metric label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanError {
    /// Collecting one (account, region) failed, in `operation` when AWS named one.
    Region {
        account_id: String,
        region: String,
        operation: Option<String>,
        message: String,
    },
    /// No snapshot could be had at all: no region configured, an unreadable snapshot file.
    Source { message: String },
    /// The scan task panicked: a bug, reported rather than taking the daemon down.
    Panicked { message: String },
}

impl ScanError {
    /// The stage that failed. Collection (AWS or the snapshot file) is `collect`; a panic
    /// is `internal`, since it cannot be told whether it happened collecting or evaluating.
    /// Evaluation itself is a pure, total function and has no error of its own.
    pub fn stage(&self) -> &'static str {
        match self {
            ScanError::Region { .. } | ScanError::Source { .. } => "collect",
            ScanError::Panicked { .. } => "internal",
        }
    }

    /// The AWS operation that failed, e.g. `ec2:DescribeSubnets`, or `none`.
    pub fn operation(&self) -> &str {
        match self {
            ScanError::Region {
                operation: Some(op),
                ..
            } => op,
            _ => "none",
        }
    }

    pub fn account_id(&self) -> &str {
        match self {
            ScanError::Region { account_id, .. } => account_id,
            _ => "",
        }
    }

    pub fn region(&self) -> &str {
        match self {
            ScanError::Region { region, .. } => region,
            _ => "",
        }
    }

    pub fn message(&self) -> &str {
        match self {
            ScanError::Region { message, .. }
            | ScanError::Source { message }
            | ScanError::Panicked { message } => message,
        }
    }
}

/// What one scan did, beyond the state it left: for the counters and the logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanRecord {
    /// Every failure, one per failed region (or one for a scan that failed as a whole).
    pub errors: Vec<ScanError>,
    /// AWS API calls made, per account and `service:Operation`, over all regions.
    pub api_calls: BTreeMap<(String, String), u64>,
}

/// One subnet's IP capacity, for the per-subnet metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetCapacity {
    pub vpc_id: String,
    pub subnet_id: String,
    pub availability_zone: String,
    /// Free IPs as AWS reports them (`AvailableIpAddressCount`), when it did.
    pub available_ips: Option<u64>,
    /// Usable IPs: the IPv4 CIDR's size less AWS's 5 reserved addresses; one pod per IP.
    pub pod_capacity: Option<u64>,
}

/// What the daemon knows about one (account, region).
#[derive(Debug, Clone, PartialEq)]
pub struct RegionState {
    pub account_id: String,
    pub region: String,
    /// The outcome of the latest scan of this region.
    pub status: ScanOutcome,
    /// Why the latest scan of this region failed.
    pub error: Option<String>,
    pub error_operation: Option<String>,
    /// API calls the latest scan of this region made.
    pub api_calls: BTreeMap<String, u64>,
    pub last_scan_at: DateTime<Utc>,
    /// When this region was last collected successfully: the time its data is from.
    pub last_success_at: Option<DateTime<Utc>>,
    /// From the last successful scan of this region.
    pub findings: Vec<Finding>,
    pub vpcs: Vec<AuditedVpc>,
    /// The VPCs the last successful scan of this region did not audit, and why.
    pub skipped: Vec<SkippedVpc>,
    /// The handover sheets of the region's data planes, from its last successful scan.
    pub handover: Vec<crate::rules::handover::HandoverSheet>,
    pub subnets: Vec<SubnetCapacity>,
    /// The region's network as the last successful scan collected it (security groups
    /// left out), for the status page's VPC pictures; `None` if it never succeeded.
    pub network: Option<RegionSnapshot>,
}

impl RegionState {
    /// True when the data is not from the latest scan (or there is none).
    pub fn is_stale(&self) -> bool {
        self.status == ScanOutcome::Error
    }
}

/// The latest scan attempt, successful or not.
#[derive(Debug, Clone, PartialEq)]
pub struct LastScan {
    pub at: DateTime<Utc>,
    pub duration: Duration,
    /// Every region was collected.
    pub complete: bool,
    /// Why the scan failed as a whole, when it did.
    pub error: Option<String>,
    /// Resources evaluated per rule in this scan (a failed region contributes none).
    pub evaluated: BTreeMap<String, u64>,
    /// The same per account: account id → rule id → resources evaluated.
    pub evaluated_by_account: BTreeMap<String, BTreeMap<String, u64>>,
    /// The report's notes (things that are not findings, e.g. a value not compared).
    pub notes: Vec<String>,
    /// Suppressions that matched no finding in this scan.
    pub suppressions_stale: usize,
    /// The report's `generated_at`, or the scan time for a failed scan.
    pub generated_at: String,
}

/// The merged result of every scan so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Latest {
    regions: BTreeMap<(String, String), RegionState>,
    last_scan: Option<LastScan>,
    last_success_at: Option<DateTime<Utc>>,
}

impl Latest {
    /// Merges one scan's outcome, made at `at` and lasting `duration`, and returns what the
    /// scan did, for the counters and the logs.
    pub fn record(
        &mut self,
        result: Result<&ScanOutput, &ScanError>,
        at: DateTime<Utc>,
        duration: Duration,
    ) -> ScanRecord {
        match result {
            Ok(output) => {
                let mut api_calls: BTreeMap<(String, String), u64> = BTreeMap::new();
                for scan in &output.report.scans {
                    for (operation, n) in &scan.api_calls {
                        *api_calls
                            .entry((scan.account_id.clone(), operation.clone()))
                            .or_default() += n;
                    }
                }
                ScanRecord {
                    errors: self.record_output(output, at, duration),
                    api_calls,
                }
            }
            Err(error) => {
                self.record_failure(error, at, duration);
                ScanRecord {
                    errors: vec![error.clone()],
                    api_calls: BTreeMap::new(),
                }
            }
        }
    }

    fn record_output(
        &mut self,
        output: &ScanOutput,
        at: DateTime<Utc>,
        duration: Duration,
    ) -> Vec<ScanError> {
        let report = &output.report;
        let mut errors = Vec::new();
        let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
        for scan in &report.scans {
            self.merge_scan(scan, output, at, &mut errors, &mut seen);
        }
        // A region no longer in the scan is no longer audited.
        self.regions.retain(|key, _| seen.contains(key));
        let complete = report.is_complete();
        if complete {
            self.last_success_at = Some(at);
        }
        self.last_scan = Some(LastScan {
            at,
            duration,
            complete,
            error: None,
            evaluated: report.summary.evaluated.clone(),
            evaluated_by_account: report.summary.evaluated_by_account.clone(),
            notes: report.notes.clone(),
            suppressions_stale: report.summary.suppressions_stale,
            generated_at: report.generated_at.clone(),
        });
        errors
    }

    /// Merges one (account, region) entry of a scan into the state: its data when it was
    /// collected, its failure otherwise. `seen` gets every key it touched.
    fn merge_scan(
        &mut self,
        scan: &ScanStatus,
        output: &ScanOutput,
        at: DateTime<Utc>,
        errors: &mut Vec<ScanError>,
        seen: &mut BTreeSet<(String, String)>,
    ) {
        let report = &output.report;
        let key = (scan.account_id.clone(), scan.region.clone());
        if scan.status == ScanOutcome::Ok {
            let snapshot = output
                .snapshot
                .regions
                .iter()
                .find(|r| r.account_id == scan.account_id && r.region == scan.region);
            let state = good_region(&key, report, snapshot, scan.api_calls.clone(), at);
            seen.insert(key.clone());
            self.regions.insert(key, state);
            return;
        }
        // A region that failed before the account was known (sts:GetCallerIdentity)
        // has no account id: it stands for every account already known in the region.
        let keys: Vec<(String, String)> = if scan.account_id.is_empty() {
            self.regions
                .keys()
                .filter(|(_, region)| *region == scan.region)
                .cloned()
                .collect()
        } else {
            vec![key.clone()]
        };
        let keys = if keys.is_empty() { vec![key] } else { keys };
        for key in keys {
            let state = self
                .regions
                .entry(key.clone())
                .or_insert_with(|| RegionState {
                    account_id: key.0.clone(),
                    region: key.1.clone(),
                    status: ScanOutcome::Error,
                    error: None,
                    error_operation: None,
                    api_calls: BTreeMap::new(),
                    last_scan_at: at,
                    last_success_at: None,
                    findings: Vec::new(),
                    vpcs: Vec::new(),
                    skipped: Vec::new(),
                    handover: Vec::new(),
                    subnets: Vec::new(),
                    network: None,
                });
            state.status = ScanOutcome::Error;
            state.error = scan.error.clone();
            state.error_operation = scan.error_operation.clone();
            state.api_calls = scan.api_calls.clone();
            state.last_scan_at = at;
            errors.push(ScanError::Region {
                account_id: key.0.clone(),
                region: key.1.clone(),
                operation: scan.error_operation.clone(),
                message: scan.error.clone().unwrap_or_default(),
            });
            seen.insert(key);
        }
    }

    /// Merges a scan that covered only `targets` (account, region or `global`), such as an
    /// event-driven re-scan: each target's entry is replaced, the other regions and the
    /// latest full scan's summary stay. Returns what the scan did and the targets it
    /// refreshed (collected successfully); a target the scan did not report stays as it
    /// was, and is not refreshed.
    pub fn record_targets(
        &mut self,
        output: &ScanOutput,
        targets: &BTreeSet<(String, String)>,
        at: DateTime<Utc>,
    ) -> (ScanRecord, BTreeSet<(String, String)>) {
        let mut errors = Vec::new();
        let mut seen = BTreeSet::new();
        let mut api_calls: BTreeMap<(String, String), u64> = BTreeMap::new();
        let mut refreshed = BTreeSet::new();
        for scan in &output.report.scans {
            let key = (scan.account_id.clone(), scan.region.clone());
            // A region that failed before its account was known stands for every account.
            let unknown_account =
                scan.account_id.is_empty() && targets.iter().any(|(_, r)| *r == scan.region);
            if !targets.contains(&key) && !unknown_account {
                continue;
            }
            for (operation, n) in &scan.api_calls {
                *api_calls
                    .entry((scan.account_id.clone(), operation.clone()))
                    .or_default() += n;
            }
            if scan.status == ScanOutcome::Ok {
                refreshed.insert(key);
            }
            self.merge_scan(scan, output, at, &mut errors, &mut seen);
        }
        (ScanRecord { errors, api_calls }, refreshed)
    }

    /// The (account, region) keys the last scans covered, `global` for IAM: what
    /// an event-driven re-scan may target.
    pub fn audited(&self) -> impl Iterator<Item = &(String, String)> {
        self.regions.keys()
    }

    fn record_failure(&mut self, error: &ScanError, at: DateTime<Utc>, duration: Duration) {
        for state in self.regions.values_mut() {
            state.status = ScanOutcome::Error;
            state.error = Some(error.message().to_string());
            state.error_operation = None;
            state.api_calls.clear();
            state.last_scan_at = at;
        }
        self.last_scan = Some(LastScan {
            at,
            duration,
            complete: false,
            error: Some(error.message().to_string()),
            evaluated: BTreeMap::new(),
            evaluated_by_account: BTreeMap::new(),
            notes: Vec::new(),
            suppressions_stale: 0,
            generated_at: rfc3339(at),
        });
    }

    /// True once a scan has completed, successfully or not.
    pub fn is_ready(&self) -> bool {
        self.last_scan.is_some()
    }

    pub fn last_scan(&self) -> Option<&LastScan> {
        self.last_scan.as_ref()
    }

    /// When every region was last collected in one scan.
    pub fn last_success_at(&self) -> Option<DateTime<Utc>> {
        self.last_success_at
    }

    /// True when some data is not from the latest scan, or there is no data at all.
    pub fn is_stale(&self) -> bool {
        match &self.last_scan {
            None => true,
            Some(last) => {
                !last.complete
                    || self.regions.is_empty()
                    || self.regions.values().any(RegionState::is_stale)
            }
        }
    }

    pub fn regions(&self) -> impl Iterator<Item = &RegionState> {
        self.regions.values()
    }

    /// Every finding served: each region's from its last good scan, in report order.
    /// Every account audited: of a region known, or of a finding (IAM's are global).
    pub fn accounts(&self) -> std::collections::BTreeSet<&str> {
        self.regions
            .values()
            .map(|r| r.account_id.as_str())
            .chain(self.findings().into_iter().map(|f| f.account_id.as_str()))
            .filter(|a| !a.is_empty())
            .collect()
    }

    pub fn findings(&self) -> Vec<&Finding> {
        let mut out: Vec<&Finding> = self.regions.values().flat_map(|r| &r.findings).collect();
        out.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        out
    }

    /// The merged result as a report in the `--once --format json` schema: `scans` holds
    /// the latest status of each region, `findings` and `vpcs` each region's last good data.
    pub fn report(&self) -> Report {
        let snapshot = Snapshot {
            regions: self
                .regions
                .values()
                .map(|r| RegionSnapshot {
                    account_id: r.account_id.clone(),
                    region: r.region.clone(),
                    error: r.is_stale().then(|| CollectionError {
                        operation: r.error_operation.clone(),
                        message: r.error.clone().unwrap_or_default(),
                    }),
                    api_calls: r.api_calls.clone(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let evaluation = Evaluation {
            findings: self.findings().into_iter().cloned().collect(),
            evaluated: self
                .last_scan
                .as_ref()
                .map(|s| s.evaluated.clone())
                .unwrap_or_default(),
            evaluated_by_account: self
                .last_scan
                .as_ref()
                .map(|s| s.evaluated_by_account.clone())
                .unwrap_or_default(),
            vpcs: self.regions.values().flat_map(|r| r.vpcs.clone()).collect(),
            skipped: self
                .regions
                .values()
                .flat_map(|r| r.skipped.clone())
                .collect(),
            notes: self
                .last_scan
                .as_ref()
                .map(|s| s.notes.clone())
                .unwrap_or_default(),
            handover: self
                .regions
                .values()
                .flat_map(|r| r.handover.clone())
                .collect(),
            incomplete: Vec::new(),
            stale_suppressions: self
                .last_scan
                .as_ref()
                .map(|s| s.suppressions_stale)
                .unwrap_or_default(),
            checked: None,
            new_pins: Vec::new(),
        };
        let generated_at = self
            .last_scan
            .as_ref()
            .map(|s| s.generated_at.clone())
            .unwrap_or_default();
        Report::build(&snapshot, evaluation, generated_at)
    }

    /// The `/findings` document, or `None` before the first scan completed.
    pub fn findings_document(&self) -> Option<FindingsDocument> {
        let last = self.last_scan.as_ref()?;
        Some(FindingsDocument {
            report: self.report(),
            stale: self.is_stale(),
            last_scan_at: rfc3339(last.at),
            last_success_at: self.last_success_at.map(rfc3339),
            last_scan_error: last.error.clone(),
            freshness: self
                .regions
                .values()
                .map(|r| RegionFreshness {
                    account_id: r.account_id.clone(),
                    region: r.region.clone(),
                    status: r.status,
                    stale: r.is_stale(),
                    last_scan_at: rfc3339(r.last_scan_at),
                    last_success_at: r.last_success_at.map(rfc3339),
                    error: r.error.clone(),
                    error_operation: r.error_operation.clone(),
                    findings: r.findings.len(),
                })
                .collect(),
        })
    }
}

/// The state of a region collected successfully in the scan of `report`.
fn good_region(
    (account_id, region): &(String, String),
    report: &Report,
    snapshot: Option<&RegionSnapshot>,
    api_calls: BTreeMap<String, u64>,
    at: DateTime<Utc>,
) -> RegionState {
    let here = |a: &str, r: &str| a == account_id && r == region;
    let vpcs: Vec<AuditedVpc> = report
        .vpcs
        .iter()
        .filter(|v| here(&v.account_id, &v.region))
        .cloned()
        .collect();
    let audited: BTreeSet<&str> = vpcs.iter().map(|v| v.vpc_id.as_str()).collect();
    let subnets = snapshot
        .map(|s| {
            s.subnets
                .iter()
                .filter(|sub| audited.contains(sub.vpc_id.as_str()))
                .map(|sub| SubnetCapacity {
                    vpc_id: sub.vpc_id.clone(),
                    subnet_id: sub.id.clone(),
                    availability_zone: sub.availability_zone.clone(),
                    available_ips: sub.available_ip_address_count,
                    pod_capacity: sub
                        .cidr_block
                        .as_deref()
                        .and_then(|c| c.parse::<ipnetwork::Ipv4Network>().ok())
                        .map(|net| usable_ips(&net)),
                })
                .collect()
        })
        .unwrap_or_default();
    // Only what the status page can draw: one copy of the VPCs it draws, not the region.
    let network = snapshot.map(|s| drawable_network(s, &audited, MAX_PICTURES));
    RegionState {
        network,
        findings: report
            .findings
            .iter()
            .filter(|f| here(&f.account_id, &f.region))
            .cloned()
            .collect(),
        vpcs,
        skipped: report
            .skipped
            .iter()
            .filter(|v| here(&v.account_id, &v.region))
            .cloned()
            .collect(),
        handover: report
            .handover
            .iter()
            .filter(|s| here(&s.account_id, &s.region))
            .cloned()
            .collect(),
        subnets,
        account_id: account_id.clone(),
        region: region.clone(),
        status: ScanOutcome::Ok,
        error: None,
        error_operation: None,
        api_calls,
        last_scan_at: at,
        last_success_at: Some(at),
    }
}

/// The status page draws at most this many VPC pictures.
pub const MAX_PICTURES: usize = 20;

/// The part of a region's network the status page can draw: its first `limit` audited VPCs
/// in the region's order (the page draws at most that many per region, in that order) and
/// their resources, without security groups (the pictures do not draw them). At 100k subnets
/// this keeps a few hundred resources instead of a second copy of the region.
pub fn drawable_network(
    region: &RegionSnapshot,
    audited: &BTreeSet<&str>,
    limit: usize,
) -> RegionSnapshot {
    let kept: BTreeSet<&str> = region
        .vpcs
        .iter()
        .map(|v| v.id.as_str())
        .filter(|id| audited.contains(id))
        .take(limit)
        .collect();
    let has = |vpc: &str| kept.contains(vpc);
    fn keep<T: Clone>(items: &[T], f: impl Fn(&T) -> bool) -> Vec<T> {
        items.iter().filter(|i| f(i)).cloned().collect()
    }
    RegionSnapshot {
        account_id: region.account_id.clone(),
        region: region.region.clone(),
        error: region.error.clone(),
        api_calls: BTreeMap::new(),
        availability_zones: region.availability_zones.clone(),
        vpcs: keep(&region.vpcs, |v| has(&v.id)),
        skipped_vpcs: Vec::new(),
        subnets: keep(&region.subnets, |s| has(&s.vpc_id)),
        route_tables: keep(&region.route_tables, |t| has(&t.vpc_id)),
        internet_gateways: keep(&region.internet_gateways, |g| {
            g.attachments.iter().any(|a| has(&a.vpc_id))
        }),
        nat_gateways: keep(&region.nat_gateways, |n| {
            n.vpc_id.as_deref().is_some_and(has)
        }),
        vpc_endpoints: keep(&region.vpc_endpoints, |e| has(&e.vpc_id)),
        security_groups: Vec::new(),
        prefix_lists: region.prefix_lists.clone(),
        transit_gateway_attachments: keep(&region.transit_gateway_attachments, |a| has(&a.vpc_id)),
        gwlb_endpoint_interfaces: keep(&region.gwlb_endpoint_interfaces, |n| {
            n.vpc_id.as_deref().is_some_and(has)
        }),
    }
}

/// The RFC 3339 form the reports use, to the second.
pub fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `/findings`: the merged report, in the schema of `--once --format json` (the same keys
/// at the top level, so a client of one reads the other), plus how fresh it is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FindingsDocument {
    #[serde(flatten)]
    pub report: Report,
    /// True when some findings are not from the latest scan: a region (or the whole scan)
    /// failed, and what is shown is its last good data, as of its `last_success_at`.
    pub stale: bool,
    /// When the latest scan finished, successful or not.
    pub last_scan_at: String,
    /// When every region was last collected in one scan; `null` if never.
    pub last_success_at: Option<String>,
    /// Why the latest scan failed as a whole, when it did.
    pub last_scan_error: Option<String>,
    /// Per (account, region): whether its data is stale and since when.
    pub freshness: Vec<RegionFreshness>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegionFreshness {
    pub account_id: String,
    pub region: String,
    /// The latest scan's outcome for this region.
    pub status: ScanOutcome,
    pub stale: bool,
    pub last_scan_at: String,
    /// When the data shown for this region was collected; `null` if never.
    pub last_success_at: Option<String>,
    pub error: Option<String>,
    pub error_operation: Option<String>,
    /// How many findings are served for this region.
    pub findings: usize,
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::config::Scope;
    use crate::rules::evaluate;
    use crate::snapshot::builder::compliant_vpc;

    #[test]
    fn the_drawable_network_draws_what_the_whole_region_draws_and_no_more() {
        let demo = Snapshot::from_json(crate::scan::DEMO_SNAPSHOT).unwrap();
        let region = &demo.regions[0];
        let ids: BTreeSet<&str> = region.vpcs.iter().map(|v| v.id.as_str()).collect();
        assert!(ids.len() >= 2, "the demo has VPCs to leave out");
        let whole = RegionSnapshot {
            security_groups: Vec::new(),
            ..region.clone()
        };
        for limit in [1, MAX_PICTURES] {
            let kept = drawable_network(region, &ids, limit);
            assert_eq!(kept.vpcs.len(), limit.min(ids.len()));
            assert!(kept.security_groups.is_empty());
            assert!(kept
                .subnets
                .iter()
                .all(|s| kept.vpcs.iter().any(|v| v.id == s.vpc_id)));
            let render = |network: &RegionSnapshot| {
                crate::export::vpc_picture::render_region(network, &ids, &[], limit)
            };
            assert_eq!(render(&kept), render(&whole), "limit {limit}");
        }
    }

    /// A scan output as `scan::scan` makes it, from a hand-built snapshot.
    pub fn output_of(snapshot: Snapshot) -> ScanOutput {
        let eval = evaluate(
            &snapshot,
            &[crate::rules::test_support::vpc_pack()],
            &Scope::default(),
        );
        let report = Report::build(&snapshot, eval, "2026-01-01T00:00:00Z".into());
        ScanOutput {
            snapshot,
            report,
            duration: Duration::from_millis(5),
        }
    }

    /// A region of the compliant VPC in `region`, with `/20` as the VPC CIDR when `broken`
    /// (one `vpc.cidr_size` finding).
    pub fn region(region: &str, broken: bool) -> RegionSnapshot {
        let mut snap = compliant_vpc()
            .with(|r| {
                if broken {
                    r.vpcs[0].cidr_block = Some("10.0.0.0/20".into());
                    r.vpcs[0].cidr_blocks = vec!["10.0.0.0/20".into()];
                }
            })
            .build();
        let mut r = snap.regions.remove(0);
        r.region = region.to_string();
        r.api_calls.insert("ec2:DescribeSubnets".into(), 1);
        r
    }

    pub fn failed(account: &str, region: &str, operation: &str) -> RegionSnapshot {
        RegionSnapshot {
            account_id: account.to_string(),
            region: region.to_string(),
            error: Some(CollectionError {
                operation: Some(operation.to_string()),
                message: format!("{operation}: AccessDenied"),
            }),
            ..Default::default()
        }
    }

    pub fn snapshot(regions: Vec<RegionSnapshot>) -> Snapshot {
        Snapshot {
            schema_version: 1,
            collected_at: None,
            regions,
            ..Default::default()
        }
    }

    fn t(minute: u32) -> DateTime<Utc> {
        format!("2026-01-01T00:{minute:02}:00Z").parse().unwrap()
    }

    const D: Duration = Duration::from_secs(2);

    #[test]
    fn not_ready_and_stale_before_the_first_scan() {
        let latest = Latest::default();
        assert!(!latest.is_ready());
        assert!(latest.is_stale());
        assert!(latest.findings_document().is_none());
    }

    #[test]
    fn a_good_scan_serves_its_findings_fresh() {
        let mut latest = Latest::default();
        let out = output_of(snapshot(vec![region("us-east-1", true)]));
        let record = latest.record(Ok(&out), t(0), D);
        assert!(record.errors.is_empty());
        let key = (
            crate::snapshot::builder::ACCOUNT.to_string(),
            "ec2:DescribeSubnets".to_string(),
        );
        assert_eq!(record.api_calls[&key], 1);
        assert!(latest.is_ready() && !latest.is_stale());
        let doc = latest.findings_document().unwrap();
        assert!(!doc.stale);
        assert_eq!(doc.last_success_at.as_deref(), Some("2026-01-01T00:00:00Z"));
        assert_eq!(doc.report.findings, out.report.findings);
        assert_eq!(doc.report.summary, out.report.summary);
        assert_eq!(doc.report.scans, out.report.scans);
        assert!(doc.freshness[0].findings > 0);
        assert_eq!(doc.freshness[0].findings, out.report.findings.len());
    }

    #[test]
    fn a_failed_region_keeps_its_last_good_findings_and_is_stale_since_then() {
        let mut latest = Latest::default();
        let good = output_of(snapshot(vec![
            region("us-east-1", true),
            region("eu-west-1", true),
        ]));
        latest.record(Ok(&good), t(0), D);
        let account = good.report.scans[0].account_id.clone();
        let eu_findings = good
            .report
            .findings
            .iter()
            .filter(|f| f.region == "eu-west-1")
            .count();
        assert!(eu_findings > 0);
        let partial = output_of(snapshot(vec![
            region("us-east-1", false),
            failed(&account, "eu-west-1", "ec2:DescribeSubnets"),
        ]));
        let errors = latest.record(Ok(&partial), t(5), D).errors;
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].stage(), "collect");
        assert_eq!(errors[0].operation(), "ec2:DescribeSubnets");
        assert_eq!(errors[0].region(), "eu-west-1");

        let doc = latest.findings_document().unwrap();
        assert!(doc.stale);
        assert_eq!(doc.last_scan_at, "2026-01-01T00:05:00Z");
        assert_eq!(doc.last_success_at.as_deref(), Some("2026-01-01T00:00:00Z"));
        // us-east-1 was fixed: its finding is gone; eu-west-1 failed: its finding stays.
        assert_eq!(doc.report.findings.len(), eu_findings);
        assert!(doc.report.findings.iter().all(|f| f.region == "eu-west-1"));
        let eu = doc
            .freshness
            .iter()
            .find(|r| r.region == "eu-west-1")
            .unwrap();
        assert!(eu.stale);
        assert_eq!(eu.last_success_at.as_deref(), Some("2026-01-01T00:00:00Z"));
        assert_eq!(eu.error_operation.as_deref(), Some("ec2:DescribeSubnets"));
        let us = doc
            .freshness
            .iter()
            .find(|r| r.region == "us-east-1")
            .unwrap();
        assert!(!us.stale);
        assert_eq!(us.last_success_at.as_deref(), Some("2026-01-01T00:05:00Z"));
        // The report says which region failed, and is incomplete.
        assert_eq!(doc.report.summary.scans_failed, 1);
        assert!(!doc.report.is_complete());
        assert_eq!(doc.report.summary.total, eu_findings);
        assert_eq!(eu.findings, eu_findings);
    }

    #[test]
    fn a_region_that_never_succeeded_is_stale_with_no_success_time() {
        let mut latest = Latest::default();
        let out = output_of(snapshot(vec![failed(
            "",
            "us-east-1",
            "sts:GetCallerIdentity",
        )]));
        latest.record(Ok(&out), t(0), D);
        let doc = latest.findings_document().unwrap();
        assert!(doc.stale);
        assert_eq!(doc.last_success_at, None);
        assert_eq!(doc.freshness[0].last_success_at, None);
        assert_eq!(doc.freshness[0].status, ScanOutcome::Error);
        assert_eq!(doc.report.exit_code(crate::finding::Severity::Info), 2);
    }

    #[test]
    fn a_failure_before_the_account_is_known_marks_that_regions_accounts_stale() {
        let mut latest = Latest::default();
        let good = output_of(snapshot(vec![region("us-east-1", true)]));
        latest.record(Ok(&good), t(0), D);
        let out = output_of(snapshot(vec![failed(
            "",
            "us-east-1",
            "sts:GetCallerIdentity",
        )]));
        latest.record(Ok(&out), t(5), D);
        let states: Vec<&RegionState> = latest.regions().collect();
        assert_eq!(states.len(), 1, "no separate entry for the unknown account");
        assert!(states[0].is_stale());
        assert_eq!(states[0].findings, good.report.findings);
        assert_eq!(states[0].account_id, good.report.scans[0].account_id);
    }

    #[test]
    fn a_scan_that_failed_as_a_whole_keeps_everything_and_marks_it_stale() {
        let mut latest = Latest::default();
        let good = output_of(snapshot(vec![region("us-east-1", true)]));
        latest.record(Ok(&good), t(0), D);
        let err = ScanError::Source {
            message: "snap.json: No such file".into(),
        };
        let record = latest.record(Err(&err), t(5), D);
        assert_eq!(record.errors, vec![err]);
        assert!(record.api_calls.is_empty());
        let doc = latest.findings_document().unwrap();
        assert!(doc.stale);
        assert_eq!(doc.report.findings, good.report.findings);
        assert_eq!(
            doc.last_scan_error.as_deref(),
            Some("snap.json: No such file")
        );
        assert_eq!(doc.last_success_at.as_deref(), Some("2026-01-01T00:00:00Z"));
        assert!(doc.freshness.iter().all(|r| r.stale));

        // The next good scan makes it fresh again.
        latest.record(Ok(&good), t(10), D);
        assert!(!latest.is_stale());
    }

    #[test]
    fn subnet_capacity_comes_from_the_snapshot_of_audited_vpcs() {
        let mut latest = Latest::default();
        let mut r = region("us-east-1", false);
        r.subnets[0].available_ip_address_count = Some(123);
        let out = output_of(snapshot(vec![r]));
        latest.record(Ok(&out), t(0), D);
        let state = latest.regions().next().unwrap();
        assert_eq!(state.subnets.len(), out.snapshot.regions[0].subnets.len());
        let s = &state.subnets[0];
        let source = &out.snapshot.regions[0].subnets[0];
        assert_eq!(s.available_ips, Some(123));
        let net: ipnetwork::Ipv4Network = source.cidr_block.as_deref().unwrap().parse().unwrap();
        assert_eq!(s.pod_capacity, Some(u64::from(net.size()) - 5));
    }
}
