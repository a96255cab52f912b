//! The daemon as an operator meets it: it runs without `--once` (the example config too),
//! serves every endpoint, stops cleanly on SIGTERM and SIGINT (exit 0 within seconds, even
//! mid-scan), keeps the last good findings when its source breaks, and rejects bad daemon
//! settings with exit 2. The demo, snapshot files, moto, and a loopback port that never
//! answers; nothing leaves 127.0.0.1.

mod common;
mod daemon_support;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::{auditor, run, temp_file, Moto};
use daemon_support::{wait_for, write, Daemon};

const STOP_WITHIN: Duration = Duration::from_secs(5);

fn stops_with_exit_zero(signal: &str) {
    let mut daemon = Daemon::start(&["--demo"]);
    daemon.wait_ready();
    let started = Instant::now();
    daemon.process.signal(signal);
    let status = daemon
        .process
        .wait_exit(STOP_WITHIN)
        .unwrap_or_else(|| panic!("still running {STOP_WITHIN:?} after SIG{signal}"));
    assert_eq!(
        status.code(),
        Some(0),
        "exit after SIG{signal}\n{}",
        daemon.process.log()
    );
    assert!(started.elapsed() < STOP_WITHIN);
    assert!(!daemon.process.log().contains("panicked"));
}

#[test]
fn sigterm_stops_the_daemon_with_exit_zero_within_seconds() {
    stops_with_exit_zero("TERM");
}

#[test]
fn sigint_stops_the_daemon_with_exit_zero_within_seconds() {
    stops_with_exit_zero("INT");
}

#[test]
fn sigterm_during_a_scan_that_hangs_cancels_it_and_exits_zero() {
    // An "AWS endpoint" that accepts connections and never answers: the scan hangs.
    let black_hole = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", black_hole.local_addr().unwrap());
    let held = std::thread::spawn(move || {
        let mut open = Vec::new();
        for stream in black_hole.incoming().take(16).flatten() {
            open.push(stream);
        }
    });
    let mut daemon = Daemon::start(&["--endpoint-url", &endpoint, "--region", "us-east-1"]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(daemon.get("/readyz").0, 503, "the scan is still in flight");
    let started = Instant::now();
    daemon.process.signal("TERM");
    let status = daemon.process.wait_exit(STOP_WITHIN).unwrap_or_else(|| {
        panic!(
            "the hung scan kept the daemon alive\n{}",
            daemon.process.log()
        )
    });
    let log = daemon.process.log();
    assert_eq!(status.code(), Some(0), "{log}");
    // The daemon waits 3 s at most for a scan that ignores its cancellation; a cancelled
    // scan stops at once.
    assert!(!log.contains("did not stop in time"), "{log}");
    assert!(started.elapsed() < Duration::from_millis(2500), "{log}");
    assert!(log.contains("stopped"), "{log}");
    drop(held);
}

#[test]
fn every_endpoint_answers_on_the_demo() {
    let daemon = Daemon::start(&["--demo"]);
    daemon.wait_ready();
    assert_eq!(daemon.get("/healthz"), (200, "ok\n".to_string()));
    assert_eq!(daemon.get("/readyz").0, 200);
    let findings = daemon.findings();
    assert_eq!(findings["stale"], false);
    assert_eq!(findings["schema_version"], 1);
    assert!(!findings["findings"].as_array().unwrap().is_empty());
    let (status, page) = daemon.get("/");
    assert_eq!(status, 200);
    assert!(page.contains("<h2>Findings by severity</h2>"), "{page}");
    assert!(page.contains("href=\"/metrics\""));
    let (status, metrics) = daemon.get("/metrics");
    assert_eq!(status, 200);
    assert!(
        metrics.contains("vpc_auditor_last_scan_success 1"),
        "{metrics}"
    );
}

#[test]
fn findings_match_the_once_report_for_the_same_source() {
    let once = run(auditor().args(["--once", "--demo", "--format", "json"]));
    let once: serde_json::Value = serde_json::from_slice(&once.stdout).unwrap();
    let daemon = Daemon::start(&["--demo"]);
    daemon.wait_ready();
    let served = daemon.findings();
    for key in [
        "schema_version",
        "tool",
        "scans",
        "vpcs",
        "findings",
        "summary",
    ] {
        assert_eq!(served[key], once[key], "{key}");
    }
}

#[test]
fn a_broken_snapshot_keeps_the_last_good_findings_and_says_they_are_stale() {
    let dir = tempfile::tempdir().unwrap();
    let good = include_str!("../examples/demo-snapshot.json");
    let path = write(dir.path(), "snapshot.json", good);
    let daemon = Daemon::start(&[
        "--from-snapshot",
        path.to_str().unwrap(),
        "--schedule",
        "* * * * * *",
    ]);
    daemon.wait_ready();
    let before = daemon.findings();
    assert_eq!(before["stale"], false);

    std::fs::write(&path, "{ not json").unwrap();
    let stale = wait_for(
        Duration::from_secs(20),
        "a failed scan",
        || {
            let doc = daemon.findings();
            (doc["stale"] == true).then_some(doc)
        },
        || daemon.process.log(),
    );
    assert_eq!(stale["findings"], before["findings"]);
    assert_eq!(stale["last_success_at"], before["last_success_at"]);
    assert!(stale["last_scan_error"]
        .as_str()
        .unwrap()
        .contains("snapshot.json"));
    let metrics = daemon.get("/metrics").1;
    assert!(
        metrics.contains("vpc_auditor_last_scan_success 0"),
        "{metrics}"
    );
    assert!(metrics.contains(
        "vpc_auditor_scan_errors_total{aws_account_id=\"\",aws_region=\"\",operation=\"none\",stage=\"collect\"}"
    ));

    std::fs::write(&path, good).unwrap();
    wait_for(
        Duration::from_secs(20),
        "a good scan again",
        || (daemon.findings()["stale"] == false).then_some(()),
        || daemon.process.log(),
    );
}

#[test]
fn bad_daemon_settings_exit_two_naming_the_input() {
    let out = run(auditor().args(["--demo", "--schedule", "*/5 * * * *"]));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("vpc-auditor: --schedule: expected a cron schedule of six fields"),
        "{err}"
    );

    let (_d, config) = temp_file("config.yaml", "fail_on: high\nschedule: '0 0 25 * * *'\n");
    let out = run(auditor().arg("--demo").arg("--config").arg(&config));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(&format!(
            "vpc-auditor: {}:2:11: schedule: ",
            config.display()
        )),
        "{err}"
    );

    let out = run(auditor().args(["--demo", "--listen", "localhost"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--listen: expected"));

    // A port already taken.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let out = run(auditor().args(["--demo", "--listen", &address]));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(&format!("vpc-auditor: cannot listen on {address}: ")),
        "{err}"
    );

    let out = run(auditor().args(["--once", "--demo", "--listen", "127.0.0.1:1"]));
    assert_eq!(out.status.code(), Some(2), "--listen is for the daemon");
}

#[test]
fn the_example_config_runs_as_a_daemon_against_moto() {
    let moto = Moto::start();
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/config.yaml");
    // --listen (added by Daemon::start) keeps the example's 0.0.0.0 off the test machine.
    let daemon = Daemon::start(&["--config", config, "--endpoint-url", &moto.endpoint()]);
    daemon.wait_ready();
    let findings = daemon.findings();
    assert_eq!(findings["stale"], false, "{findings}");
    let scans = findings["scans"].as_array().unwrap();
    assert!(scans.iter().all(|s| s["status"] == "ok"), "{findings}");
    let regions: Vec<&str> = scans.iter().filter_map(|s| s["region"].as_str()).collect();
    assert_eq!(
        regions,
        ["global", "us-east-1"],
        "IAM (global) and the configured region"
    );
    assert_eq!(scans[1]["account_id"], "123456789012");
    let metrics = daemon.get("/metrics").1;
    assert!(
        metrics.contains("vpc_auditor_last_scan_success 1"),
        "{metrics}"
    );
}
