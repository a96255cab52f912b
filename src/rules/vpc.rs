//! VPC-wide rules: AZ count, CIDR size, internet gateway, DNS attributes, public and
//! private subnets in every AZ, and corporate egress. Each finding's resource is the VPC.
//!
//! The AZ rules count only the data plane's subnets (public and private, in availability
//! zones): isolated and infrastructure subnets, Local and Wavelength Zones, and the
//! undeclared subnets of a declared data plane do not count.

use std::collections::BTreeSet;

use serde_json::json;

use super::catalogue;
use super::pack::{AzCount, CorporateEgress, MaxPrefix, NoParams, SubnetRole};
use super::topology::{Egress, RegionTopology, VpcView};
use super::{Rule, Sink};

pub const AZ_COUNT: Rule<AzCount> = (catalogue::VPC_AZ_COUNT, az_count);
pub const CIDR_SIZE: Rule<MaxPrefix> = (catalogue::VPC_CIDR_SIZE, cidr_size);
pub const IGW_ATTACHED: Rule<NoParams> = (catalogue::VPC_IGW_ATTACHED, igw_attached);
pub const DNS_ATTRIBUTES: Rule<NoParams> = (catalogue::VPC_DNS_ATTRIBUTES, dns_attributes);
pub const PUBLIC_SUBNET_PER_AZ: Rule<NoParams> =
    (catalogue::VPC_PUBLIC_SUBNET_PER_AZ, public_subnet_per_az);
pub const PRIVATE_SUBNET_PER_AZ: Rule<NoParams> =
    (catalogue::VPC_PRIVATE_SUBNET_PER_AZ, private_subnet_per_az);
pub const CORPORATE_EGRESS: Rule<CorporateEgress> =
    (catalogue::VPC_CORPORATE_EGRESS, corporate_egress);

/// Private subnets that leave through a deliberate corporate design (a transit gateway, a
/// virtual private gateway, Cloud WAN, a NAT instance or a firewall endpoint) rather than
/// the NAT gateway the vendor recommends: one low finding per VPC, naming each path, with
/// no remediation that would bypass it. Kinds in `accepted_egress` are not reported.
fn corporate_egress(
    view: &VpcView,
    topo: &RegionTopology,
    settings: &CorporateEgress,
    sink: &mut Sink,
) {
    let accepted = settings.accepted_egress();
    let mut paths: std::collections::BTreeMap<(&str, &str), Vec<&str>> = Default::default();
    let mut any_private = false;
    for subnet in view.subnets_with_role(SubnetRole::Private) {
        any_private = true;
        if let Egress::Reaches { kind, target } = view.egress(topo, subnet) {
            if kind.is_corporate() && !accepted.contains(&kind) {
                paths
                    .entry((kind.as_str(), target))
                    .or_default()
                    .push(subnet.subnet.id.as_str());
            }
        }
    }
    if !any_private {
        return;
    }
    sink.evaluated(&view.vpc.id);
    if paths.is_empty() {
        return;
    }
    let vpc = &view.vpc.id;
    let targets: Vec<&str> = paths
        .keys()
        .map(|(_, t)| *t)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let kinds: BTreeSet<&str> = paths.keys().map(|(k, _)| *k).collect();
    let details: Vec<serde_json::Value> = paths
        .iter()
        .map(|((kind, target), subnets)| {
            json!({ "egress_kind": kind, "target": target, "private_subnets": subnets })
        })
        .collect();
    sink.report(
        vpc,
        format!(
            "VPC {vpc}: private subnets leave through {}, not a NAT gateway",
            targets.join(", ")
        ),
        format!(
            "Nothing to change if this is the corporate egress by design: make sure it allows \
             the vendor's traffic (image registries, the control plane), then accept it with \
             rule_overrides: {{vpc.corporate_egress: {{accepted_egress: [{}]}}}} in the config",
            kinds.into_iter().collect::<Vec<_>>().join(", ")
        ),
        json!({ "egress": details }),
    );
}

fn az_count(view: &VpcView, topo: &RegionTopology, settings: &AzCount, sink: &mut Sink) {
    sink.evaluated(&view.vpc.id);
    let azs = view.azs();
    let min = settings.min_azs();
    if (azs.len() as u64) < u64::from(min) {
        let vpc = &view.vpc.id;
        let more = u64::from(min) - azs.len() as u64;
        // The region's other availability zones, when the snapshot lists them.
        let candidates: Vec<&str> = topo
            .region
            .availability_zones
            .iter()
            .filter(|z| {
                z.zone_type
                    .as_deref()
                    .is_none_or(|t| t == "availability-zone")
            })
            .filter(|z| z.state.as_deref().is_none_or(|s| s == "available"))
            .map(|z| z.name.as_str())
            .filter(|z| !azs.contains(z))
            .collect();
        let zones = if candidates.is_empty() {
            "ZONE (one the VPC does not use yet)".to_string()
        } else {
            format!("one of {}", candidates.join(", "))
        };
        let free = super::cidr::free_block(
            &super::cidr::vpc_cidrs(view.vpc),
            &super::cidr::used_by_subnets(topo.region, vpc),
            24,
        );
        let space = match free {
            Some(block) => format!("free space of the VPC such as {block}"),
            None => "a secondary CIDR: the VPC has no free /24 left".to_string(),
        };
        sink.report(
            vpc,
            format!(
                "VPC {vpc} has subnets in {} availability zone(s); at least {min} are required",
                azs.len()
            ),
            format!(
                "Add a public and a private subnet in {more} more zone(s) ({zones}), from {space}: \
                 aws ec2 create-subnet --vpc-id {vpc} --availability-zone ZONE --cidr-block BLOCK, each with \
                 its route table, NAT gateway and endpoints like the other zones"
            ),
            json!({ "availability_zones": azs, "az_count": azs.len(), "min_azs": min }),
        );
    }
}

/// The VPC's address space is judged by its largest IPv4 CIDR block, primary or
/// secondary: the private subnets can live in a secondary block, and adding one is the only
/// way to grow a VPC, so it is also what the fix does.
fn cidr_size(view: &VpcView, topo: &RegionTopology, settings: &MaxPrefix, sink: &mut Sink) {
    sink.evaluated(&view.vpc.id);
    let vpc = &view.vpc.id;
    let max = settings.max_prefix_length().0;
    let blocks = super::cidr::vpc_cidrs(view.vpc);
    let listed: Vec<String> = blocks.iter().map(|b| b.to_string()).collect();
    match blocks.iter().map(|b| b.prefix()).min() {
        Some(largest) if largest <= max => {}
        Some(largest) => {
            let add = match super::cidr::secondary_cidr(topo.region, view.vpc, max) {
                Some(block) => format!(
                    "add a secondary CIDR for the private subnets (the first /{max} no VPC of the region \
                     uses; check it against peered networks): aws ec2 associate-vpc-cidr-block --vpc-id {vpc} --cidr-block {block}"
                ),
                None => format!(
                    "add a secondary /{max} CIDR that AWS accepts next to {} and no connected network uses \
                     (aws ec2 associate-vpc-cidr-block --vpc-id {vpc} --cidr-block BLOCK)",
                    listed[0]
                ),
            };
            sink.report(
                vpc,
                format!(
                    "VPC {vpc} CIDR {} is smaller than the recommended /{max}",
                    listed.join(", ")
                ),
                format!("A VPC's CIDR cannot be resized; create a /{max} VPC, or {add}"),
                json!({
                    "cidr_block": view.vpc.cidr_block,
                    "cidr_blocks": listed,
                    "prefix_length": largest,
                    "max_prefix_length": max,
                }),
            )
        }
        None => sink.report(
            vpc,
            format!(
                "VPC {vpc} has no readable IPv4 CIDR ({:?}), so its size cannot be verified",
                view.vpc.cidr_block.as_deref().unwrap_or("")
            ),
            "Check the VPC's CIDR blocks in the console or with aws ec2 describe-vpcs".to_string(),
            json!({ "cidr_block": view.vpc.cidr_block, "max_prefix_length": max }),
        ),
    }
}

fn igw_attached(view: &VpcView, _: &RegionTopology, _: &NoParams, sink: &mut Sink) {
    sink.evaluated(&view.vpc.id);
    let vpc = &view.vpc.id;
    let attached: Vec<&str> = view
        .internet_gateways
        .iter()
        .filter(|igw| view.has_attached_igw(&igw.id))
        .map(|igw| igw.id.as_str())
        .collect();
    if attached.is_empty() {
        sink.report(
            vpc,
            format!("VPC {vpc} has no internet gateway attached"),
            format!(
                "aws ec2 create-internet-gateway, then aws ec2 attach-internet-gateway \
                 --vpc-id {vpc} --internet-gateway-id <igw-id>, then route the public subnets' 0.0.0.0/0 to it"
            ),
            json!({ "attached_internet_gateways": attached }),
        );
        return;
    }
    let routed = view
        .subnets
        .iter()
        .any(|s| s.default_target().is_some_and(|t| attached.contains(&t)));
    if !routed {
        sink.report(
            vpc,
            format!(
                "VPC {vpc} has internet gateway {} attached, but no subnet routes 0.0.0.0/0 to it",
                attached.join(", ")
            ),
            format!(
                "aws ec2 create-route --route-table-id <public route table> \
                 --destination-cidr-block 0.0.0.0/0 --gateway-id {}",
                attached[0]
            ),
            json!({ "attached_internet_gateways": attached }),
        );
    }
}

fn dns_attributes(view: &VpcView, _: &RegionTopology, _: &NoParams, sink: &mut Sink) {
    sink.evaluated(&view.vpc.id);
    let vpc = &view.vpc.id;
    let support = view.vpc.enable_dns_support;
    let hostnames = view.vpc.enable_dns_hostnames;
    // An attribute that was not collected is not known to be on: fail closed.
    let mut off = Vec::new();
    if support != Some(true) {
        off.push("enableDnsSupport");
    }
    if hostnames != Some(true) {
        off.push("enableDnsHostnames");
    }
    if off.is_empty() {
        return;
    }
    let fixes: Vec<String> = off
        .iter()
        .map(|attr| {
            let flag = if *attr == "enableDnsSupport" {
                "--enable-dns-support"
            } else {
                "--enable-dns-hostnames"
            };
            format!("aws ec2 modify-vpc-attribute --vpc-id {vpc} {flag} '{{\"Value\":true}}'")
        })
        .collect();
    sink.report(
        vpc,
        format!(
            "VPC {vpc} does not have {} on; Private DNS for interface endpoints needs both",
            off.join(" and ")
        ),
        fixes.join(" && "),
        json!({ "enable_dns_support": support, "enable_dns_hostnames": hostnames }),
    );
}

fn public_subnet_per_az(view: &VpcView, topo: &RegionTopology, _: &NoParams, sink: &mut Sink) {
    subnet_per_az(view, topo, SubnetRole::Public, sink);
}

fn private_subnet_per_az(view: &VpcView, topo: &RegionTopology, _: &NoParams, sink: &mut Sink) {
    subnet_per_az(view, topo, SubnetRole::Private, sink);
}

/// Every AZ the VPC uses must have a subnet of `role`. A public subnet only counts when it
/// actually routes to an attached internet gateway.
fn subnet_per_az(view: &VpcView, topo: &RegionTopology, role: SubnetRole, sink: &mut Sink) {
    sink.evaluated(&view.vpc.id);
    let vpc = &view.vpc.id;
    let all = view.azs();
    let covered: BTreeSet<&str> = view
        .subnets_with_role(role)
        .filter(|s| s.in_availability_zone)
        .filter(|s| {
            role == SubnetRole::Private
                || s.default_target().is_some_and(|t| view.has_attached_igw(t))
        })
        .map(|s| s.az())
        .collect();
    let lacking: Vec<&str> = all.difference(&covered).copied().collect();
    if covered.is_empty() || !lacking.is_empty() {
        let role = role.as_str();
        let message = if covered.is_empty() {
            format!("VPC {vpc} has no {role} subnet")
        } else {
            format!("VPC {vpc} has no {role} subnet in {}", lacking.join(", "))
        };
        // Only a size that fits: the size of the VPC's subnets of this role, and a block
        // that is free inside its CIDRs.
        let siblings = view
            .subnets_with_role(if role == "public" {
                SubnetRole::Public
            } else {
                SubnetRole::Private
            })
            .filter_map(|s| {
                s.subnet
                    .cidr_block
                    .as_deref()?
                    .parse::<ipnetwork::Ipv4Network>()
                    .ok()
            })
            .map(|n| n.prefix())
            .max()
            .unwrap_or(24);
        let free = super::cidr::free_block(
            &super::cidr::vpc_cidrs(view.vpc),
            &super::cidr::used_by_subnets(topo.region, vpc),
            siblings,
        );
        let block = match free {
            Some(block) => format!("{block} (a free /{siblings})"),
            None => {
                format!("a free /{siblings}: the VPC has none left, add a secondary CIDR first")
            }
        };
        let zones = lacking.join(", ");
        let remediation = if role == "public" {
            format!(
                "In {zones}: aws ec2 create-subnet --vpc-id {vpc} --availability-zone ZONE --cidr-block {block}, \
                 associated with a route table whose 0.0.0.0/0 targets the internet gateway (--format fix-script plans it)"
            )
        } else {
            format!(
                "In {zones}: aws ec2 create-subnet --vpc-id {vpc} --availability-zone ZONE --cidr-block {block}, \
                 associated with a route table whose 0.0.0.0/0 targets that zone's NAT gateway, and added to the \
                 S3 gateway and interface endpoints"
            )
        };
        sink.report(
            vpc,
            message,
            remediation,
            json!({ "availability_zones_lacking": lacking, "availability_zones": all }),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;
    use crate::snapshot::builder::compliant_vpc;
    use crate::snapshot::Subnet;

    fn drop_subnets_in(az: &'static str) -> impl FnOnce(&mut crate::snapshot::RegionSnapshot) {
        move |r| r.subnets.retain(|s| s.availability_zone != az)
    }

    #[test]
    fn two_azs_fire_az_count_with_the_zones_in_details() {
        let snapshot = compliant_vpc().with(drop_subnets_in("us-east-1c")).build();
        let found = findings_of(&snapshot, "vpc.az_count");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].resource_id, "vpc-good");
        assert_eq!(found[0].details["az_count"], 2);
        assert_eq!(found[0].details["availability_zones"][1], "us-east-1b");
    }

    #[test]
    fn three_azs_pass_az_count() {
        assert!(findings_of(&compliant_vpc().build(), "vpc.az_count").is_empty());
    }

    #[test]
    fn slash_20_vpc_fires_cidr_size_and_slash_16_or_larger_passes() {
        let small = compliant_vpc()
            .with(|r| {
                r.vpcs[0].cidr_block = Some("10.0.0.0/20".into());
                r.vpcs[0].cidr_blocks = vec!["10.0.0.0/20".into()];
            })
            .build();
        let found = findings_of(&small, "vpc.cidr_size");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].details["prefix_length"], 20);
        // The fix names a block AWS would take, and no placeholder.
        assert!(
            found[0]
                .remediation
                .contains("associate-vpc-cidr-block --vpc-id vpc-good --cidr-block 10.1.0.0/16"),
            "{}",
            found[0].remediation
        );
        let large = compliant_vpc()
            .with(|r| {
                r.vpcs[0].cidr_block = Some("10.0.0.0/15".into());
                r.vpcs[0].cidr_blocks = vec!["10.0.0.0/15".into()];
            })
            .build();
        assert!(findings_of(&large, "vpc.cidr_size").is_empty());
    }

    /// Semantic change (issue 21): a secondary CIDR counts, so the fix the rule offers
    /// (associate a secondary /16) closes it.
    #[test]
    fn a_secondary_cidr_of_the_recommended_size_passes_cidr_size() {
        let with_secondary = compliant_vpc()
            .with(|r| {
                r.vpcs[0].cidr_block = Some("10.0.0.0/20".into());
                r.vpcs[0].cidr_blocks = vec!["10.0.0.0/20".into(), "10.1.0.0/16".into()];
            })
            .build();
        assert!(findings_of(&with_secondary, "vpc.cidr_size").is_empty());
        let two_small = compliant_vpc()
            .with(|r| {
                r.vpcs[0].cidr_block = Some("10.0.0.0/17".into());
                r.vpcs[0].cidr_blocks = vec!["10.0.0.0/17".into(), "10.0.128.0/17".into()];
            })
            .build();
        assert_eq!(findings_of(&two_small, "vpc.cidr_size").len(), 1);
    }

    #[test]
    fn unreadable_vpc_cidr_fails_closed() {
        let snapshot = compliant_vpc()
            .with(|r| {
                r.vpcs[0].cidr_block = None;
                r.vpcs[0].cidr_blocks = vec!["not-a-cidr".into()];
            })
            .build();
        assert_eq!(findings_of(&snapshot, "vpc.cidr_size").len(), 1);
    }

    #[test]
    fn missing_igw_fires_igw_attached() {
        let snapshot = compliant_vpc()
            .with(|r| r.internet_gateways.clear())
            .build();
        let found = findings_of(&snapshot, "vpc.igw_attached");
        assert_eq!(found.len(), 1);
        assert!(found[0].message.contains("no internet gateway attached"));
    }

    #[test]
    fn attached_igw_with_no_route_to_it_fires_igw_attached() {
        let snapshot = compliant_vpc()
            .with(|r| {
                let public = r
                    .route_tables
                    .iter_mut()
                    .find(|t| t.id == "rtb-public")
                    .unwrap();
                public
                    .routes
                    .retain(|route| route.destination_cidr.as_deref() != Some("0.0.0.0/0"));
            })
            .build();
        let found = findings_of(&snapshot, "vpc.igw_attached");
        assert_eq!(found.len(), 1);
        assert!(
            found[0].message.contains("no subnet routes"),
            "{}",
            found[0].message
        );
    }

    #[test]
    fn detached_igw_does_not_count() {
        let snapshot = compliant_vpc()
            .with(|r| r.internet_gateways[0].attachments[0].state = Some("detached".into()))
            .build();
        assert_eq!(findings_of(&snapshot, "vpc.igw_attached").len(), 1);
    }

    #[test]
    fn dns_hostnames_off_fires_dns_attributes_and_unknown_counts_as_off() {
        let off = compliant_vpc()
            .with(|r| r.vpcs[0].enable_dns_hostnames = Some(false))
            .build();
        let found = findings_of(&off, "vpc.dns_attributes");
        assert_eq!(found.len(), 1);
        assert!(found[0].message.contains("enableDnsHostnames"));
        assert!(!found[0].message.contains("enableDnsSupport"));
        let unknown = compliant_vpc()
            .with(|r| r.vpcs[0].enable_dns_support = None)
            .build();
        assert_eq!(findings_of(&unknown, "vpc.dns_attributes").len(), 1);
    }

    #[test]
    fn az_without_public_subnet_is_named() {
        let snapshot = compliant_vpc()
            .with(|r| r.subnets.retain(|s| s.id != "subnet-pub-b"))
            .build();
        let found = findings_of(&snapshot, "vpc.public_subnet_per_az");
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].details["availability_zones_lacking"],
            serde_json::json!(["us-east-1b"])
        );
        assert!(findings_of(&snapshot, "vpc.private_subnet_per_az").is_empty());
    }

    #[test]
    fn az_without_private_subnet_is_named() {
        let snapshot = compliant_vpc()
            .with(|r| r.subnets.retain(|s| s.id != "subnet-priv-c"))
            .build();
        let found = findings_of(&snapshot, "vpc.private_subnet_per_az");
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].details["availability_zones_lacking"],
            serde_json::json!(["us-east-1c"])
        );
    }

    #[test]
    fn vpc_with_only_private_subnets_has_no_public_subnet() {
        let snapshot = compliant_vpc()
            .with(|r| {
                r.subnets
                    .retain(|s: &Subnet| s.id.starts_with("subnet-priv"))
            })
            .build();
        let found = findings_of(&snapshot, "vpc.public_subnet_per_az");
        assert_eq!(found.len(), 1);
        assert!(found[0].message.ends_with("has no public subnet"));
    }
}
