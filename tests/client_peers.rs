//! Interop with peers other than RabbitMQ and pika, both from Debian:
//! - garagemq, an AMQP 0-9-1 broker written independently in Go (`scripts/garagemq.sh`
//!   starts a private one on 127.0.0.1:5740; `WARREN_GARAGEMQ_URL` overrides it): connect,
//!   declare, publish with and without confirms, consume with acks;
//! - the C client's command-line tools (`amqp-tools`: `amqp-publish`, `amqp-consume`),
//!   against the default RabbitMQ: what one publishes, the other consumes, properties
//!   included.
//!
//! What the peers cannot do is written in docs/peers.md, and tested here as what it is.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use warren::client::{
    ConnectionConfig, ConsumeOptions, ExchangeDeclareOptions, ExchangeKind, PublishOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use warren::wire::{BasicProperties, FieldTable, FieldValue, ShortStr};
use warren::{Connection, Error};

fn garagemq_url() -> String {
    std::env::var("WARREN_GARAGEMQ_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5740/%2f".to_owned())
}

async fn garagemq() -> Connection {
    let url = garagemq_url();
    let mut config = ConnectionConfig::from_uri(&url).unwrap();
    config.recovery.enabled = false;
    config.connect_timeout = Duration::from_secs(10);
    match Connection::connect_with(config).await {
        Ok(c) => c,
        Err(e) => panic!(
            "cannot connect to garagemq at {url}: {e}\n\
             These tests need it: run scripts/test.sh, or scripts/garagemq.sh start"
        ),
    }
}

/// A table's entries sorted by key.
fn sorted(table: &Option<FieldTable>) -> Vec<(String, FieldValue)> {
    let mut entries: Vec<(String, FieldValue)> = table
        .iter()
        .flat_map(|t| t.iter().map(|(k, v)| (k.as_str().to_owned(), v.clone())))
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries
}

/// Runs one of the amqp-tools, failing loudly when it is missing or fails.
fn tool(name: &str, args: &[&str], stdin: Option<&[u8]>) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new(name)
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {name}: {e} (apt-get install amqp-tools; scripts/test-deps.sh does)"));
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{name} {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[tokio::test]
async fn garagemq_connect_declare_publish_consume_with_acks() {
    let conn = garagemq().await;
    let product = conn.server_properties();
    let ch = conn.open_channel().await.unwrap();
    let x = unique("peers.x");
    let q = unique("peers.q");
    ch.exchange_declare(
        &x,
        ExchangeKind::Topic,
        ExchangeDeclareOptions::default(),
        FieldTable::new(),
    )
    .await
    .unwrap();
    let declared = ch
        .queue_declare(&q, QueueDeclareOptions::durable(), FieldTable::new())
        .await
        .unwrap();
    assert_eq!(declared.name.as_str(), q);
    assert_eq!(declared.message_count, 0);
    ch.queue_bind(&q, &x, "orders.*", FieldTable::new()).await.unwrap();

    // Without confirms: the publish is done once the connection has it.
    let props = BasicProperties {
        content_type: Some(ShortStr::from_static("application/json")),
        delivery_mode: Some(2),
        message_id: Some(ShortStr::from_static("m-1")),
        headers: Some(FieldTable::new().with("attempt", 3i32).with("source", "warren")),
        ..Default::default()
    };
    for i in 0..10u8 {
        ch.basic_publish(&x, "orders.new", PublishOptions::default(), props.clone(), vec![i; 100])
            .await
            .unwrap();
    }
    // Manual acks, prefetch 4.
    ch.basic_qos(4, false).await.unwrap();
    let mut consumer = ch
        .basic_consume(&q, "", ConsumeOptions::default(), FieldTable::new())
        .await
        .unwrap();
    for i in 0..10u8 {
        let d = within(10, "a delivery from garagemq", consumer.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&d.body[..], &[i; 100][..], "delivery {i} (product {product:?})");
        assert_eq!(d.exchange.as_str(), x);
        assert_eq!(d.routing_key.as_str(), "orders.new");
        assert_eq!(d.properties.content_type, props.content_type);
        assert_eq!(d.properties.delivery_mode, Some(2));
        assert_eq!(d.properties.message_id, props.message_id);
        // garagemq keeps a table in a Go map: the entries come back in any order.
        assert_eq!(sorted(&d.properties.headers), sorted(&props.headers));
        d.ack().await.unwrap();
    }
    consumer.cancel().await.unwrap();
    // Every ack reached garagemq: nothing is left, nothing comes back.
    let ch2 = conn.open_channel().await.unwrap();
    let passive = ch2
        .queue_declare(
            &q,
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::new(),
        )
        .await
        .unwrap();
    assert_eq!(passive.message_count, 0, "acked messages are still in the queue");
    ch2.queue_delete(&q, QueueDeleteOptions::default()).await.unwrap();
    ch2.close().await.unwrap();
    ch.close().await.unwrap();
    conn.close().await.unwrap();
}

#[tokio::test]
async fn garagemq_publisher_confirms() {
    let conn = garagemq().await;
    let ch = conn.open_channel().await.unwrap();
    let q = unique("peers.confirm");
    ch.queue_declare(&q, QueueDeclareOptions::durable(), FieldTable::new())
        .await
        .unwrap();
    ch.confirm_select().await.unwrap();
    assert!(ch.is_confirm_mode());
    // Each publish ends with an ack, within a bound: never a hang.
    for i in 0..20u32 {
        let outcome = ch
            .basic_publish_within(
                Duration::from_secs(10),
                "",
                &q,
                PublishOptions::default(),
                BasicProperties::default(),
                i.to_string(),
            )
            .await
            .unwrap();
        assert!(outcome.is_ack(), "publish {i} to garagemq: {outcome:?}");
    }
    // Unroutable with mandatory: garagemq returns it, then acks; warren matches the
    // return to its publish.
    let outcome = ch
        .basic_publish_within(
            Duration::from_secs(10),
            "",
            &unique("peers.nowhere"),
            PublishOptions { mandatory: true },
            BasicProperties::default(),
            "lost",
        )
        .await
        .unwrap();
    assert!(
        matches!(outcome, warren::client::Confirmed::Returned { .. }),
        "an unroutable mandatory publish: {outcome:?}"
    );
    let ch2 = conn.open_channel().await.unwrap();
    assert_eq!(ch2.queue_delete(&q, QueueDeleteOptions::default()).await.unwrap(), 20);
    conn.close().await.unwrap();
}

/// Every property amqp-publish can set, and the headers as it sends them (long strings),
/// arrive in warren as sent; the body is byte for byte the same.
#[tokio::test]
async fn amqp_publish_to_warren() {
    let url = amqp_url();
    let (conn, ch) = channel().await;
    let q = unique("peers.from-c");
    ch.queue_declare(&q, QueueDeclareOptions::durable(), FieldTable::new())
        .await
        .unwrap();
    let body: Vec<u8> = (0..=255u8).chain(b"end\n\0".iter().copied()).collect();
    let body_arg = String::from_utf8_lossy(b"plain body, no NUL: \xc3\xa9t\xc3\xa9").into_owned();
    tool(
        "amqp-publish",
        &[
            "-u",
            &url,
            "-r",
            &q,
            "-p",
            "-C",
            "application/octet-stream",
            "-E",
            "gzip",
            "-t",
            "replies.here",
            "-H",
            "x-tenant: acme",
            "-H",
            "trace: a:b:c",
        ],
        Some(&body),
    );
    tool("amqp-publish", &["-u", &url, "-r", &q, "-b", &body_arg], None);

    let mut consumer = ch
        .basic_consume(&q, "", ConsumeOptions::default(), FieldTable::new())
        .await
        .unwrap();
    let d = within(10, "amqp-publish's message", consumer.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&d.body[..], &body[..]);
    assert_eq!(d.routing_key.as_str(), q);
    assert_eq!(d.exchange.as_str(), "");
    let p: &BasicProperties = &d.properties;
    assert_eq!(p.delivery_mode, Some(2));
    assert_eq!(
        p.content_type.as_ref().map(ShortStr::as_str),
        Some("application/octet-stream")
    );
    assert_eq!(p.content_encoding.as_ref().map(ShortStr::as_str), Some("gzip"));
    assert_eq!(p.reply_to.as_ref().map(ShortStr::as_str), Some("replies.here"));
    let headers = p.headers.as_ref().expect("headers");
    assert_eq!(headers.len(), 2, "{headers:?}");
    assert_eq!(headers.get("x-tenant").and_then(FieldValue::as_str), Some("acme"));
    assert_eq!(headers.get("trace").and_then(FieldValue::as_str), Some("a:b:c"));
    // Nothing else was set.
    let expected = BasicProperties {
        content_type: p.content_type.clone(),
        content_encoding: p.content_encoding.clone(),
        headers: p.headers.clone(),
        delivery_mode: Some(2),
        reply_to: p.reply_to.clone(),
        ..Default::default()
    };
    assert_eq!(p, &expected);
    d.ack().await.unwrap();

    let d = within(10, "amqp-publish -b", consumer.next()).await.unwrap().unwrap();
    assert_eq!(&d.body[..], body_arg.as_bytes());
    // amqp-publish always sets the delivery mode: 1 (transient) without -p.
    assert_eq!(
        *d.properties,
        BasicProperties {
            delivery_mode: Some(1),
            ..Default::default()
        }
    );
    d.ack().await.unwrap();
    consumer.cancel().await.unwrap();
    assert_eq!(ch.queue_delete(&q, QueueDeleteOptions::default()).await.unwrap(), 0);
    conn.close().await.unwrap();
}

/// What warren publishes, amqp-consume consumes (and acks): bodies byte for byte, in
/// order. amqp-consume hands its command the body only (on standard input), so the
/// properties cannot be seen through it (docs/peers.md); pika checks them
/// (tests/client_interop.rs).
#[tokio::test]
async fn warren_to_amqp_consume() {
    let url = amqp_url();
    let (conn, ch) = channel().await;
    let q = unique("peers.to-c");
    ch.queue_declare(&q, QueueDeclareOptions::durable(), FieldTable::new())
        .await
        .unwrap();
    ch.confirm_select().await.unwrap();
    let bodies: Vec<Vec<u8>> = vec![
        b"first".to_vec(),
        (0..=255u8).collect(),
        vec![0u8; 70_000], // more than one frame
        Vec::new(),
    ];
    for b in &bodies {
        let props = BasicProperties {
            delivery_mode: Some(2),
            content_type: Some(ShortStr::from_static("application/octet-stream")),
            headers: Some(FieldTable::new().with("n", b.len() as i64)),
            ..Default::default()
        };
        let outcome = ch
            .basic_publish("", &q, PublishOptions::default(), props, b.clone())
            .await
            .unwrap()
            .await
            .unwrap();
        assert!(outcome.is_ack());
    }
    // One process per message; it writes the body in hex, one line per message.
    let script = "od -An -v -tx1 | tr -d ' \\n'; echo";
    let count = bodies.len().to_string();
    let url2 = url.clone();
    let q2 = q.clone();
    let out = tokio::task::spawn_blocking(move || {
        tool(
            "timeout",
            &[
                "30",
                "amqp-consume",
                "-u",
                &url2,
                "-q",
                &q2,
                "-c",
                &count,
                "-p",
                "1",
                "--",
                "sh",
                "-c",
                script,
            ],
            None,
        )
    })
    .await
    .unwrap();
    let seen: Vec<String> = String::from_utf8(out).unwrap().lines().map(str::to_owned).collect();
    let sent: Vec<String> = bodies
        .iter()
        .map(|b| b.iter().map(|x| format!("{x:02x}")).collect())
        .collect();
    assert_eq!(seen.len(), sent.len(), "amqp-consume ran {} times", seen.len());
    for (i, (seen, sent)) in seen.iter().zip(&sent).enumerate() {
        assert!(
            seen == sent,
            "body {i}: amqp-consume saw {} hex digits, warren sent {}",
            seen.len(),
            sent.len()
        );
    }
    // amqp-consume acked each one: the queue is empty.
    assert_eq!(ch.queue_delete(&q, QueueDeleteOptions::default()).await.unwrap(), 0);
    conn.close().await.unwrap();
}

/// What garagemq does not do, as warren reports it (docs/peers.md):
/// - it denies `exchange_exchange_bindings` in its capabilities and closes the whole
///   connection (540) for `exchange.bind`: warren refuses the call with
///   `Error::NotSupported`, sends nothing, and the connection goes on;
/// - it never answers `tx.select` nor `exchange.delete`: the call ends with
///   `Error::Timeout` after the channel's RPC timeout (60 s by default), it does not
///   hang. That channel is not to be used again (its replies are matched in order);
/// - it names no queue for an empty name: a channel error (503), the connection goes on.
#[tokio::test]
async fn garagemq_limits_are_typed_errors_not_hangs() {
    let conn = garagemq().await;
    let ch = conn.open_channel().await.unwrap();
    let (a, b) = (unique("peers.a"), unique("peers.b"));
    for x in [&a, &b] {
        ch.exchange_declare(
            x,
            ExchangeKind::Fanout,
            ExchangeDeclareOptions::default(),
            FieldTable::new(),
        )
        .await
        .unwrap();
    }
    let err = ch.exchange_bind(&a, &b, "", FieldTable::new()).await.unwrap_err();
    assert_eq!(
        err,
        Error::NotSupported {
            capability: "exchange_exchange_bindings"
        }
    );
    assert!(
        ch.is_open() && conn.is_open(),
        "the refused bind closed something: {err}"
    );

    let tx = conn
        .open_channel()
        .await
        .unwrap()
        .with_timeout(Some(Duration::from_secs(2)));
    let started = std::time::Instant::now();
    let err = tx.tx_select().await.unwrap_err();
    assert_eq!(err, Error::Timeout { operation: "tx.select" });
    assert!(started.elapsed() < Duration::from_secs(10));

    let named = conn.open_channel().await.unwrap();
    let err = named
        .queue_declare("", QueueDeclareOptions::exclusive(), FieldTable::new())
        .await
        .unwrap_err();
    assert!(err.is_channel_error(), "{err}");
    assert_eq!(err.reply_code(), Some(warren::wire::ReplyCode::COMMAND_INVALID));
    assert!(conn.is_open());

    let delete = conn
        .open_channel()
        .await
        .unwrap()
        .with_timeout(Some(Duration::from_secs(2)));
    let err = delete.exchange_delete(&a, Default::default()).await.unwrap_err();
    assert_eq!(
        err,
        Error::Timeout {
            operation: "exchange.delete"
        }
    );
    assert!(conn.is_open());
    conn.close().await.unwrap();
}
