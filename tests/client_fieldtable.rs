//! Every field-table type, and every message property, round-tripping through the broker.

mod common;

use bytes::Bytes;
use common::*;
use warren::client::*;
use warren::wire::{BasicProperties, Decimal, FieldArray, FieldTable, FieldValue, ShortStr};

fn key(k: &str) -> ShortStr {
    ShortStr::try_from(k).unwrap()
}

/// One header of each type RabbitMQ knows: t b B s u I i l f d D S A T F V x.
fn all_types() -> FieldTable {
    let mut nested = FieldTable::new();
    nested.insert(key("inner"), FieldValue::from("deep"));
    nested.insert(key("n"), FieldValue::I64(-1));
    let mut t = FieldTable::new();
    t.insert(key("bool"), FieldValue::Bool(true));
    t.insert(key("i8"), FieldValue::I8(-8));
    t.insert(key("u8"), FieldValue::U8(200));
    t.insert(key("i16"), FieldValue::I16(-30000));
    t.insert(key("u16"), FieldValue::U16(60000));
    t.insert(key("i32"), FieldValue::I32(-2_000_000_000));
    t.insert(key("u32"), FieldValue::U32(4_000_000_000));
    t.insert(key("i64"), FieldValue::I64(-9_000_000_000_000_000_000));
    t.insert(key("f32"), FieldValue::F32(1.5));
    t.insert(key("f64"), FieldValue::F64(-2.25e100));
    t.insert(key("decimal"), FieldValue::Decimal(Decimal { scale: 2, value: 12345 }));
    t.insert(
        key("longstr"),
        FieldValue::LongStr(Bytes::from_static("héllo wörld".as_bytes())),
    );
    t.insert(
        key("array"),
        FieldValue::Array(FieldArray(vec![
            FieldValue::I32(1),
            FieldValue::from("two"),
            FieldValue::Array(FieldArray(vec![FieldValue::Bool(false)])),
            FieldValue::Table(nested.clone()),
        ])),
    );
    t.insert(key("timestamp"), FieldValue::Timestamp(1_700_000_000));
    t.insert(key("table"), FieldValue::Table(nested));
    t.insert(key("void"), FieldValue::Void);
    t.insert(
        key("bytes"),
        FieldValue::Bytes(Bytes::from_static(&[0, 1, 2, 0xff, 0xce])),
    );
    t
}

fn all_properties() -> BasicProperties {
    BasicProperties {
        content_type: Some(key("application/json")),
        content_encoding: Some(key("gzip")),
        headers: Some(all_types()),
        delivery_mode: Some(2),
        priority: Some(7),
        correlation_id: Some(key("corr-1")),
        reply_to: Some(key("replies")),
        expiration: Some(key("60000")),
        message_id: Some(key("msg-1")),
        timestamp: Some(1_700_000_123),
        kind: Some(key("order.created")),
        user_id: Some(key("guest")),
        app_id: Some(key("warren-tests")),
        ..Default::default()
    }
}

#[tokio::test]
async fn every_field_type_and_property_round_trips() {
    let (conn, ch) = channel().await;
    ch.confirm_select().await.unwrap();
    let q = unique("types");
    ch.queue_declare(&q, QueueDeclareOptions::exclusive(), FieldTable::new())
        .await
        .unwrap();
    // Through the default exchange, and through a headers exchange that reads them.
    let x = unique("headers-x");
    ch.exchange_declare(
        &x,
        "headers",
        ExchangeDeclareOptions {
            auto_delete: true,
            ..Default::default()
        },
        FieldTable::new(),
    )
    .await
    .unwrap();
    let mut bind = FieldTable::new();
    bind.insert(key("x-match"), FieldValue::from("all"));
    bind.insert(key("i32"), FieldValue::I32(-2_000_000_000));
    ch.queue_bind(&q, &x, "", bind).await.unwrap();

    let props = all_properties();
    for exchange in ["", x.as_str()] {
        let rk = if exchange.is_empty() { q.as_str() } else { "" };
        let c = ch
            .basic_publish(exchange, rk, PublishOptions { mandatory: true }, props.clone(), "typed")
            .await
            .unwrap();
        assert_eq!(c.await.unwrap(), Confirmed::Ack, "via {exchange:?}");
    }
    let mut consumer = ch
        .basic_consume(&q, "", ConsumeOptions::default(), FieldTable::new())
        .await
        .unwrap();
    for _ in 0..2 {
        let d = within(10, "typed delivery", consumer.next()).await.unwrap().unwrap();
        let got = d.properties.headers.clone().unwrap();
        for (k, v) in all_types().iter() {
            assert_eq!(got.get(k), Some(v), "header {k} changed on the way");
        }
        assert_eq!(got.len(), all_types().len());
        assert_eq!(*d.properties, props);
        d.ack().await.unwrap();
    }
    conn.close().await.unwrap();
}

#[tokio::test]
async fn arguments_tables_are_accepted_by_the_broker() {
    let (conn, ch) = channel().await;
    let q = unique("args");
    let mut args = FieldTable::new();
    args.insert(key("x-message-ttl"), FieldValue::I32(60_000));
    args.insert(key("x-max-length"), FieldValue::I64(1000));
    args.insert(key("x-queue-mode"), FieldValue::from("lazy"));
    args.insert(key("x-dead-letter-exchange"), FieldValue::from(""));
    ch.queue_declare(&q, QueueDeclareOptions::exclusive(), args.clone())
        .await
        .unwrap();
    // Same arguments again: equivalent, accepted.
    ch.queue_declare(&q, QueueDeclareOptions::exclusive(), args)
        .await
        .unwrap();
    conn.close().await.unwrap();
}
