//! Soak test of the collector's failure semantics: scans through a fault-injecting proxy
//! (`fault_support`) in front of moto, at a 20% fault rate over every kind of fault. A
//! fault-free scan gives the reference findings; after that, every scan must either yield
//! exactly those findings with every region `ok`, or say that its region failed. A scan
//! that claims success with fewer (or other) findings is a false result, and there must be
//! none. Most scans run in-process through the library (and RSS is watched across them);
//! a sample runs the real binary with `--once` (exit 0/1 versus 2), and a short daemon run
//! checks `vpc_auditor_scan_errors_total`, `vpc_auditor_last_scan_success` and `/findings`.
//!
//! `SOAK_SCANS` (default 1000) and `SOAK_BINARY_SCANS` (default 30) change the counts.
//! Run with `--nocapture` to see the figures.

mod common;
mod daemon_support;
mod fault_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use aws_sdk_ec2::types::AttributeBooleanValue;
use common::scenario::{self, Layout};
use common::{auditor, json_report, run, Moto, REGION};
use daemon_support::{wait_for, Daemon};
use fault_support::{FaultConfig, FaultKind, FaultProxy};
use vpc_auditor::config::{Overrides, Settings};
use vpc_auditor::export::report::{Report, ScanOutcome};
use vpc_auditor::scan::{scan, SnapshotSource};

/// (rule, resource) of every finding.
type FindingSet = BTreeSet<(String, String)>;

fn finding_set(report: &Report) -> FindingSet {
    report
        .findings
        .iter()
        .map(|f| (f.rule_id.clone(), f.resource_id.clone()))
        .collect()
}

fn json_finding_set(findings: &serde_json::Value) -> FindingSet {
    findings
        .as_array()
        .expect("findings array")
        .iter()
        .map(|f| {
            (
                f["rule_id"].as_str().unwrap_or("").to_string(),
                f["resource_id"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Resident set size of this process, in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// The union-byoc pack's VPC rules without its IAM roles, so IAM is not collected.
fn vpc_only_pack(dir: &Path) -> std::path::PathBuf {
    let full = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/union-byoc.yaml"),
    )
    .expect("read union-byoc pack");
    let vpc_part = full.split("\nroles:").next().expect("pack text");
    let path = dir.join("vpc-only.yaml");
    std::fs::write(&path, vpc_part).expect("write pack");
    path
}

/// A config for scans through `endpoint`, with short timeouts and backoffs so slow faults
/// and retries do not dominate the run.
fn write_config(dir: &Path, name: &str, endpoint: &str, extra: &str) -> std::path::PathBuf {
    let pack = vpc_only_pack(dir);
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "regions: [{REGION}]\n\
             rule_packs: ['{}']\n\
             scope: {{exclude_default_vpc: true}}\n\
             aws:\n  endpoint_url: '{endpoint}'\n  max_attempts: 3\n  retry_mode: standard\n  \
             retry_initial_backoff: 10ms\n  retry_max_backoff: 50ms\n  attempt_timeout: 1500ms\n  \
             operation_timeout: 10s\n  connect_timeout: 1s\n  max_pages: 5\n\
             scan:\n  rate_limits:\n    ec2: {{per_second: 100000, burst: 10000}}\n    \
             sts: {{per_second: 100000, burst: 10000}}\n{extra}",
            pack.display()
        ),
    )
    .expect("write config");
    path
}

fn settings(config: &Path) -> Settings {
    Settings::resolve(&Overrides {
        config: Some(config.to_path_buf()),
        ..Default::default()
    })
    .expect("settings")
}

#[derive(Debug, Default)]
struct Tally {
    scans: usize,
    complete_and_exact: usize,
    failed: usize,
    /// Claimed complete, but the findings (or audited VPCs) differ from the reference.
    false_results: usize,
    /// Failed, but without an error message on the failed scan.
    failed_without_reason: usize,
    errors_by_operation: BTreeMap<String, usize>,
}

#[test]
fn every_scan_under_faults_is_exact_or_reported_failed() {
    let started = Instant::now();
    // The in-process scans read credentials like the binary does: static test ones only.
    for (key, value) in [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", REGION),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/nonexistent/vpc-auditor-test/config"),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/vpc-auditor-test/credentials",
        ),
    ] {
        std::env::set_var(key, value);
    }
    for key in [
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_SESSION_TOKEN",
        "AWS_ROLE_ARN",
    ] {
        std::env::remove_var(key);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let moto = Moto::start();
    let ec2 = runtime.block_on(moto.ec2());
    // Two AZs (vpc.az_count) and DNS hostnames off (vpc.dns_attributes), plus whatever
    // else follows from two AZs: known problems to find.
    let layout = Layout {
        public_azs: vec!['a', 'b'],
        private_azs: vec!['a', 'b'],
        ..Layout::compliant()
    };
    let vpc = runtime.block_on(scenario::build(&ec2, "soak", &layout));
    runtime
        .block_on(
            ec2.modify_vpc_attribute()
                .vpc_id(&vpc.vpc_id)
                .enable_dns_hostnames(AttributeBooleanValue::builder().value(false).build())
                .send(),
        )
        .expect("DNS hostnames off");

    let kinds = FaultKind::ALL.to_vec();
    let proxy = FaultProxy::start(
        moto.port,
        FaultConfig {
            seed: 20261203,
            kinds,
            slow_delay: Duration::from_millis(2500),
            ..Default::default()
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "config.yaml", &proxy.endpoint(), "");
    let settings = settings(&config);

    // The reference: a fault-free scan through the proxy.
    proxy.set_rate(0.0);
    let reference = runtime
        .block_on(scan(&settings, &SnapshotSource::Aws))
        .expect("reference scan");
    assert!(
        reference.report.is_complete(),
        "the fault-free scan must succeed: {:?}",
        reference.report.scans
    );
    let expected = finding_set(&reference.report);
    let expected_vpcs: BTreeSet<String> = reference
        .report
        .vpcs
        .iter()
        .map(|v| v.vpc_id.clone())
        .collect();
    assert!(
        expected.contains(&("vpc.az_count".to_string(), vpc.vpc_id.clone()))
            && expected.contains(&("vpc.dns_attributes".to_string(), vpc.vpc_id.clone())),
        "the scenario's known problems: {expected:?}"
    );
    assert_eq!(expected_vpcs, BTreeSet::from([vpc.vpc_id.clone()]));

    // In-process scans at a 20% fault rate.
    proxy.set_rate(0.2);
    let scans = env_count("SOAK_SCANS", 1000);
    let warm_up = (scans / 10).clamp(1, 50);
    let mut tally = Tally::default();
    let mut rss_after_warm_up = 0;
    let mut rss_max = 0;
    // Four scans at a time, so that the run is not all waiting on slow faults.
    let outputs = (0..scans).step_by(4).flat_map(|first| {
        let batch = (first..scans.min(first + 4)).map(|_| scan(&settings, &SnapshotSource::Aws));
        runtime.block_on(futures::future::join_all(batch))
    });
    for (i, output) in outputs.enumerate() {
        let output = output.expect("a scan with a region configured always returns a report");
        tally.scans += 1;
        let report = &output.report;
        if report.is_complete() {
            let vpcs: BTreeSet<String> = report.vpcs.iter().map(|v| v.vpc_id.clone()).collect();
            if finding_set(report) == expected && vpcs == expected_vpcs {
                tally.complete_and_exact += 1;
            } else {
                tally.false_results += 1;
                eprintln!(
                    "FALSE RESULT in scan {i}: {:?} vs {expected:?}",
                    finding_set(report)
                );
            }
        } else {
            tally.failed += 1;
            for failed in report
                .scans
                .iter()
                .filter(|s| s.status == ScanOutcome::Error)
            {
                if failed.error.as_deref().unwrap_or("").is_empty() {
                    tally.failed_without_reason += 1;
                }
                *tally
                    .errors_by_operation
                    .entry(failed.error_operation.clone().unwrap_or_default())
                    .or_default() += 1;
            }
            assert_eq!(report.exit_code(settings.fail_on), 2);
        }
        let rss = rss_kib();
        rss_max = rss_max.max(rss);
        if i + 1 == warm_up {
            rss_after_warm_up = rss;
        }
    }
    let rss_end = rss_kib();
    let in_process_time = started.elapsed();
    let injected_in_process = proxy.injected();
    println!(
        "soak: {} in-process scans in {in_process_time:?}",
        tally.scans
    );
    println!(
        "soak: {} exact and complete, {} reported failed, {} false clean/short results, {} failed without a reason",
        tally.complete_and_exact, tally.failed, tally.false_results, tally.failed_without_reason
    );
    println!(
        "soak: failures by operation: {:?}",
        tally.errors_by_operation
    );
    println!(
        "soak: requests {}, forwarded unchanged {}, faults injected {} ({:?}), pages of injected listings followed {}",
        proxy.requests(),
        proxy.forwarded(),
        proxy.injected_total(),
        injected_in_process,
        proxy.pages_followed()
    );
    println!(
        "soak: RSS after warm-up ({warm_up} scans) {rss_after_warm_up} KiB, max {rss_max} KiB, end {rss_end} KiB, growth {} KiB",
        rss_end as i64 - rss_after_warm_up as i64
    );

    assert_eq!(
        tally.false_results, 0,
        "a scan claimed success with other findings"
    );
    assert_eq!(tally.failed_without_reason, 0);
    assert_eq!(tally.complete_and_exact + tally.failed, tally.scans);
    // Faults happened, and retries turned most of them into exact results.
    assert!(
        proxy.injected_total() as usize >= scans,
        "{injected_in_process:?}"
    );
    for kind in FaultKind::ALL {
        assert!(
            injected_in_process[kind.name()] > 0 || scans < 200,
            "{} never injected",
            kind.name()
        );
    }
    assert!(
        tally.complete_and_exact > tally.scans / 4,
        "retries should carry most scans through a 20% fault rate: {tally:?}"
    );
    assert!(
        tally.failed > 0 || scans < 200,
        "some scans must fail: {tally:?}"
    );
    // Memory: generous bound, after warm-up.
    assert!(
        rss_end < rss_after_warm_up + 64 * 1024,
        "RSS grew from {rss_after_warm_up} KiB to {rss_end} KiB"
    );

    // The real binary with --once: exit 0/1 means exactly the reference findings.
    let binary_scans = env_count("SOAK_BINARY_SCANS", 30);
    let (mut binary_ok, mut binary_failed) = (0, 0);
    for _ in 0..binary_scans {
        let out = run(auditor()
            .args(["--once", "--format", "json", "--config"])
            .arg(&config));
        let report = json_report(&out);
        match out.status.code() {
            Some(0) | Some(1) => {
                assert_eq!(json_finding_set(&report["findings"]), expected);
                assert!(report["scans"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|s| s["status"] == "ok"));
                binary_ok += 1;
            }
            Some(2) => {
                let scans = report["scans"].as_array().unwrap();
                assert!(
                    scans
                        .iter()
                        .any(|s| s["status"] == "error" && s["error"].as_str().is_some()),
                    "{report:#}"
                );
                assert!(
                    common::stderr(&out).contains("failed"),
                    "{}",
                    common::stderr(&out)
                );
                binary_failed += 1;
            }
            other => panic!("exit {other:?}: {}", common::stderr(&out)),
        }
    }
    println!("soak: binary --once: {binary_ok} exact (exit 0/1), {binary_failed} failed (exit 2)");
    assert_eq!(binary_ok + binary_failed, binary_scans);

    // The daemon against the proxy: /findings never shows other findings than the
    // reference, stale or not, and failed scans raise the error counter.
    let daemon_config = write_config(
        dir.path(),
        "daemon.yaml",
        &proxy.endpoint(),
        "schedule: '* * * * * *'\n",
    );
    let daemon = Daemon::start(&["--config", daemon_config.to_str().unwrap()]);
    daemon.wait_ready();
    let logs = || daemon.process.log();
    let metric = |text: &str, prefix: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let (mut seen_failed, mut seen_ok, mut polls) = (0, 0, 0);
    let deadline = Instant::now() + Duration::from_secs(40);
    while Instant::now() < deadline && (seen_failed == 0 || seen_ok == 0 || polls < 10) {
        polls += 1;
        let document = daemon.findings();
        if document["last_success_at"].is_string() {
            assert_eq!(
                json_finding_set(&document["findings"]),
                expected,
                "the daemon serves the last good findings, never fewer"
            );
        }
        let (_, text) = daemon.get("/metrics");
        let success = metric(&text, "vpc_auditor_last_scan_success ");
        let errors = metric(&text, "vpc_auditor_scan_errors_total{");
        if success == 0.0 {
            seen_failed += 1;
            assert!(errors >= 1.0, "a failed scan is counted\n{text}");
            assert_eq!(document["stale"], true);
        } else {
            seen_ok += 1;
        }
        std::thread::sleep(Duration::from_millis(700));
    }
    let (_, text) = daemon.get("/metrics");
    println!(
        "soak: daemon: {polls} polls, {seen_ok} with the last scan ok, {seen_failed} failed; scans_total {}, scan_errors_total {}",
        metric(&text, "vpc_auditor_scans_total "),
        metric(&text, "vpc_auditor_scan_errors_total{")
    );
    wait_for(
        Duration::from_secs(5),
        "the daemon to still be healthy",
        || (daemon.get("/healthz").0 == 200).then_some(()),
        logs,
    );
    println!("soak: total faults injected {:?}", proxy.injected());
    println!("soak: done in {:?}", started.elapsed());
}
