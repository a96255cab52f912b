//! Resolving values: intrinsic functions (`Ref`, `Sub`, `GetAtt`, `Join`,
//! `If`), template conditions, pseudo parameters and parameters, and the
//! resources' own names and ARNs, with cycle detection.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value as Json;
use serde_yaml_ng::{Mapping, Value as Yaml};

use super::super::policy::{unknown_value, PolicyDocument};
use super::error::{TemplateError, TemplateErrorKind};
use super::reader::{Reader, Resource};
use super::{
    NamedPolicy, PolicySource, TemplateContext, TemplateRole, KNOWN_FUNCTIONS, MAX_REFERENCE_DEPTH,
};

/// Resolves intrinsic functions against the context, parameters and
/// resources, tracking the chain of resources being resolved to catch cycles.
pub(super) struct Resolver<'r, 'y> {
    pub(super) reader: &'r Reader<'r>,
    pub(super) context: &'r TemplateContext,
    pub(super) parameters: &'r Mapping,
    /// The template's `Conditions`.
    pub(super) conditions: &'r Mapping,
    /// Conditions evaluated so far.
    pub(super) condition_values: BTreeMap<String, bool>,
    pub(super) resources: BTreeMap<String, Resource<'y>>,
    pub(super) stack: Vec<String>,
}

impl<'y> Resolver<'_, 'y> {
    pub(super) fn error(
        &self,
        kind: TemplateErrorKind,
        path: &str,
        needle: Option<&str>,
        message: impl Into<String>,
    ) -> TemplateError {
        self.reader.error(kind, path, needle, message)
    }

    /// Whether CloudFormation creates the resource: its `Condition`, if any, holds.
    pub(super) fn is_created(&mut self, logical_id: &str) -> Result<bool, TemplateError> {
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
    pub(super) fn condition(&mut self, name: &str, path: &str) -> Result<bool, TemplateError> {
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
    pub(super) fn condition_expression(
        &mut self,
        value: &Yaml,
        path: &str,
    ) -> Result<bool, TemplateError> {
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
                        .contains(super::super::policy::UNKNOWN_VALUE_PREFIX)
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

    pub(super) fn property(&self, logical_id: &str, name: &str) -> Option<&'y Yaml> {
        self.resources
            .get(logical_id)
            .and_then(|r| r.properties)
            .and_then(|p| p.get(name))
    }

    /// Resolves a property that must be a string, if present.
    pub(super) fn string_property(
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
    pub(super) fn string_list_property(
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
    pub(super) fn policy_document(
        &mut self,
        raw: &Yaml,
        path: &str,
    ) -> Result<PolicyDocument, TemplateError> {
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

    pub(super) fn iam_path(&mut self, logical_id: &str) -> Result<String, TemplateError> {
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

    pub(super) fn role_name(&mut self, logical_id: &str) -> Result<String, TemplateError> {
        self.with_resource(logical_id, "RoleName", |resolver| {
            let path = format!("Resources.{logical_id}.Properties");
            Ok(resolver
                .string_property(logical_id, "RoleName", &path)?
                .unwrap_or_else(|| logical_id.to_string()))
        })
    }

    pub(super) fn role_arn(&mut self, logical_id: &str) -> Result<String, TemplateError> {
        self.with_resource(logical_id, "Arn", |resolver| {
            let name = resolver.role_name(logical_id)?;
            let iam_path = resolver.iam_path(logical_id)?;
            Ok(format!(
                "arn:{}:iam::{}:role{iam_path}{name}",
                resolver.context.partition, resolver.context.account_id
            ))
        })
    }

    pub(super) fn managed_policy_arn(
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
    pub(super) fn with_resource<T>(
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

    pub(super) fn read_role(
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

    pub(super) fn attached_policy(
        &mut self,
        policy_id: &str,
    ) -> Result<NamedPolicy, TemplateError> {
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
    pub(super) fn resolve(
        &mut self,
        value: &Yaml,
        path: &str,
    ) -> Result<Option<Json>, TemplateError> {
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
    pub(super) fn function(
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
    pub(super) fn reference(
        &mut self,
        target: &str,
        path: &str,
    ) -> Result<Option<Json>, TemplateError> {
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

    pub(super) fn pseudo(&self, name: &str, path: &str) -> Result<String, TemplateError> {
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

    pub(super) fn parameter(
        &self,
        name: &str,
        declaration: &Yaml,
        path: &str,
    ) -> Result<Json, TemplateError> {
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

    pub(super) fn resource_ref(&mut self, logical_id: &str) -> Result<String, TemplateError> {
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

    pub(super) fn get_att_arguments(
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

    pub(super) fn attribute(
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

    pub(super) fn join(&mut self, argument: &Yaml, path: &str) -> Result<String, TemplateError> {
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
    pub(super) fn substitute(
        &mut self,
        argument: &Yaml,
        path: &str,
    ) -> Result<String, TemplateError> {
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
    pub(super) fn sub_variable(&mut self, name: &str, path: &str) -> Result<String, TemplateError> {
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

pub(super) fn optional_scalar(map: &Mapping, key: &str) -> Option<String> {
    map.get(key).and_then(scalar_text)
}

/// The text of a scalar (string, number or boolean).
pub(super) fn scalar_text(value: &Yaml) -> Option<String> {
    match value {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub(super) fn join_path(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

pub(super) fn path_or_root(path: &str) -> &str {
    if path.is_empty() {
        "(template)"
    } else {
        path
    }
}

pub(super) fn describe(value: &Yaml) -> &'static str {
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

pub(super) fn describe_json(value: &Json) -> &'static str {
    super::super::policy::describe(value)
}
