//! `/metrics` with about 10k series: a synthetic scan (800 VPCs, 4,800 subnets, each with a
//! free-IP and a pod-capacity series, plus the drifted VPCs' findings) recorded into
//! `export::metrics::Metrics` with per-resource series on, as the daemon does.
//!
//! Two timings: `record_scan` (set every gauge and render the exposition text, once per
//! scan) and `scrape` (what the `/metrics` handler does per request: take the cached text
//! and copy it into the response body).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use vpc_auditor::config::Scope;
use vpc_auditor::export::latest::Latest;
use vpc_auditor::export::metrics::Metrics;
use vpc_auditor::export::Report;
use vpc_auditor::rules::evaluate;
use vpc_auditor::scan::ScanOutput;

// Each bench uses a different part of the shared generator.
#[allow(dead_code)]
#[path = "support/synthetic.rs"]
mod synthetic;

const VPCS: usize = 800;

fn scan_output() -> ScanOutput {
    let snapshot = synthetic::snapshot(VPCS);
    let evaluation = evaluate(&snapshot, &[synthetic::vpc_pack()], &Scope::default());
    let report = Report::build(&snapshot, evaluation, "2026-01-01T00:00:00Z".into());
    ScanOutput {
        snapshot,
        report,
        duration: Duration::from_millis(1500),
    }
}

fn series_in(text: &str) -> usize {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count()
}

fn metrics(c: &mut Criterion) {
    let output = scan_output();
    let at: chrono::DateTime<chrono::Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
    let mut latest = Latest::default();
    let record = latest.record(Ok(&output), at, output.duration);
    let metrics = Metrics::new(true).expect("metrics register");

    let started = Instant::now();
    metrics.record_scan(&latest, &record);
    let first = started.elapsed();
    let text = metrics.text();
    let series = series_in(&text);
    println!(
        "metrics: {} findings, {} subnets -> {series} series, {} bytes of exposition text; first record_scan {:.1} ms",
        output.report.findings.len(),
        output.snapshot.regions[0].subnets.len(),
        text.len(),
        first.as_secs_f64() * 1000.0
    );
    assert!(
        series >= 10_000,
        "the bench is meant for 10k series, has {series}"
    );

    let mut group = c.benchmark_group("metrics_10k_series");
    group.throughput(Throughput::Elements(series as u64));
    group.sample_size(20);
    group.bench_function("record_scan", |b| {
        b.iter(|| metrics.record_scan(black_box(&latest), black_box(&record)))
    });
    group.bench_function("scrape", |b| b.iter(|| metrics.text().to_string()));
    group.finish();
}

criterion_group!(benches, metrics);
criterion_main!(benches);
