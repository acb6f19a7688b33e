//! Automatic connection recovery: its configuration ([`RecoveryConfig`]), the record of
//! the topology the application declared ([`Topology`]), and the backoff between attempts.
//!
//! What the driver does with them (see `driver.rs`): when the connection is lost for a
//! reason that can heal ([`Error::is_recoverable`]), it keeps every channel, consumer and
//! unconfirmed publish, reconnects (hosts in turn, backoff with jitter, a timeout per
//! attempt) with the next connection generation, then restores, in order: channels with
//! their QoS, confirm and tx modes; exchanges, queues (server-named ones get new names,
//! which bindings and consumers follow), queue bindings, exchange-to-exchange bindings;
//! consumers with their tags and arguments. A failure to restore one entity is reported
//! in [`RecoveryReport`] and the rest goes on.

use std::time::Duration;

use tokio::sync::broadcast;

use crate::error::Error;
use crate::wire::{ExchangeBind, ExchangeDeclare, Method, QueueBind, QueueDeclare, ShortStr};

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
    /// Reconnection attempts per loss before giving up ([`ConnectionState::Failed`]);
    /// `None` tries forever. Default `None`.
    pub max_attempts: Option<u32>,
    /// Wait before the first attempt; doubles with every failed attempt. Default 100 ms.
    pub initial_backoff: Duration,
    /// Ceiling of the wait between attempts. Default 10 s.
    pub max_backoff: Duration,
    /// Fraction of each wait that is random (0.0 none, 1.0 "full jitter"), so that many
    /// clients do not reconnect in lockstep. Default 0.5.
    pub jitter: f64,
    /// More brokers to try, in turn, after the configured host (same TLS settings and
    /// credentials). Default none.
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
    /// the recovery to finish (`Some`), or fail at once with [`Error::NotConnected`]
    /// (`None`). Default `Some(30 s)`.
    pub publish_wait: Option<Duration>,
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

/// A small xorshift generator for backoff jitter (no cryptographic use).
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn seeded() -> Rng {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9E37_79B9, |d| d.as_nanos() as u64);
        let addr = &nanos as *const u64 as u64;
        Rng((nanos ^ addr.rotate_left(32)) | 1)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

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

/// The state of a connection, as [`Connection::state`](super::Connection::state) reports it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ConnectionState {
    /// Open and usable.
    Connected,
    /// Open, but the server blocks publishing (`connection.blocked`, e.g. a memory alarm):
    /// publishes wait, acks and everything else flow.
    Blocked {
        /// The server's reason.
        reason: String,
    },
    /// The connection was lost and is being re-established. Publishes wait (or fail fast,
    /// [`RecoveryConfig::publish_wait`]); acks of earlier deliveries fail with
    /// [`Error::StaleDelivery`].
    Recovering {
        /// The attempt under way (1-based).
        attempt: u32,
        /// Why the connection was lost.
        cause: Error,
    },
    /// Recovered: open and usable again, on a new connection generation.
    Recovered(Box<RecoveryReport>),
    /// Closed for good: by the application ([`Error::ConnectionClosed`] by the client with
    /// 200), by a server error that will not heal (403, 530...), or because recovery is off
    /// or gave up.
    Failed(Error),
}

impl ConnectionState {
    /// True while the connection can carry commands (connected, blocked or recovered).
    pub fn is_open(&self) -> bool {
        matches!(
            self,
            ConnectionState::Connected | ConnectionState::Blocked { .. } | ConnectionState::Recovered(_)
        )
    }

    /// True while a recovery is under way.
    pub fn is_recovering(&self) -> bool {
        matches!(self, ConnectionState::Recovering { .. })
    }
}

/// Every state change of a connection, in order
/// ([`Connection::state_changes`](super::Connection::state_changes)).
#[derive(Debug)]
pub struct StateChanges {
    rx: broadcast::Receiver<ConnectionState>,
}

impl StateChanges {
    pub(crate) fn new(rx: broadcast::Receiver<ConnectionState>) -> Self {
        StateChanges { rx }
    }

    /// The next state; `None` once the connection is gone. A reader that falls more than
    /// 64 changes behind skips to the oldest one still kept.
    pub async fn next(&mut self) -> Option<ConnectionState> {
        loop {
            match self.rx.recv().await {
                Ok(state) => return Some(state),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

/// A recorded queue: its declaration with its current name.
#[derive(Debug, Clone)]
pub(crate) struct QueueRecord {
    pub(crate) declare: QueueDeclare,
    /// Declared with an empty name: the server named it, and names it anew on recovery.
    pub(crate) server_named: bool,
}

/// The exchanges, queues and bindings the application declared and has not deleted.
#[derive(Debug, Default)]
pub(crate) struct Topology {
    pub(crate) exchanges: Vec<ExchangeDeclare>,
    pub(crate) queues: Vec<QueueRecord>,
    pub(crate) bindings: Vec<QueueBind>,
    pub(crate) exchange_bindings: Vec<ExchangeBind>,
}

/// One step of restoring the topology.
#[derive(Debug, Clone)]
pub(crate) enum TopologyStep {
    Exchange(ExchangeDeclare),
    Queue(QueueRecord),
    Binding(QueueBind),
    ExchangeBinding(ExchangeBind),
}

impl TopologyStep {
    /// The method to send (always waiting for the reply, so failures are seen).
    pub(crate) fn method(&self) -> Method {
        match self {
            TopologyStep::Exchange(m) => Method::ExchangeDeclare(ExchangeDeclare {
                no_wait: false,
                ..m.clone()
            }),
            TopologyStep::Queue(q) => {
                let mut m = q.declare.clone();
                m.no_wait = false;
                if q.server_named {
                    m.queue = ShortStr::EMPTY;
                }
                Method::QueueDeclare(m)
            }
            TopologyStep::Binding(m) => Method::QueueBind(QueueBind {
                no_wait: false,
                ..m.clone()
            }),
            TopologyStep::ExchangeBinding(m) => Method::ExchangeBind(ExchangeBind {
                no_wait: false,
                ..m.clone()
            }),
        }
    }

    /// A short description for reports.
    pub(crate) fn describe(&self) -> String {
        match self {
            TopologyStep::Exchange(m) => format!("exchange {:?}", m.exchange.as_str()),
            TopologyStep::Queue(q) => format!("queue {:?}", q.declare.queue.as_str()),
            TopologyStep::Binding(m) => {
                format!(
                    "binding {:?} <- {:?} ({:?})",
                    m.queue.as_str(),
                    m.exchange.as_str(),
                    m.routing_key.as_str()
                )
            }
            TopologyStep::ExchangeBinding(m) => format!(
                "exchange binding {:?} <- {:?} ({:?})",
                m.destination.as_str(),
                m.source.as_str(),
                m.routing_key.as_str()
            ),
        }
    }
}

impl Topology {
    /// Records the effect of `method`, which the server accepted (`reply` is its reply, if
    /// it was not `no_wait`). Passive declares and other methods change nothing.
    pub(crate) fn record(&mut self, method: &Method, reply: Option<&Method>) {
        match method {
            Method::ExchangeDeclare(m) if !m.passive => {
                match self.exchanges.iter_mut().find(|e| e.exchange == m.exchange) {
                    Some(e) => *e = m.clone(),
                    None => self.exchanges.push(m.clone()),
                }
            }
            Method::ExchangeDelete(m) => self.forget_exchange(&m.exchange),
            Method::QueueDeclare(m) if !m.passive => {
                let name = match reply {
                    Some(Method::QueueDeclareOk(ok)) => ok.queue.clone(),
                    _ => m.queue.clone(),
                };
                if name.is_empty() {
                    return;
                }
                let record = QueueRecord {
                    declare: QueueDeclare {
                        queue: name.clone(),
                        ..m.clone()
                    },
                    server_named: m.queue.is_empty(),
                };
                match self.queues.iter_mut().find(|q| q.declare.queue == name) {
                    Some(q) => *q = record,
                    None => self.queues.push(record),
                }
            }
            Method::QueueDelete(m) => self.forget_queue(&m.queue),
            Method::QueueBind(m) => {
                let same = |b: &QueueBind| {
                    b.queue == m.queue
                        && b.exchange == m.exchange
                        && b.routing_key == m.routing_key
                        && b.arguments == m.arguments
                };
                if !self.bindings.iter().any(same) {
                    self.bindings.push(m.clone());
                }
            }
            Method::QueueUnbind(m) => self.bindings.retain(|b| {
                !(b.queue == m.queue
                    && b.exchange == m.exchange
                    && b.routing_key == m.routing_key
                    && b.arguments == m.arguments)
            }),
            Method::ExchangeBind(m) => {
                let same = |b: &ExchangeBind| {
                    b.destination == m.destination
                        && b.source == m.source
                        && b.routing_key == m.routing_key
                        && b.arguments == m.arguments
                };
                if !self.exchange_bindings.iter().any(same) {
                    self.exchange_bindings.push(m.clone());
                }
            }
            Method::ExchangeUnbind(m) => self.exchange_bindings.retain(|b| {
                !(b.destination == m.destination
                    && b.source == m.source
                    && b.routing_key == m.routing_key
                    && b.arguments == m.arguments)
            }),
            _ => {}
        }
    }

    /// Forgets a queue and its bindings (deleted by the application, or an auto-delete
    /// queue whose last consumer the application cancelled).
    pub(crate) fn forget_queue(&mut self, name: &ShortStr) {
        self.queues.retain(|q| &q.declare.queue != name);
        self.bindings.retain(|b| &b.queue != name);
    }

    /// Forgets an exchange and every binding from or to it.
    pub(crate) fn forget_exchange(&mut self, name: &ShortStr) {
        self.exchanges.retain(|e| &e.exchange != name);
        self.bindings.retain(|b| &b.exchange != name);
        self.exchange_bindings
            .retain(|b| &b.source != name && &b.destination != name);
    }

    /// True if `name` is a recorded auto-delete queue.
    pub(crate) fn is_auto_delete_queue(&self, name: &ShortStr) -> bool {
        self.queues
            .iter()
            .any(|q| &q.declare.queue == name && q.declare.auto_delete)
    }

    /// A server-named queue got a new name: its record and bindings follow.
    pub(crate) fn rename_queue(&mut self, old: &ShortStr, new: &ShortStr) {
        for q in &mut self.queues {
            if &q.declare.queue == old {
                q.declare.queue = new.clone();
            }
        }
        for b in &mut self.bindings {
            if &b.queue == old {
                b.queue = new.clone();
            }
        }
    }

    /// The steps to restore everything, in order: exchanges, queues, queue bindings,
    /// exchange-to-exchange bindings. Queue bindings are listed after every queue, so
    /// a renamed queue's bindings are sent with the new name (the driver renames the
    /// pending steps when a `declare-ok` brings one).
    pub(crate) fn steps(&self) -> Vec<TopologyStep> {
        let mut steps = Vec::with_capacity(
            self.exchanges.len() + self.queues.len() + self.bindings.len() + self.exchange_bindings.len(),
        );
        steps.extend(self.exchanges.iter().cloned().map(TopologyStep::Exchange));
        steps.extend(self.queues.iter().cloned().map(TopologyStep::Queue));
        steps.extend(self.bindings.iter().cloned().map(TopologyStep::Binding));
        steps.extend(
            self.exchange_bindings
                .iter()
                .cloned()
                .map(TopologyStep::ExchangeBinding),
        );
        steps
    }
}

/// Renames `old` to `new` in the queue steps still to run.
pub(crate) fn rename_in_steps(steps: &mut [TopologyStep], old: &ShortStr, new: &ShortStr) {
    for step in steps {
        if let TopologyStep::Binding(b) = step
            && &b.queue == old
        {
            b.queue = new.clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{ExchangeDelete, FieldTable, QueueDeclareOk, QueueDelete, QueueUnbind};

    fn s(text: &str) -> ShortStr {
        ShortStr::try_from(text).unwrap()
    }

    fn declare(name: &str, auto_delete: bool) -> Method {
        Method::QueueDeclare(QueueDeclare {
            queue: s(name),
            auto_delete,
            ..Default::default()
        })
    }

    fn declare_ok(name: &str) -> Method {
        Method::QueueDeclareOk(QueueDeclareOk {
            queue: s(name),
            message_count: 0,
            consumer_count: 0,
        })
    }

    fn bind(queue: &str, exchange: &str) -> Method {
        Method::QueueBind(QueueBind {
            queue: s(queue),
            exchange: s(exchange),
            routing_key: s("k"),
            ..Default::default()
        })
    }

    #[test]
    fn records_in_order_and_forgets_what_was_deleted() {
        let mut t = Topology::default();
        t.record(
            &Method::ExchangeDeclare(ExchangeDeclare {
                exchange: s("ex"),
                kind: s("direct"),
                ..Default::default()
            }),
            None,
        );
        t.record(&declare("a", false), Some(&declare_ok("a")));
        t.record(&declare("b", false), Some(&declare_ok("b")));
        t.record(&bind("a", "ex"), None);
        t.record(&bind("a", "ex"), None); // twice: recorded once
        t.record(&bind("b", "ex"), None);
        t.record(
            &Method::ExchangeBind(ExchangeBind {
                destination: s("ex"),
                source: s("up"),
                ..Default::default()
            }),
            None,
        );
        // Passive declares change nothing.
        t.record(
            &Method::QueueDeclare(QueueDeclare {
                queue: s("c"),
                passive: true,
                ..Default::default()
            }),
            None,
        );
        let kinds: Vec<String> = t.steps().iter().map(TopologyStep::describe).collect();
        assert_eq!(
            kinds,
            [
                "exchange \"ex\"",
                "queue \"a\"",
                "queue \"b\"",
                "binding \"a\" <- \"ex\" (\"k\")",
                "binding \"b\" <- \"ex\" (\"k\")",
                "exchange binding \"ex\" <- \"up\" (\"\")",
            ]
        );
        t.record(
            &Method::QueueDelete(QueueDelete {
                queue: s("a"),
                ..Default::default()
            }),
            None,
        );
        t.record(
            &Method::QueueUnbind(QueueUnbind {
                queue: s("b"),
                exchange: s("ex"),
                routing_key: s("k"),
                arguments: FieldTable::new(),
            }),
            None,
        );
        assert_eq!(t.steps().len(), 3, "{:?}", t.steps());
        t.record(
            &Method::ExchangeDelete(ExchangeDelete {
                exchange: s("ex"),
                ..Default::default()
            }),
            None,
        );
        let kinds: Vec<String> = t.steps().iter().map(TopologyStep::describe).collect();
        assert_eq!(kinds, ["queue \"b\""]);
    }

    #[test]
    fn server_named_queues_are_declared_nameless_and_renamed() {
        let mut t = Topology::default();
        t.record(&declare("", true), Some(&declare_ok("amq.gen-1")));
        t.record(&bind("amq.gen-1", "ex"), None);
        let steps = t.steps();
        let TopologyStep::Queue(q) = &steps[0] else {
            panic!("{steps:?}")
        };
        assert!(q.server_named);
        let Method::QueueDeclare(m) = steps[0].method() else {
            panic!()
        };
        assert!(m.queue.is_empty(), "re-declared without a name");
        let mut rest = steps[1..].to_vec();
        rename_in_steps(&mut rest, &s("amq.gen-1"), &s("amq.gen-2"));
        t.rename_queue(&s("amq.gen-1"), &s("amq.gen-2"));
        let TopologyStep::Binding(b) = &rest[0] else { panic!() };
        assert_eq!(b.queue.as_str(), "amq.gen-2");
        assert!(t.is_auto_delete_queue(&s("amq.gen-2")));
        t.forget_queue(&s("amq.gen-2"));
        assert!(t.steps().is_empty(), "its binding went with it");
    }

    #[test]
    fn no_wait_steps_still_wait_for_their_reply() {
        let mut t = Topology::default();
        t.record(
            &Method::QueueDeclare(QueueDeclare {
                queue: s("q"),
                no_wait: true,
                ..Default::default()
            }),
            None,
        );
        let Method::QueueDeclare(m) = t.steps()[0].method() else {
            panic!()
        };
        assert!(!m.no_wait);
    }

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

    #[test]
    fn states_say_what_they_allow() {
        assert!(ConnectionState::Connected.is_open());
        assert!(ConnectionState::Blocked { reason: "mem".into() }.is_open());
        let recovering = ConnectionState::Recovering {
            attempt: 1,
            cause: Error::connection_lost("x", None),
        };
        assert!(recovering.is_recovering() && !recovering.is_open());
        assert!(!ConnectionState::Failed(Error::Closed).is_open());
    }
}
