//! Automatic recovery, fault by fault: what is restored, in which order, what is reported,
//! and what is refused (stale deliveries), against the shared broker through the proxy
//! (cuts, blackholes) and against the private node (broker-side closes, restarts, alarms).

mod fault_support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use fault_support::node;
use fault_support::proxy::{Mode, Proxy};
use fault_support::queues::passive_declare;
use fault_support::{unique, within};
use warren::Error;
use warren::client::{
    Confirmed, Connection, ConnectionConfig, ConnectionState, ConsumeOptions, ExchangeDeclareOptions, PublishOptions,
    QueueDeclareOptions, QueueDeleteOptions, RecoveryConfig,
};
use warren::wire::{BasicProperties, FieldTable, ShortStr};

const LIMIT: Duration = Duration::from_secs(30);

fn default_addr() -> std::net::SocketAddr {
    let url = std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let c = ConnectionConfig::from_uri(&url).unwrap();
    use std::net::ToSocketAddrs;
    (c.host.as_str(), c.port).to_socket_addrs().unwrap().next().unwrap()
}

fn fast_recovery() -> RecoveryConfig {
    RecoveryConfig {
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(500),
        attempt_timeout: Duration::from_secs(5),
        ..RecoveryConfig::default()
    }
}

fn via(proxy: &Proxy, name: &str) -> ConnectionConfig {
    let mut c = ConnectionConfig::from_uri(&proxy.uri(""))
        .unwrap()
        .with_connection_name(name);
    c.recovery = fast_recovery();
    c
}

async fn wait_state(conn: &Connection, what: &str, pred: impl Fn(&ConnectionState) -> bool) -> ConnectionState {
    let mut rx = conn.state();
    within(LIMIT, what, async {
        let s = rx.wait_for(|s| pred(s)).await.expect("state watch");
        s.clone()
    })
    .await
}

async fn wait_recovered(conn: &Connection) -> ConnectionState {
    wait_state(conn, "recovered", |s| matches!(s, ConnectionState::Recovered(_))).await
}

/// Everything comes back after a cut: channel modes, exchanges, a server-named exclusive
/// queue (renamed, bindings and consumer follow), an exchange-to-exchange binding and the
/// consumer with its tag; the state watch reports the way.
#[tokio::test]
async fn topology_and_consumers_come_back_after_a_cut() {
    let proxy = Proxy::start(default_addr()).await.unwrap();
    let conn = within(
        LIMIT,
        "connect",
        Connection::connect_with(via(&proxy, "warren-fault-rec-topology")),
    )
    .await
    .unwrap();
    let mut changes = conn.state_changes();
    let ch = conn.open_channel().await.unwrap();
    ch.basic_qos(7, false).await.unwrap();
    ch.confirm_select().await.unwrap();
    let src = unique("rec.src");
    let dst = unique("rec.dst");
    ch.exchange_declare(
        &src,
        "fanout",
        ExchangeDeclareOptions {
            auto_delete: true,
            ..Default::default()
        },
        FieldTable::new(),
    )
    .await
    .unwrap();
    ch.exchange_declare(
        &dst,
        "fanout",
        ExchangeDeclareOptions {
            auto_delete: true,
            ..Default::default()
        },
        FieldTable::new(),
    )
    .await
    .unwrap();
    ch.exchange_bind(&dst, &src, "", FieldTable::new()).await.unwrap();
    let q = ch
        .queue_declare(
            "",
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::new(),
        )
        .await
        .unwrap();
    ch.queue_bind(&q.name, &dst, "", FieldTable::new()).await.unwrap();
    let mut consumer = ch
        .basic_consume(&q.name, "my-tag", ConsumeOptions::default(), FieldTable::new())
        .await
        .unwrap();

    let c = ch
        .basic_publish(
            &src,
            "",
            PublishOptions::default(),
            BasicProperties::default(),
            "before",
        )
        .await
        .unwrap();
    assert_eq!(c.await.unwrap(), Confirmed::Ack);
    let d = within(LIMIT, "delivery before", consumer.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&d.body[..], b"before");
    d.ack().await.unwrap();
    // A round trip on the channel: the broker has the ack before the cut (otherwise it
    // redelivers "before" after the recovery, which is right but not what this checks).
    passive_declare(&ch, &q.name).await.unwrap();

    assert_eq!(proxy.cut_all(), 1);
    let state = wait_recovered(&conn).await;
    let ConnectionState::Recovered(report) = state else {
        unreachable!()
    };
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(
        report.renamed_queues.len(),
        1,
        "the server-named queue got a new name: {report:?}"
    );
    assert_eq!(report.renamed_queues[0].0, q.name.as_str());
    // The state stream saw the way there.
    let mut saw = Vec::new();
    while let Ok(Some(s)) = tokio::time::timeout(Duration::from_millis(100), changes.next()).await {
        saw.push(s);
    }
    assert!(
        saw.iter()
            .any(|s| matches!(s, ConnectionState::Recovering { attempt: 1, cause } if cause.is_recoverable())),
        "{saw:?}"
    );
    assert!(
        saw.iter().any(|s| matches!(s, ConnectionState::Recovered(_))),
        "{saw:?}"
    );

    // Same channel handle, confirm mode still on; the e2e binding and the renamed queue's
    // binding route to the same consumer stream, same tag.
    assert!(ch.is_open());
    let c = ch
        .basic_publish(&src, "", PublishOptions::default(), BasicProperties::default(), "after")
        .await
        .unwrap();
    assert_eq!(
        within(LIMIT, "confirm after recovery", c).await.unwrap(),
        Confirmed::Ack
    );
    let d = within(LIMIT, "delivery after", consumer.next()).await.unwrap().unwrap();
    assert_eq!(&d.body[..], b"after");
    assert_eq!(consumer.tag().as_str(), "my-tag");
    d.ack().await.unwrap();
    // Acks are queued for the connection task: the counter follows shortly.
    let deadline = Instant::now() + LIMIT;
    while conn.metrics().acked < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let m = conn.metrics();
    assert_eq!(m.recoveries, 1);
    assert!(m.delivered >= 2 && m.acked >= 2 && m.confirmed >= 2, "{m:?}");
    conn.close().await.unwrap();
    assert!(matches!(conn.state().borrow().clone(), ConnectionState::Failed(_)));
}

/// A delivery from before the failure cannot be acked after it: typed error, nothing sent
/// (the channel stays open), and the broker redelivers the message.
#[tokio::test]
async fn stale_delivery_is_refused_and_redelivered() {
    let proxy = Proxy::start(default_addr()).await.unwrap();
    let conn = within(
        LIMIT,
        "connect",
        Connection::connect_with(via(&proxy, "warren-fault-rec-stale")),
    )
    .await
    .unwrap();
    let ch = conn.open_channel().await.unwrap();
    let queue = unique("rec.stale");
    ch.queue_declare(&queue, QueueDeclareOptions::durable(), FieldTable::new())
        .await
        .unwrap();
    ch.confirm_select().await.unwrap();
    let c = ch
        .basic_publish(
            "",
            &queue,
            PublishOptions::default(),
            BasicProperties::default(),
            "once",
        )
        .await
        .unwrap();
    assert_eq!(c.await.unwrap(), Confirmed::Ack);
    let mut consumer = ch
        .basic_consume(&queue, "", ConsumeOptions::default(), FieldTable::new())
        .await
        .unwrap();
    let old = within(LIMIT, "first delivery", consumer.next()).await.unwrap().unwrap();
    assert!(!old.redelivered);
    proxy.cut_all();
    wait_recovered(&conn).await;
    match old.ack().await {
        Err(Error::StaleDelivery { tag }) => assert_eq!(tag, old.delivery_tag.value()),
        other => panic!("ack of a delivery from before the recovery: {other:?}"),
    }
    let again = within(LIMIT, "redelivery", consumer.next()).await.unwrap().unwrap();
    assert!(again.redelivered);
    assert_eq!(&again.body[..], b"once");
    again.ack().await.unwrap();
    assert!(ch.is_open(), "nothing was sent for the stale ack");
    assert!(conn.metrics().stale >= 1);
    ch.queue_delete(&queue, QueueDeleteOptions::default()).await.unwrap();
    conn.close().await.unwrap();
}

/// Publishes in flight when the connection dies resolve as unknown (an error, never a nack);
/// with `republish_unconfirmed` they are sent again and acked.
#[tokio::test]
async fn unconfirmed_publishes_are_unknown_or_republished() {
    for republish in [false, true] {
        let proxy = Proxy::start(default_addr()).await.unwrap();
        let mut config = via(&proxy, "warren-fault-rec-unconfirmed");
        config.recovery.republish_unconfirmed = republish;
        let conn = within(LIMIT, "connect", Connection::connect_with(config))
            .await
            .unwrap();
        let ch = conn.open_channel().await.unwrap();
        let queue = unique("rec.unconfirmed");
        ch.queue_declare(&queue, QueueDeclareOptions::durable(), FieldTable::new())
            .await
            .unwrap();
        ch.confirm_select().await.unwrap();
        // Confirms stop coming back: the broker's side of the proxy is blackholed.
        proxy.set_mode_dir(fault_support::proxy::Dir::Down, Mode::Blackhole);
        let mut confirms = Vec::new();
        for i in 0..20 {
            let props = BasicProperties {
                delivery_mode: Some(2),
                ..Default::default()
            };
            confirms.push(
                ch.basic_publish("", &queue, PublishOptions::default(), props, format!("m{i}"))
                    .await
                    .unwrap(),
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        proxy.heal();
        proxy.cut_all();
        let mut acked = 0;
        let mut unknown = 0;
        for c in confirms {
            match within(LIMIT, "confirm", c).await {
                Ok(Confirmed::Ack) => acked += 1,
                Ok(other) => panic!("never a fake nack: {other:?}"),
                Err(e) => {
                    assert!(e.is_recoverable(), "unknown outcome carries the loss: {e:?}");
                    unknown += 1;
                }
            }
        }
        let m = conn.metrics();
        eprintln!("republish={republish}: acked {acked}, unknown {unknown}, metrics {m:?}");
        if republish {
            assert_eq!((acked, unknown), (20, 0));
            assert_eq!(m.republished, 20);
        } else {
            assert_eq!((acked, unknown), (0, 20));
            assert_eq!(m.unknown, 20);
        }
        // With republish, messages may be there twice (the broker stored the first copy).
        let count = passive_declare(&ch, &queue).await.unwrap().message_count;
        eprintln!("republish={republish}: {count} messages in the queue");
        if republish {
            assert!((20..=40).contains(&count), "{count}");
            // Copies of one message carry the same (generated) message id and body.
            let mut ids = std::collections::HashMap::new();
            while let Some(m) = within(LIMIT, "get", ch.basic_get(&queue, true)).await.unwrap() {
                let id = m
                    .delivery
                    .properties
                    .message_id
                    .clone()
                    .expect("a generated message id");
                assert!(id.as_str().starts_with("warren-"), "{id}");
                let body = m.delivery.body.clone();
                assert_eq!(ids.entry(id).or_insert_with(|| body.clone()), &body);
            }
            assert_eq!(ids.len(), 20, "20 distinct messages, {count} copies");
        }
        ch.queue_delete(&queue, QueueDeleteOptions::default()).await.unwrap();
        conn.close().await.unwrap();
    }
}

/// While recovering, publishes wait (bounded) or fail fast, by configuration.
#[tokio::test]
async fn publishes_while_recovering_wait_or_fail_fast() {
    for wait in [true, false] {
        let proxy = Proxy::start(default_addr()).await.unwrap();
        let mut config = via(&proxy, "warren-fault-rec-publish-wait");
        config.recovery.publish_wait = wait.then_some(Duration::from_secs(20));
        config.recovery.initial_backoff = Duration::from_millis(200);
        let conn = within(LIMIT, "connect", Connection::connect_with(config))
            .await
            .unwrap();
        let ch = conn.open_channel().await.unwrap();
        ch.confirm_select().await.unwrap();
        proxy.set_accepting(false);
        proxy.cut_all();
        wait_state(&conn, "recovering", |s| s.is_recovering()).await;
        let started = Instant::now();
        let publish = async {
            let r = ch
                .basic_publish(
                    "",
                    "warren-no-such-queue",
                    PublishOptions::default(),
                    BasicProperties::default(),
                    "x",
                )
                .await;
            (r, started.elapsed())
        };
        let heal = async {
            tokio::time::sleep(Duration::from_millis(800)).await;
            proxy.set_accepting(true);
        };
        let ((r, took), ()) = tokio::join!(publish, heal);
        if wait {
            let c = r.expect("the publish waited for the recovery");
            assert!(took >= Duration::from_millis(700), "{took:?}");
            assert!(matches!(within(LIMIT, "confirm", c).await, Ok(Confirmed::Ack)));
        } else {
            assert!(matches!(r, Err(Error::NotConnected)), "{r:?}");
            // At once: far from the 800 ms the recovery takes (room for a loaded machine).
            assert!(took < Duration::from_millis(400), "{took:?}");
        }
        wait_recovered(&conn).await;
        conn.close().await.unwrap();
    }
}

/// Closing the connection stops a recovery that is under way.
#[tokio::test]
async fn application_close_stops_recovery() {
    let proxy = Proxy::start(default_addr()).await.unwrap();
    let conn = within(
        LIMIT,
        "connect",
        Connection::connect_with(via(&proxy, "warren-fault-rec-close")),
    )
    .await
    .unwrap();
    proxy.set_accepting(false);
    proxy.cut_all();
    wait_state(
        &conn,
        "a few attempts",
        |s| matches!(s, ConnectionState::Recovering { attempt, .. } if *attempt >= 3),
    )
    .await;
    within(LIMIT, "close while recovering", conn.close())
        .await
        .expect("close while recovering");
    let failed = wait_state(&conn, "failed", |s| matches!(s, ConnectionState::Failed(_))).await;
    eprintln!("after close: {failed:?}");
    let attempts = proxy.stats().accepted;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(proxy.stats().accepted, attempts, "no attempt after the close");
}

/// Attempts are bounded; the backoff grows; the state says failed, and why.
#[tokio::test]
async fn recovery_gives_up_after_max_attempts() {
    let proxy = Proxy::start(default_addr()).await.unwrap();
    let mut config = via(&proxy, "warren-fault-rec-give-up");
    config.recovery.max_attempts = Some(4);
    config.recovery.initial_backoff = Duration::from_millis(100);
    config.recovery.jitter = 0.0;
    let conn = within(LIMIT, "connect", Connection::connect_with(config))
        .await
        .unwrap();
    proxy.set_accepting(false);
    let started = Instant::now();
    proxy.cut_all();
    let state = wait_state(&conn, "failed", |s| matches!(s, ConnectionState::Failed(_))).await;
    let took = started.elapsed();
    eprintln!(
        "gave up after {took:?}: {state:?}, {} attempts at the proxy",
        proxy.stats().refused
    );
    assert_eq!(proxy.stats().refused, 4);
    // 100 + 200 + 400 + 500 (the ceiling) ms of backoff.
    assert!(took >= Duration::from_millis(1100), "{took:?}");
    assert!(matches!(
        conn.closed().await,
        Error::ConnectionLost { .. } | Error::Io(_)
    ));
}

/// The hosts are tried in turn: the first goes down, the recovery starts with the next
/// one (not the one it just lost, issue 11), and comes back to the first when the second
/// goes.
#[tokio::test]
async fn hosts_are_tried_in_turn() {
    let dead = Proxy::start(default_addr()).await.unwrap();
    let alive = Proxy::start(default_addr()).await.unwrap();
    let mut config = via(&dead, "warren-fault-rec-hosts");
    config.recovery.hosts = vec![("127.0.0.1".into(), alive.addr().port())];
    let conn = within(LIMIT, "connect", Connection::connect_with(config))
        .await
        .unwrap();
    assert_eq!(conn.address().port, dead.addr().port());
    dead.set_accepting(false);
    dead.cut_all();
    wait_recovered(&conn).await;
    assert_eq!(alive.live(), 1);
    assert_eq!(dead.stats().refused, 0, "a recovery starts after the address it lost");
    assert_eq!(conn.address().port, alive.addr().port());
    // The second goes too, the first is back: the next round wraps around to it.
    dead.set_accepting(true);
    alive.set_accepting(false);
    alive.cut_all();
    within(LIMIT, "back on the first host", async {
        while dead.live() != 1 || conn.address().port != dead.addr().port() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let ch = conn.open_channel().await.unwrap();
    ch.close().await.unwrap();
    conn.close().await.unwrap();
}

/// A silent peer (blackhole) is detected by the heartbeat within two intervals, then recovered.
#[tokio::test]
async fn blackhole_is_detected_and_recovered() {
    let proxy = Proxy::start(default_addr()).await.unwrap();
    let mut config = via(&proxy, "warren-fault-rec-blackhole");
    config.protocol.heartbeat = Some(1);
    let conn = within(LIMIT, "connect", Connection::connect_with(config))
        .await
        .unwrap();
    let started = Instant::now();
    proxy.blackhole();
    let state = wait_state(&conn, "recovering", |s| s.is_recovering()).await;
    let detected = started.elapsed();
    eprintln!("blackhole detected after {detected:?}: {state:?}");
    assert!(
        detected <= fault_support::detection_bound(Duration::from_secs(1)),
        "{detected:?}"
    );
    proxy.heal();
    proxy.cut_all(); // the old, silent TCP connection
    wait_recovered(&conn).await;
    conn.close().await.unwrap();
}

/// Entities the application deleted are not restored; one entity that cannot be restored is
/// reported and the rest are.
#[tokio::test]
async fn deleted_entities_stay_deleted_and_failures_are_reported() {
    let proxy = Proxy::start(default_addr()).await.unwrap();
    let conn = within(
        LIMIT,
        "connect",
        Connection::connect_with(via(&proxy, "warren-fault-rec-deleted")),
    )
    .await
    .unwrap();
    let ch = conn.open_channel().await.unwrap();
    let gone = unique("rec.gone");
    let clash = unique("rec.clash");
    let kept = unique("rec.kept");
    for q in [&gone, &clash, &kept] {
        ch.queue_declare(q, QueueDeclareOptions::durable(), FieldTable::new())
            .await
            .unwrap();
    }
    ch.queue_delete(&gone, QueueDeleteOptions::default()).await.unwrap();
    // Someone else re-creates `clash` with other arguments: it cannot be re-declared as ours.
    let direct = Connection::connect_with(ConnectionConfig::from_uri(&proxy.uri("")).unwrap())
        .await
        .unwrap();
    let dch = direct.open_channel().await.unwrap();
    dch.queue_delete(&clash, QueueDeleteOptions::default()).await.unwrap();
    let mut args = FieldTable::new();
    args.insert(ShortStr::from_static("x-max-length"), 5);
    dch.queue_declare(&clash, QueueDeclareOptions::durable(), args)
        .await
        .unwrap();
    // The direct connection survives the cut only if it recovers too: it does (default on).
    proxy.cut_all();
    let ConnectionState::Recovered(report) = wait_recovered(&conn).await else {
        unreachable!()
    };
    eprintln!("report: {report:?}");
    assert_eq!(report.failures.len(), 1, "{report:?}");
    assert!(report.failures[0].entity.contains(&clash));
    assert_eq!(
        report.failures[0].error.reply_code(),
        Some(warren::wire::ReplyCode::PRECONDITION_FAILED)
    );
    wait_recovered(&direct).await;
    let ch = conn.open_channel().await.unwrap();
    let r = passive_declare(&ch, &gone).await;
    assert!(r.is_err(), "a deleted queue came back: {r:?}");
    let ch = conn.open_channel().await.unwrap();
    passive_declare(&ch, &kept).await.expect("the other queue was restored");
    for q in [&clash, &kept] {
        let _ = ch.queue_delete(q, QueueDeleteOptions::default()).await;
    }
    conn.close().await.unwrap();
    direct.close().await.unwrap();
}

/// `rabbitmqctl close_connection` (320) is recovered; a close that will not heal is not.
#[tokio::test]
async fn broker_side_closes() {
    node::ensure_started();
    let _node = node::exclusive().await;
    node::ensure_app_running().await;
    let uri = format!("{}/%2f", node::ensure_started());
    let name = unique("rec-broker-close");
    let mut config = ConnectionConfig::from_uri(&uri).unwrap().with_connection_name(&name);
    config.recovery = fast_recovery();
    let conn = within(LIMIT, "connect", Connection::connect_with(config))
        .await
        .unwrap();
    assert_eq!(node::close_named(&name, "fault test").await, 1);
    wait_recovered(&conn).await;
    assert_eq!(conn.metrics().recoveries, 1);

    // A user that is deleted: its connection is closed and every new attempt is refused (403).
    let user = "warren-fault-user";
    node::ctl_lenient(&["delete_user", user]).await;
    node::ctl(&["add_user", user, "secret"]).await;
    node::ctl(&["set_permissions", "-p", "/", user, ".*", ".*", ".*"]).await;
    let mut config = ConnectionConfig::from_uri(&format!("amqp://{user}:secret@127.0.0.1:{}/%2f", node::PORT))
        .unwrap()
        .with_connection_name("warren-fault-rec-user");
    config.recovery = fast_recovery();
    let doomed = within(LIMIT, "connect", Connection::connect_with(config))
        .await
        .unwrap();
    node::ctl(&["delete_user", user]).await;
    let _ = node::close_named("warren-fault-rec-user", "user deleted").await;
    let state = wait_state(&doomed, "failed", |s| matches!(s, ConnectionState::Failed(_))).await;
    eprintln!("deleted user: {state:?}");
    let ConnectionState::Failed(e) = state else {
        unreachable!()
    };
    assert!(!e.is_recoverable(), "{e:?}");
    conn.close().await.unwrap();
}

/// Broker restart (stop_app/start_app): durable queue and its consumer come back.
#[tokio::test]
async fn broker_restart_is_recovered() {
    node::ensure_started();
    let _node = node::exclusive().await;
    node::ensure_app_running().await;
    let uri = format!("{}/%2f", node::ensure_started());
    let mut config = ConnectionConfig::from_uri(&uri)
        .unwrap()
        .with_connection_name("warren-fault-rec-restart");
    config.recovery = fast_recovery();
    let conn = within(LIMIT, "connect", Connection::connect_with(config))
        .await
        .unwrap();
    let ch = conn.open_channel().await.unwrap();
    let queue = unique("rec.restart");
    ch.queue_declare(&queue, QueueDeclareOptions::durable(), FieldTable::new())
        .await
        .unwrap();
    ch.confirm_select().await.unwrap();
    let mut consumer = ch
        .basic_consume(&queue, "", ConsumeOptions::default(), FieldTable::new())
        .await
        .unwrap();
    node::restart_app(Duration::from_millis(500)).await;
    wait_recovered(&conn).await;
    let props = BasicProperties {
        delivery_mode: Some(2),
        ..Default::default()
    };
    let c = ch
        .basic_publish(
            "",
            &queue,
            PublishOptions::default(),
            props,
            Bytes::from_static(b"after restart"),
        )
        .await
        .unwrap();
    assert_eq!(within(LIMIT, "confirm", c).await.unwrap(), Confirmed::Ack);
    let d = within(LIMIT, "delivery", consumer.next()).await.unwrap().unwrap();
    assert_eq!(&d.body[..], b"after restart");
    d.ack().await.unwrap();
    ch.queue_delete(&queue, QueueDeleteOptions::default()).await.unwrap();
    conn.close().await.unwrap();
}

/// Memory alarm: connection.blocked holds publishes (the state says blocked), acks keep
/// flowing, then everything is confirmed; time blocked is counted.
#[tokio::test]
async fn memory_alarm_holds_publishes_and_acks_flow() {
    node::ensure_started();
    let _node = node::exclusive().await;
    node::ensure_app_running().await;
    let uri = format!("{}/%2f", node::ensure_started());
    let mut config = ConnectionConfig::from_uri(&uri)
        .unwrap()
        .with_connection_name("warren-fault-rec-alarm");
    config.recovery = fast_recovery();
    let conn = within(LIMIT, "connect", Connection::connect_with(config.clone()))
        .await
        .unwrap();
    let consumer_conn = within(
        LIMIT,
        "connect",
        Connection::connect_with(config.with_connection_name("warren-fault-rec-alarm-c")),
    )
    .await
    .unwrap();
    let ch = conn.open_channel().await.unwrap();
    let queue = unique("rec.alarm");
    ch.queue_declare(&queue, QueueDeclareOptions::durable(), FieldTable::new())
        .await
        .unwrap();
    ch.confirm_select().await.unwrap();
    for i in 0..50 {
        let c = ch
            .basic_publish(
                "",
                &queue,
                PublishOptions::default(),
                BasicProperties::default(),
                format!("pre{i}"),
            )
            .await
            .unwrap();
        assert!(c.await.unwrap().is_ack());
    }
    // Consumers on both connections: the publishing one (its acks go out while it holds
    // publishes) and a consume-only one (the broker processes its acks during the alarm).
    let cch = conn.open_channel().await.unwrap();
    cch.basic_qos(10, false).await.unwrap();
    let mut same = cch
        .basic_consume(&queue, "", ConsumeOptions::default(), FieldTable::new())
        .await
        .unwrap();
    let och = consumer_conn.open_channel().await.unwrap();
    och.basic_qos(10, false).await.unwrap();
    let mut other = och
        .basic_consume(&queue, "", ConsumeOptions::default(), FieldTable::new())
        .await
        .unwrap();

    node::memory_alarm(true).await;
    let result = async {
        // The first publish during the alarm makes the broker block the connection.
        let first = ch
            .basic_publish(
                "",
                &queue,
                PublishOptions::default(),
                BasicProperties::default(),
                "during",
            )
            .await?;
        wait_state(&conn, "blocked", |s| matches!(s, ConnectionState::Blocked { .. })).await;
        // Publishes wait...
        let held = tokio::time::timeout(
            Duration::from_millis(500),
            ch.basic_publish(
                "",
                &queue,
                PublishOptions::default(),
                BasicProperties::default(),
                "held",
            ),
        )
        .await;
        assert!(held.is_err(), "a publish went through while blocked");
        // ...acks do not: both consumers ack deliveries during the alarm.
        for _ in 0..5 {
            let d = within(LIMIT, "delivery during alarm", same.next()).await.unwrap()?;
            within(Duration::from_secs(2), "ack while blocked", d.ack()).await?;
            let d = within(LIMIT, "delivery during alarm", other.next()).await.unwrap()?;
            within(Duration::from_secs(2), "ack on the other connection", d.ack()).await?;
        }
        Ok::<_, Error>(first)
    }
    .await;
    node::memory_alarm(false).await;
    let first = result.expect("during the alarm");
    wait_state(&conn, "unblocked", |s| {
        matches!(s, ConnectionState::Connected | ConnectionState::Recovered(_))
    })
    .await;
    assert!(within(LIMIT, "confirm after the alarm", first).await.unwrap().is_ack());
    let m = conn.metrics();
    eprintln!("alarm: {m:?}");
    assert!(m.time_blocked >= Duration::from_millis(400), "{m:?}");
    assert!(m.acked >= 5);
    drop(same);
    drop(other);
    ch.queue_delete(&queue, QueueDeleteOptions::default()).await.unwrap();
    conn.close().await.unwrap();
    consumer_conn.close().await.unwrap();
}

/// A link that delivers one byte at a time, then one that delays every chunk: the handshake,
/// confirms and deliveries still work, and a cut in the middle is recovered.
#[tokio::test]
async fn trickled_and_delayed_links_work_and_recover() {
    let proxy = Proxy::start(default_addr()).await.unwrap();
    proxy.set_mode(Mode::Trickle(Duration::ZERO));
    let conn = within(
        LIMIT,
        "connect one byte at a time",
        Connection::connect_with(via(&proxy, "warren-fault-rec-trickle")),
    )
    .await
    .unwrap();
    let ch = conn.open_channel().await.unwrap();
    let queue = unique("rec.trickle");
    ch.queue_declare(
        &queue,
        QueueDeclareOptions {
            durable: true,
            auto_delete: true,
            ..Default::default()
        },
        FieldTable::new(),
    )
    .await
    .unwrap();
    ch.confirm_select().await.unwrap();
    let mut consumer = ch
        .basic_consume(&queue, "", ConsumeOptions::default(), FieldTable::new())
        .await
        .unwrap();
    let body = Bytes::from(vec![7u8; 3000]);
    for mode in [Mode::Trickle(Duration::ZERO), Mode::Delay(Duration::from_millis(50))] {
        proxy.set_mode(mode);
        let c = ch
            .basic_publish(
                "",
                &queue,
                PublishOptions::default(),
                BasicProperties::default(),
                body.clone(),
            )
            .await
            .unwrap();
        assert_eq!(within(LIMIT, "confirm", c).await.unwrap(), Confirmed::Ack, "{mode:?}");
        let d = within(LIMIT, "delivery", consumer.next()).await.unwrap().unwrap();
        assert_eq!(d.body, body);
        d.ack().await.unwrap();
        let before = conn.metrics().recoveries;
        proxy.cut_all();
        within(LIMIT, "recovery", async {
            while conn.metrics().recoveries == before {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
    }
    let m = conn.metrics();
    assert_eq!(m.recoveries, 2, "{m:?}");
    proxy.heal();
    conn.close().await.unwrap();
}

/// An auto-delete queue whose last consumer the application cancelled is gone from the
/// broker, and recovery does not bring it back.
#[tokio::test]
async fn cancelled_auto_delete_queue_is_not_restored() {
    let proxy = Proxy::start(default_addr()).await.unwrap();
    let conn = within(
        LIMIT,
        "connect",
        Connection::connect_with(via(&proxy, "warren-fault-rec-autodelete")),
    )
    .await
    .unwrap();
    let ch = conn.open_channel().await.unwrap();
    let queue = unique("rec.autodelete");
    ch.queue_declare(
        &queue,
        QueueDeclareOptions {
            durable: true,
            auto_delete: true,
            ..Default::default()
        },
        FieldTable::new(),
    )
    .await
    .unwrap();
    let consumer = ch
        .basic_consume(&queue, "", ConsumeOptions::default(), FieldTable::new())
        .await
        .unwrap();
    consumer.cancel().await.unwrap();
    proxy.cut_all();
    let ConnectionState::Recovered(report) = wait_recovered(&conn).await else {
        unreachable!()
    };
    assert!(report.failures.is_empty(), "{report:?}");
    let probe = conn.open_channel().await.unwrap();
    let r = passive_declare(&probe, &queue).await;
    assert!(r.is_err(), "the auto-delete queue came back: {r:?}");
    conn.close().await.unwrap();
}

/// The broker's VM is killed (SIGKILL, no clean shutdown) and started again: every message
/// whose publish was acked is in the durable queue.
///
/// The kill comes once the confirmed messages are on disk: a kill in the middle of a write
/// can leave RabbitMQ 3.10.8's classic queue index with a segment file it cannot read back
/// (`function_clause` in `rabbit_queue_index:parse_segment_entries`, seen here on
/// 2026-11-25), and then the node does not boot at all. Publishes cut by a lost connection
/// are covered by the cuts of `fault_scenario`.
///
/// The queue is declared on a connection of its own, closed before the kill, so the
/// publishing connection's recovery does not declare it again. Once (CI, 2026-12-03) the
/// node came back without the queue's definition ("Recovering 0 queues of type
/// rabbit_classic_queue"), and the recovery's re-declare had made an empty queue that looked
/// like 20 000 lost messages. Now a queue the broker forgot is a 404 and is told apart: the
/// run is made again once with a new queue, and a second time fails the test. A client
/// cannot delete a durable queue by losing its connection, so this excuses nothing of ours.
#[tokio::test]
async fn broker_kill_loses_no_confirmed_message() {
    node::ensure_started();
    let _node = node::exclusive().await;
    node::ensure_app_running().await;
    let uri = format!("{}/%2f", node::ensure_started());
    for attempt in 1..=2 {
        match kill_run(&uri).await {
            Ok(()) => return,
            Err(forgotten) if attempt == 1 => eprintln!("KILL: {forgotten}; once more with a new queue"),
            Err(forgotten) => panic!("KILL: {forgotten}, twice in a row"),
        }
    }
}

/// One run of [`broker_kill_loses_no_confirmed_message`]: `Err` when the broker came back
/// without the queue's definition (what its log said), after asserting nothing was lost
/// otherwise.
async fn kill_run(uri: &str) -> Result<(), String> {
    let queue = unique("rec.kill");
    let setup = within(LIMIT, "connect", Connection::connect(uri)).await.unwrap();
    let ch = setup.open_channel().await.unwrap();
    ch.queue_declare(&queue, QueueDeclareOptions::durable(), FieldTable::new())
        .await
        .unwrap();
    setup.close().await.unwrap();

    let mut config = ConnectionConfig::from_uri(uri)
        .unwrap()
        .with_connection_name("warren-fault-rec-kill");
    config.recovery = fast_recovery();
    config.recovery.attempt_timeout = Duration::from_secs(3);
    let conn = within(LIMIT, "connect", Connection::connect_with(config))
        .await
        .unwrap();
    let ch = conn.open_channel().await.unwrap();
    ch.confirm_select().await.unwrap();
    let mut confirms = std::collections::VecDeque::new();
    let mut acked = Vec::new();
    for i in 0u32..20_000 {
        let props = BasicProperties {
            delivery_mode: Some(2),
            ..Default::default()
        };
        let c = ch
            .basic_publish("", &queue, PublishOptions::default(), props, i.to_be_bytes().to_vec())
            .await
            .unwrap();
        confirms.push_back((i, c));
        while confirms.len() > 1000 || (i == 19_999 && !confirms.is_empty()) {
            let (n, c) = confirms.pop_front().unwrap();
            assert_eq!(within(LIMIT, "confirm", c).await.unwrap(), Confirmed::Ack);
            acked.push(n);
        }
    }
    assert_eq!(acked.len(), 20_000);
    node::kill_and_start().await;
    wait_state(&conn, "recovered", |s| matches!(s, ConnectionState::Recovered(_))).await;
    let count = match passive_declare(&ch, &queue).await {
        Ok(info) => info.message_count,
        Err(Error::ChannelClosed {
            code: warren::wire::ReplyCode::NOT_FOUND,
            ..
        }) => {
            let said = node::log_lines_containing("queues of type rabbit_classic_queue").await;
            conn.close().await.unwrap();
            return Err(format!(
                "the node came back without the durable queue {queue} (404); its log: {}",
                said.last().map_or("nothing", String::as_str)
            ));
        }
        Err(e) => panic!("passive declare after the restart: {e}"),
    };
    let mut present = std::collections::HashSet::new();
    while let Some(m) = within(LIMIT, "get", ch.basic_get(&queue, true)).await.unwrap() {
        present.insert(u32::from_be_bytes(m.delivery.body[..4].try_into().unwrap()));
    }
    let lost = acked.iter().filter(|i| !present.contains(i)).count();
    eprintln!(
        "KILL: acked {}, {count} in the queue after the restart, lost {lost}",
        acked.len()
    );
    assert_eq!(lost, 0, "confirmed messages lost by a broker kill");
    ch.queue_delete(&queue, QueueDeleteOptions::default()).await.unwrap();
    conn.close().await.unwrap();
    Ok(())
}
