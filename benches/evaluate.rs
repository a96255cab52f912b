//! Evaluation time of synthetic snapshots of 1k, 10k and 100k VPCs (6 subnets each), on one
//! thread: `rules::evaluate` with the shipped union-byoc pack's VPC rules.
//!
//! The throughput column is VPCs per second; it stays flat from 1k to 100k VPCs when
//! evaluation is linear. `VPC_AUDITOR_BENCH_SIZES=1000,10000` picks other sizes. Under
//! `cargo test --all-targets` it only checks that evaluation of 100 VPCs runs.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use vpc_auditor::config::Scope;
use vpc_auditor::rules::evaluate;

// Each bench uses a different part of the shared generator.
#[allow(dead_code)]
#[path = "support/synthetic.rs"]
mod synthetic;

fn sizes() -> Vec<usize> {
    // `cargo test --all-targets` runs benches without `--bench`: criterion then runs each
    // benchmark once as a test, and a small snapshot keeps that quick in the dev profile.
    if !std::env::args().any(|a| a == "--bench") {
        return vec![100];
    }
    match std::env::var("VPC_AUDITOR_BENCH_SIZES") {
        Ok(list) => list
            .split(',')
            .map(|n| {
                n.trim()
                    .parse()
                    .expect("VPC_AUDITOR_BENCH_SIZES: a comma-separated list of numbers")
            })
            .collect(),
        Err(_) => vec![1_000, 10_000, 100_000],
    }
}

fn evaluation(c: &mut Criterion) {
    let packs = [synthetic::vpc_pack()];
    let scope = Scope::default();
    let mut group = c.benchmark_group("evaluate");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    for vpcs in sizes() {
        let snapshot = synthetic::snapshot(vpcs);
        // One run outside criterion, to print what was evaluated.
        let started = Instant::now();
        let eval = evaluate(&snapshot, &packs, &scope);
        println!(
            "evaluate/{vpcs}: {vpcs} VPCs, {} subnets, {} route tables, {} endpoints -> {} findings, {} VPCs audited, first run {:.3} s",
            snapshot.regions[0].subnets.len(),
            snapshot.regions[0].route_tables.len(),
            snapshot.regions[0].vpc_endpoints.len(),
            eval.findings.len(),
            eval.vpcs.len(),
            started.elapsed().as_secs_f64()
        );
        assert_eq!(eval.vpcs.len(), vpcs, "every synthetic VPC is audited");
        assert!(!eval.findings.is_empty(), "the drifted VPCs have findings");
        drop(eval);
        group.throughput(Throughput::Elements(vpcs as u64));
        group.measurement_time(Duration::from_secs(if vpcs >= 100_000 { 30 } else { 5 }));
        group.bench_with_input(
            BenchmarkId::from_parameter(vpcs),
            &snapshot,
            |b, snapshot| b.iter(|| evaluate(black_box(snapshot), &packs, &scope)),
        );
    }
    group.finish();
}

criterion_group!(benches, evaluation);
criterion_main!(benches);
