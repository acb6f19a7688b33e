//! warren's own ceiling: the client against an in-process fake broker, one core.
//!
//! ```sh
//! cargo bench -p warren-benches --bench client                       # every scenario, N=500000, 5 reps
//! cargo bench -p warren-benches --bench client -- --n 200000 --reps 3 --only consume
//! cargo bench -p warren-benches --bench client -- --json             # one JSON line per run as well
//! cargo bench -p warren-benches --bench client -- --no-pin           # let the scheduler place the threads
//! cargo bench -p warren-benches --bench client -- --own-thread false # the connection task on the app's runtime
//! ```
//!
//! The fake broker (`benches/src/fake_broker.rs`) runs on its own thread with its own
//! runtime; the application side runs on a tokio current-thread runtime on the main
//! thread, and warren's connection task on its own thread (with `--own-thread false`,
//! `ConnectionConfig::own_thread`, on the application's runtime: one thread in all). With `--pin` (the default
//! when `taskset` works and the machine has two CPUs or more) every client thread runs
//! on CPU 0 and the fake broker on CPU 1: the client gets exactly one core. Reported
//! per scenario (median over reps): messages per second, client CPU per message (the
//! run time of every thread but the broker's, from `/proc/self/task/*/schedstat`), and
//! the fake broker's CPU per message (its thread).
//!
//! Scenarios:
//! - `consume-ack`: basic.consume with prefetch P, `Delivery::ack()` on every delivery.
//! - `consume-multi`: prefetch 1000, `Channel::basic_ack(tag, multiple = true)` every 100.
//! - `consume-noack`: no-ack consumer (the delivery path alone).
//! - `publish-confirm`: confirm mode, at most W = 1000 unconfirmed (a FIFO of
//!   `Confirmation`s, the oldest awaited when full); the fake broker acks each read batch
//!   with one `multiple` ack.
//! - `publish`: no confirms, then one round trip (passive queue.declare).

#[path = "../src/fake_broker.rs"]
#[allow(dead_code)]
mod fake_broker;

use std::collections::VecDeque;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use bytes::Bytes;
use fake_broker::{Config, FakeBroker, current_tid, thread_cpu_ns};
use warren::client::{
    Channel, Confirmation, Confirmed, Connection, ConnectionConfig, ConsumeOptions, PublishOptions, QueueDeclareOptions,
};
use warren::wire::{BasicProperties, FieldTable};

#[derive(Clone, Copy, Debug)]
enum Scenario {
    ConsumeAck { prefetch: u16 },
    ConsumeMulti { prefetch: u16, every: u32 },
    ConsumeNoAck,
    PublishConfirm { window: usize },
    Publish,
}

impl Scenario {
    fn name(self) -> String {
        match self {
            Scenario::ConsumeAck { prefetch } => format!("consume-ack prefetch={prefetch}"),
            Scenario::ConsumeMulti { prefetch, every } => format!("consume-multi prefetch={prefetch} every={every}"),
            Scenario::ConsumeNoAck => "consume-noack".into(),
            Scenario::PublishConfirm { window } => format!("publish-confirm window={window}"),
            Scenario::Publish => "publish (no confirms)".into(),
        }
    }
    /// The issue's target in messages per second on one core, if it sets one. It is for
    /// the ceiling of a streaming broker: at prefetch 100 ours waits for every window's
    /// acks, so that row measures the round trip (see benches/README.md).
    fn target(self) -> Option<f64> {
        match self {
            Scenario::ConsumeAck { prefetch: 1000.. } => Some(1_000_000.0),
            Scenario::PublishConfirm { .. } => Some(500_000.0),
            _ => None,
        }
    }
}

const SCENARIOS: &[Scenario] = &[
    Scenario::ConsumeAck { prefetch: 1000 },
    Scenario::ConsumeAck { prefetch: 100 },
    Scenario::ConsumeMulti {
        prefetch: 1000,
        every: 100,
    },
    Scenario::ConsumeNoAck,
    Scenario::PublishConfirm { window: 1000 },
    Scenario::Publish,
];

struct Sample {
    wall: f64,
    client_ns: u64,
    broker_ns: u64,
}

struct Args {
    n: u64,
    reps: usize,
    size: usize,
    only: Option<String>,
    json: bool,
    pin: bool,
    own_thread: bool,
}

fn parse_args() -> Args {
    let mut a = Args {
        n: 500_000,
        reps: 5,
        size: 256,
        only: None,
        json: false,
        pin: true,
        own_thread: true,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let value = |i: usize| argv.get(i + 1).cloned().unwrap_or_default();
        match argv[i].as_str() {
            "--n" => (a.n, i) = (value(i).replace('_', "").parse().expect("--n N"), i + 1),
            "--reps" => (a.reps, i) = (value(i).parse().expect("--reps R"), i + 1),
            "--size" => (a.size, i) = (value(i).parse().expect("--size BYTES"), i + 1),
            "--only" => (a.only, i) = (Some(value(i)), i + 1),
            "--json" => a.json = true,
            "--pin" => a.pin = true,
            "--no-pin" => a.pin = false,
            "--own-thread" => (a.own_thread, i) = (value(i).parse().expect("--own-thread true|false"), i + 1),
            // `cargo bench` passes `--bench`; a libtest-style filter is taken as --only.
            "--bench" => {}
            other if !other.starts_with('-') => a.only = Some(other.to_string()),
            other => eprintln!("client bench: ignoring {other}"),
        }
        i += 1;
    }
    a
}

fn main() {
    let args = parse_args();
    let broker = FakeBroker::start(Config {
        deliveries: args.n,
        body_size: args.size,
    })
    .expect("start fake broker");
    let me = current_tid();
    // Threads inherit their creator's CPUs: the connection threads started from here run
    // on CPU 0 too.
    let pinned = args.pin
        && std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2)
        && pin(me, 0)
        && pin(broker.tid, 1);
    println!(
        "warren client ceiling: fake broker on {}, current-thread runtime, N={} messages of {} B, {} reps (medians), {}",
        broker.addr,
        args.n,
        args.size,
        args.reps,
        if pinned {
            "client threads on CPU 0, fake broker on CPU 1"
        } else {
            "threads not pinned"
        }
    );
    println!(
        "{:<36} {:>12} {:>10} {:>16} {:>16} {:>8}",
        "scenario", "msgs/s", "(min-max)", "client ns/msg", "broker ns/msg", "target"
    );
    for &sc in SCENARIOS {
        if args.only.as_ref().is_some_and(|f| !sc.name().contains(f.as_str())) {
            continue;
        }
        let mut samples = Vec::new();
        for rep in 0..args.reps {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let s = rt.block_on(run(sc, &broker, me, args.n, args.size, args.own_thread));
            drop(rt);
            if args.json {
                println!(
                    "{{\"bench\":\"client\",\"scenario\":\"{}\",\"rep\":{},\"n\":{},\"wall_s\":{:.6},\"msgs_per_s\":{:.0},\"client_ns_per_msg\":{:.1},\"broker_ns_per_msg\":{:.1},\"pinned\":{}}}",
                    sc.name(),
                    rep + 1,
                    args.n,
                    s.wall,
                    args.n as f64 / s.wall,
                    s.client_ns as f64 / args.n as f64,
                    s.broker_ns as f64 / args.n as f64,
                    pinned
                );
            }
            samples.push(s);
        }
        let mut rates: Vec<f64> = samples.iter().map(|s| args.n as f64 / s.wall).collect();
        let mut client: Vec<f64> = samples.iter().map(|s| s.client_ns as f64 / args.n as f64).collect();
        let mut broker_cpu: Vec<f64> = samples.iter().map(|s| s.broker_ns as f64 / args.n as f64).collect();
        let (lo, hi) = (
            rates.iter().cloned().fold(f64::MAX, f64::min),
            rates.iter().cloned().fold(0.0, f64::max),
        );
        let rate = median(&mut rates);
        let target = match sc.target() {
            Some(t) if rate >= t => format!("{:.0}k ok", t / 1e3),
            Some(t) => format!("{:.0}k MISS", t / 1e3),
            None => "-".into(),
        };
        println!(
            "{:<36} {:>12.0} {:>10} {:>16.0} {:>16.0} {:>8}",
            sc.name(),
            rate,
            format!("{:.0}-{:.0}k", lo / 1e3, hi / 1e3),
            median(&mut client),
            median(&mut broker_cpu),
            target
        );
    }
    let st = &broker.stats;
    eprintln!(
        "fake broker totals: delivered {} settled {} (in {} frames), published {} confirmed {} (in {} frames)",
        st.delivered.load(Relaxed),
        st.settled.load(Relaxed),
        st.settle_frames.load(Relaxed),
        st.published.load(Relaxed),
        st.confirmed.load(Relaxed),
        st.confirm_frames.load(Relaxed)
    );
}

/// Pins thread `tid` to `cpu` with taskset(1); false if that failed.
fn pin(tid: u32, cpu: usize) -> bool {
    Command::new("taskset")
        .args(["-p", "-c", &cpu.to_string(), &tid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// CPU of this process's threads other than the broker's, so that a helper thread the
/// client might start is counted too: (main thread ns, all-but-broker ns).
fn client_cpu(me: u32, broker_tid: u32) -> (u64, u64) {
    let main = thread_cpu_ns(me).unwrap_or(0);
    let mut all = 0;
    if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
        for e in dir.flatten() {
            let Some(tid) = e.file_name().to_str().and_then(|t| t.parse::<u32>().ok()) else {
                continue;
            };
            if tid != broker_tid {
                all += thread_cpu_ns(tid).unwrap_or(0);
            }
        }
    }
    (main, all.max(main))
}

async fn run(sc: Scenario, broker: &FakeBroker, me: u32, n: u64, size: usize, own_thread: bool) -> Sample {
    let mut config = ConnectionConfig::from_uri(&broker.uri()).expect("uri");
    config.publish_window = 1000;
    config.own_thread = own_thread;
    let conn = Connection::connect_with(config)
        .await
        .expect("connect to the fake broker");
    let ch = conn.open_channel().await.expect("channel");
    ch.queue_declare("bench", QueueDeclareOptions::default(), FieldTable::new())
        .await
        .expect("declare");
    match sc {
        Scenario::ConsumeAck { prefetch } | Scenario::ConsumeMulti { prefetch, .. } => {
            ch.basic_qos(prefetch, false).await.expect("qos")
        }
        Scenario::PublishConfirm { .. } => ch.confirm_select().await.expect("confirm.select"),
        _ => {}
    }
    let body = Bytes::from(vec![0xA5u8; size]);

    let (c0, b0, t0) = (client_cpu(me, broker.tid), broker.cpu_ns(), Instant::now());
    match sc {
        Scenario::ConsumeAck { .. } | Scenario::ConsumeMulti { .. } | Scenario::ConsumeNoAck => {
            consume(sc, &ch, n).await
        }
        Scenario::PublishConfirm { window } => publish_confirm(&ch, n, window, &body).await,
        Scenario::Publish => {
            for _ in 0..n {
                let c = ch
                    .basic_publish(
                        "",
                        "bench",
                        PublishOptions::default(),
                        BasicProperties::default(),
                        body.clone(),
                    )
                    .await
                    .expect("publish");
                drop(c);
            }
            let passive = QueueDeclareOptions {
                passive: true,
                ..Default::default()
            };
            ch.queue_declare("bench", passive, FieldTable::new())
                .await
                .expect("barrier");
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    let (c1, b1) = (client_cpu(me, broker.tid), broker.cpu_ns());
    let _ = tokio::time::timeout(Duration::from_secs(5), ch.close()).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), conn.close()).await;
    Sample {
        wall,
        client_ns: c1.1 - c0.1,
        broker_ns: b1 - b0,
    }
}

async fn consume(sc: Scenario, ch: &Channel, n: u64) {
    let options = ConsumeOptions {
        no_ack: matches!(sc, Scenario::ConsumeNoAck),
        ..Default::default()
    };
    let mut consumer = ch
        .basic_consume("bench", "", options, FieldTable::new())
        .await
        .expect("consume");
    let mut got = 0u64;
    let mut bytes = 0usize;
    while got < n {
        let d = consumer.next().await.expect("stream ended early").expect("delivery");
        got += 1;
        bytes += d.body.len();
        match sc {
            Scenario::ConsumeAck { .. } => d.ack().await.expect("ack"),
            Scenario::ConsumeMulti { every, .. } if got % u64::from(every) == 0 || got == n => {
                ch.basic_ack(d.delivery_tag, true).await.expect("ack multiple");
            }
            _ => {}
        }
    }
    std::hint::black_box(bytes);
    consumer.cancel().await.expect("cancel");
}

async fn publish_confirm(ch: &Channel, n: u64, window: usize, body: &Bytes) {
    let mut in_flight: VecDeque<Confirmation> = VecDeque::with_capacity(window);
    for _ in 0..n {
        let c = ch
            .basic_publish(
                "",
                "bench",
                PublishOptions::default(),
                BasicProperties::default(),
                body.clone(),
            )
            .await
            .expect("publish");
        in_flight.push_back(c);
        if in_flight.len() >= window {
            let outcome = in_flight.pop_front().expect("not empty").await.expect("confirm");
            assert_eq!(outcome, Confirmed::Ack);
        }
    }
    for c in in_flight {
        assert_eq!(c.await.expect("confirm"), Confirmed::Ack);
    }
}
