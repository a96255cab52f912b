//! The JUnit XML report, for CI dashboards: one test suite per rule, one test case per
//! resource the rule evaluated (a failure when it has a finding, skipped when a
//! suppression covers it), and a `scans` suite whose failed (account, region) scans are
//! errors, so an incomplete audit can never show as all green. Serialised by quick-junit.

use std::collections::BTreeMap;

use quick_junit::{NonSuccessKind, Property, TestCase, TestCaseStatus, TestSuite};

use crate::finding::{Finding, Severity};

use super::report::{Report, ScanOutcome};

/// The suite that holds one test case per (account, region) scan.
pub const SCANS_SUITE: &str = "scans";

/// A test case's identity: rule, pack, account, region, resource.
type CaseKey<'a> = (&'a str, &'a str, &'a str, &'a str, &'a str);

/// Renders the report as JUnit XML. Passing test cases come from `report.checked`; without
/// it (a report read back from JSON), only the findings become test cases.
pub fn render(report: &Report) -> Result<String, String> {
    let mut cases: BTreeMap<CaseKey, Vec<&Finding>> = BTreeMap::new();
    for check in report.checked.iter().flatten() {
        cases
            .entry((
                check.rule_id,
                &check.pack,
                &check.account_id,
                &check.region,
                &check.resource_id,
            ))
            .or_default();
    }
    for f in &report.findings {
        cases
            .entry((
                &f.rule_id,
                &f.pack,
                &f.account_id,
                &f.region,
                &f.resource_id,
            ))
            .or_default()
            .push(f);
    }

    let mut junit = quick_junit::Report::new(report.tool.name.as_str());
    let timestamp = chrono::DateTime::parse_from_rfc3339(&report.generated_at).ok();
    if let Some(at) = timestamp {
        junit.set_timestamp(at);
    }
    junit.add_test_suite(scans_suite(report));

    let mut suites: BTreeMap<&str, TestSuite> = BTreeMap::new();
    for ((rule_id, pack, account, region, resource), findings) in cases {
        let suite = suites.entry(rule_id).or_insert_with(|| {
            let mut suite = TestSuite::new(rule_id);
            if let Some(at) = timestamp {
                suite.set_timestamp(at);
            }
            suite
        });
        let mut case = TestCase::new(resource, case_status(&findings));
        case.set_classname(format!("{pack}.{account}.{region}"));
        case.add_property(Property::new("pack", pack));
        case.add_property(Property::new("account_id", account));
        case.add_property(Property::new("region", region));
        if let Some(f) = findings.first() {
            case.add_property(Property::new("severity", f.severity.as_str()));
            if let Some(vpc) = &f.vpc_id {
                case.add_property(Property::new("vpc_id", vpc.as_str()));
            }
        }
        suite.add_test_case(case);
    }
    junit.add_test_suites(suites.into_values());
    junit
        .to_string()
        .map_err(|e| format!("cannot write the JUnit report: {e}"))
}

/// Passed when no finding; skipped when every finding is suppressed; otherwise a failure
/// whose message is the first finding's and whose text holds every message and fix.
fn case_status(findings: &[&Finding]) -> TestCaseStatus {
    let counted: Vec<&&Finding> = findings.iter().filter(|f| f.suppressed.is_none()).collect();
    if findings.is_empty() {
        return TestCaseStatus::success();
    }
    if counted.is_empty() {
        let mut status = TestCaseStatus::skipped();
        if let Some(by) = findings.iter().find_map(|f| f.suppressed.as_ref()) {
            status.set_message(format!("suppressed until {}: {}", by.expires, by.reason));
        }
        return status;
    }
    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
    let worst = counted
        .iter()
        .map(|f| f.severity)
        .max()
        .unwrap_or(Severity::Info);
    status.set_message(counted[0].message.as_str());
    status.set_type(worst.as_str());
    let text: Vec<String> = counted
        .iter()
        .map(|f| {
            format!(
                "[{}] {}\nRemediation:\n{}",
                f.severity, f.message, f.remediation
            )
        })
        .collect();
    status.set_description(text.join("\n\n"));
    status
}

/// One test case per (account, region) scan: an error when it failed.
fn scans_suite(report: &Report) -> TestSuite {
    let mut suite = TestSuite::new(SCANS_SUITE);
    for scan in &report.scans {
        let status = match scan.status {
            ScanOutcome::Ok => TestCaseStatus::success(),
            ScanOutcome::Error => {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
                status.set_message(scan.error.as_deref().unwrap_or("the scan failed"));
                if let Some(op) = &scan.error_operation {
                    status.set_type(op.as_str());
                }
                status
            }
        };
        let mut case = TestCase::new(format!("{}/{}", scan.account_id, scan.region), status);
        case.set_classname(SCANS_SUITE);
        suite.add_test_case(case);
    }
    suite
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::report::test_support::report_with_checks_of as report_of;
    use crate::snapshot::builder::compliant_vpc;
    use crate::snapshot::CollectionError;

    #[test]
    fn every_checked_resource_is_a_test_case_and_findings_are_failures() {
        let snapshot = compliant_vpc()
            .with(|r| r.vpcs[0].enable_dns_support = Some(false))
            .build();
        let report = report_of(&snapshot);
        let checks = report.checked.as_ref().unwrap().len();
        let xml = render(&report).unwrap();
        // One per check plus one per scan.
        assert_eq!(
            xml.matches("<testcase ").count(),
            checks + report.scans.len(),
            "{xml}"
        );
        assert_eq!(xml.matches("<failure").count(), 1, "{xml}");
        assert!(xml.contains("<testsuite name=\"vpc.dns_attributes\""));
    }

    #[test]
    fn a_failed_scan_is_an_error_test_case() {
        let snapshot = compliant_vpc()
            .with(|r| {
                r.error = Some(CollectionError {
                    operation: Some("ec2:DescribeVpcs".into()),
                    message: "AccessDenied".into(),
                })
            })
            .build();
        let xml = render(&report_of(&snapshot)).unwrap();
        assert!(
            xml.contains("<error message=\"AccessDenied\" type=\"ec2:DescribeVpcs\""),
            "{xml}"
        );
    }
}
