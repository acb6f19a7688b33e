//! Consumers ([`Consumer`], a bounded `Stream`) and the messages they yield ([`Delivery`]).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;

use super::command::{Command, Settle};
use super::handle::ChannelInner;
use super::handoff::DeliveryReceiver;
use super::shared::ConsumerEnd;
use crate::error::Error;
use crate::proto::{self, DeliveryTag};
use crate::wire::{BasicCancel, BasicProperties, Method, ShortStr};

/// A message from a consumer or from [`Channel::basic_get`](super::Channel::basic_get).
///
/// Unless it came with `no_ack`, settle it exactly once with [`ack`](Self::ack),
/// [`nack`](Self::nack) or [`reject`](Self::reject); until then the broker keeps it
/// and counts it against the channel's prefetch. A second settle of the same delivery
/// is refused with [`Error::UnknownDeliveryTag`] and nothing is sent, so the channel
/// stays open; a settle after its channel closed, or from before a recovery, is
/// [`Error::StaleDelivery`].
///
/// Settling queues the ack for the connection task and returns without waiting for it
/// (it waits only while the command queue is full), so a consumer acking each message
/// costs one queue push per message. A clone is a second handle on the same message:
/// settling through both is caught by the connection, which sends nothing the second
/// time and logs it; [`Channel::basic_ack`](super::Channel::basic_ack) waits for the
/// connection's verdict and returns it.
#[derive(Debug)]
pub struct Delivery {
    /// The tag to settle it with (also accepted by
    /// [`Channel::basic_ack`](super::Channel::basic_ack) and friends).
    pub delivery_tag: DeliveryTag,
    /// The consumer it was delivered to (empty for `basic.get`).
    pub consumer_tag: ShortStr,
    /// The broker delivered it before and it was not acknowledged.
    pub redelivered: bool,
    /// The exchange it was published to (empty for the default exchange).
    pub exchange: ShortStr,
    /// The routing key it was published with.
    pub routing_key: ShortStr,
    /// Message properties (headers, content type, message id...).
    pub properties: BasicProperties,
    /// The body.
    pub body: Bytes,
    channel: Arc<ChannelInner>,
    /// Set by the first settle through this handle.
    settled: AtomicBool,
}

impl Clone for Delivery {
    fn clone(&self) -> Self {
        Delivery {
            delivery_tag: self.delivery_tag,
            consumer_tag: self.consumer_tag.clone(),
            redelivered: self.redelivered,
            exchange: self.exchange.clone(),
            routing_key: self.routing_key.clone(),
            properties: self.properties.clone(),
            body: self.body.clone(),
            channel: self.channel.clone(),
            settled: AtomicBool::new(self.settled.load(Ordering::Acquire)),
        }
    }
}

impl Delivery {
    pub(crate) fn from_proto(d: proto::Delivery, channel: Arc<ChannelInner>) -> Self {
        Delivery {
            delivery_tag: d.tag,
            consumer_tag: d.consumer_tag,
            redelivered: d.redelivered,
            exchange: d.exchange,
            routing_key: d.routing_key,
            properties: d.properties,
            body: d.body,
            channel,
            settled: AtomicBool::new(false),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn from_get(
        content: proto::Content,
        redelivered: bool,
        exchange: ShortStr,
        routing_key: ShortStr,
        channel: Arc<ChannelInner>,
    ) -> Self {
        Delivery {
            delivery_tag: content.tag,
            consumer_tag: ShortStr::EMPTY,
            redelivered,
            exchange,
            routing_key,
            properties: content.properties,
            body: content.body,
            channel,
            settled: AtomicBool::new(false),
        }
    }

    /// How many times a quorum queue delivered this message before: its
    /// `x-delivery-count` header. RabbitMQ counts every return towards the queue's
    /// `x-delivery-limit` (default 20 since 4.0) except, since 4.3, `basic.nack` with
    /// requeue: `basic.reject` with requeue and a lost connection count, `nack` does not.
    /// `None` when the header is absent (classic queues, a first delivery).
    pub fn delivery_count(&self) -> Option<u64> {
        count_header(&self.properties, "x-delivery-count")
    }

    /// How many times a quorum queue handed this message to a consumer, whatever
    /// returned it (`nack` included): its `x-acquired-count` header (RabbitMQ 4.3+).
    /// `None` when absent.
    pub fn acquired_count(&self) -> Option<u64> {
        count_header(&self.properties, "x-acquired-count")
    }

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

    /// A delivery received with no-ack is settled on arrival.
    pub(crate) fn mark_settled(&self, no_ack: bool) {
        self.settled.store(no_ack, Ordering::Relaxed);
    }

    async fn settle(&self, how: Settle) -> Result<(), Error> {
        if self.settled.swap(true, Ordering::AcqRel) {
            return Err(Error::UnknownDeliveryTag {
                tag: self.delivery_tag.value(),
            });
        }
        let result = self.channel.settle_queued(self.delivery_tag, how).await;
        if result.is_err() {
            // Nothing was sent: the delivery is still unsettled.
            self.settled.store(false, Ordering::Release);
        }
        result
    }
}

/// A non-negative integer header, of whatever integer type the broker sent it as.
fn count_header(properties: &BasicProperties, name: &str) -> Option<u64> {
    let value = properties.headers.as_ref()?.get(name)?.as_i64()?;
    u64::try_from(value).ok()
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
/// consumer (its queue was deleted) or the channel or connection closes, the last item
/// is an `Err` saying why ([`Error::ConsumerCancelled`] for a server cancel,
/// [`Error::ChannelClosed`], [`Error::ConnectionLost`]...),
/// then `None`.
///
/// Dropping a consumer cancels it and requeues the deliveries it had buffered but not
/// yielded.
#[derive(Debug)]
pub struct Consumer {
    rx: DeliveryReceiver,
    end: Arc<ConsumerEnd>,
    tag: ShortStr,
    no_ack: bool,
    finished: bool,
    channel: Arc<ChannelInner>,
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
            if !self.no_ack && d.tag.generation() != current {
                // Buffered before the connection was lost: the broker requeued it and
                // redelivers it on the recovered connection; this copy could not be
                // acked any more.
                continue;
            }
            let delivery = Delivery::from_proto(d, self.channel.clone());
            // A no-ack delivery is settled on arrival: settling it again is refused here.
            delivery.mark_settled(self.no_ack);
            return Poll::Ready(Some(Ok(delivery)));
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
            rest.into_iter().map(|d| d.tag).collect()
        };
        let cmd = Command::ConsumerDropped {
            channel: self.channel.shared.id,
            consumer_tag: self.tag.clone(),
            requeue,
        };
        self.channel.handle.send_from_drop(cmd);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{FieldTable, FieldValue, ShortStr};

    fn with_headers(pairs: &[(&'static str, FieldValue)]) -> BasicProperties {
        let mut headers = FieldTable::new();
        for (k, v) in pairs {
            headers.insert(ShortStr::from_static(k), v.clone());
        }
        BasicProperties {
            headers: Some(headers),
            ..Default::default()
        }
    }

    #[test]
    fn quorum_queue_counts_are_read_whatever_integer_type_they_came_as() {
        let props = with_headers(&[
            ("x-delivery-count", FieldValue::I64(3)),
            ("x-acquired-count", FieldValue::I32(5)),
        ]);
        assert_eq!(count_header(&props, "x-delivery-count"), Some(3));
        assert_eq!(count_header(&props, "x-acquired-count"), Some(5));
        let odd = with_headers(&[
            ("x-delivery-count", FieldValue::LongStr("3".into())),
            ("x-acquired-count", FieldValue::I8(-1)),
        ]);
        assert_eq!(count_header(&odd, "x-delivery-count"), None, "not an integer");
        assert_eq!(count_header(&odd, "x-acquired-count"), None, "negative");
        assert_eq!(
            count_header(&BasicProperties::default(), "x-delivery-count"),
            None,
            "no headers"
        );
    }
}
