//! The rules of a declared data plane (`data_planes:` in the config): the declared VPC and
//! subnets exist where declared, and the handover's "one per availability zone" holds.
//!
//! A declared VPC's other rules run on exactly its declared subnets (see
//! `topology::VpcView::declare`); these rules judge the declaration itself.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use crate::values::data_plane::DataPlane;

use super::catalogue;
use super::pack::SubnetRole;
use super::topology::{RegionTopology, VpcView};
use super::Sink;

/// The config's name for a data plane, for remediations.
fn config_ref(plane: &DataPlane) -> String {
    format!(
        "the data plane {:?} under data_planes: in the config",
        plane.name
    )
}

/// `data_plane.vpc_missing`: the declared VPC is not in the region's snapshot.
pub fn vpc_missing(plane: &DataPlane, sink: &mut Sink) {
    let vpc = &plane.vpc_id.0;
    sink.evaluated(vpc);
    sink.report(
        vpc,
        format!(
            "Data plane {}: VPC {vpc} does not exist in {}",
            plane.name, plane.region.0
        ),
        format!(
            "Find the VPC that replaced it (aws ec2 describe-vpcs --region {} --query \
             'Vpcs[].[VpcId,CidrBlock,Tags]'), hand its ID to the vendor and update {}",
            plane.region.0,
            config_ref(plane)
        ),
        json!({ "data_plane": plane.name, "vpc_id": vpc, "region": plane.region.0 }),
    );
}

/// `data_plane.subnet_missing`: each declared subnet exists, in the declared VPC.
pub fn subnet_missing(view: &VpcView, topo: &RegionTopology, plane: &DataPlane, sink: &mut Sink) {
    let vpc = &view.vpc.id;
    let declared = plane
        .public_subnet_ids
        .iter()
        .map(|s| (SubnetRole::Public, s.0.as_str()))
        .chain(
            plane
                .private_subnet_ids
                .iter()
                .map(|s| (SubnetRole::Private, s.0.as_str())),
        );
    for (role, id) in declared {
        sink.evaluated(id);
        if view.subnets.iter().any(|s| s.subnet.id == id) {
            continue;
        }
        let elsewhere = topo.subnet(id).map(|s| s.subnet.vpc_id.clone());
        let problem = match &elsewhere {
            Some(other) => format!("is in {other}, not in {vpc}"),
            None => format!("no longer exists in {vpc}"),
        };
        sink.report(
            id,
            format!(
                "Data plane {}: declared {} subnet {id} {problem}",
                plane.name,
                role.as_str()
            ),
            format!(
                "List the VPC's subnets (aws ec2 describe-subnets --filters Name=vpc-id,Values={vpc} \
                 --query 'Subnets[].[SubnetId,AvailabilityZone,CidrBlock]'), then declare the {} \
                 subnet that replaced it in {} and hand its ID to the vendor",
                role.as_str(),
                config_ref(plane)
            ),
            json!({
                "data_plane": plane.name,
                "role": role.as_str(),
                "vpc_id": vpc,
                "found_in_vpc": elsewhere,
            }),
        );
    }
}

/// `data_plane.one_per_az`: one public and one private declared subnet in each zone.
pub fn one_per_az(view: &VpcView, plane: &DataPlane, sink: &mut Sink) {
    let vpc = &view.vpc.id;
    sink.evaluated(vpc);
    let mut by_zone: BTreeMap<&str, BTreeMap<&str, Vec<&str>>> = BTreeMap::new();
    for subnet in view.subnets.iter().filter(|s| s.judged) {
        by_zone
            .entry(subnet.az())
            .or_default()
            .entry(subnet.role.as_str())
            .or_default()
            .push(subnet.subnet.id.as_str());
    }
    let mut duplicates = Vec::new();
    let mut lacking = Vec::new();
    for (zone, roles) in &by_zone {
        for (role, ids) in roles {
            if ids.len() > 1 {
                duplicates.push(json!({ "availability_zone": zone, "role": role, "subnets": ids }));
            }
        }
        for role in ["public", "private"] {
            if !roles.contains_key(role) {
                lacking.push(json!({ "availability_zone": zone, "role": role }));
            }
        }
    }
    if duplicates.is_empty() && lacking.is_empty() {
        return;
    }
    let zones: BTreeSet<&str> = by_zone.keys().copied().collect();
    let mut parts = Vec::new();
    if !duplicates.is_empty() {
        parts.push(format!(
            "{} zone(s) with two subnets of one role",
            duplicates.len()
        ));
    }
    if !lacking.is_empty() {
        parts.push(format!(
            "{} zone(s) with one role but not the other",
            lacking.len()
        ));
    }
    sink.report(
        vpc,
        format!(
            "Data plane {}: not one public and one private subnet per zone ({})",
            plane.name,
            parts.join(", ")
        ),
        format!(
            "Declare exactly one public and one private subnet per zone in {}; to add a missing one: \
             aws ec2 create-subnet --vpc-id {vpc} --availability-zone <zone> --cidr-block <a /28 public or /18 private>",
            config_ref(plane)
        ),
        json!({
            "data_plane": plane.name,
            "availability_zones": zones,
            "duplicates": duplicates,
            "lacking": lacking,
        }),
    );
}

/// Runs the declaration rules of `plane` on its VPC.
pub fn evaluate_declared(
    eval: &mut super::Evaluation,
    topo: &RegionTopology,
    view: &VpcView,
    plane: &DataPlane,
    pack: &super::pack::RulePack,
) {
    let scope = || super::FindingScope {
        account_id: topo.region.account_id.clone(),
        region: topo.region.region.clone(),
        vpc_id: Some(view.vpc.id.clone()),
    };
    if let Some(mut sink) = Sink::new(eval, pack, catalogue::DATA_PLANE_SUBNET_MISSING, scope()) {
        subnet_missing(view, topo, plane, &mut sink);
    }
    if let Some(mut sink) = Sink::new(eval, pack, catalogue::DATA_PLANE_ONE_PER_AZ, scope()) {
        one_per_az(view, plane, &mut sink);
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{RegionName, Scope, VpcId};
    use crate::finding::Severity;
    use crate::rules::evaluate;
    use crate::rules::test_support::*;
    use crate::snapshot::builder::{compliant_vpc, SnapshotBuilder};
    use crate::snapshot::{Snapshot, TransitGatewayAttachment};
    use crate::values::data_plane::{DataPlane, SubnetId};

    fn plane(public: &[&str], private: &[&str]) -> DataPlane {
        DataPlane {
            name: "union-prod".into(),
            pack: "union-byoc".into(),
            region: RegionName("us-east-1".into()),
            account_id: None,
            vpc_id: VpcId("vpc-good".into()),
            public_subnet_ids: public.iter().map(|s| SubnetId(s.to_string())).collect(),
            private_subnet_ids: private.iter().map(|s| SubnetId(s.to_string())).collect(),
        }
    }

    fn declared(snapshot: &Snapshot, plane: DataPlane) -> crate::rules::Evaluation {
        let scope = Scope {
            data_planes: vec![plane],
            ..Default::default()
        };
        evaluate(snapshot, &[vpc_pack()], &scope)
    }

    const PUBLIC: [&str; 3] = ["subnet-pub-a", "subnet-pub-b", "subnet-pub-c"];
    const PRIVATE: [&str; 3] = ["subnet-priv-a", "subnet-priv-b", "subnet-priv-c"];

    /// Broken subnets the declaration does not name: a tiny private subnet with no route.
    fn with_broken_undeclared_subnets() -> Snapshot {
        compliant_vpc()
            .subnet("subnet-legacy-a", "vpc-good", "us-east-1a", "10.0.250.0/26")
            .subnet("subnet-legacy-d", "vpc-good", "us-east-1d", "10.0.251.0/26")
            .with(|r| {
                for s in r.subnets.iter_mut().filter(|s| s.id.contains("legacy")) {
                    s.tags.insert("Name".into(), "legacy-private".into());
                    s.available_ip_address_count = Some(2);
                }
            })
            .build()
    }

    #[test]
    fn a_compliant_declared_data_plane_has_no_findings() {
        let eval = declared(&compliant_vpc().build(), plane(&PUBLIC, &PRIVATE));
        assert_eq!(eval.findings, vec![]);
        assert!(eval.evaluated["data_plane.subnet_missing"] == 6);
    }

    #[test]
    fn undeclared_subnets_of_a_declared_vpc_are_not_judged() {
        let snapshot = with_broken_undeclared_subnets();
        // Undeclared, the legacy subnets are broken private subnets in a fourth AZ.
        let undeclared = run(&snapshot);
        assert!(undeclared
            .findings
            .iter()
            .any(|f| f.resource_id == "subnet-legacy-a"));
        let eval = declared(&snapshot, plane(&PUBLIC, &PRIVATE));
        assert_eq!(
            eval.findings,
            vec![],
            "nothing on undeclared subnets or their AZ"
        );
    }

    #[test]
    fn a_deleted_declared_subnet_is_critical_and_named() {
        let snapshot = compliant_vpc()
            .with(|r| r.subnets.retain(|s| s.id != "subnet-priv-b"))
            .build();
        let eval = declared(&snapshot, plane(&PUBLIC, &PRIVATE));
        let missing: Vec<_> = eval
            .findings
            .iter()
            .filter(|f| f.rule_id == "data_plane.subnet_missing")
            .collect();
        assert_eq!(missing.len(), 1);
        assert_eq!(missing[0].resource_id, "subnet-priv-b");
        assert_eq!(missing[0].severity, Severity::Critical);
        assert!(missing[0].message.contains("union-prod"));
        assert!(missing[0].remediation.contains("aws ec2 describe-subnets"));
    }

    #[test]
    fn a_declared_subnet_in_another_vpc_names_that_vpc() {
        let snapshot = compliant_vpc()
            .vpc("vpc-other", "10.9.0.0/16")
            .subnet("subnet-elsewhere", "vpc-other", "us-east-1a", "10.9.0.0/18")
            .build();
        let eval = declared(
            &snapshot,
            plane(
                &PUBLIC,
                &[
                    "subnet-priv-a",
                    "subnet-priv-b",
                    "subnet-priv-c",
                    "subnet-elsewhere",
                ],
            ),
        );
        let found: Vec<_> = eval
            .findings
            .iter()
            .filter(|f| f.rule_id == "data_plane.subnet_missing")
            .collect();
        assert_eq!(found.len(), 1);
        assert!(
            found[0].message.contains("is in vpc-other"),
            "{}",
            found[0].message
        );
    }

    #[test]
    fn a_declared_vpc_that_is_gone_is_critical() {
        let snapshot = SnapshotBuilder::new()
            .vpc("vpc-other", "10.9.0.0/16")
            .build();
        let eval = declared(&snapshot, plane(&PUBLIC, &PRIVATE));
        let found: Vec<_> = eval
            .findings
            .iter()
            .filter(|f| f.rule_id.starts_with("data_plane."))
            .collect();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].rule_id, "data_plane.vpc_missing");
        assert_eq!(found[0].severity, Severity::Critical);
        assert_eq!(found[0].resource_id, "vpc-good");
    }

    #[test]
    fn two_declared_privates_in_one_zone_and_a_zone_without_public_are_medium() {
        let snapshot = compliant_vpc()
            .subnet("subnet-priv-a2", "vpc-good", "us-east-1a", "10.0.192.0/18")
            .with(|r| {
                let t = r
                    .route_tables
                    .iter_mut()
                    .find(|t| t.id == "rtb-private-a")
                    .unwrap();
                t.associations.push(crate::snapshot::RouteTableAssociation {
                    main: false,
                    subnet_id: Some("subnet-priv-a2".into()),
                });
            })
            .build();
        let eval = declared(
            &snapshot,
            plane(
                &["subnet-pub-a", "subnet-pub-b"],
                &[
                    "subnet-priv-a",
                    "subnet-priv-a2",
                    "subnet-priv-b",
                    "subnet-priv-c",
                ],
            ),
        );
        let found: Vec<_> = eval
            .findings
            .iter()
            .filter(|f| f.rule_id == "data_plane.one_per_az")
            .collect();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].severity, Severity::Medium);
        assert_eq!(
            found[0].details["duplicates"][0]["availability_zone"],
            "us-east-1a"
        );
        assert_eq!(
            found[0].details["lacking"][0]["availability_zone"],
            "us-east-1c"
        );
        assert_eq!(found[0].details["lacking"][0]["role"], "public");
    }

    /// A spoke VPC: no IGW, private subnets routed to a transit gateway, /28 attachment
    /// subnets and isolated database subnets.
    fn tgw_spoke() -> Snapshot {
        let mut b = SnapshotBuilder::new()
            .vpc("vpc-spoke", "10.0.0.0/16")
            .route_table("rtb-db", "vpc-spoke", true, None, &[]);
        let mut attach = Vec::new();
        for (i, az) in ["us-east-1a", "us-east-1b", "us-east-1c"]
            .iter()
            .enumerate()
        {
            let l = &az[az.len() - 1..];
            b = b
                .subnet(
                    &format!("subnet-app-{l}"),
                    "vpc-spoke",
                    az,
                    &format!("10.0.{}.0/18", i * 64),
                )
                .subnet(
                    &format!("subnet-tgw-{l}"),
                    "vpc-spoke",
                    az,
                    &format!("10.0.{}.0/28", 192 + i),
                )
                .subnet(
                    &format!("subnet-db-{l}"),
                    "vpc-spoke",
                    az,
                    &format!("10.0.{}.0/24", 200 + i),
                )
                .route_table(
                    &format!("rtb-app-{l}"),
                    "vpc-spoke",
                    false,
                    Some("tgw-central"),
                    &[&format!("subnet-app-{l}"), &format!("subnet-tgw-{l}")],
                );
            attach.push(format!("subnet-tgw-{l}"));
        }
        b.with(|r| {
            r.transit_gateway_attachments
                .push(TransitGatewayAttachment {
                    id: "tgw-attach-spoke".into(),
                    transit_gateway_id: Some("tgw-central".into()),
                    vpc_id: "vpc-spoke".into(),
                    state: Some("available".into()),
                    subnet_ids: attach,
                });
            // The attachment's interfaces take addresses in the /28s: nearly full.
            for s in r.subnets.iter_mut().filter(|s| s.id.contains("tgw")) {
                s.available_ip_address_count = Some(8);
            }
        })
        .build()
    }

    #[test]
    fn a_tgw_spoke_has_nothing_at_medium_or_above_on_any_subnet_and_one_low() {
        let eval = run(&tgw_spoke());
        let on_subnets: Vec<_> = eval
            .findings
            .iter()
            .filter(|f| f.resource_id.starts_with("subnet-") && f.severity >= Severity::Medium)
            .collect();
        assert!(on_subnets.is_empty(), "{on_subnets:#?}");
        let corporate: Vec<_> = eval
            .findings
            .iter()
            .filter(|f| f.rule_id == "vpc.corporate_egress")
            .collect();
        assert_eq!(corporate.len(), 1, "once per VPC");
        assert_eq!(corporate[0].severity, Severity::Low);
        assert!(corporate[0].message.contains("tgw-central"));
        assert!(!corporate[0].remediation.contains("nat-gateway"));
        assert!(!eval.findings.iter().any(|f| f.rule_id == "vpc.az_count"));
    }

    #[test]
    fn an_accepted_egress_kind_is_not_reported() {
        let mut pack = vpc_pack();
        pack.vpc_rules
            .corporate_egress
            .as_mut()
            .unwrap()
            .accepted_egress = Some(vec![crate::rules::pack::EgressKind::TransitGateway]);
        let eval = evaluate(&tgw_spoke(), &[pack], &Scope::default());
        assert!(!eval
            .findings
            .iter()
            .any(|f| f.rule_id == "vpc.corporate_egress"));
    }

    #[test]
    fn isolated_database_subnets_add_nothing_to_a_compliant_vpc() {
        let snapshot = compliant_vpc()
            .route_table(
                "rtb-db",
                "vpc-good",
                false,
                None,
                &["subnet-db-a", "subnet-db-b"],
            )
            .subnet("subnet-db-a", "vpc-good", "us-east-1a", "10.0.210.0/26")
            .subnet("subnet-db-b", "vpc-good", "us-east-1d", "10.0.211.0/26")
            .with(|r| {
                for s in r.subnets.iter_mut().filter(|s| s.id.contains("-db-")) {
                    s.available_ip_address_count = Some(4);
                }
            })
            .build();
        assert_eq!(run(&snapshot).findings, vec![]);
    }
}
