//! Publisher confirms: [`Confirmation`], the future of one publish's outcome.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::oneshot;

use super::shared::{ChannelShared, ConnShared};
use crate::error::Error;
use crate::proto::Returned;

/// The broker's verdict on one publish.
///
/// There is no "unknown" variant: when the channel or connection closes before the
/// confirm arrives, the [`Confirmation`] resolves to an `Err` (for instance
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

/// The outcome of a publish; `.await` it to get the broker's [`Confirmed`] verdict.
///
/// Dropping it does not cancel the publish (the message was already sent); the window
/// slot it holds is released when the confirm arrives, not when this is dropped.
#[derive(Debug)]
pub struct Confirmation {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    Ready(Option<Result<Confirmed, Error>>),
    Waiting {
        rx: oneshot::Receiver<Result<Confirmed, Error>>,
        conn: Arc<ConnShared>,
        channel: Arc<ChannelShared>,
    },
}

impl Confirmation {
    pub(crate) fn ready(result: Result<Confirmed, Error>) -> Self {
        Confirmation {
            inner: Inner::Ready(Some(result)),
        }
    }

    pub(crate) fn waiting(
        rx: oneshot::Receiver<Result<Confirmed, Error>>,
        conn: Arc<ConnShared>,
        channel: Arc<ChannelShared>,
    ) -> Self {
        Confirmation {
            inner: Inner::Waiting { rx, conn, channel },
        }
    }
}

impl Future for Confirmation {
    type Output = Result<Confirmed, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.inner {
            Inner::Ready(result) => Poll::Ready(
                result
                    .take()
                    .unwrap_or_else(|| Err(Error::InvalidArgument("Confirmation polled after it completed".into()))),
            ),
            Inner::Waiting { rx, conn, channel } => match Pin::new(rx).poll(cx) {
                Poll::Pending => {
                    // The publish may still wait in the queue of a deaf task.
                    conn.wake.command_sent();
                    Poll::Pending
                }
                Poll::Ready(Ok(result)) => Poll::Ready(result),
                // The task dropped the sender without an answer: the channel or the
                // connection is gone, and the outcome is unknown.
                Poll::Ready(Err(_)) => Poll::Ready(Err(channel
                    .closed
                    .get()
                    .cloned()
                    .unwrap_or_else(|| conn.close_reason()))),
            },
        }
    }
}
