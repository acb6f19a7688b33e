//! What the state machine reports: [`Event`] and the messages it carries.

use bytes::Bytes;

use super::{ChannelId, DeliveryTag, RecoveryReport, Tune};
use crate::error::{CancelReason, Error};
use crate::wire::{BasicProperties, FieldTable, Method, Properties, ReplyCode, ShortStr};

/// Something that happened, taken with [`Connection::poll_event`](super::Connection::poll_event).
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The handshake finished (`connection.open-ok`): commands are accepted now.
    Connected {
        /// The server's `connection.start` properties (product, version, capabilities).
        server_properties: FieldTable,
        /// The negotiated limits.
        tune: Tune,
    },
    /// The server stopped reading publishes (`connection.blocked`, e.g. memory alarm).
    Blocked {
        /// The server's reason.
        reason: String,
    },
    /// The server reads publishes again (`connection.unblocked`).
    Unblocked,
    /// `channel.open-ok` arrived for a channel from [`Connection::open_channel`](super::Connection::open_channel).
    ChannelOpened(ChannelId),
    /// The channel is closed and its number free. Every call still pending on it, and
    /// every unconfirmed publish, failed with `error` (the driver fails their senders).
    /// After a client-initiated close this comes when `close-ok` arrives, with
    /// `Error::ChannelClosed { by: Client, .. }` carrying the code the client sent.
    ChannelClosed {
        /// The channel.
        channel: ChannelId,
        /// Why: the server's or client's close, or the connection's error when the
        /// whole connection failed.
        error: Error,
    },
    /// The reply to the oldest pending synchronous call on `channel` (calls are
    /// answered in the order they were made).
    Reply {
        /// The channel.
        channel: ChannelId,
        /// The reply method, e.g. `Method::QueueDeclareOk(..)`.
        method: Method,
        /// The message of a `basic.get-ok`; `None` for every other reply.
        content: Option<Box<Delivery>>,
    },
    /// A message for a consumer (`basic.deliver` and its content).
    Delivery {
        /// The channel.
        channel: ChannelId,
        /// The message.
        delivery: Delivery,
    },
    /// A publish on a confirm-mode channel was resolved; one event per publish, in
    /// sequence order within one ack/nack frame.
    Confirm {
        /// The channel.
        channel: ChannelId,
        /// The sequence number [`Connection::publish`](super::Connection::publish) returned.
        seq: u64,
        /// True for `basic.ack`, false for `basic.nack`.
        ack: bool,
        /// The `basic.return` the server sent for this very publish (mandatory and
        /// unroutable), if any.
        returned: Option<Box<Returned>>,
    },
    /// A returned message that is not tied to a confirm: the channel is not in
    /// confirm mode, or no unconfirmed mandatory publish matches it.
    Return {
        /// The channel.
        channel: ChannelId,
        /// The message.
        returned: Box<Returned>,
    },
    /// The server cancelled a consumer (queue deleted, consumer timeout...).
    ConsumerCancelled {
        /// The channel.
        channel: ChannelId,
        /// The consumer.
        consumer_tag: ShortStr,
        /// Why, as far as the state machine can tell.
        reason: CancelReason,
    },
    /// The server cancelled a consumer and [`Config::reconsume`](super::Config::reconsume)
    /// is on: the consumer is kept and consumes again once its queue is reachable
    /// ([`ConsumerResumed`](Self::ConsumerResumed)); its deliveries pause until then.
    ConsumerSuspended {
        /// The channel.
        channel: ChannelId,
        /// The consumer.
        consumer_tag: ShortStr,
    },
    /// A suspended consumer consumes again (`consume-ok` of its new `basic.consume`).
    ConsumerResumed {
        /// The channel.
        channel: ChannelId,
        /// The consumer.
        consumer_tag: ShortStr,
    },
    /// The server asked to pause (`active == false`) or resume deliveries
    /// (`channel.flow`); warren already answered `flow-ok`.
    Flow {
        /// The channel.
        channel: ChannelId,
        /// True to resume.
        active: bool,
    },
    /// A successor ([`Connection::successor`](super::Connection::successor)) restored
    /// what its predecessor had: commands of the application may go again.
    Recovered(Box<RecoveryReport>),
    /// `connection.update-secret-ok` arrived for [`Connection::update_secret`](super::Connection::update_secret).
    SecretUpdated,
    /// The connection is closed; terminal. Every later command returns this error.
    /// For a close the application asked for this is
    /// `Error::ConnectionClosed { by: Client, code: 200, .. }`.
    ConnectionClosed(Error),
}

/// A message delivered to a consumer (`basic.deliver`) or fetched (`basic.get-ok`),
/// and `S`, what settles it: nothing in the state machine's events (settle with
/// [`Connection::settle`](super::Connection::settle)), the channel in the client's
/// [`Delivery`](crate::client::Delivery).
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery<S = ()> {
    /// The tag to settle it with.
    pub delivery_tag: DeliveryTag,
    /// The consumer it is for (empty for `basic.get`).
    pub consumer_tag: ShortStr,
    /// The message was delivered before (and not acknowledged).
    pub redelivered: bool,
    /// The exchange it was published to.
    pub exchange: ShortStr,
    /// The routing key it was published with.
    pub routing_key: ShortStr,
    /// Message properties, read as [`BasicProperties`] (`delivery.properties.content_type`);
    /// built on first read.
    pub properties: Properties,
    /// The body; shares the read buffer when it came in one frame.
    pub body: Bytes,
    pub(crate) settler: S,
}

impl<S> Delivery<S> {
    /// The same message, settled by `settler`.
    pub(crate) fn with_settler<T>(self, settler: T) -> Delivery<T> {
        Delivery {
            delivery_tag: self.delivery_tag,
            consumer_tag: self.consumer_tag,
            redelivered: self.redelivered,
            exchange: self.exchange,
            routing_key: self.routing_key,
            properties: self.properties,
            body: self.body,
            settler,
        }
    }

    /// How many times a quorum queue delivered this message before: its
    /// `x-delivery-count` header. RabbitMQ counts every return towards the queue's
    /// `x-delivery-limit` (default 20 since 4.0) except, since 4.3, `basic.nack` with
    /// requeue: `basic.reject` with requeue and a lost connection count, `nack` does not.
    /// `None` when the header is absent (classic queues, a first delivery).
    pub fn delivery_count(&self) -> Option<u64> {
        count_header(&self.properties, "x-delivery-count")
    }

    /// How many times a quorum queue handed this message to a consumer, whatever
    /// returned it (`nack` included): its `x-acquired-count` header (RabbitMQ 4.3+).
    /// `None` when absent.
    pub fn acquired_count(&self) -> Option<u64> {
        count_header(&self.properties, "x-acquired-count")
    }
}

/// A non-negative integer header, of whatever integer type the broker sent it as.
fn count_header(properties: &BasicProperties, name: &str) -> Option<u64> {
    let value = properties.headers.as_ref()?.get(name)?.as_i64()?;
    u64::try_from(value).ok()
}

/// A message the server handed back (`basic.return`): mandatory and unroutable.
#[derive(Debug, Clone, PartialEq)]
pub struct Returned {
    /// Why, usually 312 NO_ROUTE.
    pub reply_code: ReplyCode,
    /// The server's text.
    pub reply_text: ShortStr,
    /// The exchange it was published to.
    pub exchange: ShortStr,
    /// The routing key it was published with.
    pub routing_key: ShortStr,
    /// Message properties.
    pub properties: Properties,
    /// The body.
    pub body: Bytes,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{FieldTable, FieldValue, ShortStr};

    fn with_headers(pairs: &[(&'static str, FieldValue)]) -> BasicProperties {
        let mut headers = FieldTable::new();
        for (k, v) in pairs {
            headers.insert(ShortStr::from_static(k), v.clone());
        }
        BasicProperties {
            headers: Some(headers),
            ..Default::default()
        }
    }

    #[test]
    fn quorum_queue_counts_are_read_whatever_integer_type_they_came_as() {
        let props = with_headers(&[
            ("x-delivery-count", FieldValue::I64(3)),
            ("x-acquired-count", FieldValue::I32(5)),
        ]);
        assert_eq!(count_header(&props, "x-delivery-count"), Some(3));
        assert_eq!(count_header(&props, "x-acquired-count"), Some(5));
        let odd = with_headers(&[
            ("x-delivery-count", FieldValue::LongStr("3".into())),
            ("x-acquired-count", FieldValue::I8(-1)),
        ]);
        assert_eq!(count_header(&odd, "x-delivery-count"), None, "not an integer");
        assert_eq!(count_header(&odd, "x-acquired-count"), None, "negative");
        assert_eq!(
            count_header(&BasicProperties::default(), "x-delivery-count"),
            None,
            "no headers"
        );
    }
}
