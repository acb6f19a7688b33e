//! The byte stream under a connection: TCP (with `TCP_NODELAY`), or TLS over TCP.

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::config::ConnectionConfig;
use crate::error::Error;

/// A connected byte stream: TCP, or TLS over TCP.
pub(crate) trait Transport: AsyncRead + AsyncWrite + Send + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> Transport for T {}

/// The transport of one connection (a new one after each recovery).
pub(crate) type BoxTransport = Box<dyn Transport>;

/// Connects TCP (with `TCP_NODELAY`) to `host:port`, trying each address the name
/// resolves to in turn, then TLS if configured.
pub(crate) async fn open_transport(config: &ConnectionConfig, host: &str, port: u16) -> Result<BoxTransport, Error> {
    let tcp = connect_tcp(host, port).await?;
    tcp.set_nodelay(true)?;
    #[cfg(feature = "tls")]
    if let Some(tls) = &config.tls {
        tracing::debug!(host, "TLS handshake");
        let stream = tls.connect(host, tcp).await?;
        let (_, session) = stream.get_ref();
        tracing::debug!(
            host,
            version = ?session.protocol_version(),
            cipher_suite = ?session.negotiated_cipher_suite().map(|s| s.suite()),
            "TLS established"
        );
        return Ok(Box::new(stream));
    }
    #[cfg(not(feature = "tls"))]
    let _ = config;
    Ok(Box::new(tcp))
}

/// What `TcpStream::connect` does, with an event for each address tried: the first
/// address that accepts wins; with none, the last error. The error names the address
/// (`127.0.0.1:5999: Connection refused`), keeping its `io::ErrorKind`.
async fn connect_tcp(host: &str, port: u16) -> Result<TcpStream, Error> {
    use std::io;
    tracing::debug!(host, port, "resolving");
    let named = |what: String, e: io::Error| io::Error::new(e.kind(), format!("{what}: {e}"));
    let addresses = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| named(format!("cannot resolve {host}:{port}"), e))?;
    let mut last = None;
    for address in addresses {
        tracing::debug!(%address, "TCP connect attempt");
        match TcpStream::connect(address).await {
            Ok(tcp) => {
                tracing::debug!(%address, local = ?tcp.local_addr().ok(), "TCP connected");
                return Ok(tcp);
            }
            Err(e) => {
                tracing::debug!(%address, error = %e, "TCP connect failed");
                let what = if address.ip().to_string() == host {
                    format!("cannot connect to {address}")
                } else {
                    format!("cannot connect to {address} ({host}:{port})")
                };
                last = Some(named(what, e));
            }
        }
    }
    Err(last
        .unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{host}:{port} resolves to no address")))
        .into())
}
