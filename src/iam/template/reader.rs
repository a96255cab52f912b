//! The template's shape: its parameters, conditions and resources, which
//! roles exist (a resource whose `Condition` is false does not) and which
//! policies name them. Values inside are left to `resolve`.

use std::collections::BTreeMap;

use serde_yaml_ng::{Mapping, Value as Yaml};

use super::error::{locate, TemplateError, TemplateErrorKind};
use super::resolve::{describe, join_path, optional_scalar, path_or_root, scalar_text, Resolver};
use super::{Template, TemplateContext, KNOWN_FUNCTIONS};

/// Holds the source text so errors can be given a line.
pub(super) struct Reader<'t> {
    pub(super) text: &'t str,
}

impl Reader<'_> {
    pub(super) fn error(
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

    pub(super) fn read(
        &self,
        root: &Yaml,
        context: &TemplateContext,
    ) -> Result<Template, TemplateError> {
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
pub(super) struct Resource<'y> {
    pub(super) resource_type: String,
    pub(super) properties: Option<&'y Mapping>,
    /// The name of the template condition that decides whether it is created.
    pub(super) condition: Option<String>,
}
