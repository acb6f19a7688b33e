//! Where messages go: queue names, the exchange and its bindings, which queue each
//! publishing and consuming channel uses, and how many copies of a message the queues
//! should hold between them (the lost/duplicate check depends on it).

use warren::client::{
    Channel, Connection, ExchangeDeclareOptions, ExchangeDeleteOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use warren::wire::{FieldTable, ReplyCode, ShortStr};

use super::args::{ArgValue, ExchangeType, Options};
use super::{heals, through_faults};

/// The header a headers exchange binds on.
pub const HEADER_KEY: &str = "warren-perf-key";
/// The routing key when none is given.
const DEFAULT_KEY: &str = "warren-perf";

/// How many queues get each message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routing {
    /// Exactly one queue: the check keeps one set of seen messages.
    One,
    /// Every queue: the check keeps one set per queue.
    Every,
}

#[derive(Debug, Clone)]
pub struct Topology {
    pub queues: Vec<String>,
    /// `""` for the default exchange.
    pub exchange: String,
    pub kind: ExchangeType,
    pub routing: Routing,
    /// The routing keys a publisher picks from (queue names through the default exchange).
    pub keys: Vec<String>,
    /// Each message picks a key at random (else publishing channel i uses key i mod len).
    pub random: bool,
    /// Publishes carry the key as the header [`HEADER_KEY`] (headers exchange).
    pub headers: bool,
    declare_exchange: bool,
}

impl Topology {
    pub fn plan(o: &Options, base: &str) -> Topology {
        let n = o.queues as usize;
        let queues: Vec<String> = if n == 1 {
            vec![base.to_string()]
        } else {
            (0..n).map(|i| format!("{base}-{i}")).collect()
        };
        let exchange = o.exchange.clone().unwrap_or_default();
        let key = o.routing_key.clone().unwrap_or_else(|| DEFAULT_KEY.into());
        let (routing, keys) = if exchange.is_empty() {
            (Routing::One, queues.clone())
        } else if o.random_routing_key {
            (Routing::One, (0..n).map(|i| format!("{key}.{i}")).collect())
        } else {
            (Routing::Every, vec![key])
        };
        Topology {
            queues,
            declare_exchange: !exchange.is_empty() && !exchange.starts_with("amq.") && !o.predeclared,
            exchange,
            kind: o.exchange_type,
            routing,
            keys,
            random: o.random_routing_key,
            headers: o.exchange_type == ExchangeType::Headers,
        }
    }

    /// Copies of each message the queues hold between them.
    pub fn copies(&self) -> u64 {
        match self.routing {
            Routing::One => 1,
            Routing::Every => self.queues.len() as u64,
        }
    }

    /// Which set of seen messages a delivery from queue `q` goes to.
    pub fn ledger(&self, q: usize) -> usize {
        match self.routing {
            Routing::One => 0,
            Routing::Every => q,
        }
    }

    /// The queue consuming channel `k` of consumer connection `c` reads.
    pub fn consumer_queue(&self, o: &Options, c: u32, k: u32) -> usize {
        let n = self.queues.len();
        if o.exclusive {
            let owned = self.owned_by(o, c);
            owned[k as usize % owned.len()]
        } else {
            (c as usize * o.consumer_channels as usize + k as usize) % n
        }
    }

    /// With `--exclusive`: the queues consumer connection `c` declares.
    pub fn owned_by(&self, o: &Options, c: u32) -> Vec<usize> {
        (0..self.queues.len())
            .filter(|i| i % o.consumers as usize == c as usize)
            .collect()
    }

    /// The exchange's type, for the summary.
    pub fn label(&self) -> String {
        if self.exchange.is_empty() {
            "default exchange".into()
        } else {
            format!("{} exchange {}", self.kind.name(), self.exchange)
        }
    }

    /// Declares the exchange and the (non-exclusive) queues, and binds them; for
    /// `--predeclared`, checks that the queues exist and are empty.
    pub async fn declare(&self, o: &Options, ch: &Channel) -> Result<(), String> {
        if self.declare_exchange {
            let options = ExchangeDeclareOptions {
                durable: o.durable || o.quorum,
                ..Default::default()
            };
            through_faults(
                || format!("declaring exchange {}", self.exchange),
                || ch.is_open(),
                || ch.exchange_declare(&self.exchange, self.kind.name(), options, FieldTable::new()),
            )
            .await?;
        }
        if o.predeclared {
            for q in &self.queues {
                let passive = QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                };
                let info = through_faults(
                    || format!("--predeclared: queue {q}"),
                    || ch.is_open(),
                    || ch.queue_declare(q, passive, FieldTable::new()),
                )
                .await?;
                if info.message_count > 0 {
                    return Err(format!(
                        "--predeclared: queue {q} holds {} messages; the lost/duplicate check needs it empty (purge it first)",
                        info.message_count
                    ));
                }
            }
            return Ok(());
        }
        if !o.exclusive {
            for i in 0..self.queues.len() {
                self.declare_queue(o, ch, i).await?;
            }
        }
        Ok(())
    }

    /// Declares queue `i` and binds it to the exchange.
    pub async fn declare_queue(&self, o: &Options, ch: &Channel, i: usize) -> Result<(), String> {
        let q = &self.queues[i];
        let options = QueueDeclareOptions {
            // RabbitMQ 4.3 refuses queues neither durable nor exclusive by default.
            durable: o.durable || o.quorum || !o.exclusive,
            exclusive: o.exclusive,
            auto_delete: o.auto_delete,
            ..Default::default()
        };
        let arguments = queue_arguments(o)?;
        through_faults(
            || format!("declaring queue {q}"),
            || ch.is_open(),
            || ch.queue_declare(q, options, arguments.clone()),
        )
        .await?;
        if !self.exchange.is_empty() {
            let key = match self.routing {
                Routing::One => &self.keys[i],
                Routing::Every => &self.keys[0],
            };
            let (binding_key, arguments) = if self.headers {
                let mut args = FieldTable::new();
                args.insert(ShortStr::from_static("x-match"), "all");
                args.insert(ShortStr::from_static(HEADER_KEY), key.as_str());
                (String::new(), args)
            } else if self.kind == ExchangeType::Fanout {
                (String::new(), FieldTable::new())
            } else {
                (key.clone(), FieldTable::new())
            };
            through_faults(
                || format!("binding queue {q} to {}", self.exchange),
                || ch.is_open(),
                || ch.queue_bind(q, &self.exchange, &binding_key, arguments.clone()),
            )
            .await?;
        }
        Ok(())
    }

    /// Messages ready in each queue (passive declares).
    pub async fn depths(&self, ch: &Channel) -> Result<Vec<u32>, String> {
        let passive = QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        let mut out = Vec::with_capacity(self.queues.len());
        for q in &self.queues {
            let n = through_faults(
                || format!("counting queue {q}"),
                || ch.is_open(),
                || ch.queue_declare(q, passive, FieldTable::new()),
            )
            .await?
            .message_count;
            out.push(n);
        }
        Ok(out)
    }

    /// Deletes what this run declared. Exclusive queues went with their connection;
    /// auto-delete queues may be gone already (not an error).
    pub async fn delete(&self, o: &Options, conn: &Connection, ch: Channel) -> Result<(), String> {
        if o.predeclared {
            return Ok(());
        }
        let mut ch = ch;
        let mut first_error = None;
        if !o.exclusive {
            for q in &self.queues {
                let result = retried(conn, &mut ch, |ch| async move {
                    ch.queue_delete(q, QueueDeleteOptions::default()).await.map(drop)
                })
                .await;
                if let Err(e) = result {
                    if !o.auto_delete {
                        first_error.get_or_insert(format!("deleting queue {q}: {e}"));
                    }
                }
            }
        }
        if self.declare_exchange {
            let exchange = &self.exchange;
            let result = retried(conn, &mut ch, |ch| async move {
                ch.exchange_delete(exchange, ExchangeDeleteOptions::default()).await
            })
            .await;
            if let Err(e) = result {
                first_error.get_or_insert(format!("deleting exchange {}: {e}", self.exchange));
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Runs `op` on the control channel, reopened when closed; a connection lost meanwhile
/// (a node dying during the cleanup) is retried once the library has recovered it, a
/// few times, for up to about 30 s; a delete that the broker did before the loss is
/// then not found, which is success.
async fn retried<F, Fut>(conn: &Connection, ch: &mut Channel, op: F) -> Result<(), warren::Error>
where
    F: Fn(Channel) -> Fut,
    Fut: std::future::Future<Output = Result<(), warren::Error>>,
{
    let mut attempt = 0;
    loop {
        if !ch.is_open() {
            match conn.open_channel().await {
                Ok(open) => *ch = open,
                Err(e) if attempt < 10 && e.is_recoverable() => {}
                Err(e) => return Err(e),
            }
        }
        let result = if ch.is_open() {
            op(ch.clone()).await
        } else {
            Err(warren::Error::NotConnected)
        };
        match result {
            Err(e) if attempt < 10 && heals(&e) => {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_secs(3)).await;
            }
            // Done before the connection went, the retry finds nothing to delete.
            Err(warren::Error::ChannelClosed { code, .. }) if attempt > 0 && code == ReplyCode::NOT_FOUND => {
                return Ok(());
            }
            other => return other,
        }
    }
}

/// `x-queue-type` for `--quorum`, then `--queue-args`.
fn queue_arguments(o: &Options) -> Result<FieldTable, String> {
    let mut arguments = FieldTable::new();
    if o.quorum {
        arguments.insert(ShortStr::from_static("x-queue-type"), "quorum");
    }
    for (k, v) in &o.queue_args {
        let key = ShortStr::try_from(k.as_str()).map_err(|e| format!("--queue-args {k}: {e}"))?;
        match v {
            ArgValue::Int(n) => arguments.insert(key, *n),
            ArgValue::Bool(b) => arguments.insert(key, *b),
            ArgValue::Str(s) => arguments.insert(key, s.as_str()),
        };
    }
    Ok(arguments)
}

#[cfg(test)]
mod tests {
    use super::super::args::{Parsed, parse};
    use super::*;

    fn plan(args: &[&str]) -> (Options, Topology) {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let Ok(Parsed::Run(o)) = parse(&args, None) else {
            panic!()
        };
        let t = Topology::plan(&o, "q");
        (*o, t)
    }

    #[test]
    fn routing_and_assignment() {
        let (o, t) = plan(&["--queues", "3", "-y", "2", "-Y", "2"]);
        assert_eq!(t.queues, ["q-0", "q-1", "q-2"]);
        assert_eq!(
            (t.routing, t.copies(), t.keys.clone()),
            (Routing::One, 1, t.queues.clone())
        );
        let read: Vec<usize> = (0..2)
            .flat_map(|c| (0..2).map(move |k| (c, k)))
            .map(|(c, k)| t.consumer_queue(&o, c, k))
            .collect();
        assert_eq!(read, [0, 1, 2, 0]);

        let (_, t) = plan(&["-e", "x", "-t", "fanout", "--queues", "4", "-y", "4"]);
        assert_eq!((t.routing, t.copies(), t.ledger(3)), (Routing::Every, 4, 3));
        assert!(t.declare_exchange);

        let (_, t) = plan(&["-e", "x", "-t", "topic", "-k", "a.b", "-K", "--queues", "2", "-y", "2"]);
        assert_eq!(
            (t.routing, t.keys.clone()),
            (Routing::One, vec!["a.b.0".to_string(), "a.b.1".into()])
        );

        let (o, t) = plan(&["--exclusive", "--queues", "5", "-y", "2", "-Y", "3"]);
        assert_eq!((t.owned_by(&o, 0), t.owned_by(&o, 1)), (vec![0, 2, 4], vec![1, 3]));
        assert_eq!((t.consumer_queue(&o, 1, 2), t.consumer_queue(&o, 0, 2)), (1, 4));

        let (_, t) = plan(&["-e", "amq.fanout", "-t", "fanout"]);
        assert!(!t.declare_exchange, "amq.* exchanges exist and cannot be declared");
    }
}
