//! Export: turning evaluation results into what people and machines read. Reports for
//! `--once` (human table, JSON) live here; Prometheus metrics for the daemon will too.

pub mod report;
pub mod table;

pub use report::Report;
