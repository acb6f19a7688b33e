//! Commands from the application: open, call, publish, settle and close. Each checks
//! the state first and returns a typed [`Error`] instead of sending anything illegal.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::acks::{Claimed, Outstanding, Settle};
use super::channel::{CallKind, Channel, ChannelState, Consumer, Mode, PendingCall};
use super::connection::{LastAck, Phase};
use super::hold::Kind;
use super::topology::is_topology;
use super::{ChannelId, Connection, DeliveryTag};
use crate::error::{Error, Initiator};
use crate::wire::{
    ACK_FRAME_LEN, BasicAck, BasicNack, BasicProperties, BasicPublish, BasicReject, ChannelClose, ChannelOpen,
    ConnectionUpdateSecret, FRAME_MIN_SIZE, Mark, Method, MethodId, ReplyCode, ShortStr, encode_content,
    encode_content_shared, encode_method, encode_publish_to, extend_ack,
};

/// Bodies of this many bytes or more go to the socket by reference, from the
/// application's `Bytes`; smaller ones are copied into the output, which costs less than
/// a shared slice and a vectored write for them (see benches/README.md).
pub const SHARED_BODY_MIN: usize = 4 * 1024;

/// Where a publish goes: the exchange and routing key as bytes, UTF-8 and at most 255
/// bytes each (the caller checked), and whether it is `mandatory`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Route<'a> {
    pub(crate) exchange: &'a [u8],
    pub(crate) routing_key: &'a [u8],
    pub(crate) mandatory: bool,
}

/// What [`Connection::send_queued`] did with a channel's queued settles.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QueuedSent {
    /// `basic.ack`s written (a coalesced one counts once per settle it carries).
    pub(crate) acks: usize,
    /// Refused: the channel or the connection ended since the claim.
    pub(crate) stale: usize,
}

impl Connection {
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
    /// [`Event::ChannelOpened`](super::Event::ChannelOpened) follows on `open-ok`. The channel accepts calls and
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
        let acks = Arc::new(Outstanding::new(id, self.config.generation));
        let mut channel = Channel::new(id, acks);
        channel.internal = internal;
        let mut open = PendingCall::new(ChannelOpen::ID, CallKind::Open);
        open.internal = internal;
        channel.pending.push_back(open);
        self.channels.insert(channel);
        encode_method(number, &Method::ChannelOpen(ChannelOpen {}), self.io.out.buf_mut());
        tracing::trace!(channel = number, "channel.open");
        Ok(id)
    }

    /// Opens a channel with exactly the id `id` (number and epoch), for connection
    /// recovery: the channels of the previous connection come back under the ids their
    /// handles hold. Sends `channel.open`; [`Event::ChannelOpened`](super::Event::ChannelOpened) follows on `open-ok`.
    /// Later channels get epochs above `id`'s. Refused, nothing sent: a number in use or
    /// above the negotiated `channel_max` ([`Error::ChannelLimit`]).
    /// The channel gets a new delivery ledger ([`outstanding`](Self::outstanding)).
    pub fn reopen_channel(&mut self, id: ChannelId) -> Result<(), Error> {
        self.reopen(id, false, None)
    }

    /// Reopens channel `id`; `internal`: recovery's replay, which gets the reply;
    /// `acks`: the ledger the channel's handles hold, restarted for this connection.
    pub(super) fn reopen(
        &mut self,
        id: ChannelId,
        internal: bool,
        acks: Option<Arc<Outstanding>>,
    ) -> Result<(), Error> {
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
        let acks = match acks {
            Some(acks) => {
                acks.restart(self.config.generation);
                acks
            }
            None => Arc::new(Outstanding::new(id, self.config.generation)),
        };
        let mut channel = Channel::new(id, acks);
        let mut open = PendingCall::new(ChannelOpen::ID, CallKind::Open);
        open.internal = internal;
        channel.pending.push_back(open);
        self.channels.insert(channel);
        encode_method(id.number, &Method::ChannelOpen(ChannelOpen {}), self.io.out.buf_mut());
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
    /// and without `no_wait`) are answered, in call order, by [`Event::Reply`](super::Event::Reply).
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
        self.denied.check(&method)?;
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
        let mark = self.io.out.mark();
        encode_method(number, &method, self.io.out.buf_mut());
        self.check_frame_size(mark, mark.encoded, id)?;
        let Some(ch) = self.channels.get_mut(channel) else {
            return Ok(());
        };
        let mut kind = CallKind::Plain;
        match &method {
            Method::ConfirmSelect(_) if matches!(ch.mode, Mode::Normal) => ch.mode = Mode::confirm(),
            Method::TxSelect(_) => ch.mode = Mode::Tx,
            Method::BasicQos(q) => {
                ch.prefetch = q.prefetch_count;
                ch.qos.retain(|old| old.global != q.global);
                ch.qos.push(q.clone());
            }
            Method::BasicConsume(m) => {
                if m.no_wait {
                    let consumer = Consumer {
                        spec: m.clone(),
                        cancelling: false,
                        suspended: false,
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
            Method::BasicRecover(_) | Method::BasicRecoverAsync(_) => ch.acks.clear(),
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
    fn check_frame_size(&mut self, mark: Mark, frame_at: usize, id: MethodId) -> Result<(), Error> {
        let max = self.tune.map_or(FRAME_MIN_SIZE, |t| t.frame_max);
        let size = match self.io.out.encoded().get(frame_at + 3..frame_at + 7) {
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
    /// the negotiated `frame_max`; a body of [`SHARED_BODY_MIN`] bytes or more goes out
    /// by reference (see [`poll_transmit_output`](Self::poll_transmit_output)). On a confirm-mode channel returns the publish's
    /// sequence number (1, 2, ...), resolved later by [`Event::Confirm`](super::Event::Confirm).
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
        let route = Route {
            exchange: args.exchange.as_bytes(),
            routing_key: args.routing_key.as_bytes(),
            mandatory: args.mandatory,
        };
        self.publish_to(channel, route, properties, body)
    }

    /// [`publish`](Self::publish) to a route given as bytes (the client's publishes, whose
    /// names need not be [`ShortStr`]s).
    pub(crate) fn publish_to(
        &mut self,
        channel: ChannelId,
        route: Route<'_>,
        properties: &BasicProperties,
        body: &Bytes,
    ) -> Result<Option<u64>, Error> {
        let frame_max = self.tune.map_or(FRAME_MIN_SIZE, |t| t.frame_max);
        let number = channel.number;
        self.usable_channel(channel)?;
        let mark = self.io.out.mark();
        encode_publish_to(
            number,
            route.exchange,
            route.routing_key,
            route.mandatory,
            self.io.out.buf_mut(),
        );
        let header_at = self.io.out.encoded().len();
        if body.len() < SHARED_BODY_MIN {
            encode_content(number, properties, body, frame_max, self.io.out.buf_mut());
        } else {
            encode_content_shared(number, properties, body, frame_max, &mut self.io.out);
        }
        // The properties (headers) may not fit in one frame.
        self.check_frame_size(mark, header_at, BasicPublish::ID)?;
        let Some(ch) = self.channels.get_mut(channel) else {
            return Ok(None);
        };
        let seq = match &mut ch.mode {
            Mode::Confirm(c) => match c.on_publish(route, body) {
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
    /// channel): [`settle`](Self::settle) with [`Settle::Ack`].
    pub fn ack(&mut self, tag: DeliveryTag, multiple: bool) -> Result<(), Error> {
        self.settle(tag, Settle::Ack { multiple })
    }

    /// Negatively acknowledges a delivery (`basic.nack`): [`settle`](Self::settle).
    pub fn nack(&mut self, tag: DeliveryTag, multiple: bool, requeue: bool) -> Result<(), Error> {
        self.settle(tag, Settle::Nack { multiple, requeue })
    }

    /// Rejects one delivery (`basic.reject`): [`settle`](Self::settle).
    pub fn reject(&mut self, tag: DeliveryTag, requeue: bool) -> Result<(), Error> {
        self.settle(tag, Settle::Reject { requeue })
    }

    /// Settles a delivery: claims it in its channel's ledger ([`Outstanding::claim`],
    /// which says what is refused) and sends the claim ([`send_claimed`](Self::send_claimed)).
    pub fn settle(&mut self, tag: DeliveryTag, how: Settle) -> Result<(), Error> {
        self.check_open()?;
        let acks = match self.channels.get(tag.channel) {
            Some(ch) if matches!(ch.state, ChannelState::Open) => ch.acks.clone(),
            _ => return Err(Error::StaleDelivery { tag: tag.tag }),
        };
        self.send_claimed(acks.claim(tag, how)?).map(drop)
    }

    /// Writes a settle its ledger accepted, made by a handle with
    /// [`Outstanding::claim`]. Nothing is written when the channel or the connection
    /// ended since ([`Error::StaleDelivery`]: the broker requeues the delivery) or when
    /// a `multiple` settle written before covered the tag (`Ok(false)`).
    ///
    /// Acks of the oldest outstanding delivery coalesce: when the output still ends with
    /// an ack on the same channel that settled everything up to its tag, that frame
    /// becomes `basic.ack(tag, multiple)` instead of a new frame following it. The
    /// broker sees the same settles, in the same order, in fewer frames.
    pub fn send_claimed(&mut self, claimed: Claimed) -> Result<bool, Error> {
        let Claimed { tag, how } = claimed;
        let stale = Error::StaleDelivery { tag: tag.tag };
        if self.check_open().is_err() || tag.generation != self.config.generation {
            return Err(stale);
        }
        let through = match self.channels.get(tag.channel) {
            Some(ch) if matches!(ch.state, ChannelState::Open) => ch.acks.release(tag.tag, how.is_multiple()),
            _ => return Err(stale),
        };
        let Some(through) = through else { return Ok(false) };
        self.write_settle(claimed, through);
        Ok(true)
    }

    /// Writes the settles a channel's handles queued in its ledger
    /// ([`Outstanding::claim_queued`]), in the order they were made, each as
    /// [`send_claimed`](Self::send_claimed) would (with one lock for all of them).
    pub(crate) fn send_queued(&mut self, acks: &Outstanding) -> QueuedSent {
        let open = self.check_open().is_ok()
            && matches!(self.channels.get(acks.channel()), Some(ch) if matches!(ch.state, ChannelState::Open));
        let mut released = std::mem::take(&mut self.io.released);
        let mut sent = QueuedSent::default();
        if open {
            sent.stale = acks.release_queued(self.config.generation, &mut released);
        } else {
            sent.stale = acks.discard_queued();
        }
        for (claimed, through) in released.drain(..) {
            if let Some(through) = through {
                self.write_settle(claimed, through);
                sent.acks += usize::from(matches!(claimed.how, Settle::Ack { .. }));
            }
        }
        self.io.released = released;
        sent
    }

    /// Writes an accepted settle that its release found outstanding; `through`: nothing
    /// at or below its tag is outstanding any more.
    fn write_settle(&mut self, claimed: Claimed, through: bool) {
        let Claimed { tag, how } = claimed;
        let channel = tag.channel.number;
        let method = match how {
            Settle::Ack { multiple } => {
                if through && self.extend_last_ack(channel, tag.tag) {
                    return;
                }
                Method::BasicAck(BasicAck {
                    delivery_tag: tag.tag,
                    multiple,
                })
            }
            Settle::Nack { multiple, requeue } => Method::BasicNack(BasicNack {
                delivery_tag: tag.tag,
                multiple,
                requeue,
            }),
            Settle::Reject { requeue } => Method::BasicReject(BasicReject {
                delivery_tag: tag.tag,
                requeue,
            }),
        };
        encode_method(channel, &method, self.io.out.buf_mut());
        self.io.last_ack = (through && matches!(how, Settle::Ack { .. })).then_some(LastAck {
            channel,
            end: self.io.out.encoded().len(),
        });
    }

    /// Turns the ack frame that ends the output into `basic.ack(tag, multiple)`, if it
    /// is an ack on `channel` that settled everything up to a lower tag.
    fn extend_last_ack(&mut self, channel: u16, tag: u64) -> bool {
        let Some(last) = self.io.last_ack else { return false };
        let out = &mut self.io.out.buf_mut()[..];
        if last.channel != channel || last.end != out.len() || last.end < ACK_FRAME_LEN {
            return false;
        }
        extend_ack(&mut out[last.end - ACK_FRAME_LEN..], channel, tag)
    }

    /// The delivery ledger of `channel`, for handles that settle its deliveries without
    /// a round trip ([`Outstanding::claim`], then [`send_claimed`](Self::send_claimed)).
    /// The same ledger serves the channel across recoveries.
    pub fn outstanding(&self, channel: ChannelId) -> Option<Arc<Outstanding>> {
        self.channels.get(channel).map(|ch| ch.acks.clone())
    }

    /// Closes a channel: sends `channel.close`; [`Event::ChannelClosed`](super::Event::ChannelClosed) follows on
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
    #[cold]
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
        // Its deliveries go back to the queue: settling them is refused from now on.
        ch.acks.end();
        encode_method(number, &Method::ChannelClose(close), self.io.out.buf_mut());
        ch.content = None;
        ch.state = ChannelState::Closing {
            own: error,
            server: None,
        };
    }

    /// Closes the connection gracefully: sends `connection.close`, fails every channel
    /// with `Error::ConnectionClosed { by: Client, code, text }` (their
    /// [`Event::ChannelClosed`](super::Event::ChannelClosed) come now) and waits for `close-ok`, at most
    /// `close_timeout`; then [`Event::ConnectionClosed`](super::Event::ConnectionClosed) with the same error. During
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
    /// token); [`Event::SecretUpdated`](super::Event::SecretUpdated) follows on `update-secret-ok`.
    pub fn update_secret(&mut self, secret: Bytes, reason: &str) -> Result<(), Error> {
        self.check_open()?;
        let reason = ShortStr::try_from(reason).map_err(|e| Error::InvalidArgument(format!("reason: {e}")))?;
        let method = Method::ConnectionUpdateSecret(ConnectionUpdateSecret {
            new_secret: secret,
            reason,
        });
        let mark = self.io.out.mark();
        encode_method(0, &method, self.io.out.buf_mut());
        self.check_frame_size(mark, mark.encoded, ConnectionUpdateSecret::ID)?;
        self.secret_updates = self.secret_updates.saturating_add(1);
        Ok(())
    }
}

fn invalid(id: MethodId, instead: &str) -> Error {
    Error::InvalidArgument(format!("{id} cannot be sent with call: use {instead}"))
}
