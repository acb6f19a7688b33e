//! Request/reply with RabbitMQ's direct reply-to (`amq.rabbitmq.reply-to`): the client
//! consumes from the pseudo-queue (no_ack) on the same channel it publishes requests on,
//! and matches replies by `correlation_id`. No reply queue is declared.
//!
//! ```sh
//! cargo run --example rpc
//! ```

use std::collections::HashMap;

use warren::Error;
use warren::client::{Channel, Connection, ConsumeOptions, PublishOptions, QueueDeclareOptions};
use warren::wire::{BasicProperties, FieldTable};

const QUEUE: &str = "warren.example.rpc";
const REPLY_TO: &str = "amq.rabbitmq.reply-to";

/// The server: squares the number in each request and replies to its `reply_to`.
async fn serve(ch: Channel) -> Result<(), Error> {
    ch.basic_qos(16, false).await?;
    let mut requests = ch
        .basic_consume(QUEUE, "", ConsumeOptions::default(), FieldTable::new())
        .await?;
    while let Some(request) = requests.next().await {
        let request = request?;
        let n: i64 = std::str::from_utf8(&request.body)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if let Some(reply_to) = &request.properties.reply_to {
            let mut reply = BasicProperties::builder();
            if let Some(id) = &request.properties.correlation_id {
                reply = reply.correlation_id(id);
            }
            let props = reply.build()?;
            let _sent = ch
                .basic_publish("", reply_to, PublishOptions::default(), props, (n * n).to_string())
                .await?;
        }
        request.ack().await?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let url = std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let conn = Connection::connect(&url).await?;

    // The server shares this connection: its request queue can be exclusive (RabbitMQ 4.3
    // refuses queues that are neither durable nor exclusive).
    let server_ch = conn.open_channel().await?;
    server_ch
        .queue_declare(QUEUE, QueueDeclareOptions::exclusive(), FieldTable::new())
        .await?;
    let server = tokio::spawn(serve(server_ch));

    // Client: consume replies first (no_ack is required for direct reply-to), then publish.
    let ch = conn.open_channel().await?;
    let mut replies = ch
        .basic_consume(
            REPLY_TO,
            "",
            ConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::new(),
        )
        .await?;
    let mut waiting = HashMap::new();
    for n in 1..=5i64 {
        let id = format!("req-{n}");
        let props = BasicProperties::builder()
            .reply_to(REPLY_TO)
            .correlation_id(&id)
            .build()?;
        let _sent = ch
            .basic_publish("", QUEUE, PublishOptions { mandatory: true }, props, n.to_string())
            .await?;
        waiting.insert(id, n);
    }
    while !waiting.is_empty() {
        let Some(reply) = replies.next().await else { break };
        let reply = reply?;
        let id = reply.properties.correlation_id.as_deref().unwrap_or_default();
        if let Some(n) = waiting.remove(id) {
            println!("{n}² = {}", String::from_utf8_lossy(&reply.body));
        }
    }
    server.abort();
    conn.close().await
}
