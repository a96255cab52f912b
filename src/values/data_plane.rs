//! The declared data plane (`data_planes:` in the config): what the customer hands the
//! vendor, as the vendor's guide ends: the VPC ID, the public subnet IDs (one per AZ) and
//! the private subnet IDs (one per AZ).
//!
//! A declared VPC is judged on exactly its declared subnets, in their declared roles; its
//! other subnets get no subnet findings and do not count toward the AZ rules. This module
//! owns the section's shape and the checks its types cannot make; the rules that judge a
//! declared data plane live in `rules::data_plane`.

use std::collections::BTreeMap;
use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::input::InputError;

use super::{RegionName, VpcId};

/// A subnet id: `subnet-` followed by letters, digits or dashes (AWS uses hex digits).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String")]
#[schemars(extend("pattern" = "^subnet-[0-9A-Za-z-]+$"))]
pub struct SubnetId(pub String);

impl TryFrom<String> for SubnetId {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        match value.strip_prefix("subnet-") {
            Some(rest)
                if !rest.is_empty()
                    && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') =>
            {
                Ok(SubnetId(value))
            }
            _ => Err(format!(
                "expected a subnet id such as subnet-0abc123, found {value:?}"
            )),
        }
    }
}

/// An AWS account id: twelve digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String")]
#[schemars(extend("pattern" = "^[0-9]{12}$"))]
pub struct DataPlaneAccount(pub String);

impl TryFrom<String> for DataPlaneAccount {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        if value.len() == 12 && value.chars().all(|c| c.is_ascii_digit()) {
            Ok(DataPlaneAccount(value))
        } else {
            Err(format!(
                "expected a 12-digit AWS account id, found {value:?}"
            ))
        }
    }
}

/// One declared data plane.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DataPlane {
    /// Shown in findings, metrics and reports: `union-prod`.
    pub name: String,
    /// The rule pack whose VPC rules apply: `union-byoc`.
    pub pack: String,
    pub region: RegionName,
    /// The account the VPC is in; default: whichever audited account holds it.
    #[serde(default)]
    pub account_id: Option<DataPlaneAccount>,
    pub vpc_id: VpcId,
    /// The public subnets, one per AZ.
    pub public_subnet_ids: Vec<SubnetId>,
    /// The private subnets, one per AZ.
    pub private_subnet_ids: Vec<SubnetId>,
}

impl DataPlane {
    pub fn public_ids(&self) -> Vec<String> {
        self.public_subnet_ids.iter().map(|s| s.0.clone()).collect()
    }

    pub fn private_ids(&self) -> Vec<String> {
        self.private_subnet_ids
            .iter()
            .map(|s| s.0.clone())
            .collect()
    }
}

/// The checks the types cannot make: unique names and VPCs, at least one subnet of each
/// role, no subnet declared twice. Errors name the field (`data_planes[1].vpc_id`); the
/// caller adds the line.
pub fn check(path: &Path, planes: &[DataPlane]) -> Result<(), InputError> {
    let fail = |field: String, message: String| InputError {
        field,
        ..InputError::file(path, message)
    };
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    let mut vpcs: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, plane) in planes.iter().enumerate() {
        let at = |field: &str| format!("data_planes[{i}].{field}");
        if plane.name.trim().is_empty() {
            return Err(fail(at("name"), "a data plane needs a name".into()));
        }
        if let Some(first) = names.insert(plane.name.as_str(), i) {
            return Err(fail(
                at("name"),
                format!(
                    "data plane name {:?} is already used by data_planes[{first}]",
                    plane.name
                ),
            ));
        }
        if let Some(first) = vpcs.insert(plane.vpc_id.0.as_str(), i) {
            return Err(fail(
                at("vpc_id"),
                format!(
                    "{} is already declared by data_planes[{first}]; a VPC holds one data plane",
                    plane.vpc_id.0
                ),
            ));
        }
        for (role, ids) in [
            ("public_subnet_ids", &plane.public_subnet_ids),
            ("private_subnet_ids", &plane.private_subnet_ids),
        ] {
            if ids.is_empty() {
                return Err(fail(
                    at(role),
                    "list at least one subnet (the vendor asks for one per availability zone)"
                        .into(),
                ));
            }
        }
        let mut seen: BTreeMap<&str, String> = BTreeMap::new();
        for (role, ids) in [
            ("public_subnet_ids", &plane.public_subnet_ids),
            ("private_subnet_ids", &plane.private_subnet_ids),
        ] {
            for (j, id) in ids.iter().enumerate() {
                let field = at(&format!("{role}[{j}]"));
                if let Some(first) = seen.insert(id.0.as_str(), field.clone()) {
                    return Err(fail(
                        field,
                        format!("{} is already declared as {first}", id.0),
                    ));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::ConfigFile;

    #[test]
    fn the_issues_shape_parses() {
        let text = "data_planes:\n  - name: union-prod            # shown in findings\n    pack: union-byoc\n    region: us-west-2\n    vpc_id: vpc-0abc\n    public_subnet_ids: [subnet-01, subnet-02, subnet-03]\n    private_subnet_ids: [subnet-0a, subnet-0b, subnet-0c]\n";
        let config = ConfigFile::parse(Path::new("c.yaml"), text).unwrap();
        let plane = &config.data_planes[0];
        assert_eq!(plane.name, "union-prod");
        assert_eq!(plane.vpc_id.0, "vpc-0abc");
        assert_eq!(plane.private_ids(), ["subnet-0a", "subnet-0b", "subnet-0c"]);
        assert!(plane.account_id.is_none());
    }
}
