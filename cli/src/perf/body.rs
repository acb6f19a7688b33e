//! Message bodies: their size (`--size`), and the header that makes each one checkable
//! (`--body`): a sequence number and a publish time.
//!
//! - `warren`: 8-byte sequence number, 8-byte nanoseconds since the run started (both
//!   big-endian; one clock for the whole process);
//! - `perftest`: RabbitMQ PerfTest's layout, a 4-byte sequence number and an 8-byte
//!   `System.nanoTime()`, which on Linux is CLOCK_MONOTONIC in nanoseconds: a PerfTest
//!   consumer on this host reads our latency, and we read its;
//! - `perftest-millis`: 4-byte sequence number, 8-byte milliseconds since the Unix epoch
//!   (PerfTest's `--use-millis`), comparable across hosts with synchronised clocks.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};

use super::rng::Rng;

/// The largest body `--size` accepts.
const MAX_SIZE: usize = 64 << 20;

/// Body sizes: one, a list to pick from at random, or a range.
#[derive(Debug, Clone, PartialEq)]
pub enum Sizes {
    Fixed(usize),
    List(Vec<usize>),
    Range(usize, usize),
}

impl Sizes {
    /// `N`, `N1,N2,...` or `MIN:MAX`.
    pub fn parse(v: &str) -> Result<Sizes, String> {
        let n = |s: &str| -> Result<usize, String> {
            let cleaned: String = s.trim().chars().filter(|c| *c != '_').collect();
            match cleaned.parse::<usize>() {
                Ok(n) if n <= MAX_SIZE => Ok(n),
                Ok(_) => Err(format!("{s:?} is above the limit of {MAX_SIZE} bytes")),
                Err(_) => Err(format!("{s:?} is not a number of bytes")),
            }
        };
        if let Some((lo, hi)) = v.split_once(':') {
            let (lo, hi) = (n(lo)?, n(hi)?);
            if lo > hi {
                return Err(format!("{v:?}: MIN is above MAX"));
            }
            return Ok(if lo == hi {
                Sizes::Fixed(lo)
            } else {
                Sizes::Range(lo, hi)
            });
        }
        let list = v.split(',').map(n).collect::<Result<Vec<_>, _>>()?;
        Ok(match list.as_slice() {
            [one] => Sizes::Fixed(*one),
            _ => Sizes::List(list),
        })
    }

    pub fn min(&self) -> usize {
        match self {
            Sizes::Fixed(n) => *n,
            Sizes::List(l) => l.iter().copied().min().unwrap_or(0),
            Sizes::Range(lo, _) => *lo,
        }
    }

    /// As given: `256`, `256,4096` or `100:1000`.
    pub fn label(&self) -> String {
        match self {
            Sizes::Fixed(n) => n.to_string(),
            Sizes::List(l) => l.iter().map(usize::to_string).collect::<Vec<_>>().join(","),
            Sizes::Range(lo, hi) => format!("{lo}:{hi}"),
        }
    }

    /// The size of the next body.
    pub fn pick(&self, rng: &mut Rng) -> usize {
        match self {
            Sizes::Fixed(n) => *n,
            Sizes::List(l) => l[rng.below(l.len() as u64) as usize],
            Sizes::Range(lo, hi) => lo + rng.below((hi - lo + 1) as u64) as usize,
        }
    }
}

/// The layout of a body's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    Warren,
    PerfTest,
    PerfTestMillis,
}

impl BodyFormat {
    pub fn parse(v: &str) -> Result<BodyFormat, String> {
        match v {
            "warren" => Ok(BodyFormat::Warren),
            "perftest" => Ok(BodyFormat::PerfTest),
            "perftest-millis" => Ok(BodyFormat::PerfTestMillis),
            _ => Err(format!("{v:?}: expected warren, perftest or perftest-millis")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            BodyFormat::Warren => "warren",
            BodyFormat::PerfTest => "perftest",
            BodyFormat::PerfTestMillis => "perftest-millis",
        }
    }

    pub fn header_len(self) -> usize {
        match self {
            BodyFormat::Warren => 16,
            BodyFormat::PerfTest | BodyFormat::PerfTestMillis => 12,
        }
    }

    /// The sequence numbers the header can carry, if limited.
    pub fn seq_limit(self) -> Option<u64> {
        match self {
            BodyFormat::Warren => None,
            // PerfTest reads a Java int: stay non-negative.
            BodyFormat::PerfTest | BodyFormat::PerfTestMillis => Some(1 << 31),
        }
    }
}

/// The run's clock, in the units each body format writes.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    pub start: Instant,
    /// CLOCK_MONOTONIC at `start`, in ns (Linux: read from `Instant`'s Debug output).
    monotonic_at_start: Option<u64>,
    /// Unix time at `start`, in ns.
    epoch_at_start: u64,
}

impl Clock {
    pub fn new() -> Clock {
        let start = Instant::now();
        let epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Clock {
            start,
            monotonic_at_start: monotonic_ns(&start),
            epoch_at_start: epoch,
        }
    }

    /// Nanoseconds since the run started.
    #[inline]
    pub fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Why `format` cannot be written here, if it cannot.
    pub fn check(&self, format: BodyFormat) -> Result<(), String> {
        match (format, self.monotonic_at_start) {
            (BodyFormat::PerfTest, None) => Err(
                "--body perftest needs CLOCK_MONOTONIC, which this platform's Instant does not show; use --body perftest-millis"
                    .into(),
            ),
            _ => Ok(()),
        }
    }

    fn stamp(&self, format: BodyFormat, now_ns: u64) -> u64 {
        match format {
            BodyFormat::Warren => now_ns,
            BodyFormat::PerfTest => self.monotonic_at_start.unwrap_or(0) + now_ns,
            BodyFormat::PerfTestMillis => (self.epoch_at_start + now_ns) / 1_000_000,
        }
    }

    /// Microseconds from a body's stamp to `now_ns`.
    pub fn latency_us(&self, format: BodyFormat, stamp: u64, now_ns: u64) -> u64 {
        match format {
            BodyFormat::PerfTestMillis => self.stamp(format, now_ns).saturating_sub(stamp) * 1000,
            _ => self.stamp(format, now_ns).saturating_sub(stamp) / 1000,
        }
    }
}

/// CLOCK_MONOTONIC of an `Instant`, from its Debug output (`Instant { tv_sec: .., tv_nsec: .. }`
/// on Linux), so that no `unsafe` call to `clock_gettime` is needed.
fn monotonic_ns(t: &Instant) -> Option<u64> {
    let text = format!("{t:?}");
    let field = |name: &str| -> Option<u64> {
        let rest = &text[text.find(name)? + name.len()..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    };
    if !cfg!(target_os = "linux") {
        return None;
    }
    Some(field("tv_sec: ")? * 1_000_000_000 + field("tv_nsec: ")?)
}

/// A body of `size` bytes: the header, then filler. Bodies are cut from a shared arena,
/// so a publish costs no allocation of its own.
pub fn write(arena: &mut BytesMut, format: BodyFormat, clock: &Clock, size: usize, seq: u64, now_ns: u64) -> Bytes {
    if arena.capacity() < size {
        *arena = BytesMut::with_capacity(size.max(1).saturating_mul(256).clamp(size, 4 << 20));
    }
    let stamp = clock.stamp(format, now_ns);
    match format {
        BodyFormat::Warren => arena.put_u64(seq),
        BodyFormat::PerfTest | BodyFormat::PerfTestMillis => arena.put_u32(seq as u32),
    }
    arena.put_u64(stamp);
    arena.put_bytes(0xA5, size - format.header_len());
    arena.split().freeze()
}

/// Sequence number and stamp from a body written by [`write()`].
pub fn read(format: BodyFormat, body: &[u8]) -> Option<(u64, u64)> {
    let u64_at = |at: usize| Some(u64::from_be_bytes(body.get(at..at + 8)?.try_into().ok()?));
    match format {
        BodyFormat::Warren => Some((u64_at(0)?, u64_at(8)?)),
        BodyFormat::PerfTest | BodyFormat::PerfTestMillis => {
            let seq = u32::from_be_bytes(body.get(0..4)?.try_into().ok()?);
            Some((u64::from(seq), u64_at(4)?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_round_trip() {
        let clock = Clock::new();
        let mut arena = BytesMut::new();
        let a = write(&mut arena, BodyFormat::Warren, &clock, 256, 7, 99);
        let b = write(&mut arena, BodyFormat::Warren, &clock, 16, 8, 100);
        assert_eq!((a.len(), b.len()), (256, 16));
        assert_eq!(read(BodyFormat::Warren, &a), Some((7, 99)));
        assert_eq!(read(BodyFormat::Warren, &b), Some((8, 100)));
        assert_eq!(read(BodyFormat::Warren, &a[..15]), None);
    }

    #[test]
    fn perftest_layout() {
        let clock = Clock::new();
        clock.check(BodyFormat::PerfTest).expect("Linux shows CLOCK_MONOTONIC");
        let mut arena = BytesMut::new();
        let b = write(&mut arena, BodyFormat::PerfTest, &clock, 12, 0x0102_0304, 5_000_000);
        assert_eq!(&b[..4], &[1, 2, 3, 4]);
        let (seq, stamp) = read(BodyFormat::PerfTest, &b).unwrap();
        assert_eq!(seq, 0x0102_0304);
        // CLOCK_MONOTONIC is the time since boot: close to /proc/uptime (which counts suspend too).
        let uptime: f64 = std::fs::read_to_string("/proc/uptime")
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(stamp as f64 / 1e9 <= uptime + 1.0, "{stamp} ns vs uptime {uptime} s");
        assert_eq!(clock.latency_us(BodyFormat::PerfTest, stamp, 7_000_000), 2_000);
        let m = write(&mut arena, BodyFormat::PerfTestMillis, &clock, 20, 9, 0);
        let (_, ms) = read(BodyFormat::PerfTestMillis, &m).unwrap();
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        assert!(now_ms.abs_diff(ms) < 5_000, "{ms} ms since the epoch, now {now_ms}");
        assert_eq!(clock.latency_us(BodyFormat::PerfTestMillis, ms, 3_000_000), 3_000);
    }

    #[test]
    fn sizes() {
        assert_eq!(Sizes::parse("256").unwrap(), Sizes::Fixed(256));
        assert_eq!(Sizes::parse("16,4_096").unwrap(), Sizes::List(vec![16, 4096]));
        assert_eq!(Sizes::parse("100:200").unwrap(), Sizes::Range(100, 200));
        assert!(Sizes::parse("200:100").is_err());
        assert!(Sizes::parse("x").is_err());
        assert!(Sizes::parse("999999999").is_err());
        let mut rng = Rng::new(0, 0);
        let s = Sizes::parse("100:103").unwrap();
        let picks: Vec<usize> = (0..200).map(|_| s.pick(&mut rng)).collect();
        assert!(picks.iter().all(|p| (100..=103).contains(p)));
        assert!(picks.contains(&100) && picks.contains(&103));
        assert_eq!((s.min(), s.label()), (100, "100:103".to_string()));
    }
}
