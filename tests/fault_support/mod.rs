//! Fault-injection support for `tests/fault_*.rs`:
//! - [`proxy`]: a TCP proxy between client and broker that cuts, blackholes, delays and
//!   trickles connections;
//! - [`node`]: the private broker node the tests may stop, restart, kill and memory-alarm
//!   (`scripts/fault-node.sh`), and `rabbitmqctl close_connection` by connection name;
//! - [`fake_broker`]: a scripted hostile peer speaking raw frames.
//!
//! Every wait here is bounded, so a misbehaving client fails a test instead of hanging it.

#![allow(dead_code)]

#[path = "../common/queues.rs"]
pub mod queues;

pub mod fake_broker;
pub mod node;
pub mod node_lock;
pub mod proxy;

use std::future::Future;
use std::time::Duration;

/// Runs `fut` with a time limit, panicking with `what` when it is exceeded.
pub async fn within<T>(limit: Duration, what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out after {limit:?}: {what}"))
}

/// Runs `attempt` until it succeeds, again after each error that recovery heals
/// (`Error::is_recoverable`), for at most 60 s. A call in flight when the connection is
/// lost fails with such an error (its effect unknown) while the channel is restored, so
/// an application that sets up channels and consumers while faults go on does this.
pub async fn retrying<T, F, Fut>(what: &str, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, warren::Error>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match attempt().await {
            Ok(v) => return v,
            Err(e) if e.is_recoverable() && tokio::time::Instant::now() < deadline => {
                eprintln!("[retry] {what}: {e}; again");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("{what}: {e:?}"),
        }
    }
}

/// How long a dead link may take to be noticed with heartbeat `interval`: two intervals,
/// plus room for a loaded machine (TCP alone would take minutes).
pub fn detection_bound(interval: Duration) -> Duration {
    2 * interval + Duration::from_secs(3)
}

/// A channel in confirm mode on `conn`, made through the faults ([`retrying`]).
pub async fn confirm_channel_through_faults(conn: &warren::client::Connection) -> warren::client::Channel {
    retrying("publisher channel", || async move {
        let ch = conn.open_channel().await?;
        ch.confirm_select().await?;
        Ok(ch)
    })
    .await
}

/// A manual-ack consumer of `queue` with `prefetch`, and its channel, made through the
/// faults ([`retrying`]).
pub async fn consumer_through_faults(
    conn: &warren::client::Connection,
    queue: &str,
    prefetch: u16,
) -> (warren::client::Channel, warren::client::Consumer) {
    retrying("consumer setup", || async move {
        let ch = conn.open_channel().await?;
        ch.basic_qos(prefetch, false).await?;
        let consumer = ch
            .basic_consume(queue, "", Default::default(), warren::wire::FieldTable::new())
            .await?;
        Ok((ch, consumer))
    })
    .await
}

/// A name unique to this process and call, for queues, exchanges and connection names.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("warren-fault.{prefix}.{}.{n}.{nanos:x}", std::process::id())
}
