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

use crate::finding::Severity;
use crate::iam::grants::{
    missing_with_reasons_compiled, CompiledGrants, CompiledUnion, Coverage, EffectiveGrants,
};
use crate::iam::policy::ConditionKey;
use crate::iam::render::to_iam_json;
use crate::iam::trust::{TrustDrift, TrustRisk};
use crate::iam::{
    compare_trust, effective_grants, group_by_resource, pattern, read_template, remediation,
    unknown_value, Grant, MissingReason, PolicyDocument, StatementRef, TemplateContext,
    TrustOptions,
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
    /// True when the template role has no `RoleName`: `template_role_name` is then its
    /// logical id, and CloudFormation names the role `{stack}-{logical id}-{suffix}`.
    pub generated_name: bool,
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
        context.partition = partition_of(region).to_string();
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
            generated_name: chosen.generated_name,
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
        generated_name: false,
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
        (&["${AWS::Partition}"][..], partition_of(region)),
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
///
/// An expectation's `${AWS::Region}` is its explicit `region:` if it has one; otherwise the
/// expectation is rendered for every region scanned in the account, and each role is judged
/// against the region (and documented form) it fits best. Never by alphabet.
pub fn evaluate_pack(eval: &mut Evaluation, snapshot: &Snapshot, pack: &RulePack) {
    for account in snapshot.iam.iter().filter(|a| a.error.is_none()) {
        // The regions scanned for the account, in the order they were scanned.
        let mut scanned: Vec<&str> = Vec::new();
        for region in snapshot
            .regions
            .iter()
            .filter(|r| r.account_id == account.account_id)
        {
            if !scanned.contains(&region.region.as_str()) {
                scanned.push(&region.region);
            }
        }
        let index = RoleIndex::new(&account.roles);
        for expectation in &pack.roles {
            let regions = match &expectation.region {
                Some(region) => RegionChoice::Explicit(region.0.clone()),
                None if scanned.is_empty() => RegionChoice::Default("us-east-1".to_string()),
                None => RegionChoice::Scanned(scanned.iter().map(|r| r.to_string()).collect()),
            };
            evaluate_expectation(eval, account, &index, pack, expectation, &regions);
        }
    }
}

/// Where an expectation's `${AWS::Region}` comes from.
#[derive(Debug, Clone)]
enum RegionChoice {
    /// `region:` on the expectation.
    Explicit(String),
    /// No region was scanned in the account.
    Default(String),
    /// The regions scanned in the account; the best fit is chosen per role.
    Scanned(Vec<String>),
}

impl RegionChoice {
    fn regions(&self) -> Vec<&str> {
        match self {
            RegionChoice::Explicit(r) | RegionChoice::Default(r) => vec![r.as_str()],
            RegionChoice::Scanned(list) => list.iter().map(String::as_str).collect(),
        }
    }
}

/// An account's roles, indexed once by lower-cased name (IAM role names are unique
/// regardless of case), so that an exact expectation finds its role without a scan and
/// matching is linear in the number of roles.
pub struct RoleIndex<'a> {
    roles: &'a [IamRole],
    by_name: std::collections::HashMap<String, Vec<usize>>,
}

impl<'a> RoleIndex<'a> {
    pub fn new(roles: &'a [IamRole]) -> Self {
        let mut by_name: std::collections::HashMap<String, Vec<usize>> =
            std::collections::HashMap::with_capacity(roles.len());
        for (i, role) in roles.iter().enumerate() {
            by_name.entry(role.name.to_lowercase()).or_default().push(i);
        }
        RoleIndex { roles, by_name }
    }
}

/// An expectation's role-name matcher, compiled once per expectation: an exact name is a
/// hash lookup, a glob one pass over the roles with the pattern tokenised once.
pub enum NameMatcher {
    Exact(String),
    Glob(pattern::Pattern),
    /// The name CloudFormation generates for a role without `RoleName`:
    /// `{stack}-{logical id}-{suffix}`, the suffix 12 or 13 upper-case letters and digits,
    /// the whole at most 64 characters. When the whole would be longer, CloudFormation
    /// truncates the stack name and the logical id, so a 64-character name may carry only
    /// the start of the logical id.
    Generated(String),
}

/// IAM's longest role name.
const MAX_ROLE_NAME: usize = 64;

impl NameMatcher {
    /// The matcher for a CloudFormation role without `RoleName`.
    pub fn generated(logical_id: &str) -> Self {
        NameMatcher::Generated(logical_id.to_string())
    }

    /// The pattern as shown in findings.
    pub fn describe(&self, name_pattern: &str) -> String {
        match self {
            NameMatcher::Generated(id) => format!("*-{id}-* (a name CloudFormation generates)"),
            _ => name_pattern.to_string(),
        }
    }

    fn generated_matches(logical_id: &str, name: &str) -> bool {
        if name.len() > MAX_ROLE_NAME {
            return false;
        }
        let Some((head, suffix)) = name.rsplit_once('-') else {
            return false;
        };
        let suffix_ok = (12..=13).contains(&suffix.len())
            && suffix
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        // Logical ids are alphanumeric, so the last `-` of the head ends the stack name.
        let Some((stack, id)) = head.rsplit_once('-') else {
            return false;
        };
        let id_ok = id == logical_id
            || (name.len() == MAX_ROLE_NAME && !id.is_empty() && logical_id.starts_with(id));
        suffix_ok && !stack.is_empty() && id_ok
    }

    pub fn new(name_pattern: &str) -> Self {
        if name_pattern.contains(['*', '?']) {
            NameMatcher::Glob(pattern::Pattern::new(name_pattern, true))
        } else {
            NameMatcher::Exact(name_pattern.to_lowercase())
        }
    }

    /// The roles whose names match, in the account's order.
    pub fn matching<'a>(&self, index: &RoleIndex<'a>) -> Vec<&'a IamRole> {
        match self {
            NameMatcher::Exact(name) => index
                .by_name
                .get(name)
                .map(|ids| ids.iter().map(|&i| &index.roles[i]).collect())
                .unwrap_or_default(),
            // Role names hold no `*` or `?` (IAM allows letters, digits and `+=,.@_-`), so
            // a name compiled as a pattern is the literal name.
            NameMatcher::Glob(glob) => index
                .roles
                .iter()
                .filter(|r| glob.covers(&pattern::Pattern::new(&r.name, true)))
                .collect(),
            NameMatcher::Generated(logical_id) => index
                .roles
                .iter()
                .filter(|r| NameMatcher::generated_matches(logical_id, &r.name))
                .collect(),
        }
    }
}

/// One documented form of an expectation, rendered for one region.
struct Candidate<'p> {
    form: &'p RoleExpectation,
    region: String,
    expected: ExpectedRole,
    /// The expected grants, computed once for every role judged against them.
    want: EffectiveGrants,
}

/// What one role is judged to lack and carry in excess against one candidate, computed
/// once: `choose` compares with it and `check_role` reports from it, so the best fit is
/// never compared twice.
struct Comparison {
    /// The expected grants the role does not reliably give, with reasons; `None` when the
    /// role's documents could not be read.
    gaps: Option<Vec<(Grant, MissingReason)>>,
    /// How many grants the role has beyond the expectation (only for `mode: exact`; else
    /// 0); `None` when its documents could not be read.
    extra_count: Option<usize>,
    /// Those grants, once listed: `choose` often only needs their number, and
    /// [`RoleSide::finish`] lists them for the chosen candidate.
    extra: Option<Vec<Grant>>,
    /// The trust drifts (see [`trust_drifts`]).
    trust: Option<Result<Vec<TrustDrift>, String>>,
}

/// A role's side of every comparison, read, parsed and compiled once for all candidates.
struct RoleSide<'r> {
    role: &'r IamRole,
    documents: &'r Result<RoleDocuments, String>,
    /// The role's grants compiled; `None` when its documents could not be read.
    have: Option<CompiledGrants<'r>>,
    /// Which candidates cover each of the role's grants, found in one pass for all.
    coverage: Option<Coverage>,
    /// The role's trust policy, parsed; `Err` says why it could not be.
    trust: Result<PolicyDocument, String>,
}

impl<'r> RoleSide<'r> {
    fn new(
        role: &'r IamRole,
        documents: &'r Result<RoleDocuments, String>,
        union: &CompiledUnion,
    ) -> Self {
        let have = documents.as_ref().ok().map(|d| d.grants.compiled());
        RoleSide {
            role,
            documents,
            coverage: have.as_ref().map(|have| Coverage::new(union, have)),
            have,
            trust: role
                .trust_policy
                .as_deref()
                .ok_or_else(|| "the role has no trust policy".to_string())
                .and_then(|t| PolicyDocument::parse(t).map_err(|e| e.to_string())),
        }
    }

    /// Compares the role with candidate number `index`, whose expected grants are `want`.
    fn compare(&self, candidate: &Candidate, index: usize, want: &CompiledGrants) -> Comparison {
        let have = self.have.as_ref();
        let (extra_count, extra) = match (have, &self.coverage) {
            (Some(have), Some(coverage)) if candidate.form.mode == PolicyMode::Exact => {
                match coverage.excess_count(index, want, have) {
                    Some(count) => (Some(count), None),
                    None => {
                        let list = coverage.excess(index, want, have);
                        (Some(list.len()), Some(list))
                    }
                }
            }
            (Some(_), _) => (Some(0), Some(Vec::new())),
            (None, _) => (None, None),
        };
        Comparison {
            gaps: have.map(|have| missing_with_reasons_compiled(want, have)),
            extra_count,
            extra,
            trust: trust_drifts(candidate.form, &candidate.expected, self.role, &self.trust),
        }
    }

    /// Lists the excess grants of a comparison with candidate `index` that only counted
    /// them.
    fn finish(&self, comparison: &mut Comparison, index: usize, want: &CompiledGrants) {
        if let (None, Some(_), Some(have), Some(coverage)) = (
            &comparison.extra,
            comparison.extra_count,
            &self.have,
            &self.coverage,
        ) {
            comparison.extra = Some(coverage.excess(index, want, have));
        }
    }
}

/// How far a role is from a candidate: the size of the gap (grants missing or in excess,
/// trust differences that matter, a loosened trust counting ten), then the number of rules
/// that would fire. The gap comes first: a role built from an older template is closer to
/// the template than to a manual form it shares little with, even though the manual form
/// would spare it a trust finding.
type Distance = (usize, usize);

fn distance(comparison: &Comparison) -> Distance {
    let (Some(gaps), Some(extra)) = (&comparison.gaps, comparison.extra_count) else {
        return (usize::MAX, usize::MAX);
    };
    let gaps = gaps.len();
    let trust = match &comparison.trust {
        None => 0,
        Some(Err(_)) => 1,
        Some(Ok(drifts)) => drifts
            .iter()
            .filter(|d| d.risk() > TrustRisk::Note)
            .map(|d| if d.risk() >= TrustRisk::Looser { 10 } else { 1 })
            .sum(),
    };
    let fired = usize::from(gaps > 0) + usize::from(extra > 0) + usize::from(trust > 0);
    (gaps + extra + trust, fired)
}

fn evaluate_expectation(
    eval: &mut Evaluation,
    account: &IamSnapshot,
    index: &RoleIndex,
    pack: &RulePack,
    expectation: &RoleExpectation,
    regions: &RegionChoice,
) {
    let scope = || FindingScope {
        account_id: account.account_id.clone(),
        region: GLOBAL_REGION.to_string(),
        vpc_id: None,
    };
    // Every documented form, rendered for every candidate region, once.
    let mut candidates: Vec<Candidate> = Vec::new();
    for form in expectation.forms() {
        for region in regions.regions() {
            match resolve_expected(form, &account.account_id, region) {
                Ok(expected) => candidates.push(Candidate {
                    form,
                    region: region.to_string(),
                    want: effective_grants(&expected.policies),
                    expected,
                }),
                Err(err) => {
                    // Validated when the pack was loaded; reaching here means the account's
                    // values broke it. The role cannot be verified, so say so rather than
                    // pass it.
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
                            json!({ "source": form.source_label(), "region": region }),
                        );
                    }
                    return;
                }
            }
        }
    }
    let Some(first) = candidates.first() else {
        return;
    };
    let name_pattern = expectation
        .role_name
        .clone()
        .or_else(|| first.expected.template_role_name.clone())
        .unwrap_or_default();
    let matcher = if expectation.role_name.is_none() && first.expected.generated_name {
        NameMatcher::generated(&name_pattern)
    } else {
        NameMatcher::new(&name_pattern)
    };
    let matched = matcher.matching(index);
    let name_pattern = matcher.describe(&name_pattern);

    if let Some(mut sink) = Sink::new(eval, pack, catalogue::IAM_ROLE_MISSING, scope()) {
        let resource = if matches!(matcher, NameMatcher::Exact(_)) {
            format!(
                "arn:{}:iam::{}:role/{name_pattern}",
                partition_of(&first.region),
                account.account_id
            )
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
    // Every candidate's grants, compiled once for all the roles judged against them.
    let wants: Vec<CompiledGrants> = candidates.iter().map(|c| c.want.compiled()).collect();
    let union = CompiledUnion::new(&wants);
    // Roles of one account are mostly built alike: the last role's best fit is tried first.
    let mut hint = 0;
    for role in matched {
        // The role's documents and grants, read and compiled once for every candidate and
        // both comparisons.
        let documents = actual_documents(role);
        let side = RoleSide::new(role, &documents, &union);
        let mut comparisons: Vec<Option<Comparison>> = std::iter::repeat_with(|| None)
            .take(candidates.len())
            .collect();
        let (chosen, why) = choose(
            &candidates,
            &wants,
            &side,
            &mut comparisons,
            regions,
            &mut hint,
        );
        let candidate = &candidates[chosen];
        let mut comparison = comparisons[chosen]
            .take()
            .unwrap_or_else(|| side.compare(candidate, chosen, &wants[chosen]));
        side.finish(&mut comparison, chosen, &wants[chosen]);
        let before = eval.findings.len();
        check_role(
            eval,
            pack,
            candidate.form,
            &candidate.expected,
            comparison,
            &side,
            scope(),
        );
        // Say which documented form and region each finding was judged against, and why.
        for finding in &mut eval.findings[before..] {
            if let Value::Object(details) = &mut finding.details {
                details.insert("region".into(), json!(candidate.region));
                details.insert("expected_form".into(), json!(candidate.form.source_label()));
                details.insert("chosen_because".into(), json!(why));
            }
        }
    }
}

/// The candidate a role is judged against, and why in words: the closest fit, the first
/// listed form and the first scanned region breaking ties. Candidates are tried from
/// `hint` (the previous role's choice) on, and a perfect fit ends the search: a role that
/// fits exactly has no finding, so which of several exact fits is chosen is never shown.
fn choose(
    candidates: &[Candidate],
    wants: &[CompiledGrants],
    side: &RoleSide,
    comparisons: &mut [Option<Comparison>],
    regions: &RegionChoice,
    hint: &mut usize,
) -> (usize, String) {
    let region_reason = |region: &str| match regions {
        RegionChoice::Explicit(_) => format!("region {region} is set on the expectation"),
        RegionChoice::Default(_) => {
            format!("no region was scanned in the account, so {region} is assumed")
        }
        RegionChoice::Scanned(list) if list.len() == 1 => {
            format!("{region} is the only region scanned in the account")
        }
        RegionChoice::Scanned(_) => String::new(),
    };
    if candidates.len() == 1 || side.have.is_none() {
        return (0, region_reason(&candidates[0].region));
    }
    let mut distances: Vec<Option<Distance>> = vec![None; candidates.len()];
    let start = (*hint).min(candidates.len() - 1);
    for i in (start..candidates.len()).chain(0..start) {
        let comparison = side.compare(&candidates[i], i, &wants[i]);
        let d = distance(&comparison);
        comparisons[i] = Some(comparison);
        distances[i] = Some(d);
        // A perfect fit cannot be beaten; the other candidates need not be compared.
        if d == (0, 0) {
            break;
        }
    }
    let best = (0..candidates.len())
        .filter(|&i| distances[i].is_some())
        .min_by_key(|&i| (distances[i], i))
        .unwrap_or(0);
    *hint = best;
    let chosen = &candidates[best];
    let mut why = region_reason(&chosen.region);
    if why.is_empty() {
        let others: Vec<String> = candidates
            .iter()
            .zip(&distances)
            .filter(|(c, _)| c.region != chosen.region && std::ptr::eq(c.form, chosen.form))
            .filter_map(|(c, d)| d.map(|d| format!("{}: {} rule(s) would fire", c.region, d.1)))
            .collect();
        why = if others.is_empty() {
            format!(
                "{} fits the role exactly, so the other scanned regions were not needed",
                chosen.region
            )
        } else {
            format!(
                "of the regions scanned, {} fits the role best ({} rule(s) would fire; {})",
                chosen.region,
                distances[best].map_or(0, |d| d.1),
                others.join("; ")
            )
        };
    }
    let forms = candidates
        .iter()
        .map(|c| c.form as *const RoleExpectation)
        .collect::<BTreeSet<_>>()
        .len();
    if forms > 1 {
        why.push_str(&format!(
            "; of {forms} documented forms, {} is the closest",
            chosen.form.source_label()
        ));
    }
    (best, why)
}

/// The partition of a region: `aws-cn` for China, `aws-us-gov` for GovCloud, else `aws`.
pub fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
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

/// What a role's own policies grant, within its permissions boundary; `Err` names what
/// could not be read. For the rules of [`super::role_checks`].
pub fn role_grants(role: &IamRole) -> Result<crate::iam::EffectiveGrants, String> {
    actual_documents(role).map(|d| d.grants)
}

/// The AWS CLI commands that add `grants` to `role`, within IAM's size limits.
pub fn fix_commands(role: &IamRole, grants: &[Grant]) -> Vec<String> {
    grant_commands(role, grants).0
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

/// The fix for grants the permissions boundary `boundary_name` removes: the boundary's
/// document with an Allow for exactly `grants` added, as a new default version of a
/// customer-managed boundary, or as a new customer-managed policy set as the role's
/// boundary in place of an AWS-managed one (AWS-managed policies take no versions). When
/// the widened document cannot be written (over the managed-policy limit, unreadable), the
/// fix is to remove the boundary. The prose leads into the commands (each line ending in
/// `:`) so that the plan can run them.
fn boundary_commands(
    role: &IamRole,
    boundary_name: &str,
    home: Option<&(DocumentHome, String)>,
    grants: &[Grant],
    actions: &str,
) -> Vec<String> {
    let name = &role.name;
    let remove = format!("aws iam delete-role-permissions-boundary --role-name {name}");
    let (arn, text) = match home {
        Some((DocumentHome::Boundary { arn }, text)) => (arn, text),
        _ => {
            return vec![
                format!("The permission boundary {boundary_name} does not allow {actions}. Remove the boundary:"),
                remove,
            ]
        }
    };
    let widened = match remediation::with_allows(text, grants) {
        Ok(doc) => doc,
        Err(why) => {
            return vec![
                format!(
                    "The permission boundary {boundary_name} does not allow {actions}, and it cannot be widened \
                     by a new version ({why}). Remove the boundary (or allow them in a shorter boundary policy by hand):"
                ),
                remove,
            ]
        }
    };
    // arn:<partition>:iam::<account>:policy/<path/>name; `aws` as the account: AWS-managed.
    let parts: Vec<&str> = arn.split(':').collect();
    let (partition, account) = (
        parts.get(1).copied().unwrap_or("aws"),
        parts.get(4).copied().unwrap_or_default(),
    );
    if account == "aws" {
        let role_account = role.arn.split(':').nth(4).unwrap_or_default();
        let policy = format!("{FIX_BOUNDARY_PREFIX}-{name}");
        return vec![
            format!(
                "The permission boundary {boundary_name} does not allow {actions}. It is AWS-managed, so it \
                 cannot be edited: set a customer-managed copy of it that allows them as the role's boundary \
                 (or remove the boundary: {remove}):"
            ),
            format!(
                "aws iam create-policy --policy-name {policy} --policy-document {}",
                shell_quote(&widened)
            ),
            format!(
                "aws iam put-role-permissions-boundary --role-name {name} --permissions-boundary \
                 arn:{partition}:iam::{role_account}:policy/{policy}"
            ),
        ];
    }
    vec![
        format!(
            "The permission boundary {boundary_name} does not allow {actions}. Allow them in the boundary \
             policy, as its new default version (or remove the boundary: {remove}). A managed policy keeps \
             at most 5 versions: when {boundary_name} has 5, first delete a non-default one \
             (aws iam list-policy-versions, then aws iam delete-policy-version --policy-arn {arn} --version-id \
             v<n>):"
        ),
        format!(
            "aws iam create-policy-version --policy-arn {arn} --set-as-default --policy-document {}",
            shell_quote(&widened)
        ),
    ]
}

/// The name (prefix) of the customer-managed boundary a fix puts in place of an
/// AWS-managed one.
const FIX_BOUNDARY_PREFIX: &str = "vpc-auditor-boundary";

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
        let home = documents
            .homes
            .get(&format!("permissions boundary {boundary_name}"));
        fixes.extend(boundary_commands(
            role,
            boundary_name,
            home,
            grants,
            &actions.into_iter().collect::<Vec<_>>().join(", "),
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

#[allow(clippy::too_many_arguments)]
fn check_role(
    eval: &mut Evaluation,
    pack: &RulePack,
    expectation: &RoleExpectation,
    expected: &ExpectedRole,
    comparison: Comparison,
    side: &RoleSide,
    scope: FindingScope,
) {
    let (role, documents) = (side.role, side.documents);
    let source = expectation.source_label();
    let arn = role.arn.clone();
    let name = &role.name;
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
        // The grants were compared exactly when the documents could be read.
        match (documents, comparison.gaps) {
            (Err(why), _) => unverifiable(&mut sink, why),
            (Ok(_), None) => unverifiable(&mut sink, &"its grants were not compared".into()),
            (Ok(documents), Some(gaps)) => {
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
        match (documents, comparison.extra) {
            (Err(why), _) => unverifiable(&mut sink, why),
            (Ok(_), None) => unverifiable(&mut sink, &"its grants were not compared".into()),
            (Ok(_), Some(extra)) => {
                if !extra.is_empty() {
                    let groups = group_by_resource(&extra);
                    let actions: BTreeSet<_> = extra.iter().map(|g| g.action.text()).collect();
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

    if expected.trust_policy.is_none() {
        return;
    }
    let Some(mut sink) = Sink::new(eval, pack, catalogue::IAM_TRUST_POLICY_DRIFT, scope) else {
        return;
    };
    sink.evaluated(&arn);
    let drifts = match comparison.trust {
        None => return,
        Some(Ok(drifts)) => drifts,
        Some(Err(why)) => {
            sink.report(
                &arn,
                format!("Role {name}'s trust policy cannot be verified: {why}"),
                format!("aws iam get-role --role-name {name}"),
                json!({ "source": source, "error": why }),
            );
            return;
        }
    };
    let (notes, drifts): (Vec<_>, Vec<_>) = drifts
        .into_iter()
        .partition(|d| d.risk() == TrustRisk::Note);
    for note in &notes {
        let why = if note.is_informational() {
            " (the expected value is not configured)"
        } else {
            ""
        };
        sink.note(format!("Role {name}: {}{why}", note.message()));
    }
    let Some(worst) = drifts.iter().map(TrustDrift::risk).max() else {
        return;
    };
    // The pack's or config's severity wins; otherwise the finding is as severe as what is
    // at stake.
    let severity = pack
        .iam_rules
        .trust_policy_drift
        .as_ref()
        .and_then(|s| s.severity)
        .unwrap_or(match worst {
            TrustRisk::Opened => Severity::Critical,
            TrustRisk::Looser => Severity::High,
            TrustRisk::LockedOut => Severity::Medium,
            TrustRisk::Stricter => Severity::Low,
            TrustRisk::Note => Severity::Info,
        });
    let messages: Vec<String> = drifts
        .iter()
        .map(|d| format!("{} ({})", d.message(), d.risk().as_str()))
        .collect();
    let detail: Vec<Value> = drifts
        .iter()
        .map(|d| json!({ "drift": d, "risk": d.risk(), "message": d.message() }))
        .collect();
    sink.report_with_severity(
        severity,
        &arn,
        format!(
            "Role {name}'s trust policy differs from {source}: {}",
            messages.join("; ")
        ),
        trust_remediation(expectation, expected, name, &source),
        json!({ "source": source, "drift": detail, "risk": worst }),
    );
}

/// The role's trust drifts against the expected trust policy: `None` when none is
/// expected, `Err` when the role's own cannot be read.
fn trust_drifts(
    expectation: &RoleExpectation,
    expected: &ExpectedRole,
    role: &IamRole,
    actual_trust: &Result<PolicyDocument, String>,
) -> Option<Result<Vec<TrustDrift>, String>> {
    let expected_trust = expected.trust_policy.as_ref()?;
    let actual_trust = match actual_trust {
        Ok(doc) => doc,
        Err(why) => return Some(Err(why.clone())),
    };
    let mut options = TrustOptions {
        partition: partition_of_arn(&role.arn).to_string(),
        ..TrustOptions::default()
    };
    if expected
        .unknown_parameters
        .iter()
        .any(|p| p.eq_ignore_ascii_case("ExternalId"))
    {
        options = options.with_unknown_external_id();
    }
    options.optional_condition_keys = expectation
        .optional_trust_conditions
        .iter()
        .map(|k| ConditionKey::new(k.as_str()))
        .collect();
    Some(Ok(compare_trust(expected_trust, actual_trust, &options)))
}

/// The partition in an ARN (`arn:aws-cn:...`), `aws` when it has none.
fn partition_of_arn(arn: &str) -> &str {
    arn.strip_prefix("arn:")
        .and_then(|rest| rest.split(':').next())
        .filter(|p| !p.is_empty())
        .unwrap_or("aws")
}

/// The command that restores the expected trust policy, with the expected document itself.
/// Parameters read from the environment (the ExternalId) are written as a reference to
/// that variable, expanded by the shell, so the secret never appears in a report.
fn trust_remediation(
    expectation: &RoleExpectation,
    expected: &ExpectedRole,
    name: &str,
    source: &str,
) -> String {
    let Some(trust) = &expected.trust_policy else {
        return String::new();
    };
    let mut json = to_iam_json(trust);
    // A template may leave Version out; IAM then reads the 2008 language, and some IAM
    // front ends refuse the document. The fix always says 2012-10-17.
    if let Some(doc) = json.as_object_mut() {
        if !doc.contains_key("Version") {
            let mut with_version = serde_json::Map::new();
            with_version.insert("Version".into(), json!("2012-10-17"));
            with_version.extend(std::mem::take(doc));
            *doc = with_version;
        }
    }
    // The shell variable each secret value is read from: the environment variable the pack
    // names for its parameter, else one named after the parameter.
    let variable_for = |value: &str| -> String {
        let parameter = expectation
            .sources
            .parameters
            .iter()
            .find(|(_, v)| v.as_str() == value)
            .map(|(p, _)| p.clone())
            .or_else(|| {
                expectation
                    .sources
                    .unknown_parameters
                    .iter()
                    .find(|p| unknown_value(p) == value)
                    .cloned()
            })
            .unwrap_or_else(|| "ExternalId".to_string());
        expectation
            .parameters_from_env
            .get(&parameter)
            .cloned()
            .unwrap_or(parameter)
    };
    let mut variables: Vec<String> = Vec::new();
    const MARK: &str = "\u{1}vpc-auditor-variable\u{1}";
    if let Some(statements) = json.get_mut("Statement").and_then(Value::as_array_mut) {
        for statement in statements {
            let Some(condition) = statement
                .get_mut("Condition")
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            for keys in condition.values_mut().filter_map(Value::as_object_mut) {
                for (key, values) in keys.iter_mut() {
                    if !key.eq_ignore_ascii_case("sts:ExternalId") {
                        continue;
                    }
                    let list: Vec<Value> = match &*values {
                        Value::Array(list) => list.clone(),
                        other => vec![other.clone()],
                    };
                    let replaced: Vec<Value> = list
                        .iter()
                        .map(|v| {
                            let variable = variable_for(v.as_str().unwrap_or_default());
                            if !variables.contains(&variable) {
                                variables.push(variable.clone());
                            }
                            json!(format!("{MARK}{variable}{MARK}"))
                        })
                        .collect();
                    *values = Value::Array(replaced);
                }
            }
        }
    }
    // Inside single quotes, a quote is written '\''; each secret becomes "'"$VARIABLE"'".
    let mut document = json.to_string().replace('\'', r"'\''");
    for variable in &variables {
        let escaped = Value::String(format!("{MARK}{variable}{MARK}")).to_string();
        document = document.replace(&escaped, &format!("\"'\"${variable}\"'\""));
    }
    let variables: Vec<String> = variables.iter().map(|v| format!("${v}")).collect();
    let with = if variables.is_empty() {
        String::new()
    } else {
        format!(" (with {} set in the environment)", variables.join(", "))
    };
    format!(
        "Restore the trust policy of {source}{with}:\naws iam update-assume-role-policy --role-name {name} \
         --policy-document '{document}'"
    )
}

fn describe(grant: &Grant) -> String {
    format!("{} on {}", grant.action, grant.resource)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iam::excess;
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

    /// The policy document of the remediation line starting with `command`, unquoted.
    fn policy_document_of(remediation: &str, command: &str) -> String {
        let line = remediation
            .lines()
            .find(|l| l.starts_with(command))
            .unwrap_or_else(|| panic!("no {command} in {remediation}"));
        let quoted = line
            .split_once("--policy-document '")
            .unwrap_or_else(|| panic!("no document in {line}"))
            .1;
        quoted
            .strip_suffix('\'')
            .expect("quoted to the end")
            .replace(r"'\''", "'")
    }

    /// `widened` is a valid policy within the managed-policy limit that keeps the first
    /// `kept` statements of the boundary and allows `action` after them.
    fn assert_boundary_widened(widened: &str, kept: usize, action: &str) {
        assert!(remediation::iam_size(widened) <= remediation::MANAGED_LIMIT);
        let doc = PolicyDocument::parse(widened).unwrap_or_else(|e| panic!("{e}: {widened}"));
        assert_eq!(doc.version.as_deref(), Some("2012-10-17"));
        let value: Value = serde_json::from_str(widened).unwrap();
        let statements = value["Statement"].as_array().unwrap();
        assert_eq!(statements.len(), kept + 1, "{widened}");
        assert_eq!(
            statements[0]["Action"],
            json!(["ec2:Describe*", "s3:*"]),
            "the old statement is kept as it was: {widened}"
        );
        assert_eq!(statements[kept]["Effect"], "Allow");
        assert_eq!(statements[kept]["Action"], json!([action]), "{widened}");
    }

    #[test]
    fn a_boundary_that_cannot_take_a_version_is_replaced_or_removed() {
        let fixed = POLICY.replace("${AWS::AccountId}", ACCOUNT);
        let cap = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ec2:Describe*","s3:*"],"Resource":"*"}]}"#;
        let mut bounded = role("vendor-role", &[&fixed], TRUST);
        // AWS-managed: no new version; a customer-managed copy, widened, becomes the boundary.
        bounded.permissions_boundary = Some(crate::snapshot::IamBoundary {
            arn: "arn:aws:iam::aws:policy/PowerUserAccess".into(),
            document: Some(cap.into()),
        });
        let eval = run(
            &pack(vec![expectation(POLICY, None)]),
            &account(vec![bounded.clone()]),
        );
        let f = &eval.findings[0];
        assert!(
            !f.remediation.contains("create-policy-version"),
            "{}",
            f.remediation
        );
        let widened = policy_document_of(
            &f.remediation,
            "aws iam create-policy --policy-name vpc-auditor-boundary-vendor-role",
        );
        assert_boundary_widened(&widened, 1, "ec2:createtags");
        assert!(
            f.remediation.contains(&format!(
                "aws iam put-role-permissions-boundary --role-name vendor-role --permissions-boundary \
                 arn:aws:iam::{ACCOUNT}:policy/vpc-auditor-boundary-vendor-role"
            )),
            "{}",
            f.remediation
        );
        // Too long to widen within 6,144 characters: say so, and remove the boundary.
        let filler: Vec<String> = (0..194)
            .map(|n| format!("\"s3:GetSomethingQuiteLong{n:04}\""))
            .collect();
        let long = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":["ec2:Describe*","s3:*",{}],"Resource":"*"}}]}}"#,
            filler.join(",")
        );
        assert!(remediation::iam_size(&long) <= remediation::MANAGED_LIMIT);
        bounded.permissions_boundary = Some(crate::snapshot::IamBoundary {
            arn: format!("arn:aws:iam::{ACCOUNT}:policy/DevCap"),
            document: Some(long),
        });
        let eval = run(
            &pack(vec![expectation(POLICY, None)]),
            &account(vec![bounded]),
        );
        let f = &eval.findings[0];
        assert!(
            !f.remediation.contains("create-policy-version --"),
            "{}",
            f.remediation
        );
        assert!(
            f.remediation
                .contains("more than a managed policy may hold (6144)"),
            "{}",
            f.remediation
        );
        assert!(
            f.remediation
                .lines()
                .last()
                .unwrap()
                .starts_with("aws iam delete-role-permissions-boundary --role-name vendor-role"),
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
        // The fix widens the boundary: its document, with an Allow for the missing action.
        let widened = policy_document_of(&f.remediation, "aws iam create-policy-version");
        assert!(f.remediation.contains(&format!(
            "aws iam create-policy-version --policy-arn arn:aws:iam::{ACCOUNT}:policy/DevCap --set-as-default"
        )));
        assert!(f.remediation.contains("at most 5 versions"));
        assert_boundary_widened(&widened, 1, "ec2:createtags");
        // Applied, the widened boundary closes the gap.
        let mut fixed_role = bounded.clone();
        fixed_role.permissions_boundary.as_mut().unwrap().document = Some(widened);
        let eval = run(
            &pack(vec![expectation(POLICY, None)]),
            &account(vec![fixed_role]),
        );
        assert_eq!(rules_fired(&eval), Vec::<&str>::new());
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

    fn two_regions(mut snapshot: Snapshot, regions: &[&str]) -> Snapshot {
        snapshot.regions = regions
            .iter()
            .map(|r| crate::snapshot::RegionSnapshot {
                account_id: ACCOUNT.into(),
                region: r.to_string(),
                ..Default::default()
            })
            .collect();
        snapshot
    }

    const REGIONAL: &str = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":"logs:CreateLogGroup","Resource":"arn:aws:logs:${AWS::Region}:${AWS::AccountId}:log-group:vendor-*"}]}"#;

    #[test]
    fn a_role_built_in_the_second_scanned_region_has_no_finding() {
        let built = REGIONAL
            .replace("${AWS::Region}", "us-west-2")
            .replace("${AWS::AccountId}", ACCOUNT);
        let pack = pack(vec![expectation(REGIONAL, None)]);
        // eu-west-1 sorts first and is scanned first: neither may decide.
        for order in [["eu-west-1", "us-west-2"], ["us-west-2", "eu-west-1"]] {
            let snapshot =
                two_regions(account(vec![role("vendor-role", &[&built], TRUST)]), &order);
            let eval = run(&pack, &snapshot);
            assert!(eval.findings.is_empty(), "{order:?}: {:#?}", eval.findings);
        }
        // A drift is judged against us-west-2, and the details say so and why.
        let drifted = format!(
            r#"{{"Statement":[{},{{"Effect":"Allow","Action":"iam:*","Resource":"*"}}]}}"#,
            &built[built.find('{').unwrap() + 1..]
                .split_once("\"Statement\":[")
                .unwrap()
                .1
                .trim_end()
                .trim_end_matches('}')
                .trim_end()
                .trim_end_matches(']')
        );
        let snapshot = two_regions(
            account(vec![role("vendor-role", &[&drifted], TRUST)]),
            &["eu-west-1", "us-west-2"],
        );
        let eval = run(&pack, &snapshot);
        assert_eq!(rules_fired(&eval), ["iam.policy_excess_permissions"]);
        let details = &eval.findings[0].details;
        assert_eq!(details["region"], "us-west-2");
        let why = details["chosen_because"].as_str().unwrap();
        assert!(
            why.contains("fits the role best") && why.contains("eu-west-1"),
            "{why}"
        );
    }

    #[test]
    fn an_explicit_region_wins_over_the_best_fit() {
        let built = REGIONAL
            .replace("${AWS::Region}", "us-west-2")
            .replace("${AWS::AccountId}", ACCOUNT);
        let mut e = expectation(REGIONAL, None);
        e.region = Some(crate::config::RegionName("eu-west-1".into()));
        let snapshot = two_regions(
            account(vec![role("vendor-role", &[&built], TRUST)]),
            &["eu-west-1", "us-west-2"],
        );
        let eval = run(&pack(vec![e]), &snapshot);
        assert!(rules_fired(&eval).contains(&"iam.policy_missing_permissions"));
        assert_eq!(eval.findings[0].details["region"], "eu-west-1");
    }

    #[test]
    fn partition_follows_the_region() {
        assert_eq!(partition_of("cn-north-1"), "aws-cn");
        assert_eq!(partition_of("us-gov-west-1"), "aws-us-gov");
        assert_eq!(partition_of("eu-west-1"), "aws");
        let e = expectation(
            r#"{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:${AWS::Partition}:s3:::b/*"}]}"#,
            None,
        );
        let expected = resolve_expected(&e, ACCOUNT, "cn-northwest-1").unwrap();
        let text = serde_json::to_string(&expected.policies).unwrap();
        assert!(text.contains("arn:aws-cn:s3:::b/*"), "{text}");
    }

    #[test]
    fn exact_names_match_case_insensitively_and_globs_once_per_role() {
        let roles = vec![
            role("Vendor-Role", &[], TRUST),
            role("vendor-role-2", &[], TRUST),
            role("other", &[], TRUST),
        ];
        let index = RoleIndex::new(&roles);
        let names = |m: NameMatcher| -> Vec<String> {
            m.matching(&index).iter().map(|r| r.name.clone()).collect()
        };
        assert_eq!(names(NameMatcher::new("vendor-role")), ["Vendor-Role"]);
        assert_eq!(
            names(NameMatcher::new("vendor-*")),
            ["Vendor-Role", "vendor-role-2"]
        );
        assert!(names(NameMatcher::new("nothing")).is_empty());
    }

    /// The shipped union-byoc pack, read from disk, with the ExternalId given.
    fn union_pack(external_id: Option<&str>) -> RulePack {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/union-byoc.yaml");
        let text = std::fs::read_to_string(&path).unwrap();
        let mut pack = RulePack::parse(&path, &text).unwrap();
        let value = external_id.map(str::to_string);
        pack.load_sources(&path, &crate::rules::pack::read_from_disk, &|_| {
            value.clone()
        })
        .unwrap();
        pack.vpc_rules = Default::default();
        pack
    }

    /// A role built by following the guide's manual steps in `region`.
    fn manual_role(region: &str, trust: &str) -> IamRole {
        let policy = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("rules/vendor/union-iam-policy.manual.json"),
        )
        .unwrap()
        .replace("${AWS::Region}", region)
        .replace("${AWS::AccountID}", ACCOUNT);
        IamRole {
            inline_policies: vec![IamPolicy {
                name: "UnionIAMPolicyManual".into(),
                document: policy,
            }],
            ..role("union-ai-admin", &[], trust)
        }
    }

    const MANUAL_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
        "Principal":{"AWS":"arn:aws:iam::479331373192:root"},"Action":"sts:AssumeRole","Condition":{}}]}"#;

    #[test]
    fn the_guides_manual_role_passes_as_the_manual_form() {
        for secret in [None, Some("s3cret-value")] {
            let pack = union_pack(secret);
            let snapshot = two_regions(
                account(vec![manual_role("us-west-2", MANUAL_TRUST)]),
                &["eu-west-1", "us-west-2"],
            );
            let eval = run(&pack, &snapshot);
            assert!(eval.findings.is_empty(), "{secret:?}: {:#?}", eval.findings);
        }
    }

    #[test]
    fn a_manual_role_with_an_external_id_that_no_longer_matches_is_critical() {
        let pack = union_pack(Some("s3cret-value"));
        let with_id = MANUAL_TRUST.replace(
            r#""Condition":{}"#,
            r#""Condition":{"StringEquals":{"sts:ExternalId":"old-value"}}"#,
        );
        let eval = run(&pack, &account(vec![manual_role("us-east-1", &with_id)]));
        assert_eq!(rules_fired(&eval), ["iam.trust_policy_drift"]);
        let f = &eval.findings[0];
        assert_eq!(f.severity, Severity::Critical);
        assert!(
            f.details["expected_form"]
                .as_str()
                .unwrap()
                .contains("manual"),
            "{}",
            f.details
        );
        // The fix writes the expected document, the secret as the pack's variable.
        assert!(
            f.remediation.contains(r#""'"$UNION_EXTERNAL_ID"'""#),
            "{}",
            f.remediation
        );
        assert!(f.remediation.contains("479331373192"), "{}", f.remediation);
        let shown = serde_json::to_string(&eval).unwrap();
        assert!(
            !shown.contains("s3cret-value") && !shown.contains("old-value"),
            "{shown}"
        );
    }

    #[test]
    fn trust_severity_follows_what_is_at_stake() {
        let pack = pack(vec![with_secret(
            expectation(POLICY, Some(TRUST)),
            Some("s3cret-value"),
        )]);
        let fixed = POLICY.replace("${AWS::AccountId}", ACCOUNT);
        let severity = |trust: &str| {
            let eval = run(&pack, &account(vec![role("vendor-role", &[&fixed], trust)]));
            assert_eq!(rules_fired(&eval), ["iam.trust_policy_drift"], "{trust}");
            eval.findings[0].severity
        };
        let no_id = r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"999988887777"},"Action":"sts:AssumeRole"}]}"#;
        assert_eq!(severity(no_id), Severity::High);
        let narrowed = ACTUAL_TRUST.replace(
            r#""Condition":{"#,
            r#""Condition":{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"},"#,
        );
        assert_eq!(severity(&narrowed), Severity::Low);
        let denied = ACTUAL_TRUST.replace(
            "}]}",
            r#"},{"Effect":"Deny","Principal":{"AWS":"444455556666"},"Action":"sts:AssumeRole"}]}"#,
        );
        assert_eq!(severity(&denied), Severity::Low);
        let opened =
            ACTUAL_TRUST.replace(r#""999988887777""#, r#"["999988887777","444455556666"]"#);
        assert_eq!(severity(&opened), Severity::Critical);
    }

    #[test]
    fn a_template_role_without_role_name_is_found_under_the_name_cloudformation_generates() {
        let template = r#"
Parameters:
  Env: {Type: String, Default: prod}
Conditions:
  IsProd: !Equals [!Ref Env, prod]
  NotProd: !Not [!Condition IsProd]
Resources:
  VendorRole:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Statement: {Effect: Allow, Principal: {AWS: '999988887777'}, Action: sts:AssumeRole}
      Policies:
        - PolicyName: p
          PolicyDocument:
            Statement:
              - Effect: Allow
                Action: s3:GetObject
                Resource: !If [IsProd, !Sub 'arn:${AWS::Partition}:s3:::prod/*', !Sub 'arn:${AWS::Partition}:s3:::dev/*']
                Condition: !If [IsProd, !Ref AWS::NoValue, {Bool: {aws:SecureTransport: 'true'}}]
  DevOnlyRole:
    Type: AWS::IAM::Role
    Condition: NotProd
    Properties:
      AssumeRolePolicyDocument:
        Statement: {Effect: Allow, Principal: {AWS: '999988887777'}, Action: sts:AssumeRole}
"#;
        let e = RoleExpectation {
            template_role: Some("VendorRole".into()),
            sources: ExpectationSources {
                template: Some(SourceFile {
                    path: "t.yaml".into(),
                    text: template.into(),
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let expected = resolve_expected(&e, ACCOUNT, "cn-north-1").unwrap();
        assert!(expected.generated_name);
        let text = serde_json::to_string(&expected.policies).unwrap();
        assert!(text.contains("arn:aws-cn:s3:::prod/*"), "{text}");
        let policy = r#"{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::prod/*"}]}"#;
        let trust = r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"999988887777"},"Action":"sts:AssumeRole"}]}"#;
        let long_stack = format!("long-stack-{}", "x".repeat(32));
        let truncated = format!("{long_stack}-VendorR-ABCDEF123456");
        assert_eq!(truncated.len(), 64);
        let snapshot = account(vec![
            role("MyStack-VendorRole-1A2B3C4D5E6F", &[policy], trust),
            role(&truncated, &[policy], trust),
            role("VendorRole", &[policy], trust),
            role("MyStack-VendorRole-lowercase12", &[policy], trust),
            role("MyStack-OtherRole-1A2B3C4D5E6F", &[], trust),
        ]);
        let eval = run(&pack(vec![e.clone()]), &snapshot);
        assert!(eval.findings.is_empty(), "{:#?}", eval.findings);
        assert_eq!(
            eval.evaluated.get("iam.policy_missing_permissions"),
            Some(&2)
        );
        // The disabled DevOnlyRole is not in the template at all.
        let mut dev = e;
        dev.template_role = Some("DevOnlyRole".into());
        let err = resolve_expected(&dev, ACCOUNT, "us-east-1").unwrap_err();
        assert!(err.message.contains("no AWS::IAM::Role"), "{err}");
        dev.sources.parameters.insert("Env".into(), "dev".into());
        let expected = resolve_expected(&dev, ACCOUNT, "us-east-1").unwrap();
        assert!(expected.generated_name);
        let missing = run(&pack(vec![dev]), &account(vec![]));
        assert_eq!(rules_fired(&missing), ["iam.role_missing"]);
        assert!(missing.findings[0].message.contains("*-DevOnlyRole-*"));
    }
}
