//! The daemon's listener through the real binary: TLS and basic auth from a web config
//! file (certificates made here with rcgen; a small rustls client, no curl), endpoints the
//! config turns off, bad web configs rejected at start, and a real Prometheus scraping
//! over TLS with basic auth.

mod common;
mod daemon_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use common::auditor;
use daemon_support::{http_get, wait_for, write, Daemon, Prometheus};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

const USER: &str = "prometheus";
const PASSWORD: &str = "correct horse battery staple";

/// A CA and a server certificate it signed for `localhost` and 127.0.0.1, as PEM files in
/// `dir`: `ca.crt`, `server.crt`, `server.key`.
fn make_certificates(dir: &Path) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "vpc-auditor test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let server = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    write(dir, "ca.crt", &ca.pem());
    write(dir, "server.crt", &server.pem());
    write(dir, "server.key", &key.serialize_pem());
}

/// The web config: TLS with the server certificate, and one basic-auth user.
fn web_config(dir: &Path) -> PathBuf {
    make_certificates(dir);
    let hash = bcrypt::hash(PASSWORD, 4).unwrap();
    write(
        dir,
        "web.yaml",
        &format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  {USER}: {hash}\n"
        ),
    )
}

/// A response: status, head (lower-cased) and body.
type Response = (u16, String, String);

/// A GET over TLS (HTTP/1.0, so the server closes after the answer), trusting only the
/// PEM certificates in `ca_file`, with basic auth when `credentials` is given.
fn https_get(
    port: u16,
    ca_file: &Path,
    path: &str,
    credentials: Option<(&str, &str)>,
) -> std::io::Result<Response> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_file).map_err(std::io::Error::other)? {
        roots
            .add(cert.map_err(std::io::Error::other)?)
            .map_err(std::io::Error::other)?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(std::io::Error::other)?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = ServerName::try_from("localhost").unwrap();
    let mut connection =
        rustls::ClientConnection::new(Arc::new(config), name).map_err(std::io::Error::other)?;
    let mut socket = TcpStream::connect(("127.0.0.1", port))?;
    socket.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut tls = rustls::Stream::new(&mut connection, &mut socket);
    let authorization = credentials
        .map(|(user, password)| {
            format!(
                "Authorization: Basic {}\r\n",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            )
        })
        .unwrap_or_default();
    write!(
        tls,
        "GET {path} HTTP/1.0\r\nHost: localhost\r\n{authorization}\r\n"
    )?;
    let mut response = Vec::new();
    match tls.read_to_end(&mut response) {
        Ok(_) => {}
        // A server that closes without close_notify: the answer is complete anyway.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !response.is_empty() => {}
        Err(e) => return Err(e),
    }
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no HTTP head in {response:?}")))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status in {head:?}")))?;
    Ok((status, head.to_ascii_lowercase(), body.to_string()))
}

/// Starts the daemon on the demo snapshot with `extra` arguments, and waits until it
/// answers `/healthz` over TLS.
fn start_tls_daemon(ca_file: &Path, extra: &[&str]) -> Daemon {
    let mut cmd = auditor();
    cmd.args(["--demo", "--log-level", "vpc_auditor=debug"])
        .args(extra);
    let daemon = Daemon::spawn(cmd);
    wait_for(
        Duration::from_secs(20),
        "the daemon to answer /healthz over TLS",
        || match https_get(daemon.port, ca_file, "/healthz", None) {
            Ok((200, _, _)) => Some(()),
            _ => None,
        },
        || daemon.process.log(),
    );
    daemon
}

#[test]
fn tls_and_basic_auth_guard_the_listener_and_probes_stay_open() {
    let dir = tempfile::tempdir().unwrap();
    let web = web_config(dir.path());
    let ca = dir.path().join("ca.crt");
    let daemon = start_tls_daemon(&ca, &["--web-config-file", web.to_str().unwrap()]);
    let get = |path: &str, credentials: Option<(&str, &str)>| {
        https_get(daemon.port, &ca, path, credentials)
            .unwrap_or_else(|e| panic!("GET {path}: {e}\n{}", daemon.process.log()))
    };

    // The probes answer without credentials.
    wait_for(
        Duration::from_secs(60),
        "the first scan (/readyz 200)",
        || (get("/readyz", None).0 == 200).then_some(()),
        || daemon.process.log(),
    );

    for path in ["/metrics", "/findings", "/"] {
        for credentials in [
            None,
            Some((USER, "wrong password")),
            Some(("someone-else", PASSWORD)),
        ] {
            let (status, head, body) = get(path, credentials);
            assert_eq!(status, 401, "{path} with {credentials:?}: {body}");
            assert!(
                head.contains("www-authenticate: basic"),
                "{path}: no challenge in {head}"
            );
        }
        let (status, _, body) = get(path, Some((USER, PASSWORD)));
        assert_eq!(status, 200, "{path}: {body}");
    }
    let (_, _, metrics) = get("/metrics", Some((USER, PASSWORD)));
    assert!(
        metrics.contains("vpc_auditor_last_scan_success 1"),
        "{metrics}"
    );

    // Plain HTTP to the TLS port gets no HTTP answer.
    if let Ok((status, body)) = http_get(daemon.port, "/healthz") {
        panic!("plain HTTP answered {status}: {body}");
    }
    // A client that does not trust the server's CA fails its handshake.
    let other = tempfile::tempdir().unwrap();
    make_certificates(other.path());
    assert!(https_get(daemon.port, &other.path().join("ca.crt"), "/healthz", None).is_err());

    // The password never reaches the logs.
    assert!(!daemon.process.log().contains(PASSWORD));
}

#[test]
fn turned_off_endpoints_answer_404_and_metrics_stays() {
    let (_dir, config) = common::temp_file(
        "config.yaml",
        "endpoints:\n  findings: false\n  status_page: false\n",
    );
    let daemon = Daemon::start(&["--demo", "--config", config.to_str().unwrap()]);
    daemon.wait_ready();
    assert_eq!(daemon.get("/findings").0, 404);
    assert_eq!(daemon.get("/").0, 404);
    let (status, body) = daemon.get("/metrics");
    assert_eq!(status, 200);
    assert!(body.contains("vpc_auditor_last_scan_success 1"), "{body}");
    assert_eq!(daemon.get("/healthz").0, 200);
}

/// Runs the daemon with `args`, expects it to exit 2 within seconds, and returns stderr.
fn rejected_at_start(args: &[&str]) -> String {
    let mut child = auditor()
        .args(["--demo", "--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the daemon did not reject {args:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(2), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn a_bad_web_config_stops_the_start_naming_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    make_certificates(dir.path());
    write(dir.path(), "not-a-cert.pem", "hello\n");
    let cases = [
        (
            "basic_auth_users:\n  prometheus: plain-text-password\n",
            ":2:",
            "basic_auth_users.prometheus",
            "bcrypt",
        ),
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  cipher_suites: [TLS_AES_128_GCM_SHA256]\n",
            ":4:",
            "tls_server_config.cipher_suites",
            "unknown field `cipher_suites`",
        ),
        (
            "tls_server_config:\n  cert_file: missing.crt\n  key_file: server.key\n",
            ":2:",
            "tls_server_config.cert_file",
            "missing.crt",
        ),
        (
            "tls_server_config:\n  cert_file: not-a-cert.pem\n  key_file: server.key\n",
            ":2:",
            "tls_server_config.cert_file",
            "no PEM certificate",
        ),
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: ca.crt\n",
            ":3:",
            "tls_server_config.key_file",
            "private key",
        ),
    ];
    for (text, line, field, needle) in cases {
        let path = write(dir.path(), "web.yaml", text);
        let stderr = rejected_at_start(&["--web-config-file", path.to_str().unwrap()]);
        let shown = format!("{}{line}", path.display());
        assert!(stderr.contains(&shown), "{text}: {stderr}");
        assert!(stderr.contains(&format!("{field}:")), "{text}: {stderr}");
        assert!(stderr.contains(needle), "{text}: {stderr}");
        assert!(!stderr.contains("plain-text-password"), "{stderr}");
    }
    // The config key is relative to the config file, and read the same way.
    write(dir.path(), "web.yaml", "basic_auth_users:\n  a: b\n");
    let config = write(dir.path(), "config.yaml", "web_config_file: web.yaml\n");
    let stderr = rejected_at_start(&["--config", config.to_str().unwrap()]);
    assert!(
        stderr.contains(&format!("{}:2:", dir.path().join("web.yaml").display())),
        "{stderr}"
    );
}

#[test]
fn prometheus_scrapes_over_tls_with_basic_auth() {
    let dir = tempfile::tempdir().unwrap();
    let web = web_config(dir.path());
    let ca = dir.path().join("ca.crt");
    let password_file = write(dir.path(), "password", PASSWORD);
    let daemon = start_tls_daemon(&ca, &["--web-config-file", web.to_str().unwrap()]);
    let prometheus = Prometheus::start_with(
        daemon.port,
        &format!(
            "    scheme: https\n    tls_config:\n      ca_file: {}\n      server_name: localhost\n    basic_auth:\n      username: {USER}\n      password_file: {}\n",
            ca.display(),
            password_file.display()
        ),
    );
    prometheus.wait_for(
        "vpc_auditor_last_scan_success",
        || daemon.process.log() + &prometheus.process.log(),
        |samples| (samples.first()?.value == 1.0).then_some(()),
    );
    let up = prometheus.query("up{job=\"vpc-auditor\"}");
    assert_eq!(up.len(), 1);
    assert_eq!(up[0].value, 1.0);

    // Without the credentials the same scrape fails: the target is down.
    let no_auth = Prometheus::start_with(
        daemon.port,
        &format!(
            "    scheme: https\n    tls_config:\n      ca_file: {}\n      server_name: localhost\n",
            ca.display()
        ),
    );
    no_auth.wait_for(
        "up{job=\"vpc-auditor\"}",
        || no_auth.process.log(),
        |samples| (samples.first()?.value == 0.0).then_some(()),
    );
}
