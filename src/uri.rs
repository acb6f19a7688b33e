//! AMQP URIs: `amqp://user:password@host:port/vhost?key=value&...` and `amqps://...`.
//!
//! Follows the RabbitMQ URI specification: user, password and vhost are percent-decoded;
//! a missing user or password is `guest`; a missing host is `localhost`; the port defaults
//! to 5672 (`amqp`) or 5671 (`amqps`); an absent or empty path is the vhost `/`, and `%2f`
//! spells `/` inside a vhost name (`amqp://host/%2f`).
//!
//! Several nodes of a cluster: a comma-separated list of `host:port` in the authority,
//! `amqp://user:password@h1:5701,h2:5702,[::1]:5703/vhost`. The first is
//! [`host`](AmqpUri::host)/[`port`](AmqpUri::port), the others
//! [`more_hosts`](AmqpUri::more_hosts); each takes the scheme's default port when it has
//! none; they share the credentials, vhost and parameters. A connection tries them as
//! [`AddressOrder`](crate::client::AddressOrder) says, on its first connect and on every
//! recovery.
//!
//! Query parameters (unknown ones are refused, so that a typo does not pass unnoticed):
//!
//! | key | value |
//! |---|---|
//! | `heartbeat` | seconds, 0 disables (u16) |
//! | `frame_max` | bytes, 0 or at least 4096 (u32) |
//! | `channel_max` | highest channel number (u16) |
//! | `connection_timeout` | milliseconds for TCP + TLS + handshake |
//! | `auth_mechanism` | `plain`, `amqplain` or `external` |
//! | `cacertfile` | PEM file of CA certificates to trust instead of the web PKI roots |
//! | `certfile`, `keyfile` | client certificate chain and private key (PEM), both or neither |
//! | `server_name_indication` | the name to verify the server certificate against and send as SNI |
//! | `verify` | only `verify_peer`; verification cannot be turned off |
//! | `address_order` | `in_order` (the default) or `shuffled`: how several hosts are tried |
//!
//! Every malformed input is an [`Error::Uri`] naming what was wrong;
//! parsing never panics. The password never appears in `Debug` output.

use std::fmt;
use std::net::Ipv6Addr;
use std::path::PathBuf;
use std::time::Duration;

use crate::Error;

/// The URI scheme: plain TCP or TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `amqp://`: plain TCP, default port 5672.
    Amqp,
    /// `amqps://`: TLS, default port 5671.
    Amqps,
}

impl Scheme {
    /// The default port of the scheme.
    pub const fn default_port(self) -> u16 {
        match self {
            Scheme::Amqp => 5672,
            Scheme::Amqps => 5671,
        }
    }
}

/// A SASL mechanism named by the `auth_mechanism` query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthMechanism {
    /// `PLAIN`: user and password (the default).
    Plain,
    /// `AMQPLAIN`: user and password in a field table (RabbitMQ's legacy mechanism).
    AmqPlain,
    /// `EXTERNAL`: identity from the TLS client certificate.
    External,
}

/// A parsed AMQP URI.
#[derive(Clone, PartialEq, Eq)]
pub struct AmqpUri {
    /// `amqp` or `amqps`.
    pub scheme: Scheme,
    /// User name (decoded), `guest` when absent.
    pub user: String,
    /// Password (decoded), `guest` when absent. Not shown by `Debug`.
    pub password: String,
    /// Host name or IP address literal (IPv6 without brackets).
    pub host: String,
    /// Port, the scheme's default when absent.
    pub port: u16,
    /// The hosts after the first in a comma-separated list (`h1:5701,h2:5702`), with
    /// their ports; empty for a single host.
    pub more_hosts: Vec<(String, u16)>,
    /// `address_order=shuffled`: try the hosts in a random order (spreads connections
    /// over the nodes). Default false: in order.
    pub shuffle_hosts: bool,
    /// Virtual host (decoded), `/` when the path is absent or empty.
    pub vhost: String,
    /// `heartbeat`: requested heartbeat interval in seconds.
    pub heartbeat: Option<u16>,
    /// `frame_max`: requested maximum frame size.
    pub frame_max: Option<u32>,
    /// `channel_max`: requested highest channel number.
    pub channel_max: Option<u16>,
    /// `connection_timeout`: time allowed for connecting and the handshake.
    pub connection_timeout: Option<Duration>,
    /// `auth_mechanism`: the SASL mechanism.
    pub auth_mechanism: Option<AuthMechanism>,
    /// `cacertfile`: PEM file of trusted CA certificates.
    pub cacertfile: Option<PathBuf>,
    /// `certfile`: PEM client certificate chain.
    pub certfile: Option<PathBuf>,
    /// `keyfile`: PEM client private key.
    pub keyfile: Option<PathBuf>,
    /// `server_name_indication`: the server name to verify and send as SNI.
    pub server_name: Option<String>,
}

impl fmt::Debug for AmqpUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmqpUri")
            .field("scheme", &self.scheme)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("more_hosts", &self.more_hosts)
            .field("shuffle_hosts", &self.shuffle_hosts)
            .field("vhost", &self.vhost)
            .field("heartbeat", &self.heartbeat)
            .field("frame_max", &self.frame_max)
            .field("channel_max", &self.channel_max)
            .field("connection_timeout", &self.connection_timeout)
            .field("auth_mechanism", &self.auth_mechanism)
            .field("cacertfile", &self.cacertfile)
            .field("certfile", &self.certfile)
            .field("keyfile", &self.keyfile)
            .field("server_name", &self.server_name)
            .finish()
    }
}

impl std::str::FromStr for AmqpUri {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        AmqpUri::parse(s)
    }
}

fn err(msg: impl Into<String>) -> Error {
    Error::Uri(msg.into())
}

impl AmqpUri {
    /// Parses an `amqp://` or `amqps://` URI.
    pub fn parse(uri: &str) -> Result<Self, Error> {
        let (scheme, rest) = if let Some(rest) = strip_prefix_ci(uri, "amqp://") {
            (Scheme::Amqp, rest)
        } else if let Some(rest) = strip_prefix_ci(uri, "amqps://") {
            (Scheme::Amqps, rest)
        } else {
            let shown = uri.split("://").next().filter(|s| *s != uri).unwrap_or("");
            return Err(if shown.is_empty() {
                err("the URI must start with amqp:// or amqps://")
            } else {
                err(format!("unsupported scheme {shown:?}: expected amqp or amqps"))
            });
        };
        if rest.contains('#') {
            return Err(err("an AMQP URI cannot have a fragment ('#')"));
        }
        if let Some(c) = rest.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(err(format!("unexpected character {c:?}: percent-encode it")));
        }
        let (before_query, query) = match rest.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (rest, None),
        };
        let (authority, path) = match before_query.find('/') {
            Some(at) => (&before_query[..at], Some(&before_query[at + 1..])),
            None => (before_query, None),
        };

        let (userinfo, hostport) = match authority.rfind('@') {
            Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
            None => (None, authority),
        };
        let (user, password) = match userinfo {
            None => ("guest".to_owned(), "guest".to_owned()),
            Some(info) => {
                let (u, p) = match info.split_once(':') {
                    Some((u, p)) => (u, Some(p)),
                    None => (info, None),
                };
                let user = decode(u, "user")?;
                let password = match p {
                    Some(p) => decode(p, "password")?,
                    None => "guest".to_owned(),
                };
                (if u.is_empty() { "guest".to_owned() } else { user }, password)
            }
        };
        if hostport.contains(',') && hostport.split(',').any(str::is_empty) {
            return Err(err("empty host in the comma-separated host list"));
        }
        let mut hosts = hostport.split(',');
        let (host, port) = parse_hostport(hosts.next().unwrap_or(""), scheme)?;
        let mut more_hosts = Vec::new();
        for h in hosts {
            more_hosts.push(parse_hostport(h, scheme)?);
        }

        let vhost = match path {
            None | Some("") => "/".to_owned(),
            Some(p) if p.contains('/') => {
                return Err(err(format!("the vhost {p:?} contains '/': write it as %2f")));
            }
            Some(p) => decode(p, "vhost")?,
        };

        let mut uri = AmqpUri {
            scheme,
            user,
            password,
            host,
            port,
            more_hosts,
            shuffle_hosts: false,
            vhost,
            heartbeat: None,
            frame_max: None,
            channel_max: None,
            connection_timeout: None,
            auth_mechanism: None,
            cacertfile: None,
            certfile: None,
            keyfile: None,
            server_name: None,
        };
        if let Some(query) = query {
            for pair in query.split('&').filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                let key = decode(k, "query parameter name")?;
                let value = decode(v, "query parameter value")?;
                uri.set_param(&key, &value)?;
            }
        }
        if uri.certfile.is_some() != uri.keyfile.is_some() {
            return Err(err("certfile and keyfile must be given together"));
        }
        Ok(uri)
    }

    fn set_param(&mut self, key: &str, value: &str) -> Result<(), Error> {
        if value.is_empty() {
            return Err(err(format!("query parameter {key:?} has no value")));
        }
        match key {
            "heartbeat" => self.heartbeat = Some(number(key, value)?),
            "frame_max" => {
                let v: u32 = number(key, value)?;
                if v != 0 && v < 4096 {
                    return Err(err(format!("frame_max={v} is below the AMQP minimum of 4096")));
                }
                self.frame_max = Some(v);
            }
            "channel_max" => self.channel_max = Some(number(key, value)?),
            "connection_timeout" => self.connection_timeout = Some(Duration::from_millis(number(key, value)?)),
            "auth_mechanism" => {
                self.auth_mechanism = Some(match value.to_ascii_lowercase().as_str() {
                    "plain" => AuthMechanism::Plain,
                    "amqplain" => AuthMechanism::AmqPlain,
                    "external" => AuthMechanism::External,
                    other => {
                        return Err(err(format!(
                            "auth_mechanism={other:?} is not supported: use plain, amqplain or external"
                        )));
                    }
                })
            }
            "cacertfile" => self.cacertfile = Some(PathBuf::from(value)),
            "certfile" => self.certfile = Some(PathBuf::from(value)),
            "keyfile" => self.keyfile = Some(PathBuf::from(value)),
            "server_name_indication" => self.server_name = Some(value.to_owned()),
            "verify" if value == "verify_peer" => {}
            "address_order" => {
                self.shuffle_hosts = match value {
                    "in_order" => false,
                    "shuffled" => true,
                    other => {
                        return Err(err(format!(
                            "address_order={other:?} is not supported: use in_order or shuffled"
                        )));
                    }
                }
            }
            "verify" => {
                return Err(err(format!(
                    "verify={value:?} is refused: server certificate verification cannot be disabled \
                     (give a cacertfile instead)"
                )));
            }
            other => {
                return Err(err(format!(
                    "unknown query parameter {other:?} (known: heartbeat, frame_max, channel_max, \
                     connection_timeout, auth_mechanism, cacertfile, certfile, keyfile, \
                     server_name_indication, verify, address_order)"
                )));
            }
        }
        Ok(())
    }

    /// `host:port` for connecting, with brackets around an IPv6 literal.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &s[prefix.len()..])
}

fn number<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, Error> {
    value.parse().map_err(|_| {
        err(format!(
            "query parameter {key}={value:?} is not a valid number (or is out of range)"
        ))
    })
}

fn parse_hostport(hostport: &str, scheme: Scheme) -> Result<(String, u16), Error> {
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let Some((inside, after)) = rest.split_once(']') else {
            return Err(err(format!("unclosed '[' in host {hostport:?}")));
        };
        if inside.parse::<Ipv6Addr>().is_err() {
            return Err(err(format!("{inside:?} is not an IPv6 address")));
        }
        let port = match after {
            "" => None,
            p => match p.strip_prefix(':') {
                Some(p) => Some(p),
                None => return Err(err(format!("unexpected {p:?} after the IPv6 address"))),
            },
        };
        (inside.to_owned(), port)
    } else {
        let (h, p) = match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        };
        if h.contains([']', '[']) {
            return Err(err(format!("malformed host {h:?}")));
        }
        let host = decode(h, "host")?;
        if host.contains(['/', '@', ':', '?']) {
            return Err(err(format!("malformed host {host:?}")));
        }
        (if host.is_empty() { "localhost".to_owned() } else { host }, p)
    };
    let port = match port {
        None | Some("") => scheme.default_port(),
        Some(p) => match p.parse::<u16>() {
            Ok(0) | Err(_) => return Err(err(format!("invalid port {p:?}: expected 1-65535"))),
            Ok(n) => n,
        },
    };
    Ok((host, port))
}

/// Percent-decodes `s`; `what` names the part for error messages.
fn decode(s: &str, what: &str) -> Result<String, Error> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                Some(b) if hex.is_some_and(|h| h.bytes().all(|c| c.is_ascii_hexdigit())) => out.push(b),
                _ => {
                    return Err(err(format!(
                        "bad percent-encoding in the {what}: '%' must be followed by two hex digits"
                    )));
                }
            }
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| err(format!("the {what} is not UTF-8 once percent-decoded")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(e: Error) -> String {
        match e {
            Error::Uri(m) => m,
            other => panic!("expected Error::Uri, got {other:?}"),
        }
    }

    #[test]
    fn full_uri() {
        let u = AmqpUri::parse("amqp://us%40er:p%3Ass@rabbit.example:1234/my%2fvhost?heartbeat=10&frame_max=131072&channel_max=100&connection_timeout=2500&auth_mechanism=AMQPLAIN").unwrap();
        assert_eq!(u.scheme, Scheme::Amqp);
        assert_eq!(u.user, "us@er");
        assert_eq!(u.password, "p:ss");
        assert_eq!(u.host, "rabbit.example");
        assert_eq!(u.port, 1234);
        assert_eq!(u.vhost, "my/vhost");
        assert_eq!(u.heartbeat, Some(10));
        assert_eq!(u.frame_max, Some(131072));
        assert_eq!(u.channel_max, Some(100));
        assert_eq!(u.connection_timeout, Some(Duration::from_millis(2500)));
        assert_eq!(u.auth_mechanism, Some(AuthMechanism::AmqPlain));
    }

    #[test]
    fn defaults() {
        let u = AmqpUri::parse("amqp://").unwrap();
        assert_eq!((u.user.as_str(), u.password.as_str()), ("guest", "guest"));
        assert_eq!((u.host.as_str(), u.port, u.vhost.as_str()), ("localhost", 5672, "/"));
        let u = AmqpUri::parse("amqps://h").unwrap();
        assert_eq!((u.scheme, u.port, u.vhost.as_str()), (Scheme::Amqps, 5671, "/"));
        let u = AmqpUri::parse("amqp://h/").unwrap();
        assert_eq!(u.vhost, "/");
        let u = AmqpUri::parse("amqp://guest:guest@127.0.0.1:5672/%2f").unwrap();
        assert_eq!(u.vhost, "/");
        let u = AmqpUri::parse("amqp://h/prod").unwrap();
        assert_eq!(u.vhost, "prod");
        let u = AmqpUri::parse("AMQP://h:1").unwrap();
        assert_eq!(u.port, 1);
        let u = AmqpUri::parse("amqp://bob@h").unwrap();
        assert_eq!((u.user.as_str(), u.password.as_str()), ("bob", "guest"));
        let u = AmqpUri::parse("amqp://bob:@h").unwrap();
        assert_eq!(u.password, "");
    }

    #[test]
    fn host_lists() {
        let u = AmqpUri::parse("amqp://u:p@h1:5701,h2:5702,[::1],h4/v?address_order=shuffled").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("h1", 5701));
        assert_eq!(
            u.more_hosts,
            [("h2".into(), 5702), ("::1".into(), 5672), ("h4".into(), 5672)]
        );
        assert_eq!((u.user.as_str(), u.vhost.as_str()), ("u", "v"));
        assert!(u.shuffle_hosts);
        let u = AmqpUri::parse("amqps://h1,h2:1").unwrap();
        assert_eq!(u.port, 5671);
        assert_eq!(u.more_hosts, [("h2".into(), 1)]);
        assert!(!u.shuffle_hosts);
        assert!(AmqpUri::parse("amqp://h?address_order=in_order").is_ok());
        for bad in [
            "amqp://h1,",
            "amqp://h1,,h2",
            "amqp://,h2",
            "amqp://h1,h2:0",
            "amqp://h1,h2:x",
            "amqp://h1,[::1",
            "amqp://h?address_order=random",
        ] {
            assert!(matches!(AmqpUri::parse(bad), Err(Error::Uri(_))), "{bad}");
        }
    }

    #[test]
    fn ipv6() {
        let u = AmqpUri::parse("amqp://[::1]:5673/v").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 5673));
        assert_eq!(u.address(), "[::1]:5673");
        let u = AmqpUri::parse("amqps://u:p@[fe80::1]").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("fe80::1", 5671));
        assert!(msg(AmqpUri::parse("amqp://[::1").unwrap_err()).contains("unclosed"));
        assert!(msg(AmqpUri::parse("amqp://[zz]:1").unwrap_err()).contains("IPv6"));
        assert!(AmqpUri::parse("amqp://[::1]x").is_err());
        assert!(AmqpUri::parse("amqp://::1").is_err());
    }

    #[test]
    fn tls_params() {
        let u = AmqpUri::parse(
            "amqps://h?cacertfile=/tmp/ca.pem&certfile=/tmp/c.pem&keyfile=/tmp/k.pem&server_name_indication=rabbit&verify=verify_peer&auth_mechanism=external",
        )
        .unwrap();
        assert_eq!(u.cacertfile.as_deref(), Some(std::path::Path::new("/tmp/ca.pem")));
        assert_eq!(u.server_name.as_deref(), Some("rabbit"));
        assert_eq!(u.auth_mechanism, Some(AuthMechanism::External));
        assert!(msg(AmqpUri::parse("amqps://h?verify=verify_none").unwrap_err()).contains("cannot be disabled"));
        assert!(msg(AmqpUri::parse("amqps://h?certfile=/c").unwrap_err()).contains("together"));
    }

    #[test]
    fn malformed_inputs_are_typed_errors() {
        let cases = [
            "",
            "http://h",
            "amqp:/h",
            "amqp://h:0",
            "amqp://h:65536",
            "amqp://h:port",
            "amqp://h/a/b",
            "amqp://h/%zz",
            "amqp://h/%4",
            "amqp://h/%",
            "amqp://h/%ff",
            "amqp://u%:p@h",
            "amqp://h?heartbeat=x",
            "amqp://h?heartbeat=70000",
            "amqp://h?heartbeat",
            "amqp://h?frame_max=100",
            "amqp://h?channel_max=-1",
            "amqp://h?auth_mechanism=kerberos",
            "amqp://h?heartbeet=1",
            "amqp://h#frag",
            "amqp://h h",
            "amqp://h\n",
            "amqp://h%2f",
            "amqp://]h",
            "amqps://h?verify=verify_none",
        ];
        for c in cases {
            match AmqpUri::parse(c) {
                Err(Error::Uri(m)) => assert!(!m.is_empty()),
                other => panic!("{c:?}: expected Error::Uri, got {other:?}"),
            }
        }
    }

    #[test]
    fn never_panics_on_odd_bytes() {
        let alphabet = [
            "amqp://", "amqps://", "%", "%2", "%2f", "@", ":", "[", "]", "/", "?", "&", "=", "é", "h", "1",
        ];
        // Every sequence of up to three pieces.
        for a in alphabet {
            for b in alphabet {
                for c in alphabet {
                    let _ = AmqpUri::parse(&format!("{a}{b}{c}"));
                    let _ = AmqpUri::parse(&format!("amqp://{a}{b}{c}"));
                }
            }
        }
    }

    #[test]
    fn debug_hides_password() {
        let u = AmqpUri::parse("amqp://u:s3cret@h").unwrap();
        assert!(!format!("{u:?}").contains("s3cret"));
    }
}
