//! RabbitMQ 4.3 behaviour that the local 3.10 broker does not show, scripted.
//!
//! - A consumer that keeps a delivery unacknowledged past its consumer timeout is
//!   cancelled with `basic.cancel(tag, nowait = true)` when the client announces
//!   `consumer_cancel_notify` (rabbitmq-server `consumer_timeouts.md`, "Changes from
//!   v4.2.x"; `consumer_timeout_SUITE`: `consumer_timeout_with_basic_cancel_capability`).
//!   4.3.7 also takes a `basic.cancel-ok` answer from clients when it announces
//!   `accept_consumer_cancel_ok` (4.3.7 release notes; `server_advertises_accept_consumer_cancel_ok`).
//! - Deprecated features denied by default (4.3.0 release notes, "Deprecated Features are
//!   Now Disabled by Default"): a transient non-exclusive queue or a global QoS makes the
//!   broker close the connection with 541 INTERNAL_ERROR "Feature `transient_nonexcl_queues`
//!   is deprecated. By default, this feature is not permitted anymore." (as reported
//!   against RabbitMQ 4.3 in rabbitmq-dotnet-client#1931).

use super::*;
use crate::error::DeprecatedFeature;

fn consume_with(b: &mut Broker, ch: ChannelId, tag: &str, arguments: FieldTable) {
    let consume = BasicConsume {
        queue: s("q"),
        consumer_tag: s(tag),
        arguments,
        ..Default::default()
    };
    b.conn.call(ch, consume.into()).expect("consume");
    assert!(matches!(b.expect_method(ch.number()), Method::BasicConsume(_)));
    b.send(ch.number(), BasicConsumeOk { consumer_tag: s(tag) });
    b.events();
}

fn server_cancel(b: &mut Broker, ch: ChannelId, tag: &str) -> CancelReason {
    b.send(
        ch.number(),
        BasicCancel {
            consumer_tag: s(tag),
            no_wait: true,
        },
    );
    let events = b.events();
    match events.as_slice() {
        [
            Event::ConsumerCancelled {
                channel,
                consumer_tag,
                reason,
            },
        ] if *channel == ch && consumer_tag == tag => *reason,
        other => panic!("expected one ConsumerCancelled, got {other:?}"),
    }
}

#[test]
fn a_cancel_after_a_delivery_outlived_the_consumers_timeout_is_an_ack_timeout() {
    let mut b = Broker::open(config());
    let ch = b.open_channel();
    let args = FieldTable::new().with("x-consumer-timeout", 2_000i64);
    consume_with(&mut b, ch, "c", args);
    b.deliver(1, "c", 1, b"held");
    b.events();
    b.advance(Duration::from_millis(2_500));
    let reason = server_cancel(&mut b, ch, "c");
    assert_eq!(
        reason,
        CancelReason::AckTimeout {
            held: Duration::from_millis(2_500)
        }
    );
    b.expect_silence(); // no cancel-ok: this server did not announce it takes one
    assert!(b.conn.is_channel_usable(ch), "the channel goes on");
}

#[test]
fn a_cancel_with_nothing_held_that_long_is_the_queues_end() {
    let mut b = Broker::open(config());
    let ch = b.open_channel();
    let args = FieldTable::new().with("x-consumer-timeout", 2_000i64);
    consume_with(&mut b, ch, "c", args);
    b.deliver(1, "c", 1, b"young");
    b.events();
    b.advance(Duration::from_millis(1_000));
    assert_eq!(
        server_cancel(&mut b, ch, "c"),
        CancelReason::QueueDeleted,
        "held 1 s < 2 s"
    );

    let args = FieldTable::new().with("x-consumer-timeout", 2_000i64);
    consume_with(&mut b, ch, "d", args);
    b.deliver(1, "d", 2, b"acked");
    b.events();
    for tag in [1, 2] {
        let tag = DeliveryTag {
            generation: 0,
            channel: ch,
            tag,
        };
        b.conn.ack(tag, false).expect("ack");
    }
    b.frames();
    b.advance(Duration::from_secs(10));
    assert_eq!(
        server_cancel(&mut b, ch, "d"),
        CancelReason::QueueDeleted,
        "nothing unacked"
    );
}

#[test]
fn without_a_consumer_argument_the_configured_broker_timeout_applies() {
    let mut b = Broker::open(Config {
        consumer_timeout: Duration::from_secs(5),
        ..config()
    });
    let ch = b.open_channel();
    consume_with(&mut b, ch, "c", FieldTable::new());
    b.deliver(1, "c", 1, b"held");
    b.events();
    b.advance(Duration::from_secs(4));
    b.advance(Duration::from_secs(1));
    assert_eq!(
        server_cancel(&mut b, ch, "c"),
        CancelReason::AckTimeout {
            held: Duration::from_secs(5)
        }
    );
}

#[test]
fn a_server_that_accepts_cancel_ok_gets_one_for_its_own_cancel() {
    let mut b = Broker::new(config());
    let mut props = server_properties();
    let mut caps = FieldTable::new();
    caps.insert(s("consumer_cancel_notify"), true);
    caps.insert(s("accept_consumer_cancel_ok"), true);
    props.insert(s("capabilities"), caps);
    b.send(
        0,
        ConnectionStart {
            server_properties: props,
            ..start("PLAIN")
        },
    );
    assert!(matches!(b.expect_method(0), Method::ConnectionStartOk(_)));
    b.send(
        0,
        ConnectionTune {
            channel_max: 2047,
            frame_max: 131_072,
            heartbeat: 60,
        },
    );
    b.frames();
    b.send(0, ConnectionOpenOk {});
    b.events();
    let ch = b.open_channel();
    consume_with(&mut b, ch, "c", FieldTable::new());
    server_cancel(&mut b, ch, "c");
    assert_eq!(
        b.methods(),
        vec![(1, Method::BasicCancelOk(BasicCancelOk { consumer_tag: s("c") }))]
    );
}

fn deprecated_close(feature: &str, method: MethodId) -> Error {
    let mut b = Broker::open(config());
    let ch = b.open_channel();
    let call: Method = if method == QueueDeclare::ID {
        QueueDeclare {
            queue: s("transient"),
            ..Default::default()
        }
        .into()
    } else {
        BasicQos {
            prefetch_size: 0,
            prefetch_count: 10,
            global: true,
        }
        .into()
    };
    b.conn.call(ch, call).expect("call");
    b.frames();
    let text = format!(
        "INTERNAL_ERROR - Feature `{feature}` is deprecated.\nBy default, this feature is not permitted anymore."
    );
    b.send(
        0,
        ConnectionClose {
            reply_code: 541,
            reply_text: s(&text),
            class_id: method.class_id,
            method_id: method.method_id,
        },
    );
    assert!(matches!(b.expect_method(0), Method::ConnectionCloseOk(_)));
    let events = b.events();
    let Some(Event::ConnectionClosed(e)) = events.last() else {
        panic!("expected the connection to close: {events:?}");
    };
    e.clone()
}

#[test]
fn a_refused_transient_queue_says_what_to_do_and_is_not_retried() {
    let e = deprecated_close("transient_nonexcl_queues", QueueDeclare::ID);
    assert_eq!(
        e.deprecated_feature(),
        Some(DeprecatedFeature::TransientNonExclusiveQueues)
    );
    assert_eq!(e.reply_code(), Some(ReplyCode::INTERNAL_ERROR));
    assert!(
        !e.is_recoverable(),
        "recovery would declare the same queue again and be refused again"
    );
    let text = e.to_string();
    assert!(text.contains("(in queue.declare)"), "{text}");
    assert!(text.contains("declare the queue durable"), "{text}");
    assert!(text.contains("or exclusive"), "{text}");
}

#[test]
fn a_refused_global_qos_says_what_to_do() {
    let e = deprecated_close("global_qos", BasicQos::ID);
    assert_eq!(e.deprecated_feature(), Some(DeprecatedFeature::GlobalQos));
    assert!(!e.is_recoverable());
    assert!(e.to_string().contains("per-consumer prefetch"), "{e}");
    // Any other 541 stays what it was: recoverable, no hint.
    let other = Error::ConnectionClosed {
        by: Initiator::Server,
        code: ReplyCode::INTERNAL_ERROR,
        text: "INTERNAL_ERROR".into(),
        method: None,
    };
    assert_eq!(other.deprecated_feature(), None);
    assert!(other.is_recoverable());
}
