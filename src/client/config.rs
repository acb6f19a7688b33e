//! [`ConnectionConfig`]: where to connect, how to authenticate, and the client's limits.

use std::time::Duration;

use super::recovery::RecoveryConfig;
use crate::error::Error;
use crate::proto::{self, Sasl};
use crate::proto::{Address, AddressOrder};
#[cfg(feature = "tls")]
use crate::tls::TlsConfig;
use crate::uri::{AmqpUri, AuthMechanism, Scheme};

/// Everything [`Connection::connect_with`](super::Connection::connect_with) needs.
///
/// Build it from a URI with [`from_uri`](Self::from_uri) and adjust the public fields,
/// or start from [`Default`] (`guest:guest@localhost:5672/`).
#[derive(Clone, Debug)]
pub struct ConnectionConfig {
    /// Host name or IP address to connect to.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// More brokers (the other nodes of a cluster), tried after or with
    /// `host:port` as [`address_order`](Self::address_order) says, on the first connect
    /// and on every recovery: see [`addresses`](Self::addresses). Same TLS settings,
    /// credentials and vhost. Default none.
    ///
    /// The first connect tries each address once, moving on when TCP or TLS fails or takes
    /// longer than [`RecoveryConfig::attempt_timeout`] (the whole within
    /// [`connect_timeout`](Self::connect_timeout)); a refused AMQP handshake (credentials,
    /// vhost) ends it. A recovery takes one address per attempt, starting after the one it
    /// lost.
    pub more_addresses: Vec<Address>,
    /// In which order the addresses are tried. Default [`AddressOrder::InOrder`];
    /// [`AddressOrder::Shuffled`] spreads connections over the nodes.
    pub address_order: AddressOrder,
    /// TLS settings; `Some` makes this an `amqps` connection.
    #[cfg(feature = "tls")]
    pub tls: Option<TlsConfig>,
    /// Protocol settings: credentials, vhost, heartbeat, frame and channel limits,
    /// connection name, client properties.
    pub protocol: proto::Config,
    /// Time allowed for TCP connect, TLS and the AMQP handshake together. Default 30 s.
    pub connect_timeout: Duration,
    /// Default time limit of every RPC (declare, bind, qos, get, close...);
    /// `None` waits forever. Default 60 s. Override per handle with
    /// [`Channel::with_timeout`](super::Channel::with_timeout).
    pub rpc_timeout: Option<Duration>,
    /// How long a publish waits while the server has blocked publishing
    /// (`connection.blocked`) before failing with [`Error::Blocked`]; `None` waits as
    /// long as the block lasts. Default `None`.
    pub blocked_timeout: Option<Duration>,
    /// Unconfirmed publishes allowed in flight per confirm-mode channel; a further
    /// publish waits until a confirm frees a slot. Default 1024.
    pub publish_window: usize,
    /// Bytes of publishes per connection held by the client: those queued for the
    /// connection task, and in confirm mode with
    /// [`republish_unconfirmed`](super::RecoveryConfig::republish_unconfirmed) those
    /// kept until their confirm to be sent again after a recovery. A body counts its
    /// length plus 256 bytes. A publish over it waits, like one for room in the
    /// [`publish_window`](Self::publish_window), until confirms or sends free enough.
    /// A message larger than the whole budget still goes, alone. At most 4 GiB.
    /// Default 64 MiB.
    pub publish_buffer_bytes: usize,
    /// Deliveries buffered per consumer (at least the channel's prefetch count is
    /// always allowed). Default 256.
    pub consumer_buffer: usize,
    /// Bytes of deliveries buffered per consumer: its queue, the batch it took and has
    /// not worked through yet, and what waits for room in its queue. Over it, the
    /// connection stops reading its socket (TCP slows the broker down; acks and other
    /// commands still go out) until the consumer makes room. A body counts its length
    /// plus 256 bytes. One delivery is always admitted, however large: a message over
    /// the budget still goes through, alone. Default 16 MiB.
    pub consumer_buffer_bytes: usize,
    /// Capacity of the queue of commands from handles to the connection task.
    /// Default 1024.
    pub command_capacity: usize,
    /// Automatic recovery after a lost connection: on by default; see [`RecoveryConfig`].
    pub recovery: RecoveryConfig,
    /// Read coalescing: while deliveries or confirms stream in (reads less than 4
    /// windows apart, at least 16 items a window: a steady 10 000 msgs/s against 1 ms,
    /// a message a read, is never delayed), the connection leaves its socket alone for this long after each
    /// read that brought some, so that the broker's next writes are read, and handed to
    /// consumers and publishers, together. On a busy stream it saves about a third of
    /// the client's CPU, and adds up to about a window (plus the 1 ms timer tick) of
    /// latency to those deliveries and confirms. The pause is not taken while a call or
    /// a secret update waits for its reply, nor when what it would hold back (at the
    /// stream's recent rate) would not fit in what a consuming channel's prefetch has
    /// left, in half the unconfirmed publishes of a publishing one, or in 64 KiB of the
    /// kernel's socket buffer: nobody waits for a pause to end. Acks, publishes and other
    /// commands go out at once regardless. During a pause the connection's thread sleeps
    /// where the broker's writes do not wake it. `None` reads as soon as data arrives.
    /// Default 1 ms.
    pub read_coalescing: Option<Duration>,
    /// Where the connection's task runs. `true` (the default): on a thread of its own
    /// with a current-thread runtime; heartbeats, reads and acks go on however busy the
    /// application's runtime is. `false`: spawned on the runtime `connect` is called
    /// from (`connect` fails with [`Error::InvalidArgument`] outside one). A round trip
    /// with one message in flight (window 1, prefetch 1, request/reply) then needs no
    /// hand-off between threads, but the connection runs only while that runtime does
    /// (a current-thread one only inside `block_on`; blocking code in its tasks delays
    /// heartbeats), and it ends when that runtime shuts down.
    pub own_thread: bool,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig {
            host: "localhost".into(),
            port: Scheme::Amqp.default_port(),
            more_addresses: Vec::new(),
            address_order: AddressOrder::InOrder,
            #[cfg(feature = "tls")]
            tls: None,
            protocol: proto::Config::default(),
            connect_timeout: Duration::from_secs(30),
            rpc_timeout: Some(Duration::from_secs(60)),
            blocked_timeout: None,
            publish_window: 1024,
            publish_buffer_bytes: 64 * 1024 * 1024,
            consumer_buffer: 256,
            consumer_buffer_bytes: 16 * 1024 * 1024,
            command_capacity: 1024,
            recovery: RecoveryConfig::default(),
            read_coalescing: Some(Duration::from_millis(1)),
            own_thread: true,
        }
    }
}

impl ConnectionConfig {
    /// The state machine's settings for one connection attempt whose handshake may take
    /// `handshake_timeout`.
    pub(crate) fn protocol_for(&self, handshake_timeout: Duration) -> proto::Config {
        let mut protocol = self.protocol.clone();
        protocol.handshake_timeout = Some(handshake_timeout);
        protocol.read_coalescing = self.read_coalescing;
        protocol.reconsume = self.recovery.reconsume;
        protocol
    }

    /// A configuration from an `amqp://` or `amqps://` URI (see [`crate::uri`] for the
    /// accepted query parameters). TLS files named in the URI are read here.
    pub fn from_uri(uri: &str) -> Result<Self, Error> {
        let uri = AmqpUri::parse(uri)?;
        ConnectionConfig::from_parsed_uri(&uri)
    }

    /// Every address a connection tries: `host:port`, then
    /// [`more_addresses`](Self::more_addresses), then the older
    /// [`RecoveryConfig::hosts`] (which are tried on the first connect too).
    pub fn addresses(&self) -> Vec<Address> {
        let mut list = vec![Address::new(self.host.clone(), self.port)];
        list.extend(self.more_addresses.iter().cloned());
        list.extend(self.recovery.hosts.iter().cloned().map(Address::from));
        list
    }

    /// A configuration from several URIs, one per node of a cluster: the first gives
    /// every setting, the others add their `host:port` (and the hosts of their own
    /// comma-separated lists). They must all have the same scheme, credentials and
    /// vhost, or this is an [`Error::Uri`].
    pub fn from_uris<S: AsRef<str>>(uris: &[S]) -> Result<Self, Error> {
        let Some((first, rest)) = uris.split_first() else {
            return Err(Error::Uri("no URI given".into()));
        };
        let first = AmqpUri::parse(first.as_ref())?;
        let mut config = ConnectionConfig::from_parsed_uri(&first)?;
        for uri in rest {
            let u = AmqpUri::parse(uri.as_ref())?;
            if u.scheme != first.scheme
                || u.user != first.user
                || u.password != first.password
                || u.vhost != first.vhost
            {
                return Err(Error::Uri(format!(
                    "{} differs from the first URI in scheme, credentials or vhost: one connection has one login",
                    u.address()
                )));
            }
            config.more_addresses.push(Address::new(u.host, u.port));
            config
                .more_addresses
                .extend(u.more_hosts.into_iter().map(Address::from));
        }
        Ok(config)
    }

    /// A configuration from an already parsed URI.
    pub fn from_parsed_uri(uri: &AmqpUri) -> Result<Self, Error> {
        let mut config = ConnectionConfig {
            host: uri.host.clone(),
            port: uri.port,
            more_addresses: uri.more_hosts.iter().cloned().map(Address::from).collect(),
            address_order: if uri.shuffle_hosts {
                AddressOrder::Shuffled
            } else {
                AddressOrder::InOrder
            },
            ..ConnectionConfig::default()
        };
        config.protocol.vhost = uri.vhost.clone();
        config.protocol.sasl = match uri.auth_mechanism.unwrap_or(AuthMechanism::Plain) {
            AuthMechanism::Plain => Sasl::plain(uri.user.clone(), uri.password.clone()),
            AuthMechanism::AmqPlain => Sasl::AmqPlain {
                username: uri.user.clone(),
                password: uri.password.clone(),
            },
            AuthMechanism::External => Sasl::External,
        };
        if let Some(h) = uri.heartbeat {
            config.protocol.heartbeat = Some(h);
        }
        if let Some(f) = uri.frame_max {
            config.protocol.frame_max = f;
        }
        if let Some(c) = uri.channel_max {
            config.protocol.channel_max = c;
        }
        if let Some(t) = uri.connection_timeout {
            config.connect_timeout = t;
        }
        match uri.scheme {
            Scheme::Amqp => {
                if uri.cacertfile.is_some() || uri.certfile.is_some() || uri.server_name.is_some() {
                    return Err(Error::Uri(
                        "TLS parameters given for an amqp:// URI: use amqps://".into(),
                    ));
                }
            }
            #[cfg(feature = "tls")]
            Scheme::Amqps => {
                let mut tls = match &uri.cacertfile {
                    Some(path) => TlsConfig::with_ca_file(path)?,
                    None => TlsConfig::new(),
                };
                if let (Some(cert), Some(key)) = (&uri.certfile, &uri.keyfile) {
                    tls = tls.client_cert_files(cert, key)?;
                }
                if let Some(name) = &uri.server_name {
                    tls = tls.server_name(name.clone());
                }
                config.tls = Some(tls);
            }
            #[cfg(not(feature = "tls"))]
            Scheme::Amqps => {
                return Err(Error::Uri("amqps:// needs warren's `tls` cargo feature".into()));
            }
        }
        Ok(config)
    }

    /// Sets the connection name shown in the management UI.
    pub fn with_connection_name(mut self, name: impl Into<String>) -> Self {
        self.protocol.connection_name = Some(name.into());
        self
    }

    /// Uses TLS with these settings.
    #[cfg(feature = "tls")]
    pub fn with_tls(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Sets the credentials and SASL mechanism.
    pub fn with_sasl(mut self, sasl: Sasl) -> Self {
        self.protocol.sasl = sasl;
        self
    }

    /// Sets the virtual host to open (the URI's path; `"/"` by default).
    pub fn with_vhost(mut self, vhost: impl Into<String>) -> Self {
        self.protocol.vhost = vhost.into();
        self
    }

    /// Asks for a heartbeat every `seconds` (the URI's `?heartbeat=`); the smaller of this
    /// and the server's non-zero value wins. A dead peer is noticed after about two
    /// intervals without a frame.
    ///
    /// ```
    /// use std::time::Duration;
    /// use warren::client::{ConnectionConfig, RecoveryConfig};
    ///
    /// let config = ConnectionConfig::from_uri("amqp://guest:guest@rabbit-1/%2f")?
    ///     .with_vhost("billing")
    ///     .with_heartbeat(15)
    ///     .with_rpc_timeout(Some(Duration::from_secs(10)))
    ///     .with_recovery(RecoveryConfig { max_attempts: Some(10), ..Default::default() });
    /// assert_eq!(config.protocol.vhost, "billing");
    /// assert_eq!(config.protocol.heartbeat, Some(15));
    /// # Ok::<(), warren::Error>(())
    /// ```
    pub fn with_heartbeat(mut self, seconds: u16) -> Self {
        self.protocol.heartbeat = Some(seconds);
        self
    }

    /// Sets how long a call on a channel waits for its reply (`None`: no limit); see
    /// [`rpc_timeout`](Self::rpc_timeout).
    pub fn with_rpc_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.rpc_timeout = timeout;
        self
    }

    /// Sets what happens when the connection is lost ([`RecoveryConfig::disabled`] for
    /// nothing).
    pub fn with_recovery(mut self, recovery: RecoveryConfig) -> Self {
        self.recovery = recovery;
        self
    }

    /// Checks settings that would otherwise fail later or deadlock.
    pub(crate) fn check(&self) -> Result<(), Error> {
        if self.publish_window == 0 {
            return Err(Error::InvalidArgument("publish_window must be at least 1".into()));
        }
        if self.consumer_buffer == 0 || self.command_capacity == 0 {
            return Err(Error::InvalidArgument(
                "consumer_buffer and command_capacity must be at least 1".into(),
            ));
        }
        let r = &self.recovery;
        if !(0.0..=1.0).contains(&r.jitter) || r.attempt_timeout.is_zero() || r.max_attempts == Some(0) {
            return Err(Error::InvalidArgument(
                "recovery: jitter must be in 0..=1, attempt_timeout above zero, max_attempts at least 1".into(),
            ));
        }
        if matches!(self.protocol.sasl, Sasl::External) {
            #[cfg(feature = "tls")]
            let has_cert = self.tls.as_ref().is_some_and(|t| t.has_client_cert());
            #[cfg(not(feature = "tls"))]
            let has_cert = false;
            if !has_cert {
                return Err(Error::InvalidArgument(
                    "SASL EXTERNAL authenticates with a TLS client certificate: configure one".into(),
                ));
            }
        }
        self.protocol.validate()
    }
}
