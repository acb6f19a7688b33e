use super::*;

#[test]
fn graceful_close_waits_for_close_ok() {
    let mut b = Broker::open(config());
    let c1 = b.open_channel();
    let c2 = b.open_channel();
    b.conn.call(c1, QueueDeclare::default().into()).expect("declare");
    b.frames();
    b.conn.close(b.now, ReplyCode::SUCCESS, "shutting down").expect("close");
    let close = ConnectionClose {
        reply_code: 200,
        reply_text: s("shutting down"),
        class_id: 0,
        method_id: 0,
    };
    assert_eq!(b.methods(), vec![(0, close.into())]);
    assert_eq!(b.conn.state(), State::AwaitCloseOk);
    let err = Error::ConnectionClosed {
        by: Initiator::Application,
        code: ReplyCode::SUCCESS,
        text: "shutting down".into(),
        method: None,
    };
    assert!(!err.is_recoverable());
    assert_eq!(
        b.events(),
        vec![
            Event::ChannelClosed {
                channel: c1,
                error: err.clone()
            },
            Event::ChannelClosed {
                channel: c2,
                error: err.clone()
            },
        ]
    );
    assert_eq!(b.conn.open_channel(), Err(err.clone()));
    assert_eq!(b.conn.close(b.now, ReplyCode::SUCCESS, "again"), Err(err.clone()));
    assert_eq!(b.conn.poll_timeout(), Some(b.now + Duration::from_secs(5)));

    // Frames in flight are dropped; close-ok ends it.
    b.send(1, QueueDeclareOk::default());
    b.deliver(2, "c", 1, b"x");
    assert!(b.events().is_empty());
    assert_eq!(b.conn.state(), State::AwaitCloseOk);
    b.send(0, ConnectionCloseOk {});
    assert!(b.conn.is_closed());
    assert_eq!(b.events(), vec![Event::ConnectionClosed(err)]);
    assert_eq!(b.conn.poll_timeout(), None);
    b.expect_silence();
}

#[test]
fn graceful_close_gives_up_after_the_timeout() {
    let mut b = Broker::open(Config {
        close_timeout: Duration::from_secs(2),
        ..config()
    });
    b.conn.close(b.now, ReplyCode::SUCCESS, "bye").expect("close");
    b.frames();
    b.advance(Duration::from_millis(1_999));
    assert_eq!(b.conn.state(), State::AwaitCloseOk);
    b.advance(Duration::from_millis(1));
    assert!(b.conn.is_closed());
    let events = b.events();
    assert!(matches!(
        &events[..],
        [Event::ConnectionClosed(Error::ConnectionClosed {
            by: Initiator::Application,
            ..
        })]
    ));
}

#[test]
fn server_close_while_closing_is_answered() {
    let mut b = Broker::open(config());
    b.conn.close(b.now, ReplyCode::SUCCESS, "bye").expect("close");
    b.frames();
    b.send(
        0,
        ConnectionClose {
            reply_code: 320,
            reply_text: s("CONNECTION_FORCED"),
            class_id: 0,
            method_id: 0,
        },
    );
    assert_eq!(b.methods(), vec![(0, Method::ConnectionCloseOk(ConnectionCloseOk {}))]);
    assert!(b.conn.is_closed());
    assert_eq!(
        b.conn.error().and_then(Error::reply_code),
        Some(ReplyCode::SUCCESS),
        "the first error stays"
    );
}

#[test]
fn eof_while_closing_finishes_the_close() {
    let mut b = Broker::open(config());
    b.conn.close(b.now, ReplyCode::SUCCESS, "bye").expect("close");
    b.frames();
    b.conn.handle_eof();
    assert!(b.conn.is_closed());
    assert_eq!(b.conn.error().and_then(Error::reply_code), Some(ReplyCode::SUCCESS));
}

#[test]
fn server_close_is_answered_and_fails_everything() {
    let mut b = Broker::open(config());
    let ch = b.open_channel();
    b.conn.call(ch, QueueDeclare::default().into()).expect("declare");
    b.frames();
    let text = "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'";
    b.send(
        0,
        ConnectionClose {
            reply_code: 320,
            reply_text: s(text),
            class_id: 0,
            method_id: 0,
        },
    );
    assert_eq!(b.methods(), vec![(0, Method::ConnectionCloseOk(ConnectionCloseOk {}))]);
    assert!(b.conn.is_closed());
    let err = Error::ConnectionClosed {
        by: Initiator::Server,
        code: ReplyCode::CONNECTION_FORCED,
        text: text.into(),
        method: None,
    };
    assert!(err.is_recoverable());
    assert_eq!(
        b.events(),
        vec![
            Event::ChannelClosed {
                channel: ch,
                error: err.clone()
            },
            Event::ConnectionClosed(err.clone())
        ]
    );
    assert_eq!(b.conn.call(ch, QueueDeclare::default().into()), Err(err.clone()));
    assert_eq!(b.conn.update_secret(Bytes::new(), "x"), Err(err));
    b.feed(b"anything");
    b.expect_silence();
}

#[test]
fn close_during_the_handshake_closes_at_once() {
    let mut b = Broker::new(config());
    b.conn.close(b.now, ReplyCode::SUCCESS, "never mind").expect("close");
    assert!(b.conn.is_closed());
    b.expect_silence();
    assert!(matches!(b.events().as_slice(), [Event::ConnectionClosed(_)]));
}

#[test]
fn close_text_longer_than_a_short_string_is_refused() {
    let mut b = Broker::open(config());
    let long = "x".repeat(256);
    assert!(matches!(
        b.conn.close(b.now, ReplyCode::SUCCESS, &long),
        Err(Error::InvalidArgument(_))
    ));
    let ch = b.open_channel();
    assert!(matches!(
        b.conn.close_channel(ch, ReplyCode::SUCCESS, &long),
        Err(Error::InvalidArgument(_))
    ));
    b.expect_silence();
    assert_eq!(b.conn.state(), State::Open);
}
