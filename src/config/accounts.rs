//! The config's multi-account part: which accounts to audit (a list of roles to assume,
//! or an AWS Organization to discover), which regions of each, how many account-regions
//! to scan at once, the per-service rate limits, and this replica's shard.
//!
//! Every value is checked when the config is read, so a typo in a role ARN fails at load
//! with the line, not at 3 a.m. in the middle of a scan.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{count_in_range, RegionName};
use crate::shard::ShardIndex;

/// An IAM role ARN, `arn:<partition>:iam::<12-digit account>:role/<path/>name`.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(try_from = "String", into = "String")]
pub struct RoleArn(pub String);

impl RoleArn {
    /// The account the role is in.
    pub fn account_id(&self) -> &str {
        self.0.split(':').nth(4).unwrap_or_default()
    }

    /// `aws`, `aws-cn` or `aws-us-gov`.
    pub fn partition(&self) -> &str {
        self.0.split(':').nth(1).unwrap_or("aws")
    }
}

impl TryFrom<String> for RoleArn {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        let parts: Vec<&str> = value.splitn(6, ':').collect();
        let ok = parts.len() == 6
            && parts[0] == "arn"
            && parts[1].starts_with("aws")
            && parts[2] == "iam"
            && parts[3].is_empty()
            && is_account_id(parts[4])
            && parts[5]
                .strip_prefix("role/")
                .is_some_and(|name| !name.is_empty() && !name.ends_with('/'));
        if ok {
            Ok(RoleArn(value))
        } else {
            Err(format!(
                "expected an IAM role ARN such as arn:aws:iam::123456789012:role/vpc-auditor, found {value:?}"
            ))
        }
    }
}

// Each checked string is written back as itself.
macro_rules! into_string {
    ($($name:ty),*) => {
        $(impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        })*
    };
}

into_string!(RoleArn, SessionName, ExternalId, AccountId, RoleNamePattern);

/// Whether `value` has a length in `len` and is made of letters, digits and `extra`.
fn made_of(value: &str, len: std::ops::RangeInclusive<usize>, extra: &str) -> bool {
    len.contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
}

/// Whether `s` is a 12-digit AWS account id.
pub fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// An STS role session name: 2 to 64 of letters, digits and `+=,.@-_`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub struct SessionName(pub String);

impl Default for SessionName {
    fn default() -> Self {
        SessionName("vpc-auditor".into())
    }
}

impl TryFrom<String> for SessionName {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        if made_of(&value, 2..=64, "+=,.@-_") {
            Ok(SessionName(value))
        } else {
            Err(format!(
                "a session name is 2 to 64 letters, digits or +=,.@-_ characters, found {value:?}"
            ))
        }
    }
}

/// The regions of an account: a list, or `all` (every region enabled in the account, from
/// DescribeRegions at each scan).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum RegionSelection {
    All(AllRegions),
    #[schemars(extend("minItems" = 1))]
    Named(Vec<RegionName>),
}

/// The word `all`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AllRegions {
    All,
}

impl<'de> Deserialize<'de> for RegionSelection {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Selection;
        impl<'de> serde::de::Visitor<'de> for Selection {
            type Value = RegionSelection;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("`all` or a list of regions such as [us-east-1, eu-west-1]")
            }

            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<RegionSelection, E> {
                match value {
                    "all" => Ok(RegionSelection::All(AllRegions::All)),
                    other => Err(E::custom(format!(
                        "expected `all` or a list of regions such as [us-east-1], found {other:?}"
                    ))),
                }
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<RegionSelection, A::Error> {
                let mut regions = Vec::new();
                while let Some(region) = seq.next_element::<RegionName>()? {
                    regions.push(region);
                }
                if regions.is_empty() {
                    return Err(serde::de::Error::custom(
                        "an empty list audits nothing: name regions, or write `all`",
                    ));
                }
                Ok(RegionSelection::Named(regions))
            }
        }
        d.deserialize_any(Selection)
    }
}

/// One account to audit by assuming a role in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountTarget {
    pub role_arn: RoleArn,
    /// Passed to AssumeRole when the role's trust policy asks for one.
    #[serde(default)]
    pub external_id: Option<ExternalId>,
    #[serde(default)]
    pub session_name: SessionName,
    /// This account's regions; default: the config's `regions`.
    #[serde(default)]
    pub regions: Option<RegionSelection>,
}

/// An STS ExternalId: 2 to 1224 of letters, digits and `+=,.@:/-_`. Kept out of logs.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub struct ExternalId(pub String);

impl std::fmt::Debug for ExternalId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExternalId(<redacted>)")
    }
}

impl TryFrom<String> for ExternalId {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        if made_of(&value, 2..=1224, "+=,.@:/-_") {
            Ok(ExternalId(value))
        } else {
            Err(format!(
                "an ExternalId is 2 to 1224 letters, digits or +=,.@:/-_ characters ({} characters given)",
                value.len()
            ))
        }
    }
}

/// Discovers the accounts of an AWS Organization (ListAccounts, with the auditor's own
/// credentials, in the management or a delegated administrator account) and assumes
/// `role_name` in each ACTIVE one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrganizationsDiscovery {
    /// The role to assume in each account; `{account_id}` is replaced by the account's id,
    /// e.g. `vpc-auditor` or `audit-{account_id}`.
    pub role_name: RoleNamePattern,
    #[serde(default)]
    pub external_id: Option<ExternalId>,
    #[serde(default)]
    pub session_name: SessionName,
    /// Each discovered account's regions; default: the config's `regions`.
    #[serde(default)]
    pub regions: Option<RegionSelection>,
    /// Account ids to leave out (the management account, a sandbox, ...).
    #[serde(default)]
    pub exclude_accounts: Vec<AccountId>,
}

/// A 12-digit account id.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(try_from = "String", into = "String")]
pub struct AccountId(pub String);

impl TryFrom<String> for AccountId {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        if is_account_id(&value) {
            Ok(AccountId(value))
        } else {
            Err(format!("expected a 12-digit account id, found {value:?}"))
        }
    }
}

/// A role name (with an optional path) that may contain `{account_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub struct RoleNamePattern(pub String);

impl RoleNamePattern {
    /// The role's ARN in `account_id` of `partition`.
    pub fn arn(&self, partition: &str, account_id: &str) -> RoleArn {
        RoleArn(format!(
            "arn:{partition}:iam::{account_id}:role/{}",
            self.0.replace("{account_id}", account_id)
        ))
    }
}

impl TryFrom<String> for RoleNamePattern {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        let probe = value.replace("{account_id}", "123456789012");
        let ok = made_of(&probe, 1..=512, "+=,.@-_/")
            && !probe.starts_with('/')
            && !probe.ends_with('/');
        if ok {
            Ok(RoleNamePattern(value))
        } else {
            Err(format!(
                "expected a role name such as vpc-auditor (a path and {{account_id}} are allowed), found {value:?}"
            ))
        }
    }
}

/// How a scan spreads over accounts and regions (`scan:` in the config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScanSettings {
    /// Account-regions collected at once (1 to 256).
    #[serde(
        default = "default_concurrency",
        deserialize_with = "count_in_range::<_, _, 256>"
    )]
    #[schemars(range(min = 1, max = 256))]
    pub concurrency: usize,
    /// Requests per second per service, per account (and region, for EC2).
    #[serde(default)]
    pub rate_limits: RateLimits,
}

fn default_concurrency() -> usize {
    8
}

impl Default for ScanSettings {
    fn default() -> Self {
        ScanSettings {
            concurrency: default_concurrency(),
            rate_limits: RateLimits::default(),
        }
    }
}

/// Client-side request rates, below AWS's own API quotas so scans are not throttled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimits {
    /// EC2, per account and region (AWS: a bucket of 100 Describe calls refilled at 20/s).
    #[serde(default = "RateLimit::ec2")]
    pub ec2: RateLimit,
    /// IAM, per account.
    #[serde(default = "RateLimit::iam")]
    pub iam: RateLimit,
    /// STS (GetCallerIdentity, AssumeRole): one bucket for all of the auditor's STS calls.
    #[serde(default = "RateLimit::sts")]
    pub sts: RateLimit,
    /// Organizations (ListAccounts), per account.
    #[serde(default = "RateLimit::organizations")]
    pub organizations: RateLimit,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            ec2: RateLimit::ec2(),
            iam: RateLimit::iam(),
            sts: RateLimit::sts(),
            organizations: RateLimit::organizations(),
        }
    }
}

/// A token bucket: `per_second` on average, bursts of up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    #[serde(deserialize_with = "positive_rate")]
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub per_second: f64,
    #[serde(deserialize_with = "count_in_range::<_, _, 10000>")]
    #[schemars(range(min = 1, max = 10000))]
    pub burst: u32,
}

impl RateLimit {
    pub const fn new(per_second: f64, burst: u32) -> RateLimit {
        RateLimit { per_second, burst }
    }
    fn ec2() -> RateLimit {
        RateLimit::new(20.0, 100)
    }
    fn iam() -> RateLimit {
        RateLimit::new(10.0, 20)
    }
    fn sts() -> RateLimit {
        RateLimit::new(50.0, 100)
    }
    fn organizations() -> RateLimit {
        RateLimit::new(5.0, 10)
    }
}

fn positive_rate<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let value = f64::deserialize(d)?;
    if value.is_finite() && value > 0.0 && value <= 100_000.0 {
        Ok(value)
    } else {
        Err(serde::de::Error::custom(format!(
            "per_second must be above 0 and at most 100000, found {value}"
        )))
    }
}

/// This replica's share of the accounts (`sharding:` in the config; `--shard` and
/// `--total-shards` override).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShardingSettings {
    /// This replica's shard, 0-based, or `auto` for the StatefulSet pod ordinal.
    #[serde(default = "default_shard")]
    #[schemars(schema_with = "shard_index_schema")]
    pub shard: ShardIndex,
    #[serde(
        default = "default_total_shards",
        deserialize_with = "count_in_range::<_, _, 4096>"
    )]
    #[schemars(range(min = 1, max = 4096))]
    pub total_shards: u32,
}

/// `ShardIndex` reads a number or `auto`, as a YAML number or string.
fn shard_index_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "description": "This replica's shard, 0-based, or `auto` for the StatefulSet pod ordinal.",
        "anyOf": [
            { "type": "integer", "minimum": 0 },
            { "type": "string", "pattern": "^([0-9]+|auto)$" }
        ],
        "default": 0
    })
}

fn default_shard() -> ShardIndex {
    ShardIndex::Fixed(0)
}

fn default_total_shards() -> u32 {
    1
}

impl Default for ShardingSettings {
    fn default() -> Self {
        ShardingSettings {
            shard: default_shard(),
            total_shards: default_total_shards(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_arns_are_checked_and_name_their_account() {
        let arn = RoleArn::try_from("arn:aws:iam::111122223333:role/ops/vpc-auditor".to_string())
            .unwrap();
        assert_eq!(arn.account_id(), "111122223333");
        assert_eq!(arn.partition(), "aws");
        for bad in [
            "arn:aws:iam::1111:role/x",
            "arn:aws:iam::111122223333:user/x",
            "arn:aws:s3:::bucket",
            "arn:aws:iam::111122223333:role/",
            "vpc-auditor",
        ] {
            assert!(RoleArn::try_from(bad.to_string()).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_role_name_pattern_fills_in_the_account() {
        let p = RoleNamePattern::try_from("audit/{account_id}-ro".to_string()).unwrap();
        assert_eq!(
            p.arn("aws", "111122223333").0,
            "arn:aws:iam::111122223333:role/audit/111122223333-ro"
        );
        assert!(RoleNamePattern::try_from("has space".to_string()).is_err());
        assert!(RoleNamePattern::try_from(String::new()).is_err());
    }

    #[test]
    fn session_names_and_external_ids_follow_sts_rules() {
        assert!(SessionName::try_from("a".to_string()).is_err());
        assert!(SessionName::try_from("vpc-auditor@ops".to_string()).is_ok());
        assert!(ExternalId::try_from("x".to_string()).is_err());
        let id = ExternalId::try_from("s3cr3t-value".to_string()).unwrap();
        assert!(!format!("{id:?}").contains("s3cr3t"));
    }
}
