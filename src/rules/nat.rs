//! NAT gateway rules: a NAT gateway must sit in a public subnet, and a private subnet should
//! use the NAT gateway of its own AZ.
//!
//! Regional NAT gateways (no subnet of their own), private-connectivity NAT gateways, and
//! ones that are deleted or failed are not checked by `nat.in_public_subnet`: they are not
//! the internet path the rule is about. A private subnet routed to them is judged by
//! `subnet.private_egress`.

use serde_json::json;

use super::catalogue;
use super::pack::{NoParams, SubnetRole};
use super::topology::{RegionTopology, SubnetView, VpcView};
use super::{Rule, Sink};

pub const IN_PUBLIC_SUBNET: Rule<NoParams> = (catalogue::NAT_IN_PUBLIC_SUBNET, in_public_subnet);
pub const SAME_AZ: Rule<NoParams> = (catalogue::NAT_SAME_AZ, same_az);

fn in_public_subnet(view: &VpcView, topo: &RegionTopology, _: &NoParams, sink: &mut Sink) {
    for nat in &view.nat_gateways {
        let live = !matches!(
            nat.state.as_deref(),
            Some("deleted" | "deleting" | "failed")
        );
        let public = nat.connectivity_type.as_deref().unwrap_or("public") == "public";
        let Some(subnet_id) = nat.subnet_id.as_deref() else {
            continue;
        };
        if !live || !public {
            continue;
        }
        sink.evaluated(&nat.id);
        let id = &nat.id;
        let problem = match topo.subnet(subnet_id) {
            None => format!("is in subnet {subnet_id}, which is not in this VPC's subnets"),
            Some(s) if s.routes_to_igw() && view.has_attached_igw(s.default_target().unwrap_or("")) => {
                continue
            }
            Some(s) => match s.default_target() {
                Some(t) => format!("is in subnet {subnet_id}, whose 0.0.0.0/0 route goes to {t}, not an internet gateway"),
                None => format!("is in subnet {subnet_id}, which has no 0.0.0.0/0 route"),
            },
        };
        sink.report(
            id,
            format!("NAT gateway {id} {problem}, so it has no path to the internet"),
            "Create the NAT gateway in a public subnet (aws ec2 create-nat-gateway --subnet-id <public subnet> \
             --allocation-id <eip>) and point the private route tables at it, then delete this one"
                .to_string(),
            json!({ "subnet_id": subnet_id, "state": nat.state }),
        );
    }
}

fn same_az(view: &VpcView, topo: &RegionTopology, _: &NoParams, sink: &mut Sink) {
    for subnet in view.subnets_with_role(SubnetRole::Private) {
        let Some(nat_id) = subnet.default_target().filter(|t| t.starts_with("nat-")) else {
            continue;
        };
        // A NAT that is unknown, or regional, has no AZ to compare; private_egress covers
        // the unknown case.
        let Some(nat_subnet) = topo
            .nat_gateway(nat_id)
            .and_then(|n| n.subnet_id.as_deref())
            .and_then(|s| topo.subnet(s))
        else {
            continue;
        };
        sink.evaluated(&subnet.subnet.id);
        if nat_subnet.az() != subnet.az() {
            let id = &subnet.subnet.id;
            let fix = route_fix(view, topo, subnet);
            sink.report(
                id,
                format!(
                    "Private subnet {id} in {} uses NAT gateway {nat_id} in {}",
                    subnet.az(),
                    nat_subnet.az()
                ),
                fix,
                json!({
                    "nat_gateway_id": nat_id,
                    "nat_availability_zone": nat_subnet.az(),
                    "subnet_availability_zone": subnet.az(),
                }),
            );
        }
    }
}

/// How to route `subnet` through its own zone's NAT gateway without moving the problem:
/// when its route table is shared with subnets of other zones (or is the main table), the
/// subnet needs a table of its own.
pub fn route_fix(view: &VpcView, topo: &RegionTopology, subnet: &SubnetView) -> String {
    let az = subnet.az();
    let own_nat = view
        .nat_gateways
        .iter()
        .filter(|n| n.state.as_deref() == Some("available"))
        .filter(|n| n.connectivity_type.as_deref().unwrap_or("public") == "public")
        .find(|n| {
            n.subnet_id
                .as_deref()
                .and_then(|s| topo.subnet(s))
                .is_some_and(|s| s.az() == az && s.routes_to_igw())
        })
        .map(|n| n.id.clone());
    let nat = match &own_nat {
        Some(nat) => nat.clone(),
        None => format!("NAT (a new NAT gateway in a public subnet of {az}: aws ec2 create-nat-gateway, then aws ec2 wait nat-gateway-available)"),
    };
    let Some(table) = subnet.route_table else {
        return format!("Route {} through {nat}", subnet.subnet.id);
    };
    let shared_with: Vec<&str> = view
        .subnets
        .iter()
        .filter(|s| s.subnet.id != subnet.subnet.id)
        .filter(|s| s.route_table.is_some_and(|t| t.id == table.id))
        .filter(|s| s.az() != az || !s.is(SubnetRole::Private))
        .map(|s| s.subnet.id.as_str())
        .collect();
    let has_default = subnet.default_route.is_some();
    let verb = if has_default {
        "replace-route"
    } else {
        "create-route"
    };
    if subnet.uses_main_route_table || !shared_with.is_empty() {
        format!(
            "Route table {} is shared{}: give {} its own route table routed to {nat} \
             (aws ec2 create-route-table, aws ec2 create-route --destination-cidr-block 0.0.0.0/0 --nat-gateway-id, \
             aws ec2 replace-route-table-association); --format fix-script writes these steps with the ids",
            table.id,
            if subnet.uses_main_route_table {
                " (it is the VPC's main table)".to_string()
            } else {
                format!(" with {}", shared_with.join(", "))
            },
            subnet.subnet.id
        )
    } else {
        format!(
            "aws ec2 {verb} --route-table-id {} --destination-cidr-block 0.0.0.0/0 --nat-gateway-id {nat}",
            table.id
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;
    use crate::snapshot::builder::compliant_vpc;

    #[test]
    fn nat_in_a_private_subnet_fires_in_public_subnet() {
        let snapshot = compliant_vpc()
            .with(|r| r.nat_gateways[0].subnet_id = Some("subnet-priv-a".into()))
            .build();
        let found = findings_of(&snapshot, "nat.in_public_subnet");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].resource_id, "nat-a");
        assert!(
            found[0].message.contains("goes to nat-a"),
            "{}",
            found[0].message
        );
    }

    #[test]
    fn regional_and_private_nat_gateways_are_not_judged_by_placement() {
        let snapshot = compliant_vpc()
            .with(|r| {
                r.nat_gateways[0].subnet_id = None;
                r.nat_gateways[1].subnet_id = Some("subnet-priv-b".into());
                r.nat_gateways[1].connectivity_type = Some("private".into());
            })
            .build();
        assert!(findings_of(&snapshot, "nat.in_public_subnet").is_empty());
    }

    #[test]
    fn private_subnet_using_another_azs_nat_fires_same_az() {
        let snapshot = compliant_vpc()
            .with(|r| {
                let rt = r
                    .route_tables
                    .iter_mut()
                    .find(|t| t.id == "rtb-private-c")
                    .unwrap();
                rt.routes[1].target = Some("nat-a".into());
            })
            .build();
        let found = findings_of(&snapshot, "nat.same_az");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].resource_id, "subnet-priv-c");
        assert_eq!(found[0].details["nat_availability_zone"], "us-east-1a");
        assert!(findings_of(&snapshot, "subnet.private_egress").is_empty());
    }
}
