//! The config file and the validated settings a run uses.
//!
//! Two stages, as in ripgrep: [`ConfigFile`] is the raw YAML, every field checked by type
//! and unknown keys rejected with a line number; [`Settings`] is what the rest of the
//! program uses, after the command-line flags are applied on top and the rule packs are
//! loaded and merged with the config's overrides.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::finding::Severity;
use crate::input::{self, InputError};
use crate::rules::pack::{self, IamRules, RuleOverrides, RulePack, VpcRules};
use crate::snapshot::Vpc;

/// An AWS region name such as `us-east-1`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String")]
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
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String")]
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

/// An http(s) URL for the AWS endpoint override.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct EndpointUrl(pub String);

impl TryFrom<String> for EndpointUrl {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        let rest = value
            .strip_prefix("http://")
            .or_else(|| value.strip_prefix("https://"));
        match rest {
            Some(host) if !host.is_empty() && !host.contains(char::is_whitespace) => {
                Ok(EndpointUrl(value))
            }
            _ => Err(format!(
                "expected an http:// or https:// URL, found {value:?}"
            )),
        }
    }
}

/// Which VPCs are audited. By default every VPC, the default VPC included.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    /// When non-empty, only these VPCs.
    #[serde(default)]
    pub vpc_ids: Vec<VpcId>,
    /// When non-empty, only VPCs carrying all these tags; the value `*` matches any value.
    #[serde(default)]
    pub vpc_tags: BTreeMap<String, String>,
    /// Leave out each region's default VPC.
    #[serde(default)]
    pub exclude_default_vpc: bool,
}

impl Scope {
    /// Whether `vpc` is audited.
    pub fn includes(&self, vpc: &Vpc) -> bool {
        if self.exclude_default_vpc && vpc.is_default {
            return false;
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

/// Settings for the AWS SDK clients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsSettings {
    /// Sends every AWS call to this URL (e.g. a moto server); `AWS_ENDPOINT_URL` also works.
    #[serde(default)]
    pub endpoint_url: Option<EndpointUrl>,
    /// Attempts per call, the first included.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// How many DescribeVpcAttribute calls run at once.
    #[serde(default = "default_attribute_concurrency")]
    pub vpc_attribute_concurrency: usize,
}

fn default_max_attempts() -> u32 {
    3
}

fn default_attribute_concurrency() -> usize {
    8
}

impl Default for AwsSettings {
    fn default() -> Self {
        AwsSettings {
            endpoint_url: None,
            max_attempts: default_max_attempts(),
            vpc_attribute_concurrency: default_attribute_concurrency(),
        }
    }
}

/// The config file as written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Regions to audit; empty means the SDK's own region (AWS_REGION, the profile).
    #[serde(default)]
    pub regions: Vec<RegionName>,
    /// Rule pack files or folders, relative to the config file; empty means the embedded
    /// `union-byoc` pack.
    #[serde(default)]
    pub rule_packs: Vec<PathBuf>,
    /// Parameter, severity or `enabled` overrides applied to every pack's rules.
    #[serde(default)]
    pub rule_overrides: RuleOverrides,
    #[serde(default)]
    pub scope: Scope,
    #[serde(default)]
    pub aws: AwsSettings,
    /// The lowest severity that makes `--once` exit 1.
    #[serde(default)]
    pub fail_on: Option<Severity>,
}

impl ConfigFile {
    pub fn load(path: &Path) -> Result<ConfigFile, InputError> {
        let config: ConfigFile = input::read_yaml(path)?;
        if config.aws.max_attempts == 0 {
            return Err(InputError {
                field: "aws.max_attempts".into(),
                ..InputError::file(path, "must be at least 1")
            });
        }
        if config.aws.vpc_attribute_concurrency == 0 {
            return Err(InputError {
                field: "aws.vpc_attribute_concurrency".into(),
                ..InputError::file(path, "must be at least 1")
            });
        }
        Ok(config)
    }
}

/// What the command line can override.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub rules: Vec<PathBuf>,
    pub regions: Vec<String>,
    pub endpoint_url: Option<String>,
    pub fail_on: Option<Severity>,
}

/// Everything a run needs, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    pub regions: Vec<String>,
    /// Each pack with the config's overrides already applied.
    pub packs: Vec<RulePack>,
    pub scope: Scope,
    pub aws: AwsSettings,
    pub fail_on: Severity,
}

impl Settings {
    /// Whether any pack expects IAM roles, so IAM must be collected.
    pub fn needs_iam(&self) -> bool {
        self.packs.iter().any(|p| !p.roles.is_empty())
    }

    /// Reads the config (if any), applies the flags, and loads the rule packs.
    pub fn resolve(overrides: &Overrides) -> Result<Settings, InputError> {
        let (file, base_dir) = match &overrides.config {
            Some(path) => (
                ConfigFile::load(path)?,
                path.parent().map(Path::to_path_buf).unwrap_or_default(),
            ),
            None => (ConfigFile::default(), PathBuf::new()),
        };

        let mut regions: Vec<String> = if overrides.regions.is_empty() {
            file.regions.iter().map(|r| r.0.clone()).collect()
        } else {
            let mut out = Vec::new();
            for region in &overrides.regions {
                let name = RegionName::try_from(region.clone())
                    .map_err(|e| InputError::file(Path::new("--region"), e))?;
                out.push(name.0);
            }
            out
        };
        regions.dedup();

        let pack_paths: Vec<PathBuf> = if !overrides.rules.is_empty() {
            overrides.rules.clone()
        } else {
            file.rule_packs.iter().map(|p| base_dir.join(p)).collect()
        };
        let mut loaded: Vec<(PathBuf, RulePack)> = Vec::new();
        if pack_paths.is_empty() {
            loaded.push((
                PathBuf::from("<embedded>/rules/union-byoc.yaml"),
                RulePack::embedded(&pack::read_from_env)?,
            ));
        }
        for path in &pack_paths {
            for pack in RulePack::load_path(path)? {
                loaded.push((path.clone(), pack));
            }
        }
        pack::check_unique_names(&loaded)?;
        let packs = loaded
            .into_iter()
            .map(|(_, mut pack)| {
                pack.vpc_rules = pack
                    .vpc_rules
                    .merged_with(&VpcRules::from(&file.rule_overrides));
                pack.iam_rules = pack
                    .iam_rules
                    .merged_with(&IamRules::from(&file.rule_overrides));
                pack
            })
            .collect();

        let mut aws = file.aws.clone();
        if let Some(url) = &overrides.endpoint_url {
            aws.endpoint_url = Some(
                EndpointUrl::try_from(url.clone())
                    .map_err(|e| InputError::file(Path::new("--endpoint-url"), e))?,
            );
        }

        Ok(Settings {
            regions,
            packs,
            scope: file.scope.clone(),
            aws,
            fail_on: overrides.fail_on.or(file.fail_on).unwrap_or(Severity::Low),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ConfigFile, InputError> {
        input::parse_yaml(Path::new("config.yaml"), text)
    }

    #[test]
    fn full_config_parses() {
        let config = parse(
            "regions: [us-east-1, eu-west-2]\n\
             rule_packs: [rules/]\n\
             rule_overrides:\n  vpc.az_count: {min_azs: 2}\n\
             scope:\n  vpc_ids: [vpc-0abc]\n  vpc_tags: {team: data}\n  exclude_default_vpc: true\n\
             aws:\n  endpoint_url: http://127.0.0.1:5000\n  max_attempts: 5\n\
             fail_on: high\n",
        )
        .unwrap();
        assert_eq!(config.regions[1].0, "eu-west-2");
        assert_eq!(config.rule_overrides.az_count.unwrap().min_azs(), 2);
        assert_eq!(config.fail_on, Some(Severity::High));
    }

    #[test]
    fn unknown_key_is_an_error_with_its_line() {
        let err = parse("regions: [us-east-1]\nscope:\n  exclude_defualt_vpc: true\n").unwrap_err();
        assert_eq!(err.line, Some(3));
        assert!(
            err.message.contains("unknown field `exclude_defualt_vpc`"),
            "{err}"
        );
    }

    #[test]
    fn bad_region_and_bad_vpc_id_name_their_field() {
        let err = parse("regions: [us-east-1, useast1]\n").unwrap_err();
        assert_eq!(err.field, "regions[1]");
        assert!(err.message.contains("useast1"));
        let err = parse("scope:\n  vpc_ids: [subnet-123]\n").unwrap_err();
        assert_eq!(err.field, "scope.vpc_ids[0]");
        assert_eq!(err.line, Some(2));
    }

    #[test]
    fn bad_endpoint_url_is_an_error() {
        let err = parse("aws:\n  endpoint_url: localhost:5000\n").unwrap_err();
        assert_eq!(err.field, "aws.endpoint_url");
    }

    #[test]
    fn scope_selects_by_id_tag_and_default_flag() {
        let mut vpc = Vpc {
            id: "vpc-1".into(),
            ..Default::default()
        };
        vpc.tags.insert("team".into(), "data".into());
        assert!(Scope::default().includes(&vpc));
        let by_tag = Scope {
            vpc_tags: [("team".to_string(), "*".to_string())].into(),
            ..Default::default()
        };
        assert!(by_tag.includes(&vpc));
        let by_other_tag = Scope {
            vpc_tags: [("team".to_string(), "web".to_string())].into(),
            ..Default::default()
        };
        assert!(!by_other_tag.includes(&vpc));
        let by_id = Scope {
            vpc_ids: vec![VpcId("vpc-2".into())],
            ..Default::default()
        };
        assert!(!by_id.includes(&vpc));
        vpc.is_default = true;
        let no_default = Scope {
            exclude_default_vpc: true,
            ..Default::default()
        };
        assert!(!no_default.includes(&vpc));
    }

    #[test]
    fn overrides_from_config_reach_the_packs_and_flags_beat_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        std::fs::write(
            &path,
            "regions: [eu-west-1]\nrule_overrides:\n  vpc.az_count: {min_azs: 2}\nfail_on: high\n",
        )
        .unwrap();
        let settings = Settings::resolve(&Overrides {
            config: Some(path),
            regions: vec!["us-west-2".into()],
            ..Default::default()
        })
        .unwrap();
        assert_eq!(settings.regions, vec!["us-west-2"]);
        assert_eq!(settings.fail_on, Severity::High);
        assert_eq!(
            settings.packs[0]
                .vpc_rules
                .az_count
                .as_ref()
                .unwrap()
                .min_azs(),
            2
        );
    }
}
