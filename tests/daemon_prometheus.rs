//! End to end with a real Prometheus: moto holds a broken VPC, the real daemon scans it
//! every 2 seconds, and a real Prometheus server scrapes the daemon every second. PromQL
//! must show the findings, lose the one fixed through the SDK after the next scan, and keep
//! the rest with the success gauge at 0 once moto is gone. A real scrape must also pass
//! `promtool check metrics`. All traffic stays on 127.0.0.1.

mod common;
mod daemon_support;

use std::io::Write;
use std::process::{Command, Stdio};

use aws_sdk_ec2::types::AttributeBooleanValue;
use common::scenario::{self, Layout};
use common::{Moto, REGION};
use daemon_support::{write, Daemon, Prometheus, Sample};

fn values(samples: &[Sample]) -> Vec<f64> {
    samples.iter().map(|s| s.value).collect()
}

#[test]
fn prometheus_sees_findings_appear_get_fixed_and_outlive_a_failed_scan() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let moto = Moto::start();
    let ec2 = runtime.block_on(moto.ec2());
    // Two AZs (vpc.az_count) and DNS hostnames off (vpc.dns_attributes).
    let layout = Layout {
        public_azs: vec!['a', 'b'],
        private_azs: vec!['a', 'b'],
        ..Layout::compliant()
    };
    let vpc = runtime.block_on(scenario::build(&ec2, "drifted", &layout));
    runtime
        .block_on(
            ec2.modify_vpc_attribute()
                .vpc_id(&vpc.vpc_id)
                .enable_dns_hostnames(AttributeBooleanValue::builder().value(false).build())
                .send(),
        )
        .expect("turn DNS hostnames off");

    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "config.yaml",
        &format!(
            "regions: [{REGION}]\n\
             scope: {{exclude_default_vpc: true}}\n\
             aws: {{endpoint_url: '{}', max_attempts: 1}}\n\
             schedule: '*/2 * * * * *'\n",
            moto.endpoint()
        ),
    );
    let daemon = Daemon::start(&["--config", config.to_str().unwrap()]);
    let prometheus = Prometheus::start(daemon.port);
    let logs = || format!("daemon log:\n{}", daemon.process.log());
    let id = &vpc.vpc_id;

    // The broken scenario's findings reach Prometheus.
    let dns = format!("vpc_auditor_finding{{rule_id=\"vpc.dns_attributes\",vpc_id=\"{id}\"}}");
    let found = prometheus.wait_for(&dns, logs, |s| (!s.is_empty()).then(|| s.to_vec()));
    assert_eq!(values(&found), [1.0]);
    let labels = &found[0].labels;
    assert_eq!(labels["severity"], "high");
    assert_eq!(labels["aws_region"], REGION);
    assert_eq!(labels["aws_account_id"], "123456789012");
    assert_eq!(labels["resource_type"], "vpc");
    assert_eq!(labels["resource_id"], *id);
    let az = format!("vpc_auditor_finding{{rule_id=\"vpc.az_count\",vpc_id=\"{id}\"}}");
    assert_eq!(values(&prometheus.query(&az)), [1.0]);
    assert_eq!(
        values(
            &prometheus
                .query("vpc_auditor_findings{rule_id=\"vpc.dns_attributes\",severity=\"high\"}")
        ),
        [1.0]
    );
    // Alerts compare plainly: the only critical finding is Union's role, absent from
    // moto's account, and a rule with no finding at a severity is exported as 0.
    assert_eq!(
        values(&prometheus.query("sum(vpc_auditor_findings{severity=\"critical\"})")),
        [1.0]
    );
    assert_eq!(
        values(
            &prometheus
                .query("vpc_auditor_findings{rule_id=\"iam.role_missing\",severity=\"critical\"}")
        ),
        [1.0]
    );
    assert_eq!(
        values(
            &prometheus
                .query("vpc_auditor_findings{rule_id=\"vpc.az_count\",severity=\"critical\"}")
        ),
        [0.0]
    );
    assert_eq!(
        values(&prometheus.query("vpc_auditor_last_scan_success")),
        [1.0]
    );
    let capacity = prometheus.query(&format!(
        "vpc_auditor_subnet_pod_capacity{{vpc_id=\"{id}\",subnet_id=\"{}\"}}",
        vpc.id("subnet-private-a")
    ));
    assert_eq!(values(&capacity), [16379.0], "a /18 holds 16379 pods");
    assert_eq!(capacity[0].labels["availability_zone"], "us-east-1a");
    let calls = prometheus
        .query("vpc_auditor_aws_api_calls_total{service=\"ec2\",operation=\"DescribeSubnets\"}");
    assert!(values(&calls)[0] >= 1.0, "{calls:?}");

    // Fix DNS hostnames through the SDK: that finding goes after the next scan; the other
    // stays.
    runtime
        .block_on(
            ec2.modify_vpc_attribute()
                .vpc_id(id)
                .enable_dns_hostnames(AttributeBooleanValue::builder().value(true).build())
                .send(),
        )
        .expect("turn DNS hostnames on");
    prometheus.wait_for(&dns, logs, |s| s.is_empty().then_some(()));
    assert_eq!(values(&prometheus.query(&az)), [1.0]);
    assert_eq!(
        values(
            &prometheus
                .query("vpc_auditor_findings{rule_id=\"vpc.dns_attributes\",severity=\"high\"}")
        ),
        [0.0]
    );

    // Stop moto: the next scan fails. Success goes to 0, the errors count, and the last
    // good findings stay.
    drop(moto);
    prometheus.wait_for("vpc_auditor_last_scan_success", logs, |s| {
        (values(s) == [0.0]).then_some(())
    });
    assert_eq!(values(&prometheus.query(&az)), [1.0], "old findings stay");
    assert_eq!(
        values(&prometheus.query(&format!(
            "vpc_auditor_region_scan_success{{aws_account_id=\"123456789012\",aws_region=\"{REGION}\"}}"
        ))),
        [0.0]
    );
    let errors = prometheus.query("sum(vpc_auditor_scan_errors_total{stage=\"collect\"})");
    assert!(values(&errors)[0] >= 1.0, "{errors:?}");
    let since = prometheus.query("vpc_auditor_region_last_successful_scan_timestamp_seconds");
    assert!(values(&since)[0] > 1.0e9, "{since:?}");

    // /findings says the data is stale, and since when.
    let findings = daemon.findings();
    assert_eq!(findings["stale"], true);
    let region = &findings["freshness"][0];
    assert_eq!(region["stale"], true);
    assert!(region["last_success_at"].is_string(), "{region}");
    assert!(region["error"].is_string(), "{region}");
    assert_ne!(region["last_success_at"], region["last_scan_at"]);
    let rules: Vec<&str> = findings["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["vpc_id"] == *id)
        .filter_map(|f| f["rule_id"].as_str())
        .collect();
    assert_eq!(rules, ["vpc.az_count"]);
    assert_eq!(findings["scans"][0]["status"], "error");
}

/// A snapshot with a collected region (the demo, with API call counts) and a failed one, so
/// that a scrape carries every kind of series, error counters included.
fn snapshot_with_a_failed_region(dir: &std::path::Path) -> std::path::PathBuf {
    let demo = include_str!("../examples/demo-snapshot.json");
    let mut snapshot: serde_json::Value = serde_json::from_str(demo).unwrap();
    let regions = snapshot["regions"].as_array_mut().unwrap();
    regions[0]["api_calls"] =
        serde_json::json!({"ec2:DescribeSubnets": 2, "sts:GetCallerIdentity": 1});
    let account = regions[0]["account_id"].clone();
    regions.push(serde_json::json!({
        "account_id": account,
        "region": "eu-west-1",
        "error": {"operation": "ec2:DescribeVpcs", "message": "ec2:DescribeVpcs: UnauthorizedOperation \"quoted\"\nsecond line"},
        "api_calls": {"ec2:DescribeVpcs": 1}
    }));
    write(dir, "snapshot.json", &snapshot.to_string())
}

#[test]
fn a_real_scrape_passes_promtool_check_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot = snapshot_with_a_failed_region(dir.path());
    let daemon = Daemon::start(&["--from-snapshot", snapshot.to_str().unwrap()]);
    daemon.wait_ready();
    let (status, scrape) = daemon.get("/metrics");
    assert_eq!(status, 200);
    for name in [
        "vpc_auditor_finding{",
        "vpc_auditor_findings{",
        "vpc_auditor_resources_evaluated{",
        "vpc_auditor_subnet_available_ips{",
        "vpc_auditor_subnet_pod_capacity{",
        "vpc_auditor_scan_errors_total{",
        "vpc_auditor_aws_api_calls_total{",
        "vpc_auditor_region_scan_success{",
        "vpc_auditor_build_info{",
        "vpc_auditor_last_scan_duration_seconds ",
    ] {
        assert!(scrape.contains(name), "the scrape lacks {name}:\n{scrape}");
    }
    assert!(
        !scrape.contains("UnauthorizedOperation"),
        "messages never become labels"
    );

    let promtool = std::env::var_os("PROMTOOL").unwrap_or_else(|| "promtool".into());
    let mut child = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool (scripts/setup-test-env.sh installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(scrape.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool: {report}\n{scrape}");
    assert!(report.trim().is_empty(), "promtool lints: {report}");
}
