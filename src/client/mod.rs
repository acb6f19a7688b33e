//! The tokio client: [`Connection`], [`Channel`], [`Consumer`], publisher confirms.
//!
//! ```no_run
//! use warren::client::{Connection, PublishOptions, QueueDeclareOptions, ConsumeOptions, Confirmed};
//! use warren::wire::{BasicProperties, FieldTable};
//!
//! # async fn run() -> Result<(), warren::Error> {
//! let conn = Connection::connect("amqp://guest:guest@127.0.0.1:5672/%2f").await?;
//! let ch = conn.open_channel().await?;
//! ch.queue_declare("jobs", QueueDeclareOptions { durable: true, ..Default::default() }, FieldTable::new()).await?;
//! ch.confirm_select().await?;
//! let props = BasicProperties { delivery_mode: Some(2), ..Default::default() };
//! let confirm = ch.basic_publish("", "jobs", PublishOptions { mandatory: true }, props, "hello").await?;
//! assert_eq!(confirm.await?, Confirmed::Ack);
//!
//! ch.basic_qos(10, false).await?;
//! let mut consumer = ch.basic_consume("jobs", "", ConsumeOptions::default(), FieldTable::new()).await?;
//! while let Some(delivery) = consumer.next().await {
//!     let delivery = delivery?;
//!     delivery.ack().await?;
//! }
//! conn.close().await
//! # }
//! ```
//!
//! Everything is bounded: the command queue to the connection task, each consumer's
//! buffer, and the unconfirmed publishes per channel.

mod channel;
mod command;
mod config;
mod confirm;
mod connection;
mod consumer;
mod driver;
mod handle;
mod handoff;
mod metrics;
mod publish;
mod recovery;
mod shared;
mod state;
mod transport;
mod wake;

pub use crate::proto::{Address, AddressOrder};
pub use crate::proto::{ChannelId, DeliveryTag, Returned, Sasl, Tune};
pub use crate::proto::{
    ConsumeOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, ExchangeKind, PublishOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
pub use crate::proto::{
    ConsumerArguments, DeadLetterStrategy, LeaderLocator, Overflow, QueueArguments, QueueType, StreamOffset,
};
pub use channel::{Channel, QueueInfo, Returns};
pub use config::ConnectionConfig;
pub use confirm::Confirmation;
pub use connection::Connection;
pub use consumer::{Consumer, Delivery, Drained, GetMessage, Settler};
pub use metrics::Metrics;
pub use publish::Confirmed;
pub use recovery::{Reconsume, RecoveryConfig, RecoveryFailure, RecoveryReport};
pub use state::{ConnectionState, StateChanges};

#[cfg(test)]
mod tests {
    use super::*;

    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}

    #[test]
    fn handles_are_send_and_sync() {
        send_sync::<Connection>();
        send_sync::<Channel>();
        send_sync::<Delivery>();
        send_sync::<ConnectionConfig>();
        send::<Consumer>();
        send::<Confirmation>();
    }

    #[test]
    fn config_debug_hides_secrets() {
        let config = ConnectionConfig::from_uri("amqp://user:s3cr3t@host/vhost").unwrap();
        assert!(!format!("{config:?}").contains("s3cr3t"));
        assert_eq!(config.protocol.vhost, "vhost");
        assert_eq!((config.host.as_str(), config.port), ("host", 5672));
    }

    #[test]
    fn config_checks() {
        let config = ConnectionConfig {
            publish_window: 0,
            ..Default::default()
        };
        assert!(matches!(config.check(), Err(crate::error::Error::InvalidArgument(_))));
        let config = ConnectionConfig::default().with_sasl(Sasl::External);
        assert!(matches!(config.check(), Err(crate::error::Error::InvalidArgument(_))));
        assert!(matches!(
            ConnectionConfig::from_uri("amqp://h?cacertfile=/x.pem"),
            Err(crate::error::Error::Uri(_))
        ));
    }

    #[test]
    fn config_from_several_uris_and_a_host_list() {
        let config = ConnectionConfig::from_uri("amqp://u:p@h1:5701,h2:5702/v?address_order=shuffled").unwrap();
        assert_eq!(config.addresses(), [Address::new("h1", 5701), Address::new("h2", 5702)]);
        assert_eq!(config.address_order, AddressOrder::Shuffled);
        let mut config = ConnectionConfig::from_uris(&["amqp://u:p@h1:5701/v", "amqp://u:p@h2:5702,h3/v"]).unwrap();
        config.recovery.hosts = vec![("h4".into(), 1)];
        assert_eq!(
            config.addresses(),
            [
                Address::new("h1", 5701),
                Address::new("h2", 5702),
                Address::new("h3", 5672),
                Address::new("h4", 1)
            ]
        );
        assert_eq!(config.address_order, AddressOrder::InOrder);
        for mismatch in [
            ["amqp://u:p@h1/v", "amqp://x:p@h2/v"],
            ["amqp://u:p@h1/v", "amqp://u:p@h2/w"],
            ["amqp://u:p@h1/v", "amqps://u:p@h2/v"],
        ] {
            assert!(matches!(
                ConnectionConfig::from_uris(&mismatch),
                Err(crate::error::Error::Uri(_))
            ));
        }
        let none: [&str; 0] = [];
        assert!(matches!(
            ConnectionConfig::from_uris(&none),
            Err(crate::error::Error::Uri(_))
        ));
    }
}
