//! What connection recovery needs from the state machine: channels reopened under the ids
//! their handles hold, epochs that continue across connections, stale tags refused.

use super::*;

#[test]
fn reopened_channels_keep_their_ids_and_epochs_continue() {
    let mut old = Broker::open(config());
    let a = old.open_channel();
    let b = old.open_channel();
    let c = old.open_channel();
    old.conn.close_channel(b, ReplyCode::SUCCESS, "bye").expect("close b");
    // The old connection is lost; a new one (next generation) takes over.
    let mut new = Broker::open(Config {
        generation: 1,
        ..config()
    });
    new.conn.resume_epochs(old.conn.next_epoch());
    for id in [a, c] {
        new.conn.reopen_channel(id).expect("reopen");
        assert_eq!(new.expect_method(id.number()), Method::ChannelOpen(ChannelOpen {}));
        // Calls are pipelined behind the reopen, as behind an open.
        new.conn
            .call(
                id,
                BasicQos {
                    prefetch_size: 0,
                    prefetch_count: 5,
                    global: false,
                }
                .into(),
            )
            .expect("qos");
        assert!(matches!(new.expect_method(id.number()), Method::BasicQos(_)));
        new.send(id.number(), ChannelOpenOk {});
        new.send(id.number(), BasicQosOk {});
    }
    let events = new.events();
    assert!(
        events.contains(&Event::ChannelOpened(a)) && events.contains(&Event::ChannelOpened(c)),
        "{events:?}"
    );
    assert!(new.conn.is_channel_usable(a) && new.conn.is_channel_usable(c));
    // b's number is free again, but a new channel there is not b.
    let d = new.open_channel();
    assert_eq!(d.number(), b.number());
    assert!(d.epoch() > c.epoch() && d != b, "{d} after {c}");
    assert!(!new.conn.is_channel_usable(b));
}

#[test]
fn reopen_refuses_a_number_in_use_or_over_the_limit() {
    let mut b = Broker::open_with_tune(config(), 2, 131_072, 60);
    let a = b.open_channel();
    assert!(matches!(b.conn.reopen_channel(a), Err(Error::NotAllowed { .. })));
    let far = ChannelId { number: 3, epoch: 9 };
    assert_eq!(b.conn.reopen_channel(far), Err(Error::ChannelLimit { max: 2 }));
    b.expect_silence();
}

#[test]
fn deliveries_from_the_previous_generation_are_stale_on_a_reopened_channel() {
    let mut old = Broker::open(config());
    let ch = old.open_channel();
    old.consume(ch, "ctag", false);
    old.deliver(ch.number(), "ctag", 1, b"before");
    let Some(Event::Delivery { delivery, .. }) = old.events().pop() else {
        panic!("no delivery")
    };

    let mut new = Broker::open(Config {
        generation: 1,
        ..config()
    });
    new.conn.reopen_channel(ch).expect("reopen");
    let _ = new.expect_method(ch.number());
    new.send(ch.number(), ChannelOpenOk {});
    assert_eq!(new.events(), vec![Event::ChannelOpened(ch)]);
    new.consume(ch, "ctag", false);
    assert_eq!(
        new.conn.ack(delivery.delivery_tag, false),
        Err(Error::StaleDelivery { tag: 1 })
    );
    new.expect_silence();
    new.deliver(ch.number(), "ctag", 1, b"again");
    let Some(Event::Delivery { delivery: again, .. }) = new.events().pop() else {
        panic!("no redelivery")
    };
    new.conn
        .ack(again.delivery_tag, false)
        .expect("an ack of this generation goes out");
}
