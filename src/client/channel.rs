//! [`Channel`]: declare topology, publish, consume, acknowledge, transactions.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};

use super::confirm::{Confirmation, Confirmed};
use super::consumer::{Consumer, Delivery, GetMessage};
use super::handoff::delivery_queue_bytes;
use super::metrics::Counters;
use super::options::{
    ConsumeOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, PublishOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use super::recovery::ConnectionState;
use super::shared::{CallReply, ChannelShared, Command, ConsumerEnd, Handle, Publish, Settle, publish_cost};
use crate::error::Error;
use crate::proto::{ChannelId, Content, DeliveryTag, Returned};
use crate::wire::{
    BasicCancel, BasicConsume, BasicGet, BasicGetEmpty, BasicGetOk, BasicProperties, BasicPublish, BasicQos,
    BasicRecover, ConfirmSelect, ExchangeBind, ExchangeDeclare, ExchangeDelete, ExchangeUnbind, FieldTable, Method,
    QueueBind, QueueDeclare, QueueDeclareOk, QueueDelete, QueueDeleteOk, QueuePurge, QueuePurgeOk, QueueUnbind,
    ReplyCode, ShortStr, TxCommit, TxRollback, TxSelect,
};

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
    fn check_open(&self) -> Result<(), Error> {
        match self.shared.closed.get() {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// The reason for a missing reply: the channel's close, else the connection's.
    fn gone(&self) -> Error {
        self.shared
            .closed
            .get()
            .cloned()
            .unwrap_or_else(|| self.handle.shared.close_reason())
    }

    /// Queues a settle of one delivery without waiting for the connection task: the
    /// checks that can be made here are made here (a delivery from an earlier connection
    /// or a closed channel is stale), the rest by the state machine, which sends nothing
    /// for a tag it refuses. One ack per delivery is then one queue push, and the
    /// connection task writes many of them at once.
    pub(crate) async fn settle_queued(&self, tag: DeliveryTag, how: Settle) -> Result<(), Error> {
        let current = self.handle.shared.generation.load(Ordering::Acquire);
        if tag.generation() != current || self.shared.closed.get().is_some() {
            Counters::inc(&self.handle.shared.counters.stale);
            return Err(Error::StaleDelivery { tag: tag.value() });
        }
        if self.shared.is_settled(tag) {
            return Err(Error::UnknownDeliveryTag { tag: tag.value() });
        }
        // Without waking the task if it is deaf (see `TaskWake`): while a consumer is
        // busy, the task takes the acks at its next read, when the consumer is through,
        // or after `SETTLE_DELAY`.
        let cmd = Command::Settle { tag, how, reply: None };
        match self.handle.cmd.try_send(cmd) {
            Ok(()) => {
                let wake = &self.handle.shared.wake;
                if !wake.in_batch() {
                    // No busy consumer: nothing else brings the task to this ack soon.
                    wake.command_sent();
                }
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(cmd)) => {
                // The task may be deaf: wake it to empty the queue.
                self.handle.shared.wake.command_sent();
                self.handle.send(cmd).await
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(Error::StaleDelivery { tag: tag.value() }),
        }
    }

    pub(crate) async fn settle(&self, tag: DeliveryTag, how: Settle) -> Result<(), Error> {
        let (tx, rx) = oneshot::channel();
        self.handle
            .send(Command::Settle {
                tag,
                how,
                reply: Some(tx),
            })
            .await?;
        rx.await.unwrap_or_else(|_| Err(self.gone()))?;
        if matches!(
            how,
            Settle::Ack { multiple: true } | Settle::Nack { multiple: true, .. }
        ) {
            self.shared.settled_through(tag);
        }
        Ok(())
    }
}

/// Returned messages of a channel outside confirm mode: see [`Channel::returns`].
///
/// Read it with [`next`](Self::next) or as a `futures_core::Stream`.
#[derive(Debug)]
pub struct Returns {
    rx: mpsc::Receiver<Returned>,
}

impl Returns {
    /// The next returned message; `None` once the channel closed or another stream
    /// replaced this one.
    pub async fn next(&mut self) -> Option<Returned> {
        self.rx.recv().await
    }
}

impl futures_core::Stream for Returns {
    type Item = Returned;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Returned>> {
        self.rx.poll_recv(cx)
    }
}

/// An AMQP channel: cheap to clone, `Send + Sync`, usable from many tasks at once.
///
/// Every call is cancel-safe: dropping its future (or timing it out) leaves the channel
/// consistent, since replies are matched in order by the connection task and a reply
/// nobody waits for is discarded. RPCs fail with [`Error::Timeout`] after the
/// connection's [`rpc_timeout`](super::ConnectionConfig::rpc_timeout), or the timeout
/// set on this handle with [`with_timeout`](Self::with_timeout).
///
/// A channel closed by the server (404 NOT_FOUND, 406 PRECONDITION_FAILED...) fails
/// the call that caused it with [`Error::ChannelClosed`] and every later call with the
/// same error; the connection and other channels go on. Open a new channel to
/// continue. The channel closes when [`close`](Self::close) is called or when its last
/// handle (including consumers and undelivered [`Delivery`] values) is dropped.
#[derive(Clone)]
pub struct Channel {
    inner: Arc<ChannelInner>,
    timeout: Option<Duration>,
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel")
            .field("id", &self.inner.shared.id)
            .field("confirm", &self.inner.shared.is_confirm())
            .field("closed", &self.inner.shared.closed.get())
            .finish()
    }
}

fn short(what: &str, s: &str) -> Result<ShortStr, Error> {
    ShortStr::try_from(s).map_err(|e| Error::InvalidArgument(format!("{what}: {e}")))
}

/// A queue as `queue.declare-ok` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueInfo {
    /// The queue name (generated by the server when declared with an empty name).
    pub name: ShortStr,
    /// Messages ready for delivery.
    pub message_count: u32,
    /// Active consumers.
    pub consumer_count: u32,
}

impl Channel {
    pub(crate) fn new(handle: Handle, shared: Arc<ChannelShared>) -> Self {
        let timeout = handle.shared.limits.rpc_timeout;
        Channel {
            inner: Arc::new(ChannelInner { handle, shared }),
            timeout,
        }
    }

    pub(crate) fn from_inner(inner: Arc<ChannelInner>) -> Self {
        let timeout = inner.handle.shared.limits.rpc_timeout;
        Channel { inner, timeout }
    }

    /// The channel's id (number and epoch).
    pub fn id(&self) -> ChannelId {
        self.inner.shared.id
    }

    /// A handle to the same channel whose RPCs time out after `timeout` (`None`: never).
    pub fn with_timeout(&self, timeout: Option<Duration>) -> Channel {
        Channel {
            inner: self.inner.clone(),
            timeout,
        }
    }

    /// True until the channel closed.
    pub fn is_open(&self) -> bool {
        self.inner.shared.closed.get().is_none() && self.inner.handle.shared.closed.borrow().is_none()
    }

    /// Why the channel closed, once it has.
    pub fn close_reason(&self) -> Option<Error> {
        self.inner.shared.closed.get().cloned()
    }

    /// Publishes sent in confirm mode whose confirm has not arrived yet (at most
    /// [`publish_window`](super::ConnectionConfig::publish_window)).
    pub fn unconfirmed(&self) -> usize {
        let window = self
            .inner
            .handle
            .shared
            .limits
            .publish_window
            .min(tokio::sync::Semaphore::MAX_PERMITS);
        window.saturating_sub(self.inner.shared.window.available_permits())
    }

    /// True once [`confirm_select`](Self::confirm_select) was called.
    pub fn is_confirm_mode(&self) -> bool {
        self.inner.shared.is_confirm()
    }

    /// The messages the broker returns (`basic.return`: mandatory and unroutable) for
    /// publishes made outside confirm mode, as a bounded stream holding up to `capacity`
    /// of them (the connection never waits for it: beyond that, returns are logged and
    /// dropped). In confirm mode each return comes with its publish's
    /// [`Confirmation`] instead. A second call replaces the first stream, which ends;
    /// the stream also ends when the channel closes.
    pub fn returns(&self, capacity: usize) -> Returns {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        if let Ok(mut returns) = self.inner.shared.returns.lock() {
            if self.inner.shared.closed.get().is_none() {
                *returns = Some(tx);
            }
        }
        Returns { rx }
    }

    // ----- plumbing -------------------------------------------------------------

    async fn timed<T>(&self, operation: &'static str, fut: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
        let result = match self.timeout {
            Some(d) => tokio::time::timeout(d, fut)
                .await
                .unwrap_or(Err(Error::Timeout { operation })),
            None => fut.await,
        };
        match result {
            // The channel closed while the call was on its way: say why it closed.
            Err(e @ Error::ChannelNotOpen { .. }) => Err(self.inner.shared.closed.get().cloned().unwrap_or(e)),
            other => other,
        }
    }

    /// Sends a synchronous method and waits for its reply.
    async fn rpc(&self, method: Method) -> Result<(Method, Option<Content>), Error> {
        self.inner.check_open()?;
        let operation = method.info().name;
        self.timed(operation, async {
            let (tx, rx) = oneshot::channel::<CallReply>();
            let cmd = Command::Call {
                channel: self.id(),
                method: Box::new(method),
                reply: Some(tx),
            };
            self.inner.handle.send(cmd).await?;
            rx.await.unwrap_or_else(|_| Err(self.inner.gone()))
        })
        .await
    }

    /// Sends a `no_wait` method: done once the connection task has it.
    async fn send_no_wait(&self, method: Method) -> Result<(), Error> {
        self.inner.check_open()?;
        self.inner
            .handle
            .send(Command::Call {
                channel: self.id(),
                method: Box::new(method),
                reply: None,
            })
            .await
    }

    async fn call(&self, method: Method, no_wait: bool) -> Result<Option<Method>, Error> {
        if no_wait {
            self.send_no_wait(method).await.map(|()| None)
        } else {
            self.rpc(method).await.map(|(m, _)| Some(m))
        }
    }

    // ----- exchanges --------------------------------------------------------------

    /// Declares an exchange of `kind` (`direct`, `fanout`, `topic`, `headers`, or a
    /// plugin's type such as `x-delayed-message`).
    pub async fn exchange_declare(
        &self,
        exchange: &str,
        kind: &str,
        options: ExchangeDeclareOptions,
        arguments: FieldTable,
    ) -> Result<(), Error> {
        let m = ExchangeDeclare {
            exchange: short("exchange", exchange)?,
            kind: short("exchange type", kind)?,
            passive: options.passive,
            durable: options.durable,
            auto_delete: options.auto_delete,
            internal: options.internal,
            no_wait: options.no_wait,
            arguments,
        };
        self.call(Method::ExchangeDeclare(m), options.no_wait).await.map(drop)
    }

    /// Deletes an exchange.
    pub async fn exchange_delete(&self, exchange: &str, options: ExchangeDeleteOptions) -> Result<(), Error> {
        let m = ExchangeDelete {
            exchange: short("exchange", exchange)?,
            if_unused: options.if_unused,
            no_wait: options.no_wait,
        };
        self.call(Method::ExchangeDelete(m), options.no_wait).await.map(drop)
    }

    /// Binds exchange `destination` to exchange `source` (RabbitMQ extension).
    pub async fn exchange_bind(
        &self,
        destination: &str,
        source: &str,
        routing_key: &str,
        arguments: FieldTable,
    ) -> Result<(), Error> {
        let m = ExchangeBind {
            destination: short("destination", destination)?,
            source: short("source", source)?,
            routing_key: short("routing key", routing_key)?,
            no_wait: false,
            arguments,
        };
        self.rpc(Method::ExchangeBind(m)).await.map(drop)
    }

    /// Removes an exchange-to-exchange binding.
    pub async fn exchange_unbind(
        &self,
        destination: &str,
        source: &str,
        routing_key: &str,
        arguments: FieldTable,
    ) -> Result<(), Error> {
        let m = ExchangeUnbind {
            destination: short("destination", destination)?,
            source: short("source", source)?,
            routing_key: short("routing key", routing_key)?,
            no_wait: false,
            arguments,
        };
        self.rpc(Method::ExchangeUnbind(m)).await.map(drop)
    }

    // ----- queues -------------------------------------------------------------------

    /// Declares a queue; an empty `queue` asks the server to name it (see
    /// [`QueueInfo::name`]). `arguments` carry `x-queue-type`, `x-max-length`,
    /// `x-dead-letter-exchange`, `x-message-ttl`...
    pub async fn queue_declare(
        &self,
        queue: &str,
        options: QueueDeclareOptions,
        arguments: FieldTable,
    ) -> Result<QueueInfo, Error> {
        if options.no_wait && queue.is_empty() {
            return Err(Error::InvalidArgument(
                "a server-named queue cannot be declared with no_wait".into(),
            ));
        }
        let name = short("queue", queue)?;
        let m = QueueDeclare {
            queue: name.clone(),
            passive: options.passive,
            durable: options.durable,
            exclusive: options.exclusive,
            auto_delete: options.auto_delete,
            no_wait: options.no_wait,
            arguments,
        };
        match self.call(Method::QueueDeclare(m), options.no_wait).await? {
            None => Ok(QueueInfo {
                name,
                message_count: 0,
                consumer_count: 0,
            }),
            Some(Method::QueueDeclareOk(ok)) => Ok(QueueInfo {
                name: ok.queue,
                message_count: ok.message_count,
                consumer_count: ok.consumer_count,
            }),
            Some(other) => Err(Error::unexpected(&[QueueDeclareOk::ID], other.id())),
        }
    }

    /// Binds a queue to an exchange.
    pub async fn queue_bind(
        &self,
        queue: &str,
        exchange: &str,
        routing_key: &str,
        arguments: FieldTable,
    ) -> Result<(), Error> {
        let m = QueueBind {
            queue: short("queue", queue)?,
            exchange: short("exchange", exchange)?,
            routing_key: short("routing key", routing_key)?,
            no_wait: false,
            arguments,
        };
        self.rpc(Method::QueueBind(m)).await.map(drop)
    }

    /// Removes a queue binding.
    pub async fn queue_unbind(
        &self,
        queue: &str,
        exchange: &str,
        routing_key: &str,
        arguments: FieldTable,
    ) -> Result<(), Error> {
        let m = QueueUnbind {
            queue: short("queue", queue)?,
            exchange: short("exchange", exchange)?,
            routing_key: short("routing key", routing_key)?,
            arguments,
        };
        self.rpc(Method::QueueUnbind(m)).await.map(drop)
    }

    /// Drops every ready message of a queue; returns how many.
    pub async fn queue_purge(&self, queue: &str) -> Result<u32, Error> {
        let m = QueuePurge {
            queue: short("queue", queue)?,
            no_wait: false,
        };
        match self.rpc(Method::QueuePurge(m)).await?.0 {
            Method::QueuePurgeOk(ok) => Ok(ok.message_count),
            other => Err(Error::unexpected(&[QueuePurgeOk::ID], other.id())),
        }
    }

    /// Deletes a queue; returns how many messages it held.
    pub async fn queue_delete(&self, queue: &str, options: QueueDeleteOptions) -> Result<u32, Error> {
        let m = QueueDelete {
            queue: short("queue", queue)?,
            if_unused: options.if_unused,
            if_empty: options.if_empty,
            no_wait: options.no_wait,
        };
        match self.call(Method::QueueDelete(m), options.no_wait).await? {
            None => Ok(0),
            Some(Method::QueueDeleteOk(ok)) => Ok(ok.message_count),
            Some(other) => Err(Error::unexpected(&[QueueDeleteOk::ID], other.id())),
        }
    }

    // ----- basic ----------------------------------------------------------------------

    /// Limits unacknowledged deliveries: per consumer, or for the whole channel when
    /// `global` (RabbitMQ's reading). 0 means no limit. Also sizes the buffers of
    /// consumers started afterwards.
    pub async fn basic_qos(&self, prefetch_count: u16, global: bool) -> Result<(), Error> {
        let m = BasicQos {
            prefetch_size: 0,
            prefetch_count,
            global,
        };
        self.rpc(Method::BasicQos(m)).await.map(drop)
    }

    /// Publishes a message.
    ///
    /// Returns once the message is handed to the connection, with a [`Confirmation`]:
    /// - in confirm mode ([`confirm_select`](Self::confirm_select)) awaiting it gives
    ///   the broker's verdict ([`Confirmed::Ack`], [`Confirmed::Nack`], or
    ///   [`Confirmed::Returned`] for an unroutable `mandatory` message), or an error
    ///   when the channel or connection closed first (outcome unknown). At most
    ///   [`publish_window`](super::ConnectionConfig::publish_window) publishes are
    ///   unconfirmed per channel: this call waits for a slot first.
    /// - otherwise it is ready at once with [`Confirmed::Sent`].
    ///
    /// While the server has blocked publishing (`connection.blocked`) this waits, up to
    /// [`blocked_timeout`](super::ConnectionConfig::blocked_timeout) ([`Error::Blocked`]).
    pub async fn basic_publish(
        &self,
        exchange: &str,
        routing_key: &str,
        options: PublishOptions,
        properties: BasicProperties,
        body: impl Into<Bytes>,
    ) -> Result<Confirmation, Error> {
        let args = BasicPublish {
            exchange: short("exchange", exchange)?,
            routing_key: short("routing key", routing_key)?,
            mandatory: options.mandatory,
            immediate: false,
        };
        let body = body.into();
        let mut properties = properties;
        self.inner.check_open()?;
        self.wait_recovered().await?;
        let shared = &self.inner.shared;
        let conn = &self.inner.handle.shared;
        if conn.recovery.republish && shared.is_confirm() && properties.message_id.is_none() {
            // Republished copies must be recognisable as the same message.
            let n = conn.message_ids.fetch_add(1, Ordering::Relaxed);
            let id = format!("warren-{:016x}-{n}", conn.recovery.id_prefix);
            properties.message_id = ShortStr::try_from(id).ok();
        }
        let confirm = if shared.is_confirm() {
            let permit = match shared.window.clone().try_acquire_owned() {
                Ok(permit) => permit,
                Err(_) => {
                    // The window is full: the task must send what we queued.
                    conn.wake.command_sent();
                    shared
                        .window
                        .clone()
                        .acquire_owned()
                        .await
                        .map_err(|_| self.inner.gone())?
                }
            };
            let (tx, rx) = oneshot::channel();
            Some(((tx, permit), rx))
        } else {
            None
        };
        let bytes = self.publish_bytes(body.len()).await?;
        self.wait_unblocked().await?;
        let (confirm, rx) = match confirm {
            Some((c, rx)) => (Some(c), Some(rx)),
            None => (None, None),
        };
        let cmd = Command::Publish(Box::new(Publish {
            channel: self.id(),
            args,
            properties,
            body,
            confirm,
            bytes,
        }));
        if rx.is_some() {
            self.inner.handle.send_quiet(cmd).await?;
        } else {
            self.inner.handle.send(cmd).await?;
        }
        Ok(match rx {
            Some(rx) => Confirmation::waiting(rx, conn.clone(), shared.clone()),
            None => Confirmation::ready(Ok(Confirmed::Sent)),
        })
    }

    /// Takes a publish's share of the connection's publish byte budget, waiting (like
    /// for a window slot) while queued and retained publishes hold it; they give it back
    /// when sent, or confirmed when kept for republish, or failed.
    async fn publish_bytes(&self, len: usize) -> Result<OwnedSemaphorePermit, Error> {
        let conn = &self.inner.handle.shared;
        let cost = publish_cost(&conn.limits, len);
        let permit = match conn.publish_bytes.clone().try_acquire_many_owned(cost) {
            Ok(permit) => permit,
            Err(_) => {
                // Over the budget: the task must send or settle what holds it.
                conn.wake.command_sent();
                conn.publish_bytes
                    .clone()
                    .acquire_many_owned(cost)
                    .await
                    .map_err(|_| conn.close_reason())?
            }
        };
        self.inner.check_open()?;
        Ok(permit)
    }

    /// Waits while the connection is blocked, up to the configured blocked timeout.
    /// While the connection is recovering: waits for the end of the recovery, up to
    /// [`RecoveryConfig::publish_wait`](super::RecoveryConfig::publish_wait), or fails at
    /// once with [`Error::NotConnected`] when that is `None`.
    async fn wait_recovered(&self) -> Result<(), Error> {
        let conn = &self.inner.handle.shared;
        if !conn.is_recovering() {
            return Ok(());
        }
        let Some(limit) = conn.recovery.publish_wait else {
            return Err(Error::NotConnected);
        };
        let mut rx = conn.state.subscribe();
        match tokio::time::timeout(limit, rx.wait_for(|s| !s.is_recovering())).await {
            Ok(Ok(state)) => {
                if let ConnectionState::Failed(e) = &*state {
                    return Err(e.clone());
                }
            }
            Ok(Err(_)) => return Err(conn.close_reason()),
            Err(_) => {
                return Err(Error::Timeout {
                    operation: "publish while recovering",
                });
            }
        }
        self.inner.check_open()
    }

    async fn wait_unblocked(&self) -> Result<(), Error> {
        let conn = &self.inner.handle.shared;
        if !*conn.blocked.borrow() {
            return Ok(());
        }
        let mut rx = conn.blocked.subscribe();
        let wait = async {
            rx.wait_for(|blocked| !*blocked)
                .await
                .map(drop)
                .map_err(|_| conn.close_reason())
        };
        match conn.limits.blocked_timeout {
            Some(d) => tokio::time::timeout(d, wait).await.unwrap_or(Err(Error::Blocked)),
            None => wait.await,
        }?;
        self.inner.check_open()
    }

    /// Fetches one message from `queue`, or `None` if it is empty. Unless `no_ack`,
    /// settle the message like a consumer's delivery.
    pub async fn basic_get(&self, queue: &str, no_ack: bool) -> Result<Option<GetMessage>, Error> {
        let m = BasicGet {
            queue: short("queue", queue)?,
            no_ack,
        };
        match self.rpc(Method::BasicGet(m)).await? {
            (Method::BasicGetOk(ok), Some(content)) => {
                let delivery =
                    Delivery::from_get(content, ok.redelivered, ok.exchange, ok.routing_key, self.inner.clone());
                delivery.mark_settled(no_ack);
                Ok(Some(GetMessage {
                    delivery,
                    message_count: ok.message_count,
                }))
            }
            (Method::BasicGetEmpty(_), _) => Ok(None),
            (other, _) => Err(Error::unexpected(&[BasicGetOk::ID, BasicGetEmpty::ID], other.id())),
        }
    }

    /// Starts a consumer on `queue`. An empty `consumer_tag` lets the server choose one
    /// ([`Consumer::tag`]). `arguments` carry e.g. `x-priority` or `x-stream-offset`.
    pub async fn basic_consume(
        &self,
        queue: &str,
        consumer_tag: &str,
        options: ConsumeOptions,
        arguments: FieldTable,
    ) -> Result<Consumer, Error> {
        let m = BasicConsume {
            queue: short("queue", queue)?,
            consumer_tag: short("consumer tag", consumer_tag)?,
            no_local: options.no_local,
            no_ack: options.no_ack,
            exclusive: options.exclusive,
            no_wait: options.no_wait,
            arguments,
        };
        self.inner.check_open()?;
        let prefetch = usize::from(self.inner.shared.prefetch.load(Ordering::Relaxed));
        let capacity = self.inner.handle.shared.limits.consumer_buffer.max(prefetch).max(1);
        let acks = (!options.no_ack).then(|| self.inner.handle.shared.wake.clone());
        let limits = &self.inner.handle.shared.limits;
        let (deliveries, rx) = delivery_queue_bytes(capacity, limits.consumer_buffer_bytes, acks);
        self.inner.handle.shared.counters.watch_queue(&deliveries.queue());
        let end = Arc::new(ConsumerEnd::default());
        let (tx, reply) = oneshot::channel();
        let cmd = Command::Consume {
            channel: self.id(),
            method: Box::new(m),
            deliveries,
            end: end.clone(),
            reply: tx,
        };
        let tag = self
            .timed("basic.consume", async {
                self.inner.handle.send(cmd).await?;
                reply.await.unwrap_or_else(|_| Err(self.inner.gone()))
            })
            .await?;
        Ok(Consumer::new(rx, end, tag, options.no_ack, self.inner.clone()))
    }

    /// Cancels a consumer and waits for `cancel-ok`; its stream ends after the
    /// deliveries already buffered.
    pub async fn basic_cancel(&self, consumer_tag: &str) -> Result<(), Error> {
        let m = BasicCancel {
            consumer_tag: short("consumer tag", consumer_tag)?,
            no_wait: false,
        };
        self.rpc(Method::BasicCancel(m)).await.map(drop)
    }

    /// Asks the server to redeliver every unacknowledged message of the channel
    /// (`requeue`: to any consumer, possibly another; RabbitMQ only supports `true`).
    pub async fn basic_recover(&self, requeue: bool) -> Result<(), Error> {
        self.rpc(Method::BasicRecover(BasicRecover { requeue })).await.map(drop)
    }

    /// Acknowledges a delivery (`multiple`: and every earlier unacknowledged one of
    /// this channel).
    pub async fn basic_ack(&self, delivery_tag: DeliveryTag, multiple: bool) -> Result<(), Error> {
        self.inner.settle(delivery_tag, Settle::Ack { multiple }).await
    }

    /// Negatively acknowledges deliveries (`basic.nack`).
    pub async fn basic_nack(&self, delivery_tag: DeliveryTag, multiple: bool, requeue: bool) -> Result<(), Error> {
        self.inner
            .settle(delivery_tag, Settle::Nack { multiple, requeue })
            .await
    }

    /// Rejects one delivery (`basic.reject`).
    pub async fn basic_reject(&self, delivery_tag: DeliveryTag, requeue: bool) -> Result<(), Error> {
        self.inner.settle(delivery_tag, Settle::Reject { requeue }).await
    }

    // ----- modes ------------------------------------------------------------------------

    /// Puts the channel in confirm mode: from now on every publish is confirmed by
    /// the broker through its [`Confirmation`].
    pub async fn confirm_select(&self) -> Result<(), Error> {
        self.rpc(Method::ConfirmSelect(ConfirmSelect { nowait: false }))
            .await
            .map(drop)
    }

    /// Makes the channel transactional (`tx.select`).
    pub async fn tx_select(&self) -> Result<(), Error> {
        self.rpc(Method::TxSelect(TxSelect {})).await.map(drop)
    }

    /// Commits the publishes and acks made since the last commit or rollback.
    pub async fn tx_commit(&self) -> Result<(), Error> {
        self.rpc(Method::TxCommit(TxCommit {})).await.map(drop)
    }

    /// Discards the publishes and acks made since the last commit or rollback.
    pub async fn tx_rollback(&self) -> Result<(), Error> {
        self.rpc(Method::TxRollback(TxRollback {})).await.map(drop)
    }

    /// Closes the channel and waits for `close-ok`. Unconfirmed publishes fail with
    /// the close error (outcome unknown); consumers end.
    pub async fn close(&self) -> Result<(), Error> {
        if self.inner.shared.closed.get().is_some() {
            return Ok(());
        }
        self.timed("channel.close", async {
            let (tx, rx) = oneshot::channel();
            let cmd = Command::CloseChannel {
                channel: self.id(),
                code: ReplyCode::SUCCESS,
                text: "closed by the application".into(),
                reply: Some(tx),
            };
            self.inner.handle.send(cmd).await?;
            rx.await.unwrap_or(Ok(()))
        })
        .await
    }
}
