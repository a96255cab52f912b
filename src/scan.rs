//! One scan, from source to report: get a snapshot (AWS, a snapshot file or the demo),
//! evaluate it, and build the report. Both `--once` and the daemon run scans through here,
//! so they cannot disagree about what a scan means.

use std::path::PathBuf;
use std::time::Instant;

use crate::collect;
use crate::config::Settings;
use crate::export::Report;
pub use crate::export::ScanOutput;
use crate::input;
use crate::rules::{evaluate, evaluate_recording_checks};
use crate::snapshot::Snapshot;
use crate::suppress;

/// The demo snapshot built into the binary: a compliant VPC, a broken one and a default VPC
/// (skipped unless the config audits it).
pub const DEMO_SNAPSHOT: &str = include_str!("../examples/demo-snapshot.json");

/// Where a scan's snapshot comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotSource {
    /// Collect from AWS with the settings' regions and credentials.
    Aws,
    /// The demo snapshot built into the binary.
    Demo,
    /// A snapshot file written earlier by `--snapshot-out`.
    File(PathBuf),
}

/// Runs one scan. An AWS failure in a region is not an error here: it is in the report,
/// per region. `Err` means nothing could be scanned at all (a bad snapshot file, no region).
pub async fn scan(settings: &Settings, source: &SnapshotSource) -> Result<ScanOutput, String> {
    scan_inner(settings, source, false).await
}

/// Like [`scan`], and the report also lists every (rule, resource) evaluated, pass or
/// fail (`Report::checked`), which the JUnit report needs for its passing test cases.
pub async fn scan_recording_checks(
    settings: &Settings,
    source: &SnapshotSource,
) -> Result<ScanOutput, String> {
    scan_inner(settings, source, true).await
}

async fn scan_inner(
    settings: &Settings,
    source: &SnapshotSource,
    record_checks: bool,
) -> Result<ScanOutput, String> {
    let started = Instant::now();
    let snapshot = match source {
        SnapshotSource::Demo => Snapshot::from_json(DEMO_SNAPSHOT)
            .map_err(|e| format!("<embedded demo snapshot>:{e}"))?,
        SnapshotSource::File(path) => {
            let text = input::read_text(path).map_err(|e| e.to_string())?;
            Snapshot::from_json(&text).map_err(|e| format!("{}:{e}", path.display()))?
        }
        SnapshotSource::Aws => collect::collect(settings)
            .await
            .map_err(|e| e.to_string())?,
    };
    let mut evaluation = match record_checks {
        true => evaluate_recording_checks(&snapshot, &settings.packs, &settings.scope),
        false => evaluate(&snapshot, &settings.packs, &settings.scope),
    };
    let clock = chrono::Utc::now();
    suppress::apply(&mut evaluation, &settings.suppressions, clock.date_naive());
    let now = clock.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let report = Report::build(&snapshot, evaluation, now);
    Ok(ScanOutput {
        snapshot,
        report,
        duration: started.elapsed(),
    })
}
