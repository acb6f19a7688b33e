//! The one public error type of warren.
//!
//! Every failure a user can see is an [`Error`]. It is `Clone`, so the state machine can
//! fail a channel, every pending call and every unconfirmed publish with the *same*
//! value, and it says:
//! - which scope failed: a channel ([`Error::ChannelClosed`]) or the whole connection
//!   ([`Error::ConnectionClosed`], [`Error::ConnectionLost`], [`Error::Authentication`], ...);
//! - who ended it ([`Initiator`]): the server, this client, or the transport;
//! - the AMQP reply code and text, and the class/method that failed.
//!
//! Helper methods answer the questions a caller usually has:
//! [`reply_code`](Error::reply_code), [`is_channel_error`](Error::is_channel_error),
//! [`is_connection_error`](Error::is_connection_error) and
//! [`is_recoverable`](Error::is_recoverable).

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use crate::wire::{InvalidProperty, MethodId, ReplyCode, ShortStrTooLong};

/// Why the server cancelled a consumer ([`Error::ConsumerCancelled`]).
///
/// The server's `basic.cancel` carries no reason: RabbitMQ sends the same
/// `basic.cancel(consumer_tag, nowait = true)` when the consumer's queue is deleted and,
/// since 4.3, when the consumer kept a delivery unacknowledged past its consumer timeout
/// (RabbitMQ 4.2 and earlier closed the whole channel with 406 PRECONDITION_FAILED
/// "delivery acknowledgement on channel N timed out" instead; 4.3 does so too for clients
/// that do not announce `consumer_cancel_notify`, which warren does). warren tells them
/// apart by what it knows: a timeout can only cancel a consumer whose channel holds a
/// delivery unacknowledged for at least the consumer timeout, which is the consumer's
/// `x-consumer-timeout` argument when it has one, else
/// [`proto::Config::consumer_timeout`](crate::proto::Config::consumer_timeout)
/// (RabbitMQ's default, 30 minutes: set it to the broker's `consumer_timeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CancelReason {
    /// The channel's oldest unacknowledged delivery had been held for `held`, at least the
    /// consumer timeout: RabbitMQ 4.3 returned the timed-out deliveries to the queue (their
    /// acks are ignored) and cancelled the consumer. Consume again to go on.
    AckTimeout {
        /// How long the oldest unacknowledged delivery of the channel had been held.
        held: Duration,
    },
    /// Any other cancel: the queue was deleted, or (in a cluster) became unavailable.
    QueueDeleted,
}

impl fmt::Display for CancelReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CancelReason::AckTimeout { held } => write!(
                f,
                "a delivery stayed unacknowledged past the consumer timeout (held {} ms)",
                held.as_millis()
            ),
            CancelReason::QueueDeleted => f.write_str("its queue was deleted or became unavailable"),
        }
    }
}

/// A deprecated RabbitMQ feature that RabbitMQ 4.3 refuses by default
/// ([`Error::deprecated_feature`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeprecatedFeature {
    /// `transient_nonexcl_queues`: a queue declared neither durable nor exclusive.
    TransientNonExclusiveQueues,
    /// `global_qos`: `basic.qos` with `global` set.
    GlobalQos,
}

/// Who ended a channel or a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Initiator {
    /// The application asked warren to close it.
    Application,
    /// warren closed it on its own: the server broke the protocol (a connection, with
    /// 501..=505) or sent what a channel cannot take (311 CONTENT_TOO_LARGE for a body
    /// over `max_content_size`, 406 for a confirm of a publish never sent).
    Library,
    /// The server sent `channel.close` or `connection.close`.
    Server,
}

impl fmt::Display for Initiator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Initiator::Application => "the application",
            Initiator::Library => "warren",
            Initiator::Server => "the server",
        })
    }
}

/// Every error warren reports.
///
/// Cheap to clone (strings and an `Arc` for IO errors). Two errors compare equal when
/// they have the same variant and fields; IO sources compare by identity.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Error {
    /// A channel was closed: by the server (`channel.close`, a soft error such as
    /// 404 NOT_FOUND or 406 PRECONDITION_FAILED), by the application, or by warren
    /// (e.g. 311 CONTENT_TOO_LARGE for an inbound body over `max_content_size`, 406 for a
    /// confirm of a publish never sent).
    /// The connection and the other channels go on.
    ChannelClosed {
        /// Who sent `channel.close`.
        by: Initiator,
        /// The reply code (200 REPLY_SUCCESS for an ordinary close).
        code: ReplyCode,
        /// The reply text.
        text: String,
        /// The method that caused the close, when the closer named one.
        method: Option<MethodId>,
    },
    /// The connection was closed with `connection.close`: by the server (a hard error,
    /// 320 CONNECTION_FORCED from an operator, 530 NOT_ALLOWED for a bad vhost...), by the
    /// application, or by warren because the server broke the protocol (codes 501..=505).
    ConnectionClosed {
        /// Who sent `connection.close`.
        by: Initiator,
        /// The reply code.
        code: ReplyCode,
        /// The reply text.
        text: String,
        /// The method that caused the close, when the closer named one.
        method: Option<MethodId>,
    },
    /// The transport went away without a close handshake: end of stream, an IO
    /// error, or no frame from the server for two heartbeat intervals.
    ConnectionLost {
        /// What happened, e.g. `"heartbeat timeout"` or `"connection reset by peer"`.
        reason: String,
        /// The IO error, when there was one.
        source: Option<Arc<io::Error>>,
    },
    /// The server refused the credentials: `connection.close` 403 ACCESS_REFUSED during
    /// the handshake, end of stream right after `start-ok` (brokers without the
    /// `authentication_failure_close` capability), or none of the server's mechanisms
    /// is the one configured.
    Authentication {
        /// The SASL mechanism used (`PLAIN`, `AMQPLAIN`, `EXTERNAL`).
        mechanism: String,
        /// The server's reply text, or a description.
        text: String,
    },
    /// The handshake failed for a reason other than credentials: the server does not
    /// speak AMQP 0-9-1, offered a `frame_max` below 4096, or sent a frame that could not
    /// be decoded.
    Handshake {
        /// What went wrong.
        reason: String,
    },
    /// The server sent a method where the protocol allows others: during the handshake
    /// (the connection ends), or a reply that answers no call warren made. Nothing of it
    /// was acted on.
    UnexpectedMethod {
        /// What the protocol allowed there (empty: nothing).
        expected: Vec<MethodId>,
        /// What arrived.
        got: MethodId,
    },
    /// An operation did not finish in time (raised by the driver).
    Timeout {
        /// The operation, e.g. `"queue.declare"` or `"connect"`.
        operation: &'static str,
    },
    /// An ack, nack or reject for a delivery from an earlier connection, or from a
    /// channel that has closed since: nothing was sent (the server would have closed
    /// the channel with 406, as the tag means nothing to it any more).
    StaleDelivery {
        /// The delivery tag as the server numbered it.
        tag: u64,
    },
    /// An ack, nack or reject for a delivery that is not outstanding on its channel:
    /// already acknowledged, never delivered, or delivered to a no-ack consumer.
    /// Nothing was sent.
    UnknownDeliveryTag {
        /// The delivery tag as the server numbered it.
        tag: u64,
    },
    /// An argument could not be sent as given (e.g. a short string over 255 bytes, a
    /// method the client may not send through this call).
    InvalidArgument(String),
    /// The command is not allowed in the state the channel or connection is in, e.g.
    /// `confirm.select` on a transactional channel, a command on a channel that is
    /// closing. Nothing was sent.
    NotAllowed {
        /// Why.
        reason: &'static str,
    },
    /// The server said in its `capabilities` (`connection.start`) that it does not support
    /// this, e.g. `exchange_exchange_bindings` or `publisher_confirms` set to false by
    /// garagemq for the former. Nothing was sent: such a server closes the whole
    /// connection (540 not-implemented) for the method, or never answers it.
    NotSupported {
        /// The capability the server denies.
        capability: &'static str,
    },
    /// Every channel number up to the negotiated `channel_max` is in use.
    ChannelLimit {
        /// The negotiated `channel_max`.
        max: u16,
    },
    /// The channel id does not name an open channel of this connection (never opened,
    /// closed, or an id from before a reopen).
    ChannelNotOpen {
        /// The channel number.
        channel: u16,
    },
    /// The server cancelled a consumer (`basic.cancel` from the server): see
    /// [`CancelReason`] for why. The consumer's stream ends with this; the channel and the
    /// connection go on.
    ConsumerCancelled {
        /// The consumer's tag.
        consumer_tag: String,
        /// Why, as far as the client can tell.
        reason: CancelReason,
    },
    /// The server has blocked publishing (`connection.blocked`) and the driver gave up
    /// waiting.
    Blocked,
    /// The connection is not open yet (handshake in progress).
    NotConnected,
    /// The connection was closed by the application.
    Closed,
    /// TLS setup or handshake failed.
    Tls(String),
    /// The connection URI could not be parsed.
    Uri(String),
    /// An IO error outside an established connection (e.g. connecting).
    Io(Arc<io::Error>),
}

impl Error {
    /// The AMQP reply code, for errors that carry one.
    pub fn reply_code(&self) -> Option<ReplyCode> {
        match self {
            Error::ChannelClosed { code, .. } | Error::ConnectionClosed { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The reply text, for errors that carry one.
    pub fn reply_text(&self) -> Option<&str> {
        match self {
            Error::ChannelClosed { text, .. } | Error::ConnectionClosed { text, .. } => Some(text),
            _ => None,
        }
    }

    /// The method that failed, when the closing side named one.
    pub fn method(&self) -> Option<MethodId> {
        match self {
            Error::ChannelClosed { method, .. } | Error::ConnectionClosed { method, .. } => *method,
            _ => None,
        }
    }

    /// Who ended the channel or connection: `Some` for `ChannelClosed` and
    /// `ConnectionClosed`, `None` otherwise (transport loss has no initiator).
    pub fn initiator(&self) -> Option<Initiator> {
        match self {
            Error::ChannelClosed { by, .. } | Error::ConnectionClosed { by, .. } => Some(*by),
            _ => None,
        }
    }

    /// The deprecated RabbitMQ feature the server refused, when this is such a refusal.
    /// RabbitMQ 4.3 denies some deprecated features by default: declaring a queue neither
    /// durable nor exclusive, or `basic.qos` with `global`, makes it close the connection
    /// with 541 INTERNAL_ERROR "Feature `transient_nonexcl_queues` is deprecated" (or
    /// `global_qos`). Such a close is not [recoverable](Self::is_recoverable): the same
    /// declare would be refused again.
    pub fn deprecated_feature(&self) -> Option<DeprecatedFeature> {
        let text = match self {
            Error::ChannelClosed {
                by: Initiator::Server,
                text,
                ..
            }
            | Error::ConnectionClosed {
                by: Initiator::Server,
                text,
                ..
            } => text,
            _ => return None,
        };
        if !text.contains("is deprecated") {
            return None;
        }
        if text.contains("`transient_nonexcl_queues`") {
            Some(DeprecatedFeature::TransientNonExclusiveQueues)
        } else if text.contains("`global_qos`") {
            Some(DeprecatedFeature::GlobalQos)
        } else {
            None
        }
    }

    /// True when only a channel failed: the connection and its other channels go on.
    pub fn is_channel_error(&self) -> bool {
        matches!(self, Error::ChannelClosed { .. })
    }

    /// True when the whole connection failed (closed, lost, or its handshake failed or
    /// did not finish in time): every channel of it is gone.
    pub fn is_connection_error(&self) -> bool {
        matches!(
            self,
            Error::ConnectionClosed { .. }
                | Error::ConnectionLost { .. }
                | Error::Authentication { .. }
                | Error::Handshake { .. }
                | Error::UnexpectedMethod { .. }
                | Error::Timeout { operation: "connect" }
                | Error::Closed
        )
    }

    /// True when automatic connection recovery should try again: the transport was
    /// lost (EOF, IO error, heartbeat timeout), the server closed the connection with
    /// 320 CONNECTION_FORCED (operator, shutdown) or 541 INTERNAL_ERROR, warren closed
    /// it because the server broke the protocol (501..=505), or connecting timed out
    /// (`Timeout { operation: "connect" }`). False for
    /// authentication failures, 403 ACCESS_REFUSED, 530 NOT_ALLOWED (e.g. unknown vhost),
    /// a close the application asked for, channel errors (the connection is fine) and
    /// local usage errors.
    pub fn is_recoverable(&self) -> bool {
        match self {
            Error::ConnectionLost { .. } | Error::Io(_) => true,
            Error::Timeout { operation } => *operation == "connect",
            Error::ConnectionClosed {
                by: Initiator::Server,
                code,
                ..
            } => {
                self.deprecated_feature().is_none()
                    && matches!(
                        *code,
                        ReplyCode::CONNECTION_FORCED | ReplyCode::INTERNAL_ERROR | ReplyCode::RESOURCE_ERROR
                    )
            }
            Error::ConnectionClosed {
                by: Initiator::Library, ..
            } => true,
            _ => false,
        }
    }

    /// True for the end of a connection the application asked for: closing it again, or
    /// waiting for it, succeeds.
    pub fn is_application_close(&self) -> bool {
        matches!(
            self,
            Error::ConnectionClosed {
                by: Initiator::Application,
                ..
            }
        )
    }

    /// The server answered a call with `got`, which is none of `expected`.
    pub(crate) fn unexpected(expected: &[MethodId], got: MethodId) -> Self {
        Error::UnexpectedMethod {
            expected: expected.to_vec(),
            got,
        }
    }

    /// The end of a consumer's stream when the server cancelled it.
    pub(crate) fn consumer_cancelled(consumer_tag: &crate::wire::ShortStr, reason: CancelReason) -> Self {
        Error::ConsumerCancelled {
            consumer_tag: consumer_tag.to_string(),
            reason,
        }
    }

    /// A connection-lost error for an IO error.
    pub fn connection_lost(reason: impl Into<String>, source: Option<io::Error>) -> Self {
        Error::ConnectionLost {
            reason: reason.into(),
            source: source.map(Arc::new),
        }
    }
}

impl PartialEq for Error {
    fn eq(&self, other: &Self) -> bool {
        use Error::*;
        fn same_io(a: &Option<Arc<io::Error>>, b: &Option<Arc<io::Error>>) -> bool {
            match (a, b) {
                (None, None) => true,
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                _ => false,
            }
        }
        match (self, other) {
            (
                ChannelClosed { by, code, text, method },
                ChannelClosed {
                    by: b2,
                    code: c2,
                    text: t2,
                    method: m2,
                },
            )
            | (
                ConnectionClosed { by, code, text, method },
                ConnectionClosed {
                    by: b2,
                    code: c2,
                    text: t2,
                    method: m2,
                },
            ) => by == b2 && code == c2 && text == t2 && method == m2,
            (ConnectionLost { reason, source }, ConnectionLost { reason: r2, source: s2 }) => {
                reason == r2 && same_io(source, s2)
            }
            (
                Authentication { mechanism, text },
                Authentication {
                    mechanism: m2,
                    text: t2,
                },
            ) => mechanism == m2 && text == t2,
            (Handshake { reason }, Handshake { reason: r2 }) => reason == r2,
            (UnexpectedMethod { expected, got }, UnexpectedMethod { expected: e2, got: g2 }) => {
                expected == e2 && got == g2
            }
            (Timeout { operation }, Timeout { operation: o2 }) => operation == o2,
            (StaleDelivery { tag }, StaleDelivery { tag: t2 }) => tag == t2,
            (UnknownDeliveryTag { tag }, UnknownDeliveryTag { tag: t2 }) => tag == t2,
            (InvalidArgument(a), InvalidArgument(b)) => a == b,
            (NotAllowed { reason }, NotAllowed { reason: r2 }) => reason == r2,
            (NotSupported { capability }, NotSupported { capability: c2 }) => capability == c2,
            (ChannelLimit { max }, ChannelLimit { max: m2 }) => max == m2,
            (ChannelNotOpen { channel }, ChannelNotOpen { channel: c2 }) => channel == c2,
            (
                ConsumerCancelled { consumer_tag, reason },
                ConsumerCancelled {
                    consumer_tag: t2,
                    reason: r2,
                },
            ) => consumer_tag == t2 && reason == r2,
            (Blocked, Blocked) | (NotConnected, NotConnected) | (Closed, Closed) => true,
            (Tls(a), Tls(b)) | (Uri(a), Uri(b)) => a == b,
            (Io(a), Io(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

fn write_method(f: &mut fmt::Formatter<'_>, method: &Option<MethodId>) -> fmt::Result {
    match method {
        Some(m) => write!(f, " (in {m})"),
        None => Ok(()),
    }
}

/// What to do instead of a deprecated feature the server refused.
fn write_deprecation_hint(f: &mut fmt::Formatter<'_>, e: &Error) -> fmt::Result {
    match e.deprecated_feature() {
        Some(DeprecatedFeature::TransientNonExclusiveQueues) => f.write_str(
            "; RabbitMQ 4.3+ refuses queues that are neither durable nor exclusive by default: \
             declare the queue durable (with x-expires to clean it up) or exclusive",
        ),
        Some(DeprecatedFeature::GlobalQos) => f.write_str(
            "; RabbitMQ 4.3+ refuses global QoS by default: use a per-consumer prefetch, \
             basic_qos(count, false)",
        ),
        None => Ok(()),
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::ChannelClosed { by, code, text, method } => {
                write!(f, "channel closed by {by}: {code} {text}")?;
                write_method(f, method)?;
                write_deprecation_hint(f, self)
            }
            Error::ConnectionClosed { by, code, text, method } => {
                write!(f, "connection closed by {by}: {code} {text}")?;
                write_method(f, method)?;
                write_deprecation_hint(f, self)
            }
            Error::ConnectionLost { reason, source } => match source {
                Some(e) => write!(f, "connection lost: {reason}: {e}"),
                None => write!(f, "connection lost: {reason}"),
            },
            Error::Authentication { mechanism, text } => write!(f, "authentication with {mechanism} failed: {text}"),
            Error::Handshake { reason } => write!(f, "handshake failed: {reason}"),
            Error::UnexpectedMethod { expected, got } => {
                write!(f, "the server sent {got}")?;
                for (i, m) in expected.iter().enumerate() {
                    f.write_str(match i {
                        0 => " where warren expected ",
                        _ if i + 1 == expected.len() => " or ",
                        _ => ", ",
                    })?;
                    write!(f, "{m}")?;
                }
                if expected.is_empty() {
                    f.write_str(" where warren expected nothing")?;
                }
                Ok(())
            }
            Error::Timeout { operation } => write!(f, "{operation} timed out"),
            Error::StaleDelivery { tag } => {
                write!(
                    f,
                    "delivery tag {tag} belongs to a closed channel or an earlier connection"
                )
            }
            Error::UnknownDeliveryTag { tag } => write!(f, "delivery tag {tag} is not outstanding on its channel"),
            Error::InvalidArgument(text) => write!(f, "invalid argument: {text}"),
            Error::NotAllowed { reason } => write!(f, "not allowed: {reason}"),
            Error::NotSupported { capability } => write!(
                f,
                "the server does not support this: its capabilities set {capability} to false (nothing was sent)"
            ),
            Error::ChannelLimit { max } => write!(f, "all {max} channel numbers are in use"),
            Error::ChannelNotOpen { channel } => write!(f, "channel {channel} is not open"),
            Error::ConsumerCancelled { consumer_tag, reason } => {
                write!(f, "the server cancelled consumer {consumer_tag}: {reason}")
            }
            Error::Blocked => f.write_str("the server blocked publishing"),
            Error::NotConnected => f.write_str("the connection is not open yet"),
            Error::Closed => f.write_str("the connection was closed"),
            Error::Tls(text) => write!(f, "TLS: {text}"),
            Error::Uri(text) => write!(f, "invalid URI: {text}"),
            Error::Io(e) => write!(f, "IO error: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::ConnectionLost { source: Some(e), .. } | Error::Io(e) => Some(&**e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(Arc::new(e))
    }
}

/// A short string over 255 bytes (a key, an id, a name) is an invalid argument, so `?`
/// works on [`ShortStr::try_from`](crate::wire::ShortStr) in functions returning
/// `Result<_, Error>`.
impl From<ShortStrTooLong> for Error {
    fn from(e: ShortStrTooLong) -> Self {
        Error::InvalidArgument(e.to_string())
    }
}

/// A property too long for its type, from
/// [`PropertiesBuilder::build`](crate::wire::PropertiesBuilder::build): `?` works on it
/// in functions returning `Result<_, Error>`.
impl From<InvalidProperty> for Error {
    fn from(e: InvalidProperty) -> Self {
        Error::InvalidArgument(e.to_string())
    }
}

/// For conversions that cannot fail, so that generic code bounded by
/// `Error: From<E>` also takes them (e.g. `ShortStr` where `TryInto<ShortStr>` goes).
impl From<std::convert::Infallible> for Error {
    fn from(never: std::convert::Infallible) -> Self {
        match never {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_and_recoverability() {
        let forced = Error::ConnectionClosed {
            by: Initiator::Server,
            code: ReplyCode::CONNECTION_FORCED,
            text: "CONNECTION_FORCED - broker forced connection closure".into(),
            method: None,
        };
        assert!(forced.is_connection_error() && !forced.is_channel_error() && forced.is_recoverable());
        assert_eq!(forced.reply_code(), Some(ReplyCode::CONNECTION_FORCED));

        let vhost = Error::ConnectionClosed {
            by: Initiator::Server,
            code: ReplyCode::NOT_ALLOWED,
            text: "vhost nope not found".into(),
            method: Some(MethodId::new(10, 40)),
        };
        assert!(!vhost.is_recoverable());
        assert!(vhost.to_string().contains("530"), "{vhost}");

        let not_found = Error::ChannelClosed {
            by: Initiator::Server,
            code: ReplyCode::NOT_FOUND,
            text: "no queue".into(),
            method: Some(MethodId::new(50, 10)),
        };
        assert!(not_found.is_channel_error() && !not_found.is_connection_error() && !not_found.is_recoverable());

        let lost = Error::connection_lost("reset", Some(io::Error::from(io::ErrorKind::ConnectionReset)));
        assert!(lost.is_recoverable() && lost.is_connection_error());
        assert!(std::error::Error::source(&lost).is_some());
        assert_eq!(lost.clone(), lost);
        let other = Error::connection_lost("reset", Some(io::Error::from(io::ErrorKind::ConnectionReset)));
        assert_ne!(lost, other, "IO sources compare by identity");

        let auth = Error::Authentication {
            mechanism: "PLAIN".into(),
            text: "ACCESS_REFUSED".into(),
        };
        assert!(!auth.is_recoverable() && auth.is_connection_error());

        let protocol = Error::ConnectionClosed {
            by: Initiator::Library,
            code: ReplyCode::UNEXPECTED_FRAME,
            text: "body frame with no content pending".into(),
            method: None,
        };
        assert!(protocol.is_recoverable());
        let user_close = Error::ConnectionClosed {
            by: Initiator::Application,
            code: ReplyCode::SUCCESS,
            text: "bye".into(),
            method: None,
        };
        assert!(!user_close.is_recoverable() && user_close.is_application_close());
        assert!(!protocol.is_application_close());
        let unexpected = Error::unexpected(&[MethodId::new(10, 10)], MethodId::new(10, 30));
        assert!(unexpected.is_connection_error() && !unexpected.is_recoverable());
        assert_eq!(
            unexpected.to_string(),
            "the server sent connection.tune where warren expected connection.start"
        );
    }

    #[test]
    fn too_long_short_strings_convert_for_question_mark() {
        fn key(text: &str) -> Result<crate::wire::ShortStr, Error> {
            Ok(crate::wire::ShortStr::try_from(text)?)
        }
        assert_eq!(key("x-retries").unwrap(), "x-retries");
        let err = key(&"k".repeat(256)).unwrap_err();
        assert_eq!(
            err,
            Error::InvalidArgument("short string of 256 bytes exceeds 255".into())
        );
        assert!(!err.is_recoverable() && !err.is_connection_error() && !err.is_channel_error());
        assert_eq!(
            Error::from(ShortStrTooLong { len: 300 }).to_string(),
            "invalid argument: short string of 300 bytes exceeds 255"
        );
    }
}
