//! What warren tells `tracing` over a connection's life, against the broker: every
//! lifecycle step (connect attempt per address, TCP up, handshake and tune, channel
//! open and close, consumer start and cancel, loss, each recovery step, close) as a
//! `debug`/`trace` event with structured fields, and never a password.
//!
//! A small `tracing::Subscriber` of its own records every event and span of the process
//! (the connection runs on a thread of its own, so it is the global default). One test
//! in this binary: a global subscriber is set once per process. `connection.blocked`
//! and `unblocked` come from a scripted peer (RabbitMQ sends them only under a memory or
//! disk alarm).

mod common;
// The scripted peer of the fault tests, for the one step the default broker will not
// show on demand: `connection.blocked` needs a resource alarm (the fault node's job).
#[path = "fault_support/fake_broker.rs"]
mod fake_broker;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};
use warren::client::{ConnectionConfig, ConnectionState, ConsumeOptions, QueueDeclareOptions};
use warren::wire::FieldTable;

/// One recorded event: its level, message and other fields, formatted.
#[derive(Debug, Clone)]
struct Recorded {
    level: Level,
    message: String,
    fields: BTreeMap<String, String>,
}

#[derive(Default)]
struct Log {
    events: Vec<Recorded>,
    /// Span attributes, formatted: checked for secrets too.
    spans: Vec<String>,
}

struct Recorder {
    log: Arc<Mutex<Log>>,
    next_span: AtomicU64,
}

#[derive(Default)]
struct Fields(BTreeMap<String, String>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut fields = Fields::default();
        span.record(&mut fields);
        self.log
            .lock()
            .unwrap()
            .spans
            .push(format!("{} {:?}", span.metadata().name(), fields.0));
        Id::from_u64(self.next_span.fetch_add(1, Ordering::Relaxed))
    }
    fn record(&self, _: &Id, values: &Record<'_>) {
        let mut fields = Fields::default();
        values.record(&mut fields);
        self.log.lock().unwrap().spans.push(format!("{:?}", fields.0));
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let message = fields.0.remove("message").unwrap_or_default();
        self.log.lock().unwrap().events.push(Recorded {
            level: *event.metadata().level(),
            message,
            fields: fields.0,
        });
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

impl Log {
    /// Index of the first event at or after `from` whose message is `message`.
    fn find(&self, from: usize, message: &str) -> Option<usize> {
        (from..self.events.len()).find(|&i| self.events[i].message == message)
    }
}

/// The events of `log` from `from` on, in order, must include `steps` in this order;
/// each is (message, fields that must be present). Returns where the last one was.
fn expect_in_order(log: &Log, mut from: usize, steps: &[(&str, &[&str])]) -> usize {
    for (message, fields) in steps {
        let Some(i) = log.find(from, message) else {
            let seen: Vec<&str> = log.events[from..].iter().map(|e| e.message.as_str()).collect();
            panic!("no event {message:?} after event {from}; the events from there: {seen:#?}");
        };
        let e = &log.events[i];
        // A lifecycle step is not an error.
        assert!(e.level != Level::ERROR, "{message:?} at {:?}", e.level);
        for f in *fields {
            assert!(e.fields.contains_key(*f), "event {message:?} has no field {f:?}: {e:?}");
        }
        from = i + 1;
    }
    from
}

/// A TCP forwarder to the broker whose connections can be cut: the broker sees a
/// client vanish, warren a lost connection.
async fn forwarder(upstream: SocketAddr) -> (SocketAddr, watch::Sender<u32>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (cut, _) = watch::channel(0u32);
    let cuts = cut.clone();
    tokio::spawn(async move {
        while let Ok((mut down, _)) = listener.accept().await {
            let mut cut = cuts.subscribe();
            tokio::spawn(async move {
                let Ok(mut up) = TcpStream::connect(upstream).await else {
                    return;
                };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut down, &mut up) => {}
                    _ = cut.changed() => {}
                }
            });
        }
    });
    (addr, cut)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connections_life_is_traced_without_secrets() {
    let log = Arc::new(Mutex::new(Log::default()));
    tracing::subscriber::set_global_default(Recorder {
        log: log.clone(),
        next_span: AtomicU64::new(1),
    })
    .expect("the only global subscriber of this test binary");

    // A refused login first: its password must not be told either.
    let secret = format!("tracing-secret-{}", std::process::id());
    let mut bad = config().with_sasl(warren::client::Sasl::Plain {
        username: "guest".into(),
        password: secret.clone(),
    });
    bad.recovery.enabled = false;
    let refused = within(20, "a refused login", warren::client::Connection::connect_with(bad)).await;
    assert!(refused.is_err(), "a wrong password was accepted");

    // One connection's life, through a forwarder that can cut it.
    let base = config();
    let upstream = tokio::net::lookup_host((base.host.as_str(), base.port))
        .await
        .unwrap()
        .next()
        .unwrap();
    let (addr, cut) = forwarder(upstream).await;
    let mut cfg: ConnectionConfig = base.clone();
    cfg.host = "localhost".into();
    cfg.port = addr.port();
    cfg.recovery.initial_backoff = Duration::from_millis(50);
    let start = log.lock().unwrap().events.len();
    let conn = connect_config(cfg).await;
    let ch = conn.open_channel().await.unwrap();
    let q = unique("tracing");
    ch.queue_declare(&q, QueueDeclareOptions::durable(), FieldTable::new())
        .await
        .unwrap();
    let consumer = ch
        .basic_consume(&q, "", ConsumeOptions::default(), FieldTable::new())
        .await
        .unwrap();
    let tag = consumer.tag().to_string();

    // Lose the connection: recovery restores the channel, the queue and the consumer.
    cut.send_modify(|n| *n += 1);
    within(30, "recovery", async {
        let mut state = conn.state();
        loop {
            if matches!(*state.borrow_and_update(), ConnectionState::Recovered(_)) {
                break;
            }
            state.changed().await.unwrap();
        }
    })
    .await;
    consumer.cancel().await.unwrap();
    ch.queue_delete(&q, Default::default()).await.unwrap();
    ch.close().await.unwrap();
    conn.close().await.unwrap();
    drop(conn);

    // Blocked and unblocked, from a scripted peer.
    let broker = fake_broker::FakeBroker::spawn(|mut peer| async move {
        peer.handshake(fake_broker::tune(2047, 131_072, 0)).await;
        let blocked = warren::wire::ConnectionBlocked {
            reason: warren::wire::ShortStr::from_static("low on memory"),
        };
        peer.send(0, warren::wire::Method::ConnectionBlocked(blocked)).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        peer.send(0, warren::wire::Method::ConnectionUnblocked(Default::default()))
            .await;
        peer.expect_connection_close().await;
    })
    .await;
    let blocked_from = log.lock().unwrap().events.len();
    let scripted = connect_config(broker.config()).await;
    within(10, "blocked, then unblocked", async {
        while log.lock().unwrap().find(blocked_from, "connection unblocked").is_none() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    scripted.close().await.unwrap();
    broker.join().await;

    let log = log.lock().unwrap();
    expect_in_order(
        &log,
        blocked_from,
        &[
            ("connection blocked by the server: publishes wait", &["reason"]),
            ("connection unblocked", &[]),
        ],
    );
    let blocked = &log.events[log
        .find(blocked_from, "connection blocked by the server: publishes wait")
        .unwrap()];
    assert_eq!(blocked.fields["reason"], "low on memory");
    let end = expect_in_order(
        &log,
        start,
        &[
            ("resolving", &["host", "port"]),
            ("TCP connect attempt", &["address"]),
            ("TCP connected", &["address"]),
            (
                "connection.start",
                &[
                    "version_major",
                    "version_minor",
                    "product",
                    "server_version",
                    "mechanisms",
                ],
            ),
            ("connection.start-ok", &["mechanism"]),
            (
                "connection.tune-ok",
                &["channel_max", "frame_max", "heartbeat", "proposed_heartbeat"],
            ),
            ("connection.open", &["vhost"]),
            ("connection.open-ok", &[]),
            ("connection open", &["channel_max", "frame_max", "heartbeat"]),
            ("channel open", &["channel"]),
            ("basic.consume", &["channel", "queue", "consumer_tag", "no_ack"]),
            ("consumer started", &["channel", "consumer_tag"]),
            ("connection lost: recovering", &["error"]),
            ("reconnecting", &["attempt", "address", "delay_ms"]),
            ("TCP connect attempt", &["address"]),
            ("TCP connected", &["address"]),
            ("transport up: AMQP handshake", &["attempt"]),
            ("connection.tune-ok", &["heartbeat"]),
            ("reconnected: restoring", &["generation", "channels", "steps"]),
            ("recovery: restoring", &["step"]),
            ("recovery: restoring consumer", &["channel", "consumer_tag", "queue"]),
            ("recovered", &["generation", "failures"]),
            (
                "recovery finished: running the commands that waited",
                &["waited", "republished"],
            ),
            ("basic.cancel", &["channel", "consumer_tag"]),
            ("consumer cancelled", &["channel", "consumer_tag"]),
            ("closing channel", &["channel"]),
            ("channel closed", &["channel"]),
            ("closing connection", &[]),
            ("connection closed", &[]),
        ],
    );
    assert!(end > start);
    let restored = log
        .events
        .iter()
        .find(|e| e.message == "recovery: restoring consumer")
        .unwrap();
    assert_eq!(restored.fields["consumer_tag"], tag);
    assert_eq!(restored.fields["queue"], q);

    // Nothing anywhere, in any event or span, carries a password or a SASL response.
    for text in log
        .events
        .iter()
        .map(|e| format!("{} {:?}", e.message, e.fields))
        .chain(log.spans.iter().cloned())
    {
        assert!(!text.contains(&secret), "a password in the log: {text}");
        assert!(!text.contains("\\0guest\\0"), "a SASL response in the log: {text}");
        assert!(
            !text.to_lowercase().contains("password"),
            "a password field in the log: {text}"
        );
    }
}
