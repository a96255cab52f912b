//! Trust-policy comparison: who may assume a role, and under what conditions.
//!
//! This module owns the `iam.trust_policy_drift` question. A trust policy is
//! reduced to the set of admissions it makes: (principal, action,
//! conditions), one per principal named in each statement. Two trust
//! policies are compared on those sets, never on their text, so statements
//! may be split, merged or reordered and `123456789012` may be written as
//! `arn:aws:iam::123456789012:root` without drift.
//!
//! What is reported ([`TrustDriftKind`]):
//! - a principal the role admits that is not expected (the role was opened to
//!   another account, service or identity provider), and the reverse;
//! - an action admitted for a principal that is not expected, and the
//!   reverse;
//! - condition differences for a principal and action: a missing condition
//!   (for example no `sts:ExternalId`), an unexpected one, or a different
//!   value (for example another OIDC `sub`).
//!
//! Secrets: values of the keys in [`TrustOptions::secret_condition_keys`]
//! (`sts:ExternalId` by default) are never stored in a drift, expected or
//! actual; the drift says the value "differs" instead.
//!
//! Unknown expected values: when the caller cannot supply an expected value
//! (an ExternalId that is not configured), the condition must still exist but
//! any value is accepted, and an informational
//! [`TrustDriftKind::ConditionNotCompared`] says the value could not be
//! checked. A value is unknown when its key is in
//! [`TrustOptions::any_value_condition_keys`] or when it contains the
//! template placeholder of [`crate::iam::policy::unknown_value`] (a
//! placeholder inside a longer value matches like `*`).
//!
//! Principals are compared literally after canonicalisation; a placeholder in
//! a principal is not treated as a wildcard.
//!
//! What is at stake ([`TrustRisk`], from [`TrustDrift::risk`]): a principal the
//! expectation does not name, or a secret (ExternalId) that no longer matches,
//! opens the role ([`TrustRisk::Opened`]); a missing condition or an extra
//! action loosens it ([`TrustRisk::Looser`]); a missing principal or action
//! locks the vendor out ([`TrustRisk::LockedOut`]); an added condition, a
//! narrower value set, `StringLike` without a wildcard in place of
//! `StringEquals`, or any Deny statement the expectation lacks only narrows it
//! ([`TrustRisk::Stricter`]). Deny statements are never reported as opening
//! the role: a Deny can only take admissions away.
//!
//! Optional conditions ([`TrustOptions::optional_condition_keys`]): a
//! documented setup may leave a condition out (the Union.ai guide's manual
//! role, "Require external ID" unchecked). Such a condition may be absent;
//! when present its value is compared like any other.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use super::grants::Target;
use super::pattern;
use super::policy::{
    contains_unknown, unknown_as_wildcard, ConditionClause, ConditionKey, Conditions, Effect,
    PatternSet, PolicyDocument, Principal, PrincipalKind, PrincipalScope, Principals,
};

/// How to compare two trust policies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustOptions {
    /// Partition used to write a bare account id (`123456789012`) as its root
    /// ARN, so both spellings are one principal. Defaults to `aws`.
    pub partition: String,
    /// Condition keys whose values are secrets and must never appear in a
    /// drift. Defaults to `sts:ExternalId`. Compared case-insensitively.
    pub secret_condition_keys: BTreeSet<ConditionKey>,
    /// Condition keys whose expected value is unknown: the condition must
    /// exist, with any value. Empty by default.
    pub any_value_condition_keys: BTreeSet<ConditionKey>,
    /// Condition keys an expected condition may lack: absent is not drift,
    /// present is compared. Empty by default.
    pub optional_condition_keys: BTreeSet<ConditionKey>,
}

impl Default for TrustOptions {
    fn default() -> Self {
        TrustOptions {
            partition: "aws".to_string(),
            secret_condition_keys: BTreeSet::from([ConditionKey::new("sts:ExternalId")]),
            any_value_condition_keys: BTreeSet::new(),
            optional_condition_keys: BTreeSet::new(),
        }
    }
}

impl TrustOptions {
    /// Options for when the ExternalId secret is not configured: an
    /// `sts:ExternalId` condition is still required, with any value.
    pub fn with_unknown_external_id(mut self) -> Self {
        self.any_value_condition_keys
            .insert(ConditionKey::new("sts:ExternalId"));
        self
    }
}

/// A principal as the comparison sees it, after canonicalisation.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum TrustPrincipal {
    /// `"Principal": "*"`.
    Everyone,
    /// One named principal; a bare AWS account id is written as its root ARN.
    One(Principal),
    /// `NotPrincipal`: everyone except these (compared as a whole).
    AllExcept(BTreeSet<Principal>),
}

impl TrustPrincipal {
    /// Words for what admitting this principal opens the role to.
    fn exposure(&self) -> &'static str {
        match self {
            TrustPrincipal::Everyone | TrustPrincipal::AllExcept(_) => "anyone",
            TrustPrincipal::One(p) => match p.kind {
                PrincipalKind::Aws if p.id == "*" => "any AWS identity",
                PrincipalKind::Aws if p.id.ends_with(":root") => "another account",
                PrincipalKind::Aws => "another identity",
                PrincipalKind::Service => "another service",
                PrincipalKind::Federated => "another identity provider",
                PrincipalKind::CanonicalUser => "another canonical user",
            },
        }
    }
}

impl fmt::Display for TrustPrincipal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrustPrincipal::Everyone => f.write_str("everyone (\"*\")"),
            TrustPrincipal::One(p) => write!(f, "{} {}", p.kind, p.id),
            TrustPrincipal::AllExcept(set) => {
                let names: Vec<String> =
                    set.iter().map(|p| format!("{} {}", p.kind, p.id)).collect();
                write!(f, "everyone except [{}]", names.join(", "))
            }
        }
    }
}

/// Condition values as a drift may show them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum ConditionValues {
    /// Values that may be shown.
    Shown(Vec<String>),
    /// The values of a secret key (such as `sts:ExternalId`), withheld.
    Secret,
}

impl fmt::Display for ConditionValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConditionValues::Shown(values) => write!(f, "[{}]", values.join(", ")),
            ConditionValues::Secret => f.write_str("a secret value"),
        }
    }
}

/// One way an actual trust policy differs from the expected one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct TrustDrift {
    /// Whether the differing statements allow or deny.
    pub effect: Effect,
    /// The principal concerned.
    pub principal: TrustPrincipal,
    /// What differs.
    pub kind: TrustDriftKind,
}

/// What differs for one principal.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum TrustDriftKind {
    /// The role admits a principal the expectation does not.
    PrincipalAdded {
        /// The actions it is admitted for.
        actions: Vec<String>,
    },
    /// The role does not admit an expected principal at all.
    PrincipalMissing {
        /// The actions it should be admitted for.
        actions: Vec<String>,
    },
    /// An expected principal is admitted for an unexpected action.
    ActionAdded {
        /// The action (lower-cased pattern).
        action: String,
    },
    /// An expected principal is not admitted for an expected action.
    ActionMissing {
        /// The action (lower-cased pattern).
        action: String,
    },
    /// An expected condition is absent, so the role is looser than expected.
    ConditionMissing {
        /// The action the condition guards.
        action: String,
        /// The condition operator.
        operator: String,
        /// The condition key.
        key: String,
        /// The expected values, or `Secret`.
        expected: ConditionValues,
    },
    /// The role carries a condition the expectation does not.
    ConditionAdded {
        /// The action the condition guards.
        action: String,
        /// The condition operator.
        operator: String,
        /// The condition key.
        key: String,
        /// The actual values, or `Secret`.
        actual: ConditionValues,
    },
    /// The condition exists on both sides with different values.
    ConditionDiffers {
        /// The action the condition guards.
        action: String,
        /// The condition operator.
        operator: String,
        /// The condition key.
        key: String,
        /// The expected values, or `Secret`.
        expected: ConditionValues,
        /// The actual values, or `Secret`.
        actual: ConditionValues,
    },
    /// The role's condition is at least as strict as the expected one: fewer
    /// values, or `StringLike` without a wildcard where `StringEquals` is
    /// expected. Never opens the role.
    ConditionStricter {
        /// The action the condition guards.
        action: String,
        /// The expected operator.
        operator: String,
        /// The condition key.
        key: String,
        /// How it is stricter, in words (never a secret value).
        how: String,
    },
    /// The condition exists, but its expected value is unknown so the value
    /// was not compared. Informational.
    ConditionNotCompared {
        /// The action the condition guards.
        action: String,
        /// The condition operator.
        operator: String,
        /// The condition key.
        key: String,
    },
}

/// What a trust drift puts at stake, most serious first in [`Ord`] reverse:
/// `Opened` is the worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TrustRisk {
    /// Nothing is at stake: a value could not be compared, or an equivalent
    /// spelling.
    Note,
    /// The role admits less than expected, and the vendor still gets in.
    Stricter,
    /// The vendor's principal or action is not admitted: the vendor is locked
    /// out, nobody else is let in.
    LockedOut,
    /// An expected condition (an ExternalId the template requires) is absent,
    /// or an action is admitted that is not expected.
    Looser,
    /// A principal the vendor did not document is admitted, or a configured
    /// secret (ExternalId) no longer matches.
    Opened,
}

impl TrustRisk {
    /// A short word for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            TrustRisk::Note => "note",
            TrustRisk::Stricter => "stricter",
            TrustRisk::LockedOut => "locked out",
            TrustRisk::Looser => "looser",
            TrustRisk::Opened => "opened",
        }
    }
}

impl TrustDrift {
    /// True for drifts that only say something could not be checked.
    pub fn is_informational(&self) -> bool {
        matches!(self.kind, TrustDriftKind::ConditionNotCompared { .. })
    }

    /// What the drift puts at stake. A Deny statement can only take
    /// admissions away, so a Deny the expectation lacks (or one that applies
    /// more widely) is stricter, and one that is missing or narrower is looser.
    pub fn risk(&self) -> TrustRisk {
        use TrustDriftKind as K;
        match (self.effect, &self.kind) {
            (_, K::ConditionNotCompared { .. }) => TrustRisk::Note,
            (_, K::ConditionStricter { how, .. }) if how.starts_with("equivalent") => {
                TrustRisk::Note
            }
            (Effect::Allow, K::PrincipalAdded { .. }) => TrustRisk::Opened,
            (Effect::Allow, K::ConditionDiffers { expected, .. })
                if *expected == ConditionValues::Secret =>
            {
                TrustRisk::Opened
            }
            // Another OIDC `sub` or source admits another identity.
            (Effect::Allow, K::ConditionDiffers { .. }) => TrustRisk::Opened,
            (Effect::Allow, K::ActionAdded { .. } | K::ConditionMissing { .. }) => {
                TrustRisk::Looser
            }
            (Effect::Allow, K::PrincipalMissing { .. } | K::ActionMissing { .. }) => {
                TrustRisk::LockedOut
            }
            (Effect::Allow, K::ConditionAdded { .. } | K::ConditionStricter { .. }) => {
                TrustRisk::Stricter
            }
            (
                Effect::Deny,
                K::PrincipalAdded { .. }
                | K::ActionAdded { .. }
                | K::ConditionMissing { .. }
                | K::ConditionStricter { .. },
            ) => TrustRisk::Stricter,
            (
                Effect::Deny,
                K::PrincipalMissing { .. }
                | K::ActionMissing { .. }
                | K::ConditionAdded { .. }
                | K::ConditionDiffers { .. },
            ) => TrustRisk::Looser,
        }
    }

    /// A one-line description for a report. Never contains a secret value.
    pub fn message(&self) -> String {
        let who = &self.principal;
        let deny = match self.effect {
            Effect::Allow => "",
            Effect::Deny => "Deny statement: ",
        };
        let text = match &self.kind {
            TrustDriftKind::PrincipalAdded { actions } if self.effect == Effect::Deny => format!(
                "trust policy denies {who} ({}), which is not expected: this only narrows who may assume the role",
                actions.join(", ")
            ),
            TrustDriftKind::ActionAdded { action } if self.effect == Effect::Deny => format!(
                "trust policy denies {who} {action}, which is not expected: this only narrows the trust"
            ),
            TrustDriftKind::PrincipalAdded { actions } => format!(
                "trust policy admits {who} ({}), which is not expected: the role is open to {}",
                actions.join(", "),
                who.exposure()
            ),
            TrustDriftKind::PrincipalMissing { actions } => format!(
                "trust policy does not admit {who} ({}), which is expected",
                actions.join(", ")
            ),
            TrustDriftKind::ActionAdded { action } => {
                format!("trust policy lets {who} perform {action}, which is not expected")
            }
            TrustDriftKind::ActionMissing { action } => {
                format!("trust policy does not let {who} perform {action}, which is expected")
            }
            TrustDriftKind::ConditionMissing {
                action,
                operator,
                key,
                expected,
            } => format!(
                "{action} by {who} lacks the expected condition {operator} {key} (expected {expected})"
            ),
            TrustDriftKind::ConditionAdded {
                action,
                operator,
                key,
                actual,
            } => format!("{action} by {who} has an unexpected condition {operator} {key} = {actual}"),
            TrustDriftKind::ConditionDiffers {
                action,
                operator,
                key,
                expected,
                actual,
            } => match (expected, actual) {
                (ConditionValues::Shown(e), ConditionValues::Shown(a)) => format!(
                    "{action} by {who}: condition {operator} {key} is [{}] but [{}] is expected",
                    a.join(", "),
                    e.join(", ")
                ),
                _ => format!(
                    "{action} by {who}: the value of condition {operator} {key} differs from the expected one"
                ),
            },
            TrustDriftKind::ConditionStricter {
                action,
                operator,
                key,
                how,
            } => format!("{action} by {who}: condition {operator} {key} is {how}"),
            TrustDriftKind::ConditionNotCompared {
                action,
                operator,
                key,
            } => format!(
                "{action} by {who}: condition {operator} {key} is present, but its value could not be compared because the expected value is not configured"
            ),
        };
        format!("{deny}{text}")
    }
}

impl fmt::Display for TrustDrift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

/// One (action, conditions) pair admitted for a principal.
type Entry = (Target, Conditions);

/// Admissions grouped by (effect, principal).
type Admissions = BTreeMap<(Effect, TrustPrincipal), BTreeSet<Entry>>;

fn canonical(principal: &Principal, partition: &str) -> Principal {
    let id = principal.id.trim();
    let id = if principal.kind == PrincipalKind::Aws
        && id.len() == 12
        && id.bytes().all(|b| b.is_ascii_digit())
    {
        format!("arn:{partition}:iam::{id}:root")
    } else {
        id.to_string()
    };
    Principal {
        kind: principal.kind,
        id,
    }
}

fn admissions(policy: &PolicyDocument, options: &TrustOptions) -> Admissions {
    let mut result = Admissions::new();
    for statement in &policy.statements {
        let Some(scope) = &statement.principal else {
            continue;
        };
        let principals: Vec<TrustPrincipal> = match scope {
            PrincipalScope::Only(Principals::Everyone) => vec![TrustPrincipal::Everyone],
            PrincipalScope::Only(Principals::Listed(set)) => set
                .iter()
                .map(|p| TrustPrincipal::One(canonical(p, &options.partition)))
                .collect(),
            PrincipalScope::AllExcept(Principals::Everyone) => {
                vec![TrustPrincipal::AllExcept(BTreeSet::new())]
            }
            PrincipalScope::AllExcept(Principals::Listed(set)) => vec![TrustPrincipal::AllExcept(
                set.iter()
                    .map(|p| canonical(p, &options.partition))
                    .collect(),
            )],
        };
        let actions: Vec<Target> = match &statement.action {
            PatternSet::Only(list) => list
                .iter()
                .map(|a| Target::Pattern(a.to_lowercase().into()))
                .collect(),
            PatternSet::AllExcept(list) => {
                let excluded: BTreeSet<String> = list.iter().map(|a| a.to_lowercase()).collect();
                vec![Target::AllExcept(excluded.into_iter().collect())]
            }
        };
        for principal in principals {
            let entries = result.entry((statement.effect, principal)).or_default();
            for action in &actions {
                entries.insert((action.clone(), statement.conditions.clone()));
            }
        }
    }
    result
}

fn shown(clause: &ConditionClause, options: &TrustOptions) -> ConditionValues {
    if options.secret_condition_keys.contains(&clause.key) {
        ConditionValues::Secret
    } else {
        ConditionValues::Shown(clause.values.iter().cloned().collect())
    }
}

/// The result of comparing the expected and actual condition blocks of one
/// admission.
struct ConditionComparison {
    /// Real differences.
    drifts: Vec<TrustDriftKind>,
    /// Informational notes (values not compared).
    notes: Vec<TrustDriftKind>,
}

/// True when a value has no IAM wildcard, so `StringLike` on it tests equality.
fn wildcard_free(value: &str) -> bool {
    !value.contains(['*', '?'])
}

/// The actual clause that tests what `want` tests: the same operator and key,
/// or `StringLike` without a wildcard for `StringEquals` (and back).
fn counterpart<'a>(want: &ConditionClause, actual: &'a Conditions) -> Option<&'a ConditionClause> {
    actual.get(&want.operator, want.key.as_str()).or_else(|| {
        let other = match want.operator.as_str() {
            "StringEquals" => "StringLike",
            "StringLike" => "StringEquals",
            _ => return None,
        };
        actual
            .get(other, want.key.as_str())
            .filter(|have| have.values.iter().all(|v| wildcard_free(v)))
    })
}

fn compare_conditions(
    action: &str,
    expected: &Conditions,
    actual: &Conditions,
    options: &TrustOptions,
) -> ConditionComparison {
    let mut drifts = Vec::new();
    let mut notes = Vec::new();
    let mut matched: Vec<&ConditionClause> = Vec::new();
    for want in expected.clauses() {
        let operator = want.operator.clone();
        let key = want.key.to_string();
        let Some(have) = counterpart(want, actual) else {
            if !options.optional_condition_keys.contains(&want.key) {
                drifts.push(TrustDriftKind::ConditionMissing {
                    action: action.to_string(),
                    operator,
                    key,
                    expected: shown(want, options),
                });
            }
            continue;
        };
        matched.push(have);
        let any_value = options.any_value_condition_keys.contains(&want.key)
            || want.values.iter().any(|v| contains_unknown(v));
        // The expected values as patterns: a `StringLike` expectation, or an
        // unknown value, matches more than its literal text.
        let patterns: Vec<String> = if options.any_value_condition_keys.contains(&want.key) {
            vec!["*".to_string()]
        } else if want.operator == "StringLike" || any_value {
            want.values.iter().map(|v| unknown_as_wildcard(v)).collect()
        } else {
            Vec::new()
        };
        let within = |v: &String| {
            if patterns.is_empty() {
                want.values.contains(v)
            } else {
                patterns.iter().any(|p| pattern::matches(p, v, false))
            }
        };
        let same_operator = have.operator == want.operator;
        let same = if any_value {
            !have.values.is_empty() && have.values.iter().all(within)
        } else {
            same_operator && want.values == have.values
        };
        if same {
            if any_value {
                notes.push(TrustDriftKind::ConditionNotCompared {
                    action: action.to_string(),
                    operator,
                    key,
                });
            }
            continue;
        }
        // Every value the role accepts is one the expectation accepts: the
        // role admits a subset of what is expected.
        let narrower = !have.values.is_empty() && have.values.iter().all(within);
        let secret = options.secret_condition_keys.contains(&want.key);
        if narrower {
            let how = if have.values.len() == want.values.len()
                && have.values.iter().all(|v| want.values.contains(v))
            {
                format!(
                    "equivalent: {} without a wildcard tests the same values",
                    have.operator
                )
            } else if secret {
                "stricter: it accepts fewer of the expected values".to_string()
            } else {
                let values: Vec<&str> = have.values.iter().map(String::as_str).collect();
                format!(
                    "stricter: it accepts only [{}] of the expected values",
                    values.join(", ")
                )
            };
            drifts.push(TrustDriftKind::ConditionStricter {
                action: action.to_string(),
                operator,
                key,
                how,
            });
            continue;
        }
        drifts.push(TrustDriftKind::ConditionDiffers {
            action: action.to_string(),
            operator,
            key,
            expected: shown(want, options),
            actual: shown(have, options),
        });
    }
    for have in actual.clauses() {
        if !matched.contains(&have) {
            drifts.push(TrustDriftKind::ConditionAdded {
                action: action.to_string(),
                operator: have.operator.clone(),
                key: have.key.to_string(),
                actual: shown(have, options),
            });
        }
    }
    ConditionComparison { drifts, notes }
}

/// Compares each (expected, actual) pair of condition blocks and keeps the
/// comparison with the fewest real differences: the statement the other
/// side most probably meant.
fn best_comparison<'a>(
    action: &str,
    pairs: impl Iterator<Item = (&'a Conditions, &'a Conditions)>,
    options: &TrustOptions,
) -> Option<ConditionComparison> {
    pairs
        .map(|(expected, actual)| compare_conditions(action, expected, actual, options))
        .min_by_key(|c| {
            let worst = c
                .drifts
                .iter()
                .map(|kind| {
                    TrustDrift {
                        effect: Effect::Allow,
                        principal: TrustPrincipal::Everyone,
                        kind: kind.clone(),
                    }
                    .risk()
                })
                .max();
            (worst, c.drifts.len())
        })
}

/// Compares what two trust policies admit and lists every difference,
/// sorted; see the module documentation for what is reported. `expected`
/// and `actual` statements without a principal are ignored.
pub fn compare_trust(
    expected: &PolicyDocument,
    actual: &PolicyDocument,
    options: &TrustOptions,
) -> Vec<TrustDrift> {
    let want = admissions(expected, options);
    let have = admissions(actual, options);
    let mut drifts: BTreeSet<TrustDrift> = BTreeSet::new();
    let keys: BTreeSet<&(Effect, TrustPrincipal)> = want.keys().chain(have.keys()).collect();
    let action_names = |entries: &BTreeSet<Entry>| -> Vec<String> {
        entries
            .iter()
            .map(|(a, _)| a.to_string())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    };
    for key in keys {
        let (effect, principal) = key;
        let push = |drifts: &mut BTreeSet<TrustDrift>, kind: TrustDriftKind| {
            drifts.insert(TrustDrift {
                effect: *effect,
                principal: principal.clone(),
                kind,
            });
        };
        let (expected_entries, actual_entries) = match (want.get(key), have.get(key)) {
            (Some(e), Some(a)) => (e, a),
            (None, Some(a)) => {
                push(
                    &mut drifts,
                    TrustDriftKind::PrincipalAdded {
                        actions: action_names(a),
                    },
                );
                continue;
            }
            (Some(e), None) => {
                push(
                    &mut drifts,
                    TrustDriftKind::PrincipalMissing {
                        actions: action_names(e),
                    },
                );
                continue;
            }
            (None, None) => continue,
        };
        // Every expected admission must be matched by an actual one whose
        // action covers it, with the same conditions.
        for (action, conditions) in expected_entries {
            let label = action.to_string();
            let pairs = actual_entries
                .iter()
                .filter(|(a, _)| a.covers(action, true))
                .map(|(_, actual_conditions)| (conditions, actual_conditions));
            match best_comparison(&label, pairs, options) {
                None => push(&mut drifts, TrustDriftKind::ActionMissing { action: label }),
                Some(comparison) => {
                    for kind in comparison.drifts.into_iter().chain(comparison.notes) {
                        push(&mut drifts, kind);
                    }
                }
            }
        }
        // Every actual admission must be accounted for by an expected one,
        // with the same conditions; otherwise the role admits more.
        for (action, conditions) in actual_entries {
            let related: Vec<(&Target, &Conditions)> = expected_entries
                .iter()
                .filter(|(e, _)| e.covers(action, true))
                .map(|(e, c)| (e, c))
                .collect();
            let Some((label_target, _)) = related.first() else {
                push(
                    &mut drifts,
                    TrustDriftKind::ActionAdded {
                        action: action.to_string(),
                    },
                );
                continue;
            };
            let label = label_target.to_string();
            let pairs = related
                .iter()
                .map(|(_, expected_conditions)| (*expected_conditions, conditions));
            if let Some(comparison) = best_comparison(&label, pairs, options) {
                for kind in comparison.drifts {
                    push(&mut drifts, kind);
                }
            }
        }
    }
    drifts.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNION: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
        "Principal":{"AWS":"arn:aws:iam::479331373192:root"},"Action":"sts:AssumeRole",
        "Condition":{"StringEquals":{"sts:ExternalId":"s3cr3t-value"}}}]}"#;

    fn doc(text: &str) -> PolicyDocument {
        PolicyDocument::parse(text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    fn compare(expected: &str, actual: &str) -> Vec<TrustDrift> {
        compare_trust(&doc(expected), &doc(actual), &TrustOptions::default())
    }

    fn kinds(drifts: &[TrustDrift]) -> Vec<&TrustDriftKind> {
        drifts.iter().map(|d| &d.kind).collect()
    }

    #[test]
    fn identical_trust_policies_do_not_drift() {
        assert!(compare(UNION, UNION).is_empty());
    }

    #[test]
    fn bare_account_id_and_root_arn_are_the_same_principal() {
        let bare = r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"479331373192"},"Action":"sts:assumerole",
            "Condition":{"StringEquals":{"STS:EXTERNALID":["s3cr3t-value"]}}}}"#;
        assert!(
            compare(UNION, bare).is_empty(),
            "{:?}",
            compare(UNION, bare)
        );
    }

    #[test]
    fn split_statements_admit_the_same_set() {
        let expected = r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":["111111111111","222222222222"]},
            "Action":["sts:AssumeRole","sts:TagSession"]}}"#;
        let actual = r#"{"Statement":[
            {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::222222222222:root"},"Action":"sts:TagSession"},
            {"Effect":"Allow","Principal":{"AWS":"111111111111"},"Action":["sts:TagSession","sts:AssumeRole"]},
            {"Effect":"Allow","Principal":{"AWS":"222222222222"},"Action":"sts:AssumeRole"}]}"#;
        assert!(compare(expected, actual).is_empty());
    }

    #[test]
    fn another_account_admitted_is_reported_as_opened() {
        let actual = r#"{"Statement":[{"Effect":"Allow",
            "Principal":{"AWS":["arn:aws:iam::479331373192:root","999988887777"]},"Action":"sts:AssumeRole",
            "Condition":{"StringEquals":{"sts:ExternalId":"s3cr3t-value"}}}]}"#;
        let drifts = compare(UNION, actual);
        assert_eq!(drifts.len(), 1, "{drifts:?}");
        assert!(matches!(
            drifts[0].kind,
            TrustDriftKind::PrincipalAdded { .. }
        ));
        let message = drifts[0].message();
        assert!(
            message.contains("arn:aws:iam::999988887777:root"),
            "{message}"
        );
        assert!(message.contains("open to another account"), "{message}");
    }

    #[test]
    fn expected_principal_not_admitted_is_reported() {
        let actual = r#"{"Statement":{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}}"#;
        let drifts = compare(UNION, actual);
        assert_eq!(drifts.len(), 2);
        assert!(kinds(&drifts)
            .iter()
            .any(|k| matches!(k, TrustDriftKind::PrincipalMissing { .. })));
        assert!(kinds(&drifts)
            .iter()
            .any(|k| matches!(k, TrustDriftKind::PrincipalAdded { .. })));
    }

    #[test]
    fn missing_external_id_condition_is_reported_without_its_value() {
        let actual = r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"479331373192"},"Action":"sts:AssumeRole"}}"#;
        let drifts = compare(UNION, actual);
        assert_eq!(drifts.len(), 1, "{drifts:?}");
        match &drifts[0].kind {
            TrustDriftKind::ConditionMissing { key, expected, .. } => {
                assert_eq!(key, "sts:ExternalId");
                assert_eq!(expected, &ConditionValues::Secret);
            }
            other => panic!("{other:?}"),
        }
        assert!(!drifts[0].message().contains("s3cr3t"));
    }

    #[test]
    fn different_external_id_says_differs_and_leaks_neither_value() {
        let actual = UNION.replace("s3cr3t-value", "other-secret");
        let drifts = compare(UNION, &actual);
        assert_eq!(drifts.len(), 1, "{drifts:?}");
        let message = drifts[0].message();
        assert!(message.contains("differs"), "{message}");
        assert!(
            !message.contains("s3cr3t") && !message.contains("other-secret"),
            "{message}"
        );
        let serialised = serde_json::to_string(&drifts).unwrap();
        assert!(!serialised.contains("s3cr3t") && !serialised.contains("other-secret"));
    }

    #[test]
    fn unknown_external_id_requires_the_condition_but_not_its_value() {
        let options = TrustOptions::default().with_unknown_external_id();
        let expected = doc(UNION);
        let actual = doc(&UNION.replace("s3cr3t-value", "whatever-they-set"));
        let drifts = compare_trust(&expected, &actual, &options);
        assert_eq!(drifts.len(), 1);
        assert!(drifts[0].is_informational());
        assert!(drifts[0].message().contains("could not be compared"));

        let no_condition = doc(
            r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"479331373192"},"Action":"sts:AssumeRole"}}"#,
        );
        let drifts = compare_trust(&expected, &no_condition, &options);
        assert!(matches!(
            drifts[0].kind,
            TrustDriftKind::ConditionMissing { .. }
        ));
        assert!(!drifts[0].is_informational());
    }

    #[test]
    fn template_placeholder_means_any_value() {
        let expected = UNION.replace(
            "s3cr3t-value",
            &crate::iam::policy::unknown_value("ExternalId"),
        );
        let drifts = compare(&expected, &UNION.replace("s3cr3t-value", "abc12345"));
        assert_eq!(drifts.len(), 1);
        assert!(drifts[0].is_informational());
    }

    #[test]
    fn different_oidc_sub_is_reported_with_values() {
        let expected = r#"{"Statement":{"Effect":"Allow",
            "Principal":{"Federated":"arn:aws:iam::111122223333:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABC"},
            "Action":"sts:AssumeRoleWithWebIdentity",
            "Condition":{"StringEquals":{"oidc.eks.us-east-1.amazonaws.com/id/ABC:sub":["system:serviceaccount:p-d1:default"]}}}}"#;
        let actual = expected.replace("p-d1", "p-d2");
        let drifts = compare(expected, &actual);
        assert_eq!(drifts.len(), 1);
        let message = drifts[0].message();
        assert!(
            message.contains("system:serviceaccount:p-d2:default"),
            "{message}"
        );
        assert!(
            message.contains("system:serviceaccount:p-d1:default"),
            "{message}"
        );
    }

    #[test]
    fn extra_condition_and_extra_action_are_reported() {
        let actual = r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"479331373192"},"Action":"sts:AssumeRole",
            "Condition":{"StringEquals":{"sts:ExternalId":"s3cr3t-value"},"Bool":{"aws:MultiFactorAuthPresent":"true"}}},
            {"Effect":"Allow","Principal":{"AWS":"479331373192"},"Action":"sts:TagSession"}]}"#;
        let drifts = compare(UNION, actual);
        let kinds = kinds(&drifts);
        assert_eq!(kinds.len(), 2, "{drifts:?}");
        assert!(kinds.iter().any(|k| matches!(k, TrustDriftKind::ConditionAdded { key, .. } if key == "aws:MultiFactorAuthPresent")));
        assert!(kinds.iter().any(
            |k| matches!(k, TrustDriftKind::ActionAdded { action } if action == "sts:tagsession")
        ));
    }

    #[test]
    fn a_looser_second_statement_for_the_same_principal_is_reported() {
        let actual = r#"{"Statement":[
            {"Effect":"Allow","Principal":{"AWS":"479331373192"},"Action":"sts:AssumeRole",
             "Condition":{"StringEquals":{"sts:ExternalId":"s3cr3t-value"}}},
            {"Effect":"Allow","Principal":{"AWS":"479331373192"},"Action":"sts:AssumeRole"}]}"#;
        let drifts = compare(UNION, actual);
        assert_eq!(drifts.len(), 1, "{drifts:?}");
        assert!(matches!(
            drifts[0].kind,
            TrustDriftKind::ConditionMissing { .. }
        ));
    }

    #[test]
    fn wildcard_actual_action_is_reported_as_added() {
        let expected = r#"{"Statement":{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}}"#;
        let actual = r#"{"Statement":{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:*"}}"#;
        let drifts = compare(expected, actual);
        assert_eq!(drifts.len(), 1, "{drifts:?}");
        assert!(
            matches!(&drifts[0].kind, TrustDriftKind::ActionAdded { action } if action == "sts:*")
        );
    }

    #[test]
    fn everyone_admitted_is_reported() {
        let actual =
            r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"}}"#;
        let drifts = compare(UNION, actual);
        let added = drifts
            .iter()
            .find(|d| matches!(d.kind, TrustDriftKind::PrincipalAdded { .. }))
            .unwrap();
        assert_eq!(added.principal, TrustPrincipal::Everyone);
        assert!(added.message().contains("open to anyone"));
    }

    fn risks(drifts: &[TrustDrift]) -> Vec<TrustRisk> {
        drifts.iter().map(TrustDrift::risk).collect()
    }

    #[test]
    fn a_deny_statement_narrows_the_trust_and_is_never_reported_as_opening_it() {
        let actual = r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"479331373192"},"Action":"sts:AssumeRole",
            "Condition":{"StringEquals":{"sts:ExternalId":"s3cr3t-value"}}},
            {"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::999988887777:root"},"Action":"sts:AssumeRole"}]}"#;
        let drifts = compare(UNION, actual);
        assert_eq!(drifts.len(), 1, "{drifts:?}");
        assert_eq!(drifts[0].risk(), TrustRisk::Stricter);
        let message = drifts[0].message();
        assert!(message.contains("denies"), "{message}");
        assert!(!message.contains("open to"), "{message}");
    }

    #[test]
    fn an_added_source_ip_condition_is_stricter_not_critical() {
        let actual = r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"479331373192"},"Action":"sts:AssumeRole",
            "Condition":{"StringEquals":{"sts:ExternalId":"s3cr3t-value"},"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}}]}"#;
        let drifts = compare(UNION, actual);
        assert_eq!(risks(&drifts), [TrustRisk::Stricter], "{drifts:?}");
    }

    #[test]
    fn string_like_without_a_wildcard_is_equivalent_to_string_equals() {
        let actual = UNION.replace("StringEquals", "StringLike");
        let drifts = compare(UNION, &actual);
        assert_eq!(risks(&drifts), [TrustRisk::Note], "{drifts:?}");
        assert!(!drifts[0].message().contains("s3cr3t"));
        // With a wildcard it accepts other values: a different, opened, condition.
        let widened = UNION
            .replace("StringEquals", "StringLike")
            .replace("s3cr3t-value", "s3cr3t-*");
        let drifts = compare(UNION, &widened);
        assert!(risks(&drifts).contains(&TrustRisk::Looser), "{drifts:?}");
    }

    #[test]
    fn fewer_oidc_subjects_than_expected_is_stricter() {
        let expected = r#"{"Statement":{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::111122223333:oidc-provider/x"},
            "Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"x:sub":["a","b"]}}}}"#;
        let actual = expected.replace(r#"["a","b"]"#, r#""a""#);
        assert_eq!(risks(&compare(expected, &actual)), [TrustRisk::Stricter]);
        let other = expected.replace(r#"["a","b"]"#, r#"["a","c"]"#);
        assert_eq!(risks(&compare(expected, &other)), [TrustRisk::Opened]);
    }

    #[test]
    fn severities_follow_what_is_at_stake() {
        let opened = r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":["479331373192","999988887777"]},"Action":"sts:AssumeRole",
            "Condition":{"StringEquals":{"sts:ExternalId":"s3cr3t-value"}}}]}"#;
        assert_eq!(risks(&compare(UNION, opened)), [TrustRisk::Opened]);
        let wrong_secret = UNION.replace("s3cr3t-value", "other");
        assert_eq!(risks(&compare(UNION, &wrong_secret)), [TrustRisk::Opened]);
        let no_external_id = r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"479331373192"},"Action":"sts:AssumeRole"}}"#;
        assert_eq!(risks(&compare(UNION, no_external_id)), [TrustRisk::Looser]);
    }

    #[test]
    fn an_optional_external_id_may_be_absent_but_must_match_when_present() {
        let mut options = TrustOptions::default();
        options
            .optional_condition_keys
            .insert(ConditionKey::new("sts:ExternalId"));
        let absent = doc(
            r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"479331373192"},"Action":"sts:AssumeRole"}}"#,
        );
        assert!(compare_trust(&doc(UNION), &absent, &options).is_empty());
        assert!(compare_trust(&doc(UNION), &doc(UNION), &options).is_empty());
        let wrong = doc(&UNION.replace("s3cr3t-value", "other"));
        let drifts = compare_trust(&doc(UNION), &wrong, &options);
        assert_eq!(risks(&drifts), [TrustRisk::Opened]);
    }
}
