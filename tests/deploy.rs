//! The deployment artefacts under deploy/: what an SRE applies as it is.
//!
//! - The IAM role (CloudFormation and Terraform) grants exactly the AWS calls the collector
//!   makes, read from src/collect/, plus sts:AssumeRole on named roles: no wildcard action,
//!   no write action. The CloudFormation template is rendered by a small evaluator of its
//!   intrinsics for every trust mode, so its trust policies are checked as IAM will see them.
//! - Kubernetes (kustomize), ECS and the Dockerfile are checked for structure: security
//!   settings, probes, names that must agree across files, copies that must equal their
//!   originals. The configs are loaded by the real binary from the file layouts the image and
//!   the pod will have.
//! - Linters run where installed (scripts/setup-deploy-tools.sh installs them): hadolint,
//!   cfn-lint, kubectl kustomize + kubernetes-validate, promtool, botocore's ECS API model,
//!   and `terraform fmt` (Terraform is not installable from this project's registries, so
//!   only its formatting is linted and the .tf files are otherwise checked structurally).
//!   A missing linter skips its check with a note, except when `CI` is set: then it fails.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde::Deserialize;
use serde_json::{json, Value as Json};
use serde_yaml_ng::Value as Yaml;

// ---------------------------------------------------------------------------------------
// Support
// ---------------------------------------------------------------------------------------

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    let path = repo().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn yaml(rel: &str) -> Yaml {
    serde_yaml_ng::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// A YAML file without custom tags, as JSON (for `pointer`).
fn yaml_json(rel: &str) -> Json {
    serde_yaml_ng::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn yaml_docs(text: &str) -> Vec<Json> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|doc| Json::deserialize(doc).expect("a YAML document"))
        .filter(|doc| !doc.is_null())
        .collect()
}

/// The value at a JSON pointer, or a panic naming what is missing.
fn at<'a>(value: &'a Json, pointer: &str, what: &str) -> &'a Json {
    value
        .pointer(pointer)
        .unwrap_or_else(|| panic!("{what}: no {pointer}"))
}

fn str_at<'a>(value: &'a Json, pointer: &str, what: &str) -> &'a str {
    at(value, pointer, what)
        .as_str()
        .unwrap_or_else(|| panic!("{what}: {pointer} is not a string"))
}

fn strings(value: &Json) -> Vec<String> {
    match value {
        Json::String(s) => vec![s.clone()],
        Json::Array(items) => items
            .iter()
            .map(|i| i.as_str().expect("a string").to_string())
            .collect(),
        other => panic!("expected a string or a list of strings, found {other}"),
    }
}

fn crate_version() -> String {
    let manifest = read("Cargo.toml");
    manifest
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|rest| rest.strip_suffix('"'))
        .expect("Cargo.toml has a version")
        .to_string()
}

/// Every file below `dir`, as paths relative to it with `/` separators, sorted.
fn tree(dir: &Path) -> BTreeSet<String> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                let rel = path.strip_prefix(base).expect("below base");
                out.insert(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(dir, dir, &mut out);
    out
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// A linter: from .venv/deploy-tools (scripts/setup-deploy-tools.sh), else from PATH. When
/// it is missing the check is skipped with a note, unless `CI` is set: then the test fails.
fn linter(name: &str) -> Option<PathBuf> {
    let venv = repo().join(".venv/deploy-tools/bin").join(name);
    let found = if venv.is_file() {
        Some(venv)
    } else {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|p| p.is_file())
        })
    };
    match found {
        Some(path) => Some(path),
        None if ci() => panic!(
            "{name} is not installed, and CI is set, so this check may not be skipped: \
             run scripts/setup-deploy-tools.sh"
        ),
        None => {
            eprintln!(
                "NOTE: {name} not found; its check is skipped. Run scripts/setup-deploy-tools.sh \
                 to enable it (with CI set, a missing tool fails the test)."
            );
            None
        }
    }
}

fn run(program: &Path, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()))
}

fn clip(text: &[u8]) -> String {
    let text = String::from_utf8_lossy(text);
    const MAX: usize = 6000;
    if text.len() > MAX {
        let mut end = MAX;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}\n... ({} more bytes)", &text[..end], text.len() - end)
    } else {
        text.into_owned()
    }
}

/// Runs a linter and fails with its output unless it exits 0.
fn lint(program: &Path, args: &[&str]) -> Output {
    let out = run(program, args);
    assert!(
        out.status.success(),
        "{} {} failed ({}):\n{}{}",
        program.display(),
        args.join(" "),
        out.status,
        clip(&out.stdout),
        clip(&out.stderr)
    );
    out
}

// ---------------------------------------------------------------------------------------
// The AWS calls the collector makes
// ---------------------------------------------------------------------------------------

/// src/collect/*.rs without their test modules: (file stem, code).
fn collector_code() -> Vec<(String, String)> {
    let dir = repo().join("src/collect");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("src/collect")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).expect("source");
            let code = match text.find("#[cfg(test)]") {
                Some(i) => text[..i].to_string(),
                None => text,
            };
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            (stem, code)
        })
        .collect()
}

/// String literals of the form `service:Operation`, e.g. "ec2:DescribeSubnets": the names
/// the collector gives `CollectError::aws` and its `const OP`s.
fn operation_literals(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(start) = rest.find('"') {
        let after = &rest[start + 1..];
        let mut end = None;
        let mut escaped = false;
        for (i, c) in after.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => {
                    end = Some(i);
                    break;
                }
                _ => escaped = false,
            }
        }
        let Some(end) = end else { break };
        let literal = &after[..end];
        if let Some((service, op)) = literal.split_once(':') {
            let service_ok = !service.is_empty()
                && service
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
            let op_ok = op.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                && op.chars().all(|c| c.is_ascii_alphanumeric());
            if service_ok && op_ok {
                out.insert(literal.to_string());
            }
        }
        rest = &after[end + 1..];
    }
    out
}

/// SDK operation calls, as PascalCase operation names: fluent builders such as
/// `.describe_subnets()` (they take no arguments), and the builder named as the second
/// argument of the collector's paging macro, `all_items!(client, describe_subnets, ...)`.
fn sdk_calls(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let fluent = code.match_indices('.').map(|(i, _)| (i + 1, "()"));
    let paged = code.match_indices("all_items!(").filter_map(|(i, m)| {
        let first_comma = code[i + m.len()..].find(',')?;
        let start = i + m.len() + first_comma + 1;
        let skipped = code[start..].len() - code[start..].trim_start().len();
        Some((start + skipped, ","))
    });
    for (start, follows) in fluent.chain(paged) {
        let ident: String = code[start..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        let call = code[start + ident.len()..].starts_with(follows);
        let verb = ["describe_", "get_", "list_"]
            .iter()
            .any(|p| ident.starts_with(p));
        if call && verb {
            let pascal: String = ident
                .split('_')
                .map(|w| {
                    let mut c = w.chars();
                    c.next()
                        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                        .unwrap_or_default()
                })
                .collect();
            out.insert(pascal);
        }
    }
    out
}

/// Every `service:Operation` the collector calls, checked against its SDK calls.
fn collector_operations() -> BTreeSet<String> {
    let code = collector_code();
    let named: BTreeSet<String> = code
        .iter()
        .flat_map(|(_, c)| operation_literals(c))
        .collect();
    let called: BTreeSet<String> = code.iter().flat_map(|(_, c)| sdk_calls(c)).collect();
    // IAM action names are case-insensitive, and snake_case SDK builders lose an acronym's
    // case (`list_open_id_connect_providers` for `ListOpenIDConnectProviders`).
    let named_ops: BTreeSet<String> = named
        .iter()
        .map(|n| n.split_once(':').unwrap().1.to_lowercase())
        .collect();
    let called: BTreeSet<String> = called.iter().map(|c| c.to_lowercase()).collect();
    assert_eq!(
        named_ops, called,
        "src/collect/: the operation names given to CollectError (left) and the SDK calls made \
         (right) differ; every SDK call needs its \"service:Operation\" name"
    );
    assert!(
        named.len() >= 10,
        "the collector should make at least the ten documented calls, found {named:?}"
    );
    named
}

/// Operations that need no IAM permission: AWS documents that no permission is required to
/// call GetCallerIdentity (and an explicit Deny cannot block it).
const NEEDS_NO_PERMISSION: &[&str] = &["sts:GetCallerIdentity"];

/// The permissions the auditor's role must grant.
fn required_permissions() -> BTreeSet<String> {
    collector_operations()
        .into_iter()
        .filter(|op| !NEEDS_NO_PERMISSION.contains(&op.as_str()))
        .collect()
}

/// What `events:` needs on its queue (src/events/queue.rs: ReceiveMessage, DeleteMessageBatch,
/// whose permission is sqs:DeleteMessage, and GetQueueAttributes), granted on that queue only.
const EVENTS_QUEUE_ACTIONS: [&str; 3] = [
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:ReceiveMessage",
];

fn is_read_action(action: &str) -> bool {
    action.split_once(':').is_some_and(|(_, op)| {
        ["Describe", "Get", "List"]
            .iter()
            .any(|verb| op.starts_with(verb))
    })
}

/// Checks a permission policy: Allow only, no NotAction/NotResource, no wildcard action, only
/// read actions on "*", sts:AssumeRole only on named roles. Returns the granted actions and
/// the resources sts:AssumeRole is granted on.
fn check_permission_policy(doc: &Json, what: &str) -> (BTreeSet<String>, Vec<String>) {
    let mut actions = BTreeSet::new();
    let mut assumable = Vec::new();
    for statement in at(doc, "/Statement", what)
        .as_array()
        .expect("Statement list")
    {
        let sid = statement["Sid"].as_str().unwrap_or("?");
        assert_eq!(statement["Effect"], "Allow", "{what}: {sid}: Effect");
        for key in ["NotAction", "NotResource", "NotPrincipal"] {
            assert!(
                statement.get(key).is_none(),
                "{what}: {sid}: {key} is not allowed"
            );
        }
        let stmt_actions = strings(&statement["Action"]);
        let resources = strings(&statement["Resource"]);
        for action in &stmt_actions {
            assert!(
                !action.contains('*'),
                "{what}: {sid}: wildcard action {action}"
            );
            if EVENTS_QUEUE_ACTIONS.contains(&action.as_str()) {
                assert!(
                    resources.iter().all(|r| r.starts_with("arn:aws:sqs:")),
                    "{what}: {sid}: {action} must name the events queue, not {resources:?}"
                );
                continue;
            }
            assert!(
                is_read_action(action) || action == "sts:AssumeRole",
                "{what}: {sid}: {action} is not a read (Describe/Get/List) action"
            );
            if action == "sts:AssumeRole" {
                assert!(
                    resources.iter().all(|r| r != "*" && r.starts_with("arn:")),
                    "{what}: {sid}: sts:AssumeRole must name roles, not {resources:?}"
                );
                assumable.extend(resources.iter().cloned());
            }
        }
        if resources.iter().any(|r| r == "*") {
            assert!(
                stmt_actions.iter().all(|a| is_read_action(a)),
                "{what}: {sid}: only read actions may have Resource \"*\""
            );
        }
        actions.extend(stmt_actions);
    }
    (actions, assumable)
}

#[test]
fn collector_operation_names_match_its_sdk_calls() {
    let ops = collector_operations();
    for expected in [
        "ec2:DescribeSubnets",
        "iam:GetAccountAuthorizationDetails",
        "sts:GetCallerIdentity",
    ] {
        assert!(ops.contains(expected), "{expected} not found in {ops:?}");
    }
    // The extractors themselves, on code shaped like the collector's.
    let code = r#"
        const OP: &str = "ec2:DescribeVpcs";
        let items = all_items!(client.describe_vpcs(), OP)?;
        let out = client
            .describe_vpc_attribute()
            .vpc_id(id);
        counts.get(&key); x.get_or_insert_with(|| 1); // not SDK calls
        let msg = "see: Docs"; // not an operation
    "#;
    assert_eq!(
        operation_literals(code),
        BTreeSet::from(["ec2:DescribeVpcs".to_string()])
    );
    assert_eq!(
        sdk_calls(code),
        BTreeSet::from([
            "DescribeVpcs".to_string(),
            "DescribeVpcAttribute".to_string()
        ])
    );
}

// ---------------------------------------------------------------------------------------
// CloudFormation: a small evaluator of the intrinsics the role template uses
// ---------------------------------------------------------------------------------------

const ROLE_TEMPLATE: &str = "deploy/iam/auditor-role.template.yaml";
const ACCOUNT: &str = "123456789012";
const ISSUER: &str = "oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE";

struct Cfn {
    template: Yaml,
    params: BTreeMap<String, Yaml>,
    conditions: BTreeMap<String, bool>,
}

fn ystr(s: &str) -> Yaml {
    Yaml::String(s.to_string())
}

fn as_str(v: &Yaml) -> String {
    match v {
        Yaml::String(s) => s.clone(),
        Yaml::Number(n) => n.to_string(),
        Yaml::Bool(b) => b.to_string(),
        other => panic!("expected a string, found {other:?}"),
    }
}

fn field<'a>(v: &'a Yaml, key: &str) -> Option<&'a Yaml> {
    v.as_mapping().and_then(|m| m.get(ystr(key)))
}

impl Cfn {
    /// The template with parameters set (others take their Default); Err when a parameter is
    /// not among its AllowedValues or a rule's assertion fails, as CloudFormation would refuse.
    fn render(overrides: &[(&str, &str)]) -> Result<Yaml, String> {
        let template = yaml(ROLE_TEMPLATE);
        let mut params = BTreeMap::new();
        let declared = field(&template, "Parameters").expect("Parameters");
        for (name, decl) in declared.as_mapping().unwrap() {
            let name = as_str(name);
            let value = overrides
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
                .or_else(|| field(decl, "Default").map(as_str))
                .ok_or_else(|| format!("parameter {name} has no value"))?;
            if let Some(allowed) = field(decl, "AllowedValues").and_then(Yaml::as_sequence) {
                if !allowed.iter().any(|a| as_str(a) == value) {
                    return Err(format!("{name}: {value} is not allowed"));
                }
            }
            let ty = field(decl, "Type").map(as_str).unwrap_or_default();
            let value = if ty == "CommaDelimitedList" {
                Yaml::Sequence(value.split(',').map(|s| ystr(s.trim())).collect())
            } else {
                ystr(&value)
            };
            params.insert(name, value);
        }
        for (name, _) in overrides {
            assert!(params.contains_key(*name), "no parameter {name}");
        }
        let mut cfn = Cfn {
            template: template.clone(),
            params,
            conditions: BTreeMap::new(),
        };
        if let Some(conditions) = field(&template, "Conditions") {
            for (name, expr) in conditions.as_mapping().unwrap() {
                let value = cfn.bool(expr);
                cfn.conditions.insert(as_str(name), value);
            }
        }
        if let Some(rules) = field(&template, "Rules") {
            for (name, rule) in rules.as_mapping().unwrap() {
                let applies = field(rule, "RuleCondition").is_none_or(|c| cfn.bool(c));
                for assertion in field(rule, "Assertions")
                    .and_then(Yaml::as_sequence)
                    .unwrap()
                {
                    if applies && !cfn.bool(field(assertion, "Assert").unwrap()) {
                        return Err(format!(
                            "rule {}: {}",
                            as_str(name),
                            as_str(field(assertion, "AssertDescription").unwrap())
                        ));
                    }
                }
            }
        }
        let resources = field(&template, "Resources").expect("Resources");
        Ok(cfn.eval(resources).expect("Resources"))
    }

    fn bool(&self, expr: &Yaml) -> bool {
        match self.eval(expr) {
            Some(Yaml::Bool(b)) => b,
            other => panic!("expected a condition, found {other:?}"),
        }
    }

    fn string(&self, expr: &Yaml) -> String {
        as_str(&self.eval(expr).expect("a value"))
    }

    /// Evaluates intrinsics; None is AWS::NoValue (the key or item disappears).
    fn eval(&self, v: &Yaml) -> Option<Yaml> {
        match v {
            Yaml::Tagged(tagged) => {
                let tag = tagged.tag.to_string();
                let name = tag.trim_start_matches('!');
                let name = if name == "Ref" || name == "Condition" {
                    name.to_string()
                } else {
                    format!("Fn::{name}")
                };
                self.intrinsic(&name, &tagged.value)
            }
            Yaml::Mapping(m) => {
                if m.len() == 1 {
                    let (k, arg) = m.iter().next().unwrap();
                    if let Yaml::String(k) = k {
                        if k == "Ref" || k.starts_with("Fn::") || k == "Condition" {
                            return self.intrinsic(k, arg);
                        }
                    }
                }
                let mut out = serde_yaml_ng::Mapping::new();
                for (k, v) in m {
                    if let Some(v) = self.eval(v) {
                        out.insert(k.clone(), v);
                    }
                }
                Some(Yaml::Mapping(out))
            }
            Yaml::Sequence(items) => Some(Yaml::Sequence(
                items.iter().filter_map(|i| self.eval(i)).collect(),
            )),
            other => Some(other.clone()),
        }
    }

    fn reference(&self, name: &str) -> Option<Yaml> {
        match name {
            "AWS::NoValue" => None,
            "AWS::AccountId" => Some(ystr(ACCOUNT)),
            "AWS::Partition" => Some(ystr("aws")),
            "AWS::Region" => Some(ystr("us-east-1")),
            _ => match self.params.get(name) {
                Some(v) => Some(v.clone()),
                None => {
                    let resources = field(&self.template, "Resources").unwrap();
                    assert!(field(resources, name).is_some(), "!Ref to unknown {name}");
                    Some(ystr(&format!("<{name}>")))
                }
            },
        }
    }

    fn sub(&self, text: &str, vars: &BTreeMap<String, String>) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find('}').expect("closing }") + start;
            let name = &rest[start + 2..end];
            let value = match vars.get(name) {
                Some(v) => v.clone(),
                None => as_str(
                    &self
                        .reference(name)
                        .unwrap_or_else(|| panic!("${{{name}}} is AWS::NoValue")),
                ),
            };
            out.push_str(&value);
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    }

    fn intrinsic(&self, name: &str, arg: &Yaml) -> Option<Yaml> {
        let args = || {
            arg.as_sequence()
                .unwrap_or_else(|| panic!("{name}: expected a list"))
        };
        match name {
            "Ref" => self.reference(&as_str(arg)),
            "Condition" => Some(Yaml::Bool(self.conditions[&as_str(arg)])),
            "Fn::Sub" => match arg {
                Yaml::String(text) => Some(ystr(&self.sub(text, &BTreeMap::new()))),
                Yaml::Sequence(items) => {
                    let vars = items[1]
                        .as_mapping()
                        .unwrap()
                        .iter()
                        .map(|(k, v)| (as_str(k), self.string(v)))
                        .collect();
                    Some(ystr(&self.sub(&as_str(&items[0]), &vars)))
                }
                other => panic!("Fn::Sub: {other:?}"),
            },
            "Fn::If" => {
                let a = args();
                let cond = self.conditions[&as_str(&a[0])];
                self.eval(if cond { &a[1] } else { &a[2] })
            }
            "Fn::Join" => {
                let a = args();
                let items = self.eval(&a[1]).unwrap();
                let parts: Vec<String> = items.as_sequence().unwrap().iter().map(as_str).collect();
                Some(ystr(&parts.join(&as_str(&a[0]))))
            }
            "Fn::Equals" => {
                let a = args();
                Some(Yaml::Bool(self.eval(&a[0]) == self.eval(&a[1])))
            }
            "Fn::Not" => Some(Yaml::Bool(!self.bool(&args()[0]))),
            "Fn::Or" => Some(Yaml::Bool(args().iter().any(|c| self.bool(c)))),
            "Fn::And" => Some(Yaml::Bool(args().iter().all(|c| self.bool(c)))),
            "Fn::Contains" => {
                let a = args();
                let list = self.eval(&a[0]).unwrap();
                let item = self.eval(&a[1]).unwrap();
                Some(Yaml::Bool(list.as_sequence().unwrap().contains(&item)))
            }
            "Fn::GetAtt" => Some(ystr(&format!("<{}>", as_str(arg)))),
            other => panic!("the test's CloudFormation evaluator does not know {other}"),
        }
    }
}

fn role_properties(resources: &Yaml) -> Json {
    let role = resources
        .as_mapping()
        .unwrap()
        .values()
        .find(|r| field(r, "Type").map(as_str).as_deref() == Some("AWS::IAM::Role"))
        .expect("an AWS::IAM::Role");
    serde_json::to_value(field(role, "Properties").unwrap()).expect("JSON")
}

/// The rendered role's trust policy (a JSON string in the template) and its policies.
fn cfn_role(overrides: &[(&str, &str)]) -> (Json, Vec<Json>) {
    let resources = Cfn::render(overrides).unwrap_or_else(|e| panic!("{overrides:?}: {e}"));
    let props = role_properties(&resources);
    let trust = match &props["AssumeRolePolicyDocument"] {
        Json::String(text) => serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("{overrides:?}: the trust policy is not JSON: {e}\n{text}")),
        doc => doc.clone(),
    };
    let policies = props["Policies"]
        .as_array()
        .expect("Policies")
        .iter()
        .map(|p| p["PolicyDocument"].clone())
        .collect();
    (trust, policies)
}

#[test]
fn cloudformation_role_grants_exactly_the_collector_calls() {
    let required = required_permissions();
    let irsa = [
        ("OidcIssuer", ISSUER),
        ("DiscoverOrganizationAccounts", "true"),
    ];
    let (_, policies) = cfn_role(&irsa);
    assert_eq!(policies.len(), 1, "one inline policy");
    let (actions, assumable) = check_permission_policy(&policies[0], ROLE_TEMPLATE);
    assert_eq!(
        actions, required,
        "{ROLE_TEMPLATE}: granted (left) vs collector calls (right)"
    );
    // Listing the Organization is granted only when asked for.
    let (_, policies) = cfn_role(&[("OidcIssuer", ISSUER)]);
    let (actions, _) = check_permission_policy(&policies[0], ROLE_TEMPLATE);
    let mut without_listing = required.clone();
    without_listing.remove("organizations:ListAccounts");
    assert_eq!(actions, without_listing);
    assert!(
        assumable.is_empty(),
        "no sts:AssumeRole unless AssumableRoleArns is set"
    );

    let member = "arn:aws:iam::*:role/vpc-auditor-member";
    let (_, policies) = cfn_role(&[("OidcIssuer", ISSUER), ("AssumableRoleArns", member)]);
    let (actions, assumable) = check_permission_policy(&policies[0], ROLE_TEMPLATE);
    let mut expected = without_listing.clone();
    expected.insert("sts:AssumeRole".into());
    assert_eq!(actions, expected);
    assert_eq!(assumable, [member]);

    // The events queue: the three SQS actions, on that queue only.
    let queue = "arn:aws:sqs:us-east-1:123456789012:vpc-auditor-events";
    let (_, policies) = cfn_role(&[("OidcIssuer", ISSUER), ("EventsQueueArn", queue)]);
    let (actions, _) = check_permission_policy(&policies[0], ROLE_TEMPLATE);
    let mut expected = without_listing.clone();
    expected.extend(EVENTS_QUEUE_ACTIONS.iter().map(|a| a.to_string()));
    assert_eq!(actions, expected);
    let statement = policies[0]["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Sid"] == "ReadEventsQueue")
        .expect("ReadEventsQueue statement");
    assert_eq!(strings(&statement["Resource"]), [queue]);

    let refused = Cfn::render(&[("OidcIssuer", ISSUER), ("AssumableRoleArns", "*")]);
    assert!(
        refused.is_err(),
        "AssumableRoleArns \"*\" must be refused by a rule"
    );
}

#[test]
fn cloudformation_trust_policy_for_each_trusted_by_mode() {
    let ns_sa = "system:serviceaccount:vpc-auditor:vpc-auditor";
    let oidc_arn = format!("arn:aws:iam::{ACCOUNT}:oidc-provider/{ISSUER}");
    let eks = json!({
        "Sid": "EksServiceAccount", "Effect": "Allow",
        "Principal": {"Federated": oidc_arn},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {
            format!("{ISSUER}:sub"): ns_sa,
            format!("{ISSUER}:aud"): "sts.amazonaws.com"}}
    });
    let ecs = json!({
        "Sid": "EcsTasks", "Effect": "Allow",
        "Principal": {"Service": "ecs-tasks.amazonaws.com"},
        "Action": "sts:AssumeRole",
        "Condition": {
            "ArnLike": {"aws:SourceArn": format!("arn:aws:ecs:*:{ACCOUNT}:*")},
            "StringEquals": {"aws:SourceAccount": ACCOUNT}}
    });
    let central = "arn:aws:iam::210987654321:role/vpc-auditor";
    let auditor = json!({
        "Sid": "CentralAuditor", "Effect": "Allow",
        "Principal": {"AWS": central}, "Action": "sts:AssumeRole"
    });
    let cases: [(&[(&str, &str)], Json); 4] = [
        (&[("OidcIssuer", ISSUER)], json!([eks])),
        (&[("TrustedBy", "ecs-tasks")], json!([ecs])),
        (
            &[
                ("TrustedBy", "eks-irsa-and-ecs-tasks"),
                ("OidcIssuer", ISSUER),
            ],
            json!([eks, ecs]),
        ),
        (
            &[("TrustedBy", "auditor-role"), ("AuditorRoleArn", central)],
            json!([auditor]),
        ),
    ];
    for (params, statements) in cases {
        let (trust, _) = cfn_role(params);
        assert_eq!(trust["Version"], "2012-10-17");
        assert_eq!(
            trust["Statement"], statements,
            "trust policy for {params:?}"
        );
    }
    for bad in [
        &[][..],                                        // eks-irsa without an issuer
        &[("TrustedBy", "eks-irsa-and-ecs-tasks")][..], // likewise
        &[("TrustedBy", "auditor-role")][..],           // without the central role
        &[("TrustedBy", "anyone")][..],
    ] {
        assert!(Cfn::render(bad).is_err(), "{bad:?} must be refused");
    }
}

// ---------------------------------------------------------------------------------------
// Terraform: structural checks (terraform validate needs the AWS provider, which cannot be
// downloaded here)
// ---------------------------------------------------------------------------------------

const TF: &str = "deploy/iam/terraform";

/// The byte span of the body of the first block that starts with `header` (up to its `{`),
/// braces matched outside string literals.
fn hcl_block_span(text: &str, header: &str) -> Option<(usize, usize)> {
    let start = text.find(header)?;
    let open = start + text[start..].find('{')?;
    let mut depth = 0;
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in text[open..].char_indices() {
        if in_string {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => in_string = false,
                _ => escaped = false,
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some((open + 1, open + i));
                }
            }
            _ => {}
        }
    }
    None
}

fn hcl_block<'a>(text: &'a str, header: &str) -> &'a str {
    let (start, end) = hcl_block_span(text, header).unwrap_or_else(|| panic!("no block {header}"));
    &text[start..end]
}

/// The blocks in a body that open with `statement {` or `dynamic "statement" {`, in order.
fn hcl_statements(body: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        let rest = &body[offset..];
        let next = ["dynamic \"statement\" {", "statement {"]
            .iter()
            .filter_map(|h| rest.find(h).map(|i| (i, *h)))
            .min();
        let Some((i, header)) = next else { break };
        let (start, end) = hcl_block_span(&rest[i..], header).expect("a closed block");
        out.push(&rest[i + start..i + end]);
        offset += i + end + 1;
    }
    out
}

/// The value of the first `name = ...` in a body: the rest of its line, or a whole
/// multi-line list.
fn hcl_attr<'a>(body: &'a str, name: &str) -> Option<&'a str> {
    let mut offset = 0;
    for line in body.split_inclusive('\n') {
        if let Some((key, value)) = line.split_once('=') {
            if key.trim() == name {
                let value_start = offset + key.len() + 1;
                let value = value.trim();
                if value.starts_with('[') && !value.ends_with(']') {
                    let end = value_start + body[value_start..].find(']')? + 1;
                    return Some(body[value_start..end].trim());
                }
                return Some(value);
            }
        }
        offset += line.len();
    }
    None
}

/// Whitespace runs collapsed to one space, so that checks do not depend on alignment.
fn squash(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn hcl_strings(list: &str) -> Vec<String> {
    list.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

fn tf_variable_default(variables: &str, name: &str) -> Option<String> {
    let body = hcl_block(variables, &format!("variable \"{name}\" {{"));
    hcl_attr(body, "default").map(|d| d.trim_matches('"').to_string())
}

#[test]
fn terraform_role_grants_exactly_the_collector_calls() {
    let main = read(&format!("{TF}/main.tf"));
    let locals = hcl_block(&main, "locals {");
    let permissions = hcl_block(&main, "data \"aws_iam_policy_document\" \"permissions\" {");
    let mut actions = BTreeSet::new();
    let mut assume_role_blocks = 0;
    for statement in hcl_statements(permissions) {
        let expr = hcl_attr(statement, "actions").expect("actions");
        let list = match expr.strip_prefix("local.") {
            Some(name) => hcl_attr(locals, name).unwrap_or_else(|| panic!("no local {name}")),
            None => expr,
        };
        let stmt_actions = hcl_strings(list);
        let resources = hcl_attr(statement, "resources").expect("resources");
        assert_eq!(hcl_attr(statement, "effect"), Some("\"Allow\""));
        for action in &stmt_actions {
            assert!(!action.contains('*'), "{TF}: wildcard action {action}");
            if EVENTS_QUEUE_ACTIONS.contains(&action.as_str()) {
                assert_eq!(
                    resources, "[var.events_queue_arn]",
                    "{TF}: {action}'s resources"
                );
                assert!(
                    squash(statement)
                        .contains("for_each = var.events_queue_arn != \"\" ? [1] : []"),
                    "{TF}: the events queue statement exists only when a queue is named"
                );
            } else if action == "sts:AssumeRole" {
                assume_role_blocks += 1;
                assert_eq!(
                    resources, "var.assumable_role_arns",
                    "{TF}: sts:AssumeRole's resources"
                );
                assert!(
                    squash(statement).contains("for_each = length(var.assumable_role_arns) > 0"),
                    "{TF}: the sts:AssumeRole statement exists only when roles are named"
                );
            } else {
                assert!(
                    is_read_action(action),
                    "{TF}: {action} is not a read action"
                );
                assert_eq!(resources, "[\"*\"]", "{TF}: read actions' resources");
            }
        }
        actions.extend(stmt_actions);
    }
    assert_eq!(assume_role_blocks, 1, "{TF}: one sts:AssumeRole statement");
    let mut expected = required_permissions();
    expected.insert("sts:AssumeRole".into());
    expected.extend(EVENTS_QUEUE_ACTIONS.iter().map(|a| a.to_string()));
    assert_eq!(
        actions, expected,
        "{TF}: granted (left) vs collector calls + sts:AssumeRole + the events queue's (right)"
    );

    let variables = read(&format!("{TF}/variables.tf"));
    let validation = hcl_block(
        hcl_block(&variables, "variable \"assumable_role_arns\" {"),
        "validation {",
    );
    assert!(
        validation.contains("startswith(arn, \"arn:\")"),
        "assumable_role_arns must be ARNs"
    );
}

#[test]
fn terraform_trust_policy_matches_the_cloudformation_one() {
    let main = read(&format!("{TF}/main.tf"));
    let trust = hcl_block(&main, "data \"aws_iam_policy_document\" \"trust\" {");
    let statements = hcl_statements(trust);
    assert_eq!(
        statements.len(),
        3,
        "{TF}: EKS, ECS and central-auditor statements"
    );
    let [eks, ecs, auditor] = [statements[0], statements[1], statements[2]];
    let [eks, ecs, auditor] = [squash(eks), squash(ecs), squash(auditor)];
    for (block, condition, sid, action) in [
        (
            &eks,
            "for_each = local.trust_eks ? [1] : []",
            "EksServiceAccount",
            "sts:AssumeRoleWithWebIdentity",
        ),
        (
            &ecs,
            "for_each = local.trust_ecs ? [1] : []",
            "EcsTasks",
            "sts:AssumeRole",
        ),
        (
            &auditor,
            "for_each = local.trust_auditor_role ? [1] : []",
            "CentralAuditor",
            "sts:AssumeRole",
        ),
    ] {
        assert!(block.contains(condition), "{TF}: {sid} needs `{condition}`");
        assert!(
            block.contains(&format!("sid = \"{sid}\"")),
            "{TF}: sid {sid}"
        );
        assert!(
            block.contains(&format!("actions = [\"{action}\"]")),
            "{TF}: {sid} allows {action}"
        );
    }
    for needle in [
        "oidc-provider/${local.oidc_issuer}",
        "variable = \"${local.oidc_issuer}:sub\"",
        "values = [\"system:serviceaccount:${var.kubernetes_namespace}:${var.kubernetes_service_account}\"]",
        "variable = \"${local.oidc_issuer}:aud\"",
        "values = [\"sts.amazonaws.com\"]",
    ] {
        assert!(eks.contains(needle), "{TF}: the IRSA statement lacks {needle}");
    }
    for needle in [
        "ecs-tasks.amazonaws.com",
        "aws:SourceAccount",
        "aws:SourceArn",
    ] {
        assert!(
            ecs.contains(needle),
            "{TF}: the ECS statement lacks {needle}"
        );
    }
    assert!(auditor.contains("identifiers = [var.auditor_role_arn]"));
    assert!(main.contains("trimprefix(var.oidc_issuer, \"https://\")"));

    // The same choices and defaults as the CloudFormation template.
    let variables = read(&format!("{TF}/variables.tf"));
    let template = yaml_json_tagless(ROLE_TEMPLATE);
    let cfn_modes = strings(&template["Parameters"]["TrustedBy"]["AllowedValues"]);
    let validation = hcl_block(
        hcl_block(&variables, "variable \"trusted_by\" {"),
        "validation {",
    );
    assert_eq!(
        hcl_strings(hcl_attr(validation, "condition").unwrap()),
        cfn_modes
    );
    for (tf, cfn) in [
        ("role_name", "RoleName"),
        ("trusted_by", "TrustedBy"),
        ("kubernetes_namespace", "KubernetesNamespace"),
        ("kubernetes_service_account", "KubernetesServiceAccount"),
    ] {
        assert_eq!(
            tf_variable_default(&variables, tf).as_deref(),
            template["Parameters"][cfn]["Default"].as_str(),
            "default of {tf} vs {cfn}"
        );
    }
    let resource = squash(hcl_block(&main, "resource \"aws_iam_role\" \"auditor\" {"));
    for needle in [
        "!local.trust_eks || local.oidc_issuer != \"\"",
        "!local.trust_auditor_role || var.auditor_role_arn != \"\"",
    ] {
        assert!(resource.contains(needle), "{TF}: precondition {needle}");
    }
}

/// A CloudFormation template as JSON, with every custom tag dropped (its value kept).
fn yaml_json_tagless(rel: &str) -> Json {
    fn strip(v: Yaml) -> Yaml {
        match v {
            Yaml::Tagged(t) => strip(t.value),
            Yaml::Mapping(m) => Yaml::Mapping(m.into_iter().map(|(k, v)| (k, strip(v))).collect()),
            Yaml::Sequence(s) => Yaml::Sequence(s.into_iter().map(strip).collect()),
            other => other,
        }
    }
    serde_json::to_value(strip(yaml(rel))).expect("JSON")
}

#[test]
fn terraform_files_are_formatted() {
    // Terraform cannot be installed from this project's registries, so its absence never
    // fails the test; where a terraform binary exists, its formatter checks the syntax.
    let Some(terraform) = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("terraform"))
            .find(|p| p.is_file())
    }) else {
        eprintln!("NOTE: terraform not found; {TF} is checked structurally only");
        return;
    };
    for file in ["main.tf", "variables.tf", "outputs.tf", "versions.tf"] {
        assert!(repo().join(TF).join(file).is_file(), "{TF}/{file}");
    }
    lint(&terraform, &["fmt", "-check", "-diff", "-recursive", TF]);
}

// ---------------------------------------------------------------------------------------
// Names that must agree across the IAM role, Kubernetes and ECS
// ---------------------------------------------------------------------------------------

const BASE: &str = "deploy/kubernetes/base";
const PROMETHEUS: &str = "deploy/kubernetes/prometheus";
const OVERLAY: &str = "deploy/kubernetes/overlays/example";
const ECS: &str = "deploy/ecs/task-definition.json";

fn deployment() -> Json {
    yaml_json(&format!("{BASE}/deployment.yaml"))
}

fn container(deployment: &Json) -> &Json {
    let containers = at(deployment, "/spec/template/spec/containers", "deployment")
        .as_array()
        .unwrap();
    assert_eq!(containers.len(), 1, "one container");
    &containers[0]
}

fn ecs_container(task: &Json) -> &Json {
    let containers = task["containerDefinitions"]
        .as_array()
        .expect("containerDefinitions");
    assert_eq!(containers.len(), 1, "one container");
    &containers[0]
}

#[test]
fn iam_defaults_match_the_service_account_and_the_ecs_task_role() {
    let template = yaml_json_tagless(ROLE_TEMPLATE);
    let default = |p: &str| {
        template["Parameters"][p]["Default"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let kustomization = yaml_json(&format!("{BASE}/kustomization.yaml"));
    let sa = yaml_json(&format!("{BASE}/serviceaccount.yaml"));
    assert_eq!(kustomization["namespace"], default("KubernetesNamespace"));
    assert_eq!(sa["metadata"]["name"], default("KubernetesServiceAccount"));
    assert_eq!(
        deployment()["spec"]["template"]["spec"]["serviceAccountName"],
        sa["metadata"]["name"]
    );
    let arn = str_at(
        &sa,
        "/metadata/annotations/eks.amazonaws.com~1role-arn",
        "serviceaccount",
    );
    assert!(arn.starts_with("arn:aws:iam::"), "{arn}");
    assert!(
        arn.ends_with(&format!(":role/{}", default("RoleName"))),
        "{arn}"
    );

    let task: Json = serde_json::from_str(&read(ECS)).expect("task definition JSON");
    let task_role = str_at(&task, "/taskRoleArn", ECS);
    let execution_role = str_at(&task, "/executionRoleArn", ECS);
    assert!(
        task_role.ends_with(&format!(":role/{}", default("RoleName"))),
        "{task_role}"
    );
    assert_ne!(
        task_role, execution_role,
        "the task role and the execution role are separate"
    );
}

// ---------------------------------------------------------------------------------------
// Dockerfile
// ---------------------------------------------------------------------------------------

/// The Dockerfile's instructions: (KEYWORD, arguments), continuation lines joined.
fn dockerfile() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in read("deploy/Dockerfile").lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                let (kw, args) = current.split_once(' ').unwrap_or((&current, ""));
                out.push((kw.to_ascii_uppercase(), args.trim().to_string()));
                current.clear();
            }
        }
    }
    out
}

fn final_stage(instructions: &[(String, String)]) -> &[(String, String)] {
    let last_from = instructions
        .iter()
        .rposition(|(k, _)| k == "FROM")
        .expect("FROM");
    &instructions[last_from..]
}

/// COPY instructions without --from: (sources, destination).
fn context_copies(stage: &[(String, String)]) -> Vec<(Vec<String>, String)> {
    stage
        .iter()
        .filter(|(k, a)| k == "COPY" && !a.starts_with("--from"))
        .map(|(_, a)| {
            let mut parts: Vec<String> = a
                .split_whitespace()
                .filter(|p| !p.starts_with("--"))
                .map(str::to_string)
                .collect();
            let dest = parts.pop().expect("a destination");
            (parts, dest)
        })
        .collect()
}

#[test]
fn dockerfile_is_multi_stage_non_root_with_a_vector_entrypoint_and_no_healthcheck() {
    let instructions = dockerfile();
    let froms: Vec<_> = instructions.iter().filter(|(k, _)| k == "FROM").collect();
    assert!(froms.len() >= 2, "a builder stage and a runtime stage");
    assert!(
        instructions
            .iter()
            .any(|(k, a)| k == "RUN" && a.contains("cargo build --release --locked")),
        "the builder runs cargo build --release --locked"
    );
    assert!(
        !instructions.iter().any(|(k, _)| k == "HEALTHCHECK"),
        "no HEALTHCHECK: Kubernetes probes /healthz and /readyz, and the image has no shell"
    );
    let stage = final_stage(&instructions);
    let arg = |kw: &str| {
        stage
            .iter()
            .rev()
            .find(|(k, _)| k == kw)
            .map(|(_, a)| a.clone())
            .unwrap_or_else(|| panic!("the runtime stage has no {kw}"))
    };
    let user = arg("USER");
    let uid = user.split(':').next().unwrap();
    assert!(
        uid.parse::<u32>().is_ok_and(|u| u != 0),
        "USER must be a numeric non-root uid (runAsNonRoot can only verify numbers): {user}"
    );
    let entrypoint: Json =
        serde_json::from_str(&arg("ENTRYPOINT")).expect("vector-form ENTRYPOINT");
    assert_eq!(entrypoint, json!(["/usr/local/bin/vpc-auditor"]));
    let cmd: Json = serde_json::from_str(&arg("CMD")).expect("vector-form CMD");
    assert_eq!(cmd[0], "--config");
    assert_eq!(cmd[1], "/etc/vpc-auditor/config.yaml");
    assert!(strings(&cmd)
        .windows(2)
        .any(|w| w == ["--log-format", "json"]));
    assert_eq!(arg("EXPOSE"), "9917");
    assert!(
        stage.iter().any(|(k, a)| k == "COPY"
            && a.starts_with("--from=builder")
            && a.ends_with("/usr/local/bin/vpc-auditor")),
        "the binary comes from the builder stage"
    );
    let copies = context_copies(stage);
    assert!(copies.contains(&(vec!["rules/".into()], "/etc/vpc-auditor/rules/".into())));
    assert!(copies.contains(&(
        vec!["deploy/config.yaml".into()],
        "/etc/vpc-auditor/config.yaml".into()
    )));
}

/// Whether the allow-list ignore file (`*` then `!path` lines) lets `path` into the context.
fn admitted(ignore: &str, path: &str) -> bool {
    let rules: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(
        rules.first(),
        Some(&"*"),
        "the ignore file starts by excluding everything"
    );
    let path = path.trim_end_matches('/');
    rules.iter().skip(1).any(|rule| {
        let allowed = rule
            .strip_prefix('!')
            .unwrap_or_else(|| panic!("only !allow lines follow `*`: {rule}"))
            .trim_end_matches('/');
        path == allowed || path.starts_with(&format!("{allowed}/"))
    })
}

#[test]
fn build_context_holds_every_file_the_image_build_reads() {
    let ignore = read("deploy/Dockerfile.dockerignore");
    let instructions = dockerfile();
    let copies = context_copies(&instructions);
    let mut copied: Vec<String> = Vec::new();
    for (sources, _) in &copies {
        for source in sources {
            assert!(
                repo().join(source).exists(),
                "COPY {source}: no such file in the repository"
            );
            assert!(
                admitted(&ignore, source),
                "COPY {source}: excluded by Dockerfile.dockerignore"
            );
            copied.push(source.trim_end_matches('/').to_string());
        }
    }
    for excluded in ["target", ".venv", ".git", "tests/deploy.rs"] {
        assert!(
            !admitted(&ignore, excluded),
            "{excluded} must stay out of the build context"
        );
    }
    // Files the crate embeds at compile time must be in the builder's COPYs.
    let builder_end = instructions.iter().rposition(|(k, _)| k == "FROM").unwrap();
    let builder: Vec<String> = context_copies(&instructions[..builder_end])
        .into_iter()
        .flat_map(|(s, _)| s)
        .map(|s| s.trim_end_matches('/').to_string())
        .collect();
    let covered = |path: &str| {
        builder
            .iter()
            .any(|c| path == c || path.starts_with(&format!("{c}/")))
    };
    for needed in ["Cargo.toml", "Cargo.lock", "src/main.rs"] {
        assert!(covered(needed), "the builder stage does not copy {needed}");
    }
    assert!(
        !repo().join("build.rs").exists() || covered("build.rs"),
        "copy build.rs"
    );
    for file in tree(&repo().join("src")) {
        let text = read(&format!("src/{file}"));
        let text = &text[..text.find("#[cfg(test)]").unwrap_or(text.len())];
        let dir = Path::new("src").join(&file);
        let dir = dir.parent().unwrap();
        for macro_name in ["include_str!(\"", "include_bytes!(\""] {
            for (i, _) in text.match_indices(macro_name) {
                let rel = &text[i + macro_name.len()..];
                let rel = &rel[..rel.find('"').unwrap()];
                let mut path = dir.to_path_buf();
                for part in rel.split('/') {
                    match part {
                        ".." => {
                            path.pop();
                        }
                        p => path.push(p),
                    }
                }
                let path = path.to_string_lossy().replace('\\', "/");
                assert!(
                    covered(&path),
                    "src/{file} embeds {path}, which deploy/Dockerfile does not copy"
                );
            }
        }
    }
}

#[test]
fn hadolint_accepts_the_dockerfile() {
    if let Some(hadolint) = linter("hadolint") {
        lint(&hadolint, &["deploy/Dockerfile"]);
    }
}

// ---------------------------------------------------------------------------------------
// The configs, loaded by the real binary from the layouts the image and the pod have
// ---------------------------------------------------------------------------------------

fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_vpc-auditor")
}

/// A command line with every absolute path taken relative to `root`.
fn reroot(root: &Path, args: &[String]) -> Vec<String> {
    args.iter()
        .map(|a| match a.strip_prefix('/') {
            Some(rel) => root.join(rel).to_string_lossy().into_owned(),
            None => a.clone(),
        })
        .collect()
}

/// Audits the demo snapshot with the given command line, re-rooted under `root`: the config
/// (daemon keys included) and the rule packs it names must load.
fn audit_demo_with(root: &Path, args: &[String]) {
    let rerooted = reroot(root, args);
    let out = Command::new(binary())
        .args(&rerooted)
        .args(["--once", "--demo", "--format", "json"])
        .env_remove("UNION_EXTERNAL_ID")
        .env_remove("RUST_LOG")
        .output()
        .expect("run vpc-auditor");
    let code = out.status.code();
    assert!(
        matches!(code, Some(0) | Some(1)),
        "vpc-auditor {} --once --demo exited {code:?}:\n{}",
        rerooted.join(" "),
        clip(&out.stderr)
    );
    let report: Json = serde_json::from_slice(&out.stdout).expect("a JSON report");
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["pack"] == "union-byoc"),
        "the union-byoc pack was loaded"
    );
}

fn copy_file(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(from, to)
        .unwrap_or_else(|e| panic!("{} -> {}: {e}", from.display(), to.display()));
}

/// Lays out the runtime stage's files (its COPYs from the build context) under `root`, and
/// returns the image's CMD.
fn image_layout(root: &Path) -> Vec<String> {
    let instructions = dockerfile();
    let stage = final_stage(&instructions);
    for (sources, dest) in context_copies(stage) {
        for source in sources {
            let from = repo().join(&source);
            let to = root.join(dest.trim_start_matches('/'));
            if from.is_dir() {
                for file in tree(&from) {
                    copy_file(&from.join(&file), &to.join(&file));
                }
            } else {
                copy_file(&from, &to);
            }
        }
    }
    let cmd = stage.iter().rev().find(|(k, _)| k == "CMD").unwrap();
    strings(&serde_json::from_str(&cmd.1).unwrap())
}

#[test]
fn image_config_loads_from_the_image_layout() {
    let root = tempfile::tempdir().unwrap();
    let cmd = image_layout(root.path());
    audit_demo_with(root.path(), &cmd);
}

/// A GET on loopback: (status, body), or None when nothing answers yet.
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream =
        std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(1)).ok()?;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())?;
    Some((status, body))
}

/// Kills the daemon when the test ends, however it ends.
struct Daemon(std::process::Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `path` until it answers `want`, for up to 60 seconds.
fn wait_for(port: u16, path: &str, want: u16) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut last = None;
    while std::time::Instant::now() < deadline {
        last = http_get(port, path);
        if let Some((status, body)) = &last {
            if *status == want {
                return body.clone();
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    panic!("{path} did not answer {want} within 60 s; last answer: {last:?}")
}

#[test]
fn the_daemon_in_the_image_layout_answers_the_probes_and_the_scrape() {
    // The port: the config's listen address, the image's EXPOSE, the container port, the
    // Service and the ECS port mapping are one number.
    let config = yaml_json("deploy/config.yaml");
    let listen = config["listen"].as_str().expect("listen");
    let port: u16 = listen.rsplit_once(':').unwrap().1.parse().unwrap();
    assert!(
        listen.starts_with("0.0.0.0:"),
        "listen on every interface in a container: {listen}"
    );
    let instructions = dockerfile();
    let expose = &final_stage(&instructions)
        .iter()
        .find(|(k, _)| k == "EXPOSE")
        .unwrap()
        .1;
    assert_eq!(expose, &port.to_string());
    let d = deployment();
    let c = container(&d);
    assert_eq!(c["ports"][0]["containerPort"], port);
    let service = yaml_json(&format!("{BASE}/service.yaml"));
    assert_eq!(service["spec"]["ports"][0]["port"], port);
    let task: Json = serde_json::from_str(&read(ECS)).unwrap();
    assert_eq!(
        ecs_container(&task)["portMappings"][0]["containerPort"],
        port
    );

    // The real daemon, from the image's files, on a free loopback port (the demo snapshot
    // stands in for AWS): the probes' and the ServiceMonitor's paths answer as they must.
    let root = tempfile::tempdir().unwrap();
    let cmd = image_layout(root.path());
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let local_port = free.local_addr().unwrap().port();
    drop(free);
    let child = Command::new(binary())
        .args(reroot(root.path(), &cmd))
        .args(["--demo", "--listen", &format!("127.0.0.1:{local_port}")])
        .env_remove("UNION_EXTERNAL_ID")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the daemon");
    let _daemon = Daemon(child);
    let liveness = c["livenessProbe"]["httpGet"]["path"].as_str().unwrap();
    let readiness = c["readinessProbe"]["httpGet"]["path"].as_str().unwrap();
    wait_for(local_port, liveness, 200);
    wait_for(local_port, readiness, 200);
    let monitor = yaml_json(&format!("{PROMETHEUS}/servicemonitor.yaml"));
    let scrape = monitor["spec"]["endpoints"][0]["path"].as_str().unwrap();
    let metrics = wait_for(local_port, scrape, 200);
    assert!(
        metrics.contains("vpc_auditor_findings{"),
        "{scrape} serves the findings"
    );
}

/// The base's (or an overlay's) ConfigMap generators: name -> [(key, file)], files relative
/// to the repository.
fn generators(dir: &str) -> BTreeMap<String, Vec<(String, String)>> {
    let kustomization = yaml_json(&format!("{dir}/kustomization.yaml"));
    let mut out = BTreeMap::new();
    for generator in kustomization["configMapGenerator"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let name = generator["name"].as_str().unwrap().to_string();
        let files = strings(&generator["files"])
            .into_iter()
            .map(|entry| {
                let (key, file) = match entry.split_once('=') {
                    Some((k, f)) => (k.to_string(), f.to_string()),
                    None => (
                        Path::new(&entry)
                            .file_name()
                            .unwrap()
                            .to_string_lossy()
                            .into_owned(),
                        entry.clone(),
                    ),
                };
                (key, format!("{dir}/{file}"))
            })
            .collect();
        out.insert(name, files);
    }
    out
}

/// Lays out /etc/vpc-auditor as the pod sees it: the projected volume's ConfigMap sources
/// (all keys, or `items` mapped to their paths), from the generators' files.
fn pod_layout(root: &Path, generators: &BTreeMap<String, Vec<(String, String)>>) {
    let deployment = deployment();
    let container = container(&deployment);
    let mount = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"] == "/etc/vpc-auditor")
        .expect("a volume mounted at /etc/vpc-auditor");
    let volume = deployment["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mount["name"])
        .expect("the mounted volume");
    let dest = root.join("etc/vpc-auditor");
    for source in volume["projected"]["sources"]
        .as_array()
        .expect("a projected volume")
    {
        let name = source["configMap"]["name"]
            .as_str()
            .expect("a ConfigMap source");
        let files = &generators[name];
        match source["configMap"]["items"].as_array() {
            Some(items) => {
                for item in items {
                    let key = item["key"].as_str().unwrap();
                    let file = &files
                        .iter()
                        .find(|(k, _)| k == key)
                        .unwrap_or_else(|| panic!("{name} has no key {key}"))
                        .1;
                    copy_file(
                        &repo().join(file),
                        &dest.join(item["path"].as_str().unwrap()),
                    );
                }
            }
            None => {
                for (key, file) in files {
                    copy_file(&repo().join(file), &dest.join(key));
                }
            }
        }
    }
}

fn deployment_args() -> Vec<String> {
    strings(&container(&deployment())["args"])
}

#[test]
fn kubernetes_configs_load_from_the_pod_layout() {
    let base = generators(BASE);
    let root = tempfile::tempdir().unwrap();
    pod_layout(root.path(), &base);
    audit_demo_with(root.path(), &deployment_args());

    // The example overlay replaces the config; the rule packs stay the base's.
    let mut overlay = base.clone();
    for (name, files) in generators(OVERLAY) {
        overlay.insert(name, files);
    }
    let root = tempfile::tempdir().unwrap();
    pod_layout(root.path(), &overlay);
    audit_demo_with(root.path(), &deployment_args());
}

const SHARDED: &str = "deploy/kubernetes/overlays/sharded";

/// The sharded overlay's StatefulSet is the base Deployment's pod with the shard flags and
/// POD_NAME added, its replicas match --total-shards, its config loads in the pod layout
/// for every ordinal, and an ordinal past the last shard is refused.
#[test]
fn sharded_overlay_runs_the_deployments_pod_as_a_statefulset_of_shards() {
    let statefulset = yaml_json(&format!("{SHARDED}/statefulset.yaml"));
    let deployment = deployment();
    assert_eq!(statefulset["kind"], "StatefulSet");
    assert_eq!(
        statefulset["spec"]["selector"],
        deployment["spec"]["selector"]
    );
    let mut template = statefulset["spec"]["template"].clone();
    let container = &mut template["spec"]["containers"][0];
    let args = strings(&container["args"]);
    let shard_flags = &args[args.len() - 4..];
    assert_eq!(shard_flags[..3], ["--shard", "auto", "--total-shards"]);
    let total: u64 = shard_flags[3].parse().expect("--total-shards N");
    assert_eq!(
        statefulset["spec"]["replicas"].as_u64(),
        Some(total),
        "one replica per shard"
    );
    assert_eq!(args[..args.len() - 4], deployment_args()[..]);
    container["args"] = json!(args[..args.len() - 4]);
    let env = container["env"].as_array_mut().unwrap();
    assert_eq!(env[0]["name"], "POD_NAME");
    assert_eq!(
        env[0]["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.name"
    );
    env.remove(0);
    assert_eq!(
        template, deployment["spec"]["template"],
        "the StatefulSet's pod is the Deployment's, plus the shard flags and POD_NAME"
    );

    // Its config loads for every ordinal, from the pod layout.
    let mut layout = generators(BASE);
    for dir in [OVERLAY, SHARDED] {
        for (name, files) in generators(dir) {
            layout.insert(name, files);
        }
    }
    let root = tempfile::tempdir().unwrap();
    pod_layout(root.path(), &layout);
    let rerooted = reroot(root.path(), &args);
    for ordinal in 0..total {
        let out = Command::new(binary())
            .args(&rerooted)
            .args(["--once", "--demo", "--format", "json"])
            .env("POD_NAME", format!("vpc-auditor-{ordinal}"))
            .env_remove("UNION_EXTERNAL_ID")
            .output()
            .expect("run vpc-auditor");
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "ordinal {ordinal}: {}",
            clip(&out.stderr)
        );
    }
    let out = Command::new(binary())
        .args(&rerooted)
        .args(["--once", "--demo"])
        .env("POD_NAME", format!("vpc-auditor-{total}"))
        .output()
        .expect("run vpc-auditor");
    assert_eq!(
        out.status.code(),
        Some(2),
        "a pod past the last shard is refused"
    );
    assert!(
        clip(&out.stderr).contains("out of range"),
        "{}",
        clip(&out.stderr)
    );

    // Rendered: the StatefulSet replaces the Deployment and mounts the generated ConfigMaps.
    let Some(rendered) = kustomize(SHARDED) else {
        return;
    };
    let docs = yaml_docs(&rendered);
    let kinds: BTreeSet<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert!(
        kinds.contains("StatefulSet") && !kinds.contains("Deployment"),
        "{kinds:?}"
    );
    let sts = docs.iter().find(|d| d["kind"] == "StatefulSet").unwrap();
    assert_eq!(mounted_config_maps(sts), config_map_names(&docs));
    if let Some(validate) = linter("kubernetes-validate") {
        let dir = tempfile::tempdir().unwrap();
        kubernetes_validate(&validate, dir.path(), "sharded.yaml", &rendered);
    }
}

/// The names of the ConfigMaps among rendered manifests.
fn config_map_names(docs: &[Json]) -> BTreeSet<&str> {
    docs.iter()
        .filter(|d| d["kind"] == "ConfigMap")
        .map(|d| d["metadata"]["name"].as_str().unwrap())
        .collect()
}

/// The ConfigMaps a workload's pod mounts in its projected config volume.
fn mounted_config_maps(workload: &Json) -> BTreeSet<&str> {
    workload["spec"]["template"]["spec"]["volumes"][0]["projected"]["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["configMap"]["name"].as_str().unwrap())
        .collect()
}

/// kubernetes-validate, strict, on rendered manifests, for the oldest Kubernetes EKS still
/// supports (extended) and the newest schema shipped.
fn kubernetes_validate(validate: &Path, dir: &Path, name: &str, text: &str) {
    let file = dir.join(name);
    std::fs::write(&file, text).unwrap();
    for version in ["1.29.0", "1.37.0"] {
        lint(
            validate,
            &["--strict", "--quiet", "-k", version, file.to_str().unwrap()],
        );
    }
}

#[test]
fn kubernetes_and_ecs_run_the_image_command_line() {
    let instructions = dockerfile();
    let cmd = instructions.iter().rev().find(|(k, _)| k == "CMD").unwrap();
    let cmd = strings(&serde_json::from_str(&cmd.1).unwrap());
    let args = deployment_args();
    assert!(
        args.starts_with(&cmd),
        "the Deployment's args extend the image's CMD: {args:?}"
    );
    let task: Json = serde_json::from_str(&read(ECS)).unwrap();
    assert_eq!(
        strings(&ecs_container(&task)["command"]),
        args,
        "ECS runs what Kubernetes runs"
    );
}

// ---------------------------------------------------------------------------------------
// Kubernetes
// ---------------------------------------------------------------------------------------

const LABELS: [(&str, &str); 5] = [
    ("app.kubernetes.io/name", "vpc-auditor"),
    ("app.kubernetes.io/instance", "vpc-auditor"),
    ("app.kubernetes.io/component", "auditor"),
    ("app.kubernetes.io/part-of", "vpc-auditor"),
    ("app.kubernetes.io/managed-by", "kustomize"),
];

fn manifests() -> Vec<(String, Json)> {
    let mut out = Vec::new();
    for dir in [BASE, PROMETHEUS, OVERLAY] {
        let kustomization = yaml_json(&format!("{dir}/kustomization.yaml"));
        for resource in strings(&kustomization["resources"]) {
            let rel = format!("{dir}/{resource}");
            if repo().join(&rel).is_file() {
                out.push((rel.clone(), yaml_json(&rel)));
            }
        }
    }
    out
}

#[test]
fn every_object_carries_the_standard_labels() {
    let manifests = manifests();
    let kinds: BTreeSet<&str> = manifests
        .iter()
        .map(|(_, m)| m["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            "Deployment",
            "Namespace",
            "PrometheusRule",
            "Service",
            "ServiceAccount",
            "ServiceMonitor"
        ])
    );
    let mut label_sets = vec![(
        format!("{BASE}/kustomization.yaml generatorOptions"),
        yaml_json(&format!("{BASE}/kustomization.yaml"))["generatorOptions"]["labels"].clone(),
    )];
    for (file, manifest) in &manifests {
        label_sets.push((file.clone(), manifest["metadata"]["labels"].clone()));
        if manifest["kind"] == "Deployment" {
            label_sets.push((
                format!("{file} pod template"),
                manifest["spec"]["template"]["metadata"]["labels"].clone(),
            ));
        }
    }
    for (what, labels) in label_sets {
        for (key, value) in LABELS {
            assert_eq!(labels[key], value, "{what}: label {key}");
        }
    }
}

#[test]
fn deployment_is_hardened_and_probed() {
    let d = deployment();
    let what = "deployment.yaml";
    assert_eq!(d["spec"]["replicas"], 1, "{what}: one replica");
    let selector = at(&d, "/spec/selector/matchLabels", what)
        .as_object()
        .unwrap();
    let pod_labels = at(&d, "/spec/template/metadata/labels", what);
    for (k, v) in selector {
        assert_eq!(
            &pod_labels[k], v,
            "{what}: the selector matches the pod's labels"
        );
    }
    let pod = at(&d, "/spec/template/spec", what);
    assert_eq!(
        pod["securityContext"]["runAsNonRoot"], true,
        "{what}: pod runAsNonRoot"
    );
    assert!(
        pod["securityContext"]["runAsUser"]
            .as_u64()
            .is_some_and(|u| u != 0),
        "{what}: runAsUser"
    );
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault",
        "{what}: seccomp"
    );
    assert_eq!(
        pod["automountServiceAccountToken"], false,
        "{what}: no Kubernetes API token"
    );

    let c = container(&d);
    let sc = &c["securityContext"];
    assert_eq!(
        sc["allowPrivilegeEscalation"], false,
        "{what}: allowPrivilegeEscalation"
    );
    assert_eq!(
        sc["readOnlyRootFilesystem"], true,
        "{what}: readOnlyRootFilesystem"
    );
    assert_eq!(sc["runAsNonRoot"], true, "{what}: container runAsNonRoot");
    assert_eq!(
        sc["capabilities"]["drop"],
        json!(["ALL"]),
        "{what}: drop ALL capabilities"
    );
    assert!(
        sc.get("privileged").is_none_or(|p| p == false),
        "{what}: not privileged"
    );

    let port = c["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "metrics")
        .expect("port metrics");
    assert_eq!(port["containerPort"], 9917);
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        assert_eq!(c[probe]["httpGet"]["path"], path, "{what}: {probe} path");
        assert_eq!(
            c[probe]["httpGet"]["port"], "metrics",
            "{what}: {probe} uses the named port"
        );
    }
    for kind in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            assert!(
                c["resources"][kind][resource].is_string(),
                "{what}: resources.{kind}.{resource}"
            );
        }
    }
    let env = c["env"].as_array().unwrap();
    let external_id = env
        .iter()
        .find(|e| e["name"] == "UNION_EXTERNAL_ID")
        .expect("UNION_EXTERNAL_ID");
    assert!(
        external_id.get("value").is_none(),
        "{what}: the ExternalId is a secret, never a literal"
    );
    let secret = &external_id["valueFrom"]["secretKeyRef"];
    assert_eq!(secret["optional"], true, "{what}: the secret is optional");
    assert_eq!(secret["key"], "UNION_EXTERNAL_ID");
    let image = c["image"].as_str().unwrap();
    assert_eq!(
        image,
        format!("vpc-auditor:{}", crate_version()),
        "{what}: the image tag is the crate's version"
    );
}

#[test]
fn service_monitor_selects_the_service_by_its_labels_and_port_name() {
    let service = yaml_json(&format!("{BASE}/service.yaml"));
    let monitor = yaml_json(&format!("{PROMETHEUS}/servicemonitor.yaml"));
    let d = deployment();
    let pod_labels = &d["spec"]["template"]["metadata"]["labels"];
    for (k, v) in service["spec"]["selector"]
        .as_object()
        .expect("Service selector")
    {
        assert_eq!(&pod_labels[k], v, "service.yaml's selector matches the pod");
    }
    let port = service["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "metrics")
        .expect("Service port metrics");
    assert_eq!(port["port"], 9917);
    assert_eq!(
        port["targetPort"], "metrics",
        "the Service targets the container port by name"
    );
    for (k, v) in monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .expect("ServiceMonitor selector")
    {
        assert_eq!(
            &service["metadata"]["labels"][k], v,
            "the ServiceMonitor selects the Service's labels"
        );
    }
    let endpoints = monitor["spec"]["endpoints"].as_array().unwrap();
    assert!(!endpoints.is_empty());
    for e in endpoints {
        assert_eq!(
            e["port"], "metrics",
            "the ServiceMonitor uses the Service's port name"
        );
        assert_eq!(e["path"], "/metrics");
    }
    assert!(
        monitor["spec"].get("namespaceSelector").is_none(),
        "same namespace as the Service"
    );
    assert_eq!(
        yaml_json(&format!("{PROMETHEUS}/kustomization.yaml"))["kind"],
        "Component",
        "the CRD objects are an opt-in component, so the base applies on any cluster"
    );
}

#[test]
fn service_account_is_annotated_for_irsa() {
    let sa = yaml_json(&format!("{BASE}/serviceaccount.yaml"));
    str_at(
        &sa,
        "/metadata/annotations/eks.amazonaws.com~1role-arn",
        "serviceaccount.yaml",
    );
    assert_eq!(sa["automountServiceAccountToken"], false);
    let ns = yaml_json(&format!("{OVERLAY}/namespace.yaml"));
    assert_eq!(
        ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "restricted"
    );
}

#[test]
fn rule_pack_config_map_keys_items_and_files_agree() {
    let rules_dir = format!("{BASE}/rules");
    let files = tree(&repo().join(&rules_dir));
    let expected: BTreeSet<(String, String)> = files
        .iter()
        .map(|f| (f.replace('/', "__"), f.clone()))
        .collect();
    let generated: BTreeSet<(String, String)> = generators(BASE)["vpc-auditor-rules"]
        .iter()
        .map(|(k, f)| {
            (
                k.clone(),
                f.strip_prefix(&format!("{rules_dir}/"))
                    .expect("a file under rules/")
                    .to_string(),
            )
        })
        .collect();
    let d = deployment();
    let sources = d["spec"]["template"]["spec"]["volumes"][0]["projected"]["sources"]
        .as_array()
        .unwrap();
    let items: BTreeSet<(String, String)> = sources
        .iter()
        .find(|s| s["configMap"]["name"] == "vpc-auditor-rules")
        .expect("the rules ConfigMap is projected")["configMap"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let path = i["path"].as_str().unwrap();
            (
                i["key"].as_str().unwrap().to_string(),
                path.strip_prefix("rules/")
                    .expect("under rules/")
                    .to_string(),
            )
        })
        .collect();
    let lines = |set: &BTreeSet<(String, String)>| {
        set.iter()
            .map(|(k, f)| format!("      - {k}=rules/{f}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        generated, expected,
        "{BASE}/kustomization.yaml's vpc-auditor-rules files must list every file of {rules_dir}, as:\n{}",
        lines(&expected)
    );
    assert_eq!(
        items,
        expected,
        "{BASE}/deployment.yaml's vpc-auditor-rules items must map every key to its path, as:\n{}",
        expected
            .iter()
            .map(|(k, f)| format!(
                "                    - key: {k}\n                      path: rules/{f}"
            ))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The copies kustomize needs below its folder, and their originals.
fn copies() -> Vec<(PathBuf, PathBuf)> {
    let mut out = vec![(
        repo().join("deploy/config.yaml"),
        repo().join(BASE).join("config.yaml"),
    )];
    let original = repo().join("rules");
    let copy = repo().join(BASE).join("rules");
    let mut files = tree(&original);
    if copy.is_dir() {
        files.extend(tree(&copy));
    }
    // Notes for people (the vendored documents' provenance) are not configuration.
    files.retain(|f| !f.ends_with(".md"));
    out.extend(
        files
            .into_iter()
            .map(|f| (original.join(&f), copy.join(&f))),
    );
    out
}

#[test]
fn kubernetes_copies_equal_the_originals() {
    let update = std::env::var_os("UPDATE_DEPLOY_COPIES").is_some();
    let mut stale = Vec::new();
    for (original, copy) in copies() {
        let want = std::fs::read(&original).ok();
        let have = std::fs::read(&copy).ok();
        if want == have {
            continue;
        }
        if update {
            match &want {
                Some(bytes) => {
                    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
                    std::fs::write(&copy, bytes).unwrap();
                }
                None => std::fs::remove_file(&copy).unwrap(),
            }
        } else {
            stale.push(copy.strip_prefix(repo()).unwrap().display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "these copies differ from their originals (deploy/config.yaml, rules/): {stale:?}\n\
         refresh them with UPDATE_DEPLOY_COPIES=1 cargo test --test deploy, then list any added \
         or removed rule file in {BASE}/kustomization.yaml and deployment.yaml"
    );
}

/// The PrometheusRule's groups.
fn prometheus_rule_groups() -> Json {
    yaml_json(&format!("{PROMETHEUS}/prometheusrule.yaml"))["spec"]["groups"].clone()
}

/// dashboards/alerts.yaml's rule groups as PrometheusRule text: every line after its
/// `groups:` key (comments included), indented under `spec:`.
fn groups_under_spec(alerts: &str) -> String {
    let mut lines = alerts.lines().skip_while(|l| *l != "groups:");
    assert_eq!(
        lines.next(),
        Some("groups:"),
        "dashboards/alerts.yaml has a top-level groups:"
    );
    let mut out = String::from("  groups:\n");
    for line in lines {
        if !line.is_empty() {
            out.push_str("  ");
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[test]
fn prometheus_rule_equals_dashboards_alerts_once_they_exist() {
    let alerts = repo().join("dashboards/alerts.yaml");
    if !alerts.is_file() {
        eprintln!(
            "NOTE: dashboards/alerts.yaml does not exist yet; this check starts when it does"
        );
        return;
    }
    let rule_file = repo().join(PROMETHEUS).join("prometheusrule.yaml");
    if std::env::var_os("UPDATE_DEPLOY_COPIES").is_some() {
        let current = std::fs::read_to_string(&rule_file).unwrap();
        let head = &current[..current.find("\nspec:\n").expect("spec:") + "\nspec:\n".len()];
        let text = format!(
            "{head}{}",
            groups_under_spec(&read("dashboards/alerts.yaml"))
        );
        std::fs::write(&rule_file, text).unwrap();
    }
    let groups = prometheus_rule_groups();
    assert!(
        groups.as_array().is_some_and(|g| !g.is_empty()),
        "spec.groups"
    );
    let theirs = yaml_json("dashboards/alerts.yaml")["groups"].clone();
    assert_eq!(
        groups, theirs,
        "{PROMETHEUS}/prometheusrule.yaml's spec.groups must equal dashboards/alerts.yaml's \
         groups; UPDATE_DEPLOY_COPIES=1 cargo test --test deploy copies them"
    );
}

/// Metric names a PromQL expression mentions.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in expr.match_indices("vpc_auditor_") {
        if i > 0
            && expr[..i]
                .chars()
                .last()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            continue;
        }
        let name: String = expr[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        out.insert(name);
    }
    out
}

#[test]
fn alerts_use_only_metrics_the_daemon_exports() {
    let groups = prometheus_rule_groups();
    let mut used = BTreeSet::new();
    for group in groups.as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            used.extend(metric_names(rule["expr"].as_str().expect("expr")));
        }
    }
    assert!(!used.is_empty());
    // Every metric is registered in src/export/metrics.rs through `opts("name", ...)`.
    let text = read("src/export/metrics.rs");
    let mut exported = BTreeSet::new();
    for (i, _) in text.match_indices("opts(") {
        let rest = text[i + 5..].trim_start();
        if let Some(rest) = rest.strip_prefix('"') {
            exported.insert(format!("vpc_auditor_{}", &rest[..rest.find('"').unwrap()]));
        }
    }
    let unknown: Vec<_> = used.difference(&exported).collect();
    assert!(
        unknown.is_empty(),
        "alerts use metrics the daemon does not export: {unknown:?} (exported: {exported:?})"
    );
}

#[test]
fn promtool_accepts_the_alert_rules() {
    let Some(promtool) = linter("promtool") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.yaml");
    std::fs::write(
        &file,
        serde_yaml_ng::to_string(&json!({"groups": prometheus_rule_groups()})).unwrap(),
    )
    .unwrap();
    lint(&promtool, &["check", "rules", file.to_str().unwrap()]);
}

/// Renders a kustomization with kubectl, or None (with a note) when kubectl is missing.
fn kustomize(dir: &str) -> Option<String> {
    let kubectl = linter("kubectl")?;
    let out = lint(&kubectl, &["kustomize", dir]);
    Some(String::from_utf8(out.stdout).expect("UTF-8"))
}

#[test]
fn kustomize_renders_and_kubernetes_validate_accepts_the_output() {
    let Some(base) = kustomize(BASE) else {
        eprintln!("NOTE: without kubectl, the manifests are checked as source files only (the other tests)");
        return;
    };
    let overlay = kustomize(OVERLAY).expect("kubectl");
    let base_docs = yaml_docs(&base);
    let kinds: BTreeSet<&str> = base_docs
        .iter()
        .map(|d| d["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["ConfigMap", "Deployment", "Service", "ServiceAccount"]),
        "the base needs no CRD"
    );
    let docs = yaml_docs(&overlay);
    let find = |kind: &str| {
        docs.iter()
            .find(|d| d["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} in the overlay"))
    };
    for doc in &docs {
        if doc["kind"] != "Namespace" {
            assert_eq!(
                doc["metadata"]["namespace"], "vpc-auditor",
                "{} namespaced",
                doc["kind"]
            );
        }
    }
    // Generated names carry a hash suffix, and the Deployment refers to exactly those.
    let config_maps = config_map_names(&docs);
    let d = find("Deployment");
    assert_eq!(
        mounted_config_maps(d),
        config_maps,
        "the Deployment mounts the generated ConfigMaps"
    );
    for generator in ["vpc-auditor-config", "vpc-auditor-rules"] {
        let named: Vec<_> = config_maps
            .iter()
            .filter(|n| n.starts_with(&format!("{generator}-")))
            .collect();
        assert_eq!(
            named.len(),
            1,
            "{generator} with a hash suffix: {config_maps:?}"
        );
    }
    // The overlay's settings land where they should.
    let kustomization = yaml_json(&format!("{OVERLAY}/kustomization.yaml"));
    let image = &kustomization["images"][0];
    assert_eq!(
        container(d)["image"],
        format!(
            "{}:{}",
            image["newName"].as_str().unwrap(),
            image["newTag"].as_str().unwrap()
        )
    );
    let sa = find("ServiceAccount");
    let base_sa = yaml_json(&format!("{BASE}/serviceaccount.yaml"));
    let pointer = "/metadata/annotations/eks.amazonaws.com~1role-arn";
    assert_ne!(
        str_at(sa, pointer, "overlay"),
        str_at(&base_sa, pointer, "base"),
        "the overlay sets the role ARN"
    );
    for kind in ["ServiceMonitor", "PrometheusRule"] {
        assert!(
            find(kind)["metadata"]["labels"]["release"].is_string(),
            "{kind} has the Prometheus selection label"
        );
    }

    let Some(validate) = linter("kubernetes-validate") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [("base.yaml", &base), ("overlay.yaml", &overlay)] {
        kubernetes_validate(&validate, dir.path(), name, text);
    }
}

// ---------------------------------------------------------------------------------------
// ECS
// ---------------------------------------------------------------------------------------

#[test]
fn ecs_task_definition_is_hardened_and_logs_to_cloudwatch() {
    let task: Json = serde_json::from_str(&read(ECS)).expect("JSON");
    let c = ecs_container(&task);
    assert_eq!(
        c["readonlyRootFilesystem"], true,
        "{ECS}: readonlyRootFilesystem"
    );
    let user = c["user"].as_str().expect("user");
    assert!(
        user.split(':')
            .next()
            .unwrap()
            .parse::<u32>()
            .is_ok_and(|u| u != 0),
        "{ECS}: user must be a non-root uid: {user}"
    );
    assert_eq!(c["linuxParameters"]["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(c["logConfiguration"]["logDriver"], "awslogs");
    for option in ["awslogs-group", "awslogs-region", "awslogs-stream-prefix"] {
        assert!(
            c["logConfiguration"]["options"][option].is_string(),
            "{ECS}: {option}"
        );
    }
    assert!(
        c["portMappings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["containerPort"] == 9917),
        "{ECS}: port 9917"
    );
    assert!(
        c.get("healthCheck").is_none(),
        "{ECS}: a container healthCheck runs a command in the container, and the distroless image has no shell or curl"
    );
    let secret = c["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "UNION_EXTERNAL_ID")
        .expect("UNION_EXTERNAL_ID from a secret");
    let from = secret["valueFrom"].as_str().unwrap();
    assert!(
        from.starts_with("arn:aws:ssm:") || from.starts_with("arn:aws:secretsmanager:"),
        "{ECS}: {from}"
    );
    assert!(
        !c["environment"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "UNION_EXTERNAL_ID"),
        "{ECS}: the ExternalId is never a plain environment value"
    );
    let image = c["image"].as_str().unwrap();
    assert!(
        image.ends_with(&format!(":{}", crate_version())),
        "{ECS}: image tag {image}"
    );
}

#[test]
fn ecs_task_definition_matches_the_ecs_api() {
    // botocore's copy of the ECS API model: unknown fields, wrong types and missing required
    // fields are what `aws ecs register-task-definition` would refuse.
    let python = repo().join(".venv/deploy-tools/bin/python");
    if !python.is_file() {
        assert!(
            !ci(),
            "{} is missing, and CI is set, so this check may not be skipped: run \
             scripts/setup-deploy-tools.sh",
            python.display()
        );
        eprintln!(
            "NOTE: .venv/deploy-tools (botocore) not found; run scripts/setup-deploy-tools.sh"
        );
        return;
    }
    let script = "import json, sys\n\
        import botocore.session\n\
        from botocore.validate import validate_parameters\n\
        model = botocore.session.get_session().get_service_model('ecs')\n\
        shape = model.operation_model('RegisterTaskDefinition').input_shape\n\
        validate_parameters(json.load(open(sys.argv[1])), shape)\n";
    lint(&python, &["-c", script, ECS]);
}

#[test]
fn cfn_lint_accepts_the_role_template() {
    if let Some(cfn_lint) = linter("cfn-lint") {
        lint(&cfn_lint, &[ROLE_TEMPLATE]);
    }
}

// ---------------------------------------------------------------------------------------
// The deployment page
// ---------------------------------------------------------------------------------------

#[test]
fn deployment_page_names_only_files_that_exist() {
    let text = read("docs/deployment.md");
    assert!(
        text.starts_with("# Deploying\n"),
        "docs/deployment.md starts with its \"# Deploying\" heading"
    );
    let mut named = BTreeSet::new();
    for (i, _) in text.match_indices("deploy/") {
        if i > 0
            && text[..i]
                .chars()
                .last()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '/' || c == '.')
        {
            continue;
        }
        let path: String = text[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || "/._-".contains(*c))
            .collect();
        named.insert(path.trim_end_matches(['.', '/']).to_string());
    }
    assert!(named.len() > 5, "{named:?}");
    for path in named {
        assert!(
            repo().join(&path).exists(),
            "docs/deployment.md names {path}, which does not exist"
        );
    }
}
