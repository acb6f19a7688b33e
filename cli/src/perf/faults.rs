//! What a run does about faults: connections spread over several brokers, recoveries
//! watched and timed, and duplicates told apart.
//!
//! A lost connection is recovered by the library (`RecoveryConfig`), so a fault is not
//! an error of the run. What it changes is the count:
//! - a publish whose confirm was pending when its connection was lost has an **unknown**
//!   outcome (the broker may have stored it): it is counted as unknown, never as lost,
//!   whether it arrives or not; with `--republish` the library sends it again after the
//!   recovery and its confirm settles it;
//! - a message confirmed by the broker (or published, without confirms) and never
//!   consumed is **lost**;
//! - a second delivery of a sequence number is a duplicate, **redelivered** when at-least-
//!   once delivery explains it (see [`enum@Copy`]), else **unexplained**.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use warren::client::{ConnectionState, StateChanges};

use super::seqset::SeqSet;

/// What a delivery of an already seen sequence number is, as far as its consumer can
/// tell when it arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Copy {
    /// Expected at least once: the broker flagged it redelivered, or it came after the
    /// consumer's connection recovered (the broker requeued what that connection had
    /// not acked, or its ack was lost with the connection).
    Redelivered,
    /// Neither: explained at the end of the run if its publisher may have republished
    /// it ([`Suspects::settle`]), else unexplained.
    Suspect,
}

/// Classifies a duplicate delivery: `redelivered` is its flag, `generation` the
/// connection generation it came on, `first_generation` the one of the consumer's first
/// delivery.
pub fn classify(redelivered: bool, generation: u32, first_generation: u32) -> Copy {
    if redelivered || generation != first_generation {
        Copy::Redelivered
    } else {
        Copy::Suspect
    }
}

/// Duplicates a consumer could not explain when they arrived: (ledger, sequence number).
/// Rare, so a mutex will do.
#[derive(Default)]
pub struct Suspects(Mutex<Vec<(usize, u64)>>);

impl Suspects {
    pub fn push(&self, ledger: usize, seq: u64) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push((ledger, seq));
    }

    /// Once every publish is settled: how many suspects a republish explains (their
    /// sequence number is in `retried`, publishes whose confirm came after their
    /// connection changed state, with `--republish`), and how many stay unexplained.
    pub fn settle(&self, retried: &SeqSet) -> (u64, u64) {
        let suspects = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let republished = suspects.iter().filter(|(_, seq)| retried.contains(*seq)).count() as u64;
        (republished, suspects.len() as u64 - republished)
    }
}

/// Recoveries of the run's connections.
#[derive(Default)]
pub struct Recoveries {
    /// Recoveries that finished (the connection is open again).
    pub count: AtomicU64,
    /// The longest of them, from the loss to the recovered connection, in nanoseconds.
    pub longest_ns: AtomicU64,
}

impl Recoveries {
    /// Follows one connection's states until it closes: counts and times its recoveries.
    pub async fn watch(&self, mut changes: StateChanges) {
        let mut down_since: Option<Instant> = None;
        while let Some(state) = changes.next().await {
            match state {
                ConnectionState::Recovering { .. } => {
                    down_since.get_or_insert_with(Instant::now);
                }
                ConnectionState::Recovered(_) => {
                    self.count.fetch_add(1, Relaxed);
                    if let Some(since) = down_since.take() {
                        let ns = u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX);
                        self.longest_ns.fetch_max(ns, Relaxed);
                    }
                }
                ConnectionState::Failed(_) => break,
                _ => {}
            }
        }
    }
}

/// The longest gap between two confirms of one publishing channel, and when the last
/// one came (both in `Clock::now_ns`): how long publishing stalled.
#[derive(Default)]
pub struct ConfirmGap {
    last_ns: AtomicU64,
    pub max_ns: AtomicU64,
}

impl ConfirmGap {
    /// The channel's first publish (the first gap starts there).
    pub fn start(&self, now_ns: u64) {
        let _ = self.last_ns.compare_exchange(0, now_ns.max(1), Relaxed, Relaxed);
    }

    /// A confirm (ack) came at `now_ns`. Only the channel's own task calls it.
    pub fn confirm(&self, now_ns: u64) {
        let last = self.last_ns.swap(now_ns.max(1), Relaxed);
        if last != 0 {
            self.max_ns.fetch_max(now_ns.saturating_sub(last), Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_told_apart() {
        assert_eq!(classify(true, 0, 0), Copy::Redelivered, "flagged by the broker");
        assert_eq!(classify(false, 1, 0), Copy::Redelivered, "after the consumer recovered");
        assert_eq!(classify(true, 2, 1), Copy::Redelivered);
        assert_eq!(classify(false, 0, 0), Copy::Suspect, "no reason on the consumer's side");
        assert_eq!(classify(false, 3, 3), Copy::Suspect);

        let suspects = Suspects::default();
        let retried = SeqSet::default();
        assert_eq!(suspects.settle(&retried), (0, 0));
        suspects.push(0, 7);
        suspects.push(1, 7);
        suspects.push(0, 9);
        retried.insert(7);
        assert_eq!(
            suspects.settle(&retried),
            (2, 1),
            "7 was republished (in every ledger), 9 was not"
        );
    }

    #[test]
    fn confirm_gap_is_the_longest_wait() {
        let g = ConfirmGap::default();
        g.confirm(5);
        assert_eq!(g.max_ns.load(Relaxed), 0, "no gap before a start or a first confirm");
        let g = ConfirmGap::default();
        g.start(100);
        g.start(200); // only the first publish starts it
        g.confirm(150);
        g.confirm(160);
        g.confirm(1_160);
        g.confirm(1_200);
        assert_eq!(g.max_ns.load(Relaxed), 1_000);
    }
}
