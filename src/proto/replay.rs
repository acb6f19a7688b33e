//! Recovery's restoring, as a sans-IO plan: what a lost connection had, sent again on
//! its successor ([`Connection::successor`](super::Connection::successor)).
//!
//! Order, once the successor is open:
//! 1. every channel that was open, under its old id, with its QoS and its confirm or tx
//!    mode pipelined behind the open;
//! 2. exchanges, queues, queue bindings, exchange-to-exchange bindings, one at a time on a
//!    channel of their own, so a failure (reported in [`RecoveryReport`]) closes only that
//!    channel and the next step goes on on a fresh one; a server-named queue gets a new
//!    name, which the bindings and consumers still to restore follow;
//! 3. consumers, on their channels, with their tags and arguments;
//! 4. [`Event::Recovered`](super::Event::Recovered) with the report.
//!
//! The replay's own calls are answered to it, not as events; the application's commands
//! wait until it is over (the driver keeps them).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use super::acks::Outstanding;
use super::channel::Channel;
use super::topology::TopologyStep;
use super::{ChannelId, Config, Connection, Event};
use crate::error::Error;
use crate::wire::{BasicConsume, BasicQos, Method, ReplyCode, ShortStr};

/// What one recovery restored and what it could not.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// The connection generation now in use (1 after the first recovery).
    pub generation: u32,
    /// Server-named queues that got a new name: `(old, new)`.
    pub renamed_queues: Vec<(String, String)>,
    /// Entities that could not be restored, with why (e.g. a queue re-declared elsewhere
    /// with other arguments: 406 PRECONDITION_FAILED). Everything else was restored.
    pub failures: Vec<RecoveryFailure>,
}

/// One entity recovery could not restore.
#[derive(Debug, Clone, PartialEq)]
pub struct RecoveryFailure {
    /// What it was, e.g. `queue "orders"`, `binding "orders" <- "ex" ("key")`,
    /// `consumer "ctag" on "orders"`, `channel 3`.
    pub entity: String,
    /// The error the broker answered with.
    pub error: Error,
}

/// The publish mode of a channel, as recovery restores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ModeKind {
    Normal,
    Confirm,
    Tx,
}

/// What an open channel had when its connection was lost.
#[derive(Debug, Clone)]
pub(super) struct ChannelRecord {
    pub(super) id: ChannelId,
    /// The channel's delivery ledger, restarted when the channel is reopened (the
    /// handles keep it).
    pub(super) acks: Arc<Outstanding>,
    /// The last `basic.qos` of each scope.
    pub(super) qos: Vec<BasicQos>,
    pub(super) mode: ModeKind,
    /// Consumers not cancelled, with their final tags.
    pub(super) consumers: Vec<BasicConsume>,
}

impl ChannelRecord {
    /// The calls that restore the channel's settings, pipelined behind its open.
    pub(super) fn setup(&self) -> Vec<Method> {
        let mut calls: Vec<Method> = self.qos.iter().cloned().map(Method::BasicQos).collect();
        match self.mode {
            ModeKind::Normal => {}
            ModeKind::Confirm => calls.push(Method::ConfirmSelect(Default::default())),
            ModeKind::Tx => calls.push(Method::TxSelect(Default::default())),
        }
        calls
    }

    /// A failure to restore this channel, for the report.
    pub(super) fn entity(&self) -> String {
        format!("channel {}", self.id.number())
    }
}

/// Where the replay is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stage {
    /// Channels reopened; topology steps run one at a time.
    Topology,
    /// Consumers sent; waiting for their `consume-ok`.
    Consumers,
}

/// A recovery under way on the successor connection.
#[derive(Debug)]
pub(super) struct Replay {
    /// What the lost connection had: kept whole, so that a second loss during the
    /// replay restores the same again.
    pub(super) channels: Vec<ChannelRecord>,
    pub(super) report: RecoveryReport,
    pub(super) steps: VecDeque<TopologyStep>,
    /// The step waiting for its reply.
    pub(super) current: Option<TopologyStep>,
    /// The channel the topology is restored on.
    pub(super) scratch: Option<ChannelId>,
    pub(super) stage: Stage,
    /// Consumers sent whose `consume-ok` has not come, by channel.
    pub(super) consumes: Vec<(ChannelId, ShortStr)>,
}

impl Replay {
    pub(super) fn new(channels: Vec<ChannelRecord>, steps: Vec<TopologyStep>, generation: u32) -> Self {
        Replay {
            channels,
            report: RecoveryReport {
                generation,
                ..RecoveryReport::default()
            },
            steps: steps.into(),
            current: None,
            scratch: None,
            stage: Stage::Topology,
            consumes: Vec::new(),
        }
    }

    pub(super) fn failure(&mut self, entity: String, error: Error) {
        tracing::warn!(%entity, %error, "recovery could not restore");
        self.report.failures.push(RecoveryFailure { entity, error });
    }

    /// A server-named queue got a new name: the steps still to run and the consumers
    /// still to restore follow it.
    pub(super) fn rename(&mut self, old: &ShortStr, new: &ShortStr) {
        tracing::info!(%old, %new, "server-named queue renamed by recovery");
        super::topology::rename_in_steps(self.steps.make_contiguous(), old, new);
        for c in self.channels.iter_mut().flat_map(|ch| ch.consumers.iter_mut()) {
            if &c.queue == old {
                c.queue = new.clone();
            }
        }
        self.report.renamed_queues.push((old.to_string(), new.to_string()));
    }

    /// Forgets a consumer whose `consume-ok` came (or whose channel closed); true when
    /// none is awaited any more.
    pub(super) fn consumed(&mut self, channel: ChannelId, tag: Option<&ShortStr>) -> bool {
        match tag {
            Some(tag) => {
                if let Some(i) = self.consumes.iter().position(|(c, t)| *c == channel && t == tag) {
                    self.consumes.swap_remove(i);
                }
            }
            None => self.consumes.retain(|(c, _)| *c != channel),
        }
        self.consumes.is_empty()
    }
}

impl Connection {
    /// A new connection that takes over from this lost one: the next generation, channel
    /// epochs that continue this one's, and the plan to restore, once it is open, the
    /// channels that were open (with QoS, confirm and tx modes), the topology
    /// (`restore_topology`) and the consumers; then [`Event::Recovered`]. The protocol
    /// header is queued, as by [`new`](Self::new). Call it once this connection is closed.
    pub fn successor(&mut self, mut config: Config, now: Instant, restore_topology: bool) -> Connection {
        config.generation = self.config.generation.wrapping_add(1);
        let mut next = Connection::new(config, now);
        next.resume_epochs(self.next_epoch);
        next.topology = std::mem::take(&mut self.topology);
        let channels = match self.replay.take() {
            Some(replay) => replay.channels,
            None => std::mem::take(&mut self.lost),
        };
        let steps = if restore_topology {
            next.topology.steps()
        } else {
            Vec::new()
        };
        next.replay = Some(Replay::new(channels, steps, next.config.generation));
        next
    }

    /// True while a successor restores what its predecessor had.
    pub fn is_replaying(&self) -> bool {
        self.replay.is_some()
    }

    /// The successor is open: reopen the channels with their settings, then run the
    /// topology steps.
    pub(super) fn start_replay(&mut self) {
        let Some(mut replay) = self.replay.take() else { return };
        tracing::info!(
            generation = self.config.generation,
            channels = replay.channels.len(),
            steps = replay.steps.len(),
            "reconnected: restoring"
        );
        for record in replay.channels.clone() {
            if let Err(error) = self.reopen(record.id, true, Some(record.acks.clone())) {
                replay.failure(record.entity(), error.clone());
                self.io.events.push_back(Event::ChannelClosed {
                    channel: record.id,
                    error,
                });
                continue;
            }
            for method in record.setup() {
                let what = format!("{} on channel {}", method.id(), record.id.number());
                if let Err(e) = self.call_inner(record.id, method, true) {
                    replay.failure(what, e);
                }
            }
        }
        self.replay = Some(replay);
        self.replay_next_step();
    }

    /// Sends the next topology step (its reply comes to [`on_replay_reply`]), or, when
    /// none is left, the consumers.
    fn replay_next_step(&mut self) {
        let Some(mut replay) = self.replay.take() else { return };
        while let Some(step) = replay.steps.pop_front() {
            let scratch = match replay.scratch {
                Some(c) => c,
                None => match self.open(true) {
                    Ok(c) => *replay.scratch.insert(c),
                    Err(e) => {
                        replay.failure(step.describe(), e);
                        continue;
                    }
                },
            };
            tracing::debug!(step = %step.describe(), "recovery: restoring");
            match self.call_inner(scratch, step.method(), true) {
                Ok(()) => {
                    replay.current = Some(step);
                    self.replay = Some(replay);
                    return;
                }
                Err(e) => replay.failure(step.describe(), e),
            }
        }
        if let Some(scratch) = replay.scratch.take() {
            let _ = self.close_channel(scratch, ReplyCode::SUCCESS, "topology restored");
        }
        replay.stage = Stage::Consumers;
        for record in replay.channels.clone() {
            if !self.is_channel_usable(record.id) {
                continue;
            }
            for spec in &record.consumers {
                if self.config.reconsume.is_some() {
                    // Its queue may be on the node that went away: probe it first, as
                    // after a server cancel, so that a 404 does not close the channel.
                    self.reconsume_after_recovery(record.id, spec.clone());
                    continue;
                }
                let mut consume = spec.clone();
                consume.no_wait = false;
                tracing::debug!(
                    channel = record.id.number(),
                    consumer_tag = %spec.consumer_tag,
                    queue = %spec.queue,
                    "recovery: restoring consumer"
                );
                match self.call_inner(record.id, Method::BasicConsume(consume), true) {
                    Ok(()) => replay.consumes.push((record.id, spec.consumer_tag.clone())),
                    Err(e) => {
                        let what = format!("consumer {:?} on {:?}", spec.consumer_tag.as_str(), spec.queue.as_str());
                        replay.failure(what, e);
                    }
                }
            }
        }
        self.replay = Some(replay);
        self.maybe_finish_replay();
    }

    /// Everything is restored: report it.
    fn maybe_finish_replay(&mut self) {
        let done = self
            .replay
            .as_ref()
            .is_some_and(|r| r.stage == Stage::Consumers && r.consumes.is_empty());
        if let Some(replay) = self.replay.take_if(|_| done) {
            let report = replay.report;
            tracing::info!(
                generation = report.generation,
                renamed = report.renamed_queues.len(),
                failures = report.failures.len(),
                "recovered"
            );
            self.io.events.push_back(Event::Recovered(Box::new(report)));
        }
    }

    /// A reply to one of the replay's own calls.
    fn on_replay_reply(&mut self, channel: ChannelId, method: Method) {
        let Some(replay) = self.replay.as_mut() else { return };
        match method {
            // Opens and setup need nothing more.
            Method::ChannelOpenOk(_) | Method::BasicQosOk(_) | Method::ConfirmSelectOk(_) | Method::TxSelectOk(_) => {}
            Method::BasicConsumeOk(ok) => {
                replay.consumed(channel, Some(&ok.consumer_tag));
                self.maybe_finish_replay();
            }
            reply if replay.scratch == Some(channel) => {
                if let (Some(TopologyStep::Queue(q)), Method::QueueDeclareOk(ok)) = (&replay.current, &reply)
                    && q.server_named
                    && ok.queue != q.declare.queue
                {
                    let (old, new) = (q.declare.queue.clone(), ok.queue.clone());
                    replay.rename(&old, &new);
                    self.topology.rename_queue(&old, &new);
                }
                replay.current = None;
                self.replay_next_step();
            }
            other => tracing::debug!(channel = channel.number(), method = %other.id(), "replay reply ignored"),
        }
    }

    /// Handles what the channel handlers left for the connection: consumers the server
    /// cancelled, replies to the replay and the re-consume, queues whose consumer was
    /// cancelled.
    pub(super) fn after_replies(&mut self, now: Instant) {
        if !self.io.server_cancels.is_empty() {
            for (channel, tag, reason) in std::mem::take(&mut self.io.server_cancels) {
                self.on_server_cancel(channel, tag, reason, now);
            }
        }
        while let Some((channel, method)) = self.io.internal.pop_front() {
            if !self.on_reconsume_reply(channel, &method) {
                self.on_replay_reply(channel, method);
            }
        }
        if !self.io.unconsumed.is_empty() {
            for queue in std::mem::take(&mut self.io.unconsumed) {
                self.forget_if_auto_deleted(&queue);
            }
        }
    }

    /// A channel's close handshake is over (or the server closed it).
    #[cold]
    pub(super) fn channel_gone(&mut self, channel: Channel, error: Error, now: Instant) {
        let id = channel.id;
        if channel.internal && self.on_probe_gone(id, now) {
            return;
        }
        if !channel.internal {
            self.forget_retries(id);
        }
        if channel.internal {
            // The topology channel: the server closed it for the step it ran.
            if let Some(replay) = self.replay.as_mut().filter(|r| r.scratch == Some(id)) {
                replay.scratch = None;
                if let Some(step) = replay.current.take() {
                    replay.failure(step.describe(), error);
                }
                self.replay_next_step();
            }
            return;
        }
        let queues: Vec<ShortStr> = channel.consumed_queues().cloned().collect();
        self.io.events.push_back(Event::ChannelClosed {
            channel: id,
            error: error.clone(),
        });
        for queue in queues {
            self.forget_if_auto_deleted(&queue);
        }
        if let Some(replay) = self.replay.as_mut() {
            replay.failure(format!("channel {}", id.number()), error);
            replay.consumed(id, None);
            self.maybe_finish_replay();
        }
    }

    /// An auto-delete queue that no consumer of this connection reads any more was
    /// deleted by the broker: recovery does not declare it again.
    fn forget_if_auto_deleted(&mut self, queue: &ShortStr) {
        let consumed = self.channels.iter().any(|c| c.consumed_queues().any(|q| q == queue));
        if !consumed && self.topology.is_auto_delete_queue(queue) {
            tracing::debug!(%queue, "auto-delete queue lost its last consumer: not restored by recovery");
            self.topology.forget_queue(queue);
        }
    }
}
