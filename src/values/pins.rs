//! Pinned roles: the recorded state of a role that a rule pack says must not change
//! (Union.ai's `<AdminFlyteRole>`: "You should not alter any settings"), and the readable
//! difference between that state and the role as collected.
//!
//! A pin holds the role's trust policy, inline and attached policies (attached ones with
//! their documents, so a new default version counts as a change), permissions boundary and
//! tags, normalised so that whitespace and key order are not changes, plus a SHA-256
//! fingerprint of that state. The pin state file (`pin_state_file` in the config) is a
//! [`PinFile`]; reading and writing it is the scan's job, comparing is the rules'.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::snapshot::IamRole;

/// What is pinned of a role. Documents are parsed JSON (text that does not parse is kept
/// as a string, so it still compares).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinnedState {
    #[serde(default)]
    pub trust_policy: Option<Value>,
    /// Inline policy name → document.
    #[serde(default)]
    pub inline_policies: BTreeMap<String, Value>,
    /// Attached managed policy ARN → the document of its default version (`null` when AWS
    /// did not return it).
    #[serde(default)]
    pub attached_policies: BTreeMap<String, Value>,
    /// The permissions boundary's ARN.
    #[serde(default)]
    pub permissions_boundary: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

fn parse_doc(text: &str) -> Value {
    serde_json::from_str(text)
        .map(|v| canonical(&v))
        .unwrap_or_else(|_| Value::String(text.to_string()))
}

/// `value` with every object's keys in sorted order, whatever order serde_json keeps.
fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), canonical(&map[k])))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

impl PinnedState {
    /// The pinnable state of a collected role.
    pub fn of(role: &IamRole) -> PinnedState {
        let mut attached: BTreeMap<String, Value> = role
            .attached_policies
            .iter()
            .map(|p| (p.name.clone(), parse_doc(&p.document)))
            .collect();
        for arn in &role.unresolved_policies {
            attached.insert(arn.clone(), Value::Null);
        }
        PinnedState {
            trust_policy: role.trust_policy.as_deref().map(parse_doc),
            inline_policies: role
                .inline_policies
                .iter()
                .map(|p| (p.name.clone(), parse_doc(&p.document)))
                .collect(),
            attached_policies: attached,
            permissions_boundary: role.permissions_boundary.as_ref().map(|b| b.arn.clone()),
            tags: role.tags.clone(),
        }
    }

    /// The SHA-256 of the state's canonical JSON (object keys sorted), in hex.
    pub fn fingerprint(&self) -> String {
        let value = serde_json::to_value(self).unwrap_or_default();
        let canonical = serde_json::to_string(&canonical(&value)).unwrap_or_default();
        Sha256::digest(canonical.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// One pinned role.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolePin {
    pub account_id: String,
    pub role_arn: String,
    /// When the pin was taken (RFC 3339), or `operator file`.
    #[serde(default)]
    pub pinned_at: String,
    pub fingerprint: String,
    pub state: PinnedState,
}

impl RolePin {
    pub fn new(account_id: &str, role: &IamRole) -> RolePin {
        let state = PinnedState::of(role);
        RolePin {
            account_id: account_id.to_string(),
            role_arn: role.arn.clone(),
            pinned_at: String::new(),
            fingerprint: state.fingerprint(),
            state,
        }
    }
}

/// The pin state file's content.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinFile {
    /// Format version, 1.
    pub version: u32,
    #[serde(default)]
    pub pins: Vec<RolePin>,
}

/// The pins a scan compares against, keyed by role ARN.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PinSet {
    /// Whether a pin state file is configured: without one, pins cannot persist and first
    /// sight pins nothing.
    pub persisted: bool,
    pub pins: BTreeMap<String, RolePin>,
}

/// One difference between the pinned and the current state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PinChange {
    /// `trust policy`, `inline policy NAME`, `attached policy ARN`, `permissions boundary`,
    /// `tag KEY`.
    pub part: String,
    /// `added`, `removed` or `changed`.
    pub change: &'static str,
    /// A unified-style line diff of the pretty-printed JSON (`-` pinned, `+` now).
    pub diff: Vec<String>,
}

fn pretty(value: Option<&Value>) -> Vec<String> {
    match value {
        None => Vec::new(),
        Some(v) => serde_json::to_string_pretty(v)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect(),
    }
}

/// A line diff by longest common subsequence: unchanged lines are left out, removed lines
/// start with `-`, added ones with `+`. Documents are small, so O(n·m) is fine.
pub fn line_diff(before: &[String], after: &[String]) -> Vec<String> {
    let (n, m) = (before.len(), after.len());
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if before[i] == after[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < n || j < m {
        if i < n && j < m && before[i] == after[j] {
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push(format!("+{}", after[j]));
            j += 1;
        } else {
            out.push(format!("-{}", before[i]));
            i += 1;
        }
    }
    out
}

fn compare(out: &mut Vec<PinChange>, part: String, before: Option<&Value>, after: Option<&Value>) {
    if before == after {
        return;
    }
    let change = match (before, after) {
        (None, _) => "added",
        (_, None) => "removed",
        _ => "changed",
    };
    out.push(PinChange {
        part,
        change,
        diff: line_diff(&pretty(before), &pretty(after)),
    });
}

/// Every difference from `pinned` to `now`, in a stable order.
pub fn diff(pinned: &PinnedState, now: &PinnedState) -> Vec<PinChange> {
    let mut out = Vec::new();
    compare(
        &mut out,
        "trust policy".into(),
        pinned.trust_policy.as_ref(),
        now.trust_policy.as_ref(),
    );
    let maps = [
        (
            "inline policy",
            &pinned.inline_policies,
            &now.inline_policies,
        ),
        (
            "attached policy",
            &pinned.attached_policies,
            &now.attached_policies,
        ),
    ];
    for (what, before, after) in maps {
        let keys: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
        for key in keys {
            compare(
                &mut out,
                format!("{what} {key}"),
                before.get(key),
                after.get(key),
            );
        }
    }
    let boundary = |b: &Option<String>| b.clone().map(Value::String);
    compare(
        &mut out,
        "permissions boundary".into(),
        boundary(&pinned.permissions_boundary).as_ref(),
        boundary(&now.permissions_boundary).as_ref(),
    );
    let keys: std::collections::BTreeSet<&String> =
        pinned.tags.keys().chain(now.tags.keys()).collect();
    for key in keys {
        let tag = |t: &BTreeMap<String, String>| t.get(key).cloned().map(Value::String);
        compare(
            &mut out,
            format!("tag {key}"),
            tag(&pinned.tags).as_ref(),
            tag(&now.tags).as_ref(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::IamPolicy;

    fn role() -> IamRole {
        IamRole {
            name: "acme-adminflyterole".into(),
            arn: "arn:aws:iam::123456789012:role/acme-adminflyterole".into(),
            trust_policy: Some(r#"{"Version":"2012-10-17","Statement":[]}"#.into()),
            inline_policies: vec![IamPolicy {
                name: "admin".into(),
                document:
                    r#"{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#
                        .into(),
            }],
            tags: BTreeMap::from([("team".into(), "union".into())]),
            ..Default::default()
        }
    }

    #[test]
    fn whitespace_and_key_order_do_not_change_the_fingerprint() {
        let mut reformatted = role();
        reformatted.inline_policies[0].document = "{ \"Statement\" : [ {\"Resource\":\"*\", \"Action\":\"s3:GetObject\",\n \"Effect\":\"Allow\"} ] }".into();
        assert_eq!(
            PinnedState::of(&role()).fingerprint(),
            PinnedState::of(&reformatted).fingerprint()
        );
    }

    #[test]
    fn an_edited_policy_a_new_tag_and_a_boundary_are_each_a_readable_change() {
        let pinned = PinnedState::of(&role());
        let mut edited = role();
        edited.inline_policies[0].document =
            r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#.into();
        edited.tags.insert("owner".into(), "me".into());
        edited.permissions_boundary = Some(crate::snapshot::IamBoundary {
            arn: "arn:aws:iam::123456789012:policy/cap".into(),
            document: None,
        });
        let now = PinnedState::of(&edited);
        assert_ne!(pinned.fingerprint(), now.fingerprint());
        let changes = diff(&pinned, &now);
        let parts: Vec<(&str, &str)> = changes
            .iter()
            .map(|c| (c.part.as_str(), c.change))
            .collect();
        assert_eq!(
            parts,
            vec![
                ("inline policy admin", "changed"),
                ("permissions boundary", "added"),
                ("tag owner", "added"),
            ]
        );
        assert!(changes[0]
            .diff
            .contains(&"-      \"Action\": \"s3:GetObject\",".to_string()));
        assert!(changes[0]
            .diff
            .contains(&"+      \"Action\": \"s3:*\",".to_string()));
    }

    #[test]
    fn line_diff_keeps_only_changed_lines() {
        let a: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let b: Vec<String> = ["a", "x", "c", "d"].iter().map(|s| s.to_string()).collect();
        assert_eq!(line_diff(&a, &b), vec!["+x", "-b", "+d"]);
    }
}
