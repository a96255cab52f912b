//! Shared test support: a real moto server on a free loopback port (killed on drop), SDK
//! clients pointed at it, and a runner for the real `vpc-auditor` binary.
#![allow(dead_code)]

pub mod cfn;
pub mod scenario;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region};
use aws_sdk_ec2::config::Credentials;

pub const REGION: &str = "us-east-1";

/// A moto server process; killed when dropped.
pub struct Moto {
    child: Child,
    pub port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Moto {
    /// Starts moto on 127.0.0.1 on a free port and waits until it answers.
    pub fn start() -> Moto {
        let binary = moto_binary();
        let port = free_port();
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("moto.log");
        let log_file = std::fs::File::create(&log).expect("moto log");
        let child = Command::new(&binary)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let moto = Moto {
            child,
            port,
            log,
            _dir: dir,
        };
        moto.wait_ready();
        moto
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr: SocketAddr = ([127, 0, 0, 1], self.port).into();
        while Instant::now() < deadline {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "moto did not start on port {}: {}",
            self.port,
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// SDK config for moto's default account (123456789012) with test credentials.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(self.endpoint())
            .region(Region::new(REGION))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
            .load()
            .await
    }

    pub async fn ec2(&self) -> aws_sdk_ec2::Client {
        aws_sdk_ec2::Client::new(&self.sdk_config().await)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("MOTO_SERVER") {
        return PathBuf::from(path);
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/moto/bin/moto_server");
    assert!(
        path.exists(),
        "moto server not found at {}: run scripts/setup-test-env.sh (scripts/test.sh does)",
        path.display()
    );
    path
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The auditor binary that cargo built for these tests.
pub fn auditor() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vpc-auditor"));
    hermetic_aws_env(&mut cmd);
    cmd
}

/// Static test credentials and no profile or instance metadata, so nothing but loopback
/// is ever contacted.
pub fn hermetic_aws_env(cmd: &mut Command) {
    for var in [
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_SESSION_TOKEN",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", REGION)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent/vpc-auditor-test/config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/vpc-auditor-test/credentials",
        )
        .env("NO_COLOR", "1");
}

/// Runs the auditor and returns its output.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run vpc-auditor")
}

/// A run's stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Parses stdout as the JSON report, showing stderr if it is not.
pub fn json_report(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not a JSON report ({e}); exit {:?}\nstdout: {}\nstderr: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Writes `text` to a file in a fresh temp dir and returns both (the dir must outlive use).
pub fn temp_file(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("write temp file");
    (dir, path)
}

impl Moto {
    /// An IAM client (IAM is global; moto serves it on the same port).
    pub async fn iam(&self) -> aws_sdk_iam::Client {
        aws_sdk_iam::Client::new(&self.sdk_config().await)
    }
}

/// Creates `name` in moto with `trust` and each of `policies` as an inline policy.
pub async fn create_role(
    iam: &aws_sdk_iam::Client,
    name: &str,
    trust: &serde_json::Value,
    policies: &[serde_json::Value],
) {
    iam.create_role()
        .role_name(name)
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .expect("create role");
    for (i, policy) in policies.iter().enumerate() {
        iam.put_role_policy()
            .role_name(name)
            .policy_name(format!("policy-{i}"))
            .policy_document(policy.to_string())
            .send()
            .await
            .expect("put role policy");
    }
}

/// Creates the managed policy `name` with `document` and sets it as `role`'s permissions
/// boundary; its ARN.
pub async fn set_boundary(
    iam: &aws_sdk_iam::Client,
    role: &str,
    name: &str,
    document: &serde_json::Value,
) -> String {
    let boundary = iam
        .create_policy()
        .policy_name(name)
        .policy_document(document.to_string())
        .send()
        .await
        .expect("create boundary policy");
    let arn = boundary
        .policy()
        .and_then(|p| p.arn())
        .expect("boundary arn")
        .to_string();
    iam.put_role_permissions_boundary()
        .role_name(role)
        .permissions_boundary(&arn)
        .send()
        .await
        .expect("put permissions boundary");
    arn
}

impl Moto {
    /// `vpc-auditor --once --format json` against this moto server, with `config` if given.
    pub fn once_json(&self, config: Option<&Path>) -> Command {
        let mut cmd = auditor();
        cmd.args([
            "--once",
            "--format",
            "json",
            "--endpoint-url",
            &self.endpoint(),
        ]);
        if let Some(config) = config {
            cmd.arg("--config").arg(config);
        }
        cmd
    }
}

/// Writes `text` to a file called `name`, runs `--once --demo FLAG FILE`, asserts exit 2 (bad
/// input), and returns the file's path as shown in messages and the run's stderr.
pub fn rejected_input(flag: &str, name: &str, text: &str) -> (String, String) {
    let (_dir, path) = temp_file(name, text);
    let out = run(auditor().args(["--once", "--demo", flag]).arg(&path));
    assert_eq!(out.status.code(), Some(2), "{name} must be rejected");
    (
        path.display().to_string(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
