//! `warren perf`: a load test in the spirit of RabbitMQ's PerfTest that also proves
//! delivery. Producers publish numbered messages to a fresh queue, consumers read them
//! back, and the run ends with a count of what was lost or delivered twice.
//!
//! Every body starts with 16 bytes: the sequence number and the publish time (both u64
//! big-endian; the time in nanoseconds since the run started, one clock for the whole
//! process). Sequence numbers are handed out in blocks from one counter, so they are
//! unique across producers. Two bit sets make the checks exact:
//! - `sent`: numbers the broker confirmed (or, without confirms, that were published);
//! - `seen`: numbers consumed; a second delivery of one is a duplicate.
//!
//! After the producers finish, the run drains until every number of `sent` is in `seen`
//! (or `--drain-timeout` passes); `lost` is what is in `sent` and not in `seen`.
//!
//! Each producer and consumer has its own connection and channel, on a multi-thread
//! tokio runtime. Counters are per task (no shared cache line on the hot path); the
//! reporter sums them once a second and samples the process's resident memory.

mod args;
mod hist;
mod process;
mod report;
mod rss;
mod seqset;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use warren::client::{
    Channel, Confirmation, Confirmed, Connection, ConnectionConfig, ConsumeOptions, Consumer, PublishOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use warren::wire::{BasicProperties, FieldTable, ShortStr};

pub use args::USAGE;
use args::{AckMode, Options, Parsed};
use hist::{AtomicHist, Hist};
use report::{Summary, Tick};
use rss::RssSamples;
use seqset::SeqSet;

/// Sequence numbers a producer takes from the shared counter at a time.
const SEQ_BLOCK: u64 = 64;
/// Bytes of the header every body starts with.
const BODY_HEADER: usize = 16;

/// Runs `warren perf` with the arguments after `perf`; returns the exit code.
pub fn run(args: &[String]) -> i32 {
    let opts = match args::parse(args, std::env::var("AMQP_URL").ok()) {
        Ok(Parsed::Run(o)) => o,
        Ok(Parsed::Help) => {
            println!("{USAGE}");
            return 0;
        }
        Err(e) => {
            eprintln!("warren perf: {e}");
            return 2;
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("warren perf: cannot start the tokio runtime: {e}");
            return 3;
        }
    };
    let (summary, error) = rt.block_on(perf(&opts));
    let verdict = verdict(&opts, &summary, error.as_deref());
    let code = match (&error, &verdict) {
        (Some(_), _) => 3,
        (None, Some(_)) => 1,
        (None, None) => 0,
    };
    let verdict_text = match (&error, &verdict) {
        (Some(e), _) => format!("FAILED: {e}"),
        (None, Some(v)) => format!("FAILED: {v}"),
        (None, None) => "ok".into(),
    };
    let table = summary.table(&verdict_text);
    if opts.json {
        eprint!("{table}");
        println!("{}", summary.to_json(code == 0, error.as_deref()));
    } else {
        print!("{table}");
    }
    // Do not wait for connection tasks that are still closing.
    rt.shutdown_timeout(Duration::from_millis(200));
    code
}

/// Why the run failed its checks, if it did.
fn verdict(o: &Options, s: &Summary, error: Option<&str>) -> Option<String> {
    let mut why = Vec::new();
    if s.lost > 0 {
        why.push(format!("{} lost", s.lost));
    }
    if s.duplicates > 0 {
        why.push(format!("{} duplicates", s.duplicates));
    }
    if s.corrupt > 0 {
        why.push(format!("{} corrupt bodies", s.corrupt));
    }
    if s.unconfirmed > 0 {
        why.push(format!("{} publishes with unknown outcome", s.unconfirmed));
    }
    if !o.allow_nack && s.nacked > 0 {
        why.push(format!("{} nacked (--allow-nack to accept)", s.nacked));
    }
    if !o.allow_nack && s.returned > 0 {
        why.push(format!("{} returned (--allow-nack to accept)", s.returned));
    }
    if error.is_none() && s.published == 0 {
        why.push("nothing was published".into());
    }
    (!why.is_empty()).then(|| why.join(", "))
}

// ---------------------------------------------------------------------------------------
// Shared state.

/// What every task shares.
struct Run {
    start: Instant,
    /// Next free sequence number.
    next_seq: AtomicU64,
    /// Sequence numbers below this are published (`--count`); `u64::MAX` for `--duration`.
    limit: u64,
    /// Set when `--duration` is over: producers stop.
    stop_publishing: AtomicBool,
    /// Confirmed (or, without confirms, published) sequence numbers.
    sent: SeqSet,
    /// Consumed sequence numbers.
    seen: SeqSet,
    /// Resident bytes when the first producer finished, before any connection closed.
    rss_end: OnceLock<Option<u64>>,
}

impl Run {
    fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }
}

#[derive(Default)]
struct ProducerStats {
    published: AtomicU64,
    confirmed: AtomicU64,
    nacked: AtomicU64,
    returned: AtomicU64,
    unconfirmed: AtomicU64,
    /// `Run::now_ns` when the last publish was settled.
    done_ns: AtomicU64,
}

#[derive(Default)]
struct ConsumerStats {
    /// Distinct sequence numbers consumed.
    consumed: AtomicU64,
    duplicates: AtomicU64,
    corrupt: AtomicU64,
    acked: AtomicU64,
    /// `Run::now_ns` of the last delivery.
    last_ns: AtomicU64,
    /// Publish → consume latency, microseconds.
    latency: AtomicHist,
}

fn sum<T>(items: &[Arc<T>], f: impl Fn(&T) -> &AtomicU64) -> u64 {
    items.iter().map(|i| f(i).load(Relaxed)).sum()
}

fn latency_snapshot(consumers: &[Arc<ConsumerStats>]) -> Hist {
    let mut h = Hist::default();
    for c in consumers {
        h.merge(&c.latency.snapshot());
    }
    h
}

// ---------------------------------------------------------------------------------------
// The run.

async fn perf(o: &Options) -> (Summary, Option<String>) {
    let queue = o.queue.clone().unwrap_or_else(|| {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        format!("warren-perf-{}-{}", std::process::id(), nanos % 1_000_000_000_000)
    });
    let mut summary = Summary {
        queue: queue.clone(),
        producers: o.producers,
        consumers: o.consumers,
        size: o.size,
        confirm: o.confirm,
        prefetch: o.prefetch,
        ack: o.ack.label(),
        queue_kind: if o.quorum {
            "quorum"
        } else if o.durable {
            "classic, durable"
        } else {
            "classic"
        },
        persistent: o.persistent,
        ..Default::default()
    };
    let config = match config(o, "control") {
        Ok(c) => c,
        Err(e) => return (summary, Some(e)),
    };
    let control = match Connection::connect_with(config).await {
        Ok(c) => c,
        Err(e) => return (summary, Some(format!("cannot connect to {}: {e}", redact(&o.uri)))),
    };
    let result = async {
        let ch = control
            .open_channel()
            .await
            .map_err(|e| format!("control channel: {e}"))?;
        declare(o, &ch, &queue).await?;
        let outcome = load(o, &queue, &mut summary).await;
        // Delete the queue whatever happened (a fresh channel: the load may have broken the first).
        let ch = match ch.is_open() {
            true => ch,
            false => control
                .open_channel()
                .await
                .map_err(|e| format!("control channel: {e}"))?,
        };
        let deleted = ch.queue_delete(&queue, QueueDeleteOptions::default()).await;
        outcome?;
        deleted.map_err(|e| format!("deleting queue {queue}: {e}"))?;
        Ok::<(), String>(())
    }
    .await;
    let _ = control.close().await;
    (summary, result.err())
}

fn config(o: &Options, role: &str) -> Result<ConnectionConfig, String> {
    let mut c = ConnectionConfig::from_uri(&o.uri).map_err(|e| format!("--uri {}: {e}", redact(&o.uri)))?;
    // Our window governs; the library's must not be the smaller one.
    c.publish_window = (o.confirm as usize).max(1);
    c.consumer_buffer = c.consumer_buffer.max(usize::from(o.prefetch));
    Ok(c.with_connection_name(format!("warren-perf {role}")))
}

/// The URI without its password.
fn redact(uri: &str) -> String {
    match (uri.find("://"), uri.rfind('@')) {
        (Some(s), Some(at)) if at > s => match uri[s + 3..at].split_once(':') {
            Some((user, _)) => format!("{}{}:***{}", &uri[..s + 3], user, &uri[at..]),
            None => uri.to_string(),
        },
        _ => uri.to_string(),
    }
}

async fn declare(o: &Options, ch: &Channel, queue: &str) -> Result<(), String> {
    let mut arguments = FieldTable::new();
    if o.quorum {
        arguments.insert(ShortStr::from_static("x-queue-type"), "quorum");
    }
    let options = QueueDeclareOptions {
        durable: o.durable || o.quorum,
        ..Default::default()
    };
    ch.queue_declare(queue, options, arguments)
        .await
        .map_err(|e| format!("declaring queue {queue}: {e}"))?;
    Ok(())
}

/// Connects everyone, runs the producers, drains, stops the consumers, fills `s`.
async fn load(o: &Options, queue: &str, s: &mut Summary) -> Result<(), String> {
    // Set up every connection before the clock starts.
    let mut consumers = Vec::new();
    for i in 0..o.consumers {
        consumers.push(setup_consumer(o, queue, i).await?);
    }
    let mut producers = Vec::new();
    for i in 0..o.producers {
        producers.push(setup_producer(o, i).await?);
    }

    let run = Arc::new(Run {
        start: Instant::now(),
        next_seq: AtomicU64::new(0),
        limit: o.count.unwrap_or(u64::MAX).min(SeqSet::CAPACITY),
        stop_publishing: AtomicBool::new(false),
        sent: SeqSet::default(),
        seen: SeqSet::default(),
        rss_end: OnceLock::new(),
    });
    let cpu_start = process::cpu_secs();
    let (stop_tx, stop_rx) = watch::channel(false);

    let cstats: Vec<Arc<ConsumerStats>> = (0..o.consumers).map(|_| Arc::default()).collect();
    let mut consumer_tasks: Vec<JoinHandle<Result<(), String>>> = Vec::new();
    for ((conn, ch, consumer), stats) in consumers.into_iter().zip(&cstats) {
        let (run, stats, stop, ack) = (run.clone(), stats.clone(), stop_rx.clone(), o.ack);
        consumer_tasks.push(tokio::spawn(async move {
            let r = consume(&run, &stats, &ch, consumer, ack, stop).await;
            let _ = ch.close().await;
            let _ = conn.close().await;
            r
        }));
    }
    let pstats: Vec<Arc<ProducerStats>> = (0..o.producers).map(|_| Arc::default()).collect();
    // Producers keep their connections until the drain is over: without confirms, RabbitMQ
    // may still hold a closed channel's last publishes to a quorum queue, and drops them.
    type Producer = (Connection, Channel, Result<(), String>);
    let mut producer_tasks: Vec<JoinHandle<Producer>> = Vec::new();
    for ((conn, ch), stats) in producers.into_iter().zip(&pstats) {
        let (run, stats, o, queue) = (run.clone(), stats.clone(), o.clone(), queue.to_string());
        producer_tasks.push(tokio::spawn(async move {
            let r = publish(&run, &stats, &o, &ch, &queue).await;
            stats.done_ns.store(run.now_ns(), Relaxed);
            run.rss_end.get_or_init(process::resident_bytes);
            (conn, ch, r)
        }));
    }
    {
        // Ctrl-C: stop publishing and finish the run (drain, report, delete the queue).
        let run = run.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("warren perf: interrupted: publishing stops, draining (Ctrl-C again to abort)");
                run.stop_publishing.store(true, Relaxed);
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            }
        });
    }
    if let Some(d) = o.duration {
        let run = run.clone();
        tokio::spawn(async move {
            tokio::time::sleep(d).await;
            run.stop_publishing.store(true, Relaxed);
        });
    }
    let reporter = {
        let (run, p, c, confirms, print, stop) = (
            run.clone(),
            pstats.clone(),
            cstats.clone(),
            o.confirm > 0,
            !o.quiet,
            stop_rx.clone(),
        );
        tokio::spawn(live(run, p, c, confirms, print, stop))
    };

    // Producers first; a failed one is an error of the run, but the rest still drain.
    let mut error = None;
    let mut open_producers = Vec::new();
    for t in producer_tasks {
        let r = match t.await {
            Ok((conn, ch, r)) => {
                open_producers.push((conn, ch));
                r
            }
            Err(e) => Err(format!("producer task: {e}")),
        };
        if let Err(e) = r {
            error.get_or_insert(e);
        }
    }
    let publish_end = Instant::now();
    s.published = sum(&pstats, |p| &p.published);
    s.confirmed = sum(&pstats, |p| &p.confirmed);
    s.nacked = sum(&pstats, |p| &p.nacked);
    s.returned = sum(&pstats, |p| &p.returned);
    s.unconfirmed = sum(&pstats, |p| &p.unconfirmed);
    s.publish_secs = pstats.iter().map(|p| p.done_ns.load(Relaxed)).max().unwrap_or(0) as f64 / 1e9;
    let expected = if o.confirm > 0 { s.confirmed } else { s.published };

    // Drain: wait until every sent number was seen.
    if o.consumers > 0 {
        let deadline = publish_end + o.drain_timeout;
        loop {
            if consumer_tasks.iter().any(JoinHandle::is_finished) {
                break; // a consumer failed: its error is collected below
            }
            if sum(&cstats, |c| &c.consumed) >= expected && run.sent.count_missing_from(&run.seen) == 0 {
                break;
            }
            if Instant::now() >= deadline {
                eprintln!(
                    "warren perf: drain timeout: not every message arrived within {:?}",
                    o.drain_timeout
                );
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let _ = stop_tx.send(true);
    for t in consumer_tasks {
        let r = t.await.unwrap_or_else(|e| Err(format!("consumer task: {e}")));
        if let Err(e) = r {
            error.get_or_insert(e);
        }
    }
    s.elapsed_secs = run.start.elapsed().as_secs_f64();
    s.cpu_secs = cpu_start.zip(process::cpu_secs()).map(|(a, b)| b - a);
    let rss_samples = reporter.await.unwrap_or_default();
    s.rss = rss_samples.finish(s.elapsed_secs, run.rss_end.get().copied().flatten());

    s.consumed = sum(&cstats, |c| &c.consumed);
    s.duplicates = sum(&cstats, |c| &c.duplicates);
    s.corrupt = sum(&cstats, |c| &c.corrupt);
    s.acked = sum(&cstats, |c| &c.acked);
    s.consume_secs = cstats.iter().map(|c| c.last_ns.load(Relaxed)).max().unwrap_or(0) as f64 / 1e9;
    s.latency_us = latency_snapshot(&cstats);
    s.lost = if o.consumers > 0 {
        run.sent.count_missing_from(&run.seen)
    } else {
        // Nobody consumed: the confirmed messages must be sitting in the queue.
        let in_queue = queue_depth(o, queue, expected).await?;
        expected.saturating_sub(u64::from(in_queue))
    };
    for (conn, ch) in open_producers {
        let _ = ch.close().await;
        let _ = conn.close().await;
    }
    match error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The queue's ready count, waiting up to the drain timeout for `want` messages.
async fn queue_depth(o: &Options, queue: &str, want: u64) -> Result<u32, String> {
    let conn = Connection::connect_with(config(o, "depth")?)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let ch = conn.open_channel().await.map_err(|e| format!("channel: {e}"))?;
    let deadline = Instant::now() + o.drain_timeout;
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    let n = loop {
        let n = ch
            .queue_declare(queue, passive, FieldTable::new())
            .await
            .map_err(|e| format!("{e}"))?
            .message_count;
        if u64::from(n) >= want || Instant::now() >= deadline {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let _ = conn.close().await;
    Ok(n)
}

async fn setup_producer(o: &Options, i: u32) -> Result<(Connection, Channel), String> {
    let conn = Connection::connect_with(config(o, &format!("producer {i}"))?)
        .await
        .map_err(|e| format!("producer {i}: connect: {e}"))?;
    let ch = conn
        .open_channel()
        .await
        .map_err(|e| format!("producer {i}: channel: {e}"))?;
    if o.confirm > 0 {
        ch.confirm_select()
            .await
            .map_err(|e| format!("producer {i}: confirm.select: {e}"))?;
    }
    Ok((conn, ch))
}

async fn setup_consumer(o: &Options, queue: &str, i: u32) -> Result<(Connection, Channel, Consumer), String> {
    let conn = Connection::connect_with(config(o, &format!("consumer {i}"))?)
        .await
        .map_err(|e| format!("consumer {i}: connect: {e}"))?;
    let ch = conn
        .open_channel()
        .await
        .map_err(|e| format!("consumer {i}: channel: {e}"))?;
    if o.ack != AckMode::Auto {
        ch.basic_qos(o.prefetch, false)
            .await
            .map_err(|e| format!("consumer {i}: basic.qos: {e}"))?;
    }
    let options = ConsumeOptions {
        no_ack: o.ack == AckMode::Auto,
        ..Default::default()
    };
    let consumer = ch
        .basic_consume(queue, &format!("warren-perf-{i}"), options, FieldTable::new())
        .await
        .map_err(|e| format!("consumer {i}: basic.consume: {e}"))?;
    Ok((conn, ch, consumer))
}

// ---------------------------------------------------------------------------------------
// Producers.

/// Publishes until the count is reached or the duration is over, keeping at most
/// `--confirm` publishes unconfirmed; returns once every publish is settled.
async fn publish(run: &Run, stats: &ProducerStats, o: &Options, ch: &Channel, queue: &str) -> Result<(), String> {
    let properties = BasicProperties {
        delivery_mode: o.persistent.then_some(2),
        ..Default::default()
    };
    let options = PublishOptions { mandatory: true };
    let window = o.confirm as usize;
    let mut in_flight: VecDeque<(u64, Confirmation)> = VecDeque::with_capacity(window);
    let mut arena = BytesMut::new();
    let (mut next, mut block_end) = (0u64, 0u64);
    let mut result = Ok(());
    loop {
        if next == block_end {
            next = run.next_seq.fetch_add(SEQ_BLOCK, Relaxed);
            block_end = (next + SEQ_BLOCK).min(run.limit);
        }
        if next >= block_end || run.stop_publishing.load(Relaxed) {
            break;
        }
        let seq = next;
        next += 1;
        let body = body(&mut arena, o.size, seq, run.now_ns());
        let confirmation = match ch.basic_publish("", queue, options, properties.clone(), body).await {
            Ok(c) => c,
            Err(e) => {
                result = Err(format!("publish: {e}"));
                break;
            }
        };
        stats.published.fetch_add(1, Relaxed);
        if window == 0 {
            run.sent.insert(seq);
            continue;
        }
        in_flight.push_back((seq, confirmation));
        if in_flight.len() >= window {
            let (seq, c) = in_flight.pop_front().expect("window is not empty");
            if let Err(e) = settle(run, stats, seq, c.await) {
                result = Err(e);
                break;
            }
        }
    }
    for (seq, c) in in_flight {
        if let Err(e) = settle(run, stats, seq, c.await) {
            result = result.and(Err(e));
        }
    }
    result
}

/// Records one publish's outcome; an error (outcome unknown) is returned as well.
fn settle(run: &Run, stats: &ProducerStats, seq: u64, outcome: Result<Confirmed, warren::Error>) -> Result<(), String> {
    match outcome {
        Ok(Confirmed::Ack | Confirmed::Sent) => {
            stats.confirmed.fetch_add(1, Relaxed);
            run.sent.insert(seq);
        }
        Ok(Confirmed::Nack) => {
            stats.nacked.fetch_add(1, Relaxed);
        }
        Ok(Confirmed::Returned { .. }) => {
            stats.returned.fetch_add(1, Relaxed);
        }
        Err(e) => {
            stats.unconfirmed.fetch_add(1, Relaxed);
            return Err(format!("confirm of message {seq}: {e}"));
        }
    }
    Ok(())
}

/// A body of `size` bytes: sequence number, publish time, then filler. Bodies are cut
/// from a shared arena, so a publish costs no allocation of its own.
fn body(arena: &mut BytesMut, size: usize, seq: u64, now_ns: u64) -> Bytes {
    if arena.capacity() < size {
        *arena = BytesMut::with_capacity(size.max(1) * 256);
    }
    arena.put_u64(seq);
    arena.put_u64(now_ns);
    arena.put_bytes(0xA5, size - BODY_HEADER);
    arena.split().freeze()
}

// ---------------------------------------------------------------------------------------
// Consumers.

async fn consume(
    run: &Run,
    stats: &ConsumerStats,
    ch: &Channel,
    mut consumer: Consumer,
    ack: AckMode,
    mut stop: watch::Receiver<bool>,
) -> Result<(), String> {
    let mut unacked = 0u32;
    let mut last_tag = None;
    let result = loop {
        let next = tokio::select! {
            biased;
            d = consumer.next() => d,
            _ = stop.changed() => break Ok(()),
        };
        let d = match next {
            Some(Ok(d)) => d,
            Some(Err(e)) => break Err(format!("consumer: {e}")),
            None => break Ok(()),
        };
        let now = run.now_ns();
        match header(&d.body) {
            Some((seq, sent_ns)) => {
                stats.latency.record(now.saturating_sub(sent_ns) / 1_000);
                match run.seen.insert(seq) {
                    Some(true) => stats.consumed.fetch_add(1, Relaxed),
                    Some(false) => stats.duplicates.fetch_add(1, Relaxed),
                    None => stats.corrupt.fetch_add(1, Relaxed),
                };
            }
            None => {
                stats.corrupt.fetch_add(1, Relaxed);
            }
        }
        stats.last_ns.store(now, Relaxed);
        match ack {
            AckMode::Auto => {
                stats.acked.fetch_add(1, Relaxed);
            }
            AckMode::Each => {
                if let Err(e) = d.ack().await {
                    break Err(format!("ack: {e}"));
                }
                stats.acked.fetch_add(1, Relaxed);
            }
            AckMode::Multiple(n) => {
                unacked += 1;
                last_tag = Some(d.delivery_tag);
                if unacked >= n {
                    if let Err(e) = ch.basic_ack(d.delivery_tag, true).await {
                        break Err(format!("ack: {e}"));
                    }
                    stats.acked.fetch_add(u64::from(unacked), Relaxed);
                    unacked = 0;
                }
            }
        }
    };
    if let (Some(tag), true) = (last_tag, unacked > 0 && result.is_ok()) {
        ch.basic_ack(tag, true).await.map_err(|e| format!("ack: {e}"))?;
        stats.acked.fetch_add(u64::from(unacked), Relaxed);
    }
    if result.is_ok() {
        // Ends the stream; deliveries still buffered are requeued when it drops.
        let _ = consumer.cancel().await;
    }
    result
}

/// Sequence number and publish time from a body written by [`body`].
fn header(body: &[u8]) -> Option<(u64, u64)> {
    let seq = u64::from_be_bytes(body.get(0..8)?.try_into().ok()?);
    let ns = u64::from_be_bytes(body.get(8..16)?.try_into().ok()?);
    Some((seq, ns))
}

// ---------------------------------------------------------------------------------------
// The live line.

/// Every second until `stop`: samples the resident memory and, if `print`, prints the
/// live line. Returns the memory samples.
async fn live(
    run: Arc<Run>,
    producers: Vec<Arc<ProducerStats>>,
    consumers: Vec<Arc<ConsumerStats>>,
    confirms: bool,
    print: bool,
    mut stop: watch::Receiver<bool>,
) -> RssSamples {
    let tick = |at: Instant, interval: f64, prev_hist: &Hist| {
        let published = sum(&producers, |p| &p.published);
        let settled = sum(&producers, |p| &p.confirmed)
            + sum(&producers, |p| &p.nacked)
            + sum(&producers, |p| &p.returned)
            + sum(&producers, |p| &p.unconfirmed);
        let hist = latency_snapshot(&consumers);
        let t = Tick {
            at_secs: at.duration_since(run.start).as_secs_f64(),
            published,
            confirmed: sum(&producers, |p| &p.confirmed),
            consumed: sum(&consumers, |c| &c.consumed),
            in_flight: if confirms { published.saturating_sub(settled) } else { 0 },
            interval_secs: interval,
            latency_us: hist.since(prev_hist),
            rss_bytes: process::resident_bytes(),
        };
        (t, hist)
    };
    let (mut prev, mut prev_hist) = tick(run.start, 1.0, &Hist::default());
    let mut rss = RssSamples::default();
    let mut last = run.start;
    let mut interval = tokio::time::interval_at((run.start + Duration::from_secs(1)).into(), Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.changed() => return rss,
        }
        if *stop.borrow() {
            return rss; // the run is tearing down: its memory is not the steady state
        }
        let now = Instant::now();
        let (t, hist) = tick(now, now.duration_since(last).as_secs_f64(), &prev_hist);
        if let Some(bytes) = t.rss_bytes {
            rss.record(t.at_secs, bytes);
        }
        if print {
            eprintln!("{}", t.line(&prev, confirms));
        }
        (prev, prev_hist, last) = (t, hist, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_round_trip() {
        let mut arena = BytesMut::new();
        let a = body(&mut arena, 256, 7, 99);
        let b = body(&mut arena, 16, 8, 100);
        assert_eq!((a.len(), b.len()), (256, 16));
        assert_eq!(header(&a), Some((7, 99)));
        assert_eq!(header(&b), Some((8, 100)));
        assert_eq!(header(&a[..15]), None);
    }

    #[test]
    fn redacts_password() {
        assert_eq!(redact("amqp://guest:secret@h:5672/%2f"), "amqp://guest:***@h:5672/%2f");
        assert_eq!(redact("amqp://h/"), "amqp://h/");
    }
}
