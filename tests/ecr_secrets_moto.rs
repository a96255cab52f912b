//! Cross-account ECR pulls and Secrets Manager grants against moto, through the real binary
//! (Union's "Enabling AWS ECR" and "Enabling AWS Secrets Manager"):
//!
//! - a registry in another account (moto keeps each account apart: the test and the auditor
//!   reach it through AssumeRole) whose repository policy lacks one pull action is reported
//!   with an `aws ecr set-repository-policy` fix, also from the written snapshot; applying
//!   the fix's policy through ECR clears the finding; a declared repository that does not exist is reported; the calls
//!   stay one DescribeRepositories plus one GetRepositoryPolicy per selected repository;
//! - a secret granted in the wrong region and a granted secret that does not exist are
//!   reported, a granted secret that exists is not, and no secret value reaches the
//!   snapshot.
//!
//! Everything runs on 127.0.0.1.

mod common;

use aws_config::{BehaviorVersion, Region};
use aws_sdk_ec2::config::Credentials;
use common::{json_report, run, temp_file, Moto, REGION};
use serde_json::{json, Value};

const REGISTRY: &str = "222233334444";
const DATA_PLANE: &str = "111122223333";
const AUDIT_ROLE: &str = "vpc-auditor-registry";
const NODE_ROLE: &str = "unionai-acme-flyteworker-node-group";

/// An SDK config for `account`, with credentials from AssumeRole into it.
async fn account_config(moto: &Moto, account: &str) -> aws_config::SdkConfig {
    let sts = aws_sdk_sts::Client::new(&moto.sdk_config().await);
    let assumed = sts
        .assume_role()
        .role_arn(format!("arn:aws:iam::{account}:role/{AUDIT_ROLE}"))
        .role_session_name("test-setup")
        .send()
        .await
        .expect("assume role");
    let creds = assumed.credentials().expect("credentials");
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(moto.endpoint())
        .region(Region::new(REGION))
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

fn findings<'a>(report: &'a Value, rule: &str) -> Vec<&'a Value> {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["rule_id"] == rule)
        .collect()
}

/// The policy text inside a `--policy-text '...'` of a shell command.
fn policy_text_of(command: &str) -> String {
    let start = command.find("--policy-text '").expect("--policy-text") + "--policy-text '".len();
    let quoted = &command[start..command.len() - 1];
    quoted.replace(r"'\''", "'")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_registry_policy_lacking_one_pull_action_is_reported_and_its_fix_clears_it() {
    let moto = Moto::start();
    let ecr = aws_sdk_ecr::Client::new(&account_config(&moto, REGISTRY).await);
    let node = format!("arn:aws:iam::{DATA_PLANE}:role/{NODE_ROLE}");
    for name in ["union/app", "union/ok", "other/tool"] {
        ecr.create_repository()
            .repository_name(name)
            .send()
            .await
            .expect("create repository");
    }
    let lacking = json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "Push", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999988887777:root"}, "Action": "ecr:PutImage"},
        {"Sid": "AllowPull", "Effect": "Allow", "Principal": {"AWS": node},
         "Action": ["ecr:BatchGetImage", "ecr:BatchCheckLayerAvailability"]}
    ]});
    let guide = json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "AllowPull", "Effect": "Allow", "Principal": {"AWS": node},
         "Action": ["ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage", "ecr:BatchCheckLayerAvailability"]}
    ]});
    for (name, policy) in [("union/app", &lacking), ("union/ok", &guide)] {
        ecr.set_repository_policy()
            .repository_name(name)
            .policy_text(policy.to_string())
            .send()
            .await
            .expect("set repository policy");
    }

    let dir = tempfile::tempdir().unwrap();
    let pack = dir.path().join("ecr.yaml");
    std::fs::write(
        &pack,
        format!(
            "name: union-ecr\ncross_account_ecr:\n  - registry_account: \"{REGISTRY}\"\n    region: {REGION}\n    repository_prefix: union/\n    repositories: [union/gone]\n    data_plane_account: \"{DATA_PLANE}\"\n    node_role: {NODE_ROLE}\n"
        ),
    )
    .unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "rule_packs: [{}]\nregions: [{REGION}]\naccounts:\n  - role_arn: arn:aws:iam::{REGISTRY}:role/{AUDIT_ROLE}\n",
            pack.display()
        ),
    )
    .unwrap();
    let snapshot_file = dir.path().join("snapshot.json");
    let audit = || {
        let out = run(moto
            .once_json(Some(&config))
            .arg("--snapshot-out")
            .arg(&snapshot_file));
        json_report(&out)
    };

    let report = audit();
    let pulls = findings(&report, "ecr.cross_account_pull");
    let arn = |name: &str| format!("arn:aws:ecr:{REGION}:{REGISTRY}:repository/{name}");
    let mut resources: Vec<&str> = pulls
        .iter()
        .map(|f| f["resource_id"].as_str().unwrap())
        .collect();
    resources.sort();
    assert_eq!(
        resources,
        vec![arn("union/app"), arn("union/gone")],
        "{pulls:#?}"
    );
    let app = pulls
        .iter()
        .find(|f| f["resource_id"] == arn("union/app"))
        .unwrap();
    assert_eq!(app["account_id"], REGISTRY);
    assert_eq!(app["severity"], "high");
    let missing: Vec<&str> = app["details"]["missing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["action"].as_str().unwrap())
        .collect();
    assert_eq!(missing, vec!["ecr:GetDownloadUrlForLayer"]);
    let command = app["remediation"].as_str().unwrap();
    assert!(
        command.contains(&format!(
            "aws ecr set-repository-policy --region {REGION} --registry-id {REGISTRY} --repository-name 'union/app' --policy-text '"
        )),
        "{command}"
    );
    let fixed: Value = serde_json::from_str(&policy_text_of(command)).expect("valid JSON");
    assert_eq!(fixed["Statement"][0]["Sid"], "Push", "keeps the statements");

    // What was read: one listing, one policy per selected repository (union/app, union/ok).
    let snapshot: Value =
        serde_json::from_str(&std::fs::read_to_string(&snapshot_file).unwrap()).unwrap();
    let entry = &snapshot["ecr"][0];
    assert_eq!(entry["account_id"], REGISTRY);
    assert_eq!(entry["api_calls"]["ecr:DescribeRepositories"], 1);
    assert_eq!(entry["api_calls"]["ecr:GetRepositoryPolicy"], 2);
    assert_eq!(entry["repositories"].as_array().unwrap().len(), 2);
    assert!(
        snapshot.get("secrets").is_none(),
        "no pack asked for secrets, so none were listed"
    );

    // The snapshot audits the same later, without AWS.
    let replay = json_report(&run(common::auditor()
        .args(["--once", "--format", "json", "--from-snapshot"])
        .arg(&snapshot_file)
        .arg("--config")
        .arg(&config)));
    assert_eq!(
        findings(&replay, "ecr.cross_account_pull").len(),
        2,
        "{replay:#}"
    );

    // The fix, applied as the command would apply it, closes the gap.
    ecr.set_repository_policy()
        .repository_name("union/app")
        .policy_text(policy_text_of(command))
        .send()
        .await
        .expect("ECR accepts the fix's policy");
    let report = audit();
    let left: Vec<&Value> = findings(&report, "ecr.cross_account_pull");
    assert_eq!(left.len(), 1, "{left:#?}");
    assert_eq!(left[0]["resource_id"], arn("union/gone"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_granted_in_the_wrong_region_and_one_that_does_not_exist_are_reported() {
    const ACCOUNT: &str = "123456789012";
    const DATA_PLANE_REGION: &str = "us-west-2";
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let secrets = aws_sdk_secretsmanager::Client::new(
        &config
            .clone()
            .into_builder()
            .region(Region::new(DATA_PLANE_REGION))
            .build(),
    );
    let created = secrets
        .create_secret()
        .name("db")
        .secret_string("hunter2-never-read")
        .send()
        .await
        .expect("create secret");
    let db = created.arn().unwrap().to_string();
    let wrong = format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:db-AbCdEf");
    let gone = format!("arn:aws:secretsmanager:{DATA_PLANE_REGION}:{ACCOUNT}:secret:gone-XyZ123");
    let policy = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
        "Resource": [db, wrong, gone]
    }]});
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    common::create_role(&moto.iam().await, "acme-userflyterole", &trust, &[policy]).await;

    let dir = tempfile::tempdir().unwrap();
    let pack = dir.path().join("secrets.yaml");
    std::fs::write(
        &pack,
        format!(
            "name: union-secrets\nsecrets_manager:\n  roles: [\"*-userflyterole\"]\n  region: {DATA_PLANE_REGION}\n"
        ),
    )
    .unwrap();
    let (_cfg_dir, config_file) = temp_file(
        "config.yaml",
        &format!("rule_packs: [{}]\nregions: [{REGION}]\n", pack.display()),
    );
    let snapshot_file = dir.path().join("snapshot.json");
    let out = run(moto
        .once_json(Some(&config_file))
        .arg("--snapshot-out")
        .arg(&snapshot_file));
    let report = json_report(&out);

    let region: Vec<&Value> = findings(&report, "secrets.region");
    assert_eq!(region.len(), 1, "{region:#?}");
    assert_eq!(region[0]["resource_id"], wrong.as_str());
    assert_eq!(region[0]["region"], DATA_PLANE_REGION);
    assert_eq!(region[0]["severity"], "high");
    assert!(region[0]["remediation"]
        .as_str()
        .unwrap()
        .contains("replicate-secret-to-regions"));
    let missing: Vec<&Value> = findings(&report, "secrets.missing");
    assert_eq!(missing.len(), 1, "{missing:#?}");
    assert_eq!(missing[0]["resource_id"], gone.as_str());

    let snapshot = std::fs::read_to_string(&snapshot_file).unwrap();
    assert!(snapshot.contains(&db), "the secret's ARN is listed");
    assert!(
        !snapshot.contains("hunter2"),
        "no secret value is ever read"
    );
    let parsed: Value = serde_json::from_str(&snapshot).unwrap();
    assert_eq!(
        parsed["secrets"][0]["api_calls"]["secretsmanager:ListSecrets"],
        1
    );
    assert!(
        parsed.get("ecr").is_none(),
        "no pack declared a registry, so ECR was not read"
    );
}
