//! connection.blocked with a scripted broker (no RabbitMQ needed, so a memory alarm
//! never disturbs other tests): while blocked, publishes wait (or time out with
//! `Error::Blocked`) and acks still go out; after unblocked the held publish is sent.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use warren::Error;
use warren::client::*;
use warren::wire::{
    BasicConsumeOk, BasicDeliver, BasicProperties, ChannelOpenOk, ConfirmSelectOk, ConnectionBlocked,
    ConnectionCloseOk, ConnectionOpenOk, ConnectionStart, ConnectionTune, ConnectionUnblocked, FieldTable, Frame,
    Method, ShortStr, encode_content, encode_method,
};

/// One side of a scripted broker connection.
struct Peer {
    sock: TcpStream,
    buf: BytesMut,
}

impl Peer {
    async fn frame(&mut self) -> Frame {
        loop {
            if let Some(f) = Frame::parse(&mut self.buf, 0).expect("client sent a bad frame") {
                return f;
            }
            let n = tokio::time::timeout(Duration::from_secs(10), self.sock.read_buf(&mut self.buf))
                .await
                .expect("client went quiet")
                .unwrap();
            assert!(n > 0, "client closed the connection");
        }
    }

    async fn method(&mut self) -> (u16, Method) {
        loop {
            match self.frame().await {
                Frame::Method { channel, method } => return (channel, method),
                Frame::Heartbeat => continue,
                other => panic!("expected a method, got {other:?}"),
            }
        }
    }

    /// True if a frame arrives within `wait`.
    async fn quiet_for(&mut self, wait: Duration) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        tokio::time::timeout(wait, self.sock.read_buf(&mut self.buf))
            .await
            .is_err()
    }

    async fn send(&mut self, channel: u16, method: Method) {
        let mut out = BytesMut::new();
        encode_method(channel, &method, &mut out);
        self.sock.write_all(&out).await.unwrap();
    }

    /// Expects `connection.close` next and answers `close-ok`.
    async fn serve_close(&mut self) {
        let (_, m) = self.method().await;
        assert!(matches!(m, Method::ConnectionClose(_)), "{m:?}");
        self.send(0, Method::ConnectionCloseOk(ConnectionCloseOk {})).await;
    }

    /// Accepts a client and runs the handshake and one `channel.open`.
    async fn accept(listener: &TcpListener) -> Peer {
        let (sock, _) = listener.accept().await.unwrap();
        let mut peer = Peer {
            sock,
            buf: BytesMut::new(),
        };
        let mut header = [0u8; 8];
        peer.sock.read_exact(&mut header).await.unwrap();
        assert_eq!(&header, b"AMQP\x00\x00\x09\x01");
        let start = ConnectionStart {
            version_major: 0,
            version_minor: 9,
            server_properties: FieldTable::new(),
            mechanisms: Bytes::from_static(b"PLAIN AMQPLAIN"),
            locales: Bytes::from_static(b"en_US"),
        };
        peer.send(0, Method::ConnectionStart(start)).await;
        assert!(matches!(peer.method().await.1, Method::ConnectionStartOk(_)));
        peer.send(
            0,
            Method::ConnectionTune(ConnectionTune {
                channel_max: 16,
                frame_max: 131072,
                heartbeat: 0,
            }),
        )
        .await;
        assert!(matches!(peer.method().await.1, Method::ConnectionTuneOk(_)));
        assert!(matches!(peer.method().await.1, Method::ConnectionOpen(_)));
        peer.send(0, Method::ConnectionOpenOk(ConnectionOpenOk {})).await;
        peer
    }
}

/// A client of the scripted broker on `port`.
fn config(port: u16) -> ConnectionConfig {
    ConnectionConfig {
        host: "127.0.0.1".into(),
        port,
        ..Default::default()
    }
}

#[tokio::test]
async fn blocked_holds_publishes_but_not_acks() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let broker = tokio::spawn(async move {
        let mut peer = Peer::accept(&listener).await;
        let (ch, m) = peer.method().await;
        assert!(matches!(m, Method::ChannelOpen(_)));
        peer.send(ch, Method::ChannelOpenOk(ChannelOpenOk {})).await;
        // basic.consume → consume-ok, then one delivery.
        let (_, m) = peer.method().await;
        assert!(matches!(m, Method::BasicConsume(_)), "{m:?}");
        peer.send(
            ch,
            Method::BasicConsumeOk(BasicConsumeOk {
                consumer_tag: ShortStr::from_static("ctag"),
            }),
        )
        .await;
        let mut out = BytesMut::new();
        let deliver = BasicDeliver {
            consumer_tag: ShortStr::from_static("ctag"),
            delivery_tag: 1,
            redelivered: false,
            exchange: ShortStr::EMPTY,
            routing_key: ShortStr::from_static("q"),
        };
        encode_method(ch, &Method::BasicDeliver(deliver), &mut out);
        encode_content(ch, &BasicProperties::default(), b"work", 131072, &mut out);
        peer.sock.write_all(&out).await.unwrap();
        // Block publishing.
        peer.send(
            0,
            Method::ConnectionBlocked(ConnectionBlocked {
                reason: ShortStr::from_static("low on memory"),
            }),
        )
        .await;
        // The ack arrives while blocked; no publish does.
        let (_, m) = peer.method().await;
        match m {
            Method::BasicAck(a) => assert_eq!(a.delivery_tag, 1),
            other => panic!("expected the ack, got {other:?}"),
        }
        assert!(
            peer.quiet_for(Duration::from_millis(600)).await,
            "a publish went out while blocked"
        );
        peer.send(0, Method::ConnectionUnblocked(ConnectionUnblocked {})).await;
        // Now the held publish arrives: method, header, body.
        let (_, m) = peer.method().await;
        match m {
            Method::BasicPublish(p) => assert_eq!(p.routing_key, "after-unblock"),
            other => panic!("expected the held publish, got {other:?}"),
        }
        assert!(matches!(peer.frame().await, Frame::Header { .. }));
        match peer.frame().await {
            Frame::Body { payload, .. } => assert_eq!(&payload[..], b"held"),
            other => panic!("{other:?}"),
        }
        // Graceful close.
        peer.serve_close().await;
    });

    let mut config = config(port);
    config.blocked_timeout = None;
    let conn = Connection::connect_with(config).await.unwrap();
    let mut blocked = conn.blocked_watch();
    let ch = conn.open_channel().await.unwrap();
    let mut consumer = ch
        .basic_consume("q", "", ConsumeOptions::default(), FieldTable::new())
        .await
        .unwrap();
    let d = consumer.next().await.unwrap().unwrap();
    assert_eq!(&d.body[..], b"work");
    tokio::time::timeout(Duration::from_secs(5), blocked.wait_for(|b| *b))
        .await
        .unwrap()
        .unwrap();
    assert!(conn.is_blocked());
    // Start a publish: it waits.
    let publisher = tokio::spawn({
        let ch = ch.clone();
        async move {
            ch.basic_publish(
                "",
                "after-unblock",
                PublishOptions::default(),
                BasicProperties::default(),
                "held",
            )
            .await
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!publisher.is_finished(), "publish did not wait while blocked");
    d.ack().await.unwrap();
    let c = tokio::time::timeout(Duration::from_secs(5), publisher)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(c.await.unwrap(), Confirmed::Sent);
    assert!(!conn.is_blocked());
    conn.close().await.unwrap();
    broker.await.unwrap();
}

#[tokio::test]
async fn blocked_timeout_fails_the_publish() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let broker = tokio::spawn(async move {
        let mut peer = Peer::accept(&listener).await;
        let (ch, _) = peer.method().await;
        peer.send(ch, Method::ChannelOpenOk(ChannelOpenOk {})).await;
        peer.send(
            0,
            Method::ConnectionBlocked(ConnectionBlocked {
                reason: ShortStr::from_static("disk"),
            }),
        )
        .await;
        // Nothing but the close comes.
        let (_, m) = peer.method().await;
        assert!(
            matches!(m, Method::ConnectionClose(_)),
            "a publish was sent while blocked: {m:?}"
        );
        peer.send(0, Method::ConnectionCloseOk(ConnectionCloseOk {})).await;
    });
    let mut config = config(port);
    config.blocked_timeout = Some(Duration::from_millis(200));
    let conn = Connection::connect_with(config).await.unwrap();
    let ch = conn.open_channel().await.unwrap();
    let mut blocked = conn.blocked_watch();
    tokio::time::timeout(Duration::from_secs(5), blocked.wait_for(|b| *b))
        .await
        .unwrap()
        .unwrap();
    let started = std::time::Instant::now();
    let r = ch
        .basic_publish("", "q", PublishOptions::default(), BasicProperties::default(), "x")
        .await;
    assert!(matches!(r, Err(Error::Blocked)), "{r:?}");
    assert!(started.elapsed() >= Duration::from_millis(150));
    conn.close().await.unwrap();
    broker.await.unwrap();
}

/// Whoever `blocked_watch` wakes reads the state that goes with it: `Blocked` while
/// blocked, `Connected` once unblocked (the state is set before the flag).
#[tokio::test]
async fn the_blocked_flag_and_the_state_never_disagree() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (go_on, mut proceed) = tokio::sync::mpsc::channel::<()>(1);
    let broker = tokio::spawn(async move {
        let mut peer = Peer::accept(&listener).await;
        for _ in 0..20 {
            let blocked = ConnectionBlocked {
                reason: ShortStr::from_static("low on memory"),
            };
            peer.send(0, Method::ConnectionBlocked(blocked)).await;
            proceed.recv().await.unwrap();
            peer.send(0, Method::ConnectionUnblocked(ConnectionUnblocked {})).await;
            proceed.recv().await.unwrap();
        }
        peer.serve_close().await;
    });
    let conn = Connection::connect_with(config(port)).await.unwrap();
    let mut blocked = conn.blocked_watch();
    for round in 0..20 {
        tokio::time::timeout(Duration::from_secs(5), blocked.wait_for(|b| *b))
            .await
            .unwrap()
            .unwrap();
        let state = conn.state().borrow().clone();
        assert!(
            matches!(state, ConnectionState::Blocked { .. }),
            "round {round}: flag blocked, state {state:?}"
        );
        go_on.send(()).await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), blocked.wait_for(|b| !*b))
            .await
            .unwrap()
            .unwrap();
        let state = conn.state().borrow().clone();
        assert_eq!(state, ConnectionState::Connected, "round {round}: flag unblocked");
        go_on.send(()).await.unwrap();
    }
    conn.close().await.unwrap();
    broker.await.unwrap();
}

/// RabbitMQ blocks a connection once it publishes during an alarm and then stops reading
/// it: the publish that triggered the block is never confirmed until the alarm clears.
/// `basic_publish_within` bounds that whole wait, and says the outcome is unknown.
#[tokio::test]
async fn a_publish_within_a_timeout_gives_up_on_a_confirm_that_a_block_holds_back() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let broker = tokio::spawn(async move {
        let mut peer = Peer::accept(&listener).await;
        let (ch, m) = peer.method().await;
        assert!(matches!(m, Method::ChannelOpen(_)));
        peer.send(ch, Method::ChannelOpenOk(ChannelOpenOk {})).await;
        let (_, m) = peer.method().await;
        assert!(matches!(m, Method::ConfirmSelect(_)), "{m:?}");
        peer.send(ch, Method::ConfirmSelectOk(ConfirmSelectOk {})).await;
        let (_, m) = peer.method().await;
        assert!(matches!(m, Method::BasicPublish(_)), "{m:?}");
        // The alarm: block, and never confirm.
        let blocked = ConnectionBlocked {
            reason: ShortStr::from_static("low on memory"),
        };
        peer.send(0, Method::ConnectionBlocked(blocked)).await;
        loop {
            match peer.frame().await {
                Frame::Method {
                    method: Method::ConnectionClose(_),
                    ..
                } => break,
                _ => continue,
            }
        }
        peer.send(0, Method::ConnectionCloseOk(ConnectionCloseOk {})).await;
    });
    let conn = Connection::connect_with(config(port)).await.unwrap();
    let ch = conn.open_channel().await.unwrap();
    ch.confirm_select().await.unwrap();
    let started = std::time::Instant::now();
    let r = ch
        .basic_publish_within(
            Duration::from_millis(300),
            "",
            "q",
            PublishOptions::default(),
            BasicProperties::default(),
            "order 42",
        )
        .await;
    assert_eq!(r, Err(Error::Timeout { operation: "publish" }));
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(started.elapsed() < Duration::from_secs(5));
    // A later publish, while blocked, is bounded the same way before it is even sent.
    let r = ch
        .basic_publish_within(
            Duration::from_millis(100),
            "",
            "q",
            PublishOptions::default(),
            BasicProperties::default(),
            "order 43",
        )
        .await;
    assert_eq!(r, Err(Error::Timeout { operation: "publish" }));
    conn.close().await.unwrap();
    broker.await.unwrap();
}
