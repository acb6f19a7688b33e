//! [`Connection`]: state, commands from the application, output, timers.
//!
//! Inbound frames are handled in `inbound.rs` (open connection) and `handshake.rs`.

use std::collections::VecDeque;
use std::io;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use super::acks::Claimed;
use super::channel::{Channel, Mode};
use super::config::PRE_OPEN_FRAME_MAX;
use super::pacing::{Pause, ReadPacing, Streamed};
use super::reconsume::Retry;
use super::replay::{ChannelRecord, Replay};
use super::store::Store;
use super::topology::Topology;
use super::{ChannelId, Config, Event, Held, Tune};
use crate::error::{CancelReason, Error, Initiator};
use crate::wire::{
    ConnectionClose, FieldTable, Frame, Method, MethodId, Output, PROTOCOL_HEADER, ReplyCode, ShortStr, encode_method,
};

/// Where the connection is, named after what it waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum State {
    /// Protocol header sent; waiting for `connection.start`.
    AwaitStart,
    /// `start-ok` sent; waiting for `connection.secure` or `connection.tune`.
    AwaitSecureOrTune,
    /// `tune-ok` and `open` sent; waiting for `connection.open-ok`.
    AwaitOpenOk,
    /// Open: commands are accepted.
    Open,
    /// `connection.close` sent; waiting for `close-ok` (or the close timeout).
    AwaitCloseOk,
    /// Closed; see [`Connection::error`].
    Closed,
}

/// The internal state: one variant per expected message, owning what it needs.
#[derive(Debug)]
pub(super) enum Phase {
    AwaitStart,
    AwaitSecureOrTune {
        server_properties: FieldTable,
        secure_rounds: u8,
    },
    AwaitOpenOk {
        server_properties: FieldTable,
    },
    Open,
    AwaitCloseOk {
        deadline: Option<Instant>,
    },
    Closed,
}

/// What to do with inbound bytes after a framing error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Discard {
    /// Parse normally.
    Nothing,
    /// Skip this many bytes (the rest of an oversized frame), then parse again.
    Bytes(u64),
    /// The stream cannot be resynchronised: drop everything.
    All,
}

/// Output and events, borrowed together by channel handlers.
#[derive(Debug, Default)]
pub(super) struct Io {
    pub(super) out: Output,
    pub(super) events: VecDeque<Event>,
    /// The `basic.ack` that ends `out`, if it settles everything up to its tag on its
    /// channel: a later ack of the next outstanding delivery extends it (see
    /// [`Connection::ack`]).
    pub(super) last_ack: Option<LastAck>,
    /// Queued settles being written (see [`Connection::send_queued`]; kept for its
    /// capacity).
    pub(super) released: Vec<(Claimed, Option<bool>)>,
    /// What the channels hold back (see `hold.rs`).
    pub(super) held: Held,
    /// Replies to recovery's own calls, for the replay (see `replay.rs`).
    pub(super) internal: VecDeque<(ChannelId, Method)>,
    /// Queues whose consumer the application cancelled: an auto-delete one with no
    /// consumer left is gone from the broker, and from the topology.
    pub(super) unconsumed: Vec<ShortStr>,
    /// Consumers the server cancelled (`basic.cancel` answered), for the connection to
    /// end or suspend (see `reconsume.rs`).
    pub(super) server_cancels: Vec<(ChannelId, ShortStr, CancelReason)>,
    /// Deliveries and confirms since the last [`Connection::read_pause`].
    pub(super) streamed: Streamed,
    /// The time of the input being handled (when deliveries arrive, for their age).
    pub(super) now: Option<Instant>,
    /// [`Config::consumer_timeout`].
    pub(super) consumer_timeout: Duration,
    /// The server answers `basic.cancel-ok` to its own `basic.cancel` (RabbitMQ 4.3.7+
    /// announces `accept_consumer_cancel_ok`; older servers refuse it).
    pub(super) accept_cancel_ok: bool,
}

/// Where the last coalescible `basic.ack` frame sits in [`Io::out`].
#[derive(Debug, Clone, Copy)]
pub(super) struct LastAck {
    pub(super) channel: u16,
    /// The encoded length of `out` right after the frame: it is still the last frame
    /// only then.
    pub(super) end: usize,
}

/// An AMQP 0-9-1 client connection without IO: see the [module docs](super) for the
/// calling order.
#[derive(Debug)]
pub struct Connection {
    pub(super) config: Config,
    pub(super) phase: Phase,
    pub(super) error: Option<Error>,
    pub(super) io: Io,
    pub(super) tune: Option<Tune>,
    /// `frame_max` applied to inbound frames.
    pub(super) inbound_frame_max: u32,
    pub(super) channels: Store<Channel>,
    pub(super) next_epoch: u32,
    pub(super) blocked: bool,
    pub(super) heartbeat: Option<Duration>,
    pub(super) last_read: Instant,
    pub(super) last_write: Instant,
    pub(super) secret_updates: u32,
    pub(super) discard: Discard,
    /// When the handshake must be over (`Config::handshake_timeout`).
    pub(super) handshake_deadline: Option<Instant>,
    /// What the application declared and the broker accepted (see `topology.rs`).
    pub(super) topology: Topology,
    /// The recovery's restoring, while it runs (see `replay.rs`).
    pub(super) replay: Option<Replay>,
    /// What the open channels had when the connection failed, for a successor.
    pub(super) lost: Vec<ChannelRecord>,
    /// Read coalescing (see `pacing.rs`).
    pub(super) pacing: ReadPacing,
    /// What the server said in `connection.start` that it does not do.
    pub(super) denied: Denied,
    /// Consumers the server cancelled, on their way back (see `reconsume.rs`).
    pub(super) retries: Vec<Retry>,
}

/// Capabilities a server denies in its `connection.start` (`capabilities` set to false;
/// a capability it does not name is not denied). A command that needs one is refused
/// before it is sent: garagemq, for one, closes the connection with 540 for
/// `exchange.bind`, which it denies.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Denied {
    pub(super) exchange_bindings: bool,
    pub(super) confirms: bool,
}

impl Denied {
    pub(super) fn from_server_properties(properties: &FieldTable) -> Denied {
        let denied = |name: &str| match properties.get("capabilities") {
            Some(crate::wire::FieldValue::Table(caps)) => {
                matches!(caps.get(name), Some(crate::wire::FieldValue::Bool(false)))
            }
            _ => false,
        };
        Denied {
            exchange_bindings: denied("exchange_exchange_bindings"),
            confirms: denied("publisher_confirms"),
        }
    }

    /// The capability `method` needs that the server denies, if any.
    pub(super) fn check(&self, method: &Method) -> Result<(), Error> {
        let capability = match method {
            Method::ExchangeBind(_) | Method::ExchangeUnbind(_) if self.exchange_bindings => {
                "exchange_exchange_bindings"
            }
            Method::ConfirmSelect(_) if self.confirms => "publisher_confirms",
            _ => return Ok(()),
        };
        Err(Error::NotSupported { capability })
    }
}

/// A reply text cut to 255 bytes at a character boundary.
pub(super) fn short_text(text: &str) -> ShortStr {
    let mut end = text.len().min(255);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    ShortStr::try_from(&text[..end]).unwrap_or_default()
}

/// `None` for the 0/0 "no method" pair of a close.
pub(super) fn method_id(class_id: u16, method_id: u16) -> Option<MethodId> {
    (class_id != 0 || method_id != 0).then_some(MethodId::new(class_id, method_id))
}

impl Connection {
    /// A connection about to start: the protocol header is queued for
    /// [`poll_transmit`](Self::poll_transmit). An invalid `config` (see
    /// [`Config::validate`]) gives a connection that is already closed with the error.
    pub fn new(config: Config, now: Instant) -> Self {
        let mut io = Io {
            now: Some(now),
            consumer_timeout: config.consumer_timeout,
            ..Io::default()
        };
        io.out.buf_mut().extend_from_slice(&PROTOCOL_HEADER);
        let handshake_deadline = config.handshake_timeout.and_then(|t| now.checked_add(t));
        let pacing = ReadPacing::new(config.read_coalescing);
        let mut conn = Connection {
            config,
            phase: Phase::AwaitStart,
            error: None,
            io,
            tune: None,
            inbound_frame_max: PRE_OPEN_FRAME_MAX,
            channels: Store::default(),
            next_epoch: 0,
            blocked: false,
            heartbeat: None,
            last_read: now,
            last_write: now,
            secret_updates: 0,
            discard: Discard::Nothing,
            handshake_deadline,
            topology: Topology::default(),
            replay: None,
            lost: Vec::new(),
            pacing,
            denied: Denied::default(),
            retries: Vec::new(),
        };
        if let Err(e) = conn.config.validate() {
            conn.io.out.clear();
            conn.error = Some(e);
            conn.enter_closed();
        }
        conn
    }

    // ----- output ---------------------------------------------------------------

    /// Moves all pending output to the end of `out`. Returns true if it wrote anything
    /// (and then records `now` as the last write, for heartbeats).
    /// Large message bodies are copied in: [`poll_transmit_output`](Self::poll_transmit_output)
    /// hands them over by reference instead.
    pub fn poll_transmit(&mut self, now: Instant, out: &mut BytesMut) -> bool {
        if self.io.out.is_empty() {
            return false;
        }
        if out.is_empty() && !self.io.out.has_shared() {
            std::mem::swap(out, self.io.out.buf_mut());
        } else {
            self.io.out.copy_into(out);
        }
        self.io.last_ack = None;
        self.last_write = now;
        true
    }

    /// Moves all pending output to the end of `out`, large message bodies by reference
    /// (the application's `Bytes`, sliced into body frames): written with a vectored
    /// write, they are never copied. Returns true if it wrote anything (and then records
    /// `now` as the last write, for heartbeats).
    pub fn poll_transmit_output(&mut self, now: Instant, out: &mut Output) -> bool {
        if self.io.out.is_empty() {
            return false;
        }
        out.append(&mut self.io.out);
        self.io.last_ack = None;
        self.last_write = now;
        true
    }

    /// After a read of `bytes` fed to [`handle_input`](Self::handle_input): the pause to
    /// leave the socket alone for, if deliveries or confirms stream in and nothing but
    /// the stream can be held up by it (see `pacing.rs`). Acks and commands still go out
    /// during a pause.
    pub fn read_pause(&mut self, now: Instant, bytes: usize) -> Option<Pause> {
        let streamed = std::mem::take(&mut self.io.streamed);
        if streamed.count == 0 {
            return None;
        }
        let awaited = self.awaits_reply();
        self.pacing.after_stream(now, bytes, streamed, awaited)
    }

    /// Bytes waiting for [`poll_transmit`](Self::poll_transmit), bodies included.
    pub fn pending_transmit(&self) -> usize {
        self.io.out.len()
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.io.events.pop_front()
    }

    // ----- time -----------------------------------------------------------------

    /// The earliest instant at which [`handle_timeout`](Self::handle_timeout) has work:
    /// giving up on the handshake, sending a heartbeat, declaring the server dead,
    /// giving up on `close-ok`, or probing the queue of a consumer the server cancelled
    /// (`reconsume.rs`). `None` when no timer runs.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let close = match self.phase {
            Phase::Closed => return None,
            Phase::AwaitCloseOk { deadline } => deadline,
            Phase::Open => self.reconsume_deadline(),
            Phase::AwaitStart | Phase::AwaitSecureOrTune { .. } | Phase::AwaitOpenOk { .. } => self.handshake_deadline,
        };
        let (send, dead) = match self.heartbeat {
            Some(h) => {
                // While output is pending a write is imminent: no heartbeat needed.
                let send = if self.io.out.is_empty() {
                    self.last_write.checked_add(h / 2)
                } else {
                    None
                };
                (send, self.last_read.checked_add(h.saturating_mul(2)))
            }
            None => (None, None),
        };
        [close, send, dead].into_iter().flatten().min()
    }

    /// Runs the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.phase {
            Phase::Closed => return,
            Phase::AwaitStart | Phase::AwaitSecureOrTune { .. } | Phase::AwaitOpenOk { .. }
                if self.handshake_deadline.is_some_and(|d| now >= d) =>
            {
                tracing::debug!(state = ?self.state(), "handshake timed out");
                self.lost(Error::Timeout { operation: "connect" });
                return;
            }
            Phase::AwaitCloseOk {
                deadline: Some(deadline),
            } if now >= deadline => {
                tracing::debug!("no close-ok before the close timeout");
                self.enter_closed();
                return;
            }
            Phase::Open => self.reconsume_timeout(now),
            _ => {}
        }
        let Some(h) = self.heartbeat else { return };
        let dead_at = self.last_read.checked_add(h.saturating_mul(2));
        if dead_at.is_some_and(|t| now >= t) {
            tracing::debug!(heartbeat = h.as_secs(), "heartbeat timeout");
            self.lost(Error::ConnectionLost {
                reason: format!(
                    "heartbeat timeout: nothing received for {} s",
                    h.saturating_mul(2).as_secs()
                ),
                source: None,
            });
            return;
        }
        let send_at = self.last_write.checked_add(h / 2);
        if self.io.out.is_empty() && send_at.is_some_and(|t| now >= t) {
            Frame::Heartbeat.encode(self.io.out.buf_mut());
        }
    }

    // ----- transport --------------------------------------------------------------

    /// The server closed the stream. During the handshake right after `start-ok` this
    /// is how brokers without `authentication_failure_close` refuse credentials:
    /// [`Error::Authentication`]. A broker with it refuses them with `connection.close`
    /// instead, so from it (RabbitMQ) such an end is a loss, as any other:
    /// [`Error::ConnectionLost`], unless a close was already under way (its error stays).
    pub fn handle_eof(&mut self) {
        let err = match &self.phase {
            Phase::Closed => return,
            Phase::AwaitCloseOk { .. } => {
                self.enter_closed();
                return;
            }
            Phase::AwaitStart => Error::ConnectionLost {
                reason: "the server closed the connection before connection.start".into(),
                source: None,
            },
            Phase::AwaitSecureOrTune { server_properties, .. }
                if super::handshake::server_capability(server_properties, "authentication_failure_close") =>
            {
                Error::ConnectionLost {
                    reason: "the server closed the connection during the handshake".into(),
                    source: None,
                }
            }
            Phase::AwaitSecureOrTune { .. } => Error::Authentication {
                mechanism: self.config.sasl.mechanism().into(),
                text: "the server closed the connection after connection.start-ok (credentials refused)".into(),
            },
            _ => Error::ConnectionLost {
                reason: "the server closed the connection".into(),
                source: None,
            },
        };
        self.lost(err);
    }

    /// Reading or writing failed: [`Error::ConnectionLost`] with the IO error as source.
    pub fn handle_io_error(&mut self, error: io::Error) {
        match self.phase {
            Phase::Closed => {}
            Phase::AwaitCloseOk { .. } => self.enter_closed(),
            _ => self.lost(Error::connection_lost("transport error", Some(error))),
        }
    }

    // ----- inspection -------------------------------------------------------------

    /// Where the connection is.
    pub fn state(&self) -> State {
        match self.phase {
            Phase::AwaitStart => State::AwaitStart,
            Phase::AwaitSecureOrTune { .. } => State::AwaitSecureOrTune,
            Phase::AwaitOpenOk { .. } => State::AwaitOpenOk,
            Phase::Open => State::Open,
            Phase::AwaitCloseOk { .. } => State::AwaitCloseOk,
            Phase::Closed => State::Closed,
        }
    }

    /// True once closed: after the last [`poll_transmit`](Self::poll_transmit) the
    /// transport can be dropped.
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// The error that ended (or is ending) the connection; every command returns it.
    pub fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }

    /// The negotiated limits, once `connection.tune` was answered.
    pub fn negotiated(&self) -> Option<Tune> {
        self.tune
    }

    /// True between `connection.blocked` and `connection.unblocked`; publishes wait
    /// meanwhile (see [`held`](Self::held)).
    pub fn is_blocked(&self) -> bool {
        self.blocked
    }

    /// The connection generation from [`Config::generation`].
    pub fn generation(&self) -> u32 {
        self.config.generation
    }

    /// The channel `id` names, if it is still this connection's (same epoch).
    fn channel(&self, id: ChannelId) -> Option<&Channel> {
        self.channels.get(id)
    }

    /// True if `channel` names a channel of this connection that is opening or open.
    pub fn is_channel_usable(&self, channel: ChannelId) -> bool {
        self.channel(channel).is_some_and(|c| c.state.is_usable())
    }

    /// True while a reply is awaited: a synchronous call on any channel, a secret update,
    /// the handshake or a close. (Publishes awaiting confirms: [`unconfirmed`](Self::unconfirmed).)
    pub fn awaits_reply(&self) -> bool {
        !matches!(self.phase, Phase::Open)
            || self.secret_updates > 0
            || self.channels.iter().any(|c| !c.pending.is_empty())
    }

    /// Commands accepted but held back, over all channels: calls behind a
    /// `basic.consume` or `basic.cancel` that waits for its reply (RabbitMQ may answer it
    /// after a later call), publishes while the server blocks publishing, and whatever
    /// follows them on their channel. They go out, in order, when they may.
    pub fn held(&self) -> Held {
        self.io.held
    }

    /// Publishes on `channel` the server has not confirmed yet (0 outside confirm mode).
    pub fn unconfirmed(&self, channel: ChannelId) -> usize {
        match self.channel(channel).map(|c| &c.mode) {
            Some(Mode::Confirm(confirms)) => confirms.outstanding(),
            _ => 0,
        }
    }

    /// Deliveries on `channel` the application has not settled yet.
    pub fn unacked(&self, channel: ChannelId) -> usize {
        self.channel(channel).map_or(0, |c| c.acks.len())
    }

    /// True if `channel` is in confirm mode.
    pub fn is_confirm_mode(&self, channel: ChannelId) -> bool {
        self.channel(channel)
            .is_some_and(|c| matches!(c.mode, Mode::Confirm(_)))
    }

    // ----- failure paths ----------------------------------------------------------

    pub(super) fn send_close(&mut self, code: ReplyCode, reply_text: ShortStr, method: Option<MethodId>) {
        let (class_id, method_id) = method.map_or((0, 0), |m| (m.class_id, m.method_id));
        let close = ConnectionClose {
            reply_code: code.0,
            reply_text,
            class_id,
            method_id,
        };
        encode_method(0, &Method::ConnectionClose(close), self.io.out.buf_mut());
    }

    /// Poisons the connection with `error` (the first error wins) and fails every
    /// channel with it.
    pub(super) fn fail_all(&mut self, error: Error) {
        let error = self.error.get_or_insert(error).clone();
        self.io.held = Held::default();
        // A successor restores what was open; during a replay, all it set out to restore.
        self.lost = match self.replay.take() {
            Some(replay) => replay.channels,
            None => self.channels.iter().filter_map(Channel::record).collect(),
        };
        for ch in self.channels.drain() {
            if !ch.internal {
                self.io.events.push_back(Event::ChannelClosed {
                    channel: ch.id,
                    error: error.clone(),
                });
            }
        }
    }

    pub(super) fn enter_await_close_ok(&mut self, now: Instant) {
        self.phase = Phase::AwaitCloseOk {
            deadline: now.checked_add(self.config.close_timeout),
        };
    }

    /// Terminal: emits [`Event::ConnectionClosed`].
    pub(super) fn enter_closed(&mut self) {
        if matches!(self.phase, Phase::Closed) {
            return;
        }
        self.phase = Phase::Closed;
        self.heartbeat = None;
        self.blocked = false;
        let error = self.error.get_or_insert(Error::Closed).clone();
        self.io.events.push_back(Event::ConnectionClosed(error));
    }

    /// The transport is gone: no close handshake.
    pub(super) fn lost(&mut self, error: Error) {
        if matches!(self.phase, Phase::Closed) {
            return;
        }
        self.fail_all(error);
        self.enter_closed();
    }

    /// The server broke the protocol: close the connection with `code` (after the
    /// handshake), fail everything with the same error.
    #[cold]
    pub(super) fn connection_error(&mut self, code: ReplyCode, text: String, method: Option<MethodId>, now: Instant) {
        tracing::debug!(code = code.0, %text, "protocol error, closing the connection");
        match self.phase {
            Phase::Closed => {}
            Phase::AwaitCloseOk { .. } => self.enter_closed(),
            Phase::AwaitStart | Phase::AwaitSecureOrTune { .. } => {
                self.lost(Error::Handshake {
                    reason: format!("{code}: {text}"),
                });
            }
            Phase::AwaitOpenOk { .. } | Phase::Open => {
                self.send_close(code, short_text(&text), method);
                self.fail_all(Error::ConnectionClosed {
                    by: Initiator::Library,
                    code,
                    text,
                    method,
                });
                self.enter_await_close_ok(now);
            }
        }
    }
}
