//! `warren perf`: a load test in the spirit of RabbitMQ's PerfTest that also proves
//! delivery. Producers publish numbered messages, consumers read them back, and the run
//! ends with a count of what was lost or delivered twice.
//!
//! Every body starts with a sequence number and a publish time (see [`body`]). Sequence
//! numbers are handed out in blocks from one counter, so they are unique across
//! producers. Bit sets make the checks exact:
//! - `sent`: numbers the broker confirmed (or, without confirms, that were published);
//! - `seen`: numbers consumed and acked, one set per queue when every queue gets every
//!   message (fanout), else one for all; a second delivery of one is a duplicate;
//! - `dropped`: numbers nacked without requeue (`--nack-requeue false`), not expected back.
//!
//! After the producers finish, the run drains until every number of `sent` is in `seen`
//! or `dropped` (or `--drain-timeout` passes); `lost` is what is in neither, less what is
//! still counted in the queues when consumers stop early (`--cmessages`) or there are none.
//!
//! A lost connection is recovered by the library and the run goes on; publishes whose
//! outcome it leaves unknown, and duplicates, are counted as [`faults`] says. A broker
//! that blocks publishing does not hold the run past its end ([`stop`]).
//!
//! Each producer and consumer connection has `-X`/`-Y` channels, one task each, on a
//! multi-thread tokio runtime. Counters are per task (no shared cache line on the hot
//! path); the reporter sums them once a second (see [`series`]).

mod args;
mod body;
mod consumer;
mod faults;
mod hist;
mod html;
mod pace;
mod process;
mod producer;
mod report;
mod rng;
mod rss;
mod scenario;
mod seqset;
mod series;
mod stop;
mod topology;

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use tokio::task::JoinHandle;
use warren::client::{Address, Channel, Connection, ConnectionConfig, RecoveryConfig};

pub use args::usage;
use args::{AckMode, Options, Parsed};
use body::Clock;
use consumer::Sub;
use faults::{ConfirmGap, Recoveries, Suspects};
use hist::{AtomicHist, Hist};
use pace::FineTimer;
use report::Summary;
use rss::RssSamples;
use seqset::SeqSet;
use series::{Percentiles, Point};
use topology::{Routing, Topology};

/// Sequence numbers a producer takes from the shared counter at a time.
const SEQ_BLOCK: u64 = 64;

/// Runs `warren perf` with the arguments after `perf`; returns the exit code.
pub fn run(args: &[String]) -> i32 {
    let opts = match args::parse(args, std::env::var("AMQP_URL").ok()) {
        Ok(Parsed::Run(o)) => o,
        Ok(Parsed::Help) => {
            println!("{}", args::usage());
            return 0;
        }
        Err(e) => {
            eprintln!("warren perf: {e}");
            return 2;
        }
    };
    // Output files are created before the run: a bad path fails at once, not after it.
    let series = match &opts.time_series {
        Some(path) => match File::create(path) {
            Ok(f) => Some(BufWriter::new(f)),
            Err(e) => {
                eprintln!("warren perf: --time-series {}: {e}", path.display());
                return 2;
            }
        },
        None => None,
    };
    let report_file = match &opts.report {
        Some(path) => match File::create(path) {
            Ok(f) => Some(f),
            Err(e) => {
                eprintln!("warren perf: --report {}: {e}", path.display());
                return 2;
            }
        },
        None => None,
    };
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("warren perf: cannot start the tokio runtime: {e}");
            return 3;
        }
    };
    let (summary, mut error) = rt.block_on(perf(&opts, series));
    if let (Some(mut f), Some(path)) = (report_file, &opts.report) {
        let page = html::render(&summary, &verdict_text(&opts, &summary, error.as_deref()));
        if let Err(e) = f.write_all(page.as_bytes()) {
            error.get_or_insert(format!("writing --report {}: {e}", path.display()));
        }
    }
    let verdict = verdict(&opts, &summary, error.as_deref());
    let code = match (&error, &verdict) {
        (Some(_), _) => 3,
        (None, Some(_)) => 1,
        (None, None) => 0,
    };
    let table = summary.table(&verdict_text(&opts, &summary, error.as_deref()));
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

fn verdict_text(o: &Options, s: &Summary, error: Option<&str>) -> String {
    match (error, verdict(o, s, error)) {
        (Some(e), _) => format!("FAILED: {e}"),
        (None, Some(v)) => format!("FAILED: {v}"),
        (None, None) => "ok".into(),
    }
}

/// Why the run failed its checks, if it did.
fn verdict(o: &Options, s: &Summary, error: Option<&str>) -> Option<String> {
    let mut why = Vec::new();
    if s.lost > 0 {
        why.push(format!("{} lost", s.lost));
    }
    if o.exactly_once && s.duplicates > 0 {
        why.push(format!("{} duplicates (--exactly-once-check)", s.duplicates));
    } else if s.unexplained > 0 {
        why.push(format!("{} unexplained duplicates", s.unexplained));
    }
    if s.corrupt > 0 {
        why.push(format!("{} corrupt bodies", s.corrupt));
    }
    if o.exactly_once && s.unknown > 0 {
        why.push(format!(
            "{} publishes with unknown outcome (--exactly-once-check)",
            s.unknown
        ));
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
    clock: Clock,
    timer: FineTimer,
    /// Next free sequence number.
    next_seq: AtomicU64,
    /// Sequence numbers below this are published (`--count`); the format's limit otherwise.
    limit: u64,
    /// The end of publishing: `--duration` over, or Ctrl-C.
    stop: stop::Stop,
    /// Confirmed (or, without confirms, published) sequence numbers.
    sent: SeqSet,
    /// Consumed and acked sequence numbers, per ledger (see [`Topology::ledger`]).
    seen: Vec<SeqSet>,
    /// Nacked without requeue, per ledger.
    dropped: Vec<SeqSet>,
    /// Publishes whose outcome is unknown (their connection was lost before the confirm).
    unknown: SeqSet,
    /// With `--republish`: confirmed publishes that may have been sent twice (their
    /// connection changed state between the publish and the confirm).
    retried: SeqSet,
    /// Duplicates their consumer could not explain (see [`faults`]).
    suspects: Suspects,
    /// Recoveries of every connection of the run.
    recoveries: Recoveries,
    /// Resident bytes when the first producer finished, before any connection closed.
    rss_end: OnceLock<Option<u64>>,
}

impl Run {
    /// Per ledger: sent numbers neither seen nor dropped.
    fn missing(&self) -> Vec<u64> {
        self.seen
            .iter()
            .zip(&self.dropped)
            .map(|(seen, dropped)| self.sent.count_missing_from_both(seen, Some(dropped)))
            .collect()
    }
}

#[derive(Default)]
struct ProducerStats {
    published: AtomicU64,
    bytes: AtomicU64,
    confirmed: AtomicU64,
    nacked: AtomicU64,
    returned: AtomicU64,
    /// Publishes whose outcome is unknown.
    unknown: AtomicU64,
    /// The longest wait for a confirm.
    confirm_gap: ConfirmGap,
    /// `Clock::now_ns` when the last publish was settled.
    done_ns: AtomicU64,
    /// Publish → confirm latency, microseconds.
    confirm_latency: AtomicHist,
}

#[derive(Default)]
struct ConsumerStats {
    /// Distinct sequence numbers consumed (and acked).
    consumed: AtomicU64,
    duplicates: AtomicU64,
    /// Of the duplicates, those that arrived flagged redelivered or after a recovery.
    redelivered: AtomicU64,
    /// Acks (and nacks) refused as stale: their delivery came before a recovery.
    stale: AtomicU64,
    corrupt: AtomicU64,
    acked: AtomicU64,
    /// Deliveries nacked (`--nack`).
    nacks: AtomicU64,
    /// Distinct sequence numbers nacked without requeue.
    dropped: AtomicU64,
    /// Stopped after its `--cmessages` quota.
    quota_done: AtomicBool,
    /// `Clock::now_ns` of the last delivery.
    last_ns: AtomicU64,
    /// Publish → consume latency, microseconds.
    latency: AtomicHist,
}

fn sum<T>(items: &[Arc<T>], f: impl Fn(&T) -> &AtomicU64) -> u64 {
    items.iter().map(|i| f(i).load(Relaxed)).sum()
}

fn merged<T>(items: &[Arc<T>], f: impl Fn(&T) -> &AtomicHist) -> Hist {
    let mut h = Hist::default();
    for i in items {
        f(i).add_to(&mut h);
    }
    h
}

// ---------------------------------------------------------------------------------------
// The run.

async fn perf(o: &Options, series: Option<BufWriter<File>>) -> (Summary, Option<String>) {
    let base = o.queue.clone().unwrap_or_else(|| {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        format!("warren-perf-{}-{}", std::process::id(), nanos % 1_000_000_000_000)
    });
    let topology = Topology::plan(o, &base);
    let mut summary = Summary {
        queue: base.clone(),
        queues: o.queues,
        exchange: topology.label(),
        copies: topology.copies(),
        producers: o.producers,
        consumers: o.consumers,
        producer_channels: o.producer_channels,
        consumer_channels: o.consumer_channels,
        sizes: o.sizes.label(),
        body: o.body.name(),
        rate: o.rate.as_ref().map(pace::RateSchedule::label),
        consumer_rate: o.consumer_rate,
        scenario: o.scenario,
        confirm: o.confirm,
        prefetch: o.prefetch,
        ack: o.ack.label(),
        queue_kind: match (o.quorum, o.durable || !o.exclusive) {
            (true, _) => "quorum",
            (false, true) => "classic, durable",
            (false, false) => "classic",
        },
        persistent: o.persistent,
        ..Default::default()
    };
    let config = match connection_config(&o.uris, 0, o, "control") {
        Ok(c) => c,
        Err(e) => return (summary, Some(e)),
    };
    // Not tried again: a broker that cannot be reached at the start is a wrong address.
    let control = match Connection::connect_with(config).await {
        Ok(c) => c,
        Err(e) => return (summary, Some(format!("cannot connect to {}: {e}", redact(&o.uris[0])))),
    };
    let result = async {
        let ch = through_faults(
            || "control channel".into(),
            || control.is_open(),
            || control.open_channel(),
        )
        .await?;
        let declared = topology.declare(o, &ch).await;
        let outcome = match declared {
            Ok(()) => load(o, &topology, &control, &mut summary, series).await,
            Err(e) => Err(e),
        };
        // Delete what was declared whatever happened (on a fresh channel if the first broke).
        let deleted = topology.delete(o, &control, ch).await;
        outcome?;
        deleted
    }
    .await;
    let _ = control.close().await;
    (summary, result.err())
}

/// The configuration of the run's connection number `index` (control 0, then the
/// consumers, then the producers), the one place where connections are configured.
///
/// Connections go to the `--uri` nodes in turn (`index` mod their number) and have the
/// others as more addresses (`ConnectionConfig::more_addresses`): after its own node, a
/// connection tries the next ones in the list, in order, on its first connect and on
/// every recovery. Only their host and port are taken; the credentials, vhost and TLS
/// settings stay those of the connection's own URI.
fn connection_config(uris: &[String], index: usize, o: &Options, role: &str) -> Result<ConnectionConfig, String> {
    let parse = |uri: &String| ConnectionConfig::from_uri(uri).map_err(|e| format!("--uri {}: {e}", redact(uri)));
    let configs = uris.iter().map(parse).collect::<Result<Vec<_>, _>>()?;
    let n = configs.len().max(1);
    let mut c = configs
        .get(index % n)
        .cloned()
        .ok_or_else(|| "--uri: no broker given".to_string())?;
    // The others are this connection's other addresses: tried in turn on the first
    // connect and on every recovery (the library starts after the one it lost).
    c.more_addresses.extend(
        (1..n)
            .map(|k| &configs[(index + k) % n])
            .map(|other| Address::new(other.host.clone(), other.port)),
    );
    c.recovery = RecoveryConfig {
        republish_unconfirmed: o.republish,
        ..c.recovery
    };
    // Our window governs; the library's must not be the smaller one.
    c.publish_window = (o.confirm as usize).max(1);
    c.consumer_buffer = c.consumer_buffer.max(usize::from(o.prefetch));
    c.read_coalescing = o.read_coalescing;
    Ok(c.with_connection_name(format!("warren-perf {role}")))
}

/// Follows the recoveries of `conn` for the rest of the run.
fn watch_recoveries(run: &Arc<Run>, conn: &Connection) {
    let (run, changes) = (run.clone(), conn.state_changes());
    tokio::spawn(async move { run.recoveries.watch(changes).await });
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

/// An error a recovery heals (the connection was lost), or `NotConnected` (a recovery is
/// under way): a call that failed so can be made again.
pub(crate) fn heals(e: &warren::Error) -> bool {
    e.is_recoverable() || matches!(e, warren::Error::NotConnected)
}

/// Runs one set-up call (connect, open a channel, declare, qos, consume, confirm.select)
/// until it succeeds. A call in flight when its connection is lost fails with an error
/// that recovery heals (or `NotConnected` while the recovery runs), and the library
/// restores the channel; a first connect is not retried by the library. So after such
/// an error the call is made again, while `alive` (its channel or connection is not
/// closed for good) and for up to a minute; the first retry is told on stderr. Any other
/// error, or the end of that, is `what: error`.
pub(crate) async fn through_faults<T, F, Fut>(
    what: impl Fn() -> String,
    alive: impl Fn() -> bool,
    mut call: F,
) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, warren::Error>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut told = false;
    loop {
        match call().await {
            Ok(v) => return Ok(v),
            Err(e) if heals(&e) && alive() && tokio::time::Instant::now() < deadline => {
                if !std::mem::replace(&mut told, true) {
                    eprintln!("warren perf: {}: {e}; trying again (the set-up met a fault)", what());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(format!("{}: {e}", what())),
        }
    }
}

/// Connects the run's connection number `index`, named `role`, through faults.
async fn connect_role(o: &Options, index: usize, role: &str) -> Result<Connection, String> {
    let config = connection_config(&o.uris, index, o, role)?;
    through_faults(
        || format!("{role}: connect"),
        || true,
        || Connection::connect_with(config.clone()),
    )
    .await
}

/// Opens consumer connection `c` with its channels (declaring its queues with
/// `--exclusive`), subscribed unless `--consume-after-publish`.
async fn setup_consumer(o: &Options, topology: &Topology, c: u32) -> Result<(Connection, Vec<Sub>), String> {
    let conn = connect_role(o, 1 + c as usize, &format!("consumer {c}")).await?;
    let owned = if o.exclusive {
        topology.owned_by(o, c)
    } else {
        Vec::new()
    };
    let mut subs = Vec::new();
    for k in 0..o.consumer_channels {
        let ch = through_faults(
            || format!("consumer {c}.{k}: channel"),
            || conn.is_open(),
            || conn.open_channel(),
        )
        .await?;
        if let Some(&q) = owned.get(k as usize) {
            topology.declare_queue(o, &ch, q).await?;
        }
        if o.ack != AckMode::Auto {
            through_faults(
                || format!("consumer {c}.{k}: basic.qos"),
                || ch.is_open(),
                || ch.basic_qos(o.prefetch, false),
            )
            .await?;
        }
        let mut sub = Sub {
            ch,
            queue: topology.consumer_queue(o, c, k),
            tag: format!("warren-perf-{c}.{k}"),
            index: c * o.consumer_channels + k,
            consumer: None,
        };
        if !o.consume_after_publish {
            sub.consumer = Some(sub.subscribe(o, topology).await?);
        }
        subs.push(sub);
    }
    Ok((conn, subs))
}

async fn setup_producer(o: &Options, p: u32) -> Result<(Connection, Vec<Channel>), String> {
    let conn = connect_role(o, 1 + o.consumers as usize + p as usize, &format!("producer {p}")).await?;
    let mut channels = Vec::new();
    for k in 0..o.producer_channels {
        let ch = through_faults(
            || format!("producer {p}.{k}: channel"),
            || conn.is_open(),
            || conn.open_channel(),
        )
        .await?;
        if o.confirm > 0 {
            through_faults(
                || format!("producer {p}.{k}: confirm.select"),
                || ch.is_open(),
                || ch.confirm_select(),
            )
            .await?;
        }
        channels.push(ch);
    }
    Ok((conn, channels))
}

/// Connects everyone, runs the producers, drains, stops the consumers, fills `s`.
async fn load(
    o: &Options,
    topology: &Topology,
    control: &Connection,
    s: &mut Summary,
    series: Option<BufWriter<File>>,
) -> Result<(), String> {
    // Set up every connection before the clock starts.
    let mut consumer_conns = Vec::new();
    let mut subs = Vec::new();
    for c in 0..o.consumers {
        let (conn, mut these) = setup_consumer(o, topology, c).await?;
        consumer_conns.push(conn);
        subs.append(&mut these);
    }
    let mut producers = Vec::new();
    for p in 0..o.producers {
        producers.push(setup_producer(o, p).await?);
    }

    let ledgers = match topology.routing {
        Routing::One => 1,
        Routing::Every => topology.queues.len(),
    };
    let clock = Clock::new();
    clock.check(o.body)?;
    let run = Arc::new(Run {
        clock,
        timer: FineTimer::start(),
        next_seq: AtomicU64::new(0),
        limit: o
            .count
            .unwrap_or(u64::MAX)
            .min(SeqSet::CAPACITY)
            .min(o.body.seq_limit().unwrap_or(u64::MAX)),
        stop: stop::Stop::default(),
        sent: SeqSet::default(),
        seen: (0..ledgers).map(|_| SeqSet::default()).collect(),
        dropped: (0..ledgers).map(|_| SeqSet::default()).collect(),
        unknown: SeqSet::default(),
        retried: SeqSet::default(),
        suspects: Suspects::default(),
        recoveries: Recoveries::default(),
        rss_end: OnceLock::new(),
    });
    let connections: Vec<Connection> = std::iter::once(control)
        .chain(&consumer_conns)
        .chain(producers.iter().map(|(conn, _)| conn))
        .cloned()
        .collect();
    for conn in &connections {
        watch_recoveries(&run, conn);
    }
    let cpu_start = process::cpu_secs();
    let (stop_tx, stop_rx) = watch::channel(false);
    let (go_tx, go_rx) = watch::channel(!o.consume_after_publish);

    let cstats: Vec<Arc<ConsumerStats>> = subs.iter().map(|_| Arc::default()).collect();
    let mut consumer_tasks: Vec<JoinHandle<Result<(), String>>> = Vec::new();
    for (sub, stats) in subs.into_iter().zip(&cstats) {
        let (run, stats, o, topology) = (run.clone(), stats.clone(), o.clone(), topology.clone());
        let (go, stop) = (go_rx.clone(), stop_rx.clone());
        consumer_tasks.push(tokio::spawn(async move {
            let ch = sub.ch.clone();
            let r = consumer::consume(&run, &stats, &o, &topology, sub, go, stop).await;
            let _ = ch.close().await;
            r
        }));
    }
    let pstats: Vec<Arc<ProducerStats>> = (0..o.publishers()).map(|_| Arc::default()).collect();
    // Producers keep their connections until the drain is over: without confirms, RabbitMQ
    // may still hold a closed channel's last publishes to a quorum queue, and drops them.
    let mut producer_conns = Vec::new();
    let mut producer_tasks: Vec<JoinHandle<(Channel, Result<(), String>)>> = Vec::new();
    let mut index = 0usize;
    for (conn, channels) in producers {
        for ch in channels {
            let stats = pstats[index].clone();
            let (run, o, topology) = (run.clone(), o.clone(), topology.clone());
            let i = index as u32;
            let epoch = producer::Epoch::new(conn.state());
            producer_tasks.push(tokio::spawn(async move {
                let r = producer::publish(&run, &stats, &o, &topology, &ch, i, epoch).await;
                stats.done_ns.store(run.clock.now_ns(), Relaxed);
                run.rss_end.get_or_init(process::resident_bytes);
                (ch, r)
            }));
            index += 1;
        }
        producer_conns.push(conn);
    }
    {
        // Ctrl-C: stop publishing and finish the run (drain, report, delete the queues).
        let run = run.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("warren perf: interrupted: publishing stops, draining (Ctrl-C again to abort)");
                run.stop.stop();
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
            run.stop.stop();
        });
    }
    let reporter = {
        let live = Live {
            run: run.clone(),
            producers: pstats.clone(),
            consumers: cstats.clone(),
            confirms: o.confirm > 0,
            print: !o.quiet,
            series,
        };
        tokio::spawn(live.run(stop_rx.clone()))
    };

    // Producers first; a failed one is an error of the run, but the rest still drain.
    let mut error = None;
    let mut open_channels = Vec::new();
    for t in producer_tasks {
        let r = match t.await {
            Ok((ch, r)) => {
                open_channels.push(ch);
                r
            }
            Err(e) => Err(format!("producer task: {e}")),
        };
        if let Err(e) = r {
            error.get_or_insert(e);
        }
    }
    let publish_end = Instant::now();
    if o.consume_after_publish {
        s.consume_start_secs = run.clock.now_ns() as f64 / 1e9;
        let _ = go_tx.send(true);
    }
    s.published = sum(&pstats, |p| &p.published);
    s.bytes = sum(&pstats, |p| &p.bytes);
    s.confirmed = sum(&pstats, |p| &p.confirmed);
    s.nacked = sum(&pstats, |p| &p.nacked);
    s.returned = sum(&pstats, |p| &p.returned);
    s.unknown = sum(&pstats, |p| &p.unknown);
    s.confirm_gap_max_secs = pstats
        .iter()
        .map(|p| p.confirm_gap.max_ns.load(Relaxed))
        .max()
        .unwrap_or(0) as f64
        / 1e9;
    s.publish_secs = pstats.iter().map(|p| p.done_ns.load(Relaxed)).max().unwrap_or(0) as f64 / 1e9;
    let expected = if o.confirm > 0 { s.confirmed } else { s.published };
    let copies = topology.copies();

    // Drain: wait until every sent number was seen (or dropped) in every ledger.
    if o.consumers > 0 {
        let deadline = publish_end + o.drain_timeout;
        loop {
            let failed = consumer_tasks
                .iter()
                .zip(&cstats)
                .any(|(t, c)| t.is_finished() && !c.quota_done.load(Relaxed));
            if failed {
                break; // a consumer failed: its error is collected below
            }
            if consumer_tasks.iter().all(JoinHandle::is_finished) {
                break; // every consumer took its --cmessages
            }
            let settled = sum(&cstats, |c| &c.consumed) + sum(&cstats, |c| &c.dropped);
            if settled >= expected * copies && run.missing().iter().all(|&m| m == 0) {
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
    for conn in consumer_conns {
        let _ = conn.close().await;
    }
    s.elapsed_secs = run.clock.start.elapsed().as_secs_f64();
    s.cpu_secs = cpu_start.zip(process::cpu_secs()).map(|(a, b)| b - a);
    let (rss_samples, points) = reporter.await.unwrap_or_default();
    s.rss = rss_samples.finish(s.elapsed_secs, run.rss_end.get().copied().flatten());
    s.points = points;

    s.consumed = sum(&cstats, |c| &c.consumed);
    s.duplicates = sum(&cstats, |c| &c.duplicates);
    let (republished_copies, unexplained) = run.suspects.settle(&run.retried);
    s.redelivered = sum(&cstats, |c| &c.redelivered) + republished_copies;
    s.redelivered_republished = republished_copies;
    s.unexplained = unexplained;
    s.stale_acks = sum(&cstats, |c| &c.stale);
    s.unknown_arrived = run.seen.iter().map(|seen| run.unknown.count_in(seen)).sum();
    s.recoveries = connections.iter().map(|c| c.metrics().recoveries).sum();
    s.recovery_max_secs = run.recoveries.longest_ns.load(Relaxed) as f64 / 1e9;
    s.republished = connections.iter().map(|c| c.metrics().republished).sum();
    s.corrupt = sum(&cstats, |c| &c.corrupt);
    s.acked = sum(&cstats, |c| &c.acked);
    s.consumer_nacks = sum(&cstats, |c| &c.nacks);
    s.nack_dropped = sum(&cstats, |c| &c.dropped);
    s.consume_secs = cstats.iter().map(|c| c.last_ns.load(Relaxed)).max().unwrap_or(0) as f64 / 1e9;
    s.latency_us = merged(&cstats, |c| &c.latency);
    s.confirm_latency_us = merged(&pstats, |p| &p.confirm_latency);
    let missing = run.missing();
    // What nobody consumed must be sitting in the queues.
    let left = if o.consumers == 0 || o.cmessages.is_some() {
        left_in_queues(o, topology, control, &missing).await?
    } else {
        vec![0; missing.len()]
    };
    s.left_in_queues = left.iter().sum();
    s.lost = missing.iter().zip(&left).map(|(m, l)| m.saturating_sub(*l)).sum();
    // A broker that blocked publishing reads nothing from the producers' connections, not
    // even their close, until its alarm clears: bounded like the drain, then dropped.
    let closing = async {
        for ch in open_channels {
            let _ = ch.close().await;
        }
        for conn in producer_conns {
            let _ = conn.close().await;
        }
    };
    if tokio::time::timeout(o.drain_timeout, closing).await.is_err() && !o.quiet {
        eprintln!(
            "warren perf: the producers' connections did not close within {:?} (is publishing blocked?); dropped",
            o.drain_timeout
        );
    }
    match error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Messages ready in the queues, per ledger, waiting up to the drain timeout for the
/// `missing` ones to show.
async fn left_in_queues(
    o: &Options,
    topology: &Topology,
    control: &Connection,
    missing: &[u64],
) -> Result<Vec<u64>, String> {
    let ch = control
        .open_channel()
        .await
        .map_err(|e| format!("control channel: {e}"))?;
    let deadline = Instant::now() + o.drain_timeout;
    loop {
        let depths = topology.depths(&ch).await?;
        let per_ledger: Vec<u64> = match topology.routing {
            Routing::One => vec![depths.iter().map(|&d| u64::from(d)).sum()],
            Routing::Every => depths.iter().map(|&d| u64::from(d)).collect(),
        };
        let complete = per_ledger.iter().zip(missing).all(|(d, m)| d >= m);
        if complete || Instant::now() >= deadline {
            let _ = ch.close().await;
            return Ok(per_ledger);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------------------
// The reporter.

/// Once a second: a point of the time series, printed (live line), written
/// (`--time-series`) and kept (`--report`); and a sample of the resident memory.
struct Live {
    run: Arc<Run>,
    producers: Vec<Arc<ProducerStats>>,
    consumers: Vec<Arc<ConsumerStats>>,
    confirms: bool,
    print: bool,
    series: Option<BufWriter<File>>,
}

/// Totals at one tick, to take differences from.
#[derive(Default)]
struct Totals {
    at: Option<Instant>,
    published: u64,
    confirmed: u64,
    consumed: u64,
    consume_hist: Hist,
    confirm_hist: Hist,
    cpu: Option<f64>,
}

impl Live {
    fn totals(&self, at: Instant) -> Totals {
        Totals {
            at: Some(at),
            published: sum(&self.producers, |p| &p.published),
            confirmed: sum(&self.producers, |p| &p.confirmed),
            consumed: sum(&self.consumers, |c| &c.consumed),
            consume_hist: merged(&self.consumers, |c| &c.latency),
            confirm_hist: merged(&self.producers, |p| &p.confirm_latency),
            cpu: process::cpu_secs(),
        }
    }

    fn point(&self, now: &Totals, before: &Totals) -> Point {
        let start = self.run.clock.start;
        let (t1, t0) = (now.at.unwrap_or(start), before.at.unwrap_or(start));
        let secs = t1.duration_since(t0).as_secs_f64().max(1e-9);
        let rate = |a: u64, b: u64| a.saturating_sub(b) as f64 / secs;
        let p = &self.producers;
        let unknown = sum(p, |p| &p.unknown);
        let settled = sum(p, |p| &p.confirmed) + sum(p, |p| &p.nacked) + sum(p, |p| &p.returned) + unknown;
        Point {
            at_secs: t1.duration_since(start).as_secs_f64(),
            published: now.published,
            confirmed: now.confirmed,
            consumed: now.consumed,
            publish_rate: rate(now.published, before.published),
            confirm_rate: rate(now.confirmed, before.confirmed),
            consume_rate: rate(now.consumed, before.consumed),
            unconfirmed: if self.confirms {
                now.published.saturating_sub(settled)
            } else {
                0
            },
            consume_latency: Percentiles::of(&now.consume_hist.since(&before.consume_hist)),
            confirm_latency: Percentiles::of(&now.confirm_hist.since(&before.confirm_hist)),
            rss_bytes: process::resident_bytes(),
            cpu_percent: now.cpu.zip(before.cpu).map(|(a, b)| (a - b) / secs * 100.0),
            unknown,
            recoveries: self.run.recoveries.count.load(Relaxed),
        }
    }

    /// Every second until `stop`; returns the memory samples and the points.
    async fn run(mut self, mut stop: watch::Receiver<bool>) -> (RssSamples, Vec<Point>) {
        let start = self.run.clock.start;
        let mut before = Totals {
            at: Some(start),
            cpu: process::cpu_secs(),
            ..Default::default()
        };
        let mut rss = RssSamples::default();
        let mut points = Vec::new();
        let mut interval = tokio::time::interval_at((start + Duration::from_secs(1)).into(), Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = stop.changed() => break,
            }
            if *stop.borrow() {
                break; // the run is tearing down: its memory is not the steady state
            }
            let now = self.totals(Instant::now());
            let point = self.point(&now, &before);
            if let Some(bytes) = point.rss_bytes {
                rss.record(point.at_secs, bytes);
            }
            if self.print {
                eprintln!("{}", point.line(self.confirms));
            }
            if let Some(f) = &mut self.series {
                if let Err(e) = writeln!(f, "{}", point.to_json()).and_then(|()| f.flush()) {
                    eprintln!("warren perf: --time-series: {e}; no more points are written");
                    self.series = None;
                }
            }
            points.push(point);
            before = now;
        }
        (rss, points)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_fails_a_run() {
        let strict = Options {
            exactly_once: true,
            ..Options::default()
        };
        let lax = Options::default();
        let clean = Summary {
            published: 10,
            confirmed: 10,
            consumed: 10,
            ..Default::default()
        };
        assert_eq!(verdict(&lax, &clean, None), None);
        assert_eq!(verdict(&strict, &clean, None), None);
        // A cut: some outcomes unknown, a redelivered copy.
        let faulty = Summary {
            unknown: 3,
            duplicates: 1,
            redelivered: 1,
            recoveries: 1,
            ..clean.clone()
        };
        assert_eq!(verdict(&lax, &faulty, None), None, "at least once is no failure");
        assert_eq!(
            verdict(&strict, &faulty, None).as_deref(),
            Some("1 duplicates (--exactly-once-check), 3 publishes with unknown outcome (--exactly-once-check)")
        );
        let unexplained = Summary {
            duplicates: 2,
            redelivered: 1,
            unexplained: 1,
            ..clean.clone()
        };
        assert_eq!(
            verdict(&lax, &unexplained, None).as_deref(),
            Some("1 unexplained duplicates")
        );
        let lost = Summary { lost: 1, ..faulty };
        assert_eq!(verdict(&lax, &lost, None).as_deref(), Some("1 lost"));
    }

    #[test]
    fn connections_spread_over_the_uris_and_recover_to_the_others() {
        let uris: Vec<String> = (1..=3)
            .map(|i| format!("amqp://guest:guest@127.0.0.1:570{i}/%2f"))
            .collect();
        let o = Options {
            republish: true,
            ..Options::default()
        };
        let ports = |index| {
            let c = connection_config(&uris, index, &o, "test").unwrap();
            assert!(c.recovery.republish_unconfirmed && c.recovery.enabled);
            c.addresses().iter().map(|a| a.port).collect::<Vec<_>>()
        };
        assert_eq!(ports(0), [5701, 5702, 5703]);
        assert_eq!(ports(1), [5702, 5703, 5701]);
        assert_eq!(ports(5), [5703, 5701, 5702]);
        let one = connection_config(&uris[..1], 7, &Options::default(), "x").unwrap();
        assert!(one.more_addresses.is_empty() && !one.recovery.republish_unconfirmed);
        assert_eq!(one.protocol.connection_name.as_deref(), Some("warren-perf x"));
        let bad = connection_config(&["http://x".to_string()], 0, &o, "x").unwrap_err();
        assert!(bad.starts_with("--uri http://x: "), "{bad}");
    }

    #[test]
    fn redacts_password() {
        assert_eq!(redact("amqp://guest:secret@h:5672/%2f"), "amqp://guest:***@h:5672/%2f");
        assert_eq!(redact("amqp://h/"), "amqp://h/");
    }

    #[tokio::test(start_paused = true)]
    async fn set_up_calls_are_tried_again_after_a_loss_only() {
        let lost = || warren::Error::ConnectionLost {
            reason: "transport error".into(),
            source: None,
        };
        let mut tries = 0;
        let r = through_faults(
            || "consumer 0.0: basic.qos".into(),
            || true,
            || {
                tries += 1;
                let r = match tries {
                    1 => Err(lost()),
                    2 => Err(warren::Error::NotConnected),
                    _ => Ok(tries),
                };
                async move { r }
            },
        )
        .await;
        assert_eq!(r, Ok(3));

        let mut tries = 0;
        let r: Result<(), String> = through_faults(
            || "declaring queue q".into(),
            || true,
            || {
                tries += 1;
                async { Err(warren::Error::InvalidArgument("x-max-length: not a number".into())) }
            },
        )
        .await;
        assert_eq!(
            r,
            Err("declaring queue q: invalid argument: x-max-length: not a number".into()),
            "not a loss: at once"
        );
        assert_eq!(tries, 1);

        // A loss that does not heal gives up after a minute.
        let started = tokio::time::Instant::now();
        let r: Result<(), String> =
            through_faults(|| "producer 0: connect".into(), || true, || async { Err(lost()) }).await;
        assert!(r.unwrap_err().starts_with("producer 0: connect: "));
        assert!(started.elapsed() >= Duration::from_secs(60));

        // A channel closed for good is not waited for.
        let started = tokio::time::Instant::now();
        let r: Result<(), String> = through_faults(|| "x: basic.qos".into(), || false, || async { Err(lost()) }).await;
        assert!(r.unwrap_err().starts_with("x: basic.qos: connection lost"));
        assert_eq!(started.elapsed(), Duration::ZERO);
    }
}
