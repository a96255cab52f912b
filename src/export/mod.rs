//! Export: turning evaluation results into what people and machines read. Reports for
//! `--once` (human table, JSON, HTML, SARIF, JUnit, Markdown), and for the daemon the merged last good result
//! (`latest`), its Prometheus metrics (`metrics`) and its status page (`html`). Both HTML
//! pages draw each VPC with `vpc_picture`.

pub mod baseline;
pub mod html;
pub mod html_report;
pub mod junit;
pub mod latest;
pub mod markdown;
pub mod metrics;
pub mod report;
pub mod sarif;
pub mod table;
pub mod vpc_picture;

pub use report::Report;
