//! Option structs for channel methods: every boolean flag has a name and a default.
//!
//! ```
//! use warren::client::QueueDeclareOptions;
//! let durable = QueueDeclareOptions { durable: true, ..Default::default() };
//! # let _ = durable;
//! ```
//!
//! Each makes its method (`method`), with the checks a server would otherwise answer
//! by closing the channel or the connection.

use crate::error::Error;
use crate::wire::{BasicConsume, ExchangeDeclare, ExchangeDelete, FieldTable, QueueDeclare, QueueDelete, ShortStr};

/// A short-string field of a method: [`Error::InvalidArgument`] naming it when it does
/// not fit (over 255 bytes).
pub(crate) fn short(what: &str, s: &str) -> Result<ShortStr, Error> {
    ShortStr::try_from(s).map_err(|e| Error::InvalidArgument(format!("{what}: {e}")))
}

/// The type of an exchange, for [`Channel::exchange_declare`](crate::client::Channel::exchange_declare).
///
/// A typo in a bare string (`"fannout"`) would make RabbitMQ close the whole connection
/// with 503; here it is a compile error, or, from a string, a typed error before anything
/// is sent. Plugin types (their names start with `x-`) are `Custom`.
///
/// ```
/// use warren::client::ExchangeKind;
/// assert_eq!(ExchangeKind::from("topic"), ExchangeKind::Topic);
/// assert_eq!(ExchangeKind::from("x-delayed-message"), ExchangeKind::Custom("x-delayed-message".into()));
/// assert_eq!(ExchangeKind::Fanout.name(), "fanout");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExchangeKind {
    /// Routes to the queues bound with the message's routing key.
    Direct,
    /// Routes to every bound queue.
    Fanout,
    /// Routes by pattern (`*` one word, `#` any words) on the routing key.
    Topic,
    /// Routes on message headers (`x-match` = `all` or `any`).
    Headers,
    /// A plugin's type, e.g. `x-delayed-message`, `x-consistent-hash`. The name must start
    /// with `x-`.
    Custom(String),
}

impl ExchangeKind {
    /// The name RabbitMQ knows it by.
    pub fn name(&self) -> &str {
        match self {
            ExchangeKind::Direct => "direct",
            ExchangeKind::Fanout => "fanout",
            ExchangeKind::Topic => "topic",
            ExchangeKind::Headers => "headers",
            ExchangeKind::Custom(name) => name,
        }
    }

    /// `Ok` unless it is a custom type whose name cannot be one (see [`Custom`](Self::Custom)).
    pub(crate) fn check(&self) -> Result<(), Error> {
        match self {
            ExchangeKind::Custom(name) if !name.starts_with("x-") => Err(Error::InvalidArgument(format!(
                "unknown exchange type {name:?}: RabbitMQ's are direct, fanout, topic and headers; \
                     a plugin's start with x-"
            ))),
            _ => Ok(()),
        }
    }
}

impl From<&str> for ExchangeKind {
    /// The built-in types by name; any other name is `Custom`.
    fn from(name: &str) -> Self {
        match name {
            "direct" => ExchangeKind::Direct,
            "fanout" => ExchangeKind::Fanout,
            "topic" => ExchangeKind::Topic,
            "headers" => ExchangeKind::Headers,
            other => ExchangeKind::Custom(other.to_owned()),
        }
    }
}

impl From<&String> for ExchangeKind {
    fn from(name: &String) -> Self {
        ExchangeKind::from(name.as_str())
    }
}

impl std::fmt::Display for ExchangeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Flags of `exchange.declare`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ExchangeDeclareOptions {
    /// Only check that the exchange exists (404 closes the channel if not).
    pub passive: bool,
    /// Survive a broker restart.
    pub durable: bool,
    /// Delete the exchange when its last binding is removed.
    pub auto_delete: bool,
    /// Not publishable directly, only through exchange-to-exchange bindings.
    pub internal: bool,
    /// Do not wait for `declare-ok` (errors then close the channel later).
    pub no_wait: bool,
}

/// Flags of `exchange.delete`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ExchangeDeleteOptions {
    /// Only delete it if it has no bindings.
    pub if_unused: bool,
    /// Do not wait for `delete-ok`.
    pub no_wait: bool,
}

/// Flags of `queue.declare`.
///
/// The default declares a queue that is neither durable nor exclusive, which RabbitMQ 4.3
/// refuses by default (`transient_nonexcl_queues`, see
/// [`Error::deprecated_feature`](crate::Error::deprecated_feature)): start from
/// [`durable`](Self::durable) or [`exclusive`](Self::exclusive) instead.
///
/// ```
/// use warren::client::QueueDeclareOptions;
/// let work = QueueDeclareOptions::durable();
/// let replies = QueueDeclareOptions { auto_delete: true, ..QueueDeclareOptions::exclusive() };
/// assert!(work.durable && replies.exclusive && replies.auto_delete);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct QueueDeclareOptions {
    /// Only check that the queue exists (404 closes the channel if not).
    pub passive: bool,
    /// Survive a broker restart (persistent messages in it too).
    pub durable: bool,
    /// Used only by this connection and deleted when it closes.
    pub exclusive: bool,
    /// Deleted when its last consumer is cancelled.
    pub auto_delete: bool,
    /// Do not wait for `declare-ok`: the result then has zero counts and the name as
    /// given (a server-named queue cannot be declared this way).
    pub no_wait: bool,
}

impl QueueDeclareOptions {
    /// A durable queue: it survives a broker restart.
    pub const fn durable() -> Self {
        QueueDeclareOptions {
            passive: false,
            durable: true,
            exclusive: false,
            auto_delete: false,
            no_wait: false,
        }
    }

    /// An exclusive queue: used only by this connection, deleted when it closes.
    pub const fn exclusive() -> Self {
        QueueDeclareOptions {
            passive: false,
            durable: false,
            exclusive: true,
            auto_delete: false,
            no_wait: false,
        }
    }
}

/// Flags of `queue.delete`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct QueueDeleteOptions {
    /// Only delete it if it has no consumers.
    pub if_unused: bool,
    /// Only delete it if it holds no messages.
    pub if_empty: bool,
    /// Do not wait for `delete-ok` (the message count is then 0).
    pub no_wait: bool,
}

/// Flags of `basic.consume`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ConsumeOptions {
    /// Do not receive messages published on this connection.
    pub no_local: bool,
    /// Deliveries need no acknowledgement: a message is gone once sent to us, even
    /// if this process dies before handling it. Leave false for reliable consuming.
    pub no_ack: bool,
    /// Be the queue's only consumer.
    pub exclusive: bool,
    /// Do not wait for `consume-ok` (needs a non-empty consumer tag).
    pub no_wait: bool,
}

/// Flags of `basic.publish`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct PublishOptions {
    /// Return the message (`basic.return`) if no queue receives it. In confirm mode
    /// the return is matched to this publish: [`Confirmed::Returned`](crate::client::Confirmed::Returned).
    /// Without confirm mode a returned message is only logged (`tracing` warning) and
    /// dropped: use confirm mode to act on returns.
    pub mandatory: bool,
}

impl ExchangeDeclareOptions {
    /// The `exchange.declare` of `exchange`, of type `kind`.
    pub fn method(self, exchange: &str, kind: &ExchangeKind, arguments: FieldTable) -> Result<ExchangeDeclare, Error> {
        kind.check()?;
        Ok(ExchangeDeclare {
            exchange: short("exchange", exchange)?,
            kind: short("exchange type", kind.name())?,
            passive: self.passive,
            durable: self.durable,
            auto_delete: self.auto_delete,
            internal: self.internal,
            no_wait: self.no_wait,
            arguments,
        })
    }
}

impl ExchangeDeleteOptions {
    /// The `exchange.delete` of `exchange`.
    pub fn method(self, exchange: &str) -> Result<ExchangeDelete, Error> {
        Ok(ExchangeDelete {
            exchange: short("exchange", exchange)?,
            if_unused: self.if_unused,
            no_wait: self.no_wait,
        })
    }
}

impl QueueDeclareOptions {
    /// The `queue.declare` of `queue` (empty: the server names it, which needs a reply,
    /// so not `no_wait`).
    pub fn method(self, queue: &str, arguments: FieldTable) -> Result<QueueDeclare, Error> {
        if self.no_wait && queue.is_empty() {
            return Err(Error::InvalidArgument(
                "a server-named queue cannot be declared with no_wait".into(),
            ));
        }
        Ok(QueueDeclare {
            queue: short("queue", queue)?,
            passive: self.passive,
            durable: self.durable,
            exclusive: self.exclusive,
            auto_delete: self.auto_delete,
            no_wait: self.no_wait,
            arguments,
        })
    }
}

impl QueueDeleteOptions {
    /// The `queue.delete` of `queue`.
    pub fn method(self, queue: &str) -> Result<QueueDelete, Error> {
        Ok(QueueDelete {
            queue: short("queue", queue)?,
            if_unused: self.if_unused,
            if_empty: self.if_empty,
            no_wait: self.no_wait,
        })
    }
}

impl ConsumeOptions {
    /// The `basic.consume` of `queue` (an empty `consumer_tag`: the server names it).
    pub fn method(self, queue: &str, consumer_tag: &str, arguments: FieldTable) -> Result<BasicConsume, Error> {
        Ok(BasicConsume {
            queue: short("queue", queue)?,
            consumer_tag: short("consumer tag", consumer_tag)?,
            no_local: self.no_local,
            no_ack: self.no_ack,
            exclusive: self.exclusive,
            no_wait: self.no_wait,
            arguments,
        })
    }
}
