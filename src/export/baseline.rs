//! Diff between runs: a baseline (a JSON report written earlier by `--once --format json`)
//! marks each current finding `new` or `unchanged` and lists the `resolved` ones.
//!
//! A finding's identity is (rule_id, pack, account_id, region, resource_id), never its
//! message, so a reworded message does not make an old finding look new. Loading reads a
//! file; the diff itself is pure.
//!
//! It owns reading the baseline and [`apply`]. The data it writes are plain: a finding's
//! [`BaselineStatus`] is in the model (`finding`), the resolved list and counts are in
//! `report`; both are re-exported here.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Deserialize;

pub use crate::finding::BaselineStatus;
use crate::finding::Finding;
use crate::input::{self, InputError};

pub use super::report::{BaselineCounts, BaselineFinding, FindingKey};
use super::report::{Report, REPORT_SCHEMA_VERSION};

/// The identity of a current finding.
pub fn finding_key(f: &Finding) -> FindingKey {
    (
        f.rule_id.clone(),
        f.pack.clone(),
        f.account_id.clone(),
        f.region.clone(),
        f.resource_id.clone(),
    )
}

/// The report's schema version, checked inside the number's own visit so that a wrong
/// version is reported with its own line, like any other bad field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaVersion(pub u32);

impl<'de> Deserialize<'de> for SchemaVersion {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = SchemaVersion;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                write!(f, "report schema_version {REPORT_SCHEMA_VERSION}")
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<SchemaVersion, E> {
                if v == u64::from(REPORT_SCHEMA_VERSION) {
                    Ok(SchemaVersion(REPORT_SCHEMA_VERSION))
                } else {
                    Err(E::custom(format!(
                        "expected report schema_version {REPORT_SCHEMA_VERSION}, found {v}"
                    )))
                }
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<SchemaVersion, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::custom(format!(
                        "expected report schema_version {REPORT_SCHEMA_VERSION}, found {v}"
                    ))),
                }
            }
        }
        d.deserialize_u64(Visitor)
    }
}

/// The parts of an earlier report that the diff reads.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Baseline {
    pub schema_version: SchemaVersion,
    pub findings: Vec<BaselineFinding>,
}

impl Baseline {
    /// Reads a baseline report. JSON is YAML, so the YAML reader gives the line and field
    /// of a bad value.
    pub fn read(path: &Path) -> Result<Baseline, InputError> {
        input::read_yaml(path)
    }
}

/// Marks every finding of `report` `new` or `unchanged` against `baseline`, and records the
/// baseline's findings that are gone as `resolved`, with counts in the summary. Pure.
pub fn apply(report: &mut Report, baseline: &Baseline) {
    let before: BTreeSet<FindingKey> = baseline.findings.iter().map(|f| f.key()).collect();
    let now: BTreeSet<FindingKey> = report.findings.iter().map(finding_key).collect();
    let mut counts = BaselineCounts::default();
    for finding in &mut report.findings {
        let status = if before.contains(&finding_key(finding)) {
            counts.unchanged += 1;
            BaselineStatus::Unchanged
        } else {
            counts.new += 1;
            BaselineStatus::New
        };
        finding.baseline = Some(status);
    }
    let mut seen = BTreeSet::new();
    let mut resolved: Vec<BaselineFinding> = baseline
        .findings
        .iter()
        .filter(|f| !now.contains(&f.key()) && seen.insert(f.key()))
        .cloned()
        .collect();
    resolved.sort_by_key(|f| f.key());
    counts.resolved = resolved.len();
    report.resolved = Some(resolved);
    report.summary.baseline = Some(counts);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::ResourceType;
    use crate::finding::Severity;

    fn finding(rule: &str, resource: &str, message: &str) -> Finding {
        Finding {
            rule_id: rule.into(),
            severity: Severity::High,
            pack: "union-byoc".into(),
            account_id: "111122223333".into(),
            region: "us-east-1".into(),
            resource_type: ResourceType::Vpc,
            resource_id: resource.into(),
            vpc_id: None,
            message: message.into(),
            remediation: String::new(),
            details: serde_json::Value::Null,
            baseline: None,
            suppressed: None,
        }
    }

    fn baseline_of(findings: &[Finding]) -> Baseline {
        Baseline {
            schema_version: SchemaVersion(REPORT_SCHEMA_VERSION),
            findings: findings
                .iter()
                .map(|f| BaselineFinding {
                    rule_id: f.rule_id.clone(),
                    pack: f.pack.clone(),
                    account_id: f.account_id.clone(),
                    region: f.region.clone(),
                    resource_id: f.resource_id.clone(),
                    severity: f.severity,
                    message: f.message.clone(),
                })
                .collect(),
        }
    }

    fn report_with(findings: Vec<Finding>) -> Report {
        let mut report = Report::build(
            &crate::snapshot::Snapshot::default(),
            crate::rules::Evaluation::default(),
            "t".into(),
        );
        report.findings = findings;
        report
    }

    #[test]
    fn findings_are_new_unchanged_or_resolved_by_identity_not_message() {
        let old = [
            finding("vpc.az_count", "vpc-1", "old wording"),
            finding("vpc.cidr_size", "vpc-1", "m"),
        ];
        let mut report = report_with(vec![
            finding("vpc.az_count", "vpc-1", "new wording"),
            finding("vpc.az_count", "vpc-2", "m"),
        ]);
        apply(&mut report, &baseline_of(&old));
        assert_eq!(report.findings[0].baseline, Some(BaselineStatus::Unchanged));
        assert_eq!(report.findings[1].baseline, Some(BaselineStatus::New));
        let resolved = report.resolved.as_ref().unwrap();
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].rule_id, "vpc.cidr_size");
        assert_eq!(
            report.summary.baseline,
            Some(BaselineCounts {
                new: 1,
                unchanged: 1,
                resolved: 1
            })
        );
    }

    #[test]
    fn same_rule_in_another_region_or_pack_is_new() {
        let old = [finding("vpc.az_count", "vpc-1", "m")];
        let mut other_region = finding("vpc.az_count", "vpc-1", "m");
        other_region.region = "eu-west-1".into();
        let mut other_pack = finding("vpc.az_count", "vpc-1", "m");
        other_pack.pack = "other".into();
        let mut report = report_with(vec![other_region, other_pack]);
        apply(&mut report, &baseline_of(&old));
        assert!(report
            .findings
            .iter()
            .all(|f| f.baseline == Some(BaselineStatus::New)));
        assert_eq!(report.summary.baseline.unwrap().resolved, 1);
    }

    #[test]
    fn fail_on_new_ignores_unchanged_findings_but_not_an_incomplete_scan() {
        let old = [finding("vpc.az_count", "vpc-1", "m")];
        let mut report = report_with(vec![finding("vpc.az_count", "vpc-1", "m")]);
        apply(&mut report, &baseline_of(&old));
        // No scans at all: incomplete.
        assert_eq!(report.exit_code_new(Severity::Low), 2);
        report.scans.push(super::super::report::ScanStatus {
            account_id: "111122223333".into(),
            region: "us-east-1".into(),
            status: super::super::report::ScanOutcome::Ok,
            error: None,
            error_operation: None,
            api_calls: Default::default(),
        });
        assert_eq!(report.exit_code(Severity::Low), 1);
        assert_eq!(report.exit_code_new(Severity::Low), 0);
        report.findings.push(finding("vpc.az_count", "vpc-9", "m"));
        apply(&mut report, &baseline_of(&old));
        assert_eq!(report.exit_code_new(Severity::Low), 1);
        assert_eq!(report.exit_code_new(Severity::Critical), 0);
    }

    #[test]
    fn a_report_round_trips_as_a_baseline() {
        let report = report_with(vec![finding("vpc.az_count", "vpc-1", "m")]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("base.json");
        std::fs::write(&path, report.to_json()).unwrap();
        let baseline = Baseline::read(&path).unwrap();
        assert_eq!(baseline.findings.len(), 1);
        assert_eq!(baseline.findings[0].resource_id, "vpc-1");
    }

    #[test]
    fn wrong_schema_or_missing_field_names_file_line_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("base.json");
        std::fs::write(
            &path,
            "{\n  \"schema_version\": 7,\n  \"findings\": []\n}\n",
        )
        .unwrap();
        let err = Baseline::read(&path).unwrap_err();
        assert_eq!(err.line, Some(2), "{err}");
        assert_eq!(err.field, "schema_version", "{err}");
        std::fs::write(
            &path,
            "{\"schema_version\": 1,\n \"findings\": [\n  {\"rule_id\": \"x\"}\n ]\n}\n",
        )
        .unwrap();
        let err = Baseline::read(&path).unwrap_err().to_string();
        assert!(err.contains("base.json:3"), "{err}");
        assert!(err.contains("findings[0]"), "{err}");
    }
}
