//! Config reload on SIGHUP, through the real binary on the demo snapshot: a bad new config
//! is rejected (logged with file, line and field, counted in the reload metrics) and the
//! old one keeps running on its old schedule; a good one takes effect from the next scan
//! (its rule overrides and its schedule) and the next request (endpoints, auth).

mod common;
mod daemon_support;

use std::time::Duration;

use base64::Engine;
use common::auditor;
use daemon_support::{wait_for, write, Daemon};

/// A rule the demo snapshot fails; the first config turns it off.
const RULE: &str = "vpc.az_count";

/// Never fires within a test: only the start-up scan runs.
const YEARLY: &str = "0 0 0 1 1 *";

fn metric(daemon: &Daemon, series: &str) -> Option<f64> {
    let (status, body) = daemon.get("/metrics");
    assert_eq!(status, 200, "{body}");
    body.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

fn findings_of(daemon: &Daemon, rule: &str) -> usize {
    daemon.findings()["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule_id"] == rule)
        .count()
}

fn config(schedule: &str, rule_enabled: bool, extra: &str) -> String {
    format!(
        "schedule: \"{schedule}\"\nrule_overrides:\n  {RULE}:\n    enabled: {rule_enabled}\n{extra}"
    )
}

const SUCCESSES: &str = "vpc_auditor_config_reloads_total{result=\"success\"}";
const FAILURES: &str = "vpc_auditor_config_reloads_total{result=\"failure\"}";
const LAST_OK: &str = "vpc_auditor_config_last_reload_successful";
const SCANS: &str = "vpc_auditor_scans_total";

#[test]
fn a_bad_reload_keeps_the_old_config_and_a_good_one_takes_effect() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "config.yaml", &config(YEARLY, false, ""));
    let daemon = Daemon::start(&["--demo", "--config", path.to_str().unwrap()]);
    daemon.wait_ready();
    // Without the rule, the demo has no such finding; the reload metrics start clean.
    assert_eq!(findings_of(&daemon, RULE), 0);
    assert_eq!(metric(&daemon, SCANS), Some(1.0));
    assert_eq!(metric(&daemon, SUCCESSES), Some(0.0));
    assert_eq!(metric(&daemon, FAILURES), Some(0.0));
    assert_eq!(metric(&daemon, LAST_OK), Some(1.0));

    // A bad config: an unknown key on line 5, with a schedule that would scan every second.
    write(
        dir.path(),
        "config.yaml",
        &config("* * * * * *", true, "scope:\n  vpc_idz: [vpc-1]\n"),
    );
    daemon.process.signal("HUP");
    wait_for(
        Duration::from_secs(20),
        "the reload failure in the metrics",
        || (metric(&daemon, FAILURES) == Some(1.0)).then_some(()),
        || daemon.process.log(),
    );
    assert_eq!(metric(&daemon, LAST_OK), Some(0.0));
    assert_eq!(metric(&daemon, SUCCESSES), Some(0.0));
    let log = daemon.process.log();
    assert!(
        log.contains(&format!("{}:6:", path.display())) && log.contains("scope.vpc_idz"),
        "the error names file, line and field: {log}"
    );
    assert!(log.contains("config reload failed"), "{log}");
    // Still serving, still on the yearly schedule, still without the rule.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        metric(&daemon, SCANS),
        Some(1.0),
        "no scan on the rejected schedule"
    );
    assert_eq!(findings_of(&daemon, RULE), 0);

    // A good config: scan every second, with the rule on.
    write(dir.path(), "config.yaml", &config("* * * * * *", true, ""));
    daemon.process.signal("HUP");
    wait_for(
        Duration::from_secs(20),
        "the reload success in the metrics",
        || (metric(&daemon, SUCCESSES) == Some(1.0)).then_some(()),
        || daemon.process.log(),
    );
    assert_eq!(metric(&daemon, LAST_OK), Some(1.0));
    assert_eq!(metric(&daemon, FAILURES), Some(1.0));
    wait_for(
        Duration::from_secs(30),
        "a scan on the new schedule with the rule back on",
        || (findings_of(&daemon, RULE) > 0 && metric(&daemon, SCANS)? >= 2.0).then_some(()),
        || daemon.process.log(),
    );
    // The daemon stops cleanly after reloads.
    daemon.process.signal("TERM");
    let mut daemon = daemon;
    let status = daemon.process.wait_exit(Duration::from_secs(15));
    assert_eq!(status.and_then(|s| s.code()), Some(0));
}

#[test]
fn a_reload_applies_new_endpoints_and_basic_auth_users_to_the_next_request() {
    let dir = tempfile::tempdir().unwrap();
    let password = "reloaded-pass";
    let hash = bcrypt::hash(password, 4).unwrap();
    write(dir.path(), "web.yaml", "# no auth yet\n");
    let path = write(
        dir.path(),
        "config.yaml",
        &format!("schedule: \"{YEARLY}\"\nweb_config_file: web.yaml\n"),
    );
    let daemon = Daemon::start(&["--demo", "--config", path.to_str().unwrap()]);
    daemon.wait_ready();
    assert_eq!(daemon.get("/findings").0, 200);

    write(
        dir.path(),
        "web.yaml",
        &format!("basic_auth_users:\n  ops: {hash}\n"),
    );
    write(
        dir.path(),
        "config.yaml",
        &format!(
            "schedule: \"{YEARLY}\"\nweb_config_file: web.yaml\nendpoints: {{findings: false}}\n"
        ),
    );
    daemon.process.signal("HUP");
    wait_for(
        Duration::from_secs(20),
        "basic auth after the reload",
        || (daemon.get("/metrics").0 == 401).then_some(()),
        || daemon.process.log(),
    );
    assert_eq!(daemon.get("/healthz").0, 200, "probes stay open");
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("ops:{password}"));
    let get = |path: &str| {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", daemon.port)).unwrap();
        use std::io::{Read, Write};
        write!(
            stream,
            "GET {path} HTTP/1.0\r\nHost: x\r\nAuthorization: Basic {auth}\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    };
    assert!(get("/metrics").starts_with("HTTP/1.0 200"));
    assert!(get("/findings").starts_with("HTTP/1.0 404"), "turned off");
    assert!(get("/").starts_with("HTTP/1.0 200"));

    // A web config that no longer parses is a failed reload: the users stay.
    write(
        dir.path(),
        "web.yaml",
        "basic_auth_users:\n  ops: not-a-hash\n",
    );
    daemon.process.signal("HUP");
    wait_for(
        Duration::from_secs(20),
        "the failed reload",
        || (metric_with_auth(&get, FAILURES) == Some(1.0)).then_some(()),
        || daemon.process.log(),
    );
    assert_eq!(daemon.get("/metrics").0, 401);
    let log = daemon.process.log();
    assert!(
        log.contains(&format!("{}:2:", dir.path().join("web.yaml").display())),
        "{log}"
    );
    assert!(!log.contains(password), "{log}");
}

fn metric_with_auth(get: &dyn Fn(&str) -> String, series: &str) -> Option<f64> {
    get("/metrics")
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn without_a_config_file_a_reload_rereads_the_flags_files() {
    // SIGHUP with only flags: the packs and suppressions they name are read again.
    let dir = tempfile::tempdir().unwrap();
    let suppressions = write(dir.path(), "s.yaml", "suppressions: []\n");
    let mut cmd = auditor();
    cmd.args(["--demo", "--schedule", YEARLY, "--suppressions"])
        .arg(&suppressions)
        .args(["--log-level", "vpc_auditor=info"]);
    let daemon = Daemon::spawn(cmd);
    wait_for(
        Duration::from_secs(20),
        "the daemon",
        || (daemon_support::http_get(daemon.port, "/healthz").ok()?.0 == 200).then_some(()),
        || daemon.process.log(),
    );
    write(dir.path(), "s.yaml", "suppressions: [oops\n");
    daemon.process.signal("HUP");
    wait_for(
        Duration::from_secs(20),
        "the failed reload",
        || (metric(&daemon, FAILURES) == Some(1.0)).then_some(()),
        || daemon.process.log(),
    );
    assert!(daemon
        .process
        .log()
        .contains(&suppressions.display().to_string()));
}
