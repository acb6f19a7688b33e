//! Automatic connection recovery: its configuration ([`RecoveryConfig`]), the record of
//! the topology the application declared ([`Topology`]), and the backoff between attempts.
//!
//! What the driver does with them (see `driver.rs`): when the connection is lost for a
//! reason that can heal ([`Error::is_recoverable`](crate::error::Error::is_recoverable)), it keeps every channel, consumer and
//! unconfirmed publish, reconnects (addresses in turn, see `address.rs`; backoff with jitter, a timeout per
//! attempt) with the next connection generation, then restores, in order: channels with
//! their QoS, confirm and tx modes; exchanges, queues (server-named ones get new names,
//! which bindings and consumers follow), queue bindings, exchange-to-exchange bindings;
//! consumers with their tags and arguments. A failure to restore one entity is reported
//! in [`RecoveryReport`] and the rest goes on.

use std::time::Duration;

pub use crate::proto::{Reconsume, RecoveryFailure, RecoveryReport};
use crate::rng::Rng;

/// How a connection recovers from the loss of its broker. On by default.
///
/// ```
/// use std::time::Duration;
/// use warren::client::{ConnectionConfig, RecoveryConfig};
/// let mut config = ConnectionConfig::default();
/// config.recovery = RecoveryConfig {
///     max_attempts: Some(20),
///     hosts: vec![("rabbit-2".into(), 5672)],
///     republish_unconfirmed: true,
///     ..RecoveryConfig::default()
/// };
/// # let _ = Duration::ZERO;
/// ```
#[derive(Debug, Clone)]
pub struct RecoveryConfig {
    /// Recover at all. Default true; false makes a lost connection final.
    pub enabled: bool,
    /// Reconnection attempts per loss before giving up ([`ConnectionState::Failed`](super::ConnectionState::Failed));
    /// `None` tries forever. Default `None`.
    pub max_attempts: Option<u32>,
    /// Wait before the first attempt; doubles with every failed attempt. Default 100 ms.
    pub initial_backoff: Duration,
    /// Ceiling of the wait between attempts. Default 10 s.
    pub max_backoff: Duration,
    /// Fraction of each wait that is random (0.0 none, 1.0 "full jitter"), so that many
    /// clients do not reconnect in lockstep. Default 0.5.
    pub jitter: f64,
    /// More brokers to try (same TLS settings and credentials): appended to
    /// [`ConnectionConfig::more_addresses`](super::ConnectionConfig::more_addresses), which
    /// they duplicate, and tried like them on the first connect too. Default none.
    pub hosts: Vec<(String, u16)>,
    /// Time allowed for one attempt: TCP connect, TLS and the AMQP handshake. Default 10 s.
    pub attempt_timeout: Duration,
    /// Restore exchanges, queues, bindings and consumers (channels and their modes are
    /// always restored). Default true.
    pub topology: bool,
    /// Publishes sent in confirm mode but not confirmed when the connection was lost are
    /// sent again after recovery (at least once: the broker may have stored the first copy;
    /// each keeps its `message_id`, and gets one if it had none, so that consumers can
    /// deduplicate). Default false: they resolve with the loss error (outcome unknown).
    pub republish_unconfirmed: bool,
    /// What a publish does while the connection is recovering: wait at most this long for
    /// the recovery to finish (`Some`), or fail at once with [`Error::NotConnected`](crate::error::Error::NotConnected)
    /// (`None`). Default `Some(30 s)`.
    pub publish_wait: Option<Duration>,
    /// Consume again after the server cancels a consumer (`basic.cancel` from the
    /// server, e.g. the node of its classic queue went away), with this backoff, once the
    /// queue is reachable: the consumer's stream stays open and its deliveries resume
    /// (see [`Reconsume`]). [`Metrics::server_cancels`](super::Metrics::server_cancels)
    /// and [`reconsumed`](super::Metrics::reconsumed) count what happened. Default `None`:
    /// the stream ends with [`Error::ConsumerCancelled`](crate::error::Error::ConsumerCancelled).
    /// With it on, recovery restores consumers the same way, probing each queue before
    /// consuming (a queue on the node that was lost would otherwise get the channel
    /// closed with 404); they consume again just after the recovery.
    pub reconsume: Option<Reconsume>,
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        RecoveryConfig {
            enabled: true,
            max_attempts: None,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            jitter: 0.5,
            hosts: Vec::new(),
            attempt_timeout: Duration::from_secs(10),
            topology: true,
            republish_unconfirmed: false,
            publish_wait: Some(Duration::from_secs(30)),
            reconsume: None,
        }
    }
}

impl RecoveryConfig {
    /// Recovery switched off: a lost connection stays lost.
    pub fn disabled() -> Self {
        RecoveryConfig {
            enabled: false,
            ..RecoveryConfig::default()
        }
    }

    /// The wait before attempt `attempt` (1-based): exponential, capped, jittered.
    pub(crate) fn backoff(&self, attempt: u32, rng: &mut Rng) -> Duration {
        let exp = attempt.saturating_sub(1).min(30);
        let base = self.initial_backoff.saturating_mul(1u32 << exp).min(self.max_backoff);
        let jitter = self.jitter.clamp(0.0, 1.0);
        let random = base.mul_f64(jitter * rng.unit());
        base.saturating_sub(random)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_ceiling_with_bounded_jitter() {
        let config = RecoveryConfig {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            jitter: 0.0,
            ..RecoveryConfig::default()
        };
        let mut rng = Rng::seeded();
        let waits: Vec<u128> = (1..=6).map(|a| config.backoff(a, &mut rng).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1000, 1000]);
        let jittery = RecoveryConfig {
            jitter: 0.5,
            ..config.clone()
        };
        for attempt in 1..=40 {
            let base = config.backoff(attempt, &mut rng);
            let d = jittery.backoff(attempt, &mut rng);
            assert!(d <= base && d >= base / 2, "attempt {attempt}: {d:?} vs {base:?}");
        }
        // Huge attempt numbers do not overflow.
        assert_eq!(config.backoff(u32::MAX, &mut rng), Duration::from_secs(1));
    }
}
