//! The plan on hand-made snapshots: the broken shapes of issue 21, each planned as a whole.

use super::*;
use crate::rules::test_support::run;
use crate::snapshot::builder::{compliant_vpc, SnapshotBuilder};
use crate::snapshot::{Route, Snapshot};

fn plan_of(snapshot: &Snapshot) -> Plan {
    build(snapshot, &run(snapshot).findings)
}

fn commands(plan: &Plan) -> Vec<String> {
    plan.automatic_steps()
        .flat_map(|s| s.commands.iter().cloned())
        .collect()
}

fn all_text(plan: &Plan) -> String {
    serde_json::to_string_pretty(plan).unwrap()
}

#[test]
fn a_compliant_vpc_has_an_empty_plan() {
    assert_eq!(plan_of(&compliant_vpc().build()).step_count(), 0);
}

/// All three private subnets share one table routed to the NAT of zone a: zone a keeps the
/// table, b and c each get a table of their own, through their own NAT, with the S3
/// gateway endpoint, and are re-associated.
#[test]
fn zones_sharing_a_route_table_each_get_their_own() {
    let snapshot = compliant_vpc()
        .with(|r| {
            r.route_tables
                .retain(|t| t.id != "rtb-private-b" && t.id != "rtb-private-c");
            let a = r
                .route_tables
                .iter_mut()
                .find(|t| t.id == "rtb-private-a")
                .unwrap();
            for s in ["subnet-priv-b", "subnet-priv-c"] {
                a.associations.push(crate::snapshot::RouteTableAssociation {
                    main: false,
                    subnet_id: Some(s.into()),
                });
            }
            r.vpc_endpoints[0].route_table_ids = vec!["rtb-private-a".into()];
        })
        .build();
    let found = run(&snapshot).findings;
    assert_eq!(
        found.iter().filter(|f| f.rule_id == "nat.same_az").count(),
        2
    );
    let plan = build(&snapshot, &found);
    let cmds = commands(&plan);
    let text = cmds.join("\n");
    assert_eq!(
        cmds.iter()
            .filter(|c| c.contains("create-route-table --vpc-id vpc-good"))
            .count(),
        2,
        "{text}"
    );
    assert!(text.contains("--nat-gateway-id nat-b"), "{text}");
    assert!(text.contains("--nat-gateway-id nat-c"), "{text}");
    assert!(
        !text.contains("replace-route --route-table-id rtb-private-a"),
        "{text}"
    );
    assert!(text
        .contains("modify-vpc-endpoint --vpc-endpoint-id vpce-s3 --add-route-table-ids \"$RTB_"));
    assert!(text.contains("replace-route-table-association --association-id $("));
    // The finding each step fixes is quoted.
    assert!(plan
        .automatic_steps()
        .any(|s| s.fixes.iter().any(|f| f.resource_id == "subnet-priv-b")));
    assert!(!text.contains('<'), "no placeholders: {text}");
}

#[test]
fn create_route_where_there_is_no_default_route_and_a_nat_is_made_where_none_is() {
    let snapshot = compliant_vpc()
        .with(|r| {
            // Zone b has no NAT, and its private table no default route (tagged private).
            r.nat_gateways.retain(|n| n.id != "nat-b");
            let t = r
                .route_tables
                .iter_mut()
                .find(|t| t.id == "rtb-private-b")
                .unwrap();
            t.routes
                .retain(|r| r.destination_cidr.as_deref() != Some("0.0.0.0/0"));
            let s = r
                .subnets
                .iter_mut()
                .find(|s| s.id == "subnet-priv-b")
                .unwrap();
            s.tags
                .insert("kubernetes.io/role/internal-elb".into(), "1".into());
        })
        .build();
    let plan = plan_of(&snapshot);
    let text = commands(&plan).join("\n");
    assert!(text.contains("allocate-address --domain vpc"), "{text}");
    assert!(
        text.contains("create-nat-gateway --subnet-id subnet-pub-b --allocation-id \"$EIP_"),
        "{text}"
    );
    assert!(
        text.contains("wait nat-gateway-available --nat-gateway-ids \"$NAT_"),
        "{text}"
    );
    assert!(text.contains("create-route --route-table-id rtb-private-b --destination-cidr-block 0.0.0.0/0 --nat-gateway-id \"$NAT_"), "{text}");
    assert!(!text.contains("replace-route"), "{text}");
}

#[test]
fn interface_endpoints_get_one_subnet_per_az() {
    let snapshot = compliant_vpc()
        .subnet("subnet-app-a", "vpc-good", "us-east-1a", "10.0.192.0/24")
        .subnet("subnet-app-b", "vpc-good", "us-east-1b", "10.0.193.0/24")
        .with(|r| {
            r.vpc_endpoints.retain(|e| e.id != "vpce-logs");
            for (table, subnet) in [
                ("rtb-private-a", "subnet-app-a"),
                ("rtb-private-b", "subnet-app-b"),
            ] {
                let t = r.route_tables.iter_mut().find(|t| t.id == table).unwrap();
                t.associations.push(crate::snapshot::RouteTableAssociation {
                    main: false,
                    subnet_id: Some(subnet.into()),
                });
            }
        })
        .build();
    let plan = plan_of(&snapshot);
    let create: Vec<String> = commands(&plan)
        .into_iter()
        .filter(|c| c.contains("create-vpc-endpoint"))
        .collect();
    assert_eq!(create.len(), 1, "{create:?}");
    assert!(create[0].contains("--service-name com.amazonaws.us-east-1.logs"));
    // The /18s have more free addresses than the /24s.
    assert!(
        create[0].contains("--subnet-ids subnet-priv-a subnet-priv-b subnet-priv-c "),
        "{}",
        create[0]
    );
    assert!(!create[0].contains("subnet-app-"));
}

#[test]
fn a_small_vpc_gets_a_secondary_cidr_and_no_slash_18_subnet_inside_a_slash_24() {
    let snapshot = SnapshotBuilder::new()
        .vpc("vpc-small", "10.1.0.0/24")
        .igw("igw-1", "vpc-small")
        .subnet("subnet-pub", "vpc-small", "us-east-1a", "10.1.0.0/28")
        .subnet("subnet-priv", "vpc-small", "us-east-1a", "10.1.0.64/26")
        .nat("nat-1", "vpc-small", "subnet-pub")
        .route_table(
            "rtb-pub",
            "vpc-small",
            false,
            Some("igw-1"),
            &["subnet-pub"],
        )
        .route_table(
            "rtb-priv",
            "vpc-small",
            false,
            Some("nat-1"),
            &["subnet-priv"],
        )
        .route_table("rtb-main", "vpc-small", true, None, &[])
        .vpc("vpc-other", "10.0.0.0/16")
        .build();
    let plan = plan_of(&snapshot);
    let text = all_text(&plan);
    assert!(
        text.contains("associate-vpc-cidr-block --vpc-id vpc-small --cidr-block 10.1.0.0/16")
            || text.contains("--cidr-block 10.2.0.0/16"),
        "{text}"
    );
    // 10.1.0.0/16 overlaps the VPC's own /24: the first free /16 is 10.2.0.0/16.
    assert!(text.contains("--cidr-block 10.2.0.0/16"), "{text}");
    let private_size = plan
        .groups
        .iter()
        .flat_map(|g| &g.steps)
        .find(|s| s.fixes.iter().any(|f| f.rule_id == "subnet.private_size"))
        .expect("a step for subnet.private_size");
    assert_eq!(private_size.kind, StepKind::Manual);
    assert!(private_size
        .reason
        .as_deref()
        .unwrap()
        .contains("cannot be changed in place"));
    // The closest safe action uses the new secondary CIDR, not space the /24 lacks.
    for c in &private_size.commands {
        assert!(c.contains("10.2.0.0/18"), "{c}");
    }
}

#[test]
fn a_failed_region_gets_no_steps() {
    let mut snapshot = compliant_vpc()
        .with(|r| r.vpcs[0].enable_dns_hostnames = Some(false))
        .build();
    let findings = run(&snapshot).findings;
    assert_eq!(build(&snapshot, &findings).step_count(), 1);
    snapshot.regions[0].error = Some(crate::snapshot::CollectionError {
        operation: None,
        message: "boom".into(),
    });
    assert_eq!(build(&snapshot, &findings).step_count(), 0);
}

#[test]
fn dns_is_one_attribute_per_call() {
    let snapshot = compliant_vpc()
        .with(|r| {
            r.vpcs[0].enable_dns_hostnames = Some(false);
            r.vpcs[0].enable_dns_support = Some(false);
        })
        .build();
    let cmds = commands(&plan_of(&snapshot));
    assert_eq!(cmds.len(), 2, "{cmds:?}");
    assert!(cmds[0].contains("--enable-dns-support"));
    assert!(cmds[1].contains("--enable-dns-hostnames"));
}

#[test]
fn a_misplaced_nat_is_replaced_and_deleted() {
    let snapshot = compliant_vpc()
        .with(|r| {
            r.nat_gateways[0].subnet_id = Some("subnet-priv-a".into());
            // keep rtb-private-a routed to it
            let t = r
                .route_tables
                .iter_mut()
                .find(|t| t.id == "rtb-private-a")
                .unwrap();
            t.routes[1] = Route {
                destination_cidr: Some("0.0.0.0/0".into()),
                target: Some("nat-a".into()),
                state: Some("active".into()),
                ..Default::default()
            };
        })
        .build();
    let plan = plan_of(&snapshot);
    let text = commands(&plan).join("\n");
    assert!(
        text.contains("create-nat-gateway --subnet-id subnet-pub-a"),
        "{text}"
    );
    assert!(text.contains("replace-route --route-table-id rtb-private-a --destination-cidr-block 0.0.0.0/0 --nat-gateway-id \"$NAT_"), "{text}");
    assert!(
        text.contains("delete-nat-gateway --nat-gateway-id nat-a"),
        "{text}"
    );
}

#[test]
fn complete_commands_are_recognised_and_placeholders_are_not() {
    assert!(complete_commands(
        "aws ec2 modify-vpc-endpoint --vpc-endpoint-id vpce-1 --private-dns-enabled"
    )
    .is_some());
    assert!(complete_commands(
        "Restore it:\naws iam update-assume-role-policy --role-name r --policy-document '{}'"
    )
    .is_some());
    assert!(complete_commands("aws ec2 create-subnet --cidr-block <cidr>").is_none());
    let missing =
        "If the role comes from the stack, update it. Otherwise:\nAdd the missing grants:\n\
                   aws iam create-policy --policy-name p --policy-document '{}'\n\
                   aws iam attach-role-policy --role-name r --policy-arn arn:aws:iam::1:policy/p";
    assert_eq!(complete_commands(missing).unwrap().len(), 2);
    assert!(complete_commands("aws iam get-role --role-name r\nthen look at it").is_none());
    assert!(complete_commands(
        "Remove the extra grants (aws iam list-role-policies --role-name r)"
    )
    .is_none());
    assert_eq!(
        environment_variables(r#"x '"'"$UNION_EXTERNAL_ID"'"' "$NAT_3""#),
        vec!["UNION_EXTERNAL_ID".to_string()]
    );
}

#[test]
fn endpoints_sharing_a_security_group_share_one_step() {
    let snapshot = compliant_vpc()
        .with(|r| r.security_groups[0].ingress[0].ipv4_ranges = vec!["10.0.0.0/24".into()])
        .build();
    let plan = plan_of(&snapshot);
    let steps: Vec<&Step> = plan.automatic_steps().collect();
    assert_eq!(steps.len(), 1, "{}", all_text(&plan));
    assert_eq!(steps[0].fixes.len(), 3);
    assert_eq!(steps[0].commands.len(), 1);
}
