//! Consuming again after a server cancel (`reconsume.rs`): the consumer is suspended, its
//! queue probed on a channel of its own with backoff, and consumed again once there.

use super::*;

fn reconsuming() -> Config {
    Config {
        reconsume: Some(Reconsume {
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(2),
        }),
        ..config()
    }
}

fn server_cancel(b: &mut Broker, ch: ChannelId, tag: &str) {
    b.send(
        ch.number(),
        BasicCancel {
            consumer_tag: s(tag),
            no_wait: false,
        },
    );
    assert_eq!(
        b.methods(),
        vec![(
            ch.number(),
            Method::BasicCancelOk(BasicCancelOk { consumer_tag: s(tag) })
        )]
    );
}

/// The probe the client sends now: channel.open and a passive declare of "q" on a new
/// channel, whose number it returns.
fn expect_probe(b: &mut Broker) -> u16 {
    let methods = b.methods();
    let [(n, Method::ChannelOpen(_)), (m, Method::QueueDeclare(d))] = methods.as_slice() else {
        panic!("expected a probe (open + passive declare), got {methods:?}");
    };
    assert_eq!(n, m);
    assert!(d.passive, "the probe declares passively");
    assert_eq!(d.queue, s("q"));
    *n
}

/// A consumer `c1` the server cancelled, and the channel number of its first probe
/// (500 ms later).
fn first_probe() -> (Broker, ChannelId, u16) {
    let mut b = Broker::open(reconsuming());
    let ch = b.open_channel();
    b.consume(ch, "c1", false);
    server_cancel(&mut b, ch, "c1");
    b.events();
    b.advance(Duration::from_millis(500));
    let probe = expect_probe(&mut b);
    (b, ch, probe)
}

/// The server refuses the probe as RabbitMQ does for a queue whose node is down.
fn refuse_probe(b: &mut Broker, probe: u16) {
    b.send(probe, ChannelOpenOk {});
    b.send(
        probe,
        ChannelClose {
            reply_code: ReplyCode::NOT_FOUND.0,
            reply_text: s("NOT_FOUND - home node of durable queue 'q' is down or inaccessible"),
            class_id: 50,
            method_id: 10,
        },
    );
    assert_eq!(b.methods(), vec![(probe, Method::ChannelCloseOk(ChannelCloseOk {}))]);
}

#[test]
fn a_cancelled_consumer_is_suspended_probed_with_backoff_and_consumed_again() {
    let mut b = Broker::open(reconsuming());
    let ch = b.open_channel();
    b.consume(ch, "c1", false);
    server_cancel(&mut b, ch, "c1");
    assert_eq!(
        b.events(),
        vec![Event::ConsumerSuspended {
            channel: ch,
            consumer_tag: s("c1")
        }]
    );
    assert_eq!(b.conn.poll_timeout(), Some(b.now + Duration::from_millis(500)));
    b.advance(Duration::from_millis(499));
    b.expect_silence();

    // Probes at 500 ms, then 1 s and 2 s (the ceiling) after each refusal.
    let mut waits = Vec::new();
    let mut wait = Duration::from_millis(1);
    for _ in 0..4 {
        b.advance(wait);
        let probe = expect_probe(&mut b);
        refuse_probe(&mut b, probe);
        assert!(b.events().is_empty(), "a probe is not the application's business");
        wait = b.conn.poll_timeout().expect("next probe") - b.now;
        waits.push(wait.as_millis());
    }
    assert_eq!(waits, [1000, 2000, 2000, 2000]);

    // The queue is back: the probe succeeds, the probe channel closes, the consumer's
    // own consume goes out on its channel with its tag.
    b.advance(wait);
    let probe = expect_probe(&mut b);
    b.send(probe, ChannelOpenOk {});
    b.send(
        probe,
        QueueDeclareOk {
            queue: s("q"),
            message_count: 3,
            consumer_count: 0,
        },
    );
    let methods = b.methods();
    let [(p, Method::ChannelClose(_)), (c, Method::BasicConsume(consume))] = methods.as_slice() else {
        panic!("expected the probe's close and the consume, got {methods:?}");
    };
    assert_eq!((*p, *c), (probe, ch.number()));
    assert_eq!((consume.queue.as_str(), consume.consumer_tag.as_str()), ("q", "c1"));
    assert!(!consume.no_wait);
    b.send(probe, ChannelCloseOk {});
    b.send(ch.number(), BasicConsumeOk { consumer_tag: s("c1") });
    assert_eq!(
        b.events(),
        vec![Event::ConsumerResumed {
            channel: ch,
            consumer_tag: s("c1")
        }]
    );
    // Deliveries flow again, with acks required as before; no probe is left.
    b.deliver(ch.number(), "c1", 1, b"again");
    let events = b.events();
    let [Event::Delivery { delivery, .. }] = events.as_slice() else {
        panic!("expected a delivery, got {events:?}");
    };
    b.conn.ack(delivery.delivery_tag, false).expect("ack");
    assert!(matches!(b.expect_method(ch.number()), Method::BasicAck(_)));
    b.advance(Duration::from_secs(10));
    assert!(
        b.methods()
            .iter()
            .all(|(_, m)| !matches!(m, Method::ChannelOpen(_) | Method::QueueDeclare(_)))
    );
}

#[test]
fn off_by_default_a_server_cancel_ends_the_consumer() {
    let mut b = Broker::open(config());
    let ch = b.open_channel();
    b.consume(ch, "c1", false);
    server_cancel(&mut b, ch, "c1");
    assert_eq!(
        b.events(),
        vec![Event::ConsumerCancelled {
            channel: ch,
            consumer_tag: s("c1"),
            reason: crate::error::CancelReason::QueueDeleted,
        }]
    );
    b.advance(Duration::from_secs(5));
    assert!(b.methods().iter().all(|(_, m)| !matches!(m, Method::QueueDeclare(_))));
}

#[test]
fn an_application_cancel_while_suspended_stops_the_probes() {
    let mut b = Broker::open(reconsuming());
    let ch = b.open_channel();
    b.consume(ch, "c1", false);
    server_cancel(&mut b, ch, "c1");
    b.events();
    b.conn
        .call(
            ch,
            BasicCancel {
                consumer_tag: s("c1"),
                no_wait: false,
            }
            .into(),
        )
        .expect("cancel");
    assert!(matches!(b.expect_method(ch.number()), Method::BasicCancel(_)));
    // RabbitMQ answers cancel-ok for a tag it does not know.
    b.send(ch.number(), BasicCancelOk { consumer_tag: s("c1") });
    b.events();
    b.advance(Duration::from_secs(1));
    b.expect_silence();
    assert!(
        b.conn
            .poll_timeout()
            .is_some_and(|t| t > b.now + Duration::from_secs(10))
    );
}

#[test]
fn a_probe_during_which_the_consumers_channel_closes_is_closed() {
    let (mut b, ch, probe) = first_probe();
    b.conn.close_channel(ch, ReplyCode::SUCCESS, "bye").expect("close");
    b.send(ch.number(), ChannelCloseOk {});
    // The consumer's channel is gone: its probe is closed, no consume follows.
    let methods = b.methods();
    assert!(
        matches!(methods.as_slice(), [(c, Method::ChannelClose(_)), (p, Method::ChannelClose(_))] if *c == ch.number() && *p == probe),
        "{methods:?}"
    );
    b.send(probe, ChannelOpenOk {});
    b.send(probe, ChannelCloseOk {});
    b.expect_silence();
    b.advance(Duration::from_secs(10));
    let methods = b.methods();
    assert!(
        methods
            .iter()
            .all(|(_, m)| !matches!(m, Method::BasicConsume(_) | Method::QueueDeclare(_))),
        "{methods:?}"
    );
}

#[test]
fn with_reconsume_recovery_probes_each_consumers_queue_before_consuming() {
    let mut b = Broker::open(reconsuming());
    let ch = b.open_channel();
    b.consume(ch, "c1", false);
    b.consume(ch, "c2", false);
    // c2 was suspended when the connection went: both come back the same way.
    server_cancel(&mut b, ch, "c2");
    b.events();
    b.conn.handle_eof();
    b.events();
    let conn = b.conn.successor(reconsuming(), b.now, false);
    let mut next = Broker::with(conn, b.now);
    next.handshake(2047, 131_072, 60);
    let methods = next.methods();
    assert!(
        matches!(methods.as_slice(), [(1, Method::ChannelOpen(_))]),
        "{methods:?}"
    );
    // Recovered at once: the consumers follow, each after its probe.
    let events = next.events();
    assert!(
        matches!(events.as_slice(), [Event::Connected { .. }, Event::Recovered(_)]),
        "{events:?}"
    );
    next.send(1, ChannelOpenOk {});
    next.advance(Duration::ZERO);
    let methods = next.methods();
    let probes: Vec<u16> = methods
        .iter()
        .filter_map(|(n, m)| matches!(m, Method::QueueDeclare(d) if d.passive).then_some(*n))
        .collect();
    assert_eq!(probes.len(), 2, "{methods:?}");
    // The queue's node is down: the first probe is refused; the second finds it.
    refuse_probe(&mut next, probes[0]);
    next.send(probes[1], ChannelOpenOk {});
    next.send(
        probes[1],
        QueueDeclareOk {
            queue: s("q"),
            message_count: 0,
            consumer_count: 0,
        },
    );
    let methods = next.methods();
    let consumes: Vec<&str> = methods
        .iter()
        .filter_map(|(n, m)| match m {
            Method::BasicConsume(c) if *n == 1 => Some(c.consumer_tag.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(consumes.len(), 1, "{methods:?}");
    let tag = consumes[0].to_owned();
    next.send(probes[1], ChannelCloseOk {});
    next.send(1, BasicConsumeOk { consumer_tag: s(&tag) });
    assert_eq!(
        next.events(),
        vec![Event::ConsumerResumed {
            channel: ch,
            consumer_tag: s(&tag)
        }]
    );
    // The other one is probed again after the backoff.
    next.advance(Duration::from_secs(1));
    assert!(expect_probe(&mut next) > 0);
}

#[test]
fn without_reconsume_recovery_consumes_directly() {
    let mut b = Broker::open(config());
    let ch = b.open_channel();
    b.consume(ch, "c1", false);
    b.conn.handle_eof();
    b.events();
    let conn = b.conn.successor(config(), b.now, false);
    let mut next = Broker::with(conn, b.now);
    next.handshake(2047, 131_072, 60);
    let methods = next.methods();
    assert!(
        matches!(methods.as_slice(), [(1, Method::ChannelOpen(_)), (1, Method::BasicConsume(c))] if c.consumer_tag == s("c1")),
        "{methods:?}"
    );
}

#[test]
fn a_cancel_during_the_probe_closes_the_probe_and_sends_no_consume() {
    let (mut b, ch, probe) = first_probe();
    b.conn
        .call(
            ch,
            BasicCancel {
                consumer_tag: s("c1"),
                no_wait: true,
            }
            .into(),
        )
        .expect("cancel");
    assert!(matches!(b.expect_method(ch.number()), Method::BasicCancel(_)));
    // The next timer does not drop the probe under way; its answer closes it.
    b.advance(Duration::from_secs(1));
    b.expect_silence();
    b.send(probe, ChannelOpenOk {});
    b.send(
        probe,
        QueueDeclareOk {
            queue: s("q"),
            message_count: 0,
            consumer_count: 0,
        },
    );
    assert_eq!(
        b.methods(),
        vec![(
            probe,
            Method::ChannelClose(ChannelClose {
                reply_code: 200,
                reply_text: s("re-consume probe"),
                class_id: 0,
                method_id: 0
            })
        )]
    );
    b.send(probe, ChannelCloseOk {});
    assert!(b.events().is_empty());
}
