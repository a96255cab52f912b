//! vpc-auditor: audits AWS VPCs and IAM roles against the network and IAM requirements of
//! bring-your-own-cloud platforms.
//!
//! The binary (`src/main.rs`) is a thin wrapper around [`app::run`]. The library exists so
//! that benchmarks (`benches/`) and fuzz targets (`fuzz/`) can call the pure parts
//! directly: the policy model, the rule evaluation, the config and template readers.

pub mod app;
pub mod cli;
pub mod collect;
pub mod config;
pub mod daemon;
pub mod export;
pub mod finding;
pub mod iam;
pub mod input;
pub mod rules;
pub mod scan;
pub mod shard;
pub mod snapshot;
pub mod suppress;
pub mod telemetry;
pub mod web_config;
