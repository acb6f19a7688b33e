//! A hostile peer: a scripted fake broker sends malformed, truncated, oversized,
//! out-of-order and unknown frames, absurd tune values, a huge content body size, content
//! that never ends, garbage. The client must close with the right reply code, surface the
//! error, never panic and never hang (every wait here is bounded).
//!
//! Expected codes, as `proto`'s inbound rules and the spec say: undecodable framing 501
//! FRAME_ERROR, undecodable arguments 502 SYNTAX_ERROR, an unknown or misdirected method 503
//! COMMAND_INVALID, a frame on a channel that is not open 504 CHANNEL_ERROR, content out of
//! sequence 505 UNEXPECTED_FRAME; a body over `max_content_size` closes only its channel
//! with 311 CONTENT_TOO_LARGE.

mod fault_support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use fault_support::fake_broker::{FakeBroker, Peer, body_frame, frame, header_frame, method_payload, raw_method, tune};
use fault_support::within;
use warren::Error;
use warren::client::{Connection, ConnectionState, ConsumeOptions, PublishOptions};
use warren::error::Initiator;
use warren::wire::{
    BasicAck, BasicConsumeOk, BasicDeliver, ConfirmSelectOk, ConnectionBlocked, ConnectionClose, ConnectionOpenOk,
    ConnectionStartOk, FRAME_BODY, FRAME_HEARTBEAT, FRAME_METHOD, FieldTable, FieldValue, Frame, Method,
    QueueDeclareOk, ReplyCode, ShortStr,
};

const LIMIT: Duration = Duration::from_secs(15);

/// The client connects, opens one channel, then the script misbehaves with `bad` bytes.
/// Returns the error the connection ended with and the close code the fake broker got.
async fn after_open(bad: Vec<u8>) -> (Error, Option<ConnectionClose>) {
    let broker = FakeBroker::spawn(|mut peer: Peer| async move {
        peer.handshake(tune(2047, 131072, 0)).await;
        peer.accept_channel().await;
        peer.send_raw(&bad).await;
        within(
            LIMIT,
            "the client's connection.close",
            peer.expect_eof_answering_close(),
        )
        .await
    })
    .await;
    let conn = within(LIMIT, "connect", Connection::connect_with(broker.config()))
        .await
        .expect("connect");
    let _ch = within(LIMIT, "open channel", conn.open_channel())
        .await
        .expect("open channel");
    let error = within(LIMIT, "the connection to end", conn.closed()).await;
    let close = broker.join().await;
    (error, close)
}

/// Asserts a client-initiated connection close with `code`, both as surfaced to the
/// application and as sent on the wire.
fn assert_client_close(case: &str, (error, close): (Error, Option<ConnectionClose>), code: ReplyCode) {
    match &error {
        Error::ConnectionClosed {
            by: Initiator::Library,
            code: c,
            ..
        } => {
            assert_eq!(*c, code, "{case}: surfaced {error}")
        }
        other => panic!("{case}: expected a client close with {code}, surfaced {other:?}"),
    }
    let close = close.unwrap_or_else(|| panic!("{case}: the client never sent connection.close"));
    assert_eq!(
        close.reply_code, code.0,
        "{case}: connection.close on the wire: {close:?}"
    );
    eprintln!("{case}: {error}");
}

trait PeerExt {
    /// Waits for end of stream, answering a `connection.close` with `close-ok` on the way.
    async fn expect_eof_answering_close(&mut self) -> Option<ConnectionClose>;
}

impl PeerExt for Peer {
    async fn expect_eof_answering_close(&mut self) -> Option<ConnectionClose> {
        let mut seen = None;
        loop {
            match self.recv_or_garbage().await {
                Some(Frame::Method {
                    channel: 0,
                    method: Method::ConnectionClose(close),
                }) => {
                    self.send(0, Method::ConnectionCloseOk(Default::default())).await;
                    seen = Some(close);
                }
                Some(_) => {}
                None => return seen,
            }
        }
    }
}

// ------------------------------------------------------------------ framing

#[tokio::test]
async fn bad_frame_end_closes_with_501() {
    let mut bad = frame(
        FRAME_METHOD,
        0,
        &method_payload(&Method::ConnectionBlocked(ConnectionBlocked {
            reason: ShortStr::from_static("x"),
        })),
    );
    *bad.last_mut().unwrap() = 0xAB;
    assert_client_close("bad frame end", after_open(bad).await, ReplyCode::FRAME_ERROR);
}

#[tokio::test]
async fn unknown_frame_type_closes_with_501() {
    assert_client_close(
        "frame type 9",
        after_open(frame(9, 0, b"what")).await,
        ReplyCode::FRAME_ERROR,
    );
}

#[tokio::test]
async fn frame_over_frame_max_closes_with_501() {
    // frame_max negotiated to 131072; send one body-sized method frame over it.
    let big = frame(FRAME_METHOD, 1, &vec![0u8; 200_000]);
    assert_client_close("oversized frame", after_open(big).await, ReplyCode::FRAME_ERROR);
}

#[tokio::test]
async fn oversized_frame_header_alone_closes_with_501() {
    // Only the 7-byte header, claiming 4 GiB: the client must not wait for (or allocate) it.
    let header = [FRAME_BODY, 0, 1, 0xFF, 0xFF, 0xFF, 0xFF];
    assert_client_close(
        "4 GiB frame header",
        after_open(header.to_vec()).await,
        ReplyCode::FRAME_ERROR,
    );
}

#[tokio::test]
async fn heartbeat_on_a_channel_closes_with_501() {
    assert_client_close(
        "heartbeat on channel 1",
        after_open(frame(FRAME_HEARTBEAT, 1, b"")).await,
        ReplyCode::FRAME_ERROR,
    );
}

#[tokio::test]
async fn truncated_arguments_close_with_502() {
    // connection.blocked without its reason short string.
    let bad = frame(FRAME_METHOD, 0, &raw_method(10, 60, &[]));
    assert_client_close("truncated arguments", after_open(bad).await, ReplyCode::SYNTAX_ERROR);
}

#[tokio::test]
async fn short_string_past_the_frame_closes_with_502() {
    // connection.blocked whose reason claims 200 bytes in a 3-byte payload.
    let bad = frame(FRAME_METHOD, 0, &raw_method(10, 60, &[200, b'a', b'b']));
    assert_client_close(
        "short string past the end",
        after_open(bad).await,
        ReplyCode::SYNTAX_ERROR,
    );
}

#[tokio::test]
async fn trailing_bytes_close_with_502() {
    let mut payload = method_payload(&Method::ConnectionBlocked(ConnectionBlocked {
        reason: ShortStr::from_static("x"),
    }));
    payload.extend_from_slice(b"junk");
    assert_client_close(
        "trailing bytes",
        after_open(frame(FRAME_METHOD, 0, &payload)).await,
        ReplyCode::SYNTAX_ERROR,
    );
}

#[tokio::test]
async fn unknown_class_closes_with_503() {
    let bad = frame(FRAME_METHOD, 1, &raw_method(99, 1, b""));
    assert_client_close("unknown class", after_open(bad).await, ReplyCode::COMMAND_INVALID);
}

#[tokio::test]
async fn unknown_method_of_a_known_class_closes_with_503() {
    let bad = frame(FRAME_METHOD, 1, &raw_method(60, 99, b""));
    assert_client_close(
        "unknown basic method",
        after_open(bad).await,
        ReplyCode::COMMAND_INVALID,
    );
}

#[tokio::test]
async fn client_only_method_from_the_server_closes_with_503() {
    let start_ok = Method::ConnectionStartOk(ConnectionStartOk {
        mechanism: ShortStr::from_static("PLAIN"),
        response: Bytes::from_static(b"\0guest\0guest"),
        locale: ShortStr::from_static("en_US"),
        ..Default::default()
    });
    let bad = frame(FRAME_METHOD, 0, &method_payload(&start_ok));
    assert_client_close(
        "start-ok from the server",
        after_open(bad).await,
        ReplyCode::COMMAND_INVALID,
    );
}

#[tokio::test]
async fn reply_with_no_call_pending_closes_with_503() {
    let ok = Method::QueueDeclareOk(QueueDeclareOk {
        queue: ShortStr::from_static("nobody-asked"),
        message_count: 0,
        consumer_count: 0,
    });
    assert_client_close(
        "unsolicited declare-ok",
        after_open(frame(FRAME_METHOD, 1, &method_payload(&ok))).await,
        ReplyCode::COMMAND_INVALID,
    );
}

#[tokio::test]
async fn confirm_on_a_channel_not_in_confirm_mode_closes_with_503() {
    let ack = Method::BasicAck(BasicAck {
        delivery_tag: 1,
        multiple: false,
    });
    assert_client_close(
        "basic.ack without confirm mode",
        after_open(frame(FRAME_METHOD, 1, &method_payload(&ack))).await,
        ReplyCode::COMMAND_INVALID,
    );
}

#[tokio::test]
async fn frame_on_a_channel_never_opened_closes_with_504() {
    let deliver = deliver("ctag", 1);
    assert_client_close(
        "deliver on channel 7",
        after_open(frame(FRAME_METHOD, 7, &method_payload(&deliver))).await,
        ReplyCode::CHANNEL_ERROR,
    );
}

#[tokio::test]
async fn body_without_header_closes_with_505() {
    assert_client_close(
        "body with no header",
        after_open(body_frame(1, b"orphan")).await,
        ReplyCode::UNEXPECTED_FRAME,
    );
}

#[tokio::test]
async fn header_without_method_closes_with_505() {
    assert_client_close(
        "header with no method",
        after_open(header_frame(1, 5)).await,
        ReplyCode::UNEXPECTED_FRAME,
    );
}

#[tokio::test]
async fn content_on_channel_zero_closes_with_505() {
    assert_client_close(
        "header on channel 0",
        after_open(header_frame(0, 5)).await,
        ReplyCode::UNEXPECTED_FRAME,
    );
}

// ------------------------------------------------------------------ content

/// A fake broker that accepts a consumer on channel 1 (tag `ctag`), then sends `bad`.
async fn consumer_then(bad: Vec<u8>) -> (Connection, warren::client::Consumer, FakeBroker<Peer>) {
    let broker = FakeBroker::spawn(|mut peer: Peer| async move {
        peer.handshake(tune(2047, 131072, 0)).await;
        let ch = peer.accept_channel().await;
        let (c, m) = peer.recv_method().await;
        assert!(
            c == ch && matches!(m, Method::BasicConsume(_)),
            "expected basic.consume, got {m:?}"
        );
        peer.send(
            ch,
            Method::BasicConsumeOk(BasicConsumeOk {
                consumer_tag: ShortStr::from_static("ctag"),
            }),
        )
        .await;
        peer.send_raw(&bad).await;
        peer
    })
    .await;
    let conn = within(LIMIT, "connect", Connection::connect_with(broker.config()))
        .await
        .expect("connect");
    let ch = within(LIMIT, "open channel", conn.open_channel())
        .await
        .expect("open channel");
    let consumer = within(
        LIMIT,
        "consume",
        ch.basic_consume("q", "ctag", ConsumeOptions::default(), FieldTable::new()),
    )
    .await
    .expect("consume");
    (conn, consumer, broker)
}

fn deliver(tag: &'static str, delivery_tag: u64) -> Method {
    Method::BasicDeliver(BasicDeliver {
        consumer_tag: ShortStr::from_static(tag),
        delivery_tag,
        redelivered: false,
        exchange: ShortStr::EMPTY,
        routing_key: ShortStr::from_static("q"),
    })
}

fn deliver_frame(channel: u16, delivery_tag: u64) -> Vec<u8> {
    frame(FRAME_METHOD, channel, &method_payload(&deliver("ctag", delivery_tag)))
}

#[tokio::test]
async fn a_good_delivery_arrives_first() {
    // Control case: the scripted consumer path works, so the failures below are about the faults.
    let mut bytes = deliver_frame(1, 1);
    bytes.extend(header_frame(1, 5));
    bytes.extend(body_frame(1, b"hello"));
    let (conn, mut consumer, broker) = consumer_then(bytes).await;
    let d = within(LIMIT, "delivery", consumer.next())
        .await
        .expect("a delivery")
        .expect("ok delivery");
    assert_eq!(&d.body[..], b"hello");
    let mut peer = broker.join().await;
    let close = tokio::join!(conn.close(), peer.expect_connection_close());
    close.0.expect("close");
}

/// RabbitMQ 4.3's quorum queues send `x-delivery-count` and `x-acquired-count` (3.10 has no
/// `x-acquired-count`, so a scripted broker plays 4.3): both are typed on the delivery.
#[tokio::test]
async fn quorum_queue_counts_are_typed_on_the_delivery() {
    let mut headers = FieldTable::new();
    headers.insert(ShortStr::from_static("x-delivery-count"), FieldValue::I64(2));
    headers.insert(ShortStr::from_static("x-acquired-count"), FieldValue::I64(5));
    let header = warren::wire::ContentHeader {
        class_id: 60,
        body_size: 2,
        properties: warren::wire::BasicProperties {
            headers: Some(headers),
            ..Default::default()
        }
        .into(),
    };
    let mut encoded = bytes::BytesMut::new();
    warren::wire::encode_header(1, &header, &mut encoded);
    let mut bytes = deliver_frame(1, 1);
    bytes.extend_from_slice(&encoded);
    bytes.extend(body_frame(1, b"hi"));
    let (conn, mut consumer, broker) = consumer_then(bytes).await;
    let d = within(LIMIT, "delivery", consumer.next())
        .await
        .expect("a delivery")
        .expect("ok delivery");
    assert_eq!((d.delivery_count(), d.acquired_count()), (Some(2), Some(5)));
    let mut peer = broker.join().await;
    let close = tokio::join!(conn.close(), peer.expect_connection_close());
    close.0.expect("close");
}

#[tokio::test]
async fn huge_body_size_closes_only_the_channel_with_311() {
    let mut bytes = deliver_frame(1, 1);
    bytes.extend(header_frame(1, u64::MAX));
    bytes.extend(body_frame(1, &[0u8; 1000]));
    let (conn, mut consumer, broker) = consumer_then(bytes).await;
    let mut peer = broker.join().await;
    let code = within(LIMIT, "channel.close 311", peer.expect_channel_close(1)).await;
    assert_eq!(code, ReplyCode::CONTENT_TOO_LARGE.0);
    match within(LIMIT, "consumer end", consumer.next()).await {
        Some(Err(Error::ChannelClosed {
            by: Initiator::Library,
            code,
            ..
        })) => assert_eq!(code, ReplyCode::CONTENT_TOO_LARGE),
        other => panic!("the consumer should end with the channel's 311, got {other:?}"),
    }
    // The connection goes on: another channel opens.
    let (ch2, n) = tokio::join!(conn.open_channel(), peer.accept_channel());
    ch2.expect("a second channel after the 311");
    assert_ne!(n, 0);
    assert!(conn.is_open());
    let close = tokio::join!(conn.close(), peer.expect_connection_close());
    close.0.expect("close");
}

#[tokio::test]
async fn body_past_body_size_closes_with_505() {
    // "Content that never ends": more body bytes than the header announced.
    let mut bytes = deliver_frame(1, 1);
    bytes.extend(header_frame(1, 4));
    bytes.extend(body_frame(1, b"four"));
    bytes.extend(body_frame(1, b"and more"));
    let (conn, _consumer, broker) = consumer_then(bytes).await;
    let mut peer = broker.join().await;
    let close = within(LIMIT, "connection.close", peer.expect_connection_close()).await;
    let error = within(LIMIT, "closed", conn.closed()).await;
    assert_client_close("body past body_size", (error, Some(close)), ReplyCode::UNEXPECTED_FRAME);
}

#[tokio::test]
async fn method_inside_a_content_closes_with_505() {
    let mut bytes = deliver_frame(1, 1);
    bytes.extend(header_frame(1, 10));
    bytes.extend(body_frame(1, b"half"));
    bytes.extend(deliver_frame(1, 2));
    let (conn, _consumer, broker) = consumer_then(bytes).await;
    let mut peer = broker.join().await;
    let close = within(LIMIT, "connection.close", peer.expect_connection_close()).await;
    let error = within(LIMIT, "closed", conn.closed()).await;
    assert_client_close(
        "method inside content",
        (error, Some(close)),
        ReplyCode::UNEXPECTED_FRAME,
    );
}

#[tokio::test]
async fn header_of_the_wrong_class_closes_with_505() {
    let mut bytes = deliver_frame(1, 1);
    let mut header = header_frame(1, 3);
    header[7..9].copy_from_slice(&50u16.to_be_bytes()); // class 50 (queue) instead of 60
    bytes.extend(header);
    let (conn, _consumer, broker) = consumer_then(bytes).await;
    let mut peer = broker.join().await;
    let close = within(LIMIT, "connection.close", peer.expect_connection_close()).await;
    let error = within(LIMIT, "closed", conn.closed()).await;
    assert_client_close("header of class 50", (error, Some(close)), ReplyCode::UNEXPECTED_FRAME);
}

#[tokio::test]
async fn endless_slow_content_does_not_stop_a_close() {
    // A content announced at 64 MiB arrives 4 KiB every 10 ms and never completes; the peer
    // never answers close. The application's close still finishes within the close timeout.
    let broker = FakeBroker::spawn(|mut peer: Peer| async move {
        peer.handshake(tune(2047, 131072, 0)).await;
        let ch = peer.accept_channel().await;
        let (_, m) = peer.recv_method().await;
        assert!(matches!(m, Method::BasicConsume(_)));
        peer.send(
            ch,
            Method::BasicConsumeOk(BasicConsumeOk {
                consumer_tag: ShortStr::from_static("ctag"),
            }),
        )
        .await;
        peer.send_raw(&deliver_frame(ch, 1)).await;
        peer.send_raw(&header_frame(ch, 64 << 20)).await;
        let chunk = body_frame(ch, &[7u8; 4096]);
        let started = Instant::now();
        let mut saw_close = false;
        while started.elapsed() < Duration::from_secs(20) {
            peer.send_raw(&chunk).await;
            // Read whatever the client says without answering it.
            if let Ok(r) = tokio::time::timeout(Duration::from_millis(10), peer.recv_or_garbage()).await {
                match r {
                    Some(Frame::Method {
                        method: Method::ConnectionClose(_),
                        ..
                    }) => saw_close = true,
                    Some(_) => {}
                    None => return (saw_close, true),
                }
            }
        }
        (saw_close, false)
    })
    .await;
    let conn = within(LIMIT, "connect", Connection::connect_with(broker.config()))
        .await
        .expect("connect");
    let ch = within(LIMIT, "open channel", conn.open_channel()).await.expect("open");
    let _consumer = within(
        LIMIT,
        "consume",
        ch.basic_consume("q", "ctag", ConsumeOptions::default(), FieldTable::new()),
    )
    .await
    .expect("consume");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let result = within(Duration::from_secs(8), "close during an endless content", conn.close()).await;
    eprintln!("close during endless content: {result:?} after {:?}", started.elapsed());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "close took {:?}",
        started.elapsed()
    );
    let (saw_close, saw_eof) = broker.join().await;
    assert!(saw_close, "the client should still send connection.close");
    assert!(saw_eof, "the client should drop the socket after the close timeout");
}

/// The fake broker's side of [`confirm_channel`]: the handshake, one channel and its
/// `confirm.select`; the channel number.
async fn serve_confirm_channel(peer: &mut Peer) -> u16 {
    peer.handshake(tune(2047, 131072, 0)).await;
    let ch = peer.accept_channel().await;
    let (_, m) = peer.recv_method().await;
    assert!(
        matches!(m, Method::ConfirmSelect(_)),
        "expected confirm.select, got {m:?}"
    );
    peer.send(ch, Method::ConfirmSelectOk(ConfirmSelectOk {})).await;
    ch
}

/// Connects with `config` and opens a channel in confirm mode.
async fn confirm_channel(config: warren::client::ConnectionConfig) -> (Connection, warren::client::Channel) {
    let conn = within(LIMIT, "connect", Connection::connect_with(config))
        .await
        .expect("connect");
    let ch = within(LIMIT, "open channel", conn.open_channel()).await.expect("open");
    within(LIMIT, "confirm.select", ch.confirm_select())
        .await
        .expect("confirm.select");
    (conn, ch)
}

#[tokio::test]
async fn bogus_confirm_closes_the_channel_with_406() {
    let broker = FakeBroker::spawn(|mut peer: Peer| async move {
        let ch = serve_confirm_channel(&mut peer).await;
        // An ack for publish 99, never sent.
        peer.send(
            ch,
            Method::BasicAck(BasicAck {
                delivery_tag: 99,
                multiple: false,
            }),
        )
        .await;
        let code = peer.expect_channel_close(ch).await;
        (peer, code)
    })
    .await;
    let (conn, ch) = confirm_channel(broker.config()).await;
    let (mut peer, code) = broker.join().await;
    assert_eq!(code, ReplyCode::PRECONDITION_FAILED.0);
    // The channel is gone, a publish on it is refused; the connection is fine.
    within(LIMIT, "the channel seen closed", async {
        while ch.is_open() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let r = ch
        .basic_publish("", "q", PublishOptions::default(), Default::default(), "x")
        .await;
    assert!(r.is_err(), "publish on a closed channel: {r:?}");
    assert!(conn.is_open());
    let close = tokio::join!(conn.close(), peer.expect_connection_close());
    close.0.expect("close");
}

/// Publishers racing the broker's final close: every publish is refused or gets its
/// confirm answered (with the close reason), none waits for ever. A publish queued as
/// the connection task ends is answered from the queue, not dropped with it.
#[tokio::test]
async fn publishes_racing_a_final_close_are_all_answered() {
    let broker = FakeBroker::spawn(|mut peer: Peer| async move {
        serve_confirm_channel(&mut peer).await;
        // Read nothing, confirm nothing: the socket fills up, publishes queue up in the
        // client. Then close the connection and still read nothing for a while: the
        // client's last write waits (its close timeout) with publishes queued.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let close = ConnectionClose {
            reply_code: ReplyCode::CONNECTION_FORCED.0,
            reply_text: ShortStr::from_static("shutting down"),
            class_id: 0,
            method_id: 0,
        };
        peer.send(0, Method::ConnectionClose(close)).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        peer.drain_for(Duration::from_secs(5)).await;
    })
    .await;
    let (conn, ch) = confirm_channel(broker.config()).await;
    let publishers: Vec<_> = (0..4)
        .map(|_| {
            let ch = ch.clone();
            tokio::spawn(async move {
                let mut confirms = Vec::new();
                let body = bytes::Bytes::from(vec![7u8; 64 * 1024]);
                loop {
                    match ch
                        .basic_publish("", "q", PublishOptions::default(), Default::default(), body.clone())
                        .await
                    {
                        Ok(confirm) => confirms.push(confirm),
                        Err(_) => return confirms,
                    }
                }
            })
        })
        .collect();
    let mut answered = 0;
    for p in publishers {
        let confirms = within(LIMIT, "publishers to be refused", p).await.expect("publisher");
        for c in confirms {
            let outcome = within(LIMIT, "every confirm to be answered", c).await;
            assert!(outcome.is_err(), "nothing was confirmed: {outcome:?}");
            answered += 1;
        }
    }
    assert!(answered > 0, "some publishes were accepted before the close");
    assert!(matches!(conn.state().borrow().clone(), ConnectionState::Failed(_)));
    broker.join().await;
}

// ------------------------------------------------------------------ garbage

/// xorshift64*: a reproducible byte stream.
fn garbage(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

#[tokio::test]
async fn random_garbage_after_open_closes_cleanly() {
    for seed in 1..=12u64 {
        // Half the cases start with a plausible frame header so the parser gets further.
        let mut bad = if seed % 2 == 0 {
            vec![FRAME_METHOD, 0, 1]
        } else {
            Vec::new()
        };
        bad.extend(garbage(seed, 2048));
        let broker = FakeBroker::spawn(move |mut peer: Peer| async move {
            peer.handshake(tune(2047, 131072, 0)).await;
            peer.accept_channel().await;
            peer.send_raw(&bad).await;
            within(
                LIMIT,
                "the client to end the connection",
                peer.expect_eof_answering_close(),
            )
            .await
        })
        .await;
        let conn = within(LIMIT, "connect", Connection::connect_with(broker.config()))
            .await
            .expect("connect");
        let _ch = within(LIMIT, "open", conn.open_channel()).await.expect("open");
        let error = within(LIMIT, "the connection to end", conn.closed()).await;
        let close = broker.join().await;
        match (&error, &close) {
            (
                Error::ConnectionClosed {
                    by: Initiator::Library,
                    code,
                    ..
                },
                Some(c),
            ) => {
                assert!((501..=505).contains(&code.0), "seed {seed}: {error}");
                assert_eq!(c.reply_code, code.0, "seed {seed}");
            }
            // Garbage that decodes as something plausible may still only be waiting for more
            // bytes: then the peer's end of stream ends it.
            _ => panic!("seed {seed}: unexpected end {error:?} / {close:?}"),
        }
    }
}

#[tokio::test]
async fn truncated_frame_then_end_of_stream_is_connection_lost() {
    let broker = FakeBroker::spawn(|mut peer: Peer| async move {
        peer.handshake(tune(2047, 131072, 0)).await;
        peer.accept_channel().await;
        let full = frame(FRAME_METHOD, 1, &method_payload(&deliver("ctag", 1)));
        peer.send_raw(&full[..full.len() / 2]).await;
        // Then the peer disappears (FIN).
    })
    .await;
    let conn = within(LIMIT, "connect", Connection::connect_with(broker.config()))
        .await
        .expect("connect");
    let _ch = within(LIMIT, "open", conn.open_channel()).await.expect("open");
    broker.join().await;
    let error = within(LIMIT, "the connection to end", conn.closed()).await;
    assert!(matches!(error, Error::ConnectionLost { .. }), "surfaced {error:?}");
    assert!(error.is_recoverable());
}

// ------------------------------------------------------------------ handshake

#[tokio::test]
async fn silent_server_times_out_connect() {
    let broker = FakeBroker::spawn(|mut peer: Peer| async move {
        peer.expect_protocol_header().await;
        peer.drain_for(Duration::from_secs(8)).await
    })
    .await;
    let mut config = broker.config();
    config.connect_timeout = Duration::from_secs(1);
    let started = Instant::now();
    let r = within(LIMIT, "connect", Connection::connect_with(config)).await;
    assert!(matches!(r, Err(Error::Timeout { .. })), "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(
        broker.join().await,
        "the client should drop the socket after the connect timeout"
    );
}

#[tokio::test]
async fn server_hanging_up_after_the_header_fails_connect() {
    let broker = FakeBroker::spawn(|mut peer: Peer| async move {
        peer.expect_protocol_header().await;
    })
    .await;
    let r = within(LIMIT, "connect", Connection::connect_with(broker.config())).await;
    broker.join().await;
    let e = r.expect_err("connect must fail");
    eprintln!("hang-up after header: {e}");
    assert!(e.is_connection_error() || matches!(e, Error::Io(_)), "{e:?}");
}

#[tokio::test]
async fn protocol_header_answer_is_a_handshake_error() {
    let broker = FakeBroker::spawn(|mut peer: Peer| async move {
        peer.expect_protocol_header().await;
        peer.send_raw(b"AMQP\x00\x00\x09\x00").await;
        peer.drain_for(Duration::from_secs(5)).await
    })
    .await;
    let r = within(LIMIT, "connect", Connection::connect_with(broker.config())).await;
    assert!(matches!(r, Err(Error::Handshake { .. })), "{r:?}");
    assert!(broker.join().await);
}

#[tokio::test]
async fn tune_zeros_negotiate_sane_limits() {
    let broker = FakeBroker::spawn(|mut peer: Peer| async move {
        let tuned = peer.handshake(tune(0, 0, 0)).await;
        let close = peer.expect_connection_close().await;
        (tuned, close)
    })
    .await;
    let conn = within(LIMIT, "connect", Connection::connect_with(broker.config()))
        .await
        .expect("connect");
    let t = conn.tune();
    within(LIMIT, "close", conn.close()).await.expect("close");
    let ((channel_max, frame_max, heartbeat), close) = broker.join().await;
    eprintln!("tune 0/0/0 -> client tune-ok {channel_max}/{frame_max}/{heartbeat}, conn.tune() {t:?}");
    assert!(
        frame_max >= 4096,
        "frame_max 0 means no limit: the client must pick its own, got {frame_max}"
    );
    assert_eq!(close.reply_code, 200);
    assert_eq!(t.frame_max, frame_max);
}

#[tokio::test]
async fn tune_maxima_negotiate_down() {
    let broker = FakeBroker::spawn(|mut peer: Peer| async move {
        let tuned = peer.handshake(tune(u16::MAX, u32::MAX, u16::MAX)).await;
        let close = peer.expect_connection_close().await;
        (tuned, close)
    })
    .await;
    let conn = within(LIMIT, "connect", Connection::connect_with(broker.config()))
        .await
        .expect("connect");
    let t = conn.tune();
    within(LIMIT, "close", conn.close()).await.expect("close");
    let ((channel_max, frame_max, heartbeat), close) = broker.join().await;
    eprintln!("tune max -> client tune-ok {channel_max}/{frame_max}/{heartbeat}");
    assert_eq!(frame_max, 131072, "the client's own frame_max is the lower one");
    assert!(channel_max >= 1);
    assert_eq!(close.reply_code, 200);
    assert_eq!(t.frame_max, frame_max);
}

#[tokio::test]
async fn frame_max_below_the_minimum_is_a_handshake_error() {
    let broker = FakeBroker::spawn(|mut peer: Peer| async move {
        peer.expect_protocol_header().await;
        peer.send(0, Method::ConnectionStart(fault_support::fake_broker::start()))
            .await;
        let _ = peer.recv_method().await;
        peer.send(0, Method::ConnectionTune(tune(2047, 100, 0))).await;
        peer.expect_eof().await
    })
    .await;
    let r = within(LIMIT, "connect", Connection::connect_with(broker.config())).await;
    assert!(matches!(r, Err(Error::Handshake { .. })), "{r:?}");
    broker.join().await;
}

#[tokio::test]
async fn open_ok_before_tune_is_a_handshake_error() {
    let broker = FakeBroker::spawn(|mut peer: Peer| async move {
        peer.expect_protocol_header().await;
        peer.send(0, Method::ConnectionStart(fault_support::fake_broker::start()))
            .await;
        let _ = peer.recv_method().await;
        peer.send(0, Method::ConnectionOpenOk(Default::default())).await;
        peer.expect_eof().await
    })
    .await;
    let r = within(LIMIT, "connect", Connection::connect_with(broker.config())).await;
    let e = r.expect_err("connect must fail");
    assert!(
        matches!(&e, Error::UnexpectedMethod { got, .. } if *got == ConnectionOpenOk::ID),
        "{e:?}"
    );
    assert!(!e.is_recoverable() || e.is_connection_error());
    broker.join().await;
}

#[tokio::test]
async fn access_refused_is_an_authentication_error_and_not_recoverable() {
    let broker = FakeBroker::spawn(|mut peer: Peer| async move {
        peer.expect_protocol_header().await;
        peer.send(0, Method::ConnectionStart(fault_support::fake_broker::start()))
            .await;
        let _ = peer.recv_method().await;
        peer.send(
            0,
            Method::ConnectionClose(ConnectionClose {
                reply_code: 403,
                reply_text: ShortStr::from_static("ACCESS_REFUSED - Login was refused"),
                class_id: 10,
                method_id: 11,
            }),
        )
        .await;
        peer.expect_eof().await
    })
    .await;
    let r = within(LIMIT, "connect", Connection::connect_with(broker.config())).await;
    let e = r.expect_err("connect must fail");
    assert!(matches!(e, Error::Authentication { .. }), "{e:?}");
    assert!(!e.is_recoverable());
    broker.join().await;
}

#[tokio::test]
async fn huge_connection_start_is_bounded() {
    // A connection.start of 1 MiB, before any frame_max is agreed: the client may accept or
    // refuse it, but it must answer within the connect timeout and not panic.
    let broker = FakeBroker::spawn(|mut peer: Peer| async move {
        peer.expect_protocol_header().await;
        let mut start = fault_support::fake_broker::start();
        start.locales = Bytes::from(vec![b'x'; 1 << 20]);
        peer.send(0, Method::ConnectionStart(start)).await;
        peer.drain_for(Duration::from_secs(8)).await
    })
    .await;
    let mut config = broker.config();
    config.connect_timeout = Duration::from_secs(2);
    let r = within(LIMIT, "connect", Connection::connect_with(config)).await;
    eprintln!("1 MiB connection.start: {:?}", r.as_ref().map(|_| ()));
    assert!(r.is_err(), "the fake never tunes, so connect cannot succeed");
    broker.join().await;
}

// ------------------------------------------------------------------ liveness

#[tokio::test]
async fn silent_peer_is_detected_by_heartbeat_within_two_intervals() {
    let broker = FakeBroker::spawn(|mut peer: Peer| async move {
        peer.handshake(tune(2047, 131072, 1)).await;
        // Read (and ignore) everything, send nothing: a blackhole that keeps the socket open.
        let silent_since = Instant::now();
        let eof = peer.drain_for(Duration::from_secs(10)).await;
        (silent_since, eof)
    })
    .await;
    let mut config = broker.config();
    config.protocol.heartbeat = Some(1);
    let conn = within(LIMIT, "connect", Connection::connect_with(config))
        .await
        .expect("connect");
    let error = within(LIMIT, "heartbeat timeout", conn.closed()).await;
    let detected = Instant::now();
    let (silent_since, eof) = broker.join().await;
    let after = detected.duration_since(silent_since);
    eprintln!("silent peer detected after {after:?}: {error}");
    assert!(matches!(error, Error::ConnectionLost { .. }), "{error:?}");
    assert!(error.is_recoverable());
    assert!(
        after <= fault_support::detection_bound(Duration::from_secs(1)),
        "heartbeat 1 s: detected after {after:?}, more than two intervals"
    );
    assert!(eof, "the client should drop the socket");
}

#[tokio::test]
async fn server_close_is_surfaced_with_its_code() {
    let broker = FakeBroker::spawn(|mut peer: Peer| async move {
        peer.handshake(tune(2047, 131072, 0)).await;
        peer.accept_channel().await;
        peer.send(
            0,
            Method::ConnectionClose(ConnectionClose {
                reply_code: 530,
                reply_text: ShortStr::from_static("NOT_ALLOWED - go away"),
                class_id: 0,
                method_id: 0,
            }),
        )
        .await;
        // The client must answer close-ok.
        loop {
            match peer.recv_method().await {
                (0, Method::ConnectionCloseOk(_)) => break,
                _ => continue,
            }
        }
    })
    .await;
    let conn = within(LIMIT, "connect", Connection::connect_with(broker.config()))
        .await
        .expect("connect");
    let _ch = within(LIMIT, "open", conn.open_channel()).await.expect("open");
    broker.join().await;
    let e = within(LIMIT, "closed", conn.closed()).await;
    match &e {
        Error::ConnectionClosed {
            by: Initiator::Server,
            code,
            ..
        } => assert_eq!(*code, ReplyCode::NOT_ALLOWED),
        other => panic!("{other:?}"),
    }
    assert!(!e.is_recoverable());
}

#[tokio::test]
async fn unanswered_channel_open_times_out() {
    let broker = FakeBroker::spawn(|mut peer: Peer| async move {
        peer.handshake(tune(2047, 131072, 0)).await;
        let (_, m) = peer.recv_method().await;
        assert!(matches!(m, Method::ChannelOpen(_)));
        peer.drain_for(Duration::from_secs(8)).await
    })
    .await;
    let mut config = broker.config();
    config.rpc_timeout = Some(Duration::from_millis(500));
    let conn = within(LIMIT, "connect", Connection::connect_with(config))
        .await
        .expect("connect");
    let started = Instant::now();
    let r = within(LIMIT, "open channel", conn.open_channel()).await;
    assert!(matches!(r, Err(Error::Timeout { .. })), "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    let _ = within(LIMIT, "close", conn.close()).await;
    assert!(
        broker.join().await,
        "after close (unanswered) the client drops the socket"
    );
}

#[tokio::test]
async fn unanswered_close_gives_up_after_the_close_timeout() {
    let broker = FakeBroker::spawn(|mut peer: Peer| async move {
        peer.handshake(tune(2047, 131072, 0)).await;
        peer.drain_for(Duration::from_secs(8)).await
    })
    .await;
    let conn = within(LIMIT, "connect", Connection::connect_with(broker.config()))
        .await
        .expect("connect");
    let started = Instant::now();
    let r = within(LIMIT, "close", conn.close()).await;
    eprintln!("unanswered close: {r:?} after {:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(4), "close_timeout is 2 s");
    assert!(broker.join().await);
}

// ------------------------------------------------------------------ with recovery

/// Connects to a scripted broker at `addr` with recovery on and a quick first retry.
async fn connect_recovering(addr: std::net::SocketAddr) -> Connection {
    let mut config = warren::client::ConnectionConfig::from_uri(&format!("amqp://guest:guest@{addr}/%2f")).unwrap();
    config.recovery = warren::client::RecoveryConfig {
        initial_backoff: Duration::from_millis(10),
        ..warren::client::RecoveryConfig::default()
    };
    config.protocol.close_timeout = Duration::from_secs(2);
    within(LIMIT, "connect", Connection::connect_with(config))
        .await
        .unwrap()
}

/// With recovery on: a protocol violation closes the connection with its code and is
/// recovered (the channel comes back under the same handle); a close that will not heal
/// (530) ends it for good, with no further attempt.
#[tokio::test]
async fn violation_is_recovered_and_a_close_that_cannot_heal_is_final() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use warren::client::ConnectionState;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let (report_tx, mut report_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let server = {
        let accepted = accepted.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let n = accepted.fetch_add(1, Ordering::SeqCst);
                let report = report_tx.clone();
                tokio::spawn(async move {
                    let mut peer = Peer::from_stream(stream);
                    peer.handshake(tune(2047, 131072, 0)).await;
                    let ch = peer.accept_channel().await;
                    match n {
                        0 => {
                            let mut bad = frame(FRAME_METHOD, 0, b"\x00\x0a\x00\x3c\x00");
                            *bad.last_mut().unwrap() = 0x00; // bad frame end
                            peer.send_raw(&bad).await;
                            let close = peer.expect_connection_close().await;
                            let _ = report.send(format!(
                                "first connection closed by the client with {}",
                                close.reply_code
                            ));
                        }
                        _ => {
                            let _ = report.send(format!("channel {ch} reopened on connection {n}"));
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            peer.send(
                                0,
                                Method::ConnectionClose(ConnectionClose {
                                    reply_code: 530,
                                    reply_text: ShortStr::from_static("NOT_ALLOWED - vhost gone"),
                                    class_id: 0,
                                    method_id: 0,
                                }),
                            )
                            .await;
                            let _ = peer.expect_eof().await;
                        }
                    }
                });
            }
        })
    };
    let conn = connect_recovering(addr).await;
    let mut changes = conn.state_changes();
    let ch = within(LIMIT, "open", conn.open_channel()).await.unwrap();
    assert_eq!(
        report_rx.recv().await.unwrap(),
        "first connection closed by the client with 501"
    );
    let mut seen = Vec::new();
    let failed = within(LIMIT, "the final failure", async {
        loop {
            let state = changes.next().await.expect("state stream");
            seen.push(state.clone());
            if let ConnectionState::Failed(e) = state {
                return e;
            }
        }
    })
    .await;
    eprintln!("states: {seen:?}");
    assert!(
        seen.iter().any(|s| matches!(s, ConnectionState::Recovering { cause: Error::ConnectionClosed { by: Initiator::Library, code, .. }, .. } if code.0 == 501)),
        "{seen:?}"
    );
    assert!(
        seen.iter().any(|s| matches!(s, ConnectionState::Recovered(_))),
        "{seen:?}"
    );
    assert_eq!(
        report_rx.recv().await.unwrap(),
        format!("channel {} reopened on connection 1", ch.id().number())
    );
    assert_eq!(failed.reply_code(), Some(ReplyCode::NOT_ALLOWED), "{failed:?}");
    assert!(!failed.is_recoverable());
    assert_eq!(within(LIMIT, "closed", conn.closed()).await, failed);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        2,
        "no attempt after a close that cannot heal"
    );
    server.abort();
}

/// After a recovery, `tune()` and `server_properties()` are those of the new connection,
/// not of the one that was lost.
#[tokio::test]
async fn tune_and_server_properties_follow_a_recovery() {
    use fault_support::fake_broker::start;
    use warren::client::ConnectionState;
    use warren::wire::FieldValue;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        // The first connection is lost once the client has a channel on it.
        let (stream, _) = listener.accept().await.unwrap();
        let mut first = Peer::from_stream(stream);
        first.handshake(tune(2047, 131072, 0)).await;
        first.accept_channel().await;
        drop(first);
        // The second node has other limits and calls itself something else.
        let (stream, _) = listener.accept().await.unwrap();
        let mut second = Peer::from_stream(stream);
        let mut other = start();
        other.server_properties.insert(
            ShortStr::from_static("product"),
            FieldValue::LongStr(Bytes::from_static(b"second node")),
        );
        second.handshake_with(other, tune(100, 65536, 0)).await;
        second.accept_channel().await;
        second.expect_connection_close().await;
    });
    let conn = connect_recovering(addr).await;
    let product = |conn: &Connection| {
        conn.server_properties()
            .get("product")
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    let first = conn.tune();
    assert_eq!((first.channel_max, first.frame_max), (2047, 131072));
    assert_eq!(product(&conn).as_deref(), Some("warren fake broker"));

    let mut changes = conn.state_changes();
    let _channel = within(LIMIT, "open", conn.open_channel()).await.unwrap();
    within(LIMIT, "the recovery", async {
        loop {
            match changes.next().await.expect("state stream") {
                ConnectionState::Recovered(_) => return,
                ConnectionState::Failed(e) => panic!("recovery failed: {e}"),
                _ => {}
            }
        }
    })
    .await;
    let now = conn.tune();
    assert_eq!((now.channel_max, now.frame_max), (100, 65536));
    assert_eq!(product(&conn).as_deref(), Some("second node"));
    within(LIMIT, "close", conn.close()).await.unwrap();
    within(LIMIT, "the script", server).await.unwrap();
}
