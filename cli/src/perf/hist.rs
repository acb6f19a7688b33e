//! A log-linear latency histogram: exact below 32, then 32 sub-buckets per power of two
//! (relative error under 3.2 %). Recording is one relaxed atomic add, so each consumer
//! records into its own [`AtomicHist`] and the reporter reads snapshots without locks.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;
/// Buckets needed to cover every `u64`.
const BUCKETS: usize = ((64 - SUB_BITS as usize) + 1) * SUB as usize;

fn index(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let high = 63 - v.leading_zeros(); // >= SUB_BITS
    let shift = high - SUB_BITS;
    let sub = (v >> shift) - SUB;
    ((shift as u64 + 1) * SUB + sub) as usize
}

/// The highest value that falls into bucket `i`.
fn upper(i: usize) -> u64 {
    let i = i as u64;
    if i < SUB {
        return i;
    }
    let shift = i / SUB - 1;
    let low = (SUB + i % SUB) << shift;
    low.saturating_add((1u64 << shift) - 1)
}

/// Counts per bucket, plus the exact maximum.
#[derive(Clone)]
pub struct Hist {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Hist {
    fn default() -> Self {
        Self {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }
}

impl std::fmt::Debug for Hist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hist")
            .field("count", &self.total)
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

impl Hist {
    /// Records one value.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn record(&mut self, v: u64) {
        self.counts[index(v)] += 1;
        self.total += 1;
        self.max = self.max.max(v);
    }

    /// Number of recorded values.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The value below or at which a fraction `q` (0..=1) of the recorded values lie,
    /// reported as the top of its bucket (never above the maximum seen); 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return upper(i).min(self.max);
            }
        }
        self.max
    }

    /// The non-empty buckets: (highest value of the bucket, count), lowest first.
    pub fn buckets(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(i, c)| (upper(i).min(self.max), *c))
    }

    /// Adds another histogram's counts.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn merge(&mut self, other: &Hist) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// The values recorded since `earlier` (a previous snapshot of the same source).
    /// The maximum is the top of the highest non-empty bucket.
    pub fn since(&self, earlier: &Hist) -> Hist {
        let mut out = Hist::default();
        for (i, (a, b)) in self.counts.iter().zip(&earlier.counts).enumerate() {
            let c = a.saturating_sub(*b);
            out.counts[i] = c;
            out.total += c;
            if c > 0 {
                out.max = upper(i).min(self.max);
            }
        }
        out
    }
}

/// A histogram that one task records into while others take snapshots.
pub struct AtomicHist {
    counts: Box<[AtomicU64]>,
    max: AtomicU64,
}

impl Default for AtomicHist {
    fn default() -> Self {
        Self {
            counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            max: AtomicU64::new(0),
        }
    }
}

impl AtomicHist {
    /// Records one value.
    #[inline]
    pub fn record(&self, v: u64) {
        self.counts[index(v)].fetch_add(1, Relaxed);
        if v > self.max.load(Relaxed) {
            self.max.fetch_max(v, Relaxed);
        }
    }

    /// Adds the counts so far to `into` (a snapshot merged without a copy).
    pub fn add_to(&self, into: &mut Hist) {
        for (a, c) in into.counts.iter_mut().zip(self.counts.iter()) {
            let c = c.load(Relaxed);
            *a += c;
            into.total += c;
        }
        into.max = into.max.max(self.max.load(Relaxed));
    }

    /// A copy of the counts so far.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn snapshot(&self) -> Hist {
        let counts: Vec<u64> = self.counts.iter().map(|c| c.load(Relaxed)).collect();
        let total = counts.iter().sum();
        Hist {
            counts,
            total,
            max: self.max.load(Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_ordered() {
        let mut prev = 0;
        for v in 0..100_000u64 {
            let i = index(v);
            assert!(i == prev || i == prev + 1, "v={v}");
            assert!(v <= upper(i), "v={v} upper={}", upper(i));
            prev = i;
        }
        assert!(index(u64::MAX) < BUCKETS);
        assert_eq!(upper(index(u64::MAX)), u64::MAX);
    }

    #[test]
    fn quantiles_within_error() {
        let mut h = Hist::default();
        for v in 1..=10_000u64 {
            h.record(v);
        }
        for (q, want) in [(0.5, 5_000.0), (0.99, 9_900.0), (1.0, 10_000.0)] {
            let got = h.quantile(q) as f64;
            assert!((got - want).abs() / want < 0.035, "q={q} got={got}");
        }
        assert_eq!(Hist::default().quantile(0.5), 0);
    }

    #[test]
    fn snapshot_difference() {
        let a = AtomicHist::default();
        a.record(10);
        let s1 = a.snapshot();
        a.record(1000);
        a.record(1000);
        let d = a.snapshot().since(&s1);
        assert_eq!(d.count(), 2);
        assert!(d.quantile(0.5) >= 1000 && d.quantile(0.5) < 1032);
        assert_eq!(d.buckets().map(|(_, c)| c).sum::<u64>(), 2);
        let mut m = s1.clone();
        m.merge(&d);
        assert_eq!(m.count(), 3);
        let mut sum = Hist::default();
        a.add_to(&mut sum);
        a.add_to(&mut sum);
        assert_eq!((sum.count(), sum.quantile(1.0)), (6, 1000));
    }
}
