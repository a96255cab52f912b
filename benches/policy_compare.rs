//! Comparing one role's policies with its expectation: one role whose policy is about
//! 100 kB, built from the vendors' real policies (Teradata's AI Unlimited policies and the
//! union-ai-admin v0.13 template, in `rules/vendor/`) scaled up by repeating their statements
//! on numbered resources. The actual side is the same grants reshaped (one statement per
//! action, upper-cased, reversed) with a few actions dropped and one added, so `missing` and
//! `excess` both have something to find.
//!
//! Measured: `effective_grants` of both sides plus `missing_with_reasons` and `excess`, as
//! `rules::iam` does per role. Under `cargo test --all-targets` criterion runs it once.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::{json, Value};
use vpc_auditor::iam::grants::{effective_grants, excess, missing_with_reasons};
use vpc_auditor::iam::{read_template, PolicyDocument, TemplateContext};

const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";
const TARGET_BYTES: usize = 100_000;

fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every Allow statement of the vendors' policies, as IAM JSON.
fn vendor_statements() -> Vec<Value> {
    let mut statements = Vec::new();
    let teradata = root().join("rules/vendor/teradata");
    let mut files: Vec<_> = std::fs::read_dir(&teradata)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    for file in files {
        let text = std::fs::read_to_string(&file)
            .unwrap()
            .replace("<REGION>", REGION)
            .replace("<ACCOUNT_ID>", ACCOUNT);
        let doc: Value = serde_json::from_str(&text).unwrap();
        match &doc["Statement"] {
            Value::Array(list) => statements.extend(list.iter().cloned()),
            one => statements.push(one.clone()),
        }
    }
    let union = std::fs::read_to_string(
        root().join("rules/vendor/union-ai-admin-role.v0.13.template.yaml"),
    )
    .unwrap();
    let mut context = TemplateContext::new(REGION, ACCOUNT);
    context
        .parameters
        .insert("CrossAccountRoleName".into(), "union-ai-admin".into());
    context.unknown_parameters.insert("ExternalId".into());
    let template = read_template(&union, &context).expect("the union template reads");
    for policy in &template.roles[0].policies {
        // Back to IAM JSON through the parsed model: Action/Resource lists as written.
        for statement in &policy.document.statements {
            // `PatternSet` serialises as {"Only": [...]} or {"AllExcept": [...]}.
            let only = |set: Value| set.get("Only").cloned();
            let actions = only(serde_json::to_value(&statement.action).unwrap());
            let resources = match &statement.resource {
                Some(set) => only(serde_json::to_value(set).unwrap()),
                None => Some(json!("*")),
            };
            if let (Some(actions), Some(resources)) = (actions, resources) {
                statements
                    .push(json!({"Effect": "Allow", "Action": actions, "Resource": resources}));
            }
        }
    }
    statements
        .into_iter()
        .filter(|s| {
            s["Effect"] == "Allow" && s.get("Action").is_some() && s.get("Resource").is_some()
        })
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(list) => list
            .iter()
            .filter_map(|x| x.as_str().map(String::from))
            .collect(),
        _ => vec![],
    }
}

/// The vendor statements repeated on numbered resources until the policy is ~100 kB.
fn scaled_expected() -> Value {
    let base = vendor_statements();
    let mut statements = Vec::new();
    let mut copy = 0;
    while json!({"Version": "2012-10-17", "Statement": statements})
        .to_string()
        .len()
        < TARGET_BYTES
    {
        for s in &base {
            let resources: Vec<String> = strings(&s["Resource"])
                .into_iter()
                .map(|r| {
                    if r == "*" || copy == 0 {
                        r
                    } else {
                        format!("{r}-{copy}")
                    }
                })
                .collect();
            let mut s = s.clone();
            s["Resource"] = json!(resources);
            s.as_object_mut().unwrap().remove("Condition");
            statements.push(s);
        }
        copy += 1;
    }
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// The same grants, one statement per (action, resource list), upper-cased and reversed,
/// with every 50th action dropped and one action added.
fn drifted_actual(expected: &Value) -> Value {
    let mut statements = Vec::new();
    let mut n = 0;
    for s in expected["Statement"].as_array().unwrap() {
        for action in strings(&s["Action"]) {
            n += 1;
            if n % 50 == 0 {
                continue;
            }
            statements.push(json!({"Effect": "Allow", "Action": action.to_uppercase(), "Resource": s["Resource"]}));
        }
    }
    statements.reverse();
    statements.push(json!({"Effect": "Allow", "Action": "iam:*", "Resource": "*"}));
    json!({"Version": "2012-10-17", "Statement": statements})
}

fn compare(c: &mut Criterion) {
    let expected_json = scaled_expected();
    let actual_json = drifted_actual(&expected_json);
    let expected = vec![PolicyDocument::parse(&expected_json.to_string()).unwrap()];
    let actual = vec![PolicyDocument::parse(&actual_json.to_string()).unwrap()];
    let (want, have) = (effective_grants(&expected), effective_grants(&actual));
    let gaps = missing_with_reasons(&want, &have);
    let extra = excess(&want, &have);
    println!(
        "policy_compare: expected {} bytes, {} statements; actual {} bytes, {} statements -> {} missing, {} excess",
        expected_json.to_string().len(),
        expected[0].statements.len(),
        actual_json.to_string().len(),
        actual[0].statements.len(),
        gaps.len(),
        extra.len()
    );
    assert!(!gaps.is_empty() && !extra.is_empty(), "the drift is found");
    if std::env::var_os("POLICY_COMPARE_PHASES").is_some() {
        let t = std::time::Instant::now();
        let want = effective_grants(&expected);
        let have = effective_grants(&actual);
        let t1 = t.elapsed();
        let _ = missing_with_reasons(&want, &have);
        let t2 = t.elapsed();
        let _ = excess(&want, &have);
        let t3 = t.elapsed();
        println!(
            "phases: grants {:?}, missing {:?}, excess {:?}",
            t1,
            t2 - t1,
            t3 - t2
        );
    }
    let mut group = c.benchmark_group("policy_compare");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.throughput(Throughput::Elements(1));
    group.bench_function("one_role_100kB", |b| {
        b.iter(|| {
            let want = effective_grants(black_box(&expected));
            let have = effective_grants(black_box(&actual));
            black_box((missing_with_reasons(&want, &have), excess(&want, &have)))
        })
    });
    group.finish();
}

criterion_group!(benches, compare);
criterion_main!(benches);
