use super::*;

fn declare(name: &str) -> Method {
    QueueDeclare {
        queue: s(name),
        ..Default::default()
    }
    .into()
}

fn declare_ok(name: &str) -> QueueDeclareOk {
    QueueDeclareOk {
        queue: s(name),
        message_count: 0,
        consumer_count: 0,
    }
}

#[test]
fn open_channel_takes_the_lowest_free_number() {
    let mut b = Broker::open(config());
    let a = b.open_channel();
    let c = b.open_channel();
    assert_eq!((a.number(), c.number()), (1, 2));
    assert_ne!(a.epoch(), c.epoch());
    assert!(b.conn.is_channel_usable(a) && b.conn.is_channel_usable(c));
}

#[test]
fn calls_are_answered_in_order_per_channel() {
    let mut b = Broker::open(config());
    let ch = b.open_channel();
    b.conn.call(ch, declare("a")).expect("declare");
    b.conn
        .call(
            ch,
            QueueBind {
                queue: s("a"),
                exchange: s("x"),
                ..Default::default()
            }
            .into(),
        )
        .expect("bind");
    b.conn.call(ch, declare("b")).expect("declare");
    let methods = b.methods();
    assert_eq!(methods.len(), 3);
    assert!(methods.iter().all(|(c, _)| *c == 1));
    b.send(1, declare_ok("a"));
    b.send(1, QueueBindOk {});
    b.send(1, declare_ok("b"));
    assert_eq!(
        b.events(),
        vec![
            Event::Reply {
                channel: ch,
                method: declare_ok("a").into(),
                content: None
            },
            Event::Reply {
                channel: ch,
                method: QueueBindOk {}.into(),
                content: None
            },
            Event::Reply {
                channel: ch,
                method: declare_ok("b").into(),
                content: None
            },
        ]
    );
    // A no_wait call expects nothing: a reply for it is a protocol error.
    let nowait = QueueDeclare {
        queue: s("n"),
        no_wait: true,
        ..Default::default()
    };
    b.conn.call(ch, nowait.into()).expect("declare no_wait");
    b.frames();
    b.send(1, declare_ok("n"));
    b.expect_protocol_close(ReplyCode::COMMAND_INVALID, &[ch]);
}

#[test]
fn a_reply_to_another_call_closes_the_connection() {
    let mut b = Broker::open(config());
    let ch = b.open_channel();
    b.conn.call(ch, declare("a")).expect("declare");
    b.frames();
    b.send(1, QueueBindOk {});
    let err = b.expect_protocol_close(ReplyCode::COMMAND_INVALID, &[ch]);
    assert_eq!(err.method(), Some(QueueBindOk::ID));
}

#[test]
fn server_channel_close_is_answered_and_reported() {
    let mut b = Broker::open(config());
    let ch = b.open_channel();
    let other = b.open_channel();
    b.conn
        .call(
            ch,
            QueueDeclare {
                queue: s("q"),
                passive: true,
                ..Default::default()
            }
            .into(),
        )
        .expect("declare");
    b.frames();
    let text = "NOT_FOUND - no queue 'q' in vhost '/'";
    b.send(
        1,
        ChannelClose {
            reply_code: 404,
            reply_text: s(text),
            class_id: 50,
            method_id: 10,
        },
    );
    assert_eq!(b.methods(), vec![(1, Method::ChannelCloseOk(ChannelCloseOk {}))]);
    let err = Error::ChannelClosed {
        by: Initiator::Server,
        code: ReplyCode::NOT_FOUND,
        text: text.into(),
        method: Some(QueueDeclare::ID),
    };
    assert_eq!(
        b.events(),
        vec![Event::ChannelClosed {
            channel: ch,
            error: err.clone()
        }]
    );
    assert!(err.is_channel_error() && !err.is_recoverable());
    assert!(!b.conn.is_channel_usable(ch));
    assert_eq!(b.conn.call(ch, declare("x")), Err(Error::ChannelNotOpen { channel: 1 }));
    // The connection and the other channel go on; number 1 is free again, with a new epoch.
    assert!(b.conn.is_channel_usable(other));
    let again = b.open_channel();
    assert_eq!(again.number(), 1);
    assert_ne!(again, ch);
    assert_eq!(
        b.conn.call(ch, declare("x")),
        Err(Error::ChannelNotOpen { channel: 1 }),
        "old id stays dead"
    );
}

#[test]
fn client_close_waits_for_close_ok_and_drops_frames_meanwhile() {
    let mut b = Broker::open(config());
    let ch = b.open_channel();
    b.consume(ch, "c", false);
    b.conn.call(ch, declare("pending")).expect("declare");
    b.frames();
    b.conn.close_channel(ch, ReplyCode::SUCCESS, "bye").expect("close");
    let close = ChannelClose {
        reply_code: 200,
        reply_text: s("bye"),
        class_id: 0,
        method_id: 0,
    };
    assert_eq!(b.methods(), vec![(1, close.into())]);
    let own = Error::ChannelClosed {
        by: Initiator::Application,
        code: ReplyCode::SUCCESS,
        text: "bye".into(),
        method: None,
    };
    assert_eq!(
        b.conn.call(ch, declare("x")),
        Err(own.clone()),
        "commands see the close"
    );
    assert_eq!(b.conn.close_channel(ch, ReplyCode::SUCCESS, "again"), Err(own.clone()));

    // In flight from the server: a reply, a delivery with content, a confirm: all dropped.
    b.send(1, declare_ok("pending"));
    b.deliver(1, "c", 1, b"late");
    b.send(
        1,
        BasicAck {
            delivery_tag: 1,
            multiple: false,
        },
    );
    assert!(b.events().is_empty());
    b.expect_silence();

    // The number is not reused until close-ok.
    let second = b.open_channel();
    assert_eq!(second.number(), 2);
    b.send(1, ChannelCloseOk {});
    assert_eq!(
        b.events(),
        vec![Event::ChannelClosed {
            channel: ch,
            error: own
        }]
    );
    let third = b.open_channel();
    assert_eq!(third.number(), 1);
    assert_ne!(third.epoch(), ch.epoch());
}

#[test]
fn simultaneous_close_reports_the_server_error() {
    let mut b = Broker::open(config());
    let ch = b.open_channel();
    b.conn.close_channel(ch, ReplyCode::SUCCESS, "bye").expect("close");
    b.frames();
    b.send(
        1,
        ChannelClose {
            reply_code: 406,
            reply_text: s("PRECONDITION_FAILED"),
            class_id: 60,
            method_id: 80,
        },
    );
    assert_eq!(b.methods(), vec![(1, Method::ChannelCloseOk(ChannelCloseOk {}))]);
    assert!(b.events().is_empty(), "still waiting for close-ok");
    b.send(1, ChannelCloseOk {});
    let events = b.events();
    assert!(
        matches!(&events[..], [Event::ChannelClosed { error: Error::ChannelClosed { by: Initiator::Server, code, .. }, .. }] if *code == ReplyCode::PRECONDITION_FAILED),
        "{events:?}"
    );
}

#[test]
fn channel_max_is_enforced() {
    let mut b = Broker::open_with_tune(config(), 2, 131_072, 0);
    b.open_channel();
    b.open_channel();
    assert_eq!(b.conn.open_channel(), Err(Error::ChannelLimit { max: 2 }));
    b.expect_silence();
}

#[test]
fn channel_max_from_config() {
    let mut b = Broker::open_with_tune(
        Config {
            channel_max: 1,
            ..config()
        },
        2047,
        131_072,
        0,
    );
    assert_eq!(b.conn.negotiated().map(|t| t.channel_max), Some(1));
    b.open_channel();
    assert_eq!(b.conn.open_channel(), Err(Error::ChannelLimit { max: 1 }));
}

#[test]
fn calls_are_pipelined_behind_channel_open() {
    let mut b = Broker::open(config());
    let ch = b.conn.open_channel().expect("open");
    b.conn.call(ch, declare("q")).expect("call before open-ok");
    let methods = b.methods();
    assert!(matches!(
        methods.as_slice(),
        [(1, Method::ChannelOpen(_)), (1, Method::QueueDeclare(_))]
    ));
    b.send(1, ChannelOpenOk {});
    b.send(1, declare_ok("q"));
    let events = b.events();
    assert!(matches!(
        events.as_slice(),
        [Event::ChannelOpened(c), Event::Reply { channel, method: Method::QueueDeclareOk(_), .. }] if *c == ch && *channel == ch
    ));
}

#[test]
fn flow_is_answered_and_reported() {
    let mut b = Broker::open(config());
    let ch = b.open_channel();
    b.send(1, ChannelFlow { active: false });
    assert_eq!(
        b.methods(),
        vec![(1, Method::ChannelFlowOk(ChannelFlowOk { active: false }))]
    );
    assert_eq!(
        b.events(),
        vec![Event::Flow {
            channel: ch,
            active: false
        }]
    );
}

#[test]
fn server_cancel_is_answered_unless_no_wait() {
    let mut b = Broker::open(config());
    let ch = b.open_channel();
    b.consume(ch, "c1", false);
    b.consume(ch, "c2", false);
    b.send(
        1,
        BasicCancel {
            consumer_tag: s("c1"),
            no_wait: false,
        },
    );
    assert_eq!(
        b.methods(),
        vec![(1, Method::BasicCancelOk(BasicCancelOk { consumer_tag: s("c1") }))]
    );
    b.send(
        1,
        BasicCancel {
            consumer_tag: s("c2"),
            no_wait: true,
        },
    );
    b.expect_silence();
    assert_eq!(
        b.events(),
        vec![
            Event::ConsumerCancelled {
                channel: ch,
                consumer_tag: s("c1"),
                reason: CancelReason::QueueDeleted,
            },
            Event::ConsumerCancelled {
                channel: ch,
                consumer_tag: s("c2"),
                reason: CancelReason::QueueDeleted,
            },
        ]
    );
}

#[test]
fn interleaved_channels_assemble_their_own_content() {
    let mut b = Broker::open(config());
    let c1 = b.open_channel();
    let c2 = b.open_channel();
    b.consume(c1, "a", false);
    b.consume(c2, "b", false);
    let deliver = |tag: &str, n: u64| BasicDeliver {
        consumer_tag: s(tag),
        delivery_tag: n,
        redelivered: false,
        exchange: s(""),
        routing_key: s("q"),
    };
    let header = |size: u64| ContentHeader {
        class_id: 60,
        body_size: size,
        properties: Default::default(),
    };
    let mut buf = BytesMut::new();
    encode_method(1, &deliver("a", 1).into(), &mut buf);
    encode_method(2, &deliver("b", 1).into(), &mut buf);
    encode_header(2, &header(4), &mut buf);
    encode_header(1, &header(6), &mut buf);
    encode_body(1, b"one", &mut buf);
    encode_body(2, b"two!", &mut buf);
    encode_body(1, b"-1", &mut buf);
    encode_body(1, b"!", &mut buf);
    b.feed(&buf);
    let events = b.events();
    let bodies: Vec<(ChannelId, &[u8])> = events
        .iter()
        .map(|e| match e {
            Event::Delivery { channel, delivery } => (*channel, &delivery.body[..]),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(bodies, vec![(c2, &b"two!"[..]), (c1, &b"one-1!"[..])]);
}

#[test]
fn call_refuses_methods_with_their_own_command() {
    let mut b = Broker::open(config());
    let ch = b.open_channel();
    let refused: Vec<Method> = vec![
        ChannelOpen {}.into(),
        ChannelClose::default().into(),
        ChannelFlowOk { active: true }.into(),
        BasicPublish::default().into(),
        BasicAck::default().into(),
        BasicNack::default().into(),
        BasicReject::default().into(),
        ConnectionClose::default().into(),
        ConnectionStartOk::default().into(),
        QueueDeclareOk::default().into(),
        BasicDeliver::default().into(),
        BasicConsume {
            no_wait: true,
            ..Default::default()
        }
        .into(),
    ];
    for m in refused {
        let id = m.id();
        assert!(matches!(b.conn.call(ch, m), Err(Error::InvalidArgument(_))), "{id}");
    }
    b.expect_silence();
    let args = BasicPublish {
        immediate: true,
        ..Default::default()
    };
    let err = b.conn.publish(ch, &args, &BasicProperties::default(), &Bytes::new());
    assert!(matches!(err, Err(Error::InvalidArgument(_))));
    b.expect_silence();
}

#[test]
fn publish_splits_the_body_by_frame_max() {
    let mut b = Broker::open_with_tune(config(), 0, 4096, 0);
    let ch = b.open_channel();
    let body = Bytes::from((0..10_000u32).map(|i| i as u8).collect::<Vec<u8>>());
    let args = BasicPublish {
        exchange: s("x"),
        routing_key: s("k"),
        ..Default::default()
    };
    let props = BasicProperties {
        delivery_mode: Some(2),
        ..Default::default()
    };
    assert_eq!(
        b.conn.publish(ch, &args, &props, &body),
        Ok(None),
        "no sequence number outside confirm mode"
    );
    let frames = b.frames();
    assert!(matches!(&frames[0], Frame::Method { channel: 1, method: Method::BasicPublish(p) } if *p == args));
    assert!(
        matches!(&frames[1], Frame::Header { channel: 1, header } if header.body_size == 10_000 && *header.properties == props)
    );
    let sizes: Vec<usize> = frames[2..]
        .iter()
        .map(|f| match f {
            Frame::Body { payload, .. } => payload.len(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(sizes, vec![4088, 4088, 1824]);
    let joined: Vec<u8> = frames[2..]
        .iter()
        .flat_map(|f| match f {
            Frame::Body { payload, .. } => payload.to_vec(),
            _ => vec![],
        })
        .collect();
    assert_eq!(joined, body);
}

#[test]
fn update_secret_round_trip() {
    let mut b = Broker::open(config());
    b.conn
        .update_secret(Bytes::from_static(b"new-token"), "refresh")
        .expect("update");
    assert_eq!(
        b.methods(),
        vec![(
            0,
            ConnectionUpdateSecret {
                new_secret: Bytes::from_static(b"new-token"),
                reason: s("refresh")
            }
            .into()
        )]
    );
    b.send(0, ConnectionUpdateSecretOk {});
    assert_eq!(b.events(), vec![Event::SecretUpdated]);
    b.send(0, ConnectionUpdateSecretOk {});
    b.expect_protocol_close(ReplyCode::COMMAND_INVALID, &[]);
}

#[test]
fn blocked_and_unblocked() {
    let mut b = Broker::open(config());
    let ch = b.open_channel();
    b.consume(ch, "c", false);
    b.send(
        0,
        ConnectionBlocked {
            reason: s("low on memory"),
        },
    );
    assert!(b.conn.is_blocked());
    assert_eq!(
        b.events(),
        vec![Event::Blocked {
            reason: "low on memory".into()
        }]
    );
    // Deliveries and acks keep flowing; publishes wait (tests/hold.rs).
    b.deliver(1, "c", 1, b"m");
    let Some(Event::Delivery { delivery, .. }) = b.events().pop() else {
        panic!("delivery")
    };
    b.conn.ack(delivery.delivery_tag, false).expect("ack while blocked");
    assert_eq!(
        b.methods(),
        vec![(
            1,
            BasicAck {
                delivery_tag: 1,
                multiple: false
            }
            .into()
        )]
    );
    let args = BasicPublish {
        exchange: s("ex"),
        routing_key: s("k"),
        ..Default::default()
    };
    let body = Bytes::from_static(b"x");
    b.conn
        .publish(ch, &args, &BasicProperties::default(), &body)
        .expect("publish");
    b.expect_silence();
    b.send(0, ConnectionUnblocked {});
    assert!(!b.conn.is_blocked());
    assert_eq!(b.events(), vec![Event::Unblocked]);
    assert!(matches!(b.methods().as_slice(), [(1, Method::BasicPublish(_))]));
}

#[test]
fn frames_over_frame_max_are_refused_before_sending() {
    let mut b = Broker::open_with_tune(config(), 0, 4096, 0);
    let ch = b.open_channel();
    let mut arguments = FieldTable::new();
    arguments.insert(s("x-big"), "v".repeat(5000).as_str());
    let declare = QueueDeclare {
        queue: s("q"),
        arguments: arguments.clone(),
        ..Default::default()
    };
    assert!(matches!(
        b.conn.call(ch, declare.into()),
        Err(Error::InvalidArgument(_))
    ));
    b.expect_silence();
    // Nothing was recorded as pending: the next reply answers the next call.
    b.conn
        .call(
            ch,
            QueueDeclare {
                queue: s("small"),
                ..Default::default()
            }
            .into(),
        )
        .expect("declare");
    b.frames();
    b.send(
        1,
        QueueDeclareOk {
            queue: s("small"),
            ..Default::default()
        },
    );
    assert!(matches!(
        b.events().as_slice(),
        [Event::Reply {
            method: Method::QueueDeclareOk(_),
            ..
        }]
    ));

    b.confirm_select(ch);
    let props = BasicProperties {
        headers: Some(arguments),
        ..Default::default()
    };
    let args = BasicPublish {
        routing_key: s("k"),
        ..Default::default()
    };
    let err = b.conn.publish(ch, &args, &props, &Bytes::from_static(b"body"));
    assert!(matches!(err, Err(Error::InvalidArgument(_))), "{err:?}");
    b.expect_silence();
    assert_eq!(
        b.publish(ch, "k", false, b"fits"),
        Some(1),
        "the refused publish took no sequence number"
    );
}
