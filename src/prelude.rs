//! What most programs need, in one import:
//!
//! ```no_run
//! use warren::prelude::*;
//!
//! # async fn run() -> Result<(), Error> {
//! let conn = Connection::connect("amqp://guest:guest@127.0.0.1:5672/%2f").await?;
//! let ch = conn.open_channel().await?;
//! ch.queue_declare("jobs", QueueDeclareOptions { durable: true, ..Default::default() }, FieldTable::new())
//!     .await?;
//! ch.basic_publish("", "jobs", PublishOptions::default(), BasicProperties::persistent(), "hello")
//!     .await?;
//! let mut consumer = ch.basic_consume("jobs", "", ConsumeOptions::default(), field_table! {}).await?;
//! if let Some(delivery) = consumer.next().await {
//!     delivery?.ack().await?;
//! }
//! # Ok(()) }
//! ```
//!
//! The handles and their options ([`crate::client`]), the message types ([`crate::wire`]),
//! [`Error`], and the [`field_table!`](crate::field_table) and
//! [`field_array!`](crate::field_array) macros.

pub use crate::client::{
    Channel, Confirmation, Confirmed, Connection, ConnectionConfig, ConnectionState, ConsumeOptions, Consumer,
    Delivery, ExchangeDeclareOptions, ExchangeDeleteOptions, ExchangeKind, GetMessage, PublishOptions,
    QueueDeclareOptions, QueueDeleteOptions, RecoveryConfig,
};
pub use crate::error::Error;
pub use crate::wire::{BasicProperties, FieldTable, FieldValue, ShortStr};
pub use crate::{field_array, field_table};
pub use bytes::Bytes;
