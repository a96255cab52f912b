//! Many accounts against moto, end to end: an AWS Organization made through moto's
//! Organizations API, a VPC of its own in each member account (made with credentials from
//! STS AssumeRole into that account, which is how moto does multi-account), and the built
//! binary auditing them through the roles the config names.
//!
//! - Organizations discovery with two shards: each shard audits the accounts whose hash it
//!   owns, and together they cover every account exactly once;
//! - listed accounts with ExternalId and session names, one whose role cannot be assumed
//!   (the fault proxy answers AssumeRole with AccessDenied): that account alone fails;
//! - `regions: all` follows DescribeRegions;
//! - the daemon assumes each role once and reuses the credentials at later scans, and
//!   exports the shard and per-account series;
//! - per-service rate limits hold a scan to the configured request rate.
//!
//! Everything runs on 127.0.0.1.

mod common;
mod daemon_support;
mod fault_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region};
use aws_sdk_ec2::config::Credentials;
use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
use common::{auditor, json_report, run, stderr, temp_file, Moto, REGION};
use daemon_support::{wait_for, Daemon};
use fault_support::{FaultConfig, FaultProxy};
use serde_json::Value;
use vpc_auditor::shard::shard_of;

const MANAGEMENT: &str = "123456789012";
const ROLE: &str = "vpc-auditor-member";
const OTHER_REGION: &str = "eu-west-1";

/// An SDK config for `account`, with credentials from AssumeRole into it.
async fn account_config(moto: &Moto, account: &str, region: &str) -> aws_config::SdkConfig {
    let sts = aws_sdk_sts::Client::new(&moto.sdk_config().await);
    let assumed = sts
        .assume_role()
        .role_arn(format!("arn:aws:iam::{account}:role/{ROLE}"))
        .role_session_name("test-setup")
        .send()
        .await
        .expect("assume role");
    let creds = assumed.credentials().expect("credentials");
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(moto.endpoint())
        .region(Region::new(region.to_string()))
        .credentials_provider(Credentials::new(
            creds.access_key_id(),
            creds.secret_access_key(),
            Some(creds.session_token().to_string()),
            None,
            "assumed",
        ))
        .load()
        .await
}

/// Makes a VPC named `vpc-of-<account>` in `account` and returns its id.
async fn tagged_vpc(moto: &Moto, account: &str, region: &str) -> String {
    let ec2 = aws_sdk_ec2::Client::new(&account_config(moto, account, region).await);
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.42.0.0/16")
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Vpc)
                .tags(
                    Tag::builder()
                        .key("Name")
                        .value(format!("vpc-of-{account}"))
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("create vpc");
    vpc.vpc().and_then(|v| v.vpc_id()).unwrap().to_string()
}

/// An Organization with `members` new accounts, each with a tagged VPC in `REGION`.
/// Returns every account id (the management account included) and each one's VPC.
async fn organization(moto: &Moto, members: usize) -> BTreeMap<String, Option<String>> {
    let org = aws_sdk_organizations::Client::new(&moto.sdk_config().await);
    org.create_organization()
        .feature_set(aws_sdk_organizations::types::OrganizationFeatureSet::All)
        .send()
        .await
        .expect("create organization");
    for i in 0..members {
        org.create_account()
            .email(format!("member{i}@example.com"))
            .account_name(format!("member-{i}"))
            .send()
            .await
            .expect("create account");
    }
    let listed = org.list_accounts().send().await.expect("list accounts");
    let mut accounts = BTreeMap::new();
    for account in listed.accounts() {
        let id = account.id().unwrap().to_string();
        let vpc = if id == MANAGEMENT {
            None
        } else {
            Some(tagged_vpc(moto, &id, REGION).await)
        };
        accounts.insert(id, vpc);
    }
    assert_eq!(accounts.len(), members + 1);
    accounts
}

/// The accounts a JSON report scanned, and whether each scan succeeded.
fn scanned(report: &Value) -> BTreeMap<(String, String), String> {
    report["scans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                (
                    s["account_id"].as_str().unwrap().to_string(),
                    s["region"].as_str().unwrap().to_string(),
                ),
                s["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// `--once --format json` with `config`, against `endpoint`, with `extra` flags.
fn once(endpoint: &str, config: &Path, extra: &[&str]) -> std::process::Output {
    run(auditor()
        .args(["--once", "--format", "json", "--endpoint-url", endpoint])
        .arg("--config")
        .arg(config)
        .args(extra))
}

/// The VPC rules only: the multi-account tests are about reaching accounts, not IAM drift.
const VPC_ONLY_PACK: &str = "name: vpc-only\nvpc_rules:\n  vpc.az_count:\n    min_azs: 3\n";

#[tokio::test(flavor = "multi_thread")]
async fn two_shards_cover_every_account_of_the_organization_exactly_once() {
    let moto = Moto::start();
    let accounts = organization(&moto, 5).await;
    let proxy = FaultProxy::start(moto.port, FaultConfig::default());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("vpc-only.yaml"), VPC_ONLY_PACK).unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "rule_packs: [vpc-only.yaml]\n\
             organizations:\n  role_name: {ROLE}\n  session_name: vpc-auditor-test\n  regions: [{REGION}, {OTHER_REGION}]\n\
             scan:\n  concurrency: 4\n"
        ),
    )
    .unwrap();

    let mut covered: BTreeMap<String, u32> = BTreeMap::new();
    for shard in 0..2u32 {
        let before = proxy.action_count("AssumeRole");
        let out = once(
            &proxy.endpoint(),
            &config,
            &["--shard", &shard.to_string(), "--total-shards", "2"],
        );
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "a complete scan: {}",
            stderr(&out)
        );
        let report = json_report(&out);
        let scans = scanned(&report);
        let mine: BTreeSet<String> = scans.keys().map(|(a, _)| a.clone()).collect();
        for ((account, region), status) in &scans {
            assert_eq!(status, "ok", "{account}/{region}");
        }
        for account in &mine {
            assert_eq!(
                shard_of(account, 2),
                shard,
                "{account} belongs to its hash's shard"
            );
            for region in [REGION, OTHER_REGION] {
                assert!(scans.contains_key(&(account.clone(), region.to_string())));
            }
            *covered.entry(account.clone()).or_default() += 1;
        }
        // Each account's VPC is in that account's part of the report, nowhere else.
        for vpc in report["vpcs"].as_array().unwrap() {
            if let Some(name) = vpc["name"].as_str() {
                assert_eq!(
                    name,
                    format!("vpc-of-{}", vpc["account_id"].as_str().unwrap())
                );
            }
        }
        for account in &mine {
            if let Some(Some(vpc)) = accounts.get(account) {
                assert!(
                    report["vpcs"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|v| v["vpc_id"] == vpc.as_str() && v["account_id"] == account.as_str()),
                    "{vpc} of {account}"
                );
            }
        }
        // One AssumeRole per account, whatever its number of regions.
        assert_eq!(
            proxy.action_count("AssumeRole") - before,
            mine.len() as u64,
            "AssumeRole calls of shard {shard}"
        );
    }
    let every: BTreeSet<String> = accounts.keys().cloned().collect();
    assert_eq!(covered.keys().cloned().collect::<BTreeSet<_>>(), every);
    assert!(covered.values().all(|n| *n == 1), "{covered:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_account_whose_role_cannot_be_assumed_fails_alone() {
    let moto = Moto::start();
    let denied = "999988887777";
    let good = ["111111111111", "222222222222"];
    for account in good {
        tagged_vpc(&moto, account, REGION).await;
    }
    let proxy = FaultProxy::start(
        moto.port,
        FaultConfig {
            deny_assume_role: vec![denied.to_string()],
            ..Default::default()
        },
    );
    let (_d, pack) = temp_file("vpc-only.yaml", VPC_ONLY_PACK);
    let mut text = format!(
        "rule_packs: [{}]\nregions: [{REGION}]\naccounts:\n",
        pack.display()
    );
    for account in good.iter().chain([&denied]) {
        text.push_str(&format!(
            "  - role_arn: arn:aws:iam::{account}:role/{ROLE}\n    external_id: ext-{account}\n    session_name: audit-{account}\n"
        ));
    }
    let (_c, config) = temp_file("config.yaml", &text);
    let out = once(&proxy.endpoint(), &config, &[]);
    assert_eq!(out.status.code(), Some(2), "incomplete: {}", stderr(&out));
    let report = json_report(&out);
    let scans = &report["scans"].as_array().unwrap();
    assert_eq!(scans.len(), 3, "{scans:?}");
    for scan in scans.iter() {
        let account = scan["account_id"].as_str().unwrap();
        if account == denied {
            assert_eq!(scan["status"], "error");
            let error = scan["error"].as_str().unwrap();
            assert!(error.contains("AccessDenied"), "{error}");
        } else {
            assert_eq!(scan["status"], "ok", "{scan}");
            assert!(report["vpcs"]
                .as_array()
                .unwrap()
                .iter()
                .any(|v| v["name"] == format!("vpc-of-{account}")));
        }
    }
    assert!(stderr(&out).contains(&format!("scan of {denied}/{REGION} failed")));
}

#[tokio::test(flavor = "multi_thread")]
async fn regions_all_audits_every_region_describe_regions_lists() {
    let moto = Moto::start();
    let account = "333333333333";
    let ec2 = aws_sdk_ec2::Client::new(&account_config(&moto, account, REGION).await);
    let enabled: BTreeSet<String> = ec2
        .describe_regions()
        .send()
        .await
        .unwrap()
        .regions()
        .iter()
        // Opt-in regions the account has not opted into are not enabled (moto lists them,
        // with their status; AWS leaves them out).
        .filter(|r| r.opt_in_status() != Some("not-opted-in"))
        .filter_map(|r| r.region_name().map(str::to_string))
        .collect();
    assert!(enabled.len() > 3);
    let (_d, pack) = temp_file("vpc-only.yaml", VPC_ONLY_PACK);
    let (_c, config) = temp_file(
        "config.yaml",
        &format!(
            // The default VPCs are audited (their findings make the exit code 1).
            "rule_packs: [{}]\nscope:\n  exclude_default_vpc: false\naccounts:\n  - role_arn: arn:aws:iam::{account}:role/{ROLE}\n    regions: all\nscan:\n  concurrency: 16\n",
            pack.display()
        ),
    );
    let out = once(&moto.endpoint(), &config, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report = json_report(&out);
    let regions: BTreeSet<String> = scanned(&report)
        .into_iter()
        .map(|((a, r), status)| {
            assert_eq!((a.as_str(), status.as_str()), (account, "ok"), "{r}");
            r
        })
        .collect();
    assert_eq!(regions, enabled);
    // The region listing is one call, counted once, in the account's first region.
    let listings: u64 = report["scans"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["api_calls"]["ec2:DescribeRegions"].as_u64())
        .sum();
    assert_eq!(listings, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_reuses_assumed_credentials_and_exports_its_shard_and_accounts() {
    let moto = Moto::start();
    let accounts = ["111111111111", "222222222222", "444444444444"];
    for account in accounts {
        tagged_vpc(&moto, account, REGION).await;
    }
    let proxy = FaultProxy::start(moto.port, FaultConfig::default());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("vpc-only.yaml"), VPC_ONLY_PACK).unwrap();
    let mut text = format!("rule_packs: [vpc-only.yaml]\nregions: [{REGION}]\naccounts:\n");
    for account in accounts {
        text.push_str(&format!(
            "  - role_arn: arn:aws:iam::{account}:role/{ROLE}\n"
        ));
    }
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, text).unwrap();
    let config = config.display().to_string();
    let daemon = Daemon::start(&[
        "--config",
        &config,
        "--endpoint-url",
        &proxy.endpoint(),
        "--schedule",
        "*/2 * * * * *",
    ]);
    daemon.wait_ready();
    // Three more scans, each of every account.
    wait_for(
        Duration::from_secs(60),
        "4 scans",
        || {
            let (_, text) = daemon.get("/metrics");
            let scans = text
                .lines()
                .find_map(|l| l.strip_prefix("vpc_auditor_scans_total "))
                .and_then(|v| v.trim().parse::<f64>().ok())?;
            (scans >= 4.0).then_some(())
        },
        || daemon.process.log(),
    );
    assert_eq!(
        proxy.action_count("AssumeRole"),
        accounts.len() as u64,
        "one AssumeRole per account over every scan: the credentials are cached"
    );
    let (_, metrics) = daemon.get("/metrics");
    assert!(metrics.contains("vpc_auditor_shard_info{shard=\"0\",total_shards=\"1\"} 1"));
    assert!(
        metrics.contains("vpc_auditor_accounts_audited 3"),
        "{metrics}"
    );
    for account in accounts {
        assert!(
            metrics.contains(&format!(
                "vpc_auditor_findings{{aws_account_id=\"{account}\",rule_id=\"vpc.az_count\",severity=\"high\"}} 1"
            )),
            "{account}: {}",
            metrics.lines().filter(|l| l.starts_with("vpc_auditor_findings{")).collect::<Vec<_>>().join("\n")
        );
        assert!(metrics.contains(&format!(
            "vpc_auditor_region_scan_success{{aws_account_id=\"{account}\",aws_region=\"{REGION}\"}} 1"
        )));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_limit_holds_a_scan_to_its_request_rate() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(moto.port, FaultConfig::default());
    let (_d, pack) = temp_file("vpc-only.yaml", VPC_ONLY_PACK);
    let (_c, config) = temp_file(
        "config.yaml",
        &format!(
            "rule_packs: [{}]\nregions: [{REGION}]\nscan:\n  rate_limits:\n    ec2: {{per_second: 4, burst: 1}}\n",
            pack.display()
        ),
    );
    let started = Instant::now();
    let out = once(&proxy.endpoint(), &config, &[]);
    let elapsed = started.elapsed();
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", stderr(&out));
    let report = json_report(&out);
    let ec2_calls: u64 = report["scans"][0]["api_calls"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(op, _)| op.starts_with("ec2:"))
        .map(|(_, n)| n.as_u64().unwrap())
        .sum();
    assert!(ec2_calls >= 8, "{ec2_calls}");
    // A bucket of 1 refilled at 4/s: the calls after the first wait a quarter second each.
    let floor = Duration::from_secs_f64((ec2_calls - 1) as f64 / 4.0);
    assert!(
        elapsed >= floor,
        "{ec2_calls} EC2 calls in {elapsed:?}, below {floor:?}"
    );
}
