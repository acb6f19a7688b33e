//! warren: an AMQP 0-9-1 client for RabbitMQ that never loses a message.
//!
//! The crate has three layers, each usable alone:
//! - [`wire`]: the frame codec (nom parser, encoder), generated from `spec/amqp0-9-1.xml`.
//! - `proto`: a sans-IO connection state machine: events in, frames out, time passed in.
//! - [`client`]: the tokio driver and public API: [`Connection`], [`Channel`],
//!   [`client::Consumer`], publisher confirms; [`uri`] parses `amqp://` URIs and `tls`
//!   (cargo feature `tls`, on by default) sets up rustls.
//!
//! New here? [`guide`] (also `docs/guide.md`) is how to keep every message: acks,
//! prefetch, durability, confirms, dead-lettering, retries, recovery, monitoring, TLS.
//!
//! Message bodies are [`bytes::Bytes`]; the [`bytes`] crate is re-exported, so
//! `warren::bytes::Bytes` needs no dependency of your own. Header and argument tables
//! are built like map literals with [`field_table!`] (see [`wire::FieldTable`]):
//!
//! ```
//! use warren::bytes::Bytes;
//! use warren::field_table;
//!
//! let body = Bytes::from_static(b"{\"order\":7}");
//! let headers = field_table! { "x-retries" => 0u8, "x-source" => "billing" };
//! assert_eq!(body.len(), 11);
//! assert_eq!(headers.len(), 2);
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
pub mod error;
mod fastmap;
/// The guide: how to keep a consumer from losing messages (`docs/guide.md`). Its code
/// blocks are compiled as this module's doctests.
#[doc = include_str!("../docs/guide.md")]
pub mod guide {}
pub mod prelude;

/// The README's code blocks, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
pub mod proto;
mod rng;
#[cfg(feature = "tls")]
pub mod tls;
pub mod uri;
pub mod wire;

/// The `bytes` crate, whose [`Bytes`](bytes::Bytes) carries message bodies and binary
/// field values.
pub use bytes;
pub use client::{Channel, Connection, ConnectionConfig};
pub use error::Error;
