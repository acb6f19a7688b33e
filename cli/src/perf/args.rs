//! Command-line options of `warren perf`, parsed by hand.

use std::time::Duration;

pub const USAGE: &str = "\
usage: warren perf [OPTIONS]

Publishes and consumes through a fresh queue on a RabbitMQ broker, checks that every
confirmed message arrived exactly once, and reports rates, latency, client CPU and
client memory.

  -u, --uri URI          broker (default: $AMQP_URL, else amqp://guest:guest@127.0.0.1:5672/%2f)
  -x, --producers P      publishing tasks, one connection each (default 1)
  -y, --consumers C      consuming tasks, one connection each (default 1)
  -C, --count N          messages to publish in total (default 100000 without --duration)
  -z, --duration SECS    publish for this long (with --count: whichever ends first)
  -s, --size BYTES       body size, at least 16 (default 256)
  -c, --confirm W        publisher confirms, at most W unconfirmed per producer (default 1000; 0 = off)
  -q, --prefetch N       basic.qos prefetch count per consumer (default 1000; 0 = unlimited)
      --ack MODE         each | multiple:N | auto (default each)
      --durable          durable queue
      --quorum           quorum queue (x-queue-type=quorum, durable)
      --persistent       delivery mode 2 (persistent messages)
      --queue NAME       queue name (default: a unique warren-perf-... name); deleted at the end
      --drain-timeout S  after publishing ends, wait at most S seconds for the rest (default 30)
      --allow-nack       nacked or returned messages do not fail the run
      --json             print one JSON object on stdout (the table goes to stderr)
      --quiet            no live line on stderr
  -h, --help             this text

Each body starts with the message's sequence number and publish time (16 bytes).
Client memory is the resident set size (RSS), sampled every second and shown on the
live line. The summary and JSON give it in MiB: rss_start_mib at the first sample (1 s
in), rss_max_mib, rss_end_mib when publishing ends (before any connection closes), and
rss_growth_after_warmup_mib, the end minus the sample at 10 % of the run (the first
sample for runs under 10 s): near 0 on a long run means a flat RSS. Values are null
when unavailable (not Linux, or no sample because the run lasted under 1 s).
Ctrl-C stops publishing and finishes the run (drain, report, delete the queue).
Exit status: 0 ok; 1 a check failed (lost or duplicate messages, nacks or returns
without --allow-nack); 2 bad usage; 3 the run itself failed (connection, channel...).";

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

#[derive(Debug, Clone)]
pub struct Options {
    pub uri: String,
    pub producers: u32,
    pub consumers: u32,
    pub count: Option<u64>,
    pub duration: Option<Duration>,
    pub size: usize,
    pub confirm: u32,
    pub prefetch: u16,
    pub ack: AckMode,
    pub durable: bool,
    pub quorum: bool,
    pub persistent: bool,
    pub queue: Option<String>,
    pub drain_timeout: Duration,
    pub allow_nack: bool,
    pub json: bool,
    pub quiet: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            uri: "amqp://guest:guest@127.0.0.1:5672/%2f".into(),
            producers: 1,
            consumers: 1,
            count: None,
            duration: None,
            size: 256,
            confirm: 1000,
            prefetch: 1000,
            ack: AckMode::Each,
            durable: false,
            quorum: false,
            persistent: false,
            queue: None,
            drain_timeout: Duration::from_secs(30),
            allow_nack: false,
            json: false,
            quiet: false,
        }
    }
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Parsed {
    Run(Options),
    Help,
}

/// Parses the arguments after `perf`. `amqp_url` is `$AMQP_URL`, if set.
pub fn parse(args: &[String], amqp_url: Option<String>) -> Result<Parsed, String> {
    let mut o = Options::default();
    if let Some(url) = amqp_url.filter(|u| !u.is_empty()) {
        o.uri = url;
    }
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        i += 1;
        // `--name=value` or `--name value` / `-n value`.
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (arg, None),
        };
        let mut value = |what: &str| -> Result<String, String> {
            if let Some(v) = inline.clone() {
                return Ok(v);
            }
            let v = args.get(i).ok_or_else(|| format!("{name} needs {what}"))?;
            i += 1;
            Ok(v.clone())
        };
        match name {
            "-h" | "--help" => return Ok(Parsed::Help),
            "-u" | "--uri" => o.uri = value("a URI")?,
            "-x" | "--producers" => o.producers = num(name, &value("a number")?)?,
            "-y" | "--consumers" => o.consumers = num(name, &value("a number")?)?,
            "-C" | "--count" => o.count = Some(num(name, &value("a number")?)?),
            "-z" | "--duration" => o.duration = Some(secs(name, &value("seconds")?)?),
            "-s" | "--size" => o.size = num(name, &value("a number of bytes")?)?,
            "-c" | "--confirm" => o.confirm = num(name, &value("a window size")?)?,
            "-q" | "--prefetch" => o.prefetch = num(name, &value("a number")?)?,
            "--ack" => o.ack = ack_mode(&value("each, multiple:N or auto")?)?,
            "--durable" => o.durable = true,
            "--quorum" => o.quorum = true,
            "--persistent" => o.persistent = true,
            "--queue" => o.queue = Some(value("a queue name")?),
            "--drain-timeout" => o.drain_timeout = secs(name, &value("seconds")?)?,
            "--allow-nack" => o.allow_nack = true,
            "--json" => o.json = true,
            "--quiet" => o.quiet = true,
            _ => return Err(format!("unknown option {arg:?} (try --help)")),
        }
    }
    if o.size < 16 {
        return Err(format!(
            "--size {} is below 16: the body carries a sequence number and a timestamp",
            o.size
        ));
    }
    if o.producers == 0 {
        return Err("--producers must be at least 1".into());
    }
    if o.count == Some(0) {
        return Err("--count must be at least 1".into());
    }
    if let AckMode::Multiple(n) = o.ack {
        if o.prefetch > 0 && n > u32::from(o.prefetch) {
            return Err(format!(
                "--ack multiple:{n} with --prefetch {}: the broker stops at {} unacknowledged messages, so a batch of {n} never completes",
                o.prefetch, o.prefetch
            ));
        }
    }
    if o.count.is_none() && o.duration.is_none() {
        o.count = Some(100_000);
    }
    if let Some(q) = &o.queue {
        if q.is_empty() || q.len() > 255 {
            return Err("--queue must be 1 to 255 bytes".into());
        }
    }
    Ok(Parsed::Run(o))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Options, String> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        match parse(&args, None)? {
            Parsed::Run(o) => Ok(o),
            Parsed::Help => Err("help".into()),
        }
    }

    #[test]
    fn defaults_and_values() {
        let o = run(&[]).unwrap();
        assert_eq!(
            (o.producers, o.consumers, o.count, o.size, o.confirm),
            (1, 1, Some(100_000), 256, 1000)
        );
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
    fn errors() {
        assert!(run(&["--size", "8"]).is_err());
        assert!(run(&["--bogus"]).is_err());
        assert!(run(&["--count"]).is_err());
        assert!(run(&["--ack", "multiple:0"]).is_err());
        assert!(run(&["-x", "0"]).is_err());
        assert!(run(&["--ack", "multiple:500", "--prefetch", "100"]).is_err());
        assert!(run(&["--ack", "multiple:500", "--prefetch", "0"]).is_ok());
        assert_eq!(run(&["--help"]).unwrap_err(), "help");
        let o = parse(&[], Some("amqp://h/v".into())).unwrap();
        assert!(matches!(o, Parsed::Run(o) if o.uri == "amqp://h/v"));
    }
}
