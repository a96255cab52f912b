//! Event-driven re-scans end to end: the real daemon (hourly schedule, `events.queue_url`)
//! against moto, whose EventBridge delivers to SQS through event patterns (MOTO-NOTES.md).
//! The test builds the rule and the queue through the AWS API as the deploy templates do,
//! breaks a route and puts the CloudTrail-shaped event on the bus, and reads `/metrics`:
//! the finding appears within 10 s, and the fix with its event clears it. A burst of 500
//! events costs a handful of scans; malformed, unknown and unaudited messages are counted
//! and deleted; a scan that fails leaves its message, which SQS redelivers and then moves
//! to the dead-letter queue. Nothing leaves 127.0.0.1.

mod common;
mod daemon_support;

use std::time::Duration;

use aws_sdk_eventbridge::types::{PutEventsRequestEntry, Target as RuleTarget};
use aws_sdk_sqs::types::QueueAttributeName;
use common::scenario::{self, Layout};
use common::{temp_file, Moto, REGION};
use daemon_support::{wait_for, Daemon};

const ACCOUNT: &str = "123456789012";

/// A queue with a dead-letter queue (after `max_receives`), and its URL and the DLQ's.
async fn queues(moto: &Moto, visibility: u32, max_receives: u32) -> (String, String) {
    let sqs = aws_sdk_sqs::Client::new(&moto.sdk_config().await);
    let dlq = sqs
        .create_queue()
        .queue_name("vpc-auditor-events-dlq")
        .send()
        .await
        .expect("create DLQ")
        .queue_url
        .unwrap();
    let dlq_arn = queue_arn(&sqs, &dlq).await;
    let redrive = serde_json::json!({
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": max_receives.to_string(),
    });
    let queue = sqs
        .create_queue()
        .queue_name("vpc-auditor-events")
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            visibility.to_string(),
        )
        .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
        .send()
        .await
        .expect("create queue")
        .queue_url
        .unwrap();
    (queue, dlq)
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> String {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("queue attributes")
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .expect("queue ARN")
}

/// Messages in a queue, visible or in flight.
async fn depth(sqs: &aws_sdk_sqs::Client, url: &str) -> u64 {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("queue attributes")
        .attributes
        .unwrap_or_default();
    attributes
        .values()
        .filter_map(|v| v.parse::<u64>().ok())
        .sum()
}

/// The EventBridge rule the deploy templates create: EC2 CloudTrail calls → the queue.
async fn rule_to_queue(moto: &Moto, queue_url: &str) {
    let config = moto.sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let events = aws_sdk_eventbridge::Client::new(&config);
    let pattern = serde_json::json!({
        "source": ["aws.ec2"],
        "detail-type": ["AWS API Call via CloudTrail"],
        "detail": {"eventName": vpc_auditor::events::mapping::EC2_EVENTS},
    });
    events
        .put_rule()
        .name("vpc-auditor-ec2")
        .event_pattern(pattern.to_string())
        .send()
        .await
        .expect("put rule");
    events
        .put_targets()
        .rule("vpc-auditor-ec2")
        .targets(
            RuleTarget::builder()
                .id("queue")
                .arn(queue_arn(&sqs, queue_url).await)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("put targets");
}

/// A CloudTrail management event as EventBridge carries it.
fn cloudtrail(name: &str, region: &str, request: serde_json::Value) -> PutEventsRequestEntry {
    let detail = serde_json::json!({
        "eventVersion": "1.09",
        "eventSource": "ec2.amazonaws.com",
        "eventName": name,
        "awsRegion": region,
        "recipientAccountId": ACCOUNT,
        "eventTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "requestParameters": request,
    });
    PutEventsRequestEntry::builder()
        .source("aws.ec2")
        .detail_type("AWS API Call via CloudTrail")
        .detail(detail.to_string())
        .build()
}

async fn put_events(moto: &Moto, entries: Vec<PutEventsRequestEntry>) {
    let events = aws_sdk_eventbridge::Client::new(&moto.sdk_config().await);
    for chunk in entries.chunks(10) {
        let out = events
            .put_events()
            .set_entries(Some(chunk.to_vec()))
            .send()
            .await
            .expect("put events");
        assert_eq!(out.failed_entry_count, 0);
    }
}

fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

fn events_counted(text: &str, outcome: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.starts_with("vpc_auditor_events_received_total{")
                && l.contains(&format!("outcome=\"{outcome}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// AWS API calls counted so far, per `service:operation`.
fn api_calls(text: &str) -> std::collections::BTreeMap<String, f64> {
    let mut out = std::collections::BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| l.starts_with("vpc_auditor_aws_api_calls_total{"))
    {
        let label = |name: &str| line.split(&format!("{name}=\"")).nth(1)?.split('"').next();
        let (Some(service), Some(operation)) = (label("service"), label("operation")) else {
            continue;
        };
        let value: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        *out.entry(format!("{service}:{operation}")).or_default() += value;
    }
    out
}

fn findings_in(text: &str, vpc_id: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.starts_with("vpc_auditor_finding{") && l.contains(vpc_id))
        .map(str::to_string)
        .collect()
}

fn config(queue_url: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    temp_file(
        "config.yaml",
        &format!(
            "regions: [{REGION}]\nschedule: '0 0 * * * *'\nevents:\n  queue_url: {queue_url}\n  debounce: 1s\n"
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_broken_and_fixed_shows_within_seconds_and_bursts_and_junk_cost_little() {
    let moto = Moto::start();
    let ec2 = moto.ec2().await;
    let vpc = scenario::build(&ec2, "events", &Layout::compliant()).await;
    let (queue_url, dlq_url) = queues(&moto, 30, 3).await;
    rule_to_queue(&moto, &queue_url).await;
    let (_dir, config) = config(&queue_url);
    let daemon = Daemon::start(&[
        "--config",
        config.to_str().unwrap(),
        "--endpoint-url",
        &moto.endpoint(),
    ]);
    daemon.wait_ready();
    let scrape = || daemon.get("/metrics").1;
    assert_eq!(findings_in(&scrape(), &vpc.vpc_id), Vec::<String>::new());
    let scans_at_start = metric(&scrape(), "vpc_auditor_scans_total");
    let full_scan_calls = api_calls(&scrape());

    // Break the private route of AZ a, and say so on the bus as CloudTrail would.
    let rt = vpc.id("rtb-private-a").to_string();
    scenario::delete_default_route(&ec2, &rt).await;
    put_events(
        &moto,
        vec![cloudtrail(
            "DeleteRoute",
            REGION,
            serde_json::json!({"routeTableId": rt, "destinationCidrBlock": "0.0.0.0/0"}),
        )],
    )
    .await;
    let broken = wait_for(
        Duration::from_secs(10),
        "the broken route's finding on /metrics",
        || {
            let found = findings_in(&scrape(), &vpc.vpc_id);
            (!found.is_empty()).then_some(found)
        },
        || daemon.process.log(),
    );
    assert!(
        broken.iter().any(|l| l.contains("subnet-")),
        "a finding about the private subnet: {broken:?}"
    );
    // The re-scan read the one region again, and not IAM (global): BENCHMARKS.md.
    let after = api_calls(&scrape());
    let rescan: std::collections::BTreeMap<&String, f64> = after
        .iter()
        .map(|(op, n)| (op, n - full_scan_calls.get(op).copied().unwrap_or(0.0)))
        .filter(|(_, n)| *n > 0.0)
        .collect();
    eprintln!("API calls of the start-up scan: {full_scan_calls:?}");
    eprintln!("API calls of one event-driven re-scan: {rescan:?}");
    assert!(
        rescan.keys().all(|op| !op.starts_with("iam:")),
        "an EC2 event does not re-read IAM: {rescan:?}"
    );
    // What the full scan spent on the region: every EC2 call, and one of its two
    // sts:GetCallerIdentity (the other was the IAM job's).
    for (op, n) in &full_scan_calls {
        let expected = match op.as_str() {
            "sts:GetCallerIdentity" => 1.0,
            op if op.starts_with("ec2:") => *n,
            _ => 0.0,
        };
        assert_eq!(
            rescan.get(op).copied().unwrap_or(0.0),
            expected,
            "{op}: {rescan:?}"
        );
    }
    assert_eq!(rescan.values().sum::<f64>(), 13.0, "{rescan:?}");

    // Fix it, with its event: the finding goes.
    ec2.create_route()
        .route_table_id(&rt)
        .destination_cidr_block("0.0.0.0/0")
        .nat_gateway_id(vpc.id("nat-a"))
        .send()
        .await
        .expect("create route");
    put_events(
        &moto,
        vec![cloudtrail(
            "CreateRoute",
            REGION,
            serde_json::json!({"routeTableId": rt}),
        )],
    )
    .await;
    wait_for(
        Duration::from_secs(10),
        "the finding to clear",
        || findings_in(&scrape(), &vpc.vpc_id).is_empty().then_some(()),
        || daemon.process.log(),
    );
    let text = scrape();
    assert_eq!(metric(&text, "vpc_auditor_event_rescans_total"), 2.0);
    assert_eq!(events_counted(&text, "rescanned"), 2.0);
    assert_eq!(
        metric(&text, "vpc_auditor_event_to_findings_seconds_count"),
        2.0
    );
    assert_eq!(
        metric(
            &text,
            "vpc_auditor_event_queue_up{queue=\"vpc-auditor-events\"}"
        ),
        1.0
    );

    // A burst of 500 events: a handful of scans, every message deleted.
    let burst: Vec<PutEventsRequestEntry> = (0..500)
        .map(|i| {
            cloudtrail(
                "AuthorizeSecurityGroupIngress",
                REGION,
                serde_json::json!({"groupId": format!("sg-{i}")}),
            )
        })
        .collect();
    put_events(&moto, burst).await;
    wait_for(
        Duration::from_secs(60),
        "the 500 events to be re-scanned and deleted",
        || (events_counted(&scrape(), "rescanned") >= 502.0).then_some(()),
        || daemon.process.log(),
    );
    let text = scrape();
    let rescans = metric(&text, "vpc_auditor_event_rescans_total") - 2.0;
    assert!(
        (1.0..=5.0).contains(&rescans),
        "500 events cost {rescans} scans"
    );
    assert_eq!(
        metric(&text, "vpc_auditor_scans_total") - scans_at_start,
        2.0 + rescans,
        "no scheduled scan ran (hourly)"
    );

    // Junk straight onto the queue: counted by kind, deleted, nothing scanned.
    let sqs = aws_sdk_sqs::Client::new(&moto.sdk_config().await);
    let unaudited = serde_json::json!({
        "detail-type": "AWS API Call via CloudTrail", "source": "aws.ec2",
        "time": "2026-12-05T00:00:00Z",
        "detail": {"eventName": "CreateRoute", "awsRegion": "eu-west-1", "recipientAccountId": ACCOUNT},
    });
    let unknown = serde_json::json!({
        "detail-type": "AWS API Call via CloudTrail", "source": "aws.ec2",
        "detail": {"eventName": "RunInstances", "awsRegion": REGION, "recipientAccountId": ACCOUNT},
    });
    for body in [
        "not json at all".to_string(),
        "{\"detail-type\": 3}".to_string(),
        unaudited.to_string(),
        unknown.to_string(),
    ] {
        sqs.send_message()
            .queue_url(&queue_url)
            .message_body(body)
            .send()
            .await
            .expect("send message");
    }
    wait_for(
        Duration::from_secs(30),
        "the junk to be counted",
        || {
            let text = scrape();
            (events_counted(&text, "malformed") == 2.0
                && events_counted(&text, "not_audited") == 1.0
                && events_counted(&text, "unknown_event") == 1.0)
                .then_some(())
        },
        || format!("{}\n{}", scrape(), daemon.process.log()),
    );
    let text = scrape();
    assert_eq!(
        metric(&text, "vpc_auditor_event_rescans_total") - 2.0,
        rescans,
        "junk triggers no scan"
    );
    let mut drained = false;
    for _ in 0..20 {
        if depth(&sqs, &queue_url).await == 0 {
            drained = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(drained, "every message was deleted");
    assert_eq!(depth(&sqs, &dlq_url).await, 0, "nothing dead-lettered");
    let log = daemon.process.log();
    assert_eq!(
        log.matches("event ignored and deleted (logged once per kind)")
            .count(),
        3,
        "logged once per kind: {log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_scan_leaves_its_message_which_is_redelivered_then_dead_lettered() {
    let moto = Moto::start();
    let (queue_url, dlq_url) = queues(&moto, 1, 2).await;
    let (dir, config) = config(&queue_url);
    let snapshot = dir.path().join("snapshot.json");
    std::fs::write(&snapshot, include_str!("../examples/demo-snapshot.json")).unwrap();
    // The snapshot file stands in for AWS; the queue is moto's.
    let daemon = Daemon::start(&[
        "--config",
        config.to_str().unwrap(),
        "--from-snapshot",
        snapshot.to_str().unwrap(),
        "--endpoint-url",
        &moto.endpoint(),
    ]);
    daemon.wait_ready();
    // From now on every scan fails.
    std::fs::write(&snapshot, "{ cut short").unwrap();
    let sqs = aws_sdk_sqs::Client::new(&moto.sdk_config().await);
    let event = serde_json::json!({
        "detail-type": "AWS API Call via CloudTrail", "source": "aws.ec2",
        "time": "2026-12-05T00:00:00Z",
        "detail": {"eventName": "DeleteRoute", "awsRegion": "us-east-1", "recipientAccountId": ACCOUNT},
    });
    sqs.send_message()
        .queue_url(&queue_url)
        .message_body(event.to_string())
        .send()
        .await
        .expect("send message");
    let mut dead = 0;
    for _ in 0..120 {
        dead = depth(&sqs, &dlq_url).await;
        if dead == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let text = daemon.get("/metrics").1;
    assert_eq!(dead, 1, "dead-lettered\n{text}\n{}", daemon.process.log());
    assert_eq!(depth(&sqs, &queue_url).await, 0);
    assert!(events_counted(&text, "scan_failed") >= 2.0, "{text}");
    assert_eq!(events_counted(&text, "rescanned"), 0.0, "{text}");
    assert!(metric(&text, "vpc_auditor_event_rescans_total") >= 2.0);
    // The findings served are the last good ones, and say they are stale.
    assert_eq!(daemon.findings()["stale"], true);
}
