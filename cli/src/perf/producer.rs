//! A publishing channel's task: numbered bodies out, confirms in.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::sync::watch;
use warren::client::{Channel, Confirmation, Confirmed, ConnectionState, PublishOptions};
use warren::wire::{BasicProperties, FieldTable, ShortStr};

use super::args::Options;
use super::pace::Pacer;
use super::rng::Rng;
use super::topology::{HEADER_KEY, Topology};
use super::{ProducerStats, Run, SEQ_BLOCK, body};

/// A publish waiting for its confirm: sequence number, publish time (ns), the confirm,
/// and the state epoch of its connection when it was published (see [`Epoch`]).
type InFlight = (u64, u64, Confirmation, u32);

/// Counts the state changes of the publisher's connection (lost, recovering, recovered,
/// blocked...). A publish whose confirm comes in a later epoch than it went out may have
/// been republished by the library (`--republish`), so a duplicate of it is expected.
///
/// The epoch is read before the publish is handed over: if the connection is lost after
/// that, the change is seen by the time the republished copy is confirmed (the library
/// announces the state before it republishes, and the confirm comes after).
pub struct Epoch {
    state: watch::Receiver<ConnectionState>,
    n: u32,
}

impl Epoch {
    pub fn new(state: watch::Receiver<ConnectionState>) -> Self {
        Epoch { state, n: 0 }
    }

    fn now(&mut self) -> u32 {
        if self.state.has_changed().unwrap_or(false) {
            self.state.borrow_and_update();
            self.n = self.n.wrapping_add(1);
        }
        self.n
    }
}

/// Publishes until the count is reached or the duration is over, keeping at most
/// `--confirm` publishes unconfirmed; returns once every publish is settled. A publish
/// whose outcome is unknown (its connection was lost first) is counted, and the run goes
/// on; an error of `basic_publish` itself (the channel or connection is gone for good)
/// ends it.
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
    mut epoch: Epoch,
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
        if next >= block_end || run.stop.is_stopped() {
            break;
        }
        if let Some(pacer) = &mut pacer {
            let slot = pacer.take();
            loop {
                if run.stop.is_stopped() {
                    break 'publishing;
                }
                let now = Instant::now();
                if slot <= now {
                    break;
                }
                let wake = slot.min(now + Duration::from_millis(100));
                match in_flight.front_mut() {
                    Some((_, _, c, _)) => {
                        tokio::select! {
                            biased;
                            outcome = c => {
                                let (seq, at, _, sent_in) = in_flight.pop_front().expect("front exists");
                                settle(run, stats, o, seq, at, sent_in, &mut epoch, outcome);
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
        stats.confirm_gap.start(now);
        let sent_in = epoch.now();
        let body = body::write(&mut arena, o.body, &run.clock, size, seq, now);
        let routing_key = if topology.random {
            &topology.keys[key]
        } else {
            fixed_key
        };
        let publish = ch.basic_publish(&topology.exchange, routing_key, options, properties.clone(), body);
        let confirmation = tokio::select! {
            biased;
            r = publish => match r {
                Ok(c) => c,
                Err(e) => {
                    result = Err(format!("publish: {e}"));
                    break;
                }
            },
            // Still waiting (a blocked broker, a full window): nothing was sent.
            () = run.stop.stopped() => break,
        };
        stats.published.fetch_add(1, Relaxed);
        stats.bytes.fetch_add(size as u64, Relaxed);
        if window == 0 {
            run.sent.insert(seq);
            continue;
        }
        in_flight.push_back((seq, now, confirmation, sent_in));
        if pacer.is_some() {
            // Take the confirms that are in without waiting (there is time between tokens).
            while let Some((_, _, c, _)) = in_flight.front_mut() {
                let Some(outcome) = ready(c) else { break };
                let (seq, at, _, sent_in) = in_flight.pop_front().expect("front exists");
                settle(run, stats, o, seq, at, sent_in, &mut epoch, outcome);
            }
        }
        if in_flight.len() >= window {
            let (seq, at, c, sent_in) = in_flight.pop_front().expect("window is not empty");
            let outcome = confirm_or_give_up(run, o, c).await;
            settle(run, stats, o, seq, at, sent_in, &mut epoch, outcome);
        }
    }
    for (seq, at, c, sent_in) in in_flight {
        let outcome = confirm_or_give_up(run, o, c).await;
        settle(run, stats, o, seq, at, sent_in, &mut epoch, outcome);
    }
    result
}

/// The confirm's outcome, or a timeout once `--drain-timeout` has passed since publishing
/// stopped (a blocked broker confirms nothing until its alarm clears): counted as unknown.
async fn confirm_or_give_up(run: &Run, o: &Options, c: Confirmation) -> Result<Confirmed, warren::Error> {
    tokio::select! {
        biased;
        outcome = c => outcome,
        () = run.stop.given_up(o.drain_timeout) => Err(warren::Error::Timeout { operation: "confirm" }),
    }
}

/// The confirm's outcome if it is already in.
fn ready(c: &mut Confirmation) -> Option<Result<Confirmed, warren::Error>> {
    match Pin::new(c).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(r) => Some(r),
        Poll::Pending => None,
    }
}

/// Records one publish's outcome. An error means the outcome is unknown: the channel or
/// connection was lost before the confirm (see [`super::faults`]).
#[allow(clippy::too_many_arguments)]
fn settle(
    run: &Run,
    stats: &ProducerStats,
    o: &Options,
    seq: u64,
    published_ns: u64,
    sent_in: u32,
    epoch: &mut Epoch,
    outcome: Result<Confirmed, warren::Error>,
) {
    match outcome {
        Ok(Confirmed::Ack | Confirmed::Sent) => {
            let now = run.clock.now_ns();
            stats.confirmed.fetch_add(1, Relaxed);
            stats.confirm_latency.record(now.saturating_sub(published_ns) / 1000);
            stats.confirm_gap.confirm(now);
            run.sent.insert(seq);
            if o.republish && epoch.now() != sent_in {
                run.retried.insert(seq);
            }
        }
        Ok(Confirmed::Nack) => {
            stats.nacked.fetch_add(1, Relaxed);
        }
        Ok(Confirmed::Returned { .. }) => {
            stats.returned.fetch_add(1, Relaxed);
        }
        Err(e) => {
            // The first of a channel is said on stderr; the rest are only counted.
            if stats.unknown.fetch_add(1, Relaxed) == 0 && !o.quiet {
                eprintln!("warren perf: confirm of message {seq}: {e}: outcome unknown (counted)");
            }
            run.unknown.insert(seq);
        }
    }
}
