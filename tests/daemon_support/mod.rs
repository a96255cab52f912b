//! Support for the daemon's end-to-end tests: the real `vpc-auditor` daemon and a real
//! Prometheus server as child processes on free 127.0.0.1 ports, each killed when its guard
//! drops, and a tiny HTTP/1.0 GET over a `TcpStream` (no client crate to compile).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::common::{auditor, free_port};

/// A child process, killed and reaped on drop; its stderr goes to a log file shown on failure.
pub struct Guarded {
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Guarded {
    fn spawn(mut cmd: Command, name: &str) -> Guarded {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Guarded {
            child,
            log,
            _dir: dir,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends `signal` (e.g. `TERM`) with kill(1), which avoids a libc dependency.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits for the process to exit, up to `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A GET over HTTP/1.0 (so the answer is never chunked): status code and body.
pub fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no HTTP head in {response:?}")))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status in {head:?}")))?;
    Ok((status, body.to_string()))
}

/// Polls `check` every 200 ms until it returns `Some`, or panics after `limit` with `what`
/// and `context()` (e.g. the process logs).
pub fn wait_for<T>(
    limit: Duration,
    what: &str,
    mut check: impl FnMut() -> Option<T>,
    context: impl Fn() -> String,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return value;
        }
        if Instant::now() > deadline {
            panic!(
                "timed out after {limit:?} waiting for {what}\n{}",
                context()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The real daemon on a free loopback port.
pub struct Daemon {
    pub process: Guarded,
    pub port: u16,
}

impl Daemon {
    /// Starts `cmd` (a `vpc-auditor` command with its arguments) plus
    /// `--listen 127.0.0.1:<free port>`, without waiting for it.
    pub fn spawn(mut cmd: Command) -> Daemon {
        let port = free_port();
        cmd.args(["--listen", &format!("127.0.0.1:{port}")]);
        Daemon {
            process: Guarded::spawn(cmd, "vpc-auditor"),
            port,
        }
    }

    /// Starts `vpc-auditor` with `args` plus `--listen 127.0.0.1:<free port>`, and waits
    /// until it answers `/healthz`.
    pub fn start(args: &[&str]) -> Daemon {
        let mut cmd = auditor();
        cmd.args(args).args(["--log-level", "vpc_auditor=info"]);
        let daemon = Daemon::spawn(cmd);
        let port = daemon.port;
        wait_for(
            Duration::from_secs(20),
            "the daemon to answer /healthz",
            || match http_get(port, "/healthz") {
                Ok((200, _)) => Some(()),
                _ => None,
            },
            || daemon.process.log(),
        );
        daemon
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        http_get(self.port, path)
            .unwrap_or_else(|e| panic!("GET {path}: {e}\n{}", self.process.log()))
    }

    /// Waits until `/readyz` says the first scan completed.
    pub fn wait_ready(&self) {
        wait_for(
            Duration::from_secs(60),
            "the first scan (/readyz 200)",
            || (self.get("/readyz").0 == 200).then_some(()),
            || self.process.log(),
        );
    }

    /// The `/findings` document.
    pub fn findings(&self) -> serde_json::Value {
        let (status, body) = self.get("/findings");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).expect("/findings is JSON")
    }
}

/// One sample of an instant query: the series' labels and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A real Prometheus server scraping one target every second, with its storage in a
/// temp dir; killed on drop.
pub struct Prometheus {
    pub process: Guarded,
    pub port: u16,
    _config: tempfile::TempDir,
}

impl Prometheus {
    pub fn start(target_port: u16) -> Prometheus {
        Prometheus::start_with(target_port, "")
    }

    /// Like [`Prometheus::start`], with `job_extra` (YAML lines indented for the scrape
    /// job, e.g. `    scheme: https\n`) added to the scrape job.
    pub fn start_with(target_port: u16, job_extra: &str) -> Prometheus {
        let binary = std::env::var_os("PROMETHEUS").unwrap_or_else(|| "prometheus".into());
        let port = free_port();
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: vpc-auditor\n    static_configs:\n      \
                 - targets: ['127.0.0.1:{target_port}']\n{job_extra}"
            ),
        )
        .expect("write prometheus.yml");
        let mut cmd = Command::new(&binary);
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn");
        let prometheus = Prometheus {
            process: Guarded::spawn(cmd, "prometheus"),
            port,
            _config: dir,
        };
        wait_for(
            Duration::from_secs(30),
            "Prometheus to be ready",
            || match http_get(port, "/-/ready") {
                Ok((200, _)) => Some(()),
                _ => None,
            },
            || prometheus.process.log(),
        );
        prometheus
    }

    /// Runs an instant PromQL query through the HTTP API.
    pub fn query(&self, promql: &str) -> Vec<Sample> {
        let encoded =
            percent_encoding::utf8_percent_encode(promql, percent_encoding::NON_ALPHANUMERIC);
        let (status, body) = http_get(self.port, &format!("/api/v1/query?query={encoded}"))
            .unwrap_or_else(|e| panic!("query {promql}: {e}"));
        assert_eq!(status, 200, "query {promql}: {body}");
        let answer: serde_json::Value = serde_json::from_str(&body).expect("query answer is JSON");
        assert_eq!(answer["status"], "success", "{body}");
        answer["data"]["result"]
            .as_array()
            .map(|results| {
                results
                    .iter()
                    .map(|r| Sample {
                        labels: serde_json::from_value(r["metric"].clone()).unwrap_or_default(),
                        value: r["value"][1]
                            .as_str()
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(f64::NAN),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits until `promql` returns something `accept` takes, and returns it.
    pub fn wait_for<T>(
        &self,
        promql: &str,
        context: impl Fn() -> String,
        mut accept: impl FnMut(&[Sample]) -> Option<T>,
    ) -> T {
        wait_for(
            Duration::from_secs(60),
            &format!("PromQL {promql}"),
            || accept(&self.query(promql)),
            || format!("last answer: {:?}\n{}", self.query(promql), context()),
        )
    }
}

/// Writes `snapshot` to `path` atomically, so the daemon never reads half a file.
pub fn write_snapshot(path: &Path, snapshot: &serde_json::Value) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(snapshot).unwrap()).expect("write snapshot");
    std::fs::rename(&tmp, path).expect("rename snapshot");
}

/// A [`failing_daemon`] scraped by a real Prometheus, returned once Prometheus holds three
/// samples of the daemon's error counter: counters need them before `rate()` and
/// `increase()` answer.
pub fn scraped_failing_daemon(dir: &Path) -> (Daemon, Prometheus) {
    let daemon = failing_daemon(dir);
    let prometheus = Prometheus::start(daemon.port);
    prometheus.wait_for(
        "count_over_time(vpc_auditor_scan_errors_total{aws_region=\"us-east-1\"}[1m])",
        || both_logs(&daemon, &prometheus),
        |s| s.iter().any(|s| s.value >= 3.0).then_some(()),
    );
    (daemon, prometheus)
}

/// The daemon's and Prometheus's logs, for a failure message.
pub fn both_logs(daemon: &Daemon, prometheus: &Prometheus) -> String {
    format!(
        "daemon log:\n{}\nprometheus log:\n{}",
        daemon.process.log(),
        prometheus.process.log()
    )
}

/// A daemon on a snapshot file that starts good (the demo, with API calls counted) and
/// then fails in us-east-1 at every scan: so its scrape carries every metric the daemon
/// has, the error and API-call counters included, and us-east-1 keeps its last good
/// findings and subnets. Scans run every second.
pub fn failing_daemon(dir: &Path) -> Daemon {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo-snapshot.json");
    let mut snapshot: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&demo).expect("read examples/demo-snapshot.json"),
    )
    .expect("examples/demo-snapshot.json is JSON");
    let regions = snapshot["regions"].as_array_mut().expect("regions");
    let region = regions
        .iter_mut()
        .find(|r| r["region"] == "us-east-1")
        .expect("the demo snapshot has us-east-1");
    let account = region["account_id"].clone();
    region["api_calls"] = serde_json::json!({"ec2:DescribeSubnets": 2, "ec2:DescribeVpcs": 1, "sts:GetCallerIdentity": 1});
    let path = dir.join("snapshot.json");
    write_snapshot(&path, &snapshot);

    // An events queue on a loopback port nobody listens on: its reads fail, so the events
    // series and the unreadable-queue alert have data too.
    let closed = format!("http://127.0.0.1:{}", free_port());
    let config = write(
        dir,
        "config.yaml",
        &format!("events:\n  queue_url: {closed}/123456789012/vpc-auditor-events\n"),
    );
    let daemon = Daemon::start(&[
        "--config",
        config.to_str().unwrap(),
        "--endpoint-url",
        &closed,
        "--from-snapshot",
        path.to_str().unwrap(),
        "--schedule",
        "*/1 * * * * *",
    ]);
    daemon.wait_ready();

    let regions = snapshot["regions"].as_array_mut().unwrap();
    for region in regions.iter_mut().filter(|r| r["region"] == "us-east-1") {
        *region = serde_json::json!({
            "account_id": account,
            "region": "us-east-1",
            "error": {"operation": "ec2:DescribeSubnets",
                      "message": "AccessDenied: not authorized to perform ec2:DescribeSubnets"},
            "api_calls": {"ec2:DescribeSubnets": 1, "ec2:DescribeVpcs": 1, "sts:GetCallerIdentity": 1}
        });
    }
    write_snapshot(&path, &snapshot);
    wait_for(
        Duration::from_secs(30),
        "the daemon to count a us-east-1 scan error and a failed queue read",
        || {
            let (_, body) = daemon.get("/metrics");
            let errors = body.lines().any(|l| {
                l.starts_with("vpc_auditor_scan_errors_total{")
                    && l.contains("aws_region=\"us-east-1\"")
            });
            // The queue's first read has failed (after the SDK's retries).
            let queue = body.contains("vpc_auditor_event_queue_up{");
            (errors && queue).then_some(())
        },
        || daemon.process.log(),
    );
    daemon
}

/// The path of a file in a temp dir, written with `text`.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write file");
    path
}
