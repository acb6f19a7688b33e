//! One channel's state.

use std::collections::VecDeque;

use super::ChannelId;
use super::acks::Unacked;
use super::confirms::Confirms;
use super::content::Assembly;
use super::hold::Hold;
use super::store::Keyed;
use crate::error::Error;
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

impl Keyed for Channel {
    fn channel_id(&self) -> ChannelId {
        self.id
    }
}
