//! Reading the expected IAM roles out of a vendor's CloudFormation template.
//!
//! Vendors ship their cross-account role as a CloudFormation template. This
//! module owns turning that template (YAML, or JSON, which is YAML) into
//! [`TemplateRole`]s: each `AWS::IAM::Role` with its resolved name, its trust
//! policy, and every policy that would be attached to it (its own `Policies`,
//! `AWS::IAM::Policy` and `AWS::IAM::RolePolicy` resources naming it, and
//! `AWS::IAM::ManagedPolicy` resources naming it in `Roles` or referenced from
//! its `ManagedPolicyArns`).
//!
//! It resolves what such templates use: `!Sub` (string or `[template, {vars}]`
//! form), `!Ref`, `!GetAtt` (`X.Arn` or `[X, Arn]`), `!Join`, their long
//! forms (`{"Fn::Sub": ...}`, `{"Ref": ...}`, ...), the pseudo parameters
//! `AWS::Region`, `AWS::AccountId` (also spelled `AWS::AccountID`, as vendor
//! docs do), `AWS::Partition`, `AWS::URLSuffix` and `AWS::NoValue`, and
//! template parameters. A parameter's value comes from
//! [`TemplateContext::parameters`], else from
//! [`TemplateContext::unknown_parameters`] (it becomes the placeholder of
//! [`crate::iam::policy::unknown_value`], which the trust check reads as "any
//! value"), else from its `Default`; otherwise reading fails and names it.
//!
//! `Conditions` are evaluated with the given parameters (`Fn::Equals`,
//! `Fn::And`, `Fn::Or`, `Fn::Not` and `Condition`); a resource whose
//! `Condition` is false is not created, so its role is not expected and its
//! policies attach to nothing; `Fn::If` picks its branch, and a branch of
//! `AWS::NoValue` drops the field. A condition that depends on a parameter
//! whose value is unknown is an error naming it.
//!
//! A role without `RoleName` gets a name CloudFormation generates,
//! `{stack}-{logical id}-{suffix}`; [`TemplateRole::generated_name`] says so,
//! and the caller matches it by pattern (see
//! [`crate::rules::iam::NameMatcher`]). `AWS::Partition` comes from
//! [`TemplateContext::partition`], which the caller takes from the region.
//!
//! Deliberate approximations, none of which matter for IAM roles:
//! - `!Ref` to a role gives its `RoleName` (or, without one, its logical id,
//!   where CloudFormation would generate a name); to a managed policy, its
//!   ARN; to anything else, its logical id.
//! - Other intrinsic functions (`!Select`, `!FindInMap`, ...) are recognised
//!   and refused with an error if they appear in what must be resolved; tags
//!   that are no CloudFormation function anywhere in the template are errors.
//!
//! Errors carry the field path (`Resources.X.Properties.PolicyDocument
//! .Statement[2].Resource`) and, where it can be found, a line: YAML syntax
//! errors have an exact position; other errors point at the first line that
//! mentions the offending name, tag or field.

//!
//! The module is split along its seams: `error` (what can go wrong, with a
//! place), `reader` (the template's shape: parameters, conditions, resources,
//! which roles exist and what attaches to them) and `resolve` (intrinsic
//! functions, references and conditions, resolved against the context).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_yaml_ng::Value as Yaml;

use super::policy::PolicyDocument;

mod error;
mod reader;
mod resolve;

pub use error::{TemplateError, TemplateErrorKind};

/// What the template's pseudo parameters and parameters resolve to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateContext {
    /// `AWS::Region`.
    pub region: String,
    /// `AWS::AccountId` (and `AWS::AccountID`).
    pub account_id: String,
    /// `AWS::Partition`, usually `aws`.
    pub partition: String,
    /// Values for template parameters; these win over `Default`s.
    pub parameters: BTreeMap<String, String>,
    /// Parameters whose value is deliberately unknown, such as an ExternalId
    /// secret that is not configured. They resolve to a placeholder (see
    /// [`crate::iam::policy::unknown_value`]) instead of failing.
    pub unknown_parameters: BTreeSet<String>,
}

impl TemplateContext {
    /// A context for an account and region in the `aws` partition.
    pub fn new(region: impl Into<String>, account_id: impl Into<String>) -> Self {
        TemplateContext {
            region: region.into(),
            account_id: account_id.into(),
            partition: "aws".to_string(),
            ..TemplateContext::default()
        }
    }

    /// Sets a parameter's value.
    #[cfg(test)]
    pub fn with_parameter(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.parameters.insert(name.into(), value.into());
        self
    }

    /// Marks a parameter as unknown (see [`TemplateContext::unknown_parameters`]).
    #[cfg(test)]
    pub fn with_unknown_parameter(mut self, name: impl Into<String>) -> Self {
        self.unknown_parameters.insert(name.into());
        self
    }
}

/// What the template says, as far as IAM roles go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Template {
    /// `AWSTemplateFormatVersion`, if present.
    pub format_version: Option<String>,
    /// The template's `Description`, if present; vendors often put their
    /// release version there.
    pub description: Option<String>,
    /// Every `AWS::IAM::Role`, in template order.
    pub roles: Vec<TemplateRole>,
}

impl Template {
    /// The role with this resolved name, if the template defines one.
    #[cfg(test)]
    pub fn role(&self, role_name: &str) -> Option<&TemplateRole> {
        self.roles.iter().find(|r| r.role_name == role_name)
    }
}

/// One role the template would create, with everything attached to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TemplateRole {
    /// The resource's logical id.
    pub logical_id: String,
    /// The resolved `RoleName`, or the logical id when there is none.
    pub role_name: String,
    /// True when the role has no `RoleName`: CloudFormation names it
    /// `{stack}-{logical id}-{suffix}`, so `role_name` is only its logical id.
    pub generated_name: bool,
    /// The role's ARN in the context's partition and account.
    pub arn: String,
    /// `AssumeRolePolicyDocument`.
    pub trust_policy: PolicyDocument,
    /// Every policy the template attaches to the role.
    pub policies: Vec<NamedPolicy>,
    /// `ManagedPolicyArns` entries that are not managed policies of this
    /// template (e.g. AWS managed policies), whose documents are not known.
    pub external_managed_policy_arns: Vec<String>,
}

/// A policy document with the name the template gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NamedPolicy {
    /// `PolicyName` or `ManagedPolicyName`, else the logical id.
    pub name: String,
    /// Where in the template the policy comes from.
    pub source: PolicySource,
    /// The resolved document.
    pub document: PolicyDocument,
}

/// Where a role's policy is defined in the template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum PolicySource {
    /// An entry of the role's own `Policies` property.
    Inline,
    /// An `AWS::IAM::Policy` resource.
    Policy {
        /// Its logical id.
        logical_id: String,
    },
    /// An `AWS::IAM::RolePolicy` resource.
    RolePolicy {
        /// Its logical id.
        logical_id: String,
    },
    /// An `AWS::IAM::ManagedPolicy` resource.
    ManagedPolicy {
        /// Its logical id.
        logical_id: String,
    },
}

/// Every CloudFormation function name (short tag form, without `!`). Tags
/// outside this list are errors wherever they appear.
pub(crate) const KNOWN_FUNCTIONS: &[&str] = &[
    "Ref",
    "Sub",
    "GetAtt",
    "Join",
    "Select",
    "Split",
    "If",
    "Equals",
    "And",
    "Or",
    "Not",
    "FindInMap",
    "ImportValue",
    "GetAZs",
    "Base64",
    "Cidr",
    "Condition",
    "Transform",
    "ToJsonString",
    "Length",
    "ForEach",
];

/// How deep `!Ref`/`!GetAtt` may chain through resources before the reader
/// gives up; keeps hostile templates from exhausting the stack.
pub(crate) const MAX_REFERENCE_DEPTH: usize = 32;

/// Reads every IAM role, with its trust policy and attached policies, out of
/// a CloudFormation template.
pub fn read_template(text: &str, context: &TemplateContext) -> Result<Template, TemplateError> {
    let root: Yaml = serde_yaml_ng::from_str(text).map_err(|err| error::syntax_error(&err))?;
    let reader = reader::Reader { text };
    reader.read(&root, context)
}

#[cfg(test)]
mod tests;
