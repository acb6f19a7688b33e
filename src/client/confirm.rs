//! Publisher confirms: [`Confirmation`], the future of one publish's outcome.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::publish::{Confirmed, PublishCell};
use super::shared::ChannelShared;
use crate::error::Error;

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
        cell: Arc<PublishCell>,
        channel: Arc<ChannelShared>,
    },
}

impl Confirmation {
    pub(crate) fn ready(result: Result<Confirmed, Error>) -> Self {
        Confirmation {
            inner: Inner::Ready(Some(result)),
        }
    }

    pub(crate) fn waiting(cell: Arc<PublishCell>, channel: Arc<ChannelShared>) -> Self {
        Confirmation {
            inner: Inner::Waiting { cell, channel },
        }
    }
}

impl Drop for Confirmation {
    /// The cell goes back to its channel's pool once nobody else holds it.
    fn drop(&mut self) {
        if let Inner::Waiting { cell, channel, .. } = std::mem::replace(&mut self.inner, Inner::Ready(None)) {
            channel.recycle(cell);
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
            Inner::Waiting { cell, channel } => match cell.poll_outcome(cx) {
                Poll::Ready(Some(outcome)) => Poll::Ready(outcome),
                // The task let the publish go without an answer: the channel or the
                // connection is gone, and the outcome is unknown.
                Poll::Ready(None) => Poll::Ready(Err(channel.end_reason())),
                Poll::Pending => {
                    // The publish may still wait in the queue of a deaf task.
                    channel.wake.command_sent();
                    Poll::Pending
                }
            },
        }
    }
}
