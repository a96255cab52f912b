//! deploy/events/: the queue and EventBridge rules for event-driven re-scans.
//!
//! - The event names of every rule, in CloudFormation and Terraform, are exactly the lists
//!   the daemon reads (`src/events/mapping.rs`): an event the daemon would ignore is not
//!   routed, and none it re-scans on is left out.
//! - The queue has a dead-letter queue, and the queue policy lets only this account's rules
//!   send; the IAM rule forwards only from us-east-1.
//! - The SQS calls the daemon makes (`src/events/queue.rs`) are the three actions the
//!   auditor's role grants on the queue (tests/deploy.rs checks the role).
//! - cfn-lint accepts both templates and `terraform fmt` the modules, where installed (as in
//!   tests/deploy.rs: a missing linter fails only with CI set).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use vpc_auditor::events::mapping::{EC2_EVENTS, IAM_EVENTS};

const CENTRAL: &str = "deploy/events/events.template.yaml";
const FORWARDING: &str = "deploy/events/member-forwarding.template.yaml";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// A CloudFormation template as JSON, its short-form tags (`!Ref`, `!GetAtt`, …) dropped to
/// their values.
fn template(rel: &str) -> serde_json::Value {
    fn strip(v: serde_yaml_ng::Value) -> serde_yaml_ng::Value {
        use serde_yaml_ng::Value;
        match v {
            Value::Tagged(t) => strip(t.value),
            Value::Sequence(s) => Value::Sequence(s.into_iter().map(strip).collect()),
            Value::Mapping(m) => {
                Value::Mapping(m.into_iter().map(|(k, v)| (k, strip(v))).collect())
            }
            other => other,
        }
    }
    let yaml: serde_yaml_ng::Value = serde_yaml_ng::from_str(&read(rel)).expect(rel);
    serde_json::to_value(strip(yaml)).expect(rel)
}

fn names(list: &serde_json::Value) -> BTreeSet<String> {
    list.as_array()
        .expect("a list of event names")
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

fn expected(source: &str) -> BTreeSet<String> {
    match source {
        "aws.ec2" => EC2_EVENTS.iter().map(|s| s.to_string()).collect(),
        "aws.iam" => IAM_EVENTS.iter().map(|s| s.to_string()).collect(),
        other => panic!("unexpected source {other}"),
    }
}

#[test]
fn every_rule_routes_exactly_the_events_the_daemon_reads() {
    for rel in [CENTRAL, FORWARDING] {
        let t = template(rel);
        let mut sources = BTreeSet::new();
        for (name, resource) in t["Resources"].as_object().unwrap() {
            if resource["Type"] != "AWS::Events::Rule" {
                continue;
            }
            let pattern = &resource["Properties"]["EventPattern"];
            let source = pattern["source"][0].as_str().unwrap().to_string();
            assert_eq!(
                pattern["detail-type"][0], "AWS API Call via CloudTrail",
                "{rel} {name}"
            );
            assert_eq!(
                names(&pattern["detail"]["eventName"]),
                expected(&source),
                "{rel} {name}: its event names vs src/events/mapping.rs"
            );
            sources.insert(source);
        }
        assert_eq!(
            sources,
            BTreeSet::from(["aws.ec2".to_string(), "aws.iam".to_string()]),
            "{rel}"
        );
        if rel == FORWARDING {
            assert_eq!(
                t["Resources"]["IamRule"]["Condition"], "IamEventsHere",
                "IAM's events are forwarded from us-east-1 only"
            );
            assert_eq!(
                t["Conditions"]["IamEventsHere"][0],
                serde_json::json!("AWS::Region")
            );
        }
    }

    for rel in [
        "deploy/events/terraform/main.tf",
        "deploy/events/terraform/forwarding/main.tf",
    ] {
        let text = read(rel);
        for (local, source) in [("ec2_events", "aws.ec2"), ("iam_events", "aws.iam")] {
            let start = text
                .find(&format!("{local} = ["))
                .unwrap_or_else(|| panic!("{rel}: no local {local}"));
            let end = start + text[start..].find(']').unwrap();
            let listed: BTreeSet<String> = text[start..end]
                .split('"')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect();
            assert_eq!(listed, expected(source), "{rel}: {local}");
        }
    }
}

#[test]
fn the_queue_has_a_dead_letter_queue_and_only_this_accounts_rules_may_send() {
    let t = template(CENTRAL);
    let queue = &t["Resources"]["Queue"]["Properties"];
    assert!(queue["RedrivePolicy"]["deadLetterTargetArn"].is_string());
    // Longer than a debounce plus a scan, so a message waiting for its scan stays hidden.
    assert!(queue["VisibilityTimeout"].as_u64().unwrap() >= 60);
    let statements = t["Resources"]["QueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap();
    assert_eq!(statements.len(), 1);
    let only = &statements[0];
    assert_eq!(only["Effect"], "Allow");
    assert_eq!(only["Action"], "sqs:SendMessage");
    assert_eq!(only["Principal"]["Service"], "events.amazonaws.com");
    assert_eq!(
        only["Condition"]["ArnEquals"]["aws:SourceArn"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "the EC2 and IAM rules, nothing else"
    );
    let main = read("deploy/events/terraform/main.tf");
    assert!(
        main.contains("redrive_policy"),
        "terraform: a dead-letter queue"
    );
    assert!(main.contains("variable = \"aws:SourceArn\""));
}

#[test]
fn the_daemon_calls_only_what_the_role_grants_on_the_queue() {
    let code = read("src/events/queue.rs");
    let calls: BTreeSet<&str> = [
        (".receive_message()", "sqs:ReceiveMessage"),
        (".delete_message_batch()", "sqs:DeleteMessage"),
        (".delete_message()", "sqs:DeleteMessage"),
        (".get_queue_attributes()", "sqs:GetQueueAttributes"),
        (".change_message_visibility", "sqs:ChangeMessageVisibility"),
        (".send_message", "sqs:SendMessage"),
        (".purge_queue", "sqs:PurgeQueue"),
    ]
    .into_iter()
    .filter(|(call, _)| code.contains(call))
    .map(|(_, action)| action)
    .collect();
    assert_eq!(
        calls,
        BTreeSet::from([
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
            "sqs:ReceiveMessage"
        ])
    );
    let role = read("deploy/iam/auditor-role.template.yaml");
    let granted = role
        .split("Sid: ReadEventsQueue")
        .nth(1)
        .expect("ReadEventsQueue");
    for action in &calls {
        assert!(granted[..400].contains(action), "the role grants {action}");
    }
}

fn tool(name: &str) -> Option<PathBuf> {
    let venv = repo().join(".venv/deploy-tools/bin").join(name);
    let found = venv.is_file().then_some(venv).or_else(|| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
    });
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
    if found.is_none() && ci && name == "cfn-lint" {
        panic!("cfn-lint is not installed, and CI is set: run scripts/setup-deploy-tools.sh");
    }
    found
}

fn lint(program: &Path, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    assert!(
        out.status.success(),
        "{} {args:?}:\n{}{}",
        program.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_templates_and_modules_pass_their_linters() {
    match tool("cfn-lint") {
        Some(cfn_lint) => lint(&cfn_lint, &[CENTRAL, FORWARDING]),
        None => eprintln!("NOTE: cfn-lint not found; skipped (scripts/setup-deploy-tools.sh)"),
    }
    // Terraform cannot be installed from this project's registries: where it exists, its
    // formatter checks the syntax.
    match tool("terraform") {
        Some(terraform) => lint(
            &terraform,
            &[
                "fmt",
                "-check",
                "-diff",
                "-recursive",
                "deploy/events/terraform",
            ],
        ),
        None => eprintln!(
            "NOTE: terraform not found; deploy/events/terraform is checked structurally only"
        ),
    }
}
