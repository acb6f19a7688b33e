//! Publisher confirms against a real broker: acks, nacks, returns matched to their
//! publish under concurrency, the bounded window, and unknown outcomes on close.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use warren::Error;
use warren::client::*;
use warren::wire::{BasicProperties, FieldTable, FieldValue, ReplyCode, ShortStr};

fn table(pairs: &[(&str, FieldValue)]) -> FieldTable {
    let mut t = FieldTable::new();
    for (k, v) in pairs {
        t.insert(ShortStr::try_from(*k).unwrap(), v.clone());
    }
    t
}

fn with_id(id: &str) -> BasicProperties {
    BasicProperties {
        message_id: Some(ShortStr::try_from(id).unwrap()),
        ..Default::default()
    }
}

async fn confirm_channel(conn: &Connection) -> Channel {
    let ch = conn.open_channel().await.unwrap();
    ch.confirm_select().await.unwrap();
    assert!(ch.is_confirm_mode());
    ch
}

#[tokio::test]
async fn confirm_ack() {
    let conn = connect().await;
    let ch = confirm_channel(&conn).await;
    let q = unique("ack");
    ch.queue_declare(&q, QueueDeclareOptions::durable(), FieldTable::new())
        .await
        .unwrap();
    let props = BasicProperties {
        delivery_mode: Some(2),
        ..Default::default()
    };
    let confirmation = ch
        .basic_publish("", &q, PublishOptions { mandatory: true }, props, "persist me")
        .await
        .unwrap();
    assert_eq!(within(10, "confirm", confirmation).await.unwrap(), Confirmed::Ack);
    // Many in flight at once, awaited later.
    let mut pending = Vec::new();
    for i in 0..500 {
        pending.push(
            ch.basic_publish(
                "",
                &q,
                PublishOptions::default(),
                BasicProperties::default(),
                format!("m{i}"),
            )
            .await
            .unwrap(),
        );
    }
    for c in pending {
        assert!(c.await.unwrap().is_ack());
    }
    assert_eq!(ch.queue_delete(&q, QueueDeleteOptions::default()).await.unwrap(), 501);
    conn.close().await.unwrap();
}

#[tokio::test]
async fn confirm_nack_on_reject_publish_overflow() {
    let conn = connect().await;
    let ch = confirm_channel(&conn).await;
    let q = unique("nack");
    let args = table(&[
        ("x-max-length", FieldValue::I32(1)),
        ("x-overflow", FieldValue::from("reject-publish")),
    ]);
    ch.queue_declare(&q, QueueDeclareOptions::exclusive(), args)
        .await
        .unwrap();
    let first = ch
        .basic_publish("", &q, PublishOptions::default(), with_id("1"), "fits")
        .await
        .unwrap();
    assert_eq!(first.await.unwrap(), Confirmed::Ack);
    let second = ch
        .basic_publish("", &q, PublishOptions::default(), with_id("2"), "overflows")
        .await
        .unwrap();
    assert_eq!(second.await.unwrap(), Confirmed::Nack);
    // The queue holds only the first one.
    let m = ch.basic_get(&q, true).await.unwrap().unwrap();
    assert_eq!(&m.delivery.body[..], b"fits");
    // Room again: acked.
    let third = ch
        .basic_publish("", &q, PublishOptions::default(), with_id("3"), "fits again")
        .await
        .unwrap();
    assert_eq!(third.await.unwrap(), Confirmed::Ack);
    conn.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mandatory_returns_matched_to_their_publish_under_concurrency() {
    let conn = connect().await;
    let ch = confirm_channel(&conn).await;
    let q = unique("routable");
    ch.queue_declare(&q, QueueDeclareOptions::exclusive(), FieldTable::new())
        .await
        .unwrap();
    let q = Arc::new(q);
    let mut tasks = Vec::new();
    for t in 0..8 {
        let ch = ch.clone();
        let q = q.clone();
        tasks.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for i in 0..100 {
                let routable = (i + t) % 3 != 0;
                let key = if routable {
                    q.to_string()
                } else {
                    format!("nowhere-{t}-{i}")
                };
                let body = Bytes::from(format!("{t}/{i}"));
                let c = ch
                    .basic_publish(
                        "",
                        &key,
                        PublishOptions { mandatory: true },
                        with_id(&format!("{t}/{i}")),
                        body.clone(),
                    )
                    .await
                    .unwrap();
                outcomes.push((routable, key, body, c));
                if i % 7 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            let mut checked = 0;
            for (routable, key, body, c) in outcomes {
                match c.await.unwrap() {
                    Confirmed::Ack => assert!(routable, "{key}: unroutable publish acked without a return"),
                    Confirmed::Returned { ack, message } => {
                        assert!(!routable, "{key}: routable publish came back");
                        assert!(ack);
                        assert_eq!(message.reply_code, ReplyCode::NO_ROUTE);
                        assert_eq!(message.routing_key, key.as_str(), "return matched to the wrong publish");
                        assert_eq!(message.body, body, "return matched to the wrong publish");
                        assert_eq!(
                            message.properties.message_id.as_deref(),
                            std::str::from_utf8(&body).ok()
                        );
                    }
                    other => panic!("{key}: unexpected {other:?}"),
                }
                checked += 1;
            }
            checked
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += within(60, "publisher tasks", t).await.unwrap();
    }
    assert_eq!(total, 800);
    let left = ch.queue_purge(&q).await.unwrap();
    let routable = (0..8)
        .flat_map(|t| (0..100).map(move |i| (i + t) % 3 != 0))
        .filter(|r| *r)
        .count();
    assert_eq!(left as usize, routable);
    conn.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_tasks_publish_on_one_channel() {
    let conn = connect().await;
    let ch = confirm_channel(&conn).await;
    let q = unique("many");
    ch.queue_declare(&q, QueueDeclareOptions::exclusive(), FieldTable::new())
        .await
        .unwrap();
    let tasks: Vec<_> = (0..32)
        .map(|t| {
            let ch = ch.clone();
            let q = q.clone();
            tokio::spawn(async move {
                let mut cs = Vec::new();
                for i in 0..200 {
                    cs.push(
                        ch.basic_publish("", &q, PublishOptions::default(), with_id(&format!("{t}-{i}")), "x")
                            .await
                            .unwrap(),
                    );
                }
                for c in cs {
                    assert_eq!(c.await.unwrap(), Confirmed::Ack);
                }
            })
        })
        .collect();
    for t in tasks {
        within(60, "publishers", t).await.unwrap();
    }
    // Every message is there exactly once.
    let consumer_ch = conn.open_channel().await.unwrap();
    consumer_ch.basic_qos(500, false).await.unwrap();
    let mut consumer = consumer_ch
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
    let mut seen = HashSet::new();
    while seen.len() < 32 * 200 {
        let d = within(30, "deliveries", consumer.next()).await.unwrap().unwrap();
        assert!(
            seen.insert(d.properties.message_id.as_deref().unwrap().to_string()),
            "duplicate"
        );
    }
    conn.close().await.unwrap();
}

#[tokio::test]
async fn publish_window_bounds_unconfirmed_publishes() {
    let mut config = config();
    config.publish_window = 4;
    let conn = connect_config(config).await;
    let ch = confirm_channel(&conn).await;
    let q = unique("window");
    ch.queue_declare(&q, QueueDeclareOptions::exclusive(), FieldTable::new())
        .await
        .unwrap();
    // Holding four confirmations without their acks having been processed is fine; the
    // window is freed by the confirm arriving, not by awaiting it.
    let mut held = Vec::new();
    for _ in 0..50 {
        held.push(
            within(
                10,
                "publish within the window",
                ch.basic_publish("", &q, PublishOptions::default(), BasicProperties::default(), "w"),
            )
            .await
            .unwrap(),
        );
        assert!(
            ch.unconfirmed() <= 4,
            "{} unconfirmed with a window of 4",
            ch.unconfirmed()
        );
    }
    for c in held {
        assert!(c.await.unwrap().is_ack());
    }
    assert_eq!(ch.unconfirmed(), 0);
    conn.close().await.unwrap();
}

#[tokio::test]
async fn close_before_confirm_is_unknown_not_nack() {
    let conn = connect().await;
    let ch = confirm_channel(&conn).await;
    let q = unique("unknown");
    ch.queue_declare(&q, QueueDeclareOptions::exclusive(), FieldTable::new())
        .await
        .unwrap();
    let big = Bytes::from(vec![7u8; 1 << 20]);
    let mut cs = Vec::new();
    for _ in 0..20 {
        cs.push(
            ch.basic_publish(
                "",
                &q,
                PublishOptions::default(),
                BasicProperties::default(),
                big.clone(),
            )
            .await
            .unwrap(),
        );
    }
    ch.close().await.unwrap();
    let mut acked = 0;
    let mut unknown = 0;
    for c in cs {
        match c.await {
            Ok(Confirmed::Ack) => acked += 1,
            Err(e @ Error::ChannelClosed { .. }) => {
                assert!(e.is_channel_error());
                unknown += 1
            }
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    assert_eq!(acked + unknown, 20);
    // Publishing on the closed channel fails at once.
    assert!(
        ch.basic_publish("", &q, PublishOptions::default(), BasicProperties::default(), "late")
            .await
            .is_err()
    );
    conn.close().await.unwrap();
}

#[tokio::test]
async fn returns_without_confirm_mode_do_not_break_the_channel() {
    let (conn, ch) = channel().await;
    let c = ch
        .basic_publish(
            "",
            &unique("nowhere"),
            PublishOptions { mandatory: true },
            BasicProperties::default(),
            "lost",
        )
        .await
        .unwrap();
    assert_eq!(c.await.unwrap(), Confirmed::Sent);
    tokio::time::sleep(Duration::from_millis(50)).await;
    ch.basic_qos(1, false).await.unwrap();
    conn.close().await.unwrap();
}

#[tokio::test]
async fn returns_outside_confirm_mode_reach_the_returns_stream() {
    let (conn, ch) = channel().await;
    let mut returns = ch.returns(16);
    let nowhere = unique("nowhere");
    for body in ["one", "two"] {
        let c = ch
            .basic_publish(
                "",
                &nowhere,
                PublishOptions { mandatory: true },
                BasicProperties::default(),
                body,
            )
            .await
            .unwrap();
        assert_eq!(c.await.unwrap(), Confirmed::Sent);
    }
    // Not mandatory: dropped by the broker without a return.
    let _sent = ch
        .basic_publish(
            "",
            &nowhere,
            PublishOptions::default(),
            BasicProperties::default(),
            "three",
        )
        .await
        .unwrap();
    for body in ["one", "two"] {
        let r = tokio::time::timeout(Duration::from_secs(5), returns.next())
            .await
            .expect("a return within 5 s")
            .expect("the stream is open");
        assert_eq!(r.reply_code, warren::wire::ReplyCode::NO_ROUTE);
        assert_eq!(r.routing_key.as_str(), nowhere);
        assert_eq!(&r.body[..], body.as_bytes());
    }
    // A round trip after the third publish: had it been returned, it would be here now.
    ch.basic_qos(1, false).await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(200), returns.next())
            .await
            .is_err()
    );
    assert_eq!(conn.metrics().returned, 2);
    ch.close().await.unwrap();
    assert!(returns.next().await.is_none(), "the stream ends with the channel");
    conn.close().await.unwrap();
}

/// A newcomer's trap: `basic_publish` to an exchange that does not exist returns `Ok` (the
/// broker answers asynchronously, by closing the channel with 404). In confirm mode the
/// publish's confirmation carries that 404; the channel is closed for what follows, and
/// the connection goes on.
#[tokio::test]
async fn a_publish_to_a_missing_exchange_fails_its_confirmation_with_404() {
    let (conn, ch) = channel().await;
    ch.confirm_select().await.unwrap();
    let exchange = unique("missing-exchange");
    let confirmation = ch
        .basic_publish(
            &exchange,
            "k",
            PublishOptions::default(),
            BasicProperties::persistent(),
            "x",
        )
        .await
        .expect("handed to the connection");
    let err = within(10, "the confirmation", confirmation).await.unwrap_err();
    assert!(err.is_channel_error(), "{err:?}");
    assert_eq!(err.reply_code(), Some(ReplyCode::NOT_FOUND), "{err}");
    assert!(err.to_string().contains(&exchange), "{err}");
    let next = ch
        .basic_publish("", "k", PublishOptions::default(), BasicProperties::default(), "y")
        .await
        .map(drop)
        .unwrap_err();
    assert_eq!(next.reply_code(), Some(ReplyCode::NOT_FOUND), "{next}");
    assert!(conn.is_open());
    conn.open_channel().await.unwrap().basic_qos(1, false).await.unwrap();
    conn.close().await.unwrap();
}
