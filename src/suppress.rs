//! Suppressions with expiry: accepted risks, each naming a rule, a resource glob, a reason
//! and a date after which it stops suppressing.
//!
//! A suppressed finding is still reported, marked with its reason and expiry, but it no
//! longer counts toward the exit code or the severity counts. An expired suppression raises
//! an `info` finding of its own, so nobody's accepted risk lapses silently; one that matches
//! nothing is reported as stale. [`apply`] is pure: today's date is a parameter, and only
//! the scan code reads the clock.
//!
//! Layer: an evaluate-side step beside `rules`, run by `scan` after evaluation. It owns the
//! suppression types (which `config` reads from the config's `suppressions:` and from
//! suppressions files) and [`apply`]. What it puts on a finding, [`SuppressedBy`], is plain
//! data in the model (`finding`). It imports the model, `values` and `rules`, never
//! `config`.

use std::path::Path;

use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use crate::finding::SuppressedBy;
use crate::finding::{Finding, ResourceType};
use crate::input::{self, InputError, ValidatedStr};
use crate::rules::catalogue::{self, SUPPRESSION_EXPIRED};
use crate::rules::Evaluation;
use crate::values::RegionName;

/// A rule id from the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleRef(pub String);

impl TryFrom<String> for RuleRef {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        match catalogue::rule_info(&value) {
            Some(_) => Ok(RuleRef(value)),
            None => Err(format!(
                "unknown rule {value:?}; `vpc-auditor --list-rules` lists them"
            )),
        }
    }
}

/// A pattern on resource ids: `*` matches any run of characters, `?` any one character.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceGlob(pub String);

impl TryFrom<String> for ResourceGlob {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        if value.trim().is_empty() {
            Err("expected a resource id or a glob such as vpc-0b22*, found an empty string".into())
        } else {
            Ok(ResourceGlob(value))
        }
    }
}

impl ResourceGlob {
    /// Whether `text` matches the whole pattern.
    pub fn matches(&self, text: &str) -> bool {
        glob_match(self.0.as_bytes(), text.as_bytes())
    }
}

/// Matches with backtracking to the last `*` only, so it is linear in practice and never
/// exponential.
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == b'*')
}

/// Why a risk was accepted; never empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reason(pub String);

impl TryFrom<String> for Reason {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        if value.trim().is_empty() {
            Err("a suppression needs a reason, found an empty string".into())
        } else {
            Ok(Reason(value.trim().to_string()))
        }
    }
}

/// The last day a suppression applies, `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Expiry(pub NaiveDate);

impl TryFrom<String> for Expiry {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        let trimmed = value.trim();
        match NaiveDate::parse_from_str(trimmed, "%Y-%m-%d") {
            Ok(date) if trimmed.len() == 10 => Ok(Expiry(date)),
            _ => Err(format!(
                "expected a date such as 2026-12-31 (YYYY-MM-DD), found {value:?}"
            )),
        }
    }
}

/// A 12-digit AWS account id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountId(pub String);

impl TryFrom<String> for AccountId {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        if value.len() == 12 && value.chars().all(|c| c.is_ascii_digit()) {
            Ok(AccountId(value))
        } else {
            Err(format!(
                "expected a 12-digit AWS account id, found {value:?}"
            ))
        }
    }
}

macro_rules! validated_str {
    ($($t:ty),*) => {$(
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_str(ValidatedStr(std::marker::PhantomData))
            }
        }
    )*};
}
validated_str!(RuleRef, ResourceGlob, Reason, Expiry, AccountId);

/// Declares the JSON Schema of each validated string: a string with `$extra` constraints.
macro_rules! string_schema {
    ($($t:ident as $name:literal => $extra:tt),* $(,)?) => {$(
        impl JsonSchema for $t {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                $name.into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                let mut schema = schemars::json_schema!($extra);
                schema.insert("type".into(), "string".into());
                schema
            }
        }
    )*};
}
string_schema! {
    ResourceGlob as "ResourceGlob" => { "description": "A resource id or a glob: `*` matches any run of characters, `?` any one.", "minLength": 1 },
    Reason as "Reason" => { "description": "Why the risk is accepted.", "pattern": "\\S" },
    Expiry as "Expiry" => { "description": "The last day the suppression applies, YYYY-MM-DD.", "format": "date", "pattern": "^\\s*[0-9]{4}-[0-9]{2}-[0-9]{2}\\s*$" },
    AccountId as "SuppressionAccountId" => { "description": "A 12-digit AWS account id.", "pattern": "^[0-9]{12}$" },
}

impl JsonSchema for RuleRef {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "RuleRef".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let ids: Vec<&str> = catalogue::CATALOGUE.iter().map(|r| r.id).collect();
        schemars::json_schema!({
            "description": "A rule id from the catalogue (`vpc-auditor --list-rules`).",
            "type": "string",
            "enum": ids
        })
    }
}

/// One accepted risk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Suppression {
    pub rule: RuleRef,
    pub resource: ResourceGlob,
    /// Only findings in this account; any account when absent.
    #[serde(default)]
    pub account: Option<AccountId>,
    /// Only findings in this region; any region when absent.
    #[serde(default)]
    pub region: Option<RegionName>,
    pub reason: Reason,
    /// The last day it applies; from the day after, it stops suppressing.
    pub expires: Expiry,
}

impl Suppression {
    /// Whether this suppression covers `finding` (dates aside).
    pub fn matches(&self, finding: &Finding) -> bool {
        finding.rule_id == self.rule.0
            && self.resource.matches(&finding.resource_id)
            && self
                .account
                .as_ref()
                .is_none_or(|a| a.0 == finding.account_id)
            && self.region.as_ref().is_none_or(|r| r.0 == finding.region)
    }

    /// A stable id for the suppression itself: `<rule>:<resource glob>`.
    pub fn id(&self) -> String {
        format!("{}:{}", self.rule.0, self.resource.0)
    }
}

/// A suppressions file: `suppressions:` and a list, as in the config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SuppressionsFile {
    pub suppressions: Vec<Suppression>,
}

impl SuppressionsFile {
    pub fn load(path: &Path) -> Result<Vec<Suppression>, InputError> {
        input::read_yaml::<SuppressionsFile>(path).map(|f| f.suppressions)
    }
}

/// The pack name on `suppression.expired` findings, which no rule pack raises.
pub const SUPPRESSIONS_PACK: &str = "suppressions";

/// Applies `suppressions` on `today` to the findings of `evaluation`: marks the findings an
/// active suppression covers, raises a `suppression.expired` finding for each expired one,
/// and notes and counts the active ones that match nothing. Pure.
pub fn apply(evaluation: &mut Evaluation, suppressions: &[Suppression], today: NaiveDate) {
    let mut expired = Vec::new();
    for suppression in suppressions {
        if suppression.expires.0 < today {
            // Also a note: the daemon serves findings per scanned region, and a
            // suppression without an account and region belongs to none.
            evaluation.notes.push(format!(
                "suppression {} expired on {}: it no longer suppresses",
                suppression.id(),
                suppression.expires.0
            ));
            expired.push(expired_finding(suppression, today));
            continue;
        }
        let mut matched = false;
        for finding in evaluation.findings.iter_mut() {
            if suppression.matches(finding) {
                matched = true;
                if finding.suppressed.is_none() {
                    finding.suppressed = Some(SuppressedBy {
                        reason: suppression.reason.0.clone(),
                        expires: suppression.expires.0,
                    });
                }
            }
        }
        if !matched {
            evaluation.stale_suppressions += 1;
            evaluation.notes.push(format!(
                "suppression {} matches no finding (stale): remove it, or check its rule, \
                 resource, account and region",
                suppression.id()
            ));
        }
    }
    if !expired.is_empty() {
        evaluation.findings.extend(expired);
        evaluation
            .findings
            .sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    }
}

fn expired_finding(suppression: &Suppression, today: NaiveDate) -> Finding {
    let info = catalogue::rule_info(SUPPRESSION_EXPIRED).expect("catalogued");
    Finding {
        rule_id: SUPPRESSION_EXPIRED.to_string(),
        severity: info.default_severity,
        pack: SUPPRESSIONS_PACK.to_string(),
        account_id: suppression
            .account
            .as_ref()
            .map(|a| a.0.clone())
            .unwrap_or_default(),
        region: suppression
            .region
            .as_ref()
            .map(|r| r.0.clone())
            .unwrap_or_else(|| crate::rules::iam::GLOBAL_REGION.to_string()),
        resource_type: ResourceType::Suppression,
        resource_id: suppression.id(),
        vpc_id: None,
        message: format!(
            "The suppression of {} on {} expired on {} ({} day(s) ago): its findings count again. Reason given: {}",
            suppression.rule.0,
            suppression.resource.0,
            suppression.expires.0,
            (today - suppression.expires.0).num_days(),
            suppression.reason.0
        ),
        remediation: "Fix the findings it covered, or renew the suppression with a new \
                      `expires` date and an up-to-date reason."
            .to_string(),
        details: serde_json::json!({
            "rule": suppression.rule.0,
            "resource": suppression.resource.0,
            "expires": suppression.expires.0,
        }),
        baseline: None,
        suppressed: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Severity;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn finding(rule: &str, resource: &str, account: &str, region: &str) -> Finding {
        Finding {
            rule_id: rule.into(),
            severity: Severity::High,
            pack: "union-byoc".into(),
            account_id: account.into(),
            region: region.into(),
            resource_type: ResourceType::Vpc,
            resource_id: resource.into(),
            vpc_id: Some(resource.into()),
            message: "m".into(),
            remediation: String::new(),
            details: serde_json::Value::Null,
            baseline: None,
            suppressed: None,
        }
    }

    fn eval() -> Evaluation {
        Evaluation {
            findings: vec![
                finding("vpc.az_count", "vpc-0b22", "111122223333", "us-east-1"),
                finding("vpc.az_count", "vpc-0c33", "111122223333", "eu-west-1"),
                finding("vpc.cidr_size", "vpc-0b22", "444455556666", "us-east-1"),
            ],
            ..Default::default()
        }
    }

    fn parse(text: &str) -> Result<Vec<Suppression>, InputError> {
        input::parse_yaml::<SuppressionsFile>(Path::new("s.yaml"), text).map(|f| f.suppressions)
    }

    fn one(extra: &str) -> Vec<Suppression> {
        parse(&format!(
            "suppressions:\n  - rule: vpc.az_count\n    resource: vpc-0b22\n    reason: accepted\n    expires: 2026-06-30\n{extra}"
        ))
        .unwrap()
    }

    fn suppressed(e: &Evaluation) -> Vec<&str> {
        e.findings
            .iter()
            .filter(|f| f.suppressed.is_some())
            .map(|f| f.resource_id.as_str())
            .collect()
    }

    #[test]
    fn an_active_suppression_marks_its_finding_with_reason_and_expiry() {
        let mut e = eval();
        apply(&mut e, &one(""), day("2026-06-01"));
        assert_eq!(suppressed(&e), ["vpc-0b22"]);
        let by = e.findings[0].suppressed.as_ref().unwrap();
        assert_eq!(by.reason, "accepted");
        assert_eq!(by.expires, day("2026-06-30"));
        assert_eq!(e.findings.len(), 3);
        assert_eq!(e.stale_suppressions, 0);
    }

    #[test]
    fn the_expiry_day_itself_still_suppresses() {
        let mut e = eval();
        apply(&mut e, &one(""), day("2026-06-30"));
        assert_eq!(suppressed(&e), ["vpc-0b22"]);
    }

    #[test]
    fn the_day_after_expiry_stops_suppressing_and_raises_an_info_finding() {
        let mut e = eval();
        apply(&mut e, &one(""), day("2026-07-01"));
        assert!(suppressed(&e).is_empty());
        let expired: Vec<_> = e
            .findings
            .iter()
            .filter(|f| f.rule_id == SUPPRESSION_EXPIRED)
            .collect();
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].severity, Severity::Info);
        assert_eq!(expired[0].resource_type, ResourceType::Suppression);
        assert_eq!(expired[0].resource_id, "vpc.az_count:vpc-0b22");
        assert!(
            expired[0].message.contains("1 day(s) ago"),
            "{}",
            expired[0].message
        );
        assert_eq!(e.stale_suppressions, 0, "expired is not also stale");
    }

    #[test]
    fn a_suppression_matching_nothing_is_noted_and_counted_as_stale() {
        let mut e = eval();
        let s = parse(
            "suppressions:\n  - {rule: nat.same_az, resource: subnet-*, reason: r, expires: 2026-06-30}\n",
        )
        .unwrap();
        apply(&mut e, &s, day("2026-06-01"));
        assert!(suppressed(&e).is_empty());
        assert_eq!(e.stale_suppressions, 1);
        assert!(e.notes[0].contains("nat.same_az:subnet-*"), "{:?}", e.notes);
    }

    #[test]
    fn account_and_region_filters_narrow_a_suppression() {
        let s = parse(
            "suppressions:\n  - {rule: vpc.az_count, resource: '*', region: eu-west-1, reason: r, expires: 2026-06-30}\n  - {rule: vpc.cidr_size, resource: '*', account: '111122223333', reason: r, expires: 2026-06-30}\n",
        )
        .unwrap();
        let mut e = eval();
        apply(&mut e, &s, day("2026-06-01"));
        assert_eq!(suppressed(&e), ["vpc-0c33"]);
        assert_eq!(
            e.stale_suppressions, 1,
            "the cidr_size one is in another account"
        );
    }

    #[test]
    fn globs_match_star_and_question_mark_on_the_whole_resource_id() {
        let g = |p: &str| ResourceGlob(p.into());
        assert!(g("vpc-0b*").matches("vpc-0b22"));
        assert!(g("vpc-0?22").matches("vpc-0b22"));
        assert!(g("*").matches(""));
        assert!(g("*22*").matches("vpc-0b22deadbeef"));
        assert!(!g("vpc-0b").matches("vpc-0b22"), "whole id, not a prefix");
        assert!(!g("vpc-0?2").matches("vpc-0b22"));
        assert!(!g("a*b*c").matches("abca-b"));
        let mut e = eval();
        let s = parse(
            "suppressions:\n  - {rule: vpc.az_count, resource: 'vpc-0?3*', reason: r, expires: 2026-06-30}\n",
        )
        .unwrap();
        apply(&mut e, &s, day("2026-06-01"));
        assert_eq!(suppressed(&e), ["vpc-0c33"]);
    }

    #[test]
    fn bad_suppressions_name_the_line_and_field() {
        let err = |text: &str| parse(text).unwrap_err();
        let e = err("suppressions:\n  - rule: vpc.az_count\n    resource: x\n    reason: r\n    expires: 2026-13-01\n");
        assert_eq!(
            (e.line, e.field.as_str()),
            (Some(5), "suppressions[0].expires"),
            "{e}"
        );
        let e = err("suppressions:\n  - rule: vpc.az_count\n    resource: x\n    reason: '  '\n    expires: 2026-01-01\n");
        assert_eq!(
            (e.line, e.field.as_str()),
            (Some(4), "suppressions[0].reason"),
            "{e}"
        );
        let e = err("suppressions:\n  - rule: vpc.nope\n    resource: x\n    reason: r\n    expires: 2026-01-01\n");
        assert_eq!(
            (e.line, e.field.as_str()),
            (Some(2), "suppressions[0].rule"),
            "{e}"
        );
        let e = err("suppressions:\n  - rule: vpc.az_count\n    resource: x\n    reason: r\n    expires: 2026-01-01\n    owner: me\n");
        assert_eq!(e.line, Some(6), "{e}");
        assert!(e.message.contains("unknown field `owner`"), "{e}");
        let e = err(
            "suppressions:\n  - rule: vpc.az_count\n    resource: x\n    expires: 2026-01-01\n",
        );
        assert!(e.message.contains("missing field `reason`"), "{e}");
        let e = err(
            "suppressions:\n  - {rule: vpc.az_count, resource: x, reason: r, expires: 2026-1-5}\n",
        );
        assert_eq!(e.field, "suppressions[0].expires", "{e}");
    }
}
