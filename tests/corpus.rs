//! The bad-input corpus: every input under `tests/corpus/` is fed to the real binary through
//! the entry point its manifest entry names, and the outcome is checked against
//! `tests/corpus/manifest.yaml`: the exit code, substrings of stderr (file, line, field), and
//! for valid snapshots the exact findings.
//!
//! Whatever the input, the binary must never panic (no "panicked" on stderr, never exit
//! 101) and never hang (each run has a time limit); a rejected input (exit 2) must be named
//! on stderr. Inputs too large to commit are generated here (`generate:` in the manifest).

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

/// How long one run may take; the slowest inputs (generated megabytes) take well under one
/// second on a laptop.
const RUN_TIME_LIMIT: Duration = Duration::from_secs(60);

/// One manifest entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    /// The input, relative to `tests/corpus/`.
    #[serde(default)]
    file: Option<String>,
    /// Or the name of a generator in [`generate`], for inputs too large to commit.
    #[serde(default)]
    generate: Option<String>,
    /// The entry point the input goes through.
    feed: Feed,
    /// The expected exit code: 0 clean, 1 findings, 2 bad input or failed scan.
    exit: i32,
    /// Substrings stderr must contain.
    #[serde(default)]
    stderr: Vec<String>,
    /// For `exit` 0 or 1 with a snapshot: every finding, as `rule_id resource_id`.
    #[serde(default)]
    findings: Option<Vec<String>>,
    /// The file a rejection must name, when it is not the input (an error in a file the
    /// input refers to).
    #[serde(default)]
    names: Option<String>,
    /// Why the outcome is the right one; for people, not checked.
    #[serde(default)]
    #[allow(dead_code)]
    why: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Feed {
    /// `--config FILE` (with `--demo`).
    Config,
    /// `--rules FILE` (with `--demo`).
    Rules,
    /// `--from-snapshot FILE` with the VPC rules of `support/vpc-rules.yaml`.
    Snapshot,
    /// `--suppressions FILE` (with `--demo`).
    Suppressions,
    /// `--baseline FILE` (with `--demo`).
    Baseline,
    /// A rule pack whose role expects `policies: [FILE]` (with `--demo`).
    Policy,
    /// A rule pack whose role has `trust_policy: FILE` (with `--demo`).
    TrustPolicy,
    /// A rule pack whose role has `template: FILE` (with `--demo`).
    Template,
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

fn load_manifest() -> Vec<Case> {
    let path = corpus_dir().join("manifest.yaml");
    let text = std::fs::read_to_string(&path).expect("read the manifest");
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Inputs generated at run time: deep nesting and megabytes, which would bloat the repository.
fn generate(name: &str) -> (&'static str, Vec<u8>) {
    let statement = r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}"#;
    match name {
        // 100 000 nested arrays inside a condition value: past any recursion limit.
        "policy-deep-nesting" => {
            let depth = 100_000;
            let text = format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{{"StringEquals":{{"aws:SourceVpc":{}"vpc-1"{}}}}}}}]}}"#,
                "[".repeat(depth),
                "]".repeat(depth)
            );
            ("deep-nesting.json", text.into_bytes())
        }
        // Nested objects as the Statement itself.
        "policy-deep-objects" => {
            let depth = 50_000;
            let text = format!(
                r#"{{"Version":"2012-10-17","Statement":{}{}}}"#,
                r#"{"a":"#.repeat(depth),
                "}".repeat(depth)
            );
            ("deep-objects.json", text.into_bytes())
        }
        // About 2 MB: 30 000 statements. Valid; the role is not in the demo account.
        "policy-huge" => {
            let statements: Vec<String> = (0..30_000)
                .map(|i| {
                    format!(
                        r#"{{"Sid":"S{i}","Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::bucket-{i}/*"}}"#
                    )
                })
                .collect();
            let text = format!(
                r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
                statements.join(",")
            );
            ("huge.json", text.into_bytes())
        }
        // One 8 MB action name.
        "policy-huge-string" => {
            let text = format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"s3:{}","Resource":"*"}}]}}"#,
                "Get*".repeat(2_000_000)
            );
            ("huge-string.json", text.into_bytes())
        }
        // 10 000 nested YAML flow sequences in a template.
        "template-deep-nesting" => {
            let depth = 10_000;
            let text = format!(
                "Resources:\n  Role:\n    Type: AWS::IAM::Role\n    Properties:\n      RoleName: {}x{}\n",
                "[".repeat(depth),
                "]".repeat(depth)
            );
            ("deep-nesting.yaml", text.into_bytes())
        }
        // A template with 5 000 roles: the role to check is ambiguous.
        "template-many-roles" => {
            let mut text = String::from("Resources:\n");
            for i in 0..5_000 {
                text.push_str(&format!(
                    "  Role{i}:\n    Type: AWS::IAM::Role\n    Properties:\n      RoleName: role-{i}\n      AssumeRolePolicyDocument:\n        Statement:\n          - {{Effect: Allow, Principal: {{Service: ec2.amazonaws.com}}, Action: sts:AssumeRole}}\n"
                ));
            }
            ("many-roles.yaml", text.into_bytes())
        }
        // 10 000 nested block mappings in a config.
        "config-deep-nesting" => {
            let mut text = String::from("scope:\n");
            for level in 1..10_000 {
                text.push_str(&" ".repeat(level.min(200)));
                text.push_str("a:\n");
            }
            ("deep-nesting.yaml", text.into_bytes())
        }
        // A 4 MB region name.
        "config-huge-value" => (
            "huge-value.yaml",
            format!("regions: [us-east-{}]\n", "1".repeat(4_000_000)).into_bytes(),
        ),
        // 50 000 nested arrays in a snapshot.
        "snapshot-deep-nesting" => {
            let depth = 50_000;
            let text = format!(
                r#"{{"schema_version":1,"regions":{}{}}}"#,
                "[".repeat(depth),
                "]".repeat(depth)
            );
            ("deep-nesting.json", text.into_bytes())
        }
        // A snapshot with 5 000 VPCs that have nothing in them.
        "snapshot-many-vpcs" => {
            let vpcs: Vec<String> = (0..5_000)
                .map(|i| {
                    format!(
                        r#"{{"id":"vpc-{i:017x}","cidr_block":"10.0.0.0/16","enable_dns_support":true,"enable_dns_hostnames":true}}"#
                    )
                })
                .collect();
            let text = format!(
                r#"{{"schema_version":1,"regions":[{{"account_id":"123456789012","region":"us-east-1","vpcs":[{}]}}]}}"#,
                vpcs.join(",")
            );
            ("many-vpcs.json", text.into_bytes())
        }
        // A rule pack whose one line is 2 MB long.
        "rules-long-line" => (
            "long-line.yaml",
            format!("name: {}\n", "a".repeat(2_000_000)).into_bytes(),
        ),
        // A policy with 30 000 copies of one statement, so nothing about it is new but its size.
        "policy-repeated-statement" => (
            "repeated-statement.json",
            format!(
                r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
                vec![statement; 30_000].join(",")
            )
            .into_bytes(),
        ),
        other => panic!("manifest names an unknown generator {other:?}"),
    }
}

/// The input's path: the committed file, or the generated one written into `scratch`.
fn input_path(case: &Case, scratch: &Path) -> PathBuf {
    match (&case.file, &case.generate) {
        (Some(file), None) => corpus_dir().join(file),
        (None, Some(name)) => {
            let (file_name, bytes) = generate(name);
            let path = scratch.join(file_name);
            std::fs::write(&path, bytes).expect("write the generated input");
            path
        }
        _ => panic!("a manifest entry needs exactly one of `file` and `generate`: {case:?}"),
    }
}

/// A rule pack, in `scratch`, whose one role gets its expectations from `input`.
fn pack_for(feed: Feed, input: &Path, scratch: &Path) -> PathBuf {
    let allow = corpus_dir().join("support/allow-s3-read.json");
    let role = match feed {
        Feed::Policy => format!(
            "  - role_name: corpus-role\n    policies: [{:?}]\n",
            input.display().to_string()
        ),
        Feed::TrustPolicy => format!(
            "  - role_name: corpus-role\n    policies: [{:?}]\n    trust_policy: {:?}\n",
            allow.display().to_string(),
            input.display().to_string()
        ),
        Feed::Template => format!(
            "  - template: {:?}\n    role_name: corpus-role\n",
            input.display().to_string()
        ),
        _ => unreachable!("only role expectations need a pack"),
    };
    let path = scratch.join("corpus-pack.yaml");
    std::fs::write(&path, format!("name: corpus-iam\nroles:\n{role}")).expect("write the pack");
    path
}

fn command_for(case: &Case, input: &Path, scratch: &Path) -> Command {
    let mut cmd = common::auditor();
    cmd.args(["--once", "--format", "json"]);
    match case.feed {
        Feed::Snapshot => {
            cmd.arg("--from-snapshot")
                .arg(input)
                .arg("--rules")
                .arg(corpus_dir().join("support/vpc-rules.yaml"));
        }
        Feed::Config => {
            cmd.arg("--demo").arg("--config").arg(input);
        }
        Feed::Rules => {
            cmd.arg("--demo").arg("--rules").arg(input);
        }
        Feed::Suppressions => {
            cmd.arg("--demo").arg("--suppressions").arg(input);
        }
        Feed::Baseline => {
            cmd.arg("--demo").arg("--baseline").arg(input);
        }
        Feed::Policy | Feed::TrustPolicy | Feed::Template => {
            cmd.arg("--demo")
                .arg("--rules")
                .arg(pack_for(case.feed, input, scratch));
        }
    }
    cmd
}

struct Outcome {
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: String,
    elapsed: Duration,
}

/// Runs `cmd`, killing it after [`RUN_TIME_LIMIT`].
fn run_with_limit(mut cmd: Command) -> Result<Outcome, String> {
    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run vpc-auditor: {e}"))?;
    let mut stdout_pipe = child.stdout.take().expect("stdout");
    let mut stderr_pipe = child.stderr.take().expect("stderr");
    let stdout = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout_pipe.read_to_end(&mut buf);
        buf
    });
    let stderr = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr_pipe.read_to_end(&mut buf);
        buf
    });
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if started.elapsed() > RUN_TIME_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("still running after {RUN_TIME_LIMIT:?}: killed"));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Ok(Outcome {
        code: status.code(),
        stdout: stdout.join().unwrap_or_default(),
        stderr: String::from_utf8_lossy(&stderr.join().unwrap_or_default()).into_owned(),
        elapsed: started.elapsed(),
    })
}

/// Every problem with one case's outcome; empty when it is as expected.
fn check(case: &Case, input: &Path, outcome: &Outcome) -> Vec<String> {
    let mut problems = Vec::new();
    let stderr = &outcome.stderr;
    if stderr.contains("panicked") || outcome.code == Some(101) {
        problems.push("panicked".to_string());
    }
    if outcome.code != Some(case.exit) {
        problems.push(format!(
            "exit code {:?}, expected {}",
            outcome.code, case.exit
        ));
    }
    if case.exit == 2 {
        let name = match &case.names {
            Some(name) => name.clone(),
            None => input
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned(),
        };
        if !stderr.contains(name.as_str()) {
            problems.push(format!("stderr does not name the file {name}"));
        }
    }
    for expected in &case.stderr {
        if !stderr.contains(expected.as_str()) {
            problems.push(format!("stderr lacks {expected:?}"));
        }
    }
    if let Some(expected) = &case.findings {
        match serde_json::from_slice::<serde_json::Value>(&outcome.stdout) {
            Ok(report) => {
                let mut found: Vec<String> = report["findings"]
                    .as_array()
                    .map(|list| {
                        list.iter()
                            .map(|f| {
                                format!(
                                    "{} {}",
                                    f["rule_id"].as_str().unwrap_or("?"),
                                    f["resource_id"].as_str().unwrap_or("?")
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                found.sort();
                let mut expected = expected.clone();
                expected.sort();
                if found != expected {
                    problems.push(format!("findings {found:?}, expected {expected:?}"));
                }
            }
            Err(e) => problems.push(format!("stdout is not a JSON report: {e}")),
        }
    }
    problems
}

#[test]
fn every_corpus_input_has_its_expected_outcome_and_nothing_panics() {
    let cases = load_manifest();
    let mut failures = Vec::new();
    let mut slowest = (Duration::ZERO, String::new());
    for case in &cases {
        let scratch = tempfile::tempdir().expect("temp dir");
        let input = input_path(case, scratch.path());
        let label = case
            .file
            .clone()
            .or_else(|| case.generate.clone().map(|g| format!("<generated {g}>")))
            .unwrap_or_default();
        match run_with_limit(command_for(case, &input, scratch.path())) {
            Ok(outcome) => {
                if outcome.elapsed > slowest.0 {
                    slowest = (outcome.elapsed, label.clone());
                }
                let problems = check(case, &input, &outcome);
                if !problems.is_empty() {
                    failures.push(format!(
                        "{label} ({:?}): {}\n    stderr: {}",
                        case.feed,
                        problems.join("; "),
                        outcome.stderr.trim().replace('\n', "\n            ")
                    ));
                }
            }
            Err(e) => failures.push(format!("{label}: {e}")),
        }
    }
    eprintln!(
        "{} corpus inputs; slowest {} in {:?}",
        cases.len(),
        slowest.1,
        slowest.0
    );
    assert!(
        failures.is_empty(),
        "{} of {} corpus inputs did not behave as the manifest says:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn every_committed_corpus_file_is_in_the_manifest() {
    let listed: std::collections::BTreeSet<String> =
        load_manifest().into_iter().filter_map(|c| c.file).collect();
    let mut unlisted = Vec::new();
    for dir in std::fs::read_dir(corpus_dir()).expect("corpus dir") {
        let dir = dir.expect("entry").path();
        if !dir.is_dir() || dir.ends_with("support") {
            continue;
        }
        for file in std::fs::read_dir(&dir).expect("corpus subdir") {
            let file = file.expect("entry").path();
            let relative = file
                .strip_prefix(corpus_dir())
                .expect("under the corpus")
                .to_string_lossy()
                .into_owned();
            if !listed.contains(&relative) {
                unlisted.push(relative);
            }
        }
    }
    assert!(
        unlisted.is_empty(),
        "corpus files without an expected outcome in manifest.yaml: {unlisted:?}"
    );
}
