//! A publish on its way: [`Publish`], the [`PublishCell`] it travels in to the connection
//! task and its outcome comes back through ([`ConfirmSender`], [`Confirmed`]).

use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use tokio::sync::OwnedSemaphorePermit;

use crate::error::Error;
use crate::proto::{ChannelId, Returned};
use crate::wire::{BasicProperties, BasicPublish};

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
    pub(crate) args: BasicPublish,
    pub(crate) properties: BasicProperties,
    pub(crate) body: Bytes,
    /// In confirm mode: the window slot, held until the confirm (answered through the
    /// publish's cell).
    pub(crate) window: Option<OwnedSemaphorePermit>,
    /// Its share of the publish byte budget.
    pub(crate) bytes: OwnedSemaphorePermit,
}

/// What a publish hands the connection task, and what its confirm comes back through:
/// one object per publish, taken from its channel's pool ([`ChannelShared::publish_cell`](super::shared::ChannelShared::publish_cell))
/// and given back when both sides are done with it, so that a steady publisher allocates
/// nothing per message (no box for the command, no oneshot channel for the confirm).
#[derive(Debug, Default)]
pub(crate) struct PublishCell {
    state: Mutex<CellState>,
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

    /// The publish, for the task.
    pub(crate) fn take_publish(&self) -> Option<Publish> {
        self.lock().publish.take()
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
                *c.state.get_mut().unwrap_or_else(|e| e.into_inner()) = CellState::default();
                true
            }
            None => false,
        }
    }
}

/// The task's side of a [`PublishCell`]: answers the publish's [`Confirmation`](super::Confirmation) once.
/// Dropped without an answer, the confirmation resolves as for a closed channel
/// (outcome unknown), as a dropped oneshot sender did.
#[derive(Debug)]
pub(crate) struct ConfirmSender {
    cell: Option<Arc<PublishCell>>,
}

impl ConfirmSender {
    pub(crate) fn new(cell: Arc<PublishCell>) -> Self {
        ConfirmSender { cell: Some(cell) }
    }

    /// Answers the confirmation (ignored if it was dropped).
    pub(crate) fn send(mut self, outcome: Result<Confirmed, Error>) {
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
    use crate::client::shared::ChannelShared;
    use crate::proto::ChannelId;

    fn channel() -> ChannelShared {
        {
            let id = ChannelId { number: 1, epoch: 0 };
            ChannelShared::new(id, 8, Arc::new(crate::proto::Outstanding::new(id, 0)))
        }
    }

    #[test]
    fn a_sender_answers_once_and_a_dropped_one_abandons() {
        let cell = Arc::new(PublishCell::default());
        ConfirmSender::new(cell.clone()).send(Ok(Confirmed::Ack));
        assert_eq!(cell.take_outcome(), Some(Ok(Confirmed::Ack)));
        assert!(!cell.lock().abandoned);
        drop(ConfirmSender::new(cell.clone()));
        let state = cell.lock();
        assert!(
            state.abandoned && state.outcome.is_none(),
            "outcome unknown, not an answer"
        );
    }

    #[test]
    fn cells_are_reused_once_nobody_holds_them() {
        let ch = channel();
        let mut cell = ch.publish_cell();
        let first = Arc::as_ptr(&cell);
        let task = cell.clone();
        ConfirmSender::new(task).send(Ok(Confirmed::Nack));
        ch.recycle(&mut cell);
        drop(cell);
        assert_eq!(ch.cells_pooled(), 1);
        let mut cell = ch.publish_cell();
        assert_eq!(Arc::as_ptr(&cell), first, "the same cell again");
        assert_eq!(ch.cells_pooled(), 0);
        assert!(cell.take_outcome().is_none(), "reset for the next publish");
        let held = cell.clone();
        ch.recycle(&mut cell);
        drop(cell);
        assert_eq!(ch.cells_pooled(), 0, "still held elsewhere: not reused");
        drop(held);
    }
}
