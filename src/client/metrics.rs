//! Counters of a connection, across recoveries: [`Metrics`].

use std::sync::{Arc, Mutex, Weak};

use super::handoff::DeliveryQueue;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A snapshot of a connection's counters ([`Connection::metrics`](super::Connection::metrics)).
/// They count across recoveries, from the first connect.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metrics {
    /// Messages handed to the socket by `basic_publish` (republished ones included).
    pub published: u64,
    /// Publishes the broker confirmed with `basic.ack` (returned ones included).
    pub confirmed: u64,
    /// Publishes the broker refused with `basic.nack`.
    pub nacked: u64,
    /// Mandatory publishes the broker returned (`basic.return`).
    pub returned: u64,
    /// Publishes whose outcome is unknown: sent, then the channel or connection was lost
    /// before the confirm (they resolved with an error; not counted when republished).
    pub unknown: u64,
    /// Unconfirmed publishes sent again after a recovery.
    pub republished: u64,
    /// Messages delivered to consumers and `basic.get`.
    pub delivered: u64,
    /// Of which the broker flagged as redelivered.
    pub redelivered: u64,
    /// Acks sent (`basic.ack` frames; a `multiple` ack counts once).
    pub acked: u64,
    /// Acks, nacks and rejects refused locally because the delivery came before a
    /// recovery (or on a channel closed since): [`Error::StaleDelivery`](crate::error::Error::StaleDelivery).
    pub stale: u64,
    /// Successful recoveries.
    pub recoveries: u64,
    /// Consumers the server cancelled (`basic.cancel` from the server, e.g. the node of
    /// their queue went away), whether they consume again or ended.
    pub server_cancels: u64,
    /// Of those, consumers that consume again once their queue was back
    /// ([`RecoveryConfig::reconsume`](super::RecoveryConfig::reconsume)).
    pub reconsumed: u64,
    /// Reads put off by read coalescing
    /// ([`ConnectionConfig::read_coalescing`](super::ConnectionConfig::read_coalescing)).
    pub read_pauses: u64,
    /// Time spent blocked by the server (`connection.blocked`), including an ongoing block.
    pub time_blocked: Duration,
    /// Bytes of deliveries held for consumers now: in their queues, in the batches they
    /// work through, and waiting for room (body lengths plus 256 bytes each; see
    /// [`ConnectionConfig::consumer_buffer_bytes`](super::ConnectionConfig::consumer_buffer_bytes)).
    pub delivery_bytes: u64,
    /// Bytes of publishes held now in the publish byte budget
    /// ([`ConnectionConfig::publish_buffer_bytes`](super::ConnectionConfig::publish_buffer_bytes)):
    /// queued for the connection task, plus [`unconfirmed_bytes`](Self::unconfirmed_bytes).
    pub publish_bytes: u64,
    /// Of which unconfirmed publishes kept for republishing after a recovery.
    pub unconfirmed_bytes: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) published: TaskCounter,
    pub(crate) confirmed: TaskCounter,
    pub(crate) nacked: TaskCounter,
    pub(crate) returned: TaskCounter,
    pub(crate) unknown: AtomicU64,
    pub(crate) republished: AtomicU64,
    pub(crate) delivered: TaskCounter,
    pub(crate) redelivered: TaskCounter,
    pub(crate) acked: TaskCounter,
    pub(crate) stale: AtomicU64,
    pub(crate) recoveries: AtomicU64,
    pub(crate) server_cancels: AtomicU64,
    pub(crate) reconsumed: AtomicU64,
    pub(crate) read_pauses: TaskCounter,
    blocked: Mutex<Blocked>,
    /// Bytes of deliveries waiting for room in consumer queues (the task stores it once
    /// per wakeup).
    pub(crate) overflow_bytes: AtomicU64,
    /// Bytes of unconfirmed publishes kept for republish.
    pub(crate) unconfirmed_bytes: AtomicU64,
    /// The consumers' queues, for [`Metrics::delivery_bytes`].
    queues: Mutex<Vec<Weak<DeliveryQueue>>>,
}

/// A counter only the connection task adds to (the per-message ones): one writer, so
/// a plain load and store, where a locked add would cost every message a bus lock.
#[derive(Debug, Default)]
pub(crate) struct TaskCounter(AtomicU64);

impl TaskCounter {
    /// Adds one; only the connection task calls this.
    pub(crate) fn bump(&self) {
        self.add(1);
    }

    /// Adds `n`; only the connection task calls this.
    pub(crate) fn add(&self, n: u64) {
        if n != 0 {
            self.0
                .store(self.0.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
        }
    }

    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Default)]
struct Blocked {
    total: Duration,
    since: Option<Instant>,
}

impl Counters {
    /// Counts `queue` in [`Metrics::delivery_bytes`] while it lives.
    pub(crate) fn watch_queue(&self, queue: &Arc<DeliveryQueue>) {
        let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        queues.retain(|q| q.strong_count() > 0);
        queues.push(Arc::downgrade(queue));
    }

    pub(crate) fn inc(counter: &AtomicU64) {
        Counters::add(counter, 1);
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The server blocked (`true`) or unblocked (`false`) publishing, or the connection
    /// that was blocked went away (`false`).
    pub(crate) fn set_blocked(&self, blocked: bool) {
        let mut b = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
        match (blocked, b.since) {
            (true, None) => b.since = Some(Instant::now()),
            (false, Some(since)) => {
                b.total += since.elapsed();
                b.since = None;
            }
            _ => {}
        }
    }

    fn delivery_bytes(&self) -> u64 {
        let queued: usize = {
            let queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
            queues.iter().filter_map(Weak::upgrade).map(|q| q.held_bytes()).sum()
        };
        (queued as u64).saturating_add(self.overflow_bytes.load(Ordering::Relaxed))
    }

    pub(crate) fn snapshot(&self) -> Metrics {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let time_blocked = {
            let b = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
            b.total + b.since.map_or(Duration::ZERO, |s| s.elapsed())
        };
        Metrics {
            published: self.published.get(),
            confirmed: self.confirmed.get(),
            nacked: self.nacked.get(),
            returned: self.returned.get(),
            unknown: get(&self.unknown),
            republished: get(&self.republished),
            delivered: self.delivered.get(),
            redelivered: self.redelivered.get(),
            acked: self.acked.get(),
            stale: get(&self.stale),
            recoveries: get(&self.recoveries),
            server_cancels: get(&self.server_cancels),
            reconsumed: get(&self.reconsumed),
            read_pauses: self.read_pauses.get(),
            time_blocked,
            delivery_bytes: self.delivery_bytes(),
            // Read from the budget's semaphore by `Connection::metrics`.
            publish_bytes: 0,
            unconfirmed_bytes: get(&self.unconfirmed_bytes),
        }
    }
}
