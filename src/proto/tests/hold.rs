//! Commands held back: calls behind an unanswered consume or cancel (RabbitMQ may answer
//! it after a later call), publishes while the server blocks publishing.

use super::*;

fn consume(tag: &str) -> Method {
    BasicConsume {
        queue: s("q"),
        consumer_tag: s(tag),
        ..Default::default()
    }
    .into()
}

fn declare() -> Method {
    QueueDeclare {
        queue: s("q2"),
        ..Default::default()
    }
    .into()
}

fn args() -> BasicPublish {
    BasicPublish {
        exchange: s("ex"),
        routing_key: s("k"),
        ..Default::default()
    }
}

fn publish(b: &mut Broker, ch: ChannelId) -> Option<u64> {
    let body = Bytes::from_static(b"body");
    b.conn
        .publish(ch, &args(), &BasicProperties::default(), &body)
        .expect("publish")
}

fn names(methods: &[(u16, Method)]) -> Vec<&'static str> {
    methods.iter().map(|(_, m)| m.name()).collect()
}

/// RabbitMQ sends `consume-ok` from the queue's process: a `declare-ok` for a declare
/// pipelined behind the consume could arrive first. The declare waits for it instead.
#[test]
fn a_call_behind_a_consume_waits_for_consume_ok() {
    let mut b = Broker::open(config());
    let ch = b.open_channel();
    b.conn.call(ch, consume("c")).expect("consume");
    b.conn.call(ch, declare()).expect("declare accepted");
    assert_eq!(names(&b.methods()), ["basic.consume"], "the declare is held");
    assert_eq!(b.conn.held().commands, 1);
    assert!(b.conn.awaits_reply());
    b.send(1, BasicConsumeOk { consumer_tag: s("c") });
    assert_eq!(names(&b.methods()), ["queue.declare"], "released by consume-ok");
    assert_eq!(b.conn.held(), Held::default());
    b.send(
        1,
        QueueDeclareOk {
            queue: s("q2"),
            message_count: 0,
            consumer_count: 0,
        },
    );
    let replies: Vec<&str> = b
        .events()
        .iter()
        .map(|e| match e {
            Event::Reply { method, .. } => method.name(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(replies, ["basic.consume-ok", "queue.declare-ok"]);
    assert!(b.conn.error().is_none());
}

#[test]
fn a_call_behind_a_cancel_waits_for_cancel_ok_and_consumes_chain() {
    let mut b = Broker::open(config());
    let ch = b.open_channel();
    b.consume(ch, "c", false);
    let cancel = BasicCancel {
        consumer_tag: s("c"),
        no_wait: false,
    };
    b.conn.call(ch, cancel.into()).expect("cancel");
    b.conn.call(ch, consume("d")).expect("consume");
    b.conn.call(ch, declare()).expect("declare");
    assert_eq!(names(&b.methods()), ["basic.cancel"]);
    b.send(1, BasicCancelOk { consumer_tag: s("c") });
    assert_eq!(
        names(&b.methods()),
        ["basic.consume"],
        "the next consume is a barrier in turn"
    );
    b.send(1, BasicConsumeOk { consumer_tag: s("d") });
    assert_eq!(names(&b.methods()), ["queue.declare"]);
}

#[test]
fn no_wait_consumes_and_publishes_do_not_wait() {
    let mut b = Broker::open(config());
    let ch = b.open_channel();
    let no_wait = BasicConsume {
        queue: s("q"),
        consumer_tag: s("n"),
        no_wait: true,
        ..Default::default()
    };
    b.conn.call(ch, no_wait.into()).expect("no-wait consume");
    b.conn.call(ch, declare()).expect("declare");
    assert_eq!(
        names(&b.methods()),
        ["basic.consume", "queue.declare"],
        "no reply, no barrier"
    );
    b.conn.call(ch, consume("c")).expect("consume");
    publish(&mut b, ch);
    assert_eq!(
        names(&b.methods()),
        ["basic.consume", "basic.publish"],
        "a publish has no reply to overtake"
    );
}

#[test]
fn what_follows_a_held_call_waits_behind_it_but_acks_do_not() {
    let mut b = Broker::open(config());
    let ch = b.open_channel();
    b.consume(ch, "c", false);
    b.deliver(1, "c", 1, b"m");
    let Some(Event::Delivery { delivery, .. }) = b.events().pop() else {
        panic!("delivery")
    };
    b.conn.call(ch, consume("d")).expect("consume");
    b.conn.call(ch, declare()).expect("declare");
    publish(&mut b, ch);
    b.conn.ack(delivery.delivery_tag, false).expect("ack");
    assert_eq!(
        names(&b.methods()),
        ["basic.consume", "basic.ack"],
        "the publish keeps its place"
    );
    assert_eq!(b.conn.held().commands, 2);
    b.send(1, BasicConsumeOk { consumer_tag: s("d") });
    assert_eq!(names(&b.methods()), ["queue.declare", "basic.publish"]);
}

#[test]
fn publishes_wait_while_blocked_with_their_sequence_numbers() {
    let mut b = Broker::open(config());
    let ch = b.open_channel();
    b.confirm_select(ch);
    assert_eq!(b.publish(ch, "k", false, b"1"), Some(1));
    b.send(0, ConnectionBlocked { reason: s("mem") });
    assert_eq!(publish(&mut b, ch), Some(2), "numbered when accepted");
    assert_eq!(publish(&mut b, ch), Some(3));
    b.expect_silence();
    let held = b.conn.held();
    assert_eq!(held.commands, 2);
    assert!(held.bytes > 0);
    assert_eq!(b.conn.unconfirmed(ch), 3);
    b.send(0, ConnectionUnblocked {});
    assert_eq!(names(&b.methods()), ["basic.publish", "basic.publish"]);
    assert_eq!(b.conn.held(), Held::default());
    b.send(
        1,
        BasicAck {
            delivery_tag: 3,
            multiple: true,
        },
    );
    let seqs: Vec<u64> = b
        .events()
        .iter()
        .filter_map(|e| match e {
            Event::Confirm { seq, ack: true, .. } => Some(*seq),
            _ => None,
        })
        .collect();
    assert_eq!(seqs, [1, 2, 3]);
}

#[test]
fn calls_go_out_while_blocked_unless_a_publish_is_held_before_them() {
    let mut b = Broker::open(config());
    let ch = b.open_channel();
    let other = b.open_channel();
    b.send(0, ConnectionBlocked { reason: s("mem") });
    b.conn.call(ch, declare()).expect("declare");
    assert_eq!(names(&b.methods()), ["queue.declare"]);
    publish(&mut b, ch);
    b.conn.call(ch, declare()).expect("declare");
    b.expect_silence();
    b.conn.call(other, declare()).expect("declare on another channel");
    assert_eq!(names(&b.methods()), ["queue.declare"], "other channels are not held");
}

#[test]
fn closing_a_channel_drops_what_it_held() {
    let mut b = Broker::open(config());
    let ch = b.open_channel();
    b.conn.call(ch, consume("c")).expect("consume");
    b.conn.call(ch, declare()).expect("declare");
    b.conn.close_channel(ch, ReplyCode::SUCCESS, "bye").expect("close");
    assert_eq!(names(&b.methods()), ["basic.consume", "channel.close"]);
    assert_eq!(b.conn.held(), Held::default());
    b.send(1, BasicConsumeOk { consumer_tag: s("c") });
    b.send(1, ChannelCloseOk {});
    b.expect_silence();
    assert!(matches!(b.events().as_slice(), [Event::ChannelClosed { .. }]));
}

#[test]
fn a_server_close_drops_what_the_channel_held() {
    let mut b = Broker::open(config());
    let ch = b.open_channel();
    b.send(0, ConnectionBlocked { reason: s("mem") });
    publish(&mut b, ch);
    let close = ChannelClose {
        reply_code: 404,
        reply_text: s("gone"),
        class_id: 0,
        method_id: 0,
    };
    b.send(1, close);
    assert_eq!(names(&b.methods()), ["channel.close-ok"]);
    assert_eq!(b.conn.held(), Held::default());
    b.send(0, ConnectionUnblocked {});
    b.expect_silence();
}

/// A large body goes out by reference ([`SHARED_BODY_MIN`]); held while blocked, it stays
/// a reference and keeps its place among the channel's frames.
#[test]
fn large_bodies_go_by_reference_through_the_hold_in_order() {
    use bytes::Buf;
    let mut b = Broker::open_with_tune(config(), 0, 64 * 1024, 0);
    let ch = b.open_channel();
    b.frames();
    let large = Bytes::from((0..SHARED_BODY_MIN * 5).map(|i| i as u8).collect::<Vec<u8>>());
    let small = Bytes::from_static(b"small");
    let props = BasicProperties::default();
    b.conn.publish(ch, &args(), &props, &large).expect("publish");
    b.send(0, ConnectionBlocked { reason: s("mem") });
    b.conn.publish(ch, &args(), &props, &small).expect("publish");
    b.conn.publish(ch, &args(), &props, &large).expect("publish");
    b.conn.call(ch, declare()).expect("declare");
    assert_eq!(b.conn.held().commands, 3);
    assert!(b.conn.held().bytes > large.len(), "a held body counts");
    let mut out = Output::new();
    assert!(b.conn.poll_transmit_output(b.now, &mut out));
    assert!(out.has_shared(), "the first body is a reference");
    b.send(0, ConnectionUnblocked {});
    assert!(b.conn.poll_transmit_output(b.now, &mut out));
    // Every body frame of a large body is a slice of the application's bytes.
    let mut slices = [std::io::IoSlice::new(&[]); 64];
    let n = out.chunks_vectored(&mut slices);
    let inside = |s: &[u8]| {
        s.as_ptr() >= large.as_ptr() && s.as_ptr() as usize + s.len() <= large.as_ptr() as usize + large.len()
    };
    let by_reference: usize = slices[..n].iter().filter(|s| inside(s)).map(|s| s.len()).sum();
    assert_eq!(by_reference, 2 * large.len());
    let mut sent = BytesMut::new();
    out.copy_into(&mut sent);
    b.inbox.extend_from_slice(&sent);
    let mut bodies = Vec::new();
    let mut methods = Vec::new();
    for frame in b.frames() {
        match frame {
            Frame::Body { payload, .. } => bodies.extend_from_slice(&payload),
            Frame::Method { method, .. } => methods.push(method.name()),
            Frame::Header { .. } | Frame::Heartbeat => {}
        }
    }
    assert_eq!(
        methods,
        ["basic.publish", "basic.publish", "basic.publish", "queue.declare"]
    );
    let expected: Vec<u8> = [&large[..], &small[..], &large[..]].concat();
    assert!(bodies == expected, "the bodies, whole and in order");
}
