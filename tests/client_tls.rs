//! TLS against the private TLS node (`scripts/tls-node.sh`, port 5681, certificates in
//! `WARREN_TLS_DIR`): PLAIN over TLS with a custom CA, SASL EXTERNAL with a client
//! certificate, and verification failures.

mod common;

use common::*;
use warren::Error;
use warren::client::*;
use warren::tls::TlsConfig;
use warren::wire::{BasicProperties, FieldTable};

fn tls_port() -> u16 {
    std::env::var("WARREN_TLS_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(TLS_PORT)
}

fn cert(name: &str) -> String {
    tls_dir().join(name).display().to_string()
}

async fn roundtrip(conn: &Connection) {
    let ch = conn.open_channel().await.unwrap();
    ch.confirm_select().await.unwrap();
    let q = ch
        .queue_declare("", QueueDeclareOptions::exclusive(), FieldTable::new())
        .await
        .unwrap();
    let c = ch
        .basic_publish(
            "",
            &q.name,
            PublishOptions { mandatory: true },
            BasicProperties::default(),
            "over tls",
        )
        .await
        .unwrap();
    assert_eq!(c.await.unwrap(), Confirmed::Ack);
    let m = ch.basic_get(&q.name, true).await.unwrap().expect("message");
    assert_eq!(&m.delivery.body[..], b"over tls");
    // A large body goes to the socket by reference, in body frames between encoded ones:
    // through TLS too.
    let large: Vec<u8> = (0..400_000u32).map(|i| (i % 251) as u8).collect();
    let c = ch
        .basic_publish(
            "",
            &q.name,
            PublishOptions::default(),
            BasicProperties::default(),
            large.clone(),
        )
        .await
        .unwrap();
    assert_eq!(c.await.unwrap(), Confirmed::Ack);
    let m = ch.basic_get(&q.name, true).await.unwrap().expect("message");
    assert!(m.delivery.body[..] == large[..], "the large body, whole");
}

async fn connect_tls(uri: &str) -> Result<Connection, Error> {
    within(30, "TLS connect", Connection::connect(uri)).await
}

#[tokio::test]
async fn plain_over_tls_with_custom_ca() {
    let uri = format!(
        "amqps://guest:guest@localhost:{}/%2f?cacertfile={}",
        tls_port(),
        cert("ca.pem")
    );
    let conn = connect_tls(&uri).await.unwrap_or_else(|e| {
        panic!(
            "TLS node not usable on localhost:{} ({e}): run scripts/test.sh or scripts/tls-node.sh",
            tls_port()
        )
    });
    roundtrip(&conn).await;
    conn.close().await.unwrap();
}

#[tokio::test]
async fn tls_to_an_ip_address_and_with_sni_override() {
    // The server certificate has IP:127.0.0.1 in its subjectAltName.
    let uri = format!(
        "amqps://guest:guest@127.0.0.1:{}/%2f?cacertfile={}",
        tls_port(),
        cert("ca.pem")
    );
    let conn = connect_tls(&uri).await.unwrap();
    conn.close().await.unwrap();
    // Connect by IP, verify as `localhost`.
    let uri = format!(
        "amqps://guest:guest@127.0.0.1:{}/%2f?cacertfile={}&server_name_indication=localhost",
        tls_port(),
        cert("ca.pem")
    );
    let conn = connect_tls(&uri).await.unwrap();
    conn.close().await.unwrap();
}

#[tokio::test]
async fn external_auth_with_client_certificate() {
    for key in ["client.key", "client.pk8.pem"] {
        let uri = format!(
            "amqps://localhost:{}/%2f?auth_mechanism=external&cacertfile={}&certfile={}&keyfile={}",
            tls_port(),
            cert("ca.pem"),
            cert("client.pem"),
            cert(key)
        );
        let conn = connect_tls(&uri)
            .await
            .unwrap_or_else(|e| panic!("EXTERNAL with {key}: {e}"));
        roundtrip(&conn).await;
        conn.close().await.unwrap();
    }
    // The same through the builder API.
    let dir = tls_dir();
    let tls = TlsConfig::with_ca_file(dir.join("ca.pem"))
        .unwrap()
        .client_cert_files(dir.join("client.pem"), dir.join("client.pk8.pem"))
        .unwrap();
    let config = ConnectionConfig {
        host: "localhost".into(),
        port: tls_port(),
        ..Default::default()
    }
    .with_tls(tls)
    .with_sasl(Sasl::External)
    .with_connection_name("warren-tls-external");
    let conn = within(30, "connect", Connection::connect_with(config)).await.unwrap();
    roundtrip(&conn).await;
    conn.close().await.unwrap();
}

#[tokio::test]
async fn untrusted_ca_fails_verification() {
    let uri = format!(
        "amqps://guest:guest@localhost:{}/%2f?cacertfile={}",
        tls_port(),
        cert("untrusted-ca.pem")
    );
    match connect_tls(&uri).await {
        Err(Error::Tls(msg)) => assert!(msg.to_lowercase().contains("certificate"), "{msg}"),
        other => panic!("expected a TLS verification error, got {other:?}"),
    }
    // Default roots (web PKI) do not trust the test CA either.
    let uri = format!("amqps://guest:guest@localhost:{}/%2f", tls_port());
    assert!(matches!(connect_tls(&uri).await, Err(Error::Tls(_))));
}

#[tokio::test]
async fn wrong_server_name_fails_verification() {
    let uri = format!(
        "amqps://guest:guest@127.0.0.1:{}/%2f?cacertfile={}&server_name_indication=not-the-server.example",
        tls_port(),
        cert("ca.pem")
    );
    match connect_tls(&uri).await {
        Err(Error::Tls(msg)) => assert!(msg.contains("not-the-server.example"), "{msg}"),
        other => panic!("expected a TLS name mismatch, got {other:?}"),
    }
}

#[tokio::test]
async fn client_certificate_from_an_untrusted_ca_is_refused() {
    let dir = tls_dir();
    if !dir.join("untrusted-client.pem").is_file() {
        panic!(
            "{} has no untrusted-client.pem: regenerate with scripts/tls-node.sh certs",
            dir.display()
        );
    }
    let uri = format!(
        "amqps://localhost:{}/%2f?auth_mechanism=external&cacertfile={}&certfile={}&keyfile={}",
        tls_port(),
        cert("ca.pem"),
        cert("untrusted-client.pem"),
        cert("untrusted-client.key")
    );
    let err = connect_tls(&uri).await.unwrap_err();
    // The server aborts the handshake (TLS alert) or closes right after it.
    assert!(
        matches!(
            err,
            Error::Tls(_) | Error::ConnectionLost { .. } | Error::Authentication { .. } | Error::Io(_)
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn tls_configuration_errors_are_typed() {
    assert!(matches!(TlsConfig::with_ca_pem(b"not a pem"), Err(Error::Tls(_))));
    assert!(matches!(
        TlsConfig::with_ca_file("/nonexistent/ca.pem"),
        Err(Error::Tls(_))
    ));
    let ca = std::fs::read(tls_dir().join("ca.pem")).unwrap();
    let cfg = TlsConfig::with_ca_pem(&ca).unwrap();
    assert!(matches!(cfg.client_cert_pem(&ca, b"no key here"), Err(Error::Tls(_))));
    // EXTERNAL without a client certificate is refused before connecting.
    let uri = format!(
        "amqps://localhost:{}/%2f?auth_mechanism=external&cacertfile={}",
        tls_port(),
        cert("ca.pem")
    );
    assert!(matches!(
        Connection::connect(&uri).await,
        Err(Error::InvalidArgument(_))
    ));
}
