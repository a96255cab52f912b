//! Enterprise networks against a real AWS API (moto), issue 15: isolated database subnets,
//! a transit-gateway spoke, private NAT gateways and declared data planes are built
//! through the SDK, the real binary audits them once with `--once --format json`, and each
//! VPC's findings must be the ones a network engineer would agree with.
//!
//! What moto cannot build (Network Firewall endpoints, blackholed routes, Cloud WAN, Local
//! Zones) is covered by unit tests on plain snapshots in `src/rules/` and by canned SDK
//! responses in `src/collect/ec2.rs`.

mod common;

use std::collections::BTreeSet;

use aws_sdk_ec2::types::{ConnectivityType, ResourceType};
use aws_sdk_ec2::Client;
use common::scenario::{self, BuiltVpc, Layout};
use common::{auditor, json_report, run, temp_file, Moto, REGION};
use serde_json::Value;

async fn route_table(ec2: &Client, vpc: &str, subnets: &[&str]) -> String {
    let rt = ec2
        .create_route_table()
        .vpc_id(vpc)
        .send()
        .await
        .expect("create route table")
        .route_table()
        .and_then(|t| t.route_table_id())
        .expect("route table id")
        .to_string();
    for s in subnets {
        ec2.associate_route_table()
            .route_table_id(&rt)
            .subnet_id(*s)
            .send()
            .await
            .expect("associate");
    }
    rt
}

/// A compliant VPC plus two isolated database subnets (no default route, no tag saying
/// private, small and nearly empty of free addresses would not matter).
async fn compliant_with_isolated_db(ec2: &Client) -> BuiltVpc {
    let mut vpc = scenario::build(ec2, "with-db", &Layout::compliant()).await;
    let a =
        scenario::create_subnet(ec2, &vpc.vpc_id, 'a', "10.0.250.0/26", "with-db-database-a").await;
    let b = scenario::create_subnet(
        ec2,
        &vpc.vpc_id,
        'b',
        "10.0.250.64/26",
        "with-db-database-b",
    )
    .await;
    route_table(ec2, &vpc.vpc_id, &[&a, &b]).await;
    vpc.ids.insert("subnet-db-a".into(), a);
    vpc.ids.insert("subnet-db-b".into(), b);
    vpc
}

/// A spoke VPC: no internet gateway, /18 application subnets whose default route goes to a
/// transit gateway, and /28 attachment subnets that hold the transit gateway attachment.
async fn tgw_spoke(ec2: &Client) -> BuiltVpc {
    let vpc_id = ec2
        .create_vpc()
        .cidr_block("10.1.0.0/16")
        .tag_specifications(scenario::tags(ResourceType::Vpc, "tgw-spoke"))
        .send()
        .await
        .expect("create vpc")
        .vpc()
        .and_then(|v| v.vpc_id())
        .expect("vpc id")
        .to_string();
    let mut vpc = BuiltVpc {
        name: "tgw-spoke".into(),
        vpc_id: vpc_id.clone(),
        ..Default::default()
    };
    let tgw = ec2
        .create_transit_gateway()
        .send()
        .await
        .expect("create transit gateway")
        .transit_gateway()
        .and_then(|t| t.transit_gateway_id())
        .expect("tgw id")
        .to_string();
    let mut attachment_subnets = Vec::new();
    let mut app_subnets = Vec::new();
    for (i, az) in ['a', 'b', 'c'].into_iter().enumerate() {
        let app = scenario::create_subnet(
            ec2,
            &vpc_id,
            az,
            &format!("10.1.{}.0/18", 64 * i),
            &format!("spoke-app-{az}"),
        )
        .await;
        let attach = scenario::create_subnet(
            ec2,
            &vpc_id,
            az,
            &format!("10.1.{}.0/28", 192 + i),
            &format!("spoke-tgw-{az}"),
        )
        .await;
        vpc.ids.insert(format!("subnet-app-{az}"), app.clone());
        vpc.ids.insert(format!("subnet-tgw-{az}"), attach.clone());
        app_subnets.push(app);
        attachment_subnets.push(attach);
    }
    ec2.create_transit_gateway_vpc_attachment()
        .transit_gateway_id(&tgw)
        .vpc_id(&vpc_id)
        .set_subnet_ids(Some(attachment_subnets.clone()))
        .send()
        .await
        .expect("attach the spoke");
    let all: Vec<&str> = app_subnets
        .iter()
        .chain(&attachment_subnets)
        .map(String::as_str)
        .collect();
    let rt = route_table(ec2, &vpc_id, &all).await;
    ec2.create_route()
        .route_table_id(&rt)
        .destination_cidr_block("0.0.0.0/0")
        .transit_gateway_id(&tgw)
        .send()
        .await
        .expect("default route to the transit gateway");
    vpc.ids.insert("tgw".into(), tgw);
    vpc
}

/// A compliant VPC whose private subnets route to private NAT gateways, one per AZ in the
/// subnet itself: no path to the internet.
async fn behind_private_nat(ec2: &Client) -> BuiltVpc {
    let vpc = scenario::build(ec2, "private-nat", &Layout::compliant()).await;
    for az in ['a', 'b', 'c'] {
        let nat = ec2
            .create_nat_gateway()
            .subnet_id(vpc.id(&format!("subnet-private-{az}")))
            .connectivity_type(ConnectivityType::Private)
            .send()
            .await
            .expect("private nat")
            .nat_gateway()
            .and_then(|n| n.nat_gateway_id())
            .expect("nat id")
            .to_string();
        scenario::route_private_to(ec2, vpc.id(&format!("rtb-private-{az}")), &nat).await;
    }
    vpc
}

/// A compliant VPC declared as a data plane, whose private subnet in b is then deleted.
async fn declared_with_deleted_subnet(ec2: &Client) -> (BuiltVpc, String) {
    let vpc = scenario::build(ec2, "declared-deleted", &Layout::compliant()).await;
    let gone = vpc.id("subnet-private-b").to_string();
    for service in ["logs", "ecr.dkr", "ec2"] {
        ec2.modify_vpc_endpoint()
            .vpc_endpoint_id(vpc.id(&format!("vpce-{service}")))
            .remove_subnet_ids(&gone)
            .send()
            .await
            .expect("take the subnet out of the endpoint");
    }
    ec2.delete_subnet()
        .subnet_id(&gone)
        .send()
        .await
        .expect("delete the declared subnet");
    (vpc, gone)
}

/// A compliant VPC declared as a data plane, with broken subnets it does not declare: a
/// tiny "private" subnet with no default route in a fourth zone and one in a.
async fn declared_with_broken_undeclared(ec2: &Client) -> BuiltVpc {
    let mut vpc = scenario::build(ec2, "declared-legacy", &Layout::compliant()).await;
    for (az, cidr) in [('a', "10.0.251.0/27"), ('d', "10.0.251.32/27")] {
        let s =
            scenario::create_subnet(ec2, &vpc.vpc_id, az, cidr, &format!("legacy-private-{az}"))
                .await;
        route_table(ec2, &vpc.vpc_id, &[&s]).await;
        vpc.ids.insert(format!("subnet-legacy-{az}"), s);
    }
    vpc
}

fn declaration(name: &str, vpc: &BuiltVpc) -> String {
    let ids = |role: &str| {
        ['a', 'b', 'c']
            .iter()
            .map(|az| vpc.id(&format!("subnet-{role}-{az}")).to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "  - name: {name}\n    pack: union-byoc\n    region: {REGION}\n    vpc_id: {}\n    \
         public_subnet_ids: [{}]\n    private_subnet_ids: [{}]\n",
        vpc.vpc_id,
        ids("public"),
        ids("private"),
    )
}

fn findings_of<'r>(report: &'r Value, vpc: &BuiltVpc) -> Vec<&'r Value> {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["vpc_id"] == vpc.vpc_id.as_str())
        .collect()
}

fn at_least_medium(f: &&Value) -> bool {
    matches!(f["severity"].as_str(), Some("medium" | "high" | "critical"))
}

fn show(findings: &[&Value], vpc: &BuiltVpc) -> String {
    findings
        .iter()
        .map(|f| {
            format!(
                "{} {} {} ({})",
                f["severity"].as_str().unwrap_or(""),
                f["rule_id"].as_str().unwrap_or(""),
                vpc.symbol(f["resource_id"].as_str().unwrap_or("")),
                f["message"].as_str().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Replaces the endpoint security group's CIDR rule of `vpc` by one whose source is a new
/// customer-managed prefix list holding `entries`; returns the list's id.
async fn endpoints_admit_prefix_list(ec2: &Client, vpc: &BuiltVpc, entries: &[&str]) -> String {
    use aws_sdk_ec2::types::{AddPrefixListEntry, IpPermission, IpRange, PrefixListId};
    let group = vpc.id("sg-endpoints");
    let mut create = ec2
        .create_managed_prefix_list()
        .prefix_list_name(format!("{}-corporate", vpc.name))
        .address_family("IPv4")
        .max_entries(10);
    for cidr in entries {
        create = create.entries(AddPrefixListEntry::builder().cidr(*cidr).build());
    }
    let list = create
        .send()
        .await
        .expect("create prefix list")
        .prefix_list()
        .and_then(|l| l.prefix_list_id())
        .expect("prefix list id")
        .to_string();
    ec2.revoke_security_group_ingress()
        .group_id(group)
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(443)
                .to_port(443)
                .ip_ranges(IpRange::builder().cidr_ip("10.0.0.0/16").build())
                .build(),
        )
        .send()
        .await
        .expect("revoke the CIDR rule");
    ec2.authorize_security_group_ingress()
        .group_id(group)
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(443)
                .to_port(443)
                .prefix_list_ids(PrefixListId::builder().prefix_list_id(&list).build())
                .build(),
        )
        .send()
        .await
        .expect("authorize 443 from the prefix list");
    list
}

/// Managed prefix lists resolve to their entries: a list covering the VPC CIDR admits it,
/// one that does not is a finding at the rule's severity, not "cannot be verified".
#[tokio::test(flavor = "multi_thread")]
async fn endpoint_security_groups_resolve_managed_prefix_lists() {
    let moto = Moto::start();
    let ec2 = moto.ec2().await;
    let covers = scenario::build(&ec2, "pl-covers", &Layout::compliant()).await;
    let short = scenario::build(&ec2, "pl-short", &Layout::compliant()).await;
    endpoints_admit_prefix_list(&ec2, &covers, &["10.0.0.0/17", "10.0.128.0/17"]).await;
    let short_list = endpoints_admit_prefix_list(&ec2, &short, &["10.0.0.0/17"]).await;

    let (_dir, config) = temp_file("config.yaml", "scope:\n  exclude_default_vpc: true\n");
    let report = json_report(&run(&mut moto.once_json(Some(&config))));
    let sg_findings = |vpc: &BuiltVpc| -> Vec<&Value> {
        findings_of(&report, vpc)
            .into_iter()
            .filter(|f| f["rule_id"] == "endpoint.security_group")
            .collect()
    };
    assert!(
        sg_findings(&covers).is_empty(),
        "{}",
        show(&sg_findings(&covers), &covers)
    );
    let found = sg_findings(&short);
    assert!(!found.is_empty(), "{report:#}");
    for f in &found {
        assert_eq!(f["severity"], "medium", "{f:#}");
        assert!(f["details"]["unverifiable"].is_null(), "{f:#}");
        assert_eq!(
            f["details"]["vpc_cidrs_not_admitted"],
            serde_json::json!(["10.0.0.0/16"])
        );
    }
    // One GetManagedPrefixListEntries per referenced list, not per endpoint or VPC.
    let calls = &report["scans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["region"] == REGION)
        .expect("the region's scan")["api_calls"];
    assert_eq!(calls["ec2:GetManagedPrefixListEntries"], 2, "{calls:#}");
    assert!(short_list.starts_with("pl-"));
}

/// Deliberate since issue 15: the default VPC is not audited unless the config asks for
/// it, and the report still lists it as skipped.
#[tokio::test(flavor = "multi_thread")]
async fn a_broken_default_vpc_is_skipped_and_listed_unless_the_config_audits_it() {
    let moto = Moto::start();
    let ec2 = moto.ec2().await;
    let default_vpc = ec2
        .describe_vpcs()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("is-default")
                .values("true")
                .build(),
        )
        .send()
        .await
        .expect("describe default VPC")
        .vpcs()
        .first()
        .and_then(|v| v.vpc_id())
        .expect("moto has a default VPC")
        .to_string();
    // Broken beyond what moto's default VPC already is: DNS resolution switched off.
    ec2.modify_vpc_attribute()
        .vpc_id(&default_vpc)
        .enable_dns_support(
            aws_sdk_ec2::types::AttributeBooleanValue::builder()
                .value(false)
                .build(),
        )
        .send()
        .await
        .expect("switch DNS support off");
    let on_default = |report: &Value| -> Vec<String> {
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["vpc_id"] == default_vpc.as_str())
            .map(|f| f["rule_id"].as_str().unwrap().to_string())
            .collect()
    };

    // No config: no finding on it, listed as skipped with account, region and reason.
    let report = json_report(&run(&mut moto.once_json(None)));
    assert!(on_default(&report).is_empty(), "{report:#}");
    assert!(report["vpcs"]
        .as_array()
        .unwrap()
        .iter()
        .all(|v| v["vpc_id"] != default_vpc.as_str()));
    let skipped = report["skipped"].as_array().expect("skipped list");
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert_eq!(skipped[0]["vpc_id"], default_vpc.as_str());
    assert_eq!(skipped[0]["region"], REGION);
    assert_eq!(skipped[0]["account_id"], "123456789012");
    assert_eq!(skipped[0]["is_default"], true);
    assert!(
        skipped[0]["reason"]
            .as_str()
            .unwrap()
            .contains("exclude_default_vpc: false"),
        "{skipped:?}"
    );

    // Asked for (the old explicit spelling still works): audited, and its findings shown.
    let (_dir, config) = temp_file("config.yaml", "scope:\n  exclude_default_vpc: false\n");
    let report = json_report(&run(&mut moto.once_json(Some(&config))));
    assert!(
        on_default(&report).contains(&"vpc.dns_attributes".to_string()),
        "{report:#}"
    );
    assert_eq!(report["skipped"], serde_json::json!([]));
    assert!(report["vpcs"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v["vpc_id"] == default_vpc.as_str() && v["is_default"] == true));
}

#[tokio::test(flavor = "multi_thread")]
async fn enterprise_networks_get_only_the_findings_an_engineer_would_agree_with() {
    let moto = Moto::start();
    let ec2 = moto.ec2().await;
    let with_db = compliant_with_isolated_db(&ec2).await;
    let spoke = tgw_spoke(&ec2).await;
    let private_nat = behind_private_nat(&ec2).await;
    // The declaration still names the deleted subnet, as the customer handed it over.
    let (declared_deleted, gone) = declared_with_deleted_subnet(&ec2).await;
    let declared_legacy = declared_with_broken_undeclared(&ec2).await;

    let config = format!(
        "scope:\n  exclude_default_vpc: true\ndata_planes:\n{}{}",
        declaration("union-deleted", &declared_deleted),
        declaration("union-legacy", &declared_legacy),
    );
    let (_dir, config_path) = temp_file("config.yaml", &config);
    let out = run(&mut moto.once_json(Some(&config_path)));
    assert_eq!(
        out.status.code(),
        Some(1),
        "findings exist: exit 1; stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json_report(&out);

    // A compliant VPC plus isolated database subnets: nothing at medium or above anywhere.
    let found = findings_of(&report, &with_db);
    let serious: Vec<&Value> = found.iter().copied().filter(at_least_medium).collect();
    assert!(serious.is_empty(), "with-db:\n{}", show(&serious, &with_db));

    // A transit-gateway spoke: nothing at medium or above on any subnet, and the corporate
    // egress once, at low, naming the transit gateway, with no NAT gateway remediation.
    let found = findings_of(&report, &spoke);
    let on_subnets: Vec<&Value> = found
        .iter()
        .copied()
        .filter(|f| f["resource_type"] == "subnet")
        .filter(at_least_medium)
        .collect();
    assert!(
        on_subnets.is_empty(),
        "spoke:\n{}",
        show(&on_subnets, &spoke)
    );
    let corporate: Vec<&&Value> = found
        .iter()
        .filter(|f| f["rule_id"] == "vpc.corporate_egress")
        .collect();
    assert_eq!(corporate.len(), 1, "spoke:\n{}", show(&found, &spoke));
    assert_eq!(corporate[0]["severity"], "low");
    assert!(corporate[0]["message"]
        .as_str()
        .unwrap()
        .contains(spoke.id("tgw")));
    assert!(!corporate[0]["remediation"]
        .as_str()
        .unwrap()
        .contains("create-nat-gateway"));

    // Private subnets behind a private NAT gateway: high on each.
    let found = findings_of(&report, &private_nat);
    let egress: BTreeSet<String> = found
        .iter()
        .filter(|f| f["rule_id"] == "subnet.private_egress" && f["severity"] == "high")
        .map(|f| private_nat.symbol(f["resource_id"].as_str().unwrap()))
        .collect();
    assert_eq!(
        egress,
        BTreeSet::from([
            "subnet-private-a".to_string(),
            "subnet-private-b".to_string(),
            "subnet-private-c".to_string()
        ]),
        "private-nat:\n{}",
        show(&found, &private_nat)
    );

    // A declared data plane with one declared subnet deleted: critical, naming it.
    let found = findings_of(&report, &declared_deleted);
    let missing: Vec<&&Value> = found
        .iter()
        .filter(|f| f["rule_id"] == "data_plane.subnet_missing")
        .collect();
    assert_eq!(missing.len(), 1, "{}", show(&found, &declared_deleted));
    assert_eq!(missing[0]["severity"], "critical");
    assert_eq!(missing[0]["resource_id"], gone.as_str());
    assert!(missing[0]["message"].as_str().unwrap().contains(&gone));
    assert!(missing[0]["message"]
        .as_str()
        .unwrap()
        .contains("union-deleted"));

    // A declared data plane whose undeclared subnets are broken: nothing on them (nor on
    // their fourth zone); the declared ones are compliant, so nothing at all.
    let found = findings_of(&report, &declared_legacy);
    assert!(
        found.is_empty(),
        "declared-legacy:\n{}",
        show(&found, &declared_legacy)
    );

    // Collection stays constant per account-region: one call per operation whatever the
    // number of VPCs (DescribeVpcAttribute aside: two per VPC).
    let scan = report["scans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["region"] == REGION)
        .unwrap();
    let calls = scan["api_calls"].as_object().unwrap();
    for op in [
        "ec2:DescribeTransitGatewayVpcAttachments",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeRouteTables",
        "ec2:DescribeSubnets",
    ] {
        assert_eq!(calls[op], 1, "{op}");
    }
    let vpcs = report["vpcs"].as_array().unwrap().len() as u64;
    assert_eq!(calls["ec2:DescribeVpcAttribute"], 2 * vpcs);
    eprintln!("api calls per account-region with {vpcs} VPCs: {calls:?}");
}

/// The examples that docs/network-classes.md runs, on the demo snapshot (no AWS).
#[test]
fn the_documented_examples_run_on_the_demo() {
    let example = |name: &str| {
        let path = format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"));
        let out = run(auditor().args(["--once", "--demo", "--format", "json", "--config", &path]));
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        json_report(&out)
    };
    let rules_on = |report: &Value, vpc: &str| -> BTreeSet<String> {
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["vpc_id"] == vpc)
            .map(|f| {
                format!(
                    "{} {}",
                    f["rule_id"].as_str().unwrap(),
                    f["resource_id"].as_str().unwrap()
                )
            })
            .collect()
    };

    let declared = example("data-plane.yaml");
    assert!(rules_on(&declared, "vpc-0a11c0ffee0000001").is_empty());
    let staging = rules_on(&declared, "vpc-0b22deadbeef00002");
    assert!(
        staging.contains("data_plane.subnet_missing subnet-stg-priv-c"),
        "{staging:?}"
    );

    let spoke = "vpc-0e55c0ffee0000005";
    let accepted = example("tgw-spoke.yaml");
    assert!(!rules_on(&accepted, spoke)
        .iter()
        .any(|r| r.starts_with("vpc.corporate_egress")));
    let out = run(auditor().args(["--once", "--demo", "--format", "json"]));
    let plain = json_report(&out);
    assert!(rules_on(&plain, spoke).contains(&format!("vpc.corporate_egress {spoke}")));
}
