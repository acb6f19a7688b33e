//! Several broker addresses per connection (the nodes of a cluster): [`Address`],
//! [`AddressOrder`], and the order in which a connection tries them ([`Addresses`]).
//!
//! The first connect tries each address once, in a *round*; so does every round of a
//! recovery's attempts, one address per attempt. A recovery's first round starts after
//! the address that was just lost (with [`AddressOrder::Shuffled`], the lost one comes
//! last), so that a dead node costs no attempt while another one is there.

use std::fmt;

use crate::rng::Rng;

/// One broker address: host name or IP literal (IPv6 without brackets) and TCP port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    /// Host name or IP address.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl Address {
    /// An address from a host and a port.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Address {
            host: host.into(),
            port,
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl From<(String, u16)> for Address {
    fn from((host, port): (String, u16)) -> Self {
        Address { host, port }
    }
}

impl From<(&str, u16)> for Address {
    fn from((host, port): (&str, u16)) -> Self {
        Address::new(host, port)
    }
}

/// In which order a connection tries its addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AddressOrder {
    /// As listed: every connection prefers the first address. The default.
    #[default]
    InOrder,
    /// A new random order for every round: connections spread over the nodes.
    Shuffled,
}

/// The order of attempts over a list of addresses (never empty).
#[derive(Debug, Clone)]
pub(crate) struct Addresses {
    list: Vec<Address>,
    order: AddressOrder,
    /// The current round: indexes into `list`, the next one at `pos`.
    round: Vec<usize>,
    pos: usize,
    /// The address of the connection now (or last) up.
    current: Option<usize>,
}

impl Addresses {
    /// `list` must not be empty (the configuration's check refuses an empty one).
    pub(crate) fn new(list: Vec<Address>, order: AddressOrder) -> Self {
        Addresses {
            list,
            order,
            round: Vec::new(),
            pos: 0,
            current: None,
        }
    }

    /// How many addresses there are.
    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }

    /// The address to try next; a new round starts when the last one is used up.
    pub(crate) fn next(&mut self, rng: &mut Rng) -> (usize, &Address) {
        if self.pos >= self.round.len() {
            self.round = self.new_round(rng);
            self.pos = 0;
        }
        let i = self.round[self.pos];
        self.pos += 1;
        (i, &self.list[i])
    }

    /// A connection to address `i` is up: the next round (of the next recovery) starts
    /// after it.
    pub(crate) fn connected(&mut self, i: usize) {
        self.current = Some(i);
        self.round.clear();
        self.pos = 0;
    }

    fn new_round(&self, rng: &mut Rng) -> Vec<usize> {
        let n = self.list.len();
        match self.order {
            AddressOrder::InOrder => {
                let start = self.current.map_or(0, |c| (c + 1) % n);
                (start..n).chain(0..start).collect()
            }
            AddressOrder::Shuffled => {
                let mut round: Vec<usize> = (0..n).collect();
                // Fisher-Yates.
                for i in (1..n).rev() {
                    let j = (rng.next_u64() % (i as u64 + 1)) as usize;
                    round.swap(i, j);
                }
                if let Some(c) = self.current
                    && n > 1
                    && round[0] == c
                {
                    round.remove(0);
                    round.push(c);
                }
                round
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(n: u16) -> Vec<Address> {
        (0..n).map(|i| Address::new("h", 5701 + i)).collect()
    }

    fn take(a: &mut Addresses, rng: &mut Rng, k: usize) -> Vec<usize> {
        (0..k).map(|_| a.next(rng).0).collect()
    }

    #[test]
    fn in_order_starts_after_the_lost_address() {
        let mut rng = Rng::seeded();
        let mut a = Addresses::new(list(3), AddressOrder::InOrder);
        assert_eq!(take(&mut a, &mut rng, 4), [0, 1, 2, 0]);
        a.connected(0);
        // Recovery: the lost node 0 is tried last, then the rounds go on in turn.
        assert_eq!(take(&mut a, &mut rng, 5), [1, 2, 0, 1, 2]);
        a.connected(2);
        assert_eq!(take(&mut a, &mut rng, 3), [0, 1, 2]);
    }

    #[test]
    fn one_address_is_always_that_one() {
        let mut rng = Rng::seeded();
        for order in [AddressOrder::InOrder, AddressOrder::Shuffled] {
            let mut a = Addresses::new(list(1), order);
            assert_eq!(take(&mut a, &mut rng, 3), [0, 0, 0]);
            a.connected(0);
            assert_eq!(take(&mut a, &mut rng, 2), [0, 0]);
        }
    }

    #[test]
    fn shuffled_rounds_are_permutations_that_put_the_lost_address_last_and_spread() {
        let mut rng = Rng::seeded();
        let mut firsts = [0usize; 4];
        for _ in 0..400 {
            let mut a = Addresses::new(list(4), AddressOrder::Shuffled);
            let mut round = take(&mut a, &mut rng, 4);
            firsts[round[0]] += 1;
            round.sort_unstable();
            assert_eq!(round, [0, 1, 2, 3]);
            a.connected(2);
            let round = take(&mut a, &mut rng, 4);
            assert_ne!(round[0], 2, "the lost address is not tried first");
            let mut sorted = round.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, [0, 1, 2, 3]);
        }
        // Every address leads some first connects (each about 100 of 400).
        assert!(firsts.iter().all(|&n| n > 40), "{firsts:?}");
    }

    #[test]
    fn display_brackets_ipv6() {
        assert_eq!(Address::new("::1", 5672).to_string(), "[::1]:5672");
        assert_eq!(Address::new("rabbit", 5672).to_string(), "rabbit:5672");
    }
}
