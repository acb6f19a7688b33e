//! Connecting over TLS: verify the broker against your own CA, and optionally present a
//! client certificate to log in with SASL EXTERNAL (the certificate's CN is the user).
//!
//! ```sh
//! scripts/tls-node.sh                                   # a local TLS node on 5681, certs in /tmp/warren-tls-node/certs
//! cargo run --example tls                               # PLAIN (guest) over TLS, trusting ca.pem
//! cargo run --example tls -- --external                 # EXTERNAL with client.pem / client.key
//! ```
//! `WARREN_TLS_DIR` and `WARREN_TLS_PORT` override the certificate directory and port.
//! Verification cannot be turned off; for a broker with a public certificate, leave out
//! the CA and the web PKI roots are used.

use std::path::PathBuf;

use warren::Error;
use warren::client::{Connection, ConnectionConfig, Sasl};
use warren::tls::TlsConfig;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let dir = PathBuf::from(std::env::var("WARREN_TLS_DIR").unwrap_or_else(|_| "/tmp/warren-tls-node/certs".into()));
    let port = std::env::var("WARREN_TLS_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(5681);
    let external = std::env::args().any(|a| a == "--external");

    let mut tls = TlsConfig::with_ca_file(dir.join("ca.pem"))?;
    let mut config = ConnectionConfig {
        host: "localhost".into(),
        port,
        ..Default::default()
    };
    if external {
        // PKCS#8, PKCS#1 and SEC1 keys are all accepted.
        tls = tls.client_cert_files(dir.join("client.pem"), dir.join("client.key"))?;
        config = config.with_sasl(Sasl::External);
    }
    let conn = Connection::connect_with(config.with_tls(tls).with_connection_name("tls example")).await?;
    let product = conn
        .server_properties()
        .get("version")
        .and_then(|v| v.as_str())
        .unwrap_or("?")
        .to_owned();
    println!(
        "connected over TLS to RabbitMQ {product} ({})",
        if external { "EXTERNAL" } else { "PLAIN" }
    );

    // The same with a URI: amqps://localhost:5681/%2f?cacertfile=...&certfile=...&keyfile=...&auth_mechanism=external
    let ch = conn.open_channel().await?;
    ch.basic_qos(1, false).await?;
    conn.close().await
}
