//! Command-line options of `warren perf`, parsed by hand.
//!
//! Options apply in order: a later one overrides an earlier one, and `--scenario NAME`
//! sets the fields of its preset at the point where it appears (so options after it
//! override the preset, options before it are overridden by it).

use std::path::PathBuf;
use std::time::Duration;

use super::body::{BodyFormat, Sizes};
use super::pace::RateSchedule;
use super::scenario;

pub const USAGE: &str = "\
usage: warren perf [OPTIONS]

Publishes and consumes through fresh queues on a RabbitMQ broker, checks that every
confirmed message arrived exactly once, and reports rates, latency, client CPU and
client memory. Short options follow RabbitMQ's PerfTest where it has the same option.

Load:
  -h, --uri URI          broker (default: $AMQP_URL, else amqp://guest:guest@127.0.0.1:5672/%2f);
                         -h alone (or --help) prints this text. Repeat it, or give a comma list
                         (amqp://a:5672,amqp://b:5672), for several nodes of a cluster: connections
                         are spread over them in turn, and each recovers to the others when its own
                         node goes away
  -x, --producers P      producer connections (default 1)
  -y, --consumers C      consumer connections (default 1)
  -X, --producer-channels N   publishing channels per producer connection, one task each (default 1)
  -Y, --consumer-channels N   consuming channels per consumer connection, one task each (default 1)
  -C, --count N          messages to publish in total (default 100000 without --duration)
      --pmessages N      messages per publishing channel (PerfTest's -C): sets --count
  -D, --cmessages N      each consuming channel stops after N messages (the rest is counted in the queues)
  -z, --duration, --time SECS   publish for this long (with --count: whichever ends first)
  -r, --rate SPEC        messages/s per publishing channel, paced by a token bucket on a fine
                         clock (sub-millisecond, bursts of at most 10 ms): R, or a schedule
                         R1:T1,R2:T2,... (T in s, or with s/ms/m) that repeats until the run ends
                         (without --count/--duration the run lasts one pass); a rate of 0 pauses
      --variable-rate R:T  one step of the schedule (PerfTest's -vr); repeatable
  -R, --consumer-rate R  deliveries/s per consuming channel (token bucket, as --rate)
  -L, --consumer-latency MICROS   simulated work per delivery, before its ack
      --consume-after-publish     consumers start only once publishing is over (a backlog, then a drain)
      --read-coalescing MICROS   how long a connection's task gathers a burst of reads before
                         it hands them out (the library's read_coalescing; default 1000; 0 = off)
  -c, --confirm W        publisher confirms, at most W unconfirmed per channel (default 1000; 0 = off)
  -q, --prefetch, --qos N   basic.qos prefetch count per consuming channel (default 1000; 0 = unlimited)
      --ack MODE         each | multiple:N | auto (default each)
  -A, --multi-ack-every N   --ack multiple:N
  -a, --autoack          --ack auto
      --nack RATIO       nack this fraction (0..1) of deliveries, with requeue (they come back;
                         only the ack counts); --nack-requeue false drops or dead-letters them
                         instead (they are counted as nack-dropped, not lost)
      --nack-requeue BOOL  true (default) or false

Faults (a lost connection recovers; the run goes on):
      --republish        publishes whose confirm was pending when their connection was lost are
                         sent again after it recovers (the library's republish mode: at least once);
                         without it they are counted as unknown
      --exactly-once-check  strict mode, for runs without faults: any duplicate, and any publish
                         whose outcome is unknown, fails the run

Topology:
  -u, --queue NAME       queue name (default: a unique warren-perf-... name); with --queues N the
                         queues are NAME-0 ... NAME-(N-1)
      --queues N         queues (default 1): publishing channel i sends to queue i mod N (or a
                         random one with -K and the default exchange), consuming channel j reads queue j mod N
  -e, --exchange NAME    publish through this exchange (declared unless it is amq.* or --predeclared;
                         deleted at the end if declared here); default: the default exchange
  -t, --type TYPE        direct | fanout | topic | headers (default direct)
  -k, --routing-key K    binding and routing key (default warren-perf); headers exchanges bind on
                         the header warren-perf-key = K
  -K, --random-routing-key   each message goes to one queue picked at random: queue i is bound
                         with K.i and a message is published with K.<random i>
                         (without -K, every queue bound to the exchange gets every message)
      --queue-args k=v,...   queue arguments (integers, true/false, else strings), e.g.
                         x-max-length=1000,x-overflow=reject-publish
      --durable          durable exchange (and queues; queues that are not exclusive
                         always are: RabbitMQ 4.3 refuses transient non-exclusive queues)
      --quorum, -qq      quorum queues (x-queue-type=quorum, durable)
      --exclusive, -E    exclusive queues, declared by the consumer connection that reads them
      --auto-delete, -ad [BOOL]  auto-delete queues (deleted when their last consumer goes)
  -p, --predeclared      use existing queues (and exchange, and bindings): declare nothing,
                         delete nothing; the queues must be empty at the start
  -f, --flag F           persistent | mandatory (PerfTest's flags; repeatable)
      --persistent       delivery mode 2 (persistent messages)
      --mandatory        publish with mandatory set: unroutable messages come back as returns (the default)
      --no-mandatory     unroutable messages are dropped by the broker (and counted lost)
      --priority P       message priority property 0-255 (pair with --queue-args x-max-priority=N)

Bodies:
  -s, --size SPEC        body size in bytes: N, a list N1,N2,... (one picked at random per
                         message), or a range MIN:MAX (default 256); at least 16 (12 for perftest bodies)
      --body FORMAT      warren (default): 8-byte sequence + 8-byte time in ns since the run started;
                         perftest: PerfTest's 4-byte sequence + 8-byte System.nanoTime (CLOCK_MONOTONIC ns);
                         perftest-millis: 4-byte sequence + 8-byte epoch milliseconds (PerfTest's --use-millis)
      --use-millis, -ms  --body perftest-millis

Output:
      --json             print one JSON object on stdout (the table goes to stderr)
      --time-series FILE one JSON object per second (rates, latency percentiles, unconfirmed,
                         RSS, CPU), one per line
      --report FILE      a self-contained HTML report (inline SVG, no script): rates and latency
                         percentiles over time, latency histograms
      --quiet            no live line on stderr
      --drain-timeout S  after publishing ends, wait at most S seconds for the rest (default 30):
                         confirms still out then (a broker that blocked publishing confirms
                         nothing) are counted as unknown, and the consumers stop
      --allow-nack       nacked or returned publishes do not fail the run
      --scenario NAME    a preset (see below); options after it override it
      --help             this text

Scenarios (RabbitMQ's standard ones, shortened to run in under a minute here; -z changes the length):
SCENARIOS
Latency is publish -> consume and publish -> confirm, with p50, p75, p95, p99, p99.9 and max.
With --rate a confirm's latency is taken when it arrives; flat out (no --rate) when the
confirm window is full and the oldest publish is awaited, which flat out is nearly always.
Client memory is the resident set size (RSS), sampled every second: rss_start_mib at the
first sample (1 s in), rss_max_mib, rss_end_mib when publishing ends (before any
connection closes), and rss_growth_after_warmup_mib, the end minus the sample at 10 % of
the run (the first sample for runs under 10 s). Values are null when unavailable.
Ctrl-C stops publishing and finishes the run (drain, report, delete what was declared).
Faults: a lost connection recovers (the library's recovery, on the other --uri nodes in
turn), and the run goes on. The count stays exact:
- lost: confirmed by the broker (or, without confirms, published) and never consumed;
- unknown: the connection was lost before the confirm; such a message may or may not be in
  the queue, so one that never arrived is counted here, not as lost (the summary says
  how many of them came through by the end of the drain);
- duplicates, split in two: redelivered (the copy came with redelivered=true, or after its
  consumer's connection recovered, or its publisher republished it after a recovery: all
  expected with at-least-once delivery) and unexplained (none of these: a bug).
The summary also gives the recoveries, how long the longest one took, and the longest gap
between two confirms of one publishing channel (how long publishing stalled).
Exit status: 0 ok; 1 a check failed (lost messages, unexplained duplicates, corrupt bodies,
nacks or returns without --allow-nack; with --exactly-once-check also any duplicate or unknown
outcome); 2 bad usage; 3 the run itself failed (connection, channel...).";

/// The help text with the scenario list filled in.
pub fn usage() -> String {
    USAGE.replace("SCENARIOS", &scenario::list())
}

/// How consumers acknowledge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckMode {
    /// basic.ack for every delivery.
    Each,
    /// basic.ack with multiple = true every N deliveries.
    Multiple(u32),
    /// no-ack consume: the broker considers a message acknowledged once sent.
    Auto,
}

impl AckMode {
    pub fn label(self) -> String {
        match self {
            AckMode::Each => "each".into(),
            AckMode::Multiple(n) => format!("multiple:{n}"),
            AckMode::Auto => "auto".into(),
        }
    }
}

/// The type of `--exchange`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExchangeType {
    Direct,
    Fanout,
    Topic,
    Headers,
}

impl ExchangeType {
    pub fn name(self) -> &'static str {
        match self {
            ExchangeType::Direct => "direct",
            ExchangeType::Fanout => "fanout",
            ExchangeType::Topic => "topic",
            ExchangeType::Headers => "headers",
        }
    }
}

/// A value of `--queue-args`.
#[derive(Debug, Clone, PartialEq)]
pub enum ArgValue {
    Int(i64),
    Bool(bool),
    Str(String),
}

#[derive(Debug, Clone)]
pub struct Options {
    /// `--uri`: one or more brokers (nodes of one cluster), never empty.
    pub uris: Vec<String>,
    pub producers: u32,
    pub consumers: u32,
    pub producer_channels: u32,
    pub consumer_channels: u32,
    pub count: Option<u64>,
    pub pmessages: Option<u64>,
    pub cmessages: Option<u64>,
    pub duration: Option<Duration>,
    pub sizes: Sizes,
    pub body: BodyFormat,
    pub confirm: u32,
    pub prefetch: u16,
    pub ack: AckMode,
    pub nack: f64,
    pub nack_requeue: bool,
    pub rate: Option<RateSchedule>,
    pub consumer_rate: Option<f64>,
    pub consumer_latency: Duration,
    pub consume_after_publish: bool,
    pub queue: Option<String>,
    pub queues: u32,
    pub exchange: Option<String>,
    pub exchange_type: ExchangeType,
    pub routing_key: Option<String>,
    pub random_routing_key: bool,
    pub queue_args: Vec<(String, ArgValue)>,
    pub durable: bool,
    pub quorum: bool,
    pub exclusive: bool,
    pub auto_delete: bool,
    pub predeclared: bool,
    pub persistent: bool,
    pub mandatory: bool,
    pub priority: Option<u8>,
    pub drain_timeout: Duration,
    /// `--read-coalescing`: the library's `read_coalescing`; `None` turns it off.
    pub read_coalescing: Option<Duration>,
    pub allow_nack: bool,
    pub json: bool,
    pub quiet: bool,
    pub time_series: Option<PathBuf>,
    pub report: Option<PathBuf>,
    pub scenario: Option<&'static str>,
    /// `--republish`: the library republishes unconfirmed publishes after a recovery.
    pub republish: bool,
    /// `--exactly-once-check`: any duplicate or unknown outcome fails the run.
    pub exactly_once: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            uris: vec!["amqp://guest:guest@127.0.0.1:5672/%2f".into()],
            producers: 1,
            consumers: 1,
            producer_channels: 1,
            consumer_channels: 1,
            count: None,
            pmessages: None,
            cmessages: None,
            duration: None,
            sizes: Sizes::Fixed(256),
            body: BodyFormat::Warren,
            confirm: 1000,
            prefetch: 1000,
            ack: AckMode::Each,
            nack: 0.0,
            nack_requeue: true,
            rate: None,
            consumer_rate: None,
            consumer_latency: Duration::ZERO,
            consume_after_publish: false,
            queue: None,
            queues: 1,
            exchange: None,
            exchange_type: ExchangeType::Direct,
            routing_key: None,
            random_routing_key: false,
            queue_args: Vec::new(),
            durable: false,
            quorum: false,
            exclusive: false,
            auto_delete: false,
            predeclared: false,
            persistent: false,
            mandatory: true,
            priority: None,
            drain_timeout: Duration::from_secs(30),
            read_coalescing: warren::client::ConnectionConfig::default().read_coalescing,
            allow_nack: false,
            json: false,
            quiet: false,
            time_series: None,
            report: None,
            scenario: None,
            republish: false,
            exactly_once: false,
        }
    }
}

impl Options {
    /// Publishing channels in all.
    pub fn publishers(&self) -> u32 {
        self.producers * self.producer_channels
    }
    /// Consuming channels in all.
    pub fn subscribers(&self) -> u32 {
        self.consumers * self.consumer_channels
    }
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Parsed {
    Run(Box<Options>),
    Help,
}

/// Parses the arguments after `perf`. `amqp_url` is `$AMQP_URL`, if set.
pub fn parse(args: &[String], amqp_url: Option<String>) -> Result<Parsed, String> {
    let mut o = Options::default();
    if let Some(url) = amqp_url.filter(|u| !u.is_empty()) {
        o.uris = split_uris(&url);
    }
    // The first --uri replaces the default; the next ones add nodes.
    let mut uri_given = false;
    let mut variable_rate: Vec<String> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        i += 1;
        // `--name=value` or `--name value` / `-n value`.
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (arg, None),
        };
        let next = args.get(i).map(String::as_str);
        let mut value = |what: &str| -> Result<String, String> {
            if let Some(v) = inline.clone() {
                return Ok(v);
            }
            let v = args.get(i).ok_or_else(|| format!("{name} needs {what}"))?;
            i += 1;
            Ok(v.clone())
        };
        match name {
            // PerfTest's -h is the URI; alone, it is help.
            "-h" | "--uri" if name == "--uri" || next.is_some_and(is_uri) => {
                let uris = split_uris(&value("a URI")?);
                if !uri_given {
                    o.uris.clear();
                    uri_given = true;
                }
                o.uris.extend(uris);
            }
            "-h" | "--help" | "-?" => return Ok(Parsed::Help),
            "-x" | "--producers" => o.producers = num(name, &value("a number")?)?,
            "-y" | "--consumers" => o.consumers = num(name, &value("a number")?)?,
            "-X" | "--producer-channels" | "--producer-channel-count" => {
                o.producer_channels = num(name, &value("a number")?)?
            }
            "-Y" | "--consumer-channels" | "--consumer-channel-count" => {
                o.consumer_channels = num(name, &value("a number")?)?
            }
            "-C" | "--count" => {
                o.count = Some(num(name, &value("a number")?)?);
                o.pmessages = None;
            }
            "--pmessages" => o.pmessages = Some(num(name, &value("a number")?)?),
            "-D" | "--cmessages" => o.cmessages = Some(num(name, &value("a number")?)?),
            "-z" | "--duration" | "--time" => o.duration = Some(secs(name, &value("seconds")?)?),
            "-s" | "--size" => o.sizes = Sizes::parse(&value("a size")?).map_err(|e| format!("{name}: {e}"))?,
            "--body" => o.body = BodyFormat::parse(&value("a body format")?).map_err(|e| format!("{name}: {e}"))?,
            "--use-millis" | "-ms" => o.body = BodyFormat::PerfTestMillis,
            "-c" | "--confirm" => o.confirm = num(name, &value("a window size")?)?,
            "-q" | "--prefetch" | "--qos" => o.prefetch = num(name, &value("a number")?)?,
            "--ack" => o.ack = ack_mode(&value("each, multiple:N or auto")?)?,
            "-A" | "--multi-ack-every" => {
                let n: u32 = num(name, &value("a number")?)?;
                o.ack = if n <= 1 { AckMode::Each } else { AckMode::Multiple(n) };
            }
            "-a" | "--autoack" => o.ack = AckMode::Auto,
            "--nack" => {
                let v = value("a ratio")?;
                o.nack = match v.parse::<f64>() {
                    Ok(r) if (0.0..=1.0).contains(&r) => r,
                    _ => return Err(format!("--nack {v:?}: expected a ratio from 0 to 1")),
                };
            }
            "--nack-requeue" => o.nack_requeue = boolean(name, &value("true or false")?)?,
            "-r" | "--rate" => {
                o.rate = Some(RateSchedule::parse(&value("a rate")?).map_err(|e| format!("{name}: {e}"))?);
                variable_rate.clear();
            }
            "--variable-rate" | "-vr" => variable_rate.push(value("RATE:SECONDS")?),
            "-R" | "--consumer-rate" => {
                let v = value("a rate")?;
                o.consumer_rate = match v.parse::<f64>() {
                    Ok(r) if r > 0.0 && r.is_finite() => Some(r),
                    _ => {
                        return Err(format!(
                            "{name} {v:?}: expected a positive number of messages per second"
                        ));
                    }
                };
            }
            "-L" | "--consumer-latency" => {
                o.consumer_latency = Duration::from_micros(num(name, &value("microseconds")?)?)
            }
            "--consume-after-publish" => o.consume_after_publish = true,
            "-u" | "--queue" => o.queue = Some(value("a queue name")?),
            "--queues" => o.queues = num(name, &value("a number")?)?,
            "-e" | "--exchange" => o.exchange = Some(value("an exchange name")?),
            "-t" | "--type" => o.exchange_type = exchange_type(&value("an exchange type")?)?,
            "-k" | "--routing-key" => o.routing_key = Some(value("a routing key")?),
            "-K" | "--random-routing-key" => o.random_routing_key = true,
            "--queue-args" | "-qa" => o.queue_args = queue_args(&value("k=v,...")?)?,
            "--durable" => o.durable = true,
            "--quorum" | "-qq" | "--quorum-queue" => o.quorum = true,
            "--exclusive" | "-E" => o.exclusive = true,
            "--auto-delete" | "-ad" => {
                // PerfTest's -ad takes true/false; ours may stand alone.
                o.auto_delete = match (inline.as_deref(), next) {
                    (Some(v), _) => boolean(name, v)?,
                    (None, Some(v @ ("true" | "false"))) => {
                        i += 1;
                        v == "true"
                    }
                    _ => true,
                };
            }
            "-p" | "--predeclared" => o.predeclared = true,
            "-f" | "--flag" => match value("persistent or mandatory")?.as_str() {
                "persistent" => o.persistent = true,
                "mandatory" => o.mandatory = true,
                other => return Err(format!("{name} {other:?}: expected persistent or mandatory")),
            },
            "--persistent" => o.persistent = true,
            "--mandatory" => o.mandatory = true,
            "--no-mandatory" => o.mandatory = false,
            "--priority" => o.priority = Some(num(name, &value("a priority 0-255")?)?),
            "--drain-timeout" => o.drain_timeout = secs(name, &value("seconds")?)?,
            "--read-coalescing" => {
                let micros: u64 = num(name, &value("microseconds")?)?;
                o.read_coalescing = (micros > 0).then(|| Duration::from_micros(micros));
            }
            "--allow-nack" => o.allow_nack = true,
            "--republish" => o.republish = true,
            "--exactly-once-check" => o.exactly_once = true,
            "--json" => o.json = true,
            "--quiet" => o.quiet = true,
            "--time-series" => o.time_series = Some(value("a file")?.into()),
            "--report" => o.report = Some(value("a file")?.into()),
            "--scenario" => {
                let v = value("a scenario name")?;
                let s = scenario::find(&v)
                    .ok_or_else(|| format!("--scenario {v:?}: expected one of {}", scenario::names().join(", ")))?;
                (s.apply)(&mut o);
                variable_rate.clear();
                o.scenario = Some(s.name);
            }
            _ => return Err(format!("unknown option {arg:?} (try --help)")),
        }
    }
    if !variable_rate.is_empty() {
        o.rate = Some(RateSchedule::parse(&variable_rate.join(",")).map_err(|e| format!("--variable-rate: {e}"))?);
    }
    validate(&mut o)?;
    Ok(Parsed::Run(Box::new(o)))
}

/// PerfTest's `-h` takes a URI; alone it is help.
fn is_uri(v: &str) -> bool {
    v.starts_with("amqp://") || v.starts_with("amqps://")
}

/// `amqp://a,amqp://b` into its URIs. A comma splits only where an `amqp://` or `amqps://`
/// follows, so a comma inside one URI (a password, a query) stays.
fn split_uris(v: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for piece in v.split(',') {
        match out.last_mut() {
            Some(last) if !is_uri(piece.trim_start()) => {
                last.push(',');
                last.push_str(piece);
            }
            _ => out.push(piece.trim().to_string()),
        }
    }
    out.retain(|u| !u.is_empty());
    out
}

/// Checks the combination of options; fills in what follows from them.
fn validate(o: &mut Options) -> Result<(), String> {
    if o.uris.is_empty() {
        return Err("--uri needs at least one URI".into());
    }
    // `--queue-args x-queue-type=quorum` is a quorum queue, as `--quorum` is (durable).
    if o.queue_args
        .iter()
        .any(|(k, v)| k == "x-queue-type" && *v == ArgValue::Str("quorum".into()))
    {
        o.quorum = true;
    }
    let min = o.body.header_len();
    if o.sizes.min() < min {
        return Err(format!(
            "--size {} is below {min}: the body carries a sequence number and a timestamp",
            o.sizes.min()
        ));
    }
    if o.producers == 0 {
        return Err("--producers must be at least 1: the lost/duplicate check needs our own numbered messages".into());
    }
    if o.producer_channels == 0 || o.consumer_channels == 0 {
        return Err("--producer-channels and --consumer-channels must be at least 1".into());
    }
    if o.queues == 0 {
        return Err("--queues must be at least 1".into());
    }
    if let Some(p) = o.pmessages {
        o.count = Some(p.saturating_mul(u64::from(o.publishers())));
    }
    if o.count == Some(0) {
        return Err("--count must be at least 1".into());
    }
    if o.cmessages == Some(0) {
        return Err("--cmessages must be at least 1".into());
    }
    if let AckMode::Multiple(n) = o.ack {
        if o.prefetch > 0 && n > u32::from(o.prefetch) {
            return Err(format!(
                "--ack multiple:{n} with --prefetch {}: the broker stops at {} unacknowledged messages, so a batch of {n} never completes",
                o.prefetch, o.prefetch
            ));
        }
    }
    if o.nack > 0.0 && o.ack == AckMode::Auto {
        return Err("--nack with --ack auto: auto-acknowledged deliveries cannot be nacked".into());
    }
    if o.nack >= 1.0 && o.nack_requeue {
        return Err("--nack 1 with requeue: every delivery comes back forever and the run never drains".into());
    }
    if o.count.is_none() && o.duration.is_none() {
        o.count = match &o.rate {
            // A rate schedule with steps runs for one pass of it.
            Some(r) if r.period().is_some() => None,
            _ => Some(100_000),
        };
        if o.count.is_none() {
            o.duration = o.rate.as_ref().and_then(RateSchedule::period);
        }
    }
    if let Some(limit) = o.body.seq_limit() {
        if o.count.is_some_and(|c| c > limit) {
            return Err(format!(
                "--count above {limit} with --body {}: its sequence number has 4 bytes",
                o.body.name()
            ));
        }
    }
    if let Some(q) = &o.queue {
        if q.is_empty() || q.len() > 250 {
            return Err("--queue must be 1 to 250 bytes".into());
        }
    }
    if let Some(e) = &o.exchange {
        if e.len() > 255 {
            return Err("--exchange must be at most 255 bytes".into());
        }
        if e.is_empty() {
            o.exchange = None;
        }
    }
    if o.exchange.is_none() && o.exchange_type != ExchangeType::Direct {
        return Err(format!(
            "--type {} needs --exchange NAME: the default exchange is direct",
            o.exchange_type.name()
        ));
    }
    if o.exchange.is_none() && o.routing_key.is_some() {
        return Err(
            "--routing-key needs --exchange NAME: through the default exchange the routing key is the queue name"
                .into(),
        );
    }
    if o.random_routing_key && o.exchange_type == ExchangeType::Fanout {
        return Err(
            "--random-routing-key with a fanout exchange: fanout ignores routing keys, every queue gets every message"
                .into(),
        );
    }
    if o.consumers > 0 && o.subscribers() < o.queues && !o.exclusive {
        return Err(format!(
            "{} consuming channel(s) for {} queues: every queue needs a consumer for the lost/duplicate check (add consumers, or -y 0 to count what stays in the queues)",
            o.subscribers(),
            o.queues
        ));
    }
    if o.exclusive {
        if o.predeclared {
            return Err(
                "--exclusive with --predeclared: an exclusive queue belongs to the connection that declared it".into(),
            );
        }
        if o.consumers == 0 {
            return Err("--exclusive needs consumers: an exclusive queue is declared by the consumer connection that reads it, and vanishes with it".into());
        }
        if o.consumers > o.queues {
            return Err(format!(
                "--exclusive with {} consumer connections and {} queue(s): each connection declares and reads its own queues, so it needs at least one",
                o.consumers, o.queues
            ));
        }
        let per_conn = o.queues.div_ceil(o.consumers);
        if o.consumer_channels < per_conn {
            return Err(format!(
                "--exclusive: a consumer connection owns up to {per_conn} queues but has {} channel(s); every queue needs a consumer (raise -Y)",
                o.consumer_channels
            ));
        }
        if o.cmessages.is_some() {
            return Err("--cmessages with --exclusive: what consumers leave behind is counted in the queues, and an exclusive queue vanishes with its consumer".into());
        }
    }
    if o.cmessages.is_some() && o.ack == AckMode::Auto {
        return Err("--cmessages with --ack auto: deliveries the broker pushed past the N-th are gone (no-ack), so the check would count them lost".into());
    }
    if o.auto_delete && o.cmessages.is_some() {
        return Err("--cmessages with --auto-delete: what consumers leave behind is counted in the queues, and an auto-delete queue vanishes with its last consumer".into());
    }
    if o.quorum && (o.exclusive || o.auto_delete) {
        return Err("--quorum with --exclusive or --auto-delete: quorum queues can be neither".into());
    }
    if o.predeclared && o.queue.is_none() {
        return Err("--predeclared needs --queue NAME (the existing queue, or NAME-0... with --queues)".into());
    }
    if o.consume_after_publish && o.consumers == 0 {
        return Err("--consume-after-publish needs consumers".into());
    }
    Ok(())
}

fn num<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, String> {
    let cleaned: String = v.chars().filter(|c| *c != '_').collect();
    cleaned
        .parse()
        .map_err(|_| format!("{name}: {v:?} is not a valid number here"))
}

fn secs(name: &str, v: &str) -> Result<Duration, String> {
    let s: f64 = v
        .parse()
        .map_err(|_| format!("{name}: {v:?} is not a number of seconds"))?;
    if !(s > 0.0 && s < 1e9) {
        return Err(format!("{name}: {v:?} must be positive"));
    }
    Ok(Duration::from_secs_f64(s))
}

fn boolean(name: &str, v: &str) -> Result<bool, String> {
    match v {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("{name} {v:?}: expected true or false")),
    }
}

fn ack_mode(v: &str) -> Result<AckMode, String> {
    match v {
        "each" => Ok(AckMode::Each),
        "auto" => Ok(AckMode::Auto),
        _ => match v.strip_prefix("multiple:") {
            Some(n) => match n.parse::<u32>() {
                Ok(n) if n >= 1 => Ok(AckMode::Multiple(n)),
                _ => Err(format!("--ack {v:?}: N in multiple:N must be a positive number")),
            },
            None => Err(format!("--ack {v:?}: expected each, multiple:N or auto")),
        },
    }
}

fn exchange_type(v: &str) -> Result<ExchangeType, String> {
    match v {
        "direct" => Ok(ExchangeType::Direct),
        "fanout" => Ok(ExchangeType::Fanout),
        "topic" => Ok(ExchangeType::Topic),
        "headers" => Ok(ExchangeType::Headers),
        _ => Err(format!("--type {v:?}: expected direct, fanout, topic or headers")),
    }
}

/// `k=v,k=v`: integers become longs, true/false booleans, the rest strings.
fn queue_args(v: &str) -> Result<Vec<(String, ArgValue)>, String> {
    let mut out = Vec::new();
    for pair in v.split(',').filter(|p| !p.is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| format!("--queue-args {pair:?}: expected key=value"))?;
        if k.is_empty() || k.len() > 255 {
            return Err(format!("--queue-args {pair:?}: the key must be 1 to 255 bytes"));
        }
        let value = match (v.parse::<i64>(), v) {
            (Ok(n), _) => ArgValue::Int(n),
            (_, "true") => ArgValue::Bool(true),
            (_, "false") => ArgValue::Bool(false),
            _ => ArgValue::Str(v.to_string()),
        };
        out.push((k.to_string(), value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Options, String> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        match parse(&args, None)? {
            Parsed::Run(o) => Ok(*o),
            Parsed::Help => Err("help".into()),
        }
    }

    #[test]
    fn defaults_and_values() {
        let o = run(&[]).unwrap();
        assert_eq!(
            (o.producers, o.consumers, o.count, o.sizes.min(), o.confirm),
            (1, 1, Some(100_000), 256, 1000)
        );
        assert!(o.mandatory);
        let o = run(&[
            "-x",
            "2",
            "--consumers=3",
            "--count",
            "1_000",
            "--ack",
            "multiple:50",
            "--quorum",
            "-c",
            "0",
        ])
        .unwrap();
        assert_eq!((o.producers, o.consumers, o.count, o.confirm), (2, 3, Some(1000), 0));
        assert_eq!(o.ack, AckMode::Multiple(50));
        assert!(o.quorum);
        let o = run(&["--duration", "1.5"]).unwrap();
        assert_eq!((o.count, o.duration), (None, Some(Duration::from_millis(1500))));
    }

    #[test]
    fn read_coalescing_is_the_libraries_unless_set() {
        let library = warren::client::ConnectionConfig::default().read_coalescing;
        assert_eq!(run(&[]).unwrap().read_coalescing, library);
        let o = run(&["--read-coalescing", "250"]).unwrap();
        assert_eq!(o.read_coalescing, Some(Duration::from_micros(250)));
        assert_eq!(run(&["--read-coalescing", "0"]).unwrap().read_coalescing, None);
        assert!(
            run(&["--read-coalescing", "soon"])
                .unwrap_err()
                .contains("--read-coalescing")
        );
    }

    #[test]
    fn perftest_names() {
        let o = run(&[
            "-h",
            "amqp://h/v",
            "-r",
            "500",
            "-R",
            "200",
            "-e",
            "ex",
            "-t",
            "topic",
            "-k",
            "a.b",
            "-u",
            "q",
            "-q",
            "50",
            "-c",
            "10",
            "-A",
            "25",
            "-L",
            "300",
            "-f",
            "persistent",
            "-f",
            "mandatory",
            "-s",
            "100",
            "-z",
            "3",
            "-C",
            "700",
            "-D",
            "700",
            "--queue-args",
            "x-max-length=10,x-queue-mode=lazy,x-single-active-consumer=true",
            "--multi-ack-every",
            "20",
        ])
        .unwrap();
        assert_eq!(o.uris, ["amqp://h/v"]);
        assert_eq!(o.rate.unwrap().label(), "500");
        assert_eq!(o.consumer_rate, Some(200.0));
        assert_eq!(
            (o.exchange.as_deref(), o.exchange_type),
            (Some("ex"), ExchangeType::Topic)
        );
        assert_eq!((o.routing_key.as_deref(), o.queue.as_deref()), (Some("a.b"), Some("q")));
        assert_eq!((o.prefetch, o.confirm, o.ack), (50, 10, AckMode::Multiple(20)));
        assert_eq!(o.consumer_latency, Duration::from_micros(300));
        assert!(o.persistent && o.mandatory);
        assert_eq!(o.sizes.min(), 100);
        assert_eq!(
            (o.duration, o.count, o.cmessages),
            (Some(Duration::from_secs(3)), Some(700), Some(700))
        );
        assert_eq!(
            o.queue_args,
            vec![
                ("x-max-length".into(), ArgValue::Int(10)),
                ("x-queue-mode".into(), ArgValue::Str("lazy".into())),
                ("x-single-active-consumer".into(), ArgValue::Bool(true)),
            ]
        );
        let o = run(&["-a", "-ad", "false", "-qq", "-x", "2", "-X", "3", "--pmessages", "10"]).unwrap();
        assert_eq!(o.ack, AckMode::Auto);
        assert!(!o.auto_delete && o.quorum);
        assert_eq!(o.count, Some(60));
        assert!(run(&["-ad", "--count", "5"]).unwrap().auto_delete);
        assert_eq!(run(&["-h"]).unwrap_err(), "help");
    }

    #[test]
    fn rates_schedule_and_duration() {
        let o = run(&["--rate", "1000:2s,0:500ms,3000:1"]).unwrap();
        assert_eq!(o.duration, Some(Duration::from_millis(3500)));
        assert_eq!(o.count, None);
        let o = run(&["-vr", "100:1", "-vr", "200:2", "-z", "10"]).unwrap();
        assert_eq!(o.rate.unwrap().label(), "100:1s,200:2s");
        assert!(run(&["--rate", "0"]).is_err());
        assert!(run(&["--rate", "abc"]).is_err());
    }

    #[test]
    fn errors() {
        assert!(run(&["--size", "8"]).is_err());
        assert!(run(&["--size", "12", "--body", "perftest"]).is_ok());
        assert!(run(&["--bogus"]).is_err());
        assert!(run(&["--count"]).is_err());
        assert!(run(&["--ack", "multiple:0"]).is_err());
        assert!(run(&["-x", "0"]).is_err());
        assert!(run(&["--ack", "multiple:500", "--prefetch", "100"]).is_err());
        assert!(run(&["--ack", "multiple:500", "--prefetch", "0"]).is_ok());
        assert_eq!(run(&["--help"]).unwrap_err(), "help");
        let o = parse(&[], Some("amqp://h/v".into())).unwrap();
        assert!(matches!(o, Parsed::Run(o) if o.uris == ["amqp://h/v"]));
        // Combinations the lost/duplicate check cannot follow say why.
        for bad in [
            &["--nack", "0.5", "--ack", "auto"][..],
            &["--nack", "1"],
            &["--queues", "3", "-y", "2"],
            &["--type", "fanout"],
            &["-k", "x"],
            &["-e", "x", "-t", "fanout", "-K"],
            &["--exclusive", "-y", "0"],
            &["--exclusive", "--queues", "4", "-y", "2"],
            &["--exclusive", "--queues", "1", "-y", "2", "-Y", "2"],
            &["-D", "10", "--auto-delete"],
            &["--predeclared"],
            &["--quorum", "--auto-delete"],
            &["--body", "perftest", "--count", "5000000000"],
        ] {
            let e = run(bad).unwrap_err();
            assert!(e.len() > 20, "{bad:?}: {e}");
        }
        assert!(run(&["--exclusive", "--queues", "4", "-y", "2", "-Y", "2"]).is_ok());
        assert!(run(&["--queues", "3", "-y", "0"]).is_ok());
    }

    #[test]
    fn several_uris_and_fault_options() {
        let a = "amqp://guest:guest@127.0.0.1:5701/%2f";
        let b = "amqp://guest:guest@127.0.0.1:5702/%2f";
        let c = "amqps://u:p,w@127.0.0.1:5703/v?heartbeat=5";
        let o = run(&["--uri", a, "-h", &format!("{b},{c}")]).unwrap();
        assert_eq!(o.uris, [a, b, c], "repeatable, comma lists, a comma inside a URI stays");
        let args: Vec<String> = ["--uri", a].iter().map(|s| s.to_string()).collect();
        let Parsed::Run(o) = parse(&args, Some(format!("{b},{c}"))).unwrap() else {
            panic!("help")
        };
        assert_eq!(o.uris, [a], "--uri replaces $AMQP_URL's list");
        let Parsed::Run(o) = parse(&[], Some(format!("{b}, {c}"))).unwrap() else {
            panic!("help")
        };
        assert_eq!(o.uris, [b, c], "$AMQP_URL may be a list too");
        assert!(run(&["--uri", ""]).unwrap_err().contains("at least one URI"));
        let o = run(&[]).unwrap();
        assert!(!o.republish && !o.exactly_once);
        let o = run(&["--republish", "--exactly-once-check"]).unwrap();
        assert!(o.republish && o.exactly_once);
        let o = run(&["--queue-args", "x-queue-type=quorum"]).unwrap();
        assert!(o.quorum, "a quorum queue by its argument is durable, as --quorum");
    }

    #[test]
    fn scenario_then_overrides() {
        let o = run(&["--producers", "7", "--scenario", "fanout", "-z", "2"]).unwrap();
        assert_eq!(o.scenario, Some("fanout"));
        assert_eq!(o.producers, 1, "the scenario overrides what came before it");
        assert_eq!(
            o.duration,
            Some(Duration::from_secs(2)),
            "later options override the scenario"
        );
        assert!(run(&["--scenario", "nope"]).unwrap_err().contains("flat-out"));
        let o = run(&["-vr", "100:1", "--scenario", "latency"]).unwrap();
        assert_eq!(
            o.rate.unwrap().label(),
            "2000",
            "the preset's rate, not the earlier -vr"
        );
    }
}
