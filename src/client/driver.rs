//! The connection task: owns the socket and the [`proto::Connection`], serves commands
//! from handles, hands events to waiting futures and consumers.
//!
//! One wakeup = one `select!` branch, then: hand out every event the state machine
//! produced, move all of its pending output into the write buffer (frames from many
//! commands coalesce there), and loop. Writes go out with `write_buf`, reads come in
//! with `read_buf` into a reused buffer; both are cancel-safe, so a read and a write can
//! be in progress in the same `select!` (a broker that stops reading, e.g. while it has
//! blocked publishing, never stops us from reading its frames).
//!
//! Memory is bounded everywhere: commands come over a bounded queue and are not taken
//! while the write buffer is above a high-water mark; deliveries go to bounded consumer
//! queues. A delivery for a full consumer queue waits in that consumer's overflow, and
//! the task keeps reading (so replies, confirms and other consumers' deliveries behind
//! it still arrive) until the overflow of all consumers reaches [`OVERFLOW_BUDGET`];
//! then it stops reading the socket (TCP flow control slows the broker) but keeps
//! serving commands, so acks still flow.
//!
//! Commands of one channel keep their order. Some must wait (calls behind an unanswered
//! consume or cancel, publishes while the server blocks publishing): the state machine
//! holds them (`proto::Connection::held`); the task only stops taking commands while it
//! holds too many.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};

use super::config::ConnectionConfig;
use super::confirm::Confirmed;
use super::connection::BoxTransport;
use super::handoff::{DeliveryQueue, DeliverySender, PushError, SETTLE_DELAY};
use super::metrics::Counters;
use super::recovery::{ConnectionState, Rng};
use super::shared::{CallReply, ChannelShared, Command, ConnShared, ConsumerEnd, Publish, Settle};
use crate::error::{Error, Initiator};
use crate::fastmap::FastMap;
use crate::proto::{self, ChannelId, Delivery, Event, Keyed, Store};
use crate::wire::{BasicCancel, BasicConsumeOk, BasicProperties, BasicPublish, Method, ReplyCode, ShortStr};
use pacing::{ReadPacing, Streamed};

mod pacing;
mod replay;

/// Read buffer size; also the minimum free space before each read.
const READ_BUF: usize = 128 * 1024;
const READ_MIN_FREE: usize = 16 * 1024;
/// Stop taking commands while this much output waits to be written.
const WRITE_HIGH_WATER: usize = 1024 * 1024;
/// Commands taken per wakeup before output is written.
const COMMAND_BATCH: usize = 256;
/// Bytes of deliveries held for full consumer queues before the task stops reading.
const OVERFLOW_BUDGET: usize = 16 * 1024 * 1024;
/// Commands the state machine holds back (behind a consume or cancel, or while the
/// server blocks publishing) before the task stops taking commands.
const HELD_MAX: usize = 1024;
/// Bytes of held commands before the task stops taking commands.
const HELD_BYTES_MAX: usize = 16 * 1024 * 1024;
/// What a delivery costs besides its body, for the overflow budget.
const DELIVERY_OVERHEAD: usize = 256;
/// How long the final write (close / close-ok) may take once the connection is closed.
const FINAL_WRITE: Duration = Duration::from_secs(2);

/// A call waiting for its reply, in the order calls were made on the channel.
enum Pending {
    /// A call; `reply` is `None` when the caller does not want the reply.
    Call { reply: Option<oneshot::Sender<CallReply>> },
    /// `basic.consume`: on `consume-ok` the consumer is registered.
    Consume {
        deliveries: DeliverySender,
        end: Arc<ConsumerEnd>,
        no_ack: bool,
        reply: oneshot::Sender<Result<ShortStr, Error>>,
    },
}

struct ConsumerSlot {
    /// `None` once the consumer handle is gone: deliveries are requeued.
    tx: Option<DeliverySender>,
    end: Arc<ConsumerEnd>,
    no_ack: bool,
    /// Deliveries waiting for room in the consumer's queue, in order.
    overflow: VecDeque<Delivery>,
    /// The consumer ended (cancel-ok or server cancel): its sender goes once the
    /// overflow is handed over.
    ended: bool,
}

impl ConsumerSlot {
    fn new(tx: Option<DeliverySender>, end: Arc<ConsumerEnd>, no_ack: bool) -> Self {
        ConsumerSlot {
            tx,
            end,
            no_ack,
            overflow: VecDeque::new(),
            ended: false,
        }
    }
}

fn cost(d: &Delivery) -> usize {
    d.body.len() + DELIVERY_OVERHEAD
}

/// A publish waiting for its confirm.
struct Unconfirmed {
    reply: oneshot::Sender<Result<Confirmed, Error>>,
    _permit: OwnedSemaphorePermit,
    /// The message, kept in republish mode to send it again after a recovery.
    message: Option<Box<Stored>>,
    /// Publish order on the connection (republished messages keep theirs).
    order: u64,
}

/// A published message, as recovery republishes it.
struct Stored {
    args: BasicPublish,
    properties: BasicProperties,
    body: bytes::Bytes,
}

struct Slot {
    shared: Arc<ChannelShared>,
    open_reply: Option<oneshot::Sender<Result<Arc<ChannelShared>, Error>>>,
    pending: VecDeque<Pending>,
    consumers: FastMap<ShortStr, ConsumerSlot>,
    confirms: FastMap<u64, Unconfirmed>,
    close_waiters: Vec<oneshot::Sender<Result<(), Error>>>,
    /// Unconfirmed publishes of a lost connection, to send again once recovered.
    republish: Vec<Unconfirmed>,
}

impl Keyed for Slot {
    fn channel_id(&self) -> ChannelId {
        self.shared.id
    }
}

impl Slot {
    /// Bytes of deliveries held in this channel's consumer overflows.
    fn overflow_bytes(&self) -> usize {
        self.consumers.values().flat_map(|c| c.overflow.iter()).map(cost).sum()
    }

    fn new(shared: Arc<ChannelShared>, open_reply: Option<oneshot::Sender<Result<Arc<ChannelShared>, Error>>>) -> Self {
        Slot {
            shared,
            open_reply,
            pending: VecDeque::new(),
            consumers: FastMap::default(),
            confirms: FastMap::default(),
            close_waiters: Vec::new(),
            republish: Vec::new(),
        }
    }

    /// Fails everything waiting on the channel with `error`; unconfirmed publishes
    /// resolve with it too (outcome unknown) and are counted.
    fn fail(self, error: &Error, counters: &Counters) {
        self.shared.set_closed(error.clone());
        if let Some(reply) = self.open_reply {
            let _ = reply.send(Err(error.clone()));
        }
        for p in self.pending {
            match p {
                Pending::Call { reply: Some(reply), .. } => {
                    let _ = reply.send(Err(error.clone()));
                }
                Pending::Call { reply: None } => {}
                Pending::Consume { reply, .. } => {
                    let _ = reply.send(Err(error.clone()));
                }
            }
        }
        for (_, c) in self.consumers {
            let _ = c.end.reason.set(error.clone());
        }
        for u in self.confirms.into_values().chain(self.republish) {
            Counters::inc(&counters.unknown);
            let _ = u.reply.send(Err(error.clone()));
        }
        // Our own close (client, any code we chose) succeeded; anything else is why
        // the close did not go as asked.
        let ours = matches!(
            error,
            Error::ChannelClosed {
                by: Initiator::Application,
                ..
            }
        );
        for w in self.close_waiters {
            let _ = w.send(if ours { Ok(()) } else { Err(error.clone()) });
        }
    }
}

/// A publish's confirm, its outcome, and the window slot freed when it is answered.
type ConfirmAnswer = (
    oneshot::Sender<Result<Confirmed, Error>>,
    Confirmed,
    Option<OwnedSemaphorePermit>,
);

/// A consumer with overflow, waiting for room in its queue.
struct Waiter {
    channel: ChannelId,
    consumer_tag: ShortStr,
    queue: Arc<DeliveryQueue>,
}

pub(crate) struct Driver {
    conn: proto::Connection,
    shared: Arc<ConnShared>,
    channels: Store<Slot>,
    connected: Option<oneshot::Sender<Result<(), Error>>>,
    close_waiters: Vec<oneshot::Sender<Result<(), Error>>>,
    secret_waiters: VecDeque<oneshot::Sender<Result<(), Error>>>,
    /// Consumers with overflow, each waiting for room in its queue.
    waiters: Vec<Waiter>,
    /// Consumer queues that got deliveries since their consumer was last woken.
    unannounced: Vec<Arc<DeliveryQueue>>,
    /// Publishes confirmed by the events being dispatched, answered after the last one
    /// so that the publisher wakes once for all of them.
    confirmed: Vec<ConfirmAnswer>,
    /// Since the task last slept: it handed deliveries to a consumer that acks them.
    /// Then it may sleep deaf: the consumer wakes it when it is through the batch (see
    /// [`TaskWake`]).
    handed_batch: bool,
    /// Deliveries and confirms handed out since the last read ([`ReadPacing`]).
    streamed: Streamed,
    pacing: ReadPacing,
    /// Since the task last slept: it sent acks. Then it may sleep deaf while a consumer
    /// is in the middle of a batch.
    acks_sent: bool,
    /// Since the task last slept: it sent publishes of a confirm channel. Then it may
    /// sleep deaf: their publisher wakes it before it waits (see [`TaskWake`]).
    publishes_seen: bool,
    overflow_bytes: usize,
    /// Some handle is still there (the command queue is open).
    commands_open: bool,
    /// The application asked to close: no recovery any more.
    closing: bool,
    /// Why the connection ended, when the state machine's own error is not the answer
    /// (the application closed it while recovering, recovery gave up).
    final_error: Option<Error>,
    /// The configuration, for reconnecting.
    config: Arc<ConnectionConfig>,
    /// `Some` from the loss of the connection until recovery finished.
    recovery: Option<Recovery>,
    /// Commands that wait for the recovery to finish, in order.
    parked: VecDeque<Command>,
    /// Publish order, for republishing in order.
    publish_order: u64,
    rng: Rng,
}

/// A recovery under way.
struct Recovery {
    cause: Error,
    /// Attempts so far (reset once a recovery completes).
    attempt: u32,
}

fn now() -> Instant {
    Instant::now()
}

impl Driver {
    pub(crate) fn new(
        conn: proto::Connection,
        shared: Arc<ConnShared>,
        connected: oneshot::Sender<Result<(), Error>>,
        config: Arc<ConnectionConfig>,
    ) -> Self {
        Driver {
            conn,
            shared,
            channels: Store::default(),
            connected: Some(connected),
            close_waiters: Vec::new(),
            secret_waiters: VecDeque::new(),
            waiters: Vec::new(),
            unannounced: Vec::new(),
            confirmed: Vec::new(),
            handed_batch: false,
            streamed: Streamed::default(),
            pacing: ReadPacing::new(config.read_coalescing),
            acks_sent: false,
            publishes_seen: false,
            overflow_bytes: 0,
            commands_open: true,
            closing: false,
            final_error: None,
            config,
            recovery: None,
            parked: VecDeque::new(),
            publish_order: 0,
            rng: Rng::seeded(),
        }
    }

    /// Runs the connection until it is closed for good and every handle is told why:
    /// one session per transport; between sessions, recovery reconnects.
    pub(crate) async fn run(mut self, stream: BoxTransport, mut commands: mpsc::Receiver<Command>) {
        let mut stream = stream;
        loop {
            self.session(stream, &mut commands).await;
            let error = self.conn.error().cloned().unwrap_or(Error::Closed);
            if !self.will_recover(&error) {
                break;
            }
            self.suspend(error);
            match self.reconnect(&mut commands).await {
                Some(next) => stream = next,
                None => break,
            }
        }
        self.finish();
    }

    /// Runs one transport until the state machine is closed.
    async fn session(&mut self, stream: BoxTransport, commands: &mut mpsc::Receiver<Command>) {
        let (mut rd, mut wr) = tokio::io::split(stream);
        let mut rbuf = BytesMut::with_capacity(READ_BUF);
        let mut wbuf = BytesMut::with_capacity(READ_BUF);
        let mut need_flush = false;
        let mut eof = false;
        // Two timers that live as long as the session: a tokio timer registered earlier
        // than the runtime's next planned wake-up makes it write its eventfd, even from
        // its own thread, so a fresh timer per wakeup costs two system calls. Pushed
        // later, a timer only moves a number.
        let mut deadlines = SessionTimer::new();
        let mut settle = SessionTimer::new();
        // Armed: not reading until it fires (see `ReadPacing`); `Some` while it is armed:
        // a thread parked during the pause sleeps until then.
        let mut read_pause = SessionTimer::new();
        let mut pause_latest = None;
        loop {
            self.dispatch();
            self.conn.poll_transmit(now(), &mut wbuf);
            if self.conn.is_closed() {
                // Best effort: the close or close-ok we still owe the server.
                let _ = tokio::time::timeout(FINAL_WRITE, async {
                    if !wbuf.is_empty() {
                        wr.write_all(&wbuf).await?;
                    }
                    wr.flush().await?;
                    wr.shutdown().await
                })
                .await;
                break;
            }
            if rbuf.capacity() - rbuf.len() < READ_MIN_FREE {
                rbuf.reserve(READ_BUF);
            }
            let deadline = self.conn.poll_timeout().map(tokio::time::Instant::from_std);
            let can_read = !eof && self.overflow_bytes < OVERFLOW_BUDGET && !read_pause.is_armed();
            let held = self.conn.held();
            let take_commands = self.commands_open
                && wbuf.len() < WRITE_HIGH_WATER
                && held.commands < HELD_MAX
                && held.bytes < HELD_BYTES_MAX;
            let want_write = !wbuf.is_empty() || need_flush;
            // Deaf while a consumer acks its way through a batch (see `TaskWake`).
            let acks_coming = std::mem::take(&mut self.handed_batch)
                || (std::mem::take(&mut self.acks_sent) && self.shared.wake.in_batch());
            // Deaf, too, for the rest of a read pause: senders that must not wait call a
            // deaf task, and it can then sleep where the broker's writes do not wake it.
            let mut deaf =
                take_commands && (acks_coming || std::mem::take(&mut self.publishes_seen) || read_pause.is_armed());
            let mut early = None;
            if deaf {
                self.shared.wake.set_deaf(true);
                // With a waker that does nothing, so that senders stop waking us; a
                // command queued before we went deaf is taken now.
                if let Poll::Ready(cmd) = commands.poll_recv(&mut Context::from_waker(Waker::noop())) {
                    self.shared.wake.set_deaf(false);
                    deaf = false;
                    early = Some(cmd);
                }
            }
            deadlines.set(deadline);
            settle.set(deaf.then(|| tokio::time::Instant::now() + SETTLE_DELAY));
            if let Some(latest) = pause_latest
                && deaf
                && !want_write
                && self.waiters.is_empty()
            {
                // Nothing to hear but the senders, who call a deaf task through
                // `TaskWake`, and the timers: sleep outside the runtime, where the
                // broker's writes during the pause do not wake the thread.
                let timers = [settle.deadline(), deadlines.deadline()].into_iter().flatten();
                let until = timers.map(tokio::time::Instant::into_std).fold(latest, Instant::min);
                self.shared.wake.park_until(until);
            }
            let woke = if let Some(cmd) = early {
                Wakeup {
                    command: Some(cmd),
                    ..Wakeup::default()
                }
            } else {
                // One wakeup: poll every enabled source once and keep every result that is
                // ready, so a busy socket cannot starve commands (or the reverse).
                let shared = self.shared.clone();
                let waiters = &self.waiters;
                let mut write = pin!(when(want_write, write_or_flush(&mut wr, &mut wbuf)));
                let mut read = pin!(when(can_read, rd.read_buf(&mut rbuf)));
                let mut command = pin!(when(take_commands && !deaf, commands.recv()));
                let mut notified = pin!(when(deaf, shared.wake.notified()));
                let mut woke = Wakeup::default();
                std::future::poll_fn(|cx| {
                    if let Poll::Ready(r) = write.as_mut().poll(cx) {
                        woke.write = Some(r);
                    }
                    if let Poll::Ready(r) = read.as_mut().poll(cx) {
                        woke.read = Some(r);
                    }
                    if let Poll::Ready(r) = poll_room(waiters, cx) {
                        woke.room = Some(r);
                    }
                    if let Poll::Ready(r) = command.as_mut().poll(cx) {
                        woke.command = Some(r);
                    }
                    if let Poll::Ready(()) = notified.as_mut().poll(cx) {
                        woke.listen = true;
                    }
                    if deadlines.poll(cx).is_ready() {
                        woke.timer = true;
                    }
                    if settle.poll(cx).is_ready() {
                        woke.listen = true;
                    }
                    if read_pause.poll(cx).is_ready() {
                        woke.resume_read = true;
                    }
                    if woke.is_empty() {
                        Poll::Pending
                    } else {
                        Poll::Ready(())
                    }
                })
                .await;
                woke
            };
            if deaf {
                self.shared.wake.set_deaf(false);
            }
            if let Some(r) = woke.write {
                match r {
                    Ok(Some(0)) => self.conn.handle_io_error(io::ErrorKind::WriteZero.into()),
                    Ok(Some(_)) => need_flush = true,
                    Ok(None) => need_flush = false,
                    Err(e) => self.conn.handle_io_error(e),
                }
            }
            if let Some(r) = woke.read {
                match r {
                    Ok(0) => {
                        eof = true;
                        self.conn.handle_eof();
                    }
                    Ok(n) => {
                        self.conn.handle_input(&mut rbuf, now());
                        // Before the commands of this wakeup: a command for a channel the
                        // server just closed must find it closed, with the reason.
                        self.dispatch();
                        let streamed = std::mem::take(&mut self.streamed);
                        if streamed.count > 0 {
                            let awaited = self.conn.awaits_reply();
                            if let Some(pause) = self.pacing.after_stream(now(), n, streamed, awaited) {
                                Counters::inc(&self.shared.counters.read_pauses);
                                read_pause.set(Some(tokio::time::Instant::from_std(pause.timer)));
                                pause_latest = Some(pause.latest);
                            }
                        }
                    }
                    Err(e) => {
                        eof = true;
                        self.conn.handle_io_error(e);
                    }
                }
            }
            if woke.resume_read {
                read_pause.set(None);
                pause_latest = None;
            }
            if let Some((i, r)) = woke.room {
                self.on_room(i, r);
            }
            if let Some(cmd) = woke.command {
                match cmd {
                    Some(cmd) => {
                        self.command(cmd);
                        for _ in 1..COMMAND_BATCH {
                            match commands.try_recv() {
                                Ok(cmd) => self.command(cmd),
                                Err(_) => break,
                            }
                        }
                    }
                    None => {
                        self.commands_open = false;
                        tracing::debug!("every handle dropped: closing the connection");
                        if self.conn.state() == proto::State::Open {
                            let _ = self.conn.close(now(), ReplyCode::SUCCESS, "every handle dropped");
                        } else {
                            // Still in a recovery's handshake: just drop it.
                            self.conn.handle_io_error(io::Error::other("every handle dropped"));
                        }
                    }
                }
            }
            if woke.timer {
                self.conn.handle_timeout(now());
            }
        }
    }

    /// Takes every available event.
    fn dispatch(&mut self) {
        while let Some(event) = self.conn.poll_event() {
            self.event(event);
        }
        // One wake-up per consumer and publisher for everything this read brought.
        for queue in self.unannounced.drain(..) {
            queue.announce();
        }
        // Window slots first, then the answers, newest first: a publisher awaiting its
        // oldest confirm wakes once, with all of them in.
        for (_, _, permit) in &mut self.confirmed {
            drop(permit.take());
        }
        for (reply, outcome, _) in self.confirmed.drain(..).rev() {
            let _ = reply.send(Ok(outcome));
        }
    }

    /// Room in the queue of consumer `waiters[i]` (`Ok`), or its consumer is gone
    /// (`Err`): hand over as much overflow as fits.
    fn on_room(&mut self, i: usize, room: Result<(), ()>) {
        let Waiter {
            channel, consumer_tag, ..
        } = self.waiters.swap_remove(i);
        let Some(slot) = self.slot(channel) else { return };
        let Some(c) = slot.consumers.get_mut(&consumer_tag) else {
            return;
        };
        let mut freed = 0;
        let mut orphans = Vec::new();
        let mut announce = None;
        match (room, &c.tx) {
            (Ok(()), Some(tx)) => {
                while let Some(d) = c.overflow.pop_front() {
                    let size = cost(&d);
                    match tx.push(d) {
                        Ok(_) => freed += size,
                        Err(PushError::Full(d)) => {
                            c.overflow.push_front(d);
                            break;
                        }
                        Err(PushError::Closed(d)) => orphans.push(d),
                    }
                }
                announce = Some(tx.queue());
            }
            _ => orphans.extend(c.overflow.drain(..)),
        }
        let wait_again = match (&c.tx, c.overflow.is_empty()) {
            (Some(tx), false) => Some(tx.queue()),
            _ => None,
        };
        let handed_batch = !c.no_ack && announce.is_some();
        let done = c.ended && c.overflow.is_empty();
        if done {
            slot.consumers.remove(&consumer_tag);
        }
        for d in &orphans {
            freed += cost(d);
        }
        self.overflow_bytes = self.overflow_bytes.saturating_sub(freed);
        self.handed_batch |= handed_batch;
        self.unannounced.extend(announce);
        for d in orphans {
            self.orphan_delivery(channel, d);
        }
        if let Some(queue) = wait_again {
            self.waiters.push(Waiter {
                channel,
                consumer_tag,
                queue,
            });
        }
    }

    fn event(&mut self, event: Event) {
        match event {
            Event::Connected {
                server_properties,
                tune,
            } => {
                tracing::info!(
                    channel_max = tune.channel_max,
                    frame_max = tune.frame_max,
                    heartbeat = tune.heartbeat,
                    "connection open"
                );
                self.shared.set_handshake(tune, server_properties);
                // After a recovery's reconnection, the state machine restores and then
                // reports `Recovered`.
                if let Some(tx) = self.connected.take() {
                    self.shared.set_state(ConnectionState::Connected);
                    let _ = tx.send(Ok(()));
                }
            }
            Event::Blocked { reason } => {
                tracing::warn!(%reason, "connection blocked by the server: publishes wait");
                self.shared.counters.set_blocked(true);
                self.shared.blocked.send_replace(true);
                if self.recovery.is_none() {
                    self.shared.set_state(ConnectionState::Blocked { reason });
                }
            }
            Event::Unblocked => {
                tracing::info!("connection unblocked");
                self.shared.counters.set_blocked(false);
                self.shared.blocked.send_replace(false);
                if self.recovery.is_none() {
                    self.shared.set_state(ConnectionState::Connected);
                }
            }
            Event::ChannelOpened(id) => {
                let Some(slot) = self.slot(id) else { return };
                tracing::debug!(channel = id.number(), "channel open");
                let reply = slot.open_reply.take();
                let shared = slot.shared.clone();
                if let Some(reply) = reply
                    && reply.send(Ok(shared)).is_err()
                {
                    // Nobody waits for it any more (the open was cancelled): close it.
                    let _ = self.conn.close_channel(id, ReplyCode::SUCCESS, "open cancelled");
                }
            }
            Event::ChannelClosed { channel, error } => {
                if error.is_connection_error() && self.will_recover(&error) {
                    // The connection is lost, not the channel: recovery reopens it.
                    return;
                }
                if let Some(slot) = self.channels.remove(channel) {
                    tracing::debug!(channel = channel.number(), %error, "channel closed");
                    self.forget_slot_budgets(&slot);
                    slot.fail(&error, &self.shared.counters);
                }
            }
            Event::Reply {
                channel,
                method,
                content,
            } => {
                if content.is_some() {
                    Counters::inc(&self.shared.counters.delivered);
                }
                self.reply(channel, method, content.map(|c| *c));
            }
            Event::Delivery { channel, delivery } => {
                Counters::inc(&self.shared.counters.delivered);
                if delivery.redelivered {
                    Counters::inc(&self.shared.counters.redelivered);
                }
                // Unboxed here, on the thread that allocated it: a box freed by the
                // consumer's thread would cost a cross-thread free.
                self.delivery(channel, *delivery)
            }
            Event::Confirm {
                channel,
                seq,
                ack,
                returned,
            } => {
                let counters = &self.shared.counters;
                Counters::inc(if ack { &counters.confirmed } else { &counters.nacked });
                if returned.is_some() {
                    Counters::inc(&counters.returned);
                }
                // A publisher may wait for the next confirms once half its window is.
                self.streamed.add(Some(self.conn.unconfirmed(channel) / 2));
                let Some(slot) = self.channels.get_mut(channel) else {
                    return;
                };
                if let Some(Unconfirmed {
                    reply, _permit: permit, ..
                }) = slot.confirms.remove(&seq)
                {
                    let outcome = match returned {
                        Some(message) => Confirmed::Returned { ack, message },
                        None if ack => Confirmed::Ack,
                        None => Confirmed::Nack,
                    };
                    self.confirmed.push((reply, outcome, Some(permit)));
                }
            }
            Event::Return { channel, returned } => {
                Counters::inc(&self.shared.counters.returned);
                let listener = self
                    .slot(channel)
                    .and_then(|slot| slot.shared.returns.lock().ok().and_then(|r| r.clone()));
                // Never wait here: a listener that does not keep up loses notices, not messages
                // (the broker already dropped the message it returns).
                let undelivered = match listener {
                    Some(tx) => tx.try_send(*returned).err().map(|e| match e {
                        mpsc::error::TrySendError::Full(r) | mpsc::error::TrySendError::Closed(r) => r,
                    }),
                    None => Some(*returned),
                };
                if let Some(returned) = undelivered {
                    tracing::warn!(
                        channel = channel.number(),
                        code = returned.reply_code.0,
                        exchange = %returned.exchange,
                        routing_key = %returned.routing_key,
                        "basic.return outside confirm mode with no room in Channel::returns: dropped"
                    );
                }
            }
            Event::ConsumerCancelled { channel, consumer_tag } => {
                let Some(slot) = self.slot(channel) else { return };
                tracing::info!(channel = channel.number(), %consumer_tag, "consumer cancelled by the server");
                let _ = end_consumer(slot, &consumer_tag, Some(Error::consumer_cancelled(&consumer_tag)));
            }
            Event::Flow { channel, active } => {
                tracing::info!(channel = channel.number(), active, "channel.flow from the server");
            }
            Event::Recovered(report) => self.finish_replay(*report),
            Event::SecretUpdated => {
                if let Some(w) = self.secret_waiters.pop_front() {
                    let _ = w.send(Ok(()));
                }
            }
            Event::ConnectionClosed(error) => {
                match &error {
                    Error::ConnectionClosed {
                        by: Initiator::Application,
                        code: ReplyCode::SUCCESS,
                        ..
                    } => {
                        tracing::info!("connection closed")
                    }
                    e => tracing::warn!(error = %e, "connection closed"),
                }
                if !self.will_recover(&error) {
                    self.shared.closed.send_replace(Some(error));
                }
            }
        }
    }

    /// A slot leaves: its consumer overflow no longer counts against the connection's
    /// budget.
    fn forget_slot_budgets(&mut self, slot: &Slot) {
        self.overflow_bytes = self.overflow_bytes.saturating_sub(slot.overflow_bytes());
    }

    /// The slot of `id`, if it is still that channel (not a successor on its number).
    fn slot(&mut self, id: ChannelId) -> Option<&mut Slot> {
        self.channels.get_mut(id)
    }

    fn reply(&mut self, channel: ChannelId, method: Method, content: Option<proto::Content>) {
        let Some(slot) = self.slot(channel) else { return };
        if let Method::BasicCancelOk(ok) = &method {
            let _ = end_consumer(slot, &ok.consumer_tag, None);
        }
        match slot.pending.pop_front() {
            Some(Pending::Call { reply }) => {
                match reply {
                    Some(reply) => {
                        if let Err(Ok((_, Some(content)))) = reply.send(Ok((method, content))) {
                            // A cancelled basic.get: give the message back.
                            let _ = self.conn.reject(content.tag, true);
                        }
                    }
                    None => {
                        if let Some(content) = content {
                            let _ = self.conn.reject(content.tag, true);
                        }
                    }
                }
            }
            Some(Pending::Consume {
                deliveries,
                end,
                no_ack,
                reply,
            }) => {
                if let Method::BasicConsumeOk(ok) = method {
                    let tag = ok.consumer_tag;
                    let cancelled = reply.send(Ok(tag.clone())).is_err();
                    slot.consumers.insert(
                        tag.clone(),
                        ConsumerSlot::new((!cancelled).then_some(deliveries), end, no_ack),
                    );
                    if cancelled {
                        // The basic_consume future was dropped: nobody will read this consumer.
                        self.cancel_consumer(channel, tag);
                    }
                } else {
                    let _ = reply.send(Err(Error::unexpected(&[BasicConsumeOk::ID], method.id())));
                }
            }
            None => tracing::debug!(channel = channel.number(), method = %method.id(), "reply with no pending call"),
        }
    }

    fn delivery(&mut self, channel: ChannelId, delivery: Delivery) {
        let Some(slot) = self.channels.get_mut(channel) else {
            self.orphan_delivery(channel, delivery);
            return;
        };
        let prefetch = usize::from(slot.shared.prefetch.load(Ordering::Relaxed));
        let Some(c) = slot.consumers.get_mut(&delivery.consumer_tag) else {
            self.orphan_delivery(channel, delivery);
            return;
        };
        let Some(tx) = &c.tx else {
            self.orphan_delivery(channel, delivery);
            return;
        };
        // The broker waits for acks once the prefetch is used up.
        let headroom = (!c.no_ack && prefetch != 0).then(|| prefetch.saturating_sub(self.conn.unacked(channel)));
        self.streamed.add(headroom);
        if !c.overflow.is_empty() {
            // Keep the order: behind what already waits.
            self.overflow_bytes += cost(&delivery);
            c.overflow.push_back(delivery);
            return;
        }
        match tx.push(delivery) {
            Ok(first) => {
                if first {
                    self.unannounced.push(tx.queue());
                }
                self.handed_batch |= !c.no_ack;
            }
            Err(PushError::Full(delivery)) => {
                let queue = tx.queue();
                let consumer_tag = delivery.consumer_tag.clone();
                self.overflow_bytes += cost(&delivery);
                c.overflow.push_back(delivery);
                self.waiters.push(Waiter {
                    channel,
                    consumer_tag,
                    queue,
                });
            }
            Err(PushError::Closed(delivery)) => self.orphan_delivery(channel, delivery),
        }
    }

    /// A delivery nobody will read: requeue it, and cancel its consumer.
    fn orphan_delivery(&mut self, channel: ChannelId, delivery: Delivery) {
        let no_ack = self.abandon_consumer(channel, &delivery.consumer_tag);
        if !no_ack {
            let _ = self.conn.reject(delivery.tag, true);
        }
    }

    /// Nobody reads consumer `consumer_tag` any more: requeue its overflow and cancel
    /// it (once). Returns whether it is a no-ack consumer.
    fn abandon_consumer(&mut self, channel: ChannelId, consumer_tag: &ShortStr) -> bool {
        let Some(slot) = self.slot(channel) else { return false };
        let Some(c) = slot.consumers.get_mut(consumer_tag) else {
            return false;
        };
        let first = c.tx.take().is_some();
        let no_ack = c.no_ack;
        let overflow: Vec<Delivery> = c.overflow.drain(..).collect();
        if c.ended {
            slot.consumers.remove(consumer_tag);
        }
        for d in overflow {
            self.overflow_bytes = self.overflow_bytes.saturating_sub(cost(&d));
            if !no_ack {
                let _ = self.conn.reject(d.tag, true);
            }
        }
        if first {
            self.cancel_consumer(channel, consumer_tag.clone());
        }
        no_ack
    }

    /// Sends `basic.cancel` for a consumer nobody reads; its reply is discarded.
    fn cancel_consumer(&mut self, channel: ChannelId, consumer_tag: ShortStr) {
        tracing::debug!(channel = channel.number(), %consumer_tag, "cancelling an abandoned consumer");
        let method = Method::BasicCancel(BasicCancel {
            consumer_tag,
            no_wait: false,
        });
        self.command(Command::Call {
            channel,
            method: Box::new(method),
            reply: None,
        });
    }

    fn command(&mut self, cmd: Command) {
        if self.conn.is_closed() && self.conn.error().is_some_and(|e| self.will_recover(e)) {
            // Lost a moment ago (in this same wakeup), recovery about to start.
            let _ = self.recovering_command(cmd);
            return;
        }
        if self.recovery.is_some() {
            match cmd {
                // Acks go to the state machine, which refuses stale tags; a close ends the
                // recovery (see `recovering_command` for the time without a connection).
                Command::Settle { .. } => {}
                Command::Close { code, text, reply } if self.conn.state() != proto::State::Open => {
                    self.close_while_recovering(code, text, reply);
                    self.conn
                        .handle_io_error(io::Error::other("closed by the application while recovering"));
                    return;
                }
                Command::Close { .. } => {}
                cmd => {
                    self.park(cmd);
                    return;
                }
            }
        }
        self.execute(cmd);
    }

    /// Keeps `cmd` until the recovery finishes (bounded: beyond the command queue's
    /// capacity, it fails with [`Error::NotConnected`]).
    fn park(&mut self, cmd: Command) {
        if self.parked.len() >= self.config.command_capacity.max(HELD_MAX) {
            fail_command(cmd, &Error::NotConnected);
        } else {
            self.parked.push_back(cmd);
        }
    }

    fn execute(&mut self, cmd: Command) {
        match cmd {
            Command::OpenChannel { reply } => match self.conn.open_channel() {
                Ok(id) => {
                    let shared = Arc::new(ChannelShared::new(id, self.shared.limits.publish_window));
                    let slot = Slot::new(shared, Some(reply));
                    // A number is reused only after close-ok, whose event removed the old slot.
                    self.channels.insert(slot);
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            Command::Call { channel, method, reply } => {
                let wants_reply = method.expects_reply();
                let side = Side::of(&method);
                match self.conn.call(channel, *method) {
                    Ok(()) => {
                        let Some(slot) = self.slot(channel) else { return };
                        side.apply(slot);
                        if wants_reply {
                            slot.pending.push_back(Pending::Call { reply });
                        } else if let Some(reply) = reply {
                            // No reply will come: answer with the sent method's own ack.
                            let _ = reply.send(Err(Error::InvalidArgument("no reply expected".into())));
                        }
                    }
                    Err(e) => {
                        if let Some(reply) = reply {
                            let _ = reply.send(Err(e));
                        }
                    }
                }
            }
            Command::Consume {
                channel,
                method,
                deliveries,
                end,
                reply,
            } => {
                let (no_wait, no_ack) = (method.no_wait, method.no_ack);
                let tag = method.consumer_tag.clone();
                match self.conn.call(channel, Method::BasicConsume(*method)) {
                    Ok(()) => {
                        let Some(slot) = self.slot(channel) else { return };
                        if no_wait {
                            slot.consumers
                                .insert(tag.clone(), ConsumerSlot::new(Some(deliveries), end, no_ack));
                            let _ = reply.send(Ok(tag));
                        } else {
                            slot.pending.push_back(Pending::Consume {
                                deliveries,
                                end,
                                no_ack,
                                reply,
                            });
                        }
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Command::Publish(publish) => {
                let Publish {
                    channel,
                    args,
                    properties,
                    body,
                    confirm,
                } = *publish;
                // Its publisher sends the next ones without waking us (see `TaskWake`).
                self.publishes_seen |= confirm.is_some();
                match self.conn.publish(channel, &args, &properties, &body) {
                    Ok(Some(seq)) => {
                        Counters::inc(&self.shared.counters.published);
                        self.publish_order += 1;
                        let order = self.publish_order;
                        let republish = self.config.recovery.enabled && self.config.recovery.republish_unconfirmed;
                        if let Some((reply, permit)) = confirm
                            && let Some(slot) = self.slot(channel)
                        {
                            let message = republish.then(|| Box::new(Stored { args, properties, body }));
                            slot.confirms.insert(
                                seq,
                                Unconfirmed {
                                    reply,
                                    _permit: permit,
                                    message,
                                    order,
                                },
                            );
                        }
                    }
                    Ok(None) => {
                        Counters::inc(&self.shared.counters.published);
                        if let Some((reply, _permit)) = confirm {
                            let _ = reply.send(Ok(Confirmed::Sent));
                        }
                    }
                    Err(e) => match confirm {
                        Some((reply, _permit)) => {
                            let _ = reply.send(Err(e));
                        }
                        None => tracing::debug!(channel = channel.number(), error = %e, "publish refused"),
                    },
                }
            }
            Command::Settle { tag, how, reply } => {
                self.acks_sent = true;
                let r = match how {
                    Settle::Ack { multiple } => self.conn.ack(tag, multiple),
                    Settle::Nack { multiple, requeue } => self.conn.nack(tag, multiple, requeue),
                    Settle::Reject { requeue } => self.conn.reject(tag, requeue),
                };
                match (&r, how) {
                    (Ok(()), Settle::Ack { .. }) => Counters::inc(&self.shared.counters.acked),
                    (Err(Error::StaleDelivery { .. }), _) => Counters::inc(&self.shared.counters.stale),
                    _ => {}
                }
                match reply {
                    Some(reply) => {
                        let _ = reply.send(r);
                    }
                    // A `Delivery` settle the handle already checked; the state machine
                    // sent nothing, so the channel is safe, but say so.
                    None => {
                        if let Err(e) = r {
                            tracing::warn!(tag = tag.value(), error = %e, "settle refused");
                        }
                    }
                }
            }
            Command::ConsumerDropped {
                channel,
                consumer_tag,
                requeue,
            } => {
                for tag in requeue {
                    let _ = self.conn.reject(tag, true);
                }
                self.abandon_consumer(channel, &consumer_tag);
            }
            Command::CloseChannel {
                channel,
                code,
                text,
                reply,
            } => {
                match self.conn.close_channel(channel, code, &text) {
                    Ok(()) => {
                        tracing::debug!(channel = channel.number(), "closing channel");
                        if let (Some(reply), Some(slot)) = (reply, self.slot(channel)) {
                            slot.close_waiters.push(reply);
                        }
                    }
                    Err(e) => {
                        if let Some(reply) = reply {
                            let ours = matches!(
                                e,
                                Error::ChannelClosed {
                                    by: Initiator::Application,
                                    ..
                                }
                            );
                            let closing = self.slot(channel);
                            match closing {
                                // Already closing on our side: wait for the same close-ok.
                                Some(slot) if ours => slot.close_waiters.push(reply),
                                _ => {
                                    let _ = reply.send(if ours { Ok(()) } else { Err(e) });
                                }
                            }
                        }
                    }
                }
            }
            Command::Close { code, text, reply } => {
                self.closing = true;
                if self.conn.is_closed() || self.conn.state() == proto::State::AwaitCloseOk {
                    self.close_waiters.push(reply);
                    return;
                }
                match self.conn.close(now(), code, &text) {
                    Ok(()) => {
                        tracing::debug!("closing connection");
                        self.close_waiters.push(reply);
                    }
                    Err(Error::Closed) => self.close_waiters.push(reply),
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Command::UpdateSecret { secret, reply } => match self.conn.update_secret(secret.0, &secret.1) {
                Ok(()) => self.secret_waiters.push_back(reply),
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
        }
    }

    /// The connection is closed for good: tell everyone still waiting.
    fn finish(mut self) {
        self.dispatch_all();
        let error = self
            .final_error
            .take()
            .or_else(|| self.conn.error().cloned())
            .or_else(|| self.shared.closed.borrow().clone())
            .unwrap_or_else(|| Error::ConnectionLost {
                reason: "the connection task ended".into(),
                source: None,
            });
        if self.shared.closed.borrow().is_none() || self.recovery.is_some() {
            self.shared.closed.send_replace(Some(error.clone()));
        }
        self.shared.counters.set_blocked(false);
        self.shared.blocked.send_replace(false);
        self.shared.set_state(ConnectionState::Failed(error.clone()));
        if let Some(tx) = self.connected.take() {
            let _ = tx.send(Err(error.clone()));
        }
        for slot in self.channels.drain() {
            slot.fail(&error, &self.shared.counters);
        }
        for cmd in self.parked.drain(..) {
            fail_command(cmd, &error);
        }
        let ours = error.is_application_close();
        for w in self.close_waiters.drain(..) {
            let _ = w.send(if ours { Ok(()) } else { Err(error.clone()) });
        }
        for w in self.secret_waiters.drain(..) {
            let _ = w.send(Err(error.clone()));
        }
    }

    /// Hands out every remaining event; overflow is dropped with the channels (the
    /// connection is gone: those deliveries could not be acked anyway).
    fn dispatch_all(&mut self) {
        self.dispatch();
        self.waiters.clear();
    }
}

/// Side effects of a call on the channel's shared state, applied once it is sent.
enum Side {
    None,
    Confirm,
    Qos(u16),
    CancelNoWait(ShortStr),
}

impl Side {
    fn of(method: &Method) -> Side {
        match method {
            Method::ConfirmSelect(_) => Side::Confirm,
            Method::BasicQos(q) => Side::Qos(q.prefetch_count),
            Method::BasicCancel(c) if c.no_wait => Side::CancelNoWait(c.consumer_tag.clone()),
            _ => Side::None,
        }
    }

    fn apply(self, slot: &mut Slot) {
        match self {
            Side::None => {}
            Side::Confirm => slot.shared.confirm.store(true, Ordering::Release),
            Side::Qos(prefetch) => slot.shared.prefetch.store(prefetch, Ordering::Relaxed),
            Side::CancelNoWait(tag) => {
                let _ = end_consumer(slot, &tag, None);
            }
        }
    }
}

/// Writes some of `buf` (`Some(n)`), or flushes when it is empty (`None`). Cancel-safe:
/// bytes leave `buf` only in the poll that completes the write.
async fn write_or_flush<W: AsyncWrite + Unpin>(wr: &mut W, buf: &mut BytesMut) -> io::Result<Option<usize>> {
    if buf.is_empty() {
        wr.flush().await.map(|()| None)
    } else {
        wr.write_buf(buf).await.map(Some)
    }
}

/// Ends a consumer: with `reason` as the stream's last item (`None`: a plain end). Its
/// sender is dropped now, or once its overflow is handed over. Returns whether it existed.
fn end_consumer(slot: &mut Slot, consumer_tag: &ShortStr, reason: Option<Error>) -> bool {
    let Some(c) = slot.consumers.get_mut(consumer_tag) else {
        return false;
    };
    if let Some(reason) = reason {
        let _ = c.end.reason.set(reason);
    }
    if c.overflow.is_empty() {
        slot.consumers.remove(consumer_tag);
    } else {
        c.ended = true;
    }
    true
}

/// Answers a command that will never run with `error`.
fn fail_command(cmd: Command, error: &Error) {
    match cmd {
        Command::OpenChannel { reply } => drop(reply.send(Err(error.clone()))),
        Command::Call { reply: Some(reply), .. } => drop(reply.send(Err(error.clone()))),
        Command::Consume { reply, .. } => drop(reply.send(Err(error.clone()))),
        Command::Publish(p) => {
            if let Some((reply, _)) = p.confirm {
                let _ = reply.send(Err(error.clone()));
            }
        }
        Command::Settle { reply: Some(reply), .. } => drop(reply.send(Err(error.clone()))),
        Command::CloseChannel { reply: Some(reply), .. } => drop(reply.send(Ok(()))),
        Command::Close { reply, .. } | Command::UpdateSecret { reply, .. } => drop(reply.send(Err(error.clone()))),
        _ => {}
    }
}

/// The first consumer queue with room (`Ok`) or without a consumer (`Err`).
fn poll_room(waiters: &[Waiter], cx: &mut std::task::Context<'_>) -> Poll<(usize, Result<(), ()>)> {
    for (i, w) in waiters.iter().enumerate() {
        if let Poll::Ready(r) = w.queue.poll_room(cx) {
            return Poll::Ready((i, r));
        }
    }
    Poll::Pending
}

/// What one wakeup of the driver found ready.
#[derive(Default)]
struct Wakeup {
    write: Option<io::Result<Option<usize>>>,
    read: Option<io::Result<usize>>,
    room: Option<(usize, Result<(), ()>)>,
    command: Option<Option<Command>>,
    timer: bool,
    /// The task was deaf and must listen to its command queue again.
    listen: bool,
    /// A read pause is over.
    resume_read: bool,
}

impl Wakeup {
    fn is_empty(&self) -> bool {
        self.write.is_none()
            && self.read.is_none()
            && self.room.is_none()
            && self.command.is_none()
            && !self.timer
            && !self.listen
            && !self.resume_read
    }
}

/// `fut` when `enabled`, otherwise a future that never completes.
async fn when<F: Future>(enabled: bool, fut: F) -> F::Output {
    if enabled {
        fut.await
    } else {
        std::future::pending().await
    }
}

/// A timer armed to an optional deadline, reused across wakeups (see
/// [`Driver::session`]).
struct SessionTimer {
    sleep: std::pin::Pin<Box<tokio::time::Sleep>>,
    armed: bool,
}

impl SessionTimer {
    fn new() -> Self {
        SessionTimer {
            sleep: Box::pin(tokio::time::sleep_until(tokio::time::Instant::now())),
            armed: false,
        }
    }

    /// Arms the timer for `deadline`, or disarms it.
    fn set(&mut self, deadline: Option<tokio::time::Instant>) {
        self.armed = deadline.is_some();
        if let Some(d) = deadline
            && self.sleep.deadline() != d
        {
            self.sleep.as_mut().reset(d);
        }
    }

    fn is_armed(&self) -> bool {
        self.armed
    }

    /// The deadline, when armed.
    fn deadline(&self) -> Option<tokio::time::Instant> {
        self.armed.then(|| self.sleep.deadline())
    }

    /// Ready once an armed deadline has passed; a disarmed timer never is.
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match self.armed {
            true => self.sleep.as_mut().poll(cx),
            false => Poll::Pending,
        }
    }
}
