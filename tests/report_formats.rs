//! Every report format from one real run, read by the programs that consume each: the
//! built binary scans a moto account (a compliant VPC, a broken one, moto's default VPC,
//! skipped by default and listed as skipped in every human report and the JSON) with a baseline and suppressions, and writes all six formats with `--output-dir`.
//!
//! - SARIF is validated against the SARIF 2.1.0 JSON schema (Python `jsonschema`) and its
//!   results are matched one to one with the JSON report's findings;
//! - JUnit is parsed by Python `junitparser`, and its failures, skips and passes are
//!   matched with the findings and the resources evaluated;
//! - Markdown, HTML and the table are checked for the findings they must show.
//!
//! (The HTML report is rendered by a real browser in `tests/vpc_picture_browser.rs`.) The
//! Python tools are installed by `scripts/setup-test-env.sh` in `.venv/report-tools`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use aws_sdk_ec2::types::AttributeBooleanValue;
use common::scenario::{self, Layout};
use common::{auditor, free_port, run, stderr, temp_file, Moto};
use serde_json::Value;

const ALL_FORMATS: &str = "table,json,html,sarif,junit,markdown";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// What Python's jsonschema and junitparser made of the SARIF and JUnit files.
fn consumers_view(dir: &Path) -> Value {
    let python = repo().join(".venv/report-tools/bin/python");
    assert!(
        python.is_file(),
        "{} missing: run scripts/setup-test-env.sh",
        python.display()
    );
    let out = Command::new(&python)
        .arg(repo().join("tests/report_tools/check_reports.py"))
        .arg(repo().join("tests/schemas/sarif-schema-2.1.0.json"))
        .arg(dir.join("report.sarif"))
        .arg(dir.join("report.junit.xml"))
        .output()
        .expect("run check_reports.py");
    let view: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "check_reports.py printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(
        view["sarif"]["schema_errors"],
        serde_json::json!([]),
        "the SARIF report breaks the SARIF 2.1.0 schema"
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    view
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The identity of a finding in both the JSON report and the consumers' views.
fn key(rule: &Value, resource: &Value) -> (String, String) {
    (
        rule.as_str().unwrap_or_default().to_string(),
        resource.as_str().unwrap_or_default().to_string(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn all_formats_come_from_one_run_and_each_consumer_reads_the_same_findings() {
    let moto = Moto::start();
    let ec2 = moto.ec2().await;
    let good = scenario::build(&ec2, "compliant", &Layout::compliant()).await;
    let broken = scenario::build(
        &ec2,
        "broken",
        &Layout {
            public_azs: vec!['a', 'b'],
            private_azs: vec!['a', 'b'],
            ..Layout::compliant()
        },
    )
    .await;

    // The baseline: this account before a change, plus a finding that is gone since.
    let work = tempfile::tempdir().expect("temp dir");
    let baseline_path = work.path().join("baseline.json");
    let first = run(moto.once_json(None).arg("--output").arg(&baseline_path));
    assert_eq!(first.status.code(), Some(1), "{}", stderr(&first));
    let mut baseline: Value =
        serde_json::from_str(&read(work.path(), "baseline.json")).expect("baseline JSON");
    let mut gone = baseline["findings"][0].clone();
    gone["resource_id"] = "vpc-0since0fixed0000".into();
    baseline["findings"].as_array_mut().unwrap().push(gone);
    std::fs::write(&baseline_path, baseline.to_string()).unwrap();

    // The change: DNS hostnames switched off on the compliant VPC, a new finding.
    ec2.modify_vpc_attribute()
        .vpc_id(&good.vpc_id)
        .enable_dns_hostnames(AttributeBooleanValue::builder().value(false).build())
        .send()
        .await
        .expect("switch DNS hostnames off");

    let (_s, suppressions) = temp_file(
        "suppressions.yaml",
        &format!(
            "suppressions:\n\
             - rule: vpc.az_count\n  resource: '{}'\n  reason: two AZs accepted until the migration\n  expires: 2999-12-31\n\
             - rule: nat.same_az\n  resource: 'nat-never-there'\n  reason: stale on purpose\n  expires: 2999-12-31\n\
             - rule: vpc.cidr_size\n  resource: '*'\n  reason: expired on purpose\n  expires: 2020-01-01\n",
            broken.vpc_id
        ),
    );
    let out_dir = work.path().join("reports");
    let out = run(moto
        .once_json(None)
        .args(["--format", ALL_FORMATS, "--output-dir"])
        .arg(&out_dir)
        .arg("--baseline")
        .arg(&baseline_path)
        .arg("--suppressions")
        .arg(&suppressions));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        out.stdout.is_empty(),
        "--output-dir writes nothing to stdout"
    );
    let names: BTreeSet<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "report.html",
            "report.json",
            "report.junit.xml",
            "report.md",
            "report.sarif",
            "report.txt"
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    );

    let report: Value = serde_json::from_str(&read(&out_dir, "report.json")).unwrap();
    let findings = report["findings"].as_array().unwrap();
    let by_key: BTreeMap<(String, String), &Value> = findings
        .iter()
        .map(|f| (key(&f["rule_id"], &f["resource_id"]), f))
        .collect();
    assert!(by_key.contains_key(&("vpc.dns_attributes".into(), good.vpc_id.clone())));
    assert!(by_key.contains_key(&("vpc.az_count".into(), broken.vpc_id.clone())));
    assert!(findings
        .iter()
        .any(|f| f["rule_id"] == "suppression.expired"));
    assert!(findings.iter().any(|f| f["suppressed"].is_object()));
    assert_eq!(report["summary"]["baseline"]["resolved"], 1);

    let view = consumers_view(&out_dir);

    // SARIF: a result per finding, on its resource, pointing at its rule; resolved ones
    // as `absent`; the whole catalogue as rules, each with a description and help.
    let sarif = &view["sarif"];
    assert_eq!(sarif["execution_successful"], true);
    let rules = sarif["rules"].as_array().unwrap();
    let catalogue = run(auditor().arg("--list-rules"));
    let listed = String::from_utf8_lossy(&catalogue.stdout).into_owned();
    for rule in rules {
        assert!(listed.contains(&format!("`{}`", rule["id"].as_str().unwrap())));
        assert_eq!(rule["has_description"], true, "{rule}");
        assert_eq!(rule["has_help"], true, "{rule}");
    }
    let results = sarif["results"].as_array().unwrap();
    let (absent, current): (Vec<&Value>, Vec<&Value>) = results
        .iter()
        .partition(|r| r["baseline_state"] == "absent");
    assert_eq!(absent.len(), 1);
    assert_eq!(absent[0]["resource_id"], "vpc-0since0fixed0000");
    assert_eq!(current.len(), findings.len());
    for result in current {
        let finding = by_key
            .get(&key(&result["rule_id"], &result["resource_id"]))
            .unwrap_or_else(|| panic!("SARIF result with no finding: {result}"));
        assert_eq!(result["rule_at_index"], result["rule_id"]);
        assert_eq!(result["suppressed"], finding["suppressed"].is_object());
        assert_eq!(result["baseline_state"], finding["baseline"], "{result}");
        assert_eq!(result["has_remediation"], true);
    }

    // JUnit: failures are exactly the counted findings, skips the suppressed ones, and the
    // resources the rules passed are there as passing test cases.
    let suites = view["junit"]["suites"].as_object().unwrap();
    let scans = &suites["scans"];
    assert_eq!(
        scans["tests"].as_u64().unwrap() as usize,
        report["scans"].as_array().unwrap().len()
    );
    assert_eq!(scans["errors"], 0);
    let mut failed = BTreeSet::new();
    let mut skipped = BTreeSet::new();
    let mut passed = BTreeSet::new();
    for (suite_name, suite) in suites.iter().filter(|(name, _)| *name != "scans") {
        for case in suite["cases"].as_array().unwrap() {
            let id = (
                suite_name.clone(),
                case["name"].as_str().unwrap().to_string(),
            );
            match case["outcome"].as_str().unwrap() {
                "failure" => failed.insert(id),
                "skipped" => skipped.insert(id),
                "passed" => passed.insert(id),
                other => panic!("unexpected outcome {other} in {case}"),
            };
        }
    }
    let counted: BTreeSet<_> = by_key
        .iter()
        .filter(|(_, f)| !f["suppressed"].is_object())
        .map(|(k, _)| k.clone())
        .collect();
    let suppressed: BTreeSet<_> = by_key
        .iter()
        .filter(|(_, f)| f["suppressed"].is_object())
        .map(|(k, _)| k.clone())
        .collect();
    assert_eq!(failed, counted);
    assert_eq!(skipped, suppressed);
    assert!(passed.contains(&("vpc.az_count".to_string(), good.vpc_id.clone())));
    assert!(!passed.contains(&("vpc.dns_attributes".to_string(), good.vpc_id.clone())));
    let evaluated: u64 = report["summary"]["evaluated"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    let expired_cases = suites["suppression.expired"]["tests"].as_u64().unwrap();
    assert_eq!(
        (passed.len() + failed.len() + skipped.len()) as u64 - expired_cases,
        evaluated,
        "one test case per resource a rule evaluated"
    );

    // Markdown: a verdict, the counts, and every counted finding with its remediation.
    let markdown = read(&out_dir, "report.md");
    assert!(markdown.starts_with("## vpc-auditor report"));
    assert!(markdown.contains("finding(s)**"));
    for (rule, resource) in &counted {
        assert!(
            markdown.contains(&format!("`{rule}` on `{resource}`")),
            "{rule} on {resource} missing from the Markdown"
        );
    }
    assert!(markdown.contains("**new**"), "the new finding is marked");
    assert!(markdown.contains("Resolved since the baseline"));

    // HTML: one self-contained page with a picture per VPC.
    let html = read(&out_dir, "report.html");
    assert!(html.contains("<svg") && html.contains(&broken.vpc_id));
    assert!(!html.contains("src=\"http") && !html.contains("<link"));

    // The table: the same summary a person sees on a terminal.
    let table = read(&out_dir, "report.txt");
    assert!(table.contains(&broken.vpc_id) && table.contains("against the baseline"));

    // moto's default VPC is not audited by default, and every report says so.
    let skipped = report["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert_eq!(skipped[0]["is_default"], true);
    let default_vpc = skipped[0]["vpc_id"].as_str().unwrap();
    assert!(report["vpcs"]
        .as_array()
        .unwrap()
        .iter()
        .all(|v| v["vpc_id"] != default_vpc));
    assert!(table.contains(&format!("{default_vpc} ")) && table.contains("1 VPC(s) skipped"));
    assert!(markdown.contains(&format!("Skipped: `{default_vpc}`")));
    assert!(html.contains(&format!("Skipped: <code>{default_vpc}</code>")));
}

#[test]
fn a_failed_scan_is_an_error_in_junit_and_an_unsuccessful_run_in_sarif() {
    let (_c, config) = temp_file("config.yaml", "aws:\n  max_attempts: 1\n");
    let work = tempfile::tempdir().expect("temp dir");
    let dead = format!("http://127.0.0.1:{}", free_port());
    let out = run(auditor()
        .args([
            "--once",
            "--format",
            "sarif,junit,markdown",
            "--endpoint-url",
            &dead,
        ])
        .arg("--config")
        .arg(&config)
        .arg("--output-dir")
        .arg(work.path()));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let view = consumers_view(work.path());
    assert_eq!(view["sarif"]["execution_successful"], false);
    let scans = &view["junit"]["suites"]["scans"];
    assert!(scans["errors"].as_u64().unwrap() >= 1, "{scans}");
    assert!(read(work.path(), "report.md").contains("**Incomplete:**"));
}

#[test]
fn several_formats_need_an_output_dir() {
    let out = run(auditor().args(["--once", "--demo", "--format", "json,sarif"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--output-dir"), "{}", stderr(&out));

    let work = tempfile::tempdir().expect("temp dir");
    let out = run(auditor()
        .args([
            "--once", "--demo", "--format", "json", "--format", "markdown",
        ])
        .arg("--output-dir")
        .arg(work.path().join("new/folder")));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(work.path().join("new/folder/report.json").is_file());
    assert!(work.path().join("new/folder/report.md").is_file());
}
