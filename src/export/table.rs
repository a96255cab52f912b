//! The human report: findings grouped by VPC, severities coloured on a terminal, and a
//! one-line summary at the end.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::finding::{Finding, ResourceType, Severity};
use crate::rules::handover::HandoverSheet;

use super::baseline::BaselineStatus;
use super::report::{Report, ScanOutcome};

/// Renders the report as text; `color` adds ANSI colours for a terminal.
pub fn render(report: &Report, color: bool) -> String {
    let paint = |sev: Severity, text: &str| -> String {
        if !color {
            return text.to_string();
        }
        let code = match sev {
            Severity::Critical => "1;35",
            Severity::High => "1;31",
            Severity::Medium => "33",
            Severity::Low => "36",
            Severity::Info => "2",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "vpc-auditor {} report, {}",
        report.tool.version, report.generated_at
    );
    for scan in &report.scans {
        let calls: u64 = scan.api_calls.values().sum();
        let account = if scan.account_id.is_empty() {
            "<unknown account>"
        } else {
            &scan.account_id
        };
        match scan.status {
            ScanOutcome::Ok => {
                let _ = writeln!(
                    out,
                    "  scan {account}/{}: ok ({calls} API calls)",
                    scan.region
                );
            }
            ScanOutcome::Error => {
                let _ = writeln!(
                    out,
                    "  scan {account}/{}: FAILED, not audited: {}",
                    scan.region,
                    scan.error.as_deref().unwrap_or("unknown error")
                );
            }
        }
    }

    let mut by_vpc: BTreeMap<(&str, &str, &str), Vec<&Finding>> = BTreeMap::new();
    for finding in &report.findings {
        let key = (
            finding.account_id.as_str(),
            finding.region.as_str(),
            finding.vpc_id.as_deref().unwrap_or("-"),
        );
        by_vpc.entry(key).or_default().push(finding);
    }
    for vpc in &report.vpcs {
        let key = (
            vpc.account_id.as_str(),
            vpc.region.as_str(),
            vpc.vpc_id.as_str(),
        );
        let findings = by_vpc.remove(&key).unwrap_or_default();
        let mut label = vec![];
        if let Some(name) = &vpc.name {
            label.push(name.clone());
        }
        if let Some(cidr) = &vpc.cidr_block {
            label.push(cidr.clone());
        }
        if vpc.is_default {
            label.push("default VPC".into());
        }
        let status = if findings.is_empty() {
            "compliant".to_string()
        } else {
            format!("{} finding(s)", findings.len())
        };
        let _ = writeln!(
            out,
            "\n{} {}/{} ({}): {status}",
            vpc.vpc_id,
            vpc.account_id,
            vpc.region,
            label.join(", ")
        );
        write_findings(&mut out, &findings, &paint);
    }
    for vpc in &report.skipped {
        let mut label = vec![];
        if let Some(name) = &vpc.name {
            label.push(name.clone());
        }
        if let Some(cidr) = &vpc.cidr_block {
            label.push(cidr.clone());
        }
        let _ = writeln!(
            out,
            "\n{} {}/{} ({}): skipped, {}",
            vpc.vpc_id,
            vpc.account_id,
            vpc.region,
            label.join(", "),
            vpc.reason
        );
    }
    // Findings not tied to an audited VPC (IAM roles, for instance).
    for ((account, region, vpc), findings) in by_vpc {
        let scope = if findings
            .iter()
            .all(|f| f.resource_type == ResourceType::Suppression)
        {
            "Suppressions".to_string()
        } else if vpc == "-" {
            format!("IAM roles {account}/{region}")
        } else {
            format!("{vpc} {account}/{region}")
        };
        let _ = writeln!(out, "\n{scope}: {} finding(s)", findings.len());
        write_findings(&mut out, &findings, &paint);
    }

    write_handover(&mut out, &report.handover);

    if let Some(resolved) = &report.resolved {
        if !resolved.is_empty() {
            out.push_str("\nResolved since the baseline:\n");
            for f in resolved {
                let sev = paint(
                    f.severity,
                    &format!("{:<8}", f.severity.as_str().to_uppercase()),
                );
                let _ = writeln!(
                    out,
                    "  {sev} {:<32} {:<26} {}/{} {}",
                    f.rule_id, f.resource_id, f.account_id, f.region, f.message
                );
            }
        }
    }

    if !report.notes.is_empty() {
        out.push_str("\nNotes:\n");
        for note in &report.notes {
            let _ = writeln!(out, "  - {note}");
        }
    }

    let s = &report.summary;
    let counts: Vec<String> = Severity::ALL
        .iter()
        .rev()
        .map(|sev| format!("{} {sev}", s.by_severity.get(sev).copied().unwrap_or(0)))
        .collect();
    let _ = write!(
        out,
        "\n{} finding(s) ({}) in {} VPC(s), {} scan(s)",
        s.total,
        counts.join(", "),
        s.vpcs_audited,
        report.scans.len()
    );
    if !report.skipped.is_empty() {
        let _ = write!(out, "; {} VPC(s) skipped", report.skipped.len());
    }
    if s.suppressed > 0 {
        let _ = write!(out, "; {} suppressed (not counted)", s.suppressed);
    }
    if s.suppressions_stale > 0 {
        let _ = write!(
            out,
            "; {} stale suppression(s), see the notes",
            s.suppressions_stale
        );
    }
    if let Some(b) = &s.baseline {
        let _ = write!(
            out,
            "; against the baseline: {} new, {} unchanged, {} resolved",
            b.new, b.unchanged, b.resolved
        );
    }
    if s.scans_failed > 0 {
        let _ = write!(
            out,
            "; {} scan(s) FAILED: the audit is incomplete",
            s.scans_failed
        );
    }
    out.push('\n');
    out
}

fn write_findings(
    out: &mut String,
    findings: &[&Finding],
    paint: &dyn Fn(Severity, &str) -> String,
) {
    let mut sorted = findings.to_vec();
    sorted.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.rule_id.cmp(&b.rule_id)));
    for f in sorted {
        let sev = paint(
            f.severity,
            &format!("{:<8}", f.severity.as_str().to_uppercase()),
        );
        // With a baseline, a leading column marks what the baseline did not have.
        let mark = match f.baseline {
            Some(BaselineStatus::New) => "NEW ",
            Some(BaselineStatus::Unchanged) => "    ",
            None => "",
        };
        let _ = writeln!(
            out,
            "  {mark}{sev} {:<32} {:<26} {}",
            f.rule_id, f.resource_id, f.message
        );
        if let Some(by) = &f.suppressed {
            let _ = writeln!(
                out,
                "           SUPPRESSED until {}: {}",
                by.expires, by.reason
            );
        }
        for (i, line) in f.remediation.lines().enumerate() {
            let lead = if i == 0 { "fix:" } else { "    " };
            let _ = writeln!(out, "           {lead} {line}");
        }
    }
}

/// The handover section: per data plane, the lines to copy to the vendor, then what is
/// open on it and what could not be filled.
fn write_handover(out: &mut String, sheets: &[HandoverSheet]) {
    let mut quoted: Vec<&str> = Vec::new();
    for sheet in sheets {
        if !quoted.contains(&sheet.pack.as_str()) {
            quoted.push(&sheet.pack);
            let _ = writeln!(
                out,
                "\nHandover to {} ({}): \"{}\"",
                sheet.vendor, sheet.pack, sheet.guide
            );
        }
        let _ = writeln!(
            out,
            "\n  {}, {}/{}:",
            sheet.title(),
            sheet.account_id,
            sheet.region
        );
        let lines = sheet.lines();
        let width = lines
            .iter()
            .map(|(label, _)| label.len())
            .max()
            .unwrap_or(0);
        for (label, value) in lines {
            let _ = writeln!(out, "    {label:<width$}  {value}");
        }
        let zones: Vec<&str> = sheet
            .zones
            .iter()
            .map(|z| z.availability_zone.as_str())
            .collect();
        if !zones.is_empty() {
            let _ = writeln!(out, "    availability zones: {}", zones.join(", "));
        }
        let _ = writeln!(
            out,
            "    open findings on this VPC and role: {}",
            sheet.open_findings_text()
        );
        for gap in &sheet.gaps {
            let _ = writeln!(out, "    gap: {gap}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Scope;
    use crate::rules::evaluate;
    use crate::snapshot::builder::compliant_vpc;

    /// The compliant VPC with DNS hostnames off: one high finding.
    fn report_with_one_finding() -> Report {
        let snapshot = compliant_vpc()
            .with(|r| r.vpcs[0].enable_dns_hostnames = Some(false))
            .build();
        let eval = evaluate(
            &snapshot,
            &[crate::rules::test_support::vpc_pack()],
            &Scope::default(),
        );
        Report::build(&snapshot, eval, "t".into())
    }

    #[test]
    fn table_groups_by_vpc_and_ends_with_a_summary_line() {
        let report = report_with_one_finding();
        let text = render(&report, false);
        assert!(
            text.contains("vpc-good 111122223333/us-east-1 (10.0.0.0/16): 1 finding(s)"),
            "{text}"
        );
        assert!(text.contains("HIGH     vpc.dns_attributes"), "{text}");
        assert!(text.contains(
            "fix: aws ec2 modify-vpc-attribute --vpc-id vpc-good --enable-dns-hostnames"
        ));
        assert!(!text.contains("\x1b["));
        let last = text.lines().last().unwrap();
        assert!(last.starts_with("1"), "{last}");
        assert!(render(&report, true).contains("\x1b[1;31m"));
    }

    #[test]
    fn table_marks_new_findings_and_lists_resolved_ones_against_a_baseline() {
        use crate::export::baseline::{apply, Baseline, BaselineFinding, SchemaVersion};
        let mut report = report_with_one_finding();
        let gone = BaselineFinding {
            rule_id: "vpc.cidr_size".into(),
            pack: "p".into(),
            account_id: "111122223333".into(),
            region: "us-east-1".into(),
            resource_id: "vpc-old".into(),
            severity: Severity::Medium,
            message: "was too small".into(),
        };
        apply(
            &mut report,
            &Baseline {
                schema_version: SchemaVersion(1),
                findings: vec![gone],
            },
        );
        let text = render(&report, false);
        assert!(text.contains("  NEW HIGH     vpc.dns_attributes"), "{text}");
        assert!(text.contains("Resolved since the baseline:"), "{text}");
        assert!(text.contains("MEDIUM   vpc.cidr_size"), "{text}");
        assert!(
            text.contains("against the baseline: 1 new, 0 unchanged, 1 resolved"),
            "{text}"
        );
    }
}
