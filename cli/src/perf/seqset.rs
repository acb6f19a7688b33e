//! A concurrent set of sequence numbers: one bit per number, in chunks allocated on first
//! use, so `--duration` runs need no size up front. `insert` says whether the number was
//! already there (a duplicate delivery). The chunk table has two levels, so an empty set
//! costs a few KiB (a fanout run keeps one set per queue).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Bits per chunk (128 KiB of words).
const CHUNK_BITS: u64 = 1 << 20;
const WORDS: usize = (CHUNK_BITS / 64) as usize;
/// Chunks available: 2^34 sequence numbers in all.
const CHUNKS: usize = 1 << 14;
/// Chunks per entry of the top-level table.
const GROUP: usize = 128;

type Chunk = Box<[AtomicU64]>;
/// `GROUP` chunks, each allocated on first use.
type Group = Box<[OnceLock<Chunk>]>;

/// A set of `u64` below 2^34.
pub struct SeqSet {
    groups: Box<[OnceLock<Group>]>,
}

impl Default for SeqSet {
    fn default() -> Self {
        Self {
            groups: (0..CHUNKS / GROUP).map(|_| OnceLock::new()).collect(),
        }
    }
}

impl SeqSet {
    /// The largest sequence number the set can hold, plus one.
    pub const CAPACITY: u64 = CHUNK_BITS * CHUNKS as u64;

    fn chunk(&self, n: usize) -> Option<&OnceLock<Chunk>> {
        let group = self.groups.get(n / GROUP)?;
        Some(&group.get_or_init(|| (0..GROUP).map(|_| OnceLock::new()).collect())[n % GROUP])
    }

    /// Chunk `n` if it was ever written.
    fn chunk_if_any(&self, n: usize) -> Option<&Chunk> {
        self.groups.get(n / GROUP)?.get()?[n % GROUP].get()
    }

    fn word(&self, seq: u64) -> Option<(&AtomicU64, u64)> {
        let chunk = self.chunk((seq / CHUNK_BITS) as usize)?;
        let words = chunk.get_or_init(|| (0..WORDS).map(|_| AtomicU64::new(0)).collect());
        let bit = seq % CHUNK_BITS;
        Some((&words[(bit / 64) as usize], 1u64 << (bit % 64)))
    }

    /// Adds `seq`; `Some(true)` if it was new, `Some(false)` if it was already there,
    /// `None` if it is out of range.
    #[inline]
    pub fn insert(&self, seq: u64) -> Option<bool> {
        let (word, mask) = self.word(seq)?;
        Some(word.fetch_or(mask, Relaxed) & mask == 0)
    }

    /// Whether `seq` is in the set.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn contains(&self, seq: u64) -> bool {
        let Some(chunk) = self.chunk_if_any((seq / CHUNK_BITS) as usize) else {
            return false;
        };
        let bit = seq % CHUNK_BITS;
        chunk[(bit / 64) as usize].load(Relaxed) & (1 << (bit % 64)) != 0
    }

    /// How many numbers are in `self` but not in `other`.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn count_missing_from(&self, other: &SeqSet) -> u64 {
        self.count_missing_from_both(other, None)
    }

    /// How many numbers are in both `self` and `other`.
    pub fn count_in(&self, other: &SeqSet) -> u64 {
        let mut n = 0;
        for c in 0..CHUNKS {
            let (Some(mine), Some(theirs)) = (self.chunk_if_any(c), other.chunk_if_any(c)) else {
                continue;
            };
            for (w, t) in mine.iter().zip(theirs.iter()) {
                n += u64::from((w.load(Relaxed) & t.load(Relaxed)).count_ones());
            }
        }
        n
    }

    /// How many numbers are in `self` but in neither `a` nor `b`.
    pub fn count_missing_from_both(&self, a: &SeqSet, b: Option<&SeqSet>) -> u64 {
        let mut n = 0;
        for c in 0..CHUNKS {
            let Some(mine) = self.chunk_if_any(c) else { continue };
            let (a, b) = (a.chunk_if_any(c), b.and_then(|b| b.chunk_if_any(c)));
            for (i, w) in mine.iter().enumerate() {
                let t = a.map_or(0, |t| t[i].load(Relaxed)) | b.map_or(0, |t| t[i].load(Relaxed));
                n += u64::from((w.load(Relaxed) & !t).count_ones());
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_duplicates_and_missing() {
        let published = SeqSet::default();
        let seen = SeqSet::default();
        for s in [0, 1, 63, 64, CHUNK_BITS - 1, CHUNK_BITS, 5 * CHUNK_BITS + 7] {
            assert_eq!(published.insert(s), Some(true));
        }
        assert_eq!(published.insert(64), Some(false));
        assert_eq!(published.insert(SeqSet::CAPACITY), None);
        for s in [0, 1, 63, CHUNK_BITS] {
            seen.insert(s);
        }
        assert!(seen.contains(63) && !seen.contains(64));
        assert_eq!(published.count_missing_from(&seen), 3);
        assert_eq!(seen.count_missing_from(&published), 0);
        let other = SeqSet::default();
        other.insert(64);
        other.insert(5 * CHUNK_BITS + 7);
        assert_eq!(published.count_missing_from_both(&seen, Some(&other)), 1);
        assert_eq!(published.count_in(&seen), 4);
        assert_eq!(published.count_in(&other), 2);
        assert_eq!(other.count_in(&seen), 0);
        assert_eq!(SeqSet::default().count_in(&published), 0);
    }
}
