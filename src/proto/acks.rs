//! Deliveries waiting for the application's ack, per channel.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Outstanding delivery tags of one channel, ascending. RabbitMQ numbers deliveries
/// in increasing order, so tracking is a push at the back and acks in order are a pop
/// at the front; anything else falls back to a binary search.
///
/// Its size is bounded by what the server delivers and the application has not acked
/// yet: the prefetch (`basic.qos`) the application sets.
#[derive(Debug, Default)]
pub(super) struct Unacked(VecDeque<(u64, Option<Instant>)>);

impl Unacked {
    /// Records a delivery that needs an ack, received `at`.
    pub(super) fn push(&mut self, tag: u64, at: Option<Instant>) {
        match self.0.back() {
            None => self.0.push_back((tag, at)),
            Some(&(last, _)) if tag > last => self.0.push_back((tag, at)),
            Some(_) => {
                if let Err(i) = self.0.binary_search_by_key(&tag, |e| e.0) {
                    self.0.insert(i, (tag, at));
                }
            }
        }
    }

    /// Forgets `tag` (and with `multiple` every earlier tag). `None`, and nothing
    /// forgotten, when `tag` is not outstanding: RabbitMQ would close the channel with
    /// 406 PRECONDITION_FAILED for it, even with `multiple`. `Some(true)` when nothing
    /// at or below `tag` is outstanding any more.
    pub(super) fn settle(&mut self, tag: u64, multiple: bool) -> Option<bool> {
        if self.0.front().map(|e| e.0) == Some(tag) {
            self.0.pop_front();
            return Some(true);
        }
        let at = self.0.binary_search_by_key(&tag, |e| e.0).ok()?;
        if multiple {
            self.0.drain(..=at);
        } else {
            self.0.remove(at);
        }
        Some(multiple)
    }

    /// Forgets everything (`basic.recover`).
    pub(super) fn clear(&mut self) {
        self.0.clear();
    }

    /// Number of outstanding deliveries.
    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    /// How long the oldest outstanding delivery has been held at `now` (RabbitMQ numbers
    /// deliveries in the order it sends them, so it is the lowest tag).
    pub(super) fn oldest_held(&self, now: Instant) -> Option<Duration> {
        let (_, at) = self.0.front()?;
        Some(now.saturating_duration_since((*at)?))
    }
}

#[cfg(test)]
mod tests {
    use super::{Duration, Instant, Unacked};

    #[test]
    fn in_order_out_of_order_and_multiple() {
        let mut u = Unacked::default();
        for t in 1..=6 {
            u.push(t, None);
        }
        assert_eq!(u.settle(1, false), Some(true), "the oldest: nothing below");
        assert_eq!(u.settle(1, false), None, "acked twice");
        assert_eq!(u.settle(4, false), Some(false), "2 and 3 are still out");
        assert_eq!(u.settle(4, true), None, "multiple needs the tag itself outstanding");
        assert_eq!(u.settle(5, true), Some(true), "acks 2, 3, 5");
        assert_eq!(u.len(), 1);
        assert_eq!(u.settle(3, false), None);
        assert_eq!(u.settle(6, false), Some(true));
        assert_eq!(u.len(), 0);
        u.push(9, None);
        u.push(7, None);
        u.push(7, None);
        assert_eq!(u.len(), 2, "out of order kept sorted, duplicates once");
        assert_eq!(u.settle(7, false), Some(true));
        assert_eq!(u.settle(9, false), Some(true));
    }

    #[test]
    fn the_oldest_is_the_lowest_tag() {
        let t0 = Instant::now();
        let mut u = Unacked::default();
        assert_eq!(u.oldest_held(t0), None);
        u.push(2, Some(t0 + Duration::from_secs(1)));
        u.push(1, Some(t0));
        assert_eq!(u.oldest_held(t0 + Duration::from_secs(5)), Some(Duration::from_secs(5)));
        u.settle(1, false);
        assert_eq!(u.oldest_held(t0 + Duration::from_secs(5)), Some(Duration::from_secs(4)));
    }
}
