//! A small deterministic random number generator (xorshift64*): body sizes, routing keys
//! and nack decisions, reproducible from a seed without a dependency.

pub struct Rng(u64);

impl Rng {
    /// A generator for task `i` of a given kind (`salt`).
    pub fn new(salt: u64, i: u64) -> Rng {
        let mut r = Rng((salt ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1);
        r.next();
        r
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads_and_ratios() {
        let mut r = Rng::new(1, 2);
        let mut counts = [0u32; 4];
        let mut yes = 0;
        for _ in 0..40_000 {
            counts[r.below(4) as usize] += 1;
            yes += u32::from(r.chance(0.25));
        }
        assert!(counts.iter().all(|&c| (9_000..11_000).contains(&c)), "{counts:?}");
        assert!((9_000..11_000).contains(&yes), "{yes}");
        assert!(!Rng::new(3, 4).chance(0.0));
    }
}
