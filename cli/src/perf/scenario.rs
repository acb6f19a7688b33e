//! `--scenario NAME`: RabbitMQ's standard performance scenarios as presets, each sized to
//! run in well under a minute on a small machine (`-z` or `-C` after it changes that).
//!
//! A preset sets the load and the topology (producers, consumers, channels, counts,
//! duration, rates, confirm window, prefetch, acks, queues, exchange). The URI, the queue
//! kind (`--durable`, `--quorum`, `--persistent`...), the body format and the output
//! options stay as given.

use std::time::Duration;

use super::args::{AckMode, ExchangeType, Options};
use super::pace::RateSchedule;

pub struct Scenario {
    pub name: &'static str,
    pub about: &'static str,
    pub apply: fn(&mut Options),
}

/// Puts every field a preset may set back to its default.
fn reset(o: &mut Options) {
    let d = Options::default();
    o.producers = d.producers;
    o.consumers = d.consumers;
    o.producer_channels = d.producer_channels;
    o.consumer_channels = d.consumer_channels;
    o.count = None;
    o.pmessages = None;
    o.cmessages = None;
    o.duration = Some(secs(10));
    o.confirm = d.confirm;
    o.prefetch = d.prefetch;
    o.ack = d.ack;
    o.nack = d.nack;
    o.nack_requeue = d.nack_requeue;
    o.rate = None;
    o.consumer_rate = None;
    o.consumer_latency = Duration::ZERO;
    o.consume_after_publish = false;
    o.queues = 1;
    o.exchange = None;
    o.exchange_type = ExchangeType::Direct;
    o.routing_key = None;
    o.random_routing_key = false;
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn rate(r: &str) -> Option<RateSchedule> {
    Some(RateSchedule::parse(r).expect("a preset's rate parses"))
}

pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "flat-out",
        about: "one publisher and one consumer, as fast as they go (10 s)",
        apply: |o| reset(o),
    },
    Scenario {
        name: "growing-queue",
        about: "one publisher, no consumer: the queue grows (10 s; what is in it is counted)",
        apply: |o| {
            reset(o);
            o.consumers = 0;
        },
    },
    Scenario {
        name: "drain",
        about: "publish 100 000 messages with nobody consuming, then one consumer drains the queue",
        apply: |o| {
            reset(o);
            o.duration = None;
            o.count = Some(100_000);
            o.consume_after_publish = true;
        },
    },
    Scenario {
        name: "latency",
        about: "5 queues at 10 000 msgs/s in all (5 publishers at 2 000/s, 5 consumers; 10 s)",
        apply: |o| {
            reset(o);
            o.queues = 5;
            o.producers = 5;
            o.consumers = 5;
            o.rate = rate("2000");
        },
    },
    Scenario {
        name: "fanout",
        about: "one publisher to a fanout exchange bound to 10 queues, one consumer each (10 s)",
        apply: |o| {
            reset(o);
            o.exchange = Some("warren-perf-fanout".into());
            o.exchange_type = ExchangeType::Fanout;
            o.queues = 10;
            o.consumers = 10;
        },
    },
    Scenario {
        name: "one-unconfirmed",
        about: "one publisher with 1 unconfirmed message at a time (10 s)",
        apply: |o| {
            reset(o);
            o.confirm = 1;
        },
    },
    Scenario {
        name: "many-queues",
        about: "1 000 queues at 10 msgs/s each: 4 connections x 250 channels on each side (15 s)",
        apply: |o| {
            reset(o);
            o.duration = Some(secs(15));
            o.queues = 1000;
            o.producers = 4;
            o.producer_channels = 250;
            o.consumers = 4;
            o.consumer_channels = 250;
            o.rate = rate("10");
            o.confirm = 10;
            o.prefetch = 10;
        },
    },
    Scenario {
        name: "backlog-consumers",
        about: "publish 100 000 messages first, then 10 consumers take them",
        apply: |o| {
            reset(o);
            o.duration = None;
            o.count = Some(100_000);
            o.consumers = 10;
            o.consume_after_publish = true;
        },
    },
    Scenario {
        name: "multi-ack",
        about: "consumers ack every 1 000 messages at once (prefetch 2 000; 10 s)",
        apply: |o| {
            reset(o);
            o.ack = AckMode::Multiple(1000);
            o.prefetch = 2000;
        },
    },
    Scenario {
        name: "nack-requeue",
        about: "consumers nack one delivery in 10 with requeue; it comes back until acked (10 s)",
        apply: |o| {
            reset(o);
            o.nack = 0.1;
            o.nack_requeue = true;
        },
    },
];

pub fn find(name: &str) -> Option<&'static Scenario> {
    SCENARIOS.iter().find(|s| s.name == name)
}

pub fn names() -> Vec<&'static str> {
    SCENARIOS.iter().map(|s| s.name).collect()
}

/// The help text's list.
pub fn list() -> String {
    SCENARIOS
        .iter()
        .map(|s| format!("  {:<20} {}\n", s.name, s.about))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::args::{Parsed, parse};

    #[test]
    fn every_scenario_is_a_valid_run() {
        for s in super::SCENARIOS {
            let args = vec!["--scenario".to_string(), s.name.to_string()];
            match parse(&args, None) {
                Ok(Parsed::Run(o)) => {
                    assert_eq!(o.scenario, Some(s.name));
                    assert!(o.count.is_some() || o.duration.is_some(), "{}", s.name);
                }
                other => panic!("{}: {other:?}", s.name),
            }
        }
    }
}
