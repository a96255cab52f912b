//! Proof by applying (issue 21): broken VPCs and IAM roles are built in moto through the AWS
//! API, the real binary writes `--once --format fix-script`, bash runs that script with the
//! real AWS CLI (pinned in `.venv/awscli` by scripts/setup-test-env.sh) pointed at moto, and
//! a new scan must show every finding that had an automatic fix gone, no finding that was
//! not there before, and a new fix script with no automatic step left.
//!
//! moto quirk that shapes a scenario: a NAT gateway is `available` as soon as it is created,
//! so `aws ec2 wait nat-gateway-available` returns at once (it still runs, against moto).

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use aws_sdk_ec2::types::{IpPermission, IpRange};
use common::cfn::union_role;
use common::scenario::{self, BuiltVpc, Layout};
use common::{auditor, create_role, json_report, run, temp_file, Moto, REGION};
use serde_json::{json, Value};

const CONFIG: &str = "scope:\n  exclude_default_vpc: true\n";
const ACCOUNT: &str = "123456789012";
const EXTERNAL_ID: &str = "fix-Apply-Sekr1t-7";
const ROLE: &str = "union-ai-admin";

/// The AWS CLI the setup script installs (or `$AWS_CLI`).
fn aws_cli() -> PathBuf {
    if let Some(path) = std::env::var_os("AWS_CLI") {
        return PathBuf::from(path);
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/awscli/bin/aws");
    assert!(
        path.exists(),
        "AWS CLI not found at {}: run scripts/setup-test-env.sh",
        path.display()
    );
    path
}

type Found = BTreeSet<(String, String)>;

fn findings(report: &Value) -> Found {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            (
                f["rule_id"].as_str().unwrap().to_string(),
                f["resource_id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// (rule, resource) of every finding an automatic step of the report's plan fixes.
fn automatically_fixed(report: &Value) -> Found {
    let mut out = Found::new();
    for group in report["plan"]["groups"]
        .as_array()
        .expect("a plan in the report")
    {
        for step in group["steps"].as_array().unwrap() {
            if step["kind"] == "automatic" {
                for f in step["fixes"].as_array().unwrap() {
                    out.insert((
                        f["rule_id"].as_str().unwrap().to_string(),
                        f["resource_id"].as_str().unwrap().to_string(),
                    ));
                }
            }
        }
    }
    out
}

fn automatic_step_count(report: &Value) -> usize {
    report["plan"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["steps"].as_array().unwrap())
        .filter(|s| s["kind"] == "automatic")
        .count()
}

struct Run<'a> {
    moto: &'a Moto,
    config: PathBuf,
    _dir: tempfile::TempDir,
}

impl<'a> Run<'a> {
    fn new(moto: &'a Moto) -> Self {
        let (dir, config) = temp_file("config.yaml", CONFIG);
        Run {
            moto,
            config,
            _dir: dir,
        }
    }

    fn scan(&self) -> Value {
        let mut cmd = self.moto.once_json(Some(&self.config));
        cmd.env("UNION_EXTERNAL_ID", EXTERNAL_ID);
        let out = run(&mut cmd);
        let report = json_report(&out);
        assert!(
            report["scans"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["status"] == "ok"),
            "every scan completes: {}",
            report["scans"]
        );
        report
    }

    fn fix_script(&self) -> String {
        let mut cmd = auditor();
        cmd.args(["--once", "--format", "fix-script", "--endpoint-url"])
            .arg(self.moto.endpoint())
            .arg("--config")
            .arg(&self.config)
            .env("UNION_EXTERNAL_ID", EXTERNAL_ID);
        let out = run(&mut cmd);
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "fix-script run: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs `script` with bash and the pinned AWS CLI against moto.
    fn apply(&self, script: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fix.sh");
        std::fs::write(&path, script).unwrap();
        let cli = aws_cli();
        let bin = cli.parent().unwrap();
        let path_var = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut cmd = Command::new("bash");
        cmd.arg(&path);
        common::hermetic_aws_env(&mut cmd);
        cmd.env("PATH", path_var)
            .env("AWS_ENDPOINT_URL", self.moto.endpoint())
            .env("AWS_DEFAULT_REGION", REGION)
            .env("AWS_PAGER", "")
            .env("UNION_EXTERNAL_ID", EXTERNAL_ID);
        let out = cmd.output().expect("bash runs");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "the fix script failed\n--- script\n{script}\n--- stdout\n{stdout}\n--- stderr\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    /// Scan, apply the fix script, re-scan; returns (before, after) reports.
    fn scan_apply_rescan(&self) -> (Value, Value, String) {
        let before = self.scan();
        let script = self.fix_script();
        assert!(script.contains("set -euo pipefail"));
        assert!(
            !script.contains(EXTERNAL_ID),
            "the external ID is never written into the script"
        );
        self.apply(&script);
        let after = self.scan();
        (before, after, script)
    }
}

/// The assertions of issue 21: automatically fixed findings are gone, nothing new, and the
/// next plan has no automatic step.
fn assert_fixed(before: &Value, after: &Value, must_fix: &[(&str, &str)]) {
    let fixed = automatically_fixed(before);
    for (rule, resource) in must_fix {
        assert!(
            fixed.contains(&(rule.to_string(), resource.to_string())),
            "{rule} on {resource} has an automatic fix; plan: {:#}",
            before["plan"]
        );
    }
    let was = findings(before);
    let now = findings(after);
    let still: Vec<_> = fixed.intersection(&now).collect();
    assert!(
        still.is_empty(),
        "still there after the fix: {still:?}\nafter: {:#}",
        after["findings"]
    );
    let new: Vec<_> = now.difference(&was).collect();
    assert!(
        new.is_empty(),
        "new findings after the fix: {new:?}\nafter: {:#}",
        after["findings"]
    );
    assert_eq!(
        automatic_step_count(after),
        0,
        "the next plan has no automatic step: {:#}",
        after["plan"]
    );
}

/// The union-ai-admin role of the latest template, for this test's account and external ID.
fn latest_union_role() -> common::cfn::RoleJson {
    let params = std::collections::BTreeMap::from([
        ("CrossAccountRoleName", ROLE),
        ("ExternalId", EXTERNAL_ID),
    ]);
    union_role("v0.13", ACCOUNT, REGION, &params)
}

fn id<'a>(vpc: &'a BuiltVpc, symbol: &str) -> &'a str {
    vpc.id(symbol)
}

/// Each VPC rule with an automatic fix, on its own broken VPC, all in one moto.
#[tokio::test(flavor = "multi_thread")]
async fn each_vpc_rule_is_fixed_by_the_script_on_its_own_broken_vpc() {
    let moto = Moto::start();
    let ec2 = moto.ec2().await;
    let compliant = Layout::compliant();
    let mut must: Vec<(String, String)> = Vec::new();

    let dns = scenario::build(&ec2, "dns-off", &compliant).await;
    ec2.modify_vpc_attribute()
        .vpc_id(&dns.vpc_id)
        .enable_dns_hostnames(
            aws_sdk_ec2::types::AttributeBooleanValue::builder()
                .value(false)
                .build(),
        )
        .send()
        .await
        .unwrap();
    must.push(("vpc.dns_attributes".into(), dns.vpc_id.clone()));

    let small = Layout {
        vpc_cidr: "10.0.0.0/17",
        secondary_cidr: Some("10.0.128.0/17"),
        ..compliant.clone()
    };
    let small = scenario::build(&ec2, "small-vpc-cidr", &small).await;
    must.push(("vpc.cidr_size".into(), small.vpc_id.clone()));

    let igw = scenario::build(&ec2, "igw-unrouted", &compliant).await;
    scenario::delete_default_route(&ec2, id(&igw, "rtb-public")).await;
    must.push(("vpc.igw_attached".into(), igw.vpc_id.clone()));
    must.push(("vpc.public_subnet_per_az".into(), igw.vpc_id.clone()));
    must.push(("nat.in_public_subnet".into(), id(&igw, "nat-a").into()));

    let no_public_c = Layout {
        public_azs: vec!['a', 'b'],
        ..compliant.clone()
    };
    let no_public = scenario::build(&ec2, "no-public-subnet-in-c", &no_public_c).await;
    must.push(("vpc.public_subnet_per_az".into(), no_public.vpc_id.clone()));
    must.push((
        "nat.same_az".into(),
        id(&no_public, "subnet-private-c").into(),
    ));

    let egress = scenario::build(&ec2, "private-without-egress", &compliant).await;
    scenario::delete_default_route(&ec2, id(&egress, "rtb-private-c")).await;
    must.push((
        "subnet.private_egress".into(),
        id(&egress, "subnet-private-c").into(),
    ));

    let misplaced = scenario::build(&ec2, "nat-in-private-subnet", &compliant).await;
    let nat = scenario::create_nat(&ec2, id(&misplaced, "subnet-private-c")).await;
    scenario::route_private_to(&ec2, id(&misplaced, "rtb-private-c"), &nat).await;
    must.push(("nat.in_public_subnet".into(), nat));

    let cross = scenario::build(&ec2, "cross-az-nat", &compliant).await;
    scenario::route_private_to(&ec2, id(&cross, "rtb-private-c"), id(&cross, "nat-a")).await;
    must.push(("nat.same_az".into(), id(&cross, "subnet-private-c").into()));

    let s3 = scenario::build(&ec2, "s3-endpoint-missing-a-table", &compliant).await;
    ec2.modify_vpc_endpoint()
        .vpc_endpoint_id(id(&s3, "vpce-s3"))
        .remove_route_table_ids(id(&s3, "rtb-private-c"))
        .send()
        .await
        .unwrap();
    must.push(("endpoint.s3_gateway".into(), s3.vpc_id.clone()));

    let ecr = scenario::build(&ec2, "no-ecr-endpoint", &compliant).await;
    ec2.delete_vpc_endpoints()
        .vpc_endpoint_ids(id(&ecr, "vpce-ecr.dkr"))
        .send()
        .await
        .unwrap();
    must.push(("endpoint.interface_required".into(), ecr.vpc_id.clone()));

    let coverage = scenario::build(&ec2, "logs-endpoint-two-azs", &compliant).await;
    ec2.modify_vpc_endpoint()
        .vpc_endpoint_id(id(&coverage, "vpce-logs"))
        .remove_subnet_ids(id(&coverage, "subnet-private-c"))
        .send()
        .await
        .unwrap();
    must.push((
        "endpoint.interface_az_coverage".into(),
        id(&coverage, "vpce-logs").into(),
    ));

    let sg = scenario::build(&ec2, "endpoint-sg-too-narrow", &compliant).await;
    let narrow = |cidr: &str| {
        IpPermission::builder()
            .ip_protocol("tcp")
            .from_port(443)
            .to_port(443)
            .ip_ranges(IpRange::builder().cidr_ip(cidr).build())
            .build()
    };
    ec2.revoke_security_group_ingress()
        .group_id(id(&sg, "sg-endpoints"))
        .ip_permissions(narrow("10.0.0.0/16"))
        .send()
        .await
        .unwrap();
    ec2.authorize_security_group_ingress()
        .group_id(id(&sg, "sg-endpoints"))
        .ip_permissions(narrow("10.0.0.0/24"))
        .send()
        .await
        .unwrap();
    must.push((
        "endpoint.security_group".into(),
        id(&sg, "vpce-logs").into(),
    ));

    let run = Run::new(&moto);
    let (before, after, script) = run.scan_apply_rescan();
    let must: Vec<(&str, &str)> = must.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    assert_fixed(&before, &after, &must);
    // What the script did, as a person reads it.
    assert!(script.contains("create-nat-gateway"), "{script}");
    assert!(script.contains("wait nat-gateway-available"), "{script}");
    // The new fix script has no step left to run.
    let again = run.fix_script();
    assert!(!again.contains("\naws "), "{again}");
}

/// A multi-tier VPC: two private subnets per AZ (nodes and an app tier), all on one shared
/// route table routed to zone a's NAT, and the logs endpoint gone. Each zone gets its own
/// table; the endpoint gets one subnet per AZ.
#[tokio::test(flavor = "multi_thread")]
async fn a_multi_tier_vpc_with_a_shared_route_table_is_fixed() {
    let moto = Moto::start();
    let ec2 = moto.ec2().await;
    let vpc = scenario::build(&ec2, "multi-tier", &Layout::compliant()).await;
    let shared = id(&vpc, "rtb-private-a").to_string();
    let mut app = Vec::new();
    for (i, letter) in ['a', 'b', 'c'].into_iter().enumerate() {
        let subnet = scenario::create_subnet(
            &ec2,
            &vpc.vpc_id,
            letter,
            &format!("10.0.{}.0/24", 200 + i),
            &format!("multi-tier-private-app-{letter}"),
        )
        .await;
        ec2.associate_route_table()
            .route_table_id(&shared)
            .subnet_id(&subnet)
            .send()
            .await
            .unwrap();
        app.push(subnet);
    }
    // The node subnets of b and c move onto the shared table too.
    let tables = ec2
        .describe_route_tables()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("vpc-id")
                .values(&vpc.vpc_id)
                .build(),
        )
        .send()
        .await
        .unwrap();
    for letter in ['b', 'c'] {
        let subnet = id(&vpc, &format!("subnet-private-{letter}"));
        let association = tables
            .route_tables()
            .iter()
            .flat_map(|t| t.associations())
            .find(|a| a.subnet_id() == Some(subnet))
            .and_then(|a| a.route_table_association_id())
            .unwrap()
            .to_string();
        ec2.replace_route_table_association()
            .association_id(association)
            .route_table_id(&shared)
            .send()
            .await
            .unwrap();
    }
    ec2.delete_vpc_endpoints()
        .vpc_endpoint_ids(id(&vpc, "vpce-logs"))
        .send()
        .await
        .unwrap();

    let run = Run::new(&moto);
    let (before, after, script) = run.scan_apply_rescan();
    let must = [
        ("nat.same_az", id(&vpc, "subnet-private-b")),
        ("nat.same_az", id(&vpc, "subnet-private-c")),
        ("nat.same_az", app[1].as_str()),
        ("nat.same_az", app[2].as_str()),
        ("endpoint.interface_required", vpc.vpc_id.as_str()),
    ];
    assert_fixed(&before, &after, &must);
    assert_eq!(
        script
            .lines()
            .filter(|l| l.starts_with("RTB_") && l.contains("create-route-table --vpc-id"))
            .count(),
        2,
        "{script}"
    );
    // One subnet per AZ for the new endpoint: the /18 node subnets, not the app tier.
    let create = script
        .lines()
        .find(|l| l.starts_with("aws ") && l.contains("create-vpc-endpoint"))
        .expect("a create-vpc-endpoint line");
    for a in &app {
        assert!(!create.contains(a.as_str()), "{create}");
    }
}

/// IAM drift on the Union role: permissions missing, an excess grant, and a trust policy
/// opened to another account. Missing permissions and the trust are fixed by the script (the
/// external ID read from UNION_EXTERNAL_ID); the excess grant is a manual step.
#[tokio::test(flavor = "multi_thread")]
async fn iam_drift_is_fixed_and_the_excess_grant_is_a_manual_step() {
    let moto = Moto::start();
    let iam = moto.iam().await;
    let latest = latest_union_role();
    // Missing: the last policy document is left out. Excess: iam:CreateUser on everything.
    let mut policies: Vec<Value> = latest.policies[..latest.policies.len() - 1].to_vec();
    if policies.is_empty() {
        let mut doc = latest.policies[0].clone();
        let statements = doc["Statement"].as_array_mut().unwrap();
        statements.pop();
        policies.push(doc);
    }
    policies.push(json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iam:CreateUser", "Resource": "*"}]}));
    let mut trust = latest.trust.clone();
    trust["Statement"][0]["Principal"] = json!({"AWS": "arn:aws:iam::999988887777:root"});
    create_role(&iam, ROLE, &trust, &policies).await;

    let run = Run::new(&moto);
    let (before, after, script) = run.scan_apply_rescan();
    let arn = format!("arn:aws:iam::{ACCOUNT}:role/{ROLE}");
    assert_fixed(
        &before,
        &after,
        &[
            ("iam.policy_missing_permissions", arn.as_str()),
            ("iam.trust_policy_drift", arn.as_str()),
        ],
    );
    assert!(script.contains("\"$UNION_EXTERNAL_ID\""), "{script}");
    let excess = ("iam.policy_excess_permissions".to_string(), arn.clone());
    assert!(
        findings(&after).contains(&excess),
        "the excess grant is not removed blindly"
    );
    assert!(!automatically_fixed(&before).contains(&excess));
}

/// A permissions boundary that removes an action the vendor's policy grants: the script
/// writes the boundary's widened document as its new default version, and the re-scan (which
/// reads that default version back through GetAccountAuthorizationDetails) has the finding
/// gone. moto does not enforce permissions boundaries on API calls (its optional access
/// control ignores them), so the proof is the re-scan, not a call the role makes. moto does
/// enforce IAM's 5-version limit on a managed policy, so `create-policy-version` is checked
/// for real.
#[tokio::test(flavor = "multi_thread")]
async fn a_permission_boundary_gap_is_fixed_by_a_new_default_version_of_the_boundary() {
    let moto = Moto::start();
    let iam = moto.iam().await;
    let latest = latest_union_role();
    create_role(&iam, ROLE, &latest.trust, &latest.policies).await;
    let (removed, _) = common::cfn::allow_pairs(&latest.policies)
        .into_iter()
        .find(|(action, _)| !action.contains('*'))
        .expect("a plain action");
    let boundary_arn = common::set_boundary(
        &iam,
        ROLE,
        "TeamCap",
        &json!({"Version": "2012-10-17", "Statement": [
                {"Sid": "AllButOne", "Effect": "Allow", "NotAction": [removed], "Resource": "*"}]}),
    )
    .await;

    let run = Run::new(&moto);
    let (before, after, script) = run.scan_apply_rescan();
    let arn = format!("arn:aws:iam::{ACCOUNT}:role/{ROLE}");
    assert_fixed(
        &before,
        &after,
        &[("iam.policy_missing_permissions", arn.as_str())],
    );
    assert!(
        script.contains(&format!(
            "aws iam create-policy-version --policy-arn {boundary_arn} --set-as-default"
        )),
        "{script}"
    );
    assert!(
        !script.contains("delete-role-permissions-boundary --role-name"),
        "the boundary is widened, not removed: {script}"
    );
    // The role keeps its boundary; the boundary's default version is the widened document,
    // which keeps the old statement and allows the removed action.
    let role = iam.get_role().role_name(ROLE).send().await.unwrap();
    assert_eq!(
        role.role()
            .unwrap()
            .permissions_boundary()
            .and_then(|b| b.permissions_boundary_arn()),
        Some(boundary_arn.as_str())
    );
    let policy = iam
        .get_policy()
        .policy_arn(&boundary_arn)
        .send()
        .await
        .unwrap();
    let version = policy
        .policy()
        .unwrap()
        .default_version_id()
        .unwrap()
        .to_string();
    assert_eq!(version, "v2");
    let document = iam
        .get_policy_version()
        .policy_arn(&boundary_arn)
        .version_id(&version)
        .send()
        .await
        .unwrap();
    let text = document.policy_version().unwrap().document().unwrap();
    // IAM returns policy documents URL-encoded.
    let text = percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .unwrap()
        .to_string();
    let widened: Value = serde_json::from_str(&text).unwrap();
    let statements = widened["Statement"].as_array().unwrap();
    assert_eq!(statements[0]["Sid"], "AllButOne", "{text}");
    assert!(
        statements[1..]
            .iter()
            .any(|s| s["Effect"] == "Allow"
                && s["Action"].to_string().contains(&removed.to_lowercase())),
        "{text}"
    );
}
