use super::*;

fn confirming() -> (Broker, ChannelId) {
    let mut b = Broker::open(config());
    let ch = b.open_channel();
    b.confirm_select(ch);
    assert!(b.conn.is_confirm_mode(ch));
    (b, ch)
}

fn confirm(ch: ChannelId, seq: u64, ack: bool) -> Event {
    Event::Confirm {
        channel: ch,
        seq,
        ack,
        returned: None,
    }
}

fn returned(rk: &str) -> BasicReturn {
    BasicReturn {
        reply_code: 312,
        reply_text: s("NO_ROUTE"),
        exchange: s("ex"),
        routing_key: s(rk),
    }
}

fn send_return(b: &mut Broker, rk: &str, body: &'static [u8]) {
    b.send_content(1, returned(rk), body, 1 << 20);
}

/// A confirm as (seq, ack, returned routing key and body).
type Resolved = (u64, bool, Option<(String, Vec<u8>)>);

/// Each confirm event, resolved.
fn confirms(events: Vec<Event>) -> Vec<Resolved> {
    events
        .into_iter()
        .map(|e| match e {
            Event::Confirm { seq, ack, returned, .. } => {
                (seq, ack, returned.map(|r| (r.routing_key.to_string(), r.body.to_vec())))
            }
            other => panic!("{other:?}"),
        })
        .collect()
}

#[test]
fn publishes_are_numbered_and_single_acks_resolve_one() {
    let (mut b, ch) = confirming();
    assert_eq!(b.publish(ch, "a", false, b"1"), Some(1));
    assert_eq!(b.publish(ch, "a", false, b"2"), Some(2));
    assert_eq!(b.publish(ch, "a", false, b"3"), Some(3));
    b.send(
        1,
        BasicAck {
            delivery_tag: 2,
            multiple: false,
        },
    );
    assert_eq!(b.events(), vec![confirm(ch, 2, true)]);
    b.send(
        1,
        BasicAck {
            delivery_tag: 1,
            multiple: false,
        },
    );
    b.send(
        1,
        BasicAck {
            delivery_tag: 3,
            multiple: false,
        },
    );
    assert_eq!(b.events(), vec![confirm(ch, 1, true), confirm(ch, 3, true)]);
    // A tag already resolved is ignored.
    b.send(
        1,
        BasicAck {
            delivery_tag: 3,
            multiple: false,
        },
    );
    b.send(
        1,
        BasicAck {
            delivery_tag: 3,
            multiple: true,
        },
    );
    assert!(b.events().is_empty());
    b.expect_silence();
}

#[test]
fn multiple_ack_resolves_everything_up_to_the_tag() {
    let (mut b, ch) = confirming();
    for _ in 0..5 {
        b.publish(ch, "a", false, b"m");
    }
    b.send(
        1,
        BasicAck {
            delivery_tag: 3,
            multiple: true,
        },
    );
    assert_eq!(
        b.events(),
        vec![confirm(ch, 1, true), confirm(ch, 2, true), confirm(ch, 3, true)]
    );
    b.send(
        1,
        BasicNack {
            delivery_tag: 5,
            multiple: true,
            requeue: false,
        },
    );
    assert_eq!(b.events(), vec![confirm(ch, 4, false), confirm(ch, 5, false)]);
}

#[test]
fn nack_resolves_as_not_acked() {
    let (mut b, ch) = confirming();
    b.publish(ch, "a", false, b"m");
    b.send(
        1,
        BasicNack {
            delivery_tag: 1,
            multiple: false,
            requeue: false,
        },
    );
    assert_eq!(b.events(), vec![confirm(ch, 1, false)]);
}

#[test]
fn confirm_of_a_publish_never_sent_closes_the_channel_with_406() {
    let (mut b, ch) = confirming();
    b.publish(ch, "a", false, b"m");
    b.send(
        1,
        BasicAck {
            delivery_tag: 2,
            multiple: false,
        },
    );
    let methods = b.methods();
    assert!(
        matches!(methods.as_slice(), [(1, Method::ChannelClose(c))] if c.reply_code == 406 && (c.class_id, c.method_id) == (60, 80)),
        "{methods:?}"
    );
    b.send(1, ChannelCloseOk {});
    let events = b.events();
    assert!(matches!(
        events.as_slice(),
        [Event::ChannelClosed { error: Error::ChannelClosed { by: Initiator::Library, code, .. }, .. }] if *code == ReplyCode::PRECONDITION_FAILED
    ));
    assert_eq!(b.conn.state(), State::Open);
}

#[test]
fn return_is_matched_to_its_own_publish_among_several() {
    let (mut b, ch) = confirming();
    b.publish(ch, "a", true, b"x"); // 1: routed
    b.publish(ch, "b", true, b"y"); // 2: unroutable
    b.publish(ch, "b", true, b"z"); // 3: routed (same key, other body)
    b.publish(ch, "b", false, b"y"); // 4: not mandatory, same key and body
    send_return(&mut b, "b", b"y");
    assert!(b.events().is_empty(), "held until its confirm");
    b.send(
        1,
        BasicAck {
            delivery_tag: 4,
            multiple: true,
        },
    );
    assert_eq!(
        confirms(b.events()),
        vec![
            (1, true, None),
            (2, true, Some(("b".into(), b"y".to_vec()))),
            (3, true, None),
            (4, true, None)
        ]
    );
}

#[test]
fn held_return_waits_for_the_ack_that_covers_its_publish() {
    let (mut b, ch) = confirming();
    b.publish(ch, "ok", true, b"1"); // 1: routed, confirmed late
    b.publish(ch, "nowhere", true, b"2"); // 2: returned
    send_return(&mut b, "nowhere", b"2");
    b.send(
        1,
        BasicAck {
            delivery_tag: 1,
            multiple: false,
        },
    );
    assert_eq!(confirms(b.events()), vec![(1, true, None)]);
    b.send(
        1,
        BasicAck {
            delivery_tag: 2,
            multiple: false,
        },
    );
    assert_eq!(
        confirms(b.events()),
        vec![(2, true, Some(("nowhere".into(), b"2".to_vec())))]
    );
}

#[test]
fn identical_publishes_get_one_return_each_in_order() {
    let (mut b, ch) = confirming();
    b.publish(ch, "k", true, b"same");
    b.publish(ch, "k", true, b"same");
    b.publish(ch, "k", true, b"same");
    send_return(&mut b, "k", b"same");
    send_return(&mut b, "k", b"same");
    b.send(
        1,
        BasicAck {
            delivery_tag: 3,
            multiple: true,
        },
    );
    let got = confirms(b.events());
    let returned: Vec<bool> = got.iter().map(|(_, _, r)| r.is_some()).collect();
    assert_eq!(returned, vec![true, true, false]);
}

#[test]
fn return_with_no_matching_publish_is_reported_alone() {
    let (mut b, ch) = confirming();
    b.publish(ch, "k", false, b"m"); // not mandatory: keeps no key
    send_return(&mut b, "k", b"m");
    let events = b.events();
    assert!(
        matches!(&events[..], [Event::Return { channel, returned }] if *channel == ch && returned.routing_key == "k" && returned.reply_code == ReplyCode::NO_ROUTE),
        "{events:?}"
    );
    b.send(
        1,
        BasicAck {
            delivery_tag: 1,
            multiple: false,
        },
    );
    assert_eq!(b.events(), vec![confirm(ch, 1, true)]);
}

#[test]
fn return_outside_confirm_mode_is_an_event() {
    let mut b = Broker::open(config());
    let ch = b.open_channel();
    b.publish(ch, "k", true, b"body");
    send_return(&mut b, "k", b"body");
    let events = b.events();
    assert!(
        matches!(&events[..], [Event::Return { channel, returned }] if *channel == ch && &returned.body[..] == b"body")
    );
}

#[test]
fn confirm_and_tx_exclude_each_other() {
    let (mut b, ch) = confirming();
    assert!(matches!(
        b.conn.call(ch, TxSelect {}.into()),
        Err(Error::NotAllowed { .. })
    ));
    b.expect_silence();

    let ch2 = b.open_channel();
    b.conn.call(ch2, TxSelect {}.into()).expect("tx.select");
    b.frames();
    assert!(matches!(
        b.conn.call(ch2, ConfirmSelect { nowait: false }.into()),
        Err(Error::NotAllowed { .. })
    ));
    b.expect_silence();
    assert_eq!(b.publish(ch2, "k", false, b"m"), None, "no sequence numbers in tx mode");
}

#[test]
fn confirm_select_nowait_numbers_publishes_at_once() {
    let mut b = Broker::open(config());
    let ch = b.open_channel();
    b.conn.call(ch, ConfirmSelect { nowait: true }.into()).expect("select");
    assert_eq!(b.publish(ch, "k", false, b"m"), Some(1));
    b.send(
        1,
        BasicAck {
            delivery_tag: 1,
            multiple: false,
        },
    );
    assert_eq!(b.events(), vec![confirm(ch, 1, true)]);
}

#[test]
fn channel_close_drops_unconfirmed_publishes_with_the_channel() {
    let (mut b, ch) = confirming();
    b.publish(ch, "k", true, b"m");
    b.send(
        1,
        ChannelClose {
            reply_code: 404,
            reply_text: s("NOT_FOUND - no exchange"),
            class_id: 60,
            method_id: 40,
        },
    );
    b.frames();
    let events = b.events();
    assert!(matches!(&events[..], [Event::ChannelClosed { channel, .. }] if *channel == ch));
    assert_eq!(
        b.conn
            .publish(ch, &BasicPublish::default(), &Default::default(), &Bytes::new()),
        Err(Error::ChannelNotOpen { channel: 1 })
    );
}

#[test]
fn awaits_reply_while_a_call_is_outstanding_and_counts_unconfirmed_publishes() {
    let mut b = Broker::open(config());
    assert!(!b.conn.awaits_reply(), "open and idle");
    let ch = b.open_channel();
    b.declare_pending(ch);
    assert!(b.conn.awaits_reply(), "a call without its reply");
    b.send(
        1,
        QueueDeclareOk {
            queue: s("q"),
            message_count: 0,
            consumer_count: 0,
        },
    );
    b.events();
    assert!(!b.conn.awaits_reply());
    assert_eq!(b.conn.unconfirmed(ch), 0, "not in confirm mode");
    b.confirm_select(ch);
    b.publish(ch, "q", false, b"m");
    b.publish(ch, "q", false, b"m");
    assert_eq!(b.conn.unconfirmed(ch), 2);
    assert!(!b.conn.awaits_reply(), "confirms are not replies");
    b.send(
        1,
        BasicAck {
            delivery_tag: 1,
            multiple: false,
        },
    );
    assert_eq!(b.events(), vec![confirm(ch, 1, true)]);
    assert_eq!(b.conn.unconfirmed(ch), 1);
    b.conn.close(b.now, ReplyCode::SUCCESS, "bye").expect("close");
    assert!(b.conn.awaits_reply(), "a close without its close-ok");
}
