//! Helpers shared by the broker integration tests (`tests/client_*.rs`).
//!
//! Broker-dependent tests never skip: when the broker (or the TLS node) is not there
//! they fail with a message saying how to start it (`scripts/test.sh`).

#![allow(dead_code)]

pub mod python;
pub mod queues;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use warren::client::{Channel, Connection, ConnectionConfig, QueueDeleteOptions};

/// The broker URL: `AMQP_URL`, or the local default node.
pub fn amqp_url() -> String {
    std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

/// Connects to the test broker, failing loudly if it is not reachable.
pub async fn connect() -> Connection {
    connect_config(config()).await
}

/// The configuration for [`amqp_url`], named after the calling test binary.
pub fn config() -> ConnectionConfig {
    let url = amqp_url();
    ConnectionConfig::from_uri(&url)
        .unwrap_or_else(|e| panic!("AMQP_URL={url} is not a valid URI: {e}"))
        .with_connection_name(format!("warren-test-{}", std::process::id()))
}

/// Connects with `config`, failing loudly with a hint if the broker is not reachable.
pub async fn connect_config(config: ConnectionConfig) -> Connection {
    let target = format!("{}:{}", config.host, config.port);
    match tokio::time::timeout(Duration::from_secs(20), Connection::connect_with(config)).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => panic!(
            "cannot connect to the RabbitMQ broker at {target}: {e}\n\
             These tests need a running broker: run scripts/test.sh (or scripts/broker.sh), or set AMQP_URL."
        ),
        Err(_) => {
            panic!("connecting to {target} took more than 20 s; is the broker healthy? (scripts/broker.sh status)")
        }
    }
}

/// A connection and a channel on it.
pub async fn channel() -> (Connection, Channel) {
    let conn = connect().await;
    let ch = conn.open_channel().await.expect("open channel");
    (conn, ch)
}

/// A queue or exchange name unique to this process and call.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("warren-test.{prefix}.{}.{n}.{nanos:x}", std::process::id())
}

/// Deletes a queue on a fresh channel (best effort, for clean-up).
pub async fn delete_queue(conn: &Connection, queue: &str) {
    if let Ok(ch) = conn.open_channel().await {
        let _ = ch.queue_delete(queue, QueueDeleteOptions::default()).await;
        let _ = ch.close().await;
    }
}

/// Runs `fut` with a time limit, panicking with `what` when it is exceeded.
pub async fn within<T>(secs: u64, what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), fut)
        .await
        .unwrap_or_else(|_| panic!("timed out after {secs} s: {what}"))
}

/// The consumer's next delivery, within 10 s; panics if the stream ends or errs.
pub async fn next(consumer: &mut warren::client::Consumer) -> warren::client::Delivery {
    within(10, "a delivery", consumer.next())
        .await
        .expect("stream ended")
        .expect("delivery error")
}

/// The TLS node's certificate directory: `WARREN_TLS_DIR`, else the default that
/// `scripts/tls-node.sh` uses if it exists. Fails loudly otherwise.
pub fn tls_dir() -> PathBuf {
    let dir = match std::env::var_os("WARREN_TLS_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from("/tmp/warren-tls-node/certs"),
    };
    if !dir.join("ca.pem").is_file() {
        panic!(
            "TLS test certificates not found in {} (WARREN_TLS_DIR {}).\n\
             The TLS tests need the private TLS node: run scripts/test.sh, or scripts/tls-node.sh and export \
             WARREN_TLS_DIR=<the directory it prints>.",
            dir.display(),
            if std::env::var_os("WARREN_TLS_DIR").is_some() {
                "is set"
            } else {
                "is unset"
            }
        );
    }
    dir
}

/// The TLS node's AMQPS port.
pub const TLS_PORT: u16 = 5681;

/// Runs `rabbitmqctl ARGS` against the default node; its stdout, or a panic with stderr.
pub fn rabbitmqctl(args: &[&str]) -> String {
    let out = std::process::Command::new("rabbitmqctl")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run rabbitmqctl {args:?}: {e} (is RabbitMQ installed? scripts/broker.sh)"));
    assert!(
        out.status.success(),
        "rabbitmqctl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
