//! Rule packs: the declarative YAML files in `rules/` that say which checks a vendor needs
//! and with which thresholds.
//!
//! A pack lists the rules it enables under `vpc_rules:`, each with its parameters; a rule
//! the pack does not list is not checked for that pack. The config can override any
//! parameter, the severity, or `enabled` for every pack (`rule_overrides:`). Every field is
//! checked when the file is read, so a typo is an error with a line number, never a
//! silently ignored setting.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::finding::Severity;
use crate::input::{self, InputError};

use super::catalogue::{self, rule_info};

/// The rule pack compiled into the binary, used when no `--rules` or config names one.
pub const EMBEDDED_UNION_BYOC: &str = include_str!("../../rules/union-byoc.yaml");

/// Files the embedded pack refers to, compiled in beside it.
const EMBEDDED_FILES: &[(&str, &str)] = &[
    (
        "rules/vendor/union-ai-admin-role.v0.13.template.yaml",
        include_str!("../../rules/vendor/union-ai-admin-role.v0.13.template.yaml"),
    ),
    (
        "rules/vendor/union-iam-policy.manual.json",
        include_str!("../../rules/vendor/union-iam-policy.manual.json"),
    ),
    (
        "rules/vendor/union-trust.manual.json",
        include_str!("../../rules/vendor/union-trust.manual.json"),
    ),
];

/// Reads a file a pack refers to.
pub type ReadFile<'a> = &'a dyn Fn(&Path) -> Result<String, InputError>;
/// Looks an environment variable up.
pub type ReadEnv<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Reads from the file system.
pub fn read_from_disk(path: &Path) -> Result<String, InputError> {
    input::read_text(path)
}

/// Reads from the process environment; an empty value counts as unset.
pub fn read_from_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// An IPv4 prefix length, 0 to 32.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(try_from = "i64")]
#[schemars(extend("minimum" = 0, "maximum" = 32))]
pub struct PrefixLength(pub u8);

impl TryFrom<i64> for PrefixLength {
    type Error = String;
    fn try_from(value: i64) -> Result<Self, Self::Error> {
        match u8::try_from(value) {
            Ok(v) if v <= 32 => Ok(PrefixLength(v)),
            _ => Err(format!(
                "expected an IPv4 prefix length from 0 to 32, found {value}"
            )),
        }
    }
}

/// A percentage, 0 to 100.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "f64")]
#[schemars(extend("minimum" = 0, "maximum" = 100))]
pub struct Percent(pub f64);

impl TryFrom<f64> for Percent {
    type Error = String;
    fn try_from(value: f64) -> Result<Self, Self::Error> {
        if (0.0..=100.0).contains(&value) {
            Ok(Percent(value))
        } else {
            Err(format!(
                "expected a percentage from 0 to 100, found {value}"
            ))
        }
    }
}

/// A subnet's class in the VPC, as the rules classify it (see `rules::topology`).
///
/// Only public and private subnets are the data plane's: isolated and infrastructure
/// subnets are not held to the private rules and do not count toward the AZ rules.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum SubnetRole {
    /// The default route goes to an internet gateway.
    Public,
    /// The default route goes somewhere other than an internet gateway, or a tag says so.
    Private,
    /// No default route and no tag saying private (databases, caches, ...).
    Isolated,
    /// Holds a transit gateway attachment, a Network Firewall or a Gateway Load Balancer
    /// endpoint.
    Infrastructure,
}

impl SubnetRole {
    pub fn as_str(self) -> &'static str {
        match self {
            SubnetRole::Public => "public",
            SubnetRole::Private => "private",
            SubnetRole::Isolated => "isolated",
            SubnetRole::Infrastructure => "infrastructure",
        }
    }

    /// Whether the data plane rules (sizes, egress, AZ coverage) apply to the class.
    pub fn is_data_plane(self) -> bool {
        matches!(self, SubnetRole::Public | SubnetRole::Private)
    }
}

/// How a private subnet's default route leaves the VPC.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum EgressKind {
    /// A public NAT gateway: what the vendor recommends.
    NatGateway,
    /// A NAT gateway with private connectivity: no path to the internet.
    PrivateNatGateway,
    TransitGateway,
    VirtualPrivateGateway,
    /// An AWS Cloud WAN core network.
    CloudWan,
    /// An instance or network interface doing NAT.
    NatInstance,
    /// A Network Firewall or Gateway Load Balancer endpoint.
    FirewallEndpoint,
}

impl EgressKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EgressKind::NatGateway => "nat_gateway",
            EgressKind::PrivateNatGateway => "private_nat_gateway",
            EgressKind::TransitGateway => "transit_gateway",
            EgressKind::VirtualPrivateGateway => "virtual_private_gateway",
            EgressKind::CloudWan => "cloud_wan",
            EgressKind::NatInstance => "nat_instance",
            EgressKind::FirewallEndpoint => "firewall_endpoint",
        }
    }

    /// A deliberate enterprise design that reaches the internet through something the
    /// vendor does not name: reported once per VPC at low, never as broken.
    pub fn is_corporate(self) -> bool {
        !matches!(self, EgressKind::NatGateway | EgressKind::PrivateNatGateway)
    }
}

/// Declares one rule's settings struct: `enabled`, `severity` and the rule's own parameters,
/// all optional so that a config override can set just one of them. Accessors return the
/// catalogue default where neither the pack nor the override sets a value.
macro_rules! rule_settings {
    ($name:ident { $($(#[doc = $doc:literal])* $field:ident : $ty:ty = $default:expr;)* }) => {
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            /// `false` switches the rule off.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub enabled: Option<bool>,
            /// Replaces the catalogue's default severity.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub severity: Option<Severity>,
            $(
                $(#[doc = $doc])*
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub $field: Option<$ty>,
            )*
        }

        impl $name {
            $(
                pub fn $field(&self) -> $ty {
                    self.$field.clone().unwrap_or_else(|| $default)
                }
            )*

            /// `over` wins wherever it sets a value.
            fn merged_with(&self, over: &Self) -> Self {
                $name {
                    enabled: over.enabled.or(self.enabled),
                    severity: over.severity.or(self.severity),
                    $( $field: over.$field.clone().or_else(|| self.$field.clone()), )*
                }
            }

            fn common(&self) -> RuleCommon {
                RuleCommon { enabled: self.enabled, severity: self.severity }
            }
        }
    };
}

/// The settings every rule has, whatever its parameters.
#[derive(Debug, Clone, Copy, Default)]
struct RuleCommon {
    enabled: Option<bool>,
    severity: Option<Severity>,
}

rule_settings!(NoParams {});

rule_settings!(AzCount {
    /// The fewest AZs the VPC's subnets may span.
    min_azs: u32 = 3;
});

rule_settings!(MaxPrefix {
    /// The longest acceptable prefix length: /16 means "at least a /16".
    max_prefix_length: PrefixLength = PrefixLength(16);
});

rule_settings!(IpCapacity {
    /// Fires when fewer than this share of the subnet's usable IPs are free.
    min_free_percent: Percent = Percent(10.0);
    /// Fires when fewer than this many IPs are free.
    min_free_ips: u64 = 16;
    /// Which subnets the rule applies to (public subnets hold load balancers and NAT
    /// gateways, which need addresses too).
    subnet_roles: Vec<SubnetRole> = vec![SubnetRole::Private, SubnetRole::Public];
    /// The recommended private subnet size: when `min_free_ips` is more than a subnet of
    /// this size can hold, `min_free_percent` of such a subnet is asked instead.
    recommended_private_prefix_length: PrefixLength = PrefixLength(18);
    /// The same for public subnets.
    recommended_public_prefix_length: PrefixLength = PrefixLength(28);
});

rule_settings!(CorporateEgress {
    /// Egress kinds accepted as compliant: a private subnet leaving through one of them is
    /// not reported (`transit_gateway`, `virtual_private_gateway`, `cloud_wan`,
    /// `nat_instance`, `firewall_endpoint`).
    accepted_egress: Vec<EgressKind> = Vec::new();
});

rule_settings!(GatewayEndpoint {
    /// The service suffix, completed as `com.amazonaws.<region>.<service>`.
    service: String = "s3".to_string();
});

rule_settings!(InterfaceEndpoints {
    /// Service suffixes, completed as `com.amazonaws.<region>.<service>`.
    services: Vec<String> = vec!["logs".into(), "ecr.dkr".into(), "ec2".into()];
});

rule_settings!(EndpointSecurityGroup {
    /// Service suffixes whose endpoints are checked.
    services: Vec<String> = vec!["logs".into(), "ecr.dkr".into(), "ec2".into()];
    /// The TCP port the endpoint's security groups must admit from the VPC.
    port: u16 = 443;
});

rule_settings!(FeatureSwitches {
    /// The pack's optional `features:` in use: each one's role must grant its policies.
    features: Vec<String> = Vec::new();
    /// The documented policy set the pack's role uses (the `form` of one of its documented
    /// forms, e.g. `without-iam-role-permissions + engine`); empty accepts any form.
    policy_set: String = String::new();
});

/// Declares the `vpc_rules:` section: one optional settings struct per rule id, plus the
/// plumbing to merge overrides and ask about any rule by id.
macro_rules! rule_table {
    ($(#[doc = $doc:literal])* $table:ident (overrides_enable: $enable:literal) { $($field:ident : $ty:ty = $id:literal;)* }) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $table {
            $(
                #[serde(rename = $id, default, skip_serializing_if = "Option::is_none")]
                pub $field: Option<$ty>,
            )*
        }

        impl $table {
            /// Applies `over` on top of the pack. For VPC rules, an override for a rule the
            /// pack does not list does not enable it: packs decide what a vendor requires. IAM
            /// rules run whenever a pack expects roles, so their overrides always apply.
            pub fn merged_with(&self, over: &$table) -> $table {
                $table {
                    $(
                        $field: match (&self.$field, &over.$field) {
                            (Some(base), Some(o)) => Some(base.merged_with(o)),
                            (None, Some(o)) if $enable => Some(o.clone()),
                            (base, _) => base.clone(),
                        },
                    )*
                }
            }

            fn common(&self, id: &str) -> Option<RuleCommon> {
                $( if id == $id { return self.$field.as_ref().map(|s| s.common()); } )*
                None
            }

            /// Every rule id this table can hold.
            #[cfg(test)]
            pub const IDS: &'static [&'static str] = &[$($id),*];
        }
    };
}

/// Declares the per-area tables and `RuleOverrides`, the config's single table of every
/// rule, which splits into the area tables.
macro_rules! rule_tables {
    ($($(#[doc = $doc:literal])* $table:ident (overrides_enable: $enable:literal) { $($field:ident : $ty:ty = $id:literal;)* })*) => {
        $( rule_table!($(#[doc = $doc])* $table (overrides_enable: $enable) { $($field : $ty = $id;)* }); )*

        /// Overrides for any rule, keyed by rule id: the config's `rule_overrides`.
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        pub struct RuleOverrides {
            $($(
                #[serde(rename = $id, default, skip_serializing_if = "Option::is_none")]
                pub $field: Option<$ty>,
            )*)*
        }

        $(
            impl From<&RuleOverrides> for $table {
                fn from(all: &RuleOverrides) -> $table {
                    $table { $( $field: all.$field.clone(), )* }
                }
            }
        )*
    };
}

rule_tables! {
    /// The VPC rules a pack enables, keyed by rule id.
    VpcRules (overrides_enable: false) {
    az_count: AzCount = "vpc.az_count";
    cidr_size: MaxPrefix = "vpc.cidr_size";
    igw_attached: NoParams = "vpc.igw_attached";
    dns_attributes: NoParams = "vpc.dns_attributes";
    public_subnet_per_az: NoParams = "vpc.public_subnet_per_az";
    private_subnet_per_az: NoParams = "vpc.private_subnet_per_az";
    private_size: MaxPrefix = "subnet.private_size";
    public_size: MaxPrefix = "subnet.public_size";
    private_egress: NoParams = "subnet.private_egress";
    corporate_egress: CorporateEgress = "vpc.corporate_egress";
    data_plane_vpc_missing: NoParams = "data_plane.vpc_missing";
    data_plane_subnet_missing: NoParams = "data_plane.subnet_missing";
    data_plane_one_per_az: NoParams = "data_plane.one_per_az";
    ip_capacity: IpCapacity = "subnet.ip_capacity";
    nat_in_public_subnet: NoParams = "nat.in_public_subnet";
    nat_same_az: NoParams = "nat.same_az";
    s3_gateway: GatewayEndpoint = "endpoint.s3_gateway";
    interface_required: InterfaceEndpoints = "endpoint.interface_required";
    interface_az_coverage: InterfaceEndpoints = "endpoint.interface_az_coverage";
    private_dns: InterfaceEndpoints = "endpoint.private_dns";
    endpoint_security_group: EndpointSecurityGroup = "endpoint.security_group";
    }

    /// Severity or `enabled` settings for the IAM rules. Every IAM rule runs for every role
    /// a pack expects unless switched off here; the `ecr.*` and `secrets.*` rules, which judge
    /// policies too, run whenever the pack declares `cross_account_ecr:` or
    /// `secrets_manager:`.
    IamRules (overrides_enable: true) {
    role_missing: NoParams = "iam.role_missing";
    policy_missing_permissions: NoParams = "iam.policy_missing_permissions";
    policy_excess_permissions: NoParams = "iam.policy_excess_permissions";
    trust_policy_drift: NoParams = "iam.trust_policy_drift";
    ecr_cross_account_pull: NoParams = "ecr.cross_account_pull";
    secrets_region: NoParams = "secrets.region";
    secrets_missing: NoParams = "secrets.missing";
    }

    /// Settings of the pinned-role, custom-role and optional-feature rules
    /// ([`super::role_checks`]); each runs when its pack section is present.
    RoleRules (overrides_enable: true) {
    pinned_role_drift: NoParams = "iam.pinned_role_drift";
    custom_role_policy: NoParams = "iam.custom_role_policy";
    custom_role_trust: NoParams = "iam.custom_role_trust";
    feature_policy_missing: FeatureSwitches = "iam.feature_policy_missing";
    vpc_scope_recommended: NoParams = "iam.vpc_scope_recommended";
    }
}

/// How strictly a role's policies are compared with the expected ones.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PolicyMode {
    /// Report missing and excess permissions.
    #[default]
    Exact,
    /// Report only missing permissions.
    AtLeast,
}

/// A role a vendor needs, and where its expected policies come from: a CloudFormation
/// template (trust policy and policies read from the role's resource) or policy JSON files.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleExpectation {
    /// The role's name, exact or a glob (`*`, `?`). With a template it defaults to the
    /// template role's `RoleName`.
    #[serde(default)]
    pub role_name: Option<String>,
    /// A CloudFormation template, relative to the pack file.
    #[serde(default)]
    pub template: Option<PathBuf>,
    /// The role's logical id in the template; needed only when it has several roles.
    #[serde(default)]
    pub template_role: Option<String>,
    /// Policy JSON files, relative to the pack file (instead of a template).
    #[serde(default)]
    pub policies: Vec<PathBuf>,
    /// A trust policy JSON file (with `policies`); without it the trust is not checked.
    #[serde(default)]
    pub trust_policy: Option<PathBuf>,
    /// The vendor's version of the expectation, shown in messages: `v0.13`.
    #[serde(default)]
    pub version: Option<String>,
    /// Template parameters, and `${Name}` values in policy files.
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
    /// Parameters read from environment variables, so that secrets are not committed.
    /// An unset variable leaves the value unknown: conditions on it must exist, with any
    /// value, and the report says the value was not compared.
    #[serde(default)]
    pub parameters_from_env: BTreeMap<String, String>,
    /// The region for `${AWS::Region}`. Without it, the expectation is rendered for every
    /// region scanned in the account and each role is judged against the region that fits
    /// it best.
    #[serde(default)]
    pub region: Option<crate::values::RegionName>,
    #[serde(default)]
    pub mode: PolicyMode,
    /// A name for this documented form of the role, shown in findings: `CloudFormation
    /// template`.
    #[serde(default)]
    pub form: Option<String>,
    /// Trust-policy condition keys this form may lack (`sts:ExternalId` for a guide that
    /// leaves "Require external ID" unchecked); when present they are compared.
    #[serde(default)]
    pub optional_trust_conditions: Vec<String>,
    /// Other documented forms of the same role, e.g. the guide's manual setup beside the
    /// CloudFormation template. The role passes if it matches any form; findings are judged
    /// against the closest one and name it. Each form shares this role's name, parameters,
    /// region and mode.
    #[serde(default)]
    pub also_documented: Vec<DocumentedForm>,
    /// The files and parameter values, read when the pack is loaded.
    #[serde(skip)]
    pub sources: ExpectationSources,
}

/// Another documented form of a role: where its expected policies come from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentedForm {
    /// The form's name, shown in findings: `manual setup (guide)`.
    pub form: String,
    /// A CloudFormation template, relative to the pack file.
    #[serde(default)]
    pub template: Option<PathBuf>,
    /// The role's logical id in the template; needed only when it has several roles.
    #[serde(default)]
    pub template_role: Option<String>,
    /// Policy JSON files, relative to the pack file (instead of a template).
    #[serde(default)]
    pub policies: Vec<PathBuf>,
    /// A trust policy JSON file (with `policies`).
    #[serde(default)]
    pub trust_policy: Option<PathBuf>,
    /// The vendor's version of this form; default: the role's.
    #[serde(default)]
    pub version: Option<String>,
    /// Trust-policy condition keys this form may lack.
    #[serde(default)]
    pub optional_trust_conditions: Vec<String>,
}

/// A file an expectation refers to, read at load time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceFile {
    /// The path as shown in messages.
    pub path: PathBuf,
    pub text: String,
}

/// Everything an expectation needs from outside the pack file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExpectationSources {
    pub template: Option<SourceFile>,
    pub policies: Vec<SourceFile>,
    pub trust_policy: Option<SourceFile>,
    /// `parameters` plus the environment's values.
    pub parameters: BTreeMap<String, String>,
    /// Parameters whose environment variable was unset.
    pub unknown_parameters: BTreeSet<String>,
    /// The other documented forms (`also_documented`), each a complete expectation
    /// with its files read, sharing this one's name, parameters, region and mode.
    pub forms: Vec<RoleExpectation>,
}

impl RoleExpectation {
    /// How the role is named in messages.
    pub fn label(&self) -> String {
        match (&self.role_name, &self.sources.template) {
            (Some(name), _) => name.clone(),
            (None, Some(t)) => format!("the role of {}", t.path.display()),
            (None, None) => "<unnamed role>".into(),
        }
    }

    /// This form and the other documented forms, this one first.
    pub fn forms(&self) -> impl Iterator<Item = &RoleExpectation> {
        std::iter::once(self).chain(self.sources.forms.iter())
    }

    /// The expectation of one documented form: this role's name, parameters, region and
    /// mode with the form's files.
    fn with_form(&self, form: &DocumentedForm) -> RoleExpectation {
        RoleExpectation {
            role_name: self.role_name.clone(),
            template: form.template.clone(),
            template_role: form.template_role.clone(),
            policies: form.policies.clone(),
            trust_policy: form.trust_policy.clone(),
            version: form.version.clone().or_else(|| self.version.clone()),
            parameters: self.parameters.clone(),
            parameters_from_env: self.parameters_from_env.clone(),
            region: self.region.clone(),
            mode: self.mode,
            form: Some(form.form.clone()),
            optional_trust_conditions: form.optional_trust_conditions.clone(),
            also_documented: Vec::new(),
            sources: ExpectationSources::default(),
        }
    }

    /// Where the expectation comes from, for messages: `union-ai-admin-role.v0.13.template.yaml (v0.13)`.
    pub fn source_label(&self) -> String {
        let file = self
            .sources
            .template
            .as_ref()
            .or(self.sources.policies.first())
            .map(|f| {
                f.path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            })
            .unwrap_or_default();
        let label = match &self.version {
            Some(v) => format!("{file} ({v})"),
            None => file,
        };
        match &self.form {
            Some(form) => format!("{label}, {form}"),
            None => label,
        }
    }
}

/// One rule pack file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RulePack {
    /// A short stable name, used in reports and metric labels: `union-byoc`.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Where the requirements come from (the vendor's guide).
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub vpc_rules: VpcRules,
    #[serde(default)]
    pub iam_rules: IamRules,
    /// Roles the vendor needs, with their expected policies.
    #[serde(default)]
    pub roles: Vec<RoleExpectation>,
    /// ECR registries in other accounts that hold the data plane's task images
    /// (`ecr.cross_account_pull`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cross_account_ecr: Vec<super::ecr::CrossAccountRegistry>,
    /// The roles whose custom policies grant Secrets Manager secrets, and the data plane's
    /// region (`secrets.region`, `secrets.missing`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets_manager: Option<super::secrets::SecretsManagerCheck>,
    /// Settings of `iam.pinned_role_drift`, `iam.custom_role_*` and
    /// `iam.feature_policy_missing` (which features are switched on).
    #[serde(default)]
    pub role_rules: RoleRules,
    /// Roles that must not change (`iam.pinned_role_drift`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pinned_roles: Vec<super::role_checks::PinnedRoleSpec>,
    /// Custom roles discovered from their trust policies (`iam.custom_role_*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_roles: Option<super::role_checks::CustomRoles>,
    /// Optional features of the vendor's guide (`iam.feature_policy_missing`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<super::role_checks::Feature>,
    /// A recommendation beyond the guide (`iam.vpc_scope_recommended`, info).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_scope_recommendation: Option<super::role_checks::VpcScopeRecommendation>,
    /// What the customer hands the vendor, shown per data plane in the report's handover
    /// section (`rules::handover`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handover: Option<super::handover::Handover>,
}

impl RulePack {
    /// Whether `rule_id` is listed and not switched off.
    pub fn is_enabled(&self, rule_id: &str) -> bool {
        if let Some(present) = super::role_checks::section_present(self, rule_id) {
            return present
                && self
                    .role_rules
                    .common(rule_id)
                    .and_then(|c| c.enabled)
                    .unwrap_or(true);
        }
        let declared = if rule_id.starts_with("ecr.") {
            Some(!self.cross_account_ecr.is_empty())
        } else if rule_id.starts_with("secrets.") {
            Some(self.secrets_manager.is_some())
        } else {
            None
        };
        if let Some(declared) = declared {
            return declared
                && self
                    .iam_rules
                    .common(rule_id)
                    .and_then(|c| c.enabled)
                    .unwrap_or(true);
        }
        if rule_id.starts_with("iam.") {
            return !self.roles.is_empty()
                && self
                    .iam_rules
                    .common(rule_id)
                    .and_then(|c| c.enabled)
                    .unwrap_or(true);
        }
        // The rules of a declared data plane judge the config's own declaration: they run
        // for whichever pack it names, unless switched off.
        if rule_id.starts_with("data_plane.") {
            return self
                .vpc_rules
                .common(rule_id)
                .and_then(|c| c.enabled)
                .unwrap_or(true);
        }
        self.vpc_rules
            .common(rule_id)
            .is_some_and(|c| c.enabled.unwrap_or(true))
    }

    /// The severity findings of `rule_id` carry under this pack.
    pub fn severity(&self, rule_id: &str) -> Severity {
        let default = rule_info(rule_id)
            .map(|r| r.default_severity)
            .unwrap_or(Severity::High);
        self.vpc_rules
            .common(rule_id)
            .or_else(|| self.iam_rules.common(rule_id))
            .or_else(|| self.role_rules.common(rule_id))
            .and_then(|c| c.severity)
            .unwrap_or(default)
    }

    /// Parses a pack from YAML text, checking every field.
    pub fn parse(file: &Path, text: &str) -> Result<RulePack, InputError> {
        RulePack::parse_unlocated(file, text).map_err(|e| e.located_in(text))
    }

    fn parse_unlocated(file: &Path, text: &str) -> Result<RulePack, InputError> {
        let pack: RulePack = input::parse_yaml(file, text)?;
        let name_ok = !pack.name.is_empty()
            && pack
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !name_ok {
            return Err(InputError {
                field: "name".into(),
                ..InputError::file(
                    file,
                    format!(
                        "expected a non-empty name of letters, digits, '-' and '_', found {:?}",
                        pack.name
                    ),
                )
            });
        }
        for (index, registry) in pack.cross_account_ecr.iter().enumerate() {
            registry.check().map_err(|(name, message)| InputError {
                field: format!("cross_account_ecr[{index}].{name}"),
                ..InputError::file(file, message)
            })?;
        }
        if let Some(handover) = &pack.handover {
            handover
                .check(&pack)
                .map_err(|(name, message)| InputError {
                    field: format!("handover.{name}"),
                    ..InputError::file(file, message)
                })?;
        }
        if let Some(secrets) = &pack.secrets_manager {
            secrets.check().map_err(|(name, message)| InputError {
                field: format!("secrets_manager.{name}"),
                ..InputError::file(file, message)
            })?;
        }
        for (field, services) in [
            (
                catalogue::ENDPOINT_INTERFACE_REQUIRED,
                pack.vpc_rules
                    .interface_required
                    .as_ref()
                    .map(|s| s.services()),
            ),
            (
                catalogue::ENDPOINT_SECURITY_GROUP,
                pack.vpc_rules
                    .endpoint_security_group
                    .as_ref()
                    .map(|s| s.services()),
            ),
        ] {
            if let Some((index, bad)) = services
                .unwrap_or_default()
                .iter()
                .enumerate()
                .find(|(_, s)| s.is_empty() || s.contains(char::is_whitespace))
            {
                return Err(InputError {
                    field: format!("vpc_rules.{field}.services[{index}]"),
                    ..InputError::file(file, format!("not a service name: {bad:?}"))
                });
            }
        }
        Ok(pack)
    }

    /// The pack shipped inside the binary, with its files and the environment's parameters.
    pub fn embedded(env: ReadEnv) -> Result<RulePack, InputError> {
        let file = Path::new("rules/union-byoc.yaml");
        let mut pack = RulePack::parse(file, EMBEDDED_UNION_BYOC)?;
        let read_embedded = |path: &Path| -> Result<String, InputError> {
            EMBEDDED_FILES
                .iter()
                .find(|(name, _)| Path::new(name) == path)
                .map(|(_, text)| text.to_string())
                .ok_or_else(|| InputError::file(path, "not among the files built into the binary"))
        };
        pack.load_sources(file, &read_embedded, env)
            .map_err(|e| locate_in_pack(e, file, EMBEDDED_UNION_BYOC))?;
        Ok(pack)
    }

    /// Reads the files the pack's role expectations name (relative to the pack file) and
    /// their parameters from the environment, and checks that each expectation resolves.
    pub fn load_sources(
        &mut self,
        pack_file: &Path,
        read: ReadFile,
        env: ReadEnv,
    ) -> Result<(), InputError> {
        let base = pack_file.parent().unwrap_or(Path::new(""));
        for (index, role) in self.roles.iter_mut().enumerate() {
            let prefix = format!("roles[{index}]");
            load_expectation(role, &prefix, true, base, pack_file, read, env)?;
            let forms = role
                .also_documented
                .iter()
                .enumerate()
                .map(|(n, form)| {
                    let mut expectation = role.with_form(form);
                    let prefix = format!("{prefix}.also_documented[{n}]");
                    load_expectation(&mut expectation, &prefix, false, base, pack_file, read, env)?;
                    Ok(expectation)
                })
                .collect::<Result<Vec<_>, InputError>>()?;
            role.sources.forms = forms;
        }
        super::role_checks::load_sources(self, pack_file, read)
    }

    /// Loads a pack file, or every `*.yaml`/`*.yml` file in a folder (sorted by name).
    pub fn load_path(path: &Path) -> Result<Vec<RulePack>, InputError> {
        if path.is_dir() {
            let entries =
                std::fs::read_dir(path).map_err(|e| InputError::file(path, e.to_string()))?;
            let mut files: Vec<_> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.extension()
                        .is_some_and(|ext| ext == "yaml" || ext == "yml")
                })
                .collect();
            files.sort();
            if files.is_empty() {
                return Err(InputError::file(
                    path,
                    "the folder holds no .yaml rule pack",
                ));
            }
            files.iter().map(|f| RulePack::load_file(f)).collect()
        } else {
            Ok(vec![RulePack::load_file(path)?])
        }
    }

    /// Loads one pack file with the files it refers to.
    pub fn load_file(path: &Path) -> Result<RulePack, InputError> {
        let text = input::read_text(path)?;
        let mut pack = RulePack::parse(path, &text)?;
        pack.load_sources(path, &read_from_disk, &read_from_env)
            .map_err(|e| locate_in_pack(e, path, &text))?;
        Ok(pack)
    }
}

/// Reads the files one expectation (or one documented form, `named == false`: it takes
/// its role's name) refers to, and its parameters, and checks that it resolves. Errors name
/// the pack's field under `prefix`.
fn load_expectation(
    role: &mut RoleExpectation,
    prefix: &str,
    named: bool,
    base: &Path,
    pack_file: &Path,
    read: ReadFile,
    env: ReadEnv,
) -> Result<(), InputError> {
    let field = |name: &str| format!("{prefix}.{name}");
    let err = |name: &str, message: String| InputError {
        field: field(name),
        ..InputError::file(pack_file, message)
    };
    match (&role.template, role.policies.is_empty()) {
        (Some(_), false) => {
            return Err(err(
                "template",
                "give either `template` or `policies`, not both".into(),
            ))
        }
        (None, true) => {
            return Err(err(
                "template",
                "give a `template` or a list of `policies`".into(),
            ))
        }
        _ => {}
    }
    if role.template.is_some() && role.trust_policy.is_some() {
        return Err(err(
            "trust_policy",
            "a template already holds the trust policy".into(),
        ));
    }
    if named && role.template.is_none() && role.role_name.as_deref().is_none_or(str::is_empty) {
        return Err(err("role_name", "required with `policies`".into()));
    }
    let mut sources = ExpectationSources {
        parameters: role.parameters.clone(),
        ..Default::default()
    };
    for (parameter, variable) in &role.parameters_from_env {
        match env(variable) {
            Some(value) => {
                sources.parameters.insert(parameter.clone(), value);
            }
            None => {
                sources.unknown_parameters.insert(parameter.clone());
            }
        }
    }
    // A file that cannot be read is named with the pack's field that refers to it.
    let load = |name: String, relative: &PathBuf| -> Result<SourceFile, InputError> {
        let path = base.join(relative);
        let text = read(&path).map_err(|e| {
            if e.file == path && e.line.is_none() {
                err(
                    &name,
                    format!("cannot read {}: {}", path.display(), e.message),
                )
            } else {
                e
            }
        })?;
        Ok(SourceFile { text, path })
    };
    sources.template = role
        .template
        .as_ref()
        .map(|t| load("template".into(), t))
        .transpose()?;
    sources.policies = role
        .policies
        .iter()
        .enumerate()
        .map(|(n, p)| load(format!("policies[{n}]"), p))
        .collect::<Result<_, _>>()?;
    sources.trust_policy = role
        .trust_policy
        .as_ref()
        .map(|t| load("trust_policy".into(), t))
        .transpose()?;
    role.sources = sources;
    for (n, key) in role.optional_trust_conditions.iter().enumerate() {
        if !key.contains(':') || key.contains(char::is_whitespace) {
            return Err(err(
                &format!("optional_trust_conditions[{n}]"),
                format!("expected a condition key such as sts:ExternalId, found {key:?}"),
            ));
        }
    }
    // Resolve once with placeholder ids, so a broken template fails at load time.
    super::iam::resolve_expected(role, "000000000000", "us-east-1")?;
    Ok(())
}

/// Gives an error about the pack file itself (not a file it names) the line of its field.
fn locate_in_pack(err: InputError, pack_file: &Path, text: &str) -> InputError {
    if err.file == pack_file {
        err.located_in(text)
    } else {
        err
    }
}

/// Checks that no two packs share a name: findings and metrics are keyed by it.
pub fn check_unique_names(packs: &[(std::path::PathBuf, RulePack)]) -> Result<(), InputError> {
    let mut seen = std::collections::BTreeMap::new();
    for (file, pack) in packs {
        if let Some(first) = seen.insert(pack.name.clone(), file.clone()) {
            return Err(InputError {
                field: "name".into(),
                ..InputError::file(
                    file,
                    format!(
                        "duplicate rule pack name {:?}, also used by {}",
                        pack.name,
                        first.display()
                    ),
                )
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_pack_parses_and_enables_every_vpc_rule() {
        let pack = RulePack::parse(Path::new("rules/union-byoc.yaml"), EMBEDDED_UNION_BYOC)
            .expect("embedded pack parses");
        assert_eq!(pack.name, "union-byoc");
        for id in VpcRules::IDS {
            assert!(pack.is_enabled(id), "{id} is not enabled in union-byoc");
            assert!(rule_info(id).is_some(), "{id} is not in the catalogue");
        }
        let az = pack.vpc_rules.az_count.as_ref().unwrap();
        assert_eq!(az.min_azs(), 3);
        assert_eq!(
            pack.vpc_rules
                .private_size
                .as_ref()
                .unwrap()
                .max_prefix_length(),
            PrefixLength(18)
        );
    }

    #[test]
    fn every_table_id_is_in_the_catalogue_and_iam_rules_need_roles() {
        for id in VpcRules::IDS.iter().chain(IamRules::IDS) {
            assert!(rule_info(id).is_some(), "{id}");
        }
        let mut pack = RulePack::parse(Path::new("p.yaml"), "name: p\n").unwrap();
        assert!(
            !pack.is_enabled("iam.role_missing"),
            "no roles, no IAM rules"
        );
        pack.roles.push(RoleExpectation::default());
        assert!(pack.is_enabled("iam.role_missing"));
        pack.iam_rules.role_missing = Some(NoParams {
            enabled: Some(false),
            ..Default::default()
        });
        assert!(!pack.is_enabled("iam.role_missing"));
    }

    #[test]
    fn unlisted_rule_is_disabled_and_listed_rule_takes_catalogue_severity() {
        let pack = RulePack::parse(
            Path::new("p.yaml"),
            "name: p\nvpc_rules:\n  vpc.az_count: {min_azs: 2}\n",
        )
        .unwrap();
        assert!(pack.is_enabled("vpc.az_count"));
        assert!(!pack.is_enabled("vpc.cidr_size"));
        assert_eq!(pack.severity("vpc.az_count"), Severity::High);
    }

    #[test]
    fn override_changes_only_what_it_sets() {
        let pack = RulePack::parse(
            Path::new("p.yaml"),
            "name: p\nvpc_rules:\n  vpc.az_count: {min_azs: 3, severity: low}\n",
        )
        .unwrap();
        let over: VpcRules = input::parse_yaml(
            Path::new("c.yaml"),
            "vpc.az_count: {min_azs: 2}\nvpc.cidr_size: {}\n",
        )
        .unwrap();
        let merged = pack.vpc_rules.merged_with(&over);
        let az = merged.az_count.unwrap();
        assert_eq!(az.min_azs(), 2);
        assert_eq!(az.severity, Some(Severity::Low));
        assert!(
            merged.cidr_size.is_none(),
            "an override must not enable a rule"
        );
    }

    #[test]
    fn bad_prefix_length_names_line_and_field() {
        let err = RulePack::parse(
            Path::new("p.yaml"),
            "name: p\nvpc_rules:\n  vpc.cidr_size:\n    max_prefix_length: 40\n",
        )
        .unwrap_err();
        assert_eq!(err.line, Some(4));
        assert_eq!(err.field, "vpc_rules.vpc.cidr_size.max_prefix_length");
        assert!(err.message.contains("0 to 32"), "{err}");
    }

    #[test]
    fn unknown_rule_id_is_an_error() {
        let err = RulePack::parse(
            Path::new("p.yaml"),
            "name: p\nvpc_rules:\n  vpc.az_cuont: {}\n",
        )
        .unwrap_err();
        assert!(
            err.message.contains("unknown field `vpc.az_cuont`"),
            "{err}"
        );
        assert_eq!(err.line, Some(3));
    }

    #[test]
    fn bad_severity_is_an_error() {
        let err = RulePack::parse(
            Path::new("p.yaml"),
            "name: p\nvpc_rules:\n  vpc.az_count: {severity: severe}\n",
        )
        .unwrap_err();
        assert!(err.field.ends_with("severity"), "{err}");
    }

    #[test]
    fn a_documented_form_is_loaded_with_its_files_and_its_errors_name_its_field() {
        let text = "name: p\nroles:\n  - role_name: r\n    policies: [a.json]\n    also_documented:\n      - form: manual\n        policies: [b.json]\n        optional_trust_conditions: [sts:ExternalId]\n";
        let files = |path: &Path| -> Result<String, InputError> {
            match path.file_name().and_then(|n| n.to_str()) {
                Some("a.json") | Some("b.json") => Ok(
                    r#"{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#
                        .to_string(),
                ),
                _ => Err(InputError::file(path, "No such file")),
            }
        };
        let mut pack = RulePack::parse(Path::new("p.yaml"), text).unwrap();
        pack.load_sources(Path::new("p.yaml"), &files, &|_| None)
            .unwrap();
        let forms: Vec<String> = pack.roles[0].forms().map(|f| f.source_label()).collect();
        assert_eq!(forms, ["a.json", "b.json, manual"]);
        assert_eq!(
            pack.roles[0].sources.forms[0].role_name.as_deref(),
            Some("r")
        );

        let bad = text.replace("[sts:ExternalId]", "[\"external id\"]");
        let mut pack = RulePack::parse(Path::new("p.yaml"), &bad).unwrap();
        let err = pack
            .load_sources(Path::new("p.yaml"), &files, &|_| None)
            .map_err(|e| e.located_in(&bad))
            .unwrap_err();
        assert_eq!(
            err.field,
            "roles[0].also_documented[0].optional_trust_conditions[0]"
        );
        assert!(err.message.contains("condition key"), "{err}");
    }

    #[test]
    fn duplicate_pack_names_are_an_error() {
        let a = RulePack {
            name: "x".into(),
            ..Default::default()
        };
        let err =
            check_unique_names(&[("a.yaml".into(), a.clone()), ("b.yaml".into(), a)]).unwrap_err();
        assert!(
            err.to_string().starts_with("b.yaml: name: duplicate"),
            "{err}"
        );
    }
}

#[cfg(test)]
mod shipped_packs {
    //! Every pack in `rules/` and `rules/examples/` loads with its files.

    use super::*;

    fn packs_in(folder: &str) -> Vec<RulePack> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(folder);
        RulePack::load_path(&path).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn shipped_packs_load_and_have_unique_names() {
        let packs = packs_in("rules");
        let names: BTreeSet<&str> = packs.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            BTreeSet::from(["postgresml", "teradata-ai-unlimited", "union-byoc"])
        );
        let teradata = packs
            .iter()
            .find(|p| p.name == "teradata-ai-unlimited")
            .unwrap();
        assert_eq!(teradata.roles[0].mode, PolicyMode::AtLeast);
        let postgres = packs.iter().find(|p| p.name == "postgresml").unwrap();
        let expected =
            crate::rules::iam::resolve_expected(&postgres.roles[0], "111122223333", "us-east-1")
                .unwrap();
        let trust = serde_json::to_string(&expected.trust_policy).unwrap();
        assert!(trust.contains("arn:aws:iam::111122223333:root"), "{trust}");
    }

    #[test]
    fn example_packs_load() {
        let packs = packs_in("rules/examples");
        assert_eq!(packs.len(), 2);
        for pack in &packs {
            for role in &pack.roles {
                crate::rules::iam::resolve_expected(role, "111122223333", "us-east-1").unwrap();
            }
        }
    }

    #[test]
    fn union_byoc_file_on_disk_matches_the_embedded_pack() {
        let on_disk = packs_in("rules/union-byoc.yaml");
        let embedded = RulePack::embedded(&|_| None).unwrap();
        assert_eq!(
            on_disk[0].roles[0]
                .sources
                .template
                .as_ref()
                .map(|t| &t.text),
            embedded.roles[0].sources.template.as_ref().map(|t| &t.text)
        );
        assert_eq!(on_disk[0].vpc_rules, embedded.vpc_rules);
    }
}
