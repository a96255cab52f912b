//! A deliberately small, independent reader of the vendor's CloudFormation templates, for
//! tests: it turns a template's role into the IAM JSON a person would paste into the
//! console (`!Sub` and `!Ref` filled in), so tests can create real roles in moto and
//! compute expected differences without using the code under test.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_json::Value as Json;
use serde_yaml_ng::Value as Yaml;

pub const VERSIONS: [&str; 7] = ["v0.7", "v0.8", "v0.9", "v0.10", "v0.11", "v0.12", "v0.13"];

/// A released union-ai-admin template: the current one the union-byoc pack ships
/// (`rules/vendor/`), or an older one kept for tests (`tests/fixtures/union-ai-admin/`).
pub fn template_path(version: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let file = format!("union-ai-admin-role.{version}.template.yaml");
    let shipped = root.join("rules/vendor").join(&file);
    if shipped.is_file() {
        shipped
    } else {
        root.join("tests/fixtures/union-ai-admin").join(file)
    }
}

/// The role's trust policy and its policies, as IAM JSON.
pub struct RoleJson {
    pub trust: Json,
    pub policies: Vec<Json>,
}

pub fn union_role(
    version: &str,
    account: &str,
    region: &str,
    params: &BTreeMap<&str, &str>,
) -> RoleJson {
    let text = std::fs::read_to_string(template_path(version)).expect("template");
    let doc: Yaml = serde_yaml_ng::from_str(&text).expect("yaml");
    let resources = doc
        .get("Resources")
        .and_then(Yaml::as_mapping)
        .expect("Resources");
    let mut trust = None;
    let mut policies = Vec::new();
    for (_, resource) in resources {
        let kind = resource.get("Type").and_then(Yaml::as_str).unwrap_or("");
        let props = resource.get("Properties").expect("Properties");
        match kind {
            "AWS::IAM::Role" => {
                trust = Some(to_json(
                    props.get("AssumeRolePolicyDocument").unwrap(),
                    account,
                    region,
                    params,
                ))
            }
            "AWS::IAM::Policy" | "AWS::IAM::ManagedPolicy" => policies.push(to_json(
                props.get("PolicyDocument").unwrap(),
                account,
                region,
                params,
            )),
            _ => {}
        }
    }
    let mut trust = trust.expect("a role");
    // IAM's API wants a Version; the templates leave it to CloudFormation.
    trust
        .as_object_mut()
        .expect("object")
        .entry("Version")
        .or_insert(Json::String("2012-10-17".into()));
    RoleJson { trust, policies }
}

fn substitute(s: &str, account: &str, region: &str, params: &BTreeMap<&str, &str>) -> String {
    let mut out = s
        .replace("${AWS::Region}", region)
        .replace("${AWS::AccountId}", account)
        .replace("${AWS::Partition}", "aws");
    for (k, v) in params {
        out = out.replace(&format!("${{{k}}}"), v);
    }
    out
}

fn to_json(value: &Yaml, account: &str, region: &str, params: &BTreeMap<&str, &str>) -> Json {
    match value {
        Yaml::Null => Json::Null,
        Yaml::Bool(b) => Json::Bool(*b),
        Yaml::Number(n) => Json::String(n.to_string()),
        Yaml::String(s) => Json::String(s.clone()),
        Yaml::Sequence(items) => Json::Array(
            items
                .iter()
                .map(|i| to_json(i, account, region, params))
                .collect(),
        ),
        Yaml::Mapping(map) => Json::Object(
            map.iter()
                .map(|(k, v)| {
                    (
                        k.as_str().expect("string key").to_string(),
                        to_json(v, account, region, params),
                    )
                })
                .collect(),
        ),
        Yaml::Tagged(tagged) => {
            let inner = tagged.value.as_str().expect("scalar tag value");
            match tagged.tag.to_string().as_str() {
                "!Sub" => Json::String(substitute(inner, account, region, params)),
                "!Ref" => Json::String(
                    params
                        .get(inner)
                        .unwrap_or_else(|| panic!("no parameter {inner}"))
                        .to_string(),
                ),
                other => panic!("tag {other} not expected in a policy"),
            }
        }
    }
}

fn strings(v: &Json) -> Vec<String> {
    match v {
        Json::String(s) => vec![s.clone()],
        Json::Array(items) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_string))
            .collect(),
        _ => vec![],
    }
}

/// The (lower-cased action, resource) pairs the Allow statements of `policies` grant.
pub fn allow_pairs(policies: &[Json]) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for policy in policies {
        let statements = match &policy["Statement"] {
            Json::Array(s) => s.clone(),
            other => vec![other.clone()],
        };
        for statement in statements {
            assert_eq!(statement["Effect"], "Allow", "these templates only allow");
            for action in strings(&statement["Action"]) {
                for resource in strings(&statement["Resource"]) {
                    out.insert((action.to_lowercase(), resource));
                }
            }
        }
    }
    out
}

/// `*`/`?` glob match, for the test's own notion of a wildcard grant covering another.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}
