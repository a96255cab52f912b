//! `--baseline` and `--fail-on-new` as a user meets them, on the demo snapshot: a report
//! diffed against itself has nothing new, a trimmed baseline makes findings new, and a bad
//! baseline file exits 2 naming its position.

mod common;

use common::{auditor, json_report, run, stderr, temp_file};

/// The demo's JSON report, as `--once --format json` prints it.
fn demo_report() -> serde_json::Value {
    json_report(&run(
        auditor().args(["--once", "--demo", "--format", "json"])
    ))
}

#[test]
fn demo_against_its_own_report_has_nothing_new_and_fail_on_new_exits_zero() {
    let (_d, base) = temp_file("base.json", &demo_report().to_string());
    let out = run(auditor()
        .args(["--once", "--demo", "--format", "json", "--baseline"])
        .arg(&base));
    assert_eq!(
        out.status.code(),
        Some(1),
        "plain --fail-on still counts all"
    );
    let report = json_report(&out);
    let findings = report["findings"].as_array().unwrap();
    assert!(!findings.is_empty());
    assert!(findings.iter().all(|f| f["baseline"] == "unchanged"));
    assert_eq!(report["summary"]["baseline"]["new"], 0);
    assert_eq!(report["summary"]["baseline"]["unchanged"], findings.len());
    assert_eq!(report["resolved"].as_array().unwrap().len(), 0);

    let out = run(auditor()
        .args(["--once", "--demo", "--fail-on-new", "--baseline"])
        .arg(&base));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn a_finding_missing_from_the_baseline_is_new_and_a_gone_one_is_resolved() {
    let mut base = demo_report();
    let findings = base["findings"].as_array_mut().unwrap();
    let critical = findings
        .iter()
        .position(|f| f["severity"] == "critical")
        .expect("the demo has a critical finding");
    findings.remove(critical);
    findings.push(serde_json::json!({
        "rule_id": "vpc.az_count", "pack": "union-byoc", "account_id": "123456789012",
        "region": "us-east-1", "resource_id": "vpc-gone", "severity": "high",
        "message": "since deleted"
    }));
    let (_d, base) = temp_file("base.json", &base.to_string());

    let out = run(auditor()
        .args(["--once", "--demo", "--format", "json", "--baseline"])
        .arg(&base));
    let report = json_report(&out);
    let new: Vec<_> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["baseline"] == "new")
        .collect();
    assert_eq!(new.len(), 1);
    assert_eq!(new[0]["severity"], "critical");
    assert_eq!(report["resolved"][0]["resource_id"], "vpc-gone");
    assert_eq!(report["summary"]["baseline"]["resolved"], 1);

    let code = |fail_on: &str| {
        run(auditor()
            .args(["--once", "--demo", "--fail-on-new", "--fail-on", fail_on])
            .arg("--baseline")
            .arg(&base))
        .status
        .code()
    };
    assert_eq!(code("critical"), Some(1));

    let out = run(auditor()
        .args(["--once", "--demo", "--baseline"])
        .arg(&base));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("NEW CRITICAL iam.trust_policy_drift"),
        "{text}"
    );
    assert!(text.contains("Resolved since the baseline:"), "{text}");
    assert!(text.contains("vpc-gone"), "{text}");
}

#[test]
fn without_a_baseline_the_report_has_no_baseline_fields() {
    let report = demo_report();
    assert!(report.get("resolved").is_none());
    assert!(report["summary"].get("baseline").is_none());
    assert!(report["findings"][0].get("baseline").is_none());
}

#[test]
fn bad_baseline_files_exit_two_naming_file_line_and_field() {
    let (base, err) = common::rejected_input(
        "--baseline",
        "base.json",
        "{\n  \"schema_version\": 2,\n  \"findings\": []\n}\n",
    );
    assert!(
        err.contains(&format!("{base}:2:")) && err.contains("schema_version"),
        "{err}"
    );

    let (base, err) = common::rejected_input(
        "--baseline",
        "base.json",
        "{\"schema_version\": 1,\n \"findings\": [\n  {\"rule_id\": \"x\", \"severity\": \"severe\"}\n ]\n}\n",
    );
    assert!(
        err.contains(&format!("{base}:3:")) && err.contains("findings[0]"),
        "{err}"
    );

    let out = run(auditor().args(["--once", "--demo", "--fail-on-new"]));
    assert_eq!(out.status.code(), Some(2), "--fail-on-new needs --baseline");
}
