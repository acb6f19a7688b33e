//! warren: an AMQP 0-9-1 client for RabbitMQ that never loses a message.
//!
//! The crate has three layers, each usable alone:
//! - [`wire`]: the frame codec (nom parser, encoder), generated from `spec/amqp0-9-1.xml`.
//! - `proto`: a sans-IO connection state machine: events in, frames out, time passed in.
//! - [`client`]: the tokio driver and public API: [`Connection`], [`Channel`],
//!   [`client::Consumer`], publisher confirms; [`uri`] parses `amqp://` URIs and `tls`
//!   (cargo feature `tls`, on by default) sets up rustls.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
pub mod error;
mod fastmap;
pub mod proto;
#[cfg(feature = "tls")]
pub mod tls;
pub mod uri;
pub mod wire;

pub use client::{Channel, Connection, ConnectionConfig};
pub use error::Error;
