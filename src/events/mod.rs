//! Event-driven re-scans: the daemon learns of a change within seconds instead of at its
//! next scheduled scan. EventBridge rules put CloudTrail management events of EC2 and IAM
//! on an SQS queue (`events.queue_url`); this module reads them.
//!
//! - [`mapping`] (pure): a message body → the target it makes stale (an account and
//!   region, or the account's IAM), or why it is ignored.
//! - [`coalesce`] (pure): debouncing and coalescing per target, with the messages each
//!   target waits with.
//! - [`queue`] (I/O): the SQS client (built like the collectors' clients), the long-poll
//!   loop that classifies and hands over messages, and the deletions.
//!
//! The daemon owns the scheduling: it adds what [`queue`] hands over to a [`Coalescer`],
//! runs one scan at a time (a scan that starts covers every target due), and sends the
//! messages a published scan covered back to be deleted. A message whose scan failed is
//! not deleted: SQS delivers it again, and after the queue's `maxReceiveCount` moves it
//! to the dead-letter queue.

pub mod coalesce;
pub mod mapping;
pub mod queue;

pub use coalesce::{Coalescer, Received};
pub use mapping::{classify, Change, Ignored, Source, Target};
