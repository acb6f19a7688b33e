//! The sans-IO AMQP 0-9-1 connection state machine.
//!
//! [`Connection`] owns no socket, no timer and no task: bytes, commands and time go in,
//! bytes, events and deadlines come out. The tokio driver (and the tests, with a
//! scripted broker and a virtual clock) run it like this:
//!
//! ```text
//! let mut conn = Connection::new(config, now);        // queues the protocol header
//! loop {
//!     // 1. write everything pending (one write per wakeup)
//!     if conn.poll_transmit(now, &mut write_buf) { socket.write_all(&write_buf); write_buf.clear(); }
//!     // 2. hand out events
//!     while let Some(event) = conn.poll_event() { ... }
//!     if conn.is_closed() { break; }                   // after the last transmit: drop the socket
//!     // 3. wait for input, a command, or conn.poll_timeout()
//!     select! {
//!         n = socket.read_buf(&mut read_buf) => if n == 0 { conn.handle_eof() } else { conn.handle_input(&mut read_buf, now) },
//!         cmd = commands.recv() => conn.open_channel() / call / publish / ack / close ...,
//!         _ = sleep_until(conn.poll_timeout()) => conn.handle_timeout(now),
//!     }
//! }
//! ```
//!
//! Rules the driver relies on:
//! - Commands validate the state first and return a typed [`Error`](crate::error::Error) instead
//!   of sending anything illegal. After a connection error every command returns that
//!   same error ([`Connection::error`]).
//! - Synchronous calls on one channel are answered in order: each [`Connection::call`]
//!   that expects a reply produces exactly one [`Event::Reply`] or is failed by the
//!   [`Event::ChannelClosed`] of its channel, so the driver keeps a FIFO of reply
//!   senders per channel.
//! - Commands that must wait are held by the state machine itself and go out in order
//!   when they may ([`Connection::held`]): calls behind an unanswered `basic.consume` or
//!   `basic.cancel`, publishes while the server blocks publishing.
//! - After a loss, [`Connection::successor`] makes the next generation, which restores
//!   channels, topology and consumers once open and then reports [`Event::Recovered`];
//!   the driver keeps the application's commands until then.
//! - Output and events only grow by what the driver feeds in: `handle_input` turns at
//!   most the bytes it was given into events and replies. To bound memory, the driver
//!   stops reading while [`Connection::pending_transmit`] or its own event backlog is
//!   large.
//! - No panics on any input; no allocation sized by a peer's claim (a content header
//!   claiming 2^63 bytes allocates nothing).

mod acks;
mod address;
mod arguments;
mod channel;
mod commands;
mod config;
mod confirms;
mod connection;
mod content;
mod event;
mod handshake;
mod hold;
mod ids;
mod inbound;
mod options;
mod pacing;
mod reconsume;
mod replay;
mod store;
mod topology;

#[cfg(test)]
mod tests;

pub use acks::{Claimed, Outstanding, Settle};
pub(crate) use address::Addresses;
pub use address::{Address, AddressOrder};
pub use arguments::{
    ConsumerArguments, DeadLetterStrategy, LeaderLocator, Overflow, QueueArguments, QueueType, StreamOffset,
};
pub(crate) use commands::Route;
pub use commands::SHARED_BODY_MIN;
pub use config::{Config, PRE_OPEN_FRAME_MAX, Sasl, Tune};
pub use connection::{Connection, State};
pub use event::{Delivery, Event, Returned};
pub use hold::Held;
pub use ids::{ChannelId, DeliveryTag};
pub(crate) use options::short;
pub use options::{
    ConsumeOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, ExchangeKind, PublishOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
pub use pacing::Pause;
pub use reconsume::Reconsume;
pub use replay::{RecoveryFailure, RecoveryReport};
pub(crate) use store::{Keyed, Store};
