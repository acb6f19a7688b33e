//! How handles reach the connection task: [`Handle`] (the command queue and the shared
//! connection state) and [`ChannelInner`] (a channel's, shared by its `Channel`,
//! `Consumer` and `Delivery` handles: calls, settles, and the close when the last goes).
//!
//! The task holds only `ConnShared`, so the command queue closes when the last handle
//! drops.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::command::{CallReply, Command};
use super::metrics::Counters;
use super::shared::{ChannelShared, ConnShared};
use crate::error::Error;
use crate::proto::{Delivery, DeliveryTag, Settle};
use crate::wire::{Method, ReplyCode};

/// What a handle needs to reach the task.
#[derive(Debug, Clone)]
pub(crate) struct Handle {
    pub(crate) cmd: mpsc::Sender<Command>,
    pub(crate) shared: Arc<ConnShared>,
}

impl Handle {
    /// Sends a command; when the task is gone, the connection's close reason.
    pub(crate) async fn send(&self, cmd: Command) -> Result<(), Error> {
        self.cmd.send(cmd).await.map_err(|_| self.shared.close_reason())?;
        self.shared.wake.command_sent();
        Ok(())
    }

    /// Sends a command that may wait in the queue while the task is deaf (see
    /// [`TaskWake`]): the sender calls [`TaskWake::command_sent`] before it waits for
    /// the task.
    pub(crate) async fn send_quiet(&self, cmd: Command) -> Result<(), Error> {
        match self.cmd.try_send(cmd) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(cmd)) => {
                // The task may be deaf: wake it to empty the queue.
                self.shared.wake.command_sent();
                self.send(cmd).await
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(self.shared.close_reason()),
        }
    }

    /// Sends a command without waiting (for `Drop` impls): queue full or task gone
    /// falls back to a spawned send on the current runtime, if any.
    pub(crate) fn send_from_drop(&self, cmd: Command) {
        match self.cmd.try_send(cmd) {
            Ok(()) => self.shared.wake.command_sent(),
            Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(cmd)) => {
                if let Ok(rt) = tokio::runtime::Handle::try_current() {
                    let tx = self.cmd.clone();
                    let shared = self.shared.clone();
                    rt.spawn(async move {
                        if tx.send(cmd).await.is_ok() {
                            shared.wake.command_sent();
                        }
                    });
                }
            }
        }
    }

    /// Waits for a reply, mapping a dropped sender to the close reason.
    pub(crate) async fn recv<T>(&self, rx: oneshot::Receiver<Result<T, Error>>) -> Result<T, Error> {
        match rx.await {
            Ok(r) => r,
            Err(_) => Err(self.shared.close_reason()),
        }
    }
}

/// What the channel handles share; closes the channel when the last one goes.
pub(crate) struct ChannelInner {
    pub(crate) handle: Handle,
    pub(crate) shared: Arc<ChannelShared>,
}

impl fmt::Debug for ChannelInner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel").field("id", &self.shared.id).finish()
    }
}

impl Drop for ChannelInner {
    fn drop(&mut self) {
        if self.shared.closed.get().is_none() {
            tracing::debug!(
                channel = self.shared.id.number(),
                "last channel handle dropped: closing it"
            );
            self.handle.send_from_drop(Command::CloseChannel {
                channel: self.shared.id,
                code: ReplyCode::SUCCESS,
                text: "channel handle dropped".into(),
                reply: None,
            });
        }
    }
}

impl ChannelInner {
    pub(crate) fn check_open(&self) -> Result<(), Error> {
        match self.shared.closed.get() {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// The reason for a missing reply: the channel's close, else the connection's.
    pub(crate) fn gone(&self) -> Error {
        self.shared
            .closed
            .get()
            .cloned()
            .unwrap_or_else(|| self.handle.shared.close_reason())
    }

    /// Settles a delivery without waiting for the connection task: the channel's
    /// ledger ([`proto::Outstanding`](crate::proto::Outstanding)) accepts or refuses it
    /// here and keeps it queued for the task, which writes what it accepted. One ack per
    /// delivery is then one lock, and the connection task writes many of them at once.
    pub(crate) async fn settle(&self, tag: DeliveryTag, how: Settle) -> Result<(), Error> {
        if tag.channel() != self.shared.id {
            let (reply, rx) = oneshot::channel();
            self.handle.send(Command::SettleElsewhere { tag, how, reply }).await?;
            return self.handle.recv(rx).await;
        }
        let first = match self.shared.acks.claim_queued(tag, how) {
            Ok(first) => first,
            Err(e) => {
                if matches!(e, Error::StaleDelivery { .. }) {
                    Counters::inc(&self.handle.shared.counters.stale);
                }
                return Err(e);
            }
        };
        if !first {
            // The claim that found the queue empty told the task, which takes this one
            // with it.
            if self.handle.cmd.is_closed() {
                return Err(Error::StaleDelivery { tag: tag.value() });
            }
            return Ok(());
        }
        self.handle.shared.settles.add(&self.shared.acks);
        // Without waking the task if it is deaf (see `TaskWake`): while a consumer is
        // busy, the task takes the acks at its next read, when the consumer is through,
        // or after `SETTLE_DELAY`.
        match self.handle.cmd.try_send(Command::Settles) {
            Ok(()) => {
                let wake = &self.handle.shared.wake;
                if !wake.in_batch() {
                    // No busy consumer: nothing else brings the task to this ack soon.
                    wake.command_sent();
                }
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                // The task takes the queued settles before its next command, and the
                // queue is full of them: it only needs to be awake.
                self.handle.shared.wake.command_sent();
                Ok(())
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(Error::StaleDelivery { tag: tag.value() }),
        }
    }

    /// Runs `fut` within `timeout` (`None`: no limit); a call that found the channel
    /// closed says why it closed.
    pub(crate) async fn timed<T>(
        &self,
        operation: &'static str,
        timeout: Option<Duration>,
        fut: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        let result = match timeout {
            Some(d) => tokio::time::timeout(d, fut)
                .await
                .unwrap_or(Err(Error::Timeout { operation })),
            None => fut.await,
        };
        match result {
            Err(e @ Error::ChannelNotOpen { .. }) => Err(self.shared.closed.get().cloned().unwrap_or(e)),
            other => other,
        }
    }

    /// Sends a synchronous method and waits for its reply, at most `timeout`.
    pub(crate) async fn rpc(
        &self,
        method: Method,
        timeout: Option<Duration>,
    ) -> Result<(Method, Option<Delivery>), Error> {
        self.check_open()?;
        let operation = method.info().name;
        self.timed(operation, timeout, async {
            let (tx, rx) = oneshot::channel::<CallReply>();
            let cmd = Command::Call {
                channel: self.shared.id,
                method: Box::new(method),
                reply: Some(tx),
            };
            self.handle.send(cmd).await?;
            rx.await.unwrap_or_else(|_| Err(self.gone()))
        })
        .await
    }

    /// Sends a `no_wait` method: done once the connection task has it.
    pub(crate) async fn send_no_wait(&self, method: Method) -> Result<(), Error> {
        self.check_open()?;
        let cmd = Command::Call {
            channel: self.shared.id,
            method: Box::new(method),
            reply: None,
        };
        self.handle.send(cmd).await
    }
}
