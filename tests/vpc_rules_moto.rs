//! End to end against a real AWS API (moto): one compliant VPC and one broken VPC per rule
//! are built through the SDK, the real binary audits them with `--once --format json`, and
//! each VPC's findings must be exactly the expected ones.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::{AttributeBooleanValue, IpPermission, IpRange};
use common::scenario::{self, BuiltVpc, Layout};
use common::{auditor, json_report, run, temp_file, Moto};
use serde_json::Value;

type Expected = BTreeSet<(String, String)>;

fn expect(pairs: &[(&str, &str)]) -> Expected {
    pairs
        .iter()
        .map(|(r, s)| (r.to_string(), s.to_string()))
        .collect()
}

/// Builds every scenario in one moto and returns them with their expected findings.
async fn build_all(moto: &Moto) -> Vec<(BuiltVpc, Expected)> {
    let ec2 = moto.ec2().await;
    let mut out = Vec::new();
    let compliant = Layout::compliant();

    out.push((
        scenario::build(&ec2, "compliant", &compliant).await,
        expect(&[]),
    ));

    let two_azs = Layout {
        public_azs: vec!['a', 'b'],
        private_azs: vec!['a', 'b'],
        ..compliant.clone()
    };
    out.push((
        scenario::build(&ec2, "two-azs", &two_azs).await,
        expect(&[("vpc.az_count", "vpc")]),
    ));

    let small_vpc = Layout {
        vpc_cidr: "10.0.0.0/17",
        secondary_cidr: Some("10.0.128.0/17"),
        ..compliant.clone()
    };
    out.push((
        scenario::build(&ec2, "small-vpc-cidr", &small_vpc).await,
        expect(&[("vpc.cidr_size", "vpc")]),
    ));

    let vpc = scenario::build(&ec2, "igw-unrouted", &compliant).await;
    scenario::delete_default_route(&ec2, vpc.id("rtb-public")).await;
    out.push((
        vpc,
        expect(&[
            ("vpc.igw_attached", "vpc"),
            ("vpc.public_subnet_per_az", "vpc"),
            ("nat.in_public_subnet", "nat-a"),
            ("nat.in_public_subnet", "nat-b"),
            ("nat.in_public_subnet", "nat-c"),
        ]),
    ));

    let vpc = scenario::build(&ec2, "dns-hostnames-off", &compliant).await;
    ec2.modify_vpc_attribute()
        .vpc_id(&vpc.vpc_id)
        .enable_dns_hostnames(AttributeBooleanValue::builder().value(false).build())
        .send()
        .await
        .unwrap();
    out.push((vpc, expect(&[("vpc.dns_attributes", "vpc")])));

    let no_public_c = Layout {
        public_azs: vec!['a', 'b'],
        ..compliant.clone()
    };
    out.push((
        scenario::build(&ec2, "no-public-subnet-in-c", &no_public_c).await,
        expect(&[
            ("vpc.public_subnet_per_az", "vpc"),
            ("nat.same_az", "subnet-private-c"),
        ]),
    ));

    let no_private_c = Layout {
        private_azs: vec!['a', 'b'],
        ..compliant.clone()
    };
    out.push((
        scenario::build(&ec2, "no-private-subnet-in-c", &no_private_c).await,
        expect(&[("vpc.private_subnet_per_az", "vpc")]),
    ));

    let small_private = Layout {
        private_prefix: [('c', 24)].into(),
        ..compliant.clone()
    };
    out.push((
        scenario::build(&ec2, "small-private-subnet", &small_private).await,
        expect(&[
            ("subnet.private_size", "subnet-private-c"),
            ("subnet.ip_capacity", "subnet-private-c"),
        ]),
    ));

    let large_public = Layout {
        public_prefix: [('a', 24)].into(),
        ..compliant.clone()
    };
    out.push((
        scenario::build(&ec2, "large-public-subnet", &large_public).await,
        expect(&[("subnet.public_size", "subnet-public-a")]),
    ));

    let vpc = scenario::build(&ec2, "private-without-egress", &compliant).await;
    scenario::delete_default_route(&ec2, vpc.id("rtb-private-c")).await;
    out.push((
        vpc,
        expect(&[("subnet.private_egress", "subnet-private-c")]),
    ));

    let mut vpc = scenario::build(&ec2, "nat-in-private-subnet", &compliant).await;
    let nat = scenario::create_nat(&ec2, vpc.id("subnet-private-c")).await;
    scenario::route_private_to(&ec2, vpc.id("rtb-private-c"), &nat).await;
    vpc.ids.insert("nat-in-private".into(), nat);
    out.push((vpc, expect(&[("nat.in_public_subnet", "nat-in-private")])));

    let vpc = scenario::build(&ec2, "cross-az-nat", &compliant).await;
    scenario::route_private_to(&ec2, vpc.id("rtb-private-c"), vpc.id("nat-a")).await;
    out.push((vpc, expect(&[("nat.same_az", "subnet-private-c")])));

    let vpc = scenario::build(&ec2, "s3-endpoint-missing-a-table", &compliant).await;
    ec2.modify_vpc_endpoint()
        .vpc_endpoint_id(vpc.id("vpce-s3"))
        .remove_route_table_ids(vpc.id("rtb-private-c"))
        .send()
        .await
        .unwrap();
    out.push((vpc, expect(&[("endpoint.s3_gateway", "vpc")])));

    let vpc = scenario::build(&ec2, "no-ecr-endpoint", &compliant).await;
    ec2.delete_vpc_endpoints()
        .vpc_endpoint_ids(vpc.id("vpce-ecr.dkr"))
        .send()
        .await
        .unwrap();
    out.push((vpc, expect(&[("endpoint.interface_required", "vpc")])));

    let vpc = scenario::build(&ec2, "logs-endpoint-two-azs", &compliant).await;
    ec2.modify_vpc_endpoint()
        .vpc_endpoint_id(vpc.id("vpce-logs"))
        .remove_subnet_ids(vpc.id("subnet-private-c"))
        .send()
        .await
        .unwrap();
    out.push((
        vpc,
        expect(&[("endpoint.interface_az_coverage", "vpce-logs")]),
    ));

    let dns_off = Layout {
        private_dns_off: vec!["ec2"],
        ..compliant.clone()
    };
    let vpc = scenario::build(&ec2, "ec2-endpoint-private-dns-off", &dns_off).await;
    out.push((vpc, expect(&[("endpoint.private_dns", "vpce-ec2")])));

    let vpc = scenario::build(&ec2, "endpoint-sg-too-narrow", &compliant).await;
    let narrow = |cidr: &str| {
        IpPermission::builder()
            .ip_protocol("tcp")
            .from_port(443)
            .to_port(443)
            .ip_ranges(IpRange::builder().cidr_ip(cidr).build())
            .build()
    };
    ec2.revoke_security_group_ingress()
        .group_id(vpc.id("sg-endpoints"))
        .ip_permissions(narrow("10.0.0.0/16"))
        .send()
        .await
        .unwrap();
    ec2.authorize_security_group_ingress()
        .group_id(vpc.id("sg-endpoints"))
        .ip_permissions(narrow("10.0.0.0/24"))
        .send()
        .await
        .unwrap();
    out.push((
        vpc,
        expect(&[
            ("endpoint.security_group", "vpce-logs"),
            ("endpoint.security_group", "vpce-ecr.dkr"),
            ("endpoint.security_group", "vpce-ec2"),
        ]),
    ));
    out
}

/// Findings of the report grouped by VPC id, as (rule, symbolic resource) pairs.
fn findings_by_vpc(report: &Value, built: &[(BuiltVpc, Expected)]) -> BTreeMap<String, Expected> {
    let mut out: BTreeMap<String, Expected> = BTreeMap::new();
    for f in report["findings"].as_array().expect("findings array") {
        let vpc_id = f["vpc_id"].as_str().unwrap_or("").to_string();
        let resource = f["resource_id"].as_str().unwrap_or("");
        let symbol = built
            .iter()
            .find(|(b, _)| b.vpc_id == vpc_id)
            .map(|(b, _)| b.symbol(resource))
            .unwrap_or_else(|| resource.to_string());
        out.entry(vpc_id)
            .or_default()
            .insert((f["rule_id"].as_str().unwrap_or("").to_string(), symbol));
    }
    out
}

const CONFIG_WITHOUT_DEFAULT_VPC: &str = "scope:\n  exclude_default_vpc: true\n";

#[tokio::test(flavor = "multi_thread")]
async fn each_rule_fires_on_its_broken_vpc_and_the_compliant_vpc_is_clean() {
    let moto = Moto::start();
    let built = build_all(&moto).await;
    let (_dir, config) = temp_file("config.yaml", CONFIG_WITHOUT_DEFAULT_VPC);

    let out = run(&mut moto.once_json(Some(&config)));
    assert_eq!(
        out.status.code(),
        Some(1),
        "findings exist: exit 1; stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json_report(&out);

    // Every scenario VPC was audited, and the default VPC was excluded.
    let audited: BTreeSet<&str> = report["vpcs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["vpc_id"].as_str())
        .collect();
    let expected_vpcs: BTreeSet<&str> = built.iter().map(|(b, _)| b.vpc_id.as_str()).collect();
    assert_eq!(audited, expected_vpcs);

    let actual = findings_by_vpc(&report, &built);
    let mut mismatches = Vec::new();
    for (vpc, expected) in &built {
        let got = actual.get(&vpc.vpc_id).cloned().unwrap_or_default();
        if &got != expected {
            mismatches.push(format!(
                "{}: expected {expected:?}\n   got {got:?}",
                vpc.name
            ));
        }
    }
    assert!(mismatches.is_empty(), "\n{}", mismatches.join("\n"));

    // Every rule in the catalogue's VPC section fired somewhere.
    let fired: BTreeSet<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["rule_id"].as_str())
        .collect();
    for rule in [
        "vpc.az_count",
        "vpc.cidr_size",
        "vpc.igw_attached",
        "vpc.dns_attributes",
        "vpc.public_subnet_per_az",
        "vpc.private_subnet_per_az",
        "subnet.private_size",
        "subnet.public_size",
        "subnet.private_egress",
        "subnet.ip_capacity",
        "nat.in_public_subnet",
        "nat.same_az",
        "endpoint.s3_gateway",
        "endpoint.interface_required",
        "endpoint.interface_az_coverage",
        "endpoint.private_dns",
        "endpoint.security_group",
    ] {
        assert!(fired.contains(rule), "{rule} never fired");
    }

    // The scan metadata counts one call per resource type, plus the per-VPC attributes.
    let scan = report["scans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["region"] == common::REGION)
        .unwrap();
    assert_eq!(scan["status"], "ok");
    assert_eq!(scan["account_id"], "123456789012");
    let calls = scan["api_calls"].as_object().unwrap();
    for op in [
        "ec2:DescribeVpcs",
        "ec2:DescribeSubnets",
        "ec2:DescribeRouteTables",
        "ec2:DescribeInternetGateways",
        "ec2:DescribeNatGateways",
        "ec2:DescribeVpcEndpoints",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeAvailabilityZones",
        "ec2:DescribeTransitGatewayVpcAttachments",
        "ec2:DescribeNetworkInterfaces",
        "sts:GetCallerIdentity",
    ] {
        assert_eq!(calls[op], 1, "{op}");
    }
    assert_eq!(calls["ec2:DescribeVpcAttribute"], 2 * built.len() as u64);

    // Summary and schema.
    assert_eq!(report["schema_version"], 1);
    assert!(report["generated_at"].as_str().unwrap().ends_with('Z'));
    let total: u64 = report["summary"]["by_severity"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(total, report["findings"].as_array().unwrap().len() as u64);
    let first = &report["findings"][0];
    for field in [
        "rule_id",
        "severity",
        "account_id",
        "region",
        "resource_type",
        "resource_id",
        "vpc_id",
        "message",
        "remediation",
        "details",
    ] {
        assert!(first.get(field).is_some(), "finding lacks {field}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn compliant_vpc_alone_exits_zero_and_default_vpc_is_skipped_unless_asked_for() {
    let moto = Moto::start();
    let ec2 = moto.ec2().await;
    let good = scenario::build(&ec2, "compliant", &Layout::compliant()).await;
    // The shipped pack also expects Union's role: create it as the current template says.
    let external_id = "compliant-test-external-id";
    let params = BTreeMap::from([
        ("CrossAccountRoleName", "union-ai-admin"),
        ("ExternalId", external_id),
    ]);
    let role = common::cfn::union_role("v0.13", "123456789012", common::REGION, &params);
    common::create_role(
        &moto.iam().await,
        "union-ai-admin",
        &role.trust,
        &role.policies,
    )
    .await;
    let audit = |config: Option<&std::path::Path>| {
        let mut cmd = moto.once_json(config);
        cmd.env("UNION_EXTERNAL_ID", external_id);
        let out = run(&mut cmd);
        (json_report(&out), out.status.code())
    };

    let (_dir, config) = temp_file("config.yaml", CONFIG_WITHOUT_DEFAULT_VPC);
    let (report, code) = audit(Some(&config));
    assert_eq!(report["findings"], serde_json::json!([]), "{report:#}");
    assert_eq!(code, Some(0));

    // Without a config the default VPC is skipped too (deliberately, since issue 15).
    let (report, code) = audit(None);
    assert_eq!(report["findings"], serde_json::json!([]), "{report:#}");
    assert_eq!(report["vpcs"].as_array().unwrap().len(), 1);
    assert_eq!(report["skipped"][0]["is_default"], true, "{report:#}");
    assert_eq!(code, Some(0));

    // Asked for, moto's default VPC is audited too, and marked as the default.
    let (_dir, audit_default) = temp_file("config.yaml", "scope:\n  exclude_default_vpc: false\n");
    let (report, code) = audit(Some(&audit_default));
    assert_eq!(report["skipped"], serde_json::json!([]), "{report:#}");
    let vpcs = report["vpcs"].as_array().unwrap();
    assert_eq!(vpcs.len(), 2);
    let default = vpcs
        .iter()
        .find(|v| v["is_default"] == true)
        .expect("default VPC audited");
    assert_ne!(default["vpc_id"], good.vpc_id.as_str());
    assert_eq!(code, Some(1), "the default VPC has findings");

    // Selecting by tag keeps only the tagged VPC.
    let (_dir, by_tag) = temp_file("config.yaml", "scope:\n  vpc_tags:\n    Name: compliant\n");
    let (report, code) = audit(Some(&by_tag));
    assert_eq!(report["vpcs"].as_array().unwrap().len(), 1);
    assert_eq!(code, Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn ip_capacity_reads_moto_free_ip_counts() {
    let moto = Moto::start();
    let ec2 = moto.ec2().await;
    let vpc = scenario::build(&ec2, "compliant", &Layout::compliant()).await;
    // A /18 has 16379 usable IPs; moto hands some to endpoint ENIs, so demanding them all
    // free must fire on every private subnet that holds an endpoint.
    let (_dir, config) = temp_file(
        "config.yaml",
        "scope:\n  exclude_default_vpc: true\nrule_overrides:\n  subnet.ip_capacity:\n    min_free_ips: 16379\n",
    );
    let out = run(&mut moto.once_json(Some(&config)));
    let report = json_report(&out);
    let found: Vec<&Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule_id"] == "subnet.ip_capacity")
        .collect();
    assert_eq!(found.len(), 3, "{report:#}");
    for f in found {
        assert!(vpc
            .symbol(f["resource_id"].as_str().unwrap())
            .starts_with("subnet-private-"));
        assert_eq!(f["details"]["usable_ips"], 16379);
        assert!(f["details"]["free_ips"].as_u64().unwrap() < 16379);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn snapshot_written_against_moto_audits_the_same_offline() {
    let moto = Moto::start();
    let ec2 = moto.ec2().await;
    scenario::build(
        &ec2,
        "no-public-subnet-in-c",
        &Layout {
            public_azs: vec!['a', 'b'],
            ..Layout::compliant()
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("snapshot.json");
    let live = run(moto.once_json(None).arg("--snapshot-out").arg(&snap));
    drop(moto);
    let offline = run(auditor()
        .args(["--once", "--format", "json"])
        .arg("--from-snapshot")
        .arg(&snap));
    let (live, offline) = (json_report(&live), json_report(&offline));
    assert_eq!(live["findings"], offline["findings"]);
    assert!(!live["findings"].as_array().unwrap().is_empty());
}
