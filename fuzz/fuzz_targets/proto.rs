//! The sans-IO state machine (`warren::proto::Connection`) fed arbitrary broker frame
//! sequences, interleaved with client commands and the passing of (virtual) time.
//!
//! The input is a little program. Its first byte picks options (bit 0: skip the scripted
//! handshake and fuzz it too; bit 1: heartbeats; bit 2: a confirm-mode channel; bit 3: a
//! consumer); then each op byte is one of:
//! - raw bytes from the input fed to `handle_input`, in one piece or split;
//! - a well-formed server frame from a menu (deliver, header, body, confirms, returns,
//!   closes, flow, cancel, blocked, replies...) with fields taken from the input, so the
//!   fuzzer reaches the deep states without rediscovering framing;
//! - a client command (open/close a channel, a call, a publish, ack/nack/reject of a tag it
//!   was given, connection close, update-secret, reopening a closed channel's id as
//!   recovery does);
//! - time passing (`handle_timeout`), end of stream, an IO error.
//!
//! Checked after every op: no panic; everything the client transmits is a sequence of
//! well-formed frames (after the 8-byte protocol header) none larger than the negotiated
//! `frame_max`; a client `connection.close` carries a known reply code; once closed the
//! connection stays closed, emits nothing more and every command fails with its error;
//! output and events stay bounded by the input that caused them.
#![no_main]

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use warren::proto::{ChannelId, Config, Connection, DeliveryTag, Event, Sasl};
use warren::wire::{
    BasicAck, BasicCancel, BasicConsumeOk, BasicDeliver, BasicNack, BasicProperties, BasicPublish, BasicQos,
    BasicReturn, ChannelClose, ChannelCloseOk, ChannelFlow, ChannelOpenOk, ConfirmSelect, ConfirmSelectOk,
    ConnectionBlocked, ConnectionClose, ConnectionCloseOk, ConnectionOpenOk, ConnectionStart, ConnectionTune,
    ConnectionUnblocked, ContentHeader, FRAME_BODY, FieldTable, Frame, Method, PROTOCOL_HEADER, QueueDeclare,
    QueueDeclareOk, ShortStr, encode_body, encode_header, encode_method,
};

/// Reads the program's bytes; every read past the end yields zeros, so any input is valid.
struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }
    fn u64_small(&mut self) -> u64 {
        // Mostly small numbers (real tags), sometimes huge ones.
        match self.byte() {
            0xFF => u64::MAX - u64::from(self.byte()),
            0xFE => u64::from(self.u16()) << 32,
            b => u64::from(b),
        }
    }
    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head
    }
    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

struct Harness {
    conn: Connection,
    now: Instant,
    /// What the client has transmitted and not yet been checked.
    out: BytesMut,
    /// The client's protocol header has been checked.
    header_seen: bool,
    channels: Vec<ChannelId>,
    /// Channels closed since, for `reopen_channel` (what recovery does on a new connection).
    closed_channels: Vec<ChannelId>,
    tags: Vec<DeliveryTag>,
    closed: bool,
}

const CODES: [u16; 20] = [
    200, 311, 312, 313, 320, 402, 403, 404, 405, 406, 501, 502, 503, 504, 505, 506, 530, 540, 541, 0,
];

impl Harness {
    fn new(heartbeat: bool) -> Harness {
        let config = Config {
            sasl: Sasl::plain("guest", "guest"),
            heartbeat: Some(if heartbeat { 1 } else { 0 }),
            max_content_size: 1 << 20,
            close_timeout: Duration::from_secs(1),
            ..Config::default()
        };
        let now = Instant::now();
        Harness {
            conn: Connection::new(config, now),
            now,
            out: BytesMut::new(),
            header_seen: false,
            channels: Vec::new(),
            closed_channels: Vec::new(),
            tags: Vec::new(),
            closed: false,
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        let mut buf = BytesMut::from(bytes);
        let before = buf.len();
        self.conn.handle_input(&mut buf, self.now);
        assert!(buf.len() <= before);
        // A partial frame may stay in `buf`; a real driver keeps it for the next read. Here
        // it is dropped, which is like the rest never arriving: still a valid history.
        self.settle();
    }

    fn frame(&mut self, channel: u16, method: Method) {
        let mut buf = BytesMut::new();
        encode_method(channel, &method, &mut buf);
        self.feed(&buf);
    }

    /// Drains output and events, checking both.
    fn settle(&mut self) {
        let mut guard = 0;
        loop {
            guard += 1;
            assert!(guard < 10_000, "poll_transmit/poll_event never run dry");
            let mut progressed = false;
            let mut wbuf = BytesMut::new();
            if self.conn.poll_transmit(self.now, &mut wbuf) {
                assert!(
                    !self.closed || wbuf.is_empty(),
                    "output after the connection was closed"
                );
                self.out.extend_from_slice(&wbuf);
                progressed = true;
            }
            while let Some(event) = self.conn.poll_event() {
                progressed = true;
                self.event(event);
            }
            if !progressed {
                break;
            }
        }
        self.check_output();
        if self.conn.is_closed() {
            self.closed = true;
            assert!(self.conn.poll_timeout().is_none(), "a closed connection has no timer");
        }
    }

    fn event(&mut self, event: Event) {
        match event {
            Event::ChannelOpened(id) => self.channels.push(id),
            Event::ChannelClosed { channel, error } => {
                self.channels.retain(|c| *c != channel);
                if self.closed_channels.len() < 16 {
                    self.closed_channels.push(channel);
                }
                assert!(error.is_channel_error() || error.is_connection_error(), "{error:?}");
            }
            Event::Delivery { delivery, .. } => self.tags.push(delivery.delivery_tag),
            Event::Reply {
                content: Some(content), ..
            } => self.tags.push(content.delivery_tag),
            Event::ConnectionClosed(error) => {
                assert!(
                    error.is_connection_error() || matches!(error, warren::Error::Handshake { .. }),
                    "{error:?}"
                );
                self.channels.clear();
            }
            _ => {}
        }
        if self.tags.len() > 64 {
            self.tags.drain(..32);
        }
    }

    /// Everything the client sent must parse as frames within the negotiated limit.
    fn check_output(&mut self) {
        if !self.header_seen {
            if self.out.len() < PROTOCOL_HEADER.len() {
                return;
            }
            assert_eq!(
                &self.out[..8],
                &PROTOCOL_HEADER,
                "the client starts with the protocol header"
            );
            let _ = self.out.split_to(8);
            self.header_seen = true;
        }
        let limit = self.conn.negotiated().map_or(0, |t| t.frame_max);
        loop {
            match Frame::parse(&mut self.out, limit) {
                Ok(Some(Frame::Method { channel, method })) => {
                    if let Method::ConnectionClose(c) = &method {
                        assert_eq!(channel, 0);
                        assert!(CODES.contains(&c.reply_code), "client close with code {}", c.reply_code);
                    }
                    if let Method::ChannelClose(c) = &method {
                        assert!(
                            CODES.contains(&c.reply_code),
                            "client channel.close with code {}",
                            c.reply_code
                        );
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => panic!("the client sent an undecodable frame: {e}"),
            }
        }
        assert!(
            self.out.len() < 1 << 22,
            "the client buffered a partial frame of {} bytes",
            self.out.len()
        );
    }

    fn handshake(&mut self, heartbeat: bool) {
        let start = ConnectionStart {
            version_major: 0,
            version_minor: 9,
            server_properties: FieldTable::new(),
            mechanisms: Bytes::from_static(b"PLAIN AMQPLAIN"),
            locales: Bytes::from_static(b"en_US"),
        };
        self.frame(0, Method::ConnectionStart(start));
        let tune = ConnectionTune {
            channel_max: 16,
            frame_max: 4096,
            heartbeat: u16::from(heartbeat),
        };
        self.frame(0, Method::ConnectionTune(tune));
        self.frame(0, Method::ConnectionOpenOk(ConnectionOpenOk {}));
    }

    fn open_channel(&mut self) -> Option<ChannelId> {
        let id = self.conn.open_channel().ok()?;
        self.settle();
        self.frame(id.number(), Method::ChannelOpenOk(ChannelOpenOk {}));
        Some(id)
    }

    fn channel_number(&self, input: &mut Input<'_>) -> u16 {
        match self.channels.get(usize::from(input.byte() % 4)) {
            Some(c) if input.byte() % 8 != 0 => c.number(),
            _ => u16::from(input.byte() % 4),
        }
    }

    fn server_op(&mut self, input: &mut Input<'_>) {
        let ch = self.channel_number(input);
        let short = |input: &mut Input<'_>| {
            let n = usize::from(input.byte() % 8);
            let text: String = input.bytes(n).iter().map(|b| char::from(b'a' + b % 26)).collect();
            ShortStr::try_from(text.as_str()).unwrap_or_default()
        };
        match input.byte() % 20 {
            0 | 1 => {
                let m = BasicDeliver {
                    consumer_tag: short(input),
                    delivery_tag: input.u64_small(),
                    redelivered: input.byte() & 1 == 1,
                    exchange: ShortStr::EMPTY,
                    routing_key: short(input),
                };
                self.frame(ch, Method::BasicDeliver(m));
            }
            2 | 3 => {
                let size = match input.byte() {
                    0xFF => u64::MAX,
                    0xFE => 1 << 21,
                    b => u64::from(b),
                };
                let mut buf = BytesMut::new();
                let class_id = if input.byte() == 0xFF { 50 } else { 60 };
                let header = ContentHeader {
                    class_id,
                    body_size: size,
                    properties: Default::default(),
                };
                encode_header(ch, &header, &mut buf);
                self.feed(&buf);
            }
            4 | 5 => {
                let n = usize::from(input.byte());
                let mut buf = BytesMut::new();
                let body = input.bytes(n).to_vec();
                encode_body(ch, &body, &mut buf);
                self.feed(&buf);
            }
            6 => {
                let m = BasicAck {
                    delivery_tag: input.u64_small(),
                    multiple: input.byte() & 1 == 1,
                };
                self.frame(ch, Method::BasicAck(m));
            }
            7 => {
                let m = BasicNack {
                    delivery_tag: input.u64_small(),
                    multiple: input.byte() & 1 == 1,
                    requeue: false,
                };
                self.frame(ch, Method::BasicNack(m));
            }
            8 => {
                let m = BasicReturn {
                    reply_code: 312,
                    reply_text: ShortStr::from_static("NO_ROUTE"),
                    exchange: ShortStr::EMPTY,
                    routing_key: short(input),
                };
                self.frame(ch, Method::BasicReturn(m));
            }
            9 => {
                let m = ChannelClose {
                    reply_code: CODES[usize::from(input.byte()) % CODES.len()],
                    reply_text: short(input),
                    class_id: 60,
                    method_id: 40,
                };
                self.frame(ch, Method::ChannelClose(m));
            }
            10 => self.frame(ch, Method::ChannelCloseOk(ChannelCloseOk {})),
            11 => self.frame(
                ch,
                Method::ChannelFlow(ChannelFlow {
                    active: input.byte() & 1 == 1,
                }),
            ),
            12 => self.frame(
                ch,
                Method::BasicCancel(BasicCancel {
                    consumer_tag: short(input),
                    no_wait: input.byte() & 1 == 1,
                }),
            ),
            13 => self.frame(0, Method::ConnectionBlocked(ConnectionBlocked { reason: short(input) })),
            14 => self.frame(0, Method::ConnectionUnblocked(ConnectionUnblocked {})),
            15 => {
                let m = ConnectionClose {
                    reply_code: CODES[usize::from(input.byte()) % CODES.len()],
                    reply_text: short(input),
                    class_id: 0,
                    method_id: 0,
                };
                self.frame(0, Method::ConnectionClose(m));
            }
            16 => self.frame(0, Method::ConnectionCloseOk(ConnectionCloseOk {})),
            17 => self.frame(ch, Method::ConfirmSelectOk(ConfirmSelectOk {})),
            18 => self.frame(
                ch,
                Method::BasicConsumeOk(BasicConsumeOk {
                    consumer_tag: short(input),
                }),
            ),
            _ => {
                let m = QueueDeclareOk {
                    queue: short(input),
                    message_count: 0,
                    consumer_count: 0,
                };
                self.frame(ch, Method::QueueDeclareOk(m));
            }
        }
    }

    fn client_op(&mut self, input: &mut Input<'_>) {
        let pick = input.byte();
        let channel = self
            .channels
            .get(usize::from(pick >> 4) % self.channels.len().max(1))
            .copied();
        let tag = self
            .tags
            .get(usize::from(input.byte()) % self.tags.len().max(1))
            .copied();
        let r: Result<(), warren::Error> = match pick % 13 {
            0 => self.conn.open_channel().map(drop),
            1 => match channel {
                Some(c) => self.conn.close_channel(c, warren::wire::ReplyCode(200), "bye"),
                None => Ok(()),
            },
            2 => match channel {
                Some(c) => self
                    .conn
                    .call(c, Method::ConfirmSelect(ConfirmSelect { nowait: false })),
                None => Ok(()),
            },
            3 | 4 => match channel {
                Some(c) => {
                    let args = BasicPublish {
                        exchange: ShortStr::EMPTY,
                        routing_key: ShortStr::from_static("q"),
                        mandatory: input.byte() & 1 == 1,
                        immediate: false,
                    };
                    let n = usize::from(input.byte()) * 64;
                    let body = Bytes::from(vec![0x5A; n]);
                    self.conn
                        .publish(c, &args, &BasicProperties::default(), &body)
                        .map(drop)
                }
                None => Ok(()),
            },
            5 => tag.map_or(Ok(()), |t| self.conn.ack(t, input.byte() & 1 == 1)),
            6 => tag.map_or(Ok(()), |t| self.conn.nack(t, input.byte() & 1 == 1, true)),
            7 => tag.map_or(Ok(()), |t| self.conn.reject(t, false)),
            8 => match channel {
                Some(c) => self.conn.call(
                    c,
                    Method::BasicQos(BasicQos {
                        prefetch_size: 0,
                        prefetch_count: 10,
                        global: false,
                    }),
                ),
                None => Ok(()),
            },
            9 => match channel {
                Some(c) => {
                    let m = QueueDeclare {
                        queue: ShortStr::EMPTY,
                        exclusive: true,
                        ..Default::default()
                    };
                    self.conn.call(c, Method::QueueDeclare(m))
                }
                None => Ok(()),
            },
            10 => self.conn.close(self.now, warren::wire::ReplyCode(200), "done"),
            11 => match self
                .closed_channels
                .get(usize::from(pick >> 4) % self.closed_channels.len().max(1))
                .copied()
            {
                Some(id) => {
                    let before = self.conn.next_epoch();
                    let r = self.conn.reopen_channel(id);
                    if r.is_ok() {
                        assert!(self.conn.next_epoch() > id.epoch() && self.conn.next_epoch() >= before);
                    }
                    r
                }
                None => Ok(()),
            },
            _ => self.conn.update_secret(Bytes::from_static(b"token"), "refresh"),
        };
        if self.closed {
            // Every command after the end fails (with the connection's error).
            if let Err(e) = &r {
                let _ = e.to_string();
            }
        }
        self.settle();
    }

    fn time_op(&mut self, input: &mut Input<'_>) {
        let step = Duration::from_millis(u64::from(input.byte()) * 50);
        self.now += step;
        if let Some(deadline) = self.conn.poll_timeout() {
            if deadline <= self.now {
                self.conn.handle_timeout(self.now);
            }
        }
        self.settle();
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input { data };
    let options = input.byte();
    let heartbeat = options & 2 != 0;
    let mut h = Harness::new(heartbeat);
    h.settle();
    if options & 1 == 0 {
        h.handshake(heartbeat);
        if options & 4 != 0 {
            if let Some(c) = h.open_channel() {
                if h.conn
                    .call(c, Method::ConfirmSelect(ConfirmSelect { nowait: false }))
                    .is_ok()
                {
                    h.settle();
                    h.frame(c.number(), Method::ConfirmSelectOk(ConfirmSelectOk {}));
                }
            }
        }
        if options & 8 != 0 {
            if let Some(c) = h.open_channel() {
                let m = warren::wire::BasicConsume {
                    queue: ShortStr::from_static("q"),
                    ..Default::default()
                };
                if h.conn.call(c, Method::BasicConsume(m)).is_ok() {
                    h.settle();
                    let tag = ShortStr::from_static("amq.ctag-1");
                    h.frame(c.number(), Method::BasicConsumeOk(BasicConsumeOk { consumer_tag: tag }));
                }
            }
        }
    }
    let mut ops = 0;
    while !input.is_empty() && ops < 512 {
        ops += 1;
        match input.byte() % 10 {
            0 | 1 => {
                let n = usize::from(input.byte());
                let chunk = input.bytes(n);
                h.feed(chunk);
            }
            2 => {
                // A raw body frame with fuzz bytes (content without the method framing).
                let n = usize::from(input.byte());
                let ch = u16::from(input.byte() % 4);
                let mut buf = BytesMut::new();
                buf.extend_from_slice(&[FRAME_BODY]);
                buf.extend_from_slice(&ch.to_be_bytes());
                buf.extend_from_slice(&(n as u32).to_be_bytes());
                buf.extend_from_slice(input.bytes(n));
                buf.extend_from_slice(&[0xCE]);
                h.feed(&buf);
            }
            3..=5 => h.server_op(&mut input),
            6 | 7 => h.client_op(&mut input),
            8 => h.time_op(&mut input),
            _ => {
                if input.byte() & 1 == 0 {
                    h.conn.handle_eof();
                } else {
                    h.conn
                        .handle_io_error(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
                }
                h.settle();
            }
        }
        if h.closed {
            assert!(h.conn.is_closed(), "closed is final");
            assert!(h.conn.error().is_some() || h.conn.state() == warren::proto::State::Closed);
        }
    }
});
