//! State shared between the connection task and the handles: [`ConnShared`] for the
//! connection, [`ChannelShared`] for a channel, [`ConsumerEnd`] for a consumer. The task
//! writes it, handles read it.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU16, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock, Weak};
use std::time::Duration;

use tokio::sync::{Semaphore, broadcast, mpsc, watch};

use super::metrics::Counters;
use super::publish::PublishCell;
use super::state::ConnectionState;
use super::wake::{QueuedSettles, TaskWake};
use crate::error::Error;
use crate::proto::Address;
use crate::proto::{ChannelId, Outstanding, Returned, Tune};
use crate::wire::{FieldTable, ShortStr, ShortStrTooLong};

/// Connection state read by handles, written by the task.
#[derive(Debug)]
pub(crate) struct ConnShared {
    /// Whether `connection.blocked` holds publishing. Written only by
    /// [`set_blocked`](Self::set_blocked), which keeps `gate` in step.
    pub(crate) blocked: watch::Sender<bool>,
    /// `Some` once the connection is closed for good: why.
    pub(crate) closed: watch::Sender<Option<Error>>,
    pub(crate) limits: Limits,
    /// The current connection's handshake: its limits and the server's properties
    /// (every recovery replaces them).
    pub(crate) handshake: RwLock<Option<(Tune, FieldTable)>>,
    /// The broker address of the current connection (of the last one while recovering).
    pub(crate) address: RwLock<Option<Address>>,
    /// The connection's state, including recovery. Written only by
    /// [`set_state`](Self::set_state), which keeps `gate` in step.
    pub(crate) state: watch::Sender<ConnectionState>,
    /// [`is_blocked`](Self::is_blocked) and [`is_recovering`](Self::is_recovering) as
    /// `GATE_*` bits, derived from the two watches by their writers: every publish asks
    /// both, and a watch's `borrow` takes its lock.
    gate: AtomicU8,
    /// Every state change, for [`StateChanges`](super::StateChanges).
    pub(crate) changes: broadcast::Sender<ConnectionState>,
    pub(crate) counters: Counters,
    /// The connection generation in use (0, then bumped by every recovery).
    pub(crate) generation: AtomicU32,
    /// Recovery settings the handles apply (publish wait, message ids for republish).
    pub(crate) recovery: RecoveryLimits,
    /// Next number for generated message ids (republish mode).
    pub(crate) message_ids: AtomicU64,
    /// Whether the task listens to its command queue (see [`TaskWake`]).
    pub(crate) wake: Arc<TaskWake>,
    /// Settles claimed by the handles, waiting for the task (see [`QueuedSettles`]).
    pub(crate) settles: QueuedSettles,
    /// The publish byte budget ([`ConnectionConfig::publish_buffer_bytes`](super::ConnectionConfig::publish_buffer_bytes)),
    /// in bytes: a publish holds [`publish_cost`] of it while queued and, kept for
    /// republish, until its confirm.
    pub(crate) publish_bytes: Arc<Semaphore>,
}

/// [`ConnShared::gate`]: the state says `Recovering`.
const GATE_RECOVERING: u8 = 1;
/// [`ConnShared::gate`]: the blocked flag is up or the state says `Blocked`.
const GATE_BLOCKED: u8 = 2;

/// Why a connection whose task ended without saying why is gone.
fn task_ended() -> Error {
    Error::ConnectionLost {
        reason: "the connection task ended".into(),
        source: None,
    }
}

/// What a body of `len` bytes costs in the publish byte budget of `limits` (at most the
/// whole budget, so that a larger message still goes, alone).
pub(crate) fn publish_cost(limits: &Limits, len: usize) -> u32 {
    let cost = len.saturating_add(256).min(limits.publish_buffer_bytes).max(1);
    u32::try_from(cost).unwrap_or(u32::MAX)
}

/// The parts of [`RecoveryConfig`](super::RecoveryConfig) that handles apply.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecoveryLimits {
    pub(crate) publish_wait: Option<Duration>,
    pub(crate) republish: bool,
    /// Distinguishes this connection's generated message ids from other processes'.
    pub(crate) id_prefix: u64,
}

/// Client-side limits from the configuration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) rpc_timeout: Option<Duration>,
    pub(crate) blocked_timeout: Option<Duration>,
    pub(crate) publish_window: usize,
    pub(crate) consumer_buffer: usize,
    pub(crate) consumer_buffer_bytes: usize,
    /// At most `u32::MAX` (what one semaphore acquire can take).
    pub(crate) publish_buffer_bytes: usize,
}

impl ConnShared {
    pub(crate) fn new(limits: Limits, recovery: RecoveryLimits) -> Self {
        ConnShared {
            blocked: watch::Sender::new(false),
            closed: watch::Sender::new(None),
            limits,
            handshake: RwLock::new(None),
            address: RwLock::new(None),
            state: watch::Sender::new(ConnectionState::Connected),
            gate: AtomicU8::new(0),
            changes: broadcast::Sender::new(64),
            counters: Counters::default(),
            generation: AtomicU32::new(0),
            recovery,
            message_ids: AtomicU64::new(1),
            wake: Arc::default(),
            settles: QueuedSettles::default(),
            publish_bytes: Arc::new(Semaphore::new(limits.publish_buffer_bytes)),
        }
    }

    /// Publishes a new state to the watch and the change stream.
    pub(crate) fn set_state(&self, state: ConnectionState) {
        self.store_gate(&state, *self.blocked.borrow());
        self.send_state(state);
    }

    /// The watch first: whoever the change stream wakes reads the new state.
    fn send_state(&self, state: ConnectionState) {
        self.state.send_replace(state.clone());
        let _ = self.changes.send(state);
    }

    /// Sets the `gate` bits for `state` and the blocked flag `blocked`, before the watches
    /// show them: a publish started on seeing a watch change (a `Blocked` state, a
    /// recovery) finds the gate closed already. The task is the one writer.
    fn store_gate(&self, state: &ConnectionState, blocked: bool) {
        let mut gate = 0;
        if state.is_recovering() {
            gate |= GATE_RECOVERING;
        }
        if blocked || matches!(state, ConnectionState::Blocked { .. }) {
            gate |= GATE_BLOCKED;
        }
        self.gate.store(gate, Ordering::Release);
    }

    /// Records a `connection.blocked` (`true`) or `unblocked`, with the state that goes
    /// with it, if any: the gate first, then the state, so that whoever the flag wakes
    /// reads it already. The connection task runs on a thread of its own, so a handle
    /// can see the state say `Blocked` a moment before the flag rises:
    /// [`unblocked`](Self::unblocked) reads both.
    pub(crate) fn set_blocked(&self, blocked: bool, state: Option<ConnectionState>) {
        match state {
            Some(state) => {
                self.store_gate(&state, blocked);
                self.send_state(state);
            }
            None => self.store_gate(&self.state.borrow(), blocked),
        }
        self.counters.set_blocked(blocked);
        self.blocked.send_replace(blocked);
    }

    /// Resolves once publishing is not blocked: neither the flag is up nor the state
    /// says `Blocked` (a publish started on seeing that state waits, even if the flag
    /// has not risen yet). Every end of a block lowers the flag: an unblock, a loss
    /// (`Recovering`), the end of the connection (`Failed`).
    pub(crate) async fn unblocked(&self) -> Result<(), Error> {
        let mut state = self.state.subscribe();
        let mut flag = self.blocked.subscribe();
        loop {
            // A block sets the state before the flag, an unblock leaves `Blocked`
            // before the flag falls: wait for the state, then for the flag.
            state
                .wait_for(|s| !matches!(s, ConnectionState::Blocked { .. }))
                .await
                .map_err(|_| self.close_reason())?;
            flag.wait_for(|blocked| !*blocked)
                .await
                .map_err(|_| self.close_reason())?;
            if !matches!(*state.borrow_and_update(), ConnectionState::Blocked { .. }) {
                return Ok(());
            }
        }
    }

    /// True while publishing is blocked (see [`unblocked`](Self::unblocked)).
    pub(crate) fn is_blocked(&self) -> bool {
        self.gate.load(Ordering::Acquire) & GATE_BLOCKED != 0
    }

    /// The connection ended for good with `error`: publishers waiting for the byte
    /// budget learn it, the blocked flag falls, and the state becomes `Failed` unless it
    /// already is (the first reason stays).
    pub(crate) fn set_failed(&self, error: Error) {
        self.publish_bytes.close();
        let failed = matches!(&*self.state.borrow(), ConnectionState::Failed(_));
        self.set_blocked(false, (!failed).then_some(ConnectionState::Failed(error)));
    }

    /// True while a recovery is under way.
    pub(crate) fn is_recovering(&self) -> bool {
        self.gate.load(Ordering::Acquire) & GATE_RECOVERING != 0
    }

    /// Records the handshake of a new connection (the first, or a recovery's).
    pub(crate) fn set_handshake(&self, tune: Tune, server_properties: FieldTable) {
        *self.handshake.write().unwrap_or_else(|e| e.into_inner()) = Some((tune, server_properties));
    }

    /// The current connection's limits and server properties (`f` of them), once its
    /// handshake is done.
    pub(crate) fn handshake<T>(&self, f: impl FnOnce(&(Tune, FieldTable)) -> T) -> Option<T> {
        self.handshake.read().unwrap_or_else(|e| e.into_inner()).as_ref().map(f)
    }

    /// Records the broker address a transport was opened to.
    pub(crate) fn set_address(&self, address: Address) {
        *self.address.write().unwrap_or_else(|e| e.into_inner()) = Some(address);
    }

    /// Why the connection is closed, or a generic loss when the task ended without
    /// saying (it always says; this is the fallback for a task that panicked).
    pub(crate) fn close_reason(&self) -> Error {
        self.closed.borrow().clone().unwrap_or_else(task_ended)
    }
}

/// Held by the connection task until it ends as it should ([`finished`](Self::finished)):
/// if the task panics, or is dropped before (its runtime shut down, with
/// `ConnectionConfig::own_thread` off), the handles learn that the connection is gone
/// (closed, `Failed`, the blocked flag down, the publish byte budget closed) instead of
/// waiting for a task that will never answer.
pub(crate) struct TaskGuard {
    shared: Arc<ConnShared>,
    finished: bool,
}

impl TaskGuard {
    pub(crate) fn new(shared: Arc<ConnShared>) -> Self {
        TaskGuard {
            shared,
            finished: false,
        }
    }

    /// The task ended as it should: it told the handles how (or there are none).
    pub(crate) fn finished(mut self) {
        self.finished = true;
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let shared = &self.shared;
        let reason = if std::thread::panicking() {
            "the connection task panicked"
        } else {
            "the connection task was dropped before it ended (its runtime shut down)"
        };
        let error = Error::ConnectionLost {
            reason: reason.into(),
            source: None,
        };
        if shared.closed.borrow().is_none() {
            shared.closed.send_replace(Some(error.clone()));
        }
        shared.set_failed(error);
    }
}

/// Channel state read by handles, written by the task.
#[derive(Debug)]
pub(crate) struct ChannelShared {
    pub(crate) id: ChannelId,
    /// Set once, when the channel closed: why.
    pub(crate) closed: OnceLock<Error>,
    /// True once `confirm.select` was sent.
    pub(crate) confirm: AtomicBool,
    /// Unconfirmed publishes in flight; closed when the channel closes.
    pub(crate) window: Arc<Semaphore>,
    /// The last `basic.qos` prefetch count (sizes consumer buffers).
    pub(crate) prefetch: AtomicU16,
    /// Where `basic.return`s of publishes outside confirm mode go, once someone listens
    /// ([`Channel::returns`](super::Channel::returns)); taken when the channel closes.
    pub(crate) returns: std::sync::Mutex<Option<mpsc::Sender<Returned>>>,
    /// The deliveries waiting for a settle: claimed here, written by the task.
    pub(crate) acks: Arc<Outstanding>,
    /// The exchange and routing key of the last publish, whose bytes the next publish
    /// to the same names shares (see [`publish_names`](Self::publish_names)).
    last_names: std::sync::Mutex<(ShortStr, ShortStr)>,
    /// Publish cells done with, for the next publishes (at most [`CELL_POOL`]).
    cells: std::sync::Mutex<Vec<Arc<PublishCell>>>,
    /// The connection's task wake-up, for a publisher about to wait on a confirm.
    pub(crate) wake: Arc<TaskWake>,
    /// The connection's [`publish_bytes`](ConnShared::publish_bytes), for new cells.
    budget: Arc<Semaphore>,
    /// The connection, for why it ended (a weak reference: a [`Confirmation`](super::Confirmation)
    /// holds the channel, not the connection).
    conn: Weak<ConnShared>,
}

/// Publish cells a channel keeps for reuse: enough for a publisher that awaits its
/// confirms in batches, little memory when idle.
const CELL_POOL: usize = 256;

impl ChannelShared {
    /// The shared state of channel `id` of the connection `conn`.
    pub(crate) fn new(id: ChannelId, window: usize, acks: Arc<Outstanding>, conn: &Arc<ConnShared>) -> Self {
        ChannelShared {
            id,
            closed: OnceLock::new(),
            confirm: AtomicBool::new(false),
            window: Arc::new(Semaphore::new(window.min(Semaphore::MAX_PERMITS))),
            prefetch: AtomicU16::new(0),
            returns: std::sync::Mutex::new(None),
            acks,
            last_names: std::sync::Mutex::new((ShortStr::default(), ShortStr::default())),
            cells: std::sync::Mutex::new(Vec::new()),
            wake: conn.wake.clone(),
            budget: conn.publish_bytes.clone(),
            conn: Arc::downgrade(conn),
        }
    }

    /// A publish cell from the pool, or a new one.
    pub(crate) fn publish_cell(&self) -> Arc<PublishCell> {
        let reused = self.cells.lock().ok().and_then(|mut pool| pool.pop());
        reused.unwrap_or_else(|| Arc::new(PublishCell::new(self.window.clone(), self.budget.clone())))
    }

    /// Cells in the pool.
    #[cfg(test)]
    pub(crate) fn cells_pooled(&self) -> usize {
        self.cells.lock().map_or(0, |pool| pool.len())
    }

    /// Gives `cell` back to the pool if nobody else holds it; drops it otherwise.
    pub(crate) fn recycle(&self, mut cell: Arc<PublishCell>) {
        if PublishCell::reset(&mut cell)
            && let Ok(mut pool) = self.cells.lock()
            && pool.len() < CELL_POOL
        {
            pool.push(cell);
        }
    }

    /// A publish's exchange and routing key as short strings. A publisher sends to the
    /// same names again and again: those of the last publish are kept, and when they are
    /// the same the new publish shares their bytes instead of copying them (no
    /// allocation). `Err` names which is too long.
    pub(crate) fn publish_names(
        &self,
        exchange: &str,
        routing_key: &str,
    ) -> Result<(ShortStr, ShortStr), (&'static str, ShortStrTooLong)> {
        // Another publisher on the channel holds them: copy, rather than wait.
        let Ok(mut last) = self.last_names.try_lock() else {
            let exchange = ShortStr::try_from(exchange).map_err(|e| ("exchange", e))?;
            let routing_key = ShortStr::try_from(routing_key).map_err(|e| ("routing key", e))?;
            return Ok((exchange, routing_key));
        };
        let (last_exchange, last_key) = &mut *last;
        if last_exchange.as_bytes() != exchange.as_bytes() {
            *last_exchange = ShortStr::try_from(exchange).map_err(|e| ("exchange", e))?;
        }
        if last_key.as_bytes() != routing_key.as_bytes() {
            *last_key = ShortStr::try_from(routing_key).map_err(|e| ("routing key", e))?;
        }
        Ok((last_exchange.clone(), last_key.clone()))
    }

    /// Records the close reason (the first one wins) and wakes waiting publishers.
    pub(crate) fn set_closed(&self, error: Error) {
        let _ = self.closed.set(error);
        self.window.close();
        // Ends the returns stream, if any.
        if let Ok(mut returns) = self.returns.lock() {
            returns.take();
        }
    }

    /// Why the channel ended: its own close, or else its connection's.
    pub(crate) fn end_reason(&self) -> Error {
        match (self.closed.get(), self.conn.upgrade()) {
            (Some(error), _) => error.clone(),
            (None, Some(conn)) => conn.close_reason(),
            (None, None) => task_ended(),
        }
    }

    pub(crate) fn is_confirm(&self) -> bool {
        self.confirm.load(Ordering::Acquire)
    }
}

/// How a consumer's stream ended, set by the task before it drops the sender.
#[derive(Debug, Default)]
pub(crate) struct ConsumerEnd {
    pub(crate) reason: OnceLock<Error>,
}

#[cfg(test)]
impl ConnShared {
    /// A connection's shared state with small limits, for unit tests.
    pub(crate) fn for_tests() -> Arc<Self> {
        let limits = Limits {
            rpc_timeout: None,
            blocked_timeout: None,
            publish_window: 1,
            consumer_buffer: 1,
            consumer_buffer_bytes: 1,
            publish_buffer_bytes: 1,
        };
        let recovery = RecoveryLimits {
            publish_wait: None,
            republish: false,
            id_prefix: 0,
        };
        Arc::new(ConnShared::new(limits, recovery))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> ChannelId {
        ChannelId { number: 1, epoch: 0 }
    }

    #[test]
    fn a_channel_ends_for_its_own_reason_or_else_its_connections() {
        let conn = ConnShared::for_tests();
        let acks = || Arc::new(crate::proto::Outstanding::new(id(), 0));
        let ch = ChannelShared::new(id(), 1, acks(), &conn);
        assert_eq!(ch.end_reason(), conn.close_reason(), "the connection's while it lives");
        let closed = Error::InvalidArgument("closed".into());
        ch.set_closed(closed.clone());
        assert_eq!(ch.end_reason(), closed, "its own once closed");
        let orphan = ChannelShared::new(id(), 1, acks(), &ConnShared::for_tests());
        assert!(
            matches!(orphan.end_reason(), Error::ConnectionLost { .. }),
            "the connection is gone"
        );
    }

    #[test]
    fn a_publish_to_the_same_names_shares_their_bytes() {
        let ch = ChannelShared::new(
            id(),
            10,
            Arc::new(crate::proto::Outstanding::new(id(), 0)),
            &ConnShared::for_tests(),
        );
        let (e1, k1) = ch.publish_names("ex", "key").unwrap();
        let (e2, k2) = ch.publish_names("ex", "key").unwrap();
        assert_eq!((&e2[..], &k2[..]), ("ex", "key"));
        assert_eq!(k1.as_bytes().as_ptr(), k2.as_bytes().as_ptr(), "shared, not copied");
        assert_eq!(e1.as_bytes().as_ptr(), e2.as_bytes().as_ptr());
        let (e3, k3) = ch.publish_names("ex", "other").unwrap();
        assert_eq!((&e3[..], &k3[..]), ("ex", "other"));
        assert_eq!(e3.as_bytes().as_ptr(), e1.as_bytes().as_ptr());
        assert_eq!(&k1[..], "key", "an earlier publish keeps its names");
        let long = "k".repeat(256);
        assert_eq!(ch.publish_names(&long, "key").map_err(|e| e.0), Err("exchange"));
        assert_eq!(ch.publish_names("ex", &long).map_err(|e| e.0), Err("routing key"));
        let (e4, k4) = ch.publish_names("ex", "other").unwrap();
        assert_eq!((&e4[..], &k4[..]), ("ex", "other"), "a refused name changes nothing");
    }

    fn blocked_state() -> ConnectionState {
        ConnectionState::Blocked { reason: "alarm".into() }
    }

    /// The lock-free answers follow every state and flag change the task makes.
    #[test]
    fn blocked_and_recovering_follow_the_task_changes() {
        let shared = ConnShared::for_tests();
        let recovering = ConnectionState::Recovering {
            attempt: 1,
            cause: Error::NotConnected,
        };
        let answers = |s: &ConnShared| (s.is_blocked(), s.is_recovering());
        assert_eq!(answers(&shared), (false, false));
        shared.set_blocked(true, Some(blocked_state()));
        assert_eq!(answers(&shared), (true, false));
        shared.set_blocked(false, Some(recovering.clone()));
        assert_eq!(answers(&shared), (false, true));
        shared.set_state(ConnectionState::Connected);
        assert_eq!(answers(&shared), (false, false));
        shared.set_blocked(true, None);
        assert_eq!(answers(&shared), (true, false), "the flag alone blocks");
        shared.set_state(recovering);
        assert_eq!(answers(&shared), (true, true));
        shared.set_failed(Error::NotConnected);
        assert_eq!(answers(&shared), (false, false));
    }

    /// Seen from another thread, whoever the flag wakes reads the state that goes with
    /// it: `Blocked` once it rose, `Connected` once it fell.
    #[test]
    fn the_blocked_flag_wakes_readers_of_the_state_it_goes_with() {
        const ROUNDS: u32 = 5_000;
        let shared = ConnShared::for_tests();
        // Each change waits until the reader has seen the one before.
        let seen = Arc::new(AtomicU32::new(0));
        let writer = {
            let (shared, seen) = (shared.clone(), seen.clone());
            std::thread::spawn(move || {
                for round in 0..ROUNDS {
                    shared.set_blocked(true, Some(blocked_state()));
                    while seen.load(Ordering::Acquire) < 2 * round + 1 {
                        std::thread::yield_now();
                    }
                    shared.set_blocked(false, Some(ConnectionState::Connected));
                    while seen.load(Ordering::Acquire) < 2 * round + 2 {
                        std::thread::yield_now();
                    }
                }
            })
        };
        for _ in 0..ROUNDS {
            while !*shared.blocked.borrow() {
                std::thread::yield_now();
            }
            assert_eq!(*shared.state.borrow(), blocked_state(), "the flag rose first");
            seen.fetch_add(1, Ordering::Release);
            while *shared.blocked.borrow() {
                std::thread::yield_now();
            }
            assert_eq!(
                *shared.state.borrow(),
                ConnectionState::Connected,
                "the flag fell first"
            );
            seen.fetch_add(1, Ordering::Release);
        }
        writer.join().unwrap();
    }

    /// A panic of the connection task ends the connection for the handles: a publish
    /// held by a block is released, with the close reason.
    #[test]
    fn a_panicking_task_ends_the_connection_for_the_handles() {
        let shared = ConnShared::for_tests();
        shared.set_blocked(true, Some(blocked_state()));
        let guard = TaskGuard::new(shared.clone());
        let task = std::thread::spawn(move || {
            let _guard = guard;
            panic!("a bug in the task");
        });
        assert!(task.join().is_err());
        assert!(!shared.is_blocked());
        assert!(matches!(*shared.state.borrow(), ConnectionState::Failed(_)));
        assert!(shared.closed.borrow().is_some());
        assert!(shared.publish_bytes.is_closed());
        // The task ended as it should: nothing is touched.
        let shared = ConnShared::for_tests();
        TaskGuard::new(shared.clone()).finished();
        assert_eq!(*shared.state.borrow(), ConnectionState::Connected);
        assert!(shared.closed.borrow().is_none());
        // Dropped before (its runtime shut down): the connection ends for the handles.
        let shared = ConnShared::for_tests();
        drop(TaskGuard::new(shared.clone()));
        assert!(matches!(*shared.state.borrow(), ConnectionState::Failed(_)));
        assert!(shared.publish_bytes.is_closed());
        assert!(
            matches!(&*shared.closed.borrow(), Some(Error::ConnectionLost { reason, .. }) if reason.contains("dropped"))
        );
    }

    /// A publish that saw the state say `Blocked` waits, although the flag has not risen
    /// yet, until the unblock has lowered the flag as well.
    #[tokio::test]
    async fn a_publish_waits_from_the_moment_the_state_says_blocked() {
        let shared = ConnShared::for_tests();
        assert!(!shared.is_blocked());
        shared.set_state(blocked_state()); // a block, half done
        assert!(shared.is_blocked());
        fn pending<F: Future>(f: &mut std::pin::Pin<&mut F>) -> bool {
            let waker = std::task::Waker::noop();
            f.as_mut().poll(&mut std::task::Context::from_waker(waker)).is_pending()
        }
        let mut wait = std::pin::pin!(shared.unblocked());
        assert!(pending(&mut wait));
        shared.set_blocked(true, None); // the block, done
        assert!(pending(&mut wait));
        shared.set_state(ConnectionState::Connected); // an unblock, half done
        assert!(pending(&mut wait), "the flag is still up");
        assert!(shared.is_blocked());
        shared.set_blocked(false, None);
        assert!(!pending(&mut wait));
        assert!(!shared.is_blocked());
    }
}
