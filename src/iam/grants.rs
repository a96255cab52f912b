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

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::rc::Rc;
use std::sync::Arc;

use serde::Serialize;

use super::pattern::{self, Pattern};
use super::policy::{Conditions, Effect, PatternSet, PolicyDocument, Statement};

/// The actions or resources one grant applies to.
///
/// A pattern's text is shared: a statement's every grant, and every statement of one
/// policy naming the same pattern, hold the same `Arc` (see [`expand`]), so cloning a grant
/// allocates nothing and equal patterns compare by pointer first.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub enum Target {
    /// Everything the pattern matches (`*` and `?` wildcards).
    Pattern(#[serde(serialize_with = "serialize_text")] Arc<str>),
    /// Everything matched by none of the patterns (`NotAction`,
    /// `NotResource`). Sorted and without duplicates.
    AllExcept(Vec<String>),
}

fn serialize_text<S: serde::Serializer>(text: &Arc<str>, out: S) -> Result<S::Ok, S::Error> {
    out.serialize_str(text)
}

/// Patterns sort before exclusions; each by its text (as `String`s would).
impl Ord for Target {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        use std::cmp::Ordering;
        match (self, other) {
            (Target::Pattern(a), Target::Pattern(b)) if Arc::ptr_eq(a, b) => Ordering::Equal,
            (Target::Pattern(a), Target::Pattern(b)) => a.cmp(b),
            (Target::Pattern(_), Target::AllExcept(_)) => Ordering::Less,
            (Target::AllExcept(_), Target::Pattern(_)) => Ordering::Greater,
            (Target::AllExcept(a), Target::AllExcept(b)) => a.cmp(b),
        }
    }
}

impl PartialOrd for Target {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Target {
    /// The target as reports write it (see its `Display`), borrowed for a pattern.
    pub fn text(&self) -> Cow<'_, str> {
        match self {
            Target::Pattern(p) => Cow::Borrowed(p),
            Target::AllExcept(_) => Cow::Owned(self.to_string()),
        }
    }

    /// True when everything `specific` names is also named by `self`.
    /// Sound, as described in the module documentation.
    pub fn covers(&self, specific: &Target, case_insensitive: bool) -> bool {
        CompiledTarget::new(self, case_insensitive)
            .covers(&CompiledTarget::new(specific, case_insensitive))
    }
}

/// A [`Target`] with its patterns tokenised once, for pairwise comparisons.
enum CompiledTarget {
    /// Shared between the grants of one [`Indexed`] set that have the same pattern.
    Pattern(Rc<Pattern>),
    AllExcept(Vec<Pattern>),
}

/// Patterns tokenised so far, by text and case rule: a policy names the same actions and
/// resources in many grants.
type PatternCache<'g> = HashMap<(&'g str, bool), Rc<Pattern>>;

/// Maps and sets keyed by pattern text, hashed with foldhash: seeded per map like the
/// standard library's, and several times faster on short strings.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
type HashSet<T> = std::collections::HashSet<T, foldhash::fast::RandomState>;

impl CompiledTarget {
    /// Like [`CompiledTarget::new`], tokenising each pattern text once per `cache`.
    fn cached<'g>(
        target: &'g Target,
        case_insensitive: bool,
        cache: &mut PatternCache<'g>,
    ) -> Self {
        match target {
            Target::Pattern(p) => CompiledTarget::Pattern(
                cache
                    .entry((&**p, case_insensitive))
                    .or_insert_with(|| Rc::new(Pattern::new(p, case_insensitive)))
                    .clone(),
            ),
            Target::AllExcept(_) => CompiledTarget::new(target, case_insensitive),
        }
    }

    fn new(target: &Target, case_insensitive: bool) -> Self {
        match target {
            Target::Pattern(p) => {
                CompiledTarget::Pattern(Rc::new(Pattern::new(p, case_insensitive)))
            }
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

/// A [`Grant`] with its patterns tokenised and its action key (see [`Indexed`]) computed
/// once.
struct CompiledGrant<'g> {
    grant: &'g Grant,
    key: ActionKey<'g>,
    action: CompiledTarget,
    resource: CompiledTarget,
}

impl<'g> CompiledGrant<'g> {
    fn new(grant: &'g Grant) -> Self {
        CompiledGrant {
            grant,
            key: action_key(&grant.action),
            action: CompiledTarget::new(&grant.action, true),
            resource: CompiledTarget::new(&grant.resource, false),
        }
    }

    /// Like [`CompiledGrant::new`], sharing the patterns of `cache`.
    fn cached(grant: &'g Grant, cache: &mut PatternCache<'g>) -> Self {
        CompiledGrant {
            grant,
            key: action_key(&grant.action),
            action: CompiledTarget::cached(&grant.action, true, cache),
            resource: CompiledTarget::cached(&grant.resource, false, cache),
        }
    }

    /// True when both halves are plain patterns (no `NotAction`/`NotResource`).
    fn is_plain(&self) -> bool {
        matches!(
            (&self.grant.action, &self.grant.resource),
            (Target::Pattern(_), Target::Pattern(_))
        )
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

/// Where a statement comes from, so that a report can say which one to change.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct StatementRef {
    /// The policy: an inline policy's name, a managed policy's ARN, or
    /// `permissions boundary <name>`.
    pub policy: String,
    /// The statement's position in the policy, from 0.
    pub index: usize,
    /// The statement's `Sid`, if it has one.
    pub sid: Option<String>,
}

impl fmt::Display for StatementRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.sid {
            Some(sid) => write!(
                f,
                "statement {sid:?} (Statement[{}]) of {}",
                self.index, self.policy
            ),
            None => write!(f, "Statement[{}] of {}", self.index, self.policy),
        }
    }
}

/// An actual Deny that takes (part of) an expected grant away, with the
/// statements it comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DenyRef {
    /// The denied grant (one action or `NotAction` target on one resource).
    pub grant: Grant,
    /// The statements that deny it.
    pub statements: Vec<StatementRef>,
}

/// A permissions boundary: the most that the role's own policies can grant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
struct Boundary {
    name: String,
    /// Sorted, without duplicates.
    allows: Vec<Grant>,
}

/// The union of what some policies allow, with their explicit denies and, when
/// one applies, the permissions boundary that caps the allows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EffectiveGrants {
    /// Sorted, without duplicates: a role's policies expand into thousands of grants, which
    /// one sort orders faster than a tree takes them one by one.
    allows: Vec<Grant>,
    denies: BTreeSet<Grant>,
    /// The statements each deny comes from.
    deny_sources: BTreeMap<Grant, BTreeSet<StatementRef>>,
    boundary: Option<Boundary>,
}

/// The largest number of condition blocks on one (action, resource) pair
/// that are tried against each other for [`Conditions::or_merge`]; beyond it
/// (never in a real policy) blocks are kept apart, which can only report a
/// difference, never hide one.
const MAX_OR_MERGE: usize = 64;

impl EffectiveGrants {
    /// Expands every statement of every policy into grants; the policies are
    /// named `policy #1`, `policy #2`, ... in reports.
    pub fn from_policies<'a>(policies: impl IntoIterator<Item = &'a PolicyDocument>) -> Self {
        Self::from_named_policies(
            policies
                .into_iter()
                .enumerate()
                .map(|(n, p)| (format!("policy #{}", n + 1), p)),
        )
    }

    /// Expands every statement of every policy into grants, remembering each
    /// Deny statement by the name given with its policy.
    pub fn from_named_policies<'a, S: AsRef<str>>(
        policies: impl IntoIterator<Item = (S, &'a PolicyDocument)>,
    ) -> Self {
        let mut grants = EffectiveGrants::default();
        let mut allows = Vec::new();
        for (name, policy) in policies {
            expand(policy, |index, statement, grant| match statement.effect {
                Effect::Allow => allows.push(grant),
                Effect::Deny => grants.add_deny(grant, name.as_ref(), index, statement),
            });
        }
        grants.allows = or_merged(allows);
        grants
    }

    /// Caps the allows with a permissions boundary called `name`: only what
    /// both the role's policies and the boundary allow is granted, and the
    /// boundary's own Denies deny too.
    pub fn with_boundary(mut self, name: &str, boundary: &PolicyDocument) -> Self {
        let label = format!("permissions boundary {name}");
        let mut allows = Vec::new();
        expand(boundary, |index, statement, grant| match statement.effect {
            Effect::Allow => allows.push(grant),
            Effect::Deny => self.add_deny(grant, &label, index, statement),
        });
        self.boundary = Some(Boundary {
            name: name.to_string(),
            allows: or_merged(allows),
        });
        self
    }

    fn add_deny(&mut self, grant: Grant, policy: &str, index: usize, statement: &Statement) {
        self.deny_sources
            .entry(grant.clone())
            .or_default()
            .insert(StatementRef {
                policy: policy.to_string(),
                index,
                sid: statement.sid.clone(),
            });
        self.denies.insert(grant);
    }

    /// The grants with every pattern tokenised and indexed once, for comparing
    /// the same set many times.
    pub fn compiled(&self) -> CompiledGrants<'_> {
        CompiledGrants::new(self)
    }

    /// The allowed grants, sorted and without duplicates.
    #[cfg(test)]
    pub fn allows(&self) -> &[Grant] {
        &self.allows
    }
}

/// Calls `each` with every grant of every statement of `policy`, and the
/// statement's index. In a policy whose `Version` is not `2012-10-17`, IAM
/// reads `${...}` as text, so patterns are escaped to say so (see
/// [`pattern::escape_variables`]). Each distinct pattern text is allocated once per
/// policy and shared by every grant that names it.
fn expand(policy: &PolicyDocument, mut each: impl FnMut(usize, &Statement, Grant)) {
    let variables = policy.version.as_deref() == Some("2012-10-17");
    let mut texts = Interner::default();
    let mut text = |p: &str, lower: bool| {
        let p = if lower && p.bytes().any(|b| b.is_ascii_uppercase() || !b.is_ascii()) {
            Cow::Owned(p.to_lowercase())
        } else {
            Cow::Borrowed(p)
        };
        if variables || !p.contains("${") {
            texts.get(&p)
        } else {
            texts.get(&pattern::escape_variables(&p))
        }
    };
    for (index, statement) in policy.statements.iter().enumerate() {
        let actions = targets(&statement.action, |a| text(a, true));
        let resources = match &statement.resource {
            Some(set) => targets(set, |r| text(r, false)),
            None => vec![Target::Pattern(text("*", false))],
        };
        for action in &actions {
            for resource in &resources {
                each(
                    index,
                    statement,
                    Grant {
                        action: action.clone(),
                        resource: resource.clone(),
                        conditions: statement.conditions.clone(),
                    },
                );
            }
        }
    }
}

/// One shared allocation per distinct text.
#[derive(Default)]
struct Interner(HashSet<Arc<str>>);

impl Interner {
    fn get(&mut self, text: &str) -> Arc<str> {
        if let Some(shared) = self.0.get(text) {
            return shared.clone();
        }
        let shared: Arc<str> = text.into();
        self.0.insert(shared.clone());
        shared
    }
}

/// Sorts `grants`, drops duplicates, and joins Allows of the same action and resource
/// whose conditions differ only in the values of one clause (see
/// [`Conditions::or_merge`]): IAM ORs statements, so they grant what one statement with
/// both values grants.
fn or_merged(mut grants: Vec<Grant>) -> Vec<Grant> {
    grants.sort_unstable();
    grants.dedup();
    // Grants are sorted by action, then resource: blocks of one scope are neighbours, and
    // when no two neighbours share a scope (the common case) there is nothing to join.
    let mut previous: Option<&Grant> = None;
    let shared_scope = grants.iter().any(|g| {
        let same = previous.is_some_and(|p| p.action == g.action && p.resource == g.resource);
        previous = Some(g);
        same
    });
    if !shared_scope {
        return grants;
    }
    let mut by_scope: BTreeMap<(Target, Target), Vec<Conditions>> = BTreeMap::new();
    for grant in grants {
        by_scope
            .entry((grant.action, grant.resource))
            .or_default()
            .push(grant.conditions);
    }
    let mut out = Vec::new();
    for ((action, resource), mut blocks) in by_scope {
        if blocks.len() > 1 && blocks.len() <= MAX_OR_MERGE {
            'again: loop {
                for i in 0..blocks.len() {
                    for j in i + 1..blocks.len() {
                        if let Some(merged) = blocks[i].or_merge(&blocks[j]) {
                            blocks[i] = merged;
                            blocks.swap_remove(j);
                            continue 'again;
                        }
                    }
                }
                break;
            }
        }
        for conditions in blocks {
            out.push(Grant {
                action: action.clone(),
                resource: resource.clone(),
                conditions,
            });
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Expands an `Action`/`Resource` element into targets: one per pattern, or
/// one "all except" for the `Not` forms.
fn targets(set: &PatternSet, mut normalise: impl FnMut(&str) -> Arc<str>) -> Vec<Target> {
    match set {
        PatternSet::Only(patterns) => {
            let mut list: Vec<Target> = patterns
                .iter()
                .map(|p| Target::Pattern(normalise(p)))
                .collect();
            list.sort_unstable();
            list.dedup();
            list
        }
        PatternSet::AllExcept(patterns) => {
            let excluded: BTreeSet<String> =
                patterns.iter().map(|p| normalise(p).to_string()).collect();
            vec![Target::AllExcept(excluded.into_iter().collect())]
        }
    }
}

/// The union of the grants of `policies` (see [`EffectiveGrants`]).
pub fn effective_grants(policies: &[PolicyDocument]) -> EffectiveGrants {
    EffectiveGrants::from_policies(policies)
}

/// How an action target can be looked up: one literal action (`ec2:describevpcs`), a
/// pattern within one literal service (`ec2:describe*`), or anything else (`*`, a wildcard
/// service, `NotAction`).
#[derive(Clone, Copy)]
enum ActionKey<'a> {
    Exact(&'a str, &'a str),
    InService(&'a str),
    Anywhere,
}

fn action_key(action: &Target) -> ActionKey<'_> {
    let Target::Pattern(p) = action else {
        return ActionKey::Anywhere;
    };
    match p.split_once(':') {
        Some((service, _)) if !service.contains(['*', '?', '$']) => {
            if p.contains(['*', '?', '$']) {
                ActionKey::InService(service)
            } else {
                ActionKey::Exact(service, p)
            }
        }
        _ => ActionKey::Anywhere,
    }
}

/// Grants compiled once and indexed by action, so that a question about one grant only
/// looks at the grants whose action may share a string with it. Two literal services that
/// differ never overlap (the service ends at the first `:`, and an action name contains no
/// `:`), and a literal action only overlaps the same literal action or a pattern.
struct Indexed<'g> {
    grants: Vec<CompiledGrant<'g>>,
    /// Every grant's position, for a key that may match anything.
    all: Vec<usize>,
    /// Literal actions, by action.
    exact: HashMap<&'g str, Vec<usize>>,
    /// Literal actions, by service.
    exact_by_service: HashMap<&'g str, Vec<usize>>,
    /// Patterns within one service, by service.
    patterns_by_service: HashMap<&'g str, Vec<usize>>,
    /// Actions that may be in any service.
    anywhere: Vec<usize>,
}

const NONE: &[usize] = &[];

impl<'g> Indexed<'g> {
    fn new(set: impl IntoIterator<Item = &'g Grant>) -> Self {
        let mut cache = PatternCache::default();
        let grants: Vec<CompiledGrant<'g>> = set
            .into_iter()
            .map(|g| CompiledGrant::cached(g, &mut cache))
            .collect();
        let mut index = Indexed {
            all: (0..grants.len()).collect(),
            grants,
            exact: HashMap::default(),
            exact_by_service: HashMap::default(),
            patterns_by_service: HashMap::default(),
            anywhere: Vec::new(),
        };
        for (n, grant) in index.grants.iter().enumerate() {
            match grant.key {
                ActionKey::Exact(service, action) => {
                    index.exact.entry(action).or_default().push(n);
                    index.exact_by_service.entry(service).or_default().push(n);
                }
                ActionKey::InService(service) => index
                    .patterns_by_service
                    .entry(service)
                    .or_default()
                    .push(n),
                ActionKey::Anywhere => index.anywhere.push(n),
            }
        }
        index
    }

    fn list<'s>(map: &'s HashMap<&'g str, Vec<usize>>, key: &str) -> &'s [usize] {
        map.get(key).map_or(NONE, Vec::as_slice)
    }

    /// The positions of the grants whose action may share a string with `grant`'s (a
    /// superset of them).
    fn candidate_indices<'s>(&'s self, grant: &CompiledGrant) -> impl Iterator<Item = usize> + 's {
        self.lists(grant, false).into_iter().flatten().copied()
    }

    /// The grants whose action may share a string with `grant`'s (a superset of them).
    fn candidates<'s>(
        &'s self,
        grant: &CompiledGrant,
    ) -> impl Iterator<Item = &'s CompiledGrant<'g>> + 's {
        self.candidate_indices(grant).map(move |n| &self.grants[n])
    }

    /// The positions of the grants whose action may cover `grant`'s (a superset of them,
    /// and a subset of [`Indexed::candidate_indices`]).
    fn coverer_indices<'s>(&'s self, grant: &CompiledGrant) -> impl Iterator<Item = usize> + 's {
        self.lists(grant, true).into_iter().flatten().copied()
    }

    /// The grants whose action may cover `grant`'s (a superset of them).
    fn coverers<'s>(
        &'s self,
        grant: &CompiledGrant,
    ) -> impl Iterator<Item = &'s CompiledGrant<'g>> + 's {
        self.coverer_indices(grant).map(move |n| &self.grants[n])
    }

    /// The lists of [`Indexed::candidate_indices`], or with `covering` of
    /// [`Indexed::coverer_indices`].
    ///
    /// Covering narrows them when `grant`'s action is a `NotAction` or a pattern without
    /// placeholders (every string it matches is then shown by its text). A literal action
    /// matches one string, so it covers no pattern holding `*` or `?` and no pattern that
    /// names a `*`, `?` or `$` (which a literal action never contains): it never covers
    /// an [`ActionKey::InService`] pattern. An action of one literal service matches only
    /// strings that start with that service and its `:`; an [`ActionKey::Anywhere`]
    /// pattern matches some string that does not (one without a `:`, or one where a
    /// wildcard before the first `:` takes another character), and a `NotAction` matches
    /// strings of many services: only the `Anywhere` grants can cover those.
    fn lists(&self, grant: &CompiledGrant, covering: bool) -> [&[usize]; 3] {
        if self.grants.is_empty() {
            return [NONE, NONE, NONE];
        }
        let shown = covering
            && match &grant.action {
                CompiledTarget::Pattern(p) => !p.has_placeholders(),
                CompiledTarget::AllExcept(_) => true,
            };
        match grant.key {
            ActionKey::Anywhere if shown => [&self.anywhere, NONE, NONE],
            ActionKey::Anywhere => [&self.all, NONE, NONE],
            ActionKey::Exact(service, action) => [
                Self::list(&self.exact, action),
                Self::list(&self.patterns_by_service, service),
                &self.anywhere,
            ],
            ActionKey::InService(service) => [
                if shown {
                    NONE
                } else {
                    Self::list(&self.exact_by_service, service)
                },
                Self::list(&self.patterns_by_service, service),
                &self.anywhere,
            ],
        }
    }
}

/// One side of a comparison with every pattern tokenised and indexed once, so
/// that a set compared many times (an expectation against every role, a role
/// against every documented form and region) pays for it once. Build it with
/// [`EffectiveGrants::compiled`]; compare with [`missing_with_reasons_compiled`]
/// and [`excess_compiled`].
pub struct CompiledGrants<'g> {
    source: &'g EffectiveGrants,
    allows: Indexed<'g>,
    denies: Indexed<'g>,
    boundary: Option<(&'g str, Indexed<'g>)>,
}

impl<'g> CompiledGrants<'g> {
    fn new(grants: &'g EffectiveGrants) -> Self {
        CompiledGrants {
            source: grants,
            allows: Indexed::new(&grants.allows),
            denies: Indexed::new(&grants.denies),
            boundary: grants
                .boundary
                .as_ref()
                .map(|b| (b.name.as_str(), Indexed::new(&b.allows))),
        }
    }

    fn deny_ref(&self, deny: &CompiledGrant) -> DenyRef {
        DenyRef {
            grant: deny.grant.clone(),
            statements: self
                .source
                .deny_sources
                .get(deny.grant)
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default(),
        }
    }
}

/// The expected grants that `actual` does not reliably give: no actual Allow
/// covers them, an actual Deny (conditional or not, and not itself part of
/// the expectation) may touch them, or the permissions boundary does not
/// allow them. Sorted, without duplicates.
pub fn missing(expected: &EffectiveGrants, actual: &EffectiveGrants) -> Vec<Grant> {
    missing_with_reasons(expected, actual)
        .into_iter()
        .map(|(grant, _)| grant)
        .collect()
}

/// Like [`missing`], with the reason each grant is missing, so a report can
/// tell "add this permission" from "remove that Deny".
///
/// A `NotAction` (or `NotResource`) grant that the role gives with more
/// exclusions is reported as the precise patterns it lacks: expected
/// `NotAction: [iam:*]` against actual `NotAction: [iam:*, s3:*]` is missing
/// `s3:*` (see [`exclusion_gap`]).
pub fn missing_with_reasons(
    expected: &EffectiveGrants,
    actual: &EffectiveGrants,
) -> Vec<(Grant, MissingReason)> {
    missing_with_reasons_compiled(&expected.compiled(), &actual.compiled())
}

/// [`missing_with_reasons`] on sets compiled once (see [`CompiledGrants`]).
pub fn missing_with_reasons_compiled(
    want: &CompiledGrants,
    have: &CompiledGrants,
) -> Vec<(Grant, MissingReason)> {
    let mut out: Vec<(Grant, MissingReason)> = Vec::new();
    for grant in &want.allows.grants {
        match reason_missing(grant, want, have) {
            None => {}
            Some(MissingReason::NotGranted) => out.extend(
                precise_gap(grant.grant, &have.allows)
                    .into_iter()
                    .map(|g| (g, MissingReason::NotGranted)),
            ),
            Some(reason) => out.push((grant.grant.clone(), reason)),
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.dedup_by(|a, b| a.0 == b.0);
    out
}

/// Why an expected grant is missing from the actual ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum MissingReason {
    /// No actual Allow covers the grant, even ignoring conditions.
    NotGranted,
    /// Actual Allows cover the action and resource, but only under stricter
    /// conditions than expected; these are their condition blocks.
    StricterConditions(Vec<Conditions>),
    /// An actual Allow covers the grant, but these unconditional actual
    /// Denies remove (part of) it.
    Denied(Vec<DenyRef>),
    /// An actual Allow covers the grant, but these conditional actual Denies
    /// remove (part of) it whenever their conditions hold: the grant is
    /// "denied when ..." (a region guardrail, a tag test), not gone.
    DeniedWhen(Vec<DenyRef>),
    /// The role's policies grant it, but its permissions boundary (this
    /// policy name) does not allow it.
    OutsideBoundary(String),
}

impl MissingReason {
    /// A short label for reports: `not granted`, `stricter conditions`,
    /// `denied`, `denied when <conditions>`, or `removed by the permission
    /// boundary <name>`.
    pub fn label(&self) -> String {
        match self {
            MissingReason::NotGranted => "not granted".to_string(),
            MissingReason::StricterConditions(_) => {
                "granted only under stricter conditions".to_string()
            }
            MissingReason::Denied(_) => "denied".to_string(),
            MissingReason::DeniedWhen(denies) => {
                let when: BTreeSet<String> = denies
                    .iter()
                    .map(|d| d.grant.conditions.to_string())
                    .collect();
                format!(
                    "denied when {}",
                    when.into_iter().collect::<Vec<_>>().join(" or ")
                )
            }
            MissingReason::OutsideBoundary(name) => {
                format!("removed by the permission boundary {name}")
            }
        }
    }
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
        &CompiledGrants::new(expected),
        &CompiledGrants::new(actual),
    )
}

fn reason_missing(
    grant: &CompiledGrant,
    expected: &CompiledGrants,
    actual: &CompiledGrants,
) -> Option<MissingReason> {
    if !actual
        .allows
        .coverers(grant)
        .any(|allow| allow.covers(grant))
    {
        let stricter: BTreeSet<Conditions> = actual
            .allows
            .coverers(grant)
            .filter(|allow| allow.covers_scope(grant))
            .map(|allow| allow.grant.conditions.clone())
            .collect();
        return Some(if stricter.is_empty() {
            MissingReason::NotGranted
        } else {
            MissingReason::StricterConditions(stricter.into_iter().collect())
        });
    }
    let (unconditional, conditional): (Vec<&CompiledGrant>, Vec<&CompiledGrant>) = actual
        .denies
        .candidates(grant)
        .filter(|deny| {
            deny.may_overlap(grant)
                && !expected
                    .denies
                    .coverers(deny)
                    .any(|shared| shared.covers(deny))
        })
        .partition(|deny| deny.grant.conditions.is_empty());
    if !unconditional.is_empty() {
        return Some(MissingReason::Denied(
            unconditional.iter().map(|d| actual.deny_ref(d)).collect(),
        ));
    }
    if let Some((name, boundary)) = &actual.boundary {
        if !boundary.coverers(grant).any(|b| b.covers(grant)) {
            return Some(MissingReason::OutsideBoundary(name.to_string()));
        }
    }
    if !conditional.is_empty() {
        return Some(MissingReason::DeniedWhen(
            conditional.iter().map(|d| actual.deny_ref(d)).collect(),
        ));
    }
    None
}

/// Which half of a grant a `Not` form is in.
#[derive(Clone, Copy)]
enum Part {
    Action,
    Resource,
}

impl Part {
    fn of(self, grant: &Grant) -> &Target {
        match self {
            Part::Action => &grant.action,
            Part::Resource => &grant.resource,
        }
    }

    fn compiled<'a>(self, grant: &'a CompiledGrant) -> &'a CompiledTarget {
        match self {
            Part::Action => &grant.action,
            Part::Resource => &grant.resource,
        }
    }

    fn other(self) -> Part {
        match self {
            Part::Action => Part::Resource,
            Part::Resource => Part::Action,
        }
    }

    fn with(self, grant: &Grant, target: Target) -> Grant {
        let mut out = grant.clone();
        match self {
            Part::Action => out.action = target,
            Part::Resource => out.resource = target,
        }
        out
    }

    fn case_insensitive(self) -> bool {
        matches!(self, Part::Action)
    }
}

/// What "all except `fewer`" grants that "all except `more`" does not, as
/// plain patterns: the patterns of `more` that no pattern of `fewer` covers.
/// `None` when such a pattern also shares strings with `fewer` (`s3:*`
/// against an exclusion of `s3:GetObject`): the difference is then "s3:*
/// except s3:GetObject", which no list of patterns says exactly.
///
/// Without a catalogue of every AWS action this is the most precise answer
/// there is, and it is exact: `NotAction: [iam:*]` against `NotAction:
/// [iam:*, s3:*]` differs by exactly `s3:*`.
fn exclusion_gap(fewer: &[String], more: &[String], case_insensitive: bool) -> Option<Vec<String>> {
    let fewer: Vec<Pattern> = fewer
        .iter()
        .map(|p| Pattern::new(p, case_insensitive))
        .collect();
    let mut gap = Vec::new();
    for text in more {
        let pattern = Pattern::new(text, case_insensitive);
        if fewer.iter().any(|f| f.covers(&pattern)) {
            continue;
        }
        if fewer.iter().any(|f| f.overlaps(&pattern)) {
            return None;
        }
        gap.push(text.clone());
    }
    Some(gap)
}

/// `grant` (a `NotAction`/`NotResource` one) less what `others` give, as
/// precise grants where some `Not` grant of `others` with the same other half
/// and no stricter conditions makes that possible; else `grant` itself. The
/// grants `others` covers outright are left out.
fn precise_gap(grant: &Grant, others: &Indexed) -> Vec<Grant> {
    for part in [Part::Action, Part::Resource] {
        let Target::AllExcept(excluded) = part.of(grant) else {
            continue;
        };
        let compiled = CompiledGrant::new(grant);
        let mut best: Option<Vec<String>> = None;
        for other in others.grants.iter() {
            let Target::AllExcept(other_excluded) = part.of(other.grant) else {
                continue;
            };
            if !other.grant.conditions.is_subset_of(&grant.conditions)
                || !part
                    .other()
                    .compiled(other)
                    .covers(part.other().compiled(&compiled))
            {
                continue;
            }
            if let Some(gap) = exclusion_gap(excluded, other_excluded, part.case_insensitive()) {
                if best.as_ref().is_none_or(|b| gap.len() < b.len()) {
                    best = Some(gap);
                }
            }
        }
        let Some(best) = best else {
            return vec![grant.clone()];
        };
        return best
            .into_iter()
            .map(|p| part.with(grant, Target::Pattern(p.into())))
            .filter(|g| {
                let compiled = CompiledGrant::new(g);
                !others.coverers(&compiled).any(|o| o.covers(&compiled))
            })
            .collect();
    }
    vec![grant.clone()]
}

/// The part of `allow` that `deny` names: for each half, the narrower of the
/// two when one covers the other, else the allow's.
fn narrowed(allow: &CompiledGrant, deny: &CompiledGrant) -> Grant {
    let mut grant = allow.grant.clone();
    if allow.action.covers(&deny.action) {
        grant.action = deny.grant.action.clone();
    }
    if allow.resource.covers(&deny.resource) {
        grant.resource = deny.grant.resource.clone();
    }
    grant
}

/// The actual grants the expectation does not account for: actual Allows
/// that no expected Allow covers, or the part of an actual Allow that an
/// expected Deny the role does not carry would have removed (named precisely:
/// the Deny's action, not the Allow's wildcard). An Allow wholly removed by an
/// unconditional actual Deny, or wholly outside the permissions boundary, is
/// not excess. A `NotAction` Allow with fewer exclusions than expected is
/// reported as the exclusions it lacks. Sorted, without duplicates.
pub fn excess(expected: &EffectiveGrants, actual: &EffectiveGrants) -> Vec<Grant> {
    excess_compiled(&expected.compiled(), &actual.compiled())
}

/// [`excess`] on sets compiled once (see [`CompiledGrants`]).
pub fn excess_compiled(want: &CompiledGrants, have: &CompiledGrants) -> Vec<Grant> {
    let mut out = Vec::new();
    for grant in &have.allows.grants {
        if not_in_force(grant, have) {
            continue;
        }
        let covered = want.allows.coverers(grant).any(|allow| allow.covers(grant));
        excess_of(grant, covered, want, have, &mut out);
    }
    out.sort();
    out.dedup();
    out
}

/// True when an actual Allow is wholly removed by an unconditional actual Deny, or lies
/// wholly outside the permissions boundary: it is then never excess.
fn not_in_force(grant: &CompiledGrant, have: &CompiledGrants) -> bool {
    let wholly_denied = have
        .denies
        .coverers(grant)
        .any(|deny| deny.grant.conditions.is_empty() && deny.covers(grant));
    wholly_denied
        || have
            .boundary
            .as_ref()
            .is_some_and(|(_, boundary)| !boundary.candidates(grant).any(|b| b.may_overlap(grant)))
}

/// What actual Allow `grant` (in force) adds to [`excess`]: itself, precisely, when no
/// expected Allow covers it (`covered`), else what an expected Deny the role does not
/// carry would have removed from it.
fn excess_of(
    grant: &CompiledGrant,
    covered: bool,
    want: &CompiledGrants,
    have: &CompiledGrants,
    out: &mut Vec<Grant>,
) {
    if !covered {
        out.extend(precise_gap(grant.grant, &want.allows));
        return;
    }
    for required_deny in want.denies.candidates(grant) {
        if required_deny.may_overlap(grant)
            && !have
                .denies
                .coverers(required_deny)
                .any(|deny| deny.covers(required_deny))
        {
            out.push(narrowed(grant, required_deny));
        }
    }
}

/// The expected sets of several candidates (the documented forms of a role, each rendered
/// for each scanned region), indexed together once, so that one pass over a role's grants
/// finds, for every grant, which candidates' Allows cover it (see [`Coverage`]). Most
/// grants are shared by all candidates and are compared once instead of once per
/// candidate.
pub struct CompiledUnion<'g> {
    candidates: usize,
    /// Every distinct expected Allow of any candidate.
    index: Indexed<'g>,
    /// The candidates holding each grant of `index`.
    members: Vec<Vec<usize>>,
}

impl<'g> CompiledUnion<'g> {
    /// The union of `sets` (candidate `i` is `sets[i]`).
    pub fn new(sets: &[CompiledGrants<'g>]) -> Self {
        let mut members: BTreeMap<&'g Grant, Vec<usize>> = BTreeMap::new();
        for (i, set) in sets.iter().enumerate() {
            for grant in &set.source.allows {
                members.entry(grant).or_default().push(i);
            }
        }
        CompiledUnion {
            candidates: sets.len(),
            index: Indexed::new(members.keys().copied()),
            members: members.into_values().collect(),
        }
    }
}

/// Which candidates' expected Allows cover each of one role's Allows, found in one pass
/// (see [`CompiledUnion`]); the excess against any candidate is then read off it
/// ([`Coverage::excess`]), and often counted without being listed
/// ([`Coverage::excess_count`]). The results are exactly [`excess_compiled`]'s.
pub struct Coverage {
    candidates: usize,
    /// Per role Allow, whether it is in force (see [`not_in_force`]).
    in_force: Vec<bool>,
    /// Per role Allow, per candidate (row-major): covered by an Allow of that candidate.
    covered: Vec<bool>,
}

impl Coverage {
    /// Compares every Allow of `have` with every candidate of `union` at once.
    pub fn new(union: &CompiledUnion, have: &CompiledGrants) -> Self {
        let k = union.candidates;
        let n = have.allows.grants.len();
        let mut coverage = Coverage {
            candidates: k,
            in_force: vec![false; n],
            covered: vec![false; n * k],
        };
        for (g, grant) in have.allows.grants.iter().enumerate() {
            if not_in_force(grant, have) {
                continue;
            }
            coverage.in_force[g] = true;
            let row = &mut coverage.covered[g * k..(g + 1) * k];
            let mut left = k;
            for u in union.index.coverer_indices(grant) {
                if left == 0 {
                    break;
                }
                let candidates = &union.members[u];
                if candidates.iter().any(|&c| !row[c]) && union.index.grants[u].covers(grant) {
                    Self::mark(row, candidates, &mut left);
                }
            }
        }
        coverage
    }

    /// Marks `candidates` as covering in `row`, counting down those `left`.
    fn mark(row: &mut [bool], candidates: &[usize], left: &mut usize) {
        for &c in candidates {
            if !row[c] {
                row[c] = true;
                *left -= 1;
            }
        }
    }

    fn covered(&self, grant: usize, candidate: usize) -> bool {
        self.covered[grant * self.candidates + candidate]
    }

    /// The number of grants [`Coverage::excess`] would list for candidate `candidate`
    /// (whose expected grants are `want`), when it can be told without listing them: the
    /// candidate has no Deny and every uncovered Allow in force is a plain pattern, so
    /// each is its own excess grant, and they are distinct. `None` otherwise.
    pub fn excess_count(
        &self,
        candidate: usize,
        want: &CompiledGrants,
        have: &CompiledGrants,
    ) -> Option<usize> {
        if !want.denies.grants.is_empty() {
            return None;
        }
        let mut count = 0;
        for (g, grant) in have.allows.grants.iter().enumerate() {
            if !self.in_force[g] || self.covered(g, candidate) {
                continue;
            }
            if !grant.is_plain() {
                return None;
            }
            count += 1;
        }
        debug_assert_eq!(count, excess_compiled(want, have).len());
        Some(count)
    }

    /// [`excess_compiled`]`(want, have)` for candidate `candidate`, whose expected grants
    /// are `want`; `have` is the set this coverage was computed for.
    pub fn excess(
        &self,
        candidate: usize,
        want: &CompiledGrants,
        have: &CompiledGrants,
    ) -> Vec<Grant> {
        let mut out = Vec::new();
        for (g, grant) in have.allows.grants.iter().enumerate() {
            if self.in_force[g] {
                excess_of(grant, self.covered(g, candidate), want, have, &mut out);
            }
        }
        out.sort();
        out.dedup();
        debug_assert_eq!(out, excess_compiled(want, have));
        out
    }
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
    // Sorted rows of (resource, conditions, action) are the groups in order, each with its
    // actions in order; texts are borrowed until they go into the report. Grants come
    // sorted by action, so the rows are one sorted run per action, which the stable sort
    // merges instead of sorting afresh.
    let mut rows: Vec<(Cow<str>, &Conditions, Cow<str>)> = grants
        .iter()
        .map(|g| (g.resource.text(), &g.conditions, g.action.text()))
        .collect();
    rows.sort();
    rows.dedup();
    let mut groups: Vec<GrantGroup> = Vec::new();
    for (resource, conditions, action) in rows {
        match groups.last_mut() {
            Some(last) if last.resource == resource && last.conditions == *conditions => {
                last.actions.push(action.into_owned());
            }
            _ => groups.push(GrantGroup {
                resource: resource.into_owned(),
                conditions: conditions.clone(),
                actions: vec![action.into_owned()],
            }),
        }
    }
    groups
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
        // Named precisely: what the missing Deny took away, not the whole Allow.
        assert_eq!(strings(&excess(&e, &a)), vec!["s3:deletebucket on *"]);
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
        assert_eq!(strings(g.allows()), vec!["sts:assumerole on *"]);
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

    fn reason_of(e: &EffectiveGrants, a: &EffectiveGrants) -> Vec<(String, String)> {
        missing_with_reasons(e, a)
            .into_iter()
            .map(|(g, r)| (g.to_string(), r.label()))
            .collect()
    }

    #[test]
    fn condition_values_split_across_statements_are_ored() {
        let one = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ec2:RunInstances","Resource":"*",
            "Condition":{"StringEquals":{"aws:RequestedRegion":["us-east-1","us-west-2"]},"Bool":{"aws:SecureTransport":"true"}}}}"#;
        let split = r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"ec2:RunInstances","Resource":"*",
             "Condition":{"StringEquals":{"aws:RequestedRegion":"us-east-1"},"Bool":{"aws:SecureTransport":"true"}}},
            {"Effect":"Allow","Action":"ec2:RunInstances","Resource":"*",
             "Condition":{"Bool":{"aws:SecureTransport":"true"},"StringEquals":{"aws:RequestedRegion":"us-west-2"}}}]}"#;
        let (e, a) = (grants(&[one]), grants(&[split]));
        assert!(
            missing(&e, &a).is_empty(),
            "{:?}",
            strings(&missing(&e, &a))
        );
        assert!(excess(&e, &a).is_empty(), "{:?}", strings(&excess(&e, &a)));
        assert_eq!(a, e);
        // Negated operators do not OR into one clause: "not a" or "not b" is not "not a or b".
        let negated = |v: &str| {
            format!(
                r#"{{"Statement":{{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{{"StringNotEquals":{{"aws:RequestedRegion":"{v}"}}}}}}}}"#
            )
        };
        let both = r#"{"Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{"StringNotEquals":{"aws:RequestedRegion":["a","b"]}}}}"#;
        let apart = grants(&[&negated("a"), &negated("b")]);
        assert_eq!(apart.allows().len(), 2);
        assert_ne!(apart, grants(&[both]));
        // Different keys are not joined either.
        let other_key = r#"{"Statement":{"Effect":"Allow","Action":"ec2:RunInstances","Resource":"*",
            "Condition":{"StringEquals":{"aws:PrincipalTag/team":"us-west-2"},"Bool":{"aws:SecureTransport":"true"}}}}"#;
        let half = r#"{"Statement":{"Effect":"Allow","Action":"ec2:RunInstances","Resource":"*",
            "Condition":{"StringEquals":{"aws:RequestedRegion":"us-east-1"},"Bool":{"aws:SecureTransport":"true"}}}}"#;
        assert_eq!(missing(&e, &grants(&[half, other_key])).len(), 1);
    }

    #[test]
    fn version_2008_or_none_reads_variables_as_text() {
        let doc = |version: &str| {
            format!(
                r#"{{{version}"Statement":{{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::data/${{aws:username}}/*"}}}}"#
            )
        };
        let v2012 = grants(&[&doc(r#""Version":"2012-10-17","#)]);
        let v2008 = grants(&[&doc(r#""Version":"2008-10-17","#)]);
        let unversioned = grants(&[&doc("")]);
        assert_eq!(v2008, unversioned);
        // The 2008 policy grants a key literally named "${aws:username}": not the user's own.
        assert_eq!(missing(&v2012, &v2008).len(), 1);
        assert_eq!(excess(&v2012, &v2008).len(), 1);
        assert!(missing(&v2012, &v2012).is_empty());
        // A variable is covered by a wildcard over it, in either version's Allow.
        let wide = grants(&[
            r#"{"Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::data/*"}}"#,
        ]);
        assert!(missing(&v2012, &wide).is_empty());
        assert!(missing(&v2008, &wide).is_empty());
    }

    #[test]
    fn unconditional_deny_is_named_with_its_policy_and_statement() {
        let e = grants(&[EXPECTED]);
        let allow = PolicyDocument::parse(EXPECTED).unwrap();
        let deny = PolicyDocument::parse(
            r#"{"Statement":[{"Effect":"Allow","Action":"s3:ListBucket","Resource":"*"},
                {"Sid":"NoVpcs","Effect":"Deny","Action":"ec2:DescribeVpcs","Resource":"*"}]}"#,
        )
        .unwrap();
        let a = EffectiveGrants::from_named_policies([
            ("inline policy main", &allow),
            ("inline policy guard", &deny),
        ]);
        let reasons = missing_with_reasons(&e, &a);
        assert_eq!(reasons.len(), 1);
        let MissingReason::Denied(denies) = &reasons[0].1 else {
            panic!("{reasons:?}")
        };
        assert_eq!(reasons[0].1.label(), "denied");
        assert_eq!(
            denies[0].statements[0].to_string(),
            r#"statement "NoVpcs" (Statement[1]) of inline policy guard"#
        );
    }

    #[test]
    fn region_guardrail_deny_is_denied_when_not_missing_outright() {
        let e = grants(&[EXPECTED]);
        let guard = r#"{"Statement":{"Effect":"Deny","Action":"ec2:*","Resource":"*",
            "Condition":{"StringNotEquals":{"aws:RequestedRegion":"eu-west-1"}}}}"#;
        let a = grants(&[EXPECTED, guard]);
        assert_eq!(
            reason_of(&e, &a),
            vec![
                (
                    "ec2:describesubnets on *".to_string(),
                    "denied when StringNotEquals aws:RequestedRegion [eu-west-1]".to_string()
                ),
                (
                    "ec2:describevpcs on *".to_string(),
                    "denied when StringNotEquals aws:RequestedRegion [eu-west-1]".to_string()
                ),
            ]
        );
        // An unconditional Deny next to it wins: the grant is gone, not conditionally denied.
        let hard = r#"{"Statement":{"Effect":"Deny","Action":"ec2:DescribeVpcs","Resource":"*"}}"#;
        let reasons = reason_of(&e, &grants(&[EXPECTED, guard, hard]));
        assert_eq!(reasons[1].1, "denied");
    }

    #[test]
    fn permission_boundary_removes_what_it_does_not_allow() {
        let e = grants(&[EXPECTED]);
        let boundary = PolicyDocument::parse(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ec2:*","iam:Get*"],"Resource":"*"}]}"#,
        )
        .unwrap();
        let a = grants(&[EXPECTED]).with_boundary("DevCap", &boundary);
        let reasons = reason_of(&e, &a);
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        assert!(reasons.iter().all(|(g, r)| g.starts_with("iam:passrole")
            && r == "removed by the permission boundary DevCap"));
        // What the boundary removes entirely is not excess either.
        let wide = grants(&[
            EXPECTED,
            r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}"#,
        ])
        .with_boundary("DevCap", &boundary);
        assert!(
            excess(&e, &wide).is_empty(),
            "{:?}",
            strings(&excess(&e, &wide))
        );
        // A boundary Deny denies, naming the boundary.
        let denying = PolicyDocument::parse(
            r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Deny","Action":"ec2:DescribeVpcs","Resource":"*"}]}"#,
        )
        .unwrap();
        let reasons = missing_with_reasons(&e, &grants(&[EXPECTED]).with_boundary("Cap", &denying));
        let MissingReason::Denied(d) = &reasons[0].1 else {
            panic!("{reasons:?}")
        };
        assert_eq!(d[0].statements[0].policy, "permissions boundary Cap");
    }

    #[test]
    fn not_action_changes_name_the_precise_patterns() {
        let expected =
            grants(&[r#"{"Statement":{"Effect":"Allow","NotAction":"iam:*","Resource":"*"}}"#]);
        let more_excluded = grants(&[
            r#"{"Statement":{"Effect":"Allow","NotAction":["iam:*","s3:*"],"Resource":"*"}}"#,
        ]);
        assert_eq!(
            strings(&missing(&expected, &more_excluded)),
            vec!["s3:* on *"]
        );
        assert!(excess(&expected, &more_excluded).is_empty());
        // The other way round, the role excludes less: the excess is what it no longer excludes.
        assert_eq!(
            strings(&excess(&more_excluded, &expected)),
            vec!["s3:* on *"]
        );
        assert!(missing(&more_excluded, &expected).is_empty());
        // What another Allow gives back is not missing.
        let given_back = grants(&[
            r#"{"Statement":[{"Effect":"Allow","NotAction":["iam:*","s3:*"],"Resource":"*"},
                {"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#,
        ]);
        assert!(missing(&expected, &given_back).is_empty());
        // A removed Deny of one action is that action, not the service's wildcard.
        let with_deny = grants(&[r#"{"Statement":[
            {"Effect":"Allow","Action":"lakeformation:*","Resource":"*"},
            {"Effect":"Deny","Action":"lakeformation:PutDataLakeSettings","Resource":"*"}]}"#]);
        let without = grants(&[
            r#"{"Statement":{"Effect":"Allow","Action":"lakeformation:*","Resource":"*"}}"#,
        ]);
        assert_eq!(
            strings(&excess(&with_deny, &without)),
            vec!["lakeformation:putdatalakesettings on *"]
        );
        // An exclusion that only partly overlaps is not a list of patterns: kept whole.
        let partial = grants(&[
            r#"{"Statement":{"Effect":"Allow","NotAction":["iam:*","s3:Get*"],"Resource":"*"}}"#,
        ]);
        let narrower = grants(&[
            r#"{"Statement":{"Effect":"Allow","NotAction":["iam:*","s3:*"],"Resource":"*"}}"#,
        ]);
        assert_eq!(
            strings(&missing(&partial, &narrower)),
            vec!["all except [iam:*, s3:get*] on *"]
        );
    }

    /// The `policy` fuzz target's invariants, replayed on its corpus in-process (the fuzz
    /// workspace needs an instrumented build; this runs with the unit tests).
    #[test]
    fn policy_corpus_keeps_the_fuzz_invariants() {
        let expected = grants(&[r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":["s3:GetObject","s3:List*"],"Resource":["arn:aws:s3:::bucket","arn:aws:s3:::bucket/*"]},
            {"Effect":"Allow","Action":"ec2:Describe*","Resource":"*","Condition":{"StringEquals":{"aws:RequestedRegion":"us-east-1"}}},
            {"Effect":"Deny","NotAction":"iam:*","NotResource":"arn:aws:iam::*:role/x"}]}"#]);
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/policy");
        let mut parsed = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let Ok(doc) = PolicyDocument::parse(&text) else {
                continue;
            };
            parsed += 1;
            let actual = effective_grants(std::slice::from_ref(&doc));
            assert!(
                missing(&actual, &actual).is_empty(),
                "{path:?} lacks itself"
            );
            assert!(
                excess(&actual, &actual).is_empty(),
                "{path:?} exceeds itself"
            );
            let _ = missing_with_reasons(&expected, &actual);
            let _ = excess(&expected, &actual);
            let _ = missing(&actual, &expected);
        }
        assert!(parsed > 0, "the corpus has valid policies");
    }

    #[test]
    fn grouping_lists_sorted_actions_per_resource() {
        let g = grants(&[EXPECTED]);
        let all: Vec<Grant> = g.allows().to_vec();
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

    #[test]
    fn one_coverage_pass_gives_each_candidates_excess_exactly() {
        let expected = [
            EXPECTED,
            r#"{"Version":"2012-10-17","Statement":[
                {"Effect":"Allow","Action":["ec2:Describe*","s3:GetObject"],"Resource":"*"},
                {"Effect":"Deny","Action":"s3:GetObject","Resource":"arn:aws:s3:::secret/*"}]}"#,
            r#"{"Version":"2012-10-17","Statement":[
                {"Effect":"Allow","NotAction":["iam:*"],"Resource":"*"}]}"#,
            r#"{"Version":"2012-10-17","Statement":[
                {"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::b/*",
                 "Condition":{"StringEquals":{"aws:RequestedRegion":"eu-west-1"}}}]}"#,
        ];
        let actual = [
            EXPECTED,
            r#"{"Statement":[{"Effect":"Allow","Action":["ec2:DescribeVpcs","s3:GetObject","iam:PassRole"],"Resource":"*"},
                {"Effect":"Allow","Action":"s3:PutObject","Resource":"arn:aws:s3:::b/*"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","NotAction":["iam:*","kms:*"],"Resource":"*"},
                {"Effect":"Deny","Action":"ec2:*","Resource":"*"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
        ];
        let wants: Vec<EffectiveGrants> = expected.iter().map(|e| grants(&[e])).collect();
        let compiled: Vec<CompiledGrants> = wants.iter().map(|w| w.compiled()).collect();
        let union = CompiledUnion::new(&compiled);
        let boundary = PolicyDocument::parse(
            r#"{"Statement":{"Effect":"Allow","Action":["ec2:*","s3:*"],"Resource":"*"}}"#,
        )
        .unwrap();
        let mut listed = 0;
        for text in actual {
            for have in [
                grants(&[text]),
                grants(&[text]).with_boundary("Cap", &boundary),
            ] {
                let have = have.compiled();
                let coverage = Coverage::new(&union, &have);
                for (i, want) in compiled.iter().enumerate() {
                    let reference = excess_compiled(want, &have);
                    assert_eq!(coverage.excess(i, want, &have), reference, "{text} / {i}");
                    match coverage.excess_count(i, want, &have) {
                        Some(count) => assert_eq!(count, reference.len(), "{text} / {i}"),
                        None => listed += 1,
                    }
                }
            }
        }
        // A candidate with a Deny, or a NotAction grant in excess, is listed, not counted.
        assert!(listed > 0);
    }

    #[test]
    fn coverers_hold_every_action_that_covers() {
        let unknown = crate::iam::policy::unknown_value("Service");
        let services = [
            "s3",
            "ec2",
            "s?",
            "*",
            "s3*",
            "${aws:username}",
            &unknown,
            "s${$}3",
        ];
        let names = [
            "getobject",
            "get*",
            "*",
            "get?bject",
            "${*}",
            "${aws:username}",
            &unknown,
            "",
            "get:object",
        ];
        let mut actions: Vec<Target> = services
            .iter()
            .flat_map(|s| names.iter().map(move |n| format!("{s}:{n}")))
            .chain(["*", "s3*", "foo", "s3", "${aws:username}", unknown.as_str()].map(String::from))
            .map(|a| Target::Pattern(a.into()))
            .collect();
        for excluded in [&["iam:*"][..], &["*"], &["s3:get*", "s3:putobject"]] {
            actions.push(Target::AllExcept(
                excluded.iter().map(|e| e.to_string()).collect(),
            ));
        }
        let list: Vec<Grant> = actions
            .into_iter()
            .map(|action| Grant {
                action,
                resource: Target::Pattern("*".into()),
                conditions: Conditions::default(),
            })
            .collect();
        let index = Indexed::new(&list);
        let mut covering = 0;
        for query in &index.grants {
            let coverers: BTreeSet<usize> = index.coverer_indices(query).collect();
            let candidates: BTreeSet<usize> = index.candidate_indices(query).collect();
            assert!(coverers.is_subset(&candidates), "{}", query.grant);
            for (n, general) in index.grants.iter().enumerate() {
                if general.covers(query) {
                    covering += 1;
                    assert!(
                        coverers.contains(&n),
                        "{} covers {} but is not among its coverers",
                        general.grant,
                        query.grant
                    );
                }
            }
        }
        // Every action covers itself, and some cover others.
        assert!(covering > index.grants.len(), "{covering}");
        // The narrowing leaves some candidates out.
        let narrowed = index
            .grants
            .iter()
            .filter(|q| index.coverer_indices(q).count() < index.candidate_indices(q).count())
            .count();
        assert!(narrowed > 0);
    }
}
