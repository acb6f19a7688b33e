//! [`Connection`]: state, commands from the application, output, timers.
//!
//! Inbound frames are handled in `inbound.rs` (open connection) and `handshake.rs`.

use std::collections::VecDeque;
use std::io;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::channel::{CallKind, Channel, ChannelState, Consumer, Mode, PendingCall};
use super::hold::Kind;
use super::replay::{ChannelRecord, Replay};
use super::store::Store;
use super::topology::{Topology, is_topology};
use super::{ChannelId, Config, DeliveryTag, Event, Held, Tune};
use crate::error::{Error, Initiator};
use crate::wire::{
    ACK_FRAME_LEN, BasicAck, BasicNack, BasicProperties, BasicPublish, BasicReject, ChannelClose, ChannelOpen,
    ConnectionClose, ConnectionUpdateSecret, FRAME_MIN_SIZE, FieldTable, Frame, Method, MethodId, PROTOCOL_HEADER,
    ReplyCode, ShortStr, encode_content, encode_method, encode_publish, extend_ack,
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
    pub(super) out: BytesMut,
    pub(super) events: VecDeque<Event>,
    /// The `basic.ack` that ends `out`, if it settles everything up to its tag on its
    /// channel: a later ack of the next outstanding delivery extends it (see
    /// [`Connection::ack`]).
    pub(super) last_ack: Option<LastAck>,
    /// What the channels hold back (see `hold.rs`).
    pub(super) held: Held,
    /// Replies to recovery's own calls, for the replay (see `replay.rs`).
    pub(super) internal: VecDeque<(ChannelId, Method)>,
    /// Queues whose consumer the application cancelled: an auto-delete one with no
    /// consumer left is gone from the broker, and from the topology.
    pub(super) unconsumed: Vec<ShortStr>,
}

/// Where the last coalescible `basic.ack` frame sits in [`Io::out`].
#[derive(Debug, Clone, Copy)]
pub(super) struct LastAck {
    channel: u16,
    /// `out.len()` right after the frame: it is still the last frame only then.
    end: usize,
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
        let mut io = Io::default();
        io.out.extend_from_slice(&PROTOCOL_HEADER);
        let mut conn = Connection {
            config,
            phase: Phase::AwaitStart,
            error: None,
            io,
            tune: None,
            inbound_frame_max: FRAME_MIN_SIZE,
            channels: Store::default(),
            next_epoch: 0,
            blocked: false,
            heartbeat: None,
            last_read: now,
            last_write: now,
            secret_updates: 0,
            discard: Discard::Nothing,
            handshake_deadline: None,
            topology: Topology::default(),
            replay: None,
            lost: Vec::new(),
        };
        conn.handshake_deadline = conn.config.handshake_timeout.and_then(|t| now.checked_add(t));
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
    pub fn poll_transmit(&mut self, now: Instant, out: &mut BytesMut) -> bool {
        if self.io.out.is_empty() {
            return false;
        }
        if out.is_empty() {
            std::mem::swap(out, &mut self.io.out);
        } else {
            out.extend_from_slice(&self.io.out);
            self.io.out.clear();
        }
        self.io.last_ack = None;
        self.last_write = now;
        true
    }

    /// Bytes waiting for [`poll_transmit`](Self::poll_transmit).
    pub fn pending_transmit(&self) -> usize {
        self.io.out.len()
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.io.events.pop_front()
    }

    // ----- time -----------------------------------------------------------------

    /// The earliest instant at which [`handle_timeout`](Self::handle_timeout) has work:
    /// giving up on the handshake, sending a heartbeat, declaring the server dead, or
    /// giving up on `close-ok`. `None` when no timer runs.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let close = match self.phase {
            Phase::Closed => return None,
            Phase::AwaitCloseOk { deadline } => deadline,
            Phase::Open => None,
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
            Frame::Heartbeat.encode(&mut self.io.out);
        }
    }

    // ----- transport --------------------------------------------------------------

    /// The server closed the stream. During the handshake right after `start-ok` this
    /// is how brokers without `authentication_failure_close` refuse credentials:
    /// [`Error::Authentication`]. Otherwise [`Error::ConnectionLost`], unless a close
    /// was already under way (its error stays).
    pub fn handle_eof(&mut self) {
        let err = match self.phase {
            Phase::Closed => return,
            Phase::AwaitCloseOk { .. } => {
                self.enter_closed();
                return;
            }
            Phase::AwaitStart => Error::ConnectionLost {
                reason: "the server closed the connection before connection.start".into(),
                source: None,
            },
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
        self.channel(channel).map_or(0, |c| c.unacked.len())
    }

    /// True if `channel` is in confirm mode.
    pub fn is_confirm_mode(&self, channel: ChannelId) -> bool {
        self.channel(channel)
            .is_some_and(|c| matches!(c.mode, Mode::Confirm(_)))
    }

    // ----- commands ---------------------------------------------------------------

    /// `Ok` when the connection is open; otherwise the error to return.
    fn check_open(&self) -> Result<(), Error> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        match self.phase {
            Phase::Open => Ok(()),
            Phase::AwaitCloseOk { .. } | Phase::Closed => Err(Error::Closed),
            _ => Err(Error::NotConnected),
        }
    }

    /// The usable channel `id`, or why not.
    fn usable_channel(&mut self, id: ChannelId) -> Result<&mut Channel, Error> {
        self.check_open()?;
        match self.channels.get_mut(id) {
            Some(ch) => match &ch.state {
                ChannelState::Opening | ChannelState::Open => Ok(ch),
                ChannelState::Closing { own, server } => Err(server.as_ref().unwrap_or(own).clone()),
            },
            _ => Err(Error::ChannelNotOpen { channel: id.number }),
        }
    }

    /// Opens a channel on the lowest free number: sends `channel.open`;
    /// [`Event::ChannelOpened`] follows on `open-ok`. The channel accepts calls and
    /// publishes right away (they are pipelined behind the open).
    pub fn open_channel(&mut self) -> Result<ChannelId, Error> {
        self.open(false)
    }

    /// Opens a channel; `internal`: recovery's own, whose events are not reported.
    pub(super) fn open(&mut self, internal: bool) -> Result<ChannelId, Error> {
        self.check_open()?;
        let max = self.tune.map_or(u16::MAX, |t| t.channel_max);
        let number = self.channels.free_number(max).ok_or(Error::ChannelLimit { max })?;
        let id = ChannelId {
            number,
            epoch: self.next_epoch,
        };
        self.next_epoch = self.next_epoch.wrapping_add(1);
        let mut channel = Channel::new(id);
        channel.internal = internal;
        let mut open = PendingCall::new(ChannelOpen::ID, CallKind::Open);
        open.internal = internal;
        channel.pending.push_back(open);
        self.channels.insert(channel);
        encode_method(number, &Method::ChannelOpen(ChannelOpen {}), &mut self.io.out);
        tracing::trace!(channel = number, "channel.open");
        Ok(id)
    }

    /// Opens a channel with exactly the id `id` (number and epoch), for connection
    /// recovery: the channels of the previous connection come back under the ids their
    /// handles hold. Sends `channel.open`; [`Event::ChannelOpened`] follows on `open-ok`.
    /// Later channels get epochs above `id`'s. Refused, nothing sent: a number in use or
    /// above the negotiated `channel_max` ([`Error::ChannelLimit`]).
    pub fn reopen_channel(&mut self, id: ChannelId) -> Result<(), Error> {
        self.reopen(id, false)
    }

    /// Reopens channel `id`; `internal`: recovery's replay, which gets the reply.
    pub(super) fn reopen(&mut self, id: ChannelId, internal: bool) -> Result<(), Error> {
        self.check_open()?;
        let max = self.tune.map_or(u16::MAX, |t| t.channel_max);
        if id.number == 0 || id.number > max {
            return Err(Error::ChannelLimit { max });
        }
        if self.channels.has_number(id.number) {
            return Err(Error::NotAllowed {
                reason: "the channel number is in use",
            });
        }
        self.resume_epochs(id.epoch.wrapping_add(1));
        let mut channel = Channel::new(id);
        let mut open = PendingCall::new(ChannelOpen::ID, CallKind::Open);
        open.internal = internal;
        channel.pending.push_back(open);
        self.channels.insert(channel);
        encode_method(id.number, &Method::ChannelOpen(ChannelOpen {}), &mut self.io.out);
        tracing::trace!(channel = id.number, epoch = id.epoch, "channel.open (reopen)");
        Ok(())
    }

    /// The epoch the next [`open_channel`](Self::open_channel) will use.
    pub fn next_epoch(&self) -> u32 {
        self.next_epoch
    }

    /// Makes later channels use epochs from `next` on (when it is above the current
    /// one): a recovered connection continues its predecessor's epochs, so ids held from
    /// channels closed before the recovery never name a new channel.
    pub fn resume_epochs(&mut self, next: u32) {
        self.next_epoch = self.next_epoch.max(next);
    }

    /// Sends a client method on `channel`. Methods that expect a reply (synchronous
    /// and without `no_wait`) are answered, in call order, by [`Event::Reply`].
    ///
    /// Refused with a typed error, nothing sent: connection-class methods (use
    /// [`close`](Self::close), [`update_secret`](Self::update_secret)), `channel.open`
    /// and `channel.close` (use [`open_channel`](Self::open_channel),
    /// [`close_channel`](Self::close_channel)), `basic.publish` (use
    /// [`publish`](Self::publish)), `basic.ack`/`nack`/`reject` (use [`ack`](Self::ack)...),
    /// methods only a server sends, `confirm.select` on a transactional channel and
    /// `tx.select` on a confirm-mode channel, `basic.consume` with `no_wait` and an
    /// empty consumer tag, a method whose frame would exceed `frame_max` (e.g. huge
    /// argument tables).
    ///
    /// State kept: `confirm.select` starts numbering publishes, `basic.consume` records
    /// whether its deliveries need acks, `basic.recover` forgets outstanding deliveries.
    pub fn call(&mut self, channel: ChannelId, method: Method) -> Result<(), Error> {
        self.call_inner(channel, method, false)
    }

    /// [`call`](Self::call); `internal`: made by recovery's replay, which gets the reply,
    /// and not recorded in the topology (it restores what is recorded).
    pub(super) fn call_inner(&mut self, channel: ChannelId, method: Method, internal: bool) -> Result<(), Error> {
        let id = method.id();
        let info = method.info();
        if !info.sent_by_client {
            return Err(Error::InvalidArgument(format!("{id} is sent by servers only")));
        }
        match &method {
            Method::ChannelOpen(_) => return Err(invalid(id, "open_channel")),
            Method::ChannelClose(_) | Method::ChannelCloseOk(_) => return Err(invalid(id, "close_channel")),
            Method::ChannelFlowOk(_) => return Err(invalid(id, "nothing: warren answers channel.flow itself")),
            Method::BasicPublish(_) => return Err(invalid(id, "publish")),
            Method::BasicAck(_) | Method::BasicNack(_) | Method::BasicReject(_) => {
                return Err(invalid(id, "ack, nack or reject"));
            }
            Method::BasicCancelOk(_) => return Err(invalid(id, "nothing: warren answers basic.cancel itself")),
            _ if id.class_id == 10 => return Err(invalid(id, "close or update_secret")),
            Method::BasicConsume(m) if m.no_wait && m.consumer_tag.is_empty() => {
                return Err(Error::InvalidArgument(
                    "basic.consume with no_wait needs a consumer tag (the server names it only in consume-ok)".into(),
                ));
            }
            _ => {}
        }
        let number = channel.number;
        {
            let ch = self.usable_channel(channel)?;
            match (&method, &ch.mode) {
                (Method::ConfirmSelect(_), Mode::Tx) => {
                    return Err(Error::NotAllowed {
                        reason: "confirm.select on a transactional channel",
                    });
                }
                (Method::TxSelect(_), Mode::Confirm(_)) => {
                    return Err(Error::NotAllowed {
                        reason: "tx.select on a channel in confirm mode",
                    });
                }
                _ => {}
            }
        }
        let mark = self.io.out.len();
        encode_method(number, &method, &mut self.io.out);
        self.check_frame_size(mark, mark, id)?;
        let Some(ch) = self.channels.get_mut(channel) else {
            return Ok(());
        };
        let mut kind = CallKind::Plain;
        match &method {
            Method::ConfirmSelect(_) if matches!(ch.mode, Mode::Normal) => ch.mode = Mode::confirm(),
            Method::TxSelect(_) => ch.mode = Mode::Tx,
            Method::BasicQos(q) => {
                ch.qos.retain(|old| old.global != q.global);
                ch.qos.push(q.clone());
            }
            Method::BasicConsume(m) => {
                if m.no_wait {
                    let consumer = Consumer {
                        spec: m.clone(),
                        cancelling: false,
                    };
                    ch.consumers.insert(m.consumer_tag.clone(), consumer);
                } else {
                    kind = CallKind::Consume(Box::new(m.clone()));
                }
            }
            // A no_wait cancel keeps the consumer's ack mode: deliveries already in
            // flight may still arrive for it. The entry goes with the channel.
            Method::BasicCancel(m) => {
                if let Some(c) = ch.consumers.get_mut(&m.consumer_tag) {
                    c.cancelling = true;
                }
                if !m.no_wait {
                    kind = CallKind::Cancel;
                }
            }
            Method::BasicGet(m) => kind = CallKind::Get { no_ack: m.no_ack },
            Method::BasicRecover(_) | Method::BasicRecoverAsync(_) => ch.unacked.clear(),
            _ => {}
        }
        let barrier = matches!(kind, CallKind::Consume(_) | CallKind::Cancel);
        let record = !internal && is_topology(&method);
        if method.expects_reply() {
            let mut call = PendingCall::new(id, kind);
            call.internal = internal;
            call.record = record.then(|| Box::new(method.clone()));
            ch.pending.push_back(call);
        } else if record {
            self.topology.record(&method, None);
        }
        ch.hold.place(
            &mut self.io.out,
            mark,
            Kind::Call { barrier },
            self.blocked,
            &mut self.io.held,
        );
        tracing::trace!(channel = number, method = %id, "call");
        Ok(())
    }

    /// Checks that the frame encoded at `frame_at` fits the negotiated `frame_max`;
    /// if not, removes everything from `mark` on and refuses (the server would close
    /// the connection with 501 FRAME_ERROR).
    fn check_frame_size(&mut self, mark: usize, frame_at: usize, id: MethodId) -> Result<(), Error> {
        let max = self.tune.map_or(FRAME_MIN_SIZE, |t| t.frame_max);
        let size = match self.io.out.get(frame_at + 3..frame_at + 7) {
            Some(&[a, b, c, d]) => u64::from(u32::from_be_bytes([a, b, c, d])) + 8,
            _ => 0,
        };
        if max == 0 || size <= u64::from(max) {
            return Ok(());
        }
        self.io.out.truncate(mark);
        Err(Error::InvalidArgument(format!(
            "{id} needs a frame of {size} bytes, over the negotiated frame_max {max}"
        )))
    }

    /// Publishes a message: `basic.publish`, a content header and the body split by
    /// the negotiated `frame_max`. On a confirm-mode channel returns the publish's
    /// sequence number (1, 2, ...), resolved later by [`Event::Confirm`].
    ///
    /// Refused, nothing sent: `immediate` (RabbitMQ closes the connection with 540 for
    /// it), a channel that is not usable, properties too large for one frame.
    /// Blocking (`connection.blocked`) is the driver's business.
    pub fn publish(
        &mut self,
        channel: ChannelId,
        args: &BasicPublish,
        properties: &BasicProperties,
        body: &Bytes,
    ) -> Result<Option<u64>, Error> {
        if args.immediate {
            return Err(Error::InvalidArgument(
                "basic.publish with immediate is not supported by RabbitMQ".into(),
            ));
        }
        let frame_max = self.tune.map_or(FRAME_MIN_SIZE, |t| t.frame_max);
        let number = channel.number;
        self.usable_channel(channel)?;
        let mark = self.io.out.len();
        encode_publish(number, args, &mut self.io.out);
        let header_at = self.io.out.len();
        encode_content(number, properties, body, frame_max, &mut self.io.out);
        // The properties (headers) may not fit in one frame.
        self.check_frame_size(mark, header_at, BasicPublish::ID)?;
        let Some(ch) = self.channels.get_mut(channel) else {
            return Ok(None);
        };
        let seq = match &mut ch.mode {
            Mode::Confirm(c) => match c.on_publish(args, body) {
                Ok(seq) => Some(seq),
                Err(e) => {
                    self.io.out.truncate(mark);
                    return Err(e);
                }
            },
            _ => None,
        };
        ch.hold
            .place(&mut self.io.out, mark, Kind::Publish, self.blocked, &mut self.io.held);
        Ok(seq)
    }

    /// Acknowledges a delivery (`multiple`: and every earlier outstanding one on its
    /// channel). Refused, nothing sent: [`Error::StaleDelivery`] for a tag from another
    /// connection generation or a channel closed since; [`Error::UnknownDeliveryTag`]
    /// for a tag not outstanding (acked twice, no-ack consumer).
    ///
    /// Acks of the oldest outstanding delivery coalesce: when the output still ends with
    /// an ack on the same channel that settled everything up to its tag, that frame
    /// becomes `basic.ack(tag, multiple)` instead of a new frame following it. The
    /// broker sees the same settles, in the same order, in fewer frames.
    pub fn ack(&mut self, tag: DeliveryTag, multiple: bool) -> Result<(), Error> {
        let through = self.settle(tag, multiple)?;
        let channel = tag.channel.number;
        if through && self.extend_last_ack(channel, tag.tag) {
            return Ok(());
        }
        let method = Method::BasicAck(BasicAck {
            delivery_tag: tag.tag,
            multiple,
        });
        encode_method(channel, &method, &mut self.io.out);
        self.io.last_ack = through.then_some(LastAck {
            channel,
            end: self.io.out.len(),
        });
        Ok(())
    }

    /// Turns the ack frame that ends the output into `basic.ack(tag, multiple)`, if it
    /// is an ack on `channel` that settled everything up to a lower tag.
    fn extend_last_ack(&mut self, channel: u16, tag: u64) -> bool {
        let Some(last) = self.io.last_ack else { return false };
        let out = &mut self.io.out[..];
        if last.channel != channel || last.end != out.len() || last.end < ACK_FRAME_LEN {
            return false;
        }
        extend_ack(&mut out[last.end - ACK_FRAME_LEN..], channel, tag)
    }

    /// Negatively acknowledges a delivery (`basic.nack`); checks as for [`ack`](Self::ack).
    pub fn nack(&mut self, tag: DeliveryTag, multiple: bool, requeue: bool) -> Result<(), Error> {
        self.settle(tag, multiple)?;
        let method = Method::BasicNack(BasicNack {
            delivery_tag: tag.tag,
            multiple,
            requeue,
        });
        encode_method(tag.channel.number, &method, &mut self.io.out);
        Ok(())
    }

    /// Rejects one delivery (`basic.reject`); checks as for [`ack`](Self::ack).
    pub fn reject(&mut self, tag: DeliveryTag, requeue: bool) -> Result<(), Error> {
        self.settle(tag, false)?;
        let method = Method::BasicReject(BasicReject {
            delivery_tag: tag.tag,
            requeue,
        });
        encode_method(tag.channel.number, &method, &mut self.io.out);
        Ok(())
    }

    /// Checks a tag and forgets the deliveries it settles; true when nothing at or below
    /// it is outstanding any more.
    fn settle(&mut self, tag: DeliveryTag, multiple: bool) -> Result<bool, Error> {
        self.check_open()?;
        let stale = Error::StaleDelivery { tag: tag.tag };
        if tag.generation != self.config.generation {
            return Err(stale);
        }
        let ch = match self.channels.get_mut(tag.channel) {
            Some(ch) if matches!(ch.state, ChannelState::Open) => ch,
            _ => return Err(stale),
        };
        ch.unacked
            .settle(tag.tag, multiple)
            .ok_or(Error::UnknownDeliveryTag { tag: tag.tag })
    }

    /// Closes a channel: sends `channel.close`; [`Event::ChannelClosed`] follows on
    /// `close-ok`, failing the calls still pending. Until then inbound frames for the
    /// channel are dropped, commands on it return its close error, and its number stays
    /// taken.
    pub fn close_channel(&mut self, channel: ChannelId, code: ReplyCode, text: &str) -> Result<(), Error> {
        let reply_text = ShortStr::try_from(text).map_err(|e| Error::InvalidArgument(format!("close text: {e}")))?;
        self.usable_channel(channel)?;
        let error = Error::ChannelClosed {
            by: Initiator::Application,
            code,
            text: text.into(),
            method: None,
        };
        self.begin_channel_close(channel.number, code, reply_text, None, error);
        Ok(())
    }

    /// Sends `channel.close` for a usable channel and waits for `close-ok`.
    pub(super) fn begin_channel_close(
        &mut self,
        number: u16,
        code: ReplyCode,
        reply_text: ShortStr,
        method: Option<MethodId>,
        error: Error,
    ) {
        let Some(ch) = self.channels.by_number_mut(number) else {
            return;
        };
        if !ch.state.is_usable() {
            return;
        }
        let (class_id, method_id) = method.map_or((0, 0), |m| (m.class_id, m.method_id));
        let close = ChannelClose {
            reply_code: code.0,
            reply_text,
            class_id,
            method_id,
        };
        // What the channel still holds would reach a closing channel: it never goes out.
        ch.hold.discard(&mut self.io.held);
        encode_method(number, &Method::ChannelClose(close), &mut self.io.out);
        ch.content = None;
        ch.state = ChannelState::Closing {
            own: error,
            server: None,
        };
    }

    /// Closes the connection gracefully: sends `connection.close`, fails every channel
    /// with `Error::ConnectionClosed { by: Client, code, text }` (their
    /// [`Event::ChannelClosed`] come now) and waits for `close-ok`, at most
    /// `close_timeout`; then [`Event::ConnectionClosed`] with the same error. During
    /// the handshake, before `tune-ok`, the connection closes at once without a close
    /// handshake.
    pub fn close(&mut self, now: Instant, code: ReplyCode, text: &str) -> Result<(), Error> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let reply_text = ShortStr::try_from(text).map_err(|e| Error::InvalidArgument(format!("close text: {e}")))?;
        let error = Error::ConnectionClosed {
            by: Initiator::Application,
            code,
            text: text.into(),
            method: None,
        };
        match self.phase {
            Phase::Closed | Phase::AwaitCloseOk { .. } => return Err(Error::Closed),
            Phase::AwaitStart | Phase::AwaitSecureOrTune { .. } => {
                self.fail_all(error);
                self.enter_closed();
            }
            Phase::AwaitOpenOk { .. } | Phase::Open => {
                self.send_close(code, reply_text, None);
                self.fail_all(error);
                self.enter_await_close_ok(now);
            }
        }
        Ok(())
    }

    /// Replaces the login secret (`connection.update-secret`, e.g. a refreshed OAuth 2
    /// token); [`Event::SecretUpdated`] follows on `update-secret-ok`.
    pub fn update_secret(&mut self, secret: Bytes, reason: &str) -> Result<(), Error> {
        self.check_open()?;
        let reason = ShortStr::try_from(reason).map_err(|e| Error::InvalidArgument(format!("reason: {e}")))?;
        let method = Method::ConnectionUpdateSecret(ConnectionUpdateSecret {
            new_secret: secret,
            reason,
        });
        let mark = self.io.out.len();
        encode_method(0, &method, &mut self.io.out);
        self.check_frame_size(mark, mark, ConnectionUpdateSecret::ID)?;
        self.secret_updates = self.secret_updates.saturating_add(1);
        Ok(())
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
        encode_method(0, &Method::ConnectionClose(close), &mut self.io.out);
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

fn invalid(id: MethodId, instead: &str) -> Error {
    Error::InvalidArgument(format!("{id} cannot be sent with call: use {instead}"))
}
