//! What a set of identity policies grants, and how two such sets differ.
//!
//! This module owns the rule "compare what is granted, never the text". Each
//! statement is expanded into [`Grant`]s, one per (action, resource) pair,
//! carrying the statement's condition block. Splitting, merging, reordering,
//! re-casing action names, duplicating statements or writing a one-element
//! list as a string therefore cannot change the result.
//!
//! Semantics and the choices made where IAM is richer than this model:
//!
//! - **Coverage.** A grant is covered by another when the other's action
//!   pattern covers it (case-insensitively), its resource pattern covers it
//!   (case-sensitively) and its conditions are no stricter (its clauses are a
//!   subset). Coverage is by a single grant: `ec2:*` is not assembled from a
//!   list of every ec2 action.
//! - **`NotAction` / `NotResource`.** They become a [`Target::AllExcept`].
//!   "All except X" covers a pattern exactly when the pattern shares no string
//!   with any of X; a plain pattern covers "all except Y" only if it is `*`;
//!   "all except X" covers "all except Y" when every X is covered by some Y.
//!   All of these are sound: they may fail to see a coverage that holds, which
//!   shows up as a reported difference, never as a hidden one.
//! - **Deny, when looking for missing grants.** An actual Deny removes an
//!   expected grant if it *may* touch any part of it (its action and resource
//!   overlap the grant's), whatever its conditions: a grant that is denied
//!   under some conditions is not reliably granted, and the report should say
//!   so. A Deny that the expectation itself contains (covered by an expected
//!   Deny) is not held against the role.
//! - **Deny, when looking for excess.** An actual Allow stops being excess
//!   only if an unconditional actual Deny covers all of it. An actual Allow
//!   that overlaps an expected Deny is excess unless the role carries that
//!   Deny too.
//! - **Conditions** compare clause by clause with exact value sets (see
//!   [`crate::iam::policy::Conditions`]); no operator semantics are applied,
//!   so `StringLike` is not known to be looser than `StringEquals`.
//! - A statement without `Resource` (only possible with a `Principal`) is
//!   read as `Resource: "*"`. Principals are ignored here; trust is
//!   [`crate::iam::trust`]'s business.
//! - A template placeholder for an unknown value inside an ARN (see
//!   [`crate::iam::policy::unknown_value`]) stands for some fixed value: an
//!   actual ARN with any value in its place covers it (see
//!   [`crate::iam::pattern`]), and it covers such an ARN.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use super::pattern::Pattern;
use super::policy::{Conditions, Effect, PatternSet, PolicyDocument};

/// The actions or resources one grant applies to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Target {
    /// Everything the pattern matches (`*` and `?` wildcards).
    Pattern(String),
    /// Everything matched by none of the patterns (`NotAction`,
    /// `NotResource`). Sorted and without duplicates.
    AllExcept(Vec<String>),
}

impl Target {
    /// True when everything `specific` names is also named by `self`.
    /// Sound, as described in the module documentation.
    pub fn covers(&self, specific: &Target, case_insensitive: bool) -> bool {
        CompiledTarget::new(self, case_insensitive)
            .covers(&CompiledTarget::new(specific, case_insensitive))
    }
}

/// A [`Target`] with its patterns tokenised once, for pairwise comparisons.
enum CompiledTarget {
    Pattern(Pattern),
    AllExcept(Vec<Pattern>),
}

impl CompiledTarget {
    fn new(target: &Target, case_insensitive: bool) -> Self {
        match target {
            Target::Pattern(p) => CompiledTarget::Pattern(Pattern::new(p, case_insensitive)),
            Target::AllExcept(list) => CompiledTarget::AllExcept(
                list.iter()
                    .map(|p| Pattern::new(p, case_insensitive))
                    .collect(),
            ),
        }
    }

    fn covers(&self, specific: &CompiledTarget) -> bool {
        match (self, specific) {
            (CompiledTarget::Pattern(general), CompiledTarget::Pattern(specific)) => {
                general.covers(specific)
            }
            // Everything but X covers p exactly when p shares nothing with X.
            (CompiledTarget::AllExcept(excluded), CompiledTarget::Pattern(specific)) => {
                excluded.iter().all(|x| !x.overlaps(specific))
            }
            // A pattern covers "everything but Y" for sure only if it is `*`.
            (CompiledTarget::Pattern(general), CompiledTarget::AllExcept(_)) => {
                general.matches_everything()
            }
            // Everything but X covers everything but Y when X is within Y.
            (CompiledTarget::AllExcept(general), CompiledTarget::AllExcept(specific)) => {
                general.iter().all(|x| specific.iter().any(|y| y.covers(x)))
            }
        }
    }

    fn may_overlap(&self, other: &CompiledTarget) -> bool {
        match (self, other) {
            (CompiledTarget::Pattern(a), CompiledTarget::Pattern(b)) => a.overlaps(b),
            (CompiledTarget::AllExcept(excluded), CompiledTarget::Pattern(p))
            | (CompiledTarget::Pattern(p), CompiledTarget::AllExcept(excluded)) => {
                !excluded.iter().any(|x| x.covers(p))
            }
            (CompiledTarget::AllExcept(a), CompiledTarget::AllExcept(b)) => {
                !a.iter().chain(b).any(Pattern::matches_everything)
            }
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Pattern(p) => f.write_str(p),
            Target::AllExcept(excluded) => write!(f, "all except [{}]", excluded.join(", ")),
        }
    }
}

/// One permission: an action on a resource, under conditions.
///
/// Actions are stored lower-cased, since IAM compares them without case;
/// resources are stored as written.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Grant {
    /// The action pattern(s), lower-cased.
    pub action: Target,
    /// The resource pattern(s).
    pub resource: Target,
    /// The statement's condition block; empty when unconditional.
    pub conditions: Conditions,
}

impl Grant {}

/// A [`Grant`] with its patterns tokenised once.
struct CompiledGrant<'g> {
    grant: &'g Grant,
    action: CompiledTarget,
    resource: CompiledTarget,
}

impl<'g> CompiledGrant<'g> {
    fn new(grant: &'g Grant) -> Self {
        CompiledGrant {
            grant,
            action: CompiledTarget::new(&grant.action, true),
            resource: CompiledTarget::new(&grant.resource, false),
        }
    }

    fn all(grants: &'g BTreeSet<Grant>) -> Vec<Self> {
        grants.iter().map(CompiledGrant::new).collect()
    }

    /// Action and resource coverage, ignoring conditions.
    fn covers_scope(&self, other: &CompiledGrant) -> bool {
        self.action.covers(&other.action) && self.resource.covers(&other.resource)
    }

    fn covers(&self, other: &CompiledGrant) -> bool {
        self.grant.conditions.is_subset_of(&other.grant.conditions) && self.covers_scope(other)
    }

    fn may_overlap(&self, other: &CompiledGrant) -> bool {
        self.action.may_overlap(&other.action) && self.resource.may_overlap(&other.resource)
    }
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} on {}", self.action, self.resource)?;
        if !self.conditions.is_empty() {
            write!(f, " when {}", self.conditions)?;
        }
        Ok(())
    }
}

/// The union of what some policies allow, with their explicit denies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EffectiveGrants {
    allows: BTreeSet<Grant>,
    denies: BTreeSet<Grant>,
}

impl EffectiveGrants {
    /// Expands every statement of every policy into grants.
    pub fn from_policies<'a>(policies: impl IntoIterator<Item = &'a PolicyDocument>) -> Self {
        let mut grants = EffectiveGrants::default();
        for policy in policies {
            for statement in &policy.statements {
                let actions = targets(&statement.action, |a| a.to_lowercase());
                let resources = match &statement.resource {
                    Some(set) => targets(set, str::to_string),
                    None => vec![Target::Pattern("*".to_string())],
                };
                let sink = match statement.effect {
                    Effect::Allow => &mut grants.allows,
                    Effect::Deny => &mut grants.denies,
                };
                for action in &actions {
                    for resource in &resources {
                        sink.insert(Grant {
                            action: action.clone(),
                            resource: resource.clone(),
                            conditions: statement.conditions.clone(),
                        });
                    }
                }
            }
        }
        grants
    }

    /// The allowed grants, without duplicates.
    #[cfg(test)]
    pub fn allows(&self) -> &BTreeSet<Grant> {
        &self.allows
    }
}

/// Expands an `Action`/`Resource` element into targets: one per pattern, or
/// one "all except" for the `Not` forms.
fn targets(set: &PatternSet, normalise: impl Fn(&str) -> String) -> Vec<Target> {
    match set {
        PatternSet::Only(patterns) => patterns
            .iter()
            .map(|p| Target::Pattern(normalise(p)))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
        PatternSet::AllExcept(patterns) => {
            let excluded: BTreeSet<String> = patterns.iter().map(|p| normalise(p)).collect();
            vec![Target::AllExcept(excluded.into_iter().collect())]
        }
    }
}

/// The union of the grants of `policies` (see [`EffectiveGrants`]).
pub fn effective_grants(policies: &[PolicyDocument]) -> EffectiveGrants {
    EffectiveGrants::from_policies(policies)
}

/// Both sides of a comparison, with every pattern tokenised once.
struct Compiled<'g> {
    allows: Vec<CompiledGrant<'g>>,
    denies: Vec<CompiledGrant<'g>>,
}

impl<'g> Compiled<'g> {
    fn new(grants: &'g EffectiveGrants) -> Self {
        Compiled {
            allows: CompiledGrant::all(&grants.allows),
            denies: CompiledGrant::all(&grants.denies),
        }
    }
}

/// The expected grants that `actual` does not reliably give: no actual Allow
/// covers them, or an actual Deny (conditional or not, and not itself part of
/// the expectation) may touch them. Sorted, without duplicates.
pub fn missing(expected: &EffectiveGrants, actual: &EffectiveGrants) -> Vec<Grant> {
    missing_with_reasons(expected, actual)
        .into_iter()
        .map(|(grant, _)| grant)
        .collect()
}

/// Like [`missing`], with the reason each grant is missing, so a report can
/// tell "add this permission" from "remove that Deny".
pub fn missing_with_reasons(
    expected: &EffectiveGrants,
    actual: &EffectiveGrants,
) -> Vec<(Grant, MissingReason)> {
    let want = Compiled::new(expected);
    let have = Compiled::new(actual);
    want.allows
        .iter()
        .filter_map(|grant| {
            reason_missing(grant, &want, &have).map(|reason| (grant.grant.clone(), reason))
        })
        .collect()
}

/// Why an expected grant is missing from the actual ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum MissingReason {
    /// No actual Allow covers the grant, even ignoring conditions.
    NotGranted,
    /// Actual Allows cover the action and resource, but only under stricter
    /// conditions than expected; these are their condition blocks.
    StricterConditions(Vec<Conditions>),
    /// An actual Allow covers the grant, but these actual Denies may remove
    /// part of it.
    Denied(Vec<Grant>),
}

/// Explains why `grant` (one of `expected`'s allows) is missing from
/// `actual`; `None` when it is not missing.
#[cfg(test)]
pub fn explain_missing(
    grant: &Grant,
    expected: &EffectiveGrants,
    actual: &EffectiveGrants,
) -> Option<MissingReason> {
    reason_missing(
        &CompiledGrant::new(grant),
        &Compiled::new(expected),
        &Compiled::new(actual),
    )
}

fn reason_missing(
    grant: &CompiledGrant,
    expected: &Compiled,
    actual: &Compiled,
) -> Option<MissingReason> {
    let denies: Vec<Grant> = actual
        .denies
        .iter()
        .filter(|deny| {
            deny.may_overlap(grant) && !expected.denies.iter().any(|shared| shared.covers(deny))
        })
        .map(|deny| deny.grant.clone())
        .collect();
    if actual.allows.iter().any(|allow| allow.covers(grant)) {
        return if denies.is_empty() {
            None
        } else {
            Some(MissingReason::Denied(denies))
        };
    }
    let stricter: BTreeSet<Conditions> = actual
        .allows
        .iter()
        .filter(|allow| allow.covers_scope(grant))
        .map(|allow| allow.grant.conditions.clone())
        .collect();
    if stricter.is_empty() {
        Some(MissingReason::NotGranted)
    } else {
        Some(MissingReason::StricterConditions(
            stricter.into_iter().collect(),
        ))
    }
}

/// The actual grants the expectation does not account for: actual Allows
/// that no expected Allow covers, or that overlap an expected Deny the role
/// does not carry. An Allow wholly removed by an unconditional actual Deny is
/// not excess. Sorted, without duplicates.
pub fn excess(expected: &EffectiveGrants, actual: &EffectiveGrants) -> Vec<Grant> {
    let want = Compiled::new(expected);
    let have = Compiled::new(actual);
    have.allows
        .iter()
        .filter(|grant| {
            let wholly_denied = have
                .denies
                .iter()
                .any(|deny| deny.grant.conditions.is_empty() && deny.covers(grant));
            if wholly_denied {
                return false;
            }
            let accounted_for = want.allows.iter().any(|allow| allow.covers(grant));
            let escapes_expected_deny = want.denies.iter().any(|required_deny| {
                required_deny.may_overlap(grant)
                    && !have.denies.iter().any(|deny| deny.covers(required_deny))
            });
            !accounted_for || escapes_expected_deny
        })
        .map(|grant| grant.grant.clone())
        .collect()
}

/// Grants with the same resource and conditions, listed as one line of a
/// report: "on this resource, add (or remove) these actions".
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct GrantGroup {
    /// The resource pattern (or `all except [...]`).
    pub resource: String,
    /// The conditions shared by the grants; empty when unconditional.
    pub conditions: Conditions,
    /// The actions, sorted and without duplicates.
    pub actions: Vec<String>,
}

/// Groups grants by resource and conditions, each with its sorted actions,
/// so a person can fix a role one resource at a time. Groups are sorted by
/// resource, then conditions.
pub fn group_by_resource(grants: &[Grant]) -> Vec<GrantGroup> {
    let mut groups: BTreeMap<(String, Conditions), BTreeSet<String>> = BTreeMap::new();
    for grant in grants {
        groups
            .entry((grant.resource.to_string(), grant.conditions.clone()))
            .or_default()
            .insert(grant.action.to_string());
    }
    groups
        .into_iter()
        .map(|((resource, conditions), actions)| GrantGroup {
            resource,
            conditions,
            actions: actions.into_iter().collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants(texts: &[&str]) -> EffectiveGrants {
        let docs: Vec<PolicyDocument> = texts
            .iter()
            .map(|t| PolicyDocument::parse(t).unwrap_or_else(|e| panic!("{e}: {t}")))
            .collect();
        effective_grants(&docs)
    }

    fn strings(list: &[Grant]) -> Vec<String> {
        list.iter().map(ToString::to_string).collect()
    }

    const EXPECTED: &str = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":["ec2:DescribeVpcs","ec2:DescribeSubnets"],"Resource":"*"},
        {"Effect":"Allow","Action":["iam:GetRole","iam:PassRole"],
         "Resource":["arn:aws:iam::111122223333:role/a","arn:aws:iam::111122223333:role/b"]}]}"#;

    #[test]
    fn identical_policies_have_no_missing_and_no_excess() {
        let e = grants(&[EXPECTED]);
        assert!(missing(&e, &e).is_empty());
        assert!(excess(&e, &e).is_empty());
        assert_eq!(e.allows().len(), 6);
    }

    #[test]
    fn split_merged_reordered_and_recased_statements_are_equivalent() {
        let reshaped = r#"{"Statement":[
            {"Effect":"Allow","Action":"IAM:passrole","Resource":"arn:aws:iam::111122223333:role/b"},
            {"Effect":"Allow","Action":"EC2:describeVpcs","Resource":["*"]},
            {"Effect":"Allow","Action":["iam:PassRole","iam:getROLE"],"Resource":"arn:aws:iam::111122223333:role/a"},
            {"Effect":"Allow","Action":"iam:GetRole","Resource":"arn:aws:iam::111122223333:role/b"}]}"#;
        let second_policy =
            r#"{"Statement":{"Effect":"Allow","Action":"ec2:DescribeSubnets","Resource":"*"}}"#;
        let e = grants(&[EXPECTED]);
        let a = grants(&[reshaped, second_policy]);
        assert!(
            missing(&e, &a).is_empty(),
            "{:?}",
            strings(&missing(&e, &a))
        );
        assert!(excess(&e, &a).is_empty(), "{:?}", strings(&excess(&e, &a)));
    }

    #[test]
    fn duplicated_statements_are_harmless() {
        let e = grants(&[EXPECTED]);
        let a = grants(&[EXPECTED, EXPECTED]);
        assert_eq!(e, a);
        assert!(missing(&e, &a).is_empty());
        assert!(excess(&e, &a).is_empty());
    }

    #[test]
    fn action_and_resource_as_string_or_list_are_the_same() {
        let a = grants(&[
            r#"{"Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}}"#,
        ]);
        let b = grants(&[
            r#"{"Statement":[{"Effect":"Allow","Action":["s3:GetObject"],"Resource":["arn:aws:s3:::b/*"]}]}"#,
        ]);
        assert_eq!(a, b);
    }

    #[test]
    fn actual_wildcard_action_covers_expected_action_but_is_excess() {
        let e = grants(&[
            r#"{"Statement":{"Effect":"Allow","Action":"ec2:DescribeVpcs","Resource":"*"}}"#,
        ]);
        let a = grants(&[
            r#"{"Statement":{"Effect":"Allow","Action":"ec2:Describe*","Resource":"*"}}"#,
        ]);
        assert!(missing(&e, &a).is_empty());
        assert_eq!(strings(&excess(&e, &a)), vec!["ec2:describe* on *"]);
    }

    #[test]
    fn expected_wildcard_is_not_covered_by_a_narrower_actual_action() {
        let e = grants(&[
            r#"{"Statement":{"Effect":"Allow","Action":"ec2:Describe*","Resource":"*"}}"#,
        ]);
        let a = grants(&[
            r#"{"Statement":{"Effect":"Allow","Action":"ec2:DescribeVpcs","Resource":"*"}}"#,
        ]);
        assert_eq!(strings(&missing(&e, &a)), vec!["ec2:describe* on *"]);
        assert!(excess(&e, &a).is_empty());
    }

    #[test]
    fn actual_deny_removes_an_otherwise_present_grant() {
        let e = grants(&[EXPECTED]);
        let deny = r#"{"Statement":{"Effect":"Deny","Action":"ec2:DescribeVpcs","Resource":"*"}}"#;
        let a = grants(&[EXPECTED, deny]);
        assert_eq!(strings(&missing(&e, &a)), vec!["ec2:describevpcs on *"]);
        let grant = &missing(&e, &a)[0];
        assert!(
            matches!(explain_missing(grant, &e, &a), Some(MissingReason::Denied(d)) if d.len() == 1)
        );
    }

    #[test]
    fn partially_overlapping_deny_makes_a_wildcard_grant_missing() {
        let e = grants(&[
            r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::union-*"}}"#,
        ]);
        let a = grants(&[
            r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::union-*"}}"#,
            r#"{"Statement":{"Effect":"Deny","Action":"s3:DeleteBucket","Resource":"*"}}"#,
        ]);
        assert_eq!(
            strings(&missing(&e, &a)),
            vec!["s3:* on arn:aws:s3:::union-*"]
        );
    }

    #[test]
    fn deny_on_unrelated_resource_removes_nothing() {
        let e = grants(&[EXPECTED]);
        let deny = r#"{"Statement":{"Effect":"Deny","Action":"iam:*","Resource":"arn:aws:iam::111122223333:role/c"}}"#;
        let a = grants(&[EXPECTED, deny]);
        assert!(missing(&e, &a).is_empty());
        assert!(excess(&e, &a).is_empty());
    }

    #[test]
    fn conditional_deny_still_counts_against_an_expected_grant() {
        let e = grants(&[EXPECTED]);
        let deny = r#"{"Statement":{"Effect":"Deny","Action":"ec2:*","Resource":"*",
            "Condition":{"StringNotEquals":{"aws:RequestedRegion":"eu-west-1"}}}}"#;
        let a = grants(&[EXPECTED, deny]);
        assert_eq!(
            strings(&missing(&e, &a)),
            vec!["ec2:describesubnets on *", "ec2:describevpcs on *"]
        );
    }

    #[test]
    fn deny_the_expectation_also_has_is_not_held_against_the_role() {
        let with_deny = r#"{"Statement":[
            {"Effect":"Allow","Action":"s3:*","Resource":"*"},
            {"Effect":"Deny","Action":"s3:DeleteBucket","Resource":"*"}]}"#;
        let e = grants(&[with_deny]);
        let a = grants(&[with_deny]);
        assert!(missing(&e, &a).is_empty());
        assert!(excess(&e, &a).is_empty());
    }

    #[test]
    fn allow_escaping_an_expected_deny_is_excess() {
        let e = grants(&[r#"{"Statement":[
            {"Effect":"Allow","Action":"s3:*","Resource":"*"},
            {"Effect":"Deny","Action":"s3:DeleteBucket","Resource":"*"}]}"#]);
        let a = grants(&[r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}"#]);
        assert!(missing(&e, &a).is_empty());
        assert_eq!(strings(&excess(&e, &a)), vec!["s3:* on *"]);
    }

    #[test]
    fn allow_wholly_removed_by_unconditional_deny_is_not_excess() {
        let e = grants(&[EXPECTED]);
        let a = grants(&[
            EXPECTED,
            r#"{"Statement":[{"Effect":"Allow","Action":"iam:*","Resource":"*"},
                             {"Effect":"Deny","Action":"iam:*","Resource":"*"}]}"#,
        ]);
        assert!(excess(&e, &a).is_empty());
        // ...but the deny also removes the expected iam grants.
        assert_eq!(missing(&e, &a).len(), 4);
    }

    #[test]
    fn adding_iam_star_is_excess() {
        let e = grants(&[EXPECTED]);
        let a = grants(&[
            EXPECTED,
            r#"{"Statement":{"Effect":"Allow","Action":"iam:*","Resource":"arn:aws:iam::111122223333:role/a"}}"#,
        ]);
        assert!(missing(&e, &a).is_empty());
        assert_eq!(
            strings(&excess(&e, &a)),
            vec!["iam:* on arn:aws:iam::111122223333:role/a"]
        );
    }

    #[test]
    fn resource_star_where_expectation_is_narrower_is_excess() {
        let e = grants(&[EXPECTED]);
        let a = grants(&[
            r#"{"Statement":{"Effect":"Allow","Action":["ec2:DescribeVpcs","ec2:DescribeSubnets","iam:GetRole","iam:PassRole"],"Resource":"*"}}"#,
        ]);
        assert!(missing(&e, &a).is_empty());
        assert_eq!(
            strings(&excess(&e, &a)),
            vec!["iam:getrole on *", "iam:passrole on *"]
        );
    }

    #[test]
    fn resources_compare_case_sensitively() {
        let e = grants(&[
            r#"{"Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::Bucket/*"}}"#,
        ]);
        let a = grants(&[
            r#"{"Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::bucket/*"}}"#,
        ]);
        assert_eq!(missing(&e, &a).len(), 1);
        assert_eq!(excess(&e, &a).len(), 1);
    }

    #[test]
    fn stricter_actual_conditions_make_a_grant_missing() {
        let e =
            grants(&[r#"{"Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}}"#]);
        let a = grants(&[
            r#"{"Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"*",
            "Condition":{"Bool":{"aws:SecureTransport":"true"}}}}"#,
        ]);
        assert_eq!(missing(&e, &a).len(), 1);
        assert!(matches!(
            explain_missing(&missing(&e, &a)[0], &e, &a),
            Some(MissingReason::StricterConditions(_))
        ));
        // And the other way round: the role is looser than expected.
        assert!(missing(&a, &e).is_empty());
        assert_eq!(excess(&a, &e).len(), 1);
    }

    #[test]
    fn equal_conditions_in_different_shapes_match() {
        let e = grants(&[
            r#"{"Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"*",
            "Condition":{"StringEquals":{"aws:PrincipalTag/team":["a","b"]},"Bool":{"aws:SecureTransport":true}}}}"#,
        ]);
        let a = grants(&[
            r#"{"Statement":{"Effect":"Allow","Action":"S3:GetObject","Resource":"*",
            "Condition":{"Bool":{"AWS:SecureTransport":"true"},"StringEquals":{"aws:principaltag/team":["b","a"]}}}}"#,
        ]);
        assert!(missing(&e, &a).is_empty());
        assert!(excess(&e, &a).is_empty());
    }

    #[test]
    fn not_action_allow_covers_what_it_does_not_exclude() {
        let e = grants(&[
            r#"{"Statement":{"Effect":"Allow","Action":"ec2:DescribeVpcs","Resource":"*"}}"#,
        ]);
        let a = grants(&[
            r#"{"Statement":{"Effect":"Allow","NotAction":["iam:*","organizations:*"],"Resource":"*"}}"#,
        ]);
        assert!(missing(&e, &a).is_empty());
        assert_eq!(
            strings(&excess(&e, &a)),
            vec!["all except [iam:*, organizations:*] on *"]
        );
        let e_iam =
            grants(&[r#"{"Statement":{"Effect":"Allow","Action":"iam:GetRole","Resource":"*"}}"#]);
        assert_eq!(missing(&e_iam, &a).len(), 1);
    }

    #[test]
    fn not_action_expected_and_actual_compare_by_exclusions() {
        let narrow =
            r#"{"Statement":{"Effect":"Allow","NotAction":["iam:*","sts:*"],"Resource":"*"}}"#;
        let broad = r#"{"Statement":{"Effect":"Allow","NotAction":"IAM:*","Resource":"*"}}"#;
        let e = grants(&[narrow]);
        assert!(missing(&e, &grants(&[narrow])).is_empty());
        // Excluding less grants more: covers the narrower expectation.
        assert!(missing(&e, &grants(&[broad])).is_empty());
        assert_eq!(excess(&e, &grants(&[broad])).len(), 1);
        // A plain Allow of everything covers any NotAction grant.
        assert!(missing(
            &e,
            &grants(&[r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#])
        )
        .is_empty());
        // A plain list of actions never covers a NotAction grant.
        assert_eq!(
            missing(
                &e,
                &grants(&[r#"{"Statement":{"Effect":"Allow","Action":"ec2:*","Resource":"*"}}"#])
            )
            .len(),
            1
        );
    }

    #[test]
    fn not_resource_deny_spares_only_the_excluded_resources() {
        let e = grants(&[
            r#"{"Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":["arn:aws:s3:::a/*","arn:aws:s3:::b/*"]}}"#,
        ]);
        let a = grants(&[
            r#"{"Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}}"#,
            r#"{"Statement":{"Effect":"Deny","Action":"s3:*","NotResource":"arn:aws:s3:::a/*"}}"#,
        ]);
        assert_eq!(
            strings(&missing(&e, &a)),
            vec!["s3:getobject on arn:aws:s3:::b/*"]
        );
    }

    #[test]
    fn unknown_placeholder_in_a_resource_matches_any_value() {
        let resource = format!(
            "arn:aws:s3:::{}/*",
            crate::iam::policy::unknown_value("Bucket")
        );
        let expected = format!(
            r#"{{"Statement":{{"Effect":"Allow","Action":"s3:GetObject","Resource":"{resource}"}}}}"#
        );
        let e = grants(&[&expected]);
        let a = grants(&[
            r#"{"Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::my-bucket/*"}}"#,
        ]);
        assert!(missing(&e, &a).is_empty());
        assert!(excess(&e, &a).is_empty());
    }

    #[test]
    fn trust_statement_without_resource_reads_as_star() {
        let g = grants(&[
            r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"1"},"Action":"sts:AssumeRole"}}"#,
        ]);
        assert_eq!(
            strings(&g.allows().iter().cloned().collect::<Vec<_>>()),
            vec!["sts:assumerole on *"]
        );
    }

    #[test]
    fn missing_with_reasons_tells_not_granted_from_denied() {
        let e = grants(&[EXPECTED]);
        let a = grants(&[
            r#"{"Statement":{"Effect":"Allow","Action":"ec2:*","Resource":"*"}}"#,
            r#"{"Statement":{"Effect":"Deny","Action":"ec2:DescribeSubnets","Resource":"*"}}"#,
        ]);
        let reasons = missing_with_reasons(&e, &a);
        assert_eq!(reasons.len(), 5);
        let denied: Vec<String> = reasons
            .iter()
            .filter(|(_, r)| matches!(r, MissingReason::Denied(_)))
            .map(|(g, _)| g.to_string())
            .collect();
        assert_eq!(denied, vec!["ec2:describesubnets on *"]);
        assert!(reasons
            .iter()
            .filter(|(g, _)| g.to_string().starts_with("iam:"))
            .all(|(_, r)| *r == MissingReason::NotGranted));
    }

    #[test]
    fn grouping_lists_sorted_actions_per_resource() {
        let g = grants(&[EXPECTED]);
        let all: Vec<Grant> = g.allows().iter().cloned().collect();
        let groups = group_by_resource(&all);
        assert_eq!(groups.len(), 3);
        assert_eq!(groups[0].resource, "*");
        assert_eq!(
            groups[0].actions,
            vec!["ec2:describesubnets", "ec2:describevpcs"]
        );
        assert_eq!(groups[1].resource, "arn:aws:iam::111122223333:role/a");
        assert_eq!(groups[1].actions, vec!["iam:getrole", "iam:passrole"]);
    }
}
