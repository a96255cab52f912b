//! The `--format html` report: one self-contained HTML file (inline style, no external
//! assets) for a person to open or attach to a ticket. It lists every (account, region)
//! scanned, a picture of each audited VPC ([`vpc_picture`], an inline SVG whose marked
//! elements link to the finding rows `#finding-N`, N being the finding's index in the
//! report), and every finding with its remediation. Every value from the account goes
//! through [`escape`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use crate::export::markup::escape;
use crate::export::report::ScanOutcome;
use crate::export::vpc_picture::{self, FindingLink};
use crate::export::Report;
use crate::snapshot::Snapshot;

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;margin-bottom:1.5em}\
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}\
th{background:#f3f3f3}.ok{color:#176f2c}.error{color:#b00020;font-weight:bold}\
.critical,.high{color:#b00020}.medium{color:#a35200}pre{white-space:pre-wrap;margin:0}\
.picture{overflow-x:auto;margin-bottom:1.5em}.picture svg{max-width:none}\
tr:target{background:#fff3c4}";

/// At most this many VPCs are drawn; the findings table still lists every finding.
pub const MAX_PICTURES: usize = 200;

/// Renders the report. `snapshot` is what the report was evaluated from.
pub fn render(report: &Report, snapshot: &Snapshot) -> String {
    let mut page = String::new();
    // Writing to a String cannot fail.
    let _ = write_page(&mut page, report, snapshot);
    page
}

fn write_page(out: &mut String, report: &Report, snapshot: &Snapshot) -> std::fmt::Result {
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
    for vpc in &report.skipped {
        writeln!(
            out,
            "<p>Skipped: <code>{}</code> ({}/{}): {}.</p>",
            escape(&vpc.vpc_id),
            escape(&vpc.account_id),
            escape(&vpc.region),
            escape(&vpc.reason)
        )?;
    }
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
    write_pictures(out, report, snapshot)?;
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
                vpc_link(f.vpc_id.as_deref()),
                escape(&f.message),
                escape(&f.remediation),
                sev = f.severity.as_str(),
            )?;
        }
        writeln!(out, "</table>")?;
    }
    write_handover(out, report)?;
    writeln!(out, "</body></html>")
}

/// The handover section: per data plane, the items to copy to the vendor.
fn write_handover(out: &mut String, report: &Report) -> std::fmt::Result {
    if report.handover.is_empty() {
        return Ok(());
    }
    writeln!(out, "<h2 id=\"handover\">Handover</h2>")?;
    for sheet in &report.handover {
        writeln!(
            out,
            "<h3>{} for {} ({}/{}, pack {})</h3>\n<blockquote>{}</blockquote>",
            escape(&sheet.title()),
            escape(&sheet.vendor),
            escape(&sheet.account_id),
            escape(&sheet.region),
            escape(&sheet.pack),
            escape(&sheet.guide)
        )?;
        writeln!(out, "<table><tr><th>item</th><th>value</th></tr>")?;
        for (label, value) in sheet.lines() {
            writeln!(
                out,
                "<tr><td>{}</td><td><code>{}</code></td></tr>",
                escape(label),
                escape(&value)
            )?;
        }
        writeln!(out, "</table>")?;
        writeln!(
            out,
            "<p>Open findings on this VPC and role: {}.</p>",
            escape(&sheet.open_findings_text())
        )?;
        if !sheet.gaps.is_empty() {
            writeln!(out, "<ul>")?;
            for gap in &sheet.gaps {
                writeln!(out, "<li>gap: {}</li>", escape(gap))?;
            }
            writeln!(out, "</ul>")?;
        }
    }
    Ok(())
}

/// The VPC cell of a finding row: a link to the VPC's picture.
fn vpc_link(vpc_id: Option<&str>) -> String {
    match vpc_id {
        Some(id) => format!("<a href=\"#vpc-{0}\">{0}</a>", escape(id)),
        None => String::new(),
    }
}

/// One picture per audited VPC, in the order of the report's `vpcs`.
fn write_pictures(out: &mut String, report: &Report, snapshot: &Snapshot) -> std::fmt::Result {
    writeln!(out, "<h2>VPCs</h2>")?;
    if report.vpcs.is_empty() {
        return writeln!(out, "<p>No VPC was audited.</p>");
    }
    writeln!(
        out,
        "<p>Each audited VPC as the auditor sees it: availability zones as columns, public and \
         private subnets, NAT gateways and the routes to them, endpoints. Red outlines and badges \
         mark elements with a finding (click to jump to it); dashed red boxes are what is \
         missing.</p>"
    )?;
    let links: Vec<FindingLink> = report
        .findings
        .iter()
        .enumerate()
        .map(|(i, finding)| FindingLink {
            finding,
            href: format!("#finding-{i}"),
        })
        .collect();
    let mut pictures: BTreeMap<(&str, &str, &str), String> = BTreeMap::new();
    let mut budget = MAX_PICTURES;
    for region in &snapshot.regions {
        let here = |a: &str, r: &str| a == region.account_id && r == region.region;
        let ids: BTreeSet<&str> = report
            .vpcs
            .iter()
            .filter(|v| here(&v.account_id, &v.region))
            .map(|v| v.vpc_id.as_str())
            .collect();
        let findings: Vec<FindingLink> = links
            .iter()
            .filter(|l| here(&l.finding.account_id, &l.finding.region))
            .cloned()
            .collect();
        for (vpc, svg) in vpc_picture::render_region(region, &ids, &findings, budget) {
            budget -= 1;
            let key = report
                .vpcs
                .iter()
                .find(|v| here(&v.account_id, &v.region) && v.vpc_id == vpc)
                .map(|v| (v.account_id.as_str(), v.region.as_str(), v.vpc_id.as_str()));
            if let Some(key) = key {
                pictures.insert(key, svg);
            }
        }
    }
    let mut not_drawn = 0;
    for vpc in &report.vpcs {
        let key = (
            vpc.account_id.as_str(),
            vpc.region.as_str(),
            vpc.vpc_id.as_str(),
        );
        let Some(svg) = pictures.get(&key) else {
            not_drawn += 1;
            continue;
        };
        let name = vpc
            .name
            .as_deref()
            .map(|n| format!(" {}", escape(n)))
            .unwrap_or_default();
        writeln!(
            out,
            "<h3 id=\"vpc-{id}\">{id}{name} <small>({}, {})</small></h3>\n<div class=\"picture\">{svg}</div>",
            escape(&vpc.account_id),
            escape(&vpc.region),
            id = escape(&vpc.vpc_id),
        )?;
    }
    if not_drawn > 0 {
        writeln!(
            out,
            "<p class=\"note\">{not_drawn} audited VPC(s) not drawn (at most {MAX_PICTURES} \
             pictures per report); their findings are listed below.</p>"
        )?;
    }
    Ok(())
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

    #[test]
    fn draws_each_audited_vpc_with_marks_linking_to_finding_rows() {
        let snapshot = Snapshot::from_json(DEMO_SNAPSHOT).unwrap();
        let evaluation = crate::rules::evaluate(
            &snapshot,
            &[crate::rules::test_support::vpc_pack()],
            &Default::default(),
        );
        let report = Report::build(&snapshot, evaluation, "2026-12-03T00:00:00Z".into());
        let page = render(&report, &snapshot);
        assert_eq!(page.matches("<svg ").count(), report.vpcs.len());
        for vpc in &report.vpcs {
            assert!(page.contains(&format!("<h3 id=\"vpc-{}\">", vpc.vpc_id)));
            assert!(page.contains(&format!("data-vpc=\"{}\"", vpc.vpc_id)));
        }
        // Every finding of a VPC is linked from its picture, to a row that exists.
        for (i, finding) in report.findings.iter().enumerate() {
            assert!(page.contains(&format!("<tr id=\"finding-{i}\">")));
            if finding.vpc_id.is_some() {
                assert!(
                    page.contains(&format!("href=\"#finding-{i}\"")),
                    "{} not linked",
                    finding.rule_id
                );
            }
        }
    }
}
