//! Monitoring: serves a connection's [`Connection::metrics`] and the depth of the queue it
//! consumes from in Prometheus' text exposition format, over a plain tokio TCP listener
//! (no HTTP or metrics library).
//!
//! ```sh
//! cargo run --example prometheus                      # serves until Ctrl-C
//! curl -s http://127.0.0.1:9464/metrics
//! ```
//!
//! Environment: `AMQP_URL` (the local broker by default), `METRICS_ADDR` (default
//! `127.0.0.1:9464`; port 0 picks a free one), `SCRAPES` (serve that many scrapes, then
//! exit; the example test sets it). The first line printed is the address served.
//!
//! The example publishes 10 messages with confirms and consumes them with manual acks, so
//! that the counters move. Alert rules that go with these series are in docs/guide.md.

use std::fmt::Write as _;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use warren::client::{
    Channel, Connection, ConnectionConfig, ConnectionState, ConsumeOptions, Consumer, PublishOptions,
    QueueDeclareOptions,
};
use warren::wire::{BasicProperties, FieldTable};
use warren::{Error, field_table};

const QUEUE: &str = "warren.example.monitored";

/// One metric in the text format: `# HELP`, `# TYPE`, then the sample.
fn metric(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    let _ = writeln!(out, "{name} {value}");
}

/// The page Prometheus scrapes.
async fn render(conn: &Connection, probe: &Channel) -> String {
    let m = conn.metrics();
    let mut out = String::new();
    let counters: [(&str, &str, u64); 12] = [
        (
            "published",
            "Messages handed to the socket by basic_publish.",
            m.published,
        ),
        ("confirmed", "Publishes the broker acked.", m.confirmed),
        ("nacked", "Publishes the broker nacked.", m.nacked),
        ("returned", "Mandatory publishes returned as unroutable.", m.returned),
        (
            "unknown_outcome",
            "Publishes whose outcome is unknown (connection lost before the confirm).",
            m.unknown,
        ),
        (
            "republished",
            "Unconfirmed publishes sent again after a recovery.",
            m.republished,
        ),
        (
            "delivered",
            "Messages delivered to consumers and basic.get.",
            m.delivered,
        ),
        ("redelivered", "Deliveries flagged as redelivered.", m.redelivered),
        ("acks", "basic.ack frames sent (a multiple ack counts once).", m.acked),
        (
            "stale_settles",
            "Acks refused because the delivery came before a recovery.",
            m.stale,
        ),
        ("recoveries", "Successful recoveries.", m.recoveries),
        ("read_pauses", "Reads put off by read coalescing.", m.read_pauses),
    ];
    for (name, help, value) in counters {
        metric(&mut out, &format!("warren_{name}_total"), "counter", help, value);
    }
    metric(
        &mut out,
        "warren_blocked_seconds_total",
        "counter",
        "Time the broker blocked publishing (connection.blocked).",
        m.time_blocked.as_secs_f64(),
    );
    let gauges: [(&str, &str, u64); 3] = [
        (
            "delivery_buffer_bytes",
            "Bytes of deliveries buffered for consumers.",
            m.delivery_bytes,
        ),
        (
            "publish_buffer_bytes",
            "Bytes of publishes queued or kept for republish.",
            m.publish_bytes,
        ),
        (
            "unconfirmed_bytes",
            "Bytes of unconfirmed publishes kept for republish.",
            m.unconfirmed_bytes,
        ),
    ];
    for (name, help, value) in gauges {
        metric(&mut out, &format!("warren_{name}"), "gauge", help, value);
    }
    let state = conn.state().borrow().clone();
    metric(
        &mut out,
        "warren_connection_up",
        "gauge",
        "1 while the connection is open (connected, blocked or recovered).",
        u8::from(state.is_open()),
    );
    metric(
        &mut out,
        "warren_connection_blocked",
        "gauge",
        "1 while the broker blocks publishing.",
        u8::from(matches!(state, ConnectionState::Blocked { .. })),
    );
    // Consumer lag: what waits in the queue (a passive declare reads its counts).
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    if let Ok(q) = probe.queue_declare(QUEUE, passive, FieldTable::new()).await {
        let _ = writeln!(
            out,
            "# HELP warren_queue_messages_ready Messages ready in the queue (consumer lag)."
        );
        let _ = writeln!(out, "# TYPE warren_queue_messages_ready gauge");
        let _ = writeln!(
            out,
            "warren_queue_messages_ready{{queue=\"{QUEUE}\"}} {}",
            q.message_count
        );
        let _ = writeln!(out, "# HELP warren_queue_consumers Consumers of the queue.");
        let _ = writeln!(out, "# TYPE warren_queue_consumers gauge");
        let _ = writeln!(out, "warren_queue_consumers{{queue=\"{QUEUE}\"}} {}", q.consumer_count);
    }
    out
}

/// Answers one HTTP request: `GET /metrics` gets the page, anything else a 404.
async fn serve_one(mut socket: tokio::net::TcpStream, conn: &Connection, probe: &Channel) -> std::io::Result<()> {
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    // Read up to the end of the request head (a scrape has no body), at most 8 KiB.
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 8192 {
        let n = socket.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        request.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&request);
    let (status, body) = if head.starts_with("GET /metrics ") {
        ("200 OK", render(conn, probe).await)
    } else {
        ("404 Not Found", "try /metrics\n".to_owned())
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    socket.write_all(response.as_bytes()).await?;
    socket.shutdown().await
}

/// Some traffic, so that the counters move: 10 confirmed publishes, consumed and acked.
/// Returns the consumer, which stays (`warren_queue_consumers` shows it).
async fn traffic(conn: &Connection) -> Result<Consumer, Error> {
    let ch = conn.open_channel().await?;
    let durable = QueueDeclareOptions::durable();
    ch.queue_declare(QUEUE, durable, FieldTable::new()).await?;
    ch.queue_purge(QUEUE).await?;
    ch.confirm_select().await?;
    for n in 0..10 {
        let props = BasicProperties {
            delivery_mode: Some(2),
            headers: Some(field_table! { "n" => n }),
            ..Default::default()
        };
        let confirmed = ch
            .basic_publish("", QUEUE, PublishOptions::default(), props, "tick")
            .await?
            .await?;
        assert!(confirmed.is_ack(), "publish {n}: {confirmed:?}");
    }
    ch.basic_qos(5, false).await?;
    let mut consumer = ch
        .basic_consume(QUEUE, "", ConsumeOptions::default(), FieldTable::new())
        .await?;
    for _ in 0..10 {
        let d = tokio::time::timeout(Duration::from_secs(10), consumer.next())
            .await
            .map_err(|_| Error::Timeout { operation: "consume" })?
            .ok_or(Error::Closed)??;
        d.ack().await?;
    }
    Ok(consumer)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let url = std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let addr = std::env::var("METRICS_ADDR").unwrap_or_else(|_| "127.0.0.1:9464".into());
    let scrapes: Option<usize> = std::env::var("SCRAPES").ok().and_then(|s| s.parse().ok());

    let conn =
        Connection::connect_with(ConnectionConfig::from_uri(&url)?.with_connection_name("prometheus example")).await?;
    let _consumer = traffic(&conn).await?;
    // A channel of its own for the queue probe: a failed passive declare closes its channel.
    let mut probe = conn.open_channel().await?;

    let listener = TcpListener::bind(&addr).await?;
    println!("serving http://{}/metrics", listener.local_addr()?);
    let mut served = 0;
    while scrapes.is_none_or(|n| served < n) {
        let (socket, _) = listener.accept().await?;
        if !probe.is_open() {
            probe = conn.open_channel().await?;
        }
        if let Err(e) = serve_one(socket, &conn, &probe).await {
            eprintln!("scrape failed: {e}");
        }
        served += 1;
    }
    conn.close().await
}
