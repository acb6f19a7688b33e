//! One channel's state, and the slab of channels addressed by [`ChannelId`].

use std::collections::VecDeque;

use super::ChannelId;
use super::acks::Unacked;
use super::confirms::Confirms;
use super::content::Assembly;
use super::hold::Hold;
use crate::Error;
use crate::fastmap::FastMap;
use crate::wire::{MethodId, ShortStr};

/// Where a channel is.
#[derive(Debug)]
pub(super) enum ChannelState {
    /// `channel.open` sent, `open-ok` not yet received.
    Opening,
    /// Open.
    Open,
    /// `channel.close` sent by the client; waiting for `close-ok`. `own` is the error
    /// the close reports; `server` the server's, if it closed at the same time.
    Closing { own: Error, server: Option<Error> },
}

impl ChannelState {
    /// Opening or open: commands are accepted.
    pub(super) fn is_usable(&self) -> bool {
        matches!(self, ChannelState::Opening | ChannelState::Open)
    }
}

/// What the channel does with publishes.
#[derive(Debug)]
pub(super) enum Mode {
    /// Plain publishes.
    Normal,
    /// Publisher confirms (`confirm.select` sent).
    Confirm(Box<Confirms>),
    /// Transactions (`tx.select` sent).
    Tx,
}

impl Mode {
    pub(super) fn confirm() -> Self {
        Mode::Confirm(Box::default())
    }
}

/// What a pending call needs to remember for its reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CallKind {
    /// Nothing.
    Plain,
    /// `channel.open`: the reply opens the channel.
    Open,
    /// `basic.consume`: `consume-ok` names the consumer and its ack mode is recorded.
    Consume { no_ack: bool },
    /// `basic.cancel`: `cancel-ok` forgets the consumer.
    Cancel,
    /// `basic.get`: a `get-ok` delivery is tracked unless `no_ack`.
    Get { no_ack: bool },
}

/// A synchronous call waiting for its reply.
#[derive(Debug, Clone, Copy)]
pub(super) struct PendingCall {
    /// The method sent.
    pub(super) method: MethodId,
    pub(super) kind: CallKind,
}

impl PendingCall {
    pub(super) fn new(method: MethodId, kind: CallKind) -> Self {
        PendingCall { method, kind }
    }

    /// The replies that answer this call.
    pub(super) fn responses(&self) -> &'static [MethodId] {
        self.method.info().map_or(&[], |i| i.responses)
    }
}

/// One channel.
#[derive(Debug)]
pub(super) struct Channel {
    pub(super) id: ChannelId,
    pub(super) state: ChannelState,
    /// Synchronous calls sent and not answered, oldest first.
    pub(super) pending: VecDeque<PendingCall>,
    /// The content being received, if a content method arrived.
    pub(super) content: Option<Assembly>,
    pub(super) mode: Mode,
    /// Consumer tag → `no_ack`.
    pub(super) consumers: FastMap<ShortStr, bool>,
    /// Deliveries waiting for an ack.
    pub(super) unacked: Unacked,
    /// Frames waiting behind a consume or cancel, or a block.
    pub(super) hold: Hold,
}

impl Channel {
    pub(super) fn new(id: ChannelId) -> Self {
        Channel {
            id,
            state: ChannelState::Opening,
            pending: VecDeque::new(),
            content: None,
            mode: Mode::Normal,
            consumers: FastMap::default(),
            unacked: Unacked::default(),
            hold: Hold::default(),
        }
    }
}

/// Channels by number (slot `number - 1`). A number is free again once its channel
/// is removed, which happens only when the close handshake is over.
#[derive(Debug, Default)]
pub(super) struct Channels {
    slots: Vec<Option<Channel>>,
    len: usize,
}

impl Channels {
    fn slot(number: u16) -> Option<usize> {
        usize::from(number).checked_sub(1)
    }

    pub(super) fn get(&self, number: u16) -> Option<&Channel> {
        self.slots.get(Self::slot(number)?)?.as_ref()
    }

    pub(super) fn get_mut(&mut self, number: u16) -> Option<&mut Channel> {
        self.slots.get_mut(Self::slot(number)?)?.as_mut()
    }

    /// The lowest free number in `1..=max`.
    pub(super) fn free_number(&self, max: u16) -> Option<u16> {
        if self.len >= usize::from(max) {
            return None;
        }
        let index = self.slots.iter().position(Option::is_none).unwrap_or(self.slots.len());
        u16::try_from(index + 1).ok().filter(|n| *n <= max)
    }

    /// Stores a channel at its number.
    pub(super) fn insert(&mut self, channel: Channel) {
        let Some(index) = Self::slot(channel.id.number) else {
            return;
        };
        if self.slots.len() <= index {
            self.slots.resize_with(index + 1, || None);
        }
        if self.slots[index].replace(channel).is_none() {
            self.len += 1;
        }
    }

    pub(super) fn remove(&mut self, number: u16) -> Option<Channel> {
        let index = Self::slot(number)?;
        let channel = self.slots.get_mut(index)?.take();
        if channel.is_some() {
            self.len -= 1;
            while self.slots.last().is_some_and(Option::is_none) {
                self.slots.pop();
            }
        }
        channel
    }

    /// Every channel, lowest number first, mutably.
    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = &mut Channel> {
        self.slots.iter_mut().flatten()
    }

    /// Every channel, lowest number first.
    pub(super) fn iter(&self) -> impl Iterator<Item = &Channel> {
        self.slots.iter().flatten()
    }

    /// Removes every channel, lowest number first.
    pub(super) fn drain(&mut self) -> impl Iterator<Item = Channel> + use<> {
        self.len = 0;
        std::mem::take(&mut self.slots).into_iter().flatten()
    }
}
