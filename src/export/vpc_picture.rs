//! The VPC picture: one audited VPC drawn as a self-contained SVG (no script, no external
//! asset), for the `--format html` report and the daemon's status page.
//!
//! Availability zones are columns. Each column holds, top to bottom, the public subnets, the
//! NAT gateways placed in that zone, the private subnets (with a line from each to the NAT
//! gateway its default route targets) and one chip per interface endpoint saying whether
//! the endpoint has a subnet in that zone. The internet gateway sits above the columns, the
//! gateway endpoints (S3) below them. Whether a subnet is public or private is the rule
//! engine's own answer ([`RegionTopology`]), so the picture and the findings cannot disagree.
//!
//! Every element a finding is about gets a red outline and a badge, and links to the
//! finding's row (`href` chosen by the caller, e.g. `#finding-3`). What is missing is drawn
//! as a dashed red gap with a label ("AZ us-east-1c: no NAT", "ecr.dkr: missing in AZ
//! us-east-1b", "no S3 gateway endpoint"). A finding that no element stands for is shown
//! as a pill in the header, so none is lost. Elements carry `data-kind` and `data-id` (or
//! `data-gap`, `data-az`, `data-service`) attributes for tests and a `<title>` tooltip.
//!
//! The drawing is bounded: at most [`MAX_AZ_COLUMNS`] columns, [`MAX_PER_CELL`] subnets or
//! NAT gateways per cell and [`MAX_ENDPOINT_ROWS`] endpoint rows; the rest is counted in a
//! "+N more" note. Every value from the account goes through [`escape`].
//!
//! This file holds the public API ([`render`], [`render_region`], [`FindingLink`]) and the
//! tests; the rest is split along its seams: `layout` (columns, endpoint rows, sizes, and the
//! picture's state), `draw` (one method per kind of element) and `svg` (the primitives and
//! the legend). The submodules share this file's imports through `use super::*`.

use std::collections::{BTreeMap, BTreeSet};

use super::markup::escape;
use crate::finding::{Finding, ResourceType};
use crate::rules::catalogue;
use crate::rules::pack::SubnetRole;
use crate::rules::topology::{RegionTopology, SubnetView, VpcView};
use crate::snapshot::{NatGateway, RegionSnapshot, VpcEndpoint};

/// At most this many AZ columns are drawn.
pub const MAX_AZ_COLUMNS: usize = 8;
/// At most this many subnets (or NAT gateways) are drawn in one cell of a column.
pub const MAX_PER_CELL: usize = 6;
/// At most this many interface endpoint rows are drawn.
pub const MAX_ENDPOINT_ROWS: usize = 16;

/// A finding and where its row is, e.g. `#finding-3`.
#[derive(Debug, Clone)]
pub struct FindingLink<'a> {
    pub finding: &'a Finding,
    pub href: String,
}

mod draw;
mod layout;
mod svg;

use layout::*;
use svg::*;

/// Draws one VPC of `topo` with `findings` (those of other VPCs are ignored).
pub fn render(topo: &RegionTopology, view: &VpcView, findings: &[FindingLink]) -> String {
    let account = &topo.region.account_id;
    let region = &topo.region.region;
    let findings: Vec<&FindingLink> = findings
        .iter()
        .filter(|l| {
            l.finding.vpc_id.as_deref() == Some(view.vpc.id.as_str())
                && l.finding.account_id == *account
                && l.finding.region == *region
        })
        .collect();
    let mut picture = Picture::new(topo, view, findings);
    picture.draw()
}

/// Draws the VPCs of `region` whose ids are in `vpc_ids`, in the region's order, at most
/// `limit` of them: `(vpc id, svg)`. The region's topology is indexed once, and each VPC
/// gets only its own findings. A region whose collection failed draws nothing: its
/// resource lists are not the state of the region.
pub fn render_region(
    region: &RegionSnapshot,
    vpc_ids: &BTreeSet<&str>,
    findings: &[FindingLink],
    limit: usize,
) -> Vec<(String, String)> {
    if region.error.is_some() || limit == 0 {
        return Vec::new();
    }
    let mut by_vpc: BTreeMap<&str, Vec<FindingLink>> = BTreeMap::new();
    for link in findings {
        if let Some(vpc) = link.finding.vpc_id.as_deref() {
            if vpc_ids.contains(vpc) {
                by_vpc.entry(vpc).or_default().push(link.clone());
            }
        }
    }
    let topo = RegionTopology::build(region);
    topo.vpcs
        .iter()
        .filter(|v| vpc_ids.contains(v.vpc.id.as_str()))
        .take(limit)
        .map(|view| {
            let links = by_vpc
                .get(view.vpc.id.as_str())
                .map(Vec::as_slice)
                .unwrap_or_default();
            (view.vpc.id.clone(), render(&topo, view, links))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::test_support::run;
    use crate::snapshot::builder::compliant_vpc;
    use crate::snapshot::Snapshot;

    /// The picture of the snapshot's first VPC, with the findings evaluation gives it,
    /// each linked as `#finding-N`; and those findings.
    fn picture(snapshot: &Snapshot) -> (String, Vec<Finding>) {
        let findings = run(snapshot).findings;
        let links: Vec<FindingLink> = findings
            .iter()
            .enumerate()
            .map(|(i, finding)| FindingLink {
                finding,
                href: format!("#finding-{i}"),
            })
            .collect();
        let topo = RegionTopology::build(&snapshot.regions[0]);
        let svg = render(&topo, &topo.vpcs[0], &links);
        (svg, findings)
    }

    /// The opening tags (`<g ...>`) that carry every one of `attrs`.
    fn elements<'s>(svg: &'s str, attrs: &[&str]) -> Vec<&'s str> {
        svg.split('<')
            .filter(|tag| attrs.iter().all(|a| tag.contains(a)))
            .collect()
    }

    fn index_of(findings: &[Finding], rule: &str, resource: &str) -> usize {
        findings
            .iter()
            .position(|f| f.rule_id == rule && f.resource_id == resource)
            .unwrap_or_else(|| panic!("no {rule} finding on {resource}: {findings:#?}"))
    }

    #[test]
    fn compliant_vpc_draws_every_element_unmarked_and_no_gap() {
        let (svg, findings) = picture(&compliant_vpc().build());
        assert!(findings.is_empty(), "{findings:#?}");
        assert!(svg.starts_with("<svg class=\"vpc-picture\""));
        for az in ["us-east-1a", "us-east-1b", "us-east-1c"] {
            assert_eq!(
                elements(&svg, &["data-kind=\"az\"", &format!("data-az=\"{az}\"")]).len(),
                1,
                "{az}"
            );
        }
        for letter in ["a", "b", "c"] {
            let public = format!("data-id=\"subnet-pub-{letter}\"");
            let private = format!("data-id=\"subnet-priv-{letter}\"");
            assert_eq!(
                elements(
                    &svg,
                    &["data-kind=\"subnet\"", &public, "data-role=\"public\""]
                )
                .len(),
                1
            );
            assert_eq!(
                elements(
                    &svg,
                    &["data-kind=\"subnet\"", &private, "data-role=\"private\""]
                )
                .len(),
                1
            );
            assert_eq!(
                elements(
                    &svg,
                    &["data-kind=\"nat\"", &format!("data-id=\"nat-{letter}\"")]
                )
                .len(),
                1
            );
            // The private subnet's route to its own AZ's NAT gateway.
            assert_eq!(
                elements(
                    &svg,
                    &[
                        "line data-kind=\"route\"",
                        &format!("data-from=\"subnet-priv-{letter}\""),
                        &format!("data-to=\"nat-{letter}\""),
                        "data-cross-az=\"false\""
                    ]
                )
                .len(),
                1
            );
        }
        assert_eq!(elements(&svg, &["data-kind=\"igw\"", "igw-good"]).len(), 1);
        assert_eq!(
            elements(
                &svg,
                &["data-kind=\"gateway-endpoint\"", "data-id=\"vpce-s3\""]
            )
            .len(),
            1
        );
        assert_eq!(elements(&svg, &["data-kind=\"s3-route\""]).len(), 3);
        for service in ["logs", "ecr.dkr", "ec2"] {
            let attr = format!("data-service=\"{service}\"");
            assert_eq!(elements(&svg, &["data-kind=\"endpoint\"", &attr]).len(), 1);
            assert_eq!(
                elements(&svg, &["data-kind=\"endpoint-az\"", &attr]).len(),
                3
            );
        }
        assert!(elements(&svg, &["data-kind=\"gap\""]).is_empty(), "{svg}");
        assert!(!svg.contains("data-findings"));
        assert!(!svg.contains("finding-badge"));
    }

    #[test]
    fn missing_nat_in_az_c_is_a_no_nat_gap_in_column_c_linked_to_the_finding() {
        let snapshot = compliant_vpc()
            .with(|r| {
                r.nat_gateways.retain(|n| n.id != "nat-c");
                let table = r
                    .route_tables
                    .iter_mut()
                    .find(|t| t.id == "rtb-private-c")
                    .unwrap();
                table.routes[1].target = Some("nat-b".into());
            })
            .build();
        let (svg, findings) = picture(&snapshot);
        let same_az = index_of(&findings, "nat.same_az", "subnet-priv-c");
        let gaps = elements(&svg, &["data-gap=\"no-nat\"", "data-az=\"us-east-1c\""]);
        assert_eq!(gaps.len(), 1, "{svg}");
        assert!(gaps[0].contains(&format!("data-findings=\"finding-{same_az}\"")));
        assert!(svg.contains(&format!(
            "<a href=\"#finding-{same_az}\"><g data-kind=\"gap\" data-gap=\"no-nat\""
        )));
        assert!(svg.contains(">AZ c: no NAT</text>"), "{svg}");
        // Only column c lacks a NAT.
        assert_eq!(elements(&svg, &["data-gap=\"no-nat\""]).len(), 1);
        // The cross-AZ route is drawn, and the subnet itself is marked.
        assert_eq!(
            elements(
                &svg,
                &[
                    "data-from=\"subnet-priv-c\"",
                    "data-to=\"nat-b\"",
                    "data-cross-az=\"true\""
                ]
            )
            .len(),
            1
        );
        let subnet = elements(&svg, &["data-kind=\"subnet\"", "data-id=\"subnet-priv-c\""]);
        assert!(subnet[0].contains("class=\"has-finding\""), "{}", subnet[0]);
    }

    #[test]
    fn missing_s3_gateway_and_endpoint_az_are_gaps_linked_to_their_findings() {
        let snapshot = compliant_vpc()
            .with(|r| {
                r.vpc_endpoints.retain(|e| e.id != "vpce-s3");
                for e in r.vpc_endpoints.iter_mut().filter(|e| e.id == "vpce-ecr") {
                    e.subnet_ids.retain(|s| s != "subnet-priv-b");
                }
            })
            .build();
        let (svg, findings) = picture(&snapshot);
        let s3 = index_of(&findings, "endpoint.s3_gateway", "vpc-good");
        let coverage = index_of(&findings, "endpoint.interface_az_coverage", "vpce-ecr");
        let gap = elements(&svg, &["data-gap=\"no-s3-gateway\""]);
        assert_eq!(gap.len(), 1);
        assert!(gap[0].contains(&format!("finding-{s3}")));
        assert!(svg.contains(">no S3 gateway endpoint</text>"));
        let gap = elements(
            &svg,
            &[
                "data-gap=\"endpoint-az\"",
                "data-service=\"ecr.dkr\"",
                "data-az=\"us-east-1b\"",
            ],
        );
        assert_eq!(gap.len(), 1, "{svg}");
        assert!(gap[0].contains(&format!("finding-{coverage}")));
        assert!(svg.contains(">ecr.dkr: missing in AZ b</text>"));
        // The endpoint itself carries the finding too; its other AZs are covered.
        let endpoint = elements(&svg, &["data-kind=\"endpoint\"", "data-id=\"vpce-ecr\""]);
        assert!(endpoint[0].contains(&format!("finding-{coverage}")));
        assert_eq!(
            elements(
                &svg,
                &["data-kind=\"endpoint-az\"", "data-service=\"ecr.dkr\""]
            )
            .len(),
            2
        );
    }

    #[test]
    fn a_service_without_any_endpoint_is_a_gap_row_with_a_gap_per_az() {
        let snapshot = compliant_vpc()
            .with(|r| r.vpc_endpoints.retain(|e| e.id != "vpce-ecr"))
            .build();
        let (svg, findings) = picture(&snapshot);
        let required = index_of(&findings, "endpoint.interface_required", "vpc-good");
        let row = elements(
            &svg,
            &["data-gap=\"endpoint-missing\"", "data-service=\"ecr.dkr\""],
        );
        assert_eq!(row.len(), 1, "{svg}");
        assert!(row[0].contains(&format!("finding-{required}")));
        assert_eq!(
            elements(
                &svg,
                &["data-gap=\"endpoint-az\"", "data-service=\"ecr.dkr\""]
            )
            .len(),
            3
        );
    }

    #[test]
    fn every_finding_of_the_vpc_is_linked_from_the_picture() {
        // Small private subnets, DNS hostnames off, a NAT in a private subnet.
        let snapshot = compliant_vpc()
            .with(|r| {
                r.vpcs[0].enable_dns_hostnames = Some(false);
                r.subnets
                    .iter_mut()
                    .filter(|s| s.id == "subnet-priv-a")
                    .for_each(|s| s.cidr_block = Some("10.0.0.0/24".into()));
                r.nat_gateways[2].subnet_id = Some("subnet-priv-c".into());
            })
            .build();
        let (svg, findings) = picture(&snapshot);
        assert!(findings.len() >= 3, "{findings:#?}");
        for (i, finding) in findings.iter().enumerate() {
            assert!(
                svg.contains(&format!("href=\"#finding-{i}\"")),
                "finding {i} ({}) not linked",
                finding.rule_id
            );
        }
        // A VPC-wide finding with no element of its own is a pill in the header.
        let dns = index_of(&findings, "vpc.dns_attributes", "vpc-good");
        assert_eq!(
            elements(
                &svg,
                &["data-kind=\"finding-pill\"", &format!("finding-{dns}")]
            )
            .len(),
            1
        );
        let nat = index_of(&findings, "nat.in_public_subnet", "nat-c");
        assert!(
            elements(&svg, &["data-kind=\"nat\"", "data-id=\"nat-c\""])[0]
                .contains(&format!("finding-{nat}"))
        );
    }

    #[test]
    fn findings_of_other_vpcs_are_not_drawn() {
        let snapshot = compliant_vpc().build();
        let mut other = run(&compliant_vpc()
            .with(|r| r.vpcs[0].enable_dns_hostnames = Some(false))
            .build())
        .findings;
        assert!(!other.is_empty());
        other
            .iter_mut()
            .for_each(|f| f.vpc_id = Some("vpc-other".into()));
        let links: Vec<FindingLink> = other
            .iter()
            .map(|finding| FindingLink {
                finding,
                href: "#x".into(),
            })
            .collect();
        let topo = RegionTopology::build(&snapshot.regions[0]);
        let svg = render(&topo, &topo.vpcs[0], &links);
        assert!(!svg.contains("href=\"#x\""));
    }

    #[test]
    fn account_text_is_escaped() {
        let snapshot = compliant_vpc()
            .with(|r| {
                r.vpcs[0]
                    .tags
                    .insert("Name".into(), "<script>alert('x')</script>".into());
                r.subnets[0].cidr_block = Some("\"><img src=x>".into());
            })
            .build();
        let (svg, _) = picture(&snapshot);
        assert!(!svg.contains("<script"), "{svg}");
        assert!(!svg.contains("<img"));
        assert!(svg.contains("&lt;script&gt;"));
    }

    #[test]
    fn many_subnets_in_one_az_are_bounded_with_a_count_of_the_rest() {
        let snapshot = compliant_vpc()
            .with(|r| {
                for i in 0..40 {
                    r.subnets.push(crate::snapshot::Subnet {
                        id: format!("subnet-extra-{i:02}"),
                        vpc_id: "vpc-good".into(),
                        availability_zone: "us-east-1a".into(),
                        cidr_block: Some(format!("10.0.{}.0/28", 210 + i)),
                        ..Default::default()
                    });
                }
            })
            .build();
        let (svg, _) = picture(&snapshot);
        let drawn = elements(&svg, &["data-kind=\"subnet\"", "data-az=\"us-east-1a\""]).len();
        // Public: subnet-pub-a; private: priv-a and the 40 extra ones (main table: no
        // default route, so private), drawn up to the cap.
        assert_eq!(drawn, 1 + MAX_PER_CELL);
        assert!(svg.contains(&format!("+{} more private subnets", 41 - MAX_PER_CELL)));
        assert!(svg.len() < 200_000, "{}", svg.len());
    }

    #[test]
    fn short_az_keeps_only_the_zone_letter() {
        assert_eq!(short_az("us-east-1c"), "c");
        assert_eq!(short_az("local-zone"), "local-zone");
        assert_eq!(short_az(""), "");
    }
}
