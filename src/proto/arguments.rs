//! Typed `x-` arguments for [`Channel::queue_declare`](crate::client::Channel::queue_declare)
//! ([`QueueArguments`]) and [`Channel::basic_consume`](crate::client::Channel::basic_consume)
//! ([`ConsumerArguments`]): each setter writes the key and the value type RabbitMQ reads,
//! and [`arg`](QueueArguments::arg) adds any other argument as it is. Both convert into a
//! [`FieldTable`], which those methods take (`impl Into<FieldTable>`).

use std::time::{Duration, SystemTime};

use crate::wire::{FieldTable, FieldValue, ShortStr, ShortStrTooLong};

/// Milliseconds as RabbitMQ's signed 64-bit integer (`l`), saturated.
fn millis(d: Duration) -> FieldValue {
    FieldValue::I64(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A count as RabbitMQ's signed 64-bit integer (`l`), saturated.
fn count(n: u64) -> FieldValue {
    FieldValue::I64(i64::try_from(n).unwrap_or(i64::MAX))
}

/// A duration in RabbitMQ's retention syntax (`x-max-age`, stream offsets by interval):
/// the largest of `D`, `h`, `m`, `s` that divides it, in whole seconds rounded up.
fn age(d: Duration) -> String {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    for (unit, per) in [("D", 86_400), ("h", 3_600), ("m", 60)] {
        if secs > 0 && secs % per == 0 {
            return format!("{}{unit}", secs / per);
        }
    }
    format!("{secs}s")
}

macro_rules! raw_arg {
    () => {
        /// Adds any other argument as it is (replacing one of that name), for what has no
        /// typed setter. Panics when the key is over 255 bytes, as
        /// [`FieldTable::with`] does; keys are nearly always literals.
        #[track_caller]
        pub fn arg<K, V>(mut self, key: K, value: V) -> Self
        where
            K: TryInto<ShortStr>,
            ShortStrTooLong: From<K::Error>,
            V: Into<FieldValue>,
        {
            self.0 = self.0.with(key, value);
            self
        }

        /// The arguments as a table.
        pub fn into_table(self) -> FieldTable {
            self.0
        }

        fn set(mut self, key: &'static str, value: impl Into<FieldValue>) -> Self {
            self.0.insert(ShortStr::from_static(key), value);
            self
        }
    };
}

/// The type of a queue (`x-queue-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum QueueType {
    /// A classic queue (RabbitMQ's default).
    Classic,
    /// A replicated quorum queue (must be durable).
    Quorum,
    /// An append-only stream (must be durable; consumers need a prefetch and manual acks).
    Stream,
}

impl QueueType {
    /// The name RabbitMQ knows it by.
    pub fn name(self) -> &'static str {
        match self {
            QueueType::Classic => "classic",
            QueueType::Quorum => "quorum",
            QueueType::Stream => "stream",
        }
    }
}

/// What a full queue does with a new message (`x-overflow`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Overflow {
    /// Drops (or dead-letters) the oldest messages (the default).
    DropHead,
    /// Refuses the publish (a `basic.nack` in confirm mode).
    RejectPublish,
    /// Refuses the publish and dead-letters it (classic queues).
    RejectPublishDlx,
}

impl Overflow {
    /// The name RabbitMQ knows it by.
    pub fn name(self) -> &'static str {
        match self {
            Overflow::DropHead => "drop-head",
            Overflow::RejectPublish => "reject-publish",
            Overflow::RejectPublishDlx => "reject-publish-dlx",
        }
    }
}

/// How a quorum queue dead-letters (`x-dead-letter-strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeadLetterStrategy {
    /// Fire and forget (the default).
    AtMostOnce,
    /// Kept until the dead-letter target confirms it (needs `x-overflow: reject-publish`).
    AtLeastOnce,
}

impl DeadLetterStrategy {
    /// The name RabbitMQ knows it by.
    pub fn name(self) -> &'static str {
        match self {
            DeadLetterStrategy::AtMostOnce => "at-most-once",
            DeadLetterStrategy::AtLeastOnce => "at-least-once",
        }
    }
}

/// Where a replicated queue's leader goes (`x-queue-leader-locator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LeaderLocator {
    /// The node the declaring client is connected to.
    ClientLocal,
    /// The node with the fewest leaders.
    Balanced,
}

impl LeaderLocator {
    /// The name RabbitMQ knows it by.
    pub fn name(self) -> &'static str {
        match self {
            LeaderLocator::ClientLocal => "client-local",
            LeaderLocator::Balanced => "balanced",
        }
    }
}

/// Typed queue arguments for [`Channel::queue_declare`](crate::client::Channel::queue_declare).
///
/// ```
/// use std::time::Duration;
/// use warren::client::{Overflow, QueueArguments, QueueType};
/// use warren::wire::FieldValue;
///
/// let args = QueueArguments::new()
///     .queue_type(QueueType::Quorum)
///     .delivery_limit(5)
///     .dead_letter_exchange("dlx")
///     .max_length(10_000)
///     .overflow(Overflow::RejectPublish)
///     .message_ttl(Duration::from_secs(60))
///     .arg("x-custom-plugin-setting", true);
/// let table = args.into_table();
/// assert_eq!(table.get("x-queue-type").and_then(FieldValue::as_str), Some("quorum"));
/// assert_eq!(table.get("x-message-ttl"), Some(&FieldValue::I64(60_000)));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[must_use]
pub struct QueueArguments(FieldTable);

impl QueueArguments {
    /// No argument.
    pub fn new() -> Self {
        Self::default()
    }

    raw_arg!();

    /// `x-queue-type`.
    pub fn queue_type(self, kind: QueueType) -> Self {
        self.set("x-queue-type", kind.name())
    }

    /// `x-quorum-initial-group-size`: how many replicas a quorum queue or stream starts with.
    pub fn quorum_initial_group_size(self, replicas: u32) -> Self {
        self.set("x-quorum-initial-group-size", count(u64::from(replicas)))
    }

    /// `x-delivery-limit`: a quorum queue dead-letters (or drops) a message returned more
    /// often than this (RabbitMQ 4.0+ defaults to 20; see
    /// [`Delivery::delivery_count`](crate::client::Delivery::delivery_count) for what counts).
    pub fn delivery_limit(self, limit: u32) -> Self {
        self.set("x-delivery-limit", count(u64::from(limit)))
    }

    /// `x-delivery-limit` -1: no limit (RabbitMQ 4.0+).
    pub fn unlimited_deliveries(self) -> Self {
        self.set("x-delivery-limit", FieldValue::I64(-1))
    }

    /// `x-dead-letter-exchange`: where rejected, expired and dropped messages go (`""`: the
    /// default exchange).
    pub fn dead_letter_exchange(self, exchange: &str) -> Self {
        self.set("x-dead-letter-exchange", exchange)
    }

    /// `x-dead-letter-routing-key`: the routing key dead-lettered messages get (default:
    /// their own).
    pub fn dead_letter_routing_key(self, routing_key: &str) -> Self {
        self.set("x-dead-letter-routing-key", routing_key)
    }

    /// `x-dead-letter-strategy` (quorum queues).
    pub fn dead_letter_strategy(self, strategy: DeadLetterStrategy) -> Self {
        self.set("x-dead-letter-strategy", strategy.name())
    }

    /// `x-max-length`: at most this many ready messages.
    pub fn max_length(self, messages: u64) -> Self {
        self.set("x-max-length", count(messages))
    }

    /// `x-max-length-bytes`: at most this many bytes of ready message bodies (for a
    /// stream: its total size on disk).
    pub fn max_length_bytes(self, bytes: u64) -> Self {
        self.set("x-max-length-bytes", count(bytes))
    }

    /// `x-overflow`: what a full queue does.
    pub fn overflow(self, overflow: Overflow) -> Self {
        self.set("x-overflow", overflow.name())
    }

    /// `x-message-ttl`: messages expire after this long in the queue (whole milliseconds).
    pub fn message_ttl(self, ttl: Duration) -> Self {
        self.set("x-message-ttl", millis(ttl))
    }

    /// `x-expires`: the queue is deleted after being unused this long (whole milliseconds).
    pub fn expires(self, idle: Duration) -> Self {
        self.set("x-expires", millis(idle))
    }

    /// `x-consumer-timeout`: how long a consumer may keep a delivery unacknowledged
    /// (quorum queues; whole milliseconds).
    pub fn consumer_timeout(self, timeout: Duration) -> Self {
        self.set("x-consumer-timeout", millis(timeout))
    }

    /// `x-max-priority`: a classic queue with priorities 0 to `max`.
    pub fn max_priority(self, max: u8) -> Self {
        self.set("x-max-priority", FieldValue::U8(max))
    }

    /// `x-queue-leader-locator` (quorum queues and streams).
    pub fn leader_locator(self, locator: LeaderLocator) -> Self {
        self.set("x-queue-leader-locator", locator.name())
    }

    /// `x-max-age` (streams): segments older than this are removed, written in RabbitMQ's
    /// syntax (`7D`, `12h`, `30m`, `45s`; whole seconds, rounded up).
    pub fn max_age(self, age_limit: Duration) -> Self {
        self.set("x-max-age", age(age_limit))
    }

    /// `x-stream-max-segment-size-bytes` (streams).
    pub fn stream_max_segment_size_bytes(self, bytes: u64) -> Self {
        self.set("x-stream-max-segment-size-bytes", count(bytes))
    }
}

impl From<QueueArguments> for FieldTable {
    fn from(args: QueueArguments) -> Self {
        args.0
    }
}

impl From<FieldTable> for QueueArguments {
    /// Starts from raw arguments.
    fn from(table: FieldTable) -> Self {
        QueueArguments(table)
    }
}

/// Where a stream consumer starts (`x-stream-offset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamOffset {
    /// The first message still in the stream.
    First,
    /// The last chunk written.
    Last,
    /// What is written from now on (the default).
    Next,
    /// A message's offset.
    Offset(u64),
    /// The first chunk written at or after this time (whole seconds, type `T`).
    Timestamp(SystemTime),
    /// What was written within this long before now (`1D`, `6h`...).
    Ago(Duration),
}

impl StreamOffset {
    fn value(self) -> FieldValue {
        match self {
            StreamOffset::First => "first".into(),
            StreamOffset::Last => "last".into(),
            StreamOffset::Next => "next".into(),
            StreamOffset::Offset(n) => count(n),
            StreamOffset::Timestamp(at) => at.into(),
            StreamOffset::Ago(d) => age(d).into(),
        }
    }
}

/// Typed consumer arguments for [`Channel::basic_consume`](crate::client::Channel::basic_consume).
///
/// ```
/// use std::time::Duration;
/// use warren::client::{ConsumerArguments, StreamOffset};
/// use warren::wire::FieldValue;
///
/// let args = ConsumerArguments::new()
///     .stream_offset(StreamOffset::First)
///     .stream_filter(["eu", "us"])
///     .priority(10)
///     .into_table();
/// assert_eq!(args.get("x-stream-offset").and_then(FieldValue::as_str), Some("first"));
/// assert_eq!(args.get("x-priority"), Some(&FieldValue::I32(10)));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[must_use]
pub struct ConsumerArguments(FieldTable);

impl ConsumerArguments {
    /// No argument.
    pub fn new() -> Self {
        Self::default()
    }

    raw_arg!();

    /// `x-stream-offset`: where a stream consumer starts.
    pub fn stream_offset(self, offset: StreamOffset) -> Self {
        self.set("x-stream-offset", offset.value())
    }

    /// `x-stream-filter`: only chunks holding messages with one of these filter values
    /// (publishers set `x-stream-filter-value`) are delivered. The broker filters by chunk:
    /// filter again on the application side.
    pub fn stream_filter<I, S>(self, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let values: Vec<FieldValue> = values.into_iter().map(|s| FieldValue::from(s.into())).collect();
        self.set("x-stream-filter", values)
    }

    /// `x-stream-match-unfiltered`: also deliver messages published without a filter value.
    pub fn stream_match_unfiltered(self, yes: bool) -> Self {
        self.set("x-stream-match-unfiltered", yes)
    }

    /// `x-priority`: consumers of higher priority get deliveries first (default 0).
    pub fn priority(self, priority: i32) -> Self {
        self.set("x-priority", priority)
    }

    /// `x-consumer-timeout`: how long this consumer may keep a delivery unacknowledged
    /// (quorum queues; whole milliseconds). RabbitMQ 4.3 then cancels the consumer
    /// ([`CancelReason::AckTimeout`](crate::error::CancelReason::AckTimeout)).
    pub fn timeout(self, timeout: Duration) -> Self {
        self.set("x-consumer-timeout", millis(timeout))
    }
}

impl From<ConsumerArguments> for FieldTable {
    fn from(args: ConsumerArguments) -> Self {
        args.0
    }
}

impl From<FieldTable> for ConsumerArguments {
    /// Starts from raw arguments.
    fn from(table: FieldTable) -> Self {
        ConsumerArguments(table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_arguments_have_rabbitmqs_keys_and_value_types() {
        let t = QueueArguments::new()
            .queue_type(QueueType::Stream)
            .quorum_initial_group_size(3)
            .delivery_limit(7)
            .dead_letter_exchange("dlx")
            .dead_letter_routing_key("parked")
            .dead_letter_strategy(DeadLetterStrategy::AtLeastOnce)
            .max_length(100)
            .max_length_bytes(u64::MAX)
            .overflow(Overflow::RejectPublishDlx)
            .message_ttl(Duration::from_millis(1500))
            .expires(Duration::from_secs(60))
            .consumer_timeout(Duration::from_secs(2))
            .max_priority(9)
            .leader_locator(LeaderLocator::Balanced)
            .max_age(Duration::from_secs(7 * 86_400))
            .stream_max_segment_size_bytes(1 << 20)
            .arg("x-raw", "as is")
            .into_table();
        let expected: Vec<(&str, FieldValue)> = vec![
            ("x-queue-type", "stream".into()),
            ("x-quorum-initial-group-size", FieldValue::I64(3)),
            ("x-delivery-limit", FieldValue::I64(7)),
            ("x-dead-letter-exchange", "dlx".into()),
            ("x-dead-letter-routing-key", "parked".into()),
            ("x-dead-letter-strategy", "at-least-once".into()),
            ("x-max-length", FieldValue::I64(100)),
            ("x-max-length-bytes", FieldValue::I64(i64::MAX)),
            ("x-overflow", "reject-publish-dlx".into()),
            ("x-message-ttl", FieldValue::I64(1500)),
            ("x-expires", FieldValue::I64(60_000)),
            ("x-consumer-timeout", FieldValue::I64(2000)),
            ("x-max-priority", FieldValue::U8(9)),
            ("x-queue-leader-locator", "balanced".into()),
            ("x-max-age", "7D".into()),
            ("x-stream-max-segment-size-bytes", FieldValue::I64(1 << 20)),
            ("x-raw", "as is".into()),
        ];
        assert_eq!(t.len(), expected.len());
        for (k, v) in expected {
            assert_eq!(t.get(k), Some(&v), "{k}");
        }
        // Every string value is a long string (`S`), as RabbitMQ reads them.
        assert_eq!(t.get("x-overflow").map(FieldValue::tag), Some(b'S'));
        let unlimited = QueueArguments::new()
            .delivery_limit(3)
            .unlimited_deliveries()
            .into_table();
        assert_eq!(unlimited.get("x-delivery-limit"), Some(&FieldValue::I64(-1)));
        assert_eq!(unlimited.len(), 1, "a setter replaces the earlier value");
    }

    #[test]
    fn ages_use_the_largest_whole_unit() {
        assert_eq!(age(Duration::from_secs(86_400)), "1D");
        assert_eq!(age(Duration::from_secs(7_200)), "2h");
        assert_eq!(age(Duration::from_secs(90)), "90s");
        assert_eq!(age(Duration::from_secs(120)), "2m");
        assert_eq!(age(Duration::from_millis(1500)), "2s", "rounded up to whole seconds");
        assert_eq!(age(Duration::ZERO), "0s");
    }

    #[test]
    fn consumer_arguments_encode_offsets_by_kind() {
        let offset = |o| ConsumerArguments::new().stream_offset(o).into_table();
        let get = |t: &FieldTable| t.get("x-stream-offset").cloned();
        assert_eq!(get(&offset(StreamOffset::First)), Some("first".into()));
        assert_eq!(get(&offset(StreamOffset::Last)), Some("last".into()));
        assert_eq!(get(&offset(StreamOffset::Next)), Some("next".into()));
        assert_eq!(get(&offset(StreamOffset::Offset(42))), Some(FieldValue::I64(42)));
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            get(&offset(StreamOffset::Timestamp(at))),
            Some(FieldValue::Timestamp(1_700_000_000)),
            "a timestamp is type T"
        );
        assert_eq!(
            get(&offset(StreamOffset::Ago(Duration::from_secs(3_600)))),
            Some("1h".into())
        );
        let t = ConsumerArguments::new()
            .stream_filter(["eu", "us"])
            .stream_match_unfiltered(true)
            .priority(-5)
            .timeout(Duration::from_secs(30))
            .into_table();
        assert_eq!(
            t.get("x-stream-filter"),
            Some(&FieldValue::from(vec![FieldValue::from("eu"), FieldValue::from("us")]))
        );
        assert_eq!(t.get("x-stream-filter").map(FieldValue::tag), Some(b'A'));
        assert_eq!(t.get("x-stream-match-unfiltered"), Some(&FieldValue::Bool(true)));
        assert_eq!(t.get("x-priority"), Some(&FieldValue::I32(-5)));
        assert_eq!(t.get("x-consumer-timeout"), Some(&FieldValue::I64(30_000)));
        let raw = FieldTable::new().with("x-credit", 3);
        let extended: FieldTable = ConsumerArguments::from(raw).priority(1).into();
        assert_eq!(extended.len(), 2, "raw arguments are kept");
    }
}
