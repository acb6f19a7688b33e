//! A consuming channel's task: deliveries in, each checked against what was sent, then
//! acked (or nacked, with `--nack`).

use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use tokio::sync::watch;
use warren::Error;
use warren::client::{Channel, ConsumeOptions, Consumer};
use warren::wire::FieldTable;

use super::args::{AckMode, Options};
use super::faults::{self, Copy};
use super::pace::{Pacer, RateSchedule};
use super::rng::Rng;
use super::topology::Topology;
use super::{ConsumerStats, Run, body};

/// One consuming channel, set up before the run starts.
pub struct Sub {
    pub ch: Channel,
    /// The index of the queue it reads.
    pub queue: usize,
    pub tag: String,
    /// Its index among all consuming channels (seeds its nack decisions).
    pub index: u32,
    /// Subscribed already, or (with `--consume-after-publish`) not yet.
    pub consumer: Option<Consumer>,
}

impl Sub {
    pub async fn subscribe(&self, o: &Options, topology: &Topology) -> Result<Consumer, String> {
        let options = ConsumeOptions {
            no_ack: o.ack == AckMode::Auto,
            ..Default::default()
        };
        super::through_faults(
            || format!("{}: basic.consume", self.tag),
            || self.ch.is_open(),
            || {
                self.ch
                    .basic_consume(&topology.queues[self.queue], &self.tag, options, FieldTable::new())
            },
        )
        .await
    }
}

/// Consumes until `stop` (or its `--cmessages` quota); `go` says when to subscribe if it
/// has not yet.
///
/// Across a recovery of its connection the consumer goes on: an ack of a delivery from
/// before it is refused as stale (nothing is sent; the broker requeued that message and
/// delivers it again), which is not an error.
pub async fn consume(
    run: &Run,
    stats: &ConsumerStats,
    o: &Options,
    topology: &Topology,
    mut sub: Sub,
    mut go: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), String> {
    let mut consumer = match sub.consumer.take() {
        Some(c) => c,
        None => {
            tokio::select! {
                biased;
                _ = stop.changed() => return Ok(()),
                _ = go.wait_for(|go| *go) => {}
            }
            sub.subscribe(o, topology).await?
        }
    };
    let ch = &sub.ch;
    let ledger = topology.ledger(sub.queue);
    let (seen, dropped) = (&run.seen[ledger], &run.dropped[ledger]);
    let mut rng = Rng::new(0x5EED_0002, u64::from(sub.index));
    let mut pacer = o.consumer_rate.map(|r| {
        Pacer::new(
            RateSchedule::parse(&r.to_string()).expect("a positive rate"),
            Instant::now(),
        )
    });
    let quota = o.cmessages.unwrap_or(u64::MAX);
    let mut taken = 0u64;
    let mut unacked = 0u32;
    let mut last_tag: Option<warren::client::DeliveryTag> = None;
    let mut first_generation = None;
    let result = loop {
        if let Some(p) = &mut pacer {
            if !p.next(&run.timer, || *stop.borrow()).await {
                break Ok(());
            }
        }
        let next = tokio::select! {
            biased;
            d = consumer.next() => d,
            _ = stop.changed() => break Ok(()),
        };
        let d = match next {
            Some(Ok(d)) => d,
            Some(Err(e)) => break Err(format!("consumer: {e}")),
            None => break Ok(()),
        };
        let now = run.clock.now_ns();
        let generation = d.delivery_tag.generation();
        let first_generation = *first_generation.get_or_insert(generation);
        // A duplicate: counted, and told apart (see `faults`).
        let duplicate = |seq: u64| {
            stats.duplicates.fetch_add(1, Relaxed);
            match faults::classify(d.redelivered, generation, first_generation) {
                Copy::Redelivered => {
                    stats.redelivered.fetch_add(1, Relaxed);
                }
                Copy::Suspect => run.suspects.push(ledger, seq),
            }
        };
        let header = body::read(o.body, &d.body);
        if let Some((_, stamp)) = header {
            stats.latency.record(run.clock.latency_us(o.body, stamp, now));
        }
        stats.last_ns.store(now, Relaxed);
        if !o.consumer_latency.is_zero() {
            run.timer.sleep_until(Instant::now() + o.consumer_latency).await;
        }
        if o.nack > 0.0 && rng.chance(o.nack) {
            match d.nack(o.nack_requeue).await {
                Ok(()) => {}
                Err(Error::StaleDelivery { .. }) => {
                    // From before a recovery: the broker delivers it again.
                    stats.stale.fetch_add(1, Relaxed);
                    continue;
                }
                Err(e) => break Err(format!("nack: {e}")),
            }
            stats.nacks.fetch_add(1, Relaxed);
            if !o.nack_requeue {
                if let Some((seq, _)) = header {
                    match dropped.insert(seq) {
                        Some(true) => {
                            stats.dropped.fetch_add(1, Relaxed);
                        }
                        Some(false) => duplicate(seq),
                        None => {
                            stats.corrupt.fetch_add(1, Relaxed);
                        }
                    }
                } else {
                    stats.corrupt.fetch_add(1, Relaxed);
                }
            }
            continue;
        }
        match header.map(|(seq, _)| (seq, seen.insert(seq))) {
            Some((_, Some(true))) => {
                stats.consumed.fetch_add(1, Relaxed);
            }
            Some((seq, Some(false))) => duplicate(seq),
            Some((_, None)) | None => {
                stats.corrupt.fetch_add(1, Relaxed);
            }
        }
        match o.ack {
            AckMode::Auto => {
                stats.acked.fetch_add(1, Relaxed);
            }
            AckMode::Each => match d.ack().await {
                Ok(()) => {
                    stats.acked.fetch_add(1, Relaxed);
                }
                Err(Error::StaleDelivery { .. }) => {
                    stats.stale.fetch_add(1, Relaxed);
                }
                Err(e) => break Err(format!("ack: {e}")),
            },
            AckMode::Multiple(n) => {
                if last_tag.is_some_and(|t| t.generation() != generation) {
                    // The connection recovered: the broker requeued what was not acked.
                    stats.stale.fetch_add(u64::from(unacked), Relaxed);
                    unacked = 0;
                }
                unacked += 1;
                last_tag = Some(d.delivery_tag);
                if unacked >= n {
                    match ch.basic_ack(d.delivery_tag, true).await {
                        Ok(()) => {
                            stats.acked.fetch_add(u64::from(unacked), Relaxed);
                        }
                        Err(Error::StaleDelivery { .. }) => {
                            stats.stale.fetch_add(u64::from(unacked), Relaxed);
                        }
                        Err(e) => break Err(format!("ack: {e}")),
                    }
                    unacked = 0;
                }
            }
        }
        taken += 1;
        if taken >= quota {
            stats.quota_done.store(true, Relaxed);
            break Ok(());
        }
    };
    if let (Some(tag), true) = (last_tag, unacked > 0 && result.is_ok()) {
        match ch.basic_ack(tag, true).await {
            Ok(()) => {
                stats.acked.fetch_add(u64::from(unacked), Relaxed);
            }
            Err(Error::StaleDelivery { .. }) => {
                stats.stale.fetch_add(u64::from(unacked), Relaxed);
            }
            Err(e) => return Err(format!("ack: {e}")),
        }
    }
    if result.is_ok() {
        // Ends the stream; deliveries still buffered are requeued when the channel closes.
        let _ = consumer.cancel().await;
    }
    result
}
