//! The topology the application declared and the broker accepted, minus what it
//! deleted: what recovery declares again on a new connection, and in what order.

use crate::wire::{ExchangeBind, ExchangeDeclare, FieldTable, Method, QueueBind, QueueDeclare, ShortStr};

/// Methods whose effect the topology records (declares, deletes, bindings).
pub(super) fn is_topology(method: &Method) -> bool {
    matches!(
        method,
        Method::ExchangeDeclare(_)
            | Method::ExchangeDelete(_)
            | Method::ExchangeBind(_)
            | Method::ExchangeUnbind(_)
            | Method::QueueDeclare(_)
            | Method::QueueDelete(_)
            | Method::QueueBind(_)
            | Method::QueueUnbind(_)
    )
}

/// A recorded queue: its declaration with its current name.
#[derive(Debug, Clone)]
pub(super) struct QueueRecord {
    pub(super) declare: QueueDeclare,
    /// Declared with an empty name: the server named it, and names it anew on recovery.
    pub(super) server_named: bool,
}

/// The exchanges, queues and bindings the application declared and has not deleted.
#[derive(Debug, Default)]
pub(super) struct Topology {
    pub(super) exchanges: Vec<ExchangeDeclare>,
    pub(super) queues: Vec<QueueRecord>,
    pub(super) bindings: Vec<QueueBind>,
    pub(super) exchange_bindings: Vec<ExchangeBind>,
}

/// One step of restoring the topology.
#[derive(Debug, Clone)]
pub(super) enum TopologyStep {
    Exchange(ExchangeDeclare),
    Queue(QueueRecord),
    Binding(QueueBind),
    ExchangeBinding(ExchangeBind),
}

impl TopologyStep {
    /// The method to send (always waiting for the reply, so failures are seen).
    pub(super) fn method(&self) -> Method {
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
    pub(super) fn describe(&self) -> String {
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
    pub(super) fn record(&mut self, method: &Method, reply: Option<&Method>) {
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
                let key = binding(&m.queue, &m.exchange, &m.routing_key, &m.arguments);
                if !self.bindings.iter().any(|b| queue_binding(b) == key) {
                    self.bindings.push(m.clone());
                }
            }
            Method::QueueUnbind(m) => {
                let key = binding(&m.queue, &m.exchange, &m.routing_key, &m.arguments);
                self.bindings.retain(|b| queue_binding(b) != key);
            }
            Method::ExchangeBind(m) => {
                let key = binding(&m.destination, &m.source, &m.routing_key, &m.arguments);
                if !self.exchange_bindings.iter().any(|b| exchange_binding(b) == key) {
                    self.exchange_bindings.push(m.clone());
                }
            }
            Method::ExchangeUnbind(m) => {
                let key = binding(&m.destination, &m.source, &m.routing_key, &m.arguments);
                self.exchange_bindings.retain(|b| exchange_binding(b) != key);
            }
            _ => {}
        }
    }

    /// Forgets a queue and its bindings (deleted by the application, or an auto-delete
    /// queue whose last consumer the application cancelled).
    pub(super) fn forget_queue(&mut self, name: &ShortStr) {
        self.queues.retain(|q| &q.declare.queue != name);
        self.bindings.retain(|b| &b.queue != name);
    }

    /// Forgets an exchange and every binding from or to it.
    pub(super) fn forget_exchange(&mut self, name: &ShortStr) {
        self.exchanges.retain(|e| &e.exchange != name);
        self.bindings.retain(|b| &b.exchange != name);
        self.exchange_bindings
            .retain(|b| &b.source != name && &b.destination != name);
    }

    /// True if `name` is a recorded auto-delete queue.
    pub(super) fn is_auto_delete_queue(&self, name: &ShortStr) -> bool {
        self.queues
            .iter()
            .any(|q| &q.declare.queue == name && q.declare.auto_delete)
    }

    /// A server-named queue got a new name: its record and bindings follow.
    pub(super) fn rename_queue(&mut self, old: &ShortStr, new: &ShortStr) {
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
    pub(super) fn steps(&self) -> Vec<TopologyStep> {
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

/// What names a binding: its destination (a queue or an exchange), its source exchange,
/// its routing key and its arguments (`no-wait` is not part of it).
type BindingKey<'a> = (&'a ShortStr, &'a ShortStr, &'a ShortStr, &'a FieldTable);

fn binding<'a>(
    destination: &'a ShortStr,
    source: &'a ShortStr,
    key: &'a ShortStr,
    arguments: &'a FieldTable,
) -> BindingKey<'a> {
    (destination, source, key, arguments)
}

fn queue_binding(b: &QueueBind) -> BindingKey<'_> {
    binding(&b.queue, &b.exchange, &b.routing_key, &b.arguments)
}

fn exchange_binding(b: &ExchangeBind) -> BindingKey<'_> {
    binding(&b.destination, &b.source, &b.routing_key, &b.arguments)
}

/// Renames `old` to `new` in the queue steps still to run.
pub(super) fn rename_in_steps(steps: &mut [TopologyStep], old: &ShortStr, new: &ShortStr) {
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
}
