//! IAM policy semantics: the pure model behind the `iam.*` rules.
//!
//! This module tree owns everything vpc-auditor knows about IAM documents,
//! and does no I/O and reads no clock:
//!
//! - [`policy`]: parsing and validating policy JSON (and IAM's URL-encoded
//!   form) into one normalised [`PolicyDocument`];
//! - [`pattern`]: `*`/`?` wildcard matching, subsumption and overlap;
//! - [`grants`]: what identity policies grant, compared as sets of grants, so
//!   that reshaping a policy is not drift (`iam.policy_missing_permissions`,
//!   `iam.policy_excess_permissions`);
//! - [`remediation`]: policies that fix a gap within IAM's size limits, and
//!   policies with a blocking Deny statement cut out;
//! - [`trust`]: who a trust policy admits and under what conditions
//!   (`iam.trust_policy_drift`), without ever echoing a secret ExternalId;
//! - [`template`]: reading expected roles and their policies out of a
//!   vendor's CloudFormation template.
//!
//! Typical use: read the expected role with [`read_template`] (or parse a
//! policy file with [`PolicyDocument::parse`]), decode the actual documents
//! from `GetAccountAuthorizationDetails` with
//! [`PolicyDocument::parse_url_encoded`], then compare with [`missing`],
//! [`excess`] and [`compare_trust`].

pub mod grants;
pub mod pattern;
pub mod policy;
pub mod remediation;
pub mod render;
pub mod template;
pub mod trust;

pub use grants::{
    effective_grants, excess, excess_compiled, group_by_resource, missing, missing_with_reasons,
    missing_with_reasons_compiled, CompiledGrants, CompiledUnion, Coverage, DenyRef,
    EffectiveGrants, Grant, GrantGroup, MissingReason, StatementRef, Target,
};
pub use policy::{decode_url_encoded, unknown_value, PolicyDocument, PolicyError};
pub use template::{read_template, TemplateContext};
pub use trust::{compare_trust, TrustOptions};

#[cfg(test)]
pub(crate) mod tests_support {
    //! Where the unit tests find the vendors' published documents, all inside the
    //! repository: the current ones the packs ship (`rules/vendor/`) and the older
    //! union-ai-admin releases kept for tests (`tests/fixtures/union-ai-admin/`).

    use std::path::PathBuf;

    fn root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    /// A released union-ai-admin template, `version` as in `v0.11`.
    pub(crate) fn union_template_path(version: &str) -> PathBuf {
        let file = format!("union-ai-admin-role.{version}.template.yaml");
        let shipped = root().join("rules/vendor").join(&file);
        if shipped.is_file() {
            shipped
        } else {
            root().join("tests/fixtures/union-ai-admin").join(file)
        }
    }

    /// Teradata's published AI Unlimited policies.
    pub(crate) fn teradata_dir() -> PathBuf {
        root().join("rules/vendor/teradata")
    }
}
