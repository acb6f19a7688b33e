//! Consuming again after the server cancelled a consumer (`basic.cancel` from the
//! server, e.g. when the node of its classic queue went away), when
//! [`Config::reconsume`](super::Config::reconsume) asks for it.
//!
//! Off (the default), a server cancel forgets the consumer and reports
//! [`Event::ConsumerCancelled`]. On, the consumer is kept *suspended* (its deliveries
//! still in flight keep their ack mode; recovery restores it like any consumer) and
//! [`Event::ConsumerSuspended`] reports it; then, with exponential backoff:
//! 1. at the due time, a *probe*: a channel of its own with a passive `queue.declare` of
//!    the queue. A queue whose node is down makes the server close that channel (404),
//!    which costs the application's channel nothing; the next probe waits twice as long
//!    (up to [`Reconsume::max_backoff`]);
//! 2. on `declare-ok`, the probe channel is closed and the consumer's own `basic.consume`
//!    (same tag, same arguments) goes out on its channel;
//! 3. on `consume-ok`, [`Event::ConsumerResumed`].
//!
//! If the queue went away again between the probe and the consume, the server closes
//! the consumer's channel (404): that is reported as any channel close. A consumer the
//! application cancels while suspended is not consumed again.
//!
//! With re-consume on, connection recovery restores consumers the same way (probe, then
//! consume; `replay.rs`): after the loss of a node, the queue of a consumer may be on that
//! node, and a plain `basic.consume` would make the server close the channel. Those
//! consumers come back after [`Event::Recovered`], each with its
//! [`Event::ConsumerResumed`].

use std::time::{Duration, Instant};

use super::channel::Consumer;
use super::{ChannelId, Connection, Event};
use crate::error::CancelReason;
use crate::wire::{BasicConsume, Method, QueueDeclare, ReplyCode, ShortStr};

/// Backoff of the re-consume after a server cancel (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reconsume {
    /// Wait before the first probe; doubles after every probe that finds the queue
    /// unreachable. Default 500 ms.
    pub initial_backoff: Duration,
    /// Ceiling of the wait. Default 5 s.
    pub max_backoff: Duration,
}

impl Default for Reconsume {
    fn default() -> Self {
        Reconsume {
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl Reconsume {
    /// The wait before probe `attempt` (1-based).
    pub(super) fn backoff(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(30);
        self.initial_backoff.saturating_mul(1u32 << exp).min(self.max_backoff)
    }
}

/// Where one suspended consumer's way back is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Stage {
    /// Waiting for the next probe.
    Waiting { due: Instant },
    /// The probe channel's passive declare is out.
    Probing { probe: ChannelId },
    /// The `basic.consume` is out.
    Consuming,
}

/// One suspended consumer.
#[derive(Debug, Clone)]
pub(super) struct Retry {
    pub(super) channel: ChannelId,
    pub(super) tag: ShortStr,
    pub(super) queue: ShortStr,
    /// Probes made so far.
    pub(super) attempt: u32,
    pub(super) stage: Stage,
}

impl Connection {
    /// The server cancelled `tag` on `channel` (the frame was answered already).
    pub(super) fn on_server_cancel(&mut self, channel: ChannelId, tag: ShortStr, reason: CancelReason, now: Instant) {
        let reconsume = self.config.reconsume;
        let Some(ch) = self.channels.get_mut(channel) else {
            return;
        };
        let queue = match (reconsume, ch.consumers.get_mut(&tag)) {
            (Some(_), Some(c)) if !c.cancelling => {
                c.suspended = true;
                c.spec.queue.clone()
            }
            _ => {
                ch.consumers.remove(&tag);
                self.io.events.push_back(Event::ConsumerCancelled {
                    channel,
                    consumer_tag: tag,
                    reason,
                });
                return;
            }
        };
        let delay = reconsume.map_or(Duration::ZERO, |r| r.backoff(1));
        tracing::info!(channel = channel.number(), %tag, %queue, "consumer cancelled by the server: consuming again when its queue is back");
        self.retries.retain(|r| !(r.channel == channel && r.tag == tag));
        self.retries.push(Retry {
            channel,
            tag: tag.clone(),
            queue,
            attempt: 0,
            stage: Stage::Waiting { due: now + delay },
        });
        self.io.events.push_back(Event::ConsumerSuspended {
            channel,
            consumer_tag: tag,
        });
    }

    /// Recovery restores consumer `spec` on `channel` (reopened) through the probe:
    /// suspended, probed at once.
    pub(super) fn reconsume_after_recovery(&mut self, channel: ChannelId, spec: BasicConsume) {
        let Some(ch) = self.channels.get_mut(channel) else {
            return;
        };
        let tag = spec.consumer_tag.clone();
        let queue = spec.queue.clone();
        ch.consumers.insert(
            tag.clone(),
            Consumer {
                spec,
                cancelling: false,
                suspended: true,
            },
        );
        self.retries.push(Retry {
            channel,
            tag,
            queue,
            attempt: 0,
            // Now: the open-ok that started the replay was just read.
            stage: Stage::Waiting { due: self.last_read },
        });
    }

    /// The earliest due probe.
    pub(super) fn reconsume_deadline(&self) -> Option<Instant> {
        self.retries
            .iter()
            .filter_map(|r| match r.stage {
                Stage::Waiting { due } => Some(due),
                _ => None,
            })
            .min()
    }

    /// Sends the probes that are due.
    pub(super) fn reconsume_timeout(&mut self, now: Instant) {
        if self.retries.is_empty() {
            return;
        }
        // A waiting consumer the application cancelled, or whose channel is gone, is
        // dropped here; one being probed when its probe answers.
        let mut retries = std::mem::take(&mut self.retries);
        retries.retain(|r| !matches!(r.stage, Stage::Waiting { .. }) || self.still_suspended(r));
        for r in &mut retries {
            let Stage::Waiting { due } = r.stage else { continue };
            if now < due {
                continue;
            }
            r.attempt += 1;
            let declare = QueueDeclare {
                queue: r.queue.clone(),
                passive: true,
                ..Default::default()
            };
            let probe = self.open(true).and_then(|probe| {
                self.call_inner(probe, Method::QueueDeclare(declare), true)
                    .map(|()| probe)
            });
            r.stage = match probe {
                Ok(probe) => {
                    tracing::debug!(tag = %r.tag, queue = %r.queue, attempt = r.attempt, "re-consume: probing the queue");
                    Stage::Probing { probe }
                }
                Err(error) => {
                    tracing::debug!(tag = %r.tag, %error, "re-consume: no probe channel");
                    Stage::Waiting {
                        due: now + self.retry_backoff(r.attempt + 1),
                    }
                }
            };
        }
        self.retries.append(&mut retries);
    }

    fn retry_backoff(&self, attempt: u32) -> Duration {
        self.config.reconsume.map_or(Duration::ZERO, |r| r.backoff(attempt))
    }

    /// The consumer is still there, suspended, not cancelled by the application.
    fn still_suspended(&self, r: &Retry) -> bool {
        self.channels
            .get(r.channel)
            .filter(|ch| ch.state.is_usable())
            .and_then(|ch| ch.consumers.get(&r.tag))
            .is_some_and(|c| c.suspended && !c.cancelling)
    }

    /// The consumers of `channel`, which is gone, will not consume again; their probes
    /// under way are closed.
    pub(super) fn forget_retries(&mut self, channel: ChannelId) {
        let mut probes = Vec::new();
        self.retries.retain(|r| match r.stage {
            _ if r.channel != channel => true,
            Stage::Probing { probe } => {
                probes.push(probe);
                false
            }
            _ => false,
        });
        for probe in probes {
            let _ = self.close_channel(probe, ReplyCode::SUCCESS, "re-consume probe");
        }
    }

    /// A reply to a call of the re-consume; false if it is not one.
    pub(super) fn on_reconsume_reply(&mut self, channel: ChannelId, method: &Method) -> bool {
        let Some(i) = self.retries.iter().position(|r| match (&r.stage, method) {
            (Stage::Probing { probe }, _) => *probe == channel,
            (Stage::Consuming, Method::BasicConsumeOk(ok)) => r.channel == channel && r.tag == ok.consumer_tag,
            _ => false,
        }) else {
            return false;
        };
        match method {
            Method::QueueDeclareOk(_) => {
                let Stage::Probing { probe } = self.retries[i].stage else {
                    return true;
                };
                let _ = self.close_channel(probe, ReplyCode::SUCCESS, "re-consume probe");
                let r = self.retries[i].clone();
                // Still suspended? (The application may have cancelled it meanwhile.)
                let spec = self
                    .channels
                    .get(r.channel)
                    .and_then(|ch| ch.consumers.get(&r.tag))
                    .filter(|c| c.suspended && !c.cancelling)
                    .map(|c| c.spec.clone());
                let Some(mut consume) = spec else {
                    self.retries.swap_remove(i);
                    return true;
                };
                consume.no_wait = false;
                match self.call_inner(r.channel, Method::BasicConsume(consume), true) {
                    Ok(()) => self.retries[i].stage = Stage::Consuming,
                    Err(error) => {
                        tracing::debug!(tag = %r.tag, %error, "re-consume: consume refused");
                        self.retries.swap_remove(i);
                    }
                }
            }
            Method::BasicConsumeOk(ok) => {
                let r = self.retries.swap_remove(i);
                tracing::info!(channel = r.channel.number(), tag = %ok.consumer_tag, attempts = r.attempt, "consumer consuming again");
                self.io.events.push_back(Event::ConsumerResumed {
                    channel: r.channel,
                    consumer_tag: ok.consumer_tag.clone(),
                });
            }
            // The probe's open-ok.
            _ => {}
        }
        true
    }

    /// An internal channel is gone: if it was a probe, the queue is not reachable yet
    /// (the server closed it) and the next probe is scheduled. False if it was no probe.
    pub(super) fn on_probe_gone(&mut self, channel: ChannelId, now: Instant) -> bool {
        let Some(i) = self
            .retries
            .iter()
            .position(|r| r.stage == Stage::Probing { probe: channel })
        else {
            return false;
        };
        let attempt = self.retries[i].attempt;
        let delay = self.retry_backoff(attempt + 1);
        tracing::debug!(tag = %self.retries[i].tag, attempt, delay_ms = delay.as_millis() as u64, "re-consume: queue not reachable yet");
        self.retries[i].stage = Stage::Waiting { due: now + delay };
        true
    }
}
