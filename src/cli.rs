//! The command line, as parsed by clap. Validation against the config file happens in
//! `config::Settings::resolve`; this module only knows flags.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::finding::Severity;
use crate::schemas::SchemaKind;
use crate::telemetry::LogFormat;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Findings grouped by VPC, for a person.
    Table,
    /// The full report, for machines (`schema_version` 1).
    Json,
    /// One self-contained HTML page with a picture of each VPC, for a person.
    Html,
    /// SARIF 2.1.0, for code-scanning UIs.
    Sarif,
    /// JUnit XML: a test case per rule and resource, for CI dashboards.
    Junit,
    /// GitHub-flavoured Markdown, for a pull-request comment.
    Markdown,
    /// One bash script applying the remediation plan (docs/fix-plans.md).
    FixScript,
}

impl ReportFormat {
    /// The file name `--output-dir` writes this format to.
    pub fn file_name(self) -> &'static str {
        match self {
            ReportFormat::Table => "report.txt",
            ReportFormat::Json => "report.json",
            ReportFormat::Html => "report.html",
            ReportFormat::Sarif => "report.sarif",
            ReportFormat::Junit => "report.junit.xml",
            ReportFormat::Markdown => "report.md",
            ReportFormat::FixScript => "fix.sh",
        }
    }
}

/// Audits AWS VPCs against the network requirements of bring-your-own-cloud platforms.
///
/// With --once it scans, prints a report and exits: 0 when no finding is at or above
/// --fail-on, 1 when some are, 2 when the scan could not complete or the input is bad.
/// Without --once it runs as a daemon: it scans at start-up and on --schedule, and serves
/// /metrics, /findings, /healthz, /readyz and a status page on --listen.
#[derive(Debug, Parser)]
#[command(name = "vpc-auditor", version, about, long_about = None)]
pub struct Cli {
    /// Scan once, print a report and exit (the daemon mode is the default otherwise).
    #[arg(long)]
    pub once: bool,

    /// The YAML config file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// A rule pack file or a folder of them; repeatable. Replaces the config's packs.
    #[arg(long = "rules", value_name = "PATH")]
    pub rules: Vec<PathBuf>,

    /// A region to audit; repeatable. Replaces the config's regions.
    #[arg(long = "region", value_name = "REGION")]
    pub regions: Vec<String>,

    /// Send every AWS call to this URL (AWS_ENDPOINT_URL works too).
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,

    /// Report format; repeatable, or comma-separated, with --output-dir (default: table).
    #[arg(
        long = "format",
        value_enum,
        value_delimiter = ',',
        value_name = "FORMAT"
    )]
    pub formats: Vec<ReportFormat>,

    /// Write the report to this file instead of stdout.
    #[arg(
        long,
        value_name = "FILE",
        requires = "once",
        conflicts_with = "output_dir"
    )]
    pub output: Option<PathBuf>,

    /// Write every --format to this folder, as report.txt, report.json, report.html,
    /// report.sarif, report.junit.xml and report.md (the folder is created).
    #[arg(long, value_name = "DIR", requires = "once")]
    pub output_dir: Option<PathBuf>,

    /// The lowest severity that makes --once exit 1 (default: low).
    #[arg(long, value_name = "SEVERITY", value_parser = parse_severity)]
    pub fail_on: Option<Severity>,

    /// Audit the demo snapshot built into the binary; needs no AWS account.
    #[arg(long, conflicts_with = "from_snapshot")]
    pub demo: bool,

    /// Audit a snapshot file written earlier by --snapshot-out, without calling AWS.
    #[arg(long, value_name = "FILE")]
    pub from_snapshot: Option<PathBuf>,

    /// Also write the collected snapshot to this file.
    #[arg(long, value_name = "FILE", requires = "once")]
    pub snapshot_out: Option<PathBuf>,

    /// A JSON report written earlier by `--once --format json`: mark findings new or
    /// unchanged and list the resolved ones.
    #[arg(long, value_name = "REPORT.json", requires = "once")]
    pub baseline: Option<PathBuf>,

    /// Exit 1 only when a finding the baseline did not have is at or above --fail-on.
    #[arg(long, requires = "baseline")]
    pub fail_on_new: bool,

    /// A suppressions file (`suppressions:` and a list of rule, resource, reason, expires)
    /// [config: suppressions_file; adds to the config's `suppressions`].
    #[arg(long, value_name = "FILE")]
    pub suppressions: Option<PathBuf>,

    /// Accept a pinned role's current state as its new pin (`iam.pinned_role_drift`): a role
    /// ARN, a role name, or `all`; repeatable. Written to the config's `pin_state_file`.
    #[arg(long, value_name = "ROLE", requires = "once")]
    pub repin: Vec<String>,

    /// Daemon: when to scan, as six-field cron with seconds first, in UTC
    /// [config: schedule; default: "0 */5 * * * *", every 5 minutes].
    #[arg(long, value_name = "CRON", conflicts_with = "once")]
    pub schedule: Option<String>,

    /// Daemon: the address of the HTTP listener [config: listen; default: 0.0.0.0:9917].
    #[arg(long, value_name = "ADDR", conflicts_with = "once")]
    pub listen: Option<String>,

    /// Daemon: TLS and basic auth for the listener, in the Prometheus exporters' web config
    /// format (tls_server_config, basic_auth_users) [config: web_config_file].
    #[arg(long, value_name = "FILE", conflicts_with = "once")]
    pub web_config_file: Option<PathBuf>,

    /// This replica's shard of the accounts, 0-based, or `auto` for the StatefulSet pod
    /// ordinal (from POD_NAME or HOSTNAME) [config: sharding.shard; default: 0].
    #[arg(long, value_name = "N|auto", env = "VPC_AUDITOR_SHARD")]
    pub shard: Option<crate::shard::ShardIndex>,

    /// How many shards the accounts are split into [config: sharding.total_shards;
    /// default: 1].
    #[arg(long, value_name = "N", env = "VPC_AUDITOR_TOTAL_SHARDS")]
    pub total_shards: Option<u32>,

    /// Print the rule catalogue (id, severity, resource, what it checks and why) and exit.
    #[arg(long)]
    pub list_rules: bool,

    /// Log line format (logs go to stderr).
    #[arg(long, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,

    /// Log level or filter, e.g. `info` or `vpc_auditor=debug` (RUST_LOG wins when set).
    #[arg(long, default_value = "warn")]
    pub log_level: String,

    /// A subcommand instead of a scan; without one, the flags above run a scan.
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the JSON Schema of a file the auditor reads (config, rule-pack or
    /// suppressions), for editors and CI, and exit.
    Schema {
        #[arg(value_enum)]
        kind: SchemaKind,
    },
}

fn parse_severity(s: &str) -> Result<Severity, String> {
    s.parse()
}
