//! A publishing channel's task: numbered bodies out, confirms in.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use warren::client::{Channel, Confirmation, Confirmed, PublishOptions};
use warren::wire::{BasicProperties, FieldTable, ShortStr};

use super::args::Options;
use super::pace::Pacer;
use super::rng::Rng;
use super::topology::{HEADER_KEY, Topology};
use super::{ProducerStats, Run, SEQ_BLOCK, body};

/// A publish waiting for its confirm: sequence number, publish time (ns), the confirm.
type InFlight = (u64, u64, Confirmation);

/// Publishes until the count is reached or the duration is over, keeping at most
/// `--confirm` publishes unconfirmed; returns once every publish is settled.
///
/// With `--rate`, the task waits for its token while watching the oldest confirm, so
/// publish → confirm latency is taken when the confirm arrives. Without it, confirms are
/// collected when the window is full (polling them sooner would wake the connection's
/// task on every publish and change what is measured).
pub async fn publish(
    run: &Run,
    stats: &ProducerStats,
    o: &Options,
    topology: &Topology,
    ch: &Channel,
    index: u32,
) -> Result<(), String> {
    let mut properties = BasicProperties {
        delivery_mode: o.persistent.then_some(2),
        priority: o.priority,
        ..Default::default()
    };
    let options = PublishOptions { mandatory: o.mandatory };
    let window = o.confirm as usize;
    let mut in_flight: VecDeque<InFlight> = VecDeque::with_capacity(window);
    let mut arena = BytesMut::new();
    let mut rng = Rng::new(0x5EED_0001, u64::from(index));
    let mut pacer = o.rate.clone().map(|r| Pacer::new(r, run.clock.start));
    let fixed_key = &topology.keys[index as usize % topology.keys.len()];
    let header_tables: Vec<FieldTable> = if topology.headers {
        topology
            .keys
            .iter()
            .map(|k| {
                let mut t = FieldTable::new();
                t.insert(ShortStr::from_static(HEADER_KEY), k.as_str());
                t
            })
            .collect()
    } else {
        Vec::new()
    };
    let (mut next, mut block_end) = (0u64, 0u64);
    let mut result = Ok(());
    'publishing: loop {
        if next == block_end {
            next = run.next_seq.fetch_add(SEQ_BLOCK, Relaxed);
            block_end = (next + SEQ_BLOCK).min(run.limit);
        }
        if next >= block_end || run.stop_publishing.load(Relaxed) {
            break;
        }
        if let Some(pacer) = &mut pacer {
            let slot = pacer.take();
            loop {
                if run.stop_publishing.load(Relaxed) {
                    break 'publishing;
                }
                let now = Instant::now();
                if slot <= now {
                    break;
                }
                let wake = slot.min(now + Duration::from_millis(100));
                match in_flight.front_mut() {
                    Some((_, _, c)) => {
                        tokio::select! {
                            biased;
                            outcome = c => {
                                let (seq, at, _) = in_flight.pop_front().expect("front exists");
                                if let Err(e) = settle(run, stats, seq, at, outcome) {
                                    result = Err(e);
                                    break 'publishing;
                                }
                            }
                            () = run.timer.sleep_until(wake) => {}
                        }
                    }
                    None => run.timer.sleep_until(wake).await,
                }
            }
        }
        let seq = next;
        next += 1;
        let key = if topology.random {
            rng.below(topology.keys.len() as u64) as usize
        } else {
            index as usize % topology.keys.len()
        };
        if topology.headers {
            properties.headers = Some(header_tables[key].clone());
        }
        let size = o.sizes.pick(&mut rng);
        let now = run.clock.now_ns();
        let body = body::write(&mut arena, o.body, &run.clock, size, seq, now);
        let routing_key = if topology.random {
            &topology.keys[key]
        } else {
            fixed_key
        };
        let confirmation = match ch
            .basic_publish(&topology.exchange, routing_key, options, properties.clone(), body)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                result = Err(format!("publish: {e}"));
                break;
            }
        };
        stats.published.fetch_add(1, Relaxed);
        stats.bytes.fetch_add(size as u64, Relaxed);
        if window == 0 {
            run.sent.insert(seq);
            continue;
        }
        in_flight.push_back((seq, now, confirmation));
        if pacer.is_some() {
            // Take the confirms that are in without waiting (there is time between tokens).
            while let Some((_, _, c)) = in_flight.front_mut() {
                let Some(outcome) = ready(c) else { break };
                let (seq, at, _) = in_flight.pop_front().expect("front exists");
                if let Err(e) = settle(run, stats, seq, at, outcome) {
                    result = Err(e);
                    break 'publishing;
                }
            }
        }
        if in_flight.len() >= window {
            let (seq, at, c) = in_flight.pop_front().expect("window is not empty");
            if let Err(e) = settle(run, stats, seq, at, c.await) {
                result = Err(e);
                break;
            }
        }
    }
    for (seq, at, c) in in_flight {
        if let Err(e) = settle(run, stats, seq, at, c.await) {
            result = result.and(Err(e));
        }
    }
    result
}

/// The confirm's outcome if it is already in.
fn ready(c: &mut Confirmation) -> Option<Result<Confirmed, warren::Error>> {
    match Pin::new(c).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(r) => Some(r),
        Poll::Pending => None,
    }
}

/// Records one publish's outcome; an error (outcome unknown) is returned as well.
fn settle(
    run: &Run,
    stats: &ProducerStats,
    seq: u64,
    published_ns: u64,
    outcome: Result<Confirmed, warren::Error>,
) -> Result<(), String> {
    match outcome {
        Ok(Confirmed::Ack | Confirmed::Sent) => {
            stats.confirmed.fetch_add(1, Relaxed);
            stats
                .confirm_latency
                .record(run.clock.now_ns().saturating_sub(published_ns) / 1000);
            run.sent.insert(seq);
        }
        Ok(Confirmed::Nack) => {
            stats.nacked.fetch_add(1, Relaxed);
        }
        Ok(Confirmed::Returned { .. }) => {
            stats.returned.fetch_add(1, Relaxed);
        }
        Err(e) => {
            stats.unconfirmed.fetch_add(1, Relaxed);
            return Err(format!("confirm of message {seq}: {e}"));
        }
    }
    Ok(())
}
