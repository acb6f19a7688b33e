//! The connection task: owns the socket and the [`proto::Connection`], serves commands
//! from handles, hands events to waiting futures and consumers.
//!
//! The task is a loop of named steps, as quinn's `ConnectionDriver` is (see
//! [`Driver::session`]): hand out the state machine's events, take its output, plan
//! what to wait for, wait for one wakeup ([`Session::wait`]), then feed what it brought
//! (written bytes, read bytes, room in a consumer queue, commands, timers) back in.
//!
//! Memory is bounded everywhere: commands come over a bounded queue and are not taken
//! while the write buffer is above a high-water mark; deliveries go to bounded consumer
//! queues. A delivery for a full consumer queue waits in that consumer's overflow, and
//! the task keeps reading (so replies, confirms and other consumers' deliveries behind
//! it still arrive) until the overflow of all consumers reaches [`OVERFLOW_BUDGET`], or
//! a consumer's buffer (its queue, its batch in hand and its overflow) is over its byte
//! budget (`ConnectionConfig::consumer_buffer_bytes`; checked only while some consumer
//! has overflow, so a delivery pays one addition under the queue's lock for it);
//! then it stops reading the socket (TCP flow control slows the broker) but keeps
//! serving commands, so acks still flow.
//!
//! Commands of one channel keep their order. Some must wait (calls behind an unanswered
//! consume or cancel, publishes while the server blocks publishing): the state machine
//! holds them (`proto::Connection::held`); the task only stops taking commands while it
//! holds too many.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use super::command::Command;
use super::config::ConnectionConfig;
use super::handoff::DeliveryQueue;
use super::publish::{ConfirmSender, Confirmed};
use super::shared::ConnShared;
use super::transport::BoxTransport;
use super::wake::{SETTLE_DELAY, WakeHints};
use crate::error::Error;
use crate::proto::Addresses;
use crate::proto::{self, Store};
use crate::rng::Rng;
use crate::wire::ReplyCode;
use session::{Plan, Session, Wakeup};
use slot::{Slot, Waiter, fail_command};

mod commands;
mod events;
mod reconnect;
mod session;
mod slot;

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

/// A publish's confirm, its outcome, and the window slot freed when it is answered.
pub(super) type ConfirmAnswer = (ConfirmSender, Confirmed);

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
    /// What, since the task last slept, lets it sleep deaf.
    hints: WakeHints,
    overflow_bytes: usize,
    /// Reading stopped because consumers' buffers are full (for the log: one event
    /// when it stops, one when it resumes).
    buffers_full: bool,
    /// Publish byte budget taken back since the last plan, given back to publishers
    /// there at once.
    publish_bytes_freed: usize,
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
    /// The commands one wakeup takes after its first (kept for its capacity).
    batch: Vec<Command>,
    /// Ledgers with queued settles, while they are taken (kept for its capacity).
    settle_ledgers: Vec<Arc<proto::Outstanding>>,
    /// Publish order, for republishing in order.
    publish_order: u64,
    rng: Rng,
    /// The brokers to connect to, and which one is in use (see `address.rs`).
    addresses: Addresses,
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
        addresses: Addresses,
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
            hints: WakeHints::default(),
            overflow_bytes: 0,
            buffers_full: false,
            publish_bytes_freed: 0,
            commands_open: true,
            closing: false,
            final_error: None,
            config,
            recovery: None,
            parked: VecDeque::new(),
            batch: Vec::new(),
            settle_ledgers: Vec::new(),
            publish_order: 0,
            rng: Rng::seeded(),
            addresses,
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
        self.finish(&mut commands).await;
    }

    /// Runs one transport until the state machine is closed: a loop of named steps.
    async fn session(&mut self, stream: BoxTransport, commands: &mut mpsc::Receiver<Command>) {
        let mut session = Session::new(stream);
        loop {
            self.dispatch();
            self.take_settles();
            // Into an empty write buffer the output moves by a swap. While the socket
            // still takes an earlier batch, new frames wait in the state machine (acks
            // there may still coalesce) instead of being copied behind it.
            if session.wbuf.is_empty() || self.conn.is_closed() {
                self.conn.poll_transmit_output(now(), &mut session.wbuf);
            }
            if self.conn.is_closed() {
                session.final_write().await;
                return;
            }
            let woke = match self.plan(&mut session, commands) {
                Ok(plan) => {
                    let woke = session.wait(plan, commands, &self.waiters, &self.shared.wake).await;
                    if plan.deaf {
                        self.shared.wake.set_deaf(false);
                    }
                    woke
                }
                Err(early) => Wakeup {
                    command: Some(early),
                    ..Wakeup::default()
                },
            };
            self.on_write(&mut session, woke.write);
            self.on_read(&mut session, woke.read);
            if woke.resume_read {
                session.read_pause.set(None);
                session.pause_latest = None;
            }
            if let Some((i, r)) = woke.room {
                self.on_room(i, r);
            }
            if let Some(cmd) = woke.command {
                self.on_commands(cmd, commands);
            }
            if woke.timer {
                self.conn.handle_timeout(now());
            }
        }
    }

    /// Decides what the next wakeup waits for and arms the timers; deaf, it may park the
    /// thread (see `TaskWake`). `Err` with a command that was queued before the task went
    /// deaf: no wait, take it now.
    fn plan(&mut self, s: &mut Session, commands: &mut mpsc::Receiver<Command>) -> Result<Plan, Option<Command>> {
        s.reserve_read();
        if self.publish_bytes_freed != 0 {
            self.shared
                .publish_bytes
                .add_permits(std::mem::take(&mut self.publish_bytes_freed));
        }
        self.shared
            .counters
            .overflow_bytes
            .store(self.overflow_bytes as u64, std::sync::atomic::Ordering::Relaxed);
        let held = self.conn.held();
        let full = !s.eof && (self.overflow_bytes >= OVERFLOW_BUDGET || self.consumer_over_budget());
        if full != self.buffers_full {
            self.buffers_full = full;
            tracing::debug!(
                overflow_bytes = self.overflow_bytes,
                "{}",
                if full {
                    "consumer buffers full: not reading the socket"
                } else {
                    "consumer buffers have room: reading again"
                }
            );
        }
        let mut plan = Plan {
            read: !s.eof && !full && !s.read_pause.is_armed(),
            write: s.wants_write(),
            commands: self.commands_open
                && s.wbuf.len() + self.conn.pending_transmit() < WRITE_HIGH_WATER
                && held.commands < HELD_MAX
                && held.bytes < HELD_BYTES_MAX,
            deaf: false,
        };
        plan.deaf = plan.commands
            && self
                .hints
                .take_deaf(self.shared.wake.in_batch(), s.read_pause.is_armed());
        if plan.deaf {
            self.shared.wake.set_deaf(true);
            // With a waker that does nothing, so that senders stop waking us; a command
            // queued before we went deaf is taken now.
            if let Poll::Ready(cmd) = commands.poll_recv(&mut Context::from_waker(Waker::noop())) {
                self.shared.wake.set_deaf(false);
                return Err(cmd);
            }
        }
        s.deadlines
            .set(self.conn.poll_timeout().map(tokio::time::Instant::from_std));
        s.settle
            .set(plan.deaf.then(|| tokio::time::Instant::now() + SETTLE_DELAY));
        if let Some(latest) = s.pause_latest
            && plan.deaf
            && !plan.write
            && self.waiters.is_empty()
            && self.config.own_thread
        {
            // Nothing to hear but the senders, who call a deaf task through `TaskWake`,
            // and the timers: sleep outside the runtime, where the broker's writes during
            // the pause do not wake the thread. (Not on the application's runtime, which
            // would stop with it: there the task waits for the same in `wait`.)
            let timers = [s.settle.deadline(), s.deadlines.deadline()].into_iter().flatten();
            let until = timers.map(tokio::time::Instant::into_std).fold(latest, Instant::min);
            self.shared.wake.park_until(until);
        }
        Ok(plan)
    }

    /// A write finished (`Some(n)` bytes, `None` for a flush), or failed.
    fn on_write(&mut self, s: &mut Session, written: Option<io::Result<Option<usize>>>) {
        match written {
            None => {}
            Some(Ok(Some(0))) => self.conn.handle_io_error(io::ErrorKind::WriteZero.into()),
            Some(Ok(Some(_))) => s.need_flush = true,
            Some(Ok(None)) => s.need_flush = false,
            Some(Err(e)) => self.conn.handle_io_error(e),
        }
    }

    /// A read brought `n` bytes (0: end of stream), or failed: feed them in, hand out
    /// what they made, and maybe pause reading (`proto::Connection::read_pause`).
    fn on_read(&mut self, s: &mut Session, read: Option<io::Result<usize>>) {
        match read {
            None => {}
            Some(Ok(0)) => {
                s.eof = true;
                self.conn.handle_eof();
            }
            Some(Ok(n)) => {
                self.conn.handle_input(&mut s.rbuf, now());
                // Before the commands of this wakeup: a command for a channel the server
                // just closed must find it closed, with the reason.
                self.dispatch();
                if let Some(pause) = self.conn.read_pause(now(), n) {
                    tracing::trace!(
                        bytes = n,
                        pause_us = pause.latest.saturating_duration_since(now()).as_micros() as u64,
                        "read pause"
                    );
                    self.shared.counters.read_pauses.bump();
                    s.read_pause.set(Some(tokio::time::Instant::from_std(pause.timer)));
                    s.pause_latest = Some(pause.latest);
                }
            }
            Some(Err(e)) => {
                s.eof = true;
                self.conn.handle_io_error(e);
            }
        }
    }

    /// Runs `first` and the commands queued behind it (a batch); `None`: every handle is
    /// gone, so the connection closes.
    fn on_commands(&mut self, first: Option<Command>, commands: &mut mpsc::Receiver<Command>) {
        let Some(first) = first else {
            self.commands_open = false;
            tracing::debug!("every handle dropped: closing the connection");
            if self.conn.state() == proto::State::Open {
                let _ = self.conn.close(now(), ReplyCode::SUCCESS, "every handle dropped");
            } else {
                // Still in a recovery's handshake: just drop it.
                self.conn.handle_io_error(io::Error::other("every handle dropped"));
            }
            return;
        };
        self.command(first);
        let mut batch = std::mem::take(&mut self.batch);
        take_queued(commands, &mut batch, COMMAND_BATCH - 1);
        for cmd in batch.drain(..) {
            self.command(cmd);
        }
        self.batch = batch;
    }

    /// The connection is closed for good: tell everyone still waiting. The close reason
    /// first (a handle that finds the command queue closed reads it), then every
    /// channel, parked and queued command. When the state is not `Failed` yet (recovery
    /// gave up, or a close while recovering), it becomes so after them: whoever sees it
    /// finds its channel closed and its publish answered. (A close seen on an open
    /// connection set `Failed` already, in `on_connection_closed`.)
    async fn finish(mut self, commands: &mut mpsc::Receiver<Command>) {
        self.dispatch_all();
        // Refused by the closed state machine, and counted.
        self.take_settles();
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
        if let Some(tx) = self.connected.take() {
            let _ = tx.send(Err(error.clone()));
        }
        for slot in self.channels.drain() {
            slot.fail(&error, &self.shared.counters);
        }
        for cmd in self.parked.drain(..) {
            fail_command(cmd, &error);
        }
        // A command sent before the queue closed is answered, not dropped unanswered
        // (a confirm-mode publish would wait for ever).
        // `recv` until `None`, not `try_recv`: a sender that had taken its slot before
        // the close may not have written to it yet.
        commands.close();
        while let Some(cmd) = commands.recv().await {
            fail_command(cmd, &error);
        }
        // Publishers waiting for the publish byte budget learn the close reason.
        self.shared.set_failed(error.clone());
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

/// Moves up to `max` items already in `queue` to `batch`, without waiting. One
/// `poll_recv_many` gives their queue slots back together (each `try_recv` gives its own
/// back, and every give-back locks the queue's semaphore). It takes nothing once the
/// task has spent its cooperative budget (tokio's `coop`), so `try_recv`, which ignores
/// the budget, takes what it left: a deaf task would otherwise leave them queued.
fn take_queued<T>(queue: &mut mpsc::Receiver<T>, batch: &mut Vec<T>, max: usize) {
    let polled = queue.poll_recv_many(&mut Context::from_waker(Waker::noop()), batch, max);
    if polled.is_pending() {
        while batch.len() < max {
            match queue.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;

    use super::*;

    #[tokio::test]
    async fn queued_items_are_taken_after_the_budget_is_spent() {
        let (tx, mut rx) = mpsc::channel(1024);
        for i in 0..600 {
            tx.try_send(i).unwrap();
        }
        // Spend this task's budget the way the driver's `wait` does: receives that
        // complete, until one returns `Pending` with items still queued.
        let mut received = 0;
        poll_fn(|cx| {
            while rx.poll_recv(cx).is_ready() {
                received += 1;
            }
            Poll::Ready(())
        })
        .await;
        assert!(received < 600, "the budget never ran out");
        let mut batch = Vec::new();
        take_queued(&mut rx, &mut batch, 10);
        assert_eq!(batch.len(), 10);
        assert_eq!(batch[0], received);
        batch.clear();
        take_queued(&mut rx, &mut batch, 1000);
        assert_eq!(batch.len(), 600 - received - 10);
    }

    #[tokio::test]
    async fn an_empty_or_closed_queue_gives_nothing() {
        let (tx, mut rx) = mpsc::channel::<u8>(4);
        let mut batch = Vec::new();
        take_queued(&mut rx, &mut batch, 4);
        assert!(batch.is_empty());
        drop(tx);
        take_queued(&mut rx, &mut batch, 4);
        assert!(batch.is_empty());
    }
}
