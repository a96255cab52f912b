//! Pure: debouncing and coalescing of change events per target. The daemon's scan loop
//! owns one [`Coalescer`]; it adds each message the queue delivers and asks which targets
//! are due. No I/O; the caller passes the time.
//!
//! A target is due once no event for it came for `debounce`, or, under a steady stream of
//! events, once its oldest waiting event is [`MAX_WAIT_FACTOR`] × `debounce` old, so a
//! target that keeps changing is still re-scanned. The messages stay attached to their
//! target until the scan that covers them is published: only then may they be deleted.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use super::mapping::{Change, Target};

/// Under a steady stream, a target waits at most this many debounce periods.
pub const MAX_WAIT_FACTOR: u32 = 6;

/// One message from the queue, with what it means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub message_id: String,
    /// The handle to delete it with, from its latest delivery.
    pub receipt_handle: String,
    pub change: Change,
    pub received_at: Instant,
}

#[derive(Debug)]
struct Waiting {
    first: Instant,
    last: Instant,
    messages: Vec<Received>,
}

/// The messages waiting for a scan, per target.
#[derive(Debug)]
pub struct Coalescer {
    debounce: Duration,
    waiting: BTreeMap<Target, Waiting>,
}

impl Coalescer {
    pub fn new(debounce: Duration) -> Coalescer {
        Coalescer {
            debounce,
            waiting: BTreeMap::new(),
        }
    }

    /// Adds a message. A redelivery of one already waiting replaces it (its newest receipt
    /// handle is the one to delete it with) without restarting the debounce.
    pub fn add(&mut self, message: Received) {
        let at = message.received_at;
        let waiting = self
            .waiting
            .entry(message.change.target.clone())
            .or_insert_with(|| Waiting {
                first: at,
                last: at,
                messages: Vec::new(),
            });
        if let Some(old) = waiting
            .messages
            .iter_mut()
            .find(|m| m.message_id == message.message_id)
        {
            *old = message;
            return;
        }
        waiting.last = waiting.last.max(at);
        waiting.messages.push(message);
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Messages waiting, over all targets.
    pub fn len(&self) -> usize {
        self.waiting.values().map(|w| w.messages.len()).sum()
    }

    fn due_at(&self, waiting: &Waiting) -> Instant {
        (waiting.last + self.debounce).min(waiting.first + self.debounce * MAX_WAIT_FACTOR)
    }

    /// When the next target becomes due; `None` when nothing waits.
    pub fn next_due(&self) -> Option<Instant> {
        self.waiting.values().map(|w| self.due_at(w)).min()
    }

    /// Takes every target due at `now`, with its messages, for one scan.
    pub fn take_due(&mut self, now: Instant) -> BTreeMap<Target, Vec<Received>> {
        let due: Vec<Target> = self
            .waiting
            .iter()
            .filter(|(_, w)| self.due_at(w) <= now)
            .map(|(t, _)| t.clone())
            .collect();
        due.into_iter()
            .filter_map(|t| self.waiting.remove(&t).map(|w| (t, w.messages)))
            .collect()
    }

    /// Takes everything: a full scan starting now covers every waiting target.
    pub fn take_all(&mut self) -> BTreeMap<Target, Vec<Received>> {
        std::mem::take(&mut self.waiting)
            .into_iter()
            .map(|(t, w)| (t, w.messages))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::mapping::Source;

    fn message(id: &str, region: &str, at: Instant) -> Received {
        Received {
            message_id: id.to_string(),
            receipt_handle: format!("receipt-{id}"),
            change: Change {
                target: Target::new("123456789012", region),
                source: Source::Ec2,
                event_name: "CreateRoute",
                time: None,
                vpc_id: None,
            },
            received_at: at,
        }
    }

    #[test]
    fn a_burst_is_one_scan_once_it_settles() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut c = Coalescer::new(5 * s);
        for i in 0..500u32 {
            c.add(message(&i.to_string(), "us-east-1", t0 + s * i / 100));
        }
        assert_eq!(c.len(), 500);
        // The last event came at ~5 s: due at ~10 s.
        assert!(c.take_due(t0 + 9 * s).is_empty());
        let due = c.take_due(t0 + 10 * s);
        assert_eq!(due.len(), 1, "one target");
        assert_eq!(due.values().next().unwrap().len(), 500);
        assert!(c.is_empty());
        assert_eq!(c.next_due(), None);
    }

    #[test]
    fn a_steady_stream_still_gets_scanned_after_the_maximum_wait() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut c = Coalescer::new(2 * s);
        for i in 0..20u32 {
            c.add(message(&i.to_string(), "us-east-1", t0 + s * i));
        }
        assert_eq!(c.next_due(), Some(t0 + 12 * s));
        assert_eq!(c.take_due(t0 + 12 * s).len(), 1);
    }

    #[test]
    fn targets_are_due_separately_and_a_full_scan_takes_all() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut c = Coalescer::new(s);
        c.add(message("a", "us-east-1", t0));
        c.add(message("b", "eu-west-1", t0 + 3 * s));
        let due = c.take_due(t0 + 2 * s);
        assert_eq!(
            due.keys().cloned().collect::<Vec<_>>(),
            vec![Target::new("123456789012", "us-east-1")]
        );
        assert_eq!(c.next_due(), Some(t0 + 4 * s));
        let all = c.take_all();
        assert_eq!(all.len(), 1);
        assert!(c.is_empty());
    }

    #[test]
    fn a_redelivered_message_keeps_its_place_with_the_newest_receipt() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut c = Coalescer::new(s);
        c.add(message("a", "us-east-1", t0));
        let mut again = message("a", "us-east-1", t0 + 30 * s);
        again.receipt_handle = "newer".to_string();
        c.add(again);
        assert_eq!(c.len(), 1);
        assert_eq!(c.next_due(), Some(t0 + s), "the debounce did not restart");
        let due = c.take_due(t0 + s);
        assert_eq!(due.values().next().unwrap()[0].receipt_handle, "newer");
    }
}
