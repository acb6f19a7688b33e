//! Resident memory over a run: samples kept in bounded memory (a run can last hours),
//! reduced at the end to start, maximum, end and growth after warm-up.

/// Samples kept at most; past it, every other one is dropped and the stride doubles.
const KEPT_MAX: usize = 512;

/// One RSS sample per live tick.
#[derive(Debug, Clone)]
pub struct RssSamples {
    /// (seconds into the run, bytes) of every `stride`-th sample, oldest first.
    kept: Vec<(f64, u64)>,
    stride: u64,
    /// Samples recorded so far, kept or not.
    recorded: u64,
    max: u64,
}

impl Default for RssSamples {
    fn default() -> Self {
        RssSamples {
            kept: Vec::with_capacity(KEPT_MAX),
            stride: 1,
            recorded: 0,
            max: 0,
        }
    }
}

impl RssSamples {
    pub fn record(&mut self, at_secs: f64, bytes: u64) {
        self.max = self.max.max(bytes);
        if self.recorded % self.stride == 0 {
            if self.kept.len() == KEPT_MAX {
                let mut i = 0;
                self.kept.retain(|_| {
                    i += 1;
                    i % 2 == 1
                });
                self.stride *= 2;
            }
            self.kept.push((at_secs, bytes));
        }
        self.recorded += 1;
    }

    /// The run's figures, given its length and the RSS at its end.
    pub fn finish(&self, run_secs: f64, end_bytes: Option<u64>) -> RssSummary {
        let warmup_until = run_secs * 0.1;
        let warmup = self
            .kept
            .iter()
            .take_while(|(at, _)| *at <= warmup_until)
            .last()
            .or(self.kept.first())
            .copied();
        RssSummary {
            start: self.kept.first().map(|&(_, b)| b),
            max: (self.recorded > 0).then_some(self.max).max(end_bytes),
            end: end_bytes,
            warmup,
        }
    }
}

/// Resident memory of the client over a run, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RssSummary {
    /// At the first live tick (1 s into the run); `None` if the run ended before it.
    pub start: Option<u64>,
    /// The largest sample, the end included.
    pub max: Option<u64>,
    /// When the first producer finished, before any connection closed.
    pub end: Option<u64>,
    /// (seconds into the run, bytes) of the last sample at or before 10 % of the run,
    /// or of the first tick if none was that early.
    pub warmup: Option<(f64, u64)>,
}

impl RssSummary {
    /// `end` minus `warmup`, in bytes: what a leak adds once buffers and pools are warm.
    pub fn growth_after_warmup(&self) -> Option<i64> {
        let (_, warm) = self.warmup?;
        Some(self.end? as i64 - warm as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_run_measures_from_the_first_tick() {
        let mut s = RssSamples::default();
        for (t, b) in [(1.0, 100), (2.0, 300), (3.0, 200)] {
            s.record(t, b);
        }
        let r = s.finish(3.5, Some(250));
        assert_eq!(r.start, Some(100));
        assert_eq!(r.max, Some(300));
        assert_eq!(r.end, Some(250));
        assert_eq!(r.warmup, Some((1.0, 100)));
        assert_eq!(r.growth_after_warmup(), Some(150));
    }

    #[test]
    fn growth_is_measured_from_ten_percent_of_the_run() {
        let mut s = RssSamples::default();
        for t in 1..=100u64 {
            s.record(t as f64, 1000 + t);
        }
        let r = s.finish(100.5, Some(990));
        assert_eq!(r.warmup, Some((10.0, 1010)));
        assert_eq!(r.growth_after_warmup(), Some(-20));
        assert_eq!((r.start, r.max), (Some(1001), Some(1100)));
    }

    #[test]
    fn no_tick_leaves_only_the_end() {
        let r = RssSamples::default().finish(0.4, Some(7));
        assert_eq!(
            r,
            RssSummary {
                start: None,
                max: Some(7),
                end: Some(7),
                warmup: None
            }
        );
        assert_eq!(r.growth_after_warmup(), None);
    }

    #[test]
    fn hours_of_samples_stay_bounded() {
        let mut s = RssSamples::default();
        let hours = 10 * 3600u64;
        for t in 1..=hours {
            s.record(t as f64, t);
        }
        assert!(s.kept.len() <= KEPT_MAX, "{} samples kept", s.kept.len());
        assert_eq!(s.kept[0], (1.0, 1));
        let r = s.finish(hours as f64, Some(0));
        assert_eq!((r.start, r.max), (Some(1), Some(hours)));
        // The warm-up sample is at most one stride before 10 % of the run.
        let (at, _) = r.warmup.unwrap();
        let stride = s.stride as f64;
        assert!(
            at <= hours as f64 * 0.1 && at > hours as f64 * 0.1 - stride,
            "{at} s, stride {stride}"
        );
    }
}
