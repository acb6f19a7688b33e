//! Consumers ([`Consumer`], a bounded `Stream`) and the messages they yield ([`Delivery`]).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Instant;

use super::command::Command;
use super::handle::ChannelInner;
use super::handoff::DeliveryReceiver;
use super::shared::ConsumerEnd;
use crate::error::Error;
use crate::proto::{self, DeliveryTag, Settle};
use crate::wire::{BasicCancel, Method, ShortStr};

/// A message from a consumer or from [`Channel::basic_get`](super::Channel::basic_get):
/// the state machine's [`proto::Delivery`] with the channel that settles it.
///
/// Unless it came with `no_ack`, settle it exactly once with [`ack`](Self::ack),
/// [`nack`](Self::nack) or [`reject`](Self::reject); until then the broker keeps it
/// and counts it against the channel's prefetch. One ledger per channel answers whether
/// a settle goes out, whoever makes it (this handle, a clone,
/// [`Channel::basic_ack`](super::Channel::basic_ack) and friends): a second settle of the
/// same delivery, one after a `multiple` settle covered it or after
/// [`Channel::basic_recover`](super::Channel::basic_recover), or one of a no-ack delivery
/// is refused with [`Error::UnknownDeliveryTag`] and nothing is sent, so the channel
/// stays open; a settle after its channel closed, or from before a recovery, is
/// [`Error::StaleDelivery`].
///
/// Settling queues the ack for the connection task and returns without waiting for it
/// (it waits only while the command queue is full), so a consumer acking each message
/// costs one queue push per message.
pub type Delivery = proto::Delivery<Settler>;

/// What settles a [`Delivery`]: its channel.
#[derive(Debug, Clone)]
pub struct Settler {
    channel: Arc<ChannelInner>,
}

impl Settler {
    pub(crate) fn new(channel: Arc<ChannelInner>) -> Self {
        Settler { channel }
    }
}

impl proto::Delivery<Settler> {
    /// Acknowledges it: the broker forgets the message.
    pub async fn ack(&self) -> Result<(), Error> {
        self.settle(Settle::Ack { multiple: false }).await
    }

    /// Negatively acknowledges it: requeued if `requeue`, otherwise dropped or
    /// dead-lettered (if the queue has a dead-letter exchange).
    pub async fn nack(&self, requeue: bool) -> Result<(), Error> {
        self.settle(Settle::Nack {
            multiple: false,
            requeue,
        })
        .await
    }

    /// Rejects it: like [`nack`](Self::nack) (`basic.reject`, the AMQP standard form).
    pub async fn reject(&self, requeue: bool) -> Result<(), Error> {
        self.settle(Settle::Reject { requeue }).await
    }

    async fn settle(&self, how: Settle) -> Result<(), Error> {
        self.settler.channel.settle(self.delivery_tag, how).await
    }
}

/// The result of a successful [`Channel::basic_get`](super::Channel::basic_get). It
/// dereferences to its [`Delivery`]: `message.body`, `message.ack()`.
#[derive(Debug, Clone)]
pub struct GetMessage {
    /// The message.
    pub delivery: Delivery,
    /// Messages still ready in the queue after this one.
    pub message_count: u32,
}

impl std::ops::Deref for GetMessage {
    type Target = Delivery;

    fn deref(&self) -> &Delivery {
        &self.delivery
    }
}

/// A consumer: a bounded stream of [`Delivery`] items.
///
/// Read it with [`next`](Self::next) or as a `futures_core::Stream`. The connection
/// hands over deliveries in batches (all those of one socket read), so the buffer
/// holds at most twice the larger of the channel's prefetch count and
/// [`ConnectionConfig::consumer_buffer`](super::ConnectionConfig::consumer_buffer)
/// deliveries: the batch being yielded and the queue behind it, and together at most
/// [`ConnectionConfig::consumer_buffer_bytes`](super::ConnectionConfig::consumer_buffer_bytes)
/// bytes (or one delivery). While the queue is full the connection stops reading from
/// the socket (acks still go out). Set a
/// prefetch with [`Channel::basic_qos`](super::Channel::basic_qos) so that this never
/// happens.
///
/// Acks made while the consumer works through its deliveries are sent together when it
/// comes back to an empty queue (or at the connection's next read, if that is sooner),
/// or after a millisecond at the latest: a consumer that acks each message costs one
/// wake-up of the connection per batch, not one per message.
///
/// The stream ends (`None`) after [`cancel`](Self::cancel). When the server cancels the
/// consumer (its queue was deleted, or with RabbitMQ 4.3 it kept a delivery past its
/// consumer timeout: [`CancelReason`](crate::error::CancelReason)) or the channel or
/// connection closes, the last item is an `Err` saying why ([`Error::ConsumerCancelled`]
/// for a server cancel, [`Error::ChannelClosed`], [`Error::ConnectionLost`]...), then
/// `None`.
///
/// Dropping a consumer cancels it and requeues the deliveries it had buffered but not
/// yielded. To stop without losing or stranding anything, [`drain`](Self::drain) it.
#[derive(Debug)]
pub struct Consumer {
    rx: DeliveryReceiver,
    end: Arc<ConsumerEnd>,
    tag: ShortStr,
    no_ack: bool,
    finished: bool,
    channel: Arc<ChannelInner>,
    /// The last delivery it yielded that needs a settle ([`drain`](Self::drain) waits
    /// for the settles up to it).
    last_yielded: Option<DeliveryTag>,
}

/// What [`Consumer::drain`] did.
#[derive(Debug)]
#[non_exhaustive]
pub struct Drained {
    /// Deliveries buffered but never yielded, requeued (`basic.reject` with requeue): the
    /// broker delivers them again, to this or another consumer.
    pub requeued: usize,
    /// For a no-ack consumer: deliveries buffered but never yielded, handed out here (the
    /// broker already forgot them; nothing can requeue them).
    pub buffered: Vec<Delivery>,
    /// Deliveries still unsettled at the deadline: held by the application, or dropped
    /// without a settle (0: every one was acked, nacked or rejected in time).
    pub unsettled: usize,
}

impl Consumer {
    pub(crate) fn new(
        rx: DeliveryReceiver,
        end: Arc<ConsumerEnd>,
        tag: ShortStr,
        no_ack: bool,
        channel: Arc<ChannelInner>,
    ) -> Self {
        Consumer {
            rx,
            end,
            tag,
            no_ack,
            finished: false,
            channel,
            last_yielded: None,
        }
    }

    /// The consumer tag (the server's choice if none was given).
    pub fn tag(&self) -> &ShortStr {
        &self.tag
    }

    /// The next delivery; `None` once the stream ended.
    pub async fn next(&mut self) -> Option<Result<Delivery, Error>> {
        std::future::poll_fn(|cx| self.poll_item(cx)).await
    }

    /// Cancels the consumer (`basic.cancel`) and waits for `cancel-ok`. Deliveries
    /// already buffered are still yielded, then the stream ends.
    pub async fn cancel(&self) -> Result<(), Error> {
        let cancel = BasicCancel {
            consumer_tag: self.tag.clone(),
            no_wait: false,
        };
        let timeout = self.channel.handle.shared.limits.rpc_timeout;
        self.channel.rpc(Method::BasicCancel(cancel), timeout).await.map(drop)
    }

    /// Stops consuming gracefully, by `deadline`: cancels the consumer (`basic.cancel`,
    /// waiting for `cancel-ok`, after which the broker sends it nothing more), requeues
    /// the deliveries buffered but never yielded (a no-ack consumer hands them out in
    /// [`Drained::buffered`] instead), then waits until every delivery this consumer
    /// yielded is settled ([`Delivery::ack`], `nack`, `reject`, or through
    /// [`Channel::basic_ack`](super::Channel::basic_ack) and friends) and the settle is
    /// written, and returns. It reads the channel's settle ledger, so it waits for the
    /// channel's deliveries up to the last this consumer yielded (with one consumer per
    /// channel, exactly its own). A delivery dropped unsettled stays unacknowledged at
    /// the broker until its channel closes: it is still waited for, and counted in
    /// [`Drained::unsettled`] at the deadline. If the cancel itself does not finish by the deadline, the
    /// error is [`Error::Timeout`] `{ operation: "drain" }` and the consumer is dropped
    /// (which cancels it and requeues its buffer). A consumer that already ended (the
    /// server cancelled it, its channel closed) is not cancelled again; its buffer is
    /// requeued where the channel still allows it.
    ///
    /// ```no_run
    /// # async fn run(consumer: warren::client::Consumer) -> Result<(), warren::Error> {
    /// use std::time::{Duration, Instant};
    /// // On shutdown: stop taking work, let the workers finish for up to 10 s.
    /// let drained = consumer.drain(Instant::now() + Duration::from_secs(10)).await?;
    /// if drained.unsettled > 0 {
    ///     eprintln!("{} deliveries still in progress", drained.unsettled);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn drain(mut self, deadline: Instant) -> Result<Drained, Error> {
        let deadline = tokio::time::Instant::from_std(deadline);
        // A consumer the server cancelled, or whose channel closed, has nothing to cancel.
        if !self.finished && self.end.reason.get().is_none() {
            tokio::time::timeout_at(deadline, self.cancel())
                .await
                .unwrap_or(Err(Error::Timeout { operation: "drain" }))?;
        }
        // After cancel-ok the stream ends once the buffer is through.
        let (mut requeued, mut buffered) = (0, Vec::new());
        let generation = self.channel.handle.shared.generation.load(Ordering::Acquire);
        while !self.finished {
            let next = std::future::poll_fn(|cx| self.rx.poll_next(cx));
            let Ok(next) = tokio::time::timeout_at(deadline, next).await else {
                break; // the drop requeues the rest
            };
            let Some(d) = next else {
                self.finished = true;
                break;
            };
            if self.no_ack {
                buffered.push(d.with_settler(Settler::new(self.channel.clone())));
            } else if d.delivery_tag.generation() == generation
                && self
                    .channel
                    .settle(d.delivery_tag, Settle::Reject { requeue: true })
                    .await
                    .is_ok()
            {
                requeued += 1;
            }
        }
        let unsettled = self.settled_by(deadline).await;
        Ok(Drained {
            requeued,
            buffered,
            unsettled,
        })
    }

    /// Waits until the channel's ledger holds no delivery up to the last this consumer
    /// yielded (each was settled, and the settle written), or `deadline`; returns how
    /// many are left. The ledger is the state machine's, which wakes nobody: it is
    /// looked at every few milliseconds, as befits a shutdown.
    async fn settled_by(&self, deadline: tokio::time::Instant) -> usize {
        let Some(last) = self.last_yielded else { return 0 };
        loop {
            let left = self.channel.shared.acks.outstanding_through(last);
            let now = tokio::time::Instant::now();
            if left == 0 || now >= deadline {
                return left;
            }
            tokio::time::sleep_until(deadline.min(now + std::time::Duration::from_millis(5))).await;
        }
    }

    fn poll_item(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Delivery, Error>>> {
        if self.finished {
            return Poll::Ready(None);
        }
        loop {
            let d = match self.rx.poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    self.finished = true;
                    return Poll::Ready(self.end.reason.get().cloned().map(Err));
                }
                Poll::Ready(Some(d)) => d,
            };
            let current = self.channel.handle.shared.generation.load(Ordering::Acquire);
            if !self.no_ack && d.delivery_tag.generation() != current {
                // Buffered before the connection was lost: the broker requeued it and
                // redelivers it on the recovered connection; this copy could not be
                // acked any more.
                continue;
            }
            if !self.no_ack {
                self.last_yielded = Some(d.delivery_tag);
            }
            return Poll::Ready(Some(Ok(d.with_settler(Settler::new(self.channel.clone())))));
        }
    }
}

impl futures_core::Stream for Consumer {
    type Item = Result<Delivery, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.poll_item(cx)
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let rest = self.rx.close();
        let requeue = if self.no_ack {
            Vec::new()
        } else {
            rest.into_iter().map(|d| d.delivery_tag).collect()
        };
        let cmd = Command::ConsumerDropped {
            channel: self.channel.shared.id,
            consumer_tag: self.tag.clone(),
            requeue,
        };
        self.channel.handle.send_from_drop(cmd);
    }
}
