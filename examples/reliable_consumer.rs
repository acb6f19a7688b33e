//! Consuming without losing messages:
//! - manual acks and a prefetch window (never more unacked deliveries than that);
//! - idempotency: a message whose `message_id` was already handled is acked and skipped;
//! - transient failures are retried with exponential backoff: the message is republished
//!   (with confirms) to a delay queue whose TTL dead-letters it back to the work queue,
//!   with the attempt count in the `x-retries` header; if that republish is not confirmed
//!   the delivery is nacked with requeue, so it is never lost;
//! - permanent failures, and messages out of retries, are rejected without requeue and
//!   dead-lettered to a parking queue.
//!
//! The example seeds its own messages, consumes until they are all settled, and exits.
//!
//! ```sh
//! cargo run --example reliable_consumer
//! ```

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use warren::Error;
use warren::client::{
    Channel, Connection, ConsumeOptions, Delivery, ExchangeDeclareOptions, PublishOptions, QueueArguments,
    QueueDeclareOptions,
};
use warren::wire::{BasicProperties, FieldTable, FieldValue};

const WORK: &str = "warren.example.work";
const RETRY: &str = "warren.example.work.retry";
const PARKED: &str = "warren.example.work.parked";
const DLX: &str = "warren.example.dlx";
const MAX_RETRIES: i64 = 3;
const BASE_DELAY_MS: u64 = 100;

/// What handling a message can end in.
enum Outcome {
    Done,
    Transient(&'static str),
    Permanent(&'static str),
}

/// The application's work. Here the body says what to do.
async fn handle(body: &[u8], attempt: i64) -> Outcome {
    match body {
        b"flaky" if attempt < 2 => Outcome::Transient("downstream timed out"),
        b"always-down" => Outcome::Transient("downstream unavailable"),
        b"malformed" => Outcome::Permanent("cannot parse the order"),
        _ => Outcome::Done,
    }
}

async fn declare_topology(ch: &Channel) -> Result<(), Error> {
    let durable = QueueDeclareOptions::durable();
    ch.exchange_declare(
        DLX,
        "direct",
        ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::new(),
    )
    .await?;
    ch.queue_declare(PARKED, durable, FieldTable::new()).await?;
    ch.queue_bind(PARKED, DLX, WORK, FieldTable::new()).await?;
    // Rejected work goes to the DLX (routing key: the work queue's name) and is parked.
    let work_args = QueueArguments::new().dead_letter_exchange(DLX);
    ch.queue_declare(WORK, durable, work_args).await?;
    // Expired retries go back to the work queue through the default exchange.
    let retry_args = QueueArguments::new()
        .dead_letter_exchange("")
        .dead_letter_routing_key(WORK);
    ch.queue_declare(RETRY, durable, retry_args).await?;
    Ok(())
}

fn retries(d: &Delivery) -> i64 {
    d.properties
        .headers
        .as_ref()
        .and_then(|h| h.get("x-retries"))
        .and_then(FieldValue::as_i64)
        .unwrap_or(0)
}

/// Republishes `d` to the delay queue with its attempt count; true once confirmed.
async fn schedule_retry(publisher: &Channel, d: &Delivery, attempt: i64) -> Result<bool, Error> {
    let delay = Duration::from_millis(BASE_DELAY_MS << attempt.clamp(0, 16));
    let props = d
        .properties
        .to_builder()
        .header("x-retries", attempt + 1)
        .expiration(delay)
        .build()?;
    let confirmation = publisher
        .basic_publish("", RETRY, PublishOptions { mandatory: true }, props, d.body.clone())
        .await?;
    Ok(confirmation.await.map(|c| c.is_ack()).unwrap_or(false))
}

async fn seed(ch: &Channel) -> Result<usize, Error> {
    let messages = [
        ("m1", "ok"),
        ("m2", "flaky"),
        ("m3", "malformed"),
        ("m4", "always-down"),
        ("m1", "ok"),
    ];
    for (id, body) in messages {
        let props = BasicProperties::builder().message_id(id).persistent().build()?;
        let confirmation = ch
            .basic_publish("", WORK, PublishOptions { mandatory: true }, props, body)
            .await?;
        assert!(confirmation.await?.is_ack(), "seed message not confirmed");
    }
    Ok(messages.len())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let url = std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let conn = Connection::connect(&url).await?;
    let ch = conn.open_channel().await?;
    declare_topology(&ch).await?;
    // Retries are published on a connection of their own, in confirm mode: during a memory
    // alarm RabbitMQ stops reading a connection that publishes, and acks sent on it would
    // stall too. A connection that only consumes keeps acking.
    let publishing = Connection::connect(&url).await?;
    let publisher = publishing.open_channel().await?;
    publisher.confirm_select().await?;
    let mut remaining = seed(&publisher).await?;
    let mut rejected = 0;

    ch.basic_qos(20, false).await?;
    let mut consumer = ch
        .basic_consume(WORK, "", ConsumeOptions::default(), FieldTable::new())
        .await?;
    // Handled message ids (bounded: the oldest are forgotten).
    let mut seen: HashSet<String> = HashSet::new();
    let mut order: VecDeque<String> = VecDeque::new();

    while remaining > 0 {
        let Ok(next) = tokio::time::timeout(Duration::from_secs(10), consumer.next()).await else {
            eprintln!("no delivery for 10 s; {remaining} messages unsettled");
            break;
        };
        let Some(delivery) = next else { break };
        let d = delivery?;
        let id = d.properties.message_id.as_deref().unwrap_or_default().to_owned();
        let attempt = retries(&d);
        if seen.contains(&id) {
            println!("{id}: duplicate, skipped");
            d.ack().await?;
            remaining -= 1;
            continue;
        }
        match handle(&d.body, attempt).await {
            Outcome::Done => {
                println!("{id}: done (attempt {attempt})");
                d.ack().await?;
                seen.insert(id.clone());
                order.push_back(id);
                if order.len() > 10_000 {
                    if let Some(old) = order.pop_front() {
                        seen.remove(&old);
                    }
                }
                remaining -= 1;
            }
            Outcome::Transient(why) if attempt < MAX_RETRIES => {
                if schedule_retry(&publisher, &d, attempt).await? {
                    println!("{id}: {why}; retry {} in {} ms", attempt + 1, BASE_DELAY_MS << attempt);
                    d.ack().await?;
                } else {
                    // Could not park it for later: put it back as it is.
                    d.nack(true).await?;
                }
            }
            Outcome::Transient(why) => {
                println!("{id}: {why}; out of retries, dead-lettered to {PARKED}");
                d.reject(false).await?;
                rejected += 1;
                remaining -= 1;
            }
            Outcome::Permanent(why) => {
                println!("{id}: {why}; dead-lettered to {PARKED}");
                d.reject(false).await?;
                rejected += 1;
                remaining -= 1;
            }
        }
    }
    // Dead-lettering is asynchronous: give the last rejects a moment to land.
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    for _ in 0..20 {
        if ch
            .queue_declare(PARKED, passive, FieldTable::new())
            .await?
            .message_count
            >= rejected
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let parked = ch.queue_purge(PARKED).await?;
    println!("{parked} message(s) parked for inspection (purged by this demo)");
    publishing.close().await?;
    conn.close().await
}
