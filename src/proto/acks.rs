//! Deliveries waiting for the application's ack, per channel.

use std::collections::VecDeque;

/// Outstanding delivery tags of one channel, ascending. RabbitMQ numbers deliveries
/// in increasing order, so tracking is a push at the back and acks in order are a pop
/// at the front; anything else falls back to a binary search.
///
/// Its size is bounded by what the server delivers and the application has not acked
/// yet: the prefetch (`basic.qos`) the application sets.
#[derive(Debug, Default)]
pub(super) struct Unacked(VecDeque<u64>);

impl Unacked {
    /// Records a delivery that needs an ack.
    pub(super) fn push(&mut self, tag: u64) {
        match self.0.back() {
            None => self.0.push_back(tag),
            Some(&last) if tag > last => self.0.push_back(tag),
            Some(_) => {
                if let Err(at) = self.0.binary_search(&tag) {
                    self.0.insert(at, tag);
                }
            }
        }
    }

    /// Forgets `tag` (and with `multiple` every earlier tag). `None`, and nothing
    /// forgotten, when `tag` is not outstanding: RabbitMQ would close the channel with
    /// 406 PRECONDITION_FAILED for it, even with `multiple`. `Some(true)` when nothing
    /// at or below `tag` is outstanding any more.
    pub(super) fn settle(&mut self, tag: u64, multiple: bool) -> Option<bool> {
        if self.0.front() == Some(&tag) {
            self.0.pop_front();
            return Some(true);
        }
        let at = self.0.binary_search(&tag).ok()?;
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
}

#[cfg(test)]
mod tests {
    use super::Unacked;

    #[test]
    fn in_order_out_of_order_and_multiple() {
        let mut u = Unacked::default();
        for t in 1..=6 {
            u.push(t);
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
        u.push(9);
        u.push(7);
        u.push(7);
        assert_eq!(u.len(), 2, "out of order kept sorted, duplicates once");
        assert_eq!(u.settle(7, false), Some(true));
        assert_eq!(u.settle(9, false), Some(true));
    }
}
