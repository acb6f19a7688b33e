//! TLS for `amqps://` connections: rustls with the ring provider, through tokio-rustls.
//!
//! The server certificate is always verified, against the web PKI roots (`webpki-roots`)
//! by default or against CA certificates you give in PEM. The name checked, and sent as
//! SNI, is the host being connected to unless [`TlsConfig::server_name`] overrides it.
//! A client certificate (PEM chain plus a PKCS#8, PKCS#1 or SEC1 key) can be presented,
//! which is what SASL `EXTERNAL` authenticates with.
//!
//! There is deliberately no way to turn verification off. For a full custom setup, build
//! a `rustls::ClientConfig` yourself and pass it to [`TlsConfig::from_rustls`].

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::Error;

fn tls_err(msg: impl Into<String>) -> Error {
    Error::Tls(msg.into())
}

/// How to set up TLS: which CAs to trust, an optional client certificate, the server name.
#[derive(Clone)]
pub struct TlsConfig {
    inner: Inner,
    server_name: Option<String>,
}

#[derive(Clone)]
enum Inner {
    Parts {
        /// `None`: the web PKI roots.
        roots: Option<Vec<CertificateDer<'static>>>,
        client: Option<(Vec<CertificateDer<'static>>, Arc<PrivateKeyDer<'static>>)>,
    },
    Rustls(Arc<ClientConfig>),
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("TlsConfig");
        match &self.inner {
            Inner::Parts { roots, client } => {
                match roots {
                    None => d.field("roots", &"webpki-roots"),
                    Some(r) => d.field("roots", &format_args!("{} custom CA certificate(s)", r.len())),
                };
                // Never print key material.
                d.field("client_cert", &client.as_ref().map(|(chain, _)| chain.len()));
            }
            Inner::Rustls(_) => {
                d.field("rustls", &"custom ClientConfig");
            }
        }
        d.field("server_name", &self.server_name).finish()
    }
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig::new()
    }
}

impl TlsConfig {
    /// Trusts the web PKI roots from `webpki-roots`, without a client certificate.
    pub fn new() -> Self {
        TlsConfig {
            inner: Inner::Parts {
                roots: None,
                client: None,
            },
            server_name: None,
        }
    }

    /// Trusts only the CA certificates in `pem` (one or more `CERTIFICATE` blocks).
    pub fn with_ca_pem(pem: &[u8]) -> Result<Self, Error> {
        let certs = parse_certs(pem, "CA PEM")?;
        Ok(TlsConfig {
            inner: Inner::Parts {
                roots: Some(certs),
                client: None,
            },
            server_name: None,
        })
    }

    /// Trusts only the CA certificates in the PEM file at `path`.
    pub fn with_ca_file(path: impl AsRef<Path>) -> Result<Self, Error> {
        TlsConfig::with_ca_pem(&read(path.as_ref(), "CA certificate")?)
    }

    /// Uses a `rustls::ClientConfig` built by the caller, as it is.
    pub fn from_rustls(config: Arc<ClientConfig>) -> Self {
        TlsConfig {
            inner: Inner::Rustls(config),
            server_name: None,
        }
    }

    /// Presents a client certificate: `cert_pem` holds the chain (leaf first), `key_pem`
    /// the private key (PKCS#8, PKCS#1 or SEC1). Required for SASL `EXTERNAL`.
    pub fn client_cert_pem(mut self, cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, Error> {
        let chain = parse_certs(cert_pem, "client certificate PEM")?;
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| tls_err(format!("no usable private key in the key PEM: {e}")))?;
        match &mut self.inner {
            Inner::Parts { client, .. } => *client = Some((chain, Arc::new(key))),
            Inner::Rustls(_) => {
                return Err(tls_err("add the client certificate to the rustls ClientConfig itself"));
            }
        }
        Ok(self)
    }

    /// Like [`client_cert_pem`](Self::client_cert_pem), reading the two PEM files.
    pub fn client_cert_files(self, cert_path: impl AsRef<Path>, key_path: impl AsRef<Path>) -> Result<Self, Error> {
        let cert = read(cert_path.as_ref(), "client certificate")?;
        let key = read(key_path.as_ref(), "client key")?;
        self.client_cert_pem(&cert, &key)
    }

    /// Verifies the server certificate against `name` (and sends it as SNI) instead of
    /// the host connected to.
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// True when a client certificate is configured (or a custom rustls config is used,
    /// which may hold one).
    pub fn has_client_cert(&self) -> bool {
        match &self.inner {
            Inner::Parts { client, .. } => client.is_some(),
            Inner::Rustls(c) => c.client_auth_cert_resolver.has_certs(),
        }
    }

    fn build(&self) -> Result<Arc<ClientConfig>, Error> {
        let (roots, client) = match &self.inner {
            Inner::Rustls(c) => return Ok(c.clone()),
            Inner::Parts { roots, client } => (roots, client),
        };
        let mut store = RootCertStore::empty();
        match roots {
            None => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            Some(certs) => {
                for cert in certs {
                    store
                        .add(cert.clone())
                        .map_err(|e| tls_err(format!("unusable CA certificate: {e}")))?;
                }
            }
        }
        let builder = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_err(format!("TLS setup: {e}")))?
            .with_root_certificates(store);
        let config = match client {
            None => builder.with_no_client_auth(),
            Some((chain, key)) => builder
                .with_client_auth_cert(chain.clone(), key.clone_key())
                .map_err(|e| tls_err(format!("client certificate and key do not fit together: {e}")))?,
        };
        Ok(Arc::new(config))
    }

    /// Runs the TLS handshake over `tcp`, verifying the server as `host` (or the
    /// configured server name).
    pub(crate) async fn connect(&self, host: &str, tcp: TcpStream) -> Result<TlsStream<TcpStream>, Error> {
        let config = self.build()?;
        let name = self.server_name.as_deref().unwrap_or(host);
        let server_name = ServerName::try_from(name.to_owned())
            .map_err(|_| tls_err(format!("{name:?} is not a valid TLS server name")))?;
        TlsConnector::from(config)
            .connect(server_name, tcp)
            .await
            .map_err(|e| tls_err(format!("TLS handshake with {name} failed: {e}")))
    }
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| tls_err(format!("cannot read the {what} file {}: {e}", path.display())))
}

fn parse_certs(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_err(format!("malformed {what}: {e}")))?;
    if certs.is_empty() {
        return Err(tls_err(format!("no CERTIFICATE block in the {what}")));
    }
    Ok(certs)
}
