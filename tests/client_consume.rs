//! Consumers against a real broker: acks, nacks, server cancel, stale and double acks,
//! dropped consumers, the bounded buffer, and the Stream impl.

mod common;

use std::pin::Pin;
use std::time::Duration;

use common::queues::passive_declare;
use common::*;
use futures_core::Stream;
use warren::Error;
use warren::client::*;
use warren::error::CancelReason;
use warren::wire::{BasicProperties, FieldTable, FieldValue, ShortStr};

async fn publish_n(ch: &Channel, q: &str, n: usize) {
    for i in 0..n {
        let c = ch
            .basic_publish(
                "",
                q,
                PublishOptions::default(),
                BasicProperties::default(),
                format!("m{i}"),
            )
            .await
            .unwrap();
        let _ = c.await.unwrap();
    }
}

async fn exclusive_queue(ch: &Channel, prefix: &str) -> String {
    let q = unique(prefix);
    ch.queue_declare(&q, QueueDeclareOptions::exclusive(), FieldTable::new())
        .await
        .unwrap();
    q
}

/// An exclusive queue holding `n` messages, and a consumer on it with a prefetch of 10.
async fn consuming(ch: &Channel, prefix: &str, n: usize) -> (String, Consumer) {
    let q = exclusive_queue(ch, prefix).await;
    publish_n(ch, &q, n).await;
    ch.basic_qos(10, false).await.unwrap();
    let consumer = ch
        .basic_consume(&q, "", ConsumeOptions::default(), FieldTable::new())
        .await
        .unwrap();
    (q, consumer)
}

#[tokio::test]
async fn consume_ack_in_order() {
    let (conn, ch) = channel().await;
    ch.confirm_select().await.unwrap();
    let q = exclusive_queue(&ch, "consume").await;
    publish_n(&ch, &q, 20).await;
    ch.basic_qos(5, false).await.unwrap();
    let mut consumer = ch
        .basic_consume(&q, "my-tag", ConsumeOptions::default(), FieldTable::new())
        .await
        .unwrap();
    assert_eq!(consumer.tag(), &"my-tag");
    for i in 0..20 {
        let d = next(&mut consumer).await;
        assert_eq!(d.body, format!("m{i}").as_bytes());
        assert_eq!(d.consumer_tag, "my-tag");
        assert_eq!(d.routing_key, q.as_str());
        d.ack().await.unwrap();
    }
    consumer.cancel().await.unwrap();
    assert!(within(5, "stream end", consumer.next()).await.is_none());
    assert!(ch.basic_get(&q, true).await.unwrap().is_none());
    conn.close().await.unwrap();
}

#[tokio::test]
async fn stream_impl_and_server_named_tag() {
    let (conn, ch) = channel().await;
    let q = exclusive_queue(&ch, "stream").await;
    publish_n(&ch, &q, 3).await;
    let mut consumer = ch
        .basic_consume(
            &q,
            "",
            ConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::new(),
        )
        .await
        .unwrap();
    assert!(consumer.tag().starts_with("amq.ctag-"), "{:?}", consumer.tag());
    let mut got = Vec::new();
    while got.len() < 3 {
        let item = within(
            10,
            "stream item",
            std::future::poll_fn(|cx| Pin::new(&mut consumer).poll_next(cx)),
        )
        .await;
        got.push(item.unwrap().unwrap().body);
    }
    assert_eq!(got, vec!["m0", "m1", "m2"]);
    // A no-ack delivery cannot be acked: typed error, channel fine.
    publish_n(&ch, &q, 1).await;
    let d = next(&mut consumer).await;
    assert!(matches!(d.ack().await, Err(Error::UnknownDeliveryTag { .. })));
    assert!(ch.is_open());
    conn.close().await.unwrap();
}

#[tokio::test]
async fn nack_requeue_and_reject() {
    let (conn, ch) = channel().await;
    let (_, mut consumer) = consuming(&ch, "nack", 2).await;
    let first = next(&mut consumer).await;
    assert!(!first.redelivered);
    let second = next(&mut consumer).await;
    first.nack(true).await.unwrap();
    let again = next(&mut consumer).await;
    assert!(again.redelivered);
    assert_eq!(again.body, first.body);
    again.reject(false).await.unwrap();
    ch.basic_reject(second.delivery_tag, true).await.unwrap();
    let third = next(&mut consumer).await;
    assert_eq!(third.body, second.body);
    ch.basic_ack(third.delivery_tag, false).await.unwrap();
    conn.close().await.unwrap();
}

#[tokio::test]
async fn multiple_ack_and_nack() {
    let (conn, ch) = channel().await;
    let (q, mut consumer) = consuming(&ch, "multi", 10).await;
    let mut ds = Vec::new();
    for _ in 0..10 {
        ds.push(next(&mut consumer).await);
    }
    ch.basic_ack(ds[4].delivery_tag, true).await.unwrap();
    // Already covered by the multiple ack.
    assert!(matches!(ds[2].ack().await, Err(Error::UnknownDeliveryTag { .. })));
    ch.basic_nack(ds[9].delivery_tag, true, false).await.unwrap();
    assert!(ch.is_open());
    assert!(ch.basic_get(&q, true).await.unwrap().is_none());
    conn.close().await.unwrap();
}

#[tokio::test]
async fn double_ack_and_stale_ack_are_typed_errors() {
    let (conn, ch) = channel().await;
    let q = unique("double");
    ch.queue_declare(&q, QueueDeclareOptions::exclusive(), FieldTable::new())
        .await
        .unwrap();
    publish_n(&ch, &q, 3).await;
    ch.basic_qos(10, false).await.unwrap();
    let mut consumer = ch
        .basic_consume(&q, "", ConsumeOptions::default(), FieldTable::new())
        .await
        .unwrap();
    let d = next(&mut consumer).await;
    d.ack().await.unwrap();
    match d.ack().await {
        Err(Error::UnknownDeliveryTag { tag }) => assert_eq!(tag, d.delivery_tag.value()),
        other => panic!("double ack: {other:?}"),
    }
    // The channel still works: next delivery acks fine.
    let d2 = next(&mut consumer).await;
    d2.ack().await.unwrap();
    let d3 = next(&mut consumer).await;
    // Close the channel: its tags become stale.
    ch.close().await.unwrap();
    match d3.ack().await {
        Err(Error::StaleDelivery { tag }) => assert_eq!(tag, d3.delivery_tag.value()),
        other => panic!("stale ack: {other:?}"),
    }
    // A stale tag on another channel of the connection is refused too, nothing sent.
    let ch2 = conn.open_channel().await.unwrap();
    assert!(matches!(
        ch2.basic_ack(d3.delivery_tag, false).await,
        Err(Error::StaleDelivery { .. })
    ));
    // The unacked message went back to the queue with the channel close.
    let back = within(5, "requeued message", async {
        loop {
            if let Some(m) = ch2.basic_get(&q, false).await.unwrap() {
                break m;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(back.delivery.redelivered);
    back.delivery.ack().await.unwrap();
    assert!(ch2.is_open());
    ch2.queue_delete(&q, QueueDeleteOptions::default()).await.unwrap();
    conn.close().await.unwrap();
}

/// Issue 12 item 3: one rule for every settle. A clone of a settled delivery, a
/// delivery after `basic.recover`, and `Channel::basic_ack` on either are refused
/// with the same typed error, nothing is sent (the channel stays open), and nothing
/// is lost: every message is acked exactly once in the end.
#[tokio::test]
async fn a_clone_or_a_recovered_delivery_is_refused_like_a_second_basic_ack() {
    let (conn, ch) = channel().await;
    let (q, mut consumer) = consuming(&ch, "one-rule", 3).await;
    let first = next(&mut consumer).await;
    let clone = first.clone();
    first.ack().await.unwrap();
    let tag = first.delivery_tag.value();
    assert_eq!(
        clone.ack().await,
        Err(Error::UnknownDeliveryTag { tag }),
        "a clone of an acked delivery"
    );
    assert_eq!(
        ch.basic_ack(clone.delivery_tag, false).await,
        Err(Error::UnknownDeliveryTag { tag }),
        "Channel::basic_ack answers the same"
    );
    let second = next(&mut consumer).await;
    let third = next(&mut consumer).await;
    ch.basic_recover(true).await.unwrap();
    for d in [&second, &third] {
        let tag = d.delivery_tag.value();
        assert_eq!(
            d.ack().await,
            Err(Error::UnknownDeliveryTag { tag }),
            "after basic.recover"
        );
        assert_eq!(
            ch.basic_reject(d.delivery_tag, true).await,
            Err(Error::UnknownDeliveryTag { tag })
        );
    }
    // The broker redelivers both; they ack fine, the channel never closed.
    let mut bodies = Vec::new();
    for _ in 0..2 {
        let d = next(&mut consumer).await;
        assert!(d.redelivered);
        bodies.push(String::from_utf8(d.body.to_vec()).unwrap());
        d.ack().await.unwrap();
    }
    bodies.sort();
    assert_eq!(bodies, ["m1", "m2"]);
    assert!(ch.is_open());
    consumer.cancel().await.unwrap();
    // Closing the channel requeues whatever it did not ack: nothing.
    ch.close().await.unwrap();
    let other = conn.open_channel().await.unwrap();
    let info = passive_declare(&other, &q).await.unwrap();
    assert_eq!(info.message_count, 0, "every message acked once");
    conn.close().await.unwrap();
}

#[tokio::test]
async fn server_cancel_on_queue_delete_ends_the_stream() {
    let (conn, ch) = channel().await;
    let q = unique("cancelled");
    ch.queue_declare(&q, QueueDeclareOptions::exclusive(), FieldTable::new())
        .await
        .unwrap();
    publish_n(&ch, &q, 1).await;
    let mut consumer = ch
        .basic_consume(&q, "", ConsumeOptions::default(), FieldTable::new())
        .await
        .unwrap();
    let d = next(&mut consumer).await;
    d.ack().await.unwrap();
    let other = conn.open_channel().await.unwrap();
    other.queue_delete(&q, QueueDeleteOptions::default()).await.unwrap();
    let end = within(10, "cancel", consumer.next()).await;
    match end {
        Some(Err(Error::ConsumerCancelled {
            consumer_tag,
            reason: CancelReason::QueueDeleted,
        })) => assert_eq!(consumer_tag, consumer.tag().as_str()),
        other => panic!("expected the consumer-cancelled error, got {other:?}"),
    }
    assert!(consumer.next().await.is_none());
    assert!(ch.is_open(), "a server cancel does not close the channel");
    ch.basic_qos(1, false).await.unwrap();
    conn.close().await.unwrap();
}

#[tokio::test]
async fn channel_close_ends_consumers_with_the_reason() {
    let (conn, ch) = channel().await;
    let q = exclusive_queue(&ch, "chclose").await;
    let mut consumer = ch
        .basic_consume(&q, "", ConsumeOptions::default(), FieldTable::new())
        .await
        .unwrap();
    // Provoke a channel error: 404 on a passive declare.
    let _ = passive_declare(&ch, &unique("nope")).await;
    match within(5, "end", consumer.next()).await {
        Some(Err(e)) => assert!(e.is_channel_error(), "{e:?}"),
        other => panic!("{other:?}"),
    }
    assert!(consumer.next().await.is_none());
    conn.close().await.unwrap();
}

#[tokio::test]
async fn dropped_consumer_requeues_and_cancels() {
    let (conn, ch) = channel().await;
    let (q, mut consumer) = consuming(&ch, "dropped", 10).await;
    let d = next(&mut consumer).await;
    // Let the rest arrive in the buffer, then drop the consumer.
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(consumer);
    d.ack().await.unwrap();
    // The other nine are back in the queue (requeued), and nobody consumes any more.
    let n = within(5, "requeue", async {
        loop {
            let info = passive_declare(&ch, &q).await.unwrap();
            if info.message_count == 9 && info.consumer_count == 0 {
                break info.message_count;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(n, 9);
    conn.close().await.unwrap();
}

#[tokio::test]
async fn slow_consumer_bounded_buffer_keeps_acks_flowing() {
    let mut config = config();
    config.consumer_buffer = 4;
    let conn = connect_config(config).await;
    let ch = conn.open_channel().await.unwrap();
    let q = exclusive_queue(&ch, "slow").await;
    let pubch = conn.open_channel().await.unwrap();
    pubch.confirm_select().await.unwrap();
    publish_n(&pubch, &q, 300).await;
    // No prefetch: the broker pushes everything; the buffer of 4 fills and the
    // connection stops reading until this consumer catches up. Acks still get through.
    let mut consumer = ch
        .basic_consume(&q, "", ConsumeOptions::default(), FieldTable::new())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    for i in 0..300 {
        let d = next(&mut consumer).await;
        assert_eq!(d.body, format!("m{i}").as_bytes());
        d.ack().await.unwrap();
        if i % 50 == 0 {
            // Other work on the connection also goes on.
            pubch.basic_qos(1, false).await.unwrap();
        }
    }
    conn.close().await.unwrap();
}

#[tokio::test]
async fn basic_get_empty_and_headers() {
    let (conn, ch) = channel().await;
    let q = exclusive_queue(&ch, "get").await;
    assert!(ch.basic_get(&q, false).await.unwrap().is_none());
    let mut headers = FieldTable::new();
    headers.insert(ShortStr::from_static("attempt"), FieldValue::I32(3));
    let props = BasicProperties {
        headers: Some(headers),
        content_type: Some(ShortStr::from_static("text/plain")),
        ..Default::default()
    };
    ch.basic_publish("", &q, PublishOptions::default(), props, "with headers")
        .await
        .unwrap()
        .await
        .unwrap();
    let m = within(5, "get", async {
        loop {
            if let Some(m) = ch.basic_get(&q, false).await.unwrap() {
                break m;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert_eq!(m.delivery.properties.content_type.as_deref(), Some("text/plain"));
    assert_eq!(
        m.delivery
            .properties
            .headers
            .as_ref()
            .and_then(|h| h.get("attempt"))
            .and_then(|v| v.as_i64()),
        Some(3)
    );
    m.delivery.ack().await.unwrap();
    conn.close().await.unwrap();
}

#[tokio::test]
async fn pipelined_consume_cancel_and_calls_on_one_channel() {
    // RabbitMQ sends consume-ok and cancel-ok from the queue process: pipelined calls
    // behind them must still get their own replies.
    let (conn, ch) = channel().await;
    let q = exclusive_queue(&ch, "pipelined").await;
    for round in 0..20 {
        let tag = format!("c{round}");
        let (consumer, info, qos) = tokio::join!(
            ch.basic_consume(&q, &tag, ConsumeOptions::default(), FieldTable::new()),
            passive_declare(&ch, &q),
            ch.basic_qos(10, false),
        );
        let consumer = consumer.unwrap();
        info.unwrap();
        qos.unwrap();
        let (cancel, purge, info) = tokio::join!(consumer.cancel(), ch.queue_purge(&q), passive_declare(&ch, &q));
        cancel.unwrap();
        purge.unwrap();
        info.unwrap();
        drop(consumer);
    }
    assert!(ch.is_open());
    conn.close().await.unwrap();
}

/// Acks made while the consumer still holds part of its batch reach the broker even if
/// the application stops reading the consumer: the broker then sends the messages
/// that need the prefetch slots those acks free. (The connection collects such acks
/// when the batch ends, or after a millisecond.) Repeated to catch the connection
/// task asleep at different moments.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_left_in_a_batch_reach_the_broker_without_more_reads() {
    let (conn, ch) = channel().await;
    let q = exclusive_queue(&ch, "batch-acks").await;
    ch.basic_qos(3, false).await.unwrap();
    let publisher = conn.open_channel().await.unwrap();
    publisher.confirm_select().await.unwrap();
    for round in 0..20u64 {
        publish_n(&publisher, &q, 5).await;
        let before = conn.metrics().delivered;
        let mut consumer = ch
            .basic_consume(&q, "", ConsumeOptions::default(), FieldTable::new())
            .await
            .unwrap();
        wait_until(|| conn.metrics().delivered >= before + 3, "the first 3 (the prefetch)").await;
        // One batch of 3: yield two of them, ack both, and stop reading.
        let d1 = next(&mut consumer).await;
        let d2 = next(&mut consumer).await;
        d1.ack().await.unwrap();
        d2.ack().await.unwrap();
        wait_until(
            || conn.metrics().delivered >= before + 5,
            &format!("round {round}: messages 4 and 5, sent once the broker has both acks"),
        )
        .await;
        // Clean up: the rest of the batch, then the two later messages.
        for _ in 0..3 {
            next(&mut consumer).await.ack().await.unwrap();
        }
        consumer.cancel().await.unwrap();
    }
    conn.close().await.unwrap();
}

/// A settle waits in its channel's ledger until the connection task takes it; a command
/// sent after it (here `channel.close`, which requeues whatever is unacked) still finds it
/// written first. The task runs on this test's one thread (`own_thread: false`), so it
/// cannot take the acks between the last one and the close: it gets both at once.
#[tokio::test]
async fn acks_made_just_before_a_channel_close_reach_the_broker_before_it() {
    const N: usize = 300;
    let conn = connect_config(ConnectionConfig {
        own_thread: false,
        ..config()
    })
    .await;
    let ch = conn.open_channel().await.unwrap();
    ch.confirm_select().await.unwrap();
    let q = exclusive_queue(&ch, "ack-close").await;
    for round in 0..3 {
        publish_n(&ch, &q, N).await;
        let consumer_ch = conn.open_channel().await.unwrap();
        consumer_ch.basic_qos(N as u16, false).await.unwrap();
        let mut consumer = consumer_ch
            .basic_consume(&q, "", ConsumeOptions::default(), FieldTable::new())
            .await
            .unwrap();
        let mut deliveries = Vec::with_capacity(N);
        for _ in 0..N {
            deliveries.push(next(&mut consumer).await);
        }
        // Unconstrained: with its cooperative budget spent, the close would wait for
        // room in the command queue, and the task would run first.
        tokio::task::unconstrained(async {
            for d in &deliveries {
                d.ack().await.unwrap();
            }
            consumer_ch.close().await.unwrap();
        })
        .await;
        let left = passive_declare(&ch, &q).await.unwrap().message_count;
        assert_eq!(
            left, 0,
            "round {round}: acks written after the close were lost and requeued"
        );
    }
    conn.close().await.unwrap();
}

/// Read coalescing (`ConnectionConfig::read_coalescing`): a publisher with a large
/// window of unconfirmed publishes, and a consumer of a preloaded queue with a large
/// prefetch, get their confirms and deliveries with reads put off, and every message
/// still arrives once and in order; with prefetch 1 (the broker waits for each ack) or
/// coalescing off, the consumer's reads never are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_coalescing_pauses_only_a_stream_with_prefetch_to_spare() {
    let one_ms = Some(Duration::from_millis(1));
    for (coalescing, prefetch, n) in [(one_ms, 1000, 20_000), (None, 1000, 5_000), (one_ms, 1, 300)] {
        let conn = connect_config(ConnectionConfig {
            read_coalescing: coalescing,
            ..config()
        })
        .await;
        let ch = conn.open_channel().await.unwrap();
        let q = exclusive_queue(&ch, "coalescing").await;
        ch.confirm_select().await.unwrap();
        let mut confirms = Vec::with_capacity(n);
        for i in 0..n {
            let body = i.to_string();
            let c = ch
                .basic_publish("", &q, PublishOptions::default(), BasicProperties::default(), body)
                .await
                .unwrap();
            confirms.push(c);
        }
        for c in confirms {
            assert!(matches!(c.await.unwrap(), Confirmed::Ack));
        }
        let publish_pauses = conn.metrics().read_pauses;
        if coalescing.is_some() && n >= 10_000 {
            assert!(
                publish_pauses > 0,
                "a busy stream of confirms with window to spare is paced"
            );
        }
        ch.basic_qos(prefetch, false).await.unwrap();
        let mut consumer = ch
            .basic_consume(&q, "", ConsumeOptions::default(), FieldTable::new())
            .await
            .unwrap();
        for i in 0..n {
            let d = next(&mut consumer).await;
            assert_eq!(d.body, i.to_string().as_bytes(), "prefetch {prefetch}: message {i}");
            d.ack().await.unwrap();
        }
        let pauses = conn.metrics().read_pauses - publish_pauses;
        match (coalescing, prefetch) {
            (Some(_), 1000) => assert!(pauses > 0, "a busy stream with room in its prefetch is paced"),
            _ => assert_eq!(pauses, 0, "coalescing {coalescing:?}, prefetch {prefetch}"),
        }
        consumer.cancel().await.unwrap();
        conn.close().await.unwrap();
    }
}

async fn wait_until(mut done: impl FnMut() -> bool, what: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test]
async fn drain_with_messages_in_flight_loses_nothing_and_leaves_nothing_unacked() {
    const TOTAL: usize = 200;
    const TAKEN: usize = 60;
    let (conn, ch) = channel().await;
    ch.confirm_select().await.unwrap();
    let q = exclusive_queue(&ch, "drain").await;
    publish_n(&ch, &q, TOTAL).await;
    ch.basic_qos(100, false).await.unwrap();
    let mut consumer = ch
        .basic_consume(&q, "", ConsumeOptions::default(), FieldTable::new())
        .await
        .unwrap();
    // Workers take a while over each message; the consumer's buffer fills behind them.
    let acked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for i in 0..TAKEN {
        let d = next(&mut consumer).await;
        let acked = acked.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300 + (i as u64 * 37) % 400)).await;
            d.ack().await.unwrap();
            acked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        });
    }
    // Let the broker fill the prefetch window (100): 40 more deliveries are buffered, not
    // yielded. The workers are all still busy when the drain starts.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(acked.load(std::sync::atomic::Ordering::SeqCst), 0);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let drained = within(15, "drain", consumer.drain(deadline)).await.unwrap();
    assert_eq!(drained.unsettled, 0, "every worker settled in time");
    assert_eq!(
        acked.load(std::sync::atomic::Ordering::SeqCst),
        TAKEN,
        "drain returned only after the workers' acks"
    );
    assert!(drained.requeued >= 40, "the prefetch window was buffered: {drained:?}");
    assert!(drained.buffered.is_empty());
    // Every message not acked is ready again, with the channel still open (closing it
    // would requeue what it left unacknowledged): none was lost, none is left unacked.
    // RabbitMQ answers the count ahead of requeues it has not applied yet: poll.
    let info = within(10, "every unacked message ready again", async {
        loop {
            let info = passive_declare(&ch, &q).await.unwrap();
            if info.message_count as usize == TOTAL - TAKEN {
                return info;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(info.consumer_count, 0, "the consumer is cancelled");
    conn.close().await.unwrap();
}

#[tokio::test]
async fn drain_hands_out_what_a_no_ack_consumer_buffered() {
    const TOTAL: usize = 50;
    let (conn, ch) = channel().await;
    ch.confirm_select().await.unwrap();
    let q = exclusive_queue(&ch, "drain-noack").await;
    publish_n(&ch, &q, TOTAL).await;
    let no_ack = ConsumeOptions {
        no_ack: true,
        ..Default::default()
    };
    let mut consumer = ch.basic_consume(&q, "", no_ack, FieldTable::new()).await.unwrap();
    for _ in 0..5 {
        next(&mut consumer).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let drained = within(15, "drain", consumer.drain(deadline)).await.unwrap();
    assert_eq!((drained.requeued, drained.unsettled), (0, 0));
    let left = passive_declare(&ch, &q).await.unwrap().message_count as usize; // no requeue to wait for
    assert_eq!(5 + drained.buffered.len() + left, TOTAL, "every message is somewhere");
    assert!(!drained.buffered.is_empty(), "the broker had sent more than 5");
    for d in &drained.buffered {
        assert!(d.ack().await.is_err(), "a no-ack delivery cannot be settled");
    }
    conn.close().await.unwrap();
}

#[tokio::test]
async fn drain_gives_up_at_the_deadline_and_counts_what_is_still_held() {
    let (conn, ch) = channel().await;
    ch.confirm_select().await.unwrap();
    let (_, mut consumer) = consuming(&ch, "drain-deadline", 3).await;
    let held = next(&mut consumer).await;
    let dropped = next(&mut consumer).await;
    let copy = dropped.clone();
    drop(dropped); // dropped unsettled: still unacked at the broker, so still counted
    let started = std::time::Instant::now();
    let drained = within(5, "drain", consumer.drain(started + Duration::from_millis(300)))
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!((drained.requeued, drained.unsettled), (1, 2), "{drained:?}");
    held.ack().await.unwrap();
    copy.reject(true).await.unwrap();
    conn.close().await.unwrap();
}

#[tokio::test]
async fn drain_after_the_server_cancelled_the_consumer_still_waits_for_the_workers() {
    let (conn, ch) = channel().await;
    ch.confirm_select().await.unwrap();
    let (q, mut consumer) = consuming(&ch, "drain-cancelled", 5).await;
    let d = next(&mut consumer).await;
    let started = std::time::Instant::now();
    let worker = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        d.ack().await.unwrap();
    });
    ch.queue_delete(&q, QueueDeleteOptions::default()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let drained = within(10, "drain", consumer.drain(deadline)).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "drain waited for the worker's ack"
    );
    assert_eq!(drained.unsettled, 0);
    worker.await.unwrap();
    assert!(ch.is_open());
    conn.close().await.unwrap();
}
