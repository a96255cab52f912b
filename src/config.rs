//! The config file and the validated settings a run uses.
//!
//! Two stages, as in ripgrep: [`ConfigFile`] is the raw YAML, every field checked by type
//! and unknown keys rejected with a line number; [`Settings`] is what the rest of the
//! program uses, after the command-line flags are applied on top and the rule packs are
//! loaded and merged with the config's overrides.
//!
//! Layer: the one module that reads the settings. It uses `rules::pack` to read rule packs
//! and `suppress` to read suppressions; the rest of the program uses what it returns, and
//! neither packs nor evaluation import it. The validated values it shares with them
//! (`RegionName`, `VpcId`, `Scope`) live in `values` and are re-exported here.

pub mod accounts;
pub mod events;
pub use crate::values::data_plane;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::finding::Severity;
use crate::input::{self, InputError, ValidatedStr};
use crate::rules::pack::{self, IamRules, RoleRules, RuleOverrides, RulePack, VpcRules};
use crate::shard::{Shard, ShardIndex};
use crate::suppress::{Suppression, SuppressionsFile};
pub use crate::values::{RegionName, Scope, VpcId};
use accounts::{AccountTarget, OrganizationsDiscovery, ScanSettings, ShardingSettings};

/// An http(s) URL for the AWS endpoint override.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
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

/// A daemon scan schedule: a cron expression in tokio-cron-scheduler's six-field format,
/// seconds first (`sec min hour day-of-month month day-of-week`), evaluated in UTC.
///
/// Validated with the same parser the scheduler uses, so a schedule that loads is one the
/// daemon can run, and a bad one is reported with the config's file, line and field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CronSchedule(pub String);

impl CronSchedule {
    /// Every 5 minutes, at second 0.
    pub const DEFAULT: &'static str = "0 */5 * * * *";
}

impl Default for CronSchedule {
    fn default() -> Self {
        CronSchedule(CronSchedule::DEFAULT.to_string())
    }
}

impl TryFrom<String> for CronSchedule {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        let expected = "expected a cron schedule of six fields, seconds first, \
                        such as \"0 */5 * * * *\" (every 5 minutes)";
        let cron = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Required)
            .dom_and_dow(true)
            .build()
            .parse(value.trim())
            .map_err(|e| format!("{expected}, found {value:?}: {e}"))?;
        // A pattern such as "0 0 0 30 2 *" parses but never fires.
        cron.find_next_occurrence(&chrono::Utc::now(), false)
            .map_err(|_| format!("{expected}, found {value:?}, which never fires"))?;
        Ok(CronSchedule(value.trim().to_string()))
    }
}

/// The address the daemon's HTTP listener binds, an IP address and a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ListenAddr(pub SocketAddr);

impl Default for ListenAddr {
    fn default() -> Self {
        ListenAddr(SocketAddr::from(([0, 0, 0, 0], 9917)))
    }
}

impl TryFrom<String> for ListenAddr {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.trim().parse().map(ListenAddr).map_err(|_| {
            format!("expected an IP address and port such as 0.0.0.0:9917 or [::1]:9917, found {value:?}")
        })
    }
}

impl JsonSchema for CronSchedule {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "CronSchedule".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A cron schedule of six fields, seconds first, in UTC, such as \"0 */5 * * * *\" (every 5 minutes).",
            "type": "string",
            "examples": [CronSchedule::DEFAULT]
        })
    }
}

impl JsonSchema for ListenAddr {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ListenAddr".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "An IP address and port such as 0.0.0.0:9917 or [::1]:9917.",
            "type": "string",
            "examples": ["0.0.0.0:9917"]
        })
    }
}

impl JsonSchema for ConfigDuration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ConfigDuration".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A length of time with its unit: 300ms, 30s or 2m; more than zero and at most an hour.",
            "type": "string",
            "pattern": "^\\s*[0-9]+(ms|s|m)\\s*$"
        })
    }
}

impl<'de> Deserialize<'de> for CronSchedule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(ValidatedStr(std::marker::PhantomData))
    }
}

impl<'de> Deserialize<'de> for ListenAddr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(ValidatedStr(std::marker::PhantomData))
    }
}

/// What the daemon exports on `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    /// Export one series per finding (`vpc_auditor_finding`) and per subnet
    /// (`vpc_auditor_subnet_*`). Turn off for very large accounts: the per-rule summaries
    /// stay, with a number of series that does not grow with the account.
    #[serde(default = "default_true")]
    pub per_resource_series: bool,
}

fn default_true() -> bool {
    true
}

impl Default for MetricsSettings {
    fn default() -> Self {
        MetricsSettings {
            per_resource_series: true,
        }
    }
}

/// Which of the daemon's optional endpoints are served; a turned-off one answers 404.
/// `/metrics`, `/healthz` and `/readyz` are always served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointSettings {
    /// `/findings`, the merged report as JSON.
    #[serde(default = "default_true")]
    pub findings: bool,
    /// `/`, the HTML status page.
    #[serde(default = "default_true")]
    pub status_page: bool,
}

impl Default for EndpointSettings {
    fn default() -> Self {
        EndpointSettings {
            findings: true,
            status_page: true,
        }
    }
}

/// Settings that only the daemon (no `--once`) reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DaemonSettings {
    pub schedule: CronSchedule,
    pub listen: ListenAddr,
    pub metrics: MetricsSettings,
    pub endpoints: EndpointSettings,
    /// The listener's TLS and basic-auth file (`web_config::WebConfig`); `None` is plain
    /// HTTP without auth.
    pub web_config_file: Option<PathBuf>,
    /// Event-driven re-scans from an SQS queue; `None`: the schedule only.
    pub events: Option<events::EventsSettings>,
}

/// How the SDK retries a failed call (`aws.retry_mode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RetryMode {
    /// Exponential backoff with jitter, and a retry quota that stops retrying when most
    /// calls fail.
    #[default]
    Standard,
    /// `standard`, plus a client-side rate limiter that slows every call down after
    /// throttling errors.
    Adaptive,
}

/// A length of time written with its unit: `300ms`, `30s` or `2m`; more than zero and at
/// most an hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ConfigDuration(pub std::time::Duration);

impl ConfigDuration {
    const fn millis(ms: u64) -> ConfigDuration {
        ConfigDuration(std::time::Duration::from_millis(ms))
    }
}

impl std::fmt::Display for ConfigDuration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = self.0.as_millis();
        if ms % 60_000 == 0 {
            write!(f, "{}m", ms / 60_000)
        } else if ms % 1000 == 0 {
            write!(f, "{}s", ms / 1000)
        } else {
            write!(f, "{ms}ms")
        }
    }
}

impl TryFrom<String> for ConfigDuration {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        let expected = || format!("expected a duration such as 300ms, 30s or 2m, found {value:?}");
        let text = value.trim();
        let digits = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(digits);
        let number: u64 = number.parse().map_err(|_| expected())?;
        let unit_ms = match unit {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            _ => return Err(expected()),
        };
        let ms = number.checked_mul(unit_ms).ok_or_else(expected)?;
        if ms == 0 || ms > 3_600_000 {
            return Err(format!(
                "{value:?} is out of range: a duration must be more than 0 and at most 1 hour"
            ));
        }
        Ok(ConfigDuration::millis(ms))
    }
}

impl Serialize for ConfigDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(ValidatedStr(std::marker::PhantomData))
    }
}

/// Deserializes a whole number of at least 1 and at most `MAX`, checked inside the visit so
/// the error carries the value's own line and column.
struct CountInRange<const MAX: u64>;

impl<const MAX: u64> serde::de::Visitor<'_> for CountInRange<MAX> {
    type Value = u64;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "a whole number from 1 to {MAX}")
    }

    fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<u64, E> {
        if (1..=MAX).contains(&value) {
            Ok(value)
        } else {
            Err(E::custom(format!("must be from 1 to {MAX}, found {value}")))
        }
    }

    fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<u64, E> {
        match u64::try_from(value) {
            Ok(value) => self.visit_u64(value),
            Err(_) => Err(E::custom(format!("must be from 1 to {MAX}, found {value}"))),
        }
    }
}

fn count_in_range<'de, D, T, const MAX: u64>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<u64>,
{
    let value = d.deserialize_u64(CountInRange::<MAX>)?;
    T::try_from(value).map_err(|_| serde::de::Error::custom(format!("{value} is too large")))
}

/// Settings for the AWS SDK clients: where they connect, how they retry, and how long they
/// wait. Every call is retried up to `max_attempts` times on throttling, 5xx answers,
/// connection errors, timeouts and unreadable answers; a call that still fails fails its
/// region (see docs/failure-semantics.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AwsSettings {
    /// Sends every AWS call to this URL (e.g. a moto server); `AWS_ENDPOINT_URL` also works.
    #[serde(default)]
    pub endpoint_url: Option<EndpointUrl>,
    /// Attempts per call, the first included (1 to 20).
    #[serde(
        default = "default_max_attempts",
        deserialize_with = "count_in_range::<_, _, 20>"
    )]
    #[schemars(range(min = 1, max = 20))]
    pub max_attempts: u32,
    /// `standard` or `adaptive` (which also rate-limits calls after throttling).
    #[serde(default)]
    pub retry_mode: RetryMode,
    /// The backoff before the first retry; it doubles per retry (with jitter) up to
    /// `retry_max_backoff`.
    #[serde(default = "default_retry_initial_backoff")]
    pub retry_initial_backoff: ConfigDuration,
    #[serde(default = "default_retry_max_backoff")]
    pub retry_max_backoff: ConfigDuration,
    /// How long one attempt of a call may take; a slower attempt is abandoned and retried.
    #[serde(default = "default_attempt_timeout")]
    pub attempt_timeout: ConfigDuration,
    /// How long a call may take with all its attempts and backoffs.
    #[serde(default = "default_operation_timeout")]
    pub operation_timeout: ConfigDuration,
    /// How long opening a connection may take.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: ConfigDuration,
    /// Pages one paginated call may take before the region fails: a pagination token
    /// that never ends is an error, not an endless scan (1 to 100000).
    #[serde(
        default = "default_max_pages",
        deserialize_with = "count_in_range::<_, _, 100000>"
    )]
    #[schemars(range(min = 1, max = 100000))]
    pub max_pages: u32,
    /// How many DescribeVpcAttribute calls run at once (1 to 64).
    #[serde(
        default = "default_attribute_concurrency",
        deserialize_with = "count_in_range::<_, _, 64>"
    )]
    #[schemars(range(min = 1, max = 64))]
    pub vpc_attribute_concurrency: usize,
}

fn default_max_attempts() -> u32 {
    3
}

fn default_retry_initial_backoff() -> ConfigDuration {
    ConfigDuration::millis(1000)
}

fn default_retry_max_backoff() -> ConfigDuration {
    ConfigDuration::millis(20_000)
}

fn default_attempt_timeout() -> ConfigDuration {
    ConfigDuration::millis(30_000)
}

fn default_operation_timeout() -> ConfigDuration {
    ConfigDuration::millis(120_000)
}

fn default_connect_timeout() -> ConfigDuration {
    ConfigDuration::millis(5000)
}

fn default_max_pages() -> u32 {
    1000
}

fn default_attribute_concurrency() -> usize {
    8
}

impl Default for AwsSettings {
    fn default() -> Self {
        AwsSettings {
            endpoint_url: None,
            max_attempts: default_max_attempts(),
            retry_mode: RetryMode::default(),
            retry_initial_backoff: default_retry_initial_backoff(),
            retry_max_backoff: default_retry_max_backoff(),
            attempt_timeout: default_attempt_timeout(),
            operation_timeout: default_operation_timeout(),
            connect_timeout: default_connect_timeout(),
            max_pages: default_max_pages(),
            vpc_attribute_concurrency: default_attribute_concurrency(),
        }
    }
}

impl AwsSettings {
    /// Checks the settings against each other; each value alone was checked when it was
    /// read. Returns the offending key (under `aws.`) and why.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if self.attempt_timeout > self.operation_timeout {
            return Err((
                "attempt_timeout",
                format!(
                    "{} is longer than operation_timeout ({}), so no retry could ever run",
                    self.attempt_timeout, self.operation_timeout
                ),
            ));
        }
        if self.retry_initial_backoff > self.retry_max_backoff {
            return Err((
                "retry_initial_backoff",
                format!(
                    "{} is longer than retry_max_backoff ({})",
                    self.retry_initial_backoff, self.retry_max_backoff
                ),
            ));
        }
        Ok(())
    }
}

/// The config file as written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
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
    /// Daemon: when to scan (six-field cron, seconds first); default every 5 minutes.
    #[serde(default)]
    pub schedule: Option<CronSchedule>,
    /// Daemon: the HTTP listener's address; default `0.0.0.0:9917`.
    #[serde(default)]
    pub listen: Option<ListenAddr>,
    /// Daemon: what `/metrics` exports.
    #[serde(default)]
    pub metrics: MetricsSettings,
    /// Daemon: turns `/findings` or the `/` status page off.
    #[serde(default)]
    pub endpoints: EndpointSettings,
    /// Daemon: TLS and basic auth for the listener, in the Prometheus exporters' web
    /// config format; relative to the config file.
    #[serde(default)]
    pub web_config_file: Option<PathBuf>,
    /// Daemon: re-scan an account and region when EventBridge puts a CloudTrail change
    /// event for it on this SQS queue (see docs/events.md).
    #[serde(default)]
    pub events: Option<events::EventsSettings>,
    /// Accepted risks: findings reported as suppressed until each one's `expires` date.
    #[serde(default)]
    pub suppressions: Vec<Suppression>,
    /// A file of more suppressions (`suppressions:` and a list), relative to the config.
    #[serde(default)]
    pub suppressions_file: Option<PathBuf>,
    /// Accounts to audit through a role each; empty (and no `organizations`) means the
    /// account of the auditor's own credentials.
    #[serde(default)]
    pub accounts: Vec<AccountTarget>,
    /// Discover the accounts of an AWS Organization and audit each through a role.
    #[serde(default)]
    pub organizations: Option<OrganizationsDiscovery>,
    /// Concurrency and per-service rate limits.
    #[serde(default)]
    pub scan: ScanSettings,
    /// This replica's share of the accounts.
    #[serde(default)]
    pub sharding: ShardingSettings,
    /// Declared data planes: a VPC and its public and private subnet ids, judged on
    /// exactly those subnets.
    #[serde(default)]
    pub data_planes: Vec<data_plane::DataPlane>,
    /// Where the pins of pinned roles (`iam.pinned_role_drift`) persist, relative to the
    /// config. A missing file is created; an unreadable one fails the scan.
    #[serde(default)]
    pub pin_state_file: Option<PathBuf>,
}

impl ConfigFile {
    pub fn load(path: &Path) -> Result<ConfigFile, InputError> {
        let text = input::read_text(path)?;
        ConfigFile::parse(path, &text)
    }

    /// Parses the config's `text`, read from `path`, and checks its values against each
    /// other; errors found after parsing name the line of the field they are about.
    pub fn parse(path: &Path, text: &str) -> Result<ConfigFile, InputError> {
        let config: ConfigFile = input::parse_yaml(path, text)?;
        ConfigFile::check(path, config).map_err(|e| e.located_in(text))
    }

    /// The checks a value's type cannot make; errors name the field (the caller adds the line).
    fn check(path: &Path, config: ConfigFile) -> Result<ConfigFile, InputError> {
        if let Err((key, message)) = config.aws.check() {
            return Err(InputError {
                field: format!("aws.{key}"),
                ..InputError::file(path, message)
            });
        }
        data_plane::check(path, &config.data_planes)?;
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
    pub schedule: Option<String>,
    pub listen: Option<String>,
    /// A suppressions file; replaces the config's `suppressions_file`.
    pub suppressions: Option<PathBuf>,
    /// The daemon's web config file; replaces the config's `web_config_file`.
    pub web_config_file: Option<PathBuf>,
    /// `--shard`; replaces `sharding.shard`.
    pub shard: Option<ShardIndex>,
    /// `--total-shards`; replaces `sharding.total_shards`.
    pub total_shards: Option<u32>,
    /// `--repin`: pinned roles (ARN, name or `all`) whose pins are replaced by their
    /// current state.
    pub repin: Vec<String>,
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
    pub daemon: DaemonSettings,
    /// The config's suppressions, then the suppressions file's.
    pub suppressions: Vec<Suppression>,
    /// Accounts to audit through roles (empty with no `organizations`: the own account).
    pub accounts: Vec<AccountTarget>,
    pub organizations: Option<OrganizationsDiscovery>,
    pub scan: ScanSettings,
    /// This replica's shard of the accounts.
    pub shard: Shard,
    /// The pin state file of pinned roles (`pin_state_file`, resolved against the config).
    pub pin_state_file: Option<PathBuf>,
    /// Pinned roles to re-pin (`--repin`).
    pub repin: Vec<String>,
}

impl Settings {
    /// Whether any pack expects IAM roles or checks the secrets roles grant, so IAM must be
    /// collected.
    pub fn needs_iam(&self) -> bool {
        self.packs
            .iter()
            .any(|p| !p.roles.is_empty() || p.secrets_manager.is_some())
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
        for (index, path) in pack_paths.iter().enumerate() {
            let packs = RulePack::load_path(path).map_err(|e| {
                // A pack the config names that is not there: name the config's field.
                match &overrides.config {
                    Some(config) if overrides.rules.is_empty() && !path.exists() => InputError {
                        field: format!("rule_packs[{index}]"),
                        ..InputError::file(config, format!("{}: {}", path.display(), e.message))
                    }
                    .located_in(&input::read_text(config).unwrap_or_default()),
                    _ => e,
                }
            })?;
            for pack in packs {
                loaded.push((path.clone(), pack));
            }
        }
        pack::check_unique_names(&loaded)?;
        let config_path = overrides.config.clone().unwrap_or_default();
        let packs: Vec<RulePack> = loaded
            .into_iter()
            .map(|(_, mut pack)| {
                pack.role_rules = pack
                    .role_rules
                    .merged_with(&RoleRules::from(&file.rule_overrides));
                crate::rules::role_checks::apply_switches(&mut pack, &config_path)?;
                pack.vpc_rules = pack
                    .vpc_rules
                    .merged_with(&VpcRules::from(&file.rule_overrides));
                pack.iam_rules = pack
                    .iam_rules
                    .merged_with(&IamRules::from(&file.rule_overrides));
                Ok(pack)
            })
            .collect::<Result<_, InputError>>()?;

        let mut aws = file.aws.clone();
        if let Some(url) = &overrides.endpoint_url {
            aws.endpoint_url = Some(
                EndpointUrl::try_from(url.clone())
                    .map_err(|e| InputError::file(Path::new("--endpoint-url"), e))?,
            );
        }

        let daemon = DaemonSettings {
            schedule: match &overrides.schedule {
                Some(flag) => CronSchedule::try_from(flag.clone())
                    .map_err(|e| InputError::file(Path::new("--schedule"), e))?,
                None => file.schedule.clone().unwrap_or_default(),
            },
            listen: match &overrides.listen {
                Some(flag) => ListenAddr::try_from(flag.clone())
                    .map_err(|e| InputError::file(Path::new("--listen"), e))?,
                None => file.listen.unwrap_or_default(),
            },
            metrics: file.metrics.clone(),
            endpoints: file.endpoints.clone(),
            web_config_file: overrides
                .web_config_file
                .clone()
                .or_else(|| file.web_config_file.as_ref().map(|p| base_dir.join(p))),
            events: file.events.clone(),
        };

        let mut suppressions = file.suppressions.clone();
        let suppressions_file = overrides
            .suppressions
            .clone()
            .or_else(|| file.suppressions_file.as_ref().map(|p| base_dir.join(p)));
        if let Some(path) = &suppressions_file {
            suppressions.extend(SuppressionsFile::load(path)?);
        }

        let shard = resolve_shard(overrides, &file, overrides.config.as_deref())?;

        // A data plane names the pack whose VPC rules apply: it must be loaded.
        for (i, plane) in file.data_planes.iter().enumerate() {
            if !packs.iter().any(|p| p.name == plane.pack) {
                let loaded: Vec<&str> = packs.iter().map(|p| p.name.as_str()).collect();
                let config = overrides.config.clone().unwrap_or_default();
                return Err(InputError {
                    field: format!("data_planes[{i}].pack"),
                    ..InputError::file(
                        &config,
                        format!(
                            "no loaded rule pack is named {:?} (loaded: {})",
                            plane.pack,
                            loaded.join(", ")
                        ),
                    )
                }
                .located_in(&input::read_text(&config).unwrap_or_default()));
            }
        }
        let mut scope = file.scope.clone();
        scope.data_planes = file.data_planes.clone();

        Ok(Settings {
            regions,
            packs,
            scope,
            aws,
            fail_on: overrides.fail_on.or(file.fail_on).unwrap_or(Severity::Low),
            daemon,
            suppressions,
            accounts: file.accounts.clone(),
            organizations: file.organizations.clone(),
            scan: file.scan.clone(),
            shard,
            pin_state_file: file.pin_state_file.as_ref().map(|p| base_dir.join(p)),
            repin: overrides.repin.clone(),
        })
    }
}

/// This replica's shard: the flags over the config, `auto` read from the pod's name.
fn resolve_shard(
    overrides: &Overrides,
    file: &ConfigFile,
    config: Option<&Path>,
) -> Result<Shard, InputError> {
    let (source, field) = match (overrides.shard, config) {
        (Some(_), _) | (None, None) => (PathBuf::from("--shard"), String::new()),
        (None, Some(path)) => (path.to_path_buf(), "sharding.shard".to_string()),
    };
    let fail = |message: String| {
        let err = InputError {
            field: field.clone(),
            ..InputError::file(&source, message)
        };
        match config.filter(|_| !field.is_empty()) {
            Some(path) => err.located_in(&input::read_text(path).unwrap_or_default()),
            None => err,
        }
    };
    let pod_name = std::env::var("POD_NAME")
        .ok()
        .filter(|n| !n.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok());
    let index = overrides
        .shard
        .unwrap_or(file.sharding.shard)
        .resolve(pod_name.as_deref())
        .map_err(fail)?;
    let total = overrides.total_shards.unwrap_or(file.sharding.total_shards);
    Shard::new(index, total).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::Vpc;
    use std::time::Duration;

    fn parse(text: &str) -> Result<ConfigFile, InputError> {
        ConfigFile::parse(Path::new("config.yaml"), text)
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
    fn retry_and_timeout_keys_parse_and_default_sensibly() {
        let config = parse(
            "aws:\n  retry_mode: adaptive\n  max_attempts: 5\n  retry_initial_backoff: 50ms\n  \
             retry_max_backoff: 2s\n  attempt_timeout: 300ms\n  operation_timeout: 2m\n  \
             connect_timeout: 1s\n  max_pages: 10\n",
        )
        .unwrap();
        let aws = &config.aws;
        assert_eq!(aws.retry_mode, RetryMode::Adaptive);
        assert_eq!(aws.max_attempts, 5);
        assert_eq!(aws.retry_initial_backoff.0, Duration::from_millis(50));
        assert_eq!(aws.retry_max_backoff.0, Duration::from_secs(2));
        assert_eq!(aws.attempt_timeout.0, Duration::from_millis(300));
        assert_eq!(aws.operation_timeout.0, Duration::from_secs(120));
        assert_eq!(aws.connect_timeout.0, Duration::from_secs(1));
        assert_eq!(aws.max_pages, 10);
        let defaults = AwsSettings::default();
        assert_eq!(defaults.retry_mode, RetryMode::Standard);
        assert_eq!(
            (defaults.max_attempts, defaults.max_pages),
            (3, 1000),
            "{defaults:?}"
        );
        assert_eq!(defaults.attempt_timeout.to_string(), "30s");
        assert_eq!(defaults.operation_timeout.to_string(), "2m");
        assert!(defaults.check().is_ok());
        assert_eq!(parse("regions: [us-east-1]\n").unwrap().aws, defaults);
    }

    #[test]
    fn bad_retry_and_timeout_values_name_file_line_and_field() {
        for (text, field, line, needle) in [
            (
                "aws:\n  max_attempts: 0\n",
                "aws.max_attempts",
                2,
                "from 1 to 20",
            ),
            (
                "aws:\n  max_attempts: -1\n",
                "aws.max_attempts",
                2,
                "from 1 to 20",
            ),
            (
                "aws:\n  max_pages: 0\n",
                "aws.max_pages",
                2,
                "from 1 to 100000",
            ),
            (
                "aws:\n  vpc_attribute_concurrency: 0\n",
                "aws.vpc_attribute_concurrency",
                2,
                "from 1 to 64",
            ),
            (
                "aws:\n  retry_mode: fast\n",
                "aws.retry_mode",
                2,
                "unknown variant `fast`",
            ),
            (
                "aws:\n  attempt_timeout: 30\n",
                "aws.attempt_timeout",
                2,
                "300ms, 30s or 2m",
            ),
            (
                "aws:\n  attempt_timeout: 1h\n",
                "aws.attempt_timeout",
                2,
                "300ms, 30s or 2m",
            ),
            (
                "aws:\n  operation_timeout: 0s\n",
                "aws.operation_timeout",
                2,
                "out of range",
            ),
            (
                "aws:\n  connect_timeout: 61m\n",
                "aws.connect_timeout",
                2,
                "out of range",
            ),
            (
                "regions: [us-east-1]\naws:\n  operation_timeout: 10s\n  attempt_timeout: 20s\n",
                "aws.attempt_timeout",
                4,
                "longer than operation_timeout (10s)",
            ),
            (
                "aws: {retry_initial_backoff: 5s, retry_max_backoff: 1s}\n",
                "aws.retry_initial_backoff",
                1,
                "longer than retry_max_backoff",
            ),
        ] {
            let err = parse(text).unwrap_err();
            assert_eq!(err.field, field, "{text}: {err}");
            assert_eq!(err.line, Some(line), "{text}: {err}");
            assert!(err.message.contains(needle), "{text}: {err}");
            assert!(
                err.to_string().starts_with(&format!("config.yaml:{line}")),
                "{err}"
            );
        }
    }

    #[test]
    fn bad_endpoint_url_is_an_error() {
        let err = parse("aws:\n  endpoint_url: localhost:5000\n").unwrap_err();
        assert_eq!(err.field, "aws.endpoint_url");
    }

    #[test]
    fn daemon_keys_parse_and_default_to_every_five_minutes_on_port_9917() {
        let config = parse(
            "schedule: \"*/2 * * * * *\"\nlisten: 127.0.0.1:9000\nmetrics: {per_resource_series: false}\n",
        )
        .unwrap();
        assert_eq!(config.schedule.unwrap().0, "*/2 * * * * *");
        assert_eq!(config.listen.unwrap().0, "127.0.0.1:9000".parse().unwrap());
        assert!(!config.metrics.per_resource_series);
        let defaults = DaemonSettings::default();
        assert_eq!(defaults.schedule.0, "0 */5 * * * *");
        assert_eq!(defaults.listen.0.to_string(), "0.0.0.0:9917");
        assert!(defaults.metrics.per_resource_series);
    }

    #[test]
    fn bad_cron_schedule_names_line_and_field() {
        for (text, needle) in [
            (
                "regions: [us-east-1]\nschedule: \"*/5 * * * *\"\n",
                "six fields",
            ),
            (
                "regions: [us-east-1]\nschedule: \"0 61 * * * *\"\n",
                "\"0 61 * * * *\"",
            ),
            (
                "regions: [us-east-1]\nschedule: \"0 0 0 30 2 *\"\n",
                "never fires",
            ),
            (
                "regions: [us-east-1]\nschedule: every minute\n",
                "six fields",
            ),
        ] {
            let err = parse(text).unwrap_err();
            assert_eq!(err.field, "schedule", "{text}");
            assert_eq!((err.line, err.column), (Some(2), Some(11)), "{text}");
            assert!(err.message.contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn bad_listen_address_and_unknown_metrics_key_are_errors() {
        let err = parse("fail_on: low\nlisten: localhost\n").unwrap_err();
        assert_eq!(err.field, "listen");
        assert_eq!(err.line, Some(2));
        assert!(err.message.contains("0.0.0.0:9917"), "{err}");
        let err = parse("metrics:\n  per_resource: false\n").unwrap_err();
        assert_eq!(err.line, Some(2));
    }

    #[test]
    fn suppressions_come_from_the_config_and_its_file_and_the_flag_replaces_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let entry = |rule: &str| {
            format!("  - {{rule: {rule}, resource: '*', reason: r, expires: 2026-01-01}}\n")
        };
        std::fs::write(
            dir.path().join("s.yaml"),
            format!("suppressions:\n{}", entry("nat.same_az")),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("other.yaml"),
            format!("suppressions:\n{}", entry("vpc.cidr_size")),
        )
        .unwrap();
        let path = dir.path().join("config.yaml");
        std::fs::write(
            &path,
            format!(
                "suppressions_file: s.yaml\nsuppressions:\n{}",
                entry("vpc.az_count")
            ),
        )
        .unwrap();
        let rules = |overrides: &Overrides| -> Vec<String> {
            Settings::resolve(overrides)
                .unwrap()
                .suppressions
                .iter()
                .map(|s| s.rule.0.clone())
                .collect()
        };
        let from_config = Overrides {
            config: Some(path.clone()),
            ..Default::default()
        };
        assert_eq!(rules(&from_config), ["vpc.az_count", "nat.same_az"]);
        let with_flag = Overrides {
            config: Some(path),
            suppressions: Some(dir.path().join("other.yaml")),
            ..Default::default()
        };
        assert_eq!(rules(&with_flag), ["vpc.az_count", "vpc.cidr_size"]);
    }

    #[test]
    fn schedule_and_listen_flags_beat_the_file_and_are_validated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, "schedule: \"0 0 * * * *\"\nlisten: 127.0.0.1:1\n").unwrap();
        let settings = Settings::resolve(&Overrides {
            config: Some(path.clone()),
            schedule: Some("*/2 * * * * *".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(settings.daemon.schedule.0, "*/2 * * * * *");
        assert_eq!(settings.daemon.listen.0.to_string(), "127.0.0.1:1");
        let err = Settings::resolve(&Overrides {
            config: Some(path),
            listen: Some("9917".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().starts_with("--listen: expected"), "{err}");
        let err = Settings::resolve(&Overrides {
            schedule: Some("* * * * *".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().starts_with("--schedule: expected"), "{err}");
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
        // Deliberate: the default VPC is skipped unless the config asks for it.
        assert!(!Scope::default().includes(&vpc));
        assert!(Scope::default().skips_default(&vpc).is_some());
        let parse = |yaml: &str| serde_yaml_ng::from_str::<Scope>(yaml).unwrap();
        assert!(!parse("vpc_tags: {}").includes(&vpc));
        assert!(parse("exclude_default_vpc: false").includes(&vpc));
        assert!(parse("exclude_default_vpc: false")
            .skips_default(&vpc)
            .is_none());
        assert!(parse("vpc_ids: [vpc-1]").includes(&vpc), "named by id");
        assert!(!parse("vpc_ids: [vpc-2]").includes(&vpc));
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
