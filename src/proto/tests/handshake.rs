use super::*;

fn start_ok(b: &mut Broker) -> ConnectionStartOk {
    match b.expect_method(0) {
        Method::ConnectionStartOk(m) => m,
        other => panic!("expected start-ok, got {other:?}"),
    }
}

fn tune_ok(b: &mut Broker) -> ConnectionTuneOk {
    match b.expect_method(0) {
        Method::ConnectionTuneOk(m) => m,
        other => panic!("expected tune-ok, got {other:?}"),
    }
}

/// The server's `connection.tune`.
fn tune(channel_max: u16, frame_max: u32, heartbeat: u16) -> ConnectionTune {
    ConnectionTune {
        channel_max,
        frame_max,
        heartbeat,
    }
}

fn bool_entry(table: &FieldTable, key: &str) -> Option<bool> {
    match table.get(key) {
        Some(FieldValue::Bool(v)) => Some(*v),
        _ => None,
    }
}

#[test]
fn plain_handshake_step_by_step() {
    let mut cfg = config();
    cfg.vhost = "prod".into();
    cfg.connection_name = Some("orders-service".into());
    cfg.client_properties.insert(s("team"), "payments");
    let mut b = Broker::new(cfg);
    assert_eq!(b.conn.state(), State::AwaitStart);
    assert_eq!(b.conn.open_channel(), Err(Error::NotConnected));

    b.send(0, start("AMQPLAIN PLAIN"));
    let ok = start_ok(&mut b);
    assert_eq!(ok.mechanism, "PLAIN");
    assert_eq!(&ok.response[..], b"\0user\0secret-pw");
    assert_eq!(ok.locale, "en_US");
    let props = &ok.client_properties;
    assert_eq!(props.get("product").and_then(FieldValue::as_str), Some("warren"));
    assert_eq!(
        props.get("version").and_then(FieldValue::as_str),
        Some(env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(props.get("platform").and_then(FieldValue::as_str), Some("Rust"));
    assert_eq!(
        props.get("connection_name").and_then(FieldValue::as_str),
        Some("orders-service")
    );
    assert_eq!(props.get("team").and_then(FieldValue::as_str), Some("payments"));
    let Some(FieldValue::Table(caps)) = props.get("capabilities") else {
        panic!("capabilities table")
    };
    for cap in [
        "publisher_confirms",
        "consumer_cancel_notify",
        "basic.nack",
        "connection.blocked",
        "authentication_failure_close",
        "exchange_exchange_bindings",
        "per_consumer_qos",
    ] {
        assert_eq!(bool_entry(caps, cap), Some(true), "capability {cap}");
    }
    assert_eq!(b.conn.state(), State::AwaitSecureOrTune);

    b.send(0, tune(2047, 131_072, 60));
    let t = tune_ok(&mut b);
    assert_eq!((t.channel_max, t.frame_max, t.heartbeat), (2047, 131_072, 60));
    assert_eq!(
        b.expect_method(0),
        Method::ConnectionOpen(ConnectionOpen {
            virtual_host: s("prod")
        })
    );
    assert_eq!(b.conn.state(), State::AwaitOpenOk);
    assert!(b.events().is_empty(), "not connected before open-ok");

    b.send(0, ConnectionOpenOk {});
    let tune = Tune {
        channel_max: 2047,
        frame_max: 131_072,
        heartbeat: 60,
    };
    assert_eq!(
        b.events(),
        vec![Event::Connected {
            server_properties: server_properties(),
            tune
        }]
    );
    assert_eq!(b.conn.state(), State::Open);
    assert_eq!(b.conn.negotiated(), Some(tune));
    assert!(b.conn.error().is_none());
}

#[test]
fn amqplain_response_is_a_table_without_length_prefix() {
    let mut cfg = config();
    cfg.sasl = Sasl::AmqPlain {
        username: "alice".into(),
        password: "pw".into(),
    };
    let mut b = Broker::new(cfg);
    b.send(0, start("PLAIN AMQPLAIN"));
    let ok = start_ok(&mut b);
    assert_eq!(ok.mechanism, "AMQPLAIN");
    let mut framed = BytesMut::new();
    framed.extend_from_slice(&(ok.response.len() as u32).to_be_bytes());
    framed.extend_from_slice(&ok.response);
    let table = parse_table(&framed.freeze()).expect("a field table once the length is put back");
    assert_eq!(
        table.get("LOGIN"),
        Some(&FieldValue::LongStr(Bytes::from_static(b"alice")))
    );
    assert_eq!(
        table.get("PASSWORD"),
        Some(&FieldValue::LongStr(Bytes::from_static(b"pw")))
    );
}

#[test]
fn external_sends_an_empty_response() {
    let mut cfg = config();
    cfg.sasl = Sasl::External;
    let mut b = Broker::new(cfg);
    b.send(0, start("EXTERNAL"));
    let ok = start_ok(&mut b);
    assert_eq!(ok.mechanism, "EXTERNAL");
    assert!(ok.response.is_empty());
}

#[test]
fn secure_challenge_is_answered_with_the_same_credentials() {
    let mut b = Broker::new(config());
    b.send(0, start("PLAIN"));
    start_ok(&mut b);
    b.send(
        0,
        ConnectionSecure {
            challenge: Bytes::from_static(b"?"),
        },
    );
    assert_eq!(
        b.expect_method(0),
        Method::ConnectionSecureOk(ConnectionSecureOk {
            response: Bytes::from_static(b"\0user\0secret-pw")
        })
    );
    assert_eq!(b.conn.state(), State::AwaitSecureOrTune);
    b.send(0, tune(10, 8192, 0));
    assert!(matches!(b.expect_method(0), Method::ConnectionTuneOk(_)));
}

#[test]
fn endless_secure_challenges_fail_authentication() {
    let mut b = Broker::new(config());
    b.send(0, start("PLAIN"));
    start_ok(&mut b);
    for _ in 0..4 {
        b.send(
            0,
            ConnectionSecure {
                challenge: Bytes::new(),
            },
        );
        assert!(matches!(b.expect_method(0), Method::ConnectionSecureOk(_)));
    }
    b.send(
        0,
        ConnectionSecure {
            challenge: Bytes::new(),
        },
    );
    b.expect_silence();
    assert!(b.conn.is_closed());
    assert!(matches!(b.conn.error(), Some(Error::Authentication { .. })));
}

#[test]
fn tune_zero_means_no_limit_on_both_sides() {
    let mut cfg = config();
    cfg.channel_max = 0;
    cfg.frame_max = 0;
    cfg.heartbeat = None;
    let mut b = Broker::new(cfg);
    b.send(0, start("PLAIN"));
    start_ok(&mut b);
    b.send(0, tune(0, 0, 0));
    let t = tune_ok(&mut b);
    assert_eq!((t.channel_max, t.frame_max, t.heartbeat), (u16::MAX, 0, 0));
    b.expect_method(0);
    b.send(0, ConnectionOpenOk {});
    assert!(matches!(b.events().as_slice(), [Event::Connected { .. }]));
    assert_eq!(b.conn.poll_timeout(), None, "no heartbeat timer");
    // With no frame limit, a 300 KiB body frame is accepted.
    let ch = b.open_channel();
    b.consume(ch, "c", false);
    let body = vec![7u8; 300 * 1024];
    b.deliver(ch.number(), "c", 1, &body);
    let events = b.events();
    assert!(matches!(&events[..], [Event::Delivery { delivery, .. }] if delivery.body.len() == body.len()));
}

#[test]
fn tune_with_maximum_values_does_not_overflow() {
    let mut b = Broker::new(config());
    b.send(0, start("PLAIN"));
    start_ok(&mut b);
    b.send(0, tune(u16::MAX, u32::MAX, u16::MAX));
    let t = tune_ok(&mut b);
    assert_eq!((t.channel_max, t.frame_max, t.heartbeat), (u16::MAX, 131_072, u16::MAX));
    b.expect_method(0);
    b.send(0, ConnectionOpenOk {});
    let deadline = b.conn.poll_timeout().expect("heartbeat timer");
    assert!(deadline > b.now);
    b.advance(Duration::from_secs(1));
    assert_eq!(b.conn.state(), State::Open);
}

#[test]
fn negotiation_takes_the_smaller_non_zero_value() {
    let cfg = |channel_max, frame_max, heartbeat| Config {
        channel_max,
        frame_max,
        heartbeat,
        ..config()
    };
    let t = |c: &Config, cm, fm, hb| Tune::negotiate(c, cm, fm, hb).map(|t| (t.channel_max, t.frame_max, t.heartbeat));
    assert_eq!(t(&cfg(0, 0, None), 2047, 131_072, 60), Ok((2047, 131_072, 60)));
    assert_eq!(t(&cfg(100, 65_536, Some(10)), 2047, 131_072, 60), Ok((100, 65_536, 10)));
    assert_eq!(
        t(&cfg(4000, 1 << 20, Some(120)), 2047, 131_072, 60),
        Ok((2047, 131_072, 60))
    );
    assert_eq!(t(&cfg(10, 8192, Some(5)), 0, 0, 0), Ok((10, 8192, 5)));
    assert_eq!(t(&cfg(0, 0, Some(0)), 0, 0, 30), Ok((u16::MAX, 0, 30)));
    assert_eq!(
        t(&cfg(0, 100, None), 0, 0, 0),
        Ok((u16::MAX, 8192, 0)),
        "our frame_max is raised to 8192 (RabbitMQ 4.1's frame size before authentication)"
    );
    assert_eq!(
        t(&cfg(0, 100, None), 0, 4096, 0),
        Ok((u16::MAX, 4096, 0)),
        "a server may ask for 4096"
    );
    assert!(t(&cfg(0, 0, None), 0, 1000, 0).is_err(), "server frame_max below 4096");
    assert_eq!(
        t(&cfg(u16::MAX, u32::MAX, Some(u16::MAX)), u16::MAX, u32::MAX, u16::MAX),
        Ok((u16::MAX, u32::MAX, u16::MAX))
    );
}

#[test]
fn server_frame_max_below_minimum_fails_the_handshake() {
    let mut b = Broker::new(config());
    b.send(0, start("PLAIN"));
    start_ok(&mut b);
    b.send(0, tune(0, 1024, 0));
    b.expect_silence();
    assert!(b.conn.is_closed());
    assert!(matches!(b.conn.error(), Some(Error::Handshake { reason }) if reason.contains("1024")));
    assert!(matches!(
        b.events().as_slice(),
        [Event::ConnectionClosed(Error::Handshake { .. })]
    ));
}

#[test]
fn mechanism_not_offered_is_an_authentication_error() {
    let mut b = Broker::new(config());
    b.send(0, start("AMQPLAIN EXTERNAL PLAINX"));
    b.expect_silence();
    assert!(b.conn.is_closed());
    let err = b.conn.error().cloned().expect("error");
    match &err {
        Error::Authentication { mechanism, text } => {
            assert_eq!(mechanism, "PLAIN");
            assert!(text.contains("AMQPLAIN EXTERNAL PLAINX"), "{text}");
        }
        other => panic!("{other:?}"),
    }
    assert!(!err.is_recoverable());
    assert_eq!(b.events(), vec![Event::ConnectionClosed(err)]);
}

#[test]
fn access_refused_after_start_ok_is_an_authentication_error() {
    let mut b = Broker::new(config());
    b.send(0, start("PLAIN"));
    start_ok(&mut b);
    let text = "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN";
    b.send(
        0,
        ConnectionClose {
            reply_code: 403,
            reply_text: s(text),
            class_id: 0,
            method_id: 0,
        },
    );
    assert_eq!(b.expect_method(0), Method::ConnectionCloseOk(ConnectionCloseOk {}));
    assert!(b.conn.is_closed());
    let err = Error::Authentication {
        mechanism: "PLAIN".into(),
        text: text.into(),
    };
    assert_eq!(b.conn.error(), Some(&err));
    assert_eq!(b.events(), vec![Event::ConnectionClosed(err)]);
}

#[test]
fn unknown_vhost_is_not_allowed() {
    let mut b = Broker::new(config());
    b.send(0, start("PLAIN"));
    start_ok(&mut b);
    b.send(0, tune(0, 131_072, 0));
    tune_ok(&mut b);
    b.expect_method(0);
    let text = "NOT_ALLOWED - vhost nope not found";
    b.send(
        0,
        ConnectionClose {
            reply_code: 530,
            reply_text: s(text),
            class_id: 10,
            method_id: 40,
        },
    );
    assert_eq!(b.expect_method(0), Method::ConnectionCloseOk(ConnectionCloseOk {}));
    let err = b.conn.error().cloned().expect("error");
    assert_eq!(
        err,
        Error::ConnectionClosed {
            by: Initiator::Server,
            code: ReplyCode::NOT_ALLOWED,
            text: text.into(),
            method: Some(ConnectionOpen::ID)
        }
    );
    assert!(!err.is_recoverable());
    assert_eq!(b.events(), vec![Event::ConnectionClosed(err)]);
}

#[test]
fn eof_after_start_ok_is_an_authentication_error_from_a_broker_without_failure_close() {
    let mut b = Broker::new(config());
    let mut m = start("PLAIN");
    m.server_properties = FieldTable::new().with("product", "old broker");
    b.send(0, m);
    start_ok(&mut b);
    b.conn.handle_eof();
    assert!(b.conn.is_closed());
    assert!(matches!(b.conn.error(), Some(Error::Authentication { mechanism, .. }) if mechanism == "PLAIN"));
}

/// RabbitMQ announces `authentication_failure_close`: it refuses credentials with
/// `connection.close` 403, so its stream ending after `start-ok` is a loss (a node
/// going down while a recovery logs in), which recovery tries again.
#[test]
fn eof_after_start_ok_from_a_broker_with_failure_close_is_a_loss() {
    let mut b = Broker::new(config());
    b.send(0, start("PLAIN"));
    start_ok(&mut b);
    b.conn.handle_eof();
    assert!(b.conn.is_closed());
    let err = b.conn.error().cloned().expect("error");
    assert!(
        matches!(err, Error::ConnectionLost { .. }) && err.is_recoverable(),
        "{err:?}"
    );
}

#[test]
fn eof_before_start_and_when_open_is_connection_lost() {
    let mut b = Broker::new(config());
    b.conn.handle_eof();
    let err = b.conn.error().cloned().expect("error");
    assert!(matches!(err, Error::ConnectionLost { .. }) && err.is_recoverable());

    let mut b = Broker::open(config());
    let ch = b.open_channel();
    b.conn
        .handle_io_error(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
    let err = b.conn.error().cloned().expect("error");
    assert!(matches!(&err, Error::ConnectionLost { source: Some(_), .. }));
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
    assert_eq!(b.conn.call(ch, BasicQos::default().into()), Err(err));
    b.expect_silence();
}

#[test]
fn server_refusing_the_protocol_version_answers_with_its_header() {
    let mut b = Broker::new(config());
    let mut buf = BytesMut::from(&b"AMQP\x00\x00\x09"[..]);
    b.conn.handle_input(&mut buf, b.now);
    assert_eq!(b.conn.state(), State::AwaitStart, "waits for all 8 bytes");
    assert_eq!(buf.len(), 7, "a partial header stays in the buffer");
    buf.extend_from_slice(b"\x00");
    b.conn.handle_input(&mut buf, b.now);
    assert!(b.conn.is_closed());
    match b.conn.error() {
        Some(Error::Handshake { reason }) => assert!(reason.contains("protocol header"), "{reason}"),
        other => panic!("{other:?}"),
    }
    b.expect_silence();
}

#[test]
fn wrong_version_in_start_fails_the_handshake() {
    let mut b = Broker::new(config());
    b.send(
        0,
        ConnectionStart {
            version_major: 8,
            version_minor: 0,
            ..start("PLAIN")
        },
    );
    b.expect_silence();
    assert!(matches!(b.conn.error(), Some(Error::Handshake { reason }) if reason.contains("8-0")));
}

#[test]
fn unexpected_method_during_handshake_names_what_was_expected() {
    let mut b = Broker::new(config());
    b.send(0, tune(0, 0, 0));
    let error = b.conn.error().cloned();
    assert_eq!(
        error,
        Some(Error::UnexpectedMethod {
            expected: vec![ConnectionStart::ID],
            got: ConnectionTune::ID
        })
    );
    let text = error.map(|e| e.to_string()).unwrap_or_default();
    assert!(
        text.contains("expected connection.start") && text.contains("connection.tune"),
        "{text}"
    );
    assert!(b.conn.is_closed());

    // After tune-ok the close handshake is possible: the client closes with 503.
    let mut b = Broker::new(config());
    up_to_open_ok(&mut b);
    b.send(0, start("PLAIN"));
    b.expect_protocol_close(ReplyCode::COMMAND_INVALID, &[]);
}

#[test]
fn secrets_are_not_in_debug_output() {
    let cfg = config();
    let debug = format!("{cfg:?}");
    assert!(!debug.contains("secret-pw"), "{debug}");
    assert!(debug.contains("user"));
    let amqplain = Sasl::AmqPlain {
        username: "u".into(),
        password: "hunter2".into(),
    };
    assert!(!format!("{amqplain:?}").contains("hunter2"));
}

#[test]
fn invalid_config_starts_closed() {
    let cfg = Config {
        vhost: "v".repeat(300),
        ..config()
    };
    let mut conn = Connection::new(cfg, Instant::now());
    assert!(conn.is_closed());
    assert!(matches!(conn.error(), Some(Error::InvalidArgument(_))));
    let mut out = BytesMut::new();
    assert!(!conn.poll_transmit(Instant::now(), &mut out), "nothing sent");
    assert!(matches!(
        conn.poll_event(),
        Some(Event::ConnectionClosed(Error::InvalidArgument(_)))
    ));
}

#[test]
fn the_handshake_has_a_deadline_in_every_phase_and_none_once_open() {
    let timeout = Duration::from_secs(10);
    let with_timeout = || Config {
        handshake_timeout: Some(timeout),
        ..config()
    };
    // Waiting for connection.start.
    let mut b = Broker::new(with_timeout());
    assert_eq!(b.conn.poll_timeout(), Some(b.now + timeout));
    b.advance(timeout - Duration::from_millis(1));
    assert_eq!(b.conn.state(), State::AwaitStart);
    b.advance(Duration::from_millis(1));
    assert!(b.conn.is_closed());
    assert_eq!(b.conn.error(), Some(&Error::Timeout { operation: "connect" }));
    assert!(
        b.conn.error().is_some_and(Error::is_recoverable),
        "recovery tries again"
    );
    assert!(
        b.conn.error().is_some_and(Error::is_connection_error),
        "the whole connection failed"
    );
    assert_eq!(
        b.events(),
        vec![Event::ConnectionClosed(Error::Timeout { operation: "connect" })]
    );
    b.expect_silence();

    // Waiting for open-ok: the deadline still counts from the start.
    let mut b = Broker::new(with_timeout());
    b.advance(Duration::from_secs(4));
    up_to_open_ok(&mut b);
    assert_eq!(b.conn.state(), State::AwaitOpenOk);
    b.advance(Duration::from_secs(6));
    assert_eq!(b.conn.error(), Some(&Error::Timeout { operation: "connect" }));

    // Open in time: no deadline any more.
    let mut b = Broker::open(with_timeout());
    assert_eq!(
        b.conn.poll_timeout().map(|t| t > b.now + timeout),
        Some(true),
        "only heartbeats"
    );
    b.advance(timeout * 3);
    assert_eq!(b.conn.error(), None);

    // No limit at all.
    let b = Broker::new(Config {
        handshake_timeout: None,
        ..config()
    });
    assert_eq!(b.conn.poll_timeout(), None);
}

#[test]
fn a_peer_that_is_not_amqp_is_named_as_such() {
    let mut b = Broker::new(config());
    b.feed(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
    assert!(b.conn.is_closed());
    b.expect_silence();
    match b.conn.error() {
        Some(Error::Handshake { reason }) => {
            assert!(reason.contains("not an AMQP 0-9-1 server"), "{reason}");
            assert!(
                reason.contains("\"HTTP/1.1 400 Bad Request\\r\\nContent-Length...\""),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    // A TLS server's alert, say: not printable.
    let mut b = Broker::new(config());
    b.feed(&[0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x46, 0x00]);
    let reason = b.conn.error().map(ToString::to_string).unwrap_or_default();
    assert!(reason.contains("\\x15\\x03\\x01"), "{reason}");
}

/// start → start-ok, tune (no limits) → tune-ok and open: the connection waits for open-ok.
fn up_to_open_ok(b: &mut Broker) {
    b.send(0, start("PLAIN"));
    start_ok(b);
    b.send(0, tune(0, 0, 0));
    tune_ok(b);
    b.expect_method(0);
}

/// A server that denies a capability in `connection.start` (garagemq sets
/// `exchange_exchange_bindings` to false and closes the connection with 540 for
/// `exchange.bind`): the command is refused with `NotSupported`, nothing is sent, and the
/// rest goes on. A capability not named, or set to true, is not denied.
#[test]
fn a_denied_capability_refuses_its_command_before_sending() {
    let mut caps = FieldTable::new();
    caps.insert(s("exchange_exchange_bindings"), false);
    caps.insert(s("publisher_confirms"), false);
    caps.insert(s("basic.nack"), true);
    let mut props = FieldTable::new();
    props.insert(s("product"), "garagemq");
    props.insert(s("capabilities"), caps);
    let mut b = Broker::new(config());
    b.send(
        0,
        ConnectionStart {
            server_properties: props,
            ..start("PLAIN")
        },
    );
    start_ok(&mut b);
    b.send(0, tune(0, 0, 0));
    tune_ok(&mut b);
    b.expect_method(0);
    b.send(0, ConnectionOpenOk {});
    b.events();
    let ch = b.open_channel();
    let bind = Method::ExchangeBind(ExchangeBind {
        destination: s("a"),
        source: s("b"),
        routing_key: s(""),
        no_wait: false,
        arguments: FieldTable::new(),
    });
    assert_eq!(
        b.conn.call(ch, bind),
        Err(Error::NotSupported {
            capability: "exchange_exchange_bindings"
        })
    );
    assert_eq!(
        b.conn.call(ch, Method::ConfirmSelect(ConfirmSelect { nowait: false })),
        Err(Error::NotSupported {
            capability: "publisher_confirms"
        })
    );
    b.expect_silence();
    // What is not denied still goes.
    b.conn.call(ch, Method::TxSelect(TxSelect {})).unwrap();
    assert!(matches!(b.expect_method(ch.number), Method::TxSelect(_)));

    // RabbitMQ's capabilities (all true): nothing is refused.
    let mut b = Broker::open(config());
    let ch = b.open_channel();
    b.conn
        .call(ch, Method::ConfirmSelect(ConfirmSelect { nowait: false }))
        .unwrap();
    assert!(matches!(b.expect_method(ch.number), Method::ConfirmSelect(_)));
}
