//! The no-loss scenario: publish persistent messages with confirms to a durable classic
//! queue and a quorum queue on the private node while the connection is cut every ~2 s
//! (through the proxy), the broker application is restarted once and a connection is
//! closed from the broker; then consume everything with manual acks while the cuts go
//! on. Every message whose publish was acked must be consumed at least once: lost = 0.
//! Unknown outcomes and duplicates are counted and printed.
//!
//! `WARREN_FAULT_MESSAGES` (default 100000) sets the number of messages per queue.
//! The classic queue's publisher retries unknown outcomes itself; the quorum queue's
//! publisher uses the client's opt-in republish of unconfirmed messages.

mod fault_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fault_support::node;
use fault_support::proxy::Proxy;
use fault_support::{confirm_channel_through_faults, consumer_through_faults, retrying, unique};
use tokio::sync::mpsc;
use warren::Error;
use warren::client::{
    Confirmed, Connection, ConnectionConfig, Metrics, PublishOptions, QueueDeclareOptions, QueueDeleteOptions,
    RecoveryConfig,
};
use warren::wire::{BasicProperties, FieldTable, FieldValue, ShortStr};

fn messages_per_queue() -> usize {
    std::env::var("WARREN_FAULT_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

/// Outcome of each message id, as the publisher saw it.
const PENDING: u8 = 0;
const ACKED: u8 = 1;

#[derive(Default, Debug)]
struct PublishStats {
    attempts: AtomicU64,
    acked: AtomicU64,
    nacked: AtomicU64,
    unknown: AtomicU64,
    refused: AtomicU64,
    unknown_kinds: std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
}

fn config(proxy: &Proxy, name: &str, republish: bool) -> ConnectionConfig {
    let mut c = ConnectionConfig::from_uri(&proxy.uri("heartbeat=2"))
        .unwrap()
        .with_connection_name(name);
    c.recovery = RecoveryConfig {
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_secs(1),
        attempt_timeout: Duration::from_secs(5),
        republish_unconfirmed: republish,
        publish_wait: Some(Duration::from_secs(60)),
        ..RecoveryConfig::default()
    };
    c.publish_window = 2048;
    c.rpc_timeout = Some(Duration::from_secs(30));
    c
}

/// Connects through the proxy while the cuts go on: a first connect is not retried by
/// the library.
async fn connect_through_faults(proxy: &Proxy, name: &str, republish: bool) -> Connection {
    retrying("connect", || Connection::connect_with(config(proxy, name, republish))).await
}

fn props(id: usize) -> BasicProperties {
    BasicProperties {
        delivery_mode: Some(2),
        message_id: Some(ShortStr::try_from(format!("m{id}")).unwrap()),
        ..Default::default()
    }
}

fn id_of(body: &[u8]) -> usize {
    let mut b = [0u8; 8];
    b.copy_from_slice(&body[..8]);
    u64::from_be_bytes(b) as usize
}

/// Publishes ids `0..n` to `queue` until every one is acked; returns the outcome table.
async fn publish_all(conn: Connection, queue: String, n: usize, stats: Arc<PublishStats>) -> Vec<u8> {
    let ch = confirm_channel_through_faults(&conn).await;
    let mut outcome = vec![PENDING; n];
    let mut todo: Vec<usize> = (0..n).collect();
    let body_pad = Bytes::from(vec![0x42u8; 120]);
    let mut round = 0;
    while !todo.is_empty() {
        round += 1;
        assert!(round < 50, "publishing did not converge: {} ids left", todo.len());
        let (tx, mut rx) = mpsc::channel::<(usize, warren::client::Confirmation)>(4096);
        let stats2 = stats.clone();
        let resolver = tokio::spawn(async move {
            let mut retry = Vec::new();
            let mut acked = Vec::new();
            while let Some((id, confirmation)) = rx.recv().await {
                match tokio::time::timeout(Duration::from_secs(120), confirmation).await {
                    Ok(Ok(Confirmed::Ack)) => {
                        stats2.acked.fetch_add(1, Ordering::Relaxed);
                        acked.push(id);
                    }
                    Ok(Ok(Confirmed::Nack)) => {
                        stats2.nacked.fetch_add(1, Ordering::Relaxed);
                        retry.push(id);
                    }
                    Ok(Ok(other)) => panic!("unexpected confirm {other:?}"),
                    Ok(Err(e)) => {
                        stats2.unknown.fetch_add(1, Ordering::Relaxed);
                        let kind = format!("{e}").chars().take(60).collect::<String>();
                        *stats2.unknown_kinds.lock().unwrap().entry(kind).or_insert(0) += 1;
                        retry.push(id);
                    }
                    Err(_) => panic!("a confirm took more than 120 s"),
                }
            }
            (acked, retry)
        });
        let mut refused = Vec::new();
        for &id in &todo {
            let mut body = Vec::with_capacity(128);
            body.extend_from_slice(&(id as u64).to_be_bytes());
            body.extend_from_slice(&body_pad);
            stats.attempts.fetch_add(1, Ordering::Relaxed);
            match ch
                .basic_publish("", &queue, PublishOptions::default(), props(id), body)
                .await
            {
                Ok(c) => tx.send((id, c)).await.unwrap(),
                Err(e) => {
                    stats.refused.fetch_add(1, Ordering::Relaxed);
                    if !e.is_recoverable() && !matches!(e, Error::NotConnected | Error::Timeout { .. }) {
                        panic!("publish failed for good: {e}");
                    }
                    refused.push(id);
                }
            }
        }
        drop(tx);
        let (acked, mut retry) = resolver.await.unwrap();
        for id in acked {
            outcome[id] = ACKED;
        }
        retry.extend(refused);
        retry.sort_unstable();
        retry.dedup();
        retry.retain(|&id| outcome[id] != ACKED);
        todo = retry;
    }
    outcome
}

/// Consumes `queue` with manual acks until every acked id is seen, then drains briefly.
async fn consume_all(conn: Connection, queue: String, outcome: &[u8]) -> (Vec<u32>, u64) {
    let (_ch, mut consumer) = consumer_through_faults(&conn, &queue, 1000).await;
    let mut seen = vec![0u32; outcome.len()];
    let mut missing = outcome.iter().filter(|&&o| o == ACKED).count();
    let mut stale = 0u64;
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let wait = if missing == 0 {
            Duration::from_secs(2)
        } else {
            Duration::from_secs(30)
        };
        let next = match tokio::time::timeout(wait, consumer.next()).await {
            Ok(n) => n,
            Err(_) if missing == 0 => break,
            Err(_) => panic!("no delivery for 30 s with {missing} acked messages not yet consumed"),
        };
        let d = match next {
            Some(Ok(d)) => d,
            Some(Err(e)) => panic!("the consumer ended: {e}"),
            None => panic!("the consumer stream ended"),
        };
        let id = id_of(&d.body);
        if seen[id] == 0 && outcome[id] == ACKED {
            missing -= 1;
        }
        seen[id] += 1;
        match d.ack().await {
            Ok(()) => {}
            // The connection was lost between the delivery and its ack: the broker
            // redelivers the message (counted as a duplicate when it comes again).
            Err(Error::StaleDelivery { .. }) => stale += 1,
            Err(e) => panic!("ack failed with something other than a stale delivery: {e:?}"),
        }
        if Instant::now() > deadline {
            break;
        }
    }
    (seen, stale)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_confirmed_message_is_lost_under_faults() {
    node::ensure_started();
    let _node = node::exclusive().await;
    node::ensure_app_running().await;
    let started = Instant::now();
    let per_queue = messages_per_queue();
    let classic = unique("scenario.classic");
    let quorum = unique("scenario.quorum");
    let proxy = Arc::new(Proxy::start(node::addr()).await.unwrap());

    // Declare the queues on a direct connection (no faults).
    let admin = Connection::connect_with(
        ConnectionConfig::from_uri(&format!("{}/%2f", node::ensure_started()))
            .unwrap()
            .with_connection_name("warren-fault-admin"),
    )
    .await
    .unwrap();
    let ach = admin.open_channel().await.unwrap();
    ach.queue_declare(&classic, QueueDeclareOptions::durable(), FieldTable::new())
        .await
        .unwrap();
    let mut qargs = FieldTable::new();
    qargs.insert(
        ShortStr::from_static("x-queue-type"),
        FieldValue::LongStr(Bytes::from_static(b"quorum")),
    );
    ach.queue_declare(&quorum, QueueDeclareOptions::durable(), qargs)
        .await
        .unwrap();
    admin.close().await.unwrap();

    // Faults while publishing: a cut, a close from the broker, a restart of the broker
    // application, then a cut every ~2 s until the end of the consume phase.
    let faulting = Arc::new(AtomicBool::new(true));
    let cuts = Arc::new(AtomicU64::new(0));
    let fault_task = {
        let proxy = proxy.clone();
        let faulting = faulting.clone();
        let cuts = cuts.clone();
        tokio::spawn(async move {
            let cut = |proxy: &Proxy| {
                let k = proxy.cut_all();
                cuts.fetch_add(1, Ordering::Relaxed);
                eprintln!("[faults] cut {k} connections");
            };
            tokio::time::sleep(Duration::from_millis(800)).await;
            cut(&proxy);
            tokio::time::sleep(Duration::from_millis(1000)).await;
            let k = node::close_named("warren-fault-pub-quorum", "fault test").await;
            eprintln!("[faults] close_connection from the broker: {k}");
            tokio::time::sleep(Duration::from_millis(1000)).await;
            eprintln!("[faults] restarting the broker application");
            node::restart_app(Duration::from_millis(300)).await;
            let mut tick = 0u64;
            while faulting.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(1700 + (tick % 5) * 150)).await;
                tick += 1;
                if faulting.load(Ordering::Relaxed) {
                    cut(&proxy);
                }
            }
        })
    };

    let pub_classic = connect_through_faults(&proxy, "warren-fault-pub-classic", false).await;
    let pub_quorum = connect_through_faults(&proxy, "warren-fault-pub-quorum", true).await;
    let stats_c = Arc::new(PublishStats::default());
    let stats_q = Arc::new(PublishStats::default());
    let (out_c, out_q) = tokio::join!(
        tokio::spawn(publish_all(
            pub_classic.clone(),
            classic.clone(),
            per_queue,
            stats_c.clone()
        )),
        tokio::spawn(publish_all(
            pub_quorum.clone(),
            quorum.clone(),
            per_queue,
            stats_q.clone()
        )),
    );
    let (out_c, out_q) = (out_c.unwrap(), out_q.unwrap());
    let publish_time = started.elapsed();
    let m_pub_c = pub_classic.metrics();
    let m_pub_q = pub_quorum.metrics();
    let _ = pub_classic.close().await;
    let _ = pub_quorum.close().await;

    // Consume while the cuts go on (the broker restart happened in the publish phase).
    let con = connect_through_faults(&proxy, "warren-fault-consumer", false).await;
    let ((seen_c, stale_c), (seen_q, stale_q)) = tokio::join!(
        consume_all(con.clone(), classic.clone(), &out_c),
        consume_all(con.clone(), quorum.clone(), &out_q)
    );
    faulting.store(false, Ordering::Relaxed);
    // A fault that failed (a panic in the task) means the run was not the one described.
    fault_task.await.expect("the fault task failed");
    let m_con = con.metrics();
    let _ = con.close().await;

    let report = |name: &str, stats: &PublishStats, outcome: &[u8], seen: &[u32], stale: u64, m: &Metrics| {
        let acked = outcome.iter().filter(|&&o| o == ACKED).count();
        let lost = outcome
            .iter()
            .zip(seen)
            .filter(|(o, s)| **o == ACKED && **s == 0)
            .count();
        let consumed: u64 = seen.iter().map(|&s| u64::from(s)).sum();
        let unique = seen.iter().filter(|&&s| s > 0).count();
        let duplicates = consumed - unique as u64;
        eprintln!(
            "SCENARIO {name}: published(attempts)={} acked={acked} nacked={} unknown={} refused={} republished={} \
             consumed={consumed} unique={unique} duplicates={duplicates} stale_acks={stale} lost={lost} recoveries(pub)={}",
            stats.attempts.load(Ordering::Relaxed),
            stats.nacked.load(Ordering::Relaxed),
            stats.unknown.load(Ordering::Relaxed),
            stats.refused.load(Ordering::Relaxed),
            m.republished,
            m.recoveries,
        );
        eprintln!(
            "SCENARIO {name}: unknown outcomes by error: {:?}",
            stats.unknown_kinds.lock().unwrap()
        );
        lost
    };
    let lost_c = report("classic", &stats_c, &out_c, &seen_c, stale_c, &m_pub_c);
    let lost_q = report("quorum ", &stats_q, &out_q, &seen_q, stale_q, &m_pub_q);
    eprintln!(
        "SCENARIO consumer: delivered={} redelivered={} acked={} stale={} recoveries={}; proxy cuts={}; publish phase {:.1} s, total {:.1} s",
        m_con.delivered,
        m_con.redelivered,
        m_con.acked,
        m_con.stale,
        m_con.recoveries,
        cuts.load(Ordering::Relaxed),
        publish_time.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    // Clean up on a direct connection.
    if let Ok(admin) = Connection::connect_with(
        ConnectionConfig::from_uri(&format!("{}/%2f", node::ensure_started()))
            .unwrap()
            .with_connection_name("warren-fault-admin"),
    )
    .await
    {
        if let Ok(ch) = admin.open_channel().await {
            let _ = ch.queue_delete(&classic, QueueDeleteOptions::default()).await;
            let _ = ch.queue_delete(&quorum, QueueDeleteOptions::default()).await;
        }
        let _ = admin.close().await;
    }
    assert_eq!(
        out_c.iter().filter(|&&o| o == ACKED).count(),
        per_queue,
        "every classic message acked in the end"
    );
    assert_eq!(
        out_q.iter().filter(|&&o| o == ACKED).count(),
        per_queue,
        "every quorum message acked in the end"
    );
    assert_eq!((lost_c, lost_q), (0, 0), "confirmed messages lost");
    assert!(
        m_pub_c.recoveries > 0 && m_pub_q.recoveries > 0,
        "the faults reached both publishers ({} and {} recoveries)",
        m_pub_c.recoveries,
        m_pub_q.recoveries
    );
}
