//! What the state machine reports: [`Event`] and the messages it carries.

use bytes::Bytes;

use super::{ChannelId, DeliveryTag, RecoveryReport, Tune};
use crate::error::Error;
use crate::wire::{BasicProperties, FieldTable, Method, ReplyCode, ShortStr};

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
        content: Option<Box<Content>>,
    },
    /// A message for a consumer (`basic.deliver` and its content).
    Delivery {
        /// The channel.
        channel: ChannelId,
        /// The message (boxed: events move through queues, and a message is large).
        delivery: Box<Delivery>,
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
    /// The server cancelled a consumer (queue deleted, failover...).
    ConsumerCancelled {
        /// The channel.
        channel: ChannelId,
        /// The consumer.
        consumer_tag: ShortStr,
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

/// A message delivered to a consumer.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// The consumer it is for.
    pub consumer_tag: ShortStr,
    /// The tag to acknowledge it with.
    pub tag: DeliveryTag,
    /// The message was delivered before (and not acknowledged).
    pub redelivered: bool,
    /// The exchange it was published to.
    pub exchange: ShortStr,
    /// The routing key it was published with.
    pub routing_key: ShortStr,
    /// Message properties.
    pub properties: BasicProperties,
    /// The body; shares the read buffer when it came in one frame.
    pub body: Bytes,
}

/// The message of a `basic.get-ok` reply.
#[derive(Debug, Clone, PartialEq)]
pub struct Content {
    /// The tag to acknowledge it with (not tracked when the get was `no_ack`).
    pub tag: DeliveryTag,
    /// Message properties.
    pub properties: BasicProperties,
    /// The body.
    pub body: Bytes,
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
    pub properties: BasicProperties,
    /// The body.
    pub body: Bytes,
}
