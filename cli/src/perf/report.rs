//! What a run prints: the live line, the summary table and the JSON object.

use std::fmt::Write as _;

use super::hist::Hist;
use super::rss::RssSummary;
use super::series::Point;

/// The latency percentiles every output shows: (label, JSON key part, quantile).
pub const PERCENTILES: [(&str, &str, f64); 6] = [
    ("p50", "p50", 0.50),
    ("p75", "p75", 0.75),
    ("p95", "p95", 0.95),
    ("p99", "p99", 0.99),
    ("p99.9", "p999", 0.999),
    ("max", "max", 1.0),
];

/// Everything measured in a run.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub queue: String,
    /// Queues in all (`--queues`).
    pub queues: u32,
    /// `default exchange`, or `TYPE exchange NAME`.
    pub exchange: String,
    /// Copies of each message the queues hold between them (fanout: one per queue).
    pub copies: u64,
    pub producers: u32,
    pub consumers: u32,
    pub producer_channels: u32,
    pub consumer_channels: u32,
    /// `--size` as given: `256`, `256,4096` or `100:200`.
    pub sizes: String,
    pub body: &'static str,
    /// `--rate` and `--consumer-rate` as given.
    pub rate: Option<String>,
    pub consumer_rate: Option<f64>,
    pub scenario: Option<&'static str>,
    pub confirm: u32,
    pub prefetch: u16,
    pub ack: String,
    pub queue_kind: &'static str,
    pub persistent: bool,
    /// basic.publish calls that went out.
    pub published: u64,
    /// Publishes the broker acknowledged (confirm mode).
    pub confirmed: u64,
    pub nacked: u64,
    pub returned: u64,
    /// Publishes whose outcome is unknown (connection lost before the confirm): not lost,
    /// whether they arrived or not.
    pub unknown: u64,
    /// Copies of those unknown-outcome messages consumed by the end of the drain.
    pub unknown_arrived: u64,
    /// Publishes the library sent again after a recovery (`--republish`).
    pub republished: u64,
    /// Recoveries of the run's connections, and the longest (loss to reconnected), seconds.
    pub recoveries: u64,
    pub recovery_max_secs: f64,
    /// The longest gap between two confirms of one publishing channel, seconds.
    pub confirm_gap_max_secs: f64,
    /// Body bytes published.
    pub bytes: u64,
    /// Distinct messages consumed.
    pub consumed: u64,
    /// Deliveries acknowledged (by basic.ack, multiple counted per delivery; all of them in auto mode).
    pub acked: u64,
    /// Messages that should have arrived (confirmed, or sent without confirms) and did not.
    pub lost: u64,
    /// Deliveries of a sequence number already seen: `redelivered + unexplained`.
    pub duplicates: u64,
    /// Duplicates at-least-once delivery explains: flagged redelivered, after the
    /// consumer's recovery, or of a publish its publisher republished.
    pub redelivered: u64,
    /// Of which copies of a publish its publisher republished after a recovery.
    pub redelivered_republished: u64,
    /// Duplicates nothing explains.
    pub unexplained: u64,
    /// Acks and nacks refused as stale (their delivery came before a recovery).
    pub stale_acks: u64,
    /// Deliveries whose body did not carry a valid sequence number.
    pub corrupt: u64,
    /// Deliveries the consumers nacked (`--nack`).
    pub consumer_nacks: u64,
    /// Messages nacked without requeue: dropped or dead-lettered, not expected back.
    pub nack_dropped: u64,
    /// Messages still in the queues at the end (counted when consumers stop early or
    /// there are none).
    pub left_in_queues: u64,
    /// Seconds from the start until the last publish was settled.
    pub publish_secs: f64,
    /// Seconds from the start until the last message was consumed.
    pub consume_secs: f64,
    /// Seconds from the start until consumers subscribed (`--consume-after-publish`; else 0).
    pub consume_start_secs: f64,
    /// Seconds from the start until the end of the drain.
    pub elapsed_secs: f64,
    /// Publish → consume latency in microseconds.
    pub latency_us: Hist,
    /// Publish → confirm latency in microseconds.
    pub confirm_latency_us: Hist,
    /// One point per second.
    pub points: Vec<Point>,
    /// User + system CPU seconds of this process during the run.
    pub cpu_secs: Option<f64>,
    /// Resident memory of this process.
    pub rss: RssSummary,
}

impl Summary {
    pub fn publish_rate(&self) -> f64 {
        rate(self.published, self.publish_secs)
    }
    pub fn consume_rate(&self) -> f64 {
        rate(self.consumed, self.consume_secs - self.consume_start_secs)
    }
    /// Mean body size in bytes.
    pub fn mean_size(&self) -> u64 {
        self.bytes.checked_div(self.published).unwrap_or(0)
    }
    /// Client CPU microseconds per message (published + consumed counted once each).
    pub fn cpu_us_per_msg(&self) -> Option<f64> {
        let msgs = self.published.max(self.consumed);
        self.cpu_secs.filter(|_| msgs > 0).map(|c| c * 1e6 / msgs as f64)
    }

    /// One JSON object on one line.
    pub fn to_json(&self, ok: bool, error: Option<&str>) -> String {
        let mut j = Json::default();
        j.str("queue", &self.queue);
        j.str("queue_type", self.queue_kind);
        j.uint("queues", self.queues.into());
        j.str("exchange", &self.exchange);
        j.uint("copies", self.copies);
        j.uint("producers", self.producers.into());
        j.uint("consumers", self.consumers.into());
        j.uint("producer_channels", self.producer_channels.into());
        j.uint("consumer_channels", self.consumer_channels.into());
        j.uint("size", self.mean_size());
        j.str("sizes", &self.sizes);
        j.str("body", self.body);
        match &self.rate {
            Some(r) => j.str("rate", r),
            None => j.null("rate"),
        }
        j.opt_float("consumer_rate", self.consumer_rate, 1);
        match self.scenario {
            Some(s) => j.str("scenario", s),
            None => j.null("scenario"),
        }
        j.uint("confirm_window", self.confirm.into());
        j.uint("prefetch", self.prefetch.into());
        j.str("ack", &self.ack);
        j.bool("persistent", self.persistent);
        j.uint("published", self.published);
        j.uint("confirmed", self.confirmed);
        j.uint("nacked", self.nacked);
        j.uint("returned", self.returned);
        j.uint("unknown", self.unknown);
        j.uint("unknown_arrived", self.unknown_arrived);
        j.uint("republished", self.republished);
        j.uint("consumed", self.consumed);
        j.uint("acked", self.acked);
        j.uint("stale_acks", self.stale_acks);
        j.uint("lost", self.lost);
        j.uint("duplicates", self.duplicates);
        j.uint("duplicates_redelivered", self.redelivered);
        j.uint("duplicates_republished", self.redelivered_republished);
        j.uint("duplicates_unexplained", self.unexplained);
        j.uint("recoveries", self.recoveries);
        j.float("recovery_max_seconds", self.recovery_max_secs, 3);
        j.float("confirm_gap_max_seconds", self.confirm_gap_max_secs, 3);
        j.uint("corrupt", self.corrupt);
        j.uint("consumer_nacks", self.consumer_nacks);
        j.uint("nack_dropped", self.nack_dropped);
        j.uint("left_in_queues", self.left_in_queues);
        j.uint("bytes", self.bytes);
        j.float("publish_rate", self.publish_rate(), 1);
        j.float("consume_rate", self.consume_rate(), 1);
        for (_, key, q) in PERCENTILES {
            j.uint(&format!("latency_{key}_us"), self.latency_us.quantile(q));
        }
        for (_, key, q) in PERCENTILES {
            j.uint(
                &format!("confirm_latency_{key}_us"),
                self.confirm_latency_us.quantile(q),
            );
        }
        j.opt_float("cpu_seconds", self.cpu_secs, 3);
        j.opt_float("cpu_us_per_msg", self.cpu_us_per_msg(), 3);
        j.opt_float("rss_start_mib", self.rss.start.map(mib), 2);
        j.opt_float("rss_max_mib", self.rss.max.map(mib), 2);
        j.opt_float("rss_end_mib", self.rss.end.map(mib), 2);
        j.opt_float(
            "rss_growth_after_warmup_mib",
            self.rss.growth_after_warmup().map(|b| b as f64 / MIB),
            2,
        );
        j.float("publish_seconds", self.publish_secs, 3);
        j.float("consume_seconds", self.consume_secs, 3);
        j.float("consume_start_seconds", self.consume_start_secs, 3);
        j.float("elapsed_seconds", self.elapsed_secs, 3);
        match error {
            Some(e) => j.str("error", e),
            None => j.null("error"),
        }
        j.bool("ok", ok);
        j.finish()
    }

    /// One line saying what ran.
    pub fn headline(&self) -> String {
        let mut h = String::from("warren perf: ");
        if let Some(s) = self.scenario {
            let _ = write!(h, "scenario {s}, ");
        }
        if self.queues > 1 {
            let _ = write!(h, "{} queues {}-* ", self.queues, self.queue);
        } else {
            let _ = write!(h, "queue {} ", self.queue);
        }
        let _ = write!(
            h,
            "({}{}) via {}, {} producer(s)",
            self.queue_kind,
            if self.persistent { ", persistent" } else { "" },
            self.exchange,
            self.producers
        );
        if self.producer_channels > 1 {
            let _ = write!(h, " x {} channels", self.producer_channels);
        }
        let _ = write!(h, ", {} consumer(s)", self.consumers);
        if self.consumer_channels > 1 {
            let _ = write!(h, " x {} channels", self.consumer_channels);
        }
        let _ = write!(
            h,
            ", {} B bodies ({}), confirm window {}, prefetch {}, ack {}",
            self.sizes, self.body, self.confirm, self.prefetch, self.ack
        );
        if let Some(r) = &self.rate {
            let _ = write!(h, ", rate {r} (msgs/s per channel)");
        }
        if let Some(r) = self.consumer_rate {
            let _ = write!(h, ", consumer rate {r} msgs/s");
        }
        h
    }

    /// The human-readable summary.
    pub fn table(&self, verdict: &str) -> String {
        let mut t = String::new();
        let _ = writeln!(t, "{}", self.headline());
        let row = |t: &mut String, k: &str, v: String| {
            let _ = writeln!(t, "  {k:<22} {v}");
        };
        row(
            &mut t,
            "published",
            format!(
                "{} in {:.3} s ({}/s)",
                self.published,
                self.publish_secs,
                int(self.publish_rate())
            ),
        );
        row(&mut t, "confirmed", self.confirmed.to_string());
        row(
            &mut t,
            "nacked / returned",
            format!("{} / {}", self.nacked, self.returned),
        );
        let mut unknown = format!("{} ({} arrived)", self.unknown, self.unknown_arrived);
        if self.republished > 0 {
            let _ = write!(unknown, ", {} republished", self.republished);
        }
        row(&mut t, "unknown outcome", unknown);
        row(
            &mut t,
            "consumed",
            if self.consume_start_secs > 0.0 {
                format!(
                    "{} from {:.3} s to {:.3} s ({}/s)",
                    self.consumed,
                    self.consume_start_secs,
                    self.consume_secs,
                    int(self.consume_rate())
                )
            } else {
                format!(
                    "{} in {:.3} s ({}/s)",
                    self.consumed,
                    self.consume_secs,
                    int(self.consume_rate())
                )
            },
        );
        row(&mut t, "acked", self.acked.to_string());
        row(
            &mut t,
            "lost / duplicates",
            format!(
                "{} / {} ({} redelivered{}, {} unexplained)",
                self.lost,
                self.duplicates,
                self.redelivered,
                match self.redelivered_republished {
                    0 => String::new(),
                    n => format!(" of which {n} republished"),
                },
                self.unexplained
            ),
        );
        row(
            &mut t,
            "recoveries",
            if self.recoveries > 0 {
                format!("{} (longest {:.3} s)", self.recoveries, self.recovery_max_secs)
            } else {
                "0".into()
            },
        );
        if self.stale_acks > 0 {
            row(&mut t, "stale acks", self.stale_acks.to_string());
        }
        if self.corrupt > 0 {
            row(&mut t, "corrupt bodies", self.corrupt.to_string());
        }
        if self.consumer_nacks > 0 {
            row(
                &mut t,
                "consumer nacks",
                format!("{} ({} dropped, not requeued)", self.consumer_nacks, self.nack_dropped),
            );
        }
        if self.left_in_queues > 0 {
            row(&mut t, "left in queues", self.left_in_queues.to_string());
        }
        let labels: Vec<&str> = PERCENTILES.iter().map(|p| p.0).collect();
        row(&mut t, "latency", labels.join(" / "));
        row(&mut t, "  publish -> consume", percentiles(&self.latency_us));
        if self.confirm_latency_us.count() > 0 {
            row(&mut t, "  publish -> confirm", percentiles(&self.confirm_latency_us));
            row(
                &mut t,
                "longest confirm gap",
                format!("{:.3} s (publishing stalled)", self.confirm_gap_max_secs),
            );
        }
        match (self.cpu_secs, self.cpu_us_per_msg()) {
            (Some(c), Some(per)) => row(&mut t, "client CPU", format!("{c:.2} s ({per:.2} µs/msg)")),
            (Some(c), None) => row(&mut t, "client CPU", format!("{c:.2} s")),
            _ => row(&mut t, "client CPU", "unavailable".into()),
        }
        row(&mut t, "client RSS", rss_row(&self.rss));
        row(&mut t, "elapsed", format!("{:.3} s", self.elapsed_secs));
        row(&mut t, "result", verdict.to_string());
        t
    }
}

/// `start / max / end`, then the growth after warm-up and where it is measured from.
fn rss_row(r: &RssSummary) -> String {
    if r.end.is_none() {
        return "unavailable".into();
    }
    let opt = |b: Option<u64>| b.map_or("-".into(), |b| format!("{:.1}", mib(b)));
    let mut row = format!("start {} / max {} / end {} MiB", opt(r.start), opt(r.max), opt(r.end));
    if let (Some(growth), Some((at, _))) = (r.growth_after_warmup(), r.warmup) {
        let _ = write!(row, " ({:+.1} MiB since {at:.1} s)", growth as f64 / MIB);
    }
    row
}

pub const MIB: f64 = 1024.0 * 1024.0;

pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / MIB
}

fn rate(n: u64, secs: f64) -> f64 {
    if secs > 0.0 { n as f64 / secs } else { 0.0 }
}

pub fn int(v: f64) -> String {
    format!("{:.0}", v)
}

/// p50 / p75 / p95 / p99 / p99.9 / max of a latency histogram.
pub fn percentiles(h: &Hist) -> String {
    PERCENTILES
        .iter()
        .map(|(_, _, q)| dur_us(h.quantile(*q)))
        .collect::<Vec<_>>()
        .join(" / ")
}

/// Microseconds, printed in the unit that fits.
pub fn dur_us(us: u64) -> String {
    match us {
        0..1_000 => format!("{us} µs"),
        1_000..1_000_000 => format!("{:.2} ms", us as f64 / 1e3),
        _ => format!("{:.2} s", us as f64 / 1e6),
    }
}

/// A flat JSON object, written by hand (keys are fixed ASCII; values are escaped).
#[derive(Default)]
pub struct Json(String);

impl Json {
    fn key(&mut self, k: &str) {
        self.0.push(if self.0.is_empty() { '{' } else { ',' });
        self.0.push('"');
        self.0.push_str(k);
        self.0.push_str("\":");
    }
    pub fn uint(&mut self, k: &str, v: u64) {
        self.key(k);
        let _ = write!(self.0, "{v}");
    }
    pub fn bool(&mut self, k: &str, v: bool) {
        self.key(k);
        self.0.push_str(if v { "true" } else { "false" });
    }
    pub fn float(&mut self, k: &str, v: f64, decimals: usize) {
        self.key(k);
        if v.is_finite() {
            let _ = write!(self.0, "{v:.decimals$}");
        } else {
            self.0.push_str("null");
        }
    }
    pub fn null(&mut self, k: &str) {
        self.key(k);
        self.0.push_str("null");
    }
    pub fn opt_float(&mut self, k: &str, v: Option<f64>, decimals: usize) {
        match v {
            Some(v) => self.float(k, v, decimals),
            None => self.null(k),
        }
    }
    pub fn str(&mut self, k: &str, v: &str) {
        self.key(k);
        self.0.push('"');
        for c in v.chars() {
            match c {
                '"' => self.0.push_str("\\\""),
                '\\' => self.0.push_str("\\\\"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(self.0, "\\u{:04x}", c as u32);
                }
                c => self.0.push(c),
            }
        }
        self.0.push('"');
    }
    pub fn finish(mut self) -> String {
        if self.0.is_empty() {
            self.0.push('{');
        }
        self.0.push('}');
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape() {
        let mut s = Summary {
            queue: "q\"1".into(),
            published: 10,
            consumed: 10,
            publish_secs: 2.0,
            ..Default::default()
        };
        s.latency_us.record(100);
        let j = s.to_json(true, None);
        assert!(j.starts_with("{\"queue\":\"q\\\"1\","), "{j}");
        assert!(j.contains("\"published\":10,"));
        assert!(j.contains("\"publish_rate\":5.0,"));
        assert!(j.contains("\"latency_p50_us\":100,"));
        assert!(j.contains("\"latency_p999_us\":100,"));
        assert!(j.contains("\"confirm_latency_p75_us\":0,"));
        assert!(j.contains("\"cpu_seconds\":null,"));
        assert!(j.contains("\"rss_start_mib\":null,"), "{j}");
        s.rss = RssSummary {
            start: Some(10 << 20),
            max: Some(12 << 20),
            end: Some(11 << 20),
            warmup: Some((6.0, (11 << 20) + (1 << 19))),
        };
        let j = s.to_json(true, None);
        assert!(
            j.contains(
                "\"rss_start_mib\":10.00,\"rss_max_mib\":12.00,\"rss_end_mib\":11.00,\"rss_growth_after_warmup_mib\":-0.50,"
            ),
            "{j}"
        );
        assert!(
            s.table("ok")
                .contains("client RSS             start 10.0 / max 12.0 / end 11.0 MiB (-0.5 MiB since 6.0 s)"),
            "{}",
            s.table("ok")
        );
        assert!(j.ends_with("\"error\":null,\"ok\":true}"), "{j}");
        let s = Summary {
            duplicates: 3,
            redelivered: 2,
            unexplained: 1,
            unknown: 4,
            unknown_arrived: 1,
            recoveries: 2,
            recovery_max_secs: 0.25,
            ..s
        };
        let j = s.to_json(false, None);
        assert!(j.contains("\"unknown\":4,\"unknown_arrived\":1,"), "{j}");
        assert!(
            j.contains("\"duplicates\":3,\"duplicates_redelivered\":2,\"duplicates_republished\":0,\"duplicates_unexplained\":1,\"recoveries\":2,\"recovery_max_seconds\":0.250,"),
            "{j}"
        );
        let t = s.table("ok");
        assert!(t.contains("unknown outcome        4 (1 arrived)"), "{t}");
        assert!(
            t.contains("lost / duplicates      0 / 3 (2 redelivered, 1 unexplained)"),
            "{t}"
        );
        assert!(t.contains("recoveries             2 (longest 0.250 s)"), "{t}");
        assert!(!j.contains('\n'));
    }

    #[test]
    fn durations() {
        assert_eq!(dur_us(999), "999 µs");
        assert_eq!(dur_us(1500), "1.50 ms");
        assert_eq!(dur_us(2_500_000), "2.50 s");
    }
}
