//! The daemon's status page (`/`): a small HTML summary of the merged last good result for
//! a person, with links to the machine endpoints. Every value that reaches the page goes
//! through [`escape`] (from `markup`, shared with `vpc_picture`), since resource names, tags
//! and error messages come from the account.
//!
//! The page draws a picture of each audited VPC ([`vpc_picture`]) from each region's last
//! good network, at most [`MAX_PICTURES`] of them; marked elements link to the finding rows
//! (`#finding-N`, N the finding's place in the list) or, past the listed ones, to `/findings`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

pub use super::markup::escape;
use crate::export::latest::{rfc3339, Latest};
use crate::export::vpc_picture::{self, FindingLink};
use crate::finding::Severity;

/// At most this many findings are listed on the page; `/findings` has them all.
const MAX_LISTED: usize = 500;

/// At most this many VPCs are drawn on the page, so a huge account keeps it small.
pub use super::latest::MAX_PICTURES;

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;margin-bottom:1.5em}\
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}\
th{background:#f3f3f3}.ok{color:#176f2c}.error,.stale{color:#b00020;font-weight:bold}\
.critical,.high{color:#b00020}.medium{color:#a35200}\
.picture{overflow-x:auto;margin-bottom:1.5em}tr:target{background:#fff3c4}";

/// Renders the status page.
pub fn render(latest: &Latest) -> String {
    let mut page = String::new();
    // Writing to a String cannot fail.
    let _ = write_page(&mut page, latest);
    page
}

fn write_page(out: &mut String, latest: &Latest) -> std::fmt::Result {
    writeln!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>vpc-auditor</title><style>{STYLE}</style></head><body>"
    )?;
    writeln!(
        out,
        "<h1>vpc-auditor {}</h1>",
        escape(env!("CARGO_PKG_VERSION"))
    )?;
    writeln!(
        out,
        "<p><a href=\"/findings\">/findings</a> (JSON) · <a href=\"/metrics\">/metrics</a> \
         (Prometheus) · <a href=\"/healthz\">/healthz</a> · <a href=\"/readyz\">/readyz</a></p>"
    )?;

    let Some(last) = latest.last_scan() else {
        writeln!(
            out,
            "<p>The first scan has not completed yet.</p></body></html>"
        )?;
        return Ok(());
    };
    let result = if last.error.is_some() {
        "<span class=\"error\">failed</span>"
    } else if last.complete {
        "<span class=\"ok\">complete</span>"
    } else {
        "<span class=\"error\">incomplete</span>"
    };
    writeln!(
        out,
        "<p>Last scan: {} ({:.3} s), {result}. Last complete scan: {}.</p>",
        escape(&rfc3339(last.at)),
        last.duration.as_secs_f64(),
        escape(
            &latest
                .last_success_at()
                .map(rfc3339)
                .unwrap_or_else(|| "never".into())
        ),
    )?;
    if let Some(error) = &last.error {
        writeln!(
            out,
            "<p class=\"error\">The last scan failed: {}</p>",
            escape(error)
        )?;
    }
    if latest.is_stale() {
        writeln!(
            out,
            "<p class=\"stale\">Some data is stale: the regions marked stale below show the \
             findings of their last good scan.</p>"
        )?;
    }

    writeln!(out, "<h2>Accounts and regions</h2>")?;
    writeln!(
        out,
        "<table><tr><th>account</th><th>region</th><th>status</th><th>data from</th>\
         <th>findings</th><th>error</th></tr>"
    )?;
    for region in latest.regions() {
        let status = if region.is_stale() {
            "<span class=\"stale\">stale</span>"
        } else {
            "<span class=\"ok\">ok</span>"
        };
        writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{status}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&region.account_id),
            escape(&region.region),
            escape(
                &region
                    .last_success_at
                    .map(rfc3339)
                    .unwrap_or_else(|| "never".into())
            ),
            region.findings.len(),
            escape(region.error.as_deref().unwrap_or("")),
        )?;
    }
    writeln!(out, "</table>")?;

    let findings = latest.findings();
    let mut by_severity: BTreeMap<Severity, usize> =
        Severity::ALL.iter().map(|s| (*s, 0)).collect();
    for finding in &findings {
        *by_severity.entry(finding.severity).or_default() += 1;
    }
    writeln!(out, "<h2>Findings by severity</h2>")?;
    writeln!(out, "<table><tr>")?;
    for severity in Severity::ALL.iter().rev() {
        write!(out, "<th class=\"{0}\">{0}</th>", severity.as_str())?;
    }
    writeln!(out, "<th>total</th></tr><tr>")?;
    for severity in Severity::ALL.iter().rev() {
        write!(
            out,
            "<td>{}</td>",
            by_severity.get(severity).copied().unwrap_or(0)
        )?;
    }
    writeln!(out, "<td>{}</td></tr></table>", findings.len())?;

    write_pictures(out, latest, &findings)?;

    writeln!(out, "<h2>Findings</h2>")?;
    if findings.is_empty() {
        writeln!(out, "<p>None.</p>")?;
    } else {
        writeln!(
            out,
            "<table><tr><th>severity</th><th>rule</th><th>account</th><th>region</th>\
             <th>VPC</th><th>resource</th><th>message</th></tr>"
        )?;
        for (i, finding) in findings.iter().take(MAX_LISTED).enumerate() {
            writeln!(
                out,
                "<tr id=\"finding-{i}\"><td class=\"{sev}\">{sev}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
                 <td>{}</td><td>{}</td></tr>",
                escape(&finding.rule_id),
                escape(&finding.account_id),
                escape(&finding.region),
                escape(finding.vpc_id.as_deref().unwrap_or("")),
                escape(&finding.resource_id),
                escape(&finding.message),
                sev = finding.severity.as_str(),
            )?;
        }
        writeln!(out, "</table>")?;
        if findings.len() > MAX_LISTED {
            writeln!(
                out,
                "<p>{} more in <a href=\"/findings\">/findings</a>.</p>",
                findings.len() - MAX_LISTED
            )?;
        }
    }
    writeln!(out, "</body></html>")
}

/// The VPC pictures, region by region, from each region's last good network.
fn write_pictures(
    out: &mut String,
    latest: &Latest,
    findings: &[&crate::finding::Finding],
) -> std::fmt::Result {
    let audited: usize = latest.regions().map(|r| r.vpcs.len()).sum();
    if audited == 0 {
        return Ok(());
    }
    writeln!(out, "<h2>VPCs</h2>")?;
    writeln!(
        out,
        "<p>Red outlines and badges mark elements with a finding (click to jump to it); dashed \
         red boxes are what is missing. A stale region shows its last good scan.</p>"
    )?;
    let links: Vec<FindingLink> = findings
        .iter()
        .enumerate()
        .map(|(i, finding)| FindingLink {
            finding,
            href: if i < MAX_LISTED {
                format!("#finding-{i}")
            } else {
                "/findings".to_string()
            },
        })
        .collect();
    let mut drawn = 0;
    for region in latest.regions() {
        let Some(network) = &region.network else {
            continue;
        };
        let ids: BTreeSet<&str> = region.vpcs.iter().map(|v| v.vpc_id.as_str()).collect();
        let here: Vec<FindingLink> = links
            .iter()
            .filter(|l| {
                l.finding.account_id == region.account_id && l.finding.region == region.region
            })
            .cloned()
            .collect();
        let stale = if region.is_stale() {
            format!(
                " <span class=\"stale\">stale: as of {}</span>",
                escape(
                    &region
                        .last_success_at
                        .map(rfc3339)
                        .unwrap_or_else(|| "never".into())
                )
            )
        } else {
            String::new()
        };
        for (vpc, svg) in vpc_picture::render_region(network, &ids, &here, MAX_PICTURES - drawn) {
            drawn += 1;
            writeln!(
                out,
                "<h3 id=\"vpc-{id}\">{id} <small>({}, {})</small>{stale}</h3>\n\
                 <div class=\"picture\">{svg}</div>",
                escape(&region.account_id),
                escape(&region.region),
                id = escape(&vpc),
            )?;
        }
    }
    if audited > drawn {
        writeln!(
            out,
            "<p class=\"note\">{} more VPC(s) not drawn: the page draws at most {MAX_PICTURES}. \
             Their findings are in the list below and in <a href=\"/findings\">/findings</a>; \
             <code>vpc-auditor --once --format html</code> draws them all.</p>",
            audited - drawn
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::latest::tests::{failed, output_of, region, snapshot};
    use std::time::Duration;

    #[test]
    fn escape_covers_the_five_html_specials() {
        assert_eq!(
            escape(r#"<a href="x">Tom & 'Jerry'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn page_before_the_first_scan_says_so_and_links_the_endpoints() {
        let page = render(&Latest::default());
        assert!(page.contains("has not completed yet"));
        for link in ["/findings", "/metrics", "/healthz", "/readyz"] {
            assert!(page.contains(&format!("href=\"{link}\"")), "{link}");
        }
    }

    #[test]
    fn page_shows_status_per_region_counts_and_escapes_values_from_the_account() {
        let account = crate::snapshot::builder::ACCOUNT;
        let mut evil = region("us-east-1", true);
        let evil_id = "vpc-<script>alert(1)</script>".to_string();
        evil.vpcs[0].id = evil_id.clone();
        evil.subnets
            .iter_mut()
            .for_each(|s| s.vpc_id = evil_id.clone());
        evil.route_tables
            .iter_mut()
            .for_each(|t| t.vpc_id = evil_id.clone());
        let mut broken = failed(account, "us-east-1", "ec2:DescribeVpcs");
        if let Some(e) = broken.error.as_mut() {
            e.message = "<b>AccessDenied</b>".into();
        }
        let mut latest = Latest::default();
        let first = output_of(snapshot(vec![evil, region("eu-west-1", false)]));
        assert!(first
            .report
            .findings
            .iter()
            .any(|f| f.vpc_id.as_deref() == Some(&evil_id)));
        latest.record(
            Ok(&first),
            "2026-01-01T00:00:00Z".parse().unwrap(),
            Duration::from_secs(3),
        );
        let second = output_of(snapshot(vec![broken, region("eu-west-1", false)]));
        latest.record(
            Ok(&second),
            "2026-01-01T00:05:00Z".parse().unwrap(),
            Duration::from_secs(3),
        );

        let page = render(&latest);
        assert!(!page.contains("<script>"), "{page}");
        assert!(
            page.contains("vpc-&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{page}"
        );
        assert!(!page.contains("<b>AccessDenied"));
        assert!(page.contains("&lt;b&gt;AccessDenied&lt;/b&gt;"));
        assert!(page.contains("incomplete"));
        assert!(page.contains("Some data is stale"));
        assert!(
            page.contains(
                "<td>us-east-1</td><td><span class=\"stale\">stale</span></td><td>2026-01-01T00:00:00Z</td>"
            ),
            "{page}"
        );
        assert!(page.contains(
            "<td>eu-west-1</td><td><span class=\"ok\">ok</span></td><td>2026-01-01T00:05:00Z</td>"
        ));
        let findings = latest.findings().len();
        assert!(findings > 0);
        assert!(page.contains(&format!("<td>{findings}</td></tr></table>")));
    }

    #[test]
    fn page_draws_each_vpc_with_marks_linking_to_the_finding_rows() {
        let mut latest = Latest::default();
        let out = output_of(snapshot(vec![region("us-east-1", true)]));
        latest.record(
            Ok(&out),
            "2026-01-01T00:00:00Z".parse().unwrap(),
            Duration::from_secs(1),
        );
        let page = render(&latest);
        assert!(page.contains("<h2>VPCs</h2>"));
        assert_eq!(page.matches("<svg ").count(), 1);
        assert!(page.contains("data-vpc=\"vpc-good\""));
        // The /20 VPC CIDR finding: a row with an id, and a mark in the picture linking to it.
        assert!(page.contains("<tr id=\"finding-0\">"), "{page}");
        assert!(page.contains("href=\"#finding-0\""), "{page}");
    }

    #[test]
    fn a_stale_region_keeps_its_picture_and_says_since_when() {
        let account = crate::snapshot::builder::ACCOUNT;
        let mut latest = Latest::default();
        let good = output_of(snapshot(vec![region("us-east-1", false)]));
        latest.record(
            Ok(&good),
            "2026-01-01T00:00:00Z".parse().unwrap(),
            Duration::from_secs(1),
        );
        let broken = output_of(snapshot(vec![failed(
            account,
            "us-east-1",
            "ec2:DescribeVpcs",
        )]));
        latest.record(
            Ok(&broken),
            "2026-01-01T00:05:00Z".parse().unwrap(),
            Duration::from_secs(1),
        );
        let page = render(&latest);
        assert!(page.contains("data-vpc=\"vpc-good\""));
        assert!(page.contains("stale: as of 2026-01-01T00:00:00Z"), "{page}");
    }

    #[test]
    fn a_huge_account_draws_at_most_max_pictures_and_counts_the_rest() {
        let regions = (0..MAX_PICTURES + 5)
            .map(|i| region(&format!("xx-test-{i}"), false))
            .collect();
        let mut latest = Latest::default();
        latest.record(
            Ok(&output_of(snapshot(regions))),
            "2026-01-01T00:00:00Z".parse().unwrap(),
            Duration::from_secs(1),
        );
        let page = render(&latest);
        assert_eq!(page.matches("<svg ").count(), MAX_PICTURES);
        assert!(page.contains("5 more VPC(s) not drawn"), "{page}");
    }
}
