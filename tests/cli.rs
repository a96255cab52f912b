//! The command line as a user meets it: the demo, report formats, exit codes, and clear
//! errors for bad input. None of these tests touch AWS.

mod common;

use common::{auditor, json_report, run, stderr, temp_file};

#[test]
fn demo_prints_a_table_with_clean_and_failing_vpcs_and_exits_one() {
    let out = run(auditor().args(["--once", "--demo"]));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("(union-data-plane-prod, 10.0.0.0/16): compliant"),
        "{text}"
    );
    // The demo's default VPC is skipped by default, and listed as skipped.
    assert!(text.contains(": skipped, default VPC"), "{text}");
    assert!(
        text.contains("MEDIUM   endpoint.interface_required"),
        "{text}"
    );
    assert!(text.contains("CRITICAL iam.trust_policy_drift"), "{text}");
    assert!(
        !text.contains('\x1b'),
        "no colour when stdout is not a terminal"
    );
    let last = text.lines().last().unwrap();
    assert!(
        last.contains("finding(s) (1 critical,")
            && last.contains("in 3 VPC(s)")
            && last.contains("1 VPC(s) skipped"),
        "{last}"
    );
}

#[test]
fn fail_on_threshold_decides_the_exit_code() {
    // The demo's worst finding is the critical trust drift of union-ai-admin.
    let code = |args: &[&str]| run(auditor().args(args)).status.code();
    assert_eq!(
        code(&["--once", "--demo", "--fail-on", "critical"]),
        Some(1)
    );
    let (_d, config) = temp_file(
        "c.yaml",
        "fail_on: critical\nrule_overrides:\n  iam.trust_policy_drift: {severity: high}\n",
    );
    let out = run(auditor()
        .args(["--once", "--demo"])
        .arg("--config")
        .arg(&config));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = run(auditor()
        .args(["--once", "--demo", "--fail-on", "high"])
        .arg("--config")
        .arg(&config));
    assert_eq!(out.status.code(), Some(1), "--fail-on beats the config");
}

#[test]
fn json_report_has_the_documented_schema() {
    let out = run(auditor().args(["--once", "--demo", "--format", "json"]));
    let report = json_report(&out);
    for key in [
        "schema_version",
        "generated_at",
        "scans",
        "findings",
        "summary",
        "vpcs",
        "tool",
    ] {
        assert!(report.get(key).is_some(), "report lacks {key}");
    }
    let scan = &report["scans"][0];
    for key in ["account_id", "region", "status", "error", "api_calls"] {
        assert!(scan.get(key).is_some(), "scan lacks {key}");
    }
    assert_eq!(
        report["summary"]["by_severity"].as_object().unwrap().len(),
        5
    );
    let by_rule: u64 = report["summary"]["by_rule"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(
        by_rule as usize,
        report["findings"].as_array().unwrap().len()
    );
}

#[test]
fn output_flag_writes_the_report_to_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.json");
    let out = run(auditor()
        .args(["--once", "--demo", "--format", "json", "--output"])
        .arg(&path));
    assert!(out.stdout.is_empty());
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(report["schema_version"], 1);
}

#[test]
fn unknown_config_key_exits_two_naming_file_line_and_field() {
    let (_d, config) = temp_file(
        "config.yaml",
        "regions: [us-east-1]\nscope:\n  exclude_defualt_vpc: true\n",
    );
    let out = run(auditor()
        .args(["--once", "--demo"])
        .arg("--config")
        .arg(&config));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    let expected = format!(
        "vpc-auditor: {}:3:3: scope.exclude_defualt_vpc: unknown field `exclude_defualt_vpc`",
        config.display()
    );
    assert!(err.starts_with(&expected), "{err}");
    assert!(!err.contains("panicked"));
}

#[test]
fn wrong_type_in_a_rule_pack_exits_two_naming_file_line_and_field() {
    let (_d, pack) = temp_file(
        "pack.yaml",
        "name: custom\nvpc_rules:\n  vpc.az_count:\n    min_azs: three\n",
    );
    let out = run(auditor().args(["--once", "--demo", "--rules"]).arg(&pack));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.starts_with(&format!(
            "vpc-auditor: {}:4:14: vpc_rules.vpc.az_count.min_azs: invalid type: string \"three\"",
            pack.display()
        )),
        "{err}"
    );
}

#[test]
fn bad_values_are_errors_not_silently_ignored() {
    for (text, needle) in [
        (
            "regions: [us-east-1, moon-base]\n",
            "regions[1]: expected an AWS region name",
        ),
        (
            "scope:\n  vpc_ids: [subnet-1]\n",
            "scope.vpc_ids[0]: expected a VPC id",
        ),
        (
            "aws:\n  max_attempts: 0\n",
            "aws.max_attempts: must be from 1 to 20",
        ),
        ("fail_on: severe\n", "fail_on: unknown variant `severe`"),
        (
            "rule_overrides:\n  subnet.private_size: {max_prefix_length: 33}\n",
            "max_prefix_length: expected an IPv4 prefix length",
        ),
        ("- just\n- a list\n", "invalid type: sequence"),
        ("regions: [us-east-1\n", "did not find expected"),
    ] {
        let (_d, config) = temp_file("config.yaml", text);
        let out = run(auditor()
            .args(["--once", "--demo"])
            .arg("--config")
            .arg(&config));
        assert_eq!(out.status.code(), Some(2), "{text}");
        assert!(stderr(&out).contains(needle), "{text}: {}", stderr(&out));
    }
}

#[test]
fn malformed_snapshot_exits_two_with_its_position() {
    let (_d, snap) = temp_file(
        "snap.json",
        "{\"schema_version\": 1, \"regions\": [{\"account_id\": 7}]}",
    );
    let out = run(auditor().args(["--once", "--from-snapshot"]).arg(&snap));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("snap.json:1:") && err.contains("regions[0].account_id"),
        "{err}"
    );
}

#[test]
fn rules_folder_loads_every_pack_and_duplicate_names_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.yaml"),
        "name: strict\nvpc_rules:\n  vpc.az_count: {min_azs: 4}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("b.yml"),
        "name: lenient\nvpc_rules:\n  vpc.az_count: {min_azs: 1}\n",
    )
    .unwrap();
    let out = run(auditor()
        .args(["--once", "--demo", "--format", "json", "--rules"])
        .arg(dir.path()));
    let report = json_report(&out);
    let packs: std::collections::BTreeSet<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["pack"].as_str())
        .collect();
    assert_eq!(
        packs,
        ["strict"].into_iter().collect(),
        "only the strict pack fires on 3-AZ VPCs"
    );
    let az_findings = report["findings"].as_array().unwrap().len();
    assert_eq!(
        az_findings, 3,
        "every audited demo VPC has fewer than 4 AZs (the default VPC is skipped)"
    );

    std::fs::write(dir.path().join("b.yml"), "name: strict\n").unwrap();
    let out = run(auditor()
        .args(["--once", "--demo", "--rules"])
        .arg(dir.path()));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("duplicate rule pack name \"strict\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn missing_files_and_bad_flags_exit_two() {
    let out = run(auditor().args(["--once", "--demo", "--config", "/nonexistent/config.yaml"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with("vpc-auditor: /nonexistent/config.yaml: "),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        run(auditor().args(["--once", "--demo", "--region", "nowhere"]))
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        run(auditor().args(["--once", "--demo", "--fail-on", "urgent"]))
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        run(auditor().args(["--once", "--demo", "--endpoint-url", "localhost:1"]))
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn list_rules_prints_the_catalogue() {
    let out = run(auditor().arg("--list-rules"));
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("| `endpoint.interface_required` | medium | vpc |"),
        "{text}"
    );
    // The header row and its separator, then one row per rule of the catalogue.
    assert_eq!(
        text.lines().count(),
        2 + vpc_auditor::rules::catalogue::CATALOGUE.len()
    );
    assert!(text.contains("| `ecr.cross_account_pull` | high | ecr_repository |"));
}

#[test]
fn unreachable_aws_is_an_incomplete_scan_with_exit_two_and_json_logs_on_stderr() {
    let port = common::free_port();
    let out = run(auditor()
        .args([
            "--once",
            "--format",
            "json",
            "--log-format",
            "json",
            "--log-level",
            "info",
        ])
        .args(["--endpoint-url", &format!("http://127.0.0.1:{port}")]));
    assert_eq!(
        out.status.code(),
        Some(2),
        "nothing listens there: the scan is incomplete"
    );
    let report = json_report(&out);
    let scans = report["scans"].as_array().unwrap();
    assert!(
        !scans.is_empty() && scans.iter().all(|s| s["status"] == "error"),
        "{report:#}"
    );
    assert!(scans.iter().all(|s| s["error"]
        .as_str()
        .unwrap()
        .contains("sts:GetCallerIdentity")));
    assert_eq!(
        report["findings"],
        serde_json::json!([]),
        "a failed scan is never clean"
    );
    let err = stderr(&out);
    let logs: Vec<serde_json::Value> = err
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(
        logs.iter()
            .any(|l| l["level"] == "ERROR" && l["message"] == "collection failed"),
        "{err}"
    );
}
