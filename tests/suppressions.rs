//! Suppressions as a user meets them, on the demo snapshot: a suppressed finding stays in
//! the report but leaves the exit code and the counts, an expired one raises an info
//! finding, one matching nothing is stale, and a bad file exits 2 naming its line.

mod common;

use common::{auditor, json_report, run, stderr, temp_file};

const FAR_FUTURE: &str = "2999-12-31";

/// A suppressions file of `(rule, resource, expires)` entries.
fn suppressions(entries: &[(&str, &str, &str)]) -> String {
    let mut text = String::from("suppressions:\n");
    for (rule, resource, expires) in entries {
        text.push_str(&format!(
            "  - rule: {rule}\n    resource: '{resource}'\n    reason: accepted by the platform team\n    expires: {expires}\n"
        ));
    }
    text
}

#[test]
fn suppressing_the_critical_finding_lowers_the_exit_code_and_keeps_it_in_the_report() {
    let code = |file: &std::path::Path| {
        run(auditor()
            .args([
                "--once",
                "--demo",
                "--fail-on",
                "critical",
                "--suppressions",
            ])
            .arg(file))
        .status
        .code()
    };
    let (_d, none) = temp_file("s.yaml", "suppressions: []\n");
    assert_eq!(code(&none), Some(1));
    let (_d2, file) = temp_file(
        "s.yaml",
        &suppressions(&[("iam.trust_policy_drift", "*", FAR_FUTURE)]),
    );
    assert_eq!(code(&file), Some(0));

    let out = run(auditor()
        .args(["--once", "--demo", "--format", "json", "--suppressions"])
        .arg(&file));
    let report = json_report(&out);
    let drift: Vec<_> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule_id"] == "iam.trust_policy_drift")
        .collect();
    assert!(!drift.is_empty(), "still reported");
    for f in &drift {
        assert_eq!(f["suppressed"]["reason"], "accepted by the platform team");
        assert_eq!(f["suppressed"]["expires"], FAR_FUTURE);
    }
    assert_eq!(report["summary"]["suppressed"], drift.len());
    assert_eq!(report["summary"]["by_severity"]["critical"], 0);
    assert_eq!(report["summary"]["suppressions_stale"], 0);
}

#[test]
fn a_glob_on_the_resource_id_suppresses_the_demo_az_count_finding() {
    let (_d, file) = temp_file(
        "s.yaml",
        &suppressions(&[("vpc.az_count", "vpc-0b22*", FAR_FUTURE)]),
    );
    let out = run(auditor()
        .args(["--once", "--demo", "--format", "json", "--suppressions"])
        .arg(&file));
    let report = json_report(&out);
    let az = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule_id"] == "vpc.az_count" && f["resource_id"] == "vpc-0b22deadbeef00002")
        .expect("the demo's az_count finding");
    assert!(az.get("suppressed").is_some(), "{az}");
}

#[test]
fn an_expired_suppression_raises_an_info_finding_and_stops_suppressing() {
    let (_d, file) = temp_file(
        "s.yaml",
        &suppressions(&[("iam.trust_policy_drift", "*", "2020-01-31")]),
    );
    let out = run(auditor()
        .args([
            "--once",
            "--demo",
            "--format",
            "json",
            "--fail-on",
            "critical",
            "--suppressions",
        ])
        .arg(&file));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report = json_report(&out);
    let findings = report["findings"].as_array().unwrap();
    let expired: Vec<_> = findings
        .iter()
        .filter(|f| f["rule_id"] == "suppression.expired")
        .collect();
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0]["severity"], "info");
    assert_eq!(expired[0]["resource_type"], "suppression");
    assert_eq!(expired[0]["resource_id"], "iam.trust_policy_drift:*");
    assert!(findings.iter().all(|f| f.get("suppressed").is_none()));
    assert_eq!(report["summary"]["suppressed"], 0);

    let out = run(auditor()
        .args(["--once", "--demo", "--suppressions"])
        .arg(&file));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("INFO     suppression.expired"), "{text}");
}

#[test]
fn a_suppression_matching_nothing_is_a_stale_note_and_config_suppressions_apply_too() {
    let config = format!(
        "suppressions:\n  - rule: nat.same_az\n    resource: subnet-does-not-exist\n    reason: old\n    expires: {FAR_FUTURE}\n"
    );
    let (_d, config) = temp_file("c.yaml", &config);
    let out = run(auditor()
        .args(["--once", "--demo", "--format", "json", "--config"])
        .arg(&config));
    let report = json_report(&out);
    assert_eq!(report["summary"]["suppressions_stale"], 1);
    let notes = report["notes"].as_array().unwrap();
    assert!(
        notes.iter().any(|n| n
            .as_str()
            .unwrap()
            .contains("nat.same_az:subnet-does-not-exist")),
        "{notes:?}"
    );
}

#[test]
fn bad_suppressions_exit_two_naming_file_line_and_field() {
    let (file, err) = common::rejected_input(
        "--suppressions",
        "s.yaml",
        "suppressions:\n  - rule: vpc.az_count\n    resource: vpc-1\n    reason: r\n    expires: 2026-02-30\n",
    );
    assert!(
        err.contains(&format!("{file}:5:")) && err.contains("suppressions[0].expires"),
        "{err}"
    );

    let (config, err) = common::rejected_input(
        "--config",
        "c.yaml",
        "suppressions:\n  - rule: vpc.az_count\n    resource: vpc-1\n    reason: ''\n    expires: 2026-01-01\n",
    );
    assert!(
        err.contains(&format!("{config}:4:")) && err.contains("reason"),
        "{err}"
    );
}

#[test]
fn the_example_suppressions_file_suppresses_demo_findings() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/suppressions.yaml");
    let out = run(auditor()
        .args(["--once", "--demo", "--format", "json", "--suppressions"])
        .arg(&path));
    let report = json_report(&out);
    assert!(
        report["summary"]["suppressed"].as_u64().unwrap() >= 1,
        "{}",
        stderr(&out)
    );
    assert_eq!(
        report["summary"]["suppressions_stale"], 0,
        "{}",
        report["notes"]
    );
}
