//! Findings and severities: what evaluation produces and every exporter consumes.
//!
//! Part of the model, with [`crate::snapshot`]: it imports nothing above it. The marks that
//! later steps put on a finding ([`BaselineStatus`] from `export::baseline`, [`SuppressedBy`]
//! from `suppress`) are plain data here; the code that decides them lives with those steps.

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How a current finding compares with the baseline (set by `export::baseline::apply`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BaselineStatus {
    /// Not in the baseline.
    New,
    /// In the baseline too.
    Unchanged,
}

/// What a suppressed finding carries in the report (set by `suppress::apply`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuppressedBy {
    pub reason: String,
    pub expires: NaiveDate,
}

/// How much a finding matters, from `info` to `critical`. Ordered, so `--fail-on high`
/// can compare.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|sev| sev.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!("expected one of info, low, medium, high, critical, found {s:?}")
            })
    }
}

/// The kind of resource a finding is about; a closed set, so it is safe as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceType {
    Vpc,
    Subnet,
    NatGateway,
    VpcEndpoint,
    IamRole,
    /// An ECR repository (its ARN), for `ecr.cross_account_pull`.
    EcrRepository,
    /// A Secrets Manager resource a policy grants (an ARN, possibly with wildcards).
    Secret,
    /// A suppression in the config, for `suppression.expired`.
    Suppression,
}

impl ResourceType {
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceType::Vpc => "vpc",
            ResourceType::Subnet => "subnet",
            ResourceType::NatGateway => "nat_gateway",
            ResourceType::VpcEndpoint => "vpc_endpoint",
            ResourceType::IamRole => "iam_role",
            ResourceType::EcrRepository => "ecr_repository",
            ResourceType::Secret => "secret",
            ResourceType::Suppression => "suppression",
        }
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One failed check on one resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub rule_id: String,
    pub severity: Severity,
    /// The rule pack whose requirement this is, e.g. `union-byoc`.
    pub pack: String,
    pub account_id: String,
    pub region: String,
    pub resource_type: ResourceType,
    pub resource_id: String,
    #[serde(default)]
    pub vpc_id: Option<String>,
    pub message: String,
    pub remediation: String,
    /// Structured evidence: the AZs lacking coverage, the missing services, and so on.
    #[serde(default)]
    pub details: serde_json::Value,
    /// `new` or `unchanged` against `--baseline`; absent when no baseline was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineStatus>,
    /// The suppression covering this finding: it is reported but does not count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<SuppressedBy>,
}

impl Finding {
    /// A stable sort key, so reports and golden files do not depend on collection order.
    pub fn sort_key(&self) -> (&str, &str, &str, &str, &str, &str) {
        (
            &self.account_id,
            &self.region,
            self.vpc_id.as_deref().unwrap_or(""),
            &self.rule_id,
            &self.resource_id,
            &self.pack,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_order_from_info_to_critical() {
        assert!(Severity::Info < Severity::Low);
        assert!(Severity::High < Severity::Critical);
        assert_eq!("HIGH".parse::<Severity>(), Ok(Severity::High));
        assert!("severe".parse::<Severity>().is_err());
    }
}
