//! A small deterministic random number generator: body sizes, routing keys and nack
//! decisions, reproducible from a seed without a dependency. The generator is the
//! library's own (`src/rng.rs`, compiled here too: it is not public API).

#[allow(dead_code)] // the library's seeding from the clock is not used here
#[path = "../../../src/rng.rs"]
mod xorshift;

pub struct Rng(xorshift::Rng);

impl Rng {
    /// A generator for task `i` of a given kind (`salt`).
    pub fn new(salt: u64, i: u64) -> Rng {
        let mut r = Rng(xorshift::Rng::from_seed(salt ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15)));
        r.next();
        r
    }

    pub fn next(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.0.unit() <= p
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
