//! [`Store`]: per-channel values addressed by [`ChannelId`], with the epoch checked in
//! one place.
//!
//! A channel number is reused once its channel is gone, with a new epoch. An id kept
//! from the old channel must never reach the new one, so every lookup by id compares
//! the epoch, as h2's `Store` does in its index: no caller can forget it. Frames from the
//! server carry only the number; [`Store::by_number_mut`] says so in its name.

use super::ChannelId;

/// A value that belongs to one channel and knows its id.
pub(crate) trait Keyed {
    /// The channel the value belongs to.
    fn channel_id(&self) -> ChannelId;
}

/// Values by channel number (slot `number - 1`), looked up by id.
#[derive(Debug)]
pub(crate) struct Store<T> {
    slots: Vec<Option<T>>,
    len: usize,
}

impl<T> Default for Store<T> {
    fn default() -> Self {
        Store {
            slots: Vec::new(),
            len: 0,
        }
    }
}

fn index(number: u16) -> Option<usize> {
    usize::from(number).checked_sub(1)
}

impl<T: Keyed> Store<T> {
    /// The value of channel `id`, if it is still that channel (same epoch).
    pub(crate) fn get(&self, id: ChannelId) -> Option<&T> {
        self.slots
            .get(index(id.number)?)?
            .as_ref()
            .filter(|v| v.channel_id() == id)
    }

    /// The value of channel `id`, mutably, if it is still that channel.
    pub(crate) fn get_mut(&mut self, id: ChannelId) -> Option<&mut T> {
        self.slots
            .get_mut(index(id.number)?)?
            .as_mut()
            .filter(|v| v.channel_id() == id)
    }

    /// The value on channel `number`, whatever its epoch: for frames from the server,
    /// which name channels by number only.
    pub(crate) fn by_number_mut(&mut self, number: u16) -> Option<&mut T> {
        self.slots.get_mut(index(number)?)?.as_mut()
    }

    /// True if channel `number` is taken.
    pub(crate) fn has_number(&self, number: u16) -> bool {
        index(number)
            .and_then(|i| self.slots.get(i))
            .is_some_and(Option::is_some)
    }

    /// The lowest free number in `1..=max`.
    pub(crate) fn free_number(&self, max: u16) -> Option<u16> {
        if self.len >= usize::from(max) {
            return None;
        }
        let index = self.slots.iter().position(Option::is_none).unwrap_or(self.slots.len());
        u16::try_from(index + 1).ok().filter(|n| *n <= max)
    }

    /// Stores `value` at its channel's number; returns what was there.
    pub(crate) fn insert(&mut self, value: T) -> Option<T> {
        let i = index(value.channel_id().number)?;
        if self.slots.len() <= i {
            self.slots.resize_with(i + 1, || None);
        }
        let old = self.slots[i].replace(value);
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    /// Removes the value of channel `id`, if it is still that channel.
    pub(crate) fn remove(&mut self, id: ChannelId) -> Option<T> {
        self.get(id)?;
        self.remove_number(id.number)
    }

    /// Removes the value on channel `number`, whatever its epoch.
    pub(crate) fn remove_number(&mut self, number: u16) -> Option<T> {
        let value = self.slots.get_mut(index(number)?)?.take();
        if value.is_some() {
            self.len -= 1;
            while self.slots.last().is_some_and(Option::is_none) {
                self.slots.pop();
            }
        }
        value
    }

    /// The ids of every channel, lowest number first.
    pub(crate) fn ids(&self) -> Vec<ChannelId> {
        self.iter().map(Keyed::channel_id).collect()
    }

    /// Every value, lowest number first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().flatten()
    }

    /// Every value, lowest number first, mutably.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.slots.iter_mut().flatten()
    }

    /// Removes every value, lowest number first.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = T> + use<T> {
        self.len = 0;
        std::mem::take(&mut self.slots).into_iter().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct V(ChannelId, &'static str);

    impl Keyed for V {
        fn channel_id(&self) -> ChannelId {
            self.0
        }
    }

    fn id(number: u16, epoch: u32) -> ChannelId {
        ChannelId { number, epoch }
    }

    #[test]
    fn an_id_from_a_closed_channel_never_reaches_its_successor() {
        let mut store = Store::default();
        store.insert(V(id(1, 0), "old"));
        assert_eq!(store.remove(id(1, 0)), Some(V(id(1, 0), "old")));
        store.insert(V(id(1, 5), "new"));
        assert_eq!(store.get(id(1, 0)), None, "stale epoch");
        assert!(store.get_mut(id(1, 0)).is_none());
        assert_eq!(store.remove(id(1, 0)), None, "a stale id removes nothing");
        assert_eq!(store.get(id(1, 5)), Some(&V(id(1, 5), "new")));
        assert_eq!(
            store.by_number_mut(1).map(|v| v.1),
            Some("new"),
            "the server names numbers"
        );
        assert!(
            store.get(id(0, 0)).is_none() && !store.has_number(0),
            "number 0 is never a channel"
        );
    }

    #[test]
    fn numbers_are_handed_out_lowest_first_up_to_max() {
        let mut store = Store::default();
        assert_eq!(store.free_number(2), Some(1));
        store.insert(V(id(1, 0), "a"));
        store.insert(V(id(2, 1), "b"));
        assert_eq!(store.free_number(2), None);
        assert_eq!(store.free_number(3), Some(3));
        store.remove_number(1);
        assert_eq!(store.free_number(2), Some(1));
        assert_eq!(store.ids(), [id(2, 1)]);
        store.insert(V(id(1, 2), "c"));
        assert_eq!(store.ids(), [id(1, 2), id(2, 1)], "lowest number first");
        assert_eq!(store.drain().count(), 2);
        assert_eq!(store.free_number(1), Some(1));
    }
}
