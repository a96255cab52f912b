//! Secret hygiene: no credential, token or policy secret ever appears in what vpc-auditor
//! writes. A full scan against moto (the union-byoc pack, its ExternalId from
//! `UNION_EXTERNAL_ID`, a role whose trust policy carries a different ExternalId so the
//! drift finding has to talk about it) runs with known fake AWS credentials and a
//! basic-auth password, at debug and trace log level, as `--once` (JSON and table) and as the daemon;
//! every byte of stdout, stderr, the report files, /metrics, /findings and / is searched
//! for each secret.

mod common;
mod daemon_support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::process::Command;
use std::time::Duration;

use base64::Engine;
use common::cfn::union_role;
use common::{auditor, create_role, run, Moto};
use daemon_support::{wait_for, write, Daemon};

const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";
const ROLE: &str = "union-ai-admin";

const ACCESS_KEY_ID: &str = "AKIAHYGIENE7TEST4242";
const SECRET_ACCESS_KEY: &str = "hyg1ene/SecretAccessKey+Never+Logged/0123";
const SESSION_TOKEN: &str = "FwoGZXIvYXdzEHygieneSessionTokenNeverShown987654321";
/// The ExternalId the pack expects (configured through the environment).
const EXTERNAL_ID: &str = "ext-Hygiene-Expected-5150";
/// The ExternalId the role in AWS actually has: a secret too.
const ACTUAL_EXTERNAL_ID: &str = "ext-Hygiene-Actual-8086";
const PASSWORD: &str = "basic-Auth-Hygiene-Pw-31337";

const SECRETS: [(&str, &str); 6] = [
    ("access key id", ACCESS_KEY_ID),
    ("secret access key", SECRET_ACCESS_KEY),
    ("session token", SESSION_TOKEN),
    ("expected ExternalId", EXTERNAL_ID),
    ("actual ExternalId", ACTUAL_EXTERNAL_ID),
    ("basic-auth password", PASSWORD),
];

/// The auditor with the fake credentials and the ExternalId in its environment.
fn with_secrets(mut cmd: Command) -> Command {
    cmd.env("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
        .env("AWS_SESSION_TOKEN", SESSION_TOKEN)
        .env("UNION_EXTERNAL_ID", EXTERNAL_ID)
        .env_remove("RUST_LOG");
    cmd
}

/// A GET with basic auth, HTTP/1.0: the whole response, head and body.
fn get(port: u16, path: &str, password: &str) -> String {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("prometheus:{password}"));
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nAuthorization: Basic {auth}\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_appears_in_logs_metrics_pages_or_reports() {
    let moto = Moto::start();
    let iam = moto.iam().await;
    let params = BTreeMap::from([
        ("CrossAccountRoleName", ROLE),
        ("ExternalId", ACTUAL_EXTERNAL_ID),
    ]);
    let role = union_role("v0.13", ACCOUNT, REGION, &params);
    assert!(role.trust.to_string().contains(ACTUAL_EXTERNAL_ID));
    create_role(&iam, ROLE, &role.trust, &role.policies).await;

    let dir = tempfile::tempdir().unwrap();
    let hash = bcrypt::hash(PASSWORD, 4).unwrap();
    write(
        dir.path(),
        "web.yaml",
        &format!("basic_auth_users:\n  prometheus: {hash}\n"),
    );
    let config = write(
        dir.path(),
        "config.yaml",
        &format!(
            "regions: [{REGION}]\nscope:\n  exclude_default_vpc: true\nweb_config_file: web.yaml\nschedule: \"0 0 0 1 1 *\"\n"
        ),
    );
    let mut everything: Vec<(String, String)> = Vec::new();

    // --once, JSON on stdout (at trace level) and a table in a file (at debug level).
    let mut once = with_secrets(moto.once_json(Some(&config)));
    once.args(["--log-level", "trace"]);
    let out = run(&mut once);
    let report: serde_json::Value = common::json_report(&out);
    let drift: Vec<_> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule_id"] == "iam.trust_policy_drift")
        .collect();
    assert_eq!(
        drift.len(),
        1,
        "the differing ExternalId is drift: {report:#}"
    );
    let drift_text = drift[0].to_string();
    assert!(drift_text.contains("sts:ExternalId"), "{drift_text}");
    let stderr = common::stderr(&out);
    assert!(stderr.contains("DEBUG"), "debug logging is on: {stderr}");
    everything.push((
        "--once json stdout".into(),
        String::from_utf8_lossy(&out.stdout).into(),
    ));
    everything.push(("--once json stderr".into(), stderr));

    let table = dir.path().join("report.txt");
    let mut once = with_secrets(auditor());
    once.args(["--once", "--format", "table", "--log-level", "debug"])
        .args(["--endpoint-url", &moto.endpoint()])
        .arg("--config")
        .arg(&config)
        .arg("--output")
        .arg(&table);
    let out = run(&mut once);
    assert_eq!(out.status.code(), Some(1), "{}", common::stderr(&out));
    let table = std::fs::read_to_string(&table).unwrap();
    assert!(table.contains("iam.trust_policy_drift"), "{table}");
    everything.push((
        "--once table stdout".into(),
        String::from_utf8_lossy(&out.stdout).into(),
    ));
    everything.push(("--once table stderr".into(), common::stderr(&out)));
    everything.push(("--once table report".into(), table));

    // The daemon, with basic auth, at debug level.
    let mut cmd = with_secrets(auditor());
    cmd.args(["--endpoint-url", &moto.endpoint(), "--log-level", "debug"])
        .arg("--config")
        .arg(&config);
    let mut daemon = Daemon::spawn(cmd);
    wait_for(
        Duration::from_secs(60),
        "the daemon's first scan",
        || (daemon_support::http_get(daemon.port, "/readyz").ok()?.0 == 200).then_some(()),
        || daemon.process.log(),
    );
    for path in ["/metrics", "/findings", "/"] {
        let response = get(daemon.port, path, PASSWORD);
        assert!(response.starts_with("HTTP/1.0 200"), "{path}: {response}");
        everything.push((format!("daemon {path}"), response));
        // A wrong password, which the logs must not echo either.
        let response = get(daemon.port, path, &format!("{PASSWORD}-wrong"));
        assert!(response.starts_with("HTTP/1.0 401"), "{path}: {response}");
    }
    assert!(everything
        .iter()
        .any(|(what, text)| what == "daemon /findings" && text.contains("iam.trust_policy_drift")));
    // A reload, so its log lines are searched too.
    daemon.process.signal("HUP");
    std::thread::sleep(Duration::from_secs(1));
    daemon.process.signal("TERM");
    assert!(daemon.process.wait_exit(Duration::from_secs(15)).is_some());
    everything.push(("daemon stderr".into(), daemon.process.log()));

    let mut leaks = Vec::new();
    for (what, text) in &everything {
        for (name, secret) in SECRETS {
            if text.contains(secret) {
                let at = text.find(secret).unwrap();
                let context = text
                    .get(at.saturating_sub(200)..(at + secret.len() + 50).min(text.len()))
                    .unwrap_or(secret);
                leaks.push(format!("{name} in {what}: …{context}…"));
            }
        }
    }
    assert!(leaks.is_empty(), "secrets leaked:\n{}", leaks.join("\n\n"));
}
