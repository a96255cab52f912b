//! The SARIF 2.1.0 report, for code-scanning UIs (GitHub code scanning, Azure DevOps, and
//! other SARIF viewers). Built with serde-sarif's types from the schema.
//!
//! - `tool.driver.rules` is the whole rule catalogue: id, what it checks (short
//!   description), why (full description), help text, default level, and GitHub's
//!   `security-severity`.
//! - Each finding is a result on a logical location, the AWS resource, with a stable
//!   `partialFingerprints` entry so a viewer tracks it across runs, its remediation
//!   command in the Markdown message and in `properties.remediation`, and a `suppressions`
//!   entry when a suppression covers it.
//! - With `--baseline`, results carry `baselineState`; resolved findings are results with
//!   `baselineState: absent`.
//! - A failed (account, region) scan makes `invocations[0].executionSuccessful` false and
//!   is an error notification, so an incomplete audit never reads as clean.

use std::collections::BTreeMap;

use serde_json::json;
use serde_sarif::sarif::{
    Invocation, Location, LogicalLocation, Message, MultiformatMessageString, Notification,
    PropertyBag, ReportingConfiguration, ReportingDescriptor, Result as SarifResult, ResultLevel,
    Run, Sarif, Suppression, Tool, ToolComponent, SCHEMA_URL,
};
use sha2::{Digest, Sha256};

use crate::finding::{Finding, Severity};
use crate::rules::catalogue::{RuleInfo, CATALOGUE};

use super::baseline::{BaselineFinding, BaselineStatus};
use super::report::{Report, ScanOutcome};

/// The key of the fingerprint each result carries in `partialFingerprints`.
pub const FINGERPRINT_KEY: &str = "vpcAuditorFinding/v1";

/// Renders the report as a SARIF 2.1.0 log.
pub fn render(report: &Report) -> String {
    let rule_index: BTreeMap<&str, i64> = CATALOGUE
        .iter()
        .enumerate()
        .map(|(i, rule)| (rule.id, i as i64))
        .collect();
    let mut results: Vec<SarifResult> = report
        .findings
        .iter()
        .map(|f| finding_result(f, rule_index.get(f.rule_id.as_str()).copied()))
        .collect();
    if let Some(resolved) = &report.resolved {
        results.extend(
            resolved
                .iter()
                .map(|f| resolved_result(f, rule_index.get(f.rule_id.as_str()).copied())),
        );
    }
    let driver = ToolComponent::builder()
        .name(report.tool.name.clone())
        .version(report.tool.version.clone())
        .semantic_version(report.tool.version.clone())
        .short_description(text(
            "Audits AWS VPCs and IAM roles against the requirements of bring-your-own-cloud platforms",
        ))
        .rules(CATALOGUE.iter().map(rule_descriptor).collect::<Vec<_>>())
        .build();
    let run = Run::builder()
        .tool(Tool::builder().driver(driver).build())
        .invocations(vec![invocation(report)])
        .results(results)
        .build();
    let log = Sarif::builder()
        .schema(SCHEMA_URL)
        .version(json!("2.1.0"))
        .runs(vec![run])
        .build();
    // Plain data with string keys: serialisation cannot fail.
    serde_json::to_string_pretty(&log).unwrap_or_default()
}

fn text(s: &str) -> MultiformatMessageString {
    MultiformatMessageString::builder().text(s).build()
}

fn properties(entries: serde_json::Value) -> PropertyBag {
    let additional_properties = match entries {
        serde_json::Value::Object(map) => map.into_iter().collect(),
        _ => BTreeMap::new(),
    };
    PropertyBag {
        additional_properties,
        ..Default::default()
    }
}

/// SARIF's level for a severity: critical and high are errors, medium a warning, low and
/// info notes.
fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// GitHub code scanning's `security-severity` score (0.0 to 10.0) for a severity.
fn security_severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "0.0",
    }
}

fn rule_descriptor(rule: &RuleInfo) -> ReportingDescriptor {
    let help = format!(
        "{} {} Each result carries the command that fixes its resource, with the resource's \
         ids filled in, in its message and in properties.remediation.",
        rule.checks, rule.rationale
    );
    ReportingDescriptor::builder()
        .id(rule.id)
        .name(rule_name(rule.id))
        .short_description(text(rule.checks))
        .full_description(text(rule.rationale))
        .help(text(&help))
        .default_configuration(ReportingConfiguration {
            level: Some(json!(level(rule.default_severity))),
            ..Default::default()
        })
        .properties(properties(json!({
            "tags": ["security", "aws", rule.resource_type.as_str()],
            "security-severity": security_severity(rule.default_severity),
            "resource_type": rule.resource_type.as_str(),
        })))
        .build()
}

/// `vpc.az_count` becomes `VpcAzCount`: SARIF's rule name is an identifier-like word.
fn rule_name(id: &str) -> String {
    id.split(['.', '_'])
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// A stable identity of a finding across runs: rule, account, region and resource.
fn fingerprint(rule_id: &str, account: &str, region: &str, resource: &str) -> String {
    let digest = Sha256::digest(format!("{rule_id}\n{account}\n{region}\n{resource}"));
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn resource_location(
    account: &str,
    region: &str,
    kind: &str,
    resource: &str,
    vpc: Option<&str>,
) -> Location {
    let mut logical = vec![LogicalLocation {
        name: Some(resource.to_string()),
        fully_qualified_name: Some(format!("aws://{account}/{region}/{kind}/{resource}")),
        kind: Some(kind.to_string()),
        ..Default::default()
    }];
    if let Some(vpc) = vpc.filter(|v| *v != resource) {
        logical.push(LogicalLocation {
            name: Some(vpc.to_string()),
            fully_qualified_name: Some(format!("aws://{account}/{region}/vpc/{vpc}")),
            kind: Some("vpc".to_string()),
            ..Default::default()
        });
    }
    Location {
        logical_locations: Some(logical),
        ..Default::default()
    }
}

fn finding_result(f: &Finding, rule_index: Option<i64>) -> SarifResult {
    let markdown = format!(
        "{}\n\n**Remediation**\n\n```sh\n{}\n```",
        f.message, f.remediation
    );
    let suppressions = f.suppressed.as_ref().map(|by| {
        vec![Suppression::builder()
            .kind(json!("external"))
            .status(json!("accepted"))
            .justification(format!("{} (until {})", by.reason, by.expires))
            .build()]
    });
    let mut result = SarifResult::builder()
        .rule_id(f.rule_id.clone())
        .level(match f.severity {
            Severity::Critical | Severity::High => ResultLevel::Error,
            Severity::Medium => ResultLevel::Warning,
            Severity::Low | Severity::Info => ResultLevel::Note,
        })
        .message(Message {
            text: Some(f.message.clone()),
            markdown: Some(markdown),
            ..Default::default()
        })
        .locations(vec![resource_location(
            &f.account_id,
            &f.region,
            f.resource_type.as_str(),
            &f.resource_id,
            f.vpc_id.as_deref(),
        )])
        .partial_fingerprints(BTreeMap::from([(
            FINGERPRINT_KEY.to_string(),
            fingerprint(&f.rule_id, &f.account_id, &f.region, &f.resource_id),
        )]))
        .properties(properties(json!({
            "severity": f.severity.as_str(),
            "pack": f.pack,
            "account_id": f.account_id,
            "region": f.region,
            "resource_type": f.resource_type.as_str(),
            "resource_id": f.resource_id,
            "vpc_id": f.vpc_id,
            "remediation": f.remediation,
            "details": f.details,
        })))
        .build();
    result.rule_index = rule_index;
    result.suppressions = suppressions;
    result.baseline_state = f.baseline.map(|b| match b {
        BaselineStatus::New => json!("new"),
        BaselineStatus::Unchanged => json!("unchanged"),
    });
    result
}

/// A baseline finding that is gone now.
fn resolved_result(f: &BaselineFinding, rule_index: Option<i64>) -> SarifResult {
    let kind = crate::rules::catalogue::rule_info(&f.rule_id)
        .map(|r| r.resource_type.as_str())
        .unwrap_or("resource");
    let mut result = SarifResult::builder()
        .rule_id(f.rule_id.clone())
        .level(ResultLevel::None)
        .message(Message {
            text: Some(format!("Resolved since the baseline: {}", f.message)),
            ..Default::default()
        })
        .locations(vec![resource_location(
            &f.account_id,
            &f.region,
            kind,
            &f.resource_id,
            None,
        )])
        .partial_fingerprints(BTreeMap::from([(
            FINGERPRINT_KEY.to_string(),
            fingerprint(&f.rule_id, &f.account_id, &f.region, &f.resource_id),
        )]))
        .baseline_state(json!("absent"))
        .properties(properties(json!({
            "severity": f.severity.as_str(),
            "pack": f.pack,
            "account_id": f.account_id,
            "region": f.region,
            "resource_id": f.resource_id,
        })))
        .build();
    result.rule_index = rule_index;
    result
}

/// The run's one invocation: successful only when every scan completed; each failed scan
/// an error notification and each note a note.
fn invocation(report: &Report) -> Invocation {
    let mut notifications: Vec<Notification> = report
        .scans
        .iter()
        .filter(|s| s.status == ScanOutcome::Error)
        .map(|s| {
            Notification::builder()
                .level(json!("error"))
                .message(Message {
                    text: Some(format!(
                        "The scan of {}/{} failed, so it was not audited: {}",
                        s.account_id,
                        s.region,
                        s.error.as_deref().unwrap_or("unknown error")
                    )),
                    ..Default::default()
                })
                .properties(properties(json!({
                    "account_id": s.account_id,
                    "region": s.region,
                    "operation": s.error_operation,
                })))
                .build()
        })
        .collect();
    notifications.extend(report.notes.iter().map(|note| {
        Notification::builder()
            .level(json!("note"))
            .message(Message {
                text: Some(note.clone()),
                ..Default::default()
            })
            .build()
    }));
    let mut invocation = Invocation::builder()
        .execution_successful(report.is_complete())
        .end_time_utc(report.generated_at.clone())
        .build();
    if !notifications.is_empty() {
        invocation.tool_execution_notifications = Some(notifications);
    }
    invocation
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::report::test_support::report_of;
    use crate::snapshot::builder::compliant_vpc;
    use crate::snapshot::{CollectionError, Snapshot};

    fn sarif_of(snapshot: &Snapshot) -> serde_json::Value {
        serde_json::from_str(&render(&report_of(snapshot))).expect("SARIF is JSON")
    }

    #[test]
    fn a_finding_is_a_result_on_its_resource_pointing_at_its_rule() {
        let log = sarif_of(
            &compliant_vpc()
                .with(|r| r.vpcs[0].enable_dns_support = Some(false))
                .build(),
        );
        assert_eq!(log["version"], "2.1.0");
        let run = &log["runs"][0];
        let result = &run["results"][0];
        assert_eq!(result["ruleId"], "vpc.dns_attributes");
        let index = result["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(
            run["tool"]["driver"]["rules"][index]["id"],
            "vpc.dns_attributes"
        );
        assert_eq!(
            result["locations"][0]["logicalLocations"][0]["name"],
            "vpc-good"
        );
        assert!(result["partialFingerprints"][FINGERPRINT_KEY].is_string());
        assert_eq!(run["invocations"][0]["executionSuccessful"], true);
    }

    #[test]
    fn a_failed_scan_makes_the_run_unsuccessful() {
        let log = sarif_of(
            &compliant_vpc()
                .with(|r| {
                    r.error = Some(CollectionError {
                        operation: Some("ec2:DescribeVpcs".into()),
                        message: "AccessDenied".into(),
                    })
                })
                .build(),
        );
        let invocation = &log["runs"][0]["invocations"][0];
        assert_eq!(invocation["executionSuccessful"], false);
        let note = &invocation["toolExecutionNotifications"][0];
        assert_eq!(note["level"], "error");
        assert!(note["message"]["text"]
            .as_str()
            .unwrap()
            .contains("AccessDenied"));
    }

    #[test]
    fn fingerprints_are_stable_and_tell_resources_apart() {
        let a = fingerprint("vpc.az_count", "1", "us-east-1", "vpc-a");
        assert_eq!(a, fingerprint("vpc.az_count", "1", "us-east-1", "vpc-a"));
        assert_ne!(a, fingerprint("vpc.az_count", "1", "us-east-1", "vpc-b"));
        assert_eq!(
            rule_name("endpoint.interface_az_coverage"),
            "EndpointInterfaceAzCoverage"
        );
    }
}
