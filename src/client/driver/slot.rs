//! What the task keeps per channel beside the state machine: the reply senders of its
//! calls in order, its consumers' queues and overflow, and its publishes' confirm
//! senders ([`Slot`]).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::oneshot;

use crate::client::command::{CallReply, Command};
pub(super) use crate::client::handoff::cost;
use crate::client::handoff::{DeliveryQueue, DeliverySender};
use crate::client::metrics::Counters;
use crate::client::publish::{ConfirmSender, PublishNames};
use crate::client::shared::{ChannelShared, ConnShared, ConsumerEnd};
use crate::error::{Error, Initiator};
use crate::fastmap::FastMap;
use crate::proto::{ChannelId, Delivery, Keyed};
use crate::wire::{BasicProperties, Method, ShortStr};

/// A call waiting for its reply, in the order calls were made on the channel.
pub(super) enum Pending {
    /// A call; `reply` is `None` when the caller does not want the reply.
    Call { reply: Option<oneshot::Sender<CallReply>> },
    /// `basic.consume`: on `consume-ok` the consumer is registered.
    Consume {
        deliveries: DeliverySender,
        end: Arc<ConsumerEnd>,
        no_ack: bool,
        reply: oneshot::Sender<Result<ShortStr, Error>>,
    },
}

pub(super) struct ConsumerSlot {
    /// `None` once the consumer handle is gone: deliveries are requeued.
    pub(super) tx: Option<DeliverySender>,
    pub(super) end: Arc<ConsumerEnd>,
    pub(super) no_ack: bool,
    /// Deliveries waiting for room in the consumer's queue, in order.
    pub(super) overflow: VecDeque<Delivery>,
    /// Bytes of `overflow` ([`cost`]), for the consumer's byte budget.
    pub(super) overflow_bytes: usize,
    /// The consumer ended (cancel-ok or server cancel): its sender goes once the
    /// overflow is handed over.
    pub(super) ended: bool,
}

impl ConsumerSlot {
    pub(super) fn new(tx: Option<DeliverySender>, end: Arc<ConsumerEnd>, no_ack: bool) -> Self {
        ConsumerSlot {
            tx,
            end,
            no_ack,
            overflow: VecDeque::new(),
            overflow_bytes: 0,
            ended: false,
        }
    }
}

/// A publish waiting for its confirm.
pub(super) struct PendingConfirm {
    /// Holds the publish's window slot.
    pub(super) reply: ConfirmSender,
    /// The message, kept in republish mode to send it again after a recovery, and its
    /// share of the publish byte budget.
    pub(super) message: Option<Box<Stored>>,
    /// Publish order on the connection (republished messages keep theirs).
    pub(super) order: u64,
}

impl PendingConfirm {
    /// The publish's outcome is unknown (its connection or channel went away first):
    /// counted, its window slot and retained bytes freed, then answered with `error`,
    /// so that whoever the answer wakes sees the window and the budget already free.
    pub(super) fn unknown(self, error: Error, counters: &Counters) {
        let PendingConfirm { reply, message, .. } = self;
        Counters::inc(&counters.unknown);
        drop(message);
        // The window slot goes back before the answer.
        reply.send(Err(error));
    }
}

/// A published message, as recovery republishes it.
pub(super) struct Stored {
    pub(super) names: PublishNames,
    pub(super) mandatory: bool,
    pub(super) properties: BasicProperties,
    pub(super) body: bytes::Bytes,
    pub(super) _budget: Retained,
}

/// A retained message's share of the publish byte budget, counted in
/// [`Metrics::unconfirmed_bytes`](crate::client::Metrics::unconfirmed_bytes) while held
/// and given back to the budget when dropped.
pub(super) struct Retained {
    share: u32,
    shared: Arc<ConnShared>,
}

impl Retained {
    pub(super) fn new(share: u32, shared: Arc<ConnShared>) -> Self {
        shared
            .counters
            .unconfirmed_bytes
            .fetch_add(u64::from(share), Ordering::Relaxed);
        Retained { share, shared }
    }
}

impl Drop for Retained {
    fn drop(&mut self) {
        let counters = &self.shared.counters;
        counters
            .unconfirmed_bytes
            .fetch_sub(u64::from(self.share), Ordering::Relaxed);
        self.shared.publish_bytes.add_permits(self.share as usize);
    }
}

pub(super) struct Slot {
    pub(super) shared: Arc<ChannelShared>,
    pub(super) open_reply: Option<oneshot::Sender<Result<Arc<ChannelShared>, Error>>>,
    pub(super) pending: VecDeque<Pending>,
    pub(super) consumers: FastMap<ShortStr, ConsumerSlot>,
    pub(super) confirms: FastMap<u64, PendingConfirm>,
    pub(super) close_waiters: Vec<oneshot::Sender<Result<(), Error>>>,
    /// Unconfirmed publishes of a lost connection, to send again once recovered.
    pub(super) republish: Vec<PendingConfirm>,
}

impl Keyed for Slot {
    fn channel_id(&self) -> ChannelId {
        self.shared.id
    }
}

impl Slot {
    /// Bytes of deliveries held in this channel's consumer overflows.
    pub(super) fn overflow_bytes(&self) -> usize {
        self.consumers.values().flat_map(|c| c.overflow.iter()).map(cost).sum()
    }

    pub(super) fn new(
        shared: Arc<ChannelShared>,
        open_reply: Option<oneshot::Sender<Result<Arc<ChannelShared>, Error>>>,
    ) -> Self {
        Slot {
            shared,
            open_reply,
            pending: VecDeque::new(),
            consumers: FastMap::default(),
            confirms: FastMap::default(),
            close_waiters: Vec::new(),
            republish: Vec::new(),
        }
    }

    /// Fails everything waiting on the channel with `error`; unconfirmed publishes
    /// resolve with it too (outcome unknown) and are counted.
    pub(super) fn fail(self, error: &Error, counters: &Counters) {
        self.shared.set_closed(error.clone());
        if let Some(reply) = self.open_reply {
            let _ = reply.send(Err(error.clone()));
        }
        for p in self.pending {
            match p {
                Pending::Call { reply: Some(reply), .. } => {
                    let _ = reply.send(Err(error.clone()));
                }
                Pending::Call { reply: None } => {}
                Pending::Consume { reply, .. } => {
                    let _ = reply.send(Err(error.clone()));
                }
            }
        }
        for (_, c) in self.consumers {
            let _ = c.end.reason.set(error.clone());
        }
        for u in self.confirms.into_values().chain(self.republish) {
            u.unknown(error.clone(), counters);
        }
        // Our own close (client, any code we chose) succeeded; anything else is why
        // the close did not go as asked.
        let ours = matches!(
            error,
            Error::ChannelClosed {
                by: Initiator::Application,
                ..
            }
        );
        for w in self.close_waiters {
            let _ = w.send(if ours { Ok(()) } else { Err(error.clone()) });
        }
    }
}

/// Side effects of a call on the channel's shared state, applied once it is sent.
pub(super) enum Side {
    None,
    Confirm,
    Qos(u16),
    CancelNoWait(ShortStr),
}

impl Side {
    pub(super) fn of(method: &Method) -> Side {
        match method {
            Method::ConfirmSelect(_) => Side::Confirm,
            Method::BasicQos(q) => Side::Qos(q.prefetch_count),
            Method::BasicCancel(c) if c.no_wait => Side::CancelNoWait(c.consumer_tag.clone()),
            _ => Side::None,
        }
    }

    pub(super) fn apply(self, slot: &mut Slot) {
        match self {
            Side::None => {}
            Side::Confirm => slot.shared.confirm.store(true, Ordering::Release),
            Side::Qos(prefetch) => slot.shared.prefetch.store(prefetch, Ordering::Relaxed),
            Side::CancelNoWait(tag) => {
                let _ = end_consumer(slot, &tag, None);
            }
        }
    }
}

/// Ends a consumer: with `reason` as the stream's last item (`None`: a plain end). Its
/// sender is dropped now, or once its overflow is handed over. Returns whether it existed.
pub(super) fn end_consumer(slot: &mut Slot, consumer_tag: &ShortStr, reason: Option<Error>) -> bool {
    let Some(c) = slot.consumers.get_mut(consumer_tag) else {
        return false;
    };
    if let Some(reason) = reason {
        let _ = c.end.reason.set(reason);
    }
    if c.overflow.is_empty() {
        slot.consumers.remove(consumer_tag);
    } else {
        c.ended = true;
    }
    true
}

/// Answers a command that will never run with `error`.
pub(super) fn fail_command(cmd: Command, error: &Error) {
    match cmd {
        Command::OpenChannel { reply } => drop(reply.send(Err(error.clone()))),
        Command::Call { reply: Some(reply), .. } => drop(reply.send(Err(error.clone()))),
        Command::Consume { reply, .. } => drop(reply.send(Err(error.clone()))),
        Command::SettleElsewhere { reply, .. } => drop(reply.send(Err(error.clone()))),
        Command::Publish(cell) => {
            // Its budget share and window slot are free before anyone hears of it.
            if let Some(true) = cell.discard_publish() {
                ConfirmSender::new(cell, true).send(Err(error.clone()));
            }
        }
        Command::CloseChannel { reply: Some(reply), .. } => drop(reply.send(Ok(()))),
        // A close of our own that was still queued: the connection is closed, as asked.
        Command::Close { reply, .. } if error.is_application_close() => drop(reply.send(Ok(()))),
        Command::Close { reply, .. } | Command::UpdateSecret { reply, .. } => drop(reply.send(Err(error.clone()))),
        _ => {}
    }
}

/// A consumer with overflow, waiting for room in its queue.
pub(super) struct Waiter {
    pub(super) channel: ChannelId,
    pub(super) consumer_tag: ShortStr,
    pub(super) queue: Arc<DeliveryQueue>,
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::client::handoff::delivery_queue;
    use crate::wire::ReplyCode;

    fn slot() -> Slot {
        let id = ChannelId { number: 1, epoch: 0 };
        Slot::new(
            Arc::new(ChannelShared::new(
                id,
                8,
                Arc::new(crate::proto::Outstanding::new(id, 0)),
                &ConnShared::for_tests(),
            )),
            None,
        )
    }

    fn closed_by(by: Initiator) -> Error {
        Error::ChannelClosed {
            by,
            code: ReplyCode::SUCCESS,
            text: "bye".into(),
            method: None,
        }
    }

    #[test]
    fn a_failed_channel_answers_every_waiter_with_its_error() {
        let mut slot = slot();
        let (call, call_rx) = oneshot::channel();
        slot.pending.push_back(Pending::Call { reply: Some(call) });
        let (tx, _rx) = delivery_queue(4, None);
        let (consume, consume_rx) = oneshot::channel();
        let end = Arc::new(ConsumerEnd::default());
        slot.pending.push_back(Pending::Consume {
            deliveries: tx,
            end: end.clone(),
            no_ack: false,
            reply: consume,
        });
        slot.shared.window.try_acquire().expect("window").forget();
        let cell = slot.shared.publish_cell();
        slot.confirms.insert(
            1,
            PendingConfirm {
                reply: ConfirmSender::new(cell.clone(), true),
                message: None,
                order: 1,
            },
        );
        let consumer_end = Arc::new(ConsumerEnd::default());
        slot.consumers.insert(
            ShortStr::from_static("c"),
            ConsumerSlot::new(None, consumer_end.clone(), false),
        );
        let (close, close_rx) = oneshot::channel();
        slot.close_waiters.push(close);
        let shared = slot.shared.clone();
        let counters = Counters::default();
        let error = closed_by(Initiator::Server);

        slot.fail(&error, &counters);
        assert!(matches!(call_rx.blocking_recv(), Ok(Err(e)) if e == error));
        assert!(matches!(consume_rx.blocking_recv(), Ok(Err(e)) if e == error));
        assert!(
            matches!(cell.take_outcome(), Some(Err(e)) if e == error),
            "outcome unknown, not a nack"
        );
        assert_eq!(counters.unknown.load(Ordering::Relaxed), 1);
        assert_eq!(consumer_end.reason.get(), Some(&error), "the stream ends with why");
        assert_eq!(
            close_rx.blocking_recv(),
            Ok(Err(error.clone())),
            "the close did not go as asked"
        );
        assert_eq!(shared.closed.get(), Some(&error));
        assert!(shared.window.is_closed(), "publishers waiting for room stop waiting");
    }

    #[test]
    fn the_applications_own_close_answers_its_waiters_ok() {
        let mut slot = slot();
        let (close, close_rx) = oneshot::channel();
        slot.close_waiters.push(close);
        slot.fail(&closed_by(Initiator::Application), &Counters::default());
        assert_eq!(close_rx.blocking_recv(), Ok(Ok(())));
    }

    #[test]
    fn a_consumer_with_overflow_ends_once_it_is_handed_over() {
        let mut slot = slot();
        let tag = ShortStr::from_static("c");
        let end = Arc::new(ConsumerEnd::default());
        let mut consumer = ConsumerSlot::new(None, end.clone(), false);
        consumer.overflow.push_back(Delivery {
            consumer_tag: tag.clone(),
            delivery_tag: crate::proto::DeliveryTag {
                generation: 0,
                channel: ChannelId { number: 1, epoch: 0 },
                tag: 1,
            },
            redelivered: false,
            exchange: ShortStr::EMPTY,
            routing_key: ShortStr::EMPTY,
            properties: Default::default(),
            body: Default::default(),
            settler: (),
        });
        slot.consumers.insert(tag.clone(), consumer);
        let reason = Error::consumer_cancelled(&tag, crate::error::CancelReason::QueueDeleted);
        assert!(end_consumer(&mut slot, &tag, Some(reason.clone())));
        assert!(
            slot.consumers.get(&tag).is_some_and(|c| c.ended),
            "kept until its overflow is handed over"
        );
        assert_eq!(end.reason.get(), Some(&reason));
        if let Some(c) = slot.consumers.get_mut(&tag) {
            c.overflow.clear();
        }
        assert!(end_consumer(&mut slot, &tag, None));
        assert!(!slot.consumers.contains_key(&tag));
        assert!(!end_consumer(&mut slot, &tag, None), "gone");
    }

    /// A `close()` still queued when the connection ended: `Ok` if the application closed
    /// it (what it asked for happened), the reason otherwise.
    #[test]
    fn a_queued_close_of_our_own_succeeds() {
        let close = || {
            let (reply, rx) = oneshot::channel();
            let cmd = Command::Close {
                code: ReplyCode::SUCCESS,
                text: "bye".into(),
                reply,
            };
            (cmd, rx)
        };
        let ours = Error::ConnectionClosed {
            by: Initiator::Application,
            code: ReplyCode::SUCCESS,
            text: "bye".into(),
            method: None,
        };
        let (cmd, mut rx) = close();
        fail_command(cmd, &ours);
        assert_eq!(rx.try_recv().unwrap(), Ok(()));
        let lost = Error::ConnectionLost {
            reason: "reset".into(),
            source: None,
        };
        let (cmd, mut rx) = close();
        fail_command(cmd, &lost);
        assert_eq!(rx.try_recv().unwrap(), Err(lost));
    }
}
