//! Large messages and back-pressure against a real broker: a 100 MB body split over
//! frames both ways, and a consumer whose buffer overflows the read budget.

mod common;

use bytes::Bytes;
use common::*;
use warren::client::*;
use warren::wire::{BasicProperties, FieldTable};

#[tokio::test]
async fn hundred_megabyte_message_roundtrip() {
    let (conn, ch) = channel().await;
    let frame_max = conn.tune().frame_max;
    assert!(frame_max > 0 && frame_max < 1 << 20, "frame_max {frame_max}");
    ch.confirm_select().await.unwrap();
    let q = unique("large");
    ch.queue_declare(&q, QueueDeclareOptions::exclusive(), FieldTable::new())
        .await
        .unwrap();
    // A pattern that catches reordered or dropped frames.
    let len = 100 * 1024 * 1024 + 12345;
    let body: Bytes = (0..len)
        .map(|i| (i % 251) as u8 ^ (i / 65536) as u8)
        .collect::<Vec<u8>>()
        .into();
    let c = within(
        120,
        "publish 100 MB",
        ch.basic_publish(
            "",
            &q,
            PublishOptions { mandatory: true },
            BasicProperties::default(),
            body.clone(),
        ),
    )
    .await
    .unwrap();
    assert_eq!(within(120, "confirm of 100 MB", c).await.unwrap(), Confirmed::Ack);
    let mut consumer = ch
        .basic_consume(&q, "", ConsumeOptions::default(), FieldTable::new())
        .await
        .unwrap();
    let d = within(120, "consume 100 MB", consumer.next()).await.unwrap().unwrap();
    assert_eq!(d.body.len(), body.len());
    assert!(d.body == body, "the 100 MB body came back different");
    d.ack().await.unwrap();
    conn.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overflow_budget_pauses_reading_and_acks_still_flow() {
    let mut config = config();
    config.consumer_buffer = 1;
    let conn = connect_config(config).await;
    let ch = conn.open_channel().await.unwrap();
    let q = unique("budget");
    ch.queue_declare(&q, QueueDeclareOptions::exclusive(), FieldTable::new())
        .await
        .unwrap();
    let pubch = conn.open_channel().await.unwrap();
    pubch.confirm_select().await.unwrap();
    // 48 MiB in 1 MiB messages: more than the read budget, with no prefetch.
    let n = 48;
    let mut cs = Vec::new();
    for i in 0..n {
        let body = Bytes::from(vec![i as u8; 1 << 20]);
        cs.push(
            pubch
                .basic_publish("", &q, PublishOptions::default(), BasicProperties::default(), body)
                .await
                .unwrap(),
        );
    }
    for c in cs {
        assert!(within(60, "confirm", c).await.unwrap().is_ack());
    }
    let mut consumer = ch
        .basic_consume(&q, "", ConsumeOptions::default(), FieldTable::new())
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // The task has stopped reading (more than the budget is waiting). An RPC issued now
    // is answered behind those deliveries: it completes as the consumer drains them.
    let rpc = tokio::spawn({
        let pubch = pubch.clone();
        async move { pubch.basic_qos(1, false).await }
    });
    for i in 0..n {
        let d = within(30, "delivery", consumer.next()).await.unwrap().unwrap();
        assert_eq!(d.body.len(), 1 << 20);
        assert!(d.body.iter().all(|b| *b == i as u8), "message {i} out of order");
        // Acks go out while reading is paused.
        d.ack().await.unwrap();
    }
    within(10, "rpc behind the paused deliveries", rpc)
        .await
        .unwrap()
        .unwrap();
    assert!(ch.basic_get(&q, true).await.unwrap().is_none());
    conn.close().await.unwrap();
}
