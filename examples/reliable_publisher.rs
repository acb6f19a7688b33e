//! Publishing without losing messages: a durable queue, persistent messages, publisher
//! confirms with a bounded window, and `mandatory` so that unroutable messages come back.
//!
//! ```sh
//! cargo run --example reliable_publisher            # AMQP_URL overrides the local broker
//! ```
//!
//! Every publish ends in exactly one of: acked (the broker owns it), nacked (refused:
//! publish again later), returned (no queue matched: fix the routing or park it), or an
//! error, which means the outcome is unknown (the connection or channel went away before
//! the confirm). Unknown outcomes are republished; consumers deduplicate by `message_id`.

use std::collections::VecDeque;

use warren::Error;
use warren::client::{Confirmation, Confirmed, Connection, ConnectionConfig, PublishOptions, QueueDeclareOptions};
use warren::wire::{BasicProperties, FieldTable};

const QUEUE: &str = "warren.example.orders";
/// Confirmations awaited at a time (the channel's own window also bounds this).
const IN_FLIGHT: usize = 64;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let url = std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let config = ConnectionConfig::from_uri(&url)?.with_connection_name("reliable_publisher");
    let conn = Connection::connect_with(config).await?;
    let ch = conn.open_channel().await?;

    ch.queue_declare(QUEUE, QueueDeclareOptions::durable(), FieldTable::new())
        .await?;
    ch.confirm_select().await?;

    // Ten orders to the queue, and one to a routing key no queue is bound to.
    let mut orders: VecDeque<(String, String)> = (1..=10).map(|n| (format!("order-{n}"), QUEUE.to_string())).collect();
    orders.push_back(("order-unroutable".into(), "warren.example.nowhere".into()));

    let mut in_flight: VecDeque<(String, String, Confirmation)> = VecDeque::new();
    let (mut acked, mut returned) = (0, 0);
    while !orders.is_empty() || !in_flight.is_empty() {
        // Keep up to IN_FLIGHT publishes unconfirmed, then settle the oldest.
        if let Some((id, routing_key)) = orders.pop_front().filter(|_| in_flight.len() < IN_FLIGHT) {
            let props = BasicProperties::builder()
                .persistent() // written to disk on a durable queue
                .message_id(&id)
                .content_type("application/json")
                .build()?;
            let body = format!(r#"{{"order":"{id}"}}"#);
            let confirmation = ch
                .basic_publish("", &routing_key, PublishOptions { mandatory: true }, props, body)
                .await?;
            in_flight.push_back((id, routing_key, confirmation));
            continue;
        }
        let Some((id, routing_key, confirmation)) = in_flight.pop_front() else {
            break;
        };
        match confirmation.await {
            Ok(Confirmed::Ack) => acked += 1,
            Ok(Confirmed::Nack) => {
                eprintln!("{id}: nacked by the broker, publishing again");
                orders.push_back((id, routing_key));
            }
            Ok(Confirmed::Returned { message, .. }) => {
                // Not routed anywhere: republishing the same way would not help.
                returned += 1;
                eprintln!(
                    "{id}: returned ({} {}), parked for inspection",
                    message.reply_code, message.reply_text
                );
            }
            // Only without confirm mode; this channel is in confirm mode.
            Ok(Confirmed::Sent) => {}
            Err(e) => {
                // Outcome unknown: the broker may or may not have it. A real service would
                // reconnect here; the consumer side deduplicates by message_id.
                eprintln!("{id}: outcome unknown ({e}), will republish");
                return Err(e);
            }
        }
    }
    println!("{acked} orders confirmed, {returned} returned");
    conn.close().await
}
