//! A server that breaks the protocol: each case closes the connection with the right
//! code and fails every channel (and so every pending call) with the same error.

use super::*;

fn raw(frame_type: u8, channel: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![frame_type];
    v.extend_from_slice(&channel.to_be_bytes());
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    v.push(FRAME_END);
    v
}

/// An open connection with channel 1 open, consuming, and a call pending on it.
fn busy() -> (Broker, ChannelId) {
    let mut b = Broker::open(config());
    let ch = b.open_channel();
    b.consume(ch, "c", false);
    b.declare_pending(ch);
    (b, ch)
}

fn deliver(tag: u64) -> BasicDeliver {
    BasicDeliver {
        consumer_tag: s("c"),
        delivery_tag: tag,
        redelivered: false,
        exchange: s(""),
        routing_key: s(""),
    }
}

#[test]
fn unknown_method() {
    let (mut b, ch) = busy();
    b.feed(&raw(FRAME_METHOD, 1, &[0, 60, 0, 99]));
    let close = {
        let close = b.expect_connection_close();
        assert_eq!((close.reply_code, close.class_id, close.method_id), (503, 60, 99));
        close
    };
    assert!(close.reply_text.contains("60.99"), "{close:?}");
    // expect_protocol_close would need the close again; check the rest by hand.
    let err = b.conn.error().cloned().expect("error");
    assert_eq!(err.method(), Some(MethodId::new(60, 99)));
    assert_eq!(
        b.events(),
        vec![Event::ChannelClosed {
            channel: ch,
            error: err.clone()
        }]
    );
    b.send(0, ConnectionCloseOk {});
    assert_eq!(b.events(), vec![Event::ConnectionClosed(err)]);
}

#[test]
fn content_header_without_method() {
    let (mut b, ch) = busy();
    let mut buf = BytesMut::new();
    encode_header(
        1,
        &ContentHeader {
            class_id: 60,
            body_size: 1,
            ..Default::default()
        },
        &mut buf,
    );
    b.feed(&buf);
    b.expect_protocol_close(ReplyCode::UNEXPECTED_FRAME, &[ch]);
}

#[test]
fn body_without_header() {
    let (mut b, ch) = busy();
    let mut buf = BytesMut::new();
    encode_method(1, &deliver(1).into(), &mut buf);
    encode_body(1, b"x", &mut buf);
    b.feed(&buf);
    b.expect_protocol_close(ReplyCode::UNEXPECTED_FRAME, &[ch]);
}

#[test]
fn body_with_nothing_pending() {
    let (mut b, ch) = busy();
    let mut buf = BytesMut::new();
    encode_body(1, b"x", &mut buf);
    b.feed(&buf);
    b.expect_protocol_close(ReplyCode::UNEXPECTED_FRAME, &[ch]);
}

#[test]
fn body_longer_than_announced() {
    let (mut b, ch) = busy();
    let mut buf = BytesMut::new();
    encode_method(1, &deliver(1).into(), &mut buf);
    encode_header(
        1,
        &ContentHeader {
            class_id: 60,
            body_size: 3,
            ..Default::default()
        },
        &mut buf,
    );
    encode_body(1, b"ab", &mut buf);
    encode_body(1, b"cd", &mut buf);
    b.feed(&buf);
    // No delivery: expect_protocol_close allows only ChannelClosed events.
    b.expect_protocol_close(ReplyCode::UNEXPECTED_FRAME, &[ch]);
}

#[test]
fn header_of_another_class() {
    let (mut b, ch) = busy();
    let mut buf = BytesMut::new();
    encode_method(1, &deliver(1).into(), &mut buf);
    encode_header(
        1,
        &ContentHeader {
            class_id: 50,
            body_size: 0,
            ..Default::default()
        },
        &mut buf,
    );
    b.feed(&buf);
    b.expect_protocol_close(ReplyCode::UNEXPECTED_FRAME, &[ch]);
}

#[test]
fn method_in_the_middle_of_content() {
    let (mut b, ch) = busy();
    let mut buf = BytesMut::new();
    encode_method(1, &deliver(1).into(), &mut buf);
    encode_method(1, &deliver(2).into(), &mut buf);
    b.feed(&buf);
    b.expect_protocol_close(ReplyCode::UNEXPECTED_FRAME, &[ch]);
}

#[test]
fn frame_on_a_channel_never_opened() {
    let (mut b, ch) = busy();
    b.send(9, BasicQosOk {});
    let err = b.expect_protocol_close(ReplyCode::CHANNEL_ERROR, &[ch]);
    assert!(err.reply_text().is_some_and(|t| t.contains("channel 9")), "{err}");
}

#[test]
fn frame_on_a_closed_channel() {
    let (mut b, ch) = busy();
    let other = b.open_channel();
    b.send(
        1,
        ChannelClose {
            reply_code: 404,
            reply_text: s("NOT_FOUND"),
            class_id: 50,
            method_id: 10,
        },
    );
    b.frames();
    b.events();
    b.deliver(1, "c", 1, b"x");
    b.expect_protocol_close(ReplyCode::CHANNEL_ERROR, &[other]);
    let _ = ch;
}

#[test]
fn asynchronous_method_before_open_ok() {
    let mut b = Broker::open(config());
    let ch = b.conn.open_channel().expect("open");
    b.frames();
    b.send(1, deliver(1));
    b.expect_protocol_close(ReplyCode::CHANNEL_ERROR, &[ch]);
}

#[test]
fn server_sending_a_client_only_method() {
    let (mut b, ch) = busy();
    b.send(1, BasicPublish::default());
    let err = b.expect_protocol_close(ReplyCode::COMMAND_INVALID, &[ch]);
    assert_eq!(err.method(), Some(BasicPublish::ID));

    let (mut b, ch) = busy();
    b.send(0, ConnectionTuneOk::default());
    b.expect_protocol_close(ReplyCode::COMMAND_INVALID, &[ch]);
}

#[test]
fn connection_method_on_a_channel_and_channel_method_on_zero() {
    let (mut b, ch) = busy();
    b.send(1, ConnectionBlocked { reason: s("x") });
    b.expect_protocol_close(ReplyCode::COMMAND_INVALID, &[ch]);

    let (mut b, ch) = busy();
    b.send(0, QueueDeclareOk::default());
    b.expect_protocol_close(ReplyCode::COMMAND_INVALID, &[ch]);
}

#[test]
fn content_on_channel_zero() {
    let (mut b, ch) = busy();
    let mut buf = BytesMut::new();
    encode_body(0, b"x", &mut buf);
    b.feed(&buf);
    b.expect_protocol_close(ReplyCode::UNEXPECTED_FRAME, &[ch]);
}

#[test]
fn reply_with_no_call_pending() {
    let mut b = Broker::open(config());
    let ch = b.open_channel();
    b.send(1, QueueDeclareOk::default());
    b.expect_protocol_close(ReplyCode::COMMAND_INVALID, &[ch]);
}

#[test]
fn confirm_on_a_channel_not_in_confirm_mode() {
    let (mut b, ch) = busy();
    b.send(
        1,
        BasicAck {
            delivery_tag: 1,
            multiple: false,
        },
    );
    b.expect_protocol_close(ReplyCode::COMMAND_INVALID, &[ch]);
}

#[test]
fn bad_frame_end_drops_the_rest_of_the_input() {
    let (mut b, ch) = busy();
    let mut bytes = raw(FRAME_METHOD, 1, &[0, 60, 0, 11]); // basic.qos-ok
    *bytes.last_mut().expect("frame end") = 0x00;
    b.feed(&bytes);
    let close = b.expect_connection_close();
    assert_eq!(close.reply_code, 501);
    let err = b.conn.error().cloned().expect("error");
    assert_eq!(
        b.events(),
        vec![Event::ChannelClosed {
            channel: ch,
            error: err.clone()
        }]
    );
    // Frame boundaries are lost: even a valid close-ok is not read any more; the close
    // timeout ends the connection.
    b.send(0, ConnectionCloseOk {});
    assert_eq!(b.conn.state(), State::AwaitCloseOk);
    let deadline = b.conn.poll_timeout().expect("close deadline");
    assert!(deadline <= b.now + Duration::from_secs(5));
    b.advance(Duration::from_secs(5));
    assert!(b.conn.is_closed());
    assert_eq!(b.events(), vec![Event::ConnectionClosed(err)]);
}

#[test]
fn unknown_frame_type() {
    let (mut b, ch) = busy();
    b.feed(&raw(7, 1, &[]));
    let close = b.expect_connection_close();
    assert_eq!(close.reply_code, 501);
    assert_eq!(b.events().len(), 1);
    let _ = ch;
}

#[test]
fn oversized_frame_is_skipped_and_close_ok_still_read() {
    let mut b = Broker::open_with_tune(config(), 0, 4096, 0);
    let ch = b.open_channel();
    b.consume(ch, "c", false);
    let mut buf = BytesMut::new();
    encode_method(1, &deliver(1).into(), &mut buf);
    encode_header(
        1,
        &ContentHeader {
            class_id: 60,
            body_size: 5000,
            ..Default::default()
        },
        &mut buf,
    );
    encode_body(1, &[0; 5000], &mut buf);
    encode_method(0, &ConnectionCloseOk {}.into(), &mut buf);
    // Fed in two pieces: the oversized frame is skipped across calls.
    let second = buf.split_off(buf.len() - 3000);
    b.feed(&buf);
    let close = b.expect_connection_close();
    assert_eq!(close.reply_code, 501);
    assert!(close.reply_text.contains("frame_max"), "{close:?}");
    assert_eq!(b.conn.state(), State::AwaitCloseOk);
    let events = b.events();
    assert!(matches!(events.as_slice(), [Event::ChannelClosed { .. }]), "{events:?}");
    b.feed(&second);
    assert!(b.conn.is_closed(), "close-ok after the skipped frame was read");
}

#[test]
fn frames_before_tune_are_limited_to_8192_bytes() {
    // RabbitMQ 4.1 allows 8192 bytes before authentication: a start of 5000 is fine.
    let mut b = Broker::new(config());
    let mut start5000 = start("PLAIN");
    start5000.locales = Bytes::from(vec![b'x'; 5000]);
    b.send(0, start5000);
    assert!(!b.conn.is_closed(), "{:?}", b.conn.error());
    assert!(matches!(b.expect_method(0), Method::ConnectionStartOk(_)));

    let mut b = Broker::new(config());
    let mut start = start("PLAIN");
    start.locales = Bytes::from(vec![b'x'; 9000]);
    b.send(0, start);
    assert!(b.conn.is_closed());
    assert!(matches!(b.conn.error(), Some(Error::Handshake { reason }) if reason.contains("501")));
}

#[test]
fn undecodable_method_is_a_syntax_error_and_skipped() {
    let (mut b, ch) = busy();
    // queue.declare-ok with its fields cut short.
    let mut bytes = raw(FRAME_METHOD, 1, &[0, 50, 0, 11, 5, b'a']);
    let mut close_ok = BytesMut::new();
    encode_method(0, &ConnectionCloseOk {}.into(), &mut close_ok);
    bytes.extend_from_slice(&close_ok);
    b.feed(&bytes);
    let close = b.expect_connection_close();
    assert_eq!(close.reply_code, 502);
    assert!(b.conn.is_closed(), "the bad frame was skipped and the close-ok read");
    let events = b.events();
    let err = b.conn.error().cloned().expect("error");
    assert_eq!(
        events,
        vec![
            Event::ChannelClosed {
                channel: ch,
                error: err.clone()
            },
            Event::ConnectionClosed(err)
        ]
    );
}

#[test]
fn heartbeat_on_a_channel() {
    let (mut b, ch) = busy();
    b.feed(&raw(FRAME_HEARTBEAT, 1, &[]));
    b.expect_protocol_close(ReplyCode::FRAME_ERROR, &[ch]);
}

#[test]
fn garbage_of_every_length_never_panics() {
    // A cheap deterministic fuzz: bytes from a xorshift generator, fed in odd pieces.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for round in 0..200 {
        let (mut b, _) = busy();
        let len = (round * 7) % 300 + 1;
        let mut bytes = Vec::with_capacity(len);
        for _ in 0..len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            bytes.push(x as u8);
        }
        // Start with a plausible frame header half of the time.
        if round % 2 == 0 {
            bytes[0] = [FRAME_METHOD, FRAME_HEADER, FRAME_BODY][round % 3];
            if bytes.len() > 3 {
                bytes[1] = 0;
                bytes[2] = (round % 3) as u8;
            }
        }
        for piece in bytes.chunks(1 + round % 13) {
            b.feed(piece);
        }
        b.frames();
        b.events();
        b.advance(Duration::from_secs(10));
        b.frames();
    }
}

#[test]
fn connection_is_send() {
    fn send<T: Send + 'static>() {}
    send::<Connection>();
    send::<Event>();
    send::<Error>();
}

/// One step of a random session: a server frame or a client command.
#[derive(Debug, Clone)]
enum Step {
    Deliver { ch: u16, tag: u64 },
    Header { ch: u16, size: u64 },
    Body { ch: u16, len: usize },
    ServerAck { ch: u16, tag: u64, multiple: bool },
    Return { ch: u16 },
    ServerClose { ch: u16 },
    CloseOk { ch: u16 },
    Reply { ch: u16 },
    Flow { ch: u16 },
    Garbage(Vec<u8>),
    Open,
    Publish { ch: u16, mandatory: bool },
    Ack { index: usize, multiple: bool },
    Close { ch: u16 },
    Confirm { ch: u16 },
    Time(u64),
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    let ch = 0u16..4;
    prop_oneof![
        (ch.clone(), 0u64..8).prop_map(|(ch, tag)| Step::Deliver { ch, tag }),
        (ch.clone(), 0u64..300).prop_map(|(ch, size)| Step::Header { ch, size }),
        (ch.clone(), 0usize..200).prop_map(|(ch, len)| Step::Body { ch, len }),
        (ch.clone(), 0u64..6, any::<bool>()).prop_map(|(ch, tag, multiple)| Step::ServerAck { ch, tag, multiple }),
        ch.clone().prop_map(|ch| Step::Return { ch }),
        ch.clone().prop_map(|ch| Step::ServerClose { ch }),
        ch.clone().prop_map(|ch| Step::CloseOk { ch }),
        ch.clone().prop_map(|ch| Step::Reply { ch }),
        ch.clone().prop_map(|ch| Step::Flow { ch }),
        proptest::collection::vec(any::<u8>(), 0..24).prop_map(Step::Garbage),
        Just(Step::Open),
        (ch.clone(), any::<bool>()).prop_map(|(ch, mandatory)| Step::Publish { ch, mandatory }),
        (0usize..8, any::<bool>()).prop_map(|(index, multiple)| Step::Ack { index, multiple }),
        ch.clone().prop_map(|ch| Step::Close { ch }),
        ch.clone().prop_map(|ch| Step::Confirm { ch }),
        (0u64..40).prop_map(Step::Time),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

    /// Random server frames (valid and not) mixed with client commands: nothing
    /// panics, the connection ends at most once, and a closed connection refuses
    /// every command with the error it kept.
    #[test]
    fn random_sessions_keep_the_invariants(steps in proptest::collection::vec(step(), 1..60)) {
        let mut b = Broker::open_with_tune(Config { max_content_size: 150, ..config() }, 3, 4096, 5);
        let first = b.open_channel();
        b.consume(first, "c", false);
        let mut ids: Vec<ChannelId> = vec![first];
        let mut tags: Vec<DeliveryTag> = vec![];
        let mut closed_events = 0;
        for st in steps {
            let id_of = |ids: &[ChannelId], ch: u16| ids.iter().rev().find(|c| c.number() == ch).copied();
            let mut buf = BytesMut::new();
            match st {
                Step::Deliver { ch, tag } => encode_method(ch, &deliver(tag).into(), &mut buf),
                Step::Header { ch, size } => encode_header(ch, &ContentHeader { class_id: 60, body_size: size, ..Default::default() }, &mut buf),
                Step::Body { ch, len } => encode_body(ch, &vec![0; len], &mut buf),
                Step::ServerAck { ch, tag, multiple } => encode_method(ch, &BasicAck { delivery_tag: tag, multiple }.into(), &mut buf),
                Step::Return { ch } => encode_method(ch, &BasicReturn { reply_code: 312, reply_text: s("NO_ROUTE"), exchange: s("ex"), routing_key: s("k") }.into(), &mut buf),
                Step::ServerClose { ch } => encode_method(ch, &ChannelClose { reply_code: 406, ..Default::default() }.into(), &mut buf),
                Step::CloseOk { ch } => encode_method(ch, &ChannelCloseOk {}.into(), &mut buf),
                Step::Reply { ch } => encode_method(ch, &ConfirmSelectOk {}.into(), &mut buf),
                Step::Flow { ch } => encode_method(ch, &ChannelFlow { active: false }.into(), &mut buf),
                Step::Garbage(g) => buf.extend_from_slice(&g),
                Step::Open => {
                    if let Ok(id) = b.conn.open_channel() {
                        ids.push(id);
                    }
                }
                Step::Publish { ch, mandatory } => {
                    if let Some(id) = id_of(&ids, ch) {
                        let args = BasicPublish { exchange: s("ex"), routing_key: s("k"), mandatory, immediate: false };
                        let _ = b.conn.publish(id, &args, &BasicProperties::default(), &Bytes::from_static(b"m"));
                    }
                }
                Step::Ack { index, multiple } => {
                    if let Some(tag) = tags.get(index) {
                        let _ = b.conn.ack(*tag, multiple);
                    }
                }
                Step::Close { ch } => {
                    if let Some(id) = id_of(&ids, ch) {
                        let _ = b.conn.close_channel(id, ReplyCode::SUCCESS, "bye");
                    }
                }
                Step::Confirm { ch } => {
                    if let Some(id) = id_of(&ids, ch) {
                        let _ = b.conn.call(id, ConfirmSelect { nowait: false }.into());
                    }
                }
                Step::Time(secs) => b.advance(Duration::from_secs(secs)),
            }
            if !buf.is_empty() {
                b.feed(&buf);
            }
            b.pull();
            b.inbox.clear();
            for event in b.events() {
                match event {
                    Event::Delivery { delivery, .. } => tags.push(delivery.delivery_tag),
                    Event::ConnectionClosed(e) => {
                        closed_events += 1;
                        proptest::prop_assert_eq!(Some(&e), b.conn.error());
                    }
                    _ => {}
                }
            }
            proptest::prop_assert!(closed_events <= 1);
            if b.conn.is_closed() {
                proptest::prop_assert_eq!(closed_events, 1);
                let err = b.conn.error().cloned();
                proptest::prop_assert!(err.is_some());
                proptest::prop_assert_eq!(b.conn.open_channel().err(), err);
            }
        }
    }
}
