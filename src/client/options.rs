//! Option structs for channel methods: every boolean flag has a name and a default.
//!
//! ```
//! use warren::client::QueueDeclareOptions;
//! let durable = QueueDeclareOptions { durable: true, ..Default::default() };
//! # let _ = durable;
//! ```

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
    /// the return is matched to this publish: [`Confirmed::Returned`](super::Confirmed::Returned).
    /// Without confirm mode a returned message is only logged (`tracing` warning) and
    /// dropped: use confirm mode to act on returns.
    pub mandatory: bool,
}
