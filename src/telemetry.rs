//! Logging setup, done once at start-up: human-readable lines by default, JSON lines with
//! `--log-format json`. Logs go to stderr so that stdout carries only the report.

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

/// Log targets held at `info` whatever the level asked for, because below it they write
/// secrets: the AWS SDK's orchestrator logs its config bag at debug (the access key id
/// among it) and, at trace, the resolved identity and every response body (IAM's carry the
/// trust policies, ExternalIds included); its SigV4 signer logs the identity at trace.
const SECRET_BEARING_TARGETS: [&str; 2] = ["aws_smithy_runtime::client::orchestrator", "aws_sigv4"];

/// Installs the global subscriber. `RUST_LOG` overrides `default_level` when set.
pub fn init(format: LogFormat, default_level: &str) {
    let mut filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    // More specific than any crate-wide directive, so it wins over `debug` or
    // `aws_smithy_runtime=trace`.
    for target in SECRET_BEARING_TARGETS {
        if let Ok(directive) = format!("{target}=info").parse() {
            filter = filter.add_directive(directive);
        }
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
