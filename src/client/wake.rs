//! The wake protocol between the handles and the connection task: the one place that
//! decides when a sender must wake the task ([`TaskWake`], [`WakeHints`]).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::proto::Outstanding;

/// The longest an ack made during a consumer's batch, or a confirmed publish, waits
/// before the task sends it.
pub(crate) const SETTLE_DELAY: Duration = Duration::from_millis(1);

/// Locks `m`, ignoring poisoning (every critical section here leaves the state valid).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// When the connection task may sleep without listening to its command queue.
///
/// The task goes *deaf* after handing deliveries to a consumer that acks, or taking
/// acks while such a consumer is *busy* (has deliveries queued or in hand), and after
/// sending publishes of a confirm channel: it sleeps without a waker on the command
/// queue, so the acks and confirmed publishes that follow queue up without waking it.
/// It wakes on input, when a consumer is through its deliveries
/// ([`batch_done`](Self::batch_done)), when a publisher is about to wait for a confirm
/// or for room in its window, when any other command is sent (all of these call
/// [`command_sent`](Self::command_sent)), or after [`SETTLE_DELAY`] at the latest.
/// Every command still goes through the one command queue, so their order is kept.
///
/// In a read pause the deaf task's thread may sleep outside the runtime
/// ([`park_until`](Self::park_until)): in the runtime's epoll wait, every segment the
/// broker writes during the pause would wake it for nothing.
#[derive(Debug, Default)]
pub(crate) struct TaskWake {
    deaf: AtomicBool,
    /// Busy consumers that ack.
    batches: AtomicUsize,
    notify: Notify,
    /// A sender called the task since it went deaf.
    called: AtomicBool,
    /// The task's thread sleeps in `park_until`.
    parked: AtomicBool,
    park: Mutex<()>,
    unpark: Condvar,
}

impl TaskWake {
    /// Call after queueing a command that must not wait for the task's timer (anything
    /// but a settle or a confirmed publish), and before waiting for the task.
    pub(crate) fn command_sent(&self) {
        // Pairs with the fence in `set_deaf`: either the task sees the command when it
        // polls its queue, or we see it deaf and wake it.
        fence(Ordering::SeqCst);
        if self.deaf.load(Ordering::Relaxed) {
            self.called.store(true, Ordering::Relaxed);
            self.notify.notify_one();
            // Pairs with the fence in `park_until`: either the task sees `called`, or
            // we see it parked and wake it (under the lock it holds until it waits).
            fence(Ordering::SeqCst);
            if self.parked.load(Ordering::Relaxed) {
                let _guard = lock(&self.park);
                self.unpark.notify_one();
            }
        }
    }

    /// A consumer that acks got deliveries and was not busy.
    pub(crate) fn batch_started(&self) {
        self.batches.fetch_add(1, Ordering::AcqRel);
    }

    /// A consumer is through its deliveries: the task takes the settles made
    /// meanwhile.
    pub(crate) fn batch_done(&self) {
        self.batches.fetch_sub(1, Ordering::AcqRel);
        self.command_sent();
    }

    // ---- the task's side ----

    /// True while some consumer that acks is busy: its acks wait for it to finish.
    pub(crate) fn in_batch(&self) -> bool {
        self.batches.load(Ordering::Acquire) > 0
    }

    /// The task goes deaf (`true`: it polls its queue once more after this, so calls
    /// made before it are forgotten) or listens again (`false`).
    pub(crate) fn set_deaf(&self, deaf: bool) {
        if deaf && !self.deaf.load(Ordering::Relaxed) {
            self.called.store(false, Ordering::Relaxed);
        }
        self.deaf.store(deaf, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    /// Sleeps, on the task's thread and outside its runtime, until `deadline` or until
    /// a sender calls the deaf task (which also completes [`notified`](Self::notified)).
    /// Only for a deaf task with nothing else to wait for but its timers.
    pub(crate) fn park_until(&self, deadline: Instant) {
        let mut guard = lock(&self.park);
        self.parked.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        while !self.called.load(Ordering::Relaxed) {
            let Some(left) = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) else {
                break;
            };
            guard = self
                .unpark
                .wait_timeout(guard, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        self.parked.store(false, Ordering::Relaxed);
    }

    /// Completes when a command or a finished batch needs the deaf task.
    pub(crate) fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.notify.notified()
    }
}

/// The channels whose ledgers hold settles the task has not taken yet
/// ([`Outstanding::claim_queued`]): a handle's settle is a claim in its channel's ledger,
/// and only the first claim into an empty queue sends a command, to wake the task.
///
/// The task takes them before it runs any command, so a command sent after a settle
/// finds it written (`basic.ack` before `channel.close`, `tx.commit` or `basic.recover`).
#[derive(Debug, Default)]
pub(crate) struct QueuedSettles {
    /// Some channel was added since the task last took them.
    any: AtomicBool,
    channels: Mutex<Vec<Arc<Outstanding>>>,
}

impl QueuedSettles {
    /// `acks`'s queue was empty and now holds a claim.
    pub(crate) fn add(&self, acks: &Arc<Outstanding>) {
        lock(&self.channels).push(acks.clone());
        // After the push: a task that sees the flag finds the channel.
        self.any.store(true, Ordering::Release);
    }

    /// Moves the channels with queued settles to `into` (a channel may come twice);
    /// false, without locking, when none was added since the last call.
    pub(crate) fn take(&self, into: &mut Vec<Arc<Outstanding>>) -> bool {
        if !self.any.load(Ordering::Acquire) {
            return false;
        }
        // Cleared before the list is taken (only the task clears it): a channel added
        // after the take sets it again.
        self.any.store(false, Ordering::Relaxed);
        into.append(&mut lock(&self.channels));
        true
    }
}

/// What, since the task last slept, lets it sleep deaf (see [`TaskWake`]): the one place
/// that decides whether a sender must wake it.
#[derive(Debug, Default)]
pub(crate) struct WakeHints {
    /// It handed deliveries to a consumer that acks them: the consumer wakes it when it is
    /// through the batch.
    pub(crate) handed_batch: bool,
    /// It sent acks: deaf while a consumer is in the middle of a batch.
    pub(crate) acks_sent: bool,
    /// It sent publishes of a confirm channel: their publisher wakes it before it waits.
    pub(crate) publishes_seen: bool,
}

impl WakeHints {
    /// Whether the task may sleep deaf now; uses up the hints that said so. `in_batch`:
    /// some consumer is in the middle of a batch; `read_paused`: a read pause runs (deaf
    /// for the rest of it: senders that must not wait call a deaf task, and it can then
    /// sleep where the broker's writes do not wake it).
    pub(crate) fn take_deaf(&mut self, in_batch: bool, read_paused: bool) -> bool {
        let acks_coming = std::mem::take(&mut self.handed_batch) || (std::mem::take(&mut self.acks_sent) && in_batch);
        acks_coming || std::mem::take(&mut self.publishes_seen) || read_paused
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::task::{Context, Waker};

    use super::*;

    /// True when a deaf task waiting on `wake` would have been woken.
    fn woken(wake: &TaskWake) -> bool {
        let notified = wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        notified.poll(&mut Context::from_waker(Waker::noop())).is_ready()
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

    #[test]
    fn a_parked_task_sleeps_until_its_deadline_when_nobody_calls() {
        let wake = TaskWake::default();
        wake.set_deaf(true);
        let start = Instant::now();
        wake.park_until(start + Duration::from_millis(20));
        assert!(start.elapsed() >= Duration::from_millis(20));
        // A deadline in the past returns at once.
        wake.park_until(start);
    }

    #[test]
    fn a_call_wakes_a_parked_deaf_task_long_before_its_deadline() {
        let wake = Arc::new(TaskWake::default());
        wake.set_deaf(true);
        let caller = {
            let wake = wake.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                wake.command_sent();
            })
        };
        let start = Instant::now();
        wake.park_until(start + Duration::from_secs(30));
        assert!(start.elapsed() < Duration::from_secs(10), "woken by the call");
        caller.join().unwrap();
        assert!(woken(&wake), "the runtime's wake is kept too");
    }

    #[test]
    fn a_call_before_the_park_is_not_lost_and_going_deaf_again_forgets_it() {
        let wake = TaskWake::default();
        wake.set_deaf(true);
        wake.command_sent();
        let start = Instant::now();
        wake.park_until(start + Duration::from_secs(30));
        assert!(start.elapsed() < Duration::from_secs(10), "called before it parked");
        // Calls are for one deaf spell: the task looks at its queue when it goes deaf.
        wake.set_deaf(false);
        wake.set_deaf(true);
        let start = Instant::now();
        wake.park_until(start + Duration::from_millis(20));
        assert!(start.elapsed() >= Duration::from_millis(20));
        // A task that listens is reached through its queue, not called.
        wake.set_deaf(false);
        wake.command_sent();
        wake.set_deaf(true);
        let start = Instant::now();
        wake.park_until(start + Duration::from_millis(20));
        assert!(start.elapsed() >= Duration::from_millis(20));
    }

    #[test]
    fn the_task_sleeps_deaf_only_when_someone_will_wake_it() {
        let mut hints = WakeHints::default();
        assert!(!hints.take_deaf(true, false), "nothing done: listen");
        assert!(hints.take_deaf(false, true), "a read pause: deaf");
        hints.handed_batch = true;
        assert!(hints.take_deaf(false, false), "a consumer got a batch to ack");
        assert!(!hints.take_deaf(false, false), "used up");
        hints.acks_sent = true;
        assert!(!hints.take_deaf(false, false), "acks, but no consumer in a batch");
        hints.acks_sent = true;
        assert!(hints.take_deaf(true, false), "acks from a consumer in a batch");
        hints.publishes_seen = true;
        assert!(
            hints.take_deaf(false, false),
            "a confirm publisher wakes it before waiting"
        );
        hints.handed_batch = true;
        hints.publishes_seen = true;
        assert!(hints.take_deaf(false, false));
        assert!(
            hints.take_deaf(false, false),
            "the publish hint is kept for the next sleep"
        );
        assert!(!hints.take_deaf(false, false));
    }

    #[test]
    fn queued_settles_are_taken_once_and_a_later_add_is_seen() {
        use crate::proto::{ChannelId, Outstanding};
        let settles = QueuedSettles::default();
        let mut into = Vec::new();
        assert!(!settles.take(&mut into), "nothing added");
        let a = Arc::new(Outstanding::new(ChannelId { number: 1, epoch: 0 }, 0));
        let b = Arc::new(Outstanding::new(ChannelId { number: 2, epoch: 0 }, 0));
        settles.add(&a);
        settles.add(&b);
        assert!(settles.take(&mut into));
        assert_eq!(into.len(), 2);
        assert!(Arc::ptr_eq(&into[0], &a) && Arc::ptr_eq(&into[1], &b));
        into.clear();
        assert!(!settles.take(&mut into), "taken already");
        settles.add(&a);
        assert!(settles.take(&mut into) && into.len() == 1);
    }
}
