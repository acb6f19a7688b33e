//! Inbound bytes: framing, and every frame of an open connection, by channel.
//!
//! Error codes used when the server breaks the protocol (the connection closes):
//! - a frame that cannot be decoded: the [`WireError`]'s code (501, 502, 503);
//! - a method only clients send, a connection method off channel 0 or a channel method
//!   on it, a reply with no call pending or answering another call, `basic.ack`/`nack`
//!   on a channel not in confirm mode: 503 COMMAND_INVALID;
//! - a frame on a channel that is not open, or an asynchronous method on a channel
//!   whose `open-ok` has not arrived: 504 CHANNEL_ERROR;
//! - a content header or body out of sequence (no content method before it, a method
//!   in the middle of a content, body bytes past `body_size`, a header of the wrong
//!   class), content on channel 0: 505 UNEXPECTED_FRAME.
//!
//! Channel-level (the channel closes, the connection goes on):
//! - a body larger than `max_content_size`: 311 CONTENT_TOO_LARGE, at the header;
//! - `basic.ack`/`nack` for a publish number never used: 406 PRECONDITION_FAILED.

use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};

use super::channel::{CallKind, Channel, ChannelState, Consumer, Mode};
use super::connection::{Discard, Io, Phase, method_id, short_text};
use super::content::{Assembly, ContentKind, Stage};
use super::topology::Topology;
use super::{Connection, Delivery, DeliveryTag, Event, Returned};
use crate::error::{CancelReason, Error, Initiator};
use crate::wire::{
    BasicCancelOk, ChannelClose, ChannelCloseOk, ChannelFlowOk, ConnectionClose, ConnectionCloseOk, ContentHeader,
    FieldValue, Frame, Method, MethodId, Properties, ReplyCode, ShortStr, WireError, encode_method,
    parse_protocol_header,
};

/// What a channel handler asks the connection to do next.
#[derive(Debug)]
pub(super) enum Step {
    /// Nothing more.
    Continue,
    /// The channel's close handshake is over: free it and report this error.
    Closed(Error),
}

/// A protocol violation found by a channel handler.
#[derive(Debug)]
pub(super) enum Fault {
    /// Close the connection with this code.
    Connection {
        code: ReplyCode,
        text: String,
        method: Option<MethodId>,
    },
    /// Close the channel with this code (a soft error).
    Channel {
        code: ReplyCode,
        text: String,
        method: Option<MethodId>,
    },
}

#[cold]
fn conn_fault(code: ReplyCode, text: String, method: Option<MethodId>) -> Fault {
    Fault::Connection { code, text, method }
}

fn server_channel_error(m: &ChannelClose) -> Error {
    Error::ChannelClosed {
        by: Initiator::Server,
        code: ReplyCode(m.reply_code),
        text: m.reply_text.to_string(),
        method: method_id(m.class_id, m.method_id),
    }
}

/// The first bytes of `buf`, as text where they are printable, for an error message.
fn quote(buf: &[u8]) -> String {
    let shown = &buf[..buf.len().min(40)];
    let text: String = shown
        .iter()
        .map(|&b| match b {
            b' '..=b'~' => char::from(b).to_string(),
            b'\r' => "\\r".into(),
            b'\n' => "\\n".into(),
            _ => format!("\\x{b:02x}"),
        })
        .collect();
    let more = if buf.len() > shown.len() { "..." } else { "" };
    format!("\"{text}{more}\"")
}

/// The length of the frame at the front of `buf`, from its header.
fn declared_frame_len(buf: &[u8]) -> u64 {
    match buf.get(3..7) {
        Some(&[a, b, c, d]) => u64::from(u32::from_be_bytes([a, b, c, d])) + 8,
        _ => buf.len() as u64,
    }
}

impl Connection {
    /// Consumes every complete frame at the front of `buf` (a partial frame stays for
    /// the next call). Any frame counts as a sign of life for the heartbeat timeout.
    /// Protocol errors close the connection with the matching reply code; after a
    /// framing error (bad frame end, unknown frame type) the rest of the input is
    /// dropped, since frame boundaries are lost.
    pub fn handle_input(&mut self, buf: &mut BytesMut, now: Instant) {
        self.io.now = Some(now);
        loop {
            if self.is_closed() {
                buf.clear();
                return;
            }
            match self.discard {
                Discard::Nothing => {}
                Discard::All => {
                    buf.clear();
                    return;
                }
                Discard::Bytes(n) => {
                    let k = usize::try_from(n).unwrap_or(usize::MAX).min(buf.len());
                    buf.advance(k);
                    let left = n.saturating_sub(k as u64);
                    self.discard = if left == 0 {
                        Discard::Nothing
                    } else {
                        Discard::Bytes(left)
                    };
                    if left > 0 {
                        return;
                    }
                }
            }
            if matches!(self.phase, Phase::AwaitStart) && buf.first() == Some(&b'A') {
                // A server that refuses our protocol version answers with its own header.
                let found = match parse_protocol_header(buf) {
                    Ok(None) => return,
                    Ok(Some(found)) | Err(WireError::BadProtocolHeader { found }) => found,
                    Err(_) => [0; 8],
                };
                buf.clear();
                self.lost(Error::Handshake {
                    reason: format!(
                        "the server does not accept AMQP 0-9-1; it answered with protocol header {found:?}"
                    ),
                });
                return;
            }
            let before = buf.len();
            match Frame::parse(buf, self.inbound_frame_max) {
                Ok(None) => return,
                Ok(Some(frame)) => {
                    self.last_read = now;
                    self.handle_frame(frame, now);
                }
                Err(WireError::UnknownFrameType { .. } | WireError::BadFrameEnd { .. })
                    if matches!(self.phase, Phase::AwaitStart) =>
                {
                    // Not even a frame where connection.start should be: not AMQP.
                    let reason = format!(
                        "the peer is not an AMQP 0-9-1 server: it answered the protocol header with {}",
                        quote(buf)
                    );
                    buf.clear();
                    self.lost(Error::Handshake { reason });
                    return;
                }
                Err(e) => {
                    let consumed = buf.len() < before;
                    self.on_wire_error(e, buf, consumed, now);
                }
            }
        }
    }

    /// `consumed`: the parser already took the bad frame off `buf`.
    fn on_wire_error(&mut self, e: WireError, buf: &BytesMut, consumed: bool, now: Instant) {
        self.discard = match &e {
            WireError::FrameTooLarge { size, .. } => Discard::Bytes(*size),
            WireError::UnknownFrameType { .. }
            | WireError::BadFrameEnd { .. }
            | WireError::BadProtocolHeader { .. } => Discard::All,
            // Decoding errors: the frame was complete and delimited; skip just it
            // (unless the parser consumed it already).
            _ if consumed => Discard::Nothing,
            _ => Discard::Bytes(declared_frame_len(buf)),
        };
        let method = match e {
            WireError::UnknownMethod { class_id, method_id } => Some(MethodId::new(class_id, method_id)),
            _ => None,
        };
        self.connection_error(e.reply_code(), e.to_string(), method, now);
    }

    fn handle_frame(&mut self, frame: Frame, now: Instant) {
        match self.phase {
            Phase::Closed => {}
            Phase::AwaitCloseOk { .. } => self.on_closing_frame(frame),
            Phase::Open => self.on_open_frame(frame, now),
            _ => self.on_handshake_frame(frame, now),
        }
    }

    /// After `connection.close` was sent, only `close` and `close-ok` matter.
    #[cold]
    fn on_closing_frame(&mut self, frame: Frame) {
        if let Frame::Method { channel: 0, method } = frame {
            match method {
                Method::ConnectionClose(_) => {
                    encode_method(
                        0,
                        &Method::ConnectionCloseOk(ConnectionCloseOk {}),
                        self.io.out.buf_mut(),
                    );
                    self.enter_closed();
                }
                Method::ConnectionCloseOk(_) => self.enter_closed(),
                _ => {}
            }
        }
    }

    /// `connection.close` from the server: answer `close-ok`, fail everything.
    pub(super) fn on_server_close(&mut self, m: ConnectionClose) {
        encode_method(
            0,
            &Method::ConnectionCloseOk(ConnectionCloseOk {}),
            self.io.out.buf_mut(),
        );
        let code = ReplyCode(m.reply_code);
        let text = m.reply_text.to_string();
        tracing::debug!(code = code.0, %text, "connection.close from the server");
        let error = match self.phase {
            Phase::AwaitSecureOrTune { .. } if code == ReplyCode::ACCESS_REFUSED => Error::Authentication {
                mechanism: self.config.sasl.mechanism().into(),
                text,
            },
            _ => Error::ConnectionClosed {
                by: Initiator::Server,
                code,
                text,
                method: method_id(m.class_id, m.method_id),
            },
        };
        self.fail_all(error);
        self.enter_closed();
    }

    /// A method on channel 0 of an open connection.
    #[inline(never)]
    pub(super) fn on_connection_method(&mut self, method: Method, now: Instant) {
        match method {
            Method::ConnectionClose(m) => self.on_server_close(m),
            Method::ConnectionBlocked(m) => {
                self.blocked = true;
                self.io.events.push_back(Event::Blocked {
                    reason: m.reason.to_string(),
                });
            }
            Method::ConnectionUnblocked(_) => {
                self.blocked = false;
                for ch in self.channels.iter_mut() {
                    ch.hold.release(&mut self.io.out, false, &mut self.io.held);
                }
                self.io.events.push_back(Event::Unblocked);
            }
            Method::ConnectionUpdateSecretOk(_) if self.secret_updates > 0 => {
                self.secret_updates -= 1;
                self.io.events.push_back(Event::SecretUpdated);
            }
            other => {
                let id = other.id();
                self.connection_error(
                    ReplyCode::COMMAND_INVALID,
                    format!("unexpected {id} on channel 0"),
                    Some(id),
                    now,
                );
            }
        }
    }

    fn on_open_frame(&mut self, frame: Frame, now: Instant) {
        let (number, result) = match frame {
            Frame::Heartbeat => return,
            Frame::Method { channel: 0, method } => return self.on_connection_method(method, now),
            Frame::Header { channel: 0, .. } | Frame::Body { channel: 0, .. } => {
                let text = "content frame on channel 0".to_owned();
                (0, Err(conn_fault(ReplyCode::UNEXPECTED_FRAME, text, None)))
            }
            Frame::Method { channel, method } => (channel, self.on_channel_method(channel, method)),
            Frame::Header { channel, header } => (channel, self.on_header(channel, header)),
            Frame::Body { channel, payload } => (channel, self.on_body(channel, payload)),
        };
        match result {
            Ok(Step::Continue) => {}
            Ok(Step::Closed(error)) => {
                if let Some(mut ch) = self.channels.remove_number(number) {
                    ch.hold.discard(&mut self.io.held);
                    self.channel_gone(ch, error, now);
                }
            }
            Err(Fault::Connection { code, text, method }) => self.connection_error(code, text, method, now),
            Err(Fault::Channel { code, text, method }) => {
                tracing::debug!(channel = number, code = code.0, %text, "closing the channel");
                let reply_text = short_text(&text);
                let error = Error::ChannelClosed {
                    by: Initiator::Library,
                    code,
                    text,
                    method,
                };
                self.begin_channel_close(number, code, reply_text, method, error);
            }
        }
        self.after_replies(now);
    }

    fn on_channel_method(&mut self, number: u16, method: Method) -> Result<Step, Fault> {
        let id = method.id();
        if !method.info().sent_by_server {
            return Err(conn_fault(
                ReplyCode::COMMAND_INVALID,
                format!("{id} may not be sent by a server"),
                Some(id),
            ));
        }
        if id.class_id == 10 {
            return Err(conn_fault(
                ReplyCode::COMMAND_INVALID,
                format!("{id} on channel {number}"),
                Some(id),
            ));
        }
        let Some(ch) = self.channels.by_number_mut(number) else {
            let text = format!("{id} on channel {number}, which is not open");
            return Err(conn_fault(ReplyCode::CHANNEL_ERROR, text, Some(id)));
        };
        let step = ch.on_method(method, id, &mut self.io, &mut self.topology);
        if matches!(step, Ok(Step::Continue)) && !ch.hold.is_empty() {
            ch.hold.release(&mut self.io.out, self.blocked, &mut self.io.held);
        }
        step
    }

    fn on_header(&mut self, number: u16, header: ContentHeader) -> Result<Step, Fault> {
        let max = self.config.max_content_size;
        let generation = self.config.generation;
        let Some(ch) = self.channels.by_number_mut(number) else {
            let text = format!("content header on channel {number}, which is not open");
            return Err(conn_fault(ReplyCode::CHANNEL_ERROR, text, None));
        };
        if matches!(ch.state, ChannelState::Closing { .. }) {
            return Ok(Step::Continue);
        }
        let Some(asm) = &mut ch.content else {
            let text = format!("content header on channel {number} with no content method before it");
            return Err(conn_fault(ReplyCode::UNEXPECTED_FRAME, text, None));
        };
        let kind = asm.kind.method_id();
        if !matches!(asm.stage, Stage::Header) {
            let text = format!("second content header on channel {number} for {kind}");
            return Err(conn_fault(ReplyCode::UNEXPECTED_FRAME, text, Some(kind)));
        }
        if header.class_id != kind.class_id {
            let text = format!("content header of class {} for {kind}", header.class_id);
            return Err(conn_fault(ReplyCode::UNEXPECTED_FRAME, text, Some(kind)));
        }
        if header.body_size > max {
            let text = format!(
                "{kind} body of {} bytes exceeds max_content_size {max}",
                header.body_size
            );
            return Err(Fault::Channel {
                code: ReplyCode::CONTENT_TOO_LARGE,
                text,
                method: Some(kind),
            });
        }
        if header.body_size == 0 {
            let Some(asm) = ch.content.take() else {
                return Ok(Step::Continue);
            };
            return ch.complete(asm.kind, header.properties, Bytes::new(), generation, &mut self.io);
        }
        asm.stage = Stage::Body {
            properties: header.properties,
            size: header.body_size,
            body: Default::default(),
        };
        Ok(Step::Continue)
    }

    fn on_body(&mut self, number: u16, payload: Bytes) -> Result<Step, Fault> {
        let generation = self.config.generation;
        let Some(ch) = self.channels.by_number_mut(number) else {
            let text = format!("content body on channel {number}, which is not open");
            return Err(conn_fault(ReplyCode::CHANNEL_ERROR, text, None));
        };
        if matches!(ch.state, ChannelState::Closing { .. }) {
            return Ok(Step::Continue);
        }
        let Some(Assembly {
            stage: Stage::Body { size, body, .. },
            kind,
        }) = &mut ch.content
        else {
            let text = format!("content body on channel {number} with no content header before it");
            return Err(conn_fault(ReplyCode::UNEXPECTED_FRAME, text, None));
        };
        let size = *size;
        let total = body.len().saturating_add(payload.len() as u64);
        if total > size {
            let text = format!("content body frames on channel {number} exceed the announced {size} bytes");
            return Err(conn_fault(ReplyCode::UNEXPECTED_FRAME, text, Some(kind.method_id())));
        }
        body.push(payload, size);
        if total < size {
            return Ok(Step::Continue);
        }
        match ch.content.take() {
            Some(Assembly {
                kind,
                stage: Stage::Body { properties, body, .. },
            }) => ch.complete(kind, properties, body.finish(), generation, &mut self.io),
            _ => Ok(Step::Continue),
        }
    }
}

impl Channel {
    /// A method for this channel (the server may send it; not a connection method).
    fn on_method(&mut self, method: Method, id: MethodId, io: &mut Io, topology: &mut Topology) -> Result<Step, Fault> {
        let number = self.id.number;
        if let ChannelState::Closing { own, server } = &mut self.state {
            // After channel.close, only close and close-ok count; the rest is dropped.
            match method {
                Method::ChannelClose(m) => {
                    encode_method(number, &Method::ChannelCloseOk(ChannelCloseOk {}), io.out.buf_mut());
                    server.get_or_insert_with(|| server_channel_error(&m));
                }
                Method::ChannelCloseOk(_) => return Ok(Step::Closed(server.take().unwrap_or_else(|| own.clone()))),
                _ => {}
            }
            return Ok(Step::Continue);
        }
        if let Some(asm) = &self.content {
            let text = format!(
                "{id} on channel {number} while the content of {} was being received",
                asm.kind.method_id()
            );
            return Err(conn_fault(ReplyCode::UNEXPECTED_FRAME, text, Some(id)));
        }
        if let Method::ChannelClose(m) = &method {
            encode_method(number, &Method::ChannelCloseOk(ChannelCloseOk {}), io.out.buf_mut());
            return Ok(Step::Closed(server_channel_error(m)));
        }
        let asynchronous = matches!(
            method,
            Method::BasicDeliver(_)
                | Method::BasicReturn(_)
                | Method::BasicAck(_)
                | Method::BasicNack(_)
                | Method::BasicCancel(_)
                | Method::ChannelFlow(_)
        );
        if !asynchronous {
            return self.on_reply(method, id, io, topology);
        }
        if matches!(self.state, ChannelState::Opening) {
            let text = format!("{id} on channel {number} before channel.open-ok");
            return Err(conn_fault(ReplyCode::CHANNEL_ERROR, text, Some(id)));
        }
        match method {
            Method::BasicDeliver(m) => self.content = Some(Assembly::new(ContentKind::Deliver(m))),
            Method::BasicReturn(m) => self.content = Some(Assembly::new(ContentKind::Return(m))),
            Method::BasicAck(m) => return self.on_confirm(m.delivery_tag, m.multiple, true, id, io),
            Method::BasicNack(m) => return self.on_confirm(m.delivery_tag, m.multiple, false, id, io),
            Method::BasicCancel(m) => {
                let reason = self.cancel_reason(&m.consumer_tag, io);
                // RabbitMQ 4.3.7+ takes a cancel-ok for its own no-wait cancel (and drops
                // the consumer sooner); older servers refuse one.
                if !m.no_wait || io.accept_cancel_ok {
                    let ok = BasicCancelOk {
                        consumer_tag: m.consumer_tag.clone(),
                    };
                    encode_method(number, &Method::BasicCancelOk(ok), io.out.buf_mut());
                }
                // The connection ends or suspends it (`reconsume.rs`).
                io.server_cancels.push((self.id, m.consumer_tag, reason));
            }
            Method::ChannelFlow(m) => {
                encode_method(
                    number,
                    &Method::ChannelFlowOk(ChannelFlowOk { active: m.active }),
                    io.out.buf_mut(),
                );
                io.events.push_back(Event::Flow {
                    channel: self.id,
                    active: m.active,
                });
            }
            _ => {}
        }
        Ok(Step::Continue)
    }

    /// Why the server cancels `consumer_tag`: a consumer timeout (RabbitMQ 4.3+) can only
    /// strike while the channel holds a delivery unacknowledged for at least the consumer's
    /// timeout (its `x-consumer-timeout` argument, else the configured broker default);
    /// anything else is the queue's end.
    fn cancel_reason(&self, consumer_tag: &ShortStr, io: &Io) -> CancelReason {
        let timeout = self
            .consumers
            .get(consumer_tag)
            .and_then(|c| c.spec.arguments.get("x-consumer-timeout"))
            .and_then(FieldValue::as_i64)
            .and_then(|ms| u64::try_from(ms).ok())
            .map_or(io.consumer_timeout, Duration::from_millis);
        match io.now.and_then(|now| self.acks.oldest_held(now)) {
            Some(held) if held >= timeout => CancelReason::AckTimeout { held },
            _ => CancelReason::QueueDeleted,
        }
    }

    /// A reply: it must answer the oldest pending call.
    fn on_reply(&mut self, method: Method, id: MethodId, io: &mut Io, topology: &mut Topology) -> Result<Step, Fault> {
        let number = self.id.number;
        let Some(call) = self.pending.front() else {
            let text = format!("{id} on channel {number}, but no call is pending");
            return Err(conn_fault(ReplyCode::COMMAND_INVALID, text, Some(id)));
        };
        if !call.responses().contains(&id) {
            let text = format!(
                "{id} on channel {number}, but the oldest pending call is {}",
                call.method
            );
            return Err(conn_fault(ReplyCode::COMMAND_INVALID, text, Some(id)));
        }
        if let Method::BasicGetOk(m) = method {
            // The call is answered once the content is complete.
            let no_ack = matches!(call.kind, CallKind::Get { no_ack: true });
            self.content = Some(Assembly::new(ContentKind::GetOk { method: m, no_ack }));
            return Ok(Step::Continue);
        }
        let Some(call) = self.pending.pop_front() else {
            return Ok(Step::Continue);
        };
        if let Some(record) = &call.record {
            topology.record(record, Some(&method));
        }
        match (&method, call.kind) {
            (Method::ChannelOpenOk(_), _) => {
                self.state = ChannelState::Open;
                if !call.internal {
                    io.events.push_back(Event::ChannelOpened(self.id));
                }
                return Ok(Step::Continue);
            }
            (Method::BasicConsumeOk(m), CallKind::Consume(mut spec)) => {
                spec.consumer_tag = m.consumer_tag.clone();
                let consumer = Consumer {
                    spec: *spec,
                    cancelling: false,
                    suspended: false,
                };
                self.consumers.insert(m.consumer_tag.clone(), consumer);
                self.hold.answered();
            }
            (Method::BasicCancelOk(m), kind) => {
                if let Some(c) = self.consumers.remove(&m.consumer_tag) {
                    io.unconsumed.push(c.spec.queue);
                }
                if kind == CallKind::Cancel {
                    self.hold.answered();
                }
            }
            _ => {}
        }
        if call.internal {
            io.internal.push_back((self.id, method));
        } else {
            io.events.push_back(Event::Reply {
                channel: self.id,
                method,
                content: None,
            });
        }
        Ok(Step::Continue)
    }

    fn on_confirm(&mut self, tag: u64, multiple: bool, ack: bool, id: MethodId, io: &mut Io) -> Result<Step, Fault> {
        let Mode::Confirm(confirms) = &mut self.mode else {
            let text = format!("{id} on channel {}, which is not in confirm mode", self.id.number);
            return Err(conn_fault(ReplyCode::COMMAND_INVALID, text, Some(id)));
        };
        let before = io.events.len();
        confirms
            .on_confirm(self.id, tag, multiple, ack, &mut io.events)
            .map_err(|text| Fault::Channel {
                code: ReplyCode::PRECONDITION_FAILED,
                text,
                method: Some(id),
            })?;
        // A publisher may wait for the next confirms once half its window is.
        let headroom = confirms.outstanding() / 2;
        for _ in before..io.events.len() {
            io.streamed.add(Some(headroom));
        }
        Ok(Step::Continue)
    }

    /// A message is complete.
    fn complete(
        &mut self,
        kind: ContentKind,
        properties: Properties,
        body: Bytes,
        generation: u32,
        io: &mut Io,
    ) -> Result<Step, Fault> {
        let channel = self.id;
        match kind {
            ContentKind::Deliver(m) => {
                let outstanding = self
                    .needs_ack(&m.consumer_tag)
                    .then(|| self.acks.push(m.delivery_tag, io.now));
                // The broker waits for acks once the prefetch is used up.
                let prefetch = usize::from(self.prefetch);
                let headroom = outstanding
                    .filter(|_| prefetch != 0)
                    .map(|outstanding| prefetch.saturating_sub(outstanding));
                io.streamed.add(headroom);
                let delivery = Delivery {
                    consumer_tag: m.consumer_tag,
                    delivery_tag: DeliveryTag {
                        generation,
                        channel,
                        tag: m.delivery_tag,
                    },
                    redelivered: m.redelivered,
                    exchange: m.exchange,
                    routing_key: m.routing_key,
                    properties,
                    body,
                    settler: (),
                };
                io.events.push_back(Event::Delivery { channel, delivery });
            }
            ContentKind::Return(m) => {
                let returned = Box::new(Returned {
                    reply_code: ReplyCode(m.reply_code),
                    reply_text: m.reply_text,
                    exchange: m.exchange,
                    routing_key: m.routing_key,
                    properties,
                    body,
                });
                match &mut self.mode {
                    Mode::Confirm(confirms) => confirms.on_return(channel, returned, &mut io.events),
                    _ => io.events.push_back(Event::Return { channel, returned }),
                }
            }
            ContentKind::GetOk { method, no_ack } => {
                self.pending.pop_front();
                if !no_ack {
                    self.acks.push(method.delivery_tag, io.now);
                }
                let content = Some(Box::new(Delivery {
                    delivery_tag: DeliveryTag {
                        generation,
                        channel,
                        tag: method.delivery_tag,
                    },
                    consumer_tag: ShortStr::EMPTY,
                    redelivered: method.redelivered,
                    exchange: method.exchange.clone(),
                    routing_key: method.routing_key.clone(),
                    properties,
                    body,
                    settler: (),
                }));
                io.events.push_back(Event::Reply {
                    channel,
                    method: Method::BasicGetOk(method),
                    content,
                });
            }
        }
        Ok(Step::Continue)
    }
}
