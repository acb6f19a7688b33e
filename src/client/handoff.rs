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
//! - [`TaskWake`]: while a consumer works through a batch, its acks do not wake the
//!   task; the consumer wakes it once when it yields the batch's last delivery, and a
//!   timer collects what a consumer left behind after [`SETTLE_DELAY`] at most.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::sync::Notify;

use crate::proto::Delivery;

/// The longest an ack made during a consumer's batch, or a confirmed publish, waits
/// before the task sends it.
pub(crate) const SETTLE_DELAY: Duration = Duration::from_millis(1);

/// Locks `m`, ignoring poisoning (every critical section here leaves the state valid).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A bounded queue of deliveries from the task to one consumer.
#[derive(Debug)]
pub(crate) struct DeliveryQueue {
    state: Mutex<QueueState>,
    capacity: usize,
}

#[derive(Debug)]
struct QueueState {
    items: VecDeque<Delivery>,
    /// Items were queued since the consumer was last woken.
    unannounced: bool,
    /// The consumer waits for items.
    consumer: Option<Waker>,
    /// The task waits for room.
    room: Option<Waker>,
    /// The consumer is gone: pushes fail.
    closed: bool,
    /// The task dropped its sender: the stream ends once the queue is empty.
    ended: bool,
}

/// Why a delivery could not be queued; it comes back.
#[derive(Debug)]
pub(crate) enum PushError {
    Full(Delivery),
    Closed(Delivery),
}

/// Creates a queue of `capacity` deliveries (at least 1). The consumer may hold one
/// more queue's worth that it took and has not yielded yet.
pub(crate) fn delivery_queue(capacity: usize) -> (DeliverySender, DeliveryReceiver) {
    let queue = Arc::new(DeliveryQueue {
        state: Mutex::new(QueueState {
            items: VecDeque::new(),
            unannounced: false,
            consumer: None,
            room: None,
            closed: false,
            ended: false,
        }),
        capacity: capacity.max(1),
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
        s.items.push_back(d);
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

    /// Ready when the queue has room (`Ok`) or the consumer is gone (`Err`).
    pub(crate) fn poll_room(&self, cx: &mut Context<'_>) -> Poll<Result<(), ()>> {
        let mut s = lock(&self.state);
        if s.closed {
            Poll::Ready(Err(()))
        } else if s.items.len() < self.capacity {
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
    /// The next delivery of the current batch, without looking at the queue.
    pub(crate) fn next_in_batch(&mut self) -> Option<Delivery> {
        self.batch.pop_front()
    }

    /// True when the current batch is all yielded.
    pub(crate) fn batch_is_empty(&self) -> bool {
        self.batch.is_empty()
    }

    /// Takes every queued delivery as the new batch and yields the first; `None` when
    /// the stream ended, `Pending` (with the waker kept) when nothing is queued.
    pub(crate) fn poll_batch(&mut self, cx: &mut Context<'_>) -> Poll<Option<Delivery>> {
        debug_assert!(self.batch.is_empty());
        let room = {
            let mut s = lock(&self.queue.state);
            if s.items.is_empty() {
                if s.ended {
                    return Poll::Ready(None);
                }
                if !s.consumer.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    s.consumer = Some(cx.waker().clone());
                }
                return Poll::Pending;
            }
            std::mem::swap(&mut s.items, &mut self.batch);
            s.unannounced = false;
            s.room.take()
        };
        if let Some(w) = room {
            w.wake();
        }
        Poll::Ready(self.batch.pop_front())
    }

    /// Refuses further deliveries and returns those queued and not yielded.
    pub(crate) fn close(&mut self) -> Vec<Delivery> {
        let (mut rest, room) = {
            let mut s = lock(&self.queue.state);
            s.closed = true;
            (s.items.drain(..).collect::<Vec<_>>(), s.room.take())
        };
        if let Some(w) = room {
            w.wake();
        }
        let mut all: Vec<Delivery> = self.batch.drain(..).collect();
        all.append(&mut rest);
        all
    }
}

/// When the connection task may sleep without listening to its command queue.
///
/// The task goes *deaf* after handing a batch to a consumer or taking its acks while
/// some consumer works through a batch, and after sending publishes of a confirm
/// channel: it sleeps without a waker on the command queue, so the acks and confirmed
/// publishes that follow queue up without waking it. It wakes when a consumer finishes
/// its batch ([`batch_done`](Self::batch_done)), when a publisher is about to wait for
/// a confirm or for room in its window, when any other command is sent (all of these
/// call [`command_sent`](Self::command_sent)), on input, or after [`SETTLE_DELAY`] at
/// the latest. Every command still goes through the one command queue, so their order
/// is kept.
#[derive(Debug, Default)]
pub(crate) struct TaskWake {
    deaf: AtomicBool,
    /// Consumers in the middle of a batch.
    batches: AtomicUsize,
    notify: Notify,
}

impl TaskWake {
    /// Call after queueing a command that must not wait for the task's timer (anything
    /// but a settle or a confirmed publish), and before waiting for the task.
    pub(crate) fn command_sent(&self) {
        // Pairs with the fence in `set_deaf`: either the task sees the command when it
        // polls its queue, or we see it deaf and wake it.
        fence(Ordering::SeqCst);
        if self.deaf.load(Ordering::Relaxed) {
            self.notify.notify_one();
        }
    }

    /// A consumer starts working through a batch of deliveries.
    pub(crate) fn batch_started(&self) {
        self.batches.fetch_add(1, Ordering::AcqRel);
    }

    /// A consumer finished its batch: the task takes the settles made meanwhile.
    pub(crate) fn batch_done(&self) {
        self.batches.fetch_sub(1, Ordering::AcqRel);
        self.command_sent();
    }

    // ---- the task's side ----

    /// True while some consumer works through a batch.
    pub(crate) fn in_batch(&self) -> bool {
        self.batches.load(Ordering::Acquire) > 0
    }

    /// The task goes deaf (`true`: it polls its queue once more after this) or listens
    /// again (`false`).
    pub(crate) fn set_deaf(&self, deaf: bool) {
        self.deaf.store(deaf, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    /// Completes when a command or a finished batch needs the deaf task.
    pub(crate) fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.notify.notified()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    use super::*;
    use crate::proto::{ChannelId, DeliveryTag};
    use crate::wire::{BasicProperties, ShortStr};

    fn delivery(tag: u64) -> Delivery {
        Delivery {
            consumer_tag: ShortStr::EMPTY,
            tag: DeliveryTag {
                generation: 0,
                channel: ChannelId { number: 1, epoch: 1 },
                tag,
            },
            redelivered: false,
            exchange: ShortStr::EMPTY,
            routing_key: ShortStr::EMPTY,
            properties: BasicProperties::default(),
            body: bytes::Bytes::new(),
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
        ds.into_iter().map(|d| d.tag.value()).collect()
    }

    #[test]
    fn one_wake_per_batch_and_the_consumer_takes_it_whole() {
        let (tx, mut rx) = delivery_queue(8);
        let counter = Arc::new(Counter::default());
        let waker = Waker::from(counter.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(rx.poll_batch(&mut cx).is_pending());
        assert!(tx.push(delivery(1)).unwrap(), "first since the last announce");
        assert!(!tx.push(delivery(2)).unwrap());
        assert!(!tx.push(delivery(3)).unwrap());
        assert_eq!(counter.count(), 0, "pushing does not wake");
        tx.queue().announce();
        tx.queue().announce();
        assert_eq!(counter.count(), 1, "one wake for the batch");
        let Poll::Ready(Some(first)) = rx.poll_batch(&mut cx) else {
            panic!("a batch is queued")
        };
        assert_eq!(first.tag.value(), 1);
        assert_eq!(tags(std::iter::from_fn(|| rx.next_in_batch())), [2, 3]);
        assert!(rx.poll_batch(&mut cx).is_pending());
    }

    #[test]
    fn full_queue_refuses_and_signals_room_when_the_batch_is_taken() {
        let (tx, mut rx) = delivery_queue(2);
        tx.push(delivery(1)).unwrap();
        tx.push(delivery(2)).unwrap();
        assert!(matches!(tx.push(delivery(3)), Err(PushError::Full(d)) if d.tag.value() == 3));
        let room = Arc::new(Counter::default());
        let room_waker = Waker::from(room.clone());
        assert!(tx.queue().poll_room(&mut Context::from_waker(&room_waker)).is_pending());
        let noop = Waker::noop();
        assert!(rx.poll_batch(&mut Context::from_waker(noop)).is_ready());
        assert_eq!(room.count(), 1, "taking the batch makes room");
        assert_eq!(
            tx.queue().poll_room(&mut Context::from_waker(&room_waker)),
            Poll::Ready(Ok(()))
        );
    }

    #[test]
    fn close_returns_what_was_not_yielded_and_refuses_more() {
        let (tx, mut rx) = delivery_queue(8);
        for t in 1..=3 {
            tx.push(delivery(t)).unwrap();
        }
        let noop = Waker::noop();
        let Poll::Ready(Some(d)) = rx.poll_batch(&mut Context::from_waker(noop)) else {
            panic!()
        };
        assert_eq!(d.tag.value(), 1);
        tx.push(delivery(4)).unwrap();
        assert_eq!(tags(rx.close()), [2, 3, 4], "the batch first, then the queue");
        assert!(matches!(tx.push(delivery(5)), Err(PushError::Closed(_))));
        assert_eq!(
            tx.queue().poll_room(&mut Context::from_waker(noop)),
            Poll::Ready(Err(()))
        );
    }

    #[test]
    fn dropping_the_sender_ends_the_stream_after_the_queue() {
        let (tx, mut rx) = delivery_queue(8);
        let counter = Arc::new(Counter::default());
        let waker = Waker::from(counter.clone());
        let mut cx = Context::from_waker(&waker);
        tx.push(delivery(1)).unwrap();
        drop(tx);
        assert!(matches!(rx.poll_batch(&mut cx), Poll::Ready(Some(_))));
        assert!(matches!(rx.poll_batch(&mut cx), Poll::Ready(None)));

        let (tx, mut rx) = delivery_queue(8);
        assert!(rx.poll_batch(&mut cx).is_pending());
        drop(tx);
        assert_eq!(counter.count(), 1, "a waiting consumer hears of the end");
        assert!(matches!(rx.poll_batch(&mut cx), Poll::Ready(None)));
    }

    #[tokio::test]
    async fn commands_wake_a_deaf_task_and_only_a_deaf_one() {
        let wake = TaskWake::default();
        wake.command_sent();
        let notified = wake.notified();
        tokio::pin!(notified);
        let noop = Waker::noop();
        assert!(notified.as_mut().poll(&mut Context::from_waker(noop)).is_pending());
        wake.set_deaf(true);
        wake.batch_started();
        assert!(wake.in_batch());
        wake.batch_done();
        assert!(!wake.in_batch());
        assert!(notified.as_mut().poll(&mut Context::from_waker(noop)).is_ready());
        // Stored for a deaf task that is not waiting yet.
        wake.command_sent();
        tokio::time::timeout(Duration::from_secs(5), wake.notified())
            .await
            .expect("the wake was kept");
    }
}
