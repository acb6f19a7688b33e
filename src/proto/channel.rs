//! One channel's state.

use std::collections::VecDeque;
use std::sync::Arc;

use super::ChannelId;
use super::acks::Outstanding;
use super::confirms::Confirms;
use super::content::Assembly;
use super::hold::Hold;
use super::replay::{ChannelRecord, ModeKind};
use super::store::Keyed;
use crate::error::Error;
use crate::fastmap::{FastMap, get_sole};
use crate::wire::{BasicConsume, BasicQos, Method, MethodId, ShortStr};

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
#[derive(Debug, Clone, PartialEq)]
pub(super) enum CallKind {
    /// Nothing.
    Plain,
    /// `channel.open`: the reply opens the channel.
    Open,
    /// `basic.consume`: `consume-ok` names the consumer, which is recorded as sent.
    Consume(Box<BasicConsume>),
    /// `basic.cancel`: `cancel-ok` forgets the consumer.
    Cancel,
    /// `basic.get`: a `get-ok` delivery is tracked unless `no_ack`.
    Get { no_ack: bool },
}

/// A synchronous call waiting for its reply.
#[derive(Debug, Clone)]
pub(super) struct PendingCall {
    /// The method sent.
    pub(super) method: MethodId,
    pub(super) kind: CallKind,
    /// A topology method of the application, recorded once the server accepts it.
    pub(super) record: Option<Box<Method>>,
    /// Made by recovery: the reply goes to the replay, not to the application.
    pub(super) internal: bool,
}

impl PendingCall {
    pub(super) fn new(method: MethodId, kind: CallKind) -> Self {
        PendingCall {
            method,
            kind,
            record: None,
            internal: false,
        }
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
    /// Consumers by tag.
    pub(super) consumers: FastMap<ShortStr, Consumer>,
    /// The last `basic.qos` of each scope (per consumer, global).
    pub(super) qos: Vec<BasicQos>,
    /// The prefetch count of the last `basic.qos` (0: none), for read pacing.
    pub(super) prefetch: u16,
    /// Deliveries waiting for a settle, shared with the handles that settle them.
    pub(super) acks: Arc<Outstanding>,
    /// Frames waiting behind a consume or cancel, or a block.
    pub(super) hold: Hold,
    /// Opened by recovery for its own use: nothing of it is reported.
    pub(super) internal: bool,
}

/// A consumer, from `consume-ok` (or a no-wait consume) to `cancel-ok`.
#[derive(Debug)]
pub(super) struct Consumer {
    /// The `basic.consume` that started it, with its final tag.
    pub(super) spec: BasicConsume,
    /// A cancel went out: recovery does not restore it. (Deliveries in flight may still
    /// come; the entry keeps their ack mode until `cancel-ok` or the channel's end.)
    pub(super) cancelling: bool,
    /// The server cancelled it and it waits to consume again (`reconsume.rs`).
    pub(super) suspended: bool,
}

impl Channel {
    /// A channel opening with `acks`, its ledger (a new one, or its predecessor's on
    /// recovery, restarted).
    pub(super) fn new(id: ChannelId, acks: Arc<Outstanding>) -> Self {
        Channel {
            id,
            state: ChannelState::Opening,
            pending: VecDeque::new(),
            content: None,
            mode: Mode::Normal,
            consumers: FastMap::default(),
            qos: Vec::new(),
            prefetch: 0,
            acks,
            hold: Hold::default(),
            internal: false,
        }
    }

    /// Whether deliveries for `consumer_tag` need an ack (those of an unknown consumer
    /// are assumed to).
    pub(super) fn needs_ack(&self, consumer_tag: &ShortStr) -> bool {
        get_sole(&self.consumers, consumer_tag).is_none_or(|c| !c.spec.no_ack)
    }

    /// What recovery restores of this channel; `None` unless it is open and the
    /// application's.
    pub(super) fn record(&self) -> Option<ChannelRecord> {
        if self.internal || !matches!(self.state, ChannelState::Open) {
            return None;
        }
        let mode = match self.mode {
            Mode::Normal => ModeKind::Normal,
            Mode::Confirm(_) => ModeKind::Confirm,
            Mode::Tx => ModeKind::Tx,
        };
        let mut consumers: Vec<BasicConsume> = self
            .consumers
            .values()
            .filter(|c| !c.cancelling)
            .map(|c| c.spec.clone())
            .collect();
        consumers.sort_by(|a, b| a.consumer_tag.as_str().cmp(b.consumer_tag.as_str()));
        Some(ChannelRecord {
            id: self.id,
            acks: self.acks.clone(),
            qos: self.qos.clone(),
            mode,
            consumers,
        })
    }

    /// Queues this channel's live consumers read.
    pub(super) fn consumed_queues(&self) -> impl Iterator<Item = &ShortStr> {
        self.consumers.values().filter(|c| !c.cancelling).map(|c| &c.spec.queue)
    }
}

impl Drop for Channel {
    /// Whatever ends a channel (its close, the server's, the connection's loss) ends its
    /// deliveries: settling them is refused as stale from now on.
    fn drop(&mut self) {
        self.acks.end();
    }
}

impl Keyed for Channel {
    fn channel_id(&self) -> ChannelId {
        self.id
    }
}
