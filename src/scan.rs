//! One scan, from source to report: get a snapshot (AWS, a snapshot file or the demo),
//! evaluate it, and build the report. Both `--once` and the daemon run scans through here,
//! so they cannot disagree about what a scan means.

use std::collections::BTreeSet;
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
use crate::values::pins::{PinFile, PinSet, RolePin};

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

/// A scan of only `targets`, (account, region) pairs with `global` for an account's IAM:
/// what an event-driven re-scan runs. Collects just those from AWS (a snapshot file or the
/// demo is read whole and cut down to them), so its report covers them and nothing else;
/// rules evaluate one region at a time, so each target's findings are what a full scan
/// would find there.
pub async fn scan_targets(
    settings: &Settings,
    source: &SnapshotSource,
    targets: &BTreeSet<(String, String)>,
) -> Result<ScanOutput, String> {
    let wanted = |account: &str, region: &str| {
        targets
            .iter()
            .any(|(a, r)| r == region && (account.is_empty() || a == account))
    };
    scan_with(settings, source, false, &wanted).await
}

async fn scan_inner(
    settings: &Settings,
    source: &SnapshotSource,
    record_checks: bool,
) -> Result<ScanOutput, String> {
    scan_with(settings, source, record_checks, &|_, _| true).await
}

async fn scan_with(
    settings: &Settings,
    source: &SnapshotSource,
    record_checks: bool,
    wanted: &(dyn Fn(&str, &str) -> bool + Sync),
) -> Result<ScanOutput, String> {
    let started = Instant::now();
    let mut snapshot = match source {
        SnapshotSource::Demo => Snapshot::from_json(DEMO_SNAPSHOT)
            .map_err(|e| format!("<embedded demo snapshot>:{e}"))?,
        SnapshotSource::File(path) => {
            let text = input::read_text(path).map_err(|e| e.to_string())?;
            Snapshot::from_json(&text).map_err(|e| format!("{}:{e}", path.display()))?
        }
        SnapshotSource::Aws => collect::collect_matching(settings, wanted)
            .await
            .map_err(|e| e.to_string())?,
    };
    if !matches!(source, SnapshotSource::Aws) {
        snapshot
            .regions
            .retain(|r| wanted(&r.account_id, &r.region));
        snapshot
            .iam
            .retain(|i| wanted(&i.account_id, collect::IAM_SCOPE));
    }
    let mut scope = settings.scope.clone();
    scope.pins = read_pins(settings)?;
    let mut evaluation = match record_checks {
        true => evaluate_recording_checks(&snapshot, &settings.packs, &scope),
        false => evaluate(&snapshot, &settings.packs, &scope),
    };
    let clock = chrono::Utc::now();
    write_new_pins(settings, &scope.pins, &mut evaluation.new_pins, &clock)?;
    suppress::apply(&mut evaluation, &settings.suppressions, clock.date_naive());
    let now = clock.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let report = Report::build(&snapshot, evaluation, now);
    Ok(ScanOutput {
        snapshot,
        report,
        duration: started.elapsed(),
    })
}

/// Reads the pin state file: a missing file is an empty set (nothing pinned yet), a file
/// that cannot be read or parsed fails the scan, so drift is never accepted silently.
/// Pins that `--repin` names are left out, so the scan pins those roles afresh.
fn read_pins(settings: &Settings) -> Result<PinSet, String> {
    let Some(path) = &settings.pin_state_file else {
        if !settings.repin.is_empty() {
            return Err(
                "--repin needs pin_state_file in the config: there is nowhere to keep the new pin"
                    .into(),
            );
        }
        return Ok(PinSet::default());
    };
    let mut set = PinSet {
        persisted: true,
        ..Default::default()
    };
    if path.exists() {
        let text = input::read_text(path).map_err(|e| e.to_string())?;
        let file: PinFile = serde_json::from_str(&text).map_err(|e| {
            format!(
                "{}:{}:{}: pin state file: {e}",
                path.display(),
                e.line(),
                e.column()
            )
        })?;
        for pin in file.pins {
            set.pins.insert(pin.role_arn.clone(), pin);
        }
    }
    let repinned = |pin: &RolePin| {
        let name = pin.role_arn.rsplit('/').next().unwrap_or_default();
        settings
            .repin
            .iter()
            .any(|r| r == "all" || r == &pin.role_arn || r == name)
    };
    set.pins.retain(|_, pin| !repinned(pin));
    Ok(set)
}

/// Adds the pins taken at first sight to the pin state file (written whole, through a
/// temporary file, so a crash never leaves half a file).
fn write_new_pins(
    settings: &Settings,
    pins: &PinSet,
    new: &mut [RolePin],
    clock: &chrono::DateTime<chrono::Utc>,
) -> Result<(), String> {
    let Some(path) = &settings.pin_state_file else {
        return Ok(());
    };
    if new.is_empty() {
        return Ok(());
    }
    let at = clock.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut all: Vec<RolePin> = pins.pins.values().cloned().collect();
    for pin in new.iter_mut() {
        pin.pinned_at = at.clone();
        all.retain(|p| p.role_arn != pin.role_arn);
        all.push(pin.clone());
    }
    all.sort_by(|a, b| a.role_arn.cmp(&b.role_arn));
    let text = serde_json::to_string_pretty(&PinFile {
        version: 1,
        pins: all,
    })
    .map_err(|e| e.to_string())?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text + "\n")
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| format!("{}: cannot write the pin state file: {e}", path.display()))
}
