//! Batched hand-offs between the connection task and the application's tasks: one
//! wake-up per batch of messages instead of one per message.
//!
//! A consumer that runs on another thread than the connection task pays a thread
//! wake-up (a futex or eventfd system call and a context switch) each time one side
//! finds the other asleep. Handing over messages one at a time makes the two threads
//! wake each other for every message. Here:
//! - [`DeliveryQueue`]: the task queues all the deliveries of one read, then wakes the
//!   consumer once ([`DeliverySender::announce`]); the consumer takes the whole queue at
//!   once ([`DeliveryReceiver`]).
//! - while a consumer works through its deliveries, its acks do not wake the task; the
//!   consumer wakes it once when it is through them ([`TaskWake`], in `wake.rs`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use super::wake::TaskWake;
use crate::proto::Delivery;

/// Locks `m`, ignoring poisoning (every critical section here leaves the state valid).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A bounded queue of deliveries from the task to one consumer.
#[derive(Debug)]
pub(crate) struct DeliveryQueue {
    state: Mutex<QueueState>,
    capacity: usize,
    /// Bytes the queue and the consumer's batch in hand may hold (see [`cost`]); one
    /// delivery is always admitted into an empty queue.
    byte_budget: usize,
    /// For a consumer that acks: its batches hold the task deaf (see [`TaskWake`]).
    wake: Option<Arc<TaskWake>>,
}

#[derive(Debug)]
struct QueueState {
    items: VecDeque<Delivery>,
    /// Items were queued since the consumer was last woken.
    unannounced: bool,
    /// Deliveries were queued and the consumer is not through them yet (counted in
    /// [`TaskWake`], for a consumer that acks).
    busy: bool,
    /// The consumer waits for items.
    consumer: Option<Waker>,
    /// The task waits for room.
    room: Option<Waker>,
    /// The consumer is gone: pushes fail.
    closed: bool,
    /// The task dropped its sender: the stream ends once the queue is empty.
    ended: bool,
    /// Bytes of `items` ([`cost`]).
    bytes: usize,
    /// Bytes of the batch the consumer took last, counted until it comes back for more.
    taken: usize,
    /// The last push was refused for bytes: the consumer's buffer is over its budget.
    over_bytes: bool,
}

/// What a delivery costs besides its body, for the byte budgets.
const DELIVERY_OVERHEAD: usize = 256;

/// Bytes a delivery holds, as the byte budgets count them.
pub(crate) fn cost(d: &Delivery) -> usize {
    d.body.len() + DELIVERY_OVERHEAD
}

/// Why a delivery could not be queued; it comes back.
#[derive(Debug)]
pub(crate) enum PushError {
    Full(Delivery),
    Closed(Delivery),
}

/// Creates a queue of `capacity` deliveries (at least 1). The consumer may hold one
/// more queue's worth that it took and has not yielded yet. `wake`: the consumer acks
/// its deliveries, and its batches count in the connection's [`TaskWake`].
#[cfg(test)]
pub(crate) fn delivery_queue(capacity: usize, wake: Option<Arc<TaskWake>>) -> (DeliverySender, DeliveryReceiver) {
    delivery_queue_bytes(capacity, usize::MAX, wake)
}

/// A delivery queue (see `delivery_queue`) with a byte budget beside the count: the queue plus the batch
/// in the consumer's hands hold at most `byte_budget` bytes, or one delivery.
pub(crate) fn delivery_queue_bytes(
    capacity: usize,
    byte_budget: usize,
    wake: Option<Arc<TaskWake>>,
) -> (DeliverySender, DeliveryReceiver) {
    let queue = Arc::new(DeliveryQueue {
        state: Mutex::new(QueueState {
            items: VecDeque::new(),
            unannounced: false,
            busy: false,
            consumer: None,
            room: None,
            closed: false,
            ended: false,
            bytes: 0,
            taken: 0,
            over_bytes: false,
        }),
        capacity: capacity.max(1),
        byte_budget,
        wake,
    });
    (
        DeliverySender { queue: queue.clone() },
        DeliveryReceiver {
            queue,
            batch: VecDeque::new(),
        },
    )
}

/// The task's end of a [`DeliveryQueue`]. Dropping it ends the consumer's stream once
/// the queue is drained.
#[derive(Debug)]
pub(crate) struct DeliverySender {
    queue: Arc<DeliveryQueue>,
}

impl DeliverySender {
    /// Queues `d` without waking the consumer; returns true when it is the first item
    /// since the last [`DeliveryQueue::announce`].
    #[allow(clippy::result_large_err)] // the delivery comes back by value, as from `mpsc::Sender::try_send`
    pub(crate) fn push(&self, d: Delivery) -> Result<bool, PushError> {
        let mut s = lock(&self.queue.state);
        if s.closed {
            return Err(PushError::Closed(d));
        }
        if s.items.len() >= self.queue.capacity {
            return Err(PushError::Full(d));
        }
        let size = cost(&d);
        if !s.items.is_empty() && s.bytes.saturating_add(s.taken).saturating_add(size) > self.queue.byte_budget {
            s.over_bytes = true;
            return Err(PushError::Full(d));
        }
        s.over_bytes = false;
        s.bytes += size;
        s.items.push_back(d);
        if !s.busy
            && let Some(wake) = &self.queue.wake
        {
            s.busy = true;
            wake.batch_started();
        }
        Ok(!std::mem::replace(&mut s.unannounced, true))
    }

    /// The queue, for waiting for room without holding a sender.
    pub(crate) fn queue(&self) -> Arc<DeliveryQueue> {
        self.queue.clone()
    }
}

impl Drop for DeliverySender {
    fn drop(&mut self) {
        let waker = {
            let mut s = lock(&self.queue.state);
            s.ended = true;
            s.consumer.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl DeliveryQueue {
    /// Wakes the consumer if items were queued since the last call.
    pub(crate) fn announce(&self) {
        let waker = {
            let mut s = lock(&self.state);
            if !std::mem::replace(&mut s.unannounced, false) {
                return;
            }
            s.consumer.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// True when the last push was refused for bytes and the consumer has not made room
    /// since: its buffer is over its byte budget.
    pub(crate) fn over_bytes(&self) -> bool {
        let s = lock(&self.state);
        s.over_bytes && !s.items.is_empty() && !s.closed && !s.ended
    }

    /// Bytes held: queued, and in the consumer's last batch until it comes back.
    pub(crate) fn held_bytes(&self) -> usize {
        let s = lock(&self.state);
        s.bytes.saturating_add(s.taken)
    }

    /// Ready when the queue has room (`Ok`) or the consumer or the task's sender is gone
    /// (`Err`).
    pub(crate) fn poll_room(&self, cx: &mut Context<'_>) -> Poll<Result<(), ()>> {
        let mut s = lock(&self.state);
        if s.closed || s.ended {
            Poll::Ready(Err(()))
        } else if s.items.len() < self.capacity && (s.items.is_empty() || !s.over_bytes) {
            Poll::Ready(Ok(()))
        } else {
            if !s.room.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                s.room = Some(cx.waker().clone());
            }
            Poll::Pending
        }
    }
}

/// The consumer's end of a [`DeliveryQueue`]: takes everything queued at once.
#[derive(Debug)]
pub(crate) struct DeliveryReceiver {
    queue: Arc<DeliveryQueue>,
    /// Taken from the queue, not yielded yet.
    batch: VecDeque<Delivery>,
}

impl DeliveryReceiver {
    /// The next delivery: from the current batch, else every queued delivery becomes
    /// the new batch. `None` when the stream ended, `Pending` (with the waker kept) when
    /// nothing is queued.
    ///
    /// Coming back to an empty queue means the consumer is through its deliveries and
    /// made their acks: the task takes them (see [`TaskWake::batch_done`]).
    pub(crate) fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Delivery>> {
        if let Some(d) = self.batch.pop_front() {
            return Poll::Ready(Some(d));
        }
        let (next, room, idle) = {
            let mut s = lock(&self.queue.state);
            // The previous batch is yielded: it no longer counts.
            let released = std::mem::take(&mut s.taken) != 0;
            if released {
                s.over_bytes = false;
            }
            if s.items.is_empty() {
                let idle = std::mem::take(&mut s.busy);
                let room = if released { s.room.take() } else { None };
                let next = if s.ended {
                    Poll::Ready(None)
                } else {
                    if !s.consumer.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                        s.consumer = Some(cx.waker().clone());
                    }
                    Poll::Pending
                };
                (next, room, idle)
            } else {
                std::mem::swap(&mut s.items, &mut self.batch);
                s.taken = std::mem::take(&mut s.bytes);
                s.unannounced = false;
                (Poll::Ready(self.batch.pop_front()), s.room.take(), false)
            }
        };
        if let (true, Some(wake)) = (idle, &self.queue.wake) {
            wake.batch_done();
        }
        if let Some(w) = room {
            w.wake();
        }
        next
    }

    /// Refuses further deliveries and returns those queued and not yielded.
    pub(crate) fn close(&mut self) -> Vec<Delivery> {
        let (mut rest, room, idle) = {
            let mut s = lock(&self.queue.state);
            s.closed = true;
            s.bytes = 0;
            s.taken = 0;
            let idle = std::mem::take(&mut s.busy);
            (s.items.drain(..).collect::<Vec<_>>(), s.room.take(), idle)
        };
        if let (true, Some(wake)) = (idle, &self.queue.wake) {
            wake.batch_done();
        }
        if let Some(w) = room {
            w.wake();
        }
        let mut all: Vec<Delivery> = self.batch.drain(..).collect();
        all.append(&mut rest);
        all
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    use super::*;
    use std::sync::atomic::Ordering;

    use crate::proto::{ChannelId, DeliveryTag};
    use crate::wire::ShortStr;

    fn delivery(tag: u64) -> Delivery {
        Delivery {
            consumer_tag: ShortStr::EMPTY,
            delivery_tag: DeliveryTag {
                generation: 0,
                channel: ChannelId { number: 1, epoch: 1 },
                tag,
            },
            redelivered: false,
            exchange: ShortStr::EMPTY,
            routing_key: ShortStr::EMPTY,
            properties: Default::default(),
            body: bytes::Bytes::new(),
            settler: (),
        }
    }

    /// A waker that counts its wakes.
    #[derive(Default)]
    struct Counter(AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    impl Counter {
        fn count(&self) -> usize {
            self.0.load(Ordering::SeqCst)
        }
    }

    fn tags(ds: impl IntoIterator<Item = Delivery>) -> Vec<u64> {
        ds.into_iter().map(|d| d.delivery_tag.value()).collect()
    }

    /// Polls `rx` once with a waker that does nothing.
    fn poll(rx: &mut DeliveryReceiver) -> Poll<Option<u64>> {
        rx.poll_next(&mut Context::from_waker(Waker::noop()))
            .map(|d| d.map(|d| d.delivery_tag.value()))
    }

    /// Everything `rx` yields without waiting.
    fn drain(rx: &mut DeliveryReceiver) -> Vec<u64> {
        std::iter::from_fn(|| match poll(rx) {
            Poll::Ready(Some(t)) => Some(t),
            _ => None,
        })
        .collect()
    }

    #[test]
    fn one_wake_per_batch_and_the_consumer_takes_it_whole() {
        let (tx, mut rx) = delivery_queue(8, None);
        let counter = Arc::new(Counter::default());
        let waker = Waker::from(counter.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(rx.poll_next(&mut cx).is_pending());
        assert!(tx.push(delivery(1)).unwrap(), "first since the last announce");
        assert!(!tx.push(delivery(2)).unwrap());
        assert!(!tx.push(delivery(3)).unwrap());
        assert_eq!(counter.count(), 0, "pushing does not wake");
        tx.queue().announce();
        tx.queue().announce();
        assert_eq!(counter.count(), 1, "one wake for the batch");
        assert_eq!(poll(&mut rx), Poll::Ready(Some(1)));
        tx.push(delivery(4)).unwrap();
        assert_eq!(drain(&mut rx), [2, 3, 4], "the batch, then the next one");
        assert!(rx.poll_next(&mut cx).is_pending());
    }

    #[test]
    fn full_queue_refuses_and_signals_room_when_the_batch_is_taken() {
        let (tx, mut rx) = delivery_queue(2, None);
        tx.push(delivery(1)).unwrap();
        tx.push(delivery(2)).unwrap();
        assert!(matches!(tx.push(delivery(3)), Err(PushError::Full(d)) if d.delivery_tag.value() == 3));
        let room = Arc::new(Counter::default());
        let room_waker = Waker::from(room.clone());
        assert!(tx.queue().poll_room(&mut Context::from_waker(&room_waker)).is_pending());
        assert_eq!(poll(&mut rx), Poll::Ready(Some(1)));
        assert_eq!(room.count(), 1, "taking the batch makes room");
        assert_eq!(
            tx.queue().poll_room(&mut Context::from_waker(&room_waker)),
            Poll::Ready(Ok(()))
        );
    }

    #[test]
    fn byte_budget_counts_the_queue_and_the_batch_in_hand_and_admits_one() {
        let big = |tag| Delivery {
            body: bytes::Bytes::from(vec![0u8; 1000]),
            ..delivery(tag)
        };
        // Room for two deliveries of 1000 + 256 bytes.
        let (tx, mut rx) = delivery_queue_bytes(100, 2600, None);
        tx.push(big(1)).unwrap();
        tx.push(big(2)).unwrap();
        assert!(matches!(tx.push(big(3)), Err(PushError::Full(d)) if d.delivery_tag.value() == 3));
        assert!(tx.queue().over_bytes());
        assert_eq!(tx.queue().held_bytes(), 2512);
        let room = Arc::new(Counter::default());
        let room_waker = Waker::from(room.clone());
        assert!(tx.queue().poll_room(&mut Context::from_waker(&room_waker)).is_pending());
        // The consumer takes the batch: it still counts, but an empty queue admits one.
        assert_eq!(poll(&mut rx), Poll::Ready(Some(1)));
        assert_eq!(room.count(), 1);
        tx.push(big(3)).unwrap();
        assert!(matches!(tx.push(big(4)), Err(PushError::Full(_))));
        assert!(tx.queue().poll_room(&mut Context::from_waker(&room_waker)).is_pending());
        // Through its batch, the consumer takes the next one: the old batch is released.
        assert_eq!(poll(&mut rx), Poll::Ready(Some(2)));
        assert_eq!(poll(&mut rx), Poll::Ready(Some(3)));
        assert_eq!(room.count(), 2);
        assert_eq!(tx.queue().held_bytes(), 1256);
        tx.push(big(4)).unwrap();
        // A delivery larger than the whole budget still goes into an empty queue.
        let (tx, mut rx) = delivery_queue_bytes(100, 10, None);
        tx.push(big(1)).unwrap();
        assert!(matches!(tx.push(big(2)), Err(PushError::Full(_))));
        assert_eq!(poll(&mut rx), Poll::Ready(Some(1)));
        tx.push(big(2)).unwrap();
        assert_eq!(poll(&mut rx), Poll::Ready(Some(2)));
    }

    #[test]
    fn close_returns_what_was_not_yielded_and_refuses_more() {
        let (tx, mut rx) = delivery_queue(8, None);
        for t in 1..=3 {
            tx.push(delivery(t)).unwrap();
        }
        assert_eq!(poll(&mut rx), Poll::Ready(Some(1)));
        tx.push(delivery(4)).unwrap();
        assert_eq!(tags(rx.close()), [2, 3, 4], "the batch first, then the queue");
        assert!(matches!(tx.push(delivery(5)), Err(PushError::Closed(_))));
        assert_eq!(
            tx.queue().poll_room(&mut Context::from_waker(Waker::noop())),
            Poll::Ready(Err(()))
        );
    }

    #[test]
    fn dropping_the_sender_ends_the_stream_after_the_queue() {
        let (tx, mut rx) = delivery_queue(8, None);
        let counter = Arc::new(Counter::default());
        let waker = Waker::from(counter.clone());
        let mut cx = Context::from_waker(&waker);
        tx.push(delivery(1)).unwrap();
        drop(tx);
        assert!(matches!(rx.poll_next(&mut cx), Poll::Ready(Some(_))));
        assert!(matches!(rx.poll_next(&mut cx), Poll::Ready(None)));

        let (tx, mut rx) = delivery_queue(8, None);
        assert!(rx.poll_next(&mut cx).is_pending());
        drop(tx);
        assert_eq!(counter.count(), 1, "a waiting consumer hears of the end");
        assert!(matches!(rx.poll_next(&mut cx), Poll::Ready(None)));
    }

    /// True when a deaf task waiting on `wake` would have been woken.
    fn woken(wake: &TaskWake) -> bool {
        let notified = wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        notified.poll(&mut Context::from_waker(Waker::noop())).is_ready()
    }

    #[test]
    fn a_consumer_that_acks_is_busy_from_the_first_push_until_it_comes_back_to_nothing() {
        let wake = Arc::new(TaskWake::default());
        wake.set_deaf(true);
        let (tx, mut rx) = delivery_queue(8, Some(wake.clone()));
        tx.push(delivery(1)).unwrap();
        tx.push(delivery(2)).unwrap();
        assert!(wake.in_batch(), "busy before the consumer took anything");
        assert_eq!(poll(&mut rx), Poll::Ready(Some(1)));
        tx.push(delivery(3)).unwrap();
        assert_eq!(poll(&mut rx), Poll::Ready(Some(2)));
        assert_eq!(poll(&mut rx), Poll::Ready(Some(3)), "the next batch");
        assert!(wake.in_batch());
        assert!(!woken(&wake), "acks made so far wait");
        assert!(poll(&mut rx).is_pending());
        assert!(!wake.in_batch(), "through everything");
        assert!(woken(&wake), "the task takes the acks");

        tx.push(delivery(4)).unwrap();
        assert!(wake.in_batch());
        assert_eq!(tags(rx.close()), [4]);
        assert!(!wake.in_batch(), "a closed consumer is not busy");

        let (tx, mut rx) = delivery_queue(8, None);
        tx.push(delivery(1)).unwrap();
        assert!(!wake.in_batch(), "a consumer that does not ack never counts");
        assert_eq!(drain(&mut rx), [1]);
    }
}
