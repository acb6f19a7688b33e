//! A publish on its way: [`Publish`], the [`PublishCell`] it travels in to the connection
//! task and its outcome comes back through ([`ConfirmSender`], [`Confirmed`]).

use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use tokio::sync::Semaphore;

use crate::error::Error;
use crate::proto::{ChannelId, Returned, Route};
use crate::wire::{BasicProperties, ShortStr};

/// The broker's verdict on one publish.
///
/// There is no "unknown" variant: when the channel or connection closes before the
/// confirm arrives, the [`Confirmation`](super::Confirmation) resolves to an `Err` (for instance
/// [`Error::ChannelClosed`] or [`Error::ConnectionLost`]). That error means the outcome
/// is **unknown**: the message may or may not have been routed and stored. It is not a
/// nack; republish it if duplicates are acceptable (consumers can deduplicate by
/// `message_id`).
#[derive(Debug, Clone, PartialEq)]
pub enum Confirmed {
    /// `basic.ack`: the broker took responsibility for the message (for a persistent
    /// message on a durable queue, it is on disk).
    Ack,
    /// `basic.nack`: the broker refused the message (e.g. a full queue with
    /// `x-overflow = reject-publish`, or an internal error). Safe to republish later.
    Nack,
    /// The message was `mandatory` and could not be routed: the broker sent it back
    /// (`basic.return`) and then confirmed the publish with `ack` (usually true). The
    /// message reached no queue.
    Returned {
        /// True if the confirm that followed the return was an ack.
        ack: bool,
        /// The message as the broker returned it, with the reply code (312 NO_ROUTE).
        message: Box<Returned>,
    },
    /// The channel is not in confirm mode: the message was handed to the connection
    /// and nothing more will be known about it. Call
    /// [`Channel::confirm_select`](super::Channel::confirm_select) to get real confirms.
    Sent,
}

impl Confirmed {
    /// True for [`Confirmed::Ack`]: the message is routed and the broker owns it.
    pub fn is_ack(&self) -> bool {
        matches!(self, Confirmed::Ack)
    }
}

/// A publish, in a [`PublishCell`] to keep the command queue's slots small.
#[derive(Debug)]
pub(crate) struct Publish {
    pub(crate) channel: ChannelId,
    pub(crate) names: PublishNames,
    pub(crate) mandatory: bool,
    pub(crate) properties: BasicProperties,
    pub(crate) body: Bytes,
    /// In confirm mode: the publish holds one slot of its channel's window (taken and
    /// forgotten by the publisher), which goes back to the cell's
    /// [`window`](PublishCell::new) with the confirm: see [`ConfirmSender`].
    pub(crate) window_slot: bool,
    /// Its share of the connection's publish byte budget: permits of
    /// [`ConnShared::publish_bytes`](super::shared::ConnShared::publish_bytes), taken and
    /// forgotten by the publisher, given back by the task once sent (or, kept for
    /// republish, once confirmed), or by the cell if the task never takes the publish.
    pub(crate) budget: u32,
}

/// Names of [`PublishNames::INLINE`] bytes or fewer in all (nearly every exchange and
/// routing key) are copied into the publish: neither thread then touches a reference
/// count for them, nor allocates. Longer ones share the channel's copy of the last
/// names ([`ChannelShared::publish_names`](super::shared::ChannelShared::publish_names)).
#[derive(Debug, Clone)]
pub(crate) enum PublishNames {
    Inline {
        /// `exchange` then `routing_key`.
        bytes: [u8; PublishNames::INLINE],
        exchange_len: u8,
        routing_key_len: u8,
    },
    Shared {
        exchange: ShortStr,
        routing_key: ShortStr,
    },
}

impl PublishNames {
    /// The most bytes of names kept inline.
    pub(crate) const INLINE: usize = 64;

    /// The names, inline if they fit; `None` if they do not.
    pub(crate) fn inline(exchange: &str, routing_key: &str) -> Option<Self> {
        let (x, k) = (exchange.as_bytes(), routing_key.as_bytes());
        if x.len() + k.len() > Self::INLINE {
            return None;
        }
        let mut bytes = [0; Self::INLINE];
        bytes[..x.len()].copy_from_slice(x);
        bytes[x.len()..x.len() + k.len()].copy_from_slice(k);
        Some(PublishNames::Inline {
            bytes,
            exchange_len: x.len() as u8,
            routing_key_len: k.len() as u8,
        })
    }

    /// The exchange's bytes (UTF-8, at most 255).
    pub(crate) fn exchange(&self) -> &[u8] {
        match self {
            PublishNames::Inline {
                bytes, exchange_len, ..
            } => &bytes[..usize::from(*exchange_len)],
            PublishNames::Shared { exchange, .. } => exchange.as_bytes(),
        }
    }

    /// The routing key's bytes (UTF-8, at most 255).
    pub(crate) fn routing_key(&self) -> &[u8] {
        match self {
            PublishNames::Inline {
                bytes,
                exchange_len,
                routing_key_len,
            } => {
                let at = usize::from(*exchange_len);
                &bytes[at..at + usize::from(*routing_key_len)]
            }
            PublishNames::Shared { routing_key, .. } => routing_key.as_bytes(),
        }
    }

    /// Where the publish goes, for the state machine.
    pub(crate) fn route(&self, mandatory: bool) -> Route<'_> {
        Route {
            exchange: self.exchange(),
            routing_key: self.routing_key(),
            mandatory,
        }
    }
}

/// What a publish hands the connection task, and what its confirm comes back through:
/// one object per publish, taken from its channel's pool ([`ChannelShared::publish_cell`](super::shared::ChannelShared::publish_cell))
/// and given back when both sides are done with it, so that a steady publisher allocates
/// nothing per message (no box for the command, no oneshot channel for the confirm).
///
/// A window slot and a budget share travel as plain counts, without a reference count
/// of their own: the cell keeps the semaphores they come from since its creation, and
/// whoever holds them (the publish in the cell, then the task) gives them back.
#[derive(Debug, Default)]
pub(crate) struct PublishCell {
    state: Mutex<CellState>,
    /// The window of the channel whose pool the cell is from.
    window: Option<Arc<Semaphore>>,
    /// The connection's publish byte budget.
    budget: Option<Arc<Semaphore>>,
}

#[derive(Debug, Default)]
struct CellState {
    /// Set by the publisher, taken by the task.
    publish: Option<Publish>,
    /// The confirm's outcome, until the [`Confirmation`](super::Confirmation) takes it.
    outcome: Option<Result<Confirmed, Error>>,
    waker: Option<Waker>,
    /// The task let the publish go without an outcome (the channel or connection is
    /// gone): the outcome is unknown.
    abandoned: bool,
}

impl PublishCell {
    /// A cell for a channel whose window is `window`, on a connection whose publish byte
    /// budget is `budget`.
    pub(crate) fn new(window: Arc<Semaphore>, budget: Arc<Semaphore>) -> Self {
        PublishCell {
            state: Mutex::default(),
            window: Some(window),
            budget: Some(budget),
        }
    }

    fn lock(&self) -> MutexGuard<'_, CellState> {
        // A panic while locked leaves plain data behind: go on with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Puts the publish in; `cell` must be fresh from the pool (nobody else holds it).
    pub(crate) fn fill(cell: &mut Arc<PublishCell>, publish: Publish) {
        match Arc::get_mut(cell) {
            Some(c) => c.state.get_mut().unwrap_or_else(|e| e.into_inner()).publish = Some(publish),
            None => cell.lock().publish = Some(publish),
        }
    }

    /// The publish, for the task, which gives back its window slot and budget share.
    pub(crate) fn take_publish(&self) -> Option<Publish> {
        self.lock().publish.take()
    }

    /// Drops the publish the task will never send, giving its budget share back; returns
    /// whether it held a window slot, which the caller hands to the [`ConfirmSender`]
    /// that answers it. `None` when there was no publish.
    pub(crate) fn discard_publish(&self) -> Option<bool> {
        let p = self.lock().publish.take()?;
        self.give_back_budget(p.budget);
        Some(p.window_slot)
    }

    fn give_back_budget(&self, share: u32) {
        if let Some(budget) = &self.budget {
            budget.add_permits(share as usize);
        }
    }

    fn give_back_slot(&self) {
        if let Some(window) = &self.window {
            window.add_permits(1);
        }
    }

    /// The outcome the task answered: `Ready(None)` when the task let the publish go
    /// without one (the outcome is unknown); otherwise `cx` is woken when it comes.
    pub(crate) fn poll_outcome(&self, cx: &mut Context<'_>) -> Poll<Option<Result<Confirmed, Error>>> {
        let mut state = self.lock();
        if let Some(outcome) = state.outcome.take() {
            return Poll::Ready(Some(outcome));
        }
        if state.abandoned {
            return Poll::Ready(None);
        }
        match &mut state.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            w => *w = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// The outcome the task answered, if any.
    #[cfg(test)]
    pub(crate) fn take_outcome(&self) -> Option<Result<Confirmed, Error>> {
        self.lock().outcome.take()
    }

    /// Made ready for the next publish; `cell` must be held by nobody else.
    pub(crate) fn reset(cell: &mut Arc<PublishCell>) -> bool {
        match Arc::get_mut(cell) {
            Some(c) => {
                c.release_unsent();
                true
            }
            None => false,
        }
    }

    /// Gives back the window slot and budget share of a publish the task never took (its
    /// command was dropped: a cancelled send, or a task that ended), and empties the
    /// cell. Nobody else holds it, so no lock is taken.
    fn release_unsent(&mut self) {
        let state = std::mem::take(self.state.get_mut().unwrap_or_else(|e| e.into_inner()));
        if let Some(p) = state.publish {
            self.give_back_budget(p.budget);
            if p.window_slot {
                self.give_back_slot();
            }
        }
    }
}

impl Drop for PublishCell {
    fn drop(&mut self) {
        self.release_unsent();
    }
}

/// The task's side of a [`PublishCell`]: answers the publish's [`Confirmation`](super::Confirmation) once.
/// Dropped without an answer, the confirmation resolves as for a closed channel
/// (outcome unknown), as a dropped oneshot sender did.
///
/// It holds the publish's window slot, if any, and gives it back before it answers
/// (whoever the answer wakes finds the slot free), or when dropped; or hands it to the
/// task to give back with others ([`take_slot`](Self::take_slot)).
#[derive(Debug)]
pub(crate) struct ConfirmSender {
    cell: Option<Arc<PublishCell>>,
    window_slot: bool,
}

impl ConfirmSender {
    /// The sender for `cell`'s publish, holding a window slot if `window_slot`.
    pub(crate) fn new(cell: Arc<PublishCell>, window_slot: bool) -> Self {
        ConfirmSender {
            cell: Some(cell),
            window_slot,
        }
    }

    /// The window the sender's slot belongs to, which the caller must now give the slot
    /// back to; `None` when it holds none.
    pub(crate) fn take_slot(&mut self) -> Option<&Semaphore> {
        if !std::mem::take(&mut self.window_slot) {
            return None;
        }
        self.cell.as_ref().and_then(|cell| cell.window.as_deref())
    }

    fn release_slot(&mut self) {
        if std::mem::take(&mut self.window_slot)
            && let Some(cell) = &self.cell
        {
            cell.give_back_slot();
        }
    }

    /// Answers the confirmation (ignored if it was dropped).
    pub(crate) fn send(mut self, outcome: Result<Confirmed, Error>) {
        self.release_slot();
        if let Some(cell) = self.cell.take() {
            let waker = {
                let mut state = cell.lock();
                state.outcome = Some(outcome);
                state.waker.take()
            };
            if let Some(w) = waker {
                w.wake();
            }
        }
    }
}

impl Drop for ConfirmSender {
    fn drop(&mut self) {
        self.release_slot();
        if let Some(cell) = self.cell.take() {
            let waker = {
                let mut state = cell.lock();
                state.abandoned = true;
                state.waker.take()
            };
            if let Some(w) = waker {
                w.wake();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::shared::{ChannelShared, ConnShared};
    use crate::proto::ChannelId;
    use crate::wire::ShortStr;

    fn channel() -> ChannelShared {
        channel_of(&ConnShared::for_tests())
    }

    fn channel_of(conn: &Arc<ConnShared>) -> ChannelShared {
        let id = ChannelId { number: 1, epoch: 0 };
        ChannelShared::new(id, 8, Arc::new(crate::proto::Outstanding::new(id, 0)), conn)
    }

    #[test]
    fn a_sender_answers_once_and_a_dropped_one_abandons() {
        let cell = Arc::new(PublishCell::default());
        ConfirmSender::new(cell.clone(), false).send(Ok(Confirmed::Ack));
        assert_eq!(cell.take_outcome(), Some(Ok(Confirmed::Ack)));
        assert!(!cell.lock().abandoned);
        drop(ConfirmSender::new(cell.clone(), false));
        let state = cell.lock();
        assert!(
            state.abandoned && state.outcome.is_none(),
            "outcome unknown, not an answer"
        );
    }

    #[test]
    fn short_names_are_kept_inline_and_read_back_whole() {
        let key = "ключ.é";
        for (exchange, routing_key) in [("", ""), ("amq.topic", key), ("x", &*"k".repeat(63))] {
            let names = PublishNames::inline(exchange, routing_key).expect("fits");
            assert!(matches!(names, PublishNames::Inline { .. }));
            assert_eq!(names.exchange(), exchange.as_bytes());
            assert_eq!(names.routing_key(), routing_key.as_bytes());
            let route = names.route(true);
            assert_eq!(
                (route.exchange, route.routing_key, route.mandatory),
                (exchange.as_bytes(), routing_key.as_bytes(), true)
            );
        }
        assert!(
            PublishNames::inline("x", &"k".repeat(64)).is_none(),
            "65 bytes do not fit"
        );
        let shared = PublishNames::Shared {
            exchange: ShortStr::from_static("ex"),
            routing_key: ShortStr::try_from("k".repeat(200)).unwrap(),
        };
        assert_eq!((shared.exchange(), shared.routing_key().len()), (&b"ex"[..], 200));
    }

    /// A channel and its connection's publish byte budget.
    struct Fixture {
        ch: ChannelShared,
        budget: Arc<Semaphore>,
    }

    const BUDGET: usize = 1000;
    const SHARE: u32 = 300;

    impl Fixture {
        fn new() -> Self {
            let conn = ConnShared::for_tests();
            let budget = conn.publish_bytes.clone();
            budget.add_permits(BUDGET - budget.available_permits());
            Fixture {
                ch: channel_of(&conn),
                budget,
            }
        }

        /// A publish in a fresh cell, holding a budget share and (in confirm mode) a
        /// window slot, taken as a publisher takes them: the permits forgotten.
        fn filled(&self, confirm: bool) -> Arc<PublishCell> {
            if confirm {
                self.ch.window.try_acquire().expect("room in the window").forget();
            }
            self.budget.try_acquire_many(SHARE).expect("budget").forget();
            let mut cell = self.ch.publish_cell();
            let publish = Publish {
                channel: ChannelId { number: 1, epoch: 0 },
                names: PublishNames::inline("", "q").expect("short"),
                mandatory: false,
                properties: BasicProperties::default(),
                body: Bytes::new(),
                window_slot: confirm,
                budget: SHARE,
            };
            PublishCell::fill(&mut cell, publish);
            cell
        }

        /// (free window slots, free budget)
        fn free(&self) -> (usize, usize) {
            (self.ch.window.available_permits(), self.budget.available_permits())
        }
    }

    #[test]
    fn a_window_slot_comes_back_once_whichever_way_the_confirm_ends() {
        let f = Fixture::new();
        let window = f.ch.window.available_permits();
        // Answered, dropped unanswered, handed to the task for a batch release.
        for end in 0..3 {
            let cell = f.filled(true);
            let p = cell.take_publish().expect("filled");
            let mut reply = ConfirmSender::new(cell.clone(), p.window_slot);
            f.budget.add_permits(p.budget as usize);
            assert_eq!(f.free(), (window - 1, BUDGET), "the slot is held while unconfirmed");
            match end {
                0 => reply.send(Ok(Confirmed::Ack)),
                1 => drop(reply),
                _ => {
                    reply.take_slot().expect("holds a slot").add_permits(1);
                    reply.send(Ok(Confirmed::Ack));
                }
            }
            assert_eq!(f.free(), (window, BUDGET), "end {end}: back, once");
            f.ch.recycle(cell);
            assert_eq!(f.free(), (window, BUDGET), "end {end}: not again on reuse");
        }
    }

    #[test]
    fn a_publish_the_task_never_took_gives_back_its_slot_and_budget() {
        let f = Fixture::new();
        let full = f.free();
        for confirm in [true, false] {
            // The command was dropped (a cancelled send): the last holder drops the cell.
            let cell = f.filled(confirm);
            assert_ne!(f.free(), full);
            drop(cell);
            assert_eq!(f.free(), full, "dropped, confirm mode {confirm}");
            // The task ended and the confirmation resets the cell for reuse.
            let mut cell = f.filled(confirm);
            assert!(PublishCell::reset(&mut cell));
            assert_eq!(f.free(), full, "reset, confirm mode {confirm}");
            drop(cell);
            assert_eq!(f.free(), full, "once");
            // A command that will never run is failed.
            let cell = f.filled(confirm);
            assert_eq!(
                cell.discard_publish(),
                Some(confirm),
                "says whether a slot is to answer for"
            );
            assert_eq!(cell.discard_publish(), None);
            assert_eq!(f.free().1, full.1, "its budget share is back");
            if confirm {
                ConfirmSender::new(cell.clone(), true).send(Err(Error::ConnectionLost {
                    reason: "gone".into(),
                    source: None,
                }));
            }
            drop(cell);
            assert_eq!(f.free(), full, "failed, confirm mode {confirm}");
        }
    }

    #[test]
    fn cells_are_reused_once_nobody_holds_them() {
        let ch = channel();
        let cell = ch.publish_cell();
        let first = Arc::as_ptr(&cell);
        let task = cell.clone();
        ConfirmSender::new(task, false).send(Ok(Confirmed::Nack));
        ch.recycle(cell);
        assert_eq!(ch.cells_pooled(), 1);
        let cell = ch.publish_cell();
        assert_eq!(Arc::as_ptr(&cell), first, "the same cell again");
        assert_eq!(ch.cells_pooled(), 0);
        assert!(cell.take_outcome().is_none(), "reset for the next publish");
        let held = cell.clone();
        ch.recycle(cell);
        assert_eq!(ch.cells_pooled(), 0, "still held elsewhere: not reused");
        drop(held);
    }
}
