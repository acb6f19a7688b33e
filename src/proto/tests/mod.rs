//! Scripted-broker tests of the state machine, with a virtual clock.
//!
//! [`Broker`] plays the server: it encodes frames with the wire encoders and feeds them
//! to the connection, and decodes what the connection writes.

mod acks;
mod channels;
mod close;
mod confirms;
mod content;
mod handshake;
mod heartbeat;
mod hold;
mod hostile;
mod pacing;
mod rabbitmq43;
mod reconsume;
mod recovery;
mod replay;

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::commands::QueuedSent;
use super::*;
use crate::error::{CancelReason, Error, Initiator};
use crate::wire::*;

/// The server side of one connection, driven by hand.
pub(crate) struct Broker {
    pub conn: Connection,
    pub now: Instant,
    /// Client output not decoded yet.
    pub inbox: BytesMut,
    /// Server output not consumed by the connection yet (partial frames).
    rx: BytesMut,
    header_seen: bool,
}

pub(crate) fn server_properties() -> FieldTable {
    let mut caps = FieldTable::new();
    caps.insert(ShortStr::from_static("publisher_confirms"), true);
    caps.insert(ShortStr::from_static("authentication_failure_close"), true);
    let mut props = FieldTable::new();
    props.insert(ShortStr::from_static("product"), "RabbitMQ");
    props.insert(ShortStr::from_static("capabilities"), caps);
    props
}

pub(crate) fn start(mechanisms: &'static str) -> ConnectionStart {
    ConnectionStart {
        version_major: 0,
        version_minor: 9,
        server_properties: server_properties(),
        mechanisms: Bytes::from_static(mechanisms.as_bytes()),
        locales: Bytes::from_static(b"en_US"),
    }
}

pub(crate) fn s(text: &str) -> ShortStr {
    ShortStr::try_from(text).expect("short string")
}

pub(crate) fn config() -> Config {
    Config {
        sasl: Sasl::plain("user", "secret-pw"),
        ..Config::default()
    }
}

impl Broker {
    /// A fresh connection; the protocol header is checked.
    pub fn new(config: Config) -> Self {
        let now = Instant::now();
        Self::with(Connection::new(config, now), now)
    }

    /// Plays the server of `conn`, a connection that has not sent anything yet.
    pub fn with(conn: Connection, now: Instant) -> Self {
        let mut b = Broker {
            conn,
            now,
            inbox: BytesMut::new(),
            rx: BytesMut::new(),
            header_seen: false,
        };
        b.pull();
        assert!(b.header_seen, "the protocol header is sent first");
        b
    }

    /// Handshake with `tune(2047, 131072, 60)`; events drained.
    pub fn open(config: Config) -> Self {
        Self::open_with_tune(config, 2047, 131_072, 60)
    }

    pub fn open_with_tune(config: Config, channel_max: u16, frame_max: u32, heartbeat: u16) -> Self {
        let mut b = Broker::new(config);
        b.handshake(channel_max, frame_max, heartbeat);
        let events = b.events();
        assert!(matches!(events.as_slice(), [Event::Connected { .. }]), "{events:?}");
        b
    }

    /// Runs the handshake up to open-ok (events are left).
    pub fn handshake(&mut self, channel_max: u16, frame_max: u32, heartbeat: u16) {
        let b = self;
        b.send(0, start("PLAIN AMQPLAIN EXTERNAL"));
        assert!(matches!(b.expect_method(0), Method::ConnectionStartOk(_)));
        b.send(
            0,
            ConnectionTune {
                channel_max,
                frame_max,
                heartbeat,
            },
        );
        assert!(matches!(b.expect_method(0), Method::ConnectionTuneOk(_)));
        assert!(matches!(b.expect_method(0), Method::ConnectionOpen(_)));
        b.send(0, ConnectionOpenOk {});
        assert_eq!(b.conn.state(), State::Open);
    }

    /// Moves the virtual clock and runs the timers.
    pub fn advance(&mut self, d: Duration) {
        self.now += d;
        self.conn.handle_timeout(self.now);
    }

    /// Feeds raw bytes (after what is left of earlier input).
    pub fn feed(&mut self, bytes: &[u8]) {
        self.rx.extend_from_slice(bytes);
        self.conn.handle_input(&mut self.rx, self.now);
    }

    /// Sends one method frame.
    pub fn send(&mut self, channel: u16, method: impl Into<Method>) {
        let mut buf = BytesMut::new();
        encode_method(channel, &method.into(), &mut buf);
        self.feed(&buf);
    }

    /// Sends a content method, its header and the body in frames of `chunk` bytes.
    pub fn send_content(&mut self, channel: u16, method: impl Into<Method>, body: &[u8], chunk: usize) {
        let mut buf = BytesMut::new();
        encode_method(channel, &method.into(), &mut buf);
        let header = ContentHeader {
            class_id: 60,
            body_size: body.len() as u64,
            properties: Default::default(),
        };
        encode_header(channel, &header, &mut buf);
        for part in body.chunks(chunk.max(1)) {
            encode_body(channel, part, &mut buf);
        }
        self.feed(&buf);
    }

    /// Sends a delivery for `consumer_tag` with `tag`.
    pub fn deliver(&mut self, channel: u16, consumer_tag: &str, tag: u64, body: &[u8]) {
        let m = BasicDeliver {
            consumer_tag: s(consumer_tag),
            delivery_tag: tag,
            redelivered: false,
            exchange: s("ex"),
            routing_key: s("rk"),
        };
        self.send_content(channel, m, body, 1 << 20);
    }

    /// Moves the client's output to the inbox.
    pub fn pull(&mut self) -> bool {
        let mut out = BytesMut::new();
        let wrote = self.conn.poll_transmit(self.now, &mut out);
        assert_eq!(wrote, !out.is_empty(), "poll_transmit reports whether it wrote");
        self.inbox.extend_from_slice(&out);
        if !self.header_seen && self.inbox.len() >= 8 {
            assert_eq!(&self.inbox[..8], &PROTOCOL_HEADER);
            let _ = self.inbox.split_to(8);
            self.header_seen = true;
        }
        wrote
    }

    /// Every frame the client wrote since the last call.
    pub fn frames(&mut self) -> Vec<Frame> {
        self.pull();
        let mut frames = Vec::new();
        while let Some(f) = Frame::parse(&mut self.inbox, 0).expect("the client writes valid frames") {
            frames.push(f);
        }
        assert!(self.inbox.is_empty(), "the client wrote a partial frame");
        frames
    }

    /// The methods the client wrote, with their channel (other frames skipped).
    pub fn methods(&mut self) -> Vec<(u16, Method)> {
        self.frames()
            .into_iter()
            .filter_map(|f| match f {
                Frame::Method { channel, method } => Some((channel, method)),
                _ => None,
            })
            .collect()
    }

    /// Exactly one method frame must be next (more may follow, kept for later).
    pub fn expect_method(&mut self, channel: u16) -> Method {
        self.pull();
        match Frame::parse(&mut self.inbox, 0) {
            Ok(Some(Frame::Method { channel: c, method })) => {
                assert_eq!(c, channel, "channel of {method:?}");
                method
            }
            other => panic!("expected a method frame, got {other:?}"),
        }
    }

    /// Asserts that the client wrote nothing.
    pub fn expect_silence(&mut self) {
        let frames = self.frames();
        assert!(frames.is_empty(), "expected no output, got {frames:?}");
    }

    /// The connection.close the client sent: (code, class/method).
    pub fn expect_connection_close(&mut self) -> ConnectionClose {
        let methods = self.methods();
        let closes: Vec<_> = methods
            .into_iter()
            .filter_map(|(c, m)| match m {
                Method::ConnectionClose(close) if c == 0 => Some(close),
                _ => None,
            })
            .collect();
        assert_eq!(closes.len(), 1, "one connection.close");
        closes.into_iter().next().expect("one close")
    }

    pub fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.conn.poll_event()).collect()
    }

    /// Opens a channel (open + open-ok); events drained.
    pub fn open_channel(&mut self) -> ChannelId {
        let id = self.conn.open_channel().expect("open_channel");
        assert_eq!(self.expect_method(id.number()), Method::ChannelOpen(ChannelOpen {}));
        self.send(id.number(), ChannelOpenOk {});
        assert_eq!(self.events(), vec![Event::ChannelOpened(id)]);
        id
    }

    /// Calls `basic.consume` and answers `consume-ok`.
    pub fn consume(&mut self, ch: ChannelId, tag: &str, no_ack: bool) {
        let consume = BasicConsume {
            queue: s("q"),
            consumer_tag: s(tag),
            no_ack,
            ..Default::default()
        };
        self.conn.call(ch, consume.into()).expect("consume");
        assert!(matches!(self.expect_method(ch.number()), Method::BasicConsume(_)));
        self.send(ch.number(), BasicConsumeOk { consumer_tag: s(tag) });
        assert!(matches!(
            self.events().as_slice(),
            [Event::Reply {
                method: Method::BasicConsumeOk(_),
                ..
            }]
        ));
    }

    /// Calls `queue.declare` of queue "q", drains the frame, and leaves the call pending.
    pub fn declare_pending(&mut self, ch: ChannelId) {
        let declare = QueueDeclare {
            queue: s("q"),
            ..Default::default()
        };
        self.conn.call(ch, declare.into()).expect("declare");
        assert!(matches!(self.expect_method(ch.number()), Method::QueueDeclare(_)));
    }

    /// Puts a channel in confirm mode (select + select-ok).
    pub fn confirm_select(&mut self, ch: ChannelId) {
        self.conn
            .call(ch, ConfirmSelect { nowait: false }.into())
            .expect("confirm.select");
        assert!(matches!(self.expect_method(ch.number()), Method::ConfirmSelect(_)));
        self.send(ch.number(), ConfirmSelectOk {});
        assert!(matches!(
            self.events().as_slice(),
            [Event::Reply {
                method: Method::ConfirmSelectOk(_),
                ..
            }]
        ));
    }

    /// Publishes `body` to `rk` and drains the frames.
    pub fn publish(&mut self, ch: ChannelId, rk: &str, mandatory: bool, body: &'static [u8]) -> Option<u64> {
        let args = BasicPublish {
            exchange: s("ex"),
            routing_key: s(rk),
            mandatory,
            immediate: false,
        };
        let seq = self
            .conn
            .publish(ch, &args, &BasicProperties::default(), &Bytes::from_static(body))
            .expect("publish");
        assert!(!self.frames().is_empty());
        seq
    }

    /// The connection closed itself because of a protocol error: it sent
    /// connection.close with `code`, failed every channel and the connection with the
    /// same error, and finishes on close-ok.
    pub fn expect_protocol_close(&mut self, code: ReplyCode, channels: &[ChannelId]) -> Error {
        let close = self.expect_connection_close();
        assert_eq!(close.reply_code, code.0, "reply code of {close:?}");
        assert_eq!(self.conn.state(), State::AwaitCloseOk);
        let error = self.conn.error().cloned().expect("poisoned");
        assert_eq!(error.reply_code(), Some(code));
        assert_eq!(error.initiator(), Some(Initiator::Library));
        let events = self.events();
        let failed: Vec<ChannelId> = events
            .iter()
            .map(|e| match e {
                Event::ChannelClosed { channel, error: e } => {
                    assert_eq!(e, &error, "channels fail with the connection's error");
                    *channel
                }
                other => panic!("unexpected event {other:?}"),
            })
            .collect();
        assert_eq!(failed, channels);
        assert_eq!(
            self.conn.open_channel(),
            Err(error.clone()),
            "commands return the same error"
        );
        self.send(0, ConnectionCloseOk {});
        assert_eq!(self.events(), vec![Event::ConnectionClosed(error.clone())]);
        assert!(self.conn.is_closed());
        error
    }
}
