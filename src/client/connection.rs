//! [`Connection`]: connect (TCP or TLS, then the AMQP handshake), open channels, close.

use std::fmt;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::Instrument;

use super::channel::Channel;
use super::command::Command;
use super::config::ConnectionConfig;
use super::driver::Driver;
use super::handle::Handle;
use super::metrics::Metrics;
use super::shared::{ConnShared, Limits, RecoveryLimits, TaskGuard};
use super::state::{ConnectionState, StateChanges};
use super::transport::{BoxTransport, open_transport};
use crate::error::Error;
use crate::proto::{self, Tune};
use crate::proto::{Address, Addresses};
use crate::rng::Rng;
use crate::wire::{FieldTable, ReplyCode};

/// A connection to a broker: cheap to clone, `Send + Sync`.
///
/// One background task owns the socket; this handle, its [`Channel`]s, consumers and
/// deliveries send it commands. By default the task runs on a thread of its own (named
/// `warren-connection`, with a current-thread tokio runtime), so a wake-up costs one
/// system call and heartbeats go on while the application's runtime is busy;
/// [`ConnectionConfig::own_thread`] off spawns it on the caller's runtime instead. The
/// handles work from any tokio runtime. The connection closes on
/// [`close`](Self::close), when the server or the network ends it, or when the last of
/// those handles is dropped; then the task ends. [`closed`](Self::closed) tells why
/// it ended.
#[derive(Clone)]
pub struct Connection {
    handle: Handle,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("tune", &self.handle.shared.handshake(|(tune, _)| *tune))
            .field("blocked", &*self.handle.shared.blocked.borrow())
            .field("closed", &*self.handle.shared.closed.borrow())
            .finish()
    }
}

impl Connection {
    /// Connects with an `amqp://` or `amqps://` URI; see [`crate::uri`] for the syntax
    /// and query parameters.
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), warren::Error> {
    /// let conn = warren::client::Connection::connect("amqp://guest:guest@127.0.0.1:5672/%2f").await?;
    /// # let _ = conn; Ok(()) }
    /// ```
    pub async fn connect(uri: &str) -> Result<Connection, Error> {
        Connection::connect_with(ConnectionConfig::from_uri(uri)?).await
    }

    /// Connects with a full configuration: TCP (with `TCP_NODELAY`), TLS if
    /// configured, then the AMQP handshake, all within `connect_timeout`.
    pub async fn connect_with(config: ConnectionConfig) -> Result<Connection, Error> {
        config.check()?;
        let span = tracing::info_span!(
            "warren.connection",
            host = %config.host,
            port = config.port,
            vhost = %config.protocol.vhost,
            name = config.protocol.connection_name.as_deref().unwrap_or(""),
        );
        let address = config
            .addresses()
            .iter()
            .map(Address::to_string)
            .collect::<Vec<_>>()
            .join(",");
        connect_inner(config, span.clone())
            .instrument(span)
            .await
            .map_err(|e| match e {
                Error::Handshake { reason } => Error::Handshake {
                    reason: format!("{address}: {reason}"),
                },
                e => e,
            })
    }

    /// Opens a channel and waits for `open-ok`.
    pub async fn open_channel(&self) -> Result<Channel, Error> {
        let operation = "channel.open";
        let fut = async {
            let (tx, rx) = oneshot::channel();
            self.handle.send(Command::OpenChannel { reply: tx }).await?;
            self.handle.recv(rx).await
        };
        let shared = match self.handle.shared.limits.rpc_timeout {
            Some(d) => tokio::time::timeout(d, fut)
                .await
                .unwrap_or(Err(Error::Timeout { operation }))?,
            None => fut.await?,
        };
        Ok(Channel::new(self.handle.clone(), shared))
    }

    /// Closes the connection gracefully (`connection.close`, then `close-ok` or the
    /// close timeout). Unconfirmed publishes fail with an error (outcome unknown),
    /// consumers end. Closing a closed connection returns `Ok` if this client closed
    /// it, else the error that ended it.
    pub async fn close(&self) -> Result<(), Error> {
        self.close_with(ReplyCode::SUCCESS, "closed by the application").await
    }

    /// Closes with a reply code and text of your choice.
    pub async fn close_with(&self, code: ReplyCode, text: &str) -> Result<(), Error> {
        let (tx, rx) = oneshot::channel();
        let sent = self
            .handle
            .send(Command::Close {
                code,
                text: text.into(),
                reply: tx,
            })
            .await;
        let result = match sent {
            Ok(()) => rx.await.ok(),
            Err(_) => None,
        };
        match result {
            Some(r) => r,
            // The task is gone: the connection was already closed.
            None => match self.handle.shared.close_reason() {
                e if e.is_application_close() => Ok(()),
                e => Err(e),
            },
        }
    }

    /// Waits until the connection is closed for good and returns why: the application's
    /// close (`Error::ConnectionClosed { by: Client, code: 200, .. }`), the server's
    /// (`by: Server`, e.g. 530 NOT_ALLOWED), a lost transport (`Error::ConnectionLost`).
    /// With recovery on, a loss that recovery repairs does not close the connection:
    /// this resolves when recovery is off, gives up, or the cause cannot heal; watch
    /// [`state`](Self::state) to see the losses it repaired.
    pub async fn closed(&self) -> Error {
        let mut rx = self.handle.shared.closed.subscribe();
        match rx.wait_for(Option::is_some).await {
            Ok(e) => e.clone().unwrap_or(Error::Closed),
            Err(_) => self.handle.shared.close_reason(),
        }
    }

    /// Why the connection closed, once it has.
    pub fn close_reason(&self) -> Option<Error> {
        self.handle.shared.closed.borrow().clone()
    }

    /// True until the connection closed for good (or started closing on `close`); true
    /// while it is being recovered.
    pub fn is_open(&self) -> bool {
        self.handle.shared.closed.borrow().is_none() && !self.handle.cmd.is_closed()
    }

    /// True while the server blocks publishing (`connection.blocked`, e.g. a memory or
    /// disk alarm). Publishes wait meanwhile; acks and everything else flow.
    pub fn is_blocked(&self) -> bool {
        self.handle.shared.is_blocked()
    }

    /// A watch of the blocked state: `changed().await` wakes on every block and unblock.
    pub fn blocked_watch(&self) -> watch::Receiver<bool> {
        self.handle.shared.blocked.subscribe()
    }

    /// A watch of the connection's state: connected, blocked, recovering (attempt and
    /// cause), recovered (with what could not be restored), failed. `borrow()` reads it,
    /// `changed().await` / `wait_for(..)` wait for the next one. A watch keeps only the
    /// latest state; [`state_changes`](Self::state_changes) yields every one.
    ///
    /// ```no_run
    /// # async fn f(conn: warren::client::Connection) {
    /// use warren::client::ConnectionState;
    /// let mut state = conn.state();
    /// while state.changed().await.is_ok() {
    ///     match &*state.borrow() {
    ///         ConnectionState::Recovering { attempt, cause } => eprintln!("recovering ({attempt}): {cause}"),
    ///         ConnectionState::Failed(e) => { eprintln!("gone: {e}"); break }
    ///         _ => {}
    ///     }
    /// }
    /// # }
    /// ```
    pub fn state(&self) -> watch::Receiver<ConnectionState> {
        self.handle.shared.state.subscribe()
    }

    /// Every state change from now on, in order ([`StateChanges::next`]).
    pub fn state_changes(&self) -> StateChanges {
        StateChanges::new(self.handle.shared.changes.subscribe())
    }

    /// The connection's counters (published, confirmed, nacked, returned, unknown,
    /// delivered, acked, redelivered, recoveries, time blocked...), across recoveries.
    pub fn metrics(&self) -> Metrics {
        let shared = &self.handle.shared;
        let mut metrics = shared.counters.snapshot();
        let free = shared.publish_bytes.available_permits();
        metrics.publish_bytes = shared.limits.publish_buffer_bytes.saturating_sub(free) as u64;
        metrics
    }

    /// The limits negotiated in the handshake: of the current connection, so after a
    /// recovery those of the new one.
    pub fn tune(&self) -> Tune {
        // Set before `connect` returns (the Connected event carries it).
        self.handle.shared.handshake(|(tune, _)| *tune).unwrap_or(Tune {
            channel_max: 0,
            frame_max: 0,
            heartbeat: 0,
        })
    }

    /// The server's `connection.start` properties (product, version, capabilities): of
    /// the current connection, so after a recovery those of the new one.
    pub fn server_properties(&self) -> FieldTable {
        self.handle
            .shared
            .handshake(|(_, properties)| properties.clone())
            .unwrap_or_default()
    }

    /// The broker address this connection is on now: which node of a cluster, when
    /// [`ConnectionConfig::more_addresses`] lists several. While recovering, the address
    /// of the connection that was lost.
    pub fn address(&self) -> Address {
        // Set before `connect` returns (a transport is open before the handshake).
        let address = self
            .handle
            .shared
            .address
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        address.unwrap_or_else(|| Address::new("", 0))
    }

    /// The `cluster_name` the server announced in its properties (RabbitMQ sends it;
    /// the same for every node of a cluster), if any.
    pub fn cluster_name(&self) -> Option<String> {
        let properties = self.server_properties();
        properties.get("cluster_name")?.as_str().map(str::to_owned)
    }

    /// Replaces the login secret (`connection.update-secret`, e.g. a refreshed OAuth 2
    /// token) and waits for `update-secret-ok`.
    pub async fn update_secret(&self, secret: impl Into<Bytes>, reason: &str) -> Result<(), Error> {
        let (tx, rx) = oneshot::channel();
        let cmd = Command::UpdateSecret {
            secret: Box::new((secret.into(), reason.into())),
            reply: tx,
        };
        let fut = async {
            self.handle.send(cmd).await?;
            self.handle.recv(rx).await
        };
        match self.handle.shared.limits.rpc_timeout {
            Some(d) => tokio::time::timeout(d, fut).await.unwrap_or(Err(Error::Timeout {
                operation: "update-secret",
            })),
            None => fut.await,
        }
    }
}

async fn connect_inner(config: ConnectionConfig, span: tracing::Span) -> Result<Connection, Error> {
    tracing::debug!("connecting");
    let limits = Limits {
        rpc_timeout: config.rpc_timeout,
        blocked_timeout: config.blocked_timeout,
        publish_window: config.publish_window,
        consumer_buffer: config.consumer_buffer,
        consumer_buffer_bytes: config.consumer_buffer_bytes,
        publish_buffer_bytes: config
            .publish_buffer_bytes
            .clamp(1, (u32::MAX as usize).min(tokio::sync::Semaphore::MAX_PERMITS)),
    };
    let recovery = RecoveryLimits {
        publish_wait: config.recovery.publish_wait,
        republish: config.recovery.enabled && config.recovery.republish_unconfirmed,
        id_prefix: Rng::seeded().next_u64(),
    };
    let shared = Arc::new(ConnShared::new(limits, recovery));
    let (cmd_tx, cmd_rx) = mpsc::channel(config.command_capacity);
    let (connected_tx, connected_rx) = oneshot::channel();
    // One deadline for the whole connect: the transport's below, the handshake's in the
    // state machine.
    let started = Instant::now();
    let conn = proto::Connection::new(config.protocol_for(config.connect_timeout), started);
    let transport_deadline = tokio::time::Instant::from_std(started) + config.connect_timeout;
    // Without a thread of its own, the task goes on the caller's runtime: there must be one.
    let runtime = if config.own_thread {
        None
    } else {
        Some(tokio::runtime::Handle::try_current().map_err(|_| {
            Error::InvalidArgument(
                "ConnectionConfig::own_thread is off, but connect was not called on a tokio runtime".into(),
            )
        })?)
    };
    let config = Arc::new(config);
    let task_shared = shared.clone();
    let guard = TaskGuard::new(shared.clone());
    let task = async move {
        let mut connected_tx = connected_tx;
        let mut addresses = Addresses::new(config.addresses(), config.address_order);
        let transport = {
            let open = tokio::time::timeout_at(
                transport_deadline,
                first_transport(&config, &mut addresses, &task_shared),
            );
            let mut open = pin!(async { open.await.unwrap_or(Err(Error::Timeout { operation: "connect" })) });
            // Until `connect` gives up (its future dropped, e.g. by a timeout).
            std::future::poll_fn(|cx| match open.as_mut().poll(cx) {
                Poll::Ready(r) => Poll::Ready(Some(r)),
                Poll::Pending => connected_tx.poll_closed(cx).map(|()| None),
            })
            .await
        };
        match transport {
            Some(Ok(transport)) => {
                let driver = Driver::new(conn, task_shared, connected_tx, config, addresses);
                driver.run(transport, cmd_rx).await
            }
            Some(Err(e)) => {
                let _ = connected_tx.send(Err(e));
            }
            None => {}
        }
        guard.finished();
    }
    .instrument(span);
    match runtime {
        Some(runtime) => drop(runtime.spawn(task)),
        None => {
            // A thread of its own, with a current-thread runtime: a wake-up from the
            // application is one eventfd write to that thread, with no scheduler in
            // between, and heartbeats keep going while the application's runtime is busy.
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("warren-connection".into())
                .spawn(
                    move || match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                        Ok(rt) => rt.block_on(task),
                        Err(e) => {
                            // `connect` reads this reason when the task drops its sender.
                            shared.closed.send_replace(Some(e.into()));
                            drop(task);
                        }
                    },
                )
                .map_err(Error::from)?;
        }
    }
    finish_connect(cmd_tx, shared, connected_rx).await
}

/// The first transport: one round over the addresses (see `address.rs`), each attempt
/// bounded by the recovery's attempt timeout when there are several (the whole by the
/// caller's connect timeout); the last error when none answers.
async fn first_transport(
    config: &ConnectionConfig,
    addresses: &mut Addresses,
    shared: &ConnShared,
) -> Result<BoxTransport, Error> {
    let mut rng = Rng::seeded();
    let n = addresses.len();
    let mut last = None;
    for _ in 0..n {
        let (index, address) = addresses.next(&mut rng);
        let address = address.clone();
        let open = open_transport(config, &address.host, address.port);
        let result = if n > 1 {
            tokio::time::timeout(config.recovery.attempt_timeout, open)
                .await
                .unwrap_or(Err(Error::Timeout { operation: "connect" }))
        } else {
            open.await
        };
        match result {
            Ok(transport) => {
                addresses.connected(index);
                shared.set_address(address);
                return Ok(transport);
            }
            Err(e) => {
                tracing::debug!(%address, error = %e, "connect attempt failed");
                last = Some(e);
            }
        }
    }
    Err(last.unwrap_or(Error::Timeout { operation: "connect" }))
}

async fn finish_connect(
    cmd: mpsc::Sender<Command>,
    shared: Arc<ConnShared>,
    connected: oneshot::Receiver<Result<(), Error>>,
) -> Result<Connection, Error> {
    let handle = Handle { cmd, shared };
    // If this future is dropped (connect timeout), `handle` goes with it: the task sees
    // no handle left and closes the half-open connection.
    handle.recv(connected).await?;
    Ok(Connection { handle })
}
