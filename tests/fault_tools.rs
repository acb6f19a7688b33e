//! The fault-injection tools, tested on their own: the TCP proxy (against an echo server)
//! and the private broker node helpers (against a real client connection).

mod fault_support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use fault_support::node;
use fault_support::proxy::{Dir, Mode, Proxy};
use fault_support::{unique, within};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use warren::Error;
use warren::client::{Connection, ConnectionConfig, RecoveryConfig};
use warren::error::Initiator;
use warren::wire::ReplyCode;

const LIMIT: Duration = Duration::from_secs(30);

async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if s.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    addr
}

async fn roundtrip(c: &mut TcpStream, msg: &[u8]) -> Vec<u8> {
    c.write_all(msg).await.unwrap();
    let mut got = vec![0u8; msg.len()];
    within(Duration::from_secs(5), "echo", c.read_exact(&mut got))
        .await
        .unwrap();
    got
}

#[tokio::test]
async fn proxy_forwards_delays_trickles_and_blackholes() {
    let proxy = Proxy::start(echo_server().await).await.unwrap();
    let mut c = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(roundtrip(&mut c, b"hello").await, b"hello");

    proxy.set_mode(Mode::Delay(Duration::from_millis(150)));
    let t = Instant::now();
    assert_eq!(roundtrip(&mut c, b"slow").await, b"slow");
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "two delayed hops: {:?}",
        t.elapsed()
    );

    proxy.set_mode(Mode::Trickle(Duration::from_millis(1)));
    c.write_all(&[7u8; 64]).await.unwrap();
    let (mut got, mut reads) = (0, 0);
    while got < 64 {
        let mut buf = [0u8; 64];
        got += within(Duration::from_secs(5), "trickle", c.read(&mut buf))
            .await
            .unwrap();
        reads += 1;
    }
    assert!(reads >= 32, "trickled bytes should arrive in many reads, got {reads}");

    proxy.blackhole();
    c.write_all(b"gone").await.unwrap();
    let mut buf = [0u8; 4];
    assert!(
        tokio::time::timeout(Duration::from_millis(300), c.read(&mut buf))
            .await
            .is_err(),
        "blackhole leaked"
    );
    assert_eq!(proxy.stats().bytes_dropped, 4);
    proxy.heal();
    assert_eq!(roundtrip(&mut c, b"back").await, b"back");

    // One direction only: requests pass, replies vanish.
    proxy.set_mode_dir(Dir::Down, Mode::Blackhole);
    c.write_all(b"half").await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(300), c.read(&mut buf))
            .await
            .is_err()
    );
    proxy.heal();
}

#[tokio::test]
async fn proxy_cut_resets_every_connection_and_refuses_while_down() {
    let proxy = Proxy::start(echo_server().await).await.unwrap();
    let mut conns = Vec::new();
    for _ in 0..5 {
        let mut c = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(roundtrip(&mut c, b"x").await, b"x");
        conns.push(c);
    }
    assert!(proxy.wait_live(5, Duration::from_secs(2)).await);
    assert_eq!(proxy.cut_all(), 5);
    for c in &mut conns {
        let mut buf = [0u8; 1];
        let r = within(Duration::from_secs(2), "reset", c.read(&mut buf)).await;
        assert!(r.is_err(), "a cut is a reset, not a clean close: {r:?}");
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(proxy.live(), 0);

    proxy.set_accepting(false);
    if let Ok(mut c) = TcpStream::connect(proxy.addr()).await {
        let mut buf = [0u8; 1];
        let r = within(Duration::from_secs(2), "refused", c.read(&mut buf)).await;
        assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
    }
    proxy.set_accepting(true);
    let mut c = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(roundtrip(&mut c, b"up").await, b"up");
    let s = proxy.stats();
    assert_eq!((s.cut, s.refused), (5, 1), "{s:?}");
}

fn node_config(proxy: Option<&Proxy>, name: &str) -> ConnectionConfig {
    let uri = match proxy {
        Some(p) => p.uri(""),
        None => format!("{}/%2f", node::ensure_started()),
    };
    let mut config = ConnectionConfig::from_uri(&uri).unwrap().with_connection_name(name);
    config.connect_timeout = Duration::from_secs(10);
    // These tests check what each fault does to a connection, so no recovery.
    config.recovery = RecoveryConfig::disabled();
    config
}

#[tokio::test]
async fn node_faults_reach_the_client() {
    node::ensure_started();
    let _guard = node::exclusive().await;
    node::ensure_app_running().await;

    // Through the proxy: a cut is a lost connection.
    let proxy = Proxy::start(node::addr()).await.unwrap();
    let conn = within(
        LIMIT,
        "connect",
        Connection::connect_with(node_config(Some(&proxy), "warren-fault-tools-a")),
    )
    .await
    .unwrap();
    proxy.cut_all();
    let e = within(LIMIT, "closed after cut", conn.closed()).await;
    assert!(matches!(e, Error::ConnectionLost { .. }), "{e:?}");

    // Through the proxy, blackholed, heartbeat 1 s: detected within two intervals.
    let mut config = node_config(Some(&proxy), "warren-fault-tools-b");
    config.protocol.heartbeat = Some(1);
    let conn = within(LIMIT, "connect", Connection::connect_with(config))
        .await
        .unwrap();
    proxy.blackhole();
    let t = Instant::now();
    let e = within(LIMIT, "heartbeat timeout", conn.closed()).await;
    assert!(matches!(e, Error::ConnectionLost { .. }), "{e:?}");
    assert!(
        t.elapsed() <= fault_support::detection_bound(Duration::from_secs(1)),
        "blackhole detected after {:?}",
        t.elapsed()
    );
    proxy.heal();

    // close_connection by name: 320 from the server.
    let name = unique("tools-close");
    let conn = within(LIMIT, "connect", Connection::connect_with(node_config(None, &name)))
        .await
        .unwrap();
    assert_eq!(node::close_named(&name, "fault test").await, 1);
    match within(LIMIT, "closed by the broker", conn.closed()).await {
        Error::ConnectionClosed {
            by: Initiator::Server,
            code,
            text,
            ..
        } => {
            assert_eq!(code, ReplyCode::CONNECTION_FORCED);
            assert!(text.contains("fault test"), "{text}");
        }
        other => panic!("{other:?}"),
    }

    // Memory alarm: connection.blocked, then unblocked.
    let conn = within(
        LIMIT,
        "connect",
        Connection::connect_with(node_config(None, "warren-fault-tools-c")),
    )
    .await
    .unwrap();
    let mut blocked = conn.blocked_watch();
    let ch = conn.open_channel().await.unwrap();
    node::memory_alarm(true).await;
    // RabbitMQ blocks a connection when it publishes during an alarm.
    let _ = ch
        .basic_publish("", "no-such-queue", Default::default(), Default::default(), "x")
        .await;
    let r = tokio::time::timeout(LIMIT, blocked.wait_for(|b| *b))
        .await
        .map(|r| r.map(|b| *b));
    node::memory_alarm(false).await;
    assert!(matches!(r, Ok(Ok(true))), "blocked watch: {r:?}");
    within(LIMIT, "unblocked", blocked.wait_for(|b| !*b)).await.unwrap();
    within(LIMIT, "close", conn.close()).await.unwrap();

    // stop_app: the broker closes connections (320 shutdown) and refuses new ones; start_app.
    let conn = within(
        LIMIT,
        "connect",
        Connection::connect_with(node_config(None, "warren-fault-tools-d")),
    )
    .await
    .unwrap();
    node::stop_app().await;
    let e = within(LIMIT, "closed by stop_app", conn.closed()).await;
    let refused = Connection::connect_with(node_config(None, "warren-fault-tools-e")).await;
    node::start_app().await;
    assert!(e.is_recoverable(), "{e:?}");
    assert!(refused.is_err(), "connect while the app is stopped");
    let conn = within(
        LIMIT,
        "connect after start_app",
        Connection::connect_with(node_config(None, "warren-fault-tools-f")),
    )
    .await
    .unwrap();
    within(LIMIT, "close", conn.close()).await.unwrap();
}

#[tokio::test]
async fn close_by_name_on_the_default_node_closes_only_ours() {
    let url = std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let name = unique("tools-default");
    let mut config = ConnectionConfig::from_uri(&url).unwrap().with_connection_name(&name);
    config.recovery = RecoveryConfig::disabled();
    let conn = within(LIMIT, "connect", Connection::connect_with(config.clone()))
        .await
        .unwrap();
    let other = within(
        LIMIT,
        "connect",
        Connection::connect_with(config.with_connection_name(unique("tools-other"))),
    )
    .await
    .unwrap();
    assert_eq!(node::close_named_default(&name, "fault test").await, 1);
    let e = within(LIMIT, "closed", conn.closed()).await;
    assert_eq!(e.reply_code(), Some(ReplyCode::CONNECTION_FORCED), "{e:?}");
    assert!(other.is_open());
    other.close().await.unwrap();
}

/// What a memory alarm does, as RabbitMQ really does it: the connection that publishes is
/// blocked (and its publish is not confirmed until the alarm clears), while a connection
/// that only consumes keeps receiving and acking. So publish and consume on separate
/// connections (README).
#[tokio::test]
async fn a_consumer_only_connection_acks_through_an_alarm_that_blocks_a_publisher() {
    use warren::client::{ConsumeOptions, PublishOptions, QueueDeclareOptions, QueueDeleteOptions};
    use warren::wire::{BasicProperties, FieldTable};

    node::ensure_started();
    let _guard = node::exclusive().await;
    node::ensure_app_running().await;
    let connect = |name: &'static str| Connection::connect_with(node_config(None, name));
    let publisher = within(LIMIT, "connect publisher", connect("warren-alarm-publisher"))
        .await
        .unwrap();
    let consumer = within(LIMIT, "connect consumer", connect("warren-alarm-consumer"))
        .await
        .unwrap();
    let queue = unique("alarm");
    let cch = consumer.open_channel().await.unwrap();
    cch.queue_declare(&queue, QueueDeclareOptions::durable(), FieldTable::new())
        .await
        .unwrap();
    let pch = publisher.open_channel().await.unwrap();
    pch.confirm_select().await.unwrap();
    for i in 0..5 {
        let c = pch
            .basic_publish(
                "",
                &queue,
                PublishOptions::default(),
                BasicProperties::default(),
                format!("m{i}"),
            )
            .await
            .unwrap();
        assert!(within(LIMIT, "confirm", c).await.unwrap().is_ack());
    }
    cch.basic_qos(10, false).await.unwrap();

    /// Clears the alarm even when an assertion fails while it is on: the node is shared.
    struct AlarmOff;
    impl Drop for AlarmOff {
        fn drop(&mut self) {
            node::run(&["alarm", "off"]);
        }
    }
    let _alarm_off = AlarmOff;
    // Returns once the node's alarm list says so.
    node::memory_alarm(true).await;
    let outcome = async {
        // The publish that makes RabbitMQ block the publisher: no confirm while the alarm lasts.
        let r = pch
            .basic_publish_within(
                Duration::from_millis(1500),
                "",
                &queue,
                PublishOptions::default(),
                BasicProperties::default(),
                "during the alarm",
            )
            .await;
        assert_eq!(r, Err(Error::Timeout { operation: "publish" }), "outcome unknown");
        within(LIMIT, "publisher blocked", publisher.blocked_watch().wait_for(|b| *b))
            .await
            .unwrap();
        // The consumer-only connection: deliveries come, acks reach the broker.
        let mut deliveries = cch
            .basic_consume(&queue, "", ConsumeOptions::default(), FieldTable::new())
            .await
            .unwrap();
        for _ in 0..5 {
            let d = within(LIMIT, "delivery during the alarm", deliveries.next())
                .await
                .unwrap()
                .unwrap();
            d.ack().await.unwrap();
        }
        deliveries.cancel().await.unwrap();
        cch.close().await.unwrap();
        // Had the acks not reached the broker, closing the channel would have requeued them.
        let check = consumer.open_channel().await.unwrap();
        let left = check.basic_get(&queue, true).await.unwrap();
        assert!(left.is_none(), "the acks went through the alarm");
        assert!(!consumer.is_blocked(), "a consumer-only connection is not blocked");
        check
    };
    let check = within(LIMIT, "the alarm scenario", outcome).await;
    node::memory_alarm(false).await;
    within(LIMIT, "unblocked", publisher.blocked_watch().wait_for(|b| !*b))
        .await
        .unwrap();
    check.queue_delete(&queue, QueueDeleteOptions::default()).await.unwrap();
    within(LIMIT, "close", publisher.close()).await.unwrap();
    within(LIMIT, "close", consumer.close()).await.unwrap();
}
