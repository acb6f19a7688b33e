use super::*;

fn consuming() -> (Broker, ChannelId) {
    let mut b = Broker::open(config());
    let ch = b.open_channel();
    b.consume(ch, "c", false);
    (b, ch)
}

fn single_delivery(b: &mut Broker) -> Delivery {
    let mut events = b.events();
    assert_eq!(events.len(), 1, "{events:?}");
    match events.pop() {
        Some(Event::Delivery { delivery, .. }) => delivery,
        other => panic!("{other:?}"),
    }
}

#[test]
fn body_split_across_many_frames_is_joined() {
    let (mut b, ch) = consuming();
    let body: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    let props = BasicProperties {
        content_type: Some(s("text/plain")),
        ..Default::default()
    };
    let mut buf = BytesMut::new();
    let deliver = BasicDeliver {
        consumer_tag: s("c"),
        delivery_tag: 7,
        redelivered: true,
        exchange: s("ex"),
        routing_key: s("rk"),
    };
    encode_method(1, &deliver.into(), &mut buf);
    encode_header(
        1,
        &ContentHeader {
            class_id: 60,
            body_size: 1000,
            properties: props.clone().into(),
        },
        &mut buf,
    );
    for part in body.chunks(37) {
        encode_body(1, part, &mut buf);
        // Feed frame by frame: nothing comes out before the last one.
        b.feed(&buf);
        buf.clear();
        if b.conn.pending_transmit() > 0 {
            b.frames();
        }
    }
    let d = single_delivery(&mut b);
    assert_eq!(&d.body[..], &body[..]);
    assert_eq!(*d.properties, props);
    assert_eq!(d.delivery_tag.value(), 7);
    assert_eq!(d.delivery_tag.channel(), ch);
    assert!(d.redelivered);
    assert_eq!(
        (d.consumer_tag.as_str(), d.exchange.as_str(), d.routing_key.as_str()),
        ("c", "ex", "rk")
    );
}

#[test]
fn single_body_frame_is_not_copied() {
    let (mut b, _) = consuming();
    let mut buf = BytesMut::new();
    let deliver = BasicDeliver {
        consumer_tag: s("c"),
        delivery_tag: 1,
        redelivered: false,
        exchange: s(""),
        routing_key: s(""),
    };
    encode_method(1, &deliver.into(), &mut buf);
    encode_header(
        1,
        &ContentHeader {
            class_id: 60,
            body_size: 5,
            ..Default::default()
        },
        &mut buf,
    );
    encode_body(1, b"hello", &mut buf);
    let range = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.len();
    b.conn.handle_input(&mut buf, b.now);
    assert!(buf.is_empty());
    let d = single_delivery(&mut b);
    assert_eq!(&d.body[..], b"hello");
    assert!(
        range.contains(&(d.body.as_ptr() as usize)),
        "the body shares the read buffer"
    );
}

#[test]
fn empty_body_completes_at_the_header() {
    let (mut b, _) = consuming();
    b.deliver(1, "c", 1, b"");
    assert!(single_delivery(&mut b).body.is_empty());
}

#[test]
fn partial_frames_wait_for_more_bytes() {
    let (mut b, _) = consuming();
    let mut wire = BytesMut::new();
    let deliver = BasicDeliver {
        consumer_tag: s("c"),
        delivery_tag: 1,
        redelivered: false,
        exchange: s(""),
        routing_key: s(""),
    };
    encode_method(1, &deliver.into(), &mut wire);
    encode_header(
        1,
        &ContentHeader {
            class_id: 60,
            body_size: 3,
            ..Default::default()
        },
        &mut wire,
    );
    encode_body(1, b"abc", &mut wire);
    let mut buf = BytesMut::new();
    for byte in wire.iter() {
        buf.extend_from_slice(&[*byte]);
        b.conn.handle_input(&mut buf, b.now);
    }
    assert!(buf.is_empty());
    assert_eq!(&single_delivery(&mut b).body[..], b"abc");
}

#[test]
fn oversized_content_closes_the_channel_with_311() {
    let mut b = Broker::open(Config {
        max_content_size: 100,
        ..config()
    });
    let ch = b.open_channel();
    let other = b.open_channel();
    b.consume(ch, "c", false);
    b.deliver(1, "c", 1, &[0u8; 101]);
    let methods = b.methods();
    let [(1, Method::ChannelClose(close))] = methods.as_slice() else {
        panic!("{methods:?}")
    };
    assert_eq!(close.reply_code, 311);
    assert_eq!((close.class_id, close.method_id), (60, 60));
    assert!(b.events().is_empty(), "reported on close-ok");
    b.send(1, ChannelCloseOk {});
    let events = b.events();
    let [Event::ChannelClosed { channel, error }] = events.as_slice() else {
        panic!("{events:?}")
    };
    assert_eq!(*channel, ch);
    assert_eq!(error.reply_code(), Some(ReplyCode::CONTENT_TOO_LARGE));
    assert_eq!(error.initiator(), Some(Initiator::Library));
    assert_eq!(error.method(), Some(BasicDeliver::ID));
    assert_eq!(b.conn.state(), State::Open);
    assert!(b.conn.is_channel_usable(other));
    // At the limit is fine.
    b.consume(other, "c", false);
    b.deliver(2, "c", 1, &[0u8; 100]);
    assert_eq!(single_delivery(&mut b).body.len(), 100);
}

#[test]
fn hostile_body_size_allocates_nothing_up_front() {
    let mut b = Broker::open(Config {
        max_content_size: u64::MAX,
        ..config()
    });
    let ch = b.open_channel();
    b.consume(ch, "c", false);
    let mut buf = BytesMut::new();
    let deliver = BasicDeliver {
        consumer_tag: s("c"),
        delivery_tag: 1,
        redelivered: false,
        exchange: s(""),
        routing_key: s(""),
    };
    encode_method(1, &deliver.into(), &mut buf);
    encode_header(
        1,
        &ContentHeader {
            class_id: 60,
            body_size: 1 << 63,
            ..Default::default()
        },
        &mut buf,
    );
    encode_body(1, &[1; 100], &mut buf);
    encode_body(1, &[2; 100], &mut buf);
    b.feed(&buf);
    assert!(b.events().is_empty(), "still waiting for the rest");
    assert_eq!(b.conn.state(), State::Open);
    // The buffer of the body so far is bounded (see content.rs); the channel still
    // refuses a method in the middle of it.
    b.send(1, BasicQosOk {});
    b.expect_protocol_close(ReplyCode::UNEXPECTED_FRAME, &[ch]);
}

#[test]
fn get_ok_carries_its_content_and_get_empty_none() {
    let mut b = Broker::open(config());
    let ch = b.open_channel();
    b.conn
        .call(
            ch,
            BasicGet {
                queue: s("q"),
                no_ack: false,
            }
            .into(),
        )
        .expect("get");
    b.conn
        .call(
            ch,
            BasicGet {
                queue: s("q"),
                no_ack: false,
            }
            .into(),
        )
        .expect("get");
    b.frames();
    let get_ok = BasicGetOk {
        delivery_tag: 3,
        redelivered: false,
        exchange: s(""),
        routing_key: s("q"),
        message_count: 0,
    };
    b.send_content(1, get_ok.clone(), b"payload", 3);
    b.send(1, BasicGetEmpty {});
    let events = b.events();
    assert_eq!(events.len(), 2, "{events:?}");
    let Event::Reply {
        channel,
        method: Method::BasicGetOk(m),
        content: Some(content),
    } = &events[0]
    else {
        panic!("{events:?}")
    };
    assert_eq!((*channel, m), (ch, &get_ok));
    assert_eq!(&content.body[..], b"payload");
    assert_eq!(content.delivery_tag.value(), 3);
    assert_eq!(
        events[1],
        Event::Reply {
            channel: ch,
            method: BasicGetEmpty {}.into(),
            content: None
        }
    );
    b.conn
        .ack(content.delivery_tag, false)
        .expect("get-ok deliveries are tracked");
}
