//! IAM rules: the roles a pack expects exist, grant exactly the vendor's current policy, and
//! trust only the vendor. Pure: expectations arrive with their files already read, and the
//! roles come from the snapshot.
//!
//! What is compared is what the policies *grant*, never their text (see [`crate::iam`]): a
//! role whose statements are split, merged, reordered or re-cased has not drifted. A role's
//! grant is the union of its inline and attached policies, minus its explicit denies.
//!
//! Fail closed: a role document that cannot be parsed, or an attached policy whose document
//! AWS did not return, makes the affected rules report that the role could not be verified.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::{json, Value};

use crate::iam::{
    compare_trust, effective_grants, excess, group_by_resource, missing_with_reasons, pattern,
    read_template, remediation, unknown_value, Grant, MissingReason, PolicyDocument, StatementRef,
    TemplateContext, TrustOptions,
};
use crate::input::InputError;
use crate::snapshot::{IamRole, IamSnapshot, Snapshot};

use super::catalogue;
use super::pack::{PolicyMode, RoleExpectation, RulePack};
use super::{Evaluation, FindingScope, Sink};

/// The region label of IAM findings and scans: IAM is global.
pub const GLOBAL_REGION: &str = "global";

/// An expectation resolved for one account and region.
#[derive(Debug, Clone)]
pub struct ExpectedRole {
    /// The role name from the template, when the pack does not give one.
    pub template_role_name: Option<String>,
    pub trust_policy: Option<PolicyDocument>,
    pub policies: Vec<PolicyDocument>,
    /// Parameters left unknown (an unset environment variable).
    pub unknown_parameters: BTreeSet<String>,
}

/// Builds the expected role for `account_id` and `region` from the expectation's files.
/// Errors name the file, and the line and field where known.
pub fn resolve_expected(
    role: &RoleExpectation,
    account_id: &str,
    region: &str,
) -> Result<ExpectedRole, InputError> {
    let sources = &role.sources;
    if let Some(template) = &sources.template {
        let mut context = TemplateContext::new(region, account_id);
        context.parameters = sources.parameters.clone();
        context.unknown_parameters = sources.unknown_parameters.clone();
        let parsed = read_template(&template.text, &context).map_err(|e| {
            InputError {
                file: template.path.clone(),
                line: e.line,
                column: e.column,
                field: e.path.clone(),
                message: e.message.clone(),
            }
            .located_in(&template.text)
        })?;
        let chosen = match &role.template_role {
            Some(logical_id) => parsed.roles.iter().find(|r| &r.logical_id == logical_id),
            None if parsed.roles.len() == 1 => parsed.roles.first(),
            None => None,
        };
        let Some(chosen) = chosen else {
            let ids: Vec<&str> = parsed.roles.iter().map(|r| r.logical_id.as_str()).collect();
            return Err(InputError::file(
                &template.path,
                match &role.template_role {
                    Some(id) => {
                        format!("no AWS::IAM::Role with logical id {id:?} (roles: {ids:?})")
                    }
                    None if ids.is_empty() => "the template defines no AWS::IAM::Role".to_string(),
                    None => format!(
                        "the template has {} roles ({ids:?}): set template_role",
                        ids.len()
                    ),
                },
            ));
        };
        if !chosen.external_managed_policy_arns.is_empty() {
            return Err(InputError::file(
                &template.path,
                format!(
                    "role {} attaches managed policies the template does not define ({}), so its grants cannot be known",
                    chosen.logical_id,
                    chosen.external_managed_policy_arns.join(", ")
                ),
            ));
        }
        return Ok(ExpectedRole {
            template_role_name: Some(chosen.role_name.clone()),
            trust_policy: Some(chosen.trust_policy.clone()),
            policies: chosen.policies.iter().map(|p| p.document.clone()).collect(),
            unknown_parameters: sources.unknown_parameters.clone(),
        });
    }
    let parse = |file: &super::pack::SourceFile| -> Result<PolicyDocument, InputError> {
        let text = substitute(&file.text, role, account_id, region)
            .map_err(|message| InputError::file(&file.path, message))?;
        PolicyDocument::parse(&text).map_err(|e| policy_input_error(&file.path, &text, &e))
    };
    // An identity policy names no principal: one that does is a trust or resource policy
    // listed in the wrong place, and IAM would refuse to attach it.
    let parse_identity = |file: &super::pack::SourceFile| -> Result<PolicyDocument, InputError> {
        let document = parse(file)?;
        match document
            .statements
            .iter()
            .position(|s| s.principal.is_some())
        {
            None => Ok(document),
            Some(index) => {
                let field = format!("Statement[{index}].Principal");
                Err(InputError {
                    field,
                    ..InputError::file(
                        &file.path,
                        "an identity policy names no principal (a trust policy goes under `trust_policy`)",
                    )
                }
                .located_in_json(&file.text))
            }
        }
    };
    Ok(ExpectedRole {
        template_role_name: None,
        trust_policy: sources.trust_policy.as_ref().map(parse).transpose()?,
        policies: sources
            .policies
            .iter()
            .map(parse_identity)
            .collect::<Result<_, _>>()?,
        unknown_parameters: sources.unknown_parameters.clone(),
    })
}

/// A policy file's error with its position: the parser's own for a syntax error, else the
/// line of the offending field in `text`.
fn policy_input_error(file: &Path, text: &str, e: &crate::iam::PolicyError) -> InputError {
    let (line, column) = match e {
        crate::iam::PolicyError::Syntax { line, column, .. } => (Some(*line), Some(*column)),
        _ => (None, None),
    };
    InputError {
        file: file.to_path_buf(),
        line,
        column,
        field: e.field_path(),
        message: e.problem(),
    }
    .located_in_json(text)
}

/// Fills the placeholders vendors' policy files use, as their guides ask people to by hand:
/// `${AWS::Region}`, `<REGION>` or `<Region>`; `${AWS::AccountId}`, `${AWS::AccountID}`,
/// `<ACCOUNT_ID>` or `<AccountId>`; `${AWS::Partition}`; and each parameter as `${Name}`
/// or `<Name>`. A placeholder left without a value is an error naming it.
fn substitute(
    text: &str,
    role: &RoleExpectation,
    account_id: &str,
    region: &str,
) -> Result<String, String> {
    let mut out = text.to_string();
    for (placeholders, value) in [
        (&["${AWS::Region}", "<REGION>", "<Region>"][..], region),
        (
            &[
                "${AWS::AccountId}",
                "${AWS::AccountID}",
                "<ACCOUNT_ID>",
                "<AccountId>",
            ][..],
            account_id,
        ),
        (&["${AWS::Partition}"][..], "aws"),
    ] {
        for placeholder in placeholders {
            out = out.replace(placeholder, value);
        }
    }
    for (name, value) in &role.sources.parameters {
        out = out
            .replace(&format!("${{{name}}}"), value)
            .replace(&format!("<{name}>"), value);
    }
    for name in &role.sources.unknown_parameters {
        let unknown = unknown_value(name);
        out = out
            .replace(&format!("${{{name}}}"), &unknown)
            .replace(&format!("<{name}>"), &unknown);
    }
    match leftover_placeholder(&out) {
        Some(name) => Err(format!(
            "placeholder {name} has no value: set it under `parameters`"
        )),
        None => Ok(out),
    }
}

/// The first `<Word>`, `${Word}` or `${AWS::Word}` placeholder in `text`, if any. IAM's own
/// policy variables (`${aws:username}`, `${s3:prefix}`) are not placeholders.
fn leftover_placeholder(text: &str) -> Option<String> {
    let is_word =
        |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    for (open, close) in [("<", ">"), ("${", "}")] {
        let mut rest = text;
        while let Some(start) = rest.find(open) {
            let after = &rest[start + open.len()..];
            if let Some(end) = after.find(close) {
                let name = &after[..end];
                if is_word(name)
                    || (open == "${" && name.strip_prefix("AWS::").is_some_and(is_word))
                {
                    return Some(format!("{open}{name}{close}"));
                }
            }
            rest = after;
        }
    }
    None
}

/// Evaluates every role expectation of `pack` on every account whose IAM was collected.
pub fn evaluate_pack(eval: &mut Evaluation, snapshot: &Snapshot, pack: &RulePack) {
    for account in snapshot.iam.iter().filter(|a| a.error.is_none()) {
        let default_region = snapshot
            .regions
            .iter()
            .filter(|r| r.account_id == account.account_id)
            .map(|r| r.region.as_str())
            .min()
            .unwrap_or("us-east-1");
        for expectation in &pack.roles {
            let region = expectation
                .region
                .as_ref()
                .map(|r| r.0.as_str())
                .unwrap_or(default_region);
            evaluate_expectation(eval, account, pack, expectation, region);
        }
    }
}

fn evaluate_expectation(
    eval: &mut Evaluation,
    account: &IamSnapshot,
    pack: &RulePack,
    expectation: &RoleExpectation,
    region: &str,
) {
    let scope = || FindingScope {
        account_id: account.account_id.clone(),
        region: GLOBAL_REGION.to_string(),
        vpc_id: None,
    };
    let expected = match resolve_expected(expectation, &account.account_id, region) {
        Ok(expected) => expected,
        Err(err) => {
            // Validated when the pack was loaded; reaching here means the account's values
            // broke it. The role cannot be verified, so say so rather than pass it.
            if let Some(mut sink) = Sink::new(
                eval,
                pack,
                catalogue::IAM_POLICY_MISSING_PERMISSIONS,
                scope(),
            ) {
                sink.evaluated(&expectation.label());
                sink.report(
                    &expectation.label(),
                    format!(
                        "The expected policy for {} could not be built: {err}",
                        expectation.label()
                    ),
                    "Fix the rule pack's role expectation".into(),
                    json!({ "source": expectation.source_label() }),
                );
            }
            return;
        }
    };
    let name_pattern = expectation
        .role_name
        .clone()
        .or_else(|| expected.template_role_name.clone())
        .unwrap_or_default();
    let matched: Vec<&IamRole> = account
        .roles
        .iter()
        .filter(|r| pattern::matches(&name_pattern, &r.name, true))
        .collect();

    if let Some(mut sink) = Sink::new(eval, pack, catalogue::IAM_ROLE_MISSING, scope()) {
        let resource = if pattern::matches(&name_pattern, &name_pattern, false)
            && !name_pattern.contains(['*', '?'])
        {
            format!("arn:aws:iam::{}:role/{name_pattern}", account.account_id)
        } else {
            name_pattern.clone()
        };
        sink.evaluated(&resource);
        if matched.is_empty() {
            sink.report(
                &resource,
                format!(
                    "Role {name_pattern} does not exist in account {}; {} expects it",
                    account.account_id,
                    expectation.source_label()
                ),
                format!(
                    "Create the role from {} (for a CloudFormation template: aws cloudformation create-stack \
                     --template-body file://<template> --capabilities CAPABILITY_NAMED_IAM)",
                    expectation.source_label()
                ),
                json!({ "role_name": name_pattern, "source": expectation.source_label() }),
            );
        }
    }
    for role in matched {
        check_role(eval, pack, expectation, &expected, role, scope());
    }
}

/// Where one of a role's documents lives, so a fix can name the command that changes it.
#[derive(Debug, Clone)]
enum DocumentHome {
    Inline { policy_name: String },
    Managed { arn: String },
    Boundary { arn: String },
}

/// A role's own documents, parsed, by the label reports use for them (`inline policy x`,
/// `managed policy arn:...`, `permissions boundary Name`).
struct RoleDocuments {
    grants: crate::iam::EffectiveGrants,
    homes: BTreeMap<String, (DocumentHome, String)>,
}

/// The role's own documents, parsed, and its permissions boundary; `Err` names what could
/// not be read (the rules then fail closed).
fn actual_documents(role: &IamRole) -> Result<RoleDocuments, String> {
    if !role.unresolved_policies.is_empty() {
        return Err(format!(
            "the documents of attached policies {} were not returned by AWS",
            role.unresolved_policies.join(", ")
        ));
    }
    let mut homes = BTreeMap::new();
    let mut parsed = Vec::new();
    let sources = role
        .inline_policies
        .iter()
        .map(|p| {
            (
                format!("inline policy {}", p.name),
                DocumentHome::Inline {
                    policy_name: p.name.clone(),
                },
                &p.document,
            )
        })
        .chain(role.attached_policies.iter().map(|p| {
            (
                format!("managed policy {}", p.name),
                DocumentHome::Managed {
                    arn: p.name.clone(),
                },
                &p.document,
            )
        }));
    for (label, home, text) in sources {
        let document = PolicyDocument::parse(text).map_err(|e| format!("{label}: {e}"))?;
        parsed.push((label.clone(), document));
        homes.insert(label, (home, text.clone()));
    }
    let mut grants = crate::iam::EffectiveGrants::from_named_policies(
        parsed.iter().map(|(label, doc)| (label.as_str(), doc)),
    );
    if let Some(boundary) = &role.permissions_boundary {
        let name = boundary.name();
        let text = boundary.document.as_deref().ok_or_else(|| {
            format!(
                "the document of its permissions boundary {} was not returned by AWS",
                boundary.arn
            )
        })?;
        let document = PolicyDocument::parse(text)
            .map_err(|e| format!("permissions boundary {}: {e}", boundary.arn))?;
        grants = grants.with_boundary(name, &document);
        homes.insert(
            format!("permissions boundary {name}"),
            (
                DocumentHome::Boundary {
                    arn: boundary.arn.clone(),
                },
                text.to_string(),
            ),
        );
    }
    Ok(RoleDocuments { grants, homes })
}

/// Quotes `text` for a POSIX shell command line.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The commands that add `grants` to role `name` within IAM's limits (see
/// [`crate::iam::remediation`]).
fn grant_commands(role: &IamRole, grants: &[Grant]) -> (Vec<String>, Vec<String>) {
    let name = &role.name;
    let inline_in_use: usize = role
        .inline_policies
        .iter()
        .filter(|p| !p.name.starts_with(FIX_POLICY_PREFIX))
        .map(|p| remediation::iam_size(&p.document))
        .sum();
    let plan = remediation::plan(grants, inline_in_use, role.attached_policies.len());
    let documents = plan.documents();
    let commands = match &plan.placement {
        remediation::Placement::Inline(_) => vec![format!(
            "aws iam put-role-policy --role-name {name} --policy-name {FIX_POLICY_PREFIX}-1 --policy-document {}",
            shell_quote(&documents[0])
        )],
        remediation::Placement::Managed(_) => {
            // arn:<partition>:iam::<account>:role/<name>
            let mut parts = role.arn.split(':');
            let partition = parts.nth(1).unwrap_or("aws");
            let account = parts.nth(2).unwrap_or_default();
            documents
                .iter()
                .enumerate()
                .flat_map(|(n, document)| {
                    let policy = format!("{FIX_POLICY_PREFIX}-{name}-{}", n + 1);
                    [
                        format!(
                            "aws iam create-policy --policy-name {policy} --policy-document {}",
                            shell_quote(document)
                        ),
                        format!(
                            "aws iam attach-role-policy --role-name {name} --policy-arn arn:{partition}:iam::{account}:policy/{policy}"
                        ),
                    ]
                })
                .collect()
        }
    };
    (commands, plan.warnings)
}

/// The name (prefix) of the policies a fix adds.
const FIX_POLICY_PREFIX: &str = "vpc-auditor-missing-grants";

/// The commands that remove the statements `refs` from the role's documents: the policy
/// rewritten without them, or deleted/detached when nothing would be left.
fn remove_statement_commands(
    role: &IamRole,
    documents: &RoleDocuments,
    refs: &BTreeSet<&StatementRef>,
) -> Vec<String> {
    let name = &role.name;
    let mut by_policy: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for r in refs {
        by_policy.entry(&r.policy).or_default().push(r.index);
    }
    let mut commands = Vec::new();
    for (label, indices) in by_policy {
        let Some((home, text)) = documents.homes.get(label) else {
            continue;
        };
        let rest = remediation::without_statements(text, &indices);
        let line = match (home, rest) {
            (_, Err(why)) => format!("# {label} could not be rewritten ({why}): remove Statement{indices:?} by hand"),
            (DocumentHome::Inline { policy_name }, Ok(Some(doc))) => format!(
                "aws iam put-role-policy --role-name {name} --policy-name {policy_name} --policy-document {}",
                shell_quote(&doc)
            ),
            (DocumentHome::Inline { policy_name }, Ok(None)) => {
                format!("aws iam delete-role-policy --role-name {name} --policy-name {policy_name}")
            }
            (DocumentHome::Managed { arn }, Ok(Some(doc))) if !arn.contains(":aws:policy/") => format!(
                "aws iam create-policy-version --policy-arn {arn} --set-as-default --policy-document {}",
                shell_quote(&doc)
            ),
            // AWS-managed policies cannot be edited, and an empty policy cannot exist.
            (DocumentHome::Managed { arn }, _) => {
                format!("aws iam detach-role-policy --role-name {name} --policy-arn {arn}")
            }
            (DocumentHome::Boundary { arn }, Ok(Some(doc))) => format!(
                "aws iam create-policy-version --policy-arn {arn} --set-as-default --policy-document {}",
                shell_quote(&doc)
            ),
            (DocumentHome::Boundary { .. }, Ok(None)) => {
                format!("aws iam delete-role-permissions-boundary --role-name {name}")
            }
        };
        commands.push(line);
    }
    commands
}

/// Reports the expected grants role `role` does not reliably give, each with its reason,
/// and a fix for each reason: an Allow to add (as IAM accepts it), the Deny statement to
/// remove, or the permission boundary to widen.
fn report_missing(
    sink: &mut Sink,
    role: &IamRole,
    source: &str,
    documents: &RoleDocuments,
    gaps: Vec<(Grant, MissingReason)>,
) {
    let (name, arn) = (&role.name, &role.arn);
    let mut not_granted: Vec<Grant> = Vec::new();
    let mut denied: Vec<Value> = Vec::new();
    let mut denied_when: Vec<Value> = Vec::new();
    let mut boundary: BTreeMap<String, Vec<Grant>> = BTreeMap::new();
    let mut hard_denies: BTreeSet<&StatementRef> = BTreeSet::new();
    let mut soft_denies: BTreeSet<&StatementRef> = BTreeSet::new();
    for (grant, reason) in &gaps {
        match reason {
            MissingReason::NotGranted | MissingReason::StricterConditions(_) => {
                not_granted.push(grant.clone())
            }
            MissingReason::Denied(denies) | MissingReason::DeniedWhen(denies) => {
                let conditional = matches!(reason, MissingReason::DeniedWhen(_));
                let statements: Vec<String> = denies
                    .iter()
                    .flat_map(|d| d.statements.iter().map(ToString::to_string))
                    .collect();
                let entry = json!({
                    "action": grant.action.to_string(),
                    "resource": grant.resource.to_string(),
                    "reason": reason.label(),
                    "deny_statements": statements,
                });
                let refs = denies.iter().flat_map(|d| &d.statements);
                if conditional {
                    denied_when.push(entry);
                    soft_denies.extend(refs);
                } else {
                    denied.push(entry);
                    hard_denies.extend(refs);
                }
            }
            MissingReason::OutsideBoundary(boundary_name) => boundary
                .entry(boundary_name.clone())
                .or_default()
                .push(grant.clone()),
        }
    }
    let actions: BTreeSet<String> = gaps.iter().map(|(g, _)| g.action.to_string()).collect();
    let resources: BTreeSet<String> = gaps.iter().map(|(g, _)| g.resource.to_string()).collect();
    let mut why = Vec::new();
    let mut fixes = vec![format!(
        "If the role comes from the vendor's CloudFormation stack, update the stack to {source}. Otherwise:"
    )];
    let mut details = json!({ "source": source, "missing_actions": actions });
    let mut warnings = Vec::new();
    if !not_granted.is_empty() {
        why.push(format!("{} not granted", not_granted.len()));
        let (commands, plan_warnings) = grant_commands(role, &not_granted);
        fixes.push("Add the missing grants:".into());
        fixes.extend(commands);
        warnings.extend(plan_warnings);
        details["missing"] = json!(group_by_resource(&not_granted));
    }
    if !denied.is_empty() {
        let names: Vec<String> = hard_denies.iter().map(ToString::to_string).collect();
        why.push(format!("{} denied by {}", denied.len(), names.join(", ")));
        fixes.push(format!(
            "An explicit Deny removes {} expected grant(s); an Allow cannot restore them. Remove {}:",
            denied.len(),
            names.join(", ")
        ));
        fixes.extend(remove_statement_commands(role, documents, &hard_denies));
        details["denied"] = json!(denied);
    }
    if !denied_when.is_empty() {
        let labels: BTreeSet<String> = gaps
            .iter()
            .filter(|(_, r)| matches!(r, MissingReason::DeniedWhen(_)))
            .map(|(_, r)| r.label())
            .collect();
        why.push(format!(
            "{} {}",
            denied_when.len(),
            labels.into_iter().collect::<Vec<_>>().join("; ")
        ));
        let names: Vec<String> = soft_denies.iter().map(ToString::to_string).collect();
        fixes.push(format!(
            "A conditional Deny removes {} expected grant(s) whenever its condition holds. If the vendor \
             needs them then too, narrow or remove {}:",
            denied_when.len(),
            names.join(", ")
        ));
        fixes.extend(remove_statement_commands(role, documents, &soft_denies));
        details["denied_when"] = json!(denied_when);
    }
    for (boundary_name, grants) in &boundary {
        why.push(format!(
            "{} removed by the permission boundary {boundary_name}",
            grants.len()
        ));
        let actions: BTreeSet<String> = grants.iter().map(|g| g.action.to_string()).collect();
        fixes.push(format!(
            "The permission boundary {boundary_name} does not allow {}: allow them in the boundary policy \
             (aws iam create-policy-version --set-as-default), or remove the boundary: \
             aws iam delete-role-permissions-boundary --role-name {name}",
            actions.into_iter().collect::<Vec<_>>().join(", ")
        ));
        details["permission_boundary"] = json!({
            "name": boundary_name,
            "reason": format!("removed by the permission boundary {boundary_name}"),
            "missing": group_by_resource(grants),
        });
    }
    if !warnings.is_empty() {
        fixes.push(format!("Note: {}", warnings.join("; ")));
        details["fix_warnings"] = json!(warnings);
    }
    sink.report(
        arn,
        format!(
            "Role {name} lacks {} permission(s) ({} action(s) on {} resource pattern(s)) of {source}: {}",
            gaps.len(),
            actions.len(),
            resources.len(),
            why.join("; ")
        ),
        fixes.join("\n"),
        details,
    );
}

fn check_role(
    eval: &mut Evaluation,
    pack: &RulePack,
    expectation: &RoleExpectation,
    expected: &ExpectedRole,
    role: &IamRole,
    scope: FindingScope,
) {
    let source = expectation.source_label();
    let arn = role.arn.clone();
    let name = &role.name;
    let want = effective_grants(&expected.policies);
    // The role's grants, computed once for both comparisons.
    let documents = actual_documents(role);
    let have = documents.as_ref().map(|d| &d.grants);
    let unverifiable = |sink: &mut Sink, why: &String| {
        sink.report(
            &arn,
            format!("Role {name} cannot be verified against {source}: {why}"),
            format!("Inspect the role: aws iam get-account-authorization-details --filter Role (role {name})"),
            json!({ "source": source, "error": why }),
        )
    };

    if let Some(mut sink) = Sink::new(
        eval,
        pack,
        catalogue::IAM_POLICY_MISSING_PERMISSIONS,
        scope.clone(),
    ) {
        sink.evaluated(&arn);
        match &documents {
            Err(why) => unverifiable(&mut sink, why),
            Ok(documents) => {
                let gaps = missing_with_reasons(&want, &documents.grants);
                if !gaps.is_empty() {
                    report_missing(&mut sink, role, &source, documents, gaps);
                }
            }
        }
    }

    let exact = expectation.mode == PolicyMode::Exact;
    if let Some(mut sink) = Sink::new(
        eval,
        pack,
        catalogue::IAM_POLICY_EXCESS_PERMISSIONS,
        scope.clone(),
    )
    .filter(|_| exact)
    {
        sink.evaluated(&arn);
        match &have {
            Err(why) => unverifiable(&mut sink, why),
            Ok(have) => {
                let extra = excess(&want, have);
                if !extra.is_empty() {
                    let groups = group_by_resource(&extra);
                    let actions: BTreeSet<String> =
                        extra.iter().map(|g| g.action.to_string()).collect();
                    sink.report(
                        &arn,
                        format!(
                            "Role {name} grants {} permission(s) beyond {source}, e.g. {}",
                            extra.len(),
                            describe(&extra[0])
                        ),
                        format!(
                            "Remove the extra grants from the role's policies (aws iam list-role-policies --role-name {name}; \
                             aws iam list-attached-role-policies --role-name {name}), or restore {source}"
                        ),
                        json!({ "source": source, "excess": groups, "excess_actions": actions }),
                    );
                }
            }
        }
    }

    if let Some(expected_trust) = &expected.trust_policy {
        let Some(mut sink) = Sink::new(eval, pack, catalogue::IAM_TRUST_POLICY_DRIFT, scope) else {
            return;
        };
        sink.evaluated(&arn);
        let parsed = role
            .trust_policy
            .as_deref()
            .ok_or_else(|| "the role has no trust policy".to_string())
            .and_then(|t| PolicyDocument::parse(t).map_err(|e| e.to_string()));
        let actual_trust = match parsed {
            Ok(doc) => doc,
            Err(why) => {
                sink.report(
                    &arn,
                    format!("Role {name}'s trust policy cannot be verified: {why}"),
                    format!("aws iam get-role --role-name {name}"),
                    json!({ "source": source, "error": why }),
                );
                return;
            }
        };
        let mut options = TrustOptions::default();
        if expected
            .unknown_parameters
            .iter()
            .any(|p| p.eq_ignore_ascii_case("ExternalId"))
        {
            options = options.with_unknown_external_id();
        }
        let drifts = compare_trust(expected_trust, &actual_trust, &options);
        let (notes, drifts): (Vec<_>, Vec<_>) =
            drifts.into_iter().partition(|d| d.is_informational());
        for note in &notes {
            sink.note(format!(
                "Role {name}: {} (the expected value is not configured)",
                note.message()
            ));
        }
        if !drifts.is_empty() {
            let messages: Vec<String> = drifts.iter().map(|d| d.message()).collect();
            sink.report(
                &arn,
                format!("Role {name}'s trust policy differs from {source}: {}", messages.join("; ")),
                format!(
                    "Restore the trust policy of {source}: aws iam update-assume-role-policy --role-name {name} \
                     --policy-document file://<the template's AssumeRolePolicyDocument>"
                ),
                json!({ "source": source, "drift": drifts }),
            );
        }
    }
}

fn describe(grant: &Grant) -> String {
    format!("{} on {}", grant.action, grant.resource)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::pack::{ExpectationSources, SourceFile};
    use crate::snapshot::IamPolicy;

    const ACCOUNT: &str = "111122223333";

    fn expectation(policy: &str, trust: Option<&str>) -> RoleExpectation {
        RoleExpectation {
            role_name: Some("vendor-role".into()),
            version: Some("v2".into()),
            sources: ExpectationSources {
                policies: vec![SourceFile {
                    path: "policy.json".into(),
                    text: policy.into(),
                }],
                trust_policy: trust.map(|t| SourceFile {
                    path: "trust.json".into(),
                    text: t.into(),
                }),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn pack(expectations: Vec<RoleExpectation>) -> RulePack {
        RulePack {
            name: "vendor".into(),
            roles: expectations,
            ..Default::default()
        }
    }

    fn account(roles: Vec<IamRole>) -> Snapshot {
        Snapshot {
            schema_version: 1,
            iam: vec![IamSnapshot {
                account_id: ACCOUNT.into(),
                roles,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn role(name: &str, policies: &[&str], trust: &str) -> IamRole {
        IamRole {
            name: name.into(),
            arn: format!("arn:aws:iam::{ACCOUNT}:role/{name}"),
            trust_policy: Some(trust.into()),
            inline_policies: policies
                .iter()
                .enumerate()
                .map(|(i, p)| IamPolicy {
                    name: format!("p{i}"),
                    document: p.to_string(),
                })
                .collect(),
            ..Default::default()
        }
    }

    const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":["ec2:DescribeVpcs","ec2:CreateTags"],"Resource":"*"},
        {"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::vendor-${AWS::AccountId}/*"}]}"#;
    const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
        "Principal":{"AWS":"arn:aws:iam::999988887777:root"},"Action":"sts:AssumeRole",
        "Condition":{"StringEquals":{"sts:ExternalId":"${ExternalId}"}}}]}"#;
    const ACTUAL_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
        "Principal":{"AWS":"999988887777"},"Action":"sts:AssumeRole",
        "Condition":{"StringEquals":{"sts:externalid":"s3cret-value"}}}]}"#;

    fn run(pack: &RulePack, snapshot: &Snapshot) -> Evaluation {
        let mut eval = Evaluation::default();
        evaluate_pack(&mut eval, snapshot, pack);
        eval
    }

    fn rules_fired(eval: &Evaluation) -> Vec<&str> {
        eval.findings.iter().map(|f| f.rule_id.as_str()).collect()
    }

    fn with_secret(mut e: RoleExpectation, value: Option<&str>) -> RoleExpectation {
        match value {
            Some(v) => {
                e.sources.parameters.insert("ExternalId".into(), v.into());
            }
            None => {
                e.sources.unknown_parameters.insert("ExternalId".into());
            }
        }
        e
    }

    #[test]
    fn reshaped_but_equal_policy_and_trust_yield_no_finding() {
        let reshaped = r#"{"Statement":[
            {"Effect":"Allow","Action":"s3:getobject","Resource":["arn:aws:s3:::vendor-111122223333/*"]},
            {"Effect":"Allow","Action":"EC2:CreateTags","Resource":"*"},
            {"Effect":"Allow","Action":"ec2:describeVpcs","Resource":"*"}]}"#;
        let pack = pack(vec![with_secret(
            expectation(POLICY, Some(TRUST)),
            Some("s3cret-value"),
        )]);
        let eval = run(
            &pack,
            &account(vec![role("vendor-role", &[reshaped], ACTUAL_TRUST)]),
        );
        assert!(eval.findings.is_empty(), "{:#?}", eval.findings);
        assert_eq!(eval.evaluated.get("iam.trust_policy_drift"), Some(&1));
        assert!(eval.notes.is_empty());
    }

    #[test]
    fn missing_role_fires_role_missing_with_its_arn() {
        let pack = pack(vec![expectation(POLICY, None)]);
        let eval = run(&pack, &account(vec![role("other", &[POLICY], TRUST)]));
        assert_eq!(rules_fired(&eval), ["iam.role_missing"]);
        assert_eq!(
            eval.findings[0].resource_id,
            "arn:aws:iam::111122223333:role/vendor-role"
        );
        assert_eq!(eval.findings[0].region, "global");
    }

    #[test]
    fn missing_action_is_listed_by_resource_and_the_fix_is_a_runnable_policy() {
        let stale = r#"{"Statement":[{"Effect":"Allow","Action":"ec2:DescribeVpcs","Resource":"*"},
            {"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::vendor-111122223333/*"}]}"#;
        let pack = pack(vec![expectation(POLICY, None)]);
        let eval = run(&pack, &account(vec![role("vendor-role", &[stale], TRUST)]));
        assert_eq!(rules_fired(&eval), ["iam.policy_missing_permissions"]);
        let f = &eval.findings[0];
        assert_eq!(f.details["missing"][0]["resource"], "*");
        assert_eq!(
            f.details["missing"][0]["actions"],
            json!(["ec2:createtags"])
        );
        assert!(f.message.contains("policy.json (v2)"), "{}", f.message);
        let line = f.remediation.lines().last().unwrap();
        let json_start = line.find('\'').unwrap();
        let doc: Value = serde_json::from_str(line[json_start + 1..line.len() - 1].trim()).unwrap();
        assert_eq!(doc["Statement"][0]["Action"], json!(["ec2:createtags"]));
    }

    #[test]
    fn added_iam_star_is_excess_and_at_least_mode_ignores_it() {
        let widened =
            r#"{"Statement":[{"Effect":"Allow","Action":"iam:*","Resource":"*"}]}"#.to_string();
        let pack_exact = pack(vec![expectation(POLICY, None)]);
        let snapshot = account(vec![role(
            "vendor-role",
            &[&POLICY.replace("${AWS::AccountId}", ACCOUNT), &widened],
            TRUST,
        )]);
        let eval = run(&pack_exact, &snapshot);
        assert_eq!(rules_fired(&eval), ["iam.policy_excess_permissions"]);
        assert_eq!(eval.findings[0].details["excess_actions"], json!(["iam:*"]));
        let mut lenient = expectation(POLICY, None);
        lenient.mode = PolicyMode::AtLeast;
        assert!(run(&pack(vec![lenient]), &snapshot).findings.is_empty());
    }

    #[test]
    fn explicit_deny_makes_a_granted_action_missing() {
        let deny = r#"{"Statement":[{"Effect":"Deny","Action":"ec2:CreateTags","Resource":"*"}]}"#;
        let pack = pack(vec![expectation(POLICY, None)]);
        let eval = run(
            &pack,
            &account(vec![role(
                "vendor-role",
                &[&POLICY.replace("${AWS::AccountId}", ACCOUNT), deny],
                TRUST,
            )]),
        );
        assert_eq!(rules_fired(&eval), ["iam.policy_missing_permissions"]);
    }

    #[test]
    fn trust_opened_to_another_account_is_drift_and_the_secret_never_appears() {
        let opened = r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":["999988887777","arn:aws:iam::444455556666:root"]},
            "Action":"sts:AssumeRole","Condition":{"StringEquals":{"sts:ExternalId":"wrong-value"}}}]}"#;
        let pack = pack(vec![with_secret(
            expectation(POLICY, Some(TRUST)),
            Some("s3cret-value"),
        )]);
        let eval = run(
            &pack,
            &account(vec![role(
                "vendor-role",
                &[&POLICY.replace("${AWS::AccountId}", ACCOUNT)],
                opened,
            )]),
        );
        assert_eq!(rules_fired(&eval), ["iam.trust_policy_drift"]);
        let shown = serde_json::to_string(&eval).unwrap();
        assert!(shown.contains("444455556666"), "{shown}");
        assert!(
            !shown.contains("s3cret-value") && !shown.contains("wrong-value"),
            "{shown}"
        );
    }

    #[test]
    fn trust_without_external_id_is_drift_even_when_the_value_is_unknown() {
        let no_condition = r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"999988887777"},"Action":"sts:AssumeRole"}]}"#;
        let pack = pack(vec![with_secret(expectation(POLICY, Some(TRUST)), None)]);
        let fixed_policy = POLICY.replace("${AWS::AccountId}", ACCOUNT);
        let eval = run(
            &pack,
            &account(vec![role("vendor-role", &[&fixed_policy], no_condition)]),
        );
        assert_eq!(rules_fired(&eval), ["iam.trust_policy_drift"]);
        // With the condition present, the unknown value is a note, not a finding.
        let eval = run(
            &pack,
            &account(vec![role("vendor-role", &[&fixed_policy], ACTUAL_TRUST)]),
        );
        assert!(eval.findings.is_empty(), "{:#?}", eval.findings);
        assert_eq!(eval.notes.len(), 1);
        assert!(
            eval.notes[0].contains("not compared") || eval.notes[0].contains("not configured"),
            "{}",
            eval.notes[0]
        );
    }

    #[test]
    fn unparseable_or_unresolved_role_documents_fail_closed() {
        let pack = pack(vec![expectation(POLICY, None)]);
        let mut broken = role("vendor-role", &["{not json"], TRUST);
        let eval = run(&pack, &account(vec![broken.clone()]));
        assert_eq!(
            rules_fired(&eval),
            [
                "iam.policy_missing_permissions",
                "iam.policy_excess_permissions"
            ]
        );
        broken.inline_policies.clear();
        broken
            .unresolved_policies
            .push("arn:aws:iam::aws:policy/Gone".into());
        let eval = run(&pack, &account(vec![broken]));
        assert!(eval
            .findings
            .iter()
            .all(|f| f.message.contains("cannot be verified")));
        assert_eq!(eval.findings.len(), 2);
    }

    #[test]
    fn vendor_placeholders_are_filled_and_a_missing_one_is_named() {
        let mut e = expectation(
            r#"{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":
                ["arn:aws:s3:::<BucketName>/${aws:username}/*","arn:aws:secretsmanager:<REGION>:<ACCOUNT_ID>:secret:x"]}]}"#,
            None,
        );
        let err = resolve_expected(&e, ACCOUNT, "eu-west-1").unwrap_err();
        assert!(err.message.contains("<BucketName>"), "{err}");
        e.sources
            .parameters
            .insert("BucketName".into(), "data".into());
        let expected = resolve_expected(&e, ACCOUNT, "eu-west-1").unwrap();
        let text = serde_json::to_string(&expected.policies).unwrap();
        assert!(
            text.contains("arn:aws:s3:::data/${aws:username}/*"),
            "{text}"
        );
        assert!(
            text.contains("arn:aws:secretsmanager:eu-west-1:111122223333:secret:x"),
            "{text}"
        );
    }

    #[test]
    fn oidc_trust_with_another_project_domain_is_drift() {
        let trust = r#"{"Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::111122223333:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABC"},
            "Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{
            "oidc.eks.us-east-1.amazonaws.com/id/ABC:sub":"system:serviceaccount:<Project>-<Domain>:default"}}}]}"#;
        let mut e = expectation(POLICY, Some(trust));
        e.sources
            .parameters
            .insert("Project".into(), "flytesnacks".into());
        e.sources
            .parameters
            .insert("Domain".into(), "development".into());
        let fixed = POLICY.replace("${AWS::AccountId}", ACCOUNT);
        let good = trust.replace("<Project>-<Domain>", "flytesnacks-development");
        let other = trust.replace("<Project>-<Domain>", "flytesnacks-production");
        let pack = pack(vec![e]);
        assert!(
            run(&pack, &account(vec![role("vendor-role", &[&fixed], &good)]))
                .findings
                .is_empty()
        );
        let eval = run(
            &pack,
            &account(vec![role("vendor-role", &[&fixed], &other)]),
        );
        assert_eq!(rules_fired(&eval), ["iam.trust_policy_drift"]);
        assert!(
            eval.findings[0].message.contains("flytesnacks-production"),
            "{}",
            eval.findings[0].message
        );
    }

    #[test]
    fn glob_role_name_checks_every_matching_role() {
        let mut e = expectation(POLICY, None);
        e.role_name = Some("flyte-*-role".into());
        let fixed = POLICY.replace("${AWS::AccountId}", ACCOUNT);
        let eval = run(
            &pack(vec![e]),
            &account(vec![
                role("flyte-dev-role", &[&fixed], TRUST),
                role("flyte-prod-role", &[r#"{"Statement":[]}"#], TRUST),
                role("unrelated", &[], TRUST),
            ]),
        );
        assert_eq!(eval.findings.len(), 1);
        assert!(eval.findings[0].resource_id.ends_with("flyte-prod-role"));
        assert_eq!(
            eval.evaluated.get("iam.policy_missing_permissions"),
            Some(&2)
        );
    }

    /// The JSON documents quoted in a remediation's command lines.
    fn quoted_documents(remediation: &str) -> Vec<String> {
        remediation
            .lines()
            .filter_map(|line| {
                let start = line.find("--policy-document '")? + "--policy-document '".len();
                Some(line[start..line.len() - 1].replace(r"'\''", "'"))
            })
            .collect()
    }

    #[test]
    fn gap_caused_by_a_deny_is_fixed_by_removing_the_deny_not_by_an_allow() {
        let fixed = POLICY.replace("${AWS::AccountId}", ACCOUNT);
        let guard = r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"sts:GetCallerIdentity","Resource":"*"},
            {"Sid":"NoTags","Effect":"Deny","Action":"ec2:CreateTags","Resource":"*"}]}"#;
        let eval = run(
            &pack(vec![expectation(POLICY, None)]),
            &account(vec![role("vendor-role", &[&fixed, guard], TRUST)]),
        );
        assert_eq!(rules_fired(&eval)[0], "iam.policy_missing_permissions");
        let f = &eval.findings[0];
        assert!(
            f.message
                .contains(r#"denied by statement "NoTags" (Statement[1]) of inline policy p1"#),
            "{}",
            f.message
        );
        assert_eq!(f.details["denied"][0]["reason"], "denied");
        assert!(f.details.get("missing").is_none(), "no Allow is proposed");
        assert!(
            !f.remediation.contains("vpc-auditor-missing-grants"),
            "{}",
            f.remediation
        );
        // The fix rewrites p1 without the Deny, and that policy is valid and keeps the rest.
        let docs = quoted_documents(&f.remediation);
        assert_eq!(docs.len(), 1, "{}", f.remediation);
        assert!(
            f.remediation.contains("--policy-name p1 "),
            "{}",
            f.remediation
        );
        let rewritten = PolicyDocument::parse(&docs[0]).unwrap();
        assert_eq!(rewritten.statements.len(), 1);
        let fixed_role = role("vendor-role", &[&fixed, &docs[0]], TRUST);
        let after = run(
            &pack(vec![expectation(POLICY, None)]),
            &account(vec![fixed_role]),
        );
        assert!(!rules_fired(&after).contains(&"iam.policy_missing_permissions"));
        // A Deny that is the policy's only statement: the policy is deleted, not emptied.
        let only = r#"{"Statement":{"Effect":"Deny","Action":"ec2:CreateTags","Resource":"*"}}"#;
        let eval = run(
            &pack(vec![expectation(POLICY, None)]),
            &account(vec![role("vendor-role", &[&fixed, only], TRUST)]),
        );
        assert!(
            eval.findings[0]
                .remediation
                .contains("aws iam delete-role-policy --role-name vendor-role --policy-name p1"),
            "{}",
            eval.findings[0].remediation
        );
    }

    #[test]
    fn region_guardrail_deny_is_reported_as_denied_when() {
        let fixed = POLICY.replace("${AWS::AccountId}", ACCOUNT);
        let guard = r#"{"Version":"2012-10-17","Statement":[{"Sid":"OnlyEu","Effect":"Deny","NotAction":"iam:*","Resource":"*",
            "Condition":{"StringNotEquals":{"aws:RequestedRegion":["eu-west-1"]}}}]}"#;
        let eval = run(
            &pack(vec![expectation(POLICY, None)]),
            &account(vec![role("vendor-role", &[&fixed, guard], TRUST)]),
        );
        assert_eq!(rules_fired(&eval), ["iam.policy_missing_permissions"]);
        let f = &eval.findings[0];
        assert!(
            f.message
                .contains("denied when StringNotEquals aws:RequestedRegion [eu-west-1]"),
            "{}",
            f.message
        );
        assert_eq!(f.details["denied_when"].as_array().unwrap().len(), 3);
        assert!(f.details.get("denied").is_none());
        assert!(f.details.get("missing").is_none());
        assert!(
            f.remediation.contains(r#"statement "OnlyEu""#),
            "{}",
            f.remediation
        );
    }

    #[test]
    fn permission_boundary_that_removes_an_expected_action_is_reported_and_unread_fails_closed() {
        let fixed = POLICY.replace("${AWS::AccountId}", ACCOUNT);
        let mut bounded = role("vendor-role", &[&fixed], TRUST);
        bounded.permissions_boundary = Some(crate::snapshot::IamBoundary {
            arn: format!("arn:aws:iam::{ACCOUNT}:policy/DevCap"),
            document: Some(
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ec2:Describe*","s3:*"],"Resource":"*"}]}"#
                    .into(),
            ),
        });
        let eval = run(
            &pack(vec![expectation(POLICY, None)]),
            &account(vec![bounded.clone()]),
        );
        assert_eq!(rules_fired(&eval), ["iam.policy_missing_permissions"]);
        let f = &eval.findings[0];
        assert!(
            f.message
                .contains("1 removed by the permission boundary DevCap"),
            "{}",
            f.message
        );
        assert_eq!(
            f.details["permission_boundary"]["missing"][0]["actions"],
            json!(["ec2:createtags"])
        );
        assert!(f.remediation.contains("delete-role-permissions-boundary"));
        // A boundary whose document is unknown: never compliant.
        bounded.permissions_boundary.as_mut().unwrap().document = None;
        let eval = run(
            &pack(vec![expectation(POLICY, None)]),
            &account(vec![bounded]),
        );
        assert_eq!(
            rules_fired(&eval),
            [
                "iam.policy_missing_permissions",
                "iam.policy_excess_permissions"
            ]
        );
        assert!(eval
            .findings
            .iter()
            .all(|f| f.message.contains("cannot be verified")
                && f.message.contains("permissions boundary")));
    }

    #[test]
    fn oversized_fix_is_split_into_managed_policies_iam_accepts() {
        let actions: Vec<String> = (0..700)
            .map(|n| format!("\"ec2:DescribeSomethingQuiteLong{n:04}\""))
            .collect();
        let big = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":[{}],"Resource":"*"}}]}}"#,
            actions.join(",")
        );
        let eval = run(
            &pack(vec![expectation(&big, None)]),
            &account(vec![role(
                "vendor-role",
                &[r#"{"Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}}"#],
                TRUST,
            )]),
        );
        let f = eval
            .findings
            .iter()
            .find(|f| f.rule_id == "iam.policy_missing_permissions")
            .unwrap();
        let docs = quoted_documents(&f.remediation);
        assert!(docs.len() >= 5, "{} documents", docs.len());
        assert!(f.remediation.contains("aws iam attach-role-policy --role-name vendor-role --policy-arn arn:aws:iam::111122223333:policy/vpc-auditor-missing-grants-vendor-role-1"), "{}", &f.remediation[..600]);
        let parsed: Vec<PolicyDocument> = docs
            .iter()
            .map(|d| {
                assert!(remediation::iam_size(d) <= remediation::MANAGED_LIMIT);
                PolicyDocument::parse(d).unwrap()
            })
            .collect();
        let want = effective_grants(&[PolicyDocument::parse(&big).unwrap()]);
        let got = effective_grants(&parsed);
        assert!(crate::iam::missing(&want, &got).is_empty());
        assert!(excess(&want, &got).is_empty());
    }

    #[test]
    fn failed_iam_collection_is_not_evaluated() {
        let pack = pack(vec![expectation(POLICY, None)]);
        let mut snapshot = account(vec![]);
        snapshot.iam[0].error = Some(crate::snapshot::CollectionError {
            operation: None,
            message: "denied".into(),
        });
        assert!(run(&pack, &snapshot).findings.is_empty());
    }
}
