//! Role rules beyond "the role matches the vendor's policy": roles that must not change
//! (`pinned_roles:`), custom roles discovered from their trust policies (`custom_roles:`),
//! and the optional features of a vendor's guide (`features:`). Pure: pins arrive in the
//! [`Scope`], pin files and feature policies with the pack, roles from the snapshot.
//!
//! - `iam.pinned_role_drift`: a pinned role differs from its pin (trust, inline and
//!   attached policies, permissions boundary, tags); the finding carries a line diff. A
//!   role seen for the first time is pinned ([`Evaluation::new_pins`], which the scan
//!   writes to the pin state file).
//! - `iam.custom_role_policy` and `iam.custom_role_trust`: a role trusted through an OIDC
//!   provider for `system:serviceaccount:<project>-<domain>:default` subjects (Union.ai's
//!   project-domain-scoped access) has the `userflyterole` policy attached, and its trust
//!   `Condition` has the guide's form.
//! - `iam.feature_policy_missing`: for each feature the operator switched on, the feature's
//!   role grants everything the feature's policies grant.

use std::collections::BTreeSet;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::iam::grants::{group_by_resource, missing};
use crate::iam::{effective_grants, pattern};
use crate::input::InputError;
use crate::snapshot::{IamRole, IamSnapshot, Snapshot};
use crate::values::pins::{self, PinnedState, RolePin};
use crate::values::Scope;

use super::catalogue;
use super::iam::{fix_commands, resolve_expected, role_grants, GLOBAL_REGION};
use super::pack::{ExpectationSources, RoleExpectation, RulePack, SourceFile};
use super::{Evaluation, FindingScope, Sink};

/// A role a pack pins: every later change is a finding.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PinnedRoleSpec {
    /// The role's name, exact or a glob (`*`, `?`).
    pub role_name: String,
    /// The guide's sentence that asks for it, shown in findings.
    #[serde(default)]
    pub guide: Option<String>,
    /// A pin the operator provides, relative to the pack: the `state` object of a pin in
    /// the pin state file. Without it, the role is pinned at first sight.
    #[serde(default)]
    pub from_file: Option<PathBuf>,
    /// The pin read from `from_file` when the pack is loaded.
    #[serde(skip)]
    pub loaded: Option<PinnedState>,
}

/// Custom roles discovered from their trust policies.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomRoles {
    /// The managed policy each custom role must have attached (`userflyterole`).
    pub required_policy: String,
    /// Roles left out of discovery, exact or globs (the global `*-userflyterole`).
    #[serde(default)]
    pub exclude_role_names: Vec<String>,
}

/// An optional feature of a vendor's guide: when switched on (`rule_overrides:
/// {iam.feature_policy_missing: {features: [NAME]}}`), its role must grant its policies.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Feature {
    /// The name that switches it on: `session_manager`.
    pub name: String,
    /// The guide's sentence, shown in findings.
    #[serde(default)]
    pub guide: Option<String>,
    /// The role that needs the feature's permissions, exact or a glob.
    pub role_name: String,
    /// Policy JSON files, relative to the pack file.
    pub policies: Vec<PathBuf>,
    /// The files, read when the pack is loaded.
    #[serde(skip)]
    pub sources: Vec<SourceFile>,
}

/// A recommendation beyond the vendor's guide: confine the EC2 mutations a role's policy
/// grants on `*` to the designated VPC with the `ec2:Vpc` condition key
/// (`iam.vpc_scope_recommended`, info). The designated VPC is the config's declared data
/// plane for this pack, else a `<VpcId>` placeholder.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VpcScopeRecommendation {
    /// The role, exact or a glob.
    pub role_name: String,
    /// The guide's sentence that motivates it, shown in findings.
    #[serde(default)]
    pub guide: Option<String>,
}

/// Whether `rule_id` is one of this module's rules, and then whether the pack has the
/// section it needs.
pub fn section_present(pack: &RulePack, rule_id: &str) -> Option<bool> {
    match rule_id {
        catalogue::IAM_PINNED_ROLE_DRIFT => Some(!pack.pinned_roles.is_empty()),
        catalogue::IAM_CUSTOM_ROLE_POLICY | catalogue::IAM_CUSTOM_ROLE_TRUST => {
            Some(pack.custom_roles.is_some())
        }
        catalogue::IAM_FEATURE_POLICY_MISSING => Some(!pack.features.is_empty()),
        catalogue::IAM_VPC_SCOPE_RECOMMENDED => Some(pack.vpc_scope_recommendation.is_some()),
        _ => None,
    }
}

/// Reads the files of `pinned_roles` and `features` (relative to the pack file).
pub fn load_sources(
    pack: &mut RulePack,
    pack_file: &std::path::Path,
    read: super::pack::ReadFile,
) -> Result<(), InputError> {
    let base = pack_file.parent().unwrap_or(std::path::Path::new(""));
    for (index, spec) in pack.pinned_roles.iter_mut().enumerate() {
        if let Some(file) = &spec.from_file {
            let path = base.join(file);
            let text = read(&path)?;
            let state: PinnedState = serde_json::from_str(&text).map_err(|e| InputError {
                field: format!("pinned_roles[{index}].from_file"),
                line: Some(e.line()),
                column: Some(e.column()),
                ..InputError::file(&path, format!("not a pinned role state: {e}"))
            })?;
            spec.loaded = Some(state);
        }
    }
    let mut names = BTreeSet::new();
    for (index, feature) in pack.features.iter_mut().enumerate() {
        if !names.insert(feature.name.clone()) {
            return Err(InputError {
                field: format!("features[{index}].name"),
                ..InputError::file(
                    pack_file,
                    format!("feature {:?} is listed twice", feature.name),
                )
            });
        }
        feature.sources = feature
            .policies
            .iter()
            .map(|p| {
                let path = base.join(p);
                read(&path).map(|text| SourceFile { path, text })
            })
            .collect::<Result<_, _>>()?;
    }
    Ok(())
}

/// Checks the switches of `iam.feature_policy_missing` against the pack (after the
/// config's overrides), and narrows each role to the chosen `policy_set`.
pub fn apply_switches(pack: &mut RulePack, config: &std::path::Path) -> Result<(), InputError> {
    let Some(settings) = pack.role_rules.feature_policy_missing.clone() else {
        return Ok(());
    };
    let field = |name: &str| {
        format!(
            "rule_overrides.{}.{name}",
            catalogue::IAM_FEATURE_POLICY_MISSING
        )
    };
    for name in settings.features() {
        if !pack.features.iter().any(|f| f.name == name) {
            let known: Vec<&str> = pack.features.iter().map(|f| f.name.as_str()).collect();
            return Err(InputError {
                field: field("features"),
                ..InputError::file(
                    config,
                    format!(
                        "pack {} has no feature {name:?} (features: {known:?})",
                        pack.name
                    ),
                )
            });
        }
    }
    let set = settings.policy_set();
    if set.is_empty() {
        return Ok(());
    }
    let mut found = false;
    for role in pack.roles.iter_mut() {
        if role.form.as_deref() == Some(set.as_str()) {
            role.sources.forms.clear();
            found = true;
        } else if let Some(chosen) = role
            .sources
            .forms
            .iter()
            .find(|f| f.form.as_deref() == Some(set.as_str()))
            .cloned()
        {
            *role = chosen;
            found = true;
        }
    }
    if !found {
        return Err(InputError {
            field: field("policy_set"),
            ..InputError::file(
                config,
                format!(
                    "no role of pack {} has a documented form named {set:?}",
                    pack.name
                ),
            )
        });
    }
    Ok(())
}

fn name_matches(pattern_text: &str, name: &str) -> bool {
    pattern::matches(pattern_text, name, true)
}

/// Runs this module's rules for `pack` on every account whose IAM was collected.
pub fn evaluate(eval: &mut Evaluation, snapshot: &Snapshot, pack: &RulePack, scope: &Scope) {
    for account in snapshot.iam.iter().filter(|a| a.error.is_none()) {
        let region = snapshot
            .regions
            .iter()
            .find(|r| r.account_id == account.account_id)
            .map(|r| r.region.clone())
            .unwrap_or_else(|| "us-east-1".to_string());
        pinned(eval, account, pack, scope);
        custom_roles(eval, account, pack);
        features(eval, account, pack, &region);
        vpc_scope(eval, account, pack, scope, &region);
    }
}

fn finding_scope(account: &IamSnapshot) -> FindingScope {
    FindingScope {
        account_id: account.account_id.clone(),
        region: GLOBAL_REGION.to_string(),
        vpc_id: None,
    }
}

fn pinned(eval: &mut Evaluation, account: &IamSnapshot, pack: &RulePack, scope: &Scope) {
    let mut first_sight = Vec::new();
    for spec in &pack.pinned_roles {
        let Some(mut sink) = Sink::new(
            eval,
            pack,
            catalogue::IAM_PINNED_ROLE_DRIFT,
            finding_scope(account),
        ) else {
            return;
        };
        for role in account
            .roles
            .iter()
            .filter(|r| name_matches(&spec.role_name, &r.name))
        {
            sink.evaluated(&role.arn);
            let pin = match (&spec.loaded, scope.pins.pins.get(&role.arn)) {
                (Some(state), _) => RolePin {
                    account_id: account.account_id.clone(),
                    role_arn: role.arn.clone(),
                    pinned_at: "operator file".into(),
                    fingerprint: state.fingerprint(),
                    state: state.clone(),
                },
                (None, Some(pin)) => pin.clone(),
                (None, None) if scope.pins.persisted => {
                    sink.note(format!(
                        "pinned role {} ({}) pinned at first sight",
                        role.arn, pack.name
                    ));
                    first_sight.push(RolePin::new(&account.account_id, role));
                    continue;
                }
                (None, None) => {
                    sink.note(format!(
                        "pinned role {} ({}) is not tracked: set pin_state_file in the config so that its pin persists",
                        role.arn, pack.name
                    ));
                    continue;
                }
            };
            report_drift(&mut sink, role, spec, &pin);
        }
    }
    eval.new_pins.extend(first_sight);
}

fn report_drift(sink: &mut Sink, role: &IamRole, spec: &PinnedRoleSpec, pin: &RolePin) {
    let now = PinnedState::of(role);
    let fingerprint = now.fingerprint();
    if fingerprint == pin.fingerprint && now == pin.state {
        return;
    }
    let changes = pins::diff(&pin.state, &now);
    let parts: Vec<&str> = changes.iter().map(|c| c.part.as_str()).collect();
    let why = spec
        .guide
        .as_deref()
        .map(|g| format!(" The guide: \"{g}\""))
        .unwrap_or_default();
    sink.report(
        &role.arn,
        format!(
            "pinned role {} changed since it was pinned ({}): {}",
            role.name,
            if pin.pinned_at.is_empty() { "first sight" } else { &pin.pinned_at },
            parts.join(", ")
        ),
        format!(
            "Undo the change shown in details.changes (`-` is the pinned state, `+` the role now), e.g. with aws iam update-assume-role-policy / put-role-policy / attach-role-policy / detach-role-policy / tag-role / untag-role --role-name {}. If the change was agreed with the vendor, accept it explicitly: vpc-auditor --once --config <config> --repin {}.{why}",
            role.name, role.arn
        ),
        json!({
            "pinned_fingerprint": pin.fingerprint,
            "current_fingerprint": fingerprint,
            "pinned_at": pin.pinned_at,
            "changes": changes,
        }),
    );
}

/// One trust statement that admits web identities of an OIDC provider.
#[derive(Debug)]
struct OidcStatement {
    index: usize,
    provider_arn: String,
    provider_host: String,
    /// (operator, key, values) of every `…:sub` condition.
    subs: Vec<(String, String, Vec<String>)>,
    /// Whether the statement has an `…:aud` condition.
    has_aud: bool,
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

fn oidc_statements(trust: &Value) -> Vec<OidcStatement> {
    let statements = match &trust["Statement"] {
        Value::Array(items) => items.clone(),
        s @ Value::Object(_) => vec![s.clone()],
        _ => Vec::new(),
    };
    let mut out = Vec::new();
    for (index, statement) in statements.iter().enumerate() {
        if statement["Effect"] != "Allow" {
            continue;
        }
        for provider_arn in strings(&statement["Principal"]["Federated"]) {
            let Some((_, host)) = provider_arn.split_once(":oidc-provider/") else {
                continue;
            };
            let mut subs = Vec::new();
            let mut has_aud = false;
            if let Value::Object(operators) = &statement["Condition"] {
                for (operator, keys) in operators {
                    let Value::Object(keys) = keys else { continue };
                    for (key, values) in keys {
                        let lower = key.to_lowercase();
                        if lower.ends_with(":sub") {
                            subs.push((operator.clone(), key.clone(), strings(values)));
                        } else if lower.ends_with(":aud") {
                            has_aud = true;
                        }
                    }
                }
            }
            out.push(OidcStatement {
                index,
                provider_arn: provider_arn.clone(),
                provider_host: host.to_string(),
                subs,
                has_aud,
            });
        }
    }
    out
}

const SA_PREFIX: &str = "system:serviceaccount:";

/// `system:serviceaccount:<project>-<domain>:default`, with no wildcard.
fn is_project_domain_subject(value: &str) -> bool {
    let Some(namespace) = value
        .strip_prefix(SA_PREFIX)
        .and_then(|rest| rest.strip_suffix(":default"))
    else {
        return false;
    };
    let ok = |part: &str| {
        !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    };
    match namespace.split_once('-') {
        Some((project, domain)) => ok(project) && ok(domain),
        None => false,
    }
}

/// Whether the role is a project-domain custom role: an OIDC trust with a `sub` naming a
/// `default` service account.
fn discovered(statements: &[OidcStatement]) -> bool {
    statements.iter().any(|s| {
        s.subs.iter().any(|(_, _, values)| {
            values
                .iter()
                .any(|v| v.starts_with(SA_PREFIX) && v.ends_with(":default"))
        })
    })
}

fn custom_roles(eval: &mut Evaluation, account: &IamSnapshot, pack: &RulePack) {
    let Some(spec) = &pack.custom_roles else {
        return;
    };
    // The required policy's ARN as other roles of the account attach it.
    let policy_arn = account
        .roles
        .iter()
        .flat_map(|r| {
            r.attached_policies
                .iter()
                .map(|p| p.name.as_str())
                .chain(r.unresolved_policies.iter().map(String::as_str))
        })
        .find(|arn| arn.rsplit('/').next() == Some(spec.required_policy.as_str()))
        .map(str::to_string);
    for role in &account.roles {
        if spec
            .exclude_role_names
            .iter()
            .any(|p| name_matches(p, &role.name))
        {
            continue;
        }
        let Some(trust) = role
            .trust_policy
            .as_deref()
            .and_then(|t| serde_json::from_str::<Value>(t).ok())
        else {
            continue;
        };
        let statements = oidc_statements(&trust);
        if !discovered(&statements) {
            continue;
        }
        if let Some(mut sink) = Sink::new(
            eval,
            pack,
            catalogue::IAM_CUSTOM_ROLE_POLICY,
            finding_scope(account),
        ) {
            check_required_policy(&mut sink, account, role, spec, policy_arn.as_deref());
        }
        if let Some(mut sink) = Sink::new(
            eval,
            pack,
            catalogue::IAM_CUSTOM_ROLE_TRUST,
            finding_scope(account),
        ) {
            check_trust(&mut sink, account, role, &trust, &statements);
        }
    }
}

fn check_required_policy(
    sink: &mut Sink,
    account: &IamSnapshot,
    role: &IamRole,
    spec: &CustomRoles,
    known_arn: Option<&str>,
) {
    sink.evaluated(&role.arn);
    let attached = role
        .attached_policies
        .iter()
        .map(|p| p.name.as_str())
        .chain(role.unresolved_policies.iter().map(String::as_str))
        .any(|arn| arn.rsplit('/').next() == Some(spec.required_policy.as_str()));
    if attached {
        return;
    }
    let (arn, where_from) = match known_arn {
        Some(arn) => (arn.to_string(), "the ARN other roles of the account attach"),
        None => (
            format!(
                "arn:aws:iam::{}:policy/{}",
                account.account_id, spec.required_policy
            ),
            "no role of the account attaches it, so the ARN assumes no policy path: check it with aws iam list-policies --scope Local",
        ),
    };
    sink.report(
        &role.arn,
        format!(
            "custom role {} (trusted for project-domain service accounts) does not have the {} policy attached",
            role.name, spec.required_policy
        ),
        format!(
            "aws iam attach-role-policy --role-name {} --policy-arn {arn} ({where_from}). The guide: \"Also, attach the policy called `userflyterole` to `<CustomRole>` (this will ensure that `<CustomRole>` has all the default permissions needed to allow tasks to run).\"",
            role.name
        ),
        json!({ "required_policy": spec.required_policy, "policy_arn": arn,
                "attached": role.attached_policies.iter().map(|p| &p.name).collect::<Vec<_>>() }),
    );
}

fn check_trust(
    sink: &mut Sink,
    account: &IamSnapshot,
    role: &IamRole,
    trust: &Value,
    statements: &[OidcStatement],
) {
    sink.evaluated(&role.arn);
    let mut problems: Vec<String> = Vec::new();
    let mut unverified = false;
    let mut create_provider = Vec::new();
    for s in statements {
        match &account.oidc_providers {
            None => {
                unverified = true;
                problems.push(format!(
                    "Statement[{}]: whether OIDC provider {} exists was not collected",
                    s.index, s.provider_arn
                ));
            }
            Some(providers) if !providers.contains(&s.provider_arn) => {
                problems.push(format!(
                    "Statement[{}]: OIDC provider {} does not exist in the account",
                    s.index, s.provider_arn
                ));
                create_provider.push(format!(
                    "aws iam create-open-id-connect-provider --url https://{} --client-id-list sts.amazonaws.com",
                    s.provider_host
                ));
            }
            Some(_) => {}
        }
        if s.subs.is_empty() {
            problems.push(format!(
                "Statement[{}]: no `sub` condition: every service account of the cluster can assume the role",
                s.index
            ));
        }
        for (operator, key, values) in &s.subs {
            if operator != "StringEquals" {
                problems.push(format!(
                    "Statement[{}]: `{key}` is under {operator}; the guide's form is StringEquals",
                    s.index
                ));
            }
            if !key.eq_ignore_ascii_case(&format!("{}:sub", s.provider_host)) {
                problems.push(format!(
                    "Statement[{}]: condition key `{key}` is not the trusted provider's ({}:sub)",
                    s.index, s.provider_host
                ));
            }
            for value in values.iter().filter(|v| !is_project_domain_subject(v)) {
                problems.push(format!(
                    "Statement[{}]: subject {value:?} is not a project-domain service account (system:serviceaccount:<Project>-<Domain>:default)",
                    s.index
                ));
            }
        }
    }
    if problems.is_empty() {
        return;
    }
    let fixed = fixed_trust(trust, statements);
    let mut remediation = format!(
        "aws iam update-assume-role-policy --role-name {} --policy-document '{}'",
        role.name,
        fixed.to_string().replace('\'', r"'\''")
    );
    for command in create_provider {
        remediation.push_str(&format!(
            "; and create the cluster's OIDC provider (or trust the one that exists): {command}"
        ));
    }
    remediation.push_str(". The guide's Condition: \"StringEquals\": {\"oidc.eks.<Suffix>:sub\": [\"system:serviceaccount:<Project>-<Domain1>:default\", ...]}.");
    let message = format!(
        "custom role {}: the trust policy's OIDC condition {}: {}",
        role.name,
        if unverified {
            "could not be verified"
        } else {
            "does not have the guide's form"
        },
        problems.join("; ")
    );
    sink.report(
        &role.arn,
        message,
        remediation,
        json!({ "problems": problems, "unverified": unverified }),
    );
}

/// The trust policy with each OIDC statement's Condition in the guide's form: StringEquals
/// on the provider's `sub`, listing the project-domain subjects it had (a placeholder when
/// it had none), and `aud` kept as sts.amazonaws.com when it had one.
fn fixed_trust(trust: &Value, statements: &[OidcStatement]) -> Value {
    let mut fixed = trust.clone();
    let single = fixed["Statement"].is_object();
    for s in statements {
        let mut subjects: Vec<String> = s
            .subs
            .iter()
            .flat_map(|(_, _, values)| values.iter().cloned())
            .filter(|v| is_project_domain_subject(v))
            .collect();
        subjects.dedup();
        if subjects.is_empty() {
            subjects.push("system:serviceaccount:<Project>-<Domain>:default".into());
        }
        let mut equals = serde_json::Map::new();
        equals.insert(format!("{}:sub", s.provider_host), json!(subjects));
        if s.has_aud {
            equals.insert(
                format!("{}:aud", s.provider_host),
                json!("sts.amazonaws.com"),
            );
        }
        let statement = match single {
            true => &mut fixed["Statement"],
            false => &mut fixed["Statement"][s.index],
        };
        statement["Condition"] = json!({ "StringEquals": equals });
    }
    fixed
}

fn features(eval: &mut Evaluation, account: &IamSnapshot, pack: &RulePack, region: &str) {
    let switched_on = pack
        .role_rules
        .feature_policy_missing
        .as_ref()
        .map(|s| s.features())
        .unwrap_or_default();
    for feature in pack
        .features
        .iter()
        .filter(|f| switched_on.contains(&f.name))
    {
        let Some(mut sink) = Sink::new(
            eval,
            pack,
            catalogue::IAM_FEATURE_POLICY_MISSING,
            finding_scope(account),
        ) else {
            return;
        };
        let expectation = RoleExpectation {
            role_name: Some(feature.role_name.clone()),
            sources: ExpectationSources {
                policies: feature.sources.clone(),
                ..Default::default()
            },
            ..Default::default()
        };
        let expected = match resolve_expected(&expectation, &account.account_id, region) {
            Ok(e) => effective_grants(&e.policies),
            Err(e) => {
                sink.note(format!("feature {} of {}: {e}", feature.name, pack.name));
                continue;
            }
        };
        let roles: Vec<&IamRole> = account
            .roles
            .iter()
            .filter(|r| name_matches(&feature.role_name, &r.name))
            .collect();
        if roles.is_empty() {
            sink.note(format!(
                "feature {} of {}: no role named {} in account {}, so it was not checked (iam.role_missing reports a missing role)",
                feature.name, pack.name, feature.role_name, account.account_id
            ));
        }
        let files: Vec<String> = feature
            .policies
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        let guide = feature
            .guide
            .as_deref()
            .map(|g| format!(" The guide: \"{g}\""))
            .unwrap_or_default();
        for role in roles {
            sink.evaluated(&role.arn);
            match role_grants(role) {
                Err(reason) => sink.report(
                    &role.arn,
                    format!(
                        "feature {}: role {} could not be verified: {reason}",
                        feature.name, role.name
                    ),
                    "Make the role's attached policy documents readable to the auditor (iam:GetAccountAuthorizationDetails) and scan again.".into(),
                    json!({ "feature": feature.name, "error": reason }),
                ),
                Ok(have) => {
                    let gaps = missing(&expected, &have);
                    if gaps.is_empty() {
                        continue;
                    }
                    let commands = fix_commands(role, &gaps);
                    sink.report(
                        &role.arn,
                        format!(
                            "feature {} is switched on, but role {} lacks {} of the permissions of {}",
                            feature.name,
                            role.name,
                            gaps.len(),
                            files.join(", ")
                        ),
                        format!(
                            "Attach the feature's policy ({}) to the role, or run: {}.{guide}",
                            files.join(", "),
                            commands.join(" && ")
                        ),
                        json!({ "feature": feature.name, "policies": files,
                                "missing": group_by_resource(&gaps) }),
                    );
                }
            }
        }
    }
}

/// An EC2 action that changes something (not Describe, Get or List).
fn is_ec2_mutation(action: &str) -> bool {
    let lower = action.to_lowercase();
    match lower.strip_prefix("ec2:") {
        Some(op) => !["describe", "get", "list"]
            .iter()
            .any(|v| op.starts_with(v)),
        None => false,
    }
}

/// (policy name, is inline, document, statement index, the EC2 mutations it allows on `*`
/// with no `ec2:Vpc` condition) for each such statement of the role.
fn unconfined_ec2(role: &IamRole) -> Vec<(String, bool, Value, usize, Vec<String>)> {
    let documents = role
        .inline_policies
        .iter()
        .map(|p| (p, true))
        .chain(role.attached_policies.iter().map(|p| (p, false)));
    let mut out = Vec::new();
    for (policy, inline) in documents {
        let Ok(doc) = serde_json::from_str::<Value>(&policy.document) else {
            continue;
        };
        let statements = match &doc["Statement"] {
            Value::Array(items) => items.clone(),
            s @ Value::Object(_) => vec![s.clone()],
            _ => continue,
        };
        for (index, statement) in statements.iter().enumerate() {
            let on_everything = strings(&statement["Resource"]).iter().any(|r| r == "*");
            let has_vpc_condition = statement["Condition"].as_object().is_some_and(|ops| {
                ops.values().any(|keys| {
                    keys.as_object()
                        .is_some_and(|k| k.keys().any(|k| k.eq_ignore_ascii_case("ec2:Vpc")))
                })
            });
            if statement["Effect"] != "Allow" || !on_everything || has_vpc_condition {
                continue;
            }
            let actions: Vec<String> = strings(&statement["Action"])
                .into_iter()
                .filter(|a| is_ec2_mutation(a))
                .collect();
            if !actions.is_empty() {
                out.push((policy.name.clone(), inline, doc.clone(), index, actions));
            }
        }
    }
    out
}

/// The policy with the statement's EC2 mutations confined to `vpc_arn` where `ec2:Vpc`
/// applies (subnets, network interfaces, security groups), and the mutations it cannot
/// confine that way, which keep `Resource: *`.
fn confined_policy(
    doc: &Value,
    index: usize,
    actions: &[String],
    region: &str,
    account: &str,
    vpc_arn: &str,
) -> (Value, Vec<String>) {
    let arn = |kind: &str| format!("arn:aws:ec2:{region}:{account}:{kind}/*");
    let has = |name: &str| actions.iter().any(|a| a.eq_ignore_ascii_case(name));
    let in_vpc = json!({ "ArnEquals": { "ec2:Vpc": vpc_arn } });
    let mut fixed = doc.clone();
    let mut statements = match &doc["Statement"] {
        Value::Array(items) => items.clone(),
        s => vec![s.clone()],
    };
    let original = statements[index].clone();
    let kept: Vec<String> = strings(&original["Action"])
        .into_iter()
        .filter(|a| !is_ec2_mutation(a))
        .collect();
    let mut added = Vec::new();
    if has("ec2:RunInstances") {
        added.push(
            json!({"Sid": "LaunchOnlyIntoTheDesignatedVpc", "Effect": "Allow",
            "Action": "ec2:RunInstances",
            "Resource": [arn("subnet"), arn("network-interface"), arn("security-group")],
            "Condition": in_vpc}),
        );
        added.push(json!({"Sid": "LaunchResourcesThatAreInNoVpc", "Effect": "Allow",
            "Action": "ec2:RunInstances",
            "Resource": [arn("instance"), arn("volume"), arn("key-pair"), arn("launch-template"),
                format!("arn:aws:ec2:{region}::image/*"), format!("arn:aws:ec2:{region}::snapshot/*")]}));
    }
    if has("ec2:CreateSecurityGroup") {
        added.push(
            json!({"Sid": "SecurityGroupsOnlyInTheDesignatedVpc", "Effect": "Allow",
            "Action": "ec2:CreateSecurityGroup",
            "Resource": [vpc_arn, arn("security-group")]}),
        );
    }
    let rules: Vec<&str> = [
        "ec2:AuthorizeSecurityGroupIngress",
        "ec2:AuthorizeSecurityGroupEgress",
    ]
    .into_iter()
    .filter(|a| has(a))
    .collect();
    if !rules.is_empty() {
        added.push(
            json!({"Sid": "SecurityGroupRulesOnlyInTheDesignatedVpc", "Effect": "Allow",
            "Action": rules, "Resource": arn("security-group"), "Condition": in_vpc}),
        );
    }
    let confined = [
        "ec2:RunInstances",
        "ec2:CreateSecurityGroup",
        "ec2:AuthorizeSecurityGroupIngress",
        "ec2:AuthorizeSecurityGroupEgress",
    ];
    let unconfined: Vec<String> = actions
        .iter()
        .filter(|a| !confined.iter().any(|c| c.eq_ignore_ascii_case(a)))
        .cloned()
        .collect();
    let mut rest: Vec<String> = kept;
    rest.extend(unconfined.iter().cloned());
    let mut replacement = Vec::new();
    if !rest.is_empty() {
        let mut statement = original.clone();
        statement["Action"] = json!(rest);
        replacement.push(statement);
    }
    replacement.extend(added);
    statements.splice(index..=index, replacement);
    fixed["Statement"] = json!(statements);
    (fixed, unconfined)
}

fn vpc_scope(
    eval: &mut Evaluation,
    account: &IamSnapshot,
    pack: &RulePack,
    scope: &Scope,
    region: &str,
) {
    let Some(spec) = &pack.vpc_scope_recommendation else {
        return;
    };
    let plane = scope.data_planes.iter().find(|p| {
        p.pack == pack.name
            && p.account_id
                .as_ref()
                .is_none_or(|a| a.0 == account.account_id)
    });
    let (region, vpc) = match plane {
        Some(p) => (p.region.0.clone(), p.vpc_id.0.clone()),
        None => (region.to_string(), "<VpcId>".to_string()),
    };
    let vpc_arn = format!("arn:aws:ec2:{region}:{}:vpc/{vpc}", account.account_id);
    let Some(mut sink) = Sink::new(
        eval,
        pack,
        catalogue::IAM_VPC_SCOPE_RECOMMENDED,
        finding_scope(account),
    ) else {
        return;
    };
    for role in account
        .roles
        .iter()
        .filter(|r| name_matches(&spec.role_name, &r.name))
    {
        sink.evaluated(&role.arn);
        let Some((policy, inline, doc, index, actions)) = unconfined_ec2(role).into_iter().next()
        else {
            continue;
        };
        let (recommended, unconfined) = confined_policy(
            &doc,
            index,
            &actions,
            &region,
            &account.account_id,
            &vpc_arn,
        );
        let document = recommended.to_string().replace('\'', r"'\''");
        let command = match inline {
            true => format!(
                "aws iam put-role-policy --role-name {} --policy-name {policy} --policy-document '{document}'",
                role.name
            ),
            false => format!(
                "aws iam create-policy-version --policy-arn {policy} --set-as-default --policy-document '{document}'"
            ),
        };
        let guide = spec
            .guide
            .as_deref()
            .map(|g| format!(" The guide: \"{g}\"."))
            .unwrap_or_default();
        let placeholder = match plane {
            Some(_) => String::new(),
            None => " Replace <VpcId> with the designated VPC (or declare it under data_planes: in the config).".into(),
        };
        sink.report(
            &role.arn,
            format!(
                "recommendation, not drift: role {} may use {} EC2 mutations on any resource in the account, not only in the designated VPC ({vpc})",
                role.name,
                actions.len()
            ),
            format!(
                "Optional, beyond the vendor's policy: confine them with the ec2:Vpc condition key: {command}.{placeholder} Agree the change with the vendor first: its control plane uses this role.{guide}"
            ),
            json!({
                "recommendation": true,
                "policy": policy,
                "statement": index,
                "actions": actions,
                "vpc": vpc_arn,
                "recommended_policy": recommended,
                "not_confined_by_vpc": unconfined,
                "why_not_confined": "AWS evaluates ec2:Vpc on subnets, network interfaces and security groups; these actions act on instances, volumes or tags, so they keep Resource \"*\" (confine them with resource tags if you need to)",
            }),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::IamPolicy;
    use crate::values::pins::PinSet;

    const ACCOUNT: &str = "123456789012";
    const HOST: &str = "oidc.eks.us-east-1.amazonaws.com/id/ABC";

    fn pack(yaml: &str) -> RulePack {
        let text = format!("name: t\n{yaml}");
        RulePack::parse(std::path::Path::new("t.yaml"), &text).unwrap()
    }

    fn oidc_role(name: &str, operator: &str, subject: &str) -> IamRole {
        IamRole {
            name: name.into(),
            arn: format!("arn:aws:iam::{ACCOUNT}:role/{name}"),
            trust_policy: Some(
                json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                    "Principal": {"Federated": format!("arn:aws:iam::{ACCOUNT}:oidc-provider/{HOST}")},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {operator: {format!("{HOST}:sub"): subject}}}]})
                .to_string(),
            ),
            ..Default::default()
        }
    }

    fn userflyterole_attached(mut role: IamRole) -> IamRole {
        role.attached_policies.push(IamPolicy {
            name: format!("arn:aws:iam::{ACCOUNT}:policy/union/userflyterole"),
            document: r#"{"Statement":[]}"#.into(),
        });
        role
    }

    fn snapshot(roles: Vec<IamRole>, providers: Option<Vec<String>>) -> Snapshot {
        Snapshot {
            iam: vec![IamSnapshot {
                account_id: ACCOUNT.into(),
                roles,
                oidc_providers: providers,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn run(snapshot: &Snapshot, pack: &RulePack, scope: &Scope) -> Evaluation {
        let mut eval = Evaluation::default();
        evaluate(&mut eval, snapshot, pack, scope);
        eval
    }

    fn rules(eval: &Evaluation) -> Vec<(&str, &str)> {
        eval.findings
            .iter()
            .map(|f| (f.rule_id.as_str(), f.resource_id.as_str()))
            .collect()
    }

    const CUSTOM: &str = "custom_roles:\n  required_policy: userflyterole\n  exclude_role_names: [\"*-userflyterole\"]\n";

    #[test]
    fn a_custom_role_without_userflyterole_gets_the_attach_command_with_the_known_arn() {
        let provider = format!("arn:aws:iam::{ACCOUNT}:oidc-provider/{HOST}");
        let good = userflyterole_attached(oidc_role(
            "good",
            "StringEquals",
            "system:serviceaccount:p-development:default",
        ));
        let bare = oidc_role(
            "bare",
            "StringEquals",
            "system:serviceaccount:p-staging:default",
        );
        // The global role is excluded even though its trust looks alike.
        let global = oidc_role(
            "acme-userflyterole",
            "StringLike",
            "system:serviceaccount:*:default",
        );
        let eval = run(
            &snapshot(vec![good, bare, global], Some(vec![provider])),
            &pack(CUSTOM),
            &Scope::default(),
        );
        let bare_arn = format!("arn:aws:iam::{ACCOUNT}:role/bare");
        assert_eq!(
            rules(&eval),
            vec![("iam.custom_role_policy", bare_arn.as_str())]
        );
        assert!(eval.findings[0].remediation.starts_with(&format!(
            "aws iam attach-role-policy --role-name bare --policy-arn arn:aws:iam::{ACCOUNT}:policy/union/userflyterole"
        )));
        assert_eq!(eval.evaluated["iam.custom_role_trust"], 2);
    }

    #[test]
    fn a_missing_provider_a_wildcard_subject_and_an_uncollected_provider_list_fail_the_trust() {
        let role = userflyterole_attached(oidc_role(
            "wide",
            "StringLike",
            "system:serviceaccount:*:default",
        ));
        let eval = run(
            &snapshot(vec![role.clone()], Some(vec![])),
            &pack(CUSTOM),
            &Scope::default(),
        );
        assert_eq!(rules(&eval).len(), 1);
        let problems = eval.findings[0].details["problems"].as_array().unwrap();
        assert_eq!(problems.len(), 3, "{problems:?}"); // no provider, StringLike, wildcard
        let fix = &eval.findings[0].remediation;
        assert!(fix.contains(
            "create-open-id-connect-provider --url https://oidc.eks.us-east-1.amazonaws.com/id/ABC"
        ));
        assert!(fix.contains(r#""StringEquals":{"oidc.eks.us-east-1.amazonaws.com/id/ABC:sub":["system:serviceaccount:<Project>-<Domain>:default"]}"#), "{fix}");

        let unverified = run(
            &snapshot(vec![role], None),
            &pack(CUSTOM),
            &Scope::default(),
        );
        assert_eq!(unverified.findings[0].details["unverified"], true);
        assert!(unverified.findings[0]
            .message
            .contains("could not be verified"));
    }

    #[test]
    fn roles_not_trusted_for_service_accounts_are_not_custom_roles() {
        let mut other = oidc_role("ci", "StringEquals", "repo:acme/app:ref:refs/heads/main");
        other.name = "ci".into();
        let eval = run(
            &snapshot(vec![other], Some(vec![])),
            &pack(CUSTOM),
            &Scope::default(),
        );
        assert!(eval.findings.is_empty());
        assert!(!eval.evaluated.contains_key("iam.custom_role_policy"));
    }

    const PINNED: &str =
        "pinned_roles:\n  - role_name: \"*-adminflyterole\"\n    guide: do not alter\n";

    fn admin() -> IamRole {
        IamRole {
            name: "acme-adminflyterole".into(),
            arn: format!("arn:aws:iam::{ACCOUNT}:role/acme-adminflyterole"),
            trust_policy: Some(r#"{"Statement":[]}"#.into()),
            ..Default::default()
        }
    }

    #[test]
    fn first_sight_pins_only_when_pins_persist_and_a_later_change_is_drift() {
        let snap = snapshot(vec![admin()], None);
        let untracked = run(&snap, &pack(PINNED), &Scope::default());
        assert!(untracked.new_pins.is_empty() && untracked.findings.is_empty());
        assert!(untracked.notes[0].contains("not tracked"));

        let mut scope = Scope {
            pins: PinSet {
                persisted: true,
                ..Default::default()
            },
            ..Default::default()
        };
        let first = run(&snap, &pack(PINNED), &scope);
        assert_eq!(first.new_pins.len(), 1);
        assert!(first.findings.is_empty());

        let pin = first.new_pins[0].clone();
        scope.pins.pins.insert(pin.role_arn.clone(), pin);
        assert!(run(&snap, &pack(PINNED), &scope).findings.is_empty());
        let mut edited = admin();
        edited.tags.insert("k".into(), "v".into());
        let drift = run(&snapshot(vec![edited], None), &pack(PINNED), &scope);
        assert_eq!(
            rules(&drift),
            vec![("iam.pinned_role_drift", admin().arn.as_str())]
        );
        assert_eq!(drift.findings[0].details["changes"][0]["part"], "tag k");
        assert!(drift.new_pins.is_empty());
    }

    #[test]
    fn a_switched_on_feature_reports_the_missing_grants_and_an_off_one_nothing() {
        let yaml = "role_rules:\n  iam.feature_policy_missing:\n    features: [ssm]\nfeatures:\n  - name: ssm\n    role_name: app\n    policies: [ssm.json]\n  - name: off\n    role_name: app\n    policies: [ssm.json]\n";
        let mut p = pack(yaml);
        let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ssm:GetDocument","ssmmessages:OpenDataChannel"],"Resource":"*"}]}"#;
        p.load_sources(
            std::path::Path::new("t.yaml"),
            &|_: &std::path::Path| Ok(policy.to_string()),
            &|_: &str| None,
        )
        .unwrap();
        let role = IamRole {
            name: "app".into(),
            arn: format!("arn:aws:iam::{ACCOUNT}:role/app"),
            inline_policies: vec![IamPolicy {
                name: "p".into(),
                document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ssm:GetDocument","Resource":"*"}]}"#.into(),
            }],
            ..Default::default()
        };
        let eval = run(&snapshot(vec![role], None), &p, &Scope::default());
        assert_eq!(rules(&eval).len(), 1);
        assert_eq!(eval.findings[0].details["feature"], "ssm");
        let missing = &eval.findings[0].details["missing"][0]["actions"];
        assert_eq!(missing, &json!(["ssmmessages:opendatachannel"]));
        assert!(eval.findings[0]
            .remediation
            .contains("aws iam put-role-policy --role-name app"));
    }

    #[test]
    fn ec2_mutations_on_everything_get_an_info_recommendation_confined_to_the_declared_vpc() {
        let p = pack("vpc_scope_recommendation:\n  role_name: VPCSetupRole\n");
        let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Action": ["ec2:RunInstances", "ec2:TerminateInstances", "ec2:DescribeVpcs",
                "ec2:CreateSecurityGroup", "ec2:AuthorizeSecurityGroupIngress", "s3:GetObject"],
            "Resource": "*"}]});
        let role = IamRole {
            name: "VPCSetupRole".into(),
            arn: format!("arn:aws:iam::{ACCOUNT}:role/VPCSetupRole"),
            inline_policies: vec![IamPolicy {
                name: "VPCSetupPolicy".into(),
                document: policy.to_string(),
            }],
            ..Default::default()
        };
        let eval = run(&snapshot(vec![role.clone()], None), &p, &Scope::default());
        assert_eq!(
            rules(&eval),
            vec![("iam.vpc_scope_recommended", role.arn.as_str())]
        );
        let f = &eval.findings[0];
        assert_eq!(f.severity, crate::finding::Severity::Info);
        assert!(f.message.starts_with("recommendation, not drift"));
        let recommended = &f.details["recommended_policy"]["Statement"];
        // The unconfinable and non-mutating actions stay on "*"; the rest are confined.
        assert_eq!(
            recommended[0]["Action"],
            json!(["ec2:DescribeVpcs", "s3:GetObject", "ec2:TerminateInstances"])
        );
        let vpc = format!("arn:aws:ec2:us-east-1:{ACCOUNT}:vpc/<VpcId>");
        assert_eq!(
            recommended[1]["Condition"]["ArnEquals"]["ec2:Vpc"],
            json!(vpc)
        );
        assert_eq!(
            f.details["not_confined_by_vpc"],
            json!(["ec2:TerminateInstances"])
        );
        assert!(f.remediation.contains(
            "aws iam put-role-policy --role-name VPCSetupRole --policy-name VPCSetupPolicy"
        ));

        // Already confined: nothing to recommend.
        let mut confined = role;
        confined.inline_policies[0].document = f.details["recommended_policy"].to_string();
        let mut only_confinable = f.details["recommended_policy"].clone();
        only_confinable["Statement"][0]["Action"] = json!(["ec2:DescribeVpcs"]);
        confined.inline_policies[0].document = only_confinable.to_string();
        let eval = run(&snapshot(vec![confined], None), &p, &Scope::default());
        assert!(eval.findings.is_empty(), "{:?}", eval.findings);
    }

    #[test]
    fn an_unknown_feature_or_policy_set_is_an_error_naming_the_field() {
        let mut p = pack("role_rules:\n  iam.feature_policy_missing:\n    features: [nope]\n");
        let err = apply_switches(&mut p, std::path::Path::new("config.yaml")).unwrap_err();
        assert_eq!(
            err.field,
            "rule_overrides.iam.feature_policy_missing.features"
        );
        let mut p = pack("role_rules:\n  iam.feature_policy_missing:\n    policy_set: nope\n");
        let err = apply_switches(&mut p, std::path::Path::new("config.yaml")).unwrap_err();
        assert_eq!(
            err.field,
            "rule_overrides.iam.feature_policy_missing.policy_set"
        );
    }

    #[test]
    fn project_domain_subjects_are_told_from_wildcards_and_other_accounts() {
        assert!(is_project_domain_subject(
            "system:serviceaccount:flytesnacks-development:default"
        ));
        assert!(!is_project_domain_subject(
            "system:serviceaccount:*:default"
        ));
        assert!(!is_project_domain_subject(
            "system:serviceaccount:flytesnacks-development:admin"
        ));
        assert!(!is_project_domain_subject(
            "system:serviceaccount:kube:default"
        ));
    }
}
