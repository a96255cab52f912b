//! I/O: the events queue. [`EventQueue::connect`] builds the SQS client the way the
//! collectors build theirs (`collect::client`: the standard credential chain,
//! `aws.endpoint_url` or `AWS_ENDPOINT_URL`, the retry settings, a client-side rate
//! limit); [`receive_loop`] long-polls it, classifies each message ([`classify`]) and
//! hands the changes over, deleting at once what leads to no scan; [`delete_loop`] deletes
//! the messages whose scan was published.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;
use aws_sdk_sqs::Client;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::coalesce::Received;
use super::mapping::{classify, Ignored, Target};
use crate::collect::client::{limited_http_client, sdk_config};
use crate::config::accounts::RateLimit;
use crate::config::events::EventsSettings;
use crate::config::AwsSettings;

/// Long-poll wait per ReceiveMessage, SQS's maximum.
pub const WAIT_SECONDS: i32 = 20;
/// SQS's maximum number of messages per ReceiveMessage and per DeleteMessageBatch.
const BATCH: usize = 10;
/// Calls to the queue per second, well under SQS's quotas.
const RATE: RateLimit = RateLimit::new(20.0, 40);
/// Waits after a failed read: doubling from the first to the last.
const BACKOFF: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(30));

/// What the queue loops report to, and ask of, the daemon.
pub trait EventSink: Send + Sync {
    /// Whether the first scan completed: before it nothing is known to be audited, and the
    /// queue is not read.
    fn ready(&self) -> bool;
    /// Whether `target` is one the latest scans covered.
    fn audited(&self, target: &Target) -> bool;
    /// A message that leads to no scan, deleted.
    fn ignored(&self, ignored: &Ignored);
    /// A call to the queue: `failed` names the SQS operation that failed.
    fn queue_call(&self, failed: Option<&str>);
}

/// The queue and the client that reads it.
#[derive(Clone)]
pub struct EventQueue {
    client: Client,
    url: String,
    /// The queue's name, the last part of its URL: the `queue` label.
    pub name: String,
}

impl EventQueue {
    /// Builds the client; no call is made yet. The region is the queue URL's
    /// (`sqs.REGION.amazonaws.com`), else the SDK's own (`AWS_REGION`, the profile).
    pub async fn connect(aws: &AwsSettings, events: &EventsSettings) -> EventQueue {
        let config = sdk_config(aws, events.queue_url.region()).await;
        let region = config.region().map(|r| r.to_string()).unwrap_or_default();
        // A long poll holds the call open for WAIT_SECONDS: give each attempt that, and more.
        let wait = Duration::from_secs(WAIT_SECONDS as u64 + 10);
        let client = Client::from_conf(
            aws_sdk_sqs::config::Builder::from(&config)
                .http_client(limited_http_client("sqs", "self", &region, RATE))
                .timeout_config(
                    TimeoutConfig::builder()
                        .connect_timeout(aws.connect_timeout.0)
                        .operation_attempt_timeout(aws.attempt_timeout.0.max(wait))
                        .operation_timeout(aws.operation_timeout.0.max(wait * 2))
                        .build(),
                )
                .build(),
        );
        let url = events.queue_url.0.clone();
        let name = url.rsplit('/').next().unwrap_or_default().to_string();
        EventQueue { client, url, name }
    }

    /// Checks the queue once at start-up and logs what may go wrong: no dead-letter queue
    /// (a message whose scan keeps failing would come back forever), or a visibility
    /// timeout shorter than `debounce` (messages come back while they wait).
    pub async fn check(&self, debounce: Duration, sink: &dyn EventSink) {
        use aws_sdk_sqs::types::QueueAttributeName;
        let answer = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(QueueAttributeName::VisibilityTimeout)
            .attribute_names(QueueAttributeName::RedrivePolicy)
            .send()
            .await;
        match answer {
            Ok(answer) => {
                let attributes = answer.attributes().cloned().unwrap_or_default();
                if !attributes.contains_key(&QueueAttributeName::RedrivePolicy) {
                    tracing::warn!(queue = %self.name, "the events queue has no dead-letter queue: a message whose scan keeps failing is redelivered forever");
                }
                let visibility = attributes
                    .get(&QueueAttributeName::VisibilityTimeout)
                    .and_then(|v| v.parse::<u64>().ok());
                if let Some(seconds) = visibility {
                    if Duration::from_secs(seconds) <= debounce {
                        tracing::warn!(queue = %self.name, visibility_timeout_seconds = seconds, debounce_seconds = debounce.as_secs_f64(), "the queue's visibility timeout is not longer than the debounce: messages are redelivered while they wait");
                    }
                }
                tracing::info!(queue = %self.name, visibility_timeout_seconds = visibility, "events queue ready");
            }
            Err(err) => {
                sink.queue_call(Some("GetQueueAttributes"));
                tracing::warn!(queue = %self.name, error = %aws_sdk_sqs::error::DisplayErrorContext(&err), "cannot read the events queue's attributes");
            }
        }
    }

    /// Deletes `messages`, ten per call. A failure is logged and counted: those messages
    /// come back, and their targets are scanned again (at least once, never lost).
    pub async fn delete(&self, messages: &[Received], sink: &dyn EventSink) {
        for chunk in messages.chunks(BATCH) {
            let entries: Vec<DeleteMessageBatchRequestEntry> = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, m)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(&m.receipt_handle)
                        .build()
                        .ok()
                })
                .collect();
            self.delete_entries(entries, sink).await;
        }
    }

    async fn delete_entries(
        &self,
        entries: Vec<DeleteMessageBatchRequestEntry>,
        sink: &dyn EventSink,
    ) {
        if entries.is_empty() {
            return;
        }
        let answer = self
            .client
            .delete_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .await;
        match answer {
            Ok(answer) if answer.failed().is_empty() => {}
            Ok(answer) => {
                sink.queue_call(Some("DeleteMessageBatch"));
                for failed in answer.failed() {
                    tracing::warn!(queue = %self.name, code = failed.code(), "a message could not be deleted; it will come back");
                }
            }
            Err(err) => {
                sink.queue_call(Some("DeleteMessageBatch"));
                tracing::warn!(queue = %self.name, error = %aws_sdk_sqs::error::DisplayErrorContext(&err), "cannot delete messages; they will come back");
            }
        }
    }
}

/// Reads the queue until `stop`: waits for the first scan, then long-polls; each change
/// goes to `changes`, each message that leads to no scan is counted, logged once per kind
/// and deleted. A failed read is counted and retried with backoff; nothing ends the loop
/// but `stop` (or the daemon no longer taking changes).
pub async fn receive_loop(
    queue: EventQueue,
    sink: Arc<dyn EventSink>,
    changes: mpsc::Sender<Received>,
    stop: CancellationToken,
) {
    while !sink.ready() {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
    let mut logged: BTreeSet<&'static str> = BTreeSet::new();
    let mut backoff = BACKOFF.0;
    loop {
        let receive = queue
            .client
            .receive_message()
            .queue_url(&queue.url)
            .wait_time_seconds(WAIT_SECONDS)
            .max_number_of_messages(BATCH as i32)
            .send();
        let answer = tokio::select! {
            () = stop.cancelled() => return,
            answer = receive => answer,
        };
        let messages = match answer {
            Ok(answer) => {
                sink.queue_call(None);
                backoff = BACKOFF.0;
                answer.messages.unwrap_or_default()
            }
            Err(err) => {
                sink.queue_call(Some("ReceiveMessage"));
                tracing::error!(queue = %queue.name, retry_in_seconds = backoff.as_secs(), error = %aws_sdk_sqs::error::DisplayErrorContext(&err), "cannot read the events queue");
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(BACKOFF.1);
                continue;
            }
        };
        let now = Instant::now();
        let mut unscanned: Vec<DeleteMessageBatchRequestEntry> = Vec::new();
        for (i, message) in messages.into_iter().enumerate() {
            let audited = |t: &Target| sink.audited(t);
            let outcome = classify(message.body().unwrap_or_default(), &audited);
            let (Some(id), Some(receipt)) = (message.message_id, message.receipt_handle) else {
                // Cannot be told apart or deleted: count it, and SQS will redeliver it.
                sink.ignored(&Ignored::Malformed {
                    reason: "no message id or receipt handle".into(),
                });
                continue;
            };
            match outcome {
                Ok(change) => {
                    tracing::debug!(target_scope = %change.target, event = change.event_name, "change event");
                    let received = Received {
                        message_id: id,
                        receipt_handle: receipt,
                        change,
                        received_at: now,
                    };
                    if changes.send(received).await.is_err() {
                        return;
                    }
                }
                Err(ignored) => {
                    sink.ignored(&ignored);
                    if logged.insert(ignored.outcome()) {
                        tracing::warn!(queue = %queue.name, outcome = ignored.outcome(), detail = ?ignored, "event ignored and deleted (logged once per kind)");
                    } else {
                        tracing::debug!(outcome = ignored.outcome(), detail = ?ignored, "event ignored and deleted");
                    }
                    if let Ok(entry) = DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(receipt)
                        .build()
                    {
                        unscanned.push(entry);
                    }
                }
            }
        }
        queue.delete_entries(unscanned, sink.as_ref()).await;
    }
}

/// Deletes each batch of messages the daemon sends, until the daemon stops sending.
pub async fn delete_loop(
    queue: EventQueue,
    sink: Arc<dyn EventSink>,
    mut settled: mpsc::Receiver<Vec<Received>>,
) {
    while let Some(messages) = settled.recv().await {
        queue.delete(&messages, sink.as_ref()).await;
    }
}
