//! IAM evaluation time of accounts holding 500, 1,000, 2,000 and 5,000 roles, on one thread:
//! `rules::evaluate` with the shipped union-byoc pack (the v0.13 template and the guide's
//! manual setup), its role name widened to the glob `union-ai-admin*` so that one role in
//! ten is compared policy by policy, and the account scanned in two regions.
//!
//! Every role's name goes through the expectation's name matcher; one role in ten is a
//! union-ai-admin copy built by hand from the guide's policy (one in three of those with a
//! drifted policy); one role in fifty carries an inline policy of about 100 kB. The
//! throughput column is roles per second: it stays flat from 500 to 5,000 roles when
//! evaluation is linear. `VPC_AUDITOR_BENCH_SIZES=500,5000` picks other sizes. Under
//! `cargo test --all-targets` it only checks that 100 roles evaluate.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use vpc_auditor::config::Scope;
use vpc_auditor::rules::evaluate;
use vpc_auditor::rules::pack::RulePack;
use vpc_auditor::snapshot::{IamPolicy, IamRole, IamSnapshot, RegionSnapshot, Snapshot};

const ACCOUNT: &str = "111122223333";
const REGION: &str = "us-west-2";

fn sizes() -> Vec<usize> {
    if !std::env::args().any(|a| a == "--bench") {
        return vec![100];
    }
    match std::env::var("VPC_AUDITOR_BENCH_SIZES") {
        Ok(list) => list
            .split(',')
            .map(|n| {
                n.trim()
                    .parse()
                    .expect("VPC_AUDITOR_BENCH_SIZES: a comma-separated list of numbers")
            })
            .collect(),
        Err(_) => vec![500, 1_000, 2_000, 5_000],
    }
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The shipped pack, every expectation's role name widened to a glob.
fn pack() -> RulePack {
    let mut pack = RulePack::load_file(&root().join("rules/union-byoc.yaml"))
        .unwrap_or_else(|e| panic!("{e}"));
    for role in &mut pack.roles {
        role.role_name = Some("union-ai-admin*".into());
    }
    pack
}

/// The guide's manual policy, filled in for the account and region.
fn manual_policy() -> String {
    std::fs::read_to_string(root().join("rules/vendor/union-iam-policy.manual.json"))
        .expect("the vendored manual policy")
        .replace("${AWS::Region}", REGION)
        .replace("${AWS::AccountID}", ACCOUNT)
}

/// An inline policy of about 100 kB: many statements on many buckets.
fn large_policy(seed: usize) -> String {
    let statements: Vec<String> = (0..400)
        .map(|i| {
            let resources: Vec<String> = (0..4)
                .map(|r| format!("\"arn:aws:s3:::bucket-{seed}-{i}-{r}/data/*\""))
                .collect();
            format!(
                r#"{{"Sid":"S{i}","Effect":"Allow","Action":["s3:GetObject","s3:PutObject","s3:ListBucket"],"Resource":[{}]}}"#,
                resources.join(",")
            )
        })
        .collect();
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
        statements.join(",")
    )
}

const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::479331373192:root"},"Action":"sts:AssumeRole"}]}"#;

fn snapshot(roles: usize) -> Snapshot {
    let manual = manual_policy();
    let drifted = manual.replace("\"ecr:GetAuthorizationToken\"", "\"ecr:*\"");
    let large = large_policy(0);
    let roles = (0..roles)
        .map(|i| {
            let vendor = i % 10 == 0;
            let name = if vendor {
                format!("union-ai-admin-{i}")
            } else {
                format!("team-{i}-service-role")
            };
            let mut inline = Vec::new();
            if vendor {
                let document = if i % 30 == 0 { &drifted } else { &manual };
                inline.push(IamPolicy {
                    name: "UnionIAMPolicyManual".into(),
                    document: document.clone(),
                });
            }
            if i % 50 == 0 || i % 50 == 7 {
                inline.push(IamPolicy {
                    name: "Large".into(),
                    document: large.clone(),
                });
            }
            IamRole {
                arn: format!("arn:aws:iam::{ACCOUNT}:role/{name}"),
                name,
                trust_policy: Some(TRUST.into()),
                inline_policies: inline,
                ..Default::default()
            }
        })
        .collect();
    Snapshot {
        schema_version: vpc_auditor::snapshot::SNAPSHOT_SCHEMA_VERSION,
        regions: ["eu-west-1", REGION]
            .iter()
            .map(|r| RegionSnapshot {
                account_id: ACCOUNT.into(),
                region: r.to_string(),
                ..Default::default()
            })
            .collect(),
        iam: vec![IamSnapshot {
            account_id: ACCOUNT.into(),
            roles,
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn iam_roles(c: &mut Criterion) {
    let packs = [pack()];
    let scope = Scope::default();
    let mut group = c.benchmark_group("iam_roles");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    for roles in sizes() {
        let snapshot = snapshot(roles);
        let started = Instant::now();
        let eval = evaluate(&snapshot, &packs, &scope);
        println!(
            "iam_roles/{roles}: {roles} roles -> {} findings, {} roles compared, first run {:.3} s",
            eval.findings.len(),
            eval.evaluated
                .get("iam.policy_missing_permissions")
                .copied()
                .unwrap_or(0),
            started.elapsed().as_secs_f64()
        );
        assert!(
            eval.evaluated
                .get("iam.policy_missing_permissions")
                .copied()
                .unwrap_or(0)
                >= (roles / 10) as u64,
            "every union-ai-admin copy is compared"
        );
        drop(eval);
        group.throughput(Throughput::Elements(roles as u64));
        group.measurement_time(Duration::from_secs(5));
        group.bench_with_input(BenchmarkId::from_parameter(roles), &snapshot, |b, s| {
            b.iter(|| evaluate(black_box(s), &packs, &scope))
        });
    }
    group.finish();
}

criterion_group!(benches, iam_roles);
criterion_main!(benches);
