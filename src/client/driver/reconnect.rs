//! Connection recovery, as the connection task runs it: keep what the lost connection
//! had ([`Driver::suspend`]), reconnect with backoff ([`Driver::reconnect`]) to a
//! successor of the state machine (`proto::Connection::successor`), which restores
//! channels, topology and consumers itself (`src/proto/replay.rs`); then, on its
//! `Recovered`, republish unconfirmed publishes (opt-in) and run the commands that
//! waited, in order ([`Driver::finish_replay`]).

use std::future::Future;
use std::pin::pin;
use std::task::Poll;

use tokio::sync::{mpsc, oneshot};

use super::session::when;
use super::slot::Pending;
use super::{Driver, Recovery, now};
use crate::client::command::Command;
use crate::client::metrics::Counters;
use crate::client::recovery::RecoveryReport;
use crate::client::state::ConnectionState;
use crate::client::transport::{BoxTransport, open_transport};
use crate::error::{Error, Initiator};
use crate::wire::ReplyCode;

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
        self.shared.set_blocked(false, None);
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
                    Pending::Call { reply: None } => {}
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
                    u.unknown(cause.clone(), &self.shared.counters);
                }
            }
        }
        for w in self.secret_waiters.drain(..) {
            let _ = w.send(Err(cause.clone()));
        }
        match &mut self.recovery {
            Some(r) => r.cause = cause,
            None => self.recovery = Some(Recovery { cause, attempt: 0 }),
        }
    }

    /// Reconnects: attempts with backoff, addresses in turn (`address.rs`), each bounded in time, while
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
            let state = ConnectionState::Recovering {
                attempt,
                cause: cause.clone(),
            };
            // The first attempt's state is set when the loss is seen.
            if *self.shared.state.borrow() != state {
                self.shared.set_state(state);
            }
            let delay = r.backoff(attempt, &mut self.rng);
            let (index, address) = self.addresses.next(&mut self.rng);
            let address = address.clone();
            tracing::info!(attempt, %address, delay_ms = delay.as_millis() as u64, "reconnecting");
            let timeout = r.attempt_timeout;
            let connect = {
                let config = config.clone();
                let address = address.clone();
                async move {
                    tokio::time::sleep(delay).await;
                    tokio::time::timeout(timeout, open_transport(&config, &address.host, address.port)).await
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
                    tracing::debug!(attempt, "transport up: AMQP handshake");
                    self.addresses.connected(index);
                    self.shared.set_address(address);
                    self.conn = self.conn.successor(config.protocol_for(timeout), now(), r.topology);
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
            Command::Settles => {
                // Refused by the closed state machine, and counted.
                self.take_settles();
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

    /// The state machine restored everything: republish (opt-in), run the commands that
    /// waited, report.
    pub(super) fn finish_replay(&mut self, report: RecoveryReport) {
        let Some(recovery) = self.recovery.take() else { return };
        let ids = self.channels.ids();
        let mut republished = 0usize;
        for &id in &ids {
            let Some(slot) = self.channels.get_mut(id) else {
                continue;
            };
            let items = std::mem::take(&mut slot.republish);
            for u in items {
                let Some(message) = &u.message else {
                    u.unknown(recovery.cause.clone(), &self.shared.counters);
                    continue;
                };
                let route = message.names.route(message.mandatory);
                match self.conn.publish_to(id, route, &message.properties, &message.body) {
                    Ok(Some(seq)) => {
                        self.shared.counters.published.bump();
                        Counters::inc(&self.shared.counters.republished);
                        republished += 1;
                        if let Some(slot) = self.channels.get_mut(id) {
                            slot.confirms.insert(seq, u);
                        }
                    }
                    Ok(None) => {
                        // The channel is not in confirm mode any more (its confirm.select failed).
                        u.unknown(recovery.cause.clone(), &self.shared.counters);
                    }
                    Err(e) => u.unknown(e, &self.shared.counters),
                }
            }
        }
        let parked = std::mem::take(&mut self.parked);
        tracing::debug!(
            waited = parked.len(),
            republished,
            "recovery finished: running the commands that waited"
        );
        for cmd in parked {
            self.command(cmd);
        }
        Counters::inc(&self.shared.counters.recoveries);
        let recovered = ConnectionState::Recovered(Box::new(report));
        self.shared.set_blocked(self.conn.is_blocked(), Some(recovered));
    }
}
