//! The connection handshake: start → start-ok, secure → secure-ok, tune → tune-ok +
//! open, open-ok. Each phase accepts the method it waits for (and `connection.close`);
//! anything else is a typed error naming what was expected and what arrived.

use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};

use super::connection::{Denied, Phase, short_text};
use super::{Config, Event, Sasl, Tune};
use crate::error::Error;
use crate::wire::{
    ConnectionOpen, ConnectionOpenOk, ConnectionSecure, ConnectionSecureOk, ConnectionStart, ConnectionStartOk,
    ConnectionTune, ConnectionTuneOk, FRAME_MIN_SIZE, FieldTable, FieldValue, Frame, Method, MethodId, ReplyCode,
    ShortStr, encode_method, encode_table,
};

/// How many `connection.secure` challenges are answered before giving up.
const MAX_SECURE_ROUNDS: u8 = 4;

/// The capabilities warren implements, announced in `start-ok`.
const CAPABILITIES: [&str; 7] = [
    "publisher_confirms",
    "consumer_cancel_notify",
    "basic.nack",
    "connection.blocked",
    "authentication_failure_close",
    "exchange_exchange_bindings",
    "per_consumer_qos",
];

/// Whether the server's properties announce `capability` as true.
pub(super) fn server_capability(server_properties: &FieldTable, capability: &str) -> bool {
    matches!(
        server_properties.get("capabilities"),
        Some(FieldValue::Table(caps)) if caps.get(capability) == Some(&FieldValue::Bool(true))
    )
}

/// The client properties sent in `start-ok`.
pub(super) fn client_properties(config: &Config) -> FieldTable {
    let mut capabilities = FieldTable::new();
    for name in CAPABILITIES {
        capabilities.insert(ShortStr::from_static(name), true);
    }
    let mut props = FieldTable::new();
    props.insert(ShortStr::from_static("product"), "warren");
    props.insert(ShortStr::from_static("version"), env!("CARGO_PKG_VERSION"));
    props.insert(ShortStr::from_static("platform"), "Rust");
    props.insert(ShortStr::from_static("capabilities"), capabilities);
    if let Some(name) = &config.connection_name {
        props.insert(ShortStr::from_static("connection_name"), name.as_str());
    }
    for (key, value) in config.client_properties.iter() {
        props.insert(key.clone(), value.clone());
    }
    props
}

/// The SASL response for `start-ok` and `secure-ok`. Holds the secret: never logged.
pub(super) fn sasl_response(sasl: &Sasl) -> Bytes {
    match sasl {
        Sasl::Plain { username, password } => {
            let mut buf = BytesMut::with_capacity(2 + username.len() + password.len());
            buf.put_u8(0);
            buf.put_slice(username.as_bytes());
            buf.put_u8(0);
            buf.put_slice(password.as_bytes());
            buf.freeze()
        }
        Sasl::AmqPlain { username, password } => {
            let mut table = FieldTable::new();
            table.push(
                ShortStr::from_static("LOGIN"),
                FieldValue::LongStr(Bytes::copy_from_slice(username.as_bytes())),
            );
            table.push(
                ShortStr::from_static("PASSWORD"),
                FieldValue::LongStr(Bytes::copy_from_slice(password.as_bytes())),
            );
            let mut buf = BytesMut::new();
            encode_table(&table, &mut buf);
            // AMQPLAIN sends the table's entries without the 32-bit length prefix.
            buf.freeze().slice(4..)
        }
        Sasl::External => Bytes::new(),
    }
}

/// Inbound `frame_max` once tuned: the negotiated one, or with no limit negotiated,
/// enough for the largest body allowed in one frame (and at least 128 KiB).
fn inbound_limit(tune: &Tune, config: &Config) -> u32 {
    match tune.frame_max {
        0 => u32::try_from(config.max_content_size.saturating_add(8))
            .unwrap_or(u32::MAX)
            .max(128 * 1024),
        n => n.max(FRAME_MIN_SIZE),
    }
}

impl super::Connection {
    /// A frame before the connection is open.
    #[cold]
    pub(super) fn on_handshake_frame(&mut self, frame: Frame, now: Instant) {
        let method = match frame {
            Frame::Heartbeat => return,
            Frame::Method { channel: 0, method } => method,
            other => {
                let expected: Vec<String> = self.expected().iter().map(MethodId::to_string).collect();
                let text = format!(
                    "expected {} on channel 0, got a frame on channel {}",
                    expected.join(" or "),
                    other.channel()
                );
                self.connection_error(ReplyCode::UNEXPECTED_FRAME, text, None, now);
                return;
            }
        };
        match (&self.phase, method) {
            (_, Method::ConnectionClose(m)) => self.on_server_close(m),
            (Phase::AwaitStart, Method::ConnectionStart(m)) => self.on_start(m),
            (Phase::AwaitSecureOrTune { .. }, Method::ConnectionSecure(m)) => self.on_secure(m),
            (Phase::AwaitSecureOrTune { .. }, Method::ConnectionTune(m)) => self.on_tune(m, now),
            (Phase::AwaitOpenOk { .. }, Method::ConnectionOpenOk(_)) => self.on_open_ok(),
            (Phase::AwaitOpenOk { .. }, m @ (Method::ConnectionBlocked(_) | Method::ConnectionUnblocked(_))) => {
                self.on_connection_method(m, now);
            }
            (Phase::AwaitOpenOk { .. }, other) => {
                // tune-ok went out: the close handshake is possible.
                let id = other.id();
                let text = Error::unexpected(self.expected(), id).to_string();
                self.connection_error(ReplyCode::COMMAND_INVALID, text, Some(id), now);
            }
            (_, other) => self.lost(Error::unexpected(self.expected(), other.id())),
        }
    }

    /// What the handshake waits for.
    fn expected(&self) -> &'static [MethodId] {
        match self.phase {
            Phase::AwaitStart => &[ConnectionStart::ID],
            Phase::AwaitSecureOrTune { .. } => &[ConnectionSecure::ID, ConnectionTune::ID],
            Phase::AwaitOpenOk { .. } => &[ConnectionOpenOk::ID],
            _ => &[],
        }
    }

    fn on_start(&mut self, m: ConnectionStart) {
        tracing::debug!(
            version_major = m.version_major,
            version_minor = m.version_minor,
            product = %server_text(&m.server_properties, "product"),
            server_version = %server_text(&m.server_properties, "version"),
            mechanisms = %String::from_utf8_lossy(&m.mechanisms),
            "connection.start"
        );
        if (m.version_major, m.version_minor) != (0, 9) {
            let reason = format!(
                "the server speaks AMQP {}-{}, not 0-9",
                m.version_major, m.version_minor
            );
            self.lost(Error::Handshake { reason });
            return;
        }
        let mechanism = self.config.sasl.mechanism();
        if !m
            .mechanisms
            .split(|b| *b == b' ')
            .any(|offered| offered == mechanism.as_bytes())
        {
            let offered = String::from_utf8_lossy(&m.mechanisms).into_owned();
            tracing::debug!(mechanism, %offered, "mechanism not offered by the server");
            self.lost(Error::Authentication {
                mechanism: mechanism.into(),
                text: format!("the server offers only [{offered}]"),
            });
            return;
        }
        tracing::debug!(mechanism, "connection.start-ok");
        self.denied = Denied::from_server_properties(&m.server_properties);
        let start_ok = ConnectionStartOk {
            client_properties: client_properties(&self.config),
            mechanism: ShortStr::from_static(mechanism),
            response: sasl_response(&self.config.sasl),
            locale: short_text(&self.config.locale),
        };
        encode_method(0, &Method::ConnectionStartOk(start_ok), self.io.out.buf_mut());
        self.io.accept_cancel_ok = server_capability(&m.server_properties, "accept_consumer_cancel_ok");
        self.phase = Phase::AwaitSecureOrTune {
            server_properties: m.server_properties,
            secure_rounds: 0,
        };
    }

    fn on_secure(&mut self, _m: ConnectionSecure) {
        let Phase::AwaitSecureOrTune { secure_rounds, .. } = &mut self.phase else {
            return;
        };
        *secure_rounds += 1;
        tracing::debug!(round = *secure_rounds, "connection.secure");
        if *secure_rounds > MAX_SECURE_ROUNDS {
            self.lost(Error::Authentication {
                mechanism: self.config.sasl.mechanism().into(),
                text: format!("more than {MAX_SECURE_ROUNDS} connection.secure challenges"),
            });
            return;
        }
        // PLAIN and AMQPLAIN have a single step: a challenge is answered with the same
        // credentials; EXTERNAL answers with an empty response.
        let secure_ok = ConnectionSecureOk {
            response: sasl_response(&self.config.sasl),
        };
        encode_method(0, &Method::ConnectionSecureOk(secure_ok), self.io.out.buf_mut());
    }

    fn on_tune(&mut self, m: ConnectionTune, now: Instant) {
        let tune = match Tune::negotiate(&self.config, m.channel_max, m.frame_max, m.heartbeat) {
            Ok(t) => t,
            Err(reason) => {
                self.lost(Error::Handshake { reason });
                return;
            }
        };
        let virtual_host = match ShortStr::try_from(self.config.vhost.as_str()) {
            Ok(v) => v,
            Err(e) => {
                self.lost(Error::InvalidArgument(format!("vhost: {e}")));
                return;
            }
        };
        tracing::debug!(
            channel_max = tune.channel_max,
            frame_max = tune.frame_max,
            heartbeat = tune.heartbeat,
            proposed_channel_max = m.channel_max,
            proposed_frame_max = m.frame_max,
            proposed_heartbeat = m.heartbeat,
            "connection.tune-ok"
        );
        tracing::debug!(vhost = %self.config.vhost, "connection.open");
        let tune_ok = ConnectionTuneOk {
            channel_max: tune.channel_max,
            frame_max: tune.frame_max,
            heartbeat: tune.heartbeat,
        };
        encode_method(0, &Method::ConnectionTuneOk(tune_ok), self.io.out.buf_mut());
        encode_method(
            0,
            &Method::ConnectionOpen(ConnectionOpen { virtual_host }),
            self.io.out.buf_mut(),
        );
        self.inbound_frame_max = inbound_limit(&tune, &self.config);
        self.tune = Some(tune);
        self.heartbeat = (tune.heartbeat > 0).then(|| Duration::from_secs(tune.heartbeat.into()));
        self.last_read = now;
        if let Phase::AwaitSecureOrTune { server_properties, .. } = &mut self.phase {
            self.phase = Phase::AwaitOpenOk {
                server_properties: std::mem::take(server_properties),
            };
        }
    }

    fn on_open_ok(&mut self) {
        let (Phase::AwaitOpenOk { server_properties }, Some(tune)) = (&mut self.phase, self.tune) else {
            return;
        };
        let server_properties = std::mem::take(server_properties);
        self.phase = Phase::Open;
        tracing::debug!("connection.open-ok");
        self.io.events.push_back(Event::Connected {
            server_properties,
            tune,
        });
        self.start_replay();
    }
}

/// A text entry of the server's properties (`product`, `version`), for the log.
fn server_text(properties: &FieldTable, key: &str) -> String {
    match properties.get(key) {
        Some(FieldValue::LongStr(b)) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    }
}
