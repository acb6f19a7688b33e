use super::*;

/// Channel 1 consuming with acks, deliveries `tags` received; their `DeliveryTag`s.
fn delivered(b: &mut Broker, ch: ChannelId, tags: &[u64]) -> Vec<DeliveryTag> {
    for &t in tags {
        b.deliver(ch.number(), "c", t, b"m");
    }
    b.events()
        .into_iter()
        .map(|e| match e {
            Event::Delivery { channel, delivery } => {
                assert_eq!(channel, ch);
                assert_eq!(delivery.delivery_tag.generation(), b.conn.generation());
                delivery.delivery_tag
            }
            other => panic!("{other:?}"),
        })
        .collect()
}

fn consuming(cfg: Config) -> (Broker, ChannelId) {
    let mut b = Broker::open(cfg);
    let ch = b.open_channel();
    b.consume(ch, "c", false);
    (b, ch)
}

#[test]
fn ack_nack_reject_are_sent_once() {
    let (mut b, ch) = consuming(config());
    let tags = delivered(&mut b, ch, &[1, 2, 3]);
    b.conn.ack(tags[0], false).expect("ack");
    b.conn.nack(tags[1], false, true).expect("nack");
    b.conn.reject(tags[2], false).expect("reject");
    assert_eq!(
        b.methods(),
        vec![
            (
                1,
                BasicAck {
                    delivery_tag: 1,
                    multiple: false
                }
                .into()
            ),
            (
                1,
                BasicNack {
                    delivery_tag: 2,
                    multiple: false,
                    requeue: true
                }
                .into()
            ),
            (
                1,
                BasicReject {
                    delivery_tag: 3,
                    requeue: false
                }
                .into()
            ),
        ]
    );
    for tag in tags {
        assert_eq!(
            b.conn.ack(tag, false),
            Err(Error::UnknownDeliveryTag { tag: tag.value() })
        );
    }
    b.expect_silence();
}

#[test]
fn double_ack_is_refused_and_sends_nothing() {
    let (mut b, ch) = consuming(config());
    let tags = delivered(&mut b, ch, &[1]);
    b.conn.ack(tags[0], false).expect("ack");
    b.frames();
    assert_eq!(b.conn.ack(tags[0], false), Err(Error::UnknownDeliveryTag { tag: 1 }));
    assert_eq!(b.conn.reject(tags[0], true), Err(Error::UnknownDeliveryTag { tag: 1 }));
    b.expect_silence();
    assert_eq!(b.conn.state(), State::Open);
}

#[test]
fn multiple_ack_settles_everything_up_to_the_tag() {
    let (mut b, ch) = consuming(config());
    let tags = delivered(&mut b, ch, &[1, 2, 3, 4]);
    b.conn.ack(tags[1], false).expect("ack 2");
    b.conn.ack(tags[2], true).expect("ack up to 3");
    assert_eq!(
        b.methods(),
        vec![
            (
                1,
                BasicAck {
                    delivery_tag: 2,
                    multiple: false
                }
                .into()
            ),
            (
                1,
                BasicAck {
                    delivery_tag: 3,
                    multiple: true
                }
                .into()
            ),
        ]
    );
    assert_eq!(
        b.conn.ack(tags[0], false),
        Err(Error::UnknownDeliveryTag { tag: 1 }),
        "covered by multiple"
    );
    b.conn.nack(tags[3], true, false).expect("4 is still outstanding");
    assert_eq!(
        b.methods(),
        vec![(
            1,
            BasicNack {
                delivery_tag: 4,
                multiple: true,
                requeue: false
            }
            .into()
        )]
    );
}

#[test]
fn tag_from_another_generation_is_stale() {
    let (mut b, ch) = consuming(Config {
        generation: 1,
        ..config()
    });
    let tags = delivered(&mut b, ch, &[1]);
    // The same delivery as an older connection would have numbered it.
    let (mut old, old_ch) = consuming(Config {
        generation: 0,
        ..config()
    });
    let old_tags = delivered(&mut old, old_ch, &[1]);
    assert_eq!(old_tags[0].value(), tags[0].value());
    assert_eq!(old_tags[0].channel().number(), tags[0].channel().number());
    assert_eq!(b.conn.ack(old_tags[0], false), Err(Error::StaleDelivery { tag: 1 }));
    b.expect_silence();
    b.conn.ack(tags[0], false).expect("current generation");
}

#[test]
fn tag_from_a_closed_channel_is_stale_even_after_reopen() {
    let (mut b, ch) = consuming(config());
    let tags = delivered(&mut b, ch, &[1, 2]);
    b.send(
        1,
        ChannelClose {
            reply_code: 406,
            reply_text: s("PRECONDITION_FAILED"),
            class_id: 60,
            method_id: 80,
        },
    );
    b.frames();
    b.events();
    assert_eq!(b.conn.ack(tags[0], false), Err(Error::StaleDelivery { tag: 1 }));
    let again = b.open_channel();
    assert_eq!(again.number(), ch.number());
    b.consume(again, "c", false);
    delivered(&mut b, again, &[1]);
    assert_eq!(
        b.conn.ack(tags[0], false),
        Err(Error::StaleDelivery { tag: 1 }),
        "same number, new epoch"
    );
    assert_eq!(b.conn.nack(tags[1], true, true), Err(Error::StaleDelivery { tag: 2 }));
    b.expect_silence();
}

#[test]
fn tag_of_a_channel_being_closed_is_stale() {
    let (mut b, ch) = consuming(config());
    let tags = delivered(&mut b, ch, &[1]);
    b.conn.close_channel(ch, ReplyCode::SUCCESS, "bye").expect("close");
    b.frames();
    assert_eq!(b.conn.ack(tags[0], false), Err(Error::StaleDelivery { tag: 1 }));
    b.expect_silence();
}

#[test]
fn no_ack_consumers_are_not_tracked() {
    let mut b = Broker::open(config());
    let ch = b.open_channel();
    b.consume(ch, "auto", true);
    b.consume(ch, "manual", false);
    b.deliver(1, "auto", 1, b"a");
    b.deliver(1, "manual", 2, b"m");
    let tags: Vec<DeliveryTag> = b
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Delivery { delivery, .. } => Some(delivery.delivery_tag),
            _ => None,
        })
        .collect();
    assert_eq!(b.conn.ack(tags[0], false), Err(Error::UnknownDeliveryTag { tag: 1 }));
    b.expect_silence();
    b.conn.ack(tags[1], false).expect("manual");
}

#[test]
fn server_named_no_ack_consumer_is_learned_from_consume_ok() {
    let mut b = Broker::open(config());
    let ch = b.open_channel();
    let consume = BasicConsume {
        queue: s("q"),
        consumer_tag: s(""),
        no_ack: true,
        ..Default::default()
    };
    b.conn.call(ch, consume.into()).expect("consume");
    b.frames();
    b.send(
        1,
        BasicConsumeOk {
            consumer_tag: s("amq.ctag-xyz"),
        },
    );
    b.events();
    b.deliver(1, "amq.ctag-xyz", 1, b"a");
    let Some(Event::Delivery { delivery, .. }) = b.events().pop() else {
        panic!("delivery")
    };
    assert_eq!(
        b.conn.ack(delivery.delivery_tag, false),
        Err(Error::UnknownDeliveryTag { tag: 1 })
    );
}

#[test]
fn get_ok_with_no_ack_is_not_tracked() {
    let mut b = Broker::open(config());
    let ch = b.open_channel();
    b.conn
        .call(
            ch,
            BasicGet {
                queue: s("q"),
                no_ack: true,
            }
            .into(),
        )
        .expect("get");
    b.frames();
    let get_ok = BasicGetOk {
        delivery_tag: 1,
        redelivered: false,
        exchange: s(""),
        routing_key: s("q"),
        message_count: 0,
    };
    b.send_content(1, get_ok, b"m", 100);
    let Some(Event::Reply {
        content: Some(content), ..
    }) = b.events().pop()
    else {
        panic!("get-ok")
    };
    assert_eq!(
        b.conn.ack(content.delivery_tag, false),
        Err(Error::UnknownDeliveryTag { tag: 1 })
    );
}

#[test]
fn recover_forgets_outstanding_deliveries() {
    let (mut b, ch) = consuming(config());
    let tags = delivered(&mut b, ch, &[1, 2]);
    b.conn.call(ch, BasicRecover { requeue: true }.into()).expect("recover");
    b.frames();
    assert_eq!(b.conn.ack(tags[0], false), Err(Error::UnknownDeliveryTag { tag: 1 }));
    b.send(1, BasicRecoverOk {});
    assert!(matches!(
        b.events().as_slice(),
        [Event::Reply {
            method: Method::BasicRecoverOk(_),
            ..
        }]
    ));
    let redelivered = delivered(&mut b, ch, &[3]);
    b.conn.ack(redelivered[0], true).expect("new tag");
}

#[test]
fn acks_after_the_connection_failed_return_its_error() {
    let (mut b, ch) = consuming(config());
    let tags = delivered(&mut b, ch, &[1]);
    b.conn.handle_eof();
    let err = b.conn.error().cloned().expect("error");
    assert_eq!(b.conn.ack(tags[0], false), Err(err));
    b.expect_silence();
}

fn ack(tag: u64, multiple: bool) -> Method {
    BasicAck {
        delivery_tag: tag,
        multiple,
    }
    .into()
}

#[test]
fn acks_of_the_oldest_delivery_coalesce_into_one_multiple_ack() {
    let (mut b, ch) = consuming(config());
    let tags = delivered(&mut b, ch, &[1, 2, 3, 4, 5, 6, 7]);
    for t in &tags[..3] {
        b.conn.ack(*t, false).expect("ack");
    }
    assert_eq!(b.methods(), vec![(1, ack(3, true))], "1, 2, 3 in one frame");

    // 5 before 4: 5 is not the oldest, so it stays a frame of its own; 4 then is, and
    // 6 extends it (5 was already acked).
    b.conn.ack(tags[4], false).expect("ack 5");
    b.conn.ack(tags[3], false).expect("ack 4");
    b.conn.ack(tags[5], false).expect("ack 6");
    assert_eq!(b.methods(), vec![(1, ack(5, false)), (1, ack(6, true))]);

    // What the output already sent is never rewritten.
    b.conn.ack(tags[6], false).expect("ack 7");
    assert_eq!(b.methods(), vec![(1, ack(7, false))]);
    b.expect_silence();
}

#[test]
fn acks_do_not_coalesce_across_other_frames_or_channels() {
    let mut b = Broker::open(config());
    let one = b.open_channel();
    let two = b.open_channel();
    b.consume(one, "c", false);
    b.consume(two, "c", false);
    let a = delivered(&mut b, one, &[1, 2, 3]);
    let z = delivered(&mut b, two, &[1, 2]);
    b.conn.ack(a[0], false).expect("ack");
    b.conn.nack(a[1], false, true).expect("nack");
    b.conn.ack(a[2], false).expect("ack");
    b.conn.ack(z[0], false).expect("ack");
    b.conn.ack(z[1], false).expect("ack");
    let n = one.number();
    let m = two.number();
    assert_eq!(
        b.methods(),
        vec![
            (n, ack(1, false)),
            (
                n,
                BasicNack {
                    delivery_tag: 2,
                    multiple: false,
                    requeue: true
                }
                .into()
            ),
            (n, ack(3, false)),
            (m, ack(2, true)),
        ],
        "the nack keeps its place; the other channel's acks coalesce among themselves"
    );
}

#[test]
fn settles_claimed_by_handles_are_written_in_queue_order_without_covering_unwritten_claims() {
    let (mut b, ch) = consuming(config());
    let tags = delivered(&mut b, ch, &[1, 2, 3, 4]);
    let ledger = b.conn.outstanding(ch).expect("the channel's ledger");
    b.conn.ack(tags[0], false).expect("ack 1");
    // Two handles claim 2 and 3; the connection task takes 3's command first.
    let two = ledger.claim(tags[1], Settle::Ack { multiple: false }).expect("claim 2");
    let three = ledger.claim(tags[2], Settle::Ack { multiple: false }).expect("claim 3");
    assert_eq!(b.conn.send_claimed(three), Ok(true));
    assert_eq!(b.conn.send_claimed(two), Ok(true));
    // 3 must not extend ack(1) into ack(3, multiple): that would cover 2, whose own
    // ack would then be an unknown tag to the broker (406, the channel closes).
    assert_eq!(
        b.methods(),
        vec![(1, ack(1, false)), (1, ack(3, false)), (1, ack(2, false))]
    );
    // A multiple claim covers a single one claimed before it and written after it.
    let tags = delivered(&mut b, ch, &[5, 6]);
    let five = ledger
        .claim(tags[0], Settle::Reject { requeue: true })
        .expect("claim 5");
    let all = ledger.claim(tags[1], Settle::Ack { multiple: true }).expect("claim 6+");
    assert_eq!(b.conn.send_claimed(all), Ok(true));
    assert_eq!(b.conn.send_claimed(five), Ok(false), "covered by the multiple ack");
    assert_eq!(b.methods(), vec![(1, ack(6, true))]);
    assert_eq!(b.conn.unacked(ch), 0);
}

#[test]
fn a_claim_is_answered_once_whoever_makes_it() {
    let (mut b, ch) = consuming(config());
    let tags = delivered(&mut b, ch, &[1, 2]);
    let ledger = b.conn.outstanding(ch).expect("ledger");
    let claimed = ledger.claim(tags[0], Settle::Ack { multiple: false }).expect("claim");
    assert_eq!(
        b.conn.ack(tags[0], false),
        Err(Error::UnknownDeliveryTag { tag: 1 }),
        "claimed by a handle, not yet written"
    );
    assert_eq!(b.conn.send_claimed(claimed), Ok(true));
    // basic.recover forgets every outstanding tag.
    b.conn.call(ch, BasicRecover { requeue: true }.into()).expect("recover");
    assert_eq!(
        ledger.claim(tags[1], Settle::Ack { multiple: false }).map(drop),
        Err(Error::UnknownDeliveryTag { tag: 2 })
    );
    // The channel's close makes every tag stale, and a claim made before it is not
    // written after it.
    let tags = delivered(&mut b, ch, &[3]);
    let claimed = ledger.claim(tags[0], Settle::Ack { multiple: false }).expect("claim 3");
    b.conn.close_channel(ch, ReplyCode::SUCCESS, "bye").expect("close");
    assert_eq!(b.conn.send_claimed(claimed), Err(Error::StaleDelivery { tag: 3 }));
    assert_eq!(
        ledger.claim(tags[0], Settle::Ack { multiple: false }).map(drop),
        Err(Error::StaleDelivery { tag: 3 })
    );
}

#[test]
fn queued_settles_are_written_in_claim_order_and_refused_once_the_channel_closes() {
    let (mut b, ch) = consuming(config());
    let tags = delivered(&mut b, ch, &[1, 2, 3, 4, 5, 6]);
    let ledger = b.conn.outstanding(ch).expect("the channel's ledger");
    let ack1 = Settle::Ack { multiple: false };
    assert_eq!(ledger.claim_queued(tags[0], ack1), Ok(true));
    assert_eq!(ledger.claim_queued(tags[1], ack1), Ok(false));
    assert_eq!(ledger.claim_queued(tags[3], ack1), Ok(false));
    assert_eq!(
        ledger.claim_queued(tags[2], Settle::Reject { requeue: true }),
        Ok(false)
    );
    assert_eq!(ledger.claim_queued(tags[5], Settle::Ack { multiple: true }), Ok(false));
    let sent = b.conn.send_queued(&ledger);
    assert_eq!(sent, QueuedSent { acks: 4, stale: 0 });
    // 1 and 2 coalesce; 4 is not the oldest (3 is claimed, not written); 6 covers 5.
    assert_eq!(
        b.methods(),
        vec![
            (1, ack(2, true)),
            (1, ack(4, false)),
            (
                1,
                BasicReject {
                    delivery_tag: 3,
                    requeue: true
                }
                .into()
            ),
            (1, ack(6, true)),
        ]
    );
    assert_eq!(b.conn.unacked(ch), 0);
    assert_eq!(b.conn.send_queued(&ledger), QueuedSent::default(), "taken once");
    // Claimed before the close, taken after it: refused, nothing written.
    let tags = delivered(&mut b, ch, &[7, 8]);
    assert_eq!(ledger.claim_queued(tags[0], ack1), Ok(true));
    assert_eq!(ledger.claim_queued(tags[1], ack1), Ok(false));
    b.conn.close_channel(ch, ReplyCode::SUCCESS, "bye").expect("close");
    let close = b.methods();
    assert_eq!(close.len(), 1, "only the close: {close:?}");
    assert_eq!(b.conn.send_queued(&ledger), QueuedSent { acks: 0, stale: 2 });
    b.expect_silence();
}
