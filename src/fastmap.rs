//! A fast hash map for the small maps of the state machine and the connection task,
//! keyed by channel numbers, publish sequence numbers and consumer tags. The keys come
//! from this client and its broker, and their number is bounded by what the client
//! opened, so flooding attacks do not apply; SipHash (the std default) cost hundreds of
//! instructions per delivery.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

/// A `HashMap` with [`FastHasher`].
pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// `map.get(key)`, without hashing `key` when the map holds one entry: a channel's
/// consumers, looked up for every delivery, are nearly always one.
#[inline]
pub(crate) fn get_sole<'a, K: Eq + Hash, V>(map: &'a FastMap<K, V>, key: &K) -> Option<&'a V> {
    if map.len() == 1 {
        map.iter().next().filter(|(k, _)| *k == key).map(|(_, v)| v)
    } else {
        map.get(key)
    }
}

/// [`get_sole`], mutable.
#[inline]
pub(crate) fn get_sole_mut<'a, K: Eq + Hash, V>(map: &'a mut FastMap<K, V>, key: &K) -> Option<&'a mut V> {
    if map.len() == 1 {
        map.iter_mut().next().filter(|(k, _)| *k == key).map(|(_, v)| v)
    } else {
        map.get_mut(key)
    }
}

/// Multiply-rotate hashing, one 64-bit word at a time (the FxHash scheme).
#[derive(Default, Clone, Copy)]
pub(crate) struct FastHasher(u64);

const K: u64 = 0xf135_7aea_2e62_a9c5;

impl FastHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(26) ^ word).wrapping_mul(K);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i.into());
    }

    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.add(i.into());
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(i.into());
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // hashbrown takes its control byte from the top bits: fold the low bits up.
        self.0.rotate_left(26)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_stay_distinct_and_findable() {
        let mut m: FastMap<u64, u64> = FastMap::default();
        for i in 0..10_000u64 {
            m.insert(i, i * 2);
        }
        assert!((0..10_000u64).all(|i| m.get(&i) == Some(&(i * 2))));
        let mut s: FastMap<String, usize> = FastMap::default();
        for i in 0..1000 {
            s.insert(format!("amq.ctag-{i}"), i);
        }
        assert!((0..1000).all(|i| s.get(&format!("amq.ctag-{i}")) == Some(&i)));
    }

    #[test]
    fn sole_lookups_agree_with_get_at_every_size() {
        let mut m: FastMap<String, usize> = FastMap::default();
        let missing = "amq.ctag-none".to_string();
        assert_eq!(get_sole(&m, &missing), None);
        for n in 0..3 {
            m.insert(format!("amq.ctag-{n}"), n);
            for i in 0..=n {
                let key = format!("amq.ctag-{i}");
                assert_eq!(get_sole(&m, &key), Some(&i));
                *get_sole_mut(&mut m, &key).unwrap() += 10;
                assert_eq!(m[&key], i + 10);
                *get_sole_mut(&mut m, &key).unwrap() -= 10;
            }
            assert_eq!(get_sole(&m, &missing), None);
            assert!(get_sole_mut(&mut m, &missing).is_none());
        }
    }
}
