//! RabbitMQ 4.3 behaviour end to end, with a scripted broker (the local broker is 3.10):
//! - a consumer that keeps a delivery unacknowledged past its consumer timeout is
//!   cancelled with `basic.cancel(tag, nowait)` (rabbitmq-server `consumer_timeouts.md`,
//!   "Changes from v4.2.x"); 4.3.7 announces `accept_consumer_cancel_ok` and takes a
//!   `cancel-ok` for it (4.3.7 release notes). The stream ends with
//!   `CancelReason::AckTimeout`, a deleted queue's cancel with `QueueDeleted`;
//! - a transient non-exclusive queue is refused by closing the connection with 541
//!   INTERNAL_ERROR "Feature `transient_nonexcl_queues` is deprecated..." (4.3.0 release
//!   notes, "Deprecated Features are Now Disabled by Default"; the text as reported in
//!   rabbitmq-dotnet-client#1931).

mod fault_support;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use fault_support::fake_broker::{Peer, tune};
use tokio::net::TcpListener;
use warren::Error;
use warren::client::*;
use warren::error::{CancelReason, DeprecatedFeature};
use warren::wire::{
    BasicCancel, BasicConsumeOk, BasicDeliver, BasicProperties, ConnectionClose, ConnectionStart, FieldTable, Method,
    ShortStr, encode_content, encode_method,
};

/// Accepts a client as RabbitMQ 4.3.7 would (announcing `accept_consumer_cancel_ok`)
/// and opens its first channel.
async fn accept(listener: &TcpListener) -> (Peer, u16) {
    let (sock, _) = listener.accept().await.unwrap();
    let mut peer = Peer::from_stream(sock);
    let capabilities = FieldTable::new()
        .with("consumer_cancel_notify", true)
        .with("accept_consumer_cancel_ok", true);
    let start = ConnectionStart {
        version_major: 0,
        version_minor: 9,
        server_properties: FieldTable::new()
            .with("product", "RabbitMQ")
            .with("version", "4.3.7")
            .with("capabilities", capabilities),
        mechanisms: Bytes::from_static(b"PLAIN"),
        locales: Bytes::from_static(b"en_US"),
    };
    peer.handshake_with(start, tune(16, 131072, 0)).await;
    let ch = peer.accept_channel().await;
    (peer, ch)
}

/// What the scripted 4.3 broker does besides the generic fake broker.
trait Rabbit43 {
    /// A `basic.deliver` for `consumer_tag` with a small body.
    async fn deliver(&mut self, channel: u16, consumer_tag: &str, delivery_tag: u64);
    /// Answers a `basic.consume` with `consume-ok` for `tag`.
    async fn consume_ok(&mut self, tag: &str);
    /// The server's `basic.cancel(tag, nowait)`.
    async fn cancel(&mut self, ch: u16, tag: &str);
}

impl Rabbit43 for Peer {
    async fn deliver(&mut self, channel: u16, consumer_tag: &str, delivery_tag: u64) {
        let deliver = BasicDeliver {
            consumer_tag: consumer_tag.parse().unwrap(),
            delivery_tag,
            redelivered: false,
            exchange: ShortStr::EMPTY,
            routing_key: ShortStr::from_static("q"),
        };
        let mut out = BytesMut::new();
        encode_method(channel, &Method::BasicDeliver(deliver), &mut out);
        encode_content(channel, &BasicProperties::default(), b"work", 131072, &mut out);
        self.send_raw(&out).await;
    }

    async fn consume_ok(&mut self, tag: &str) {
        let (ch, m) = self.recv_method().await;
        assert!(matches!(m, Method::BasicConsume(_)), "{m:?}");
        let ok = BasicConsumeOk {
            consumer_tag: tag.parse().unwrap(),
        };
        self.send(ch, Method::BasicConsumeOk(ok)).await;
    }

    async fn cancel(&mut self, ch: u16, tag: &str) {
        let cancel = BasicCancel {
            consumer_tag: tag.parse().unwrap(),
            no_wait: true,
        };
        self.send(ch, Method::BasicCancel(cancel)).await;
    }
}

fn config(port: u16) -> ConnectionConfig {
    ConnectionConfig {
        host: "127.0.0.1".into(),
        port,
        ..Default::default()
    }
}

#[tokio::test]
async fn a_consumer_timeout_cancel_and_a_queue_deletion_end_streams_with_their_reasons() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let broker = tokio::spawn(async move {
        let (mut peer, ch) = accept(&listener).await;
        // The consumer with a 200 ms timeout keeps delivery 1 for 300 ms: 4.3 cancels it.
        peer.consume_ok("slow").await;
        peer.deliver(ch, "slow", 1).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        peer.cancel(ch, "slow").await;
        let (_, m) = peer.recv_method().await;
        assert!(
            matches!(m, Method::BasicCancelOk(ref ok) if ok.consumer_tag == "slow"),
            "{m:?}"
        );
        // The second consumer acks its delivery; then its queue is deleted.
        peer.consume_ok("quick").await;
        peer.deliver(ch, "quick", 2).await;
        let (_, m) = peer.recv_method().await;
        assert!(matches!(m, Method::BasicAck(ref a) if a.delivery_tag == 2), "{m:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
        peer.cancel(ch, "quick").await;
        let (_, m) = peer.recv_method().await;
        assert!(matches!(m, Method::BasicCancelOk(_)), "{m:?}");
        peer
    });

    let conn = Connection::connect_with(config(port)).await.unwrap();
    let ch = conn.open_channel().await.unwrap();
    let args = ConsumerArguments::new().timeout(Duration::from_millis(200));
    let mut slow = ch
        .basic_consume("q", "slow", ConsumeOptions::default(), args)
        .await
        .unwrap();
    let held = slow.next().await.unwrap().unwrap();
    match tokio::time::timeout(Duration::from_secs(5), slow.next()).await.unwrap() {
        Some(Err(Error::ConsumerCancelled {
            consumer_tag,
            reason: CancelReason::AckTimeout { held },
        })) => {
            assert_eq!(consumer_tag, "slow");
            assert!(held >= Duration::from_millis(200), "{held:?}");
        }
        other => panic!("expected an ack-timeout cancel, got {other:?}"),
    }
    assert!(slow.next().await.is_none());
    assert!(ch.is_open(), "4.3 cancels the consumer, not the channel");
    drop(held);

    let mut quick = ch
        .basic_consume("q", "quick", ConsumeOptions::default(), FieldTable::new())
        .await
        .unwrap();
    quick.next().await.unwrap().unwrap().ack().await.unwrap();
    match tokio::time::timeout(Duration::from_secs(5), quick.next())
        .await
        .unwrap()
    {
        Some(Err(
            e @ Error::ConsumerCancelled {
                reason: CancelReason::QueueDeleted,
                ..
            },
        )) => assert!(e.to_string().contains("queue was deleted"), "{e}"),
        other => panic!("expected a queue-deleted cancel, got {other:?}"),
    }
    let _peer = broker.await.unwrap();
    assert!(ch.is_open());
}

#[tokio::test]
async fn a_refused_transient_queue_fails_clearly_and_is_not_recovered() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let broker = tokio::spawn(async move {
        let (mut peer, _) = accept(&listener).await;
        let (_, m) = peer.recv_method().await;
        assert!(matches!(m, Method::QueueDeclare(_)), "{m:?}");
        let close = ConnectionClose {
            reply_code: 541,
            reply_text: "INTERNAL_ERROR - Feature `transient_nonexcl_queues` is deprecated.\n\
                         By default, this feature is not permitted anymore."
                .parse()
                .unwrap(),
            class_id: 50,
            method_id: 10,
        };
        peer.send(0, Method::ConnectionClose(close)).await;
        let (_, m) = peer.recv_method().await;
        assert!(matches!(m, Method::ConnectionCloseOk(_)), "{m:?}");
        // No reconnection comes: the listener is still open for one.
        tokio::time::timeout(Duration::from_millis(500), listener.accept())
            .await
            .is_err()
    });

    let conn = Connection::connect_with(config(port)).await.unwrap();
    let ch = conn.open_channel().await.unwrap();
    let err = ch
        .queue_declare("transient", QueueDeclareOptions::default(), FieldTable::new())
        .await
        .unwrap_err();
    assert_eq!(
        err.deprecated_feature(),
        Some(DeprecatedFeature::TransientNonExclusiveQueues)
    );
    assert!(!err.is_recoverable());
    let text = err.to_string();
    assert!(
        text.contains("541") && text.contains("declare the queue durable"),
        "{text}"
    );
    assert!(
        broker.await.unwrap(),
        "warren reconnected to declare the same queue again"
    );
}
