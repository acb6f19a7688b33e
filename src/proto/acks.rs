//! Deliveries waiting for the application's settle, per channel: the one answer to
//! "can this tag still be acked?".

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::{ChannelId, DeliveryTag};
use crate::error::Error;

/// How a delivery is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    /// `basic.ack`; `multiple`: and every earlier outstanding delivery of the channel.
    Ack {
        /// Settle every earlier outstanding delivery too.
        multiple: bool,
    },
    /// `basic.nack`.
    Nack {
        /// Settle every earlier outstanding delivery too.
        multiple: bool,
        /// Requeue instead of dropping or dead-lettering.
        requeue: bool,
    },
    /// `basic.reject` (one delivery).
    Reject {
        /// Requeue instead of dropping or dead-lettering.
        requeue: bool,
    },
}

impl Settle {
    /// True when it settles every earlier outstanding delivery too.
    pub fn is_multiple(self) -> bool {
        matches!(
            self,
            Settle::Ack { multiple: true } | Settle::Nack { multiple: true, .. }
        )
    }
}

/// The outstanding deliveries of one channel, shared by the state machine and the
/// handles that settle them, so that a settle is checked where it is made, without a
/// round trip to the connection task: [`claim`](Self::claim) answers at once, and
/// [`Connection::send_claimed`](super::Connection::send_claimed) sends it later, in the
/// order the connection writes.
///
/// A claimed delivery stays in the ledger until its frame is written: an ack that
/// coalesces into `multiple` (see [`Connection::ack`](super::Connection::ack)) may cover
/// only deliveries whose settles are already written, so it needs to see the claims
/// still on their way.
///
/// Its size is bounded by what the server delivers and the application has not settled
/// yet: the prefetch (`basic.qos`) the application sets.
#[derive(Debug)]
pub struct Outstanding {
    channel: ChannelId,
    ledger: Mutex<Ledger>,
}

#[derive(Debug)]
struct Ledger {
    /// The connection generation whose tags are outstanding.
    generation: u32,
    /// False once the channel or its connection ended: every tag is stale.
    live: bool,
    /// Ascending tags, oldest first.
    tags: VecDeque<Entry>,
    /// Claims made by [`claim_queued`](Outstanding::claim_queued) that the connection
    /// task has not taken yet, in the order they were made.
    queued: Vec<Claimed>,
}

#[derive(Debug)]
struct Entry {
    tag: u64,
    /// Its settle is claimed but not yet written.
    claimed: bool,
    /// When it arrived, if the state machine was told the time.
    at: Option<Instant>,
}

/// A settle the ledger accepted; only [`Outstanding::claim`] makes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claimed {
    pub(super) tag: DeliveryTag,
    pub(super) how: Settle,
}

impl Claimed {
    /// The delivery it settles.
    pub fn tag(&self) -> DeliveryTag {
        self.tag
    }

    /// How.
    pub fn how(&self) -> Settle {
        self.how
    }
}

impl Outstanding {
    pub(crate) fn new(channel: ChannelId, generation: u32) -> Self {
        Outstanding {
            channel,
            ledger: Mutex::new(Ledger {
                generation,
                live: true,
                tags: VecDeque::new(),
                queued: Vec::new(),
            }),
        }
    }

    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Claims the settle of `tag`: accepted when the delivery is outstanding and
    /// nobody claimed it before. Refused, nothing claimed: [`Error::StaleDelivery`] for
    /// a tag of another connection generation or a channel that ended since;
    /// [`Error::UnknownDeliveryTag`] for a tag settled before (by this handle, a clone,
    /// [`Channel::basic_ack`](crate::Channel::basic_ack), a `multiple` settle or a
    /// `basic.recover`) or received with no-ack. RabbitMQ would close the channel with
    /// 406 PRECONDITION_FAILED for such a tag, even with `multiple`.
    pub fn claim(&self, tag: DeliveryTag, how: Settle) -> Result<Claimed, Error> {
        self.check_channel(tag)?;
        self.ledger().claim(tag, how)
    }

    /// [`claim`](Self::claim), and the claim waits in the ledger for the connection
    /// task, which writes it ([`Connection::send_queued`](super::Connection::send_queued)): one lock per
    /// settle, and no command. `Ok(true)` when the queue was empty, so the task has no
    /// reason yet to look here: the caller tells it.
    pub(crate) fn claim_queued(&self, tag: DeliveryTag, how: Settle) -> Result<bool, Error> {
        self.check_channel(tag)?;
        let mut ledger = self.ledger();
        let claimed = ledger.claim(tag, how)?;
        ledger.queued.push(claimed);
        Ok(ledger.queued.len() == 1)
    }

    /// Moves the queued claims to `into`, in the order they were made.
    #[cfg(test)]
    pub(crate) fn take_queued(&self, into: &mut Vec<Claimed>) {
        into.append(&mut self.ledger().queued);
    }

    /// Drops the queued claims (their channel or connection ended); returns how many.
    pub(super) fn discard_queued(&self) -> usize {
        let mut ledger = self.ledger();
        let count = ledger.queued.len();
        ledger.queued.clear();
        count
    }

    fn check_channel(&self, tag: DeliveryTag) -> Result<(), Error> {
        if tag.channel != self.channel {
            return Err(Error::InvalidArgument(format!(
                "delivery tag {} came on channel {}, not on channel {}",
                tag.tag, tag.channel, self.channel
            )));
        }
        Ok(())
    }

    /// Records a delivery that needs a settle, received `at`; returns how many are
    /// outstanding now (claimed ones included until written).
    pub(super) fn push(&self, tag: u64, at: Option<Instant>) -> usize {
        let mut ledger = self.ledger();
        let entry = Entry {
            tag,
            claimed: false,
            at,
        };
        match ledger.tags.back() {
            Some(last) if tag <= last.tag => {
                if let Err(i) = ledger.tags.binary_search_by_key(&tag, |e| e.tag) {
                    ledger.tags.insert(i, entry);
                }
            }
            _ => ledger.tags.push_back(entry),
        }
        ledger.tags.len()
    }

    /// How long the oldest outstanding delivery has been held at `now` (RabbitMQ numbers
    /// deliveries in the order it sends them, so it is the lowest tag).
    pub(super) fn oldest_held(&self, now: Instant) -> Option<Duration> {
        let at = self.ledger().tags.front()?.at?;
        Some(now.saturating_duration_since(at))
    }

    /// Forgets `tag` (and with `multiple` every earlier tag) as its settle is written.
    /// `None`, and nothing forgotten, when `tag` is not outstanding: a `multiple`
    /// settle written before it covered it. `Some(true)` when nothing at or below
    /// `tag` is outstanding any more.
    pub(super) fn release(&self, tag: u64, multiple: bool) -> Option<bool> {
        self.ledger().release(tag, multiple)
    }

    /// Takes the queued claims of connection `generation` and releases each as
    /// [`release`](Self::release) would, in the order they were made, under one lock:
    /// what the connection task does as it writes them. Appends each to `into` with its
    /// release's answer; returns how many were of another generation (stale, dropped).
    pub(super) fn release_queued(&self, generation: u32, into: &mut Vec<(Claimed, Option<bool>)>) -> usize {
        let mut ledger = self.ledger();
        let mut queued = std::mem::take(&mut ledger.queued);
        let mut stale = 0;
        for claimed in queued.drain(..) {
            if claimed.tag.generation != generation {
                stale += 1;
                continue;
            }
            let through = ledger.release(claimed.tag.tag, claimed.how.is_multiple());
            into.push((claimed, through));
        }
        // Empty, with its capacity, for the next claims.
        ledger.queued = queued;
        stale
    }

    /// The channel whose deliveries it holds.
    pub(crate) fn channel(&self) -> ChannelId {
        self.channel
    }

    /// Forgets everything (`basic.recover`: the broker redelivers).
    pub(super) fn clear(&self) {
        self.ledger().tags.clear();
    }

    /// The channel or its connection ended: every tag is stale from now.
    pub(super) fn end(&self) {
        let mut ledger = self.ledger();
        ledger.live = false;
        ledger.tags.clear();
    }

    /// The channel was reopened on connection `generation` (recovery).
    pub(super) fn restart(&self, generation: u32) {
        let mut ledger = self.ledger();
        ledger.generation = generation;
        ledger.live = true;
        ledger.tags.clear();
    }

    /// Outstanding deliveries at or below `tag` (claimed ones included until written);
    /// 0 when `tag` is of another generation or the channel ended (nothing to wait for:
    /// the broker requeued them).
    pub fn outstanding_through(&self, tag: DeliveryTag) -> usize {
        let ledger = self.ledger();
        if !ledger.live || ledger.generation != tag.generation || tag.channel != self.channel {
            return 0;
        }
        ledger.tags.partition_point(|e| e.tag <= tag.tag)
    }

    /// Number of outstanding deliveries (claimed ones included until written).
    pub fn len(&self) -> usize {
        self.ledger().tags.len()
    }

    /// True when nothing is outstanding.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Ledger {
    fn release(&mut self, tag: u64, multiple: bool) -> Option<bool> {
        let at = self.position(tag)?;
        if multiple {
            self.tags.drain(..=at);
        } else {
            self.tags.remove(at);
        }
        Some(multiple || at == 0)
    }

    fn claim(&mut self, tag: DeliveryTag, how: Settle) -> Result<Claimed, Error> {
        if !self.live || self.generation != tag.generation {
            return Err(Error::StaleDelivery { tag: tag.tag });
        }
        let at = match self.position(tag.tag) {
            Some(at) if !self.tags[at].claimed => at,
            _ => return Err(Error::UnknownDeliveryTag { tag: tag.tag }),
        };
        if how.is_multiple() {
            self.tags.range_mut(..=at).for_each(|e| e.claimed = true);
        } else {
            self.tags[at].claimed = true;
        }
        Ok(Claimed { tag, how })
    }

    /// Where `tag` is. RabbitMQ numbers a channel's deliveries 1, 2, 3..., so a tag is
    /// usually at its distance from the first outstanding one (claims waiting to be
    /// written stay in front of it); otherwise a binary search finds it.
    fn position(&self, tag: u64) -> Option<usize> {
        let first = self.tags.front()?.tag;
        let guess = usize::try_from(tag.checked_sub(first)?).ok()?;
        match self.tags.get(guess) {
            Some(e) if e.tag == tag => Some(guess),
            _ => self.tags.binary_search_by_key(&tag, |e| e.tag).ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Duration, Instant, Outstanding, Settle};
    use crate::error::Error;
    use crate::proto::{ChannelId, DeliveryTag};

    const ACK: Settle = Settle::Ack { multiple: false };
    const ACK_MULTIPLE: Settle = Settle::Ack { multiple: true };

    fn channel() -> ChannelId {
        ChannelId { number: 1, epoch: 0 }
    }

    fn tag(tag: u64) -> DeliveryTag {
        DeliveryTag {
            generation: 0,
            channel: channel(),
            tag,
        }
    }

    /// A ledger holding `tags`, none claimed.
    fn with_tags(tags: std::ops::RangeInclusive<u64>) -> Outstanding {
        let o = Outstanding::new(channel(), 0);
        for t in tags {
            o.push(t, None);
        }
        o
    }

    fn unknown(tag: u64) -> Result<(), Error> {
        Err(Error::UnknownDeliveryTag { tag })
    }

    #[test]
    fn a_tag_is_claimed_once_and_released_when_written() {
        let o = with_tags(1..=3);
        assert!(o.claim(tag(2), ACK).is_ok());
        assert_eq!(o.claim(tag(2), ACK).map(drop), unknown(2), "claimed twice");
        assert_eq!(o.claim(tag(2), Settle::Reject { requeue: true }).map(drop), unknown(2));
        assert_eq!(o.len(), 3, "a claim stays until its frame is written");
        assert_eq!(o.release(2, false), Some(false), "1 is still out");
        assert_eq!(o.claim(tag(2), ACK).map(drop), unknown(2), "written: unknown");
        assert!(o.claim(tag(1), ACK).is_ok());
        assert_eq!(o.release(1, false), Some(true));
        assert_eq!(o.claim(tag(9), ACK).map(drop), unknown(9), "never delivered");
    }

    #[test]
    fn a_multiple_claim_covers_earlier_tags_and_needs_its_own() {
        let o = with_tags(1..=5);
        assert!(o.claim(tag(2), ACK).is_ok());
        assert!(o.claim(tag(4), ACK_MULTIPLE).is_ok());
        assert_eq!(o.claim(tag(3), ACK).map(drop), unknown(3), "covered by the multiple");
        assert_eq!(o.claim(tag(2), ACK_MULTIPLE).map(drop), unknown(2));
        // Written in the queue's order, which may differ from the claims' order.
        assert_eq!(o.release(4, true), Some(true));
        assert_eq!(o.release(2, false), None, "already covered: nothing to write");
        assert_eq!(o.len(), 1);
        assert!(o.claim(tag(5), ACK).is_ok());
    }

    #[test]
    fn an_ack_is_through_only_when_no_earlier_claim_is_still_unwritten() {
        let o = with_tags(1..=2);
        o.claim(tag(1), ACK).unwrap();
        o.claim(tag(2), ACK).unwrap();
        // 2 is written first: 1's ack is still on its way, so 2 must not become a
        // `multiple` that covers it.
        assert_eq!(o.release(2, false), Some(false));
        assert_eq!(o.release(1, false), Some(true));
    }

    #[test]
    fn recover_end_and_restart() {
        let o = Outstanding::new(channel(), 0);
        o.push(1, None);
        o.clear();
        assert_eq!(o.claim(tag(1), ACK).map(drop), unknown(1), "basic.recover forgot it");
        o.push(2, None);
        o.end();
        assert_eq!(o.claim(tag(2), ACK).map(drop), Err(Error::StaleDelivery { tag: 2 }));
        o.restart(1);
        o.push(2, None);
        assert_eq!(
            o.claim(tag(2), ACK).map(drop),
            Err(Error::StaleDelivery { tag: 2 }),
            "a tag of generation 0 on generation 1"
        );
        let new = DeliveryTag {
            generation: 1,
            ..tag(2)
        };
        assert!(o.claim(new, ACK).is_ok());
        let other = DeliveryTag {
            channel: ChannelId { number: 2, epoch: 0 },
            ..new
        };
        assert!(matches!(o.claim(other, ACK), Err(Error::InvalidArgument(_))));
    }

    #[test]
    fn out_of_order_pushes_stay_sorted_and_once() {
        let o = Outstanding::new(channel(), 0);
        o.push(9, None);
        o.push(7, None);
        o.push(7, None);
        assert_eq!(o.len(), 2);
        assert_eq!(o.release(7, false), Some(true));
        assert_eq!(o.release(9, false), Some(true));
    }

    #[test]
    fn the_oldest_is_the_lowest_tag() {
        let t0 = Instant::now();
        let o = Outstanding::new(channel(), 0);
        assert_eq!(o.oldest_held(t0), None);
        o.push(2, Some(t0 + Duration::from_secs(1)));
        o.push(1, Some(t0));
        assert_eq!(o.oldest_held(t0 + Duration::from_secs(5)), Some(Duration::from_secs(5)));
        o.release(1, false);
        assert_eq!(o.oldest_held(t0 + Duration::from_secs(5)), Some(Duration::from_secs(4)));
    }

    #[test]
    fn outstanding_through_counts_claims_until_written() {
        let o = with_tags(1..=4);
        assert_eq!(o.outstanding_through(tag(2)), 2);
        let claimed = o.claim(tag(1), ACK).expect("claim");
        assert_eq!(o.outstanding_through(tag(2)), 2, "claimed, not yet written");
        assert_eq!(o.release(claimed.tag.tag, false), Some(true));
        assert_eq!(o.outstanding_through(tag(2)), 1);
        assert_eq!(o.outstanding_through(tag(9)), 3);
        o.end();
        assert_eq!(
            o.outstanding_through(tag(9)),
            0,
            "the channel ended: nothing to wait for"
        );
    }

    #[test]
    fn queued_claims_wait_in_claim_order_and_the_first_says_so() {
        let o = with_tags(1..=5);
        assert_eq!(o.claim_queued(tag(3), ACK), Ok(true), "into an empty queue");
        assert_eq!(o.claim_queued(tag(1), Settle::Reject { requeue: true }), Ok(false));
        assert_eq!(o.claim_queued(tag(3), ACK), Err(Error::UnknownDeliveryTag { tag: 3 }));
        assert_eq!(o.claim_queued(tag(5), ACK_MULTIPLE), Ok(false));
        let mut taken = Vec::new();
        o.take_queued(&mut taken);
        let order: Vec<_> = taken.iter().map(|c| (c.tag.tag, c.how)).collect();
        assert_eq!(
            order,
            [(3, ACK), (1, Settle::Reject { requeue: true }), (5, ACK_MULTIPLE)],
            "a refused claim is not queued"
        );
        assert_eq!(o.len(), 5, "queued claims stay outstanding until written");
        o.take_queued(&mut taken);
        assert_eq!(taken.len(), 3, "taken once");
        o.push(6, None);
        assert_eq!(o.claim_queued(tag(6), ACK), Ok(true), "the queue is empty again");
        o.end();
        assert_eq!(o.claim_queued(tag(6), ACK), Err(Error::StaleDelivery { tag: 6 }));
    }
}
