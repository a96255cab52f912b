//! The Markdown report, for a pull-request comment: a verdict line, the counts, a table of
//! findings with each one's remediation folded under it, and what the baseline resolved.
//!
//! Code hosts cap a comment's length (GitHub at 65,536 characters), so the findings table
//! stops at [`MAX_CHARS`] and says how many it left out; the JSON report has them all.

use std::fmt::Write;

use crate::finding::{Finding, Severity};

use super::baseline::BaselineStatus;
use super::report::{Report, ScanOutcome};

/// The most characters the rendered comment may have before findings are left out.
pub const MAX_CHARS: usize = 60_000;

/// Renders the report as GitHub-flavoured Markdown.
pub fn render(report: &Report) -> String {
    let s = &report.summary;
    let counted = s.total - s.suppressed;
    let mut out = String::new();
    let verdict = if s.scans_failed > 0 {
        format!(
            "**Incomplete:** {} scan(s) failed, so this is not a full audit",
            s.scans_failed
        )
    } else if counted == 0 {
        "**Compliant:** no findings".to_string()
    } else {
        format!("**{counted} finding(s)**")
    };
    let _ = writeln!(out, "## vpc-auditor report\n\n{verdict}\n");
    let _ = writeln!(
        out,
        "| critical | high | medium | low | info | suppressed | VPCs | scans |\n|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let count = |sev: Severity| s.by_severity.get(&sev).copied().unwrap_or(0);
    let _ = writeln!(
        out,
        "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
        count(Severity::Critical),
        count(Severity::High),
        count(Severity::Medium),
        count(Severity::Low),
        count(Severity::Info),
        s.suppressed,
        s.vpcs_audited,
        report.scans.len()
    );
    for vpc in &report.skipped {
        let _ = writeln!(
            out,
            "Skipped: `{}` ({}/{}): {}.\n",
            vpc.vpc_id, vpc.account_id, vpc.region, vpc.reason
        );
    }
    if let Some(b) = &s.baseline {
        let _ = writeln!(
            out,
            "Against the baseline: **{} new**, {} unchanged, {} resolved.\n",
            b.new, b.unchanged, b.resolved
        );
    }

    let failed: Vec<_> = report
        .scans
        .iter()
        .filter(|scan| scan.status == ScanOutcome::Error)
        .collect();
    if !failed.is_empty() {
        out.push_str(
            "### Failed scans (not audited)\n\n| account | region | error |\n|---|---|---|\n",
        );
        for scan in failed {
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                cell(&scan.account_id),
                cell(&scan.region),
                cell(scan.error.as_deref().unwrap_or("unknown error"))
            );
        }
        out.push('\n');
    }

    let mut findings: Vec<&Finding> = report.findings.iter().collect();
    // Most severe first; suppressed ones last, as they do not count.
    findings.sort_by(|a, b| {
        (
            a.suppressed.is_some(),
            b.severity,
            &a.rule_id,
            &a.resource_id,
        )
            .cmp(&(
                b.suppressed.is_some(),
                a.severity,
                &b.rule_id,
                &b.resource_id,
            ))
    });
    if !findings.is_empty() {
        out.push_str("### Findings\n\n");
        let mut left_out = 0;
        for finding in &findings {
            let entry = finding_entry(finding);
            if out.len() + entry.len() > MAX_CHARS {
                left_out += 1;
                continue;
            }
            out.push_str(&entry);
        }
        if left_out > 0 {
            let _ = writeln!(
                out,
                "\n_{left_out} more finding(s) left out to fit a comment; `--format json` lists them all._\n"
            );
        }
    }

    if let Some(resolved) = report.resolved.as_ref().filter(|r| !r.is_empty()) {
        out.push_str("### Resolved since the baseline\n\n| severity | rule | resource | account/region |\n|---|---|---|---|\n");
        for f in resolved {
            let line = format!(
                "| {} | `{}` | `{}` | {}/{} |\n",
                f.severity,
                f.rule_id,
                cell(&f.resource_id),
                cell(&f.account_id),
                cell(&f.region)
            );
            if out.len() + line.len() > MAX_CHARS {
                break;
            }
            out.push_str(&line);
        }
        out.push('\n');
    }

    for (i, sheet) in report.handover.iter().enumerate() {
        if i == 0 {
            out.push_str("### Handover\n\n");
        }
        let mut section = format!(
            "**{}** for {} ({}/{}, pack `{}`)\n\n> {}\n\n| item | value |\n|---|---|\n",
            one_line(&sheet.title()),
            one_line(&sheet.vendor),
            cell(&sheet.account_id),
            cell(&sheet.region),
            cell(&sheet.pack),
            one_line(&sheet.guide)
        );
        for (label, value) in sheet.lines() {
            let _ = writeln!(section, "| {label} | `{}` |", cell(&value));
        }
        let _ = writeln!(
            section,
            "\nOpen findings on this VPC and role: {}.",
            sheet.open_findings_text()
        );
        for gap in &sheet.gaps {
            let _ = writeln!(section, "- gap: {}", one_line(gap));
        }
        section.push('\n');
        if out.len() + section.len() > MAX_CHARS {
            break;
        }
        out.push_str(&section);
    }

    if !report.notes.is_empty() {
        out.push_str("### Notes\n\n");
        for note in &report.notes {
            let line = format!("- {}\n", one_line(note));
            if out.len() + line.len() > MAX_CHARS {
                break;
            }
            out.push_str(&line);
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "<sub>{} {} at {}</sub>",
        report.tool.name, report.tool.version, report.generated_at
    );
    out
}

/// One finding: a line with its severity, rule, resource and message, and the remediation
/// folded in a `<details>` block.
fn finding_entry(f: &Finding) -> String {
    let mut marks = Vec::new();
    if f.baseline == Some(BaselineStatus::New) {
        marks.push("**new**".to_string());
    }
    if let Some(by) = &f.suppressed {
        marks.push(format!(
            "suppressed until {}: {}",
            by.expires,
            one_line(&by.reason)
        ));
    }
    let marks = if marks.is_empty() {
        String::new()
    } else {
        format!(" ({})", marks.join("; "))
    };
    let vpc = f
        .vpc_id
        .as_deref()
        .filter(|v| *v != f.resource_id)
        .map(|v| format!(" in `{v}`"))
        .unwrap_or_default();
    format!(
        "- **{}** `{}` on `{}`{vpc}, {}/{}{marks}: {}\n  <details><summary>Remediation</summary>\n\n  ```sh\n{}\n  ```\n  </details>\n\n",
        f.severity.as_str().to_uppercase(),
        f.rule_id,
        one_line(&f.resource_id),
        f.account_id,
        f.region,
        one_line(&f.message),
        indent(&f.remediation.replace("```", "'''")),
    )
}

/// Text made safe for one table cell: no line breaks, pipes escaped.
fn cell(text: &str) -> String {
    one_line(text).replace('|', "\\|")
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|line| format!("  {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::report::test_support::report_of;
    use crate::snapshot::builder::compliant_vpc;

    #[test]
    fn a_clean_account_reads_compliant() {
        let md = render(&report_of(&compliant_vpc().build()));
        assert!(md.contains("**Compliant:** no findings"), "{md}");
        assert!(!md.contains("### Findings"));
    }

    #[test]
    fn each_finding_has_its_rule_resource_and_remediation() {
        let snapshot = compliant_vpc()
            .with(|r| r.vpcs[0].enable_dns_support = Some(false))
            .build();
        let report = report_of(&snapshot);
        let md = render(&report);
        let finding = &report.findings[0];
        assert!(md.contains("**1 finding(s)**"), "{md}");
        assert!(md.contains(&format!(
            "`{}` on `{}`",
            finding.rule_id, finding.resource_id
        )));
        let first_line = finding.remediation.lines().next().unwrap();
        assert!(md.contains(first_line), "remediation missing: {md}");
        assert_eq!(
            md.matches("<details>").count(),
            md.matches("</details>").count()
        );
    }

    #[test]
    fn a_huge_report_is_cut_to_fit_a_comment_and_says_so() {
        let mut report = report_of(
            &compliant_vpc()
                .with(|r| r.vpcs[0].enable_dns_support = Some(false))
                .build(),
        );
        let one = report.findings[0].clone();
        report.findings = (0..2000)
            .map(|i| Finding {
                resource_id: format!("vpc-{i:05}"),
                ..one.clone()
            })
            .collect();
        let md = render(&report);
        assert!(md.len() <= MAX_CHARS + 500, "{} chars", md.len());
        assert!(md.contains("more finding(s) left out"));
    }

    #[test]
    fn pipes_and_newlines_cannot_break_a_table_row() {
        assert_eq!(cell("a|b\nc"), "a\\|b c");
    }
}
