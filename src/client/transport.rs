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

/// Connects TCP (with `TCP_NODELAY`) to `host:port`, then TLS if configured.
pub(crate) async fn open_transport(config: &ConnectionConfig, host: &str, port: u16) -> Result<BoxTransport, Error> {
    let tcp = TcpStream::connect((host, port)).await?;
    tcp.set_nodelay(true)?;
    #[cfg(feature = "tls")]
    if let Some(tls) = &config.tls {
        let stream = tls.connect(host, tcp).await?;
        tracing::debug!("TLS established");
        return Ok(Box::new(stream));
    }
    #[cfg(not(feature = "tls"))]
    let _ = config;
    Ok(Box::new(tcp))
}
