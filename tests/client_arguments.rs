//! Typed queue and consumer arguments against the broker: RabbitMQ checks the type of
//! every argument it knows (a wrong one is 406 PRECONDITION_FAILED "invalid arg"), and
//! what they ask for happens.

mod common;

use std::time::{Duration, SystemTime};

use common::*;
use warren::client::*;
use warren::wire::{BasicProperties, FieldTable};

async fn publish_confirmed(ch: &Channel, q: &str, bodies: &[&str]) -> Vec<Confirmed> {
    let mut out = Vec::new();
    for body in bodies {
        let c = ch
            .basic_publish(
                "",
                q,
                PublishOptions::default(),
                BasicProperties::default(),
                body.to_string(),
            )
            .await
            .unwrap();
        out.push(within(10, "confirm", c).await.unwrap());
    }
    out
}

#[tokio::test]
async fn a_quorum_queue_with_typed_arguments_limits_deliveries_and_length() {
    let (conn, ch) = channel().await;
    ch.confirm_select().await.unwrap();
    let q = unique("args.quorum");
    let dlq = unique("args.quorum.dlq");
    ch.queue_declare(&dlq, QueueDeclareOptions::durable(), FieldTable::new())
        .await
        .unwrap();
    let args = QueueArguments::new()
        .queue_type(QueueType::Quorum)
        .quorum_initial_group_size(1)
        .delivery_limit(1)
        .dead_letter_exchange("")
        .dead_letter_routing_key(&dlq)
        .dead_letter_strategy(DeadLetterStrategy::AtMostOnce)
        .max_length(2)
        .max_length_bytes(1 << 20)
        .overflow(Overflow::RejectPublish)
        .message_ttl(Duration::from_secs(600))
        .expires(Duration::from_secs(600))
        .leader_locator(LeaderLocator::ClientLocal);
    let info = ch
        .queue_declare(&q, QueueDeclareOptions::durable(), args.clone())
        .await
        .expect("RabbitMQ accepts every typed argument");
    assert_eq!(info.name, q.as_str());
    // The same arguments again are equivalent; one other value is not.
    ch.queue_declare(&q, QueueDeclareOptions::durable(), args.clone())
        .await
        .unwrap();
    let other = conn.open_channel().await.unwrap();
    let err = other
        .queue_declare(&q, QueueDeclareOptions::durable(), args.max_length(3))
        .await
        .unwrap_err();
    assert_eq!(
        err.reply_code(),
        Some(warren::wire::ReplyCode::PRECONDITION_FAILED),
        "{err}"
    );

    // x-max-length 2 with x-overflow reject-publish: publishes are nacked once the queue is
    // over its limit (a quorum queue counts after the enqueue: 3.10 takes a third message
    // and refuses the fourth).
    let confirms = publish_confirmed(&ch, &q, &["a", "b", "c", "d"]).await;
    assert_eq!(confirms[..2], [Confirmed::Ack, Confirmed::Ack], "under the limit");
    assert_eq!(confirms.last(), Some(&Confirmed::Nack), "the queue is full");
    let kept = confirms.iter().filter(|c| **c == Confirmed::Ack).count();

    // x-delivery-limit 1: "a" returned twice is dead-lettered to `dlq`; the rest is acked.
    ch.basic_qos(10, false).await.unwrap();
    let mut consumer = ch
        .basic_consume(&q, "", ConsumeOptions::default(), ConsumerArguments::new().priority(5))
        .await
        .unwrap();
    let (mut returns, mut acked) = (0, 0);
    while returns < 2 || acked < kept - 1 {
        let d = next(&mut consumer).await;
        if &d.body[..] == b"a" {
            assert_eq!(d.delivery_count(), (returns > 0).then_some(returns));
            d.reject(true).await.unwrap();
            returns += 1;
        } else {
            d.ack().await.unwrap();
            acked += 1;
        }
    }
    consumer.cancel().await.unwrap();
    let dead = within(10, "the dead-lettered message", async {
        loop {
            if let Some(m) = ch.basic_get(&dlq, true).await.unwrap() {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert_eq!(&dead.delivery.body[..], b"a");
    for name in [&q, &dlq] {
        ch.queue_delete(name, QueueDeleteOptions::default()).await.unwrap();
    }
    conn.close().await.unwrap();
}

#[tokio::test]
async fn stream_offsets_start_consumers_where_they_say() {
    let (conn, ch) = channel().await;
    ch.confirm_select().await.unwrap();
    let q = unique("args.stream");
    let before = SystemTime::now() - Duration::from_secs(3_600);
    let args = QueueArguments::new()
        .queue_type(QueueType::Stream)
        .max_age(Duration::from_secs(86_400))
        .max_length_bytes(64 << 20)
        .stream_max_segment_size_bytes(1 << 20)
        .leader_locator(LeaderLocator::Balanced);
    ch.queue_declare(&q, QueueDeclareOptions::durable(), args)
        .await
        .expect("RabbitMQ accepts the stream arguments");
    let bodies = ["m0", "m1", "m2", "m3", "m4"];
    assert!(
        publish_confirmed(&ch, &q, &bodies)
            .await
            .iter()
            .all(|c| *c == Confirmed::Ack)
    );
    ch.basic_qos(100, false).await.unwrap();
    let read = async |offset: StreamOffset, n: usize| {
        let args = ConsumerArguments::new().stream_offset(offset);
        let mut consumer = ch.basic_consume(&q, "", ConsumeOptions::default(), args).await.unwrap();
        let mut got = Vec::new();
        for _ in 0..n {
            let d = next(&mut consumer).await;
            got.push(String::from_utf8_lossy(&d.body).into_owned());
            d.ack().await.unwrap();
        }
        consumer.cancel().await.unwrap();
        got
    };
    assert_eq!(read(StreamOffset::First, 5).await, bodies);
    assert_eq!(read(StreamOffset::Offset(2), 3).await, ["m2", "m3", "m4"]);
    assert_eq!(
        read(StreamOffset::Timestamp(before), 5).await,
        bodies,
        "type T timestamp"
    );
    assert_eq!(
        read(StreamOffset::Ago(Duration::from_secs(3_600)), 5).await,
        bodies,
        "interval"
    );
    // `next` starts after what is there: only a new message arrives.
    let args = ConsumerArguments::new().stream_offset(StreamOffset::Next);
    let mut consumer = ch.basic_consume(&q, "", ConsumeOptions::default(), args).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    publish_confirmed(&ch, &q, &["m5"]).await;
    let d = next(&mut consumer).await;
    assert_eq!(&d.body[..], b"m5");
    d.ack().await.unwrap();
    consumer.cancel().await.unwrap();
    ch.queue_delete(&q, QueueDeleteOptions::default()).await.unwrap();
    conn.close().await.unwrap();
}
