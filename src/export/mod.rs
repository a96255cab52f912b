//! Export: turning evaluation results into what people and machines read. Reports for
//! `--once` (human table, JSON, HTML, SARIF, JUnit, Markdown, and the fix script of
//! `crate::plan`), and for the daemon the merged last good result
//! (`latest`), its Prometheus metrics (`metrics`) and its status page (`html`). Both HTML
//! pages draw each VPC with `vpc_picture`.
//!
//! Layer: below `scan` and the daemon, above the model and `rules` (whose evaluation it
//! renders); it never imports `scan`, `collect` or `config`. Inside, `report` is the base the
//! formats build on (with [`ScanOutput`], what one scan produced), `baseline` decorates a
//! report, and `markup` holds the escaping that the HTML pages and the SVG picture share, so
//! no file here imports another in a cycle (`tests/layers.rs` checks it).

pub mod baseline;
pub mod fix_script;
pub mod html;
pub mod html_report;
pub mod junit;
pub mod latest;
pub mod markdown;
pub mod markup;
pub mod metrics;
pub mod report;
pub mod sarif;
pub mod table;
pub mod vpc_picture;

pub use report::{Report, ScanOutput};
