//! Connection, channels, topology, basic.get, qos, tx, and channel-level errors, against
//! a real broker (`AMQP_URL`, default the local node; run scripts/test.sh).

mod common;

use std::time::Duration;

use common::queues::passive_declare;
use common::*;
use warren::Error;
use warren::client::*;
use warren::error::Initiator;
use warren::wire::{BasicProperties, FieldTable, FieldValue, ReplyCode, ShortStr};

fn args(pairs: &[(&str, FieldValue)]) -> FieldTable {
    let mut t = FieldTable::new();
    for (k, v) in pairs {
        t.insert(ShortStr::try_from(*k).unwrap(), v.clone());
    }
    t
}

async fn get_one(ch: &Channel, q: &str) -> GetMessage {
    within(5, "basic.get", async {
        loop {
            if let Some(m) = ch.basic_get(q, false).await.unwrap() {
                break m;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}

#[tokio::test]
async fn publish_and_get_roundtrip() {
    let (conn, ch) = channel().await;
    let q = unique("roundtrip");
    let info = ch
        .queue_declare(&q, QueueDeclareOptions::exclusive(), FieldTable::new())
        .await
        .unwrap();
    assert_eq!(info.name, q.as_str());
    assert_eq!((info.message_count, info.consumer_count), (0, 0));
    let c = ch
        .basic_publish("", &q, PublishOptions::default(), BasicProperties::default(), "hello")
        .await
        .unwrap();
    assert_eq!(c.await.unwrap(), Confirmed::Sent);
    let got = get_one(&ch, &q).await;
    assert_eq!(&got.delivery.body[..], b"hello");
    assert_eq!(got.message_count, 0);
    assert!(!got.delivery.redelivered);
    assert_eq!(got.delivery.routing_key, q.as_str());
    // A GetMessage reads as its delivery.
    assert_eq!(&got.body[..], b"hello");
    got.ack().await.unwrap();
    assert!(
        ch.basic_get(&q, false).await.unwrap().is_none(),
        "queue is empty after the ack"
    );
    conn.close().await.unwrap();
    assert!(!conn.is_open());
    match conn.closed().await {
        Error::ConnectionClosed {
            by: Initiator::Application,
            code: ReplyCode::SUCCESS,
            ..
        } => {}
        other => panic!("unexpected close reason {other:?}"),
    }
    // Closing again is fine; the channel reports the close.
    conn.close().await.unwrap();
    assert!(
        ch.queue_declare(&q, QueueDeclareOptions::exclusive(), FieldTable::new())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn connect_by_uri_and_server_properties() {
    let conn = Connection::connect(&format!("{}?heartbeat=10&frame_max=65536&channel_max=100", amqp_url()))
        .await
        .unwrap_or_else(|e| panic!("broker not reachable at {} ({e}): run scripts/test.sh", amqp_url()));
    let tune = conn.tune();
    assert_eq!(tune.heartbeat, 10);
    assert_eq!(tune.frame_max, 65536);
    assert_eq!(tune.channel_max, 100);
    assert_eq!(
        conn.server_properties().get("product").and_then(|v| v.as_str()),
        Some("RabbitMQ")
    );
    assert!(!conn.is_blocked());
    conn.close().await.unwrap();
}

#[tokio::test]
async fn malformed_uri_is_a_typed_error() {
    for bad in [
        "http://x",
        "amqp://h:99999",
        "amqp://h/a/b",
        "amqps://h?verify=verify_none",
        "amqp://h?bogus=1",
    ] {
        match Connection::connect(bad).await {
            Err(Error::Uri(msg)) => assert!(!msg.is_empty()),
            other => panic!("{bad}: expected Error::Uri, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn topology_exchanges_queues_bindings() {
    let (conn, ch) = channel().await;
    let x1 = unique("x1");
    let x2 = unique("x2");
    let opts = ExchangeDeclareOptions {
        auto_delete: false,
        ..Default::default()
    };
    ch.exchange_declare(&x1, "topic", opts, FieldTable::new())
        .await
        .unwrap();
    ch.exchange_declare(&x2, "fanout", opts, FieldTable::new())
        .await
        .unwrap();
    // Passive declare of an existing exchange succeeds.
    ch.exchange_declare(
        &x1,
        "topic",
        ExchangeDeclareOptions {
            passive: true,
            ..Default::default()
        },
        FieldTable::new(),
    )
    .await
    .unwrap();
    ch.exchange_bind(&x2, &x1, "a.*", FieldTable::new()).await.unwrap();

    // A server-named queue.
    let q = ch
        .queue_declare("", QueueDeclareOptions::exclusive(), FieldTable::new())
        .await
        .unwrap();
    assert!(q.name.starts_with("amq.gen-"), "{:?}", q.name);
    ch.queue_bind(&q.name, &x2, "", FieldTable::new()).await.unwrap();

    // x1 --a.*--> x2 --> q
    ch.basic_publish(
        &x1,
        "a.b",
        PublishOptions::default(),
        BasicProperties::default(),
        "routed",
    )
    .await
    .unwrap()
    .await
    .unwrap();
    let m = get_one(&ch, &q.name).await;
    assert_eq!(&m.delivery.body[..], b"routed");
    assert_eq!(m.delivery.exchange, x1.as_str());
    m.delivery.ack().await.unwrap();

    // Purge counts what it dropped.
    for _ in 0..3 {
        ch.basic_publish(&x1, "a.c", PublishOptions::default(), BasicProperties::default(), "x")
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let purged = within(5, "purge", async {
        let mut total = 0;
        while total < 3 {
            total += ch.queue_purge(&q.name).await.unwrap();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        total
    })
    .await;
    assert_eq!(purged, 3);

    // Unbind: nothing routed any more.
    ch.exchange_unbind(&x2, &x1, "a.*", FieldTable::new()).await.unwrap();
    ch.queue_unbind(&q.name, &x2, "", FieldTable::new()).await.unwrap();
    ch.basic_publish(
        &x1,
        "a.b",
        PublishOptions::default(),
        BasicProperties::default(),
        "lost",
    )
    .await
    .unwrap()
    .await
    .unwrap();
    ch.basic_publish(&x2, "", PublishOptions::default(), BasicProperties::default(), "lost")
        .await
        .unwrap()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(ch.basic_get(&q.name, true).await.unwrap().is_none());

    ch.exchange_delete(&x1, ExchangeDeleteOptions::default()).await.unwrap();
    ch.exchange_delete(
        &x2,
        ExchangeDeleteOptions {
            if_unused: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    // Queue delete reports the messages it held.
    let dq = unique("del");
    ch.queue_declare(&dq, QueueDeclareOptions::exclusive(), FieldTable::new())
        .await
        .unwrap();
    ch.confirm_select().await.unwrap();
    for _ in 0..2 {
        let c = ch
            .basic_publish("", &dq, PublishOptions::default(), BasicProperties::default(), "x")
            .await
            .unwrap();
        assert_eq!(c.await.unwrap(), Confirmed::Ack);
    }
    assert_eq!(ch.queue_delete(&dq, QueueDeleteOptions::default()).await.unwrap(), 2);
    conn.close().await.unwrap();
}

#[tokio::test]
async fn no_wait_declares() {
    let (conn, ch) = channel().await;
    let q = unique("nowait");
    let info = ch
        .queue_declare(
            &q,
            QueueDeclareOptions {
                no_wait: true,
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::new(),
        )
        .await
        .unwrap();
    assert_eq!(info.name, q.as_str());
    let x = unique("nowait-x");
    ch.exchange_declare(
        &x,
        "direct",
        ExchangeDeclareOptions {
            no_wait: true,
            ..Default::default()
        },
        FieldTable::new(),
    )
    .await
    .unwrap();
    // A synchronous call afterwards sees them.
    passive_declare(&ch, &q).await.unwrap();
    ch.exchange_delete(
        &x,
        ExchangeDeleteOptions {
            no_wait: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    ch.queue_delete(
        &q,
        QueueDeleteOptions {
            no_wait: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(matches!(
        ch.queue_declare(
            "",
            QueueDeclareOptions {
                no_wait: true,
                exclusive: true,
                ..Default::default()
            },
            FieldTable::new()
        )
        .await,
        Err(Error::InvalidArgument(_))
    ));
    conn.close().await.unwrap();
}

#[tokio::test]
async fn not_found_closes_only_the_channel() {
    let (conn, ch) = channel().await;
    let missing = unique("missing");
    let err = passive_declare(&ch, &missing).await.unwrap_err();
    match &err {
        Error::ChannelClosed {
            by: Initiator::Server,
            code: ReplyCode::NOT_FOUND,
            text,
            ..
        } => {
            assert!(text.contains("NOT_FOUND"), "{text}")
        }
        other => panic!("expected 404 channel close, got {other:?}"),
    }
    assert!(err.is_channel_error());
    assert!(!ch.is_open());
    assert_eq!(ch.close_reason(), Some(err.clone()));
    // Later calls on that channel fail with the same error, immediately.
    assert_eq!(ch.basic_qos(1, false).await.unwrap_err(), err);
    // The connection is fine: a new channel works.
    assert!(conn.is_open());
    let ch2 = conn.open_channel().await.unwrap();
    ch2.queue_declare("", QueueDeclareOptions::exclusive(), FieldTable::new())
        .await
        .unwrap();
    conn.close().await.unwrap();
}

#[tokio::test]
async fn precondition_failed_closes_only_the_channel() {
    let (conn, ch) = channel().await;
    let q = unique("pf");
    let opts = QueueDeclareOptions::exclusive();
    ch.queue_declare(&q, opts, args(&[("x-max-length", FieldValue::I32(10))]))
        .await
        .unwrap();
    let err = ch
        .queue_declare(&q, opts, args(&[("x-max-length", FieldValue::I32(20))]))
        .await
        .unwrap_err();
    assert_eq!(err.reply_code(), Some(ReplyCode::PRECONDITION_FAILED), "{err:?}");
    assert!(err.is_channel_error());
    // Pipelined calls behind the failing one fail with the same error.
    let ch2 = conn.open_channel().await.unwrap();
    let (a, b) = tokio::join!(
        ch2.queue_declare(&q, opts, args(&[("x-max-length", FieldValue::I32(30))])),
        ch2.basic_qos(5, false)
    );
    let a = a.unwrap_err();
    assert_eq!(a.reply_code(), Some(ReplyCode::PRECONDITION_FAILED), "{a:?}");
    let b = b.unwrap_err();
    assert_eq!(b.reply_code(), Some(ReplyCode::PRECONDITION_FAILED), "{b:?}");
    let ch3 = conn.open_channel().await.unwrap();
    passive_declare(&ch3, &q).await.unwrap();
    conn.close().await.unwrap();
}

#[tokio::test]
async fn wrong_password_is_an_authentication_error() {
    let mut config = config();
    config.protocol.sasl = Sasl::plain("guest", "definitely-not-the-password");
    let err = Connection::connect_with(config).await.unwrap_err();
    match &err {
        Error::Authentication { mechanism, .. } => assert_eq!(mechanism, "PLAIN"),
        other => panic!("expected an authentication error, got {other:?}"),
    }
    assert!(!err.is_recoverable());
    assert!(
        !err.to_string().contains("definitely-not-the-password"),
        "the password leaked: {err}"
    );
}

#[tokio::test]
async fn unknown_vhost_is_a_clear_error() {
    let mut config = config();
    config.protocol.vhost = unique("no-such-vhost");
    let err = Connection::connect_with(config).await.unwrap_err();
    assert_eq!(err.reply_code(), Some(ReplyCode::NOT_ALLOWED), "{err:?}");
    assert!(err.to_string().contains("vhost"), "{err}");
    assert!(err.is_connection_error() && !err.is_recoverable());
}

#[tokio::test]
async fn connection_refused_and_connect_timeout() {
    // Nobody listens on this port.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let err = Connection::connect(&format!("amqp://127.0.0.1:{port}"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Io(_)), "{err:?}");
    // It says where, and keeps the kind.
    assert!(
        err.to_string().contains(&format!("cannot connect to 127.0.0.1:{port}")),
        "{err}"
    );
    match &err {
        Error::Io(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused),
        other => panic!("{other:?}"),
    }

    // A server that accepts and never answers: the connect timeout fires.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let keep = tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            if let Ok((s, _)) = silent.accept().await {
                held.push(s);
            }
        }
    });
    let started = std::time::Instant::now();
    let err = Connection::connect(&format!("amqp://127.0.0.1:{port}?connection_timeout=300"))
        .await
        .unwrap_err();
    assert_eq!(err, Error::Timeout { operation: "connect" });
    assert!(started.elapsed() < Duration::from_secs(5));
    keep.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thousand_channels_on_one_connection() {
    let conn = connect().await;
    let mut channels = Vec::new();
    for _ in 0..1000 {
        channels.push(conn.open_channel().await.unwrap());
    }
    let mut numbers: Vec<u16> = channels.iter().map(|c| c.id().number()).collect();
    numbers.sort_unstable();
    numbers.dedup();
    assert_eq!(numbers.len(), 1000);
    // Every one of them works, concurrently.
    let mut tasks = Vec::new();
    for ch in channels.clone() {
        tasks.push(tokio::spawn(async move { ch.basic_qos(10, false).await }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    // Close half explicitly; drop the rest.
    for ch in channels.iter().take(500) {
        ch.close().await.unwrap();
        assert!(!ch.is_open());
    }
    drop(channels);
    let ch = conn.open_channel().await.unwrap();
    ch.basic_qos(1, false).await.unwrap();
    conn.close().await.unwrap();
}

#[tokio::test]
async fn qos_and_tx_commit_rollback() {
    let (conn, ch) = channel().await;
    ch.basic_qos(5, false).await.unwrap();
    let q = unique("tx");
    ch.queue_declare(&q, QueueDeclareOptions::exclusive(), FieldTable::new())
        .await
        .unwrap();
    ch.tx_select().await.unwrap();
    ch.basic_publish(
        "",
        &q,
        PublishOptions::default(),
        BasicProperties::default(),
        "rolled back",
    )
    .await
    .unwrap()
    .await
    .unwrap();
    ch.tx_rollback().await.unwrap();
    ch.basic_publish(
        "",
        &q,
        PublishOptions::default(),
        BasicProperties::default(),
        "committed",
    )
    .await
    .unwrap()
    .await
    .unwrap();
    ch.tx_commit().await.unwrap();
    let m = ch
        .basic_get(&q, false)
        .await
        .unwrap()
        .expect("committed message is there at once");
    assert_eq!(&m.delivery.body[..], b"committed");
    assert_eq!(m.message_count, 0, "the rolled-back message never arrived");
    // An ack inside a transaction takes effect on commit; a rollback undoes it.
    m.delivery.ack().await.unwrap();
    ch.tx_rollback().await.unwrap();
    ch.basic_recover(true).await.unwrap();
    let again = get_one(&ch, &q).await;
    assert!(again.delivery.redelivered);
    again.delivery.ack().await.unwrap();
    ch.tx_commit().await.unwrap();
    assert!(ch.basic_get(&q, false).await.unwrap().is_none());
    // confirm.select on a transactional channel is refused locally.
    assert!(matches!(ch.confirm_select().await, Err(Error::NotAllowed { .. })));
    assert!(ch.is_open());
    conn.close().await.unwrap();
}

#[tokio::test]
async fn cancelled_rpc_leaves_the_channel_consistent() {
    let (conn, ch) = channel().await;
    let q = unique("cancel-safe");
    // Start many RPCs and drop them at various points.
    for i in 0..50u64 {
        let fut = ch.queue_declare(
            &q,
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::new(),
        );
        let _ = tokio::time::timeout(Duration::from_micros(i * 20), fut).await;
    }
    // Replies to the dropped calls were discarded: the next reply is ours.
    let info = ch
        .queue_declare(
            &q,
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::new(),
        )
        .await
        .unwrap();
    assert_eq!(info.name, q.as_str());
    let purged = ch.queue_purge(&q).await.unwrap();
    assert_eq!(purged, 0);
    // A per-handle timeout yields Error::Timeout and the channel goes on.
    let short = ch.with_timeout(Some(Duration::from_nanos(1)));
    match short
        .queue_declare(
            &q,
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::new(),
        )
        .await
    {
        Err(Error::Timeout { operation }) => assert_eq!(operation, "queue.declare"),
        Ok(_) => {} // the broker was faster than a nanosecond timer: fine
        Err(e) => panic!("{e:?}"),
    }
    ch.basic_qos(3, false).await.unwrap();
    ch.queue_delete(&q, QueueDeleteOptions::default()).await.unwrap();
    // A dropped open_channel future does not leak a channel that breaks later opens.
    for i in 0..20u64 {
        let _ = tokio::time::timeout(Duration::from_micros(i * 30), conn.open_channel()).await;
    }
    conn.open_channel().await.unwrap().basic_qos(1, false).await.unwrap();
    conn.close().await.unwrap();
}

#[tokio::test]
async fn dropping_every_handle_closes_the_connection() {
    let conn = connect().await;
    let watcher = conn.blocked_watch();
    let ch = conn.open_channel().await.unwrap();
    drop(conn);
    ch.basic_qos(1, false).await.unwrap();
    drop(ch);
    // The watch sender lives in the task's shared state; once the task ended the
    // connection is closed. Poll the watch until its sender is gone or time out.
    within(10, "connection task to end", async {
        let mut w = watcher;
        while w.changed().await.is_ok() {}
    })
    .await;
}

/// A typo in an exchange type would make RabbitMQ close the whole connection with 503:
/// it is refused before anything is sent, and the channel goes on.
#[tokio::test]
async fn an_unknown_exchange_type_is_refused_before_it_reaches_the_broker() {
    let (conn, ch) = channel().await;
    let x = unique("typo");
    let err = ch
        .exchange_declare(&x, "fannout", ExchangeDeclareOptions::default(), FieldTable::new())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidArgument(text) if text.contains("fannout")),
        "{err}"
    );
    ch.exchange_declare(
        &x,
        ExchangeKind::Fanout,
        ExchangeDeclareOptions::default(),
        FieldTable::new(),
    )
    .await
    .expect("the channel goes on");
    ch.exchange_delete(&x, ExchangeDeleteOptions::default()).await.unwrap();
    assert!(conn.is_open());
    conn.close().await.unwrap();
}

/// Connecting to something that is not AMQP (an HTTP port) says so, with the address.
#[tokio::test]
async fn a_peer_that_is_not_amqp_is_named_with_its_address() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut header = [0u8; 8];
        s.read_exact(&mut header).await.unwrap();
        s.write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let _ = s.read(&mut header).await;
    });
    let err = Connection::connect(&format!("amqp://127.0.0.1:{port}"))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Handshake { .. }), "{err:?}");
    assert!(
        text.contains(&format!("127.0.0.1:{port}")) && text.contains("not an AMQP 0-9-1 server"),
        "{text}"
    );
    assert!(text.contains("HTTP/1.1 400"), "{text}");
    server.abort();
}

/// `own_thread: false`: the connection task runs on the caller's runtime, here a
/// current-thread one, so everything runs on the test's thread. Confirms and deliveries
/// flow; when that runtime shuts down, a handle used elsewhere learns that the
/// connection ended instead of waiting for a task that is gone.
#[test]
fn the_connection_task_can_run_on_the_callers_runtime() {
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    };
    let rt = runtime();
    let conn = rt.block_on(async {
        let mut config = config();
        config.own_thread = false;
        let conn = connect_config(config).await;
        let ch = conn.open_channel().await.unwrap();
        ch.confirm_select().await.unwrap();
        let q = unique("own-thread");
        ch.queue_declare(&q, QueueDeclareOptions::exclusive(), FieldTable::new())
            .await
            .unwrap();
        let mut consumer = ch
            .basic_consume(&q, "", ConsumeOptions::default(), FieldTable::new())
            .await
            .unwrap();
        for i in 0..100u32 {
            let body = i.to_be_bytes().to_vec();
            let confirm = ch
                .basic_publish("", &q, PublishOptions::default(), BasicProperties::default(), body)
                .await
                .unwrap();
            assert!(within(5, "confirm", confirm).await.unwrap().is_ack());
            let d = next(&mut consumer).await;
            assert_eq!(&d.body[..], &i.to_be_bytes());
            d.ack().await.unwrap();
        }
        // A busy stream, where read coalescing pauses reads: the pause must not stop
        // the runtime the consumer runs on.
        let mut confirms = Vec::new();
        for i in 0..5000u32 {
            let body = i.to_be_bytes().to_vec();
            confirms.push(
                ch.basic_publish("", &q, PublishOptions::default(), BasicProperties::default(), body)
                    .await
                    .unwrap(),
            );
        }
        for i in 0..5000u32 {
            let d = next(&mut consumer).await;
            assert_eq!(&d.body[..], &i.to_be_bytes());
            d.ack().await.unwrap();
        }
        for confirm in confirms {
            assert!(within(5, "confirm", confirm).await.unwrap().is_ack());
        }
        conn
    });
    drop(rt);
    runtime().block_on(async {
        let e = within(5, "the connection seen ended", conn.closed()).await;
        assert!(
            matches!(&e, Error::ConnectionLost { reason, .. } if reason.contains("dropped")),
            "{e:?}"
        );
        assert!(!conn.is_open());
        assert!(matches!(*conn.state().borrow(), ConnectionState::Failed(_)));
    });
}

/// `own_thread: false` needs a runtime to spawn the task on: outside one, `connect` is a
/// typed error, not a panic.
#[test]
fn own_thread_off_outside_a_runtime_is_a_typed_error() {
    use std::future::Future;
    let mut config = config();
    config.own_thread = false;
    let mut connect = std::pin::pin!(Connection::connect_with(config));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match connect.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(Err(Error::InvalidArgument(text))) => assert!(text.contains("own_thread"), "{text}"),
        other => panic!("{other:?}"),
    }
}
