//! Commands from the handles, executed on the state machine; their reply senders are
//! kept in the channel's [`Slot`] until the answer comes.

use std::io;
use std::sync::Arc;

use tokio::sync::oneshot;

use super::slot::{ConsumerSlot, Pending, PendingConfirm, Retained, Side, Slot, Stored, fail_command};
use super::{Driver, HELD_MAX, now};
use crate::client::command::{CallReply, Command};
use crate::client::handoff::DeliverySender;
use crate::client::metrics::Counters;
use crate::client::publish::{ConfirmSender, Confirmed, Publish, PublishCell};
use crate::client::shared::{ChannelShared, ConsumerEnd};
use crate::error::{Error, Initiator};
use crate::proto::{self, ChannelId, Claimed, Settle};
use crate::wire::{BasicConsume, Method, ReplyCode, ShortStr};

impl Driver {
    pub(super) fn command(&mut self, cmd: Command) {
        // Settles claimed before this command was sent go before it.
        self.take_settles();
        if self.conn.is_closed() && self.conn.error().is_some_and(|e| self.will_recover(e)) {
            // Lost a moment ago (in this same wakeup), recovery about to start.
            let _ = self.recovering_command(cmd);
            return;
        }
        if self.recovery.is_some() {
            match cmd {
                // Acks go to the state machine, which refuses stale tags; a close ends the
                // recovery (see `recovering_command` for the time without a connection).
                Command::Settles => {}
                Command::Close { code, text, reply } if self.conn.state() != proto::State::Open => {
                    self.close_while_recovering(code, text, reply);
                    self.conn
                        .handle_io_error(io::Error::other("closed by the application while recovering"));
                    return;
                }
                Command::Close { .. } => {}
                cmd => {
                    self.park(cmd);
                    return;
                }
            }
        }
        self.execute(cmd);
    }

    /// Keeps `cmd` until the recovery finishes (bounded: beyond the command queue's
    /// capacity, it fails with [`Error::NotConnected`]).
    pub(super) fn park(&mut self, cmd: Command) {
        if self.parked.len() >= self.config.command_capacity.max(HELD_MAX) {
            fail_command(cmd, &Error::NotConnected);
        } else {
            self.parked.push_back(cmd);
        }
    }

    /// Runs one command on the state machine.
    pub(super) fn execute(&mut self, cmd: Command) {
        match cmd {
            Command::OpenChannel { reply } => match self.conn.open_channel() {
                Ok(id) => {
                    let acks = self.conn.outstanding(id).expect("a channel just opened has a ledger");
                    let shared = Arc::new(ChannelShared::new(
                        id,
                        self.shared.limits.publish_window,
                        acks,
                        &self.shared,
                    ));
                    let slot = Slot::new(shared, Some(reply));
                    // A number is reused only after close-ok, whose event removed the old slot.
                    self.channels.insert(slot);
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            Command::Call { channel, method, reply } => self.call(channel, *method, reply),
            Command::Consume {
                channel,
                method,
                deliveries,
                end,
                reply,
            } => self.consume(channel, *method, deliveries, end, reply),
            Command::Publish(cell) => self.publish(cell),
            // Taken before every command, in `command`.
            Command::Settles => {}
            Command::SettleElsewhere { tag, how, reply } => {
                let claimed = match self.conn.outstanding(tag.channel()) {
                    Some(acks) => acks.claim(tag, how),
                    None => Err(Error::StaleDelivery { tag: tag.value() }),
                };
                if matches!(claimed, Err(Error::StaleDelivery { .. })) {
                    Counters::inc(&self.shared.counters.stale);
                }
                let _ = reply.send(claimed.and_then(|claimed| self.settle(claimed)));
            }
            Command::ConsumerDropped {
                channel,
                consumer_tag,
                requeue,
            } => {
                for tag in requeue {
                    let _ = self.conn.reject(tag, true);
                }
                self.abandon_consumer(channel, &consumer_tag);
            }
            Command::CloseChannel {
                channel,
                code,
                text,
                reply,
            } => self.close_channel(channel, code, &text, reply),
            Command::Close { code, text, reply } => self.close(code, &text, reply),
            Command::UpdateSecret { secret, reply } => match self.conn.update_secret(secret.0, &secret.1) {
                Ok(()) => self.secret_waiters.push_back(reply),
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
        }
    }

    fn call(&mut self, channel: ChannelId, method: Method, reply: Option<oneshot::Sender<CallReply>>) {
        let wants_reply = method.expects_reply();
        let side = Side::of(&method);
        if let Method::BasicCancel(c) = &method {
            tracing::debug!(channel = channel.number(), consumer_tag = %c.consumer_tag, "basic.cancel");
        }
        match self.conn.call(channel, method) {
            Ok(()) => {
                let Some(slot) = self.slot(channel) else { return };
                side.apply(slot);
                if wants_reply {
                    slot.pending.push_back(Pending::Call { reply });
                } else if let Some(reply) = reply {
                    // No reply will come: answer with the sent method's own ack.
                    let _ = reply.send(Err(Error::InvalidArgument("no reply expected".into())));
                }
            }
            Err(e) => {
                if let Some(reply) = reply {
                    let _ = reply.send(Err(e));
                }
            }
        }
    }

    fn consume(
        &mut self,
        channel: ChannelId,
        method: BasicConsume,
        deliveries: DeliverySender,
        end: Arc<ConsumerEnd>,
        reply: oneshot::Sender<Result<ShortStr, Error>>,
    ) {
        let (no_wait, no_ack) = (method.no_wait, method.no_ack);
        let tag = method.consumer_tag.clone();
        tracing::debug!(
            channel = channel.number(),
            queue = %method.queue,
            consumer_tag = %tag,
            no_ack,
            exclusive = method.exclusive,
            "basic.consume"
        );
        if let Err(e) = self.conn.call(channel, Method::BasicConsume(method)) {
            let _ = reply.send(Err(e));
            return;
        }
        let Some(slot) = self.slot(channel) else { return };
        if no_wait {
            slot.consumers
                .insert(tag.clone(), ConsumerSlot::new(Some(deliveries), end, no_ack));
            let _ = reply.send(Ok(tag));
        } else {
            slot.pending.push_back(Pending::Consume {
                deliveries,
                end,
                no_ack,
                reply,
            });
        }
    }

    /// Takes a publish: the state machine holds its frames now (bounded by the write and
    /// held limits), so its share of the publish byte budget goes back, unless kept with
    /// the message for republish.
    fn publish(&mut self, cell: Arc<PublishCell>) {
        let Some(Publish {
            channel,
            names,
            mandatory,
            properties,
            body,
            window_slot,
            budget,
        }) = cell.take_publish()
        else {
            return;
        };
        // In confirm mode the publisher waits on the cell; otherwise it goes back to the
        // channel's pool now.
        let confirm = match window_slot {
            true => Some(ConfirmSender::new(cell, true)),
            false => {
                if let Some(slot) = self.slot(channel) {
                    slot.shared.recycle(cell);
                }
                None
            }
        };
        // Its publisher sends the next ones without waking us (see `TaskWake`).
        self.hints.publishes_seen |= confirm.is_some();
        match self
            .conn
            .publish_to(channel, names.route(mandatory), &properties, &body)
        {
            Ok(Some(seq)) => {
                self.shared.counters.published.bump();
                self.publish_order += 1;
                let order = self.publish_order;
                let republish = self.config.recovery.enabled && self.config.recovery.republish_unconfirmed;
                if let Some(reply) = confirm
                    && self.slot(channel).is_some()
                {
                    let (message, unheld) = if republish {
                        let stored = Stored {
                            names,
                            mandatory,
                            properties,
                            body,
                            _budget: Retained::new(budget, self.shared.clone()),
                        };
                        (Some(Box::new(stored)), None)
                    } else {
                        (None, Some(budget))
                    };
                    let unconfirmed = PendingConfirm { reply, message, order };
                    if let Some(slot) = self.slot(channel) {
                        slot.confirms.insert(seq, unconfirmed);
                    }
                    if let Some(budget) = unheld {
                        self.release_publish_bytes(budget);
                    }
                    return;
                }
            }
            Ok(None) => {
                self.shared.counters.published.bump();
                if let Some(reply) = confirm {
                    reply.send(Ok(Confirmed::Sent));
                }
            }
            Err(e) => match confirm {
                Some(reply) => {
                    reply.send(Err(e));
                }
                None => tracing::debug!(channel = channel.number(), error = %e, "publish refused"),
            },
        }
        self.release_publish_bytes(budget);
    }

    /// Gives a publish's share of the byte budget back at the end of this wakeup, with
    /// the others' (one semaphore update per wakeup, not per publish).
    pub(super) fn release_publish_bytes(&mut self, share: u32) {
        self.publish_bytes_freed += share as usize;
    }

    /// Writes the settles the handles claimed and queued in their channels' ledgers
    /// (see [`QueuedSettles`](crate::client::wake::QueuedSettles)); each is refused only
    /// when its channel or connection ended since (counted).
    pub(super) fn take_settles(&mut self) {
        let mut ledgers = std::mem::take(&mut self.settle_ledgers);
        if self.shared.settles.take(&mut ledgers) {
            for acks in ledgers.drain(..) {
                let sent = self.conn.send_queued(&acks);
                self.hints.acks_sent = true;
                self.shared.counters.acked.add(sent.acks as u64);
                if sent.stale != 0 {
                    tracing::debug!(
                        channel = acks.channel().number(),
                        settles = sent.stale,
                        "settles not written: the channel or connection ended"
                    );
                    Counters::add(&self.shared.counters.stale, sent.stale as u64);
                }
            }
        }
        self.settle_ledgers = ledgers;
    }

    /// Writes a settle the task claimed itself, counting it.
    fn settle(&mut self, claimed: Claimed) -> Result<(), Error> {
        self.hints.acks_sent = true;
        match self.conn.send_claimed(claimed) {
            Ok(written) => {
                if written && matches!(claimed.how(), Settle::Ack { .. }) {
                    self.shared.counters.acked.bump();
                }
                Ok(())
            }
            // The channel or the connection ended after the claim: the broker requeues it.
            Err(e) => {
                tracing::debug!(tag = claimed.tag().value(), error = %e, "settle not written");
                Counters::inc(&self.shared.counters.stale);
                Err(e)
            }
        }
    }

    fn close_channel(
        &mut self,
        channel: ChannelId,
        code: ReplyCode,
        text: &str,
        reply: Option<oneshot::Sender<Result<(), Error>>>,
    ) {
        let e = match self.conn.close_channel(channel, code, text) {
            Ok(()) => {
                tracing::debug!(channel = channel.number(), "closing channel");
                if let (Some(reply), Some(slot)) = (reply, self.slot(channel)) {
                    slot.close_waiters.push(reply);
                }
                return;
            }
            Err(e) => e,
        };
        let Some(reply) = reply else { return };
        let ours = matches!(
            e,
            Error::ChannelClosed {
                by: Initiator::Application,
                ..
            }
        );
        match self.slot(channel) {
            // Already closing on our side: wait for the same close-ok.
            Some(slot) if ours => slot.close_waiters.push(reply),
            _ => {
                let _ = reply.send(if ours { Ok(()) } else { Err(e) });
            }
        }
    }

    fn close(&mut self, code: ReplyCode, text: &str, reply: oneshot::Sender<Result<(), Error>>) {
        self.closing = true;
        if self.conn.is_closed() || self.conn.state() == proto::State::AwaitCloseOk {
            self.close_waiters.push(reply);
            return;
        }
        match self.conn.close(now(), code, text) {
            Ok(()) => {
                tracing::debug!("closing connection");
                self.close_waiters.push(reply);
            }
            Err(Error::Closed) => self.close_waiters.push(reply),
            Err(e) => {
                let _ = reply.send(Err(e));
            }
        }
    }
}
