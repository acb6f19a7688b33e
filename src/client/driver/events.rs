//! Events from the state machine, handed to the handles: replies to their senders,
//! deliveries to consumer queues (with overflow while a queue is full), confirms to
//! publishers, and what a closed channel or connection ends.

use tokio::sync::{Semaphore, mpsc};

use super::Driver;
use super::slot::{ConsumerSlot, Pending, PendingConfirm, Slot, Waiter, cost, end_consumer};
use crate::client::command::Command;
use crate::client::handoff::PushError;
use crate::client::metrics::Counters;
use crate::client::publish::{ConfirmSender, Confirmed};
use crate::client::state::ConnectionState;
use crate::error::{Error, Initiator};
use crate::fastmap::get_sole_mut;
use crate::proto::{self, ChannelId, Delivery, Event, Returned};
use crate::wire::{BasicCancel, BasicConsumeOk, Method, ReplyCode, ShortStr};

impl Driver {
    /// Takes every available event.
    pub(super) fn dispatch(&mut self) {
        while let Some(event) = self.conn.poll_event() {
            self.event(event);
        }
        // One wake-up per consumer and publisher for everything this read brought.
        for queue in self.unannounced.drain(..) {
            queue.announce();
        }
        // Window slots first, then the answers, newest first: a publisher awaiting its
        // oldest confirm wakes once, with all of them in.
        release_slots(self.confirmed.iter_mut().map(|(reply, _)| reply));
        for (reply, outcome) in self.confirmed.drain(..).rev() {
            reply.send(Ok(outcome));
        }
    }

    /// Room in the queue of consumer `waiters[i]` (`Ok`), or its consumer is gone
    /// (`Err`): hand over as much overflow as fits.
    pub(super) fn on_room(&mut self, i: usize, room: Result<(), ()>) {
        let Waiter {
            channel, consumer_tag, ..
        } = self.waiters.swap_remove(i);
        let Some(slot) = self.slot(channel) else { return };
        let Some(c) = slot.consumers.get_mut(&consumer_tag) else {
            return;
        };
        let mut freed = 0;
        let mut orphans = Vec::new();
        let mut announce = None;
        match (room, &c.tx) {
            (Ok(()), Some(tx)) => {
                while let Some(d) = c.overflow.pop_front() {
                    let size = cost(&d);
                    match tx.push(d) {
                        Ok(_) => freed += size,
                        Err(PushError::Full(d)) => {
                            c.overflow.push_front(d);
                            break;
                        }
                        Err(PushError::Closed(d)) => orphans.push(d),
                    }
                }
                announce = Some(tx.queue());
            }
            _ => orphans.extend(c.overflow.drain(..)),
        }
        for d in &orphans {
            freed += cost(d);
        }
        c.overflow_bytes = c.overflow_bytes.saturating_sub(freed);
        let wait_again = match (&c.tx, c.overflow.is_empty()) {
            (Some(tx), false) => Some(tx.queue()),
            _ => None,
        };
        let handed_batch = !c.no_ack && announce.is_some();
        let done = c.ended && c.overflow.is_empty();
        if done {
            slot.consumers.remove(&consumer_tag);
        }
        self.overflow_bytes = self.overflow_bytes.saturating_sub(freed);
        self.hints.handed_batch |= handed_batch;
        self.unannounced.extend(announce);
        for d in orphans {
            self.orphan_delivery(channel, d);
        }
        if let Some(queue) = wait_again {
            self.waiters.push(Waiter {
                channel,
                consumer_tag,
                queue,
            });
        }
    }

    /// One event of the state machine, to whom it concerns.
    pub(super) fn event(&mut self, event: Event) {
        match event {
            Event::Connected {
                server_properties,
                tune,
            } => {
                tracing::info!(
                    channel_max = tune.channel_max,
                    frame_max = tune.frame_max,
                    heartbeat = tune.heartbeat,
                    "connection open"
                );
                self.shared.set_handshake(tune, server_properties);
                // After a recovery's reconnection, the state machine restores and then
                // reports `Recovered`.
                if let Some(tx) = self.connected.take() {
                    self.shared.set_state(ConnectionState::Connected);
                    let _ = tx.send(Ok(()));
                }
            }
            Event::Blocked { reason } => {
                tracing::warn!(%reason, "connection blocked by the server: publishes wait");
                let state = self.recovery.is_none().then_some(ConnectionState::Blocked { reason });
                self.shared.set_blocked(true, state);
            }
            Event::Unblocked => {
                tracing::info!("connection unblocked");
                let state = self.recovery.is_none().then_some(ConnectionState::Connected);
                self.shared.set_blocked(false, state);
            }
            Event::ChannelOpened(id) => self.on_channel_opened(id),
            Event::ChannelClosed { channel, error } => self.on_channel_closed(channel, error),
            Event::Reply {
                channel,
                method,
                content,
            } => {
                if content.is_some() {
                    self.shared.counters.delivered.bump();
                }
                self.reply(channel, method, content.map(|c| *c));
            }
            Event::Delivery { channel, delivery } => {
                self.shared.counters.delivered.bump();
                if delivery.redelivered {
                    self.shared.counters.redelivered.bump();
                }
                self.delivery(channel, delivery)
            }
            Event::Confirm {
                channel,
                seq,
                ack,
                returned,
            } => self.on_confirm(channel, seq, ack, returned),
            Event::Return { channel, returned } => self.on_return(channel, *returned),
            Event::ConsumerCancelled {
                channel,
                consumer_tag,
                reason,
            } => {
                Counters::inc(&self.shared.counters.server_cancels);
                let Some(slot) = self.slot(channel) else { return };
                tracing::info!(channel = channel.number(), %consumer_tag, %reason, "consumer cancelled by the server");
                let _ = end_consumer(
                    slot,
                    &consumer_tag,
                    Some(Error::consumer_cancelled(&consumer_tag, reason)),
                );
            }
            Event::ConsumerSuspended { channel, consumer_tag } => {
                // The consumer's stream stays open: its deliveries resume when the state
                // machine consumes again (`proto/reconsume.rs`).
                Counters::inc(&self.shared.counters.server_cancels);
                tracing::info!(channel = channel.number(), %consumer_tag, "consumer cancelled by the server: will consume again");
            }
            Event::ConsumerResumed { channel, consumer_tag } => {
                Counters::inc(&self.shared.counters.reconsumed);
                tracing::info!(channel = channel.number(), %consumer_tag, "consumer consuming again");
            }
            Event::Flow { channel, active } => {
                tracing::info!(channel = channel.number(), active, "channel.flow from the server");
            }
            Event::Recovered(report) => self.finish_replay(*report),
            Event::SecretUpdated => {
                if let Some(w) = self.secret_waiters.pop_front() {
                    let _ = w.send(Ok(()));
                }
            }
            Event::ConnectionClosed(error) => self.on_connection_closed(error),
        }
    }

    /// The connection is closed: the state says so at once (the last write may take a
    /// while). A loss during a recovery's replay: the next attempt reports itself.
    fn on_connection_closed(&mut self, error: Error) {
        match &error {
            Error::ConnectionClosed {
                by: Initiator::Application,
                code: ReplyCode::SUCCESS,
                ..
            } => tracing::info!("connection closed"),
            e => tracing::warn!(error = %e, "connection closed"),
        }
        if !self.will_recover(&error) {
            // The application's close, if it asked for one, is the reason (as in `finish`).
            let error = self.final_error.clone().unwrap_or(error);
            self.shared.closed.send_replace(Some(error.clone()));
            self.shared.set_blocked(false, Some(ConnectionState::Failed(error)));
        } else if self.recovery.is_none() {
            // Deliveries from now on belong to the next generation (as `suspend` says
            // again): an ack of an earlier one is stale from the moment the state says so.
            let next = self.conn.generation().wrapping_add(1);
            self.shared.generation.store(next, std::sync::atomic::Ordering::Release);
            let state = ConnectionState::Recovering {
                attempt: 1,
                cause: error,
            };
            self.shared.set_blocked(false, Some(state));
        }
    }

    fn on_channel_opened(&mut self, id: ChannelId) {
        let Some(slot) = self.slot(id) else { return };
        tracing::debug!(channel = id.number(), "channel open");
        let reply = slot.open_reply.take();
        let shared = slot.shared.clone();
        if let Some(reply) = reply
            && reply.send(Ok(shared)).is_err()
        {
            // Nobody waits for it any more (the open was cancelled): close it.
            let _ = self.conn.close_channel(id, ReplyCode::SUCCESS, "open cancelled");
        }
    }

    fn on_channel_closed(&mut self, channel: ChannelId, error: Error) {
        if error.is_connection_error() && self.will_recover(&error) {
            // The connection is lost, not the channel: recovery reopens it.
            return;
        }
        if let Some(slot) = self.channels.remove(channel) {
            tracing::debug!(channel = channel.number(), %error, "channel closed");
            self.forget_slot_budgets(&slot);
            slot.fail(&error, &self.shared.counters);
        }
    }

    fn on_confirm(&mut self, channel: ChannelId, seq: u64, ack: bool, returned: Option<Box<Returned>>) {
        let counters = &self.shared.counters;
        if ack { &counters.confirmed } else { &counters.nacked }.bump();
        if returned.is_some() {
            counters.returned.bump();
        }
        let Some(slot) = self.channels.get_mut(channel) else {
            return;
        };
        if let Some(PendingConfirm { reply, .. }) = slot.confirms.remove(&seq) {
            let outcome = match returned {
                Some(message) => Confirmed::Returned { ack, message },
                None if ack => Confirmed::Ack,
                None => Confirmed::Nack,
            };
            self.confirmed.push((reply, outcome));
        }
    }

    /// A `basic.return` outside confirm mode: to the channel's listener, if any.
    fn on_return(&mut self, channel: ChannelId, returned: Returned) {
        self.shared.counters.returned.bump();
        let listener = self
            .slot(channel)
            .and_then(|slot| slot.shared.returns.lock().ok().and_then(|r| r.clone()));
        // Never wait here: a listener that does not keep up loses notices, not messages
        // (the broker already dropped the message it returns).
        let undelivered = match listener {
            Some(tx) => tx.try_send(returned).err().map(|e| match e {
                mpsc::error::TrySendError::Full(r) | mpsc::error::TrySendError::Closed(r) => r,
            }),
            None => Some(returned),
        };
        if let Some(returned) = undelivered {
            tracing::warn!(
                channel = channel.number(),
                code = returned.reply_code.0,
                exchange = %returned.exchange,
                routing_key = %returned.routing_key,
                "basic.return outside confirm mode with no room in Channel::returns: dropped"
            );
        }
    }

    /// True when some consumer's buffer (its queue, its batch in hand and its overflow)
    /// is over its byte budget: the task stops reading. Only consumers with overflow
    /// can be; one check per wakeup while some has.
    pub(super) fn consumer_over_budget(&self) -> bool {
        let budget = self.config.consumer_buffer_bytes;
        self.waiters.iter().any(|w| {
            w.queue.over_bytes()
                || self
                    .channels
                    .get(w.channel)
                    .and_then(|slot| slot.consumers.get(&w.consumer_tag))
                    .is_some_and(|c| c.overflow_bytes.saturating_add(w.queue.held_bytes()) >= budget)
        })
    }

    /// A slot leaves: its consumer overflow no longer counts against the connection's
    /// budget.
    pub(super) fn forget_slot_budgets(&mut self, slot: &Slot) {
        self.overflow_bytes = self.overflow_bytes.saturating_sub(slot.overflow_bytes());
    }

    /// The slot of `id`, if it is still that channel (not a successor on its number).
    pub(super) fn slot(&mut self, id: ChannelId) -> Option<&mut Slot> {
        self.channels.get_mut(id)
    }

    pub(super) fn reply(&mut self, channel: ChannelId, method: Method, content: Option<proto::Delivery>) {
        let Some(slot) = self.slot(channel) else { return };
        if let Method::BasicCancelOk(ok) = &method {
            tracing::debug!(channel = channel.number(), consumer_tag = %ok.consumer_tag, "consumer cancelled");
            let _ = end_consumer(slot, &ok.consumer_tag, None);
        }
        match slot.pending.pop_front() {
            Some(Pending::Call { reply }) => {
                match reply {
                    Some(reply) => {
                        if let Err(Ok((_, Some(content)))) = reply.send(Ok((method, content))) {
                            // A cancelled basic.get: give the message back.
                            let _ = self.conn.reject(content.delivery_tag, true);
                        }
                    }
                    None => {
                        if let Some(content) = content {
                            let _ = self.conn.reject(content.delivery_tag, true);
                        }
                    }
                }
            }
            Some(Pending::Consume {
                deliveries,
                end,
                no_ack,
                reply,
            }) => {
                if let Method::BasicConsumeOk(ok) = method {
                    let tag = ok.consumer_tag;
                    tracing::debug!(channel = channel.number(), consumer_tag = %tag, no_ack, "consumer started");
                    let cancelled = reply.send(Ok(tag.clone())).is_err();
                    slot.consumers.insert(
                        tag.clone(),
                        ConsumerSlot::new((!cancelled).then_some(deliveries), end, no_ack),
                    );
                    if cancelled {
                        // The basic_consume future was dropped: nobody will read this consumer.
                        self.cancel_consumer(channel, tag);
                    }
                } else {
                    let _ = reply.send(Err(Error::unexpected(&[BasicConsumeOk::ID], method.id())));
                }
            }
            None => tracing::debug!(channel = channel.number(), method = %method.id(), "reply with no pending call"),
        }
    }

    pub(super) fn delivery(&mut self, channel: ChannelId, delivery: Delivery) {
        let Some(slot) = self.channels.get_mut(channel) else {
            self.orphan_delivery(channel, delivery);
            return;
        };
        let Some(c) = get_sole_mut(&mut slot.consumers, &delivery.consumer_tag) else {
            self.orphan_delivery(channel, delivery);
            return;
        };
        let Some(tx) = &c.tx else {
            self.orphan_delivery(channel, delivery);
            return;
        };
        if !c.overflow.is_empty() {
            // Keep the order: behind what already waits.
            let size = cost(&delivery);
            self.overflow_bytes += size;
            c.overflow_bytes += size;
            c.overflow.push_back(delivery);
            return;
        }
        match tx.push(delivery) {
            Ok(first) => {
                if first {
                    self.unannounced.push(tx.queue());
                }
                self.hints.handed_batch |= !c.no_ack;
            }
            Err(PushError::Full(delivery)) => {
                let queue = tx.queue();
                let consumer_tag = delivery.consumer_tag.clone();
                let size = cost(&delivery);
                self.overflow_bytes += size;
                c.overflow_bytes += size;
                c.overflow.push_back(delivery);
                self.waiters.push(Waiter {
                    channel,
                    consumer_tag,
                    queue,
                });
            }
            Err(PushError::Closed(delivery)) => self.orphan_delivery(channel, delivery),
        }
    }

    /// A delivery nobody will read: requeue it, and cancel its consumer.
    pub(super) fn orphan_delivery(&mut self, channel: ChannelId, delivery: Delivery) {
        let no_ack = self.abandon_consumer(channel, &delivery.consumer_tag);
        if !no_ack {
            let _ = self.conn.reject(delivery.delivery_tag, true);
        }
    }

    /// Nobody reads consumer `consumer_tag` any more: requeue its overflow and cancel
    /// it (once). Returns whether it is a no-ack consumer.
    pub(super) fn abandon_consumer(&mut self, channel: ChannelId, consumer_tag: &ShortStr) -> bool {
        let Some(slot) = self.slot(channel) else { return false };
        let Some(c) = slot.consumers.get_mut(consumer_tag) else {
            return false;
        };
        let first = c.tx.take().is_some();
        let no_ack = c.no_ack;
        let overflow: Vec<Delivery> = c.overflow.drain(..).collect();
        c.overflow_bytes = 0;
        if c.ended {
            slot.consumers.remove(consumer_tag);
        }
        for d in overflow {
            self.overflow_bytes = self.overflow_bytes.saturating_sub(cost(&d));
            if !no_ack {
                let _ = self.conn.reject(d.delivery_tag, true);
            }
        }
        if first {
            self.cancel_consumer(channel, consumer_tag.clone());
        }
        no_ack
    }

    /// Sends `basic.cancel` for a consumer nobody reads; its reply is discarded.
    pub(super) fn cancel_consumer(&mut self, channel: ChannelId, consumer_tag: ShortStr) {
        tracing::debug!(channel = channel.number(), %consumer_tag, "cancelling an abandoned consumer");
        let method = Method::BasicCancel(BasicCancel {
            consumer_tag,
            no_wait: false,
        });
        self.command(Command::Call {
            channel,
            method: Box::new(method),
            reply: None,
        });
    }
}

/// Gives back the window slots `replies` hold with one release per run of the same
/// channel's: each release locks its semaphore.
fn release_slots<'a>(replies: impl Iterator<Item = &'a mut ConfirmSender>) {
    let mut run: Option<(&Semaphore, usize)> = None;
    for window in replies.filter_map(ConfirmSender::take_slot) {
        match &mut run {
            Some((same, n)) if std::ptr::eq(&**same, window) => *n += 1,
            _ => {
                if let Some((done, n)) = run.replace((window, 1)) {
                    done.add_permits(n);
                }
            }
        }
    }
    if let Some((done, n)) = run {
        done.add_permits(n);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::sync::Semaphore;

    use super::release_slots;
    use crate::client::publish::{ConfirmSender, PublishCell};

    #[test]
    fn slots_of_several_channels_all_come_back() {
        let (a, b) = (Arc::new(Semaphore::new(4)), Arc::new(Semaphore::new(4)));
        let budget = Arc::new(Semaphore::new(0));
        let cell = |window: &Arc<Semaphore>| Arc::new(PublishCell::new(window.clone(), budget.clone()));
        let (cell_a, cell_b) = (cell(&a), cell(&b));
        let mut replies: Vec<ConfirmSender> = [&cell_a, &cell_a, &cell_b, &cell_a, &cell_b, &cell_b]
            .into_iter()
            .map(|cell| {
                let window = if Arc::ptr_eq(cell, &cell_a) { &a } else { &b };
                window.try_acquire().unwrap().forget();
                ConfirmSender::new(cell.clone(), true)
            })
            .collect();
        replies.push(ConfirmSender::new(cell_a.clone(), false));
        assert_eq!((a.available_permits(), b.available_permits()), (1, 1));
        release_slots(replies.iter_mut());
        assert_eq!((a.available_permits(), b.available_permits()), (4, 4));
        drop(replies);
        assert_eq!(
            (a.available_permits(), b.available_permits()),
            (4, 4),
            "given back once, not again when the senders go"
        );
    }
}
