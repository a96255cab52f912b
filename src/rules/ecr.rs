//! `ecr.cross_account_pull`: task images in an ECR registry of another account (Union's
//! "Enabling AWS ECR", "Enabling cross-account access to ECR").
//!
//! This module owns the pack's `cross_account_ecr:` declaration and the pure judgement of
//! each declared repository's policy. A repository policy is a resource policy: only the
//! statements whose `Principal` covers the data plane's principal apply, and then the IAM
//! engine ([`crate::iam::grants`]) decides, as for a role, whether the three pull actions
//! are granted: a Deny, a condition or a principal that does not cover the data plane's
//! account all leave an action missing. The fix is the repository's policy with the
//! blocking Deny statements cut out and the missing grant added, as an
//! `aws ecr set-repository-policy` command.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::iam::policy::{Principal, PrincipalKind, PrincipalScope, Principals};
use crate::iam::{missing_with_reasons, EffectiveGrants, MissingReason, PolicyDocument};
use crate::snapshot::{EcrRepository, Snapshot};
use crate::values::data_plane::DataPlaneAccount;
use crate::values::RegionName;

use super::catalogue::ECR_CROSS_ACCOUNT_PULL;
use super::pack::RulePack;
use super::{Evaluation, FindingScope, IncompleteScope, Sink};

/// The actions the guide lists: "add (at least) the following permissions".
pub const PULL_ACTIONS: [&str; 3] = [
    "ecr:BatchCheckLayerAvailability",
    "ecr:GetDownloadUrlForLayer",
    "ecr:BatchGetImage",
];

/// The `Sid` of the statement the fix adds (a number is appended if it is taken).
const FIX_SID: &str = "AllowDataPlanePull";

/// An ECR registry in another account that holds the data plane's task images.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CrossAccountRegistry {
    /// The account that owns the registry. The auditor reads it through the account's
    /// entry in the config's `accounts:` (a role to assume), like any audited account.
    pub registry_account: DataPlaneAccount,
    /// The registry's region.
    pub region: RegionName,
    /// Repositories, by exact name.
    #[serde(default)]
    pub repositories: Vec<String>,
    /// Every repository whose name starts with this prefix, e.g. `union/`.
    #[serde(default)]
    pub repository_prefix: Option<String>,
    /// The account of the data plane that pulls the images.
    pub data_plane_account: DataPlaneAccount,
    /// The data plane's node role, the guide's `<FlyteWorkerNodeGroupRole>`
    /// (`unionai-<YourOrganizationName>-flyteworker-node-group`). With it, a grant to that
    /// role or to the whole account passes; without it, only a grant to the whole account.
    #[serde(default)]
    pub node_role: Option<String>,
}

impl CrossAccountRegistry {
    /// The checks the field types cannot make: `Err((field, message))`.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if self.repositories.is_empty() && self.repository_prefix.is_none() {
            return Err((
                "repositories",
                "name the repositories, or give a `repository_prefix`".into(),
            ));
        }
        if let Some(bad) = self.repositories.iter().find(|r| !is_repository_name(r)) {
            return Err((
                "repositories",
                format!("not an ECR repository name: {bad:?}"),
            ));
        }
        if self.repository_prefix.as_deref() == Some("") {
            return Err((
                "repository_prefix",
                "an empty prefix would select every repository; list them instead".into(),
            ));
        }
        if self.registry_account == self.data_plane_account {
            return Err((
                "data_plane_account",
                "the registry is in the data plane's own account: the guide says access there \
                 \"is enabled by default\", so there is nothing to check"
                    .into(),
            ));
        }
        if let Some(role) = &self.node_role {
            let ok = !role.is_empty()
                && role
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
            if !ok {
                return Err(("node_role", format!("not an IAM role name: {role:?}")));
            }
        }
        Ok(())
    }

    /// Whether the declaration selects the repository called `name`.
    pub fn selects(&self, name: &str) -> bool {
        self.repositories.iter().any(|r| r == name)
            || self
                .repository_prefix
                .as_deref()
                .is_some_and(|p| name.starts_with(p))
    }

    /// The principal that must be allowed to pull, as an ARN.
    pub fn principal_arn(&self) -> String {
        let partition = super::iam::partition_of(&self.region.0);
        let account = &self.data_plane_account.0;
        match &self.node_role {
            Some(role) => format!("arn:{partition}:iam::{account}:role/{role}"),
            None => format!("arn:{partition}:iam::{account}:root"),
        }
    }
}

/// ECR's rule for a repository name: lower-case letters, digits and `._-/`.
fn is_repository_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 256
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/".contains(c))
}

/// Every registry a pack declares, in the (account, region) it lives in: what collection
/// reads (DescribeRepositories, then GetRepositoryPolicy for the selected repositories).
pub fn registries_in<'p>(
    packs: &'p [RulePack],
    account_id: &str,
    region: &str,
) -> Vec<&'p CrossAccountRegistry> {
    packs
        .iter()
        .flat_map(|p| p.cross_account_ecr.iter())
        .filter(|r| r.registry_account.0 == account_id && r.region.0 == region)
        .collect()
}

/// One pull action the repository policy does not give the data plane, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MissingPull {
    pub action: &'static str,
    /// `not granted`, `granted only under stricter conditions`, `denied`, ...
    pub reason: String,
    /// Indices (in the whole policy) of the Deny statements that take it away.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub denied_by: Vec<usize>,
}

/// Whether a statement's `Principal`/`NotPrincipal` covers `principal` (the node role ARN,
/// or `arn:…:root`). A grant to the account (its id or its root ARN) covers every
/// principal of the account; wildcards other than `*` are not allowed in principals.
fn covers(principals: &Principals, principal: &str, account: &str) -> bool {
    match principals {
        Principals::Everyone => true,
        Principals::Listed(list) => list.iter().any(|Principal { kind, id }| {
            *kind == PrincipalKind::Aws
                && (id == "*"
                    || id == account
                    || id.ends_with(&format!(":iam::{account}:root"))
                    || id.eq_ignore_ascii_case(principal))
        }),
    }
}

fn applies(scope: Option<&PrincipalScope>, principal: &str, account: &str) -> bool {
    match scope {
        // A repository policy statement without a principal is invalid; it grants nothing.
        None => false,
        Some(PrincipalScope::Only(p)) => covers(p, principal, account),
        Some(PrincipalScope::AllExcept(p)) => !covers(p, principal, account),
    }
}

/// The pull actions that `policy` (the repository policy's text, `None` when it has none)
/// does not give `registry`'s data plane on the repository `arn`. `Err` when the policy
/// cannot be read: then nothing can be said to be granted.
pub fn missing_pulls(
    policy: Option<&str>,
    registry: &CrossAccountRegistry,
    arn: &str,
) -> Result<Vec<MissingPull>, String> {
    let principal = registry.principal_arn();
    let account = &registry.data_plane_account.0;
    let Some(text) = policy else {
        return Ok(PULL_ACTIONS
            .iter()
            .map(|action| MissingPull {
                action,
                reason: "not granted (the repository has no policy)".into(),
                denied_by: Vec::new(),
            })
            .collect());
    };
    let document = PolicyDocument::parse(text).map_err(|e| e.to_string())?;
    // The statements that apply to the principal, as an identity policy, remembering
    // where each came from.
    let mut origin = Vec::new();
    let mut statements = Vec::new();
    for (index, statement) in document.statements.iter().enumerate() {
        if applies(statement.principal.as_ref(), &principal, account) {
            origin.push(index);
            let mut s = statement.clone();
            s.principal = None;
            statements.push(s);
        }
    }
    let applying = PolicyDocument {
        version: document.version.clone(),
        id: None,
        statements,
    };
    let actual = EffectiveGrants::from_named_policies([("repository policy", &applying)]);
    let mut out = Vec::new();
    for action in PULL_ACTIONS {
        let wanted = PolicyDocument::parse(
            &json!({
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": action, "Resource": arn}]
            })
            .to_string(),
        )
        .map_err(|e| e.to_string())?;
        let expected = EffectiveGrants::from_policies([&wanted]);
        let Some((_, reason)) = missing_with_reasons(&expected, &actual).into_iter().next() else {
            continue;
        };
        let denied_by = match &reason {
            MissingReason::Denied(denies) | MissingReason::DeniedWhen(denies) => {
                let mut at: Vec<usize> = denies
                    .iter()
                    .flat_map(|d| d.statements.iter())
                    .filter_map(|s| origin.get(s.index).copied())
                    .collect();
                at.sort_unstable();
                at.dedup();
                at
            }
            _ => Vec::new(),
        };
        out.push(MissingPull {
            action,
            reason: reason.label(),
            denied_by,
        });
    }
    Ok(out)
}

/// The repository policy that closes the gap: `policy` without the Deny statements that
/// block the pull, plus an Allow of the missing actions to the data plane's principal.
/// Returns compact JSON text that `aws ecr set-repository-policy` accepts.
pub fn fixed_policy(
    policy: Option<&str>,
    registry: &CrossAccountRegistry,
    missing: &[MissingPull],
) -> Result<String, String> {
    let mut document: Value = match policy {
        Some(text) => serde_json::from_str(text).map_err(|e| e.to_string())?,
        None => json!({"Version": "2012-10-17", "Statement": []}),
    };
    let object = document
        .as_object_mut()
        .ok_or("the policy is not a JSON object")?;
    let mut statements = match object.remove("Statement") {
        Some(Value::Array(list)) => list,
        Some(single @ Value::Object(_)) => vec![single],
        None => Vec::new(),
        Some(_) => return Err("its Statement is neither an object nor a list".into()),
    };
    let mut cut: Vec<usize> = missing
        .iter()
        .flat_map(|m| m.denied_by.iter().copied())
        .collect();
    cut.sort_unstable();
    cut.dedup();
    for index in cut.into_iter().rev() {
        if index < statements.len() {
            statements.remove(index);
        }
    }
    let taken = |sid: &str| statements.iter().any(|s| s.get("Sid") == Some(&json!(sid)));
    let mut sid = FIX_SID.to_string();
    let mut n = 2;
    while taken(&sid) {
        sid = format!("{FIX_SID}{n}");
        n += 1;
    }
    let mut actions: Vec<&str> = missing.iter().map(|m| m.action).collect();
    actions.dedup();
    statements.push(json!({
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"AWS": registry.principal_arn()},
        "Action": actions,
    }));
    object
        .entry("Version")
        .or_insert_with(|| json!("2012-10-17"));
    object.insert("Statement".into(), Value::Array(statements));
    Ok(document.to_string())
}

/// Quotes `text` for a POSIX shell command line.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// `aws ecr set-repository-policy` for `repository` with `policy_text`.
pub fn set_policy_command(
    registry: &CrossAccountRegistry,
    repository: &str,
    policy_text: &str,
) -> String {
    format!(
        "aws ecr set-repository-policy --region {} --registry-id {} --repository-name {} --policy-text {}",
        registry.region.0,
        registry.registry_account.0,
        shell_quote(repository),
        shell_quote(policy_text)
    )
}

/// Judges every registry `pack` declares.
pub fn evaluate_pack(eval: &mut Evaluation, snapshot: &Snapshot, pack: &RulePack) {
    if !pack.is_enabled(ECR_CROSS_ACCOUNT_PULL) {
        return;
    }
    for registry in &pack.cross_account_ecr {
        let (account, region) = (&registry.registry_account.0, &registry.region.0);
        let collected = snapshot
            .ecr
            .iter()
            .find(|e| &e.account_id == account && &e.region == region);
        let entry = match collected {
            None => {
                eval.incomplete.push(IncompleteScope {
                    account_id: account.clone(),
                    region: region.clone(),
                    message: format!(
                        "rule pack {} declares a cross-account ECR registry here, but its \
                         repositories were not read: list the registry account under \
                         `accounts:` with a role the auditor can assume",
                        pack.name
                    ),
                });
                continue;
            }
            Some(entry) if entry.error.is_some() => {
                let error = entry.error.as_ref().map(|e| e.message.clone());
                eval.incomplete.push(IncompleteScope {
                    account_id: account.clone(),
                    region: region.clone(),
                    message: format!(
                        "reading the ECR repositories failed: {}",
                        error.unwrap_or_default()
                    ),
                });
                continue;
            }
            Some(entry) => entry,
        };
        let scope = FindingScope {
            account_id: account.clone(),
            region: region.clone(),
            vpc_id: None,
        };
        let Some(mut sink) = Sink::new(eval, pack, ECR_CROSS_ACCOUNT_PULL, scope) else {
            return;
        };
        judge_registry(&mut sink, registry, &entry.repositories);
    }
}

/// Reports each declared repository that is missing or does not let the data plane pull.
pub fn judge_registry(sink: &mut Sink, registry: &CrossAccountRegistry, repos: &[EcrRepository]) {
    let partition = super::iam::partition_of(&registry.region.0);
    for name in &registry.repositories {
        if repos.iter().any(|r| &r.name == name) {
            continue;
        }
        let arn = format!(
            "arn:{partition}:ecr:{}:{}:repository/{name}",
            registry.region.0, registry.registry_account.0
        );
        sink.evaluated(&arn);
        sink.report(
            &arn,
            format!(
                "ECR repository {name} does not exist in registry {} ({})",
                registry.registry_account.0, registry.region.0
            ),
            format!(
                "Correct the name under cross_account_ecr.repositories, or create the \
                 repository and let the data plane pull from it: aws ecr create-repository \
                 --region {} --repository-name {}, then {}",
                registry.region.0,
                shell_quote(name),
                set_policy_command(
                    registry,
                    name,
                    &fixed_policy(None, registry, &all_missing()).unwrap_or_default()
                )
            ),
            json!({"repository": name, "exists": false, "principal": registry.principal_arn()}),
        );
    }
    if let Some(prefix) = &registry.repository_prefix {
        if !repos.iter().any(|r| r.name.starts_with(prefix.as_str())) {
            sink.note(format!(
                "cross-account ECR registry {} ({}): no repository starts with {prefix:?}",
                registry.registry_account.0, registry.region.0
            ));
        }
    }
    for repo in repos.iter().filter(|r| registry.selects(&r.name)) {
        sink.evaluated(&repo.arn);
        let principal = registry.principal_arn();
        match missing_pulls(repo.policy.as_deref(), registry, &repo.arn) {
            Ok(missing) if missing.is_empty() => {}
            Ok(missing) => {
                let list: Vec<String> = missing
                    .iter()
                    .map(|m| format!("{} ({})", m.action, m.reason))
                    .collect();
                let remediation = match fixed_policy(repo.policy.as_deref(), registry, &missing) {
                    Ok(text) => {
                        let cut = missing.iter().any(|m| !m.denied_by.is_empty());
                        format!(
                            "{}{}",
                            if cut {
                                "Replace the policy with one that drops the blocking Deny \
                                     statements and adds the grant: "
                            } else {
                                "Add the grant, keeping the existing statements: "
                            },
                            set_policy_command(registry, &repo.name, &text)
                        )
                    }
                    Err(e) => format!(
                        "The repository policy cannot be rewritten ({e}); add a statement \
                             allowing {} to {principal} by hand",
                        PULL_ACTIONS.join(", ")
                    ),
                };
                sink.report(
                    &repo.arn,
                    format!(
                        "ECR repository {} does not let the data plane ({principal}) pull: {}",
                        repo.name,
                        list.join(", ")
                    ),
                    remediation,
                    json!({
                        "repository": repo.name,
                        "principal": principal,
                        "missing": missing,
                        "has_policy": repo.policy.is_some(),
                    }),
                );
            }
            Err(e) => sink.report(
                &repo.arn,
                format!(
                    "ECR repository {}'s policy cannot be read, so the pull is not known to be \
                     granted: {e}",
                    repo.name
                ),
                format!(
                    "Fix the repository policy so it is valid JSON and allows {} to {principal}",
                    PULL_ACTIONS.join(", ")
                ),
                json!({"repository": repo.name, "principal": principal, "error": e}),
            ),
        }
    }
}

fn all_missing() -> Vec<MissingPull> {
    PULL_ACTIONS
        .iter()
        .map(|action| MissingPull {
            action,
            reason: String::new(),
            denied_by: Vec::new(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPO: &str = "arn:aws:ecr:us-east-1:222233334444:repository/union/app";

    fn registry(node_role: Option<&str>) -> CrossAccountRegistry {
        CrossAccountRegistry {
            registry_account: DataPlaneAccount("222233334444".into()),
            region: RegionName("us-east-1".into()),
            repositories: vec!["union/app".into()],
            repository_prefix: None,
            data_plane_account: DataPlaneAccount("111122223333".into()),
            node_role: node_role.map(str::to_string),
        }
    }

    fn policy(statements: Value) -> String {
        json!({"Version": "2012-10-17", "Statement": statements}).to_string()
    }

    const NODE: &str = "arn:aws:iam::111122223333:role/unionai-acme-flyteworker-node-group";

    fn guide_statement(principal: &str) -> Value {
        json!({
            "Sid": "AllowPull", "Effect": "Allow", "Principal": {"AWS": principal},
            "Action": ["ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage", "ecr:BatchCheckLayerAvailability"]
        })
    }

    fn missing_actions(text: Option<&str>, reg: &CrossAccountRegistry) -> Vec<&'static str> {
        missing_pulls(text, reg, REPO)
            .unwrap()
            .into_iter()
            .map(|m| m.action)
            .collect()
    }

    #[test]
    fn the_guides_policy_passes_for_the_node_role_and_an_account_grant_covers_the_role() {
        let reg = registry(Some("unionai-acme-flyteworker-node-group"));
        assert!(missing_actions(Some(&policy(json!([guide_statement(NODE)]))), &reg).is_empty());
        let account = policy(json!([guide_statement("111122223333")]));
        assert!(missing_actions(Some(&account), &reg).is_empty());
        let wildcard = policy(json!([{"Effect": "Allow", "Principal": "*", "Action": "ecr:*"}]));
        assert!(missing_actions(Some(&wildcard), &reg).is_empty());
    }

    #[test]
    fn one_action_lacking_is_reported_alone_and_the_fix_keeps_the_other_statements() {
        let reg = registry(Some("unionai-acme-flyteworker-node-group"));
        let push = json!({"Sid": "Push", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999988887777:root"}, "Action": "ecr:PutImage"});
        let text = policy(json!([
            push,
            {"Effect": "Allow", "Principal": {"AWS": NODE}, "Action": ["ecr:BatchGetImage", "ecr:BatchCheckLayerAvailability"]}
        ]));
        let missing = missing_pulls(Some(&text), &reg, REPO).unwrap();
        assert_eq!(missing.len(), 1);
        assert_eq!(missing[0].action, "ecr:GetDownloadUrlForLayer");
        assert_eq!(missing[0].reason, "not granted");
        let fixed = fixed_policy(Some(&text), &reg, &missing).unwrap();
        let value: Value = serde_json::from_str(&fixed).expect("valid JSON");
        assert_eq!(value["Statement"][0]["Sid"], "Push");
        assert_eq!(value["Statement"].as_array().unwrap().len(), 3);
        assert!(missing_actions(Some(&fixed), &reg).is_empty(), "{fixed}");
    }

    #[test]
    fn a_principal_of_another_account_or_role_does_not_cover_the_data_plane() {
        let reg = registry(Some("unionai-acme-flyteworker-node-group"));
        let other = policy(json!([guide_statement("arn:aws:iam::999988887777:root")]));
        assert_eq!(missing_actions(Some(&other), &reg).len(), 3);
        let other_role = policy(json!([guide_statement(
            "arn:aws:iam::111122223333:role/someone-else"
        )]));
        assert_eq!(missing_actions(Some(&other_role), &reg).len(), 3);
        // Without a node role, the grant must cover the whole account.
        let role_only = policy(json!([guide_statement(NODE)]));
        assert_eq!(missing_actions(Some(&role_only), &registry(None)).len(), 3);
        assert_eq!(missing_actions(None, &reg).len(), 3);
    }

    #[test]
    fn a_condition_counts_as_missing() {
        let reg = registry(Some("unionai-acme-flyteworker-node-group"));
        let mut statement = guide_statement(NODE);
        statement["Condition"] = json!({"StringEquals": {"aws:SourceVpce": "vpce-1"}});
        let missing = missing_pulls(Some(&policy(json!([statement]))), &reg, REPO).unwrap();
        assert_eq!(missing.len(), 3);
        assert!(
            missing[0].reason.contains("stricter conditions"),
            "{missing:?}"
        );
        let fixed = fixed_policy(Some(&policy(json!([statement]))), &reg, &missing).unwrap();
        assert!(missing_actions(Some(&fixed), &reg).is_empty());
    }

    #[test]
    fn a_deny_counts_and_the_fix_cuts_it_out() {
        let reg = registry(Some("unionai-acme-flyteworker-node-group"));
        let text = policy(json!([
            guide_statement(NODE),
            {"Sid": "Other", "Effect": "Deny", "Principal": {"AWS": "arn:aws:iam::999988887777:root"}, "Action": "ecr:*"},
            {"Sid": "NoPulls", "Effect": "Deny", "Principal": {"AWS": "111122223333"}, "Action": "ecr:BatchGetImage"}
        ]));
        let missing = missing_pulls(Some(&text), &reg, REPO).unwrap();
        assert_eq!(missing.len(), 1, "{missing:?}");
        assert_eq!(missing[0].action, "ecr:BatchGetImage");
        assert_eq!(missing[0].reason, "denied");
        assert_eq!(missing[0].denied_by, vec![2]);
        let fixed = fixed_policy(Some(&text), &reg, &missing).unwrap();
        assert!(
            !fixed.contains("NoPulls") && fixed.contains("\"Other\""),
            "{fixed}"
        );
        assert!(missing_actions(Some(&fixed), &reg).is_empty(), "{fixed}");
    }

    #[test]
    fn an_unreadable_policy_is_an_error_not_a_pass() {
        let reg = registry(None);
        assert!(missing_pulls(Some("{not json"), &reg, REPO).is_err());
    }

    #[test]
    fn the_command_quotes_the_policy_for_the_shell() {
        let reg = registry(None);
        let command = set_policy_command(&reg, "union/app", r#"{"Sid":"it's"}"#);
        assert!(command.starts_with(
            "aws ecr set-repository-policy --region us-east-1 --registry-id 222233334444 \
             --repository-name 'union/app' --policy-text '"
        ));
        assert!(command.ends_with(r#"{"Sid":"it'\''s"}'"#), "{command}");
    }

    fn pack(reg: CrossAccountRegistry) -> RulePack {
        RulePack {
            name: "p".into(),
            cross_account_ecr: vec![reg],
            ..Default::default()
        }
    }

    fn registry_snapshot(repos: Vec<EcrRepository>) -> Snapshot {
        Snapshot {
            ecr: vec![crate::snapshot::EcrSnapshot {
                account_id: "222233334444".into(),
                region: "us-east-1".into(),
                repositories: repos,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn a_registry_not_read_or_failed_is_incomplete_never_clean() {
        let reg = registry(None);
        let mut eval = Evaluation::default();
        evaluate_pack(&mut eval, &Snapshot::default(), &pack(reg.clone()));
        assert!(eval.findings.is_empty());
        assert_eq!(eval.incomplete.len(), 1);
        assert!(
            eval.incomplete[0].message.contains("accounts:"),
            "{:?}",
            eval.incomplete
        );

        let mut failed = registry_snapshot(Vec::new());
        failed.ecr[0].error = Some(crate::snapshot::CollectionError {
            operation: Some("ecr:DescribeRepositories".into()),
            message: "AccessDeniedException".into(),
        });
        let mut eval = Evaluation::default();
        evaluate_pack(&mut eval, &failed, &pack(reg));
        assert!(eval.findings.is_empty());
        assert!(eval.incomplete[0].message.contains("AccessDeniedException"));
    }

    #[test]
    fn each_selected_repository_is_judged_and_a_named_one_that_is_gone_is_reported() {
        let mut reg = registry(Some("unionai-acme-flyteworker-node-group"));
        reg.repositories = vec!["union/gone".into()];
        reg.repository_prefix = Some("union/".into());
        let repo = |name: &str, policy: Option<String>| EcrRepository {
            name: name.into(),
            arn: format!("arn:aws:ecr:us-east-1:222233334444:repository/{name}"),
            policy,
        };
        let snapshot = registry_snapshot(vec![
            repo("union/ok", Some(policy(json!([guide_statement(NODE)])))),
            repo("union/none", None),
            repo("other/x", None),
        ]);
        let mut eval = Evaluation::default();
        evaluate_pack(&mut eval, &snapshot, &pack(reg));
        let mut got: Vec<&str> = eval
            .findings
            .iter()
            .map(|f| f.resource_id.as_str())
            .collect();
        got.sort();
        assert_eq!(
            got,
            vec![
                "arn:aws:ecr:us-east-1:222233334444:repository/union/gone",
                "arn:aws:ecr:us-east-1:222233334444:repository/union/none",
            ]
        );
        assert_eq!(eval.evaluated.get(ECR_CROSS_ACCOUNT_PULL), Some(&3));
        let none = eval
            .findings
            .iter()
            .find(|f| f.resource_id.ends_with("union/none"))
            .unwrap();
        assert_eq!(none.account_id, "222233334444");
        assert!(
            none.remediation.contains("set-repository-policy"),
            "{}",
            none.remediation
        );
        let text = policy_text(&none.remediation);
        let fixed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(fixed["Statement"][0]["Principal"]["AWS"], NODE);
    }

    /// The policy text inside `--policy-text '...'`.
    fn policy_text(command: &str) -> String {
        let start = command.find("--policy-text '").unwrap() + "--policy-text '".len();
        command[start..command.len() - 1].replace(r"'\''", "'")
    }

    #[test]
    fn declaration_errors_name_the_field() {
        let mut reg = registry(None);
        reg.repositories.clear();
        assert_eq!(reg.check().unwrap_err().0, "repositories");
        reg.repository_prefix = Some("union/".into());
        assert!(reg.check().is_ok());
        assert!(reg.selects("union/app") && !reg.selects("other/app"));
        reg.repositories = vec!["Bad Name".into()];
        assert_eq!(reg.check().unwrap_err().0, "repositories");
        let mut same = registry(None);
        same.data_plane_account = same.registry_account.clone();
        assert_eq!(same.check().unwrap_err().0, "data_plane_account");
    }
}

#[cfg(test)]
mod documented {
    //! The pack shown in `docs/vendor-resources.md` loads.

    use super::super::pack::RulePack;

    #[test]
    fn the_documented_pack_parses() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/vendor-resources.md");
        let page = std::fs::read_to_string(&path).unwrap();
        let start = page.find("```yaml\n").expect("a yaml block") + "```yaml\n".len();
        let text = &page[start..start + page[start..].find("```").unwrap()];
        let pack = RulePack::parse(&path, text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(pack.cross_account_ecr.len(), 1);
        assert!(pack.is_enabled(super::ECR_CROSS_ACCOUNT_PULL));
        assert!(!pack.is_enabled(crate::rules::catalogue::SECRETS_REGION));
    }
}
