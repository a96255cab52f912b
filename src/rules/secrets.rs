//! `secrets.region` and `secrets.missing`: the Secrets Manager secrets that task code is
//! granted (Union's "Enabling AWS Secrets Manager").
//!
//! This module owns the pack's `secrets_manager:` declaration and the pure judgement: every
//! `secretsmanager` resource that an Allow statement of the declared roles' custom
//! policies grants must be in the data plane's region ("Secrets must be defined within the
//! same region as your Union.ai data plane") and must match a secret that exists, as
//! ListSecrets in that region lists them (names and ARNs only).
//!
//! The auditor never reads a secret's value, so the guide's "Plaintext (Key/value is not
//! supported)" cannot be verified and is not guessed at.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::iam::pattern::{self, Pattern};
use crate::iam::policy::{Effect, PatternSet};
use crate::iam::PolicyDocument;
use crate::snapshot::{IamRole, SecretEntry, Snapshot};
use crate::values::RegionName;

use super::catalogue::{SECRETS_MISSING, SECRETS_REGION};
use super::pack::RulePack;
use super::{Evaluation, FindingScope, IncompleteScope, Sink};

/// The policy Union attaches to `<UserFlyteRole>` itself: not a custom policy.
pub const UNION_POLICY: &str = "userflyterole";

/// Which roles grant secrets to task code, and where the data plane runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretsManagerCheck {
    /// Role names or globs (`*`, `?`): the guide's `<UserFlyteRole>` (`*-userflyterole`)
    /// and any project-domain custom roles.
    pub roles: Vec<String>,
    /// The data plane's region: where every granted secret must be, and where ListSecrets
    /// is called.
    pub region: RegionName,
}

impl SecretsManagerCheck {
    /// The checks the field types cannot make: `Err((field, message))`.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if self.roles.is_empty() || self.roles.iter().any(|r| r.trim().is_empty()) {
            return Err((
                "roles",
                "name at least one role (a name or a glob such as *-userflyterole)".into(),
            ));
        }
        Ok(())
    }
}

/// The regions in which collection lists secrets: each pack's data plane region.
pub fn regions_to_list(packs: &[RulePack]) -> Vec<String> {
    let mut out: Vec<String> = packs
        .iter()
        .filter_map(|p| p.secrets_manager.as_ref().map(|s| s.region.0.clone()))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// A `secretsmanager` ARN (pattern), split: `arn:<partition>:secretsmanager:<region>:<account>:secret:<name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretArn<'a> {
    pub partition: &'a str,
    pub region: &'a str,
    pub account: &'a str,
    pub rest: &'a str,
}

impl<'a> SecretArn<'a> {
    pub fn parse(resource: &'a str) -> Option<SecretArn<'a>> {
        let parts: Vec<&str> = resource.splitn(6, ':').collect();
        match parts.as_slice() {
            ["arn", partition, "secretsmanager", region, account, rest] => Some(SecretArn {
                partition,
                region,
                account,
                rest,
            }),
            _ => None,
        }
    }

    /// The secret's name as written, without the `secret:` resource type.
    fn name(&self) -> &'a str {
        self.rest.strip_prefix("secret:").unwrap_or(self.rest)
    }
}

/// One granted secret resource, with the roles and policies that grant it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrantedSecret {
    pub resource: String,
    /// `role name: policy name` for each grant.
    pub granted_by: Vec<String>,
}

/// Whether an Allow statement's actions may include a Secrets Manager action.
fn grants_secrets(actions: &PatternSet) -> bool {
    let any = Pattern::new("secretsmanager:*", true);
    match actions {
        PatternSet::Only(list) => list.iter().any(|a| Pattern::new(a, true).overlaps(&any)),
        PatternSet::AllExcept(list) => !list.iter().any(|a| Pattern::new(a, true).covers(&any)),
    }
}

/// What one role's custom policies grant in Secrets Manager.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleSecretGrants {
    /// (resource, policy name) for each `secretsmanager` ARN an Allow statement grants.
    pub granted: Vec<(String, String)>,
    /// (policy name, parse error) for each policy that cannot be read: its grants are not
    /// known (the `iam.*` rules report the document).
    pub unreadable: Vec<(String, String)>,
}

/// The `secretsmanager` resources the custom policies of `role` grant (its policies other
/// than Union's own `userflyterole`), in order.
pub fn granted_secrets(role: &IamRole) -> RoleSecretGrants {
    let mut out = Vec::new();
    let mut unreadable = Vec::new();
    let policies = role
        .inline_policies
        .iter()
        .chain(role.attached_policies.iter())
        .filter(|p| p.name != UNION_POLICY);
    for policy in policies {
        let document = match PolicyDocument::parse(&policy.document) {
            Ok(d) => d,
            Err(e) => {
                unreadable.push((policy.name.clone(), e.to_string()));
                continue;
            }
        };
        for statement in &document.statements {
            if statement.effect != Effect::Allow || !grants_secrets(&statement.action) {
                continue;
            }
            if let Some(PatternSet::Only(resources)) = &statement.resource {
                for resource in resources {
                    if SecretArn::parse(resource).is_some() {
                        out.push((resource.clone(), policy.name.clone()));
                    }
                }
            }
        }
    }
    RoleSecretGrants {
        granted: out,
        unreadable,
    }
}

/// Judges the grants of every role `pack`'s `secrets_manager:` names, in every account
/// whose IAM was collected.
pub fn evaluate_pack(eval: &mut Evaluation, snapshot: &Snapshot, pack: &RulePack) {
    let Some(check) = &pack.secrets_manager else {
        return;
    };
    let region = &check.region.0;
    for iam in &snapshot.iam {
        if iam.error.is_some() {
            // Reported as a failed IAM scan by the IAM rules' report.
            eval.incomplete.push(IncompleteScope {
                account_id: iam.account_id.clone(),
                region: super::iam::GLOBAL_REGION.to_string(),
                message: "IAM could not be read, so the secrets the roles grant are not known"
                    .into(),
            });
            continue;
        }
        // Every granted resource of the account, with who grants it.
        let mut granted: BTreeMap<String, GrantedSecret> = BTreeMap::new();
        for role in iam.roles.iter().filter(|r| {
            check
                .roles
                .iter()
                .any(|glob| pattern::matches(glob, &r.name, false))
        }) {
            let RoleSecretGrants {
                granted: grants,
                unreadable,
            } = granted_secrets(role);
            for (policy, message) in unreadable {
                eval.notes.push(format!(
                    "role {}: policy {policy} cannot be read ({message}); the secrets it grants \
                     were not checked",
                    role.arn
                ));
            }
            for (resource, policy) in grants {
                let entry = granted.entry(resource.clone()).or_default();
                entry.resource = resource;
                entry.granted_by.push(format!("{}: {policy}", role.name));
            }
        }
        for secret in granted.values() {
            judge_secret(eval, snapshot, pack, &iam.account_id, region, secret);
        }
    }
}

/// Judges one granted resource: region first, then existence.
fn judge_secret(
    eval: &mut Evaluation,
    snapshot: &Snapshot,
    pack: &RulePack,
    account: &str,
    region: &str,
    secret: &GrantedSecret,
) {
    let Some(arn) = SecretArn::parse(&secret.resource) else {
        return;
    };
    let scope = FindingScope {
        account_id: account.to_string(),
        region: region.to_string(),
        vpc_id: None,
    };
    let details = json!({
        "resource": secret.resource,
        "granted_by": secret.granted_by,
        "data_plane_region": region,
    });
    let in_region = pattern::matches(arn.region, region, false);
    if let Some(mut sink) = Sink::new(eval, pack, SECRETS_REGION, scope.clone()) {
        sink.evaluated(&secret.resource);
        if !in_region {
            let fix = if !arn.rest.contains(['*', '?']) {
                format!(
                    "Secrets must be defined within the same region as the data plane. Copy the \
                     secret there: aws secretsmanager replicate-secret-to-regions --region {} \
                     --secret-id {} --add-replica-regions Region={region}, then grant \
                     arn:{}:secretsmanager:{region}:{}:{} instead",
                    arn.region, secret.resource, arn.partition, arn.account, arn.rest
                )
            } else {
                format!(
                    "Secrets must be defined within the same region as the data plane: create \
                     them in {region} and grant arn:{}:secretsmanager:{region}:{}:{} instead",
                    arn.partition, arn.account, arn.rest
                )
            };
            sink.report(
                &secret.resource,
                format!(
                    "{} grants secret {} in region {}, but the data plane is in {region}",
                    secret.granted_by.join(", "),
                    secret.resource,
                    arn.region
                ),
                fix,
                details.clone(),
            );
        }
    }
    if !in_region {
        // Secrets are listed in the data plane's region only; the region finding says it all.
        return;
    }
    let listed = snapshot
        .secrets
        .iter()
        .find(|s| s.account_id == arn.account && s.region == region);
    let secrets: &[SecretEntry] = match listed {
        Some(s) if s.error.is_none() => &s.secrets,
        Some(s) => {
            eval.incomplete.push(IncompleteScope {
                account_id: arn.account.to_string(),
                region: region.to_string(),
                message: format!(
                    "listing the secrets failed, so {} is not known to exist: {}",
                    secret.resource,
                    s.error.as_ref().map(|e| e.message.as_str()).unwrap_or("")
                ),
            });
            return;
        }
        None if arn.account.contains(['*', '?']) || arn.account.is_empty() => {
            eval.notes.push(format!(
                "secret {}: its account is a wildcard, so whether it exists was not checked",
                secret.resource
            ));
            return;
        }
        None => {
            let audited = snapshot.iam.iter().any(|i| i.account_id == arn.account);
            if audited {
                eval.incomplete.push(IncompleteScope {
                    account_id: arn.account.to_string(),
                    region: region.to_string(),
                    message: format!(
                        "the secrets of this region were not listed, so {} is not known to exist",
                        secret.resource
                    ),
                });
            } else {
                eval.notes.push(format!(
                    "secret {}: account {} is not audited, so whether it exists was not checked",
                    secret.resource, arn.account
                ));
            }
            return;
        }
    };
    let Some(mut sink) = Sink::new(eval, pack, SECRETS_MISSING, scope) else {
        return;
    };
    sink.evaluated(&secret.resource);
    let exists = secrets
        .iter()
        .any(|s| pattern::matches(&secret.resource, &s.arn, false));
    if exists {
        return;
    }
    // A grant by bare name misses the six random characters AWS appends to the ARN.
    let by_name = secrets.iter().find(|s| s.name == arn.name());
    let remediation = match by_name {
        Some(s) => format!(
            "A secret's ARN ends with six random characters after its name ({}): grant {} or \
             arn:{}:secretsmanager:{region}:{}:secret:{}-?????? instead",
            s.arn, s.arn, arn.partition, arn.account, s.name
        ),
        None if !arn.name().contains(['*', '?']) => format!(
            "Correct the Resource of the policy, or create the secret as the guide says (other \
             type of secret, Plaintext): aws secretsmanager create-secret --region {region} \
             --name {} --secret-string file://<file with the plaintext value>",
            arn.name()
        ),
        None => format!(
            "Correct the Resource of the policy so it matches the ARNs of the secrets in \
             {region}, or create the secrets there"
        ),
    };
    sink.report(
        &secret.resource,
        format!(
            "{} grants {}, which matches no secret in account {} ({region})",
            secret.granted_by.join(", "),
            secret.resource,
            arn.account
        ),
        remediation,
        details,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Finding;
    use crate::snapshot::{IamPolicy, IamSnapshot, SecretsSnapshot};

    const ACCOUNT: &str = "111122223333";

    fn role(name: &str, resources: &[&str]) -> IamRole {
        let statement = json!({
            "Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": resources
        });
        IamRole {
            name: name.into(),
            arn: format!("arn:aws:iam::{ACCOUNT}:role/{name}"),
            attached_policies: vec![
                IamPolicy {
                    name: "secrets".into(),
                    document: json!({"Version": "2012-10-17", "Statement": [statement]})
                        .to_string(),
                },
                IamPolicy {
                    name: UNION_POLICY.into(),
                    document: json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "arn:aws:secretsmanager:eu-west-1:111122223333:secret:union-*"}]})
                        .to_string(),
                },
            ],
            ..Default::default()
        }
    }

    fn pack() -> RulePack {
        RulePack {
            name: "p".into(),
            secrets_manager: Some(SecretsManagerCheck {
                roles: vec!["*-userflyterole".into()],
                region: RegionName("us-west-2".into()),
            }),
            ..Default::default()
        }
    }

    fn snapshot(roles: Vec<IamRole>, listed: Option<Vec<(&str, &str)>>) -> Snapshot {
        Snapshot {
            iam: vec![IamSnapshot {
                account_id: ACCOUNT.into(),
                roles,
                ..Default::default()
            }],
            secrets: listed
                .map(|l| {
                    vec![SecretsSnapshot {
                        account_id: ACCOUNT.into(),
                        region: "us-west-2".into(),
                        secrets: l
                            .into_iter()
                            .map(|(name, arn)| SecretEntry {
                                name: name.into(),
                                arn: arn.into(),
                            })
                            .collect(),
                        ..Default::default()
                    }]
                })
                .unwrap_or_default(),
            ..Default::default()
        }
    }

    fn run(snapshot: &Snapshot) -> Evaluation {
        let mut eval = Evaluation::default();
        evaluate_pack(&mut eval, snapshot, &pack());
        eval
    }

    fn rules(findings: &[Finding]) -> Vec<(&str, &str)> {
        findings
            .iter()
            .map(|f| (f.rule_id.as_str(), f.resource_id.as_str()))
            .collect()
    }

    const DB: &str = "arn:aws:secretsmanager:us-west-2:111122223333:secret:db-AbCdEf";

    #[test]
    fn the_guides_wildcard_grant_passes_when_a_secret_exists_and_union_policy_is_not_custom() {
        let grant = "arn:aws:secretsmanager:us-west-2:111122223333:secret:*";
        let eval = run(&snapshot(
            vec![role("acme-userflyterole", &[grant])],
            Some(vec![("db", DB)]),
        ));
        assert_eq!(rules(&eval.findings), vec![]);
        assert_eq!(eval.evaluated.get(SECRETS_MISSING), Some(&1));
        assert!(eval.incomplete.is_empty());
    }

    #[test]
    fn a_secret_in_another_region_is_reported_with_the_replicate_fix() {
        let wrong = "arn:aws:secretsmanager:us-east-1:111122223333:secret:db-AbCdEf";
        let eval = run(&snapshot(
            vec![role("acme-userflyterole", &[wrong, DB])],
            Some(vec![("db", DB)]),
        ));
        assert_eq!(rules(&eval.findings), vec![(SECRETS_REGION, wrong)]);
        let f = &eval.findings[0];
        assert_eq!(f.region, "us-west-2");
        assert!(
            f.message.contains("acme-userflyterole: secrets"),
            "{}",
            f.message
        );
        assert!(
            f.remediation.contains("replicate-secret-to-regions --region us-east-1 --secret-id arn:aws:secretsmanager:us-east-1:111122223333:secret:db-AbCdEf --add-replica-regions Region=us-west-2"),
            "{}",
            f.remediation
        );
    }

    #[test]
    fn a_granted_secret_that_does_not_exist_is_reported_and_a_bare_name_gets_a_hint() {
        let gone = "arn:aws:secretsmanager:us-west-2:111122223333:secret:gone-XyZ123";
        let bare = "arn:aws:secretsmanager:us-west-2:111122223333:secret:db";
        let eval = run(&snapshot(
            vec![role("acme-userflyterole", &[gone, bare, DB])],
            Some(vec![("db", DB)]),
        ));
        let mut got = rules(&eval.findings);
        got.sort();
        assert_eq!(got, vec![(SECRETS_MISSING, bare), (SECRETS_MISSING, gone)]);
        let hint = eval
            .findings
            .iter()
            .find(|f| f.resource_id == bare)
            .unwrap();
        assert!(
            hint.remediation.contains("secret:db-??????"),
            "{}",
            hint.remediation
        );
        let create = eval
            .findings
            .iter()
            .find(|f| f.resource_id == gone)
            .unwrap();
        assert!(create
            .remediation
            .contains("create-secret --region us-west-2 --name gone-XyZ123"));
    }

    #[test]
    fn secrets_not_listed_make_the_audit_incomplete_not_clean() {
        let eval = run(&snapshot(vec![role("acme-userflyterole", &[DB])], None));
        assert!(eval.findings.is_empty());
        assert_eq!(eval.incomplete.len(), 1, "{:?}", eval.incomplete);
        let mut failed = snapshot(vec![role("acme-userflyterole", &[DB])], Some(vec![]));
        failed.secrets[0].error = Some(crate::snapshot::CollectionError {
            operation: Some("secretsmanager:ListSecrets".into()),
            message: "AccessDenied".into(),
        });
        let eval = run(&failed);
        assert!(eval.findings.is_empty());
        assert!(eval.incomplete[0].message.contains("AccessDenied"));
    }

    #[test]
    fn only_the_declared_roles_and_secretsmanager_grants_count() {
        let other = role(
            "someone-else",
            &["arn:aws:secretsmanager:us-east-1:111122223333:secret:x"],
        );
        let mut s3 = role("acme-userflyterole", &[]);
        s3.attached_policies[0].document = json!({"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:secretsmanager:us-east-1:111122223333:secret:x"}]}).to_string();
        let eval = run(&snapshot(vec![other, s3], Some(vec![])));
        assert!(eval.findings.is_empty(), "{:?}", eval.findings);
    }

    #[test]
    fn secret_arns_split_and_other_arns_do_not() {
        let arn = SecretArn::parse(DB).unwrap();
        assert_eq!(
            (arn.region, arn.account, arn.name()),
            ("us-west-2", ACCOUNT, "db-AbCdEf")
        );
        assert!(SecretArn::parse("arn:aws:s3:::bucket").is_none());
        assert!(SecretArn::parse("*").is_none());
    }
}
