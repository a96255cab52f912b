//! The `--format html` report: one self-contained HTML file (inline style, no external
//! assets) for a person to open or attach to a ticket. It lists every (account, region)
//! scanned and every finding with its remediation. Every value from the account goes through
//! [`escape`].

use std::fmt::Write;

use crate::export::html::escape;
use crate::export::report::ScanOutcome;
use crate::export::Report;
use crate::snapshot::Snapshot;

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;margin-bottom:1.5em}\
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}\
th{background:#f3f3f3}.ok{color:#176f2c}.error{color:#b00020;font-weight:bold}\
.critical,.high{color:#b00020}.medium{color:#a35200}pre{white-space:pre-wrap;margin:0}";

/// Renders the report. `snapshot` is what the report was evaluated from.
pub fn render(report: &Report, snapshot: &Snapshot) -> String {
    let mut page = String::new();
    // Writing to a String cannot fail.
    let _ = write_page(&mut page, report, snapshot);
    page
}

fn write_page(out: &mut String, report: &Report, _snapshot: &Snapshot) -> std::fmt::Result {
    writeln!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>vpc-auditor report</title><style>{STYLE}</style></head><body>"
    )?;
    writeln!(
        out,
        "<h1>vpc-auditor report</h1>\n<p>Generated {} by {} {}: {} findings, {} VPCs audited, \
         {} scans failed.</p>",
        escape(&report.generated_at),
        escape(&report.tool.name),
        escape(&report.tool.version),
        report.summary.total,
        report.summary.vpcs_audited,
        report.summary.scans_failed,
    )?;
    writeln!(out, "<h2>Accounts and regions</h2>")?;
    writeln!(
        out,
        "<table><tr><th>account</th><th>region</th><th>status</th><th>error</th></tr>"
    )?;
    for scan in &report.scans {
        let status = match scan.status {
            ScanOutcome::Ok => "<span class=\"ok\">ok</span>",
            ScanOutcome::Error => "<span class=\"error\">error</span>",
        };
        writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{status}</td><td>{}</td></tr>",
            escape(&scan.account_id),
            escape(&scan.region),
            escape(scan.error.as_deref().unwrap_or("")),
        )?;
    }
    writeln!(out, "</table>")?;
    writeln!(out, "<h2>Findings</h2>")?;
    if report.findings.is_empty() {
        writeln!(out, "<p>No findings.</p>")?;
    } else {
        writeln!(
            out,
            "<table><tr><th>severity</th><th>rule</th><th>resource</th><th>VPC</th>\
             <th>message</th><th>remediation</th></tr>"
        )?;
        for (i, f) in report.findings.iter().enumerate() {
            let suppressed = if f.suppressed.is_some() {
                " (suppressed)"
            } else {
                ""
            };
            writeln!(
                out,
                "<tr id=\"finding-{i}\"><td class=\"{sev}\">{sev}{suppressed}</td><td>{}</td>\
                 <td>{}</td><td>{}</td><td>{}</td><td><pre>{}</pre></td></tr>",
                escape(&f.rule_id),
                escape(&f.resource_id),
                escape(f.vpc_id.as_deref().unwrap_or("")),
                escape(&f.message),
                escape(&f.remediation),
                sev = f.severity.as_str(),
            )?;
        }
        writeln!(out, "</table>")?;
    }
    writeln!(out, "</body></html>")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::DEMO_SNAPSHOT;

    #[test]
    fn escapes_account_text_and_links_each_finding() {
        let snapshot = Snapshot::from_json(DEMO_SNAPSHOT).unwrap();
        let evaluation = crate::rules::evaluate(
            &snapshot,
            &[crate::rules::test_support::vpc_pack()],
            &Default::default(),
        );
        let mut report = Report::build(&snapshot, evaluation, "2026-12-03T00:00:00Z".into());
        assert!(!report.findings.is_empty());
        report.findings[0].message = "<script>alert(1)</script>".into();
        let page = render(&report, &snapshot);
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!page.contains("<script>"));
        assert!(page.contains("id=\"finding-0\""));
        assert!(!page.contains("http://") && !page.contains("https://"));
    }
}
