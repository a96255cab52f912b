//! Per-subnet rules: sizes, private egress through a NAT gateway, and free IP capacity.
//! Each finding's resource is the subnet.
//!
//! IPv6-only subnets have no IPv4 CIDR; the size and capacity rules do not apply to them
//! and they are not counted as evaluated.

use serde_json::json;

use super::catalogue;
use super::pack::{IpCapacity, MaxPrefix, NoParams, SubnetRole};
use super::topology::{Egress, RegionTopology, SubnetView, VpcView};
use super::{Rule, Sink};

pub const PRIVATE_SIZE: Rule<MaxPrefix> = (catalogue::SUBNET_PRIVATE_SIZE, private_size);
pub const PUBLIC_SIZE: Rule<MaxPrefix> = (catalogue::SUBNET_PUBLIC_SIZE, public_size);
pub const PRIVATE_EGRESS: Rule<NoParams> = (catalogue::SUBNET_PRIVATE_EGRESS, private_egress);
pub const IP_CAPACITY: Rule<IpCapacity> = (catalogue::SUBNET_IP_CAPACITY, ip_capacity);

/// AWS reserves five addresses in every subnet.
const AWS_RESERVED_IPS: u64 = 5;

/// Usable addresses in an IPv4 subnet: one per pod with most CNIs.
pub fn usable_ips(net: &ipnetwork::Ipv4Network) -> u64 {
    u64::from(net.size()).saturating_sub(AWS_RESERVED_IPS)
}

fn ipv4_net(view: &SubnetView) -> Option<ipnetwork::Ipv4Network> {
    view.subnet.cidr_block.as_deref()?.parse().ok()
}

fn role_details(view: &SubnetView) -> serde_json::Value {
    view.class_details()
}

fn private_size(view: &VpcView, topo: &RegionTopology, settings: &MaxPrefix, sink: &mut Sink) {
    let max = settings.max_prefix_length().0;
    for subnet in view.subnets_with_role(SubnetRole::Private) {
        let Some(net) = ipv4_net(subnet) else {
            continue;
        };
        sink.evaluated(&subnet.subnet.id);
        if net.prefix() > max {
            let id = &subnet.subnet.id;
            let capacity = usable_ips(&net);
            sink.report(
                id,
                format!(
                    "Private subnet {id} ({net}) holds about {capacity} pods at one IP per pod; \
                     a /{max} holds {}",
                    (1u64 << (32 - u32::from(max))) - AWS_RESERVED_IPS
                ),
                {
                    let free = super::cidr::free_block(
                        &super::cidr::vpc_cidrs(view.vpc),
                        &super::cidr::used_by_subnets(topo.region, &view.vpc.id),
                        max,
                    );
                    match free {
                        Some(block) => format!(
                            "Subnets cannot be resized: create a /{max} private subnet in {} \
                             (aws ec2 create-subnet --vpc-id {} --availability-zone {} --cidr-block {block}) and move workloads to it",
                            subnet.az(),
                            view.vpc.id,
                            subnet.az()
                        ),
                        None => format!(
                            "Subnets cannot be resized, and the VPC has no free /{max}: add a secondary CIDR \
                             (see vpc.cidr_size), create a /{max} private subnet in {} there and move workloads to it",
                            subnet.az()
                        ),
                    }
                },
                json!({
                    "cidr_block": net.to_string(),
                    "prefix_length": net.prefix(),
                    "max_prefix_length": max,
                    "pod_capacity": capacity,
                    "subnet": role_details(subnet),
                }),
            );
        }
    }
}

fn public_size(view: &VpcView, _: &RegionTopology, settings: &MaxPrefix, sink: &mut Sink) {
    let recommended = settings.max_prefix_length().0;
    for subnet in view.subnets_with_role(SubnetRole::Public) {
        let Some(net) = ipv4_net(subnet) else {
            continue;
        };
        sink.evaluated(&subnet.subnet.id);
        if net.prefix() < recommended {
            let id = &subnet.subnet.id;
            sink.report(
                id,
                format!(
                    "Public subnet {id} ({net}) is larger than the recommended /{recommended}; \
                     public subnets only hold load balancers and NAT gateways"
                ),
                format!(
                    "Keep the address space for private subnets: new public subnets can be /{recommended}"
                ),
                json!({
                    "cidr_block": net.to_string(),
                    "prefix_length": net.prefix(),
                    "recommended_prefix_length": recommended,
                    "subnet": role_details(subnet),
                }),
            );
        }
    }
}

fn private_egress(view: &VpcView, topo: &RegionTopology, _: &NoParams, sink: &mut Sink) {
    for subnet in view.subnets_with_role(SubnetRole::Private) {
        sink.evaluated(&subnet.subnet.id);
        let id = &subnet.subnet.id;
        // An IPv6-only subnet's default route is its NAT64 route (`64:ff9b::/96`).
        let route = subnet.default_route;
        let (problem, kind, target) = match view.egress(topo, subnet) {
            // A NAT gateway, or a deliberate corporate design (vpc.corporate_egress).
            Egress::Reaches { .. } => continue,
            Egress::Broken {
                problem,
                kind,
                target,
            } => (problem, kind, target),
        };
        let fix = super::nat::route_fix(view, topo, subnet);
        sink.report(
            id,
            format!("Private subnet {id} {problem}"),
            format!(
                "{fix} (or, where egress is central, route it to the attached transit gateway)"
            ),
            json!({
                "route_table_id": subnet.route_table.map(|t| t.id.clone()),
                "uses_main_route_table": subnet.uses_main_route_table,
                "default_route_target": target,
                "default_route_state": route.and_then(|r| r.state.clone()),
                "egress_kind": kind.map(|k| k.as_str()),
                "subnet": role_details(subnet),
            }),
        );
    }
}

fn ip_capacity(view: &VpcView, _: &RegionTopology, settings: &IpCapacity, sink: &mut Sink) {
    let roles = settings.subnet_roles();
    let min_percent = settings.min_free_percent().0;
    let min_ips = settings.min_free_ips();
    for subnet in view
        .subnets
        .iter()
        .filter(|s| s.judged && roles.contains(&s.role))
    {
        let Some(net) = ipv4_net(subnet) else {
            continue;
        };
        let id = &subnet.subnet.id;
        let usable = usable_ips(&net);
        // Never ask for more free addresses than a subnet of the recommended size can
        // hold: 1024 free IPs cannot be asked of a /28, which then keeps `min_free_percent`
        // of its addresses free instead.
        let recommended = match subnet.role {
            SubnetRole::Public => settings.recommended_public_prefix_length().0,
            _ => settings.recommended_private_prefix_length().0,
        };
        let recommended_usable =
            (1u64 << (32 - u32::from(recommended.min(32)))).saturating_sub(AWS_RESERVED_IPS);
        let min_ips = if min_ips <= recommended_usable {
            min_ips
        } else {
            (recommended_usable as f64 * min_percent / 100.0).ceil() as u64
        };
        sink.evaluated(&subnet.subnet.id);
        let Some(free) = subnet.subnet.available_ip_address_count else {
            sink.report(
                id,
                format!(
                    "Subnet {id} reported no free IP count, so its capacity cannot be verified"
                ),
                format!("aws ec2 describe-subnets --subnet-ids {id}"),
                json!({ "cidr_block": net.to_string(), "usable_ips": usable }),
            );
            continue;
        };
        let percent = if usable == 0 {
            0.0
        } else {
            free as f64 * 100.0 / usable as f64
        };
        if percent < min_percent || free < min_ips {
            sink.report(
                id,
                format!(
                    "Subnet {id} ({net}) has {free} of {usable} IPs free ({percent:.1}%); \
                     the thresholds are {min_percent}% and {min_ips} IPs"
                ),
                if free >= usable {
                    // Nothing to release: the subnet is too small for the threshold.
                    format!(
                        "The subnet is entirely free but too small for the threshold: add capacity with \
                         a larger subnet in {} for the data plane (subnets cannot be resized)",
                        subnet.az()
                    )
                } else {
                    format!(
                        "Add capacity with another subnet in {} for the data plane, or release unused ENIs \
                         (aws ec2 describe-network-interfaces --filters Name=subnet-id,Values={id} Name=status,Values=available)",
                        subnet.az()
                    )
                },
                json!({
                    "cidr_block": net.to_string(),
                    "usable_ips": usable,
                    "free_ips": free,
                    "free_percent": (percent * 10.0).round() / 10.0,
                    "min_free_percent": min_percent,
                    "min_free_ips": min_ips,
                    "subnet": role_details(subnet),
                }),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;
    use crate::snapshot::builder::compliant_vpc;
    use crate::snapshot::NatGateway;

    #[test]
    fn an_ipv6_only_private_subnet_egresses_through_a_nat64_route() {
        let ipv6_only = |nat64: bool| {
            compliant_vpc()
                .with(|r| {
                    r.subnets[1].cidr_block = None;
                    // Without its NAT64 route it would be isolated; the tag keeps it private.
                    r.subnets[1]
                        .tags
                        .insert("Name".into(), "data-plane-private".into());
                    let table = r
                        .route_tables
                        .iter_mut()
                        .find(|t| {
                            t.associations
                                .iter()
                                .any(|a| a.subnet_id.as_deref() == Some(r.subnets[1].id.as_str()))
                        })
                        .unwrap();
                    table
                        .routes
                        .retain(|r| r.destination_cidr.as_deref() != Some("0.0.0.0/0"));
                    if nat64 {
                        table.routes.push(crate::snapshot::Route {
                            destination_ipv6_cidr: Some("64:ff9b::/96".into()),
                            target: Some("nat-a".into()),
                            state: Some("active".into()),
                            ..Default::default()
                        });
                    }
                })
                .build()
        };
        assert!(findings_of(&ipv6_only(true), "subnet.private_egress").is_empty());
        assert_eq!(
            findings_of(&ipv6_only(false), "subnet.private_egress").len(),
            1
        );
    }

    fn set_cidr(
        id: &'static str,
        cidr: &'static str,
    ) -> impl FnOnce(&mut crate::snapshot::RegionSnapshot) {
        move |r| {
            let s = r.subnets.iter_mut().find(|s| s.id == id).unwrap();
            s.cidr_block = Some(cidr.into());
            s.available_ip_address_count = Some(100);
        }
    }

    #[test]
    fn slash_24_private_subnet_fires_private_size_with_pod_capacity() {
        let snapshot = compliant_vpc()
            .with(set_cidr("subnet-priv-a", "10.0.0.0/24"))
            .build();
        let found = findings_of(&snapshot, "subnet.private_size");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].resource_id, "subnet-priv-a");
        assert_eq!(found[0].details["pod_capacity"], 251);
        assert!(found[0].message.contains("16379"), "{}", found[0].message);
    }

    #[test]
    fn slash_17_private_subnet_passes_private_size() {
        let snapshot = compliant_vpc()
            .with(set_cidr("subnet-priv-a", "10.0.0.0/17"))
            .build();
        assert!(findings_of(&snapshot, "subnet.private_size").is_empty());
    }

    #[test]
    fn slash_24_public_subnet_fires_public_size_as_info() {
        let snapshot = compliant_vpc()
            .with(set_cidr("subnet-pub-a", "10.0.200.0/24"))
            .build();
        let found = findings_of(&snapshot, "subnet.public_size");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].severity, crate::finding::Severity::Info);
    }

    #[test]
    fn ipv6_only_subnet_is_not_sized() {
        let snapshot = compliant_vpc()
            .with(|r| {
                let s = r
                    .subnets
                    .iter_mut()
                    .find(|s| s.id == "subnet-priv-a")
                    .unwrap();
                s.cidr_block = None;
                s.ipv6_cidr_blocks = vec!["2600:1f18::/64".into()];
            })
            .build();
        assert!(findings_of(&snapshot, "subnet.private_size").is_empty());
        assert!(findings_of(&snapshot, "subnet.ip_capacity").is_empty());
    }

    #[test]
    fn private_subnet_routed_to_igw_by_tag_fires_private_egress() {
        let snapshot = compliant_vpc()
            .with(|r| {
                let s = r
                    .subnets
                    .iter_mut()
                    .find(|s| s.id == "subnet-priv-a")
                    .unwrap();
                s.tags.insert("Name".into(), "data-plane-private-a".into());
                let rt = r
                    .route_tables
                    .iter_mut()
                    .find(|t| t.id == "rtb-private-a")
                    .unwrap();
                rt.routes[1].target = Some("igw-good".into());
            })
            .build();
        let found = findings_of(&snapshot, "subnet.private_egress");
        assert_eq!(found.len(), 1);
        assert!(found[0].message.contains("not to a NAT gateway"));
    }

    /// Deliberate change (issue 15): only a subnet tagged private is still held to the
    /// private rules when it loses its default route; an untagged one is isolated.
    #[test]
    fn private_subnet_without_default_route_fires_private_egress() {
        let snapshot = compliant_vpc()
            .with(|r| {
                r.subnets
                    .iter_mut()
                    .find(|s| s.id == "subnet-priv-b")
                    .unwrap()
                    .tags
                    .insert("kubernetes.io/role/internal-elb".into(), "1".into());
                let rt = r
                    .route_tables
                    .iter_mut()
                    .find(|t| t.id == "rtb-private-b")
                    .unwrap();
                rt.routes.truncate(1);
            })
            .build();
        let found = findings_of(&snapshot, "subnet.private_egress");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].resource_id, "subnet-priv-b");
        assert!(found[0].message.ends_with("has no 0.0.0.0/0 route"));
    }

    #[test]
    fn untagged_subnet_without_default_route_is_isolated_and_not_judged() {
        let snapshot = compliant_vpc()
            .with(|r| {
                let rt = r
                    .route_tables
                    .iter_mut()
                    .find(|t| t.id == "rtb-private-b")
                    .unwrap();
                rt.routes.truncate(1);
                let s = r
                    .subnets
                    .iter_mut()
                    .find(|s| s.id == "subnet-priv-b")
                    .unwrap();
                s.cidr_block = Some("10.0.64.0/24".into());
                s.available_ip_address_count = Some(3);
            })
            .build();
        let eval = run(&snapshot);
        assert!(
            eval.findings
                .iter()
                .all(|f| f.resource_id != "subnet-priv-b"),
            "{:#?}",
            eval.findings
        );
        // Its AZ still has no private subnet: the VPC-level rule says so.
        assert_eq!(findings_of(&snapshot, "vpc.private_subnet_per_az").len(), 1);
    }

    #[test]
    fn private_nat_gateway_is_no_path_to_the_internet() {
        let snapshot = compliant_vpc()
            .with(|r| r.nat_gateways[0].connectivity_type = Some("private".into()))
            .build();
        let found = findings_of(&snapshot, "subnet.private_egress");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].resource_id, "subnet-priv-a");
        assert_eq!(found[0].severity, crate::finding::Severity::High);
        assert_eq!(found[0].details["egress_kind"], "private_nat_gateway");
        assert!(found[0].message.contains("private"), "{}", found[0].message);
    }

    #[test]
    fn transit_gateway_without_an_attachment_and_unknown_endpoint_are_broken() {
        let snapshot = compliant_vpc()
            .with(|r| {
                for (rt, target) in [("rtb-private-a", "tgw-1"), ("rtb-private-b", "vpce-gone")] {
                    let t = r.route_tables.iter_mut().find(|t| t.id == rt).unwrap();
                    t.routes[1].target = Some(target.into());
                }
            })
            .build();
        let found = findings_of(&snapshot, "subnet.private_egress");
        assert_eq!(found.len(), 2, "{found:#?}");
        assert!(
            found[0].message.contains("no attachment"),
            "{}",
            found[0].message
        );
        assert!(
            found[1].message.contains("does not exist"),
            "{}",
            found[1].message
        );
    }

    #[test]
    fn route_to_deleted_or_unknown_nat_fires_private_egress() {
        let deleted = compliant_vpc()
            .with(|r| r.nat_gateways[0].state = Some("deleted".into()))
            .build();
        let found = findings_of(&deleted, "subnet.private_egress");
        assert_eq!(found.len(), 1);
        assert!(found[0].message.contains("which is deleted"));
        let unknown = compliant_vpc()
            .with(|r| r.nat_gateways.retain(|n: &NatGateway| n.id != "nat-c"))
            .build();
        let found = findings_of(&unknown, "subnet.private_egress");
        assert!(found[0].message.contains("does not exist"));
    }

    #[test]
    fn blackholed_nat_route_fires_private_egress() {
        let snapshot = compliant_vpc()
            .with(|r| {
                let rt = r
                    .route_tables
                    .iter_mut()
                    .find(|t| t.id == "rtb-private-a")
                    .unwrap();
                rt.routes[1].state = Some("blackhole".into());
            })
            .build();
        let found = findings_of(&snapshot, "subnet.private_egress");
        assert!(found[0].message.contains("blackhole"));
    }

    #[test]
    fn nearly_full_subnet_fires_ip_capacity() {
        let snapshot = compliant_vpc()
            .with(|r| {
                let s = r
                    .subnets
                    .iter_mut()
                    .find(|s| s.id == "subnet-priv-a")
                    .unwrap();
                s.available_ip_address_count = Some(900);
            })
            .build();
        let found = findings_of(&snapshot, "subnet.ip_capacity");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].details["free_ips"], 900);
        assert_eq!(found[0].details["usable_ips"], 16379);
    }

    /// Deliberate change (issue 15): public subnets are capacity checked too, against a
    /// threshold a /28 can meet.
    #[test]
    fn public_subnets_are_capacity_checked_with_a_threshold_a_slash_28_can_meet() {
        let public_free = |free: u64| {
            compliant_vpc()
                .with(move |r| {
                    let s = r
                        .subnets
                        .iter_mut()
                        .find(|s| s.id == "subnet-pub-a")
                        .unwrap();
                    s.available_ip_address_count = Some(free);
                })
                .build()
        };
        let found = findings_of(&public_free(1), "subnet.ip_capacity");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].details["min_free_ips"], 2);
        assert!(findings_of(&public_free(9), "subnet.ip_capacity").is_empty());
    }

    #[test]
    fn missing_free_ip_count_fails_closed() {
        let snapshot = compliant_vpc()
            .with(|r| {
                r.subnets
                    .iter_mut()
                    .for_each(|s| s.available_ip_address_count = None)
            })
            .build();
        // The three private and the three public subnets.
        assert_eq!(findings_of(&snapshot, "subnet.ip_capacity").len(), 6);
    }
}
