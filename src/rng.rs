//! A small pseudo-random generator: backoff jitter, generated message-id prefixes. Not
//! for anything that needs unpredictability. (`warren perf` compiles this file too, for
//! its reproducible body sizes, routing keys and nacks.)

/// A small xorshift generator for backoff jitter (no cryptographic use).
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn seeded() -> Rng {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9E37_79B9, |d| d.as_nanos() as u64);
        let addr = &nanos as *const u64 as u64;
        Rng::from_seed(nanos ^ addr.rotate_left(32))
    }

    /// A generator that always gives the same numbers for the same `seed`.
    pub(crate) fn from_seed(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}
