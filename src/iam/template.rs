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

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;
use serde_json::Value as Json;
use serde_yaml_ng::{Mapping, Value as Yaml};

use super::policy::{unknown_value, PolicyDocument};

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

/// The kind of a template error, for callers that react differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TemplateErrorKind {
    /// The text is not YAML (or is too deeply nested or repetitive).
    Syntax,
    /// The template's shape is wrong, e.g. `Resources` is not a mapping.
    Structure,
    /// A `!Tag` or `Fn::` function CloudFormation does not have.
    UnknownTag,
    /// A CloudFormation function or attribute this reader does not resolve.
    Unsupported,
    /// A parameter without a value, default, or "unknown" mark.
    MissingParameter,
    /// `!Ref`, `!GetAtt` or `${...}` names nothing in the template.
    MissingReference,
    /// References that loop (or chain too deeply).
    CyclicReference,
    /// A resolved policy document is not a valid policy.
    Policy,
}

/// Why a template could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct TemplateError {
    /// What kind of problem it is.
    pub kind: TemplateErrorKind,
    /// The dotted path of the field, e.g. `Resources.Role.Properties.RoleName`;
    /// empty for syntax errors.
    pub path: String,
    /// 1-based line, where it could be found.
    pub line: Option<usize>,
    /// 1-based column, where it could be found.
    pub column: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(column)) => write!(f, "{line}:{column}: ")?,
            (Some(line), None) => write!(f, "{line}: ")?,
            _ => {}
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// Every CloudFormation function name (short tag form, without `!`). Tags
/// outside this list are errors wherever they appear.
const KNOWN_FUNCTIONS: &[&str] = &[
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
const MAX_REFERENCE_DEPTH: usize = 32;

/// Reads every IAM role, with its trust policy and attached policies, out of
/// a CloudFormation template.
pub fn read_template(text: &str, context: &TemplateContext) -> Result<Template, TemplateError> {
    let root: Yaml = serde_yaml_ng::from_str(text).map_err(|err| syntax_error(&err))?;
    let reader = Reader { text };
    reader.read(&root, context)
}

fn syntax_error(err: &serde_yaml_ng::Error) -> TemplateError {
    let location = err.location();
    let mut message = err.to_string();
    if location.is_some() {
        if let Some(cut) = message.rfind(" at line ") {
            message.truncate(cut);
        }
    }
    TemplateError {
        kind: TemplateErrorKind::Syntax,
        path: String::new(),
        line: location.as_ref().map(|l| l.line()),
        column: location.as_ref().map(|l| l.column()),
        message: format!("not valid YAML: {message}"),
    }
}

/// Holds the source text so errors can be given a line.
struct Reader<'t> {
    text: &'t str,
}

impl Reader<'_> {
    fn error(
        &self,
        kind: TemplateErrorKind,
        path: &str,
        needle: Option<&str>,
        message: impl Into<String>,
    ) -> TemplateError {
        let position = needle.and_then(|n| locate(self.text, n));
        TemplateError {
            kind,
            path: path.to_string(),
            line: position.map(|p| p.0),
            column: position.map(|p| p.1),
            message: message.into(),
        }
    }

    fn read(&self, root: &Yaml, context: &TemplateContext) -> Result<Template, TemplateError> {
        let top = root.as_mapping().ok_or_else(|| {
            self.error(
                TemplateErrorKind::Structure,
                "(template)",
                None,
                format!("expected a mapping, found {}", describe(root)),
            )
        })?;
        self.check_tags(root, "")?;

        let format_version = optional_scalar(top, "AWSTemplateFormatVersion");
        let description = optional_scalar(top, "Description");

        let parameters = match top.get("Parameters") {
            None | Some(Yaml::Null) => Mapping::new(),
            Some(Yaml::Mapping(m)) => m.clone(),
            Some(other) => {
                return Err(self.error(
                    TemplateErrorKind::Structure,
                    "Parameters",
                    Some("Parameters"),
                    format!("expected a mapping, found {}", describe(other)),
                ))
            }
        };
        let resources = match top.get("Resources") {
            Some(Yaml::Mapping(m)) => m,
            None => {
                return Err(self.error(
                    TemplateErrorKind::Structure,
                    "Resources",
                    None,
                    "missing: a template needs a Resources mapping",
                ))
            }
            Some(other) => {
                return Err(self.error(
                    TemplateErrorKind::Structure,
                    "Resources",
                    Some("Resources"),
                    format!("expected a mapping, found {}", describe(other)),
                ))
            }
        };

        let conditions = match top.get("Conditions") {
            None | Some(Yaml::Null) => Mapping::new(),
            Some(Yaml::Mapping(m)) => m.clone(),
            Some(other) => {
                return Err(self.error(
                    TemplateErrorKind::Structure,
                    "Conditions",
                    Some("Conditions"),
                    format!("expected a mapping, found {}", describe(other)),
                ))
            }
        };
        let mut resolver = Resolver {
            reader: self,
            context,
            parameters: &parameters,
            conditions: &conditions,
            condition_values: BTreeMap::new(),
            resources: BTreeMap::new(),
            stack: Vec::new(),
        };
        let mut order = Vec::new();
        for (key, value) in resources {
            let Some(logical_id) = key.as_str() else {
                return Err(self.error(
                    TemplateErrorKind::Structure,
                    "Resources",
                    None,
                    format!("resource names must be strings, found {}", describe(key)),
                ));
            };
            let path = format!("Resources.{logical_id}");
            let body = value.as_mapping().ok_or_else(|| {
                self.error(
                    TemplateErrorKind::Structure,
                    &path,
                    Some(logical_id),
                    format!(
                        "expected a mapping with Type and Properties, found {}",
                        describe(value)
                    ),
                )
            })?;
            let resource_type = match body.get("Type") {
                Some(Yaml::String(t)) => t.clone(),
                Some(other) => {
                    return Err(self.error(
                        TemplateErrorKind::Structure,
                        &format!("{path}.Type"),
                        Some(logical_id),
                        format!("expected a string, found {}", describe(other)),
                    ))
                }
                None => {
                    return Err(self.error(
                        TemplateErrorKind::Structure,
                        &format!("{path}.Type"),
                        Some(logical_id),
                        "missing",
                    ))
                }
            };
            let properties = match body.get("Properties") {
                None | Some(Yaml::Null) => None,
                Some(Yaml::Mapping(m)) => Some(m),
                Some(other) => {
                    return Err(self.error(
                        TemplateErrorKind::Structure,
                        &format!("{path}.Properties"),
                        Some(logical_id),
                        format!("expected a mapping, found {}", describe(other)),
                    ))
                }
            };
            let condition = match body.get("Condition") {
                None => None,
                Some(Yaml::String(name)) => Some(name.clone()),
                Some(other) => {
                    return Err(self.error(
                        TemplateErrorKind::Structure,
                        &format!("{path}.Condition"),
                        Some(logical_id),
                        format!("expected a condition name, found {}", describe(other)),
                    ))
                }
            };
            resolver.resources.insert(
                logical_id.to_string(),
                Resource {
                    resource_type,
                    properties,
                    condition,
                },
            );
            order.push(logical_id.to_string());
        }

        // Policies that name their roles, resolved lazily per role below.
        let mut attachable = Vec::new();
        let mut managed_by_arn: BTreeMap<String, String> = BTreeMap::new();
        for logical_id in &order {
            if !resolver.is_created(logical_id)? {
                continue;
            }
            let Some(resource) = resolver.resources.get(logical_id) else {
                continue;
            };
            let resource_type = resource.resource_type.clone();
            let path = format!("Resources.{logical_id}.Properties");
            match resource_type.as_str() {
                "AWS::IAM::Policy" | "AWS::IAM::ManagedPolicy" => {
                    let roles = resolver.string_list_property(logical_id, "Roles", &path)?;
                    if resource_type == "AWS::IAM::ManagedPolicy" {
                        let arn = resolver.managed_policy_arn(logical_id, &path)?;
                        managed_by_arn.insert(arn, logical_id.clone());
                    }
                    attachable.push((logical_id.clone(), roles));
                }
                "AWS::IAM::RolePolicy" => {
                    let role = resolver.string_property(logical_id, "RoleName", &path)?;
                    attachable.push((logical_id.clone(), role.into_iter().collect()));
                }
                _ => {}
            }
        }

        let mut roles = Vec::new();
        for logical_id in &order {
            let is_role = resolver
                .resources
                .get(logical_id)
                .is_some_and(|r| r.resource_type == "AWS::IAM::Role");
            if is_role && resolver.is_created(logical_id)? {
                roles.push(resolver.read_role(logical_id, &attachable, &managed_by_arn)?);
            }
        }
        Ok(Template {
            format_version,
            description,
            roles,
        })
    }

    /// Refuses tags and `Fn::` keys that are no CloudFormation function,
    /// anywhere in the template.
    fn check_tags(&self, value: &Yaml, path: &str) -> Result<(), TemplateError> {
        match value {
            Yaml::Tagged(tagged) => {
                let tag = tagged.tag.to_string();
                let name = tag.strip_prefix('!').unwrap_or(&tag);
                if !KNOWN_FUNCTIONS.contains(&name) {
                    return Err(self.error(
                        TemplateErrorKind::UnknownTag,
                        path_or_root(path),
                        Some(&tag),
                        format!("unknown tag {tag} (not a CloudFormation function)"),
                    ));
                }
                self.check_tags(&tagged.value, path)
            }
            Yaml::Sequence(items) => {
                for (n, item) in items.iter().enumerate() {
                    self.check_tags(item, &format!("{path}[{n}]"))?;
                }
                Ok(())
            }
            Yaml::Mapping(map) => {
                for (key, item) in map {
                    let key_text = scalar_text(key).unwrap_or_else(|| "?".to_string());
                    if let Some(function) = key_text.strip_prefix("Fn::") {
                        if map.len() == 1 && !KNOWN_FUNCTIONS.contains(&function) {
                            return Err(self.error(
                                TemplateErrorKind::UnknownTag,
                                path_or_root(path),
                                Some(&key_text),
                                format!("unknown function {key_text}"),
                            ));
                        }
                    }
                    self.check_tags(item, &join_path(path, &key_text))?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// One resource of the template.
struct Resource<'y> {
    resource_type: String,
    properties: Option<&'y Mapping>,
    /// The name of the template condition that decides whether it is created.
    condition: Option<String>,
}

/// Resolves intrinsic functions against the context, parameters and
/// resources, tracking the chain of resources being resolved to catch cycles.
struct Resolver<'r, 'y> {
    reader: &'r Reader<'r>,
    context: &'r TemplateContext,
    parameters: &'r Mapping,
    /// The template's `Conditions`.
    conditions: &'r Mapping,
    /// Conditions evaluated so far.
    condition_values: BTreeMap<String, bool>,
    resources: BTreeMap<String, Resource<'y>>,
    stack: Vec<String>,
}

impl<'y> Resolver<'_, 'y> {
    fn error(
        &self,
        kind: TemplateErrorKind,
        path: &str,
        needle: Option<&str>,
        message: impl Into<String>,
    ) -> TemplateError {
        self.reader.error(kind, path, needle, message)
    }

    /// Whether CloudFormation creates the resource: its `Condition`, if any, holds.
    fn is_created(&mut self, logical_id: &str) -> Result<bool, TemplateError> {
        let condition = self
            .resources
            .get(logical_id)
            .and_then(|r| r.condition.clone());
        match condition {
            None => Ok(true),
            Some(name) => self.condition(&name, &format!("Resources.{logical_id}.Condition")),
        }
    }

    /// The value of the template condition `name`, evaluated once.
    fn condition(&mut self, name: &str, path: &str) -> Result<bool, TemplateError> {
        if let Some(value) = self.condition_values.get(name) {
            return Ok(*value);
        }
        let Some(expression) = self.conditions.get(name) else {
            return Err(self.error(
                TemplateErrorKind::MissingReference,
                path,
                Some(name),
                format!("{name:?} is not a condition of this template"),
            ));
        };
        let value = self.with_resource("Conditions", name, |resolver| {
            resolver.condition_expression(expression, &format!("Conditions.{name}"))
        })?;
        self.condition_values.insert(name.to_string(), value);
        Ok(value)
    }

    /// Evaluates `Fn::Equals`, `Fn::And`, `Fn::Or`, `Fn::Not` and `Condition`.
    fn condition_expression(&mut self, value: &Yaml, path: &str) -> Result<bool, TemplateError> {
        let (function, argument) = match value {
            Yaml::Tagged(tagged) => {
                let tag = tagged.tag.to_string();
                (tag.trim_start_matches('!').to_string(), &tagged.value)
            }
            Yaml::Mapping(map) if map.len() == 1 => {
                let (key, argument) = map.iter().next().expect("one entry");
                let key = scalar_text(key).unwrap_or_default();
                (key.trim_start_matches("Fn::").to_string(), argument)
            }
            other => {
                return Err(self.error(
                    TemplateErrorKind::Structure,
                    path,
                    None,
                    format!(
                        "expected a condition function (Fn::Equals, Fn::And, Fn::Or, Fn::Not, Condition), found {}",
                        describe(other)
                    ),
                ))
            }
        };
        let arguments = |resolver: &Self, count: std::ops::RangeInclusive<usize>| match argument
            .as_sequence()
        {
            Some(items) if count.contains(&items.len()) => Ok(items.clone()),
            _ => Err(resolver.error(
                TemplateErrorKind::Structure,
                path,
                Some(&function),
                format!(
                    "{function} takes a list of {} to {} arguments",
                    count.start(),
                    count.end()
                ),
            )),
        };
        match function.as_str() {
            "Condition" => {
                let Some(name) = argument.as_str() else {
                    return Err(self.error(
                        TemplateErrorKind::Structure,
                        path,
                        Some("Condition"),
                        "Condition needs a condition name",
                    ));
                };
                self.condition(name, path)
            }
            "Not" => {
                let items = arguments(self, 1..=1)?;
                Ok(!self.condition_expression(&items[0], &format!("{path}[0]"))?)
            }
            "And" | "Or" => {
                let items = arguments(self, 2..=10)?;
                let mut values = Vec::with_capacity(items.len());
                for (n, item) in items.iter().enumerate() {
                    values.push(self.condition_expression(item, &format!("{path}[{n}]"))?);
                }
                Ok(if function == "And" {
                    values.iter().all(|v| *v)
                } else {
                    values.iter().any(|v| *v)
                })
            }
            "Equals" => {
                let items = arguments(self, 2..=2)?;
                let mut sides = Vec::with_capacity(2);
                for (n, item) in items.iter().enumerate() {
                    let side_path = format!("{path}[{n}]");
                    let side = self.resolve(item, &side_path)?.unwrap_or(Json::Null);
                    if side
                        .to_string()
                        .contains(super::policy::UNKNOWN_VALUE_PREFIX)
                    {
                        return Err(self.error(
                            TemplateErrorKind::MissingParameter,
                            &side_path,
                            None,
                            "the condition depends on a parameter whose value is not configured",
                        ));
                    }
                    // CloudFormation compares strings: 1 and "1" are equal.
                    sides.push(match side {
                        Json::String(s) => s,
                        other => other.to_string(),
                    });
                }
                Ok(sides[0] == sides[1])
            }
            other => Err(self.error(
                TemplateErrorKind::Unsupported,
                path,
                Some(other),
                format!("{other} is not a condition function"),
            )),
        }
    }

    fn property(&self, logical_id: &str, name: &str) -> Option<&'y Yaml> {
        self.resources
            .get(logical_id)
            .and_then(|r| r.properties)
            .and_then(|p| p.get(name))
    }

    /// Resolves a property that must be a string, if present.
    fn string_property(
        &mut self,
        logical_id: &str,
        name: &str,
        path: &str,
    ) -> Result<Option<String>, TemplateError> {
        let Some(raw) = self.property(logical_id, name) else {
            return Ok(None);
        };
        let path = join_path(path, name);
        match self.resolve(raw, &path)? {
            None => Ok(None),
            Some(Json::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.error(
                TemplateErrorKind::Structure,
                &path,
                Some(name),
                format!("expected a string, found {}", describe_json(&other)),
            )),
        }
    }

    /// Resolves a property that must be a list of strings; absent is empty.
    fn string_list_property(
        &mut self,
        logical_id: &str,
        name: &str,
        path: &str,
    ) -> Result<Vec<String>, TemplateError> {
        let Some(raw) = self.property(logical_id, name) else {
            return Ok(Vec::new());
        };
        let path = join_path(path, name);
        let items = match self.resolve(raw, &path)? {
            None => return Ok(Vec::new()),
            Some(Json::Array(items)) => items,
            Some(other) => {
                return Err(self.error(
                    TemplateErrorKind::Structure,
                    &path,
                    Some(name),
                    format!(
                        "expected a list of strings, found {}",
                        describe_json(&other)
                    ),
                ))
            }
        };
        items
            .into_iter()
            .enumerate()
            .map(|(n, item)| match item {
                Json::String(s) => Ok(s),
                other => Err(self.error(
                    TemplateErrorKind::Structure,
                    &format!("{path}[{n}]"),
                    Some(name),
                    format!("expected a string, found {}", describe_json(&other)),
                )),
            })
            .collect()
    }

    /// Resolves a property holding a policy document and validates it.
    fn policy_document(&mut self, raw: &Yaml, path: &str) -> Result<PolicyDocument, TemplateError> {
        let resolved = self.resolve(raw, path)?.unwrap_or(Json::Null);
        // CloudFormation also accepts a document given as a JSON string.
        let resolved = match resolved {
            Json::String(text) => serde_json::from_str(&text).map_err(|err| {
                self.error(
                    TemplateErrorKind::Policy,
                    path,
                    None,
                    format!("policy document string is not valid JSON: {err}"),
                )
            })?,
            other => other,
        };
        PolicyDocument::from_json(&resolved).map_err(|err| {
            let inner = err.field_path();
            let full = if inner.is_empty() {
                path.to_string()
            } else {
                format!("{path}.{inner}")
            };
            self.error(TemplateErrorKind::Policy, &full, None, err.problem())
        })
    }

    fn iam_path(&mut self, logical_id: &str) -> Result<String, TemplateError> {
        let path = format!("Resources.{logical_id}.Properties");
        let raw = self
            .with_resource(logical_id, "Path", |resolver| {
                resolver.string_property(logical_id, "Path", &path)
            })?
            .unwrap_or_else(|| "/".to_string());
        let mut iam_path = raw;
        if !iam_path.starts_with('/') {
            iam_path.insert(0, '/');
        }
        if !iam_path.ends_with('/') {
            iam_path.push('/');
        }
        Ok(iam_path)
    }

    fn role_name(&mut self, logical_id: &str) -> Result<String, TemplateError> {
        self.with_resource(logical_id, "RoleName", |resolver| {
            let path = format!("Resources.{logical_id}.Properties");
            Ok(resolver
                .string_property(logical_id, "RoleName", &path)?
                .unwrap_or_else(|| logical_id.to_string()))
        })
    }

    fn role_arn(&mut self, logical_id: &str) -> Result<String, TemplateError> {
        self.with_resource(logical_id, "Arn", |resolver| {
            let name = resolver.role_name(logical_id)?;
            let iam_path = resolver.iam_path(logical_id)?;
            Ok(format!(
                "arn:{}:iam::{}:role{iam_path}{name}",
                resolver.context.partition, resolver.context.account_id
            ))
        })
    }

    fn managed_policy_arn(
        &mut self,
        logical_id: &str,
        path: &str,
    ) -> Result<String, TemplateError> {
        self.with_resource(logical_id, "PolicyArn", |resolver| {
            let name = resolver
                .string_property(logical_id, "ManagedPolicyName", path)?
                .unwrap_or_else(|| logical_id.to_string());
            let iam_path = resolver.iam_path(logical_id)?;
            Ok(format!(
                "arn:{}:iam::{}:policy{iam_path}{name}",
                resolver.context.partition, resolver.context.account_id
            ))
        })
    }

    /// Runs `f` with `logical_id.what` (the value being worked out, such as
    /// `Role.RoleName`) pushed on the resolution stack, failing if it is
    /// already there (a cycle) or the chain is too deep.
    fn with_resource<T>(
        &mut self,
        logical_id: &str,
        what: &str,
        f: impl FnOnce(&mut Self) -> Result<T, TemplateError>,
    ) -> Result<T, TemplateError> {
        let key = format!("{logical_id}.{what}");
        if self.stack.contains(&key) {
            let mut chain = self.stack.clone();
            chain.push(key);
            return Err(self.error(
                TemplateErrorKind::CyclicReference,
                &format!("Resources.{logical_id}"),
                Some(logical_id),
                format!("cyclic reference: {}", chain.join(" -> ")),
            ));
        }
        if self.stack.len() >= MAX_REFERENCE_DEPTH {
            return Err(self.error(
                TemplateErrorKind::CyclicReference,
                &format!("Resources.{logical_id}"),
                Some(logical_id),
                format!("references chain through more than {MAX_REFERENCE_DEPTH} resources"),
            ));
        }
        self.stack.push(key);
        let result = f(self);
        self.stack.pop();
        result
    }

    fn read_role(
        &mut self,
        logical_id: &str,
        attachable: &[(String, Vec<String>)],
        managed_by_arn: &BTreeMap<String, String>,
    ) -> Result<TemplateRole, TemplateError> {
        let path = format!("Resources.{logical_id}.Properties");
        let role_name = self.role_name(logical_id)?;
        let generated_name = self
            .string_property(logical_id, "RoleName", &path)?
            .is_none();
        let arn = self.role_arn(logical_id)?;

        let trust_path = join_path(&path, "AssumeRolePolicyDocument");
        let trust_raw = self
            .property(logical_id, "AssumeRolePolicyDocument")
            .ok_or_else(|| {
                self.error(
                    TemplateErrorKind::Structure,
                    &trust_path,
                    Some(logical_id),
                    "missing: a role needs a trust policy",
                )
            })?;
        let trust_policy = self.policy_document(trust_raw, &trust_path)?;

        let mut policies = Vec::new();
        if let Some(inline) = self.property(logical_id, "Policies") {
            let inline_path = join_path(&path, "Policies");
            let items = inline.as_sequence().ok_or_else(|| {
                self.error(
                    TemplateErrorKind::Structure,
                    &inline_path,
                    Some("Policies"),
                    format!("expected a list, found {}", describe(inline)),
                )
            })?;
            for (n, item) in items.iter().enumerate() {
                let item_path = format!("{inline_path}[{n}]");
                let fields = item.as_mapping().ok_or_else(|| {
                    self.error(
                        TemplateErrorKind::Structure,
                        &item_path,
                        Some("Policies"),
                        format!(
                            "expected a mapping with PolicyName and PolicyDocument, found {}",
                            describe(item)
                        ),
                    )
                })?;
                let name = match fields.get("PolicyName") {
                    Some(raw) => match self.resolve(raw, &join_path(&item_path, "PolicyName"))? {
                        Some(Json::String(s)) => s,
                        _ => {
                            return Err(self.error(
                                TemplateErrorKind::Structure,
                                &join_path(&item_path, "PolicyName"),
                                Some("PolicyName"),
                                "expected a string",
                            ))
                        }
                    },
                    None => format!("{logical_id}.Policies[{n}]"),
                };
                let doc_path = join_path(&item_path, "PolicyDocument");
                let raw_doc = fields.get("PolicyDocument").ok_or_else(|| {
                    self.error(
                        TemplateErrorKind::Structure,
                        &doc_path,
                        Some("Policies"),
                        "missing",
                    )
                })?;
                let document = self.policy_document(raw_doc, &doc_path)?;
                policies.push(NamedPolicy {
                    name,
                    source: PolicySource::Inline,
                    document,
                });
            }
        }

        let managed_arns = self.string_list_property(logical_id, "ManagedPolicyArns", &path)?;
        let mut external_managed_policy_arns = Vec::new();
        let mut referenced_managed: BTreeSet<&str> = BTreeSet::new();
        for arn in &managed_arns {
            match managed_by_arn.get(arn) {
                Some(policy_id) => {
                    referenced_managed.insert(policy_id.as_str());
                }
                None => external_managed_policy_arns.push(arn.clone()),
            }
        }

        for (policy_id, role_names) in attachable {
            let named = role_names.iter().any(|n| n == &role_name);
            if !named && !referenced_managed.contains(policy_id.as_str()) {
                continue;
            }
            policies.push(self.attached_policy(policy_id)?);
        }

        Ok(TemplateRole {
            logical_id: logical_id.to_string(),
            role_name,
            generated_name,
            arn,
            trust_policy,
            policies,
            external_managed_policy_arns,
        })
    }

    fn attached_policy(&mut self, policy_id: &str) -> Result<NamedPolicy, TemplateError> {
        let path = format!("Resources.{policy_id}.Properties");
        let resource_type = self
            .resources
            .get(policy_id)
            .map(|r| r.resource_type.clone())
            .unwrap_or_default();
        let (name_field, source) = match resource_type.as_str() {
            "AWS::IAM::ManagedPolicy" => (
                "ManagedPolicyName",
                PolicySource::ManagedPolicy {
                    logical_id: policy_id.to_string(),
                },
            ),
            "AWS::IAM::RolePolicy" => (
                "PolicyName",
                PolicySource::RolePolicy {
                    logical_id: policy_id.to_string(),
                },
            ),
            _ => (
                "PolicyName",
                PolicySource::Policy {
                    logical_id: policy_id.to_string(),
                },
            ),
        };
        let name = self
            .string_property(policy_id, name_field, &path)?
            .unwrap_or_else(|| policy_id.to_string());
        let doc_path = join_path(&path, "PolicyDocument");
        let raw = self.property(policy_id, "PolicyDocument").ok_or_else(|| {
            self.error(
                TemplateErrorKind::Structure,
                &doc_path,
                Some(policy_id),
                "missing",
            )
        })?;
        let document = self.policy_document(raw, &doc_path)?;
        Ok(NamedPolicy {
            name,
            source,
            document,
        })
    }

    /// Resolves a value: intrinsic functions are evaluated, everything else is
    /// converted to JSON. `None` means `AWS::NoValue` (the field is dropped).
    fn resolve(&mut self, value: &Yaml, path: &str) -> Result<Option<Json>, TemplateError> {
        match value {
            Yaml::Null => Ok(Some(Json::Null)),
            Yaml::Bool(b) => Ok(Some(Json::Bool(*b))),
            Yaml::Number(n) => {
                let number = if let Some(i) = n.as_i64() {
                    Some(serde_json::Number::from(i))
                } else if let Some(u) = n.as_u64() {
                    Some(serde_json::Number::from(u))
                } else {
                    n.as_f64().and_then(serde_json::Number::from_f64)
                };
                match number {
                    Some(number) => Ok(Some(Json::Number(number))),
                    None => Err(self.error(
                        TemplateErrorKind::Structure,
                        path,
                        None,
                        format!("{n} is not a finite number"),
                    )),
                }
            }
            Yaml::String(s) => Ok(Some(Json::String(s.clone()))),
            Yaml::Sequence(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (n, item) in items.iter().enumerate() {
                    if let Some(v) = self.resolve(item, &format!("{path}[{n}]"))? {
                        out.push(v);
                    }
                }
                Ok(Some(Json::Array(out)))
            }
            Yaml::Mapping(map) => {
                if map.len() == 1 {
                    if let Some((Yaml::String(key), argument)) = map.iter().next() {
                        if key == "Ref" {
                            return self.function("Ref", argument, path);
                        }
                        if let Some(function) = key.strip_prefix("Fn::") {
                            return self.function(function, argument, path);
                        }
                    }
                }
                let mut out = serde_json::Map::new();
                for (key, item) in map {
                    let Some(key_text) = scalar_text(key) else {
                        return Err(self.error(
                            TemplateErrorKind::Structure,
                            path,
                            None,
                            format!("mapping keys must be strings, found {}", describe(key)),
                        ));
                    };
                    if let Some(v) = self.resolve(item, &join_path(path, &key_text))? {
                        out.insert(key_text, v);
                    }
                }
                Ok(Some(Json::Object(out)))
            }
            Yaml::Tagged(tagged) => {
                let tag = tagged.tag.to_string();
                let name = tag.strip_prefix('!').unwrap_or(&tag).to_string();
                self.function(&name, &tagged.value, path)
            }
        }
    }

    /// Evaluates one intrinsic function given its short name (`Sub`, `Ref`).
    fn function(
        &mut self,
        name: &str,
        argument: &Yaml,
        path: &str,
    ) -> Result<Option<Json>, TemplateError> {
        match name {
            "Ref" => {
                let Some(target) = argument.as_str() else {
                    return Err(self.error(
                        TemplateErrorKind::Structure,
                        path,
                        Some("Ref"),
                        format!("!Ref needs a name, found {}", describe(argument)),
                    ));
                };
                self.reference(target, path)
            }
            "Sub" => self.substitute(argument, path).map(|s| Some(Json::String(s))),
            "GetAtt" => {
                let (resource, attribute) = self.get_att_arguments(argument, path)?;
                self.attribute(&resource, &attribute, path)
                    .map(|s| Some(Json::String(s)))
            }
            "Join" => self.join(argument, path).map(|s| Some(Json::String(s))),
            "If" => {
                let items = match argument.as_sequence() {
                    Some(items) if items.len() == 3 => items,
                    _ => {
                        return Err(self.error(
                            TemplateErrorKind::Structure,
                            path,
                            Some("If"),
                            "Fn::If takes [condition name, value if true, value if false]",
                        ))
                    }
                };
                let Some(name) = items[0].as_str() else {
                    return Err(self.error(
                        TemplateErrorKind::Structure,
                        path,
                        Some("If"),
                        "the first argument of Fn::If is a condition name",
                    ));
                };
                let branch = if self.condition(name, path)? { 1 } else { 2 };
                self.resolve(&items[branch], path)
            }
            known if KNOWN_FUNCTIONS.contains(&known) => Err(self.error(
                TemplateErrorKind::Unsupported,
                path,
                Some(known),
                format!(
                    "the CloudFormation function {known} is not supported here (vpc-auditor resolves Ref, Sub, GetAtt, Join and If)"
                ),
            )),
            unknown => Err(self.error(
                TemplateErrorKind::UnknownTag,
                path,
                Some(unknown),
                format!("unknown function {unknown}"),
            )),
        }
    }

    /// `!Ref name`: a pseudo parameter, a parameter or a resource.
    fn reference(&mut self, target: &str, path: &str) -> Result<Option<Json>, TemplateError> {
        if let Some(pseudo) = target.strip_prefix("AWS::") {
            return match pseudo {
                "NoValue" => Ok(None),
                _ => self.pseudo(pseudo, path).map(|s| Some(Json::String(s))),
            };
        }
        if let Some(declaration) = self.parameters.get(target) {
            return self.parameter(target, declaration, path).map(Some);
        }
        if self.resources.contains_key(target) {
            return self.resource_ref(target).map(|s| Some(Json::String(s)));
        }
        Err(self.error(
            TemplateErrorKind::MissingReference,
            path,
            Some(target),
            format!("{target:?} is neither a parameter nor a resource of this template"),
        ))
    }

    fn pseudo(&self, name: &str, path: &str) -> Result<String, TemplateError> {
        let context = self.context;
        match name {
            "Region" => Ok(context.region.clone()),
            "AccountId" | "AccountID" => Ok(context.account_id.clone()),
            "Partition" => Ok(context.partition.clone()),
            "URLSuffix" => Ok(if context.partition == "aws-cn" {
                "amazonaws.com.cn".to_string()
            } else {
                "amazonaws.com".to_string()
            }),
            other => Err(self.error(
                TemplateErrorKind::Unsupported,
                path,
                Some(&format!("AWS::{other}")),
                format!("pseudo parameter AWS::{other} has no value outside a deployed stack"),
            )),
        }
    }

    fn parameter(&self, name: &str, declaration: &Yaml, path: &str) -> Result<Json, TemplateError> {
        let parameter_type = declaration
            .get("Type")
            .and_then(Yaml::as_str)
            .unwrap_or("String");
        let is_list = parameter_type == "CommaDelimitedList" || parameter_type.starts_with("List<");
        let value = if let Some(value) = self.context.parameters.get(name) {
            value.clone()
        } else if self.context.unknown_parameters.contains(name) {
            unknown_value(name)
        } else if let Some(default) = declaration.get("Default").and_then(scalar_text) {
            default
        } else {
            return Err(self.error(
                TemplateErrorKind::MissingParameter,
                path,
                Some(name),
                format!(
                    "parameter {name} has no value and no Default: give it a value, or mark it unknown"
                ),
            ));
        };
        if is_list {
            Ok(Json::Array(
                value
                    .split(',')
                    .map(|item| Json::String(item.trim().to_string()))
                    .collect(),
            ))
        } else {
            Ok(Json::String(value))
        }
    }

    fn resource_ref(&mut self, logical_id: &str) -> Result<String, TemplateError> {
        let resource_type = self
            .resources
            .get(logical_id)
            .map(|r| r.resource_type.clone())
            .unwrap_or_default();
        let path = format!("Resources.{logical_id}.Properties");
        match resource_type.as_str() {
            "AWS::IAM::Role" => self.role_name(logical_id),
            "AWS::IAM::ManagedPolicy" => self.managed_policy_arn(logical_id, &path),
            "AWS::IAM::InstanceProfile" => {
                self.with_resource(logical_id, "InstanceProfileName", |resolver| {
                    Ok(resolver
                        .string_property(logical_id, "InstanceProfileName", &path)?
                        .unwrap_or_else(|| logical_id.to_string()))
                })
            }
            _ => Ok(logical_id.to_string()),
        }
    }

    fn get_att_arguments(
        &self,
        argument: &Yaml,
        path: &str,
    ) -> Result<(String, String), TemplateError> {
        let parts = match argument {
            Yaml::String(s) => s
                .split_once('.')
                .map(|(r, a)| (r.to_string(), a.to_string())),
            Yaml::Sequence(items) if items.len() == 2 => {
                match (items[0].as_str(), items[1].as_str()) {
                    (Some(r), Some(a)) => Some((r.to_string(), a.to_string())),
                    _ => None,
                }
            }
            _ => None,
        };
        parts
            .filter(|(r, a)| !r.is_empty() && !a.is_empty())
            .ok_or_else(|| {
                self.error(
                    TemplateErrorKind::Structure,
                    path,
                    Some("GetAtt"),
                    "!GetAtt needs \"Resource.Attribute\" or [Resource, Attribute]",
                )
            })
    }

    fn attribute(
        &mut self,
        resource: &str,
        attribute: &str,
        path: &str,
    ) -> Result<String, TemplateError> {
        let Some(resource_type) = self
            .resources
            .get(resource)
            .map(|r| r.resource_type.clone())
        else {
            return Err(self.error(
                TemplateErrorKind::MissingReference,
                path,
                Some(resource),
                format!("!GetAtt names {resource:?}, which is not a resource of this template"),
            ));
        };
        match (resource_type.as_str(), attribute) {
            ("AWS::IAM::Role", "Arn") => self.role_arn(resource),
            ("AWS::IAM::ManagedPolicy", "PolicyArn") => {
                let properties = format!("Resources.{resource}.Properties");
                self.managed_policy_arn(resource, &properties)
            }
            _ => Err(self.error(
                TemplateErrorKind::Unsupported,
                path,
                Some(resource),
                format!(
                    "!GetAtt {resource}.{attribute} ({resource_type}) cannot be resolved before deployment; only a role's Arn and a managed policy's PolicyArn are known"
                ),
            )),
        }
    }

    fn join(&mut self, argument: &Yaml, path: &str) -> Result<String, TemplateError> {
        let malformed = |resolver: &Self| {
            resolver.error(
                TemplateErrorKind::Structure,
                path,
                Some("Join"),
                "!Join needs [delimiter, [values...]]",
            )
        };
        let Some(items) = argument.as_sequence() else {
            return Err(malformed(self));
        };
        let (Some(delimiter), Some(values)) = (items.first().and_then(Yaml::as_str), items.get(1))
        else {
            return Err(malformed(self));
        };
        if items.len() != 2 {
            return Err(malformed(self));
        }
        let delimiter = delimiter.to_string();
        let resolved = self.resolve(values, &format!("{path}[1]"))?;
        let Some(Json::Array(values)) = resolved else {
            return Err(malformed(self));
        };
        let mut parts = Vec::with_capacity(values.len());
        for value in values {
            match value {
                Json::String(s) => parts.push(s),
                Json::Number(n) => parts.push(n.to_string()),
                Json::Bool(b) => parts.push(b.to_string()),
                other => {
                    return Err(self.error(
                        TemplateErrorKind::Structure,
                        path,
                        Some("Join"),
                        format!(
                            "!Join can only join strings, found {}",
                            describe_json(&other)
                        ),
                    ))
                }
            }
        }
        Ok(parts.join(&delimiter))
    }

    /// `!Sub`: the string form, or `[template, {name: value}]`.
    fn substitute(&mut self, argument: &Yaml, path: &str) -> Result<String, TemplateError> {
        let (template, variables) = match argument {
            Yaml::String(s) => (s.as_str(), None),
            Yaml::Sequence(items) if items.len() == 2 => match (&items[0], &items[1]) {
                (Yaml::String(s), Yaml::Mapping(vars)) => (s.as_str(), Some(vars)),
                _ => {
                    return Err(self.error(
                        TemplateErrorKind::Structure,
                        path,
                        Some("Sub"),
                        "!Sub needs a string, or [string, {name: value}]",
                    ))
                }
            },
            other => {
                return Err(self.error(
                    TemplateErrorKind::Structure,
                    path,
                    Some("Sub"),
                    format!(
                        "!Sub needs a string, or [string, {{name: value}}], found {}",
                        describe(other)
                    ),
                ))
            }
        };
        let mut values: BTreeMap<String, String> = BTreeMap::new();
        if let Some(vars) = variables {
            for (key, raw) in vars {
                let Some(name) = key.as_str() else {
                    return Err(self.error(
                        TemplateErrorKind::Structure,
                        path,
                        Some("Sub"),
                        "!Sub variable names must be strings",
                    ));
                };
                let var_path = format!("{path}[1].{name}");
                let value = match self.resolve(raw, &var_path)? {
                    Some(Json::String(s)) => s,
                    Some(Json::Number(n)) => n.to_string(),
                    Some(Json::Bool(b)) => b.to_string(),
                    _ => {
                        return Err(self.error(
                            TemplateErrorKind::Structure,
                            &var_path,
                            Some(name),
                            "a !Sub variable must resolve to a string",
                        ))
                    }
                };
                values.insert(name.to_string(), value);
            }
        }

        let mut out = String::with_capacity(template.len());
        let mut rest = template;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                return Err(self.error(
                    TemplateErrorKind::Structure,
                    path,
                    Some(rest),
                    format!("unterminated ${{ in !Sub string {template:?}"),
                ));
            };
            let name = &after[..end];
            rest = &after[end + 1..];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
                continue;
            }
            let name = name.trim();
            if name.is_empty() {
                return Err(self.error(
                    TemplateErrorKind::Structure,
                    path,
                    Some(template),
                    format!("empty ${{}} in !Sub string {template:?}"),
                ));
            }
            let value = if let Some(v) = values.get(name) {
                v.clone()
            } else {
                self.sub_variable(name, path)?
            };
            out.push_str(&value);
        }
        out.push_str(rest);
        Ok(out)
    }

    /// A `${name}` in `!Sub` without an explicit variable: a pseudo parameter,
    /// a parameter, a resource, or `Resource.Attribute`.
    fn sub_variable(&mut self, name: &str, path: &str) -> Result<String, TemplateError> {
        let is_ref_target = name.starts_with("AWS::")
            || self.parameters.get(name).is_some()
            || self.resources.contains_key(name);
        if !is_ref_target {
            if let Some((resource, attribute)) = name.split_once('.') {
                if self.resources.contains_key(resource) {
                    return self.attribute(resource, attribute, path);
                }
            }
        }
        if name == "AWS::NoValue" {
            return Err(self.error(
                TemplateErrorKind::Structure,
                path,
                Some(name),
                "AWS::NoValue cannot be used inside !Sub",
            ));
        }
        match self.reference(name, path)? {
            Some(Json::String(s)) => Ok(s),
            _ => Err(self.error(
                TemplateErrorKind::Structure,
                path,
                Some(name),
                format!("${{{name}}} is a list and cannot be substituted into a string"),
            )),
        }
    }
}

fn optional_scalar(map: &Mapping, key: &str) -> Option<String> {
    map.get(key).and_then(scalar_text)
}

/// The text of a scalar (string, number or boolean).
fn scalar_text(value: &Yaml) -> Option<String> {
    match value {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn join_path(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn path_or_root(path: &str) -> &str {
    if path.is_empty() {
        "(template)"
    } else {
        path
    }
}

fn describe(value: &Yaml) -> &'static str {
    match value {
        Yaml::Null => "null",
        Yaml::Bool(_) => "a boolean",
        Yaml::Number(_) => "a number",
        Yaml::String(_) => "a string",
        Yaml::Sequence(_) => "a list",
        Yaml::Mapping(_) => "a mapping",
        Yaml::Tagged(_) => "a tagged value",
    }
}

fn describe_json(value: &Json) -> &'static str {
    super::policy::describe(value)
}

/// The 1-based line and column of the first occurrence of `needle` that is
/// not part of a longer name, used to point an error at the template text.
fn locate(text: &str, needle: &str) -> Option<(usize, usize)> {
    if needle.is_empty() {
        return None;
    }
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    let mut search_from = 0;
    while let Some(found) = text.get(search_from..).and_then(|t| t.find(needle)) {
        let start = search_from + found;
        let end = start + needle.len();
        let before = &text[..start];
        let after = &text[end..];
        // `AWS::Region` is one name: `Region` alone must not match inside it.
        let before_ok = !before.ends_with(is_word) && !before.ends_with("::");
        let after_ok = !after.starts_with(is_word) && !after.starts_with("::");
        if before_ok && after_ok {
            let line_start = before.rfind('\n').map_or(0, |i| i + 1);
            let line = before.matches('\n').count() + 1;
            let column = before[line_start..].chars().count() + 1;
            return Some((line, column));
        }
        search_from = end;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iam::grants::{effective_grants, missing, Target};
    use crate::iam::policy::{contains_unknown, Effect, PatternSet, PrincipalScope, Principals};
    use crate::iam::trust::{compare_trust, TrustOptions};

    const VERSIONS: &[&str] = &["0.7", "0.8", "0.9", "0.10", "0.11", "0.12", "0.13"];

    fn context() -> TemplateContext {
        TemplateContext::new("us-east-1", "111122223333")
    }

    fn union_template(version: &str) -> String {
        let path = crate::iam::tests_support::union_template_path(&format!("v{version}"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn read_union(version: &str) -> Template {
        let context = context().with_unknown_parameter("ExternalId");
        read_template(&union_template(version), &context)
            .unwrap_or_else(|e| panic!("v{version}: {e}"))
    }

    fn read_err(text: &str, context: &TemplateContext) -> TemplateError {
        match read_template(text, context) {
            Ok(t) => panic!("expected an error, read {t:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn every_union_template_yields_the_union_ai_admin_role() {
        for version in VERSIONS {
            let template = read_union(version);
            assert_eq!(template.roles.len(), 1, "v{version}");
            let role = template
                .role("union-ai-admin")
                .unwrap_or_else(|| panic!("v{version}"));
            assert_eq!(role.logical_id, "CrossAccountRoleForAWSTrustedAdvisorUnion");
            assert_eq!(role.arn, "arn:aws:iam::111122223333:role/union-ai-admin");
            assert_eq!(template.format_version.as_deref(), Some("2010-09-09"));
            let statement = &role.trust_policy.statements[0];
            assert_eq!(statement.effect, Effect::Allow);
            match &statement.principal {
                Some(PrincipalScope::Only(Principals::Listed(set))) => {
                    assert!(
                        set.iter().any(|p| p.id == "arn:aws:iam::479331373192:root"),
                        "v{version}"
                    );
                }
                other => panic!("v{version}: {other:?}"),
            }
            assert_eq!(role.policies.len(), 1);
            assert_eq!(role.policies[0].name, "UnionIAMPolicy");
            assert_eq!(
                role.policies[0].source,
                PolicySource::Policy {
                    logical_id: "CrossAccountPolicyForAWSTrustedAdvisorUnion".to_string()
                }
            );
            // Every resource was substituted with the context's region and account.
            for s in &role.policies[0].document.statements {
                for r in s
                    .resource
                    .as_ref()
                    .map(PatternSet::patterns)
                    .unwrap_or_default()
                {
                    assert!(!r.contains("${"), "v{version}: {r}");
                    assert!(r == "*" || r.starts_with("arn:aws:"), "v{version}: {r}");
                }
            }
        }
    }

    #[test]
    fn union_v0_13_trust_requires_external_id_and_v0_7_does_not() {
        let v13 = read_union("0.13");
        let trust = &v13.roles[0].trust_policy;
        let clause = trust.statements[0]
            .conditions
            .get("StringEquals", "sts:ExternalId")
            .expect("v0.13 trust has sts:ExternalId");
        assert!(clause.values.iter().all(|v| contains_unknown(v)));

        let v7 = read_union("0.7");
        assert!(v7.roles[0].trust_policy.statements[0].conditions.is_empty());

        // v0.7's trust is what a role without ExternalId has: v0.13 flags it.
        let drifts = compare_trust(trust, &v7.roles[0].trust_policy, &TrustOptions::default());
        assert_eq!(drifts.len(), 1);
        assert!(drifts[0].message().contains("sts:ExternalId"));
    }

    #[test]
    fn external_id_from_context_is_substituted() {
        let context = context().with_parameter("ExternalId", "abcdefgh12");
        let template = read_template(&union_template("0.13"), &context).unwrap();
        let clause = template.roles[0].trust_policy.statements[0]
            .conditions
            .get("StringEquals", "sts:ExternalId")
            .unwrap()
            .clone();
        assert_eq!(clause.values, BTreeSet::from(["abcdefgh12".to_string()]));
    }

    #[test]
    fn external_id_without_value_or_unknown_mark_is_an_error_naming_it() {
        let err = read_err(&union_template("0.13"), &context());
        assert_eq!(err.kind, TemplateErrorKind::MissingParameter);
        assert!(err.message.contains("parameter ExternalId"), "{err}");
        assert!(
            err.path.ends_with(
                "AssumeRolePolicyDocument.Statement[0].Condition.StringEquals.sts:ExternalId"
            ),
            "{err}"
        );
        assert!(err.line.is_some());
    }

    #[test]
    fn role_name_parameter_from_context_overrides_default() {
        let context = context()
            .with_unknown_parameter("ExternalId")
            .with_parameter("CrossAccountRoleName", "OrganizationAccountAccessRole");
        let template = read_template(&union_template("0.13"), &context).unwrap();
        assert_eq!(template.roles[0].role_name, "OrganizationAccountAccessRole");
        assert_eq!(
            template.roles[0].policies.len(),
            1,
            "the Policy's Roles follow the name"
        );
    }

    /// (lower-cased action, resource) pairs of every Allow statement, computed
    /// without the grants module.
    fn plain_pairs(template: &Template) -> BTreeSet<(String, String)> {
        let mut pairs = BTreeSet::new();
        for policy in &template.roles[0].policies {
            for s in &policy.document.statements {
                assert_eq!(s.effect, Effect::Allow);
                let (PatternSet::Only(actions), Some(PatternSet::Only(resources))) =
                    (&s.action, &s.resource)
                else {
                    panic!("union statements are plain Action/Resource lists");
                };
                for a in actions {
                    for r in resources {
                        pairs.insert((a.to_lowercase(), r.clone()));
                    }
                }
            }
        }
        pairs
    }

    fn missing_pairs(expected: &Template, actual: &Template) -> BTreeSet<(String, String)> {
        let docs = |t: &Template| -> Vec<PolicyDocument> {
            t.roles[0]
                .policies
                .iter()
                .map(|p| p.document.clone())
                .collect()
        };
        missing(
            &effective_grants(&docs(expected)),
            &effective_grants(&docs(actual)),
        )
        .into_iter()
        .map(|g| match (g.action, g.resource) {
            (Target::Pattern(a), Target::Pattern(r)) => {
                assert!(g.conditions.is_empty());
                (a, r)
            }
            other => panic!("{other:?}"),
        })
        .collect()
    }

    #[test]
    fn missing_between_v0_12_and_v0_13_equals_plain_set_difference() {
        let v12 = read_union("0.12");
        let v13 = read_union("0.13");
        let independent: BTreeSet<_> = plain_pairs(&v13)
            .difference(&plain_pairs(&v12))
            .cloned()
            .collect();
        assert!(
            plain_pairs(&v13).len() > 300,
            "the comparison is not vacuous"
        );
        assert_eq!(missing_pairs(&v13, &v12), independent);
        let reverse: BTreeSet<_> = plain_pairs(&v12)
            .difference(&plain_pairs(&v13))
            .cloned()
            .collect();
        assert_eq!(missing_pairs(&v12, &v13), reverse);
    }

    #[test]
    fn missing_between_consecutive_union_versions_is_the_set_difference_less_wildcard_coverage() {
        let mut exact_and_nonempty = 0;
        for pair in VERSIONS.windows(2) {
            let (old, new) = (read_union(pair[0]), read_union(pair[1]));
            for (expected, actual) in [(&new, &old), (&old, &new)] {
                let plain: BTreeSet<_> = plain_pairs(expected)
                    .difference(&plain_pairs(actual))
                    .cloned()
                    .collect();
                let reported = missing_pairs(expected, actual);
                assert!(reported.is_subset(&plain), "{pair:?}");
                if reported == plain && !plain.is_empty() {
                    exact_and_nonempty += 1;
                }
                // Whatever set difference finds but `missing` does not must be
                // a pair the actual policy grants through a wildcard.
                for (action, resource) in plain.difference(&reported) {
                    let granted = plain_pairs(actual).iter().any(|(a, r)| {
                        crate::iam::pattern::covers(a, action, true)
                            && crate::iam::pattern::covers(r, resource, false)
                    });
                    assert!(granted, "{pair:?}: {action} on {resource}");
                }
            }
        }
        assert!(
            exact_and_nonempty > 0,
            "some version pairs differ without wildcards"
        );
    }

    #[test]
    fn v0_11_to_v0_12_adds_the_expected_permissions() {
        let missing = missing_pairs(&read_union("0.12"), &read_union("0.11"));
        assert!(missing.contains(&(
            "iam:updateopenidconnectproviderthumbprint".to_string(),
            "arn:aws:iam::111122223333:oidc-provider/*".to_string()
        )));
        assert!(missing.iter().any(|(a, _)| a == "logs:filterlogevents"));
    }

    const MINIMAL: &str = r#"
Parameters:
  Name:
    Type: String
    Default: app
Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      RoleName: !Sub '${Name}-role'
      Path: /svc/
      AssumeRolePolicyDocument:
        Statement:
          - Effect: Allow
            Principal: { Service: ec2.amazonaws.com }
            Action: sts:AssumeRole
      ManagedPolicyArns:
        - !Ref Managed
        - arn:aws:iam::aws:policy/ReadOnlyAccess
      Policies:
        - PolicyName: inline
          PolicyDocument:
            Statement:
              Effect: Allow
              Action: s3:GetObject
              Resource: !Sub
                - 'arn:${AWS::Partition}:s3:::${Bucket}/*'
                - Bucket: !Join ['-', [!Ref Name, data]]
  Managed:
    Type: AWS::IAM::ManagedPolicy
    Properties:
      PolicyDocument:
        Statement:
          - Effect: Allow
            Action: iam:PassRole
            Resource: !GetAtt Role.Arn
  Attached:
    Type: 'AWS::IAM::Policy'
    Properties:
      PolicyName: attached
      Roles: [!Ref Role]
      PolicyDocument:
        Statement:
          - Effect: Allow
            Action: sqs:SendMessage
            Resource: {"Fn::Sub": "arn:aws:sqs:${AWS::Region}:${AWS::AccountID}:q-${!Literal}"}
  Unrelated:
    Type: AWS::IAM::Policy
    Properties:
      PolicyName: other
      Roles: [someone-else]
      PolicyDocument: !If [Cond, {}, {}]
"#;

    #[test]
    fn all_policy_sources_attach_to_the_role() {
        let template = read_template(MINIMAL, &context()).unwrap();
        let role = &template.roles[0];
        assert_eq!(role.role_name, "app-role");
        assert_eq!(role.arn, "arn:aws:iam::111122223333:role/svc/app-role");
        let names: Vec<&str> = role.policies.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, vec!["inline", "Managed", "attached"]);
        assert_eq!(
            role.external_managed_policy_arns,
            vec!["arn:aws:iam::aws:policy/ReadOnlyAccess"]
        );
        let resource = |n: usize| {
            role.policies[n].document.statements[0]
                .resource
                .clone()
                .unwrap()
        };
        assert_eq!(
            resource(0),
            PatternSet::Only(vec!["arn:aws:s3:::app-data/*".into()])
        );
        assert_eq!(
            resource(1),
            PatternSet::Only(vec!["arn:aws:iam::111122223333:role/svc/app-role".into()])
        );
        assert_eq!(
            resource(2),
            PatternSet::Only(vec![
                "arn:aws:sqs:us-east-1:111122223333:q-${Literal}".into()
            ])
        );
    }

    #[test]
    fn json_templates_are_read_too() {
        let json = r#"{"Resources":{"R":{"Type":"AWS::IAM::Role","Properties":{
            "RoleName":{"Fn::Join":["",["a","b"]]},
            "AssumeRolePolicyDocument":{"Statement":[{"Effect":"Allow",
              "Principal":{"AWS":{"Fn::Sub":"arn:aws:iam::${AWS::AccountId}:root"}},"Action":"sts:AssumeRole"}]}}}}}"#;
        let template = read_template(json, &context()).unwrap();
        assert_eq!(template.roles[0].role_name, "ab");
    }

    #[test]
    fn role_without_role_name_is_named_by_logical_id() {
        let text = "Resources:\n  MyRole:\n    Type: AWS::IAM::Role\n    Properties:\n      AssumeRolePolicyDocument:\n        Statement:\n          Effect: Allow\n          Principal: {AWS: '1'}\n          Action: sts:AssumeRole\n";
        let template = read_template(text, &context()).unwrap();
        assert_eq!(template.roles[0].role_name, "MyRole");
    }

    #[test]
    fn unknown_tag_is_an_error_with_line_and_path() {
        let text =
            "Resources:\n  R:\n    Type: AWS::IAM::Role\n    Properties:\n      RoleName: !Foo x\n";
        let err = read_err(text, &context());
        assert_eq!(err.kind, TemplateErrorKind::UnknownTag);
        assert_eq!(err.path, "Resources.R.Properties.RoleName");
        assert_eq!(err.line, Some(5));
        assert_eq!(err.to_string(), "5:17: Resources.R.Properties.RoleName: unknown tag !Foo (not a CloudFormation function)");
    }

    #[test]
    fn unknown_long_form_function_is_an_error() {
        let text = r#"{"Resources":{"R":{"Type":"X","Properties":{"A":{"Fn::Frobnicate":"x"}}}}}"#;
        assert_eq!(
            read_err(text, &context()).kind,
            TemplateErrorKind::UnknownTag
        );
    }

    #[test]
    fn unsupported_function_where_it_must_be_resolved_is_an_error() {
        let text = "Resources:\n  R:\n    Type: AWS::IAM::Role\n    Properties:\n      RoleName: !Select [0, [a]]\n      AssumeRolePolicyDocument: {}\n";
        let err = read_err(text, &context());
        assert_eq!(err.kind, TemplateErrorKind::Unsupported);
        assert!(err.message.contains("Select"), "{err}");
    }

    #[test]
    fn missing_reference_names_the_target_and_path() {
        let text = "Resources:\n  P:\n    Type: AWS::IAM::Policy\n    Properties:\n      Roles: [!Ref Ghost]\n      PolicyDocument: {}\n";
        let err = read_err(text, &context());
        assert_eq!(err.kind, TemplateErrorKind::MissingReference);
        assert_eq!(err.path, "Resources.P.Properties.Roles[0]");
        assert!(err.message.contains("\"Ghost\""), "{err}");
        assert_eq!(err.line, Some(5));

        let text = "Resources:\n  R:\n    Type: AWS::IAM::Role\n    Properties:\n      RoleName: !GetAtt Ghost.Arn\n";
        assert_eq!(
            read_err(text, &context()).kind,
            TemplateErrorKind::MissingReference
        );
        let text = "Resources:\n  R:\n    Type: AWS::IAM::Role\n    Properties:\n      RoleName: !Sub '${Ghost}'\n";
        assert_eq!(
            read_err(text, &context()).kind,
            TemplateErrorKind::MissingReference
        );
    }

    #[test]
    fn cyclic_references_are_an_error() {
        let text = "Resources:\n  A:\n    Type: AWS::IAM::Role\n    Properties:\n      RoleName: !Sub '${B}-a'\n  B:\n    Type: AWS::IAM::Role\n    Properties:\n      RoleName: !Ref A\n";
        let err = read_err(text, &context());
        assert_eq!(err.kind, TemplateErrorKind::CyclicReference);
        assert!(
            err.message
                .contains("A.RoleName -> B.RoleName -> A.RoleName"),
            "{err}"
        );
        let text = "Resources:\n  A:\n    Type: AWS::IAM::Role\n    Properties:\n      RoleName: !GetAtt A.Arn\n";
        assert_eq!(
            read_err(text, &context()).kind,
            TemplateErrorKind::CyclicReference
        );
        let text = "Resources:\n  A:\n    Type: AWS::IAM::Role\n    Properties:\n      Path: !Sub '/${A.Arn}/'\n";
        assert_eq!(
            read_err(text, &context()).kind,
            TemplateErrorKind::CyclicReference
        );
    }

    #[test]
    fn long_reference_chains_stop_without_overflowing() {
        let mut text = String::from("Resources:\n");
        for n in 0..500 {
            text.push_str(&format!(
                "  R{n}:\n    Type: AWS::IAM::Role\n    Properties:\n      RoleName: !Ref R{}\n",
                n + 1
            ));
        }
        text.push_str("  R500:\n    Type: AWS::IAM::Role\n    Properties:\n      RoleName: end\n");
        assert_eq!(
            read_err(&text, &context()).kind,
            TemplateErrorKind::CyclicReference
        );
    }

    #[test]
    fn non_mapping_resources_and_resources_are_errors() {
        let err = read_err("Resources: [a]\n", &context());
        assert_eq!(err.kind, TemplateErrorKind::Structure);
        assert_eq!(
            err.to_string(),
            "1:1: Resources: expected a mapping, found a list"
        );
        assert_eq!(
            read_err("Resources:\n  R: 3\n", &context()).path,
            "Resources.R"
        );
        assert_eq!(read_err("Description: x\n", &context()).path, "Resources");
        assert_eq!(
            read_err("- a\n", &context()).kind,
            TemplateErrorKind::Structure
        );
        assert_eq!(
            read_err("Resources:\n  R: {Properties: {}}\n", &context()).path,
            "Resources.R.Type"
        );
    }

    #[test]
    fn yaml_syntax_error_reports_line_and_column() {
        let err = read_err("Resources:\n  R:\n   Type: x\n  y: [\n", &context());
        assert_eq!(err.kind, TemplateErrorKind::Syntax);
        assert!(err.line.is_some());
        assert!(err.to_string().contains("not valid YAML"), "{err}");
        let err = read_err("a: 1\na: 2\n", &context());
        assert_eq!(err.kind, TemplateErrorKind::Syntax);
    }

    #[test]
    fn policy_errors_carry_the_full_field_path() {
        let text = "Resources:\n  R:\n    Type: AWS::IAM::Role\n    Properties:\n      AssumeRolePolicyDocument:\n        Statement: {Effect: Allow, Principal: {AWS: '1'}, Action: sts:AssumeRole}\n      Policies:\n        - PolicyName: p\n          PolicyDocument:\n            Statement:\n              - {Effect: Allow, Action: s3:GetObject, Resource: '*'}\n              - {Effect: Allow, Action: s3:GetObject, Resource: '*'}\n              - {Sid: x, Effect: Allow, Action: s3:GetObject, Resource: 7}\n";
        let err = read_err(text, &context());
        assert_eq!(err.kind, TemplateErrorKind::Policy);
        assert_eq!(
            err.path,
            "Resources.R.Properties.Policies[0].PolicyDocument.Statement[2].Resource"
        );
        assert!(err.message.contains("found a number"), "{err}");
    }

    #[test]
    fn hostile_inputs_error_without_panicking() {
        let deep = "a: ".to_string() + &"[".repeat(10_000);
        assert!(read_template(&deep, &context()).is_err());
        let laughs = "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n";
        assert!(read_template(laughs, &context()).is_err());
        for text in [
            "", "~", "Resources: ~", "Resources: {R: {Type: AWS::IAM::Role}}",
            "Resources: {R: {Type: AWS::IAM::Role, Properties: {RoleName: !Ref }}}",
            "Resources: {R: {Type: AWS::IAM::Role, Properties: {RoleName: !Sub '${'}}}",
            "Resources: {R: {Type: AWS::IAM::Role, Properties: {RoleName: !Sub '${}'}}}",
            "Resources: {R: {Type: AWS::IAM::Role, Properties: {RoleName: !Sub [1, 2]}}}",
            "Resources: {R: {Type: AWS::IAM::Role, Properties: {RoleName: !GetAtt [R]}}}",
            "Resources: {R: {Type: AWS::IAM::Role, Properties: {RoleName: !Join [',']}}}",
            "Resources: {R: {Type: AWS::IAM::Role, Properties: {RoleName: !Ref AWS::StackName}}}",
            "Resources: {R: {Type: AWS::IAM::Role, Properties: {RoleName: .nan}}}",
            "Resources: {R: {Type: AWS::IAM::Role, Properties: {RoleName: x, Policies: 3, AssumeRolePolicyDocument: {Statement: []}}}}",
            "Resources: {R: {Type: AWS::IAM::Role, Properties: {AssumeRolePolicyDocument: '{not json'}}}",
            "Resources: {R: {Type: AWS::IAM::Role, Properties: {AssumeRolePolicyDocument: {Statement: []}, ManagedPolicyArns: [1, [2]]}}}",
            "Parameters: 3\nResources: {}",
            "Resources: {? [a] : b}",
        ] {
            assert!(read_template(text, &context()).is_err(), "{text}");
        }
    }

    #[test]
    fn no_value_drops_the_field() {
        let text = "Resources:\n  R:\n    Type: AWS::IAM::Role\n    Properties:\n      RoleName: !Ref AWS::NoValue\n      AssumeRolePolicyDocument:\n        Statement: {Effect: Allow, Principal: {AWS: '1'}, Action: sts:AssumeRole, Condition: !Ref AWS::NoValue}\n";
        let template = read_template(text, &context()).unwrap();
        assert_eq!(template.roles[0].role_name, "R");
        assert!(template.roles[0].trust_policy.statements[0]
            .conditions
            .is_empty());
    }

    #[test]
    fn list_parameters_resolve_to_lists() {
        let text = "Parameters:\n  Arns: {Type: CommaDelimitedList, Default: 'arn:aws:iam::1:root, arn:aws:iam::2:root'}\nResources:\n  R:\n    Type: AWS::IAM::Role\n    Properties:\n      AssumeRolePolicyDocument:\n        Statement: {Effect: Allow, Principal: {AWS: !Ref Arns}, Action: sts:AssumeRole}\n";
        let template = read_template(text, &context()).unwrap();
        match &template.roles[0].trust_policy.statements[0].principal {
            Some(PrincipalScope::Only(Principals::Listed(set))) => assert_eq!(set.len(), 2),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn conditions_decide_which_roles_exist_and_if_picks_a_branch() {
        let text = r#"
Parameters:
  Env: {Type: String}
  Region2: {Type: String, Default: ''}
Conditions:
  IsProd: {"Fn::Equals": [{"Ref": Env}, prod]}
  HasSecond: !Not [!Equals [!Ref Region2, '']]
  Both: !And [!Condition IsProd, !Condition HasSecond]
  Either: !Or [!Condition IsProd, !Condition HasSecond]
  Loop: !Not [!Condition Loop]
Resources:
  Always:
    Type: AWS::IAM::Role
    Properties:
      RoleName: !If [Either, !Sub 'r-${Env}', !Ref AWS::NoValue]
      AssumeRolePolicyDocument:
        Statement: {Effect: Allow, Principal: {Service: ec2.amazonaws.com}, Action: sts:AssumeRole}
  ProdAndSecond:
    Type: AWS::IAM::Role
    Condition: Both
    Properties:
      AssumeRolePolicyDocument:
        Statement: {Effect: Allow, Principal: {Service: ec2.amazonaws.com}, Action: sts:AssumeRole}
"#;
        let read = |env: &str, second: &str| {
            read_template(
                text,
                &context()
                    .with_parameter("Env", env)
                    .with_parameter("Region2", second),
            )
            .unwrap()
        };
        let prod = read("prod", "eu-west-1");
        let names: Vec<(&str, bool)> = prod
            .roles
            .iter()
            .map(|r| (r.role_name.as_str(), r.generated_name))
            .collect();
        assert_eq!(names, [("r-prod", false), ("ProdAndSecond", true)]);
        let dev = read("dev", "");
        assert_eq!(dev.roles.len(), 1);
        assert!(dev.roles[0].generated_name, "AWS::NoValue drops RoleName");

        let unknown = read_template(text, &context().with_unknown_parameter("Env"));
        let err = unknown.unwrap_err();
        assert_eq!(err.kind, TemplateErrorKind::MissingParameter, "{err}");

        let looping = text.replace("Condition: Both", "Condition: Loop");
        let err = read_template(&looping, &context().with_parameter("Env", "prod")).unwrap_err();
        assert_eq!(err.kind, TemplateErrorKind::CyclicReference, "{err}");
    }
}
