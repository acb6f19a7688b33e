//! One point per second of the run: the live line, the `--time-series` file (one JSON
//! object per line) and the charts of the `--report` page are all made from it.

use std::fmt::Write as _;

use super::hist::Hist;
use super::report::{Json, PERCENTILES, dur_us, int, mib};

/// Latency percentiles of one second, in microseconds (as [`PERCENTILES`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Percentiles {
    pub count: u64,
    pub values: [u64; 6],
}

impl Percentiles {
    pub fn of(h: &Hist) -> Percentiles {
        let mut values = [0; 6];
        for (v, (_, _, q)) in values.iter_mut().zip(PERCENTILES) {
            *v = h.quantile(q);
        }
        Percentiles {
            count: h.count(),
            values,
        }
    }
}

/// The run's state at one tick.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Point {
    /// Seconds since the start.
    pub at_secs: f64,
    /// Totals so far.
    pub published: u64,
    pub confirmed: u64,
    pub consumed: u64,
    /// Per second over the last interval.
    pub publish_rate: f64,
    pub confirm_rate: f64,
    pub consume_rate: f64,
    /// Publishes awaiting their confirm.
    pub unconfirmed: u64,
    /// Publish → consume latency over the last interval.
    pub consume_latency: Percentiles,
    /// Publish → confirm latency over the last interval.
    pub confirm_latency: Percentiles,
    pub rss_bytes: Option<u64>,
    /// CPU time over the interval, in % of one core.
    pub cpu_percent: Option<f64>,
    /// Totals so far: publishes whose outcome is unknown, recoveries of the run's connections.
    pub unknown: u64,
    pub recoveries: u64,
}

impl Point {
    /// The live line on stderr.
    pub fn line(&self, confirms: bool) -> String {
        let mut l = format!("[{:>6.1}s] pub {:>8}/s", self.at_secs, int(self.publish_rate));
        if confirms {
            let _ = write!(l, "  conf {:>8}/s", int(self.confirm_rate));
        }
        let _ = write!(l, "  cons {:>8}/s", int(self.consume_rate));
        if confirms {
            let _ = write!(l, "  unconfirmed {:>6}", self.unconfirmed);
        }
        let c = &self.consume_latency;
        if c.count > 0 {
            let _ = write!(l, "  lat p50 {} p99 {}", dur_us(c.values[0]), dur_us(c.values[3]));
        }
        if self.recoveries > 0 || self.unknown > 0 {
            let _ = write!(l, "  recoveries {}  unknown {}", self.recoveries, self.unknown);
        }
        if let Some(rss) = self.rss_bytes {
            let _ = write!(l, "  rss {:.1} MiB", mib(rss));
        }
        if let Some(cpu) = self.cpu_percent {
            let _ = write!(l, "  cpu {cpu:.0}%");
        }
        l
    }

    /// One line of `--time-series`.
    pub fn to_json(&self) -> String {
        let mut j = Json::default();
        j.float("t", self.at_secs, 3);
        j.float("publish_rate", self.publish_rate, 1);
        j.float("confirm_rate", self.confirm_rate, 1);
        j.float("consume_rate", self.consume_rate, 1);
        j.uint("published", self.published);
        j.uint("confirmed", self.confirmed);
        j.uint("consumed", self.consumed);
        j.uint("unconfirmed", self.unconfirmed);
        j.uint("unknown", self.unknown);
        j.uint("recoveries", self.recoveries);
        for (prefix, p) in [
            ("latency", &self.consume_latency),
            ("confirm_latency", &self.confirm_latency),
        ] {
            j.uint(&format!("{prefix}_count"), p.count);
            for ((_, key, _), v) in PERCENTILES.iter().zip(p.values) {
                j.uint(&format!("{prefix}_{key}_us"), v);
            }
        }
        j.opt_float("rss_mib", self.rss_bytes.map(mib), 2);
        j.opt_float("cpu_percent", self.cpu_percent, 1);
        j.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_line() {
        let mut h = Hist::default();
        for v in [10, 20, 30] {
            h.record(v);
        }
        let p = Point {
            at_secs: 2.0,
            publish_rate: 1000.0,
            consume_latency: Percentiles::of(&h),
            rss_bytes: Some(3 << 20),
            ..Default::default()
        };
        let j = p.to_json();
        assert!(j.starts_with("{\"t\":2.000,\"publish_rate\":1000.0,"), "{j}");
        assert!(j.contains("\"latency_count\":3,\"latency_p50_us\":20,"), "{j}");
        assert!(j.contains("\"latency_max_us\":30,\"confirm_latency_count\":0,"), "{j}");
        assert!(j.ends_with("\"rss_mib\":3.00,\"cpu_percent\":null}"), "{j}");
        assert!(p.line(true).contains("lat p50 20 µs p99 30 µs"));
        assert!(!p.line(true).contains("recoveries"), "only once something happened");
        let p = Point {
            recoveries: 2,
            unknown: 5,
            ..p
        };
        assert!(p.line(true).contains("recoveries 2  unknown 5"), "{}", p.line(true));
        assert!(p.to_json().contains("\"unknown\":5,\"recoveries\":2,"));
    }
}
