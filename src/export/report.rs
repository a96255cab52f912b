//! The report: one scan's findings with the status of every (account, region), in the JSON
//! schema that `--once --format json` prints and the daemon's `/findings` serves.
//!
//! The report is built from plain data and a timestamp passed in, so it reads no clock.
//!
//! It also owns the data that other steps put in a report: the baseline's resolved findings
//! and counts ([`BaselineFinding`], [`BaselineCounts`], computed by `baseline`) and
//! [`ScanOutput`], a scan's snapshot and report together (made by `scan`). So `baseline`
//! imports `report`, never the reverse.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::finding::{BaselineStatus, Finding, Severity};
use crate::rules::iam::GLOBAL_REGION;
use crate::rules::{AuditedVpc, CheckedResource, Evaluation, SkippedVpc};
use crate::snapshot::{CollectionError, Snapshot};

/// The version of the report's JSON schema; bumped on any incompatible change.
pub const REPORT_SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: u32,
    /// RFC 3339 time the report was made.
    pub generated_at: String,
    pub tool: ToolInfo,
    /// One entry per (account, region) collected.
    pub scans: Vec<ScanStatus>,
    /// Every VPC audited, clean ones included.
    pub vpcs: Vec<AuditedVpc>,
    /// VPCs not audited, each with the reason (each region's default VPC, unless the
    /// config asks for it).
    #[serde(default)]
    pub skipped: Vec<SkippedVpc>,
    pub findings: Vec<Finding>,
    /// Things a person should know that are not findings.
    #[serde(default)]
    pub notes: Vec<String>,
    /// With `--baseline`: the baseline's findings that are gone now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved: Option<Vec<BaselineFinding>>,
    pub summary: Summary,
    /// The guide's handover list per data plane, for packs that have one
    /// (`rules::handover`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub handover: Vec<crate::rules::handover::HandoverSheet>,
    /// With `--once --format json` or `fix-script`: the remediation plan, per VPC and role
    /// (`crate::plan`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<crate::plan::Plan>,
    /// Every (rule, resource) evaluated, pass or fail, when the evaluation recorded them
    /// (for the JUnit report); not part of the JSON schema.
    #[serde(skip)]
    pub checked: Option<Vec<CheckedResource>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolInfo {
    pub name: String,
    pub version: String,
}

/// Whether a scan of one (account, region) completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScanOutcome {
    Ok,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanStatus {
    pub account_id: String,
    pub region: String,
    pub status: ScanOutcome,
    /// Why the scan failed; `None` when it succeeded.
    pub error: Option<String>,
    /// The AWS operation that failed, when one did.
    #[serde(default)]
    pub error_operation: Option<String>,
    /// API calls made, per `service:Operation`.
    pub api_calls: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub total: usize,
    /// Every severity, zeros included.
    pub by_severity: BTreeMap<Severity, usize>,
    pub by_rule: BTreeMap<String, usize>,
    /// Resources evaluated per rule: a rule with findings 0 and evaluated 0 checked nothing.
    pub evaluated: BTreeMap<String, u64>,
    /// The same per account: account id → rule id → resources evaluated.
    #[serde(default)]
    pub evaluated_by_account: BTreeMap<String, BTreeMap<String, u64>>,
    pub vpcs_audited: usize,
    pub scans_failed: usize,
    /// Findings a suppression covers: listed, but not in `by_severity` nor the exit code.
    #[serde(default)]
    pub suppressed: usize,
    /// Suppressions that matched no finding (each also has a note).
    #[serde(default)]
    pub suppressions_stale: usize,
    /// With `--baseline`: how many findings are new, unchanged and resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineCounts>,
}

impl Report {
    pub fn build(snapshot: &Snapshot, evaluation: Evaluation, generated_at: String) -> Report {
        let status = |account: &str,
                      region: &str,
                      error: Option<&CollectionError>,
                      calls: &BTreeMap<String, u64>| ScanStatus {
            account_id: account.to_string(),
            region: region.to_string(),
            status: if error.is_some() {
                ScanOutcome::Error
            } else {
                ScanOutcome::Ok
            },
            error: error.map(|e| e.message.clone()),
            error_operation: error.and_then(|e| e.operation.clone()),
            api_calls: calls.clone(),
        };
        let mut scans: Vec<ScanStatus> = snapshot
            .regions
            .iter()
            .map(|r| status(&r.account_id, &r.region, r.error.as_ref(), &r.api_calls))
            .collect();
        // IAM is global: one scan per account, under the region `global`.
        scans.extend(
            snapshot
                .iam
                .iter()
                .map(|i| status(&i.account_id, GLOBAL_REGION, i.error.as_ref(), &i.api_calls)),
        );
        // ECR and Secrets Manager reads count toward the scan of their (account, region); one
        // in a region not scanned for VPCs is a scan of its own. (Their failures also come
        // back as `incomplete` below, so they show as failed scans.)
        let reads = snapshot
            .ecr
            .iter()
            .map(|e| (&e.account_id, &e.region, e.error.as_ref(), &e.api_calls))
            .chain(
                snapshot
                    .secrets
                    .iter()
                    .map(|s| (&s.account_id, &s.region, s.error.as_ref(), &s.api_calls)),
            );
        for (account, region, error, calls) in reads {
            match scans
                .iter_mut()
                .find(|s| &s.account_id == account && &s.region == region)
            {
                Some(scan) => {
                    for (operation, n) in calls {
                        *scan.api_calls.entry(operation.clone()).or_default() += n;
                    }
                }
                None => scans.push(status(account, region, error, calls)),
            }
        }
        scans.extend(evaluation.incomplete.iter().map(|gap| ScanStatus {
            account_id: gap.account_id.clone(),
            region: gap.region.clone(),
            status: ScanOutcome::Error,
            error: Some(gap.message.clone()),
            error_operation: None,
            api_calls: BTreeMap::new(),
        }));
        scans.sort_by(|a, b| (&a.account_id, &a.region).cmp(&(&b.account_id, &b.region)));
        let mut by_severity: BTreeMap<Severity, usize> =
            Severity::ALL.iter().map(|s| (*s, 0)).collect();
        let mut by_rule: BTreeMap<String, usize> = BTreeMap::new();
        let mut suppressed = 0;
        for finding in &evaluation.findings {
            if finding.suppressed.is_some() {
                suppressed += 1;
                continue;
            }
            *by_severity.entry(finding.severity).or_default() += 1;
            *by_rule.entry(finding.rule_id.clone()).or_default() += 1;
        }
        let summary = Summary {
            total: evaluation.findings.len(),
            by_severity,
            by_rule,
            evaluated: evaluation.evaluated,
            evaluated_by_account: evaluation.evaluated_by_account,
            vpcs_audited: evaluation.vpcs.len(),
            scans_failed: scans
                .iter()
                .filter(|s| s.status == ScanOutcome::Error)
                .count(),
            suppressed,
            suppressions_stale: evaluation.stale_suppressions,
            baseline: None,
        };
        let mut handover = evaluation.handover;
        crate::rules::handover::count_open(&mut handover, &evaluation.findings);
        Report {
            schema_version: REPORT_SCHEMA_VERSION,
            generated_at,
            tool: ToolInfo {
                name: env!("CARGO_PKG_NAME").to_string(),
                version: env!("CARGO_PKG_VERSION").to_string(),
            },
            scans,
            vpcs: evaluation.vpcs,
            skipped: evaluation.skipped,
            findings: evaluation.findings,
            handover,
            notes: evaluation.notes,
            resolved: None,
            summary,
            plan: None,
            checked: evaluation.checked,
        }
    }

    /// True when every (account, region) was collected; an incomplete report never passes.
    pub fn is_complete(&self) -> bool {
        !self.scans.is_empty() && self.scans.iter().all(|s| s.status == ScanOutcome::Ok)
    }

    /// The `--once` exit code: 2 for an incomplete scan, 1 for findings at or above
    /// `fail_on`, 0 otherwise.
    pub fn exit_code(&self, fail_on: Severity) -> i32 {
        if !self.is_complete() {
            2
        } else if self
            .findings
            .iter()
            .any(|f| f.severity >= fail_on && f.suppressed.is_none())
        {
            1
        } else {
            0
        }
    }

    /// The `--once --fail-on-new` exit code: like `exit_code`, but only findings the
    /// baseline did not have can make it 1. An incomplete scan is still 2.
    pub fn exit_code_new(&self, fail_on: Severity) -> i32 {
        if !self.is_complete() {
            2
        } else if self.findings.iter().any(|f| {
            f.severity >= fail_on
                && f.suppressed.is_none()
                && f.baseline == Some(BaselineStatus::New)
        }) {
            1
        } else {
            0
        }
    }

    pub fn to_json(&self) -> String {
        // Plain structs with string keys: serialisation cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// What one scan produced (made by `scan`, read by the daemon's exports).
#[derive(Debug, Clone)]
pub struct ScanOutput {
    pub snapshot: Snapshot,
    pub report: Report,
    /// Wall time of collection plus evaluation.
    pub duration: Duration,
}

// The baseline's data as the report carries it; `baseline.rs` computes it.

/// The identity of a finding across runs.
pub type FindingKey = (String, String, String, String, String);

/// A finding as the baseline file carries it: its identity plus what a person needs to
/// recognise it in the resolved list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaselineFinding {
    pub rule_id: String,
    pub pack: String,
    pub account_id: String,
    pub region: String,
    pub resource_id: String,
    pub severity: Severity,
    #[serde(default)]
    pub message: String,
}

impl BaselineFinding {
    pub(crate) fn key(&self) -> FindingKey {
        (
            self.rule_id.clone(),
            self.pack.clone(),
            self.account_id.clone(),
            self.region.clone(),
            self.resource_id.clone(),
        )
    }
}

/// Counts of the diff, in `summary.baseline`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaselineCounts {
    pub new: usize,
    pub unchanged: usize,
    pub resolved: usize,
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Reports of hand-built snapshots, for the exporters' tests.

    use super::*;
    use crate::config::Scope;
    use crate::rules::{evaluate, evaluate_recording_checks, test_support::vpc_pack};

    /// The report of `snapshot` under the shipped pack's VPC rules, at a fixed time.
    pub fn report_of(snapshot: &Snapshot) -> Report {
        let eval = evaluate(snapshot, &[vpc_pack()], &Scope::default());
        Report::build(snapshot, eval, "2026-01-01T00:00:00Z".into())
    }

    /// The same, listing every (rule, resource) evaluated.
    pub fn report_with_checks_of(snapshot: &Snapshot) -> Report {
        let eval = evaluate_recording_checks(snapshot, &[vpc_pack()], &Scope::default());
        Report::build(snapshot, eval, "2026-01-01T00:00:00Z".into())
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::report_of;
    use super::*;
    use crate::snapshot::builder::compliant_vpc;
    use crate::snapshot::CollectionError;

    #[test]
    fn clean_complete_report_exits_zero_and_counts_zero_for_every_severity() {
        let report = report_of(&compliant_vpc().build());
        assert_eq!(report.exit_code(Severity::Low), 0);
        assert_eq!(report.summary.by_severity.len(), 5);
        assert!(report.summary.by_severity.values().all(|n| *n == 0));
    }

    #[test]
    fn findings_below_fail_on_exit_zero_and_at_or_above_exit_one() {
        let snapshot = compliant_vpc()
            .with(|r| {
                r.vpcs[0].cidr_block = Some("10.0.0.0/20".into());
                r.vpcs[0].cidr_blocks = vec!["10.0.0.0/20".into()];
            })
            .build();
        let report = report_of(&snapshot);
        assert_eq!(report.findings[0].severity, Severity::Medium);
        assert_eq!(report.exit_code(Severity::High), 0);
        assert_eq!(report.exit_code(Severity::Medium), 1);
    }

    #[test]
    fn failed_region_exits_two_even_with_no_findings() {
        let snapshot = compliant_vpc()
            .with(|r| {
                r.error = Some(CollectionError {
                    operation: Some("ec2:DescribeVpcs".into()),
                    message: "ec2:DescribeVpcs: AccessDenied".into(),
                })
            })
            .build();
        let report = report_of(&snapshot);
        assert!(report.findings.is_empty());
        assert_eq!(report.exit_code(Severity::Info), 2);
        assert_eq!(report.scans[0].status, ScanOutcome::Error);
        assert_eq!(report.summary.scans_failed, 1);
    }

    #[test]
    fn report_with_no_scans_is_incomplete() {
        let snapshot = Snapshot::default();
        assert_eq!(report_of(&snapshot).exit_code(Severity::Info), 2);
    }
}
