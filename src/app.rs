//! One run of the program: resolve settings, get a snapshot (AWS, a file or the demo),
//! evaluate it, and write the report; or, without `--once`, hand the same settings and
//! source to the daemon. Errors become one clean line on stderr and exit code 2; nothing
//! here panics on bad input.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use crate::cli::{Cli, Command, ReportFormat};
use crate::config::{Overrides, Settings};
use crate::daemon::{self, DaemonConfig};
use crate::export::baseline::Baseline;
use crate::export::table;
use crate::scan::{scan, scan_recording_checks, ScanOutput, SnapshotSource};
use crate::schemas;

/// Exit code for an incomplete scan or bad input.
const EXIT_INCOMPLETE: i32 = 2;

/// Runs the command line and returns the process exit code.
pub async fn run(cli: Cli) -> i32 {
    if let Some(Command::Schema { kind }) = cli.command {
        print!("{}", schemas::schema_json(kind));
        return 0;
    }
    if cli.list_rules {
        print!("{}", list_rules());
        return 0;
    }
    let result = if cli.once {
        run_once(&cli).await
    } else {
        run_daemon(&cli).await.map(|()| 0)
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("vpc-auditor: {message}");
            EXIT_INCOMPLETE
        }
    }
}

/// What the flags override in the config.
fn overrides(cli: &Cli) -> Overrides {
    Overrides {
        config: cli.config.clone(),
        rules: cli.rules.clone(),
        regions: cli.regions.clone(),
        endpoint_url: cli.endpoint_url.clone(),
        fail_on: cli.fail_on,
        schedule: cli.schedule.clone(),
        listen: cli.listen.clone(),
        suppressions: cli.suppressions.clone(),
        web_config_file: cli.web_config_file.clone(),
        shard: cli.shard,
        total_shards: cli.total_shards,
        repin: cli.repin.clone(),
    }
}

/// The validated settings and the snapshot source the flags ask for.
fn settings_and_source(cli: &Cli) -> Result<(Settings, SnapshotSource), String> {
    let settings = Settings::resolve(&overrides(cli)).map_err(|e| e.to_string())?;

    let source = if cli.demo {
        SnapshotSource::Demo
    } else if let Some(path) = &cli.from_snapshot {
        SnapshotSource::File(path.clone())
    } else {
        SnapshotSource::Aws
    };
    Ok((settings, source))
}

/// Runs the daemon until SIGTERM or SIGINT, re-reading the config on SIGHUP; `Ok` is a
/// graceful stop (exit 0).
async fn run_daemon(cli: &Cli) -> Result<(), String> {
    let (settings, source) = settings_and_source(cli)?;
    let web =
        crate::web_config::WebConfig::load_or_plain(settings.daemon.web_config_file.as_deref())
            .map_err(|e| e.to_string())?;
    let shutdown = daemon::shutdown_signal();
    let reloads = daemon::reload_signal();
    let address = settings.daemon.listen.0;
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| format!("cannot listen on {address}: {e}"))?;
    // A reload reads the same files the flags named at start.
    let flags = overrides(cli);
    let reload: daemon::Reloader =
        std::sync::Arc::new(move || Settings::resolve(&flags).map_err(|e| e.to_string()));
    let config = DaemonConfig {
        settings,
        source,
        web,
        reload: Some(reload),
    };
    daemon::run(config, listener, shutdown, reloads).await
}

async fn run_once(cli: &Cli) -> Result<i32, String> {
    let (settings, source) = settings_and_source(cli)?;
    // Read the baseline before scanning, so a bad file fails fast.
    let baseline = match &cli.baseline {
        Some(path) => Some(Baseline::read(path).map_err(|e| e.to_string())?),
        None => None,
    };
    let formats = requested_formats(cli)?;
    // Only the JUnit report lists passing checks; only then are they recorded.
    let scan_result = if formats.contains(&ReportFormat::Junit) {
        scan_recording_checks(&settings, &source).await
    } else {
        scan(&settings, &source).await
    };
    let ScanOutput {
        snapshot,
        mut report,
        duration,
    } = scan_result?;
    if let Some(baseline) = &baseline {
        crate::export::baseline::apply(&mut report, baseline);
    }
    if formats.contains(&ReportFormat::Json) || formats.contains(&ReportFormat::FixScript) {
        report.plan = Some(crate::plan::build(&snapshot, &report.findings));
    }
    tracing::info!(
        duration_seconds = duration.as_secs_f64(),
        findings = report.findings.len(),
        "scan finished"
    );
    if let Some(path) = &cli.snapshot_out {
        write_file(path, &snapshot.to_json_pretty())?;
    }
    if let Some(dir) = &cli.output_dir {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("{}: cannot create the folder: {e}", dir.display()))?;
    }
    for format in &formats {
        let to_terminal = cli.output.is_none() && cli.output_dir.is_none();
        let rendered = render(*format, &report, &snapshot, to_terminal)?;
        match (&cli.output_dir, &cli.output) {
            (Some(dir), _) => write_file(&dir.join(format.file_name()), &rendered)?,
            (None, Some(path)) => write_file(path, &rendered)?,
            (None, None) => {
                let mut stdout = std::io::stdout().lock();
                // A closed pipe (`| head`) is not an error worth reporting.
                let _ = stdout.write_all(rendered.as_bytes());
                let _ = stdout.flush();
            }
        }
    }
    if report.scans.is_empty() && !settings.shard.is_whole() {
        eprintln!(
            "vpc-auditor: shard {} owns none of the accounts to audit, so nothing was audited \
             (fewer accounts than shards?)",
            settings.shard
        );
    }
    for scan in report.scans.iter().filter(|s| s.error.is_some()) {
        eprintln!(
            "vpc-auditor: scan of {}/{} failed: {}",
            scan.account_id,
            scan.region,
            scan.error.as_deref().unwrap_or_default()
        );
    }
    Ok(if cli.fail_on_new {
        report.exit_code_new(settings.fail_on)
    } else {
        report.exit_code(settings.fail_on)
    })
}

/// The formats asked for, each once, in the order given; `table` when none. More than one
/// needs `--output-dir`, as one file or stdout cannot hold several.
fn requested_formats(cli: &Cli) -> Result<Vec<ReportFormat>, String> {
    let mut formats: Vec<ReportFormat> = Vec::new();
    for format in &cli.formats {
        if !formats.contains(format) {
            formats.push(*format);
        }
    }
    if formats.is_empty() {
        formats.push(ReportFormat::Table);
    }
    if formats.len() > 1 && cli.output_dir.is_none() {
        return Err(format!(
            "{} formats asked for: write them with --output-dir DIR (one file each), \
             or ask for one --format",
            formats.len()
        ));
    }
    Ok(formats)
}

/// One format of the report; `to_terminal` lets the table use colours when stdout is one.
fn render(
    format: ReportFormat,
    report: &crate::export::Report,
    snapshot: &crate::snapshot::Snapshot,
    to_terminal: bool,
) -> Result<String, String> {
    use crate::export::{html_report, junit, markdown, sarif};
    Ok(match format {
        ReportFormat::Json => report.to_json() + "\n",
        ReportFormat::Html => html_report::render(report, snapshot),
        ReportFormat::Sarif => sarif::render(report) + "\n",
        ReportFormat::Junit => junit::render(report)?,
        ReportFormat::Markdown => markdown::render(report),
        ReportFormat::FixScript => crate::export::fix_script::render(
            &report
                .plan
                .clone()
                .unwrap_or_else(|| crate::plan::build(snapshot, &report.findings)),
            &report.generated_at,
        ),
        ReportFormat::Table => {
            let color = to_terminal
                && std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none();
            table::render(report, color)
        }
    })
}

/// The rule catalogue as a Markdown table, the same one docs/rules.md carries
/// (`tests/docs.rs` compares them).
pub fn list_rules() -> String {
    let mut out =
        String::from("| id | severity | resource | checks | why |\n|---|---|---|---|---|\n");
    for rule in crate::rules::catalogue::CATALOGUE {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            rule.id, rule.default_severity, rule.resource_type, rule.checks, rule.rationale
        ));
    }
    out
}

fn write_file(path: &Path, contents: &str) -> Result<(), String> {
    std::fs::write(path, contents)
        .map_err(|e| format!("{}: cannot write: {e}", PathBuf::from(path).display()))
}

#[cfg(test)]
mod tests {
    use crate::config::Scope;
    use crate::rules::evaluate;
    use crate::rules::pack::RulePack;
    use crate::scan::DEMO_SNAPSHOT;
    use crate::snapshot::Snapshot;

    #[test]
    fn demo_snapshot_parses_and_shows_clean_and_failing_vpcs() {
        let snapshot = Snapshot::from_json(DEMO_SNAPSHOT).expect("demo snapshot parses");
        let eval = evaluate(
            &snapshot,
            &[RulePack::embedded(&|_| None).unwrap()],
            &Scope::default(),
        );
        let with_findings: std::collections::BTreeSet<_> = eval
            .findings
            .iter()
            .filter_map(|f| f.vpc_id.clone())
            .collect();
        assert!(eval.vpcs.len() >= 3);
        assert!(
            eval.vpcs.iter().any(|v| !with_findings.contains(&v.vpc_id)),
            "a clean VPC"
        );
        // The default VPC is in the snapshot but skipped by default, and listed as such.
        assert!(!eval.vpcs.iter().any(|v| v.is_default));
        assert!(eval.skipped.iter().any(|v| v.is_default), "the default VPC");
        assert!(with_findings.len() >= 2);
    }
}
