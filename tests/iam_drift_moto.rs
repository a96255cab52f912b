//! IAM role drift against a real IAM API (moto), through the real binary: roles are created
//! from every released union-ai-admin template and audited against the documented forms of
//! the role (the latest template, v0.13, and the guide's manual setup); each role is judged
//! against the closer form, which the finding names. Expected differences are computed
//! here, independently, from the templates and the guide's policy themselves.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::cfn::{self, allow_pairs, glob, union_role};
use common::{auditor, create_role, json_report, run, temp_file, Moto};
use serde_json::{json, Value};

const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";
const EXTERNAL_ID: &str = "ext-Id-Sekr1t-42";
const ROLE: &str = "union-ai-admin";
const CONFIG: &str = "scope:\n  exclude_default_vpc: true\n";

fn params(version: &str) -> BTreeMap<&'static str, &'static str> {
    let mut p = BTreeMap::from([("CrossAccountRoleName", ROLE)]);
    if version == "v0.13" {
        p.insert("ExternalId", EXTERNAL_ID);
    }
    p
}

/// Runs the auditor with the embedded union-byoc pack and the ExternalId configured.
fn audit(moto: &Moto, external_id: Option<&str>) -> (Value, std::process::Output) {
    let (_dir, config) = temp_file("config.yaml", CONFIG);
    let mut cmd = moto.once_json(Some(&config));
    match external_id {
        Some(id) => cmd.env("UNION_EXTERNAL_ID", id),
        None => cmd.env_remove("UNION_EXTERNAL_ID"),
    };
    let out = run(&mut cmd);
    (json_report(&out), out)
}

/// The guide's manual policy (`UnionIAMPolicyManual`), filled in as the guide asks.
fn manual_policy(region: &str) -> Value {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("rules/vendor/union-iam-policy.manual.json"),
    )
    .unwrap()
    .replace("${AWS::Region}", region)
    .replace("${AWS::AccountID}", ACCOUNT);
    serde_json::from_str(&text).unwrap()
}

/// The trust the IAM console writes for the guide's manual steps (no external ID).
fn manual_trust() -> Value {
    json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::479331373192:root"}, "Action": "sts:AssumeRole"}]})
}

fn iam_findings<'a>(report: &'a Value, rule: &str) -> Vec<&'a Value> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule_id"] == rule)
        .collect()
}

/// (action, resource) pairs from the grouped details of a finding.
fn detail_pairs(finding: Option<&&Value>, key: &str) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    if let Some(f) = finding {
        for group in f["details"][key].as_array().unwrap() {
            for action in group["actions"].as_array().unwrap() {
                out.insert((
                    action.as_str().unwrap().to_string(),
                    group["resource"].as_str().unwrap().to_string(),
                ));
            }
        }
    }
    out
}

/// Pairs of `want` that no pair of `have` grants, with the test's own glob semantics.
fn not_covered(
    want: &BTreeSet<(String, String)>,
    have: &BTreeSet<(String, String)>,
) -> BTreeSet<(String, String)> {
    want.iter()
        .filter(|(a, r)| !have.iter().any(|(ha, hr)| glob(ha, a) && glob(hr, r)))
        .cloned()
        .collect()
}

async fn delete_role(iam: &aws_sdk_iam::Client) {
    let names = iam
        .list_role_policies()
        .role_name(ROLE)
        .send()
        .await
        .unwrap();
    for name in names.policy_names() {
        iam.delete_role_policy()
            .role_name(ROLE)
            .policy_name(name)
            .send()
            .await
            .unwrap();
    }
    iam.delete_role().role_name(ROLE).send().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn every_released_version_is_audited_against_v0_13_with_the_exact_set_difference() {
    let moto = Moto::start();
    let iam = moto.iam().await;
    let latest = union_role("v0.13", ACCOUNT, REGION, &params("v0.13"));
    let latest_pairs = allow_pairs(&latest.policies);
    let manual_pairs = allow_pairs(&[manual_policy(REGION)]);
    assert!(latest_pairs.len() > 300);
    let mut differing_versions = 0;

    for version in &cfn::VERSIONS[..6] {
        let old = union_role(version, ACCOUNT, REGION, &params(version));
        create_role(&iam, ROLE, &old.trust, &old.policies).await;
        let (report, _) = audit(&moto, Some(EXTERNAL_ID));

        let old_pairs = allow_pairs(&old.policies);
        let missing = iam_findings(&report, "iam.policy_missing_permissions");
        let excess = iam_findings(&report, "iam.policy_excess_permissions");
        let trust = iam_findings(&report, "iam.trust_policy_drift");
        assert!(missing.len() <= 1 && excess.len() <= 1);
        // Every finding names the one documented form the role was judged against.
        let forms: BTreeSet<&str> = missing
            .iter()
            .chain(&excess)
            .chain(&trust)
            .map(|f| f["details"]["expected_form"].as_str().unwrap())
            .collect();
        assert_eq!(forms.len(), 1, "{version}: {forms:?}");
        let manual = forms.iter().next().unwrap().contains("manual");
        let target = if manual { &manual_pairs } else { &latest_pairs };
        let expected_missing = not_covered(target, &old_pairs);
        let expected_excess = not_covered(&old_pairs, target);
        assert_eq!(
            detail_pairs(missing.first(), "missing"),
            expected_missing,
            "{version}: missing"
        );
        assert_eq!(
            detail_pairs(excess.first(), "excess"),
            expected_excess,
            "{version}: excess"
        );
        if !expected_missing.is_empty() {
            differing_versions += 1;
            let f = missing[0];
            assert_eq!(
                f["resource_id"],
                format!("arn:aws:iam::{ACCOUNT}:role/{ROLE}")
            );
            let named = if manual { "manual" } else { "v0.13" };
            assert!(
                f["message"].as_str().unwrap().contains(named),
                "the message names the form: {}",
                f["message"]
            );
        }
        // No release before v0.13 had the ExternalId condition: the template form requires
        // it (high), the manual form leaves it optional.
        if manual {
            assert!(trust.is_empty(), "{version}: {trust:#?}");
        } else {
            assert_eq!(trust.len(), 1, "{version}: trust drift");
            assert!(
                trust[0]["message"]
                    .as_str()
                    .unwrap()
                    .contains("sts:ExternalId"),
                "{}",
                trust[0]["message"]
            );
            assert_eq!(trust[0]["severity"], "high");
        }
        delete_role(&iam).await;
    }
    assert!(
        differing_versions >= 3,
        "the history has real permission changes"
    );

    // The current version is compliant: no IAM finding at all.
    create_role(&iam, ROLE, &latest.trust, &latest.policies).await;
    let (report, out) = audit(&moto, Some(EXTERNAL_ID));
    let iam_rules: Vec<_> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule_id"].as_str().unwrap().starts_with("iam."))
        .collect();
    assert!(iam_rules.is_empty(), "{iam_rules:#?}");
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    let scan = report["scans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["region"] == "global")
        .unwrap();
    assert_eq!(scan["status"], "ok");
    assert_eq!(scan["api_calls"]["iam:GetAccountAuthorizationDetails"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn reshaped_policy_is_not_drift_but_iam_star_and_an_opened_trust_are() {
    let moto = Moto::start();
    let iam = moto.iam().await;
    let latest = union_role("v0.13", ACCOUNT, REGION, &params("v0.13"));
    // One statement per (action, resource), actions upper-cased, in reverse order.
    let pairs: Vec<_> = allow_pairs(&latest.policies).into_iter().rev().collect();
    let split: Vec<Value> = pairs
        .chunks(pairs.len() / 3 + 1)
        .map(|chunk| {
            let statements: Vec<Value> = chunk
                .iter()
                .map(|(a, r)| json!({"Effect": "Allow", "Action": a.to_uppercase(), "Resource": [r]}))
                .collect();
            json!({"Version": "2012-10-17", "Statement": statements})
        })
        .collect();
    create_role(&iam, ROLE, &latest.trust, &split).await;
    let (report, _) = audit(&moto, Some(EXTERNAL_ID));
    let iam_rules: Vec<_> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule_id"].as_str().unwrap().starts_with("iam."))
        .collect();
    assert!(
        iam_rules.is_empty(),
        "reshaped policy must not drift: {iam_rules:#?}"
    );

    // Someone adds iam:* and opens the trust to another account.
    iam.put_role_policy()
        .role_name(ROLE)
        .policy_name("break-glass")
        .policy_document(json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:*", "Resource": "*"}]}).to_string())
        .send()
        .await
        .unwrap();
    let mut opened = latest.trust.clone();
    opened["Statement"][0]["Principal"]["AWS"] = json!([
        "arn:aws:iam::479331373192:root",
        "arn:aws:iam::666677778888:root"
    ]);
    iam.update_assume_role_policy()
        .role_name(ROLE)
        .policy_document(opened.to_string())
        .send()
        .await
        .unwrap();
    let (report, out) = audit(&moto, Some(EXTERNAL_ID));
    let excess = iam_findings(&report, "iam.policy_excess_permissions");
    assert_eq!(excess.len(), 1);
    assert_eq!(excess[0]["details"]["excess_actions"], json!(["iam:*"]));
    let trust = iam_findings(&report, "iam.trust_policy_drift");
    assert_eq!(trust.len(), 1);
    assert!(trust[0]["message"]
        .as_str()
        .unwrap()
        .contains("666677778888"));
    assert_eq!(trust[0]["severity"], "critical");
    // The ExternalId is a secret: it never appears in the report or the logs.
    let everything = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!everything.contains(EXTERNAL_ID));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_permission_boundary_that_removes_an_expected_action_is_missing_with_that_reason() {
    let moto = Moto::start();
    let iam = moto.iam().await;
    let latest = union_role("v0.13", ACCOUNT, REGION, &params("v0.13"));
    create_role(&iam, ROLE, &latest.trust, &latest.policies).await;
    let (report, _) = audit(&moto, Some(EXTERNAL_ID));
    assert!(iam_findings(&report, "iam.policy_missing_permissions").is_empty());

    // A boundary allowing everything but one action the vendor's policy grants.
    let (removed, _) = allow_pairs(&latest.policies)
        .into_iter()
        .find(|(action, _)| !action.contains('*'))
        .expect("a plain action");
    common::set_boundary(
        &iam,
        ROLE,
        "TeamCap",
        &json!({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "NotAction": [removed], "Resource": "*"}]}),
    )
    .await;
    let (report, _) = audit(&moto, Some(EXTERNAL_ID));
    let missing = iam_findings(&report, "iam.policy_missing_permissions");
    assert_eq!(missing.len(), 1, "{report:#}");
    let message = missing[0]["message"].as_str().unwrap();
    assert!(
        message.contains("removed by the permission boundary TeamCap"),
        "{message}"
    );
    let details = &missing[0]["details"];
    assert_eq!(details["permission_boundary"]["name"], "TeamCap");
    assert_eq!(details["missing_actions"], json!([removed]));
    assert!(
        details.get("missing").is_none(),
        "nothing to add to the role"
    );
    assert!(iam_findings(&report, "iam.policy_excess_permissions").is_empty());
    assert!(missing[0]["remediation"]
        .as_str()
        .unwrap()
        .contains(&format!(
            "delete-role-permissions-boundary --role-name {ROLE}"
        )));
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_external_id_configured_the_condition_is_still_required_and_a_note_says_so() {
    let moto = Moto::start();
    let iam = moto.iam().await;
    let latest = union_role("v0.13", ACCOUNT, REGION, &params("v0.13"));
    create_role(&iam, ROLE, &latest.trust, &latest.policies).await;
    let (report, _) = audit(&moto, None);
    assert!(iam_findings(&report, "iam.trust_policy_drift").is_empty());
    let notes = report["notes"].as_array().unwrap();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0].as_str().unwrap().contains("ExternalId"));

    // Remove the condition: drift, even though the value is unknown.
    let mut loose = latest.trust.clone();
    loose["Statement"][0]
        .as_object_mut()
        .unwrap()
        .remove("Condition");
    iam.update_assume_role_policy()
        .role_name(ROLE)
        .policy_document(loose.to_string())
        .send()
        .await
        .unwrap();
    let (report, _) = audit(&moto, None);
    assert_eq!(iam_findings(&report, "iam.trust_policy_drift").len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_role_is_critical_and_a_custom_pack_can_rename_it() {
    let moto = Moto::start();
    let (report, out) = audit(&moto, Some(EXTERNAL_ID));
    let missing = iam_findings(&report, "iam.role_missing");
    assert_eq!(missing.len(), 1);
    assert_eq!(
        missing[0]["resource_id"],
        format!("arn:aws:iam::{ACCOUNT}:role/{ROLE}")
    );
    assert_eq!(missing[0]["severity"], "critical");
    assert_eq!(out.status.code(), Some(1));

    let iam = moto.iam().await;
    let latest = union_role("v0.13", ACCOUNT, REGION, &params("v0.13"));
    create_role(&iam, "acme-union", &latest.trust, &latest.policies).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(cfn::template_path("v0.13"), dir.path().join("union.yaml")).unwrap();
    std::fs::write(
        dir.path().join("pack.yaml"),
        "name: union-renamed\nroles:\n  - template: union.yaml\n    version: v0.13\n    parameters: {CrossAccountRoleName: acme-union}\n    parameters_from_env: {ExternalId: UNION_EXTERNAL_ID}\n",
    )
    .unwrap();
    let out = run(auditor()
        .args([
            "--once",
            "--format",
            "json",
            "--endpoint-url",
            &moto.endpoint(),
            "--rules",
        ])
        .arg(dir.path().join("pack.yaml"))
        .env("UNION_EXTERNAL_ID", EXTERNAL_ID));
    let report = json_report(&out);
    assert_eq!(report["findings"], json!([]), "{report:#}");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn malformed_template_and_policy_files_exit_two_naming_file_and_place() {
    let dir = tempfile::tempdir().unwrap();
    // Writes `file` and a pack naming it, runs the pack, and returns stderr of the exit-2 run.
    let reject = |file: (&str, &str), pack: &str| {
        std::fs::write(dir.path().join(file.0), file.1).unwrap();
        std::fs::write(dir.path().join("pack.yaml"), pack).unwrap();
        let out = run(auditor()
            .args(["--once", "--demo", "--rules"])
            .arg(dir.path().join("pack.yaml")));
        assert_eq!(out.status.code(), Some(2));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };

    let template = "Resources:\n  Role:\n    Type: AWS::IAM::Role\n    Properties:\n      RoleName: !Foo bar\n      AssumeRolePolicyDocument: {Statement: []}\n";
    let err = reject(
        ("bad.template.yaml", template),
        "name: bad\nroles:\n  - template: bad.template.yaml\n",
    );
    assert!(
        err.contains("bad.template.yaml:5") && err.contains("!Foo"),
        "{err}"
    );

    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"},{"Sid":"two","Effect":"Allow","Action":7,"Resource":"*"}]}"#;
    let err = reject(
        ("policy.json", policy),
        "name: bad\nroles:\n  - role_name: r\n    policies: [policy.json]\n",
    );
    assert!(
        err.contains("policy.json") && err.contains("Statement[1]") && err.contains("Action"),
        "{err}"
    );

    let err = reject(
        ("unused.json", "{}"),
        "name: bad\nroles:\n  - role_name: r\n",
    );
    assert!(err.contains("roles[0].template"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_role_built_in_the_second_scanned_region_has_no_finding() {
    let moto = Moto::start();
    let iam = moto.iam().await;
    // Built by the v0.13 stack in us-west-2; scanned with eu-west-1, which sorts first.
    let built = union_role("v0.13", ACCOUNT, "us-west-2", &params("v0.13"));
    create_role(&iam, ROLE, &built.trust, &built.policies).await;
    let config = format!("{CONFIG}regions: [eu-west-1, us-west-2]\n");
    let (_dir, config) = temp_file("config.yaml", &config);
    let out = run(moto
        .once_json(Some(&config))
        .env("UNION_EXTERNAL_ID", EXTERNAL_ID));
    let report = json_report(&out);
    let iam_rules: Vec<_> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule_id"].as_str().unwrap().starts_with("iam."))
        .collect();
    assert!(iam_rules.is_empty(), "{iam_rules:#?}");

    // A drift is judged against us-west-2, and says so.
    iam.put_role_policy()
        .role_name(ROLE)
        .policy_name("break-glass")
        .policy_document(json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:*", "Resource": "*"}]}).to_string())
        .send()
        .await
        .unwrap();
    let out = run(moto
        .once_json(Some(&config))
        .env("UNION_EXTERNAL_ID", EXTERNAL_ID));
    let report = json_report(&out);
    let excess = iam_findings(&report, "iam.policy_excess_permissions");
    assert_eq!(excess.len(), 1, "{report:#}");
    assert_eq!(excess[0]["details"]["excess_actions"], json!(["iam:*"]));
    assert_eq!(excess[0]["details"]["region"], "us-west-2");
    assert!(iam_findings(&report, "iam.policy_missing_permissions").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_guides_manual_role_has_nothing_critical() {
    let moto = Moto::start();
    let iam = moto.iam().await;
    create_role(&iam, ROLE, &manual_trust(), &[manual_policy(REGION)]).await;
    for external_id in [Some(EXTERNAL_ID), None] {
        let (report, out) = audit(&moto, external_id);
        let iam_rules: Vec<_> = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["rule_id"].as_str().unwrap().starts_with("iam."))
            .collect();
        assert!(iam_rules.is_empty(), "{external_id:?}: {iam_rules:#?}");
        assert_eq!(out.status.code(), Some(0), "{report:#}");
    }
    // With "Require external ID" checked and a value that no longer matches: critical, and
    // the fix carries the expected trust with the ExternalId as the pack's variable.
    let mut with_id = manual_trust();
    with_id["Statement"][0]["Condition"] =
        json!({"StringEquals": {"sts:ExternalId": "an-old-external-id"}});
    iam.update_assume_role_policy()
        .role_name(ROLE)
        .policy_document(with_id.to_string())
        .send()
        .await
        .unwrap();
    let (report, out) = audit(&moto, Some(EXTERNAL_ID));
    let trust = iam_findings(&report, "iam.trust_policy_drift");
    assert_eq!(trust.len(), 1, "{report:#}");
    assert_eq!(trust[0]["severity"], "critical");
    let fix = trust[0]["remediation"].as_str().unwrap();
    assert!(
        fix.contains("$UNION_EXTERNAL_ID") && fix.contains("479331373192"),
        "{fix}"
    );
    let everything = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!everything.contains(EXTERNAL_ID) && !everything.contains("an-old-external-id"));
}
