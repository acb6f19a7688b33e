//! Connection recovery, as the connection task runs it: keep what the lost connection
//! had ([`Driver::suspend`]), reconnect with backoff ([`Driver::reconnect`]), then restore
//! it on the new connection ([`Driver::start_replay`] and the steps after it).
//!
//! Order of the restoring, on the new connection (the next generation):
//! 1. every channel under its old id (`proto::Connection::reopen_channel`), with its QoS,
//!    confirm and tx modes pipelined behind the open;
//! 2. exchanges, queues, queue bindings, exchange-to-exchange bindings, one at a time on a
//!    channel of their own, so a failure (reported in the [`RecoveryReport`]) closes only
//!    that channel and the next step goes on on a fresh one; a server-named queue gets a
//!    new name, which the bindings and consumers still to restore follow;
//! 3. consumers, on their channels, with their tags and arguments;
//! 4. unconfirmed publishes (opt-in), then the commands that waited, in order.

use std::future::Future;
use std::pin::pin;
use std::task::Poll;

use tokio::sync::{mpsc, oneshot};

use super::{Driver, Pending, Recovery, RecoveryCall, Replay, now, when};
use crate::client::connection::{BoxTransport, open_transport};
use crate::client::metrics::Counters;
use crate::client::recovery::{ConnectionState, RecoveryFailure, RecoveryReport, TopologyStep, rename_in_steps};
use crate::client::shared::Command;
use crate::error::{Error, Initiator};
use crate::proto::{self, ChannelId};
use crate::wire::{ConfirmSelect, Method, ReplyCode, TxSelect};

/// What woke a recovery waiting between attempts.
enum Woke<T> {
    Connected(T),
    Command(Option<Command>),
}

/// What a command does to a recovery waiting between attempts.
pub(super) enum Next {
    Continue,
    Stop,
}

impl Driver {
    /// True when the loss of the connection with `error` is to be recovered.
    pub(super) fn will_recover(&self, error: &Error) -> bool {
        self.config.recovery.enabled
            && self.connected.is_none()
            && self.commands_open
            && !self.closing
            && error.is_recoverable()
    }

    /// The connection is lost and will be recovered: keep the channels and consumers,
    /// fail what cannot survive, resolve or keep the unconfirmed publishes.
    pub(super) fn suspend(&mut self, cause: Error) {
        tracing::warn!(error = %cause, "connection lost: recovering");
        self.dispatch();
        self.shared.counters.set_blocked(false);
        self.shared.blocked.send_replace(false);
        // Deliveries from now on belong to the next generation; consumers drop the ones
        // still buffered from this one (the broker requeued them).
        let generation = self.conn.generation().wrapping_add(1);
        self.shared
            .generation
            .store(generation, std::sync::atomic::Ordering::Release);
        let republish = self.config.recovery.republish_unconfirmed;
        for id in self.channels.ids() {
            let Some(slot) = self.channels.get_mut(id) else {
                continue;
            };
            if slot.open_reply.is_some() || !slot.close_waiters.is_empty() {
                // Opening (never open) or closing: it does not come back.
                let Some(slot) = self.channels.remove(id) else {
                    continue;
                };
                self.forget_slot_budgets(&slot);
                let error = if slot.open_reply.is_some() {
                    cause.clone()
                } else {
                    Error::ChannelClosed {
                        by: Initiator::Application,
                        code: ReplyCode::SUCCESS,
                        text: "closed while the connection was lost".into(),
                        method: None,
                    }
                };
                slot.fail(&error, &self.shared.counters);
                continue;
            }
            for p in slot.pending.drain(..) {
                match p {
                    // The call may or may not have taken effect: its caller decides.
                    Pending::Call { reply: Some(reply), .. } => drop(reply.send(Err(cause.clone()))),
                    Pending::Consume { reply, .. } => drop(reply.send(Err(cause.clone()))),
                    Pending::Call { reply: None, .. } | Pending::Recovery(_) => {}
                }
            }
            // Consumers nobody reads (cancel in flight) or that ended are not restored.
            slot.consumers
                .retain(|_, c| c.tx.is_some() && !c.ended || !c.overflow.is_empty());
            let mut unconfirmed: Vec<_> = slot.confirms.drain().map(|(_, u)| u).collect();
            if republish {
                slot.republish.append(&mut unconfirmed);
                slot.republish.sort_by_key(|u| u.order);
            } else {
                for u in unconfirmed {
                    Counters::inc(&self.shared.counters.unknown);
                    let _ = u.reply.send(Err(cause.clone()));
                }
            }
        }
        for w in self.secret_waiters.drain(..) {
            let _ = w.send(Err(cause.clone()));
        }
        match &mut self.recovery {
            Some(r) => {
                r.cause = cause;
                r.replay = None;
            }
            None => {
                self.recovery = Some(Recovery {
                    cause,
                    attempt: 0,
                    replay: None,
                })
            }
        }
    }

    /// Reconnects: attempts with backoff, hosts in turn, each bounded in time, while
    /// serving commands (a close stops it, acks are stale, the rest waits). `None` when
    /// the recovery ends without a connection (closed, gave up, every handle dropped).
    pub(super) async fn reconnect(&mut self, commands: &mut mpsc::Receiver<Command>) -> Option<BoxTransport> {
        let config = self.config.clone();
        let r = &config.recovery;
        loop {
            let recovery = self.recovery.as_mut()?;
            recovery.attempt += 1;
            let attempt = recovery.attempt;
            let cause = recovery.cause.clone();
            if r.max_attempts.is_some_and(|max| attempt > max) {
                tracing::error!(attempts = attempt - 1, error = %cause, "recovery gave up");
                self.final_error = Some(cause);
                return None;
            }
            self.shared.set_state(ConnectionState::Recovering {
                attempt,
                cause: cause.clone(),
            });
            let delay = r.backoff(attempt, &mut self.rng);
            let hosts = 1 + r.hosts.len();
            let (host, port) = match (attempt as usize - 1) % hosts {
                0 => (config.host.clone(), config.port),
                i => r.hosts[i - 1].clone(),
            };
            tracing::info!(attempt, %host, port, delay_ms = delay.as_millis() as u64, "reconnecting");
            let timeout = r.attempt_timeout;
            let connect = {
                let config = config.clone();
                async move {
                    tokio::time::sleep(delay).await;
                    tokio::time::timeout(timeout, open_transport(&config, &host, port)).await
                }
            };
            let mut connect = pin!(connect);
            let result = loop {
                let woke = {
                    let mut command = pin!(when(self.commands_open, commands.recv()));
                    std::future::poll_fn(|cx| {
                        if let Poll::Ready(r) = connect.as_mut().poll(cx) {
                            return Poll::Ready(Woke::Connected(r));
                        }
                        if let Poll::Ready(c) = command.as_mut().poll(cx) {
                            return Poll::Ready(Woke::Command(c));
                        }
                        Poll::Pending
                    })
                    .await
                };
                match woke {
                    Woke::Connected(r) => break r,
                    Woke::Command(Some(cmd)) => {
                        if let Next::Stop = self.recovering_command(cmd) {
                            return None;
                        }
                    }
                    Woke::Command(None) => {
                        tracing::debug!("every handle dropped while recovering");
                        self.commands_open = false;
                        return None;
                    }
                }
            };
            match result {
                Ok(Ok(transport)) => {
                    let mut protocol = config.protocol.clone();
                    protocol.generation = self.conn.generation().wrapping_add(1);
                    protocol.handshake_timeout = Some(timeout);
                    let mut conn = proto::Connection::new(protocol, now());
                    conn.resume_epochs(self.conn.next_epoch());
                    self.conn = conn;
                    return Some(transport);
                }
                Ok(Err(e)) => tracing::debug!(attempt, error = %e, "reconnection attempt failed"),
                Err(_) => tracing::debug!(attempt, "reconnection attempt timed out"),
            }
        }
    }

    /// A command while there is no connection.
    pub(super) fn recovering_command(&mut self, cmd: Command) -> Next {
        match cmd {
            Command::Close { code, text, reply } => {
                self.close_while_recovering(code, text, reply);
                Next::Stop
            }
            Command::Settle { tag, reply, .. } => {
                Counters::inc(&self.shared.counters.stale);
                if let Some(reply) = reply {
                    let _ = reply.send(Err(Error::StaleDelivery { tag: tag.value() }));
                }
                Next::Continue
            }
            cmd => {
                self.park(cmd);
                Next::Continue
            }
        }
    }

    /// The application closes the connection while it is being recovered: the recovery
    /// stops and the connection ends as closed by the application.
    pub(super) fn close_while_recovering(
        &mut self,
        code: ReplyCode,
        text: String,
        reply: oneshot::Sender<Result<(), Error>>,
    ) {
        tracing::info!("closed by the application while recovering");
        self.closing = true;
        self.final_error = Some(Error::ConnectionClosed {
            by: Initiator::Application,
            code,
            text,
            method: None,
        });
        self.close_waiters.push(reply);
    }

    fn replay_state(&self) -> Option<&Replay> {
        self.recovery.as_ref()?.replay.as_ref()
    }

    pub(super) fn replay_mut(&mut self) -> Option<&mut Replay> {
        self.recovery.as_mut()?.replay.as_mut()
    }

    /// The channel topology is being restored on, if any.
    pub(super) fn replay_channel(&self) -> Option<ChannelId> {
        self.replay_state()?.channel
    }

    fn failure(&mut self, entity: String, error: Error) {
        tracing::warn!(%entity, %error, "recovery could not restore");
        if let Some(replay) = self.replay_mut() {
            replay.report.failures.push(RecoveryFailure { entity, error });
        }
    }

    /// Connected again: restore channels, then the topology, then consumers.
    pub(super) fn start_replay(&mut self) {
        let steps = if self.config.recovery.topology {
            self.topology.steps()
        } else {
            Vec::new()
        };
        let generation = self.conn.generation();
        let Some(recovery) = self.recovery.as_mut() else { return };
        tracing::info!(generation, attempt = recovery.attempt, "reconnected: restoring");
        recovery.replay = Some(Replay {
            report: RecoveryReport {
                generation,
                ..RecoveryReport::default()
            },
            steps: steps.into(),
            current: None,
            channel: None,
            consumes: 0,
            consumers_started: false,
        });
        let ids = self.channels.ids();
        for id in ids {
            if let Err(e) = self.conn.reopen_channel(id) {
                self.failure(format!("channel {}", id.number()), e.clone());
                if let Some(slot) = self.channels.remove(id) {
                    self.forget_slot_budgets(&slot);
                    slot.fail(&e, &self.shared.counters);
                }
                continue;
            }
            let Some(slot) = self.channels.get(id) else {
                continue;
            };
            let mut setup: Vec<Method> = slot.qos.iter().cloned().map(Method::BasicQos).collect();
            if slot.shared.is_confirm() {
                setup.push(Method::ConfirmSelect(ConfirmSelect { nowait: false }));
            }
            if slot.tx {
                setup.push(Method::TxSelect(TxSelect {}));
            }
            for method in setup {
                let what = format!("{} on channel {}", method.id(), id.number());
                match self.conn.call(id, method) {
                    Ok(()) => {
                        if let Some(slot) = self.channels.get_mut(id) {
                            slot.pending.push_back(Pending::Recovery(RecoveryCall::Setup));
                        }
                    }
                    Err(e) => self.failure(what, e),
                }
            }
        }
        self.replay_next_step();
    }

    /// Sends the next topology step (and waits for its reply), or moves on to consumers.
    fn replay_next_step(&mut self) {
        loop {
            let Some(replay) = self.replay_mut() else { return };
            let Some(step) = replay.steps.pop_front() else { break };
            let channel = match replay.channel {
                Some(c) => c,
                None => match self.conn.open_channel() {
                    Ok(c) => {
                        if let Some(replay) = self.replay_mut() {
                            replay.channel = Some(c);
                        }
                        c
                    }
                    Err(e) => {
                        self.failure(step.describe(), e);
                        continue;
                    }
                },
            };
            match self.conn.call(channel, step.method()) {
                Ok(()) => {
                    if let Some(replay) = self.replay_mut() {
                        replay.current = Some(step);
                    }
                    return;
                }
                Err(e) => self.failure(step.describe(), e),
            }
        }
        let channel = self.replay_mut().and_then(|r| r.channel.take());
        if let Some(channel) = channel {
            let _ = self
                .conn
                .close_channel(channel, ReplyCode::SUCCESS, "topology restored");
        }
        self.replay_consumers();
    }

    /// The reply to the current topology step.
    pub(super) fn replay_reply(&mut self, method: Method) {
        let Some(replay) = self.replay_mut() else { return };
        let step = replay.current.take();
        if let (Some(TopologyStep::Queue(q)), Method::QueueDeclareOk(ok)) = (&step, &method)
            && q.server_named
            && ok.queue != q.declare.queue
        {
            let (old, new) = (q.declare.queue.clone(), ok.queue.clone());
            tracing::info!(%old, %new, "server-named queue renamed by recovery");
            rename_in_steps(replay.steps.make_contiguous(), &old, &new);
            replay.report.renamed_queues.push((old.to_string(), new.to_string()));
            self.topology.rename_queue(&old, &new);
            for slot in self.channels.iter_mut() {
                for c in slot.consumers.values_mut() {
                    if c.spec.queue == old {
                        c.spec.queue = new.clone();
                    }
                }
            }
        }
        self.replay_next_step();
    }

    /// The topology channel was closed by the server: the current step failed.
    pub(super) fn replay_channel_closed(&mut self, error: Error) {
        if error.is_connection_error() {
            return;
        }
        let Some(replay) = self.replay_mut() else { return };
        replay.channel = None;
        let step = replay.current.take();
        if let Some(step) = step {
            self.failure(step.describe(), error);
        }
        self.replay_next_step();
    }

    /// Re-registers every consumer on its channel.
    fn replay_consumers(&mut self) {
        let ids = self.channels.ids();
        let mut started = 0;
        for id in ids {
            let Some(slot) = self.channels.get(id) else {
                continue;
            };
            let specs: Vec<_> = slot
                .consumers
                .values()
                .filter(|c| c.tx.is_some() && !c.ended)
                .map(|c| c.spec.clone())
                .collect();
            for spec in specs {
                let tag = spec.consumer_tag.clone();
                let what = format!("consumer {:?} on {:?}", tag.as_str(), spec.queue.as_str());
                let mut m = *spec;
                m.no_wait = false;
                match self.conn.call(id, Method::BasicConsume(m)) {
                    Ok(()) => {
                        if let Some(slot) = self.channels.get_mut(id) {
                            slot.pending.push_back(Pending::Recovery(RecoveryCall::Consume(tag)));
                            started += 1;
                        }
                    }
                    Err(e) => self.failure(what, e),
                }
            }
        }
        if let Some(replay) = self.replay_mut() {
            replay.consumes += started;
            replay.consumers_started = true;
        }
        self.maybe_finish_replay();
    }

    /// Finishes the recovery once every consumer is back.
    pub(super) fn maybe_finish_replay(&mut self) {
        let done = self
            .replay_state()
            .is_some_and(|r| r.consumers_started && r.consumes == 0 && r.current.is_none());
        if done {
            self.finish_replay();
        }
    }

    /// Everything is restored: republish (opt-in), run the commands that waited, report.
    fn finish_replay(&mut self) {
        let Some(recovery) = self.recovery.take() else { return };
        let Some(replay) = recovery.replay else { return };
        let ids = self.channels.ids();
        for &id in &ids {
            let Some(slot) = self.channels.get_mut(id) else {
                continue;
            };
            let items = std::mem::take(&mut slot.republish);
            for u in items {
                let Some(message) = &u.message else {
                    Counters::inc(&self.shared.counters.unknown);
                    let _ = u.reply.send(Err(recovery.cause.clone()));
                    continue;
                };
                match self.conn.publish(id, &message.args, &message.properties, &message.body) {
                    Ok(Some(seq)) => {
                        Counters::inc(&self.shared.counters.published);
                        Counters::inc(&self.shared.counters.republished);
                        if let Some(slot) = self.channels.get_mut(id) {
                            slot.confirms.insert(seq, u);
                        }
                    }
                    Ok(None) => {
                        // The channel is not in confirm mode any more (its confirm.select failed).
                        Counters::inc(&self.shared.counters.unknown);
                        let _ = u.reply.send(Err(recovery.cause.clone()));
                    }
                    Err(e) => {
                        Counters::inc(&self.shared.counters.unknown);
                        let _ = u.reply.send(Err(e));
                    }
                }
            }
        }
        for cmd in std::mem::take(&mut self.parked) {
            self.command(cmd);
        }
        Counters::inc(&self.shared.counters.recoveries);
        let report = replay.report;
        tracing::info!(
            generation = report.generation,
            renamed = report.renamed_queues.len(),
            failures = report.failures.len(),
            "recovered"
        );
        self.shared.set_state(ConnectionState::Recovered(Box::new(report)));
        if self.conn.is_blocked() {
            self.shared.counters.set_blocked(true);
            self.shared.blocked.send_replace(true);
        }
    }
}
