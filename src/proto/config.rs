//! Connection settings ([`Config`], [`Sasl`]) and the negotiated limits ([`Tune`]).

use std::fmt;
use std::time::Duration;

use crate::wire::{FRAME_MIN_SIZE, FieldTable};

/// The largest frame either side may send before `connection.open-ok`, and the least
/// warren proposes in `tune-ok`: RabbitMQ 4.1 raised the frame size allowed before
/// authentication from 4096 to 8192 (OAuth 2 tokens in `start-ok`).
pub const PRE_OPEN_FRAME_MAX: u32 = 8192;

/// How the client authenticates (SASL mechanism and credentials).
///
/// `Debug` never prints the password.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Sasl {
    /// `PLAIN`: the response is `"\0" username "\0" password`.
    Plain {
        /// User name.
        username: String,
        /// Password (or token, e.g. an OAuth 2 access token).
        password: String,
    },
    /// `AMQPLAIN`: the response is a field table, without its length prefix, holding
    /// `LOGIN` and `PASSWORD` as long strings.
    AmqPlain {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
    /// `EXTERNAL`: identity from the TLS client certificate; the response is empty.
    External,
}

impl Sasl {
    /// `PLAIN` with these credentials.
    pub fn plain(username: impl Into<String>, password: impl Into<String>) -> Self {
        Sasl::Plain {
            username: username.into(),
            password: password.into(),
        }
    }

    /// The mechanism name sent in `connection.start-ok`.
    pub fn mechanism(&self) -> &'static str {
        match self {
            Sasl::Plain { .. } => "PLAIN",
            Sasl::AmqPlain { .. } => "AMQPLAIN",
            Sasl::External => "EXTERNAL",
        }
    }

    /// The user name, when the mechanism carries one.
    pub fn username(&self) -> Option<&str> {
        match self {
            Sasl::Plain { username, .. } | Sasl::AmqPlain { username, .. } => Some(username),
            Sasl::External => None,
        }
    }
}

impl Default for Sasl {
    /// `PLAIN` as `guest`/`guest`, RabbitMQ's default user (loopback only).
    fn default() -> Self {
        Sasl::plain("guest", "guest")
    }
}

impl fmt::Debug for Sasl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sasl::Plain { username, .. } => f
                .debug_struct("Plain")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            Sasl::AmqPlain { username, .. } => f
                .debug_struct("AmqPlain")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            Sasl::External => f.write_str("External"),
        }
    }
}

/// Settings of one connection.
///
/// Limits follow the AMQP rule that 0 means "no limit": each side proposes a value in
/// `connection.tune` / `tune-ok`, and the result is the smaller non-zero one.
#[derive(Clone, Debug)]
pub struct Config {
    /// Credentials and SASL mechanism.
    pub sasl: Sasl,
    /// The virtual host to open (`"/"` by default).
    pub vhost: String,
    /// Highest channel number wanted; 0 takes the server's.
    pub channel_max: u16,
    /// Largest frame wanted, in bytes; 0 takes the server's. Values in `1..8192` are
    /// raised to 8192 ([`PRE_OPEN_FRAME_MAX`]; a server may still ask for as little as
    /// 4096, the protocol minimum). Default 128 KiB.
    pub frame_max: u32,
    /// Heartbeat interval in seconds; `None` takes the server's. `Some(0)` does not
    /// disable heartbeats if the server asks for them (0 means "no preference").
    pub heartbeat: Option<u16>,
    /// Shown in the management UI (`connection_name` client property).
    pub connection_name: Option<String>,
    /// Extra client properties; they replace warren's own entries of the same name.
    pub client_properties: FieldTable,
    /// Inbound message bodies larger than this close their channel with
    /// 311 CONTENT_TOO_LARGE before any byte of them is buffered. Default 128 MiB
    /// (RabbitMQ's default `max_message_size`).
    pub max_content_size: u64,
    /// How long a close waits for `close-ok` before giving up.
    pub close_timeout: Duration,
    /// How long the handshake may take, from [`Connection::new`](super::Connection::new)
    /// to `open-ok`; then the connection ends with `Error::Timeout { operation:
    /// "connect" }`. `None`: no limit. Default 30 s. The tokio client sets it from
    /// `connect_timeout`, and from `attempt_timeout` for a recovery's reconnection.
    pub handshake_timeout: Option<Duration>,
    /// The connection generation, bumped by recovery on every reconnect; delivery tags
    /// from another generation are refused with [`Error::StaleDelivery`](crate::error::Error::StaleDelivery).
    pub generation: u32,
    /// The locale sent in `start-ok` (`"en_US"`).
    pub locale: String,
    /// Read coalescing: while deliveries or confirms stream in,
    /// [`Connection::read_pause`](super::Connection::read_pause) asks the driver to leave
    /// the socket alone for this long after a read, when nothing but the stream can be
    /// held up by it. `None` (the default here; the tokio client uses 1 ms): never.
    pub read_coalescing: Option<Duration>,
    /// The broker's consumer timeout (RabbitMQ's `consumer_timeout`, default 30 minutes),
    /// for a consumer without an `x-consumer-timeout` argument: a server cancel that finds
    /// a delivery of its channel unacknowledged for at least this long is reported as
    /// [`CancelReason::AckTimeout`](crate::error::CancelReason::AckTimeout).
    pub consumer_timeout: Duration,
    /// Consume again, with this backoff, after the server cancels a consumer
    /// (`basic.cancel` from the server, e.g. the node of its queue went away), once the
    /// queue is reachable again: see [`Reconsume`](super::Reconsume). `None` (the
    /// default): the consumer ends with [`Event::ConsumerCancelled`](super::Event::ConsumerCancelled).
    pub reconsume: Option<super::Reconsume>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            sasl: Sasl::default(),
            vhost: "/".into(),
            channel_max: 0,
            frame_max: 128 * 1024,
            heartbeat: None,
            connection_name: None,
            client_properties: FieldTable::new(),
            max_content_size: 128 * 1024 * 1024,
            close_timeout: Duration::from_secs(5),
            handshake_timeout: Some(Duration::from_secs(30)),
            generation: 0,
            locale: "en_US".into(),
            read_coalescing: None,
            consumer_timeout: Duration::from_secs(30 * 60),
            reconsume: None,
        }
    }
}

impl Config {
    /// Checks what the handshake will need to encode as short strings (at most 255
    /// bytes): the vhost and the locale.
    /// [`Connection::new`](super::Connection::new) runs this too and starts closed with
    /// the error when it fails.
    pub fn validate(&self) -> Result<(), crate::error::Error> {
        let short = |what: &str, s: &str| {
            if s.len() > 255 {
                Err(crate::error::Error::InvalidArgument(format!(
                    "{what} is {} bytes long, at most 255 allowed",
                    s.len()
                )))
            } else {
                Ok(())
            }
        };
        short("vhost", &self.vhost)?;
        short("locale", &self.locale)?;
        Ok(())
    }
}

/// The limits both sides agreed on in `connection.tune` / `tune-ok`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tune {
    /// Highest usable channel number (65535 when neither side set a limit).
    pub channel_max: u16,
    /// Largest frame in bytes, 0 for no limit (both sides proposed 0).
    pub frame_max: u32,
    /// Heartbeat interval in seconds, 0 for none.
    pub heartbeat: u16,
}

/// The smaller non-zero value, or 0 when both are 0.
fn smaller_nonzero<T: Ord + Default + Copy>(ours: T, theirs: T) -> T {
    let zero = T::default();
    match (ours == zero, theirs == zero) {
        (true, _) => theirs,
        (_, true) => ours,
        _ => ours.min(theirs),
    }
}

impl Tune {
    /// Negotiates from the server's `connection.tune` and our configuration; fails when
    /// the resulting `frame_max` is below the protocol minimum of 4096.
    pub fn negotiate(config: &Config, channel_max: u16, frame_max: u32, heartbeat: u16) -> Result<Tune, String> {
        let ours_frame = match config.frame_max {
            0 => 0,
            n => n.max(PRE_OPEN_FRAME_MAX),
        };
        let frame_max = smaller_nonzero(ours_frame, frame_max);
        if frame_max != 0 && frame_max < FRAME_MIN_SIZE {
            return Err(format!(
                "server frame_max {frame_max} is below the protocol minimum {FRAME_MIN_SIZE}"
            ));
        }
        let channel_max = match smaller_nonzero(config.channel_max, channel_max) {
            0 => u16::MAX,
            n => n,
        };
        let heartbeat = match config.heartbeat {
            None => heartbeat,
            Some(ours) => smaller_nonzero(ours, heartbeat),
        };
        Ok(Tune {
            channel_max,
            frame_max,
            heartbeat,
        })
    }
}
