//! vpc-auditor: audits AWS VPCs and IAM roles against the network and IAM requirements of
//! bring-your-own-cloud platforms.
//!
//! The binary (`src/main.rs`) is a thin wrapper around [`app::run`]. The library exists so
//! that benchmarks (`benches/`) and fuzz targets (`fuzz/`) can call the pure parts
//! directly: the policy model, the rule evaluation, the config and template readers.
//!
//! The layers point one way: `main → app → daemon / scan → collect | rules (evaluate),
//! suppress | export → model`. `config` is the one reader of the settings: it reads rule
//! packs through `rules::pack` and suppressions through `suppress`, and neither imports it
//! back. `schemas` prints the JSON Schemas of those files. `plan` (evaluate layer, pure) turns
//! findings into one remediation plan per VPC and role; `export::fix_script` renders it. The model (`snapshot`,
//! `finding`, `values`, `input`) imports nothing above it. `tests/layers.rs` fails on an
//! import cycle between top-level modules or between the files of `export/`.

pub mod app;
pub mod cli;
pub mod collect;
pub mod config;
pub mod daemon;
pub mod events;
pub mod export;
pub mod finding;
pub mod iam;
pub mod input;
pub mod plan;
pub mod rules;
pub mod scan;
pub mod schemas;
pub mod shard;
pub mod snapshot;
pub mod suppress;
pub mod telemetry;
pub mod values;
pub mod web_config;
