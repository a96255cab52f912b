//! Plain validated values that the config, the rule packs, the suppressions and the
//! evaluation share: AWS region names, VPC ids, the audit [`Scope`] and the declared data
//! planes ([`data_plane`]).
//!
//! A leaf of the model: it imports only [`crate::snapshot`] and [`crate::input`], so the
//! config (which reads packs and suppressions) and the rules (which read the scope) can
//! both use these without importing each other.

pub mod data_plane;
pub mod pins;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::snapshot::Vpc;

/// An AWS region name such as `us-east-1`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String")]
#[schemars(extend("pattern" = "^[a-z]+(-[a-z]+)+-[0-9]+$"))]
pub struct RegionName(pub String);

impl TryFrom<String> for RegionName {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        let parts: Vec<&str> = value.split('-').collect();
        let ok = parts.len() >= 3
            && parts[..parts.len() - 1]
                .iter()
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
            && parts
                .last()
                .is_some_and(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
        if ok {
            Ok(RegionName(value))
        } else {
            Err(format!(
                "expected an AWS region name such as us-east-1, found {value:?}"
            ))
        }
    }
}

/// A VPC id, `vpc-` followed by hex digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String")]
#[schemars(extend("pattern" = "^vpc-[0-9a-fA-F]+$"))]
pub struct VpcId(pub String);

impl TryFrom<String> for VpcId {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        match value.strip_prefix("vpc-") {
            Some(rest) if !rest.is_empty() && rest.chars().all(|c| c.is_ascii_hexdigit()) => {
                Ok(VpcId(value))
            }
            _ => Err(format!(
                "expected a VPC id such as vpc-0abc123, found {value:?}"
            )),
        }
    }
}

/// Which VPCs are audited. By default every VPC except each region's default VPC, which
/// the reports list as skipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    /// When non-empty, only these VPCs.
    #[serde(default)]
    pub vpc_ids: Vec<VpcId>,
    /// When non-empty, only VPCs carrying all these tags; the value `*` matches any value.
    #[serde(default)]
    pub vpc_tags: BTreeMap<String, String>,
    /// Leave out each region's default VPC (the default). The reports list it as skipped.
    /// Set `false` to audit it; naming it in `vpc_ids` or declaring it as a data plane
    /// audits it too.
    #[serde(default = "exclude_default_vpc_default")]
    pub exclude_default_vpc: bool,
    /// The config's declared data planes (`data_planes:`, not a `scope:` key): their VPCs
    /// are always audited, each on its declared subnets.
    #[serde(skip)]
    pub data_planes: Vec<data_plane::DataPlane>,
    /// The pins of pinned roles, read by the scan from `pin_state_file` (not a `scope:`
    /// key).
    #[serde(skip)]
    pub pins: pins::PinSet,
}

fn exclude_default_vpc_default() -> bool {
    true
}

impl Default for Scope {
    fn default() -> Self {
        Scope {
            vpc_ids: Vec::new(),
            vpc_tags: BTreeMap::new(),
            exclude_default_vpc: exclude_default_vpc_default(),
            data_planes: Vec::new(),
            pins: pins::PinSet::default(),
        }
    }
}

/// Why a default VPC is not audited, as the reports show it.
pub const DEFAULT_VPC_SKIPPED: &str =
    "default VPC, not audited (set scope.exclude_default_vpc: false to audit it)";

impl Scope {
    /// Whether `vpc` is audited.
    pub fn includes(&self, vpc: &Vpc) -> bool {
        self.skips_default(vpc).is_none() && self.selects(vpc)
    }

    /// Why `vpc` is skipped for being its region's default VPC, when it is: the config did
    /// not ask for it (by `exclude_default_vpc: false`, by id in `vpc_ids`, or as a declared
    /// data plane). The reports list such a VPC as skipped.
    pub fn skips_default(&self, vpc: &Vpc) -> Option<&'static str> {
        let asked = self.data_planes.iter().any(|p| p.vpc_id.0 == vpc.id)
            || self.vpc_ids.iter().any(|id| id.0 == vpc.id);
        (vpc.is_default && self.exclude_default_vpc && !asked).then_some(DEFAULT_VPC_SKIPPED)
    }

    /// Whether `vpc` passes the id and tag selectors (declared data planes always do).
    fn selects(&self, vpc: &Vpc) -> bool {
        if self.data_planes.iter().any(|p| p.vpc_id.0 == vpc.id) {
            return true;
        }
        if !self.vpc_ids.is_empty() && !self.vpc_ids.iter().any(|id| id.0 == vpc.id) {
            return false;
        }
        self.vpc_tags.iter().all(|(key, want)| {
            vpc.tags
                .get(key)
                .is_some_and(|have| want == "*" || have == want)
        })
    }
}
