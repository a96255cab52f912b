//! Policies that fix a gap, as IAM accepts them: the pure half of the
//! `iam.policy_missing_permissions` remediation.
//!
//! This module owns turning missing [`Grant`]s into policy documents that IAM
//! takes and that grant exactly those grants, and cutting a statement out of
//! a policy when an explicit Deny is what takes a grant away. It does no I/O;
//! [`crate::rules::iam`] writes the commands around the documents.
//!
//! - Every document is `Version` `2012-10-17` JSON with at least one
//!   statement. A `NotAction` grant becomes a `NotAction` statement, a
//!   `NotResource` grant a `NotResource` statement: both are IAM syntax.
//! - Sizes are measured as IAM measures them: characters, white space not
//!   counted ([`iam_size`]).
//! - IAM allows 10,240 characters of inline policy per role, all inline
//!   policies together ([`INLINE_LIMIT`]), so what fits next to the role's
//!   existing inline policies is one inline policy; what does not becomes
//!   managed policies of at most 6,144 characters each ([`MANAGED_LIMIT`]),
//!   a statement too long for one being split by its action list. More than
//!   [`ATTACHED_LIMIT`] attached policies is flagged, since IAM refuses them
//!   unless the quota was raised.
//! - A grant a permissions boundary removes is fixed by widening the
//!   boundary: its document with Allow statements for exactly those grants
//!   appended ([`with_allows`]), within [`MANAGED_LIMIT`].

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::grants::{Grant, Target};
use super::policy::Conditions;

/// IAM's limit on a role's inline policies, all together, in characters.
pub const INLINE_LIMIT: usize = 10_240;
/// IAM's limit on one managed policy version, in characters.
pub const MANAGED_LIMIT: usize = 6_144;
/// IAM's default quota of managed policies attached to one role.
pub const ATTACHED_LIMIT: usize = 10;

/// The size of a policy document as IAM counts it against its limits:
/// characters, not counting white space.
pub fn iam_size(text: &str) -> usize {
    text.chars().filter(|c| !c.is_whitespace()).count()
}

/// Where the fix for a gap goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Placement {
    /// One inline policy document: it fits next to the role's inline policies.
    Inline(Value),
    /// Managed policy documents, each within [`MANAGED_LIMIT`].
    Managed(Vec<Value>),
}

/// The fix for a gap: its documents, and what may still stop IAM taking them.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub placement: Placement,
    /// Limits the fix still runs into (too many attached policies, a single
    /// statement longer than a managed policy may be).
    pub warnings: Vec<String>,
}

impl Plan {
    /// The documents, compact JSON, in order.
    pub fn documents(&self) -> Vec<String> {
        match &self.placement {
            Placement::Inline(doc) => vec![doc.to_string()],
            Placement::Managed(docs) => docs.iter().map(Value::to_string).collect(),
        }
    }
}

/// Plans policies granting exactly `grants` (which must not be empty), for a
/// role whose inline policies already take `inline_in_use` characters (see
/// [`iam_size`]) and which has `attached_in_use` managed policies attached.
pub fn plan(grants: &[Grant], inline_in_use: usize, attached_in_use: usize) -> Plan {
    let statements = statements(grants);
    let whole = document(statements.clone());
    let mut warnings = Vec::new();
    if inline_in_use + iam_size(&whole.to_string()) <= INLINE_LIMIT {
        return Plan {
            placement: Placement::Inline(whole),
            warnings,
        };
    }
    let mut pieces = Vec::new();
    for statement in statements {
        pieces.extend(split_statement(statement, MANAGED_LIMIT - EMPTY_DOCUMENT));
    }
    for piece in &pieces {
        let size = iam_size(&piece.to_string());
        if size + EMPTY_DOCUMENT > MANAGED_LIMIT {
            warnings.push(format!(
                "one statement takes {size} characters, more than a managed policy may hold ({MANAGED_LIMIT}); shorten its condition or resource"
            ));
        }
    }
    let documents = pack(pieces, MANAGED_LIMIT);
    if attached_in_use + documents.len() > ATTACHED_LIMIT {
        warnings.push(format!(
            "the role has {attached_in_use} managed policies attached and the fix adds {}: more than IAM's default quota of {ATTACHED_LIMIT} per role (raise the quota, or merge policies)",
            documents.len()
        ));
    }
    Plan {
        placement: Placement::Managed(documents),
        warnings,
    }
}

/// `{"Version":"2012-10-17","Statement":[]}`: what a document costs besides
/// its statements.
const EMPTY_DOCUMENT: usize = 39;

fn document(statements: Vec<Value>) -> Value {
    json!({ "Version": "2012-10-17", "Statement": statements })
}

/// The statements granting `grants`: one per resource, conditions and kind of
/// action element, with the actions sorted.
pub fn statements(grants: &[Grant]) -> Vec<Value> {
    /// `None`: an `Action` list; `Some(excluded)`: one `NotAction` statement.
    type Key<'a> = (&'a Target, &'a Conditions, Option<&'a [String]>);
    let mut groups: BTreeMap<Key, Vec<&str>> = BTreeMap::new();
    for grant in grants {
        match &grant.action {
            Target::Pattern(action) => groups
                .entry((&grant.resource, &grant.conditions, None))
                .or_default()
                .push(action),
            Target::AllExcept(excluded) => {
                groups
                    .entry((&grant.resource, &grant.conditions, Some(excluded)))
                    .or_default();
            }
        }
    }
    groups
        .into_iter()
        .map(|((resource, conditions, not_action), mut actions)| {
            let mut statement = Map::new();
            statement.insert("Effect".into(), json!("Allow"));
            match not_action {
                Some(excluded) => statement.insert("NotAction".into(), json!(excluded)),
                None => {
                    actions.sort_unstable();
                    actions.dedup();
                    statement.insert("Action".into(), json!(actions))
                }
            };
            match resource {
                Target::Pattern(r) => statement.insert("Resource".into(), json!(&**r)),
                Target::AllExcept(excluded) => {
                    statement.insert("NotResource".into(), json!(excluded))
                }
            };
            if !conditions.is_empty() {
                let mut condition: BTreeMap<&str, BTreeMap<&str, Vec<&str>>> = BTreeMap::new();
                for clause in conditions.clauses() {
                    condition.entry(&clause.operator).or_default().insert(
                        clause.key.as_str(),
                        clause.values.iter().map(String::as_str).collect(),
                    );
                }
                statement.insert("Condition".into(), json!(condition));
            }
            Value::Object(statement)
        })
        .collect()
}

/// Splits an `Action` statement longer than `limit` into statements with
/// parts of its action list, each within `limit` where one action allows.
fn split_statement(statement: Value, limit: usize) -> Vec<Value> {
    let size = iam_size(&statement.to_string());
    let Some(actions) = statement.get("Action").and_then(Value::as_array).cloned() else {
        return vec![statement];
    };
    if size <= limit || actions.len() < 2 {
        return vec![statement];
    }
    let mut empty = statement.clone();
    empty["Action"] = json!([]);
    let base = iam_size(&empty.to_string());
    let mut out = Vec::new();
    let mut chunk: Vec<Value> = Vec::new();
    let mut chunk_size = base;
    for action in actions {
        // `"action"` plus the comma before it.
        let cost = iam_size(&action.to_string()) + usize::from(!chunk.is_empty());
        if !chunk.is_empty() && chunk_size + cost > limit {
            let mut piece = empty.clone();
            piece["Action"] = Value::Array(std::mem::take(&mut chunk));
            out.push(piece);
            chunk_size = base;
        }
        chunk_size += iam_size(&action.to_string()) + usize::from(!chunk.is_empty());
        chunk.push(action);
    }
    let mut piece = empty;
    piece["Action"] = Value::Array(chunk);
    out.push(piece);
    out
}

/// Packs statements into as few documents of at most `limit` characters as
/// first fit finds, keeping their order within each document.
fn pack(statements: Vec<Value>, limit: usize) -> Vec<Value> {
    let mut bins: Vec<(usize, Vec<Value>)> = Vec::new();
    for statement in statements {
        let size = iam_size(&statement.to_string());
        let fits = bins
            .iter_mut()
            .find(|(used, list)| used + size + usize::from(!list.is_empty()) <= limit);
        match fits {
            Some((used, list)) => {
                *used += size + usize::from(!list.is_empty());
                list.push(statement);
            }
            None => bins.push((EMPTY_DOCUMENT + size, vec![statement])),
        }
    }
    bins.into_iter().map(|(_, list)| document(list)).collect()
}

/// `text` (a policy document) without the statements at `indices`, as
/// compact JSON; `Ok(None)` when no statement would be left, so the policy
/// should be deleted or detached rather than emptied (IAM refuses an empty
/// `Statement` list).
pub fn without_statements(text: &str, indices: &[usize]) -> Result<Option<String>, String> {
    let mut value: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let object = value
        .as_object_mut()
        .ok_or_else(|| "the policy is not a JSON object".to_string())?;
    let statements = match object.remove("Statement") {
        Some(Value::Array(list)) => list,
        Some(single @ Value::Object(_)) => vec![single],
        _ => return Err("the policy has no Statement".into()),
    };
    let kept: Vec<Value> = statements
        .into_iter()
        .enumerate()
        .filter(|(n, _)| !indices.contains(n))
        .map(|(_, s)| s)
        .collect();
    if kept.is_empty() {
        return Ok(None);
    }
    object.insert("Statement".into(), Value::Array(kept));
    Ok(Some(value.to_string()))
}

/// `text` (a permissions boundary's document) widened by Allow statements for
/// exactly `grants` (which must not be empty), as compact JSON: the existing
/// statements are kept as they are, in order, and the new ones follow. `Err`
/// says why it cannot be done: the text is not a policy object, or the
/// result would be longer than a managed policy may be ([`MANAGED_LIMIT`]).
///
/// A document without `Version` `2012-10-17` reads `${...}` literally; it is
/// raised to `2012-10-17` when none of its own text has `${` (so its meaning
/// does not change), and refused when the added statements need policy
/// variables but its own text would change meaning.
pub fn with_allows(text: &str, grants: &[Grant]) -> Result<String, String> {
    let mut value: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let object = value
        .as_object_mut()
        .ok_or_else(|| "the policy is not a JSON object".to_string())?;
    let mut statements = match object.remove("Statement") {
        Some(Value::Array(list)) => list,
        Some(single @ Value::Object(_)) => vec![single],
        _ => return Err("the policy has no Statement".into()),
    };
    let added = self::statements(grants);
    if added.is_empty() {
        return Err("nothing to add".into());
    }
    if object.get("Version").and_then(Value::as_str) != Some("2012-10-17") {
        let needs_variables = added.iter().any(|s| s.to_string().contains("${"));
        if !text.contains("${") {
            object.insert("Version".into(), json!("2012-10-17"));
        } else if needs_variables {
            return Err(
                "the added statements use policy variables, which its Version would read literally"
                    .into(),
            );
        }
    }
    statements.extend(added);
    object.insert("Statement".into(), Value::Array(statements));
    let widened = value.to_string();
    let size = iam_size(&widened);
    if size > MANAGED_LIMIT {
        return Err(format!(
            "the widened document would take {size} characters, more than a managed policy may hold ({MANAGED_LIMIT})"
        ));
    }
    Ok(widened)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iam::grants::{effective_grants, missing};
    use crate::iam::PolicyDocument;
    use std::collections::BTreeSet;

    fn gap(expected: &str, actual: &str) -> Vec<Grant> {
        let e = effective_grants(&[PolicyDocument::parse(expected).unwrap()]);
        let a = effective_grants(&[PolicyDocument::parse(actual).unwrap()]);
        missing(&e, &a)
    }

    /// Parses every document back with the project's own parser and checks
    /// that together they grant exactly `gap`.
    fn grants_exactly(plan: &Plan, gap: &[Grant], limit: usize) {
        let docs: Vec<PolicyDocument> = plan
            .documents()
            .iter()
            .map(|text| {
                assert!(iam_size(text) <= limit, "{} > {limit}", iam_size(text));
                let doc = PolicyDocument::parse(text).unwrap_or_else(|e| panic!("{e}: {text}"));
                assert!(!doc.statements.is_empty());
                assert_eq!(doc.version.as_deref(), Some("2012-10-17"));
                doc
            })
            .collect();
        let granted: BTreeSet<Grant> = effective_grants(&docs).allows().iter().cloned().collect();
        assert_eq!(granted, gap.iter().cloned().collect::<BTreeSet<_>>());
    }

    #[test]
    fn size_ignores_white_space() {
        assert_eq!(iam_size("{ \"a\" :\n 1 }"), 7);
        assert_eq!(
            iam_size(&document(vec![]).to_string()),
            EMPTY_DOCUMENT,
            "the empty document's cost"
        );
    }

    #[test]
    fn not_action_drift_is_fixed_by_valid_json_granting_exactly_the_missing_actions() {
        let expected = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","NotAction":["iam:*"],"Resource":"*"}}"#;
        let actual = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","NotAction":["iam:*","s3:*","kms:Decrypt"],"Resource":"*"}}"#;
        let gap = gap(expected, actual);
        let plan = plan(&gap, 0, 0);
        assert!(matches!(plan.placement, Placement::Inline(_)));
        assert!(!plan.documents()[0].contains("all except"));
        grants_exactly(&plan, &gap, INLINE_LIMIT);
        assert_eq!(
            plan.documents()[0],
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:decrypt","s3:*"],"Resource":"*"}]}"#
        );
    }

    #[test]
    fn not_action_and_not_resource_gaps_become_statements_iam_takes() {
        // Nothing to subtract from: the gap is the NotAction/NotResource grant itself.
        let expected = r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","NotAction":["iam:*","organizations:*"],"Resource":"*"},
            {"Effect":"Allow","Action":"s3:GetObject","NotResource":"arn:aws:s3:::secret/*",
             "Condition":{"Bool":{"aws:SecureTransport":"true"}}}]}"#;
        let actual =
            r#"{"Statement":{"Effect":"Allow","Action":"ec2:DescribeVpcs","Resource":"*"}}"#;
        let gap = gap(expected, actual);
        assert_eq!(gap.len(), 2);
        let plan = plan(&gap, 0, 0);
        let text = &plan.documents()[0];
        assert!(
            text.contains("\"NotAction\"") && text.contains("\"NotResource\""),
            "{text}"
        );
        grants_exactly(&plan, &gap, INLINE_LIMIT);
    }

    /// A policy of `n` statements, each with many long actions on its own bucket.
    fn big_policy(n: usize) -> String {
        let statements: Vec<String> = (0..n)
            .map(|i| {
                let actions: Vec<String> = (0..40)
                    .map(|a| format!("\"s3:GetObjectVersionAttributesNumber{a:03}\""))
                    .collect();
                format!(
                    r#"{{"Effect":"Allow","Action":[{}],"Resource":"arn:aws:s3:::bucket-{i:04}/*"}}"#,
                    actions.join(",")
                )
            })
            .collect();
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
            statements.join(",")
        )
    }

    #[test]
    fn oversized_fix_is_split_into_valid_managed_policies() {
        let expected = big_policy(12);
        let gap = gap(
            &expected,
            r#"{"Statement":{"Effect":"Allow","Action":"ec2:DescribeVpcs","Resource":"*"}}"#,
        );
        let plan = plan(&gap, 0, 0);
        let Placement::Managed(docs) = &plan.placement else {
            panic!(
                "a {}-character fix went inline",
                iam_size(&plan.documents()[0])
            )
        };
        assert!(docs.len() > 2, "{} documents", docs.len());
        assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
        grants_exactly(&plan, &gap, MANAGED_LIMIT);
    }

    #[test]
    fn the_roles_existing_inline_policies_count_against_the_limit() {
        let expected = big_policy(1);
        let gap = gap(
            &expected,
            r#"{"Statement":{"Effect":"Allow","Action":"ec2:DescribeVpcs","Resource":"*"}}"#,
        );
        assert!(matches!(plan(&gap, 0, 0).placement, Placement::Inline(_)));
        let crowded = plan(&gap, INLINE_LIMIT - 100, 0);
        assert!(matches!(crowded.placement, Placement::Managed(_)));
        grants_exactly(&crowded, &gap, MANAGED_LIMIT);
        // And the attached-policy quota is flagged, not ignored.
        assert!(!plan(&gap, INLINE_LIMIT, ATTACHED_LIMIT).warnings.is_empty());
    }

    #[test]
    fn one_statement_longer_than_a_managed_policy_is_split_by_actions() {
        let actions: Vec<String> = (0..400)
            .map(|a| format!("\"ec2:DescribeSomethingRatherLong{a:04}\""))
            .collect();
        let expected = format!(
            r#"{{"Version":"2012-10-17","Statement":{{"Effect":"Allow","Action":[{}],"Resource":"*"}}}}"#,
            actions.join(",")
        );
        let gap = gap(
            &expected,
            r#"{"Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}}"#,
        );
        let plan = plan(&gap, 0, 0);
        assert!(plan.documents().len() >= 3);
        grants_exactly(&plan, &gap, MANAGED_LIMIT);
    }

    #[test]
    fn a_boundary_is_widened_by_exactly_the_missing_grants_and_keeps_its_statements() {
        let boundary = r#"{"Statement":[{"Sid":"Cap","Effect":"Allow","Action":"s3:*","Resource":"*"},
            {"Effect":"Deny","Action":"s3:DeleteBucket","Resource":"*"}]}"#;
        let missing = gap(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":["ec2:CreateTags","s3:GetObject"],"Resource":"*"}}"#,
            r#"{"Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}}"#,
        );
        let text = with_allows(boundary, &missing).unwrap();
        let doc = PolicyDocument::parse(&text).unwrap();
        // No policy variable in it: raised to 2012-10-17 without changing its meaning.
        assert_eq!(doc.version.as_deref(), Some("2012-10-17"));
        assert_eq!(doc.statements.len(), 3);
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["Statement"][0]["Sid"], "Cap");
        assert_eq!(value["Statement"][1]["Effect"], "Deny");
        assert_eq!(
            value["Statement"][2],
            json!({"Effect": "Allow", "Action": ["ec2:createtags"], "Resource": "*"})
        );
        // A single-statement document, a variable in an old-Version document, not JSON,
        // and nothing to add.
        let single = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}"#;
        assert_eq!(
            PolicyDocument::parse(&with_allows(single, &missing).unwrap())
                .unwrap()
                .statements
                .len(),
            2
        );
        let old = r#"{"Version":"2008-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::${x}"}}"#;
        assert!(with_allows(old, &missing).unwrap().contains("2008-10-17"));
        let needs = gap(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/${aws:username}/*"}}"#,
            r#"{"Statement":{"Effect":"Allow","Action":"ec2:DescribeVpcs","Resource":"*"}}"#,
        );
        assert!(with_allows(old, &needs).is_err());
        assert!(with_allows("[]", &missing).is_err());
        assert!(with_allows(single, &[]).is_err());
    }

    #[test]
    fn cutting_a_statement_keeps_the_rest_or_says_nothing_is_left() {
        let text = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"},
            {"Sid":"NoDelete","Effect":"Deny","Action":"s3:DeleteBucket","Resource":"*"}]}"#;
        let kept = without_statements(text, &[1]).unwrap().unwrap();
        let doc = PolicyDocument::parse(&kept).unwrap();
        assert_eq!(doc.statements.len(), 1);
        assert_eq!(without_statements(text, &[0, 1]).unwrap(), None);
        let single = r#"{"Statement":{"Effect":"Deny","Action":"s3:*","Resource":"*"}}"#;
        assert_eq!(without_statements(single, &[0]).unwrap(), None);
    }
}
